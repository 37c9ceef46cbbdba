//! The API's methods: one match arm per method, each mapping params onto the embedded engine.
//!
//! Methods the engine cannot serve yet answer `UnsupportedError` from [`unsupported`]; when the
//! engine grows one, it gets its arm in [`call`] and leaves that list.

use std::net::IpAddr;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use shardsfu_engine::ortc::supported_rtp_capabilities;
use shardsfu_engine::rtp_parameters::RtpCapabilities;
use shardsfu_engine::{
    block_on, ActiveSpeakerObserverOptions, AudioLevelObserverOptions, Consumer, ConsumerOptions, DataConsumer,
    DataConsumerOptions, DataProducer, DataProducerOptions, DataSendOptions, DirectTransportOptions,
    PipeDataToRouterOptions, PipeToRouterOptions, PlainTransportConnect, PlainTransportOptions, Producer,
    ProducerOptions, RouterOptions, RtpObserver, WebRtcServerOptions, WebRtcTransport, WebRtcTransportConnect,
    WebRtcTransportOptions, WorkerSettings,
};

use crate::registry::{as_client_call, AnyTransport, ConnId, Outbox, Sink, WorkerEntry, MAX_WORKERS_PER_CONNECTION};
use crate::rpc::{RpcError, METHOD_NOT_FOUND};
use crate::server::Shared;

/// What a method runs with: the server and the calling connection.
pub struct Ctx<'a> {
    pub shared: &'a Arc<Shared>,
    pub conn: ConnId,
    pub outbox: &'a Arc<Outbox>,
}

