//! The AWS side of `serve`: flags, SDK clients per account and region, the
//! client-side rate limit, and the counting of every request attempt.
//!
//! One [`Aws`] holds the base SDK configuration (standard credential chain,
//! retries with backoff, timeouts, `--aws.endpoint-url`). [`Aws::scopes`]
//! turns `--aws.region` × (own account + each `--aws.role-arn`) into
//! [`Scope`]s, one CodeDeploy client each. Every attempt of every call (retries
//! included) goes through [`RequestCounter`], which is what
//! `codedeploy_exporter_aws_requests_total{service,operation,outcome}` shows.
//!
//! The sources built on it live here too: [`sqs`] (the queues),
//! [`poller`] (the CodeDeploy API) and [`group_info`] (the deployment groups
//! and their tags, in the poller's scopes), started by [`run_sources`].

pub mod group_info;
pub mod poller;
pub mod sqs;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_sdk_codedeploy::config::ConfigBag;
use clap::Args;
use tokio::time::Instant;

use crate::domain::Millis;
use crate::ingest::SharedExporter;

/// How far back each ListDeployments call reaches before the previous call's
/// time: covers clock skew between us and CodeDeploy and deployments that
/// become visible to the API a little after their createTime.
pub const WATERMARK_OVERLAP: Duration = Duration::from_secs(10 * 60);

/// The `--aws.*`, `--sqs.*` and `--poll.*` flags of `serve`.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// Region to poll CodeDeploy in (repeatable, or comma-separated). Default:
    /// the regions of the --sqs.queue-url queues, else the SDK's default region
    /// (AWS_REGION, the profile).
    #[arg(long = "aws.region", env = "CODEDEPLOY_EXPORTER_AWS_REGION", value_delimiter = ',')]
    pub regions: Vec<String>,

    /// Role to assume to poll another account (repeatable, or comma-separated).
    /// The account of the exporter's own credentials is always polled too.
    #[arg(long = "aws.role-arn", env = "CODEDEPLOY_EXPORTER_AWS_ROLE_ARN", value_delimiter = ',')]
    pub role_arns: Vec<String>,

    /// Endpoint of every AWS call instead of AWS's own (a fake AWS in tests).
    /// The SDK's AWS_ENDPOINT_URL is honoured as well.
    #[arg(long = "aws.endpoint-url", env = "CODEDEPLOY_EXPORTER_AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// Most CodeDeploy API calls per second, per account and region (client-side rate limit).
    #[arg(long = "aws.max-rps", env = "CODEDEPLOY_EXPORTER_AWS_MAX_RPS", default_value_t = 10.0)]
    pub max_rps: f64,

    /// Attempts per AWS call, the first included; throttling, 5xx and network
    /// errors are retried with exponential backoff and jitter.
    #[arg(long = "aws.max-attempts", env = "CODEDEPLOY_EXPORTER_AWS_MAX_ATTEMPTS", default_value_t = 5)]
    pub max_attempts: u32,

    /// SQS queue fed by the EventBridge rule (repeatable, or comma-separated).
    #[arg(long = "sqs.queue-url", env = "CODEDEPLOY_EXPORTER_SQS_QUEUE_URL", value_delimiter = ',')]
    pub queue_urls: Vec<String>,

    /// Batches (of up to 10 messages) processed at once, per queue.
    #[arg(long = "sqs.concurrency", env = "CODEDEPLOY_EXPORTER_SQS_CONCURRENCY", default_value_t = 4)]
    pub sqs_concurrency: usize,

    /// How often CodeDeploy is polled (reconciliation and the refresh of
    /// unfinished deployments); 0 turns the poller, and with it enrichment, off.
    /// [default: 1m]
    #[arg(long = "poll.interval", env = "CODEDEPLOY_EXPORTER_POLL_INTERVAL", value_parser = humantime::parse_duration)]
    pub poll_interval: Option<Duration>,

    /// History loaded from the API at start (backfill), by createTime.
    #[arg(long = "poll.lookback", env = "CODEDEPLOY_EXPORTER_POLL_LOOKBACK", default_value = "30d", value_parser = humantime::parse_duration)]
    pub lookback: Duration,

    /// Only poll these applications (repeatable, or comma-separated); events
    /// of other applications are still ingested and enriched. Default: all.
    #[arg(long = "poll.applications", env = "CODEDEPLOY_EXPORTER_POLL_APPLICATIONS", value_delimiter = ',')]
    pub applications: Vec<String>,

    /// How often each deployment group of the polled accounts and regions is
    /// read again (GetDeploymentGroup, ListTagsForResource) for
    /// codedeploy_deployment_group_info; a group seen for the first time is
    /// read within seconds. 0 reads none.
    #[arg(long = "tags.refresh-interval", env = "CODEDEPLOY_EXPORTER_TAGS_REFRESH_INTERVAL", default_value = "1h", value_parser = humantime::parse_duration)]
    pub tags_refresh_interval: Duration,
}

