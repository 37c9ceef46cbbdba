//! DTLS handshakes per second per core: one complete DTLS 1.2 handshake (ECDSA P-256, use_srtp,
//! fingerprint checks, SRTP key export) between two in-memory `DtlsSession`s, both on this thread.
//! The time is split by side: `server` is what a WebRtcTransport in the default role (the browser
//! is DTLS client) spends per handshake, `pair` both ends together.
//!
//! `cargo bench --bench dtls -- --quick`

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use shardsfu_engine::webrtc::cert::DtlsCertificate;
use shardsfu_engine::webrtc::dtls::{DtlsEvent, DtlsSession, DtlsSide};
use shardsfu_engine::webrtc::srtp::SrtpProfile;

/// Runs one handshake; returns the time spent in the client and in the server.
fn handshake(client_cert: &DtlsCertificate, server_cert: &DtlsCertificate) -> (Duration, Duration) {
    let now = Instant::now();
    let profiles = [SrtpProfile::AeadAes128Gcm];
    let (mut in_client, mut in_server) = (Duration::ZERO, Duration::ZERO);
    let t = Instant::now();
    let mut client =
        DtlsSession::new(now, DtlsSide::Client, client_cert, server_cert.fingerprints(), &profiles).expect("client");
    in_client += t.elapsed();
    let t = Instant::now();
    let mut server =
        DtlsSession::new(now, DtlsSide::Server, server_cert, client_cert.fingerprints(), &profiles).expect("server");
    in_server += t.elapsed();
    let mut buf = [0u8; 1500];
    let (mut client_done, mut server_done) = (false, false);
    for _ in 0..16 {
        let t = Instant::now();
        let mut to_server = Vec::new();
        while let Some(n) = client.poll_transmit(&mut buf) {
            to_server.push(buf[..n].to_vec());
        }
        in_client += t.elapsed();
        let t = Instant::now();
        for d in &to_server {
            let _ = server.handle_datagram(now, d);
        }
        let mut to_client = Vec::new();
        while let Some(n) = server.poll_transmit(&mut buf) {
            to_client.push(buf[..n].to_vec());
        }
        while let Some(ev) = server.poll_event() {
            server_done |= matches!(ev, DtlsEvent::Connected { .. });
        }
        in_server += t.elapsed();
        let t = Instant::now();
        for d in &to_client {
            let _ = client.handle_datagram(now, d);
        }
        while let Some(ev) = client.poll_event() {
            client_done |= matches!(ev, DtlsEvent::Connected { .. });
        }
        in_client += t.elapsed();
        if client_done && server_done {
            return (in_client, in_server);
        }
    }
    panic!("handshake did not complete");
}

fn bench(c: &mut Criterion) {
    let client_cert = DtlsCertificate::generate().expect("cert");
    let server_cert = DtlsCertificate::generate().expect("cert");
    // One explicit figure first: server-side handshakes per second per core.
    let rounds = 50;
    let (mut client, mut server) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..rounds {
        let (c, s) = handshake(&client_cert, &server_cert);
        client += c;
        server += s;
    }
    println!(
        "{}",
        serde_json::json!({
            "bench": "dtls_handshake",
            "server_us": (server.as_secs_f64() * 1e6 / rounds as f64).round(),
            "client_us": (client.as_secs_f64() * 1e6 / rounds as f64).round(),
            "server_handshakes_per_s_per_core": (rounds as f64 / server.as_secs_f64()).round(),
            "pair_handshakes_per_s_per_core": (rounds as f64 / (server + client).as_secs_f64()).round(),
        })
    );
    let mut g = c.benchmark_group("dtls");
    g.sample_size(20);
    g.bench_function("handshake_pair", |b| b.iter(|| handshake(&client_cert, &server_cert)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
