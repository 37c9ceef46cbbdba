import { AppData, checkOpen } from './common';
import type { NumSctpStreams, SctpParameters, SctpState, SrtpCryptoSuite, SrtpParameters } from './rtpParameters';
import {
	Transport,
	TransportEvents,
	TransportListenInfo,
	TransportListenIp,
	TransportObserverEvents,
	TransportTuple,
	TransportType,
} from './Transport';

export type PlainTransportOptions<PlainTransportAppData extends AppData = AppData> = {
	listenInfo?: TransportListenInfo;
	rtcpListenInfo?: TransportListenInfo;
	/** @deprecated */
	listenIp?: TransportListenIp | string;
	/** @deprecated */
	port?: number;
	rtcpMux?: boolean;
	comedia?: boolean;
	enableSctp?: boolean;
	numSctpStreams?: NumSctpStreams;
	maxSctpMessageSize?: number;
	sctpSendBufferSize?: number;
	enableSrtp?: boolean;
	srtpCryptoSuite?: SrtpCryptoSuite;
	appData?: PlainTransportAppData;
};

export type PlainTransportEvents = TransportEvents & {
	tuple: [TransportTuple];
	rtcptuple: [TransportTuple];
	sctpstatechange: [SctpState];
};

export type PlainTransportObserverEvents = TransportObserverEvents & {
	tuple: [TransportTuple];
	rtcptuple: [TransportTuple];
	sctpstatechange: [SctpState];
};

/** The connect answer of plain and pipe transports (mediasoup's). */
type ConnectResult = { tuple?: TransportTuple; rtcpTuple?: TransportTuple; srtpParameters?: SrtpParameters } | null;

export class PlainTransport<PlainTransportAppData extends AppData = AppData> extends Transport<
	PlainTransportAppData,
	PlainTransportEvents,
	PlainTransportObserverEvents
> {
	get type(): TransportType {
		return 'plain';
	}

	get tuple(): TransportTuple {
		return this.data.tuple;
	}

	get rtcpTuple(): TransportTuple | undefined {
		return this.data.rtcpTuple ?? undefined;
	}

	get sctpParameters(): SctpParameters | undefined {
		return this.data.sctpParameters ?? undefined;
	}

	get sctpState(): SctpState | undefined {
		return this.data.sctpState ?? undefined;
	}

	get srtpParameters(): SrtpParameters | undefined {
		return this.data.srtpParameters ?? undefined;
	}

	/** mediasoup's `plainTransport.connect({ ip, port, rtcpPort, srtpParameters })`. */
	override async connect({
		ip,
		port,
		rtcpPort,
		srtpParameters,
	}: {
		ip?: string;
		port?: number;
		rtcpPort?: number;
		srtpParameters?: SrtpParameters;
	}): Promise<void> {
		checkOpen(this.closed, 'Transport');
		const result = await this.channel.request<ConnectResult>('transport.connect', {
			transportId: this.id,
			ip,
			port,
			rtcpPort,
			srtpParameters,
		});
		if (result && typeof result === 'object') {
			if (result.tuple) this.data.tuple = result.tuple;
			if (result.rtcpTuple) this.data.rtcpTuple = result.rtcpTuple;
			if (result.srtpParameters) this.data.srtpParameters = result.srtpParameters;
		}
	}

	protected override onClosed(): void {
		if (this.data.sctpState) this.data.sctpState = 'closed';
	}

	protected override handleNotification(event: string, params: Record<string, any>): boolean {
		switch (event) {
			case 'tuple':
				this.data.tuple = params.tuple;
				this.emitEvent('tuple', params.tuple);
				this.emitObserver('tuple', params.tuple);
				return true;
			case 'rtcptuple':
				this.data.rtcpTuple = params.rtcpTuple;
				this.emitEvent('rtcptuple', params.rtcpTuple);
				this.emitObserver('rtcptuple', params.rtcpTuple);
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
