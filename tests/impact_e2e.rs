//! End to end, issue 14: `demo` scraped by a real Prometheus (Debian package, 2.42) with the
//! shipped rules, which sends its alerts to a real Alertmanager (Debian
//! `prometheus-alertmanager`, 0.25) running the example configuration
//! (`alerts/alertmanager.example.yml`) with its PagerDuty and Opsgenie receivers rewritten to a
//! webhook inside this test, and its group timings shortened.
//!
//! Asserted, on one run of the live demo:
//! - the post-deployment regression alerts fire for the demo deployments that shipped a
//!   regressed build (`demo_app_build_info{regression}`, the simulator's truth) after a healthy
//!   one, and never for a group whose build has no such regression;
//! - they reach Alertmanager and are routed by severity: the error-rate alert (critical) to the
//!   page receiver, the latency alert (warning) to the ticket receiver;
//! - an alert labelled `deployment_noise="true"` for a group with a deployment in progress is
//!   held back (inhibited by `CodeDeployDeploymentInProgress`) and delivered once the
//!   deployment is over; one for a resting group is delivered at once.
//!
//! Everything listens on 127.0.0.1 on free ports; the three processes are killed when the test
//! ends, also on panic. In live mode each demo group rests 60 s after a deployment, which is
//! what makes the resting group and the "delivered once over" checks race-free.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

#[path = "common/servers.rs"]
mod servers;
use servers::{free_port, http_get, http_post_json, tool, wait_until_ready, Process, Prometheus};

/// The shipped demo mapping compares 15 s windows up to 45 s after a deployment; regressed
/// builds of the default seed ship within the first two minutes.
const DEADLINE: Duration = Duration::from_secs(420);
const POLL: Duration = Duration::from_secs(1);
/// A regressed build served this long has had its whole after window.
const AFTER_WINDOW: Duration = Duration::from_secs(50);

const ERROR_ALERT: &str = "CodeDeployPostDeployErrorRateRegression";
const LATENCY_ALERT: &str = "CodeDeployPostDeployLatencyRegression";
const NOISE_ALERT: &str = "AppHealthCheckFlapping";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

type Group = (String, String);

// ---------------------------------------------------------------------------------------
// The webhook receiver Alertmanager notifies
// ---------------------------------------------------------------------------------------

