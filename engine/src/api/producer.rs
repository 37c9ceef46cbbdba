//! Producer: media entering a router through a transport.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::command::{Command, Response};
use super::dispatch::{EventArg, HandlerId, ObjectShared};
use super::engine::EngineInner;
use super::transport::Transport;
use crate::core::{ObjectId, ProducerSnapshot, ProducerSpec, Snapshot};
use crate::error::{Error, Result};
use crate::ortc::{self, RtpMapping};
use crate::rtp_parameters::{MediaKind, RtpCapabilities, RtpParameters};

/// mediasoup's `ProducerOptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProducerOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub kind: MediaKind,
    pub rtp_parameters: RtpParameters,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub key_frame_request_delay: u32,
    #[serde(default)]
    pub app_data: Value,
}

impl ProducerOptions {
    pub fn new(kind: MediaKind, rtp_parameters: RtpParameters) -> Self {
        ProducerOptions {
            id: None,
            kind,
            rtp_parameters,
            paused: false,
            key_frame_request_delay: 0,
            app_data: Value::Object(Default::default()),
        }
    }
}

/// `'simple' | 'simulcast' | 'svc'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProducerType {
    Simple,
    Simulcast,
    Svc,
}

/// What the engine remembers of a producer for consume/canConsume (the ORTC side).
pub(crate) struct ProducerEntry {
    pub oid: ObjectId,
    /// The shard the producer lives on.
    pub shard: usize,
    /// What a mirror on another shard is created from.
    pub spec: ProducerSpec,
    pub kind: MediaKind,
    pub r#type: ProducerType,
    pub consumable_rtp_parameters: RtpParameters,
    pub shared: Arc<ObjectShared>,
}

/// Everything a producer handle is made of, once its shard has created it.
pub(crate) struct Registration {
    pub router: ObjectId,
    pub shard: usize,
    pub transport_id: String,
    pub direct: bool,
    pub id: String,
    pub oid: ObjectId,
    pub kind: MediaKind,
    pub r#type: ProducerType,
    pub spec: ProducerSpec,
    pub rtp_mapping: RtpMapping,
    pub consumable_rtp_parameters: RtpParameters,
    pub app_data: Value,
}

struct ProducerInner {
    engine: Arc<EngineInner>,
    router: ObjectId,
    transport_id: String,
    direct: bool,
    id: String,
    oid: ObjectId,
    shard: usize,
    kind: MediaKind,
    r#type: ProducerType,
    rtp_parameters: RtpParameters,
    rtp_mapping: RtpMapping,
    consumable_rtp_parameters: RtpParameters,
    shared: Arc<ObjectShared>,
    app_data: Value,
}

/// mediasoup's Producer.
#[derive(Clone)]
pub struct Producer {
    inner: Arc<ProducerInner>,
}

/// A small deterministic mix for SSRCs derived from a UUID (no clock, no syscall).
pub(crate) fn ssrc_from(uuid: &uuid::Uuid, salt: u32) -> u32 {
    let b = uuid.as_bytes();
    let v = u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        ^ u32::from_be_bytes([b[12], b[13], b[14], b[15]]).rotate_left(salt);
    // Keep clear of 0 and of the top of the range like mediasoup's 100000000..999999999.
    100_000_000 + v % 900_000_000
}

