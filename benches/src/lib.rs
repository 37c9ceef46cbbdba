//! Helpers shared by the end-to-end benches: a pinned RTP sender, and the raw relay baseline.

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shardsfu_engine::core::FastMap;
use shardsfu_engine::rtp_parameters::{
    MediaKind, RtcpFeedback, RtpCodecCapability, RtpCodecParameters, RtpEncodingParameters, RtpParameters,
};
use shardsfu_net::{Io, Runtime, RuntimeConfig, ShardLoad, ShardService, SocketId};

/// The router codec every bench uses: VP8.
pub fn vp8_capability() -> RtpCodecCapability {
    RtpCodecCapability {
        kind: MediaKind::Video,
        mime_type: "video/VP8".into(),
        preferred_payload_type: None,
        clock_rate: 90000,
        channels: None,
        parameters: None,
        rtcp_feedback: None,
    }
}

/// What the benches' senders produce: VP8 on payload type 96 with NACK and PLI, one SSRC.
pub fn vp8_parameters(ssrc: u32) -> RtpParameters {
    RtpParameters {
        codecs: vec![RtpCodecParameters {
            mime_type: "video/VP8".into(),
            payload_type: 96,
            clock_rate: 90000,
            channels: None,
            parameters: None,
            rtcp_feedback: Some(vec![RtcpFeedback::new("nack", None), RtcpFeedback::new("nack", Some("pli"))]),
        }],
        encodings: Some(vec![RtpEncodingParameters { ssrc: Some(ssrc), ..Default::default() }]),
        ..Default::default()
    }
}

/// Pin the calling thread to one CPU (best effort; benches only).
pub fn pin_current_thread(cpu: usize) {
    let ncpu = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET writes inside it; sched_setaffinity reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu % ncpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Datagrams per sendmmsg call of the sender.
const BLAST_BATCH: usize = 32;

/// Sends RTP packets (VP8 key frame payloads) to one address as fast as it can, on its own
/// pinned thread, with sendmmsg batches.
pub struct Blaster {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Blaster {
    pub fn start(dest: SocketAddr, ssrc: u32, payload_type: u8, payload_bytes: usize, cpu: usize) -> Blaster {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            pin_current_thread(cpu);
            let sock = UdpSocket::bind("127.0.0.1:0").expect("blaster socket");
            sock.connect(dest).expect("blaster connect");
            let mut packets = vec![vec![0u8; 12 + payload_bytes]; BLAST_BATCH];
            let mut seq: u16 = 0;
            let start = Instant::now();
            while !s.load(Ordering::Relaxed) {
                let ts = (start.elapsed().as_micros() as u64 * 90 / 1000) as u32;
                for p in packets.iter_mut() {
                    seq = seq.wrapping_add(1);
                    p[0] = 0x80;
                    p[1] = payload_type;
                    p[2..4].copy_from_slice(&seq.to_be_bytes());
                    p[4..8].copy_from_slice(&ts.to_be_bytes());
                    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
                    p[12] = 0x10; // VP8: S=1, PID=0
                    p[13] = 0x10; // key frame (P=0)
                }
                let mut iov: Vec<libc::iovec> = packets
                    .iter_mut()
                    .map(|p| libc::iovec { iov_base: p.as_mut_ptr().cast(), iov_len: p.len() })
                    .collect();
                // SAFETY: zeroed mmsghdr is valid; each points at one live iovec above.
                let mut msgs: Vec<libc::mmsghdr> = iov
                    .iter_mut()
                    .map(|v| {
                        let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                        m.msg_hdr.msg_iov = v;
                        m.msg_hdr.msg_iovlen = 1;
                        m
                    })
                    .collect();
                // SAFETY: msgs/iov/packets outlive the call; the socket is connected.
                let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as u32, 0) };
                if r > 0 {
                    n.fetch_add(r as u64, Ordering::Relaxed);
                }
            }
        });
        Blaster { stop, sent, thread: Some(thread) }
    }

    /// Stop and return how many packets were sent.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.sent.load(Ordering::Relaxed)
    }
}

/// Relay control command: bind the ingress and `n` egress sockets, reply with the ingress address.
pub const RELAY_CMD_BIND: u8 = 1;
/// Relay control command: bind a room of `n` peer sockets, each relaying what it receives out of
/// every other one (as an SFU room of `n` peers each consuming the others); reply with each
/// peer's address, in order.
pub const RELAY_CMD_ROOM: u8 = 2;

/// The baseline: same runtime, sockets and batching as the engine, no parsing. Each datagram on
/// an ingress socket goes out of each of its egress sockets to a sink, split head (12 bytes,
/// copied) plus body (borrowed) exactly as the engine sends a rewritten header plus a shared
/// payload.
pub struct RelayService {
    /// Egress socket `i` of a route sends to `sinks[i % sinks.len()]`.
    sinks: Vec<SocketAddr>,
    /// Ingress socket -> the egress sockets its datagrams go out of.
    routes: FastMap<SocketId, Vec<SocketId>>,
}

