//! The checks shared by the fuzz targets (`fuzz/fuzz_targets/`) and by the
//! normal test suite (`tests/hostile_input.rs` includes this file by path), so
//! that every corpus and crash file kept in `tests/fixtures/fuzz/` is replayed
//! through exactly what the fuzzer ran.
//!
//! Every check panics (with a message saying which property broke) when the
//! exporter misbehaves; a panic inside the exporter itself is the other way to
//! fail. Nothing here needs nightly Rust or libFuzzer.
//!
//! - [`check_decode`]: one message → `decode::decode`; what comes out respects
//!   the decoder's contract (bounded error text, sane ids and times).
//! - [`check_fold`]: a stream of messages (one per line) → `Exporter::ingest`
//!   each, with the settle timer running → `settle(now, true)` → both
//!   exposition formats, which must be well formed; re-delivering every message
//!   must change no domain metric; the same bytes as a `replay` file too.
//! - [`check_store`]: the same stream committed to a `RedbStore` message by
//!   message, with a restart half way; the restored exporter must render
//!   byte-identical expositions, and so must one that continued after the restart.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use codedeploy_exporter::decode::{self, Decoded, DecodeError};
use codedeploy_exporter::domain::{Millis, Observation};
use codedeploy_exporter::ingest::Exporter;
use codedeploy_exporter::metrics::{Format, Outcome, Source};
use codedeploy_exporter::sources::replay::replay_bytes;
use codedeploy_exporter::store::{RedbStore, Store};

/// The settle time the exporters under test run with (the default of `serve`).
pub const SETTLE_TIME_MS: Millis = 5 * 60 * 1000;
/// The ingest clock starts at 2025-12-15T00:00:00Z, near the seed messages'
/// own times, so that windows and lags see realistic values...
pub const START: Millis = 1_765_756_800_000;
/// ...and advances by one minute per message, so the settle timer fires
/// in the middle of a stream.
pub const STEP_MS: Millis = 60 * 1000;
/// The decoder promises that a hostile message cannot blow up logs or HTTP
/// responses: no error text may be longer than this, whatever the input size.
pub const MAX_ERROR_TEXT: usize = 8 * 1024;
/// 9999-12-31T23:59:59.999Z, the decoder's upper bound on timestamps.
pub const MAX_MILLIS: Millis = 253_402_300_799_999;
/// OpenMetrics: "The combined length of the label names and values of an
/// Exemplar's LabelSet MUST NOT exceed 128 UTF-8 character code points."
pub const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// Real messages, one per line: the mixed stream and every sample, minified.
/// A line `@N` of a fuzz input stands for message `N` (modulo their number),
/// which lets the fuzzer build long, realistic streams out of short inputs and
/// mix them with the hostile lines it mutates.
pub fn seed_messages() -> &'static [String] {
    static SEEDS: OnceLock<Vec<String>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        const STREAM: &str = include_str!("../../tests/fixtures/streams/mixed.jsonl");
        const SAMPLES: [&str; 13] = [
            include_str!("../../tests/fixtures/samples/api-batch-get-deployment-targets-output-awscli-example.json"),
            include_str!("../../tests/fixtures/samples/api-batch-get-deployments-output-awscli-example.json"),
            include_str!("../../tests/fixtures/samples/api-get-deployment-config-output-awscli-example.json"),
            include_str!("../../tests/fixtures/samples/api-get-deployment-instance-output-awscli-example.json"),
            include_str!("../../tests/fixtures/samples/api-get-deployment-output-awscli-example.json"),
            include_str!("../../tests/fixtures/samples/api-get-deployment-target-output-awscli-example.json"),
            include_str!("../../tests/fixtures/samples/api-list-deployments-output-awscli-example.json"),
            include_str!("../../tests/fixtures/samples/eventbridge-deployment-success.json"),
            include_str!("../../tests/fixtures/samples/eventbridge-instance-success.json"),
            include_str!("../../tests/fixtures/samples/lambda-lifecycle-hook-invocation-event.json"),
            include_str!("../../tests/fixtures/samples/sns-lambda-event-deployment-succeeded-2016.json"),
            include_str!("../../tests/fixtures/samples/sns-trigger-message-deployment-failed-docs-sample.json"),
            include_str!("../../tests/fixtures/samples/sns-trigger-message-instance-succeeded-docs-sample.json"),
        ];
        let mut seeds: Vec<String> =
            STREAM.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
        for sample in SAMPLES {
            let value: serde_json::Value = serde_json::from_str(sample).expect("samples are JSON");
            seeds.push(value.to_string());
        }
        seeds
    })
}

