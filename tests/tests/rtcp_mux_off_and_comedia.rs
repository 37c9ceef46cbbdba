//! PlainTransport without rtcpMux (RTCP on its own port pair) and comedia (remote learned from
//! the first packet).

use std::net::UdpSocket;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardsfu_tests::shardsfu_engine::rtp::{write_pli, write_sr, RtcpItem, SenderInfo};
use shardsfu_tests::shardsfu_engine::{
    block_on, ConsumerOptions, PlainTransportConnect, PlainTransportOptions, TransportListenInfo, TransportTuple,
};
use shardsfu_tests::*;

const SSRC: u32 = 9999;
const RECEIVER_SSRC: u32 = 0x5eed;

fn socket() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    s
}

fn tuples(t: &shardsfu_tests::shardsfu_engine::PlainTransport, rtcp: bool) -> Arc<Mutex<Vec<TransportTuple>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let f = move |tuple| sink.lock().unwrap().push(tuple);
    if rtcp {
        t.on_rtcp_tuple(f);
    } else {
        t.on_tuple(f);
    }
    seen
}

#[test]
fn rtcp_mux_off_sends_and_takes_rtcp_on_the_rtcp_port() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    sender.send(&vp8(1, SSRC, false, b"learn the tuple")).unwrap();
    assert!(wait_for(ARRIVAL, || ingest.tuple().remote_port.is_some()));

    let t = block_on(router.create_plain_transport(PlainTransportOptions {
        rtcp_mux: false,
        ..PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))
    }))
    .unwrap();
    assert!(!t.rtcp_mux());
    let local_rtcp = t.local_rtcp_addr().expect("a separate RTCP port");
    assert_ne!(local_rtcp, t.local_addr());
    let (rtp_sock, rtcp_sock) = (socket(), socket());
    rtp_sock.connect(t.local_addr()).unwrap();
    rtcp_sock.connect(local_rtcp).unwrap();
    let (rtp_port, rtcp_port) = (rtp_sock.local_addr().unwrap().port(), rtcp_sock.local_addr().unwrap().port());
    block_on(t.connect(PlainTransportConnect {
        ip: Some("127.0.0.1".into()),
        port: Some(rtp_port),
        rtcp_port: Some(rtcp_port),
        ..Default::default()
    }))
    .unwrap();
    assert_eq!(t.rtcp_tuple().unwrap().remote_port, Some(rtcp_port));
    assert_eq!(t.tuple().remote_port, Some(rtp_port));
    let dump = block_on(t.dump()).unwrap();
    assert_eq!(dump["rtcpMux"], false);
    assert_eq!(dump["rtcpTuple"]["localPort"], local_rtcp.port());
    assert_eq!(dump["rtcpTuple"]["remotePort"], rtcp_port);

    let consumer = block_on(t.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone()))).unwrap();
    let ssrc = wire_of(&consumer).ssrc;
    for seq in 2..6u16 {
        sender.send(&vp8(seq, SSRC, seq == 2, b"media")).unwrap();
    }
    assert_eq!(recv_rtp_n(&rtp_sock, 4, ARRIVAL).len(), 4, "media on the RTP port");

    let sr = |i: &RtcpItem<'_>| matches!(i, RtcpItem::SenderReport { info, .. } if info.ssrc == ssrc);
    assert!(recv_rtcp_item(&rtcp_sock, ARRIVAL, sr), "SR on the RTCP port");
    let mut on_rtp_port = 0;
    let _ = recv_until(&rtp_sock, Duration::from_millis(50), |p| {
        on_rtp_port += usize::from(is_rtcp(p));
        false
    });
    assert_eq!(on_rtp_port, 0, "no RTCP on the RTP port");

    // RTCP from the receiver's RTCP socket is taken: a PLI reaches the producer.
    drain(&sender);
    rtcp_sock.send(&rtcp_bytes(|b| write_pli(b, RECEIVER_SSRC, ssrc))).unwrap();
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)));
    assert_eq!(block_on(consumer.get_stats()).unwrap()[0]["pliCount"], 1);
    // The RTCP port takes RTCP only.
    let unknown = drop_count(&engine, 0, "unknown_protocol");
    rtcp_sock.send(&vp8(9, SSRC, true, b"rtp on the rtcp port")).unwrap();
    assert_eq!(wait_drops(&engine, 0, "unknown_protocol", unknown + 1), unknown + 1);
    engine.close();
}

