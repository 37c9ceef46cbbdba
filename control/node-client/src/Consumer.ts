import type { Channel } from './channel';
import { AppData, checkOpen, unwrap } from './common';
import { ChannelObject } from './ChannelObject';
import type { MediaKind, RtpCapabilities, RtpParameters } from './rtpParameters';

export type ConsumerOptions<ConsumerAppData extends AppData = AppData> = {
	producerId: string;
	rtpCapabilities: RtpCapabilities;
	paused?: boolean;
	mid?: string;
	preferredLayers?: ConsumerLayers;
	ignoreDtx?: boolean;
	enableRtx?: boolean;
	pipe?: boolean;
	appData?: ConsumerAppData;
};

export type ConsumerType = 'simple' | 'simulcast' | 'svc' | 'pipe';

export type ConsumerScore = { score: number; producerScore: number; producerScores: number[] };

export type ConsumerLayers = { spatialLayer: number; temporalLayer?: number };

export type ConsumerTraceEventType = 'rtp' | 'keyframe' | 'nack' | 'pli' | 'fir';

export type ConsumerTraceEventData = {
	type: ConsumerTraceEventType;
	timestamp: number;
	direction: 'in' | 'out';
	info: any;
};

export type ConsumerStat = Record<string, any>;
export type ConsumerDump = Record<string, any>;

export type ConsumerEvents = {
	transportclose: [];
	producerclose: [];
	producerpause: [];
	producerresume: [];
	score: [ConsumerScore];
	layerschange: [ConsumerLayers?];
	trace: [ConsumerTraceEventData];
	rtp: [Buffer];
	listenererror: [string, Error];
};

export type ConsumerObserverEvents = {
	close: [];
	pause: [];
	resume: [];
	score: [ConsumerScore];
	layerschange: [ConsumerLayers?];
	trace: [ConsumerTraceEventData];
};

/** @internal What transport.consume answers. */
export type ConsumerData = {
	id: string;
	producerId: string;
	kind: MediaKind;
	type: ConsumerType;
	rtpParameters: RtpParameters;
	paused?: boolean;
	producerPaused?: boolean;
	score?: ConsumerScore;
	preferredLayers?: ConsumerLayers;
	currentLayers?: ConsumerLayers;
	priority?: number;
};

export class Consumer<ConsumerAppData extends AppData = AppData> extends ChannelObject<
	ConsumerEvents,
	ConsumerObserverEvents,
	ConsumerAppData,
	Consumer
