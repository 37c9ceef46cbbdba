//! Routers spanning shards, and pipeToRouter: one record per packet per subscribed shard, fan-out
//! on the far shard, control (key frame requests, pause, resume, close) between shards, loss
//! repaired on the far shard from its own buffer, and records that do not fit counted as drops.

mod common;

use common::*;
use shardsfu_engine::core::{CloseReason, Event, ObjectId, ShardCommand, MIRROR_IDLE};
use shardsfu_engine::rtp::parse_rtp;
use shardsfu_engine::rtp_parameters::MediaKind;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
/// The target router of pipeToRouter.
const ROUTER2: ObjectId = 2;

/// `ROUTER` on `per_shard.len()` shards, a VP8 producer on shard `A`, a mirror of it on every
/// other shard, and `per_shard[s]` consumers on shard `s`. Nothing sent yet.
fn spanning(per_shard: &[usize]) -> (Mesh, MeshProducer, Vec<MeshConsumer>) {
    let mut mesh = Mesh::new(per_shard.len());
    for s in 0..per_shard.len() {
        mesh.router(s, ROUTER);
    }
    let p = mesh.producer(A, ROUTER, MediaKind::Video);
    for s in 1..per_shard.len() {
        mesh.mirror(&p, s).unwrap();
    }
    let mut consumers = Vec::new();
    for (s, &n) in per_shard.iter().enumerate() {
        for _ in 0..n {
            let consumable = p.consumable.clone();
            consumers.push(mesh.consumer(s, ROUTER, p.id, &consumable));
        }
    }
    mesh.clear();
    (mesh, p, consumers)
}

/// The RTP datagrams sent to `c`'s endpoint in `datagrams`.
fn rtp_to<'d>(datagrams: &'d [Datagram], c: &MeshConsumer) -> Vec<&'d Datagram> {
    datagrams.iter().filter(|d| d.dest == c.remote && !d.is_rtcp()).collect()
}

/// The consumers' ids, sorted.
fn ids(consumers: &[&MeshConsumer]) -> Vec<ObjectId> {
    let mut v: Vec<ObjectId> = consumers.iter().map(|c| c.id).collect();
    v.sort_unstable();
    v
}

/// The consumer ids named by `events` of one variant, sorted; panics on any other event.
fn consumers_in(events: &[Event], want: fn(&Event) -> Option<ObjectId>) -> Vec<ObjectId> {
    let mut v: Vec<ObjectId> = events.iter().map(|e| want(e).unwrap_or_else(|| panic!("unexpected {e:?}"))).collect();
    v.sort_unstable();
    v
}

