//! DataProducers and DataConsumers over the API: produceData / consumeData on DirectTransports,
//! text and binary messages in `dataConsumer.message` with their ppids, pause and close
//! notifications, pipeToRouter with a dataProducerId, and what is refused (SCTP transports).

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn direct_transport(c: &mut Client, router: &str) -> String {
    let t = c.call("router.createDirectTransport", json!({ "routerId": router }));
    t["id"].as_str().unwrap().to_owned()
}

/// The bytes a `dataConsumer.message` notification carries.
fn message_bytes(n: &Value) -> Vec<u8> {
    let p = &n["params"];
    if p["binary"] == true {
        B64.decode(p["message"].as_str().unwrap()).unwrap()
    } else {
        p["message"].as_str().unwrap().as_bytes().to_vec()
    }
}

#[test]
fn data_messages_pause_and_close_over_the_api() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (_, router, _) = worker_and_router(&mut c);
    let send_t = direct_transport(&mut c, &router);
    let recv_t = direct_transport(&mut c, &router);

    let dp = c.call(
        "transport.produceData",
        json!({ "transportId": send_t, "label": "chat", "protocol": "json", "appData": { "a": 1 } }),
    );
    assert_eq!(dp["type"], "direct");
    assert_eq!(dp["label"], "chat");
    assert_eq!(dp["protocol"], "json");
    assert_eq!(dp["paused"], false);
    assert!(dp.get("sctpStreamParameters").is_none(), "no SCTP stream on a DirectTransport: {dp}");
    let dpid = dp["id"].as_str().unwrap().to_owned();

    let dc = c.call("transport.consumeData", json!({ "transportId": recv_t, "dataProducerId": dpid }));
    assert_eq!(dc["dataProducerId"], dpid.as_str());
    assert_eq!(dc["type"], "direct");
    assert_eq!(dc["label"], "chat");
    assert_eq!(dc["protocol"], "json");
    assert_eq!(dc["paused"], false);
    assert_eq!(dc["dataProducerPaused"], false);
    assert_eq!(dc["subchannels"], json!([]));
    let dcid = dc["id"].clone();

    // A text message: ppid 51, the exact UTF-8 bytes.
    let text = "héllo, wörld ✓";
    c.call("dataProducer.send", json!({ "dataProducerId": dpid, "message": text }));
    let n = c.notification("dataConsumer.message", "dataConsumerId", &dcid);
    assert_eq!(n["params"]["ppid"], 51, "{n}");
    assert_eq!(message_bytes(&n), text.as_bytes());

    // A binary message (base64 on the wire both ways): ppid 53, the exact bytes.
    let binary: Vec<u8> = (0..=255u8).rev().chain([0, 0xff, 0x80]).collect();
    c.call("dataProducer.send", json!({ "dataProducerId": dpid, "message": B64.encode(&binary), "binary": true }));
    let n = c.notification("dataConsumer.message", "dataConsumerId", &dcid);
    assert_eq!(n["params"]["ppid"], 53, "{n}");
    assert_eq!(n["params"]["binary"], true);
    assert_eq!(message_bytes(&n), binary);

    // An explicit ppid is kept.
    c.call("dataProducer.send", json!({ "dataProducerId": dpid, "message": "x", "ppid": 1234 }));
    let n = c.notification("dataConsumer.message", "dataConsumerId", &dcid);
    assert_eq!(n["params"]["ppid"], 1234);
    assert_eq!(message_bytes(&n), b"x");

    let stats = c.call("dataProducer.getStats", json!({ "dataProducerId": dpid }));
    assert_eq!(stats[0]["type"], "data-producer");
    assert_eq!(stats[0]["messagesReceived"], 3);
    let stats = c.call("dataConsumer.getStats", json!({ "dataConsumerId": dcid }));
    assert_eq!(stats[0]["type"], "data-consumer");
    assert_eq!(stats[0]["messagesSent"], 3);

    // Subchannels and the buffered amount.
    let r = c.call("dataConsumer.setSubchannels", json!({ "dataConsumerId": dcid, "subchannels": [5, 1, 5] }));
    assert_eq!(r["subchannels"], json!([1, 5]));
    let r = c.call("dataConsumer.addSubchannel", json!({ "dataConsumerId": dcid, "subchannel": 3 }));
    assert_eq!(r["subchannels"], json!([1, 3, 5]));
    let r = c.call("dataConsumer.removeSubchannel", json!({ "dataConsumerId": dcid, "subchannel": 1 }));
    assert_eq!(r["subchannels"], json!([3, 5]));
    assert_eq!(c.call("dataConsumer.getBufferedAmount", json!({ "dataConsumerId": dcid })), 0);
    c.call("dataConsumer.setBufferedAmountLowThreshold", json!({ "dataConsumerId": dcid, "threshold": 4096 }));
    let dump = c.call("dataConsumer.dump", json!({ "dataConsumerId": dcid }));
    assert_eq!(dump["subchannels"], json!([3, 5]));
    assert_eq!(dump["bufferedAmountLowThreshold"], 4096);
    let e = c.call_err("dataConsumer.addSubchannel", json!({ "dataConsumerId": dcid, "subchannel": -1 }));
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32602), Some("TypeError")), "{e}");

    // Pausing the data producer: its consumer hears dataproducerpause, its client gets no echo.
    c.call("dataProducer.pause", json!({ "dataProducerId": dpid }));
    c.notification("dataConsumer.dataproducerpause", "dataConsumerId", &dcid);
    assert_eq!(c.call("dataProducer.dump", json!({ "dataProducerId": dpid }))["paused"], true);
    c.call("dataProducer.send", json!({ "dataProducerId": dpid, "message": "lost" }));
    c.call("dataProducer.resume", json!({ "dataProducerId": dpid }));
    c.notification("dataConsumer.dataproducerresume", "dataConsumerId", &dcid);
    c.drain(Duration::from_millis(100));
    assert!(
        !c.notifications.iter().any(|n| n["method"] == "dataConsumer.message"
            || n["method"] == "dataProducer.pause"
            || n["method"] == "dataProducer.resume"),
        "nothing while paused, no echo of the client's own pause: {:?}",
        c.notifications
    );

    // dataConsumer.send is not in the engine.
    let e = c.call_err("dataConsumer.send", json!({ "dataConsumerId": dcid, "message": "back" }));
    assert_eq!(e["data"]["name"], "UnsupportedError", "{e}");

    // Closing the data producer closes its consumer with dataproducerclose.
    c.call("dataProducer.close", json!({ "dataProducerId": dpid }));
    c.notification("dataConsumer.dataproducerclose", "dataConsumerId", &dcid);
    let e = c.call_err("dataConsumer.dump", json!({ "dataConsumerId": dcid }));
    assert_eq!(e["data"]["name"], "InvalidStateError", "closed objects are gone: {e}");
    let e = c.call_err("dataProducer.send", json!({ "dataProducerId": dpid, "message": "x" }));
    assert_eq!(e["data"]["name"], "InvalidStateError");

    // Closing a transport: its data producer and its data consumer (of a data producer on
    // another transport) hear transportclose.
    let dp2 = c.call("transport.produceData", json!({ "transportId": send_t }));
    let dp3 = c.call("transport.produceData", json!({ "transportId": recv_t }));
    let dc2 = c.call("transport.consumeData", json!({ "transportId": send_t, "dataProducerId": dp3["id"] }));
    c.call("transport.close", json!({ "transportId": send_t }));
    c.notification("dataProducer.transportclose", "dataProducerId", &dp2["id"]);
    c.notification("dataConsumer.transportclose", "dataConsumerId", &dc2["id"]);
    let e = c.call_err("dataProducer.dump", json!({ "dataProducerId": dp2["id"] }));
    assert_eq!(e["data"]["name"], "InvalidStateError");
    c.call("dataProducer.dump", json!({ "dataProducerId": dp3["id"] }));
}

