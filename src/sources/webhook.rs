//! `POST /events`: EventBridge API destinations and SNS HTTP(S) subscriptions
//! deliver one message per request.
//!
//! A shared secret is required (`Authorization: Bearer <secret>` or
//! `X-Api-Key: <secret>`, compared in constant time) and checked before the
//! body is read. The answer is 2xx only once the message is folded into the
//! ledger, so a sender that sees an error retries and nothing is lost.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

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

fn presented_secret(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    bearer.or(api_key).map(str::trim)
}

/// Middleware: 401 unless the request presents the secret.
pub async fn authenticate(State(secret): State<Secret>, request: Request, next: Next) -> Response {
    match presented_secret(request.headers()) {
        Some(presented) if secret.matches(presented) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "missing or wrong webhook secret (send Authorization: Bearer <secret> or X-Api-Key)\n",
        )
            .into_response(),
    }
}

/// Folds one message in and, once it is committed, says what became of it.
pub async fn receive(State(ingest): State<IngestHandle>, body: Bytes) -> Response {
    match ingest.submit(Source::Webhook, body.to_vec()).await {
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
    }
}
