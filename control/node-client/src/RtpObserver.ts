import type { Channel } from './channel';
import { AppData, checkOpen, sendAndForget } from './common';
import { EnhancedEventEmitter, Events } from './enhancedEvents';
import type { Producer } from './Producer';

export type RtpObserverType = 'activespeaker' | 'audiolevel';

export type RtpObserverEvents = { routerclose: []; listenererror: [string, Error] };

export type RtpObserverObserverEvents = {
	close: [];
	pause: [];
	resume: [];
	addproducer: [Producer];
	removeproducer: [Producer];
};

export type RtpObserverAddRemoveProducerOptions = { producerId: string };

/** @internal */
export type RtpObserverConstructorOptions<RtpObserverAppData> = {
	channel: Channel;
	id: string;
	appData?: RtpObserverAppData;
	getProducerById: (producerId: string) => Producer | undefined;
	onClose: (rtpObserver: RtpObserver) => void;
};

type AnyEmitter = { safeEmit(event: string, ...args: unknown[]): boolean };

export abstract class RtpObserver<
	RtpObserverAppData extends AppData = AppData,
	E extends Events = RtpObserverEvents,
	O extends Events = RtpObserverObserverEvents,
> extends EnhancedEventEmitter<E> {
	readonly #channel: Channel;
	readonly #id: string;
	/** @internal */
	protected readonly getProducerById: (producerId: string) => Producer | undefined;
	readonly #onClose: (rtpObserver: RtpObserver) => void;
	#closed = false;
	#paused = false;
	#appData: RtpObserverAppData;
	readonly #observer = new EnhancedEventEmitter<O>();

	/** @internal */
	constructor({ channel, id, appData, getProducerById, onClose }: RtpObserverConstructorOptions<RtpObserverAppData>) {
		super();
		this.#channel = channel;
		this.#id = id;
		this.#appData = appData ?? ({} as RtpObserverAppData);
		this.getProducerById = getProducerById;
		this.#onClose = onClose;
		channel.subscribe(id, (event, params) => {
			if (event === 'routerclose') this.routerClosed();
			else this.handleNotification(event, params);
		});
	}

	abstract get type(): RtpObserverType;

	get id(): string {
		return this.#id;
	}

	get closed(): boolean {
		return this.#closed;
	}

	get paused(): boolean {
		return this.#paused;
	}

	get appData(): RtpObserverAppData {
		return this.#appData;
	}

	set appData(appData: RtpObserverAppData) {
		this.#appData = appData;
	}

	get observer(): EnhancedEventEmitter<O> {
		return this.#observer;
	}

	/** @internal */
	protected emitEvent(event: string, ...args: unknown[]): void {
		(this as unknown as AnyEmitter).safeEmit(event, ...args);
	}

	/** @internal */
	protected emitObserver(event: string, ...args: unknown[]): void {
		(this.#observer as unknown as AnyEmitter).safeEmit(event, ...args);
	}

	/** @internal */
	protected abstract handleNotification(event: string, params: Record<string, any>): void;

	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#channel.unsubscribe(this.#id);
		sendAndForget(this.#channel.request('rtpObserver.close', { rtpObserverId: this.#id }));
		this.#onClose(this as unknown as RtpObserver);
		this.emitObserver('close');
	}

	/** @internal */
	routerClosed(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#channel.unsubscribe(this.#id);
		this.#onClose(this as unknown as RtpObserver);
		this.emitEvent('routerclose');
		this.emitObserver('close');
	}

	async pause(): Promise<void> {
		checkOpen(this.#closed, 'RtpObserver');
		const wasPaused = this.#paused;
		await this.#channel.request('rtpObserver.pause', { rtpObserverId: this.#id });
		this.#paused = true;
		if (!wasPaused && !this.#closed) this.emitObserver('pause');
	}

	async resume(): Promise<void> {
		checkOpen(this.#closed, 'RtpObserver');
		const wasPaused = this.#paused;
		await this.#channel.request('rtpObserver.resume', { rtpObserverId: this.#id });
		this.#paused = false;
		if (wasPaused && !this.#closed) this.emitObserver('resume');
	}

	async addProducer({ producerId }: RtpObserverAddRemoveProducerOptions): Promise<void> {
		checkOpen(this.#closed, 'RtpObserver');
		const producer = this.getProducerById(producerId);
		if (!producer) throw new Error(`Producer with id "${producerId}" not found`);
		await this.#channel.request('rtpObserver.addProducer', { rtpObserverId: this.#id, producerId });
		this.emitObserver('addproducer', producer);
	}

	async removeProducer({ producerId }: RtpObserverAddRemoveProducerOptions): Promise<void> {
		checkOpen(this.#closed, 'RtpObserver');
		const producer = this.getProducerById(producerId);
		if (!producer) throw new Error(`Producer with id "${producerId}" not found`);
		await this.#channel.request('rtpObserver.removeProducer', { rtpObserverId: this.#id, producerId });
		this.emitObserver('removeproducer', producer);
	}
}
