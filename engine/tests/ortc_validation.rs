//! Validation: mediasoup's TypeError messages, the defaults it fills, and untouched input on
//! failure.

use serde_json::json;
use shardsfu_engine::ortc::{
    match_codecs, validate_rtp_capabilities, validate_rtp_codec_capability, validate_rtp_header_extension,
    validate_rtp_parameters,
};
use shardsfu_engine::rtp_parameters::{
    MediaKind, RtpCapabilities, RtpCodecCapability, RtpCodecParameters, RtpParameters,
};
use shardsfu_engine::{Error, ErrorKind};

fn capability(value: serde_json::Value) -> RtpCodecCapability {
    serde_json::from_value(value).unwrap()
}

fn rtp_parameters(value: serde_json::Value) -> RtpParameters {
    serde_json::from_value(value).unwrap()
}

fn type_error(err: Error, message: &str) {
    assert_eq!(err.kind, ErrorKind::TypeError);
    assert_eq!(err.message, message);
}

#[test]
fn codec_capability_defaults() {
    let mut codec = capability(json!({ "kind": "video", "mimeType": "audio/PCMU", "clockRate": 8000 }));
    validate_rtp_codec_capability(&mut codec).unwrap();
    assert_eq!(
        serde_json::to_value(&codec).unwrap(),
        json!({
            "kind": "audio", "mimeType": "audio/PCMU", "clockRate": 8000, "channels": 1,
            "parameters": {}, "rtcpFeedback": []
        })
    );

    let mut video = capability(json!({
        "kind": "video", "mimeType": "VIDEO/VP8", "clockRate": 90000, "channels": 2,
        "rtcpFeedback": [{ "type": "nack" }]
    }));
    validate_rtp_codec_capability(&mut video).unwrap();
    assert_eq!(video.kind, MediaKind::Video);
    assert_eq!(video.channels, None);
    assert_eq!(serde_json::to_value(&video.rtcp_feedback).unwrap(), json!([{ "type": "nack", "parameter": "" }]));
}

#[test]
fn codec_capability_errors() {
    let cases = [
        (json!({ "kind": "audio", "mimeType": "", "clockRate": 1 }), "missing codec.mimeType"),
        (json!({ "kind": "audio", "mimeType": "opus", "clockRate": 1 }), "invalid codec.mimeType"),
        (json!({ "kind": "audio", "mimeType": "text/plain", "clockRate": 1 }), "invalid codec.mimeType"),
        (json!({ "kind": "audio", "mimeType": "audio/", "clockRate": 1 }), "invalid codec.mimeType"),
        (
            json!({ "kind": "video", "mimeType": "video/rtx", "clockRate": 1, "parameters": { "apt": "96" } }),
            "invalid codec apt parameter",
        ),
        (
            json!({ "kind": "audio", "mimeType": "audio/opus", "clockRate": 1, "preferredPayloadType": 128 }),
            "invalid codec.preferredPayloadType",
        ),
        (
            json!({ "kind": "audio", "mimeType": "audio/opus", "clockRate": 1, "rtcpFeedback": [{ "type": "" }] }),
            "missing fb.type",
        ),
    ];
    for (value, message) in cases {
        let mut codec = capability(value);
        let before = codec.clone();
        type_error(validate_rtp_codec_capability(&mut codec).unwrap_err(), message);
        assert_eq!(codec, before, "input unchanged on error");
    }
}

#[test]
fn header_extension_defaults_and_errors() {
    let mut ext = serde_json::from_value(json!({ "kind": "audio", "uri": "urn:x", "preferredId": 3 })).unwrap();
    validate_rtp_header_extension(&mut ext).unwrap();
    assert_eq!(
        serde_json::to_value(&ext).unwrap(),
        json!({ "kind": "audio", "uri": "urn:x", "preferredId": 3, "preferredEncrypt": false, "direction": "sendrecv" })
    );
    let mut bad = serde_json::from_value(json!({ "kind": "audio", "uri": "", "preferredId": 3 })).unwrap();
    type_error(validate_rtp_header_extension(&mut bad).unwrap_err(), "missing ext.uri");
}

#[test]
fn capabilities_fill_empty_lists_and_stay_unchanged_on_error() {
    let mut caps = RtpCapabilities::default();
    validate_rtp_capabilities(&mut caps).unwrap();
    assert_eq!(serde_json::to_value(&caps).unwrap(), json!({ "codecs": [], "headerExtensions": [] }));

    let mut caps: RtpCapabilities = serde_json::from_value(json!({
        "codecs": [
            { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 },
            { "kind": "video", "mimeType": "bogus", "clockRate": 90000 }
        ]
    }))
    .unwrap();
    let before = caps.clone();
    type_error(validate_rtp_capabilities(&mut caps).unwrap_err(), "invalid codec.mimeType");
    assert_eq!(caps, before);
}