#[test]
fn data_on_other_transports_and_bad_params_are_refused() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (_, router, _) = worker_and_router(&mut c);
    let plain = c.call(
        "router.createPlainTransport",
        json!({ "routerId": router, "listenInfo": { "protocol": "udp", "ip": "127.0.0.1" } }),
    );
    let e = c.call_err(
        "transport.produceData",
        json!({ "transportId": plain["id"], "sctpStreamParameters": { "streamId": 0 } }),
    );
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32000), Some("UnsupportedError")), "{e}");

    let t = direct_transport(&mut c, &router);
    let dp = c.call("transport.produceData", json!({ "transportId": t }));
    let e = c.call_err("transport.consumeData", json!({ "transportId": plain["id"], "dataProducerId": dp["id"] }));
    assert_eq!(e["data"]["name"], "UnsupportedError", "{e}");
    let e = c.call_err("transport.consumeData", json!({ "transportId": t }));
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32602), Some("TypeError")), "{e}");
    let e = c.call_err("transport.produceData", json!({ "transportId": t, "id": "not-a-uuid" }));
    assert_eq!(e["data"]["name"], "TypeError", "{e}");
    let e = c.call_err("transport.produceData", json!({ "transportId": t, "id": dp["id"] }));
    assert_eq!(e["data"]["name"], "TypeError", "duplicate id: {e}");
    let e = c.call_err("dataProducer.send", json!({ "dataProducerId": dp["id"], "message": "%%%", "binary": true }));
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32602), Some("TypeError")), "{e}");
    let e = c.call_err("dataProducer.send", json!({ "dataProducerId": dp["id"], "message": 7 }));
    assert_eq!(e["code"], -32602, "{e}");
    let e = c.call_err("dataProducer.dump", json!({ "dataProducerId": "00000000-0000-0000-0000-000000000000" }));
    assert_eq!(e["data"]["name"], "InvalidStateError");
}

