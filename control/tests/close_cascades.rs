//! Closing an object over the API closes what hangs off it, and each object closed by the
//! cascade gets its own notification (the closed object itself, closed by its client, none).

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

#[test]
fn transport_router_and_worker_close_cascade_with_notifications() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (worker, router, caps) = worker_and_router(&mut c);
    let (ingest_t, producer, _sender) = ingest(&mut c, &router, 1111);
    let (recv_t, consumer, _rx) = receiver(&mut c, &router, &producer, &caps);
    let cid = consumer["id"].clone();

    // Closing the ingest transport: its producer hears transportclose, the consumer
    // producerclose; the transport itself (closed by us) nothing.
    c.call("transport.close", json!({ "transportId": ingest_t }));
    c.notification("producer.transportclose", "producerId", &json!(producer));
    c.notification("consumer.producerclose", "consumerId", &cid);
    c.drain(Duration::from_millis(100));
    assert!(!c.notifications.iter().any(|n| n["params"]["transportId"] == ingest_t.as_str()), "{:?}", c.notifications);
    let e = c.call_err("producer.dump", json!({ "producerId": producer }));
    assert_eq!(e["data"]["name"], "InvalidStateError", "closed objects are gone: {e}");
    let e = c.call_err("consumer.getStats", json!({ "consumerId": cid }));
    assert_eq!(e["data"]["name"], "InvalidStateError");

    // A new producer and consumer; closing the router closes the transports (routerclose) and,
    // through them, the producer and consumer (transportclose).
    let (_, producer2, _sender2) = ingest(&mut c, &router, 2222);
    let (_, consumer2, _rx2) = receiver(&mut c, &router, &producer2, &caps);
    let dump = c.call("router.dump", json!({ "routerId": router }));
    assert_eq!(dump["transportIds"].as_array().unwrap().len(), 3);
    c.call("router.close", json!({ "routerId": router }));
    c.notification("transport.routerclose", "transportId", &json!(recv_t));
    c.notification("producer.transportclose", "producerId", &json!(producer2));
    c.notification("consumer.transportclose", "consumerId", &consumer2["id"]);
    let e = c.call_err("router.dump", json!({ "routerId": router }));
    assert_eq!(e["data"]["name"], "InvalidStateError");

    // Closing the worker: its routers hear workerclose.
    let r2 = c.call("worker.createRouter", json!({ "workerId": worker, "mediaCodecs": media_codecs() }));
    let dump = c.call("worker.dump", json!({ "workerId": worker }));
    assert_eq!(dump["routerIds"], json!([r2["id"]]));
    assert_eq!(dump["id"], worker.as_str());
    let r2_id = r2["id"].as_str().unwrap().to_owned();
    let (t3, producer3, _sender3) = ingest(&mut c, &r2_id, 3333);
    c.call("worker.close", json!({ "workerId": worker }));
    c.notification("router.workerclose", "routerId", &r2["id"]);
    c.notification("transport.routerclose", "transportId", &json!(t3));
    c.notification("producer.transportclose", "producerId", &json!(producer3));
    let e = c.call_err("worker.dump", json!({ "workerId": worker }));
    assert_eq!(e["data"]["name"], "InvalidStateError");
}

#[test]
fn comedia_transport_reports_its_tuple() {
    let sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (_, router, _) = worker_and_router(&mut c);
    let (tid, _, sender) = ingest(&mut c, &router, 1111);
    send_packets(&sender, 1111, 1, 1, &[1, 2, 3]);
    let n = c.notification("transport.tuple", "transportId", &json!(tid));
    let port = sender.local_addr().unwrap().port();
    assert_eq!(n["params"]["tuple"]["remotePort"], port);
    assert_eq!(n["params"]["tuple"]["remoteIp"], "127.0.0.1");
    assert_eq!(n["params"]["tuple"]["protocol"], "udp");
}
