import type { Channel } from './channel';
import { AppData, checkOpen, sendAndForget } from './common';
import { ChannelObject } from './ChannelObject';
import type { MediaKind, RtpParameters } from './rtpParameters';

export type ProducerOptions<ProducerAppData extends AppData = AppData> = {
	id?: string;
	kind: MediaKind;
	rtpParameters: RtpParameters;
	paused?: boolean;
	keyFrameRequestDelay?: number;
	enableMediasoupPacketIdHeaderExtension?: boolean;
	appData?: ProducerAppData;
};

export type ProducerType = 'simple' | 'simulcast' | 'svc';

export type ProducerScore = { encodingIdx: number; ssrc: number; rid?: string; score: number };

export type ProducerVideoOrientation = { camera: boolean; flip: boolean; rotation: number };

export type ProducerTraceEventType = 'rtp' | 'keyframe' | 'nack' | 'pli' | 'fir' | 'sr';

export type ProducerTraceEventData = {
	type: ProducerTraceEventType;
	timestamp: number;
	direction: 'in' | 'out';
	info: any;
};

export type ProducerStat = Record<string, any>;
export type ProducerDump = Record<string, any>;

export type ProducerEvents = {
	transportclose: [];
	score: [ProducerScore[]];
	videoorientationchange: [ProducerVideoOrientation];
	trace: [ProducerTraceEventData];
	listenererror: [string, Error];
};

export type ProducerObserverEvents = {
	close: [];
	pause: [];
	resume: [];
	score: [ProducerScore[]];
	videoorientationchange: [ProducerVideoOrientation];
	trace: [ProducerTraceEventData];
};

/** @internal What transport.produce answers. */
export type ProducerData = {
	id: string;
	kind: MediaKind;
	type: ProducerType;
	rtpParameters: RtpParameters;
	paused?: boolean;
	score?: ProducerScore[];
};

export class Producer<ProducerAppData extends AppData = AppData> extends ChannelObject<
	ProducerEvents,
	ProducerObserverEvents,
	ProducerAppData,
	Producer
> {
	readonly #routerId: string;
	readonly #data: ProducerData;
	readonly #direct: boolean;
	#paused: boolean;
	#score: ProducerScore[];

	/** @internal */
	constructor({
		channel,
		routerId,
		data,
		appData,
		direct,
		onClose,
	}: {
		channel: Channel;
		routerId: string;
		data: ProducerData;
		appData?: ProducerAppData;
		direct?: boolean;
		onClose: (producer: Producer) => void;
	}) {
		super(channel, `${data.id}@${routerId}`, appData, onClose);
		this.#routerId = routerId;
		this.#data = data;
		this.#paused = Boolean(data.paused);
		this.#score = data.score ?? [];
		this.#direct = Boolean(direct);
		channel.subscribe(this.#key, (event, params) => this.#onNotification(event, params));
	}

	/**
	 * Notifications and requests name the producer by id and router: with pipeToRouter's keepId the
	 * pipe producer in the target router has the source producer's id.
	 */
	get #key(): string {
		return `${this.#data.id}@${this.#routerId}`;
	}

	#params(extra: Record<string, unknown> = {}): Record<string, unknown> {
		return { producerId: this.id, routerId: this.#routerId, ...extra };
	}

	get id(): string {
		return this.#data.id;
	}

	get kind(): MediaKind {
		return this.#data.kind;
	}

	get rtpParameters(): RtpParameters {
		return this.#data.rtpParameters;
	}

	get type(): ProducerType {
		return this.#data.type;
	}

	/**
	 * mediasoup computes these locally with its ORTC code; the server does that here and does not
	 * send them, so this is the producer's own rtpParameters.
	 */
	get consumableRtpParameters(): RtpParameters {
		return this.#data.rtpParameters;
	}

	get paused(): boolean {
		return this.#paused;
	}

	get score(): ProducerScore[] {
		return this.#score;
	}

	close(): void {
		this.end(['producer.close', this.#params()]);
	}

	/** @internal The transport (or router, for a pipe producer) closed. */
	transportClosed(): void {
		this.end(undefined, 'transportclose');
	}

	async dump(): Promise<ProducerDump> {
		checkOpen(this.closed, 'Producer');
		return this.channel.request('producer.dump', this.#params());
	}

	async getStats(): Promise<ProducerStat[]> {
		checkOpen(this.closed, 'Producer');
		return this.channel.request('producer.getStats', this.#params());
	}

	async pause(): Promise<void> {
		checkOpen(this.closed, 'Producer');
		const wasPaused = this.#paused;
		await this.channel.request('producer.pause', this.#params());
		this.#paused = true;
		if (!wasPaused && !this.closed) this.observer.safeEmit('pause');
	}

	async resume(): Promise<void> {
		checkOpen(this.closed, 'Producer');
		const wasPaused = this.#paused;
		await this.channel.request('producer.resume', this.#params());
		this.#paused = false;
		if (wasPaused && !this.closed) this.observer.safeEmit('resume');
	}

	async enableTraceEvent(types: ProducerTraceEventType[] = []): Promise<void> {
		checkOpen(this.closed, 'Producer');
		if (!Array.isArray(types)) throw new TypeError('types must be an array');
		await this.channel.request('producer.enableTraceEvent', this.#params({ types }));
	}

	/**
	 * Sends an RTP packet into a DirectTransport producer. The packet travels base64-encoded in
	 * `producer.send {producerId, rtpPacket}`.
	 */
	send(rtpPacket: Buffer): void {
		checkOpen(this.closed, 'Producer');
		if (!Buffer.isBuffer(rtpPacket)) throw new TypeError('rtpPacket must be a Buffer');
		if (!this.#direct) throw new TypeError('send() only applies to producers of a DirectTransport');
		sendAndForget(
			this.channel.request('producer.send', this.#params({ rtpPacket: rtpPacket.toString('base64') })),
		);
	}

	#onNotification(event: string, params: Record<string, any>): void {
		switch (event) {
			case 'transportclose':
				this.transportClosed();
				break;
			case 'score':
				this.#score = params.score;
				this.safeEmit('score', params.score);
				this.observer.safeEmit('score', params.score);
				break;
			case 'pause':
				if (this.#paused) break;
				this.#paused = true;
				this.observer.safeEmit('pause');
				break;
			case 'resume':
				if (!this.#paused) break;
				this.#paused = false;
				this.observer.safeEmit('resume');
				break;
			case 'videoorientationchange':
				this.safeEmit('videoorientationchange', params.videoOrientation);
				this.observer.safeEmit('videoorientationchange', params.videoOrientation);
				break;
			case 'trace':
				this.safeEmit('trace', params.trace);
				this.observer.safeEmit('trace', params.trace);
				break;
			default:
				break;
		}
	}
}

