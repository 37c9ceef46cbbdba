//! Periodic RTCP: sender reports to consumers' endpoints, receiver reports and NACKs to
//! producers' endpoints, receiver reports from consumers' endpoints into consumer stats.

use shardsfu_tests::shardsfu_engine::block_on;
use shardsfu_tests::shardsfu_engine::rtp::{write_rr, ReportBlock, RtcpItem};
use shardsfu_tests::*;

const SSRC: u32 = 4444;
const RECEIVER_SSRC: u32 = 0x5eed;

#[test]
fn receiver_gets_sender_reports_with_forwarded_counts() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    let (_t, consumer, receiver) = consumer(&router, &producer);
    let ssrc = wire_of(&consumer).ssrc;

    let mut payload_octets = 0;
    for i in 0..12u16 {
        let body = vec![i as u8; 100 + usize::from(i)];
        let p = vp8(1000 + i, SSRC, i == 0, &body);
        payload_octets += p.len() - 12;
        sender.send(&p).unwrap();
    }
    let got = recv_rtp_n(&receiver, 12, ARRIVAL);
    assert_eq!(got.len(), 12);
    assert_eq!(got.iter().map(|p| payload_of(p).len()).sum::<usize>(), payload_octets);
    let last_ts = ts_of(&got[11]);

    let mut sr = None;
    assert!(
        recv_rtcp_item(&receiver, ARRIVAL, |i| match i {
            RtcpItem::SenderReport { info, .. } if info.ssrc == ssrc => {
                sr = Some(*info);
                true
            }
            _ => false,
        }),
        "an SR for the consumer's SSRC"
    );
    let sr = sr.unwrap();
    assert_eq!(sr.packet_count, 12);
    assert_eq!(sr.octet_count as usize, payload_octets, "RFC 3550: payload octets, headers excluded");
    assert!(sr.rtp_ts.wrapping_sub(last_ts) < 90_000 * 10, "RTP time of the SR follows the stream");
    assert!(sr.ntp_sec > 2_208_988_800, "NTP time is wall clock (after 1970)");

    // The receiver's report shows up in the consumer's stats.
    let block =
        ReportBlock { ssrc, fraction_lost: 64, ext_highest_seq: u32::from(seq_of(&got[11])), ..Default::default() };
    receiver.send(&rtcp_bytes(|b| write_rr(b, RECEIVER_SSRC, &[block]))).unwrap();
    assert!(wait_for(ARRIVAL, || block_on(consumer.get_stats()).unwrap()[0]["fractionLost"] == 64));
    engine.close();
}

#[test]
fn sender_gets_receiver_reports() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let _producer = produce_vp8(&ingest, SSRC, None);
    for seq in 200..210u16 {
        sender.send(&vp8(seq, SSRC, seq == 200, b"rr")).unwrap();
    }
    let mut block = None;
    assert!(
        recv_rtcp_item(&sender, ARRIVAL, |i| match i {
            RtcpItem::ReceiverReport { reports, .. } => {
                block = reports.clone().find(|b| b.ssrc == SSRC);
                block.is_some()
            }
            _ => false,
        }),
        "an RR with a block for the producer's SSRC"
    );
    let block = block.unwrap();
    assert_eq!(block.ext_highest_seq & 0xffff, 209);
    assert_eq!(block.cumulative_lost, 0);
    assert_eq!(block.fraction_lost, 0);
    engine.close();
}

#[test]
fn sender_gets_a_nack_for_a_skipped_sequence_number() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    for seq in (400..410u16).filter(|&s| s != 405) {
        sender.send(&vp8(seq, SSRC, seq == 400, b"nack me")).unwrap();
    }
    let mut nacked = Vec::new();
    assert!(
        recv_rtcp_item(&sender, ARRIVAL, |i| match i {
            RtcpItem::Nack { media_ssrc, pairs, .. } if *media_ssrc == SSRC => {
                nacked.extend(pairs.clone().seqs());
                true
            }
            _ => false,
        }),
        "a NACK for the producer's SSRC"
    );
    assert_eq!(nacked, vec![405]);
    // The NACK can leave as soon as 406 shows the gap, before 407..409 are read: wait for them.
    let count = || block_on(producer.get_stats()).unwrap()[0]["packetCount"].clone();
    assert!(wait_for(ARRIVAL, || count() == 9), "9 packets counted, got {}", count());
    engine.close();
}
