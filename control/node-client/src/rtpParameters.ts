/** mediasoup's RTP, SCTP and SRTP parameter types (plain JSON on the wire). */

export type MediaKind = 'audio' | 'video';

export type RtpCapabilities = {
	codecs?: RtpCodecCapability[];
	headerExtensions?: RtpHeaderExtension[];
};

export type RtpCodecCapability = {
	kind: MediaKind;
	mimeType: string;
	preferredPayloadType?: number;
	clockRate: number;
	channels?: number;
	parameters?: any;
	rtcpFeedback?: RtcpFeedback[];
};

export type RtpHeaderExtensionDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

export type RtpHeaderExtension = {
	kind: MediaKind;
	uri: RtpHeaderExtensionUri;
	preferredId: number;
	preferredEncrypt?: boolean;
	direction?: RtpHeaderExtensionDirection;
};

export type RtpParameters = {
	mid?: string;
	codecs: RtpCodecParameters[];
	headerExtensions?: RtpHeaderExtensionParameters[];
	encodings?: RtpEncodingParameters[];
	rtcp?: RtcpParameters;
	msid?: string;
};

export type RtpCodecParameters = {
	mimeType: string;
	payloadType: number;
	clockRate: number;
	channels?: number;
	parameters?: any;
	rtcpFeedback?: RtcpFeedback[];
};

export type RtcpFeedback = {
	type: string;
	parameter?: string;
};

export type RtpEncodingParameters = {
	ssrc?: number;
	rid?: string;
	codecPayloadType?: number;
	rtx?: { ssrc: number };
	dtx?: boolean;
	scalabilityMode?: string;
	scaleResolutionDownBy?: number;
	maxBitrate?: number;
};

export type RtpHeaderExtensionUri =
	| 'urn:ietf:params:rtp-hdrext:sdes:mid'
	| 'urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id'
	| 'urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id'
	| 'http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07'
	| 'urn:ietf:params:rtp-hdrext:framemarking'
	| 'urn:ietf:params:rtp-hdrext:ssrc-audio-level'
	| 'urn:3gpp:video-orientation'
	| 'urn:ietf:params:rtp-hdrext:toffset'
	| 'http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01'
	| 'http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time'
	| 'http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time'
	| 'http://www.webrtc.org/experiments/rtp-hdrext/playout-delay'
	| (string & {});

export type RtpHeaderExtensionParameters = {
	uri: RtpHeaderExtensionUri;
	id: number;
	encrypt?: boolean;
	parameters?: any;
};

export type RtcpParameters = {
	cname?: string;
	reducedSize?: boolean;
};

export type SctpCapabilities = {
	numStreams: NumSctpStreams;
};

export type NumSctpStreams = {
	OS: number;
	MIS: number;
};

export type SctpParameters = {
	port: number;
	OS: number;
	MIS: number;
	maxMessageSize: number;
};

export type SctpStreamParameters = {
	streamId: number;
	ordered?: boolean;
	maxPacketLifeTime?: number;
	maxRetransmits?: number;
};

export type SctpState = 'new' | 'connecting' | 'connected' | 'failed' | 'closed';

export type SrtpCryptoSuite =
	| 'AEAD_AES_256_GCM'
	| 'AEAD_AES_128_GCM'
	| 'AES_CM_128_HMAC_SHA1_80'
	| 'AES_CM_128_HMAC_SHA1_32';

export type SrtpParameters = {
	cryptoSuite: SrtpCryptoSuite;
	keyBase64: string;
};

export type ScalabilityMode = {
	spatialLayers: number;
	temporalLayers: number;
	ksvc: boolean;
};

const ScalabilityModeRegex = /^[LS]([1-9]\d{0,1})T([1-9]\d{0,1})(_KEY)?/;

/** mediasoup's parseScalabilityMode: "L1T3" → {spatialLayers: 1, temporalLayers: 3, ksvc: false}. */
export function parseScalabilityMode(scalabilityMode?: string): ScalabilityMode {
	const match = ScalabilityModeRegex.exec(scalabilityMode ?? '');
	if (match) {
		return { spatialLayers: Number(match[1]), temporalLayers: Number(match[2]), ksvc: Boolean(match[3]) };
	}
	return { spatialLayers: 1, temporalLayers: 1, ksvc: false };
}
