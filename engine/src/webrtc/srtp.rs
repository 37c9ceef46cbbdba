//! SRTP and SRTCP (RFC 3711, AES-GCM per RFC 7714), in place and into caller-owned buffers.
//!
//! Why not `rtc-srtp`: its `Context` returns a freshly allocated `BytesMut` for every packet and
//! parses the RTP header into an `rtp::Header` (two more `Vec`s) before it starts; the SFU
//! protects every forwarded packet once per consumer, so that is an allocation per packet per
//! consumer. `benches/benches/srtp.rs` measures both implementations side by side, and
//! `engine/tests/webrtc_srtp.rs` proves them equivalent (each decrypts what the other encrypts, for
//! every profile, RTP and RTCP).
//!
//! The primitives are ring's AES-GCM (ring is already in the graph through `rtc-dtls`, and is the
//! backend `rtc-srtp` itself uses) and RustCrypto's AES-CTR and HMAC-SHA1 for the AES-CM profiles
//! (ring does not expose counter mode, and its SHA-1 is portable code: with it an AES-CM pair took
//! 6.5 us against 2.2 us for `rtc-srtp`, whose provider uses the `sha1` crate's SHA-NI path).
//!
//! One [`SrtpSession`] holds one direction's keys: the receiving side builds it from the remote
//! [`SrtpKeys`] and calls `unprotect_*`, the sending side from the local keys and calls
//! `protect_*`. Per-SSRC state (rollover counter, SRTCP index, replay window) is kept separately
//! for the two directions, in maps bounded by [`MAX_SSRCS`].

// SSRC-keyed state: a multiplicative hasher (keys are bounded by MAX_SSRCS and enter only after
// authentication), not SipHash, on the per-packet path.
use crate::core::FastMap;
use std::fmt;

use aes::cipher::{InnerIvInit, KeyInit, KeyIvInit, StreamCipher};
use hmac::Mac;
use ring::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use serde::{Deserialize, Serialize};

/// SSRCs tracked per direction of a session. A packet from one more SSRC is refused
/// ([`SrtpError::TooManySsrcs`]); an inbound packet only claims a slot once it authenticated.
pub const MAX_SSRCS: usize = 1024;

/// Width of the replay window in packets (RTP: extended sequence numbers; RTCP: SRTCP indices).
/// Wide, like mediasoup's libsrtp setting, so reordered and late retransmitted packets still pass.
pub const REPLAY_WINDOW_PACKETS: u64 = 1024;

/// The largest SRTP auth tag of any profile: what `protect_*` may add to a packet, plus the
/// 4-byte SRTCP index for RTCP.
pub const MAX_SRTP_OVERHEAD_BYTES: usize = 16 + 4;

const REPLAY_WINDOW_WORDS: usize = (REPLAY_WINDOW_PACKETS / 64) as usize;
const RTP_HEADER_MIN_BYTES: usize = 12;
const RTCP_HEADER_BYTES: usize = 8;
const SRTCP_INDEX_BYTES: usize = 4;
const SRTCP_INDEX_MAX: u32 = 0x7fff_ffff;
const SRTCP_E_FLAG: u32 = 0x8000_0000;
const GCM_TAG_BYTES: usize = 16;
const HMAC_SHA1_KEY_BYTES: usize = 20;
/// Both AES-CM profiles authenticate SRTCP with an 80-bit tag (RFC 5764 §4.1.2).
const CM_RTCP_TAG_BYTES: usize = 10;

/// RFC 3711 §4.3.1 key derivation labels.
const LABEL_RTP_ENCRYPTION: u8 = 0x00;
const LABEL_RTP_AUTH: u8 = 0x01;
const LABEL_RTP_SALT: u8 = 0x02;
const LABEL_RTCP_ENCRYPTION: u8 = 0x03;
const LABEL_RTCP_AUTH: u8 = 0x04;
const LABEL_RTCP_SALT: u8 = 0x05;

/// The SRTP crypto suites mediasoup negotiates, with mediasoup's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SrtpProfile {
    #[serde(rename = "AEAD_AES_256_GCM")]
    AeadAes256Gcm,
    #[serde(rename = "AEAD_AES_128_GCM")]
    AeadAes128Gcm,
    #[serde(rename = "AES_CM_128_HMAC_SHA1_80")]
    AesCm128HmacSha1_80,
    #[serde(rename = "AES_CM_128_HMAC_SHA1_32")]
    AesCm128HmacSha1_32,
}

