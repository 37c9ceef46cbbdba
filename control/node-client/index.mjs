// ESM entry: a thin wrapper over the CommonJS build, so that `import` and `require` share one
// module instance (one `observer`, one set of classes for instanceof checks).
import cjs from './dist/index.js';

export const {
	createWorker,
	getSupportedRtpCapabilities,
	parseScalabilityMode,
	setLogEventListeners,
	observer,
	types,
	version,
	UnsupportedError,
	InvalidStateError,
} = cjs;

export default cjs;