#[test]
fn pipe_to_router_carries_data_messages_between_routers() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (worker, router_a, _) = worker_and_router(&mut c);
    let router_b = c.call("worker.createRouter", json!({ "workerId": worker, "mediaCodecs": media_codecs() }));
    let router_b = router_b["id"].as_str().unwrap().to_owned();
    let ta = direct_transport(&mut c, &router_a);
    let tb = direct_transport(&mut c, &router_b);
    let dp = c.call("transport.produceData", json!({ "transportId": ta, "label": "l" }));
    let dpid = dp["id"].as_str().unwrap().to_owned();

    // Not in router B until piped.
    let e = c.call_err("transport.consumeData", json!({ "transportId": tb, "dataProducerId": dpid }));
    assert_eq!(e["data"]["name"], "UnsupportedError", "{e}");

    let pipe = c.call(
        "router.pipeToRouter",
        json!({ "routerId": router_a, "dataProducerId": dpid, "targetRouterId": router_b }),
    );
    assert_eq!(pipe["pipeDataProducer"]["id"], dpid.as_str(), "keepId defaults to true");
    assert_eq!(pipe["pipeDataProducer"]["label"], "l");
    assert_eq!(pipe["pipeDataConsumer"]["dataProducerId"], dpid.as_str());
    let dc = c.call("transport.consumeData", json!({ "transportId": tb, "dataProducerId": dpid }));
    let dcid = dc["id"].clone();

    c.call("dataProducer.send", json!({ "dataProducerId": dpid, "routerId": router_a, "message": "across" }));
    let n = c.notification("dataConsumer.message", "dataConsumerId", &dcid);
    assert_eq!((message_bytes(&n), n["params"]["ppid"].as_u64()), (b"across".to_vec(), Some(51)));

    // One id, two data producers: routerId tells them apart.
    let e = c.call_err("dataProducer.dump", json!({ "dataProducerId": dpid }));
    assert_eq!(e["code"], -32602, "{e}");
    let dump = c.call("dataProducer.dump", json!({ "dataProducerId": dpid, "routerId": router_b }));
    assert_eq!(dump["id"], dpid.as_str());

    // Pausing the source pauses the pipe data producer (notified: the engine did it) and its
    // consumer hears dataproducerpause.
    c.call("dataProducer.pause", json!({ "dataProducerId": dpid, "routerId": router_a }));
    let n = c.notification("dataProducer.pause", "routerId", &json!(router_b));
    assert_eq!(n["params"]["dataProducerId"], dpid.as_str());
    c.notification("dataConsumer.dataproducerpause", "dataConsumerId", &dcid);
    c.call("dataProducer.resume", json!({ "dataProducerId": dpid, "routerId": router_a }));
    c.notification("dataProducer.resume", "routerId", &json!(router_b));
    c.notification("dataConsumer.dataproducerresume", "dataConsumerId", &dcid);

    // Closing the source closes the pipe and, through it, the data consumer in router B.
    c.call("dataProducer.close", json!({ "dataProducerId": dpid, "routerId": router_a }));
    c.notification("dataConsumer.dataproducerclose", "dataConsumerId", &dcid);
    c.notification("dataConsumer.dataproducerclose", "dataConsumerId", &pipe["pipeDataConsumer"]["id"]);
    let n = c.notification("dataProducer.transportclose", "routerId", &json!(router_b));
    assert_eq!(n["params"]["dataProducerId"], dpid.as_str(), "the pipe data producer goes with its pipe");
    let e = c.call_err("dataProducer.dump", json!({ "dataProducerId": dpid, "routerId": router_b }));
    assert_eq!(e["data"]["name"], "InvalidStateError");
}
