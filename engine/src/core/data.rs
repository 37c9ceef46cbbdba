//! Data producers and data consumers: messages (mediasoup's DataProducer and DataConsumer of type
//! `direct`), routed like media but message by message.
//!
//! A message enters on its data producer's shard (`data_send`, from a DirectTransport), goes to
//! every data consumer of that producer on the shard (a `DataMessage` event for a consumer on a
//! DirectTransport, a `ShardCommand::DataMessage` for the pipe data consumer of a pipeToRouter
//! link) and once to every other shard where the router spans and the producer has consumers.
//! There a *data mirror* (same id, on the router's hidden link transport) fans it out to that
//! shard's consumers, exactly as a media mirror does (see `span.rs`). Pause, resume and close of
//! the producer travel to the mirrors the same way. A data mirror left without data consumers is
//! torn down after `MIRROR_IDLE`, and its origin stops sending it messages (as for media).
//!
//! Subchannels are mediasoup's: a message sent with subchannels reaches only the consumers
//! subscribed to at least one of them, and one with a required subchannel only those subscribed
//! to it.

use std::sync::Arc;
use std::time::Instant;

use super::objects::{MirrorOf, TransportKind};
use super::{CloseReason, Event, ObjectId, ObjectKind, Shard, ShardCommand};
use crate::error::{Error, Result};

/// Subchannels one data consumer may subscribe to (mediasoup keeps them in a set; a bound keeps
/// the per-message check cheap).
pub const MAX_SUBCHANNELS: usize = 64;

/// One message, shared by every consumer that gets it (no copy per consumer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMessage {
    /// SCTP payload protocol identifier (51: text, 53: binary, 56/57: empty text/binary).
    pub ppid: u32,
    pub payload: Arc<[u8]>,
    /// Only consumers subscribed to at least one of these get it (empty: no such filter).
    pub subchannels: Vec<u16>,
    /// Only consumers subscribed to this one get it.
    pub required_subchannel: Option<u16>,
}

/// Where a data consumer's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataTarget {
    /// To the application, as `Event::DataMessage` (DirectTransport).
    Direct,
    /// Into another router's pipe data producer (`mirror`) on `shard`: pipeToRouter.
    Shard { shard: usize, mirror: ObjectId },
}

#[derive(Debug)]
pub struct DataProducerState {
    pub id: ObjectId,
    pub transport: u32,
    pub router: u32,
    pub paused: bool,
    /// Other shards (and the data mirror there) that get every message once.
    pub subscribers: Vec<(usize, ObjectId)>,
    /// For a data mirror: what it mirrors on its origin shard.
    pub mirror_of: Option<MirrorOf>,
    pub messages: u64,
    pub bytes: u64,
    /// For a plain data mirror without consumers: since when.
    pub idle_since: Option<Instant>,
}

#[derive(Debug)]
pub struct DataConsumerState {
    pub id: ObjectId,
    pub transport: u32,
    pub router: u32,
    pub data_producer: u32,
    pub paused: bool,
    pub data_producer_paused: bool,
    pub subchannels: Vec<u16>,
    pub target: DataTarget,
    pub messages: u64,
    pub bytes: u64,
}

impl DataConsumerState {
    fn active(&self) -> bool {
        !self.paused && !self.data_producer_paused
    }

    /// mediasoup's subchannel rule.
    fn wants(&self, m: &DataMessage) -> bool {
        if let Some(required) = m.required_subchannel {
            if !self.subchannels.contains(&required) {
                return false;
            }
        }
        m.subchannels.is_empty() || m.subchannels.iter().any(|s| self.subchannels.contains(s))
    }
}

/// `dump()` / `getStats()` of a data producer.
#[derive(Debug, Clone)]
pub struct DataProducerSnapshot {
    pub paused: bool,
    pub messages: u64,
    pub bytes: u64,
}

