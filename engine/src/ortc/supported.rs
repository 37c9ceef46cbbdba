//! The codecs and header extensions the engine can route: mediasoup's `supportedRtpCapabilities`.
//!
//! Values follow mediasoup 3.15/3.16 (the 3.x line after iSAC, H264-SVC and the frame-marking
//! extensions were dropped, and after AV1 and the dependency descriptor were added). The table is
//! returned raw, as mediasoup's `getSupportedRtpCapabilities()` does: no defaults filled in.
//! Router capabilities are generated from a validated copy (see [`super::router_caps`]).

use crate::rtp_parameters::{
    uri, CodecParameters, MediaKind, ParameterValue, RtcpFeedback, RtpCapabilities, RtpCodecCapability,
    RtpHeaderExtension, RtpHeaderExtensionDirection,
};

/// One audio codec row: mime type, static payload type, clock rate, channels.
struct AudioRow {
    mime_type: &'static str,
    preferred_payload_type: Option<u8>,
    clock_rate: u32,
    channels: Option<u8>,
    /// Whether the row carries `nack` + `transport-cc` (opus family), only `transport-cc`
    /// (other encoded audio) or nothing (CN, telephone-event).
    feedback: AudioFeedback,
}

#[derive(Clone, Copy)]
enum AudioFeedback {
    NackAndTransportCc,
    TransportCc,
    None,
}

const fn audio(
    mime_type: &'static str,
    preferred_payload_type: Option<u8>,
    clock_rate: u32,
    channels: Option<u8>,
    feedback: AudioFeedback,
) -> AudioRow {
    AudioRow { mime_type, preferred_payload_type, clock_rate, channels, feedback }
}

/// Audio codecs in mediasoup's order (multiopus rows get their parameters below).
const AUDIO_ROWS: [AudioRow; 19] = [
    audio("audio/opus", None, 48000, Some(2), AudioFeedback::NackAndTransportCc),
    audio("audio/multiopus", None, 48000, Some(4), AudioFeedback::NackAndTransportCc),
    audio("audio/multiopus", None, 48000, Some(6), AudioFeedback::NackAndTransportCc),
    audio("audio/multiopus", None, 48000, Some(8), AudioFeedback::NackAndTransportCc),
    audio("audio/PCMU", Some(0), 8000, None, AudioFeedback::TransportCc),
    audio("audio/PCMA", Some(8), 8000, None, AudioFeedback::TransportCc),
    audio("audio/G722", Some(9), 8000, None, AudioFeedback::TransportCc),
    audio("audio/iLBC", None, 8000, None, AudioFeedback::TransportCc),
    audio("audio/SILK", None, 24000, None, AudioFeedback::TransportCc),
    audio("audio/SILK", None, 16000, None, AudioFeedback::TransportCc),
    audio("audio/SILK", None, 12000, None, AudioFeedback::TransportCc),
    audio("audio/SILK", None, 8000, None, AudioFeedback::TransportCc),
    audio("audio/CN", Some(13), 32000, None, AudioFeedback::None),
    audio("audio/CN", Some(13), 16000, None, AudioFeedback::None),
    audio("audio/CN", Some(13), 8000, None, AudioFeedback::None),
    audio("audio/telephone-event", None, 48000, None, AudioFeedback::None),
    audio("audio/telephone-event", None, 32000, None, AudioFeedback::None),
    audio("audio/telephone-event", None, 16000, None, AudioFeedback::None),
    audio("audio/telephone-event", None, 8000, None, AudioFeedback::None),
];

/// multiopus layouts: channels, channel_mapping, num_streams, coupled_streams.
const MULTIOPUS_LAYOUTS: [(u8, &str, u32, u32); 3] = [
    (4, "0,1,2,3", 2, 2),         // Quad.
    (6, "0,4,1,2,3,5", 4, 2),     // 5.1.
    (8, "0,6,1,2,3,4,5,7", 5, 3), // 7.1.
];

/// Video codecs in mediasoup's order; `true` when the row carries
/// `level-asymmetry-allowed: 1`.
const VIDEO_ROWS: [(&str, bool); 5] =
    [("video/VP8", false), ("video/VP9", false), ("video/H264", true), ("video/H265", true), ("video/AV1", false)];

