//! DataProducer and DataConsumer (`direct`, on DirectTransports): messages arrive with their
//! bytes and payload protocol ids, subchannels filter, pause/resume and close cascade with
//! mediasoup's events, a router spanning shards forwards each message once per (data producer,
//! shard), and pipeDataToRouter links two routers. Invalid calls are rejected with their types.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shardsfu_tests::shardsfu_engine::{
    block_on, DataConsumer, DataConsumerOptions, DataProducer, DataProducerOptions, DataSendOptions, DirectTransport,
    DirectTransportOptions, Engine, ErrorKind, PipeDataToRouterOptions, Router, PPID_BINARY, PPID_BINARY_EMPTY,
    PPID_STRING, PPID_STRING_EMPTY,
};
use shardsfu_tests::*;

const WAIT: Duration = Duration::from_secs(3);

type Inbox = Arc<Mutex<Vec<(Vec<u8>, u32)>>>;

fn inbox(c: &DataConsumer) -> Inbox {
    let got: Inbox = Arc::default();
    let sink = got.clone();
    c.on_message(move |payload, ppid| sink.lock().unwrap().push((payload.to_vec(), ppid)));
    got
}

fn counter() -> (Arc<AtomicUsize>, impl Fn() + Send + Sync + 'static) {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    (n, move || {
        m.fetch_add(1, Ordering::SeqCst);
    })
}

fn direct(router: &Router) -> DirectTransport {
    block_on(router.create_direct_transport(DirectTransportOptions::default())).unwrap()
}

fn produce(t: &DirectTransport, label: &str) -> DataProducer {
    block_on(t.produce_data(DataProducerOptions { label: label.into(), protocol: "chat".into(), ..Default::default() }))
        .unwrap()
}

fn consume(t: &DirectTransport, p: &DataProducer, subchannels: Option<Vec<u16>>) -> DataConsumer {
    block_on(t.consume_data(DataConsumerOptions { subchannels, ..DataConsumerOptions::new(p.id()) })).unwrap()
}

fn wait_len(inbox: &Inbox, n: usize) -> bool {
    wait_for(WAIT, || inbox.lock().unwrap().len() >= n)
}

fn shard_sum(engine: &Engine, key: &str) -> u64 {
    let dump = block_on(engine.dump()).unwrap();
    dump["shards"].as_array().unwrap().iter().map(|s| s[key].as_u64().unwrap()).sum()
}

#[test]
fn messages_reach_every_data_consumer_with_their_bytes_and_ppids() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (tp, tc) = (direct(&router), direct(&router));
    let p = produce(&tp, "room-chat");
    let (a, b) = (consume(&tc, &p, None), consume(&tc, &p, None));
    let (got_a, got_b) = (inbox(&a), inbox(&b));
    assert_eq!((a.label(), a.protocol(), a.data_producer_id()), ("room-chat", "chat", p.id()));

    let binary: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
    p.send_text("hello").unwrap();
    p.send(&binary).unwrap();
    p.send_text("").unwrap();
    p.send(&[]).unwrap();
    p.send_with(b"custom", false, DataSendOptions { ppid: Some(PPID_STRING), ..Default::default() }).unwrap();
    let want = vec![
        (b"hello".to_vec(), PPID_STRING),
        (binary.clone(), PPID_BINARY),
        (vec![0], PPID_STRING_EMPTY),
        (vec![0], PPID_BINARY_EMPTY),
        (b"custom".to_vec(), PPID_STRING),
    ];
    for got in [&got_a, &got_b] {
        assert!(wait_len(got, want.len()));
        assert_eq!(*got.lock().unwrap(), want, "in order, bytes and ppids intact");
    }

    let bytes: u64 = want.iter().map(|(m, _)| m.len() as u64).sum();
    let ps = block_on(p.get_stats()).unwrap();
    assert_eq!(ps[0]["type"], "data-producer");
    assert_eq!(ps[0]["messagesReceived"], want.len() as u64);
    assert_eq!(ps[0]["bytesReceived"], bytes);
    let cs = block_on(a.get_stats()).unwrap();
    assert_eq!(cs[0]["type"], "data-consumer");
    assert_eq!(cs[0]["messagesSent"], want.len() as u64);
    assert_eq!(cs[0]["bytesSent"], bytes);

    // Dumps list the objects as mediasoup does.
    let rd = block_on(router.dump()).unwrap();
    let map = &rd["mapDataProducerIdDataConsumerIds"];
    assert_eq!(map[0]["key"], p.id());
    assert_eq!(map[0]["values"].as_array().unwrap().len(), 2);
    assert_eq!(rd["mapDataConsumerIdDataProducerId"].as_array().unwrap().len(), 2);
    assert_eq!(block_on(tp.dump()).unwrap()["dataProducerIds"][0], p.id());
    assert_eq!(block_on(tc.dump()).unwrap()["dataConsumerIds"].as_array().unwrap().len(), 2);
    let d = block_on(a.dump()).unwrap();
    assert_eq!((d["type"].as_str(), d["dataProducerId"].as_str()), (Some("direct"), Some(p.id())));
    engine.close();
}

