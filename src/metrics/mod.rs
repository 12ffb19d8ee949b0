//! Rendering: a snapshot of the ledger plus the exporter's own metrics,
//! written at scrape time by one writer in chunks ([`Exposition::write`]).
//!
//! Families are emitted sorted by name and series sorted by labels, so the
//! output is deterministic (golden files, `replay`). Prometheus text 0.0.4 is
//! the default; OpenMetrics (with the deployment id as an exemplar on the
//! duration histogram) when the scraper asks for it.

pub mod demo_app;
mod encoder;
pub mod exporter;
mod families;
mod process;
mod unauthenticated;

use std::collections::BTreeMap;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::Compression;

pub use encoder::CHUNK_BYTES;
pub use exporter::{ExporterMetrics, Outcome, Source};
pub use process::ProcessMetrics;
pub use unauthenticated::Unauthenticated;

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

/// The body's content coding, from the scraper's `Accept-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    /// gzip at level 1: at 1k groups it compresses the body 20-fold in a
    /// seventh of level 6's time (docs/performance.md).
    Gzip,
}

impl Encoding {
    /// gzip when `Accept-Encoding` accepts it: `gzip` listed without `q=0`,
    /// or, when `gzip` is not listed at all, `*` without `q=0`.
    pub fn negotiate(accept_encoding: Option<&str>) -> Encoding {
        // (coding, accepted) for each listed coding.
        let listed = accept_encoding.into_iter().flat_map(|header| header.split(',')).map(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (name, !refused)
        });
        let (mut gzip, mut any) = (None, None);
        for (name, accepted) in listed {
            if name.eq_ignore_ascii_case("gzip") {
                gzip = Some(accepted);
            } else if name == "*" {
                any = Some(accepted);
            }
        }
        match gzip.or(any) {
            Some(true) => Encoding::Gzip,
            _ => Encoding::Identity,
        }
    }

    /// The `Content-Encoding` header value, if any.
    pub fn content_encoding(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
        }
    }
}

/// Everything `/metrics` shows, copied out of the shared state.
#[derive(Debug, Clone)]
pub struct Exposition {
    pub ledger: Snapshot,
    /// The `codedeploy_deployment_group_info` rows, one per group of `ledger`.
    pub group_info: crate::group_info::InfoSeries,
    pub exporter: ExporterMetrics,
    /// Requests refused before they were authenticated (in memory only).
    pub unauthenticated: BTreeMap<(Source, &'static str), u64>,
    pub version: &'static str,
    /// The latest store commit failed, so the ledger in memory holds state the
    /// store does not: `ledger` is left empty and the families drawn from it
    /// are not rendered (see [`crate::ingest::Exporter::exposition`]).
    pub ledger_withheld: bool,
    /// The `process_*` figures, filled in by the server at scrape time; `None`
    /// in `replay`, whose output depends on its input alone.
    pub process: Option<ProcessMetrics>,
    /// The simulated application's `demo_app_*` figures, filled in by the
    /// server at scrape time in `demo` only.
    pub demo_app: Option<demo_app::DemoApp>,
}

impl Exposition {
    /// The exporter's own series alone, no deployment series: while the
    /// ledger is withheld, or not loaded yet.
    pub fn without_ledger(
        exporter: ExporterMetrics,
        unauthenticated: BTreeMap<(Source, &'static str), u64>,
    ) -> Exposition {
        Exposition {
            ledger: Snapshot::default(),
            group_info: crate::group_info::InfoSeries::default(),
            exporter,
            unauthenticated,
            version: crate::ingest::VERSION,
            ledger_withheld: true,
            process: None,
            demo_app: None,
        }
    }

    /// Writes the body into `sink` in chunks of about [`CHUNK_BYTES`]: the
    /// body is never held whole, whatever the number of groups.
    pub fn write(&self, format: Format, sink: &mut dyn Write) -> io::Result<()> {
        let mut encoder = encoder::Encoder::new(format, sink);
        families::write_all(self, &mut encoder)?;
        encoder.finish()
    }

    /// The body exactly as `/metrics` sends it: [`Exposition::write`], through
    /// gzip when the scraper asked for it.
    pub fn write_encoded(&self, format: Format, encoding: Encoding, sink: &mut dyn Write) -> io::Result<()> {
        match encoding {
            Encoding::Identity => self.write(format, sink),
            Encoding::Gzip => {
                let mut gzip = GzEncoder::new(sink, Compression::fast());
                self.write(format, &mut gzip)?;
                gzip.finish().map(drop)
            }
        }
    }

    /// Serves one scrape as `/metrics` does: the body into `sink`, then the
    /// snapshot dropped and the heap it used handed back to the system.
    pub fn scrape(self, format: Format, encoding: Encoding, sink: &mut dyn Write) -> io::Result<()> {
        let written = self.write_encoded(format, encoding, sink);
        drop(self);
        crate::heap::release_freed();
        written
    }

    /// The whole body as one string (tests and tools; the server and `replay` stream it).
    pub fn render(&self, format: Format) -> String {
        let mut body = Vec::new();
        // Writing into a Vec cannot fail.
        let written = self.write(format, &mut body);
        debug_assert!(written.is_ok());
        String::from_utf8(body).expect("the writer writes only UTF-8 text")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn gzip_is_used_only_when_the_scraper_accepts_it() {
        use super::Encoding::{Gzip, Identity};
        let cases = [
            (None, Identity),
            (Some("gzip"), Gzip),
            (Some("deflate, GZIP;q=0.5"), Gzip),
            (Some("gzip;q=0"), Identity),
            (Some("*"), Gzip),
            (Some("gzip;q=0, *"), Identity),
            (Some("identity"), Identity),
        ];
        for (header, expected) in cases {
            assert_eq!(super::Encoding::negotiate(header), expected, "{header:?}");
        }
    }

    use std::path::Path;

    use super::*;
    use crate::ingest::Exporter;
    use crate::sources::replay::replay_file;

    /// Records the size of every write it is handed.
    struct Writes(Vec<usize>, Vec<u8>);

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.push(bytes.len());
            self.1.extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_body_reaches_the_sink_in_bounded_chunks() {
        let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples");
        let mut exporter = Exporter::new(0);
        let mut files: Vec<_> = std::fs::read_dir(samples).expect("samples").map(|e| e.expect("entry").path()).collect();
        files.sort();
        for file in files {
            replay_file(&mut exporter, &file, Source::Replay, 0).expect("a readable sample");
        }
        exporter.settle(0, true);
        let exposition = exporter.exposition(exporter.latest_time().unwrap_or(0));
        for format in [Format::Text, Format::OpenMetrics] {
            let mut sink = Writes(Vec::new(), Vec::new());
            exposition.write(format, &mut sink).expect("a Vec takes every write");
            let whole = exposition.render(format);
            assert_eq!(sink.1, whole.as_bytes());
            assert!(sink.0.len() >= 2, "{} bytes in {:?}", whole.len(), sink.0);
            // A chunk closes at the first group boundary past CHUNK_BYTES.
            assert!(sink.0.iter().all(|n| *n < CHUNK_BYTES + 16 * 1024), "{:?}", sink.0);
        }
    }
}
