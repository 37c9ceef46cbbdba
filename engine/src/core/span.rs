//! Routers spanning shards.
//!
//! A router is one object to the application, but its transports may sit on several shards.
//! When a consumer on shard B consumes a producer on shard A, shard B holds a *mirror* of the
//! producer (same id, same parameters) on a hidden link transport, and the producer on A lists
//! (B, mirror) as a subscriber. Each packet then crosses once per (producer, shard) as an
//! inter-shard record (`Sink::to_shard`, batched by the net layer), and B fans it out to its
//! consumers exactly as if it had arrived from a socket: same listener, same retransmission
//! buffer (for B's consumers' NACKs), same key frame wait, same sequence managers.
//!
//! Control flows the other way as [`ShardCommand`]s on the inter-shard rings: a key frame request
//! from B's consumers goes to A; pause, resume and close of the producer go from A to every
//! mirror, which passes them on to its consumers with mediasoup's events.

use std::time::Instant;

use super::objects::{MirrorOf, Target, TransportKind};
use super::{ObjectId, ObjectKind, ProducerSpec, Shard, Sink};
use crate::error::{Error, Result};

/// Bytes before the RTP packet in an inter-shard record: the mirror's object id.
pub const RECORD_HEAD_BYTES: usize = 8;

/// Id space of hidden link transports (never allocated by the API, whose ids count up from 1).
const LINK_ID_BASE: ObjectId = 1 << 62;

/// Control between shards about spanning producers and pipe links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShardCommand {
    /// From a mirror's shard to its origin: a consumer there wants a key frame of `source` (the
    /// producer, or the pipe consumer feeding a pipe producer).
    KeyFrameRequest { source: ObjectId },
    /// From the origin to a mirror's shard: the source paused or resumed.
    MirrorPaused { mirror: ObjectId, paused: bool },
    /// From the origin to a mirror's shard: the source closed.
    MirrorClosed { mirror: ObjectId },
    /// From the origin to a mirror's shard: the source's stream scores changed (or, for a new
    /// mirror, what they are).
    MirrorScore { mirror: ObjectId, scores: super::CarriedScores },
    /// From a pipe producer's shard to its origin: the pipe producer closed, close its pipe
    /// consumer too (mediasoup links the two the same way).
    PipeClosed { consumer: ObjectId },
    /// From a mirror's shard to its origin: the mirror had no consumers for `MIRROR_IDLE` and
    /// is gone; stop sending it records.
    Unsubscribe { producer: ObjectId, mirror: ObjectId },
    /// A data message for data mirror `mirror` (a spanning data producer, or the pipe data
    /// producer of a pipeToRouter link): once per (data producer, shard).
    DataMessage { mirror: ObjectId, message: std::sync::Arc<super::DataMessage> },
}

impl ShardCommand {
    /// Whether losing it only costs a little (a key frame asked again, a score told at the next
    /// change): such messages may be dropped when a peer shard does not drain its ring; the
    /// others carry state and never are.
    pub fn is_lossy(&self) -> bool {
        matches!(self, ShardCommand::KeyFrameRequest { .. } | ShardCommand::MirrorScore { .. })
    }
}

/// How long a mirror without consumers lives on (a consumer coming back soon reuses it).
pub const MIRROR_IDLE: std::time::Duration = std::time::Duration::from_secs(5);

/// Id space of hidden pipe-out transports.
const PIPE_ID_BASE: ObjectId = 3 << 61;

fn link_id(router: ObjectId, origin: usize) -> ObjectId {
    LINK_ID_BASE | (router << 12) | origin as ObjectId
}

impl Shard {
    /// Next control message for another shard: `(shard, command)`.
    pub fn poll_shard_command(&mut self) -> Option<(usize, ShardCommand)> {
        self.shard_out.pop_front()
    }

    #[inline]
    pub fn has_shard_commands(&self) -> bool {
        !self.shard_out.is_empty()
    }

    /// Inter-shard records sent so far (one per packet per subscribed shard).
    pub fn records_to_shards(&self) -> u64 {
        self.records_out
    }

