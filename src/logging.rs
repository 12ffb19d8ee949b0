//! The log on stderr, one event per line, in the format `--log.format` names:
//! logfmt (`ts=… level=info target=… msg="…" key=value`), or JSON (one object
//! per line, the event's fields at the top level), both parseable line by line
//! by log shippers such as Promtail, Vector or Fluent Bit.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the process's logger; `level` is a level or a tracing filter
/// directive (an invalid one falls back to `info`).
pub fn init(level: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    // A failed write to stderr (the reader of the pipe went away) must not
    // reach tracing-subscriber's own report of it, an `eprintln!` that
    // panics on the same closed pipe inside whichever task was logging: the
    // signal handler's panic left SIGTERM unanswered. The event is lost
    // either way.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .log_internal_errors(false);
    match format {
        LogFormat::Logfmt => builder.event_format(Logfmt).init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).init(),
    }
}

/// logfmt as go-kit and Prometheus's own servers write it.
struct Logfmt;

impl<S, N> FormatEvent<S, N> for Logfmt
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let metadata = event.metadata();
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        write!(writer, "ts={ts} level={} target={}", metadata.level().as_str().to_ascii_lowercase(), metadata.target())?;
        let mut fields = LogfmtFields { line: String::new() };
        event.record(&mut fields);
        writeln!(writer, "{}", fields.line)
    }
}

/// Appends ` key=value` per field, `message` as `msg`.
struct LogfmtFields {
    line: String,
}

impl Visit for LogfmtFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.append(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `%value` fields arrive here too, wrapped so that Debug prints their Display.
        self.append(field, &format!("{value:?}"));
    }
}

impl LogfmtFields {
    fn append(&mut self, field: &Field, value: &str) {
        let key = match field.name() {
            "message" => "msg",
            name => name,
        };
        let _ = write!(self.line, " {key}=");
        let bare = !value.is_empty() && value.chars().all(|c| c > ' ' && c != '"' && c != '=' && c != '\\');
        if bare {
            self.line.push_str(value);
        } else {
            quote(&mut self.line, value);
        }
    }
}

/// A double-quoted value, with quotes, backslashes and control characters escaped,
/// so that one event stays one line.
fn quote(line: &mut String, value: &str) {
    line.push('"');
    for c in value.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(line, "\\u{{{:x}}}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting_keeps_an_event_on_one_line() {
        let mut line = String::new();
        super::quote(&mut line, "a \"b\"\nc\\d");
        assert_eq!(line, r#""a \"b\"\nc\\d""#);
    }
}
