//! STUN Binding for an ICE-lite server (RFC 8489 messages, RFC 8445 attributes), on `rtc-stun`.
//!
//! [`Responder::process`] takes one received datagram (or one RFC 4571 frame) and either answers
//! a valid Binding request with a success response written into the caller's buffer, answers an
//! invalid one with an error response, or drops it. It decides nothing about ICE state: it reports
//! what the request carried ([`BindingRequest`]) and which credentials it matched, and
//! [`super::ice::IceServer`] does the rest.
//!
//! The checks, in mediasoup's order (`IceServer::ProcessStunRequest`), and what each failure gets:
//!
//! | check                                              | failure                      | reply          |
//! |----------------------------------------------------|------------------------------|----------------|
//! | header: first two bits zero, magic cookie, length  | [`StunError::NotStun`] / [`StunError::Malformed`] | none |
//! | size at most [`STUN_MESSAGE_LEN_MAX`]              | [`StunError::TooLarge`]      | none           |
//! | attributes parse (`rtc-stun`)                      | [`StunError::Malformed`]     | none           |
//! | FINGERPRINT, if present, is last and matches       | [`StunError::BadFingerprint`]| none (1)       |
//! | class is request (indications, responses ignored)  | `Ok(Processed::Ignored)`     | none           |
//! | method is Binding                                  | [`RejectReason::UnknownMethod`]      | 400    |
//! | FINGERPRINT present                                | [`RejectReason::MissingFingerprint`] | 400    |
//! | PRIORITY present, 4 bytes, non-zero                | [`RejectReason::MissingPriority`]    | 400    |
//! | USERNAME present                                   | [`RejectReason::MissingUsername`]    | 400    |
//! | MESSAGE-INTEGRITY present, 20 bytes                | [`RejectReason::MissingIntegrity`]   | 400    |
//! | USERNAME is `<localUfrag>:<anything>`              | [`RejectReason::BadUsername`]        | 401    |
//! | MESSAGE-INTEGRITY verifies with that password      | [`RejectReason::BadIntegrity`]       | 401    |
//! | no ICE-CONTROLLED (we are always controlled)       | [`RejectReason::RoleConflict`]       | 487    |
//!
//! (1) mediasoup's parser rejects a packet whose FINGERPRINT does not match before the ICE server
//! sees it, so it is dropped without a reply; so is one that does not parse at all.
//!
//! Error responses carry ERROR-CODE (with rtc-stun's default reason phrase) and FINGERPRINT, and no
//! MESSAGE-INTEGRITY: a 400 or 401 cannot be authenticated, and mediasoup sends none on 487
//! either. A success response carries XOR-MAPPED-ADDRESS (the request's source), MESSAGE-INTEGRITY
//! keyed with the password the request authenticated with, and FINGERPRINT.
//!
//! Attributes after MESSAGE-INTEGRITY (other than FINGERPRINT) are ignored, as RFC 8489 §14.5
//! requires: an attacker cannot add USE-CANDIDATE behind an authenticated request.
//!
//! Allocation: `rtc-stun` copies the message and each attribute value into `Vec`s, and its HMAC is
//! a boxed trait object. That is a handful of small allocations per Binding request, which a
//! browser sends a few times per second per tuple (consent freshness), not per media packet, so it
//! is kept; the two scratch [`Message`]s are reused so their buffers are not reallocated.

use std::fmt;
use std::net::SocketAddr;

use rtc_stun::attributes::{
    AttrType, ATTR_FINGERPRINT, ATTR_ICE_CONTROLLED, ATTR_ICE_CONTROLLING, ATTR_MESSAGE_INTEGRITY, ATTR_PRIORITY,
    ATTR_USERNAME, ATTR_USE_CANDIDATE,
};
use rtc_stun::crypto::providers::RingCrypto;
use rtc_stun::error_code::{ErrorCode, CODE_BAD_REQUEST, CODE_ROLE_CONFLICT, CODE_UNAUTHORIZED};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{
    Message, MessageType, Setter, TransactionId, BINDING_ERROR, BINDING_SUCCESS, CLASS_REQUEST, MAGIC_COOKIE,
    METHOD_BINDING,
};
use rtc_stun::xoraddr::XorMappedAddress;

/// STUN header size.
pub const STUN_HEADER_LEN: usize = 20;
/// Largest STUN message processed. A Binding request from a browser is 100 to 200 bytes; this
/// bounds the parsing work (and `rtc-stun`'s per-attribute allocations) one packet can cause.
pub const STUN_MESSAGE_LEN_MAX: usize = 1500;
/// Smallest `out` buffer [`Responder::process`] accepts. The largest response it writes is a
/// success response to an IPv6 source: 20 (header) + 24 (XOR-MAPPED-ADDRESS) + 24
/// (MESSAGE-INTEGRITY) + 8 (FINGERPRINT) = 76 bytes; error responses are shorter.
pub const STUN_RESPONSE_LEN_MAX: usize = 128;
/// NOMINATION (draft-thatcher-ice-renomination), which mediasoup honours next to USE-CANDIDATE.
pub const ATTR_NOMINATION: AttrType = AttrType(0xC001);

