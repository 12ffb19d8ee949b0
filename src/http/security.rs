//! The flags that secure the endpoints, flattened into `serve` and `demo`:
//! `--web.config.file` (TLS, basic auth, headers), the webhook's rate limit,
//! and SNS HTTP(S) subscriptions (signature verification, confirmation).

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::web_config::{WebConfig, WebConfigError};
use crate::sources::sns::{HostPattern, Sns, SnsOptions, TopicPattern};

#[derive(Debug, Clone, Args)]
pub struct SecurityArgs {
    /// Web configuration file (Prometheus exporter-toolkit format) to enable
    /// TLS, client certificates, basic auth with bcrypt hashes, response
    /// headers and a global rate limit.
    #[arg(long = "web.config.file", env = "CODEDEPLOY_EXPORTER_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Webhook requests per second allowed on average (a token bucket shared
    /// by all senders); beyond it POST /events answers 429 with Retry-After.
    /// 0 disables the limit.
    #[arg(long = "webhook.rate-limit", env = "CODEDEPLOY_EXPORTER_WEBHOOK_RATE_LIMIT", default_value_t = 0.0)]
    pub webhook_rate_limit: f64,

    /// Webhook requests allowed at once above the rate (the bucket's size).
    /// Defaults to the rate (rounded up), at least 1.
    #[arg(long = "webhook.rate-burst", env = "CODEDEPLOY_EXPORTER_WEBHOOK_RATE_BURST")]
    pub webhook_rate_burst: Option<u32>,

    /// Authenticate SNS HTTP(S) deliveries (requests with an
    /// x-amz-sns-message-type header) by their SNS signature instead of the
    /// shared secret, which SNS cannot send. Needs --webhook.sns-topic-arn.
    #[arg(long = "webhook.sns-verify-signatures", env = "CODEDEPLOY_EXPORTER_WEBHOOK_SNS_VERIFY_SIGNATURES")]
    pub sns_verify_signatures: bool,

    /// SNS topics whose signed deliveries are accepted (repeatable or
    /// comma-separated; `*` matches any run of characters, e.g.
    /// arn:aws:sns:*:123456789012:*).
    #[arg(long = "webhook.sns-topic-arn", env = "CODEDEPLOY_EXPORTER_WEBHOOK_SNS_TOPIC_ARN", value_delimiter = ',')]
    pub sns_topic_arns: Vec<String>,

    /// Hosts the SNS signing certificate may be fetched from, over https
    /// (repeatable; `*` matches one DNS label, `{region}` the region of the
    /// message's TopicArn). The path must be SNS's own,
    /// /SimpleNotificationService-<hex>.pem.
    #[arg(
        long = "webhook.sns-cert-host",
        env = "CODEDEPLOY_EXPORTER_WEBHOOK_SNS_CERT_HOST",
        value_delimiter = ',',
        default_values_t = ["sns.{region}.amazonaws.com".to_owned(), "sns.{region}.amazonaws.com.cn".to_owned()]
    )]
    pub sns_cert_hosts: Vec<String>,

    /// Hosts a SubscriptionConfirmation's SubscribeURL may point to, over
    /// https (repeatable; `*` matches one DNS label, `{region}` the region of
    /// the message's TopicArn).
    #[arg(
        long = "webhook.sns-subscribe-host",
        env = "CODEDEPLOY_EXPORTER_WEBHOOK_SNS_SUBSCRIBE_HOST",
        value_delimiter = ',',
        default_values_t = ["sns.{region}.amazonaws.com".to_owned(), "sns.{region}.amazonaws.com.cn".to_owned()]
    )]
    pub sns_subscribe_hosts: Vec<String>,

    /// PEM file of CA certificates trusted, besides the built-in Mozilla
    /// roots, when fetching SNS certificates and confirming subscriptions
    /// (a TLS-inspecting egress proxy; the tests' local CA).
    #[arg(long = "webhook.sns-ca-file", env = "CODEDEPLOY_EXPORTER_WEBHOOK_SNS_CA_FILE")]
    pub sns_ca_file: Option<PathBuf>,
}

/// A mistake in these flags, worded for the person who typed them.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
    #[error("--webhook.rate-limit must be a number of requests per second ≥ 0, got {0}")]
    RateLimit(f64),
    #[error("--webhook.rate-burst must be at least 1")]
    RateBurst,
    #[error("--webhook.sns-verify-signatures needs at least one --webhook.sns-topic-arn: a valid signature only proves that SNS sent a message, not that it came from your topic (use '*' to accept any topic, knowingly)")]
    NoTopics,
    #[error("--webhook.sns-cert-host {0}")]
    CertHost(String),
    #[error("--webhook.sns-subscribe-host {0}")]
    SubscribeHost(String),
    #[error("--webhook.sns-ca-file: {0}")]
    CaFile(String),
}

/// The checked result.
#[derive(Debug, Clone, Default)]
pub struct SecurityOptions {
    pub web: Option<Arc<WebConfig>>,
    /// Requests per second and burst on POST /events.
    pub webhook_rate_limit: Option<(f64, u32)>,
    pub sns: Option<Arc<Sns>>,
}

impl SecurityArgs {
    pub fn validate(&self) -> Result<SecurityOptions, SecurityError> {
        let web = match &self.web_config_file {
            Some(path) => Some(Arc::new(WebConfig::load(path)?)),
            None => None,
        };
        let rate = self.webhook_rate_limit;
        if !rate.is_finite() || rate < 0.0 {
            return Err(SecurityError::RateLimit(rate));
        }
        let webhook_rate_limit = if rate > 0.0 {
            let burst = self.webhook_rate_burst.unwrap_or_else(|| rate.ceil().clamp(1.0, f64::from(u32::MAX)) as u32);
            if burst == 0 {
                return Err(SecurityError::RateBurst);
            }
            Some((rate, burst))
        } else {
            None
        };
        if self.sns_verify_signatures && self.sns_topic_arns.iter().all(|t| t.trim().is_empty()) {
            return Err(SecurityError::NoTopics);
        }
        let cert_hosts = self
            .sns_cert_hosts
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(SecurityError::CertHost)?;
        let subscribe_hosts = self
            .sns_subscribe_hosts
            .iter()
            .map(|h| HostPattern::parse(h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(SecurityError::SubscribeHost)?;
        let options = SnsOptions {
            verify_signatures: self.sns_verify_signatures,
            topics: self.sns_topic_arns.iter().filter(|t| !t.trim().is_empty()).map(|t| TopicPattern::new(t)).collect(),
            cert_hosts,
            subscribe_hosts,
        };
        let sns = Sns::new(options, self.sns_ca_file.as_deref()).map_err(SecurityError::CaFile)?;
        Ok(SecurityOptions { web, webhook_rate_limit, sns: Some(Arc::new(sns)) })
    }
}
