//! H264 `profile-level-id` (RFC 6184 section 8.1): parse, compare profiles, pick the level of
//! an answer. Same rules as libwebrtc's `h264_profile_level_id`, which mediasoup uses through
//! the `h264-profile-level-id` package.

use crate::error::{Error, Result};
use crate::rtp_parameters::{CodecParameters, ParameterValue};

/// The H264 profiles WebRTC negotiates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum H264Profile {
    ConstrainedBaseline,
    Baseline,
    Main,
    ConstrainedHigh,
    High,
    PredictiveHigh444,
}

/// `level_idc` values; `LEVEL_1B` is the special level 1b (idc 11 with constraint_set3).
pub mod level {
    pub const LEVEL_1B: u8 = 0;
    pub const LEVEL_1: u8 = 10;
    pub const LEVEL_1_1: u8 = 11;
    pub const LEVEL_3_1: u8 = 31;
    /// Every level_idc the parser accepts (1b excluded: it shares idc 11 with 1.1).
    pub const KNOWN: [u8; 16] = [10, 11, 12, 13, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52];
}

/// A parsed `profile-level-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileLevelId {
    pub profile: H264Profile,
    pub level: u8,
}

/// Used when the SDP carries no `profile-level-id` (RFC 6184: baseline, level 1 in theory;
/// libwebrtc and mediasoup assume constrained baseline 3.1).
pub const DEFAULT_PROFILE_LEVEL_ID: ProfileLevelId =
    ProfileLevelId { profile: H264Profile::ConstrainedBaseline, level: level::LEVEL_3_1 };

const CONSTRAINT_SET3_FLAG: u8 = 0x10;

/// `(profile_idc, profile_iop pattern, profile)`; a pattern is 8 chars, MSB first, `x` = any.
const PROFILE_PATTERNS: [(u8, &str, H264Profile); 9] = [
    (0x42, "x1xx0000", H264Profile::ConstrainedBaseline),
    (0x4d, "1xxx0000", H264Profile::ConstrainedBaseline),
    (0x58, "11xx0000", H264Profile::ConstrainedBaseline),
    (0x42, "x0xx0000", H264Profile::Baseline),
    (0x58, "10xx0000", H264Profile::Baseline),
    (0x4d, "0x0x0000", H264Profile::Main),
    (0x64, "00000000", H264Profile::High),
    (0x64, "00001100", H264Profile::ConstrainedHigh),
    (0xf4, "00000000", H264Profile::PredictiveHigh444),
];

fn pattern_matches(pattern: &str, value: u8) -> bool {
    debug_assert_eq!(pattern.len(), 8);
    pattern.bytes().enumerate().all(|(i, c)| {
        let bit = (value >> (7 - i)) & 1;
        match c {
            b'x' => true,
            b'1' => bit == 1,
            _ => bit == 0,
        }
    })
}

/// Parses a 6 hex digit `profile-level-id`; `None` when malformed or unknown.
pub fn parse_profile_level_id(s: &str) -> Option<ProfileLevelId> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let numeric = u32::from_str_radix(s, 16).ok()?;
    if numeric == 0 {
        return None;
    }
    let level_idc = (numeric & 0xff) as u8;
    let profile_iop = ((numeric >> 8) & 0xff) as u8;
    let profile_idc = ((numeric >> 16) & 0xff) as u8;
    let level = if level_idc == level::LEVEL_1_1 {
        if profile_iop & CONSTRAINT_SET3_FLAG != 0 {
            level::LEVEL_1B
        } else {
            level::LEVEL_1_1
        }
    } else if level::KNOWN.contains(&level_idc) {
        level_idc
    } else {
        return None;
    };
    PROFILE_PATTERNS
        .iter()
        .find(|(idc, pattern, _)| *idc == profile_idc && pattern_matches(pattern, profile_iop))
        .map(|&(_, _, profile)| ProfileLevelId { profile, level })
}

