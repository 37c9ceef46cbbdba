//! The ICE-lite server of a WebRtcTransport: mediasoup's `IceServer` (worker/src/RTC/IceServer.cpp),
//! sans-IO.
//!
//! We are ICE-lite and always controlled: we answer the browser's Binding requests and never send
//! any. A tuple (local address, remote address, UDP/TCP) becomes valid when a request on it
//! authenticates; media is accepted only from valid tuples ([`IceServer::is_valid_tuple`]) and
//! sent on the selected one ([`IceServer::selected_tuple`]).
//!
//! States, as mediasoup's `IceState` (`'new' | 'connected' | 'completed' | 'disconnected' |
//! 'closed'`), and the transitions of `IceServer::HandleTuple`:
//! - `new` / `disconnected` + valid request without nomination: the tuple is stored and selected,
//!   state `connected`.
//! - `new` / `disconnected` + nominated request (USE-CANDIDATE, or a NOMINATION above the last
//!   one): stored and selected, state `completed`.
//! - `connected` + request without nomination: the tuple is stored (valid), the selection stays.
//! - `connected` + nominated request: that tuple is selected, state `completed`.
//! - `completed` + request without nomination: stored; nominated: that tuple becomes the selected
//!   one (a [`IceEvent::SelectedTupleChange`] if it was not already).
//! - consent expiry (below) or removal of the last tuple: `disconnected`, no valid tuples.
//! - [`IceServer::close`]: `closed`, final.
//!
//! When a tuple is selected, [`IceEvent::SelectedTupleChange`] comes before the
//! [`IceEvent::StateChange`] it causes, in mediasoup's order.
//!
//! Consent freshness (RFC 7675, mediasoup's `iceConsentTimeout`, default 30 s, 0 disables, else
//! clamped to 10..=60 s as mediasoup does): while `connected` or `completed`, a valid request on
//! the selected tuple must arrive at least every `consent_timeout`. If none does, the state goes
//! to `disconnected` and every tuple is dropped (media from them is refused from then on); a
//! new valid request starts over as from `new`. [`IceServer::poll_timeout`] gives the deadline,
//! [`IceServer::handle_timeout`] acts on it. (mediasoup ≥ 3.14 also sends its own consent
//! requests when it knows the remote ICE parameters; we do not, as mediasoup-client never gives
//! them to the server.)
//!
//! ICE restart ([`IceServer::restart`], mediasoup's `restartIce()`): new ufrag and password; state
//! and tuples are kept (media keeps flowing on the selected tuple), the nomination counter resets.
//! As in mediasoup, the previous credentials stay accepted (and answered with the previous
//! password) until the first request authenticated with the new ones arrives: the browser keeps
//! checking with the old ones until its renegotiation completes, and refusing them would drop
//! its consent. After that, the old credentials get 401.
//!
//! Bounded: at most [`MAX_TUPLES`] tuples (the oldest one that is neither the newest nor the
//! selected is dropped, as in mediasoup) and [`MAX_PENDING_EVENTS`] undrained events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::stun::{Credentials, Processed, Responder, StunError};
use crate::error::{Error, Result};
use crate::Protocol;

/// Valid tuples kept at most (mediasoup's `MaxTuples`).
pub const MAX_TUPLES: usize = 8;
/// Events kept until polled; past this the oldest is dropped (and counted). A caller that polls
/// after each call never gets near it: one call queues at most 2 + [`MAX_TUPLES`] events.
pub const MAX_PENDING_EVENTS: usize = 32;
/// mediasoup's default `iceConsentTimeout`.
pub const CONSENT_TIMEOUT_DEFAULT: Duration = Duration::from_secs(30);
/// mediasoup's lower clamp of a non-zero `iceConsentTimeout`.
pub const CONSENT_TIMEOUT_MIN: Duration = Duration::from_secs(10);
/// mediasoup's upper clamp of `iceConsentTimeout`.
pub const CONSENT_TIMEOUT_MAX: Duration = Duration::from_secs(60);
/// Length of a generated username fragment (mediasoup: `GetRandomString(32)`).
pub const UFRAG_LEN: usize = 32;
/// Length of a generated password (mediasoup: `GetRandomString(32)`).
pub const PASSWORD_LEN: usize = 32;
/// RFC 8839 bounds on ice-ufrag (4..=256) and ice-pwd (22..=256).
pub const UFRAG_LEN_MIN: usize = 4;
pub const PASSWORD_LEN_MIN: usize = 22;
pub const CREDENTIAL_LEN_MAX: usize = 256;

