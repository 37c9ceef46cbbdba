//! A producer's parameters through the router to consumers: mapping, consumable parameters,
//! canConsume, consumer and pipe consumer parameters.

use serde_json::json;
use shardsfu_engine::ortc::{
    can_consume, generate_router_rtp_capabilities, get_consumable_rtp_parameters, get_consumer_rtp_parameters,
    get_pipe_consumer_rtp_parameters, get_producer_rtp_parameters_mapping, validate_rtp_parameters, RtpMapping,
};
use shardsfu_engine::rtp_parameters::{MediaKind, RtpCapabilities, RtpParameters};
use shardsfu_engine::ErrorKind;

fn router_caps() -> RtpCapabilities {
    let media = serde_json::from_value::<Vec<_>>(json!([
        { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 },
        { "kind": "video", "mimeType": "video/VP8", "clockRate": 90000 },
        {
            "kind": "video", "mimeType": "video/H264", "clockRate": 90000,
            "parameters": { "packetization-mode": 1, "profile-level-id": "42e01f" }
        }
    ]))
    .unwrap();
    generate_router_rtp_capabilities(&media).unwrap()
}

/// What mediasoup-client sends for Chrome's VP8 simulcast (three rids, RTX).
fn chrome_vp8_simulcast() -> RtpParameters {
    let mut params: RtpParameters = serde_json::from_value(json!({
        "mid": "0",
        "codecs": [
            {
                "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000,
                "rtcpFeedback": [
                    { "type": "goog-remb", "parameter": "" }, { "type": "transport-cc", "parameter": "" },
                    { "type": "ccm", "parameter": "fir" }, { "type": "nack", "parameter": "" },
                    { "type": "nack", "parameter": "pli" }
                ]
            },
            { "mimeType": "video/rtx", "payloadType": 97, "clockRate": 90000, "parameters": { "apt": 96 } }
        ],
        "headerExtensions": [
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4 },
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", "id": 10 },
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id", "id": 11 },
            { "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 2 },
            { "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 3 }
        ],
        "encodings": [
            { "rid": "r0", "scalabilityMode": "L1T3", "maxBitrate": 100000, "scaleResolutionDownBy": 4.0 },
            { "rid": "r1", "scalabilityMode": "L1T3", "maxBitrate": 300000, "scaleResolutionDownBy": 2.0 },
            { "rid": "r2", "scalabilityMode": "L1T3", "maxBitrate": 900000, "scaleResolutionDownBy": 1.0 }
        ],
        "rtcp": { "cname": "Zz7CPkWbTE5a5rYn", "reducedSize": true }
    }))
    .unwrap();
    validate_rtp_parameters(&mut params).unwrap();
    params
}

fn chrome_opus() -> RtpParameters {
    let mut params: RtpParameters = serde_json::from_value(json!({
        "mid": "1",
        "codecs": [{
            "mimeType": "audio/opus", "payloadType": 111, "clockRate": 48000, "channels": 2,
            "parameters": { "minptime": 10, "useinbandfec": 1 },
            "rtcpFeedback": [{ "type": "transport-cc" }]
        }],
        "headerExtensions": [
            { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 4 },
            { "uri": "urn:ietf:params:rtp-hdrext:ssrc-audio-level", "id": 1 }
        ],
        "encodings": [{ "ssrc": 1111, "dtx": false }],
        "rtcp": { "cname": "audiocname" }
    }))
    .unwrap();
    validate_rtp_parameters(&mut params).unwrap();
    params
}

fn vp8_consumable() -> (RtpParameters, RtpMapping) {
    let caps = router_caps();
    let mut params = chrome_vp8_simulcast();
    let mapping = get_producer_rtp_parameters_mapping(&mut params, &caps, 500_000_000).unwrap();
    let consumable = get_consumable_rtp_parameters(MediaKind::Video, &params, &caps, &mapping).unwrap();
    (consumable, mapping)
}

/// A receiving Chrome's capabilities as mediasoup-client reports them (subset).
fn chrome_recv_caps() -> RtpCapabilities {
    serde_json::from_value(json!({
        "codecs": [
            {
                "kind": "audio", "mimeType": "audio/opus", "preferredPayloadType": 100,
                "clockRate": 48000, "channels": 2, "parameters": { "minptime": 10, "useinbandfec": 1 },
                "rtcpFeedback": [{ "type": "transport-cc" }]
            },
            {
                "kind": "video", "mimeType": "video/VP8", "preferredPayloadType": 101, "clockRate": 90000,
                "rtcpFeedback": [
                    { "type": "goog-remb" }, { "type": "transport-cc" }, { "type": "ccm", "parameter": "fir" },
                    { "type": "nack" }, { "type": "nack", "parameter": "pli" }
                ]
            },
            {
                "kind": "video", "mimeType": "video/rtx", "preferredPayloadType": 102, "clockRate": 90000,
                "parameters": { "apt": 101 }
            }
        ],
        "headerExtensions": [
            { "kind": "video", "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "preferredId": 1 },
            { "kind": "video", "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "preferredId": 4 },
            { "kind": "video", "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "preferredId": 5 },
            { "kind": "video", "uri": "urn:3gpp:video-orientation", "preferredId": 11 },
            { "kind": "video", "uri": "urn:ietf:params:rtp-hdrext:toffset", "preferredId": 12 }
        ]
    }))
    .unwrap()
}

#[test]
fn simulcast_producer_mapping() {
    let (_, mapping) = vp8_consumable();
    assert_eq!(
        serde_json::to_value(&mapping).unwrap(),
        json!({
            "codecs": [
                { "payloadType": 96, "mappedPayloadType": 101 },
                { "payloadType": 97, "mappedPayloadType": 102 }
            ],
            "encodings": [
                { "rid": "r0", "scalabilityMode": "L1T3", "mappedSsrc": 500000000 },
                { "rid": "r1", "scalabilityMode": "L1T3", "mappedSsrc": 500000001 },
                { "rid": "r2", "scalabilityMode": "L1T3", "mappedSsrc": 500000002 }
            ]
        })
    );
}

#[test]
fn simulcast_consumable_parameters() {
    let (consumable, _) = vp8_consumable();
    let fb = json!([
        { "type": "nack", "parameter": "" }, { "type": "nack", "parameter": "pli" },
        { "type": "ccm", "parameter": "fir" }, { "type": "goog-remb", "parameter": "" },
        { "type": "transport-cc", "parameter": "" }
    ]);
    assert_eq!(
        serde_json::to_value(&consumable).unwrap(),
        json!({
            "codecs": [
                { "mimeType": "video/VP8", "payloadType": 101, "clockRate": 90000, "parameters": {}, "rtcpFeedback": fb },
                { "mimeType": "video/rtx", "payloadType": 102, "clockRate": 90000, "parameters": { "apt": 101 }, "rtcpFeedback": [] }
            ],
            "headerExtensions": [
                { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": false, "parameters": {} },
                { "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 4, "encrypt": false, "parameters": {} },
                { "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 5, "encrypt": false, "parameters": {} },
                { "uri": "urn:3gpp:video-orientation", "id": 11, "encrypt": false, "parameters": {} },
                { "uri": "urn:ietf:params:rtp-hdrext:toffset", "id": 12, "encrypt": false, "parameters": {} },
                { "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time", "id": 13, "encrypt": false, "parameters": {} },
                { "uri": "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", "id": 14, "encrypt": false, "parameters": {} }
            ],
            "encodings": [
                { "ssrc": 500000000, "dtx": false, "scalabilityMode": "L1T3", "scaleResolutionDownBy": 4.0, "maxBitrate": 100000 },
                { "ssrc": 500000001, "dtx": false, "scalabilityMode": "L1T3", "scaleResolutionDownBy": 2.0, "maxBitrate": 300000 },
                { "ssrc": 500000002, "dtx": false, "scalabilityMode": "L1T3", "scaleResolutionDownBy": 1.0, "maxBitrate": 900000 }
            ],
            "rtcp": { "cname": "Zz7CPkWbTE5a5rYn", "reducedSize": true }
        })
    );
}

#[test]
fn opus_producer_keeps_its_parameters_in_the_consumable() {
    let caps = router_caps();
    let mut params = chrome_opus();
    let mapping = get_producer_rtp_parameters_mapping(&mut params, &caps, 7).unwrap();
    assert_eq!(
        serde_json::to_value(&mapping).unwrap(),
        json!({
            "codecs": [{ "payloadType": 111, "mappedPayloadType": 100 }],
            "encodings": [{ "ssrc": 1111, "mappedSsrc": 7 }]
        })
    );
    let consumable = get_consumable_rtp_parameters(MediaKind::Audio, &params, &caps, &mapping).unwrap();
    let json = serde_json::to_value(&consumable).unwrap();
    assert_eq!(
        json["codecs"],
        json!([{
            "mimeType": "audio/opus", "payloadType": 100, "clockRate": 48000, "channels": 2,
            "parameters": { "minptime": 10, "useinbandfec": 1 },
            "rtcpFeedback": [{ "type": "nack", "parameter": "" }, { "type": "transport-cc", "parameter": "" }]
        }])
    );
    let uris: Vec<&str> =
        json["headerExtensions"].as_array().unwrap().iter().map(|e| e["uri"].as_str().unwrap()).collect();
    // Audio transport-wide-cc is recvonly, so consumers do not get it.
    assert_eq!(
        uris,
        [
            "urn:ietf:params:rtp-hdrext:sdes:mid",
            "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
            "urn:ietf:params:rtp-hdrext:ssrc-audio-level",
            "http://www.webrtc.org/experiments/rtp-hdrext/abs-capture-time",
            "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
        ]
    );
    assert_eq!(json["encodings"], json!([{ "ssrc": 7, "dtx": false }]));
}

#[test]
fn unsupported_producer_codec_leaves_params_unchanged() {
    let caps = router_caps();
    let mut params = chrome_vp8_simulcast();
    params.codecs[0].mime_type = "video/VP9".to_owned();
    let before = params.clone();
    let err = get_producer_rtp_parameters_mapping(&mut params, &caps, 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedError);
    assert_eq!(err.message, "unsupported codec [mimeType:video/VP9, payloadType:96]");
    assert_eq!(params, before);
}

#[test]
fn rtx_without_its_media_codec_is_a_type_error() {
    let caps = router_caps();
    let mut params = chrome_vp8_simulcast();
    params.codecs[1].parameters.as_mut().unwrap().insert("apt".into(), 55.into());
    let err = get_producer_rtp_parameters_mapping(&mut params, &caps, 1).unwrap_err();
    assert_eq!(err.kind, ErrorKind::TypeError);
    assert_eq!(err.message, "missing media codec found for RTX PT 97");
}

#[test]
fn can_consume_needs_a_media_codec() {
    let (consumable, _) = vp8_consumable();
    assert!(can_consume(&consumable, &chrome_recv_caps()).unwrap());

    let mut audio_only = chrome_recv_caps();
    audio_only.codecs.as_mut().unwrap().retain(|c| c.kind == MediaKind::Audio);
    assert!(!can_consume(&consumable, &audio_only).unwrap());

    // Matching only the RTX codec is not enough.
    let mut rtx_only = chrome_recv_caps();
    rtx_only.codecs.as_mut().unwrap().retain(|c| c.mime_type == "video/rtx");
    assert!(!can_consume(&consumable, &rtx_only).unwrap());

    let mut broken = chrome_recv_caps();
    broken.codecs.as_mut().unwrap()[0].mime_type = "opus".into();
    assert_eq!(can_consume(&consumable, &broken).unwrap_err().kind, ErrorKind::TypeError);
}

#[test]
fn consumer_of_simulcast_with_rtx() {
    let (consumable, _) = vp8_consumable();
    let params = get_consumer_rtp_parameters(&consumable, &chrome_recv_caps(), false, true, 1234, 0).unwrap();
    assert_eq!(
        serde_json::to_value(&params).unwrap(),
        json!({
            "codecs": [
                {
                    "mimeType": "video/VP8", "payloadType": 101, "clockRate": 90000, "parameters": {},
                    // REMB dropped since transport-wide-cc is negotiated; remote order kept.
                    "rtcpFeedback": [
                        { "type": "transport-cc", "parameter": "" }, { "type": "ccm", "parameter": "fir" },
                        { "type": "nack", "parameter": "" }, { "type": "nack", "parameter": "pli" }
                    ]
                },
                { "mimeType": "video/rtx", "payloadType": 102, "clockRate": 90000, "parameters": { "apt": 101 }, "rtcpFeedback": [] }
            ],
            "headerExtensions": [
                { "uri": "urn:ietf:params:rtp-hdrext:sdes:mid", "id": 1, "encrypt": false, "parameters": {} },
                { "uri": "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", "id": 4, "encrypt": false, "parameters": {} },
                { "uri": "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", "id": 5, "encrypt": false, "parameters": {} },
                { "uri": "urn:3gpp:video-orientation", "id": 11, "encrypt": false, "parameters": {} },
                { "uri": "urn:ietf:params:rtp-hdrext:toffset", "id": 12, "encrypt": false, "parameters": {} }
            ],
            "encodings": [{ "ssrc": 1234, "rtx": { "ssrc": 1235 }, "scalabilityMode": "L3T3", "maxBitrate": 900000 }],
            "rtcp": { "cname": "Zz7CPkWbTE5a5rYn", "reducedSize": true }
        })
    );
}

#[test]
fn consumer_without_rtx_drops_rtx_and_plain_nack() {
    let (consumable, _) = vp8_consumable();
    let params = get_consumer_rtp_parameters(&consumable, &chrome_recv_caps(), false, false, 1234, 0).unwrap();
    assert_eq!(params.codecs.len(), 1);
    let fb = serde_json::to_value(&params.codecs[0].rtcp_feedback).unwrap();
    assert_eq!(
        fb,
        json!([
            { "type": "transport-cc", "parameter": "" }, { "type": "ccm", "parameter": "fir" },
            { "type": "nack", "parameter": "pli" }
        ])
    );
    assert_eq!(
        serde_json::to_value(&params.encodings).unwrap(),
        json!([{ "ssrc": 1234, "scalabilityMode": "L3T3", "maxBitrate": 900000 }])
    );
}

#[test]
fn consumer_feedback_follows_negotiated_bwe_extension() {
    let (consumable, _) = vp8_consumable();
    let mut caps = chrome_recv_caps();
    caps.header_extensions.as_mut().unwrap().retain(|e| !e.uri.contains("transport-wide-cc"));
    let params = get_consumer_rtp_parameters(&consumable, &caps, false, true, 1, 0).unwrap();
    let types: Vec<&str> = params.codecs[0].rtcp_feedback.iter().flatten().map(|fb| fb.r#type.as_str()).collect();
    assert_eq!(types, ["goog-remb", "ccm", "nack", "nack"]);

    caps.header_extensions.as_mut().unwrap().retain(|e| !e.uri.contains("abs-send-time"));
    let params = get_consumer_rtp_parameters(&consumable, &caps, false, true, 1, 0).unwrap();
    let types: Vec<&str> = params.codecs[0].rtcp_feedback.iter().flatten().map(|fb| fb.r#type.as_str()).collect();
    assert_eq!(types, ["ccm", "nack", "nack"]);
}

#[test]
fn consumer_with_no_common_codec_is_unsupported() {
    let (consumable, _) = vp8_consumable();
    let mut caps = chrome_recv_caps();
    caps.codecs.as_mut().unwrap().retain(|c| c.kind == MediaKind::Audio);
    let err = get_consumer_rtp_parameters(&consumable, &caps, false, true, 1, 2).unwrap_err();
    assert_eq!(err.kind, ErrorKind::UnsupportedError);
    assert_eq!(err.message, "no compatible media codecs");
}

#[test]
fn pipe_consumer_via_consume_keeps_all_encodings() {
    let (consumable, _) = vp8_consumable();
    let params = get_consumer_rtp_parameters(&consumable, &chrome_recv_caps(), true, true, 9000, 7000).unwrap();
    assert_eq!(
        serde_json::to_value(&params.encodings).unwrap(),
        json!([
            { "ssrc": 9000, "rtx": { "ssrc": 7000 }, "dtx": false, "scalabilityMode": "L1T3", "scaleResolutionDownBy": 4.0, "maxBitrate": 100000 },
            { "ssrc": 9001, "rtx": { "ssrc": 7001 }, "dtx": false, "scalabilityMode": "L1T3", "scaleResolutionDownBy": 2.0, "maxBitrate": 300000 },
            { "ssrc": 9002, "rtx": { "ssrc": 7002 }, "dtx": false, "scalabilityMode": "L1T3", "scaleResolutionDownBy": 1.0, "maxBitrate": 900000 }
        ])
    );
}

#[test]
fn pipe_transport_consumer_parameters() {
    let (consumable, _) = vp8_consumable();
    let with_rtx = get_pipe_consumer_rtp_parameters(&consumable, true, 100, 200);
    let json = serde_json::to_value(&with_rtx).unwrap();
    assert_eq!(
        json["codecs"][0]["rtcpFeedback"],
        json!([
            { "type": "nack", "parameter": "" }, { "type": "nack", "parameter": "pli" },
            { "type": "ccm", "parameter": "fir" }
        ])
    );
    assert_eq!(json["codecs"][1]["mimeType"], "video/rtx");
    let ids: Vec<u64> =
        json["headerExtensions"].as_array().unwrap().iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [11, 12, 13, 14], "mid, abs-send-time and transport-wide-cc are dropped");
    assert_eq!(json["encodings"][2]["ssrc"], 102);
    assert_eq!(json["encodings"][2]["rtx"]["ssrc"], 202);

    let without_rtx = get_pipe_consumer_rtp_parameters(&consumable, false, 100, 200);
    assert_eq!(without_rtx.codecs.len(), 1);
    let types: Vec<(&str, Option<&str>)> = without_rtx.codecs[0]
        .rtcp_feedback
        .iter()
        .flatten()
        .map(|fb| (fb.r#type.as_str(), fb.parameter.as_deref()))
        .collect();
    assert_eq!(types, [("nack", Some("pli")), ("ccm", Some("fir"))]);
    assert!(without_rtx.encodings.unwrap().iter().all(|e| e.rtx.is_none()));
}
