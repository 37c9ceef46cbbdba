//! One DTLS-SRTP association, sans-IO, over `rtc-dtls` (webrtc-rs's sans-IO line).
//!
//! The verbs are the engine's: [`DtlsSession::handle_datagram`] and
//! [`DtlsSession::handle_timeout`] take `now`; [`DtlsSession::poll_transmit`],
//! [`DtlsSession::poll_timeout`] and [`DtlsSession::poll_event`] hand back what to send, when to
//! wake up and what happened. Nothing here reads a clock or touches a socket.
//!
//! Authentication is WebRTC's: no CA chain, the peer's leaf certificate must match one of the
//! fingerprints in its signalled `DtlsParameters`. A server requires a client certificate.
//! Once the handshake completes, the SRTP profile negotiated through `use_srtp` and the keys
//! exported per RFC 5764 §4.2 come out as [`DtlsEvent::Connected`].
//!
//! The DTLS path is the control plane of a transport (a handful of datagrams per association),
//! so the per-datagram copies and `Vec`s inside `rtc-dtls` are acceptable here; media never goes
//! through this module.

use std::collections::VecDeque;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::error::Error as RtcError;
use rtc_shared::TransportProtocol;

use super::cert::{DtlsCertificate, DtlsFingerprint, DtlsRole, DtlsState};
use super::srtp::{SrtpKeys, SrtpProfile};

/// `rtc-dtls` keys associations by remote address; a session has exactly one, under this
/// placeholder (the real 5-tuple lives in the transport).
const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9);

/// Events waiting for [`DtlsSession::poll_event`]. A session yields a handful in its life; past
/// the bound, application data is dropped (state events always fit, there are at most two).
pub const MAX_DTLS_EVENTS: usize = 64;

/// The largest datagram a session sends (`rtc-dtls`' default MTU). A `poll_transmit` buffer of
/// this size always suffices.
pub const MAX_DTLS_DATAGRAM_BYTES: usize = 1200;

/// RFC 5764 §4.2 exporter label.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// The error the fingerprint check returns inside `rtc-dtls`, recognised on the way out.
const FINGERPRINT_MISMATCH: &str = "remote certificate does not match the remote DTLS fingerprints";

/// Which end of the handshake this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DtlsSide {
    Client,
    Server,
}

impl From<DtlsSide> for DtlsRole {
    fn from(side: DtlsSide) -> Self {
        match side {
            DtlsSide::Client => DtlsRole::Client,
            DtlsSide::Server => DtlsRole::Server,
        }
    }
}

/// mediasoup's role resolution (`WebRtcTransport::Connect`). A mediasoup WebRtcTransport's local
/// role is `auto` until `connect()` brings the remote `DtlsParameters`; then:
/// - remote `client` -> we are the server;
/// - remote `server` -> we are the client;
/// - remote `auto` (or no role given, which mediasoup reads as `auto`) -> we are the client,
///   "since we are ICE controlled" (mediasoup's comment: the ICE-lite side takes the client role
///   so that the browser, the controlling side, answers as server).
///
/// A local role fixed to `client`/`server` is kept, unless the remote claims the same role.
pub fn resolve_role(local: DtlsRole, remote: Option<DtlsRole>) -> Result<DtlsSide, DtlsError> {
    match (local, remote.unwrap_or(DtlsRole::Auto)) {
        (DtlsRole::Client, DtlsRole::Client) | (DtlsRole::Server, DtlsRole::Server) => Err(DtlsError::RoleConflict),
        (DtlsRole::Client, _) => Ok(DtlsSide::Client),
        (DtlsRole::Server, _) => Ok(DtlsSide::Server),
        (DtlsRole::Auto, DtlsRole::Client) => Ok(DtlsSide::Server),
        (DtlsRole::Auto, DtlsRole::Server | DtlsRole::Auto) => Ok(DtlsSide::Client),
    }
}

/// Why a session failed (the reason carried by [`DtlsEvent::Failed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsFailure {
    /// The peer's certificate matched none of its signalled fingerprints, or it sent none.
    FingerprintMismatch,
    /// The handshake completed without an SRTP profile both sides offered.
    NoSrtpProfile,
    /// The peer stopped answering: handshake retransmissions exhausted.
    Timeout,
    /// The peer sent a fatal alert.
    RemoteAlert,
    /// Anything else the handshake refused (text from `rtc-dtls`).
    Handshake(String),
}

