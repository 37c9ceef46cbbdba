//! Events from shards to application callbacks, on one dispatcher thread per engine.
//!
//! Shards never run application code: they push [`Dispatch`] items into a channel, and the
//! dispatcher marks objects closed or paused and calls the handlers registered on them. Replies
//! to commands travel the same channel, so a close cascade's events are delivered before the
//! call that caused it returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::core::{ConsumerScore, Event, ObjectId, ProducerStreamScore};
use crate::webrtc::cert::DtlsState;
use crate::webrtc::ice::{IceState, IceTuple};

/// What a handler receives.
#[derive(Debug, Clone)]
pub enum EventArg<'e> {
    None,
    Tuple {
        local: SocketAddr,
        remote: SocketAddr,
    },
    Bytes(&'e [u8]),
    IceState(IceState),
    IceTuple(IceTuple),
    DtlsState(DtlsState),
    ProducerScore(&'e [ProducerStreamScore]),
    /// A data message: its payload protocol id and bytes.
    DataMessage {
        ppid: u32,
        payload: &'e [u8],
    },
    ConsumerScore(&'e ConsumerScore),
    /// A producer id (observers' `addproducer`, `removeproducer`, `dominantspeaker`).
    Text(&'e str),
    Volumes(&'e [super::AudioLevelObserverVolume]),
}

/// A WebRtcTransport's ICE and DTLS state as its events last told it.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct WebRtcLive {
    pub ice_state: Option<IceState>,
    pub ice_selected_tuple: Option<IceTuple>,
    pub dtls_state: DtlsState,
}

type Handler = Box<dyn Fn(&EventArg<'_>) + Send + Sync>;
type SharedHandler = Arc<dyn Fn(&EventArg<'_>) + Send + Sync>;

/// Identifies a registered handler, for removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HandlerId(u64);

static NEXT_HANDLER: AtomicU64 = AtomicU64::new(1);

/// State of one object shared by all clones of its handle and the dispatcher.
pub(crate) struct ObjectShared {
    pub id: ObjectId,
    pub uuid: String,
    pub closed: AtomicBool,
    pub paused: AtomicBool,
    pub producer_paused: AtomicBool,
    /// Remote RTP and RTCP addresses learned by a comedia transport.
    pub remote: Mutex<(Option<SocketAddr>, Option<SocketAddr>)>,
    pub webrtc: Mutex<WebRtcLive>,
    /// A producer's `score`, as its last `score` event told it.
    pub producer_score: Mutex<Vec<ProducerStreamScore>>,
    /// A consumer's `score`, as its last `score` event told it.
    pub consumer_score: Mutex<ConsumerScore>,
    handlers: Mutex<Vec<(HandlerId, &'static str, SharedHandler)>>,
}

impl ObjectShared {
    pub fn new(id: ObjectId, uuid: String, paused: bool) -> Arc<Self> {
        Arc::new(ObjectShared {
            id,
            uuid,
            closed: AtomicBool::new(false),
            paused: AtomicBool::new(paused),
            producer_paused: AtomicBool::new(false),
            remote: Mutex::new((None, None)),
            webrtc: Mutex::new(WebRtcLive::default()),
            producer_score: Mutex::new(Vec::new()),
            consumer_score: Mutex::new(ConsumerScore::default()),
            handlers: Mutex::new(Vec::new()),
        })
    }

    pub fn on(&self, event: &'static str, f: Handler) -> HandlerId {
        let id = HandlerId(NEXT_HANDLER.fetch_add(1, Ordering::Relaxed));
        self.handlers.lock().expect("handlers lock").push((id, event, Arc::from(f)));
        id
    }

    pub fn off(&self, id: HandlerId) {
        self.handlers.lock().expect("handlers lock").retain(|(h, _, _)| *h != id);
    }

    /// Call the handlers of `event`, outside the lock: a handler may register or remove
    /// handlers of the same object.
    pub fn emit(&self, event: &str, arg: &EventArg<'_>) {
        let matching: Vec<SharedHandler> = {
            let handlers = self.handlers.lock().expect("handlers lock");
            handlers.iter().filter(|(_, name, _)| *name == event).map(|(_, _, f)| f.clone()).collect()
        };
        for f in matching {
            f(arg);
        }
    }

    /// Record a pause or resume the shard applied; emits the observer's `pause` / `resume` when
    /// the state changed.
    pub fn set_paused(&self, paused: bool) {
        if self.paused.swap(paused, Ordering::AcqRel) != paused {
            self.emit(if paused { "@pause" } else { "@resume" }, &EventArg::None);
        }
    }

    /// `closed` as a mediasoup error, for calls on closed objects.
    pub fn check_open(&self, class: &str) -> crate::Result<()> {
        if self.is_closed() {
            return Err(crate::Error::invalid_state(format!("{class} closed")));
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Mark closed; true if this call closed it. Emits the observer's `close`.
    pub fn mark_closed(&self) -> bool {
        self.mark_closed_by(None)
    }

    /// Mark closed because of `event` (mediasoup's `transportclose`, `workerclose`, ...): emits
    /// it, then the observer's `close`; true if this call closed it.
    pub fn mark_closed_by(&self, event: Option<&str>) -> bool {
        let first = !self.closed.swap(true, Ordering::AcqRel);
        if first {
            if let Some(event) = event {
                self.emit(event, &EventArg::None);
            }
            self.emit("@close", &EventArg::None);
        }
        first
    }
}

/// One item for the dispatcher.
pub(crate) enum Dispatch {
    Event(Event),
    Reply(Box<dyn FnOnce() + Send>),
}

/// DirectTransport packets queued for callbacks at most; past it, new ones are dropped and
/// counted, so a slow callback cannot make the queue grow without bound.
pub(crate) const MAX_DIRECT_PACKETS_QUEUED: usize = 4096;

/// Live objects by id, for routing events. Entries leave when the object closes.
#[derive(Default)]
pub(crate) struct Registry {
    objects: Mutex<HashMap<ObjectId, Weak<ObjectShared>>>,
    /// DirectTransport packets sent to the dispatcher and not yet delivered.
    pub direct_queued: AtomicUsize,
    pub direct_dropped: AtomicU64,
}

impl Registry {
    /// Take a place in the bounded DirectTransport queue; false (and counted) when it is full.
    pub fn reserve_direct(&self) -> bool {
        if self.direct_queued.fetch_add(1, Ordering::AcqRel) >= MAX_DIRECT_PACKETS_QUEUED {
            self.direct_queued.fetch_sub(1, Ordering::AcqRel);
            self.direct_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        true
    }
}

impl Registry {
    pub fn insert(&self, obj: &Arc<ObjectShared>) {
        self.objects.lock().expect("registry lock").insert(obj.id, Arc::downgrade(obj));
    }

    pub fn get(&self, id: ObjectId) -> Option<Arc<ObjectShared>> {
        self.objects.lock().expect("registry lock").get(&id).and_then(Weak::upgrade)
    }

    /// The UUID string of a live object.
    pub fn uuid(&self, id: ObjectId) -> Option<String> {
        self.get(id).map(|o| o.uuid.clone())
    }

    pub fn remove(&self, id: ObjectId) {
        self.objects.lock().expect("registry lock").remove(&id);
    }
}

/// The dispatcher loop; returns when every sender is gone. Calls `tick` at least once per
/// `every` (more often while events flow).
pub(crate) fn run(rx: mpsc::Receiver<Dispatch>, registry: Arc<Registry>, every: Duration, mut tick: impl FnMut()) {
    let mut next_tick = Instant::now() + every;
    loop {
        let item = match rx.recv_timeout(every) {
            Ok(item) => Some(item),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let now = Instant::now();
        if now >= next_tick {
            tick();
            next_tick = now + every;
        }
        let Some(item) = item else { continue };
        match item {
            Dispatch::Reply(f) => f(),
            Dispatch::Event(ev) => {
                let direct = ev.is_direct();
                deliver(&registry, ev);
                if direct {
                    registry.direct_queued.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }
}

/// A consumer's (or data consumer's) source paused or resumed: record it, then tell its handlers.
fn source_paused(registry: &Registry, consumer: ObjectId, paused: bool, event: &str) {
    if let Some(obj) = registry.get(consumer) {
        obj.producer_paused.store(paused, Ordering::Release);
        obj.emit(event, &EventArg::None);
    }
}

fn deliver(registry: &Registry, ev: Event) {
    match ev {
        Event::Closed { object, reason } => {
            if let Some(obj) = registry.get(object) {
                obj.mark_closed_by(Some(reason.event_name()));
            }
            registry.remove(object);
        }
        Event::Paused { object, paused } => {
            if let Some(obj) = registry.get(object) {
                obj.set_paused(paused);
            }
        }
        Event::ProducerPaused { consumer } => source_paused(registry, consumer, true, "producerpause"),
        Event::ProducerResumed { consumer } => source_paused(registry, consumer, false, "producerresume"),
        Event::ProducerScore { producer, scores } => {
            if let Some(obj) = registry.get(producer) {
                obj.producer_score.lock().expect("score lock").clone_from(&scores);
                obj.emit("score", &EventArg::ProducerScore(&scores));
            }
        }
        Event::ConsumerScore { consumer, score } => {
            if let Some(obj) = registry.get(consumer) {
                obj.consumer_score.lock().expect("score lock").clone_from(&score);
                obj.emit("score", &EventArg::ConsumerScore(&score));
            }
        }
        Event::Tuple { transport, local, remote } => {
            if let Some(obj) = registry.get(transport) {
                obj.remote.lock().expect("remote lock").0 = Some(remote);
                obj.emit("tuple", &EventArg::Tuple { local, remote });
            }
        }
        Event::RtcpTuple { transport, local, remote } => {
            if let Some(obj) = registry.get(transport) {
                obj.remote.lock().expect("remote lock").1 = Some(remote);
                obj.emit("rtcptuple", &EventArg::Tuple { local, remote });
            }
        }
        Event::DirectRtp { consumer, packet } => {
            if let Some(obj) = registry.get(consumer) {
                obj.emit("rtp", &EventArg::Bytes(&packet));
            }
        }
        Event::DirectRtcp { transport, packet } => {
            if let Some(obj) = registry.get(transport) {
                obj.emit("rtcp", &EventArg::Bytes(&packet));
            }
        }
        Event::DataMessage { data_consumer, ppid, payload } => {
            if let Some(obj) = registry.get(data_consumer) {
                obj.emit("message", &EventArg::DataMessage { ppid, payload: &payload });
            }
        }
        Event::DataProducerPaused { data_consumer } => {
            source_paused(registry, data_consumer, true, "dataproducerpause")
        }
        Event::DataProducerResumed { data_consumer } => {
            source_paused(registry, data_consumer, false, "dataproducerresume")
        }
        Event::AudioVolumes { observer, volumes } => {
            if let Some(obj) = registry.get(observer) {
                let volumes: Vec<_> = volumes
                    .into_iter()
                    .filter_map(|(p, volume)| {
                        Some(super::AudioLevelObserverVolume { producer_id: registry.uuid(p)?, volume })
                    })
                    .collect();
                if !volumes.is_empty() {
                    obj.emit("volumes", &EventArg::Volumes(&volumes));
                }
            }
        }
        Event::AudioSilence { observer } => {
            if let Some(obj) = registry.get(observer) {
                obj.emit("silence", &EventArg::None);
            }
        }
        Event::DominantSpeaker { observer, producer } => {
            if let (Some(obj), Some(id)) = (registry.get(observer), registry.uuid(producer)) {
                obj.emit("dominantspeaker", &EventArg::Text(&id));
            }
        }
        Event::IceStateChange { transport, state } => {
            if let Some(obj) = registry.get(transport) {
                obj.webrtc.lock().expect("webrtc lock").ice_state = Some(state);
                obj.emit("icestatechange", &EventArg::IceState(state));
            }
        }
        Event::IceSelectedTupleChange { transport, tuple } => {
            if let Some(obj) = registry.get(transport) {
                obj.webrtc.lock().expect("webrtc lock").ice_selected_tuple = Some(tuple);
                obj.emit("iceselectedtuplechange", &EventArg::IceTuple(tuple));
            }
        }
        Event::DtlsStateChange { transport, state } => {
            if let Some(obj) = registry.get(transport) {
                obj.webrtc.lock().expect("webrtc lock").dtls_state = state;
                obj.emit("dtlsstatechange", &EventArg::DtlsState(state));
            }
        }
    }
}
