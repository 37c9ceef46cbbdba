//! Bad arguments fail with mediasoup's error class and leave the state as it was.

use shardsfu_tests::shardsfu_engine::rtp_parameters::{MediaKind, RtpCapabilities, RtpCodecParameters};
use shardsfu_tests::shardsfu_engine::{
    block_on, ConsumerOptions, Engine, ErrorKind, PlainTransportConnect, PlainTransportOptions, ProducerOptions,
    RouterOptions, TransportListenInfo, WorkerSettings,
};
use shardsfu_tests::*;

const SSRC: u32 = 1234;

fn objects(engine: &Engine) -> serde_json::Value {
    block_on(engine.dump()).unwrap()["shards"][0]["objects"].clone()
}

fn plain(
    router: &shardsfu_tests::shardsfu_engine::Router,
    rtcp_mux: bool,
) -> shardsfu_tests::shardsfu_engine::PlainTransport {
    block_on(router.create_plain_transport(PlainTransportOptions {
        rtcp_mux,
        ..PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))
    }))
    .unwrap()
}

fn connect(ip: Option<&str>, port: Option<u16>, rtcp_port: Option<u16>) -> PlainTransportConnect {
    PlainTransportConnect { ip: ip.map(str::to_owned), port, rtcp_port, ..Default::default() }
}

fn opus_only_caps() -> RtpCapabilities {
    RtpCapabilities {
        codecs: Some(vec![codec_cap(MediaKind::Audio, "audio/opus", 48000, Some(2))]),
        header_extensions: None,
    }
}

#[test]
fn router_with_an_unsupported_codec_is_refused() {
    let engine = engine(1);
    let worker = worker(&engine);
    let before = objects(&engine);
    let bad = block_on(worker.create_router(RouterOptions {
        media_codecs: vec![
            codec_cap(MediaKind::Audio, "audio/opus", 48000, Some(2)),
            codec_cap(MediaKind::Video, "video/NOT-A-CODEC", 90000, None),
        ],
        ..Default::default()
    }));
    assert_eq!(err_kind(bad), ErrorKind::UnsupportedError);
    assert_eq!(objects(&engine), before, "no router was created");
    assert_eq!(worker.dump()["routerIds"], serde_json::json!([]));
    let bad_settings =
        block_on(engine.create_worker(WorkerSettings { log_level: "loud".into(), ..Default::default() }));
    assert_eq!(err_kind(bad_settings), ErrorKind::TypeError);
    engine.close();
}

#[test]
fn produce_with_invalid_rtp_parameters_is_refused() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let t = plain(&router, true);

    let mut no_codecs = vp8_params(SSRC, None);
    no_codecs.codecs.clear();
    let r = block_on(t.produce(ProducerOptions::new(MediaKind::Video, no_codecs)));
    assert_eq!(err_kind(r), ErrorKind::TypeError, "missing codecs");

    let mut h264 = vp8_params(SSRC, None);
    h264.codecs[0].mime_type = "video/H264".into();
    let r = block_on(t.produce(ProducerOptions::new(MediaKind::Video, h264)));
    assert_eq!(err_kind(r), ErrorKind::UnsupportedError, "codec not in the router");

    let mut no_encodings = vp8_params(SSRC, None);
    no_encodings.encodings = Some(vec![]);
    let r = block_on(t.produce(ProducerOptions::new(MediaKind::Video, no_encodings)));
    assert_eq!(err_kind(r), ErrorKind::TypeError, "no encodings");

    let mut orphan_rtx = vp8_params(SSRC, Some(SSRC + 1));
    orphan_rtx.codecs[1].parameters = Some([("apt".to_string(), 120u32.into())].into_iter().collect());
    let r = block_on(t.produce(ProducerOptions::new(MediaKind::Video, orphan_rtx)));
    assert_eq!(err_kind(r), ErrorKind::TypeError, "RTX whose apt names no media codec");

    let mut bad_pt = vp8_params(SSRC, None);
    bad_pt.codecs[0] = RtpCodecParameters { payload_type: 200, ..bad_pt.codecs[0].clone() };
    let r = block_on(t.produce(ProducerOptions::new(MediaKind::Video, bad_pt)));
    assert_eq!(err_kind(r), ErrorKind::TypeError, "payload type out of range");

    let r = block_on(t.produce(ProducerOptions {
        id: Some("not-a-uuid".into()),
        ..ProducerOptions::new(MediaKind::Video, vp8_params(SSRC, None))
    }));
    assert_eq!(err_kind(r), ErrorKind::TypeError, "producer id must be a UUID");

    let dump = block_on(t.dump()).unwrap();
    assert_eq!(dump["producerIds"], serde_json::json!([]), "nothing was created");
    assert_eq!(dump["rtpListener"]["ssrcTable"], serde_json::json!([]));
    assert_eq!(objects(&engine)["producers"], 0);

    // Duplicates: the same producer id, the same SSRC on one transport.
    let id = "00000000-0000-4000-8000-000000000001".to_string();
    let first = block_on(t.produce(ProducerOptions {
        id: Some(id.clone()),
        ..ProducerOptions::new(MediaKind::Video, vp8_params(SSRC, None))
    }))
    .unwrap();
    assert_eq!(first.id(), id);
    let other = plain(&router, true);
    let r = block_on(other.produce(ProducerOptions {
        id: Some(id.clone()),
        ..ProducerOptions::new(MediaKind::Video, vp8_params(SSRC + 10, None))
    }));
    assert_eq!(err_kind(r), ErrorKind::TypeError, "duplicate producer id");
    let r = block_on(t.produce(ProducerOptions::new(MediaKind::Video, vp8_params(SSRC, None))));
    assert_eq!(err_kind(r), ErrorKind::TypeError, "duplicate SSRC on the transport");
    assert_eq!(objects(&engine)["producers"], 1);
    assert_eq!(block_on(other.dump()).unwrap()["producerIds"], serde_json::json!([]));
    engine.close();
}

