// What needs no server: parseScalabilityMode, version, types, the CJS/ESM entry points.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import * as mediasoup from 'shardsfu-client';

const require = createRequire(import.meta.url);

test('parseScalabilityMode works like mediasoup', () => {
	const { parseScalabilityMode } = mediasoup;
	assert.deepEqual(parseScalabilityMode('L1T3'), { spatialLayers: 1, temporalLayers: 3, ksvc: false });
	assert.deepEqual(parseScalabilityMode('L3T2_KEY'), { spatialLayers: 3, temporalLayers: 2, ksvc: true });
	assert.deepEqual(parseScalabilityMode('S2T3'), { spatialLayers: 2, temporalLayers: 3, ksvc: false });
	assert.deepEqual(parseScalabilityMode('L12T10'), { spatialLayers: 12, temporalLayers: 10, ksvc: false });
	assert.deepEqual(parseScalabilityMode('S3T3_KEY_SHIFT'), { spatialLayers: 3, temporalLayers: 3, ksvc: true });
	for (const bad of [undefined, '', 'foo', 'L0T3', 'T3', 'L1', 'X1T1']) {
		assert.deepEqual(parseScalabilityMode(bad), { spatialLayers: 1, temporalLayers: 1, ksvc: false }, String(bad));
	}
});

test('version is the package version', () => {
	assert.equal(mediasoup.version, require('../package.json').version);
});

test('types carries the classes and mediasoup error classes', () => {
	const { types } = mediasoup;
	for (const name of [
		'Worker',
		'Router',
		'WebRtcServer',
		'WebRtcTransport',
		'PlainTransport',
		'PipeTransport',
		'DirectTransport',
		'Producer',
		'Consumer',
		'DataProducer',
		'DataConsumer',
		'ActiveSpeakerObserver',
		'AudioLevelObserver',
	]) {
		assert.equal(typeof types[name], 'function', name);
	}
	const e = new types.InvalidStateError('x');
	assert.ok(e instanceof Error);
	assert.equal(e.name, 'InvalidStateError');
	assert.equal(new types.UnsupportedError('y').name, 'UnsupportedError');
	assert.equal(types.UnsupportedError, mediasoup.UnsupportedError);
});

test('require() and import share one module', () => {
	const cjs = require('shardsfu-client');
	assert.equal(cjs.createWorker, mediasoup.createWorker);
	assert.equal(cjs.observer, mediasoup.observer);
	assert.equal(cjs.types.Router, mediasoup.types.Router);
	assert.equal(mediasoup.default.version, mediasoup.version);
	// index.mjs lists the names by hand: it must list them all.
	for (const name of Object.keys(cjs)) assert.equal(mediasoup[name], cjs[name], `ESM export ${name}`);
});

test('createWorker validates settings before connecting', async () => {
	await assert.rejects(mediasoup.createWorker({ appData: 'nope' }), TypeError);
	await assert.rejects(mediasoup.createWorker({ logLevel: 'loud' }), TypeError);
	await assert.rejects(mediasoup.createWorker({ url: 'http://127.0.0.1:1/' }), TypeError);
});

test('createWorker against nothing rejects with an Error naming the URL', async () => {
	await assert.rejects(mediasoup.createWorker({ url: 'ws://127.0.0.1:1/' }), (err) => {
		assert.match(err.message, /ws:\/\/127\.0\.0\.1:1\//);
		return true;
	});
});