    /// Create the mirror of a producer living on shard `origin`, in this shard's part of
    /// `router`. Its consumers are then created with [`Shard::consume`] as for any producer.
    pub fn create_mirror(
        &mut self,
        now: Instant,
        router: ObjectId,
        producer: ObjectId,
        origin: usize,
        mirror_of: MirrorOf,
        spec: ProducerSpec,
    ) -> Result<()> {
        self.key(router, ObjectKind::Router)
            .ok_or_else(|| Error::invalid_state(format!("router {router} not found or closed")))?;
        // Idempotent: concurrent consumers of the producer on this shard may all ask for it.
        if let Some(pkey) = self.key(producer, ObjectKind::Producer) {
            let p = self.producers.get(pkey).expect("key from ids");
            if p.mirror_of == Some(mirror_of) {
                // Wanted again: not idle any more.
                self.producers.get_mut(pkey).expect("key from ids").idle_since = None;
                return Ok(());
            }
            return Err(Error::type_error(format!("object id {producer} already exists")));
        }
        let link = self.ensure_link(now, router, origin)?;
        self.produce(now, link, producer, spec)?;
        let pkey = self.key(producer, ObjectKind::Producer).expect("just produced");
        let p = self.producers.get_mut(pkey).expect("live producer");
        p.mirror_of = Some(mirror_of);
        if matches!(mirror_of, MirrorOf::Producer(_)) {
            // Torn down if no consumer ever comes (e.g. the consume that asked for it failed).
            self.idle_mirrors.push(pkey);
        }
        // Loss is repaired between the sender and the origin shard, not again here.
        for s in &mut p.streams {
            s.nack = None;
        }
        Ok(())
    }

    /// The hidden transport of `router` holding mirrors of objects on shard `origin`.
    pub(super) fn ensure_link(&mut self, now: Instant, router: ObjectId, origin: usize) -> Result<ObjectId> {
        let link = link_id(router, origin);
        if self.key(link, ObjectKind::Transport).is_none() {
            self.insert_transport(now, router, link, TransportKind::Link { origin })?;
        }
        Ok(link)
    }

    /// The hidden transport of `router` holding its pipe consumers and pipe data consumers.
    pub(super) fn ensure_pipe_out(&mut self, now: Instant, router: ObjectId) -> Result<ObjectId> {
        self.key(router, ObjectKind::Router)
            .ok_or_else(|| Error::invalid_state(format!("router {router} not found or closed")))?;
        let pipe = PIPE_ID_BASE | router;
        if self.key(pipe, ObjectKind::Transport).is_none() {
            self.insert_transport(now, router, pipe, TransportKind::PipeOut)?;
        }
        Ok(pipe)
    }

    /// pipeToRouter's pipe consumer: a consumer of `producer` in `router` whose output is a
    /// record for `mirror` (the other router's pipe producer) on shard `shard`.
    #[allow(clippy::too_many_arguments)]
    pub fn create_pipe_consumer(
        &mut self,
        now: Instant,
        router: ObjectId,
        id: ObjectId,
        producer: ObjectId,
        rtp_parameters: crate::rtp_parameters::RtpParameters,
        shard: usize,
        mirror: ObjectId,
    ) -> Result<()> {
        self.key(router, ObjectKind::Router)
            .ok_or_else(|| Error::invalid_state(format!("router {router} not found or closed")))?;
        let pipe = self.ensure_pipe_out(now, router)?;
        self.consume(now, pipe, id, super::ConsumerSpec { producer, rtp_parameters, paused: false })?;
        let ckey = self.key(id, ObjectKind::Consumer).expect("just consumed");
        let c = self.consumers.get_mut(ckey).expect("live consumer");
        c.target = Target::Shard { shard, mirror };
        // Video starts at a key frame on the far side too.
        let (pkey, paused) = (c.producer, !c.active());
        self.shard_out.push_back((shard, ShardCommand::MirrorPaused { mirror, paused }));
        if let Some(scores) = self.carried_scores(pkey) {
            self.shard_out.push_back((shard, ShardCommand::MirrorScore { mirror, scores }));
        }
        self.request_key_frame_for(now, pkey);
        Ok(())
    }

    /// Subscribe shard `shard` (mirror `mirror` there) to every packet of `producer`, and send it
    /// the producer's current pause state.
    pub fn add_subscriber(&mut self, producer: ObjectId, shard: usize, mirror: ObjectId) -> Result<()> {
        let pkey = self
            .key(producer, ObjectKind::Producer)
            .ok_or_else(|| Error::invalid_state(format!("producer {producer} not found or closed")))?;
        let p = self.producers.get_mut(pkey).expect("key from ids");
        if !p.subscribers.contains(&(shard, mirror)) {
            p.subscribers.push((shard, mirror));
        }
        self.shard_out.push_back((shard, ShardCommand::MirrorPaused { mirror, paused: p.paused }));
        if let Some(scores) = self.carried_scores(pkey) {
            self.shard_out.push_back((shard, ShardCommand::MirrorScore { mirror, scores }));
        }
        Ok(())
    }

