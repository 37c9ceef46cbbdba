//! Router capabilities from mediaCodecs, and the supported table they come from.

use serde_json::json;
use shardsfu_engine::ortc::{generate_router_rtp_capabilities, supported_rtp_capabilities};
use shardsfu_engine::rtp_parameters::{MediaKind, RtpCapabilities, RtpCodecCapability};
use shardsfu_engine::ErrorKind;

fn codecs(value: serde_json::Value) -> Vec<RtpCodecCapability> {
    serde_json::from_value(value).expect("media codecs")
}

fn typical_media_codecs() -> Vec<RtpCodecCapability> {
    codecs(json!([
        { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 },
        { "kind": "video", "mimeType": "video/VP8", "clockRate": 90000 },
        {
            "kind": "video", "mimeType": "video/H264", "clockRate": 90000,
            "parameters": { "packetization-mode": 1, "profile-level-id": "42e01f" }
        }
    ]))
}

fn pts(caps: &RtpCapabilities) -> Vec<(String, u8)> {
    caps.codecs.iter().flatten().map(|c| (c.mime_type.clone(), c.preferred_payload_type.unwrap())).collect()
}

#[test]
fn supported_codecs_follow_mediasoup_order() {
    let caps = supported_rtp_capabilities();
    let names: Vec<(String, u32, Option<u8>, Option<u8>)> = caps
        .codecs
        .unwrap()
        .into_iter()
        .map(|c| (c.mime_type, c.clock_rate, c.channels, c.preferred_payload_type))
        .collect();
    let expected: Vec<(String, u32, Option<u8>, Option<u8>)> = [
        ("audio/opus", 48000, Some(2), None),
        ("audio/multiopus", 48000, Some(4), None),
        ("audio/multiopus", 48000, Some(6), None),
        ("audio/multiopus", 48000, Some(8), None),
        ("audio/PCMU", 8000, None, Some(0)),
        ("audio/PCMA", 8000, None, Some(8)),
        ("audio/G722", 8000, None, Some(9)),
        ("audio/iLBC", 8000, None, None),
        ("audio/SILK", 24000, None, None),
        ("audio/SILK", 16000, None, None),
        ("audio/SILK", 12000, None, None),
        ("audio/SILK", 8000, None, None),
        ("audio/CN", 32000, None, Some(13)),
        ("audio/CN", 16000, None, Some(13)),
        ("audio/CN", 8000, None, Some(13)),
        ("audio/telephone-event", 48000, None, None),
        ("audio/telephone-event", 32000, None, None),
        ("audio/telephone-event", 16000, None, None),
        ("audio/telephone-event", 8000, None, None),
        ("video/VP8", 90000, None, None),
        ("video/VP9", 90000, None, None),
        ("video/H264", 90000, None, None),
        ("video/H265", 90000, None, None),
        ("video/AV1", 90000, None, None),
    ]
    .into_iter()
    .map(|(m, r, c, p)| (m.to_owned(), r, c, p))
    .collect();
    assert_eq!(names, expected);
}

#[test]
fn supported_codec_details_serialize_like_mediasoup() {
    let caps = supported_rtp_capabilities();
    let codecs = caps.codecs.unwrap();
    assert_eq!(
        serde_json::to_value(&codecs[0]).unwrap(),
        json!({
            "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2,
            "rtcpFeedback": [{ "type": "nack" }, { "type": "transport-cc" }]
        })
    );
    assert_eq!(
        serde_json::to_value(&codecs[2]).unwrap()["parameters"],
        json!({ "channel_mapping": "0,4,1,2,3,5", "num_streams": 4, "coupled_streams": 2 })
    );
    assert_eq!(
        serde_json::to_value(&codecs[21]).unwrap(),
        json!({
            "kind": "video", "mimeType": "video/H264", "clockRate": 90000,
            "parameters": { "level-asymmetry-allowed": 1 },
            "rtcpFeedback": [
                { "type": "nack" }, { "type": "nack", "parameter": "pli" },
                { "type": "ccm", "parameter": "fir" }, { "type": "goog-remb" },
                { "type": "transport-cc" }
            ]
        })
    );
    assert!(codecs[12].rtcp_feedback.is_none(), "CN has no feedback");
}

