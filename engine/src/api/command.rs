//! Commands from the API to a shard, and the adapter that runs the sans-IO core on a shard of
//! the `shardsfu-net` runtime.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use shardsfu_net::{Io, ShardInfo, ShardService, SocketId};

use super::dispatch::{Dispatch, Registry};
use super::oneshot;
use crate::rtp_parameters::RtpParameters;
use std::collections::VecDeque;

use crate::core::{
    CloseReason, ConsumerSpec, Event, IceSocketSpec, MirrorOf, NtpClock, ObjectId, PlainSpec, ProducerSpec, Shard,
    ShardCommand, ShardSnapshot, Sink, Snapshot, WebRtcSpec, SCRATCH_BYTES,
};
use crate::error::{Error, Result};
use crate::webrtc::cert::{DtlsFingerprint, DtlsRole};
use crate::Protocol;

/// A bound UDP socket and its local address.
type BoundSocket = (SocketId, SocketAddr);

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
    /// From another shard (never from the API).
    Shard {
        from: usize,
        cmd: ShardCommand,
    },
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

/// Object counts a shard publishes for placement (control plane: updated per command).
#[derive(Debug, Default)]
pub(crate) struct ShardGauges {
    pub routers: AtomicU32,
    pub transports: AtomicU32,
    pub consumers: AtomicU32,
}

/// Runs a [`Shard`] inside the net runtime.
pub(crate) struct ShardAdapter {
    shard: Shard,
    index: usize,
    dispatch: mpsc::Sender<Dispatch>,
    registry: Arc<Registry>,
    gauges: Arc<ShardGauges>,
    /// Where sends from the control path are assembled (their bodies cannot be borrowed).
    staging: Box<[u8; SCRATCH_BYTES]>,
    port_cursor: u32,
    /// Shard-to-shard control messages waiting for room in a full ring (never dropped).
    backlog: VecDeque<(usize, ShardCommand)>,
}

impl ShardAdapter {
    pub fn new(
        info: ShardInfo,
        dispatch: mpsc::Sender<Dispatch>,
        registry: Arc<Registry>,
        gauges: Arc<ShardGauges>,
    ) -> Self {
        let now = Instant::now();
        ShardAdapter {
            shard: Shard::new(now, NtpClock::new(now, SystemTime::now())),
            index: info.index,
            dispatch,
            registry,
            gauges,
            staging: Box::new([0; SCRATCH_BYTES]),
            port_cursor: (info.index as u32).wrapping_mul(7919),
            backlog: VecDeque::new(),
        }
    }

    /// Move the core's messages for other shards onto the rings, keeping order; what does not
    /// fit waits for the next flush.
    fn flush_shard_commands(&mut self, now: Instant, io: &mut Io<'_, Envelope>) {
        while let Some((to, cmd)) = self.shard.poll_shard_command() {
            if to == self.index {
                // Routers linked on this very shard: apply at once (it may queue more).
                self.shard.handle_shard_command(now, to, cmd);
            } else {
                self.backlog.push_back((to, cmd));
            }
        }
        while let Some(&(to, cmd)) = self.backlog.front() {
            let env = Envelope { cmd: Command::Shard { from: self.index, cmd }, reply: None };
            if io.send_to_shard(to, env).is_err() {
                break;
            }
            self.backlog.pop_front();
        }
    }

    fn flush_events(&mut self) {
        while let Some(ev) = self.shard.poll_event() {
            let direct = matches!(ev, Event::DirectRtp { .. } | Event::DirectRtcp { .. });
            if direct && !self.registry.reserve_direct() {
                continue;
            }
            let _ = self.dispatch.send(Dispatch::Event(ev));
        }
    }

