//! Helpers shared by the integration tests: an engine on loopback, RTP packets, receivers.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use shardsfu_engine::rtp_parameters::{
    MediaKind, RtcpFeedback, RtpCodecCapability, RtpCodecParameters, RtpEncodingParameters, RtpParameters,
};
use shardsfu_engine::{
    block_on, Consumer, ConsumerOptions, Engine, EngineOptions, PlainTransport, PlainTransportConnect,
    PlainTransportOptions, Producer, ProducerOptions, Router, RouterOptions, TransportListenInfo, Worker,
    WorkerSettings,
};

pub use shardsfu_engine;

/// An engine with `shards` shards (unpinned, so tests share the machine politely).
pub fn engine(shards: usize) -> Engine {
    Engine::start(EngineOptions { shards, pin: false, ..EngineOptions::default() }).expect("engine starts")
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
    sock.connect(t.local_addr()).expect("connect");
    (t, sock)
}

pub fn produce_vp8(t: &PlainTransport, ssrc: u32, rtx: Option<u32>) -> Producer {
    block_on(t.produce(ProducerOptions::new(MediaKind::Video, vp8_params(ssrc, rtx)))).expect("produce")
}

/// A receiver socket, a PlainTransport connected to it, and a consumer of `producer` on it.
pub fn consumer(router: &Router, producer: &Producer) -> (PlainTransport, Consumer, UdpSocket) {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("receiver socket");
    sock.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
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
    let c =
        block_on(t.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone()))).expect("consume");
    (t, c, sock)
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
