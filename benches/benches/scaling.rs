//! How forwarding scales over shards: (a) many small rooms (4 peers, each producing and
//! consuming the 3 others) and (b) one big room (1 producer -> 1000 and 2000 consumers), each run
//! on 1 shard and on all shards (one per CPU), in the same process.
//!
//! How it counts: pps = datagrams the kernel accepted on send, summed over shards, per second.
//! `efficiency` is E(n) = pps_n / (n x pps_1). The sender shares the machine's cores with the
//! shards (on n = all cores there is none left for it): where the input rate it can reach, not
//! the engine, is the limit (many small rooms: one input packet per three output), pps_n
//! understates the engine. So the bench also reads the CPU time the engine's threads used
//! (from /proc) and prints `cpu_efficiency` = (pps_n / cpu_n) / (pps_1 / cpu_1): datagrams per
//! engine CPU-second on n shards against one shard, which is what spreading a room costs. The big
//! room needs few input packets; its sender is paced so that it stays off the shards' cores.
//! The sender sends each producer a frame of `FRAME_PACKETS` packets at a time in one UDP GSO
//! message, as cameras send frames in bursts: the fewer of the shared cores it takes, the closer
//! pps_n comes to what the engine can do (one packet at a time, small rooms measured E(2) of
//! 0.27-0.36 here, with 8-packet frames 0.48).
//!
//! `cargo bench --bench scaling` (add `-- --quick` for a short run).

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use shardsfu_benches::{vp8_capability, vp8_parameters};
use shardsfu_engine::placement::PlacementPolicy;
use shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_engine::{
    block_on, ConsumerOptions, Engine, EngineOptions, PlainTransport, PlainTransportOptions, ProducerOptions, Router,
    RouterOptions, TransportListenInfo, WorkerSettings,
};

const PAYLOAD_BYTES: usize = 1000;
/// GSO messages (one frame to one target each) per sendmmsg call of the sender.
const BATCH: usize = 16;
/// Packets per frame burst to one target (one GSO message).
const FRAME_PACKETS: usize = 8;

struct Config {
    warmup: Duration,
    window: Duration,
    rooms: usize,
    big: Vec<usize>,
}

fn config() -> Config {
    let mut cfg = base_config();
    // SCALING_ROOMS=0 / SCALING_BIG=2000 narrow a run to one case.
    if let Some(r) = std::env::var("SCALING_ROOMS").ok().and_then(|v| v.parse().ok()) {
        cfg.rooms = r;
    }
    if let Ok(v) = std::env::var("SCALING_BIG") {
        cfg.big = v.split(',').filter_map(|x| x.trim().parse().ok()).collect();
    }
    cfg
}

fn base_config() -> Config {
    if std::env::args().any(|a| a == "--quick") {
        Config {
            warmup: Duration::from_millis(300),
            window: Duration::from_millis(1200),
            rooms: 100,
            big: vec![1000, 2000],
        }
    } else {
        Config { warmup: Duration::from_millis(500), window: Duration::from_secs(3), rooms: 200, big: vec![1000, 2000] }
    }
}

/// The engine as users get it: default placement (a room stays on its home shard while it fits,
/// routers go to the least loaded shard), one shard per core.
fn engine(shards: usize) -> Engine {
    Engine::start(EngineOptions {
        shards,
        pin: true,
        placement: PlacementPolicy::default(),
        ..EngineOptions::default()
    })
    .expect("engine")
}

fn router(engine: &Engine) -> Router {
    let worker = block_on(engine.create_worker(WorkerSettings::default())).expect("worker");
    let vp8 = vp8_capability();
    block_on(worker.create_router(RouterOptions { media_codecs: vec![vp8], ..Default::default() })).expect("router")
}

fn comedia(router: &Router) -> PlainTransport {
    block_on(router.create_plain_transport(PlainTransportOptions {
        comedia: true,
        ..PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))
    }))
    .expect("transport")
}

/// One room: `peers` comedia transports, each producing and consuming every other peer. The
/// consumers send back to the sender's socket, which never reads them (a sink).
fn room(engine: &Engine, peers: usize, first_ssrc: u32) -> Vec<(SocketAddr, u32)> {
    let router = router(engine);
    let transports: Vec<_> = (0..peers).map(|_| comedia(&router)).collect();
    let producers: Vec<_> = transports
        .iter()
        .enumerate()
        .map(|(i, t)| {
            block_on(t.produce(ProducerOptions::new(MediaKind::Video, vp8_parameters(first_ssrc + i as u32))))
                .expect("produce")
        })
        .collect();
    for (i, t) in transports.iter().enumerate() {
        for (j, p) in producers.iter().enumerate() {
            if i != j {
                block_on(t.consume(ConsumerOptions::new(p.id(), router.rtp_capabilities().clone()))).expect("consume");
            }
        }
    }
    transports.iter().enumerate().map(|(i, t)| (t.local_addr(), first_ssrc + i as u32)).collect()
}