/// A transport tuple: where a packet came from and on what. Compared whole (mediasoup's
/// `TransportTuple::Compare`). (Not `Hash`: `crate::Protocol` is not.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceTuple {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub protocol: Protocol,
}

impl IceTuple {
    pub fn new(local: SocketAddr, remote: SocketAddr, protocol: Protocol) -> Self {
        IceTuple { local, remote, protocol }
    }
}

/// mediasoup's `IceState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceState {
    New,
    Connected,
    Completed,
    Disconnected,
    Closed,
}

impl IceState {
    /// The name as mediasoup spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            IceState::New => "new",
            IceState::Connected => "connected",
            IceState::Completed => "completed",
            IceState::Disconnected => "disconnected",
            IceState::Closed => "closed",
        }
    }
}

/// What the owner of an [`IceServer`] hears about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IceEvent {
    /// mediasoup's `icestatechange`.
    StateChange(IceState),
    /// mediasoup's `iceselectedtuplechange`: send on this tuple from now on.
    SelectedTupleChange(IceTuple),
    /// The tuple is no longer valid (evicted past [`MAX_TUPLES`], consent expiry, close): a TCP
    /// connection on it can be closed.
    TupleRemoved(IceTuple),
}

/// mediasoup's `IceParameters` (`iceLite` is always true).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceParameters {
    pub username_fragment: String,
    pub password: String,
    pub ice_lite: bool,
}

/// `'host'`: the only candidate type an SFU on its own addresses offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceCandidateType {
    Host,
}

/// `'passive'`: we accept ICE-TCP connections, never open them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IceCandidateTcpType {
    Passive,
}

/// mediasoup's `IceCandidate` (3.13+: `address`, with the deprecated `ip` mirroring it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceCandidate {
    pub foundation: String,
    pub priority: u32,
    pub address: String,
    /// Deprecated in mediasoup 3.13 in favour of `address`, still sent with the same value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    pub protocol: Protocol,
    pub port: u16,
    #[serde(rename = "type")]
    pub typ: IceCandidateType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_type: Option<IceCandidateTcpType>,
}

impl IceCandidate {
    /// A host candidate as mediasoup builds it: foundation `udpcandidate` / `tcpcandidate`,
    /// `tcpType: 'passive'` for TCP. `address` is the announced address if any, else the
    /// listening IP.
    pub fn host(address: &str, protocol: Protocol, port: u16, priority: u32) -> Self {
        let (foundation, tcp_type) = match protocol {
            Protocol::Udp => ("udpcandidate", None),
            Protocol::Tcp => ("tcpcandidate", Some(IceCandidateTcpType::Passive)),
        };
        IceCandidate {
            foundation: foundation.to_owned(),
            priority,
            address: address.to_owned(),
            ip: Some(address.to_owned()),
            protocol,
            port,
            typ: IceCandidateType::Host,
            tcp_type,
        }
    }
}

/// Legacy `preferUdp` / `preferTcp` of `listenIps`-style options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolPreference {
    #[default]
    None,
    PreferUdp,
    PreferTcp,
}

/// Candidates per transport at most for [`ice_candidate_priority`]'s local preference to stay
/// distinct and positive.
pub const MAX_LISTEN_INFOS: usize = 64;

