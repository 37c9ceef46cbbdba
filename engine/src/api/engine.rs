//! Engine (the shards) and Worker (a logical group of routers, as mediasoup apps expect; its
//! routers may sit on any shard).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shardsfu_net::{Runtime, RuntimeConfig, ShardHandle, SubmitError, LOAD_WINDOW};

use super::adapter::ShardAdapter;
use super::command::{Command, Envelope, Response};
use super::dispatch::{self, Dispatch, EventArg, HandlerId, ObjectShared, Registry};
use super::oneshot;
use super::producer::ProducerEntry;
use super::router::{Router, RouterOptions};
use super::webrtc_transport::{WebRtcServer, WebRtcServerOptions};
use crate::core::{CloseReason, ObjectId};
use crate::error::{Error, Result};
use crate::placement::{
    place_router, place_transport, Creates, LoadBoard, Placement, PlacementPolicy, ReportedObjects, ShardLoadView,
};
use crate::webrtc::cert::DtlsCertificate;

/// One placement decision as `Engine::dump()` shows it: (what, router id, decision, inputs).
type PlacementRecord = (&'static str, String, Placement, Vec<ShardLoadView>);

/// Placement decisions kept for `Engine::dump()`.
const MAX_PLACEMENTS_LOGGED: usize = 64;
/// Retries of a full control ring (50 µs apart) in about a second.
const SUBMIT_RETRIES_PER_SECOND: u32 = 20_000;
/// How many times a bounded submit retries a full control ring before giving up (~1 s).
const MAX_SUBMIT_RETRIES: u32 = SUBMIT_RETRIES_PER_SECOND;

/// Engine start options.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Number of shards; 0 = one per CPU.
    pub shards: usize,
    /// Pin each shard to a core.
    pub pin: bool,
    /// Spin this long with no work before parking a shard.
    pub spin_before_park: Duration,
    pub placement: PlacementPolicy,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            shards: 0,
            pin: true,
            spin_before_park: Duration::from_micros(50),
            placement: PlacementPolicy::default(),
        }
    }
}

pub(crate) struct EngineInner {
    runtime: Mutex<Option<Runtime<Envelope>>>,
    pub(crate) shards: Vec<ShardHandle<Envelope>>,
    board: Mutex<LoadBoard>,
    pub(crate) registry: Arc<Registry>,
    next_id: AtomicU64,
    /// Producers by (router, id): mediasoup lets a pipe producer keep its source's id in another
    /// router.
    pub(crate) producers: Mutex<HashMap<(ObjectId, String), Arc<ProducerEntry>>>,
    /// Data producers by (router, id), likewise.
    pub(crate) data_producers: Mutex<HashMap<(ObjectId, String), Arc<super::data::DataProducerEntry>>>,
    policy: PlacementPolicy,
    /// The last `MAX_PLACEMENTS_LOGGED` decisions: (what, router id, decision, inputs).
    placements: Mutex<Vec<PlacementRecord>>,
    dispatcher: Mutex<Option<JoinHandle<()>>>,
}

