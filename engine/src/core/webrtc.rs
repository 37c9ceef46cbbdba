//! WebRtcTransport and WebRtcServer on a shard: the sans-IO layers of [`crate::webrtc`] (ICE-lite,
//! DTLS, SRTP) wired into the packet path.
//!
//! Demultiplexing, as mediasoup does it, in one mechanism for both kinds of sockets:
//! - A socket of a WebRtcTransport's own (`listenInfos`) routes to that transport; a socket of a
//!   WebRtcServer routes to no transport by itself.
//! - STUN finds its transport by the socket when the socket is the transport's own, else by the
//!   local username fragment (`USERNAME = local:remote`) among the transports of this shard.
//!   ICE decides whether the request authenticates; a tuple it validates is recorded here as
//!   (socket, remote address) -> transport.
//! - DTLS, SRTP and SRTCP are accepted only from a recorded tuple (the 5-tuple demux), else they
//!   are dropped and counted (`UnknownSource`): media never reaches a transport by address
//!   guessing.
//!
//! A WebRtcServer is shard-local: each shard binds its own sockets for it (see
//! `api::webrtc_server` for the ports), so a transport's candidates are those of its own shard and
//! no packet ever has to cross shards to find its transport.
//!
//! DTLS starts once `connect()` gave the remote parameters and ICE selected a tuple (a client
//! sends its first flight there). When it connects, its exported keys make the inbound and
//! outbound SRTP sessions, the transport's consumers get a `Target::Srtp` and each asks its
//! producer for a key frame (the ones sent before had nowhere to go).
//!
//! ICE-TCP connections (accepted by the I/O layer on a passive listener, framed with RFC 4571
//! there) are sockets like any other here: each routes like the listener it came from, and a
//! tuple on it is a TCP tuple.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardsfu_net::{Seal, SocketId};

use super::objects::{Target, TransportKind};
use super::{DropReason, Event, ObjectId, ObjectKind, Shard, Sink};
use crate::error::{Error, Result};
use crate::rtp::{classify, PacketKind};
use crate::webrtc::cert::{DtlsCertificate, DtlsFingerprint, DtlsRole, DtlsState};
use crate::webrtc::dtls::{resolve_role, DtlsEvent, DtlsSession, DtlsSide};
use crate::webrtc::ice::{IceEvent, IceServer, IceState, IceTuple};
use crate::webrtc::srtp::{SrtpError, SrtpProfile, SrtpSession};
use crate::Protocol;

/// SRTP profiles offered in DTLS, in mediasoup's order of preference.
pub const SRTP_PROFILES: [SrtpProfile; 4] = [
    SrtpProfile::AeadAes256Gcm,
    SrtpProfile::AeadAes128Gcm,
    SrtpProfile::AesCm128HmacSha1_80,
    SrtpProfile::AesCm128HmacSha1_32,
];
/// Sockets (UDP sockets and TCP listeners) one WebRtcTransport or WebRtcServer may own.
pub const MAX_WEBRTC_SOCKETS: usize = 16;
/// Username fragments kept per transport: the current one and the one before an ICE restart.
const UFRAGS_KEPT: usize = 2;

/// Where a datagram on a socket goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SocketRoute {
    /// A PlainTransport's RTP (or, `rtcp`, RTCP) socket.
    Plain { transport: u32, rtcp: bool },
    /// A WebRtcTransport's or WebRtcServer's socket, or an ICE-TCP connection accepted on one.
    Ice(IceSocket),
}

/// One ICE socket: its local address, protocol, and owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct IceSocket {
    pub local: SocketAddr,
    pub protocol: Protocol,
    /// The transport whose own socket this is; `None` for a server's socket.
    pub transport: Option<u32>,
    /// The server whose socket this is.
    pub server: Option<ObjectId>,
    /// A TCP listener: takes connections, never datagrams.
    pub listener: bool,
}

/// One socket the adapter bound for a transport or a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceSocketSpec {
    pub socket: SocketId,
    pub protocol: Protocol,
    pub local: SocketAddr,
}