    /// Bind one socket on `ip`: on `port` if given, else on a free port of `range` (tried from
    /// a per-shard cursor, so shards do not race for the same ports).
    fn bind_in_range(
        &mut self,
        io: &mut Io<'_, Envelope>,
        protocol: Protocol,
        ip: IpAddr,
        port: Option<u16>,
        range: (u16, u16),
    ) -> Result<BoundSocket> {
        let bind = |io: &mut Io<'_, Envelope>, port: u16| -> std::io::Result<(SocketId, SocketAddr)> {
            let addr = SocketAddr::new(ip, port);
            let s = match protocol {
                Protocol::Udp => io.bind_udp(addr)?,
                Protocol::Tcp => io.listen_tcp(addr)?,
            };
            Ok((s, io.local_addr(s).unwrap_or(addr)))
        };
        if let Some(port) = port {
            return bind(io, port).map_err(|e| Error::other(format!("cannot bind {ip}:{port}: {e}")));
        }
        let (min, max) = range;
        if min > max {
            return Err(Error::type_error("portRange min > max"));
        }
        let span = u32::from(max - min) + 1;
        for _ in 0..span.min(1000) {
            self.port_cursor = self.port_cursor.wrapping_add(2_654_435_761 % span.max(1)).wrapping_add(1);
            let port = min + (self.port_cursor % span) as u16;
            if let Ok(b) = bind(io, port) {
                return Ok(b);
            }
        }
        Err(Error::other(format!("no free port in range {min}-{max}")))
    }

    #[allow(clippy::type_complexity)] // (rtp socket, its address, rtcp socket and address)
    fn bind_plain(
        &mut self,
        io: &mut Io<'_, Envelope>,
        listen: &PlainListen,
    ) -> Result<(SocketId, SocketAddr, Option<BoundSocket>)> {
        let rtp = self.bind_in_range(io, Protocol::Udp, listen.ip, listen.port, listen.port_range)?;
        let rtcp = if listen.rtcp_mux {
            None
        } else {
            match self.bind_in_range(io, Protocol::Udp, listen.ip, Some(0), listen.port_range) {
                Ok(b) => Some(b),
                Err(e) => {
                    io.close_socket(rtp.0);
                    return Err(Error::other(format!("cannot bind RTCP socket: {e}")));
                }
            }
        };
        Ok((rtp.0, rtp.1, rtcp))
    }

    /// Bind every socket of `listen`, or none.
    fn bind_ice(&mut self, io: &mut Io<'_, Envelope>, listen: &[IceListen]) -> Result<Vec<IceSocketSpec>> {
        let mut bound = Vec::with_capacity(listen.len());
        for l in listen {
            match self.bind_in_range(io, l.protocol, l.ip, l.port, l.port_range) {
                Ok((socket, local)) => bound.push(IceSocketSpec { socket, protocol: l.protocol, local }),
                Err(e) => {
                    for b in bound {
                        io.close_socket(b.socket);
                    }
                    return Err(e);
                }
            }
        }
        Ok(bound)
    }

    fn release(io: &mut Io<'_, Envelope>, sockets: &[IceSocketSpec]) {
        for s in sockets {
            io.close_socket(s.socket);
        }
    }

    fn run(&mut self, now: Instant, cmd: Command, io: &mut Io<'_, Envelope>) -> Result<Response> {
        let shard = &mut self.shard;
        match cmd {
            Command::CreateRouter { id } => shard.create_router(id).map(|_| Response::Unit),
            Command::EnsureRouter { id } => match shard.kind_of(id) {
                Some(crate::core::ObjectKind::Router) => Ok(Response::Unit),
                _ => shard.create_router(id).map(|_| Response::Unit),
            },
            Command::CloseRouter { id, reason } => shard.close_router(id, reason).map(|_| Response::Unit),
            Command::CreatePlainTransport { router, id, listen } => {
                if self.shard.kind_of(router).is_none() {
                    return Err(Error::invalid_state(format!("router {router} not found or closed")));
                }
                let (rtp_socket, local, rtcp) = self.bind_plain(io, &listen)?;
                let spec = PlainSpec {
                    rtp_socket,
                    local,
                    rtcp_socket: rtcp.map(|r| r.0),
                    local_rtcp: rtcp.map(|r| r.1),
                    comedia: listen.comedia,
                    rtcp_mux: listen.rtcp_mux,
                };
                match self.shard.create_plain_transport(now, router, id, spec) {
                    Ok(()) => Ok(Response::Plain(PlainBound { local, local_rtcp: rtcp.map(|r| r.1) })),
                    Err(e) => {
                        io.close_socket(rtp_socket);
                        if let Some((s, _)) = rtcp {
                            io.close_socket(s);
                        }
                        Err(e)
                    }
                }
            }
            Command::ConnectPlainTransport { id, remote, remote_rtcp } => {
                shard.connect_plain_transport(id, remote, remote_rtcp).map(|_| Response::Unit)
            }
            Command::CreateDirectTransport { router, id } => {
                shard.create_direct_transport(now, router, id).map(|_| Response::Unit)
            }
            Command::CloseTransport { id } => shard.close_transport(id).map(|_| Response::Unit),
            Command::CreateWebRtcServer { id, listen } => {
                let bound = self.bind_ice(io, &listen)?;
                let addrs = bound.iter().map(|b| (b.protocol, b.local)).collect();
                match self.shard.create_webrtc_server(id, bound.clone()) {
                    Ok(()) => Ok(Response::Ice(addrs)),
                    Err(e) => {
                        Self::release(io, &bound);
                        Err(e)
                    }
                }
            }
            Command::CloseWebRtcServer { id } => shard.close_webrtc_server(id).map(|_| Response::Unit),
            Command::CreateWebRtcTransport { router, id, listen, mut spec } => {
                if self.shard.kind_of(router).is_none() {
                    return Err(Error::invalid_state(format!("router {router} not found or closed")));
                }
                let bound = self.bind_ice(io, &listen)?;
                let addrs = bound.iter().map(|b| (b.protocol, b.local)).collect();
                spec.sockets = bound.clone();
                match self.shard.create_webrtc_transport(now, router, id, *spec) {
                    Ok(()) => Ok(Response::Ice(addrs)),
                    Err(e) => {
                        Self::release(io, &bound);
                        Err(e)
                    }
                }
            }
            Command::ConnectWebRtcTransport { id, role, fingerprints } => {
                let mut sink = Staging { io, buf: &mut self.staging };
                shard.connect_webrtc_transport(now, id, role, fingerprints, &mut sink).map(Response::DtlsRole)
            }
            Command::RestartIce { id, ufrag, password } => {
                shard.restart_ice(now, id, ufrag, password).map(|_| Response::Unit)
            }
            Command::Produce { transport, id, spec } => {
                shard.produce(now, transport, id, *spec).map(|_| Response::Unit)
            }
            // The reply carries the new consumer's state: `producerPaused` as the shard applied it.
            Command::Consume { transport, id, spec } => {
                shard.consume(now, transport, id, *spec).and_then(|_| shard.snapshot(id)).map(Response::Snapshot)
            }
            Command::PauseProducer { id } => shard.pause_producer(id).map(|_| Response::Unit),
            Command::ResumeProducer { id } => shard.resume_producer(now, id).map(|_| Response::Unit),
            Command::CloseProducer { id } => shard.close_producer(id).map(|_| Response::Unit),
            Command::PauseConsumer { id } => shard.pause_consumer(id).map(|_| Response::Unit),
            Command::ResumeConsumer { id } => shard.resume_consumer(now, id).map(|_| Response::Unit),
            Command::CloseConsumer { id } => shard.close_consumer(id).map(|_| Response::Unit),
            Command::RequestKeyFrame { id } => shard.consumer_request_key_frame(now, id).map(|_| Response::Unit),
            Command::DirectRtp { producer, mut packet } => {
                let mut sink = Staging { io, buf: &mut self.staging };
                shard.handle_direct_rtp(now, producer, &mut packet, &mut sink).map(|_| Response::Unit)
            }
            Command::DirectRtcp { transport, mut packet } => {
                let mut sink = Staging { io, buf: &mut self.staging };
                shard.handle_direct_rtcp(now, transport, &mut packet, &mut sink).map(|_| Response::Unit)
            }
            Command::Snapshot { id } => shard.snapshot(id).map(Response::Snapshot),
            Command::ShardSnapshot => Ok(Response::Shard(shard.shard_snapshot())),
            Command::CreateMirror { router, producer, origin, mirror_of, spec } => {
                shard.create_mirror(now, router, producer, origin, mirror_of, *spec).map(|_| Response::Unit)
            }
            Command::CreatePipeConsumer { router, id, producer, rtp_parameters, shard: to, mirror } => shard
                .create_pipe_consumer(now, router, id, producer, *rtp_parameters, to, mirror)
                .map(|_| Response::Unit),
            Command::AddSubscriber { producer, shard: to, mirror } => {
                shard.add_subscriber(producer, to, mirror).map(|_| Response::Unit)
            }
            Command::Shard { from, cmd } => {
                shard.handle_shard_command(now, from, cmd);
                Ok(Response::Unit)
            }
        }
    }

    fn after_control(&mut self, now: Instant, io: &mut Io<'_, Envelope>) {
        for (socket, dest, bytes) in self.shard.take_control_tx() {
            io.send(socket, dest, &bytes, &[]);
        }
        let mut sink = Staging { io, buf: &mut self.staging };
        self.shard.send_key_frame_requests(now, &mut sink);
        for s in self.shard.take_released_sockets() {
            io.close_socket(s);
        }
        self.flush_shard_commands(now, io);
        let counts = self.shard.object_counts();
        self.gauges.routers.store(counts.routers, Ordering::Relaxed);
        self.gauges.transports.store(counts.transports, Ordering::Relaxed);
        self.gauges.consumers.store(counts.consumers, Ordering::Relaxed);
    }
}

