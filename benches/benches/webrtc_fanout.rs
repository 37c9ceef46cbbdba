//! End-to-end WebRTC fan-out: one producer, N consumers on N WebRtcTransports, each connected
//! by a real ICE + DTLS handshake (AEAD_AES_128_GCM) with a peer socket on loopback; every packet
//! out is SRTP-protected for its consumer. Beside it, in the same run, the raw relay of the
//! `fanout` bench (same runtime, sockets and batching, no parsing, no crypto).
//!
//! The producer ingests plain RTP on a comedia PlainTransport, so the sender thread can blast
//! without encrypting; its cost is one packet in N out, so the egress side (N SRTP protects per
//! packet) is what is measured.
//!
//! How it counts: pps = datagrams the kernel accepted on send, per second (the shard's own
//! counter). Engine and relay on one shard pinned to core 0, sender on core 1; the peers' sockets
//! are not read after the handshake (the kernel drops what overflows them).
//!
//! `cargo bench --bench webrtc_fanout` (add `-- --quick` for a short run; `FANOUT_N=1,10` to pick N).

use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use serde_json::json;
use shardsfu_benches::{
    gso_train, pin_current_thread, relay_run, vp8_capability, vp8_parameters, Blaster, FanoutConfig,
};
use shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_engine::webrtc::cert::DtlsRole;
use shardsfu_engine::webrtc::dtls::DtlsSide;
use shardsfu_engine::webrtc::srtp::SrtpProfile;
use shardsfu_engine::{
    block_on, ConsumerOptions, Engine, EngineOptions, PlainTransportOptions, ProducerOptions, Protocol, RouterOptions,
    TransportListenInfo, WebRtcTransportConnect, WebRtcTransportOptions, WorkerSettings,
};
use shardsfu_tests::wire_peer::WirePeer;

const PAYLOAD_BYTES: usize = 1200;
const SSRC: u32 = 1111;

/// Returns (pps, seconds spent connecting the N transports, datagrams per GSO train).
fn engine_run(n: usize, cfg: &FanoutConfig) -> (f64, f64, f64) {
    let engine = Engine::start(EngineOptions { shards: 1, pin: true, ..EngineOptions::default() }).expect("engine");
    let worker = block_on(engine.create_worker(WorkerSettings::default())).expect("worker");
    let router =
        block_on(worker.create_router(RouterOptions { media_codecs: vec![vp8_capability()], ..Default::default() }))
            .expect("router");
    let ingest = block_on(router.create_plain_transport(PlainTransportOptions {
        comedia: true,
        ..PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))
    }))
    .expect("ingest");
    let producer =
        block_on(ingest.produce(ProducerOptions::new(MediaKind::Video, vp8_parameters(SSRC)))).expect("producer");
    let connect_start = Instant::now();
    let mut keep = Vec::with_capacity(n);
    for _ in 0..n {
        let t = block_on(router.create_webrtc_transport(WebRtcTransportOptions {
            ice_consent_timeout: 0,
            ..WebRtcTransportOptions::new(vec![TransportListenInfo::udp("127.0.0.1")])
        }))
        .expect("webrtc transport");
        let mut peer = WirePeer::connect(&t, Protocol::Udp);
        assert!(peer.ice(&t.ice_parameters()), "ICE");
        block_on(t.connect(WebRtcTransportConnect { dtls_parameters: peer.dtls_parameters(DtlsRole::Client) }))
            .expect("connect");
        peer.handshake(DtlsSide::Client, &t.dtls_parameters(), &[SrtpProfile::AeadAes128Gcm]);
        let c = block_on(t.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone())))
            .expect("consume");
        keep.push((t, c, peer));
    }
    let connect_secs = connect_start.elapsed().as_secs_f64();
    let blaster = Blaster::start(ingest.local_addr(), SSRC, 96, PAYLOAD_BYTES, 1);
    let l0 = engine.net_load(0);
    let pps = cfg.measure(|| engine.net_load(0).tx_packets);
    let trains = gso_train(&l0, &engine.net_load(0));
    let sent = blaster.stop();
    let forwarded = keep
        .iter()
        .map(|(_, c, _)| block_on(c.get_stats()).map(|s| s[0]["packetCount"].as_u64().unwrap_or(0)).unwrap_or(0))
        .sum::<u64>();
    assert!(forwarded > 0 && sent > 0, "engine forwarded nothing");
    engine.close();
    (pps, connect_secs, trains)
}

fn main() {
    let cfg = FanoutConfig::from_args();
    pin_current_thread(1);
    // The relay's sinks: one socket per consumer, never read (like the engine's peers after the
    // handshake).
    let max_n = cfg.ns.iter().copied().max().unwrap_or(1);
    let sinks: Vec<UdpSocket> = (0..max_n).map(|_| UdpSocket::bind("127.0.0.1:0").expect("sink")).collect();
    let sink_addrs: Vec<SocketAddr> = sinks.iter().map(|s| s.local_addr().expect("sink addr")).collect();
    for &n in &cfg.ns {
        let (mut engine_best, mut relay_best, mut connect) = (0f64, 0f64, 0f64);
        let (mut engine_train, mut relay_train) = (0f64, 0f64);
        for _ in 0..cfg.rounds {
            // One sink socket per consumer, as the engine sends to N peers.
            let (pps, train) = relay_run(n, sink_addrs[..n].to_vec(), SSRC, PAYLOAD_BYTES, &cfg);
            if pps > relay_best {
                (relay_best, relay_train) = (pps, train);
            }
            let (pps, secs, train) = engine_run(n, &cfg);
            if pps > engine_best {
                (engine_best, engine_train) = (pps, train);
            }
            connect = secs;
        }
        let line = json!({
            "bench": "webrtc_fanout",
            "n": n,
            "payload_bytes": PAYLOAD_BYTES,
            "srtp_profile": "AEAD_AES_128_GCM",
            "engine_pps": engine_best.round(),
            "relay_pps": relay_best.round(),
            "ratio": (engine_best / relay_best * 1000.0).round() / 1000.0,
            "connect_ms_per_transport": (connect * 1000.0 / n as f64 * 10.0).round() / 10.0,
            "engine_datagrams_per_gso_message": engine_train,
            "relay_datagrams_per_gso_message": relay_train,
            "counted": "SRTP datagrams accepted by the kernel on send, per second, vs the raw relay's plain ones (to one sink socket per consumer, as the engine's peers); one shard pinned to core 0, sender on core 1",
        });
        println!("{line}");
    }
}
