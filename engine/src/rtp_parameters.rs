//! mediasoup v3's RTP JSON shapes, field for field (camelCase, same optionality).
//!
//! These are what applications and mediasoup-client exchange; ORTC rules over them live in
//! [`crate::ortc`].

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `'audio' | 'video'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// A codec parameter value: mediasoup accepts strings and numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParameterValue {
    Number(serde_json::Number),
    String(String),
}

impl ParameterValue {
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            ParameterValue::Number(n) => n.as_u64(),
            ParameterValue::String(_) => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParameterValue::String(s) => Some(s),
            ParameterValue::Number(_) => None,
        }
    }
}

impl From<u32> for ParameterValue {
    fn from(v: u32) -> Self {
        ParameterValue::Number(v.into())
    }
}

impl From<&str> for ParameterValue {
    fn from(v: &str) -> Self {
        ParameterValue::String(v.to_owned())
    }
}

/// `parameters` of a codec: a map of name to string or number, ordered for stable output.
pub type CodecParameters = BTreeMap<String, ParameterValue>;

/// `{ type, parameter? }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtcpFeedback {
    #[serde(rename = "type")]
    pub r#type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
}

impl RtcpFeedback {
    pub fn new(r#type: &str, parameter: Option<&str>) -> Self {
        RtcpFeedback { r#type: r#type.to_owned(), parameter: parameter.map(str::to_owned) }
    }
}

/// A codec a router or endpoint can handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCodecCapability {
    pub kind: MediaKind,
    pub mime_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_payload_type: Option<u8>,
    pub clock_rate: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<CodecParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcp_feedback: Option<Vec<RtcpFeedback>>,
}

/// `'sendrecv' | 'sendonly' | 'recvonly' | 'inactive'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RtpHeaderExtensionDirection {
    Sendrecv,
    Sendonly,
    Recvonly,
    Inactive,
}

/// A header extension a router or endpoint can handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpHeaderExtension {
    pub kind: MediaKind,
    pub uri: String,
    pub preferred_id: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_encrypt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<RtpHeaderExtensionDirection>,
}

/// `{ codecs?, headerExtensions? }`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCapabilities {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codecs: Option<Vec<RtpCodecCapability>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_extensions: Option<Vec<RtpHeaderExtension>>,
}

/// One codec in `RtpParameters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpCodecParameters {
    pub mime_type: String,
    pub payload_type: u8,
    pub clock_rate: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<CodecParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcp_feedback: Option<Vec<RtcpFeedback>>,
}

/// `{ ssrc }` of an encoding's RTX stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RtxParameters {
    pub ssrc: u32,
}

/// One encoding (stream) in `RtpParameters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpEncodingParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec_payload_type: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtx: Option<RtxParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtx: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalability_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_resolution_down_by: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_bitrate: Option<u32>,
}

/// One header extension in `RtpParameters`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpHeaderExtensionParameters {
    pub uri: String,
    pub id: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<CodecParameters>,
}

/// `{ cname?, reducedSize? }`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtcpParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduced_size: Option<bool>,
}

/// What a producer sends or a consumer receives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    pub codecs: Vec<RtpCodecParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_extensions: Option<Vec<RtpHeaderExtensionParameters>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encodings: Option<Vec<RtpEncodingParameters>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcp: Option<RtcpParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msid: Option<String>,
}

/// The header extension URIs mediasoup knows.
pub mod uri {
    pub const MID: &str = "urn:ietf:params:rtp-hdrext:sdes:mid";
    pub const RID: &str = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id";
    pub const RRID: &str = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id";
    pub const ABS_SEND_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time";
    pub const TRANSPORT_WIDE_CC: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
    pub const FRAME_MARKING_07: &str = "http://tools.ietf.org/html/draft-ietf-avtext-framemarking-07";
    pub const FRAME_MARKING: &str = "urn:ietf:params:rtp-hdrext:framemarking";
    pub const AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
    pub const VIDEO_ORIENTATION: &str = "urn:3gpp:video-orientation";
    pub const TOFFSET: &str = "urn:ietf:params:rtp-hdrext:toffset";
    pub const ABS_CAPTURE_TIME: &str = "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time";
    pub const PLAYOUT_DELAY: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
    pub const DEPENDENCY_DESCRIPTOR: &str =
        "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";
}