impl fmt::Display for DtlsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtlsFailure::FingerprintMismatch => f.write_str(FINGERPRINT_MISMATCH),
            DtlsFailure::NoSrtpProfile => f.write_str("no common SRTP profile"),
            DtlsFailure::Timeout => f.write_str("DTLS handshake timed out"),
            DtlsFailure::RemoteAlert => f.write_str("peer sent a fatal DTLS alert"),
            DtlsFailure::Handshake(reason) => write!(f, "DTLS handshake failed: {reason}"),
        }
    }
}

/// What a session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsEvent {
    /// Handshake done and peer authenticated. `local` keys protect what we send, `remote` keys
    /// unprotect what we receive.
    Connected { profile: SrtpProfile, local: SrtpKeys, remote: SrtpKeys },
    /// Decrypted application data (SCTP for data channels).
    ApplicationData(Vec<u8>),
    /// The association is dead; the session ignores further input.
    Failed(DtlsFailure),
    /// The peer sent close_notify (our reply is queued for `poll_transmit`).
    Closed,
}

/// Errors from the session's entry points. Per datagram unless the session went to `Failed`
/// (which is reported as an event as well).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DtlsError {
    /// Not a sequence of well-framed DTLS records; dropped without touching the association.
    Malformed,
    /// The session is failed or closed.
    NotActive,
    /// A record `rtc-dtls` refused (bad MAC, stale epoch...); dropped, the association stays.
    Record(String),
    /// The handshake failed; a [`DtlsEvent::Failed`] is queued.
    Failed(DtlsFailure),
    /// No remote fingerprints, no SRTP profiles, or a bad configuration.
    Config(String),
    /// Both sides claim the same fixed role.
    RoleConflict,
    /// Application data before the handshake completed.
    NotConnected,
}

impl fmt::Display for DtlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DtlsError::Malformed => f.write_str("malformed DTLS datagram"),
            DtlsError::NotActive => f.write_str("DTLS session is failed or closed"),
            DtlsError::Record(reason) => write!(f, "DTLS record dropped: {reason}"),
            DtlsError::Failed(failure) => failure.fmt(f),
            DtlsError::Config(reason) => write!(f, "invalid DTLS configuration: {reason}"),
            DtlsError::RoleConflict => f.write_str("both DTLS peers claim the same role"),
            DtlsError::NotConnected => f.write_str("DTLS not connected"),
        }
    }
}

impl std::error::Error for DtlsError {}

impl From<DtlsError> for crate::Error {
    fn from(error: DtlsError) -> Self {
        match error {
            DtlsError::Config(_) | DtlsError::RoleConflict => crate::Error::type_error(error.to_string()),
            DtlsError::NotActive | DtlsError::NotConnected => crate::Error::invalid_state(error.to_string()),
            _ => crate::Error::other(error.to_string()),
        }
    }
}

/// One DTLS association. See the module docs.
pub struct DtlsSession {
    side: DtlsSide,
    state: DtlsState,
    endpoint: Endpoint,
    remote_fingerprints: Vec<DtlsFingerprint>,
    profiles: Vec<SrtpProfile>,
    events: VecDeque<DtlsEvent>,
}

impl fmt::Debug for DtlsSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DtlsSession").field("side", &self.side).field("state", &self.state).finish_non_exhaustive()
    }
}

impl DtlsSession {
    /// A session in role `side`, authenticating with `certificate`, accepting a peer whose
    /// certificate matches one of `remote_fingerprints`, offering `srtp_profiles` (in order of
    /// preference). A client sends its first flight at once (hence `now`).
    pub fn new(
        now: Instant,
        side: DtlsSide,
        certificate: &DtlsCertificate,
        remote_fingerprints: &[DtlsFingerprint],
        srtp_profiles: &[SrtpProfile],
    ) -> Result<Self, DtlsError> {
        if remote_fingerprints.is_empty() {
            return Err(DtlsError::Config("no remote fingerprints".into()));
        }
        if srtp_profiles.is_empty() {
            return Err(DtlsError::Config("no SRTP profiles".into()));
        }
        let provider = rtc_dtls::crypto_provider::default_provider().map_err(|e| DtlsError::Config(e.to_string()))?;
        let expected = remote_fingerprints.to_vec();
        let verify: rtc_dtls::config::VerifyPeerCertificateFn = Arc::new(move |chain, _| {
            if verify_chain(&expected, chain) {
                Ok(())
            } else {
                Err(RtcError::Other(FINGERPRINT_MISMATCH.into()))
            }
        });
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider)
            .with_certificates(vec![certificate.dtls_certificate()])
            .with_srtp_protection_profiles(srtp_profiles.iter().map(|p| dtls_profile(*p)).collect())
            .with_extended_master_secret(ExtendedMasterSecretType::Request)
            // No CA chain in WebRTC: the fingerprint check below is the authentication.
            .with_insecure_skip_verify(true)
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            .with_verify_peer_certificate(Some(verify))
            .build(side == DtlsSide::Client, Some(PEER))
            .map_err(|e| DtlsError::Config(e.to_string()))?;
        let config = Arc::new(config);

