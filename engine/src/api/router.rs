//! Router: mediasoup's room. Its home shard is chosen by measured load; its transports go to the
//! home shard while the room fits there and to other shards past that (the router then spans
//! shards: see `core::span`). The application sees one Router either way.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::command::{Command, PlainListen, Response};
use super::dispatch::{EventArg, HandlerId, ObjectShared};
use super::engine::{EngineInner, Worker};
use super::transport::{
    DirectTransport, DirectTransportOptions, PlainTransport, PlainTransportOptions, Protocol, Transport,
    TransportVariant,
};
use crate::core::{CloseReason, ObjectId, Snapshot};
use crate::error::{Error, Result};
use crate::ortc;
use crate::rtp_parameters::{RtpCapabilities, RtpCodecCapability};

/// mediasoup's `RouterOptions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouterOptions {
    #[serde(default)]
    pub media_codecs: Vec<RtpCodecCapability>,
    #[serde(default)]
    pub app_data: Value,
}

pub(crate) struct RouterInner {
    pub(crate) engine: Arc<EngineInner>,
    pub(crate) worker: Worker,
    pub(crate) id: String,
    pub(crate) oid: ObjectId,
    /// Home shard (where the router was placed).
    pub(crate) shard: usize,
    /// Every shard the router exists on (home first).
    pub(crate) shards: Mutex<Vec<usize>>,
    pub(crate) rtp_capabilities: RtpCapabilities,
    pub(crate) shared: Arc<ObjectShared>,
    app_data: Value,
    transports: Mutex<Vec<Transport>>,
}

/// mediasoup's Router.
#[derive(Clone)]
pub struct Router {
    pub(crate) inner: Arc<RouterInner>,
}

