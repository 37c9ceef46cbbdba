//! The peer's public types: what tests configure and what they read back.

use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use str0m::config::DtlsVersion;
use str0m::format::Codec;
use str0m::media::{KeyframeRequestKind, MediaKind};
use str0m::rtp::Extension;
use str0m::IceConnectionState;

/// The transport protocol of an ICE candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IceProto {
    Udp,
    Tcp,
}

/// Where the peer's candidate lives.
#[derive(Clone, Copy, Debug)]
pub enum PeerTransport {
    /// One UDP host candidate bound to this address (port 0 picks one).
    Udp(SocketAddr),
    /// Active TCP host candidates on this IP: one connection per passive remote TCP candidate,
    /// opened in `connect` (mediasoup's TCP candidates are passive).
    TcpActive(IpAddr),
    /// A passive TCP host candidate listening on this address (for peer-to-peer self tests).
    TcpPassive(SocketAddr),
}

/// The DTLS role, named as mediasoup's `dtlsParameters.role` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DtlsRole {
    Client,
    Server,
}

impl DtlsRole {
    pub fn as_str(self) -> &'static str {
        match self {
            DtlsRole::Client => "client",
            DtlsRole::Server => "server",
        }
    }

    /// The role the other end must take.
    pub fn remote(self) -> DtlsRole {
        match self {
            DtlsRole::Client => DtlsRole::Server,
            DtlsRole::Server => DtlsRole::Client,
        }
    }
}

/// DTLS-SRTP protection profiles (RFC 5764, RFC 7714), named as mediasoup names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpProfile {
    AeadAes256Gcm,
    AeadAes128Gcm,
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl SrtpProfile {
    /// The profiles str0m 0.25 implements, in the order it offers and prefers them.
    pub const STR0M_SUPPORTED: [SrtpProfile; 3] =
        [SrtpProfile::AeadAes256Gcm, SrtpProfile::AeadAes128Gcm, SrtpProfile::AesCm128HmacSha1_80];

    pub fn as_str(self) -> &'static str {
        match self {
            SrtpProfile::AeadAes256Gcm => "AEAD_AES_256_GCM",
            SrtpProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpProfile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// From the IANA DTLS-SRTP protection profile id.
    pub fn from_id(id: u16) -> Option<SrtpProfile> {
        match id {
            0x0001 => Some(SrtpProfile::AesCm128HmacSha1_80),
            0x0002 => Some(SrtpProfile::AesCm128HmacSha1_32),
            0x0007 => Some(SrtpProfile::AeadAes128Gcm),
            0x0008 => Some(SrtpProfile::AeadAes256Gcm),
            _ => None,
        }
    }
}

/// One payload type the peer sends or receives. str0m builds its payload-type table once, so
/// every payload type a test uses must be listed in [`PeerConfig::codecs`] up front.
#[derive(Clone, Copy, Debug)]
pub struct PeerCodec {
    pub payload_type: u8,
    pub rtx_payload_type: Option<u8>,
    pub codec: Codec,
    pub clock_rate: u32,
    pub channels: Option<u8>,
}

impl PeerCodec {
    pub fn opus(payload_type: u8) -> PeerCodec {
        PeerCodec { payload_type, rtx_payload_type: None, codec: Codec::Opus, clock_rate: 48_000, channels: Some(2) }
    }

    pub fn vp8(payload_type: u8, rtx_payload_type: Option<u8>) -> PeerCodec {
        PeerCodec { payload_type, rtx_payload_type, codec: Codec::Vp8, clock_rate: 90_000, channels: None }
    }

    pub(super) fn kind(&self) -> MediaKind {
        if self.codec.is_audio() {
            MediaKind::Audio
        } else {
            MediaKind::Video
        }
    }
}

/// How to build a [`Str0mPeer`].
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Names the peer in errors and status lines.
    pub name: String,
    pub transport: PeerTransport,
    /// ICE controlling (the client of an ICE-lite server must be).
    pub ice_controlling: bool,
    /// Answer checks only, as mediasoup's server does (for peer-to-peer self tests).
    pub ice_lite: bool,
    /// str0m defaults to DTLS 1.2; `Auto` sends a DTLS 1.3 hybrid ClientHello.
    pub dtls_version: DtlsVersion,
    /// Every payload type sent or received (see [`PeerCodec`]). The default holds mediasoup's
    /// router payload types for opus and VP8 (100; 101 with RTX 102) and this crate's producer
    /// helpers' VP8 (96 with RTX 97).
    pub codecs: Vec<PeerCodec>,
    /// RTP header extensions written and read, by id. None by default, so the wire carries
    /// exactly the header a test asked for; add `(id, Extension::RtpMid)` to send MIDs.
    pub extensions: Vec<(u8, Extension)>,
    /// Local ICE ufrag and password; random when `None`.
    pub local_ice: Option<(String, String)>,
    /// STUN retransmission: the longest gap between retries and how many before a pair (and,
    /// with the last pair, the connection) counts as gone. str0m's defaults take about 20 s to
    /// notice a silent remote; 500 ms and 3 retries notice it in about 2 s.
    pub stun_max_rto: Option<Duration>,
    pub stun_max_retransmits: Option<usize>,
}

