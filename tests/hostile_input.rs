//! Hostile input: no message may panic the exporter, corrupt its store, or
//! break the exposition format.
//!
//! Two halves:
//! - every file the fuzzers kept (`tests/fixtures/fuzz/<target>/`, minimised
//!   corpora) and every crash they found (`tests/fixtures/fuzz/crashes/`) is
//!   replayed through the same checks the fuzz targets run (`fuzz/src/checks.rs`,
//!   included below), so the normal `cargo test` guards what fuzzing learnt;
//! - a table of named hostile inputs, each with the outcome a user sees
//!   (rejected with which reason, ignored, or applied with correctly escaped
//!   labels), checked in process, by `promtool check metrics` on the resulting
//!   exposition, and through a real `codedeploy-exporter serve` for the HTTP
//!   status of the webhook (400 rejected, 413 over the body limit, 200 otherwise).
//!
//! promtool is required (Debian package `prometheus`): a missing promtool fails
//! these tests, it never skips them. `docs/security.md` documents the table.

#[allow(dead_code)]
#[path = "../fuzz/src/checks.rs"]
mod checks;
#[path = "common/promtool.rs"]
mod promtool;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use codedeploy_exporter::decode::DecodeError;
use codedeploy_exporter::metrics::{Format, Outcome, Source};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// The fuzzers' corpora and crashes
// ---------------------------------------------------------------------------

fn fuzz_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz").join(name)
}

/// The files of a kept corpus; a missing or empty corpus is a failure.
fn corpus(name: &str) -> Vec<PathBuf> {
    inputs_in(&fuzz_dir(name))
}

/// The input files of `dir` (not hidden files, not notes); none is a failure.
fn inputs_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && !path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .filter(|path| path.extension().is_none_or(|ext| ext != "md"))
        .collect();
    files.sort();
    // An empty folder would make its replay pass while checking nothing.
    assert!(!files.is_empty(), "{} holds no input: nothing would be checked", dir.display());
    files
}

/// Runs `check` on every file, collecting every failure rather than stopping at the first.
fn replay(files: &[PathBuf], check: fn(&[u8])) {
    let mut failures = Vec::new();
    for file in files {
        let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&bytes))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{}: {}", file.display(), message.chars().take(2000).collect::<String>()));
        }
    }
    assert!(failures.is_empty(), "{} of {} files failed:\n{}", failures.len(), files.len(), failures.join("\n"));
}

#[test]
fn the_decode_corpus_passes() {
    let files = corpus("decode");
    assert!(files.len() >= 50, "tests/fixtures/fuzz/decode holds only {} files", files.len());
    replay(&files, checks::check_decode);
}

#[test]
fn the_fold_corpus_passes() {
    let files = corpus("fold");
    assert!(files.len() >= 20, "tests/fixtures/fuzz/fold holds only {} files", files.len());
    replay(&files, |data| {
        checks::check_fold(data);
    });
}

#[test]
fn the_store_corpus_passes() {
    let files = corpus("store");
    assert!(files.len() >= 20, "tests/fixtures/fuzz/store holds only {} files", files.len());
    replay(&files, checks::check_store);
}

#[test]
fn an_empty_or_missing_corpus_folder_fails_rather_than_passing() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("README.md"), "notes are not inputs").expect("write");
    std::fs::write(dir.path().join(".gitkeep"), "").expect("write");
    assert!(catch_unwind(|| inputs_in(dir.path())).is_err(), "a folder with no input");
    assert!(catch_unwind(|| inputs_in(&dir.path().join("missing"))).is_err(), "a missing folder");
    std::fs::write(dir.path().join("crash-1"), "{}").expect("write");
    assert_eq!(inputs_in(dir.path()), [dir.path().join("crash-1")]);
}

#[test]
fn every_crash_found_passes_all_three_checks() {
    let files = corpus("crashes");
    replay(&files, |data| {
        checks::check_decode(data);
        checks::check_fold(data);
        checks::check_store(data);
    });
}