impl SrtpProfile {
    /// Every profile, in mediasoup's order of preference (the order offered in DTLS `use_srtp`).
    pub const ALL: [SrtpProfile; 4] = [
        SrtpProfile::AeadAes256Gcm,
        SrtpProfile::AeadAes128Gcm,
        SrtpProfile::AesCm128HmacSha1_80,
        SrtpProfile::AesCm128HmacSha1_32,
    ];

    /// mediasoup's name for the profile.
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpProfile::AeadAes256Gcm => "AEAD_AES_256_GCM",
            SrtpProfile::AeadAes128Gcm => "AEAD_AES_128_GCM",
            SrtpProfile::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            SrtpProfile::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    /// The DTLS-SRTP protection profile id (RFC 5764 §4.1.2, RFC 7714 §14.2).
    pub fn dtls_id(self) -> u16 {
        match self {
            SrtpProfile::AesCm128HmacSha1_80 => 0x0001,
            SrtpProfile::AesCm128HmacSha1_32 => 0x0002,
            SrtpProfile::AeadAes128Gcm => 0x0007,
            SrtpProfile::AeadAes256Gcm => 0x0008,
        }
    }

    /// The profile with DTLS-SRTP id `id`, if it is one of ours.
    pub fn from_dtls_id(id: u16) -> Option<SrtpProfile> {
        SrtpProfile::ALL.into_iter().find(|profile| profile.dtls_id() == id)
    }

    /// Master key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes256Gcm => 32,
            _ => 16,
        }
    }

    /// Master salt length in bytes.
    pub fn salt_len(self) -> usize {
        match self {
            SrtpProfile::AeadAes256Gcm | SrtpProfile::AeadAes128Gcm => 12,
            _ => 14,
        }
    }

    /// Bytes `protect_rtp` appends to a packet.
    pub fn rtp_overhead(self) -> usize {
        match self {
            SrtpProfile::AeadAes256Gcm | SrtpProfile::AeadAes128Gcm => GCM_TAG_BYTES,
            SrtpProfile::AesCm128HmacSha1_80 => 10,
            SrtpProfile::AesCm128HmacSha1_32 => 4,
        }
    }

    /// Bytes `protect_rtcp` appends to a packet (auth tag plus the E flag and SRTCP index).
    pub fn rtcp_overhead(self) -> usize {
        SRTCP_INDEX_BYTES
            + match self {
                SrtpProfile::AeadAes256Gcm | SrtpProfile::AeadAes128Gcm => GCM_TAG_BYTES,
                _ => CM_RTCP_TAG_BYTES,
            }
    }

    fn is_aead(self) -> bool {
        matches!(self, SrtpProfile::AeadAes256Gcm | SrtpProfile::AeadAes128Gcm)
    }
}

impl fmt::Display for SrtpProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One side's SRTP master key and salt, as exported from DTLS (RFC 5764 §4.2).
#[derive(Clone, PartialEq, Eq)]
pub struct SrtpKeys {
    pub master_key: Vec<u8>,
    pub master_salt: Vec<u8>,
}

impl fmt::Debug for SrtpKeys {
    // Never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpKeys")
            .field("master_key_len", &self.master_key.len())
            .field("master_salt_len", &self.master_salt.len())
            .finish()
    }
}

/// Why a packet could not be protected or unprotected. All are per packet: the session stays usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SrtpError {
    /// Master key or salt of the wrong length for the profile (construction only).
    KeyLength,
    /// Not an RTP / RTCP packet, or too short to hold its header and auth tag.
    Malformed,
    /// The auth tag did not verify.
    Auth,
    /// The packet was already received, or is older than the replay window.
    Replay,
    /// `out` cannot hold the protected packet.
    BufferTooSmall,
    /// A packet from one SSRC more than [`MAX_SSRCS`].
    TooManySsrcs,
    /// The rollover counter or SRTCP index would wrap: the keys must not be used any more.
    IndexExhausted,
    /// SRTCP with the E flag clear (unencrypted SRTCP); never sent by browsers, not accepted.
    Unencrypted,
}

