// Producers and consumers: rtpParameters shapes, pause/resume, producerclose, and real RTP through
// PlainTransports (node's dgram) and DirectTransports.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';

import * as mediasoup from 'shardsfu-client';

import { loopback, mediaCodecs, nextEvent, opusRtpParameters, startServer, vp8RtpParameters } from './server.mjs';

const { InvalidStateError } = mediasoup.types;

/** A minimal RTP packet: version 2, marker 0. */
function rtpPacket({ payloadType, seq, timestamp, ssrc, payload }) {
	const header = Buffer.alloc(12);
	header[0] = 0x80;
	header[1] = payloadType & 0x7f;
	header.writeUInt16BE(seq & 0xffff, 2);
	header.writeUInt32BE(timestamp >>> 0, 4);
	header.writeUInt32BE(ssrc >>> 0, 8);
	return Buffer.concat([header, payload]);
}

/** Parses an RTP packet (CSRCs, header extension and padding skipped). */
function parseRtp(buf) {
	assert.ok(buf.length >= 12, 'short RTP packet');
	assert.equal(buf[0] >> 6, 2, 'RTP version');
	const csrcCount = buf[0] & 0x0f;
	let offset = 12 + 4 * csrcCount;
	if (buf[0] & 0x10) {
		const words = buf.readUInt16BE(offset + 2);
		offset += 4 + 4 * words;
	}
	let end = buf.length;
	if (buf[0] & 0x20) end -= buf[buf.length - 1];
	return {
		payloadType: buf[1] & 0x7f,
		seq: buf.readUInt16BE(2),
		timestamp: buf.readUInt32BE(4),
		ssrc: buf.readUInt32BE(8),
		payload: buf.subarray(offset, end),
	};
}

function isRtcp(buf) {
	return buf.length >= 2 && buf[1] >= 192 && buf[1] <= 223;
}

async function bindUdp() {
	const socket = dgram.createSocket('udp4');
	await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
	return socket;
}

