//! The exposition writer: Prometheus text 0.0.4 or OpenMetrics 1.0.0 written
//! straight into a chunk buffer that is handed to a sink whenever it fills, so
//! the body is never held whole.
//!
//! The label text of a deployment group is escaped once per scrape and reused
//! for every series of the group ([`GroupLabels`]); numbers are written with
//! `itoa` and `dtoa`, which print exactly what `prometheus-client` printed
//! before this writer replaced it (`300.15`, `0.0`, `1.0`, `NaN`).

use std::io::{self, Write};
use std::time::Duration;

use super::Format;
use crate::domain::Millis;
use crate::ledger::histogram::{Buckets, Histogram};
use crate::ledger::GroupKey;

/// Bytes gathered before the buffer goes to the sink: large enough that the
/// per-write cost of a channel or a gzip stream vanishes, small enough that a
/// scrape holds a few of them at most.
pub const CHUNK_BYTES: usize = 64 * 1024;

/// The exemplar's one label.
const EXEMPLAR_LABEL: &str = "deployment_id";
/// OpenMetrics: an exemplar's label names and values hold 128 characters at most.
const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Counter,
    Gauge,
    /// Gauges with a `quantile` label: the exposition formats reserve
    /// `quantile` for summaries, and Prometheus stores untyped samples exactly
    /// like gauges.
    Untyped,
    Histogram,
}

/// A family's descriptor. `name` is the name its samples carry (with `_total`
/// for counters, `_seconds` for durations).
#[derive(Debug, Clone, Copy)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Type,
    /// OpenMetrics names a counter family without `_total`; where that would
    /// collide with another family (`codedeploy_deployment_targets_total` and
    /// the gauge `codedeploy_deployment_targets`), the counter goes out untyped
    /// under its full name, as the text format has it.
    pub collides: bool,
}

/// The escaped `account_id="…",region="…",application="…",deployment_group="…"`
/// of one group.
pub fn group_labels(key: &GroupKey) -> String {
    let mut text = String::with_capacity(
        64 + key.account_id.len() + key.region.len() + key.application.len() + key.deployment_group.len(),
    );
    let pairs = [
        ("account_id", &key.account_id),
        ("region", &key.region),
        ("application", &key.application),
        ("deployment_group", &key.deployment_group),
    ];
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        push_label(&mut text, name, value);
    }
    text
}

fn push_label(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    push_escaped(out, value);
    out.push('"');
}

/// Label values escape backslash, double quote and line feed.
fn push_escaped(out: &mut String, value: &str) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn push_float(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        out.push_str(dtoa::Buffer::new().format_finite(value));
    }
}

fn push_int(out: &mut String, value: u64) {
    out.push_str(itoa::Buffer::new().format(value));
}

fn seconds(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

/// A bucket bound as the `le` label: Go's `strconv.FormatFloat(v, 'g', -1, 64)`
/// in the text format (what Go clients write: `10`, `0.5`, `2.592e+06`), the
/// float as written everywhere else in OpenMetrics (`10.0`).
fn le_label(bound: f64, format: Format) -> String {
    match format {
        Format::OpenMetrics => dtoa::Buffer::new().format_finite(bound).to_owned(),
        Format::Text if bound.fract() == 0.0 && bound.abs() < 1e6 => (bound as i64).to_string(),
        Format::Text if (1e-4..1e6).contains(&bound.abs()) => bound.to_string(),
        Format::Text => {
            let scientific = format!("{bound:e}");
            match scientific.split_once('e') {
                Some((mantissa, exponent)) => {
                    let exponent: i32 = exponent.parse().unwrap_or_default();
                    format!("{mantissa}e{exponent:+03}")
                }
                None => scientific,
            }
        }
    }
}

/// `name{le,group,extra}` in OpenMetrics, `name{group,extra,le}` in text,
/// as `prometheus-client` ordered them.
#[allow(clippy::too_many_arguments)]
fn push_series_name(
    out: &mut String,
    openmetrics: bool,
    name: &str,
    suffix: &str,
    le: Option<&str>,
    group: &str,
    names: &[&str],
    values: &[&str],
) {
    out.push_str(name);
    out.push_str(suffix);
    let mut first = true;
    let mut separator = |out: &mut String| {
        out.push(if first { '{' } else { ',' });
        first = false;
    };
    if let (Some(le), true) = (le, openmetrics) {
        separator(out);
        push_label(out, "le", le);
    }
    if !group.is_empty() {
        separator(out);
        out.push_str(group);
    }
    for (name, value) in names.iter().zip(values) {
        separator(out);
        push_label(out, name, value);
    }
    if let (Some(le), false) = (le, openmetrics) {
        separator(out);
        push_label(out, "le", le);
    }
    if !first {
        out.push('}');
    }
    out.push(' ');
}

/// Writes families and their series into chunks for a sink.
pub struct Encoder<'s> {
    format: Format,
    buffer: String,
    sink: &'s mut dyn Write,
    /// The family whose header is written with its first series, so that a
    /// family without series leaves no trace.
    family: Option<Family>,
    header_written: bool,
    /// `le` labels of each bucket layout in this format, `+Inf` last.
    le: Vec<(Buckets, Vec<String>)>,
}