impl SrtpError {
    pub fn as_str(self) -> &'static str {
        match self {
            SrtpError::KeyLength => "wrong SRTP master key or salt length",
            SrtpError::Malformed => "malformed SRTP packet",
            SrtpError::Auth => "SRTP authentication failed",
            SrtpError::Replay => "SRTP replay",
            SrtpError::BufferTooSmall => "output buffer too small for SRTP",
            SrtpError::TooManySsrcs => "too many SSRCs in one SRTP session",
            SrtpError::IndexExhausted => "SRTP index exhausted",
            SrtpError::Unencrypted => "unencrypted SRTCP not accepted",
        }
    }
}

impl fmt::Display for SrtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for SrtpError {}

impl From<SrtpError> for crate::Error {
    fn from(error: SrtpError) -> Self {
        crate::Error::other(error.as_str())
    }
}

/// The session keys of one profile family.
// One per session, built once and never moved on the data path: boxing the larger variant would
// only add a pointer chase per packet.
#[allow(clippy::large_enum_variant)]
enum Keys {
    Gcm { rtp: LessSafeKey, rtcp: LessSafeKey, rtp_salt: [u8; 12], rtcp_salt: [u8; 12] },
    Cm { rtp: Aes128Ctr, rtcp: Aes128Ctr, rtp_auth: HmacSha1, rtcp_auth: HmacSha1, rtp_tag_len: usize },
}

/// AES-128 in counter mode (RFC 3711 §4.1.1) with the session salt; the key schedule is expanded
/// once, each packet clones the expanded key (a copy of 176 bytes, no allocation).
struct Aes128Ctr {
    cipher: aes::Aes128Enc,
    salt: [u8; 14],
}

impl Aes128Ctr {
    /// XORs the keystream for packet index `index` of `ssrc` into `data`.
    fn apply(&self, ssrc: u32, index: u64, data: &mut [u8]) {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (byte, x) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *byte ^= x;
        }
        for (byte, x) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *byte ^= x;
        }
        let core =
            ctr::CtrCore::<aes::Aes128Enc, ctr::flavors::Ctr128BE>::inner_iv_init(self.cipher.clone(), &iv.into());
        let mut ctr = ctr::cipher::StreamCipherCoreWrapper::from_core(core);
        ctr.apply_keystream(data);
    }
}

/// Receive-side state of one RTP SSRC: RFC 3711 §3.3.1 rollover counter and highest sequence
/// number, and the replay window over extended (48-bit) indices.
struct RtpRecvState {
    roc: u32,
    highest_seq: u16,
    window: ReplayWindow,
}

/// Send-side state of one RTP SSRC. No replay check: the SFU may protect a packet again (e.g.
/// a retransmission), as mediasoup allows with libsrtp's `allow_repeat_tx`.
struct RtpSendState {
    roc: u32,
    highest_seq: u16,
}

/// A sliding window of [`REPLAY_WINDOW_PACKETS`] indices ending at `top`, as a ring of bits.
struct ReplayWindow {
    top: u64,
    bits: [u64; REPLAY_WINDOW_WORDS],
}

impl ReplayWindow {
    fn new(first: u64) -> Self {
        let mut window = ReplayWindow { top: first, bits: [0; REPLAY_WINDOW_WORDS] };
        window.set(first);
        window
    }

    fn bit(index: u64) -> (usize, u64) {
        let slot = index % REPLAY_WINDOW_PACKETS;
        ((slot / 64) as usize, 1u64 << (slot % 64))
    }

    fn set(&mut self, index: u64) {
        let (word, mask) = Self::bit(index);
        self.bits[word] |= mask;
    }

    fn check(&self, index: u64) -> Result<(), SrtpError> {
        if index > self.top {
            return Ok(());
        }
        if self.top - index >= REPLAY_WINDOW_PACKETS {
            return Err(SrtpError::Replay);
        }
        let (word, mask) = Self::bit(index);
        if self.bits[word] & mask != 0 {
            return Err(SrtpError::Replay);
        }
        Ok(())
    }

    /// Records `index` as received; `check(index)` must have passed.
    fn accept(&mut self, index: u64) {
        if index > self.top {
            let advance = index - self.top;
            if advance >= REPLAY_WINDOW_PACKETS {
                self.bits = [0; REPLAY_WINDOW_WORDS];
            } else {
                // At most REPLAY_WINDOW_PACKETS slots to forget.
                for stale in self.top + 1..index {
                    let (word, mask) = Self::bit(stale);
                    self.bits[word] &= !mask;
                }
            }
            self.top = index;
        }
        self.set(index);
    }
}