/// The HMAC-SHA1 of MESSAGE-INTEGRITY. A unit struct: no state, no global, nothing to initialise.
static CRYPTO: RingCrypto = RingCrypto;

/// Whether `bytes` look like a STUN message (RFC 7983 demultiplexing: first byte 0..=3, plus
/// the magic cookie). Cheap; no parsing.
pub fn is_stun(bytes: &[u8]) -> bool {
    bytes.len() >= STUN_HEADER_LEN && bytes[0] < 4 && bytes[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// Why a Binding request was answered with an error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// Not a Binding request (400).
    UnknownMethod,
    /// No FINGERPRINT (400).
    MissingFingerprint,
    /// No PRIORITY, or zero, or not 4 bytes (400).
    MissingPriority,
    /// No USERNAME (400).
    MissingUsername,
    /// No MESSAGE-INTEGRITY, or not 20 bytes (400).
    MissingIntegrity,
    /// USERNAME does not start with one of our ufrags followed by `:` (401).
    BadUsername,
    /// MESSAGE-INTEGRITY does not verify with the password of the ufrag (401).
    BadIntegrity,
    /// The peer claims ICE-CONTROLLED; an ICE-lite server is always controlled (487).
    RoleConflict,
}

impl RejectReason {
    /// The STUN error code of the response.
    pub fn code(self) -> u16 {
        self.error_code().0
    }

    fn error_code(self) -> ErrorCode {
        match self {
            RejectReason::UnknownMethod
            | RejectReason::MissingFingerprint
            | RejectReason::MissingPriority
            | RejectReason::MissingUsername
            | RejectReason::MissingIntegrity => CODE_BAD_REQUEST,
            RejectReason::BadUsername | RejectReason::BadIntegrity => CODE_UNAUTHORIZED,
            RejectReason::RoleConflict => CODE_ROLE_CONFLICT,
        }
    }
}

/// Why a STUN packet was not accepted. Every variant is a drop to count, never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StunError {
    /// Shorter than a header, first byte over 3, or no magic cookie: not STUN at all.
    NotStun,
    /// The header length disagrees with the packet size, or the attributes do not parse.
    Malformed,
    /// Larger than [`STUN_MESSAGE_LEN_MAX`].
    TooLarge,
    /// FINGERPRINT present but not last or not matching: dropped without a reply.
    BadFingerprint,
    /// `out` is shorter than [`STUN_RESPONSE_LEN_MAX`]. Nothing was parsed.
    BufferTooSmall,
    /// The ICE server is closed.
    Closed,
    /// A request answered with an error response of `response_len` bytes (in `out`), to send
    /// back on the tuple it came from.
    Rejected { reason: RejectReason, response_len: usize },
}

impl StunError {
    /// The error response to send back, if this rejection has one.
    pub fn response_len(&self) -> Option<usize> {
        match self {
            StunError::Rejected { response_len, .. } => Some(*response_len),
            _ => None,
        }
    }
}

impl fmt::Display for StunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StunError::NotStun => write!(f, "not a STUN message"),
            StunError::Malformed => write!(f, "malformed STUN message"),
            StunError::TooLarge => write!(f, "STUN message larger than {STUN_MESSAGE_LEN_MAX} bytes"),
            StunError::BadFingerprint => write!(f, "STUN FINGERPRINT mismatch"),
            StunError::BufferTooSmall => write!(f, "response buffer shorter than {STUN_RESPONSE_LEN_MAX} bytes"),
            StunError::Closed => write!(f, "ICE server closed"),
            StunError::Rejected { reason, .. } => {
                write!(f, "STUN Binding request rejected ({}): {reason:?}", reason.code())
            }
        }
    }
}

impl std::error::Error for StunError {}

/// What a valid (authenticated) Binding request carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingRequest {
    pub transaction_id: [u8; 12],
    /// PRIORITY (non-zero).
    pub priority: u32,
    /// USE-CANDIDATE present (nomination, RFC 8445 §7.3.1.5).
    pub use_candidate: bool,
    /// NOMINATION value (renomination), if present and well formed.
    pub nomination: Option<u32>,
    /// ICE-CONTROLLING tie-breaker, if present. ICE-CONTROLLED never gets this far (487).
    pub ice_controlling: Option<u64>,
}

/// One pair of local ICE credentials a request may authenticate with.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub ufrag: &'a str,
    pub password: &'a str,
}

