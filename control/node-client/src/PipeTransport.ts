import { AppData, checkOpen } from './common';
import type { NumSctpStreams, SctpParameters, SctpState, SrtpParameters } from './rtpParameters';
import {
	Transport,
	TransportEvents,
	TransportListenInfo,
	TransportListenIp,
	TransportObserverEvents,
	TransportTuple,
	TransportType,
} from './Transport';

export type PipeTransportOptions<PipeTransportAppData extends AppData = AppData> = {
	listenInfo?: TransportListenInfo;
	/** @deprecated */
	listenIp?: TransportListenIp | string;
	/** @deprecated */
	port?: number;
	enableSctp?: boolean;
	numSctpStreams?: NumSctpStreams;
	maxSctpMessageSize?: number;
	sctpSendBufferSize?: number;
	enableRtx?: boolean;
	enableSrtp?: boolean;
	appData?: PipeTransportAppData;
};

export type PipeTransportEvents = TransportEvents & { sctpstatechange: [SctpState] };
export type PipeTransportObserverEvents = TransportObserverEvents & { sctpstatechange: [SctpState] };

export class PipeTransport<PipeTransportAppData extends AppData = AppData> extends Transport<
	PipeTransportAppData,
	PipeTransportEvents,
	PipeTransportObserverEvents
> {
	get type(): TransportType {
		return 'pipe';
	}

	get tuple(): TransportTuple {
		return this.data.tuple;
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

	/** mediasoup's `pipeTransport.connect({ ip, port, srtpParameters })`. */
	override async connect({
		ip,
		port,
		srtpParameters,
	}: {
		ip: string;
		port: number;
		srtpParameters?: SrtpParameters;
	}): Promise<void> {
		checkOpen(this.closed, 'Transport');
		const result = await this.channel.request<{ tuple?: TransportTuple } | null>('transport.connect', {
			transportId: this.id,
			ip,
			port,
			srtpParameters,
		});
		if (result && typeof result === 'object' && result.tuple) this.data.tuple = result.tuple;
	}

	protected override onClosed(): void {
		if (this.data.sctpState) this.data.sctpState = 'closed';
	}

	protected override handleNotification(event: string, params: Record<string, any>): boolean {
		if (event !== 'sctpstatechange') return false;
		this.data.sctpState = params.sctpState;
		this.emitEvent('sctpstatechange', params.sctpState);
		this.emitObserver('sctpstatechange', params.sctpState);
		return true;
	}
}