/// An SRTP/SRTCP crypto context for one direction. See the module docs.
pub struct SrtpSession {
    profile: SrtpProfile,
    keys: Keys,
    rtp_recv: FastMap<u32, RtpRecvState>,
    rtp_send: FastMap<u32, RtpSendState>,
    rtcp_recv: FastMap<u32, ReplayWindow>,
    /// Next SRTCP index to use, per sending SSRC.
    rtcp_send: FastMap<u32, u32>,
}

impl fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SrtpSession").field("profile", &self.profile).finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// A session for `profile` with one side's master key and salt.
    pub fn new(profile: SrtpProfile, keys: &SrtpKeys) -> Result<Self, SrtpError> {
        if keys.master_key.len() != profile.key_len() || keys.master_salt.len() != profile.salt_len() {
            return Err(SrtpError::KeyLength);
        }
        let (master_key, master_salt) = (&keys.master_key[..], &keys.master_salt[..]);
        let keys = if profile.is_aead() {
            let algorithm = if profile == SrtpProfile::AeadAes256Gcm { &aead::AES_256_GCM } else { &aead::AES_128_GCM };
            let gcm_key = |label: u8| -> Result<LessSafeKey, SrtpError> {
                let mut session_key = [0u8; 32];
                let session_key = &mut session_key[..master_key.len()];
                derive(master_key, master_salt, label, session_key);
                let key = UnboundKey::new(algorithm, session_key).map_err(|_| SrtpError::KeyLength)?;
                Ok(LessSafeKey::new(key))
            };
            let mut rtp_salt = [0u8; 12];
            let mut rtcp_salt = [0u8; 12];
            derive(master_key, master_salt, LABEL_RTP_SALT, &mut rtp_salt);
            derive(master_key, master_salt, LABEL_RTCP_SALT, &mut rtcp_salt);
            Keys::Gcm {
                rtp: gcm_key(LABEL_RTP_ENCRYPTION)?,
                rtcp: gcm_key(LABEL_RTCP_ENCRYPTION)?,
                rtp_salt,
                rtcp_salt,
            }
        } else {
            let ctr = |key_label: u8, salt_label: u8| -> Aes128Ctr {
                let mut session_key = [0u8; 16];
                let mut salt = [0u8; 14];
                derive(master_key, master_salt, key_label, &mut session_key);
                derive(master_key, master_salt, salt_label, &mut salt);
                Aes128Ctr { cipher: aes::Aes128Enc::new(&session_key.into()), salt }
            };
            let auth = |label: u8| -> Result<HmacSha1, SrtpError> {
                let mut auth_key = [0u8; HMAC_SHA1_KEY_BYTES];
                derive(master_key, master_salt, label, &mut auth_key);
                <HmacSha1 as Mac>::new_from_slice(&auth_key).map_err(|_| SrtpError::KeyLength)
            };
            Keys::Cm {
                rtp: ctr(LABEL_RTP_ENCRYPTION, LABEL_RTP_SALT),
                rtcp: ctr(LABEL_RTCP_ENCRYPTION, LABEL_RTCP_SALT),
                rtp_auth: auth(LABEL_RTP_AUTH)?,
                rtcp_auth: auth(LABEL_RTCP_AUTH)?,
                rtp_tag_len: profile.rtp_overhead(),
            }
        };
        Ok(SrtpSession {
            profile,
            keys,
            rtp_recv: FastMap::default(),
            rtp_send: FastMap::default(),
            rtcp_recv: FastMap::default(),
            rtcp_send: FastMap::default(),
        })
    }

    pub fn profile(&self) -> SrtpProfile {
        self.profile
    }

    /// Verifies and decrypts the SRTP packet in `buf` in place. Returns the length of the plain
    /// RTP packet, which starts at `buf[0]`.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_overhead();
        let header_len = rtp_header_len(buf)?;
        if buf.len() < header_len + tag_len {
            return Err(SrtpError::Malformed);
        }
        let seq = u16::from_be_bytes([buf[2], buf[3]]);
        let ssrc = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        let state = self.rtp_recv.get(&ssrc);
        if state.is_none() && self.rtp_recv.len() >= MAX_SSRCS {
            return Err(SrtpError::TooManySsrcs);
        }
        let index = match state {
            None => u64::from(seq),
            Some(state) => {
                let index = estimate_index(state.roc, state.highest_seq, seq).ok_or(SrtpError::Replay)?;
                state.window.check(index)?;
                index
            }
        };
        let roc = (index >> 16) as u32;
        let plain_len = buf.len() - tag_len;

        match &self.keys {
            Keys::Gcm { rtp, rtp_salt, .. } => {
                let nonce = gcm_rtp_nonce(rtp_salt, ssrc, roc, seq);
                let (header, body) = buf.split_at_mut(header_len);
                rtp.open_in_place(nonce, Aad::from(&*header), body).map_err(|_| SrtpError::Auth)?;
            }
            Keys::Cm { rtp, rtp_auth, rtp_tag_len, .. } => {
                let (authenticated, tag) = buf.split_at(plain_len);
                let expected = hmac_sha1(rtp_auth, authenticated, &roc.to_be_bytes());
                if !constant_time_eq(&expected[..*rtp_tag_len], tag) {
                    return Err(SrtpError::Auth);
                }
                rtp.apply(ssrc, index, &mut buf[header_len..plain_len]);
            }
        }

        // Authenticated: only now does the packet move the SSRC's state.
        match self.rtp_recv.get_mut(&ssrc) {
            Some(state) => {
                state.window.accept(index);
                if roc > state.roc {
                    state.roc = roc;
                    state.highest_seq = seq;
                } else if roc == state.roc && seq > state.highest_seq {
                    state.highest_seq = seq;
                }
            }
            None => {
                self.rtp_recv.insert(ssrc, RtpRecvState { roc, highest_seq: seq, window: ReplayWindow::new(index) });
            }
        }
        Ok(plain_len)
    }

    /// Encrypts and authenticates the RTP packet `plain` into `out`, which must hold
    /// `plain.len() + profile.rtp_overhead()` bytes. Returns the SRTP packet's length.
    pub fn protect_rtp(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        self.protect_rtp_parts(plain, &[], out)
    }

    /// [`Self::protect_rtp`] of the packet `head ++ body`, where `head` holds at least the whole
    /// RTP header: the forwarding path's rewritten header and shared payload, joined in `out`.
    pub fn protect_rtp_parts(&mut self, head: &[u8], body: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        let tag_len = self.profile.rtp_overhead();
        let header_len = rtp_header_len(head)?;
        if header_len > head.len() {
            return Err(SrtpError::Malformed);
        }
        let plain_len = head.len() + body.len();
        let total = plain_len + tag_len;
        if out.len() < total {
            return Err(SrtpError::BufferTooSmall);
        }
        let seq = u16::from_be_bytes([head[2], head[3]]);
        let ssrc = u32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        let index = match self.rtp_send.get(&ssrc) {
            None if self.rtp_send.len() >= MAX_SSRCS => return Err(SrtpError::TooManySsrcs),
            None => u64::from(seq),
            // A sequence number from "before" the first packet cannot be given an index.
            Some(state) => estimate_index(state.roc, state.highest_seq, seq).ok_or(SrtpError::IndexExhausted)?,
        };
        let roc = (index >> 16) as u32;
        out[..head.len()].copy_from_slice(head);
        out[head.len()..plain_len].copy_from_slice(body);

        match &self.keys {
            Keys::Gcm { rtp, rtp_salt, .. } => {
                let nonce = gcm_rtp_nonce(rtp_salt, ssrc, roc, seq);
                let (header, rest) = out[..total].split_at_mut(header_len);
                let (payload, tag_out) = rest.split_at_mut(plain_len - header_len);
                let tag =
                    rtp.seal_in_place_separate_tag(nonce, Aad::from(&*header), payload).map_err(|_| SrtpError::Auth)?;
                tag_out.copy_from_slice(tag.as_ref());
            }
            Keys::Cm { rtp, rtp_auth, rtp_tag_len, .. } => {
                rtp.apply(ssrc, index, &mut out[header_len..plain_len]);
                let tag = hmac_sha1(rtp_auth, &out[..plain_len], &roc.to_be_bytes());
                out[plain_len..total].copy_from_slice(&tag[..*rtp_tag_len]);
            }
        }

        match self.rtp_send.get_mut(&ssrc) {
            Some(state) => {
                if roc > state.roc {
                    state.roc = roc;
                    state.highest_seq = seq;
                } else if roc == state.roc && seq > state.highest_seq {
                    state.highest_seq = seq;
                }
            }
            None => {
                self.rtp_send.insert(ssrc, RtpSendState { roc, highest_seq: seq });
            }
        }
        Ok(total)
    }

    /// Verifies and decrypts the SRTCP packet in `buf` in place. Returns the length of the plain
    /// (compound) RTCP packet, which starts at `buf[0]`.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let overhead = self.profile.rtcp_overhead();
        if buf.len() < RTCP_HEADER_BYTES + overhead || buf[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let ssrc = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
        let plain_len = buf.len() - overhead;
        let tag_len = overhead - SRTCP_INDEX_BYTES;
        // GCM: header | ciphertext | tag | E+index. CM: header | ciphertext | E+index | tag.
        let index_at = if self.profile.is_aead() { buf.len() - SRTCP_INDEX_BYTES } else { plain_len };
        let e_index = u32::from_be_bytes([buf[index_at], buf[index_at + 1], buf[index_at + 2], buf[index_at + 3]]);
        if e_index & SRTCP_E_FLAG == 0 {
            return Err(SrtpError::Unencrypted);
        }
        let index = e_index & SRTCP_INDEX_MAX;
        match self.rtcp_recv.get(&ssrc) {
            None if self.rtcp_recv.len() >= MAX_SSRCS => return Err(SrtpError::TooManySsrcs),
            None => {}
            Some(window) => window.check(u64::from(index))?,
        }

        match &self.keys {
            Keys::Gcm { rtcp, rtcp_salt, .. } => {
                let nonce = gcm_rtcp_nonce(rtcp_salt, ssrc, index);
                let mut aad = [0u8; RTCP_HEADER_BYTES + SRTCP_INDEX_BYTES];
                aad[..RTCP_HEADER_BYTES].copy_from_slice(&buf[..RTCP_HEADER_BYTES]);
                aad[RTCP_HEADER_BYTES..].copy_from_slice(&e_index.to_be_bytes());
                let sealed = &mut buf[RTCP_HEADER_BYTES..index_at];
                rtcp.open_in_place(nonce, Aad::from(aad), sealed).map_err(|_| SrtpError::Auth)?;
            }
            Keys::Cm { rtcp, rtcp_auth, .. } => {
                let (authenticated, tag) = buf.split_at(buf.len() - tag_len);
                let expected = hmac_sha1(rtcp_auth, authenticated, &[]);
                if !constant_time_eq(&expected[..tag_len], tag) {
                    return Err(SrtpError::Auth);
                }
                rtcp.apply(ssrc, u64::from(index), &mut buf[RTCP_HEADER_BYTES..plain_len]);
            }
        }

        match self.rtcp_recv.get_mut(&ssrc) {
            Some(window) => window.accept(u64::from(index)),
            None => {
                self.rtcp_recv.insert(ssrc, ReplayWindow::new(u64::from(index)));
            }
        }
        Ok(plain_len)
    }

    /// Encrypts and authenticates the (compound) RTCP packet `plain` into `out`, which must hold
    /// `plain.len() + profile.rtcp_overhead()` bytes. Returns the SRTCP packet's length.
    pub fn protect_rtcp(&mut self, plain: &[u8], out: &mut [u8]) -> Result<usize, SrtpError> {
        let overhead = self.profile.rtcp_overhead();
        if plain.len() < RTCP_HEADER_BYTES || plain[0] >> 6 != 2 {
            return Err(SrtpError::Malformed);
        }
        let total = plain.len() + overhead;
        if out.len() < total {
            return Err(SrtpError::BufferTooSmall);
        }
        let ssrc = u32::from_be_bytes([plain[4], plain[5], plain[6], plain[7]]);
        let index = match self.rtcp_send.get(&ssrc) {
            None if self.rtcp_send.len() >= MAX_SSRCS => return Err(SrtpError::TooManySsrcs),
            None => 0,
            Some(&next) if next > SRTCP_INDEX_MAX => return Err(SrtpError::IndexExhausted),
            Some(&next) => next,
        };
        let e_index = (SRTCP_E_FLAG | index).to_be_bytes();
        out[..plain.len()].copy_from_slice(plain);

        match &self.keys {
            Keys::Gcm { rtcp, rtcp_salt, .. } => {
                let nonce = gcm_rtcp_nonce(rtcp_salt, ssrc, index);
                let mut aad = [0u8; RTCP_HEADER_BYTES + SRTCP_INDEX_BYTES];
                aad[..RTCP_HEADER_BYTES].copy_from_slice(&plain[..RTCP_HEADER_BYTES]);
                aad[RTCP_HEADER_BYTES..].copy_from_slice(&e_index);
                let payload = &mut out[RTCP_HEADER_BYTES..plain.len()];
                let tag =
                    rtcp.seal_in_place_separate_tag(nonce, Aad::from(aad), payload).map_err(|_| SrtpError::Auth)?;
                out[plain.len()..plain.len() + GCM_TAG_BYTES].copy_from_slice(tag.as_ref());
                out[total - SRTCP_INDEX_BYTES..total].copy_from_slice(&e_index);
            }
            Keys::Cm { rtcp, rtcp_auth, .. } => {
                rtcp.apply(ssrc, u64::from(index), &mut out[RTCP_HEADER_BYTES..plain.len()]);
                let index_end = plain.len() + SRTCP_INDEX_BYTES;
                out[plain.len()..index_end].copy_from_slice(&e_index);
                let tag = hmac_sha1(rtcp_auth, &out[..index_end], &[]);
                out[index_end..total].copy_from_slice(&tag[..CM_RTCP_TAG_BYTES]);
            }
        }
        self.rtcp_send.insert(ssrc, index + 1);
        Ok(total)
    }
}

