//! Rendering: a snapshot of the ledger plus the exporter's own metrics, encoded
//! with `prometheus-client` by one custom collector at scrape time.
//!
//! Families are emitted sorted by name and series sorted by labels, so the
//! output is deterministic (golden files, `replay`). Prometheus text 0.0.4 is
//! the default; OpenMetrics (with the deployment id as an exemplar on the
//! duration histogram) when the scraper asks for it.

mod collector;
pub mod exporter;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;

pub use exporter::{ExporterMetrics, Outcome, Source};

use crate::ledger::Snapshot;
use collector::SnapshotCollector;

/// Content type of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;
/// Content type of OpenMetrics 1.0.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// OpenMetrics when the `Accept` header asks for it, as Prometheus does
    /// when exemplar storage is enabled; text otherwise.
    pub fn negotiate(accept: Option<&str>) -> Format {
        match accept {
            Some(accept) if accept.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => TEXT_CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Everything `/metrics` shows, copied out of the shared state.
#[derive(Debug, Clone)]
pub struct Exposition {
    pub ledger: Snapshot,
    pub exporter: ExporterMetrics,
    pub version: &'static str,
}

impl Exposition {
    pub fn render(self, format: Format) -> String {
        let openmetrics = format == Format::OpenMetrics;
        let mut registry = Registry::default();
        registry.register_collector(Box::new(SnapshotCollector { exposition: self, openmetrics }));
        let mut out = String::new();
        // Writing into a String cannot fail; the encoders only propagate fmt::Error.
        let encoded = match format {
            Format::Text => prometheus_text::encode(&mut out, &registry),
            Format::OpenMetrics => text::encode(&mut out, &registry),
        };
        debug_assert!(encoded.is_ok());
        out
    }
}
