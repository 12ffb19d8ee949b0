//! SNS HTTP(S) subscriptions to `POST /events`: signature verification and
//! subscription confirmation.
//!
//! SNS cannot send custom headers, so it cannot present the webhook's shared
//! secret. With `--webhook.sns-verify-signatures`, a request carrying
//! `x-amz-sns-message-type` authenticates with the message's own signature
//! instead:
//!
//! 1. `TopicArn` must match a `--webhook.sns-topic-arn` pattern (a valid
//!    signature proves that SNS sent the message, not that it came from *your*
//!    topic: anyone can subscribe this endpoint to a topic of their own);
//! 2. the body holds only the keys of SNS's HTTP message schema: the
//!    signature covers a few of them, and a key it does not cover must not
//!    reach the decoders (an EventBridge `detail` added to a signed
//!    notification would otherwise be applied as an EventBridge event);
//! 3. `SigningCertURL` must be `https://` on a `--webhook.sns-cert-host`
//!    (default `sns.{region}.amazonaws.com`, `{region}` being the region of
//!    the `TopicArn`, and the China partition's `.com.cn`) and name a
//!    certificate as SNS does, `/SimpleNotificationService-<hex>.pem`; the
//!    certificate is fetched once per URL and cached, a failed fetch is
//!    remembered for [`FAILED_FETCH_TTL`], and at most
//!    [`CONCURRENT_FETCHES`] fetches run at once;
//! 4. `Signature` must verify with the certificate's RSA key over the
//!    canonical string of the documented fields: SHA1withRSA for
//!    `SignatureVersion` 1, SHA256withRSA for 2.
//!
//! What goes on to the decoders is then rebuilt from signed fields only
//! ([`SnsMessage::signed_envelope`]).
//!
//! A `SubscriptionConfirmation` that is authenticated (by signature, or by the
//! shared secret when something in front of the exporter adds it) is
//! confirmed by fetching its `SubscribeURL`, only over https and only when its
//! host matches a `--webhook.sns-subscribe-host` pattern (default
//! `sns.{region}.amazonaws.com`, `{region}` being the region of the
//! `TopicArn`). Outbound requests never follow redirects (a redirect could
//! leave the allow-list) and trust the Mozilla root certificates plus
//! `--webhook.sns-ca-file`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{header, Request, Uri};
use base64::Engine;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::{Map, Value};
use tokio::sync::Semaphore;

/// The header SNS puts on every HTTP delivery.
pub const MESSAGE_TYPE_HEADER: &str = "x-amz-sns-message-type";

/// Largest certificate or confirmation answer read.
const MAX_FETCH_BYTES: usize = 64 * 1024;
/// Certificates kept; SNS rotates its signing certificate rarely.
const CERT_CACHE_CAPACITY: usize = 32;
/// How long a failed certificate fetch is answered from memory (503) instead
/// of fetching again: deliveries naming an unreachable URL cost no outbound
/// request each. Shorter than SNS's default 20 s between retries, so every
/// retry of a legitimate delivery gets a fresh attempt.
pub const FAILED_FETCH_TTL: Duration = Duration::from_secs(15);
/// Certificate fetches in flight at once, whatever the number of deliveries
/// naming distinct URLs; the others wait their turn (at most [`FETCH_TIMEOUT`]).
pub const CONCURRENT_FETCHES: usize = 4;
/// Longest `TopicArn` looked at.
const MAX_ARN_LENGTH: usize = 512;
/// Bounds of one outbound request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A host allow-list entry: labels compared case-insensitively; `*` matches
/// exactly one label; `{region}` matches the region of the message's topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern(Vec<String>);

