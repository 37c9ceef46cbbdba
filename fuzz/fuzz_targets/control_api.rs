//! The remote API as a client drives it: arbitrary JSON-RPC text frames over a real WebSocket
//! to an in-process server (2 unpinned shards, media on loopback).
//!
//! Per input: a fresh connection makes a worker, a router (opus, VP8) and a comedia plain
//! transport, then sends the input's lines as frames, one at a time. In a frame, `$W`, `$R` and
//! `$T` stand for those ids, `$P` for the `id` in the last result that had one (a producer just
//! made, ...) and `$1`..`$9` for the first nine such ids, so inputs reach past the id checks.
//! After each frame the harness asks a sentinel request of its own, so every answer is matched
//! to its frame. (Inputs stay under 4 KiB and the rate limit is lifted, so no frame meets the
//! server's limits, which end a connection by design.)
//!
//! Checked:
//! - the server never panics, hangs or drops the connection on a frame that fits the limits;
//! - everything it sends is JSON-RPC 2.0: a notification, or a response with exactly one of
//!   `result` / `error`; errors carry a defined code and, when named, one of mediasoup's classes;
//! - nothing leaks: once the input's workers are closed, every shard counts zero routers,
//!   transports, producers, consumers, data producers and data consumers.
//!
//! Seeds in `fuzz/seeds/control_api` (one frame per line).
#![no_main]

use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use shardsfu_control::{OrphanGrace, Server, Settings};
use shardsfu_engine::{block_on, Engine, EngineOptions};
use tungstenite::{Message, WebSocket};

/// Frames taken from one input.
const MAX_FRAMES: usize = 16;
/// Longest the server may take to answer anything.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// Error codes PROTOCOL.md defines.
const CODES: [i64; 6] = [-32700, -32600, -32601, -32602, -32000, -32001];
const CLASSES: [&str; 4] = ["TypeError", "UnsupportedError", "InvalidStateError", "Error"];

struct Harness {
    engine: Engine,
    addr: SocketAddr,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let engine = Engine::start(EngineOptions { shards: 2, pin: false, ..EngineOptions::default() })
            .expect("the engine starts (glommio needs a memlock limit of at least 512 KiB: ulimit -l 512)");
        let settings = Settings {
            api_listen: "127.0.0.1:0".parse().expect("address"),
            shards: 2,
            pin: false,
            rate_limit_per_s: 1_000_000,
            rate_limit_burst: 1_000_000,
            orphan_grace: OrphanGrace::Ms(0),
            ..Settings::default()
        };
        let server = Server::start(engine.clone(), settings).expect("the API server starts");
        let addr = server.local_addr();
        // Serves for the life of the process.
        std::mem::forget(server);
        Harness { engine, addr }
    })
}

struct Conn {
    ws: WebSocket<TcpStream>,
    sentinel: u64,
}

impl Conn {
    fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("tcp connect");
        stream.set_nodelay(true).expect("nodelay");
        let (ws, _) = tungstenite::client(format!("ws://{addr}/"), stream).expect("WebSocket upgrade");
        ws.get_ref().set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        Conn { ws, sentinel: 0 }
    }

    /// Send one frame; every answer to it (zero or one, plus notifications), checked.
    fn frame(&mut self, text: &str) -> Vec<Value> {
        self.ws.send(Message::text(text)).expect("the server keeps the connection");
        self.sentinel += 1;
        let id = json!(format!("harness-sentinel-{}", self.sentinel));
        let sentinel = json!({ "jsonrpc": "2.0", "id": id, "method": "getSupportedRtpCapabilities" });
        self.ws.send(Message::text(sentinel.to_string())).expect("the server keeps the connection");
        let mut answers = Vec::new();
        let end = Instant::now() + ANSWER_TIMEOUT;
        loop {
            assert!(Instant::now() < end, "no answer to {text:?} within {ANSWER_TIMEOUT:?}");
            let text = match self.ws.read() {
                Ok(Message::Text(t)) => t,
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => panic!("the server ended the connection after {text:?}: {e}"),
            };
            let v: Value = serde_json::from_str(text.as_str()).expect("the server sends JSON");
            check_message(&v);
            if v.get("id") == Some(&id) {
                assert!(v.get("result").is_some(), "the sentinel request succeeds: {v}");
                return answers;
            }
            if v.get("method").is_none() {
                answers.push(v);
            }
        }
    }

    /// A harness request that must succeed: the `id` in its result.
    fn make(&mut self, method: &str, params: Value) -> String {
        let answers = self.frame(&json!({ "jsonrpc": "2.0", "id": 0, "method": method, "params": params }).to_string());
        let id = answers.first().and_then(|a| a["result"]["id"].as_str());
        id.unwrap_or_else(|| panic!("{method} fails: {answers:?}")).to_owned()
    }
}

