//! Nothing lost, nothing counted twice: a few thousand messages streamed
//! through the webhook of the real binary while it is SIGKILLed at random
//! moments (requests still in flight) and restarted on the same store; what
//! was not acknowledged is sent again, with random duplicates of what was.
//! The stream mixes SNS, EventBridge and API output (which has no account or
//! region); a third of the deployments are known from events only, so they
//! are counted by their settle timers, which a restart must give back. The
//! final metrics must equal `replay` of the same messages, and no counter may
//! go down between two scrapes across the restarts.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codedeploy_exporter::ingest::{now_ms, Exporter};
use codedeploy_exporter::metrics::{Format, Source};
use codedeploy_exporter::simulator::Fleet;

const BIN: &str = env!("CARGO_BIN_EXE_codedeploy-exporter");
const SECRET: &str = "crash-test-secret";
const IN_FLIGHT: usize = 8;
const KILLS: usize = 5;
/// Longer than one round of sending takes, so that messages of a round all
/// land within the settle time of each other.
const SETTLE_TIME: &str = "30s";
/// Events-only deployments settle a settle time after their end at the
/// latest, twice that when an earlier one of their group is still open.
const SETTLED_WITHIN: Duration = Duration::from_secs(120);

/// A running exporter process; killed when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(storage: &std::path::Path) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--web.listen-address", "127.0.0.1:0", "--ledger.settle-time", SETTLE_TIME])
            .arg("--storage.path")
            .arg(storage)
            .env("CODEDEPLOY_EXPORTER_WEBHOOK_SECRET", SECRET)
            .stderr(Stdio::piped())
            .spawn()
            .expect("the exporter starts");
        // A thread reads the log, so that waiting for the address has a
        // deadline, and keeps draining it so the process never blocks on a full pipe.
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                // After start-up nobody listens; the lines are only drained.
                let _ = sender.send(line);
            }
        });
        let started = Instant::now();
        let address = loop {
            let left = Duration::from_secs(60).saturating_sub(started.elapsed());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(address) = line.split_whitespace().find_map(|w| w.strip_prefix("address=")) {
                        break address.to_owned();
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("exited before listening"),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("not listening within 60 s"),
            }
        };
        Server { child, address }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Series whose value depends only on the messages (not on the wall clock or
/// on how often a message was delivered).
fn domain(exposition: &str) -> Vec<String> {
    let clocked = [
        "codedeploy_exporter_",
        "codedeploy_sli_",
        "codedeploy_dora_",
        "codedeploy_deployment_duration_window_",
        "process_",
    ];
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !clocked.iter().any(|c| l.starts_with(c)))
        .map(str::to_owned)
        .collect()
}

/// Counter-like samples (counters and histogram parts), by series.
fn monotonic(exposition: &str) -> BTreeMap<String, f64> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let name = series.split('{').next().unwrap_or_default();
            // A process's CPU time starts again with each process: only the exporter's counters continue.
            !name.starts_with("process_") && ["_total", "_bucket", "_count", "_sum"].iter().any(|s| name.ends_with(s))
        })
        .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
        .collect()
}

fn assert_no_counter_went_down(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>) {
    for (series, old) in before {
        let new = after.get(series).copied().unwrap_or(0.0);
        assert!(new >= *old, "{series} went down from {old} to {new}");
    }
}

async fn scrape(client: &reqwest::Client, server: &Server) -> String {
    let url = format!("http://{}/metrics", server.address);
    client.get(url).send().await.expect("scrape").text().await.expect("scrape body")
}

