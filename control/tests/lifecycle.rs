//! Connections coming and going (orphaned workers, adoption), /metrics and /healthz, start-up
//! refusal without a token off loopback, and SIGTERM.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The value of the sample `name{labels}` (or `name` alone) in a Prometheus text body.
fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn total(metrics: &str, name: &str) -> f64 {
    (0..2).filter_map(|s| sample(metrics, &format!("{name}{{shard=\"{s}\"}}"))).sum()
}

fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_gone_clients_workers_close_at_once_with_grace_zero() {
    let sfu = Sfu::start(&["--orphan-grace-ms", "0"]);
    let mut c = sfu.client();
    let (worker, router, caps) = worker_and_router(&mut c);
    let (_, producer, _s) = ingest(&mut c, &router, 1111);
    let _r = receiver(&mut c, &router, &producer, &caps);
    let (_, m) = sfu.get("/metrics");
    assert_eq!(total(&m, "shardsfu_transports"), 2.0, "{m}");
    assert_eq!(total(&m, "shardsfu_consumers"), 1.0);
    assert_eq!(sample(&m, "shardsfu_workers"), Some(1.0));
    drop(c);

    let mut other = sfu.client();
    assert!(eventually(
        || other.call_raw("worker.dump", json!({ "workerId": worker }))["error"]["data"]["name"] == "InvalidStateError"
    ));
    assert!(eventually(|| {
        let (_, m) = sfu.get("/metrics");
        total(&m, "shardsfu_routers") == 0.0
            && total(&m, "shardsfu_transports") == 0.0
            && total(&m, "shardsfu_consumers") == 0.0
    }));
}

#[test]
fn a_client_that_comes_back_adopts_its_worker_and_its_notifications() {
    let sfu = Sfu::start(&["--orphan-grace-ms", "60000"]);
    let mut c = sfu.client();
    let (worker, router, caps) = worker_and_router(&mut c);
    let (ingest_t, producer, _s) = ingest(&mut c, &router, 1111);
    let (_, consumer, _rx) = receiver(&mut c, &router, &producer, &caps);
    drop(c);
    std::thread::sleep(Duration::from_millis(200));

    let mut back = sfu.client();
    let (_, m) = sfu.get("/metrics");
    assert!(eventually(|| sample(&sfu.get("/metrics").1, "shardsfu_orphaned_workers") == Some(1.0)), "{m}");
    let adopted = back.call("worker.adopt", json!({ "workerId": worker }));
    assert_eq!(adopted["id"], worker.as_str());
    // A third client cannot take it while `back` holds it.
    let mut third = sfu.client();
    let e = third.call_err("worker.adopt", json!({ "workerId": worker }));
    assert_eq!(e["data"]["name"], "InvalidStateError");
    // The adopted objects' notifications come to the adopter.
    back.call("transport.close", json!({ "transportId": ingest_t }));
    back.notification("consumer.producerclose", "consumerId", &consumer["id"]);
    third.drain(Duration::from_millis(100));
    assert!(third.notifications.is_empty(), "notifications go to the owner only: {:?}", third.notifications);
}

#[test]
fn orphans_live_out_their_grace_period_then_close() {
    let sfu = Sfu::start(&["--orphan-grace-ms", "1500"]);
    let mut c = sfu.client();
    let (worker, _, _) = worker_and_router(&mut c);
    drop(c);
    let mut other = sfu.client();
    std::thread::sleep(Duration::from_millis(100));
    other.call("worker.dump", json!({ "workerId": worker }));
    assert!(eventually(|| other.call_raw("worker.dump", json!({ "workerId": worker }))["error"].is_object()));
}

#[test]
fn metrics_and_healthz() {
    let sfu = Sfu::start(&[]);
    assert_eq!(sfu.get("/healthz"), (200, "ok\n".to_owned()));
    let (status, m) = sfu.get("/metrics");
    assert_eq!(status, 200);
    for family in [
        "shardsfu_routers",
        "shardsfu_transports",
        "shardsfu_producers",
        "shardsfu_consumers",
        "shardsfu_rx_packets_total",
        "shardsfu_tx_packets_total",
        "shardsfu_rx_bytes_total",
        "shardsfu_tx_bytes_total",
        "shardsfu_drops_total",
        "shardsfu_busy_fraction",
    ] {
        assert!(m.contains(&format!("# TYPE {family} ")), "{family} in {m}");
    }
    assert_eq!(sample(&m, "shardsfu_shards"), Some(2.0));
    assert!(sample(&m, "shardsfu_drops_total{shard=\"1\",reason=\"not_a_key_frame\"}").is_some());
    assert!(sample(&m, "shardsfu_drops_total{shard=\"0\",reason=\"srtp_auth_failed\"}").is_some());

    // Media shows in the packet counters.
    let mut c = sfu.client();
    let (_, router, caps) = worker_and_router(&mut c);
    let (_, producer, sender) = ingest(&mut c, &router, 1111);
    let (_, _, rx) = receiver(&mut c, &router, &producer, &caps);
    send_packets(&sender, 1111, 1, 10, &[5; 100]);
    assert_eq!(recv_rtp_for(&rx, Duration::from_millis(500)).len(), 10);
    assert!(eventually(|| {
        let (_, m) = sfu.get("/metrics");
        total(&m, "shardsfu_rx_packets_total") >= 10.0
            && total(&m, "shardsfu_tx_packets_total") >= 10.0
            // 10 packets of 12 + 2 (VP8 descriptor) + 100 bytes, at least, each way.
            && total(&m, "shardsfu_rx_bytes_total") >= 1140.0
            && total(&m, "shardsfu_tx_bytes_total") >= 1140.0
    }));
    assert_eq!(sfu.get("/nope").0, 404);
    assert!(
        eventually(|| sample(&sfu.get("/metrics").1, "shardsfu_api_connections") == Some(2.0)),
        "the client and the GET asking"
    );
}

#[test]
fn sigterm_closes_everything_and_exits_zero() {
    let mut sfu = Sfu::start(&[]);
    let mut c = sfu.client();
    let (_, router, caps) = worker_and_router(&mut c);
    let (_, producer, _s) = ingest(&mut c, &router, 1111);
    let _r = receiver(&mut c, &router, &producer, &caps);
    let status = sfu.terminate();
    assert!(status.success(), "exit 0 after SIGTERM: {status:?}");
    // The client was told goodbye.
    let mut goodbye = false;
    for _ in 0..100 {
        match c.ws.read() {
            Ok(tungstenite::Message::Close(Some(f))) => {
                assert_eq!(u16::from(f.code), 1001);
                goodbye = true;
                break;
            }
            Ok(_) | Err(tungstenite::Error::Io(_)) => {}
            Err(_) => break,
        }
    }
    assert!(goodbye, "a close frame (going away) before the exit");
}

#[test]
fn refuses_to_listen_off_loopback_without_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_shardsfu"))
        .args(["--api-listen", "0.0.0.0:0", "--media-ip", "127.0.0.1"])
        .env_remove("SHARDSFU_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a token") && err.contains("--token"), "{err}");
}

#[test]
fn help_documents_every_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_shardsfu")).arg("--help").output().expect("runs");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--shards",
        "--api-listen",
        "SHARDSFU_API_LISTEN",
        "--token",
        "SHARDSFU_TOKEN",
        "--media-ip",
        "--announced-address",
        "--max-message-bytes",
        "--rate-limit",
        "--orphan-grace-ms",
        "--log-format",
    ] {
        assert!(help.contains(flag), "{flag} in --help");
    }
}
