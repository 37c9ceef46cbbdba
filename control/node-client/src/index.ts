/**
 * shardsfu-client: mediasoup v3's JavaScript API, served by a remote shardsfu server.
 *
 * `import * as mediasoup from 'shardsfu-client'` in place of `from 'mediasoup'`, and point
 * SHARDSFU_URL (and SHARDSFU_TOKEN) at the server.
 */
import { Channel, ConnectionOptions } from './channel';
import { AppData, checkAppData } from './common';
import { EnhancedEventEmitter } from './enhancedEvents';
import type { RtpCapabilities } from './rtpParameters';
import { Worker, WorkerSettings } from './Worker';

export * as types from './types';
export { parseScalabilityMode } from './rtpParameters';
export { UnsupportedError, InvalidStateError } from './errors';
export type { ConnectionOptions } from './channel';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const pkg = require('../package.json') as { version: string };

/** This package's version (mediasoup's `version` is mediasoup's). */
export const version: string = pkg.version;

export type ObserverEvents = { newworker: [Worker] };

/** mediasoup's top-level observer: 'newworker'. */
export const observer = new EnhancedEventEmitter<ObserverEvents>();

/**
 * Connects to the shardsfu server (settings.url / settings.token, else env SHARDSFU_URL /
 * SHARDSFU_TOKEN, else ws://127.0.0.1:7300/) and creates a worker there. Every worker has its own
 * WebSocket; losing it makes the worker emit 'died'.
 */
export async function createWorker<WorkerAppData extends AppData = AppData>(
	settings: WorkerSettings<WorkerAppData> = {},
): Promise<Worker<WorkerAppData>> {
	const { url, token, connectTimeoutMs, requestTimeoutMs, appData, ...workerSettings } = settings ?? {};
	checkAppData(appData);
	if (workerSettings.logLevel !== undefined && !['debug', 'warn', 'error', 'none'].includes(workerSettings.logLevel)) {
		throw new TypeError(`invalid logLevel "${String(workerSettings.logLevel)}"`);
	}
	if (workerSettings.logTags !== undefined && !Array.isArray(workerSettings.logTags)) {
		throw new TypeError('if given, logTags must be an array');
	}
	const channel = await Channel.connect({ url, token, connectTimeoutMs, requestTimeoutMs });
	let data: { id: string; pid: number };
	try {
		data = await channel.request<{ id: string; pid: number }>('createWorker', { ...workerSettings, appData });
	} catch (error) {
		channel.close();
		throw error;
	}
	const worker = new Worker<WorkerAppData>({ channel, id: data.id, pid: data.pid, appData });
	observer.safeEmit('newworker', worker as Worker);
	return worker;
}

/**
 * The RTP capabilities the engine supports. Unlike mediasoup's this is async: it asks the server
 * (over a short-lived connection to the same URL and token createWorker would use).
 */
export async function getSupportedRtpCapabilities(options: ConnectionOptions = {}): Promise<RtpCapabilities> {
	const channel = await Channel.connect(options);
	try {
		return await channel.request<RtpCapabilities>('getSupportedRtpCapabilities', {});
	} finally {
		channel.close();
	}
}

/** mediasoup's log event listeners: there is no local worker to log, so this is a no-op. */
export function setLogEventListeners(_listeners?: unknown): void {}
