//! WebRtcServer and WebRtcTransport: mediasoup's objects over the shard's ICE-lite, DTLS and SRTP
//! (see `core::webrtc`).
//!
//! A WebRtcServer exists on every shard, each with its own sockets: shards own their sockets and
//! share nothing, so a transport placed on shard `i` announces shard `i`'s ports and its packets
//! never cross shards. With a fixed `port` in a listen info, shard `i` listens on `port + i`;
//! without one, each shard takes a free port of the worker's (or the listen info's) range. The
//! ports are in `dump()` (`udpSockets`, `tcpServers`, per shard).

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::command::{Command, IceListen, Response};
use super::dispatch::{EventArg, HandlerId, ObjectShared};
use super::engine::{EngineInner, Worker};
use super::router::Router;
use super::transport::{Protocol, Transport, TransportListenInfo, TransportTuple, TransportVariant};
use crate::core::{ObjectId, WebRtcSpec};
use crate::error::{Error, Result};
use crate::webrtc::cert::{DtlsCertificate, DtlsParameters, DtlsRole, DtlsState};
use crate::webrtc::ice::{
    generate_password, generate_ufrag, ice_candidate_priority, IceCandidate, IceParameters, IceState, IceTuple,
    ProtocolPreference, PASSWORD_LEN, UFRAG_LEN,
};

fn yes() -> bool {
    true
}
fn default_consent_timeout() -> u32 {
    30
}
fn default_outgoing_bitrate() -> u32 {
    600_000
}
fn default_max_sctp_message_size() -> u32 {
    262_144
}

/// mediasoup's `WebRtcServerOptions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebRtcServerOptions {
    pub listen_infos: Vec<TransportListenInfo>,
    #[serde(default)]
    pub app_data: Value,
}

/// mediasoup's `WebRtcTransportOptions`. Give either `listen_infos` or `webrtc_server`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebRtcTransportOptions {
    #[serde(default)]
    pub listen_infos: Vec<TransportListenInfo>,
    /// mediasoup's `webRtcServer` (not serialized: the remote API passes `webRtcServerId`).
    #[serde(skip)]
    pub webrtc_server: Option<WebRtcServer>,
    #[serde(default = "yes")]
    pub enable_udp: bool,
    #[serde(default = "yes")]
    pub enable_tcp: bool,
    #[serde(default)]
    pub prefer_udp: bool,
    #[serde(default)]
    pub prefer_tcp: bool,
    /// Seconds; 0 disables consent checks.
    #[serde(default = "default_consent_timeout")]
    pub ice_consent_timeout: u32,
    #[serde(default = "default_outgoing_bitrate")]
    pub initial_available_outgoing_bitrate: u32,
    #[serde(default)]
    pub enable_sctp: bool,
    #[serde(default = "default_max_sctp_message_size")]
    pub max_sctp_message_size: u32,
    /// shardsfu's own option: the SRTP profiles DTLS may negotiate, in order of preference
    /// (default: all four, AEAD_AES_256_GCM first, as mediasoup). mediasoup has no such option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtp_crypto_suites: Option<Vec<crate::webrtc::srtp::SrtpProfile>>,
    #[serde(default)]
    pub app_data: Value,
}

impl WebRtcTransportOptions {
    /// Options listening on `listen_infos`, everything else as mediasoup's defaults.
    pub fn new(listen_infos: Vec<TransportListenInfo>) -> Self {
        WebRtcTransportOptions {
            listen_infos,
            webrtc_server: None,
            enable_udp: true,
            enable_tcp: true,
            prefer_udp: false,
            prefer_tcp: false,
            ice_consent_timeout: default_consent_timeout(),
            initial_available_outgoing_bitrate: default_outgoing_bitrate(),
            enable_sctp: false,
            max_sctp_message_size: default_max_sctp_message_size(),
            srtp_crypto_suites: None,
            app_data: Value::Object(Default::default()),
        }
    }

    /// Options listening through `server`.
    pub fn with_server(server: &WebRtcServer) -> Self {
        WebRtcTransportOptions { webrtc_server: Some(server.clone()), ..Self::new(Vec::new()) }
    }
}

