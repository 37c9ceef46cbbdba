//! WebRTC transport layers, each sans-IO: the engine feeds bytes and `now` in and takes bytes,
//! events and deadlines out.
//!
//! - [`stun`]: STUN Binding requests and responses of an ICE-lite server (on `rtc-stun`).
//! - [`ice`]: the ICE-lite server of a WebRtcTransport (mediasoup's `IceServer`): tuples,
//!   nomination, consent freshness, ICE restart; candidates and parameters in mediasoup's JSON.
//! - [`framing`]: RFC 4571 framing of ICE-TCP streams.
//! - [`cert`], [`dtls`], [`srtp`]: the worker's DTLS certificate, DTLS sessions that export SRTP
//!   keys, and SRTP/SRTCP.

pub mod cert;
pub mod dtls;
pub mod framing;
pub mod ice;
pub mod srtp;
pub mod stun;
