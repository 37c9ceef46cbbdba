//! Periodic RTCP: sender reports to consumers' endpoints, receiver reports to the producer's,
//! and the round-trip time learned from consumers' receiver reports.

mod common;

use std::time::Duration;

use common::*;
use shardsfu_engine::core::RTCP_INTERVAL;
use shardsfu_engine::rtp::rtcp::{ReportBlock, SenderInfo};
use shardsfu_engine::rtp::NtpTime;

/// The NTP time the harness's shard clock reads at `ms` after `t0`.
fn ntp_at(ms: u64) -> NtpTime {
    NtpTime::from_unix(Duration::from_secs(1_700_000_000) + Duration::from_millis(ms))
}

fn interval_ms() -> u64 {
    RTCP_INTERVAL.as_millis() as u64
}

#[test]
fn sender_report_per_consumer_with_counts() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    let mut payload_bytes = 0u32;
    for seq in 1..=10u16 {
        let rtp = sfu.media(seq, seq == 1);
        payload_bytes += rtp.payload.len() as u32;
        sfu.produce_rtp(&rtp);
    }
    sfu.advance(interval_ms() - 20);
    assert!(sfu.take().iter().all(|d| !d.is_rtcp() || d.dest == sfu.producer_remote), "no SR before the interval");
    sfu.advance(20);
    let now_ms = sfu.elapsed_ms();
    let out = sfu.take();
    for c in &sfu.consumers {
        let items: Vec<Rtcp> =
            out.iter().filter(|d| d.dest == c.remote && d.socket == c.socket).flat_map(|d| d.rtcp()).collect();
        // One SR, followed by the SDES CNAME chunk (RFC 3550 6.1).
        let [Rtcp::Sr { info, blocks }, Rtcp::Other { pt: 202, .. }] = &items[..] else {
            panic!("one SR with its SDES for consumer {}: {items:?}", c.id)
        };
        assert!(blocks.is_empty());
        assert_eq!(info.ssrc, c.ssrc);
        assert_eq!(info.packet_count, 10);
        assert_eq!(info.octet_count, payload_bytes, "RFC 3550: payload octets, headers excluded");
        let ntp = ntp_at(now_ms);
        assert_eq!((info.ntp_sec, info.ntp_frac), (ntp.sec, ntp.frac));
        // The last packet (ts 30000) went out at t0; the SR extrapolates at 90 kHz.
        assert_eq!(info.rtp_ts, 10 * 3000 + 90 * now_ms as u32);
    }
}

#[test]
fn consumer_without_packets_gets_no_sender_report() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.advance(interval_ms() + 20);
    let out = sfu.take();
    assert!(out.iter().all(|d| d.dest != sfu.consumers[0].remote), "{out:?}");
}

#[test]
fn receiver_report_for_the_producer_stream() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    for seq in (100..=200u16).filter(|s| s % 10 != 5) {
        sfu.send_media(seq, seq == 100);
    }
    sfu.take();
    sfu.advance(interval_ms());
    let out = sfu.take();
    let rrs: Vec<(u32, Vec<ReportBlock>)> = sfu
        .rtcp_to_producer(&out)
        .into_iter()
        .filter_map(|i| match i {
            Rtcp::Rr { ssrc, blocks } => Some((ssrc, blocks)),
            _ => None,
        })
        .collect();
    assert_eq!(rrs.len(), 1, "{out:?}");
    let (_, blocks) = &rrs[0];
    assert_eq!(blocks.len(), 1);
    let b = blocks[0];
    assert_eq!(b.ssrc, PRODUCER_SSRC);
    assert_eq!(b.ext_highest_seq, 200);
    assert_eq!(b.cumulative_lost, 10);
    assert_eq!(b.fraction_lost, (10 * 256 / 101) as u8);
    assert_eq!((b.last_sr, b.delay_since_last_sr), (0, 0), "no SR from the producer yet");
    // The next interval has no new loss.
    sfu.send_media(201, false);
    sfu.advance(interval_ms());
    let out = sfu.take();
    let b = sfu
        .rtcp_to_producer(&out)
        .into_iter()
        .find_map(|i| match i {
            Rtcp::Rr { blocks, .. } => Some(blocks[0]),
            _ => None,
        })
        .expect("a second RR one interval later");
    assert_eq!((b.fraction_lost, b.cumulative_lost, b.ext_highest_seq), (0, 10, 201));
}

