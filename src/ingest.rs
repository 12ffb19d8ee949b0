//! The one path every message takes: decode → fold into the ledger → count the
//! outcome. Sources (webhook, replay, demo) hand raw bytes here and get back
//! what became of them.
//!
//! [`Exporter`] is synchronous and owns all state; [`SharedExporter`] puts it
//! behind a `std::sync::Mutex` for `serve`. A std mutex rather than tokio's:
//! nothing awaits while holding it, and every critical section is a fold or a
//! snapshot copy, both short.

use std::sync::{Arc, Mutex, MutexGuard};

use crate::decode::{self, DecodeError, Decoded};
use crate::domain::Millis;
use crate::ledger::Ledger;
use crate::metrics::{ExporterMetrics, Exposition, Outcome, Source};

/// The exporter's version, as shown by `codedeploy_exporter_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, Clone)]
pub struct Exporter {
    ledger: Ledger,
    metrics: ExporterMetrics,
    defaults: Location,
}

/// Account and region to assume for messages that do not carry them (API
/// output has neither); `replay --account/--region` sets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub account: Option<String>,
    pub region: Option<String>,
}

impl Exporter {
    pub fn new(settle_time_ms: Millis) -> Exporter {
        Exporter {
            ledger: Ledger::new(settle_time_ms),
            metrics: ExporterMetrics::default(),
            defaults: Location::default(),
        }
    }

    pub fn with_defaults(mut self, defaults: Location) -> Exporter {
        self.defaults = defaults;
        self
    }

    /// Declares a source so its series exist from the first scrape.
    pub fn register(&mut self, source: Source) {
        self.metrics.register(source);
    }

    /// Decodes one message and folds it in. The error is the reason it was rejected.
    pub fn ingest(&mut self, source: Source, bytes: &[u8], now: Millis) -> Result<Outcome, DecodeError> {
        self.fold(source, decode::decode(bytes), now)
    }

    /// Same for a message already parsed as JSON (an element of a JSON array file).
    pub fn ingest_value(
        &mut self,
        source: Source,
        value: serde_json::Value,
        now: Millis,
    ) -> Result<Outcome, DecodeError> {
        self.fold(source, decode::decode_value(value), now)
    }

    fn fold(
        &mut self,
        source: Source,
        mut decoded: Result<Decoded, DecodeError>,
        now: Millis,
    ) -> Result<Outcome, DecodeError> {
        if let Ok(Decoded::Observations(observations)) = &mut decoded {
            for deployment in observations.iter_mut().map(|o| &mut o.deployment) {
                deployment.account = deployment.account.take().or_else(|| self.defaults.account.clone());
                deployment.region = deployment.region.take().or_else(|| self.defaults.region.clone());
            }
        }
        let outcome = match &decoded {
            Err(_) => Outcome::Rejected,
            Ok(Decoded::Ignored(_)) => Outcome::Ignored,
            Ok(Decoded::Observations(observations)) => {
                let mut changed = false;
                for observation in observations {
                    changed |= self.ledger.apply(observation, now);
                    if let Some(at) = observation.event_time {
                        self.metrics.observe_lag(source, at, now);
                    }
                }
                if changed {
                    Outcome::Applied
                } else {
                    Outcome::Duplicate
                }
            }
        };
        self.metrics.count(source, outcome, now);
        decoded.map(|_| outcome)
    }

    /// Counts what is ready to be counted (see [`Ledger::settle`]).
    pub fn settle(&mut self, now: Millis, force: bool) -> usize {
        self.ledger.settle(now, force)
    }

    pub fn latest_time(&self) -> Option<Millis> {
        self.ledger.latest_time()
    }

    /// A copy of everything `/metrics` shows, windows anchored at `now`.
    pub fn exposition(&self, now: Millis) -> Exposition {
        Exposition { ledger: self.ledger.snapshot(now), exporter: self.metrics.clone(), version: VERSION }
    }
}

/// A cheap-to-clone handle on the exporter for the async side.
#[derive(Debug, Clone)]
pub struct SharedExporter(Arc<Mutex<Exporter>>);

impl SharedExporter {
    pub fn new(exporter: Exporter) -> SharedExporter {
        SharedExporter(Arc::new(Mutex::new(exporter)))
    }

    /// Locks the exporter. A panic while holding the lock cannot leave the
    /// ledger half-updated in a way later folds would misread (every join is
    /// self-contained), so a poisoned lock is recovered rather than propagated.
    pub fn lock(&self) -> MutexGuard<'_, Exporter> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Ingests one message and counts whatever it made ready.
    pub fn ingest(&self, source: Source, bytes: &[u8], now: Millis) -> Result<Outcome, DecodeError> {
        let mut exporter = self.lock();
        let outcome = exporter.ingest(source, bytes, now);
        exporter.settle(now, false);
        outcome
    }
}

/// The wall clock in milliseconds since the epoch.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}