#[test]
fn one_record_per_packet_per_shard_and_fan_out_there() {
    let (mut mesh, p, consumers) = spanning(&[3, 4]);
    let (on_a, on_b): (Vec<_>, Vec<_>) = consumers.iter().partition(|c| c.shard == A);
    let input = Mesh::media(&p, 1000, true).marker().ts(0xDEAD_BEEF);
    let input_bytes = input.build();
    let input_payload = parse_rtp(&input_bytes).unwrap().payload(&input_bytes).to_vec();
    mesh.produce_rtp(&p, &input);

    let from_a = mesh.take(A);
    assert_eq!(from_a.len(), 3, "one datagram per consumer on A: {from_a:?}");
    let records = mesh.sinks[A].records.clone();
    assert_eq!(records.len(), 1, "one record for shard B, not one per consumer there");
    assert_eq!((records[0].to, records[0].mirror()), (B, p.id));
    assert_eq!(records[0].packet(), &input_bytes[..], "the record carries the packet as received");
    assert_eq!(mesh.shards[A].records_to_shards(), 1);
    assert!(mesh.take(B).is_empty(), "B has sent nothing before the record arrives");

    assert_eq!(mesh.pump(), 1, "the record is all that crosses");
    assert_eq!(mesh.crossings.last(), Some(&Crossing::Record { from: A, to: B, mirror: p.id }));
    let from_b = mesh.take(B);
    assert_eq!(from_b.len(), 4, "one datagram per consumer on B: {from_b:?}");
    for (c, out) in on_a.iter().map(|c| (c, &from_a)).chain(on_b.iter().map(|c| (c, &from_b))) {
        let mine = rtp_to(out, c);
        assert_eq!(mine.len(), 1, "consumer {} on shard {} gets one datagram", c.id, c.shard);
        let h = mine[0].rtp();
        assert_eq!(mine[0].socket, c.socket);
        assert_eq!((h.ssrc, h.payload_type, h.timestamp, h.marker), (c.ssrc, c.pt, 0xDEAD_BEEF, true));
        assert_eq!(mine[0].payload(), &input_payload[..], "same payload bytes on both shards");
    }
    // On B too the consumers share one body: the record's.
    let addrs: Vec<usize> = from_b.iter().map(|d| d.body_addr).collect();
    assert!(addrs[0] != 0 && addrs.iter().all(|&a| a == addrs[0]), "one shared body on B: {addrs:?}");

    // More packets: still one record each, and every consumer's sequence continuous.
    let mut seqs: Vec<Vec<u16>> = consumers
        .iter()
        .map(|c| {
            let out = if c.shard == A { &from_a } else { &from_b };
            vec![rtp_to(out, c)[0].rtp().sequence_number]
        })
        .collect();
    for seq in 1001..1010u16 {
        mesh.send_media(&p, seq, false);
        let (from_a, from_b) = (mesh.take(A), mesh.take(B));
        for (c, seqs) in consumers.iter().zip(&mut seqs) {
            let out = if c.shard == A { &from_a } else { &from_b };
            let mine = rtp_to(out, c);
            assert_eq!(mine.len(), 1);
            assert_eq!(mine[0].rtp().ssrc, c.ssrc);
            assert_eq!(mine[0].payload(), &vp8_delta(seq as u8)[..]);
            seqs.push(mine[0].rtp().sequence_number);
        }
    }
    for (c, seqs) in consumers.iter().zip(&seqs) {
        for w in seqs.windows(2) {
            assert_eq!(w[1], w[0].wrapping_add(1), "consumer {} on shard {}: {seqs:?}", c.id, c.shard);
        }
    }
    let mut ssrcs: Vec<u32> = consumers.iter().map(|c| c.ssrc).collect();
    ssrcs.sort_unstable();
    ssrcs.dedup();
    assert_eq!(ssrcs.len(), 7, "every consumer has its own SSRC");
    assert_eq!(mesh.shards[A].records_to_shards(), 10);
    assert_eq!(mesh.shards[B].records_to_shards(), 0);
    assert_eq!(mesh.consumer_snapshot(on_b[3]).packets, 10);
    assert_eq!(mesh.producer_snapshot(B, p.id).packets, 10, "the mirror counts what it received");
    for s in [A, B] {
        assert_eq!(mesh.shards[s].drops().total(), 0, "shard {s}: {:?}", mesh.shards[s].drops());
    }
}

#[test]
fn two_subscribed_shards_get_one_record_each() {
    let (mut mesh, p, consumers) = spanning(&[0, 2, 1]);
    for seq in 1..=5u16 {
        mesh.produce_rtp(&p, &Mesh::media(&p, seq, seq == 1));
        let mut to: Vec<(usize, ObjectId)> = mesh.sinks[A].records.iter().map(|r| (r.to, r.mirror())).collect();
        to.sort_unstable();
        assert_eq!(to, vec![(B, p.id), (C, p.id)], "one record per subscribed shard");
        mesh.pump();
        assert!(mesh.take(A).is_empty(), "no consumer on A");
        let (from_b, from_c) = (mesh.take(B), mesh.take(C));
        assert_eq!((from_b.len(), from_c.len()), (2, 1));
        for c in &consumers {
            let out = if c.shard == B { &from_b } else { &from_c };
            assert_eq!(rtp_to(out, c).len(), 1, "consumer {} on shard {}", c.id, c.shard);
        }
    }
    assert_eq!(mesh.shards[A].records_to_shards(), 10);
}

