//! Transports: the common part (produce, consume, close, stats) and the PlainTransport and
//! DirectTransport variants.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::command::{Command, PlainBound, Response};
use super::consumer::{Consumer, ConsumerOptions};
use super::dispatch::{EventArg, HandlerId, ObjectShared};
use super::engine::EngineInner;
use super::producer::{Producer, ProducerOptions};
use super::router::{Router, RouterInner};
use crate::core::{ObjectId, Snapshot, TransportSnapshot};
use crate::error::{Error, Result};

/// `'udp' | 'tcp'`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Udp,
    Tcp,
}

/// `{ min, max }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub min: u16,
    pub max: u16,
}

/// mediasoup's `TransportListenInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportListenInfo {
    pub protocol: Protocol,
    pub ip: String,
    #[serde(default, alias = "announcedIp", skip_serializing_if = "Option::is_none")]
    pub announced_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_range: Option<PortRange>,
}

impl TransportListenInfo {
    pub fn udp(ip: &str) -> Self {
        TransportListenInfo {
            protocol: Protocol::Udp,
            ip: ip.to_owned(),
            announced_address: None,
            port: None,
            port_range: None,
        }
    }
}

fn yes() -> bool {
    true
}

/// mediasoup's `PlainTransportOptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlainTransportOptions {
    pub listen_info: TransportListenInfo,
    #[serde(default = "yes")]
    pub rtcp_mux: bool,
    #[serde(default)]
    pub comedia: bool,
    #[serde(default)]
    pub enable_sctp: bool,
    #[serde(default)]
    pub enable_srtp: bool,
    #[serde(default)]
    pub app_data: Value,
}

impl PlainTransportOptions {
    pub fn new(listen_info: TransportListenInfo) -> Self {
        PlainTransportOptions {
            listen_info,
            rtcp_mux: true,
            comedia: false,
            enable_sctp: false,
            enable_srtp: false,
            app_data: Value::Object(Default::default()),
        }
    }
}

/// mediasoup's `DirectTransportOptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectTransportOptions {
    #[serde(default = "default_max_message_size")]
    pub max_message_size: u32,
    #[serde(default)]
    pub app_data: Value,
}

fn default_max_message_size() -> u32 {
    262_144
}

impl Default for DirectTransportOptions {
    fn default() -> Self {
        DirectTransportOptions {
            max_message_size: default_max_message_size(),
            app_data: Value::Object(Default::default()),
        }
    }
}

/// mediasoup's `TransportTuple`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransportTuple {
    pub local_address: String,
    pub local_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_port: Option<u16>,
    pub protocol: Protocol,
}

impl TransportTuple {
    /// A UDP tuple (PlainTransport's).
    fn new(local: SocketAddr, announced: Option<&str>, remote: Option<SocketAddr>) -> Self {
        Self::with_protocol(local, announced, remote, Protocol::Udp)
    }

    /// `localAddress` is the announced address when there is one, else the bound IP.
    pub(crate) fn with_protocol(
        local: SocketAddr,
        announced: Option<&str>,
        remote: Option<SocketAddr>,
        protocol: Protocol,
    ) -> Self {
        TransportTuple {
            local_address: announced.map(str::to_owned).unwrap_or_else(|| local.ip().to_string()),
            local_port: local.port(),
            remote_ip: remote.map(|r| r.ip().to_string()),
            remote_port: remote.map(|r| r.port()),
            protocol,
        }
    }
}

/// mediasoup's `plainTransport.connect({ ip, port, rtcpPort })`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlainTransportConnect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtcp_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtp_parameters: Option<Value>,
}

pub(crate) enum TransportVariant {
    Plain { options: PlainTransportOptions, bound: PlainBound },
    Direct { options: DirectTransportOptions },
    WebRtc(Box<super::webrtc_transport::WebRtcData>),
}

pub(crate) struct TransportInner {
    pub(crate) engine: Arc<EngineInner>,
    pub(crate) router: Arc<RouterInner>,
    pub(crate) id: String,
    pub(crate) oid: ObjectId,
    pub(crate) shard: usize,
    pub(crate) shared: Arc<ObjectShared>,
    app_data: Value,
    pub(crate) variant: TransportVariant,
    next_mid: AtomicU32,
}

/// What every transport can do: produce, consume, close, dump, stats.
#[derive(Clone)]
pub struct Transport {
    pub(crate) inner: Arc<TransportInner>,
}

