//! Builds the running exporter and owns its start-up and shutdown order:
//! preload → bind → background tasks (settle timer, demo feed) → HTTP; on
//! shutdown, HTTP drains within the grace period, then the tasks stop.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServeConfig;
use crate::ingest::{now_ms, Exporter, SharedExporter};
use crate::metrics::Source;
use crate::simulator::Fleet;
use crate::sources::{demo, replay};

/// How often finished deployments are checked against the settle time.
const SETTLE_INTERVAL: Duration = Duration::from_secs(1);

/// The simulated fleet `demo` runs on.
pub struct DemoFeed {
    pub fleet: Fleet,
    pub history_days: u32,
}

pub struct App {
    config: ServeConfig,
    listener: TcpListener,
    exporter: SharedExporter,
    demo: Option<Fleet>,
}

impl App {
    /// Loads `--replay` files (and the demo history), then binds the listener.
    pub async fn build(config: ServeConfig, demo: Option<DemoFeed>) -> anyhow::Result<App> {
        let mut exporter = Exporter::new(config.settle_time_ms);
        if config.http.webhook_secret.is_some() {
            exporter.register(Source::Webhook);
        }
        if !config.replay.is_empty() || demo.is_some() {
            exporter.register(Source::Replay);
        }
        let now = now_ms();
        for path in &config.replay {
            let rejections = replay::replay_file(&mut exporter, path, Source::Replay, now)
                .with_context(|| format!("reading --replay file {}", path.display()))?;
            for rejection in &rejections {
                tracing::warn!(%rejection, "preload message rejected");
            }
            tracing::info!(file = %path.display(), rejected = rejections.len(), "preloaded");
        }
        exporter.settle(now, true);
        let exporter = SharedExporter::new(exporter);
        let fleet = demo.map(|DemoFeed { mut fleet, history_days }| {
            exporter.lock().register(Source::Demo);
            let loaded = demo::preload(&exporter, &mut fleet, history_days);
            tracing::info!(messages = loaded, days = history_days, "demo history loaded");
            fleet
        });
        let listener = TcpListener::bind(config.listen_address)
            .await
            .with_context(|| format!("binding --web.listen-address {}", config.listen_address))?;
        Ok(App { config, listener, exporter, demo: fleet })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn exporter(&self) -> SharedExporter {
        self.exporter.clone()
    }

    /// Serves until `shutdown` is cancelled, then stops everything within the
    /// configured shutdown timeout.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let tasks = TaskTracker::new();
        tasks.spawn(settle_periodically(self.exporter.clone(), shutdown.clone()));
        if let Some(fleet) = self.demo {
            tasks.spawn(demo::run(self.exporter.clone(), fleet, shutdown.clone()));
        }
        tasks.close();

        let address = self.listener.local_addr()?;
        tracing::info!(%address, telemetry_path = %self.config.http.telemetry_path,
            webhook = self.config.http.webhook_secret.is_some(), "listening");
        let router = crate::http::router(self.exporter.clone(), &self.config.http);
        let served = crate::http::serve(self.listener, router, shutdown.clone(), self.config.shutdown_timeout).await;
        // Whatever stopped the server stops the background tasks too.
        shutdown.cancel();
        if tokio::time::timeout(self.config.shutdown_timeout, tasks.wait()).await.is_err() {
            tracing::warn!("background tasks did not stop within the shutdown timeout");
        }
        tracing::info!("stopped");
        served.context("HTTP server failed")
    }
}

async fn settle_periodically(exporter: SharedExporter, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(SETTLE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => { exporter.lock().settle(now_ms(), false); }
        }
    }
}