#[test]
fn pli_on_the_far_shard_becomes_a_pli_to_the_producer() {
    let (mut mesh, p, consumers) = spanning(&[1, 2]);
    mesh.send_media(&p, 1, true);
    mesh.clear();
    let b0 = consumers.iter().find(|c| c.shard == B).unwrap();
    mesh.consumer_rtcp(b0, &pli(0xABCD, b0.ssrc));
    assert!(mesh.take(B).is_empty(), "B has no producer endpoint to ask");
    assert!(mesh.take(A).is_empty(), "nothing on A before the command arrives");
    assert_eq!(mesh.deliver_commands(B), 1);
    assert_eq!(
        mesh.crossings.last(),
        Some(&Crossing::Command { from: B, to: A, cmd: ShardCommand::KeyFrameRequest { source: p.id } })
    );
    let from_a = mesh.take(A);
    let to_producer: Vec<Rtcp> =
        from_a.iter().filter(|d| (d.socket, d.dest) == (p.socket, p.remote)).flat_map(Datagram::rtcp).collect();
    assert_eq!(to_producer.len(), 1, "{from_a:?}");
    assert!(matches!(to_producer[0], Rtcp::Pli { media: PRODUCER_SSRC, .. }), "{to_producer:?}");
    assert_eq!(mesh.consumer_snapshot(b0).plis_in, 1);
    assert_eq!(mesh.pump(), 0, "nothing else crosses");
}

#[test]
fn pause_resume_and_close_reach_the_far_consumers() {
    let (mut mesh, p, consumers) = spanning(&[1, 3]);
    mesh.send_media(&p, 1, true);
    mesh.clear();
    let (on_a, on_b): (Vec<_>, Vec<_>) = consumers.iter().partition(|c| c.shard == A);
    let paused = |e: &Event| match e {
        Event::ProducerPaused { consumer } => Some(*consumer),
        _ => None,
    };
    let resumed = |e: &Event| match e {
        Event::ProducerResumed { consumer } => Some(*consumer),
        _ => None,
    };
    let producer_closed = |e: &Event| match e {
        Event::Closed { object, reason: CloseReason::ProducerClosed } => Some(*object),
        _ => None,
    };
    assert!(mesh.events(A).is_empty() && mesh.events(B).is_empty());

    // Pause.
    mesh.control(A, |s, _| s.pause_producer(p.id)).unwrap();
    assert_eq!(consumers_in(&mesh.events(A), paused), ids(&on_a));
    assert!(mesh.events(B).is_empty(), "B learns it from a command");
    assert_eq!(mesh.deliver_commands(A), 1);
    assert_eq!(
        mesh.crossings.last(),
        Some(&Crossing::Command { from: A, to: B, cmd: ShardCommand::MirrorPaused { mirror: p.id, paused: true } })
    );
    assert_eq!(consumers_in(&mesh.events(B), paused), ids(&on_b));
    assert!(mesh.producer_snapshot(B, p.id).paused);
    assert!(on_b.iter().all(|c| mesh.consumer_snapshot(c).producer_paused));
    mesh.send_media(&p, 2, false);
    assert!(mesh.sinks[A].records.is_empty() && mesh.take(A).is_empty() && mesh.take(B).is_empty());
    assert_eq!(mesh.shards[A].records_to_shards(), 1, "nothing crosses while paused");

    // Resume: both shards' consumers wait for a key frame again.
    mesh.control(A, |s, now| s.resume_producer(now, p.id)).unwrap();
    assert_eq!(consumers_in(&mesh.events(A), resumed), ids(&on_a));
    mesh.pump();
    assert!(mesh.crossings.contains(&Crossing::Command {
        from: A,
        to: B,
        cmd: ShardCommand::MirrorPaused { mirror: p.id, paused: false }
    }));
    assert_eq!(consumers_in(&mesh.events(B), resumed), ids(&on_b));
    assert!(!mesh.producer_snapshot(B, p.id).paused);
    mesh.clear();
    mesh.send_media(&p, 3, true);
    let (from_a, from_b) = (mesh.take(A), mesh.take(B));
    assert!(on_a.iter().all(|c| rtp_to(&from_a, c).len() == 1));
    assert!(on_b.iter().all(|c| rtp_to(&from_b, c).len() == 1));

    // Close.
    let (before_a, before_b) = (mesh.shards[A].object_counts(), mesh.shards[B].object_counts());
    mesh.control(A, |s, _| s.close_producer(p.id)).unwrap();
    assert_eq!(consumers_in(&mesh.events(A), producer_closed), ids(&on_a));
    assert_eq!(mesh.deliver_commands(A), 1);
    assert_eq!(
        mesh.crossings.last(),
        Some(&Crossing::Command { from: A, to: B, cmd: ShardCommand::MirrorClosed { mirror: p.id } })
    );
    assert_eq!(
        consumers_in(&mesh.events(B), producer_closed),
        ids(&on_b),
        "B's consumers close with producerclose, and the mirror itself says nothing"
    );
    let (after_a, after_b) = (mesh.shards[A].object_counts(), mesh.shards[B].object_counts());
    assert_eq!((after_a.producers, after_a.consumers), (before_a.producers - 1, before_a.consumers - 1));
    assert_eq!((after_b.producers, after_b.consumers), (before_b.producers - 1, before_b.consumers - 3));
    assert_eq!(mesh.shards[B].kind_of(p.id), None);
    assert!(on_b.iter().all(|c| mesh.shards[B].kind_of(c.id).is_none()));
    assert_eq!(mesh.pump(), 0, "nothing comes back");
}

