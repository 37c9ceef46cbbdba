//! Settings: embedded defaults, overridden by a TOML file (`--config`), overridden by environment
//! variables and flags (clap reads both; a flag wins over its variable).
//!
//! Every setting is optional at every layer, so `--help` shows the defaults in the text rather
//! than through clap (clap's own default would hide whether a value came from the file).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Parser, ValueEnum};
use serde::Deserialize;

/// The API's default listen address: loopback only, so no token is needed out of the box.
pub const DEFAULT_API_LISTEN: &str = "127.0.0.1:7300";
/// Largest WebSocket message (and frame) accepted, by default.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Requests per second a connection may sustain, by default.
pub const DEFAULT_RATE_LIMIT_PER_S: u32 = 1000;
/// Requests a connection may send in a burst above the sustained rate, by default.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 500;
/// How long a disconnected client's workers live, by default.
pub const DEFAULT_ORPHAN_GRACE_MS: u64 = 30_000;
/// API connections open at once, by default (each is a thread).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// What happens to a disconnected client's workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrphanGrace {
    /// Closed this many milliseconds after the disconnect (0: at once), unless adopted.
    Ms(u64),
    /// Never closed by the server.
    Keep,
}

impl FromStr for OrphanGrace {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "keep" {
            return Ok(OrphanGrace::Keep);
        }
        s.parse().map(OrphanGrace::Ms).map_err(|_| format!("'{s}' is neither a number of milliseconds nor 'keep'"))
    }
}

impl fmt::Display for OrphanGrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrphanGrace::Ms(ms) => write!(f, "{ms}"),
            OrphanGrace::Keep => f.write_str("keep"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The command line (and environment). Every option may also be set in the `--config` file under
/// its long name with `_` for `-` (e.g. `api_listen = "0.0.0.0:7300"`).
#[derive(Debug, Default, Parser)]
#[command(
    name = "shardsfu",
    version,
    about = "shardsfu: a sharded WebRTC SFU with mediasoup v3's model, controlled over JSON-RPC on a WebSocket",
    long_about = "shardsfu: a sharded WebRTC SFU with mediasoup v3's model.\n\n\
        Serves the remote API (JSON-RPC 2.0 over a WebSocket at `/`, see control/API.md), Prometheus \
        metrics at `/metrics` and a health check at `/healthz`, all on --api-listen.\n\n\
        Settings come from embedded defaults, then the TOML file given with --config (keys are the \
        long option names with `_` for `-`), then environment variables, then flags."
)]
pub struct Cli {
    /// TOML file with settings (keys: the long option names with `_` for `-`).
    #[arg(long, env = "SHARDSFU_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Number of shards (one thread per core); 0 = one per core [default: 0]
    #[arg(long, env = "SHARDSFU_SHARDS", value_name = "N")]
    pub shards: Option<usize>,

    /// Pin each shard to a core [default: true]
    #[arg(long, env = "SHARDSFU_PIN", value_name = "BOOL")]
    pub pin: Option<bool>,

    /// Address of the control API, /metrics and /healthz. Off loopback a --token is required
    /// [default: 127.0.0.1:7300]
    #[arg(long, env = "SHARDSFU_API_LISTEN", value_name = "ADDR:PORT")]
    pub api_listen: Option<SocketAddr>,

    /// Bearer token API clients must present (`Authorization: Bearer <token>` or `?token=`)
    /// [default: none]
    #[arg(long, env = "SHARDSFU_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// IP media sockets bind to when a request gives no listenInfo [default: the host's primary
    /// IPv4 address, else 127.0.0.1]
    #[arg(long, env = "SHARDSFU_MEDIA_IP", value_name = "IP")]
    pub media_ip: Option<IpAddr>,

    /// Address announced to remote peers for media (behind NAT: the public address); also
    /// filled into listenInfos that bind 0.0.0.0 and announce nothing [default: the media IP;
    /// the host's primary IPv4 when the media IP is 0.0.0.0]
    #[arg(long, env = "SHARDSFU_ANNOUNCED_ADDRESS", value_name = "ADDR")]
    pub announced_address: Option<String>,

    /// Lowest media port, when createWorker gives no rtcMinPort [default: 10000]
    #[arg(long, env = "SHARDSFU_RTC_MIN_PORT", value_name = "PORT")]
    pub rtc_min_port: Option<u16>,

    /// Highest media port, when createWorker gives no rtcMaxPort [default: 59999]
    #[arg(long, env = "SHARDSFU_RTC_MAX_PORT", value_name = "PORT")]
    pub rtc_max_port: Option<u16>,

