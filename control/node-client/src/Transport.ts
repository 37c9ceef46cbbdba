import type { Channel } from './channel';
import { AppData, checkAppData, checkOpen, sendAndForget, withDefaults } from './common';
import { Consumer, ConsumerData, ConsumerOptions } from './Consumer';
import { DataConsumer, DataConsumerData, DataConsumerOptions } from './DataConsumer';
import { DataProducer, DataProducerData, DataProducerOptions } from './DataProducer';
import { EnhancedEventEmitter, Events } from './enhancedEvents';
import { Producer, ProducerData, ProducerOptions } from './Producer';

export type TransportListenInfo = {
	protocol: 'udp' | 'tcp';
	ip: string;
	announcedAddress?: string;
	/** @deprecated mediasoup's older name of announcedAddress. */
	announcedIp?: string;
	port?: number;
	portRange?: { min: number; max: number };
	flags?: { ipv6Only?: boolean; udpReusePort?: boolean };
	sendBufferSize?: number;
	recvBufferSize?: number;
};

/** @deprecated mediasoup's older listen address form. */
export type TransportListenIp = { ip: string; announcedIp?: string };

export type TransportProtocol = 'udp' | 'tcp';

export type TransportTuple = {
	localAddress: string;
	/** @deprecated mediasoup's older name of localAddress. */
	localIp?: string;
	localPort: number;
	remoteIp?: string;
	remotePort?: number;
	protocol: TransportProtocol;
};

export type TransportTraceEventType = 'probation' | 'bwe';

export type TransportTraceEventData = {
	type: TransportTraceEventType;
	timestamp: number;
	direction: 'in' | 'out';
	info: any;
};

export type TransportType = 'webrtc' | 'plain' | 'pipe' | 'direct';

export type TransportEvents = {
	routerclose: [];
	listenserverclose: [];
	trace: [TransportTraceEventData];
	listenererror: [string, Error];
};

export type TransportObserverEvents = {
	close: [];
	newproducer: [Producer];
	newconsumer: [Consumer];
	newdataproducer: [DataProducer];
	newdataconsumer: [DataConsumer];
	trace: [TransportTraceEventData];
};

/** @internal What a transport shares with its router. */
export type RouterContext = {
	routerId: string;
	producers: Map<string, Producer>;
	dataProducers: Map<string, DataProducer>;
	onTransportClose: (transport: Transport) => void;
};

/** @internal */
export type TransportConstructorOptions<TransportAppData> = {
	channel: Channel;
	data: { id: string } & Record<string, any>;
	appData?: TransportAppData;
	router: RouterContext;
};

type AnyEmitter = { safeEmit(event: string, ...args: unknown[]): boolean };

/** What every transport kind has: produce/consume, close cascades, events. */
export abstract class Transport<
	TransportAppData extends AppData = AppData,
	E extends Events = TransportEvents,
	O extends Events = TransportObserverEvents,