impl HostPattern {
    pub fn parse(text: &str) -> Result<HostPattern, String> {
        let lower = text.trim().to_ascii_lowercase();
        let labels: Vec<String> = lower.split('.').map(str::to_owned).collect();
        let valid = |label: &str| {
            label == "*"
                || label == "{region}"
                || (!label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        };
        if lower.is_empty() || !labels.iter().all(|l| valid(l)) {
            return Err(format!(
                "{text:?} is not a host pattern (DNS labels or an IPv4 address; `*` for one label, `{{region}}`)"
            ));
        }
        Ok(HostPattern(labels))
    }

    fn matches(&self, host: &str, region: Option<&str>) -> bool {
        let host = host.to_ascii_lowercase();
        let labels: Vec<&str> = host.split('.').collect();
        labels.len() == self.0.len()
            && self.0.iter().zip(&labels).all(|(pattern, label)| match pattern.as_str() {
                "*" => !label.is_empty() && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{region}" => region.is_some_and(|r| r.eq_ignore_ascii_case(label)),
                exact => exact == *label,
            })
    }
}

/// A topic ARN pattern; `*` matches any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern(String);

impl TopicPattern {
    pub fn new(text: &str) -> TopicPattern {
        TopicPattern(text.trim().to_owned())
    }

    fn matches(&self, arn: &str) -> bool {
        glob(self.0.as_bytes(), arn.as_bytes())
    }
}

/// Wildcard match in O(pattern × text) at worst, whatever the input: the
/// text comes from unauthenticated requests.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and how much text it has swallowed so far.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// How SNS deliveries are checked; built once at start.
#[derive(Debug, Clone)]
pub struct SnsOptions {
    pub verify_signatures: bool,
    pub topics: Vec<TopicPattern>,
    pub cert_hosts: Vec<HostPattern>,
    pub subscribe_hosts: Vec<HostPattern>,
}

/// Why an SNS delivery was refused. `reason()` is a bounded label.
#[derive(Debug, thiserror::Error)]
pub enum SnsError {
    #[error("not an SNS message: {0}")]
    Malformed(String),
    #[error("keys outside the SNS HTTP message schema: {0}")]
    UnexpectedKeys(String),
    #[error("topic {0} is not one of --webhook.sns-topic-arn")]
    TopicNotAllowed(String),
    #[error("SignatureVersion {0:?} is not supported (1 or 2)")]
    UnsupportedVersion(String),
    #[error("{field} {url} is not https on an allowed host ({flag})")]
    UrlNotAllowed { field: &'static str, url: String, flag: &'static str },
    #[error("the signature does not verify: {0}")]
    BadSignature(String),
    /// Not the sender's fault: retrying may help.
    #[error("cannot fetch the signing certificate {url}: {detail}")]
    CertificateUnavailable { url: String, detail: String },
    #[error("confirming the subscription to {topic} failed: {detail}")]
    ConfirmationFailed { topic: String, detail: String },
}

impl SnsError {
    pub fn reason(&self) -> &'static str {
        match self {
            SnsError::Malformed(_) => "invalid_sns_message",
            SnsError::UnexpectedKeys(_) => "sns_unexpected_keys",
            SnsError::TopicNotAllowed(_) => "sns_topic_not_allowed",
            SnsError::UnsupportedVersion(_) => "sns_signature_version",
            SnsError::UrlNotAllowed { field: "SigningCertURL", .. } => "sns_cert_url_not_allowed",
            SnsError::UrlNotAllowed { .. } => "sns_subscribe_url_not_allowed",
            SnsError::BadSignature(_) => "sns_bad_signature",
            SnsError::CertificateUnavailable { .. } => "sns_cert_unavailable",
            SnsError::ConfirmationFailed { .. } => "sns_confirmation_failed",
        }
    }

    /// Every reason a delivery that is not authenticated yet can be refused
    /// for, so that their series exist from the start.
    pub const UNAUTHENTICATED_REASONS: [&'static str; 6] = [
        "invalid_sns_message",
        "sns_unexpected_keys",
        "sns_topic_not_allowed",
        "sns_signature_version",
        "sns_cert_url_not_allowed",
        "sns_bad_signature",
    ];