impl RelayService {
    /// Egress socket `i` of a route sends to `sinks[i % sinks.len()]` (one sink for all, or one
    /// per consumer as WebRTC peers have).
    pub fn with_sinks(sinks: Vec<SocketAddr>) -> Self {
        assert!(!sinks.is_empty(), "at least one sink");
        RelayService { sinks, routes: FastMap::default() }
    }
}

impl ShardService for RelayService {
    type Command = (u8, usize, Option<mpsc::Sender<SocketAddr>>);

    fn on_command(&mut self, _now: Instant, (cmd, n, reply): Self::Command, io: &mut Io<'_, Self::Command>) {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let reply_addr = |io: &Io<'_, Self::Command>, socket| {
            if let (Some(reply), Some(addr)) = (&reply, io.local_addr(socket)) {
                let _ = reply.send(addr);
            }
        };
        match cmd {
            RELAY_CMD_BIND => {
                let ingress = io.bind_udp(any).expect("relay ingress");
                let egress = (0..n).map(|_| io.bind_udp(any).expect("relay egress")).collect();
                self.routes.insert(ingress, egress);
                reply_addr(io, ingress);
            }
            RELAY_CMD_ROOM => {
                let peers: Vec<SocketId> = (0..n).map(|_| io.bind_udp(any).expect("relay peer")).collect();
                for &p in &peers {
                    self.routes.insert(p, peers.iter().copied().filter(|&q| q != p).collect());
                    reply_addr(io, p);
                }
            }
            _ => {}
        }
    }

    #[inline]
    fn on_datagram<'a>(
        &mut self,
        _now: Instant,
        socket: SocketId,
        _src: SocketAddr,
        data: &'a mut [u8],
        io: &mut Io<'a, Self::Command>,
    ) {
        let Some(egress) = self.routes.get(&socket) else { return };
        if data.len() < 12 {
            return;
        }
        let data: &'a [u8] = data;
        let (head, body) = data.split_at(12);
        for (i, &e) in egress.iter().enumerate() {
            io.send(e, self.sinks[i % self.sinks.len()], head, body);
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn on_timeout(&mut self, _now: Instant, _io: &mut Io<'_, Self::Command>) {}
}

/// Timing and N of the end-to-end fan-out benches (`fanout`, `webrtc_fanout`): `--quick` for a
/// short run, `FANOUT_N=1,10` to pick N.
pub struct FanoutConfig {
    pub warmup: Duration,
    pub window: Duration,
    pub rounds: usize,
    pub ns: Vec<usize>,
}

impl FanoutConfig {
    pub fn from_args() -> FanoutConfig {
        let quick = std::env::args().any(|a| a == "--quick");
        let ns = std::env::var("FANOUT_N")
            .ok()
            .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| vec![1, 10, 100, 500]);
        if quick {
            FanoutConfig { warmup: Duration::from_millis(300), window: Duration::from_millis(1500), rounds: 1, ns }
        } else {
            FanoutConfig { warmup: Duration::from_millis(500), window: Duration::from_secs(3), rounds: 2, ns }
        }
    }

    /// Per second of the window (after the warm-up), the growth of `tx_packets`.
    pub fn measure(&self, tx_packets: impl Fn() -> u64) -> f64 {
        std::thread::sleep(self.warmup);
        let (t0, p0) = (Instant::now(), tx_packets());
        std::thread::sleep(self.window);
        let (t1, p1) = (Instant::now(), tx_packets());
        (p1 - p0) as f64 / (t1 - t0).as_secs_f64()
    }
}

/// Datagrams per GSO message between two load readings (how long the trains were).
pub fn gso_train(l0: &ShardLoad, l1: &ShardLoad) -> f64 {
    let per = (l1.tx_packets - l0.tx_packets) as f64 / (l1.tx_gso_messages - l0.tx_gso_messages).max(1) as f64;
    (per * 10.0).round() / 10.0
}

/// The baseline run: a `RelayService` with `n` egress sockets (egress `i` to `sinks[i % len]`) on
/// one shard pinned to core 0, fed by a `Blaster` on core 1. Returns (pps, datagrams per GSO
/// message).
pub fn relay_run(n: usize, sinks: Vec<SocketAddr>, ssrc: u32, payload_bytes: usize, cfg: &FanoutConfig) -> (f64, f64) {
    let runtime = Runtime::start(RuntimeConfig { shards: 1, pin: true, ..RuntimeConfig::default() }, move |_| {
        RelayService::with_sinks(sinks.clone())
    })
    .expect("relay runtime");
    let handle = runtime.handle(0);
    let (tx, rx) = mpsc::channel();
    handle.submit((RELAY_CMD_BIND, n, Some(tx))).map_err(|_| "submit").expect("submit");
    let ingress: SocketAddr = rx.recv_timeout(Duration::from_secs(10)).expect("relay bound");
    let blaster = Blaster::start(ingress, ssrc, 96, payload_bytes, 1);
    let l0 = runtime.load(0);
    let pps = cfg.measure(|| runtime.load(0).tx_packets);
    let train = gso_train(&l0, &runtime.load(0));
    blaster.stop();
    runtime.shutdown();
    (pps, train)
}
