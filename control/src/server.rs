//! The API server: one listener, one thread per connection, no async runtime.
//!
//! Each accepted connection's request head is read and routed by hand: `GET /healthz`,
//! `GET /metrics`, or a WebSocket upgrade at `/` (token checked, then handed to tungstenite).
//! A WebSocket connection's thread alternates between reading a frame (with a short read timeout)
//! and writing the notifications its workers' objects queued meanwhile; requests run on that
//! thread, one at a time, waiting on the engine with `block_on`.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shardsfu_engine::Engine;
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

use crate::config::{OrphanGrace, Settings};
use crate::methods::{self, Ctx};
use crate::registry::{ConnId, Outbox, Registry};
use crate::rpc::{self, RpcError};

/// Largest HTTP request head accepted.
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;
/// Headers parsed at most.
const MAX_HEADERS: usize = 64;
/// How long a client may take to send its request head.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection thread waits for a frame before writing queued notifications.
const READ_POLL: Duration = Duration::from_millis(10);
/// A client that does not take our writes for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Notifications queued for one connection at most (see `registry::Outbox`).
pub const MAX_NOTIFICATIONS_QUEUED: usize = 65_536;
/// Notifications written per loop turn at most, so a flood cannot starve requests.
const MAX_NOTIFICATIONS_PER_TURN: usize = 256;
/// How often the reaper looks for orphaned workers past their grace period.
const REAPER_TICK: Duration = Duration::from_millis(20);
/// How long shutdown waits for connection threads to say goodbye.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// State shared by the server's threads.
pub struct Shared {
    pub engine: Engine,
    pub settings: Settings,
    pub registry: Arc<Registry>,
    pub stopping: AtomicBool,
    /// Open API connections (WebSocket and plain HTTP).
    pub connections: AtomicUsize,
    next_conn: AtomicU64,
}

/// A running server. Dropping it without `shutdown` leaves its threads running.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
    reaper: Option<JoinHandle<()>>,
}

impl Server {
    /// Bind `settings.api_listen` and serve the API on `engine` from background threads.
    pub fn start(engine: Engine, settings: Settings) -> io::Result<Server> {
        settings.check().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let listener = TcpListener::bind(settings.api_listen)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            engine,
            settings,
            registry: Arc::new(Registry::default()),
            stopping: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
        });
        let s = shared.clone();
        let accept = std::thread::Builder::new().name("shardsfu-api".into()).spawn(move || accept_loop(listener, s))?;
        let s = shared.clone();
        let reaper = std::thread::Builder::new().name("shardsfu-reaper".into()).spawn(move || reaper_loop(s))?;
        tracing::info!(%addr, "control API listening (WebSocket at /, /metrics, /healthz)");
        Ok(Server { shared, addr, accept: Some(accept), reaper: Some(reaper) })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// Stop accepting, close every worker (their transports close cleanly on the shards), tell
    /// open connections goodbye, and wait (briefly) for their threads.
    pub fn shutdown(mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        // Wake the blocking accept.
        let _ = TcpStream::connect_timeout(&wake_addr(self.addr), Duration::from_millis(200));
        if let Some(a) = self.accept.take() {
            let _ = a.join();
        }
        if let Some(r) = self.reaper.take() {
            let _ = r.join();
        }
        let workers: Vec<_> = self.shared.registry.lock().workers.drain().map(|(_, w)| w.worker).collect();
        let count = workers.len();
        for w in workers {
            w.close();
        }
        // A round trip through every shard's control ring: the closes queued above are applied
        // (sockets closed, final RTCP sent) before the caller stops the engine.
        if let Err(e) = shardsfu_engine::block_on(self.shared.engine.dump()) {
            tracing::warn!(error = %e, "shards did not confirm the closes");
        }
        let end = Instant::now() + SHUTDOWN_WAIT;
        while self.shared.connections.load(Ordering::Acquire) > 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::info!(workers_closed = count, "control API stopped");
    }
}

