//! DORA lead time through the real binary: `replay` of API outputs with
//! descriptions and revisions, and webhook commit records, in
//! `tests/fixtures/streams/lead-time.jsonl` (account 123456789012, eu-west-1).
//!
//! The truth, per group:
//! - web/web-prod: d-LT0000001 (GitHub commit aaaa…, committed 09:00 by a
//!   commit record, done 10:10: 4200 s); d-LT0000002 (description committed_at
//!   11:00, done 12:00: 3600 s; delivered twice); d-LT0000007 (committed after
//!   it finished: clamped to 0, a data-quality issue). d-LT0000003 has an S3
//!   revision and no source for it (no_source_configured); d-LT0000009 has
//!   neither revision nor commit (no_revision); d-LT0000004 (a failed change:
//!   DORA measures commit → successfully running), d-LT0000005 (its rollback)
//!   and d-LT0000006 (Auto Scaling) have no lead time at all, though their
//!   descriptions carry a commit time.
//! - api/api-prod: d-LT0000008 (S3 revision named by a commit record that
//!   arrives after it, committed 07:30, done 08:00: 1800 s).
//! - The record with commit "not-a-sha" is rejected.

use std::process::Command;

const STREAM: &str = "tests/fixtures/streams/lead-time.jsonl";

fn replay(extra: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_codedeploy-exporter"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["replay", "--now", "2026-01-12T00:00:00Z", "--account", "123456789012", "--region", "eu-west-1"])
        .args(extra)
        .arg(STREAM)
        .output()
        .expect("the binary runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    (String::from_utf8(output.stdout).expect("UTF-8"), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn value(exposition: &str, series: &str) -> f64 {
    let line = exposition
        .lines()
        .find(|l| l.rsplit_once(' ').is_some_and(|(name, _)| name == series))
        .unwrap_or_else(|| panic!("no series {series}"));
    line.rsplit_once(' ').expect("a value").1.parse().expect("a number")
}

fn group(app: &str) -> String {
    format!("account_id=\"123456789012\",region=\"eu-west-1\",application=\"{app}\",deployment_group=\"{app}-prod\"")
}

#[test]
fn replayed_lead_times_equal_the_truth_per_group() {
    let (out, err) = replay(&[]);
    let web = group("web");
    let api = group("api");
    assert_eq!(value(&out, &format!("codedeploy_lead_time_seconds_count{{{web}}}")), 3.0);
    assert_eq!(value(&out, &format!("codedeploy_lead_time_seconds_sum{{{web}}}")), 7800.0);
    assert_eq!(value(&out, &format!("codedeploy_lead_time_seconds_count{{{api}}}")), 1.0);
    assert_eq!(value(&out, &format!("codedeploy_lead_time_seconds_sum{{{api}}}")), 1800.0);
    let unknown = |g: &str, reason: &str| value(&out, &format!("codedeploy_lead_time_unknown_total{{{g},reason=\"{reason}\"}}"));
    assert_eq!(unknown(&web, "no_revision"), 1.0);
    assert_eq!(unknown(&web, "no_source_configured"), 1.0);
    assert_eq!(unknown(&web, "not_found"), 0.0, "series of a known group start at zero");
    assert_eq!(unknown(&api, "no_revision"), 0.0);
    assert_eq!(value(&out, "codedeploy_exporter_data_quality_issues_total{reason=\"negative_lead_time\"}"), 1.0);
    let sources = |source: &str| {
        value(&out, &format!("codedeploy_exporter_lead_time_sources_total{{source=\"{source}\",commit=\"deployed_commit\"}}"))
    };
    assert_eq!(sources("description"), 2.0);
    assert_eq!(sources("webhook"), 2.0);
    // Windowed quantiles over the three web-prod lead times (0, 3600, 4200 s).
    let median = value(&out, &format!("codedeploy_dora_lead_time_seconds{{{web},window=\"7d\",quantile=\"0.5\"}}"));
    assert_eq!(median, 3600.0, "exact, by nearest rank");
    assert!(out.contains(&format!("codedeploy_dora_lead_time_seconds{{{web},window=\"1d\",quantile=\"0.5\"}} NaN")));
    assert!(err.contains("rejected"), "the record with a bad sha is rejected: {err}");
}

#[test]
fn description_keys_are_configurable() {
    // With other keys, no description is read: only commit records remain.
    let (out, _) = replay(&["--lead-time.description-time-key", "built_at"]);
    let web = group("web");
    assert_eq!(value(&out, &format!("codedeploy_lead_time_seconds_count{{{web}}}")), 1.0);
    assert_eq!(value(&out, &format!("codedeploy_lead_time_unknown_total{{{web},reason=\"no_source_configured\"}}")), 3.0, "d-2, d-3 and d-7 name commits or revisions");
    assert_eq!(value(&out, &format!("codedeploy_lead_time_unknown_total{{{web},reason=\"no_revision\"}}")), 1.0);
}
