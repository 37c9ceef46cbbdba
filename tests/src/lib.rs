//! Helpers shared by the integration tests: an engine on loopback, RTP packets, receivers.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use shardsfu_engine::rtp_parameters::{
    MediaKind, RtcpFeedback, RtpCapabilities, RtpCodecCapability, RtpCodecParameters, RtpEncodingParameters,
    RtpParameters,
};
use shardsfu_engine::{
    block_on, Consumer, ConsumerOptions, Engine, EngineOptions, PlainTransport, PlainTransportConnect,
    PlainTransportOptions, Producer, ProducerOptions, Router, RouterOptions, TransportListenInfo, Worker,
    WorkerSettings,
};

pub use shardsfu_engine;

pub mod str0m_peer;
pub mod wire_peer;

/// An engine with `shards` shards (unpinned, so tests share the machine politely).
/// Placement weighs object counts only (measured busy time left out), so the machine's noise
/// does not decide where the tests' routers and transports go.
pub fn engine(shards: usize) -> Engine {
    let placement = shardsfu_engine::placement::PlacementPolicy {
        busy_weight: 0.0,
        busy_watermark: f32::INFINITY,
        ..Default::default()
    };
    Engine::start(EngineOptions { shards, pin: false, placement, ..EngineOptions::default() }).expect("engine starts")
}

/// Two unpinned shards placed by `placement`, with measured busy time left out (machine noise
/// must not decide where the tests' objects go).
pub fn two_shards(placement: shardsfu_engine::placement::PlacementPolicy) -> Engine {
    let placement =
        shardsfu_engine::placement::PlacementPolicy { busy_weight: 0.0, busy_watermark: f32::INFINITY, ..placement };
    Engine::start(EngineOptions { shards: 2, pin: false, placement, ..EngineOptions::default() })
        .expect("engine starts")
}

/// Two shards, every new transport on the shard with the fewest objects: a room spreads at once.
pub fn spread_engine() -> Engine {
    two_shards(shardsfu_engine::placement::PlacementPolicy { spread_transports: 0, ..Default::default() })
}

pub fn worker(engine: &Engine) -> Worker {
    block_on(engine.create_worker(WorkerSettings::default())).expect("worker")
}

pub fn codec_cap(kind: MediaKind, mime: &str, clock_rate: u32, channels: Option<u8>) -> RtpCodecCapability {
    RtpCodecCapability {
        kind,
        mime_type: mime.into(),
        preferred_payload_type: None,
        clock_rate,
        channels,
        parameters: None,
        rtcp_feedback: None,
    }
}

/// A router with opus and VP8.
pub fn router(worker: &Worker) -> Router {
    block_on(worker.create_router(RouterOptions {
        media_codecs: vec![
            codec_cap(MediaKind::Audio, "audio/opus", 48000, Some(2)),
            codec_cap(MediaKind::Video, "video/VP8", 90000, None),
        ],
        ..Default::default()
    }))
    .expect("router")
}

/// VP8 producer parameters with NACK/PLI feedback and optional RTX.
pub fn vp8_params(ssrc: u32, rtx_ssrc: Option<u32>) -> RtpParameters {
    let mut codecs = vec![RtpCodecParameters {
        mime_type: "video/VP8".into(),
        payload_type: 96,
        clock_rate: 90000,
        channels: None,
        parameters: None,
        rtcp_feedback: Some(vec![
            RtcpFeedback::new("nack", None),
            RtcpFeedback::new("nack", Some("pli")),
            RtcpFeedback::new("ccm", Some("fir")),
        ]),
    }];
    if rtx_ssrc.is_some() {
        codecs.push(RtpCodecParameters {
            mime_type: "video/rtx".into(),
            payload_type: 97,
            clock_rate: 90000,
            channels: None,
            parameters: Some([("apt".to_string(), 96u32.into())].into_iter().collect()),
            rtcp_feedback: None,
        });
    }
    RtpParameters {
        codecs,
        encodings: Some(vec![RtpEncodingParameters {
            ssrc: Some(ssrc),
            rtx: rtx_ssrc.map(|ssrc| shardsfu_engine::rtp_parameters::RtxParameters { ssrc }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

/// A comedia PlainTransport to send into, and a client socket connected to it.
pub fn ingest(router: &Router) -> (PlainTransport, UdpSocket) {
    let t = block_on(router.create_plain_transport(PlainTransportOptions {
        comedia: true,
        ..PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))
    }))
    .expect("ingest transport");
    let sock = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    sock.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    sock.connect(t.local_addr()).expect("connect");
    (t, sock)
}

pub fn produce_vp8(t: &PlainTransport, ssrc: u32, rtx: Option<u32>) -> Producer {
    block_on(t.produce(ProducerOptions::new(MediaKind::Video, vp8_params(ssrc, rtx)))).expect("produce")
}

/// A receiver socket, a PlainTransport connected to it, and a consumer of `producer` on it.
pub fn consumer(router: &Router, producer: &Producer) -> (PlainTransport, Consumer, UdpSocket) {
    consumer_with(router, producer, |_| {})
}

/// An RTP packet: VP8 payload (key frame if asked) followed by `body`.
pub fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, key_frame: bool, body: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.push(0x10);
    p.push(if key_frame { 0x10 } else { 0x11 });
    p.extend_from_slice(body);
    p
}

/// Read datagrams until `pred` accepts one or `timeout` passes.
pub fn recv_until(sock: &UdpSocket, timeout: Duration, mut pred: impl FnMut(&[u8]) -> bool) -> Option<Vec<u8>> {
    let end = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok(n) = sock.recv(&mut buf) {
            if pred(&buf[..n]) {
                return Some(buf[..n].to_vec());
            }
        }
    }
    None
}

/// Read every RTP datagram (not RTCP) that arrives within `window`.
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

pub fn seq_of(p: &[u8]) -> u16 {
    u16::from_be_bytes([p[2], p[3]])
}
pub fn ts_of(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[4], p[5], p[6], p[7]])
}
pub fn ssrc_of(p: &[u8]) -> u32 {
    u32::from_be_bytes([p[8], p[9], p[10], p[11]])
}