impl EngineInner {
    pub(crate) fn alloc_id(&self) -> ObjectId {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queue `env` on shard `shard`'s control ring. On a full ring it retries every 50 µs,
    /// `retries` times at most (`None`: until queued, warning once a second).
    fn submit(&self, shard: usize, mut env: Envelope, retries: Option<u32>) -> Result<()> {
        let handle = self.shards.get(shard).ok_or_else(|| Error::other(format!("no shard {shard}")))?;
        // Counted before the push, so the shard can never report more received than sent.
        let creates = env.cmd.creates();
        let board = |f: fn(&mut LoadBoard, usize, Creates)| {
            if let Some(kind) = creates {
                f(&mut self.board.lock().expect("load board lock"), shard, kind);
            }
        };
        board(LoadBoard::sent);
        let mut tries = 0u32;
        loop {
            match handle.submit(env) {
                Ok(()) => return Ok(()),
                Err(SubmitError::Stopped(_)) => {
                    board(LoadBoard::taken_back);
                    return Err(Error::invalid_state("engine closed"));
                }
                Err(SubmitError::Full(e)) => env = e,
            }
            tries += 1;
            if retries.is_some_and(|max| tries > max) {
                board(LoadBoard::taken_back);
                return Err(Error::other(format!("control ring of shard {shard} stays full")));
            }
            if tries.is_multiple_of(SUBMIT_RETRIES_PER_SECOND) {
                tracing::warn!(shard, "control ring full for 1 s; still waiting to queue a command");
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Send a command and wait for its reply.
    pub(crate) async fn request(&self, shard: usize, cmd: Command) -> Result<Response> {
        let (tx, rx) = oneshot::channel();
        self.submit(shard, Envelope { cmd, reply: Some(tx) }, Some(MAX_SUBMIT_RETRIES))?;
        rx.await.map_err(|_| Error::invalid_state("engine closed"))?
    }

    /// Send a command without waiting for its reply (close, pause from a sync context). It is
    /// never dropped while the engine runs: on a full ring the caller waits, since a lost close
    /// would leave the object alive on its shard.
    pub(crate) fn tell(&self, shard: usize, cmd: Command) {
        let _ = self.submit(shard, Envelope { cmd, reply: None }, None);
    }

    /// Hand the shard data from the application (DirectTransport packets): waits a bounded
    /// time on a full ring, then fails, so a stalled shard slows the sender, and what cannot be
    /// queued is an error the caller sees, not a silent loss.
    pub(crate) fn send_data(&self, shard: usize, cmd: Command) -> Result<()> {
        self.submit(shard, Envelope { cmd, reply: None }, Some(MAX_SUBMIT_RETRIES))
    }

    /// What placement knows now: each shard's newest load report, plus the creations sent to it
    /// that the report does not include yet (see [`LoadBoard`]).
    pub(crate) fn loads(&self) -> Vec<ShardLoadView> {
        let board = self.board.lock().expect("load board lock");
        self.shards
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let report = h.load();
                let objects = ReportedObjects::from_figures(report.service);
                let measured = ShardLoadView {
                    shard: i,
                    busy_fraction: report.busy_fraction,
                    rx_pps: report.rx_pps,
                    tx_pps: report.tx_pps,
                    routers: objects.routers,
                    transports: objects.transports,
                    consumers: objects.consumers,
                    report: report.seq,
                };
                board.view(measured, objects.received)
            })
            .collect()
    }

    /// Choose a shard for a new transport of a router homed on `home`.
    pub(crate) fn place_transport(&self, router_uuid: &str, home: usize, room_at_home: u32) -> Result<usize> {
        let loads = self.loads();
        let decision = place_transport(home, room_at_home, &loads, &self.policy)
            .ok_or_else(|| Error::other("every shard is at its consumer watermark: no room for a new transport"))?;
        tracing::debug!(
            router = router_uuid,
            shard = decision.shard,
            home,
            room_at_home,
            overloaded = decision.overloaded,
            "transport placed"
        );
        self.log_placement("transport", router_uuid, decision, loads);
        Ok(decision.shard)
    }

    fn log_placement(&self, what: &'static str, router_uuid: &str, decision: Placement, loads: Vec<ShardLoadView>) {
        let mut log = self.placements.lock().expect("placements lock");
        if log.len() >= MAX_PLACEMENTS_LOGGED {
            log.remove(0);
        }
        log.push((what, router_uuid.to_owned(), decision, loads));
    }

    /// Choose a shard for a new router and remember why (shown in `Engine::dump()`).
    pub(crate) fn place(&self, router_uuid: &str) -> usize {
        let loads = self.loads();
        let decision = place_router(&loads, &self.policy);
        tracing::debug!(
            router = router_uuid,
            shard = decision.shard,
            score = decision.score,
            overloaded = decision.overloaded,
            "router placed"
        );
        self.log_placement("router", router_uuid, decision, loads);
        decision.shard
    }
}

/// The running engine: its shards and the event dispatcher. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<EngineInner>,
}

impl Engine {
    /// Start the shards. Fails with a clear message when io_uring or the memlock limit is not
    /// what glommio needs.
    pub fn start(options: EngineOptions) -> Result<Engine> {
        let (tx, rx) = mpsc::channel::<Dispatch>();
        let registry = Arc::new(Registry::default());
        let count = if options.shards == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            options.shards
        };
        let factory_tx = Mutex::new(tx);
        let factory_registry = registry.clone();
        let config = RuntimeConfig {
            shards: count,
            pin: options.pin,
            spin_before_park: options.spin_before_park,
            ..RuntimeConfig::default()
        };
        let runtime = Runtime::start(config, move |info| {
            let tx = factory_tx.lock().expect("factory lock").clone();
            ShardAdapter::new(info, tx, factory_registry.clone())
        })
        .map_err(|e| Error::other(e.to_string()))?;
        let shards: Vec<ShardHandle<Envelope>> = (0..runtime.shard_count()).map(|i| runtime.handle(i)).collect();
        let reg = registry.clone();
        // The event thread also reads the load rings once per window, so that they never fill.
        let reporting = shards.clone();
        let dispatcher = std::thread::Builder::new()
            .name("shardsfu-events".into())
            .spawn(move || {
                dispatch::run(rx, reg, LOAD_WINDOW, || {
                    for h in &reporting {
                        h.load();
                    }
                })
            })
            .map_err(|e| Error::other(format!("cannot start the event dispatcher: {e}")))?;
        Ok(Engine {
            inner: Arc::new(EngineInner {
                runtime: Mutex::new(Some(runtime)),
                board: Mutex::new(LoadBoard::new(shards.len())),
                shards,
                registry,
                next_id: AtomicU64::new(1),
                producers: Mutex::new(HashMap::new()),
                data_producers: Mutex::new(HashMap::new()),
                policy: options.placement,
                placements: Mutex::new(Vec::new()),
                dispatcher: Mutex::new(Some(dispatcher)),
            }),
        })
    }