/// Run one method.
pub fn call(ctx: &Ctx<'_>, method: &str, p: &Value) -> Result<Value, RpcError> {
    match method {
        "createWorker" => create_worker(ctx, p),
        "getSupportedRtpCapabilities" => Ok(json!(supported_rtp_capabilities())),

        "worker.createRouter" => worker_create_router(ctx, p),
        "worker.close" => worker_close(ctx, p),
        "worker.dump" => worker_dump(ctx, p),
        "worker.getResourceUsage" => worker_resource_usage(ctx, p),
        "worker.updateSettings" => worker_update_settings(ctx, p),
        "worker.adopt" => worker_adopt(ctx, p),
        "worker.createWebRtcServer" => worker_create_webrtc_server(ctx, p),

        "webRtcServer.dump" => Ok(reg(ctx).webrtc_server(str_param(p, "webRtcServerId")?)?.handle.dump()),
        "webRtcServer.close" => {
            reg(ctx).webrtc_server(str_param(p, "webRtcServerId")?)?.handle.close();
            Ok(Value::Null)
        }

        "router.createPlainTransport" => router_create_plain_transport(ctx, p),
        "router.createDirectTransport" => router_create_direct_transport(ctx, p),
        "router.createWebRtcTransport" => router_create_webrtc_transport(ctx, p),
        "router.canConsume" => router_can_consume(ctx, p),
        "router.pipeToRouter" => router_pipe_to_router(ctx, p),
        "router.createAudioLevelObserver" => router_create_audio_level_observer(ctx, p),
        "router.createActiveSpeakerObserver" => router_create_active_speaker_observer(ctx, p),
        "router.dump" => Ok(block_on(reg(ctx).router(str_param(p, "routerId")?)?.handle.dump())?),
        "router.close" => {
            reg(ctx).router(str_param(p, "routerId")?)?.handle.close();
            Ok(Value::Null)
        }

        "transport.connect" => transport_connect(ctx, p),
        "transport.produce" => transport_produce(ctx, p),
        "transport.consume" => transport_consume(ctx, p),
        "transport.produceData" => transport_produce_data(ctx, p),
        "transport.consumeData" => transport_consume_data(ctx, p),
        "transport.getStats" => Ok(block_on(transport_of(ctx, p)?.transport().get_stats())?),
        "transport.dump" => Ok(block_on(transport_of(ctx, p)?.transport().dump())?),
        "transport.close" => {
            transport_of(ctx, p)?.transport().close();
            Ok(Value::Null)
        }
        "transport.sendRtcp" => transport_send_rtcp(ctx, p),
        "transport.restartIce" => {
            let t = webrtc_of(ctx, p)?;
            Ok(json!(block_on(t.restart_ice())?))
        }
        "transport.setMaxIncomingBitrate" => bitrate(ctx, p, |t, b| t.set_max_incoming_bitrate(b)),
        "transport.setMaxOutgoingBitrate" => bitrate(ctx, p, |t, b| t.set_max_outgoing_bitrate(b)),
        "transport.setMinOutgoingBitrate" => bitrate(ctx, p, |t, b| t.set_min_outgoing_bitrate(b)),

        "producer.pause" => {
            let producer = producer_of(ctx, p)?;
            as_client_call(|| block_on(producer.pause()))?;
            Ok(Value::Null)
        }
        "producer.resume" => {
            let producer = producer_of(ctx, p)?;
            as_client_call(|| block_on(producer.resume()))?;
            Ok(Value::Null)
        }
        "producer.dump" => Ok(block_on(producer_of(ctx, p)?.dump())?),
        "producer.getStats" => Ok(block_on(producer_of(ctx, p)?.get_stats())?),
        "producer.close" => {
            producer_of(ctx, p)?.close();
            Ok(Value::Null)
        }
        "producer.send" => {
            let producer = producer_of(ctx, p)?;
            producer.send(&bytes_param(p, "rtpPacket")?)?;
            Ok(Value::Null)
        }

        "consumer.pause" => {
            let consumer = consumer_of(ctx, p)?;
            as_client_call(|| block_on(consumer.pause()))?;
            Ok(Value::Null)
        }
        "consumer.resume" => {
            let consumer = consumer_of(ctx, p)?;
            as_client_call(|| block_on(consumer.resume()))?;
            Ok(Value::Null)
        }
        "consumer.requestKeyFrame" => Ok(block_on(consumer_of(ctx, p)?.request_key_frame()).map(|()| Value::Null)?),
        "consumer.setPreferredLayers" => consumer_set_preferred_layers(ctx, p),
        "consumer.setPriority" => consumer_set_priority(ctx, p, None),
        "consumer.unsetPriority" => consumer_set_priority(ctx, p, Some(1)),
        "consumer.dump" => consumer_dump(ctx, p),
        "consumer.getStats" => Ok(block_on(consumer_of(ctx, p)?.get_stats())?),
        "consumer.close" => {
            consumer_of(ctx, p)?.close();
            Ok(Value::Null)
        }

        "dataProducer.pause" => {
            let data_producer = data_producer_of(ctx, p)?;
            as_client_call(|| block_on(data_producer.pause()))?;
            Ok(Value::Null)
        }
        "dataProducer.resume" => {
            let data_producer = data_producer_of(ctx, p)?;
            as_client_call(|| block_on(data_producer.resume()))?;
            Ok(Value::Null)
        }
        "dataProducer.dump" => Ok(block_on(data_producer_of(ctx, p)?.dump())?),
        "dataProducer.getStats" => Ok(block_on(data_producer_of(ctx, p)?.get_stats())?),
        "dataProducer.close" => {
            data_producer_of(ctx, p)?.close();
            Ok(Value::Null)
        }
        "dataProducer.send" => data_producer_send(ctx, p),

        "dataConsumer.pause" => {
            let data_consumer = data_consumer_of(ctx, p)?;
            as_client_call(|| block_on(data_consumer.pause()))?;
            Ok(Value::Null)
        }
        "dataConsumer.resume" => {
            let data_consumer = data_consumer_of(ctx, p)?;
            as_client_call(|| block_on(data_consumer.resume()))?;
            Ok(Value::Null)
        }
        "dataConsumer.setSubchannels" | "dataConsumer.addSubchannel" | "dataConsumer.removeSubchannel" => {
            data_consumer_subchannels(ctx, p, method)
        }
        "dataConsumer.getBufferedAmount" => Ok(json!(block_on(data_consumer_of(ctx, p)?.get_buffered_amount())?)),
        "dataConsumer.setBufferedAmountLowThreshold" => data_consumer_set_threshold(ctx, p),
        "dataConsumer.dump" => Ok(block_on(data_consumer_of(ctx, p)?.dump())?),
        "dataConsumer.getStats" => Ok(block_on(data_consumer_of(ctx, p)?.get_stats())?),
        "dataConsumer.close" => {
            data_consumer_of(ctx, p)?.close();
            Ok(Value::Null)
        }

        "rtpObserver.addProducer" => {
            let observer = rtp_observer_of(ctx, p)?;
            block_on(observer.add_producer(str_param(p, "producerId")?))?;
            Ok(Value::Null)
        }
        "rtpObserver.removeProducer" => {
            let observer = rtp_observer_of(ctx, p)?;
            block_on(observer.remove_producer(str_param(p, "producerId")?))?;
            Ok(Value::Null)
        }
        "rtpObserver.pause" => Ok(block_on(rtp_observer_of(ctx, p)?.pause()).map(|()| Value::Null)?),
        "rtpObserver.resume" => Ok(block_on(rtp_observer_of(ctx, p)?.resume()).map(|()| Value::Null)?),
        "rtpObserver.close" => {
            rtp_observer_of(ctx, p)?.close();
            Ok(Value::Null)
        }

        _ => match unsupported(method) {
            Some(why) => Err(RpcError::unsupported(format!("{method}: {why}"))),
            None => Err(RpcError::new(METHOD_NOT_FOUND, format!("method not found: {method}"), None)),
        },
    }
}

