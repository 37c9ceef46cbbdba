import { AppData, checkOpen, sendAndForget } from './common';
import { UnsupportedError } from './errors';
import { Transport, TransportEvents, TransportObserverEvents, TransportType } from './Transport';

export type DirectTransportOptions<DirectTransportAppData extends AppData = AppData> = {
	maxMessageSize?: number;
	appData?: DirectTransportAppData;
};

export type DirectTransportEvents = TransportEvents & { rtcp: [Buffer] };
export type DirectTransportObserverEvents = TransportObserverEvents & { rtcp: [Buffer] };

/**
 * A transport whose packets go through the API connection. RTP and RTCP packets travel
 * base64-encoded (`producer.send {rtpPacket}`, `transport.sendRtcp {rtcpPacket}`, notifications
 * `consumer.rtp {packet}` and `transport.rtcp {packet}`).
 */
export class DirectTransport<DirectTransportAppData extends AppData = AppData> extends Transport<
	DirectTransportAppData,
	DirectTransportEvents,
	DirectTransportObserverEvents
> {
	get type(): TransportType {
		return 'direct';
	}

	/** Does nothing, as in mediasoup. */
	override async connect(): Promise<void> {}

	override async setMaxIncomingBitrate(): Promise<void> {
		throw new UnsupportedError('setMaxIncomingBitrate() not implemented in DirectTransport');
	}

	override async setMaxOutgoingBitrate(): Promise<void> {
		throw new UnsupportedError('setMaxOutgoingBitrate() not implemented in DirectTransport');
	}

	override async setMinOutgoingBitrate(): Promise<void> {
		throw new UnsupportedError('setMinOutgoingBitrate() not implemented in DirectTransport');
	}

	sendRtcp(rtcpPacket: Buffer): void {
		checkOpen(this.closed, 'Transport');
		if (!Buffer.isBuffer(rtcpPacket)) throw new TypeError('rtcpPacket must be a Buffer');
		sendAndForget(
			this.channel.request('transport.sendRtcp', { transportId: this.id, rtcpPacket: rtcpPacket.toString('base64') }),
		);
	}

	protected override handleNotification(event: string, params: Record<string, any>): boolean {
		const b64 = params.packet ?? params.rtcpPacket;
		if (event !== 'rtcp' || typeof b64 !== 'string') return false;
		const packet = Buffer.from(b64, 'base64');
		this.emitEvent('rtcp', packet);
		return true;
	}
}
