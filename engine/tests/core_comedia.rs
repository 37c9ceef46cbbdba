//! comedia PlainTransports learn their remote from the first RTP or RTCP packet and accept
//! nothing from anywhere else afterwards.

mod common;

use common::*;
use shardsfu_engine::core::{Event, PlainSpec};
use shardsfu_net::SocketId;

#[test]
fn first_packet_sets_the_remote_and_is_forwarded() {
    let mut sfu = Sfu::new(Options { consumers: 2, producer_comedia: true, ..Options::default() });
    assert_eq!(sfu.transport(PRODUCER_TRANSPORT).remote, None);
    let endpoint = addr(30_000);
    let rtp = sfu.media(1, true).build();
    sfu.recv(PRODUCER_SOCKET, endpoint, &rtp);
    assert_eq!(
        sfu.events(),
        vec![Event::Tuple { transport: PRODUCER_TRANSPORT, local: addr(10_000), remote: endpoint }]
    );
    assert_eq!(sfu.transport(PRODUCER_TRANSPORT).remote, Some(endpoint));
    assert_eq!(sfu.take().len(), 2, "the first packet itself is forwarded");

    // Another source is refused, and learns nothing.
    let rtp = sfu.media(2, false).build();
    sfu.recv(PRODUCER_SOCKET, addr(30_001), &rtp);
    assert!(sfu.take().is_empty());
    assert_eq!(sfu.shard.drops().unknown_source, 1);
    assert!(sfu.events().is_empty());
    assert_eq!(sfu.transport(PRODUCER_TRANSPORT).remote, Some(endpoint));
    // The learned one goes on.
    sfu.recv(PRODUCER_SOCKET, endpoint, &rtp);
    assert_eq!(sfu.take().len(), 2);
}

#[test]
fn rtcp_for_the_producer_goes_to_the_learned_remote() {
    let mut sfu = Sfu::new(Options { consumers: 1, producer_comedia: true, ..Options::default() });
    let endpoint = addr(30_000);
    sfu.send_media(0, false); // from the harness's default remote: learned as the endpoint
    sfu.take();
    sfu.events();
    let rtp = sfu.media(1, true).build();
    sfu.recv(PRODUCER_SOCKET, endpoint, &rtp); // refused: the remote is learned already
    sfu.advance(1000);
    let out = sfu.take();
    let rtcp: Vec<_> = out.iter().filter(|d| d.is_rtcp() && d.socket == PRODUCER_SOCKET).collect();
    assert!(!rtcp.is_empty());
    assert!(rtcp.iter().all(|d| d.dest == sfu.producer_remote), "{rtcp:?}");
}

#[test]
fn key_frame_request_waits_for_the_remote() {
    // The consumer asks for a key frame before the producer's endpoint has sent anything: the
    // PLI must reach the endpoint once it is known, not vanish.
    let mut sfu = Sfu::new(Options { consumers: 1, producer_comedia: true, ..Options::default() });
    sfu.advance(200);
    assert!(sfu.take().is_empty(), "no remote: nothing can be sent");
    sfu.send_media(1, false);
    assert!(sfu.take().is_empty(), "a delta frame: the consumer waits for a key frame");
    sfu.advance(20);
    let out = sfu.take();
    let plis: Vec<_> = sfu.rtcp_to_producer(&out).into_iter().filter(|i| matches!(i, Rtcp::Pli { .. })).collect();
    assert_eq!(plis.len(), 1, "{out:?}");
}

#[test]
fn comedia_consumer_transport_starts_sending_once_it_hears_from_the_endpoint() {
    let mut sfu = Sfu::new(Options { consumers: 0, ..Options::default() });
    let (now, t) = (sfu.now, sfu.fresh_id());
    sfu.shard.create_plain_transport(now, ROUTER, t, plain(300, 12_000, true)).unwrap();
    let i = sfu.add_consumer_on(t, SocketId(300), addr(12_000), addr(22_000), false);
    sfu.send_media(1, true);
    assert!(sfu.take().is_empty());
    assert_eq!(sfu.shard.drops().no_remote, 1);
    // The receiving endpoint sends a receiver report first.
    let c = sfu.consumers[i].clone();
    let block = shardsfu_engine::rtp::ReportBlock { ssrc: c.ssrc, ..Default::default() };
    sfu.recv(c.socket, c.remote, &rr(0xFEED, &[block]));
    assert_eq!(sfu.events(), vec![Event::Tuple { transport: t, local: addr(12_000), remote: c.remote }]);
    sfu.send_media(2, true);
    let out = sfu.take();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].socket, out[0].dest), (c.socket, c.remote));
}

#[test]
fn stun_does_not_teach_a_comedia_remote() {
    let mut sfu = Sfu::new(Options { consumers: 1, producer_comedia: true, ..Options::default() });
    let stun = [0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    sfu.recv(PRODUCER_SOCKET, addr(30_000), &stun);
    assert_eq!(sfu.transport(PRODUCER_TRANSPORT).remote, None);
    assert!(sfu.events().is_empty());
    assert_eq!(sfu.shard.drops().unknown_source, 1);
}

#[test]
fn without_rtcp_mux_each_socket_learns_its_own_remote() {
    let mut sfu = Sfu::new(Options { consumers: 0, ..Options::default() });
    sfu.shard.close_producer(PRODUCER).unwrap();
    sfu.shard.close_transport(PRODUCER_TRANSPORT).unwrap();
    sfu.shard.take_released_sockets();
    let (now, t) = (sfu.now, sfu.fresh_id());
    let spec = PlainSpec {
        rtp_socket: SocketId(700),
        local: addr(17_000),
        rtcp_socket: Some(SocketId(701)),
        local_rtcp: Some(addr(17_001)),
        comedia: true,
        rtcp_mux: false,
    };
    sfu.shard.create_plain_transport(now, ROUTER, t, spec).unwrap();
    let (spec, _) = producer_spec(
        &sfu.caps,
        shardsfu_engine::rtp_parameters::MediaKind::Video,
        producer_params(shardsfu_engine::rtp_parameters::MediaKind::Video, true, Feedback::Full, "p"),
        0,
    );
    sfu.shard.produce(now, t, PRODUCER, spec).unwrap();
    let rtp = sfu.media(1, true).build();
    sfu.recv(SocketId(700), addr(31_000), &rtp);
    let info = shardsfu_engine::rtp::SenderInfo { ssrc: PRODUCER_SSRC, ..Default::default() };
    sfu.recv(SocketId(701), addr(31_001), &sr(&info));
    assert_eq!(
        sfu.events(),
        vec![
            Event::Tuple { transport: t, local: addr(17_000), remote: addr(31_000) },
            Event::RtcpTuple { transport: t, local: addr(17_001), remote: addr(31_001) },
        ]
    );
    // RTCP from the RTP source on the RTCP socket is refused now.
    sfu.recv(SocketId(701), addr(31_000), &sr(&info));
    assert_eq!(sfu.shard.drops().unknown_source, 1);
    // Receiver reports leave through the RTCP socket to the learned RTCP remote.
    sfu.take();
    sfu.advance(1000);
    let out = sfu.take();
    let rr: Vec<_> = out.iter().filter(|d| d.is_rtcp()).collect();
    assert!(!rr.is_empty());
    assert!(rr.iter().all(|d| d.socket == SocketId(701) && d.dest == addr(31_001)), "{rr:?}");
}