    /// The sender's mistake (counted as a rejected message), or a transient failure here.
    pub fn is_rejection(&self) -> bool {
        !matches!(self, SnsError::CertificateUnavailable { .. } | SnsError::ConfirmationFailed { .. })
    }
}

/// An SNS HTTP delivery, parsed far enough to check and confirm it.
#[derive(Debug)]
pub struct SnsMessage {
    pub kind: SnsKind,
    fields: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnsKind {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

impl SnsMessage {
    /// `None` when the body is not an SNS HTTP message at all (then it is
    /// just a webhook message for the decoders).
    pub fn parse(body: &[u8]) -> Result<SnsMessage, SnsError> {
        let fields = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(SnsError::Malformed("the body is not a JSON object".into())),
            Err(e) => return Err(SnsError::Malformed(format!("invalid JSON: {e}"))),
        };
        let kind = match fields.get("Type").and_then(Value::as_str) {
            Some("Notification") => SnsKind::Notification,
            Some("SubscriptionConfirmation") => SnsKind::SubscriptionConfirmation,
            Some("UnsubscribeConfirmation") => SnsKind::UnsubscribeConfirmation,
            Some(other) => return Err(SnsError::Malformed(format!("unknown Type {:?}", excerpt(other)))),
            None => return Err(SnsError::Malformed("no string `Type`".into())),
        };
        Ok(SnsMessage { kind, fields })
    }

    fn field(&self, name: &str) -> Result<&str, SnsError> {
        match self.fields.get(name) {
            Some(Value::String(value)) => Ok(value),
            Some(_) => Err(SnsError::Malformed(format!("`{name}` is not a string"))),
            None => Err(SnsError::Malformed(format!("missing `{name}`"))),
        }
    }

    pub fn topic_arn(&self) -> Result<&str, SnsError> {
        let arn = self.field("TopicArn")?;
        // Topic names are at most 256 characters; the rest of an ARN is short.
        if arn.len() > MAX_ARN_LENGTH {
            return Err(SnsError::Malformed(format!("`TopicArn` is over {MAX_ARN_LENGTH} characters")));
        }
        Ok(arn)
    }

    /// `arn:aws:sns:REGION:ACCOUNT:NAME` → REGION.
    fn region(&self) -> Option<&str> {
        self.topic_arn().ok()?.split(':').nth(3).filter(|r| !r.is_empty())
    }

    /// The keys SNS's HTTP(S) deliveries carry, by type, as documented
    /// ("Parsing message formats" in the SNS developer guide); `MessageAttributes`
    /// and `SequenceNumber` appear on some notifications.
    fn schema(&self) -> &'static [&'static str] {
        match self.kind {
            SnsKind::Notification => &[
                "Type",
                "MessageId",
                "TopicArn",
                "Subject",
                "Message",
                "Timestamp",
                "SignatureVersion",
                "Signature",
                "SigningCertURL",
                "UnsubscribeURL",
                "MessageAttributes",
                "SequenceNumber",
            ],
            SnsKind::SubscriptionConfirmation | SnsKind::UnsubscribeConfirmation => &[
                "Type",
                "MessageId",
                "Token",
                "TopicArn",
                "Message",
                "SubscribeURL",
                "Timestamp",
                "SignatureVersion",
                "Signature",
                "SigningCertURL",
            ],
        }
    }

    /// Refuses a body with keys SNS does not send (compared exactly: SNS
    /// spells them one way, while the decoders ignore case).
    pub fn check_keys(&self) -> Result<(), SnsError> {
        let schema = self.schema();
        let foreign: Vec<String> =
            self.fields.keys().filter(|key| !schema.contains(&key.as_str())).take(8).map(|key| format!("{:?}", excerpt(key))).collect();
        if foreign.is_empty() {
            Ok(())
        } else {
            Err(SnsError::UnexpectedKeys(foreign.join(", ")))
        }
    }