#[test]
fn consume_errors_and_can_consume() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, _sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    let t = plain(&router, true);
    let caps = router.rtp_capabilities().clone();

    assert!(router.can_consume(producer.id(), &caps));
    assert!(router.can_consume(producer.id(), &caps_without_rtx(&router)));
    assert!(!router.can_consume(producer.id(), &opus_only_caps()));
    assert!(!router.can_consume("00000000-0000-4000-8000-00000000dead", &caps));
    let other_router = shardsfu_tests::router(&worker);
    assert!(!other_router.can_consume(producer.id(), &caps), "a producer of another router");

    let r = block_on(t.consume(ConsumerOptions::new("00000000-0000-4000-8000-00000000dead", caps.clone())));
    assert_eq!(err_kind(r), ErrorKind::Error, "unknown producer id");
    let r = block_on(t.consume(ConsumerOptions::new(producer.id(), opus_only_caps())));
    assert_eq!(err_kind(r), ErrorKind::UnsupportedError, "capabilities that cannot consume");
    let elsewhere = plain(&other_router, true);
    let r = block_on(elsewhere.consume(ConsumerOptions::new(producer.id(), caps.clone())));
    assert_eq!(err_kind(r), ErrorKind::UnsupportedError, "a producer of another router needs pipeToRouter");

    assert_eq!(block_on(t.dump()).unwrap()["consumerIds"], serde_json::json!([]), "nothing was created");
    assert_eq!(objects(&engine)["consumers"], 0);
    assert_eq!(block_on(router.dump()).unwrap()["mapConsumerIdProducerId"], serde_json::json!([]));
    // Still consumable afterwards.
    let c = block_on(t.consume(ConsumerOptions::new(producer.id(), caps))).unwrap();
    assert_eq!(c.producer_id(), producer.id());
    engine.close();
}

#[test]
fn plain_connect_errors() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let t = plain(&router, true);
    assert_eq!(err_kind(block_on(t.connect(connect(Some("127.0.0.1"), None, None)))), ErrorKind::TypeError, "no port");
    assert_eq!(
        err_kind(block_on(t.connect(connect(Some("127.0.0.1"), Some(0), None)))),
        ErrorKind::TypeError,
        "port 0"
    );
    assert_eq!(err_kind(block_on(t.connect(connect(None, Some(5000), None)))), ErrorKind::TypeError, "no ip");
    assert_eq!(err_kind(block_on(t.connect(connect(Some("not an ip"), Some(5000), None)))), ErrorKind::TypeError);
    assert_eq!(t.tuple().remote_port, None, "still unconnected");
    assert_eq!(block_on(t.dump()).unwrap()["tuple"].get("remotePort"), None);

    block_on(t.connect(connect(Some("127.0.0.1"), Some(5000), None))).unwrap();
    assert_eq!(t.tuple().remote_port, Some(5000));
    let again = block_on(t.connect(connect(Some("127.0.0.1"), Some(5002), None)));
    assert_eq!(err_kind(again), ErrorKind::InvalidStateError, "connect twice");
    assert_eq!(t.tuple().remote_port, Some(5000), "the first remote stays");

    let (comedia, _) = ingest(&router);
    let r = block_on(comedia.connect(connect(Some("127.0.0.1"), Some(5000), None)));
    assert_eq!(err_kind(r), ErrorKind::InvalidStateError, "connect on a comedia transport");
    assert_eq!(comedia.tuple().remote_port, None);

    let no_mux = plain(&router, false);
    let r = block_on(no_mux.connect(connect(Some("127.0.0.1"), Some(5000), None)));
    assert_eq!(err_kind(r), ErrorKind::TypeError, "rtcpMux false needs rtcpPort");
    assert_eq!(no_mux.tuple().remote_port, None);
    block_on(no_mux.connect(connect(Some("127.0.0.1"), Some(5000), Some(5001)))).unwrap();
    assert_eq!(no_mux.rtcp_tuple().unwrap().remote_port, Some(5001));

    let bad_ip = block_on(router.create_plain_transport(PlainTransportOptions::new(TransportListenInfo::udp("nope"))));
    assert_eq!(err_kind(bad_ip), ErrorKind::TypeError);
    let srtp = block_on(t.connect(PlainTransportConnect {
        srtp_parameters: Some(serde_json::json!({})),
        ..connect(Some("127.0.0.1"), Some(5000), None)
    }));
    assert_eq!(err_kind(srtp), ErrorKind::UnsupportedError);
    engine.close();
}