        let mut session = DtlsSession {
            side,
            state: DtlsState::New,
            endpoint: Endpoint::new(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 10),
                TransportProtocol::UDP,
                (side == DtlsSide::Server).then(|| config.clone()),
            ),
            remote_fingerprints: remote_fingerprints.to_vec(),
            profiles: srtp_profiles.to_vec(),
            events: VecDeque::new(),
        };
        if side == DtlsSide::Client {
            session.state = DtlsState::Connecting;
            session.endpoint.connect(now, PEER, config, None).map_err(|e| DtlsError::Config(e.to_string()))?;
        }
        Ok(session)
    }

    pub fn side(&self) -> DtlsSide {
        self.side
    }

    pub fn state(&self) -> DtlsState {
        self.state
    }

    /// One received DTLS datagram (first byte 20..=63 per RFC 7983's demux).
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Result<(), DtlsError> {
        if matches!(self.state, DtlsState::Failed | DtlsState::Closed) {
            return Err(DtlsError::NotActive);
        }
        if !is_well_framed(datagram) {
            return Err(DtlsError::Malformed);
        }
        if self.state == DtlsState::New {
            self.state = DtlsState::Connecting;
        }
        let result = self.endpoint.read(now, PEER, None, BytesMut::from(datagram));
        match result {
            Ok(events) => {
                for event in events {
                    match event {
                        EndpointEvent::HandshakeComplete => self.on_handshake_complete(),
                        EndpointEvent::ApplicationData(data) => self.push_data(data.to_vec()),
                        EndpointEvent::PeerClosed => {
                            self.state = DtlsState::Closed;
                            self.events.push_back(DtlsEvent::Closed);
                        }
                        _ => {}
                    }
                }
                // The handshake completed but the peer or the profile was refused.
                let failure = self.events.iter().rev().find_map(|event| match event {
                    DtlsEvent::Failed(failure) => Some(failure.clone()),
                    _ => None,
                });
                match failure {
                    Some(failure) if self.state == DtlsState::Failed => Err(DtlsError::Failed(failure)),
                    _ => Ok(()),
                }
            }
            Err(error) => {
                let failure = classify(&error);
                if self.state == DtlsState::Connecting || failure == DtlsFailure::RemoteAlert {
                    // During the handshake every refusal is final (rtc-dtls has already queued a
                    // fatal alert for most); once connected only an authenticated fatal alert is.
                    self.fail(failure.clone());
                    Err(DtlsError::Failed(failure))
                } else {
                    Err(DtlsError::Record(error.to_string()))
                }
            }
        }
    }

    /// Drives handshake retransmission; call at (or after) [`Self::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state != DtlsState::Connecting {
            return;
        }
        let due = self.endpoint.poll_timeout(&PEER).is_some_and(|deadline| now >= deadline);
        if due && self.endpoint.handle_timeout(PEER, now).is_err() {
            self.fail(DtlsFailure::Timeout);
        }
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            DtlsState::New | DtlsState::Connecting => self.endpoint.poll_timeout(&PEER),
            _ => None,
        }
    }

    /// Copies the next datagram to send into `buf` and returns its length. A datagram larger than
    /// `buf` is dropped (use [`MAX_DTLS_DATAGRAM_BYTES`]).
    pub fn poll_transmit(&mut self, buf: &mut [u8]) -> Option<usize> {
        loop {
            let transmit = self.endpoint.poll_transmit()?;
            let datagram = &transmit.message;
            if datagram.len() <= buf.len() {
                buf[..datagram.len()].copy_from_slice(datagram);
                return Some(datagram.len());
            }
            tracing::warn!(
                len = datagram.len(),
                buf = buf.len(),
                "DTLS datagram larger than the transmit buffer, dropped"
            );
        }
    }

    pub fn poll_event(&mut self) -> Option<DtlsEvent> {
        self.events.pop_front()
    }

    /// Sends application data (SCTP) once connected.
    pub fn send_application_data(&mut self, now: Instant, data: &[u8]) -> Result<(), DtlsError> {
        if self.state != DtlsState::Connected {
            return Err(DtlsError::NotConnected);
        }
        self.endpoint.write(now, PEER, data).map_err(|e| DtlsError::Record(e.to_string()))
    }

    /// Closes the association: queues close_notify (if there is an association) and ignores
    /// further input.
    pub fn close(&mut self, now: Instant) {
        if self.state == DtlsState::Closed {
            return;
        }
        let _ = self.endpoint.stop(now, PEER);
        self.state = DtlsState::Closed;
    }

    fn on_handshake_complete(&mut self) {
        let Some(state) = self.endpoint.get_connection_state(PEER) else {
            self.fail(DtlsFailure::Handshake("association vanished".into()));
            return;
        };
        // Defence in depth: the verify callback ran inside the handshake; check again here so
        // that a peer that skipped its certificate can never connect.
        if !verify_chain(&self.remote_fingerprints, &state.peer_certificates) {
            self.fail(DtlsFailure::FingerprintMismatch);
            return;
        }
        let Some(profile) = srtp_profile(state.srtp_protection_profile()).filter(|p| self.profiles.contains(p)) else {
            self.fail(DtlsFailure::NoSrtpProfile);
            return;
        };
        let (key_len, salt_len) = (profile.key_len(), profile.salt_len());
        let material = match state.export_keying_material(SRTP_EXPORTER_LABEL, &[], 2 * (key_len + salt_len)) {
            Ok(material) => material,
            Err(e) => {
                self.fail(DtlsFailure::Handshake(e.to_string()));
                return;
            }
        };
        // RFC 5764 §4.2: client key | server key | client salt | server salt.
        let material = material.as_ref();
        let client = SrtpKeys {
            master_key: material[..key_len].to_vec(),
            master_salt: material[2 * key_len..2 * key_len + salt_len].to_vec(),
        };
        let server = SrtpKeys {
            master_key: material[key_len..2 * key_len].to_vec(),
            master_salt: material[2 * key_len + salt_len..].to_vec(),
        };
        let (local, remote) = match self.side {
            DtlsSide::Client => (client, server),
            DtlsSide::Server => (server, client),
        };
        self.state = DtlsState::Connected;
        self.events.push_back(DtlsEvent::Connected { profile, local, remote });
    }

    fn fail(&mut self, failure: DtlsFailure) {
        if matches!(self.state, DtlsState::Failed | DtlsState::Closed) {
            return;
        }
        self.state = DtlsState::Failed;
        self.events.push_back(DtlsEvent::Failed(failure));
    }

    fn push_data(&mut self, data: Vec<u8>) {
        if self.events.len() < MAX_DTLS_EVENTS {
            self.events.push_back(DtlsEvent::ApplicationData(data));
        } else {
            tracing::debug!("DTLS event queue full, application data dropped");
        }
    }
}

