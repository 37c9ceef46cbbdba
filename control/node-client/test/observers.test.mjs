// RTP observers with real media: opus over UDP to comedia PlainTransports, each packet carrying its
// audio level in the ssrc-audio-level header extension (RFC 6464, one-byte header RFC 8285).
// AudioLevelObserver ('volumes' with Producer objects, 'silence' once), ActiveSpeakerObserver
// ('dominantspeaker'), pause/resume, add/removeProducer, close and routerclose.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';
import * as mediasoup from 'shardsfu-client';

import { loopback, mediaCodecs, nextEvent, opusRtpParameters, startServer, vp8RtpParameters } from './server.mjs';

const { InvalidStateError } = mediasoup.types;

const AUDIO_LEVEL_URI = 'urn:ietf:params:rtp-hdrext:ssrc-audio-level';
const LEVEL_EXT = 1;
const SILENT = 127;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** An opus packet whose audio level is `level` (-dBov, voice bit set). */
function opusPacket(seq, ssrc, level) {
	const p = Buffer.alloc(12 + 8 + 40, 0xfc);
	p[0] = 0x90; // version 2, extension
	p[1] = 100;
	p.writeUInt16BE(seq & 0xffff, 2);
	p.writeUInt32BE((seq * 960) >>> 0, 4);
	p.writeUInt32BE(ssrc >>> 0, 8);
	// 0xBEDE, one word: one element (id, length 1) padded.
	Buffer.from([0xbe, 0xde, 0, 1, (LEVEL_EXT << 4) | 0, 0x80 | level, 0, 0]).copy(p, 12);
	return p;
}

async function bindUdp() {
	const socket = dgram.createSocket('udp4');
	await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
	return socket;
}

/** An opus producer with the audio level extension on its own comedia transport, and a socket. */
async function talker(router, ssrc) {
	const transport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
	const rtpParameters = opusRtpParameters(ssrc);
	rtpParameters.headerExtensions = [{ uri: AUDIO_LEVEL_URI, id: LEVEL_EXT }];
	const producer = await transport.produce({ kind: 'audio', rtpParameters });
	const socket = await bindUdp();
	return { transport, producer, socket, ssrc, port: transport.tuple.localPort };
}

/**
 * Every talker sends one packet per 10 ms at `level(elapsedMs)` until the returned function is
 * called.
 */
function talk(talkers) {
	const start = Date.now();
	let seq = 0;
	const timer = setInterval(() => {
		seq++;
		for (const { talker: t, level } of talkers) {
			t.socket.send(opusPacket(seq, t.ssrc, level(Date.now() - start)), t.port, '127.0.0.1');
		}
	}, 10);
	return () => clearInterval(timer);
}

function closeTalker(t) {
	t.socket.close();
	t.transport.close();
}

/** Events of `names` on `emitter`, as [name, ...args], from now on. */
function record(emitter, names) {
	const got = [];
	for (const name of names) emitter.on(name, (...args) => got.push([name, ...args]));
	return got;
}