const SCTP: &str = "SCTP is not available in this engine yet (data producers and consumers work on DirectTransports)";
const TRACE: &str = "trace events are not available in this engine yet";

/// mediasoup methods this server knows but cannot serve yet, and why.
pub const UNSUPPORTED: &[(&str, &str)] = &[
    (
        "router.createPipeTransport",
        "UDP PipeTransports are not available in this engine yet (router.pipeToRouter links routers of this \
         server without them)",
    ),
    ("transport.enableTraceEvent", TRACE),
    (
        "dataConsumer.send",
        "sending from the server side into a data consumer is not available in this engine yet (use a data \
         producer)",
    ),
    ("producer.enableTraceEvent", TRACE),
    ("consumer.enableTraceEvent", TRACE),
];

fn unsupported(method: &str) -> Option<&'static str> {
    UNSUPPORTED.iter().find(|(m, _)| *m == method).map(|(_, why)| *why)
}

// ---- params ----

fn reg<'a>(ctx: &'a Ctx<'_>) -> &'a Arc<crate::registry::Registry> {
    &ctx.shared.registry
}

fn str_param<'p>(p: &'p Value, name: &str) -> Result<&'p str, RpcError> {
    match p.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(RpcError::params(format!("{name} must be a string"))),
        None => Err(RpcError::params(format!("missing {name}"))),
    }
}

fn opt_str_param<'p>(p: &'p Value, name: &str) -> Result<Option<&'p str>, RpcError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(RpcError::params(format!("{name} must be a string"))),
    }
}

fn opt_bool_param(p: &Value, name: &str, default: bool) -> Result<bool, RpcError> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(RpcError::params(format!("{name} must be a boolean"))),
    }
}

fn bytes_param(p: &Value, name: &str) -> Result<Vec<u8>, RpcError> {
    crate::b64::decode(str_param(p, name)?).map_err(|e| RpcError::params(format!("{name} must be base64: {e}")))
}

/// The params (or a part of them) as one of the engine's option types.
fn parse<T: DeserializeOwned>(v: &Value, what: &str) -> Result<T, RpcError> {
    serde_json::from_value(v.clone()).map_err(|e| RpcError::params(format!("invalid {what}: {e}")))
}

fn params_object(p: &Value) -> Map<String, Value> {
    p.as_object().cloned().unwrap_or_default()
}

fn transport_of(ctx: &Ctx<'_>, p: &Value) -> Result<AnyTransport, RpcError> {
    Ok(reg(ctx).transport(str_param(p, "transportId")?)?.handle)
}

fn webrtc_of(ctx: &Ctx<'_>, p: &Value) -> Result<WebRtcTransport, RpcError> {
    match transport_of(ctx, p)? {
        AnyTransport::WebRtc(t) => Ok(t),
        _ => Err(RpcError::invalid_state("not a WebRtcTransport")),
    }
}

/// The bitrate setters: recorded on WebRtcTransports (shown in dump; no bandwidth estimation
/// acts on them yet), refused elsewhere.
fn bitrate(
    ctx: &Ctx<'_>,
    p: &Value,
    set: impl FnOnce(&WebRtcTransport, u32) -> shardsfu_engine::Result<()>,
) -> Result<Value, RpcError> {
    let t = match transport_of(ctx, p)? {
        AnyTransport::WebRtc(t) => t,
        _ => return Err(RpcError::unsupported("bitrate limits apply to WebRtcTransports only in this engine")),
    };
    let bps = p
        .get("bitrate")
        .and_then(Value::as_u64)
        .and_then(|b| u32::try_from(b).ok())
        .ok_or_else(|| RpcError::params("bitrate must be a non-negative integer"))?;
    set(&t, bps)?;
    Ok(Value::Null)
}

fn producer_of(ctx: &Ctx<'_>, p: &Value) -> Result<Producer, RpcError> {
    let id = str_param(p, "producerId")?;
    Ok(reg(ctx).producer(id, opt_str_param(p, "routerId")?)?.producer)
}

fn consumer_of(ctx: &Ctx<'_>, p: &Value) -> Result<Consumer, RpcError> {
    Ok(reg(ctx).consumer(str_param(p, "consumerId")?)?.consumer)
}