#[test]
fn rtp_parameters_defaults() {
    let mut params = rtp_parameters(json!({
        "codecs": [
            { "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000 },
            { "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "channels": 1 }
        ],
        "headerExtensions": [{ "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1 }],
        "encodings": [{ "ssrc": 11 }],
        "rtcp": { "cname": "c", "reducedSize": false }
    }));
    validate_rtp_parameters(&mut params).unwrap();
    assert_eq!(
        serde_json::to_value(&params).unwrap(),
        json!({
            "codecs": [
                { "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 1, "parameters": {}, "rtcpFeedback": [] },
                { "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000, "parameters": {}, "rtcpFeedback": [] }
            ],
            "headerExtensions": [{ "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": false, "parameters": {} }],
            "encodings": [{ "ssrc": 11, "dtx": false }],
            // mediasoup turns any non-true reducedSize into true.
            "rtcp": { "cname": "c", "reducedSize": true }
        })
    );

    let mut bare = rtp_parameters(json!({ "codecs": [] }));
    validate_rtp_parameters(&mut bare).unwrap();
    assert_eq!(
        serde_json::to_value(&bare).unwrap(),
        json!({ "codecs": [], "headerExtensions": [], "encodings": [], "rtcp": { "reducedSize": true } })
    );
}

#[test]
fn rtp_parameters_errors_leave_input_unchanged() {
    let cases = [
        (json!({ "codecs": [{ "mimeType": "", "payloadType": 1, "clockRate": 1 }] }), "missing codec.mimeType"),
        (json!({ "codecs": [{ "mimeType": "opus", "payloadType": 1, "clockRate": 1 }] }), "invalid codec.mimeType"),
        (
            json!({ "codecs": [{ "mimeType": "audio/opus", "payloadType": 200, "clockRate": 1 }] }),
            "invalid codec.payloadType",
        ),
        (json!({ "codecs": [], "headerExtensions": [{ "uri": "", "id": 1 }] }), "missing ext.uri"),
        (json!({ "codecs": [], "headerExtensions": [{ "uri": "urn:x", "id": 0 }] }), "invalid ext.id"),
    ];
    for (value, message) in cases {
        let mut params = rtp_parameters(value);
        // A valid codec first, so a partial normalization would show.
        params.codecs.insert(
            0,
            serde_json::from_value::<RtpCodecParameters>(
                json!({ "mimeType": "audio/PCMU", "payloadType": 0, "clockRate": 8000 }),
            )
            .unwrap(),
        );
        let before = params.clone();
        type_error(validate_rtp_parameters(&mut params).unwrap_err(), message);
        assert_eq!(params, before);
    }
}

#[test]
fn multiopus_and_rtx_matching() {
    let quad = capability(json!({
        "kind": "audio", "mimeType": "audio/multiopus", "clockRate": 48000, "channels": 4,
        "parameters": { "num_streams": 2, "coupled_streams": 2, "channel_mapping": "0,1,2,3" }
    }));
    let mut other_mapping = quad.clone();
    other_mapping.parameters.as_mut().unwrap().insert("channel_mapping".into(), "3,2,1,0".into());
    assert!(match_codecs(&quad, &other_mapping, false));
    let mut other_streams = quad.clone();
    other_streams.parameters.as_mut().unwrap().insert("num_streams".into(), 3.into());
    assert!(!match_codecs(&quad, &other_streams, false));

    let rtx = |apt: u32| {
        capability(
            json!({ "kind": "video", "mimeType": "video/rtx", "clockRate": 90000, "parameters": { "apt": apt } }),
        )
    };
    // As in mediasoup, RTX codecs match without comparing apt.
    assert!(match_codecs(&rtx(96), &rtx(101), true));

    let vp9 = |profile: u32| {
        capability(
            json!({ "kind": "video", "mimeType": "video/VP9", "clockRate": 90000, "parameters": { "profile-id": profile } }),
        )
    };
    let bare_vp9 = capability(json!({ "kind": "video", "mimeType": "video/vp9", "clockRate": 90000 }));
    assert!(match_codecs(&vp9(0), &bare_vp9, true));
    assert!(!match_codecs(&vp9(2), &bare_vp9, true));
    assert!(match_codecs(&vp9(2), &bare_vp9, false));
}
