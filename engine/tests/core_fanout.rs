//! One packet in, one datagram per active consumer out: rewritten header, shared body.

mod common;

use common::*;
use shardsfu_engine::rtp_parameters::uri;

#[test]
fn one_packet_reaches_every_consumer_once() {
    let mut sfu = Sfu::new(Options { consumers: 3, ..Options::default() });
    let input = sfu.media(1000, true).marker().ts(0xDEAD_BEEF);
    sfu.produce_rtp(&input);
    let out = sfu.take();
    assert_eq!(out.len(), 3, "one datagram per consumer: {out:?}");
    let input_bytes = input.build();
    let input_hdr = shardsfu_engine::rtp::parse_rtp(&input_bytes).unwrap();
    for c in &sfu.consumers {
        let mine: Vec<_> = out.iter().filter(|d| d.dest == c.remote).collect();
        assert_eq!(mine.len(), 1, "consumer {} gets exactly one datagram", c.id);
        let d = mine[0];
        assert_eq!(d.socket, c.socket, "sent from the consumer's transport socket");
        let h = d.rtp();
        assert_eq!(h.ssrc, c.ssrc);
        assert_eq!(h.payload_type, c.pt, "router payload type");
        assert_eq!(h.timestamp, 0xDEAD_BEEF);
        assert!(h.marker);
        assert_eq!(h.payload(&d.bytes), input_hdr.payload(&input_bytes));
    }
    // The body is the producer's payload, shared: every consumer's body points at the same bytes.
    let addrs: Vec<usize> = out.iter().map(|d| d.body_addr).collect();
    assert!(addrs[0] != 0 && addrs.iter().all(|&a| a == addrs[0]), "one shared body: {addrs:?}");
    let bodies: Vec<&[u8]> = out.iter().map(|d| &d.bytes[d.head_len..]).collect();
    assert!(bodies.iter().all(|b| *b == bodies[0]));
}

#[test]
fn output_sequence_is_continuous_and_timestamps_kept() {
    let mut sfu = Sfu::new(Options::default());
    sfu.send_media(500, true);
    for seq in 501..520u16 {
        sfu.send_media(seq, false);
    }
    for i in 0..sfu.consumers.len() {
        let sent = {
            let dest = sfu.consumers[i].remote;
            sfu.sink.datagrams.iter().filter(|d| d.dest == dest).map(|d| d.rtp()).collect::<Vec<_>>()
        };
        assert_eq!(sent.len(), 20);
        for (k, pair) in sent.windows(2).enumerate() {
            assert_eq!(pair[1].sequence_number, pair[0].sequence_number.wrapping_add(1), "at {k}");
        }
        for (k, h) in sent.iter().enumerate() {
            assert_eq!(h.timestamp, (500 + k as u32) * 3000, "timestamps untouched");
        }
    }
    let c = sfu.consumer(0);
    assert_eq!(c.packets, 20);
    assert_eq!(sfu.producer().packets, 20);
}

#[test]
fn mid_written_and_extensions_mapped_to_router_ids() {
    let mut sfu = Sfu::new(Options::default());
    let input = sfu
        .media(7, true)
        .ext(P_EXT_MID, b"p0")
        .ext(P_EXT_ABS_SEND_TIME, &[1, 2, 3])
        .ext(P_EXT_TCC, &[0, 42])
        .ext(P_EXT_VIDEO_ORIENTATION, &[3])
        .ext(P_EXT_TOFFSET, &[9, 9, 9]);
    sfu.produce_rtp(&input);
    let out = sfu.take();
    assert_eq!(out.len(), 2);
    let (mid_id, orientation_id, toffset_id) =
        (sfu.router_ext(uri::MID), sfu.router_ext(uri::VIDEO_ORIENTATION), sfu.router_ext(uri::TOFFSET));
    assert_ne!(orientation_id, P_EXT_VIDEO_ORIENTATION, "the test needs ids that differ");
    for c in &sfu.consumers {
        let d = out.iter().find(|d| d.dest == c.remote).unwrap();
        assert_eq!(d.ext(mid_id), Some(c.mid.as_bytes().to_vec()), "the consumer's own MID");
        assert_eq!(d.ext(orientation_id), Some(vec![3]));
        assert_eq!(d.ext(toffset_id), Some(vec![9, 9, 9]));
        let mut ids = d.ext_ids();
        ids.sort_unstable();
        let mut want = vec![mid_id, orientation_id, toffset_id];
        want.sort_unstable();
        assert_eq!(ids, want, "transport-cc, abs-send-time and the producer's MID are not forwarded");
    }
}