/// Sink for the control path: head and body are copied together, since nothing borrowed from a
/// command outlives it.
struct Staging<'x, 'io> {
    io: &'x mut Io<'io, Envelope>,
    buf: &'x mut [u8; SCRATCH_BYTES],
}

impl<'a> Sink<'a> for Staging<'_, '_> {
    fn send(&mut self, socket: SocketId, dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        let n = head.len() + body.len();
        if n > self.buf.len() {
            return;
        }
        self.buf[..head.len()].copy_from_slice(head);
        self.buf[head.len()..n].copy_from_slice(body);
        self.io.send(socket, dest, &self.buf[..n], &[]);
    }

    fn to_shard(&mut self, shard: usize, head: &[u8], body: &[u8]) -> bool {
        self.io.forward_to_shard(shard, head, body)
    }
}

/// Sink for the packet path: bodies stay borrowed from the receive buffer until the batch flush.
struct Direct<'x, 'a> {
    io: &'x mut Io<'a, Envelope>,
}

impl<'a> Sink<'a> for Direct<'_, 'a> {
    #[inline]
    fn send(&mut self, socket: SocketId, dest: SocketAddr, head: &[u8], body: &'a [u8]) {
        self.io.send(socket, dest, head, body);
    }

    #[inline]
    fn to_shard(&mut self, shard: usize, head: &[u8], body: &[u8]) -> bool {
        self.io.forward_to_shard(shard, head, body)
    }