fn data_producer_of(ctx: &Ctx<'_>, p: &Value) -> Result<DataProducer, RpcError> {
    let id = str_param(p, "dataProducerId")?;
    Ok(reg(ctx).data_producer(id, opt_str_param(p, "routerId")?)?.data_producer)
}

fn data_consumer_of(ctx: &Ctx<'_>, p: &Value) -> Result<DataConsumer, RpcError> {
    reg(ctx).data_consumer(str_param(p, "dataConsumerId")?)
}

fn rtp_observer_of(ctx: &Ctx<'_>, p: &Value) -> Result<RtpObserver, RpcError> {
    Ok(reg(ctx).rtp_observer(str_param(p, "rtpObserverId")?)?.handle)
}

// ---- results ----

fn producer_json(p: &Producer) -> Value {
    json!({
        "id": p.id(),
        "kind": p.kind(),
        "type": p.r#type(),
        "rtpParameters": p.rtp_parameters(),
        "paused": p.paused(),
        "score": p.score(),
    })
}

fn consumer_json(c: &Consumer, priority: u8) -> Value {
    json!({
        "id": c.id(),
        "producerId": c.producer_id(),
        "kind": c.kind(),
        "type": c.r#type(),
        "rtpParameters": c.rtp_parameters(),
        "paused": c.paused(),
        "producerPaused": c.producer_paused(),
        "score": c.score(),
        "preferredLayers": null,
        "priority": priority,
    })
}

fn data_producer_json(d: &DataProducer) -> Value {
    let mut data = json!({
        "id": d.id(),
        "type": d.r#type(),
        "label": d.label(),
        "protocol": d.protocol(),
        "paused": d.paused(),
    });
    if let Some(sctp) = d.sctp_stream_parameters() {
        data["sctpStreamParameters"] = json!(sctp);
    }
    data
}

fn data_consumer_json(d: &DataConsumer) -> Value {
    let mut data = json!({
        "id": d.id(),
        "dataProducerId": d.data_producer_id(),
        "type": d.r#type(),
        "label": d.label(),
        "protocol": d.protocol(),
        "paused": d.paused(),
        "dataProducerPaused": d.data_producer_paused(),
        "subchannels": d.subchannels(),
        "bufferedAmountLowThreshold": 0,
    });
    if let Some(sctp) = d.sctp_stream_parameters() {
        data["sctpStreamParameters"] = json!(sctp);
    }
    data
}

// ---- worker ----

fn create_worker(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let mut v = params_object(p);
    let s = &ctx.shared.settings;
    v.entry("rtcMinPort").or_insert_with(|| json!(s.rtc_min_port));
    v.entry("rtcMaxPort").or_insert_with(|| json!(s.rtc_max_port));
    let settings: WorkerSettings = parse(&Value::Object(v), "worker settings")?;
    if reg(ctx).owned_workers(ctx.conn) >= MAX_WORKERS_PER_CONNECTION {
        return Err(RpcError::new(
            crate::rpc::ENGINE_ERROR,
            format!("a connection may own at most {MAX_WORKERS_PER_CONNECTION} workers"),
            Some("Error"),
        ));
    }
    let worker = block_on(ctx.shared.engine.create_worker(settings))?;
    let id = uuid::Uuid::new_v4().to_string();
    let sink = Arc::new(Sink::default());
    sink.set(Some(ctx.outbox.clone()));
    let pid = worker.pid();
    reg(ctx).lock().workers.insert(id.clone(), WorkerEntry { worker, sink, owner: Some(ctx.conn), orphaned_at: None });
    tracing::info!(worker = id, conn = ctx.conn, "worker created");
    Ok(json!({ "id": id, "pid": pid }))
}

fn worker_create_router(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let worker_id = str_param(p, "workerId")?;
    let (worker, sink) = reg(ctx).worker(worker_id)?;
    let options: RouterOptions = parse(p, "router options")?;
    let router = block_on(worker.create_router(options))?;
    reg(ctx).add_router(&router, &sink, worker_id);
    Ok(json!({ "id": router.id(), "rtpCapabilities": router.rtp_capabilities() }))
}

fn worker_close(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let id = str_param(p, "workerId")?;
    let entry = reg(ctx).lock().workers.remove(id);
    match entry {
        // Closed outside the lock: the routers' close handlers take it.
        Some(e) => {
            e.worker.close();
            tracing::info!(worker = id, conn = ctx.conn, "worker closed");
            Ok(Value::Null)
        }
        None => Err(RpcError::invalid_state(format!("Worker \"{id}\" not found (closed, or never created)"))),
    }
}

fn worker_dump(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let id = str_param(p, "workerId")?;
    let (worker, _) = reg(ctx).worker(id)?;
    let mut dump = worker.dump();
    dump["id"] = json!(id);
    Ok(dump)
}

