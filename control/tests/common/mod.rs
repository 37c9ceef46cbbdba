//! Helpers for the API tests: the `shardsfu` binary on a free port, a JSON-RPC client over a
//! real WebSocket, RTP packets and receivers over loopback UDP.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

/// The binary, running; killed when dropped.
pub struct Sfu {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Sfu {
    /// Start `shardsfu` on 127.0.0.1:0 (2 unpinned shards, media on loopback) with `extra` flags,
    /// and wait until it says where it listens.
    pub fn start(extra: &[&str]) -> Sfu {
        let mut args = vec![
            "--api-listen",
            "127.0.0.1:0",
            "--shards",
            "2",
            "--pin",
            "false",
            "--media-ip",
            "127.0.0.1",
            "--log-format",
            "json",
            "--log-level",
            "info",
        ];
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_shardsfu"))
            .args(&args)
            .env_remove("SHARDSFU_TOKEN")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("shardsfu starts");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading so the child never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if v["message"] == "control API listening (WebSocket at /, /metrics, /healthz)" {
                        let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                    }
                }
                if std::env::var_os("SHARDSFU_TEST_LOGS").is_some() {
                    eprintln!("{line}");
                }
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).expect("shardsfu says where it listens");
        Sfu { child, addr: addr.parse().expect("listen address") }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/", self.addr)
    }

    pub fn client(&self) -> Client {
        Client::connect(&self.url(), None).expect("client connects")
    }

    /// A plain HTTP GET; (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http_get(self.addr, path, &[])
    }

    /// SIGTERM, then the exit status (waits at most 10 s).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < end, "shardsfu did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Sfu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GET `path` with `headers`; (status, body).
pub fn http_get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// A JSON-RPC client over a WebSocket. Notifications are kept until asked for.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
    next_id: u64,
    pub notifications: Vec<Value>,
}

impl Client {
    /// Connect, with `Authorization: Bearer <token>` when given. The upgrade's HTTP status on
    /// refusal.
    pub fn connect(url: &str, token: Option<&str>) -> Result<Client, u16> {
        let mut req = url.into_client_request().expect("request");
        if let Some(t) = token {
            req.headers_mut().insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        let host = req.uri().authority().expect("authority").as_str().to_owned();
        let stream = TcpStream::connect(host).expect("tcp connect");
        match tungstenite::client(req, stream) {
            Ok((ws, _)) => {
                ws.get_ref().set_read_timeout(Some(Duration::from_millis(50))).unwrap();
                Ok(Client { ws, next_id: 1, notifications: Vec::new() })
            }
            Err(tungstenite::HandshakeError::Failure(tungstenite::Error::Http(resp))) => Err(resp.status().as_u16()),
            Err(e) => panic!("handshake: {e}"),
        }
    }

    pub fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).expect("send");
    }

    /// Read one frame as JSON (None on timeout). Panics when the connection ends.
    pub fn read_json(&mut self, timeout: Duration) -> Option<Value> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            match self.ws.read() {
                Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).expect("server sends JSON")),
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("connection ended: {e}"),
            }
        }
        None
    }

    /// Wait for the answer with `id`, keeping notifications that come first.
    pub fn answer(&mut self, id: &Value) -> Value {
        let end = Instant::now() + Duration::from_secs(20);
        while Instant::now() < end {
            if let Some(v) = self.read_json(Duration::from_millis(200)) {
                if v.get("id") == Some(id) {
                    return v;
                }
                assert!(v.get("method").is_some(), "only notifications come unasked: {v}");
                self.notifications.push(v);
            }
        }
        panic!("no answer to request {id}");
    }

    /// Send a request; its whole answer (result or error).
    pub fn call_raw(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send_text(&json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }).to_string());
        self.answer(&json!(id))
    }

    /// A request that must succeed; its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let v = self.call_raw(method, params.clone());
        assert!(v.get("error").is_none(), "{method} {params} failed: {v}");
        v["result"].clone()
    }

    /// A request that must fail; its error object.
    pub fn call_err(&mut self, method: &str, params: Value) -> Value {
        let v = self.call_raw(method, params.clone());
        assert!(v.get("result").is_none(), "{method} {params} should fail: {v}");
        v["error"].clone()
    }

    /// Wait for a notification `method` whose params contain `(key, value)`.
    pub fn notification(&mut self, method: &str, key: &str, value: &Value) -> Value {
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(i) = self.notifications.iter().position(|n| n["method"] == method && &n["params"][key] == value)
            {
                return self.notifications.remove(i);
            }
            assert!(Instant::now() < end, "no {method} for {key}={value}; got {:?}", self.notifications);
            if let Some(v) = self.read_json(Duration::from_millis(100)) {
                assert!(v.get("method").is_some(), "only notifications come unasked: {v}");
                self.notifications.push(v);
            }
        }
    }

    /// Collect notifications for `window`.
    pub fn drain(&mut self, window: Duration) {
        let end = Instant::now() + window;
        while Instant::now() < end {
            if let Some(v) = self.read_json(Duration::from_millis(50)) {
                self.notifications.push(v);
            }
        }
    }
}

