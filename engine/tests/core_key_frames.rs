//! Key frame requests to the producer's endpoint: when a consumer starts or asks, coalesced by
//! `keyFrameRequestDelay`, PLI or (when only `ccm fir` was negotiated) FIR.

mod common;

use common::*;

/// PLI / FIR items sent to the producer's endpoint in `datagrams`.
fn requests(sfu: &Sfu, datagrams: &[Datagram]) -> Vec<Rtcp> {
    sfu.rtcp_to_producer(datagrams).into_iter().filter(|i| matches!(i, Rtcp::Pli { .. } | Rtcp::Fir { .. })).collect()
}

fn flush_requests(sfu: &mut Sfu) -> Vec<Rtcp> {
    let now = sfu.now;
    sfu.shard.send_key_frame_requests(now, &mut sfu.sink);
    let out = sfu.take();
    requests(sfu, &out)
}

#[test]
fn new_consumers_trigger_one_pli() {
    let mut sfu = Sfu::new(Options { consumers: 3, ..Options::default() });
    assert!(sfu.sink.datagrams.is_empty(), "nothing sent before asked to");
    let sent = flush_requests(&mut sfu);
    assert_eq!(sent.len(), 1, "one PLI for three new consumers: {sent:?}");
    let Rtcp::Pli { media, .. } = sent[0] else { panic!("PLI expected") };
    assert_eq!(media, PRODUCER_SSRC);
    assert!(flush_requests(&mut sfu).is_empty(), "sent once");
}

#[test]
fn pli_also_goes_out_on_the_next_tick() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.advance(20);
    let out = sfu.take();
    assert_eq!(requests(&sfu, &out).len(), 1);
}

#[test]
fn paused_or_audio_consumers_do_not_ask() {
    let mut sfu = Sfu::new(Options { consumers: 2, consumers_paused: true, ..Options::default() });
    assert!(flush_requests(&mut sfu).is_empty());
    let (id, now) = (sfu.consumers[0].id, sfu.now);
    sfu.shard.resume_consumer(now, id).unwrap();
    assert_eq!(flush_requests(&mut sfu).len(), 1, "resume asks for a key frame");

    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::audio() });
    assert!(flush_requests(&mut sfu).is_empty());
}

#[test]
fn consumer_pli_and_fir_are_relayed_as_pli() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    flush_requests(&mut sfu);
    let c = sfu.consumers[1].clone();
    sfu.consumer_rtcp(1, &pli(0xBEEF, c.ssrc));
    let out = sfu.take();
    assert_eq!(requests(&sfu, &out).len(), 1, "relayed at once (no delay configured)");
    sfu.consumer_rtcp(1, &fir(0xBEEF, c.ssrc, 1));
    let out = sfu.take();
    assert!(matches!(requests(&sfu, &out)[..], [Rtcp::Pli { media: PRODUCER_SSRC, .. }]));
    let snap = sfu.consumer(1);
    assert_eq!((snap.plis_in, snap.firs_in), (1, 1));
    // A PLI about an SSRC nobody sends on this transport is ignored.
    sfu.consumer_rtcp(1, &pli(0xBEEF, 0x4242));
    assert!(sfu.take().is_empty());
}

#[test]
fn paused_consumer_pli_is_counted_not_relayed() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    flush_requests(&mut sfu);
    let c = sfu.consumers[0].clone();
    sfu.shard.pause_consumer(c.id).unwrap();
    sfu.consumer_rtcp(0, &pli(0xBEEF, c.ssrc));
    assert!(sfu.take().is_empty());
    assert_eq!(sfu.consumer(0).plis_in, 1);
}

#[test]
fn key_frame_request_delay_coalesces_requests() {
    let mut sfu = Sfu::new(Options { consumers: 2, key_frame_request_delay_ms: 1000, ..Options::default() });
    assert_eq!(flush_requests(&mut sfu).len(), 1, "the first request goes out at once");
    let ssrcs: Vec<u32> = sfu.consumers.iter().map(|c| c.ssrc).collect();
    let mut sent_at = Vec::new();
    for step in 1..=110u64 {
        sfu.advance(20);
        if step % 5 == 0 && step <= 60 {
            // A PLI every 100 ms from alternating consumers.
            let i = (step / 5) as usize % 2;
            sfu.consumer_rtcp(i, &pli(0xBEEF, ssrcs[i]));
        }
        let out = sfu.take();
        for _ in requests(&sfu, &out) {
            sent_at.push(sfu.elapsed_ms());
        }
    }
    // Twelve requests at 100..=1200 ms: one PLI when the delay since t0 ends (for those up to
    // 1000 ms), one more a delay later (for 1100 and 1200 ms).
    assert_eq!(sent_at, vec![1000, 2000]);
}