fn classify(error: &RtcError) -> DtlsFailure {
    match error {
        RtcError::Other(reason) if reason == FINGERPRINT_MISMATCH => DtlsFailure::FingerprintMismatch,
        RtcError::ErrAlertFatalOrClose => DtlsFailure::RemoteAlert,
        RtcError::ErrClientNoMatchingSrtpProfile
        | RtcError::ErrServerNoMatchingSrtpProfile
        | RtcError::ErrRequestedButNoSrtpExtension => DtlsFailure::NoSrtpProfile,
        other => DtlsFailure::Handshake(other.to_string()),
    }
}

/// Whether the peer's leaf certificate matches one of the signalled fingerprints.
fn verify_chain(expected: &[DtlsFingerprint], chain: &[Vec<u8>]) -> bool {
    chain.first().is_some_and(|leaf| expected.iter().any(|fingerprint| fingerprint.matches(leaf)))
}

/// Whether `datagram` is one or more complete DTLS records (RFC 6347 §4.1: 13-byte header,
/// content type 20..=23, version 1.x in DTLS' encoding, length within the datagram).
/// The SRTP protection profile ids a DTLS ClientHello offers in its `use_srtp` extension (RFC
/// 5764 §4.1.1), in the client's order; `None` when `datagram` does not start with a whole,
/// unfragmented ClientHello that carries the extension.
///
/// `rtc-dtls` as server picks the first of the *client's* profiles it supports; mediasoup (with
/// OpenSSL) picks by the *server's* preference. Reading the offer first lets the engine hand the
/// server session the single profile it prefers among those offered (browsers list
/// AES_CM_128_HMAC_SHA1_80 first; mediasoup answers AEAD_AES_256_GCM).
pub fn client_hello_srtp_profiles(datagram: &[u8]) -> Option<Vec<u16>> {
    const RECORD_HEADER: usize = 13;
    const HANDSHAKE_HEADER: usize = 12;
    const CONTENT_HANDSHAKE: u8 = 22;
    const CLIENT_HELLO: u8 = 1;
    const EXT_USE_SRTP: u16 = 0x000e;
    fn u16_at(b: &[u8], at: usize) -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?])))
    }
    fn u24_at(b: &[u8], at: usize) -> Option<usize> {
        Some((usize::from(*b.get(at)?) << 16) | (usize::from(*b.get(at + 1)?) << 8) | usize::from(*b.get(at + 2)?))
    }
    if *datagram.first()? != CONTENT_HANDSHAKE {
        return None;
    }
    let record_len = u16_at(datagram, 11)?;
    let record = datagram.get(RECORD_HEADER..RECORD_HEADER + record_len)?;
    if *record.first()? != CLIENT_HELLO {
        return None;
    }
    let length = u24_at(record, 1)?;
    let (offset, fragment) = (u24_at(record, 6)?, u24_at(record, 9)?);
    if offset != 0 || fragment != length {
        return None; // fragmented: let the session negotiate on its own
    }
    let body = record.get(HANDSHAKE_HEADER..HANDSHAKE_HEADER + length)?;
    // client_version (2), random (32), session_id, cookie, cipher_suites, compression_methods.
    let mut at = 2 + 32;
    at += 1 + usize::from(*body.get(at)?);
    at += 1 + usize::from(*body.get(at)?);
    at += 2 + u16_at(body, at)?;
    at += 1 + usize::from(*body.get(at)?);
    let extensions_end = at + 2 + u16_at(body, at)?;
    at += 2;
    while at + 4 <= extensions_end.min(body.len()) {
        let (typ, len) = (u16_at(body, at)?, u16_at(body, at + 2)?);
        let ext = body.get(at + 4..at + 4 + len)?;
        if typ == usize::from(EXT_USE_SRTP) {
            let list_len = u16_at(ext, 0)?;
            let list = ext.get(2..2 + list_len)?;
            return Some(list.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect());
        }
        at += 4 + len;
    }
    None
}

