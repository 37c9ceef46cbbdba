//! Commands from the API to a shard (the adapter that runs them is in `adapter.rs`).

use std::net::{IpAddr, SocketAddr};

use super::oneshot;
use crate::core::{
    CloseReason, ConsumerSpec, DataMessage, MirrorOf, ObjectId, ObserverSpec, ProducerSpec, ShardCommand,
    ShardSnapshot, Snapshot, WebRtcSpec,
};
use crate::error::Result;
use crate::placement::Creates;
use crate::rtp_parameters::RtpParameters;
use crate::webrtc::cert::{DtlsFingerprint, DtlsRole};
use crate::Protocol;

/// How a PlainTransport's sockets are bound.
#[derive(Debug, Clone)]
pub(crate) struct PlainListen {
    pub ip: IpAddr,
    pub port: Option<u16>,
    pub port_range: (u16, u16),
    pub rtcp_mux: bool,
    pub comedia: bool,
}

/// One socket to bind for a WebRtcServer or WebRtcTransport (one `listenInfos` entry).
#[derive(Debug, Clone)]
pub(crate) struct IceListen {
    pub protocol: Protocol,
    pub ip: IpAddr,
    pub port: Option<u16>,
    pub port_range: (u16, u16),
}

/// What a PlainTransport got bound to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlainBound {
    pub local: SocketAddr,
    pub local_rtcp: Option<SocketAddr>,
}

pub(crate) enum Command {
    CreateRouter {
        id: ObjectId,
    },
    /// The router's part on this shard, created unless it exists (a router spanning shards).
    EnsureRouter {
        id: ObjectId,
    },
    CloseRouter {
        id: ObjectId,
        reason: Option<CloseReason>,
    },
    CreatePlainTransport {
        router: ObjectId,
        id: ObjectId,
        listen: PlainListen,
    },
    ConnectPlainTransport {
        id: ObjectId,
        remote: SocketAddr,
        remote_rtcp: Option<SocketAddr>,
    },
    CreateDirectTransport {
        router: ObjectId,
        id: ObjectId,
    },
    /// This shard's sockets of a WebRtcServer.
    CreateWebRtcServer {
        id: ObjectId,
        listen: Vec<IceListen>,
    },
    CloseWebRtcServer {
        id: ObjectId,
    },
    CreateWebRtcTransport {
        router: ObjectId,
        id: ObjectId,
        /// Its own sockets (empty with a server).
        listen: Vec<IceListen>,
        spec: Box<WebRtcSpec>,
    },
    ConnectWebRtcTransport {
        id: ObjectId,
        role: Option<DtlsRole>,
        fingerprints: Vec<DtlsFingerprint>,
    },
    SetMaxIncomingBitrate {
        id: ObjectId,
        bps: u32,
    },
    RestartIce {
        id: ObjectId,
        ufrag: String,
        password: String,
    },
    CloseTransport {
        id: ObjectId,
    },
    Produce {
        transport: ObjectId,
        id: ObjectId,
        spec: Box<ProducerSpec>,
    },
    Consume {
        transport: ObjectId,
        id: ObjectId,
        spec: Box<ConsumerSpec>,
    },
    PauseProducer {
        id: ObjectId,
    },
    ResumeProducer {
        id: ObjectId,
    },
    CloseProducer {
        id: ObjectId,
    },
    PauseConsumer {
        id: ObjectId,
    },
    ResumeConsumer {
        id: ObjectId,
    },
    CloseConsumer {
        id: ObjectId,
    },
    RequestKeyFrame {
        id: ObjectId,
    },
    DirectRtp {
        producer: ObjectId,
        packet: Vec<u8>,
    },
    DirectRtcp {
        transport: ObjectId,
        packet: Vec<u8>,
    },
    Snapshot {
        id: ObjectId,
    },
    ShardSnapshot,
    /// Spanning routers: create the mirror of a producer of shard `origin` here.
    CreateMirror {
        router: ObjectId,
        producer: ObjectId,
        origin: usize,
        mirror_of: MirrorOf,
        spec: Box<ProducerSpec>,
    },
    /// pipeToRouter: a consumer of `producer` feeding `mirror` (the pipe producer) on `shard`.
    CreatePipeConsumer {
        router: ObjectId,
        id: ObjectId,
        producer: ObjectId,
        rtp_parameters: Box<RtpParameters>,
        shard: usize,
        mirror: ObjectId,
    },
    /// Spanning routers: send every packet of `producer` to `shard` (mirror `mirror` there).
    AddSubscriber {
        producer: ObjectId,
        shard: usize,
        mirror: ObjectId,
    },
    ProduceData {
        transport: ObjectId,
        id: ObjectId,
        paused: bool,
    },
    ConsumeData {
        transport: ObjectId,
        id: ObjectId,
        data_producer: ObjectId,
        paused: bool,
        subchannels: Vec<u16>,
    },
    PauseDataProducer {
        id: ObjectId,
    },
    ResumeDataProducer {
        id: ObjectId,
    },
    CloseDataProducer {
        id: ObjectId,
    },
    PauseDataConsumer {
        id: ObjectId,
    },
    ResumeDataConsumer {
        id: ObjectId,
    },
    CloseDataConsumer {
        id: ObjectId,
    },
    SetDataConsumerSubchannels {
        id: ObjectId,
        subchannels: Vec<u16>,
    },
    /// A message into a data producer on a DirectTransport.
    DataSend {
        data_producer: ObjectId,
        message: std::sync::Arc<DataMessage>,
    },
    /// Spanning routers / pipeToRouter: a data mirror of `data_producer` (on `origin`) here.
    CreateDataMirror {
        router: ObjectId,
        data_producer: ObjectId,
        origin: usize,
        mirror_of: MirrorOf,
        paused: bool,
    },
    /// pipeToRouter: a data consumer of `data_producer` feeding `mirror` (the pipe data
    /// producer) on `shard`.
    CreatePipeDataConsumer {
        router: ObjectId,
        id: ObjectId,
        data_producer: ObjectId,
        shard: usize,
        mirror: ObjectId,
    },
    /// Spanning routers: send every message of `data_producer` to `shard` (mirror `mirror` there).
    AddDataSubscriber {
        data_producer: ObjectId,
        shard: usize,
        mirror: ObjectId,
    },
    CreateObserver {
        router: ObjectId,
        id: ObjectId,
        spec: ObserverSpec,
    },
    ObserverAddProducer {
        id: ObjectId,
        producer: ObjectId,
    },
    ObserverRemoveProducer {
        id: ObjectId,
        producer: ObjectId,
    },
    PauseObserver {
        id: ObjectId,
    },
    ResumeObserver {
        id: ObjectId,
    },
    CloseObserver {
        id: ObjectId,
    },
    /// From another shard (never from the API).
    Shard {
        from: usize,
        cmd: ShardCommand,
    },
}