/// A new WebRtcTransport (sockets already bound by the adapter, credentials drawn by the API).
#[derive(Debug, Clone)]
pub struct WebRtcSpec {
    /// Its own sockets (`listenInfos`); empty with a server.
    pub sockets: Vec<IceSocketSpec>,
    /// The WebRtcServer it listens through.
    pub server: Option<ObjectId>,
    pub ufrag: String,
    pub password: String,
    /// mediasoup's `iceConsentTimeout` (zero disables consent checks).
    pub consent_timeout: Duration,
    pub certificate: Arc<DtlsCertificate>,
    /// SRTP profiles offered (or accepted) in DTLS, in order of preference; empty means
    /// [`SRTP_PROFILES`].
    pub srtp_profiles: Vec<SrtpProfile>,
}

/// The remote side's DTLS parameters, from `connect()`.
#[derive(Debug, Clone)]
pub struct RemoteDtls {
    pub side: DtlsSide,
    pub fingerprints: Vec<DtlsFingerprint>,
}

/// A WebRtcTransport's state on its shard.
#[derive(Debug)]
pub struct WebRtcState {
    pub ice: IceServer,
    pub certificate: Arc<DtlsCertificate>,
    pub srtp_profiles: Vec<SrtpProfile>,
    pub remote: Option<RemoteDtls>,
    pub dtls: Option<DtlsSession>,
    pub dtls_state: DtlsState,
    pub srtp_profile: Option<SrtpProfile>,
    /// Unprotects what the remote sends.
    pub srtp_in: Option<SrtpSession>,
    /// Protects what we send.
    pub srtp_out: Option<SrtpOut>,
    /// Where media goes: the socket and remote address of ICE's selected tuple.
    pub selected: Option<(SocketId, SocketAddr)>,
    /// The tuples ICE validated, with the socket each came on.
    pub tuples: Vec<(IceTuple, SocketId)>,
    pub server: Option<ObjectId>,
    /// Username fragments registered in the shard's table, newest last.
    pub ufrags: Vec<String>,
}

impl WebRtcState {
    /// Where RTP and RTCP go: the selected tuple once SRTP has keys.
    pub fn target(&self, tkey: u32) -> Target {
        match (self.srtp_out.is_some(), self.selected) {
            (true, Some((socket, dest))) => Target::Srtp { socket, dest, transport: tkey },
            _ => Target::None,
        }
    }
}

/// The outbound SRTP context of a WebRtcTransport, shared with the shard's transmit queue: RTP
/// packets are queued unprotected with an `Rc` of it and sealed at the flush (see
/// `shardsfu_net::Seal`), so it lives as long as a queued packet even if the transport closes
/// first. RTCP is protected on the spot. The `RefCell` is borrowed for one protect call at a
/// time, never across a call into the sink (which may flush, and so seal).
///
/// Sealing at the flush keeps SRTP's per-SSRC state (rollover counter, highest sequence number)
/// right: net seals the datagrams of one socket in the order they were queued, and one
/// consumer's SSRC always goes out through its transport's one selected socket. Where the order
/// does change (a tuple switch between two flushes' worth of packets, or a packet protected on
/// the spot by a control-path sink while older ones wait in the queue), the index estimate of
/// RFC 3711 §3.3.1 takes packets out of order, as a receiver does.
#[derive(Debug, Clone)]
pub struct SrtpOut(Rc<SrtpSealer>);

#[derive(Debug)]
struct SrtpSealer {
    session: RefCell<SrtpSession>,
    profile: SrtpProfile,
    rtp_overhead: usize,
}

impl Seal for SrtpSealer {
    #[inline]
    fn seal(&self, head: &[u8], body: &[u8], out: &mut [u8]) -> Option<usize> {
        // A failed borrow (never expected) drops the packet like a failed protect.
        self.session.try_borrow_mut().ok()?.protect_rtp_parts(head, body, out).ok()
    }

    #[inline]
    fn overhead(&self) -> usize {
        self.rtp_overhead
    }
}

impl SrtpOut {
    pub fn new(session: SrtpSession) -> SrtpOut {
        let profile = session.profile();
        SrtpOut(Rc::new(SrtpSealer { session: RefCell::new(session), profile, rtp_overhead: profile.rtp_overhead() }))
    }

    pub fn profile(&self) -> SrtpProfile {
        self.0.profile
    }

    /// What RTP packets are sealed with (a new handle to the shared context).
    #[inline]
    pub fn sealer(&self) -> Rc<dyn Seal> {
        self.0.clone()
    }

