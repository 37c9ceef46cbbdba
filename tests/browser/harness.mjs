// What a browser test needs around the SFU: the bundle of page.js, a tiny HTTP server for it on
// 127.0.0.1 (getUserMedia needs a secure context; http://127.0.0.1 is one), headless Chromium,
// and a "room" that signals between the pages and shardsfu-client the way a mediasoup app does.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as esbuild from 'esbuild';
import { chromium } from 'playwright-core';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
const BUNDLE = path.join(HERE, 'build', 'page.bundle.js');

/** How long media may take to decode once both pages are set up. */
export const MEDIA_TIMEOUT_MS = 20_000;
const POLL_MS = 250;

/** Bundles page.js (mediasoup-client included) for the browser. */
export async function bundle() {
	await esbuild.build({
		entryPoints: [path.join(HERE, 'page.js')],
		bundle: true,
		format: 'iife',
		platform: 'browser',
		target: 'es2022',
		outfile: BUNDLE,
		logLevel: 'warning',
	});
}

/** Serves an empty page with the bundle on 127.0.0.1; returns { url, close() }. */
export async function serveBundle() {
	const js = await readFile(BUNDLE);
	const html = '<!doctype html><meta charset="utf-8"><title>shardsfu</title><script src="/page.bundle.js"></script>';
	const server = http.createServer((req, res) => {
		if (req.url === '/page.bundle.js') {
			res.writeHead(200, { 'content-type': 'text/javascript' });
			res.end(js);
		} else if (req.url === '/') {
			res.writeHead(200, { 'content-type': 'text/html' });
			res.end(html);
		} else if (req.url === '/favicon.ico') {
			res.writeHead(204);
			res.end();
		} else {
			res.writeHead(404);
			res.end();
		}
	});
	await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
	return {
		url: `http://127.0.0.1:${server.address().port}/`,
		close: () => new Promise((resolve) => server.close(resolve)),
	};
}

/** Headless Chromium with fake camera and microphone, on a fresh profile; returns { browser, close() }. */
export async function launchChromium() {
	const userDataDir = await mkdtemp(path.join(os.tmpdir(), 'shardsfu-chromium-'));
	const context = await chromium.launchPersistentContext(userDataDir, {
		executablePath: CHROMIUM,
		headless: true,
		args: [
			'--headless',
			'--no-sandbox',
			'--disable-gpu',
			'--disable-quic',
			'--no-first-run',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-sync',
			'--use-fake-device-for-media-stream',
			'--use-fake-ui-for-media-stream',
		],
	});
	return {
		context,
		async close() {
			await context.close();
			await rm(userDataDir, { recursive: true, force: true });
		},
	};
}

/**
 * Opens a page of the app. Its `window.signal(method, data)` calls `handlers[method](data)` here.
 * Console lines and page errors are kept in `page.log` for diagnostics.
 */
export async function openPage(context, url, name, handlers) {
	const page = await context.newPage();
	page.log = [];
	page.on('console', (m) => page.log.push(`[${name}] ${m.type()}: ${m.text()}`));
	page.on('pageerror', (e) => page.log.push(`[${name}] pageerror: ${e.message}`));
	await page.exposeFunction('signal', async (method, data) => {
		const handler = handlers[method];
		if (!handler) throw new Error(`no signal handler for ${method}`);
		return handler(data);
	});
	await page.goto(url);
	await page.waitForFunction(() => window.app !== undefined);
	return page;
}

/** The transport data mediasoup-client's createSendTransport/createRecvTransport take. */
export function transportInfo(t) {
	return { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters };
}

/**
 * One publisher page and one subscriber page in `router`: the publisher produces its fake camera
 * (and microphone with `audio`), the subscriber consumes every producer, as mediasoup's demos do
 * (consume paused, resume once the browser has its consumer). `createTransport()` makes the
 * server-side WebRtcTransports. Returns { pub, sub, transports, consumers, diagnostics() }.
 */
