//! Golden files for the `replay` command, run through the real binary.
//!
//! Every sample in `tests/fixtures/samples/` is replayed alone with a fixed
//! `--now` and its stdout compared with `tests/fixtures/golden/<stem>.prom`;
//! so are all samples together (`all-samples.prom`) and the hand-written
//! stream `tests/fixtures/streams/mixed.jsonl` (`mixed.prom`). A golden file
//! is a claim that the output is right: each was reviewed against its input
//! and the SPEC before it was committed.
//!
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the golden files
//! instead of comparing (review the diff before committing it). It can never
//! make a run pass: every test that compares fails after rewriting, so the
//! rewritten files are checked by a second run without it, and it is refused
//! outright when `CI` is set, where nobody would review the rewrite.
//!
//! What `mixed.jsonl` holds (account 123456789012, eu-west-1, 2025-12-15):
//! - checkout/checkout-prod (Server, in place): d-MIX000001 succeeds; d-MIX000002
//!   fails (HEALTH_CONSTRAINTS) and CodeDeploy rolls it back with d-MIX000003,
//!   which succeeds 4 min later (time to rollback and to restore: 240.65 s);
//!   d-MIX000004, the fix, succeeds.
//! - search/search-api (ECS, blue/green): d-MIX000005 is stopped by hand (known
//!   from events and a trigger only: creator "unknown"); d-MIX000007 succeeds
//!   (restore 7720.3 s after the stop); d-MIX000006 is still in progress;
//!   d-MIX000008 (an ECS canary) is stopped by two CloudWatch alarms its
//!   ALARM_ACTIVE message names, and rolled back by d-MIX000009 (cause
//!   `alarm`), whose trigger comes first (lines 28-30).
//! - Out of order: d-MIX000003's API output before any of its events, the FAILED
//!   trigger before the IN_PROGRESS one, SUCCESS before START, a BatchGetDeployments
//!   output before the events of two of its three deployments.
//! - Duplicates: lines 8 and 12 repeat lines 3 and 6. Line 4 is the trigger
//!   setup test message (ignored). Line 19 is blank. Lines 9 (truncated JSON)
//!   and 21 (an SNS envelope around a truncated trigger) are malformed.

#[path = "common/promtool.rs"]
mod promtool;

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NOW: &str = "2026-01-01T00:00:00Z";
const SAMPLES: &str = "tests/fixtures/samples";
const GOLDEN: &str = "tests/fixtures/golden";
const MIXED: &str = "tests/fixtures/streams/mixed.jsonl";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `codedeploy-exporter replay --now NOW FILE...` from the crate root, so
/// that the file names on stderr are the relative paths given here.
fn replay(files: &[PathBuf]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_codedeploy-exporter"))
        .current_dir(root())
        .env_remove("RUST_LOG")
        .env_remove("CODEDEPLOY_EXPORTER_LOG_LEVEL")
        .arg("replay")
        .arg("--now")
        .arg(NOW)
        .args(files)
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "replay {files:?} exited with {}; stderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// stdout, with the git revision of `codedeploy_exporter_build_info` written as
/// `REVISION`: it changes with every commit, and golden files are about the fold.
fn stdout(output: &Output) -> String {
    let text = String::from_utf8(output.stdout.clone()).expect("the exposition is UTF-8");
    let revision = format!("revision=\"{}\"", codedeploy_exporter::ingest::REVISION);
    assert!(text.contains(&revision), "build_info carries {revision}:\n{text}");
    text.replace(&revision, "revision=\"REVISION\"")
}

/// The `<file>:<line>: rejected: <reason>` lines of stderr.
fn rejections(output: &Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stderr)
        .lines()
        .filter(|l| l.contains(": rejected: "))
        .map(str::to_owned)
        .collect()
}

/// The sample files, relative to the crate root, in name order.
fn samples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(SAMPLES))
        .expect("the samples directory")
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|p| p.is_file())
        .map(|p| Path::new(SAMPLES).join(p.file_name().expect("a file name")))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no samples in {SAMPLES}");
    files
}

/// Whether golden files are to be rewritten, from `UPDATE_GOLDEN` and `CI`;
/// an error when a rewrite is asked for under CI.
fn update_mode(update_golden: Option<OsString>, ci: Option<OsString>) -> Result<bool, String> {
    let update = update_golden.is_some_and(|v| v == "1");
    // CI systems set CI to "true" (GitHub Actions, GitLab) or "1"; an empty value is unset.
    let in_ci = ci.is_some_and(|v| !v.is_empty() && v != "0" && v != "false");
    match (update, in_ci) {
        (true, true) => Err("UPDATE_GOLDEN=1 is refused when CI is set: golden files are rewritten and reviewed by hand, never in CI".to_owned()),
        (update, _) => Ok(update),
    }
}