    /// [`SrtpSession::protect_rtcp`], on the spot. (The context is only ever borrowed for one
    /// protect call on this thread, so the borrow cannot fail; if it did, the packet is dropped
    /// as a failed protect.)
    pub fn protect_rtcp(&self, plain: &[u8], out: &mut [u8]) -> std::result::Result<usize, SrtpError> {
        self.0.session.try_borrow_mut().map_err(|_| SrtpError::BufferTooSmall)?.protect_rtcp(plain, out)
    }
}

/// The local username fragment of a STUN request (`USERNAME = local:remote`), found without
/// decoding the message (ICE authenticates it afterwards).
pub fn stun_local_ufrag(bytes: &[u8]) -> Option<&[u8]> {
    const ATTR_USERNAME: u16 = 0x0006;
    const HEADER: usize = 20;
    let len = usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]));
    let end = (HEADER + len).min(bytes.len());
    let mut at = HEADER;
    while at + 4 <= end {
        let typ = u16::from_be_bytes([bytes[at], bytes[at + 1]]);
        let alen = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        let value = bytes.get(at + 4..at + 4 + alen)?;
        if typ == ATTR_USERNAME {
            let colon = value.iter().position(|&b| b == b':')?;
            return Some(&value[..colon]);
        }
        at += 4 + alen.div_ceil(4) * 4;
    }
    None
}

/// A TCP connection carries one tuple: when the tuple goes, the connection is released (a UDP
/// socket or a listener stays).
fn release_tcp_tuple(
    sockets: &mut super::FastMap<SocketId, SocketRoute>,
    released: &mut Vec<SocketId>,
    tuple: &IceTuple,
    socket: SocketId,
) {
    if tuple.protocol == Protocol::Tcp && matches!(sockets.get(&socket), Some(SocketRoute::Ice(r)) if !r.listener) {
        sockets.remove(&socket);
        released.push(socket);
    }
}

/// Count an SRTP failure by its reason.
fn srtp_drop(error: SrtpError) -> DropReason {
    match error {
        SrtpError::Auth => DropReason::SrtpAuthFailed,
        SrtpError::Replay => DropReason::SrtpReplay,
        _ => DropReason::SrtpOther,
    }
}

impl Shard {
    fn register_ice_sockets(&mut self, sockets: &[IceSocketSpec], transport: Option<u32>, server: Option<ObjectId>) {
        for s in sockets {
            let route = IceSocket {
                local: s.local,
                protocol: s.protocol,
                transport,
                server,
                listener: s.protocol == Protocol::Tcp,
            };
            self.sockets.insert(s.socket, SocketRoute::Ice(route));
        }
    }

    fn check_free_sockets(&self, sockets: &[IceSocketSpec]) -> Result<()> {
        if sockets.len() > MAX_WEBRTC_SOCKETS {
            return Err(Error::type_error(format!("at most {MAX_WEBRTC_SOCKETS} listen infos")));
        }
        for (i, s) in sockets.iter().enumerate() {
            if self.sockets.contains_key(&s.socket) || sockets[..i].iter().any(|o| o.socket == s.socket) {
                return Err(Error::type_error("socket already used"));
            }
        }
        Ok(())
    }

    /// mediasoup's `worker.createWebRtcServer()`, this shard's part: its own sockets.
    pub fn create_webrtc_server(&mut self, id: ObjectId, sockets: Vec<IceSocketSpec>) -> Result<()> {
        if self.webrtc_servers.contains_key(&id) || self.ids.contains_key(&id) {
            return Err(Error::type_error(format!("object id {id} already exists")));
        }
        self.check_free_sockets(&sockets)?;
        self.register_ice_sockets(&sockets, None, Some(id));
        self.webrtc_servers.insert(id, sockets.iter().map(|s| s.socket).collect());
        Ok(())
    }