#[test]
fn extensions_the_consumer_did_not_negotiate_are_dropped() {
    let mut sfu = Sfu::new(Options { consumers: 0, ..Options::default() });
    // A consumer whose endpoint knows no header extension but MID.
    let mut params = consumer_params(&sfu.consumable, &sfu.caps, true, 0x2000_0000, "x");
    let mid_id = sfu.router_ext(uri::MID);
    params.header_extensions.as_mut().unwrap().retain(|e| e.id == mid_id);
    let transport = sfu.fresh_id();
    let id = sfu.fresh_id();
    let now = sfu.now;
    sfu.shard.create_plain_transport(now, ROUTER, transport, plain(300, 12_000, false)).unwrap();
    sfu.shard.connect_plain_transport(transport, addr(22_000), None).unwrap();
    let spec = shardsfu_engine::core::ConsumerSpec { producer: PRODUCER, rtp_parameters: params, paused: false };
    sfu.shard.consume(now, transport, id, spec).unwrap();
    let input = sfu.media(1, true).ext(P_EXT_VIDEO_ORIENTATION, &[3]).ext(P_EXT_TOFFSET, &[1, 1, 1]);
    sfu.produce_rtp(&input);
    let out = sfu.take();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ext_ids(), vec![mid_id]);
    assert_eq!(out[0].ext(mid_id), Some(b"x".to_vec()));
}

#[test]
fn audio_mapped_and_not_gated_by_key_frames() {
    let mut sfu = Sfu::new(Options::audio());
    let level_id = sfu.router_ext(uri::AUDIO_LEVEL);
    for seq in 10..15u16 {
        let rtp = sfu.media(seq, false).ext(P_EXT_AUDIO_LEVEL, &[0x85]).ext(P_EXT_ABS_SEND_TIME, &[0, 0, 1]);
        sfu.produce_rtp(&rtp);
    }
    let out = sfu.take();
    assert_eq!(out.len(), 10);
    for c in &sfu.consumers {
        let mine: Vec<_> = out.iter().filter(|d| d.dest == c.remote).collect();
        assert_eq!(mine.len(), 5);
        for d in &mine {
            assert_eq!(d.rtp().payload_type, c.pt);
            assert_eq!(d.ext(level_id), Some(vec![0x85]));
            assert_eq!(d.ext(sfu.router_ext(uri::ABS_SEND_TIME)), None);
        }
    }
    assert_eq!(sfu.shard.drops().total(), 0);
}

#[test]
fn inactive_consumers_get_nothing() {
    let mut sfu = Sfu::new(Options { consumers: 3, ..Options::default() });
    let paused = sfu.consumers[1].id;
    sfu.shard.pause_consumer(paused).unwrap();
    sfu.send_media(1, true);
    let out = sfu.take();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|d| d.dest != sfu.consumers[1].remote));
    assert_eq!(sfu.shard.drops().consumer_inactive, 1);
}

#[test]
fn padding_travels_with_the_body() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    let input = sfu.media(1, true).padding(4);
    sfu.produce_rtp(&input);
    let out = sfu.take();
    assert_eq!(out.len(), 1);
    let h = out[0].rtp();
    assert!(h.padding);
    assert_eq!(h.padding_len, 4);
    assert_eq!(h.payload(&out[0].bytes), &vp8_key(1)[..]);
}