/// mediasoup's `worker.getResourceUsage()`, for the whole process: every worker of this server
/// shares it. CPU times in ms and max RSS in KiB, read from /proc (0 where unavailable).
fn worker_resource_usage(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    reg(ctx).worker(str_param(p, "workerId")?)?;
    let (utime_ms, stime_ms) = proc_cpu_ms().unwrap_or((0, 0));
    let maxrss_kib = proc_status_kib("VmHWM").unwrap_or(0);
    Ok(json!({
        "ru_utime": utime_ms, "ru_stime": stime_ms, "ru_maxrss": maxrss_kib,
        "ru_ixrss": 0, "ru_idrss": 0, "ru_isrss": 0, "ru_minflt": 0, "ru_majflt": 0, "ru_nswap": 0,
        "ru_inblock": 0, "ru_oublock": 0, "ru_msgsnd": 0, "ru_msgrcv": 0, "ru_nsignals": 0,
        "ru_nvcsw": 0, "ru_nivcsw": 0,
    }))
}

/// User and system CPU time of this process in ms, from /proc/self/stat (clock ticks of 100 Hz,
/// the value on every Linux architecture we run on).
fn proc_cpu_ms() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces), starting with field 3 (state).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((ticks(11)? * 10, ticks(12)? * 10))
}

fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn worker_update_settings(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let (worker, _) = reg(ctx).worker(str_param(p, "workerId")?)?;
    let log_level = opt_str_param(p, "logLevel")?.map(str::to_owned);
    let log_tags = match p.get("logTags") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse::<Vec<String>>(v, "logTags")?),
    };
    worker.update_settings(log_level, log_tags)?;
    Ok(Value::Null)
}

fn worker_adopt(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let id = str_param(p, "workerId")?;
    let mut objects = reg(ctx).lock();
    let entry = objects
        .workers
        .get_mut(id)
        .ok_or_else(|| RpcError::invalid_state(format!("Worker \"{id}\" not found (closed, or never created)")))?;
    match entry.owner {
        Some(owner) if owner != ctx.conn => {
            return Err(RpcError::invalid_state(format!("Worker \"{id}\" belongs to another open connection")))
        }
        _ => {}
    }
    entry.owner = Some(ctx.conn);
    entry.orphaned_at = None;
    entry.sink.set(Some(ctx.outbox.clone()));
    tracing::info!(worker = id, conn = ctx.conn, "worker adopted");
    Ok(json!({ "id": id, "pid": entry.worker.pid() }))
}

fn worker_create_webrtc_server(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let worker_id = str_param(p, "workerId")?;
    let (worker, sink) = reg(ctx).worker(worker_id)?;
    let options: WebRtcServerOptions = parse(&with_listen_infos_defaults(ctx, p)?, "WebRtcServer options")?;
    let server = block_on(worker.create_webrtc_server(options))?;
    reg(ctx).add_webrtc_server(&server, &sink, worker_id);
    Ok(json!({ "id": server.id() }))
}

// ---- router ----

/// The server's media address as a listen info of `protocol`.
fn default_listen_info(ctx: &Ctx<'_>, protocol: &str) -> Value {
    let s = &ctx.shared.settings;
    let mut info = json!({ "protocol": protocol, "ip": s.media_ip.to_string() });
    if let Some(a) = &s.announced_address {
        info["announcedAddress"] = json!(a);
    }
    info
}

/// `listenInfos` filled in as `with_listen_defaults` does for one `listenInfo`: UDP and TCP on the
/// server's media address when absent; the announced address for entries binding every interface.
fn with_listen_infos_defaults(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let mut v = params_object(p);
    match v.get_mut("listenInfos") {
        None | Some(Value::Null) => {
            v.insert("listenInfos".into(), json!([default_listen_info(ctx, "udp"), default_listen_info(ctx, "tcp")]));
        }
        Some(Value::Array(infos)) => {
            for info in infos {
                let one = with_listen_defaults(ctx, &json!({ "listenInfo": info.clone() }))?;
                *info = one["listenInfo"].clone();
            }
        }
        Some(_) => return Err(RpcError::params("listenInfos must be an array")),
    }
    Ok(Value::Object(v))
}

fn webrtc_transport_json(t: &WebRtcTransport) -> Value {
    json!({
        "id": t.id(),
        "iceRole": t.ice_role(),
        "iceParameters": t.ice_parameters(),
        "iceCandidates": t.ice_candidates(),
        "iceState": t.ice_state(),
        "iceSelectedTuple": t.ice_selected_tuple(),
        "dtlsParameters": t.dtls_parameters(),
        "dtlsState": t.dtls_state(),
        "sctpParameters": null,
        "sctpState": null,
    })
}