/// Compares `actual` with the golden file `name`.prom, or rewrites it under
/// `UPDATE_GOLDEN=1`. Returns a description of the mismatch, if any.
fn check_golden(name: &str, actual: &str) -> Option<String> {
    match update_mode(std::env::var_os("UPDATE_GOLDEN"), std::env::var_os("CI")) {
        Ok(update) => check_golden_in(&root().join(GOLDEN), update, name, actual),
        Err(refused) => Some(refused),
    }
}

/// [`check_golden`] in `dir`. A rewrite is reported as a problem too, so
/// that the run making it fails and a second run (without `UPDATE_GOLDEN`)
/// checks what was written.
fn check_golden_in(dir: &Path, update: bool, name: &str, actual: &str) -> Option<String> {
    let path = dir.join(format!("{name}.prom"));
    let expected = fs::read_to_string(&path).ok();
    if update {
        if expected.as_deref() == Some(actual) {
            return Some(format!("UPDATE_GOLDEN=1: {} is unchanged; rerun without UPDATE_GOLDEN", path.display()));
        }
        fs::create_dir_all(dir).expect("create the golden directory");
        fs::write(&path, actual).expect("write the golden file");
        return Some(format!("UPDATE_GOLDEN=1: rewrote {}; review the diff, then rerun without UPDATE_GOLDEN", path.display()));
    }
    let Some(expected) = expected else {
        return Some(format!("{} is missing; run with UPDATE_GOLDEN=1 to create it", path.display()));
    };
    (expected != actual).then(|| {
        format!(
            "{} differs from the output (rerun with UPDATE_GOLDEN=1 if the change is intended, and review it):\n{}",
            path.display(),
            diff(&expected, actual)
        )
    })
}

#[test]
fn update_golden_can_never_make_ci_pass() {
    let set = |v: &str| Some(OsString::from(v));
    assert_eq!(update_mode(None, None), Ok(false));
    assert_eq!(update_mode(set("1"), None), Ok(true));
    assert_eq!(update_mode(set("0"), None), Ok(false));
    assert_eq!(update_mode(set("1"), set("")), Ok(true), "an empty CI is unset");
    assert_eq!(update_mode(set("1"), set("false")), Ok(true));
    assert_eq!(update_mode(None, set("true")), Ok(false), "CI compares as usual");
    for ci in ["true", "1", "yes"] {
        assert!(update_mode(set("1"), set(ci)).is_err(), "CI={ci}");
    }

    // Rewriting fails the run, whether it changed the file or not; the next
    // run without UPDATE_GOLDEN passes on what was written.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let problem = check_golden_in(dir.path(), true, "x", "a 1\n").expect("a rewrite is a failure");
    assert!(problem.contains("rewrote"), "{problem}");
    assert_eq!(fs::read_to_string(dir.path().join("x.prom")).expect("written"), "a 1\n");
    assert!(check_golden_in(dir.path(), true, "x", "a 1\n").is_some(), "an unchanged file fails too");
    assert_eq!(check_golden_in(dir.path(), false, "x", "a 1\n"), None);
    assert!(check_golden_in(dir.path(), false, "x", "a 2\n").is_some());
}

fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied().unwrap_or("<none>"), a.get(i).copied().unwrap_or("<none>"));
        if x != y && shown < 10 {
            out.push_str(&format!("  line {}:\n    golden: {x}\n    actual: {y}\n", i + 1));
            shown += 1;
        }
    }
    out
}

fn assert_golden(name: &str, actual: &str) {
    if let Some(problem) = check_golden(name, actual) {
        panic!("{problem}");
    }
}

/// `replay` prints families sorted by name (SPEC: "series sorted").
fn assert_families_sorted(exposition: &str) {
    let names: Vec<&str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "metric families are not sorted");
}

