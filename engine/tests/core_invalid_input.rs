//! Bad input never breaks the shard: every drop reason of the packet path is reached and
//! counted once, and every rejected control call leaves the shard as it was.

mod common;

use common::*;
use shardsfu_engine::core::{ConsumerSpec, DropCounters, ObjectId, PlainSpec, Shard};
use shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_engine::ErrorKind;
use shardsfu_net::SocketId;

/// A started stream to one connected consumer.
fn sfu() -> Sfu {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.start(1);
    sfu
}

/// Runs `action` and checks that exactly the counter `bump` names went up by one.
fn expect_drop(sfu: &mut Sfu, bump: impl Fn(&mut DropCounters), action: impl FnOnce(&mut Sfu)) {
    let mut want = *sfu.shard.drops();
    bump(&mut want);
    action(sfu);
    assert_eq!(*sfu.shard.drops(), want);
}

fn from_producer(sfu: &mut Sfu, bytes: &[u8]) {
    let src = sfu.producer_remote;
    sfu.recv(PRODUCER_SOCKET, src, bytes);
}

#[test]
fn unknown_socket() {
    let mut sfu = sfu();
    let rtp = sfu.media(2, false).build();
    expect_drop(&mut sfu, |d| d.unknown_socket += 1, |s| s.recv(SocketId(999), s.producer_remote, &rtp));
}

#[test]
fn unknown_protocol() {
    let mut sfu = sfu();
    let stun = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    expect_drop(&mut sfu, |d| d.unknown_protocol += 1, |s| from_producer(s, &stun));
    let dtls = [22u8, 254, 253, 0, 0];
    expect_drop(&mut sfu, |d| d.unknown_protocol += 1, |s| from_producer(s, &dtls));
    // RTP version 3 is no RTP.
    expect_drop(&mut sfu, |d| d.unknown_protocol += 1, |s| from_producer(s, &[0xC0, 96, 0, 1]));
    // RTP on the RTCP socket of a transport without rtcp-mux.
    let (now, id) = (sfu.now, sfu.fresh_id());
    let spec = PlainSpec {
        rtp_socket: SocketId(500),
        local: addr(15_000),
        rtcp_socket: Some(SocketId(501)),
        local_rtcp: Some(addr(15_001)),
        comedia: false,
        rtcp_mux: false,
    };
    sfu.shard.create_plain_transport(now, ROUTER, id, spec).unwrap();
    sfu.shard.connect_plain_transport(id, addr(25_000), Some(addr(25_001))).unwrap();
    let rtp = sfu.media(2, false).build();
    expect_drop(&mut sfu, |d| d.unknown_protocol += 1, |s| s.recv(SocketId(501), addr(25_001), &rtp));
}

#[test]
fn unknown_source() {
    let mut sfu = sfu();
    let rtp = sfu.media(2, false).build();
    expect_drop(&mut sfu, |d| d.unknown_source += 1, |s| s.recv(PRODUCER_SOCKET, addr(1), &rtp));
    assert!(sfu.take().is_empty());
}

#[test]
fn malformed_rtp() {
    let mut sfu = sfu();
    expect_drop(&mut sfu, |d| d.malformed_rtp += 1, |s| from_producer(s, &[0x80, 96, 0, 2, 0, 0]));
    // Extension longer than the packet.
    expect_drop(
        &mut sfu,
        |d| d.malformed_rtp += 1,
        |s| from_producer(s, &[0x90, 96, 0, 2, 0, 0, 0, 0, 0, 0, 4, 87, 0xBE, 0xDE, 0, 9]),
    );
}

#[test]
fn malformed_rtcp() {
    let mut sfu = sfu();
    expect_drop(&mut sfu, |d| d.malformed_rtcp += 1, |s| from_producer(s, &[0x80, 200, 0x00, 0x10]));
    // The first item of a compound is processed, the bad one after it is counted.
    let ssrc = sfu.consumers[0].ssrc;
    let mut compound = pli(1, ssrc);
    compound.extend_from_slice(&[0x80, 201, 0xff, 0xff]);
    expect_drop(&mut sfu, |d| d.malformed_rtcp += 1, |s| s.consumer_rtcp(0, &compound));
    assert_eq!(sfu.consumer(0).plis_in, 1);
}

#[test]
fn producer_not_found() {
    let mut sfu = sfu();
    let rtp = Rtp::new(4242, VIDEO_PT, 2).build();
    expect_drop(&mut sfu, |d| d.producer_not_found += 1, |s| from_producer(s, &rtp));
}

#[test]
fn unknown_payload_type() {
    let mut sfu = sfu();
    let rtp = Rtp::new(PRODUCER_SSRC, 50, 2).build();
    expect_drop(&mut sfu, |d| d.unknown_payload_type += 1, |s| from_producer(s, &rtp));
}

#[test]
fn producer_paused() {
    let mut sfu = sfu();
    sfu.shard.pause_producer(PRODUCER).unwrap();
    expect_drop(&mut sfu, |d| d.producer_paused += 1, |s| s.send_media(2, true));
}