impl Transport {
    pub(crate) fn new(
        router: &Router,
        oid: ObjectId,
        shard: usize,
        app_data: Value,
        variant: TransportVariant,
    ) -> Transport {
        let id = uuid::Uuid::new_v4().to_string();
        let shared = ObjectShared::new(oid, id.clone(), false);
        router.inner.engine.registry.insert(&shared);
        // The router closed while the shard created us: its cascade may have passed us by.
        if router.closed() {
            shared.mark_closed();
        }
        Transport {
            inner: Arc::new(TransportInner {
                engine: router.inner.engine.clone(),
                router: router.inner.clone(),
                id,
                oid,
                shard,
                shared,
                app_data,
                variant,
                next_mid: AtomicU32::new(0),
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    /// The shard this transport (its sockets, producers and consumers) lives on.
    pub fn shard(&self) -> usize {
        self.inner.shard
    }

    pub fn app_data(&self) -> &Value {
        &self.inner.app_data
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        self.inner.shared.check_open("Transport")
    }

    /// The next `mid` for a consumer (mediasoup counts per transport from 0).
    pub(crate) fn next_mid(&self) -> String {
        self.inner.next_mid.fetch_add(1, Ordering::Relaxed).to_string()
    }

    /// mediasoup's `transport.produce(options)`.
    pub async fn produce(&self, options: ProducerOptions) -> Result<Producer> {
        Producer::create(self, options).await
    }

    /// mediasoup's `transport.consume(options)`.
    pub async fn consume(&self, options: ConsumerOptions) -> Result<Consumer> {
        Consumer::create(self, options).await
    }

    /// mediasoup's `transport.produceData()`: `direct` data producers on a DirectTransport
    /// (other transports need SCTP: `UnsupportedError`).
    pub async fn produce_data(&self, options: super::DataProducerOptions) -> Result<super::DataProducer> {
        super::DataProducer::create(self, options).await
    }

    /// mediasoup's `transport.consumeData()`: `direct` data consumers on a DirectTransport.
    pub async fn consume_data(&self, options: super::DataConsumerOptions) -> Result<super::DataConsumer> {
        super::DataConsumer::create(self, options).await
    }

    pub(crate) async fn snapshot(&self) -> Result<TransportSnapshot> {
        self.check_open()?;
        match self.inner.engine.request(self.inner.shard, Command::Snapshot { id: self.inner.oid }).await? {
            Response::Snapshot(Snapshot::Transport(t)) => Ok(t),
            _ => Err(Error::other("unexpected reply")),
        }
    }

    fn announced(&self) -> Option<&str> {
        match &self.inner.variant {
            TransportVariant::Plain { options, .. } => options.listen_info.announced_address.as_deref(),
            TransportVariant::Direct { .. } | TransportVariant::WebRtc(_) => None,
        }
    }

    /// mediasoup's `transport.dump()`.
    pub async fn dump(&self) -> Result<Value> {
        let t = self.snapshot().await?;
        let reg = &self.inner.engine.registry;
        let name = |oid: &ObjectId| reg.uuid(*oid).unwrap_or_else(|| oid.to_string());
        let mut dump = json!({
            "id": self.inner.id,
            "direct": t.direct,
            "producerIds": t.producers.iter().map(&name).collect::<Vec<_>>(),
            "consumerIds": t.consumers.iter().map(&name).collect::<Vec<_>>(),
            "mapSsrcConsumerId": t.consumer_ssrcs.iter().map(|(s, c)| json!({ "key": s, "value": name(c) })).collect::<Vec<_>>(),
            "dataProducerIds": t.data_producers.iter().map(&name).collect::<Vec<_>>(),
            "dataConsumerIds": t.data_consumers.iter().map(&name).collect::<Vec<_>>(),
            "rtpListener": {
                "ssrcTable": t.ssrc_table.iter().map(|(s, p)| json!({ "key": s, "value": name(p) })).collect::<Vec<_>>(),
                "midTable": t.mid_table.iter().map(|(m, p)| json!({ "key": m, "value": name(p) })).collect::<Vec<_>>(),
                "ridTable": [],
            },
            "traceEventTypes": [],
        });
        if let Some(w) = self.as_webrtc() {
            dump.as_object_mut().expect("object").extend(w.describe(t.webrtc.as_ref()));
        } else if !t.direct {
            let obj = dump.as_object_mut().expect("object");
            obj.insert("rtcpMux".into(), json!(t.rtcp_mux));
            obj.insert("comedia".into(), json!(t.comedia));
            if let Some(local) = t.local {
                obj.insert("tuple".into(), json!(TransportTuple::new(local, self.announced(), t.remote)));
            }
            if let Some(local) = t.local_rtcp {
                obj.insert("rtcpTuple".into(), json!(TransportTuple::new(local, self.announced(), t.remote_rtcp)));
            }
        }
        Ok(dump)
    }

    /// mediasoup's `transport.getStats()`.
    pub async fn get_stats(&self) -> Result<Value> {
        let t = self.snapshot().await?;
        let webrtc = self.as_webrtc();
        let kind = match (&webrtc, t.direct) {
            (Some(_), _) => "webrtc-transport",
            (None, true) => "direct-transport",
            (None, false) => "plain-rtp-transport",
        };
        let mut stat = json!({
            "type": kind,
            "transportId": self.inner.id,
            "timestamp": std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
            "bytesReceived": t.traffic.bytes_in,
            "rtpPacketsReceived": t.traffic.packets_in,
            "rtcpPacketsReceived": t.traffic.rtcp_in,
            "rtcpPacketsSent": t.traffic.rtcp_out,
        });
        if let Some(w) = webrtc {
            let obj = stat.as_object_mut().expect("object");
            let d = w.describe(t.webrtc.as_ref());
            for key in ["iceRole", "iceState", "iceSelectedTuple", "dtlsState"] {
                if let Some(v) = d.get(key) {
                    obj.insert(key.into(), v.clone());
                }
            }
            obj.insert("bytesSent".into(), json!(t.traffic.bytes_out));
            obj.insert("rtpPacketsSent".into(), json!(t.traffic.packets_out));
        } else if !t.direct {
            let obj = stat.as_object_mut().expect("object");
            obj.insert("rtcpMux".into(), json!(t.rtcp_mux));
            obj.insert("comedia".into(), json!(t.comedia));
            if let Some(local) = t.local {
                obj.insert("tuple".into(), json!(TransportTuple::new(local, self.announced(), t.remote)));
            }
        }
        Ok(json!([stat]))
    }

    /// This transport as a WebRtcTransport, if it is one.
    pub fn as_webrtc(&self) -> Option<super::WebRtcTransport> {
        matches!(self.inner.variant, TransportVariant::WebRtc(_))
            .then(|| super::WebRtcTransport { transport: self.clone() })
    }

    /// Close the transport: its producers and consumers close with `transportclose`.
    pub fn close(&self) {
        if !self.inner.shared.mark_closed() {
            return;
        }
        self.inner.engine.registry.remove(self.inner.oid);
        self.inner.engine.tell(self.inner.shard, Command::CloseTransport { id: self.inner.oid });
    }

    /// `transport.on('routerclose')`.
    pub fn on_router_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("routerclose", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `close`.
    pub fn on_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@close", Box::new(move |_: &EventArg<'_>| f()))
    }

    pub fn off(&self, handler: HandlerId) {
        self.inner.shared.off(handler);
    }
}

/// mediasoup's PlainTransport.
#[derive(Clone)]
pub struct PlainTransport {
    pub(crate) transport: Transport,
}

impl Deref for PlainTransport {
    type Target = Transport;
    fn deref(&self) -> &Transport {
        &self.transport
    }
}

impl PlainTransport {
    fn parts(&self) -> (&PlainTransportOptions, &PlainBound) {
        match &self.transport.inner.variant {
            TransportVariant::Plain { options, bound } => (options, bound),
            _ => unreachable!("PlainTransport wraps a plain variant"),
        }
    }

    /// Local (and, once known, remote) RTP tuple.
    pub fn tuple(&self) -> TransportTuple {
        let (options, bound) = self.parts();
        let remote = self.inner.shared.remote.lock().expect("remote lock").0;
        TransportTuple::new(bound.local, options.listen_info.announced_address.as_deref(), remote)
    }

    /// RTCP tuple when `rtcpMux` is off.
    pub fn rtcp_tuple(&self) -> Option<TransportTuple> {
        let (options, bound) = self.parts();
        let remote = self.inner.shared.remote.lock().expect("remote lock").1;
        bound.local_rtcp.map(|l| TransportTuple::new(l, options.listen_info.announced_address.as_deref(), remote))
    }

    pub fn rtcp_mux(&self) -> bool {
        self.parts().0.rtcp_mux
    }

    pub fn comedia(&self) -> bool {
        self.parts().0.comedia
    }

    /// The local address media is received on (bound address, not announced).
    pub fn local_addr(&self) -> SocketAddr {
        self.parts().1.local
    }

    /// The local RTCP address when `rtcpMux` is off.
    pub fn local_rtcp_addr(&self) -> Option<SocketAddr> {
        self.parts().1.local_rtcp
    }

    /// mediasoup's `plainTransport.connect({ ip, port, rtcpPort })`.
    pub async fn connect(&self, params: PlainTransportConnect) -> Result<()> {
        self.check_open()?;
        if params.srtp_parameters.is_some() {
            return Err(Error::unsupported("SRTP on PlainTransport is not supported yet"));
        }
        let ip: std::net::IpAddr = params
            .ip
            .as_deref()
            .ok_or_else(|| Error::type_error("missing ip"))?
            .parse()
            .map_err(|_| Error::type_error("invalid ip"))?;
        let port = params.port.filter(|p| *p != 0).ok_or_else(|| Error::type_error("missing port"))?;
        let remote = SocketAddr::new(ip, port);
        let remote_rtcp = params.rtcp_port.filter(|p| *p != 0).map(|p| SocketAddr::new(ip, p));
        if !self.rtcp_mux() && remote_rtcp.is_none() {
            return Err(Error::type_error("missing rtcpPort (required if rtcpMux is false)"));
        }
        self.inner
            .engine
            .request(self.inner.shard, Command::ConnectPlainTransport { id: self.inner.oid, remote, remote_rtcp })
            .await?;
        let mut r = self.inner.shared.remote.lock().expect("remote lock");
        r.0 = Some(remote);
        r.1 = if self.rtcp_mux() { None } else { remote_rtcp };
        Ok(())
    }

    /// `plainTransport.on('tuple')` (comedia learned the remote).
    pub fn on_tuple(&self, f: impl Fn(TransportTuple) + Send + Sync + 'static) -> HandlerId {
        let announced = self.parts().0.listen_info.announced_address.clone();
        self.inner.shared.on(
            "tuple",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::Tuple { local, remote } = arg {
                    f(TransportTuple::new(*local, announced.as_deref(), Some(*remote)));
                }
            }),
        )
    }

    /// `plainTransport.on('rtcptuple')`.
    pub fn on_rtcp_tuple(&self, f: impl Fn(TransportTuple) + Send + Sync + 'static) -> HandlerId {
        let announced = self.parts().0.listen_info.announced_address.clone();
        self.inner.shared.on(
            "rtcptuple",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::Tuple { local, remote } = arg {
                    f(TransportTuple::new(*local, announced.as_deref(), Some(*remote)));
                }
            }),
        )
    }
}

