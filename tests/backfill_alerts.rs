//! Issue 12 (7), proved with the real Prometheus: history must not look new.
//!
//! A new store, 30 days of history in moto (two groups, many failed and
//! stopped deployments, rollbacks, failed hooks), `serve` with SQS and the
//! poller at a low `--aws.max-rps` so that the backfill takes a while, and
//! two BatchGetDeployments chunks of the backfill failing (retried later).
//! While the backfill runs, a live event arrives by EventBridge → SQS for one
//! of the groups, and a Prometheus (Debian package) scrapes the exporter every
//! second with the shipped recording and alerting rules, evaluated every second.
//!
//! If the live event (or the chunks fetched before the failed ones) made a
//! group's series appear before the history was in, the history would land on
//! series Prometheus already has, `increase()` would see 30 days of failures
//! at once, and `CodeDeployDeploymentFailed` and the burn-rate alerts would
//! fire. Asserted through Prometheus's HTTP API: no alert is ever pending or
//! firing but the three that judge the exporter's exact 30-day window (which must
//! see the history), the history is in Prometheus with its exact counts,
//! increase() over it is zero, and the 30-day SLO figures are the exporter's. A restart on the now non-empty store, at the same
//! address, shows the series at once and raises nothing either (its counters
//! continue; what the downtime added is counted). Then a live failure does
//! raise `CodeDeployDeploymentFailed` (so the silence before meant something).
//!
//! Everything listens on 127.0.0.1, on ports the OS gives; moto, the exporter
//! and Prometheus are stopped when the test ends, also on panic.

#[path = "moto/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use codedeploy_exporter::setup;
use serde_json::{json, Value};
use support::*;

const DAY: f64 = 86_400.0;

/// The alerts that judge the exporter's exact 30-day window: 30 days of failures and
/// rollbacks raise them as soon as the history is in, which is the history read as
/// history (the 30 days it covers), not as new events. The error budget's waits 15
/// minutes (its `for:`), so it is pending for most of the test.
const THIRTY_DAY_ALERTS: [&str; 3] = ["CodeDeploySuccessRateLow", "CodeDeployRollbackRateHigh", "CodeDeployErrorBudgetExhausted"];

/// `alert` (as `Prometheus::alerts` writes it) is one of THIRTY_DAY_ALERTS.
fn judges_thirty_days(alert: &str) -> bool {
    THIRTY_DAY_ALERTS.iter().any(|name| alert.starts_with(&format!("{name}{{")))
}

/// The informational alert on the live deployment of shop/prod, in progress from its
/// start event until the live failure: the present, not history.
const IN_PROGRESS_ALERT: &str = "CodeDeployDeploymentInProgress";

fn reports_the_live_deployment(alert: &str) -> bool {
    alert.starts_with(&format!("{IN_PROGRESS_ALERT}{{shop/prod}}"))
}

/// A child process killed when dropped, so a failing assertion leaves no Prometheus behind.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("prometheus exited early ({status}); end of its log:\n{}", self.log_tail());
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("address").port()
}

/// A real Prometheus on 127.0.0.1 scraping `target` every second, with the
/// shipped rule files whose group intervals (1m for the slow groups) are
/// shortened to the 1 s global evaluation interval, so that every rule
/// evaluates many times within the test.
struct Prometheus {
    process: Process,
    port: u16,
    http: reqwest::Client,
}