fn router_create_webrtc_transport(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let router_id = str_param(p, "routerId")?;
    let router = reg(ctx).router(router_id)?;
    let server = match opt_str_param(p, "webRtcServerId")? {
        Some(id) => Some(reg(ctx).webrtc_server(id)?.handle),
        None => None,
    };
    let params = if server.is_some() { p.clone() } else { with_listen_infos_defaults(ctx, p)? };
    let mut options: WebRtcTransportOptions = parse(&params, "WebRtcTransport options")?;
    options.webrtc_server = server;
    let t = block_on(router.handle.create_webrtc_transport(options))?;
    let data = webrtc_transport_json(&t);
    reg(ctx).add_transport(AnyTransport::WebRtc(t), &router.sink, router_id);
    Ok(data)
}

/// Fill the server's media address into a PlainTransport's `listenInfo`: all of it when the
/// request has none, the announced address when it binds every interface and announces nothing.
fn with_listen_defaults(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let mut v = params_object(p);
    let s = &ctx.shared.settings;
    match v.get_mut("listenInfo") {
        None | Some(Value::Null) => {
            let mut info = json!({ "protocol": "udp", "ip": s.media_ip.to_string() });
            if let Some(a) = &s.announced_address {
                info["announcedAddress"] = json!(a);
            }
            v.insert("listenInfo".into(), info);
        }
        Some(Value::Object(info)) => {
            let unspecified = info.get("ip").and_then(Value::as_str).and_then(|ip| ip.parse::<IpAddr>().ok());
            let announces =
                info.get("announcedAddress").or_else(|| info.get("announcedIp")).is_some_and(|a| !a.is_null());
            if let (Some(ip), false, Some(a)) = (unspecified, announces, &s.announced_address) {
                if ip.is_unspecified() {
                    info.insert("announcedAddress".into(), json!(a));
                }
            }
        }
        Some(_) => return Err(RpcError::params("listenInfo must be an object")),
    }
    Ok(Value::Object(v))
}

fn router_create_plain_transport(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let router_id = str_param(p, "routerId")?;
    let router = reg(ctx).router(router_id)?;
    if opt_bool_param(p, "enableSctp", false)? {
        return Err(RpcError::unsupported(format!("enableSctp: {SCTP}")));
    }
    if opt_bool_param(p, "enableSrtp", false)? {
        return Err(RpcError::unsupported("enableSrtp: SRTP on PlainTransport is not available in this engine yet"));
    }
    let options: PlainTransportOptions = parse(&with_listen_defaults(ctx, p)?, "PlainTransport options")?;
    let t = block_on(router.handle.create_plain_transport(options))?;
    let mut data = json!({
        "id": t.id(),
        "tuple": t.tuple(),
        "rtcpMux": t.rtcp_mux(),
        "comedia": t.comedia(),
    });
    if let Some(rtcp) = t.rtcp_tuple() {
        data["rtcpTuple"] = json!(rtcp);
    }
    reg(ctx).add_transport(AnyTransport::Plain(t), &router.sink, router_id);
    Ok(data)
}

fn router_create_direct_transport(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let router_id = str_param(p, "routerId")?;
    let router = reg(ctx).router(router_id)?;
    let options: DirectTransportOptions = parse(p, "DirectTransport options")?;
    let t = block_on(router.handle.create_direct_transport(options))?;
    let data = json!({ "id": t.id(), "maxMessageSize": t.max_message_size() });
    reg(ctx).add_transport(AnyTransport::Direct(t), &router.sink, router_id);
    Ok(data)
}

fn router_can_consume(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let router = reg(ctx).router(str_param(p, "routerId")?)?;
    let producer_id = str_param(p, "producerId")?;
    let caps: RtpCapabilities =
        parse(p.get("rtpCapabilities").ok_or_else(|| RpcError::params("missing rtpCapabilities"))?, "rtpCapabilities")?;
    Ok(json!(router.handle.can_consume(producer_id, &caps)))
}

