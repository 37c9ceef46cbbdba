//! The objects the API created, by id, and who owns them.
//!
//! Ownership is per worker: a worker belongs to one connection (or to none, while orphaned) and
//! everything under it follows. Each worker has a [`Sink`] that its objects' event handlers push
//! notifications into; it points at the owning connection's outbox, so `worker.adopt` moves every
//! notification of the worker's objects to the new connection at once.
//!
//! Any authenticated connection may address any object by id (the token is the trust boundary;
//! ids are unguessable UUIDs); ownership decides where notifications go and when objects die.
//!
//! Locking: the registry's lock is never held across an engine call, because engine calls emit
//! events (synchronously, or on the dispatcher thread while our call waits) whose handlers take
//! this lock to forget closed objects.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use serde_json::{json, Value};
use shardsfu_engine::{
    ActiveSpeakerObserver, AudioLevelObserver, Consumer, DataConsumer, DataProducer, DirectTransport, PlainTransport,
    Producer, Router, RtpObserver, Transport, WebRtcServer, WebRtcTransport, Worker, PPID_STRING, PPID_STRING_EMPTY,
};

use crate::rpc::{notification_json, RpcError};

/// A connection's number.
pub type ConnId = u64;

/// Workers one connection may own at once.
pub const MAX_WORKERS_PER_CONNECTION: usize = 64;