/// The outcome of a packet that is not an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// A STUN indication or response: nothing to do (an ICE-lite server sends no requests).
    Ignored,
    /// A valid Binding request, authenticated with `credentials[credentials_index]`; the success
    /// response is the first `response_len` bytes of `out`.
    Accepted { request: BindingRequest, credentials_index: usize, response_len: usize },
}

/// Parses Binding requests and writes responses. Holds two scratch messages, reused across calls.
#[derive(Debug, Default)]
pub struct Responder {
    request: Message,
    response: Message,
}

/// Attributes of interest, read up to MESSAGE-INTEGRITY.
#[derive(Default)]
struct Found {
    priority: Option<u32>,
    priority_bad: bool,
    use_candidate: bool,
    nomination: Option<u32>,
    ice_controlling: Option<u64>,
    ice_controlled: bool,
    username: Option<usize>,
    integrity_len: Option<usize>,
    fingerprint: bool,
}

impl Responder {
    pub fn new() -> Self {
        Responder { request: Message::new(), response: Message::new() }
    }

    /// Processes one STUN packet received from `remote`. `credentials` are tried in order (the
    /// current ones, then the ones before an ICE restart). Any response (success or error) is
    /// written to `out`, which must hold at least [`STUN_RESPONSE_LEN_MAX`] bytes.
    pub fn process(
        &mut self,
        bytes: &[u8],
        remote: SocketAddr,
        credentials: &[Credentials<'_>],
        out: &mut [u8],
    ) -> Result<Processed, StunError> {
        if out.len() < STUN_RESPONSE_LEN_MAX {
            return Err(StunError::BufferTooSmall);
        }
        if !is_stun(bytes) {
            return Err(StunError::NotStun);
        }
        if bytes.len() > STUN_MESSAGE_LEN_MAX {
            return Err(StunError::TooLarge);
        }
        let declared = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
        if !declared.is_multiple_of(4) || STUN_HEADER_LEN + declared != bytes.len() {
            return Err(StunError::Malformed);
        }
        let msg = &mut self.request;
        msg.raw.clear();
        msg.raw.extend_from_slice(bytes);
        msg.decode().map_err(|_| StunError::Malformed)?;

        let found = scan(msg);
        if found.fingerprint {
            let last_is_fingerprint = msg.attributes.0.last().is_some_and(|a| a.typ == ATTR_FINGERPRINT);
            if !last_is_fingerprint || FINGERPRINT.check(msg).is_err() {
                return Err(StunError::BadFingerprint);
            }
        }
        if msg.typ.class != CLASS_REQUEST {
            return Ok(Processed::Ignored);
        }
        let transaction_id = msg.transaction_id;
        let reject = |reason: RejectReason, response: &mut Message, out: &mut [u8]| -> StunError {
            match write_error(response, transaction_id, reason, out) {
                Ok(response_len) => StunError::Rejected { reason, response_len },
                // Unreachable with out >= STUN_RESPONSE_LEN_MAX; still no panic.
                Err(e) => e,
            }
        };
        if msg.typ.method != METHOD_BINDING {
            return Err(reject(RejectReason::UnknownMethod, &mut self.response, out));
        }
        if !found.fingerprint {
            return Err(reject(RejectReason::MissingFingerprint, &mut self.response, out));
        }
        let priority = match found.priority {
            Some(p) if p != 0 && !found.priority_bad => p,
            _ => return Err(reject(RejectReason::MissingPriority, &mut self.response, out)),
        };
        let Some(username_index) = found.username else {
            return Err(reject(RejectReason::MissingUsername, &mut self.response, out));
        };
        if found.integrity_len != Some(20) {
            return Err(reject(RejectReason::MissingIntegrity, &mut self.response, out));
        }

        // USERNAME is "<our ufrag>:<their ufrag>"; only our part is checked. A bit per credential
        // whose ufrag matches (at most two are ever passed: current and pre-restart).
        let username = &msg.attributes.0[username_index].value;
        let local_part = username.iter().position(|&b| b == b':').map(|colon| &username[..colon]);
        let mut ufrag_matches = 0u32;
        for (i, creds) in credentials.iter().enumerate().take(32) {
            if local_part == Some(creds.ufrag.as_bytes()) {
                ufrag_matches |= 1 << i;
            }
        }
        let mut matched = None;
        for (i, creds) in credentials.iter().enumerate().take(32) {
            if ufrag_matches & (1 << i) != 0 && MessageIntegrity::check(msg, creds.password.as_bytes(), &CRYPTO).is_ok()
            {
                matched = Some(i);
                break;
            }
        }
        let ufrag_matched = ufrag_matches != 0;
        let Some(credentials_index) = matched else {
            let reason = if ufrag_matched { RejectReason::BadIntegrity } else { RejectReason::BadUsername };
            return Err(reject(reason, &mut self.response, out));
        };
        if found.ice_controlled {
            return Err(reject(RejectReason::RoleConflict, &mut self.response, out));
        }

        let password = credentials[credentials_index].password;
        let response_len = write_success(&mut self.response, transaction_id, remote, password, out)?;
        let request = BindingRequest {
            transaction_id: transaction_id.0,
            priority,
            use_candidate: found.use_candidate,
            nomination: found.nomination,
            ice_controlling: found.ice_controlling,
        };
        Ok(Processed::Accepted { request, credentials_index, response_len })
    }
}

/// Reads the attributes that matter, stopping at MESSAGE-INTEGRITY (only FINGERPRINT counts
/// after it). The first occurrence of each attribute wins.
fn scan(msg: &Message) -> Found {
    let mut found = Found::default();
    let mut after_integrity = false;
    for (i, attr) in msg.attributes.0.iter().enumerate() {
        if attr.typ == ATTR_FINGERPRINT {
            found.fingerprint = true;
            continue;
        }
        if after_integrity {
            continue;
        }
        let v = &attr.value;
        match attr.typ {
            ATTR_MESSAGE_INTEGRITY => {
                found.integrity_len = Some(v.len());
                after_integrity = true;
            }
            ATTR_USERNAME if found.username.is_none() => found.username = Some(i),
            ATTR_PRIORITY if found.priority.is_none() && !found.priority_bad => match <[u8; 4]>::try_from(&v[..]) {
                Ok(b) => found.priority = Some(u32::from_be_bytes(b)),
                Err(_) => found.priority_bad = true,
            },
            ATTR_USE_CANDIDATE => found.use_candidate = true,
            ATTR_ICE_CONTROLLED => found.ice_controlled = true,
            ATTR_ICE_CONTROLLING if found.ice_controlling.is_none() => {
                found.ice_controlling = <[u8; 8]>::try_from(&v[..]).ok().map(u64::from_be_bytes);
            }
            ATTR_NOMINATION if found.nomination.is_none() => {
                found.nomination = <[u8; 4]>::try_from(&v[..]).ok().map(|b| u32::from_be_bytes(b) & 0x00ff_ffff);
            }
            _ => {}
        }
    }
    found
}

fn start(response: &mut Message, typ: MessageType, transaction_id: TransactionId) {
    response.reset();
    response.typ = typ;
    response.transaction_id = transaction_id;
    response.write_header();
}

fn finish(response: &mut Message, out: &mut [u8]) -> Result<usize, StunError> {
    FINGERPRINT.add_to(response).map_err(|_| StunError::Malformed)?;
    let len = response.raw.len();
    let dst = out.get_mut(..len).ok_or(StunError::BufferTooSmall)?;
    dst.copy_from_slice(&response.raw);
    debug_assert!(len <= STUN_RESPONSE_LEN_MAX);
    Ok(len)
}

/// Writes a Binding success response: XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT.
pub fn write_success(
    response: &mut Message,
    transaction_id: TransactionId,
    mapped: SocketAddr,
    password: &str,
    out: &mut [u8],
) -> Result<usize, StunError> {
    start(response, BINDING_SUCCESS, transaction_id);
    let xor = XorMappedAddress { ip: mapped.ip(), port: mapped.port() };
    xor.add_to(response).map_err(|_| StunError::Malformed)?;
    MessageIntegrity::new_raw_integrity_with_provider(password.as_bytes(), &CRYPTO)
        .add_to(response)
        .map_err(|_| StunError::Malformed)?;
    finish(response, out)
}

/// Writes a Binding error response: ERROR-CODE (default reason phrase) and FINGERPRINT.
pub fn write_error(
    response: &mut Message,
    transaction_id: TransactionId,
    reason: RejectReason,
    out: &mut [u8],
) -> Result<usize, StunError> {
    start(response, BINDING_ERROR, transaction_id);
    reason.error_code().add_to(response).map_err(|_| StunError::Malformed)?;
    finish(response, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demux_first_byte_and_cookie() {
        let mut b = [0u8; 20];
        b[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        assert!(is_stun(&b));
        b[0] = 0x80; // RTP
        assert!(!is_stun(&b));
        assert!(!is_stun(&b[..19]));
    }

    #[test]
    fn garbage_is_typed_errors() {
        let mut r = Responder::new();
        let mut out = [0u8; STUN_RESPONSE_LEN_MAX];
        let remote: SocketAddr = "1.2.3.4:5".parse().unwrap();
        let creds = [Credentials { ufrag: "u", password: "p" }];
        assert_eq!(r.process(&[], remote, &creds, &mut out), Err(StunError::NotStun));
        let mut b = [0u8; 24];
        b[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
        b[3] = 8; // declares 8 bytes, has 4
        assert_eq!(r.process(&b, remote, &creds, &mut out), Err(StunError::Malformed));
        assert_eq!(r.process(&b, remote, &creds, &mut out[..10]), Err(StunError::BufferTooSmall));
    }
}