fn router_pipe_to_router(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let data_producer_id = opt_str_param(p, "dataProducerId")?;
    if data_producer_id.is_some() && opt_str_param(p, "producerId")?.is_some() {
        return Err(RpcError::params("just producerId or dataProducerId can be given"));
    }
    let source_id = str_param(p, "routerId")?;
    let source = reg(ctx).router(source_id)?;
    let target_id = str_param(p, "targetRouterId")?;
    let target = reg(ctx).router(target_id)?;
    if let Some(data_producer_id) = data_producer_id {
        let options = PipeDataToRouterOptions {
            keep_id: opt_bool_param(p, "keepId", true)?,
            ..PipeDataToRouterOptions::new(data_producer_id, &target.handle)
        };
        let pair = block_on(source.handle.pipe_data_to_router(options))?;
        reg(ctx).add_data_consumer(&pair.pipe_data_consumer, &source.sink);
        reg(ctx).add_data_producer(&pair.pipe_data_producer, target_id, &target.sink);
        return Ok(json!({
            "pipeDataConsumer": data_consumer_json(&pair.pipe_data_consumer),
            "pipeDataProducer": data_producer_json(&pair.pipe_data_producer),
        }));
    }
    let options = PipeToRouterOptions {
        keep_id: opt_bool_param(p, "keepId", true)?,
        enable_rtx: opt_bool_param(p, "enableRtx", false)?,
        enable_srtp: opt_bool_param(p, "enableSrtp", false)?,
        ..PipeToRouterOptions::new(str_param(p, "producerId")?, &target.handle)
    };
    let pair = block_on(source.handle.pipe_to_router(options))?;
    reg(ctx).add_consumer(&pair.pipe_consumer, &source.sink);
    reg(ctx).add_producer(&pair.pipe_producer, target_id, &target.sink);
    Ok(json!({
        "pipeConsumer": consumer_json(&pair.pipe_consumer, 1),
        "pipeProducer": producer_json(&pair.pipe_producer),
    }))
}

/// mediasoup's `router.createAudioLevelObserver(options)`: `maxEntries`, `threshold` (dBov),
/// `interval` (ms, kept within 250..=5000), `appData`.
fn router_create_audio_level_observer(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let router_id = str_param(p, "routerId")?;
    let router = reg(ctx).router(router_id)?;
    let options: AudioLevelObserverOptions = parse(p, "AudioLevelObserver options")?;
    let observer = block_on(router.handle.create_audio_level_observer(options))?;
    reg(ctx).add_audio_level_observer(&observer, router_id, &router.sink);
    Ok(rtp_observer_json(&observer))
}

/// mediasoup's `router.createActiveSpeakerObserver(options)`: `interval` (ms, kept within
/// 100..=5000), `appData`.
fn router_create_active_speaker_observer(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let router_id = str_param(p, "routerId")?;
    let router = reg(ctx).router(router_id)?;
    let options: ActiveSpeakerObserverOptions = parse(p, "ActiveSpeakerObserver options")?;
    let observer = block_on(router.handle.create_active_speaker_observer(options))?;
    reg(ctx).add_active_speaker_observer(&observer, router_id, &router.sink);
    Ok(rtp_observer_json(&observer))
}

fn rtp_observer_json(o: &RtpObserver) -> Value {
    json!({ "id": o.id(), "type": o.r#type(), "paused": o.paused() })
}

// ---- transport ----

fn transport_connect(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    match transport_of(ctx, p)? {
        AnyTransport::Plain(t) => {
            let params: PlainTransportConnect = parse(p, "connect params")?;
            block_on(t.connect(params))?;
        }
        AnyTransport::WebRtc(t) => {
            let params: WebRtcTransportConnect = parse(p, "connect params")?;
            block_on(t.connect(params))?;
        }
        // mediasoup's DirectTransport.connect() does nothing.
        AnyTransport::Direct(_) => {}
    }
    Ok(Value::Null)
}

fn transport_produce(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let entry = reg(ctx).transport(str_param(p, "transportId")?)?;
    let options: ProducerOptions = parse(p, "producer options")?;
    let producer = block_on(entry.handle.transport().produce(options))?;
    reg(ctx).add_producer(&producer, &entry.parent_id, &entry.sink);
    Ok(producer_json(&producer))
}

fn transport_consume(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let entry = reg(ctx).transport(str_param(p, "transportId")?)?;
    let options: ConsumerOptions = parse(p, "consumer options")?;
    let consumer = block_on(entry.handle.transport().consume(options))?;
    reg(ctx).add_consumer(&consumer, &entry.sink);
    Ok(consumer_json(&consumer, 1))
}

fn transport_produce_data(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let entry = reg(ctx).transport(str_param(p, "transportId")?)?;
    let options: DataProducerOptions = parse(p, "data producer options")?;
    let data_producer = block_on(entry.handle.transport().produce_data(options))?;
    reg(ctx).add_data_producer(&data_producer, &entry.parent_id, &entry.sink);
    Ok(data_producer_json(&data_producer))
}

fn transport_consume_data(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let entry = reg(ctx).transport(str_param(p, "transportId")?)?;
    let options: DataConsumerOptions = parse(p, "data consumer options")?;
    let data_consumer = block_on(entry.handle.transport().consume_data(options))?;
    reg(ctx).add_data_consumer(&data_consumer, &entry.sink);
    Ok(data_consumer_json(&data_consumer))
}

fn transport_send_rtcp(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    match transport_of(ctx, p)? {
        AnyTransport::Direct(t) => {
            t.send_rtcp(&bytes_param(p, "rtcpPacket")?)?;
            Ok(Value::Null)
        }
        _ => Err(RpcError::invalid_state("sendRtcp() is only for DirectTransports")),
    }
}

// ---- data producer ----

/// `dataProducer.send`: `message` is the text itself, or base64 with `binary: true` (as the
/// client's `DataProducer.send` sends it); a text message takes ppid 51 by default, a binary 53.
fn data_producer_send(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let data_producer = data_producer_of(ctx, p)?;
    let text = !opt_bool_param(p, "binary", false)?;
    let message = if text { str_param(p, "message")?.as_bytes().to_vec() } else { bytes_param(p, "message")? };
    let ppid = match p.get("ppid") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| RpcError::params("ppid must be a non-negative integer"))?,
        ),
    };
    let subchannels = match p.get("subchannels") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => parse::<Vec<u16>>(v, "subchannels")?,
    };
    let required_subchannel = match p.get("requiredSubchannel") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse::<u16>(v, "requiredSubchannel")?),
    };
    data_producer.send_with(&message, text, DataSendOptions { ppid, subchannels, required_subchannel })?;
    Ok(Value::Null)
}

