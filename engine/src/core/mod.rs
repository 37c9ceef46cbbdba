//! The sans-IO SFU of one shard: routers, transports, producers, consumers and the packet path
//! between them. No sockets, no clock: every entry point takes `now`, datagrams come in as
//! bytes and leave through a [`Sink`], everything else leaves as an [`Event`].
//!
//! The path of one RTP packet: `handle_datagram` (socket -> transport, classify by first byte)
//! -> RTP listener (SSRC, then MID, then RID -> producer stream) -> producer (payload type,
//! receive stats, NACK tracking, retransmission buffer) -> router fan-out table -> each consumer
//! (sequence manager, header rewrite into a scratch buffer) -> `Sink::send(head, body)` with the
//! payload shared by every consumer.

mod control;
mod data;
mod dump;
mod feedback;
mod forward;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_observers;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzz_webrtc;
pub mod keyframe;
mod objects;
mod observer;
mod scores;
mod span;
mod table;
mod webrtc;

pub mod counters;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shardsfu_net::SocketId;

pub use control::{ConsumerSpec, PlainSpec, ProducerSpec};
pub use counters::{DropCounters, DropReason};
pub use data::{canonical_subchannels, DataConsumerSnapshot, DataMessage, DataProducerSnapshot, MAX_SUBCHANNELS};
pub use dump::{
    ConsumerSnapshot, ProducerSnapshot, RouterSnapshot, ShardSnapshot, Snapshot, StreamSnapshot, TransportSnapshot,
    WebRtcSnapshot,
};
pub use objects::MirrorOf;
pub use observer::ObserverSpec;
pub use scores::{
    CarriedScores, ConsumerScore, ProducerStreamScore, INACTIVE_AUDIO, INACTIVE_VIDEO, MAX_CARRIED_SCORES,
};
pub use span::{ShardCommand, MIRROR_IDLE, RECORD_HEAD_BYTES};
pub use table::{FastMap, IntHasher, Slab};
pub use webrtc::{stun_local_ufrag, IceSocketSpec, WebRtcSpec, MAX_WEBRTC_SOCKETS, SRTP_PROFILES};

use crate::rtp::{ExtensionsBuilder, NtpTime};
use data::{DataConsumerState, DataProducerState};
use objects::{ConsumerState, ProducerState, RouterState, TransportState};
use observer::ObserverState;

/// Engine-wide object id (allocated by the API layer; UUID strings map to it at the edge).
pub type ObjectId = u64;

/// Scratch space for one rewritten header or one retransmitted packet.
pub const SCRATCH_BYTES: usize = 2048;
/// How often the shard runs its housekeeping (RTCP, NACK retries, delayed key frame requests).
pub const TICK: Duration = Duration::from_millis(20);
/// RTCP report interval per transport.
pub const RTCP_INTERVAL: Duration = Duration::from_millis(1000);
/// Header extensions we carry from one input packet to its consumers.
pub const MAX_FORWARDED_EXTENSIONS: usize = 16;

