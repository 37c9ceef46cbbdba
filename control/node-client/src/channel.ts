import WebSocket from 'ws';
import { EnhancedEventEmitter } from './enhancedEvents';
import { errorFromWire, InvalidStateError } from './errors';

/** Where the server is; the defaults come from SHARDSFU_URL and SHARDSFU_TOKEN. */
export interface ConnectionOptions {
	/** WebSocket URL of the shardsfu API (default: env SHARDSFU_URL, else `ws://127.0.0.1:7300/`). */
	url?: string;
	/** Bearer token (default: env SHARDSFU_TOKEN, else none). */
	token?: string;
	/** How long to wait for the WebSocket to open, in ms (default 10000). */
	connectTimeoutMs?: number;
	/** How long to wait for the answer to one request, in ms (default 30000). */
	requestTimeoutMs?: number;
}

export const DEFAULT_URL = 'ws://127.0.0.1:7300/';
const CONNECT_TIMEOUT_MS_DEFAULT = 10_000;
const REQUEST_TIMEOUT_MS_DEFAULT = 30_000;
/** Requests in flight on one connection; past it a request is refused rather than queued. */
const MAX_PENDING_REQUESTS = 10_000;

export function resolveConnection(options: ConnectionOptions = {}): Required<Pick<ConnectionOptions, 'url'>> &
	ConnectionOptions {
	const url = options.url ?? process.env.SHARDSFU_URL ?? DEFAULT_URL;
	const token = options.token ?? process.env.SHARDSFU_TOKEN ?? undefined;
	if (typeof url !== 'string' || !/^wss?:\/\//.test(url)) {
		throw new TypeError(`invalid shardsfu URL '${String(url)}' (expected ws:// or wss://)`);
	}
	if (token !== undefined && typeof token !== 'string') {
		throw new TypeError('token must be a string');
	}
	return { ...options, url, token: token === '' ? undefined : token };
}

type NotificationHandler = (event: string, data: Record<string, unknown>) => void;

interface Pending {
	method: string;
	resolve: (result: unknown) => void;
	reject: (error: Error) => void;
	timer: NodeJS.Timeout;
}

/**
 * One WebSocket to the server: JSON-RPC requests out, answers and notifications in.
 * Notifications are routed to the handler registered for the emitting object's id.
 */
export class Channel extends EnhancedEventEmitter<{ close: [Error | undefined]; listenererror: [string, Error] }> {
	readonly url: string;
	readonly #ws: WebSocket;
	readonly #requestTimeoutMs: number;
	readonly #pending = new Map<number, Pending>();
	readonly #handlers = new Map<string, NotificationHandler>();
	#nextId = 1;
	#closed = false;
	/** Set when this side closed the socket on purpose. */
	#closing = false;

	private constructor(url: string, ws: WebSocket, requestTimeoutMs: number) {
		super();
		this.url = url;
		this.#ws = ws;
		this.#requestTimeoutMs = requestTimeoutMs;
		ws.on('message', (data, isBinary) => {
			if (!isBinary) this.#onMessage(data.toString());
		});
		ws.on('close', (code, reason) => {
			const error = this.#closing
				? undefined
				: new Error(`connection to ${url} lost (code ${code}${reason.length ? `, ${reason.toString()}` : ''})`);
			this.#onClosed(error);
		});
		ws.on('error', () => {
			// 'close' follows and reports it.
		});
	}

	/** Opens a connection; rejects with an Error saying why (refused, HTTP 401, timeout...). */
	static connect(options: ConnectionOptions = {}): Promise<Channel> {
		const { url, token, connectTimeoutMs, requestTimeoutMs } = resolveConnection(options);
		return new Promise((resolve, reject) => {
			const headers: Record<string, string> = {};
			if (token) headers.Authorization = `Bearer ${token}`;
			const ws = new WebSocket(url, { headers, handshakeTimeout: connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT });
			const onError = (error: Error): void => {
				ws.removeAllListeners();
				ws.on('error', () => {});
				ws.terminate();
				reject(new Error(`cannot connect to shardsfu at ${url}: ${error.message}`));
			};
			ws.once('error', onError);
			ws.once('open', () => {
				ws.off('error', onError);
				resolve(new Channel(url, ws, requestTimeoutMs ?? REQUEST_TIMEOUT_MS_DEFAULT));
			});
		});
	}