/// mediasoup's DirectTransport: RTP and RTCP handed in and out of the process.
#[derive(Clone)]
pub struct DirectTransport {
    pub(crate) transport: Transport,
}

impl Deref for DirectTransport {
    type Target = Transport;
    fn deref(&self) -> &Transport {
        &self.transport
    }
}

impl DirectTransport {
    pub fn max_message_size(&self) -> u32 {
        match &self.transport.inner.variant {
            TransportVariant::Direct { options } => options.max_message_size,
            _ => unreachable!("DirectTransport wraps a direct variant"),
        }
    }

    /// mediasoup's `directTransport.sendRtcp(packet)`: RTCP from the application, as if it came
    /// from the remote side (feedback for this transport's consumers).
    pub fn send_rtcp(&self, packet: &[u8]) -> Result<()> {
        self.check_open()?;
        if packet.is_empty() || packet.len() > crate::core::SCRATCH_BYTES {
            return Err(Error::type_error("invalid RTCP packet size"));
        }
        self.inner
            .engine
            .send_data(self.inner.shard, Command::DirectRtcp { transport: self.inner.oid, packet: packet.to_vec() })
    }

    /// `directTransport.on('rtcp')`: RTCP the engine sends towards this transport's remote.
    pub fn on_rtcp(&self, f: impl Fn(&[u8]) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on(
            "rtcp",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::Bytes(b) = arg {
                    f(b);
                }
            }),
        )
    }
}