/// Splits a fuzz input into messages, one per line, expanding `@N` lines.
pub fn messages(data: &[u8]) -> Vec<Cow<'_, [u8]>> {
    data.split(|b| *b == b'\n')
        .map(|line| match seed_reference(line) {
            Some(n) => {
                let seeds = seed_messages();
                Cow::Owned(seeds[n % seeds.len()].as_bytes().to_vec())
            }
            None => Cow::Borrowed(line),
        })
        .collect()
}

fn seed_reference(line: &[u8]) -> Option<usize> {
    let digits = line.strip_prefix(b"@")?;
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

fn shorten(text: &str) -> String {
    let mut chars = text.chars();
    let kept: String = chars.by_ref().take(300).collect();
    if chars.next().is_some() {
        format!("{kept:?}…")
    } else {
        format!("{kept:?}")
    }
}

// ---------------------------------------------------------------------------
// decode
// ---------------------------------------------------------------------------

/// One message through the decoder.
pub fn check_decode(data: &[u8]) {
    let decoded = decode::decode(data);
    check_decoded(&decoded);
    // The replay source decodes the elements of a JSON array through
    // `decode_value`; it must agree with `decode` on the same message.
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        assert_eq!(decode::decode_value(value), decoded, "decode_value disagrees with decode");
    }
}

/// The decoder's contract on its output, whatever the input.
pub fn check_decoded(decoded: &Result<Decoded, DecodeError>) {
    match decoded {
        Err(error) => {
            let text = error.to_string();
            assert!(
                text.len() <= MAX_ERROR_TEXT,
                "a {}-byte error text ({}) from one message: {}",
                text.len(),
                error.reason(),
                shorten(&text)
            );
        }
        Ok(Decoded::Ignored(_)) => {}
        Ok(Decoded::Observations(observations)) => {
            assert!(!observations.is_empty(), "Observations(vec![]) must be Ignored instead");
            observations.iter().for_each(check_observation);
        }
    }
}

fn check_id(what: &str, id: &str, max_chars: usize) {
    assert!(!id.is_empty(), "empty {what}");
    assert!(id.chars().count() <= max_chars, "{what} longer than {max_chars}: {}", shorten(id));
    assert!(!id.chars().any(char::is_control), "{what} with control characters: {}", shorten(id));
}

fn check_time(what: &str, time: Option<Millis>) {
    if let Some(t) = time {
        assert!((0..=MAX_MILLIS).contains(&t), "{what} {t} outside 1970..=9999");
    }
}

fn check_observation(o: &Observation) {
    check_id("deployment id", &o.deployment.deployment_id, 128);
    for (what, time) in [
        ("event time", o.event_time),
        ("create time", o.create_time),
        ("start time", o.start_time),
        ("complete time", o.complete_time),
    ] {
        check_time(what, time);
    }
    for target in &o.targets {
        check_id("target id", &target.target_id, 512);
        for hook in &target.lifecycle_events {
            check_time("hook start", hook.start_time);
            check_time("hook end", hook.end_time);
        }
    }
}

// ---------------------------------------------------------------------------
// fold
// ---------------------------------------------------------------------------

/// An exporter as `serve` has it before the first message.
pub fn new_exporter() -> Exporter {
    let mut exporter = Exporter::new(SETTLE_TIME_MS);
    exporter.register(Source::Webhook);
    exporter
}

/// Ingests one message at `now` as the writer does, checks the outcome against
/// the decoder, and lets the settle timer run.
pub fn step(exporter: &mut Exporter, message: &[u8], now: Millis) -> Result<Outcome, DecodeError> {
    let decoded = decode::decode(message);
    check_decoded(&decoded);
    let outcome = exporter.ingest(Source::Webhook, message, now);
    match (&decoded, &outcome) {
        (Err(expected), Err(got)) => assert_eq!(expected, got, "ingest rejects for another reason than decode"),
        (Ok(Decoded::Ignored(_)), Ok(Outcome::Ignored)) => {}
        (Ok(Decoded::Observations(_)), Ok(Outcome::Applied | Outcome::Duplicate)) => {}
        // Decodable, but past a bound (a label value over 128 characters).
        (Ok(Decoded::Observations(_)), Err(DecodeError::Limited { .. })) => {}
        (expected, got) => panic!("decode gave {expected:?} but ingest {got:?}"),
    }
    exporter.settle(now, false);
    outcome
}

