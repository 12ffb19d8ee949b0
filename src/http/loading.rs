//! The HTTP face while `serve` loads: the store, then the `--replay` files
//! and `demo`'s history, all before the ledger can be shown. Loading a large
//! store or gigabytes of history takes minutes; during them the process is
//! alive and says so, instead of refusing connections:
//!
//! - `/-/healthy` answers 200, so a liveness probe does not restart it;
//! - `/-/ready` and `/` answer 503 with what is being loaded;
//! - `/metrics` shows the exporter's own series, `codedeploy_exporter_build_info`,
//!   the `process_*` series and `codedeploy_exporter_preload_remaining_bytes`,
//!   so Prometheus sees the target up and a large load is never silent;
//! - everything else, the webhook included, answers 503 with `Retry-After`:
//!   its senders (SNS, EventBridge API destinations) retry later.
//!
//! The same listeners then serve the full router: their sockets are cloned,
//! so a connection waiting in the backlog at the hand-over is kept.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::HttpOptions;
use crate::metrics::{ExporterMetrics, Exposition, Format};

/// How long a webhook sender is asked to wait before trying again.
const RETRY_AFTER_SECONDS: u64 = 5;

/// How long the hand-over waits for requests in flight on the loading server.
const HAND_OVER_GRACE: Duration = Duration::from_secs(2);

/// What is being loaded, for the answers above. Written by the loading thread,
/// read by the requests; a short lock, never held while loading.
#[derive(Debug, Default)]
pub struct LoadProgress(Mutex<Progress>);

#[derive(Debug, Default, Clone)]
struct Progress {
    /// What is being loaded, as `/-/ready` says it.
    phase: String,
    /// Bytes of the `--replay` files still to read, once known.
    preload_remaining_bytes: Option<u64>,
}

impl LoadProgress {
    fn read(&self) -> Progress {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn update(&self, change: impl FnOnce(&mut Progress)) {
        change(&mut self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
    }

    pub fn phase(&self, phase: impl Into<String>) {
        let phase = phase.into();
        self.update(|progress| progress.phase = phase);
    }

    pub fn preload_remaining(&self, bytes: u64) {
        self.update(|progress| progress.preload_remaining_bytes = Some(bytes));
    }
}

/// The loading servers, one per listener, until [`Loading::hand_over`].
#[derive(Debug)]
pub struct Loading {
    servers: JoinSet<std::io::Result<()>>,
    stop: CancellationToken,
}

impl Loading {
    /// Starts answering on a clone of every listener.
    pub fn serve(
        listeners: &[std::net::TcpListener],
        options: &HttpOptions,
        progress: Arc<LoadProgress>,
    ) -> std::io::Result<Loading> {
        let router = super::with_web_auth(router(progress, &options.telemetry_path), options);
        let stop = CancellationToken::new();
        let mut servers = JoinSet::new();
        for listener in listeners {
            let clone = TcpListener::from_std(listener.try_clone()?)?;
            tracing::info!(probes = %clone.local_addr()?, "loading; health checks and the exporter's own metrics are answered meanwhile");
            servers.spawn(super::serve(clone, router.clone(), options.tls(), stop.clone(), HAND_OVER_GRACE));
        }
        Ok(Loading { servers, stop })
    }

    /// Stops answering (after the requests in flight) and gives the sockets
    /// back for the full router.
    pub async fn hand_over(mut self) {
        self.stop.cancel();
        while let Some(result) = self.servers.join_next().await {
            if let Ok(Err(error)) | Err(error) = result.map_err(std::io::Error::other) {
                tracing::warn!(%error, "the loading server failed");
            }
        }
    }
}

fn router(progress: Arc<LoadProgress>, telemetry_path: &str) -> Router {
    let (ready, landing, metrics) = (progress.clone(), progress.clone(), progress);
    Router::new()
        .route(telemetry_path, get(move |headers| own_metrics(metrics.clone(), headers)))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(move || async move { not_ready(&ready) }))
        .route("/", get(move || async move { not_ready(&landing) }))
        .fallback(|| async {
            let mut response =
                (StatusCode::SERVICE_UNAVAILABLE, "Loading the store and history; try again shortly\n").into_response();
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            response
        })
}

fn not_ready(progress: &LoadProgress) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("Not ready: loading: {}\n", progress.read().phase)).into_response()
}

async fn own_metrics(progress: Arc<LoadProgress>, headers: HeaderMap) -> Response {
    let format = Format::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let exporter = ExporterMetrics { preload_remaining_bytes: progress.read().preload_remaining_bytes, ..Default::default() };
    let mut exposition = Exposition::without_ledger(exporter, Default::default());
    exposition.process = crate::metrics::ProcessMetrics::read();
    let body = exposition.render(format);
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}