    /// The message for the decoders, rebuilt from the fields the signature
    /// covers and the decoders read (`Type`, `Subject`, `Timestamp`,
    /// `Message`), so that nothing unsigned is ever applied.
    pub fn signed_envelope(&self) -> Vec<u8> {
        let mut envelope = Map::new();
        for name in ["Type", "Subject", "Timestamp", "Message"] {
            if let Some(value @ Value::String(_)) = self.fields.get(name) {
                envelope.insert(name.to_owned(), value.clone());
            }
        }
        Value::Object(envelope).to_string().into_bytes()
    }

    /// The string SNS signs: `Name\nValue\n` for each signed field, in order.
    pub fn string_to_sign(&self) -> Result<String, SnsError> {
        let names: &[&str] = match self.kind {
            SnsKind::Notification => &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"],
            _ => &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"],
        };
        let mut text = String::new();
        for name in names {
            // A notification published without a subject has no Subject line.
            if *name == "Subject" && matches!(self.fields.get("Subject"), None | Some(Value::Null)) {
                continue;
            }
            text.push_str(name);
            text.push('\n');
            text.push_str(self.field(name)?);
            text.push('\n');
        }
        Ok(text)
    }
}

fn excerpt(text: &str) -> String {
    text.chars().take(40).collect()
}

/// Verifies and confirms SNS deliveries; shared by the webhook's requests.
pub struct Sns {
    options: SnsOptions,
    client: HttpsClient,
    /// SigningCertURL → its certificate's SubjectPublicKeyInfo, or why it
    /// could not be had and when.
    certificates: Mutex<HashMap<String, Fetched>>,
    /// Bounds the certificate fetches in flight ([`CONCURRENT_FETCHES`]).
    fetches: Semaphore,
}

/// What became of fetching one certificate.
#[derive(Debug, Clone)]
enum Fetched {
    Key(Arc<Vec<u8>>),
    Failed { at: Instant, detail: String },
}