/// The times an exposition is rendered at: the ingest clock, and the latest
/// time any message mentioned (what `replay` anchors its windows at).
pub fn anchors(exporter: &Exporter, now: Millis) -> Vec<Millis> {
    let mut anchors = vec![now];
    anchors.extend(exporter.latest_time().filter(|t| *t != now));
    anchors
}

/// Renders both formats at `now` and checks they are well formed.
pub fn render_checked(exporter: &Exporter, now: Millis) -> (String, String) {
    let text = exporter.exposition(now).render(Format::Text);
    let text_samples = parse_exposition(&text, Format::Text)
        .unwrap_or_else(|problem| panic!("invalid text exposition at now={now}: {problem}"));
    let openmetrics = exporter.exposition(now).render(Format::OpenMetrics);
    let openmetrics_samples = parse_exposition(&openmetrics, Format::OpenMetrics)
        .unwrap_or_else(|problem| panic!("invalid OpenMetrics exposition at now={now}: {problem}"));
    if let Err(problem) = compare_samples(&text_samples, &openmetrics_samples) {
        panic!("the two formats disagree at now={now}: {problem}");
    }
    (text, openmetrics)
}

/// Families that count deliveries rather than deployments.
const DELIVERY_FAMILIES: [&str; 4] = [
    "codedeploy_exporter_events_total",
    // A refused message is counted each time it is delivered, like a rejection.
    "codedeploy_exporter_limited_total",
    "codedeploy_exporter_event_lag_seconds",
    "codedeploy_exporter_source_last_success_timestamp_seconds",
];