#[test]
fn receiver_report_carries_lsr_and_dlsr_of_the_producer_sr() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.send_media(1, true);
    sfu.advance(500);
    let their_ntp = NtpTime { sec: 0x1234_5678, frac: 0x9abc_def0 };
    let info = SenderInfo {
        ssrc: PRODUCER_SSRC,
        ntp_sec: their_ntp.sec,
        ntp_frac: their_ntp.frac,
        rtp_ts: 3000,
        packet_count: 1,
        octet_count: 10,
    };
    sfu.producer_rtcp(&sr(&info));
    sfu.take();
    sfu.advance(interval_ms() - 500);
    let out = sfu.take();
    let b = sfu
        .rtcp_to_producer(&out)
        .into_iter()
        .find_map(|i| match i {
            Rtcp::Rr { blocks, .. } => Some(blocks[0]),
            _ => None,
        })
        .expect("RR");
    assert_eq!(b.last_sr, their_ntp.mid32());
    assert_eq!(b.delay_since_last_sr, 32768, "500 ms in 1/65536 s");
}

#[test]
fn rtt_from_consumer_receiver_report() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.start(1);
    sfu.advance(interval_ms());
    let sr_ms = sfu.elapsed_ms();
    let out = sfu.take();
    let c = sfu.consumers[0].clone();
    let info = out
        .iter()
        .filter(|d| d.dest == c.remote)
        .flat_map(|d| d.rtcp())
        .find_map(|i| match i {
            Rtcp::Sr { info, .. } => Some(info),
            _ => None,
        })
        .expect("SR");
    assert_eq!(NtpTime { sec: info.ntp_sec, frac: info.ntp_frac }, ntp_at(sr_ms));
    // The endpoint got the SR 25 ms later, held it 100 ms, and its RR takes 25 ms back.
    sfu.advance(150);
    let block = ReportBlock {
        ssrc: c.ssrc,
        fraction_lost: 12,
        cumulative_lost: 3,
        ext_highest_seq: 1,
        jitter: 0,
        last_sr: NtpTime { sec: info.ntp_sec, frac: info.ntp_frac }.mid32(),
        delay_since_last_sr: 65536 / 10,
    };
    sfu.consumer_rtcp(0, &rr(0xFEED, &[block]));
    let snap = sfu.consumer(0);
    assert!((snap.rtt_ms - 50.0).abs() < 1.0, "rtt {} ms", snap.rtt_ms);
    assert_eq!(snap.fraction_lost, 12);
}

#[test]
fn reports_repeat_every_interval() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.send_media(1, true);
    sfu.take();
    let mut sr_times = Vec::new();
    for _ in 0..(3 * interval_ms() / 20) {
        sfu.advance(20);
        let out = sfu.take();
        let dest = sfu.consumers[0].remote;
        if out.iter().any(|d| d.dest == dest && d.is_rtcp()) {
            sr_times.push(sfu.elapsed_ms());
        }
    }
    assert_eq!(sr_times, vec![interval_ms(), 2 * interval_ms(), 3 * interval_ms()]);
}

/// The REMBs (bitrate, SSRCs) sent to the producer's endpoint in `out`.
fn rembs_to_producer(sfu: &Sfu, out: &[Datagram]) -> Vec<(u64, Vec<u32>)> {
    let mut found = Vec::new();
    for d in out.iter().filter(|d| d.dest == sfu.producer_remote && d.is_rtcp()) {
        shardsfu_engine::rtp::parse_compound(&d.bytes, |item| {
            if let shardsfu_engine::rtp::RtcpItem::Remb { bitrate_bps, ssrcs, .. } = item {
                found.push((bitrate_bps, ssrcs.collect()));
            }
        })
        .expect("valid RTCP");
    }
    found
}

#[test]
fn max_incoming_bitrate_is_sent_as_remb_with_each_report() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.send_media(1, true);
    sfu.advance(interval_ms());
    let out = sfu.take();
    assert!(rembs_to_producer(&sfu, &out).is_empty(), "no limit, no REMB");

    sfu.shard.set_max_incoming_bitrate(PRODUCER_TRANSPORT, 300_000).unwrap();
    for _ in 0..2 {
        sfu.advance(interval_ms());
        let out = sfu.take();
        assert_eq!(rembs_to_producer(&sfu, &out), vec![(300_000, vec![PRODUCER_SSRC])]);
    }
    // 0 lifts it.
    sfu.shard.set_max_incoming_bitrate(PRODUCER_TRANSPORT, 0).unwrap();
    sfu.advance(interval_ms());
    let out = sfu.take();
    assert!(rembs_to_producer(&sfu, &out).is_empty());
    // An unknown transport is refused.
    let err = sfu.shard.set_max_incoming_bitrate(999, 1).unwrap_err();
    assert_eq!(err.kind(), shardsfu_engine::ErrorKind::InvalidStateError);
}