#[test]
fn supported_header_extension_ids() {
    let caps = supported_rtp_capabilities();
    let rows: Vec<(MediaKind, String, u8, serde_json::Value)> = caps
        .header_extensions
        .unwrap()
        .into_iter()
        .map(|e| {
            assert_eq!(e.preferred_encrypt, Some(false));
            (e.kind, e.uri, e.preferred_id, serde_json::to_value(e.direction).unwrap())
        })
        .collect();
    use MediaKind::{Audio, Video};
    let expected = [
        (Audio, "urn:ietf:params:rtp-hdrext:sdes:mid", 1, "sendrecv"),
        (Video, "urn:ietf:params:rtp-hdrext:sdes:mid", 1, "sendrecv"),
        (Video, "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", 2, "recvonly"),
        (Video, "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", 3, "recvonly"),
        (Audio, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 4, "sendrecv"),
        (Video, "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", 4, "sendrecv"),
        (Audio, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", 5, "recvonly"),
        (Video, "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", 5, "sendrecv"),
        (
            Video,
            "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension",
            8,
            "recvonly",
        ),
        (Audio, "urn:ietf:params:rtp-hdrext:ssrc-audio-level", 10, "sendrecv"),
        (Video, "urn:3gpp:video-orientation", 11, "sendrecv"),
        (Video, "urn:ietf:params:rtp-hdrext:toffset", 12, "sendrecv"),
        (Audio, "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time", 13, "sendrecv"),
        (Video, "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time", 13, "sendrecv"),
        (Audio, "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", 14, "sendrecv"),
        (Video, "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", 14, "sendrecv"),
    ]
    .map(|(k, u, id, d)| (k, u.to_owned(), id, json!(d)));
    assert_eq!(rows, expected);
}

#[test]
fn typical_media_codecs_get_dynamic_payload_types_in_order() {
    let caps = generate_router_rtp_capabilities(&typical_media_codecs()).unwrap();
    let expected: Vec<(String, u8)> =
        [("audio/opus", 100), ("video/VP8", 101), ("video/rtx", 102), ("video/H264", 103), ("video/rtx", 104)]
            .map(|(m, pt)| (m.to_owned(), pt))
            .into();
    assert_eq!(pts(&caps), expected);
    assert_eq!(caps.header_extensions, {
        let mut supported = supported_rtp_capabilities();
        shardsfu_engine::ortc::validate_rtp_capabilities(&mut supported).unwrap();
        supported.header_extensions
    });
}

#[test]
fn router_codecs_are_normalized_and_rtx_points_at_its_codec() {
    let caps = generate_router_rtp_capabilities(&typical_media_codecs()).unwrap();
    let json = serde_json::to_value(caps.codecs.unwrap()).unwrap();
    let video_feedback = json!([
        { "type": "nack", "parameter": "" }, { "type": "nack", "parameter": "pli" },
        { "type": "ccm", "parameter": "fir" }, { "type": "goog-remb", "parameter": "" },
        { "type": "transport-cc", "parameter": "" }
    ]);
    assert_eq!(
        json,
        json!([
            {
                "kind": "audio", "mimeType": "audio/opus", "preferredPayloadType": 100,
                "clockRate": 48000, "channels": 2, "parameters": {},
                "rtcpFeedback": [{ "type": "nack", "parameter": "" }, { "type": "transport-cc", "parameter": "" }]
            },
            {
                "kind": "video", "mimeType": "video/VP8", "preferredPayloadType": 101,
                "clockRate": 90000, "parameters": {}, "rtcpFeedback": video_feedback
            },
            {
                "kind": "video", "mimeType": "video/rtx", "preferredPayloadType": 102,
                "clockRate": 90000, "parameters": { "apt": 101 }, "rtcpFeedback": []
            },
            {
                "kind": "video", "mimeType": "video/H264", "preferredPayloadType": 103,
                "clockRate": 90000,
                "parameters": {
                    "level-asymmetry-allowed": 1, "packetization-mode": 1, "profile-level-id": "42e01f"
                },
                "rtcpFeedback": video_feedback
            },
            {
                "kind": "video", "mimeType": "video/rtx", "preferredPayloadType": 104,
                "clockRate": 90000, "parameters": { "apt": 103 }, "rtcpFeedback": []
            }
        ])
    );
}

#[test]
fn preferred_payload_types_are_kept_and_skipped_by_the_allocator() {
    let media = codecs(json!([
        { "kind": "video", "mimeType": "video/VP8", "clockRate": 90000, "preferredPayloadType": 100 },
        { "kind": "audio", "mimeType": "audio/PCMU", "clockRate": 8000 },
        { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 }
    ]));
    let caps = generate_router_rtp_capabilities(&media).unwrap();
    let expected: Vec<(String, u8)> = [("video/VP8", 100), ("video/rtx", 101), ("audio/PCMU", 0), ("audio/opus", 102)]
        .map(|(m, pt)| (m.to_owned(), pt))
        .into();
    assert_eq!(pts(&caps), expected);
    // Audio codecs without channels in the table get channels 1 once normalized.
    assert_eq!(caps.codecs.unwrap()[2].channels, Some(1));
}

#[test]
fn media_codec_parameters_override_supported_ones() {
    let media = codecs(json!([{
        "kind": "video", "mimeType": "video/h264", "clockRate": 90000,
        "parameters": { "level-asymmetry-allowed": 0, "x-google-start-bitrate": 1000 }
    }]));
    let caps = generate_router_rtp_capabilities(&media).unwrap();
    let codec = &caps.codecs.unwrap()[0];
    // The supported codec's mime type (its case) is what the router advertises.
    assert_eq!(codec.mime_type, "video/H264");
    assert_eq!(
        serde_json::to_value(&codec.parameters).unwrap(),
        json!({ "level-asymmetry-allowed": 0, "x-google-start-bitrate": 1000 })
    );
}

#[test]
fn unknown_codec_is_unsupported() {
    let media = codecs(json!([{ "kind": "video", "mimeType": "video/MP4V", "clockRate": 90000 }]));
    let err = generate_router_rtp_capabilities(&media).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedError);
    assert_eq!(err.message, "media codec not supported [mimeType:video/MP4V]");
}