fn without_delivery_families(text: &str) -> String {
    text.lines()
        .filter(|line| {
            let name = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "))
                .unwrap_or(line);
            !DELIVERY_FAMILIES.iter().any(|family| name.starts_with(family))
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// What [`check_fold`] ends with, for callers that want to look further.
#[derive(Debug)]
pub struct Folded {
    pub exporter: Exporter,
    /// The ingest clock after the last message.
    pub now: Millis,
    /// Each message's outcome (the error is the rejection reason).
    pub outcomes: Vec<Result<Outcome, DecodeError>>,
    /// The text exposition at `now`, after `settle(now, true)`.
    pub text: String,
}

/// A stream of messages through the whole fold.
pub fn check_fold(data: &[u8]) -> Folded {
    let messages = messages(data);

    let mut exporter = new_exporter();
    let mut now = START;
    let mut outcomes = Vec::with_capacity(messages.len());
    for message in &messages {
        outcomes.push(step(&mut exporter, message, now));
        now += STEP_MS;
    }
    let after_first_pass = now;

    // At-least-once delivery: every message delivered again changes no domain
    // metric. The reference runs the same settle timer without the duplicates.
    let mut redelivered = exporter.clone();
    let mut reference = exporter.clone();
    for message in &messages {
        // Not asserted: the outcome of a re-delivery. A message that lacks
        // account or region (API output) waits in a record of its own until
        // the next settle adopts it, so its re-delivery is `applied` again,
        // although it changes no metric (docs/security.md).
        let _ = step(&mut redelivered, message, now);
        reference.settle(now, false);
        now += STEP_MS;
    }
    for e in [&mut exporter, &mut redelivered, &mut reference] {
        e.settle(now, true);
    }
    for anchor in anchors(&reference, now) {
        let (text, _) = render_checked(&reference, anchor);
        // Compared with a checked exposition: a plain render is enough.
        let again = redelivered.exposition(anchor).render(Format::Text);
        let (text, again) = (without_delivery_families(&text), without_delivery_families(&again));
        if text != again {
            panic!("re-delivering every message changed the domain metrics (now={anchor}):\n{}", difference(&text, &again));
        }
    }

    let mut text = String::new();
    for anchor in anchors(&exporter, after_first_pass) {
        let (rendered, _) = render_checked(&exporter, anchor);
        if anchor == after_first_pass {
            text = rendered;
        }
    }

    // The same bytes as a file given to `replay` (a JSON document, a JSON
    // array of messages, or JSON Lines).
    let mut replayed = Exporter::new(SETTLE_TIME_MS);
    replayed.register(Source::Replay);
    for rejection in replay_bytes(&mut replayed, Path::new("fuzz.jsonl"), data, Source::Replay, START) {
        let line = rejection.to_string();
        assert!(line.len() <= MAX_ERROR_TEXT + 100, "a {}-byte rejection line", line.len());
    }
    replayed.settle(START, true);
    for anchor in anchors(&replayed, START) {
        render_checked(&replayed, anchor);
    }

    Folded { exporter, now: after_first_pass, outcomes, text }
}

// ---------------------------------------------------------------------------
// store
// ---------------------------------------------------------------------------

/// A directory for one store, on tmpfs when there is one: every commit is an
/// fsync, which a disk makes slow and tmpfs makes free.
fn temporary_directory() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let dir = if std::env::var_os("TMPDIR").is_none() && shm.is_dir() {
        tempfile::Builder::new().prefix("codedeploy-fuzz-").tempdir_in(shm)
    } else {
        tempfile::Builder::new().prefix("codedeploy-fuzz-").tempdir()
    };
    dir.expect("a temporary directory")
}

fn open(dir: &Path) -> RedbStore {
    RedbStore::open(dir).unwrap_or_else(|e| panic!("open store: {e}"))
}

fn restored(store: &RedbStore) -> Exporter {
    let stored = store.load().unwrap_or_else(|e| panic!("load store: {e}"));
    Exporter::restore(SETTLE_TIME_MS, stored)
}

fn assert_same_exposition(live: &Exporter, restored: &Exporter, now: Millis, when: &str) {
    for anchor in anchors(live, now) {
        let (text, openmetrics) = render_checked(live, anchor);
        // Compared with a checked exposition: a plain render is enough.
        let text_restored = restored.exposition(anchor).render(Format::Text);
        let openmetrics_restored = restored.exposition(anchor).render(Format::OpenMetrics);
        if text != text_restored {
            panic!("{when}: text exposition differs (now={anchor}):\n{}", difference(&text, &text_restored));
        }
        if openmetrics != openmetrics_restored {
            panic!("{when}: OpenMetrics exposition differs (now={anchor}):\n{}", difference(&openmetrics, &openmetrics_restored));
        }
    }
}

/// The lines only one of two expositions has (at most 40), `-` for the first, `+` for the second.
pub fn difference(first: &str, second: &str) -> String {
    let ours: HashSet<&str> = first.lines().collect();
    let theirs: HashSet<&str> = second.lines().collect();
    let removed = first.lines().filter(|l| !theirs.contains(l)).map(|l| format!("- {l}"));
    let added = second.lines().filter(|l| !ours.contains(l)).map(|l| format!("+ {l}"));
    removed.chain(added).take(40).collect::<Vec<_>>().join("\n")
}

/// The stream committed to a store message by message (as the writer does),
/// with a restart half way: the store must give back exactly what was
/// committed, and an exporter restored from it must go on as if nothing happened.
pub fn check_store(data: &[u8]) {
    let messages = messages(data);
    let cut = messages.len() / 2;
    let dir = temporary_directory();

    let mut live = new_exporter();
    let mut store = open(dir.path());
    // The writer's first tick commits the registration of the sources.
    live.commit_to(&mut store).unwrap_or_else(|e| panic!("commit: {e}"));
    let mut now = START;
    for message in &messages[..cut] {
        let _ = step(&mut live, message, now);
        live.commit_to(&mut store).unwrap_or_else(|e| panic!("commit: {e}"));
        now += STEP_MS;
    }
    drop(store);

    // Restart half way.
    let mut store = open(dir.path());
    let mut restarted = restored(&store);
    assert_same_exposition(&live, &restarted, now, "restored half way");
    for message in &messages[cut..] {
        let _ = step(&mut live, message, now);
        let _ = step(&mut restarted, message, now);
        restarted.commit_to(&mut store).unwrap_or_else(|e| panic!("commit: {e}"));
        now += STEP_MS;
    }
    live.settle(now, true);
    restarted.settle(now, true);
    restarted.commit_to(&mut store).unwrap_or_else(|e| panic!("commit: {e}"));
    assert_same_exposition(&live, &restarted, now, "continued after a restart");
    drop(store);

    // And once more at the end.
    let store = open(dir.path());
    let again = restored(&store);
    assert_same_exposition(&restarted, &again, now, "restored at the end");
}

// ---------------------------------------------------------------------------
// The exposition formats, line by line
// ---------------------------------------------------------------------------

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A sample value: Go's float syntax as Prometheus parses it.
fn is_value(value: &str) -> bool {
    matches!(value, "NaN" | "+Inf" | "-Inf")
        || (!value.is_empty()
            && value.bytes().all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
            && value.parse::<f64>().is_ok())
}

/// Parses `{name="value",...}` at the start of `s`; returns the labels
/// (values unescaped) and what follows the closing brace.
/// A label set, values unescaped.
type Labels = Vec<(String, String)>;

fn parse_labels(s: &str, openmetrics: bool) -> Result<(Labels, &str), String> {
    let mut rest = s.strip_prefix('{').ok_or("expected `{`")?;
    let mut labels = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return Ok((labels, after));
        }
        let name_len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        let name = &rest[..name_len];
        if !is_label_name(name) {
            return Err(format!("invalid label name {}", shorten(name)));
        }
        rest = rest[name_len..]
            .strip_prefix("=\"")
            .ok_or_else(|| format!("expected =\" after label name {name}"))?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label {name}: value not terminated on its line")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    other => {
                        return Err(format!("label {name}: invalid escape \\{:?}", other.map(|(_, c)| c)))
                    }
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.iter().any(|(n, _)| n == name) {
            return Err(format!("label {name} appears twice"));
        }
        labels.push((name.to_owned(), value));
        rest = &rest[end + 1..];
        if let Some(after) = rest.strip_prefix(',') {
            rest = after;
            // The text format tolerates a trailing comma; OpenMetrics does not.
            if openmetrics && rest.starts_with('}') {
                return Err("trailing comma in a label set".to_owned());
            }
        } else if !rest.starts_with('}') {
            return Err(format!("expected , or }} after label {name}"));
        }
    }
}