#[test]
fn subchannels_and_required_subchannel_filter_as_in_mediasoup() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (tp, tc) = (direct(&router), direct(&router));
    let p = produce(&tp, "sub");
    let none = consume(&tc, &p, None);
    let one = consume(&tc, &p, Some(vec![1]));
    let both = consume(&tc, &p, Some(vec![1, 2]));
    let (got_none, got_one, got_both) = (inbox(&none), inbox(&one), inbox(&both));
    let send = |m: &str, subchannels: Vec<u16>, required: Option<u16>| {
        let opts = DataSendOptions { subchannels, required_subchannel: required, ..Default::default() };
        p.send_with(m.as_bytes(), true, opts).unwrap()
    };
    send("all", vec![], None);
    send("to-2", vec![2], None);
    send("to-1-or-2", vec![1, 2], None);
    send("need-2", vec![], Some(2));
    send("to-1-need-2", vec![1], Some(2));
    p.send_text("end").unwrap();
    let texts =
        |g: &Inbox| g.lock().unwrap().iter().map(|(m, _)| String::from_utf8(m.clone()).unwrap()).collect::<Vec<_>>();
    assert!(wait_len(&got_none, 2) && wait_len(&got_one, 3) && wait_len(&got_both, 6));
    assert_eq!(texts(&got_none), ["all", "end"]);
    assert_eq!(texts(&got_one), ["all", "to-1-or-2", "end"]);
    assert_eq!(texts(&got_both), ["all", "to-2", "to-1-or-2", "need-2", "to-1-need-2", "end"]);

    block_on(one.set_subchannels(vec![3])).unwrap();
    block_on(none.add_subchannel(3)).unwrap();
    block_on(both.remove_subchannel(1)).unwrap();
    assert_eq!((one.subchannels(), none.subchannels(), both.subchannels()), (vec![3], vec![3], vec![2]));
    send("to-3", vec![3], None);
    send("to-1", vec![1], None);
    p.send_text("end").unwrap();
    assert!(wait_len(&got_none, 4) && wait_len(&got_both, 7));
    assert_eq!(texts(&got_one)[3..], ["to-3", "end"]);
    assert_eq!(texts(&got_none)[2..], ["to-3", "end"]);
    assert_eq!(texts(&got_both)[6..], ["end"]);
    assert_eq!(block_on(both.dump()).unwrap()["subchannels"], serde_json::json!([2]));
    engine.close();
}