> {
	readonly #data: ConsumerData;
	#paused: boolean;
	#producerPaused: boolean;
	#priority: number;
	#score: ConsumerScore;
	#preferredLayers?: ConsumerLayers;
	#currentLayers?: ConsumerLayers;

	/** @internal */
	constructor({
		channel,
		data,
		appData,
		onClose,
	}: {
		channel: Channel;
		data: ConsumerData;
		appData?: ConsumerAppData;
		onClose: (consumer: Consumer) => void;
	}) {
		super(channel, data.id, appData, onClose);
		this.#data = data;
		this.#paused = Boolean(data.paused);
		this.#producerPaused = Boolean(data.producerPaused);
		this.#priority = data.priority ?? 1;
		this.#score = data.score ?? { score: 10, producerScore: 10, producerScores: [] };
		this.#preferredLayers = data.preferredLayers ?? undefined;
		this.#currentLayers = data.currentLayers ?? undefined;
		channel.subscribe(data.id, (event, params) => this.#onNotification(event, params));
	}

	get id(): string {
		return this.#data.id;
	}

	get producerId(): string {
		return this.#data.producerId;
	}

	get kind(): MediaKind {
		return this.#data.kind;
	}

	get rtpParameters(): RtpParameters {
		return this.#data.rtpParameters;
	}

	get type(): ConsumerType {
		return this.#data.type;
	}

	get paused(): boolean {
		return this.#paused;
	}

	get producerPaused(): boolean {
		return this.#producerPaused;
	}

	get priority(): number {
		return this.#priority;
	}

	get score(): ConsumerScore {
		return this.#score;
	}

	get preferredLayers(): ConsumerLayers | undefined {
		return this.#preferredLayers;
	}

	get currentLayers(): ConsumerLayers | undefined {
		return this.#currentLayers;
	}

	close(): void {
		this.end(['consumer.close', { consumerId: this.id }]);
	}

	/** @internal */
	transportClosed(): void {
		this.end(undefined, 'transportclose');
	}

	async dump(): Promise<ConsumerDump> {
		checkOpen(this.closed, 'Consumer');
		return this.channel.request('consumer.dump', { consumerId: this.id });
	}

	async getStats(): Promise<ConsumerStat[]> {
		checkOpen(this.closed, 'Consumer');
		return this.channel.request('consumer.getStats', { consumerId: this.id });
	}

	async pause(): Promise<void> {
		checkOpen(this.closed, 'Consumer');
		const wasPaused = this.#paused;
		await this.channel.request('consumer.pause', { consumerId: this.id });
		this.#paused = true;
		if (!wasPaused && !this.#producerPaused && !this.closed) this.observer.safeEmit('pause');
	}

	async resume(): Promise<void> {
		checkOpen(this.closed, 'Consumer');
		const wasPaused = this.#paused;
		await this.channel.request('consumer.resume', { consumerId: this.id });
		this.#paused = false;
		if (wasPaused && !this.#producerPaused && !this.closed) this.observer.safeEmit('resume');
	}

	async setPreferredLayers({ spatialLayer, temporalLayer }: ConsumerLayers): Promise<void> {
		checkOpen(this.closed, 'Consumer');
		if (typeof spatialLayer !== 'number') throw new TypeError('spatialLayer must be a number');
		if (temporalLayer !== undefined && typeof temporalLayer !== 'number') {
			throw new TypeError('if given, temporalLayer must be a number');
		}
		const result = await this.channel.request<{ preferredLayers?: ConsumerLayers } | ConsumerLayers | null>(
			'consumer.setPreferredLayers',
			{ consumerId: this.id, spatialLayer, temporalLayer },
		);
		this.#preferredLayers = unwrap<ConsumerLayers>(result, 'preferredLayers') ?? { spatialLayer, temporalLayer };
	}

	async setPriority(priority: number): Promise<void> {
		checkOpen(this.closed, 'Consumer');
		if (typeof priority !== 'number' || priority < 0) throw new TypeError('priority must be a positive number');
		const result = await this.channel.request<{ priority: number } | number | null>('consumer.setPriority', {
			consumerId: this.id,
			priority,
		});
		this.#priority = unwrap<number>(result, 'priority') ?? priority;
	}

	async unsetPriority(): Promise<void> {
		await this.setPriority(1);
	}

	async requestKeyFrame(): Promise<void> {
		checkOpen(this.closed, 'Consumer');
		await this.channel.request('consumer.requestKeyFrame', { consumerId: this.id });
	}

	async enableTraceEvent(types: ConsumerTraceEventType[] = []): Promise<void> {
		checkOpen(this.closed, 'Consumer');
		if (!Array.isArray(types)) throw new TypeError('types must be an array');
		await this.channel.request('consumer.enableTraceEvent', { consumerId: this.id, types });
	}

	#onNotification(event: string, params: Record<string, any>): void {
		switch (event) {
			case 'transportclose':
				this.end(undefined, 'transportclose');
				break;
			case 'producerclose':
				this.end(undefined, 'producerclose');
				break;
			case 'producerpause': {
				if (this.#producerPaused) break;
				this.#producerPaused = true;
				this.safeEmit('producerpause');
				if (!this.#paused) this.observer.safeEmit('pause');
				break;
			}
			case 'producerresume': {
				if (!this.#producerPaused) break;
				this.#producerPaused = false;
				this.safeEmit('producerresume');
				if (!this.#paused) this.observer.safeEmit('resume');
				break;
			}
			case 'score':
				this.#score = params.score;
				this.safeEmit('score', params.score);
				this.observer.safeEmit('score', params.score);
				break;
			case 'layerschange':
				this.#currentLayers = params.layers ?? undefined;
				this.safeEmit('layerschange', this.#currentLayers);
				this.observer.safeEmit('layerschange', this.#currentLayers);
				break;
			case 'trace':
				this.safeEmit('trace', params.trace);
				this.observer.safeEmit('trace', params.trace);
				break;
			case 'rtp': {
				const b64 = params.packet ?? params.rtpPacket;
				if (typeof b64 === 'string') this.safeEmit('rtp', Buffer.from(b64, 'base64'));
				break;
			}
			default:
				break;
		}
	}
}