/// The line checker must catch what it is there to catch, or the corpus
/// replays above prove nothing.
#[test]
fn the_exposition_checker_rejects_broken_expositions() {
    let good = "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"q\\\"\\\\\\n}\"} 1\n";
    assert_eq!(checks::check_exposition(good, Format::Text), Ok(()));
    let broken = [
        ("raw newline in a label value", "# TYPE a gauge\na{x=\"1\n2\"} 1\n"),
        ("raw quote in a label value", "# TYPE a gauge\na{x=\"1\"2\"} 1\n"),
        ("unknown escape", "# TYPE a gauge\na{x=\"\\t\"} 1\n"),
        ("no value", "# TYPE a gauge\na{x=\"1\"}\n"),
        ("bad value", "# TYPE a gauge\na 1,5\n"),
        ("duplicate series", "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n"),
        ("duplicate label", "# TYPE a gauge\na{x=\"1\",x=\"2\"} 1\n"),
        ("untyped sample", "a 1\n"),
        ("sample of another family", "# TYPE a gauge\nb 1\n"),
        ("family typed twice", "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\n"),
        ("bad label name", "# TYPE a gauge\na{1x=\"1\"} 1\n"),
        ("no final newline", "# TYPE a gauge\na 1"),
        (
            "buckets not cumulative",
            "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        ),
        ("+Inf differs from count", "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 2\n"),
    ];
    for (what, text) in broken {
        assert!(checks::check_exposition(text, Format::Text).is_err(), "not caught: {what}");
    }
    let long_exemplar = format!(
        "# TYPE h histogram\nh_bucket{{le=\"+Inf\"}} 1 # {{deployment_id=\"{}\"}} 1.0\nh_sum 1.0\nh_count 1\n# EOF\n",
        "d".repeat(120)
    );
    assert!(checks::check_exposition(&long_exemplar, Format::OpenMetrics).is_err(), "exemplar over 128 characters");
}

// ---------------------------------------------------------------------------
// Named hostile inputs
// ---------------------------------------------------------------------------

/// The webhook's default `--webhook.max-body-bytes`.
const MAX_BODY_BYTES: usize = 256 * 1024;

/// What a user sees for one message.
#[derive(Debug, Clone)]
enum Expect {
    /// Rejected with this `reason` (HTTP 400, `outcome="rejected"`).
    Rejected(&'static str),
    /// Recognised and ignored (HTTP 200, `outcome="ignored"`).
    Ignored,
    /// Applied; each string must appear in the text exposition once settled.
    Applied(Vec<String>),
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    /// Messages sent first (each must be accepted), e.g. the deployment a
    /// hostile target message refers to.
    before: Vec<String>,
    body: Vec<u8>,
    expect: Expect,
    served: Option<Expect>,
}

impl Case {
    fn new(name: impl Into<String>, body: impl Into<Vec<u8>>, expect: Expect) -> Case {
        Case { name: name.into(), before: Vec::new(), body: body.into(), expect, served: None }
    }

    fn after(mut self, before: impl Into<String>) -> Case {
        self.before.push(before.into());
        self
    }

    /// What `serve` does where it differs from `replay` (which refuses no time).
    fn when_served(mut self, expect: Expect) -> Case {
        self.served = Some(expect);
        self
    }

    /// What the webhook of `serve` does with it.
    fn served(&self) -> &Expect {
        self.served.as_ref().unwrap_or(&self.expect)
    }

    /// The HTTP status `POST /events` answers.
    fn status(&self) -> u16 {
        if self.body.len() > MAX_BODY_BYTES {
            413
        } else if matches!(self.served(), Expect::Rejected(_)) {
            400
        } else {
            200
        }
    }
}

fn rejected(reason: &'static str) -> Expect {
    Expect::Rejected(reason)
}

fn applied(lines: &[&str]) -> Expect {
    Expect::Applied(lines.iter().map(|s| (*s).to_owned()).collect())
}

/// A complete EventBridge deployment state-change event.
fn eventbridge(detail: Value) -> Value {
    let mut event = json!({
        "version": "0",
        "id": "c0ffee00-0000-4000-8000-000000000001",
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "account": "123456789012",
        "time": "2025-12-15T09:05:00Z",
        "region": "eu-west-1",
        "resources": ["arn:aws:codedeploy:eu-west-1:123456789012:application:app"],
        "detail": {
            "region": "eu-west-1",
            "application": "app",
            "deploymentId": "d-HOSTILE01",
            "state": "SUCCESS",
            "deploymentGroup": "grp"
        }
    });
    merge(&mut event["detail"], detail);
    event
}

/// A raw CodeDeploy trigger message (SNS raw delivery) of a failed deployment.
fn trigger(fields: Value) -> Value {
    let mut message = json!({
        "region": "eu-west-1",
        "accountId": "123456789012",
        "eventTriggerName": "on-failure",
        "applicationName": "app",
        "deploymentId": "d-HOSTILE02",
        "deploymentGroupName": "grp",
        "createTime": "Mon Dec 15 09:00:00 UTC 2025",
        "completeTime": "Mon Dec 15 09:05:00 UTC 2025",
        "deploymentOverview": "{\"Succeeded\":\"1\",\"Failed\":\"1\",\"Skipped\":\"0\",\"InProgress\":\"0\",\"Pending\":\"0\"}",
        "status": "FAILED",
        "errorInformation": "{\"ErrorCode\":\"HEALTH_CONSTRAINTS\",\"ErrorMessage\":\"too many failed\"}"
    });
    merge(&mut message, fields);
    message
}

/// An API `GetDeployment` output of a succeeded deployment.
fn api(fields: Value) -> Value {
    let mut info = json!({
        "applicationName": "app",
        "deploymentGroupName": "grp",
        "deploymentId": "d-HOSTILE03",
        "status": "Succeeded",
        "creator": "user",
        "computePlatform": "Server",
        "deploymentStyle": {"deploymentType": "IN_PLACE", "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
        "createTime": 1765789200.0,
        "completeTime": 1765789500.0,
        "deploymentOverview": {"Pending": 0, "InProgress": 0, "Succeeded": 2, "Failed": 0, "Skipped": 0, "Ready": 0}
    });
    merge(&mut info, fields);
    json!({ "deploymentInfo": info })
}

/// An API `GetDeploymentTarget` output whose one hook failed.
fn target(hook: &str, error_code: &str) -> Value {
    json!({"deploymentTarget": {
        "deploymentTargetType": "InstanceTarget",
        "instanceTarget": {
            "deploymentId": "d-HOSTILE02",
            "targetId": "i-0123456789abcdef0",
            "status": "Failed",
            "lastUpdatedAt": 1765789500.0,
            "lifecycleEvents": [{
                "lifecycleEventName": hook,
                "status": "Failed",
                "startTime": 1765789260.0,
                "endTime": 1765789290.0,
                "diagnostics": {"errorCode": error_code, "message": "failed", "scriptName": "s.sh", "logTail": ""}
            }]
        }
    }})
}

/// Overwrites `base`'s fields with `fields` (a `null` deletes the field).
fn merge(base: &mut Value, fields: Value) {
    if let (Value::Object(base), Value::Object(fields)) = (base, fields) {
        for (key, value) in fields {
            if value.is_null() {
                base.remove(&key);
            } else {
                base.insert(key, value);
            }
        }
    }
}

fn bytes(value: &Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

/// The base labels of the default test group, with `application`/`deployment_group` replaced.
fn group(application: &str, deployment_group: &str) -> String {
    format!(
        "account_id=\"123456789012\",region=\"eu-west-1\",application=\"{application}\",deployment_group=\"{deployment_group}\""
    )
}

fn named_cases() -> Vec<Case> {
    let eb_sample = include_str!("fixtures/samples/eventbridge-deployment-success.json");
    let trigger_text = trigger(json!({})).to_string();
    // API output names no account or region: such a deployment stands alone with empty labels.
    let api_group = "account_id=\"\",region=\"\",application=\"app\",deployment_group=\"grp\"";
    let succeeded_api = format!("codedeploy_deployments_total{{{api_group},compute_platform=\"Server\",deployment_type=\"IN_PLACE\",creator=\"user\",deployment_config=\"unknown\",status=\"succeeded\"}} 1");
    let failed_trigger = format!(
        "codedeploy_deployments_total{{{},compute_platform=\"unknown\",deployment_type=\"unknown\",creator=\"unknown\",deployment_config=\"unknown\",status=\"failed\"}} 1",
        group("app", "grp")
    );
    let padding = "x".repeat(3 * 1024 * 1024);
    let mut cases = vec![
        // --- Not a message at all -------------------------------------------------
        Case::new("empty body", "", rejected("invalid_json")),
        Case::new("whitespace only", " \r\n\t ", rejected("invalid_json")),
        Case::new("JSON null", "null", rejected("unknown_format")),
        Case::new("JSON number", "42", rejected("unknown_format")),
        Case::new("JSON string", "\"SUCCESS\"", rejected("unknown_format")),
        Case::new("empty object", "{}", rejected("unknown_format")),
        Case::new("empty array", "[]", rejected("unknown_format")),
        Case::new("an array of events (one per request, please)", format!("[{eb_sample}]"), rejected("unknown_format")),
        Case::new("an object of no known format", r#"{"hello":"world","deploymentId":"d-1"}"#, rejected("unknown_format")),
        Case::new("two JSON documents in one body", format!("{trigger_text}{trigger_text}"), rejected("invalid_json")),
        Case::new("EventBridge event from another source", bytes(&json!({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2", "detail": {}})), rejected("unknown_format")),
        // --- Truncated ---------------------------------------------------------------
        Case::new("truncated JSON (half an EventBridge event)", &eb_sample.as_bytes()[..eb_sample.len() / 2], rejected("invalid_json")),
        Case::new("truncated JSON (last byte missing)", &trigger_text.as_bytes()[..trigger_text.len() - 1], rejected("invalid_json")),
        Case::new(
            "SNS envelope around a truncated trigger message",
            bytes(&json!({"Type": "Notification", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t", "Timestamp": "2025-12-15T09:05:01.000Z", "Message": &trigger_text[..trigger_text.len() / 2]})),
            rejected("invalid_json"),
        ),
        Case::new("trigger with a truncated embedded errorInformation", bytes(&trigger(json!({"errorInformation": "{\"ErrorCode\":\"HEALTH"}))), rejected("invalid_json")),
        // --- Huge --------------------------------------------------------------------
        Case::new(
            "3 MiB body: a valid event padded with an unknown field",
            bytes(&eventbridge(json!({"deploymentId": "d-HUGE00001", "padding": padding}))),
            applied(&["codedeploy_exporter_deployments_tracked 1"]),
        ),
        Case::new("3 MiB of garbage", vec![b'x'; 3 * 1024 * 1024], rejected("invalid_json")),
        Case::new("3 MiB of spaces", vec![b' '; 3 * 1024 * 1024], rejected("invalid_json")),
        Case::new(
            "a batch of 5000 deployments in one body",
            bytes(&json!({"deploymentsInfo": (0..5000).map(|i| api(json!({"deploymentId": format!("d-BATCH{i:05}")}))["deploymentInfo"].clone()).collect::<Vec<_>>()})),
            applied(&["codedeploy_exporter_deployments_tracked 5000"]),
        ),
        // --- Deep ------------------------------------------------------------------------
        Case::new("100k nested arrays", "[".repeat(100_000), rejected("invalid_json")),
        Case::new("100k nested arrays, closed", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)), rejected("invalid_json")),
        Case::new("100k nested objects", format!("{}1{}", "{\"a\":".repeat(100_000), "}".repeat(100_000)), rejected("invalid_json")),
        Case::new(
            "100k nested arrays inside an SNS Message string",
            bytes(&json!({"Type": "Notification", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t", "Message": "[".repeat(100_000)})),
            rejected("invalid_json"),
        ),
        Case::new(
            "100k nested arrays inside a deploymentOverview string",
            bytes(&trigger(json!({"deploymentOverview": "[".repeat(100_000)}))),
            rejected("invalid_json"),
        ),
        // --- Unknown states ------------------------------------------------------------------
        Case::new("EventBridge state EXPLODED", bytes(&eventbridge(json!({"state": "EXPLODED"}))), rejected("unknown_state")),
        Case::new("EventBridge state in lower case", bytes(&eventbridge(json!({"state": "success", "deploymentId": "d-LOWER0001"}))), applied(&["codedeploy_exporter_deployments_tracked 1"])),
        Case::new(
            "EventBridge instance state EXPLODED",
            bytes(&json!({"detail-type": "CodeDeploy Instance State-change Notification", "source": "aws.codedeploy", "account": "123456789012", "region": "eu-west-1", "time": "2025-12-15T09:05:00Z",
                "detail": {"deploymentId": "d-HOSTILE01", "instanceId": "i-1", "state": "EXPLODED", "application": "app", "deploymentGroup": "grp"}})),
            rejected("unknown_state"),
        ),
        Case::new(
            "trigger status EXPLODED: kept, with no status",
            bytes(&trigger(json!({"status": "EXPLODED"}))),
            applied(&[&format!("codedeploy_deployments_in_progress{{{}}} 0", group("app", "grp")), "codedeploy_exporter_deployments_tracked 1"]),
        ),
        Case::new(
            "trigger status `unknown` (real SNS sends it)",
            bytes(&trigger(json!({"status": "unknown"}))),
            applied(&["codedeploy_exporter_deployments_tracked 1"]),
        ),
        Case::new(
            "CloudTrail event from aws.codedeploy",
            bytes(&json!({"detail-type": "AWS API Call via CloudTrail", "source": "aws.codedeploy", "detail": {}})),
            Expect::Ignored,
        ),
        Case::new(
            "the trigger setup test message",
            bytes(&json!({"Type": "Notification", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t", "Subject": "AWS CodeDeploy notification setup for trigger on-failure",
                "Message": "Your AWS CodeDeploy trigger on-failure is able to send notifications to this Amazon SNS topic."})),
            Expect::Ignored,
        ),
        // --- Not UTF-8 -------------------------------------------------------------------
        Case::new("invalid UTF-8 byte in a deployment id", b"{\"deploymentId\":\"d-\xff\xfe\"}".to_vec(), rejected("not_utf8")),
        Case::new("Latin-1 application name", {
            let mut body = bytes(&eventbridge(json!({"application": "caf_"})));
            let at = body.windows(4).position(|w| w == b"caf_").expect("placeholder") + 3;
            body[at] = 0xe9;
            body
        }, rejected("not_utf8")),
        Case::new("UTF-16LE with its byte-order mark", {
            let mut body = vec![0xff, 0xfe];
            body.extend(trigger_text.encode_utf16().flat_map(u16::to_le_bytes));
            body
        }, rejected("not_utf8")),
        Case::new("a lone UTF-16 surrogate escape in a label", bytes(&eventbridge(json!({"deploymentId": "d-SURR00001"}))).replace_str("\"grp\"", "\"g\\ud800\""), rejected("invalid_json")),
        // --- Byte-order marks and duplicate keys ----------------------------------------------------
        Case::new("UTF-8 byte-order mark before the JSON", [&b"\xef\xbb\xbf"[..], trigger_text.as_bytes()].concat(), applied(&[&failed_trigger])),
        Case::new("two byte-order marks", [&b"\xef\xbb\xbf\xef\xbb\xbf"[..], trigger_text.as_bytes()].concat(), applied(&[&failed_trigger])),
        Case::new("byte-order mark inside the JSON", trigger_text.replacen(',', ",\u{feff}", 1), rejected("invalid_json")),
        Case::new(
            "duplicate keys: the last one wins",
            trigger_text.replacen("\"status\":\"FAILED\"", "\"status\":\"SUCCEEDED\",\"status\":\"FAILED\"", 1),
            applied(&[&failed_trigger]),
        ),
        Case::new(
            "duplicate deploymentId keys: the last one wins",
            trigger_text.replacen("\"deploymentId\":\"d-HOSTILE02\"", "\"deploymentId\":\"d-NOTTHIS01\",\"deploymentId\":\"d-HOSTILE02\"", 1),
            applied(&[&failed_trigger, "codedeploy_exporter_deployments_tracked 1"]),
        ),
        // --- Absurd timestamps ---------------------------------------------------------------------
        Case::new("EventBridge time in the year 99999", bytes(&eventbridge(json!({}))).replace_str("2025-12-15T09:05:00Z", "99999-12-15T09:05:00Z"), rejected("invalid_timestamp")),
        Case::new("trigger createTime in the year 99999", bytes(&trigger(json!({"createTime": "Mon Dec 15 09:00:00 UTC 99999"}))), rejected("invalid_timestamp")),
        Case::new("API createTime negative", bytes(&api(json!({"createTime": -1765789200.0}))), rejected("invalid_timestamp")),
        Case::new("API createTime 1e300", bytes(&api(json!({"createTime": 1e300}))), rejected("invalid_timestamp")),
        Case::new("API createTime in milliseconds (year 57000)", bytes(&api(json!({"createTime": 1765789200000.0_f64}))), rejected("invalid_timestamp")),
        Case::new("API createTime u64::MAX", bytes(&api(json!({"createTime": u64::MAX}))), rejected("invalid_timestamp")),
        Case::new("trigger createTime \"NaN\"", bytes(&trigger(json!({"createTime": "NaN"}))), rejected("invalid_timestamp")),
        Case::new("trigger createTime \"Infinity\"", bytes(&trigger(json!({"createTime": "Infinity"}))), rejected("invalid_timestamp")),
        Case::new("trigger createTime \"-1\"", bytes(&trigger(json!({"createTime": "-1"}))), rejected("invalid_timestamp")),
        Case::new("trigger createTime \"1e300\"", bytes(&trigger(json!({"createTime": "1e300"}))), rejected("invalid_timestamp")),
        Case::new("trigger createTime in a named zone (PDT)", bytes(&trigger(json!({"createTime": "Mon Dec 15 09:00:00 PDT 2025"}))), rejected("invalid_timestamp")),
        Case::new("trigger createTime \"yesterday\"", bytes(&trigger(json!({"createTime": "yesterday"}))), rejected("invalid_timestamp")),
        Case::new("API createTime as a boolean", bytes(&api(json!({"createTime": true}))), rejected("invalid_timestamp")),
        Case::new(
            "completeTime before createTime (clock skew): clamped to 0 and counted",
            bytes(&api(json!({"createTime": 1765789500.0, "completeTime": 1765789200.0}))),
            applied(&[&succeeded_api, "codedeploy_exporter_data_quality_issues_total{reason=\"negative_duration\"} 1"]),
        ),
        Case::new(
            "a deployment of 300 years: clamped to 14 days and counted",
            bytes(&api(json!({"createTime": 0.0, "completeTime": 9467280000.0}))),
            applied(&[&succeeded_api, "codedeploy_exporter_data_quality_issues_total{reason=\"absurd_duration\"} 1"]),
        )
        .when_served(rejected("time_in_future")),
        Case::new(
            "the latest time there is (9999-12-31T23:59:59.999Z)",
            bytes(&api(json!({"createTime": 253402300799.0, "completeTime": 253402300799.999}))),
            applied(&[&succeeded_api]),
        )
        .when_served(rejected("time_in_future")),
        // --- Counts ------------------------------------------------------------------------------
        Case::new(
            "deploymentOverview counts of u64::MAX (overflowed the ledger before the fix)",
            bytes(&api(json!({"deploymentOverview": {"Pending": u64::MAX, "InProgress": u64::MAX, "Succeeded": u64::MAX, "Failed": u64::MAX, "Skipped": u64::MAX, "Ready": u64::MAX}}))),
            rejected("invalid_field"),
        ),
        Case::new("a count of 1 000 001 targets", bytes(&trigger(json!({"deploymentOverview": "{\"Failed\":\"1000001\"}"}))), rejected("invalid_field")),
        Case::new(
            "a count of 1 000 000 targets (the most accepted)",
            bytes(&trigger(json!({"deploymentOverview": "{\"Failed\":\"1000000\"}"}))),
            applied(&[&format!("codedeploy_deployment_targets_total{{{},status=\"failed\"}} 1000000", group("app", "grp"))]),
        ),
        Case::new("a negative count", bytes(&trigger(json!({"deploymentOverview": "{\"Failed\":-1}"}))), rejected("invalid_field")),
        Case::new("a count of 1e300", bytes(&trigger(json!({"deploymentOverview": "{\"Failed\":1e300}"}))), rejected("invalid_field")),
        // --- Identifiers ---------------------------------------------------------------------------
        Case::new("deployment id with NUL", bytes(&trigger(json!({"deploymentId": "d-\u{0}1"}))), rejected("invalid_field")),
        Case::new("deployment id with a newline", bytes(&trigger(json!({"deploymentId": "d-1\nd-2"}))), rejected("invalid_field")),
        Case::new("deployment id with a tab", bytes(&eventbridge(json!({"deploymentId": "d-\t1"}))), rejected("invalid_field")),
        Case::new("deployment id with DEL", bytes(&api(json!({"deploymentId": "d-\u{7f}1"}))), rejected("invalid_field")),
        Case::new("deployment id with a C1 control (U+0085)", bytes(&api(json!({"deploymentId": "d-\u{85}1"}))), rejected("invalid_field")),
        Case::new("deployment id of 129 characters", bytes(&api(json!({"deploymentId": "d".repeat(129)}))), rejected("invalid_field")),
        Case::new("deployment id of 10 000 characters", bytes(&api(json!({"deploymentId": "d".repeat(10_000)}))), rejected("invalid_field")),
        Case::new("deployment id as a number", bytes(&api(json!({"deploymentId": 7}))), rejected("invalid_field")),
        Case::new("empty deployment id", bytes(&trigger(json!({"deploymentId": ""}))), rejected("missing_field")),
        Case::new(
            "deployment id with quotes and backslashes: applied, never a label",
            bytes(&api(json!({"deploymentId": "d-\"\\}{"}))),
            applied(&[&succeeded_api]),
        ),
        Case::new(
            "deployment id of 128 characters (the longest accepted)",
            bytes(&api(json!({"deploymentId": "d".repeat(128)}))),
            applied(&[&succeeded_api]),
        ),
        Case::new("target id with a newline", bytes(&target("Install", "ScriptFailed")).replace_str("i-0123456789abcdef0", "i-1\\ni-2"), rejected("invalid_field")),
        Case::new("target id of 513 characters", bytes(&target("Install", "ScriptFailed")).replace_str("i-0123456789abcdef0", &"i".repeat(513)), rejected("invalid_field")),
    ];

    // --- Label values that would break the exposition format -------------------------------------
    let nasty = "a\"b\\c\nd}e{f,g=h i\u{0}j\u{1b}[31mk\u{7f}l\u{2028}m\u{feff}n🚀";
    // The same, as the text format must escape it: \ → \\, " → \", newline → \n; nothing else.
    let escaped = "a\\\"b\\\\c\\nd}e{f,g=h i\u{0}j\u{1b}[31mk\u{7f}l\u{2028}m\u{feff}n🚀";
    cases.extend([
        Case::new(
            "application name with quote, backslash, newline, braces, controls",
            bytes(&trigger(json!({"applicationName": nasty}))),
            applied(&[&format!("codedeploy_deployments_total{{{},compute_platform=\"unknown\",deployment_type=\"unknown\",creator=\"unknown\",deployment_config=\"unknown\",status=\"failed\"}} 1", group(escaped, "grp"))]),
        ),
        Case::new(
            "deployment group name with the same",
            bytes(&eventbridge(json!({"deploymentGroup": nasty, "deploymentId": "d-LABEL0001"}))),
            applied(&[&format!("codedeploy_deployments_in_progress{{{}}} 0", group("app", escaped))]),
        ),
        Case::new(
            "account and region with the same",
            bytes(&trigger(json!({"accountId": nasty, "region": "eu\"west\\1\n"}))),
            applied(&[&format!("codedeploy_change_failures_total{{account_id=\"{escaped}\",region=\"eu\\\"west\\\\1\\n\",application=\"app\",deployment_group=\"grp\"}} 1")]),
        ),
        Case::new(
            "error code with the same",
            bytes(&trigger(json!({"errorInformation": json!({"ErrorCode": nasty, "ErrorMessage": "m"}).to_string()}))),
            applied(&[&format!("codedeploy_deployment_errors_total{{{},error_code=\"other\"}} 1", group("app", "grp"))]),
        ),
        Case::new(
            "creator, compute platform and deployment type with the same",
            bytes(&api(json!({"creator": nasty, "computePlatform": "EC2\"}\n", "deploymentStyle": {"deploymentType": "\\"}}))),
            applied(&[&format!(
                "codedeploy_deployments_total{{{api_group},compute_platform=\"EC2\\\"}}\\n\",deployment_type=\"\\\\\",creator=\"other\",deployment_config=\"unknown\",status=\"succeeded\"}} 1"
            )]),
        ),
        Case::new(
            "lifecycle hook name and script error code with the same",
            bytes(&target(nasty, "Script\"Failed\\\n}")),
            applied(&[&format!(
                "codedeploy_lifecycle_event_failures_total{{{},lifecycle_event=\"{escaped}\",error_code=\"other\"}} 1",
                group("app", "grp")
            )]),
        )
        .after(trigger_text.clone()),
        Case::new(
            "a label value of 100 000 characters",
            bytes(&trigger(json!({"applicationName": "A".repeat(100_000)}))),
            rejected("label_too_long"),
        ),
        Case::new(
            "an empty application name (absent, like null)",
            bytes(&trigger(json!({"applicationName": ""}))),
            applied(&[&format!("codedeploy_change_failures_total{{{}}} 1", group("", "grp"))]),
        ),
        Case::new(
            "application null",
            trigger_text.replace_str("\"applicationName\":\"app\"", "\"applicationName\":null"),
            applied(&[&format!("codedeploy_change_failures_total{{{}}} 1", group("", "grp"))]),
        ),
    ]);
    cases
}

trait ReplaceStr {
    fn replace_str(&self, from: &str, to: &str) -> Vec<u8>;
}

impl ReplaceStr for [u8] {
    fn replace_str(&self, from: &str, to: &str) -> Vec<u8> {
        let text = std::str::from_utf8(self).expect("UTF-8");
        assert!(text.contains(from), "{from:?} not in the message");
        text.replacen(from, to, 1).into_bytes()
    }
}

impl ReplaceStr for Vec<u8> {
    fn replace_str(&self, from: &str, to: &str) -> Vec<u8> {
        self.as_slice().replace_str(from, to)
    }
}

impl ReplaceStr for String {
    fn replace_str(&self, from: &str, to: &str) -> Vec<u8> {
        self.as_bytes().replace_str(from, to)
    }
}

fn describe(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(160)]).into_owned();
    format!("{text:?}{}", if bytes.len() > 160 { "…" } else { "" })
}

/// Runs one case in process: its outcome, the exposition's shape, promtool.
fn run_in_process(case: &Case) -> Result<(), String> {
    let mut exporter = checks::new_exporter();
    let now = checks::START;
    for message in &case.before {
        exporter
            .ingest(Source::Webhook, message.as_bytes(), now)
            .map_err(|e| format!("a message sent before was rejected: {e}"))?;
    }
    checks::check_decode(&case.body);
    let outcome: Result<Outcome, DecodeError> = exporter.ingest(Source::Webhook, &case.body, now);
    match (&case.expect, &outcome) {
        (Expect::Rejected(reason), Err(error)) if error.reason() == *reason => {
            let text = error.to_string();
            if text.len() > checks::MAX_ERROR_TEXT {
                return Err(format!("an error text of {} bytes", text.len()));
            }
        }
        (Expect::Ignored, Ok(Outcome::Ignored)) => {}
        (Expect::Applied(_), Ok(Outcome::Applied)) => {}
        (expected, got) => return Err(format!("expected {expected:?}, got {got:?}")),
    }
    exporter.settle(now, true);
    let (text, _openmetrics) = checks::render_checked(&exporter, now);
    if let Expect::Applied(lines) = &case.expect {
        for line in lines {
            if !text.contains(line.as_str()) {
                let shown: String = line.chars().take(300).collect();
                return Err(format!("the exposition lacks {shown:?}"));
            }
        }
    }
    promtool::check_metrics(&text)
}

#[test]
fn named_hostile_inputs_get_the_documented_outcome() {
    promtool::promtool();
    let failures: Vec<String> = named_cases()
        .iter()
        .filter_map(|case| {
            let result = catch_unwind(AssertUnwindSafe(|| run_in_process(case)))
                .unwrap_or_else(|panic| Err(format!("PANIC: {:?}", panic.downcast_ref::<String>())));
            result.err().map(|e| format!("{}: {e}\n    body: {}", case.name, describe(&case.body)))
        })
        .collect();
    assert!(failures.is_empty(), "{} cases failed:\n{}", failures.len(), failures.join("\n"));
}

/// All the named cases into one exporter, one after the other, as a live
/// exporter would get them: the exposition stays well formed.
#[test]
fn all_named_hostile_inputs_together_keep_the_exposition_clean() {
    let mut exporter = checks::new_exporter();
    let mut now = checks::START;
    for case in named_cases() {
        for message in case.before.iter().map(String::as_bytes).chain([case.body.as_slice()]) {
            let _ = checks::step(&mut exporter, message, now);
            now += checks::STEP_MS;
        }
    }
    exporter.settle(now, true);
    for anchor in checks::anchors(&exporter, now) {
        let (text, _) = checks::render_checked(&exporter, anchor);
        promtool::assert_promtool_clean(&text);
    }
}

// ---------------------------------------------------------------------------
// Wrong types on every known field
// ---------------------------------------------------------------------------

/// Every field path of `value` (objects only; arrays through their first element).
fn field_paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                prefix.push(key.clone());
                out.push(prefix.clone());
                field_paths(child, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                prefix.push("0".to_owned());
                field_paths(first, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn set_path(value: &mut Value, path: &[String], replacement: &Value) {
    let mut slot = value;
    for key in path {
        slot = match slot {
            Value::Array(items) => &mut items[key.parse::<usize>().expect("index")],
            other => &mut other[key.as_str()],
        };
    }
    *slot = replacement.clone();
}

/// The messages whose every field is replaced by values of the wrong type.
fn typed_templates() -> Vec<(&'static str, Value)> {
    let sns = |message: &Value| {
        json!({"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:eu-west-1:123456789012:t",
               "Subject": "FAILED: AWS CodeDeploy d-HOSTILE02", "Timestamp": "2025-12-15T09:05:01.000Z",
               "Message": message.to_string()})
    };
    vec![
        ("EventBridge deployment event", eventbridge(json!({}))),
        (
            "EventBridge instance event",
            json!({"version": "0", "id": "i-1", "detail-type": "CodeDeploy Instance State-change Notification", "source": "aws.codedeploy",
                   "account": "123456789012", "time": "2025-12-15T09:05:00Z", "region": "eu-west-1", "resources": [],
                   "detail": {"instanceId": "i-0123456789abcdef0", "region": "eu-west-1", "state": "SUCCESS", "application": "app",
                              "deploymentId": "d-HOSTILE01", "instanceGroupId": "g-1", "deploymentGroup": "grp"}}),
        ),
        ("trigger message", trigger(json!({}))),
        ("SNS envelope", sns(&trigger(json!({})))),
        ("Lambda SNS Records", json!({"Records": [{"EventSource": "aws:sns", "Sns": sns(&trigger(json!({})))}]})),
        (
            "API deploymentInfo",
            api(json!({"rollbackInfo": {"rollbackDeploymentId": "d-ROLLBACK1", "rollbackMessage": "m"},
                       "errorInformation": {"code": "HEALTH_CONSTRAINTS", "message": "m"}, "status": "Failed"})),
        ),
        ("API deploymentTarget", target("Install", "ScriptFailed")),
    ]
}

/// Replacing any field of any format by a value of the wrong type never
/// panics and never breaks the exposition; a field the decoders read is
/// rejected with a reason naming it, one they do not read changes nothing.
#[test]
fn wrong_types_on_every_known_field() {
    let wrong = [json!(7), json!(-1.5), json!(true), json!([]), json!({}), json!([{}]), json!("7"), json!({"a": [1]})];
    let mut exporter = checks::new_exporter();
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let mut now = checks::START;
    for (format, template) in typed_templates() {
        let mut paths = Vec::new();
        field_paths(&template, &mut Vec::new(), &mut paths);
        for path in paths {
            for replacement in &wrong {
                let mut message = template.clone();
                set_path(&mut message, &path, replacement);
                let body = bytes(&message);
                let outcome = catch_unwind(AssertUnwindSafe(|| checks::step(&mut exporter, &body, now)));
                now += checks::STEP_MS;
                let field = path.join(".");
                match outcome {
                    Err(_) => failures.push(format!("{format} `{field}` = {replacement}: PANIC")),
                    Ok(Err(error)) => {
                        let leaf = path.iter().rev().find(|k| k.parse::<usize>().is_err()).expect("a key");
                        let text = error.to_string();
                        // An error names the field it is about (or a parent object
                        // that lost its shape, for a wrong-typed container).
                        let named = path.iter().any(|key| text.contains(key.as_str())) || text.contains("format");
                        if !named {
                            failures.push(format!("{format} `{field}` = {replacement}: rejected ({text}) without naming `{leaf}`"));
                        }
                        report.push(format!("{format}\t{field}\t{replacement}\trejected\t{}", error.reason()));
                    }
                    Ok(Ok(outcome)) => report.push(format!("{format}\t{field}\t{replacement}\t{}", outcome.label())),
                }
            }
        }
    }
    if std::env::var_os("HOSTILE_REPORT").is_some() {
        eprintln!("{}", report.join("\n"));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    exporter.settle(now, true);
    let (text, _) = checks::render_checked(&exporter, now);
    promtool::assert_promtool_clean(&text);
}

// ---------------------------------------------------------------------------
// Through the webhook of a real `codedeploy-exporter serve`
// ---------------------------------------------------------------------------

const SECRET: &str = "hostile-input-test-secret";

struct Server {
    child: Child,
    address: SocketAddr,
    _storage: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
}

fn start_server() -> Server {
    start_server_with(&[])
}

fn start_server_with(flags: &[&str]) -> Server {
    let storage = tempfile::tempdir().expect("temporary directory");
    let address = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_codedeploy-exporter"))
        .args(["serve", "--web.listen-address", &address.to_string(), "--webhook.secret", SECRET, "--storage.path"])
        .arg(storage.path())
        .args(flags)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start codedeploy-exporter serve");
    let server = Server { child, address, _storage: storage };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok((200, _)) = request(address, "GET", "/-/ready", &[]) {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("codedeploy-exporter serve did not become ready on {address}");
}

/// One HTTP/1.1 request; returns the status and the body. The body is written
/// from another thread, so an early answer (413) is read even when the server
/// stops reading.
fn request(address: SocketAddr, method: &str, path: &str, body: &[u8]) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nX-Api-Key: {SECRET}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    let mut writer = stream.try_clone()?;
    let body = body.to_vec();
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(&body);
    });
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    let _ = sender.join();
    if read.is_err() && response.is_empty() {
        read?;
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no HTTP status in {text:?}")))?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    // `/metrics` streams its body, which HTTP/1.1 frames in chunks.
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    Ok((status, if chunked { dechunk(body) } else { body.to_owned() }))
}

/// The payload of a chunked HTTP/1.1 body: `<hex size>\r\n<data>\r\n`, until size 0.
fn dechunk(mut framed: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = framed.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 || rest.len() < size {
            break;
        }
        body.push_str(&rest[..size]);
        framed = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    body
}

#[test]
fn the_webhook_answers_each_named_case_with_the_documented_status() {
    promtool::promtool();
    let server = start_server();
    let mut failures = Vec::new();
    let mut rejected = 0;
    for case in named_cases() {
        for message in &case.before {
            match request(server.address, "POST", "/events", message.as_bytes()) {
                Ok((200, _)) => {}
                other => failures.push(format!("{}: a message sent before got {other:?}", case.name)),
            }
        }
        let expected = case.status();
        match request(server.address, "POST", "/events", &case.body) {
            Ok((status, body)) if status == expected => {
                if let Expect::Rejected(reason) = *case.served() {
                    if status == 400 {
                        rejected += 1;
                        let answer: Value = serde_json::from_str(&body).unwrap_or_default();
                        if answer["reason"] != reason {
                            failures.push(format!("{}: 400 with reason {} instead of {reason}", case.name, answer["reason"]));
                        }
                    }
                }
            }
            other => failures.push(format!("{}: expected HTTP {expected}, got {other:?}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let (status, metrics) = request(server.address, "GET", "/metrics", &[]).expect("scrape");
    assert_eq!(status, 200);
    promtool::check_metrics(&metrics).unwrap_or_else(|e| panic!("on the served exposition: {e}"));
    let counted = format!("codedeploy_exporter_events_total{{source=\"webhook\",outcome=\"rejected\"}} {rejected}\n");
    assert!(metrics.contains(&counted), "every 400 is counted as rejected (and a 413 is not): expected {counted:?}");
}

/// The value of the one sample `series` (name and labels, as rendered) in `metrics`.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no sample {series} in\n{metrics}"))
}

/// Distinct `deployment_group` label values on `codedeploy_deployments_total`.
fn groups_shown(metrics: &str) -> std::collections::BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("codedeploy_deployments_total{"))
        .filter_map(|l| l.split("deployment_group=\"").nth(1)?.split('"').next().map(str::to_owned))
        .collect()
}

fn scrape_until(server: &Server, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, metrics) = request(server.address, "GET", "/metrics", &[]).expect("scrape");
        assert_eq!(status, 200);
        if done(&metrics) {
            return metrics;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; last scrape:\n{metrics}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Floods of distinct groups, deployment ids, error codes and hook names,
/// over-long names and far-future times, through the real webhook: every
/// table and label stays within its bound, each overflow is counted in
/// `codedeploy_exporter_limited_total`, and a legitimate group keeps counting.
#[test]
fn floods_of_names_codes_hooks_and_ids_stay_bounded_and_counted() {
    const MAX_GROUPS: usize = 8;
    let server = start_server_with(&[
        "--limits.max-groups", &MAX_GROUPS.to_string(), "--limits.max-tracked", "40", "--ledger.settle-time", "1s",
    ]);
    let post = |value: &Value| request(server.address, "POST", "/events", &bytes(value)).expect("a response");
    let reason = |body: &str| serde_json::from_str::<Value>(body).unwrap_or_default()["reason"].as_str().unwrap_or_default().to_owned();
    let legit = |n: usize| eventbridge(json!({"deploymentId": format!("d-LEGIT{n:04}"), "application": "legit", "deploymentGroup": "prod"}));
    assert_eq!(post(&legit(0)).0, 200);
    let legit_total = |n: u32| format!("codedeploy_deployments_total{{{},compute_platform=\"unknown\",deployment_type=\"unknown\",creator=\"unknown\",deployment_config=\"unknown\",status=\"succeeded\"}} {n}", group("legit", "prod"));
    scrape_until(&server, "the legitimate deployment counted", |m| m.contains(&legit_total(1)));

    // Error codes and custom hooks nobody documents, in one group.
    for i in 0..12 {
        let id = format!("d-CODES{i:04}");
        let failed = trigger(json!({"deploymentId": id, "deploymentGroupName": "codes",
            "errorInformation": format!("{{\"ErrorCode\":\"EVIL_{i}\",\"ErrorMessage\":\"x\"}}")}));
        assert_eq!(post(&failed).0, 200);
        let mut hook = target(&format!("MyHook{i}"), &format!("Weird{i}"));
        hook["deploymentTarget"]["instanceTarget"]["deploymentId"] = json!(id);
        assert_eq!(post(&hook).0, 200);
    }
    // Alarms past a group's ten, and custom deployment configurations past its four.
    for i in 0..6 {
        let message = format!("One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: <evil-{i}a> <evil-{i}b>");
        let stopped = trigger(json!({"deploymentId": format!("d-ALARM{i:04}"), "deploymentGroupName": "alarms", "status": "STOPPED",
            "errorInformation": json!({"ErrorCode": "ALARM_ACTIVE", "ErrorMessage": message}).to_string()}));
        assert_eq!(post(&stopped).0, 200);
        let id = format!("d-CONFIG{i:03}");
        let located = eventbridge(json!({"deploymentId": id, "deploymentGroup": "configs"}));
        assert_eq!(post(&located).0, 200);
        let described = json!({"deploymentInfo": {"applicationName": "app", "deploymentGroupName": "configs", "deploymentId": id,
            "status": "Succeeded", "createTime": 1765789200.0, "completeTime": 1765789500.0, "deploymentConfigName": format!("Custom{i}")}});
        assert_eq!(post(&described).0, 200);
    }
    // Distinct groups and ids, twice as many as the tables hold.
    let mut refused = std::collections::BTreeMap::new();
    for wave in 0..2 {
        for i in 0..60 {
            let flood = eventbridge(json!({"deploymentId": format!("d-FLOOD{wave}{i:03}"), "application": format!("flood-{wave}-{i}")}));
            let (status, body) = post(&flood);
            if status != 200 {
                assert_eq!(status, 400, "{body}");
                *refused.entry(reason(&body)).or_insert(0) += 1;
            }
        }
    }
    assert!(refused.contains_key("limit_tracked") || refused.contains_key("limit_groups"), "{refused:?}");
    let (status, body) = post(&eventbridge(json!({"deploymentId": "d-LONG0001", "application": "a".repeat(200)})));
    assert_eq!((status, reason(&body).as_str()), (400, "label_too_long"), "{body}");
    let mut ahead = eventbridge(json!({"deploymentId": "d-AHEAD001"}));
    ahead["time"] = json!("2999-01-01T00:00:00Z");
    let (status, body) = post(&ahead);
    assert_eq!((status, reason(&body).as_str()), (400, "time_in_future"), "{body}");

    // The legitimate group still counts once the flood is over.
    assert_eq!(post(&legit(1)).0, 200);
    let metrics = scrape_until(&server, "the second legitimate deployment counted", |m| m.contains(&legit_total(2)));
    let shown = groups_shown(&metrics);
    assert!(shown.len() <= MAX_GROUPS && shown.contains("prod") && shown.contains("codes"), "{shown:?}");
    let limited = |limit: &str| sample(&metrics, &format!("codedeploy_exporter_limited_total{{limit=\"{limit}\"}}"));
    assert!(limited("groups") + limited("tracked") >= 60.0, "{}", metrics);
    assert_eq!((limited("label_length"), limited("future_time")), (1.0, 1.0));
    assert_eq!(limited("error_code"), 12.0 - 0.0, "every undocumented error code is other");
    assert_eq!(limited("hook_error_code"), 12.0);
    assert_eq!(limited("lifecycle_event"), 12.0 - 4.0, "four custom hooks per group, then other");
    assert_eq!(limited("alarm"), 12.0 - 10.0, "ten alarms per group, then other");
    assert_eq!(limited("deployment_config"), 6.0 - 4.0, "four custom configurations per group, then other");
    let alarm_stops = metrics.lines().filter(|l| l.starts_with("codedeploy_alarm_stops_total{")).count();
    assert_eq!(alarm_stops, 11, "ten alarms and other");
    let configs: std::collections::BTreeSet<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("codedeploy_deployments_total{") && l.contains("deployment_group=\"configs\""))
        .filter_map(|l| l.split("deployment_config=\"").nth(1)?.split('"').next())
        .collect();
    assert_eq!(configs, ["Custom0", "Custom1", "Custom2", "Custom3", "other"].into(), "in completion order, the first four");
    let codes = |code: &str| format!("codedeploy_deployment_errors_total{{{},error_code=\"{code}\"}}", group("app", "codes"));
    assert_eq!(sample(&metrics, &codes("other")), 12.0);
    assert!(!metrics.contains("EVIL_") && !metrics.contains("Weird"), "no undocumented value as a label");
    let hooks = metrics.lines().filter(|l| l.starts_with("codedeploy_lifecycle_event_duration_seconds_count{")).count();
    assert_eq!(hooks, 5, "four custom hooks and other");
    assert!(sample(&metrics, "codedeploy_exporter_deployments_tracked") <= 40.0 + MAX_GROUPS as f64 * 20.0);
    promtool::check_metrics(&metrics).unwrap_or_else(|e| panic!("on the served exposition: {e}"));
}
