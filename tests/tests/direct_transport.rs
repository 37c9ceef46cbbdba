//! DirectTransport: RTP and RTCP handed in and out of the process, bridged with plain UDP.

use std::sync::{Arc, Mutex};

use shardsfu_tests::shardsfu_engine::rtp::{parse_compound, write_pli, RtcpItem};
use shardsfu_tests::shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_tests::shardsfu_engine::{block_on, ConsumerOptions, DirectTransportOptions, ErrorKind, ProducerOptions};
use shardsfu_tests::*;

const SSRC: u32 = 5555;
const RECEIVER_SSRC: u32 = 0x5eed;

type Captured = Arc<Mutex<Vec<Vec<u8>>>>;

fn capture() -> Captured {
    Arc::new(Mutex::new(Vec::new()))
}

fn has_rtcp(captured: &Captured, mut pred: impl FnMut(&RtcpItem<'_>) -> bool) -> bool {
    captured.lock().unwrap().iter().any(|p| {
        let mut hit = false;
        let _ = parse_compound(p, |i| hit |= pred(&i));
        hit
    })
}

#[test]
fn direct_producer_send_reaches_a_plain_consumer() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let direct = block_on(router.create_direct_transport(DirectTransportOptions::default())).unwrap();
    let rtcp_out = capture();
    let sink = rtcp_out.clone();
    direct.on_rtcp(move |b| sink.lock().unwrap().push(b.to_vec()));
    let producer = block_on(direct.produce(ProducerOptions::new(MediaKind::Video, vp8_params(SSRC, None)))).unwrap();
    let (_t, consumer, receiver) = consumer(&router, &producer);
    let wire = wire_of(&consumer);

    // The new consumer's key frame request leaves through the DirectTransport's 'rtcp'.
    assert!(wait_for(ARRIVAL, || has_rtcp(&rtcp_out, |i| is_pli_for(i, SSRC))), "PLI via on_rtcp");

    let bodies: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i ^ 0x5a; 300]).collect();
    for (i, body) in bodies.iter().enumerate() {
        producer.send(&vp8(10 + i as u16, SSRC, i == 0, body)).unwrap();
    }
    let got = recv_rtp_n(&receiver, 5, ARRIVAL);
    assert_eq!(got.len(), 5);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(ssrc_of(p), wire.ssrc);
        assert_eq!(pt_of(p), wire.payload_type);
        assert_eq!(seq_of(p), seq_of(&got[0]).wrapping_add(i as u16));
        assert_eq!(ts_of(p), (10 + i as u32) * 3000);
        assert_eq!(&payload_of(p)[2..], &bodies[i][..]);
    }
    let stats = block_on(direct.get_stats()).unwrap();
    assert_eq!(stats[0]["type"], "direct-transport");
    assert_eq!(stats[0]["rtpPacketsReceived"], 5);

    assert_eq!(producer.send(&[0x80, 96, 0, 1]).unwrap_err().kind, ErrorKind::TypeError, "shorter than a header");
    producer.close();
    assert_eq!(producer.send(&vp8(20, SSRC, true, b"x")).unwrap_err().kind, ErrorKind::InvalidStateError);
    engine.close();
}

#[test]
fn plain_producer_reaches_a_direct_consumer_and_direct_rtcp_flows_back() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    sender.send(&vp8(1, SSRC, false, b"delta first: learns the tuple")).unwrap();
    assert!(wait_for(ARRIVAL, || ingest.tuple().remote_port.is_some()));

    let direct = block_on(router.create_direct_transport(DirectTransportOptions::default())).unwrap();
    let rtcp_out = capture();
    let sink = rtcp_out.clone();
    direct.on_rtcp(move |b| sink.lock().unwrap().push(b.to_vec()));
    let consumer =
        block_on(direct.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone()))).unwrap();
    let wire = wire_of(&consumer);
    let rtp_out = capture();
    let sink = rtp_out.clone();
    consumer.on_rtp(move |b| sink.lock().unwrap().push(b.to_vec()));

    let bodies: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i ^ 0xa5; 250]).collect();
    for (i, body) in bodies.iter().enumerate() {
        sender.send(&vp8(2 + i as u16, SSRC, i == 0, body)).unwrap();
    }
    assert!(wait_for(ARRIVAL, || rtp_out.lock().unwrap().len() == 4), "on_rtp gets every packet");
    let got = rtp_out.lock().unwrap().clone();
    for (i, p) in got.iter().enumerate() {
        assert_eq!(ssrc_of(p), wire.ssrc);
        assert_eq!(pt_of(p), wire.payload_type);
        assert_eq!(seq_of(p), seq_of(&got[0]).wrapping_add(i as u16));
        assert_eq!(&payload_of(p)[2..], &bodies[i][..], "payload equal");
    }

    // RTCP from the application side of the DirectTransport: a PLI for the consumer.
    drain(&sender);
    direct.send_rtcp(&rtcp_bytes(|b| write_pli(b, RECEIVER_SSRC, wire.ssrc))).unwrap();
    assert!(recv_rtcp_item(&sender, ARRIVAL, |i| is_pli_for(i, SSRC)), "send_rtcp PLI reaches the producer");
    assert_eq!(block_on(consumer.get_stats()).unwrap()[0]["pliCount"], 1);

    // Sender reports for the direct consumer leave through on_rtcp.
    assert!(
        wait_for(ARRIVAL, || has_rtcp(&rtcp_out, |i| matches!(i,
            RtcpItem::SenderReport { info, .. } if info.ssrc == wire.ssrc && info.packet_count == 4))),
        "SR via on_rtcp"
    );
    assert_eq!(direct.send_rtcp(&[]).unwrap_err().kind, ErrorKind::TypeError);
    direct.close();
    assert_eq!(direct.send_rtcp(&[0x80, 201, 0, 1, 0, 0, 0, 1]).unwrap_err().kind, ErrorKind::InvalidStateError);
    engine.close();
}
