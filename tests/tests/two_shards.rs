//! Two shards: routers created back to back are spread over both, and both forward at once.

use std::thread;

use shardsfu_tests::shardsfu_engine::block_on;
use shardsfu_tests::*;

#[test]
fn back_to_back_routers_land_on_different_shards_and_forward_concurrently() {
    let engine = engine(2);
    assert_eq!(engine.shard_count(), 2);
    let worker = worker(&engine);
    let routers = [router(&worker), router(&worker)];
    let dump = block_on(engine.dump()).unwrap();
    assert_ne!(routers[0].shard(), routers[1].shard(), "placement spreads new routers: {:#}", dump["placements"]);
    for r in &routers {
        assert_eq!(block_on(r.dump()).unwrap()["shard"], r.shard());
        assert_eq!(dump["shards"][r.shard()]["objects"]["routers"], 1);
    }

    let results: Vec<_> = thread::scope(|s| {
        let handles: Vec<_> = routers
            .iter()
            .enumerate()
            .map(|(n, router)| {
                s.spawn(move || {
                    let ssrc = 6000 + n as u32;
                    let (ingest, sender) = ingest(router);
                    let producer = produce_vp8(&ingest, ssrc, None);
                    let (t, consumer, receiver) = consumer(router, &producer);
                    let wire = wire_of(&consumer);
                    let body = vec![n as u8 + 1; 400];
                    for i in 0..50u16 {
                        sender.send(&vp8(i, ssrc, i == 0, &body)).unwrap();
                    }
                    let got = recv_rtp_n(&receiver, 50, ARRIVAL);
                    assert_eq!(got.len(), 50, "router {n}: every packet arrives");
                    for (i, p) in got.iter().enumerate() {
                        assert_eq!(ssrc_of(p), wire.ssrc);
                        assert_eq!(seq_of(p), seq_of(&got[0]).wrapping_add(i as u16));
                        assert_eq!(&payload_of(p)[2..], &body[..], "router {n}: its own payload");
                    }
                    (ingest, producer, t, consumer)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    let dump = block_on(engine.dump()).unwrap();
    for (r, (_, producer, _, consumer)) in routers.iter().zip(&results) {
        let shard = &dump["shards"][r.shard()];
        assert_eq!(shard["objects"]["transports"], 2);
        assert_eq!(shard["objects"]["producers"], 1);
        assert_eq!(shard["objects"]["consumers"], 1);
        assert_eq!(block_on(producer.get_stats()).unwrap()[0]["packetCount"], 50);
        assert_eq!(block_on(consumer.get_stats()).unwrap()[0]["packetCount"], 50);
    }
    engine.close();
}
