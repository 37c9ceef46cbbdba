//! RTP/RTCP packet layer micro-benchmarks, each next to its baseline from webrtc-rs measured in
//! the same run: our zero-copy RTP view vs `rtc_rtp::packet::Packet::unmarshal`, our RTCP
//! compound parser vs `rtc_rtcp::packet::unmarshal`, and the per-consumer header rewrite.
//!
//! `cargo bench --bench rtp -- --quick`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rtc_shared::marshal::Unmarshal;
use shardsfu_engine::rtp::*;

/// A typical forwarded video packet: one-byte extensions (mid, abs-send-time, transport-wide cc,
/// video orientation), 1100 bytes of payload.
fn video_packet() -> Vec<u8> {
    let mut ext = ExtensionsBuilder::new();
    ext.push(1, b"0").unwrap();
    ext.push(3, &[0x12, 0x34, 0x56]).unwrap();
    ext.push(5, &[0x01, 0x02]).unwrap();
    ext.push(13, &[0x01]).unwrap();
    let (profile, block) = ext.finish();
    let mut v = vec![0x90, 0x80 | 96, 0x12, 0x34, 0, 1, 0x5F, 0x90, 0xDE, 0xAD, 0xBE, 0xEF];
    v.extend_from_slice(&profile.to_be_bytes());
    v.extend_from_slice(&((block.len() / 4) as u16).to_be_bytes());
    v.extend_from_slice(block);
    v.extend((0..1100).map(|i| i as u8));
    v
}

/// A typical receiver-side compound: RR with 2 report blocks, SDES CNAME, NACK, PLI.
fn rtcp_compound() -> Vec<u8> {
    let mut out = vec![0u8; 1500];
    let rb = ReportBlock {
        ssrc: 1,
        fraction_lost: 10,
        cumulative_lost: 100,
        ext_highest_seq: 70000,
        jitter: 30,
        last_sr: 5,
        delay_since_last_sr: 6,
    };
    let mut n = write_rr(&mut out, 9, &[rb, rb]).unwrap();
    n += write_sdes_cname(&mut out[n..], 9, b"0123456789abcdef").unwrap();
    n += write_nack(&mut out[n..], 9, 1, &[100, 101, 105, 140]).unwrap();
    n += write_pli(&mut out[n..], 9, 1).unwrap();
    out.truncate(n);
    out
}

fn rtp(c: &mut Criterion) {
    let pkt = video_packet();
    let mut g = c.benchmark_group("rtp_parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("shardsfu_view", |b| {
        b.iter(|| {
            let h = parse_rtp(black_box(&pkt)).unwrap();
            black_box(h.extension(&pkt, 3));
            black_box(h.payload(&pkt).len())
        })
    });
    // rtc-rtp reads from a `Bytes`; cloning one is a refcount increment, so no copy of the
    // datagram is charged to it here (a receive path would pay one to make the `Bytes`).
    let shared_pkt = bytes::Bytes::from(pkt.clone());
    g.bench_function("rtc_rtp_unmarshal", |b| {
        b.iter(|| {
            let mut buf = black_box(&shared_pkt).clone();
            let p = rtc_rtp::packet::Packet::unmarshal(&mut buf).unwrap();
            black_box(p.header.get_extension(3));
            black_box(p.payload.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("rtp_rewrite");
    g.throughput(Throughput::Elements(1));
    let hdr = parse_rtp(&pkt).unwrap();
    // Built once per input packet: the extensions every consumer shares.
    let mut shared = ExtensionsBuilder::new();
    shared.push(3, hdr.extension(&pkt, 3).unwrap()).unwrap();
    shared.push(5, hdr.extension(&pkt, 5).unwrap()).unwrap();
    let mut head = [0u8; MAX_HEADER_LEN];
    let mut seq = 0u16;
    g.bench_function("write_header_2ext_plus_mid", |b| {
        b.iter(|| {
            // Per consumer: clone the shared block, add its MID, write the header.
            let mut ext = black_box(&shared).clone();
            ext.push(1, b"1").unwrap();
            seq = seq.wrapping_add(1);
            let fields = HeaderFields { payload_type: 101, sequence_number: seq, timestamp: 9, ssrc: 77, marker: true };
            let n = write_header(&mut head, &pkt, &hdr, &fields, Some(&ext)).unwrap();
            black_box(&head[..n]);
            black_box(hdr.body(&pkt).len())
        })
    });
    g.bench_function("rewrite_in_place", |b| {
        let mut buf = pkt.clone();
        b.iter(|| {
            seq = seq.wrapping_add(1);
            let fields = HeaderFields { payload_type: 101, sequence_number: seq, timestamp: 9, ssrc: 77, marker: true };
            rewrite_in_place(black_box(&mut buf), &hdr, &fields).unwrap();
        })
    });
    g.finish();

    let compound = rtcp_compound();
    let mut g = c.benchmark_group("rtcp_parse_compound");
    g.throughput(Throughput::Elements(1));
    g.bench_function("shardsfu", |b| {
        b.iter(|| {
            let mut nacked = 0usize;
            parse_compound(black_box(&compound), |item| {
                if let RtcpItem::Nack { pairs, .. } = item {
                    nacked += pairs.seqs().count();
                }
            })
            .unwrap();
            black_box(nacked)
        })
    });
    g.bench_function("rtc_rtcp_unmarshal", |b| {
        b.iter(|| {
            let pkts = rtc_rtcp::packet::unmarshal(&mut black_box(&compound[..])).unwrap();
            black_box(pkts.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("rtcp_build_nack");
    g.throughput(Throughput::Elements(1));
    let seqs: Vec<u16> = (0..40).map(|i| 1000 + i * 3).collect();
    let mut out = [0u8; 1500];
    g.bench_function("shardsfu_write_nack_40", |b| {
        b.iter(|| write_nack(black_box(&mut out), 1, 2, black_box(&seqs)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, rtp);
criterion_main!(benches);
