//! Our RTCP builders and parser against `rtc-rtcp`, the independent implementation: every packet
//! we build it must read back to the same values, and every packet it builds we must read.

use bytes::Bytes;
use rtc_rtcp::goodbye::Goodbye;
use rtc_rtcp::packet::{unmarshal, Packet};
use rtc_rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use rtc_rtcp::receiver_report::ReceiverReport;
use rtc_rtcp::reception_report::ReceptionReport;
use rtc_rtcp::sender_report::SenderReport;
use rtc_rtcp::source_description::{SdesType, SourceDescription, SourceDescriptionChunk, SourceDescriptionItem};
use rtc_rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
use rtc_shared::marshal::Marshal;
use shardsfu_engine::rtp::*;

fn theirs(buf: &[u8]) -> Vec<Box<dyn Packet>> {
    unmarshal(&mut &buf[..]).expect("rtc-rtcp parses our output")
}

fn ours(buf: &[u8]) -> Vec<RtcpItem<'_>> {
    let mut v = Vec::new();
    parse_compound(buf, |i| v.push(i)).expect("we parse it");
    v
}

fn block(i: u32) -> ReportBlock {
    ReportBlock {
        ssrc: 0x1000 + i,
        fraction_lost: 3 * i as u8,
        cumulative_lost: if i.is_multiple_of(2) { 1000 * i as i32 } else { -(i as i32) },
        ext_highest_seq: 0x0001_0000 + i,
        jitter: 77 * i,
        last_sr: 0xABCD_0000 | i,
        delay_since_last_sr: 65536 + i,
    }
}

fn to_reception(rb: &ReportBlock) -> ReceptionReport {
    ReceptionReport {
        ssrc: rb.ssrc,
        fraction_lost: rb.fraction_lost,
        total_lost: (rb.cumulative_lost as u32) & 0x00FF_FFFF,
        last_sequence_number: rb.ext_highest_seq,
        jitter: rb.jitter,
        last_sender_report: rb.last_sr,
        delay: rb.delay_since_last_sr,
    }
}

/// Simple deterministic generator, so failures reproduce.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
}

