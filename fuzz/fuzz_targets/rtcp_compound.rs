//! RTCP compound: parse anything without panicking; re-build what parses (SR, RR, NACK, PLI,
//! FIR, BYE) with our writers and check it parses back to the same values.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use shardsfu_engine::rtp::*;

fn one(buf: &[u8]) -> RtcpItem<'_> {
    let mut got = None;
    parse_compound(buf, |i| {
        assert!(got.is_none(), "one packet written, one item read");
        got = Some(i);
    })
    .expect("our own packet parses");
    got.expect("one item")
}

fuzz_target!(|data: &[u8]| {
    let mut out = vec![0u8; 64 + 2 * data.len()];
    let _ = parse_compound(data, |item| match item {
        RtcpItem::SenderReport { info, reports } => {
            let blocks: Vec<ReportBlock> = reports.collect();
            let n = write_sr(&mut out, &info, &blocks).expect("31 blocks at most");
            let RtcpItem::SenderReport { info: i2, reports: r2 } = one(&out[..n]) else { panic!() };
            assert_eq!(i2, info);
            assert!(r2.eq(blocks.iter().copied()));
        }
        RtcpItem::ReceiverReport { ssrc, reports } => {
            let blocks: Vec<ReportBlock> = reports.collect();
            let n = write_rr(&mut out, ssrc, &blocks).expect("31 blocks at most");
            let RtcpItem::ReceiverReport { ssrc: s2, reports: r2 } = one(&out[..n]) else { panic!() };
            assert_eq!(s2, ssrc);
            assert!(r2.eq(blocks.iter().copied()));
        }
        RtcpItem::Nack { sender_ssrc, media_ssrc, pairs } => {
            let seqs: Vec<u16> = pairs.seqs().collect();
            if seqs.is_empty() {
                return;
            }
            let n = write_nack(&mut out, sender_ssrc, media_ssrc, &seqs).expect("room for 2 pairs per pair");
            let RtcpItem::Nack { sender_ssrc: s2, media_ssrc: m2, pairs: p2 } = one(&out[..n]) else { panic!() };
            assert_eq!((s2, m2), (sender_ssrc, media_ssrc));
            let want: BTreeSet<u16> = seqs.into_iter().collect();
            let got: BTreeSet<u16> = p2.seqs().collect();
            assert_eq!(got, want);
        }
        RtcpItem::Pli { sender_ssrc, media_ssrc } => {
            let n = write_pli(&mut out, sender_ssrc, media_ssrc).unwrap();
            assert!(matches!(one(&out[..n]), RtcpItem::Pli { sender_ssrc: s, media_ssrc: m }
                if s == sender_ssrc && m == media_ssrc));
        }
        RtcpItem::Fir { sender_ssrc, entries } => {
            for (ssrc, seq_nr) in entries {
                let n = write_fir(&mut out, sender_ssrc, ssrc, seq_nr).unwrap();
                let RtcpItem::Fir { sender_ssrc: s2, entries: e2 } = one(&out[..n]) else { panic!() };
                assert_eq!(s2, sender_ssrc);
                assert!(e2.eq([(ssrc, seq_nr)]));
            }
        }
        RtcpItem::Bye { ssrcs } => {
            let v: Vec<u32> = ssrcs.collect();
            let n = write_bye(&mut out, &v).expect("31 sources at most");
            let RtcpItem::Bye { ssrcs: s2 } = one(&out[..n]) else { panic!() };
            assert!(s2.eq(v.iter().copied()));
        }
        RtcpItem::Sdes { count, body } => {
            if let Some((ssrc, cname)) = sdes_cname(count, body) {
                let n = write_sdes_cname(&mut out, ssrc, cname).unwrap();
                let RtcpItem::Sdes { count: c2, body: b2 } = one(&out[..n]) else { panic!() };
                assert_eq!(sdes_cname(c2, b2), Some((ssrc, cname)));
            }
        }
        _ => {}
    });
});