    /// Largest API message in bytes; a bigger one is answered with error -32001 and the
    /// connection is closed [default: 1048576]
    #[arg(long, env = "SHARDSFU_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    pub max_message_bytes: Option<usize>,

    /// Requests per second one connection may sustain (token bucket); 0 = unlimited.
    /// Requests over it are answered with error -32001 [default: 1000]
    #[arg(long, env = "SHARDSFU_RATE_LIMIT", value_name = "PER_S")]
    pub rate_limit: Option<u32>,

    /// Requests one connection may send at once above the sustained rate [default: 500]
    #[arg(long, env = "SHARDSFU_RATE_LIMIT_BURST", value_name = "N")]
    pub rate_limit_burst: Option<u32>,

    /// How long a disconnected client's workers live before they are closed (a client may
    /// take them back meanwhile with worker.adopt): milliseconds, 0 = at once, `keep` = never
    /// [default: 30000]
    #[arg(long, env = "SHARDSFU_ORPHAN_GRACE_MS", value_name = "MS|keep")]
    pub orphan_grace_ms: Option<OrphanGrace>,

    /// API connections open at once; more are answered 503 [default: 256]
    #[arg(long, env = "SHARDSFU_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Log line format [default: text]
    #[arg(long, env = "SHARDSFU_LOG_FORMAT", value_enum, value_name = "FORMAT")]
    pub log_format: Option<LogFormat>,

    /// Log filter, in tracing-subscriber's EnvFilter syntax (e.g. `info`,
    /// `shardsfu=debug,info`) [default: info]
    #[arg(long, env = "SHARDSFU_LOG", value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// The `--config` file: the same settings, every one optional. Unknown keys are an error, so a
/// typo does not silently leave a default in place.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    shards: Option<usize>,
    pin: Option<bool>,
    api_listen: Option<SocketAddr>,
    token: Option<String>,
    media_ip: Option<IpAddr>,
    announced_address: Option<String>,
    rtc_min_port: Option<u16>,
    rtc_max_port: Option<u16>,
    max_message_bytes: Option<usize>,
    rate_limit: Option<u32>,
    rate_limit_burst: Option<u32>,
    orphan_grace_ms: Option<GraceRepr>,
    max_connections: Option<usize>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
}

/// `orphan_grace_ms = 30000` or `orphan_grace_ms = "keep"` in the file.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum GraceRepr {
    Ms(u64),
    Word(String),
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct Settings {
    pub shards: usize,
    pub pin: bool,
    pub api_listen: SocketAddr,
    pub token: Option<String>,
    pub media_ip: IpAddr,
    pub announced_address: Option<String>,
    pub rtc_min_port: u16,
    pub rtc_max_port: u16,
    pub max_message_bytes: usize,
    pub rate_limit_per_s: u32,
    pub rate_limit_burst: u32,
    pub orphan_grace: OrphanGrace,
    pub max_connections: usize,
    pub log_format: LogFormat,
    pub log_level: String,
}

impl Default for Settings {
    /// The embedded defaults, except that media stays on loopback (no detection): what an
    /// in-process server (tests, embedding) wants. `resolve` detects the host address.
    fn default() -> Self {
        Settings {
            shards: 0,
            pin: true,
            api_listen: DEFAULT_API_LISTEN.parse().expect("valid default"),
            token: None,
            media_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            announced_address: None,
            rtc_min_port: 10000,
            rtc_max_port: 59999,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            rate_limit_per_s: DEFAULT_RATE_LIMIT_PER_S,
            rate_limit_burst: DEFAULT_RATE_LIMIT_BURST,
            orphan_grace: OrphanGrace::Ms(DEFAULT_ORPHAN_GRACE_MS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            log_format: LogFormat::Text,
            log_level: "info".into(),
        }
    }
}

impl Settings {
    /// Layer the file (if any) under the command line and environment, fill what is left with
    /// the defaults (detecting the host's address), and check the result.
    pub fn resolve(cli: Cli) -> Result<Settings, String> {
        let file = match &cli.config {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| format!("cannot read config {}: {e}", path.display()))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| format!("config {}: {e}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let grace = match file.orphan_grace_ms {
            None => None,
            Some(GraceRepr::Ms(ms)) => Some(OrphanGrace::Ms(ms)),
            Some(GraceRepr::Word(w)) => Some(w.parse::<OrphanGrace>().map_err(|e| format!("orphan_grace_ms: {e}"))?),
        };
        let d = Settings::default();
        let media_ip = cli.media_ip.or(file.media_ip).unwrap_or_else(detect_primary_ipv4);
        let announced_address = cli.announced_address.or(file.announced_address).or_else(|| {
            // Binding every interface announces nothing useful by itself: announce the host.
            media_ip.is_unspecified().then(|| detect_primary_ipv4().to_string())
        });
        let settings = Settings {
            shards: cli.shards.or(file.shards).unwrap_or(d.shards),
            pin: cli.pin.or(file.pin).unwrap_or(d.pin),
            api_listen: cli.api_listen.or(file.api_listen).unwrap_or(d.api_listen),
            token: cli.token.or(file.token).filter(|t| !t.is_empty()),
            media_ip,
            announced_address,
            rtc_min_port: cli.rtc_min_port.or(file.rtc_min_port).unwrap_or(d.rtc_min_port),
            rtc_max_port: cli.rtc_max_port.or(file.rtc_max_port).unwrap_or(d.rtc_max_port),
            max_message_bytes: cli.max_message_bytes.or(file.max_message_bytes).unwrap_or(d.max_message_bytes),
            rate_limit_per_s: cli.rate_limit.or(file.rate_limit).unwrap_or(d.rate_limit_per_s),
            rate_limit_burst: cli.rate_limit_burst.or(file.rate_limit_burst).unwrap_or(d.rate_limit_burst),
            orphan_grace: cli.orphan_grace_ms.or(grace).unwrap_or(d.orphan_grace),
            max_connections: cli.max_connections.or(file.max_connections).unwrap_or(d.max_connections),
            log_format: cli.log_format.or(file.log_format).unwrap_or(d.log_format),
            log_level: cli.log_level.or(file.log_level).unwrap_or(d.log_level),
        };
        settings.check()?;
        Ok(settings)
    }

