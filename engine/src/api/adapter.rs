//! The adapter that runs the sans-IO core on a shard of the `shardsfu-net` runtime: it applies
//! [`Command`]s from the API, feeds datagrams and inter-shard records to the core, and carries
//! the core's output (datagrams, events, messages for other shards) out.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use shardsfu_net::{Io, ShardInfo, ShardService, SocketId};

use super::command::{Command, Envelope, IceListen, PlainBound, PlainListen, Response};
use super::dispatch::{Dispatch, Registry};
use crate::core::{IceSocketSpec, NtpClock, PlainSpec, Shard, ShardCommand, Sink, SCRATCH_BYTES};
use crate::error::{Error, Result};
use crate::placement::ReportedObjects;
use crate::Protocol;

/// A bound UDP socket and its local address.
type BoundSocket = (SocketId, SocketAddr);

/// Runs a [`Shard`] inside the net runtime.
pub(crate) struct ShardAdapter {
    shard: Shard,
    index: usize,
    dispatch: mpsc::Sender<Dispatch>,
    registry: Arc<Registry>,
    /// Where sends from the control path are assembled (their bodies cannot be borrowed).
    staging: Box<[u8; SCRATCH_BYTES]>,
    port_cursor: u32,
    /// Control messages on their way to other shards.
    outbox: Outbox,
    /// Creation commands received, by [`Creates`] kind (reported for placement).
    creates_received: [u32; 3],
}

/// Lossy shard-to-shard messages (key frame requests, scores) that may wait for one target.
pub(crate) const MAX_LOSSY_BACKLOG: usize = 1024;

/// Shard-to-shard control messages on their way to other shards' rings. A message goes at once
/// when nothing waits for its target; otherwise it waits behind the others for that target (in
/// order; a full ring holds up only its own shard's messages). State messages (pause, close, ...)
/// are never dropped; lossy ones are, past `MAX_LOSSY_BACKLOG` waiting for one target.
/// What a ring send gives back: the command itself when the ring is full.
pub(crate) type SendResult = std::result::Result<(), ShardCommand>;

pub(crate) struct Outbox {
    waiting: Vec<Waiting>,
    /// Targets with messages waiting.
    backlogged: usize,
}

#[derive(Default)]
struct Waiting {
    queue: VecDeque<ShardCommand>,
    /// How many of them are lossy.
    lossy: usize,
}

impl Outbox {
    pub fn new(shards: usize) -> Self {
        Outbox { waiting: (0..shards).map(|_| Waiting::default()).collect(), backlogged: 0 }
    }

    /// Sends `cmd` to shard `to` with `send` (which hands it back when the ring is full), or
    /// queues it. False when it was dropped (lossy, and too many wait for `to`).
    pub fn send(
        &mut self,
        to: usize,
        cmd: ShardCommand,
        send: &mut impl FnMut(usize, ShardCommand) -> SendResult,
    ) -> bool {
        let Some(w) = self.waiting.get_mut(to) else { return false };
        let cmd = if w.queue.is_empty() {
            match send(to, cmd) {
                Ok(()) => return true,
                Err(cmd) => {
                    self.backlogged += 1;
                    cmd
                }
            }
        } else if cmd.is_lossy() && w.lossy >= MAX_LOSSY_BACKLOG {
            return false;
        } else {
            cmd
        };
        w.lossy += usize::from(cmd.is_lossy());
        w.queue.push_back(cmd);
        true
    }

