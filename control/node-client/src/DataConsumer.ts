import type { Channel } from './channel';
import { AppData, checkOpen } from './common';
import { ChannelObject } from './ChannelObject';
import type { SctpStreamParameters } from './rtpParameters';

export type DataConsumerOptions<DataConsumerAppData extends AppData = AppData> = {
	dataProducerId: string;
	ordered?: boolean;
	maxPacketLifeTime?: number;
	maxRetransmits?: number;
	paused?: boolean;
	subchannels?: number[];
	appData?: DataConsumerAppData;
};

export type DataConsumerType = 'sctp' | 'direct';

export type DataConsumerEvents = {
	transportclose: [];
	dataproducerclose: [];
	dataproducerpause: [];
	dataproducerresume: [];
	message: [Buffer, number];
	sctpsendbufferfull: [];
	bufferedamountlow: [number];
	listenererror: [string, Error];
};

export type DataConsumerObserverEvents = { close: []; pause: []; resume: [] };

/** @internal What transport.consumeData answers. */
export type DataConsumerData = {
	id: string;
	dataProducerId: string;
	type: DataConsumerType;
	sctpStreamParameters?: SctpStreamParameters;
	label?: string;
	protocol?: string;
	paused?: boolean;
	dataProducerPaused?: boolean;
	subchannels?: number[];
	bufferedAmountLowThreshold?: number;
};

export class DataConsumer<DataConsumerAppData extends AppData = AppData> extends ChannelObject<
	DataConsumerEvents,
	DataConsumerObserverEvents,
	DataConsumerAppData,
	DataConsumer
> {
	readonly #data: DataConsumerData;
	#paused: boolean;
	#dataProducerPaused: boolean;
	#subchannels: number[];

	/** @internal */
	constructor({
		channel,
		data,
		appData,
		onClose,
	}: {
		channel: Channel;
		data: DataConsumerData;
		appData?: DataConsumerAppData;
		onClose: (dataConsumer: DataConsumer) => void;
	}) {
		super(channel, data.id, appData, onClose);
		this.#data = data;
		this.#paused = Boolean(data.paused);
		this.#dataProducerPaused = Boolean(data.dataProducerPaused);
		this.#subchannels = data.subchannels ?? [];
		channel.subscribe(data.id, (event, params) => this.#onNotification(event, params));
	}

	get id(): string {
		return this.#data.id;
	}

	get dataProducerId(): string {
		return this.#data.dataProducerId;
	}

	get type(): DataConsumerType {
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

	get dataProducerPaused(): boolean {
		return this.#dataProducerPaused;
	}

	get subchannels(): number[] {
		return this.#subchannels;
	}

	close(): void {
		this.end(['dataConsumer.close', { dataConsumerId: this.id }]);
	}

	/** @internal */
	transportClosed(): void {
		this.end(undefined, 'transportclose');
	}

	async dump(): Promise<Record<string, any>> {
		checkOpen(this.closed, 'DataConsumer');
		return this.channel.request('dataConsumer.dump', { dataConsumerId: this.id });
	}

	async getStats(): Promise<Record<string, any>[]> {
		checkOpen(this.closed, 'DataConsumer');
		return this.channel.request('dataConsumer.getStats', { dataConsumerId: this.id });
	}

	async pause(): Promise<void> {
		checkOpen(this.closed, 'DataConsumer');
		const wasPaused = this.#paused;
		await this.channel.request('dataConsumer.pause', { dataConsumerId: this.id });
		this.#paused = true;
		if (!wasPaused && !this.#dataProducerPaused && !this.closed) this.observer.safeEmit('pause');
	}

	async resume(): Promise<void> {
		checkOpen(this.closed, 'DataConsumer');
		const wasPaused = this.#paused;
		await this.channel.request('dataConsumer.resume', { dataConsumerId: this.id });
		this.#paused = false;
		if (wasPaused && !this.#dataProducerPaused && !this.closed) this.observer.safeEmit('resume');
	}

	async setBufferedAmountLowThreshold(threshold: number): Promise<void> {
		checkOpen(this.closed, 'DataConsumer');
		await this.channel.request('dataConsumer.setBufferedAmountLowThreshold', { dataConsumerId: this.id, threshold });
	}

	async getBufferedAmount(): Promise<number> {
		checkOpen(this.closed, 'DataConsumer');
		const result = await this.channel.request<{ bufferedAmount: number } | number>(
			'dataConsumer.getBufferedAmount',
			{ dataConsumerId: this.id },
		);
		return typeof result === 'number' ? result : (result?.bufferedAmount ?? 0);
	}

	async setSubchannels(subchannels: number[]): Promise<void> {
		checkOpen(this.closed, 'DataConsumer');
		if (!Array.isArray(subchannels)) throw new TypeError('subchannels must be an array');
		const result = await this.channel.request<{ subchannels: number[] } | number[] | null>(
			'dataConsumer.setSubchannels',
			{ dataConsumerId: this.id, subchannels },
		);
		this.#subchannels = (result && !Array.isArray(result) ? result.subchannels : result) ?? subchannels;
	}

	async addSubchannel(subchannel: number): Promise<void> {
		await this.setSubchannels([...new Set([...this.#subchannels, subchannel])]);
	}

	async removeSubchannel(subchannel: number): Promise<void> {
		await this.setSubchannels(this.#subchannels.filter((s) => s !== subchannel));
	}

	/** DirectTransport data consumers; binary messages travel base64-encoded like DataProducer.send. */
	async send(message: string | Buffer, ppid?: number): Promise<void> {
		checkOpen(this.closed, 'DataConsumer');
		const binary = Buffer.isBuffer(message);
		if (ppid === undefined) {
			ppid = binary ? (message.length > 0 ? 53 : 57) : message.length > 0 ? 51 : 56;
		}
		await this.channel.request('dataConsumer.send', {
			dataConsumerId: this.id,
			message: binary ? (message as Buffer).toString('base64') : message,
			binary,
			ppid,
		});
	}

	#onNotification(event: string, params: Record<string, any>): void {
		switch (event) {
			case 'transportclose':
				this.end(undefined, 'transportclose');
				break;
			case 'dataproducerclose':
				this.end(undefined, 'dataproducerclose');
				break;
			case 'dataproducerpause':
				if (this.#dataProducerPaused) break;
				this.#dataProducerPaused = true;
				this.safeEmit('dataproducerpause');
				if (!this.#paused) this.observer.safeEmit('pause');
				break;
			case 'dataproducerresume':
				if (!this.#dataProducerPaused) break;
				this.#dataProducerPaused = false;
				this.safeEmit('dataproducerresume');
				if (!this.#paused) this.observer.safeEmit('resume');
				break;
			case 'message': {
				const data =
					params.binary || typeof params.message !== 'string'
						? Buffer.from(String(params.message ?? ''), 'base64')
						: Buffer.from(params.message, 'utf8');
				this.safeEmit('message', data, params.ppid ?? 51);
				break;
			}
			case 'sctpsendbufferfull':
				this.safeEmit('sctpsendbufferfull');
				break;
			case 'bufferedamountlow':
				this.safeEmit('bufferedamountlow', params.bufferedAmount ?? 0);
				break;
			default:
				break;
		}
	}
}