impl Router {
    pub(crate) async fn create(worker: &Worker, options: RouterOptions) -> Result<Router> {
        let mut media_codecs = options.media_codecs;
        for codec in &mut media_codecs {
            ortc::validate_rtp_codec_capability(codec)?;
        }
        let rtp_capabilities = ortc::generate_router_rtp_capabilities(&media_codecs)?;
        let engine = worker.inner.engine.clone();
        let id = uuid::Uuid::new_v4().to_string();
        let oid = engine.alloc_id();
        let shard = engine.place(&id);
        engine.request(shard, Command::CreateRouter { id: oid }).await?;
        let shared = ObjectShared::new(oid, id.clone(), false);
        engine.registry.insert(&shared);
        Ok(Router {
            inner: Arc::new(RouterInner {
                engine,
                worker: worker.clone(),
                id,
                oid,
                shard,
                shards: Mutex::new(vec![shard]),
                rtp_capabilities,
                shared,
                app_data: options.app_data,
                transports: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The router's home shard.
    pub fn shard(&self) -> usize {
        self.inner.shard
    }

    /// Every shard the router has transports on (home first).
    pub fn shards(&self) -> Vec<usize> {
        self.inner.shards.lock().expect("shards lock").clone()
    }

    /// The shard for a new transport of this router (see `placement::place_transport`), with the
    /// router's part created there first when it is new.
    pub(crate) async fn transport_shard(&self) -> Result<usize> {
        let home = self.inner.shard;
        let room_at_home = {
            let ts = self.inner.transports.lock().expect("transports lock");
            ts.iter().filter(|t| !t.closed() && t.shard() == home).count() as u32
        };
        let shard = self.inner.engine.place_transport(&self.inner.id, home, room_at_home)?;
        if !self.inner.shards.lock().expect("shards lock").contains(&shard) {
            // Idempotent: two transports placed here at once both ask for it.
            self.inner.engine.request(shard, Command::EnsureRouter { id: self.inner.oid }).await?;
            let mut shards = self.inner.shards.lock().expect("shards lock");
            if !shards.contains(&shard) {
                shards.push(shard);
            }
        }
        Ok(shard)
    }

    pub fn closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    pub fn app_data(&self) -> &Value {
        &self.inner.app_data
    }

    pub fn rtp_capabilities(&self) -> &RtpCapabilities {
        &self.inner.rtp_capabilities
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        self.inner.shared.check_open("Router")
    }

    pub(crate) fn register_transport(&self, t: &Transport) {
        let mut ts = self.inner.transports.lock().expect("transports lock");
        ts.retain(|t| !t.closed());
        ts.push(t.clone());
    }

    /// mediasoup's `router.createPlainTransport(options)`.
    pub async fn create_plain_transport(&self, options: PlainTransportOptions) -> Result<PlainTransport> {
        self.check_open()?;
        let info = &options.listen_info;
        if info.protocol != Protocol::Udp {
            return Err(Error::type_error("PlainTransport only supports protocol 'udp'"));
        }
        let ip = info.ip.parse().map_err(|_| Error::type_error(format!("invalid listenInfo.ip '{}'", info.ip)))?;
        let settings = self.inner.worker.inner.settings.lock().expect("settings lock").clone();
        let port_range = match info.port_range {
            Some(r) => (r.min, r.max),
            None => (settings.rtc_min_port, settings.rtc_max_port),
        };
        let listen = PlainListen {
            ip,
            port: info.port.filter(|p| *p != 0),
            port_range,
            rtcp_mux: options.rtcp_mux,
            comedia: options.comedia,
        };
        let oid = self.inner.engine.alloc_id();
        let shard = self.transport_shard().await?;
        let bound = match self
            .inner
            .engine
            .request(shard, Command::CreatePlainTransport { router: self.inner.oid, id: oid, listen })
            .await?
        {
            Response::Plain(b) => b,
            _ => return Err(Error::other("unexpected reply")),
        };
        let t = Transport::new(self, oid, shard, options.app_data.clone(), TransportVariant::Plain { options, bound });
        self.register_transport(&t);
        Ok(PlainTransport { transport: t })
    }

    /// mediasoup's `router.createDirectTransport(options)`.
    pub async fn create_direct_transport(&self, options: DirectTransportOptions) -> Result<DirectTransport> {
        self.check_open()?;
        if options.max_message_size == 0 {
            return Err(Error::type_error("invalid maxMessageSize"));
        }
        let oid = self.inner.engine.alloc_id();
        let shard = self.transport_shard().await?;
        self.inner.engine.request(shard, Command::CreateDirectTransport { router: self.inner.oid, id: oid }).await?;
        let t = Transport::new(self, oid, shard, options.app_data.clone(), TransportVariant::Direct { options });
        self.register_transport(&t);
        Ok(DirectTransport { transport: t })
    }

    /// mediasoup's `router.createAudioLevelObserver(options)`.
    pub async fn create_audio_level_observer(
        &self,
        options: super::AudioLevelObserverOptions,
    ) -> Result<super::AudioLevelObserver> {
        super::AudioLevelObserver::create(self, options).await
    }

    /// mediasoup's `router.createActiveSpeakerObserver(options)`.
    pub async fn create_active_speaker_observer(
        &self,
        options: super::ActiveSpeakerObserverOptions,
    ) -> Result<super::ActiveSpeakerObserver> {
        super::ActiveSpeakerObserver::create(self, options).await
    }

    /// mediasoup's `router.canConsume({ producerId, rtpCapabilities })`.
    pub fn can_consume(&self, producer_id: &str, rtp_capabilities: &RtpCapabilities) -> bool {
        let producers = self.inner.engine.producers.lock().expect("producers lock");
        let Some(p) = producers.get(&(self.inner.oid, producer_id.to_owned())) else {
            tracing::error!(producer_id, "canConsume() | Producer not found");
            return false;
        };
        let mut caps = rtp_capabilities.clone();
        if ortc::validate_rtp_capabilities(&mut caps).is_err() {
            return false;
        }
        ortc::can_consume(&p.consumable_rtp_parameters, &caps).unwrap_or(false)
    }

    /// mediasoup's `router.dump()`, merged over the shards the router spans (plus `shards`).
    pub async fn dump(&self) -> Result<Value> {
        self.check_open()?;
        let mut transports = Vec::new();
        let mut fanout = Vec::new();
        let mut data_fanout = Vec::new();
        let (mut observers, mut producer_observers) = (Vec::new(), Vec::new());
        for shard in self.shards() {
            let snap = self.inner.engine.request(shard, Command::Snapshot { id: self.inner.oid }).await?;
            let Response::Snapshot(Snapshot::Router(r)) = snap else {
                return Err(Error::other("unexpected reply"));
            };
            transports.extend(r.transports);
            observers.extend(r.observers);
            producer_observers.extend(r.producer_observers);
            // Mirrors of producers (on other shards) appear under the producer's own id.
            for (list, part) in [(&mut fanout, r.fanout), (&mut data_fanout, r.data_fanout)] {
                for (p, cs) in part {
                    match list.iter_mut().find(|(q, _): &&mut (ObjectId, Vec<ObjectId>)| *q == p) {
                        Some((_, all)) => all.extend(cs),
                        None => list.push((p, cs)),
                    }
                }
            }
        }
        let registry = &self.inner.engine.registry;
        let name = |oid: &ObjectId| registry.uuid(*oid);
        Ok(json!({
            "id": self.inner.id,
            "shard": self.inner.shard,
            "shards": self.shards(),
            "transportIds": transports.iter().filter_map(&name).collect::<Vec<_>>(),
            "rtpObserverIds": observers.iter().filter_map(&name).collect::<Vec<_>>(),
            "mapProducerIdConsumerIds": fanout.iter().filter_map(|(p, cs)| Some(json!({
                "key": name(p)?,
                "values": cs.iter().filter_map(&name).collect::<Vec<_>>(),
            }))).collect::<Vec<_>>(),
            "mapConsumerIdProducerId": fanout.iter().flat_map(|(p, cs)| cs.iter().map(move |c| (c, p)))
                .filter_map(|(c, p)| Some(json!({ "key": name(c)?, "value": name(p)? }))).collect::<Vec<_>>(),
            "mapProducerIdObserverIds": producer_observers.iter().filter_map(|(p, os)| Some(json!({
                "key": name(p)?,
                "values": os.iter().filter_map(&name).collect::<Vec<_>>(),
            }))).collect::<Vec<_>>(),
            "mapDataProducerIdDataConsumerIds": data_fanout.iter().filter_map(|(p, cs)| Some(json!({
                "key": name(p)?,
                "values": cs.iter().filter_map(&name).collect::<Vec<_>>(),
            }))).collect::<Vec<_>>(),
            "mapDataConsumerIdDataProducerId": data_fanout.iter().flat_map(|(p, cs)| cs.iter().map(move |c| (c, p)))
                .filter_map(|(c, p)| Some(json!({ "key": name(c)?, "value": name(p)? }))).collect::<Vec<_>>(),
        }))
    }

    /// Close the router: its transports close with `routerclose`, cascading further.
    pub fn close(&self) {
        self.close_with(None);
    }

    pub(crate) fn close_with(&self, reason: Option<CloseReason>) {
        if !self.inner.shared.mark_closed_by(reason.map(CloseReason::event_name)) {
            return;
        }
        self.inner.engine.registry.remove(self.inner.oid);
        for shard in self.shards() {
            self.inner.engine.tell(shard, Command::CloseRouter { id: self.inner.oid, reason: None });
        }
        // Each transport holds its router: keeping them here would keep both (and the worker)
        // alive for ever. Their close events reach them through the registry.
        drop(std::mem::take(&mut *self.inner.transports.lock().expect("transports lock")));
    }

    /// `router.on('workerclose')`.
    pub fn on_worker_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("workerclose", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `close`.
    pub fn on_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@close", Box::new(move |_: &EventArg<'_>| f()))
    }
}
