//! One router over two shards: transports spread by placement, media crosses shards once per
//! (producer, shard), feedback and control cross back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shardsfu_tests::shardsfu_engine::rtp::rtcp;
use shardsfu_tests::shardsfu_engine::{block_on, Engine};
use shardsfu_tests::*;

fn records_to_shards(engine: &Engine) -> u64 {
    let dump = block_on(engine.dump()).unwrap();
    dump["shards"].as_array().unwrap().iter().map(|s| s["recordsToShards"].as_u64().unwrap()).sum()
}

#[test]
fn one_router_two_shards_media_crosses_once_per_producer_and_shard() {
    let engine = spread_engine();
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 1111, None);
    let consumers: Vec<_> = (0..6).map(|_| consumer(&router, &producer)).collect();
    let on_other: Vec<_> = consumers.iter().filter(|(t, _, _)| t.shard() != ingest.shard()).collect();
    assert!(on_other.len() >= 2, "placement spread the room over both shards");
    assert_eq!(router.shards().len(), 2);

    let body: Vec<u8> = (0..800u32).map(|i| (i * 13) as u8).collect();
    let before = records_to_shards(&engine);
    for i in 0..30u16 {
        sender.send(&rtp(96, 100 + i, 3000 * u32::from(i), 1111, i == 0, &body)).unwrap();
    }
    for (t, c, sock) in &consumers {
        let pkts = recv_rtp_n(sock, 30, Duration::from_secs(3));
        assert_eq!(pkts.len(), 30, "consumer {} on shard {} got every packet", c.id(), t.shard());
        let wire = wire_of(c);
        for (i, p) in pkts.iter().enumerate() {
            assert_eq!(ssrc_of(p), wire.ssrc);
            assert_eq!(seq_of(p), seq_of(&pkts[0]).wrapping_add(i as u16), "continuous sequence");
            assert!(p.ends_with(&body));
        }
    }
    // One producer, consumers on one other shard: one record per packet, not one per consumer.
    assert_eq!(records_to_shards(&engine) - before, 30);
    engine.close();
}

#[test]
fn producer_close_on_one_shard_closes_consumers_on_the_other() {
    let engine = spread_engine();
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, _sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 1111, None);
    let (t, c, _sock) = consumer_on_other_shard(&router, &producer, ingest.shard());
    let closed = Arc::new(AtomicUsize::new(0));
    let n = closed.clone();
    c.on_producer_close(move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    producer.close();
    assert!(
        wait_for(Duration::from_secs(3), || closed.load(Ordering::SeqCst) == 1),
        "producerclose on shard {}",
        t.shard()
    );
    assert!(c.closed());
    engine.close();
}

#[test]
fn pause_resume_and_key_frames_cross_shards() {
    let engine = spread_engine();
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 1111, None);
    // Learn the comedia remote first so the PLI on consumer creation has somewhere to go.
    sender.send(&rtp(96, 1, 0, 1111, true, b"hello")).unwrap();
    let (t, c, sock) = consumer_on_other_shard(&router, &producer, ingest.shard());
    assert_ne!(t.shard(), ingest.shard());

    // PLI from the receiver on shard B reaches the sender of the producer on shard A.
    let wire = wire_of(&c);
    let mut buf = [0u8; 64];
    let n = rtcp::write_pli(&mut buf, 1, wire.ssrc).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    drain(&sender);
    sock.send(&buf[..n]).unwrap();
    let pli = recv_until(&sender, Duration::from_secs(3), |d| is_pli_for(d, 1111));
    assert!(pli.is_some(), "PLI crossed from shard {} to shard {}", t.shard(), ingest.shard());

    // Pause and resume propagate to the mirror's consumers as events.
    let paused = Arc::new(AtomicUsize::new(0));
    let (p1, p2) = (paused.clone(), paused.clone());
    c.on_producer_pause(move || {
        p1.fetch_add(1, Ordering::SeqCst);
    });
    c.on_producer_resume(move || {
        p2.fetch_add(10, Ordering::SeqCst);
    });
    block_on(producer.pause()).unwrap();
    assert!(wait_for(Duration::from_secs(3), || c.producer_paused()));
    block_on(producer.resume()).unwrap();
    assert!(wait_for(Duration::from_secs(3), || paused.load(Ordering::SeqCst) == 11));
    assert!(!c.producer_paused());

    // NACK from shard B is answered from shard B's copy of the packet.
    drain(&sock);
    let body = b"key frame after resume";
    sender.send(&rtp(96, 2, 3000, 1111, true, body)).unwrap();
    let first = recv_rtp_n(&sock, 1, Duration::from_secs(3));
    assert_eq!(first.len(), 1);
    let out_seq = seq_of(&first[0]);
    let n = rtcp::write_nack(&mut buf, 1, wire.ssrc, &[out_seq]).unwrap();
    sock.send(&buf[..n]).unwrap();
    // RTX is negotiated (the router has video/rtx): the repair comes on the RTX stream, with the
    // consumer's sequence number as OSN and the original payload after it.
    let (rtx_ssrc, rtx_pt) = wire.rtx.expect("rtx negotiated");
    let again = recv_until(&sock, Duration::from_secs(3), |d| d.len() > 14 && d[1] & 0x7f == rtx_pt);
    let again = again.unwrap_or_else(|| panic!("retransmission: {:?}", block_on(c.get_stats())));
    assert_eq!(ssrc_of(&again), rtx_ssrc);
    let osn_at = rtp_header_len(&again);
    assert_eq!(u16::from_be_bytes([again[osn_at], again[osn_at + 1]]), out_seq);
    assert!(again.ends_with(body));
    engine.close();
}