impl<'s> Encoder<'s> {
    pub fn new(format: Format, sink: &'s mut dyn Write) -> Encoder<'s> {
        let le = Buckets::ALL
            .iter()
            .map(|b| {
                let mut labels: Vec<String> = b.bounds().iter().map(|bound| le_label(*bound, format)).collect();
                labels.push("+Inf".to_owned());
                (*b, labels)
            })
            .collect();
        Encoder {
            format,
            buffer: String::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4),
            sink,
            family: None,
            header_written: false,
            le,
        }
    }

    pub fn family(&mut self, family: Family) {
        self.family = Some(family);
        self.header_written = false;
    }

    /// Hands a full buffer to the sink; called between series.
    pub fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buffer.len() >= CHUNK_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sink.write_all(self.buffer.as_bytes())?;
        self.buffer.clear();
        Ok(())
    }

    /// Writes the end marker (OpenMetrics) and what is left in the buffer;
    /// flushing the sink is its owner's business.
    pub fn finish(mut self) -> io::Result<()> {
        if self.format == Format::OpenMetrics {
            self.buffer.push_str("# EOF\n");
        }
        self.flush()
    }

    /// The family's name, after its header when this is its first series.
    fn header(&mut self) -> &'static str {
        // A series is only ever written after `family`; the default keeps the
        // writer total without a panic path.
        let family = self.family.unwrap_or(Family { name: "", help: "", kind: Type::Untyped, collides: false });
        if self.header_written {
            return family.name;
        }
        self.header_written = true;
        let openmetrics = self.format == Format::OpenMetrics;
        let (name, kind) = match family.kind {
            Type::Counter if openmetrics && family.collides => (family.name, Type::Untyped),
            Type::Counter if openmetrics => (family.name.strip_suffix("_total").unwrap_or(family.name), Type::Counter),
            kind => (family.name, kind),
        };
        let type_name = match (kind, openmetrics) {
            (Type::Counter, _) => "counter",
            (Type::Gauge, _) => "gauge",
            (Type::Histogram, _) => "histogram",
            (Type::Untyped, true) => "unknown",
            (Type::Untyped, false) => "untyped",
        };
        let out = &mut self.buffer;
        out.push_str("# HELP ");
        out.push_str(name);
        out.push(' ');
        for c in family.help.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push_str("\n# TYPE ");
        out.push_str(name);
        out.push(' ');
        out.push_str(type_name);
        out.push('\n');
        if openmetrics && name.ends_with("_seconds") {
            out.push_str("# UNIT ");
            out.push_str(name);
            out.push_str(" seconds\n");
        }
        family.name
    }

    fn series_name(&mut self, suffix: &str, group: &str, names: &[&str], values: &[&str]) {
        let name = self.header();
        push_series_name(&mut self.buffer, self.format == Format::OpenMetrics, name, suffix, None, group, names, values);
    }

    pub fn counter<const N: usize>(&mut self, group: &str, names: &[&str; N], values: &[&str; N], value: u64) {
        self.series_name("", group, names, values);
        push_int(&mut self.buffer, value);
        self.buffer.push('\n');
    }

    /// An info series: as many labels as the flags asked for, value 1.
    pub fn info(&mut self, group: &str, names: &[&str], values: &[&str]) {
        self.series_name("", group, names, values);
        self.buffer.push_str("1\n");
    }

    /// A counter of a quantity that is not a whole number (CPU seconds).
    pub fn float_counter<const N: usize>(&mut self, group: &str, names: &[&str; N], values: &[&str; N], value: f64) {
        self.gauge(group, names, values, value);
    }

    pub fn gauge<const N: usize>(&mut self, group: &str, names: &[&str; N], values: &[&str; N], value: f64) {
        self.series_name("", group, names, values);
        push_float(&mut self.buffer, value);
        self.buffer.push('\n');
    }

    /// Cumulative buckets, `_sum` and `_count`; in OpenMetrics `_sum` and
    /// `_count` come first and, when `exemplars` is set, each bucket carries its
    /// latest deployment as an exemplar (the text format has none).
    pub fn histogram<const N: usize>(
        &mut self,
        group: &str,
        names: &[&str; N],
        values: &[&str; N],
        histogram: &Histogram,
        exemplars: bool,
    ) {
        let openmetrics = self.format == Format::OpenMetrics;
        if openmetrics {
            self.sum_and_count(group, names, values, histogram);
        }
        let name = self.header();
        let les = self.le.iter().find(|(b, _)| *b == histogram.buckets).map(|(_, les)| les.as_slice()).unwrap_or_default();
        let mut cumulative = 0;
        for ((bucket, count), le) in histogram.bucket_counts.iter().enumerate().zip(les) {
            cumulative += count;
            push_series_name(&mut self.buffer, openmetrics, name, "_bucket", Some(le), group, names, values);
            push_int(&mut self.buffer, cumulative);
            if let (true, true, Some(Some(exemplar))) = (openmetrics, exemplars, histogram.exemplars.get(bucket)) {
                // A longer id (moto's are UUIDs, AWS's 11 characters, but up to
                // 128 are accepted) goes without its exemplar.
                let fits = EXEMPLAR_LABEL.len() + exemplar.deployment_id.chars().count() <= MAX_EXEMPLAR_LABEL_CHARS;
                if fits && *count > 0 {
                    let out = &mut self.buffer;
                    out.push_str(" # {");
                    push_label(out, EXEMPLAR_LABEL, &exemplar.deployment_id);
                    out.push_str("} ");
                    push_float(out, seconds(exemplar.value_ms));
                    out.push(' ');
                    push_float(out, Duration::from_millis(exemplar.at.max(0) as u64).as_secs_f64());
                }
            }
            self.buffer.push('\n');
        }
        if !openmetrics {
            self.sum_and_count(group, names, values, histogram);
        }
    }

    fn sum_and_count(&mut self, group: &str, names: &[&str], values: &[&str], histogram: &Histogram) {
        self.series_name("_sum", group, names, values);
        push_float(&mut self.buffer, histogram.sum_seconds());
        self.buffer.push('\n');
        self.series_name("_count", group, names, values);
        push_int(&mut self.buffer, histogram.count);
        self.buffer.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn le_labels_follow_go_in_text_and_floats_in_openmetrics() {
        let text: Vec<String> = [10.0, 0.5, 0.1, 604800.0, 2592000.0].map(|b| le_label(b, Format::Text)).into();
        assert_eq!(text, ["10", "0.5", "0.1", "604800", "2.592e+06"]);
        let om: Vec<String> = [10.0, 0.5, 2592000.0].map(|b| le_label(b, Format::OpenMetrics)).into();
        assert_eq!(om, ["10.0", "0.5", "2592000.0"]);
    }

    #[test]
    fn label_values_are_escaped_and_group_labels_come_in_key_order() {
        let key = GroupKey {
            account_id: "1".into(),
            region: "r".into(),
            application: "a\"b\\c\nd".into(),
            deployment_group: "g".into(),
        };
        assert_eq!(
            group_labels(&key),
            r#"account_id="1",region="r",application="a\"b\\c\nd",deployment_group="g""#
        );
    }

    #[test]
    fn a_family_without_series_writes_nothing_and_openmetrics_ends_with_eof() {
        let mut body = Vec::new();
        let mut encoder = Encoder::new(Format::OpenMetrics, &mut body);
        encoder.family(Family { name: "a_total", help: "h", kind: Type::Counter, collides: false });
        encoder.family(Family { name: "b_seconds", help: "h", kind: Type::Gauge, collides: false });
        encoder.gauge("", &["x"], &["1"], f64::NAN);
        encoder.finish().expect("a Vec takes every write");
        assert_eq!(
            String::from_utf8(body).expect("UTF-8"),
            "# HELP b_seconds h\n# TYPE b_seconds gauge\n# UNIT b_seconds seconds\nb_seconds{x=\"1\"} NaN\n# EOF\n"
        );
    }
}
