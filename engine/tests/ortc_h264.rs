//! H264 profile-level-id parsing and the strict matching rules built on it.

use serde_json::json;
use shardsfu_engine::ortc::h264::{
    generate_profile_level_id_for_answer, is_same_profile, level, parse_profile_level_id, profile_level_id_to_string,
    H264Profile, ProfileLevelId,
};
use shardsfu_engine::ortc::{
    can_consume, generate_router_rtp_capabilities, get_consumable_rtp_parameters, get_producer_rtp_parameters_mapping,
    match_codecs, match_codecs_and_modify, validate_rtp_parameters,
};
use shardsfu_engine::rtp_parameters::{CodecParameters, MediaKind, RtpCapabilities, RtpCodecParameters, RtpParameters};
use shardsfu_engine::ErrorKind;

fn params(value: serde_json::Value) -> CodecParameters {
    serde_json::from_value(value).unwrap()
}

fn h264(pt: u8, parameters: serde_json::Value) -> RtpCodecParameters {
    serde_json::from_value(json!({
        "mimeType": "video/H264", "payloadType": pt, "clockRate": 90000, "parameters": parameters
    }))
    .unwrap()
}

fn router_caps(profile_level_id: &str) -> RtpCapabilities {
    let media = serde_json::from_value::<Vec<_>>(json!([{
        "kind": "video", "mimeType": "video/H264", "clockRate": 90000,
        "parameters": { "packetization-mode": 1, "profile-level-id": profile_level_id }
    }]))
    .unwrap();
    generate_router_rtp_capabilities(&media).unwrap()
}

fn producer(parameters: serde_json::Value) -> RtpParameters {
    let mut p: RtpParameters = serde_json::from_value(json!({
        "codecs": [
            { "mimeType": "video/H264", "payloadType": 102, "clockRate": 90000, "parameters": parameters },
            { "mimeType": "video/rtx", "payloadType": 103, "clockRate": 90000, "parameters": { "apt": 102 } }
        ],
        "encodings": [{ "ssrc": 1 }]
    }))
    .unwrap();
    validate_rtp_parameters(&mut p).unwrap();
    p
}

#[test]
fn parses_profiles_and_levels() {
    let cases = [
        ("42e01f", H264Profile::ConstrainedBaseline, 31),
        ("42c01f", H264Profile::ConstrainedBaseline, 31),
        ("4de01f", H264Profile::ConstrainedBaseline, 31),
        ("58f01f", H264Profile::ConstrainedBaseline, 31),
        ("42001f", H264Profile::Baseline, 31),
        ("58a01f", H264Profile::Baseline, 31),
        ("4d0032", H264Profile::Main, 50),
        ("640032", H264Profile::High, 50),
        ("640c34", H264Profile::ConstrainedHigh, 52),
        ("f4001f", H264Profile::PredictiveHigh444, 31),
        ("42f00b", H264Profile::ConstrainedBaseline, level::LEVEL_1B),
        ("42e00b", H264Profile::ConstrainedBaseline, 11),
        ("42E01F", H264Profile::ConstrainedBaseline, 31),
    ];
    for (text, profile, lvl) in cases {
        assert_eq!(parse_profile_level_id(text), Some(ProfileLevelId { profile, level: lvl }), "{text}");
    }
    for bad in ["", "42e01", "42e01f0", "000000", "42e0ff", "42e0zz", "43e01f", "640d1f"] {
        assert_eq!(parse_profile_level_id(bad), None, "{bad}");
    }
}

#[test]
fn formats_profile_level_ids() {
    let id = |profile, level| profile_level_id_to_string(ProfileLevelId { profile, level });
    assert_eq!(id(H264Profile::ConstrainedBaseline, 31).as_deref(), Some("42e01f"));
    assert_eq!(id(H264Profile::Main, 52).as_deref(), Some("4d0034"));
    assert_eq!(id(H264Profile::ConstrainedHigh, 40).as_deref(), Some("640c28"));
    assert_eq!(id(H264Profile::Baseline, level::LEVEL_1B).as_deref(), Some("42100b"));
    assert_eq!(id(H264Profile::High, level::LEVEL_1B), None);
}

#[test]
fn missing_profile_level_id_means_constrained_baseline() {
    assert!(is_same_profile(None, Some(&params(json!({ "profile-level-id": "42e01f" })))));
    assert!(!is_same_profile(None, Some(&params(json!({ "profile-level-id": "42001f" })))));
    assert_eq!(generate_profile_level_id_for_answer(None, None).unwrap(), None);
}

#[test]
fn answer_level_depends_on_level_asymmetry() {
    let high = params(json!({ "profile-level-id": "42e034", "level-asymmetry-allowed": 1 }));
    let low = params(json!({ "profile-level-id": "42e01f", "level-asymmetry-allowed": "1" }));
    let low_strict = params(json!({ "profile-level-id": "42e01f" }));
    // Both allow asymmetry: the local level stands.
    assert_eq!(generate_profile_level_id_for_answer(Some(&high), Some(&low)).unwrap().as_deref(), Some("42e034"));
    // Otherwise the lower one.
    assert_eq!(
        generate_profile_level_id_for_answer(Some(&high), Some(&low_strict)).unwrap().as_deref(),
        Some("42e01f")
    );
    let main = params(json!({ "profile-level-id": "4d001f" }));
    let err = generate_profile_level_id_for_answer(Some(&high), Some(&main)).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TypeError);
    assert_eq!(err.message, "H264 Profile mismatch");
}