export async function publishAndConsume({ context, url, router, createTransport, audio }) {
	const transports = new Map();
	const producers = [];
	const consumers = [];
	const connect = async ({ transportId, dtlsParameters }) => {
		await transports.get(transportId).connect({ dtlsParameters });
	};
	const produce = async ({ transportId, kind, rtpParameters, appData }) => {
		const producer = await transports.get(transportId).produce({ kind, rtpParameters, appData });
		producers.push(producer);
		return { id: producer.id };
	};

	const pub = await openPage(context, url, 'pub', { connect, produce });
	const sub = await openPage(context, url, 'sub', { connect, produce });
	const diagnostics = () => collectDiagnostics({ pages: [pub, sub], transports, producers, consumers });

	await pub.evaluate((caps) => window.app.load(caps), router.rtpCapabilities);
	const subCaps = await sub.evaluate((caps) => window.app.load(caps), router.rtpCapabilities);

	const sendTransport = await createTransport();
	transports.set(sendTransport.id, sendTransport);
	await pub.evaluate((data) => window.app.createSendTransport(data), transportInfo(sendTransport));
	const recvTransport = await createTransport();
	transports.set(recvTransport.id, recvTransport);
	await sub.evaluate((data) => window.app.createRecvTransport(data), transportInfo(recvTransport));

	const produced = await pub.evaluate((a) => window.app.publish({ audio: a }), audio);
	for (const { id: producerId, kind } of produced) {
		const consumer = await recvTransport.consume({ producerId, rtpCapabilities: subCaps, paused: true });
		await sub.evaluate((c) => window.app.consume(c), {
			id: consumer.id,
			producerId,
			kind: consumer.kind,
			rtpParameters: consumer.rtpParameters,
		});
		await consumer.resume();
		consumers.push(consumer);
		assert(consumer.kind === kind, `consumer kind ${consumer.kind} for a ${kind} producer`);
	}
	return { pub, sub, sendTransport, recvTransport, consumers, diagnostics };
}

function assert(ok, message) {
	if (!ok) throw new Error(message);
}

/**
 * Polls the subscriber's inbound-rtp stats of `consumer` until `done(stats)` holds; returns the
 * last stats. On timeout, throws with everything that says where media stopped.
 */
export async function waitInbound(room, consumer, done, what) {
	const deadline = Date.now() + MEDIA_TIMEOUT_MS;
	let stats = null;
	while (Date.now() < deadline) {
		stats = await room.sub.evaluate((id) => window.app.inbound(id), consumer.id);
		if (stats && done(stats)) return stats;
		await new Promise((r) => setTimeout(r, POLL_MS));
	}
	throw new Error(
		`${what}: not reached within ${MEDIA_TIMEOUT_MS} ms; last inbound-rtp: ${JSON.stringify(stats)}\n` +
			(await room.diagnostics()),
	);
}

/** Server-side dumps and stats, both pages' transport stats and console: where media stopped. */
export async function collectDiagnostics({ pages, transports, producers = [], consumers = [] }) {
	const parts = [];
	for (const o of [...producers, ...consumers]) {
		const stats = await o.getStats().catch((e) => `getStats failed: ${e.message}`);
		parts.push(`server ${o.constructor.name} ${o.id} (${o.kind}, paused=${o.paused}): ${JSON.stringify(stats)}`);
	}
	for (const t of transports.values()) {
		const dump = await t.dump().catch((e) => `dump failed: ${e.message}`);
		const stats = await t.getStats().catch((e) => `getStats failed: ${e.message}`);
		parts.push(
			`server transport ${t.id}: iceState=${t.iceState} dtlsState=${t.dtlsState} ` +
				`selected=${JSON.stringify(t.iceSelectedTuple)}\n  dump: ${JSON.stringify(dump)}\n  stats: ${JSON.stringify(stats)}`,
		);
	}
	for (const page of pages) {
		const stats = await page
			.evaluate(async () => ({ transports: await window.app.transportStats(), outbound: await window.app.outbound() }))
			.catch((e) => `page stats failed: ${e.message}`);
		parts.push(`page stats: ${JSON.stringify(stats)}`);
		parts.push(...page.log);
	}
	return parts.join('\n');
}