/// Collects every notification (the webhook's JSON body) posted to it, until dropped.
struct Webhook {
    port: u16,
    received: Arc<Mutex<Vec<Value>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Webhook {
    fn start() -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the webhook");
        listener.set_nonblocking(true).expect("non-blocking accept");
        let port = listener.local_addr().expect("address").port();
        let (received, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (sink, stopped) = (received.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Some(body) = read_request(stream) {
                            sink.lock().expect("lock").push(body);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Webhook { port, received, stop, thread: Some(thread) }
    }

    /// (receiver, alertname, application, deployment_group) of every firing alert notified.
    fn deliveries(&self) -> BTreeSet<(String, String, String, String)> {
        let received = self.received.lock().expect("lock");
        let mut out = BTreeSet::new();
        for notification in received.iter() {
            let receiver = notification["receiver"].as_str().unwrap_or_default();
            for alert in notification["alerts"].as_array().into_iter().flatten() {
                if alert["status"] == "firing" {
                    let label = |name: &str| alert["labels"][name].as_str().unwrap_or_default().to_owned();
                    out.insert((receiver.to_owned(), label("alertname"), label("application"), label("deployment_group")));
                }
            }
        }
        out
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one HTTP request and answers 200; returns its body as JSON.
fn read_request(stream: std::net::TcpStream) -> Option<Value> {
    stream.set_nonblocking(false).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let _ = reader.get_mut().write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    serde_json::from_slice(&body).ok()
}

// ---------------------------------------------------------------------------------------
// The three servers
// ---------------------------------------------------------------------------------------

/// The example configuration with its paging and ticketing receivers pointed at the webhook,
/// and notifications sent a second after an alert arrives instead of 30 s.
fn alertmanager_config(dir: &Path, webhook_port: u16) -> PathBuf {
    let example = fs::read_to_string(root().join("alerts/alertmanager.example.yml")).expect("the example");
    let mut config: serde_yaml_ng::Value = serde_yaml_ng::from_str(&example).expect("YAML");
    let route = config.get_mut("route").expect("a route");
    for (key, value) in [("group_wait", "1s"), ("group_interval", "1s")] {
        route[key] = value.into();
    }
    let mut rewritten = 0;
    for receiver in config["receivers"].as_sequence_mut().expect("receivers") {
        let mapping = receiver.as_mapping_mut().expect("a receiver");
        let before = mapping.len();
        mapping.retain(|key, _| !key.as_str().is_some_and(|k| k.ends_with("_configs")));
        if mapping.len() < before {
            let url = format!("http://127.0.0.1:{webhook_port}/alerts");
            let webhook: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&format!("[{{url: '{url}', send_resolved: false}}]")).expect("YAML");
            mapping.insert("webhook_configs".into(), webhook);
            rewritten += 1;
        }
    }
    assert_eq!(rewritten, 2, "the example has a paging and a ticketing receiver");
    let path = dir.join("alertmanager.yml");
    fs::write(&path, serde_yaml_ng::to_string(&config).expect("YAML")).expect("write alertmanager.yml");
    let checked = Command::new(tool("amtool", "prometheus-alertmanager"))
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run amtool");
    assert!(checked.status.success(), "amtool check-config of the rewritten example: {checked:?}");
    path
}

fn prometheus_config(dir: &Path, exporter_port: u16, alertmanager_port: u16) -> PathBuf {
    let rules = root().join("alerts");
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - {}\n  - {}\n\
         alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:{alertmanager_port}']\n\
         scrape_configs:\n  - job_name: codedeploy-exporter\n    static_configs:\n\
         \x20     - targets: ['127.0.0.1:{exporter_port}']\n",
        rules.join("codedeploy.rules.yml").display(),
        rules.join("codedeploy.alerts.yml").display(),
    );
    let path = dir.join("prometheus.yml");
    fs::write(&path, config).expect("write prometheus.yml");
    path
}

struct Stack {
    _dir: tempfile::TempDir,
    exporter: Process,
    prometheus_process: Process,
    alertmanager_process: Process,
    prometheus: Prometheus,
    alertmanager_port: u16,
}

impl Stack {
    fn start(webhook_port: u16) -> Stack {
        let dir = tempfile::tempdir().expect("temp dir");
        let (exporter_port, prometheus_port, alertmanager_port) = (free_port(), free_port(), free_port());

        let mut alertmanager_process = Process::spawn(
            "alertmanager",
            Command::new(tool("prometheus-alertmanager", "prometheus-alertmanager"))
                .arg(format!("--config.file={}", alertmanager_config(dir.path(), webhook_port).display()))
                .arg(format!("--storage.path={}", dir.path().join("alertmanager").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{alertmanager_port}"))
                // No cluster: it would listen on every interface.
                .arg("--cluster.listen-address="),
            dir.path(),
        );
        wait_until_ready(alertmanager_port, "/-/ready", &mut alertmanager_process);

        let exporter_dir = dir.path().join("exporter");
        fs::create_dir_all(&exporter_dir).expect("exporter dir");
        let mut exporter = Process::spawn(
            "codedeploy-exporter",
            Command::new(env!("CARGO_BIN_EXE_codedeploy-exporter"))
                .args(["demo", "--web.listen-address", &format!("127.0.0.1:{exporter_port}")]),
            &exporter_dir,
        );
        wait_until_ready(exporter_port, "/metrics", &mut exporter);

        let mut prometheus_process = Process::spawn(
            "prometheus",
            Command::new(tool("prometheus", "prometheus"))
                .arg(format!("--config.file={}", prometheus_config(dir.path(), exporter_port, alertmanager_port).display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}")),
            dir.path(),
        );
        wait_until_ready(prometheus_port, "/-/ready", &mut prometheus_process);
        Stack {
            _dir: dir,
            exporter,
            prometheus_process,
            alertmanager_process,
            prometheus: Prometheus { port: prometheus_port },
            alertmanager_port,
        }
    }

    fn assert_running(&mut self) {
        self.exporter.assert_running();
        self.prometheus_process.assert_running();
        self.alertmanager_process.assert_running();
    }

    /// The alerts Alertmanager holds with this name: (application, deployment_group) → state
    /// (`active` or `suppressed`) and whether an inhibition is the reason.
    fn alertmanager_alerts(&self, alertname: &str) -> BTreeMap<Group, (String, bool)> {
        let filter = format!("alertname=\"{alertname}\"");
        let Ok((200, body)) = http_get(self.alertmanager_port, "/api/v2/alerts", &[("filter", filter)]) else {
            return BTreeMap::new();
        };
        let alerts: Value = serde_json::from_str(&body).unwrap_or_default();
        alerts
            .as_array()
            .into_iter()
            .flatten()
            .map(|alert| {
                let label = |name: &str| alert["labels"][name].as_str().unwrap_or_default().to_owned();
                let state = alert["status"]["state"].as_str().unwrap_or_default().to_owned();
                let inhibited = alert["status"]["inhibitedBy"].as_array().is_some_and(|by| !by.is_empty());
                ((label("application"), label("deployment_group")), (state, inhibited))
            })
            .collect()
    }

    /// Raises the application's own noisy alert for a group, as its Prometheus would.
    fn post_noise(&self, (application, deployment_group): &Group) {
        let alert = serde_json::json!([{
            "labels": {
                "alertname": NOISE_ALERT, "severity": "warning", "deployment_noise": "true",
                "application": application, "deployment_group": deployment_group,
            },
            "annotations": { "summary": "Target health checks flap." },
        }]);
        let posted = http_post_json(self.alertmanager_port, "/api/v2/alerts", &alert.to_string());
        assert!(matches!(posted, Ok((200, _))), "posting {NOISE_ALERT} to Alertmanager: {posted:?}");
    }

    /// (application, deployment_group) of the series an instant query returns, with a label.
    fn groups_with(&self, expr: &str, label: &str) -> BTreeMap<Group, String> {
        self.prometheus
            .vector(expr)
            .into_iter()
            .map(|labels| {
                let get = |name: &str| labels.get(name).cloned().unwrap_or_default();
                ((get("application"), get("deployment_group")), get(label))
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------

/// A group's build changed, as `demo_app_build_info` showed it.
#[derive(Debug)]
struct Shipped {
    group: Group,
    build: String,
    regression: String,
    after_healthy: bool,
    /// The rules had recorded a quiet figure (a baseline) of the group before.
    after_quiet: bool,
    seen: Instant,
    /// Replaced by the next build at this time, if it was.
    until: Option<Instant>,
}

/// The noisy alerts' story for one group.
#[derive(Debug, Default)]
struct Noise {
    group: Group,
    seen_inhibited: bool,
    /// Whether the group had a deployment in progress (per Alertmanager) when it was delivered.
    delivered: Option<bool>,
}

#[test]
fn regressed_demo_deployments_alert_and_deployment_noise_waits_for_the_deployment() {
    let webhook = Webhook::start();
    let mut stack = Stack::start(webhook.port);
    let started = Instant::now();
    let mut builds: BTreeMap<Group, (String, String)> = BTreeMap::new();
    let mut shipped: Vec<Shipped> = Vec::new();
    // (alert, group, build serving when it fired).
    let mut fired: BTreeSet<(String, Group, String)> = BTreeSet::new();
    let mut false_alarms: Vec<String> = Vec::new();
    let mut deploying_noise: Option<Noise> = None;
    let mut resting_noise: Option<Noise> = None;
    let mut had_quiet: BTreeSet<Group> = BTreeSet::new();
    loop {
        stack.assert_running();
        let now = Instant::now();
        let quiet = stack.groups_with("deployment_group:codedeploy_impact_error:ratio_quiet", "application");
        let baseline_before = had_quiet.clone();
        had_quiet.extend(quiet.into_keys());
        // The simulator's truth: which build each group serves, and what it does wrong.
        let serving: BTreeMap<Group, (String, String)> = stack
            .prometheus
            .vector("demo_app_build_info")
            .into_iter()
            .map(|labels| {
                let get = |name: &str| labels.get(name).cloned().unwrap_or_default();
                ((get("application"), get("deployment_group")), (get("build"), get("regression")))
            })
            .collect();
        for (group, (build, regression)) in &serving {
            let previous = builds.insert(group.clone(), (build.clone(), regression.clone()));
            if let Some((previous_build, previous_regression)) = previous.filter(|(b, _)| b != build) {
                if let Some(last) = shipped.iter_mut().rev().find(|s| &s.group == group && s.build == previous_build) {
                    last.until = Some(now);
                }
                shipped.push(Shipped {
                    group: group.clone(),
                    build: build.clone(),
                    regression: regression.clone(),
                    after_healthy: previous_regression == "none",
                    after_quiet: baseline_before.contains(group),
                    seen: now,
                    until: None,
                });
            }
        }
        // A firing regression alert for a build without that regression is a false alarm.
        for (alert, regression) in [(ERROR_ALERT, "errors"), (LATENCY_ALERT, "latency")] {
            let firing = stack.groups_with(&format!("ALERTS{{alertname=\"{alert}\", alertstate=\"firing\"}}"), "alertname");
            for group in firing.keys() {
                match serving.get(group) {
                    Some((build, actual)) if actual == regression => {
                        fired.insert((alert.to_owned(), group.clone(), build.clone()));
                    }
                    other => false_alarms.push(format!("{alert} fired for {group:?}, which serves {other:?}")),
                }
            }
        }

        // Deployment noise: one group that deploys now, one that rests.
        let deploying = stack.alertmanager_alerts("CodeDeployDeploymentInProgress");
        if deploying_noise.is_none() {
            if let Some(group) = deploying.iter().find(|(_, (state, _))| state == "active").map(|(g, _)| g.clone()) {
                stack.post_noise(&group);
                deploying_noise = Some(Noise { group, ..Noise::default() });
            }
        }
        if resting_noise.is_none() {
            // Finished 5 to 15 s ago (an automatic rollback starts within 3 s of the failure
            // it undoes) and nothing in progress: it rests for 45 s more.
            let resting = stack.groups_with(
                "(time() - codedeploy_last_deployment_end_timestamp_seconds >= 5 < 15) unless on (application, deployment_group) (codedeploy_deployments_in_progress > 0)",
                "application",
            );
            if let Some(group) = resting.keys().find(|g| !deploying.contains_key(*g)).cloned() {
                stack.post_noise(&group);
                resting_noise = Some(Noise { group, ..Noise::default() });
            }
        }
        let noise_states = stack.alertmanager_alerts(NOISE_ALERT);
        let delivered = webhook.deliveries();
        for noise in [deploying_noise.as_mut(), resting_noise.as_mut()].into_iter().flatten() {
            if noise.delivered.is_some() {
                continue;
            }
            let (application, group_name) = noise.group.clone();
            if delivered.contains(&("ticket".to_owned(), NOISE_ALERT.to_owned(), application, group_name)) {
                noise.delivered = Some(deploying.get(&noise.group).is_some_and(|(state, _)| state == "active"));
            } else if noise_states.get(&noise.group).is_some_and(|(state, inhibited)| state == "suppressed" && *inhibited) {
                noise.seen_inhibited = true;
            }
        }

        // Done when every regressed build shipped after a healthy one, with a baseline and
        // its whole after window behind it, has had its alert, both alerts reached their
        // receivers, and both noisy alerts were delivered.
        let owed: Vec<&Shipped> = shipped
            .iter()
            .filter(|s| s.regression != "none" && s.after_healthy && s.after_quiet)
            .filter(|s| s.until.unwrap_or(now).duration_since(s.seen) >= AFTER_WINDOW)
            .collect();
        let alert_of = |regression: &str| if regression == "errors" { ERROR_ALERT } else { LATENCY_ALERT };
        let unalerted: Vec<&&Shipped> =
            owed.iter().filter(|s| !fired.contains(&(alert_of(&s.regression).to_owned(), s.group.clone(), s.build.clone()))).collect();
        let routed = |receiver: &str, alert: &str| delivered.iter().any(|(r, a, _, _)| r == receiver && a == alert);
        let both_routed = routed("page", ERROR_ALERT) && routed("ticket", LATENCY_ALERT);
        let noise_done = [&deploying_noise, &resting_noise].iter().all(|n| n.as_ref().is_some_and(|n| n.delivered.is_some()));
        let timed_out = started.elapsed() > DEADLINE;
        if (both_routed && noise_done && unalerted.is_empty() && !owed.is_empty()) || timed_out || !false_alarms.is_empty() {
            let context = format!(
                "after {:?}\nbuilds shipped: {shipped:#?}\nregression alerts fired: {fired:?}\nnotifications: {delivered:?}\n\
                 noise while deploying: {deploying_noise:?}\nnoise while resting: {resting_noise:?}\n--- end of the exporter's log:\n{}",
                started.elapsed(),
                stack.exporter.log_tail()
            );
            assert!(false_alarms.is_empty(), "false alarms: {false_alarms:?}\n{context}");
            assert!(unalerted.is_empty(), "regressed builds without their alert: {unalerted:?}\n{context}");
            assert!(!owed.is_empty(), "no regressed build had its whole after window before the deadline\n{context}");
            assert!(both_routed, "the error alert should page and the latency alert open a ticket\n{context}");
            let deploying_noise = deploying_noise.as_ref().expect("a group deployed during the run");
            assert!(
                deploying_noise.seen_inhibited && deploying_noise.delivered == Some(false),
                "deployment noise should be held back while its group deploys and sent once it is over\n{context}"
            );
            let resting_noise = resting_noise.as_ref().expect("a group rested during the run");
            assert!(
                !resting_noise.seen_inhibited && resting_noise.delivered == Some(false),
                "deployment noise of a resting group should be sent at once\n{context}"
            );
            break;
        }
        std::thread::sleep(POLL);
    }
}