impl Command {
    /// The object this command creates on its shard (or may: creation can still fail, and
    /// `EnsureRouter` finds the router there already), for placement's count of creations on
    /// their way (see [`LoadBoard`](crate::placement::LoadBoard)).
    pub(crate) fn creates(&self) -> Option<Creates> {
        match self {
            Command::CreateRouter { .. } | Command::EnsureRouter { .. } => Some(Creates::Router),
            Command::CreatePlainTransport { .. }
            | Command::CreateDirectTransport { .. }
            | Command::CreateWebRtcTransport { .. } => Some(Creates::Transport),
            Command::Consume { .. }
            | Command::CreatePipeConsumer { .. }
            | Command::ConsumeData { .. }
            | Command::CreatePipeDataConsumer { .. } => Some(Creates::Consumer),
            _ => None,
        }
    }
}

// Control plane, one reply per command: boxing the snapshot buys nothing.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Response {
    Unit,
    /// Sockets bound for a WebRtcServer or WebRtcTransport, in `listen` order.
    Ice(Vec<(Protocol, SocketAddr)>),
    DtlsRole(DtlsRole),
    Plain(PlainBound),
    Snapshot(Snapshot),
    Shard(ShardSnapshot),
}

/// A command and, unless fire-and-forget, where its reply goes.
pub(crate) struct Envelope {
    pub cmd: Command,
    pub reply: Option<oneshot::Sender<Result<Response>>>,
}