    /// A control message from shard `from`.
    pub fn handle_shard_command(&mut self, now: Instant, from: usize, cmd: ShardCommand) {
        match cmd {
            ShardCommand::Unsubscribe { producer, mirror } => {
                if let Some(p) = self.key(producer, ObjectKind::Producer).and_then(|k| self.producers.get_mut(k)) {
                    p.subscribers.retain(|&s| s != (from, mirror));
                } else if let Some(k) = self.key(producer, ObjectKind::DataProducer) {
                    if let Some(p) = self.data_producers.get_mut(k) {
                        p.subscribers.retain(|&s| s != (from, mirror));
                    }
                }
            }
            ShardCommand::KeyFrameRequest { source } => {
                if let Some(pkey) = self.key(source, ObjectKind::Producer) {
                    self.request_key_frame_for(now, pkey);
                } else if self.key(source, ObjectKind::Consumer).is_some() {
                    let _ = self.consumer_request_key_frame(now, source);
                }
            }
            ShardCommand::PipeClosed { consumer } => {
                if let Some(ckey) = self.key(consumer, ObjectKind::Consumer) {
                    self.close_consumer_key(ckey, Some(super::CloseReason::ProducerClosed));
                } else if let Some(ckey) = self.key(consumer, ObjectKind::DataConsumer) {
                    self.close_data_consumer_key(ckey, Some(super::CloseReason::DataProducerClosed));
                }
            }
            ShardCommand::MirrorPaused { mirror, paused } => {
                if let Some(pkey) = self.key(mirror, ObjectKind::DataProducer) {
                    self.set_data_producer_paused(pkey, paused);
                } else {
                    let _ = if paused { self.pause_producer(mirror) } else { self.resume_producer(now, mirror) };
                }
            }
            ShardCommand::DataMessage { mirror, message } => self.handle_data_record(mirror, &message),
            ShardCommand::MirrorScore { mirror, scores } => {
                if let Some(pkey) = self.key(mirror, ObjectKind::Producer) {
                    self.set_mirror_scores(pkey, &scores);
                }
            }
            ShardCommand::MirrorClosed { mirror } => {
                if let Some(pkey) = self.key(mirror, ObjectKind::DataProducer) {
                    let pipe = matches!(
                        self.data_producers.get(pkey).and_then(|p| p.mirror_of),
                        Some(MirrorOf::PipeConsumer(_))
                    );
                    self.close_data_producer_key(pkey, pipe.then_some(super::CloseReason::TransportClosed));
                } else if let Some(pkey) = self.key(mirror, ObjectKind::Producer) {
                    // A pipe producer is an object of its own to the application: it learns that
                    // its link closed. A plain mirror is the same producer, which already did.
                    let pipe =
                        matches!(self.producers.get(pkey).and_then(|p| p.mirror_of), Some(MirrorOf::PipeConsumer(_)));
                    self.close_producer_key(pkey, pipe.then_some(super::CloseReason::TransportClosed));
                }
            }
        }
    }

    /// Tear down plain mirrors that have had no consumers (nor observers) for `MIRROR_IDLE`, and tell their
    /// origin to stop sending records. The API recreates a mirror when a consumer needs it again.
    pub(super) fn reap_idle_mirrors(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.idle_mirrors.len() {
            let pkey = self.idle_mirrors[i];
            let Some(p) = self.producers.get_mut(pkey) else {
                self.idle_mirrors.swap_remove(i);
                continue;
            };
            let consumers = self.routers.get(p.router).and_then(|r| r.fanout.get(&pkey)).map_or(0, Vec::len);
            let (Some(MirrorOf::Producer(source)), true) = (p.mirror_of, consumers == 0 && p.observers.is_empty())
            else {
                p.idle_since = None;
                self.idle_mirrors.swap_remove(i);
                continue;
            };
            let since = *p.idle_since.get_or_insert(now);
            if now.saturating_duration_since(since) < MIRROR_IDLE {
                i += 1;
                continue;
            }
            let (id, transport) = (p.id, p.transport);
            if let Some(TransportKind::Link { origin }) = self.transports.get(transport).map(|t| &t.kind) {
                self.shard_out.push_back((*origin, ShardCommand::Unsubscribe { producer: source, mirror: id }));
            }
            self.close_producer_key(pkey, None);
            self.idle_mirrors.swap_remove(i);
        }
    }

    /// One inter-shard record: `[mirror id: u64][RTP packet]`.
    pub fn handle_shard_record<'a>(
        &mut self,
        now: Instant,
        from: usize,
        record: &'a mut [u8],
        out: &mut impl Sink<'a>,
    ) {
        if record.len() <= RECORD_HEAD_BYTES {
            self.drops.count(super::DropReason::MalformedRtp);
            return;
        }
        let (head, packet) = record.split_at_mut(RECORD_HEAD_BYTES);
        let mirror = ObjectId::from_be_bytes(head.try_into().expect("8 bytes"));
        let pkey = self.key(mirror, ObjectKind::Producer);
        let tkey = pkey.and_then(|p| self.producers.get(p)).map(|p| p.transport);
        match (pkey, tkey.and_then(|t| self.transports.get(t).map(|tr| (t, &tr.kind)))) {
            (Some(pkey), Some((t, TransportKind::Link { origin }))) if *origin == from => {
                self.handle_rtp(now, t, Some(pkey), packet, out)
            }
            _ => self.drops.count(super::DropReason::ProducerNotFound),
        }
    }
}