    pub fn shard_count(&self) -> usize {
        self.inner.shards.len()
    }

    /// Measured load and object counts per shard: the inputs of placement.
    pub fn loads(&self) -> Vec<ShardLoadView> {
        self.inner.loads()
    }

    /// What the I/O layer measured on one shard (datagrams in and out, drops, busy fraction).
    pub fn net_load(&self, shard: usize) -> shardsfu_net::ShardLoad {
        self.inner.shards.get(shard).map(|h| h.load()).unwrap_or_default()
    }

    /// mediasoup's `createWorker()`.
    pub async fn create_worker(&self, settings: WorkerSettings) -> Result<Worker> {
        settings.validate()?;
        let certificate = match (&settings.dtls_certificate_file, &settings.dtls_private_key_file) {
            (Some(cert), Some(key)) => DtlsCertificate::from_pem_files(cert, key)?,
            (None, None) => DtlsCertificate::generate()?,
            _ => return Err(Error::type_error("dtlsCertificateFile and dtlsPrivateKeyFile must be given together")),
        };
        let shared = ObjectShared::new(self.inner.alloc_id(), uuid::Uuid::new_v4().to_string(), false);
        Ok(Worker {
            inner: Arc::new(WorkerInner {
                engine: self.inner.clone(),
                pid: std::process::id(),
                shared,
                settings: Mutex::new(settings),
                routers: Mutex::new(Vec::new()),
                webrtc_servers: Mutex::new(Vec::new()),
                certificate: Arc::new(certificate),
            }),
        })
    }