#[test]
fn consumer_inactive() {
    let mut sfu = sfu();
    let id = sfu.consumers[0].id;
    sfu.shard.pause_consumer(id).unwrap();
    expect_drop(&mut sfu, |d| d.consumer_inactive += 1, |s| s.send_media(2, true));
}

#[test]
fn not_a_key_frame() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    expect_drop(&mut sfu, |d| d.not_a_key_frame += 1, |s| s.send_media(1, false));
}

#[test]
fn sequence_rejected() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.send_media(5000, true);
    expect_drop(&mut sfu, |d| d.sequence_rejected += 1, |s| s.send_media(4999, false));
}

#[test]
fn no_remote() {
    let mut sfu = Sfu::new(Options { consumers: 0, ..Options::default() });
    let (now, t) = (sfu.now, sfu.fresh_id());
    sfu.shard.create_plain_transport(now, ROUTER, t, plain(300, 12_000, false)).unwrap();
    sfu.add_consumer_on(t, SocketId(300), addr(12_000), addr(22_000), false);
    expect_drop(&mut sfu, |d| d.no_remote += 1, |s| s.send_media(1, true));
    assert!(sfu.take().is_empty());
}

#[test]
fn malformed_rtx() {
    let mut sfu = sfu();
    // No room for the original sequence number.
    let short = Rtp::new(PRODUCER_RTX_SSRC, VIDEO_RTX_PT, 7).payload(&[1]).build();
    expect_drop(&mut sfu, |d| d.malformed_rtx += 1, |s| from_producer(s, &short));
    // Padding only (what browsers send as bandwidth probes): counted apart, it is not malformed.
    let probe = Rtp::new(PRODUCER_RTX_SSRC, VIDEO_RTX_PT, 8).payload(&[]).padding(200).build();
    expect_drop(&mut sfu, |d| d.rtx_padding_only += 1, |s| from_producer(s, &probe));
    // The media payload type on the RTX SSRC.
    let wrong_pt = Rtp::new(PRODUCER_RTX_SSRC, VIDEO_PT, 9).payload(&[0, 1, 2, 3]).build();
    expect_drop(&mut sfu, |d| d.malformed_rtx += 1, |s| from_producer(s, &wrong_pt));
}

// ---- control calls --------------------------------------------------------------------------

/// Everything observable about the shard's objects.
fn fingerprint(shard: &Shard, ids: &[ObjectId]) -> String {
    let mut s = format!("{:?} {:?}\n", shard.shard_snapshot(), shard.poll_timeout());
    for &id in ids {
        s += &format!("{id} {:?} {:?}\n", shard.kind_of(id), shard.snapshot(id).map_err(|e| e.kind()));
    }
    s
}

