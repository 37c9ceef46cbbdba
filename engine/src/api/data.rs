//! DataProducer and DataConsumer: messages through a router (mediasoup's data channels).
//!
//! What works: data producers and data consumers of type `direct`, on DirectTransports, in one
//! router across every shard it spans, and between routers with `pipeDataToRouter`. Messages
//! keep mediasoup's payload protocol ids (51 text, 53 binary, 56/57 empty), subchannels and
//! required subchannel, pause and resume (with `dataproducerpause` / `dataproducerresume`), and
//! close cascades (`dataproducerclose`, `transportclose`). Not yet: SCTP, so no data producers or
//! consumers on WebRtcTransports, PlainTransports or PipeTransports (`UnsupportedError`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::command::{Command, Response};
use super::dispatch::{EventArg, HandlerId, ObjectShared};
use super::engine::EngineInner;
use super::producer::now_ms;
use super::router::Router;
use super::transport::{Transport, TransportVariant};
use crate::core::{
    canonical_subchannels, DataConsumerSnapshot, DataMessage, DataProducerSnapshot, MirrorOf, ObjectId, Snapshot,
};
use crate::error::{Error, Result};

/// SCTP payload protocol id of a text message.
pub const PPID_STRING: u32 = 51;
/// SCTP payload protocol id of a binary message.
pub const PPID_BINARY: u32 = 53;
/// SCTP payload protocol id of an empty text message (sent as one zero byte, as mediasoup does).
pub const PPID_STRING_EMPTY: u32 = 56;
/// SCTP payload protocol id of an empty binary message (sent as one zero byte).
pub const PPID_BINARY_EMPTY: u32 = 57;

/// mediasoup's `SctpStreamParameters`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SctpStreamParameters {
    pub stream_id: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packet_life_time: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retransmits: Option<u16>,
}

/// `'sctp' | 'direct'`, of data producers and data consumers alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataType {
    Sctp,
    Direct,
}

/// mediasoup's `DataProducerOptions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataProducerOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Required on SCTP transports; ignored on a DirectTransport (as mediasoup does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sctp_stream_parameters: Option<SctpStreamParameters>,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub app_data: Value,
}

/// mediasoup's `DataConsumerOptions`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataConsumerOptions {
    pub data_producer_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_packet_life_time: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retransmits: Option<u16>,
    #[serde(default)]
    pub paused: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subchannels: Option<Vec<u16>>,
    #[serde(default)]
    pub app_data: Value,
}

impl DataConsumerOptions {
    pub fn new(data_producer_id: &str) -> Self {
        DataConsumerOptions { data_producer_id: data_producer_id.to_owned(), ..Default::default() }
    }
}

/// The optional arguments of mediasoup's `dataProducer.send(message, ppid, subchannels,
/// requiredSubchannel)`.
#[derive(Debug, Clone, Default)]
pub struct DataSendOptions {
    /// Default: 51 for text, 53 for binary (56 / 57 when empty).
    pub ppid: Option<u32>,
    pub subchannels: Vec<u16>,
    pub required_subchannel: Option<u16>,
}

/// What the engine remembers of a data producer for consumeData.
pub(crate) struct DataProducerEntry {
    pub oid: ObjectId,
    pub shard: usize,
    pub label: String,
    pub protocol: String,
    pub shared: Arc<ObjectShared>,
}

struct DataProducerInner {
    engine: Arc<EngineInner>,
    router: ObjectId,
    id: String,
    oid: ObjectId,
    shard: usize,
    /// Max message size of its DirectTransport; `None`: not on a DirectTransport (no `send`).
    direct_max: Option<usize>,
    label: String,
    protocol: String,
    shared: Arc<ObjectShared>,
    app_data: Value,
}

/// mediasoup's DataProducer.
#[derive(Clone)]
pub struct DataProducer {
    inner: Arc<DataProducerInner>,
}

