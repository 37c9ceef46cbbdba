import { AppData, checkOpen, unwrap } from './common';
import type { NumSctpStreams, SctpParameters, SctpState } from './rtpParameters';
import {
	Transport,
	TransportEvents,
	TransportListenInfo,
	TransportListenIp,
	TransportObserverEvents,
	TransportTuple,
	TransportType,
} from './Transport';
import type { WebRtcServer } from './WebRtcServer';

export type WebRtcTransportOptions<WebRtcTransportAppData extends AppData = AppData> = {
	webRtcServer?: WebRtcServer;
	listenInfos?: TransportListenInfo[];
	/** @deprecated */
	listenIps?: (TransportListenIp | string)[];
	/** @deprecated */
	port?: number;
	enableUdp?: boolean;
	enableTcp?: boolean;
	preferUdp?: boolean;
	preferTcp?: boolean;
	iceConsentTimeout?: number;
	initialAvailableOutgoingBitrate?: number;
	enableSctp?: boolean;
	numSctpStreams?: NumSctpStreams;
	maxSctpMessageSize?: number;
	sctpSendBufferSize?: number;
	appData?: WebRtcTransportAppData;
};

export type IceParameters = { usernameFragment: string; password: string; iceLite?: boolean };

export type IceCandidate = {
	foundation: string;
	priority: number;
	/** @deprecated mediasoup's older name of address. */
	ip?: string;
	address: string;
	protocol: 'udp' | 'tcp';
	port: number;
	type: 'host';
	tcpType?: 'passive';
};

export type DtlsParameters = { role?: DtlsRole; fingerprints: DtlsFingerprint[] };

export type FingerprintAlgorithm = 'sha-1' | 'sha-224' | 'sha-256' | 'sha-384' | 'sha-512';

export type DtlsFingerprint = { algorithm: FingerprintAlgorithm; value: string };

export type IceRole = 'controlled' | 'controlling';

export type IceState = 'new' | 'connected' | 'completed' | 'disconnected' | 'closed';

export type DtlsRole = 'auto' | 'client' | 'server';

export type DtlsState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

export type WebRtcTransportEvents = TransportEvents & {
	icestatechange: [IceState];
	iceselectedtuplechange: [TransportTuple];
	dtlsstatechange: [DtlsState];
	sctpstatechange: [SctpState];
};

export type WebRtcTransportObserverEvents = TransportObserverEvents & {
	icestatechange: [IceState];
	iceselectedtuplechange: [TransportTuple];
	dtlsstatechange: [DtlsState];
	sctpstatechange: [SctpState];
};

export class WebRtcTransport<WebRtcTransportAppData extends AppData = AppData> extends Transport<
	WebRtcTransportAppData,
	WebRtcTransportEvents,
	WebRtcTransportObserverEvents
> {
	get type(): TransportType {
		return 'webrtc';
	}

	get iceRole(): IceRole {
		return this.data.iceRole ?? 'controlled';
	}

	get iceParameters(): IceParameters {
		return this.data.iceParameters;
	}

	get iceCandidates(): IceCandidate[] {
		return this.data.iceCandidates ?? [];
	}

	get iceState(): IceState {
		return this.data.iceState ?? 'new';
	}

	get iceSelectedTuple(): TransportTuple | undefined {
		return this.data.iceSelectedTuple ?? undefined;
	}

	get dtlsParameters(): DtlsParameters {
		return this.data.dtlsParameters;
	}

	get dtlsState(): DtlsState {
		return this.data.dtlsState ?? 'new';
	}

	get dtlsRemoteCert(): string | undefined {
		return this.data.dtlsRemoteCert ?? undefined;
	}

	get sctpParameters(): SctpParameters | undefined {
		return this.data.sctpParameters ?? undefined;
	}

	get sctpState(): SctpState | undefined {
		return this.data.sctpState ?? undefined;
	}

	/** Gives the remote DTLS parameters (mediasoup's `transport.connect({ dtlsParameters })`). */
	override async connect({ dtlsParameters }: { dtlsParameters: DtlsParameters }): Promise<void> {
		checkOpen(this.closed, 'Transport');
		if (!dtlsParameters || typeof dtlsParameters !== 'object') throw new TypeError('missing dtlsParameters');
		const result = await this.channel.request<{ dtlsLocalRole?: DtlsRole } | null>('transport.connect', {
			transportId: this.id,
			dtlsParameters,
		});
		if (result && typeof result === 'object' && result.dtlsLocalRole) {
			this.data.dtlsParameters = { ...this.data.dtlsParameters, role: result.dtlsLocalRole };
		}
	}

	/** New local ICE credentials; resolves with them (the server answers `{iceParameters}`). */
	async restartIce(): Promise<IceParameters> {
		checkOpen(this.closed, 'Transport');
		const result = await this.channel.request('transport.restartIce', { transportId: this.id });
		const iceParameters = unwrap<IceParameters>(result, 'iceParameters');
		if (!iceParameters) throw new Error('restartIce: the server answered no iceParameters');
		this.data.iceParameters = iceParameters;
		return iceParameters;
	}

	protected override onClosed(): void {
		this.data.iceState = 'closed';
		this.data.iceSelectedTuple = undefined;
		this.data.dtlsState = 'closed';
		if (this.data.sctpState) this.data.sctpState = 'closed';
	}

	protected override handleNotification(event: string, params: Record<string, any>): boolean {
		switch (event) {
			case 'icestatechange':
				this.data.iceState = params.iceState;
				this.emitEvent('icestatechange', params.iceState);
				this.emitObserver('icestatechange', params.iceState);
				return true;
			case 'iceselectedtuplechange':
				this.data.iceSelectedTuple = params.iceSelectedTuple;
				this.emitEvent('iceselectedtuplechange', params.iceSelectedTuple);
				this.emitObserver('iceselectedtuplechange', params.iceSelectedTuple);
				return true;
			case 'dtlsstatechange':
				this.data.dtlsState = params.dtlsState;
				if (params.dtlsRemoteCert !== undefined) this.data.dtlsRemoteCert = params.dtlsRemoteCert;
				this.emitEvent('dtlsstatechange', params.dtlsState);
				this.emitObserver('dtlsstatechange', params.dtlsState);
				return true;
			case 'sctpstatechange':
				this.data.sctpState = params.sctpState;
				this.emitEvent('sctpstatechange', params.sctpState);
				this.emitObserver('sctpstatechange', params.sctpState);
				return true;
			default:
				return false;
		}
	}
}
