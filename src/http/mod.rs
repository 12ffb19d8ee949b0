//! The HTTP face: `/metrics` (or `--web.telemetry-path`), a landing page at
//! `/`, `/-/healthy`, `/-/ready`, and the webhook at `POST /events` when a
//! secret is configured.

use std::fmt::Write;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRef, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ingest::{now_ms, IngestHandle, SharedExporter};
use crate::ledger::FINISHED;
use crate::metrics::Format;
use crate::sources::webhook::{self, Secret};

/// What the router needs from the configuration.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub telemetry_path: String,
    /// `None` leaves the webhook unmounted: it never runs unauthenticated.
    pub webhook_secret: Option<Secret>,
    pub webhook_max_body_bytes: usize,
}

/// What the handlers share: the exporter to read, the writer to submit to.
#[derive(Debug, Clone)]
pub struct AppState {
    pub exporter: SharedExporter,
    pub ingest: IngestHandle,
}

impl FromRef<AppState> for SharedExporter {
    fn from_ref(state: &AppState) -> SharedExporter {
        state.exporter.clone()
    }
}

impl FromRef<AppState> for IngestHandle {
    fn from_ref(state: &AppState) -> IngestHandle {
        state.ingest.clone()
    }
}

pub fn router(state: AppState, options: &HttpOptions) -> Router {
    let landing_path = options.telemetry_path.clone();
    let mut router = Router::new()
        .route(&options.telemetry_path, get(metrics))
        .route("/", get(move |state| landing(state, landing_path.clone())))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }));
    if let Some(secret) = &options.webhook_secret {
        let events = Router::new()
            .route("/events", post(webhook::receive))
            .route_layer(middleware::from_fn_with_state(secret.clone(), webhook::authenticate))
            .layer(DefaultBodyLimit::max(options.webhook_max_body_bytes));
        router = router.merge(events);
    }
    router.fallback(not_found).with_state(state)
}

async fn metrics(State(exporter): State<SharedExporter>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let exposition = exporter.lock().exposition(now_ms());
    // Encoding happens after the lock is released.
    let body = exposition.render(format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn landing(State(exporter): State<SharedExporter>, telemetry_path: String) -> Html<String> {
    let exposition = exporter.lock().exposition(now_ms());
    let mut page = String::new();
    let path = escape_html(&telemetry_path);
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>CodeDeploy Exporter</title></head><body>\
         <h1>CodeDeploy Exporter</h1><p>Version {}. Deployment SLIs and DORA metrics from AWS CodeDeploy.</p>\
         <ul><li><a href=\"{path}\">Metrics</a></li><li><a href=\"/-/healthy\">Health</a></li>\
         <li><a href=\"/-/ready\">Readiness</a></li></ul>\
         <h2>Deployment groups</h2><table border=\"1\" cellpadding=\"4\"><tr><th>Account</th><th>Region</th>\
         <th>Application</th><th>Group</th><th>In progress</th><th>Succeeded</th><th>Failed</th><th>Stopped</th>\
         <th>Success ratio (7d)</th></tr>",
        exposition.version
    );
    for group in &exposition.ledger.groups {
        let finished = |status| -> u64 {
            group.stats.deployments.iter().filter(|((_, s), _)| *s == status).map(|(_, n)| n).sum()
        };
        let [failed, stopped, succeeded] = FINISHED.map(finished);
        let ratio = group
            .windows
            .iter()
            .find(|w| w.window == "7d")
            .map(|w| w.success_ratio)
            .filter(|r| !r.is_nan())
            .map_or_else(|| "–".to_owned(), |r| format!("{:.1}%", r * 100.0));
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape_html(&group.key.account_id),
            escape_html(&group.key.region),
            escape_html(&group.key.application),
            escape_html(&group.key.deployment_group),
            group.in_progress,
            succeeded,
            failed,
            stopped,
            ratio
        );
    }
    page.push_str("</table></body></html>\n");
    Html(page)
}

/// Serves until `shutdown` fires, then lets in-flight requests finish for at
/// most `grace` before returning.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let server = axum::serve(listener, router).with_graceful_shutdown(shutdown.clone().cancelled_owned());
    tokio::select! {
        result = server => result,
        _ = async { shutdown.cancelled().await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace = ?grace, "in-flight requests did not finish in time; closing them");
            Ok(())
        }
    }
}

/// 404 with a hint, for anything unrouted.
async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, "not found; see / for the endpoints\n")
}
