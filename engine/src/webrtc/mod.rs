//! WebRTC transport security, sans-IO: the worker's DTLS certificate, DTLS sessions that export
//! SRTP keys, and SRTP/SRTCP.

pub mod cert;
pub mod dtls;
pub mod srtp;
