import type { Channel } from './channel';
import { AppData, sendAndForget } from './common';
import { EnhancedEventEmitter, Events } from './enhancedEvents';

/**
 * What Producer, Consumer, DataProducer and DataConsumer share: the channel they talk through,
 * their appData and observer, and one way to end. An object ends once: it leaves the channel's
 * notification routing, sends its close request when the application closed it, is dropped by
 * its owner, emits the event that closed it (when something else did), then its observer's
 * 'close', in mediasoup's order.
 */
export abstract class ChannelObject<
	E extends Events,
	O extends Events,
	A extends AppData,
	Self,
> extends EnhancedEventEmitter<E> {
	/** @internal */
	protected readonly channel: Channel;
	readonly #key: string;
	readonly #onClose: (self: Self) => void;
	readonly #observer = new EnhancedEventEmitter<O>();
	#closed = false;
	#appData: A;

	/** `key`: what the channel routes this object's notifications by (the subclass subscribes). */
	protected constructor(channel: Channel, key: string, appData: A | undefined, onClose: (self: Self) => void) {
		super();
		this.channel = channel;
		this.#key = key;
		this.#appData = appData ?? ({} as A);
		this.#onClose = onClose;
	}

	get closed(): boolean {
		return this.#closed;
	}

	get appData(): A {
		return this.#appData;
	}

	set appData(appData: A) {
		this.#appData = appData;
	}

	get observer(): EnhancedEventEmitter<O> {
		return this.#observer;
	}

	/**
	 * Ends the object (once): `request` is its close request when the application closed it,
	 * `event` what it emits when something else closed it.
	 */
	protected end(request?: [method: string, params: Record<string, unknown>], event?: keyof E & string): void {
		if (this.#closed) return;
		this.#closed = true;
		this.channel.unsubscribe(this.#key);
		if (request) sendAndForget(this.channel.request(request[0], request[1]));
		this.#onClose(this as unknown as Self);
		if (event) this.safeEmit(event, ...([] as unknown as E[typeof event]));
		(this.#observer as EnhancedEventEmitter).safeEmit('close');
	}
}
