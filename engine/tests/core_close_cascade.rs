//! Closing a router, transport or producer closes everything under it, with mediasoup's
//! reasons, frees its sockets and leaves nothing behind.

mod common;

use std::collections::BTreeMap;

use common::*;
use shardsfu_engine::core::{CloseReason, Event, ObjectCounts, ObjectId, PlainSpec, Snapshot};
use shardsfu_engine::ErrorKind;
use shardsfu_net::SocketId;

/// Closed events by object (each object must close once).
fn closed(events: Vec<Event>) -> BTreeMap<ObjectId, CloseReason> {
    let mut map = BTreeMap::new();
    for e in events {
        let Event::Closed { object, reason } = e else { panic!("unexpected event {e:?}") };
        assert!(map.insert(object, reason).is_none(), "object {object} closed twice");
    }
    map
}

fn assert_gone(sfu: &Sfu, id: ObjectId) {
    assert_eq!(sfu.shard.kind_of(id), None, "{id} still known");
    let err = sfu.shard.snapshot(id).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidStateError);
}

fn fanout(sfu: &Sfu) -> Vec<(ObjectId, Vec<ObjectId>)> {
    match sfu.shard.snapshot(ROUTER).unwrap() {
        Snapshot::Router(r) => r.fanout,
        other => panic!("{other:?}"),
    }
}

#[test]
fn close_producer_closes_its_consumers() {
    let mut sfu = Sfu::new(Options { consumers: 3, ..Options::default() });
    sfu.shard.close_producer(PRODUCER).unwrap();
    let events = closed(sfu.events());
    let want: BTreeMap<_, _> = sfu.consumers.iter().map(|c| (c.id, CloseReason::ProducerClosed)).collect();
    assert_eq!(events, want, "the producer itself was asked to close: no event for it");
    assert_gone(&sfu, PRODUCER);
    for c in &sfu.consumers {
        assert_gone(&sfu, c.id);
        assert_eq!(sfu.shard.pause_consumer(c.id).unwrap_err().kind(), ErrorKind::InvalidStateError);
        assert!(sfu.transport(c.transport).consumers.is_empty());
        assert!(sfu.transport(c.transport).consumer_ssrcs.is_empty());
    }
    assert!(fanout(&sfu).is_empty());
    assert!(sfu.transport(PRODUCER_TRANSPORT).ssrc_table.is_empty());
    assert!(sfu.transport(PRODUCER_TRANSPORT).mid_table.is_empty());
    assert_eq!(
        sfu.shard.object_counts(),
        ObjectCounts { routers: 1, transports: 4, producers: 0, consumers: 0, ..Default::default() }
    );
    assert!(sfu.shard.take_released_sockets().is_empty());
    // Its media is unknown now.
    sfu.send_media(1, true);
    assert!(sfu.take().is_empty());
    assert_eq!(sfu.shard.drops().producer_not_found, 1);
    assert_eq!(sfu.shard.close_producer(PRODUCER).unwrap_err().kind(), ErrorKind::InvalidStateError);
}

#[test]
fn close_producer_transport_cascades() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    sfu.shard.close_transport(PRODUCER_TRANSPORT).unwrap();
    let events = closed(sfu.events());
    let mut want: BTreeMap<_, _> = sfu.consumers.iter().map(|c| (c.id, CloseReason::ProducerClosed)).collect();
    want.insert(PRODUCER, CloseReason::TransportClosed);
    assert_eq!(events, want);
    assert_eq!(sfu.shard.take_released_sockets(), vec![PRODUCER_SOCKET]);
    assert!(sfu.shard.take_released_sockets().is_empty(), "taken once");
    assert_gone(&sfu, PRODUCER_TRANSPORT);
    assert_gone(&sfu, PRODUCER);
    assert!(fanout(&sfu).is_empty());
    sfu.send_media(1, true);
    assert!(sfu.take().is_empty());
    assert_eq!(sfu.shard.drops().unknown_socket, 1, "its socket is no longer routed");
}

#[test]
fn close_consumer_transport_leaves_the_others_running() {
    let mut sfu = Sfu::new(Options { consumers: 3, ..Options::default() });
    let gone = sfu.consumers[1].clone();
    sfu.shard.close_transport(gone.transport).unwrap();
    assert_eq!(closed(sfu.events()), BTreeMap::from([(gone.id, CloseReason::TransportClosed)]));
    assert_eq!(sfu.shard.take_released_sockets(), vec![gone.socket]);
    assert_gone(&sfu, gone.transport);
    assert_gone(&sfu, gone.id);
    let fan = fanout(&sfu);
    assert_eq!(fan.len(), 1);
    assert_eq!(fan[0], (PRODUCER, vec![sfu.consumers[0].id, sfu.consumers[2].id]));
    sfu.send_media(1, true);
    let out = sfu.take();
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|d| d.dest != gone.remote));
    // RTCP from the closed consumer's endpoint goes nowhere.
    sfu.recv(gone.socket, gone.remote, &pli(1, gone.ssrc));
    assert!(sfu.take().is_empty());
}