    /// Close this shard's part of a WebRtcServer: its transports close with `listenserverclose`,
    /// its sockets and the connections accepted on them are released.
    pub fn close_webrtc_server(&mut self, id: ObjectId) -> Result<()> {
        let sockets = self
            .webrtc_servers
            .remove(&id)
            .ok_or_else(|| Error::invalid_state(format!("WebRtcServer {id} not found or closed")))?;
        let users: Vec<u32> = (0..self.transports.key_bound())
            .filter(|&k| {
                matches!(self.transports.get(k).map(|t| &t.kind), Some(TransportKind::WebRtc(w)) if w.server == Some(id))
            })
            .collect();
        for tkey in users {
            self.close_transport_key(tkey, Some(super::CloseReason::ListenServerClosed));
        }
        let conns: Vec<SocketId> = self
            .sockets
            .iter()
            .filter(|(_, r)| matches!(r, SocketRoute::Ice(i) if i.server == Some(id)))
            .map(|(s, _)| *s)
            .collect();
        for s in sockets.into_iter().chain(conns) {
            if self.sockets.remove(&s).is_some() {
                self.released_sockets.push(s);
            }
        }
        Ok(())
    }

    /// mediasoup's `router.createWebRtcTransport()` on this shard.
    pub fn create_webrtc_transport(
        &mut self,
        now: Instant,
        router: ObjectId,
        id: ObjectId,
        spec: WebRtcSpec,
    ) -> Result<()> {
        if spec.sockets.is_empty() == spec.server.is_none() {
            return Err(Error::type_error("a WebRtcTransport needs either its own sockets or a WebRtcServer"));
        }
        if let Some(server) = spec.server {
            if !self.webrtc_servers.contains_key(&server) {
                return Err(Error::invalid_state(format!("WebRtcServer {server} not found or closed")));
            }
        }
        if !crate::webrtc::ice::valid_credentials(&spec.ufrag, &spec.password) {
            return Err(Error::type_error("invalid ICE credentials"));
        }
        if self.ice_ufrags.contains_key(&spec.ufrag) {
            return Err(Error::type_error("ICE username fragment already in use"));
        }
        self.check_free_sockets(&spec.sockets)?;
        let state = WebRtcState {
            ice: IceServer::new(spec.ufrag.clone(), spec.password, spec.consent_timeout),
            certificate: spec.certificate,
            srtp_profiles: if spec.srtp_profiles.is_empty() { SRTP_PROFILES.to_vec() } else { spec.srtp_profiles },
            remote: None,
            dtls: None,
            dtls_state: DtlsState::New,
            srtp_profile: None,
            srtp_in: None,
            srtp_out: None,
            selected: None,
            tuples: Vec::new(),
            server: spec.server,
            ufrags: vec![spec.ufrag.clone()],
        };
        let tkey = self.insert_transport(now, router, id, TransportKind::WebRtc(Box::new(state)))?;
        self.register_ice_sockets(&spec.sockets, Some(tkey), None);
        self.ice_ufrags.insert(spec.ufrag, tkey);
        Ok(())
    }

    fn webrtc_key(&self, id: ObjectId) -> Result<u32> {
        let tkey = self
            .key(id, ObjectKind::Transport)
            .ok_or_else(|| Error::invalid_state(format!("transport {id} not found or closed")))?;
        match self.transports.get(tkey).map(|t| &t.kind) {
            Some(TransportKind::WebRtc(_)) => Ok(tkey),
            _ => Err(Error::type_error("not a WebRtcTransport")),
        }
    }

    fn webrtc_mut(&mut self, tkey: u32) -> Option<&mut WebRtcState> {
        match self.transports.get_mut(tkey).map(|t| &mut t.kind) {
            Some(TransportKind::WebRtc(w)) => Some(w),
            _ => None,
        }
    }