impl std::fmt::Debug for Sns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sns").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Sns {
    /// `extra_ca`: PEM certificates trusted besides the Mozilla roots for the
    /// exporter's outbound requests (a TLS-inspecting proxy, or a test's CA).
    pub fn new(options: SnsOptions, extra_ca: Option<&Path>) -> Result<Sns, String> {
        let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
        if let Some(path) = extra_ca {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                let cert = cert.map_err(|e| format!("{} is not valid PEM: {e}", path.display()))?;
                roots.add(cert).map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!("{} holds no PEM certificate", path.display()));
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(crate::http::tls::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(tcp);
        // hyper's client follows no redirects: a redirect could leave the allow-list.
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Sns { options, client, certificates: Mutex::new(HashMap::new()), fetches: Semaphore::new(CONCURRENT_FETCHES) })
    }

    pub fn verifies_signatures(&self) -> bool {
        self.options.verify_signatures
    }

    /// Checks topic, certificate URL and signature.
    pub async fn verify(&self, message: &SnsMessage) -> Result<(), SnsError> {
        let topic = message.topic_arn()?;
        if !self.options.topics.iter().any(|p| p.matches(topic)) {
            return Err(SnsError::TopicNotAllowed(excerpt(topic)));
        }
        let version = message.field("SignatureVersion")?;
        let algorithm: &'static dyn aws_lc_rs::signature::VerificationAlgorithm = match version {
            "1" => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            "2" => &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
            other => return Err(SnsError::UnsupportedVersion(excerpt(other))),
        };
        let signature = base64::engine::general_purpose::STANDARD
            .decode(message.field("Signature")?)
            .map_err(|_| SnsError::BadSignature("`Signature` is not base64".into()))?;
        let signed = message.string_to_sign()?;
        let url = allowed_url(message.field("SigningCertURL")?, &self.options.cert_hosts, message.region())
            .filter(is_sns_certificate_path)
            .ok_or_else(|| SnsError::UrlNotAllowed {
                field: "SigningCertURL",
                url: excerpt(message.field("SigningCertURL").unwrap_or_default()),
                flag: "--webhook.sns-cert-host",
            })?;
        let key = self.public_key(&url).await?;
        aws_lc_rs::signature::UnparsedPublicKey::new(algorithm, key.as_slice())
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| SnsError::BadSignature(format!("SignatureVersion {version}")))
    }

    /// The public key of the certificate at `url`: from the cache, or
    /// fetched by at most [`CONCURRENT_FETCHES`] requests at once.
    async fn public_key(&self, url: &Uri) -> Result<Arc<Vec<u8>>, SnsError> {
        let key = url.to_string();
        if let Some(known) = self.cached(&key) {
            return known;
        }
        let unavailable = |detail: String| SnsError::CertificateUnavailable { url: key.clone(), detail };
        let _permit = match tokio::time::timeout(FETCH_TIMEOUT, self.fetches.acquire()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(unavailable(format!("{CONCURRENT_FETCHES} certificate fetches already in flight"))),
        };
        // Another delivery may have fetched it while this one waited.
        if let Some(known) = self.cached(&key) {
            return known;
        }
        let fetched = match self.fetch_key(url).await {
            Ok(public_key) => {
                tracing::info!(url = %url, "SNS signing certificate fetched");
                Fetched::Key(public_key)
            }
            Err(detail) => {
                tracing::warn!(url = %url, %detail, "SNS signing certificate not fetched; remembered for {FAILED_FETCH_TTL:?}");
                Fetched::Failed { at: Instant::now(), detail }
            }
        };
        let mut cache = self.certificates.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CERT_CACHE_CAPACITY {
            // Failures go first: deliveries naming many unreachable URLs must
            // not push out the certificate the real ones are signed with.
            cache.retain(|_, entry| matches!(entry, Fetched::Key(_)));
            if cache.len() >= CERT_CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(key.clone(), fetched.clone());
        match fetched {
            Fetched::Key(public_key) => Ok(public_key),
            Fetched::Failed { detail, .. } => Err(unavailable(detail)),
        }
    }

    /// The cached outcome for `url`: its key, or a failure younger than [`FAILED_FETCH_TTL`].
    fn cached(&self, url: &str) -> Option<Result<Arc<Vec<u8>>, SnsError>> {
        match self.certificates.lock().unwrap_or_else(|p| p.into_inner()).get(url)? {
            Fetched::Key(public_key) => Some(Ok(public_key.clone())),
            Fetched::Failed { at, detail } if at.elapsed() < FAILED_FETCH_TTL => {
                Some(Err(SnsError::CertificateUnavailable {
                    url: url.to_owned(),
                    detail: format!("{detail} (a failure remembered for {FAILED_FETCH_TTL:?})"),
                }))
            }
            Fetched::Failed { .. } => None,
        }
    }

    /// Fetches the certificate at `url` and returns its SubjectPublicKeyInfo.
    async fn fetch_key(&self, url: &Uri) -> Result<Arc<Vec<u8>>, String> {
        let pem = self.fetch(url).await?;
        let cert = CertificateDer::from_pem_slice(&pem).map_err(|e| format!("not a PEM certificate: {e}"))?;
        let parsed =
            rustls::server::ParsedCertificate::try_from(&cert).map_err(|e| format!("not a usable certificate: {e}"))?;
        Ok(Arc::new(parsed.subject_public_key_info().as_ref().to_vec()))
    }

    /// Caches the certificate of `url` as if fetched (unit tests).
    #[cfg(test)]
    fn preload_certificate(&self, url: &str, pem: &str) {
        let cert = CertificateDer::from_pem_slice(pem.as_bytes()).expect("PEM");
        let parsed = rustls::server::ParsedCertificate::try_from(&cert).expect("certificate");
        let key = Arc::new(parsed.subject_public_key_info().as_ref().to_vec());
        self.certificates.lock().expect("lock").insert(url.to_owned(), Fetched::Key(key));
    }

    /// Confirms a `SubscriptionConfirmation` by fetching its `SubscribeURL`.
    pub async fn confirm(&self, message: &SnsMessage) -> Result<(), SnsError> {
        let topic = message.topic_arn()?.to_owned();
        let raw = message.field("SubscribeURL")?;
        let url = allowed_url(raw, &self.options.subscribe_hosts, message.region()).ok_or_else(|| {
            SnsError::UrlNotAllowed {
                field: "SubscribeURL",
                url: excerpt(raw),
                flag: "--webhook.sns-subscribe-host",
            }
        })?;
        self.fetch(&url).await.map_err(|detail| SnsError::ConfirmationFailed { topic: topic.clone(), detail })?;
        // The URL carries the confirmation token: log the topic only.
        tracing::info!(%topic, "SNS subscription confirmed");
        Ok(())
    }

    /// GETs `url` (no redirects) and returns at most [`MAX_FETCH_BYTES`] of a 2xx body.
    async fn fetch(&self, url: &Uri) -> Result<Vec<u8>, String> {
        let request = Request::get(url.clone())
            .header(header::USER_AGENT, concat!("codedeploy-exporter/", env!("CARGO_PKG_VERSION")))
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| describe(&e))?;
            if !response.status().is_success() {
                return Err(format!("HTTP {}", response.status()));
            }
            let body = Limited::new(response.into_body(), MAX_FETCH_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e} (at most {MAX_FETCH_BYTES} bytes)"))?;
            Ok(body.to_bytes().to_vec())
        };
        tokio::time::timeout(FETCH_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("no complete answer within {FETCH_TIMEOUT:?}")))
    }
}