/// The priority mediasoup gives the candidate of `listenInfos[listen_index]`
/// (WebRtcTransport.cpp / WebRtcServer.cpp, `generateIceCandidatePriority`), RFC 8445 §5.1.2.1:
///
/// ```text
/// priority         = 2^24 * 64 (host type preference) + 2^8 * local_preference + (256 - 1 (component))
/// local_preference = 10000 - 100 * listen_index  (+ 1000 if the protocol is the preferred one)
/// ```
///
/// So candidates rank in `listenInfos` order: that order is how mediasoup 3.13+ expresses
/// "prefer UDP" (list UDP first); UDP is not ranked above TCP by itself. The `+ 1000` is the
/// `preferUdp` / `preferTcp` of the older `listenIps` options (pre-3.13), where UDP and TCP
/// candidates of one IP shared an index. `listen_index` is clamped to [`MAX_LISTEN_INFOS`] - 1.
pub fn ice_candidate_priority(listen_index: usize, protocol: Protocol, preference: ProtocolPreference) -> u32 {
    const TYPE_PREFERENCE: u32 = 64;
    const COMPONENT: u32 = 1;
    const LOCAL_PREFERENCE_DEFAULT: u32 = 10_000;
    const LOCAL_PREFERENCE_STEP: u32 = 100;
    const PREFERRED_PROTOCOL_BONUS: u32 = 1_000;
    let index = listen_index.min(MAX_LISTEN_INFOS - 1) as u32;
    let mut local_preference = LOCAL_PREFERENCE_DEFAULT - LOCAL_PREFERENCE_STEP * index;
    let preferred = matches!(
        (preference, protocol),
        (ProtocolPreference::PreferUdp, Protocol::Udp) | (ProtocolPreference::PreferTcp, Protocol::Tcp)
    );
    if preferred {
        local_preference += PREFERRED_PROTOCOL_BONUS;
    }
    debug_assert!(local_preference <= u16::MAX as u32);
    (TYPE_PREFERENCE << 24) + (local_preference << 8) + (256 - COMPONENT)
}

/// mediasoup's `Utils::Crypto::GetRandomString` alphabet.
const RANDOM_STRING_CHARS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn random_string(random: &[u8]) -> String {
    // byte % 36: the first 4 characters are 8/256 likely instead of 7/256, which leaves more than
    // 5.1 bits per character (over 160 bits for a password). No syscall: the caller draws the bytes.
    random.iter().map(|&b| RANDOM_STRING_CHARS[(b % 36) as usize] as char).collect()
}

/// A username fragment from caller-drawn random bytes (mediasoup: 32 of `[0-9a-z]`).
pub fn generate_ufrag(random: &[u8; UFRAG_LEN]) -> String {
    random_string(random)
}

/// A password from caller-drawn random bytes (mediasoup: 32 of `[0-9a-z]`).
pub fn generate_password(random: &[u8; PASSWORD_LEN]) -> String {
    random_string(random)
}