/// Where datagrams leave the core. The adapter in `api` implements it over the shard's
/// batched transmit queue; tests implement it over a `Vec`.
///
/// `head` is copied by the sink; `body` is borrowed until the batch is flushed, which lets all
/// consumers of a packet share its payload.
pub trait Sink<'a> {
    fn send(&mut self, socket: SocketId, dest: SocketAddr, head: &[u8], body: &'a [u8]);

    /// Forward one record (`head` ++ `body`, both copied once) to another shard; false when it
    /// could not be queued (counted by the sink). Sinks without shards drop it.
    fn to_shard(&mut self, _shard: usize, _head: &[u8], _body: &[u8]) -> bool {
        false
    }

    /// Send one datagram of at most `max_len` bytes (<= `SCRATCH_BYTES`) that `write` builds in
    /// place and whose length it returns (0: nothing to send). The engine's sink has it written
    /// straight into the transmit queue (SRTP protects there); this default builds it on the stack.
    fn send_with(
        &mut self,
        socket: SocketId,
        dest: SocketAddr,
        max_len: usize,
        write: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        let mut buf = [0u8; SCRATCH_BYTES];
        let n = write(&mut buf[..max_len.min(SCRATCH_BYTES)]);
        if n > 0 {
            self.send(socket, dest, &buf[..n], &[]);
        }
    }

    /// Send `head ++ body` sealed by `seal` (SRTP). The engine's sink queues it as it is (head
    /// copied, body borrowed like `send`'s) and the transmit queue seals it at the flush, where
    /// a failure is counted by net (`ShardLoad::tx_seal_failed`); this default seals it on the
    /// spot. `false`: sealing failed here (nothing sent).
    fn send_sealed(
        &mut self,
        socket: SocketId,
        dest: SocketAddr,
        head: &[u8],
        body: &'a [u8],
        seal: std::rc::Rc<dyn shardsfu_net::Seal>,
    ) -> bool {
        let mut buf = [0u8; SCRATCH_BYTES];
        let len = head.len() + body.len() + seal.overhead();
        if len > SCRATCH_BYTES || seal.seal(head, body, &mut buf[..len]) != Some(len) {
            return false;
        }
        self.send(socket, dest, &buf[..len], &[]);
        true
    }
}

/// Why an object closed without being asked to (mediasoup's `workerclose`, `routerclose`,
/// `transportclose`, `producerclose` events).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    WorkerClosed,
    RouterClosed,
    TransportClosed,
    ProducerClosed,
    /// mediasoup's `dataConsumer.on('dataproducerclose')`.
    DataProducerClosed,
    /// The WebRtcServer a WebRtcTransport listened through closed.
    ListenServerClosed,
}

impl CloseReason {
    /// The mediasoup event name the closed object emits.
    pub fn event_name(self) -> &'static str {
        match self {
            CloseReason::WorkerClosed => "workerclose",
            CloseReason::RouterClosed => "routerclose",
            CloseReason::TransportClosed => "transportclose",
            CloseReason::ProducerClosed => "producerclose",
            CloseReason::DataProducerClosed => "dataproducerclose",
            CloseReason::ListenServerClosed => "listenserverclose",
        }
    }
}

/// What the core tells the outside world.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The object closed because its parent did.
    Closed { object: ObjectId, reason: CloseReason },
    /// A pipe producer was paused or resumed by its link (the source or the pipe consumer).
    Paused { object: ObjectId, paused: bool },
    /// mediasoup's `consumer.on('producerpause')`.
    ProducerPaused { consumer: ObjectId },
    /// mediasoup's `consumer.on('producerresume')`.
    ProducerResumed { consumer: ObjectId },
    /// mediasoup's `producer.on('score')`: the scores of its streams that have an SSRC.
    ProducerScore { producer: ObjectId, scores: Vec<ProducerStreamScore> },
    /// mediasoup's `consumer.on('score')` (also sent once when the consumer is created, with its
    /// producer's scores then).
    ConsumerScore { consumer: ObjectId, score: ConsumerScore },
    /// A comedia PlainTransport learned its remote RTP tuple.
    Tuple { transport: ObjectId, local: SocketAddr, remote: SocketAddr },
    /// A comedia PlainTransport without rtcpMux learned its remote RTCP tuple.
    RtcpTuple { transport: ObjectId, local: SocketAddr, remote: SocketAddr },
    /// A consumer on a DirectTransport sent an RTP packet.
    DirectRtp { consumer: ObjectId, packet: Vec<u8> },
    /// A DirectTransport sent an RTCP packet.
    DirectRtcp { transport: ObjectId, packet: Vec<u8> },
    /// mediasoup's `dataConsumer.on('message')` (DirectTransport data consumers).
    DataMessage { data_consumer: ObjectId, ppid: u32, payload: std::sync::Arc<[u8]> },
    /// mediasoup's `audioLevelObserver.on('volumes')`: (producer, average dBov), loudest first.
    AudioVolumes { observer: ObjectId, volumes: Vec<(ObjectId, i8)> },
    /// mediasoup's `audioLevelObserver.on('silence')`.
    AudioSilence { observer: ObjectId },
    /// mediasoup's `activeSpeakerObserver.on('dominantspeaker')`.
    DominantSpeaker { observer: ObjectId, producer: ObjectId },
    /// mediasoup's `dataConsumer.on('dataproducerpause')`.
    DataProducerPaused { data_consumer: ObjectId },
    /// mediasoup's `dataConsumer.on('dataproducerresume')`.
    DataProducerResumed { data_consumer: ObjectId },
    /// mediasoup's `webRtcTransport.on('icestatechange')`.
    IceStateChange { transport: ObjectId, state: crate::webrtc::ice::IceState },
    /// mediasoup's `webRtcTransport.on('iceselectedtuplechange')`.
    IceSelectedTupleChange { transport: ObjectId, tuple: crate::webrtc::ice::IceTuple },
    /// mediasoup's `webRtcTransport.on('dtlsstatechange')`.
    DtlsStateChange { transport: ObjectId, state: crate::webrtc::cert::DtlsState },
}

