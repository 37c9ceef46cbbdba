//! `shardsfu`: the SFU engine with its remote control API. With no arguments it serves on the
//! embedded defaults (every core, the API on 127.0.0.1:7300, media on the host's address); see
//! `shardsfu --help` and control/API.md.

use std::process::ExitCode;

use clap::Parser;
use shardsfu_control::{Cli, LogFormat, Server, Settings};
use shardsfu_engine::{Engine, EngineOptions};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing_subscriber::EnvFilter;

fn init_logs(settings: &Settings) -> Result<(), String> {
    let filter = EnvFilter::try_new(&settings.log_level).map_err(|e| format!("--log-level: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let done = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    done.map_err(|e| e.to_string())
}

fn run(settings: Settings) -> Result<(), String> {
    // Signals first, so that one arriving during start-up is not lost (and does not kill us
    // half-started).
    let mut signals = Signals::new([SIGTERM, SIGINT]).map_err(|e| format!("cannot handle signals: {e}"))?;
    let engine =
        Engine::start(EngineOptions { shards: settings.shards, pin: settings.pin, ..EngineOptions::default() })
            .map_err(|e| format!("cannot start the engine: {e}"))?;
    tracing::info!(
        shards = engine.shard_count(),
        media_ip = %settings.media_ip,
        announced_address = settings.announced_address.as_deref().unwrap_or(""),
        orphan_grace_ms = %settings.orphan_grace,
        "engine started"
    );
    let api_listen = settings.api_listen;
    let server = Server::start(engine.clone(), settings).map_err(|e| format!("cannot serve on {api_listen}: {e}"))?;
    let signal = signals.forever().next().unwrap_or(SIGTERM);
    tracing::info!(signal, "stopping");
    server.shutdown();
    engine.close();
    tracing::info!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let settings = match Settings::resolve(Cli::parse()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shardsfu: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logs(&settings) {
        eprintln!("shardsfu: {e}");
        return ExitCode::from(2);
    }
    match run(settings) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("shardsfu: {e}");
            ExitCode::FAILURE
        }
    }
}