/// mediasoup's `webRtcTransport.connect({ dtlsParameters })`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebRtcTransportConnect {
    pub dtls_parameters: DtlsParameters,
}

fn parse_ip(info: &TransportListenInfo) -> Result<IpAddr> {
    info.ip.parse().map_err(|_| Error::type_error(format!("invalid listenInfo.ip '{}'", info.ip)))
}

fn ice_listen(info: &TransportListenInfo, worker: &Worker, port: Option<u16>) -> Result<IceListen> {
    let settings = worker.inner.settings.lock().expect("settings lock").clone();
    Ok(IceListen {
        protocol: info.protocol,
        ip: parse_ip(info)?,
        port,
        port_range: match info.port_range {
            Some(r) => (r.min, r.max),
            None => (settings.rtc_min_port, settings.rtc_max_port),
        },
    })
}

fn random_credentials() -> Result<(String, String)> {
    use ring::rand::{SecureRandom, SystemRandom};
    let rng = SystemRandom::new();
    let mut u = [0u8; UFRAG_LEN];
    let mut p = [0u8; PASSWORD_LEN];
    rng.fill(&mut u).map_err(|_| Error::other("no randomness for ICE credentials"))?;
    rng.fill(&mut p).map_err(|_| Error::other("no randomness for ICE credentials"))?;
    Ok((generate_ufrag(&u), generate_password(&p)))
}

fn tuple_json(tuple: &IceTuple, announced: &[(SocketAddr, Option<String>)]) -> TransportTuple {
    let announced = announced.iter().find(|(a, _)| *a == tuple.local).and_then(|(_, ann)| ann.as_deref());
    TransportTuple::with_protocol(tuple.local, announced, Some(tuple.remote), tuple.protocol)
}

pub(crate) struct WebRtcServerInner {
    engine: Arc<EngineInner>,
    id: String,
    pub(crate) oid: ObjectId,
    shared: Arc<ObjectShared>,
    app_data: Value,
    listen_infos: Vec<TransportListenInfo>,
    /// Per shard: the address each listen info got there, in `listen_infos` order.
    bound: Vec<Vec<(Protocol, SocketAddr)>>,
    transports: Mutex<Vec<Transport>>,
}

/// mediasoup's WebRtcServer.
#[derive(Clone)]
pub struct WebRtcServer {
    pub(crate) inner: Arc<WebRtcServerInner>,
}