/// `dump()` / `getStats()` of a data consumer.
#[derive(Debug, Clone)]
pub struct DataConsumerSnapshot {
    pub data_producer: ObjectId,
    pub paused: bool,
    pub data_producer_paused: bool,
    pub subchannels: Vec<u16>,
    pub messages: u64,
    pub bytes: u64,
}

/// A data consumer's subchannels as kept: sorted, without duplicates, at most
/// `MAX_SUBCHANNELS`.
pub fn canonical_subchannels(mut subchannels: Vec<u16>) -> Result<Vec<u16>> {
    if subchannels.len() > MAX_SUBCHANNELS {
        return Err(Error::type_error(format!("at most {MAX_SUBCHANNELS} subchannels")));
    }
    subchannels.sort_unstable();
    subchannels.dedup();
    Ok(subchannels)
}

impl Shard {
    fn data_producer_key(&self, id: ObjectId) -> Result<u32> {
        self.key(id, ObjectKind::DataProducer)
            .ok_or_else(|| Error::invalid_state(format!("data producer {id} not found or closed")))
    }

    fn data_consumer_key(&self, id: ObjectId) -> Result<u32> {
        self.key(id, ObjectKind::DataConsumer)
            .ok_or_else(|| Error::invalid_state(format!("data consumer {id} not found or closed")))
    }

    /// mediasoup's `transport.produceData()` on a DirectTransport (and, inside the engine, a
    /// data mirror on a link transport).
    pub fn produce_data(&mut self, transport: ObjectId, id: ObjectId, paused: bool) -> Result<()> {
        super::control::ensure_new(self, id)?;
        let tkey = self
            .key(transport, ObjectKind::Transport)
            .ok_or_else(|| Error::invalid_state(format!("transport {transport} not found or closed")))?;
        let t = self.transports.get(tkey).expect("key from ids");
        if !matches!(t.kind, TransportKind::Direct | TransportKind::Link { .. }) {
            return Err(Error::unsupported("data producers need SCTP on this transport, which is not supported yet"));
        }
        let router = t.router;
        let key = self.data_producers.insert(DataProducerState {
            id,
            transport: tkey,
            router,
            paused,
            subscribers: Vec::new(),
            mirror_of: None,
            messages: 0,
            bytes: 0,
            idle_since: None,
        });
        self.ids.insert(id, (ObjectKind::DataProducer, key));
        self.transports.get_mut(tkey).expect("key from ids").data_producers.push(key);
        Ok(())
    }

    /// mediasoup's `transport.consumeData()`: `data_producer` is on this shard (itself or its
    /// data mirror) in the transport's router.
    pub fn consume_data(
        &mut self,
        transport: ObjectId,
        id: ObjectId,
        data_producer: ObjectId,
        paused: bool,
        subchannels: Vec<u16>,
    ) -> Result<()> {
        let tkey = self
            .key(transport, ObjectKind::Transport)
            .ok_or_else(|| Error::invalid_state(format!("transport {transport} not found or closed")))?;
        if !matches!(self.transports.get(tkey).expect("key from ids").kind, TransportKind::Direct) {
            return Err(Error::unsupported("data consumers need SCTP on this transport, which is not supported yet"));
        }
        self.insert_data_consumer(tkey, id, data_producer, paused, subchannels, DataTarget::Direct)
    }

