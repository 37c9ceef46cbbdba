import type { Channel } from './channel';
import { AppData, checkOpen, sendAndForget } from './common';
import { EnhancedEventEmitter } from './enhancedEvents';
import type { TransportListenInfo } from './Transport';
import type { WebRtcTransport } from './WebRtcTransport';

export type WebRtcServerOptions<WebRtcServerAppData extends AppData = AppData> = {
	listenInfos: TransportListenInfo[];
	appData?: WebRtcServerAppData;
};

export type WebRtcServerEvents = { workerclose: []; listenererror: [string, Error] };

export type WebRtcServerObserverEvents = {
	close: [];
	webrtctransporthandled: [WebRtcTransport];
	webrtctransportunhandled: [WebRtcTransport];
};

export class WebRtcServer<WebRtcServerAppData extends AppData = AppData> extends EnhancedEventEmitter<WebRtcServerEvents> {
	readonly #channel: Channel;
	readonly #id: string;
	readonly #onClose: (webRtcServer: WebRtcServer) => void;
	#closed = false;
	#appData: WebRtcServerAppData;
	readonly #webRtcTransports = new Map<string, WebRtcTransport>();
	readonly #observer = new EnhancedEventEmitter<WebRtcServerObserverEvents>();

	/** @internal */
	constructor({
		channel,
		id,
		appData,
		onClose,
	}: {
		channel: Channel;
		id: string;
		appData?: WebRtcServerAppData;
		onClose: (webRtcServer: WebRtcServer) => void;
	}) {
		super();
		this.#channel = channel;
		this.#id = id;
		this.#appData = appData ?? ({} as WebRtcServerAppData);
		this.#onClose = onClose;
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

	get appData(): WebRtcServerAppData {
		return this.#appData;
	}

	set appData(appData: WebRtcServerAppData) {
		this.#appData = appData;
	}

	get observer(): EnhancedEventEmitter<WebRtcServerObserverEvents> {
		return this.#observer;
	}

	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#channel.unsubscribe(this.#id);
		sendAndForget(this.#channel.request('webRtcServer.close', { webRtcServerId: this.#id }));
		for (const transport of [...this.#webRtcTransports.values()]) {
			transport.listenServerClosed();
			this.#observer.safeEmit('webrtctransportunhandled', transport);
		}
		this.#webRtcTransports.clear();
		this.#onClose(this as WebRtcServer);
		this.#observer.safeEmit('close');
	}

	/** @internal */
	workerClosed(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#channel.unsubscribe(this.#id);
		// The routers close their transports (mediasoup's order).
		this.#webRtcTransports.clear();
		this.#onClose(this as WebRtcServer);
		this.safeEmit('workerclose');
		this.#observer.safeEmit('close');
	}

	async dump(): Promise<Record<string, any>> {
		checkOpen(this.#closed, 'WebRtcServer');
		return this.#channel.request('webRtcServer.dump', { webRtcServerId: this.#id });
	}

	/** @internal */
	handleWebRtcTransport(transport: WebRtcTransport): void {
		this.#webRtcTransports.set(transport.id, transport);
		this.#observer.safeEmit('webrtctransporthandled', transport);
		transport.observer.once('close', () => {
			if (this.#webRtcTransports.delete(transport.id)) {
				this.#observer.safeEmit('webrtctransportunhandled', transport);
			}
		});
	}
}