/// One producer and `n` consumers, each consumer transport comedia-latched on a silent socket.
fn big_room(engine: &Engine, n: usize, sink: &UdpSocket) -> Vec<(SocketAddr, u32)> {
    let router = router(engine);
    let ingest = comedia(&router);
    let producer =
        block_on(ingest.produce(ProducerOptions::new(MediaKind::Video, vp8_parameters(5000)))).expect("produce");
    for _ in 0..n {
        let t =
            block_on(router.create_plain_transport(PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))))
                .expect("transport");
        let dest = sink.local_addr().expect("sink addr");
        block_on(t.connect(shardsfu_engine::PlainTransportConnect {
            ip: Some(dest.ip().to_string()),
            port: Some(dest.port()),
            ..Default::default()
        }))
        .expect("connect");
        block_on(t.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone()))).expect("consume");
    }
    vec![(ingest.local_addr(), 5000)]
}

/// Sends RTP to every target in turn, as fast as it can, from one socket: each target gets a
/// burst of `FRAME_PACKETS` packets (consecutive sequence numbers, one frame's worth, as a
/// camera sends them) in one UDP GSO message, so that the sender, which shares the cores with
/// the shards, spends as little of them as a real set of clients would on this host.
/// `rate_pps`: paced input (None = as fast as the sender can). A big room needs few input
/// packets to saturate every shard, and pacing keeps the sender off the cores the shards use.
fn sender(
    targets: Vec<(SocketAddr, u32)>,
    stop: Arc<AtomicBool>,
    sock: UdpSocket,
    cpu: usize,
    rate_pps: Option<f64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        shardsfu_benches::pin_current_thread(cpu);
        const PACKET: usize = 12 + PAYLOAD_BYTES;
        let start = Instant::now();
        let mut sent = 0u64;
        let mut frames = vec![vec![0u8; PACKET * FRAME_PACKETS]; BATCH];
        // SAFETY (both): zeroed sockaddr_in is valid.
        let mut names: Vec<libc::sockaddr_in> = vec![unsafe { std::mem::zeroed() }; BATCH];
        let cmsg_space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
        let mut cmsgs = vec![[0u64; 4]; BATCH]; // aligned room for one UDP_SEGMENT cmsg
        let mut seqs = vec![0u16; targets.len()];
        let mut next = 0usize;
        let mut gso = true;
        while !stop.load(Ordering::Relaxed) {
            for k in 0..BATCH {
                let i = next % targets.len();
                next += 1;
                let (addr, ssrc) = targets[i];
                for f in 0..FRAME_PACKETS {
                    seqs[i] = seqs[i].wrapping_add(1);
                    let p = &mut frames[k][f * PACKET..(f + 1) * PACKET];
                    p[0] = 0x80;
                    p[1] = 96;
                    p[2..4].copy_from_slice(&seqs[i].to_be_bytes());
                    p[4..8].copy_from_slice(&(u32::from(seqs[i]) * 3000).to_be_bytes());
                    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
                    p[12] = 0x10;
                    p[13] = 0x10;
                }
                let SocketAddr::V4(v4) = addr else { continue };
                names[k].sin_family = libc::AF_INET as libc::sa_family_t;
                names[k].sin_port = v4.port().to_be();
                names[k].sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            }
            // Without GSO only each frame's first packet goes (one datagram per message).
            let len = if gso { PACKET * FRAME_PACKETS } else { PACKET };
            let mut iov: Vec<libc::iovec> =
                frames.iter_mut().map(|p| libc::iovec { iov_base: p.as_mut_ptr().cast(), iov_len: len }).collect();
            let mut msgs: Vec<libc::mmsghdr> = iov
                .iter_mut()
                .zip(names.iter_mut())
                .zip(cmsgs.iter_mut())
                .map(|((v, n), c)| {
                    // SAFETY: a zeroed mmsghdr is valid; it points at a live iovec, sockaddr and
                    // cmsg buffer; CMSG_FIRSTHDR of a buffer of CMSG_SPACE bytes is writable.
                    let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
                    m.msg_hdr.msg_iov = v;
                    m.msg_hdr.msg_iovlen = 1;
                    m.msg_hdr.msg_name = (n as *mut libc::sockaddr_in).cast();
                    m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as u32;
                    if gso {
                        m.msg_hdr.msg_control = c.as_mut_ptr().cast();
                        m.msg_hdr.msg_controllen = cmsg_space;
                        unsafe {
                            let h = libc::CMSG_FIRSTHDR(&m.msg_hdr);
                            (*h).cmsg_level = libc::SOL_UDP;
                            (*h).cmsg_type = libc::UDP_SEGMENT;
                            (*h).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
                            std::ptr::write_unaligned(libc::CMSG_DATA(h).cast::<u16>(), PACKET as u16);
                        }
                    }
                    m
                })
                .collect();
            // SAFETY: every pointer above outlives the call.
            let r = unsafe { libc::sendmmsg(sock.as_raw_fd(), msgs.as_mut_ptr(), msgs.len() as u32, 0) };
            if r < 0 && gso {
                // No UDP GSO here: one datagram per frame from now on (still a burst per target).
                gso = false;
                continue;
            }
            sent += (BATCH * if gso { FRAME_PACKETS } else { 1 }) as u64;
            if let Some(rate) = rate_pps {
                let due = Duration::from_secs_f64(sent as f64 / rate);
                if let Some(ahead) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(ahead);
                }
            }
        }
    })
}

