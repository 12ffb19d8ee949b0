//! Test support for the AWS sources: the moto harness (tests/moto/harness.py),
//! the exporter started in-process against it, and `/metrics` read as
//! Prometheus reads it.

#![allow(dead_code)]

#[path = "../common/promtool.rs"]
mod promtool;
#[allow(unused_imports)] // tests/aws_docs.rs includes this file and checks no exposition.
pub use promtool::assert_promtool_clean;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use clap::Parser;
use codedeploy_exporter::app::App;
use codedeploy_exporter::config::{Cli, Command as CliCommand};
use codedeploy_exporter::setup::SetupArgs;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// `setup`'s arguments for one queue and the default bus in moto's [`REGION`].
pub fn setup_args(moto: &Moto, dry_run: bool) -> SetupArgs {
    SetupArgs {
        queue_names: vec!["codedeploy-exporter".into()],
        max_receive_count: 5,
        rule_name: "codedeploy-exporter".into(),
        bus_name: "default".into(),
        region: Some(REGION.into()),
        endpoint_url: Some(moto.endpoint.clone()),
        role_arns: vec![],
        dry_run,
    }
}

/// Tests in one binary share the environment and the CPU with moto: one at a time.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: OnceLock<tokio::sync::Mutex<()>> = OnceLock::new();
    let guard = LOCK.get_or_init(|| tokio::sync::Mutex::new(())).lock().await;
    // Test credentials for the SDK's standard chain, set while no other test runs.
    for (key, value) in [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ] {
        std::env::set_var(key, value);
    }
    for key in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_SERVICE_ENDPOINT"] {
        std::env::remove_var(key);
    }
    guard
}

/// The venv's python, with moto: `CODEDEPLOY_EXPORTER_TEST_PYTHON`, else `.venv/bin/python`.
pub fn python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = std::env::var_os("CODEDEPLOY_EXPORTER_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let has_moto = Command::new(&python)
        .args(["-c", "import moto.server, boto3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_moto,
        "moto is required for the AWS tests and {} does not have it. Install it with:\n  \
         python3 -m venv .venv && .venv/bin/pip install \"moto[server]==5.2.5\" boto3==1.44.8 cfn-lint==1.58.0\n\
         (scripts/test does this), or point CODEDEPLOY_EXPORTER_TEST_PYTHON at a python that has it.",
        python.display()
    );
    python
}

/// How long the harness may take to start (python importing moto on a busy
/// machine), and to answer one command; past them the test fails saying so
/// instead of hanging until CI's own limit.
const HARNESS_START: Duration = Duration::from_secs(120);
const HARNESS_ANSWER: Duration = Duration::from_secs(60);

/// A running moto harness; killed when dropped (it also exits on stdin EOF).
pub struct Moto {
    child: Child,
    /// Its stdin, and the lines of its stdout, read by a thread of their own
    /// so that every read can be given a deadline.
    io: Mutex<(ChildStdin, Receiver<String>)>,
    /// moto itself: for the test's own calls.
    pub endpoint: String,
    /// The counting, fault-injecting proxy: for the exporter.
    pub proxy: String,
}

impl Moto {
    pub fn start() -> Moto {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto/harness.py");
        let mut child = Command::new(python())
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the moto harness");
        let stdin = child.stdin.take().expect("stdin");
        let lines = read_lines(child.stdout.take().expect("stdout"));
        let line = next_line(&lines, HARNESS_START, "start");
        let hello: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("harness said {line:?}: {e}"));
        Moto {
            child,
            io: Mutex::new((stdin, lines)),
            endpoint: hello["endpoint"].as_str().expect("endpoint").to_owned(),
            proxy: hello["proxy"].as_str().expect("proxy").to_owned(),
        }
    }

    /// Sends one command; panics on an error answer, or on none in [`HARNESS_ANSWER`].
    pub fn cmd(&self, command: Value) -> Value {
        let mut io = self.io.lock().unwrap_or_else(|p| p.into_inner());
        writeln!(io.0, "{command}").expect("write to the harness");
        io.0.flush().expect("flush");
        let line = next_line(&io.1, HARNESS_ANSWER, &format!("answer {command}"));
        let answer: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("harness said {line:?}: {e}"));
        assert_eq!(answer["ok"], true, "harness command {command} failed: {answer}");
        answer
    }

    /// API calls the proxy forwarded, by `service.Operation`.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        let answer = self.cmd(json!({"cmd": "counts"}));
        serde_json::from_value(answer["counts"].clone()).expect("counts")
    }

    /// BatchGetDeployments calls per deployment id made while it was finished.
    pub fn terminal_fetches(&self) -> BTreeMap<String, u64> {
        let answer = self.cmd(json!({"cmd": "counts"}));
        serde_json::from_value(answer["terminal_fetches"].clone()).expect("terminal fetches")
    }

    pub fn reset_counts(&self) {
        self.cmd(json!({"cmd": "reset_counts"}));
    }

    pub async fn sdk(&self, region: &str) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(region.to_owned()))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load()
            .await
    }
}

