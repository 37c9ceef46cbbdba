//! WebRtcTransport and WebRtcServer over the remote API: mediasoup's data shapes, connect,
//! restartIce, bitrate setters, events, and the refusals. (Media through a browser is proven by
//! the browser test; media through WebRtcTransports by the engine's own tests.)

mod common;

use common::*;
use serde_json::{json, Value};

fn fingerprint() -> Value {
    // Any well-formed sha-256 fingerprint: the DTLS handshake (which would check it) never starts here.
    json!({ "algorithm": "sha-256", "value": vec!["AB"; 32].join(":") })
}

#[test]
fn webrtc_transport_data_connect_restart_and_close() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (_worker, router, _caps) = worker_and_router(&mut c);
    let t = c.call(
        "router.createWebRtcTransport",
        json!({ "routerId": router, "listenInfos": [
            { "protocol": "udp", "ip": "127.0.0.1" },
            { "protocol": "tcp", "ip": "127.0.0.1", "announcedAddress": "192.0.2.10" }
        ], "appData": { "peer": "a" } }),
    );
    let tid = t["id"].as_str().unwrap().to_owned();
    assert_eq!(t["iceRole"], "controlled");
    assert_eq!(t["iceParameters"]["iceLite"], true);
    assert_eq!(t["iceParameters"]["usernameFragment"].as_str().unwrap().len(), 32);
    let candidates = t["iceCandidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2);
    assert_eq!(
        (candidates[0]["protocol"].as_str(), candidates[0]["address"].as_str()),
        (Some("udp"), Some("127.0.0.1"))
    );
    assert_eq!(
        (candidates[1]["tcpType"].as_str(), candidates[1]["address"].as_str()),
        (Some("passive"), Some("192.0.2.10"))
    );
    assert!(candidates[0]["priority"].as_u64() > candidates[1]["priority"].as_u64(), "listenInfos order ranks");
    assert_eq!(t["dtlsParameters"]["role"], "auto");
    let algorithms: Vec<&str> = t["dtlsParameters"]["fingerprints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(algorithms, ["sha-1", "sha-224", "sha-256", "sha-384", "sha-512"]);
    assert_eq!((t["iceState"].as_str(), t["dtlsState"].as_str()), (Some("new"), Some("new")));
    assert!(t["iceSelectedTuple"].is_null());

    let connect =
        json!({ "transportId": tid, "dtlsParameters": { "role": "client", "fingerprints": [fingerprint()] } });
    assert!(c.call("transport.connect", connect.clone()).is_null());
    let e = c.call_err("transport.connect", connect);
    assert_eq!(e["data"]["name"], "InvalidStateError", "{e}");
    let dump = c.call("transport.dump", json!({ "transportId": tid }));
    assert_eq!(dump["dtlsParameters"]["role"], "server", "our role once connected as the browser's server");

    let ice = c.call("transport.restartIce", json!({ "transportId": tid }));
    assert_ne!(ice["usernameFragment"], t["iceParameters"]["usernameFragment"]);
    assert_eq!(ice["iceLite"], true);

    assert!(c.call("transport.setMaxIncomingBitrate", json!({ "transportId": tid, "bitrate": 1_500_000 })).is_null());
    assert!(c.call("transport.setMinOutgoingBitrate", json!({ "transportId": tid, "bitrate": 200_000 })).is_null());
    let e = c.call_err("transport.setMaxOutgoingBitrate", json!({ "transportId": tid, "bitrate": 100_000 }));
    assert_eq!(e["data"]["name"], "TypeError", "max below min: {e}");
    let stats = c.call("transport.getStats", json!({ "transportId": tid }));
    assert_eq!(stats[0]["type"], "webrtc-transport");

    let e = c.call_err("router.createWebRtcTransport", json!({ "routerId": router, "enableSctp": true }));
    assert_eq!(e["data"]["name"], "UnsupportedError");
    let e = c.call_err("transport.connect", json!({ "transportId": tid, "dtlsParameters": { "fingerprints": 7 } }));
    assert_eq!(e["code"], -32602);
    assert!(c.call("transport.close", json!({ "transportId": tid })).is_null());
    let e = c.call_err("transport.restartIce", json!({ "transportId": tid }));
    assert_eq!(e["data"]["name"], "InvalidStateError");
}

#[test]
fn webrtc_server_serves_transports_and_closing_it_notifies_them() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (worker, router, _caps) = worker_and_router(&mut c);
    let server = c.call(
        "worker.createWebRtcServer",
        json!({ "workerId": worker, "listenInfos": [{ "protocol": "udp", "ip": "127.0.0.1" }] }),
    );
    let sid = server["id"].as_str().unwrap().to_owned();
    let t = c.call("router.createWebRtcTransport", json!({ "routerId": router, "webRtcServerId": sid }));
    let tid = t["id"].as_str().unwrap().to_owned();
    assert_eq!(t["iceCandidates"].as_array().unwrap().len(), 1);
    let dump = c.call("webRtcServer.dump", json!({ "webRtcServerId": sid }));
    assert_eq!(dump["webRtcTransportIds"], json!([tid]));
    assert!(dump["udpSockets"].as_array().unwrap().iter().any(|s| s["port"] == t["iceCandidates"][0]["port"]));
    let w = c.call("worker.dump", json!({ "workerId": worker }));
    assert_eq!(w["webRtcServerIds"], json!([sid]));
    assert!(c.call("webRtcServer.close", json!({ "webRtcServerId": sid })).is_null());
    c.notification("transport.listenserverclose", "transportId", &json!(tid));
    let e = c.call_err("transport.dump", json!({ "transportId": tid }));
    assert_eq!(e["data"]["name"], "InvalidStateError");
}
