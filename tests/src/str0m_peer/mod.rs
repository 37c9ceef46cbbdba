//! An independent WebRTC peer for interop tests: str0m 0.25 driven through its direct API (no SDP)
//! on real loopback sockets, blocking, on the test thread.
//!
//! The flow against a mediasoup-shaped WebRtcTransport (ICE-lite server, DTLS role 'auto'):
//! 1. `Str0mPeer::new(PeerConfig::udp(..))` (or `tcp_active`), with the codecs' payload types
//!    the router hands out (str0m fixes its payload-type table when the peer is built);
//! 2. `peer.connect(server ufrag, pwd, candidates, server fingerprints, DtlsRole::Client)`;
//! 3. `transport.connect({dtlsParameters: {role: peer.dtls_role().as_str(), fingerprints:
//!    [peer.local_fingerprint()]}})` (the peer's own role, as mediasoup-client sends it);
//! 4. `peer.wait_connected(..)`, then `declare_send` / `send_rtp` for a producer with the same
//!    SSRC / MID / payload type, `declare_recv` / `wait_rtp` for a consumer's.
//!
//! What str0m 0.25 can and cannot do here (read from its source, checked by
//! `tests/str0m_harness.rs`):
//! - SRTP: DTLS-SRTP profiles AEAD_AES_256_GCM, AEAD_AES_128_GCM and AES_CM_128_HMAC_SHA1_80;
//!   not AES_CM_128_HMAC_SHA1_32. The offer is fixed (dimpl's ClientHello lists all three, 256-GCM
//!   first) and, as DTLS server, the choice is fixed (256-GCM, then 128-GCM, then SHA1_80): no knob.
//!   Two str0m peers therefore always agree on AEAD_AES_256_GCM; the engine, as DTLS server,
//!   decides which one a test gets. [`Str0mPeer::srtp_profile`] reads the choice off the
//!   plaintext DTLS 1.2 ServerHello (DTLS 1.3 encrypts it: `None` there).
//! - ICE over UDP and TCP (RFC 4571 framing done here: str0m only tags a transmit with its
//!   protocol). An active TCP peer connects to each passive remote TCP candidate in `connect`.
//! - ICE restart: the direct API has none (only the SDP API's `ice_restart`); `restart_ice` sets
//!   new credentials on the running agent, which keeps its pairs and signs later checks with them.
//! - Every RTP packet it sends has the X bit set and a one-byte-header extension block, empty
//!   (`BE DE 00 00`) when no extension is mapped: the receiving end must accept that.
//! - In RTP mode str0m holds one received packet until the next `poll_output`: each input is
//!   followed here by draining the output, or packets are silently lost.
//! - A controlling agent checks only the remote candidates it was given; a controlled or ICE-lite
//!   one learns the remote from its checks. str0m does not pair TCP candidates by `tcptype`:
//!   this driver owns the connections and routes each transmit by its (source, destination).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