    /// What must hold before the server starts.
    pub fn check(&self) -> Result<(), String> {
        if !self.api_listen.ip().is_loopback() && self.token.is_none() {
            return Err(format!(
                "refusing to serve the control API on {} without a token: anyone who can reach it could \
                 control the SFU. Set --token (or SHARDSFU_TOKEN, or `token` in the config file), or listen on \
                 loopback (--api-listen 127.0.0.1:7300).",
                self.api_listen
            ));
        }
        if self.rtc_min_port > self.rtc_max_port {
            return Err(format!("rtc_min_port {} is above rtc_max_port {}", self.rtc_min_port, self.rtc_max_port));
        }
        if self.max_message_bytes < 1024 {
            return Err("max_message_bytes must be at least 1024".into());
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        Ok(())
    }
}

/// The host's primary IPv4 address: the source address the kernel picks for a public
/// destination (a UDP `connect()` sends nothing). 127.0.0.1 when there is no route.
pub fn detect_primary_ipv4() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let sock = UdpSocket::bind("0.0.0.0:0")?;
        sock.connect("8.8.8.8:53")?;
        Ok(sock.local_addr()?.ip())
    };
    match probe() {
        Ok(ip) if !ip.is_unspecified() => ip,
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("shardsfu-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "shards = 3\nrate_limit = 7\norphan_grace_ms = \"keep\"\nmedia_ip = \"127.0.0.1\"\n")
            .unwrap();
        let cli = Cli::parse_from(["shardsfu", "--config", path.to_str().unwrap(), "--shards", "2"]);
        let s = Settings::resolve(cli).unwrap();
        assert_eq!(s.shards, 2);
        assert_eq!(s.rate_limit_per_s, 7);
        assert_eq!(s.orphan_grace, OrphanGrace::Keep);
        assert_eq!(s.api_listen.to_string(), DEFAULT_API_LISTEN);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = std::env::temp_dir().join(format!("shardsfu-config-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        std::fs::write(&path, "shard = 3\n").unwrap();
        let cli = Cli::parse_from(["shardsfu", "--config", path.to_str().unwrap()]);
        assert!(Settings::resolve(cli).unwrap_err().contains("unknown field"));
    }

    #[test]
    fn off_loopback_needs_a_token() {
        let cli = Cli::parse_from(["shardsfu", "--api-listen", "0.0.0.0:7300", "--media-ip", "127.0.0.1"]);
        assert!(Settings::resolve(cli).unwrap_err().contains("without a token"));
        let cli =
            Cli::parse_from(["shardsfu", "--api-listen", "0.0.0.0:7300", "--media-ip", "127.0.0.1", "--token", "s3"]);
        assert_eq!(Settings::resolve(cli).unwrap().token.as_deref(), Some("s3"));
    }

    #[test]
    fn orphan_grace_parses() {
        assert_eq!("0".parse::<OrphanGrace>(), Ok(OrphanGrace::Ms(0)));
        assert_eq!("keep".parse::<OrphanGrace>(), Ok(OrphanGrace::Keep));
        assert!("soon".parse::<OrphanGrace>().is_err());
    }
}