> extends EnhancedEventEmitter<E> {
	/** @internal */
	protected readonly channel: Channel;
	/** @internal */
	protected readonly data: { id: string } & Record<string, any>;
	readonly #router: RouterContext;
	#closed = false;
	#appData: TransportAppData;
	readonly #observer = new EnhancedEventEmitter<O>();
	readonly #producers = new Map<string, Producer>();
	readonly #consumers = new Map<string, Consumer>();
	readonly #dataProducers = new Map<string, DataProducer>();
	readonly #dataConsumers = new Map<string, DataConsumer>();

	/** @internal */
	constructor({ channel, data, appData, router }: TransportConstructorOptions<TransportAppData>) {
		super();
		this.channel = channel;
		this.data = data;
		this.#router = router;
		this.#appData = appData ?? ({} as TransportAppData);
		channel.subscribe(data.id, (event, params) => this.#onNotification(event, params));
	}

	abstract get type(): TransportType;

	get id(): string {
		return this.data.id;
	}

	get closed(): boolean {
		return this.#closed;
	}

	get appData(): TransportAppData {
		return this.#appData;
	}

	set appData(appData: TransportAppData) {
		this.#appData = appData;
	}

	get observer(): EnhancedEventEmitter<O> {
		return this.#observer;
	}

	/** @internal Untyped emit for events that the subclasses' event maps all contain. */
	protected emitEvent(event: string, ...args: unknown[]): void {
		(this as unknown as AnyEmitter).safeEmit(event, ...args);
	}

	/** @internal */
	protected emitObserver(event: string, ...args: unknown[]): void {
		(this.#observer as unknown as AnyEmitter).safeEmit(event, ...args);
	}

	close(): void {
		if (this.#closed) return;
		this.#closeLocally();
		sendAndForget(this.channel.request('transport.close', { transportId: this.id }));
		this.emitObserver('close');
	}

	/** @internal The router closed (by the client or the server). */
	routerClosed(): void {
		if (this.#closed) return;
		this.#closeLocally();
		this.emitEvent('routerclose');
		this.emitObserver('close');
	}

	/** @internal The WebRtcServer this transport listens on closed. */
	listenServerClosed(): void {
		if (this.#closed) return;
		this.#closeLocally();
		this.emitEvent('listenserverclose');
		this.emitObserver('close');
	}

	#closeLocally(): void {
		this.#closed = true;
		this.channel.unsubscribe(this.id);
		this.onClosed();
		// mediasoup's order: producers, consumers, data producers, data consumers; each says 'transportclose'.
		for (const producer of [...this.#producers.values()]) producer.transportClosed();
		for (const consumer of [...this.#consumers.values()]) consumer.transportClosed();
		for (const dataProducer of [...this.#dataProducers.values()]) dataProducer.transportClosed();
		for (const dataConsumer of [...this.#dataConsumers.values()]) dataConsumer.transportClosed();
		this.#router.onTransportClose(this as unknown as Transport);
	}

	/** @internal Subclasses reset their state (iceState 'closed', ...). */
	protected onClosed(): void {}

	/** @internal Subclasses handle their own notifications; true when handled. */
	protected handleNotification(_event: string, _params: Record<string, any>): boolean {
		return false;
	}

	async dump(): Promise<Record<string, any>> {
		checkOpen(this.#closed, 'Transport');
		return this.channel.request('transport.dump', { transportId: this.id });
	}

	async getStats(): Promise<Record<string, any>[]> {
		checkOpen(this.#closed, 'Transport');
		return this.channel.request('transport.getStats', { transportId: this.id });
	}

	abstract connect(params: Record<string, unknown>): Promise<void>;

	async setMaxIncomingBitrate(bitrate: number): Promise<void> {
		checkOpen(this.#closed, 'Transport');
		await this.channel.request('transport.setMaxIncomingBitrate', { transportId: this.id, bitrate });
	}

	async setMaxOutgoingBitrate(bitrate: number): Promise<void> {
		checkOpen(this.#closed, 'Transport');
		await this.channel.request('transport.setMaxOutgoingBitrate', { transportId: this.id, bitrate });
	}

	async setMinOutgoingBitrate(bitrate: number): Promise<void> {
		checkOpen(this.#closed, 'Transport');
		await this.channel.request('transport.setMinOutgoingBitrate', { transportId: this.id, bitrate });
	}

	async enableTraceEvent(types: TransportTraceEventType[] = []): Promise<void> {
		checkOpen(this.#closed, 'Transport');
		if (!Array.isArray(types)) throw new TypeError('types must be an array');
		await this.channel.request('transport.enableTraceEvent', { transportId: this.id, types });
	}

	async produce<ProducerAppData extends AppData = AppData>(
		options: ProducerOptions<ProducerAppData>,
	): Promise<Producer<ProducerAppData>> {
		checkOpen(this.#closed, 'Transport');
		const { id, kind, rtpParameters, paused = false, keyFrameRequestDelay, appData } = options ?? ({} as never);
		if (id !== undefined && this.#router.producers.has(id)) {
			throw new TypeError(`a Producer with same id "${id}" already exists`);
		}
		if (kind !== 'audio' && kind !== 'video') throw new TypeError(`invalid kind "${String(kind)}"`);
		if (!rtpParameters || typeof rtpParameters !== 'object') throw new TypeError('missing rtpParameters');
		if (!Array.isArray(rtpParameters.codecs)) throw new TypeError('missing rtpParameters.codecs');
		checkAppData(appData);
		const data = await this.channel.request<ProducerData>('transport.produce', {
			transportId: this.id,
			id,
			kind,
			rtpParameters,
			paused,
			keyFrameRequestDelay,
			appData,
		});
		const producer = new Producer<ProducerAppData>({
			channel: this.channel,
			routerId: this.#router.routerId,
			data: withDefaults({ kind, rtpParameters, paused }, data),
			appData,
			direct: this.type === 'direct',
			onClose: (p) => {
				this.#producers.delete(p.id);
				this.#router.producers.delete(p.id);
			},
		});
		this.#producers.set(producer.id, producer as Producer);
		this.#router.producers.set(producer.id, producer as Producer);
		if (this.#closed) {
			producer.transportClosed();
		} else {
			this.emitObserver('newproducer', producer);
		}
		return producer;
	}

	async consume<ConsumerAppData extends AppData = AppData>(
		options: ConsumerOptions<ConsumerAppData>,
	): Promise<Consumer<ConsumerAppData>> {
		checkOpen(this.#closed, 'Transport');
		const {
			producerId,
			rtpCapabilities,
			paused = false,
			mid,
			preferredLayers,
			ignoreDtx = false,
			enableRtx,
			pipe = false,
			appData,
		} = options ?? ({} as never);
		if (!producerId || typeof producerId !== 'string') throw new TypeError('missing producerId');
		if (this.type !== 'pipe' && !pipe && (!rtpCapabilities || typeof rtpCapabilities !== 'object')) {
			throw new TypeError('missing rtpCapabilities');
		}
		if (mid !== undefined && (typeof mid !== 'string' || mid.length === 0)) {
			throw new TypeError('if given, mid must be non empty string');
		}
		checkAppData(appData);
		const data = await this.channel.request<ConsumerData>('transport.consume', {
			transportId: this.id,
			producerId,
			rtpCapabilities,
			paused,
			mid,
			preferredLayers,
			ignoreDtx,
			enableRtx,
			pipe,
			appData,
		});
		const consumer = this.#adoptConsumer<ConsumerAppData>(data, appData, producerId);
		return consumer;
	}

	/** @internal Wraps a consume answer (also pipeToRouter's pipeConsumer) in a Consumer of this transport. */
	adoptConsumer(data: ConsumerData): Consumer {
		return this.#adoptConsumer(data, undefined, data.producerId);
	}

	#adoptConsumer<ConsumerAppData extends AppData>(
		data: ConsumerData,
		appData: ConsumerAppData | undefined,
		producerId: string,
	): Consumer<ConsumerAppData> {
		const consumer = new Consumer<ConsumerAppData>({
			channel: this.channel,
			data: withDefaults({ producerId }, data),
			appData,
			onClose: (c) => this.#consumers.delete(c.id),
		});
		this.#consumers.set(consumer.id, consumer as Consumer);
		if (this.#closed) {
			consumer.transportClosed();
		} else {
			this.emitObserver('newconsumer', consumer);
		}
		return consumer;
	}

	async produceData<DataProducerAppData extends AppData = AppData>(
		options: DataProducerOptions<DataProducerAppData> = {},
	): Promise<DataProducer<DataProducerAppData>> {
		checkOpen(this.#closed, 'Transport');
		const { id, sctpStreamParameters, label = '', protocol = '', paused = false, appData } = options;
		if (id !== undefined && this.#router.dataProducers.has(id)) {
			throw new TypeError(`a DataProducer with same id "${id}" already exists`);
		}
		if (this.type !== 'direct' && (!sctpStreamParameters || typeof sctpStreamParameters !== 'object')) {
			throw new TypeError('missing sctpStreamParameters');
		}
		checkAppData(appData);
		const data = await this.channel.request<DataProducerData>('transport.produceData', {
			transportId: this.id,
			id,
			sctpStreamParameters: this.type === 'direct' ? undefined : sctpStreamParameters,
			label,
			protocol,
			paused,
			appData,
		});
		const dataProducer = new DataProducer<DataProducerAppData>({
			channel: this.channel,
			routerId: this.#router.routerId,
			data: withDefaults({ type: this.type === 'direct' ? 'direct' : 'sctp', sctpStreamParameters, label, protocol, paused }, data),
			appData,
			onClose: (p) => {
				this.#dataProducers.delete(p.id);
				this.#router.dataProducers.delete(p.id);
			},
		});
		this.#dataProducers.set(dataProducer.id, dataProducer as DataProducer);
		this.#router.dataProducers.set(dataProducer.id, dataProducer as DataProducer);
		if (this.#closed) dataProducer.transportClosed();
		else this.emitObserver('newdataproducer', dataProducer);
		return dataProducer;
	}

	async consumeData<DataConsumerAppData extends AppData = AppData>(
		options: DataConsumerOptions<DataConsumerAppData>,
	): Promise<DataConsumer<DataConsumerAppData>> {
		checkOpen(this.#closed, 'Transport');
		const { dataProducerId, ordered, maxPacketLifeTime, maxRetransmits, paused = false, subchannels, appData } =
			options ?? ({} as never);
		if (!dataProducerId || typeof dataProducerId !== 'string') throw new TypeError('missing dataProducerId');
		checkAppData(appData);
		const data = await this.channel.request<DataConsumerData>('transport.consumeData', {
			transportId: this.id,
			dataProducerId,
			ordered,
			maxPacketLifeTime,
			maxRetransmits,
			paused,
			subchannels,
			appData,
		});
		const dataConsumer = new DataConsumer<DataConsumerAppData>({
			channel: this.channel,
			data: withDefaults({ dataProducerId, type: this.type === 'direct' ? 'direct' : 'sctp', paused }, data),
			appData,
			onClose: (c) => this.#dataConsumers.delete(c.id),
		});
		this.#dataConsumers.set(dataConsumer.id, dataConsumer as DataConsumer);
		if (this.#closed) dataConsumer.transportClosed();
		else this.emitObserver('newdataconsumer', dataConsumer);
		return dataConsumer;
	}

	#onNotification(event: string, params: Record<string, any>): void {
		switch (event) {
			case 'routerclose':
				this.routerClosed();
				return;
			case 'listenserverclose':
				this.listenServerClosed();
				return;
			case 'trace':
				this.emitEvent('trace', params.trace);
				this.emitObserver('trace', params.trace);
				return;
			default:
				this.handleNotification(event, params);
		}
	}
}
