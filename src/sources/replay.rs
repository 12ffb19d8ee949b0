//! Files of messages: JSON Lines (one message per line) or one whole JSON
//! document (a single message, or an array of messages). Used by the `replay`
//! command and by `serve --replay` to preload history.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::domain::Millis;
use crate::ingest::Exporter;
use crate::metrics::Source;

/// Where in a file a rejected message was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// 1-based line of a JSON Lines file (or 1 for a single-document file).
    Line(usize),
    /// 1-based element of a top-level JSON array.
    Element(usize),
}

/// A message that could not be decoded, reported on stderr and counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub file: PathBuf,
    pub position: Position,
    pub reason: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Position::Line(n) => write!(f, "{}:{}: rejected: {}", self.file.display(), n, self.reason),
            Position::Element(n) => {
                write!(f, "{}: element {}: rejected: {}", self.file.display(), n, self.reason)
            }
        }
    }
}

/// 1-based line of the first non-blank byte: where a one-document file's message starts.
fn first_line_with_content(bytes: &[u8]) -> usize {
    let leading = bytes.iter().take_while(|b| b.is_ascii_whitespace()).filter(|b| **b == b'\n').count();
    leading + 1
}

/// Feeds every message of `path` to the exporter and returns the rejections.
/// Only an unreadable file is an error; bad messages never abort the run.
pub fn replay_file(
    exporter: &mut Exporter,
    path: &Path,
    source: Source,
    now: Millis,
) -> std::io::Result<Vec<Rejection>> {
    replay_file_reporting(exporter, path, source, now, &mut |_| {})
}

/// Same as [`replay_file`], telling `progress` how many of the file's bytes
/// are read, every [`PROGRESS_BYTES`] or so and at the end.
pub fn replay_file_reporting(
    exporter: &mut Exporter,
    path: &Path,
    source: Source,
    now: Millis,
    progress: &mut dyn FnMut(usize),
) -> std::io::Result<Vec<Rejection>> {
    let bytes = std::fs::read(path)?;
    Ok(replay_bytes_reporting(exporter, path, &bytes, source, now, progress))
}

/// How often a long replay logs its progress.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// How many bytes a replay reads between two calls of its progress report.
const PROGRESS_BYTES: usize = 1 << 20;

/// Same as [`replay_file`] for content already in memory.
pub fn replay_bytes(
    exporter: &mut Exporter,
    path: &Path,
    bytes: &[u8],
    source: Source,
    now: Millis,
) -> Vec<Rejection> {
    replay_bytes_reporting(exporter, path, bytes, source, now, &mut |_| {})
}

/// Same as [`replay_file_reporting`] for content already in memory.
pub fn replay_bytes_reporting(
    exporter: &mut Exporter,
    path: &Path,
    bytes: &[u8],
    source: Source,
    now: Millis,
    progress: &mut dyn FnMut(usize),
) -> Vec<Rejection> {
    let reject = |position, reason: String| Rejection { file: path.to_owned(), position, reason };
    let mut rejections = Vec::new();
    // A whole document first: a pretty-printed API output spans many lines. A
    // JSON Lines file with more than one message fails this parse (trailing
    // characters) and is read line by line instead.
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Array(elements)) => {
            for (index, element) in elements.into_iter().enumerate() {
                if let Err(e) = exporter.ingest_value(source, element, now) {
                    rejections.push(reject(Position::Element(index + 1), e.to_string()));
                }
            }
        }
        Ok(_) => {
            if let Err(e) = exporter.ingest(source, bytes, now) {
                rejections.push(reject(Position::Line(first_line_with_content(bytes)), e.to_string()));
            }
        }
        Err(_) => {
            // A file of gigabytes takes minutes: report how far it has got.
            let mut last_progress = std::time::Instant::now();
            let (mut read, mut reported) = (0, 0);
            for (index, line) in lines(bytes).enumerate() {
                read = (read + line.len() + 1).min(bytes.len());
                if read - reported >= PROGRESS_BYTES {
                    reported = read;
                    progress(read);
                }
                if last_progress.elapsed() >= PROGRESS_INTERVAL {
                    last_progress = std::time::Instant::now();
                    tracing::info!(file = %path.display(), lines = index, percent = read * 100 / bytes.len().max(1),
                        "replaying");
                }
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if let Err(e) = exporter.ingest(source, line, now) {
                    rejections.push(reject(Position::Line(index + 1), e.to_string()));
                }
            }
        }
    }
    progress(bytes.len());
    rejections
}

/// The lines of `bytes` (split at `\n`, as `<[u8]>::split` would), found with a
/// vectorised search: a replay file is gigabytes of long lines.
pub fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut start = 0;
    memchr::memchr_iter(b'\n', bytes).chain(std::iter::once(bytes.len())).map(move |end| {
        let line = &bytes[start..end];
        start = end + 1;
        line
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::ingest::Exporter;
    use crate::metrics::Source;

    /// A JSON Lines file reports its progress every MiB or so and once at its
    /// end, always forward; a one-document file once, at its end.
    #[test]
    fn progress_is_reported_as_the_file_is_read() {
        let line = serde_json::json!({
            "version": "0", "id": "e", "source": "aws.codedeploy", "account": "123456789012",
            "detail-type": "CodeDeploy Deployment State-change Notification",
            "time": "2026-11-26T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": { "region": "us-east-1", "application": "app", "deploymentId": "d-000000001",
                        "state": "START", "deploymentGroup": "group" }
        })
        .to_string();
        let file = format!("{line}\n").repeat(3 * super::PROGRESS_BYTES / line.len());
        let mut reports = Vec::new();
        let mut exporter = Exporter::new(0);
        let rejections = super::replay_bytes_reporting(
            &mut exporter,
            Path::new("f.jsonl"),
            file.as_bytes(),
            Source::Replay,
            0,
            &mut |read| reports.push(read),
        );
        assert!(rejections.is_empty());
        assert!(reports.len() >= 3 && reports.len() <= 4, "{reports:?}");
        assert!(reports.windows(2).all(|w| w[0] < w[1]), "{reports:?}");
        assert_eq!(reports.last(), Some(&file.len()));

        let mut reports = Vec::new();
        super::replay_bytes_reporting(&mut exporter, Path::new("one.json"), line.as_bytes(), Source::Replay, 0, &mut |read| {
            reports.push(read)
        });
        assert_eq!(reports, [line.len()]);
    }
}
