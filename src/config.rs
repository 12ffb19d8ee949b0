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

/// The port, outside the long-exhausted 9100–9999 exporter range.
pub const DEFAULT_LISTEN_ADDRESS: &str = "0.0.0.0:10034";

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

    #[command(subcommand)]
    pub command: Command,
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

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on for /metrics, the landing page and the webhook.
    #[arg(long = "web.listen-address", env = "CODEDEPLOY_EXPORTER_WEB_LISTEN_ADDRESS", default_value = DEFAULT_LISTEN_ADDRESS)]
    pub listen_address: String,

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

    /// Files to replay, in any order: the output depends only on their content.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

impl ReplayArgs {
    pub fn location(&self) -> Location {
        Location { account: self.account.clone(), region: self.region.clone() }
    }
}

fn parse_rfc3339(raw: &str) -> Result<Millis, String> {
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-11-26T12:00:00Z: {e}"))
}

/// A configuration error, worded for the person who typed the flag.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--web.listen-address {0:?} is not HOST:PORT (e.g. 0.0.0.0:10034 or 127.0.0.1:0)")]
    ListenAddress(String),
    #[error("--web.telemetry-path {0:?} must start with '/' and not be '/', '/events' or under '/-/'")]
    TelemetryPath(String),
    #[error("cannot read --webhook.secret-file {path}: {source}")]
    SecretFile { path: PathBuf, source: std::io::Error },
    #[error("the webhook secret is empty")]
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
}

/// `serve`'s options after validation.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen_address: SocketAddr,
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
}

/// Where `serve` keeps its state when `--storage.path` is not given.
pub const DEFAULT_STORAGE_PATH: &str = "./data";

impl ServeArgs {
    /// Validates the flags; `default_storage` is where state goes when
    /// `--storage.path` is absent (`None`: in memory).
    pub fn validate(&self, default_storage: Option<&Path>) -> Result<ServeConfig, ConfigError> {
        let listen_address = self
            .listen_address
            .parse()
            .map_err(|_| ConfigError::ListenAddress(self.listen_address.clone()))?;
        let path = &self.telemetry_path;
        if !path.starts_with('/') || path == "/" || path == "/events" || path.starts_with("/-/") {
            return Err(ConfigError::TelemetryPath(path.clone()));
        }
        let secret_text = match (&self.webhook_secret_file, &self.webhook_secret) {
            (Some(file), _) => Some(
                std::fs::read_to_string(file)
                    .map_err(|source| ConfigError::SecretFile { path: file.clone(), source })?,
            ),
            (None, Some(secret)) => Some(secret.0.clone()),
            (None, None) => None,
        };
        let webhook_secret = match secret_text {
            Some(text) => Some(Secret::new(&text).ok_or(ConfigError::EmptySecret)?),
            None => None,
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
            listen_address,
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
        assert_eq!(config.listen_address.port(), 10034);
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
        let error = serve_args(&["--ledger.settle-time", "2h"]).unwrap_err();
        assert!(error.to_string().contains("at most 1h"), "{error}");
        let error = serve_args(&["--storage.retention", "7d"]).unwrap_err();
        assert!(error.to_string().contains("at least 31d"), "{error}");
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