    /// A data consumer of `data_producer` on transport `tkey`, sending to `target`.
    fn insert_data_consumer(
        &mut self,
        tkey: u32,
        id: ObjectId,
        data_producer: ObjectId,
        paused: bool,
        subchannels: Vec<u16>,
        target: DataTarget,
    ) -> Result<()> {
        super::control::ensure_new(self, id)?;
        let subchannels = canonical_subchannels(subchannels)?;
        let pkey = self.data_producer_key(data_producer)?;
        let router = self.transports.get(tkey).expect("live transport").router;
        let p = self.data_producers.get(pkey).expect("key from ids");
        if p.router != router {
            return Err(Error::type_error("the data producer is in another router"));
        }
        let key = self.data_consumers.insert(DataConsumerState {
            id,
            transport: tkey,
            router,
            data_producer: pkey,
            paused,
            data_producer_paused: p.paused,
            subchannels,
            target,
            messages: 0,
            bytes: 0,
        });
        self.ids.insert(id, (ObjectKind::DataConsumer, key));
        self.transports.get_mut(tkey).expect("live transport").data_consumers.push(key);
        self.routers.get_mut(router).expect("live router").data_fanout.entry(pkey).or_default().push(key);
        Ok(())
    }

    /// A data mirror of `data_producer` (living on shard `origin`) in this shard's part of
    /// `router`. Idempotent, like `create_mirror`.
    pub fn create_data_mirror(
        &mut self,
        now: Instant,
        router: ObjectId,
        data_producer: ObjectId,
        origin: usize,
        mirror_of: MirrorOf,
        paused: bool,
    ) -> Result<()> {
        self.key(router, ObjectKind::Router)
            .ok_or_else(|| Error::invalid_state(format!("router {router} not found or closed")))?;
        if let Some(pkey) = self.key(data_producer, ObjectKind::DataProducer) {
            let p = self.data_producers.get_mut(pkey).expect("key from ids");
            if p.mirror_of == Some(mirror_of) {
                // Wanted again: not idle any more.
                p.idle_since = None;
                return Ok(());
            }
            return Err(Error::type_error(format!("object id {data_producer} already exists")));
        }
        let link = self.ensure_link(now, router, origin)?;
        self.produce_data(link, data_producer, paused)?;
        let pkey = self.key(data_producer, ObjectKind::DataProducer).expect("just produced");
        self.data_producers.get_mut(pkey).expect("live").mirror_of = Some(mirror_of);
        if matches!(mirror_of, MirrorOf::Producer(_)) {
            // Torn down if no consumer ever comes (e.g. the consumeData that asked for it failed).
            self.idle_data_mirrors.push(pkey);
        }
        Ok(())
    }

    /// Subscribe shard `shard` (data mirror `mirror` there) to every message of `data_producer`.
    pub fn add_data_subscriber(&mut self, data_producer: ObjectId, shard: usize, mirror: ObjectId) -> Result<()> {
        let pkey = self.data_producer_key(data_producer)?;
        let p = self.data_producers.get_mut(pkey).expect("key from ids");
        if !p.subscribers.contains(&(shard, mirror)) {
            p.subscribers.push((shard, mirror));
        }
        self.shard_out.push_back((shard, ShardCommand::MirrorPaused { mirror, paused: p.paused }));
        Ok(())
    }

    /// pipeToRouter's pipe data consumer: a data consumer of `data_producer` in `router` whose
    /// messages go to `mirror` (the other router's pipe data producer) on shard `shard`.
    pub fn create_pipe_data_consumer(
        &mut self,
        now: Instant,
        router: ObjectId,
        id: ObjectId,
        data_producer: ObjectId,
        shard: usize,
        mirror: ObjectId,
    ) -> Result<()> {
        let pipe = self.ensure_pipe_out(now, router)?;
        let tkey = self.key(pipe, ObjectKind::Transport).expect("just ensured");
        self.insert_data_consumer(tkey, id, data_producer, false, Vec::new(), DataTarget::Shard { shard, mirror })?;
        let ckey = self.key(id, ObjectKind::DataConsumer).expect("just consumed");
        let paused = !self.data_consumers.get(ckey).expect("live").active();
        self.shard_out.push_back((shard, ShardCommand::MirrorPaused { mirror, paused }));
        Ok(())
    }

    /// A message from the application into a data producer on a DirectTransport.
    pub fn data_send(&mut self, data_producer: ObjectId, message: Arc<DataMessage>) -> Result<()> {
        let pkey = self.data_producer_key(data_producer)?;
        self.deliver_data(pkey, &message);
        Ok(())
    }