#[test]
fn pause_resume_and_close_cascade_with_mediasoup_events() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let (tp, tc) = (direct(&router), direct(&router));
    let p = produce(&tp, "ctl");
    let c = consume(&tc, &p, None);
    let got = inbox(&c);
    let (paused, on_pause) = counter();
    let (resumed, on_resume) = counter();
    c.on_data_producer_pause(on_pause);
    c.on_data_producer_resume(on_resume);

    block_on(p.pause()).unwrap();
    assert!(p.paused());
    assert!(wait_for(WAIT, || paused.load(Ordering::SeqCst) == 1) && c.data_producer_paused());
    p.send_text("dropped while paused").unwrap();
    block_on(p.resume()).unwrap();
    assert!(wait_for(WAIT, || resumed.load(Ordering::SeqCst) == 1) && !c.data_producer_paused());
    block_on(c.pause()).unwrap();
    p.send_text("dropped: consumer paused").unwrap();
    block_on(c.resume()).unwrap();
    p.send_text("after").unwrap();
    assert!(wait_len(&got, 1));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(*got.lock().unwrap(), vec![(b"after".to_vec(), PPID_STRING)], "nothing went through while paused");

    // Closing the producer closes its consumer with `dataproducerclose`.
    let (closed, on_close) = counter();
    c.on_data_producer_close(on_close);
    let other = consume(&tc, &p, None);
    p.close();
    assert!(wait_for(WAIT, || closed.load(Ordering::SeqCst) == 1) && c.closed());
    assert!(wait_for(WAIT, || other.closed()));
    assert_eq!(p.send_text("x").unwrap_err().kind, ErrorKind::InvalidStateError);

    // Closing a transport closes its data producers and consumers with `transportclose`.
    let p2 = produce(&tp, "again");
    let c2 = consume(&tc, &p2, None);
    let (p_tc, on_p_tc) = counter();
    let (c_tc, on_c_tc) = counter();
    p2.on_transport_close(on_p_tc);
    c2.on_transport_close(on_c_tc);
    tc.close();
    assert!(wait_for(WAIT, || c_tc.load(Ordering::SeqCst) == 1));
    assert!(!p2.closed(), "the producer lives on another transport");
    tp.close();
    assert!(wait_for(WAIT, || p_tc.load(Ordering::SeqCst) == 1) && p2.closed());
    engine.close();
}

#[test]
fn invalid_calls_are_rejected_with_their_types_and_change_nothing() {
    let engine = engine(1);
    let router = router(&worker(&engine));
    let tp = block_on(
        router.create_direct_transport(DirectTransportOptions { max_message_size: 1000, ..Default::default() }),
    )
    .unwrap();
    let p = produce(&tp, "x");
    let (plain, _sock) = ingest(&router);
    let e = block_on(plain.produce_data(DataProducerOptions::default())).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedError, "{e}");
    let e = block_on(plain.consume_data(DataConsumerOptions::new(p.id()))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::UnsupportedError, "{e}");
    let dup = DataProducerOptions { id: Some(p.id().to_owned()), ..Default::default() };
    assert_eq!(block_on(tp.produce_data(dup)).unwrap_err().kind, ErrorKind::TypeError);
    let bad = DataProducerOptions { id: Some("not-a-uuid".into()), ..Default::default() };
    assert_eq!(block_on(tp.produce_data(bad)).unwrap_err().kind, ErrorKind::TypeError);
    assert!(block_on(tp.consume_data(DataConsumerOptions::new("8e2a9f4c-0000-4000-8000-000000000000"))).is_err());
    let many = DataConsumerOptions { subchannels: Some((0..100).collect()), ..DataConsumerOptions::new(p.id()) };
    assert_eq!(block_on(tp.consume_data(many)).unwrap_err().kind, ErrorKind::TypeError);
    assert_eq!(p.send(&[7u8; 1001]).unwrap_err().kind, ErrorKind::TypeError, "over maxMessageSize");

    // Nothing changed: exactly one data producer, no data consumer, and it still delivers.
    let d = block_on(tp.dump()).unwrap();
    assert_eq!(d["dataProducerIds"].as_array().unwrap().len(), 1);
    assert!(d["dataConsumerIds"].as_array().unwrap().is_empty());
    let c = consume(&tp, &p, None);
    let got = inbox(&c);
    p.send(&[7u8; 1000]).unwrap();
    assert!(wait_len(&got, 1));
    assert_eq!(got.lock().unwrap()[0].0, vec![7u8; 1000]);
    engine.close();
}

