//! Loss repair in both directions: NACKs to the producer's endpoint for gaps in its input
//! (retried, stopped by recovery, RTX unwrapped), and retransmissions answering consumers' NACKs
//! (plain or RTX).

mod common;

use common::*;
use shardsfu_engine::rtp::MAX_NACK_RETRIES;

/// Sequence numbers NACKed to the producer's endpoint in `datagrams`, per NACK item.
fn nacks(sfu: &Sfu, datagrams: &[Datagram]) -> Vec<Vec<u16>> {
    sfu.rtcp_to_producer(datagrams)
        .into_iter()
        .filter_map(|item| match item {
            Rtcp::Nack { media, seqs, .. } => {
                assert_eq!(media, PRODUCER_SSRC, "NACK about the producer's SSRC");
                Some(seqs)
            }
            _ => None,
        })
        .collect()
}

/// An RTX packet of the producer repairing `osn` (RFC 4588: OSN in front of the payload).
fn producer_rtx(rtx_seq: u16, osn: u16, payload: &[u8]) -> Rtp {
    let mut p = osn.to_be_bytes().to_vec();
    p.extend_from_slice(payload);
    Rtp::new(PRODUCER_RTX_SSRC, VIDEO_RTX_PT, rtx_seq).ts(u32::from(osn) * 3000).payload(&p)
}

#[test]
fn gap_is_nacked_to_the_producer_endpoint() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.start(1);
    sfu.send_media(2, false);
    sfu.send_media(5, false);
    // mediasoup NACKs as soon as the gap shows; at the latest it goes out on the next tick.
    sfu.advance(20);
    let out = sfu.take();
    assert_eq!(nacks(&sfu, &out), vec![vec![3, 4]]);
    let d = out.iter().find(|d| d.is_rtcp()).unwrap();
    assert_eq!((d.socket, d.dest), (PRODUCER_SOCKET, sfu.producer_remote));
}

#[test]
fn gap_is_nacked_at_once() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.start(1);
    sfu.send_media(4, false);
    let out = sfu.take();
    assert_eq!(nacks(&sfu, &out), vec![vec![2, 3]], "NACK sent with the packet that revealed the gap");
}

#[test]
fn nack_retried_on_later_timeouts_then_given_up() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.start(1);
    sfu.send_media(3, false);
    let mut times_nacked = 0;
    let mut first_two = Vec::new();
    for _ in 0..200 {
        let out = sfu.take();
        for seqs in nacks(&sfu, &out) {
            assert_eq!(seqs, vec![2]);
            times_nacked += 1;
            if first_two.len() < 2 {
                first_two.push(sfu.elapsed_ms());
            }
        }
        sfu.advance(20);
    }
    assert_eq!(times_nacked, MAX_NACK_RETRIES as usize, "retried, then given up");
    assert!(first_two[1] - first_two[0] >= 100, "retries spaced by the RTT: {first_two:?}");
}

#[test]
fn recovered_packet_stops_nacking_and_is_forwarded_in_its_slot() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.send_media(1, true);
    sfu.send_media(2, false);
    sfu.send_media(5, false);
    let first = sfu.take_rtp_to(0);
    let o = first[0].rtp().sequence_number;
    assert_eq!(first.iter().map(|d| d.rtp().sequence_number).collect::<Vec<_>>(), vec![o, o + 1, o + 4]);
    sfu.advance(20);
    // Seq 3 arrives late (a plain retransmission on the media SSRC).
    sfu.send_media(3, false);
    let out = sfu.take_rtp_to(0);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].rtp().sequence_number, o + 2);
    for _ in 0..20 {
        sfu.advance(20);
        let out = sfu.take();
        for seqs in nacks(&sfu, &out) {
            assert_eq!(seqs, vec![4], "3 is no longer NACKed");
        }
    }
}