impl Producer {
    pub(crate) async fn create(transport: &Transport, options: ProducerOptions) -> Result<Producer> {
        transport.check_open()?;
        let engine = transport.inner.engine.clone();
        let uuid = match &options.id {
            Some(id) => {
                uuid::Uuid::parse_str(id).map_err(|_| Error::type_error(format!("invalid producer id '{id}'")))?
            }
            None => uuid::Uuid::new_v4(),
        };
        let id = uuid.to_string();
        if engine.producers.lock().expect("producers lock").contains_key(&(transport.inner.router.oid, id.clone())) {
            return Err(Error::type_error(format!("a Producer with same id \"{id}\" already exists")));
        }
        let mut rtp_parameters = options.rtp_parameters.clone();
        ortc::validate_rtp_parameters(&mut rtp_parameters)?;
        let encodings = rtp_parameters.encodings.as_deref().unwrap_or_default();
        if encodings.is_empty() {
            return Err(Error::type_error("rtpParameters.encodings must have at least one encoding"));
        }
        if encodings.iter().any(|e| e.ssrc.is_none() && e.rid.is_none()) {
            return Err(Error::type_error("each encoding needs an ssrc or a rid"));
        }
        let r#type = if encodings.len() > 1 {
            ProducerType::Simulcast
        } else if encodings[0]
            .scalability_mode
            .as_deref()
            .map(|m| ortc::parse_scalability_mode(Some(m)).spatial_layers > 1)
            .unwrap_or(false)
        {
            ProducerType::Svc
        } else {
            ProducerType::Simple
        };
        let caps = &transport.inner.router.rtp_capabilities;
        let rtp_mapping = ortc::get_producer_rtp_parameters_mapping(&mut rtp_parameters, caps, ssrc_from(&uuid, 7))?;
        let consumable_rtp_parameters =
            ortc::get_consumable_rtp_parameters(options.kind, &rtp_parameters, caps, &rtp_mapping)?;
        let ext_map = router_ext_map(&rtp_parameters, caps, options.kind);
        let oid = engine.alloc_id();
        let spec = ProducerSpec {
            kind: options.kind,
            rtp_parameters: rtp_parameters.clone(),
            rtp_mapping: rtp_mapping.clone(),
            ext_map,
            paused: options.paused,
            key_frame_request_delay_ms: options.key_frame_request_delay,
        };
        // Known to the dispatcher before the shard creates it, so no close event can miss it.
        let shared = ObjectShared::new(oid, id.clone(), options.paused);
        engine.registry.insert(&shared);
        if let Err(e) = engine
            .request(
                transport.inner.shard,
                Command::Produce { transport: transport.inner.oid, id: oid, spec: Box::new(spec.clone()) },
            )
            .await
        {
            engine.registry.remove(oid);
            return Err(e);
        }
        Ok(Producer::register(
            &engine,
            shared,
            Registration {
                router: transport.inner.router.oid,
                shard: transport.inner.shard,
                transport_id: transport.id().to_owned(),
                direct: matches!(transport.inner.variant, super::transport::TransportVariant::Direct { .. }),
                id,
                oid,
                kind: options.kind,
                r#type,
                spec,
                rtp_mapping,
                consumable_rtp_parameters,
                app_data: options.app_data,
            },
        ))
    }

    /// Make the handle and the engine's ORTC entry of a producer the shard has created; `shared`
    /// is already in the registry.
    pub(crate) fn register(engine: &Arc<EngineInner>, shared: Arc<ObjectShared>, r: Registration) -> Producer {
        // Forget the ORTC entry once the producer closes, whichever way.
        let (eng, key) = (Arc::downgrade(engine), (r.router, r.id.clone()));
        shared.on(
            "@close",
            Box::new(move |_: &EventArg<'_>| {
                if let Some(e) = eng.upgrade() {
                    e.producers.lock().expect("producers lock").remove(&key);
                }
            }),
        );
        engine.producers.lock().expect("producers lock").insert(
            (r.router, r.id.clone()),
            Arc::new(ProducerEntry {
                oid: r.oid,
                shard: r.shard,
                spec: r.spec.clone(),
                kind: r.kind,
                r#type: r.r#type,
                consumable_rtp_parameters: r.consumable_rtp_parameters.clone(),
                shared: shared.clone(),
            }),
        );
        // Closed (by a cascade) before the handler above was in place: forget it now.
        if shared.is_closed() {
            engine.producers.lock().expect("producers lock").remove(&(r.router, r.id.clone()));
        }
        Producer {
            inner: Arc::new(ProducerInner {
                engine: engine.clone(),
                router: r.router,
                transport_id: r.transport_id,
                direct: r.direct,
                id: r.id,
                oid: r.oid,
                shard: r.shard,
                kind: r.kind,
                r#type: r.r#type,
                rtp_parameters: r.spec.rtp_parameters,
                rtp_mapping: r.rtp_mapping,
                consumable_rtp_parameters: r.consumable_rtp_parameters,
                shared,
                app_data: r.app_data,
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }
    pub fn kind(&self) -> MediaKind {
        self.inner.kind
    }
    pub fn r#type(&self) -> ProducerType {
        self.inner.r#type
    }
    pub fn rtp_parameters(&self) -> &RtpParameters {
        &self.inner.rtp_parameters
    }
    pub fn consumable_rtp_parameters(&self) -> &RtpParameters {
        &self.inner.consumable_rtp_parameters
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
    pub fn transport_id(&self) -> &str {
        &self.inner.transport_id
    }

    fn check_open(&self) -> Result<()> {
        self.inner.shared.check_open("Producer")
    }

    /// mediasoup's `producer.pause()`: consumers get `producerpause`.
    pub async fn pause(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::PauseProducer { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(true);
        Ok(())
    }

    /// mediasoup's `producer.resume()`: consumers get `producerresume`.
    pub async fn resume(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::ResumeProducer { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(false);
        Ok(())
    }

    /// DirectTransport producers: mediasoup's `producer.send(rtpPacket)`.
    pub fn send(&self, rtp_packet: &[u8]) -> Result<()> {
        self.check_open()?;
        if !self.inner.direct {
            return Err(Error::invalid_state("send() is only for producers on a DirectTransport"));
        }
        if rtp_packet.len() < 12 || rtp_packet.len() > crate::core::SCRATCH_BYTES {
            return Err(Error::type_error("invalid RTP packet size"));
        }
        self.inner
            .engine
            .send_data(self.inner.shard, Command::DirectRtp { producer: self.inner.oid, packet: rtp_packet.to_vec() })
    }

    async fn snapshot(&self) -> Result<ProducerSnapshot> {
        self.check_open()?;
        match self.inner.engine.request(self.inner.shard, Command::Snapshot { id: self.inner.oid }).await? {
            Response::Snapshot(Snapshot::Producer(p)) => Ok(p),
            _ => Err(Error::other("unexpected reply")),
        }
    }

    /// mediasoup's `producer.dump()`.
    pub async fn dump(&self) -> Result<Value> {
        let p = self.snapshot().await?;
        Ok(json!({
            "id": self.inner.id,
            "kind": self.inner.kind,
            "type": self.inner.r#type,
            "rtpParameters": self.inner.rtp_parameters,
            "rtpMapping": self.inner.rtp_mapping,
            "rtpStreams": p.streams.iter().map(|s| json!({
                "params": { "ssrc": s.ssrc, "rtxSsrc": s.rtx_ssrc, "rid": s.rid, "mappedSsrc": s.mapped_ssrc },
            })).collect::<Vec<_>>(),
            "traceEventTypes": [],
            "paused": p.paused,
        }))
    }

    /// mediasoup's `producer.getStats()`: one `inbound-rtp` entry per stream.
    pub async fn get_stats(&self) -> Result<Value> {
        let p = self.snapshot().await?;
        let mime = self.inner.rtp_parameters.codecs.first().map(|c| c.mime_type.clone()).unwrap_or_default();
        Ok(Value::Array(
            p.streams
                .iter()
                .map(|s| {
                    json!({
                        "type": "inbound-rtp",
                        "timestamp": now_ms(),
                        "ssrc": s.ssrc,
                        "rtxSsrc": s.rtx_ssrc,
                        "rid": s.rid,
                        "kind": self.inner.kind,
                        "mimeType": mime,
                        "packetsLost": s.packets_lost,
                        "packetsRepaired": s.packets_repaired,
                        "packetCount": s.packets_received,
                        "jitter": s.jitter,
                        "score": s.score,
                    })
                })
                .collect(),
        ))
    }

    /// Close the producer: its consumers close with `producerclose`.
    pub fn close(&self) {
        if !self.inner.shared.mark_closed() {
            return;
        }
        self.inner.engine.producers.lock().expect("producers lock").remove(&(self.inner.router, self.inner.id.clone()));
        self.inner.engine.registry.remove(self.inner.oid);
        self.inner.engine.tell(self.inner.shard, Command::CloseProducer { id: self.inner.oid });
    }

    /// mediasoup's `producer.score`: the score (0 to 10) of each stream that has an SSRC, as the
    /// last `score` event told it (empty before media arrived).
    pub fn score(&self) -> Vec<crate::core::ProducerStreamScore> {
        self.inner.shared.producer_score.lock().expect("score lock").clone()
    }

    /// `producer.on('score')`: a stream's score changed (scored once per RTCP interval).
    pub fn on_score(&self, f: impl Fn(&[crate::core::ProducerStreamScore]) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on(
            "score",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::ProducerScore(s) = arg {
                    f(s)
                }
            }),
        )
    }

    /// `producer.on('transportclose')`.
    pub fn on_transport_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("transportclose", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `close`.
    pub fn on_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@close", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `pause`.
    pub fn on_pause(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@pause", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `resume`.
    pub fn on_resume(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@resume", Box::new(move |_: &EventArg<'_>| f()))
    }
}

/// (producer header extension id, router header extension id) for each extension the router knows.
pub(crate) fn router_ext_map(params: &RtpParameters, caps: &RtpCapabilities, kind: MediaKind) -> Vec<(u8, u8)> {
    params
        .header_extensions
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter_map(|e| {
            caps.header_extensions
                .as_deref()
                .unwrap_or_default()
                .iter()
                .find(|c| c.uri == e.uri && c.kind == kind)
                .map(|c| (e.id, c.preferred_id))
        })
        .collect()
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}