describe('media', () => {
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

	test('produce and consume: rtpParameters shapes and properties', async () => {
		const sendTransport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
		const recvTransport = await router.createPlainTransport({ listenInfo: loopback });
		const newproducer = nextEvent(sendTransport.observer, 'newproducer');
		const producer = await sendTransport.produce({
			kind: 'video',
			rtpParameters: vp8RtpParameters(5001),
			appData: { cam: true },
		});
		assert.equal((await newproducer)[0], producer);
		assert.ok(producer instanceof mediasoup.types.Producer);
		assert.equal(typeof producer.id, 'string');
		assert.equal(producer.kind, 'video');
		assert.equal(producer.type, 'simple');
		assert.equal(producer.paused, false);
		assert.equal(producer.closed, false);
		assert.deepEqual(producer.appData, { cam: true });
		assert.equal(producer.rtpParameters.codecs[0].mimeType.toLowerCase(), 'video/vp8');
		assert.equal(producer.rtpParameters.encodings[0].ssrc, 5001);
		assert.ok(Array.isArray(producer.score));

		const newconsumer = nextEvent(recvTransport.observer, 'newconsumer');
		const consumer = await recvTransport.consume({
			producerId: producer.id,
			rtpCapabilities: router.rtpCapabilities,
			appData: { who: 'bob' },
		});
		assert.equal((await newconsumer)[0], consumer);
		assert.ok(consumer instanceof mediasoup.types.Consumer);
		assert.equal(consumer.producerId, producer.id);
		assert.equal(consumer.kind, 'video');
		assert.equal(consumer.type, 'simple');
		assert.equal(consumer.paused, false);
		assert.equal(consumer.producerPaused, false);
		assert.equal(typeof consumer.priority, 'number');
		assert.equal(typeof consumer.score.score, 'number');
		assert.deepEqual(consumer.appData, { who: 'bob' });
		const { codecs, encodings, rtcp } = consumer.rtpParameters;
		const vp8 = router.rtpCapabilities.codecs.find((c) => c.mimeType.toLowerCase() === 'video/vp8');
		assert.equal(codecs[0].mimeType.toLowerCase(), 'video/vp8');
		assert.equal(codecs[0].payloadType, vp8.preferredPayloadType);
		assert.equal(codecs[0].clockRate, 90000);
		assert.equal(encodings.length, 1);
		assert.equal(typeof encodings[0].ssrc, 'number');
		assert.notEqual(encodings[0].ssrc, 5001);
		assert.equal(typeof rtcp.cname, 'string');
		assert.equal(typeof (await consumer.getStats()), 'object');
		assert.equal(typeof (await consumer.dump()), 'object');
		assert.equal(typeof (await producer.getStats()), 'object');
		await consumer.requestKeyFrame();

		// Producer with a given id keeps it; a duplicate is refused locally.
		const fixedId = '11111111-2222-4333-8444-555555555555';
		const p2 = await sendTransport.produce({ id: fixedId, kind: 'audio', rtpParameters: opusRtpParameters(5002) });
		assert.equal(p2.id, fixedId);
		await assert.rejects(
			sendTransport.produce({ id: fixedId, kind: 'audio', rtpParameters: opusRtpParameters(5003) }),
			TypeError,
		);
		sendTransport.close();
		recvTransport.close();
	});

	test('pause/resume: producerpause/producerresume and observer events on the consumer', async () => {
		const sendTransport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
		const recvTransport = await router.createPlainTransport({ listenInfo: loopback });
		const producer = await sendTransport.produce({ kind: 'audio', rtpParameters: opusRtpParameters(6001) });
		const consumer = await recvTransport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });

		// The server may notify the consumer before it answers producer.pause: order per object only.
		const producerEvents = [];
		const consumerEvents = [];
		producer.observer.on('pause', () => producerEvents.push('pause'));
		producer.observer.on('resume', () => producerEvents.push('resume'));
		consumer.observer.on('pause', () => consumerEvents.push('pause'));
		consumer.observer.on('resume', () => consumerEvents.push('resume'));

		const producerpause = nextEvent(consumer, 'producerpause');
		await producer.pause();
		assert.equal(producer.paused, true);
		await producerpause;
		assert.equal(consumer.producerPaused, true);
		assert.equal(consumer.paused, false);

		const producerresume = nextEvent(consumer, 'producerresume');
		await producer.resume();
		assert.equal(producer.paused, false);
		await producerresume;
		assert.equal(consumer.producerPaused, false);

		await consumer.pause();
		assert.equal(consumer.paused, true);
		await consumer.pause(); // No second observer event.
		await consumer.resume();
		assert.equal(consumer.paused, false);

		assert.deepEqual(producerEvents, ['pause', 'resume']);
		assert.deepEqual(consumerEvents, ['pause', 'resume', 'pause', 'resume']);

		// A consumer created paused of a paused producer.
		await producer.pause();
		const c2 = await recvTransport.consume({
			producerId: producer.id,
			rtpCapabilities: router.rtpCapabilities,
			paused: true,
		});
		assert.equal(c2.paused, true);
		assert.equal(c2.producerPaused, true);
		sendTransport.close();
		recvTransport.close();
	});

	test("producer.close: the consumer emits 'producerclose' and closes", async () => {
		const sendTransport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
		const recvTransport = await router.createPlainTransport({ listenInfo: loopback });
		const producer = await sendTransport.produce({ kind: 'audio', rtpParameters: opusRtpParameters(7001) });
		const consumer = await recvTransport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
		const producerclose = nextEvent(consumer, 'producerclose');
		const consumerObserverClose = nextEvent(consumer.observer, 'close');
		const producerObserverClose = nextEvent(producer.observer, 'close');
		producer.close();
		assert.equal(producer.closed, true);
		await producerObserverClose;
		await producerclose;
		await consumerObserverClose;
		assert.equal(consumer.closed, true);
		await assert.rejects(consumer.pause(), InvalidStateError);
		await assert.rejects(producer.resume(), InvalidStateError);
		// consumer.close() on the consumer side, then nothing is left to consume.
		await assert.rejects(
			recvTransport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities }),
			Error,
		);
		sendTransport.close();
		recvTransport.close();
	});

	test('RTP through PlainTransports: the consumer sends what the producer got', async () => {
		const sender = await bindUdp();
		const receiver = await bindUdp();
		try {
			const sendTransport = await router.createPlainTransport({ listenInfo: loopback, comedia: true, rtcpMux: true });
			const recvTransport = await router.createPlainTransport({ listenInfo: loopback, rtcpMux: true });
			await recvTransport.connect({ ip: '127.0.0.1', port: receiver.address().port });
			const ssrc = 8001;
			const producer = await sendTransport.produce({ kind: 'audio', rtpParameters: opusRtpParameters(ssrc, 100) });
			const consumer = await recvTransport.consume({
				producerId: producer.id,
				rtpCapabilities: router.rtpCapabilities,
			});
			const got = [];
			receiver.on('message', (msg) => {
				if (!isRtcp(msg)) got.push(parseRtp(msg));
			});

			const sent = new Map();
			const count = 20;
			for (let i = 0; i < count; i++) {
				const payload = Buffer.from(`opus frame ${i} `.padEnd(40, String.fromCharCode(97 + (i % 26))));
				sent.set(payload.toString('hex'), i);
				const packet = rtpPacket({ payloadType: 100, seq: 1000 + i, timestamp: 960 * i, ssrc, payload });
				sender.send(packet, sendTransport.tuple.localPort, '127.0.0.1');
				await new Promise((r) => setTimeout(r, 20));
			}
			const deadline = Date.now() + 3000;
			while (got.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

			// comedia: the transport learnt our address from the first packet.
			assert.equal(sendTransport.tuple.remotePort, sender.address().port);
			assert.ok(got.length >= count / 2, `received ${got.length} of ${count} packets`);
			const expectedSsrc = consumer.rtpParameters.encodings[0].ssrc;
			const expectedPt = consumer.rtpParameters.codecs[0].payloadType;
			let lastIndex = -1;
			for (const packet of got) {
				assert.equal(packet.ssrc, expectedSsrc);
				assert.equal(packet.payloadType, expectedPt);
				const index = sent.get(packet.payload.toString('hex'));
				assert.notEqual(index, undefined, `payload not sent: ${packet.payload.toString()}`);
				assert.ok(index > lastIndex, 'in order');
				lastIndex = index;
			}
			// Consecutive packets keep consecutive sequence numbers.
			for (let i = 1; i < got.length; i++) {
				const di = sent.get(got[i].payload.toString('hex')) - sent.get(got[i - 1].payload.toString('hex'));
				assert.equal((got[i].seq - got[i - 1].seq) & 0xffff, di);
			}
			sendTransport.close();
			recvTransport.close();
		} finally {
			sender.close();
			receiver.close();
		}
	});

	test("tuple event: a comedia transport says where media comes from", async () => {
		const sender = await bindUdp();
		try {
			const transport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
			await transport.produce({ kind: 'audio', rtpParameters: opusRtpParameters(8101) });
			const tuple = nextEvent(transport, 'tuple');
			const packet = rtpPacket({ payloadType: 100, seq: 1, timestamp: 0, ssrc: 8101, payload: Buffer.from('x') });
			sender.send(packet, transport.tuple.localPort, '127.0.0.1');
			const [t] = await tuple;
			assert.equal(t.remotePort, sender.address().port);
			assert.equal(transport.tuple.remotePort, sender.address().port);
			transport.close();
		} finally {
			sender.close();
		}
	});

	test("score events: the producer's and the consumer's follow the media", async () => {
		const sender = await bindUdp();
		try {
			const sendTransport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
			const recvTransport = await router.createPlainTransport({ listenInfo: loopback });
			const ssrc = 8201;
			const producer = await sendTransport.produce({ kind: 'audio', rtpParameters: opusRtpParameters(ssrc, 100) });
			assert.deepEqual(producer.score, [], 'no media yet');
			const consumer = await recvTransport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
			assert.equal(consumer.score.score, 10);
			const producerScore = nextEvent(producer, 'score');
			const consumerScores = [];
			consumer.on('score', (s) => consumerScores.push(s));
			let seq = 0;
			const timer = setInterval(() => {
				seq++;
				const packet = rtpPacket({ payloadType: 100, seq, timestamp: 960 * seq, ssrc, payload: Buffer.from('opus') });
				sender.send(packet, sendTransport.tuple.localPort, '127.0.0.1');
			}, 10);
			try {
				const [scores] = await producerScore;
				assert.deepEqual(scores, [{ encodingIdx: 0, ssrc, score: 10 }]);
				assert.deepEqual(producer.score, scores);
				const deadline = Date.now() + 3000;
				while (consumer.score.producerScore !== 10 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
				assert.deepEqual(consumer.score, { score: 10, producerScore: 10, producerScores: [10] });
				assert.deepEqual(consumerScores.at(-1), consumer.score, 'told by a score event');
			} finally {
				clearInterval(timer);
			}
			sendTransport.close();
			recvTransport.close();
		} finally {
			sender.close();
		}
	});

	test('DirectTransport: producer.send in, consumer rtp event out', async () => {
		const directIn = await router.createDirectTransport();
		const directOut = await router.createDirectTransport();
		assert.ok(directIn instanceof mediasoup.types.DirectTransport);
		assert.equal(directIn.type, 'direct');
		await directIn.connect();
		const ssrc = 9001;
		const producer = await directIn.produce({ kind: 'audio', rtpParameters: opusRtpParameters(ssrc, 100) });
		const consumer = await directOut.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities });
		const payload = Buffer.from('direct transport payload');
		const rtp = nextEvent(consumer, 'rtp');
		const interval = setInterval(() => {
			producer.send(rtpPacket({ payloadType: 100, seq: 1, timestamp: 0, ssrc, payload }));
		}, 50);
		try {
			const [packet] = await rtp;
			const parsed = parseRtp(packet);
			assert.ok(parsed.payload.equals(payload));
			assert.equal(parsed.ssrc, consumer.rtpParameters.encodings[0].ssrc);
		} finally {
			clearInterval(interval);
		}
		assert.throws(() => producer.send('nope'), TypeError);
		directIn.close();
		directOut.close();
	});

	test('pipeToRouter: the piped producer can be consumed in the other router', async () => {
		const router2 = await worker.createRouter({ mediaCodecs });
		const sendTransport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
		const producer = await sendTransport.produce({ kind: 'audio', rtpParameters: opusRtpParameters(9101) });
		const { pipeConsumer, pipeProducer } = await router.pipeToRouter({ producerId: producer.id, router: router2 });
		assert.ok(pipeConsumer instanceof mediasoup.types.Consumer);
		assert.ok(pipeProducer instanceof mediasoup.types.Producer);
		assert.equal(pipeProducer.id, producer.id); // keepId
		assert.equal(pipeConsumer.type, 'pipe');
		const recv = await router2.createPlainTransport({ listenInfo: loopback });
		assert.equal(router2.canConsume({ producerId: producer.id, rtpCapabilities: router2.rtpCapabilities }), true);
		const consumer = await recv.consume({ producerId: producer.id, rtpCapabilities: router2.rtpCapabilities });
		assert.equal(consumer.producerId, producer.id);
		// Pausing the source pauses the pipe producer (its observer says so), and its consumer.
		const pipePaused = nextEvent(pipeProducer.observer, 'pause');
		const producerpause = nextEvent(consumer, 'producerpause');
		await producer.pause();
		await pipePaused;
		await producerpause;
		assert.equal(pipeProducer.paused, true);
		await producer.resume();
		// Closing router2 closes the pipe producer and router2's consumer locally.
		const pipeProducerClosed = nextEvent(pipeProducer.observer, 'close');
		router2.close();
		await pipeProducerClosed;
		assert.equal(consumer.closed, true);
		sendTransport.close();
	});
});