// ---- data consumer ----

/// `setSubchannels`, `addSubchannel`, `removeSubchannel`: all answer the subchannels now in
/// effect (sorted, without duplicates), as mediasoup's worker does.
fn data_consumer_subchannels(ctx: &Ctx<'_>, p: &Value, method: &str) -> Result<Value, RpcError> {
    let data_consumer = data_consumer_of(ctx, p)?;
    let subchannel = || {
        p.get("subchannel")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .ok_or_else(|| RpcError::params("subchannel must be an integer from 0 to 65535"))
    };
    match method {
        "dataConsumer.addSubchannel" => block_on(data_consumer.add_subchannel(subchannel()?))?,
        "dataConsumer.removeSubchannel" => block_on(data_consumer.remove_subchannel(subchannel()?))?,
        _ => {
            let subchannels = p.get("subchannels").ok_or_else(|| RpcError::params("missing subchannels"))?;
            block_on(data_consumer.set_subchannels(parse(subchannels, "subchannels")?))?
        }
    }
    Ok(json!({ "subchannels": data_consumer.subchannels() }))
}

fn data_consumer_set_threshold(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let data_consumer = data_consumer_of(ctx, p)?;
    let threshold = p
        .get("threshold")
        .and_then(Value::as_u64)
        .and_then(|t| u32::try_from(t).ok())
        .ok_or_else(|| RpcError::params("threshold must be a non-negative integer"))?;
    block_on(data_consumer.set_buffered_amount_low_threshold(threshold))?;
    Ok(Value::Null)
}

// ---- consumer ----

/// Simple and pipe consumers (the only kinds the engine has) have one layer: mediasoup ignores
/// the call for them, and so do we, after checking the params.
fn consumer_set_preferred_layers(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    consumer_of(ctx, p)?;
    if !p.get("spatialLayer").is_some_and(Value::is_u64) {
        return Err(RpcError::params("spatialLayer must be a non-negative integer"));
    }
    if !p.get("temporalLayer").is_none_or(|t| t.is_null() || t.is_u64()) {
        return Err(RpcError::params("temporalLayer must be a non-negative integer"));
    }
    Ok(Value::Null)
}

fn consumer_set_priority(ctx: &Ctx<'_>, p: &Value, fixed: Option<u8>) -> Result<Value, RpcError> {
    let id = str_param(p, "consumerId")?;
    let priority = match fixed {
        Some(v) => v,
        None => match p.get("priority").and_then(Value::as_u64) {
            Some(v @ 1..=255) => v as u8,
            _ => return Err(RpcError::params("priority must be an integer from 1 to 255")),
        },
    };
    let mut objects = reg(ctx).lock();
    let entry = objects
        .consumers
        .get_mut(id)
        .ok_or_else(|| RpcError::invalid_state(format!("Consumer \"{id}\" not found (closed, or never created)")))?;
    entry.priority = priority;
    Ok(Value::Null)
}

fn consumer_dump(ctx: &Ctx<'_>, p: &Value) -> Result<Value, RpcError> {
    let entry = reg(ctx).consumer(str_param(p, "consumerId")?)?;
    let mut dump = block_on(entry.consumer.dump())?;
    dump["priority"] = json!(entry.priority);
    Ok(dump)
}
