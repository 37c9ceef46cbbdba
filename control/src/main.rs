//! `shardsfu`: the control binary.
//!
//! Until the remote API lands, running it with no arguments starts the engine on embedded
//! defaults (one shard per core) with one router (opus, VP8, H264) and a comedia PlainTransport
//! ingest on loopback, prints what it made as JSON, and forwards whatever it receives to any
//! consumer transport given with `--forward IP:PORT` (repeatable).

use std::net::SocketAddr;
use std::time::Duration;

use shardsfu_engine::rtp_parameters::{
    MediaKind, RtpCodecCapability, RtpCodecParameters, RtpEncodingParameters, RtpParameters,
};
use shardsfu_engine::{
    block_on, ConsumerOptions, Engine, EngineOptions, PlainTransportConnect, PlainTransportOptions, ProducerOptions,
    RouterOptions, TransportListenInfo, WorkerSettings,
};

const USAGE: &str = "\
shardsfu: a sharded WebRTC SFU with mediasoup v3's model

USAGE:
    shardsfu [--shards N] [--listen-ip IP] [--ingest-port PORT] [--forward IP:PORT]...

Starts the engine (default: one shard per core), creates a router with opus, VP8 and H264,
and a comedia PlainTransport ingest. Send VP8 RTP (payload type 96, SSRC 1111) to the printed
ingest address; each --forward destination gets it through its own consumer transport.

OPTIONS:
    --shards N          number of shards (default: one per core)
    --listen-ip IP      address to bind media sockets on (default 127.0.0.1)
    --ingest-port PORT  ingest port (default: any free port in 10000-59999)
    --forward IP:PORT   add a consumer sending to IP:PORT (repeatable)
    -h, --help          print this help
";

struct Args {
    shards: usize,
    listen_ip: String,
    ingest_port: Option<u16>,
    forwards: Vec<SocketAddr>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { shards: 0, listen_ip: "127.0.0.1".into(), ingest_port: None, forwards: Vec::new() };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "--shards" => args.shards = value("--shards")?.parse().map_err(|e| format!("--shards: {e}"))?,
            "--listen-ip" => args.listen_ip = value("--listen-ip")?,
            "--ingest-port" => {
                args.ingest_port = Some(value("--ingest-port")?.parse().map_err(|e| format!("--ingest-port: {e}"))?)
            }
            "--forward" => args.forwards.push(value("--forward")?.parse().map_err(|e| format!("--forward: {e}"))?),
            other => return Err(format!("unknown argument '{other}'\n\n{USAGE}")),
        }
    }
    Ok(args)
}

fn codec(kind: MediaKind, mime: &str, clock_rate: u32, channels: Option<u8>) -> RtpCodecCapability {
    RtpCodecCapability {
        kind,
        mime_type: mime.into(),
        preferred_payload_type: None,
        clock_rate,
        channels,
        parameters: None,
        rtcp_feedback: None,
    }
}

fn run(args: Args) -> shardsfu_engine::Result<()> {
    let engine = Engine::start(EngineOptions { shards: args.shards, ..EngineOptions::default() })?;
    let worker = block_on(engine.create_worker(WorkerSettings::default()))?;
    let router = block_on(worker.create_router(RouterOptions {
        media_codecs: vec![
            codec(MediaKind::Audio, "audio/opus", 48000, Some(2)),
            codec(MediaKind::Video, "video/VP8", 90000, None),
        ],
        ..RouterOptions::default()
    }))?;
    let mut listen = TransportListenInfo::udp(&args.listen_ip);
    listen.port = args.ingest_port;
    let ingest = block_on(
        router.create_plain_transport(PlainTransportOptions { comedia: true, ..PlainTransportOptions::new(listen) }),
    )?;
    let vp8 = router
        .rtp_capabilities()
        .codecs
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|c| c.mime_type == "video/VP8")
        .cloned()
        .expect("router has VP8");
    let producer = block_on(ingest.produce(ProducerOptions::new(
        MediaKind::Video,
        RtpParameters {
            codecs: vec![RtpCodecParameters {
                mime_type: "video/VP8".into(),
                payload_type: 96,
                clock_rate: 90000,
                channels: None,
                parameters: None,
                rtcp_feedback: vp8.rtcp_feedback.clone(),
            }],
            encodings: Some(vec![RtpEncodingParameters { ssrc: Some(1111), ..Default::default() }]),
            ..RtpParameters::default()
        },
    )))?;
    let mut consumers = Vec::new();
    for dest in &args.forwards {
        let t = block_on(
            router.create_plain_transport(PlainTransportOptions::new(TransportListenInfo::udp(&args.listen_ip))),
        )?;
        block_on(t.connect(PlainTransportConnect {
            ip: Some(dest.ip().to_string()),
            port: Some(dest.port()),
            ..Default::default()
        }))?;
        let c = block_on(t.consume(ConsumerOptions::new(producer.id(), router.rtp_capabilities().clone())))?;
        consumers.push(serde_json::json!({ "transportTuple": t.tuple(), "consumer": c.rtp_parameters() }));
    }
    let info = serde_json::json!({
        "shards": engine.shard_count(),
        "routerId": router.id(),
        "routerShard": router.shard(),
        "ingest": ingest.tuple(),
        "producerId": producer.id(),
        "consumers": consumers,
    });
    println!("{}", serde_json::to_string_pretty(&info).unwrap_or_default());
    eprintln!("shardsfu running; Ctrl-C to stop");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(args) {
        eprintln!("shardsfu: {e}");
        std::process::exit(1);
    }
}