/// Opus and VP8, as a router's mediaCodecs.
pub fn media_codecs() -> Value {
    json!([
        { "kind": "audio", "mimeType": "audio/opus", "clockRate": 48000, "channels": 2 },
        { "kind": "video", "mimeType": "video/VP8", "clockRate": 90000 },
    ])
}

/// VP8 producer rtpParameters with SSRC `ssrc`.
pub fn vp8_params(ssrc: u32) -> Value {
    json!({
        "codecs": [{
            "mimeType": "video/VP8", "payloadType": 96, "clockRate": 90000,
            "rtcpFeedback": [{ "type": "nack" }, { "type": "nack", "parameter": "pli" }, { "type": "ccm", "parameter": "fir" }],
        }],
        "encodings": [{ "ssrc": ssrc }],
    })
}

/// A VP8 key frame RTP packet carrying `body`.
pub fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x10, 0x10]);
    p.extend_from_slice(body);
    p
}

/// A UDP socket on loopback with a short read timeout.
pub fn udp() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    s
}

/// Every RTP datagram (not RTCP) that arrives within `window`.
pub fn recv_rtp_for(sock: &UdpSocket, window: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + window;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            if n >= 12 && !(192..=223).contains(&buf[1]) {
                out.push(buf[..n].to_vec());
            }
        }
    }
    out
}

pub fn ssrc_of(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[8], p[9], p[10], p[11]])
}

/// The local port in a transport's `tuple`.
pub fn port_of(transport: &Value) -> u16 {
    transport["tuple"]["localPort"].as_u64().expect("tuple.localPort") as u16
}

/// worker → router (opus, VP8); (workerId, routerId, router rtpCapabilities).
pub fn worker_and_router(c: &mut Client) -> (String, String, Value) {
    let worker = c.call("createWorker", json!({}));
    let wid = worker["id"].as_str().unwrap().to_owned();
    let router = c.call("worker.createRouter", json!({ "workerId": wid, "mediaCodecs": media_codecs() }));
    (wid, router["id"].as_str().unwrap().to_owned(), router["rtpCapabilities"].clone())
}

/// A comedia PlainTransport with a VP8 producer (SSRC `ssrc`), and a socket sending to it;
/// (transportId, producerId, sender).
pub fn ingest(c: &mut Client, router_id: &str, ssrc: u32) -> (String, String, UdpSocket) {
    let t = c.call(
        "router.createPlainTransport",
        json!({ "routerId": router_id, "listenInfo": { "protocol": "udp", "ip": "127.0.0.1" }, "comedia": true }),
    );
    let sender = udp();
    sender.connect(("127.0.0.1", port_of(&t))).unwrap();
    let tid = t["id"].as_str().unwrap().to_owned();
    let p =
        c.call("transport.produce", json!({ "transportId": tid, "kind": "video", "rtpParameters": vp8_params(ssrc) }));
    (tid, p["id"].as_str().unwrap().to_owned(), sender)
}

/// A PlainTransport connected to a local receiver socket and a consumer of `producer_id` on it;
/// (transportId, consume result, receiver).
pub fn receiver(c: &mut Client, router_id: &str, producer_id: &str, caps: &Value) -> (String, Value, UdpSocket) {
    let t = c.call(
        "router.createPlainTransport",
        json!({ "routerId": router_id, "listenInfo": { "protocol": "udp", "ip": "127.0.0.1" } }),
    );
    let tid = t["id"].as_str().unwrap().to_owned();
    let sock = udp();
    let port = sock.local_addr().unwrap().port();
    c.call("transport.connect", json!({ "transportId": tid, "ip": "127.0.0.1", "port": port }));
    let consumer =
        c.call("transport.consume", json!({ "transportId": tid, "producerId": producer_id, "rtpCapabilities": caps }));
    (tid, consumer, sock)
}

/// Send `count` packets of `body` from `sender`.
pub fn send_packets(sender: &UdpSocket, ssrc: u32, first_seq: u16, count: u16, body: &[u8]) {
    for i in 0..count {
        let seq = first_seq.wrapping_add(i);
        sender.send(&rtp(96, seq, u32::from(seq) * 3000, ssrc, body)).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
}