/// RFC 3711 §4.3 key derivation with the AES-CM PRF and a key derivation rate of 0; for the GCM
/// profiles RFC 7714 §11 uses the same PRF, the 96-bit salt padded with zeros on the right
/// (as libsrtp does).
fn derive(master_key: &[u8], master_salt: &[u8], label: u8, out: &mut [u8]) {
    debug_assert!(master_salt.len() <= 14);
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    if master_key.len() == 32 {
        let mut ctr = ctr::Ctr128BE::<aes::Aes256>::new(master_key.into(), &iv.into());
        ctr.apply_keystream(out);
    } else {
        let mut ctr = ctr::Ctr128BE::<aes::Aes128>::new(master_key.into(), &iv.into());
        ctr.apply_keystream(out);
    }
}

/// RFC 3711 §3.3.1: the index of a packet with sequence number `seq`, given the rollover counter
/// and highest sequence number seen. `None` where the guess falls before index 0 or past the
/// last rollover counter.
fn estimate_index(roc: u32, highest_seq: u16, seq: u16) -> Option<u64> {
    const HALF: i64 = 1 << 15;
    let (roc, highest, seq_i) = (i64::from(roc), i64::from(highest_seq), i64::from(seq));
    let guess = if highest < HALF {
        if seq_i - highest > HALF {
            roc - 1
        } else {
            roc
        }
    } else if highest - HALF > seq_i {
        roc + 1
    } else {
        roc
    };
    if !(0..=i64::from(u32::MAX)).contains(&guess) {
        return None;
    }
    Some(((guess as u64) << 16) | u64::from(seq))
}

