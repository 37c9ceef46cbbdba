//! Producer and consumer scores: sampled from real loss each RTCP interval, 0 when a stream goes
//! quiet, reported by `score()`, `getStats()` and `score` events.

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shardsfu_tests::shardsfu_engine::block_on;
use shardsfu_tests::shardsfu_engine::rtp::{write_rr, ReportBlock};
use shardsfu_tests::*;

/// Sends VP8 packets every 5 ms, leaving out `lost_per_10` of every 10 sequence numbers, until
/// `done` holds or `timeout` passes; true if `done` held.
fn send_until(
    sender: &UdpSocket,
    seq: &mut u16,
    lost_per_10: u16,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if done() {
            return true;
        }
        *seq = seq.wrapping_add(1);
        if *seq % 10 >= lost_per_10 {
            sender.send(&vp8(*seq, 1111, *seq % 100 == 1, &[7u8; 300])).unwrap();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

fn producer_score(p: &shardsfu_tests::shardsfu_engine::Producer) -> Option<u8> {
    let s = p.score();
    assert!(s.len() <= 1, "one stream: {s:?}");
    s.first().map(|s| {
        assert_eq!(s.ssrc, 1111);
        assert_eq!(s.encoding_idx, 0);
        s.score
    })
}

#[test]
fn producer_score_follows_loss_and_silence() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 1111, None);
    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    producer.on_score(move |s| e.lock().unwrap().push(s[0].score));
    assert_eq!(producer_score(&producer), None, "no media yet, nothing scored");

    let mut seq = 0u16;
    assert!(send_until(&sender, &mut seq, 0, Duration::from_secs(4), || producer_score(&producer) == Some(10)));
    assert_eq!(events.lock().unwrap().first(), Some(&10), "the first sample told as an event");

    // Half the packets lost: each sample is 1 (0.5^4 * 10), the score falls.
    assert!(
        send_until(&sender, &mut seq, 5, Duration::from_secs(6), || producer_score(&producer).unwrap() <= 4),
        "score {:?} under 50% loss",
        producer.score()
    );
    let stats = block_on(producer.get_stats()).unwrap();
    assert!(stats[0]["score"].as_u64().unwrap() <= 4, "getStats reports the score: {stats}");

    // Silence: after the inactivity time the stream scores 0.
    assert!(wait_for(Duration::from_secs(5), || producer_score(&producer) == Some(0)), "{:?}", producer.score());
    assert_eq!(events.lock().unwrap().last(), Some(&0));

    // Back, clean: the old samples are forgotten, the first new one is the score.
    assert!(send_until(&sender, &mut seq, 0, Duration::from_secs(4), || producer_score(&producer) == Some(10)));
    engine.close();
}

#[test]
fn consumer_score_comes_from_its_receiver_reports() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 1111, None);
    let (_t, c, receiver) = consumer(&router, &producer);
    let initial = c.score();
    assert_eq!((initial.score, initial.producer_scores.len()), (10, 0), "no media yet: {initial:?}");

    let events = Arc::new(Mutex::new(Vec::new()));
    let e = events.clone();
    c.on_score(move |s| e.lock().unwrap().push(s.clone()));
    let mut seq = 0u16;
    assert!(send_until(&sender, &mut seq, 0, Duration::from_secs(4), || c.score().producer_score == 10));
    let wire = wire_of(&c);
    // A consumer created now starts from its producer's current scores.
    let (_t2, c2, _r2) = consumer(&router, &producer);
    assert_eq!(c2.score().producer_scores, vec![10]);

    // Reports from the receiver: a baseline, then 100 expected with 20 lost (a sample of 4),
    // then 100 more with none lost (weights 1 and 2: (4 + 2 * 10) / 3 = 8).
    let rr = |highest: u32, lost: i32| {
        let block =
            ReportBlock { ssrc: wire.ssrc, ext_highest_seq: highest, cumulative_lost: lost, ..Default::default() };
        receiver.send(&rtcp_bytes(|b| write_rr(b, 4242, &[block]))).unwrap();
    };
    rr(1000, 0);
    rr(1100, 20);
    assert!(wait_for(ARRIVAL, || c.score().score == 4), "{:?}", c.score());
    rr(1200, 20);
    assert!(wait_for(ARRIVAL, || c.score().score == 8), "{:?}", c.score());
    // An old report (reordered RTCP) is no sample.
    rr(1150, 20);
    rr(1300, 20);
    assert!(wait_for(ARRIVAL, || c.score().score == 9), "(4 + 2 * 10 + 3 * 10) / 6 = 9: {:?}", c.score());
    let stats = block_on(c.get_stats()).unwrap();
    assert_eq!(stats[0]["score"], 9, "{stats}");
    // Its producer going quiet may be told in between (same own score, producerScore 0).
    let mut told: Vec<u8> = events.lock().unwrap().iter().map(|s| s.score).collect();
    told.dedup();
    assert!(told.ends_with(&[4, 8, 9]), "score events {told:?}");
    engine.close();
}
