//! The binary as a user runs it: flags, errors, signals.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_codedeploy-exporter");

#[test]
fn bad_flags_fail_with_a_clear_message() {
    let output = Command::new(BIN)
        .args(["serve", "--web.listen-address", "localhost"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--web.listen-address \"localhost\" is not HOST:PORT"), "{stderr}");

    let output = Command::new(BIN)
        .args(["serve", "--ledger.settle-time", "soon"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "clap's usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--ledger.settle-time"));
}

#[test]
fn flags_can_come_from_the_environment() {
    let output = Command::new(BIN)
        .arg("serve")
        .env("CODEDEPLOY_EXPORTER_WEB_TELEMETRY_PATH", "no-slash")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--web.telemetry-path \"no-slash\""));
}

#[test]
fn help_explains_every_flag() {
    let output = Command::new(BIN).args(["serve", "--help"]).output().expect("runs");
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--web.listen-address",
        "--web.telemetry-path",
        "--webhook.secret-file",
        "--webhook.max-body-bytes",
        "--ledger.settle-time",
        "--replay",
        "--shutdown.timeout",
        "CODEDEPLOY_EXPORTER_WEB_LISTEN_ADDRESS",
    ] {
        assert!(help.contains(flag), "{flag} missing from\n{help}");
    }
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let mut server = Running::start(&["serve", "--web.listen-address", "127.0.0.1:0", "--log.level", "info"]);
    let metrics = std::net::TcpStream::connect(server.address()).expect("listening");
    drop(metrics);
    let (status, log) = server.stop();
    assert!(status.success(), "exit status {status}");
    let rest = log.join("\n");
    assert!(rest.contains("shutting down gracefully") && rest.contains("stopped"), "{rest}");
}

/// `replay`'s whole output, self-metrics included, depends on the set of its
/// messages only (issue 12): the same messages forward, reversed and shuffled,
/// with re-deliveries mixed in, print the same bytes, and every re-delivery is
/// counted as a `duplicate` whatever its place.
#[test]
fn replay_prints_the_same_bytes_in_any_order() {
    let mut base = codedeploy_exporter::simulator::Fleet::new(12).history(1_700_000_000_000, 10);
    // The fixture adds the formats the simulator does not write, and
    // messages that are rejected or ignored.
    base.extend(include_str!("fixtures/streams/mixed.jsonl").lines().map(str::to_owned));
    // Blank lines are skipped, not counted: re-delivering one would count nothing.
    let redelivered: Vec<String> = base.iter().step_by(3).filter(|l| !l.trim().is_empty()).cloned().collect();
    let mut forward = base.clone();
    forward.extend(redelivered.iter().cloned());
    let mut reversed = forward.clone();
    reversed.reverse();
    let mut shuffled = forward.clone();
    shuffle(&mut shuffled, 0x9e37_79b9_7f4a_7c15);

    let dir = tempfile::tempdir().expect("temp dir");
    let replay = |name: &str, lines: &[String]| -> String {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.join("\n")).expect("writes the stream");
        let output = Command::new(BIN).arg("replay").arg(&path).output().expect("runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("UTF-8 exposition")
    };
    let once = replay("once.jsonl", &base);
    let expected = replay("forward.jsonl", &forward);
    assert!(expected == replay("reversed.jsonl", &reversed), "reversed differs");
    assert!(expected == replay("shuffled.jsonl", &shuffled), "shuffled differs");

    let events = |text: &str, outcome: &str| -> u64 {
        let prefix = format!("codedeploy_exporter_events_total{{source=\"replay\",outcome=\"{outcome}\"}} ");
        let line = text.lines().find_map(|l| l.strip_prefix(&prefix));
        line.unwrap_or_else(|| panic!("no {prefix}")).parse().expect("a count")
    };
    assert_eq!(events(&expected, "applied"), events(&once, "applied"), "a re-delivery was counted as applied");
    let redelivered_decodable = redelivered.len() as u64
        - (events(&expected, "rejected") + events(&expected, "ignored") - events(&once, "rejected") - events(&once, "ignored"));
    assert_eq!(events(&expected, "duplicate"), events(&once, "duplicate") + redelivered_decodable);
    assert!(redelivered_decodable > 100, "the stream re-delivers enough to matter: {redelivered_decodable}");
}