#[test]
fn a_router_spanning_shards_forwards_each_message_once_per_data_producer_and_shard() {
    let engine = spread_engine();
    let router = router(&worker(&engine));
    let tp = direct(&router);
    let p = produce(&tp, "span");
    let transports: Vec<_> = (0..6).map(|_| direct(&router)).collect();
    let consumers: Vec<_> = transports.iter().map(|t| (t.shard(), consume(t, &p, None))).collect();
    assert!(consumers.iter().any(|(s, _)| *s != tp.shard()), "placement spread the room");
    assert!(consumers.iter().any(|(s, _)| *s == tp.shard()));
    let inboxes: Vec<_> = consumers.iter().map(|(_, c)| inbox(c)).collect();
    let (paused, on_pause) = counter();
    let remote = consumers.iter().find(|(s, _)| *s != tp.shard()).unwrap();
    remote.1.on_data_producer_pause(on_pause);

    let before = shard_sum(&engine, "dataMessagesToShards");
    let messages: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
    for m in &messages {
        p.send(m).unwrap();
    }
    for (got, (shard, c)) in inboxes.iter().zip(&consumers) {
        assert!(wait_len(got, messages.len()), "consumer {} on shard {shard}", c.id());
        let bytes: Vec<_> = got.lock().unwrap().iter().map(|(m, _)| m.clone()).collect();
        assert_eq!(bytes, messages, "in order, intact, on shard {shard}");
    }
    // One data producer, consumers on one other shard: one message across per message sent.
    assert_eq!(shard_sum(&engine, "dataMessagesToShards") - before, messages.len() as u64);

    // Pause and close cross shards too.
    block_on(p.pause()).unwrap();
    assert!(wait_for(WAIT, || paused.load(Ordering::SeqCst) == 1));
    let (closed, on_close) = counter();
    remote.1.on_data_producer_close(on_close);
    p.close();
    assert!(wait_for(WAIT, || closed.load(Ordering::SeqCst) == 1));
    assert!(wait_for(WAIT, || consumers.iter().all(|(_, c)| c.closed())));
    engine.close();
}

#[test]
fn pipe_data_to_router_links_two_routers_both_ways() {
    let engine = spread_engine();
    let worker = worker(&engine);
    let (r1, r2) = (router(&worker), router(&worker));
    assert_ne!(r1.shard(), r2.shard(), "the link crosses shards");
    let tp = direct(&r1);
    let source = produce(&tp, "piped");
    let pipe = block_on(r1.pipe_data_to_router(PipeDataToRouterOptions::new(source.id(), &r2))).unwrap();
    assert_eq!(pipe.pipe_data_producer.id(), source.id(), "keepId");
    assert_eq!(pipe.pipe_data_producer.label(), "piped");
    assert_eq!(pipe.pipe_data_consumer.data_producer_id(), source.id());
    let t2 = direct(&r2);
    let c = consume(&t2, &pipe.pipe_data_producer, None);
    let got = inbox(&c);
    source.send_text("across routers").unwrap();
    source.send(&[1, 2, 3]).unwrap();
    assert!(wait_len(&got, 2));
    assert_eq!(*got.lock().unwrap(), vec![(b"across routers".to_vec(), PPID_STRING), (vec![1, 2, 3], PPID_BINARY)]);

    // Pausing the source pauses the pipe data producer, whose consumers hear of it.
    let (paused, on_pause) = counter();
    c.on_data_producer_pause(on_pause);
    block_on(source.pause()).unwrap();
    assert!(wait_for(WAIT, || paused.load(Ordering::SeqCst) == 1 && pipe.pipe_data_producer.paused()));
    block_on(source.resume()).unwrap();

    // A second pipe of the same data producer to the same router would clash on its id.
    let e = block_on(r1.pipe_data_to_router(PipeDataToRouterOptions::new(source.id(), &r2))).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TypeError);
    assert!(block_on(r1.pipe_data_to_router(PipeDataToRouterOptions::new(source.id(), &r1))).is_err());

    // Closing the source closes the pipe pair and the far consumer.
    let (closed, on_close) = counter();
    c.on_data_producer_close(on_close);
    source.close();
    assert!(wait_for(WAIT, || pipe.pipe_data_consumer.closed() && pipe.pipe_data_producer.closed()));
    assert!(wait_for(WAIT, || closed.load(Ordering::SeqCst) == 1 && c.closed()));
    engine.close();
}
