//! End to end: the exporter scraped by a real Prometheus (Debian package, 2.42) that
//! loads the shipped rules, for two feeds:
//!
//! - `demo`: the built-in simulated fleet, live;
//! - `serve --replay`: a stream of our own (`tests/fixtures/rules/replay-stream.jsonl.tmpl`,
//!   times relative to now) with a failure and its rollback 20 and 10 minutes ago, a
//!   deployment in progress for 2 hours with failing targets, an old failure, a duplicate,
//!   an SNS trigger test message and a truncated line.
//!
//! Each Prometheus scrapes its exporter twice, as two replicas (`pod` a and b), so that the
//! `max without (instance, pod)` convention of the rules and dashboards is exercised.
//!
//! Asserted: every rule evaluates without error; every recording rule and every query of
//! every dashboard (panels, annotations, variables) parses and returns data; the rules
//! produce one series per deployment group despite the two replicas; the alerts the feed
//! should raise are pending or firing, and for the replayed stream only those.
//!
//! Everything listens on 127.0.0.1 and nothing is sent elsewhere. Both processes are
//! killed when the test ends, also on panic (`Process` kills on drop).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

#[path = "common/servers.rs"]
mod servers;
use servers::{free_port, tool, wait_until_ready, Process, Prometheus, QueryError};

/// How long Prometheus may take until every query has returned data. The queries that
/// compare with the previous period need a little over a minute of history.
const DEADLINE: Duration = Duration::from_secs(300);
const POLL: Duration = Duration::from_secs(3);
/// Alerts are watched at least this long, so that "only those alerts" means something.
const MIN_OBSERVATION: Duration = Duration::from_secs(30);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------
// What to query
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Query {
    origin: String,
    expr: String,
    range: bool,
    /// Why this query may legitimately return nothing in the replay feed.
    empty_in_replay: Option<&'static str>,
}

/// Grafana's variables replaced the way a dashboard with "All" selected would send them:
/// label filters become `.*`; `$__rate_interval` 1m, `$__range` 1m (so that "one time
/// range earlier" has history in a Prometheus minutes old), `$__interval` 15s; `$window`
/// 30d and `$dora_report` 2023 (the dashboards use them only in `=~` matchers, so `.*`
/// would do as well).
fn substitute(expr: &str) -> String {
    let mut out = expr.to_owned();
    for (variable, value) in [
        ("$__rate_interval", "1m"),
        ("$__range", "1m"),
        ("$__interval", "15s"),
        ("$window", "30d"),
        ("$dora_report", "2023"),
    ] {
        out = out.replace(variable, value);
    }
    // Remaining $name / ${name}: label filter variables.
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(dollar) = rest.find('$') {
        result.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        let braced = after.starts_with('{');
        let name_start = usize::from(braced);
        let name_len = after[name_start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count();
        result.push_str(".*");
        rest = &after[name_start + name_len + usize::from(braced)..];
    }
    result.push_str(rest);
    result
}

/// Why the post-deployment impact series stay empty in the replay feed.
const IMPACT_IN_REPLAY: &str =
    "the impact rules join application metrics (demo_app_* for the shipped mapping), which `serve --replay` has none of";

fn dashboard_queries() -> Vec<Query> {
    let mut queries = Vec::new();
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("dashboards"))
        .expect("dashboards/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 3, "expected three dashboards: {files:?}");
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let dashboard: Value =
            serde_json::from_str(&fs::read_to_string(&file).expect("read")).expect("JSON");
        let mut stack: Vec<&Value> = dashboard["panels"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        while let Some(panel) = stack.pop() {
            stack.extend(panel["panels"].as_array().into_iter().flatten());
            let title = panel["title"].as_str().unwrap_or_default();
            let empty_in_replay = if title.starts_with("Ingest lag") || title.starts_with("Source last success") {
                Some("lag and last success exist for live sources only; `serve --replay` has none")
            } else if title.starts_with("Deployments stopped by CloudWatch alarms") {
                Some("an alarm's series exists once it stopped a deployment; the replayed stream stops none on an alarm")
            } else {
                None
            };
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_default().to_owned();
                let empty_in_replay =
                    empty_in_replay.or_else(|| expr.contains(":codedeploy_impact_").then_some(IMPACT_IN_REPLAY));
                queries.push(Query {
                    origin: format!("{name} panel {title:?} query {}", target["refId"]),
                    expr,
                    range: target["range"] == true,
                    empty_in_replay,
                });
            }
        }
        for annotation in dashboard["annotations"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(expr) = annotation["expr"].as_str() {
                queries.push(Query {
                    origin: format!("{name} annotation {}", annotation["name"]),
                    expr: expr.to_owned(),
                    range: true,
                    empty_in_replay: Some(
                        "annotations mark changes, and nothing changes after the preload",
                    ),
                });
            }
        }
        // label_values(selector, label) -> count by (label) (selector)
        for variable in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let Some(definition) = variable["query"]["query"].as_str() else {
                continue;
            };
            let inner = definition
                .strip_prefix("label_values(")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| {
                    panic!("{name}: variable query {definition:?} is not label_values(…)")
                });
            let (selector, label) = inner
                .rsplit_once(',')
                .expect("label_values(selector, label)");
            queries.push(Query {
                origin: format!("{name} variable {}", variable["name"]),
                expr: format!("count by ({}) ({selector})", label.trim()),
                range: false,
                empty_in_replay: None,
            });
        }
    }
    queries
}

