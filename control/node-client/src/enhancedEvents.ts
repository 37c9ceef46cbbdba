import { EventEmitter } from 'node:events';

/** An EventEmitter with typed events whose listeners cannot break the emitter (mediasoup's). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Events = Record<string, any[]>;

export class EnhancedEventEmitter<E extends Events = Events> extends EventEmitter {
	constructor() {
		super();
		this.setMaxListeners(Infinity);
	}

	override emit<K extends keyof E & string>(eventName: K, ...args: E[K]): boolean {
		return super.emit(eventName, ...args);
	}

	/** Like emit() but a throwing listener is reported as 'listenererror' instead of propagating. */
	safeEmit<K extends keyof E & string>(eventName: K, ...args: E[K]): boolean {
		try {
			return super.emit(eventName, ...args);
		} catch (error) {
			try {
				super.emit('listenererror', eventName, error);
			} catch {
				// Ignore errors thrown by 'listenererror' listeners.
			}
			return Boolean(super.listenerCount(eventName));
		}
	}

	override on<K extends keyof E & string>(eventName: K, listener: (...args: E[K]) => void): this {
		return super.on(eventName, listener as (...args: unknown[]) => void);
	}

	override off<K extends keyof E & string>(eventName: K, listener: (...args: E[K]) => void): this {
		return super.off(eventName, listener as (...args: unknown[]) => void);
	}

	override addListener<K extends keyof E & string>(eventName: K, listener: (...args: E[K]) => void): this {
		return super.addListener(eventName, listener as (...args: unknown[]) => void);
	}

	override prependListener<K extends keyof E & string>(eventName: K, listener: (...args: E[K]) => void): this {
		return super.prependListener(eventName, listener as (...args: unknown[]) => void);
	}

	override once<K extends keyof E & string>(eventName: K, listener: (...args: E[K]) => void): this {
		return super.once(eventName, listener as (...args: unknown[]) => void);
	}

	override prependOnceListener<K extends keyof E & string>(eventName: K, listener: (...args: E[K]) => void): this {
		return super.prependOnceListener(eventName, listener as (...args: unknown[]) => void);
	}

	override removeListener<K extends keyof E & string>(eventName: K, listener: (...args: E[K]) => void): this {
		return super.removeListener(eventName, listener as (...args: unknown[]) => void);
	}

	override removeAllListeners<K extends keyof E & string>(eventName?: K): this {
		return super.removeAllListeners(eventName);
	}

	override listenerCount<K extends keyof E & string>(eventName: K): number {
		return super.listenerCount(eventName);
	}
}
