import { ActiveSpeakerObserver, ActiveSpeakerObserverOptions } from './ActiveSpeakerObserver';
import { AudioLevelObserver, AudioLevelObserverOptions } from './AudioLevelObserver';
import type { Channel } from './channel';
import { AppData, checkAppData, checkOpen, sendAndForget, withDefaults } from './common';
import { Consumer, ConsumerData } from './Consumer';
import { DataConsumer, DataConsumerData } from './DataConsumer';
import { DataProducer, DataProducerData } from './DataProducer';
import { DirectTransport, DirectTransportOptions } from './DirectTransport';
import { EnhancedEventEmitter } from './enhancedEvents';
import { InvalidStateError } from './errors';
import { PipeTransport, PipeTransportOptions } from './PipeTransport';
import { PlainTransport, PlainTransportOptions } from './PlainTransport';
import { Producer, ProducerData } from './Producer';
import type {
	NumSctpStreams,
	RtpCapabilities,
	RtpCodecCapability,
	RtpCodecParameters,
} from './rtpParameters';
import type { RtpObserver } from './RtpObserver';
import type { RouterContext, Transport, TransportListenInfo, TransportListenIp } from './Transport';
import { WebRtcServer } from './WebRtcServer';
import { WebRtcTransport, WebRtcTransportOptions } from './WebRtcTransport';

export type RouterOptions<RouterAppData extends AppData = AppData> = {
	mediaCodecs?: RtpCodecCapability[];
	appData?: RouterAppData;
};

export type PipeToRouterOptions = {
	producerId?: string;
	dataProducerId?: string;
	router: Router;
	listenInfo?: TransportListenInfo;
	/** @deprecated */
	listenIp?: TransportListenIp | string;
	enableSctp?: boolean;
	numSctpStreams?: NumSctpStreams;
	enableRtx?: boolean;
	enableSrtp?: boolean;
	keepId?: boolean;
};

export type PipeToRouterResult = {
	pipeConsumer?: Consumer;
	pipeProducer?: Producer;
	pipeDataConsumer?: DataConsumer;
	pipeDataProducer?: DataProducer;
};

export type RouterEvents = { workerclose: []; listenererror: [string, Error] };

export type RouterObserverEvents = {
	close: [];
	newtransport: [Transport];
	newrtpobserver: [RtpObserver];
};

export type CanConsumeOptions = { producerId: string; rtpCapabilities: RtpCapabilities };

/** Objects that pipeToRouter made without a transport of this client (see README). */
type PipeObject = Producer | Consumer | DataProducer | DataConsumer;

export class Router<RouterAppData extends AppData = AppData> extends EnhancedEventEmitter<RouterEvents> {
	readonly #channel: Channel;
	readonly #id: string;
	readonly #rtpCapabilities: RtpCapabilities;
	readonly #onClose: (router: Router) => void;
	#closed = false;
	#appData: RouterAppData;
	readonly #transports = new Map<string, Transport>();
	readonly #producers = new Map<string, Producer>();
	readonly #dataProducers = new Map<string, DataProducer>();
	readonly #rtpObservers = new Map<string, RtpObserver>();
	readonly #pipeObjects = new Set<PipeObject>();
	readonly #context: RouterContext;
	readonly #observer = new EnhancedEventEmitter<RouterObserverEvents>();

