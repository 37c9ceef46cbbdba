// Workers: createWorker (explicit URL and env), observers, close, the token, connection loss.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as mediasoup from 'shardsfu-client';

import { mediaCodecs, nextEvent, startServer } from './server.mjs';

const { InvalidStateError } = mediasoup.types;

describe('worker', () => {
	let server;
	before(async () => {
		server = await startServer();
	});
	after(async () => {
		await server?.stop();
	});

	test('createWorker with an explicit url: pid, observer newworker, close', async () => {
		const [worker] = await Promise.all([
			mediasoup.createWorker({ url: server.url, logLevel: 'warn', appData: { foo: 1 } }),
			nextEvent(mediasoup.observer, 'newworker').then(([w]) => w),
		]);
		assert.ok(worker instanceof mediasoup.types.Worker);
		assert.equal(typeof worker.pid, 'number');
		assert.equal(typeof worker.id, 'string');
		assert.equal(worker.closed, false);
		assert.equal(worker.died, false);
		assert.deepEqual(worker.appData, { foo: 1 });
		worker.appData.bar = 2;
		worker.appData = { baz: 3 };
		assert.deepEqual(worker.appData, { baz: 3 });

		const usage = await worker.getResourceUsage();
		assert.equal(typeof usage, 'object');
		const dump = await worker.dump();
		assert.equal(typeof dump, 'object');

		const closed = nextEvent(worker.observer, 'close');
		worker.close();
		await closed;
		assert.equal(worker.closed, true);
		assert.equal(worker.died, false);
		await assert.rejects(worker.createRouter({ mediaCodecs }), InvalidStateError);
		await assert.rejects(worker.dump(), InvalidStateError);
		worker.close(); // Idempotent.
	});

	test('createWorker uses SHARDSFU_URL', async () => {
		const saved = process.env.SHARDSFU_URL;
		process.env.SHARDSFU_URL = server.url;
		try {
			const worker = await mediasoup.createWorker();
			const router = await worker.createRouter({ mediaCodecs });
			assert.equal(typeof router.id, 'string');
			worker.close();
		} finally {
			if (saved === undefined) delete process.env.SHARDSFU_URL;
			else process.env.SHARDSFU_URL = saved;
		}
	});

	test('getSupportedRtpCapabilities asks the server', async () => {
		const caps = await mediasoup.getSupportedRtpCapabilities({ url: server.url });
		assert.ok(Array.isArray(caps.codecs) && caps.codecs.length > 0);
		assert.ok(caps.codecs.some((c) => c.mimeType.toLowerCase() === 'audio/opus'));
		assert.ok(caps.codecs.some((c) => c.mimeType.toLowerCase() === 'video/vp8'));
		assert.ok(Array.isArray(caps.headerExtensions));
	});

	test('worker.close cascades: routers and transports emit observer close', async () => {
		const worker = await mediasoup.createWorker({ url: server.url });
		const router = await worker.createRouter({ mediaCodecs });
		const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' } });
		let routerWorkerClose = 0;
		router.on('workerclose', () => routerWorkerClose++);
		const events = [];
		router.observer.on('close', () => events.push('router'));
		transport.observer.on('close', () => events.push('transport'));
		transport.on('routerclose', () => events.push('transport routerclose'));
		worker.close();
		assert.deepEqual(events, ['transport routerclose', 'transport', 'router']);
		assert.equal(routerWorkerClose, 1);
		assert.ok(router.closed && transport.closed);
	});
});

describe('token', () => {
	let server;
	const token = 'sekrit-token-123';
	before(async () => {
		server = await startServer({ token });
	});
	after(async () => {
		await server?.stop();
	});

	test('without the token the connection is refused (HTTP 401)', async () => {
		await assert.rejects(mediasoup.createWorker({ url: server.url }), /401/);
		await assert.rejects(mediasoup.createWorker({ url: server.url, token: 'wrong' }), /401/);
		await assert.rejects(mediasoup.getSupportedRtpCapabilities({ url: server.url }), /401/);
	});

	test('with the token (option or SHARDSFU_TOKEN) it works', async () => {
		const worker = await mediasoup.createWorker({ url: server.url, token });
		await worker.createRouter({ mediaCodecs });
		worker.close();

		const saved = process.env.SHARDSFU_TOKEN;
		process.env.SHARDSFU_TOKEN = token;
		try {
			const worker2 = await mediasoup.createWorker({ url: server.url });
			worker2.close();
			const caps = await mediasoup.getSupportedRtpCapabilities({ url: server.url });
			assert.ok(caps.codecs.length > 0);
		} finally {
			if (saved === undefined) delete process.env.SHARDSFU_TOKEN;
			else process.env.SHARDSFU_TOKEN = saved;
		}
	});
});

describe('connection loss', () => {
	test("the server going away makes the worker emit 'died' and close everything", async () => {
		const server = await startServer();
		try {
			const worker = await mediasoup.createWorker({ url: server.url });
			const router = await worker.createRouter({ mediaCodecs });
			const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' } });
			const routerClosed = nextEvent(router.observer, 'close');
			const transportClosed = nextEvent(transport.observer, 'close');
			const died = nextEvent(worker, 'died');
			await server.kill();
			const [error] = await died;
			assert.ok(error instanceof Error);
			await routerClosed;
			await transportClosed;
			assert.equal(worker.died, true);
			assert.equal(worker.closed, true);
			assert.equal(router.closed, true);
			await assert.rejects(router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' } }), InvalidStateError);
		} finally {
			await server.stop();
		}
	});
});