#[test]
fn key_frame_arriving_meanwhile_cancels_the_delayed_request() {
    let mut sfu = Sfu::new(Options { consumers: 1, key_frame_request_delay_ms: 1000, ..Options::default() });
    assert_eq!(flush_requests(&mut sfu).len(), 1);
    sfu.advance(100);
    let ssrc = sfu.consumers[0].ssrc;
    sfu.consumer_rtcp(0, &pli(0xBEEF, ssrc));
    sfu.advance(100);
    sfu.send_media(1, true);
    sfu.take();
    sfu.advance(2000);
    let out = sfu.take();
    assert!(requests(&sfu, &out).is_empty(), "the key frame answered it");
}

#[test]
fn fir_when_only_ccm_fir_negotiated() {
    let mut sfu =
        Sfu::new(Options { consumers: 1, feedback: Feedback::FirOnly, producer_rtx: false, ..Options::default() });
    let sent = flush_requests(&mut sfu);
    let [Rtcp::Fir { entries, .. }] = &sent[..] else { panic!("one FIR expected: {sent:?}") };
    assert_eq!(entries.len(), 1);
    let (ssrc, first_seq) = entries[0];
    assert_eq!(ssrc, PRODUCER_SSRC);
    let c = sfu.consumers[0].clone();
    sfu.consumer_rtcp(0, &pli(0xBEEF, c.ssrc));
    let out = sfu.take();
    let sent = requests(&sfu, &out);
    let [Rtcp::Fir { entries, .. }] = &sent[..] else { panic!("one FIR expected: {sent:?}") };
    assert_eq!(entries[0], (PRODUCER_SSRC, first_seq.wrapping_add(1)), "a new command sequence number");
}

#[test]
fn producer_resume_asks_for_a_key_frame() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    flush_requests(&mut sfu);
    sfu.shard.pause_producer(PRODUCER).unwrap();
    assert!(flush_requests(&mut sfu).is_empty());
    let now = sfu.now;
    sfu.shard.resume_producer(now, PRODUCER).unwrap();
    assert_eq!(flush_requests(&mut sfu).len(), 1);
}

#[test]
fn too_much_loss_asks_for_a_key_frame() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    flush_requests(&mut sfu);
    sfu.start(1);
    sfu.send_media(1 + 2 + shardsfu_engine::rtp::MAX_NACK_PACKETS as u16, false);
    sfu.advance(20);
    let out = sfu.take();
    assert_eq!(requests(&sfu, &out).len(), 1, "loss beyond repair: PLI");
}

/// When each PLI/FIR to the producer's endpoint went out, over `ms` of simulated time.
fn request_times(sfu: &mut Sfu, ms: u64) -> Vec<u64> {
    let mut sent_at = Vec::new();
    for _ in 0..ms / 20 {
        sfu.advance(20);
        let out = sfu.take();
        for _ in requests(sfu, &out) {
            sent_at.push(sfu.elapsed_ms());
        }
    }
    sent_at
}

/// A request no key frame answers is sent once more a second later, then given up (mediasoup's
/// KeyFrameRequestManager). Browsers ignore a PLI that comes too soon after the previous one
/// (Chrome: 300 ms), so without it a consumer whose transport connected right after another
/// request never gets its first key frame.
#[test]
fn unanswered_request_is_sent_once_more_after_a_second() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    assert_eq!(flush_requests(&mut sfu).len(), 1, "the request goes out at once");
    assert_eq!(request_times(&mut sfu, 5000), vec![1000], "one retry, a second later");
}

#[test]
fn key_frame_answers_the_request_no_retry() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    assert_eq!(flush_requests(&mut sfu).len(), 1);
    sfu.advance(300);
    sfu.send_media(1, false);
    assert!(request_times(&mut sfu, 600).is_empty(), "a delta frame does not answer it");
    sfu.send_media(2, true);
    sfu.take();
    assert!(request_times(&mut sfu, 3000).is_empty(), "the key frame answered it");
}

#[test]
fn new_request_while_waiting_starts_the_retries_over() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    assert_eq!(flush_requests(&mut sfu).len(), 1);
    sfu.advance(500);
    let ssrc = sfu.consumers[0].ssrc;
    sfu.consumer_rtcp(0, &pli(0xBEEF, ssrc));
    let out = sfu.take();
    assert_eq!(requests(&sfu, &out).len(), 1, "relayed at once");
    // Retried a second after the last request (not the first one), once.
    assert_eq!(request_times(&mut sfu, 4000), vec![1500]);
}