struct Measure {
    pps: f64,
    /// Shards' measured busy time, in cores.
    busy: f64,
    /// CPU time the engine's threads used, in cores (from /proc: what the kernel accounted).
    cpu: f64,
}

/// CPU seconds used so far by this process's threads named `shardsfu-*` (shards, their
/// blocking-pool threads, the event dispatcher), from /proc/self/task/*/stat.
fn engine_cpu_seconds() -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut ticks = 0u64;
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0.0 };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else { continue };
        // "tid (comm) state ... utime stime ...": comm may hold spaces, so split after ')'.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else { continue };
        if !stat[open + 1..close].starts_with("shardsfu") {
            continue;
        }
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // After the comm: state is field 3, utime 14 and stime 15 (1-based in proc(5)).
        if let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) {
            ticks += u.parse::<u64>().unwrap_or(0) + s.parse::<u64>().unwrap_or(0);
        }
    }
    ticks as f64 / tick
}

fn measure(
    engine: &Engine,
    targets: Vec<(SocketAddr, u32)>,
    sock: UdpSocket,
    rate_pps: Option<f64>,
    cfg: &Config,
) -> Measure {
    let stop = Arc::new(AtomicBool::new(false));
    let last_core = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) - 1;
    let thread = sender(targets, stop.clone(), sock, last_core, rate_pps);
    std::thread::sleep(cfg.warmup);
    let shards = engine.shard_count();
    let total = || (0..shards).map(|s| engine.net_load(s).tx_packets).sum::<u64>();
    let (t0, p0, c0) = (Instant::now(), total(), engine_cpu_seconds());
    let mut busy_samples = Vec::new();
    while t0.elapsed() < cfg.window {
        std::thread::sleep(Duration::from_millis(100));
        busy_samples.push((0..shards).map(|s| f64::from(engine.net_load(s).busy_fraction)).sum::<f64>());
    }
    let (t1, p1, c1) = (Instant::now(), total(), engine_cpu_seconds());
    stop.store(true, Ordering::Relaxed);
    let _ = thread.join();
    let busy = busy_samples.iter().sum::<f64>() / busy_samples.len().max(1) as f64;
    let secs = (t1 - t0).as_secs_f64();
    Measure { pps: (p1 - p0) as f64 / secs, busy, cpu: (c1 - c0) / secs }
}

fn run_case(
    case: &str,
    consumers: usize,
    n: usize,
    rate_pps: Option<f64>,
    cfg: &Config,
    build: impl Fn(&Engine, &UdpSocket) -> Vec<(SocketAddr, u32)>,
) {
    let mut results = Vec::new();
    for shards in [1, n] {
        let engine = engine(shards);
        let sock = UdpSocket::bind("127.0.0.1:0").expect("sender socket");
        let targets = build(&engine, &sock);
        results.push(measure(&engine, targets, sock, rate_pps, cfg));
        if std::env::var_os("SCALING_DEBUG").is_some() {
            eprintln!("{case} shards={shards}: {}", block_on(engine.dump()).expect("dump")["shards"]);
        }
        engine.close();
    }
    let (one, all) = (&results[0], &results[1]);
    let per_cpu = |m: &Measure| m.pps / m.cpu.max(1e-3);
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    println!(
        "{}",
        json!({
            "bench": "scaling",
            "case": case,
            "consumers": consumers,
            "shards": n,
            "pps_1": one.pps.round(),
            "pps_n": all.pps.round(),
            "efficiency": round3(all.pps / (n as f64 * one.pps)),
            "cpu_1": round3(one.cpu),
            "cpu_n": round3(all.cpu),
            "cpu_efficiency": round3(per_cpu(all) / per_cpu(one)),
            "busy_1": round3(one.busy),
            "busy_n": round3(all.busy),
            "sender_frame_packets": FRAME_PACKETS,
            "counted": "datagrams accepted by the kernel on send per second, all shards; efficiency = pps_n / (n x pps_1); cpu_efficiency = datagrams per engine CPU-second, n shards over 1 (see bench doc)",
        })
    );
}

fn main() {
    let cfg = config();
    let n = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let rooms = cfg.rooms;
    if rooms > 0 {
        run_case("small_rooms", rooms * 4 * 3, n, None, &cfg, |engine, _| {
            (0..rooms).flat_map(|r| room(engine, 4, 10_000 + 10 * r as u32)).collect()
        });
    }
    for &consumers in &cfg.big {
        let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
        // Enough input for every shard to forward ~2M datagrams/s, far beyond what one does.
        let rate = n as f64 * 2.0e6 / consumers as f64;
        run_case("big_room", consumers, n, Some(rate), &cfg, |engine, _| big_room(engine, consumers, &sink));
    }
}