#[test]
fn far_consumer_nack_is_answered_from_the_far_shard_buffer() {
    let (mut mesh, p, consumers) = spanning(&[1, 1]);
    let b0 = consumers.iter().find(|c| c.shard == B).unwrap().clone();
    for seq in 1..=5u16 {
        mesh.send_media(&p, seq, seq == 1);
    }
    let sent: Vec<u16> = rtp_to(&mesh.take(B), &b0).iter().map(|d| d.rtp().sequence_number).collect();
    assert_eq!(sent.len(), 5);
    mesh.clear();
    let crossed = mesh.crossings.len();

    let lost = sent[2]; // input seq 3
    mesh.consumer_rtcp(&b0, &nack(0xABCD, b0.ssrc, &[lost]));
    let from_b = mesh.take(B);
    assert_eq!(from_b.len(), 1, "{from_b:?}");
    let d = &from_b[0];
    assert_eq!((d.socket, d.dest), (b0.socket, b0.remote));
    let h = d.rtp();
    assert_eq!((Some(h.ssrc), Some(h.payload_type)), (b0.rtx_ssrc, b0.rtx_pt), "as RTX");
    assert_eq!(&d.payload()[..2], &lost.to_be_bytes(), "OSN: the consumer's sequence number");
    assert_eq!(&d.payload()[2..], &vp8_delta(3)[..]);
    assert_eq!(mesh.consumer_snapshot(&b0).retransmitted, 1);

    assert!(mesh.take(A).is_empty(), "A sends nothing");
    assert!(mesh.sinks[B].records.is_empty() && !mesh.shards[B].has_shard_commands(), "B asks A for nothing");
    assert_eq!(mesh.pump(), 0);
    assert_eq!(mesh.crossings.len(), crossed);
}