/// Poll `cond` until true or `timeout`.
pub fn wait_for(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    cond()
}

/// The SSRC, media payload type and (when negotiated) RTX SSRC and payload type of a consumer.
pub struct ConsumerWire {
    pub ssrc: u32,
    pub payload_type: u8,
    pub rtx: Option<(u32, u8)>,
}

pub fn wire_of(c: &Consumer) -> ConsumerWire {
    let params = c.rtp_parameters();
    let enc = &params.encodings.as_ref().expect("consumer encodings")[0];
    let media = params.codecs.iter().find(|c| !c.mime_type.ends_with("/rtx")).expect("media codec");
    let rtx_codec = params.codecs.iter().find(|c| c.mime_type.ends_with("/rtx"));
    ConsumerWire {
        ssrc: enc.ssrc.expect("consumer ssrc"),
        payload_type: media.payload_type,
        rtx: enc.rtx.zip(rtx_codec).map(|(r, c)| (r.ssrc, c.payload_type)),
    }
}

/// The router's capabilities without any RTX codec (a receiver that wants plain NACK repair).
pub fn caps_without_rtx(router: &Router) -> RtpCapabilities {
    let mut caps = router.rtp_capabilities().clone();
    if let Some(codecs) = caps.codecs.as_mut() {
        codecs.retain(|c| !c.mime_type.ends_with("/rtx"));
    }
    caps
}

/// Like [`consumer`], with the caller's consumer options (producer id filled in).
pub fn consumer_with(
    router: &Router,
    producer: &Producer,
    options: impl FnOnce(&mut ConsumerOptions),
) -> (PlainTransport, Consumer, UdpSocket) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("receiver socket");
    sock.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    let t = block_on(router.create_plain_transport(PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))))
        .expect("consumer transport");
    let addr = sock.local_addr().expect("addr");
    block_on(t.connect(PlainTransportConnect {
        ip: Some(addr.ip().to_string()),
        port: Some(addr.port()),
        ..Default::default()
    }))
    .expect("connect");
    sock.connect(t.local_addr()).expect("receiver connects back");
    let mut opts = ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone());
    options(&mut opts);
    let c = block_on(t.consume(opts)).expect("consume");
    (t, c, sock)
}

/// Length of the RTP header (fixed part, CSRCs and extension block) of a well-formed packet.
pub fn rtp_header_len(p: &[u8]) -> usize {
    let mut n = 12 + 4 * usize::from(p[0] & 0x0f);
    if p[0] & 0x10 != 0 {
        n += 4 + 4 * usize::from(u16::from_be_bytes([p[n + 2], p[n + 3]]));
    }
    n
}

/// The payload of a well-formed RTP packet without padding.
pub fn payload_of(p: &[u8]) -> &[u8] {
    let end = if p[0] & 0x20 != 0 { p.len() - usize::from(p[p.len() - 1]) } else { p.len() };
    &p[rtp_header_len(p)..end]
}

pub fn pt_of(p: &[u8]) -> u8 {
    p[1] & 0x7f
}

/// RTCP by the second byte (RFC 5761 demultiplexing), as the engine classifies.
pub fn is_rtcp(p: &[u8]) -> bool {
    p.len() >= 8 && (192..=223).contains(&p[1])
}

