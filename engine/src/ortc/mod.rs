//! mediasoup v3's ORTC rules over the JSON shapes of [`crate::rtp_parameters`]: supported
//! capabilities, validation, router capabilities, codec matching, and the way a producer's
//! parameters become a consumer's.
//!
//! Everything here is a pure function of its arguments. Where mediasoup draws random SSRCs,
//! the caller passes them in.
//!
//! - [`supported`]: the codec and header extension table.
//! - [`validation`]: `validate*`, which also fill mediasoup's defaults.
//! - [`router_caps`]: router capabilities from `mediaCodecs`.
//! - [`matching`] and [`h264`]: codec matching, H264 profile-level-id rules.
//! - [`mapping`]: producer mapping, consumable, consumer and pipe consumer parameters.
//! - [`scalability`]: `scalabilityMode` strings.

pub mod h264;
pub mod mapping;
pub mod matching;
pub mod router_caps;
pub mod scalability;
pub mod supported;
pub mod validation;

use serde::{Deserialize, Serialize};

pub use mapping::{
    can_consume, get_consumable_rtp_parameters, get_consumer_rtp_parameters, get_pipe_consumer_rtp_parameters,
    get_producer_rtp_parameters_mapping,
};
pub use matching::{is_rtx_codec, is_rtx_mime_type, match_codecs, match_codecs_and_modify, CodecLike};
pub use router_caps::{generate_router_rtp_capabilities, DYNAMIC_PAYLOAD_TYPES};
pub use scalability::{parse_scalability_mode, ScalabilityMode};
pub use supported::supported_rtp_capabilities;
pub use validation::{
    validate_rtcp_feedback, validate_rtcp_parameters, validate_rtp_capabilities, validate_rtp_codec_capability,
    validate_rtp_codec_parameters, validate_rtp_encoding_parameters, validate_rtp_header_extension,
    validate_rtp_header_extension_parameters, validate_rtp_parameters,
};

/// A producer codec's payload type and the router payload type it maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpMappingCodec {
    pub payload_type: u8,
    pub mapped_payload_type: u8,
}

/// A producer encoding (by SSRC or RID) and the SSRC it is forwarded with inside the router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpMappingEncoding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssrc: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scalability_mode: Option<String>,
    pub mapped_ssrc: u32,
}

/// mediasoup's `RtpMapping`: how a producer's stream is rewritten on its way into the router.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RtpMapping {
    pub codecs: Vec<RtpMappingCodec>,
    pub encodings: Vec<RtpMappingEncoding>,
}