/// JSON-RPC 2.0 as PROTOCOL.md has it.
fn check_message(v: &Value) {
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    if v.get("method").is_some() {
        assert!(v["method"].is_string() && v.get("id").is_none(), "a notification: {v}");
        return;
    }
    assert!(v.get("id").is_some(), "a response has an id: {v}");
    match (v.get("result"), v.get("error")) {
        (Some(_), None) => {}
        (None, Some(e)) => {
            let code = e["code"].as_i64().expect("an integer code");
            assert!(CODES.contains(&code), "defined code: {v}");
            assert!(e["message"].is_string(), "a message: {v}");
            if let Some(name) = e.get("data").and_then(|d| d.get("name")) {
                assert!(CLASSES.iter().any(|c| name == c), "a mediasoup error class: {v}");
            }
        }
        _ => panic!("exactly one of result and error: {v}"),
    }
}

fn object_counts(engine: &Engine) -> u64 {
    let dump = block_on(engine.dump()).expect("engine dump");
    let mut total = 0;
    for shard in dump["shards"].as_array().expect("shards") {
        for (_, n) in shard["objects"].as_object().expect("objects") {
            total += n.as_u64().expect("a count");
        }
    }
    total
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let text = String::from_utf8_lossy(data);
    let mut conn = Conn::open(h.addr);
    let worker = conn.make("createWorker", json!({}));
    let router = conn.make(
        "worker.createRouter",
        json!({ "workerId": worker, "mediaCodecs": [
            { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 },
            { "kind": "video", "mimeType": "video/VP8", "clockRate": 90000 }
        ] }),
    );
    let transport = conn.make(
        "router.createPlainTransport",
        json!({ "routerId": router, "listenInfo": { "protocol": "udp", "ip": "127.0.0.1" }, "comedia": true }),
    );
    let mut workers = vec![worker.clone()];
    let mut made: Vec<String> = Vec::new();
    for line in text.split('\n').take(MAX_FRAMES) {
        let mut frame = line.replace("$W", &worker).replace("$R", &router).replace("$T", &transport);
        frame = frame.replace("$P", made.last().map_or("", String::as_str));
        for (k, id) in made.iter().enumerate().take(9) {
            frame = frame.replace(&format!("${}", k + 1), id);
        }
        let creates_worker =
            serde_json::from_str::<Value>(&frame).is_ok_and(|v| v.get("method").is_some_and(|m| m == "createWorker"));
        for answer in conn.frame(&frame) {
            if let Some(id) = answer.get("result").and_then(|r| r.get("id")).and_then(Value::as_str) {
                made.push(id.to_owned());
                if creates_worker {
                    workers.push(id.to_owned());
                }
            }
        }
    }
    for w in &workers {
        conn.frame(
            &json!({ "jsonrpc": "2.0", "id": 0, "method": "worker.close", "params": { "workerId": w } }).to_string(),
        );
    }
    drop(conn);
    // Closing is asynchronous on the shards: give it a moment, then nothing may be left.
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let left = object_counts(&h.engine);
        if left == 0 {
            break;
        }
        assert!(
            Instant::now() < end,
            "{left} objects left after the input's workers closed: {:#}",
            block_on(h.engine.dump()).unwrap()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
});
