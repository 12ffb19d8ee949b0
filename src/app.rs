//! Builds the running exporter and owns its start-up and shutdown order.
//!
//! Start: bind (answering health checks while loading) → open the store →
//! restore the ledger → preload (`--replay`, demo history) → writer, sources,
//! HTTP. Shutdown (SIGTERM): HTTP stops
//! accepting and finishes in-flight requests, sources stop, the writer folds
//! and commits what is still queued, all within `--shutdown.timeout`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServeConfig;
use crate::http::loading::{LoadProgress, Loading};
use crate::http::AppState;
use crate::ingest::{now_ms, Exporter, IngestHandle, SharedExporter, Writer, WriterOptions};
use crate::metrics::Source;
use crate::simulator::Fleet;
use crate::sources::{demo, replay};
use crate::store::{RedbStore, Store, Stored};

/// How often finished deployments are checked against the settle time.
const SETTLE_INTERVAL: Duration = Duration::from_secs(1);
/// Most messages folded into one commit.
const MAX_BATCH: usize = 1024;

/// The simulated fleet `demo` runs on.
pub struct DemoFeed {
    pub fleet: Fleet,
    pub history_days: u32,
}

pub struct App {
    config: ServeConfig,
    /// One per `--web.listen-address`, in the order given.
    listeners: Vec<TcpListener>,
    exporter: SharedExporter,
    writer: Writer,
    ingest: IngestHandle,
    demo: Option<Fleet>,
    /// Whether the poller's first backfill is over (see [`App::backfilled`]).
    backfilled: (watch::Sender<bool>, watch::Receiver<bool>),
}

impl App {
    /// Binds the listeners, then opens the store and restores from it and
    /// loads `--replay` files (and the demo history), answering health checks
    /// meanwhile (see [`crate::http::loading`]).
    pub async fn build(config: ServeConfig, demo: Option<DemoFeed>) -> anyhow::Result<App> {
        // Bound first: a taken address fails at once, before minutes of loading.
        let mut sockets = Vec::with_capacity(config.listen_addresses.len());
        for address in &config.listen_addresses {
            let socket = std::net::TcpListener::bind(address)
                .and_then(|socket| socket.set_nonblocking(true).map(|()| socket))
                .with_context(|| format!("binding --web.listen-address {address}"))?;
            sockets.push(socket);
        }
        let progress = Arc::new(LoadProgress::default());
        let loading = Loading::serve(&sockets, &config.http, progress.clone())?;
        let (config, loaded) = tokio::task::spawn_blocking(move || {
            let loaded = load(&config, demo, &progress);
            (config, loaded)
        })
        .await
        .context("loading the store and history failed")?;
        let Loaded { store, exporter, fleet, new_store } = loaded?;
        loading.hand_over().await;
        let exporter = SharedExporter::new(exporter);
        let options = WriterOptions {
            settle_interval: SETTLE_INTERVAL,
            retention_ms: config.retention_ms,
            max_batch: MAX_BATCH,
        };
        let (writer, ingest) = Writer::new(exporter.clone(), store, options);
        let listeners = sockets.into_iter().map(TcpListener::from_std).collect::<std::io::Result<Vec<_>>>()?;
        // Without AWS sources there is no backfill to wait for. With them, the
        // backfill is pending before the server can answer a probe.
        let polls = config.aws.as_ref().is_some_and(|aws| aws.has_sources());
        let backfilled = watch::channel(!polls);
        if polls {
            exporter.readiness().backfill_pending();
            if new_store {
                exporter.readiness().hold_history_until_backfilled();
            }
        }
        Ok(App { config, listeners, exporter, writer, ingest, demo: fleet, backfilled })
    }

    /// The address of the first listener (the one tests and single-address set-ups use).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listeners[0].local_addr()
    }

    pub fn exporter(&self) -> SharedExporter {
        self.exporter.clone()
    }

    /// Becomes true once the poller's first backfill is over in every scope
    /// (true from the start without AWS sources); what `/-/ready` waits for,
    /// next to the store being loaded.
    pub fn backfilled(&self) -> watch::Receiver<bool> {
        self.backfilled.1.clone()
    }

    /// Serves until `shutdown` is cancelled, then stops everything within the
    /// configured shutdown timeout.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App { config, listeners, exporter, writer, ingest, demo, backfilled } = self;
        let writer = tokio::spawn(writer.run());
        // Without a backfill to wait for, the watch starts out true and there is nothing to do.
        if !*backfilled.1.borrow() {
            let mut backfill_over = backfilled.1.clone();
            let (ingest, readiness) = (ingest.clone(), exporter.readiness().clone());
            tokio::spawn(async move {
                // An error means the sources are gone (shutdown): nothing to be ready for.
                if backfill_over.wait_for(|done| *done).await.is_ok() {
                    // Through the writer, so that it is committed before anyone
                    // is told. A failed commit keeps it pending, and readiness
                    // waits for the commits to succeed anyway.
                    let _ = ingest.end_of_backfill().await;
                    readiness.backfill_done();
                }
            });
        }
        let sources = TaskTracker::new();
        let demo_app = demo.as_ref().map(Fleet::application);
        if let Some(fleet) = demo {
            sources.spawn(demo::run(ingest.clone(), fleet, shutdown.clone()));
        }
        // Without a queue or a poller nothing is started, so no AWS
        // configuration is loaded (no credential, region or instance-metadata lookup).
        if let Some(aws) = config.aws.clone().filter(|aws| aws.has_sources()) {
            let context = crate::sources::aws::SourceContext {
                ingest: ingest.clone(),
                exporter: exporter.clone(),
                webhook: config.http.webhook_enabled(),
                settle_time_ms: config.settle_time_ms,
                backfilled: backfilled.0,
            };
            sources.spawn(crate::sources::aws::run_sources(aws, context, sources.clone(), shutdown.clone()));
        }
        if config.lead_time.resolver_enabled() {
            sources.spawn(crate::sources::commits::start(
                config.lead_time.clone(),
                config.aws.as_ref().and_then(|a| a.endpoint_url.clone()),
                exporter.clone(),
                ingest.clone(),
                shutdown.clone(),
            ));
        }
        sources.close();

        let router = crate::http::router(AppState { exporter, ingest, demo_app }, &config.http);
        let mut servers = JoinSet::new();
        for listener in listeners {
            let address = listener.local_addr()?;
            tracing::info!(%address, telemetry_path = %config.http.telemetry_path,
                webhook = config.http.webhook_enabled(), tls = config.http.tls().is_some(), "listening");
            let (router, tls, shutdown) = (router.clone(), config.http.tls(), shutdown.clone());
            servers.spawn(crate::http::serve(listener, router, tls, shutdown, config.shutdown_timeout));
        }
        // The router holds an ingest handle: the writer ends only once every copy is gone.
        drop(router);
        // The first server to fail stops the others (through the shutdown
        // below); its error is the one reported.
        let mut served = Ok(());
        while let Some(result) = servers.join_next().await {
            let result = result.map_err(std::io::Error::other).and_then(|r| r);
            if served.is_ok() && result.is_err() {
                shutdown.cancel();
                served = result;
            }
        }
        // Whatever stopped the server stops the sources too; once they and the
        // server have dropped their handles, the writer commits and ends.
        shutdown.cancel();
        let drained = async {
            sources.wait().await;
            writer.await
        };
        match tokio::time::timeout(config.shutdown_timeout, drained).await {
            Ok(Ok(())) => tracing::info!("stopped; everything acknowledged is committed"),
            Ok(Err(panic)) => tracing::error!(%panic, "the writer failed"),
            Err(_) => tracing::warn!("the writer did not finish within the shutdown timeout"),
        }
        served.context("HTTP server failed")
    }
}

