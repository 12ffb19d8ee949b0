//! The command line: every flag in Prometheus-exporter style, each also from
//! an environment variable, validated once into the typed options the rest of
//! the program takes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::Millis;
use crate::http::{HttpOptions, SecurityArgs, SecurityError};
use crate::ingest::Location;
use crate::sources::webhook::{Secret, SecretArg};

/// `serve`'s address: every interface, on a port outside the long-exhausted
/// 9100–9999 exporter range.
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:10034";
/// `demo`'s address: the loopback interface only, since `demo` is for trying
/// the exporter out and its simulated figures have no business on a network.
pub const DEMO_LISTEN_ADDRESS: &str = "127.0.0.1:10034";
/// `demo`'s `--labels.from-tags`: the tags its simulated groups carry.
pub const DEMO_FROM_TAGS: [&str; 2] = ["Environment=environment", "Team=team"];

#[derive(Debug, Parser)]
#[command(
    name = "codedeploy-exporter",
    version = concat!(env!("CARGO_PKG_VERSION"), " (revision ", env!("CODEDEPLOY_EXPORTER_REVISION"), ")"),
    about = "Prometheus exporter for AWS CodeDeploy: deployment SLIs and DORA metrics from deployment lifecycle events"
)]
pub struct Cli {
    /// Log filter (error, warn, info, debug, trace, or a tracing filter directive).
    #[arg(long = "log.level", env = "CODEDEPLOY_EXPORTER_LOG_LEVEL", default_value = "info", global = true)]
    pub log_level: String,