#[test]
fn far_shard_does_not_nack_what_the_origin_repairs() {
    let (mut mesh, p, _consumers) = spanning(&[0, 1]);
    let crossed = mesh.crossings.len();
    mesh.send_media(&p, 1, true);
    mesh.send_media(&p, 2, false);
    mesh.send_media(&p, 5, false);
    mesh.advance(200);
    let from_a = mesh.take(A);
    let nacks: Vec<Rtcp> = from_a
        .iter()
        .filter(|d| d.dest == p.remote)
        .flat_map(Datagram::rtcp)
        .filter(|i| matches!(i, Rtcp::Nack { .. }))
        .collect();
    assert!(!nacks.is_empty(), "the origin NACKs its sender");
    let from_b = mesh.take(B);
    assert!(from_b.iter().all(|d| !d.is_rtcp()), "B NACKs nobody: {from_b:?}");
    assert!(
        !mesh.crossings[crossed..].iter().any(|x| matches!(x, Crossing::Command { from: B, .. })),
        "B asks A for nothing: {:?}",
        &mesh.crossings[crossed..]
    );
}

/// pipeToRouter from `ROUTER` on shard `A` into `ROUTER2` on shard `to`, with one consumer of
/// the pipe producer there.
fn piped(to: usize) -> (Mesh, MeshProducer, MeshPipe, MeshConsumer) {
    let mut mesh = Mesh::new(to + 1);
    mesh.router(A, ROUTER);
    mesh.router(to, ROUTER2);
    let p = mesh.producer(A, ROUTER, MediaKind::Video);
    let pipe = mesh.pipe(&p, to, ROUTER2);
    let consumable = pipe.consumable.clone();
    let c = mesh.consumer(to, ROUTER2, pipe.producer, &consumable);
    (mesh, p, pipe, c)
}

fn pipe_carries_media(to: usize) {
    let (mut mesh, p, pipe, c) = piped(to);
    // The consumer's key frame request went through the pipe to the producer's endpoint.
    let plis = mesh
        .take(A)
        .iter()
        .filter(|d| d.dest == p.remote && d.is_rtcp())
        .flat_map(Datagram::rtcp)
        .filter(|i| matches!(i, Rtcp::Pli { media: PRODUCER_SSRC, .. }))
        .count();
    assert!(plis >= 1, "key frame asked for through the pipe");
    assert!(mesh.crossings.contains(&Crossing::Command {
        from: to,
        to: A,
        cmd: ShardCommand::KeyFrameRequest { source: pipe.consumer }
    }));
    mesh.clear();

    let mut seqs = Vec::new();
    for seq in 1..=5u16 {
        mesh.produce_rtp(&p, &Mesh::media(&p, seq, seq == 1));
        let records = mesh.sinks[A].records.clone();
        assert_eq!(records.len(), 1, "one record from the pipe consumer");
        assert_eq!((records[0].to, records[0].mirror()), (to, pipe.producer));
        let h = parse_rtp(records[0].packet()).unwrap();
        assert_eq!(h.ssrc, pipe.consumer_ssrc, "the pipe consumer's SSRC");
        mesh.pump();
        assert_eq!(mesh.crossings.last(), Some(&Crossing::Record { from: A, to, mirror: pipe.producer }));
        let out = mesh.take(to);
        let mine = rtp_to(&out, &c);
        assert_eq!(mine.len(), 1, "{out:?}");
        let h = mine[0].rtp();
        assert_eq!((h.ssrc, h.payload_type, h.timestamp), (c.ssrc, c.pt, u32::from(seq) * 3000));
        let want = if seq == 1 { vp8_key(1) } else { vp8_delta(seq as u8) };
        assert_eq!(mine[0].payload(), &want[..]);
        seqs.push(h.sequence_number);
    }
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "{seqs:?}");
    }
    for s in 0..mesh.shards.len() {
        assert_eq!(mesh.shards[s].drops().total(), 0, "shard {s}: {:?}", mesh.shards[s].drops());
    }
}

#[test]
fn pipe_to_router_on_the_same_shard_carries_media() {
    pipe_carries_media(A);
}

#[test]
fn pipe_to_router_across_shards_carries_media() {
    pipe_carries_media(B);
}