    /// One message of data producer `pkey` to its consumers here and its mirrors elsewhere (each
    /// crossing shares the message: no copy, no allocation).
    fn deliver_data(&mut self, pkey: u32, message: &Arc<DataMessage>) {
        let Some(p) = self.data_producers.get_mut(pkey) else { return };
        if p.paused {
            return;
        }
        p.messages += 1;
        p.bytes += message.payload.len() as u64;
        for &(shard, mirror) in &p.subscribers {
            self.shard_out.push_back((shard, ShardCommand::DataMessage { mirror, message: message.clone() }));
            self.data_to_shards += 1;
        }
        let router = p.router;
        let Some(consumers) = self.routers.get(router).and_then(|r| r.data_fanout.get(&pkey)) else { return };
        for &ckey in consumers {
            let Some(c) = self.data_consumers.get_mut(ckey) else { continue };
            if !c.active() || !c.wants(message) {
                continue;
            }
            c.messages += 1;
            c.bytes += message.payload.len() as u64;
            match c.target {
                DataTarget::Direct => self.events.push_back(Event::DataMessage {
                    data_consumer: c.id,
                    ppid: message.ppid,
                    payload: message.payload.clone(),
                }),
                DataTarget::Shard { shard, mirror } => {
                    self.shard_out.push_back((shard, ShardCommand::DataMessage { mirror, message: message.clone() }));
                    self.data_to_shards += 1;
                }
            }
        }
    }

    /// A message from another shard for data mirror `mirror`.
    pub(super) fn handle_data_record(&mut self, mirror: ObjectId, message: &Arc<DataMessage>) {
        match self.key(mirror, ObjectKind::DataProducer) {
            Some(pkey) => self.deliver_data(pkey, message),
            None => self.drops.count(super::DropReason::ProducerNotFound),
        }
    }

    pub fn pause_data_producer(&mut self, id: ObjectId) -> Result<()> {
        let pkey = self.data_producer_key(id)?;
        self.set_data_producer_paused(pkey, true);
        Ok(())
    }

    pub fn resume_data_producer(&mut self, id: ObjectId) -> Result<()> {
        let pkey = self.data_producer_key(id)?;
        self.set_data_producer_paused(pkey, false);
        Ok(())
    }

    /// Pause or resume a data producer: its consumers get `dataproducerpause` /
    /// `dataproducerresume`, its mirrors the new state. A pipe data producer (paused by its link)
    /// also tells the application with `Event::Paused`.
    pub(super) fn set_data_producer_paused(&mut self, pkey: u32, paused: bool) {
        let Some(p) = self.data_producers.get_mut(pkey) else { return };
        if p.paused == paused {
            return;
        }
        p.paused = paused;
        for &(shard, mirror) in &p.subscribers {
            self.shard_out.push_back((shard, ShardCommand::MirrorPaused { mirror, paused }));
        }
        if matches!(p.mirror_of, Some(MirrorOf::PipeConsumer(_))) {
            self.events.push_back(Event::Paused { object: p.id, paused });
        }
        let router = p.router;
        let consumers = self.routers.get(router).and_then(|r| r.data_fanout.get(&pkey)).cloned().unwrap_or_default();
        for ckey in consumers {
            let Some(c) = self.data_consumers.get_mut(ckey) else { continue };
            let was = c.active();
            c.data_producer_paused = paused;
            match c.target {
                DataTarget::Direct => self.events.push_back(if paused {
                    Event::DataProducerPaused { data_consumer: c.id }
                } else {
                    Event::DataProducerResumed { data_consumer: c.id }
                }),
                DataTarget::Shard { shard, mirror } if was != c.active() => {
                    self.shard_out.push_back((shard, ShardCommand::MirrorPaused { mirror, paused: !c.active() }))
                }
                DataTarget::Shard { .. } => {}
            }
        }
    }

