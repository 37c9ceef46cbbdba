//! mediasoup's close cascades: producer -> consumers, transport -> producers and consumers,
//! router -> transports, worker -> routers; media stops; closed objects refuse calls.

use std::time::Duration;

use shardsfu_tests::shardsfu_engine::rtp_parameters::MediaKind;
use shardsfu_tests::shardsfu_engine::{
    block_on, ConsumerOptions, DirectTransportOptions, Engine, ErrorKind, PlainTransportConnect, PlainTransportOptions,
    ProducerOptions, RouterOptions, TransportListenInfo,
};
use shardsfu_tests::*;

const SSRC: u32 = 7777;
const QUIET: Duration = Duration::from_millis(200);

fn objects_zero(engine: &Engine) -> bool {
    let dump = block_on(engine.dump()).unwrap();
    dump["shards"].as_array().unwrap().iter().all(|s| {
        let o = &s["objects"];
        o["routers"] == 0 && o["transports"] == 0 && o["producers"] == 0 && o["consumers"] == 0
    })
}

#[test]
fn producer_close_closes_its_consumers_and_stops_media() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    let consumers: Vec<_> = (0..2).map(|_| consumer(&router, &producer)).collect();
    let (producer_closes, observer_closes, transport_closes) = (counter(), counter(), counter());
    for (_, c, _) in &consumers {
        c.on_producer_close(bump(&producer_closes));
        c.on_close(bump(&observer_closes));
        c.on_transport_close(bump(&transport_closes));
    }
    sender.send(&vp8(1, SSRC, true, b"before")).unwrap();
    for (_, _, rx) in &consumers {
        assert_eq!(recv_rtp_n(rx, 1, ARRIVAL).len(), 1);
    }

    let own_close = counter();
    producer.on_close(bump(&own_close));
    producer.close();
    assert!(producer.closed());
    assert_eq!(count(&own_close), 1);
    assert!(wait_for(ARRIVAL, || consumers.iter().all(|(_, c, _)| c.closed())), "consumers close");
    assert!(wait_for(ARRIVAL, || count(&producer_closes) == 2 && count(&observer_closes) == 2));
    assert_eq!(count(&transport_closes), 0);

    let not_found = drop_count(&engine, 0, "producer_not_found");
    sender.send(&vp8(2, SSRC, true, b"after")).unwrap();
    assert_eq!(wait_drops(&engine, 0, "producer_not_found", not_found + 1), not_found + 1);
    for (t, c, rx) in &consumers {
        assert!(recv_rtp_for(rx, QUIET).is_empty(), "media stops after close");
        assert_eq!(block_on(c.pause()).unwrap_err().kind, ErrorKind::InvalidStateError);
        assert_eq!(block_on(c.get_stats()).unwrap_err().kind, ErrorKind::InvalidStateError);
        assert_eq!(block_on(t.dump()).unwrap()["consumerIds"], serde_json::json!([]), "transport forgot it");
    }
    assert_eq!(block_on(producer.pause()).unwrap_err().kind, ErrorKind::InvalidStateError);
    assert_eq!(block_on(producer.dump()).unwrap_err().kind, ErrorKind::InvalidStateError);
    let consume =
        block_on(consumers[0].0.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone())));
    assert_eq!(err_kind(consume), ErrorKind::Error, "a closed producer cannot be consumed");
    assert_eq!(block_on(router.dump()).unwrap()["mapProducerIdConsumerIds"], serde_json::json!([]));
    // Closing twice is a no-op.
    producer.close();
    assert_eq!(count(&own_close), 1);
    engine.close();
}

#[test]
fn transport_close_closes_its_producers_and_consumers() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (ingest, sender) = ingest(&router);
    let producer = produce_vp8(&ingest, SSRC, None);
    let (out_a, consumer_a, rx_a) = consumer(&router, &producer);
    let (_out_b, consumer_b, rx_b) = consumer(&router, &producer);
    let (a_transport, b_transport, b_producer, p_transport) = (counter(), counter(), counter(), counter());
    consumer_a.on_transport_close(bump(&a_transport));
    consumer_b.on_transport_close(bump(&b_transport));
    consumer_b.on_producer_close(bump(&b_producer));
    producer.on_transport_close(bump(&p_transport));

    out_a.close();
    assert!(out_a.closed());
    assert!(wait_for(ARRIVAL, || consumer_a.closed() && count(&a_transport) == 1), "consumer gets transportclose");
    assert!(!producer.closed() && !consumer_b.closed());
    sender.send(&vp8(1, SSRC, true, b"still flowing")).unwrap();
    assert_eq!(recv_rtp_n(&rx_b, 1, ARRIVAL).len(), 1, "the other consumer still gets media");
    assert!(recv_rtp_for(&rx_a, QUIET).is_empty());
    assert_eq!(block_on(out_a.dump()).unwrap_err().kind, ErrorKind::InvalidStateError);
    let connect = block_on(out_a.connect(PlainTransportConnect {
        ip: Some("127.0.0.1".into()),
        port: Some(9),
        ..Default::default()
    }));
    assert_eq!(connect.unwrap_err().kind, ErrorKind::InvalidStateError);
    let consume = block_on(out_a.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone())));
    assert_eq!(err_kind(consume), ErrorKind::InvalidStateError);

    ingest.close();
    assert!(wait_for(ARRIVAL, || producer.closed() && count(&p_transport) == 1), "producer gets transportclose");
    assert!(wait_for(ARRIVAL, || consumer_b.closed() && count(&b_producer) == 1), "its consumer gets producerclose");
    assert_eq!(count(&b_transport), 0);
    let produce = block_on(ingest.produce(ProducerOptions::new(MediaKind::Video, vp8_params(SSRC, None))));
    assert_eq!(err_kind(produce), ErrorKind::InvalidStateError);
    sender.send(&vp8(2, SSRC, true, b"socket is gone")).ok();
    assert!(recv_rtp_for(&rx_b, QUIET).is_empty(), "media stops");
    engine.close();
}

