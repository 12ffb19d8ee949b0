//! `POST /events`: EventBridge API destinations and SNS HTTP(S) subscriptions
//! deliver one message per request.
//!
//! In order, a request meets:
//! 1. the web config file's checks, if any (rate limit, basic auth; see
//!    [`crate::http::auth`]);
//! 2. `--webhook.rate-limit`: 429 with `Retry-After` beyond it, before any
//!    authentication work is done;
//! 3. authentication, before the body is read:
//!    - the shared secret (`Authorization: Bearer <secret>` or
//!      `X-Api-Key: <secret>`, compared in constant time) lets anything in;
//!    - else, with `--webhook.sns-verify-signatures`, a request carrying
//!      `x-amz-sns-message-type` goes on to have its SNS signature checked
//!      once the body is read (see [`super::sns`]); a bad one is 401 (403 for
//!      a topic not allowed, 400 for a body that is no SNS message or holds
//!      keys SNS does not send), reason in the reply, and counted in memory
//!      only (`codedeploy_exporter_unauthenticated_requests_total`): it costs
//!      no commit. A good one is decoded from its signed fields alone;
//!    - else 401;
//! 4. `--webhook.max-body-bytes`: 413 beyond it;
//! 5. an authenticated `SubscriptionConfirmation` is confirmed (its
//!    `SubscribeURL` fetched, if allow-listed) before it is acknowledged;
//! 6. the message is folded in and committed; only then 2xx, so a sender that
//!    sees an error retries and nothing is lost.
//!
//! The secret never reaches a log line or a `Debug` output.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use subtle::ConstantTimeEq;

use super::sns::{Sns, SnsError, SnsKind, SnsMessage, MESSAGE_TYPE_HEADER};
use crate::http::rate_limit::{retry_after_seconds, TokenBucket};
use crate::ingest::{IngestError, IngestHandle};
use crate::metrics::Source;

/// The webhook's shared secret. Debug output never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Surrounding whitespace (a trailing newline in a secret file) is not part of the secret.
    pub fn new(value: &str) -> Option<Secret> {
        let value = value.trim();
        (!value.is_empty()).then(|| Secret(value.to_owned()))
    }

    fn matches(&self, presented: &str) -> bool {
        self.0.as_bytes().ct_eq(presented.as_bytes()).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `--webhook.secret` as parsed from the command line: a string whose Debug
/// output is redacted, so that printing the parsed flags shows no secret.
#[derive(Clone)]
pub struct SecretArg(pub String);

impl std::str::FromStr for SecretArg {
    type Err = std::convert::Infallible;

    fn from_str(value: &str) -> Result<SecretArg, Self::Err> {
        Ok(SecretArg(value.to_owned()))
    }
}

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretArg(***)")
    }
}

/// What the webhook needs to answer requests.
pub struct Webhook {
    pub ingest: IngestHandle,
    pub secret: Option<Secret>,
    /// Present whenever the webhook is served; verifies signatures only when configured to.
    pub sns: Option<Arc<Sns>>,
    pub limiter: Option<TokenBucket>,
    pub max_body_bytes: usize,
}

/// How a request was let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Authenticated {
    Secret,
    /// Still to be checked against its SNS signature once the body is read.
    SnsSignature,
}

/// The `/events` route, or `None` when nothing could ever authenticate to it
/// (no secret and no SNS signature verification): it never runs open.
pub fn routes<S: Clone + Send + Sync + 'static>(webhook: Webhook) -> Option<Router<S>> {
    let verifies = webhook.sns.as_ref().is_some_and(|s| s.verifies_signatures());
    if webhook.secret.is_none() && !verifies {
        return None;
    }
    if verifies {
        webhook.ingest.unauthenticated().register(Source::Webhook, &SnsError::UNAUTHENTICATED_REASONS);
    }
    let limit = webhook.max_body_bytes;
    let webhook = Arc::new(webhook);
    Some(
        Router::new()
            .route("/events", post(receive))
            .route_layer(middleware::from_fn_with_state(webhook.clone(), guard))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(webhook),
    )
}

fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer.or(api_key).map(str::trim)
}

/// Middleware: the rate limit, then authentication, before the body is read.
async fn guard(State(webhook): State<Arc<Webhook>>, mut request: Request, next: Next) -> Response {
    if let Some(limiter) = &webhook.limiter {
        if let Err(wait) = limiter.try_take() {
            tracing::debug!(?wait, "webhook request over --webhook.rate-limit");
            let reply = serde_json::json!({ "outcome": "rate_limited", "detail": "over --webhook.rate-limit; retry later" });
            let mut response = (StatusCode::TOO_MANY_REQUESTS, axum::Json(reply)).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, retry_after_seconds(wait).into());
            return response;
        }
    }
    let headers = request.headers();
    let by_secret = match (&webhook.secret, presented_secret(headers)) {
        (Some(secret), Some(presented)) => secret.matches(presented),
        _ => false,
    };
    let verifies = webhook.sns.as_ref().is_some_and(|s| s.verifies_signatures());
    let authenticated = if by_secret {
        Authenticated::Secret
    } else if verifies && headers.contains_key(MESSAGE_TYPE_HEADER) {
        Authenticated::SnsSignature
    } else {
        tracing::debug!("webhook request without the right secret");
        let hint = if verifies {
            "missing or wrong webhook secret (send Authorization: Bearer <secret> or X-Api-Key), and not an SNS delivery\n"
        } else {
            "missing or wrong webhook secret (send Authorization: Bearer <secret> or X-Api-Key)\n"
        };
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer")], hint).into_response();
    };
    request.extensions_mut().insert(authenticated);
    next.run(request).await
}