	/** @internal */
	constructor({
		channel,
		id,
		rtpCapabilities,
		appData,
		onClose,
	}: {
		channel: Channel;
		id: string;
		rtpCapabilities: RtpCapabilities;
		appData?: RouterAppData;
		onClose: (router: Router) => void;
	}) {
		super();
		this.#channel = channel;
		this.#id = id;
		this.#rtpCapabilities = rtpCapabilities;
		this.#appData = appData ?? ({} as RouterAppData);
		this.#onClose = onClose;
		this.#context = {
			routerId: id,
			producers: this.#producers,
			dataProducers: this.#dataProducers,
			onTransportClose: (transport) => this.#transports.delete(transport.id),
		};
		channel.subscribe(id, (event) => {
			if (event === 'workerclose') this.workerClosed();
		});
	}

	get id(): string {
		return this.#id;
	}

	get closed(): boolean {
		return this.#closed;
	}

	get rtpCapabilities(): RtpCapabilities {
		return this.#rtpCapabilities;
	}

	get appData(): RouterAppData {
		return this.#appData;
	}

	set appData(appData: RouterAppData) {
		this.#appData = appData;
	}

	get observer(): EnhancedEventEmitter<RouterObserverEvents> {
		return this.#observer;
	}

	close(): void {
		if (this.#closed) return;
		this.#closeLocally();
		sendAndForget(this.#channel.request('router.close', { routerId: this.#id }));
		this.#observer.safeEmit('close');
	}

	/** @internal */
	workerClosed(): void {
		if (this.#closed) return;
		this.#closeLocally();
		this.safeEmit('workerclose');
		this.#observer.safeEmit('close');
	}

	#closeLocally(): void {
		this.#closed = true;
		this.#channel.unsubscribe(this.#id);
		for (const transport of [...this.#transports.values()]) transport.routerClosed();
		this.#transports.clear();
		for (const object of [...this.#pipeObjects]) object.transportClosed();
		this.#pipeObjects.clear();
		this.#producers.clear();
		this.#dataProducers.clear();
		for (const rtpObserver of [...this.#rtpObservers.values()]) rtpObserver.routerClosed();
		this.#rtpObservers.clear();
		this.#onClose(this as Router);
	}

	async dump(): Promise<Record<string, any>> {
		checkOpen(this.#closed, 'Router');
		return this.#channel.request('router.dump', { routerId: this.#id });
	}

	async createWebRtcTransport<WebRtcTransportAppData extends AppData = AppData>(
		options: WebRtcTransportOptions<WebRtcTransportAppData>,
	): Promise<WebRtcTransport<WebRtcTransportAppData>> {
		checkOpen(this.#closed, 'Router');
		const { webRtcServer, listenInfos, listenIps, port, appData, ...rest } = options ?? ({} as never);
		if (listenInfos !== undefined && !Array.isArray(listenInfos)) throw new TypeError('listenInfos must be an array');
		if (listenIps !== undefined && !Array.isArray(listenIps)) throw new TypeError('listenIps must be an array');
		if (webRtcServer && (listenInfos || listenIps)) {
			throw new TypeError('only one of webRtcServer, listenInfos and listenIps must be given');
		}
		if (webRtcServer && !(webRtcServer instanceof WebRtcServer)) throw new TypeError('invalid webRtcServer');
		if (webRtcServer?.closed) throw new InvalidStateError('WebRtcServer closed');
		checkAppData(appData);
		let infos = listenInfos;
		if (!webRtcServer && !infos && listenIps) {
			// mediasoup turns the deprecated listenIps into listenInfos the same way.
			const enableUdp = rest.enableUdp ?? true;
			const enableTcp = rest.enableTcp ?? false;
			infos = [];
			for (const listenIp of listenIps ?? []) {
				const { ip, announcedIp } = typeof listenIp === 'string' ? { ip: listenIp, announcedIp: undefined } : listenIp;
				if (enableUdp) infos.push({ protocol: 'udp', ip, announcedAddress: announcedIp, port });
				if (enableTcp) infos.push({ protocol: 'tcp', ip, announcedAddress: announcedIp, port });
			}
		}
		const data = await this.#channel.request<{ id: string }>('router.createWebRtcTransport', {
			routerId: this.#id,
			webRtcServerId: webRtcServer?.id,
			listenInfos: infos,
			...rest,
			appData,
		});
		const transport = new WebRtcTransport<WebRtcTransportAppData>({
			channel: this.#channel,
			data,
			appData,
			router: this.#context,
		});
		this.#addTransport(transport as unknown as Transport);
		if (webRtcServer && !transport.closed) webRtcServer.handleWebRtcTransport(transport as unknown as WebRtcTransport);
		return transport;
	}

	async createPlainTransport<PlainTransportAppData extends AppData = AppData>(
		options: PlainTransportOptions<PlainTransportAppData>,
	): Promise<PlainTransport<PlainTransportAppData>> {
		return this.#createListening('router.createPlainTransport', options, (args) => new PlainTransport<PlainTransportAppData>(args));
	}

	async createPipeTransport<PipeTransportAppData extends AppData = AppData>(
		options: PipeTransportOptions<PipeTransportAppData>,
	): Promise<PipeTransport<PipeTransportAppData>> {
		return this.#createListening('router.createPipeTransport', options, (args) => new PipeTransport<PipeTransportAppData>(args));
	}

	/** Plain and pipe transports: one `listenInfo` (or the legacy `listenIp` + `port`). */
	async #createListening<T, A extends AppData>(
		method: string,
		options: { listenInfo?: unknown; listenIp?: unknown; port?: number; appData?: A },
		make: (args: { channel: Channel; data: { id: string }; appData: A | undefined; router: RouterContext }) => T,
	): Promise<T> {
		checkOpen(this.#closed, 'Router');
		const { listenInfo, listenIp, port, appData, ...rest } = options ?? ({} as never);
		checkListenInfo(listenInfo, listenIp);
		checkAppData(appData);
		const data = await this.#channel.request<{ id: string }>(method, {
			routerId: this.#id,
			listenInfo: listenInfo ?? (listenIp ? listenIpToInfo(listenIp as TransportListenIp | string, port) : undefined),
			...rest,
			appData,
		});
		const transport = make({ channel: this.#channel, data, appData, router: this.#context });
		this.#addTransport(transport as unknown as Transport);
		return transport;
	}

	async createDirectTransport<DirectTransportAppData extends AppData = AppData>(
		options: DirectTransportOptions<DirectTransportAppData> = {},
	): Promise<DirectTransport<DirectTransportAppData>> {
		checkOpen(this.#closed, 'Router');
		const { maxMessageSize = 262144, appData } = options;
		checkAppData(appData);
		const data = await this.#channel.request<{ id: string }>('router.createDirectTransport', {
			routerId: this.#id,
			maxMessageSize,
			appData,
		});
		const transport = new DirectTransport<DirectTransportAppData>({
			channel: this.#channel,
			data,
			appData,
			router: this.#context,
		});
		this.#addTransport(transport as unknown as Transport);
		return transport;
	}

	#addTransport(transport: Transport): void {
		if (this.#closed) {
			// The router closed while the server was creating it.
			transport.routerClosed();
			return;
		}
		this.#transports.set(transport.id, transport);
		this.#observer.safeEmit('newtransport', transport);
	}

	/**
	 * Pipes a producer (or data producer) of this router into `router`. The server creates the pair
	 * of pipe transports; they are not exposed here, so the resulting pipeConsumer and pipeProducer
	 * belong to the routers themselves and close with them.
	 */
	async pipeToRouter(options: PipeToRouterOptions): Promise<PipeToRouterResult> {
		checkOpen(this.#closed, 'Router');
		const { producerId, dataProducerId, router, listenInfo, listenIp, ...rest } = options ?? ({} as never);
		if (!producerId && !dataProducerId) throw new TypeError('missing producerId or dataProducerId');
		if (producerId && dataProducerId) throw new TypeError('just producerId or dataProducerId can be given');
		if (!router) throw new TypeError('Router not found');
		if (!(router instanceof Router)) throw new TypeError('invalid router');
		if (router === this) throw new TypeError('cannot use this Router as destination');
		if (router.closed) throw new InvalidStateError('Router closed');
		if (producerId && !this.#producers.has(producerId)) throw new TypeError('Producer not found');
		if (dataProducerId && !this.#dataProducers.has(dataProducerId)) throw new TypeError('DataProducer not found');
		const result = await this.#channel.request<{
			pipeConsumer?: ConsumerData;
			pipeProducer?: ProducerData;
			pipeDataConsumer?: DataConsumerData;
			pipeDataProducer?: DataProducerData;
		}>('router.pipeToRouter', {
			routerId: this.#id,
			targetRouterId: router.id,
			producerId,
			dataProducerId,
			listenInfo: listenInfo ?? (listenIp ? listenIpToInfo(listenIp) : undefined),
			...rest,
		});
		const out: PipeToRouterResult = {};
		if (result?.pipeConsumer) {
			out.pipeConsumer = this.adoptPipeObject(
				new Consumer({
					channel: this.#channel,
					data: withDefaults({ producerId: producerId!, type: 'pipe' }, result.pipeConsumer),
					onClose: (c) => this.#pipeObjects.delete(c),
				}),
			);
		}
		if (result?.pipeProducer) {
			const pipeProducer = new Producer({
				channel: this.#channel,
				routerId: router.id,
				data: result.pipeProducer,
				onClose: (p) => router.forgetPipeProducer(p),
			});
			out.pipeProducer = router.adoptPipeObject(pipeProducer);
			router.#producers.set(pipeProducer.id, pipeProducer);
		}
		if (result?.pipeDataConsumer) {
			out.pipeDataConsumer = this.adoptPipeObject(
				new DataConsumer({
					channel: this.#channel,
					data: withDefaults({ dataProducerId: dataProducerId!, type: 'sctp' }, result.pipeDataConsumer),
					onClose: (c) => this.#pipeObjects.delete(c),
				}),
			);
		}
		if (result?.pipeDataProducer) {
			const pipeDataProducer = new DataProducer({
				channel: this.#channel,
				routerId: router.id,
				data: withDefaults({ type: 'sctp' }, result.pipeDataProducer),
				onClose: (p) => router.forgetPipeProducer(p),
			});
			out.pipeDataProducer = router.adoptPipeObject(pipeDataProducer);
			router.#dataProducers.set(pipeDataProducer.id, pipeDataProducer);
		}
		return out;
	}

	/** @internal */
	adoptPipeObject<T extends PipeObject>(object: T): T {
		if (this.#closed) object.transportClosed();
		else this.#pipeObjects.add(object);
		return object;
	}

	/** @internal */
	forgetPipeProducer(object: Producer | DataProducer): void {
		this.#pipeObjects.delete(object);
		if (object instanceof Producer) this.#producers.delete(object.id);
		else this.#dataProducers.delete(object.id);
	}

	async createActiveSpeakerObserver<ActiveSpeakerObserverAppData extends AppData = AppData>(
		options: ActiveSpeakerObserverOptions<ActiveSpeakerObserverAppData> = {},
	): Promise<ActiveSpeakerObserver<ActiveSpeakerObserverAppData>> {
		checkOpen(this.#closed, 'Router');
		const { interval = 300, appData } = options;
		// As mediasoup: the server keeps the interval within 100..5000 ms.
		if (typeof interval !== 'number') throw new TypeError('if given, interval must be an number');
		checkAppData(appData);
		const data = await this.#channel.request<{ id: string }>('router.createActiveSpeakerObserver', {
			routerId: this.#id,
			interval,
			appData,
		});
		const rtpObserver = new ActiveSpeakerObserver<ActiveSpeakerObserverAppData>({
			channel: this.#channel,
			id: data.id,
			appData,
			getProducerById: (id) => this.#producers.get(id),
			onClose: (o) => this.#rtpObservers.delete(o.id),
		});
		this.#addRtpObserver(rtpObserver as unknown as RtpObserver);
		return rtpObserver;
	}

	async createAudioLevelObserver<AudioLevelObserverAppData extends AppData = AppData>(
		options: AudioLevelObserverOptions<AudioLevelObserverAppData> = {},
	): Promise<AudioLevelObserver<AudioLevelObserverAppData>> {
		checkOpen(this.#closed, 'Router');
		const { maxEntries = 1, threshold = -80, interval = 1000, appData } = options;
		if (typeof maxEntries !== 'number' || maxEntries <= 0) throw new TypeError('if given, maxEntries must be a positive number');
		if (typeof threshold !== 'number' || threshold < -127 || threshold > 0) {
			throw new TypeError('if given, threshole must be a negative number greater than -127');
		}
		// As mediasoup: the server keeps the interval within 250..5000 ms.
		if (typeof interval !== 'number') throw new TypeError('if given, interval must be an number');
		checkAppData(appData);
		const data = await this.#channel.request<{ id: string }>('router.createAudioLevelObserver', {
			routerId: this.#id,
			maxEntries,
			threshold,
			interval,
			appData,
		});
		const rtpObserver = new AudioLevelObserver<AudioLevelObserverAppData>({
			channel: this.#channel,
			id: data.id,
			appData,
			getProducerById: (id) => this.#producers.get(id),
			onClose: (o) => this.#rtpObservers.delete(o.id),
		});
		this.#addRtpObserver(rtpObserver as unknown as RtpObserver);
		return rtpObserver;
	}

	#addRtpObserver(rtpObserver: RtpObserver): void {
		if (this.#closed) {
			rtpObserver.routerClosed();
			return;
		}
		this.#rtpObservers.set(rtpObserver.id, rtpObserver);
		this.#observer.safeEmit('newrtpobserver', rtpObserver);
	}

	/**
	 * Whether `rtpCapabilities` can consume the producer. Synchronous as in mediasoup, decided
	 * locally: the producer must be one this client knows in this router, and one of its codecs must
	 * match a capability codec (mimeType, clockRate, channels; H264 packetization-mode, VP9
	 * profile-id). The server decides for real at consume() time.
	 */
	canConsume({ producerId, rtpCapabilities }: CanConsumeOptions): boolean {
		const producer = this.#producers.get(producerId);
		if (!producer || producer.closed) return false;
		if (!rtpCapabilities || !Array.isArray(rtpCapabilities.codecs)) return false;
		const mediaCodecs = producer.rtpParameters.codecs.filter((c) => !isRtx(c.mimeType));
		const first = mediaCodecs[0];
		if (!first) return false;
		return rtpCapabilities.codecs.some((cap) => !isRtx(cap.mimeType) && matchCodec(first, cap));
	}
}

function isRtx(mimeType: string): boolean {
	return /.+\/rtx$/i.test(mimeType);
}

function matchCodec(codec: RtpCodecParameters, cap: RtpCodecCapability): boolean {
	const mime = codec.mimeType.toLowerCase();
	if (mime !== cap.mimeType.toLowerCase() || codec.clockRate !== cap.clockRate) return false;
	if (mime.startsWith('audio/') && (codec.channels ?? 1) !== (cap.channels ?? 1)) return false;
	const p = codec.parameters ?? {};
	const q = cap.parameters ?? {};
	if (mime === 'video/h264' || mime === 'video/h264-svc') {
		if ((p['packetization-mode'] ?? 0) !== (q['packetization-mode'] ?? 0)) return false;
	}
	if (mime === 'video/vp9' && (p['profile-id'] ?? 0) !== (q['profile-id'] ?? 0)) return false;
	return true;
}

/**
 * Unlike mediasoup, listenInfo may be left out: the server then listens on its own media address
 * (`--media-ip`, announced as configured), which a remote client usually does not know.
 */
function checkListenInfo(listenInfo: unknown, listenIp: unknown): void {
	if (listenInfo !== undefined && (listenInfo === null || typeof listenInfo !== 'object')) {
		throw new TypeError('listenInfo must be an object');
	}
	if (listenInfo && listenIp) throw new TypeError('only one of listenInfo and listenIp must be given');
}

function listenIpToInfo(listenIp: TransportListenIp | string, port?: number): TransportListenInfo {
	const { ip, announcedIp } = typeof listenIp === 'string' ? { ip: listenIp, announcedIp: undefined } : listenIp;
	return { protocol: 'udp', ip, announcedAddress: announcedIp, port };
}