/// Sends `indices` (at most [`IN_FLIGHT`] at a time), marking what is
/// acknowledged; when `kill_after` acknowledgements have arrived, stops
/// sending and returns, leaving the rest unacknowledged.
async fn send(
    client: &reqwest::Client,
    server: &Server,
    messages: &Arc<Vec<String>>,
    indices: Vec<usize>,
    acked: &mut [bool],
    kill_after: Option<usize>,
) {
    let url = format!("http://{}/events", server.address);
    let stop = Arc::new(AtomicBool::new(false));
    let mut pending = tokio::task::JoinSet::new();
    let mut queue = indices.into_iter();
    let mut acknowledged = 0;
    loop {
        while pending.len() < IN_FLIGHT && !stop.load(Ordering::Relaxed) {
            let Some(index) = queue.next() else { break };
            let (client, url, messages) = (client.clone(), url.clone(), messages.clone());
            pending.spawn(async move {
                let response = client
                    .post(url)
                    .header("Authorization", format!("Bearer {SECRET}"))
                    .body(messages[index].clone())
                    .send()
                    .await;
                (index, response.map(|r| r.status().as_u16()).unwrap_or(0))
            });
        }
        let Some(done) = pending.join_next().await else { return };
        let (index, status) = done.expect("sender task");
        assert!(status != 400, "message {index} was rejected: the simulator only sends valid ones");
        if status == 200 {
            acked[index] = true;
            acknowledged += 1;
            if kill_after.is_some_and(|limit| acknowledged >= limit) {
                // The process dies with these requests still in flight.
                stop.store(true, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// The deployment an API output (GetDeployment, BatchGetDeploymentTargets)
/// is about; `None` for event messages.
fn api_output_of(message: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(message).ok()?;
    let id = |v: &serde_json::Value| v["deploymentId"].as_str().map(str::to_owned);
    if let Some(info) = value.get("deploymentInfo") {
        return id(info);
    }
    let target = value.get("deploymentTargets")?.as_array()?.first()?.as_object()?.values().find(|v| v.is_object())?.clone();
    id(&target)
}

/// The simulator's history without the API output of every third deployment.
fn mixed_stream(now: i64) -> Vec<String> {
    let history = Fleet::new(20_261_126).history(now, 6);
    let mut ids: Vec<String> = history.iter().filter_map(|m| api_output_of(m)).collect();
    ids.sort();
    ids.dedup();
    let events_only: std::collections::HashSet<&String> = ids.iter().step_by(3).collect();
    assert!(events_only.len() > 50, "enough events-only deployments, got {}", events_only.len());
    history.iter().filter(|m| api_output_of(m).is_none_or(|id| !events_only.contains(&id))).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_nothing_and_counts_nothing_twice() {
    let now = now_ms();
    let messages: Arc<Vec<String>> = Arc::new(mixed_stream(now));
    assert!(messages.len() > 2000, "a stream of a few thousand messages, got {}", messages.len());

    let truth = {
        let mut exporter = Exporter::in_memory(0);
        exporter.register(Source::Webhook);
        for message in messages.iter() {
            exporter.ingest(Source::Webhook, message.as_bytes(), now).expect("valid message");
        }
        exporter.settle(now, true);
        domain(&exporter.exposition(now).render(Format::Text))
    };

    let storage = tempfile::tempdir().expect("a store directory");
    let client = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("client");
    let mut rng = fastrand::Rng::with_seed(7);
    let mut acked = vec![false; messages.len()];
    let mut last_counters = BTreeMap::new();

    for round in 0..=KILLS {
        let server = Server::start(storage.path());
        let restarted = monotonic(&scrape(&client, &server).await);
        assert_no_counter_went_down(&last_counters, &restarted);

        // What was not acknowledged, in order, with duplicates of acknowledged ones mixed in.
        let mut indices: Vec<usize> = (0..messages.len()).filter(|i| !acked[*i]).collect();
        let done: Vec<usize> = (0..messages.len()).filter(|i| acked[*i]).collect();
        for _ in 0..(done.len() / 10) {
            let at = rng.usize(..=indices.len());
            indices.insert(at, done[rng.usize(..done.len())]);
        }
        let remaining = indices.len();
        let kill_after = (round < KILLS).then(|| rng.usize(1..=(remaining / (KILLS - round + 1)).max(1)));
        send(&client, &server, &messages, indices, &mut acked, kill_after).await;

        let scraped = monotonic(&scrape(&client, &server).await);
        assert_no_counter_went_down(&restarted, &scraped);
        last_counters = scraped;
        if round < KILLS {
            server.kill();
            continue;
        }

        assert!(acked.iter().all(|a| *a), "every message acknowledged in the end");
        // Let the last deployments settle, then compare with the clean run.
        let deadline = tokio::time::Instant::now() + SETTLED_WITHIN;
        let mut final_exposition = scrape(&client, &server).await;
        while domain(&final_exposition) != truth && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(250)).await;
            final_exposition = scrape(&client, &server).await;
        }
        assert!(!final_exposition.contains("late_for_recovery"), "nothing came too late for its recovery run");
        let final_domain = domain(&final_exposition);
        let missing: Vec<_> = truth.iter().filter(|l| !final_domain.contains(l)).take(10).collect();
        let extra: Vec<_> = final_domain.iter().filter(|l| !truth.contains(l)).take(10).collect();
        assert!(missing.is_empty() && extra.is_empty(), "differs from a clean run:\nexpected {missing:#?}\ngot {extra:#?}");
    }
}
