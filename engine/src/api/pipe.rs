//! mediasoup's `router.pipeToRouter()`, between routers of this engine.
//!
//! Where we differ from mediasoup, and why: mediasoup links two routers with a pair of
//! PipeTransports over UDP on localhost, because its routers live in separate worker processes.
//! Here both routers are in one process, so the link is the engine's own inter-shard record path
//! (or the same shard's), with no sockets, no extra copy beyond the one per (producer, shard), and
//! no SRTP to negotiate: `enableSrtp` is accepted and has nothing to encrypt. The pair returned is
//! what mediasoup returns: a pipe consumer in the source router and a pipe producer in the target
//! router, linked both ways (closing either closes the other; pausing the source or the pipe
//! consumer pauses the pipe producer). The pipe producer keeps the source producer's id unless
//! `keepId` is false, and sits on the target router's home shard.
//!
//! Data producers pipe the same way (`Router::pipe_data_to_router`, in `data.rs`). There too the
//! pair is linked both ways; since there is no SCTP association between the routers, the pipe
//! data consumer and pipe data producer are of type `direct`, where mediasoup's are `sctp`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::Value;

use super::command::Command;
use super::consumer::{Consumer, ConsumerInner, ConsumerType};
use super::dispatch::ObjectShared;
use super::producer::{ssrc_from, Producer, ProducerType, Registration};
use super::router::Router;
use crate::core::{MirrorOf, ProducerSpec};
use crate::error::{Error, Result};
use crate::ortc;

/// mediasoup's `PipeToRouterOptions` (same-engine routers).
#[derive(Clone)]
pub struct PipeToRouterOptions {
    pub producer_id: String,
    pub router: Router,
    pub keep_id: bool,
    pub enable_rtx: bool,
    pub enable_srtp: bool,
}

impl PipeToRouterOptions {
    pub fn new(producer_id: &str, router: &Router) -> Self {
        PipeToRouterOptions {
            producer_id: producer_id.to_owned(),
            router: router.clone(),
            keep_id: true,
            enable_rtx: false,
            enable_srtp: false,
        }
    }
}

/// mediasoup's `PipeToRouterResult`.
pub struct PipeToRouterResult {
    pub pipe_consumer: Consumer,
    pub pipe_producer: Producer,
}

impl Router {
    /// Both routers open and distinct: what every pipe needs of its two ends.
    pub(crate) fn check_pipe_target(&self, target: &Router) -> Result<()> {
        self.check_open()?;
        target.check_open()?;
        if Arc::ptr_eq(&self.inner, &target.inner) {
            return Err(Error::type_error("cannot use this Router as destination"));
        }
        Ok(())
    }

    /// mediasoup's `router.pipeToRouter({ producerId, router, keepId, enableRtx, enableSrtp })`.
    pub async fn pipe_to_router(&self, options: PipeToRouterOptions) -> Result<PipeToRouterResult> {
        let target = &options.router;
        self.check_pipe_target(target)?;
        let engine = self.inner.engine.clone();
        let source = engine
            .producers
            .lock()
            .expect("producers lock")
            .get(&(self.inner.oid, options.producer_id.clone()))
            .cloned()
            .ok_or_else(|| Error::type_error(format!("no Producer found for id \"{}\"", options.producer_id)))?;

        if source.r#type != ProducerType::Simple {
            return Err(Error::unsupported("piping simulcast and SVC producers is not supported yet"));
        }
        // The pipe consumer: mediasoup's pipe parameters (the source's consumable encodings).
        let consumer_uuid = uuid::Uuid::new_v4();
        let consumer_params = ortc::get_pipe_consumer_rtp_parameters(
            &source.consumable_rtp_parameters,
            options.enable_rtx,
            ssrc_from(&consumer_uuid, 5),
            ssrc_from(&consumer_uuid, 13),
        );

        // The pipe producer: those parameters produced into the target router.
        let producer_id = if options.keep_id { options.producer_id.clone() } else { uuid::Uuid::new_v4().to_string() };
        if engine.producers.lock().expect("producers lock").contains_key(&(target.inner.oid, producer_id.clone())) {
            return Err(Error::type_error(format!("a Producer with same id \"{producer_id}\" already exists")));
        }
        let caps = &target.inner.rtp_capabilities;
        let mut rtp_parameters = consumer_params.clone();
        ortc::validate_rtp_parameters(&mut rtp_parameters)?;
        let rtp_mapping =
            ortc::get_producer_rtp_parameters_mapping(&mut rtp_parameters, caps, ssrc_from(&consumer_uuid, 21))?;
        let consumable_rtp_parameters =
            ortc::get_consumable_rtp_parameters(source.kind, &rtp_parameters, caps, &rtp_mapping)?;
        let ext_map = super::producer::router_ext_map(&rtp_parameters, caps, source.kind);
        let paused = source.shared.paused.load(Ordering::Acquire);
        let spec = ProducerSpec {
            kind: source.kind,
            rtp_parameters,
            rtp_mapping: rtp_mapping.clone(),
            ext_map,
            paused,
            key_frame_request_delay_ms: 0,
        };

        let (consumer_oid, producer_oid) = (engine.alloc_id(), engine.alloc_id());
        let to = target.inner.shard;
        let producer_shared = ObjectShared::new(producer_oid, producer_id.clone(), paused);
        engine.registry.insert(&producer_shared);
        engine
            .request(
                to,
                Command::CreateMirror {
                    router: target.inner.oid,
                    producer: producer_oid,
                    origin: source.shard,
                    mirror_of: MirrorOf::PipeConsumer(consumer_oid),
                    spec: Box::new(spec.clone()),
                },
            )
            .await
            .inspect_err(|_| engine.registry.remove(producer_oid))?;
        let consumer_shared = ObjectShared::new(consumer_oid, consumer_uuid.to_string(), false);
        consumer_shared.producer_paused.store(paused, Ordering::Release);
        engine.registry.insert(&consumer_shared);
        let linked = engine
            .request(
                source.shard,
                Command::CreatePipeConsumer {
                    router: self.inner.oid,
                    id: consumer_oid,
                    producer: source.oid,
                    rtp_parameters: Box::new(consumer_params.clone()),
                    shard: to,
                    mirror: producer_oid,
                },
            )
            .await;
        if let Err(e) = linked {
            engine.registry.remove(consumer_oid);
            engine.registry.remove(producer_oid);
            engine.tell(to, Command::CloseProducer { id: producer_oid });
            return Err(e);
        }
        let pipe_consumer = Consumer {
            inner: Arc::new(ConsumerInner {
                engine: engine.clone(),
                id: consumer_uuid.to_string(),
                oid: consumer_oid,
                shard: source.shard,
                producer_id: options.producer_id.clone(),
                kind: source.kind,
                r#type: ConsumerType::Pipe,
                rtp_parameters: consumer_params,
                shared: consumer_shared,
                app_data: Value::Object(Default::default()),
            }),
        };
        let pipe_producer = Producer::register(
            &engine,
            producer_shared,
            Registration {
                router: target.inner.oid,
                shard: to,
                transport_id: format!("pipe:{}", self.id()),
                direct: false,
                id: producer_id,
                oid: producer_oid,
                kind: source.kind,
                r#type: source.r#type,
                spec,
                rtp_mapping,
                consumable_rtp_parameters,
                app_data: Value::Object(Default::default()),
            },
        );
        Ok(PipeToRouterResult { pipe_consumer, pipe_producer })
    }
}
