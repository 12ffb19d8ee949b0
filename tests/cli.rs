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
    // The default store is ./data: run where it is a fresh directory, not in the checkout.
    let workdir = tempfile::tempdir().expect("a working directory");
    let mut child = Command::new(BIN)
        .args(["serve", "--web.listen-address", "127.0.0.1:0", "--log.level", "info"])
        .current_dir(workdir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    // Read by a thread of its own, so that every wait for a line has a deadline.
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let (sender, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let address = loop {
        let left = Duration::from_secs(60).saturating_sub(started.elapsed());
        let line = lines.recv_timeout(left).unwrap_or_else(|e| panic!("the server logged no address within 60 s ({e})"));
        if let Some(address) = line.split_whitespace().find_map(|word| word.strip_prefix("address=")) {
            break address.to_owned();
        }
    };
    let metrics = std::net::TcpStream::connect(&address).expect("listening");
    drop(metrics);

    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
    // The process has exited: the log ends, and the reader closes the channel.
    let rest: String = lines.iter().collect::<Vec<_>>().join("\n");
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
    let redelivered: Vec<String> = base.iter().step_by(3).cloned().collect();
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