/// Why the AWS flags are unusable.
#[derive(Debug, thiserror::Error)]
pub enum AwsConfigError {
    #[error("--aws.role-arn {0:?} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)")]
    RoleArn(String),
    #[error("--sqs.queue-url {0:?} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)")]
    QueueUrl(String),
    #[error("--aws.max-rps must be a positive number, got {0}")]
    MaxRps(f64),
    #[error("--aws.max-attempts must be between 1 and 20, got {0}")]
    MaxAttempts(u32),
    #[error("--sqs.concurrency must be between 1 and 100, got {0}")]
    Concurrency(usize),
    #[error("--poll.interval must be 0 (off) or between 1s and 1h, got {0:?}")]
    PollInterval(Duration),
    #[error("--poll.lookback ({lookback:?}) must be shorter than --storage.retention ({retention:?}) by a day, or history would be counted twice")]
    Lookback { lookback: Duration, retention: Duration },
    #[error("--aws.region {0:?} is not a region name such as us-east-1")]
    Region(String),
    #[error("--tags.refresh-interval must be 0 (off) or between 1m and 7d, got {0:?}")]
    TagsRefresh(Duration),
}

/// One queue to consume: its URL and what the URL tells of its home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    pub url: String,
    /// The account id in the URL's path.
    pub account: String,
    /// The region in the URL's host, when it is AWS's own host.
    pub region: Option<String>,
}

/// The validated AWS configuration; `None` in `ServeConfig` when no AWS flag was given.
#[derive(Debug, Clone)]
pub struct AwsConfig {
    pub regions: Vec<String>,
    pub role_arns: Vec<RoleConfig>,
    pub endpoint_url: Option<String>,
    pub max_rps: f64,
    pub max_attempts: u32,
    pub queues: Vec<QueueConfig>,
    pub sqs_concurrency: usize,
    /// `None`: the poller is off.
    pub poll_interval: Option<Duration>,
    pub lookback: Duration,
    pub applications: BTreeSet<String>,
    /// `None`: deployment groups are not read.
    pub tags_refresh: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleConfig {
    pub arn: String,
    pub account: String,
}

pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(60);

impl AwsConfig {
    /// Whether anything is consumed or polled. `--poll.interval 0` without a
    /// queue starts nothing: the AWS flags then only give the lead-time
    /// resolver its endpoint.
    pub fn has_sources(&self) -> bool {
        self.poll_interval.is_some() || !self.queues.is_empty()
    }
}

impl AwsArgs {
    /// Whether any AWS source was asked for.
    pub fn enabled(&self) -> bool {
        !self.queue_urls.is_empty()
            || !self.regions.is_empty()
            || !self.role_arns.is_empty()
            || self.poll_interval.is_some()
    }