impl WebRtcServer {
    pub(crate) async fn create(worker: &Worker, options: WebRtcServerOptions) -> Result<WebRtcServer> {
        if options.listen_infos.is_empty() {
            return Err(Error::type_error("empty listenInfos array provided"));
        }
        if options.listen_infos.len() > crate::core::MAX_WEBRTC_SOCKETS {
            return Err(Error::type_error("too many listenInfos"));
        }
        let engine = worker.inner.engine.clone();
        let oid = engine.alloc_id();
        let mut bound = Vec::with_capacity(engine.shards.len());
        for shard in 0..engine.shards.len() {
            let listen = options
                .listen_infos
                .iter()
                .map(|info| {
                    let port = info.port.filter(|p| *p != 0).map(|p| {
                        p.checked_add(shard as u16)
                            .ok_or_else(|| Error::type_error(format!("port {p} + shard {shard} is past 65535")))
                    });
                    ice_listen(info, worker, port.transpose()?)
                })
                .collect::<Result<Vec<_>>>()?;
            match engine.request(shard, Command::CreateWebRtcServer { id: oid, listen }).await {
                Ok(Response::Ice(addrs)) => bound.push(addrs),
                Ok(_) => return Err(Error::other("unexpected reply")),
                Err(e) => {
                    for s in 0..shard {
                        engine.tell(s, Command::CloseWebRtcServer { id: oid });
                    }
                    return Err(e);
                }
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let shared = ObjectShared::new(oid, id.clone(), false);
        engine.registry.insert(&shared);
        Ok(WebRtcServer {
            inner: Arc::new(WebRtcServerInner {
                engine,
                id,
                oid,
                shared,
                app_data: options.app_data,
                listen_infos: options.listen_infos,
                bound,
                transports: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub fn closed(&self) -> bool {
        self.inner.shared.is_closed()
    }

    pub fn app_data(&self) -> &Value {
        &self.inner.app_data
    }

    /// The addresses shard `shard` listens on, in `listenInfos` order.
    pub fn local_addrs(&self, shard: usize) -> Vec<(Protocol, SocketAddr)> {
        self.inner.bound.get(shard).cloned().unwrap_or_default()
    }

    /// mediasoup's `webRtcServer.dump()`, with every shard's sockets.
    pub fn dump(&self) -> Value {
        let socks = |p: Protocol| {
            self.inner
                .bound
                .iter()
                .flatten()
                .filter(|(proto, _)| *proto == p)
                .map(|(_, a)| json!({ "ip": a.ip().to_string(), "port": a.port() }))
                .collect::<Vec<_>>()
        };
        let transports = self.inner.transports.lock().expect("transports lock");
        let live: Vec<&Transport> = transports.iter().filter(|t| !t.closed()).collect();
        json!({
            "id": self.inner.id,
            "udpSockets": socks(Protocol::Udp),
            "tcpServers": socks(Protocol::Tcp),
            "webRtcTransportIds": live.iter().map(|t| t.id().to_owned()).collect::<Vec<_>>(),
            "localIceUsernameFragments": live.iter().filter_map(|t| match &t.inner.variant {
                TransportVariant::WebRtc(w) => Some(json!({
                    "localIceUsernameFragment": w.ice_parameters.lock().expect("ice lock").username_fragment,
                    "webRtcTransportId": t.id(),
                })),
                _ => None,
            }).collect::<Vec<_>>(),
            "tupleHashes": [],
        })
    }

    /// Close the server: its transports close with `listenserverclose`.
    pub fn close(&self) {
        if !self.inner.shared.mark_closed() {
            return;
        }
        self.release();
    }

    pub(crate) fn close_with_worker(&self) {
        if self.inner.shared.mark_closed_by(Some("workerclose")) {
            self.release();
        }
    }

    fn release(&self) {
        self.inner.engine.registry.remove(self.inner.oid);
        for shard in 0..self.inner.bound.len() {
            self.inner.engine.tell(shard, Command::CloseWebRtcServer { id: self.inner.oid });
        }
        // Its transports hold it (their options name it): let go of them, as the router does.
        drop(std::mem::take(&mut *self.inner.transports.lock().expect("transports lock")));
    }

    /// `webRtcServer.on('workerclose')`.
    pub fn on_worker_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("workerclose", Box::new(move |_: &EventArg<'_>| f()))
    }

    /// Observer `close`.
    pub fn on_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("@close", Box::new(move |_: &EventArg<'_>| f()))
    }
}

/// What the API keeps of a WebRtcTransport (the shard keeps the rest).
pub(crate) struct WebRtcData {
    pub ice_parameters: Mutex<IceParameters>,
    pub ice_candidates: Vec<IceCandidate>,
    /// Local addresses and their announced address, for tuples in JSON.
    pub announced: Vec<(SocketAddr, Option<String>)>,
    pub dtls_parameters: Mutex<DtlsParameters>,
    pub server: Option<WebRtcServer>,
    /// (maxIncoming, maxOutgoing, minOutgoing) bitrates set by the application, in bps.
    pub bitrates: Mutex<(u32, u32, u32)>,
    pub initial_available_outgoing_bitrate: u32,
}

impl Router {
    /// mediasoup's `router.createWebRtcTransport(options)`.
    pub async fn create_webrtc_transport(&self, options: WebRtcTransportOptions) -> Result<WebRtcTransport> {
        if self.closed() {
            return Err(Error::invalid_state("Router closed"));
        }
        if options.srtp_crypto_suites.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::type_error("srtpCryptoSuites must not be empty"));
        }
        if options.enable_sctp {
            return Err(Error::unsupported("SCTP (data channels) is not supported yet"));
        }
        if options.webrtc_server.is_none() && options.listen_infos.is_empty() {
            return Err(Error::type_error("missing listenInfos and webRtcServer (one of them is mandatory)"));
        }
        if options.webrtc_server.is_some() && !options.listen_infos.is_empty() {
            return Err(Error::type_error("listenInfos and webRtcServer are mutually exclusive"));
        }
        if options.listen_infos.len() > crate::core::MAX_WEBRTC_SOCKETS {
            return Err(Error::type_error("too many listenInfos"));
        }
        let worker = &self.inner.worker;
        let preference = match (options.prefer_udp, options.prefer_tcp) {
            (true, _) => ProtocolPreference::PreferUdp,
            (false, true) => ProtocolPreference::PreferTcp,
            _ => ProtocolPreference::None,
        };
        let enabled = |p: Protocol| match p {
            Protocol::Udp => options.enable_udp,
            Protocol::Tcp => options.enable_tcp,
        };
        // (index in listenInfos, info) of what this transport offers.
        let (infos, listen): (Vec<(usize, TransportListenInfo)>, Vec<IceListen>) = match &options.webrtc_server {
            Some(server) => {
                if server.closed() {
                    return Err(Error::invalid_state("WebRtcServer closed"));
                }
                let infos: Vec<_> = server
                    .inner
                    .listen_infos
                    .iter()
                    .cloned()
                    .enumerate()
                    .filter(|(_, i)| enabled(i.protocol))
                    .collect();
                if infos.is_empty() {
                    return Err(Error::type_error("no listenInfo of the WebRtcServer matches enableUdp/enableTcp"));
                }
                (infos, Vec::new())
            }
            None => {
                let listen = options
                    .listen_infos
                    .iter()
                    .map(|i| ice_listen(i, worker, i.port.filter(|p| *p != 0)))
                    .collect::<Result<Vec<_>>>()?;
                (options.listen_infos.iter().cloned().enumerate().collect(), listen)
            }
        };
        let (ufrag, password) = random_credentials()?;
        let certificate: Arc<DtlsCertificate> = worker.inner.certificate.clone();
        let spec = WebRtcSpec {
            sockets: Vec::new(),
            server: options.webrtc_server.as_ref().map(|s| s.inner.oid),
            ufrag: ufrag.clone(),
            password: password.clone(),
            consent_timeout: Duration::from_secs(u64::from(options.ice_consent_timeout)),
            certificate: certificate.clone(),
            srtp_profiles: options.srtp_crypto_suites.clone().unwrap_or_default(),
        };
        let oid = self.inner.engine.alloc_id();
        let shard = self.transport_shard().await?;
        let cmd = Command::CreateWebRtcTransport { router: self.inner.oid, id: oid, listen, spec: Box::new(spec) };
        let addrs = match self.inner.engine.request(shard, cmd).await? {
            Response::Ice(addrs) => match &options.webrtc_server {
                // The server's sockets on the shard the transport went to.
                Some(server) => {
                    let all = server.local_addrs(shard);
                    infos.iter().map(|(i, _)| all[*i]).collect()
                }
                None => addrs,
            },
            _ => return Err(Error::other("unexpected reply")),
        };
        let mut ice_candidates = Vec::with_capacity(infos.len());
        let mut announced = Vec::with_capacity(infos.len());
        for ((index, info), (protocol, local)) in infos.iter().zip(&addrs) {
            let address = info.announced_address.clone().unwrap_or_else(|| local.ip().to_string());
            let priority = ice_candidate_priority(*index, *protocol, preference);
            ice_candidates.push(IceCandidate::host(&address, *protocol, local.port(), priority));
            announced.push((*local, info.announced_address.clone()));
        }
        let data = WebRtcData {
            ice_parameters: Mutex::new(IceParameters { username_fragment: ufrag, password, ice_lite: true }),
            ice_candidates,
            announced,
            dtls_parameters: Mutex::new(DtlsParameters {
                role: Some(DtlsRole::Auto),
                fingerprints: certificate.fingerprints().to_vec(),
            }),
            server: options.webrtc_server.clone(),
            bitrates: Mutex::new((0, 0, 0)),
            initial_available_outgoing_bitrate: options.initial_available_outgoing_bitrate,
        };
        let t = Transport::new(self, oid, shard, options.app_data.clone(), TransportVariant::WebRtc(Box::new(data)));
        self.register_transport(&t);
        if let Some(server) = &options.webrtc_server {
            let mut ts = server.inner.transports.lock().expect("transports lock");
            ts.retain(|t| !t.closed());
            ts.push(t.clone());
        }
        Ok(WebRtcTransport { transport: t })
    }
}

/// mediasoup's WebRtcTransport.
#[derive(Clone)]
pub struct WebRtcTransport {
    pub(crate) transport: Transport,
}

impl Deref for WebRtcTransport {
    type Target = Transport;
    fn deref(&self) -> &Transport {
        &self.transport
    }
}

impl WebRtcTransport {
    fn data(&self) -> &WebRtcData {
        match &self.transport.inner.variant {
            TransportVariant::WebRtc(w) => w,
            _ => unreachable!("WebRtcTransport wraps a WebRTC variant"),
        }
    }

    /// Always `'controlled'`: we are ICE-lite.
    pub fn ice_role(&self) -> &'static str {
        "controlled"
    }

    pub fn ice_parameters(&self) -> IceParameters {
        self.data().ice_parameters.lock().expect("ice lock").clone()
    }

    pub fn ice_candidates(&self) -> &[IceCandidate] {
        &self.data().ice_candidates
    }

    pub fn ice_state(&self) -> IceState {
        if self.closed() {
            return IceState::Closed;
        }
        self.inner.shared.webrtc.lock().expect("webrtc lock").ice_state.unwrap_or(IceState::New)
    }

    pub fn ice_selected_tuple(&self) -> Option<TransportTuple> {
        let live = *self.inner.shared.webrtc.lock().expect("webrtc lock");
        live.ice_selected_tuple
            .filter(|_| !matches!(self.ice_state(), IceState::Disconnected | IceState::Closed))
            .map(|t| tuple_json(&t, &self.data().announced))
    }

    pub fn dtls_parameters(&self) -> DtlsParameters {
        self.data().dtls_parameters.lock().expect("dtls lock").clone()
    }

    pub fn dtls_state(&self) -> DtlsState {
        if self.closed() {
            return DtlsState::Closed;
        }
        self.inner.shared.webrtc.lock().expect("webrtc lock").dtls_state
    }

    /// The WebRtcServer it listens through, if any.
    pub fn webrtc_server(&self) -> Option<&WebRtcServer> {
        self.data().server.as_ref()
    }

    /// mediasoup's `webRtcTransport.connect({ dtlsParameters })`.
    pub async fn connect(&self, params: WebRtcTransportConnect) -> Result<()> {
        self.check_open()?;
        let remote = params.dtls_parameters;
        if remote.fingerprints.is_empty() {
            return Err(Error::type_error("empty dtlsParameters.fingerprints"));
        }
        let role = match self
            .inner
            .engine
            .request(
                self.inner.shard,
                Command::ConnectWebRtcTransport {
                    id: self.inner.oid,
                    role: remote.role,
                    fingerprints: remote.fingerprints,
                },
            )
            .await?
        {
            Response::DtlsRole(r) => r,
            _ => return Err(Error::other("unexpected reply")),
        };
        self.data().dtls_parameters.lock().expect("dtls lock").role = Some(role);
        Ok(())
    }

    /// mediasoup's `webRtcTransport.restartIce()`: new local ICE credentials.
    pub async fn restart_ice(&self) -> Result<IceParameters> {
        self.check_open()?;
        let (ufrag, password) = random_credentials()?;
        self.inner
            .engine
            .request(
                self.inner.shard,
                Command::RestartIce { id: self.inner.oid, ufrag: ufrag.clone(), password: password.clone() },
            )
            .await?;
        let params = IceParameters { username_fragment: ufrag, password, ice_lite: true };
        *self.data().ice_parameters.lock().expect("ice lock") = params.clone();
        Ok(params)
    }

    /// mediasoup's `setMaxIncomingBitrate(bps)` (0: no limit). With each RTCP report the
    /// endpoint sending to this transport gets a REMB of `bps` for its streams, which browsers
    /// take as a cap on their send rate. (This engine estimates no bandwidth of its own: the
    /// REMB is the limit, not the minimum of the limit and an estimate as in mediasoup.)
    pub fn set_max_incoming_bitrate(&self, bitrate: u32) -> Result<()> {
        self.check_open()?;
        self.data().bitrates.lock().expect("bitrates lock").0 = bitrate;
        self.inner.engine.tell(self.inner.shard, Command::SetMaxIncomingBitrate { id: self.inner.oid, bps: bitrate });
        Ok(())
    }

    /// mediasoup's `setMaxOutgoingBitrate(bps)`: recorded (in `dump()`). Without bandwidth
    /// estimation this engine has no outgoing rate of its own to bound.
    pub fn set_max_outgoing_bitrate(&self, bitrate: u32) -> Result<()> {
        self.check_open()?;
        let mut b = self.data().bitrates.lock().expect("bitrates lock");
        if bitrate != 0 && b.2 != 0 && bitrate < b.2 {
            return Err(Error::type_error("maxOutgoingBitrate must be >= minOutgoingBitrate"));
        }
        b.1 = bitrate;
        Ok(())
    }

    /// mediasoup's `setMinOutgoingBitrate(bps)`: recorded, as `set_max_outgoing_bitrate`.
    pub fn set_min_outgoing_bitrate(&self, bitrate: u32) -> Result<()> {
        self.check_open()?;
        let mut b = self.data().bitrates.lock().expect("bitrates lock");
        if bitrate != 0 && b.1 != 0 && bitrate > b.1 {
            return Err(Error::type_error("minOutgoingBitrate must be <= maxOutgoingBitrate"));
        }
        b.2 = bitrate;
        Ok(())
    }

    /// The JSON mediasoup's dump and stats carry for a WebRtcTransport.
    pub(crate) fn describe(&self, snapshot: Option<&crate::core::WebRtcSnapshot>) -> serde_json::Map<String, Value> {
        let mut m = serde_json::Map::new();
        m.insert("iceRole".into(), json!("controlled"));
        m.insert("iceParameters".into(), json!(self.ice_parameters()));
        m.insert("iceCandidates".into(), json!(self.ice_candidates()));
        let (ice_state, tuple, dtls_state) = match snapshot {
            Some(s) => (s.ice_state, s.ice_selected_tuple, s.dtls_state),
            None => (self.ice_state(), None, self.dtls_state()),
        };
        m.insert("iceState".into(), json!(ice_state));
        if let Some(t) = tuple {
            m.insert("iceSelectedTuple".into(), json!(tuple_json(&t, &self.data().announced)));
        }
        m.insert("dtlsParameters".into(), json!(self.dtls_parameters()));
        m.insert("dtlsState".into(), json!(dtls_state));
        if let Some(p) = snapshot.and_then(|s| s.srtp_profile) {
            m.insert("srtpCryptoSuite".into(), json!(p));
        }
        let (max_in, max_out, min_out) = *self.data().bitrates.lock().expect("bitrates lock");
        m.insert("maxIncomingBitrate".into(), json!(max_in));
        m.insert("maxOutgoingBitrate".into(), json!(max_out));
        m.insert("minOutgoingBitrate".into(), json!(min_out));
        m.insert("initialAvailableOutgoingBitrate".into(), json!(self.data().initial_available_outgoing_bitrate));
        m
    }

    /// `webRtcTransport.on('icestatechange')`.
    pub fn on_ice_state_change(&self, f: impl Fn(IceState) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on(
            "icestatechange",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::IceState(s) = arg {
                    f(*s);
                }
            }),
        )
    }

    /// `webRtcTransport.on('iceselectedtuplechange')`.
    pub fn on_ice_selected_tuple_change(&self, f: impl Fn(TransportTuple) + Send + Sync + 'static) -> HandlerId {
        let announced = self.data().announced.clone();
        self.inner.shared.on(
            "iceselectedtuplechange",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::IceTuple(t) = arg {
                    f(tuple_json(t, &announced));
                }
            }),
        )
    }

    /// `webRtcTransport.on('dtlsstatechange')`.
    pub fn on_dtls_state_change(&self, f: impl Fn(DtlsState) + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on(
            "dtlsstatechange",
            Box::new(move |arg: &EventArg<'_>| {
                if let EventArg::DtlsState(s) = arg {
                    f(*s);
                }
            }),
        )
    }

    /// `webRtcTransport.on('listenserverclose')`.
    pub fn on_listen_server_close(&self, f: impl Fn() + Send + Sync + 'static) -> HandlerId {
        self.inner.shared.on("listenserverclose", Box::new(move |_: &EventArg<'_>| f()))
    }
}
