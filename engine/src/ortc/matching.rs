//! Codec matching: mediasoup's `matchCodecs` and `isRtxCodec`, over both capability codecs and
//! parameter codecs.

use super::h264;
use crate::rtp_parameters::{CodecParameters, ParameterValue, RtpCodecCapability, RtpCodecParameters};

/// The fields matching reads from a codec, whether it comes from capabilities or parameters.
pub trait CodecLike {
    fn mime_type(&self) -> &str;
    fn clock_rate(&self) -> u32;
    fn channels(&self) -> Option<u8>;
    fn parameters(&self) -> Option<&CodecParameters>;
    fn parameters_mut(&mut self) -> &mut CodecParameters;

    /// One parameter by name.
    fn parameter(&self, key: &str) -> Option<&ParameterValue> {
        self.parameters().and_then(|p| p.get(key))
    }

    /// The `apt` parameter of an RTX codec, as a number.
    fn apt(&self) -> Option<u64> {
        self.parameter("apt").and_then(ParameterValue::as_u64)
    }
}

impl CodecLike for RtpCodecCapability {
    fn mime_type(&self) -> &str {
        &self.mime_type
    }
    fn clock_rate(&self) -> u32 {
        self.clock_rate
    }
    fn channels(&self) -> Option<u8> {
        self.channels
    }
    fn parameters(&self) -> Option<&CodecParameters> {
        self.parameters.as_ref()
    }
    fn parameters_mut(&mut self) -> &mut CodecParameters {
        self.parameters.get_or_insert_with(CodecParameters::new)
    }
}

impl CodecLike for RtpCodecParameters {
    fn mime_type(&self) -> &str {
        &self.mime_type
    }
    fn clock_rate(&self) -> u32 {
        self.clock_rate
    }
    fn channels(&self) -> Option<u8> {
        self.channels
    }
    fn parameters(&self) -> Option<&CodecParameters> {
        self.parameters.as_ref()
    }
    fn parameters_mut(&mut self) -> &mut CodecParameters {
        self.parameters.get_or_insert_with(CodecParameters::new)
    }
}

/// Whether the mime type is `<something>/rtx` (any case).
pub fn is_rtx_mime_type(mime_type: &str) -> bool {
    mime_type.len() > 4 && mime_type.to_ascii_lowercase().ends_with("/rtx")
}

/// Whether the codec is an RTX codec.
pub fn is_rtx_codec(codec: &impl CodecLike) -> bool {
    is_rtx_mime_type(codec.mime_type())
}

/// What a successful match says about codec `a`'s H264 `profile-level-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ProfileLevelIdUpdate {
    Keep,
    Set(String),
    Remove,
}

/// A parameter with a default for when it is absent (`params[key] || 0` in mediasoup).
fn parameter_or_zero<'a>(codec: &'a impl CodecLike, key: &str, zero: &'a ParameterValue) -> &'a ParameterValue {
    codec.parameter(key).unwrap_or(zero)
}

fn match_inner(a: &impl CodecLike, b: &impl CodecLike, strict: bool) -> Option<ProfileLevelIdUpdate> {
    let mime_type = a.mime_type().to_ascii_lowercase();
    if mime_type != b.mime_type().to_ascii_lowercase()
        || a.clock_rate() != b.clock_rate()
        || a.channels() != b.channels()
    {
        return None;
    }
    let zero = ParameterValue::from(0);
    match mime_type.as_str() {
        "audio/multiopus" => {
            for key in ["num_streams", "coupled_streams"] {
                if a.parameter(key) != b.parameter(key) {
                    return None;
                }
            }
        }
        "video/h264" if strict => {
            let a_mode = parameter_or_zero(a, "packetization-mode", &zero);
            let b_mode = parameter_or_zero(b, "packetization-mode", &zero);
            if a_mode != b_mode {
                return None;
            }
            if !h264::is_same_profile(a.parameters(), b.parameters()) {
                return None;
            }
            return match h264::generate_profile_level_id_for_answer(a.parameters(), b.parameters()) {
                Ok(Some(id)) => Some(ProfileLevelIdUpdate::Set(id)),
                Ok(None) => Some(ProfileLevelIdUpdate::Remove),
                Err(_) => None,
            };
        }
        // Profiles of VP9 (`profile-id`) and AV1 (`profile`) default to 0.
        "video/vp9" | "video/av1" if strict => {
            let key = if mime_type == "video/vp9" { "profile-id" } else { "profile" };
            if parameter_or_zero(a, key, &zero) != parameter_or_zero(b, key, &zero) {
                return None;
            }
        }
        _ => {}
    }
    Some(ProfileLevelIdUpdate::Keep)
}

/// mediasoup's `matchCodecs(a, b, { strict })`: same mime type (any case), clock rate and
/// channels, plus per codec rules: multiopus stream counts always; in strict mode H264
/// packetization-mode and profile (with an answerable level), VP9 `profile-id`, AV1 `profile`.
/// RTX codecs match on mime type, clock rate and channels only (`apt` is not compared).
pub fn match_codecs(a: &impl CodecLike, b: &impl CodecLike, strict: bool) -> bool {
    match_inner(a, b, strict).is_some()
}

/// `matchCodecs(a, b, { strict: true, modify: true })`: as [`match_codecs`] in strict mode, and
/// on an H264 match rewrites `a`'s `profile-level-id` to the answer's (removing it where the
/// answer has none). `a` is untouched when the codecs do not match.
pub fn match_codecs_and_modify(a: &mut impl CodecLike, b: &impl CodecLike) -> bool {
    match match_inner(a, b, true) {
        None => false,
        Some(ProfileLevelIdUpdate::Keep) => true,
        Some(ProfileLevelIdUpdate::Set(id)) => {
            a.parameters_mut().insert("profile-level-id".to_owned(), ParameterValue::String(id));
            true
        }
        Some(ProfileLevelIdUpdate::Remove) => {
            if a.parameters().is_some() {
                a.parameters_mut().remove("profile-level-id");
            }
            true
        }
    }
}
