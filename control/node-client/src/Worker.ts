import { Channel, ConnectionOptions } from './channel';
import { AppData, checkAppData, checkOpen } from './common';
import { EnhancedEventEmitter } from './enhancedEvents';
import { Router, RouterOptions } from './Router';
import type { RtpCapabilities } from './rtpParameters';
import { WebRtcServer, WebRtcServerOptions } from './WebRtcServer';

export type WorkerLogLevel = 'debug' | 'warn' | 'error' | 'none';

export type WorkerLogTag =
	| 'info'
	| 'ice'
	| 'dtls'
	| 'rtp'
	| 'srtp'
	| 'rtcp'
	| 'rtx'
	| 'bwe'
	| 'score'
	| 'simulcast'
	| 'svc'
	| 'sctp'
	| 'message';

/** mediasoup's WorkerSettings, plus where the shardsfu server is (`url`, `token`). */
export type WorkerSettings<WorkerAppData extends AppData = AppData> = ConnectionOptions & {
	logLevel?: WorkerLogLevel;
	logTags?: WorkerLogTag[];
	rtcMinPort?: number;
	rtcMaxPort?: number;
	dtlsCertificateFile?: string;
	dtlsPrivateKeyFile?: string;
	libwebrtcFieldTrials?: string;
	disableLiburing?: boolean;
	appData?: WorkerAppData;
};

export type WorkerUpdateableSettings<T extends AppData = AppData> = Pick<WorkerSettings<T>, 'logLevel' | 'logTags'>;

export type WorkerResourceUsage = Record<string, number>;

export type WorkerEvents = {
	died: [Error];
	subprocessclose: [];
	listenererror: [string, Error];
};

export type WorkerObserverEvents = {
	close: [];
	newwebrtcserver: [WebRtcServer];
	newrouter: [Router];
};

/**
 * A worker of the shardsfu server, reached over its own WebSocket. There is no subprocess: `pid`
 * is what the server reports (its own process id), and the worker "dies" when the connection is lost.
 */
export class Worker<WorkerAppData extends AppData = AppData> extends EnhancedEventEmitter<WorkerEvents> {
	readonly #channel: Channel;
	readonly #id: string;
	readonly #pid: number;
	#closed = false;
	#died = false;
	#appData: WorkerAppData;
	readonly #webRtcServers = new Set<WebRtcServer>();
	readonly #routers = new Set<Router>();
	readonly #observer = new EnhancedEventEmitter<WorkerObserverEvents>();

	/** @internal */
	constructor({ channel, id, pid, appData }: { channel: Channel; id: string; pid: number; appData?: WorkerAppData }) {
		super();
		this.#channel = channel;
		this.#id = id;
		this.#pid = pid;
		this.#appData = appData ?? ({} as WorkerAppData);
		channel.subscribe(id, (event, params) => {
			if (event === 'died') this.#workerDied(new Error(String(params.error ?? 'worker died')));
		});
		channel.on('close', (error) => {
			if (!this.#closed) this.#workerDied(error ?? new Error('connection closed'));
		});
	}

	/** The server's id for this worker (not in mediasoup, where a worker is known by its pid). */
	get id(): string {
		return this.#id;
	}

	get pid(): number {
		return this.#pid;
	}

	get closed(): boolean {
		return this.#closed;
	}

	get died(): boolean {
		return this.#died;
	}

	/** There is no subprocess: true once the worker is closed. */
	get subprocessClosed(): boolean {
		return this.#closed;
	}

	get appData(): WorkerAppData {
		return this.#appData;
	}

	set appData(appData: WorkerAppData) {
		this.#appData = appData;
	}

	get observer(): EnhancedEventEmitter<WorkerObserverEvents> {
		return this.#observer;
	}

	/** Closes the worker on the server (and everything in it), then its connection. */
	close(): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#channel.unsubscribe(this.#id);
		const channel = this.#channel;
		channel
			.request('worker.close', { workerId: this.#id })
			.catch(() => {})
			.finally(() => {
				channel.close();
				// mediasoup says so when the subprocess has exited; here, when the connection is gone.
				this.safeEmit('subprocessclose');
			});
		this.#closeChildren();
		this.#observer.safeEmit('close');
	}

	#workerDied(error: Error): void {
		if (this.#closed) return;
		this.#closed = true;
		this.#died = true;
		this.#channel.unsubscribe(this.#id);
		this.#channel.close();
		this.#closeChildren();
		this.safeEmit('died', error);
		this.safeEmit('subprocessclose');
		this.#observer.safeEmit('close');
	}

	#closeChildren(): void {
		for (const webRtcServer of [...this.#webRtcServers]) webRtcServer.workerClosed();
		this.#webRtcServers.clear();
		for (const router of [...this.#routers]) router.workerClosed();
		this.#routers.clear();
	}

	async dump(): Promise<Record<string, any>> {
		checkOpen(this.#closed, 'Worker');
		return this.#channel.request('worker.dump', { workerId: this.#id });
	}

	async getResourceUsage(): Promise<WorkerResourceUsage> {
		checkOpen(this.#closed, 'Worker');
		return this.#channel.request('worker.getResourceUsage', { workerId: this.#id });
	}

	async updateSettings({ logLevel, logTags }: WorkerUpdateableSettings = {}): Promise<void> {
		checkOpen(this.#closed, 'Worker');
		await this.#channel.request('worker.updateSettings', { workerId: this.#id, logLevel, logTags });
	}

	async createWebRtcServer<WebRtcServerAppData extends AppData = AppData>(
		options: WebRtcServerOptions<WebRtcServerAppData>,
	): Promise<WebRtcServer<WebRtcServerAppData>> {
		checkOpen(this.#closed, 'Worker');
		const { listenInfos, appData } = options ?? ({} as never);
		if (!Array.isArray(listenInfos)) throw new TypeError('listenInfos must be an array');
		checkAppData(appData);
		const data = await this.#channel.request<{ id: string }>('worker.createWebRtcServer', {
			workerId: this.#id,
			listenInfos,
			appData,
		});
		const webRtcServer = new WebRtcServer<WebRtcServerAppData>({
			channel: this.#channel,
			id: data.id,
			appData,
			onClose: (s) => this.#webRtcServers.delete(s),
		});
		if (this.#closed) {
			webRtcServer.workerClosed();
		} else {
			this.#webRtcServers.add(webRtcServer as WebRtcServer);
			this.#observer.safeEmit('newwebrtcserver', webRtcServer as WebRtcServer);
		}
		return webRtcServer;
	}

	async createRouter<RouterAppData extends AppData = AppData>(
		options: RouterOptions<RouterAppData> = {},
	): Promise<Router<RouterAppData>> {
		checkOpen(this.#closed, 'Worker');
		const { mediaCodecs, appData } = options;
		if (mediaCodecs !== undefined && !Array.isArray(mediaCodecs)) {
			throw new TypeError('if given, mediaCodecs must be an array');
		}
		checkAppData(appData);
		const data = await this.#channel.request<{ id: string; rtpCapabilities: RtpCapabilities }>(
			'worker.createRouter',
			{ workerId: this.#id, mediaCodecs, appData },
		);
		const router = new Router<RouterAppData>({
			channel: this.#channel,
			id: data.id,
			rtpCapabilities: data.rtpCapabilities,
			appData,
			onClose: (r) => this.#routers.delete(r),
		});
		if (this.#closed) {
			router.workerClosed();
		} else {
			this.#routers.add(router as Router);
			this.#observer.safeEmit('newrouter', router as Router);
		}
		return router;
	}
}
