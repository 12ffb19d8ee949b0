//! Rendering: a snapshot of the ledger plus the exporter's own metrics,
//! written at scrape time by one writer in chunks ([`Exposition::write`]).
//!
//! Families are emitted sorted by name and series sorted by labels, so the
//! output is deterministic (golden files, `replay`). Prometheus text 0.0.4 is
//! the default; OpenMetrics (with the deployment id as an exemplar on the
//! duration histogram) when the scraper asks for it.

mod encoder;
pub mod exporter;
mod families;

use std::io::{self, Write};

pub use encoder::CHUNK_BYTES;
pub use exporter::{ExporterMetrics, Outcome, Source};

use crate::ledger::Snapshot;

/// Content type of the Prometheus text format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
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
    /// Writes the body into `sink` in chunks of about [`CHUNK_BYTES`]: the
    /// body is never held whole, whatever the number of groups.
    pub fn write(&self, format: Format, sink: &mut dyn Write) -> io::Result<()> {
        let mut encoder = encoder::Encoder::new(format, sink);
        families::write_all(self, &mut encoder)?;
        encoder.finish()
    }

    /// The whole body as one string (tests, the landing of small exports).
    pub fn render(&self, format: Format) -> String {
        let mut body = Vec::new();
        // Writing into a Vec cannot fail.
        let written = self.write(format, &mut body);
        debug_assert!(written.is_ok());
        String::from_utf8(body).expect("the writer writes only UTF-8 text")
    }
}