    /// Per shard: object counts, drop counters, load; and the last placement decisions.
    pub async fn dump(&self) -> Result<Value> {
        let mut shards = Vec::new();
        let loads = self.loads();
        for (i, load) in loads.iter().enumerate() {
            let snap = match self.inner.request(i, Command::ShardSnapshot).await? {
                Response::Shard(s) => s,
                _ => return Err(Error::other("unexpected reply")),
            };
            let net = self.inner.shards[i].load();
            shards.push(json!({
                "shard": i,
                "load": load,
                "objects": snap.objects,
                "drops": snap.drops,
                "recordsToShards": snap.records_to_shards,
                "dataMessagesToShards": snap.data_messages_to_shards,
                "rxPackets": net.rx_packets,
                "txPackets": net.tx_packets,
                "rxBytes": net.rx_bytes,
                "txBytes": net.tx_bytes,
                "txDropped": net.tx_dropped,
                "rxTruncated": net.rx_truncated,
                "rxGroTrains": net.rx_gro_trains,
                "txGsoMessages": net.tx_gso_messages,
                "txSealFailed": net.tx_seal_failed,
                "loadReportsDropped": net.reports_dropped,
            }));
        }
        let placements: Vec<Value> = self
            .inner
            .placements
            .lock()
            .expect("placements lock")
            .iter()
            .map(|(what, router, p, inputs)| json!({ "object": what, "routerId": router, "decision": p, "inputs": inputs }))
            .collect();
        Ok(json!({
            "shards": shards,
            "placementPolicy": self.inner.policy,
            "placements": placements,
            "directPacketsDropped": self.inner.registry.direct_dropped.load(Ordering::Relaxed),
        }))
    }

    /// Stop every shard; all objects are gone afterwards.
    pub fn close(&self) {
        if let Some(rt) = self.inner.runtime.lock().expect("runtime lock").take() {
            rt.shutdown();
        }
    }
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.lock().map(|mut r| r.take()).ok().flatten() {
            rt.shutdown();
        }
        if let Some(d) = self.dispatcher.lock().ok().and_then(|mut d| d.take()) {
            // The dispatcher ends once the shards (the senders) are gone; don't wait on it from
            // its own thread.
            if d.thread().id() != std::thread::current().id() {
                let _ = d.join();
            }
        }
    }
}

static DEFAULT_ENGINE: OnceLock<Engine> = OnceLock::new();

/// mediasoup's `createWorker()` on a process-wide engine started on first use with defaults.
pub async fn create_worker(settings: WorkerSettings) -> Result<Worker> {
    let engine = match DEFAULT_ENGINE.get() {
        Some(e) => e.clone(),
        None => {
            let e = Engine::start(EngineOptions::default())?;
            DEFAULT_ENGINE.get_or_init(|| e).clone()
        }
    };
    engine.create_worker(settings).await
}

/// mediasoup's `WorkerSettings`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct WorkerSettings {
    #[serde(default = "default_log_level")]
    pub log_level: String,
    #[serde(default)]
    pub log_tags: Vec<String>,
    #[serde(default = "default_min_port")]
    pub rtc_min_port: u16,
    #[serde(default = "default_max_port")]
    pub rtc_max_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtls_certificate_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtls_private_key_file: Option<String>,
    #[serde(default)]
    pub app_data: Value,
}

fn default_log_level() -> String {
    "error".into()
}
fn default_min_port() -> u16 {
    10000
}
fn default_max_port() -> u16 {
    59999
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            log_level: default_log_level(),
            log_tags: Vec::new(),
            rtc_min_port: default_min_port(),
            rtc_max_port: default_max_port(),
            dtls_certificate_file: None,
            dtls_private_key_file: None,
            app_data: Value::Object(Default::default()),
        }
    }
}

impl WorkerSettings {
    fn validate(&self) -> Result<()> {
        if !matches!(self.log_level.as_str(), "debug" | "warn" | "error" | "none") {
            return Err(Error::type_error(format!("invalid logLevel '{}'", self.log_level)));
        }
        if self.rtc_min_port > self.rtc_max_port {
            return Err(Error::type_error("rtcMinPort cannot be greater than rtcMaxPort"));
        }
        Ok(())
    }
}