#[test]
fn router_and_worker_close_cascade_down_to_zero_objects() {
    let engine = engine(1);
    let worker = worker(&engine);
    let (router_a, router_b) = (router(&worker), router(&worker));

    // Router A: a plain ingest with a producer, a plain and a direct consumer.
    let (ingest_a, sender_a) = ingest(&router_a);
    let producer_a = produce_vp8(&ingest_a, SSRC, None);
    let (out_a, consumer_a, rx_a) = consumer(&router_a, &producer_a);
    let direct_a = block_on(router_a.create_direct_transport(DirectTransportOptions::default())).unwrap();
    let direct_consumer =
        block_on(direct_a.consume(ConsumerOptions::new(producer_a.id(), router_a.rtp_capabilities().clone()))).unwrap();
    // Router B: the same plain pair.
    let (ingest_b, _sender_b) = ingest(&router_b);
    let producer_b = produce_vp8(&ingest_b, SSRC, None);
    let (out_b, consumer_b, _rx_b) = consumer(&router_b, &producer_b);
    assert!(!objects_zero(&engine));

    let router_closes = counter();
    for t in [&*ingest_a, &*out_a, &*direct_a] {
        t.on_router_close(bump(&router_closes));
    }
    let transport_closes = counter();
    producer_a.on_transport_close(bump(&transport_closes));
    consumer_a.on_transport_close(bump(&transport_closes));
    direct_consumer.on_transport_close(bump(&transport_closes));
    let router_a_close = counter();
    router_a.on_close(bump(&router_a_close));

    router_a.close();
    assert!(router_a.closed());
    assert_eq!(count(&router_a_close), 1);
    assert!(wait_for(ARRIVAL, || count(&router_closes) == 3), "transports get routerclose");
    assert!(wait_for(ARRIVAL, || count(&transport_closes) == 3), "producers and consumers get transportclose");
    assert!(ingest_a.closed() && out_a.closed() && direct_a.closed());
    assert!(producer_a.closed() && consumer_a.closed() && direct_consumer.closed());
    sender_a.send(&vp8(1, SSRC, true, b"gone")).ok();
    assert!(recv_rtp_for(&rx_a, QUIET).is_empty(), "media stops");
    let create =
        block_on(router_a.create_plain_transport(PlainTransportOptions::new(TransportListenInfo::udp("127.0.0.1"))));
    assert_eq!(err_kind(create), ErrorKind::InvalidStateError);
    assert_eq!(block_on(router_a.dump()).unwrap_err().kind, ErrorKind::InvalidStateError);
    assert!(!router_b.closed() && !consumer_b.closed(), "the other router is untouched");
    assert_eq!(worker.dump()["routerIds"], serde_json::json!([router_b.id()]));

    let (worker_closes, b_router_closes, b_transport_closes) = (counter(), counter(), counter());
    router_b.on_worker_close(bump(&worker_closes));
    out_b.on_router_close(bump(&b_router_closes));
    ingest_b.on_router_close(bump(&b_router_closes));
    consumer_b.on_transport_close(bump(&b_transport_closes));
    producer_b.on_transport_close(bump(&b_transport_closes));
    worker.close();
    assert!(worker.closed());
    assert!(router_b.closed());
    assert_eq!(count(&worker_closes), 1, "routers get workerclose");
    assert!(wait_for(ARRIVAL, || count(&b_router_closes) == 2 && count(&b_transport_closes) == 2));
    assert_eq!(count(&router_a_close), 1, "a closed router does not close again");
    let create = block_on(worker.create_router(RouterOptions::default()));
    assert_eq!(err_kind(create), ErrorKind::InvalidStateError);

    assert!(wait_for(ARRIVAL, || objects_zero(&engine)), "Engine::dump counts are back to zero");
    // Placement learns it from the shard's next load report (one per 100 ms window).
    assert!(wait_for(ARRIVAL, || engine.loads()[0].routers == 0), "{:?}", engine.loads());
    engine.close();
}