	get closed(): boolean {
		return this.#closed;
	}

	/** Sends one request; resolves with its result or rejects with the error class the server named. */
	request<T = unknown>(method: string, params: Record<string, unknown> = {}): Promise<T> {
		if (this.#closed) {
			return Promise.reject(new InvalidStateError(`connection closed (${method})`));
		}
		if (this.#pending.size >= MAX_PENDING_REQUESTS) {
			return Promise.reject(new Error(`too many requests in flight (${MAX_PENDING_REQUESTS})`));
		}
		const id = this.#nextId++;
		const frame = JSON.stringify({ jsonrpc: '2.0', id, method, params: stripUndefined(params) });
		return new Promise<T>((resolve, reject) => {
			const timer = setTimeout(() => {
				if (this.#pending.delete(id)) reject(new Error(`request timeout (${method})`));
			}, this.#requestTimeoutMs);
			this.#pending.set(id, { method, resolve: resolve as (r: unknown) => void, reject, timer });
			this.#ws.send(frame, (error) => {
				if (error && this.#pending.delete(id)) {
					clearTimeout(timer);
					reject(new InvalidStateError(`connection closed (${method}): ${error.message}`));
				}
			});
		});
	}

	/** Routes notifications whose `<class>Id` is `id` to `handler` (one handler per id). */
	subscribe(id: string, handler: NotificationHandler): void {
		this.#handlers.set(id, handler);
	}

	unsubscribe(id: string): void {
		this.#handlers.delete(id);
	}

	/** Closes the socket; pending requests fail with InvalidStateError, no 'close' error is reported. */
	close(): void {
		if (this.#closed) return;
		this.#closing = true;
		this.#ws.close(1000);
		this.#onClosed(undefined);
	}

	#onClosed(error: Error | undefined): void {
		if (this.#closed) return;
		this.#closed = true;
		for (const [id, pending] of this.#pending) {
			this.#pending.delete(id);
			clearTimeout(pending.timer);
			pending.reject(new InvalidStateError(`connection closed (${pending.method})`));
		}
		this.safeEmit('close', error);
	}

	#onMessage(text: string): void {
		let msg: Record<string, unknown>;
		try {
			msg = JSON.parse(text);
		} catch {
			return;
		}
		if (msg === null || typeof msg !== 'object') return;
		if (typeof msg.method === 'string' && msg.id === undefined) {
			this.#onNotification(msg.method, (msg.params ?? {}) as Record<string, unknown>);
			return;
		}
		if (typeof msg.id !== 'number') return;
		const pending = this.#pending.get(msg.id);
		if (!pending) return;
		this.#pending.delete(msg.id);
		clearTimeout(pending.timer);
		if (msg.error !== undefined) {
			pending.reject(errorFromWire(pending.method, msg.error as never));
		} else {
			pending.resolve(msg.result ?? undefined);
		}
	}

	#onNotification(method: string, params: Record<string, unknown>): void {
		const dot = method.indexOf('.');
		if (dot <= 0) return;
		const klass = method.slice(0, dot);
		const event = method.slice(dot + 1);
		const id = params[`${klass}Id`];
		if (typeof id !== 'string') return;
		// Producers sharing an id (pipeToRouter with keepId) are told apart by their router.
		const routerId = klass !== 'router' ? params.routerId : undefined;
		const handler =
			(typeof routerId === 'string' ? this.#handlers.get(`${id}@${routerId}`) : undefined) ?? this.#handlers.get(id);
		if (!handler) return;
		try {
			handler(event, params);
		} catch (error) {
			this.safeEmit('listenererror', method, error as Error);
		}
	}
}

function stripUndefined(params: Record<string, unknown>): Record<string, unknown> {
	const out: Record<string, unknown> = {};
	for (const [k, v] of Object.entries(params)) if (v !== undefined) out[k] = v;
	return out;
}