pub(crate) struct WorkerInner {
    pub(crate) engine: Arc<EngineInner>,
    pid: u32,
    pub(crate) shared: Arc<ObjectShared>,
    pub(crate) settings: Mutex<WorkerSettings>,
    routers: Mutex<Vec<Router>>,
    pub(crate) webrtc_servers: Mutex<Vec<WebRtcServer>>,
    /// The DTLS certificate of its WebRtcTransports (generated, or from the settings' files).
    pub(crate) certificate: Arc<DtlsCertificate>,
}

/// mediasoup's Worker: a logical group of routers. Its routers are placed on shards by load.
#[derive(Clone)]
pub struct Worker {
    pub(crate) inner: Arc<WorkerInner>,
}

impl Worker {
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    pub fn closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    pub fn app_data(&self) -> Value {
        self.inner.settings.lock().expect("settings lock").app_data.clone()
    }

    /// mediasoup's `worker.createRouter({ mediaCodecs, appData })`.
    pub async fn create_router(&self, options: RouterOptions) -> Result<Router> {
        if self.closed() {
            return Err(Error::invalid_state("Worker closed"));
        }
        let router = Router::create(self, options).await?;
        let mut routers = self.inner.routers.lock().expect("routers lock");
        routers.retain(|r| !r.closed());
        routers.push(router.clone());
        Ok(router)
    }

    /// mediasoup's `worker.updateSettings({ logLevel, logTags })`.
    pub fn update_settings(&self, log_level: Option<String>, log_tags: Option<Vec<String>>) -> Result<()> {
        let mut s = self.inner.settings.lock().expect("settings lock");
        let mut next = s.clone();
        if let Some(l) = log_level {
            next.log_level = l;
        }
        if let Some(t) = log_tags {
            next.log_tags = t;
        }
        next.validate()?;
        *s = next;
        Ok(())
    }

    /// mediasoup's `worker.createWebRtcServer({ listenInfos, appData })`.
    pub async fn create_webrtc_server(&self, options: WebRtcServerOptions) -> Result<WebRtcServer> {
        if self.closed() {
            return Err(Error::invalid_state("Worker closed"));
        }
        let server = WebRtcServer::create(self, options).await?;
        let mut servers = self.inner.webrtc_servers.lock().expect("servers lock");
        servers.retain(|s| !s.closed());
        servers.push(server.clone());
        Ok(server)
    }

    /// The worker's id (a UUID; mediasoup's worker has only a pid).
    pub fn id(&self) -> &str {
        &self.inner.shared.uuid
    }

    pub fn dump(&self) -> Value {
        let routers = self.inner.routers.lock().expect("routers lock");
        let servers = self.inner.webrtc_servers.lock().expect("servers lock");
        json!({
            "pid": self.inner.pid,
            "webRtcServerIds": servers.iter().filter(|s| !s.closed()).map(|s| s.id().to_owned()).collect::<Vec<_>>(),
            "routerIds": routers.iter().filter(|r| !r.closed()).map(|r| r.id().to_owned()).collect::<Vec<_>>(),
        })
    }

    /// Close the worker and, with `workerclose`, all its routers.
    pub fn close(&self) {
        if !self.inner.shared.mark_closed() {
            return;
        }
        let routers = std::mem::take(&mut *self.inner.routers.lock().expect("routers lock"));
        for r in routers {
            r.close_with(Some(CloseReason::WorkerClosed));
        }
        let servers = std::mem::take(&mut *self.inner.webrtc_servers.lock().expect("servers lock"));
        for s in servers {
            s.close_with_worker();
        }
    }

    /// Observer `close`.
    pub fn on_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@close", Box::new(move |_: &EventArg<'_>| f()))
    }
}
