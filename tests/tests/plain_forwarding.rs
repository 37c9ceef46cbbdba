//! Sender socket -> PlainTransport producer -> N consumers on PlainTransports -> receivers.

use std::time::Duration;

use shardsfu_tests::shardsfu_engine::block_on;
use shardsfu_tests::*;

#[test]
fn payload_reaches_every_consumer_with_rewritten_header() {
    let engine = engine(1);
    let worker = worker(&engine);
    let router = router(&worker);
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, 1111, None);
    let consumers: Vec<_> = (0..3).map(|_| consumer(&router, &producer)).collect();
    let body: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
    for i in 0..20u16 {
        sender.send(&rtp(96, 500 + i, 9000 + u32::from(i) * 3000, 1111, i == 0, &body)).unwrap();
    }
    for (_, c, sock) in &consumers {
        let pkts = recv_rtp_for(sock, Duration::from_millis(500));
        assert_eq!(pkts.len(), 20, "every packet reaches consumer {}", c.id());
        let ssrc = c.rtp_parameters().encodings.as_ref().unwrap()[0].ssrc.unwrap();
        let pt = c.rtp_parameters().codecs[0].payload_type;
        for (i, p) in pkts.iter().enumerate() {
            assert_eq!(ssrc_of(p), ssrc);
            assert_eq!(p[1] & 0x7f, pt);
            assert_eq!(seq_of(p), seq_of(&pkts[0]).wrapping_add(i as u16));
            assert_eq!(ts_of(p), 9000 + i as u32 * 3000);
            assert!(p.ends_with(&body), "payload bytes intact");
        }
    }
    let stats = block_on(consumers[0].1.get_stats()).unwrap();
    assert_eq!(stats[0]["packetCount"], 20);
    engine.close();
}