/// The `profile-level-id` string for a profile and level; `None` where none exists
/// (level 1b outside the baseline/main profiles).
pub fn profile_level_id_to_string(id: ProfileLevelId) -> Option<String> {
    if id.level == level::LEVEL_1B {
        return match id.profile {
            H264Profile::ConstrainedBaseline => Some("42f00b".to_owned()),
            H264Profile::Baseline => Some("42100b".to_owned()),
            H264Profile::Main => Some("4d100b".to_owned()),
            _ => None,
        };
    }
    let profile_idc_iop = match id.profile {
        H264Profile::ConstrainedBaseline => "42e0",
        H264Profile::Baseline => "4200",
        H264Profile::Main => "4d00",
        H264Profile::ConstrainedHigh => "640c",
        H264Profile::High => "6400",
        H264Profile::PredictiveHigh444 => "f400",
    };
    Some(format!("{profile_idc_iop}{:02x}", id.level))
}

/// The raw `profile-level-id` text of codec parameters, if present. A number (as some SDP
/// parsers produce for all-digit ids such as `640032`) is read back as its decimal digits.
fn profile_level_id_text(params: Option<&CodecParameters>) -> Option<String> {
    match params?.get("profile-level-id")? {
        ParameterValue::String(s) if s.is_empty() => None,
        ParameterValue::String(s) => Some(s.clone()),
        ParameterValue::Number(n) => Some(n.to_string()),
    }
}

/// The profile-level-id of codec parameters: the default when absent, `None` when invalid.
pub fn parse_sdp_profile_level_id(params: Option<&CodecParameters>) -> Option<ProfileLevelId> {
    match profile_level_id_text(params) {
        Some(text) => parse_profile_level_id(&text),
        None => Some(DEFAULT_PROFILE_LEVEL_ID),
    }
}

/// Whether both parameter sets carry valid ids of the same profile.
pub fn is_same_profile(a: Option<&CodecParameters>, b: Option<&CodecParameters>) -> bool {
    match (parse_sdp_profile_level_id(a), parse_sdp_profile_level_id(b)) {
        (Some(a), Some(b)) => a.profile == b.profile,
        _ => false,
    }
}

fn is_level_asymmetry_allowed(params: Option<&CodecParameters>) -> bool {
    match params.and_then(|p| p.get("level-asymmetry-allowed")) {
        Some(ParameterValue::Number(n)) => n.as_u64() == Some(1),
        Some(ParameterValue::String(s)) => s == "1",
        None => false,
    }
}

/// Level order with 1b placed between 1 and 1.1.
fn is_less_level(a: u8, b: u8) -> bool {
    if a == level::LEVEL_1B {
        return b != level::LEVEL_1 && b != level::LEVEL_1B;
    }
    if b == level::LEVEL_1B {
        return a == level::LEVEL_1;
    }
    a < b
}

fn min_level(a: u8, b: u8) -> u8 {
    if is_less_level(a, b) {
        a
    } else {
        b
    }
}

/// The `profile-level-id` to answer with, given our (`local`) supported parameters and the
/// `remote` offered ones. `Ok(None)` when neither side names one (both use the default).
/// Errors (TypeError) when either is invalid or the profiles differ.
pub fn generate_profile_level_id_for_answer(
    local: Option<&CodecParameters>,
    remote: Option<&CodecParameters>,
) -> Result<Option<String>> {
    if profile_level_id_text(local).is_none() && profile_level_id_text(remote).is_none() {
        return Ok(None);
    }
    let local_id =
        parse_sdp_profile_level_id(local).ok_or_else(|| Error::type_error("invalid local_profile_level_id"))?;
    let remote_id =
        parse_sdp_profile_level_id(remote).ok_or_else(|| Error::type_error("invalid remote_profile_level_id"))?;
    if local_id.profile != remote_id.profile {
        return Err(Error::type_error("H264 Profile mismatch"));
    }
    let asymmetry_allowed = is_level_asymmetry_allowed(local) && is_level_asymmetry_allowed(remote);
    // Without asymmetry the answer may not raise the level above the offer's.
    let level = if asymmetry_allowed { local_id.level } else { min_level(local_id.level, remote_id.level) };
    Ok(profile_level_id_to_string(ProfileLevelId { profile: local_id.profile, level }))
}