/// The RTP header's length (fixed part, CSRCs, extension), checked against `packet`.
fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < RTP_HEADER_MIN_BYTES || packet[0] >> 6 != 2 {
        return Err(SrtpError::Malformed);
    }
    let mut len = RTP_HEADER_MIN_BYTES + 4 * usize::from(packet[0] & 0x0f);
    if packet[0] & 0x10 != 0 {
        if packet.len() < len + 4 {
            return Err(SrtpError::Malformed);
        }
        let words = usize::from(u16::from_be_bytes([packet[len + 2], packet[len + 3]]));
        len += 4 + 4 * words;
    }
    if len > packet.len() {
        return Err(SrtpError::Malformed);
    }
    Ok(len)
}

/// RFC 7714 §8.1: 00 00 | SSRC | ROC | SEQ, XORed with the session salt.
fn gcm_rtp_nonce(salt: &[u8; 12], ssrc: u32, roc: u32, seq: u16) -> Nonce {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..10].copy_from_slice(&roc.to_be_bytes());
    iv[10..12].copy_from_slice(&seq.to_be_bytes());
    for (byte, s) in iv.iter_mut().zip(salt) {
        *byte ^= s;
    }
    Nonce::assume_unique_for_key(iv)
}

/// RFC 7714 §9.1: 00 00 | SSRC | 00 00 | 0 + 31-bit SRTCP index, XORed with the session salt.
fn gcm_rtcp_nonce(salt: &[u8; 12], ssrc: u32, index: u32) -> Nonce {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[8..12].copy_from_slice(&index.to_be_bytes());
    for (byte, s) in iv.iter_mut().zip(salt) {
        *byte ^= s;
    }
    Nonce::assume_unique_for_key(iv)
}