impl Prometheus {
    async fn start(dir: &Path, target: std::net::SocketAddr) -> Prometheus {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let binary = std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/bin")])
            .map(|dir| dir.join("prometheus"))
            .find(|p| p.is_file())
            .expect("prometheus is required: apt-get install prometheus (the Debian package, 2.42; scripts/test does this)");
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut rule_files = String::new();
        for name in ["codedeploy.thresholds.yml", "codedeploy.rules.yml", "codedeploy.alerts.yml"] {
            let text = fs::read_to_string(root.join("alerts").join(name)).expect("read the rules");
            let fast: Vec<String> = text
                .lines()
                .map(|line| match line.trim_start().strip_prefix("interval:") {
                    Some(_) => format!("{}interval: 1s", &line[..line.len() - line.trim_start().len()]),
                    None => line.to_owned(),
                })
                .collect();
            let path = dir.join(name);
            fs::write(&path, fast.join("\n") + "\n").expect("write the rules");
            rule_files.push_str(&format!("  - {}\n", path.display()));
        }
        // A static target, not gated by /-/ready: Prometheus scrapes the
        // exporter during the whole backfill, the worst case for this issue.
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{rule_files}\
             scrape_configs:\n  - job_name: codedeploy-exporter\n    static_configs:\n      - targets: ['{target}']\n"
        );
        let config_path = dir.join("prometheus.yml");
        fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let log = dir.join("prometheus.log");
        let file = fs::File::create(&log).expect("log file");
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .expect("start prometheus");
        let mut prometheus = Prometheus { process: Process { child, log }, port, http: reqwest::Client::new() };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            prometheus.process.assert_running();
            let ready = prometheus.http.get(format!("http://127.0.0.1:{port}/-/ready")).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return prometheus;
            }
            assert!(Instant::now() < deadline, "prometheus not ready in 2 minutes:\n{}", prometheus.process.log_tail());
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// `data` of a successful API answer.
    async fn api(&mut self, path: &str, params: &[(&str, String)]) -> Value {
        self.process.assert_running();
        let answer = self
            .http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .query(params)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let text = answer.text().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
        assert_eq!(body["status"], "success", "{path} {params:?}: {body}");
        body["data"].clone()
    }

    /// An instant query's samples: labels and value.
    async fn query(&mut self, expr: &str) -> Vec<(BTreeMap<String, String>, f64)> {
        let data = self.api("/api/v1/query", &[("query", expr.to_owned())]).await;
        data["result"]
            .as_array()
            .expect("a vector")
            .iter()
            .map(|sample| {
                let labels = serde_json::from_value(sample["metric"].clone()).expect("labels");
                let value = sample["value"][1].as_str().expect("a value").parse().expect("a number");
                (labels, value)
            })
            .collect()
    }

    /// The value of a query that returns one sample, or `None` when it returns none.
    async fn value(&mut self, expr: &str) -> Option<f64> {
        let samples = self.query(expr).await;
        assert!(samples.len() <= 1, "{expr}: {samples:?}");
        samples.first().map(|(_, v)| *v)
    }

    /// Every alert pending or firing now, as `alertname{application/group} state`.
    async fn alerts(&mut self) -> Vec<String> {
        let data = self.api("/api/v1/alerts", &[]).await;
        data["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .map(|a| {
                let l = &a["labels"];
                format!(
                    "{}{{{}/{}}} {}",
                    l["alertname"].as_str().unwrap_or_default(),
                    l["application"].as_str().unwrap_or_default(),
                    l["deployment_group"].as_str().unwrap_or_default(),
                    a["state"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }

    /// The earliest `lastEvaluation` of all rule groups, in seconds since the
    /// epoch, after asserting that every rule is healthy.
    async fn rules_evaluated_since(&mut self) -> f64 {
        let data = self.api("/api/v1/rules", &[]).await;
        let mut earliest = f64::INFINITY;
        for group in data["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                assert_ne!(rule["health"], "err", "rule {} fails: {}", rule["name"], rule["lastError"]);
            }
            let at = group["lastEvaluation"].as_str().expect("lastEvaluation");
            let at = chrono::DateTime::parse_from_rfc3339(at).map(|t| t.timestamp_millis() as f64 / 1000.0).unwrap_or(0.0);
            earliest = earliest.min(at);
        }
        earliest
    }
}

/// What the history holds, as the exporter must count it.
#[derive(Debug, Default)]
struct History {
    /// codedeploy_deployments_total by (application, status).
    totals: BTreeMap<(String, String), u32>,
}

impl History {
    fn total(&self) -> u32 {
        self.totals.values().sum()
    }

    fn of(&self, app: &str, status: &str) -> u32 {
        self.totals.get(&(app.to_owned(), status.to_owned())).copied().unwrap_or(0)
    }
}

/// `count` finished deployments of `app`/prod over the past 30 days, the
/// latest finishing 3 hours ago (so that the alerts reading the latest
/// failure's timestamp have nothing recent to report). Every `fail_every`th
/// fails on a hook and is rolled back; every 9th of the rest is stopped.
fn add_history(moto: &Moto, history: &mut History, app: &str, prefix: &str, count: u32, fail_every: u32) {
    let now = now_s();
    let span = 30.0 * DAY - 2.0 * 3600.0 - 3.0 * 3600.0;
    for i in 0..count {
        let created = now - 30.0 * DAY + 2.0 * 3600.0 + f64::from(i) * span / f64::from(count);
        let id = format!("d-{prefix}{i:05}");
        let (status, error) = if i % fail_every == 1 {
            ("Failed", Some(json!({"code": "HOOK_EXECUTION_FAILURE", "message": "hook failed"})))
        } else if i % 9 == 4 {
            ("Stopped", Some(json!({"code": "MANUAL_STOP", "message": "stopped by a user"})))
        } else {
            ("Succeeded", None)
        };
        let mut command = json!({"cmd": "add_deployment", "app": app, "group": "prod", "id": id, "status": status,
            "creator": "user", "create_time": created, "start_time": created, "complete_time": created + 600.0,
            "overview": {status: 1}});
        if let Some(error) = error {
            command["error_information"] = error;
        }
        let hook = if status == "Failed" {
            json!({"lifecycleEventName": "AfterInstall", "status": "Failed", "startTime": created, "endTime": created + 30.0,
                   "diagnostics": {"errorCode": "ScriptFailed", "scriptName": "check.sh", "message": "exit 1", "logTail": ""}})
        } else {
            json!({"lifecycleEventName": "AfterInstall", "status": "Succeeded", "startTime": created, "endTime": created + 30.0})
        };
        let target_status = if status == "Stopped" { "Skipped" } else { status };
        *history.totals.entry((app.to_owned(), status.to_lowercase())).or_default() += 1;
        if status == "Failed" {
            let rollback = format!("d-{prefix}R{i:04}");
            command["rollback_info"] = json!({"rollbackDeploymentId": rollback, "rollbackMessage": "rolled back"});
            moto.cmd(command);
            moto.cmd(json!({"cmd": "add_deployment", "app": app, "group": "prod", "id": rollback, "status": "Succeeded",
                "creator": "codeDeployRollback", "create_time": created + 600.0, "start_time": created + 600.0,
                "complete_time": created + 900.0, "overview": {"Succeeded": 1},
                "rollback_info": {"rollbackTriggeringDeploymentId": id, "rollbackMessage": "rollback"}}));
            moto.cmd(json!({"cmd": "set_targets", "id": rollback, "targets": [
                {"targetId": format!("i-{prefix}R{i:04}"), "status": "Succeeded"}]}));
            *history.totals.entry((app.to_owned(), "succeeded".to_owned())).or_default() += 1;
        } else {
            moto.cmd(command);
        }
        moto.cmd(json!({"cmd": "set_targets", "id": id, "targets": [
            {"targetId": format!("i-{prefix}{i:05}"), "status": target_status, "lifecycleEvents": [hook]}]}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfilled_history_raises_no_alert_in_prometheus() {
    let _serial = serial().await;
    let started = Instant::now();
    let moto = Moto::start();
    let queue = setup::run(&setup_args(&moto, false), &mut Vec::new()).await.expect("setup runs").queue_urls[0].clone();
    let mut history = History::default();
    add_history(&moto, &mut history, "shop", "SHOP", 120, 4);
    add_history(&moto, &mut history, "billing", "BILL", 60, 5);
    assert!(history.of("shop", "failed") >= 25 && history.of("billing", "failed") >= 10, "{history:?}");

    // The first two BatchGetDeployments calls of the backfill fail (one
    // attempt each): their 50 deployments wait in the retry set, and the
    // backfill is not over until they are in.
    moto.cmd(json!({"cmd": "inject", "op": "BatchGetDeployments", "kind": "5xx", "count": 2}));
    let storage = tempfile::tempdir().expect("tempdir");
    // 15 calls a second: with two target calls per finished deployment the
    // backfill of ~220 deployments takes over 25 s.
    let flags = ["--aws.endpoint-url", &moto.proxy, "--sqs.queue-url", &queue, "--aws.region", REGION, "--poll.interval", "2s",
        "--aws.max-rps", "15", "--aws.max-attempts", "1"];
    // A fixed port, so that the restart below is the same target to Prometheus.
    let listen = format!("127.0.0.1:{}", free_port());
    let exporter = Exporter::start_at(&listen, storage.path(), &flags).await;
    let prometheus_dir = tempfile::tempdir().expect("tempdir");
    let mut prometheus = Prometheus::start(prometheus_dir.path(), exporter.address).await;
    let mut alerts_seen: Vec<String> = Vec::new();

    // The backfill is under way (and a chunk of it failed) when the live
    // event arrives: a deployment of shop/prod starts now.
    exporter
        .wait_for(Duration::from_secs(30), "the backfill under way with a failed chunk", |s| {
            s.sum("codedeploy_exporter_aws_requests_total", &[("operation", "ListDeploymentTargets"), ("outcome", "success")]) >= 1.0
                && s.sum("codedeploy_exporter_aws_requests_total", &[("operation", "BatchGetDeployments"), ("outcome", "server_error")]) >= 1.0
        })
        .await;
    let t = now_s();
    moto.cmd(json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": "d-LIVE00001", "status": "InProgress",
        "creator": "user", "create_time": t, "start_time": t}));
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk(REGION).await);
    let put = |entries: Vec<aws_sdk_eventbridge::types::PutEventsRequestEntry>| {
        let events = events.clone();
        async move {
            let out = events.put_events().set_entries(Some(entries)).send().await.expect("PutEvents");
            assert_eq!(out.failed_entry_count(), 0);
        }
    };
    put(vec![deployment_event(ACCOUNT, REGION, "shop", "prod", "d-LIVE00001", "START", t)]).await;

    // Prometheus has scraped the live event while the backfill still runs,
    // and saw no deployment series then: they are held back on a new store.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let live = prometheus.value(r#"codedeploy_exporter_events_total{source="sqs",outcome="applied"}"#).await;
        if live.is_some_and(|v| v >= 1.0) {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus did not scrape the live event within 30 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!*exporter.backfilled.borrow(), "the live event must be scraped during the backfill; make the backfill longer");
    assert_eq!(prometheus.query("codedeploy_deployments_total").await, vec![], "held back during the backfill");
    // deployments_tracked with them: the hook-failure rule reads it to tell
    // a target that was showing its series from one that was only up.
    assert_eq!(prometheus.query("codedeploy_exporter_deployments_tracked").await, vec![], "held back during the backfill");
    assert_eq!(exporter.ready().await, 503, "not ready during the backfill");

    let mut backfilled = exporter.backfilled.clone();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !*backfilled.borrow_and_update() {
        alerts_seen.extend(prometheus.alerts().await);
        assert!(Instant::now() < deadline, "the backfill did not end within 180 s");
        let _ = tokio::time::timeout(Duration::from_secs(1), backfilled.changed()).await;
    }
    let backfill_done = now_s();
    eprintln!("backfill done after {:.1}s", started.elapsed().as_secs_f64());

    // 20 scrapes with the history in, and every rule group evaluated well
    // after that (their `for:` and windows see the history as it landed).
    let expected = f64::from(history.total());
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        alerts_seen.extend(prometheus.alerts().await);
        let in_prometheus = prometheus.value("sum(codedeploy_deployments_total)").await;
        let scrapes = prometheus
            .value(r#"min(count_over_time(codedeploy_deployments_total{application="shop",status="failed"}[5m]))"#)
            .await
            .unwrap_or(0.0);
        let evaluated = prometheus.rules_evaluated_since().await;
        if in_prometheus == Some(expected) && scrapes >= 20.0 && evaluated > backfill_done + 20.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after the backfill: {in_prometheus:?} deployments in Prometheus (want {expected}), {scrapes} scrapes, rules evaluated at {evaluated} (backfill done at {backfill_done})"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // The history is in Prometheus, with its exact counts.
    for app in ["shop", "billing"] {
        for status in ["succeeded", "failed", "stopped"] {
            let got = prometheus
                .value(&format!(r#"sum(codedeploy_deployments_total{{application="{app}",status="{status}"}})"#))
                .await;
            assert_eq!(got, Some(f64::from(history.of(app, status))), "{app} {status}");
        }
    }
    let lifecycle = prometheus.value("sum(codedeploy_lifecycle_event_failures_total)").await;
    assert_eq!(lifecycle, Some(f64::from(history.of("shop", "failed") + history.of("billing", "failed"))));
    // ... and none of it is new to increase(), in any window the rules use.
    let failed_increase = prometheus.value(r#"sum(increase(codedeploy_deployments_total{status=~"failed|stopped"}[10m]))"#).await;
    assert_eq!(failed_increase, Some(0.0), "history seen as new failures");
    for window in ["1h", "6h", "1d", "3d"] {
        let recorded = prometheus.query(&format!("deployment_group:codedeploy_deployments_unsuccessful:increase{window}")).await;
        assert_eq!(recorded.len(), 2, "one series per group: {recorded:?}");
        assert!(recorded.iter().all(|(_, v)| *v == 0.0), "{window}: {recorded:?}");
    }
    // The SLO period is the exporter's exact 30 days, history included, from the first
    // scrape on: the budget each group has spent is known at once.
    for app in ["shop", "billing"] {
        let unsuccessful = f64::from(history.of(app, "failed") + history.of(app, "stopped"));
        let finished = unsuccessful + f64::from(history.of(app, "succeeded"));
        let recorded = |rule: &str| format!(r#"deployment_group:{rule}{{application="{app}"}}"#);
        let got = prometheus.value(&recorded("codedeploy_deployments_unsuccessful:increase30d")).await;
        assert_eq!(got, Some(unsuccessful), "{app}");
        assert_eq!(prometheus.value(&recorded("codedeploy_deployments:increase30d")).await, Some(finished), "{app}");
        let budget = prometheus.value(&recorded("codedeploy_slo_error_budget_remaining:ratio30d")).await.expect("a budget");
        let spent = 1.0 - unsuccessful / (0.05 * finished.max(40.0));
        assert!((budget - spent).abs() < 1e-9 && budget < 0.0, "{app}: {budget}, want {spent}");
    }
    // The retried chunks were part of it: 50 deployments waited in the retry
    // set after the first backfill pass, and the series stayed held meanwhile.
    let retried = prometheus.value("max_over_time(sum(codedeploy_exporter_poller_pending_deployments)[10m:1s])").await;
    assert_eq!(retried, Some(50.0), "two chunks of 25 retried");

    // No alert was pending or firing at any time: neither when polled nor
    // between two polls (ALERTS has a sample for every evaluation that found
    // an alert pending or firing).
    alerts_seen.extend(prometheus.alerts().await);
    alerts_seen.sort();
    alerts_seen.dedup();
    alerts_seen.retain(|a| !reports_the_live_deployment(a));
    let (thirty_days, others): (Vec<String>, Vec<String>) = alerts_seen.drain(..).partition(|a| judges_thirty_days(a));
    assert_eq!(others, Vec::<String>::new(), "alerts raised by history");
    let ever = prometheus
        .query(&format!(
            r#"count_over_time(ALERTS{{alertname!~"{IN_PROGRESS_ALERT}|{}"}}[15m])"#,
            THIRTY_DAY_ALERTS.join("|")
        ))
        .await;
    assert_eq!(ever, vec![], "alerts raised by history");
    // The 30-day alerts do see the history, exactly, right after the backfill: shop
    // rolled back a quarter of its deployments and billing a fifth, and both spent
    // their error budget many times over.
    let raised: std::collections::BTreeSet<&str> =
        thirty_days.iter().map(|alert| alert.rsplit_once(' ').expect("name and state").0).collect();
    let expected_thirty_days: std::collections::BTreeSet<String> = ["billing", "shop"]
        .iter()
        .flat_map(|app| THIRTY_DAY_ALERTS.map(|name| format!("{name}{{{app}/prod}}")))
        .collect();
    assert_eq!(raised, expected_thirty_days.iter().map(String::as_str).collect(), "the 30-day alerts over the history");
    let waiting = |alert: &&String| alert.starts_with("CodeDeployErrorBudgetExhausted{");
    assert!(thirty_days.iter().filter(|a| !waiting(a)).all(|a| a.ends_with(" firing")), "{thirty_days:?}");
    assert_eq!(exporter.ready().await, 200);

    // A restart on the (non-empty) store, at the same address, while a
    // billing deployment finishes during the downtime. The series are shown
    // at once (Prometheus knows them; hiding them would only make a gap), the
    // counters continue where they stood (no reset for increase() to read as
    // history), and the backfill adds only what happened while the exporter
    // was down. Prometheus sees the target down between the two processes:
    // CodeDeployExporterDown is pending then, and is the only alert allowed.
    exporter.stop().await;
    let t = now_s();
    moto.cmd(json!({"cmd": "add_deployment", "app": "billing", "group": "prod", "id": "d-DOWN00001", "status": "Succeeded",
        "creator": "user", "create_time": t - 120.0, "start_time": t - 120.0, "complete_time": t - 60.0,
        "overview": {"Succeeded": 1}}));
    moto.cmd(json!({"cmd": "set_targets", "id": "d-DOWN00001", "targets": [{"targetId": "i-DOWN00001", "status": "Succeeded"}]}));
    let exporter = Exporter::start_at(&listen, storage.path(), &flags).await;
    let restarted = now_s();
    let shown = exporter.scrape().await;
    assert!(shown.sum("codedeploy_deployments_total", &[]) >= expected, "shown at once after a restart:\n{}", shown.text);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        alerts_seen.extend(prometheus.alerts().await);
        let in_prometheus = prometheus.value("sum(codedeploy_deployments_total)").await;
        let evaluated = prometheus.rules_evaluated_since().await;
        if *exporter.backfilled.borrow() && in_prometheus == Some(expected + 1.0) && evaluated > restarted + 15.0 {
            break;
        }
        assert!(Instant::now() < deadline, "after the restart: {in_prometheus:?} deployments in Prometheus (want {})", expected + 1.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let resets = prometheus.value("sum(resets(codedeploy_deployments_total[15m]))").await;
    assert_eq!(resets, Some(0.0), "the counters continued across the restart");
    let failed_increase = prometheus.value(r#"sum(increase(codedeploy_deployments_total{status=~"failed|stopped"}[15m]))"#).await;
    assert_eq!(failed_increase, Some(0.0), "history seen as new failures after the restart");
    let downtime = prometheus.value(r#"sum(codedeploy_deployments_total{application="billing",status="succeeded"})"#).await;
    assert_eq!(downtime, Some(f64::from(history.of("billing", "succeeded") + 1)), "the deployment of the downtime counted");
    alerts_seen.extend(prometheus.alerts().await);
    alerts_seen.sort();
    alerts_seen.dedup();
    alerts_seen.retain(|a| !a.starts_with("CodeDeployExporterDown{") && !judges_thirty_days(a) && !reports_the_live_deployment(a));
    assert_eq!(alerts_seen, Vec::<String>::new(), "alerts raised by history after the restart");
    let ever = prometheus
        .query(&format!(
            r#"count_over_time(ALERTS{{alertname!~"CodeDeployExporterDown|{IN_PROGRESS_ALERT}|{}"}}[15m])"#,
            THIRTY_DAY_ALERTS.join("|")
        ))
        .await;
    assert_eq!(ever, vec![], "alerts raised by history after the restart");

    // A live failure now does alert: the rules and the scrapes work, so the
    // silence above is the history being recognised as old.
    let t = now_s();
    moto.cmd(json!({"cmd": "set_deployment", "id": "d-LIVE00001", "status": "Failed", "complete_time": t,
        "overview": {"Failed": 1}, "error_information": {"code": "HOOK_EXECUTION_FAILURE", "message": "hook failed"}}));
    moto.cmd(json!({"cmd": "set_targets", "id": "d-LIVE00001", "targets": [{"targetId": "i-LIVE00001", "status": "Failed"}]}));
    put(vec![deployment_event(ACCOUNT, REGION, "shop", "prod", "d-LIVE00001", "FAILURE", t)]).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut alerts = prometheus.alerts().await;
        alerts.retain(|a| !judges_thirty_days(a));
        if alerts.iter().any(|a| a == "CodeDeployDeploymentFailed{shop/prod} firing") {
            assert!(alerts.iter().all(|a| a.contains("{shop/prod}")), "only shop/prod: {alerts:?}");
            break;
        }
        assert!(Instant::now() < deadline, "a live failure did not alert within 60 s: {alerts:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let live_increase =
        prometheus.value(r#"sum(increase(codedeploy_deployments_total{application="shop",status="failed"}[10m]))"#).await;
    assert!(live_increase.is_some_and(|v| v > 0.5 && v < 1.5), "one new failure, not history: {live_increase:?}");

    drop(prometheus);
    exporter.stop().await;
    eprintln!("backfilled_history_raises_no_alert_in_prometheus: {:.1}s", started.elapsed().as_secs_f64());
}