fn recording_rule_queries() -> Vec<Query> {
    let text = fs::read_to_string(root().join("alerts/codedeploy.rules.yml")).expect("rules file");
    let names: BTreeSet<String> = text
        .lines()
        .filter_map(|line| line.trim_start().strip_prefix("- record:"))
        .map(|name| name.trim().to_owned())
        .collect();
    assert!(names.len() > 20, "too few recording rules found: {names:?}");
    names
        .into_iter()
        .map(|name| Query {
            origin: format!("recording rule {name}"),
            empty_in_replay: name.contains(":codedeploy_impact_").then_some(IMPACT_IN_REPLAY),
            expr: name,
            range: false,
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------

/// Rule files as shipped, with explicit group intervals shortened to 1s (the others follow
/// the 1s global evaluation interval) so that the test sees evaluations within seconds.
fn write_rules(dir: &Path) -> Vec<PathBuf> {
    ["codedeploy.thresholds.yml", "codedeploy.rules.yml", "codedeploy.alerts.yml"]
        .iter()
        .map(|name| {
            let text = fs::read_to_string(root().join("alerts").join(name)).expect("read rules");
            let fast: String = text
                .lines()
                .map(|line| match line.trim_start().strip_prefix("interval:") {
                    Some(_) => format!(
                        "{}interval: 1s",
                        &line[..line.len() - line.trim_start().len()]
                    ),
                    None => line.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("\n");
            let path = dir.join(name);
            fs::write(&path, fast + "\n").expect("write rules");
            path
        })
        .collect()
}

fn write_prometheus_config(dir: &Path, exporter_port: u16, rules: &[PathBuf]) -> PathBuf {
    let rule_files: String = rules
        .iter()
        .map(|r| format!("  - {}\n", r.display()))
        .collect();
    // The same exporter twice, labelled as two replicas (pod a and b).
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n{rule_files}\
         scrape_configs:\n  - job_name: codedeploy-exporter\n    static_configs:\n\
         \x20     - targets: ['127.0.0.1:{exporter_port}']\n        labels: {{__replica: a}}\n\
         \x20     - targets: ['127.0.0.1:{exporter_port}']\n        labels: {{__replica: b}}\n\
         \x20   relabel_configs:\n      - source_labels: [__replica]\n        target_label: pod\n"
    );
    let path = dir.join("prometheus.yml");
    fs::write(&path, config).expect("write prometheus.yml");
    path
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

fn format_time(seconds: f64, format: &str) -> String {
    let whole = seconds.floor() as i64;
    let (days, of_day) = (whole.div_euclid(86_400), whole.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (of_day / 3600, of_day % 3600 / 60, of_day % 60);
    match format {
        "epoch" => format!("{seconds:.3}"),
        "rfc3339" => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
        "java" => {
            const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
            const MONTHS: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let weekday = WEEKDAYS[days.rem_euclid(7) as usize];
            format!(
                "{weekday} {} {day:02} {h:02}:{m:02}:{s:02} UTC {year}",
                MONTHS[month as usize - 1]
            )
        }
        other => panic!("unknown time format {other:?} in the stream template"),
    }
}

/// Replaces every `@{now-SECONDS:FORMAT}` of the template with that time.
fn render_stream(template: &str, now: f64) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("@{now-") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("unclosed placeholder") + start;
        let (ago, format) = rest[start + 6..end]
            .split_once(':')
            .expect("@{now-SECONDS:FORMAT}");
        out.push_str(&format_time(
            now - ago.parse::<f64>().expect("seconds"),
            format,
        ));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// One feed: an exporter, a Prometheus scraping it as two replicas, and the checks.
struct Feed {
    name: &'static str,
    _dir: tempfile::TempDir,
    exporter: Process,
    prometheus_process: Process,
    prometheus: Prometheus,
}

fn start_feed(name: &'static str, exporter_args: impl Fn(&Path, u16) -> Vec<String>) -> Feed {
    let prometheus_binary = tool("prometheus", "prometheus");
    let dir = tempfile::tempdir().expect("temp dir");

    let exporter_port = free_port();
    let exporter_dir = dir.path().join("exporter");
    fs::create_dir_all(&exporter_dir).expect("exporter dir");
    let mut exporter = Process::spawn(
        "codedeploy-exporter",
        Command::new(env!("CARGO_BIN_EXE_codedeploy-exporter"))
            .args(exporter_args(dir.path(), exporter_port)),
        &exporter_dir,
    );
    wait_until_ready(exporter_port, "/metrics", &mut exporter);

    let rules = write_rules(dir.path());
    let config = write_prometheus_config(dir.path(), exporter_port, &rules);
    let prometheus_port = free_port();
    let mut prometheus_process = Process::spawn(
        "prometheus",
        Command::new(prometheus_binary)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}")),
        dir.path(),
    );
    wait_until_ready(prometheus_port, "/-/ready", &mut prometheus_process);
    Feed {
        name,
        _dir: dir,
        exporter,
        prometheus_process,
        prometheus: Prometheus {
            port: prometheus_port,
        },
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct AlertKey {
    alertname: String,
    application: String,
    deployment_group: String,
}

fn alert_key(labels: &BTreeMap<String, String>) -> AlertKey {
    let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
    AlertKey {
        alertname: get("alertname"),
        application: get("application"),
        deployment_group: get("deployment_group"),
    }
}

struct Outcome {
    /// Queries that never returned data, with the last error if any.
    no_data: Vec<String>,
    parse_errors: Vec<String>,
    failing_rules: Vec<String>,
    /// Every alert seen pending or firing during the run.
    alerts_seen: BTreeSet<AlertKey>,
    /// Alerts pending or firing at the end.
    alerts_at_end: BTreeSet<AlertKey>,
}

impl Feed {
    /// Polls until every query returned data (or the deadline), recording the alerts seen.
    /// Queries for which `may_stay_empty` holds are tried too but not waited for; the run
    /// also waits until `alerts_done` holds for the alerts seen so far.
    fn run_queries(
        &mut self,
        queries: &[Query],
        may_stay_empty: impl Fn(&Query) -> bool,
        alerts_done: impl Fn(&BTreeSet<AlertKey>) -> bool,
    ) -> Outcome {
        let start = Instant::now();
        let mut pending: Vec<(Query, Option<String>)> =
            queries.iter().cloned().map(|q| (q, None)).collect();
        let mut parse_errors = Vec::new();
        let mut alerts_seen = BTreeSet::new();
        let mut rules_settled = false;
        let mut failing_rules = Vec::new();
        loop {
            self.exporter.assert_running();
            self.prometheus_process.assert_running();
            let mut still = Vec::new();
            for (query, last_error) in pending {
                match self
                    .prometheus
                    .series(&substitute(&query.expr), query.range)
                {
                    Ok(n) if n > 0 => {}
                    Ok(_) => still.push((query, last_error)),
                    Err(QueryError::Parse(e)) => parse_errors.push(format!(
                        "{}: {e}\n    {}",
                        query.origin,
                        substitute(&query.expr)
                    )),
                    Err(QueryError::Other(e)) => still.push((query, Some(e))),
                }
            }
            pending = still;
            for labels in self
                .prometheus
                .vector(r#"ALERTS{alertname=~"CodeDeploy.*"}"#)
            {
                alerts_seen.insert(alert_key(&labels));
            }
            if !rules_settled {
                let (unknown, failing) = self.prometheus.rule_health();
                rules_settled = unknown.is_empty();
                failing_rules = failing;
            }
            let queries_done = pending.iter().all(|(q, _)| may_stay_empty(q));
            let observed = start.elapsed() >= MIN_OBSERVATION;
            if (queries_done && rules_settled && observed && alerts_done(&alerts_seen))
                || start.elapsed() > DEADLINE
            {
                break;
            }
            std::thread::sleep(POLL);
        }
        let alerts_at_end = self
            .prometheus
            .vector(r#"ALERTS{alertname=~"CodeDeploy.*"}"#)
            .iter()
            .map(alert_key)
            .collect();
        Outcome {
            no_data: pending
                .into_iter()
                .map(|(q, e)| {
                    format!(
                        "{}{}\n    {}",
                        q.origin,
                        e.map(|e| format!(" (last error: {e})")).unwrap_or_default(),
                        substitute(&q.expr)
                    )
                })
                .collect(),
            parse_errors,
            failing_rules,
            alerts_seen,
            alerts_at_end,
        }
    }

    /// Two replicas, one series per deployment group in every recorded group-level series.
    fn assert_replicas_deduplicated(&self) {
        let p = &self.prometheus;
        let groups = p
            .scalar("count(count by (account_id, region, application, deployment_group) (codedeploy_deployments_in_progress))")
            .expect("groups");
        let raw = p
            .scalar("count(codedeploy_deployments_in_progress)")
            .expect("raw series");
        assert_eq!(
            raw,
            2.0 * groups,
            "{}: each group should be scraped from two replicas",
            self.name
        );
        for rule in [
            "deployment_group:codedeploy_deployments:increase1h",
            "deployment_group:codedeploy_sli_error:ratio30d",
            "deployment_group:codedeploy_slo_error_budget_remaining:ratio30d",
        ] {
            let n = p.scalar(&format!("count({rule})"));
            assert_eq!(
                n,
                Some(groups),
                "{}: {rule} should have one series per group",
                self.name
            );
        }
        // DORA counts production groups only.
        let production = p
            .scalar(r#"count(count by (account_id, region, application, deployment_group) (codedeploy_deployment_group_info{production="true"}))"#)
            .expect("production groups");
        assert!(production >= 1.0, "{}: no production group", self.name);
        assert_eq!(
            p.scalar(r#"count(deployment_group:codedeploy_dora_deployment_frequency:per_day{window="30d"})"#),
            Some(production),
            "{}: the DORA frequency should have one series per production group",
            self.name
        );
        let duplicated = p
            .vector("count by (account_id, region, application, deployment_group) (deployment_group:codedeploy_deployments:increase30d) > 1");
        assert!(
            duplicated.is_empty(),
            "{}: replicas counted twice: {duplicated:?}",
            self.name
        );
    }
}

fn report(feed: &str, outcome: &Outcome, allowed_empty: impl Fn(&str) -> bool) -> Vec<String> {
    let mut problems = Vec::new();
    problems.extend(
        outcome
            .parse_errors
            .iter()
            .map(|e| format!("[{feed}] does not parse: {e}")),
    );
    problems.extend(
        outcome
            .failing_rules
            .iter()
            .map(|e| format!("[{feed}] rule evaluation fails: {e}")),
    );
    problems.extend(
        outcome
            .no_data
            .iter()
            .filter(|line| !allowed_empty(line))
            .map(|e| format!("[{feed}] no data: {e}")),
    );
    problems
}

fn key(alertname: &str, application: &str, deployment_group: &str) -> AlertKey {
    AlertKey {
        alertname: alertname.to_owned(),
        application: application.to_owned(),
        deployment_group: deployment_group.to_owned(),
    }
}

#[test]
fn demo_fleet_feeds_every_dashboard_query_recording_rule_and_alert() {
    let mut feed = start_feed("demo", |_, port| {
        vec![
            "demo".into(),
            "--web.listen-address".into(),
            format!("127.0.0.1:{port}"),
        ]
    });
    let queries: Vec<Query> = dashboard_queries()
        .into_iter()
        .chain(recording_rule_queries())
        .collect();
    // The simulated fleet fails and rolls back within the first minutes.
    let names: BTreeSet<&str> =
        ["CodeDeployDeploymentFailed", "CodeDeployAutomaticRollback"].into();
    let outcome = feed.run_queries(
        &queries,
        |_| false,
        |seen| names.iter().all(|n| seen.iter().any(|a| a.alertname == *n)),
    );
    let mut problems = report("demo", &outcome, |_| false);
    let seen: BTreeSet<&str> = outcome
        .alerts_seen
        .iter()
        .map(|a| a.alertname.as_str())
        .collect();
    for expected in &names {
        if !seen.contains(expected) {
            problems.push(format!(
                "[demo] alert {expected} was never pending or firing; seen: {seen:?}"
            ));
        }
    }
    for unexpected in [
        "CodeDeployExporterDown",
        "CodeDeployExporterSourceDown",
        "CodeDeployExporterEventsRejected",
    ] {
        if seen.contains(unexpected) {
            problems.push(format!("[demo] alert {unexpected} should stay silent"));
        }
    }
    feed.assert_replicas_deduplicated();
    assert!(
        problems.is_empty(),
        "{} problem(s) with the demo feed:\n{}\n--- end of the exporter's log:\n{}",
        problems.len(),
        problems.join("\n"),
        feed.exporter.log_tail()
    );
}

#[test]
fn replayed_stream_raises_exactly_the_expected_alerts() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let template = fs::read_to_string(root().join("tests/fixtures/rules/replay-stream.jsonl.tmpl"))
        .expect("template");
    let stream = render_stream(&template, now);
    let mut feed = start_feed("replay", move |dir, port| {
        let file = dir.join("stream.jsonl");
        fs::write(&file, &stream).expect("write stream");
        vec![
            "serve".into(),
            "--web.listen-address".into(),
            format!("127.0.0.1:{port}"),
            "--replay".into(),
            file.display().to_string(),
        ]
    });
    let expected: BTreeSet<AlertKey> = [
        // orders/prod failed 20 minutes ago (then rolled back): the failure is reported even
        // though Prometheus never saw its counter increase.
        key("CodeDeployDeploymentFailed", "orders", "prod"),
        // ... and its rollback finished 10 minutes ago, known from its completion time.
        key("CodeDeployAutomaticRollback", "orders", "prod"),
        // payments/prod has had a deployment in progress for 2 hours, 2 of its 10 targets failed.
        key("CodeDeployDeploymentStuck", "payments", "prod"),
        key("CodeDeployHealthyTargetsLow", "payments", "prod"),
        // ... which the informational alert reports while it lasts.
        key("CodeDeployDeploymentInProgress", "payments", "prod"),
    ]
    .into();
    let queries: Vec<Query> = dashboard_queries()
        .into_iter()
        .chain(recording_rule_queries())
        .collect();
    let allowed: Vec<(String, &'static str)> = queries
        .iter()
        .filter_map(|q| q.empty_in_replay.map(|why| (q.origin.clone(), why)))
        .collect();
    let outcome = feed.run_queries(
        &queries,
        |q| q.empty_in_replay.is_some(),
        |seen| expected.is_subset(seen),
    );
    let mut problems = report("replay", &outcome, |line| {
        allowed
            .iter()
            .any(|(origin, _)| line.starts_with(origin.as_str()))
    });
    let missing: Vec<_> = expected.difference(&outcome.alerts_seen).collect();
    if !missing.is_empty() {
        problems.push(format!(
            "[replay] expected alerts never pending or firing: {missing:?}"
        ));
    }
    // Only those: the old failure of legacy/prod, the rollback and the hook failures of
    // orders/prod were all in the past before Prometheus started, and one failure is no
    // SLO burn.
    let extra: Vec<_> = outcome
        .alerts_seen
        .union(&outcome.alerts_at_end)
        .filter(|a| !expected.contains(a))
        .collect();
    if !extra.is_empty() {
        problems.push(format!("[replay] unexpected alerts: {extra:?}"));
    }
    feed.assert_replicas_deduplicated();
    assert!(
        problems.is_empty(),
        "{} problem(s) with the replayed stream:\n{}\n--- end of the exporter's log:\n{}",
        problems.len(),
        problems.join("\n"),
        feed.exporter.log_tail()
    );
}

#[test]
fn stream_template_renders_times_in_every_format() {
    // 2022-10-14T08:46:18Z was a Friday (the SNS trigger sample's date).
    let at = 1_665_737_178.25;
    assert_eq!(format_time(at, "rfc3339"), "2022-10-14T08:46:18Z");
    assert_eq!(format_time(at, "java"), "Fri Oct 14 08:46:18 UTC 2022");
    assert_eq!(format_time(at, "epoch"), "1665737178.250");
    assert_eq!(
        render_stream(
            r#"{"t":"@{now-60:rfc3339}","n":@{now-0:epoch}}"#,
            1_665_737_238.0
        ),
        r#"{"t":"2022-10-14T08:46:18Z","n":1665737238.000}"#
    );
    assert_eq!(
        substitute(
            r#"increase(x{a=~"$application", b=~"${region}", w=~"$window"}[$__rate_interval]) offset $__range"#
        ),
        r#"increase(x{a=~".*", b=~".*", w=~"30d"}[1m]) offset 1m"#
    );
}
