//! Producer and consumer scores on one shard, in simulated time: one sample per RTCP interval
//! from the loss in it, 0 after a silence, and every change told to the producer's consumers.

mod common;

use common::*;
use shardsfu_engine::core::{Event, ObjectId, INACTIVE_AUDIO, INACTIVE_VIDEO, RTCP_INTERVAL};

const INTERVAL_MS: u64 = RTCP_INTERVAL.as_millis() as u64;

/// The producer's score events (its one stream's score) and the consumers' (id, own score,
/// producer score), in order.
fn scores(events: Vec<Event>) -> (Vec<u8>, Vec<(ObjectId, u8, u8)>) {
    let (mut producer, mut consumers) = (Vec::new(), Vec::new());
    for e in events {
        match e {
            Event::ProducerScore { producer: id, scores } => {
                assert_eq!(id, PRODUCER);
                let [s] = &scores[..] else { panic!("one stream: {scores:?}") };
                assert_eq!((s.encoding_idx, s.ssrc, s.rid.as_deref()), (0, PRODUCER_SSRC, None));
                producer.push(s.score);
            }
            Event::ConsumerScore { consumer, score } => {
                assert_eq!(score.producer_scores, vec![score.producer_score]);
                consumers.push((consumer, score.score, score.producer_score));
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    (producer, consumers)
}

/// Sends `seqs` (the others of the range are lost) and lets one RTCP interval pass.
fn interval(sfu: &mut Sfu, seqs: impl Iterator<Item = u16>) -> (Vec<u8>, Vec<(ObjectId, u8, u8)>) {
    for seq in seqs {
        sfu.send_media(seq, seq == 1);
    }
    sfu.advance(INTERVAL_MS);
    sfu.take();
    scores(sfu.events())
}

/// One interval of 100 sequence numbers from `next` on, the odd ones lost when `lossy`.
fn hundred(sfu: &mut Sfu, next: &mut u16, lossy: bool) -> (Vec<u8>, Vec<(ObjectId, u8, u8)>) {
    let from = *next;
    *next += 100;
    interval(sfu, (from..from + 100).filter(|s| !lossy || s % 2 == 0 || *s == from + 99))
}

#[test]
fn a_video_stream_is_scored_from_its_loss_and_zero_when_quiet() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    assert_eq!(scores(sfu.events()), (vec![], vec![]));
    assert_eq!(sfu.producer().streams[0].score, 0, "no media yet");
    let c: Vec<ObjectId> = sfu.consumers.iter().map(|c| c.id).collect();
    let mut next = 1;

    // The first sample is the score.
    let (p, cs) = hundred(&mut sfu, &mut next, false);
    assert_eq!(p, vec![10]);
    assert_eq!(cs, vec![(c[0], 10, 10), (c[1], 10, 10)], "consumers are told their producer's score");
    // Half lost: a sample of 1, weighted twice against the 10 before: (10 + 2) / 3.
    assert_eq!(hundred(&mut sfu, &mut next, true).0, vec![4]);
    // Clean again: (10 + 2 + 3 * 10) / 6.
    assert_eq!(hundred(&mut sfu, &mut next, false).0, vec![7]);
    assert_eq!(sfu.producer().streams[0].score, 7);
    // Clean: the score rises back to 10 as the lossy sample ages out, told at each change only.
    let mut told = Vec::new();
    for _ in 0..8 {
        told.extend(hundred(&mut sfu, &mut next, false).0);
    }
    assert_eq!(told, vec![8, 9, 10], "{told:?}");
    assert_eq!(sfu.producer().streams[0].score, 10);

    // Quiet: nothing within the inactivity time, then 0.
    assert!(INACTIVE_VIDEO < 2 * RTCP_INTERVAL);
    assert_eq!(interval(&mut sfu, 0..0).0, Vec::<u8>::new());
    let (p, cs) = interval(&mut sfu, 0..0);
    assert_eq!(p, vec![0]);
    assert_eq!(cs, vec![(c[0], 10, 0), (c[1], 10, 0)]);
    // Back: the silence is forgotten.
    assert_eq!(hundred(&mut sfu, &mut next, false).0, vec![10]);
}

#[test]
fn an_audio_stream_may_be_silent_longer() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::audio() });
    assert_eq!(interval(&mut sfu, 1..=50).0, vec![10]);
    let quiet_intervals = (INACTIVE_AUDIO.as_millis() as u64).div_ceil(INTERVAL_MS);
    for _ in 1..quiet_intervals {
        assert_eq!(interval(&mut sfu, 0..0), (vec![], vec![]), "DTX silence is no loss yet");
    }
    assert_eq!(interval(&mut sfu, 0..0).0, vec![0]);
}

#[test]
fn a_consumer_is_scored_from_its_receiver_reports() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    interval(&mut sfu, 1..=100);
    let ssrc = sfu.consumers[0].ssrc;
    let block = |highest: u32, lost: i32| rr(9, &[rtcp_block(ssrc, highest, lost)]);
    // The first report is the baseline.
    sfu.consumer_rtcp(0, &block(100, 0));
    assert_eq!(scores(sfu.events()), (vec![], vec![]));
    sfu.consumer_rtcp(0, &block(200, 20));
    assert_eq!(scores(sfu.events()).1, vec![(sfu.consumers[0].id, 4, 10)]);
    assert_eq!(sfu.consumer(0).score, 4);
    // A report about another SSRC scores nothing.
    sfu.consumer_rtcp(0, &rr(9, &[rtcp_block(ssrc ^ 1, 300, 100)]));
    assert_eq!(scores(sfu.events()), (vec![], vec![]));
}

fn rtcp_block(ssrc: u32, ext_highest_seq: u32, cumulative_lost: i32) -> shardsfu_engine::rtp::ReportBlock {
    shardsfu_engine::rtp::ReportBlock { ssrc, ext_highest_seq, cumulative_lost, ..Default::default() }
}
