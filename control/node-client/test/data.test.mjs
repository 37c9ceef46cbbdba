// DataProducers and DataConsumers on DirectTransports: text and binary messages with their ppids,
// pause/resume, dataproducerclose, pipeToRouter with a dataProducerId, and what the server refuses.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as mediasoup from 'shardsfu-client';

import { loopback, mediaCodecs, nextEvent, startServer } from './server.mjs';

const { InvalidStateError, UnsupportedError } = mediasoup.types;

describe('data', () => {
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

	test('produceData / consumeData on DirectTransports: messages, pause, dataproducerclose', async () => {
		const sendTransport = await router.createDirectTransport();
		const recvTransport = await router.createDirectTransport();

		const newdataproducer = nextEvent(sendTransport.observer, 'newdataproducer');
		const dataProducer = await sendTransport.produceData({ label: 'chat', protocol: 'json', appData: { a: 1 } });
		assert.equal((await newdataproducer)[0], dataProducer);
		assert.ok(dataProducer instanceof mediasoup.types.DataProducer);
		assert.equal(typeof dataProducer.id, 'string');
		assert.equal(dataProducer.type, 'direct');
		assert.equal(dataProducer.label, 'chat');
		assert.equal(dataProducer.protocol, 'json');
		assert.equal(dataProducer.paused, false);
		assert.equal(dataProducer.sctpStreamParameters, undefined);
		assert.deepEqual(dataProducer.appData, { a: 1 });

		const newdataconsumer = nextEvent(recvTransport.observer, 'newdataconsumer');
		const dataConsumer = await recvTransport.consumeData({ dataProducerId: dataProducer.id });
		assert.equal((await newdataconsumer)[0], dataConsumer);
		assert.ok(dataConsumer instanceof mediasoup.types.DataConsumer);
		assert.equal(dataConsumer.dataProducerId, dataProducer.id);
		assert.equal(dataConsumer.type, 'direct');
		assert.equal(dataConsumer.label, 'chat');
		assert.equal(dataConsumer.protocol, 'json');
		assert.equal(dataConsumer.paused, false);
		assert.equal(dataConsumer.dataProducerPaused, false);
		assert.deepEqual(dataConsumer.subchannels, []);

		// A string: ppid 51, the same bytes.
		let message = nextEvent(dataConsumer, 'message');
		dataProducer.send('hello');
		let [payload, ppid] = await message;
		assert.ok(Buffer.isBuffer(payload));
		assert.equal(payload.toString('utf8'), 'hello');
		assert.equal(ppid, 51);

		message = nextEvent(dataConsumer, 'message');
		dataProducer.send('héllo ✓');
		[payload, ppid] = await message;
		assert.deepEqual(payload, Buffer.from('héllo ✓', 'utf8'));
		assert.equal(ppid, 51);

		// A Buffer: ppid 53, the same bytes.
		const binary = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff]);
		message = nextEvent(dataConsumer, 'message');
		dataProducer.send(binary);
		[payload, ppid] = await message;
		assert.deepEqual(payload, binary);
		assert.equal(ppid, 53);

		const [producerStats] = await dataProducer.getStats();
		assert.equal(producerStats.type, 'data-producer');
		assert.equal(producerStats.messagesReceived, 3);
		const [consumerStats] = await dataConsumer.getStats();
		assert.equal(consumerStats.type, 'data-consumer');
		assert.equal(consumerStats.messagesSent, 3);
		assert.equal((await dataProducer.dump()).id, dataProducer.id);
		assert.equal((await dataConsumer.dump()).dataProducerId, dataProducer.id);

		// Subchannels, buffered amount.
		await dataConsumer.setSubchannels([5, 1, 5]);
		assert.deepEqual(dataConsumer.subchannels, [1, 5]);
		await dataConsumer.addSubchannel(3);
		assert.deepEqual(dataConsumer.subchannels, [1, 3, 5]);
		await dataConsumer.removeSubchannel(1);
		assert.deepEqual(dataConsumer.subchannels, [3, 5]);
		await dataConsumer.setSubchannels([]);
		assert.equal(await dataConsumer.getBufferedAmount(), 0);
		await dataConsumer.setBufferedAmountLowThreshold(1024);
		assert.equal((await dataConsumer.dump()).bufferedAmountLowThreshold, 1024);

		// Pause: the data consumer hears dataproducerpause (and its observer 'pause').
		const producerPause = nextEvent(dataConsumer, 'dataproducerpause');
		const consumerObserverPause = nextEvent(dataConsumer.observer, 'pause');
		const observerPause = nextEvent(dataProducer.observer, 'pause');
		await dataProducer.pause();
		await observerPause;
		await producerPause;
		await consumerObserverPause;
		assert.equal(dataProducer.paused, true);
		assert.equal(dataConsumer.dataProducerPaused, true);
		const producerResume = nextEvent(dataConsumer, 'dataproducerresume');
		await dataProducer.resume();
		await producerResume;
		assert.equal(dataConsumer.dataProducerPaused, false);

		// The data consumer's own pause gates its messages.
		await dataConsumer.pause();
		assert.equal(dataConsumer.paused, true);
		let got = 0;
		const count = () => got++;
		dataConsumer.on('message', count);
		dataProducer.send('dropped');
		await new Promise((r) => setTimeout(r, 200));
		assert.equal(got, 0, 'no message while the data consumer is paused');
		dataConsumer.off('message', count);
		await dataConsumer.resume();
		message = nextEvent(dataConsumer, 'message');
		dataProducer.send('again');
		[payload] = await message;
		assert.equal(payload.toString(), 'again');

		// dataConsumer.send is not in the engine.
		await assert.rejects(dataConsumer.send('back'), UnsupportedError);

		// Closing the data producer closes its consumer with 'dataproducerclose'.
		const producerClose = nextEvent(dataConsumer, 'dataproducerclose');
		const consumerObserverClose = nextEvent(dataConsumer.observer, 'close');
		dataProducer.close();
		assert.equal(dataProducer.closed, true);
		await producerClose;
		await consumerObserverClose;
		assert.equal(dataConsumer.closed, true);
		await assert.rejects(dataConsumer.dump(), InvalidStateError);
		assert.throws(() => dataProducer.send('late'), InvalidStateError);

		sendTransport.close();
		recvTransport.close();
	});

	test('transport close: its data producers and data consumers hear transportclose', async () => {
		const t1 = await router.createDirectTransport();
		const t2 = await router.createDirectTransport();
		const dataProducer = await t1.produceData();
		const dataConsumer = await t2.consumeData({ dataProducerId: dataProducer.id });
		const consumerTransportClose = nextEvent(dataConsumer, 'transportclose');
		t2.close();
		await consumerTransportClose;
		assert.equal(dataConsumer.closed, true);
		const producerTransportClose = nextEvent(dataProducer, 'transportclose');
		t1.close();
		await producerTransportClose;
		assert.equal(dataProducer.closed, true);
	});

	test('data on a PlainTransport and dataConsumer.send are UnsupportedError', async () => {
		const plain = await router.createPlainTransport({ listenInfo: loopback });
		// Locally, as mediasoup: SCTP transports need sctpStreamParameters.
		await assert.rejects(plain.produceData({}), TypeError);
		await assert.rejects(plain.produceData({ sctpStreamParameters: { streamId: 0 } }), UnsupportedError);
		const direct = await router.createDirectTransport();
		const dataProducer = await direct.produceData();
		await assert.rejects(plain.consumeData({ dataProducerId: dataProducer.id }), UnsupportedError);
		await assert.rejects(direct.consumeData({}), TypeError);
		plain.close();
		direct.close();
	});

	test('pipeToRouter with a dataProducerId delivers to a data consumer in the other router', async () => {
		const router2 = await worker.createRouter({ mediaCodecs });
		const t1 = await router.createDirectTransport();
		const t2 = await router2.createDirectTransport();
		const dataProducer = await t1.produceData({ label: 'piped' });

		const { pipeDataConsumer, pipeDataProducer, pipeConsumer, pipeProducer } = await router.pipeToRouter({
			dataProducerId: dataProducer.id,
			router: router2,
		});
		assert.equal(pipeConsumer, undefined);
		assert.equal(pipeProducer, undefined);
		assert.ok(pipeDataConsumer instanceof mediasoup.types.DataConsumer);
		assert.ok(pipeDataProducer instanceof mediasoup.types.DataProducer);
		assert.equal(pipeDataConsumer.dataProducerId, dataProducer.id);
		assert.equal(pipeDataProducer.id, dataProducer.id, 'keepId by default');
		assert.equal(pipeDataProducer.label, 'piped');

		const dataConsumer = await t2.consumeData({ dataProducerId: dataProducer.id });
		assert.equal(dataConsumer.label, 'piped');
		let message = nextEvent(dataConsumer, 'message');
		dataProducer.send('across');
		let [payload, ppid] = await message;
		assert.equal(payload.toString('utf8'), 'across');
		assert.equal(ppid, 51);
		message = nextEvent(dataConsumer, 'message');
		dataProducer.send(Buffer.from([9, 8, 7]));
		[payload, ppid] = await message;
		assert.deepEqual(payload, Buffer.from([9, 8, 7]));
		assert.equal(ppid, 53);

		// The source and the pipe data producer share an id; each is addressed in its own router.
		assert.equal((await dataProducer.dump()).label, 'piped');
		assert.equal((await pipeDataProducer.dump()).id, dataProducer.id);

		// Pausing the source pauses the pipe data producer (told by the server) and the consumer
		// behind it hears dataproducerpause.
		const pipePause = nextEvent(pipeDataProducer.observer, 'pause');
		const consumerPause = nextEvent(dataConsumer, 'dataproducerpause');
		await dataProducer.pause();
		await pipePause;
		await consumerPause;
		assert.equal(pipeDataProducer.paused, true);
		const pipeResume = nextEvent(pipeDataProducer.observer, 'resume');
		const consumerResume = nextEvent(dataConsumer, 'dataproducerresume');
		await dataProducer.resume();
		await pipeResume;
		await consumerResume;

		// Closing the source closes the pipe, the pipe data producer, and the consumer in router2.
		const consumerClose = nextEvent(dataConsumer, 'dataproducerclose');
		const pipeConsumerClose = nextEvent(pipeDataConsumer, 'dataproducerclose');
		const pipeProducerClose = nextEvent(pipeDataProducer, 'transportclose');
		dataProducer.close();
		await consumerClose;
		await pipeConsumerClose;
		await pipeProducerClose;
		assert.equal(pipeDataProducer.closed, true);
		router2.close();
		t1.close();
	});
});