    pub fn pause_data_consumer(&mut self, id: ObjectId) -> Result<()> {
        self.set_data_consumer_paused(id, true)
    }

    pub fn resume_data_consumer(&mut self, id: ObjectId) -> Result<()> {
        self.set_data_consumer_paused(id, false)
    }

    fn set_data_consumer_paused(&mut self, id: ObjectId, paused: bool) -> Result<()> {
        let ckey = self.data_consumer_key(id)?;
        let c = self.data_consumers.get_mut(ckey).expect("key from ids");
        let was = c.active();
        c.paused = paused;
        if let DataTarget::Shard { shard, mirror } = c.target {
            if was != c.active() {
                self.shard_out.push_back((shard, ShardCommand::MirrorPaused { mirror, paused: !c.active() }));
            }
        }
        Ok(())
    }

    /// mediasoup's `dataConsumer.setSubchannels()`.
    pub fn set_data_consumer_subchannels(&mut self, id: ObjectId, subchannels: Vec<u16>) -> Result<()> {
        let subchannels = canonical_subchannels(subchannels)?;
        let ckey = self.data_consumer_key(id)?;
        self.data_consumers.get_mut(ckey).expect("key from ids").subchannels = subchannels;
        Ok(())
    }

    pub fn close_data_producer(&mut self, id: ObjectId) -> Result<()> {
        let pkey = self.data_producer_key(id)?;
        self.close_data_producer_key(pkey, None);
        Ok(())
    }

    /// Close a data producer: its consumers close with `dataproducerclose`, its mirrors close, and
    /// a pipe data producer's pipe data consumer closes too.
    pub(super) fn close_data_producer_key(&mut self, pkey: u32, reason: Option<CloseReason>) {
        let p = self.data_producers.get(pkey).expect("data producer key");
        let consumers = self.routers.get(p.router).and_then(|r| r.data_fanout.get(&pkey)).cloned().unwrap_or_default();
        for c in consumers {
            self.close_data_consumer_key(c, Some(CloseReason::DataProducerClosed));
        }
        let p = self.data_producers.remove(pkey).expect("data producer key");
        for &(shard, mirror) in &p.subscribers {
            self.shard_out.push_back((shard, ShardCommand::MirrorClosed { mirror }));
        }
        if let (Some(MirrorOf::PipeConsumer(consumer)), Some(TransportKind::Link { origin })) =
            (p.mirror_of, self.transports.get(p.transport).map(|t| &t.kind))
        {
            self.shard_out.push_back((*origin, ShardCommand::PipeClosed { consumer }));
        }
        if let Some(r) = self.routers.get_mut(p.router) {
            r.data_fanout.remove(&pkey);
        }
        if let Some(t) = self.transports.get_mut(p.transport) {
            t.data_producers.retain(|&k| k != pkey);
        }
        self.ids.remove(&p.id);
        if let Some(reason) = reason {
            self.events.push_back(Event::Closed { object: p.id, reason });
        }
    }

    pub fn close_data_consumer(&mut self, id: ObjectId) -> Result<()> {
        let ckey = self.data_consumer_key(id)?;
        self.close_data_consumer_key(ckey, None);
        Ok(())
    }

    pub(super) fn close_data_consumer_key(&mut self, ckey: u32, reason: Option<CloseReason>) {
        let c = self.data_consumers.remove(ckey).expect("data consumer key");
        if let DataTarget::Shard { shard, mirror } = c.target {
            self.shard_out.push_back((shard, ShardCommand::MirrorClosed { mirror }));
        }
        if let Some(list) = self.routers.get_mut(c.router).and_then(|r| r.data_fanout.get_mut(&c.data_producer)) {
            list.retain(|&k| k != ckey);
        }
        if let Some(t) = self.transports.get_mut(c.transport) {
            t.data_consumers.retain(|&k| k != ckey);
        }
        self.ids.remove(&c.id);
        // The last consumer of a data mirror gone: the mirror may be torn down.
        let mirror = self
            .data_producers
            .get(c.data_producer)
            .is_some_and(|p| matches!(p.mirror_of, Some(MirrorOf::Producer(_))));
        if mirror
            && self.routers.get(c.router).and_then(|r| r.data_fanout.get(&c.data_producer)).is_none_or(Vec::is_empty)
        {
            self.idle_data_mirrors.push(c.data_producer);
        }
        if let Some(reason) = reason {
            self.events.push_back(Event::Closed { object: c.id, reason });
        }
    }

