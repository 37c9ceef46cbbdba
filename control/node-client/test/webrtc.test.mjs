// WebRtcTransport and WebRtcServer through the client: data, connect, restartIce, events, cascades.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as mediasoup from 'shardsfu-client';

import { loopback, mediaCodecs, nextEvent, startServer } from './server.mjs';

const { InvalidStateError } = mediasoup.types;

describe('webrtc', () => {
	let server;
	let worker;
	let router;
	before(async () => {
		server = await startServer();
		worker = await mediasoup.createWorker({ url: server.url });
		router = await worker.createRouter({ mediaCodecs });
	});
	after(async () => {
		worker?.close();
		await server?.stop();
	});

	/** Creates a transport (the server supports them: no skipping). */
	async function createTransport(options) {
		return router.createWebRtcTransport(options);
	}

	test('createWebRtcTransport checks its options locally', async () => {
		await assert.rejects(router.createWebRtcTransport({ listenInfos: loopback }), TypeError);
		await assert.rejects(router.createWebRtcTransport({ listenInfos: [loopback], appData: 'x' }), TypeError);
	});

	test('WebRtcTransport: ICE/DTLS parameters, connect, restartIce, close', async () => {
		const transport = await createTransport({
			listenInfos: [loopback],
			enableSctp: false,
			appData: { peer: 'p1' },
		});
		assert.ok(transport instanceof mediasoup.types.WebRtcTransport);
		assert.equal(transport.type, 'webrtc');
		assert.equal(transport.iceRole, 'controlled');
		assert.equal(typeof transport.iceParameters.usernameFragment, 'string');
		assert.equal(typeof transport.iceParameters.password, 'string');
		assert.ok(transport.iceCandidates.length >= 1);
		const candidate = transport.iceCandidates[0];
		assert.equal(candidate.protocol, 'udp');
		assert.equal(candidate.address ?? candidate.ip, '127.0.0.1');
		assert.equal(typeof candidate.port, 'number');
		assert.equal(transport.iceState, 'new');
		assert.equal(transport.iceSelectedTuple, undefined);
		assert.ok(transport.dtlsParameters.fingerprints.length >= 1);
		assert.equal(transport.dtlsState, 'new');
		assert.deepEqual(transport.appData, { peer: 'p1' });

		const before = transport.iceParameters;
		const iceParameters = await transport.restartIce();
		assert.notEqual(iceParameters.usernameFragment, before.usernameFragment);
		assert.deepEqual(transport.iceParameters, iceParameters);

		await transport.connect({
			dtlsParameters: {
				role: 'client',
				fingerprints: [{ algorithm: 'sha-256', value: Array(32).fill('AB').join(':') }],
			},
		});

		const closed = nextEvent(transport.observer, 'close');
		transport.close();
		await closed;
		assert.equal(transport.iceState, 'closed');
		assert.equal(transport.dtlsState, 'closed');
		await assert.rejects(transport.restartIce(), InvalidStateError);
	});

	test('WebRtcServer: transports on it close with it (listenserverclose)', async () => {
		const webRtcServer = await worker.createWebRtcServer({ listenInfos: [{ ...loopback, port: 0 }] });
		const transport = await router.createWebRtcTransport({ webRtcServer });
		const listenserverclose = nextEvent(transport, 'listenserverclose');
		webRtcServer.close();
		await listenserverclose;
		assert.equal(transport.closed, true);
	});
});
