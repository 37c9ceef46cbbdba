//! Validation of capabilities and parameters: mediasoup's `validate*` functions.
//!
//! As in mediasoup, validation also normalizes: it fills the defaults mediasoup fills (audio
//! `channels` 1, empty `parameters` and `rtcpFeedback`, `parameter: ""` on feedback,
//! `preferredEncrypt`/`encrypt` false, `direction` sendrecv, `dtx` false, `reducedSize` true)
//! and sets a capability's `kind` from its mime type. Unlike mediasoup, a failing call leaves
//! its argument exactly as it was: every public function works on a copy and writes it back
//! only on success.
//!
//! Checks the Rust types already make impossible (a missing `clockRate`, a non-numeric `ssrc`)
//! have no counterpart here. Two checks are additions, where a `u8` admits values the JSON
//! schema would not: payload types above 127 and header extension id 0.

use crate::error::{Error, Result};
use crate::rtp_parameters::{
    CodecParameters, MediaKind, ParameterValue, RtcpFeedback, RtcpParameters, RtpCapabilities, RtpCodecCapability,
    RtpCodecParameters, RtpEncodingParameters, RtpHeaderExtension, RtpHeaderExtensionDirection,
    RtpHeaderExtensionParameters, RtpParameters,
};

/// The largest RTP payload type (7 bits).
pub const PAYLOAD_TYPE_MAX: u8 = 127;

/// Runs `check` on a copy of `value` and stores the copy only if it passes.
fn on_copy<T: Clone>(value: &mut T, check: impl FnOnce(&mut T) -> Result<()>) -> Result<()> {
    let mut copy = value.clone();
    check(&mut copy)?;
    *value = copy;
    Ok(())
}

/// The kind named by a mime type (`audio/...` or `video/...`, any case, non-empty subtype).
fn mime_type_kind(mime_type: &str) -> Result<MediaKind> {
    if mime_type.is_empty() {
        return Err(Error::type_error("missing codec.mimeType"));
    }
    let (kind, subtype) = mime_type.split_once('/').ok_or_else(|| Error::type_error("invalid codec.mimeType"))?;
    if subtype.is_empty() {
        return Err(Error::type_error("invalid codec.mimeType"));
    }
    match kind.to_ascii_lowercase().as_str() {
        "audio" => Ok(MediaKind::Audio),
        "video" => Ok(MediaKind::Video),
        _ => Err(Error::type_error("invalid codec.mimeType")),
    }
}

/// Shared by capability and parameter codecs: `parameters` defaults to `{}`, `apt` must be a
/// number.
fn check_codec_parameters(parameters: &mut Option<CodecParameters>) -> Result<()> {
    let parameters = parameters.get_or_insert_with(CodecParameters::new);
    if let Some(ParameterValue::String(_)) = parameters.get("apt") {
        return Err(Error::type_error("invalid codec apt parameter"));
    }
    Ok(())
}

fn check_rtcp_feedback_list(list: &mut Option<Vec<RtcpFeedback>>) -> Result<()> {
    for fb in list.get_or_insert_with(Vec::new) {
        check_rtcp_feedback(fb)?;
    }
    Ok(())
}

fn check_rtcp_feedback(fb: &mut RtcpFeedback) -> Result<()> {
    if fb.r#type.is_empty() {
        return Err(Error::type_error("missing fb.type"));
    }
    fb.parameter.get_or_insert_with(String::new);
    Ok(())
}

fn check_rtp_codec_capability(codec: &mut RtpCodecCapability) -> Result<()> {
    // mediasoup overrides `kind` with the media part of the mime type.
    codec.kind = mime_type_kind(&codec.mime_type)?;
    if codec.preferred_payload_type.is_some_and(|pt| pt > PAYLOAD_TYPE_MAX) {
        return Err(Error::type_error("invalid codec.preferredPayloadType"));
    }
    match codec.kind {
        MediaKind::Audio => {
            codec.channels.get_or_insert(1);
        }
        MediaKind::Video => codec.channels = None,
    }
    check_codec_parameters(&mut codec.parameters)?;
    check_rtcp_feedback_list(&mut codec.rtcp_feedback)
}

fn check_rtp_header_extension(ext: &mut RtpHeaderExtension) -> Result<()> {
    if ext.uri.is_empty() {
        return Err(Error::type_error("missing ext.uri"));
    }
    if ext.preferred_id == 0 {
        return Err(Error::type_error("invalid ext.preferredId"));
    }
    ext.preferred_encrypt.get_or_insert(false);
    ext.direction.get_or_insert(RtpHeaderExtensionDirection::Sendrecv);
    Ok(())
}