    /// mediasoup's `webRtcTransport.connect({ dtlsParameters })`. Returns our resolved role.
    pub fn connect_webrtc_transport<'a>(
        &mut self,
        now: Instant,
        id: ObjectId,
        remote_role: Option<DtlsRole>,
        fingerprints: Vec<DtlsFingerprint>,
        out: &mut impl Sink<'a>,
    ) -> Result<DtlsRole> {
        let tkey = self.webrtc_key(id)?;
        let w = self.webrtc_mut(tkey).expect("checked");
        if w.remote.is_some() {
            return Err(Error::invalid_state("connect() already called"));
        }
        if fingerprints.is_empty() {
            return Err(Error::type_error("missing dtlsParameters.fingerprints"));
        }
        let side = resolve_role(DtlsRole::Auto, remote_role)?;
        w.remote = Some(RemoteDtls { side, fingerprints });
        self.maybe_start_dtls(now, tkey, out);
        Ok(side.into())
    }

    /// mediasoup's `webRtcTransport.restartIce()` with credentials the API drew.
    pub fn restart_ice(&mut self, now: Instant, id: ObjectId, ufrag: String, password: String) -> Result<()> {
        let tkey = self.webrtc_key(id)?;
        if self.ice_ufrags.contains_key(&ufrag) {
            return Err(Error::type_error("ICE username fragment already in use"));
        }
        let w = self.webrtc_mut(tkey).expect("checked");
        w.ice.restart(now, ufrag.clone(), password)?;
        w.ufrags.push(ufrag.clone());
        let dropped: Vec<String> = if w.ufrags.len() > UFRAGS_KEPT {
            w.ufrags.drain(..w.ufrags.len() - UFRAGS_KEPT).collect()
        } else {
            Vec::new()
        };
        for u in dropped {
            self.ice_ufrags.remove(&u);
        }
        self.ice_ufrags.insert(ufrag, tkey);
        Ok(())
    }

    /// An ICE-TCP connection was accepted on `listener`: it routes like the listener.
    pub fn tcp_accepted(&mut self, listener: SocketId, conn: SocketId) -> bool {
        let Some(SocketRoute::Ice(route)) = self.sockets.get(&listener).copied() else { return false };
        if self.sockets.contains_key(&conn) {
            return false;
        }
        self.sockets.insert(conn, SocketRoute::Ice(IceSocket { listener: false, ..route }));
        true
    }

    /// An ICE-TCP connection ended: its tuples are no longer valid.
    pub fn tcp_closed(&mut self, now: Instant, conn: SocketId) {
        if !matches!(self.sockets.remove(&conn), Some(SocketRoute::Ice(_))) {
            return;
        }
        let tkeys: Vec<u32> = self.ice_tuples.iter().filter(|((s, _), _)| *s == conn).map(|(_, t)| *t).collect();
        for tkey in tkeys {
            let Some(w) = self.webrtc_mut(tkey) else { continue };
            let gone: Vec<IceTuple> = w.tuples.iter().filter(|(_, s)| *s == conn).map(|(t, _)| *t).collect();
            for tuple in gone {
                w.ice.remove_tuple(now, &tuple);
            }
            self.drain_ice_events(now, tkey);
        }
        self.ice_tuples.retain(|(s, _), _| *s != conn);
    }

    /// One datagram (or RFC 4571 frame) on an ICE socket.
    pub(super) fn handle_ice_datagram<'a>(
        &mut self,
        now: Instant,
        socket: SocketId,
        route: IceSocket,
        src: SocketAddr,
        data: &'a mut [u8],
        out: &mut impl Sink<'a>,
    ) {
        let kind = classify(data);
        if kind == PacketKind::Stun {
            self.handle_stun(now, socket, route, src, data, out);
            return;
        }
        let Some(&tkey) = self.ice_tuples.get(&(socket, src)) else {
            self.drops.count(DropReason::UnknownSource);
            return;
        };
        match kind {
            PacketKind::Dtls => self.handle_dtls(now, tkey, data, out),
            PacketKind::Rtp | PacketKind::Rtcp => {
                let Some(w) = self.webrtc_mut(tkey) else { return };
                let Some(srtp) = w.srtp_in.as_mut() else {
                    self.drops.count(DropReason::SrtpNotReady);
                    return;
                };
                let unprotected =
                    if kind == PacketKind::Rtp { srtp.unprotect_rtp(data) } else { srtp.unprotect_rtcp(data) };
                match unprotected {
                    Ok(n) => {
                        let (plain, _) = data.split_at_mut(n);
                        if kind == PacketKind::Rtp {
                            self.handle_rtp(now, tkey, None, plain, out);
                        } else {
                            self.handle_rtcp(now, tkey, plain, out);
                        }
                    }
                    Err(e) => self.drops.count(srtp_drop(e)),
                }
            }
            _ => self.drops.count(DropReason::UnknownProtocol),
        }
    }

    fn handle_stun<'a>(
        &mut self,
        now: Instant,
        socket: SocketId,
        route: IceSocket,
        src: SocketAddr,
        data: &[u8],
        out: &mut impl Sink<'a>,
    ) {
        let tkey = match route.transport {
            Some(tkey) => Some(tkey),
            None => stun_local_ufrag(data)
                .and_then(|u| std::str::from_utf8(u).ok())
                .and_then(|u| self.ice_ufrags.get(u).copied()),
        };
        let Some(tkey) = tkey else {
            self.drops.count(DropReason::StunRejected);
            return;
        };
        let Shard { transports, scratch, drops, ice_tuples, .. } = self;
        let Some(TransportKind::WebRtc(w)) = transports.get_mut(tkey).map(|t| &mut t.kind) else { return };
        // A server's socket serves only that server's transports.
        if route.transport.is_none() && w.server != route.server {
            drops.count(DropReason::StunRejected);
            return;
        }
        let tuple = IceTuple::new(route.local, src, route.protocol);
        match w.ice.handle_stun(now, &tuple, data, &mut scratch[..]) {
            Ok(Some(n)) => out.send(socket, src, &scratch[..n], &[]),
            Ok(None) => {}
            Err(e) => {
                if let Some(n) = e.response_len() {
                    out.send(socket, src, &scratch[..n], &[]);
                }
                drops.count(DropReason::StunRejected);
            }
        }
        if w.ice.is_valid_tuple(&tuple) && !w.tuples.iter().any(|(t, _)| *t == tuple) {
            w.tuples.push((tuple, socket));
            ice_tuples.insert((socket, src), tkey);
        }
        self.drain_ice_events(now, tkey);
        self.maybe_start_dtls(now, tkey, out);
    }

    /// Apply what ICE decided: selected tuple, state, removed tuples.
    fn drain_ice_events(&mut self, now: Instant, tkey: u32) {
        let mut changed = false;
        loop {
            let Shard { transports, events, ice_tuples, sockets, released_sockets, .. } = self;
            let Some(t) = transports.get_mut(tkey) else { return };
            let id = t.id;
            let TransportKind::WebRtc(w) = &mut t.kind else { return };
            let Some(ev) = w.ice.poll_event() else { break };
            changed = true;
            match ev {
                IceEvent::StateChange(state) => {
                    if matches!(state, IceState::Disconnected | IceState::Closed) {
                        w.selected = None;
                    }
                    events.push_back(Event::IceStateChange { transport: id, state });
                }
                IceEvent::SelectedTupleChange(tuple) => {
                    let was = w.selected;
                    w.selected = w.tuples.iter().find(|(t, _)| *t == tuple).map(|(_, s)| (*s, tuple.remote));
                    events.push_back(Event::IceSelectedTupleChange { transport: id, tuple });
                    if was.is_none() && w.selected.is_some() {
                        self.request_key_frames_of(now, tkey);
                    }
                }
                IceEvent::TupleRemoved(tuple) => {
                    let Some(i) = w.tuples.iter().position(|(t, _)| *t == tuple) else { continue };
                    let (_, socket) = w.tuples.remove(i);
                    ice_tuples.remove(&(socket, tuple.remote));
                    if w.selected == Some((socket, tuple.remote)) {
                        w.selected = None;
                    }
                    release_tcp_tuple(sockets, released_sockets, &tuple, socket);
                }
            }
        }
        if changed {
            self.refresh_targets(tkey);
        }
    }

    /// Start DTLS once both `connect()` and ICE are there.
    fn maybe_start_dtls<'a>(&mut self, now: Instant, tkey: u32, out: &mut impl Sink<'a>) {
        let Some(t) = self.transports.get_mut(tkey) else { return };
        let id = t.id;
        let TransportKind::WebRtc(w) = &mut t.kind else { return };
        if w.dtls.is_some() || w.dtls_state != DtlsState::New || w.selected.is_none() {
            return;
        }
        let Some(remote) = w.remote.as_ref() else { return };
        if remote.side == DtlsSide::Server {
            // The session is made on the ClientHello, with the profile we prefer among those it
            // offers (see `start_dtls_server`).
            w.dtls_state = DtlsState::Connecting;
            self.events.push_back(Event::DtlsStateChange { transport: id, state: DtlsState::Connecting });
            return;
        }
        match DtlsSession::new(now, remote.side, &w.certificate, &remote.fingerprints, &w.srtp_profiles) {
            Ok(session) => {
                w.dtls = Some(session);
                w.dtls_state = DtlsState::Connecting;
                self.events.push_back(Event::DtlsStateChange { transport: id, state: DtlsState::Connecting });
            }
            Err(e) => {
                tracing::warn!(transport = id, error = %e, "DTLS could not start");
                w.dtls_state = DtlsState::Failed;
                self.events.push_back(Event::DtlsStateChange { transport: id, state: DtlsState::Failed });
                return;
            }
        }
        self.flush_dtls(now, tkey, out);
    }

    /// A DTLS server session for the ClientHello in `data`: it may negotiate only our most
    /// preferred profile among those the client offers (mediasoup's choice; `rtc-dtls` alone
    /// would take the client's first). Without a readable offer, all of ours.
    fn start_dtls_server(&mut self, now: Instant, tkey: u32, data: &[u8]) -> bool {
        let Some(t) = self.transports.get_mut(tkey) else { return false };
        let id = t.id;
        let TransportKind::WebRtc(w) = &mut t.kind else { return false };
        let Some(remote) = w.remote.as_ref() else { return false };
        let offered = crate::webrtc::dtls::client_hello_srtp_profiles(data);
        let best = offered.and_then(|ids| w.srtp_profiles.iter().copied().find(|p| ids.contains(&p.dtls_id())));
        let profiles = match best {
            Some(p) => vec![p],
            None => w.srtp_profiles.clone(),
        };
        match DtlsSession::new(now, DtlsSide::Server, &w.certificate, &remote.fingerprints, &profiles) {
            Ok(session) => {
                w.dtls = Some(session);
                true
            }
            Err(e) => {
                tracing::warn!(transport = id, error = %e, "DTLS could not start");
                w.dtls_state = DtlsState::Failed;
                self.events.push_back(Event::DtlsStateChange { transport: id, state: DtlsState::Failed });
                false
            }
        }
    }

    fn handle_dtls<'a>(&mut self, now: Instant, tkey: u32, data: &[u8], out: &mut impl Sink<'a>) {
        let Some(w) = self.webrtc_mut(tkey) else { return };
        let waiting_for_hello = w.dtls.is_none()
            && w.dtls_state == DtlsState::Connecting
            && w.remote.as_ref().is_some_and(|r| r.side == DtlsSide::Server);
        if waiting_for_hello && !self.start_dtls_server(now, tkey, data) {
            self.drops.count(DropReason::DtlsRejected);
            return;
        }
        let Some(w) = self.webrtc_mut(tkey) else { return };
        let Some(dtls) = w.dtls.as_mut() else {
            self.drops.count(DropReason::DtlsRejected);
            return;
        };
        if dtls.handle_datagram(now, data).is_err() {
            self.drops.count(DropReason::DtlsRejected);
        }
        self.flush_dtls(now, tkey, out);
    }

    /// Send what DTLS wants sent and act on what it reports.
    fn flush_dtls<'a>(&mut self, now: Instant, tkey: u32, out: &mut impl Sink<'a>) {
        let Shard { transports, scratch, events, .. } = self;
        let Some(t) = transports.get_mut(tkey) else { return };
        let id = t.id;
        let TransportKind::WebRtc(w) = &mut t.kind else { return };
        let Some(dtls) = w.dtls.as_mut() else { return };
        while let Some(n) = dtls.poll_transmit(&mut scratch[..]) {
            if let Some((socket, dest)) = w.selected {
                out.send(socket, dest, &scratch[..n], &[]);
            }
        }
        let mut connected = false;
        while let Some(ev) = dtls.poll_event() {
            let state = match ev {
                DtlsEvent::Connected { profile, local, remote } => {
                    match (SrtpSession::new(profile, &local), SrtpSession::new(profile, &remote)) {
                        (Ok(tx), Ok(rx)) => {
                            w.srtp_out = Some(SrtpOut::new(tx));
                            w.srtp_in = Some(rx);
                            w.srtp_profile = Some(profile);
                            connected = true;
                            DtlsState::Connected
                        }
                        _ => DtlsState::Failed,
                    }
                }
                DtlsEvent::Failed(reason) => {
                    tracing::info!(transport = id, %reason, "DTLS failed");
                    DtlsState::Failed
                }
                DtlsEvent::Closed => DtlsState::Closed,
                // No SCTP yet: data channel bytes have nowhere to go.
                DtlsEvent::ApplicationData(_) => continue,
            };
            if state != w.dtls_state {
                w.dtls_state = state;
                if state != DtlsState::Connected {
                    w.srtp_out = None;
                    w.srtp_in = None;
                }
                events.push_back(Event::DtlsStateChange { transport: id, state });
            }
        }
        self.refresh_targets(tkey);
        if connected {
            self.request_key_frames_of(now, tkey);
        }
    }

    /// The consumers of a transport that just became able to send ask for a key frame.
    fn request_key_frames_of(&mut self, now: Instant, tkey: u32) {
        let Some(t) = self.transports.get(tkey) else { return };
        let producers: Vec<u32> =
            t.consumers.iter().filter_map(|&c| self.consumers.get(c).map(|c| c.producer)).collect();
        for p in producers {
            self.request_key_frame_for(now, p);
        }
    }

    /// ICE consent and DTLS retransmission timers of every WebRtcTransport (on the tick).
    pub(super) fn webrtc_timeouts<'a>(&mut self, now: Instant, out: &mut impl Sink<'a>) {
        for tkey in 0..self.transports.key_bound() {
            let Some(w) = self.webrtc_mut(tkey) else { continue };
            let ice_due = w.ice.poll_timeout().is_some_and(|t| t <= now);
            if ice_due {
                w.ice.handle_timeout(now);
            }
            let dtls_due = w.dtls.as_ref().and_then(|d| d.poll_timeout()).is_some_and(|t| t <= now);
            if dtls_due {
                if let Some(d) = w.dtls.as_mut() {
                    d.handle_timeout(now);
                }
            }
            if ice_due {
                self.drain_ice_events(now, tkey);
            }
            if dtls_due {
                self.flush_dtls(now, tkey, out);
            }
        }
    }

    /// Forget a closing WebRtcTransport's tuples, username fragments and sockets (its own, the
    /// connections accepted on them, and server connections that carried its tuples).
    pub(super) fn release_webrtc(&mut self, tkey: u32, w: &mut WebRtcState) {
        // A connected association says goodbye (close_notify), as mediasoup does.
        if let (Some(dtls), Some((socket, dest))) = (w.dtls.as_mut(), w.selected) {
            if w.dtls_state == DtlsState::Connected {
                dtls.close(self.last_now);
                let mut buf = [0u8; crate::webrtc::dtls::MAX_DTLS_DATAGRAM_BYTES];
                while let Some(n) = dtls.poll_transmit(&mut buf) {
                    self.control_tx.push((socket, dest, buf[..n].to_vec()));
                }
            }
        }
        w.ice.close();
        for (tuple, socket) in w.tuples.drain(..) {
            self.ice_tuples.remove(&(socket, tuple.remote));
            release_tcp_tuple(&mut self.sockets, &mut self.released_sockets, &tuple, socket);
        }
        for u in w.ufrags.drain(..) {
            self.ice_ufrags.remove(&u);
        }
        let own: Vec<SocketId> = self
            .sockets
            .iter()
            .filter(|(_, r)| matches!(r, SocketRoute::Ice(i) if i.transport == Some(tkey)))
            .map(|(s, _)| *s)
            .collect();
        for s in own {
            self.sockets.remove(&s);
            self.released_sockets.push(s);
        }
    }

    /// Send one RTP packet (`head ++ body`) SRTP-protected for `transport`: the engine's sink
    /// queues it with the transport's outbound context and net seals it at the flush (a failure
    /// there is counted as `ShardLoad::tx_seal_failed`); a sink that seals on the spot reports a
    /// failure, counted here.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub(super) fn send_srtp_rtp<'a>(
        transports: &mut super::Slab<super::objects::TransportState>,
        transport: u32,
        socket: SocketId,
        dest: SocketAddr,
        head: &[u8],
        body: &'a [u8],
        drops: &mut super::DropCounters,
        out: &mut impl Sink<'a>,
    ) {
        let Some(TransportKind::WebRtc(w)) = transports.get(transport).map(|t| &t.kind) else { return };
        let Some(srtp) = w.srtp_out.as_ref() else { return };
        if !out.send_sealed(socket, dest, head, body, srtp.sealer()) {
            drops.count(DropReason::SrtpOther);
        }
    }
}
