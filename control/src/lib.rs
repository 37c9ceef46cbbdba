//! The `shardsfu` control binary's library: settings, and the remote API server (JSON-RPC 2.0
//! over a WebSocket, per `control/PROTOCOL.md`) over the embedded engine.
//!
//! The binary (`src/main.rs`) resolves [`Settings`], starts the [`shardsfu_engine::Engine`] and a
//! [`Server`], and waits for SIGTERM/SIGINT. Tests start a [`Server`] in-process the same way.

mod b64;
pub mod config;
mod methods;
mod metrics;
mod registry;
pub mod rpc;
mod server;

pub use config::{Cli, LogFormat, OrphanGrace, Settings};
pub use methods::UNSUPPORTED;
pub use server::{Server, MAX_NOTIFICATIONS_QUEUED};
