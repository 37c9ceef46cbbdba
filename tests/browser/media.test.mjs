// The real-browser proof: headless Chromium publishes its fake camera and microphone with
// mediasoup-client through a real `shardsfu` binary, driven by shardsfu-client as a mediasoup app
// would drive mediasoup, and a second page consumes them; the receiving page must decode video
// frames and receive audio packets.
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import * as mediasoup from '../../control/node-client/index.mjs';
import { startServer } from '../../control/node-client/test/server.mjs';

import { HERE, bundle, launchChromium, publishAndConsume, serveBundle, waitInbound } from './harness.mjs';

/** Frames the receiver must decode (about 2 s of the fake camera at 15 fps): media keeps flowing. */
const SUSTAINED_FRAMES = 30;

/** Where the server's whole log goes (SHARDSFU_LOG=debug for the debug one). */
const SERVER_LOG = path.join(HERE, 'build', 'shardsfu.log');

const mediaCodecs = [
	{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
	{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
];

describe('browser', () => {
	let server;
	let web;
	let chromium;
	let worker;
	let router;

	before(async () => {
		await bundle();
		server = await startServer({ args: ['--media-ip', '127.0.0.1', '--log-level', process.env.SHARDSFU_LOG ?? 'info'] });
		// The whole server log, for diagnosis (failures show its tail).
		await mkdir(path.join(HERE, 'build'), { recursive: true });
		const log = createWriteStream(SERVER_LOG);
		server.child.stdout.pipe(log);
		server.child.stderr.pipe(log);
		web = await serveBundle();
		chromium = await launchChromium();
		worker = await mediasoup.createWorker({ url: server.url });
		router = await worker.createRouter({ mediaCodecs });
	});

	after(async () => {
		worker?.close();
		await chromium?.close();
		await web?.close();
		await server?.stop();
	});

	/** Runs a room; on failure the server's log tail goes with the error. */
	async function room(createTransport, check) {
		let r;
		try {
			r = await publishAndConsume({ context: chromium.context, url: web.url, router, createTransport, audio: true });
			await check(r);
		} catch (error) {
			error.message += `\n--- shardsfu log (tail; all of it in ${SERVER_LOG}) ---\n${server.output().slice(-8000)}`;
			throw error;
		} finally {
			await r?.pub.close();
			await r?.sub.close();
			r?.sendTransport.close();
			r?.recvTransport.close();
		}
	}

	/** The server's nonzero drop counters (`shardsfu_drops_total` by reason), summed over shards. */
	async function drops() {
		const text = await (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
		const out = {};
		for (const m of text.matchAll(/^shardsfu_drops_total\{[^}]*reason="([^"]+)"[^}]*\} (\d+)/gm)) {
			if (Number(m[2]) > 0) out[m[1]] = (out[m[1]] ?? 0) + Number(m[2]);
		}
		return out;
	}

	/**
	 * The receiver decodes video (framesDecoded > 0, then keeps decoding: SUSTAINED_FRAMES) and
	 * receives audio; logs what was measured.
	 */
	async function checkMedia(r, label) {
		const video = r.consumers.find((c) => c.kind === 'video');
		const audio = r.consumers.find((c) => c.kind === 'audio');
		assert.ok(video, 'a video consumer');
		assert.ok(audio, 'an audio consumer');
		const started = Date.now();
		const first = await waitInbound(r, video, (s) => s.framesDecoded > 0, `${label}: receiver's video framesDecoded > 0`);
		const firstMs = Date.now() - started;
		const a = await waitInbound(r, audio, (s) => s.packetsReceived > 0, `${label}: receiver's audio packetsReceived > 0`);
		const v = await waitInbound(
			r,
			video,
			(s) => s.framesDecoded >= SUSTAINED_FRAMES,
			`${label}: receiver's video framesDecoded >= ${SUSTAINED_FRAMES}`,
		);
		const pages = await r.sub.evaluate(() => window.app.transportStats());
		const pubPages = await r.pub.evaluate(() => window.app.transportStats());
		const serverStats = (await video.getStats())[0];
		console.log(
			`${label}: first frame after ${firstMs} ms (framesDecoded=${first.framesDecoded}); ` +
				`video framesDecoded=${v.framesDecoded} packetsReceived=${v.packetsReceived} ${v.frameWidth}x${v.frameHeight} ` +
				`nackCount=${v.nackCount} pliCount=${v.pliCount}; audio packetsReceived=${a.packetsReceived}; ` +
				`send ${r.sendTransport.iceSelectedTuple?.protocol} ${pubPages.send?.transport?.srtpCipher} ` +
				`browser dtlsRole=${pubPages.send?.transport?.dtlsRole}; ` +
				`recv ${r.recvTransport.iceSelectedTuple?.protocol} ${pages.recv?.transport?.srtpCipher} ` +
				`browser dtlsRole=${pages.recv?.transport?.dtlsRole}; ` +
				`server consumer packetCount=${serverStats?.packetCount}; server drops ${JSON.stringify(await drops())}`,
		);
		return { v, a };
	}

	test('WebRtcTransports on UDP: the receiver decodes video and receives audio', async () => {
		await room(
			() => router.createWebRtcTransport({ listenInfos: [{ protocol: 'udp', ip: '127.0.0.1' }] }),
			async (r) => {
				await checkMedia(r, 'udp');
				assert.equal(r.sendTransport.iceSelectedTuple?.protocol, 'udp');
			},
		);
	});

	test('through a WebRtcServer, ICE-TCP only (enableUdp: false)', async () => {
		const webRtcServer = await worker.createWebRtcServer({
			listenInfos: [
				{ protocol: 'udp', ip: '127.0.0.1', port: 0 },
				{ protocol: 'tcp', ip: '127.0.0.1', port: 0 },
			],
		});
		try {
			await room(
				async () => {
					const t = await router.createWebRtcTransport({ webRtcServer, enableUdp: false, enableTcp: true });
					assert.ok(t.iceCandidates.length > 0, 'ICE-TCP candidates');
					assert.ok(
						t.iceCandidates.every((c) => c.protocol === 'tcp'),
						`only TCP candidates: ${JSON.stringify(t.iceCandidates)}`,
					);
					return t;
				},
				async (r) => {
					await checkMedia(r, 'webrtcserver-tcp');
					assert.equal(r.sendTransport.iceSelectedTuple?.protocol, 'tcp');
					assert.equal(r.recvTransport.iceSelectedTuple?.protocol, 'tcp');
				},
			);
		} finally {
			webRtcServer.close();
		}
	});
});