/// Fisher-Yates with xorshift64: a fixed, reproducible order.
fn shuffle<T>(items: &mut [T], mut state: u64) {
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

#[path = "common/promtool.rs"]
mod promtool;

/// Sends SIGTERM and waits for the exit, killing the process and failing
/// the test if it has not exited `within`.
fn terminate(child: &mut std::process::Child, within: Duration) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if started.elapsed() > within {
            let _ = child.kill();
            panic!("no exit within {within:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The binary running in a fresh working directory (the default store is
/// ./data), its stderr read line by line by a thread of its own, so that
/// every wait for a line has a deadline.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Every stderr line received so far.
    log: Vec<String>,
    _workdir: tempfile::TempDir,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let workdir = tempfile::tempdir().expect("a working directory");
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(workdir.path())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starts");
        let stderr = BufReader::new(child.stderr.take().expect("stderr"));
        let (sender, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines, log: Vec::new(), _workdir: workdir }
    }

    /// Log lines until `wanted` says it has seen enough, within 60 s.
    fn read_log_until(&mut self, mut wanted: impl FnMut(&str) -> bool) {
        let started = Instant::now();
        loop {
            let left = Duration::from_secs(60).saturating_sub(started.elapsed());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|e| {
                panic!("the awaited log line did not come within 60 s ({e}); log so far:\n{}", self.log.join("\n"))
            });
            self.log.push(line);
            if wanted(self.log.last().expect("just pushed")) {
                return;
            }
        }
    }

    /// The address it logs that it listens on.
    fn address(&mut self) -> String {
        self.logged_value("address")
    }

    /// The value of the first `KEY=value` field logged with `key`.
    fn logged_value(&mut self, key: &str) -> String {
        let prefix = format!("{key}=");
        let mut value = String::new();
        self.read_log_until(|line| match line.split_whitespace().find_map(|w| w.strip_prefix(&prefix)) {
            Some(found) => {
                value = found.to_owned();
                true
            }
            None => false,
        });
        value
    }

    /// SIGTERM, then the exit status and the rest of the log.
    fn stop(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let status = terminate(&mut self.child, Duration::from_secs(20));
        // The process has exited: the log ends, and the reader closes the channel.
        let rest: Vec<String> = self.lines.iter().collect();
        self.log.extend(rest);
        (status, std::mem::take(&mut self.log))
    }
}

