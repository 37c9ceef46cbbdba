import type { Channel } from './channel';
import { AppData, checkOpen, sendAndForget } from './common';
import { ChannelObject } from './ChannelObject';
import type { SctpStreamParameters } from './rtpParameters';

export type DataProducerOptions<DataProducerAppData extends AppData = AppData> = {
	id?: string;
	sctpStreamParameters?: SctpStreamParameters;
	label?: string;
	protocol?: string;
	paused?: boolean;
	appData?: DataProducerAppData;
};

export type DataProducerType = 'sctp' | 'direct';

export type DataProducerEvents = { transportclose: []; listenererror: [string, Error] };
export type DataProducerObserverEvents = { close: []; pause: []; resume: [] };

/** @internal What transport.produceData answers. */
export type DataProducerData = {
	id: string;
	type: DataProducerType;
	sctpStreamParameters?: SctpStreamParameters;
	label?: string;
	protocol?: string;
	paused?: boolean;
};

export class DataProducer<DataProducerAppData extends AppData = AppData> extends ChannelObject<
	DataProducerEvents,
	DataProducerObserverEvents,
	DataProducerAppData,
	DataProducer
> {
	readonly #routerId: string;
	readonly #data: DataProducerData;
	#paused: boolean;

	/** @internal */
	constructor({
		channel,
		routerId,
		data,
		appData,
		onClose,
	}: {
		channel: Channel;
		routerId: string;
		data: DataProducerData;
		appData?: DataProducerAppData;
		onClose: (dataProducer: DataProducer) => void;
	}) {
		super(channel, `${data.id}@${routerId}`, appData, onClose);
		this.#routerId = routerId;
		this.#data = data;
		this.#paused = Boolean(data.paused);
		channel.subscribe(this.#key, (event) => this.#onNotification(event));
	}

	/**
	 * Notifications and requests name the data producer by id and router: with pipeToRouter's
	 * keepId the pipe data producer in the target router has the source data producer's id.
	 */
	get #key(): string {
		return `${this.#data.id}@${this.#routerId}`;
	}

	#params(extra: Record<string, unknown> = {}): Record<string, unknown> {
		return { dataProducerId: this.id, routerId: this.#routerId, ...extra };
	}

	get id(): string {
		return this.#data.id;
	}

	get type(): DataProducerType {
		return this.#data.type;
	}

	get sctpStreamParameters(): SctpStreamParameters | undefined {
		return this.#data.sctpStreamParameters;
	}

	get label(): string {
		return this.#data.label ?? '';
	}

	get protocol(): string {
		return this.#data.protocol ?? '';
	}

	get paused(): boolean {
		return this.#paused;
	}

	close(): void {
		this.end(['dataProducer.close', this.#params()]);
	}

	/** @internal */
	transportClosed(): void {
		this.end(undefined, 'transportclose');
	}

	async dump(): Promise<Record<string, any>> {
		checkOpen(this.closed, 'DataProducer');
		return this.channel.request('dataProducer.dump', this.#params());
	}

	async getStats(): Promise<Record<string, any>[]> {
		checkOpen(this.closed, 'DataProducer');
		return this.channel.request('dataProducer.getStats', this.#params());
	}

	async pause(): Promise<void> {
		checkOpen(this.closed, 'DataProducer');
		const wasPaused = this.#paused;
		await this.channel.request('dataProducer.pause', this.#params());
		this.#paused = true;
		if (!wasPaused && !this.closed) this.observer.safeEmit('pause');
	}

	async resume(): Promise<void> {
		checkOpen(this.closed, 'DataProducer');
		const wasPaused = this.#paused;
		await this.channel.request('dataProducer.resume', this.#params());
		this.#paused = false;
		if (wasPaused && !this.closed) this.observer.safeEmit('resume');
	}

	/**
	 * Sends a message (DirectTransport data producers). mediasoup's PPIDs: 51 string, 53 binary
	 * (56/57 for empty ones). Binary messages travel base64-encoded (`binary: true`).
	 */
	send(message: string | Buffer, ppid?: number, subchannels?: number[], requiredSubchannel?: number): void {
		checkOpen(this.closed, 'DataProducer');
		if (typeof message !== 'string' && !Buffer.isBuffer(message)) {
			throw new TypeError('message must be a string or a Buffer');
		}
		const binary = Buffer.isBuffer(message);
		if (ppid === undefined) {
			ppid = binary ? (message.length > 0 ? 53 : 57) : message.length > 0 ? 51 : 56;
		}
		sendAndForget(
			this.channel.request(
				'dataProducer.send',
				this.#params({
					message: binary ? (message as Buffer).toString('base64') : message,
					binary,
					ppid,
					subchannels,
					requiredSubchannel,
				}),
			),
		);
	}

	#onNotification(event: string): void {
		switch (event) {
			case 'transportclose':
				this.transportClosed();
				break;
			// A pipe data producer paused / resumed by its source (the server's doing).
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
			default:
				break;
		}
	}
}
