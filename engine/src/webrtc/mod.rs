//! WebRTC transport layers, each sans-IO: the engine feeds bytes and `now` in and takes bytes,
//! events and deadlines out.
//!
//! - [`stun`]: STUN Binding requests and responses of an ICE-lite server (on `rtc-stun`).
//! - [`ice`]: the ICE-lite server of a WebRtcTransport (mediasoup's `IceServer`): tuples,
//!   nomination, consent freshness, ICE restart; candidates and parameters in mediasoup's JSON.
//! - [`framing`]: RFC 4571 framing of ICE-TCP streams.

pub mod framing;
pub mod ice;
pub mod stun;