impl Event {
    /// Whether it carries what a DirectTransport hands out of the process (RTP, RTCP, data
    /// messages): such events share one bounded queue to the application.
    pub fn is_direct(&self) -> bool {
        matches!(self, Event::DirectRtp { .. } | Event::DirectRtcp { .. } | Event::DataMessage { .. })
    }
}

/// Kind of object behind an [`ObjectId`] on this shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    Router,
    Transport,
    Producer,
    Consumer,
    DataProducer,
    DataConsumer,
    RtpObserver,
}

/// Maps the shard's monotonic clock to NTP time for sender reports, fixed at construction.
#[derive(Debug, Clone, Copy)]
pub struct NtpClock {
    base: Instant,
    base_unix: Duration,
}

impl NtpClock {
    /// `wall` is the wall-clock time at `base`; the adapter reads both once at start.
    pub fn new(base: Instant, wall: SystemTime) -> Self {
        NtpClock { base, base_unix: wall.duration_since(UNIX_EPOCH).unwrap_or_default() }
    }

    /// NTP time at `now`.
    pub fn ntp(&self, now: Instant) -> NtpTime {
        NtpTime::from_unix(self.base_unix + now.saturating_duration_since(self.base))
    }
}

/// One shard's SFU state.
pub struct Shard {
    routers: Slab<RouterState>,
    transports: Slab<TransportState>,
    producers: Slab<ProducerState>,
    consumers: Slab<ConsumerState>,
    data_producers: Slab<DataProducerState>,
    data_consumers: Slab<DataConsumerState>,
    observers: Slab<ObserverState>,
    ids: FastMap<ObjectId, (ObjectKind, u32)>,
    sockets: FastMap<SocketId, webrtc::SocketRoute>,
    /// Tuples ICE validated: (socket, remote) -> WebRtcTransport.
    ice_tuples: FastMap<(SocketId, SocketAddr), u32>,
    /// Local ICE username fragments -> WebRtcTransport (demux on WebRtcServer sockets).
    ice_ufrags: std::collections::HashMap<String, u32>,
    /// This shard's part of each WebRtcServer: its sockets.
    webrtc_servers: FastMap<ObjectId, Vec<SocketId>>,