/// Read until `n` RTP datagrams (RTCP skipped) arrived or `timeout` passed.
pub fn recv_rtp_n(sock: &UdpSocket, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
    let end = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < n && Instant::now() < end {
        if let Ok(len) = sock.recv(&mut buf) {
            if len >= 12 && !is_rtcp(&buf[..len]) {
                out.push(buf[..len].to_vec());
            }
        }
    }
    out
}

/// Drain whatever is queued on `sock` (waits one read timeout at most once the queue is empty).
pub fn drain(sock: &UdpSocket) {
    let mut buf = [0u8; 2048];
    while sock.recv(&mut buf).is_ok() {}
}

/// Read RTCP datagrams until one holds an item `pred` accepts; RTP is skipped.
pub fn recv_rtcp_item(
    sock: &UdpSocket,
    timeout: Duration,
    mut pred: impl FnMut(&shardsfu_engine::rtp::RtcpItem<'_>) -> bool,
) -> bool {
    recv_until(sock, timeout, |p| {
        let mut hit = false;
        if is_rtcp(p) {
            let _ = shardsfu_engine::rtp::parse_compound(p, |item| hit |= pred(&item));
        }
        hit
    })
    .is_some()
}

/// Count RTCP items `pred` accepts among the datagrams arriving within `window`.
pub fn count_rtcp_items(
    sock: &UdpSocket,
    window: Duration,
    mut pred: impl FnMut(&shardsfu_engine::rtp::RtcpItem<'_>) -> bool,
) -> usize {
    let mut n = 0;
    let _ = recv_until(sock, window, |p| {
        if is_rtcp(p) {
            let _ = shardsfu_engine::rtp::parse_compound(p, |item| n += usize::from(pred(&item)));
        }
        false
    });
    n
}

/// Is `item` a PLI for `ssrc`?
pub fn is_pli_for(item: &shardsfu_engine::rtp::RtcpItem<'_>, ssrc: u32) -> bool {
    matches!(item, shardsfu_engine::rtp::RtcpItem::Pli { media_ssrc, .. } if *media_ssrc == ssrc)
}

/// An RTCP datagram built by one of the `write_*` functions.
pub fn rtcp_bytes(write: impl FnOnce(&mut [u8]) -> Result<usize, shardsfu_engine::rtp::RtcpError>) -> Vec<u8> {
    let mut buf = [0u8; 1500];
    let n = write(&mut buf).expect("rtcp builds");
    buf[..n].to_vec()
}

/// `Engine::dump()`'s drop counter `reason` (snake_case) on `shard`.
pub fn drop_count(engine: &Engine, shard: usize, reason: &str) -> u64 {
    let dump = block_on(engine.dump()).expect("engine dump");
    dump["shards"][shard]["drops"][reason].as_u64().unwrap_or_else(|| panic!("no drop counter '{reason}'"))
}

/// Poll the drop counter until it reaches `at_least`; returns its last value.
pub fn wait_drops(engine: &Engine, shard: usize, reason: &str, at_least: u64) -> u64 {
    let mut last = 0;
    wait_for(ARRIVAL, || {
        last = drop_count(engine, shard, reason);
        last >= at_least
    });
    last
}

/// Generous bound for something to arrive on loopback (never a speed assertion): CI runs many
/// test threads and their engines on 2 cores, where a thread can wait seconds for its turn.
pub const ARRIVAL: Duration = Duration::from_secs(10);

/// A VP8 packet of `ssrc` with sequence number `seq` (timestamp derived from it), PT 96.
pub fn vp8(seq: u16, ssrc: u32, key_frame: bool, body: &[u8]) -> Vec<u8> {
    rtp(96, seq, u32::from(seq).wrapping_mul(3000), ssrc, key_frame, body)
}

/// A loopback socket (short read timeout) connected to `addr`.
pub fn client_to(addr: SocketAddr) -> UdpSocket {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("client socket");
    sock.set_read_timeout(Some(Duration::from_millis(20))).expect("timeout");
    sock.connect(addr).expect("connect");
    sock
}

/// A counter for event callbacks.
pub fn counter() -> std::sync::Arc<std::sync::atomic::AtomicUsize> {
    std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0))
}

/// Current value of a [`counter`].
pub fn count(c: &std::sync::atomic::AtomicUsize) -> usize {
    c.load(std::sync::atomic::Ordering::SeqCst)
}

/// A callback that bumps a [`counter`].
pub fn bump(c: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> impl Fn() + Send + Sync + 'static {
    let c = c.clone();
    move || {
        c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The error kind of a call that must fail (the handles are not `Debug`, so no `unwrap_err`).
pub fn err_kind<T>(r: shardsfu_engine::Result<T>) -> shardsfu_engine::ErrorKind {
    match r {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e.kind,
    }
}
