//! Consumer and producer pause/resume: delivery stops, resumes on a key frame, and the receiver
//! sees one continuous sequence number space across the pause.

use std::time::Duration;

use shardsfu_tests::shardsfu_engine::block_on;
use shardsfu_tests::*;

const SSRC: u32 = 1111;
const QUIET: Duration = Duration::from_millis(200);

#[test]
fn consumer_pause_stops_delivery_and_resume_waits_for_a_key_frame() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    let (_t, consumer, receiver) = consumer(&router, &producer);
    let ssrc = wire_of(&consumer).ssrc;
    let body = b"pause-resume payload";

    for seq in 100..105u16 {
        sender.send(&vp8(seq, SSRC, seq == 100, body)).unwrap();
    }
    let before = recv_rtp_n(&receiver, 5, ARRIVAL);
    assert_eq!(before.len(), 5);
    for (i, p) in before.iter().enumerate() {
        assert_eq!(seq_of(p), seq_of(&before[0]).wrapping_add(i as u16));
        assert_eq!(ssrc_of(p), ssrc);
        assert!(payload_of(p).ends_with(body));
    }
    let last_before = seq_of(&before[4]);

    block_on(consumer.pause()).unwrap();
    assert!(consumer.paused());
    assert!(!consumer.producer_paused());
    let inactive = drop_count(&engine, 0, "consumer_inactive");
    for seq in 105..110u16 {
        sender.send(&vp8(seq, SSRC, seq == 105, body)).unwrap();
    }
    assert_eq!(wait_drops(&engine, 0, "consumer_inactive", inactive + 5), inactive + 5);
    assert!(recv_rtp_for(&receiver, QUIET).is_empty(), "nothing is delivered while paused");

    drain(&sender);
    block_on(consumer.resume()).unwrap();
    assert!(!consumer.paused());
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "resume asks the producer for a key frame");

    // Delta frames after resume are dropped until a key frame arrives.
    let not_key = drop_count(&engine, 0, "not_a_key_frame");
    for seq in 110..113u16 {
        sender.send(&vp8(seq, SSRC, false, body)).unwrap();
    }
    assert_eq!(wait_drops(&engine, 0, "not_a_key_frame", not_key + 3), not_key + 3);
    assert!(recv_rtp_for(&receiver, QUIET).is_empty(), "delta frames wait for a key frame");

    for seq in 113..116u16 {
        sender.send(&vp8(seq, SSRC, seq == 113, body)).unwrap();
    }
    let after = recv_rtp_n(&receiver, 3, ARRIVAL);
    assert_eq!(after.len(), 3);
    for (i, p) in after.iter().enumerate() {
        assert_eq!(seq_of(p), last_before.wrapping_add(1 + i as u16), "no gap in the consumer's sequence numbers");
        assert_eq!(ts_of(p), (113 + i as u32) * 3000);
        assert_eq!(ssrc_of(p), ssrc);
        assert!(payload_of(p).ends_with(body));
    }
    assert_eq!(drop_count(&engine, 0, "not_a_key_frame"), not_key + 3);
    engine.close();
}

#[test]
fn producer_pause_and_resume_reach_consumers() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    let (_t, consumer, receiver) = consumer(&router, &producer);
    let (paused, resumed) = (counter(), counter());
    consumer.on_producer_pause(bump(&paused));
    consumer.on_producer_resume(bump(&resumed));
    let body = b"producer pause";

    for seq in 7000..7004u16 {
        sender.send(&vp8(seq, SSRC, seq == 7000, body)).unwrap();
    }
    let before = recv_rtp_n(&receiver, 4, ARRIVAL);
    assert_eq!(before.len(), 4);
    let last_before = seq_of(&before[3]);

    block_on(producer.pause()).unwrap();
    assert!(producer.paused());
    assert!(wait_for(ARRIVAL, || count(&paused) == 1), "consumer gets producerpause");
    assert!(consumer.producer_paused());
    assert!(!consumer.paused());
    assert_eq!(block_on(consumer.dump()).unwrap()["producerPaused"], true);

    // A consumer created while the producer is paused starts as producer-paused.
    let (_t2, late, _late_rx) = shardsfu_tests::consumer(&router, &producer);
    assert!(late.producer_paused());

    let dropped = drop_count(&engine, 0, "producer_paused");
    for seq in 7004..7010u16 {
        sender.send(&vp8(seq, SSRC, seq == 7004, body)).unwrap();
    }
    assert_eq!(wait_drops(&engine, 0, "producer_paused", dropped + 6), dropped + 6);
    assert!(recv_rtp_for(&receiver, QUIET).is_empty(), "nothing is delivered while the producer is paused");

    drain(&sender);
    block_on(producer.resume()).unwrap();
    assert!(!producer.paused());
    assert!(wait_for(ARRIVAL, || count(&resumed) == 1), "consumer gets producerresume");
    assert!(!consumer.producer_paused());
    assert!(wait_for(ARRIVAL, || !late.producer_paused()));
    assert_eq!(count(&paused), 1);
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "resume asks for a key frame");

    let not_key = drop_count(&engine, 0, "not_a_key_frame");
    sender.send(&vp8(7010, SSRC, false, body)).unwrap();
    assert!(wait_drops(&engine, 0, "not_a_key_frame", not_key + 1) > not_key);
    for seq in 7011..7014u16 {
        sender.send(&vp8(seq, SSRC, seq == 7011, body)).unwrap();
    }
    let after = recv_rtp_n(&receiver, 3, ARRIVAL);
    assert_eq!(after.len(), 3);
    for (i, p) in after.iter().enumerate() {
        assert_eq!(seq_of(p), last_before.wrapping_add(1 + i as u16), "continuous across the producer pause");
        assert_eq!(ts_of(p), (7011 + i as u32) * 3000);
        assert!(payload_of(p).ends_with(body));
    }
    engine.close();
}