fn is_well_framed(mut datagram: &[u8]) -> bool {
    const HEADER: usize = 13;
    if datagram.is_empty() {
        return false;
    }
    while !datagram.is_empty() {
        if datagram.len() < HEADER || !(20..=23).contains(&datagram[0]) || datagram[1] != 0xfe {
            return false;
        }
        let len = usize::from(u16::from_be_bytes([datagram[11], datagram[12]]));
        if datagram.len() < HEADER + len {
            return false;
        }
        datagram = &datagram[HEADER + len..];
    }
    true
}

fn dtls_profile(profile: SrtpProfile) -> SrtpProtectionProfile {
    match profile {
        SrtpProfile::AeadAes256Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm,
        SrtpProfile::AeadAes128Gcm => SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
        SrtpProfile::AesCm128HmacSha1_80 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
        SrtpProfile::AesCm128HmacSha1_32 => SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32,
    }
}

fn srtp_profile(profile: SrtpProtectionProfile) -> Option<SrtpProfile> {
    match profile {
        SrtpProtectionProfile::Srtp_Aead_Aes_256_Gcm => Some(SrtpProfile::AeadAes256Gcm),
        SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Some(SrtpProfile::AeadAes128Gcm),
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => Some(SrtpProfile::AesCm128HmacSha1_80),
        SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_32 => Some(SrtpProfile::AesCm128HmacSha1_32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_resolution_follows_mediasoup() {
        assert_eq!(resolve_role(DtlsRole::Auto, Some(DtlsRole::Client)), Ok(DtlsSide::Server));
        assert_eq!(resolve_role(DtlsRole::Auto, Some(DtlsRole::Server)), Ok(DtlsSide::Client));
        assert_eq!(resolve_role(DtlsRole::Auto, Some(DtlsRole::Auto)), Ok(DtlsSide::Client));
        assert_eq!(resolve_role(DtlsRole::Auto, None), Ok(DtlsSide::Client));
        assert_eq!(resolve_role(DtlsRole::Server, Some(DtlsRole::Auto)), Ok(DtlsSide::Server));
        assert_eq!(resolve_role(DtlsRole::Client, Some(DtlsRole::Client)), Err(DtlsError::RoleConflict));
    }

    #[test]
    fn framing_check() {
        assert!(!is_well_framed(&[]));
        assert!(!is_well_framed(&[22, 0xfe, 0xfd]));
        let mut record = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2];
        assert!(is_well_framed(&record));
        record.push(0);
        assert!(!is_well_framed(&record));
    }
}