/// Header extensions as `(kind, uri, preferredId, direction)`, mediasoup 3.15/3.16 order.
/// Ids 6, 7 (frame marking, removed) and 9 are unused on purpose.
const HEADER_EXTENSION_ROWS: [(MediaKind, &str, u8, RtpHeaderExtensionDirection); 16] = {
    use MediaKind::{Audio, Video};
    use RtpHeaderExtensionDirection::{Recvonly, Sendrecv};
    [
        (Audio, uri::MID, 1, Sendrecv),
        (Video, uri::MID, 1, Sendrecv),
        (Video, uri::RID, 2, Recvonly),
        (Video, uri::RRID, 3, Recvonly),
        (Audio, uri::ABS_SEND_TIME, 4, Sendrecv),
        (Video, uri::ABS_SEND_TIME, 4, Sendrecv),
        // Audio only takes transport-wide-cc when receiving.
        (Audio, uri::TRANSPORT_WIDE_CC, 5, Recvonly),
        (Video, uri::TRANSPORT_WIDE_CC, 5, Sendrecv),
        (Video, uri::DEPENDENCY_DESCRIPTOR, 8, Recvonly),
        (Audio, uri::AUDIO_LEVEL, 10, Sendrecv),
        (Video, uri::VIDEO_ORIENTATION, 11, Sendrecv),
        (Video, uri::TOFFSET, 12, Sendrecv),
        (Audio, uri::ABS_CAPTURE_TIME, 13, Sendrecv),
        (Video, uri::ABS_CAPTURE_TIME, 13, Sendrecv),
        (Audio, uri::PLAYOUT_DELAY, 14, Sendrecv),
        (Video, uri::PLAYOUT_DELAY, 14, Sendrecv),
    ]
};

fn video_feedback() -> Vec<RtcpFeedback> {
    vec![
        RtcpFeedback::new("nack", None),
        RtcpFeedback::new("nack", Some("pli")),
        RtcpFeedback::new("ccm", Some("fir")),
        RtcpFeedback::new("goog-remb", None),
        RtcpFeedback::new("transport-cc", None),
    ]
}

fn audio_feedback(feedback: AudioFeedback) -> Option<Vec<RtcpFeedback>> {
    match feedback {
        AudioFeedback::NackAndTransportCc => {
            Some(vec![RtcpFeedback::new("nack", None), RtcpFeedback::new("transport-cc", None)])
        }
        AudioFeedback::TransportCc => Some(vec![RtcpFeedback::new("transport-cc", None)]),
        AudioFeedback::None => None,
    }
}

fn multiopus_parameters(channels: u8) -> Option<CodecParameters> {
    let (_, mapping, num_streams, coupled_streams) = MULTIOPUS_LAYOUTS.iter().find(|layout| layout.0 == channels)?;
    let mut parameters = CodecParameters::new();
    parameters.insert("channel_mapping".to_owned(), ParameterValue::from(*mapping));
    parameters.insert("num_streams".to_owned(), ParameterValue::from(*num_streams));
    parameters.insert("coupled_streams".to_owned(), ParameterValue::from(*coupled_streams));
    Some(parameters)
}

/// mediasoup's `supportedRtpCapabilities`, as mediasoup stores them (no defaults filled in).
pub fn supported_rtp_capabilities() -> RtpCapabilities {
    let mut codecs = Vec::with_capacity(AUDIO_ROWS.len() + VIDEO_ROWS.len());
    for row in &AUDIO_ROWS {
        let parameters =
            if row.mime_type == "audio/multiopus" { row.channels.and_then(multiopus_parameters) } else { None };
        codecs.push(RtpCodecCapability {
            kind: MediaKind::Audio,
            mime_type: row.mime_type.to_owned(),
            preferred_payload_type: row.preferred_payload_type,
            clock_rate: row.clock_rate,
            channels: row.channels,
            parameters,
            rtcp_feedback: audio_feedback(row.feedback),
        });
    }
    for &(mime_type, level_asymmetry_allowed) in &VIDEO_ROWS {
        let parameters = level_asymmetry_allowed.then(|| {
            let mut parameters = CodecParameters::new();
            parameters.insert("level-asymmetry-allowed".to_owned(), ParameterValue::from(1));
            parameters
        });
        codecs.push(RtpCodecCapability {
            kind: MediaKind::Video,
            mime_type: mime_type.to_owned(),
            preferred_payload_type: None,
            clock_rate: 90000,
            channels: None,
            parameters,
            rtcp_feedback: Some(video_feedback()),
        });
    }
    let header_extensions = HEADER_EXTENSION_ROWS
        .iter()
        .map(|&(kind, uri, preferred_id, direction)| RtpHeaderExtension {
            kind,
            uri: uri.to_owned(),
            preferred_id,
            preferred_encrypt: Some(false),
            direction: Some(direction),
        })
        .collect();
    RtpCapabilities { codecs: Some(codecs), header_extensions: Some(header_extensions) }
}