/// The harness's next line, within `within`; `what` says what it was to do.
fn next_line(lines: &Receiver<String>, within: Duration, what: &str) -> String {
    match lines.recv_timeout(within) {
        Ok(line) => line,
        Err(RecvTimeoutError::Timeout) => panic!("the moto harness did not {what} within {within:?}"),
        Err(RecvTimeoutError::Disconnected) => {
            panic!("the moto harness exited before it could {what}; its stderr (above) says why")
        }
    }
}

/// The lines of `stdout`, as a thread reads them; the channel closes at EOF.
fn read_lines(stdout: ChildStdout) -> Receiver<String> {
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    received
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How long the in-process exporter may take to start, answer a scrape or stop.
const EXPORTER_STEP: Duration = Duration::from_secs(60);

/// The exporter, in-process; stops when dropped.
pub struct Exporter {
    pub address: SocketAddr,
    /// The app's readiness hook: true once the poller's first backfill is over.
    pub backfilled: tokio::sync::watch::Receiver<bool>,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Exporter {
    /// `serve` on 127.0.0.1:0 with a store in `storage` and `flags`, built
    /// within [`EXPORTER_STEP`].
    pub async fn start(storage: &Path, flags: &[&str]) -> Exporter {
        Exporter::start_at("127.0.0.1:0", storage, flags).await
    }

    /// [`Exporter::start`] on `listen` (a restart that Prometheus must see as
    /// the same target keeps its address).
    pub async fn start_at(listen: &str, storage: &Path, flags: &[&str]) -> Exporter {
        let storage = storage.to_str().expect("a UTF-8 path").to_owned();
        let mut argv = vec!["codedeploy-exporter", "serve", "--web.listen-address", listen, "--storage.path", &storage];
        argv.extend_from_slice(flags);
        let cli = Cli::try_parse_from(argv).expect("flags parse");
        let CliCommand::Serve(args) = cli.command else { unreachable!("serve") };
        let config = args.validate(None).expect("valid flags");
        let app = tokio::time::timeout(EXPORTER_STEP, App::build(config, None))
            .await
            .unwrap_or_else(|_| panic!("the exporter did not start within {EXPORTER_STEP:?}"))
            .expect("the exporter builds");
        let address = app.local_addr().expect("bound");
        let backfilled = app.backfilled();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(app.run(shutdown.clone()));
        Exporter { address, backfilled, shutdown, server: Some(server) }
    }

    pub async fn scrape(&self) -> Scrape {
        let scrape = async {
            reqwest::get(format!("http://{}/metrics", self.address)).await.expect("scrape").text().await.expect("scrape body")
        };
        let body = tokio::time::timeout(EXPORTER_STEP, scrape)
            .await
            .unwrap_or_else(|_| panic!("no scrape within {EXPORTER_STEP:?}"));
        Scrape::parse(&body)
    }

    /// The status `/-/ready` answers.
    pub async fn ready(&self) -> u16 {
        let probe = async { reqwest::get(format!("http://{}/-/ready", self.address)).await.expect("probe").status().as_u16() };
        tokio::time::timeout(EXPORTER_STEP, probe).await.unwrap_or_else(|_| panic!("no answer within {EXPORTER_STEP:?}"))
    }

    /// Scrapes until `done` holds; panics with the last scrape after `timeout`.
    pub async fn wait_for(&self, timeout: Duration, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
        let started = Instant::now();
        loop {
            let scrape = self.scrape().await;
            if done(&scrape) {
                return scrape;
            }
            if started.elapsed() > timeout {
                panic!("timed out after {timeout:?} waiting for {what}; last scrape:\n{}", scrape.text);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            tokio::time::timeout(EXPORTER_STEP, server)
                .await
                .unwrap_or_else(|_| panic!("the exporter did not stop within {EXPORTER_STEP:?}"))
                .expect("server task")
                .expect("server ran cleanly");
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// One exposition, parsed into samples the way Prometheus's text parser reads them.
#[derive(Debug, Clone)]
pub struct Scrape {
    pub text: String,
    pub samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, rest) = match line.find('{') {
                Some(_) => {
                    let close = line.rfind('}').unwrap_or_else(|| panic!("unbalanced braces: {line}"));
                    (&line[..=close], line[close + 1..].trim())
                }
                None => line.split_once(' ').unwrap_or_else(|| panic!("no value: {line}")),
            };
            let value: f64 = match rest.split_whitespace().next().unwrap_or("") {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            samples.push((name.to_owned(), labels, value));
        }
        Scrape { text: text.to_owned(), samples }
    }

    /// The sum of the samples of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).map(|(_, _, v)| *v).sum()
    }

    /// The value of the one sample of `name` with `labels` (panics unless exactly one matches).
    pub fn one(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<_> = self.matching(name, labels).collect();
        assert_eq!(found.len(), 1, "{name}{labels:?}: {found:?}\n{}", self.text);
        found[0].2
    }

    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a (String, BTreeMap<String, String>, f64)> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v)))
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").unwrap_or_else(|| panic!("bad labels: {text}"));
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                other => value.push(other),
            }
        }
        labels.insert(name.trim_start_matches(',').trim().to_owned(), value);
        rest = after[end..].trim_start_matches(',');
    }
    labels
}