    #[inline]
    fn send_with(
        &mut self,
        socket: SocketId,
        dest: SocketAddr,
        max_len: usize,
        write: &mut dyn FnMut(&mut [u8]) -> usize,
    ) {
        self.io.send_with(socket, dest, max_len, write);
    }

    /// Sealed at the flush (net's staging buffer), not here.
    #[inline]
    fn send_sealed(
        &mut self,
        socket: SocketId,
        dest: SocketAddr,
        head: &[u8],
        body: &'a [u8],
        seal: std::rc::Rc<dyn shardsfu_net::Seal>,
    ) -> bool {
        self.io.send_sealed(socket, dest, head, body, seal);
        true
    }
}

impl ShardService for ShardAdapter {
    type Command = Envelope;

    fn on_command(&mut self, now: Instant, env: Envelope, io: &mut Io<'_, Envelope>) {
        let result = self.run(now, env.cmd, io);
        self.after_control(now, io);
        self.flush_events();
        if let Some(reply) = env.reply {
            let _ = self.dispatch.send(Dispatch::Reply(Box::new(move || reply.send(result))));
        }
    }

    #[inline]
    fn on_datagram<'a>(
        &mut self,
        now: Instant,
        socket: SocketId,
        src: SocketAddr,
        data: &'a mut [u8],
        io: &mut Io<'a, Envelope>,
    ) {
        self.shard.handle_datagram(now, socket, src, data, &mut Direct { io });
        if self.shard.has_events() {
            self.flush_events();
        }
    }

    #[inline]
    fn on_shard_datagram<'a>(&mut self, now: Instant, from: usize, data: &'a mut [u8], io: &mut Io<'a, Envelope>) {
        self.shard.handle_shard_record(now, from, data, &mut Direct { io });
        if self.shard.has_events() {
            self.flush_events();
        }
    }

    fn on_flush(&mut self, now: Instant, io: &mut Io<'_, Envelope>) {
        if self.shard.has_shard_commands() || !self.backlog.is_empty() {
            self.flush_shard_commands(now, io);
            self.flush_events();
        }
        if self.shard.has_released_sockets() {
            for s in self.shard.take_released_sockets() {
                io.close_socket(s);
            }
        }
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.shard.poll_timeout()
    }

    fn on_timeout(&mut self, now: Instant, io: &mut Io<'_, Envelope>) {
        let mut sink = Staging { io, buf: &mut self.staging };
        self.shard.handle_timeout(now, &mut sink);
        self.flush_events();
    }

    fn on_tcp_accept(
        &mut self,
        _now: Instant,
        listener: SocketId,
        conn: SocketId,
        _remote: SocketAddr,
        io: &mut Io<'_, Envelope>,
    ) {
        // A connection on a listener no transport or server owns any more is closed at once.
        if !self.shard.tcp_accepted(listener, conn) {
            io.close_socket(conn);
        }
    }

    fn on_tcp_closed(&mut self, now: Instant, conn: SocketId, _io: &mut Io<'_, Envelope>) {
        self.shard.tcp_closed(now, conn);
        self.flush_events();
    }

    fn on_stop(&mut self, _now: Instant, io: &mut Io<'_, Envelope>) {
        for s in self.shard.take_released_sockets() {
            io.close_socket(s);
        }
    }
}