#[test]
fn close_router_closes_everything() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    // A consumer on the producer's own transport too, and a transport without RTCP mux.
    let loopback =
        sfu.add_consumer_on(PRODUCER_TRANSPORT, PRODUCER_SOCKET, addr(10_000), addr(PRODUCER_REMOTE_PORT), false);
    let (now, no_mux) = (sfu.now, sfu.fresh_id());
    let spec = PlainSpec {
        rtp_socket: SocketId(500),
        local: addr(15_000),
        rtcp_socket: Some(SocketId(501)),
        local_rtcp: Some(addr(15_001)),
        comedia: false,
        rtcp_mux: false,
    };
    sfu.shard.create_plain_transport(now, ROUTER, no_mux, spec).unwrap();
    sfu.send_media(1, true);
    sfu.take();

    sfu.shard.close_router(ROUTER, None).unwrap();
    let events = closed(sfu.events());
    for t in [PRODUCER_TRANSPORT, no_mux].into_iter().chain(sfu.consumers.iter().map(|c| c.transport)) {
        assert_eq!(events.get(&t), Some(&CloseReason::RouterClosed), "transport {t}");
    }
    assert_eq!(events.get(&PRODUCER), Some(&CloseReason::TransportClosed));
    // As in mediasoup, every consumer of a closing router closes with its transport, including
    // the one on the producer's own transport.
    for c in &sfu.consumers {
        assert_eq!(events.get(&c.id), Some(&CloseReason::TransportClosed), "consumer {}", c.id);
    }
    let _ = loopback;
    assert_eq!(events.len(), 2 + 2 + 1 + 3, "transports, producer, consumers: {events:?}");
    assert_eq!(events.get(&ROUTER), None, "asked to close: no event");

    let mut released = sfu.shard.take_released_sockets();
    released.sort();
    let mut want: Vec<SocketId> = sfu.consumers.iter().map(|c| c.socket).filter(|&s| s != PRODUCER_SOCKET).collect();
    want.extend([PRODUCER_SOCKET, SocketId(500), SocketId(501)]);
    want.sort();
    assert_eq!(released, want);
    assert_eq!(sfu.shard.object_counts(), ObjectCounts::default());
    assert_eq!(sfu.shard.poll_timeout(), None, "nothing left to time");
    for id in [ROUTER, PRODUCER_TRANSPORT, PRODUCER, no_mux] {
        assert_gone(&sfu, id);
    }
    for c in sfu.consumers.clone() {
        assert_gone(&sfu, c.id);
        assert_gone(&sfu, c.transport);
    }
    // Nothing forwards, nothing ticks.
    sfu.send_media(2, true);
    sfu.advance(3000);
    assert!(sfu.take().is_empty());
    // Ids are free again.
    sfu.shard.create_router(ROUTER).unwrap();
}

#[test]
fn close_router_with_a_reason_reports_it() {
    let mut sfu = Sfu::new(Options { consumers: 1, ..Options::default() });
    sfu.shard.close_router(ROUTER, Some(CloseReason::WorkerClosed)).unwrap();
    let events = closed(sfu.events());
    assert_eq!(events.get(&ROUTER), Some(&CloseReason::WorkerClosed));
    assert_eq!(sfu.shard.close_router(ROUTER, None).unwrap_err().kind(), ErrorKind::InvalidStateError);
    assert_eq!(sfu.shard.close_transport(PRODUCER_TRANSPORT).unwrap_err().kind(), ErrorKind::InvalidStateError);
}

#[test]
fn close_consumer_alone() {
    let mut sfu = Sfu::new(Options { consumers: 2, ..Options::default() });
    let c = sfu.consumers[0].clone();
    sfu.shard.close_consumer(c.id).unwrap();
    assert!(sfu.events().is_empty(), "asked to close: no event");
    assert_gone(&sfu, c.id);
    assert_eq!(fanout(&sfu), vec![(PRODUCER, vec![sfu.consumers[1].id])]);
    assert!(sfu.transport(c.transport).consumer_ssrcs.is_empty(), "media and RTX SSRCs forgotten");
    assert_eq!(sfu.shard.close_consumer(c.id).unwrap_err().kind(), ErrorKind::InvalidStateError);
}

#[test]
fn close_transport_holding_a_producer_and_its_own_consumer() {
    // A loopback consumer: the endpoint receives its own producer on the same transport.
    let mut sfu = Sfu::new(Options { consumers: 0, ..Options::default() });
    let i = sfu.add_consumer_on(PRODUCER_TRANSPORT, PRODUCER_SOCKET, addr(10_000), addr(PRODUCER_REMOTE_PORT), false);
    sfu.shard.close_transport(PRODUCER_TRANSPORT).unwrap();
    let events = closed(sfu.events());
    assert_eq!(
        events,
        BTreeMap::from([(PRODUCER, CloseReason::TransportClosed), (sfu.consumers[i].id, CloseReason::ProducerClosed)])
    );
    assert_eq!(
        sfu.shard.object_counts(),
        ObjectCounts { routers: 1, transports: 0, producers: 0, consumers: 0, ..Default::default() }
    );
}