#[test]
fn sr_rr_built_by_us_read_by_them() {
    let mut out = [0u8; 1500];
    let blocks: Vec<_> = (0..3).map(block).collect();
    let info = SenderInfo { ssrc: 9, ntp_sec: 1, ntp_frac: 2, rtp_ts: 3, packet_count: 4, octet_count: 5 };
    let n = write_sr(&mut out, &info, &blocks).unwrap();
    let m = write_rr(&mut out[n..], 10, &blocks[..1]).unwrap();
    let pkts = theirs(&out[..n + m]);
    assert_eq!(pkts.len(), 2);
    let sr = pkts[0].as_any().downcast_ref::<SenderReport>().unwrap();
    assert_eq!((sr.ssrc, sr.ntp_time, sr.rtp_time, sr.packet_count, sr.octet_count), (9, (1 << 32) | 2, 3, 4, 5));
    assert_eq!(sr.reports, blocks.iter().map(to_reception).collect::<Vec<_>>());
    let rr = pkts[1].as_any().downcast_ref::<ReceiverReport>().unwrap();
    assert_eq!(rr.ssrc, 10);
    assert_eq!(rr.reports, vec![to_reception(&blocks[0])]);

    // and back through our parser, negative cumulative loss included
    let items = ours(&out[..n + m]);
    match &items[0] {
        RtcpItem::SenderReport { info: i, reports } => {
            assert_eq!(*i, info);
            assert_eq!(reports.clone().collect::<Vec<_>>(), blocks);
        }
        other => panic!("{other:?}"),
    }
    match &items[1] {
        RtcpItem::ReceiverReport { ssrc: 10, reports } => assert_eq!(reports.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sr_rr_built_by_them_read_by_us() {
    let blocks: Vec<_> = (0..5).map(block).collect();
    let sr = SenderReport {
        ssrc: 1,
        ntp_time: 0x1122_3344_5566_7788,
        rtp_time: 99,
        packet_count: 7,
        octet_count: 8,
        reports: blocks.iter().map(to_reception).collect(),
        profile_extensions: Bytes::new(),
    };
    let rr = ReceiverReport { ssrc: 2, reports: vec![to_reception(&blocks[4])], profile_extensions: Bytes::new() };
    let mut buf = sr.marshal().unwrap().to_vec();
    buf.extend_from_slice(&rr.marshal().unwrap());
    let items = ours(&buf);
    let RtcpItem::SenderReport { info, reports } = &items[0] else { panic!() };
    assert_eq!(
        *info,
        SenderInfo {
            ssrc: 1,
            ntp_sec: 0x1122_3344,
            ntp_frac: 0x5566_7788,
            rtp_ts: 99,
            packet_count: 7,
            octet_count: 8
        }
    );
    assert_eq!(reports.clone().collect::<Vec<_>>(), blocks);
    let RtcpItem::ReceiverReport { ssrc: 2, reports } = &items[1] else { panic!() };
    assert_eq!(reports.clone().next(), Some(blocks[4]));
}

#[test]
fn nack_round_trips_random_sets() {
    let mut rng = Lcg(42);
    let mut out = [0u8; 1500];
    for _ in 0..500 {
        let start = rng.next() as u16;
        let mut seqs = Vec::new();
        let mut s = start;
        for _ in 0..1 + rng.next() % 60 {
            s = s.wrapping_add(1 + (rng.next() % 24) as u16);
            seqs.push(s);
        }
        let n = write_nack(&mut out, 5, 6, &seqs).unwrap();
        let pkts = theirs(&out[..n]);
        let nack = pkts[0].as_any().downcast_ref::<TransportLayerNack>().unwrap();
        assert_eq!((nack.sender_ssrc, nack.media_ssrc), (5, 6));
        let theirs_seqs: Vec<u16> = nack.nacks.iter().flat_map(|p| p.packet_list()).collect();
        assert_eq!(theirs_seqs, seqs);
        let items = ours(&out[..n]);
        let RtcpItem::Nack { sender_ssrc: 5, media_ssrc: 6, pairs } = items[0].clone() else { panic!() };
        assert_eq!(pairs.seqs().collect::<Vec<_>>(), seqs);
    }
}

#[test]
fn nack_built_by_them_read_by_us() {
    let nack = TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: 2,
        nacks: vec![NackPair { packet_id: 65535, lost_packets: 0b101 }, NackPair { packet_id: 100, lost_packets: 0 }],
    };
    let buf = nack.marshal().unwrap();
    let items = ours(&buf);
    let RtcpItem::Nack { pairs, .. } = items[0].clone() else { panic!() };
    assert_eq!(pairs.clone().collect::<Vec<_>>(), vec![(65535, 0b101), (100, 0)]);
    assert_eq!(pairs.seqs().collect::<Vec<_>>(), vec![65535, 0, 2, 100]);
}

#[test]
fn pli_fir_bye_sdes_remb() {
    let mut out = [0u8; 1500];
    let mut n = write_pli(&mut out, 1, 2).unwrap();
    n += write_fir(&mut out[n..], 3, 4, 5).unwrap();
    n += write_bye(&mut out[n..], &[7, 8]).unwrap();
    n += write_sdes_cname(&mut out[n..], 9, b"user@host").unwrap();
    n += write_remb(&mut out[n..], 11, 1_500_000, &[12, 13]).unwrap();
    let pkts = theirs(&out[..n]);
    assert_eq!(pkts.len(), 5);
    let pli = pkts[0].as_any().downcast_ref::<PictureLossIndication>().unwrap();
    assert_eq!((pli.sender_ssrc, pli.media_ssrc), (1, 2));
    let fir = pkts[1].as_any().downcast_ref::<FullIntraRequest>().unwrap();
    assert_eq!((fir.sender_ssrc, fir.media_ssrc), (3, 0));
    assert_eq!(fir.fir, vec![FirEntry { ssrc: 4, sequence_number: 5 }]);
    let bye = pkts[2].as_any().downcast_ref::<Goodbye>().unwrap();
    assert_eq!(bye.sources, vec![7, 8]);
    let sdes = pkts[3].as_any().downcast_ref::<SourceDescription>().unwrap();
    assert_eq!(sdes.chunks[0].source, 9);
    assert_eq!(sdes.chunks[0].items[0].sdes_type, SdesType::SdesCname);
    assert_eq!(&sdes.chunks[0].items[0].text[..], b"user@host");
    let remb = pkts[4].as_any().downcast_ref::<ReceiverEstimatedMaximumBitrate>().unwrap();
    assert_eq!((remb.sender_ssrc, remb.ssrcs.clone()), (11, vec![12, 13]));
    assert!((remb.bitrate - 1_500_000.0).abs() < 8.0, "{}", remb.bitrate);

    let items = ours(&out[..n]);
    assert!(matches!(items[0], RtcpItem::Pli { sender_ssrc: 1, media_ssrc: 2 }));
    let RtcpItem::Fir { sender_ssrc: 3, entries } = items[1].clone() else { panic!() };
    assert_eq!(entries.collect::<Vec<_>>(), vec![(4, 5)]);
    let RtcpItem::Bye { ssrcs } = items[2].clone() else { panic!() };
    assert_eq!(ssrcs.collect::<Vec<_>>(), vec![7, 8]);
    let RtcpItem::Sdes { count, body } = items[3] else { panic!() };
    assert_eq!(sdes_cname(count, body), Some((9, &b"user@host"[..])));
    let RtcpItem::Remb { sender_ssrc: 11, bitrate_bps, ssrcs } = items[4].clone() else { panic!() };
    assert_eq!(bitrate_bps, 1_500_000);
    assert_eq!(ssrcs.collect::<Vec<_>>(), vec![12, 13]);
}

#[test]
fn sdes_fir_remb_built_by_them_read_by_us() {
    let sdes = SourceDescription {
        chunks: vec![SourceDescriptionChunk {
            source: 5,
            items: vec![
                SourceDescriptionItem { sdes_type: SdesType::SdesName, text: Bytes::from_static(b"n") },
                SourceDescriptionItem { sdes_type: SdesType::SdesCname, text: Bytes::from_static(b"abc") },
            ],
        }],
    };
    let fir = FullIntraRequest {
        sender_ssrc: 1,
        media_ssrc: 0,
        fir: vec![FirEntry { ssrc: 2, sequence_number: 3 }, FirEntry { ssrc: 4, sequence_number: 5 }],
    };
    let remb = ReceiverEstimatedMaximumBitrate { sender_ssrc: 1, bitrate: 8_388_608.0, ssrcs: vec![3] };
    let mut buf = sdes.marshal().unwrap().to_vec();
    buf.extend_from_slice(&fir.marshal().unwrap());
    buf.extend_from_slice(&remb.marshal().unwrap());
    let items = ours(&buf);
    let RtcpItem::Sdes { count, body } = items[0] else { panic!() };
    assert_eq!(sdes_cname(count, body), Some((5, &b"abc"[..])));
    let RtcpItem::Fir { entries, .. } = items[1].clone() else { panic!() };
    assert_eq!(entries.collect::<Vec<_>>(), vec![(2, 3), (4, 5)]);
    let RtcpItem::Remb { bitrate_bps, .. } = items[2] else { panic!() };
    assert_eq!(bitrate_bps, 8_388_608);
}

#[test]
fn malformed_stops_but_keeps_earlier_items() {
    let mut out = [0u8; 64];
    let n = write_pli(&mut out, 1, 2).unwrap();
    // a second packet whose length runs past the end
    out[n..n + 4].copy_from_slice(&[0x81, 201, 0, 10]);
    let mut got = 0;
    assert_eq!(parse_compound(&out[..n + 8], |_| got += 1), Err(RtcpError::BadLength));
    assert_eq!(got, 1);
    // bad version, truncated SR, bad padding, empty
    assert_eq!(parse_compound(&[0x40, 200, 0, 0], |_| ()), Err(RtcpError::BadVersion));
    assert_eq!(parse_compound(&[0x80, 200, 0, 1, 0, 0, 0, 1], |_| ()), Err(RtcpError::Truncated));
    assert_eq!(parse_compound(&[0xA0, 201, 0, 1, 0, 0, 0, 0], |_| ()), Err(RtcpError::BadPadding));
    assert_eq!(parse_compound(&[], |_| ()), Err(RtcpError::TooShort));
    assert_eq!(parse_compound(&[0x80, 201], |_| ()), Err(RtcpError::TooShort));
}

#[test]
fn builders_refuse_small_buffers() {
    let mut out = [0u8; 11];
    assert_eq!(write_pli(&mut out, 1, 2), Err(RtcpError::BufferTooSmall));
    assert_eq!(write_nack(&mut out, 1, 2, &[1]), Err(RtcpError::BufferTooSmall));
    let mut out = [0u8; 16];
    assert_eq!(write_nack(&mut out, 1, 2, &[1, 100]), Err(RtcpError::BufferTooSmall));
    assert_eq!(write_rr(&mut [0u8; 2000], 1, &[ReportBlock::default(); 32]), Err(RtcpError::TooManyEntries));
}

#[test]
fn receive_stats_block_goes_through_rr() {
    let t0 = std::time::Instant::now();
    let mut stats = ReceiveStats::new(90_000);
    for seq in (0u16..50).filter(|s| s % 7 != 3) {
        stats.on_packet(t0, seq, seq as u32 * 3000, 1000);
    }
    let rb = stats.report_block(t0, 0x55);
    let mut out = [0u8; 64];
    let n = write_rr(&mut out, 1, &[rb]).unwrap();
    let pkts = theirs(&out[..n]);
    let rr = pkts[0].as_any().downcast_ref::<ReceiverReport>().unwrap();
    assert_eq!(rr.reports[0].total_lost, 7);
    assert_eq!(rr.reports[0].last_sequence_number, 49);
    assert_eq!(rr.reports[0].fraction_lost, rb.fraction_lost);
}