#[test]
fn opus_without_two_channels_is_unsupported() {
    let media = codecs(json!([{ "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000 }]));
    let err = generate_router_rtp_capabilities(&media).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedError);
}

#[test]
fn duplicated_preferred_payload_type_is_a_type_error() {
    let media = codecs(json!([
        { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2, "preferredPayloadType": 111 },
        { "kind": "video", "mimeType": "video/VP8", "clockRate": 90000, "preferredPayloadType": 111 }
    ]));
    let err = generate_router_rtp_capabilities(&media).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TypeError);
    assert_eq!(err.message, "duplicated codec.preferredPayloadType");
}

#[test]
fn invalid_media_codec_is_a_type_error() {
    let media = codecs(json!([{ "kind": "video", "mimeType": "VP8", "clockRate": 90000 }]));
    let err = generate_router_rtp_capabilities(&media).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TypeError);
    assert_eq!(err.message, "invalid codec.mimeType");
}

#[test]
fn running_out_of_dynamic_payload_types_is_an_error() {
    // 17 video codecs need 34 dynamic payload types; there are 32.
    let one = json!({ "kind": "video", "mimeType": "video/VP8", "clockRate": 90000 });
    let media = codecs(serde_json::Value::Array(vec![one; 17]));
    let err = generate_router_rtp_capabilities(&media).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Error);
    assert_eq!(err.message, "cannot allocate more dynamic codec payload types");
}
