//! Data producers across shards, on simulated time: one message per (data producer, shard), fan
//! out on the far shard, pause and close crossing, and a data mirror left without consumers torn
//! down after `MIRROR_IDLE` with its origin told to stop.

mod common;

use std::sync::Arc;

use common::*;
use shardsfu_engine::core::MirrorOf;
use shardsfu_engine::core::{CloseReason, DataMessage, Event, ObjectId, ShardCommand, MIRROR_IDLE};

const A: usize = 0;
const B: usize = 1;

fn message(bytes: &[u8]) -> Arc<DataMessage> {
    Arc::new(DataMessage { ppid: 53, payload: Arc::from(bytes), subchannels: Vec::new(), required_subchannel: None })
}

fn direct(mesh: &mut Mesh, shard: usize) -> ObjectId {
    let id = mesh.fresh_id();
    mesh.control(shard, |s, now| s.create_direct_transport(now, ROUTER, id)).unwrap();
    id
}

fn data_consumer(mesh: &mut Mesh, shard: usize, producer: ObjectId) -> ObjectId {
    let t = direct(mesh, shard);
    let id = mesh.fresh_id();
    mesh.control(shard, |s, _| s.consume_data(t, id, producer, false, Vec::new())).unwrap();
    id
}

/// Messages each data consumer in `events` got: (consumer, payload).
fn messages(events: &[Event]) -> Vec<(ObjectId, Vec<u8>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::DataMessage { data_consumer, payload, .. } => Some((*data_consumer, payload.to_vec())),
            _ => None,
        })
        .collect()
}

/// `ROUTER` on two shards, a data producer on A with one consumer there and two on B (through a
/// data mirror subscribed at A).
fn spanning() -> (Mesh, ObjectId, ObjectId, [ObjectId; 2]) {
    let mut mesh = Mesh::new(2);
    mesh.router(A, ROUTER);
    mesh.router(B, ROUTER);
    let tp = direct(&mut mesh, A);
    let p = mesh.fresh_id();
    mesh.control(A, |s, _| s.produce_data(tp, p, false)).unwrap();
    let on_a = data_consumer(&mut mesh, A, p);
    mesh.control(B, |s, now| s.create_data_mirror(now, ROUTER, p, A, MirrorOf::Producer(p), false)).unwrap();
    mesh.control(A, |s, _| s.add_data_subscriber(p, B, p)).unwrap();
    mesh.pump();
    let on_b = [data_consumer(&mut mesh, B, p), data_consumer(&mut mesh, B, p)];
    (mesh, p, on_a, on_b)
}

#[test]
fn a_message_crosses_once_per_shard_and_fans_out_there() {
    let (mut mesh, p, on_a, on_b) = spanning();
    mesh.events(A);
    mesh.events(B);
    for i in 0..3u8 {
        mesh.control(A, |s, _| s.data_send(p, message(&[i; 40]))).unwrap();
    }
    mesh.pump();
    let crossed = mesh
        .crossings
        .iter()
        .filter(|c| matches!(c, Crossing::Command { from: A, to: B, cmd: ShardCommand::DataMessage { .. } }))
        .count();
    assert_eq!(crossed, 3, "one crossing per message, not one per consumer on B");
    assert_eq!(mesh.shards[A].shard_snapshot().data_messages_to_shards, 3);
    let (got_a, got_b) = (messages(&mesh.events(A)), messages(&mesh.events(B)));
    assert_eq!(got_a, (0..3u8).map(|i| (on_a, vec![i; 40])).collect::<Vec<_>>());
    for c in on_b {
        let mine: Vec<_> = got_b.iter().filter(|(id, _)| *id == c).map(|(_, m)| m.clone()).collect();
        assert_eq!(mine, (0..3u8).map(|i| vec![i; 40]).collect::<Vec<_>>(), "consumer {c} on B, in order");
    }

    // Pause and close reach B's consumers with their events.
    mesh.control(A, |s, _| s.pause_data_producer(p)).unwrap();
    mesh.pump();
    let paused = mesh.events(B).iter().filter(|e| matches!(e, Event::DataProducerPaused { .. })).count();
    assert_eq!(paused, 2);
    mesh.control(A, |s, _| s.data_send(p, message(b"paused"))).unwrap();
    mesh.pump();
    assert!(messages(&mesh.events(B)).is_empty(), "nothing while paused");
    mesh.control(A, |s, _| s.close_data_producer(p)).unwrap();
    mesh.pump();
    let closed: Vec<_> = mesh
        .events(B)
        .into_iter()
        .filter_map(|e| match e {
            Event::Closed { object, reason: CloseReason::DataProducerClosed } => Some(object),
            _ => None,
        })
        .collect();
    assert_eq!(closed.len(), 2);
    assert!(on_b.iter().all(|c| closed.contains(c)));
    assert!(mesh.shards[B].kind_of(p).is_none(), "the mirror closed with its producer");
}

#[test]
fn a_data_mirror_left_without_consumers_is_torn_down_and_the_origin_stops_sending() {
    let (mut mesh, p, on_a, on_b) = spanning();
    for c in on_b {
        mesh.control(B, |s, _| s.close_data_consumer(c)).unwrap();
    }
    mesh.advance(MIRROR_IDLE.as_millis() as u64 / 2);
    assert!(mesh.shards[B].kind_of(p).is_some(), "the idle data mirror lives on for a while");
    mesh.advance(MIRROR_IDLE.as_millis() as u64);
    assert!(mesh.shards[B].kind_of(p).is_none(), "the idle data mirror is gone");
    assert!(mesh
        .crossings
        .iter()
        .any(|c| matches!(c, Crossing::Command { from: B, to: A, cmd: ShardCommand::Unsubscribe { .. } })));
    let before = mesh.shards[A].shard_snapshot().data_messages_to_shards;
    mesh.events(A);
    mesh.control(A, |s, _| s.data_send(p, message(b"only A"))).unwrap();
    mesh.pump();
    assert_eq!(mesh.shards[A].shard_snapshot().data_messages_to_shards, before, "nothing crosses to B");
    assert_eq!(messages(&mesh.events(A)), vec![(on_a, b"only A".to_vec())]);

    // A consumer coming back on B gets a new mirror and the messages again.
    mesh.control(B, |s, now| s.create_data_mirror(now, ROUTER, p, A, MirrorOf::Producer(p), false)).unwrap();
    mesh.control(A, |s, _| s.add_data_subscriber(p, B, p)).unwrap();
    let back = data_consumer(&mut mesh, B, p);
    mesh.events(B);
    mesh.control(A, |s, _| s.data_send(p, message(b"again"))).unwrap();
    mesh.pump();
    assert_eq!(messages(&mesh.events(B)), vec![(back, b"again".to_vec())]);
}
