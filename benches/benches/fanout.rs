//! End-to-end fan-out: one producer on a PlainTransport, N consumers on N PlainTransports, one
//! shard, real UDP on loopback; beside it, in the same run, a raw relay with the same sockets and
//! batching that does no parsing.
//!
//! How it counts: pps = datagrams the kernel accepted on send (sendmmsg/GSO segments, from the
//! shard's own counter) per second of the measurement window. Engine and relay run on one shard
//! pinned to core 0; the sender runs on core 1 and sends as fast as it can; the sinks are sockets
//! that are never read, so they cost no CPU (the kernel drops what overflows them).
//!
//! `cargo bench --bench fanout` (add `-- --quick` for a short run).

use std::net::{SocketAddr, UdpSocket};

use serde_json::json;
use shardsfu_benches::{pin_current_thread, relay_run, vp8_capability, vp8_parameters, Blaster, FanoutConfig};
use shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_engine::{
    block_on, ConsumerOptions, Engine, EngineOptions, PlainTransportConnect, PlainTransportOptions, ProducerOptions,
    RouterOptions, TransportListenInfo, WorkerSettings,
};

const PAYLOAD_BYTES: usize = 1200;
const SSRC: u32 = 1111;

fn engine_run(n: usize, sink: SocketAddr, cfg: &FanoutConfig) -> f64 {
    let engine = Engine::start(EngineOptions { shards: 1, pin: true, ..EngineOptions::default() }).expect("engine");
    let worker = block_on(engine.create_worker(WorkerSettings::default())).expect("worker");
    let vp8 = vp8_capability();
    let router = block_on(worker.create_router(RouterOptions { media_codecs: vec![vp8], ..Default::default() }))
        .expect("router");
    let ingest = block_on(router.create_plain_transport(PlainTransportOptions {
        comedia: true,
        ..PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))
    }))
    .expect("ingest");
    let producer =
        block_on(ingest.produce(ProducerOptions::new(MediaKind::Video, vp8_parameters(SSRC)))).expect("producer");
    let mut keep = Vec::new();
    for _ in 0..n {
        let t =
            block_on(router.create_plain_transport(PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))))
                .expect("consumer transport");
        block_on(t.connect(PlainTransportConnect {
            ip: Some(sink.ip().to_string()),
            port: Some(sink.port()),
            ..Default::default()
        }))
        .expect("connect");
        let c = block_on(t.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone())))
            .expect("consume");
        keep.push((t, c));
    }
    let blaster = Blaster::start(ingest.local_addr(), SSRC, 96, PAYLOAD_BYTES, 1);
    let pps = cfg.measure(|| engine.net_load(0).tx_packets);
    let sent = blaster.stop();
    let forwarded = keep
        .iter()
        .map(|(_, c)| block_on(c.get_stats()).map(|s| s[0]["packetCount"].as_u64().unwrap_or(0)).unwrap_or(0))
        .sum::<u64>();
    assert!(forwarded > 0 && sent > 0, "engine forwarded nothing");
    engine.close();
    pps
}

fn main() {
    let cfg = FanoutConfig::from_args();
    pin_current_thread(1);
    // Sinks: never read. One socket is enough; it overflows and the kernel drops.
    let sink = UdpSocket::bind("127.0.0.1:0").expect("sink");
    let sink_addr = sink.local_addr().expect("sink addr");
    for &n in &cfg.ns {
        let (mut engine_best, mut relay_best) = (0f64, 0f64);
        for _ in 0..cfg.rounds {
            relay_best = relay_best.max(relay_run(n, vec![sink_addr], SSRC, PAYLOAD_BYTES, &cfg).0);
            engine_best = engine_best.max(engine_run(n, sink_addr, &cfg));
        }
        let line = json!({
            "bench": "fanout",
            "n": n,
            "payload_bytes": PAYLOAD_BYTES,
            "engine_pps": engine_best.round(),
            "relay_pps": relay_best.round(),
            "ratio": (engine_best / relay_best * 1000.0).round() / 1000.0,
            "counted": "datagrams accepted by the kernel on send, per second; engine and relay on one shard pinned to core 0, sender on core 1, sinks never read",
        });
        println!("{line}");
    }
}
