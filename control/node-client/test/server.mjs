// Starts a real `shardsfu` binary for a test file: SHARDSFU_BIN, else ../../target/debug/shardsfu
// relative to the package. A free port, wait for /healthz, kill it after.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const HEALTHZ_TIMEOUT_MS = 30_000;

export function serverBinary() {
	return process.env.SHARDSFU_BIN ?? path.resolve(PACKAGE_ROOT, '../../target/debug/shardsfu');
}

function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.once('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

function healthz(port) {
	return new Promise((resolve) => {
		const req = http.get({ host: '127.0.0.1', port, path: '/healthz', timeout: 1000 }, (res) => {
			res.resume();
			resolve(res.statusCode === 200);
		});
		req.on('error', () => resolve(false));
		req.on('timeout', () => {
			req.destroy();
			resolve(false);
		});
	});
}

/**
 * Starts the server. `token`: started with --token. `args`: more flags.
 * Returns { url, port, token, child, output(), stop() }.
 */
export async function startServer({ token, args = [] } = {}) {
	const bin = serverBinary();
	if (!existsSync(bin)) {
		throw new Error(
			`shardsfu binary not found at ${bin}: build it (cargo build -p shardsfu-control) or set SHARDSFU_BIN`,
		);
	}
	const port = await freePort();
	const argv = ['--api-listen', `127.0.0.1:${port}`, ...(token ? ['--token', token] : []), ...args];
	const env = { ...process.env };
	delete env.SHARDSFU_TOKEN;
	const child = spawn(bin, argv, { stdio: ['ignore', 'pipe', 'pipe'], env });
	let output = '';
	const keep = (chunk) => {
		output = (output + chunk.toString()).slice(-20_000);
	};
	child.stdout.on('data', keep);
	child.stderr.on('data', keep);
	let exited = null;
	child.once('exit', (code, signal) => {
		exited = { code, signal };
	});
	const deadline = Date.now() + HEALTHZ_TIMEOUT_MS;
	while (!(await healthz(port))) {
		if (exited) {
			throw new Error(`shardsfu exited early (${JSON.stringify(exited)}): ${argv.join(' ')}\n${output}`);
		}
		if (Date.now() > deadline) {
			child.kill('SIGKILL');
			throw new Error(`shardsfu did not answer /healthz within ${HEALTHZ_TIMEOUT_MS} ms\n${output}`);
		}
		await new Promise((r) => setTimeout(r, 50));
	}
	return {
		url: `ws://127.0.0.1:${port}/`,
		port,
		token,
		child,
		output: () => output,
		async stop() {
			if (exited) return;
			const gone = new Promise((r) => child.once('exit', r));
			child.kill('SIGTERM');
			const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
			await gone;
			clearTimeout(timer);
		},
		/** Kills it at once (a crash, as far as clients can tell). */
		async kill() {
			if (exited) return;
			const gone = new Promise((r) => child.once('exit', r));
			child.kill('SIGKILL');
			await gone;
		},
	};
}

/** Resolves with the arguments of the next `event` on `emitter`, or rejects after `ms`. */
export function nextEvent(emitter, event, ms = 5000) {
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			emitter.off(event, on);
			reject(new Error(`no '${event}' within ${ms} ms`));
		}, ms);
		const on = (...args) => {
			clearTimeout(timer);
			resolve(args);
		};
		emitter.once(event, on);
	});
}

export const mediaCodecs = [
	{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
	{ kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
	{
		kind: 'video',
		mimeType: 'video/H264',
		clockRate: 90000,
		parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 },
	},
];

export const loopback = { protocol: 'udp', ip: '127.0.0.1' };

/** An opus producer's rtpParameters with one SSRC. */
export function opusRtpParameters(ssrc = 1111, payloadType = 100) {
	return {
		mid: 'a0',
		codecs: [{ mimeType: 'audio/opus', payloadType, clockRate: 48000, channels: 2, parameters: {}, rtcpFeedback: [] }],
		headerExtensions: [],
		encodings: [{ ssrc }],
		rtcp: { cname: 'shardsfu-client-test', reducedSize: true },
	};
}

export function vp8RtpParameters(ssrc = 2222, payloadType = 101) {
	return {
		codecs: [
			{
				mimeType: 'video/VP8',
				payloadType,
				clockRate: 90000,
				rtcpFeedback: [{ type: 'nack' }, { type: 'nack', parameter: 'pli' }, { type: 'ccm', parameter: 'fir' }],
			},
		],
		encodings: [{ ssrc }],
		rtcp: { cname: 'shardsfu-client-test-v' },
	};
}
