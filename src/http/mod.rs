//! The HTTP face: `/metrics` (or `--web.telemetry-path`), a landing page at
//! `/`, `/-/healthy`, `/-/ready`, and the webhook at `POST /events` when it
//! can authenticate senders (a shared secret, or SNS signature verification).
//!
//! Over plain HTTP, or HTTPS when the web config file (`--web.config.file`,
//! exporter-toolkit format) has a `tls_server_config`; its basic auth, headers
//! and rate limit wrap every route ([`auth`]).

pub mod auth;
mod landing;
pub mod loading;
pub mod rate_limit;
pub mod security;
pub mod tls;
pub mod web_config;

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http_body::Frame;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::ingest::{now_ms, IngestHandle, SharedExporter};
use crate::metrics::{Encoding, Exposition, Format};
use crate::simulator::Application;
use crate::sources::webhook::{self, Secret, Webhook};
use rate_limit::TokenBucket;
pub use security::{SecurityArgs, SecurityError, SecurityOptions};

/// What the router needs from the configuration.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    pub telemetry_path: String,
    /// Without it (and without SNS signature verification) the webhook is
    /// not mounted: it never runs unauthenticated.
    pub webhook_secret: Option<Secret>,
    pub webhook_max_body_bytes: usize,
    /// `--web.config.file`, the webhook's rate limit, SNS subscriptions.
    pub security: SecurityOptions,
}

impl HttpOptions {
    /// Whether `POST /events` is served: something can authenticate to it.
    pub fn webhook_enabled(&self) -> bool {
        self.webhook_secret.is_some() || self.security.sns.as_ref().is_some_and(|s| s.verifies_signatures())
    }

    /// The TLS configuration, when the web config file asks for TLS.
    pub fn tls(&self) -> Option<Arc<rustls::ServerConfig>> {
        self.security.web.as_ref().and_then(|web| web.tls_server.clone())
    }
}

/// What the handlers share: the exporter to read, the writer to submit to.
#[derive(Debug, Clone)]
pub struct AppState {
    pub exporter: SharedExporter,
    pub ingest: IngestHandle,
    /// `demo`'s simulated application, whose figures each scrape adds.
    pub demo_app: Option<Application>,
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
    let snapshots = Snapshots::new(state.exporter.clone(), state.demo_app.clone());
    let landing_snapshots = snapshots.clone();
    let mut router = Router::new()
        .route(&options.telemetry_path, get(move |headers| metrics(snapshots.clone(), headers)))
        .route("/", get(move |headers| landing::landing(landing_snapshots.clone(), landing_path.clone(), headers)))
        // Takes no lock and touches no state: it answers whatever the writer
        // and the scrapes are doing.
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready));
    let events = webhook::routes(Webhook {
        ingest: state.ingest.clone(),
        secret: options.webhook_secret.clone(),
        sns: options.security.sns.clone(),
        limiter: options.security.webhook_rate_limit.map(|(rate, burst)| TokenBucket::new(rate, burst)),
        max_body_bytes: options.webhook_max_body_bytes,
    });
    if let Some(events) = events {
        router = router.merge(events);
    }
    with_web_auth(router.fallback(not_found).with_state(state), options)
}

/// `router` behind the web config file's basic auth, if it has any; the
/// outermost layer, so that it covers every route and the fallback alike.
fn with_web_auth(router: Router, options: &HttpOptions) -> Router {
    match options.security.web.as_deref().and_then(auth::WebAuth::new) {
        Some(web_auth) => router.layer(middleware::from_fn_with_state(Arc::new(web_auth), auth::enforce)),
        None => router,
    }
}

/// 200 once the store is loaded, the backfill done and the latest commit
/// succeeded; 503 with the reason otherwise (see [`Readiness`](crate::ingest::Readiness)).
async fn ready(State(exporter): State<SharedExporter>) -> Response {
    match exporter.readiness().not_ready() {
        None => "Ready\n".into_response(),
        Some(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("Not ready: {reason}\n")).into_response(),
    }
}

/// Chunks of the body in flight between the writer and the connection: with
/// 64 KiB chunks a scrape holds at most this many of them, whatever its size.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Scrapes (`/metrics` and the landing page) snapshotting or rendering at
/// once. A snapshot holds the exporter's lock (~300 ms at 10k groups) and a
/// render keeps a core busy: more at once would only queue on the lock and
/// take CPU from the writer. Two let both Prometheus servers of an HA pair
/// scrape at the same moment; a third waits for a turn.
const CONCURRENT_SCRAPES: usize = 2;

/// Prometheus's default `scrape_timeout`, assumed when a scraper does not
/// send `X-Prometheus-Scrape-Timeout-Seconds`.
const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest scrape timeout honoured: the header is the client's to set,
/// and a connection waiting longer is only a held connection.
const MAX_SCRAPE_TIMEOUT: Duration = Duration::from_secs(120);

/// Snapshots for scrapes, taken on the blocking pool (the exporter's lock may
/// be held by a commit for as long as the disk takes, and must not be waited
/// for on a runtime worker), [`CONCURRENT_SCRAPES`] at a time.
#[derive(Debug, Clone)]
struct Snapshots {
    exporter: SharedExporter,
    demo_app: Option<Application>,
    turns: Arc<Semaphore>,
    /// One snapshot at a time waits for the exporter's lock. Two waiting
    /// would hand the lock from one to the other while the writer waits: with
    /// two scrapes back to back at 10k groups the webhook fell from 21k to
    /// 1k events/s (p99 1.1 s) in the bench; one at a time, the writer gets
    /// its turn between any two snapshots.
    locking: Arc<Semaphore>,
    /// What the landing page shows, as of the latest snapshot (see [`landing`]).
    summary: Arc<std::sync::Mutex<Option<Arc<landing::Summary>>>>,
}

