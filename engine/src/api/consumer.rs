//! Consumer: one producer's media leaving a router through a transport.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::command::{Command, Response};
use super::dispatch::{EventArg, HandlerId, ObjectShared};
use super::engine::EngineInner;
use super::producer::{now_ms, ssrc_from, ProducerEntry, ProducerType};
use super::transport::Transport;
use crate::core::{ConsumerScore, ConsumerSnapshot, ConsumerSpec, MirrorOf, ObjectId, Snapshot};
use crate::error::{Error, Result};
use crate::ortc;
use crate::rtp_parameters::{MediaKind, RtpCapabilities, RtpParameters};

/// mediasoup's `ConsumerOptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerOptions {
    pub producer_id: String,
    pub rtp_capabilities: RtpCapabilities,
    #[serde(default)]
    pub paused: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_layers: Option<Value>,
    #[serde(default)]
    pub ignore_dtx: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_rtx: Option<bool>,
    #[serde(default)]
    pub pipe: bool,
    #[serde(default)]
    pub app_data: Value,
}

impl ConsumerOptions {
    pub fn new(producer_id: &str, rtp_capabilities: RtpCapabilities) -> Self {
        ConsumerOptions {
            producer_id: producer_id.to_owned(),
            rtp_capabilities,
            paused: false,
            mid: None,
            preferred_layers: None,
            ignore_dtx: false,
            enable_rtx: None,
            pipe: false,
            app_data: Value::Object(Default::default()),
        }
    }
}

/// `'simple' | 'simulcast' | 'svc' | 'pipe'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsumerType {
    Simple,
    Simulcast,
    Svc,
    Pipe,
}

pub(crate) struct ConsumerInner {
    pub(crate) engine: Arc<EngineInner>,
    pub(crate) id: String,
    pub(crate) oid: ObjectId,
    pub(crate) shard: usize,
    pub(crate) producer_id: String,
    pub(crate) kind: MediaKind,
    pub(crate) r#type: ConsumerType,
    pub(crate) rtp_parameters: RtpParameters,
    pub(crate) shared: Arc<ObjectShared>,
    pub(crate) app_data: Value,
}

/// mediasoup's Consumer (simple).
#[derive(Clone)]
pub struct Consumer {
    pub(crate) inner: Arc<ConsumerInner>,
}

/// Make sure shard `shard` holds a mirror of `producer` fed by the producer's shard: the router
/// spans to `shard`. Both steps are idempotent on the shards, so each consume on a non-home shard
/// runs them (two short control round trips) and no cache can go stale: a mirror left without
/// consumers is torn down by its shard after `core::MIRROR_IDLE`, and the next consume recreates it.
/// The mirror's creation (or refresh) is queued on `shard` ahead of the consume itself.
pub(crate) async fn ensure_mirror(
    engine: &Arc<EngineInner>,
    producer: &ProducerEntry,
    router: ObjectId,
    shard: usize,
) -> Result<()> {
    let mut spec = producer.spec.clone();
    spec.paused = producer.shared.paused.load(Ordering::Acquire);
    engine
        .request(
            shard,
            Command::CreateMirror {
                router,
                producer: producer.oid,
                origin: producer.shard,
                mirror_of: MirrorOf::Producer(producer.oid),
                spec: Box::new(spec),
            },
        )
        .await?;
    engine
        .request(producer.shard, Command::AddSubscriber { producer: producer.oid, shard, mirror: producer.oid })
        .await?;
    Ok(())
}