#[test]
fn comedia_learns_the_tuple_from_the_first_packet() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let t = block_on(router.create_plain_transport(PlainTransportOptions {
        comedia: true,
        ..PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))
    }))
    .unwrap();
    assert!(t.comedia());
    assert_eq!(t.tuple().remote_port, None);
    let seen = tuples(&t, false);
    let producer = produce_vp8(&t, SSRC, None);
    let (_out, _consumer, receiver) = consumer(&router, &producer);

    // A stray datagram that only looks like RTP by its first bytes does not take the tuple.
    let stranger = client_to(t.local_addr());
    stranger.send(&[0x80, 96, 0, 1]).unwrap();
    assert!(wait_drops(&engine, 0, "malformed_rtp", 1) >= 1);
    assert!(seen.lock().unwrap().is_empty(), "a malformed packet does not latch the tuple");

    let sender = client_to(t.local_addr());
    let sender_port = sender.local_addr().unwrap().port();
    sender.send(&vp8(1, SSRC, true, b"first")).unwrap();
    assert!(wait_for(ARRIVAL, || seen.lock().unwrap().len() == 1), "on_tuple fires");
    let tuple = seen.lock().unwrap()[0].clone();
    assert_eq!(tuple.remote_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(tuple.remote_port, Some(sender_port));
    assert_eq!(tuple.local_port, t.local_addr().port());
    assert_eq!(t.tuple(), tuple, "tuple() reflects it");
    assert_eq!(block_on(t.dump()).unwrap()["tuple"]["remotePort"], sender_port);
    assert_eq!(recv_rtp_n(&receiver, 1, ARRIVAL).len(), 1);

    sender.send(&vp8(2, SSRC, false, b"second")).unwrap();
    assert_eq!(recv_rtp_n(&receiver, 1, ARRIVAL).len(), 1);
    let spoofed = drop_count(&engine, 0, "unknown_source");
    stranger.send(&vp8(3, SSRC, false, b"too late")).unwrap();
    assert_eq!(wait_drops(&engine, 0, "unknown_source", spoofed + 1), spoofed + 1, "the tuple stays");
    assert_eq!(seen.lock().unwrap().len(), 1, "on_tuple fires once");
    assert_eq!(t.tuple().remote_port, Some(sender_port));
    engine.close();
}

#[test]
fn comedia_without_rtcp_mux_learns_both_tuples() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let t = block_on(router.create_plain_transport(PlainTransportOptions {
        comedia: true,
        rtcp_mux: false,
        ..PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))
    }))
    .unwrap();
    let (rtp_seen, rtcp_seen) = (tuples(&t, false), tuples(&t, true));
    let producer = produce_vp8(&t, SSRC, None);
    let sender = client_to(t.local_addr());
    let sender_rtcp = client_to(t.local_rtcp_addr().expect("RTCP port"));
    let rtcp_port = sender_rtcp.local_addr().unwrap().port();

    sender.send(&vp8(1, SSRC, true, b"rtp")).unwrap();
    let info = SenderInfo { ssrc: SSRC, packet_count: 1, ..Default::default() };
    sender_rtcp.send(&rtcp_bytes(|b| write_sr(b, &info, &[]))).unwrap();
    assert!(wait_for(ARRIVAL, || rtp_seen.lock().unwrap().len() == 1 && rtcp_seen.lock().unwrap().len() == 1));
    assert_eq!(rtcp_seen.lock().unwrap()[0].remote_port, Some(rtcp_port));
    assert_eq!(t.rtcp_tuple().unwrap().remote_port, Some(rtcp_port));

    // Feedback for the producer goes to the learned RTCP tuple.
    let (_out, _consumer, _rx) = consumer(&router, &producer);
    assert!(recv_rtcp_item(&sender_rtcp, ARRIVAL, |i| is_pli_for(i, SSRC)), "PLI on the RTCP tuple");
    assert!(!recv_rtcp_item(&sender, Duration::from_millis(100), |i| is_pli_for(i, SSRC)));
    engine.close();
}