impl Snapshots {
    fn new(exporter: SharedExporter, demo_app: Option<Application>) -> Snapshots {
        Snapshots {
            exporter,
            demo_app,
            turns: Arc::new(Semaphore::new(CONCURRENT_SCRAPES)),
            locking: Arc::new(Semaphore::new(1)),
            summary: Arc::default(),
        }
    }

    /// The latest summary, if taken within `fresh`.
    fn latest_summary(&self, fresh: Duration) -> Option<Arc<landing::Summary>> {
        let latest = self.summary.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        latest.as_ref().filter(|summary| summary.age() <= fresh).cloned()
    }

    fn keep_summary(&self, summary: landing::Summary) -> Arc<landing::Summary> {
        let summary = Arc::new(summary);
        *self.summary.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(summary.clone());
        summary
    }

    /// The exposition as of now, and the turn to hold while rendering it.
    /// Waits at most `patience` in all, for a turn and then for the lock; past
    /// it, the scrape is answered 503 with the reason, before the scraper's
    /// own timeout, rather than left hanging.
    async fn take(&self, patience: Duration) -> Result<(Exposition, OwnedSemaphorePermit), Response> {
        let deadline = tokio::time::Instant::now() + patience;
        let busy = |reason: &str| (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response();
        let turn = match tokio::time::timeout_at(deadline, self.turns.clone().acquire_owned()).await {
            Ok(Ok(turn)) => turn,
            // The semaphore is never closed; a timeout is the only way here.
            Ok(Err(_)) | Err(_) => {
                return Err(busy("Too many scrapes at once: this one waited its scrape timeout's half for a turn"))
            }
        };
        let locked = "The exporter's state stayed locked (by a store commit, or other scrapes' snapshots) \
                      for half this scrape's timeout";
        let locking = match tokio::time::timeout_at(deadline, self.locking.clone().acquire_owned()).await {
            Ok(Ok(locking)) => locking,
            Ok(Err(_)) | Err(_) => return Err(busy(locked)),
        };
        let (send, taken) = oneshot::channel();
        let (exporter, demo_app) = (self.exporter.clone(), self.demo_app.clone());
        // The permits go with the thread, not the request: a scrape that gave
        // up still has a thread waiting for the lock, and the bounds are on
        // those threads. The turn comes back with the snapshot, for the render.
        tokio::task::spawn_blocking(move || {
            let now = now_ms();
            let exposition = exporter.exposition(now, || !send.is_closed());
            drop(locking);
            if let Some(mut exposition) = exposition {
                exposition.process = crate::metrics::ProcessMetrics::read();
                exposition.demo_app = demo_app.map(|app| app.figures(now));
                let _ = send.send((exposition, turn));
            }
        });
        match tokio::time::timeout_at(deadline, taken).await {
            Ok(Ok(taken)) => Ok(taken),
            Ok(Err(_)) => Err((StatusCode::INTERNAL_SERVER_ERROR, "The snapshot failed; see the log\n").into_response()),
            Err(_) => Err(busy(locked)),
        }
    }
}

/// How long a scrape may wait for its snapshot: half the timeout Prometheus
/// announces, leaving the other half for the render, or for the 503 to reach
/// Prometheus before it gives up on its own and records no reason.
fn patience(headers: &HeaderMap) -> Duration {
    let announced = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok());
    announced.unwrap_or(DEFAULT_SCRAPE_TIMEOUT).min(MAX_SCRAPE_TIMEOUT) / 2
}

async fn metrics(snapshots: Snapshots, headers: HeaderMap) -> Response {
    let header_text = |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok());
    let format = Format::negotiate(header_text(header::ACCEPT));
    let encoding = Encoding::negotiate(header_text(header::ACCEPT_ENCODING));
    let (exposition, turn) = match snapshots.take(patience(&headers)).await {
        Ok(taken) => taken,
        Err(unavailable) => return unavailable,
    };
    // Encoding happens after the lock is released, on a blocking thread that
    // hands the body over chunk by chunk as the connection takes it.
    let (chunks, body) = mpsc::channel(CHUNKS_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        // Left for the landing page, which then needs no snapshot of its own.
        snapshots.keep_summary(landing::Summary::of(&exposition));
        if let Err(error) = exposition.scrape(format, encoding, &mut ChunkSender(chunks)) {
            tracing::debug!(%error, "scrape abandoned by the client");
        }
    });
    let mut response = Body::new(ChunkBody(body)).into_response();
    let response_headers = response.headers_mut();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    response_headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(coding) = encoding.content_encoding() {
        response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    response
}

/// The writing end: each write becomes a chunk, waiting while the channel is
/// full; a closed channel (the client went away) ends the writing.
struct ChunkSender(mpsc::Sender<Bytes>);

impl std::io::Write for ChunkSender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Bytes::copy_from_slice(bytes))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The response body: the chunks as they come, ending when the writer is done.
struct ChunkBody(mpsc::Receiver<Bytes>);

impl HttpBody for ChunkBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Serves (over TLS when `tls` is given) until `shutdown` fires, then lets
/// in-flight requests finish for at most `grace` before returning.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let stopped = shutdown.clone().cancelled_owned();
    let server = async move {
        match tls {
            Some(config) => {
                let listener = tls::TlsListener::new(listener, config);
                axum::serve(listener, router).with_graceful_shutdown(stopped).await
            }
            None => axum::serve(listener, router).with_graceful_shutdown(stopped).await,
        }
    };
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
