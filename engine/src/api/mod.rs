//! The embedded API: mediasoup v3's objects as cheap `Send + Sync` handles.
//!
//! Each call becomes a command on the owning shard's control ring; async methods resolve when
//! the shard has applied it. Events (mediasoup's `on('...')`) are delivered to callbacks on one
//! dispatcher thread per engine: keep callbacks short and never block on an engine call inside
//! one.

mod adapter;
mod block_on;
mod command;
mod consumer;
mod data;
mod dispatch;
mod engine;
mod observer;
mod oneshot;
mod pipe;
mod producer;
mod router;
mod transport;
mod webrtc_transport;

pub use block_on::block_on;
pub use consumer::{Consumer, ConsumerOptions, ConsumerType};
pub use data::{
    DataConsumer, DataConsumerOptions, DataProducer, DataProducerOptions, DataSendOptions, DataType,
    PipeDataToRouterOptions, PipeDataToRouterResult, SctpStreamParameters, PPID_BINARY, PPID_BINARY_EMPTY, PPID_STRING,
    PPID_STRING_EMPTY,
};
pub use dispatch::HandlerId;
pub use engine::{create_worker, Engine, EngineOptions, Worker, WorkerSettings};
pub use observer::{
    ActiveSpeakerObserver, ActiveSpeakerObserverOptions, AudioLevelObserver, AudioLevelObserverOptions,
    AudioLevelObserverVolume, RtpObserver, RtpObserverType,
};
pub use pipe::{PipeToRouterOptions, PipeToRouterResult};
pub use producer::{Producer, ProducerOptions, ProducerType};
pub use router::{Router, RouterOptions};
pub use transport::{
    DirectTransport, DirectTransportOptions, PlainTransport, PlainTransportConnect, PlainTransportOptions, PortRange,
    Protocol, Transport, TransportListenInfo, TransportTuple,
};
pub use webrtc_transport::{
    WebRtcServer, WebRtcServerOptions, WebRtcTransport, WebRtcTransportConnect, WebRtcTransportOptions,
};
