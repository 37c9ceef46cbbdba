// Routers and plain transports: rtpCapabilities, tuples, close cascades, error classes.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as mediasoup from 'shardsfu-client';

import { loopback, mediaCodecs, nextEvent, opusRtpParameters, startServer } from './server.mjs';

const { InvalidStateError, UnsupportedError } = mediasoup.types;

describe('router', () => {
	let server;
	let worker;
	before(async () => {
		server = await startServer();
		worker = await mediasoup.createWorker({ url: server.url });
	});
	after(async () => {
		worker?.close();
		await server?.stop();
	});

	test('createRouter: rtpCapabilities, observer newrouter, appData', async () => {
		const newrouter = nextEvent(worker.observer, 'newrouter');
		const router = await worker.createRouter({ mediaCodecs, appData: { room: 'a' } });
		const [emitted] = await newrouter;
		assert.equal(emitted, router);
		assert.ok(router instanceof mediasoup.types.Router);
		assert.equal(typeof router.id, 'string');
		assert.deepEqual(router.appData, { room: 'a' });
		const { codecs, headerExtensions } = router.rtpCapabilities;
		const opus = codecs.find((c) => c.mimeType.toLowerCase() === 'audio/opus');
		assert.equal(opus.kind, 'audio');
		assert.equal(opus.clockRate, 48000);
		assert.equal(opus.channels, 2);
		assert.equal(typeof opus.preferredPayloadType, 'number');
		const vp8 = codecs.find((c) => c.mimeType.toLowerCase() === 'video/vp8');
		assert.equal(vp8.kind, 'video');
		// mediasoup adds an RTX codec per video codec.
		assert.ok(
			codecs.some((c) => c.mimeType.toLowerCase() === 'video/rtx' && c.parameters?.apt === vp8.preferredPayloadType),
		);
		assert.ok(Array.isArray(headerExtensions));
		router.close();
	});

	test('createRouter errors: local TypeError, server UnsupportedError', async () => {
		await assert.rejects(worker.createRouter({ mediaCodecs: 'opus' }), TypeError);
		await assert.rejects(worker.createRouter({ appData: 7 }), TypeError);
		await assert.rejects(
			worker.createRouter({ mediaCodecs: [{ kind: 'audio', mimeType: 'audio/foo', clockRate: 8000 }] }),
			UnsupportedError,
		);
	});

	test('plain transport: tuple, connect, observer newtransport, close', async () => {
		const router = await worker.createRouter({ mediaCodecs });
		const newtransport = nextEvent(router.observer, 'newtransport');
		const transport = await router.createPlainTransport({ listenInfo: loopback, rtcpMux: true, comedia: false });
		assert.equal((await newtransport)[0], transport);
		assert.ok(transport instanceof mediasoup.types.PlainTransport);
		assert.equal(transport.type, 'plain');
		assert.equal(transport.tuple.localAddress ?? transport.tuple.localIp, '127.0.0.1');
		assert.equal(typeof transport.tuple.localPort, 'number');
		assert.ok(transport.tuple.localPort > 0);
		assert.equal(transport.tuple.protocol, 'udp');
		assert.equal(transport.rtcpTuple, undefined);

		await transport.connect({ ip: '127.0.0.1', port: 40000 });
		const dump = await transport.dump();
		assert.equal(dump.id, transport.id);
		const stats = await transport.getStats();
		assert.ok(Array.isArray(stats));

		// The deprecated listenIp form still works.
		const t2 = await router.createPlainTransport({ listenIp: '127.0.0.1' });
		assert.equal(typeof t2.tuple.localPort, 'number');

		const closed = nextEvent(transport.observer, 'close');
		transport.close();
		await closed;
		assert.equal(transport.closed, true);
		await assert.rejects(transport.connect({ ip: '127.0.0.1', port: 40000 }), InvalidStateError);
		await assert.rejects(transport.produce({ kind: 'audio', rtpParameters: opusRtpParameters() }), InvalidStateError);
		router.close();
	});

	test('router.close cascades: transports, producers, consumers close locally with their events', async () => {
		const router = await worker.createRouter({ mediaCodecs });
		const t1 = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
		const t2 = await router.createPlainTransport({ listenInfo: loopback });
		const producer = await t1.produce({ kind: 'audio', rtpParameters: opusRtpParameters(3001) });
		const consumer = await t2.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
		const events = [];
		t1.on('routerclose', () => events.push('t1 routerclose'));
		t1.observer.on('close', () => events.push('t1 close'));
		t2.observer.on('close', () => events.push('t2 close'));
		producer.on('transportclose', () => events.push('producer transportclose'));
		producer.observer.on('close', () => events.push('producer close'));
		consumer.on('transportclose', () => events.push('consumer transportclose'));
		consumer.observer.on('close', () => events.push('consumer close'));
		router.observer.on('close', () => events.push('router close'));
		router.close();
		assert.deepEqual(events, [
			'producer transportclose',
			'producer close',
			't1 routerclose',
			't1 close',
			'consumer transportclose',
			'consumer close',
			't2 close',
			'router close',
		]);
		assert.ok(router.closed && t1.closed && t2.closed && producer.closed && consumer.closed);
		await assert.rejects(router.createPlainTransport({ listenInfo: loopback }), InvalidStateError);
		await assert.rejects(producer.pause(), InvalidStateError);
		await assert.rejects(consumer.resume(), InvalidStateError);
		// The server forgot them too: a fresh router on the same worker works and the connection is fine.
		const again = await worker.createRouter({ mediaCodecs });
		assert.notEqual(again.id, router.id);
		again.close();
	});

	test('transport.close cascades to its producers and consumers', async () => {
		const router = await worker.createRouter({ mediaCodecs });
		const t1 = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
		const t2 = await router.createPlainTransport({ listenInfo: loopback });
		const producer = await t1.produce({ kind: 'audio', rtpParameters: opusRtpParameters(3002) });
		const consumer = await t2.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
		const producerClosed = nextEvent(producer, 'transportclose');
		// Closing the producer's transport closes the producer, whose consumers get 'producerclose'.
		const consumerProducerClose = nextEvent(consumer, 'producerclose');
		t1.close();
		await producerClosed;
		assert.equal(producer.closed, true);
		await consumerProducerClose;
		assert.equal(consumer.closed, true);
		assert.equal(t2.closed, false);
		router.close();
	});

	test('errors from the server have the class named in error.data.name', async () => {
		const router = await worker.createRouter({ mediaCodecs });
		const transport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
		// Local checks, as mediasoup does them.
		await assert.rejects(transport.produce({ kind: 'data', rtpParameters: opusRtpParameters() }), TypeError);
		await assert.rejects(transport.produce({ kind: 'audio' }), TypeError);
		await assert.rejects(transport.consume({ rtpCapabilities: router.rtpCapabilities }), TypeError);
		await assert.rejects(router.createPlainTransport({ listenInfo: 'lo' }), TypeError);
		await assert.rejects(router.createPlainTransport({ listenInfo: loopback, listenIp: '127.0.0.1' }), TypeError);
		// The server's: wrong types in the rtpParameters (TypeError).
		await assert.rejects(
			transport.produce({ kind: 'audio', rtpParameters: { codecs: [{ mimeType: 42 }], encodings: [{ ssrc: 1 }] } }),
			TypeError,
		);
		// A codec the router does not have (UnsupportedError).
		await assert.rejects(
			transport.produce({
				kind: 'audio',
				rtpParameters: {
					codecs: [{ mimeType: 'audio/PCMU', payloadType: 0, clockRate: 8000 }],
					encodings: [{ ssrc: 4444 }],
				},
			}),
			UnsupportedError,
		);
		// A consumer the capabilities cannot receive (UnsupportedError).
		const producer = await transport.produce({ kind: 'audio', rtpParameters: opusRtpParameters(3003) });
		const t2 = await router.createPlainTransport({ listenInfo: loopback });
		const vp8Only = { codecs: router.rtpCapabilities.codecs.filter((c) => c.kind === 'video'), headerExtensions: [] };
		assert.equal(router.canConsume({ producerId: producer.id, rtpCapabilities: vp8Only }), false);
		assert.equal(router.canConsume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities }), true);
		assert.equal(router.canConsume({ producerId: 'nope', rtpCapabilities: router.rtpCapabilities }), false);
		await assert.rejects(t2.consume({ producerId: producer.id, rtpCapabilities: vp8Only }), UnsupportedError);
		// An id the server does not know: a plain Error, the connection stays usable.
		await assert.rejects(t2.consume({ producerId: '00000000-0000-0000-0000-000000000000', rtpCapabilities: router.rtpCapabilities }), Error);
		assert.ok(await router.dump());
		router.close();
	});
});