    events: VecDeque<Event>,
    released_sockets: Vec<SocketId>,
    drops: DropCounters,
    clock: NtpClock,
    scratch: Box<[u8; SCRATCH_BYTES]>,
    ext: ExtensionsBuilder,
    next_tick: Option<Instant>,
    /// Producers with a key frame request outstanding (each at most once).
    key_frame_pending: Vec<u32>,
    /// The latest `now` the shard was given (for work without a `now` of its own: close alerts).
    last_now: Instant,
    /// Datagrams from the control path (DTLS close alerts of closing transports), sent by the
    /// adapter after the command: (socket, destination, bytes). One per closing transport.
    control_tx: Vec<(SocketId, SocketAddr, Vec<u8>)>,
    /// Control messages for other shards (spanning routers), drained by the adapter.
    shard_out: VecDeque<(usize, ShardCommand)>,
    records_out: u64,
    /// Data messages sent to other shards (one per message per subscribed shard or pipe link).
    data_to_shards: u64,
    /// Mirrors that may have no consumers left (checked on the housekeeping tick).
    idle_mirrors: Vec<u32>,
    /// Data mirrors that may have no data consumers left (likewise).
    idle_data_mirrors: Vec<u32>,
}

impl Shard {
    pub fn new(now: Instant, clock: NtpClock) -> Self {
        Shard {
            routers: Slab::default(),
            transports: Slab::default(),
            producers: Slab::default(),
            consumers: Slab::default(),
            data_producers: Slab::default(),
            data_consumers: Slab::default(),
            observers: Slab::default(),
            ids: FastMap::default(),
            sockets: FastMap::default(),
            ice_tuples: FastMap::default(),
            ice_ufrags: std::collections::HashMap::new(),
            webrtc_servers: FastMap::default(),
            events: VecDeque::new(),
            released_sockets: Vec::new(),
            drops: DropCounters::default(),
            clock,
            scratch: Box::new([0; SCRATCH_BYTES]),
            ext: ExtensionsBuilder::default(),
            next_tick: None,
            key_frame_pending: Vec::new(),
            last_now: now,
            control_tx: Vec::new(),
            shard_out: VecDeque::new(),
            records_out: 0,
            data_to_shards: 0,
            idle_mirrors: Vec::new(),
            idle_data_mirrors: Vec::new(),
        }
    }

    /// Next event for the outside world, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether events wait in the queue (cheap check for the packet path).
    #[inline]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Datagrams the control path produced (DTLS close alerts); the adapter sends them.
    pub fn take_control_tx(&mut self) -> Vec<(SocketId, SocketAddr, Vec<u8>)> {
        std::mem::take(&mut self.control_tx)
    }

    /// Whether sockets wait for the adapter to close them.
    #[inline]
    pub fn has_released_sockets(&self) -> bool {
        !self.released_sockets.is_empty()
    }

    /// Sockets whose transports closed; the adapter closes them.
    pub fn take_released_sockets(&mut self) -> Vec<SocketId> {
        std::mem::take(&mut self.released_sockets)
    }

    /// When the shard wants `handle_timeout` next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Count a drop the adapter around the shard decided (its queues, not the core's packets).
    pub fn count_drop(&mut self, reason: DropReason) {
        self.drops.count(reason);
    }

    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    pub fn kind_of(&self, id: ObjectId) -> Option<ObjectKind> {
        self.ids.get(&id).map(|(k, _)| *k)
    }

    /// Counts for placement and metrics.
    pub fn object_counts(&self) -> ObjectCounts {
        ObjectCounts {
            routers: self.routers.len() as u32,
            transports: self.transports.len() as u32,
            producers: self.producers.len() as u32,
            consumers: self.consumers.len() as u32,
            data_producers: self.data_producers.len() as u32,
            data_consumers: self.data_consumers.len() as u32,
        }
    }

    fn key(&self, id: ObjectId, kind: ObjectKind) -> Option<u32> {
        match self.ids.get(&id) {
            Some((k, key)) if *k == kind => Some(*key),
            _ => None,
        }
    }

    fn arm_tick(&mut self, now: Instant) {
        if self.next_tick.is_none() && !self.transports.is_empty() {
            self.next_tick = Some(now + TICK);
        }
    }
}

/// Object counts of one shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectCounts {
    pub routers: u32,
    pub transports: u32,
    pub producers: u32,
    pub consumers: u32,
    pub data_producers: u32,
    pub data_consumers: u32,
}