describe('rtp observers', () => {
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

	test('createAudioLevelObserver / createActiveSpeakerObserver: properties, newrtpobserver, TypeErrors', async () => {
		assert.ok(
			router.rtpCapabilities.headerExtensions.some((e) => e.uri === AUDIO_LEVEL_URI && e.kind === 'audio'),
			'the router offers ssrc-audio-level',
		);
		const newrtpobserver = nextEvent(router.observer, 'newrtpobserver');
		const audioLevel = await router.createAudioLevelObserver({ maxEntries: 3, interval: 400, appData: { a: 1 } });
		assert.equal((await newrtpobserver)[0], audioLevel);
		assert.ok(audioLevel instanceof mediasoup.types.AudioLevelObserver);
		assert.ok(audioLevel instanceof mediasoup.types.RtpObserver);
		assert.equal(typeof audioLevel.id, 'string');
		assert.equal(audioLevel.type, 'audiolevel');
		assert.equal(audioLevel.closed, false);
		assert.equal(audioLevel.paused, false);
		assert.deepEqual(audioLevel.appData, { a: 1 });

		const activeSpeaker = await router.createActiveSpeakerObserver();
		assert.ok(activeSpeaker instanceof mediasoup.types.ActiveSpeakerObserver);
		assert.equal(activeSpeaker.type, 'activespeaker');
		assert.deepEqual(activeSpeaker.appData, {});
		const dump = await router.dump();
		assert.deepEqual([...dump.rtpObserverIds].sort(), [audioLevel.id, activeSpeaker.id].sort());

		await assert.rejects(router.createAudioLevelObserver({ maxEntries: 0 }), TypeError);
		await assert.rejects(router.createAudioLevelObserver({ threshold: 5 }), TypeError);
		await assert.rejects(router.createAudioLevelObserver({ interval: 'often' }), TypeError);
		await assert.rejects(router.createActiveSpeakerObserver({ interval: 'often' }), TypeError);
		await assert.rejects(router.createActiveSpeakerObserver({ appData: 'x' }), TypeError);
		// A fractional maxEntries passes the local check; the server refuses it as a TypeError.
		await assert.rejects(router.createAudioLevelObserver({ maxEntries: 1.5 }), TypeError);

		// addProducer: a video producer is a TypeError (from the server), an unknown one an Error.
		const videoTransport = await router.createPlainTransport({ listenInfo: loopback, comedia: true });
		const video = await videoTransport.produce({ kind: 'video', rtpParameters: vp8RtpParameters(9001) });
		await assert.rejects(audioLevel.addProducer({ producerId: video.id }), TypeError);
		await assert.rejects(activeSpeaker.addProducer({ producerId: video.id }), TypeError);
		await assert.rejects(audioLevel.addProducer({ producerId: 'nope' }), /not found/);
		videoTransport.close();

		const closed = nextEvent(audioLevel.observer, 'close');
		audioLevel.close();
		await closed;
		assert.equal(audioLevel.closed, true);
		await assert.rejects(audioLevel.pause(), InvalidStateError);
		await assert.rejects(audioLevel.addProducer({ producerId: video.id }), InvalidStateError);
		activeSpeaker.close();
		await sleep(100);
		assert.deepEqual((await router.dump()).rtpObserverIds, []);
	});

	test('AudioLevelObserver: the loud producer in volumes, pause/resume, then silence once', async () => {
		const observer = await router.createAudioLevelObserver({ maxEntries: 2, threshold: -70, interval: 250 });
		const loud = await talker(router, 7001);
		const quiet = await talker(router, 7002);
		try {
			const added = nextEvent(observer.observer, 'addproducer');
			await observer.addProducer({ producerId: loud.producer.id });
			assert.equal((await added)[0], loud.producer);
			await observer.addProducer({ producerId: quiet.producer.id });
			const events = record(observer, ['volumes', 'silence']);

			// -20 dBov and -90 dBov (under the threshold): only the loud one.
			const stop = talk([
				{ talker: loud, level: () => 20 },
				{ talker: quiet, level: () => 90 },
			]);
			try {
				const observerVolumes = nextEvent(observer.observer, 'volumes');
				const [volumes] = await nextEvent(observer, 'volumes');
				assert.equal(volumes.length, 1, JSON.stringify(volumes.map((v) => v.volume)));
				assert.equal(volumes[0].producer, loud.producer, 'the Producer object itself');
				assert.equal(volumes[0].volume, -20);
				assert.equal((await observerVolumes)[0][0].producer, loud.producer);
				assert.ok(!events.some(([name]) => name === 'silence'), 'no silence while it talks');

				// Paused: nothing; resumed: volumes again.
				const paused = nextEvent(observer.observer, 'pause');
				await observer.pause();
				await paused;
				assert.equal(observer.paused, true);
				await sleep(300);
				events.length = 0;
				await sleep(700);
				assert.deepEqual(events, [], 'nothing while paused');
				const resumed = nextEvent(observer.observer, 'resume');
				await observer.resume();
				await resumed;
				assert.equal(observer.paused, false);
				const [again] = await nextEvent(observer, 'volumes');
				assert.equal(again[0].producer, loud.producer);
			} finally {
				stop();
			}

			// Quiet: one silence, then nothing.
			const observerSilence = nextEvent(observer.observer, 'silence');
			await nextEvent(observer, 'silence');
			await observerSilence;
			events.length = 0;
			await sleep(1000);
			assert.deepEqual(events, [], 'silence is told once');

			const removed = nextEvent(observer.observer, 'removeproducer');
			await observer.removeProducer({ producerId: quiet.producer.id });
			assert.equal((await removed)[0], quiet.producer);
		} finally {
			observer.close();
			closeTalker(loud);
			closeTalker(quiet);
		}
	});

	test('ActiveSpeakerObserver: dominantspeaker names the loud producer', async () => {
		const observer = await router.createActiveSpeakerObserver({ interval: 100 });
		const loud = await talker(router, 7101);
		const silent = await talker(router, 7102);
		try {
			await observer.addProducer({ producerId: loud.producer.id });
			await observer.addProducer({ producerId: silent.producer.id });
			const dominant = nextEvent(observer, 'dominantspeaker', 10_000);
			const observerDominant = nextEvent(observer.observer, 'dominantspeaker', 10_000);
			// The loud one sets its noise floor (-100 dBov) first, then talks at -20 dBov; the other
			// sends silence throughout.
			const stop = talk([
				{ talker: loud, level: (ms) => (ms < 500 ? 100 : 20) },
				{ talker: silent, level: () => SILENT },
			]);
			try {
				const [{ producer }] = await dominant;
				assert.equal(producer, loud.producer);
				assert.equal((await observerDominant)[0].producer, loud.producer);
			} finally {
				stop();
			}
		} finally {
			observer.close();
			closeTalker(loud);
			closeTalker(silent);
		}
	});

	test('routerclose: from router.close(), and from the server when another connection closes the router', async () => {
		const other = await worker.createRouter({ mediaCodecs });
		const observer = await other.createAudioLevelObserver();
		const events = record(observer, ['routerclose']);
		const closed = nextEvent(observer.observer, 'close');
		other.close();
		await closed;
		assert.deepEqual(events, [['routerclose']]);
		assert.equal(observer.closed, true);
		await assert.rejects(observer.resume(), InvalidStateError);

		// Closed by someone else: the server's rtpObserver.routerclose reaches the observer.
		const third = await worker.createRouter({ mediaCodecs });
		const speaker = await third.createActiveSpeakerObserver();
		const routerclose = nextEvent(speaker, 'routerclose');
		const ws = new WebSocket(server.url);
		await new Promise((resolve, reject) => {
			ws.once('open', resolve);
			ws.once('error', reject);
		});
		const answer = new Promise((resolve) => ws.once('message', (data) => resolve(JSON.parse(data.toString()))));
		ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'router.close', params: { routerId: third.id } }));
		assert.equal((await answer).result, null);
		ws.close();
		await routerclose;
		assert.equal(speaker.closed, true);
	});
});