fn check_rtp_capabilities(caps: &mut RtpCapabilities) -> Result<()> {
    for codec in caps.codecs.get_or_insert_with(Vec::new) {
        check_rtp_codec_capability(codec)?;
    }
    for ext in caps.header_extensions.get_or_insert_with(Vec::new) {
        check_rtp_header_extension(ext)?;
    }
    Ok(())
}

fn check_rtp_codec_parameters(codec: &mut RtpCodecParameters) -> Result<()> {
    let kind = mime_type_kind(&codec.mime_type)?;
    if codec.payload_type > PAYLOAD_TYPE_MAX {
        return Err(Error::type_error("invalid codec.payloadType"));
    }
    match kind {
        MediaKind::Audio => {
            codec.channels.get_or_insert(1);
        }
        MediaKind::Video => codec.channels = None,
    }
    check_codec_parameters(&mut codec.parameters)?;
    check_rtcp_feedback_list(&mut codec.rtcp_feedback)
}

fn check_rtp_header_extension_parameters(ext: &mut RtpHeaderExtensionParameters) -> Result<()> {
    if ext.uri.is_empty() {
        return Err(Error::type_error("missing ext.uri"));
    }
    if ext.id == 0 {
        return Err(Error::type_error("invalid ext.id"));
    }
    ext.encrypt.get_or_insert(false);
    ext.parameters.get_or_insert_with(CodecParameters::new);
    Ok(())
}

fn check_rtp_encoding_parameters(encoding: &mut RtpEncodingParameters) -> Result<()> {
    encoding.dtx.get_or_insert(false);
    Ok(())
}

fn check_rtcp_parameters(rtcp: &mut RtcpParameters) -> Result<()> {
    // mediasoup writes `reducedSize = true` whenever it is not already true, so an explicit
    // `false` becomes `true` too. Kept for parity with what mediasoup-client expects.
    rtcp.reduced_size = Some(true);
    Ok(())
}

fn check_rtp_parameters(params: &mut RtpParameters) -> Result<()> {
    for codec in &mut params.codecs {
        check_rtp_codec_parameters(codec)?;
    }
    for ext in params.header_extensions.get_or_insert_with(Vec::new) {
        check_rtp_header_extension_parameters(ext)?;
    }
    for encoding in params.encodings.get_or_insert_with(Vec::new) {
        check_rtp_encoding_parameters(encoding)?;
    }
    check_rtcp_parameters(params.rtcp.get_or_insert_with(RtcpParameters::default))
}

/// `validateRtpCapabilities`: validates and normalizes every codec and header extension;
/// absent lists become empty ones.
pub fn validate_rtp_capabilities(caps: &mut RtpCapabilities) -> Result<()> {
    on_copy(caps, check_rtp_capabilities)
}

/// `validateRtpCodecCapability`.
pub fn validate_rtp_codec_capability(codec: &mut RtpCodecCapability) -> Result<()> {
    on_copy(codec, check_rtp_codec_capability)
}

/// `validateRtcpFeedback`.
pub fn validate_rtcp_feedback(fb: &mut RtcpFeedback) -> Result<()> {
    on_copy(fb, check_rtcp_feedback)
}

/// `validateRtpHeaderExtension`.
pub fn validate_rtp_header_extension(ext: &mut RtpHeaderExtension) -> Result<()> {
    on_copy(ext, check_rtp_header_extension)
}

/// `validateRtpParameters`: codecs, header extensions, encodings and RTCP; absent lists become
/// empty, absent `rtcp` becomes `{ reducedSize: true }`.
pub fn validate_rtp_parameters(params: &mut RtpParameters) -> Result<()> {
    on_copy(params, check_rtp_parameters)
}

/// `validateRtpCodecParameters`.
pub fn validate_rtp_codec_parameters(codec: &mut RtpCodecParameters) -> Result<()> {
    on_copy(codec, check_rtp_codec_parameters)
}

/// `validateRtpHeaderExtensionParameters`.
pub fn validate_rtp_header_extension_parameters(ext: &mut RtpHeaderExtensionParameters) -> Result<()> {
    on_copy(ext, check_rtp_header_extension_parameters)
}

/// `validateRtpEncodingParameters`.
pub fn validate_rtp_encoding_parameters(encoding: &mut RtpEncodingParameters) -> Result<()> {
    on_copy(encoding, check_rtp_encoding_parameters)
}

/// `validateRtcpParameters`.
pub fn validate_rtcp_parameters(rtcp: &mut RtcpParameters) -> Result<()> {
    on_copy(rtcp, check_rtcp_parameters)
}
