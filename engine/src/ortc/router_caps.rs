//! A router's RTP capabilities from its `mediaCodecs`: mediasoup's
//! `generateRouterRtpCapabilities`.

use super::matching::match_codecs;
use super::supported::supported_rtp_capabilities;
use super::validation::{validate_rtp_capabilities, validate_rtp_codec_capability};
use crate::error::{Error, Result};
use crate::rtp_parameters::{CodecParameters, MediaKind, ParameterValue, RtpCapabilities, RtpCodecCapability};

/// Dynamic payload types in the order mediasoup hands them out: 100..=127, then 96..=99.
pub const DYNAMIC_PAYLOAD_TYPES: [u8; 32] = [
    100, 101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112, 113, 114, 115, 116, 117, 118, 119, 120, 121, 122,
    123, 124, 125, 126, 127, 96, 97, 98, 99,
];

/// Hands out dynamic payload types in mediasoup's order, skipping reserved ones.
struct PayloadTypePool {
    free: Vec<u8>,
}

impl PayloadTypePool {
    fn new() -> Self {
        PayloadTypePool { free: DYNAMIC_PAYLOAD_TYPES.to_vec() }
    }

    fn reserve(&mut self, pt: u8) {
        self.free.retain(|&free| free != pt);
    }

    fn take(&mut self) -> Result<u8> {
        if self.free.is_empty() {
            return Err(Error::other("cannot allocate more dynamic codec payload types"));
        }
        Ok(self.free.remove(0))
    }
}

/// Builds router capabilities from media codecs, in their order:
/// - each media codec is validated and must match (non-strict) a supported codec, else
///   UnsupportedError `media codec not supported [mimeType:...]`;
/// - the codec is the supported one (its rtcpFeedback included) with the media codec's
///   parameters merged over it;
/// - its payload type is the media codec's `preferredPayloadType`, else the supported codec's
///   static one, else the next free dynamic one;
/// - every video codec is followed by a `video/rtx` codec (`apt` = its payload type) on the
///   next free dynamic payload type;
/// - header extensions are all the supported ones.
///
/// The supported table is validated (normalized) first, as mediasoup does, so router
/// capabilities carry the filled-in defaults (audio channels, `parameters: {}`, ...).
pub fn generate_router_rtp_capabilities(media_codecs: &[RtpCodecCapability]) -> Result<RtpCapabilities> {
    let mut supported = supported_rtp_capabilities();
    validate_rtp_capabilities(&mut supported)?;
    let supported_codecs = supported.codecs.unwrap_or_default();
    let mut pool = PayloadTypePool::new();
    let mut codecs: Vec<RtpCodecCapability> = Vec::with_capacity(media_codecs.len() * 2);

    for media_codec in media_codecs {
        let mut media_codec = media_codec.clone();
        validate_rtp_codec_capability(&mut media_codec)?;
        let Some(matched) = supported_codecs.iter().find(|supported| match_codecs(&media_codec, *supported, false))
        else {
            return Err(Error::unsupported(format!("media codec not supported [mimeType:{}]", media_codec.mime_type)));
        };
        let mut codec = matched.clone();
        if let Some(pt) = media_codec.preferred_payload_type {
            codec.preferred_payload_type = Some(pt);
            pool.reserve(pt);
        } else if codec.preferred_payload_type.is_none() {
            codec.preferred_payload_type = Some(pool.take()?);
        }
        if codecs.iter().any(|c| c.preferred_payload_type == codec.preferred_payload_type) {
            return Err(Error::type_error("duplicated codec.preferredPayloadType"));
        }
        let mut parameters = codec.parameters.take().unwrap_or_default();
        parameters.extend(media_codec.parameters.unwrap_or_default());
        codec.parameters = Some(parameters);

        let rtx = (codec.kind == MediaKind::Video).then_some(&codec);
        let rtx = match rtx {
            Some(media) => Some(rtx_codec_for(media, pool.take()?)),
            None => None,
        };
        codecs.push(codec);
        codecs.extend(rtx);
    }

    Ok(RtpCapabilities { codecs: Some(codecs), header_extensions: supported.header_extensions })
}

fn rtx_codec_for(media: &RtpCodecCapability, pt: u8) -> RtpCodecCapability {
    let apt = media.preferred_payload_type.expect("media codec has a payload type by now");
    let mut parameters = CodecParameters::new();
    parameters.insert("apt".to_owned(), ParameterValue::from(u32::from(apt)));
    RtpCodecCapability {
        kind: media.kind,
        mime_type: format!("{}/rtx", media.kind.as_str()),
        preferred_payload_type: Some(pt),
        clock_rate: media.clock_rate,
        channels: None,
        parameters: Some(parameters),
        rtcp_feedback: Some(Vec::new()),
    }
}
