//! createWorker -> createRouter -> PlainTransports -> produce -> consume over the API, with real
//! RTP over loopback UDP; pause/resume; pipeToRouter; DirectTransport packets in JSON.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn rtp_reaches_a_consumer_and_pause_resume_gate_it() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (_, router, caps) = worker_and_router(&mut c);
    let (_, producer, sender) = ingest(&mut c, &router, 1111);
    let (_, consumer, rx) = receiver(&mut c, &router, &producer, &caps);
    assert_eq!(consumer["producerId"], producer.as_str());
    assert_eq!(consumer["kind"], "video");
    assert_eq!(consumer["type"], "simple");
    assert_eq!(consumer["paused"], false);
    assert_eq!(consumer["producerPaused"], false);
    assert_eq!(consumer["priority"], 1);
    let cid = consumer["id"].as_str().unwrap().to_owned();
    let ssrc = consumer["rtpParameters"]["encodings"][0]["ssrc"].as_u64().unwrap() as u32;

    let body: Vec<u8> = (0..600u32).map(|i| (i * 13) as u8).collect();
    send_packets(&sender, 1111, 100, 20, &body);
    let got = recv_rtp_for(&rx, Duration::from_millis(500));
    assert_eq!(got.len(), 20, "every packet arrives");
    for p in &got {
        assert_eq!(ssrc_of(p), ssrc, "rewritten to the consumer's SSRC");
        assert!(p.ends_with(&body), "payload bytes intact");
    }

    c.call("consumer.pause", json!({ "consumerId": cid }));
    send_packets(&sender, 1111, 120, 10, &body);
    assert!(recv_rtp_for(&rx, Duration::from_millis(300)).is_empty(), "nothing while paused");
    c.call("consumer.resume", json!({ "consumerId": cid }));
    send_packets(&sender, 1111, 130, 10, &body);
    assert_eq!(recv_rtp_for(&rx, Duration::from_millis(500)).len(), 10, "flows again after resume");

    // The producer paused by its client: the consumer hears of it, the producer's client does
    // not get its own pause back.
    c.call("producer.pause", json!({ "producerId": producer }));
    c.notification("consumer.producerpause", "consumerId", &json!(cid));
    send_packets(&sender, 1111, 140, 5, &body);
    assert!(recv_rtp_for(&rx, Duration::from_millis(300)).is_empty(), "nothing while the producer is paused");
    c.call("producer.resume", json!({ "producerId": producer }));
    c.notification("consumer.producerresume", "consumerId", &json!(cid));
    c.drain(Duration::from_millis(100));
    assert!(
        !c.notifications.iter().any(|n| n["method"] == "producer.pause" || n["method"] == "producer.resume"),
        "a client's own pause/resume is not echoed: {:?}",
        c.notifications
    );

    let stats = c.call("consumer.getStats", json!({ "consumerId": cid }));
    assert_eq!(stats[0]["type"], "outbound-rtp");
    assert_eq!(stats[0]["packetCount"], 30);
    let dump = c.call("producer.dump", json!({ "producerId": producer }));
    assert_eq!(dump["id"], producer.as_str());
    let pstats = c.call("producer.getStats", json!({ "producerId": producer }));
    assert_eq!(pstats[0]["type"], "inbound-rtp");
    c.call("consumer.requestKeyFrame", json!({ "consumerId": cid }));
    c.call("consumer.setPriority", json!({ "consumerId": cid, "priority": 7 }));
    assert_eq!(c.call("consumer.dump", json!({ "consumerId": cid }))["priority"], 7);
    c.call("consumer.setPreferredLayers", json!({ "consumerId": cid, "spatialLayer": 0 }));
    let can =
        c.call("router.canConsume", json!({ "routerId": router, "producerId": producer, "rtpCapabilities": caps }));
    assert_eq!(can, true);
    let cannot = c.call(
        "router.canConsume",
        json!({ "routerId": router, "producerId": producer, "rtpCapabilities": { "codecs": [] } }),
    );
    assert_eq!(cannot, false);
}