fn closing_pipe_producer_closes_pipe_consumer(to: usize) {
    let (mut mesh, p, pipe, c) = piped(to);
    let _ = (mesh.events(A), mesh.events(to));
    mesh.control(to, |s, _| s.close_producer(pipe.producer)).unwrap();
    assert_eq!(mesh.events(to), vec![Event::Closed { object: c.id, reason: CloseReason::ProducerClosed }]);
    mesh.pump();
    assert!(mesh.crossings.contains(&Crossing::Command {
        from: to,
        to: A,
        cmd: ShardCommand::PipeClosed { consumer: pipe.consumer }
    }));
    assert_eq!(mesh.shards[A].kind_of(pipe.consumer), None, "the pipe consumer closed too");
    assert!(mesh.events(A).iter().any(|e| matches!(e, Event::Closed { object, .. } if *object == pipe.consumer)));
    // Media no longer goes anywhere but the source producer's own shard.
    mesh.clear();
    mesh.send_media(&p, 1, true);
    assert!(mesh.sinks[A].records.is_empty());
    assert!(mesh.take(to).iter().all(Datagram::is_rtcp));
    assert_eq!(mesh.shards[to].drops().producer_not_found, 0);
}

fn closing_pipe_consumer_closes_pipe_producer(to: usize) {
    let (mut mesh, _p, pipe, c) = piped(to);
    let _ = (mesh.events(A), mesh.events(to));
    let counts = mesh.shards[to].object_counts();
    mesh.control(A, |s, _| s.close_consumer(pipe.consumer)).unwrap();
    mesh.pump();
    assert!(mesh.crossings.contains(&Crossing::Command {
        from: A,
        to,
        cmd: ShardCommand::MirrorClosed { mirror: pipe.producer }
    }));
    assert_eq!(mesh.shards[to].kind_of(pipe.producer), None, "the pipe producer closed too");
    assert_eq!(mesh.shards[to].kind_of(c.id), None, "and its consumer");
    let events = mesh.events(to);
    assert!(events.contains(&Event::Closed { object: c.id, reason: CloseReason::ProducerClosed }), "{events:?}");
    assert!(events.iter().any(|e| matches!(e, Event::Closed { object, .. } if *object == pipe.producer)));
    let after = mesh.shards[to].object_counts();
    if to != A {
        assert_eq!((after.producers, after.consumers), (counts.producers - 1, counts.consumers - 1));
    }
    assert_eq!(mesh.pump(), 0, "settled");
}

#[test]
fn closing_either_end_of_a_pipe_closes_the_other_on_the_same_shard() {
    closing_pipe_producer_closes_pipe_consumer(A);
    closing_pipe_consumer_closes_pipe_producer(A);
}

#[test]
fn closing_either_end_of_a_pipe_closes_the_other_across_shards() {
    closing_pipe_producer_closes_pipe_consumer(B);
    closing_pipe_consumer_closes_pipe_producer(B);
}

#[test]
fn pausing_the_source_pauses_the_pipe_producer() {
    let (mut mesh, p, pipe, c) = piped(B);
    let _ = (mesh.events(A), mesh.events(B));
    mesh.control(A, |s, _| s.pause_producer(p.id)).unwrap();
    assert_eq!(mesh.events(A), vec![Event::ProducerPaused { consumer: pipe.consumer }]);
    mesh.pump();
    assert!(mesh.producer_snapshot(B, pipe.producer).paused);
    // The pipe producer itself hears it (its `paused()`), then its consumers.
    assert_eq!(
        mesh.events(B),
        vec![Event::Paused { object: pipe.producer, paused: true }, Event::ProducerPaused { consumer: c.id }]
    );
    mesh.control(A, |s, now| s.resume_producer(now, p.id)).unwrap();
    mesh.pump();
    assert!(!mesh.producer_snapshot(B, pipe.producer).paused);
    assert_eq!(
        mesh.events(B),
        vec![Event::Paused { object: pipe.producer, paused: false }, Event::ProducerResumed { consumer: c.id }]
    );
}

