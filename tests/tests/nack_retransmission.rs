//! A receiver's NACK is answered from the producer's retransmission buffer: the same packet on
//! the media SSRC, or an RFC 4588 RTX packet when RTX is negotiated.

use std::time::Duration;

use shardsfu_tests::shardsfu_engine::block_on;
use shardsfu_tests::shardsfu_engine::rtp::write_nack;
use shardsfu_tests::*;

const SSRC: u32 = 2222;
const RTX_SSRC: u32 = 2223;
const RECEIVER_SSRC: u32 = 0x5eed;

fn body(i: u16) -> Vec<u8> {
    (0..200u16).map(|b| (b.wrapping_mul(31) ^ i) as u8).collect()
}

#[test]
fn nack_without_rtx_resends_the_same_packet() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    let (_t, consumer, receiver) =
        consumer_with(&router, &producer, |o| o.rtp_capabilities = caps_without_rtx(&router));
    let wire = wire_of(&consumer);
    assert!(wire.rtx.is_none(), "no RTX negotiated");
    assert!(consumer.rtp_parameters().codecs[0]
        .rtcp_feedback
        .iter()
        .flatten()
        .any(|fb| fb.r#type == "nack" && fb.parameter.as_deref().unwrap_or("").is_empty()));

    for i in 0..10u16 {
        sender.send(&vp8(300 + i, SSRC, i == 0, &body(i))).unwrap();
    }
    let sent = recv_rtp_n(&receiver, 10, ARRIVAL);
    assert_eq!(sent.len(), 10);

    for idx in [3usize, 7] {
        let seq = seq_of(&sent[idx]);
        receiver.send(&rtcp_bytes(|b| write_nack(b, RECEIVER_SSRC, wire.ssrc, &[seq]))).unwrap();
        let again = recv_rtp_n(&receiver, 1, ARRIVAL);
        assert_eq!(again.len(), 1, "NACKed packet {seq} comes again");
        let p = &again[0];
        assert_eq!(seq_of(p), seq);
        assert_eq!(ssrc_of(p), wire.ssrc);
        assert_eq!(pt_of(p), wire.payload_type);
        assert_eq!(ts_of(p), ts_of(&sent[idx]));
        assert_eq!(payload_of(p), payload_of(&sent[idx]));
        assert!(payload_of(p).ends_with(&body(idx as u16)));
    }

    // One NACK for several packets answers each of them, in order.
    let seqs: Vec<u16> = [1usize, 2, 5].iter().map(|&i| seq_of(&sent[i])).collect();
    receiver.send(&rtcp_bytes(|b| write_nack(b, RECEIVER_SSRC, wire.ssrc, &seqs))).unwrap();
    let again = recv_rtp_n(&receiver, 3, ARRIVAL);
    assert_eq!(again.iter().map(|p| seq_of(p)).collect::<Vec<_>>(), seqs);
    for (p, i) in again.iter().zip([1usize, 2, 5]) {
        assert_eq!(payload_of(p), payload_of(&sent[i]));
    }

    // A NACK for a sequence number never sent, or for an unknown SSRC, is ignored.
    let never = seq_of(&sent[9]).wrapping_add(100);
    receiver.send(&rtcp_bytes(|b| write_nack(b, RECEIVER_SSRC, wire.ssrc, &[never]))).unwrap();
    receiver.send(&rtcp_bytes(|b| write_nack(b, RECEIVER_SSRC, 0xdead_beef, &[seq_of(&sent[4])]))).unwrap();
    assert!(recv_rtp_for(&receiver, Duration::from_millis(200)).is_empty());

    let stats = block_on(consumer.get_stats()).unwrap();
    assert_eq!(stats[0]["packetsRetransmitted"], 5);
    assert_eq!(stats[0]["packetCount"], 10);
    engine.close();
}

#[test]
fn nack_with_rtx_answers_on_the_rtx_stream() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    assert!(router.rtp_capabilities().codecs.iter().flatten().any(|c| c.mime_type.eq_ignore_ascii_case("video/rtx")));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, Some(RTX_SSRC));
    let (_t, consumer, receiver) = consumer(&router, &producer);
    let wire = wire_of(&consumer);
    let (rtx_ssrc, rtx_pt) = wire.rtx.expect("consumer negotiated RTX");
    assert_ne!(rtx_ssrc, wire.ssrc);
    assert_ne!(rtx_pt, wire.payload_type);

    for i in 0..8u16 {
        sender.send(&vp8(60000 + i, SSRC, i == 0, &body(i))).unwrap();
    }
    let sent = recv_rtp_n(&receiver, 8, ARRIVAL);
    assert_eq!(sent.len(), 8);

    let mut rtx_seqs = Vec::new();
    for idx in [2usize, 6] {
        let seq = seq_of(&sent[idx]);
        receiver.send(&rtcp_bytes(|b| write_nack(b, RECEIVER_SSRC, wire.ssrc, &[seq]))).unwrap();
        let again = recv_rtp_n(&receiver, 1, ARRIVAL);
        assert_eq!(again.len(), 1, "NACKed packet {seq} comes again as RTX");
        let p = &again[0];
        assert_eq!(ssrc_of(p), rtx_ssrc);
        assert_eq!(pt_of(p), rtx_pt);
        assert_eq!(ts_of(p), ts_of(&sent[idx]));
        let payload = payload_of(p);
        assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), seq, "OSN is the consumer's sequence number");
        assert_eq!(&payload[2..], payload_of(&sent[idx]), "original payload after the OSN");
        rtx_seqs.push(seq_of(p));
    }
    assert_eq!(rtx_seqs[1], rtx_seqs[0].wrapping_add(1), "the RTX stream has its own continuous sequence");
    let stats = block_on(consumer.get_stats()).unwrap();
    assert_eq!(stats[0]["packetsRetransmitted"], 2);
    assert_eq!(stats[0]["rtxSsrc"], rtx_ssrc);
    engine.close();
}

#[test]
fn producer_rtx_repairs_a_lost_packet() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, Some(RTX_SSRC));
    let (_t, consumer, receiver) = consumer(&router, &producer);
    let wire = wire_of(&consumer);

    // 500 is lost on the way in; the sender repairs it over RTX (PT 97, OSN first).
    for seq in [499u16, 501, 502] {
        sender.send(&vp8(seq, SSRC, seq == 499, &body(seq))).unwrap();
    }
    let first = recv_rtp_n(&receiver, 3, ARRIVAL);
    assert_eq!(first.len(), 3);
    let base = seq_of(&first[0]);
    assert_eq!(seq_of(&first[1]), base.wrapping_add(2), "the loss shows as a gap");

    let original = vp8(500, SSRC, false, &body(500));
    let mut repair = rtp(97, 7, ts_of(&original), RTX_SSRC, false, &[]);
    repair.truncate(12);
    repair.extend_from_slice(&500u16.to_be_bytes());
    repair.extend_from_slice(&original[12..]);
    sender.send(&repair).unwrap();
    let repaired = recv_rtp_n(&receiver, 1, ARRIVAL);
    assert_eq!(repaired.len(), 1, "the repaired packet is forwarded");
    let p = &repaired[0];
    assert_eq!(ssrc_of(p), wire.ssrc);
    assert_eq!(pt_of(p), wire.payload_type);
    assert_eq!(seq_of(p), base.wrapping_add(1), "fills the gap");
    assert_eq!(ts_of(p), ts_of(&original));
    assert_eq!(payload_of(p), &original[12..]);
    let stats = block_on(producer.get_stats()).unwrap();
    assert_eq!(stats[0]["packetsRepaired"], 1);
    engine.close();
}