#[test]
fn rejected_control_calls_change_nothing() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    sfu.start(1);
    let c0 = sfu.consumers[0].clone();
    let mut ids = vec![ROUTER, PRODUCER_TRANSPORT, PRODUCER, 9999];
    ids.extend(sfu.consumers.iter().flat_map(|c| [c.id, c.transport]));
    // A second router with a transport, for cross-router checks.
    let (other_router, other_transport) = (900, 901);
    sfu.shard.create_router(other_router).unwrap();
    let now = sfu.now;
    sfu.shard.create_plain_transport(now, other_router, other_transport, plain(901, 19_000, false)).unwrap();
    ids.extend([other_router, other_transport]);
    let before = fingerprint(&sfu.shard, &ids);
    let (caps, kind) = (sfu.caps.clone(), MediaKind::Video);
    let shard = &mut sfu.shard;

    let check = |r: shardsfu_engine::Result<()>, kind: ErrorKind, what: &str| {
        let err = r.expect_err(what);
        assert_eq!(err.kind(), kind, "{what}: {err:?}");
    };
    check(shard.create_router(ROUTER), ErrorKind::TypeError, "router id taken");
    check(shard.create_plain_transport(now, 4242, 50, plain(50, 1, false)), ErrorKind::InvalidStateError, "no router");
    check(shard.create_plain_transport(now, ROUTER, PRODUCER, plain(50, 1, false)), ErrorKind::TypeError, "id taken");
    check(shard.create_direct_transport(now, 4242, 51), ErrorKind::InvalidStateError, "no router (direct)");
    check(
        shard.create_plain_transport(now, ROUTER, 52, plain(PRODUCER_SOCKET.0, 1, false)),
        ErrorKind::TypeError,
        "socket owned by another transport",
    );
    check(shard.connect_plain_transport(PRODUCER_TRANSPORT, addr(1), None), ErrorKind::InvalidStateError, "twice");
    check(shard.connect_plain_transport(4242, addr(1), None), ErrorKind::InvalidStateError, "no transport");
    check(shard.connect_plain_transport(PRODUCER, addr(1), None), ErrorKind::InvalidStateError, "not a transport");

    // Same SSRC, new MID.
    let (dup_ssrc, _) = producer_spec(&caps, kind, producer_params(kind, true, Feedback::Full, "other"), 0);
    check(shard.produce(now, PRODUCER_TRANSPORT, 60, dup_ssrc), ErrorKind::TypeError, "duplicate ssrc");
    // Same MID, new SSRCs.
    let mut params = producer_params(kind, true, Feedback::Full, "p0");
    params.encodings.as_mut().unwrap()[0].ssrc = Some(7777);
    params.encodings.as_mut().unwrap()[0].rtx.as_mut().unwrap().ssrc = 7778;
    let (dup_mid, _) = producer_spec(&caps, kind, params.clone(), 0);
    check(shard.produce(now, PRODUCER_TRANSPORT, 61, dup_mid.clone()), ErrorKind::TypeError, "duplicate mid");
    check(shard.produce(now, 4242, 62, dup_mid.clone()), ErrorKind::InvalidStateError, "no transport");
    check(shard.produce(now, PRODUCER_TRANSPORT, ROUTER, dup_mid.clone()), ErrorKind::TypeError, "id taken");
    let mut no_mapping = dup_mid.clone();
    no_mapping.rtp_mapping.codecs.clear();
    no_mapping.rtp_parameters.mid = Some("fresh".into());
    check(shard.produce(now, PRODUCER_TRANSPORT, 63, no_mapping), ErrorKind::TypeError, "no codec mapping");

    let spec = |ssrc: u32| {
        let params = consumer_params(&sfu.consumable, &caps, true, ssrc, "z");
        ConsumerSpec { producer: PRODUCER, rtp_parameters: params, paused: false }
    };
    check(shard.consume(now, c0.transport, 70, spec(c0.ssrc)), ErrorKind::TypeError, "consumer ssrc taken");
    check(
        shard.consume(now, c0.transport, 71, spec(c0.ssrc - 1)),
        ErrorKind::TypeError,
        "consumer rtx ssrc is another consumer's ssrc",
    );
    check(
        shard.consume(now, c0.transport, 72, ConsumerSpec { producer: 4242, ..spec(1) }),
        ErrorKind::InvalidStateError,
        "no producer",
    );
    check(shard.consume(now, other_transport, 73, spec(1)), ErrorKind::InvalidStateError, "producer in another router");
    check(shard.consume(now, 4242, 74, spec(1)), ErrorKind::InvalidStateError, "no transport");
    let mut no_ssrc = spec(1);
    no_ssrc.rtp_parameters.encodings.as_mut().unwrap()[0].ssrc = None;
    check(shard.consume(now, c0.transport, 75, no_ssrc), ErrorKind::TypeError, "no ssrc");

    for r in [
        shard.pause_producer(4242),
        shard.resume_producer(now, 4242),
        shard.pause_consumer(4242),
        shard.resume_consumer(now, 4242),
        shard.pause_consumer(PRODUCER),
        shard.consumer_request_key_frame(now, 4242),
        shard.close_consumer(4242),
        shard.close_producer(c0.id),
        shard.close_transport(ROUTER),
        shard.close_router(4242, None),
    ] {
        check(r, ErrorKind::InvalidStateError, "unknown or wrong object");
    }
    let mut rtp = Rtp::new(PRODUCER_SSRC, VIDEO_PT, 2).build();
    let mut sink = VecSink::default();
    check(shard.handle_direct_rtp(now, PRODUCER, &mut rtp, &mut sink), ErrorKind::InvalidStateError, "not direct");
    let mut rtcp = pli(1, 2);
    check(shard.handle_direct_rtcp(now, PRODUCER_TRANSPORT, &mut rtcp, &mut sink), ErrorKind::InvalidStateError, "x");
    assert!(sink.datagrams.is_empty());

    assert_eq!(fingerprint(&sfu.shard, &ids), before);
    // And it still works: media in, one datagram per consumer out; RTCP of c0 still reaches c0.
    sfu.send_media(2, false);
    assert_eq!(sfu.take().len(), 2);
    sfu.consumer_rtcp(0, &pli(1, c0.ssrc));
    assert_eq!(sfu.consumer(0).plis_in, 1);
}

#[test]
fn connect_rules() {
    let mut sfu = Sfu::new(Options { consumers: 0, producer_comedia: true, ..Options::default() });
    let err = sfu.shard.connect_plain_transport(PRODUCER_TRANSPORT, addr(1), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStateError, "comedia transports are not connected");
    let (now, t) = (sfu.now, sfu.fresh_id());
    let spec = PlainSpec {
        rtcp_mux: false,
        rtcp_socket: Some(SocketId(601)),
        local_rtcp: Some(addr(16_001)),
        ..plain(600, 16_000, false)
    };
    sfu.shard.create_plain_transport(now, ROUTER, t, spec).unwrap();
    let err = sfu.shard.connect_plain_transport(t, addr(1), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TypeError, "rtcpPort required without rtcp-mux");
    assert_eq!(sfu.transport(t).remote, None);
    sfu.shard.connect_plain_transport(t, addr(1), Some(addr(2))).unwrap();
    let direct = sfu.fresh_id();
    sfu.shard.create_direct_transport(now, ROUTER, direct).unwrap();
    let err = sfu.shard.connect_plain_transport(direct, addr(1), None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TypeError, "not a PlainTransport");
}