struct DataConsumerInner {
    engine: Arc<EngineInner>,
    id: String,
    oid: ObjectId,
    shard: usize,
    data_producer_id: String,
    label: String,
    protocol: String,
    subchannels: Mutex<Vec<u16>>,
    buffered_amount_low_threshold: Mutex<u32>,
    shared: Arc<ObjectShared>,
    app_data: Value,
}

/// mediasoup's DataConsumer.
#[derive(Clone)]
pub struct DataConsumer {
    inner: Arc<DataConsumerInner>,
}

fn parse_id(id: &Option<String>, what: &str) -> Result<String> {
    match id {
        Some(id) => uuid::Uuid::parse_str(id)
            .map(|u| u.to_string())
            .map_err(|_| Error::type_error(format!("invalid {what} id '{id}'"))),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

fn no_sctp(what: &str) -> Error {
    Error::unsupported(format!(
        "{what} on this transport needs SCTP, which is not supported yet: use a DirectTransport"
    ))
}

struct DataProducerRegistration {
    router: ObjectId,
    shard: usize,
    id: String,
    oid: ObjectId,
    direct_max: Option<usize>,
    label: String,
    protocol: String,
    app_data: Value,
}

impl DataProducer {
    pub(crate) async fn create(transport: &Transport, options: DataProducerOptions) -> Result<DataProducer> {
        transport.check_open()?;
        let TransportVariant::Direct { options: direct } = &transport.inner.variant else {
            return Err(no_sctp("transport.produceData()"));
        };
        let engine = transport.inner.engine.clone();
        let router = transport.inner.router.oid;
        let id = parse_id(&options.id, "data producer")?;
        if engine.data_producers.lock().expect("data producers lock").contains_key(&(router, id.clone())) {
            return Err(Error::type_error(format!("a DataProducer with same id \"{id}\" already exists")));
        }
        let oid = engine.alloc_id();
        let shared = ObjectShared::new(oid, id.clone(), options.paused);
        engine.registry.insert(&shared);
        let shard = transport.inner.shard;
        let cmd = Command::ProduceData { transport: transport.inner.oid, id: oid, paused: options.paused };
        if let Err(e) = engine.request(shard, cmd).await {
            engine.registry.remove(oid);
            return Err(e);
        }
        Ok(DataProducer::register(
            &engine,
            shared,
            DataProducerRegistration {
                router,
                shard,
                id,
                oid,
                direct_max: Some(direct.max_message_size as usize),
                label: options.label,
                protocol: options.protocol,
                app_data: options.app_data,
            },
        ))
    }

    fn register(engine: &Arc<EngineInner>, shared: Arc<ObjectShared>, r: DataProducerRegistration) -> DataProducer {
        let (eng, key) = (Arc::downgrade(engine), (r.router, r.id.clone()));
        shared.on(
            "@close",
            Box::new(move |_: &EventArg<'_>| {
                if let Some(e) = eng.upgrade() {
                    e.data_producers.lock().expect("data producers lock").remove(&key);
                }
            }),
        );
        engine.data_producers.lock().expect("data producers lock").insert(
            (r.router, r.id.clone()),
            Arc::new(DataProducerEntry {
                oid: r.oid,
                shard: r.shard,
                label: r.label.clone(),
                protocol: r.protocol.clone(),
                shared: shared.clone(),
            }),
        );
        if shared.is_closed() {
            engine.data_producers.lock().expect("data producers lock").remove(&(r.router, r.id.clone()));
        }
        DataProducer {
            inner: Arc::new(DataProducerInner {
                engine: engine.clone(),
                router: r.router,
                id: r.id,
                oid: r.oid,
                shard: r.shard,
                direct_max: r.direct_max,
                label: r.label,
                protocol: r.protocol,
                shared,
                app_data: r.app_data,
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }
    pub fn r#type(&self) -> DataType {
        DataType::Direct
    }
    /// `None` for `direct` data producers.
    pub fn sctp_stream_parameters(&self) -> Option<&SctpStreamParameters> {
        None
    }
    pub fn label(&self) -> &str {
        &self.inner.label
    }
    pub fn protocol(&self) -> &str {
        &self.inner.protocol
    }
    pub fn paused(&self) -> bool {
        self.inner.shared.paused.load(Ordering::Acquire)
    }
    pub fn closed(&self) -> bool {
        self.inner.shared.is_closed()
    }
    pub fn app_data(&self) -> &Value {
        &self.inner.app_data
    }

    fn check_open(&self) -> Result<()> {
        self.inner.shared.check_open("DataProducer")
    }

    /// mediasoup's `dataProducer.pause()`: its data consumers get `dataproducerpause` and no
    /// message goes through until `resume()`.
    pub async fn pause(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::PauseDataProducer { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(true);
        Ok(())
    }

    /// mediasoup's `dataProducer.resume()`.
    pub async fn resume(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::ResumeDataProducer { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(false);
        Ok(())
    }

    /// mediasoup's `dataProducer.send(buffer)`: a binary message (ppid 53).
    pub fn send(&self, message: &[u8]) -> Result<()> {
        self.send_with(message, false, DataSendOptions::default())
    }

    /// mediasoup's `dataProducer.send(string)`: a text message (ppid 51).
    pub fn send_text(&self, message: &str) -> Result<()> {
        self.send_with(message.as_bytes(), true, DataSendOptions::default())
    }

    /// mediasoup's `dataProducer.send(message, ppid, subchannels, requiredSubchannel)` (`text`:
    /// whether the message is a string, which picks the default ppid). DirectTransport only.
    pub fn send_with(&self, message: &[u8], text: bool, options: DataSendOptions) -> Result<()> {
        self.check_open()?;
        let Some(max) = self.inner.direct_max else {
            return Err(Error::invalid_state("send() is only for data producers on a DirectTransport"));
        };
        if message.len() > max {
            return Err(Error::type_error(format!(
                "message of {} bytes exceeds maxMessageSize ({max})",
                message.len()
            )));
        }
        let subchannels = canonical_subchannels(options.subchannels)?;
        // mediasoup sends an empty message as one zero byte with the "empty" ppid.
        let (ppid, payload): (u32, Arc<[u8]>) = match (message.is_empty(), text) {
            (true, true) => (options.ppid.unwrap_or(PPID_STRING_EMPTY), Arc::from(&[0u8][..])),
            (true, false) => (options.ppid.unwrap_or(PPID_BINARY_EMPTY), Arc::from(&[0u8][..])),
            (false, true) => (options.ppid.unwrap_or(PPID_STRING), Arc::from(message)),
            (false, false) => (options.ppid.unwrap_or(PPID_BINARY), Arc::from(message)),
        };
        let message = DataMessage { ppid, payload, subchannels, required_subchannel: options.required_subchannel };
        self.inner.engine.send_data(
            self.inner.shard,
            Command::DataSend { data_producer: self.inner.oid, message: Arc::new(message) },
        )
    }

    async fn snapshot(&self) -> Result<DataProducerSnapshot> {
        self.check_open()?;
        match self.inner.engine.request(self.inner.shard, Command::Snapshot { id: self.inner.oid }).await? {
            Response::Snapshot(Snapshot::DataProducer(p)) => Ok(p),
            _ => Err(Error::other("unexpected reply")),
        }
    }

    /// mediasoup's `dataProducer.dump()`.
    pub async fn dump(&self) -> Result<Value> {
        let p = self.snapshot().await?;
        Ok(json!({
            "id": self.inner.id,
            "type": DataType::Direct,
            "label": self.inner.label,
            "protocol": self.inner.protocol,
            "paused": p.paused,
        }))
    }

    /// mediasoup's `dataProducer.getStats()`.
    pub async fn get_stats(&self) -> Result<Value> {
        let p = self.snapshot().await?;
        Ok(json!([{
            "type": "data-producer",
            "timestamp": now_ms(),
            "label": self.inner.label,
            "protocol": self.inner.protocol,
            "messagesReceived": p.messages,
            "bytesReceived": p.bytes,
        }]))
    }

    /// Close the data producer: its data consumers close with `dataproducerclose`.
    pub fn close(&self) {
        if !self.inner.shared.mark_closed() {
            return;
        }
        let key = (self.inner.router, self.inner.id.clone());
        self.inner.engine.data_producers.lock().expect("data producers lock").remove(&key);
        self.inner.engine.registry.remove(self.inner.oid);
        self.inner.engine.tell(self.inner.shard, Command::CloseDataProducer { id: self.inner.oid });
    }

    /// `dataProducer.on('transportclose')`.
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
    /// Remove a handler.
    pub fn off(&self, id: HandlerId) {
        self.inner.shared.off(id)
    }
}

/// Make sure shard `shard` holds a data mirror of `producer` fed by the producer's shard.
/// Idempotent on both shards (see `consumer::ensure_mirror`).
async fn ensure_data_mirror(
    engine: &Arc<EngineInner>,
    producer: &DataProducerEntry,
    router: ObjectId,
    shard: usize,
) -> Result<()> {
    let paused = producer.shared.paused.load(Ordering::Acquire);
    engine
        .request(
            shard,
            Command::CreateDataMirror {
                router,
                data_producer: producer.oid,
                origin: producer.shard,
                mirror_of: MirrorOf::Producer(producer.oid),
                paused,
            },
        )
        .await?;
    engine
        .request(
            producer.shard,
            Command::AddDataSubscriber { data_producer: producer.oid, shard, mirror: producer.oid },
        )
        .await?;
    Ok(())
}

impl DataConsumer {
    pub(crate) async fn create(transport: &Transport, options: DataConsumerOptions) -> Result<DataConsumer> {
        transport.check_open()?;
        let engine = transport.inner.engine.clone();
        let router = transport.inner.router.oid;
        let producer = {
            let producers = engine.data_producers.lock().expect("data producers lock");
            match producers.get(&(router, options.data_producer_id.clone())) {
                Some(p) => p.clone(),
                None if producers.keys().any(|(_, id)| *id == options.data_producer_id) => {
                    return Err(Error::unsupported(
                        "the data producer is in another router: use router.pipeToRouter() first",
                    ));
                }
                None => {
                    return Err(Error::other(format!(
                        "DataProducer with id \"{}\" not found",
                        options.data_producer_id
                    )))
                }
            }
        };
        if !matches!(transport.inner.variant, TransportVariant::Direct { .. }) {
            return Err(no_sctp("transport.consumeData()"));
        }
        let subchannels = canonical_subchannels(options.subchannels.unwrap_or_default())?;
        let shard = transport.inner.shard;
        if producer.shard != shard {
            ensure_data_mirror(&engine, &producer, router, shard).await?;
        }
        let oid = engine.alloc_id();
        let id = uuid::Uuid::new_v4().to_string();
        let shared = ObjectShared::new(oid, id.clone(), options.paused);
        shared.producer_paused.store(producer.shared.paused.load(Ordering::Acquire), Ordering::Release);
        engine.registry.insert(&shared);
        let cmd = Command::ConsumeData {
            transport: transport.inner.oid,
            id: oid,
            data_producer: producer.oid,
            paused: options.paused,
            subchannels: subchannels.clone(),
        };
        match engine.request(shard, cmd).await {
            Ok(Response::Snapshot(Snapshot::DataConsumer(c))) => {
                shared.producer_paused.store(c.data_producer_paused, Ordering::Release)
            }
            Ok(_) => {}
            Err(e) => {
                engine.registry.remove(oid);
                return Err(e);
            }
        }
        Ok(DataConsumer::handle(
            engine,
            id,
            oid,
            shard,
            options.data_producer_id,
            &producer,
            subchannels,
            shared,
            options.app_data,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn handle(
        engine: Arc<EngineInner>,
        id: String,
        oid: ObjectId,
        shard: usize,
        data_producer_id: String,
        producer: &DataProducerEntry,
        subchannels: Vec<u16>,
        shared: Arc<ObjectShared>,
        app_data: Value,
    ) -> DataConsumer {
        DataConsumer {
            inner: Arc::new(DataConsumerInner {
                engine,
                id,
                oid,
                shard,
                data_producer_id,
                label: producer.label.clone(),
                protocol: producer.protocol.clone(),
                subchannels: Mutex::new(subchannels),
                buffered_amount_low_threshold: Mutex::new(0),
                shared,
                app_data,
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }
    pub fn data_producer_id(&self) -> &str {
        &self.inner.data_producer_id
    }
    pub fn r#type(&self) -> DataType {
        DataType::Direct
    }
    /// `None` for `direct` data consumers.
    pub fn sctp_stream_parameters(&self) -> Option<&SctpStreamParameters> {
        None
    }
    pub fn label(&self) -> &str {
        &self.inner.label
    }
    pub fn protocol(&self) -> &str {
        &self.inner.protocol
    }
    pub fn paused(&self) -> bool {
        self.inner.shared.paused.load(Ordering::Acquire)
    }
    pub fn data_producer_paused(&self) -> bool {
        self.inner.shared.producer_paused.load(Ordering::Acquire)
    }
    pub fn subchannels(&self) -> Vec<u16> {
        self.inner.subchannels.lock().expect("subchannels lock").clone()
    }
    pub fn closed(&self) -> bool {
        self.inner.shared.is_closed()
    }
    pub fn app_data(&self) -> &Value {
        &self.inner.app_data
    }

    fn check_open(&self) -> Result<()> {
        self.inner.shared.check_open("DataConsumer")
    }

    /// mediasoup's `dataConsumer.pause()`: no message reaches it until `resume()`.
    pub async fn pause(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::PauseDataConsumer { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(true);
        Ok(())
    }

    /// mediasoup's `dataConsumer.resume()`.
    pub async fn resume(&self) -> Result<()> {
        self.check_open()?;
        self.inner.engine.request(self.inner.shard, Command::ResumeDataConsumer { id: self.inner.oid }).await?;
        self.inner.shared.set_paused(false);
        Ok(())
    }

    /// mediasoup's `dataConsumer.setSubchannels(subchannels)`.
    pub async fn set_subchannels(&self, subchannels: Vec<u16>) -> Result<()> {
        self.check_open()?;
        let subchannels = canonical_subchannels(subchannels)?;
        let cmd = Command::SetDataConsumerSubchannels { id: self.inner.oid, subchannels: subchannels.clone() };
        self.inner.engine.request(self.inner.shard, cmd).await?;
        *self.inner.subchannels.lock().expect("subchannels lock") = subchannels;
        Ok(())
    }

    /// mediasoup's `dataConsumer.addSubchannel(subchannel)`.
    pub async fn add_subchannel(&self, subchannel: u16) -> Result<()> {
        let mut s = self.subchannels();
        s.push(subchannel);
        self.set_subchannels(s).await
    }

    /// mediasoup's `dataConsumer.removeSubchannel(subchannel)`.
    pub async fn remove_subchannel(&self, subchannel: u16) -> Result<()> {
        let mut s = self.subchannels();
        s.retain(|&x| x != subchannel);
        self.set_subchannels(s).await
    }

    /// mediasoup's `dataConsumer.getBufferedAmount()`: always 0 for `direct` data consumers,
    /// whose messages go to the application as they come.
    pub async fn get_buffered_amount(&self) -> Result<u32> {
        self.check_open()?;
        Ok(0)
    }

    /// mediasoup's `dataConsumer.setBufferedAmountLowThreshold(threshold)` (kept and dumped; a
    /// `direct` data consumer never buffers).
    pub async fn set_buffered_amount_low_threshold(&self, threshold: u32) -> Result<()> {
        self.check_open()?;
        *self.inner.buffered_amount_low_threshold.lock().expect("threshold lock") = threshold;
        Ok(())
    }

    async fn snapshot(&self) -> Result<DataConsumerSnapshot> {
        self.check_open()?;
        match self.inner.engine.request(self.inner.shard, Command::Snapshot { id: self.inner.oid }).await? {
            Response::Snapshot(Snapshot::DataConsumer(c)) => Ok(c),
            _ => Err(Error::other("unexpected reply")),
        }
    }

    /// mediasoup's `dataConsumer.dump()`.
    pub async fn dump(&self) -> Result<Value> {
        let c = self.snapshot().await?;
        Ok(json!({
            "id": self.inner.id,
            "dataProducerId": self.inner.data_producer_id,
            "type": DataType::Direct,
            "label": self.inner.label,
            "protocol": self.inner.protocol,
            "paused": c.paused,
            "dataProducerPaused": c.data_producer_paused,
            "subchannels": c.subchannels,
            "bufferedAmountLowThreshold": *self.inner.buffered_amount_low_threshold.lock().expect("threshold lock"),
        }))
    }

    /// mediasoup's `dataConsumer.getStats()`.
    pub async fn get_stats(&self) -> Result<Value> {
        let c = self.snapshot().await?;
        Ok(json!([{
            "type": "data-consumer",
            "timestamp": now_ms(),
            "label": self.inner.label,
            "protocol": self.inner.protocol,
            "messagesSent": c.messages,
            "bytesSent": c.bytes,
            "bufferedAmount": 0,
        }]))
    }

    /// Close the data consumer.
    pub fn close(&self) {
        if !self.inner.shared.mark_closed() {
            return;
        }
        self.inner.engine.registry.remove(self.inner.oid);
        self.inner.engine.tell(self.inner.shard, Command::CloseDataConsumer { id: self.inner.oid });
    }

    /// `dataConsumer.on('message')`: `(payload, ppid)`, for data consumers on a DirectTransport.
    pub fn on_message(&self, f: impl Fn(&[u8], u32) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on(
            "message",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::DataMessage { ppid, payload } = arg {
                    f(payload, *ppid)
                }
            }),
        )
    }
    /// `dataConsumer.on('dataproducerclose')`.
    pub fn on_data_producer_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("dataproducerclose", Box::new(move |_: &EventArg<'_>| f()))
    }
    /// `dataConsumer.on('dataproducerpause')`.
    pub fn on_data_producer_pause(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("dataproducerpause", Box::new(move |_: &EventArg<'_>| f()))
    }
    /// `dataConsumer.on('dataproducerresume')`.
    pub fn on_data_producer_resume(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("dataproducerresume", Box::new(move |_: &EventArg<'_>| f()))
    }
    /// `dataConsumer.on('transportclose')`.
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
    /// Remove a handler.
    pub fn off(&self, id: HandlerId) {
        self.inner.shared.off(id)
    }
}

/// mediasoup's `PipeToRouterOptions` with a `dataProducerId` (same-engine routers).
#[derive(Clone)]
pub struct PipeDataToRouterOptions {
    pub data_producer_id: String,
    pub router: Router,
    pub keep_id: bool,
}

impl PipeDataToRouterOptions {
    pub fn new(data_producer_id: &str, router: &Router) -> Self {
        PipeDataToRouterOptions { data_producer_id: data_producer_id.to_owned(), router: router.clone(), keep_id: true }
    }
}

/// mediasoup's `PipeToRouterResult` for a data producer.
pub struct PipeDataToRouterResult {
    pub pipe_data_consumer: DataConsumer,
    pub pipe_data_producer: DataProducer,
}

impl Router {
    /// mediasoup's `router.pipeToRouter({ dataProducerId, router, keepId })`: a pipe data consumer
    /// of the data producer in this router and a pipe data producer in `router`, linked both ways
    /// like media pipes (see `pipe.rs`): messages cross once, over the inter-shard path.
    pub async fn pipe_data_to_router(&self, options: PipeDataToRouterOptions) -> Result<PipeDataToRouterResult> {
        let target = &options.router;
        self.check_pipe_target(target)?;
        let engine = self.inner.engine.clone();
        let source = engine
            .data_producers
            .lock()
            .expect("data producers lock")
            .get(&(self.inner.oid, options.data_producer_id.clone()))
            .cloned()
            .ok_or_else(|| {
                Error::type_error(format!("no DataProducer found for id \"{}\"", options.data_producer_id))
            })?;
        let producer_id =
            if options.keep_id { options.data_producer_id.clone() } else { uuid::Uuid::new_v4().to_string() };
        let target_oid = target.inner.oid;
        if engine.data_producers.lock().expect("data producers lock").contains_key(&(target_oid, producer_id.clone())) {
            return Err(Error::type_error(format!("a DataProducer with same id \"{producer_id}\" already exists")));
        }
        let paused = source.shared.paused.load(Ordering::Acquire);
        let (consumer_oid, producer_oid) = (engine.alloc_id(), engine.alloc_id());
        let to = target.inner.shard;
        let producer_shared = ObjectShared::new(producer_oid, producer_id.clone(), paused);
        engine.registry.insert(&producer_shared);
        engine
            .request(
                to,
                Command::CreateDataMirror {
                    router: target_oid,
                    data_producer: producer_oid,
                    origin: source.shard,
                    mirror_of: MirrorOf::PipeConsumer(consumer_oid),
                    paused,
                },
            )
            .await
            .inspect_err(|_| engine.registry.remove(producer_oid))?;
        let consumer_id = uuid::Uuid::new_v4().to_string();
        let consumer_shared = ObjectShared::new(consumer_oid, consumer_id.clone(), false);
        consumer_shared.producer_paused.store(paused, Ordering::Release);
        engine.registry.insert(&consumer_shared);
        let linked = engine
            .request(
                source.shard,
                Command::CreatePipeDataConsumer {
                    router: self.inner.oid,
                    id: consumer_oid,
                    data_producer: source.oid,
                    shard: to,
                    mirror: producer_oid,
                },
            )
            .await;
        if let Err(e) = linked {
            engine.registry.remove(consumer_oid);
            engine.registry.remove(producer_oid);
            engine.tell(to, Command::CloseDataProducer { id: producer_oid });
            return Err(e);
        }
        let pipe_data_consumer = DataConsumer::handle(
            engine.clone(),
            consumer_id,
            consumer_oid,
            source.shard,
            options.data_producer_id.clone(),
            &source,
            Vec::new(),
            consumer_shared,
            Value::Object(Default::default()),
        );
        let pipe_data_producer = DataProducer::register(
            &engine,
            producer_shared,
            DataProducerRegistration {
                router: target_oid,
                shard: to,
                id: producer_id,
                oid: producer_oid,
                direct_max: None,
                label: source.label.clone(),
                protocol: source.protocol.clone(),
                app_data: Value::Object(Default::default()),
            },
        );
        Ok(PipeDataToRouterResult { pipe_data_consumer, pipe_data_producer })
    }
}

impl std::fmt::Debug for DataProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataProducer").field("id", &self.inner.id).field("label", &self.inner.label).finish()
    }
}

impl std::fmt::Debug for DataConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataConsumer")
            .field("id", &self.inner.id)
            .field("dataProducerId", &self.inner.data_producer_id)
            .finish()
    }
}

impl std::fmt::Debug for PipeDataToRouterResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipeDataToRouterResult")
            .field("pipe_data_consumer", &self.pipe_data_consumer)
            .field("pipe_data_producer", &self.pipe_data_producer)
            .finish()
    }
}
