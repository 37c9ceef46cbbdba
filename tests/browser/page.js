// The browser side: a mediasoup-client app, bundled with esbuild into `build/page.bundle.js`.
// Signaling goes to the Node test through `window.signal(method, data)` (playwright's
// exposeFunction); the test drives the page through the functions on `window.app`.
import * as mediasoupClient from 'mediasoup-client';

const state = { device: undefined, send: undefined, recv: undefined, producers: [], consumers: new Map(), stream: undefined };

/** A stats report as plain objects (RTCStatsReport is a Map and does not cross into Node). */
function plain(report) {
	return [...report.values()].map((s) => ({ ...s }));
}

function wire(transport) {
	transport.on('connect', ({ dtlsParameters }, callback, errback) => {
		window
			.signal('connect', { transportId: transport.id, dtlsParameters })
			.then(() => callback(), errback);
	});
	transport.on('produce', ({ kind, rtpParameters, appData }, callback, errback) => {
		window
			.signal('produce', { transportId: transport.id, kind, rtpParameters, appData })
			.then(({ id }) => callback({ id }), errback);
	});
	transport.on('connectionstatechange', (s) => console.log(`transport ${transport.direction} connectionstate ${s}`));
}

window.app = {
	handlerName: () => state.device?.handlerName,

	/** Loads the device; returns its RtpCapabilities (for consume). */
	async load(routerRtpCapabilities) {
		state.device = await mediasoupClient.Device.factory();
		await state.device.load({ routerRtpCapabilities });
		return state.device.rtpCapabilities;
	},

	/** Creates the send transport from the server's transport data. */
	createSendTransport(data) {
		state.send = state.device.createSendTransport(data);
		wire(state.send);
	},

	createRecvTransport(data) {
		state.recv = state.device.createRecvTransport(data);
		wire(state.recv);
	},

	/** getUserMedia (the fake devices) and one producer per track; returns their ids and kinds. */
	async publish({ audio }) {
		state.stream = await navigator.mediaDevices.getUserMedia({
			video: { width: 320, height: 240, frameRate: 15 },
			audio,
		});
		const out = [];
		for (const track of [...state.stream.getVideoTracks(), ...state.stream.getAudioTracks()]) {
			const producer = await state.send.produce({ track });
			state.producers.push(producer);
			out.push({ id: producer.id, kind: producer.kind });
		}
		return out;
	},

	/** Consumes what the server's consumer describes; the track plays into a <video>/<audio>. */
	async consume({ id, producerId, kind, rtpParameters }) {
		const consumer = await state.recv.consume({ id, producerId, kind, rtpParameters });
		state.consumers.set(id, consumer);
		const element = document.createElement(kind);
		element.autoplay = true;
		element.muted = true;
		element.playsInline = true;
		element.srcObject = new MediaStream([consumer.track]);
		document.body.appendChild(element);
		element.play().catch(() => {});
		return { id: consumer.id, trackId: consumer.track.id };
	},

	/** The receiver's inbound-rtp stats for one consumer (null before there are any). */
	async inbound(consumerId) {
		const consumer = state.consumers.get(consumerId);
		const stats = plain(await consumer.getStats());
		return stats.find((s) => s.type === 'inbound-rtp') ?? null;
	},

	/** The outbound-rtp stats of every producer. */
	async outbound() {
		const all = [];
		for (const p of state.producers) {
			all.push(...plain(await p.getStats()).filter((s) => s.type === 'outbound-rtp'));
		}
		return all;
	},

	/** ICE/DTLS state of both transports, with the selected candidate pair, for diagnostics. */
	async transportStats() {
		const out = {};
		for (const [name, t] of [['send', state.send], ['recv', state.recv]]) {
			if (!t) continue;
			const stats = plain(await t.getStats());
			const transport = stats.find((s) => s.type === 'transport');
			const pair = stats.find((s) => s.id === transport?.selectedCandidatePairId);
			out[name] = {
				connectionState: t.connectionState,
				transport,
				selectedPair: pair,
				localCandidate: stats.find((s) => s.id === pair?.localCandidateId),
				remoteCandidate: stats.find((s) => s.id === pair?.remoteCandidateId),
				candidatePairs: stats.filter((s) => s.type === 'candidate-pair'),
				remoteCandidates: stats.filter((s) => s.type === 'remote-candidate'),
				rtp: stats.filter((s) => s.type === 'inbound-rtp' || s.type === 'outbound-rtp'),
			};
		}
		return out;
	},
};