#[test]
fn producer_score_reaches_consumers_on_the_other_shard() {
    let engine = spread_engine();
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 1111, None);
    let (t, c, _sock) = consumer_on_other_shard(&router, &producer, ingest.shard());
    let told = Arc::new(std::sync::Mutex::new(Vec::new()));
    let e = told.clone();
    c.on_score(move |s| e.lock().unwrap().push(s.producer_score));

    // Media flows: the origin scores it 10, the mirror on the other shard learns it.
    let mut seq = 0u16;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while c.score().producer_score != 10 && std::time::Instant::now() < deadline {
        seq += 1;
        sender.send(&rtp(96, seq, 3000 * u32::from(seq), 1111, seq == 1, b"scored")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(c.score().producer_scores, vec![10], "consumer on shard {}", t.shard());
    assert_eq!(producer.score()[0].score, 10);

    // The sender stops: 0 on the origin, then on the consumer across the shards.
    assert!(wait_for(Duration::from_secs(5), || c.score().producer_score == 0), "{:?}", c.score());
    assert_eq!(producer.score()[0].score, 0);
    assert_eq!(told.lock().unwrap().last(), Some(&0), "told as a score event");
    engine.close();
}

#[test]
fn one_producer_to_a_thousand_consumers_over_two_shards() {
    let engine = spread_engine();
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 1111, None);
    let consumers: Vec<_> = (0..1000).map(|_| consumer(&router, &producer)).collect();
    let per_shard = |s: usize| consumers.iter().filter(|(t, _, _)| t.shard() == s).count();
    assert!(per_shard(0).abs_diff(per_shard(1)) <= 2, "spread: {} / {}", per_shard(0), per_shard(1));
    std::thread::sleep(Duration::from_millis(100));
    let packets = 10u16;
    for i in 0..packets {
        sender.send(&rtp(96, 7 + i, 3000 * u32::from(i), 1111, i == 0, &[i as u8; 200])).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    for (t, c, sock) in &consumers {
        let pkts = recv_rtp_n(sock, usize::from(packets), Duration::from_secs(5));
        assert_eq!(pkts.len(), usize::from(packets), "consumer {} on shard {}", c.id(), t.shard());
        for (i, p) in pkts.iter().enumerate() {
            assert!(p.ends_with(&[i as u8; 200]));
        }
    }
    engine.close();
}

/// Consumers are placed by load: create them until one lands on a shard other than `shard`.
fn consumer_on_other_shard(
    router: &shardsfu_tests::shardsfu_engine::Router,
    producer: &shardsfu_tests::shardsfu_engine::Producer,
    shard: usize,
) -> (shardsfu_tests::shardsfu_engine::PlainTransport, shardsfu_tests::shardsfu_engine::Consumer, std::net::UdpSocket) {
    (0..50).map(|_| consumer(router, producer)).find(|(t, _, _)| t.shard() != shard).expect("placement spreads")
}

fn drain(sock: &std::net::UdpSocket) {
    let mut buf = [0u8; 2048];
    while sock.recv(&mut buf).is_ok() {}
}

fn is_pli_for(d: &[u8], media_ssrc: u32) -> bool {
    let mut found = false;
    let _ = rtcp::parse_compound(d, |item| {
        if let rtcp::RtcpItem::Pli { media_ssrc: m, .. } = item {
            found |= m == media_ssrc;
        }
    });
    found
}