    /// Log line format on stderr: logfmt (key=value) or json (one object per line).
    #[arg(long = "log.format", env = "CODEDEPLOY_EXPORTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Logfmt, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// `--log.format`, with exporter-toolkit's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the exporter: serve /metrics and the webhook, fed by the configured sources.
    Serve(ServeArgs),
    /// Run `serve` fed by a built-in simulated fleet, so you can see live metrics with no AWS account.
    Demo(DemoArgs),
    /// Fold the messages of FILEs (JSON Lines or whole JSON) and print the exposition to stdout.
    Replay(ReplayArgs),
    /// Create or update the AWS side (SQS queue, dead-letter queue, EventBridge rule and target, queue policy) and print the IAM policy the exporter needs.
    Setup(crate::setup::SetupArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Addresses to listen on for /metrics, the landing page and the webhook
    /// (repeatable, or comma-separated): HOST:PORT, [IPv6]:PORT, or :PORT for
    /// every IPv4 interface. [default: 0.0.0.0:10034 for serve, 127.0.0.1:10034 for demo]
    #[arg(long = "web.listen-address", env = "CODEDEPLOY_EXPORTER_WEB_LISTEN_ADDRESS", value_delimiter = ',')]
    pub listen_address: Vec<String>,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", env = "CODEDEPLOY_EXPORTER_WEB_TELEMETRY_PATH", default_value = "/metrics")]
    pub telemetry_path: String,

    /// File holding the webhook's shared secret. Without a secret (file or
    /// CODEDEPLOY_EXPORTER_WEBHOOK_SECRET) POST /events is not served.
    #[arg(long = "webhook.secret-file", env = "CODEDEPLOY_EXPORTER_WEBHOOK_SECRET_FILE")]
    pub webhook_secret_file: Option<PathBuf>,

    /// The webhook's shared secret itself. Prefer the environment variable or
    /// the file: a value given on the command line is visible to `ps`.
    #[arg(long = "webhook.secret", env = "CODEDEPLOY_EXPORTER_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<SecretArg>,

    /// Largest webhook body accepted, in bytes (EventBridge and SNS messages are at most 256 KiB).
    #[arg(long = "webhook.max-body-bytes", env = "CODEDEPLOY_EXPORTER_WEBHOOK_MAX_BODY_BYTES", default_value_t = 262_144)]
    pub webhook_max_body_bytes: usize,

    /// How long a finished deployment waits for late or reordered events
    /// before it is counted (unless the API already gave its final details).
    #[arg(long = "ledger.settle-time", env = "CODEDEPLOY_EXPORTER_LEDGER_SETTLE_TIME", default_value = "2m", value_parser = humantime::parse_duration)]
    pub settle_time: Duration,

    /// Most deployment groups kept. A message that would add one more is
    /// refused (reason limit_groups) and counted in
    /// codedeploy_exporter_limited_total. The default is the largest fleet
    /// measured within the memory and scrape-time budgets (docs/performance.md).
    #[arg(long = "limits.max-groups", env = "CODEDEPLOY_EXPORTER_LIMITS_MAX_GROUPS", default_value_t = 10_000)]
    pub max_groups: usize,

    /// Most deployments tracked before they are counted (in progress, or
    /// waiting their settle time). A message of one more is refused (reason
    /// limit_tracked); deployments already tracked keep being updated, and
    /// deployments of groups already counted may use up to twice as many,
    /// so that a flood of new names cannot keep them out.
    #[arg(long = "limits.max-tracked", env = "CODEDEPLOY_EXPORTER_LIMITS_MAX_TRACKED", default_value_t = 20_000)]
    pub max_tracked: usize,

    /// Files of messages to load before serving (repeatable), e.g. an export of past events.
    #[arg(long = "replay", env = "CODEDEPLOY_EXPORTER_REPLAY", value_delimiter = ',')]
    pub replay: Vec<PathBuf>,

    /// Directory of the durable store (created if missing). `serve` defaults
    /// to ./data; `demo` keeps its simulated fleet in memory unless this is given.
    #[arg(long = "storage.path", env = "CODEDEPLOY_EXPORTER_STORAGE_PATH")]
    pub storage_path: Option<PathBuf>,

    /// How long settled deployments stay in the ledger (they feed the 30d
    /// windows and deduplication); counters keep their contribution forever.
    #[arg(long = "storage.retention", env = "CODEDEPLOY_EXPORTER_STORAGE_RETENTION", default_value = "35d", value_parser = humantime::parse_duration)]
    pub retention: Duration,

    /// How long a graceful shutdown may take before open connections are dropped.
    #[arg(long = "shutdown.timeout", env = "CODEDEPLOY_EXPORTER_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// TLS, basic auth, webhook rate limit, SNS subscriptions (see `http::security`).
    #[command(flatten)]
    pub security: SecurityArgs,

    /// AWS sources: SQS queues, the CodeDeploy poller (see `aws`).
    #[command(flatten)]
    pub aws: crate::sources::aws::AwsArgs,

    /// DORA lead time: description keys, S3 metadata, git repositories (see `sources::commits`).
    #[command(flatten)]
    pub lead_time: crate::sources::commits::LeadTimeArgs,

    /// Tags as labels of the group info series, and production (see `group_info`).
    #[command(flatten)]
    pub group_labels: crate::group_info::GroupLabelArgs,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub serve: ServeArgs,

    /// Seed of the simulated fleet; the same seed gives the same fleet and history.
    #[arg(long = "demo.seed", env = "CODEDEPLOY_EXPORTER_DEMO_SEED", default_value_t = 1)]
    pub seed: u64,

    /// Days of finished history the simulator loads at start.
    #[arg(long = "demo.history-days", env = "CODEDEPLOY_EXPORTER_DEMO_HISTORY_DAYS", default_value_t = 30)]
    pub history_days: u32,
}

impl DemoArgs {
    /// `serve`'s flags with `demo`'s own defaults filled in.
    pub fn serve_args(&self) -> ServeArgs {
        let mut serve = self.serve.clone();
        if serve.listen_address.is_empty() {
            serve.listen_address.push(DEMO_LISTEN_ADDRESS.to_owned());
        }
        let labels = &mut serve.group_labels;
        if labels.from_tags.is_empty() && labels.production_groups.is_none() {
            labels.from_tags = DEMO_FROM_TAGS.iter().map(|t| (*t).to_owned()).collect();
        }
        serve
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Anchor of the windowed metrics (RFC 3339); defaults to the latest event time seen.
    #[arg(long, value_parser = parse_rfc3339)]
    pub now: Option<Millis>,

    /// Account id for messages that carry none (API output).
    #[arg(long)]
    pub account: Option<String>,

    /// Region for messages that carry none (API output).
    #[arg(long)]
    pub region: Option<String>,

    /// Where deployment descriptions keep the commit and its time.
    #[command(flatten)]
    pub lead_time: crate::sources::commits::DescriptionArgs,

    /// Tags as labels of the group info series (all "" in a replay), and production.
    #[command(flatten)]
    pub group_labels: crate::group_info::GroupLabelArgs,

    /// Files to replay, in any order: the output depends only on their content.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

impl ReplayArgs {
    pub fn location(&self) -> Location {
        Location { account: self.account.clone(), region: self.region.clone() }
    }
}

/// HOST:PORT with an IP address for HOST, as the standard library reads it,
/// plus the bare `:PORT` every Go exporter accepts (here: every IPv4
/// interface, like `serve`'s default; `[::]:PORT` adds IPv6).
fn parse_listen_address(raw: &str) -> Result<SocketAddr, ConfigError> {
    let full = match raw.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => raw.to_owned(),
    };
    full.parse().map_err(|_| {
        // A number too large for a port is the likely slip; say so rather than "not HOST:PORT".
        let port = full.rsplit_once(':').map_or("", |(_, port)| port);
        let too_large = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_err();
        if too_large {
            ConfigError::ListenPort(raw.to_owned())
        } else {
            ConfigError::ListenAddress(raw.to_owned())
        }
    })
}

fn parse_rfc3339(raw: &str) -> Result<Millis, String> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-26T12:00:00Z: {e}"))
}

/// A configuration error, worded for the person who typed the flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--web.listen-address {0:?} is not HOST:PORT (e.g. 0.0.0.0:10034, [::]:10034, :10034 or 127.0.0.1:0)")]
    ListenAddress(String),
    #[error("--web.listen-address {0:?}: the port must be between 0 and 65535")]
    ListenPort(String),
    #[error("--web.telemetry-path {0:?} must start with '/' and not be '/', '/events' or under '/-/'")]
    TelemetryPath(String),
    // The OS error is part of the message and deliberately not a `source`:
    // `{:#}` would print it a second time.
    #[error("cannot read --webhook.secret-file {path}: {error}")]
    SecretFile { path: PathBuf, error: std::io::Error },
    #[error("the webhook secret in --webhook.secret-file {0} is empty")]
    EmptySecretFile(PathBuf),
    #[error("the webhook secret (--webhook.secret or CODEDEPLOY_EXPORTER_WEBHOOK_SECRET) is empty")]
    EmptySecret,
    #[error("--webhook.max-body-bytes must be at least 1024, got {0}")]
    BodyLimit(usize),
    #[error("--ledger.settle-time must be at most 1h, got {0:?}")]
    SettleTime(Duration),
    #[error("--replay file {0} does not exist")]
    ReplayFile(PathBuf),
    #[error("--storage.retention must be at least 31d, to cover the 30d windows; got {0:?}")]
    Retention(Duration),
    #[error("--{0} must be at least 1")]
    Limit(&'static str),
    #[error(transparent)]
    Security(#[from] SecurityError),
    #[error(transparent)]
    Aws(#[from] crate::sources::aws::AwsConfigError),
    #[error("{0}")]
    LeadTime(String),
    #[error(transparent)]
    GroupLabels(#[from] crate::group_info::GroupLabelError),
}

/// `serve`'s options after validation.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Every address to bind, at least one.
    pub listen_addresses: Vec<SocketAddr>,
    pub http: HttpOptions,
    pub settle_time_ms: Millis,
    pub replay: Vec<PathBuf>,
    /// `None`: nothing survives a restart.
    pub storage_path: Option<PathBuf>,
    pub retention_ms: Millis,
    pub shutdown_timeout: Duration,
    /// `None`: no AWS source was asked for.
    pub aws: Option<crate::sources::aws::AwsConfig>,
    pub lead_time: crate::sources::commits::LeadTimeOptions,
    /// Bounds on groups, tracked deployments and event times.
    pub limits: crate::ledger::limits::Limits,
    /// Tags as labels of the group info series, and production.
    pub group_labels: crate::group_info::GroupLabels,
}

/// Where `serve` keeps its state when `--storage.path` is not given.
pub const DEFAULT_STORAGE_PATH: &str = "./data";

impl ServeArgs {
    /// Validates the flags; `default_storage` is where state goes when
    /// `--storage.path` is absent (`None`: in memory).
    pub fn validate(&self, default_storage: Option<&Path>) -> Result<ServeConfig, ConfigError> {
        let listen_addresses = match self.listen_address.as_slice() {
            [] => vec![parse_listen_address(DEFAULT_LISTEN_ADDRESS)?],
            given => given.iter().map(|a| parse_listen_address(a)).collect::<Result<_, _>>()?,
        };
        let path = &self.telemetry_path;
        if !path.starts_with('/') || path == "/" || path == "/events" || path.starts_with("/-/") {
            return Err(ConfigError::TelemetryPath(path.clone()));
        }
        let webhook_secret = match (&self.webhook_secret_file, &self.webhook_secret) {
            (Some(file), _) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|error| ConfigError::SecretFile { path: file.clone(), error })?;
                Some(Secret::new(&text).ok_or_else(|| ConfigError::EmptySecretFile(file.clone()))?)
            }
            (None, Some(secret)) => Some(Secret::new(&secret.0).ok_or(ConfigError::EmptySecret)?),
            (None, None) => None,
        };
        if self.webhook_max_body_bytes < 1024 {
            return Err(ConfigError::BodyLimit(self.webhook_max_body_bytes));
        }
        if self.settle_time > Duration::from_secs(3600) {
            return Err(ConfigError::SettleTime(self.settle_time));
        }
        if let Some(missing) = self.replay.iter().find(|p| !p.exists()) {
            return Err(ConfigError::ReplayFile(missing.clone()));
        }
        if self.retention < Duration::from_secs(31 * 24 * 3600) {
            return Err(ConfigError::Retention(self.retention));
        }
        if self.max_groups == 0 {
            return Err(ConfigError::Limit("limits.max-groups"));
        }
        if self.max_tracked == 0 {
            return Err(ConfigError::Limit("limits.max-tracked"));
        }
        Ok(ServeConfig {
            listen_addresses,
            http: HttpOptions {
                telemetry_path: path.clone(),
                webhook_secret,
                webhook_max_body_bytes: self.webhook_max_body_bytes,
                security: self.security.validate()?,
            },
            settle_time_ms: self.settle_time.as_millis() as Millis,
            replay: self.replay.clone(),
            storage_path: self.storage_path.clone().or_else(|| default_storage.map(Path::to_owned)),
            retention_ms: self.retention.as_millis() as Millis,
            shutdown_timeout: self.shutdown_timeout,
            aws: self.aws.validate(self.retention)?,
            lead_time: self.lead_time.validate().map_err(ConfigError::LeadTime)?,
            limits: crate::ledger::limits::Limits::serving(self.max_groups, self.max_tracked),
            group_labels: self.group_labels.validate()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve_args(extra: &[&str]) -> Result<ServeConfig, ConfigError> {
        let mut argv = vec!["codedeploy-exporter", "serve"];
        argv.extend_from_slice(extra);
        let cli = Cli::try_parse_from(argv).expect("flags parse");
        match cli.command {
            Command::Serve(args) => args.validate(Some(Path::new(DEFAULT_STORAGE_PATH))),
            _ => unreachable!("parsed as serve"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        let config = serve_args(&[]).expect("defaults validate");
        assert_eq!(config.listen_addresses, ["0.0.0.0:10034".parse::<SocketAddr>().expect("an address")]);
        assert_eq!(config.settle_time_ms, 120_000);
        assert!(config.http.webhook_secret.is_none());
        assert_eq!(config.storage_path.as_deref(), Some(Path::new("./data")));
        assert_eq!(config.retention_ms, 35 * 24 * 3600 * 1000);
    }

    #[test]
    fn bad_values_are_explained() {
        let error = serve_args(&["--web.listen-address", "localhost"]).unwrap_err();
        assert!(error.to_string().contains("is not HOST:PORT"), "{error}");
        let error = serve_args(&["--web.telemetry-path", "metrics"]).unwrap_err();
        assert!(error.to_string().contains("must start with '/'"), "{error}");
        let error = serve_args(&["--webhook.secret-file", "/nonexistent/secret"]).unwrap_err();
        assert!(error.to_string().contains("cannot read --webhook.secret-file"), "{error}");
        let error = serve_args(&["--webhook.secret", "  "]).unwrap_err();
        assert!(matches!(error, ConfigError::EmptySecret));
        let error = serve_args(&["--web.listen-address", "127.0.0.1:70000"]).unwrap_err();
        assert!(error.to_string().contains("the port must be between 0 and 65535"), "{error}");
        let error = serve_args(&["--web.listen-address", ":65536"]).unwrap_err();
        assert!(matches!(error, ConfigError::ListenPort(_)), "{error}");
        let error = serve_args(&["--ledger.settle-time", "2h"]).unwrap_err();
        assert!(error.to_string().contains("at most 1h"), "{error}");
        let error = serve_args(&["--storage.retention", "7d"]).unwrap_err();
        assert!(error.to_string().contains("at least 31d"), "{error}");
    }

    #[test]
    fn listen_addresses_take_every_form_exporters_accept() {
        let config = serve_args(&["--web.listen-address", "[::]:10034", "--web.listen-address", ":10035,127.0.0.1:0"])
            .expect("valid addresses");
        let expected: Vec<SocketAddr> =
            ["[::]:10034", "0.0.0.0:10035", "127.0.0.1:0"].iter().map(|a| a.parse().expect("an address")).collect();
        assert_eq!(config.listen_addresses, expected);
    }

    #[test]
    fn demo_listens_on_loopback_unless_told_otherwise() {
        let demo = |extra: &[&str]| {
            let mut argv = vec!["codedeploy-exporter", "demo"];
            argv.extend_from_slice(extra);
            let Command::Demo(args) = Cli::try_parse_from(argv).expect("flags parse").command else {
                unreachable!("parsed as demo")
            };
            args.serve_args().validate(None).expect("valid").listen_addresses
        };
        assert_eq!(demo(&[]), ["127.0.0.1:10034".parse::<SocketAddr>().expect("an address")]);
        assert_eq!(demo(&["--web.listen-address", ":9"]), ["0.0.0.0:9".parse::<SocketAddr>().expect("an address")]);
    }

    #[test]
    fn replay_parses_its_anchor() {
        let cli = Cli::try_parse_from(["codedeploy-exporter", "replay", "--now", "2026-01-01T00:00:00Z", "f.jsonl"])
            .expect("flags parse");
        let Command::Replay(args) = cli.command else { unreachable!("parsed as replay") };
        assert_eq!(args.now, Some(1_767_225_600_000));
        assert!(Cli::try_parse_from(["codedeploy-exporter", "replay", "--now", "yesterday", "f"]).is_err());
    }
}