pub use str0m;
use str0m::format::FormatParams;
use str0m::media::{Frequency, KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::{ExtensionMap, RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc, RtcConfig};

/// Datagrams (or RFC 4571 frames) read per socket in one [`Str0mPeer::step`].
const MAX_READS_PER_STEP: usize = 64;
/// Received RTP packets kept; later ones are counted in `rtp_dropped`.
const MAX_RECEIVED_RTP: usize = 100_000;
/// Events kept; later ones are counted in `events_dropped`.
const MAX_EVENTS: usize = 10_000;
/// Longest sleep of one step while nothing arrives (the sockets are polled, not waited on).
const POLL_SLEEP_MAX: Duration = Duration::from_millis(1);
/// An RFC 4571 frame carries at most 65535 bytes.
const TCP_FRAME_MAX: usize = u16::MAX as usize;

mod types;
mod wire;

pub use types::*;
use wire::*;

struct TcpConn {
    stream: TcpStream,
    local: SocketAddr,
    remote: SocketAddr,
    rx: Vec<u8>,
    tx: Vec<u8>,
    closed: bool,
}

struct SendStream {
    payload_type: u8,
    nackable: bool,
    last_seq: Option<u64>,
}

/// Counters a test can read (and that time-out messages print).
#[derive(Clone, Copy, Debug, Default)]
pub struct PeerCounters {
    pub datagrams_sent: u64,
    pub datagrams_received: u64,
    pub rtp_sent: u64,
    pub rtp_dropped: u64,
    pub events_dropped: u64,
    /// Datagrams str0m could not classify, or rejected.
    pub input_errors: u64,
    /// Transmits on a TCP pair with no connection behind it.
    pub tcp_unroutable: u64,
}

/// A blocking WebRTC peer around one str0m `Rtc`.
pub struct Str0mPeer {
    name: String,
    rtc: Rtc,
    config: PeerConfig,
    udp: Option<UdpSocket>,
    listener: Option<TcpListener>,
    tcp: Vec<TcpConn>,
    local_candidates: Vec<(SocketAddr, IceProto)>,
    local_ice: IceCreds,
    local_fingerprint: (String, String),
    dtls_role: Option<DtlsRole>,
    send_streams: HashMap<u32, SendStream>,
    ice_state: IceConnectionState,
    connected: bool,
    stopped: bool,
    srtp_profile: Option<SrtpProfile>,
    received: Vec<ReceivedRtp>,
    events: Vec<PeerEvent>,
    counters: PeerCounters,
    last_input_error: Option<String>,
    /// (ssrc, seq) of RTP to lose once, on the way out and on the way in.
    drop_out: Vec<(u32, u16)>,
    drop_in: Vec<(u32, u16)>,
    buf: Vec<u8>,
}

impl Str0mPeer {
    pub fn new_udp(name: &str, local: SocketAddr) -> PeerResult<Str0mPeer> {
        Str0mPeer::new(PeerConfig::udp(name, local))
    }

    pub fn new_tcp(name: &str, local_ip: IpAddr) -> PeerResult<Str0mPeer> {
        Str0mPeer::new(PeerConfig::tcp_active(name, local_ip))
    }

    pub fn new(config: PeerConfig) -> PeerResult<Str0mPeer> {
        let name = config.name.clone();
        let mut rtc_config = RtcConfig::new()
            .set_rtp_mode(true)
            .set_ice_lite(config.ice_lite)
            .set_dtls_version(config.dtls_version)
            .clear_codecs();
        if let Some((ufrag, pass)) = &config.local_ice {
            rtc_config = rtc_config.set_local_ice_credentials(IceCreds { ufrag: ufrag.clone(), pass: pass.clone() });
        }
        let mut exts = ExtensionMap::empty();
        for (id, ext) in &config.extensions {
            exts.set(*id, ext.clone());
        }
        rtc_config = rtc_config.set_extension_map(exts);
        if let Some(rto) = config.stun_max_rto {
            rtc_config.set_max_stun_rto(rto);
        }
        if let Some(n) = config.stun_max_retransmits {
            rtc_config.set_max_stun_retransmits(n);
        }
        for c in &config.codecs {
            let clock_rate = Frequency::new(c.clock_rate)
                .ok_or_else(|| PeerError::Usage(format!("peer '{name}': codec {c:?} has clock rate 0")))?;
            rtc_config.codec_config().add_config(
                c.payload_type.into(),
                c.rtx_payload_type.map(Into::into),
                c.codec,
                clock_rate,
                c.channels,
                FormatParams::default(),
            );
        }
        let mut rtc = rtc_config.build(Instant::now());
        let local_ice = rtc.direct_api().local_ice_credentials();
        let fp = rtc.direct_api().local_dtls_fingerprint().clone();
        let local_fingerprint = (fp.hash_func.clone(), hex_colons(&fp.bytes));

        let io_err = |doing: &str, error| PeerError::Io { peer: name.clone(), doing: doing.to_string(), error };
        let (mut udp, mut listener, mut local_candidates) = (None, None, Vec::new());
        match config.transport {
            PeerTransport::Udp(addr) => {
                let sock = UdpSocket::bind(addr).map_err(|e| io_err("binding the UDP socket", e))?;
                sock.set_nonblocking(true).map_err(|e| io_err("making the UDP socket non-blocking", e))?;
                let local = sock.local_addr().map_err(|e| io_err("reading the UDP socket's address", e))?;
                let cand = Candidate::host(local, "udp")
                    .map_err(|e| PeerError::Usage(format!("peer '{name}': no UDP host candidate on {local}: {e}")))?;
                rtc.add_local_candidate(cand);
                local_candidates.push((local, IceProto::Udp));
                udp = Some(sock);
            }
            PeerTransport::TcpPassive(addr) => {
                let l = TcpListener::bind(addr).map_err(|e| io_err("binding the TCP listener", e))?;
                l.set_nonblocking(true).map_err(|e| io_err("making the TCP listener non-blocking", e))?;
                let local = l.local_addr().map_err(|e| io_err("reading the TCP listener's address", e))?;
                let cand = Candidate::builder().tcp().host(local).tcptype(TcpType::Passive).build().map_err(|e| {
                    PeerError::Usage(format!("peer '{name}': no passive TCP candidate on {local}: {e}"))
                })?;
                rtc.add_local_candidate(cand);
                local_candidates.push((local, IceProto::Tcp));
                listener = Some(l);
            }
            // The active candidates exist once `connect` has opened their connections.
            PeerTransport::TcpActive(_) => {}
        }

        Ok(Str0mPeer {
            name,
            rtc,
            config,
            udp,
            listener,
            tcp: Vec::new(),
            local_candidates,
            local_ice,
            local_fingerprint,
            dtls_role: None,
            send_streams: HashMap::new(),
            ice_state: IceConnectionState::New,
            connected: false,
            stopped: false,
            srtp_profile: None,
            received: Vec::new(),
            events: Vec::new(),
            counters: PeerCounters::default(),
            last_input_error: None,
            drop_out: Vec::new(),
            drop_in: Vec::new(),
            buf: vec![0u8; 2048],
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The local ICE `(usernameFragment, password)`.
    pub fn local_ice(&self) -> (String, String) {
        (self.local_ice.ufrag.clone(), self.local_ice.pass.clone())
    }

    /// The local certificate's fingerprint as mediasoup writes one: `("sha-256", "AB:CD:..")`.
    pub fn local_fingerprint(&self) -> (String, String) {
        self.local_fingerprint.clone()
    }

    /// Local host candidates: the UDP socket, the passive listener, or (after `connect`) the
    /// active TCP connections' local ends.
    pub fn local_candidates(&self) -> &[(SocketAddr, IceProto)] {
        &self.local_candidates
    }

    /// This peer's DTLS role, once `connect` has been called.
    pub fn dtls_role(&self) -> Option<DtlsRole> {
        self.dtls_role
    }

    /// Start ICE and DTLS towards the remote. `remote_fingerprints` are `(algorithm, value)`
    /// pairs as in mediasoup's `dtlsParameters.fingerprints`; str0m verifies sha-256 (preferred)
    /// or sha-1, so one of those must be among them. `dtls_role` is this peer's role.
    ///
    /// A controlling peer needs at least one remote candidate to check; a controlled or
    /// ICE-lite peer may get none and learns the remote from its checks (peer-reflexive).
    pub fn connect(
        &mut self,
        remote_ufrag: &str,
        remote_pwd: &str,
        remote_candidates: &[(SocketAddr, IceProto)],
        remote_fingerprints: &[(&str, &str)],
        dtls_role: DtlsRole,
    ) -> PeerResult<()> {
        if self.dtls_role.is_some() {
            return Err(self.usage("connect called twice"));
        }
        let fingerprint = pick_fingerprint(remote_fingerprints).map_err(|m| self.usage(&m))?;
        if self.config.ice_controlling && remote_candidates.is_empty() {
            return Err(self.usage("a controlling peer needs at least one remote candidate"));
        }
        for &(addr, proto) in remote_candidates {
            self.add_remote_candidate(addr, proto)?;
        }
        let mut api = self.rtc.direct_api();
        api.set_ice_lite(self.config.ice_lite);
        api.set_ice_controlling(self.config.ice_controlling);
        api.set_remote_ice_credentials(IceCreds { ufrag: remote_ufrag.to_string(), pass: remote_pwd.to_string() });
        api.set_remote_fingerprint(fingerprint);
        if let Err(error) = api.start_dtls(dtls_role == DtlsRole::Client) {
            return Err(PeerError::Rtc { peer: self.name.clone(), doing: "starting DTLS", error });
        }
        self.dtls_role = Some(dtls_role);
        self.rtc.handle_input(Input::Timeout(Instant::now())).map_err(|error| PeerError::Rtc {
            peer: self.name.clone(),
            doing: "starting ICE",
            error,
        })
    }

    fn add_remote_candidate(&mut self, addr: SocketAddr, proto: IceProto) -> PeerResult<()> {
        let name = self.name.clone();
        let bad = |e: &dyn fmt::Display| PeerError::Usage(format!("peer '{name}': remote candidate {addr}: {e}"));
        match (proto, self.config.transport) {
            (IceProto::Udp, PeerTransport::Udp(_)) => {
                self.rtc.add_remote_candidate(Candidate::host(addr, "udp").map_err(|e| bad(&e))?);
            }
            (IceProto::Tcp, PeerTransport::TcpActive(ip)) => {
                let stream = TcpStream::connect(addr).map_err(|error| PeerError::Io {
                    peer: name.clone(),
                    doing: format!("connecting to passive TCP candidate {addr}"),
                    error,
                })?;
                let io_err = |doing: &str, error| PeerError::Io { peer: name.clone(), doing: doing.into(), error };
                stream.set_nonblocking(true).map_err(|e| io_err("making a TCP connection non-blocking", e))?;
                stream.set_nodelay(true).map_err(|e| io_err("setting TCP_NODELAY", e))?;
                let local = stream.local_addr().map_err(|e| io_err("reading a TCP connection's address", e))?;
                if local.ip() != ip {
                    return Err(bad(&format!("the connection left from {local}, not from {ip}")));
                }
                let cand = Candidate::builder().tcp().host(local).tcptype(TcpType::Active).build();
                self.rtc.add_local_candidate(cand.map_err(|e| bad(&e))?);
                self.local_candidates.push((local, IceProto::Tcp));
                let remote = Candidate::builder().tcp().host(addr).tcptype(TcpType::Passive).build();
                self.rtc.add_remote_candidate(remote.map_err(|e| bad(&e))?);
                self.tcp.push(TcpConn { stream, local, remote: addr, rx: Vec::new(), tx: Vec::new(), closed: false });
            }
            (IceProto::Tcp, PeerTransport::TcpPassive(_)) => {
                let remote = Candidate::builder().tcp().host(addr).tcptype(TcpType::Active).build();
                self.rtc.add_remote_candidate(remote.map_err(|e| bad(&e))?);
            }
            // Candidates of the other protocol are ignored, as a browser with one socket would.
            _ => {}
        }
        Ok(())
    }

    /// New remote ICE credentials after the server restarted ICE, and optionally new local ones.
    /// str0m's direct API has no ICE restart: the running agent keeps its candidate pairs and
    /// signs its next checks (and checks the answers) with the new credentials.
    pub fn restart_ice(&mut self, remote_ufrag: &str, remote_pwd: &str, local: Option<(&str, &str)>) {
        let mut api = self.rtc.direct_api();
        if let Some((ufrag, pass)) = local {
            self.local_ice = IceCreds { ufrag: ufrag.to_string(), pass: pass.to_string() };
            api.set_local_ice_credentials(self.local_ice.clone());
        }
        api.set_remote_ice_credentials(IceCreds { ufrag: remote_ufrag.to_string(), pass: remote_pwd.to_string() });
    }

    /// Declare an outgoing stream: `payload_type` must be one of the peer's codecs (with its RTX
    /// payload type when `rtx_ssrc` is given, so NACKed packets are resent on RTX).
    pub fn declare_send(&mut self, mid: &str, ssrc: u32, rtx_ssrc: Option<u32>, payload_type: u8) -> PeerResult<()> {
        let codec = self.codec(payload_type)?;
        if rtx_ssrc.is_some() && codec.rtx_payload_type.is_none() {
            return Err(self.usage(&format!("RTX SSRC given for payload type {payload_type}, which has no RTX")));
        }
        let mid = self.declare_media(mid, codec.kind())?;
        let mut api = self.rtc.direct_api();
        api.declare_stream_tx(ssrc.into(), rtx_ssrc.map(Into::into), mid, None);
        self.send_streams.insert(ssrc, SendStream { payload_type, nackable: rtx_ssrc.is_some(), last_seq: None });
        Ok(())
    }

    /// Declare an incoming stream; its packets are then collected (see [`Str0mPeer::received`]).
    pub fn declare_recv(&mut self, mid: &str, ssrc: u32, rtx_ssrc: Option<u32>, payload_type: u8) -> PeerResult<()> {
        let kind = self.codec(payload_type)?.kind();
        let mid = self.declare_media(mid, kind)?;
        self.rtc.direct_api().expect_stream_rx(ssrc.into(), rtx_ssrc.map(Into::into), mid, None);
        Ok(())
    }

    fn declare_media(&mut self, mid: &str, kind: MediaKind) -> PeerResult<Mid> {
        let m = Mid::from(mid);
        match self.rtc.media(m) {
            Some(media) if media.kind() != kind => {
                Err(self.usage(&format!("mid '{mid}' is already {:?}, not {kind:?}", media.kind())))
            }
            Some(_) => Ok(m),
            None => {
                self.rtc.direct_api().declare_media(m, kind);
                Ok(m)
            }
        }
    }

    fn codec(&self, payload_type: u8) -> PeerResult<PeerCodec> {
        self.config.codecs.iter().find(|c| c.payload_type == payload_type).copied().ok_or_else(|| {
            self.usage(&format!(
                "payload type {payload_type} is not among the peer's codecs; str0m fixes its payload types \
                 when it is built: add it to PeerConfig::codecs"
            ))
        })
    }

    /// Queue one RTP packet on a declared outgoing stream, with exactly this sequence number,
    /// timestamp, marker and payload; [`Str0mPeer::step`] (or any `run_*`) puts it on the wire.
    pub fn send_rtp(&mut self, ssrc: u32, seq: u16, timestamp: u32, marker: bool, payload: &[u8]) -> PeerResult<()> {
        let Some(s) = self.send_streams.get_mut(&ssrc) else {
            return Err(self.usage(&format!("SSRC {ssrc} was not declared with declare_send")));
        };
        let ext_seq = extend_seq(s.last_seq, seq);
        s.last_seq = Some(s.last_seq.map_or(ext_seq, |l| l.max(ext_seq)));
        let write =
            RtpWrite::new(s.payload_type.into(), SeqNo::from(ext_seq), timestamp, Instant::now(), payload.to_vec())
                .marker(marker)
                .nackable(s.nackable);
        match self.rtc.direct_api().stream_tx(&ssrc.into()) {
            Some(stream) => stream.write_rtp(write),
            None => return Err(self.usage(&format!("str0m has no outgoing stream for SSRC {ssrc}"))),
        }
        self.counters.rtp_sent += 1;
        Ok(())
    }

    /// Ask the sender of the incoming stream `ssrc` for a key frame (PLI or FIR).
    pub fn request_keyframe(&mut self, ssrc: u32, kind: KeyframeRequestKind) -> PeerResult<()> {
        match self.rtc.direct_api().stream_rx(&ssrc.into()) {
            Some(stream) => {
                stream.request_keyframe(kind);
                Ok(())
            }
            None => Err(self.usage(&format!("SSRC {ssrc} was not declared with declare_recv"))),
        }
    }

    /// Lose the next sent RTP packet with this SSRC and sequence number (its first transmission
    /// only: an RTX resend travels on the RTX SSRC). The RTP header is plaintext under SRTP.
    pub fn drop_outgoing_rtp(&mut self, ssrc: u32, seq: u16) {
        self.drop_out.push((ssrc, seq));
    }

    /// Lose the next received RTP packet with this SSRC and sequence number.
    pub fn drop_incoming_rtp(&mut self, ssrc: u32, seq: u16) {
        self.drop_in.push((ssrc, seq));
    }

    /// Stop answering: from now on nothing is sent and everything received is dropped, as if the
    /// peer vanished (a server's ICE consent then expires).
    pub fn stop(&mut self) {
        self.stopped = true;
    }

    /// Send DTLS close_notify (and RTCP BYE), then keep driving to flush it.
    pub fn close(&mut self) -> PeerResult<()> {
        self.rtc.close().map_err(|error| PeerError::Rtc { peer: self.name.clone(), doing: "closing", error })?;
        self.drive(Instant::now() + Duration::from_millis(50))
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn ice_state(&self) -> IceConnectionState {
        self.ice_state
    }

    /// The negotiated SRTP profile, read off the DTLS 1.2 ServerHello; `None` before it passed
    /// or under DTLS 1.3, where it is encrypted.
    pub fn srtp_profile(&self) -> Option<SrtpProfile> {
        self.srtp_profile
    }

    pub fn dtls_version(&mut self) -> Option<str0m::crypto::dtls::ProtocolVersion> {
        self.rtc.direct_api().dtls_protocol_version()
    }

    pub fn received(&self) -> &[ReceivedRtp] {
        &self.received
    }

    pub fn received_of(&self, ssrc: u32) -> impl Iterator<Item = &ReceivedRtp> {
        self.received.iter().filter(move |p| p.ssrc == ssrc)
    }

    pub fn take_received(&mut self) -> Vec<ReceivedRtp> {
        std::mem::take(&mut self.received)
    }

    pub fn events(&self) -> &[PeerEvent] {
        &self.events
    }

    pub fn counters(&self) -> PeerCounters {
        self.counters
    }

    /// One line on where the peer stands, for failure messages.
    pub fn status(&self) -> String {
        let c = &self.counters;
        format!(
            "peer '{}': ice={:?} connected={} dtls_role={} srtp={} stopped={} datagrams sent/received={}/{} \
             rtp sent={} received={} (by ssrc: {:?}) tcp connections={} input errors={} (last: {}) \
             unroutable tcp={}",
            self.name,
            self.ice_state,
            self.connected,
            self.dtls_role.map_or("none (connect not called)", DtlsRole::as_str),
            self.srtp_profile.map_or("unknown", SrtpProfile::as_str),
            self.stopped,
            c.datagrams_sent,
            c.datagrams_received,
            c.rtp_sent,
            self.received.len(),
            self.received.iter().fold(std::collections::BTreeMap::new(), |mut m, p| {
                *m.entry(p.ssrc).or_insert(0usize) += 1;
                m
            }),
            self.tcp.iter().filter(|t| !t.closed).count(),
            c.input_errors,
            self.last_input_error.as_deref().unwrap_or("none"),
            c.tcp_unroutable,
        )
    }

    /// Drive until `deadline`.
    pub fn drive(&mut self, deadline: Instant) -> PeerResult<()> {
        while Instant::now() < deadline {
            self.step(deadline)?;
        }
        Ok(())
    }

    /// Drive until `cond` holds; on time-out the error names `waited_for` and the peer's status.
    pub fn run_until(
        &mut self,
        waited_for: &str,
        timeout: Duration,
        mut cond: impl FnMut(&Str0mPeer) -> bool,
    ) -> PeerResult<()> {
        let start = Instant::now();
        let deadline = start + timeout;
        loop {
            if cond(self) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(PeerError::Timeout {
                    waited_for: format!("{waited_for} (peer '{}')", self.name),
                    after: start.elapsed(),
                    status: self.status(),
                });
            }
            self.step(deadline)?;
        }
    }

    /// Drive until ICE and DTLS are up.
    pub fn wait_connected(&mut self, timeout: Duration) -> PeerResult<()> {
        self.run_until("ICE + DTLS connected", timeout, |p| p.connected)
    }

    /// Drive until `n` RTP packets of `ssrc` have arrived.
    pub fn wait_rtp(&mut self, ssrc: u32, n: usize, timeout: Duration) -> PeerResult<()> {
        self.run_until(&format!("{n} RTP packets of SSRC {ssrc}"), timeout, |p| p.received_of(ssrc).count() >= n)
    }

    /// One turn: hand str0m what arrived, send what it wants sent, and wait (at most 1 ms, and
    /// not past `deadline`) when there was nothing to do.
    pub fn step(&mut self, deadline: Instant) -> PeerResult<()> {
        let next = self.poll()?;
        self.accept_tcp();
        self.flush_tcp();
        let read = self.read_udp()? + self.read_tcp()?;
        let now = Instant::now();
        if now >= next {
            self.rtc.handle_input(Input::Timeout(now)).map_err(|error| PeerError::Rtc {
                peer: self.name.clone(),
                doing: "handling a timeout",
                error,
            })?;
        } else if read == 0 {
            let wait = next.min(deadline).saturating_duration_since(now).min(POLL_SLEEP_MAX);
            std::thread::sleep(wait);
        }
        Ok(())
    }

    /// Run str0m's output until it names its next timeout.
    fn poll(&mut self) -> PeerResult<Instant> {
        loop {
            let out = self.rtc.poll_output().map_err(|error| PeerError::Rtc {
                peer: self.name.clone(),
                doing: "polling output",
                error,
            })?;
            match out {
                Output::Timeout(t) => return Ok(t),
                Output::Transmit(t) => {
                    if self.stopped || take_drop(&mut self.drop_out, &t.contents) {
                        continue;
                    }
                    if self.srtp_profile.is_none() {
                        self.srtp_profile = sniff_server_hello(&t.contents);
                    }
                    self.counters.datagrams_sent += 1;
                    match t.proto {
                        Protocol::Udp => {
                            if let Some(sock) = &self.udp {
                                // A loopback send fails only when the destination is gone: ICE copes.
                                let _ = sock.send_to(&t.contents, t.destination);
                            }
                        }
                        _ => self.queue_tcp(t.source, t.destination, &t.contents),
                    }
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        let ev = match e {
            Event::RtpPacket(p) => {
                if self.received.len() >= MAX_RECEIVED_RTP {
                    self.counters.rtp_dropped += 1;
                } else {
                    self.received.push(ReceivedRtp {
                        ssrc: *p.header.ssrc,
                        seq: p.header.sequence_number,
                        timestamp: p.header.timestamp,
                        payload_type: *p.header.payload_type,
                        marker: p.header.marker,
                        payload: p.payload.to_vec(),
                    });
                }
                return;
            }
            Event::IceConnectionStateChange(s) => {
                self.ice_state = s;
                PeerEvent::IceState(s)
            }
            Event::Connected => {
                self.connected = true;
                PeerEvent::Connected
            }
            Event::KeyframeRequest(r) => PeerEvent::KeyframeRequest { mid: r.mid.to_string(), kind: r.kind },
            Event::StreamPaused(p) => PeerEvent::StreamPaused { mid: p.mid.to_string(), paused: p.paused },
            Event::Closed => PeerEvent::Closed,
            _ => return,
        };
        if self.events.len() >= MAX_EVENTS {
            self.counters.events_dropped += 1;
        } else {
            self.events.push(ev);
        }
    }

    /// Hand one datagram to str0m and drain its output at once: in RTP mode str0m holds a single
    /// pending received packet, which the next input would overwrite.
    fn feed(&mut self, proto: Protocol, source: SocketAddr, destination: SocketAddr, data: &[u8]) -> PeerResult<()> {
        if self.stopped {
            return Ok(());
        }
        self.counters.datagrams_received += 1;
        if take_drop(&mut self.drop_in, data) {
            return Ok(());
        }
        if self.srtp_profile.is_none() {
            self.srtp_profile = sniff_server_hello(data);
        }
        let result = match Receive::new(proto, source, destination, data) {
            Ok(r) => self.rtc.handle_input(Input::Receive(Instant::now(), r)).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = result {
            self.counters.input_errors += 1;
            self.last_input_error = Some(e);
        }
        self.poll().map(|_| ())
    }

    fn read_udp(&mut self) -> PeerResult<usize> {
        let Some(local) = self.udp.as_ref().map(|s| s.local_addr().expect("a bound socket has an address")) else {
            return Ok(0);
        };
        let mut buf = std::mem::take(&mut self.buf);
        let mut n = 0;
        let mut result = Ok(());
        while n < MAX_READS_PER_STEP && result.is_ok() {
            let received = self.udp.as_ref().expect("checked above").recv_from(&mut buf);
            match received {
                Ok((len, from)) => {
                    n += 1;
                    result = self.feed(Protocol::Udp, from, local, &buf[..len]);
                }
                Err(_) => break,
            }
        }
        self.buf = buf;
        result.map(|()| n)
    }

    fn accept_tcp(&mut self) {
        let Some(listener) = &self.listener else { return };
        while let Ok((stream, remote)) = listener.accept() {
            let (Ok(()), Ok(()), Ok(local)) =
                (stream.set_nonblocking(true), stream.set_nodelay(true), stream.local_addr())
            else {
                continue;
            };
            self.tcp.push(TcpConn { stream, local, remote, rx: Vec::new(), tx: Vec::new(), closed: false });
        }
    }

    fn queue_tcp(&mut self, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        assert!(data.len() <= TCP_FRAME_MAX, "a datagram for RFC 4571 framing is at most 65535 bytes");
        let conn = self.tcp.iter_mut().find(|c| !c.closed && c.local == source && c.remote == destination);
        let Some(conn) = conn else {
            self.counters.tcp_unroutable += 1;
            return;
        };
        conn.tx.extend_from_slice(&(data.len() as u16).to_be_bytes());
        conn.tx.extend_from_slice(data);
    }

    fn flush_tcp(&mut self) {
        for c in self.tcp.iter_mut().filter(|c| !c.closed && !c.tx.is_empty()) {
            match c.stream.write(&c.tx) {
                Ok(n) => {
                    c.tx.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => c.closed = true,
            }
        }
    }

    fn read_tcp(&mut self) -> PeerResult<usize> {
        let mut frames = Vec::new();
        for c in self.tcp.iter_mut().filter(|c| !c.closed) {
            for _ in 0..MAX_READS_PER_STEP {
                match c.stream.read(&mut self.buf) {
                    Ok(0) => {
                        c.closed = true;
                        break;
                    }
                    Ok(n) => c.rx.extend_from_slice(&self.buf[..n]),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        c.closed = true;
                        break;
                    }
                }
            }
            while c.rx.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([c.rx[0], c.rx[1]]));
                if c.rx.len() < 2 + len {
                    break;
                }
                frames.push((c.remote, c.local, c.rx[2..2 + len].to_vec()));
                c.rx.drain(..2 + len);
            }
        }
        let n = frames.len();
        for (source, destination, frame) in frames {
            self.feed(Protocol::Tcp, source, destination, &frame)?;
        }
        Ok(n)
    }

    fn usage(&self, msg: &str) -> PeerError {
        PeerError::Usage(format!("peer '{}': {msg}", self.name))
    }
}

/// Drive two peers in turn (a peer-to-peer test on one thread) until `cond` holds.
pub fn run_pair_until(
    a: &mut Str0mPeer,
    b: &mut Str0mPeer,
    waited_for: &str,
    timeout: Duration,
    mut cond: impl FnMut(&Str0mPeer, &Str0mPeer) -> bool,
) -> PeerResult<()> {
    let start = Instant::now();
    let deadline = start + timeout;
    loop {
        if cond(a, b) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(PeerError::Timeout {
                waited_for: waited_for.to_string(),
                after: start.elapsed(),
                status: format!("{}; {}", a.status(), b.status()),
            });
        }
        // Each turn sleeps at most 1 ms, so the other peer is never left waiting long.
        a.step(deadline)?;
        b.step(deadline)?;
    }
}

/// Drive two peers in turn for `duration`.
pub fn drive_pair(a: &mut Str0mPeer, b: &mut Str0mPeer, duration: Duration) -> PeerResult<()> {
    let deadline = Instant::now() + duration;
    while Instant::now() < deadline {
        a.step(deadline)?;
        b.step(deadline)?;
    }
    Ok(())
}