impl Drop for Running {
    /// A test that failed half-way leaves no server behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A plain HTTP/1.1 GET: the status code and the body.
fn http_get(address: &str, path: &str) -> (u16, String) {
    let (status, _, body) = http(address, "GET", path);
    (status, body)
}

/// A plain HTTP/1.1 request with no body: the status code, the head and the body.
fn http(address: &str, method: &str, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("a timeout");
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .expect("request sent");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("a response");
    let response = String::from_utf8(response).expect("UTF-8");
    let (head, body) = response.split_once("\r\n\r\n").expect("headers and body");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    // The scrape is streamed (chunked); the landing page has a length.
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") { dechunk(body) } else { body.to_owned() };
    (status, head.to_owned(), body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// Issue 15: `--log.format json` writes one JSON object per line, from the
/// first line to the last, `--replay` files included; every
/// `--web.listen-address` is bound and serves; `/metrics` carries the
/// standard `process_*` series, plausible and promtool-clean.
#[test]
fn json_logs_every_listen_address_and_process_metrics() {
    let replay = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/streams/mixed.jsonl");
    let mut server = Running::start(&[
        "serve",
        "--replay",
        replay,
        "--log.format",
        "json",
        "--web.listen-address",
        "127.0.0.1:0",
        "--web.listen-address",
        "127.0.0.1:0",
    ]);
    let mut addresses = Vec::new();
    server.read_log_until(|line| {
        let event: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line}"));
        if event["message"] == "listening" {
            addresses.push(event["address"].as_str().expect("the address, a string").to_owned());
        }
        addresses.len() == 2
    });
    assert_ne!(addresses[0], addresses[1], "two listeners, two ports");
    for address in &addresses {
        assert_eq!(http_get(address, "/-/healthy").0, 200, "{address}");
    }

    let (status, body) = http_get(&addresses[1], "/metrics");
    assert_eq!(status, 200);
    let value = |name: &str| -> f64 {
        let line = body.lines().find(|l| l.split_whitespace().next() == Some(name));
        line.and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("no {name}"))
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs_f64();
    let started = value("process_start_time_seconds");
    assert!(started <= now + 1.0 && started > now - 600.0, "start time {started}, now {now}");
    assert!(value("process_cpu_seconds_total") >= 0.0);
    let resident = value("process_resident_memory_bytes");
    assert!(resident > 1e6 && resident <= value("process_virtual_memory_bytes"), "resident {resident}");
    let open = value("process_open_fds");
    assert!(open >= 5.0 && open <= value("process_max_fds"), "open fds {open}");
    assert!(body.contains("# TYPE process_cpu_seconds_total counter"), "{body}");
    promtool::assert_promtool_clean(&body);

    let (status, log) = server.stop();
    assert!(status.success(), "exit status {status}");
    for line in &log {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    assert!(log.iter().any(|l| l.contains("\"message\":\"stopped")), "{log:?}");
    // A preload says when each file starts and when it is in.
    for message in ["preloading", "preloaded"] {
        let said = log.iter().any(|l| l.contains(&format!("\"message\":\"{message}\"")) && l.contains("mixed.jsonl"));
        assert!(said, "no {message} line for the --replay file in {log:?}");
    }
}

/// Issue 15: the landing page of `demo` says the data is simulated, labels
/// the window of every figure, shows the DORA keys and what to do next, and
/// loads nothing from elsewhere.
#[test]
fn the_landing_page_guides_a_newcomer() {
    let mut demo = Running::start(&["demo", "--web.listen-address", "127.0.0.1:0", "--demo.history-days", "8"]);
    let address = demo.address();
    let (status, page) = http_get(&address, "/");
    assert_eq!(status, 200);
    for part in [
        "Simulated data",
        "Readiness: <span class=\"ok\">ready",
        "DORA keys, all groups, last 7d",
        "Change failure rate",
        "Succeeded (all time)",
        "Success ratio (7d)",
        "Lead time, median (7d)",
        "rule_files:\n  - /etc/prometheus/codedeploy.*.yml",
        "metrics_path: /metrics",
        &format!("targets: [\"{address}\"]"),
        "codedeploy-dora.json",
        "docs/metrics.md",
        "/-/healthy",
        "<style>",
    ] {
        assert!(page.contains(part), "{part:?} missing from the landing page:\n{page}");
    }
    for external in ["<script", "<link", "src=", "http://", "https://"] {
        assert!(!page.contains(external), "the page loads {external}:\n{page}");
    }
    let (status, _) = demo.stop();
    assert!(status.success(), "exit status {status}");
}

/// A process whose log reader went away (a log shipper restarted, a test
/// that failed) still stops on SIGTERM: logging to the closed pipe loses the
/// lines and panics nothing, the signal handler included.
#[test]
fn sigterm_stops_the_server_after_its_log_reader_went_away() {
    let workdir = tempfile::tempdir().expect("a working directory");
    let mut child = Command::new(BIN)
        .args(["demo", "--web.listen-address", "127.0.0.1:0", "--demo.history-days", "1"])
        .current_dir(workdir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // Once it listens, its signal handler is in place. The end this test
    // holds is the pipe's only reader, so dropping it closes the pipe.
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    for line in stderr.lines() {
        if line.expect("a log line").contains("msg=listening") {
            break;
        }
    }
    // The pipe's reader is gone by now: SIGTERM must still stop it.
    let status = terminate(&mut child, Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
}

/// Issue 15: each error is said once and names what to fix.
#[test]
fn errors_name_the_flag_and_say_the_os_error_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let failure = |args: &[&str]| -> String {
        let output = Command::new(BIN).args(args).current_dir(dir.path()).output().expect("runs");
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        String::from_utf8(output.stderr).expect("UTF-8")
    };
    let missing = dir.path().join("missing-secret");
    let stderr = failure(&["serve", "--webhook.secret-file", missing.to_str().expect("UTF-8 path")]);
    assert!(stderr.contains(&format!("cannot read --webhook.secret-file {}", missing.display())), "{stderr}");
    assert_eq!(stderr.matches("(os error 2)").count(), 1, "{stderr}");

    let empty = dir.path().join("empty-secret");
    std::fs::write(&empty, "\n").expect("writes");
    let stderr = failure(&["serve", "--webhook.secret-file", empty.to_str().expect("UTF-8 path")]);
    assert!(stderr.contains(&format!("the webhook secret in --webhook.secret-file {} is empty", empty.display())), "{stderr}");

    // A directory under a regular file cannot be created.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "").expect("writes");
    let store = file.join("data");
    let stderr = failure(&["serve", "--web.listen-address", "127.0.0.1:0", "--storage.path", store.to_str().expect("UTF-8")]);
    assert!(stderr.contains(&format!("cannot create the storage directory {}", store.display())), "{stderr}");
    assert_eq!(stderr.matches("(os error").count(), 1, "{stderr}");

    let stderr = failure(&["serve", "--web.listen-address", "127.0.0.1:65536"]);
    assert!(stderr.contains("\"127.0.0.1:65536\": the port must be between 0 and 65535"), "{stderr}");
}

/// Issue 15: while `serve` loads its history the process answers, so a
/// liveness probe does not restart it and a large load is never silent:
/// `/-/healthy` 200, `/-/ready` 503 naming what is loading, `/metrics` the
/// exporter's own series with the bytes still to load, the webhook 503 with
/// `Retry-After`. A FIFO as the first `--replay` file holds the load where
/// the test wants it; once written and closed, the whole ledger is served.
#[test]
fn while_loading_history_the_process_answers_and_shows_what_remains() {
    let dir = tempfile::tempdir().expect("a directory");
    let fifo = dir.path().join("held.jsonl");
    let made = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", fifo.display());
    let rest = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/streams/mixed.jsonl");
    let rest_bytes = std::fs::metadata(rest).expect("the fixture").len();
    let mut server = Running::start(&[
        "serve",
        "--replay",
        fifo.to_str().expect("a UTF-8 path"),
        "--replay",
        rest,
        "--web.listen-address",
        "127.0.0.1:0",
        "--webhook.secret",
        "s3cret",
    ]);
    let probes = server.logged_value("probes");

    assert_eq!(http_get(&probes, "/-/healthy"), (200, "Healthy\n".to_owned()));
    // The store first, then the files: the load stops at the FIFO.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = http_get(&probes, "/-/ready");
        assert_eq!(status, 503, "{body}");
        if body.contains("Not ready: loading: --replay file") && body.contains("held.jsonl") {
            break;
        }
        assert!(body.contains("Not ready: loading: "), "{body}");
        assert!(Instant::now() < deadline, "still not loading the FIFO: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, metrics) = http_get(&probes, "/metrics");
    assert_eq!(status, 200);
    // Held on the FIFO (0 bytes by its metadata): the other file is still to come.
    let remaining = metrics.lines().find_map(|l| l.strip_prefix("codedeploy_exporter_preload_remaining_bytes "));
    assert_eq!(remaining.and_then(|v| v.parse::<f64>().ok()), Some(rest_bytes as f64), "{metrics}");
    assert!(metrics.contains("codedeploy_exporter_build_info{") && metrics.contains("process_start_time_seconds "), "{metrics}");
    assert!(!metrics.contains("codedeploy_deployments_total{"), "no ledger while loading:\n{metrics}");
    promtool::assert_promtool_clean(&metrics);
    let (status, head, _) = http(&probes, "POST", "/events");
    assert_eq!(status, 503, "{head}");
    assert!(head.to_ascii_lowercase().contains("retry-after: 5"), "{head}");

    // Opening the FIFO for writing lets the exporter's read go on; closing it ends the file.
    std::fs::write(&fifo, "").expect("the FIFO is written and closed");
    let address = server.address();
    assert_eq!(address, probes, "the same socket serves the whole exporter");
    assert_eq!(http_get(&address, "/-/ready"), (200, "Ready\n".to_owned()));
    let (_, metrics) = http_get(&address, "/metrics");
    assert!(metrics.contains("codedeploy_deployments_total{"), "{metrics}");
    assert!(!metrics.contains("codedeploy_exporter_preload_remaining_bytes"), "{metrics}");
    let (status, _) = server.stop();
    assert!(status.success(), "exit status {status}");
}

/// Issue 16: the group info flags are checked at start, from the command
/// line or the environment, and each error names the flag and what to do.
#[test]
fn group_label_flags_are_checked_at_start() {
    let failure = |args: &[&str], env: &[(&str, &str)]| -> String {
        let output = Command::new(BIN).args(args).envs(env.iter().copied()).output().expect("runs");
        assert_eq!(output.status.code(), Some(1), "{args:?} {env:?}");
        String::from_utf8(output.stderr).expect("UTF-8")
    };
    let stderr = failure(&["serve", "--labels.from-tags", "Region=region"], &[]);
    assert!(stderr.contains("--labels.from-tags \"Region=region\": the label \"region\" is one the info series has already"), "{stderr}");
    let stderr = failure(&["serve"], &[("CODEDEPLOY_EXPORTER_LABELS_FROM_TAGS", "team,Team=team")]);
    assert!(stderr.contains("\"team\" and \"Team=team\" both become the label \"team\""), "{stderr}");
    let stderr = failure(&["serve", "--dora.production-groups", "shop/(prod"], &[]);
    assert!(stderr.contains("--dora.production-groups \"shop/(prod\" is not a regular expression"), "{stderr}");
    let stderr = failure(&["serve", "--labels.from-tags", "Env=environment", "--dora.production-groups", ".*/prod"], &[]);
    assert!(stderr.contains("cannot be combined with a tag mapped to the environment label"), "{stderr}");
    let stderr = failure(&["serve", "--tags.refresh-interval", "10s"], &[]);
    assert!(stderr.contains("--tags.refresh-interval must be 0 (off) or between 1m and 7d"), "{stderr}");
    let stderr = failure(&["replay", "--labels.from-tags", "=x", "no-such-file"], &[]);
    assert!(stderr.contains("--labels.from-tags \"=x\": expected KEY or KEY=LABEL"), "{stderr}");
}

/// The `codedeploy_deployment_group_info` lines of an exposition, as label maps.
fn info_series(exposition: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("codedeploy_deployment_group_info{"))
        .map(|l| {
            let (labels, value) = l.rsplit_once("} ").expect("labels and a value");
            assert_eq!(value, "1", "{l}");
            labels
                .split("\",")
                .map(|pair| {
                    let (name, value) = pair.split_once("=\"").expect("name=\"value\"");
                    (name.to_owned(), value.trim_end_matches('"').to_owned())
                })
                .collect()
        })
        .collect()
}

/// Issue 16: `replay` knows no tags: one info series per group, from what
/// its deployments say, every tag label empty, production by the flags.
#[test]
fn replay_shows_each_group_from_its_deployments() {
    let stream = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/streams/mixed.jsonl");
    let replay = |flags: &[&str]| -> String {
        let output = Command::new(BIN).arg("replay").args(flags).arg(stream).output().expect("runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("UTF-8 exposition")
    };
    let plain = replay(&[]);
    let groups: std::collections::BTreeSet<&str> = plain
        .lines()
        .filter_map(|l| l.strip_prefix("codedeploy_deployments_in_progress{"))
        .map(|l| l.split("} ").next().expect("labels"))
        .collect();
    let series = info_series(&plain);
    assert_eq!(series.len(), groups.len(), "one info series per group:\n{plain}");
    assert!(series.iter().all(|s| s["deployment_config"] == "unknown" && s["production"] == "true"), "{series:?}");
    let platforms: std::collections::BTreeSet<&str> = series.iter().map(|s| s["compute_platform"].as_str()).collect();
    assert!(platforms.contains("Server") && platforms.contains("ECS"), "the platform the deployments named: {platforms:?}");

    let tagged = info_series(&replay(&["--labels.from-tags", "Environment=environment,team"]));
    assert!(tagged.iter().all(|s| s["environment"].is_empty() && s["team"].is_empty()), "{tagged:?}");
    assert!(tagged.iter().all(|s| s["production"] == "false"), "no environment tag: not production");

    let scoped = info_series(&replay(&["--dora.production-groups", "checkout/.*"]));
    for s in &scoped {
        assert_eq!(s["production"] == "true", s["application"] == "checkout", "{s:?}");
    }
    assert!(scoped.iter().any(|s| s["production"] == "true") && scoped.iter().any(|s| s["production"] == "false"));
}

/// Issue 16: `demo`'s groups carry environment and team tags, so its info
/// series say which groups are production and who owns them.
#[test]
fn demo_groups_have_environments_teams_and_production() {
    let mut demo = Running::start(&["demo", "--web.listen-address", "127.0.0.1:0", "--demo.history-days", "2"]);
    let address = demo.address();
    let (status, body) = http_get(&address, "/metrics");
    assert_eq!(status, 200);
    let series = info_series(&body);
    assert!(series.len() >= 10, "{body}");
    for s in &series {
        assert!(!s["team"].is_empty() && s["deployment_config"].starts_with("CodeDeployDefault."), "{s:?}");
        let production = s["environment"] == "prod";
        assert_eq!(s["production"], production.to_string(), "{s:?}");
    }
    let environments: std::collections::BTreeSet<&str> = series.iter().map(|s| s["environment"].as_str()).collect();
    assert_eq!(environments, ["prod", "staging"].into());
    promtool::assert_promtool_clean(&body);
    let (status, _) = demo.stop();
    assert!(status.success(), "exit status {status}");
}