    /// Sends what waits, in order, as far as the rings take it.
    pub fn retry(&mut self, send: &mut impl FnMut(usize, ShardCommand) -> SendResult) {
        if self.backlogged == 0 {
            return;
        }
        for (to, w) in self.waiting.iter_mut().enumerate() {
            let was_waiting = !w.queue.is_empty();
            while let Some(cmd) = w.queue.pop_front() {
                let lossy = cmd.is_lossy();
                if let Err(cmd) = send(to, cmd) {
                    w.queue.push_front(cmd);
                    break;
                }
                w.lossy -= usize::from(lossy);
            }
            if was_waiting && w.queue.is_empty() {
                self.backlogged -= 1;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.backlogged == 0
    }
}

impl ShardAdapter {
    pub fn new(info: ShardInfo, dispatch: mpsc::Sender<Dispatch>, registry: Arc<Registry>) -> Self {
        let now = Instant::now();
        ShardAdapter {
            shard: Shard::new(now, NtpClock::new(now, SystemTime::now())),
            index: info.index,
            dispatch,
            registry,
            staging: Box::new([0; SCRATCH_BYTES]),
            port_cursor: (info.index as u32).wrapping_mul(7919),
            outbox: Outbox::new(info.count),
            creates_received: [0; 3],
        }
    }

    /// Move the core's messages for other shards onto the rings, keeping order; what does not
    /// fit waits for the next flush.
    fn flush_shard_commands(&mut self, now: Instant, io: &mut Io<'_, Envelope>) {
        let from = self.index;
        let mut send = |to: usize, cmd| {
            io.send_to_shard(to, Envelope { cmd: Command::Shard { from, cmd }, reply: None }).map_err(|e| match e.cmd {
                Command::Shard { cmd, .. } => cmd,
                _ => unreachable!("we sent a shard command"),
            })
        };
        while let Some((to, cmd)) = self.shard.poll_shard_command() {
            if to == self.index {
                // Routers linked on this very shard: apply at once (it may queue more).
                self.shard.handle_shard_command(now, to, cmd);
            } else if !self.outbox.send(to, cmd, &mut send) {
                self.shard.count_drop(crate::core::DropReason::ShardCommandBacklog);
            }
        }
        self.outbox.retry(&mut send);
    }

    fn flush_events(&mut self) {
        while let Some(ev) = self.shard.poll_event() {
            if ev.is_direct() && !self.registry.reserve_direct() {
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
            Command::SetMaxIncomingBitrate { id, bps } => {
                shard.set_max_incoming_bitrate(id, bps).map(|_| Response::Unit)
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
            Command::ProduceData { transport, id, paused } => {
                shard.produce_data(transport, id, paused).map(|_| Response::Unit)
            }
            // The reply carries `dataProducerPaused` as the shard applied it.
            Command::ConsumeData { transport, id, data_producer, paused, subchannels } => shard
                .consume_data(transport, id, data_producer, paused, subchannels)
                .and_then(|_| shard.snapshot(id))
                .map(Response::Snapshot),
            Command::PauseDataProducer { id } => shard.pause_data_producer(id).map(|_| Response::Unit),
            Command::ResumeDataProducer { id } => shard.resume_data_producer(id).map(|_| Response::Unit),
            Command::CloseDataProducer { id } => shard.close_data_producer(id).map(|_| Response::Unit),
            Command::PauseDataConsumer { id } => shard.pause_data_consumer(id).map(|_| Response::Unit),
            Command::ResumeDataConsumer { id } => shard.resume_data_consumer(id).map(|_| Response::Unit),
            Command::CloseDataConsumer { id } => shard.close_data_consumer(id).map(|_| Response::Unit),
            Command::SetDataConsumerSubchannels { id, subchannels } => {
                shard.set_data_consumer_subchannels(id, subchannels).map(|_| Response::Unit)
            }
            Command::DataSend { data_producer, message } => {
                shard.data_send(data_producer, message).map(|_| Response::Unit)
            }
            Command::CreateDataMirror { router, data_producer, origin, mirror_of, paused } => {
                shard.create_data_mirror(now, router, data_producer, origin, mirror_of, paused).map(|_| Response::Unit)
            }
            Command::CreatePipeDataConsumer { router, id, data_producer, shard: to, mirror } => {
                shard.create_pipe_data_consumer(now, router, id, data_producer, to, mirror).map(|_| Response::Unit)
            }
            Command::AddDataSubscriber { data_producer, shard: to, mirror } => {
                shard.add_data_subscriber(data_producer, to, mirror).map(|_| Response::Unit)
            }
            Command::CreateObserver { router, id, spec } => {
                shard.create_observer(now, router, id, spec).map(|_| Response::Unit)
            }
            Command::ObserverAddProducer { id, producer } => {
                shard.observer_add_producer(id, producer).map(|_| Response::Unit)
            }
            Command::ObserverRemoveProducer { id, producer } => {
                shard.observer_remove_producer(id, producer).map(|_| Response::Unit)
            }
            Command::PauseObserver { id } => shard.pause_observer(id).map(|_| Response::Unit),
            Command::ResumeObserver { id } => shard.resume_observer(now, id).map(|_| Response::Unit),
            Command::CloseObserver { id } => shard.close_observer(id).map(|_| Response::Unit),
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

    /// Sent with each load report, for placement ([`LoadBoard`](crate::placement::LoadBoard)):
    /// the objects here now, then the creation commands received so far (wrapping).
    fn load_figures(&self) -> [u32; 8] {
        let counts = self.shard.object_counts();
        ReportedObjects {
            routers: counts.routers,
            transports: counts.transports,
            consumers: counts.consumers,
            producers: counts.producers,
            received: self.creates_received,
        }
        .to_figures()
    }

    fn on_command(&mut self, now: Instant, env: Envelope, io: &mut Io<'_, Envelope>) {
        if let Some(kind) = env.cmd.creates() {
            let n = &mut self.creates_received[kind as usize];
            *n = n.wrapping_add(1);
        }
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
        if self.shard.has_shard_commands() || !self.outbox.is_empty() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ObjectId;

    fn pause(mirror: ObjectId) -> ShardCommand {
        ShardCommand::MirrorPaused { mirror, paused: true }
    }

    fn key_frame(source: ObjectId) -> ShardCommand {
        ShardCommand::KeyFrameRequest { source }
    }

    #[test]
    fn a_full_ring_holds_up_only_its_own_shard_and_order_is_kept() {
        let mut outbox = Outbox::new(3);
        let mut sent = Vec::new();
        let mut ring_1_full = true;
        let send = |to: usize, cmd, full: bool, sent: &mut Vec<(usize, ShardCommand)>| {
            if to == 1 && full {
                return Err(cmd);
            }
            sent.push((to, cmd));
            Ok(())
        };
        for (to, cmd) in [(1, pause(1)), (2, pause(2)), (1, key_frame(3)), (2, pause(4))] {
            assert!(outbox.send(to, cmd, &mut |t, c| send(t, c, ring_1_full, &mut sent)));
        }
        assert_eq!(sent, vec![(2, pause(2)), (2, pause(4))], "shard 2 is not held up by shard 1");
        assert!(!outbox.is_empty());
        outbox.retry(&mut |t, c| send(t, c, ring_1_full, &mut sent));
        assert_eq!(sent.len(), 2, "still full");
        ring_1_full = false;
        outbox.retry(&mut |t, c| send(t, c, ring_1_full, &mut sent));
        assert_eq!(sent[2..], [(1, pause(1)), (1, key_frame(3))], "in order");
        assert!(outbox.is_empty());
    }

    #[test]
    fn lossy_messages_are_bounded_state_messages_are_not() {
        let mut outbox = Outbox::new(2);
        let mut full = |_: usize, c: ShardCommand| Err(c);
        assert!(outbox.send(1, pause(0), &mut full));
        for i in 0..MAX_LOSSY_BACKLOG as ObjectId {
            assert!(outbox.send(1, key_frame(i), &mut full));
        }
        assert!(!outbox.send(1, key_frame(9999), &mut full), "one lossy message too many");
        let score = ShardCommand::MirrorScore { mirror: 1, scores: crate::core::CarriedScores::default() };
        assert!(!outbox.send(1, score, &mut full));
        for i in 0..3 * MAX_LOSSY_BACKLOG as ObjectId {
            assert!(outbox.send(1, pause(i), &mut full), "a state message is never dropped");
        }
        let mut got = Vec::new();
        outbox.retry(&mut |_, c| {
            got.push(c);
            Ok(())
        });
        assert_eq!(got.len(), 1 + MAX_LOSSY_BACKLOG + 3 * MAX_LOSSY_BACKLOG);
        assert_eq!(got.iter().filter(|c| c.is_lossy()).count(), MAX_LOSSY_BACKLOG);
        // Room again for lossy ones.
        assert!(outbox.send(1, key_frame(1), &mut full));
        assert!(!outbox.send(5, pause(1), &mut full), "no such shard");
    }
}