/// Checks a `# HELP` docstring's escapes.
fn check_help(help: &str, openmetrics: bool) -> Result<(), String> {
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('\\' | 'n') => {}
                Some('"') if openmetrics => {}
                other => return Err(format!("invalid escape \\{other:?} in HELP")),
            }
        }
    }
    Ok(())
}

/// The sample names a family of `metric_type` may have.
fn sample_suffixes(metric_type: &str, openmetrics: bool) -> &'static [&'static str] {
    match (metric_type, openmetrics) {
        ("histogram", false) => &["_bucket", "_sum", "_count"],
        ("histogram", true) => &["_bucket", "_sum", "_count", "_created"],
        ("summary", false) => &["", "_sum", "_count"],
        ("summary", true) => &["", "_sum", "_count", "_created"],
        // Text-format counters are named with their `_total`.
        ("counter", false) => &[""],
        ("counter", true) => &["_total", "_created"],
        _ => &[""],
    }
}

#[derive(Default)]
struct HistogramSeries {
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
}

/// Checks an exposition line by line: Prometheus text format 0.0.4, or
/// OpenMetrics 1.0 with `Format::OpenMetrics`. Every sample line is
/// `name{labels} value`, label values are escaped (`\\`, `\"`, `\n`) and never
/// hold a raw newline or quote, every family is typed once and its samples are
/// contiguous, no series appears twice, and histogram buckets are cumulative
/// with `+Inf` equal to `_count`. Returns the first problem found.
pub fn check_exposition(text: &str, format: Format) -> Result<(), String> {
    parse_exposition(text, format).map(drop)
}

/// The samples of an exposition: `name{labels sorted}` → value, `le` normalised.
pub type Samples = BTreeMap<String, f64>;