thread_local! {
    /// Set while the connection thread runs a client's own pause/resume, whose observer events
    /// must not come back as notifications (PROTOCOL.md: `producer.pause` only when the engine
    /// paused it). The engine emits those synchronously on the calling thread; the engine's own
    /// pauses arrive on its dispatcher thread, where this is never set.
    static IN_CLIENT_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` as a client's own call (see `IN_CLIENT_CALL`).
pub fn as_client_call<T>(f: impl FnOnce() -> T) -> T {
    IN_CLIENT_CALL.with(|c| c.set(true));
    let out = f();
    IN_CLIENT_CALL.with(|c| c.set(false));
    out
}

fn in_client_call() -> bool {
    IN_CLIENT_CALL.with(Cell::get)
}

/// A connection's queue of outgoing notifications (bounded: see `server::MAX_NOTIFICATIONS_QUEUED`).
pub struct Outbox {
    pub tx: SyncSender<String>,
    /// A lifecycle notification did not fit: the connection is closed (the client reconnects
    /// and adopts), rather than silently losing a close.
    pub overflowed: AtomicBool,
    /// Media notifications (DirectTransport packets and data messages) dropped because the queue
    /// was full.
    pub media_dropped: AtomicU64,
}

/// Where the notifications of one worker's objects go.
#[derive(Default)]
pub struct Sink {
    outbox: Mutex<Option<Arc<Outbox>>>,
}

impl Sink {
    fn outbox(&self) -> Option<Arc<Outbox>> {
        self.outbox.lock().expect("sink lock").clone()
    }

    pub fn set(&self, outbox: Option<Arc<Outbox>>) {
        *self.outbox.lock().expect("sink lock") = outbox;
    }

    /// A lifecycle notification (close, pause, tuple...). Never blocks the engine's dispatcher.
    pub fn notify(&self, method: &str, params: Value) {
        if let Some(o) = self.outbox() {
            match o.tx.try_send(notification_json(method, params)) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => o.overflowed.store(true, Ordering::Release),
            }
        }
    }

    /// A media notification: dropped (and counted) when the queue is full.
    pub fn notify_media(&self, method: &str, params: Value) {
        if let Some(o) = self.outbox() {
            if let Err(TrySendError::Full(_)) = o.tx.try_send(notification_json(method, params)) {
                o.media_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A transport of either kind the engine has.
#[derive(Clone)]
pub enum AnyTransport {
    Plain(PlainTransport),
    Direct(DirectTransport),
    WebRtc(WebRtcTransport),
}

impl AnyTransport {
    pub fn transport(&self) -> &Transport {
        match self {
            AnyTransport::Plain(t) => t,
            AnyTransport::Direct(t) => t,
            AnyTransport::WebRtc(t) => t,
        }
    }
}

pub struct WorkerEntry {
    pub worker: Worker,
    pub sink: Arc<Sink>,
    pub owner: Option<ConnId>,
    /// When the owner went away (for the orphan grace period).
    pub orphaned_at: Option<Instant>,
}

/// An object under a worker: its handle, its worker's sink and its parent's id (a router's
/// worker, a transport's router).
#[derive(Clone)]
pub struct Owned<T> {
    pub handle: T,
    pub sink: Arc<Sink>,
    pub parent_id: String,
}

#[derive(Clone)]
pub struct ProducerEntry {
    pub producer: Producer,
    pub router_id: String,
}

#[derive(Clone)]
pub struct ConsumerEntry {
    pub consumer: Consumer,
    /// mediasoup's consumer priority (kept here: the engine's simple consumers have no use for it).
    pub priority: u8,
}

#[derive(Clone)]
pub struct DataProducerEntry {
    pub data_producer: DataProducer,
    pub router_id: String,
}

#[derive(Default)]
pub struct Objects {
    pub workers: HashMap<String, WorkerEntry>,
    pub routers: HashMap<String, Owned<Router>>,
    pub transports: HashMap<String, Owned<AnyTransport>>,
    pub webrtc_servers: HashMap<String, Owned<WebRtcServer>>,
    /// By id; a pipe producer made with `keepId` shares its source's id (in another router),
    /// so one id may name several producers, told apart by `routerId`.
    pub producers: HashMap<String, Vec<ProducerEntry>>,
    pub consumers: HashMap<String, ConsumerEntry>,
    /// By id, several per id as for producers (`pipeToRouter` with `dataProducerId` and `keepId`).
    pub data_producers: HashMap<String, Vec<DataProducerEntry>>,
    pub data_consumers: HashMap<String, DataConsumer>,
    /// AudioLevelObservers and ActiveSpeakerObservers, by id; `parent_id` is the router's.
    pub rtp_observers: HashMap<String, Owned<RtpObserver>>,
}

/// The registry: shared by connections, the reaper and the engine's event handlers (weakly).
#[derive(Default)]
pub struct Registry {
    pub objects: Mutex<Objects>,
}

fn not_found(class: &str, id: &str) -> RpcError {
    RpcError::invalid_state(format!("{class} \"{id}\" not found (closed, or never created)"))
}

impl Registry {
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.objects.lock().expect("registry lock")
    }

    pub fn worker(&self, id: &str) -> Result<(Worker, Arc<Sink>), RpcError> {
        self.lock().workers.get(id).map(|w| (w.worker.clone(), w.sink.clone())).ok_or_else(|| not_found("Worker", id))
    }

    pub fn router(&self, id: &str) -> Result<Owned<Router>, RpcError> {
        self.lock().routers.get(id).cloned().ok_or_else(|| not_found("Router", id))
    }

    pub fn webrtc_server(&self, id: &str) -> Result<Owned<WebRtcServer>, RpcError> {
        self.lock().webrtc_servers.get(id).cloned().ok_or_else(|| not_found("WebRtcServer", id))
    }

    /// Record a new WebRtcServer and forward its events to its worker's sink.
    pub fn add_webrtc_server(self: &Arc<Self>, server: &WebRtcServer, sink: &Arc<Sink>, worker_id: &str) {
        let id = server.id().to_owned();
        let (s, sid) = (sink.clone(), id.clone());
        server.on_worker_close(move || s.notify("webRtcServer.workerclose", json!({ "webRtcServerId": sid })));
        let (weak, sid) = (Arc::downgrade(self), id.clone());
        server.on_close(move || forget(&weak, |o| drop(o.webrtc_servers.remove(&sid))));
        let entry = Owned { handle: server.clone(), sink: sink.clone(), parent_id: worker_id.to_owned() };
        self.lock().webrtc_servers.insert(id.clone(), entry);
        if server.closed() {
            self.lock().webrtc_servers.remove(&id);
        }
    }

    pub fn transport(&self, id: &str) -> Result<Owned<AnyTransport>, RpcError> {
        self.lock().transports.get(id).cloned().ok_or_else(|| not_found("Transport", id))
    }

    /// The producer `id` (in router `router_id` when several share the id).
    pub fn producer(&self, id: &str, router_id: Option<&str>) -> Result<ProducerEntry, RpcError> {
        let objects = self.lock();
        in_router("Producer", id, objects.producers.get(id), router_id, |p| &p.router_id)
    }

    /// The data producer `id` (in router `router_id` when several share the id).
    pub fn data_producer(&self, id: &str, router_id: Option<&str>) -> Result<DataProducerEntry, RpcError> {
        let objects = self.lock();
        in_router("DataProducer", id, objects.data_producers.get(id), router_id, |p| &p.router_id)
    }

    pub fn data_consumer(&self, id: &str) -> Result<DataConsumer, RpcError> {
        self.lock().data_consumers.get(id).cloned().ok_or_else(|| not_found("DataConsumer", id))
    }

    pub fn rtp_observer(&self, id: &str) -> Result<Owned<RtpObserver>, RpcError> {
        self.lock().rtp_observers.get(id).cloned().ok_or_else(|| not_found("RtpObserver", id))
    }

    pub fn consumer(&self, id: &str) -> Result<ConsumerEntry, RpcError> {
        self.lock().consumers.get(id).cloned().ok_or_else(|| not_found("Consumer", id))
    }

    /// Workers owned by `conn`.
    pub fn owned_workers(&self, conn: ConnId) -> usize {
        self.lock().workers.values().filter(|w| w.owner == Some(conn)).count()
    }

    /// Record a new router and forward its events to its worker's sink.
    pub fn add_router(self: &Arc<Self>, router: &Router, sink: &Arc<Sink>, worker_id: &str) {
        let id = router.id().to_owned();
        let (s, rid) = (sink.clone(), id.clone());
        router.on_worker_close(move || s.notify("router.workerclose", json!({ "routerId": rid })));
        let (weak, rid) = (Arc::downgrade(self), id.clone());
        router.on_close(move || forget(&weak, |o| drop(o.routers.remove(&rid))));
        let entry = Owned { handle: router.clone(), sink: sink.clone(), parent_id: worker_id.to_owned() };
        self.lock().routers.insert(id, entry);
        if router.closed() {
            self.lock().routers.remove(router.id());
        }
    }

    pub fn add_transport(self: &Arc<Self>, t: AnyTransport, sink: &Arc<Sink>, router_id: &str) {
        let base = t.transport().clone();
        let id = base.id().to_owned();
        let (s, tid) = (sink.clone(), id.clone());
        base.on_router_close(move || s.notify("transport.routerclose", json!({ "transportId": tid })));
        match &t {
            AnyTransport::Plain(p) => {
                let (s, tid) = (sink.clone(), id.clone());
                p.on_tuple(move |tuple| s.notify("transport.tuple", json!({ "transportId": tid, "tuple": tuple })));
                let (s, tid) = (sink.clone(), id.clone());
                p.on_rtcp_tuple(move |tuple| {
                    s.notify("transport.rtcptuple", json!({ "transportId": tid, "rtcpTuple": tuple }))
                });
            }
            AnyTransport::WebRtc(w) => {
                let (s, tid) = (sink.clone(), id.clone());
                w.on_ice_state_change(move |state| {
                    s.notify("transport.icestatechange", json!({ "transportId": tid, "iceState": state }))
                });
                let (s, tid) = (sink.clone(), id.clone());
                w.on_ice_selected_tuple_change(move |tuple| {
                    s.notify(
                        "transport.iceselectedtuplechange",
                        json!({ "transportId": tid, "iceSelectedTuple": tuple }),
                    )
                });
                let (s, tid) = (sink.clone(), id.clone());
                w.on_dtls_state_change(move |state| {
                    s.notify("transport.dtlsstatechange", json!({ "transportId": tid, "dtlsState": state }))
                });
                let (s, tid) = (sink.clone(), id.clone());
                w.on_listen_server_close(move || {
                    s.notify("transport.listenserverclose", json!({ "transportId": tid }))
                });
            }
            AnyTransport::Direct(d) => {
                let (s, tid) = (sink.clone(), id.clone());
                d.on_rtcp(move |packet| {
                    s.notify_media(
                        "transport.rtcp",
                        json!({ "transportId": tid, "packet": crate::b64::encode(packet) }),
                    )
                });
            }
        }
        let (weak, tid) = (Arc::downgrade(self), id.clone());
        base.on_close(move || forget(&weak, |o| drop(o.transports.remove(&tid))));
        let entry = Owned { handle: t, sink: sink.clone(), parent_id: router_id.to_owned() };
        self.lock().transports.insert(id.clone(), entry);
        if base.closed() {
            self.lock().transports.remove(&id);
        }
    }

    pub fn add_producer(self: &Arc<Self>, p: &Producer, router_id: &str, sink: &Arc<Sink>) {
        let id = p.id().to_owned();
        let params = json!({ "producerId": id, "routerId": router_id });
        let (s, ps) = (sink.clone(), params.clone());
        p.on_transport_close(move || s.notify("producer.transportclose", ps.clone()));
        let (s, ps) = (sink.clone(), params.clone());
        p.on_pause(move || {
            if !in_client_call() {
                s.notify("producer.pause", ps.clone())
            }
        });
        let (s, ps) = (sink.clone(), params);
        p.on_resume(move || {
            if !in_client_call() {
                s.notify("producer.resume", ps.clone())
            }
        });
        let (s, pid, rid) = (sink.clone(), id.clone(), router_id.to_owned());
        p.on_score(move |score| {
            s.notify("producer.score", json!({ "producerId": pid, "routerId": rid, "score": score }))
        });
        let (weak, pid, rid) = (Arc::downgrade(self), id.clone(), router_id.to_owned());
        p.on_close(move || forget(&weak, |o| forget_in_router(&mut o.producers, &pid, &rid, |e| &e.router_id)));
        let entry = ProducerEntry { producer: p.clone(), router_id: router_id.to_owned() };
        let mut objects = self.lock();
        if !p.closed() {
            objects.producers.entry(id).or_default().push(entry);
        }
    }

    pub fn add_consumer(self: &Arc<Self>, c: &Consumer, sink: &Arc<Sink>) {
        let id = c.id().to_owned();
        let params = json!({ "consumerId": id });
        for (event, method) in [
            ("transportclose", "consumer.transportclose"),
            ("producerclose", "consumer.producerclose"),
            ("producerpause", "consumer.producerpause"),
            ("producerresume", "consumer.producerresume"),
        ] {
            let (s, ps) = (sink.clone(), params.clone());
            let f = move || s.notify(method, ps.clone());
            match event {
                "transportclose" => c.on_transport_close(f),
                "producerclose" => c.on_producer_close(f),
                "producerpause" => c.on_producer_pause(f),
                _ => c.on_producer_resume(f),
            };
        }
        let (s, cid) = (sink.clone(), id.clone());
        c.on_score(move |score| s.notify("consumer.score", json!({ "consumerId": cid, "score": score })));
        let (s, cid) = (sink.clone(), id.clone());
        c.on_rtp(move |packet| {
            s.notify_media("consumer.rtp", json!({ "consumerId": cid, "packet": crate::b64::encode(packet) }))
        });
        let (weak, cid) = (Arc::downgrade(self), id.clone());
        c.on_close(move || forget(&weak, |o| drop(o.consumers.remove(&cid))));
        let entry = ConsumerEntry { consumer: c.clone(), priority: 1 };
        let mut objects = self.lock();
        if !c.closed() {
            objects.consumers.insert(id, entry);
        }
    }

    /// Record a new data producer and forward its events (as for producers: `pause` / `resume`
    /// only when the engine paused it, a pipe data producer following its source).
    pub fn add_data_producer(self: &Arc<Self>, d: &DataProducer, router_id: &str, sink: &Arc<Sink>) {
        let id = d.id().to_owned();
        let params = json!({ "dataProducerId": id, "routerId": router_id });
        let (s, ps) = (sink.clone(), params.clone());
        d.on_transport_close(move || s.notify("dataProducer.transportclose", ps.clone()));
        let (s, ps) = (sink.clone(), params.clone());
        d.on_pause(move || {
            if !in_client_call() {
                s.notify("dataProducer.pause", ps.clone())
            }
        });
        let (s, ps) = (sink.clone(), params);
        d.on_resume(move || {
            if !in_client_call() {
                s.notify("dataProducer.resume", ps.clone())
            }
        });
        let (weak, did, rid) = (Arc::downgrade(self), id.clone(), router_id.to_owned());
        d.on_close(move || forget(&weak, |o| forget_in_router(&mut o.data_producers, &did, &rid, |e| &e.router_id)));
        let entry = DataProducerEntry { data_producer: d.clone(), router_id: router_id.to_owned() };
        let mut objects = self.lock();
        if !d.closed() {
            objects.data_producers.entry(id).or_default().push(entry);
        }
    }

    /// Record a new data consumer and forward its events; its messages (DirectTransport) are
    /// media notifications, dropped when the connection's queue is full.
    pub fn add_data_consumer(self: &Arc<Self>, d: &DataConsumer, sink: &Arc<Sink>) {
        let id = d.id().to_owned();
        let params = json!({ "dataConsumerId": id });
        for (event, method) in [
            ("transportclose", "dataConsumer.transportclose"),
            ("dataproducerclose", "dataConsumer.dataproducerclose"),
            ("dataproducerpause", "dataConsumer.dataproducerpause"),
            ("dataproducerresume", "dataConsumer.dataproducerresume"),
        ] {
            let (s, ps) = (sink.clone(), params.clone());
            let f = move || s.notify(method, ps.clone());
            match event {
                "transportclose" => d.on_transport_close(f),
                "dataproducerclose" => d.on_data_producer_close(f),
                "dataproducerpause" => d.on_data_producer_pause(f),
                _ => d.on_data_producer_resume(f),
            };
        }
        let (s, did) = (sink.clone(), id.clone());
        d.on_message(move |payload, ppid| {
            s.notify_media("dataConsumer.message", data_message_params(&did, payload, ppid))
        });
        let (weak, did) = (Arc::downgrade(self), id.clone());
        d.on_close(move || forget(&weak, |o| drop(o.data_consumers.remove(&did))));
        let mut objects = self.lock();
        if !d.closed() {
            objects.data_consumers.insert(id, d.clone());
        }
    }

    /// Record a new AudioLevelObserver and forward its events: `volumes` is a media notification
    /// (dropped when the connection's queue is full: the next interval tells again), `silence`
    /// a lifecycle one.
    pub fn add_audio_level_observer(self: &Arc<Self>, o: &AudioLevelObserver, router_id: &str, sink: &Arc<Sink>) {
        let (s, oid) = (sink.clone(), o.id().to_owned());
        o.on_volumes(move |volumes| {
            s.notify_media("rtpObserver.volumes", json!({ "rtpObserverId": oid, "volumes": volumes }))
        });
        let (s, oid) = (sink.clone(), o.id().to_owned());
        o.on_silence(move || s.notify("rtpObserver.silence", json!({ "rtpObserverId": oid })));
        self.add_rtp_observer(o, router_id, sink);
    }

    /// Record a new ActiveSpeakerObserver and forward its events.
    pub fn add_active_speaker_observer(self: &Arc<Self>, o: &ActiveSpeakerObserver, router_id: &str, sink: &Arc<Sink>) {
        let (s, oid) = (sink.clone(), o.id().to_owned());
        o.on_dominant_speaker(move |producer_id| {
            s.notify("rtpObserver.dominantspeaker", json!({ "rtpObserverId": oid, "producerId": producer_id }))
        });
        self.add_rtp_observer(o, router_id, sink);
    }

    /// What both observers share: `routerclose`, and forgetting it once closed.
    fn add_rtp_observer(self: &Arc<Self>, o: &RtpObserver, router_id: &str, sink: &Arc<Sink>) {
        let id = o.id().to_owned();
        let (s, oid) = (sink.clone(), id.clone());
        o.on_router_close(move || s.notify("rtpObserver.routerclose", json!({ "rtpObserverId": oid })));
        let (weak, oid) = (Arc::downgrade(self), id.clone());
        o.on_close(move || forget(&weak, |objs| drop(objs.rtp_observers.remove(&oid))));
        let entry = Owned { handle: o.clone(), sink: sink.clone(), parent_id: router_id.to_owned() };
        let mut objects = self.lock();
        if !o.closed() {
            objects.rtp_observers.insert(id, entry);
        }
    }
}

/// The one of `all` (the objects sharing id `id`) in router `router_id`; without a router, the
/// only one.
fn in_router<T: Clone>(
    class: &str,
    id: &str,
    all: Option<&Vec<T>>,
    router_id: Option<&str>,
    router_of: impl Fn(&T) -> &String,
) -> Result<T, RpcError> {
    let all = all.ok_or_else(|| not_found(class, id))?;
    match router_id {
        Some(r) => all.iter().find(|o| router_of(o) == r).cloned().ok_or_else(|| not_found(class, id)),
        None if all.len() == 1 => Ok(all[0].clone()),
        None => Err(RpcError::params(format!(
            "{class} id \"{id}\" exists in {} routers (pipeToRouter with keepId): pass routerId",
            all.len()
        ))),
    }
}

/// A data message as `dataConsumer.message` params: text (`binary: false`) when its ppid says
/// string and it is UTF-8, else base64 (`binary: true`); the bytes are the payload's exactly.
fn data_message_params(data_consumer_id: &str, payload: &[u8], ppid: u32) -> Value {
    let text = if matches!(ppid, PPID_STRING | PPID_STRING_EMPTY) { std::str::from_utf8(payload).ok() } else { None };
    match text {
        Some(t) => json!({ "dataConsumerId": data_consumer_id, "message": t, "binary": false, "ppid": ppid }),
        None => json!({
            "dataConsumerId": data_consumer_id,
            "message": crate::b64::encode(payload),
            "binary": true,
            "ppid": ppid,
        }),
    }
}

/// Forget a closed object, if the registry still exists.
/// Forget the entry of `id` in router `router_id` (ids are shared between routers by
/// pipeToRouter's keepId), and the id once no router has it.
fn forget_in_router<T>(
    map: &mut HashMap<String, Vec<T>>,
    id: &str,
    router_id: &str,
    router_of: impl Fn(&T) -> &String,
) {
    if let Some(all) = map.get_mut(id) {
        all.retain(|e| router_of(e) != router_id);
        if all.is_empty() {
            map.remove(id);
        }
    }
}

fn forget(weak: &Weak<Registry>, f: impl FnOnce(&mut Objects)) {
    if let Some(reg) = weak.upgrade() {
        f(&mut reg.lock());
    }
}
