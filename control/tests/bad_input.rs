//! What the API does with bad input: every error has its code and class, and the connection
//! stays usable (except past the message size limit, where it is closed).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn malformed_json_invalid_requests_and_unknown_methods() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();

    c.send_text("{\"jsonrpc\":\"2.0\",\"id\":1,");
    let v = c.read_json(Duration::from_secs(5)).expect("an answer");
    assert_eq!((v["error"]["code"].as_i64(), &v["id"]), (Some(-32700), &json!(null)));

    c.send_text("[{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"createWorker\"}]");
    let v = c.read_json(Duration::from_secs(5)).expect("an answer");
    assert_eq!(v["error"]["code"], -32600, "batches are refused");

    c.send_text("{\"jsonrpc\":\"2.0\",\"id\":3}");
    let v = c.read_json(Duration::from_secs(5)).expect("an answer");
    assert_eq!((v["error"]["code"].as_i64(), &v["id"]), (Some(-32600), &json!(3)));

    let e = c.call_err("worker.fly", json!({}));
    assert_eq!(e["code"], -32601);
    let e = c.call_err("nothing", json!({}));
    assert_eq!(e["code"], -32601);

    // Still usable.
    let w = c.call("createWorker", json!({}));
    assert!(w["id"].is_string());
    assert_eq!(w["pid"], sfu.child.id());
    let caps = c.call("getSupportedRtpCapabilities", json!({}));
    assert!(caps["codecs"].as_array().unwrap().len() > 3);
}

#[test]
fn wrong_param_types_are_type_errors() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (worker, router, _) = worker_and_router(&mut c);
    let type_error = |e: &serde_json::Value| e["code"] == -32602 && e["data"]["name"] == "TypeError";

    let e = c.call_err("worker.createRouter", json!({ "workerId": 5 }));
    assert!(type_error(&e), "{e}");
    let e = c.call_err("worker.createRouter", json!({}));
    assert!(type_error(&e), "{e}");
    let e = c.call_err("worker.createRouter", json!({ "workerId": worker, "mediaCodecs": "opus" }));
    assert!(type_error(&e), "{e}");
    let e = c.call_err("createWorker", json!({ "rtcMinPort": "low" }));
    assert!(type_error(&e), "{e}");
    let e = c.call_err("router.createPlainTransport", json!({ "routerId": router, "listenInfo": { "ip": 1 } }));
    assert!(type_error(&e), "{e}");
    let e = c.call_err("router.createPlainTransport", json!({ "routerId": router, "comedia": "yes" }));
    assert!(type_error(&e), "{e}");
    let v = c.call_raw("worker.dump", json!([worker]));
    assert_eq!(v["error"]["code"], -32602, "positional params are refused: {v}");

    // The engine's own refusals carry its class under -32000.
    let e = c.call_err("createWorker", json!({ "logLevel": "chatty" }));
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32000), Some("TypeError")));
    let e = c.call_err(
        "worker.createRouter",
        json!({ "workerId": worker, "mediaCodecs": [{ "kind": "video", "mimeType": "video/NOPE", "clockRate": 90000 }] }),
    );
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32000), Some("UnsupportedError")), "{e}");
    let e = c.call_err("router.dump", json!({ "routerId": "00000000-0000-0000-0000-000000000000" }));
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32000), Some("InvalidStateError")));

    // Not in the engine yet: UnsupportedError with a reason.
    for (method, params) in [
        ("router.createPipeTransport", json!({ "routerId": router })),
        ("dataConsumer.send", json!({ "dataConsumerId": "x", "message": "hi" })),
    ] {
        let e = c.call_err(method, params);
        assert_eq!(e["data"]["name"], "UnsupportedError", "{method}: {e}");
        assert!(e["message"].as_str().unwrap().contains("not available"), "{e}");
    }
    // RTP observers are served: an unknown observer is an InvalidStateError, bad options TypeErrors.
    let e = c.call_err("rtpObserver.close", json!({ "rtpObserverId": "x" }));
    assert_eq!((e["code"].as_i64(), e["data"]["name"].as_str()), (Some(-32000), Some("InvalidStateError")), "{e}");
    let e = c.call_err("router.createAudioLevelObserver", json!({ "routerId": router, "interval": "often" }));
    assert!(type_error(&e), "{e}");
    let e = c.call_err("router.createActiveSpeakerObserver", json!({ "routerId": router, "interval": -1 }));
    assert!(type_error(&e), "{e}");
    assert_eq!(c.call_err("rtpObserver.fly", json!({ "rtpObserverId": "x" }))["code"], -32601);
    let e = c.call_err("router.createPlainTransport", json!({ "routerId": router, "enableSrtp": true }));
    assert_eq!(e["data"]["name"], "UnsupportedError");
    assert!(c.call("worker.dump", json!({ "workerId": worker }))["routerIds"].is_array(), "still usable");
}

#[test]
fn oversized_messages_are_refused_and_the_connection_closed() {
    let sfu = Sfu::start(&["--max-message-bytes", "4096"]);
    let mut c = sfu.client();
    c.call("createWorker", json!({}));
    let big =
        json!({ "jsonrpc": "2.0", "id": 9, "method": "createWorker", "params": { "appData": "x".repeat(10_000) } });
    c.send_text(&big.to_string());
    let v = c.read_json(Duration::from_secs(5)).expect("an answer");
    assert_eq!(v["error"]["code"], -32001, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("too big"));
    // Then the server closes.
    let mut closed = false;
    for _ in 0..100 {
        match c.ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1009);
                closed = true;
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(_)) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(closed, "the connection is closed after an oversized message");
    // A new connection works.
    sfu.client().call("createWorker", json!({}));
}

#[test]
fn requests_past_the_rate_limit_are_refused() {
    let sfu = Sfu::start(&["--rate-limit", "5", "--rate-limit-burst", "5"]);
    let mut c = sfu.client();
    let answers: Vec<_> = (0..20).map(|_| c.call_raw("getSupportedRtpCapabilities", json!({}))).collect();
    let limited = answers.iter().filter(|a| a["error"]["code"] == -32001).count();
    assert!(limited >= 10, "most of 20 back-to-back requests are over 5/s with a burst of 5: {limited}");
    assert!(answers.iter().all(|a| a["id"].is_number()), "limited requests are answered with their id");
    std::thread::sleep(Duration::from_millis(500));
    c.call("getSupportedRtpCapabilities", json!({}));
}

#[test]
fn a_token_is_checked_at_the_upgrade() {
    let sfu = Sfu::start(&["--token", "s3cret"]);
    assert_eq!(Client::connect(&sfu.url(), None).err(), Some(401));
    assert_eq!(Client::connect(&sfu.url(), Some("wrong")).err(), Some(401));
    let mut c = Client::connect(&sfu.url(), Some("s3cret")).expect("the right token is let in");
    c.call("createWorker", json!({}));
    let mut q = Client::connect(&format!("{}?token=s3cret", sfu.url()), None).expect("token in the query");
    q.call("createWorker", json!({}));
    assert_eq!(sfu.get("/healthz").0, 200);
}