/// Checks what must be checked on the body, then folds the message in and,
/// once it is committed, says what became of it.
async fn receive(
    State(webhook): State<Arc<Webhook>>,
    Extension(authenticated): Extension<Authenticated>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let message = match (authenticated, &webhook.sns) {
        (Authenticated::SnsSignature, sns) => {
            // The guard lets a request in this way only when `sns` verifies signatures.
            let Some(sns) = sns else { return StatusCode::UNAUTHORIZED.into_response() };
            let message = match verify_sns(sns, &body).await {
                Ok(message) => message,
                Err(error) => return refuse(&webhook.ingest, error, Trust::Unauthenticated).await,
            };
            if let Err(error) = control_sns(sns, &message).await {
                return refuse(&webhook.ingest, error, Trust::Authenticated).await;
            }
            // Only what the signature covers goes on to the decoders.
            message.signed_envelope()
        }
        (Authenticated::Secret, Some(sns)) if headers.contains_key(MESSAGE_TYPE_HEADER) => {
            // Authenticated by the secret: a body that is no SNS message is
            // the decoders' to judge, and nothing needs a signature.
            if let Ok(message) = SnsMessage::parse(&body) {
                if let Err(error) = control_sns(sns, &message).await {
                    return refuse(&webhook.ingest, error, Trust::Authenticated).await;
                }
            }
            body.to_vec()
        }
        _ => body.to_vec(),
    };
    match webhook.ingest.submit(Source::Webhook, message).await {
        Ok(outcome) => {
            let reply = serde_json::json!({ "outcome": outcome.label() });
            (StatusCode::OK, axum::Json(reply)).into_response()
        }
        Err(IngestError::Rejected(error)) => {
            let reply = serde_json::json!({ "outcome": "rejected", "reason": error.reason(), "detail": error.to_string() });
            (StatusCode::BAD_REQUEST, axum::Json(reply)).into_response()
        }
        // Not committed: 503 makes EventBridge and SNS deliver it again.
        Err(error @ (IngestError::NotDurable(_) | IngestError::ShuttingDown)) => {
            let reply = serde_json::json!({ "outcome": "unavailable", "detail": error.to_string() });
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(reply)).into_response()
        }
        // A bug, not the sender's fault: 500 makes the sender retry, and its
        // dead-letter queue keeps the message if the bug persists.
        Err(error @ IngestError::Internal(_)) => {
            let reply = serde_json::json!({ "outcome": "internal_error", "detail": error.to_string() });
            (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(reply)).into_response()
        }
    }
}

/// Authenticates a delivery by its SNS signature. Keys outside SNS's schema
/// are refused first: they are not signed, and checking them costs no
/// certificate fetch.
async fn verify_sns(sns: &Sns, body: &[u8]) -> Result<SnsMessage, SnsError> {
    let message = SnsMessage::parse(body)?;
    message.check_keys()?;
    sns.verify(&message).await?;
    Ok(message)
}

/// Confirms an authenticated `SubscriptionConfirmation`; notes an `UnsubscribeConfirmation`.
async fn control_sns(sns: &Sns, message: &SnsMessage) -> Result<(), SnsError> {
    match message.kind {
        SnsKind::SubscriptionConfirmation => sns.confirm(message).await?,
        SnsKind::UnsubscribeConfirmation => {
            tracing::warn!(topic = message.topic_arn().unwrap_or("?"), "SNS says this endpoint was unsubscribed")
        }
        SnsKind::Notification => {}
    }
    Ok(())
}

/// Whether a refused delivery was authenticated when it was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// By the secret, or by a signature that verified: a rejected message,
    /// committed like any other.
    Authenticated,
    /// Anyone could have sent it: counted in memory only, so that forged
    /// deliveries cost no commit and raise no alert meant for real senders.
    Unauthenticated,
}

/// Answers a refused SNS delivery; the sender's mistakes are counted.
async fn refuse(ingest: &IngestHandle, error: SnsError, trust: Trust) -> Response {
    let status = match &error {
        SnsError::Malformed(_) | SnsError::UnexpectedKeys(_) => StatusCode::BAD_REQUEST,
        SnsError::TopicNotAllowed(_) | SnsError::UrlNotAllowed { field: "SubscribeURL", .. } => StatusCode::FORBIDDEN,
        SnsError::UnsupportedVersion(_) | SnsError::UrlNotAllowed { .. } | SnsError::BadSignature(_) => {
            StatusCode::UNAUTHORIZED
        }
        SnsError::CertificateUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        SnsError::ConfirmationFailed { .. } => StatusCode::BAD_GATEWAY,
    };
    match (error.is_rejection(), trust) {
        (true, Trust::Authenticated) => {
            tracing::warn!(reason = error.reason(), %error, "SNS delivery refused");
            ingest.reject(Source::Webhook).await;
        }
        (true, Trust::Unauthenticated) => {
            // Debug, not warn: anyone can send these, and as many as they like.
            tracing::debug!(reason = error.reason(), %error, "unauthenticated SNS delivery refused");
            ingest.unauthenticated().count(Source::Webhook, error.reason());
        }
        (false, Trust::Authenticated) => {
            tracing::warn!(reason = error.reason(), %error, "SNS delivery not processed; SNS will retry")
        }
        // A certificate that could not be fetched is logged once per fetch (see `Sns`).
        (false, Trust::Unauthenticated) => {
            tracing::debug!(reason = error.reason(), %error, "SNS delivery not processed; SNS will retry")
        }
    }
    let outcome = if error.is_rejection() { "rejected" } else { "unavailable" };
    let reply = serde_json::json!({ "outcome": outcome, "reason": error.reason(), "detail": error.to_string() });
    (status, axum::Json(reply)).into_response()
}