#[test]
fn level_1b_sits_between_1_and_1_1() {
    let one_b = params(json!({ "profile-level-id": "42f00b" }));
    let one_one = params(json!({ "profile-level-id": "42e00b" }));
    let one = params(json!({ "profile-level-id": "42e00a" }));
    let answer = |a: &CodecParameters, b: &CodecParameters| {
        generate_profile_level_id_for_answer(Some(a), Some(b)).unwrap().unwrap()
    };
    assert_eq!(answer(&one_one, &one_b), "42f00b");
    assert_eq!(answer(&one_b, &one), "42e00a");
}

#[test]
fn strict_matching_checks_packetization_mode_and_profile() {
    let cb_mode1 = h264(100, json!({ "packetization-mode": 1, "profile-level-id": "42e01f" }));
    let cb_mode0 = h264(101, json!({ "profile-level-id": "42e01f" }));
    let baseline = h264(102, json!({ "packetization-mode": 1, "profile-level-id": "42001f" }));
    assert!(match_codecs(&cb_mode1, &cb_mode0, false));
    assert!(!match_codecs(&cb_mode1, &cb_mode0, true));
    assert!(match_codecs(&cb_mode1, &baseline, false));
    assert!(!match_codecs(&cb_mode1, &baseline, true));
    // An explicit packetization-mode 0 equals a missing one.
    let cb_explicit0 = h264(103, json!({ "packetization-mode": 0, "profile-level-id": "42e01f" }));
    assert!(match_codecs(&cb_mode0, &cb_explicit0, true));
}

#[test]
fn modify_rewrites_or_removes_profile_level_id() {
    let mut offered =
        h264(100, json!({ "packetization-mode": 1, "profile-level-id": "42e034", "level-asymmetry-allowed": 1 }));
    let local = h264(101, json!({ "packetization-mode": 1, "profile-level-id": "42e01f" }));
    assert!(match_codecs_and_modify(&mut offered, &local));
    // No asymmetry on `local`: min(5.2, 3.1).
    assert_eq!(offered.parameters.as_ref().unwrap()["profile-level-id"], "42e01f".into());

    let mut bare = h264(100, json!({ "packetization-mode": 1, "profile-level-id": "42e01f" }));
    let default = h264(101, json!({ "packetization-mode": 1 }));
    assert!(match_codecs_and_modify(&mut bare, &default));
    assert_eq!(bare.parameters.as_ref().unwrap()["profile-level-id"], "42e01f".into());

    let mut main = h264(100, json!({ "packetization-mode": 1, "profile-level-id": "4d001f" }));
    let before = main.clone();
    assert!(!match_codecs_and_modify(&mut main, &local));
    assert_eq!(main, before);
}

#[test]
fn producer_with_other_profile_is_unsupported() {
    let caps = router_caps("42e01f");
    let mut p = producer(json!({
        "level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "4d001f"
    }));
    let err = get_producer_rtp_parameters_mapping(&mut p, &caps, 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedError);
    assert_eq!(err.message, "unsupported codec [mimeType:video/H264, payloadType:102]");

    // Chrome's 42001f is baseline, not constrained baseline.
    let mut p = producer(json!({ "packetization-mode": 1, "profile-level-id": "42001f" }));
    assert!(get_producer_rtp_parameters_mapping(&mut p, &caps, 1).is_err());

    let mut p = producer(json!({ "packetization-mode": 0, "profile-level-id": "42e01f" }));
    assert!(get_producer_rtp_parameters_mapping(&mut p, &caps, 1).is_err());
}

#[test]
fn producer_level_kept_when_both_allow_asymmetry() {
    let caps = router_caps("42e01f");
    let mut p = producer(json!({
        "level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "42e034"
    }));
    let mapping = get_producer_rtp_parameters_mapping(&mut p, &caps, 10).unwrap();
    assert_eq!(
        serde_json::to_value(&mapping).unwrap(),
        json!({
            "codecs": [
                { "payloadType": 102, "mappedPayloadType": 100 },
                { "payloadType": 103, "mappedPayloadType": 101 }
            ],
            "encodings": [{ "ssrc": 1, "mappedSsrc": 10 }]
        })
    );
    let consumable = get_consumable_rtp_parameters(MediaKind::Video, &p, &caps, &mapping).unwrap();
    assert_eq!(
        serde_json::to_value(&consumable.codecs[0].parameters).unwrap(),
        json!({ "level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "42e034" })
    );
}

#[test]
fn producer_level_lowered_without_asymmetry() {
    let caps = router_caps("42e01f");
    let mut p = producer(json!({ "packetization-mode": 1, "profile-level-id": "42e034" }));
    get_producer_rtp_parameters_mapping(&mut p, &caps, 10).unwrap();
    assert_eq!(p.codecs[0].parameters.as_ref().unwrap()["profile-level-id"], "42e01f".into());
}

#[test]
fn can_consume_h264_needs_same_profile() {
    let caps = router_caps("42e01f");
    let mut p = producer(json!({ "packetization-mode": 1, "profile-level-id": "42e01f" }));
    let mapping = get_producer_rtp_parameters_mapping(&mut p, &caps, 10).unwrap();
    let consumable = get_consumable_rtp_parameters(MediaKind::Video, &p, &caps, &mapping).unwrap();
    let remote = |profile_level_id: &str| -> RtpCapabilities {
        serde_json::from_value(json!({ "codecs": [{
            "kind": "video", "mimeType": "video/H264", "preferredPayloadType": 125, "clockRate": 90000,
            "parameters": { "packetization-mode": 1, "profile-level-id": profile_level_id, "level-asymmetry-allowed": 1 }
        }] }))
        .unwrap()
    };
    assert!(can_consume(&consumable, &remote("42e034")).unwrap());
    assert!(!can_consume(&consumable, &remote("640032")).unwrap());
}