#[test]
fn pipe_to_router_carries_media_between_routers() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (worker, router_a, _) = worker_and_router(&mut c);
    let router_b = c.call("worker.createRouter", json!({ "workerId": worker, "mediaCodecs": media_codecs() }));
    let (router_b, caps_b) = (router_b["id"].as_str().unwrap().to_owned(), router_b["rtpCapabilities"].clone());
    let (_, producer, sender) = ingest(&mut c, &router_a, 2222);
    let pipe = c.call(
        "router.pipeToRouter",
        json!({ "routerId": router_a, "producerId": producer, "targetRouterId": router_b }),
    );
    assert_eq!(pipe["pipeProducer"]["id"], producer.as_str(), "keepId defaults to true");
    assert_eq!(pipe["pipeConsumer"]["type"], "pipe");
    let (_, consumer, rx) = receiver(&mut c, &router_b, &producer, &caps_b);
    let body = [7u8; 300];
    send_packets(&sender, 2222, 1, 15, &body);
    let got = recv_rtp_for(&rx, Duration::from_millis(800));
    assert_eq!(got.len(), 15, "media crosses the pipe");
    assert!(got.iter().all(|p| p.ends_with(&body)));

    // One id, two producers: routerId tells them apart.
    let e = c.call_err("producer.dump", json!({ "producerId": producer }));
    assert_eq!(e["code"], -32602);
    let dump = c.call("producer.dump", json!({ "producerId": producer, "routerId": router_b }));
    assert_eq!(dump["id"], producer.as_str());

    // Pausing the source pauses the pipe producer: the engine did it, so it is notified (with
    // the router that tells the two producers apart), and its consumer hears producerpause.
    c.call("producer.pause", json!({ "producerId": producer, "routerId": router_a }));
    let n = c.notification("producer.pause", "routerId", &json!(router_b));
    assert_eq!(n["params"]["producerId"], producer.as_str());
    c.notification("consumer.producerpause", "consumerId", &consumer["id"]);
    c.call("producer.resume", json!({ "producerId": producer, "routerId": router_a }));
    c.notification("producer.resume", "routerId", &json!(router_b));
    c.notification("consumer.producerresume", "consumerId", &consumer["id"]);
    assert!(
        !c.notifications
            .iter()
            .any(|n| n["method"] == "producer.pause" && n["params"]["routerId"] == router_a.as_str()),
        "the client's own pause is not echoed: {:?}",
        c.notifications
    );

    // Closing the source producer closes the pipe and, through it, the consumer in router B.
    let cid = consumer["id"].clone();
    c.call("producer.close", json!({ "producerId": producer, "routerId": router_a }));
    c.notification("consumer.producerclose", "consumerId", &cid);
    c.notification("consumer.producerclose", "consumerId", &pipe["pipeConsumer"]["id"]);
}

#[test]
fn direct_transport_packets_travel_as_base64() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (_, router, caps) = worker_and_router(&mut c);
    let t = c.call("router.createDirectTransport", json!({ "routerId": router }));
    let tid = t["id"].as_str().unwrap().to_owned();
    c.call("transport.connect", json!({ "transportId": tid }));
    let p =
        c.call("transport.produce", json!({ "transportId": tid, "kind": "video", "rtpParameters": vp8_params(3333) }));
    let pid = p["id"].as_str().unwrap().to_owned();
    let consumer =
        c.call("transport.consume", json!({ "transportId": tid, "producerId": pid, "rtpCapabilities": caps }));
    let body = [0xabu8; 40];
    let packet = rtp(96, 10, 1000, 3333, &body);
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    c.call("producer.send", json!({ "producerId": pid, "rtpPacket": b64.encode(&packet) }));
    let n = c.notification("consumer.rtp", "consumerId", &consumer["id"]);
    let bytes = b64.decode(n["params"]["packet"].as_str().unwrap()).unwrap();
    assert!(bytes.ends_with(&body));
    let e = c.call_err("producer.send", json!({ "producerId": pid, "rtpPacket": "***" }));
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32602), Some("TypeError")));
}

#[test]
fn listen_info_defaults_come_from_the_server_settings() {
    let sfu = Sfu::start(&["--announced-address", "203.0.113.7"]);
    let mut c = sfu.client();
    let (_, router, _) = worker_and_router(&mut c);
    // No listenInfo: the server's media IP, announced as configured.
    let t = c.call("router.createPlainTransport", json!({ "routerId": router }));
    assert_eq!(t["tuple"]["localAddress"], "203.0.113.7");
    assert_eq!(t["tuple"]["protocol"], "udp");
    assert_eq!(t["rtcpMux"], true);
    assert!(t.get("rtcpTuple").is_none());
    // Every interface, nothing announced: the configured announced address fills in.
    let t = c.call(
        "router.createPlainTransport",
        json!({ "routerId": router, "listenInfo": { "protocol": "udp", "ip": "0.0.0.0" }, "rtcpMux": false }),
    );
    assert_eq!(t["tuple"]["localAddress"], "203.0.113.7");
    assert!(t["rtcpTuple"]["localPort"].is_number(), "rtcpMux off has an RTCP tuple: {t}");
    // A listenInfo that announces its own address keeps it.
    let t = c.call(
        "router.createPlainTransport",
        json!({ "routerId": router, "listenInfo": { "protocol": "udp", "ip": "127.0.0.1", "announcedAddress": "198.51.100.1" } }),
    );
    assert_eq!(t["tuple"]["localAddress"], "198.51.100.1");
}