fn is_ice_chars(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// Whether `ufrag` / `password` are valid RFC 8839 ice-ufrag / ice-pwd.
pub fn valid_credentials(ufrag: &str, password: &str) -> bool {
    (UFRAG_LEN_MIN..=CREDENTIAL_LEN_MAX).contains(&ufrag.len())
        && (PASSWORD_LEN_MIN..=CREDENTIAL_LEN_MAX).contains(&password.len())
        && is_ice_chars(ufrag)
        && is_ice_chars(password)
}

/// mediasoup's clamping of `iceConsentTimeout`: zero disables, else 10..=60 s.
pub fn clamp_consent_timeout(timeout: Duration) -> Duration {
    if timeout.is_zero() {
        timeout
    } else {
        timeout.clamp(CONSENT_TIMEOUT_MIN, CONSENT_TIMEOUT_MAX)
    }
}

/// The ICE-lite server of one WebRtcTransport. See the module docs.
#[derive(Debug)]
pub struct IceServer {
    ufrag: String,
    password: String,
    /// Credentials before the last restart, until the new ones are first used.
    old: Option<(String, String)>,
    consent_timeout: Duration,
    state: IceState,
    /// Valid tuples, oldest first; at most [`MAX_TUPLES`].
    tuples: Vec<IceTuple>,
    selected: Option<IceTuple>,
    /// Highest NOMINATION value seen (renomination).
    remote_nomination: u32,
    /// When consent expires, while connected or completed (and consent checking is enabled).
    consent_deadline: Option<Instant>,
    events: VecDeque<IceEvent>,
    events_dropped: u64,
    responder: Responder,
}

impl IceServer {
    /// A server in state `new`. `consent_timeout` is mediasoup's `iceConsentTimeout` (zero
    /// disables consent checking; otherwise clamped to 10..=60 s).
    ///
    /// Panics if the credentials are not valid ICE credentials ([`valid_credentials`]): they are
    /// generated by the engine ([`generate_ufrag`], [`generate_password`]), never taken from the
    /// network.
    pub fn new(ufrag: String, password: String, consent_timeout: Duration) -> Self {
        assert!(valid_credentials(&ufrag, &password), "invalid ICE credentials");
        IceServer {
            ufrag,
            password,
            old: None,
            consent_timeout: clamp_consent_timeout(consent_timeout),
            state: IceState::New,
            tuples: Vec::with_capacity(MAX_TUPLES + 1),
            selected: None,
            remote_nomination: 0,
            consent_deadline: None,
            events: VecDeque::with_capacity(MAX_PENDING_EVENTS),
            events_dropped: 0,
            responder: Responder::new(),
        }
    }

    pub fn state(&self) -> IceState {
        self.state
    }

    pub fn selected_tuple(&self) -> Option<&IceTuple> {
        self.selected.as_ref()
    }

    /// Valid tuples, oldest first.
    pub fn tuples(&self) -> &[IceTuple] {
        &self.tuples
    }

    /// Whether media from `tuple` is accepted: a request on it authenticated and it has not been
    /// dropped since. The selected tuple is checked first (the common case).
    pub fn is_valid_tuple(&self, tuple: &IceTuple) -> bool {
        self.selected.as_ref() == Some(tuple) || self.tuples.contains(tuple)
    }

    pub fn username_fragment(&self) -> &str {
        &self.ufrag
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// The effective (clamped) consent timeout; zero when disabled.
    pub fn consent_timeout(&self) -> Duration {
        self.consent_timeout
    }

    /// Local ICE parameters, for the transport's `iceParameters`.
    pub fn parameters(&self) -> IceParameters {
        IceParameters { username_fragment: self.ufrag.clone(), password: self.password.clone(), ice_lite: true }
    }

    /// Events dropped because [`MAX_PENDING_EVENTS`] were waiting.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// When [`IceServer::handle_timeout`] must be called next (consent expiry), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.consent_deadline
    }

    /// Expires consent if its deadline has passed: state `disconnected`, every tuple dropped.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(deadline) = self.consent_deadline else { return };
        if now < deadline {
            return;
        }
        debug_assert!(matches!(self.state, IceState::Connected | IceState::Completed));
        self.clear_tuples();
        self.remote_nomination = 0;
        self.consent_deadline = None;
        self.set_state(IceState::Disconnected);
    }

    /// Processes one STUN packet received on `tuple`. Returns the length of the response written
    /// to `out` (to send back on `tuple`), or `None` when there is nothing to send (a STUN
    /// indication or response). Errors are drops to count; [`StunError::Rejected`] also carries
    /// an error response to send. `out` must hold
    /// [`super::stun::STUN_RESPONSE_LEN_MAX`] bytes.
    pub fn handle_stun(
        &mut self,
        now: Instant,
        tuple: &IceTuple,
        bytes: &[u8],
        out: &mut [u8],
    ) -> Result<Option<usize>, StunError> {
        if self.state == IceState::Closed {
            return Err(StunError::Closed);
        }
        let current = Credentials { ufrag: &self.ufrag, password: &self.password };
        let processed = match &self.old {
            Some((ufrag, password)) => {
                let old = Credentials { ufrag, password };
                self.responder.process(bytes, tuple.remote, &[current, old], out)?
            }
            None => self.responder.process(bytes, tuple.remote, &[current], out)?,
        };
        let (request, credentials_index, response_len) = match processed {
            Processed::Ignored => return Ok(None),
            Processed::Accepted { request, credentials_index, response_len } => {
                (request, credentials_index, response_len)
            }
        };
        if credentials_index == 0 {
            // The new credentials are in use: the old ones are refused from now on.
            self.old = None;
        }
        let nominated = request.use_candidate || request.nomination.is_some();
        // A NOMINATION must grow to count (renomination); USE-CANDIDATE always counts.
        let accepted = match request.nomination {
            Some(n) => n > self.remote_nomination,
            None => request.use_candidate,
        };
        self.handle_tuple(now, *tuple, nominated, accepted, request.nomination);
        if self.selected == Some(*tuple) && self.consent_deadline.is_some() {
            self.consent_deadline = Some(now + self.consent_timeout);
        }
        Ok(Some(response_len))
    }

    fn handle_tuple(
        &mut self,
        now: Instant,
        tuple: IceTuple,
        nominated: bool,
        accepted: bool,
        nomination: Option<u32>,
    ) {
        match self.state {
            IceState::New | IceState::Disconnected => {
                debug_assert!(self.selected.is_none() && self.tuples.is_empty());
                self.add_tuple(tuple);
                self.select(now, tuple);
                // mediasoup stores a tuple nominated with a stale NOMINATION without selecting it
                // (in 'new' that can only be NOMINATION 0); here it connects instead, so a stored
                // tuple always implies a selected one.
                if nominated && accepted {
                    self.update_nomination(nomination);
                    self.set_state(IceState::Completed);
                } else {
                    self.set_state(IceState::Connected);
                }
            }
            IceState::Connected | IceState::Completed => {
                debug_assert!(self.selected.is_some() && !self.tuples.is_empty());
                self.add_tuple(tuple);
                if nominated && accepted {
                    self.select(now, tuple);
                    self.update_nomination(nomination);
                    self.set_state(IceState::Completed);
                }
            }
            // handle_stun returns early when closed.
            IceState::Closed => debug_assert!(false, "handle_tuple while closed"),
        }
    }

    fn update_nomination(&mut self, nomination: Option<u32>) {
        if let Some(n) = nomination {
            self.remote_nomination = self.remote_nomination.max(n);
        }
    }

    /// Stores `tuple` if new; past [`MAX_TUPLES`] drops the oldest that is neither it nor the
    /// selected one.
    fn add_tuple(&mut self, tuple: IceTuple) {
        if self.tuples.contains(&tuple) {
            return;
        }
        self.tuples.push(tuple);
        if self.tuples.len() > MAX_TUPLES {
            let selected = self.selected;
            if let Some(i) = self.tuples.iter().position(|t| *t != tuple && Some(*t) != selected) {
                let removed = self.tuples.remove(i);
                self.push_event(IceEvent::TupleRemoved(removed));
            }
        }
        debug_assert!(self.tuples.len() <= MAX_TUPLES);
    }

    /// Makes a stored tuple the selected one; an event and a fresh consent period if it changed.
    fn select(&mut self, now: Instant, tuple: IceTuple) {
        debug_assert!(self.tuples.contains(&tuple));
        if self.selected == Some(tuple) {
            return;
        }
        self.selected = Some(tuple);
        self.push_event(IceEvent::SelectedTupleChange(tuple));
        if !self.consent_timeout.is_zero() {
            self.consent_deadline = Some(now + self.consent_timeout);
        }
    }

    fn set_state(&mut self, state: IceState) {
        if self.state != state {
            self.state = state;
            self.push_event(IceEvent::StateChange(state));
        }
    }

    fn clear_tuples(&mut self) {
        self.selected = None;
        for i in 0..self.tuples.len() {
            let removed = self.tuples[i];
            self.push_event(IceEvent::TupleRemoved(removed));
        }
        self.tuples.clear();
    }

    fn push_event(&mut self, event: IceEvent) {
        if self.events.len() == MAX_PENDING_EVENTS {
            self.events.pop_front();
            self.events_dropped += 1;
        }
        self.events.push_back(event);
    }

    /// Drops one tuple (e.g. its TCP connection closed; mediasoup's `RemoveTuple`). If it was the
    /// selected one, the newest remaining tuple is selected, or, if none is left, the state goes
    /// to `disconnected`.
    pub fn remove_tuple(&mut self, now: Instant, tuple: &IceTuple) {
        let Some(i) = self.tuples.iter().position(|t| t == tuple) else { return };
        let removed = self.tuples.remove(i);
        self.push_event(IceEvent::TupleRemoved(removed));
        if self.selected != Some(removed) {
            return;
        }
        self.selected = None;
        match self.tuples.last().copied() {
            Some(newest) => self.select(now, newest),
            None => {
                self.remote_nomination = 0;
                self.consent_deadline = None;
                self.set_state(IceState::Disconnected);
            }
        }
    }

    /// ICE restart: new local credentials (see the module docs for what is kept). Fails with
    /// `InvalidStateError` once closed; panics on invalid credentials like [`IceServer::new`].
    pub fn restart(&mut self, now: Instant, ufrag: String, password: String) -> Result<()> {
        if self.state == IceState::Closed {
            return Err(Error::invalid_state("ICE server closed"));
        }
        assert!(valid_credentials(&ufrag, &password), "invalid ICE credentials");
        let previous_ufrag = std::mem::replace(&mut self.ufrag, ufrag);
        let previous_password = std::mem::replace(&mut self.password, password);
        self.old = Some((previous_ufrag, previous_password));
        self.remote_nomination = 0;
        // mediasoup restarts its consent check so the switch of credentials is not held against
        // the peer.
        if self.consent_deadline.is_some() {
            self.consent_deadline = Some(now + self.consent_timeout);
        }
        Ok(())
    }

    /// Closes the server: every tuple dropped, state `closed`, no more input processed.
    pub fn close(&mut self) {
        if self.state == IceState::Closed {
            return;
        }
        self.clear_tuples();
        self.consent_deadline = None;
        self.old = None;
        self.set_state(IceState::Closed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priority_follows_listen_order_and_preference() {
        let p0 = ice_candidate_priority(0, Protocol::Udp, ProtocolPreference::None);
        assert_eq!(p0, (64 << 24) + (10_000 << 8) + 255);
        assert!(ice_candidate_priority(1, Protocol::Udp, ProtocolPreference::None) < p0);
        assert_eq!(ice_candidate_priority(0, Protocol::Tcp, ProtocolPreference::None), p0);
        assert!(
            ice_candidate_priority(0, Protocol::Tcp, ProtocolPreference::PreferUdp)
                < ice_candidate_priority(0, Protocol::Udp, ProtocolPreference::PreferUdp)
        );
        assert!(ice_candidate_priority(usize::MAX, Protocol::Udp, ProtocolPreference::None) > 0);
    }

    #[test]
    fn generated_credentials_are_valid() {
        let u = generate_ufrag(&[255; UFRAG_LEN]);
        let p = generate_password(&[7; PASSWORD_LEN]);
        assert_eq!(u.len(), UFRAG_LEN);
        assert!(valid_credentials(&u, &p));
        assert!(!valid_credentials("abc", &p));
        assert!(!valid_credentials("ab:cd", &p));
    }

    #[test]
    fn consent_timeout_clamps_like_mediasoup() {
        assert_eq!(clamp_consent_timeout(Duration::ZERO), Duration::ZERO);
        assert_eq!(clamp_consent_timeout(Duration::from_secs(1)), CONSENT_TIMEOUT_MIN);
        assert_eq!(clamp_consent_timeout(Duration::from_secs(600)), CONSENT_TIMEOUT_MAX);
    }
}