#[test]
fn records_that_do_not_fit_are_counted_and_change_nothing() {
    let (mut mesh, p, consumers) = spanning(&[0, 2]);
    // A producer of B's own, in the same router: a record must not feed it.
    let local = mesh.producer_with(B, ROUTER, MediaKind::Video, 0x7777, "local", true);
    mesh.send_media(&p, 1, true);
    let first = mesh.take(B);
    let first_seqs: Vec<u16> = consumers.iter().map(|c| rtp_to(&first, c)[0].rtp().sequence_number).collect();
    mesh.clear();
    let counts = mesh.shards[B].object_counts();
    let packets: Vec<u64> = consumers.iter().map(|c| mesh.consumer_snapshot(c).packets).collect();
    let packet = Mesh::media(&p, 2, false).build();
    let record = |id: ObjectId, packet: &[u8]| [&id.to_be_bytes()[..], packet].concat();

    let cases: Vec<(&str, usize, Vec<u8>, bool)> = vec![
        ("empty", A, Vec::new(), true),
        ("shorter than the head", A, vec![0, 0, 1], true),
        ("head only", A, p.id.to_be_bytes().to_vec(), true),
        ("not RTP after the head", A, record(p.id, &[0x80, 0x60, 0]), true),
        ("unknown mirror id", A, record(999_999, &packet), false),
        ("a consumer's id", A, record(consumers[0].id, &packet), false),
        ("a producer that is no mirror", A, record(local.id, &Mesh::media(&local, 2, false).build()), false),
        ("from the shard itself", B, record(p.id, &packet), false),
        ("from another shard than the origin", 7, record(p.id, &packet), false),
    ];
    for (what, from, mut bytes, malformed) in cases {
        let before = *mesh.shards[B].drops();
        let now = mesh.now;
        mesh.shards[B].handle_shard_record(now, from, &mut bytes, &mut mesh.sinks[B]);
        let after = *mesh.shards[B].drops();
        assert_eq!(after.total(), before.total() + 1, "{what}: one drop");
        if malformed {
            assert_eq!(after.malformed_rtp, before.malformed_rtp + 1, "{what}");
        } else {
            assert_eq!(after.producer_not_found, before.producer_not_found + 1, "{what}");
        }
        assert!(mesh.take(B).is_empty(), "{what}: nothing sent");
        assert!(mesh.sinks[B].records.is_empty() && !mesh.shards[B].has_shard_commands(), "{what}");
        assert_eq!(mesh.shards[B].object_counts(), counts, "{what}");
        let now_packets: Vec<u64> = consumers.iter().map(|c| mesh.consumer_snapshot(c).packets).collect();
        assert_eq!(now_packets, packets, "{what}");
    }
    assert_eq!(mesh.producer_snapshot(B, local.id).packets, 0);
    assert_eq!(mesh.producer_snapshot(B, p.id).packets, 1);

    // The real thing still flows, right after what came before.
    mesh.send_media(&p, 2, false);
    let out = mesh.take(B);
    for (c, first) in consumers.iter().zip(first_seqs) {
        assert_eq!(rtp_to(&out, c)[0].rtp().sequence_number, first.wrapping_add(1), "consumer {}", c.id);
    }
}

// ---- regressions: mirrors addressed by id ---------------------------------------------------
//
// Both come from one cause: `Shard::handle_shard_record` finds the mirror named by the record's
// head only to pick its link transport, then runs the packet through that transport's RTP
// listener (SSRC, then MID, then RID). The link transport is shared by every mirror of the same
// (router, origin shard), and its listener holds only what the mirrors' parameters signalled.