    /// Tear down plain data mirrors that have had no consumers for `MIRROR_IDLE`, and tell their
    /// origin to stop sending them messages (the API recreates one when a consumer needs it).
    pub(super) fn reap_idle_data_mirrors(&mut self, now: Instant) {
        let mut i = 0;
        while i < self.idle_data_mirrors.len() {
            let pkey = self.idle_data_mirrors[i];
            let Some(p) = self.data_producers.get_mut(pkey) else {
                self.idle_data_mirrors.swap_remove(i);
                continue;
            };
            let consumers = self.routers.get(p.router).and_then(|r| r.data_fanout.get(&pkey)).map_or(0, Vec::len);
            let (Some(MirrorOf::Producer(source)), true) = (p.mirror_of, consumers == 0) else {
                p.idle_since = None;
                self.idle_data_mirrors.swap_remove(i);
                continue;
            };
            let since = *p.idle_since.get_or_insert(now);
            if now.saturating_duration_since(since) < super::MIRROR_IDLE {
                i += 1;
                continue;
            }
            let (id, transport) = (p.id, p.transport);
            if let Some(TransportKind::Link { origin }) = self.transports.get(transport).map(|t| &t.kind) {
                self.shard_out.push_back((*origin, ShardCommand::Unsubscribe { producer: source, mirror: id }));
            }
            self.close_data_producer_key(pkey, None);
            self.idle_data_mirrors.swap_remove(i);
        }
    }

    pub(super) fn data_producer_snapshot(&self, key: u32) -> DataProducerSnapshot {
        let p = self.data_producers.get(key).expect("key from ids");
        DataProducerSnapshot { paused: p.paused, messages: p.messages, bytes: p.bytes }
    }

    pub(super) fn data_consumer_snapshot(&self, key: u32) -> DataConsumerSnapshot {
        let c = self.data_consumers.get(key).expect("key from ids");
        DataConsumerSnapshot {
            data_producer: self.data_producers.get(c.data_producer).map(|p| p.id).unwrap_or_default(),
            paused: c.paused,
            data_producer_paused: c.data_producer_paused,
            subchannels: c.subchannels.clone(),
            messages: c.messages,
            bytes: c.bytes,
        }
    }

    /// (data producer, its data consumers) of a router on this shard, by id.
    pub(super) fn data_fanout_ids(&self, rkey: u32) -> Vec<(ObjectId, Vec<ObjectId>)> {
        let Some(r) = self.routers.get(rkey) else { return Vec::new() };
        r.data_fanout
            .iter()
            .filter_map(|(&p, cs)| {
                let p = self.data_producers.get(p)?.id;
                Some((p, cs.iter().filter_map(|&c| self.data_consumers.get(c).map(|c| c.id)).collect()))
            })
            .collect()
    }

    pub(super) fn data_ids(&self, tkey: u32) -> (Vec<ObjectId>, Vec<ObjectId>) {
        let Some(t) = self.transports.get(tkey) else { return Default::default() };
        (
            t.data_producers.iter().filter_map(|&k| self.data_producers.get(k).map(|p| p.id)).collect(),
            t.data_consumers.iter().filter_map(|&k| self.data_consumers.get(k).map(|c| c.id)).collect(),
        )
    }
}