/// Where to connect to wake our own listener (an unspecified listen address means loopback).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    a
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // Out of descriptors and the like: do not spin.
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        let open = shared.connections.fetch_add(1, Ordering::AcqRel);
        let guard = ConnGuard(shared.clone());
        if open >= shared.settings.max_connections {
            let mut stream = stream;
            let _ = respond(&mut stream, "503 Service Unavailable", "text/plain", b"too many connections\n", &[]);
            drop(guard);
            continue;
        }
        let s = shared.clone();
        let spawned = std::thread::Builder::new().name("shardsfu-conn".into()).spawn(move || {
            let _guard = guard;
            if let Err(e) = serve(stream, &s) {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a connection thread");
        }
    }
}

/// Counts a connection as open until dropped.
struct ConnGuard(Arc<Shared>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

fn reaper_loop(shared: Arc<Shared>) {
    while !shared.stopping.load(Ordering::Acquire) {
        std::thread::sleep(REAPER_TICK);
        let OrphanGrace::Ms(grace_ms) = shared.settings.orphan_grace else { continue };
        let grace = Duration::from_millis(grace_ms);
        let expired: Vec<_> = {
            let mut objects = shared.registry.lock();
            let ids: Vec<String> = objects
                .workers
                .iter()
                .filter(|(_, w)| w.owner.is_none() && w.orphaned_at.is_some_and(|t| t.elapsed() >= grace))
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter().filter_map(|id| objects.workers.remove(&id).map(|w| (id, w.worker))).collect()
        };
        for (id, worker) in expired {
            tracing::info!(worker = id, "orphaned worker closed");
            worker.close();
        }
    }
}

/// A parsed request head and the bytes that followed it.
struct Head {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_head(stream: &mut TcpStream) -> io::Result<Option<Head>> {
    stream.set_read_timeout(Some(REQUEST_HEAD_TIMEOUT))?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let target = req.path.unwrap_or("/");
                let (path, query) = match target.split_once('?') {
                    Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                    None => (target.to_owned(), None),
                };
                return Ok(Some(Head {
                    method: req.method.unwrap_or("").to_owned(),
                    path,
                    query,
                    headers: req
                        .headers
                        .iter()
                        .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
                        .collect(),
                    rest: buf[len..].to_vec(),
                }));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST_HEAD_BYTES => continue,
            Ok(httparse::Status::Partial) => {
                let _ = respond(
                    stream,
                    "431 Request Header Fields Too Large",
                    "text/plain",
                    b"request head too large\n",
                    &[],
                );
                return Ok(None);
            }
            Err(e) => {
                let _ = respond(stream, "400 Bad Request", "text/plain", format!("{e}\n").as_bytes(), &[]);
                return Ok(None);
            }
        }
    }
}

fn respond(stream: &mut TcpStream, status: &str, ctype: &str, body: &[u8], extra: &[(&str, &str)]) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

fn serve(mut stream: TcpStream, shared: &Arc<Shared>) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let Some(head) = read_head(&mut stream)? else { return Ok(()) };
    match (head.method.as_str(), head.path.as_str()) {
        ("GET", "/healthz") => respond(&mut stream, "200 OK", "text/plain", b"ok\n", &[]),
        ("GET", "/metrics") => match crate::metrics::render(shared) {
            Ok(text) => respond(&mut stream, "200 OK", "text/plain; version=0.0.4", text.as_bytes(), &[]),
            Err(e) => respond(&mut stream, "500 Internal Server Error", "text/plain", format!("{e}\n").as_bytes(), &[]),
        },
        ("GET", "/") => upgrade(stream, head, shared),
        (_, "/" | "/healthz" | "/metrics") => {
            respond(&mut stream, "405 Method Not Allowed", "text/plain", b"method not allowed\n", &[("Allow", "GET")])
        }
        _ => respond(&mut stream, "404 Not Found", "text/plain", b"not found\n", &[]),
    }
}

/// The token in `Authorization: Bearer` or `?token=`.
fn presented_token(head: &Head) -> Option<String> {
    if let Some(auth) = head.header("authorization") {
        if let Some(t) = auth.strip_prefix("Bearer ").or_else(|| auth.strip_prefix("bearer ")) {
            return Some(t.trim().to_owned());
        }
    }
    head.query.as_deref()?.split('&').find_map(|kv| kv.strip_prefix("token=")).map(percent_decode)
}

fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => match (b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Equal without an early exit (the token must not leak through timing).
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn upgrade(mut stream: TcpStream, head: Head, shared: &Arc<Shared>) -> io::Result<()> {
    if let Some(token) = &shared.settings.token {
        if !presented_token(&head).is_some_and(|t| same_secret(&t, token)) {
            tracing::warn!(peer = ?stream.peer_addr().ok(), "API connection refused: missing or wrong token");
            return respond(
                &mut stream,
                "401 Unauthorized",
                "text/plain",
                b"missing or wrong token\n",
                &[("WWW-Authenticate", "Bearer")],
            );
        }
    }
    let is_upgrade = head.header("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    let key = head.header("sec-websocket-key").map(str::to_owned);
    let (true, Some(key), Some("13")) = (is_upgrade, key, head.header("sec-websocket-version")) else {
        return respond(
            &mut stream,
            "426 Upgrade Required",
            "text/plain",
            b"the API is JSON-RPC over a WebSocket at /\n",
            &[("Upgrade", "websocket"), ("Sec-WebSocket-Version", "13")],
        );
    };
    let accept = derive_accept_key(key.as_bytes());
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    stream.flush()?;
    stream.set_read_timeout(Some(READ_POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let max = shared.settings.max_message_bytes;
    let config = WebSocketConfig::default().max_message_size(Some(max)).max_frame_size(Some(max));
    let ws = WebSocket::from_partially_read(stream, head.rest, Role::Server, Some(config));
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = sync_channel(MAX_NOTIFICATIONS_QUEUED);
    let outbox = Arc::new(Outbox { tx, overflowed: AtomicBool::new(false), media_dropped: AtomicU64::new(0) });
    tracing::info!(conn, "API client connected");
    let mut session =
        Session { ws, conn, shared: shared.clone(), outbox, rx, bucket: TokenBucket::new(&shared.settings) };
    let why = session.run();
    tracing::info!(conn, reason = why, "API client disconnected");
    session.orphan_workers();
    Ok(())
}

/// A token bucket: `rate` per second sustained, `burst` at once; rate 0 = unlimited.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(s: &Settings) -> Self {
        let burst = f64::from(s.rate_limit_burst.max(1));
        TokenBucket { rate: f64::from(s.rate_limit_per_s), burst, tokens: burst, last: Instant::now() }
    }

    fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0.0 {
            return true;
        }
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Session {
    ws: WebSocket<TcpStream>,
    conn: ConnId,
    shared: Arc<Shared>,
    outbox: Arc<Outbox>,
    rx: Receiver<String>,
    bucket: TokenBucket,
}

impl Session {
    /// Serve until the client leaves, the server stops, or the connection must be closed.
    /// Returns why it ended.
    fn run(&mut self) -> &'static str {
        loop {
            if self.shared.stopping.load(Ordering::Acquire) {
                self.close(CloseCode::Away, "server shutting down");
                return "server shutting down";
            }
            if self.outbox.overflowed.load(Ordering::Acquire) {
                self.close(CloseCode::Policy, "notification queue overflow: reconnect and worker.adopt");
                return "notification queue overflow";
            }
            if !self.flush_notifications() {
                return "write failed";
            }
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    if let Some(reply) = self.handle(text.as_str()) {
                        if self.ws.send(Message::text(reply)).is_err() {
                            return "write failed";
                        }
                    }
                }
                Ok(Message::Binary(_)) => {
                    let e =
                        RpcError::new(rpc::INVALID_REQUEST, "invalid request: binary frames are not JSON-RPC", None);
                    if self.ws.send(Message::text(e.to_json(&serde_json::Value::Null))).is_err() {
                        return "write failed";
                    }
                }
                Ok(_) => {} // ping (answered by tungstenite), pong, close (the next read ends it)
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(tungstenite::Error::Capacity(e)) => {
                    let limit = self.shared.settings.max_message_bytes;
                    let err = RpcError::limit(format!("message too big ({e}); the limit is {limit} bytes"));
                    let _ = self.ws.send(Message::text(err.to_json(&serde_json::Value::Null)));
                    self.close(CloseCode::Size, "message too big");
                    return "message too big";
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => return "closed",
                Err(e) => {
                    tracing::debug!(conn = self.conn, error = %e, "read failed");
                    return "read failed";
                }
            }
        }
    }

    /// Write what the outbox holds (up to a turn's budget); false when the connection failed.
    fn flush_notifications(&mut self) -> bool {
        let mut wrote = false;
        for _ in 0..MAX_NOTIFICATIONS_PER_TURN {
            match self.rx.try_recv() {
                Ok(n) => {
                    if self.ws.write(Message::text(n)).is_err() {
                        return false;
                    }
                    wrote = true;
                }
                Err(_) => break,
            }
        }
        !wrote || self.ws.flush().is_ok()
    }

    /// One request frame; the reply to send, if any.
    fn handle(&mut self, text: &str) -> Option<String> {
        if !self.bucket.take(Instant::now()) {
            let id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id").cloned())
                .unwrap_or(serde_json::Value::Null);
            return Some(RpcError::limit("rate limit exceeded: slow down").to_json(&id));
        }
        let req = match rpc::parse_request(text) {
            Ok(r) => r,
            Err((id, e)) => return Some(e.to_json(&id)),
        };
        let ctx = Ctx { shared: &self.shared, conn: self.conn, outbox: &self.outbox };
        let started = Instant::now();
        let outcome = methods::call(&ctx, &req.method, &req.params);
        tracing::debug!(
            conn = self.conn,
            method = req.method,
            ok = outcome.is_ok(),
            us = started.elapsed().as_micros() as u64,
            "request"
        );
        let id = req.id?;
        Some(match outcome {
            Ok(result) => rpc::result_json(&id, result),
            Err(e) => e.to_json(&id),
        })
    }

    fn close(&mut self, code: CloseCode, reason: &'static str) {
        let _ = self.flush_notifications();
        let _ = self.ws.close(Some(CloseFrame { code, reason: reason.into() }));
        // Wait (briefly) for the client's close so the TCP connection ends cleanly.
        let end = Instant::now() + Duration::from_millis(500);
        while Instant::now() < end {
            match self.ws.read() {
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) =>
                {
                    let _ = self.ws.flush();
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }

    /// The client is gone: its workers wait for adoption (or close at once, with grace 0).
    fn orphan_workers(&self) {
        let grace = self.shared.settings.orphan_grace;
        let now_closing: Vec<_> = {
            let mut objects = self.shared.registry.lock();
            let mine: Vec<String> =
                objects.workers.iter().filter(|(_, w)| w.owner == Some(self.conn)).map(|(id, _)| id.clone()).collect();
            let mut closing = Vec::new();
            for id in mine {
                if grace == OrphanGrace::Ms(0) {
                    if let Some(w) = objects.workers.remove(&id) {
                        closing.push((id, w.worker));
                    }
                } else if let Some(w) = objects.workers.get_mut(&id) {
                    w.owner = None;
                    w.orphaned_at = Some(Instant::now());
                    w.sink.set(None);
                    tracing::info!(worker = id, grace = %grace, "worker orphaned");
                }
            }
            closing
        };
        for (id, worker) in now_closing {
            tracing::info!(worker = id, "orphaned worker closed");
            worker.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb%3d+c"), "a/b= c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        // Two hex digits or nothing: no sign, no lone digit.
        assert_eq!(percent_decode("%+1%-1%4"), "% 1%-1%4");
        assert_eq!(percent_decode("%e2%82%ac"), "\u{20ac}");
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
    }

    #[test]
    fn bucket_refills_at_its_rate() {
        let s = Settings { rate_limit_per_s: 10, rate_limit_burst: 2, ..Settings::default() };
        let mut b = TokenBucket::new(&s);
        let t0 = Instant::now();
        assert!(b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(b.take(t0 + Duration::from_millis(110)));
    }
}