/// Checks an exposition as [`check_exposition`] does and returns its samples.
pub fn parse_exposition(text: &str, format: Format) -> Result<Samples, String> {
    let openmetrics = format == Format::OpenMetrics;
    let mut samples = Samples::new();
    if !text.ends_with('\n') {
        return Err("the exposition does not end with a newline".to_owned());
    }
    let body = if openmetrics {
        text.strip_suffix("# EOF\n").ok_or("an OpenMetrics exposition must end with `# EOF`")?
    } else {
        text
    };
    let text_types = ["counter", "gauge", "histogram", "summary", "untyped"];
    let openmetrics_types = ["counter", "gauge", "histogram", "gaugehistogram", "summary", "info", "stateset", "unknown"];
    let allowed_types: &[&str] = if openmetrics { &openmetrics_types } else { &text_types };

    let mut typed: HashMap<String, String> = HashMap::new();
    let mut current: Option<(String, String)> = None;
    let mut series: HashSet<String> = HashSet::new();
    let mut histograms: BTreeMap<String, HistogramSeries> = BTreeMap::new();

    let body = body.strip_suffix('\n').unwrap_or(body);
    for (index, line) in body.split('\n').enumerate() {
        if body.is_empty() {
            break;
        }
        let at = |problem: String| format!("line {}: {problem}: {}", index + 1, shorten(line));
        if line.is_empty() {
            return Err(at("empty line".to_owned()));
        }
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.strip_prefix(' ').ok_or_else(|| at("expected `# `".to_owned()))?;
            let (keyword, rest) = comment.split_once(' ').ok_or_else(|| at("bare comment".to_owned()))?;
            let (name, rest) = rest.split_once(' ').unwrap_or((rest, ""));
            if !is_metric_name(name) {
                return Err(at(format!("invalid metric name {}", shorten(name))));
            }
            match keyword {
                "HELP" => {
                    check_help(rest, openmetrics).map_err(at)?;
                    if openmetrics && current.as_ref().is_some_and(|(n, _)| n == name) {
                        return Err(at("HELP after TYPE".to_owned()));
                    }
                }
                "TYPE" => {
                    if !allowed_types.contains(&rest) {
                        return Err(at(format!("unknown type {rest:?}")));
                    }
                    if typed.insert(name.to_owned(), rest.to_owned()).is_some() {
                        return Err(at(format!("family {name} typed twice (samples not contiguous)")));
                    }
                    current = Some((name.to_owned(), rest.to_owned()));
                }
                "UNIT" if openmetrics => {
                    if current.as_ref().is_none_or(|(n, _)| n != name) {
                        return Err(at("UNIT before TYPE".to_owned()));
                    }
                    if !name.ends_with(&format!("_{rest}")) {
                        return Err(at(format!("the name does not end with its unit {rest}")));
                    }
                }
                _ => return Err(at(format!("unexpected comment keyword {keyword:?}"))),
            }
            continue;
        }

        // A sample: name{labels} value [timestamp] [# {exemplar labels} value [timestamp]]
        let name_len = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(line.len());
        let name = &line[..name_len];
        if !is_metric_name(name) {
            return Err(at(format!("invalid metric name {}", shorten(name))));
        }
        let rest = &line[name_len..];
        let (labels, rest) = if rest.starts_with('{') {
            parse_labels(rest, openmetrics).map_err(at)?
        } else {
            (Vec::new(), rest)
        };
        let rest = rest.strip_prefix(' ').ok_or_else(|| at("expected a space before the value".to_owned()))?;
        let (sample, exemplar) = match rest.split_once(" # ") {
            Some((sample, exemplar)) if openmetrics => (sample, Some(exemplar)),
            _ => (rest, None),
        };
        let mut parts = sample.split(' ');
        let value = parts.next().unwrap_or_default();
        if !is_value(value) {
            return Err(at(format!("invalid value {value:?}")));
        }
        if let Some(timestamp) = parts.next() {
            let valid = if openmetrics { is_value(timestamp) } else { timestamp.parse::<i64>().is_ok() };
            if !valid {
                return Err(at(format!("invalid timestamp {timestamp:?}")));
            }
        }
        if parts.next().is_some() {
            return Err(at("trailing fields after the value".to_owned()));
        }
        if let Some(exemplar) = exemplar {
            let (exemplar_labels, rest) = parse_labels(exemplar, true).map_err(at)?;
            let chars: usize = exemplar_labels.iter().map(|(n, v)| n.chars().count() + v.chars().count()).sum();
            if chars > MAX_EXEMPLAR_LABEL_CHARS {
                return Err(at(format!("exemplar labels of {chars} characters (at most {MAX_EXEMPLAR_LABEL_CHARS})")));
            }
            let mut parts = rest.strip_prefix(' ').ok_or_else(|| at("exemplar without a value".to_owned()))?.split(' ');
            if !parts.next().is_some_and(is_value) || !parts.next().is_none_or(is_value) || parts.next().is_some() {
                return Err(at("invalid exemplar value or timestamp".to_owned()));
            }
        }

        let (family, metric_type) = current.as_ref().ok_or_else(|| at("a sample before any TYPE".to_owned()))?;
        let suffix = name
            .strip_prefix(family.as_str())
            .filter(|suffix| sample_suffixes(metric_type, openmetrics).contains(suffix))
            .ok_or_else(|| at(format!("sample outside its family {family} ({metric_type})")))?;
        if labels.iter().any(|(n, _)| n.starts_with("__")) {
            return Err(at("reserved label name".to_owned()));
        }
        let mut sorted = labels.clone();
        sorted.sort();
        if !series.insert(format!("{name}{sorted:?}")) {
            return Err(at("the same series twice".to_owned()));
        }
        let normalised: Vec<(String, String)> = sorted
            .iter()
            .map(|(n, v)| match (n.as_str(), v.parse::<f64>()) {
                ("le", Ok(bound)) => (n.clone(), format!("{bound}")),
                _ => (n.clone(), v.clone()),
            })
            .collect();
        samples.insert(format!("{name}{normalised:?}"), value.parse::<f64>().unwrap_or(f64::NAN));
        if metric_type == "histogram" {
            let parsed = value.parse::<f64>().unwrap_or(f64::NAN);
            let le = sorted.iter().find(|(n, _)| n == "le").map(|(_, v)| v.clone());
            let key: Vec<_> = sorted.iter().filter(|(n, _)| n != "le").cloned().collect();
            let entry = histograms.entry(format!("{family}{key:?}")).or_default();
            match suffix {
                "_bucket" => {
                    let le = le.ok_or_else(|| at("a bucket without le".to_owned()))?;
                    let bound = match le.as_str() {
                        "+Inf" => f64::INFINITY,
                        other if is_value(other) => other.parse::<f64>().unwrap_or(f64::NAN),
                        other => return Err(at(format!("invalid le {other:?}"))),
                    };
                    entry.buckets.push((bound, parsed));
                }
                "_count" => entry.count = Some(parsed),
                _ => {}
            }
        }
    }
    for (series, histogram) in histograms {
        let bounds_ascending = histogram.buckets.windows(2).all(|w| w[0].0 < w[1].0);
        let cumulative = histogram.buckets.windows(2).all(|w| w[0].1 <= w[1].1);
        let inf = histogram.buckets.last().filter(|(bound, _)| bound.is_infinite()).map(|(_, n)| *n);
        if !bounds_ascending || !cumulative {
            return Err(format!("histogram {series}: buckets not ascending and cumulative"));
        }
        if inf.is_none() || inf != histogram.count {
            return Err(format!("histogram {series}: +Inf bucket {inf:?} differs from _count {:?}", histogram.count));
        }
    }
    Ok(samples)
}

/// The text and OpenMetrics expositions of one state must say the same: the
/// same series with the same values (sums of histograms within float
/// rounding, as OpenMetrics rebuilds them to attach exemplars); OpenMetrics
/// may add only `_created` series.
pub fn compare_formats(text: &str, openmetrics: &str) -> Result<(), String> {
    compare_samples(&parse_exposition(text, Format::Text)?, &parse_exposition(openmetrics, Format::OpenMetrics)?)
}

fn compare_samples(text: &Samples, openmetrics: &Samples) -> Result<(), String> {
    for (series, value) in text {
        let Some(other) = openmetrics.get(series) else {
            return Err(format!("{series} is missing from the OpenMetrics exposition"));
        };
        let same = value == other
            || (value.is_nan() && other.is_nan())
            || (series.contains("_sum[") && (value - other).abs() <= 1e-9 * value.abs().max(1.0));
        if !same {
            return Err(format!("{series} is {value} in text but {other} in OpenMetrics"));
        }
    }
    match openmetrics.keys().find(|series| !text.contains_key(*series) && !series.contains("_created[")) {
        Some(extra) => Err(format!("{extra} is only in the OpenMetrics exposition")),
        None => Ok(()),
    }
}