    pub fn validate(&self, retention: Duration) -> Result<Option<AwsConfig>, AwsConfigError> {
        // Checked even without AWS sources: a typo is said, not ignored.
        let tags_refresh = match self.tags_refresh_interval {
            d if d.is_zero() => None,
            d if d >= Duration::from_secs(60) && d <= Duration::from_secs(7 * 86_400) => Some(d),
            d => return Err(AwsConfigError::TagsRefresh(d)),
        };
        if !self.enabled() {
            return Ok(None);
        }
        let role_arns = self
            .role_arns
            .iter()
            .map(|arn| {
                role_account(arn)
                    .map(|account| RoleConfig { arn: arn.clone(), account })
                    .ok_or_else(|| AwsConfigError::RoleArn(arn.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let queues = self
            .queue_urls
            .iter()
            .map(|url| parse_queue_url(url).ok_or_else(|| AwsConfigError::QueueUrl(url.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(bad) = self.regions.iter().find(|r| !is_region_name(r)) {
            return Err(AwsConfigError::Region(bad.clone()));
        }
        if !(self.max_rps.is_finite() && self.max_rps > 0.0) {
            return Err(AwsConfigError::MaxRps(self.max_rps));
        }
        if !(1..=20).contains(&self.max_attempts) {
            return Err(AwsConfigError::MaxAttempts(self.max_attempts));
        }
        if !(1..=100).contains(&self.sqs_concurrency) {
            return Err(AwsConfigError::Concurrency(self.sqs_concurrency));
        }
        let poll_interval = match self.poll_interval {
            None => Some(DEFAULT_POLL_INTERVAL),
            Some(d) if d.is_zero() => None,
            Some(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(3600) => Some(d),
            Some(d) => return Err(AwsConfigError::PollInterval(d)),
        };
        if self.lookback + Duration::from_secs(24 * 3600) > retention {
            return Err(AwsConfigError::Lookback { lookback: self.lookback, retention });
        }
        let mut regions: Vec<String> = Vec::new();
        for region in &self.regions {
            if !regions.contains(region) {
                regions.push(region.clone());
            }
        }
        Ok(Some(AwsConfig {
            regions,
            role_arns,
            endpoint_url: self.endpoint_url.clone().filter(|u| !u.trim().is_empty()),
            max_rps: self.max_rps,
            max_attempts: self.max_attempts,
            queues,
            sqs_concurrency: self.sqs_concurrency,
            poll_interval,
            lookback: self.lookback,
            applications: self.applications.iter().filter(|a| !a.is_empty()).cloned().collect(),
            tags_refresh,
        }))
    }
}

fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region.contains('-')
        && region.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A read of the API that failed, and when it may be tried again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    failures: u32,
    /// Not tried again before this.
    pub due: Millis,
}

/// Counts one more failure of `key` at `now`: it is due again after `first`,
/// doubled with each earlier failure, and never later than `max` (or `first`,
/// when that is longer). The poller's fetches and the group reader's reads
/// back off alike.
pub fn retry_later<K: Ord>(retries: &mut BTreeMap<K, Retry>, key: K, now: Millis, first: Duration, max: Duration) {
    let retry = retries.entry(key).or_insert(Retry { failures: 0, due: now });
    retry.failures += 1;
    let delay = first.saturating_mul(1 << (retry.failures - 1).min(16)).min(max.max(first));
    retry.due = now + delay.as_millis() as Millis;
}

/// The AWS partition a region belongs to (the second field of its ARNs).
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else {
        "aws"
    }
}

/// The account of `arn:aws:iam::ACCOUNT:role/NAME` (any partition).
pub fn role_account(arn: &str) -> Option<String> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, _partition, service, _region, account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let ok = arn_ == "arn"
        && service == "iam"
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && resource.starts_with("role/")
        && resource.len() > "role/".len();
    ok.then(|| account.to_owned())
}

/// `https://sqs.us-east-1.amazonaws.com/123456789012/name` (also the legacy
/// `https://us-east-1.queue.amazonaws.com/…`, and any other host, such as a
/// fake AWS's, with the account and name in the path).
pub fn parse_queue_url(url: &str) -> Option<QueueConfig> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = rest.split_once('/')?;
    let mut segments = path.trim_end_matches('/').split('/');
    let (account, name) = (segments.next()?, segments.next()?);
    if segments.next().is_some()
        || name.is_empty()
        || account.len() != 12
        || !account.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let host = host.split(':').next().unwrap_or(host);
    let labels: Vec<&str> = host.split('.').collect();
    let region = match labels.as_slice() {
        ["sqs", region, ..] if is_region_name(region) => Some((*region).to_owned()),
        [region, "queue", ..] if is_region_name(region) => Some((*region).to_owned()),
        _ => None,
    };
    Some(QueueConfig { url: url.to_owned(), account: account.to_owned(), region })
}

/// Where request attempts are counted.
pub trait RequestSink: Send + Sync + std::fmt::Debug {
    fn count(&self, service: &str, operation: &str, outcome: &'static str);
}

/// Counts into the exporter's own metrics (persisted with them).
#[derive(Debug, Clone)]
pub struct ExporterSink(pub SharedExporter);

impl RequestSink for ExporterSink {
    fn count(&self, service: &str, operation: &str, outcome: &'static str) {
        let (service, operation) = (service.to_owned(), operation.to_owned());
        self.0.update(move |exporter| exporter.count_aws_request(&service, &operation, outcome));
    }
}

/// Counts nowhere (the `setup` command).
#[derive(Debug, Clone, Default)]
pub struct NoSink;

impl RequestSink for NoSink {
    fn count(&self, _: &str, _: &str, _: &'static str) {}
}

/// Error codes AWS SDKs treat as throttling.
const THROTTLING_CODES: [&str; 14] = [
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// The `outcome` label of one attempt: `success`, `throttled`,
/// `client_error`, `server_error`, or `network_error` (no response at all).
pub fn classify_attempt(status: Option<u16>, error_type: Option<&str>, body: Option<&[u8]>) -> &'static str {
    let Some(status) = status else { return "network_error" };
    if (200..300).contains(&status) {
        return "success";
    }
    let code = error_type.map(str::to_owned).or_else(|| {
        let value: serde_json::Value = serde_json::from_slice(body?).ok()?;
        let code = value.get("__type").or_else(|| value.get("code"))?.as_str()?;
        Some(code.to_owned())
    });
    // `__type` may be namespaced (`ns#Name`) and the header may carry `:detail`.
    let code = code.as_deref().map(|c| c.rsplit('#').next().unwrap_or(c).split(':').next().unwrap_or(c));
    if status == 429 || code.is_some_and(|c| THROTTLING_CODES.contains(&c)) {
        "throttled"
    } else if status >= 500 {
        "server_error"
    } else {
        "client_error"
    }
}

/// An SDK interceptor that counts every attempt by service, operation and outcome.
#[derive(Debug, Clone)]
pub struct RequestCounter {
    sink: Arc<dyn RequestSink>,
}

impl RequestCounter {
    pub fn new(sink: Arc<dyn RequestSink>) -> RequestCounter {
        RequestCounter { sink }
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "codedeploy-exporter-request-counter"
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let (service, operation) = match cfg.load::<Metadata>() {
            Some(metadata) => (metadata.service().to_ascii_lowercase(), metadata.name().to_owned()),
            None => ("unknown".to_owned(), "unknown".to_owned()),
        };
        let outcome = match context.response() {
            Some(response) => classify_attempt(
                Some(response.status().as_u16()),
                response.headers().get("x-amzn-errortype"),
                response.body().bytes(),
            ),
            None => "network_error",
        };
        self.sink.count(&service, &operation, outcome);
        Ok(())
    }
}

/// A client-side rate limit: calls are spaced evenly at most `rps` a second.
#[derive(Debug)]
pub struct RateLimit {
    spacing: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    pub fn new(rps: f64) -> RateLimit {
        RateLimit { spacing: Duration::from_secs_f64(1.0 / rps), next: Mutex::new(None) }
    }

    /// Waits for this call's slot.
    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let at = next.map_or(now, |n| n.max(now));
            *next = Some(at + self.spacing);
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// The SDK configuration shared by every client, and the request counter.
#[derive(Debug, Clone)]
pub struct Aws {
    pub base: SdkConfig,
    pub counter: RequestCounter,
}

/// One account in one region: what the poller works on.
#[derive(Debug, Clone)]
pub struct Scope {
    pub account: String,
    pub region: String,
    pub codedeploy: aws_sdk_codedeploy::Client,
    pub limit: Arc<RateLimit>,
}

impl Aws {
    /// Loads the standard chain (environment, profile, web identity, ECS and
    /// EC2 metadata) with our retry and timeout settings. With `region`, the
    /// chain is not asked for one (no instance-metadata lookup).
    pub async fn load(
        endpoint_url: Option<&str>,
        region: Option<&str>,
        max_attempts: u32,
        sink: Arc<dyn RequestSink>,
    ) -> Aws {
        let retry = RetryConfig::standard()
            .with_max_attempts(max_attempts)
            .with_initial_backoff(Duration::from_millis(500))
            .with_max_backoff(Duration::from_secs(20));
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(5))
            // Long polls wait 20 s; anything beyond 40 s is a stuck connection.
            .operation_attempt_timeout(Duration::from_secs(40))
            .operation_timeout(Duration::from_secs(300))
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::latest()).retry_config(retry).timeout_config(timeouts);
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = region {
            loader = loader.region(Region::new(region.to_owned()));
        }
        Aws { base: loader.load().await, counter: RequestCounter::new(sink) }
    }

    /// The default region of the chain (AWS_REGION, the profile, IMDS).
    pub fn default_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    /// The base configuration in `region`, with `role`'s credentials when given.
    pub async fn config_for(&self, region: &str, role: Option<&str>) -> SdkConfig {
        let regional = self.base.to_builder().region(Region::new(region.to_owned())).build();
        match role {
            None => regional,
            Some(arn) => {
                let provider = aws_config::sts::AssumeRoleProvider::builder(arn)
                    .session_name("codedeploy-exporter")
                    .configure(&regional)
                    .build()
                    .await;
                regional
                    .to_builder()
                    .credentials_provider(aws_sdk_codedeploy::config::SharedCredentialsProvider::new(provider))
                    .build()
            }
        }
    }

    pub fn codedeploy(&self, config: &SdkConfig) -> aws_sdk_codedeploy::Client {
        let conf = aws_sdk_codedeploy::config::Builder::from(config).interceptor(self.counter.clone()).build();
        aws_sdk_codedeploy::Client::from_conf(conf)
    }

    pub fn sqs(&self, config: &SdkConfig) -> aws_sdk_sqs::Client {
        let conf = aws_sdk_sqs::config::Builder::from(config).interceptor(self.counter.clone()).build();
        aws_sdk_sqs::Client::from_conf(conf)
    }

    pub fn eventbridge(&self, config: &SdkConfig) -> aws_sdk_eventbridge::Client {
        let conf = aws_sdk_eventbridge::config::Builder::from(config).interceptor(self.counter.clone()).build();
        aws_sdk_eventbridge::Client::from_conf(conf)
    }

    pub fn sts(&self, config: &SdkConfig) -> aws_sdk_sts::Client {
        let conf = aws_sdk_sts::config::Builder::from(config).interceptor(self.counter.clone()).build();
        aws_sdk_sts::Client::from_conf(conf)
    }

    /// The account of the default credentials (STS GetCallerIdentity).
    pub async fn own_account(&self, region: &str) -> Result<String, String> {
        let config = self.config_for(region, None).await;
        let identity = self.sts(&config).get_caller_identity().send().await.map_err(|e| error_text(&e))?;
        identity.account.ok_or_else(|| "GetCallerIdentity returned no account".to_owned())
    }
}

/// An SDK error with its code, message and cause, on one line.
pub fn error_text<E>(error: &aws_smithy_runtime_api::client::result::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>) -> String
where
    E: std::error::Error + aws_sdk_sqs::error::ProvideErrorMetadata + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match error {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => format!("{e} (HTTP {})", service.raw().status().as_u16()),
            }
        }
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_tell_account_and_region() {
        let q = parse_queue_url("https://sqs.eu-west-1.amazonaws.com/123456789012/codedeploy").expect("valid");
        assert_eq!((q.account.as_str(), q.region.as_deref()), ("123456789012", Some("eu-west-1")));
        let q = parse_queue_url("https://us-east-2.queue.amazonaws.com/123456789012/q").expect("valid");
        assert_eq!(q.region.as_deref(), Some("us-east-2"));
        let q = parse_queue_url("http://127.0.0.1:4566/123456789012/q").expect("valid");
        assert_eq!(q.region, None);
        for bad in ["sqs.amazonaws.com/1/q", "https://sqs.x/123/q", "https://h/123456789012/", "https://h/123456789012/a/b"] {
            assert_eq!(parse_queue_url(bad), None, "{bad}");
        }
    }

    #[test]
    fn role_arns_name_their_account() {
        assert_eq!(role_account("arn:aws:iam::111122223333:role/exporter").as_deref(), Some("111122223333"));
        assert_eq!(role_account("arn:aws-cn:iam::111122223333:role/path/x").as_deref(), Some("111122223333"));
        assert_eq!(role_account("arn:aws:iam::111122223333:user/x"), None);
        assert_eq!(role_account("arn:aws:sts::111122223333:role/x"), None);
    }

    #[test]
    fn attempts_are_classified() {
        assert_eq!(classify_attempt(Some(200), None, None), "success");
        assert_eq!(classify_attempt(None, None, None), "network_error");
        assert_eq!(classify_attempt(Some(400), Some("ThrottlingException:http://x"), None), "throttled");
        assert_eq!(
            classify_attempt(Some(400), None, Some(br#"{"__type":"com.amazon#ThrottlingException"}"#)),
            "throttled"
        );
        assert_eq!(classify_attempt(Some(429), None, None), "throttled");
        assert_eq!(classify_attempt(Some(503), None, Some(b"<html>")), "server_error");
        assert_eq!(classify_attempt(Some(400), None, Some(br#"{"__type":"InvalidTimeRangeException"}"#)), "client_error");
    }

    #[test]
    fn flags_validate() {
        let base = AwsArgs {
            regions: vec![],
            role_arns: vec![],
            endpoint_url: None,
            max_rps: 10.0,
            max_attempts: 5,
            queue_urls: vec![],
            sqs_concurrency: 4,
            poll_interval: None,
            lookback: Duration::from_secs(30 * 86400),
            applications: vec![],
            tags_refresh_interval: Duration::from_secs(3600),
        };
        let retention = Duration::from_secs(35 * 86400);
        assert!(base.validate(retention).expect("valid").is_none(), "no AWS flag: no AWS");
        let on = AwsArgs { regions: vec!["us-east-1".into()], ..base.clone() };
        let config = on.validate(retention).expect("valid").expect("enabled");
        assert_eq!(config.poll_interval, Some(DEFAULT_POLL_INTERVAL));
        let off = AwsArgs { poll_interval: Some(Duration::ZERO), ..on.clone() };
        let off = off.validate(retention).expect("valid").expect("enabled");
        assert_eq!(off.poll_interval, None);
        assert!(!off.has_sources(), "no poller and no queue: nothing to start, no AWS configuration to load");
        assert!(config.has_sources());
        let long = AwsArgs { lookback: Duration::from_secs(40 * 86400), ..on.clone() };
        assert!(long.validate(retention).unwrap_err().to_string().contains("--storage.retention"));
        let bad_role = AwsArgs { role_arns: vec!["nope".into()], ..on.clone() };
        assert!(matches!(bad_role.validate(retention), Err(AwsConfigError::RoleArn(_))));
        let bad_region = AwsArgs { regions: vec!["US East".into()], ..base.clone() };
        assert!(matches!(bad_region.validate(retention), Err(AwsConfigError::Region(_))));
        assert_eq!(config.tags_refresh, Some(Duration::from_secs(3600)));
        let no_tags = AwsArgs { tags_refresh_interval: Duration::ZERO, ..on.clone() };
        assert_eq!(no_tags.validate(retention).expect("valid").expect("enabled").tags_refresh, None);
        let too_often = AwsArgs { tags_refresh_interval: Duration::from_secs(5), ..on.clone() };
        assert!(too_often.validate(retention).unwrap_err().to_string().contains("--tags.refresh-interval must be 0 (off) or between 1m and 7d"));
    }
}

/// A source's health over its parts (queues, or account/region scopes): up
/// while every part's last attempt worked.
#[derive(Debug)]
pub struct Health {
    source: crate::metrics::Source,
    exporter: SharedExporter,
    parts: Mutex<std::collections::BTreeMap<String, bool>>,
}

impl Health {
    pub fn new(source: crate::metrics::Source, exporter: SharedExporter) -> Arc<Health> {
        Arc::new(Health { source, exporter, parts: Mutex::new(Default::default()) })
    }

    pub fn report(&self, part: &str, up: bool) {
        let all_up = {
            let mut parts = self.parts.lock().unwrap_or_else(|p| p.into_inner());
            parts.insert(part.to_owned(), up);
            parts.values().all(|up| *up)
        };
        let (source, now) = (self.source, crate::ingest::now_ms());
        self.exporter.update(move |exporter| exporter.set_source_health(source, all_up, now));
    }
}

/// What the AWS sources need from the rest of `serve`.
#[derive(Debug, Clone)]
pub struct SourceContext {
    pub ingest: crate::ingest::IngestHandle,
    pub exporter: SharedExporter,
    /// The webhook is served too: events are expected even without a queue.
    pub webhook: bool,
    /// `--ledger.settle-time`: how long an event may lag the API.
    pub settle_time_ms: crate::domain::Millis,
    /// Set to true once every poller scope has finished its first backfill
    /// (at once when nothing is polled); never set back. Readiness waits for
    /// it, so that history is in the ledger before the first scrape that
    /// counts, and never shows as a jump on series already scraped.
    pub backfilled: tokio::sync::watch::Sender<bool>,
}

/// Counts down the poller scopes still backfilling; the last one sets
/// [`SourceContext::backfilled`].
#[derive(Debug)]
pub struct Backfills {
    remaining: std::sync::atomic::AtomicUsize,
    done: tokio::sync::watch::Sender<bool>,
}

impl Backfills {
    /// For `scopes` scopes (at least one).
    pub fn new(scopes: usize, done: tokio::sync::watch::Sender<bool>) -> Arc<Backfills> {
        Arc::new(Backfills { remaining: scopes.into(), done })
    }

    /// One scope finished its first backfill (call once per scope).
    pub fn scope_done(&self) {
        if self.remaining.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
            tracing::info!("backfill complete in every scope");
            self.done.send_replace(true);
        }
    }
}

/// Starts the SQS consumers and the poller's scopes on `tasks`; returns
/// once everything is spawned (resolving accounts and assuming roles first).
pub async fn run_sources(
    config: AwsConfig,
    context: SourceContext,
    tasks: tokio_util::task::TaskTracker,
    shutdown: tokio_util::sync::CancellationToken,
) {
    use crate::metrics::Source;

    let sink: Arc<dyn RequestSink> = Arc::new(ExporterSink(context.exporter.clone()));
    let known_region = config.regions.first().or_else(|| config.queues.iter().find_map(|q| q.region.as_ref()));
    let aws = Aws::load(config.endpoint_url.as_deref(), known_region.map(String::as_str), config.max_attempts, sink).await;
    let default_region = aws.default_region();
    let mut regions = config.regions.clone();
    if regions.is_empty() {
        for queue in &config.queues {
            if let Some(region) = &queue.region {
                if !regions.contains(region) {
                    regions.push(region.clone());
                }
            }
        }
    }
    if regions.is_empty() {
        regions.extend(default_region.clone());
    }
    let enricher = poller::Enricher::default();

    // The queues first: their intake must not wait for the poller's start
    // (STS, assuming roles). Their messages are committed and acknowledged at
    // once; enrichment asked for before a scope exists is dropped, and that
    // scope's backfill fetches those deployments anyway (it fetches every
    // deployment of the lookback whose API details the ledger lacks).
    if !config.queues.is_empty() {
        let health = Health::new(Source::Sqs, context.exporter.clone());
        for queue in &config.queues {
            let Some(region) = queue.region.clone().or_else(|| regions.first().cloned()).or_else(|| default_region.clone())
            else {
                tracing::error!(queue = %queue.url, "the queue's region is unknown: give --aws.region (or AWS_REGION)");
                health.report(&queue.url, false);
                continue;
            };
            let sdk = aws.config_for(&region, None).await;
            let consumer = sqs::Consumer {
                queue: queue.clone(),
                region,
                client: aws.sqs(&sdk),
                ingest: context.ingest.clone(),
                enricher: enricher.clone(),
                concurrency: config.sqs_concurrency,
                health: health.clone(),
                visibility_seconds: sqs::VISIBILITY_SECONDS,
                heartbeat: sqs::HEARTBEAT,
            };
            tracing::info!(queue = %queue.url, "consuming SQS");
            tasks.spawn(consumer.run(shutdown.clone()));
        }
    }

    if let (Some(interval), Some(first_region)) = (config.poll_interval, regions.first()) {
        let health = Health::new(Source::Poller, context.exporter.clone());
        let options = poller::PollerOptions {
            interval,
            lookback_ms: config.lookback.as_millis() as crate::domain::Millis,
            overlap_ms: WATERMARK_OVERLAP.as_millis() as crate::domain::Millis,
            applications: config.applications.clone(),
            events_expected: context.webhook || !config.queues.is_empty(),
            grace_ms: context.settle_time_ms,
            started_at: crate::ingest::now_ms(),
        };
        let mut accounts: Vec<(String, Option<String>)> = Vec::new();
        let own = loop {
            match aws.own_account(first_region).await {
                Ok(account) => break Some(account),
                Err(error) => {
                    tracing::error!(%error, "cannot tell the account of the exporter's own credentials (STS GetCallerIdentity); retrying in 30s");
                    health.report("identity", false);
                    tokio::select! {
                        _ = shutdown.cancelled() => break None,
                        _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                    }
                }
            }
        };
        let Some(own) = own else { return };
        health.report("identity", true);
        accounts.push((own, None));
        for role in &config.role_arns {
            if !accounts.iter().any(|(a, _)| *a == role.account) {
                accounts.push((role.account.clone(), Some(role.arn.clone())));
            }
        }
        let backfills = Backfills::new(accounts.len() * regions.len(), context.backfilled.clone());
        for (account, role) in &accounts {
            for region in &regions {
                let sdk = aws.config_for(region, role.as_deref()).await;
                let scope = Scope {
                    account: account.clone(),
                    region: region.clone(),
                    codedeploy: aws.codedeploy(&sdk),
                    limit: Arc::new(RateLimit::new(config.max_rps)),
                };
                if let Some(refresh) = config.tags_refresh {
                    tasks.spawn(group_info::run(
                        group_info::GroupReader::new(account, region, refresh),
                        group_info::SdkGroups { scope: scope.clone() },
                        context.exporter.clone(),
                        context.ingest.clone(),
                        shutdown.clone(),
                    ));
                }
                let wanted = enricher.add_route(account, region);
                tracing::info!(%account, %region, role = role.as_deref().unwrap_or("(own credentials)"),
                    interval = ?interval, "polling CodeDeploy");
                tasks.spawn(poller::run_scope(
                    poller::ScopePoller::new(account, region, options.clone()),
                    poller::SdkApi { scope },
                    poller::Sink { ingest: context.ingest.clone(), exporter: context.exporter.clone() },
                    wanted,
                    health.clone(),
                    backfills.clone(),
                    shutdown.clone(),
                ));
            }
        }
    } else {
        if config.poll_interval.is_some() {
            tracing::warn!("no region to poll: give --aws.region (or AWS_REGION); the poller is off");
        }
        // No history to wait for.
        context.backfilled.send_replace(true);
    }

}
