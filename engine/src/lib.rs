//! shardsfu engine: mediasoup v3's model on a shard-per-core runtime.
//!
//! Layers, from the wire up:
//! - [`rtp`]: zero-copy RTP views and header rewrite, RTCP, sequence managers, retransmission
//!   buffers, loss tracking. Pure functions and small state machines.
//! - [`ortc`] and [`rtp_parameters`]: mediasoup's JSON shapes and its ORTC rules.
//! - [`core`]: the sans-IO SFU of one shard (routers, transports, producers, consumers). Every
//!   entry point takes `now`; it never reads a clock or touches a socket.
//! - [`webrtc`]: the WebRtcTransport layers, sans-IO: STUN / ICE-lite, RFC 4571 framing, DTLS
//!   (certificate, fingerprints, handshake, SRTP key export) and SRTP.
//! - [`placement`]: where a new router goes, a pure function of measured shard load.
//! - `api` (re-exported at the crate root): the embedded API (Engine, Worker, Router, ...):
//!   cheap `Send + Sync` handles whose calls become commands on the owning shard's control ring
//!   (see `shardsfu-net`).

mod api;
pub mod core;
pub mod error;
pub mod ortc;
pub mod placement;
pub mod rtp;
pub mod rtp_parameters;
pub mod webrtc;

pub use api::*;
pub use error::{Error, ErrorKind, Result};