/// Seconds since the epoch, now.
pub fn now_s() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs_f64()
}

/// An EventBridge CodeDeploy deployment state change, as PutEvents takes it.
pub fn deployment_event(
    account: &str,
    region: &str,
    app: &str,
    group: &str,
    id: &str,
    state: &str,
    at_s: f64,
) -> aws_sdk_eventbridge::types::PutEventsRequestEntry {
    let detail = json!({
        "instanceGroupId": "9fd2fbef-2157-40d8-91e7-6845af69e2d2",
        "region": region,
        "application": app,
        "deploymentId": id,
        "state": state,
        "deploymentGroup": group,
    });
    aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .source("aws.codedeploy")
        .detail_type("CodeDeploy Deployment State-change Notification")
        .detail(detail.to_string())
        .resources(format!("arn:aws:codedeploy:{region}:{account}:deploymentgroup:{app}/{group}"))
        .time(aws_sdk_eventbridge::primitives::DateTime::from_millis((at_s * 1000.0) as i64))
        .build()
}

/// Messages in a queue: visible plus in flight.
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::ApproximateNumberOfMessages)
        .attribute_names(A::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .expect("GetQueueAttributes")
        .attributes
        .unwrap_or_default();
    [A::ApproximateNumberOfMessages, A::ApproximateNumberOfMessagesNotVisible]
        .iter()
        .map(|k| attributes.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0))
        .sum()
}