/// An error's Display stops at the outermost layer; the cause is what helps.
fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `url` names a certificate as SNS does: `/SimpleNotificationService-<hex>.pem`
/// and nothing else (no query), so that an allow-listed host serves nothing
/// but its signing certificates to this check.
fn is_sns_certificate_path(url: &Uri) -> bool {
    let id = url
        .path()
        .strip_prefix("/SimpleNotificationService-")
        .and_then(|rest| rest.strip_suffix(".pem"));
    url.query().is_none() && id.is_some_and(|id| (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `raw` parsed, if it is https on a host matching one of `hosts`, without credentials.
fn allowed_url(raw: &str, hosts: &[HostPattern], region: Option<&str>) -> Option<Uri> {
    let url: Uri = raw.parse().ok()?;
    let authority = url.authority()?;
    if url.scheme_str() != Some("https") || authority.as_str().contains('@') {
        return None;
    }
    hosts.iter().any(|p| p.matches(authority.host(), region)).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(patterns: &[&str]) -> Vec<HostPattern> {
        patterns.iter().map(|p| HostPattern::parse(p).expect("pattern")).collect()
    }

    #[test]
    fn host_patterns() {
        let any_region = hosts(&["sns.*.amazonaws.com", "127.0.0.1"]);
        let ok = |raw: &str| allowed_url(raw, &any_region, None).is_some();
        assert!(ok("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem"));
        assert!(ok("https://SNS.eu-west-3.AMAZONAWS.com/x.pem"));
        assert!(ok("https://127.0.0.1:8443/cert.pem"));
        assert!(!ok("http://sns.us-east-1.amazonaws.com/x.pem"), "https only");
        assert!(!ok("https://sns.us-east-1.amazonaws.com.evil.example/x.pem"));
        assert!(!ok("https://evil.example/sns.us-east-1.amazonaws.com/x.pem"));
        assert!(!ok("https://sns.a.b.amazonaws.com/x.pem"), "`*` is one label");
        assert!(!ok("https://sns..amazonaws.com/x.pem"));
        assert!(!ok("https://user:pw@sns.us-east-1.amazonaws.com/x.pem"));
        assert!(!ok("not a url"));

        // The defaults of both --webhook.sns-cert-host and --webhook.sns-subscribe-host.
        let regional = hosts(&["sns.{region}.amazonaws.com", "sns.{region}.amazonaws.com.cn"]);
        let ok = |raw: &str, region| allowed_url(raw, &regional, region).is_some();
        assert!(ok("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription", Some("us-east-1")));
        assert!(ok("https://sns.cn-north-1.amazonaws.com.cn/x.pem", Some("cn-north-1")));
        assert!(!ok("https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription", Some("us-east-1")));
        assert!(!ok("https://sns.us-east-1.amazonaws.com/", None));

        assert!(HostPattern::parse("https://sns.amazonaws.com").is_err());
        assert!(HostPattern::parse("sns.{account}.amazonaws.com").is_err());
        assert!(HostPattern::parse("").is_err());
    }

    #[test]
    fn certificate_paths_are_those_sns_uses() {
        let path = |raw: &str| is_sns_certificate_path(&raw.parse().expect("URL"));
        assert!(path("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"));
        assert!(path("https://127.0.0.1:8443/SimpleNotificationService-ABCDEF01.pem"));
        for refused in [
            "https://sns.us-east-1.amazonaws.com/",
            "https://sns.us-east-1.amazonaws.com/cert.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem?x=1",
            "https://sns.us-east-1.amazonaws.com/x/SimpleNotificationService-abc.pem",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem.exe",
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc%2F.pem",
        ] {
            assert!(!path(refused), "{refused}");
        }
        let long = format!("https://sns.us-east-1.amazonaws.com/SimpleNotificationService-{}.pem", "a".repeat(65));
        assert!(!path(&long));
    }

    #[test]
    fn only_keys_of_the_sns_schema_and_only_signed_fields_go_on() {
        let mut notification = serde_json::json!({
            "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:1:t", "Subject": "s",
            "Message": "{}", "Timestamp": "2026-01-01T00:00:00.000Z", "SignatureVersion": "2", "Signature": "x",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-ab.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": {"a": {"Type": "String", "Value": "b"}},
        });
        let parse = |value: &serde_json::Value| SnsMessage::parse(value.to_string().as_bytes()).expect("parses");
        parse(&notification).check_keys().expect("every key is SNS's own");
        let envelope: serde_json::Value =
            serde_json::from_slice(&parse(&notification).signed_envelope()).expect("JSON");
        assert_eq!(
            envelope,
            serde_json::json!({"Type": "Notification", "Subject": "s", "Timestamp": "2026-01-01T00:00:00.000Z", "Message": "{}"})
        );

        for foreign in ["detail-type", "Records", "deploymentInfo", "committed_at", "message", "Token"] {
            let mut body = notification.clone();
            body[foreign] = serde_json::json!("x");
            let error = parse(&body).check_keys().unwrap_err();
            assert_eq!(error.reason(), "sns_unexpected_keys", "{foreign}");
            assert!(error.to_string().contains(foreign), "{error}");
        }
        notification["Type"] = "SubscriptionConfirmation".into();
        assert_eq!(parse(&notification).check_keys().unwrap_err().reason(), "sns_unexpected_keys", "no Subject there");
    }

    #[test]
    fn topic_patterns() {
        // Linear work is milliseconds; backtracking would not end in a
        // lifetime. The deadline tells them apart on any machine, and a
        // failure is reported rather than left hanging.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let long = format!("arn:aws:sns:{}", "x:".repeat(100_000));
            let _ = done.send(TopicPattern::new("arn:*:*:*:*:*:*:*:y").matches(&long));
        });
        let matched = finished.recv_timeout(std::time::Duration::from_secs(60)).expect("no exponential backtracking");
        assert!(!matched);
        assert!(TopicPattern::new("a*b*c").matches("aXXbYYc") && !TopicPattern::new("a*b*c").matches("aXXbYY"));
        assert!(TopicPattern::new("*x*").matches("x") && TopicPattern::new("**").matches(""));
        let exact = TopicPattern::new("arn:aws:sns:us-east-1:123456789012:deployments");
        assert!(exact.matches("arn:aws:sns:us-east-1:123456789012:deployments"));
        assert!(!exact.matches("arn:aws:sns:us-east-1:123456789012:deployments-2"));
        let account = TopicPattern::new("arn:aws:sns:*:123456789012:*");
        assert!(account.matches("arn:aws:sns:eu-west-1:123456789012:x"));
        assert!(!account.matches("arn:aws:sns:eu-west-1:999999999999:x"));
        assert!(TopicPattern::new("*").matches("anything"));
    }

    #[tokio::test]
    async fn signature_version_1_verifies_with_sha1() {
        const URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem";
        let options = SnsOptions {
            verify_signatures: true,
            topics: vec![TopicPattern::new("arn:aws:sns:*:123456789012:*")],
            cert_hosts: hosts(&["sns.{region}.amazonaws.com"]),
            subscribe_hosts: Vec::new(),
        };
        let sns = Sns::new(options, None).expect("sns");
        sns.preload_certificate(URL, include_str!("../../tests/fixtures/sns/signing-cert-v1.pem"));
        let message = |text: &str, signature: &str| {
            let body = serde_json::json!({
                "Type": "Notification", "MessageId": "m-1", "Message": text,
                "Timestamp": "2026-01-01T00:00:00.000Z",
                "TopicArn": "arn:aws:sns:us-east-1:123456789012:deployments",
                "SignatureVersion": "1", "Signature": signature, "SigningCertURL": URL,
            });
            SnsMessage::parse(body.to_string().as_bytes()).expect("parses")
        };
        let signature = include_str!("../../tests/fixtures/sns/notification-v1.sig").trim();
        sns.verify(&message("hello v1", signature)).await.expect("valid v1 signature");
        let tampered = sns.verify(&message("hello v2", signature)).await.unwrap_err();
        assert_eq!(tampered.reason(), "sns_bad_signature");
        let garbage = sns.verify(&message("hello v1", "not base64!")).await.unwrap_err();
        assert_eq!(garbage.reason(), "sns_bad_signature");
    }

    #[test]
    fn canonical_strings() {
        let notification = SnsMessage::parse(
            br#"{"Type":"Notification","MessageId":"m","TopicArn":"arn:aws:sns:us-east-1:1:t","Subject":"s","Message":"hello","Timestamp":"2026-01-01T00:00:00.000Z","SignatureVersion":"2","Signature":"x","SigningCertURL":"https://sns.us-east-1.amazonaws.com/c.pem"}"#,
        )
        .expect("parses");
        assert_eq!(
            notification.string_to_sign().expect("signable"),
            "Message\nhello\nMessageId\nm\nSubject\ns\nTimestamp\n2026-01-01T00:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:1:t\nType\nNotification\n"
        );
        let no_subject = SnsMessage::parse(br#"{"Type":"Notification","MessageId":"m","TopicArn":"t","Message":"hello","Timestamp":"x"}"#)
            .expect("parses");
        assert!(!no_subject.string_to_sign().expect("signable").contains("Subject"));
        let confirmation = SnsMessage::parse(
            br#"{"Type":"SubscriptionConfirmation","MessageId":"m","Token":"tok","TopicArn":"t","Message":"msg","SubscribeURL":"https://u","Timestamp":"x"}"#,
        )
        .expect("parses");
        assert_eq!(
            confirmation.string_to_sign().expect("signable"),
            "Message\nmsg\nMessageId\nm\nSubscribeURL\nhttps://u\nTimestamp\nx\nToken\ntok\nTopicArn\nt\nType\nSubscriptionConfirmation\n"
        );
        let missing = SnsMessage::parse(br#"{"Type":"SubscriptionConfirmation","MessageId":"m"}"#).expect("parses");
        assert_eq!(missing.string_to_sign().unwrap_err().reason(), "invalid_sns_message");
        assert!(SnsMessage::parse(b"[]").is_err());
        assert!(SnsMessage::parse(br#"{"Type":"Other"}"#).is_err());
    }
}
