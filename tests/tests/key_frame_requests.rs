//! Key frame requests towards the producer's endpoint: on consume, on a receiver's PLI/FIR, on
//! `consumer.requestKeyFrame()`, rate limited by `keyFrameRequestDelay`, and FIR for producers
//! that only negotiated `ccm fir`.

use std::time::{Duration, Instant};

use shardsfu_tests::shardsfu_engine::block_on;
use shardsfu_tests::shardsfu_engine::rtp::{write_fir, write_pli, RtcpItem};
use shardsfu_tests::shardsfu_engine::rtp_parameters::{MediaKind, RtcpFeedback};
use shardsfu_tests::shardsfu_engine::ProducerOptions;
use shardsfu_tests::*;

const SSRC: u32 = 3333;
const RECEIVER_SSRC: u32 = 0x5eed;

#[test]
fn consume_asks_the_producer_for_a_key_frame() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    // The comedia transport learns where to send RTCP from the first packet.
    sender.send(&vp8(1, SSRC, true, b"k")).unwrap();
    assert!(wait_for(ARRIVAL, || ingest.tuple().remote_port.is_some()));
    let (_t, _consumer, _rx) = consumer(&router, &producer);
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "PLI for the producer's SSRC");
    engine.close();
}

#[test]
fn receiver_pli_fir_and_request_key_frame_reach_the_producer() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    sender.send(&vp8(1, SSRC, true, b"k")).unwrap();
    assert!(wait_for(ARRIVAL, || ingest.tuple().remote_port.is_some()));
    let (_t, consumer, receiver) = consumer(&router, &producer);
    let ssrc = wire_of(&consumer).ssrc;
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "PLI on consume");

    receiver.send(&rtcp_bytes(|b| write_pli(b, RECEIVER_SSRC, ssrc))).unwrap();
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "receiver's PLI becomes a PLI");

    receiver.send(&rtcp_bytes(|b| write_fir(b, RECEIVER_SSRC, ssrc, 1))).unwrap();
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "receiver's FIR becomes a PLI");

    block_on(consumer.request_key_frame()).unwrap();
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "requestKeyFrame() sends a PLI");

    // A PLI for an SSRC the transport does not send is ignored.
    receiver.send(&rtcp_bytes(|b| write_pli(b, RECEIVER_SSRC, 0xdead_beef))).unwrap();
    assert_eq!(count_rtcp_items(&sender, Duration::from_millis(200), |i| matches!(i, RtcpItem::Pli { .. })), 0);

    let stats = block_on(consumer.get_stats()).unwrap();
    assert_eq!(stats[0]["pliCount"], 1);
    assert_eq!(stats[0]["firCount"], 1);
    engine.close();
}

#[test]
fn key_frame_request_delay_coalesces_requests() {
    const DELAY_MS: u32 = 400;
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = block_on(ingest.produce(ProducerOptions {
        key_frame_request_delay: DELAY_MS,
        ..ProducerOptions::new(MediaKind::Video, vp8_params(SSRC, None))
    }))
    .unwrap();
    sender.send(&vp8(1, SSRC, true, b"k")).unwrap();
    assert!(wait_for(ARRIVAL, || ingest.tuple().remote_port.is_some()));

    let t0 = Instant::now();
    let (_t, consumer, receiver) = consumer(&router, &producer);
    let ssrc = wire_of(&consumer).ssrc;
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "first request goes out at once");
    // Three more requests inside the delay.
    for _ in 0..3 {
        receiver.send(&rtcp_bytes(|b| write_pli(b, RECEIVER_SSRC, ssrc))).unwrap();
    }
    // Only if this thread stalled past the delay could the requests span two windows.
    let stalled = t0.elapsed() >= Duration::from_millis(u64::from(DELAY_MS));
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "one delayed PLI");
    assert!(t0.elapsed() >= Duration::from_millis(u64::from(DELAY_MS)), "not before the delay");
    let more = count_rtcp_items(&sender, Duration::from_millis(u64::from(DELAY_MS) + 400), |i| is_pli_for(i, SSRC));
    assert!(more == 0 || (stalled && more == 1), "requests inside the delay collapse into one ({more} more)");
    assert_eq!(block_on(consumer.get_stats()).unwrap()[0]["pliCount"], 3);
    engine.close();
}

#[test]
fn fir_only_producer_gets_fir() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let mut params = vp8_params(SSRC, None);
    params.codecs[0].rtcp_feedback = Some(vec![RtcpFeedback::new("nack", None), RtcpFeedback::new("ccm", Some("fir"))]);
    let producer = block_on(ingest.produce(ProducerOptions::new(MediaKind::Video, params))).unwrap();
    sender.send(&vp8(1, SSRC, true, b"k")).unwrap();
    assert!(wait_for(ARRIVAL, || ingest.tuple().remote_port.is_some()));

    let (_t, consumer, _rx) = consumer(&router, &producer);
    let mut fir_seqs = Vec::new();
    let mut saw_pli = false;
    let fir = |i: &RtcpItem<'_>, seqs: &mut Vec<u8>, saw_pli: &mut bool| match i {
        RtcpItem::Fir { entries, .. } => {
            let mine: Vec<u8> = entries.clone().filter(|(s, _)| *s == SSRC).map(|(_, n)| n).collect();
            seqs.extend(&mine);
            !mine.is_empty()
        }
        RtcpItem::Pli { .. } => {
            *saw_pli = true;
            false
        }
        _ => false,
    };
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| fir(i, &mut fir_seqs, &mut saw_pli)), "FIR on consume");
    block_on(consumer.request_key_frame()).unwrap();
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| fir(i, &mut fir_seqs, &mut saw_pli)), "FIR on request");
    assert!(!saw_pli, "no PLI to a producer that did not negotiate it");
    assert_eq!(fir_seqs.len(), 2);
    assert_eq!(fir_seqs[1], fir_seqs[0].wrapping_add(1), "FIR command sequence number advances");
    engine.close();
}