#[test]
fn rtx_from_producer_is_unwrapped_and_forwarded_as_the_original() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    sfu.send_media(1, true);
    sfu.send_media(2, false);
    sfu.send_media(4, false);
    let first = sfu.take();
    let original = vp8_delta(3);
    sfu.produce_rtp(&producer_rtx(900, 3, &original));
    let out = sfu.take();
    assert_eq!(out.len(), 2, "to both consumers: {out:?}");
    for c in &sfu.consumers {
        let o = first.iter().find(|d| d.dest == c.remote && !d.is_rtcp()).unwrap().rtp().sequence_number;
        let d = out.iter().find(|d| d.dest == c.remote).unwrap();
        let h = d.rtp();
        assert_eq!(h.ssrc, c.ssrc, "the consumer's media SSRC, not RTX");
        assert_eq!(h.payload_type, c.pt);
        assert_eq!(h.sequence_number, o + 2, "in the slot of the original seq 3");
        assert_eq!(h.timestamp, 3 * 3000);
        assert_eq!(d.payload(), &original[..], "OSN stripped");
    }
    assert_eq!(sfu.producer().streams[0].packets_repaired, 1);
    for _ in 0..20 {
        sfu.advance(20);
        let out = sfu.take();
        assert!(nacks(&sfu, &out).is_empty(), "nothing missing any more");
    }
}

#[test]
fn consumer_nack_answered_with_rtx() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    let c = sfu.consumers[0].clone();
    for seq in 1..=5u16 {
        sfu.send_media(seq, seq == 1);
    }
    let sent = sfu.take_rtp_to(0);
    let lost = sent[2].clone();
    let lost_seq = lost.rtp().sequence_number;
    sfu.consumer_rtcp(0, &nack(0xCAFE, c.ssrc, &[lost_seq]));
    let out = sfu.take();
    assert_eq!(out.len(), 1, "{out:?}");
    let d = &out[0];
    assert_eq!((d.socket, d.dest), (c.socket, c.remote));
    let h = d.rtp();
    assert_eq!(h.ssrc, c.rtx_ssrc.unwrap());
    assert_eq!(h.payload_type, c.rtx_pt.unwrap());
    assert_eq!(h.timestamp, lost.rtp().timestamp);
    let payload = d.payload();
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), lost_seq, "OSN is the consumer's seq");
    assert_eq!(&payload[2..], lost.payload());
    // A second NACK gets the next RTX sequence number.
    sfu.consumer_rtcp(0, &nack(0xCAFE, c.ssrc, &[lost_seq]));
    let again = sfu.take();
    assert_eq!(again[0].rtp().sequence_number, h.sequence_number.wrapping_add(1));
    let snap = sfu.consumer(0);
    assert_eq!((snap.nacks_in, snap.retransmitted), (2, 2));
}

#[test]
fn consumer_nack_answered_plainly_without_rtx() {
    let mut sfu = Sfu::new(Options { consumers: 1, consumer_rtx: false, ..Options::default() });
    let c = sfu.consumers[0].clone();
    assert_eq!(c.rtx_ssrc, None);
    for seq in 1..=5u16 {
        sfu.send_media(seq, seq == 1);
    }
    let sent = sfu.take_rtp_to(0);
    let wanted: Vec<u16> = [1usize, 3].iter().map(|&k| sent[k].rtp().sequence_number).collect();
    sfu.consumer_rtcp(0, &nack(0xCAFE, c.ssrc, &wanted));
    let out = sfu.take();
    assert_eq!(out.len(), 2);
    for (d, k) in out.iter().zip([1usize, 3]) {
        assert_eq!(d.bytes, sent[k].bytes, "the very packet again");
    }
    assert_eq!(sfu.consumer(0).retransmitted, 2);
}

#[test]
fn consumer_nack_for_unknown_or_expired_packets_is_ignored() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    let c = sfu.consumers[0].clone();
    sfu.send_media(1, true);
    let o = sfu.take_rtp_to(0)[0].rtp().sequence_number;
    // Never sent.
    sfu.consumer_rtcp(0, &nack(0xCAFE, c.ssrc, &[o.wrapping_add(7)]));
    // Another SSRC.
    sfu.consumer_rtcp(0, &nack(0xCAFE, 0x7777, &[o]));
    assert!(sfu.take().is_empty());
    // Older than the retransmission buffer keeps packets.
    sfu.advance(2500);
    sfu.take();
    sfu.consumer_rtcp(0, &nack(0xCAFE, c.ssrc, &[o]));
    assert!(sfu.take().iter().all(|d| d.is_rtcp()));
    assert_eq!(sfu.consumer(0).retransmitted, 0);
}

#[test]
fn no_nack_without_nack_feedback() {
    let mut sfu =
        Sfu::new(Options { consumers: 1, feedback: Feedback::PliOnly, producer_rtx: false, ..Options::default() });
    sfu.start(1);
    sfu.send_media(5, false);
    sfu.advance(500);
    let out = sfu.take();
    assert!(nacks(&sfu, &out).is_empty());
}