/// What loading leaves for the running exporter.
struct Loaded {
    store: Option<Box<dyn Store>>,
    exporter: Exporter,
    fleet: Option<Fleet>,
    /// The store was empty: the history is withheld until the first backfill.
    new_store: bool,
}

/// Opens the store and restores from it, loads `--replay` files and the demo
/// history, telling `progress` how far it has got. Blocking: run off the runtime.
fn load(config: &ServeConfig, demo: Option<DemoFeed>, progress: &LoadProgress) -> anyhow::Result<Loaded> {
    progress.phase("the store");
    let store: Option<Box<dyn Store>> = match &config.storage_path {
        Some(path) => Some(Box::new(RedbStore::open(path)?)),
        None => None,
    };
    let started = std::time::Instant::now();
    let stored = match &store {
        Some(store) => store.load()?,
        None => Stored::default(),
    };
    let restored = stored.records.len();
    let new_store = stored.groups.is_empty() && stored.settled.is_empty();
    let mut exporter = Exporter::restore(config.settle_time_ms, stored)
        .with_lead_time(config.lead_time.ledger.clone())
        .with_group_labels(config.group_labels.clone());
    exporter.resume(now_ms());
    // What the store loaded is rebuilt into the ledger and freed by now.
    crate::heap::release_freed();
    if let Some(path) = &config.storage_path {
        tracing::info!(path = %path.display(), deployments = restored, elapsed = ?started.elapsed(), "store opened");
    }
    if config.http.webhook_enabled() {
        exporter.register(Source::Webhook);
    }
    if let Some(aws) = &config.aws {
        if !aws.queues.is_empty() {
            exporter.register(Source::Sqs);
        }
        if aws.poll_interval.is_some() {
            exporter.register(Source::Poller);
        }
    }
    if !config.replay.is_empty() || demo.is_some() {
        exporter.register(Source::Replay);
    }
    if config.lead_time.resolver_enabled() {
        exporter.register(Source::LeadTime);
    }
    let now = now_ms();
    // History is old news: no late event is coming for it, so it is
    // ingested as if long ago and settles at once. Deployments restored
    // from the store keep waiting their settle time.
    let preloaded_at = exporter.preload_time(now);
    let sizes: Vec<u64> = config.replay.iter().map(|path| std::fs::metadata(path).map(|m| m.len()).unwrap_or_default()).collect();
    for (index, path) in config.replay.iter().enumerate() {
        let (bytes, later) = (sizes[index], sizes[index + 1..].iter().sum::<u64>());
        progress.phase(format!("--replay file {}", path.display()));
        progress.preload_remaining(bytes + later);
        tracing::info!(file = %path.display(), bytes, "preloading");
        let mut report = |read: usize| progress.preload_remaining(bytes.saturating_sub(read as u64) + later);
        let rejections = replay::replay_file_reporting(&mut exporter, path, Source::Replay, preloaded_at, &mut report)
            .with_context(|| format!("reading --replay file {}", path.display()))?;
        for rejection in &rejections {
            tracing::warn!(%rejection, "preload message rejected");
        }
        tracing::info!(file = %path.display(), rejected = rejections.len(), "preloaded");
    }
    let fleet = demo.map(|DemoFeed { mut fleet, history_days }| {
        progress.phase("the demo history");
        exporter.register(Source::Demo);
        let loaded = demo::preload(&mut exporter, &mut fleet, history_days, now, preloaded_at);
        tracing::info!(messages = loaded, days = history_days, "demo history loaded");
        fleet
    });
    exporter.settle(now, false);
    // The operator's own history is loaded whole; what arrives from now on is bounded.
    exporter.set_limits(config.limits);
    Ok(Loaded { store, exporter, fleet, new_store })
}
