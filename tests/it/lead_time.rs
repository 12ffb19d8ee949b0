//! DORA lead time over HTTP: webhook commit records, API output posted to the
//! webhook, the git source through the resolver task, and restarts.

use std::path::Path;
use std::process::Command;

use crate::helpers::{sample, spawn_app, spawn_app_on};

/// API output carries no account or region: the group's labels are empty.
const GROUP: &str = r#"account_id="",region="",application="web",deployment_group="web-prod""#;
/// 2026-01-10T10:00:00Z
const T0: i64 = 1_768_039_200;

fn deployment(id: &str, created: i64, completed: i64, revision: &str, description: &str) -> String {
    format!(
        r#"{{"deploymentInfo":{{"deploymentId":"{id}","applicationName":"web","deploymentGroupName":"web-prod","status":"Succeeded","creator":"user","createTime":{created},"completeTime":{completed},"description":"{description}","revision":{revision}}}}}"#
    )
}

fn github(commit: &str) -> String {
    format!(r#"{{"revisionType":"GitHub","gitHubLocation":{{"repository":"example/web","commitId":"{commit}"}}}}"#)
}

fn count(metrics: &str) -> Option<f64> {
    sample(metrics, &format!("codedeploy_lead_time_seconds_count{{{GROUP}}}"))
}

fn sum(metrics: &str) -> Option<f64> {
    sample(metrics, &format!("codedeploy_lead_time_seconds_sum{{{GROUP}}}"))
}

#[tokio::test]
async fn webhook_commit_records_give_lead_times_once_across_redeliveries_and_restarts() {
    let app = spawn_app(&["--ledger.settle-time", "1s"]).await;
    let sha = "abcdef0123456789abcdef0123456789abcdef01";
    let record = format!(r#"{{"type":"commit","commit":"{sha}","committed_at":"2026-01-10T09:00:00Z"}}"#);
    assert_eq!(app.post_event(record.clone()).await, (200, r#"{"outcome":"applied"}"#.to_owned()));
    assert_eq!(app.post_event(record.clone()).await, (200, r#"{"outcome":"duplicate"}"#.to_owned()));
    let bad = r#"{"type":"commit","commit":"abcdef0","committed_at":"last tuesday"}"#;
    assert_eq!(app.post_event(bad).await.0, 400);
    let first = deployment("d-LTHTTP01", T0, T0 + 600, &github(sha), "release 12");
    let second = deployment("d-LTHTTP02", T0 + 3600, T0 + 4200, "null", "hotfix");
    assert_eq!(app.post_event(first.clone()).await.0, 200);
    assert_eq!(app.post_event(second.clone()).await.0, 200);
    let metrics = app.wait_for(&format!("codedeploy_lead_time_seconds_count{{{GROUP}}}"), 1.0).await;
    assert_eq!(sum(&metrics), Some(4200.0), "09:00 → 10:10");
    let metrics = app.wait_for(&format!("codedeploy_lead_time_unknown_total{{{GROUP},reason=\"no_revision\"}}"), 1.0).await;
    assert_eq!(count(&metrics), Some(1.0), "the hotfix is unknown, not a zero lead time");
    // Re-deliveries change nothing, before and after a restart.
    app.post_event(first.clone()).await;
    app.post_event(record.clone()).await;
    let storage = app.stop().await;
    let app = spawn_app_on(storage, &["--ledger.settle-time", "1s"]).await;
    app.post_event(first).await;
    app.post_event(second).await;
    app.post_event(record).await;
    // A deployment posted after the re-deliveries settles after them: once
    // it is counted (a second lead time unknown), they have had their chance
    // to count again, and must not have.
    app.post_event(deployment("d-LTHTTP03", T0 + 7200, T0 + 7800, "null", "sentinel")).await;
    let metrics = app.wait_for(&format!("codedeploy_lead_time_unknown_total{{{GROUP},reason=\"no_revision\"}}"), 2.0).await;
    assert_eq!((count(&metrics), sum(&metrics)), (Some(1.0), Some(4200.0)));
    app.stop().await;
}

/// Commits with committer time `at` (seconds); returns the sha.
fn commit(repo: &Path, at: i64) -> String {
    let date = format!("{at} +0000");
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(repo)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_AUTHOR_NAME", "ci")
            .env("GIT_AUTHOR_EMAIL", "ci@example.com")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.com")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    git(&["commit", "--allow-empty", "-q", "-m", &format!("at {at}")]);
    git(&["rev-parse", "HEAD"])
}

#[tokio::test]
async fn the_git_source_measures_from_the_first_commit_of_the_change() {
    let repo = tempfile::tempdir().expect("tempdir");
    assert!(Command::new("git").args(["init", "-q"]).current_dir(repo.path()).status().expect("git").success());
    // c1 deployed by d-1; c2, c3, c4 are the next change, c4 deployed by d-2.
    let c1 = commit(repo.path(), T0 - 7200);
    let _c2 = commit(repo.path(), T0 - 3600);
    let _c3 = commit(repo.path(), T0 - 1800);
    let c4 = commit(repo.path(), T0 - 600);
    let mapping = format!("example/web={}", repo.path().display());
    let app = spawn_app(&["--ledger.settle-time", "1s", "--git.repository", &mapping, "--lead-time.resolve-interval", "100ms"]).await;
    app.post_event(deployment("d-LTGIT001", T0 - 6000, T0 - 5400, &github(&c1), "")).await;
    // d-1 must be counted first so that its commit is the group's previous one.
    app.wait_for(&format!("codedeploy_lead_time_seconds_count{{{GROUP}}}"), 1.0).await;
    app.post_event(deployment("d-LTGIT002", T0, T0 + 600, &github(&c4), "")).await;
    let metrics = app.wait_for(&format!("codedeploy_lead_time_seconds_count{{{GROUP}}}"), 2.0).await;
    // d-1: its own commit (no previous deployment), 7200 - 5400 = 1800 s.
    // d-2: from c2 (T0 - 3600) to T0 + 600 = 4200 s.
    assert_eq!(sum(&metrics), Some(1800.0 + 4200.0));
    assert_eq!(sample(&metrics, r#"codedeploy_exporter_lead_time_sources_total{source="git",commit="first_commit"}"#), Some(1.0));
    assert_eq!(sample(&metrics, r#"codedeploy_exporter_lead_time_sources_total{source="git",commit="deployed_commit"}"#), Some(1.0));
    assert_eq!(sample(&metrics, r#"codedeploy_exporter_events_total{source="lead_time",outcome="applied"}"#), Some(2.0));
    // An unknown commit: the resolver reports it not found, once.
    app.post_event(deployment("d-LTGIT003", T0 + 700, T0 + 800, &github("0000000000000000000000000000000000000000"), "")).await;
    let metrics = app.wait_for(&format!("codedeploy_lead_time_unknown_total{{{GROUP},reason=\"not_found\"}}"), 1.0).await;
    assert_eq!(count(&metrics), Some(2.0));
    app.stop().await;
}
