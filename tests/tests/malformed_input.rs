//! Bad datagrams are dropped and counted by reason in `Engine::dump()`; media keeps flowing.

use shardsfu_tests::shardsfu_engine::{block_on, Engine};
use shardsfu_tests::*;

const SSRC: u32 = 8888;
const RTX_SSRC: u32 = 8889;

/// Send `datagram` from `from` and check that exactly the counter `reason` moved, by one.
fn expect_drop(engine: &Engine, from: &std::net::UdpSocket, datagram: &[u8], reason: &str) {
    let before = block_on(engine.dump()).unwrap()["shards"][0]["drops"].clone();
    from.send(datagram).unwrap();
    let want = before[reason].as_u64().unwrap() + 1;
    assert_eq!(wait_drops(engine, 0, reason, want), want, "{datagram:02x?} counted as {reason}");
    let after = block_on(engine.dump()).unwrap()["shards"][0]["drops"].clone();
    for (name, value) in after.as_object().unwrap() {
        if name != reason {
            assert_eq!(*value, before[name], "{datagram:02x?} moved {name} too");
        }
    }
}

#[test]
fn malformed_datagrams_are_counted_by_reason_and_media_keeps_flowing() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, Some(RTX_SSRC));
    let (out, consumer, receiver) = consumer(&router, &producer);
    let wire = wire_of(&consumer);
    let mut seq = 100u16;
    let mut next = |key: bool| {
        seq += 1;
        vp8(seq, SSRC, key, b"good media")
    };
    sender.send(&next(true)).unwrap();
    let first = recv_rtp_n(&receiver, 1, ARRIVAL);
    assert_eq!(first.len(), 1);

    // Not RTP or RTCP at all.
    expect_drop(&engine, &sender, &[0xff, 0x00, 0x13, 0x37, 0x42], "unknown_protocol");
    expect_drop(&engine, &sender, &[0x80], "unknown_protocol");
    expect_drop(&engine, &sender, &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42], "unknown_protocol"); // STUN
    expect_drop(&engine, &sender, &[0x16, 0xfe, 0xfd, 0, 0, 0, 0], "unknown_protocol"); // DTLS
                                                                                        // Bad RTP version (1 and 3): not RTP by the first byte.
    let mut v1 = vp8(500, SSRC, false, b"v1");
    v1[0] = 0x40;
    expect_drop(&engine, &sender, &v1, "unknown_protocol");
    v1[0] = 0xc0;
    expect_drop(&engine, &sender, &v1, "unknown_protocol");

    // Truncated or inconsistent RTP headers.
    expect_drop(&engine, &sender, &[0x80, 96, 0, 1, 0, 0, 0, 1], "malformed_rtp");
    let mut csrcs = vp8(501, SSRC, false, b"");
    csrcs[0] = 0x8f; // 15 CSRCs announced, none there
    expect_drop(&engine, &sender, &csrcs, "malformed_rtp");
    let mut ext = vp8(502, SSRC, false, b"");
    ext[0] = 0x90; // extension bit; its length points past the end
    ext.truncate(12);
    ext.extend_from_slice(&[0xbe, 0xde, 0x00, 0x20, 0x10, 0xaa]);
    expect_drop(&engine, &sender, &ext, "malformed_rtp");
    let mut padding = vp8(503, SSRC, false, b"pad");
    padding[0] |= 0x20;
    *padding.last_mut().unwrap() = 200; // more padding than payload
    expect_drop(&engine, &sender, &padding, "malformed_rtp");

    // Well-formed RTP the router has no use for.
    expect_drop(&engine, &sender, &vp8(504, 0x0bad_55c0, true, b"who?"), "producer_not_found");
    expect_drop(&engine, &sender, &rtp(111, 505, 0, SSRC, true, b"opus?"), "unknown_payload_type");
    let mut short_rtx = rtp(97, 1, 0, RTX_SSRC, false, &[]);
    short_rtx.truncate(13); // one byte: no room for the original sequence number
    expect_drop(&engine, &sender, &short_rtx, "malformed_rtx");

    // Malformed RTCP: a length past the datagram, a bad version, a truncated report.
    expect_drop(&engine, &sender, &[0x80, 200, 0x00, 0x28, 0, 0, 0, 1], "malformed_rtcp");
    expect_drop(&engine, &receiver, &[0x81, 201, 0x00, 0x07, 0, 0, 0, 1, 0, 0, 0, 2], "malformed_rtcp");
    expect_drop(&engine, &sender, &[0x40, 201, 0x00, 0x01, 0, 0, 0, 1], "unknown_protocol");

    // A valid packet from an address that is not the transport's remote.
    let stranger = client_to(ingest.local_addr());
    expect_drop(&engine, &stranger, &vp8(506, SSRC, true, b"spoof"), "unknown_source");
    let stranger = client_to(out.local_addr());
    expect_drop(&engine, &stranger, &vp8(507, SSRC, true, b"spoof"), "unknown_source");
    expect_drop(&engine, &stranger, &[0x81, 201, 0, 1, 0, 0, 0, 1], "unknown_source");
    assert!(recv_rtp_for(&receiver, std::time::Duration::from_millis(100)).is_empty(), "nothing bad forwarded");

    // A burst of pseudo-random datagrams (fixed seed) cannot hurt the shard either.
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let len = (x % 64) as usize;
        let datagram: Vec<u8> = (0..len).map(|i| (x >> ((i % 8) * 8)) as u8 ^ i as u8).collect();
        sender.send(&datagram).unwrap();
        receiver.send(&datagram).unwrap();
    }

    // Media keeps flowing, continuing the consumer's sequence.
    let good: Vec<Vec<u8>> = (0..5).map(|i| next(i == 0)).collect();
    for p in &good {
        sender.send(p).unwrap();
    }
    let got = recv_rtp_n(&receiver, 5, ARRIVAL);
    assert_eq!(got.len(), 5, "media flows after the bad input");
    for (i, p) in got.iter().enumerate() {
        assert_eq!(ssrc_of(p), wire.ssrc);
        assert_eq!(seq_of(p), seq_of(&first[0]).wrapping_add(1 + i as u16));
        assert_eq!(payload_of(p), payload_of(&good[i]));
    }
    let stats = block_on(consumer.get_stats()).unwrap();
    assert_eq!(stats[0]["packetCount"], 6);
    engine.close();
}