impl Consumer {
    pub(crate) async fn create(transport: &Transport, options: ConsumerOptions) -> Result<Consumer> {
        transport.check_open()?;
        let engine = transport.inner.engine.clone();
        let producer = {
            let producers = engine.producers.lock().expect("producers lock");
            match producers.get(&(transport.inner.router.oid, options.producer_id.clone())) {
                Some(p) => p.clone(),
                None if producers.keys().any(|(_, id)| *id == options.producer_id) => {
                    return Err(Error::unsupported(
                        "the producer is in another router: use router.pipeToRouter() first",
                    ));
                }
                None => return Err(Error::other(format!("Producer with id \"{}\" not found", options.producer_id))),
            }
        };
        if producer.r#type != ProducerType::Simple {
            return Err(Error::unsupported("simulcast and SVC consumers are not supported yet"));
        }
        let mut caps = options.rtp_capabilities.clone();
        ortc::validate_rtp_capabilities(&mut caps)?;
        let uuid = uuid::Uuid::new_v4();
        let enable_rtx = options.enable_rtx.unwrap_or(true);
        let mut rtp_parameters = ortc::get_consumer_rtp_parameters(
            &producer.consumable_rtp_parameters,
            &caps,
            options.pipe,
            enable_rtx,
            ssrc_from(&uuid, 3),
            ssrc_from(&uuid, 11),
        )?;
        if !options.pipe {
            rtp_parameters.mid = Some(options.mid.clone().unwrap_or_else(|| transport.next_mid()));
        }
        if producer.shard != transport.inner.shard {
            ensure_mirror(&engine, &producer, transport.inner.router.oid, transport.inner.shard).await?;
        }
        let oid = engine.alloc_id();
        let spec =
            ConsumerSpec { producer: producer.oid, rtp_parameters: rtp_parameters.clone(), paused: options.paused };
        let id = uuid.to_string();
        let shared = ObjectShared::new(oid, id.clone(), options.paused);
        shared.producer_paused.store(producer.shared.paused.load(Ordering::Acquire), Ordering::Release);
        *shared.consumer_score.lock().expect("score lock") =
            ConsumerScore::starting(&producer.shared.producer_score.lock().expect("score lock"));
        // Registered before the command so that no event of the new consumer is missed.
        engine.registry.insert(&shared);
        match engine
            .request(
                transport.inner.shard,
                Command::Consume { transport: transport.inner.oid, id: oid, spec: Box::new(spec) },
            )
            .await
        {
            // The producer may have paused or resumed since we read it above.
            Ok(Response::Snapshot(Snapshot::Consumer(c))) => {
                shared.producer_paused.store(c.producer_paused, Ordering::Release)
            }
            Ok(_) => {}
            Err(e) => {
                engine.registry.remove(oid);
                return Err(e);
            }
        }
        Ok(Consumer {
            inner: Arc::new(ConsumerInner {
                engine,
                id,
                oid,
                shard: transport.inner.shard,
                producer_id: options.producer_id,
                kind: producer.kind,
                r#type: if options.pipe { ConsumerType::Pipe } else { ConsumerType::Simple },
                rtp_parameters,
                shared,
                app_data: options.app_data,
            }),
        })
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }
    pub fn producer_id(&self) -> &str {
        &self.inner.producer_id
    }
    pub fn kind(&self) -> MediaKind {
        self.inner.kind
    }
    /// `'simple'`, or `'pipe'` for the consumer side of pipeToRouter.
    pub fn r#type(&self) -> ConsumerType {
        self.inner.r#type
    }
    pub fn rtp_parameters(&self) -> &RtpParameters {
        &self.inner.rtp_parameters
    }
    pub fn app_data(&self) -> &Value {
        &self.inner.app_data
    }
    pub fn closed(&self) -> bool {
        self.inner.shared.is_closed()
    }
    pub fn paused(&self) -> bool {
        self.inner.shared.paused.load(Ordering::Acquire)
    }
    pub fn producer_paused(&self) -> bool {
        self.inner.shared.producer_paused.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        self.inner.shared.check_open("Consumer")
    }

    pub async fn pause(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::PauseConsumer { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(true);
        Ok(())
    }

    /// Resume; a video consumer asks its producer for a key frame and waits for it.
    pub async fn resume(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::ResumeConsumer { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(false);
        Ok(())
    }

    /// mediasoup's `consumer.requestKeyFrame()`.
    pub async fn request_key_frame(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::RequestKeyFrame { id: self.inner.oid }).await?;
        Ok(())
    }

    async fn snapshot(&self) -> Result<ConsumerSnapshot> {
        self.check_open()?;
        match self.inner.engine.request(self.inner.shard, Command::Snapshot { id: self.inner.oid }).await? {
            Response::Snapshot(Snapshot::Consumer(c)) => Ok(c),
            _ => Err(Error::other("unexpected reply")),
        }
    }

    /// mediasoup's `consumer.dump()`.
    pub async fn dump(&self) -> Result<Value> {
        let c = self.snapshot().await?;
        Ok(json!({
            "id": self.inner.id,
            "producerId": self.inner.producer_id,
            "kind": self.inner.kind,
            "type": self.inner.r#type,
            "rtpParameters": self.inner.rtp_parameters,
            "supportedCodecPayloadTypes": self.inner.rtp_parameters.codecs.iter().map(|c| c.payload_type).collect::<Vec<_>>(),
            "traceEventTypes": [],
            "paused": c.paused,
            "producerPaused": c.producer_paused,
            "priority": 1,
        }))
    }

    /// mediasoup's `consumer.getStats()`: the `outbound-rtp` entry.
    pub async fn get_stats(&self) -> Result<Value> {
        let c = self.snapshot().await?;
        let mime = self.inner.rtp_parameters.codecs.first().map(|c| c.mime_type.clone()).unwrap_or_default();
        Ok(json!([{
            "type": "outbound-rtp",
            "timestamp": now_ms(),
            "ssrc": c.ssrc,
            "rtxSsrc": c.rtx_ssrc,
            "kind": self.inner.kind,
            "mimeType": mime,
            "fractionLost": c.fraction_lost,
            "packetsRetransmitted": c.retransmitted,
            "nackCount": c.nacks_in,
            "pliCount": c.plis_in,
            "firCount": c.firs_in,
            "packetCount": c.packets,
            "byteCount": c.bytes,
            "roundTripTime": c.rtt_ms,
            "score": c.score,
        }]))
    }

    pub fn close(&self) {
        if !self.inner.shared.mark_closed() {
            return;
        }
        self.inner.engine.registry.remove(self.inner.oid);
        self.inner.engine.tell(self.inner.shard, Command::CloseConsumer { id: self.inner.oid });
    }

    /// mediasoup's `consumer.score`: its own score (from its receiver's reports) and its
    /// producer's, as the last `score` event told them.
    pub fn score(&self) -> crate::core::ConsumerScore {
        self.inner.shared.consumer_score.lock().expect("score lock").clone()
    }

    /// `consumer.on('score')`: its score or its producer's changed.
    pub fn on_score(&self, f: impl Fn(&crate::core::ConsumerScore) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on(
            "score",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::ConsumerScore(s) = arg {
                    f(s)
                }
            }),
        )
    }

    /// `consumer.on('transportclose')`.
    pub fn on_transport_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("transportclose", Box::new(move |_: &EventArg<'_>| f()))
    }
    /// `consumer.on('producerclose')`.
    pub fn on_producer_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("producerclose", Box::new(move |_: &EventArg<'_>| f()))
    }
    /// `consumer.on('producerpause')`.
    pub fn on_producer_pause(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("producerpause", Box::new(move |_: &EventArg<'_>| f()))
    }
    /// `consumer.on('producerresume')`.
    pub fn on_producer_resume(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("producerresume", Box::new(move |_: &EventArg<'_>| f()))
    }
    /// `consumer.on('rtp')` for consumers on a DirectTransport.
    pub fn on_rtp(&self, f: impl Fn(&[u8]) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on(
            "rtp",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::Bytes(b) = arg {
                    f(b);
                }
            }),
        )
    }
    /// Observer `close`.
    pub fn on_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@close", Box::new(move |_: &EventArg<'_>| f()))
    }
}