type HmacSha1 = hmac::Hmac<sha1::Sha1>;

/// HMAC-SHA1 over `data | trailer`. `key` holds the keyed inner and outer states; each packet
/// starts from a copy of them (no allocation).
fn hmac_sha1(key: &HmacSha1, data: &[u8], trailer: &[u8]) -> [u8; 20] {
    let mut mac = key.clone();
    mac.update(data);
    mac.update(trailer);
    mac.finalize().into_bytes().into()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3711_appendix_b3_key_derivation() {
        let master_key: [u8; 16] =
            [0xE1, 0xF9, 0x7A, 0x0D, 0x3E, 0x01, 0x8B, 0xE0, 0xD6, 0x4F, 0xA3, 0x2C, 0x06, 0xDE, 0x41, 0x39];
        let master_salt: [u8; 14] =
            [0x0E, 0xC6, 0x75, 0xAD, 0x49, 0x8A, 0xFE, 0xEB, 0xB6, 0x96, 0x0B, 0x3A, 0xAB, 0xE6];
        let mut key = [0u8; 16];
        derive(&master_key, &master_salt, LABEL_RTP_ENCRYPTION, &mut key);
        assert_eq!(
            key,
            [0xC6, 0x1E, 0x7A, 0x93, 0x74, 0x4F, 0x39, 0xEE, 0x10, 0x73, 0x4A, 0xFE, 0x3F, 0xF7, 0xA0, 0x87]
        );
        let mut salt = [0u8; 14];
        derive(&master_key, &master_salt, LABEL_RTP_SALT, &mut salt);
        assert_eq!(salt, [0x30, 0xCB, 0xBC, 0x08, 0x86, 0x3D, 0x8C, 0x85, 0xD4, 0x9D, 0xB3, 0x4A, 0x9A, 0xE1]);
        let mut auth = [0u8; 20];
        derive(&master_key, &master_salt, LABEL_RTP_AUTH, &mut auth);
        assert_eq!(
            auth,
            [
                0xCE, 0xBE, 0x32, 0x1F, 0x6F, 0xF7, 0x71, 0x6B, 0x6F, 0xD4, 0xAB, 0x49, 0xAF, 0x25, 0x6A, 0x15, 0x6D,
                0x38, 0xBA, 0xA4
            ]
        );
    }

    #[test]
    fn index_estimation_follows_rfc3711() {
        assert_eq!(estimate_index(0, 100, 101), Some(101));
        assert_eq!(estimate_index(0, 65_530, 3), Some((1 << 16) | 3));
        assert_eq!(estimate_index(1, 3, 65_530), Some(65_530));
        assert_eq!(estimate_index(0, 3, 65_530), None);
    }

    #[test]
    fn replay_window_slides() {
        let mut window = ReplayWindow::new(10);
        assert_eq!(window.check(10), Err(SrtpError::Replay));
        assert_eq!(window.check(9), Ok(()));
        window.accept(9);
        assert_eq!(window.check(9), Err(SrtpError::Replay));
        window.accept(10 + REPLAY_WINDOW_PACKETS);
        assert_eq!(window.check(10), Err(SrtpError::Replay));
        assert_eq!(window.check(11), Ok(()));
        window.accept(5 * REPLAY_WINDOW_PACKETS);
        assert_eq!(window.check(5 * REPLAY_WINDOW_PACKETS - 1), Ok(()));
    }
}