#[test]
fn every_sample_matches_its_golden_file() {
    let mut problems = Vec::new();
    for sample in samples() {
        let output = replay(std::slice::from_ref(&sample));
        assert!(
            rejections(&output).is_empty(),
            "{} is a real message and must not be rejected: {:?}",
            sample.display(),
            rejections(&output)
        );
        let text = stdout(&output);
        assert_families_sorted(&text);
        let stem = sample.file_stem().and_then(|s| s.to_str()).expect("a UTF-8 file stem");
        problems.extend(check_golden(stem, &text));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_golden_file_has_its_input() {
    let mut wanted: Vec<String> = samples()
        .iter()
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(|s| format!("{s}.prom")))
        .collect();
    wanted.extend(["all-samples.prom".to_owned(), "mixed.prom".to_owned()]);
    let entries = fs::read_dir(root().join(GOLDEN)).expect("the golden directory");
    for entry in entries {
        let name = entry.expect("a directory entry").file_name().to_string_lossy().into_owned();
        assert!(wanted.contains(&name), "{GOLDEN}/{name} matches no sample or stream: stale?");
    }
}

#[test]
fn all_samples_together_match_their_golden_file() {
    let output = replay(&samples());
    let text = stdout(&output);
    assert_families_sorted(&text);
    assert_golden("all-samples", &text);
}

#[test]
fn mixed_stream_matches_its_golden_file() {
    let output = replay(&[PathBuf::from(MIXED)]);
    let text = stdout(&output);
    assert_families_sorted(&text);
    assert_golden("mixed", &text);
}

#[test]
fn malformed_lines_are_reported_with_their_line_numbers_and_do_not_fail_the_run() {
    // `replay` asserts exit status 0.
    let output = replay(&[PathBuf::from(MIXED)]);
    let reported = rejections(&output);
    assert_eq!(reported.len(), 2, "two malformed lines, reported once each: {reported:?}");
    for (line, number) in reported.iter().zip([9, 21]) {
        let prefix = format!("{MIXED}:{number}: rejected: ");
        assert!(line.starts_with(&prefix), "{line:?} does not start with {prefix:?}");
        assert!(line.len() > prefix.len(), "{line:?} gives no reason");
    }
    assert!(reported[0].contains("invalid JSON"), "{}", reported[0]);
    assert!(reported[1].contains("Message"), "the reason names the field: {}", reported[1]);
    // Counted, and the stream's other lines still counted as usual.
    let text = stdout(&output);
    for (outcome, n) in [("applied", 24), ("duplicate", 2), ("ignored", 1), ("rejected", 2)] {
        let series = format!("codedeploy_exporter_events_total{{source=\"replay\",outcome=\"{outcome}\"}} {n}\n");
        assert!(text.contains(&series), "missing {series:?}");
    }
}

#[test]
fn running_twice_gives_byte_identical_stdout() {
    let mut files = samples();
    files.push(PathBuf::from(MIXED));
    let first = replay(&files);
    let second = replay(&files);
    assert!(first.stdout == second.stdout, "{}", diff(&stdout(&first), &stdout(&second)));
    assert_eq!(first.stderr, second.stderr);
}

#[test]
fn reversing_the_file_order_gives_identical_stdout() {
    let mut files = samples();
    files.push(PathBuf::from(MIXED));
    let forward = stdout(&replay(&files));
    files.reverse();
    let backward = stdout(&replay(&files));
    assert!(forward == backward, "{}", diff(&forward, &backward));
}

/// The mixed stream split into one file per line, replayed in reverse line
/// order, counts the same deployments the same way as the stream itself.
#[test]
fn one_file_per_line_in_reverse_gives_the_same_domain_series() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let content = fs::read_to_string(root().join(MIXED)).expect("the mixed stream");
    let mut files = Vec::new();
    for (index, line) in content.lines().enumerate() {
        let path = dir.path().join(format!("line-{:02}.jsonl", index + 1));
        fs::write(&path, format!("{line}\n")).expect("write a part");
        files.push(path);
    }
    files.reverse();
    let domain = |text: String| -> String {
        text.lines().filter(|l| !l.contains("codedeploy_exporter_events_total")).map(|l| format!("{l}\n")).collect()
    };
    let split = replay(&files);
    let whole = replay(&[PathBuf::from(MIXED)]);
    assert_eq!(rejections(&split).len(), 2);
    let (split, whole) = (domain(stdout(&split)), domain(stdout(&whole)));
    assert!(split == whole, "{}", diff(&whole, &split));
}

/// SPEC: rejected lines are reported with their line number, also when the
/// file's only message sits after blank lines and parses as one JSON document.
#[test]
fn a_rejected_message_after_blank_lines_is_reported_at_its_own_line() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("late.jsonl");
    fs::write(&path, "\n\n{\"hello\":\"world\"}\n").expect("write the file");
    let output = replay(std::slice::from_ref(&path));
    let reported = rejections(&output);
    assert_eq!(reported.len(), 1, "{reported:?}");
    let prefix = format!("{}:3: rejected: ", path.display());
    assert!(reported[0].starts_with(&prefix), "{:?} should start with {prefix:?}", reported[0]);
}

/// SPEC: "All series of a known deployment group are initialised at 0." An
/// EventBridge instance event names its account, region, application and
/// deployment group, which makes the group known.
#[test]
fn an_instance_event_makes_its_deployment_group_known() {
    let sample = Path::new(SAMPLES).join("eventbridge-instance-success.json");
    let text = stdout(&replay(&[sample]));
    let series = "codedeploy_change_failures_total{account_id=\"123456789012\",region=\"us-east-1\",\
                  application=\"myApplication\",deployment_group=\"myDeploymentGroup\"} 0";
    assert!(text.contains(series), "missing {series}:\n{text}");
}

/// SPEC: "`promtool check metrics` is clean", for every golden output.
#[test]
fn golden_files_pass_promtool_check_metrics() {
    let entries = fs::read_dir(root().join(GOLDEN)).expect("the golden directory");
    let mut problems = Vec::new();
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        let exposition = fs::read_to_string(&path).expect("a golden file");
        if let Err(findings) = promtool::check_metrics(&exposition) {
            problems.push(format!("{}:\n{findings}", path.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
