//! pipeToRouter between routers of one engine: on one shard and across shards.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shardsfu_tests::shardsfu_engine::{block_on, ConsumerType, ErrorKind, PipeToRouterOptions};
use shardsfu_tests::*;

fn pipe_and_forward(shards: usize) {
    let engine = engine(shards);
    let worker = worker(&engine);
    let (r1, r2) = (router(&worker), router(&worker));
    if shards == 2 {
        assert_ne!(r1.shard(), r2.shard(), "two routers on two shards");
    }
    let (ingest, sender) = ingest(&r1);
    let producer = produce_vp8(&ingest, 1111, None);

    let piped = block_on(r1.pipe_to_router(PipeToRouterOptions::new(producer.id(), &r2))).expect("pipeToRouter");
    assert_eq!(piped.pipe_producer.id(), producer.id(), "keepId");
    assert_eq!(piped.pipe_consumer.r#type(), ConsumerType::Pipe);
    assert_eq!(piped.pipe_consumer.producer_id(), producer.id());

    // A consumer in the target router consumes the pipe producer like any producer.
    let (_t, c, sock) = consumer(&r2, &piped.pipe_producer);
    let body: Vec<u8> = (0..500u32).map(|i| (i * 3) as u8).collect();
    for i in 0..20u16 {
        sender.send(&rtp(96, 40 + i, 3000 * u32::from(i), 1111, i == 0, &body)).unwrap();
    }
    let pkts = recv_rtp_n(&sock, 20, Duration::from_secs(3));
    assert_eq!(pkts.len(), 20, "every packet crosses the pipe");
    let wire = wire_of(&c);
    for (i, p) in pkts.iter().enumerate() {
        assert_eq!(ssrc_of(p), wire.ssrc);
        assert_eq!(p[1] & 0x7f, wire.payload_type);
        assert_eq!(seq_of(p), seq_of(&pkts[0]).wrapping_add(i as u16));
        assert_eq!(ts_of(p), 3000 * i as u32);
        assert!(p.ends_with(&body));
    }

    // Scores cross the pipe: the pipe producer has its source's, and tells its consumers.
    let pipe_score = || piped.pipe_producer.score().first().map(|s| s.score);
    assert!(wait_for(Duration::from_secs(4), || pipe_score() == Some(10)), "{:?}", piped.pipe_producer.score());
    assert!(wait_for(Duration::from_secs(3), || c.score().producer_score == 10), "{:?}", c.score());

    // Pausing the source pauses the pipe producer: its consumers hear producerpause.
    let paused = Arc::new(AtomicUsize::new(0));
    let n = paused.clone();
    c.on_producer_pause(move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    block_on(producer.pause()).unwrap();
    assert!(wait_for(Duration::from_secs(3), || paused.load(Ordering::SeqCst) == 1));
    assert!(wait_for(Duration::from_secs(3), || piped.pipe_producer.paused()), "the pipe producer is paused too");
    block_on(producer.resume()).unwrap();
    assert!(wait_for(Duration::from_secs(3), || !c.producer_paused()));
    assert!(wait_for(Duration::from_secs(3), || !piped.pipe_producer.paused()));

    // Closing the source closes the pipe consumer, the pipe producer and its consumers.
    let closed = Arc::new(AtomicUsize::new(0));
    let n = closed.clone();
    c.on_producer_close(move || {
        n.fetch_add(1, Ordering::SeqCst);
    });
    producer.close();
    assert!(wait_for(Duration::from_secs(3), || closed.load(Ordering::SeqCst) == 1));
    assert!(wait_for(Duration::from_secs(3), || piped.pipe_consumer.closed() && piped.pipe_producer.closed()));
    engine.close();
}

#[test]
fn pipe_to_router_on_one_shard() {
    pipe_and_forward(1);
}

#[test]
fn pipe_to_router_across_shards() {
    pipe_and_forward(2);
}

#[test]
fn pipe_to_router_rejects_bad_targets_and_duplicates() {
    let engine = engine(1);
    let worker = worker(&engine);
    let (r1, r2) = (router(&worker), router(&worker));
    let (ingest, _sender) = ingest(&r1);
    let producer = produce_vp8(&ingest, 1111, None);
    let same = block_on(r1.pipe_to_router(PipeToRouterOptions::new(producer.id(), &r1)));
    assert_eq!(err_kind(same), ErrorKind::TypeError, "same router");
    let unknown = block_on(r1.pipe_to_router(PipeToRouterOptions::new("nope", &r2)));
    assert_eq!(err_kind(unknown), ErrorKind::TypeError, "unknown producer");
    block_on(r1.pipe_to_router(PipeToRouterOptions::new(producer.id(), &r2))).expect("first pipe");
    let again = block_on(r1.pipe_to_router(PipeToRouterOptions::new(producer.id(), &r2)));
    assert_eq!(err_kind(again), ErrorKind::TypeError, "keepId twice into one router");
    let mut fresh = PipeToRouterOptions::new(producer.id(), &r2);
    fresh.keep_id = false;
    let second = block_on(r1.pipe_to_router(fresh)).expect("a second pipe with a new id");
    assert_ne!(second.pipe_producer.id(), producer.id());
    engine.close();
}