impl PeerConfig {
    pub fn new(name: &str, transport: PeerTransport) -> PeerConfig {
        PeerConfig {
            name: name.to_string(),
            transport,
            ice_controlling: true,
            ice_lite: false,
            dtls_version: DtlsVersion::Dtls12,
            codecs: vec![PeerCodec::opus(100), PeerCodec::vp8(101, Some(102)), PeerCodec::vp8(96, Some(97))],
            extensions: Vec::new(),
            local_ice: None,
            stun_max_rto: None,
            stun_max_retransmits: None,
        }
    }

    pub fn udp(name: &str, local: SocketAddr) -> PeerConfig {
        PeerConfig::new(name, PeerTransport::Udp(local))
    }

    pub fn tcp_active(name: &str, local_ip: IpAddr) -> PeerConfig {
        PeerConfig::new(name, PeerTransport::TcpActive(local_ip))
    }

    pub fn tcp_passive(name: &str, local: SocketAddr) -> PeerConfig {
        PeerConfig::new(name, PeerTransport::TcpPassive(local))
    }
}

/// An RTP packet as it arrived, after SRTP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedRtp {
    pub ssrc: u32,
    pub seq: u16,
    pub timestamp: u32,
    pub payload_type: u8,
    pub marker: bool,
    pub payload: Vec<u8>,
}

/// What the peer saw happen, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    IceState(IceConnectionState),
    /// ICE and DTLS are up; SRTP keys are in place.
    Connected,
    /// The remote asked for a key frame of what this peer sends on `mid`.
    KeyframeRequest {
        mid: String,
        kind: KeyframeRequestKind,
    },
    /// An incoming stream on `mid` paused (no packets for a while) or resumed.
    StreamPaused {
        mid: String,
        paused: bool,
    },
    /// The remote closed DTLS.
    Closed,
}

/// Why a peer call failed. `Debug` prints the same text as `Display`, so `.unwrap()` says it all.
pub enum PeerError {
    /// `run_until` ran out of time; `status` is the peer's state at that moment.
    Timeout {
        waited_for: String,
        after: Duration,
        status: String,
    },
    Rtc {
        peer: String,
        doing: &'static str,
        error: str0m::RtcError,
    },
    Io {
        peer: String,
        doing: String,
        error: io::Error,
    },
    Usage(String),
}

impl fmt::Display for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerError::Timeout { waited_for, after, status } => {
                write!(f, "timed out after {after:?} waiting for {waited_for}; {status}")
            }
            PeerError::Rtc { peer, doing, error } => write!(f, "peer '{peer}': str0m failed {doing}: {error}"),
            PeerError::Io { peer, doing, error } => write!(f, "peer '{peer}': {doing}: {error}"),
            PeerError::Usage(msg) => f.write_str(msg),
        }
    }
}

impl fmt::Debug for PeerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for PeerError {}

pub type PeerResult<T> = Result<T, PeerError>;