/// Two senders on shard A, each on its own transport, each with a track of MID "0" (what every
/// browser's first m-section is): legal on A, since MIDs and SSRCs are per transport; a router
/// spanning to B needs a mirror of both on B's one link transport for (router, A).
#[test]
fn mirrors_of_producers_with_the_same_mid_on_one_shard() {
    let mut mesh = Mesh::new(2);
    mesh.router(A, ROUTER);
    mesh.router(B, ROUTER);
    let p1 = mesh.producer_with(A, ROUTER, MediaKind::Video, 0x1111, "0", true);
    let p2 = mesh.producer_with(A, ROUTER, MediaKind::Video, 0x2222, "0", true);
    mesh.mirror(&p1, B).unwrap();
    mesh.mirror(&p2, B).expect("a second mirror from the same shard");
    let (k1, k2) = (p1.consumable.clone(), p2.consumable.clone());
    let (c1, c2) = (mesh.consumer(B, ROUTER, p1.id, &k1), mesh.consumer(B, ROUTER, p2.id, &k2));
    mesh.clear();
    mesh.send_media(&p1, 1, true);
    mesh.send_media(&p2, 1, true);
    let out = mesh.take(B);
    assert_eq!((rtp_to(&out, &c1).len(), rtp_to(&out, &c2).len()), (1, 1));
}

/// A producer whose endpoint signalled no SSRC (the SFU learns it from the MID extension of the
/// first packets; senders stop sending MID once they get RTCP). A consumer on B that joins
/// after that: B's mirror starts without the SSRC, and later packets carry no MID to learn it.
#[test]
fn late_mirror_of_a_producer_whose_ssrc_was_learned_from_its_mid() {
    let mut mesh = Mesh::new(2);
    mesh.router(A, ROUTER);
    mesh.router(B, ROUTER);
    let p = mesh.producer_with(A, ROUTER, MediaKind::Video, 0x4242, "m0", false);
    mesh.produce_rtp(&p, &Mesh::media(&p, 1, true).ext(P_EXT_MID, b"m0"));
    assert_eq!(mesh.shards[A].drops().total(), 0, "A learned the SSRC from the MID");
    mesh.mirror(&p, B).unwrap();
    let consumable = p.consumable.clone();
    let c = mesh.consumer(B, ROUTER, p.id, &consumable);
    mesh.clear();
    mesh.send_media(&p, 2, true);
    assert_eq!(mesh.shards[A].records_to_shards(), 1, "A forwards it");
    assert_eq!(mesh.shards[B].drops().producer_not_found, 0, "B knows the mirror the record names");
    assert_eq!(rtp_to(&mesh.take(B), &c).len(), 1);
}

#[test]
fn a_mirror_left_without_consumers_is_torn_down_and_the_origin_stops_sending() {
    let (mut mesh, p, consumers) = spanning(&[1, 2]);
    mesh.send_media(&p, 1000, true);
    assert_eq!(mesh.shards[A].records_to_shards(), 1);
    let on_b: Vec<_> = consumers.iter().filter(|c| c.shard == B).collect();
    for c in &on_b {
        mesh.control(B, |s, _| s.close_consumer(c.id)).unwrap();
    }
    // Still there for a while: a consumer coming back soon would reuse it.
    mesh.advance(MIRROR_IDLE.as_millis() as u64 / 2);
    mesh.pump();
    assert!(mesh.shards[B].kind_of(p.id).is_some(), "the idle mirror lives on for a while");
    mesh.advance(MIRROR_IDLE.as_millis() as u64);
    mesh.pump();
    assert!(mesh.shards[B].kind_of(p.id).is_none(), "the idle mirror is gone");
    assert!(
        mesh.crossings
            .iter()
            .any(|c| matches!(c, Crossing::Command { from: B, to: A, cmd: ShardCommand::Unsubscribe { .. } })),
        "the origin is told: {:?}",
        mesh.crossings
    );
    // The origin sends nothing more to B; its own consumer still gets media.
    let before = mesh.shards[A].records_to_shards();
    mesh.take(A);
    mesh.send_media(&p, 1001, false);
    assert_eq!(mesh.shards[A].records_to_shards(), before, "no record for a shard without consumers");
    assert_eq!(mesh.take(A).iter().filter(|d| !d.is_rtcp()).count(), 1);
}
