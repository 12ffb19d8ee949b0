//! The performance benchmark of issue 6 (see `docs/performance.md`).
//!
//! Run it through `scripts/bench`, which builds it in release mode and calls
//! `cargo bench --bench throughput -- PHASE …`. Phases:
//!
//! - `generate --groups N --days 30 --per-day 10 --seed 1 --out DIR [--ends-now]`: a
//!   synthetic fleet's history (from 2025-01-01, or ending now) as JSON Lines (`DIR/stream.jsonl`, time-ordered; EventBridge
//!   envelopes, SNS notifications around trigger messages, API outputs), and
//!   `DIR/stream.meta.json` with what it holds.
//! - `replay FILE [--runs 3]`: single-threaded ingest through `Exporter::ingest`
//!   exactly as `replay` does (`replay::replay_bytes`), against the parse-only
//!   limit (every line deserialized into the decoder's typed structs, no fold:
//!   `decode::parse_structs`) and a scan that builds nothing (`IgnoredAny`).
//! - `render FILE [--runs 5] [--mode live|replay]`: loads the whole file, then
//!   times `/metrics` (snapshot + streamed encoding: text, OpenMetrics, and text
//!   through gzip -1, by the server's own `Exposition::write_encoded`), body sizes,
//!   the series per group and per family, and resident memory after the scrapes.
//! - `memory FILE [--mode live|replay]`: resident memory before and after loading,
//!   per settled deployment. `live` (the default) feeds the stream as `serve`'s
//!   writer would (batches, settle after each, 2-minute settle time, clock = latest
//!   event time); `replay` folds everything, then settles once, as `replay` does.
//! - `restart FILE [--runs 3]`: loads live and commits everything to a `RedbStore`
//!   (in a child process), then times store open → load → restore → first render
//!   in fresh processes.
//! - `webhook FILE [--events 50000] [--connections 1,16,64,256]`: starts the real
//!   binary (`serve`, durable store) and POSTs the stream over N keep-alive
//!   connections: events/s and acknowledgement latency.
//! - `scrape-load FILE --store DIR [--seconds 20] [--scrapers 2] [--connections 64]`:
//!   the real binary over a copy of a store (`restart-build` of a stream
//!   generated with `--ends-now`); `/-/healthy` latency and webhook throughput,
//!   first with nothing scraping, then with `/metrics` scraped back to back.
//! - `profile-ingest FILE --lines N`, `profile-parse FILE --lines N`,
//!   `profile-decode FILE --lines N` and
//!   `profile-render --store DIR` (a store from `restart-build FILE --store DIR`),
//!   `profile-live FILE`: fixed workloads for `valgrind --tool=callgrind`.
//!
//! Without `--bench` (as under `cargo test --all-targets`) it does nothing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::DateTime;
use fastrand::Rng;
use serde_json::{json, Value};

use codedeploy_exporter::ingest::Exporter;
use codedeploy_exporter::metrics::{Encoding, Exposition, Format, Source};
use codedeploy_exporter::sources::replay;
use codedeploy_exporter::store::{RedbStore, Store};

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

fn main() {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    if !raw.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs harness-less benches without `--bench`.
        println!("throughput: run it through scripts/bench (cargo bench --bench throughput -- PHASE …)");
        return;
    }
    let args = Args::parse(raw.into_iter().filter(|a| a != "--bench").collect());
    let result = match args.positional.first().map(String::as_str) {
        Some("generate") => generate_phase(&args),
        Some("replay") => replay_phase(&args),
        Some("render") => render_phase(&args),
        Some("memory") => memory_phase(&args),
        Some("restart") => restart_phase(&args),
        Some("restart-build") => restart_build(&args),
        Some("restart-open") => restart_open(&args),
        Some("webhook") => webhook_phase(&args),
        Some("scrape-load") => scrape_load_phase(&args),
        Some("profile-ingest") => profile_ingest(&args),
        Some("profile-render") => profile_render(&args),
        Some("profile-parse") => profile_parse(&args),
        Some("profile-decode") => profile_decode(&args),
        Some("profile-live") => profile_live(&args),
        other => Err(format!(
            "unknown phase {}; one of generate, replay, render, memory, restart, webhook, scrape-load, \
             profile-ingest, profile-parse, profile-decode, profile-render, profile-live",
            other.unwrap_or("(none)")
        )
        .into()),
    };
    if let Err(error) = result {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

struct Args {
    positional: Vec<String>,
    flags: BTreeMap<String, String>,
}

impl Args {
    fn parse(raw: Vec<String>) -> Args {
        let mut positional = Vec::new();
        let mut flags = BTreeMap::new();
        let mut iter = raw.into_iter().peekable();
        while let Some(arg) = iter.next() {
            if let Some(name) = arg.strip_prefix("--") {
                if let Some((name, value)) = name.split_once('=') {
                    flags.insert(name.to_owned(), value.to_owned());
                } else if iter.peek().is_some_and(|next| !next.starts_with("--")) {
                    flags.insert(name.to_owned(), iter.next().unwrap_or_default());
                } else {
                    flags.insert(name.to_owned(), "true".to_owned());
                }
            } else {
                positional.push(arg);
            }
        }
        Args { positional, flags }
    }

    fn get<T: FromStr>(&self, name: &str, default: T) -> T {
        self.flags.get(name).and_then(|v| v.parse().ok()).unwrap_or(default)
    }

    fn file(&self) -> Res<PathBuf> {
        let path = self.positional.get(1).ok_or("missing FILE argument")?;
        Ok(PathBuf::from(path))
    }
}

// ---------------------------------------------------------------------------------------------
// Small measuring helpers
// ---------------------------------------------------------------------------------------------

/// VmRSS and VmHWM in KiB, from /proc/self/status.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Prints a table with aligned columns; the first row is the header.
fn table(title: &str, rows: &[Vec<String>]) {
    println!("\n== {title}");
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r.get(c).map_or(0, |s| s.chars().count())).max().unwrap_or(0))
        .collect();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c == 0 {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        println!("| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            println!("|-{}-|", rule.join("-|-"));
        }
    }
}

/// Reads `path` in chunks of about `chunk` bytes, each cut after a newline.
fn for_each_chunk(path: &Path, chunk: usize, mut f: impl FnMut(&[u8])) -> Res {
    let mut file = File::open(path)?;
    let mut buffer: Vec<u8> = Vec::with_capacity(chunk + 64 * 1024);
    loop {
        let start = buffer.len();
        buffer.resize(chunk.max(start + 64 * 1024), 0);
        let read = file.read(&mut buffer[start..])?;
        buffer.truncate(start + read);
        if read == 0 {
            if !buffer.is_empty() {
                f(&buffer);
            }
            return Ok(());
        }
        if buffer.len() < chunk {
            continue;
        }
        if let Some(cut) = buffer.iter().rposition(|b| *b == b'\n') {
            f(&buffer[..=cut]);
            buffer.drain(..=cut);
        }
    }
}

/// A lower bound for any JSON decoder: validate every line, build nothing.
#[inline(never)]
fn scan_only(bytes: &[u8]) -> usize {
    replay::lines(bytes)
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .filter(|line| serde_json::from_slice::<serde::de::IgnoredAny>(line).is_ok())
        .count()
}

/// Non-blank lines: what `replay` counts as messages.
fn count_lines(bytes: &[u8]) -> usize {
    replay::lines(bytes).filter(|l| !l.iter().all(u8::is_ascii_whitespace)).count()
}

/// The parse-only limit (issue 6: "serde_json into the same structs, no fold"):
/// every line deserialized into the typed structs the decoder reads, the SNS
/// `Message` and the JSON strings inside it included, with no observation built
/// and nothing folded.
#[inline(never)]
fn parse_only(bytes: &[u8]) -> usize {
    replay::lines(bytes)
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .filter(|line| codedeploy_exporter::decode::parse_structs(line))
        .count()
}

/// Parse and conversion without the fold: `decode::decode` of every line, the
/// observations dropped. Between parse-only and ingest, it splits the decoder's
/// cost from the ledger's.
#[inline(never)]
fn decode_only(bytes: &[u8]) -> usize {
    replay::lines(bytes)
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .filter(|line| std::hint::black_box(codedeploy_exporter::decode::decode(line)).is_ok())
        .count()
}

/// Loads a whole stream file as `replay` does (settling at the end), in chunks so
/// that the file itself is never in memory all at once.
struct Loaded {
    exporter: Exporter,
    mode: Mode,
    events: usize,
    rejected: usize,
    /// Time in `replay_bytes` (decode and fold).
    ingest: Duration,
    /// Time in `settle` (all the periodic ones in live mode).
    settle: Duration,
    settled: usize,
    rss_before_kib: u64,
    rss_loaded_kib: u64,
    rss_settled_kib: u64,
}

/// How a stream is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// As `replay`: everything folded first, then one `settle(now, true)`; so every
    /// deployment of the file is unsettled (in full) at once before it settles.
    Replay,
    /// As `serve` fed live: batches of [`BATCH`] messages, each followed by
    /// `settle(now, false)` with the default 2-minute settle time, the clock being
    /// the latest event time seen (the stream is time-ordered); and, unless the
    /// caller commits to a store, `mark_committed` as after the writer's commit.
    Live { commit: bool },
}

/// Chunks of whole lines fed to `replay_bytes` when a file is streamed; small, so that
/// the buffer does not inflate the peak resident memory being measured.
const CHUNK: usize = 4 << 20;
/// Messages per writer batch in live mode (the writer's `MAX_BATCH`).
const BATCH: usize = 1024;
/// `--ledger.settle-time` default.
const SETTLE_TIME_MS: i64 = 120_000;

fn load(path: &Path, mode: Mode) -> Res<Loaded> {
    let (rss_before_kib, _) = memory_kib();
    // As `replay` builds it, or as `serve` does (with a store reading its changes).
    let mut exporter = if mode == Mode::Replay { Exporter::in_memory(0) } else { Exporter::new(SETTLE_TIME_MS) };
    exporter.register(Source::Replay);
    let (mut events, mut rejected, mut ingest, mut settle) = (0, 0, Duration::ZERO, Duration::ZERO);
    let mut settled = 0;
    for_each_chunk(path, CHUNK, |bytes| match mode {
        Mode::Replay => {
            events += count_lines(bytes);
            let started = Instant::now();
            rejected += replay::replay_bytes(&mut exporter, path, bytes, Source::Replay, 0).len();
            ingest += started.elapsed();
        }
        Mode::Live { commit } => {
            let mut rest = bytes;
            while !rest.is_empty() {
                // The next BATCH lines.
                let mut end = 0;
                for _ in 0..BATCH {
                    match rest[end..].iter().position(|b| *b == b'\n') {
                        Some(at) => end += at + 1,
                        None => {
                            end = rest.len();
                            break;
                        }
                    }
                    if end == rest.len() {
                        break;
                    }
                }
                let (batch, tail) = rest.split_at(end);
                rest = tail;
                events += count_lines(batch);
                let now = exporter.latest_time().unwrap_or(0);
                let started = Instant::now();
                rejected += replay::replay_bytes(&mut exporter, path, batch, Source::Replay, now).len();
                ingest += started.elapsed();
                let started = Instant::now();
                settled += exporter.settle(now, false);
                settle += started.elapsed();
                if !commit {
                    exporter.mark_committed();
                }
            }
        }
    })?;
    let (rss_loaded_kib, _) = memory_kib();
    let started = Instant::now();
    settled += match mode {
        Mode::Replay => exporter.settle(0, true),
        // Ten minutes after the last event, as a server still running would be.
        Mode::Live { .. } => exporter.settle(exporter.latest_time().unwrap_or(0) + 10 * 60_000, false),
    };
    settle += started.elapsed();
    if mode != (Mode::Live { commit: true }) {
        // What `serve` holds after its commit: the sets of changes to write are emptied.
        exporter.mark_committed();
    }
    let (rss_settled_kib, _) = memory_kib();
    Ok(Loaded {
        exporter,
        mode,
        events,
        rejected,
        ingest,
        settle,
        settled,
        rss_before_kib,
        rss_loaded_kib,
        rss_settled_kib,
    })
}

fn mode_arg(args: &Args) -> Mode {
    match args.flags.get("mode").map(String::as_str) {
        Some("replay") => Mode::Replay,
        _ => Mode::Live { commit: false },
    }
}

// ---------------------------------------------------------------------------------------------
// generate: a synthetic fleet and its history
// ---------------------------------------------------------------------------------------------

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const DAY: i64 = 24 * 60 * MINUTE;
/// 2025-01-01T00:00:00Z: the synthetic history starts here.
const HISTORY_START: i64 = 1_735_689_600_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Platform {
    Server,
    Lambda,
    Ecs,
}

impl Platform {
    fn api_name(self) -> &'static str {
        match self {
            Platform::Server => "Server",
            Platform::Lambda => "Lambda",
            Platform::Ecs => "ECS",
        }
    }
}

/// How a group's deployments reach the exporter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Channel {
    /// EventBridge deployment state changes only (START, READY, terminal).
    EventBridge,
    /// An SNS trigger (CREATED, IN_PROGRESS, terminal) delivered as SNS notifications.
    Sns,
    /// EventBridge, plus the API views a poller saves once a deployment finishes
    /// (GetDeployment and BatchGetDeploymentTargets with lifecycle events).
    EventBridgeAndApi,
}

struct Group {
    account: String,
    region: &'static str,
    application: String,
    name: &'static str,
    platform: Platform,
    blue_green: bool,
    load_balancer: bool,
    config: &'static str,
    targets: usize,
    channel: Channel,
    creator: &'static str,
    autoscaling: bool,
    failure_rate: f64,
    auto_rollback: bool,
    hooks: Vec<&'static str>,
}

const APPLICATIONS: [&str; 16] = [
    "web-frontend",
    "checkout-service",
    "payments-api",
    "search-indexer",
    "notification-sender",
    "batch-worker",
    "inventory-service",
    "auth-gateway",
    "recommendations",
    "order-pipeline",
    "billing-reports",
    "catalog-api",
    "media-transcoder",
    "user-profile",
    "fraud-scoring",
    "shipping-tracker",
];
const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"];
const GROUP_NAMES: [&str; 3] = ["prod", "staging", "dev"];

const SERVER_INSTALL: [&str; 7] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];
const BLOCK_TRAFFIC: [&str; 3] = ["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];
const ALLOW_TRAFFIC: [&str; 3] = ["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];
const ECS_INSTALL: [&str; 5] =
    ["BeforeInstall", "Install", "AfterInstall", "AllowTestTraffic", "AfterAllowTestTraffic"];

fn fleet(groups: usize, seed: u64) -> Vec<Group> {
    let mut rng = Rng::with_seed(seed);
    let accounts: Vec<String> = (0..(groups / 20).max(1))
        .map(|_| format!("{:012}", rng.u64(100_000_000_000..1_000_000_000_000)))
        .collect();
    let mut out = Vec::with_capacity(groups);
    let mut app = None;
    for g in 0..groups {
        // Three groups (prod, staging, dev) per application share its platform and owner.
        if g % 3 == 0 {
            let index = g / 3;
            let platform = match rng.u32(0..4) {
                0 | 1 => Platform::Server,
                2 => Platform::Lambda,
                _ => Platform::Ecs,
            };
            let blue_green = platform != Platform::Server || rng.f64() < 0.3;
            let creator = match (platform, rng.u32(0..10)) {
                (Platform::Server, 0..=5) => "user",
                (Platform::Server, _) => "CodeDeploy",
                (_, 0..=5) => "CloudFormation",
                _ => "user",
            };
            app = Some((
                accounts[rng.usize(..accounts.len())].clone(),
                REGIONS[rng.usize(..REGIONS.len())],
                format!("{}-{:03}", APPLICATIONS[index % APPLICATIONS.len()], index / APPLICATIONS.len()),
                platform,
                blue_green,
                creator,
                platform == Platform::Server && !blue_green && rng.bool(),
            ));
        }
        let Some((account, region, application, platform, blue_green, creator, load_balancer)) = app.clone()
        else {
            continue;
        };
        let name = GROUP_NAMES[g % 3];
        let prod = name == "prod";
        let channel = match rng.f64() {
            r if r < 0.35 => Channel::EventBridge,
            r if r < 0.70 => Channel::Sns,
            _ => Channel::EventBridgeAndApi,
        };
        let failure_rate = if rng.f64() < 0.05 {
            0.25
        } else {
            match name {
                "prod" => 0.03,
                "staging" => 0.08,
                _ => 0.12,
            }
        };
        let hooks: Vec<&'static str> = match (platform, blue_green, load_balancer) {
            (Platform::Server, false, false) => SERVER_INSTALL.to_vec(),
            (Platform::Server, false, true) => {
                [&BLOCK_TRAFFIC[..], &SERVER_INSTALL[..], &ALLOW_TRAFFIC[..]].concat()
            }
            (Platform::Server, true, _) => [&SERVER_INSTALL[..], &ALLOW_TRAFFIC[..]].concat(),
            (Platform::Lambda, _, _) => ALLOW_TRAFFIC.to_vec(),
            (Platform::Ecs, _, _) => [&ECS_INSTALL[..], &ALLOW_TRAFFIC[..]].concat(),
        };
        let config = match platform {
            Platform::Server if prod => "CodeDeployDefault.HalfAtATime",
            Platform::Server => "CodeDeployDefault.AllAtOnce",
            Platform::Lambda if prod => "CodeDeployDefault.LambdaCanary10Percent5Minutes",
            Platform::Lambda => "CodeDeployDefault.LambdaAllAtOnce",
            Platform::Ecs if prod => "CodeDeployDefault.ECSCanary10Percent5Minutes",
            Platform::Ecs => "CodeDeployDefault.ECSAllAtOnce",
        };
        out.push(Group {
            account,
            region,
            application,
            name,
            platform,
            blue_green,
            load_balancer,
            config,
            targets: match platform {
                Platform::Server if prod => rng.usize(2..=4),
                Platform::Server => rng.usize(1..=2),
                _ => 1,
            },
            channel,
            creator,
            autoscaling: platform == Platform::Server && prod && rng.bool(),
            failure_rate,
            auto_rollback: rng.f64() < if prod { 0.8 } else { 0.3 },
            hooks,
        });
    }
    out
}

/// How long a hook usually runs, in seconds.
fn hook_seconds(group: &Group, hook: &str) -> (i64, i64) {
    match (group.platform, hook) {
        (Platform::Server, "AllowTraffic") => (30, 120),
        (Platform::Server, "BlockTraffic") => (30, 300),
        (Platform::Server, "BeforeInstall") => (5, 90),
        (Platform::Server, "AfterInstall") => (3, 45),
        (Platform::Server, "ApplicationStart") => (2, 30),
        (Platform::Server, "ValidateService") => (5, 60),
        (Platform::Server, "DownloadBundle") => (1, 20),
        (_, "AllowTraffic") if group.config.contains("Canary") => (300, 320),
        (_, "AllowTraffic") => (2, 15),
        (Platform::Ecs, "Install") => (60, 240),
        (Platform::Ecs, "AfterAllowTestTraffic") => (20, 120),
        (Platform::Lambda, "BeforeAllowTraffic" | "AfterAllowTraffic") => (5, 60),
        _ => (1, 10),
    }
}

struct PlannedHook {
    name: &'static str,
    run: Option<(i64, i64)>,
    error: Option<&'static str>,
}

struct PlannedTarget {
    id: String,
    hooks: Vec<PlannedHook>,
}

impl PlannedTarget {
    fn status(&self) -> &'static str {
        if self.hooks.iter().any(|h| h.error.is_some()) {
            "Failed"
        } else if self.hooks.iter().all(|h| h.run.is_some()) {
            "Succeeded"
        } else {
            "Skipped"
        }
    }

    fn last_end(&self) -> Option<i64> {
        self.hooks.iter().rev().find_map(|h| h.run.map(|(_, end)| end))
    }
}

struct Planned {
    group: usize,
    id: String,
    creator: &'static str,
    create: i64,
    start: i64,
    ready: Option<i64>,
    complete: i64,
    status: &'static str,
    error: Option<(&'static str, &'static str)>,
    rollback_of: Option<String>,
    rolled_back_by: Option<String>,
    targets: Vec<PlannedTarget>,
    instance_group_id: String,
}

/// Per-group generator state, carried from day to day.
struct GroupState {
    rng: Rng,
    /// A rollback planned by the last failure: its id and the deployment it undoes.
    pending_rollback: Option<(String, String)>,
}

/// Deployment ids: `d-` and nine base-36 characters, unique (a bijection of a counter).
fn deployment_id(counter: u64) -> String {
    const MODULUS: u64 = 101_559_956_668_416; // 36^9
    let mut x = counter.wrapping_mul(1_000_000_007) % MODULUS;
    let mut chars = [b'0'; 9];
    for slot in chars.iter_mut().rev() {
        *slot = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[(x % 36) as usize];
        x /= 36;
    }
    format!("d-{}", String::from_utf8_lossy(&chars))
}

fn uuid(rng: &mut Rng) -> String {
    let hex = |rng: &mut Rng, n: usize| -> String {
        (0..n).map(|_| char::from_digit(rng.u32(0..16), 16).unwrap_or('0')).collect()
    };
    format!("{}-{}-{}-{}-{}", hex(rng, 8), hex(rng, 4), hex(rng, 4), hex(rng, 4), hex(rng, 12))
}

struct Generator {
    groups: Vec<Group>,
    states: Vec<GroupState>,
    counter: u64,
    /// When the history's first day starts.
    start: i64,
}

impl Generator {
    fn new(groups: usize, seed: u64, start: i64) -> Generator {
        let groups = fleet(groups, seed);
        let states = (0..groups.len())
            .map(|g| GroupState {
                rng: Rng::with_seed(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (g as u64 + 1)),
                pending_rollback: None,
            })
            .collect();
        Generator { groups, states, counter: 0, start }
    }

    fn next_id(&mut self) -> String {
        self.counter += 1;
        deployment_id(self.counter)
    }

    /// The deployments of group `g` on day `day` (0-based), `per_day` slots.
    fn plan_day(&mut self, g: usize, day: i64, per_day: usize) -> Vec<Planned> {
        let slot = DAY / per_day as i64;
        let day_start = self.start + day * DAY;
        let mut planned: Vec<Planned> = Vec::with_capacity(per_day + 1);
        let mut not_before = day_start;
        for i in 0..per_day {
            let slot_start = day_start + i as i64 * slot;
            let offset = self.states[g].rng.i64(0..slot / 2);
            let create = (slot_start + offset).max(not_before);
            let rollback = self.states[g].pending_rollback.take();
            let deployment = match rollback {
                // A rollback replaces the slot's change: CodeDeploy starts it right after the failure.
                Some((id, of)) => {
                    let create = not_before.max(create.min(not_before + 30 * SECOND));
                    let succeed = self.states[g].rng.f64() < 0.9;
                    self.plan_one(g, id, "codeDeployRollback", create, Some(of), if succeed { 0 } else { 1 })
                }
                None => {
                    let group = &self.groups[g];
                    let rng = &mut self.states[g].rng;
                    let creator =
                        if group.autoscaling && rng.f64() < 0.1 { "autoscaling" } else { group.creator };
                    let r = rng.f64();
                    let outcome = if r < group.failure_rate {
                        1
                    } else if r < group.failure_rate + 0.02 {
                        2
                    } else {
                        0
                    };
                    let id = self.next_id();
                    self.plan_one(g, id, creator, create, None, outcome)
                }
            };
            not_before = deployment.complete + 5 * SECOND;
            let rolls_back = self.groups[g].auto_rollback
                && deployment.rollback_of.is_none()
                && deployment.creator != "autoscaling"
                && (deployment.status == "Failed" || deployment.error.is_some_and(|(c, _)| c == "ALARM_ACTIVE"));
            planned.push(deployment);
            if rolls_back {
                let id = self.next_id();
                let last = planned.last_mut().expect("just pushed");
                last.rolled_back_by = Some(id.clone());
                self.states[g].pending_rollback = Some((id, last.id.clone()));
            }
        }
        planned
    }

    /// One deployment; `outcome`: 0 succeeds, 1 fails at a hook, 2 is stopped.
    fn plan_one(
        &mut self,
        g: usize,
        id: String,
        creator: &'static str,
        create: i64,
        rollback_of: Option<String>,
        outcome: u8,
    ) -> Planned {
        let group = &self.groups[g];
        let rng = &mut self.states[g].rng;
        let start = create + rng.i64(SECOND..5 * SECOND);
        let hooks = &group.hooks;
        let strike = rng.usize(..hooks.len());
        let alarm = outcome == 2 && rng.bool();
        let mut targets = Vec::with_capacity(group.targets);
        for t in 0..group.targets {
            let target_id = match group.platform {
                Platform::Server => format!("i-0{:016x}", rng.u64(..)),
                Platform::Lambda => group.application.clone(),
                Platform::Ecs => format!("{}:{}", group.name, group.application),
            };
            let mut at = start + rng.i64(SECOND..3 * SECOND);
            let mut planned_hooks = Vec::with_capacity(hooks.len());
            for (h, name) in hooks.iter().enumerate() {
                let cut_here = (outcome == 1 && t == 0 && h == strike) || (outcome == 2 && h >= strike);
                let after_failure = outcome == 1 && t == 0 && h > strike;
                if outcome == 2 && cut_here || after_failure {
                    planned_hooks.push(PlannedHook { name, run: None, error: None });
                    continue;
                }
                let (low, high) = hook_seconds(group, name);
                let seconds = rng.i64(low..=high);
                let run = (at, at + seconds * SECOND + rng.i64(0..SECOND));
                at = run.1 + rng.i64(0..SECOND);
                let error = (outcome == 1 && cut_here).then(|| match group.platform {
                    Platform::Server if rng.f64() < 0.2 => "ScriptTimedOut",
                    Platform::Server => "ScriptFailed",
                    _ if rng.f64() < 0.3 => "UnknownError",
                    _ => "ScriptFailed",
                });
                planned_hooks.push(PlannedHook { name, run: Some(run), error });
            }
            targets.push(PlannedTarget { id: target_id, hooks: planned_hooks });
        }
        let last = targets.iter().filter_map(PlannedTarget::last_end).max().unwrap_or(start);
        let complete = last + rng.i64(SECOND..6 * SECOND) + if outcome == 2 { rng.i64(5..60) * SECOND } else { 0 };
        let ready = (group.blue_green && group.platform != Platform::Lambda)
            .then(|| {
                targets.first().and_then(|t| {
                    t.hooks.iter().find(|h| h.name == "AllowTraffic").and_then(|h| h.run.map(|(s, _)| s))
                })
            })
            .flatten();
        let (status, error) = match outcome {
            0 => ("Succeeded", None),
            1 => (
                "Failed",
                Some(match group.platform {
                    Platform::Server => (
                        "HEALTH_CONSTRAINTS",
                        "Too many instances failed the deployment to keep the minimum number of healthy hosts.",
                    ),
                    Platform::Lambda => ("HOOK_EXECUTION_FAILURE", "A lifecycle hook reported a failure."),
                    Platform::Ecs => ("ECS_UPDATE_ERROR", "The replacement task set did not become healthy."),
                }),
            ),
            _ if alarm => ("Stopped", Some(("ALARM_ACTIVE", "Stopped because a CloudWatch alarm went into ALARM."))),
            _ => ("Stopped", Some(("MANUAL_STOP", "The deployment was stopped by a user."))),
        };
        Planned {
            group: g,
            id,
            creator,
            create,
            start,
            ready,
            complete,
            status,
            error,
            rollback_of,
            rolled_back_by: None,
            targets,
            instance_group_id: uuid(rng),
        }
    }

    /// Every message of a deployment, with the time it is delivered and its format.
    fn render(&mut self, d: &Planned) -> Vec<(i64, &'static str, String)> {
        let group = &self.groups[d.group];
        let rng = &mut self.states[d.group].rng;
        let mut out = Vec::with_capacity(5);
        match group.channel {
            Channel::EventBridge | Channel::EventBridgeAndApi => {
                out.push((d.start, "eventbridge", eventbridge(rng, group, d, "START", d.start)));
                if let Some(ready) = d.ready {
                    out.push((ready, "eventbridge", eventbridge(rng, group, d, "READY", ready)));
                }
                let state = match d.status {
                    "Succeeded" => "SUCCESS",
                    "Failed" => "FAILURE",
                    _ => "STOP",
                };
                out.push((d.complete, "eventbridge", eventbridge(rng, group, d, state, d.complete)));
                if group.channel == Channel::EventBridgeAndApi {
                    let polled = d.complete + rng.i64(30 * SECOND..90 * SECOND);
                    out.push((polled, "api", get_deployment(group, d)));
                    out.push((polled + rng.i64(0..SECOND), "api", deployment_targets(group, d)));
                }
            }
            Channel::Sns => {
                out.push((d.create, "sns", sns(rng, group, d, "CREATED", d.create)));
                out.push((d.start, "sns", sns(rng, group, d, "IN_PROGRESS", d.start)));
                let status = match d.status {
                    "Succeeded" => "SUCCEEDED",
                    "Failed" => "FAILED",
                    _ => "STOPPED",
                };
                out.push((d.complete, "sns", sns(rng, group, d, status, d.complete)));
            }
        }
        // At-least-once delivery: about 1 % of messages arrive twice.
        let mut duplicates = Vec::new();
        for (at, format, body) in &out {
            if rng.f64() < 0.01 {
                duplicates.push((*at + rng.i64(SECOND..30 * SECOND), *format, body.clone()));
            }
        }
        out.extend(duplicates);
        out
    }
}

fn rfc3339_seconds(at: i64) -> String {
    DateTime::from_timestamp_millis(at).unwrap_or_default().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn rfc3339_millis(at: i64) -> String {
    DateTime::from_timestamp_millis(at).unwrap_or_default().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn java_date(at: i64) -> String {
    DateTime::from_timestamp_millis(at).unwrap_or_default().format("%a %b %d %H:%M:%S UTC %Y").to_string()
}

fn epoch_seconds(at: i64) -> Value {
    json!(at as f64 / 1000.0)
}

fn overview(d: &Planned) -> (u64, u64, u64) {
    let count = |status| d.targets.iter().filter(|t| t.status() == status).count() as u64;
    (count("Succeeded"), count("Failed"), count("Skipped"))
}

fn eventbridge(rng: &mut Rng, g: &Group, d: &Planned, state: &str, at: i64) -> String {
    json!({
        "version": "0",
        "id": uuid(rng),
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "account": g.account,
        "time": rfc3339_seconds(at),
        "region": g.region,
        "resources": [
            format!("arn:aws:codedeploy:{}:{}:application:{}", g.region, g.account, g.application),
            format!("arn:aws:codedeploy:{}:{}:deploymentgroup:{}/{}", g.region, g.account, g.application, g.name),
        ],
        "detail": {
            "instanceGroupId": d.instance_group_id,
            "region": g.region,
            "application": g.application,
            "deploymentId": d.id,
            "state": state,
            "deploymentGroup": g.name,
        },
    })
    .to_string()
}

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sns(rng: &mut Rng, g: &Group, d: &Planned, status: &str, at: i64) -> String {
    let finished = matches!(status, "SUCCEEDED" | "FAILED" | "STOPPED");
    let mut trigger = json!({
        "region": g.region,
        "accountId": g.account,
        "eventTriggerName": format!("{}-{}-deployments", g.application, g.name),
        "applicationName": g.application,
        "deploymentId": d.id,
        "deploymentGroupName": g.name,
        "createTime": java_date(d.create),
        "completeTime": if finished { Value::String(java_date(d.complete)) } else { Value::Null },
        "status": status,
    });
    if finished {
        let (succeeded, failed, skipped) = overview(d);
        let counts = json!({"Succeeded": succeeded, "Failed": failed, "Skipped": skipped, "InProgress": 0, "Pending": 0});
        trigger["deploymentOverview"] = Value::String(counts.to_string());
        if let Some((code, message)) = d.error {
            trigger["errorInformation"] = Value::String(json!({"ErrorCode": code, "ErrorMessage": message}).to_string());
        }
    }
    if let Some(of) = &d.rollback_of {
        let information = json!({
            "RollbackMessage": format!("Deployment {} was created to roll back deployment {of}.", d.id),
            "RollbackTriggeringDeploymentId": of,
        });
        trigger["rollbackInformation"] = Value::String(information.to_string());
    } else if finished && d.status != "Succeeded" {
        trigger["rollbackInformation"] = Value::String("{}".to_owned());
    }
    let topic = format!("arn:aws:sns:{}:{}:codedeploy-{}", g.region, g.account, g.application);
    let host = format!("https://sns.{}.amazonaws.com", g.region);
    let signature: String =
        (0..342).map(|_| BASE64[rng.usize(..BASE64.len())] as char).chain("==".chars()).collect();
    json!({
        "Type": "Notification",
        "MessageId": uuid(rng),
        "TopicArn": topic,
        "Subject": format!("{status}: AWS CodeDeploy {} in {} to {}", d.id, g.region, g.application),
        "Message": trigger.to_string(),
        "Timestamp": rfc3339_millis(at),
        "SignatureVersion": "1",
        "Signature": signature,
        "SigningCertURL": format!("{host}/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"),
        "UnsubscribeURL": format!("{host}/?Action=Unsubscribe&SubscriptionArn={topic}:{}", uuid(rng)),
    })
    .to_string()
}

fn get_deployment(g: &Group, d: &Planned) -> String {
    let (succeeded, failed, skipped) = overview(d);
    let mut info = json!({
        "applicationName": g.application,
        "deploymentGroupName": g.name,
        "deploymentConfigName": g.config,
        "deploymentId": d.id,
        "revision": {
            "revisionType": "S3",
            "s3Location": {
                "bucket": format!("{}-artifacts-{}", g.application, g.account),
                "key": format!("{}/build-{}.zip", g.application, d.create / 1000 % 100_000),
                "bundleType": "zip",
            },
        },
        "status": d.status,
        "createTime": epoch_seconds(d.create),
        "startTime": epoch_seconds(d.start),
        "completeTime": epoch_seconds(d.complete),
        "deploymentOverview": {
            "Pending": 0, "InProgress": 0, "Succeeded": succeeded, "Failed": failed, "Skipped": skipped, "Ready": 0,
        },
        "creator": d.creator,
        "ignoreApplicationStopFailures": false,
        "autoRollbackConfiguration": { "enabled": g.auto_rollback, "events": ["DEPLOYMENT_FAILURE"] },
        "updateOutdatedInstancesOnly": false,
        "deploymentStyle": {
            "deploymentType": if g.blue_green { "BLUE_GREEN" } else { "IN_PLACE" },
            "deploymentOption": if g.blue_green || g.load_balancer { "WITH_TRAFFIC_CONTROL" } else { "WITHOUT_TRAFFIC_CONTROL" },
        },
        "instanceTerminationWaitTimeStarted": false,
        "deploymentStatusMessages": [],
        "computePlatform": g.platform.api_name(),
    });
    if let Some((code, message)) = d.error {
        info["errorInformation"] = json!({"code": code, "message": message});
    }
    if let Some(of) = &d.rollback_of {
        info["rollbackInfo"] = json!({
            "rollbackTriggeringDeploymentId": of,
            "rollbackMessage": format!("Deployment {} was created to roll back deployment {of}.", d.id),
        });
    } else if let Some(by) = &d.rolled_back_by {
        info["rollbackInfo"] = json!({
            "rollbackDeploymentId": by,
            "rollbackMessage": format!("Deployment {by} was created to roll back deployment {}.", d.id),
        });
    }
    json!({ "deploymentInfo": info }).to_string()
}

fn deployment_targets(g: &Group, d: &Planned) -> String {
    let targets: Vec<Value> = d
        .targets
        .iter()
        .map(|t| {
            let events: Vec<Value> = t
                .hooks
                .iter()
                .map(|h| match (h.run, h.error) {
                    (None, _) => json!({"lifecycleEventName": h.name, "status": "Skipped"}),
                    (Some((start, end)), error) => json!({
                        "lifecycleEventName": h.name,
                        "status": if error.is_some() { "Failed" } else { "Succeeded" },
                        "startTime": epoch_seconds(start),
                        "endTime": epoch_seconds(end),
                        "diagnostics": match error {
                            None => json!({"errorCode": "Success", "scriptName": "", "message": "Succeeded", "logTail": ""}),
                            Some(code) => json!({
                                "errorCode": code,
                                "scriptName": "scripts/validate_service.sh",
                                "message": "Script at specified location: scripts/validate_service.sh run as user root failed with exit code 1",
                                "logTail": "[stderr]curl: (7) Failed to connect to localhost port 8080: Connection refused",
                            }),
                        },
                    }),
                })
                .collect();
            let (kind, key, arn) = match g.platform {
                Platform::Server => (
                    "InstanceTarget",
                    "instanceTarget",
                    format!("arn:aws:ec2:{}:{}:instance/{}", g.region, g.account, t.id),
                ),
                Platform::Lambda => (
                    "LambdaTarget",
                    "lambdaTarget",
                    format!("arn:aws:lambda:{}:{}:function:{}:live", g.region, g.account, t.id),
                ),
                Platform::Ecs => (
                    "ECSTarget",
                    "ecsTarget",
                    format!("arn:aws:ecs:{}:{}:service/{}", g.region, g.account, t.id.replace(':', "/")),
                ),
            };
            json!({
                "deploymentTargetType": kind,
                key: {
                    "deploymentId": d.id,
                    "targetId": t.id,
                    "targetArn": arn,
                    "status": t.status(),
                    "lastUpdatedAt": epoch_seconds(t.last_end().unwrap_or(d.complete)),
                    "lifecycleEvents": events,
                },
            })
        })
        .collect();
    json!({ "deploymentTargets": targets }).to_string()
}

fn generate_phase(args: &Args) -> Res {
    let groups: usize = args.get("groups", 1000);
    let days: i64 = args.get("days", 30);
    let per_day: usize = args.get("per-day", 10);
    let seed: u64 = args.get("seed", 1);
    let out_dir = PathBuf::from(args.flags.get("out").ok_or("--out DIR is required")?);
    // `--ends-now`: the history ends today, for the real binary (`scrape-load`),
    // whose windows and retention follow the wall clock.
    let start = if args.flags.contains_key("ends-now") {
        codedeploy_exporter::ingest::now_ms() - days * DAY
    } else {
        HISTORY_START
    };
    std::fs::create_dir_all(&out_dir)?;
    let path = out_dir.join("stream.jsonl");
    let started = Instant::now();
    let mut writer = BufWriter::with_capacity(8 << 20, File::create(&path)?);
    let mut generator = Generator::new(groups, seed, start);
    let mut pending: Vec<(i64, u64, &'static str, String)> = Vec::new();
    let mut sequence = 0u64;
    let mut by_format: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
    let (mut deployments, mut rollbacks) = (0u64, 0u64);
    let mut write = |batch: Vec<(i64, u64, &'static str, String)>,
                     by_format: &mut BTreeMap<&'static str, (u64, u64)>|
     -> std::io::Result<()> {
        for (_, _, format, body) in batch {
            let entry = by_format.entry(format).or_default();
            entry.0 += 1;
            entry.1 += body.len() as u64 + 1;
            writer.write_all(body.as_bytes())?;
            writer.write_all(b"\n")?;
        }
        Ok(())
    };
    for day in 0..days {
        for g in 0..generator.groups.len() {
            for d in generator.plan_day(g, day, per_day) {
                deployments += 1;
                rollbacks += u64::from(d.rollback_of.is_some());
                *by_status.entry(d.status.to_owned()).or_default() += 1;
                for (at, format, body) in generator.render(&d) {
                    sequence += 1;
                    pending.push((at, sequence, format, body));
                }
            }
        }
        pending.sort_by_key(|(at, seq, _, _)| (*at, *seq));
        let day_end = start + (day + 1) * DAY;
        let keep = pending.partition_point(|(at, ..)| *at < day_end);
        let rest = pending.split_off(keep);
        write(std::mem::replace(&mut pending, rest), &mut by_format)?;
    }
    write(std::mem::take(&mut pending), &mut by_format)?;
    writer.flush()?;
    let messages: u64 = by_format.values().map(|(n, _)| n).sum();
    let bytes: u64 = by_format.values().map(|(_, b)| b).sum();
    let meta = json!({
        "groups": groups, "days": days, "per_day": per_day, "seed": seed,
        "deployments": deployments, "rollbacks": rollbacks, "messages": messages, "bytes": bytes,
        "by_status": by_status,
        "by_format": by_format.iter().map(|(f, (n, b))| (f.to_string(), json!({"messages": n, "bytes": b}))).collect::<BTreeMap<_, _>>(),
        "first_time": rfc3339_seconds(start), "last_day_end": rfc3339_seconds(start + days * DAY),
    });
    std::fs::write(out_dir.join("stream.meta.json"), serde_json::to_string_pretty(&meta)?)?;
    let mut rows = vec![vec!["format".into(), "messages".into(), "MiB".into(), "avg bytes".into()]];
    for (format, (n, b)) in &by_format {
        rows.push(vec![
            format.to_string(),
            thousands(*n as f64),
            format!("{:.0}", *b as f64 / 1048576.0),
            format!("{:.0}", *b as f64 / *n as f64),
        ]);
    }
    rows.push(vec![
        "total".into(),
        thousands(messages as f64),
        format!("{:.0}", bytes as f64 / 1048576.0),
        format!("{:.0}", bytes as f64 / messages as f64),
    ]);
    table(&format!("generate: {groups} groups × {days} days × {per_day}/day → {}", path.display()), &rows);
    let status_line: Vec<String> = by_status.iter().map(|(s, n)| format!("{s} {n}")).collect();
    println!(
        "deployments {} ({}; rollbacks {}), {:.2} messages per deployment, in {:.1} s",
        thousands(deployments as f64),
        status_line.join(", "),
        rollbacks,
        messages as f64 / deployments as f64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// replay: ingest throughput against the parse-only limit
// ---------------------------------------------------------------------------------------------

fn replay_phase(args: &Args) -> Res {
    let path = args.file()?;
    let runs: usize = args.get("runs", 3);
    let in_memory_limit: u64 = args.get("in-memory-mib", 4096u64) << 20;
    let size = std::fs::metadata(&path)?.len();
    // As `replay` does: the whole file in memory, then `replay_bytes`. Files too big
    // for that are fed in 4 MiB chunks of whole lines (reading is not timed).
    let whole = (size <= in_memory_limit).then(|| std::fs::read(&path)).transpose()?;
    let events = match &whole {
        Some(bytes) => count_lines(bytes),
        None => {
            let mut n = 0;
            for_each_chunk(&path, CHUNK, |b| n += count_lines(b))?;
            n
        }
    };
    let each = |f: &mut dyn FnMut(&[u8])| -> Res {
        match &whole {
            Some(bytes) => {
                f(bytes.as_slice());
                Ok(())
            }
            None => for_each_chunk(&path, CHUNK, |b| f(b)),
        }
    };
    let (mut parse_rates, mut ingest_rates, mut settle_ms, mut drop_ms) = (vec![], vec![], vec![], vec![]);
    let (mut scan_rates, mut decode_rates) = (vec![], vec![]);
    let mut rejected = 0;
    let mut settled = 0;
    // Lines handled per second of `count`, which returns how many it handled.
    let rate = |count: fn(&[u8]) -> usize| -> Res<f64> {
        let (mut elapsed, mut handled) = (Duration::ZERO, 0);
        each(&mut |bytes| {
            let started = Instant::now();
            handled += count(bytes);
            elapsed += started.elapsed();
        })?;
        Ok(handled as f64 / elapsed.as_secs_f64())
    };
    for run in 0..runs {
        parse_rates.push(rate(parse_only)?);
        scan_rates.push(rate(scan_only)?);
        decode_rates.push(rate(decode_only)?);

        let mut exporter = Exporter::in_memory(0);
        exporter.register(Source::Replay);
        let mut elapsed = Duration::ZERO;
        rejected = 0;
        each(&mut |bytes| {
            let started = Instant::now();
            rejected += replay::replay_bytes(&mut exporter, &path, bytes, Source::Replay, 0).len();
            elapsed += started.elapsed();
        })?;
        ingest_rates.push(events as f64 / elapsed.as_secs_f64());
        let started = Instant::now();
        settled = exporter.settle(0, true);
        settle_ms.push(ms(started.elapsed()));
        let started = Instant::now();
        drop(exporter);
        drop_ms.push(ms(started.elapsed()));
        eprintln!(
            "run {}: parse-only {:.0} ev/s, decode-only {:.0} ev/s, ingest {:.0} ev/s",
            run + 1,
            parse_rates[run],
            decode_rates[run],
            ingest_rates[run]
        );
    }
    let (parse, ingest) = (median(&mut parse_rates), median(&mut ingest_rates));
    let rows = vec![
        vec!["measure".into(), "median".into(), "runs".into()],
        vec![
            "events (lines)".into(),
            thousands(events as f64),
            format!("{:.0} MiB", size as f64 / 1048576.0),
        ],
        vec!["parse-only (the decoder's typed structs, no fold), events/s".into(), thousands(parse), runs.to_string()],
        vec!["ingest (Exporter::ingest via replay_bytes), events/s".into(), thousands(ingest), runs.to_string()],
        vec!["ingest / parse-only".into(), format!("{:.3}", ingest / parse), String::new()],
        vec![
            "decode-only (decode::decode, no fold), events/s".into(),
            thousands(median(&mut decode_rates)),
            runs.to_string(),
        ],
        vec![
            "scan-only (serde::de::IgnoredAny, builds nothing), events/s".into(),
            thousands(median(&mut scan_rates)),
            runs.to_string(),
        ],
        vec!["settle(force) at the end, ms".into(), format!("{:.0}", median(&mut settle_ms)), format!("{settled} settled")],
        vec!["drop of the exporter, ms".into(), format!("{:.0}", median(&mut drop_ms)), String::new()],
        vec!["rejected lines".into(), rejected.to_string(), String::new()],
    ];
    table(&format!("replay {}", path.display()), &rows);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// render, memory
// ---------------------------------------------------------------------------------------------

/// A sink that only counts: the body streamed the way `/metrics` streams it,
/// without ever being held.
#[derive(Default)]
struct Counted(usize);

impl Write for Counted {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Streams the exposition as the server does; returns (bytes, time).
fn stream(exposition: &Exposition, format: Format, encoding: Encoding) -> (usize, Duration) {
    let started = Instant::now();
    let mut sink = Counted::default();
    // Writing into a counter cannot fail.
    let _ = exposition.write_encoded(format, encoding, &mut sink);
    (sink.0, started.elapsed())
}

fn memory_rows(loaded: &Loaded) -> Vec<Vec<String>> {
    let (rss, hwm) = memory_kib();
    let retained = loaded.rss_settled_kib.saturating_sub(loaded.rss_before_kib);
    vec![
        vec!["measure".into(), "value".into()],
        vec!["load mode".into(), format!("{:?}", loaded.mode)],
        vec!["events ingested".into(), thousands(loaded.events as f64)],
        vec!["deployments settled".into(), thousands(loaded.settled as f64)],
        vec!["rejected".into(), loaded.rejected.to_string()],
        vec!["ingest (single thread), s".into(), format!("{:.2}", loaded.ingest.as_secs_f64())],
        vec!["ingest, events/s".into(), thousands(loaded.events as f64 / loaded.ingest.as_secs_f64())],
        vec!["settle (all calls), s".into(), format!("{:.2}", loaded.settle.as_secs_f64())],
        vec!["VmRSS before loading, MiB".into(), format!("{:.1}", mib(loaded.rss_before_kib))],
        vec!["VmRSS after the last message, MiB".into(), format!("{:.1}", mib(loaded.rss_loaded_kib))],
        vec!["VmRSS after the final settle, MiB".into(), format!("{:.1}", mib(loaded.rss_settled_kib))],
        vec!["VmRSS now, MiB".into(), format!("{:.1}", mib(rss))],
        vec!["VmHWM (peak), MiB".into(), format!("{:.1}", mib(hwm))],
        vec![
            "retained per settled deployment, bytes".into(),
            format!("{:.0}", retained as f64 * 1024.0 / loaded.settled.max(1) as f64),
        ],
    ]
}

fn memory_phase(args: &Args) -> Res {
    let path = args.file()?;
    let loaded = load(&path, mode_arg(args))?;
    table(&format!("memory {}", path.display()), &memory_rows(&loaded));
    // The ledger stays alive until here; exit without the (slow) drop.
    std::process::exit(0);
}

/// One label set parsed from a sample line.
fn labels_of(line: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let Some(open) = line.find('{') else { return labels };
    let bytes = line.as_bytes();
    let mut i = open + 1;
    while i < bytes.len() && bytes[i] != b'}' {
        let Some(eq) = line[i..].find("=\"").map(|p| p + i) else { break };
        let name = line[i..eq].trim_start_matches(',').to_owned();
        let mut j = eq + 2;
        let mut value = String::new();
        while j < bytes.len() && bytes[j] != b'"' {
            if bytes[j] == b'\\' && j + 1 < bytes.len() {
                j += 1;
            }
            value.push(bytes[j] as char);
            j += 1;
        }
        labels.insert(name, value);
        i = j + 1;
        if i < bytes.len() && bytes[i] == b',' {
            i += 1;
        }
    }
    labels
}

/// Series per family, per group (average and maximum) from a text exposition.
/// Also returns (hooks, series) of a group with the most distinct lifecycle hooks.
fn series_table(body: &str) -> (Vec<Vec<String>>, f64, usize, usize, (usize, usize)) {
    let mut families: Vec<(String, String)> = Vec::new();
    // family → (series, series with a group, per-group counts)
    let mut counts: BTreeMap<String, (usize, usize, BTreeMap<String, usize>)> = BTreeMap::new();
    let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
    let mut hooks: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                families.push((name.to_owned(), kind.to_owned()));
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name = line.split(['{', ' ']).next().unwrap_or_default();
        let family = families
            .iter()
            .filter(|(f, _)| name.starts_with(f.as_str()))
            .max_by_key(|(f, _)| f.len())
            .map(|(f, k)| format!("{f} ({k})"))
            .unwrap_or_else(|| name.to_owned());
        let labels = labels_of(line);
        let entry = counts.entry(family).or_default();
        entry.0 += 1;
        if let Some(group) = labels.get("deployment_group") {
            let key = format!(
                "{}/{}/{}/{}",
                labels.get("account_id").map_or("", String::as_str),
                labels.get("region").map_or("", String::as_str),
                labels.get("application").map_or("", String::as_str),
                group
            );
            entry.1 += 1;
            if let Some(hook) = labels.get("lifecycle_event") {
                hooks.entry(key.clone()).or_default().insert(hook.clone());
            }
            *entry.2.entry(key.clone()).or_default() += 1;
            *per_group.entry(key).or_default() += 1;
        }
    }
    let groups = per_group.len().max(1);
    let mut rows = vec![vec![
        "family (type)".into(),
        "series".into(),
        "per group avg".into(),
        "per group max".into(),
    ]];
    let mut ordered: Vec<_> = counts.into_iter().collect();
    ordered.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    let mut global = 0;
    for (family, (series, grouped, by_group)) in &ordered {
        global += series - grouped;
        rows.push(vec![
            family.clone(),
            thousands(*series as f64),
            format!("{:.1}", *grouped as f64 / groups as f64),
            by_group.values().max().copied().unwrap_or(0).to_string(),
        ]);
    }
    let total_grouped: usize = per_group.values().sum();
    let max = per_group.values().max().copied().unwrap_or(0);
    rows.push(vec![
        "TOTAL per group".into(),
        thousands(total_grouped as f64),
        format!("{:.1}", total_grouped as f64 / groups as f64),
        max.to_string(),
    ]);
    let hooked = hooks
        .iter()
        .max_by_key(|(_, hooks)| hooks.len())
        .map_or((0, 0), |(group, hooks)| (hooks.len(), per_group.get(group).copied().unwrap_or(0)));
    (rows, total_grouped as f64 / groups as f64, max, global, hooked)
}

fn render_phase(args: &Args) -> Res {
    let path = args.file()?;
    let runs: usize = args.get("runs", 5);
    let loaded = load(&path, mode_arg(args))?;
    table(&format!("memory (render phase load) {}", path.display()), &memory_rows(&loaded));
    let exporter = &loaded.exporter;
    let now = exporter.latest_time().unwrap_or(0);
    let (mut snapshot_ms, mut text_ms, mut om_ms, mut gzip_ms) = (vec![], vec![], vec![], vec![]);
    let (mut total_text, mut total_om, mut total_gzip) = (vec![], vec![], vec![]);
    let (mut text_bytes, mut om_bytes, mut gzip_bytes) = (0, 0, 0);
    for _ in 0..runs {
        let started = Instant::now();
        let exposition = exporter.exposition(now);
        let snap = started.elapsed();
        snapshot_ms.push(ms(snap));
        let (bytes, encode) = stream(&exposition, Format::Text, Encoding::Identity);
        text_bytes = bytes;
        text_ms.push(ms(encode));
        total_text.push(ms(snap + encode));
        let (bytes, encode) = stream(&exposition, Format::OpenMetrics, Encoding::Identity);
        om_bytes = bytes;
        om_ms.push(ms(encode));
        total_om.push(ms(snap + encode));
        let (bytes, encode) = stream(&exposition, Format::Text, Encoding::Gzip);
        gzip_bytes = bytes;
        gzip_ms.push(ms(encode));
        total_gzip.push(ms(snap + encode));
        // What the server does once a scrape is sent (`Exposition::scrape`).
        drop(exposition);
        codedeploy_exporter::heap::release_freed();
    }
    // Memory after streamed scrapes, before the whole body is built below for counting series.
    let (rss_after, hwm_after) = memory_kib();
    let text = exporter.exposition(now).render(Format::Text);
    let (series_rows, per_group, max_per_group, global, hooked) = series_table(&text);
    let series = text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
    let rows = vec![
        vec!["measure (median of runs)".into(), "text 0.0.4".into(), "OpenMetrics".into(), "text, gzip -1".into()],
        vec!["snapshot under the lock, ms".into(), format!("{:.1}", median(&mut snapshot_ms)), "(same)".into(), "(same)".into()],
        vec![
            "encode (streamed), ms".into(),
            format!("{:.1}", median(&mut text_ms)),
            format!("{:.1}", median(&mut om_ms)),
            format!("{:.1}", median(&mut gzip_ms)),
        ],
        vec![
            "/metrics total (snapshot + encode), ms".into(),
            format!("{:.1}", median(&mut total_text)),
            format!("{:.1}", median(&mut total_om)),
            format!("{:.1}", median(&mut total_gzip)),
        ],
        vec!["body, bytes".into(), thousands(text_bytes as f64), thousands(om_bytes as f64), thousands(gzip_bytes as f64)],
        vec!["series (samples)".into(), thousands(series as f64), String::new(), String::new()],
        vec!["series per group avg / max".into(), format!("{per_group:.1} / {max_per_group}"), String::new(), String::new()],
        vec![
            "series of a group with the most hooks (hooks)".into(),
            format!("{} ({})", hooked.1, hooked.0),
            String::new(),
            String::new(),
        ],
        vec!["series without a group label".into(), global.to_string(), String::new(), String::new()],
        vec![
            "VmRSS / VmHWM after the streamed renders, MiB".into(),
            format!("{:.1} / {:.1}", mib(rss_after), mib(hwm_after)),
            String::new(),
            String::new(),
        ],
    ];
    table(&format!("render {} ({runs} runs, now = latest event)", path.display()), &rows);
    table("series per family", &series_rows);
    if let Some(out) = args.flags.get("save") {
        std::fs::write(out, &text)?;
    }
    std::process::exit(0);
}

// ---------------------------------------------------------------------------------------------
// restart: store open → load → restore → first render
// ---------------------------------------------------------------------------------------------

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| entries.flatten().filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

fn restart_phase(args: &Args) -> Res {
    let path = args.file()?;
    let runs: usize = args.get("runs", 3);
    let data = bench_data_dir();
    std::fs::create_dir_all(&data)?;
    let dir = tempfile::Builder::new().prefix("restart-store").tempdir_in(&data)?;
    let me = std::env::current_exe()?;
    // Built in a child process, so that this one holds no ledger while the timed ones run.
    let output = Command::new(&me)
        .args(["--bench", "restart-build"])
        .arg(&path)
        .arg("--store")
        .arg(dir.path())
        .stderr(Stdio::inherit())
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let built: Vec<f64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("BUILD "))
        .ok_or("no BUILD line from child")?
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let (commit_ms, records) = (built[0], built[1]);
    let store_bytes = dir_size(dir.path());
    let mut results: Vec<Vec<f64>> = Vec::new();
    for _ in 0..runs {
        let output = Command::new(&me)
            .args(["--bench", "restart-open", "--store"])
            .arg(dir.path())
            .stderr(Stdio::inherit())
            .output()?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().find_map(|l| l.strip_prefix("RESTART ")).ok_or("no RESTART line from child")?;
        results.push(line.split_whitespace().filter_map(|v| v.parse().ok()).collect());
    }
    let column = |i: usize| {
        let mut values: Vec<f64> = results.iter().filter_map(|r| r.get(i).copied()).collect();
        median(&mut values)
    };
    let rows = vec![
        vec!["measure (median of fresh processes)".into(), "value".into()],
        vec!["deployments in the store".into(), thousands(records)],
        vec!["store file, MiB".into(), format!("{:.1}", store_bytes as f64 / 1048576.0)],
        vec!["initial commit of everything, ms".into(), format!("{commit_ms:.0}")],
        vec!["RedbStore::open, ms".into(), format!("{:.1}", column(0))],
        vec!["Store::load, ms".into(), format!("{:.1}", column(1))],
        vec!["Exporter::restore + resume, ms".into(), format!("{:.1}", column(2))],
        vec!["first render (text), ms".into(), format!("{:.1}", column(3))],
        vec!["open → ready (sum), ms".into(), format!("{:.1}", column(4))],
        vec!["VmRSS after restore + render, MiB".into(), format!("{:.1}", column(5) / 1024.0)],
        vec!["VmHWM, MiB".into(), format!("{:.1}", column(6) / 1024.0)],
    ];
    table(&format!("restart {} ({runs} runs; page cache warm)", path.display()), &rows);
    Ok(())
}

fn restart_build(args: &Args) -> Res {
    let path = args.file()?;
    let store_path = PathBuf::from(args.flags.get("store").ok_or("--store DIR")?);
    let mut loaded = load(&path, Mode::Live { commit: true })?;
    let mut store = RedbStore::open(&store_path)?;
    let started = Instant::now();
    loaded.exporter.commit_to(&mut store)?;
    let commit = started.elapsed();
    drop(store);
    println!("BUILD {:.3} {}", ms(commit), loaded.settled);
    // Dropping a big ledger is slow and not what is measured.
    std::process::exit(0);
}

fn restart_open(args: &Args) -> Res {
    let store_path = PathBuf::from(args.flags.get("store").ok_or("--store DIR")?);
    let started = Instant::now();
    let store = RedbStore::open(&store_path)?;
    let open = started.elapsed();
    let started = Instant::now();
    let stored = store.load()?;
    let load = started.elapsed();
    let started = Instant::now();
    let mut exporter = Exporter::restore(120_000, stored);
    exporter.resume(codedeploy_exporter::ingest::now_ms());
    // As the app does after restoring.
    codedeploy_exporter::heap::release_freed();
    let restore = started.elapsed();
    let started = Instant::now();
    // The history's end as "now", so that the windows hold 30 days, as in production.
    let now = exporter.latest_time().unwrap_or(0);
    let (bytes, _) = stream(&exporter.exposition(now), Format::Text, Encoding::Identity);
    let render = started.elapsed();
    std::hint::black_box(bytes);
    let (rss, hwm) = memory_kib();
    println!(
        "RESTART {:.3} {:.3} {:.3} {:.3} {:.3} {} {}",
        ms(open),
        ms(load),
        ms(restore),
        ms(render),
        ms(open + load + restore + render),
        rss,
        hwm
    );
    std::process::exit(0);
}

fn bench_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data")
}

// ---------------------------------------------------------------------------------------------
// webhook: the real binary, durable commits, N connections
// ---------------------------------------------------------------------------------------------

struct Server {
    child: std::process::Child,
    address: String,
    _store: tempfile::TempDir,
}

impl Server {
    /// The binary over a fresh store, or over a copy of `store_from` (a
    /// store directory), so that every run starts from the same state.
    fn start(binary: &Path, secret: &str, store_from: Option<&Path>) -> Res<Server> {
        let data = bench_data_dir();
        std::fs::create_dir_all(&data)?;
        let store = tempfile::Builder::new().prefix("webhook-store").tempdir_in(&data)?;
        if let Some(from) = store_from {
            for file in std::fs::read_dir(from)? {
                let file = file?;
                std::fs::copy(file.path(), store.path().join(file.file_name()))?;
            }
        }
        // BENCH_SERVER_WRAPPER="valgrind --tool=callgrind …" profiles the server.
        let wrapper = std::env::var("BENCH_SERVER_WRAPPER").unwrap_or_default();
        let mut words = wrapper.split_whitespace();
        let mut command = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(binary);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(["serve", "--web.listen-address", "127.0.0.1:0", "--storage.path"])
            .arg(store.path())
            .env("CODEDEPLOY_EXPORTER_WEBHOOK_SECRET", secret)
            .env("CODEDEPLOY_EXPORTER_LOG_LEVEL", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut address = None;
        for line in lines.by_ref() {
            let line = line?;
            if line.contains("listening") {
                address = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("address="))
                    .map(str::to_owned);
                break;
            }
        }
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let address = address.ok_or("the server did not say where it listens")?;
        Ok(Server { child, address, _store: store })
    }

    fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}

struct Connection {
    writer: TcpStream,
    reader: BufReader<TcpStream>,
}


/// Posts bodies to the webhook over one keep-alive connection (opened again
/// after an error) until `next` has no more; returns the latencies of the
/// 2xx answers and the count of the rest (`usize::MAX` if it never connected).
fn post_events<'a, B: AsRef<[u8]> + 'a>(
    address: &str,
    secret: &str,
    mut next: impl FnMut() -> Option<&'a B>,
) -> (Vec<Duration>, usize) {
    let mut latencies = Vec::new();
    let mut failures = 0;
    let Ok(mut connection) = Connection::open(address) else { return (latencies, usize::MAX) };
    let headers = format!("Authorization: Bearer {secret}\r\nContent-Type: application/json\r\n");
    while let Some(body) = next() {
        let sent = Instant::now();
        match connection.request("POST", "/events", &headers, body.as_ref()) {
            Ok((200..=299, _)) => latencies.push(sent.elapsed()),
            Ok(_) => failures += 1,
            Err(_) => {
                failures += 1;
                match Connection::open(address) {
                    Ok(c) => connection = c,
                    Err(_) => break,
                }
            }
        }
    }
    (latencies, failures)
}

impl Connection {
    fn open(address: &str) -> std::io::Result<Connection> {
        let writer = TcpStream::connect(address)?;
        writer.set_nodelay(true)?;
        let reader = BufReader::new(writer.try_clone()?);
        Ok(Connection { writer, reader })
    }

    /// One request; returns the status code and the body.
    fn request(&mut self, method: &str, path: &str, headers: &str, body: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\n{headers}Content-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.writer.write_all(&request)?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut length = 0usize;
        let mut chunked = false;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
                if name.eq_ignore_ascii_case("transfer-encoding") && value.trim().eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
            }
        }
        if !chunked {
            let mut body = vec![0; length];
            self.reader.read_exact(&mut body)?;
            return Ok((status, body));
        }
        // `/metrics` streams its body: chunks of `<hex size>\r\n<bytes>\r\n`, ended by a zero-size one.
        let mut body = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16)
                .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size"))?;
            let start = body.len();
            body.resize(start + size + 2, 0);
            self.reader.read_exact(&mut body[start..])?;
            body.truncate(start + size);
            if size == 0 {
                return Ok((status, body));
            }
        }
    }
}

fn first_lines(path: &Path, n: usize) -> Res<Vec<Vec<u8>>> {
    let reader = BufReader::with_capacity(1 << 20, File::open(path)?);
    let mut lines = Vec::with_capacity(n);
    for line in reader.split(b'\n') {
        let line = line?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        lines.push(line);
        if lines.len() == n {
            break;
        }
    }
    Ok(lines)
}

/// `--binary`, or the release build of the exporter.
fn release_binary(args: &Args) -> Res<PathBuf> {
    let binary = args
        .flags
        .get("binary")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/codedeploy-exporter"));
    if !binary.exists() {
        return Err(format!("{} not found: cargo build --release first", binary.display()).into());
    }
    Ok(binary)
}

fn webhook_phase(args: &Args) -> Res {
    let path = args.file()?;
    let events: usize = args.get("events", 50_000);
    let levels: Vec<usize> = args
        .flags
        .get("connections")
        .map_or("1,16,64,256", String::as_str)
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let binary = release_binary(args)?;
    let lines = Arc::new(first_lines(&path, events)?);
    let secret = "bench-secret-0123456789";
    let mut rows = vec![vec![
        "connections".into(),
        "events".into(),
        "events/s".into(),
        "p50 ms".into(),
        "p99 ms".into(),
        "max ms".into(),
        "non-2xx".into(),
        "applied+dup (server)".into(),
    ]];
    for &connections in &levels {
        let server = Server::start(&binary, secret, None)?;
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let workers: Vec<_> = (0..connections)
            .map(|_| {
                let (lines, next, address) = (lines.clone(), next.clone(), server.address.clone());
                std::thread::spawn(move || post_events(&address, secret, || lines.get(next.fetch_add(1, Ordering::Relaxed))))
            })
            .collect();
        let mut latencies = Vec::with_capacity(lines.len());
        let mut failures = 0usize;
        for worker in workers {
            let (l, f) = worker.join().map_err(|_| "worker panicked")?;
            latencies.extend(l);
            failures = failures.saturating_add(f);
        }
        let elapsed = started.elapsed();
        latencies.sort();
        let pct = |q: f64| percentile_ms(&latencies, q);
        // What the server says it took in, from its own counters.
        let accepted = Connection::open(&server.address)
            .and_then(|mut c| c.request("GET", "/metrics", "", b""))
            .map(|(_, body)| {
                String::from_utf8_lossy(&body)
                    .lines()
                    .filter(|l| l.starts_with("codedeploy_exporter_events_total{") && l.contains("source=\"webhook\""))
                    .filter(|l| l.contains("outcome=\"applied\"") || l.contains("outcome=\"duplicate\""))
                    .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
                    .sum::<f64>()
            })
            .unwrap_or(f64::NAN);
        rows.push(vec![
            connections.to_string(),
            thousands(latencies.len() as f64),
            thousands(latencies.len() as f64 / elapsed.as_secs_f64()),
            format!("{:.2}", pct(0.5)),
            format!("{:.2}", pct(0.99)),
            format!("{:.2}", latencies.last().map_or(f64::NAN, |d| ms(*d))),
            failures.to_string(),
            thousands(accepted),
        ]);
        server.stop();
        eprintln!("webhook: {connections} connections done");
    }
    table(&format!("webhook POST /events, durable commits, {}", path.display()), &rows);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// scrape-load: the probes and the webhook while big scrapes run back to back
// ---------------------------------------------------------------------------------------------

/// Latency percentile `q` of sorted `values`, in ms.
fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    sorted.get(((sorted.len() as f64 * q) as usize).min(sorted.len().saturating_sub(1))).map_or(f64::NAN, |d| ms(*d))
}

/// Issue 13 §5: the real binary over a copy of `--store` (from `restart-build`
/// of a stream generated `--ends-now`, so that the windows `serve` computes
/// from the wall clock are full), for `--seconds` with nothing scraping, then
/// as long with `--scrapers` clients scraping `/metrics` back to back (gzip, as
/// Prometheus asks). Throughout, `/-/healthy` is probed every 10 ms and the
/// first `--events` lines of FILE are POSTed over `--connections`
/// connections, round and round (after the first round they are duplicates,
/// each still folded and committed).
fn scrape_load_phase(args: &Args) -> Res {
    let path = args.file()?;
    let store = PathBuf::from(args.flags.get("store").ok_or("--store DIR (from restart-build)")?);
    let seconds: u64 = args.get("seconds", 20);
    let scrapers: usize = args.get("scrapers", 2);
    let connections: usize = args.get("connections", 64);
    let events: usize = args.get("events", 50_000);
    let binary = release_binary(args)?;
    let lines = Arc::new(first_lines(&path, events)?);
    let secret = "bench-secret-0123456789";
    let started = Instant::now();
    let server = Server::start(&binary, secret, Some(&store))?;
    eprintln!("scrape-load: serving {} after {:.1} s", store.display(), started.elapsed().as_secs_f64());
    let mut rows = vec![vec![
        "scrapers".into(),
        "healthy p50 ms".into(),
        "healthy p99 ms".into(),
        "healthy max ms".into(),
        "webhook events/s".into(),
        "webhook p99 ms".into(),
        "scrapes 200".into(),
        "scrape p50 ms".into(),
        "scrape max ms".into(),
        "other answers".into(),
    ]];
    for scraping in [0, scrapers] {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let next = Arc::new(AtomicUsize::new(0));
        let address = server.address.clone();
        let posters: Vec<_> = (0..connections)
            .map(|_| {
                let (lines, next, stop, address) = (lines.clone(), next.clone(), stop.clone(), address.clone());
                std::thread::spawn(move || {
                    post_events(&address, secret, || {
                        (!stop.load(Ordering::Relaxed)).then(|| &lines[next.fetch_add(1, Ordering::Relaxed) % lines.len()])
                    })
                })
            })
            .collect();
        let prober = {
            let (stop, address) = (stop.clone(), address.clone());
            std::thread::spawn(move || -> std::io::Result<Vec<Duration>> {
                let mut connection = Connection::open(&address)?;
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let (status, _) = connection.request("GET", "/-/healthy", "", b"")?;
                    if status != 200 {
                        return Err(std::io::Error::other(format!("/-/healthy answered {status}")));
                    }
                    latencies.push(sent.elapsed());
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(latencies)
            })
        };
        let scraping_threads: Vec<_> = (0..scraping)
            .map(|_| {
                let (stop, address) = (stop.clone(), address.clone());
                std::thread::spawn(move || -> std::io::Result<(Vec<Duration>, usize)> {
                    let mut connection = Connection::open(&address)?;
                    let headers = "Accept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-Seconds: 10\r\n";
                    let (mut durations, mut others) = (Vec::new(), 0);
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        match connection.request("GET", "/metrics", headers, b"")?.0 {
                            200 => durations.push(sent.elapsed()),
                            _ => others += 1,
                        }
                    }
                    Ok((durations, others))
                })
            })
            .collect();
        let window = Instant::now();
        std::thread::sleep(Duration::from_secs(seconds));
        stop.store(true, Ordering::Relaxed);
        let mut posted = Vec::new();
        let mut failures = 0usize;
        for poster in posters {
            let (latencies, failed) = poster.join().map_err(|_| "poster panicked")?;
            posted.extend(latencies);
            failures = failures.saturating_add(failed);
        }
        let elapsed = window.elapsed();
        let mut healthy = prober.join().map_err(|_| "prober panicked")??;
        let (mut scrapes, mut others) = (Vec::new(), failures);
        for scraper in scraping_threads {
            let (durations, other) = scraper.join().map_err(|_| "scraper panicked")??;
            scrapes.extend(durations);
            others += other;
        }
        healthy.sort();
        posted.sort();
        scrapes.sort();
        rows.push(vec![
            scraping.to_string(),
            format!("{:.2}", percentile_ms(&healthy, 0.5)),
            format!("{:.2}", percentile_ms(&healthy, 0.99)),
            format!("{:.2}", healthy.last().map_or(f64::NAN, |d| ms(*d))),
            thousands(posted.len() as f64 / elapsed.as_secs_f64()),
            format!("{:.2}", percentile_ms(&posted, 0.99)),
            scrapes.len().to_string(),
            format!("{:.0}", percentile_ms(&scrapes, 0.5)),
            format!("{:.0}", scrapes.last().map_or(f64::NAN, |d| ms(*d))),
            others.to_string(),
        ]);
        eprintln!("scrape-load: {scraping} scrapers done");
    }
    server.stop();
    table(
        &format!(
            "scrape-load over {} ({seconds} s per row, {connections} webhook connections, /-/healthy every 10 ms)",
            store.display()
        ),
        &rows,
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fixed workloads for callgrind
// ---------------------------------------------------------------------------------------------

fn profile_ingest(args: &Args) -> Res {
    let path = args.file()?;
    let lines: usize = args.get("lines", 20_000);
    let bytes = first_lines_bytes(args)?;
    let mut exporter = Exporter::in_memory(0);
    exporter.register(Source::Replay);
    let rejected = replay::replay_bytes(&mut exporter, &path, &bytes, Source::Replay, 0).len();
    let settled = exporter.settle(0, true);
    println!("profile-ingest: {lines} lines, {settled} settled, {rejected} rejected");
    std::process::exit(0);
}

/// Renders from a store written by `restart-build`: restoring is far cheaper than
/// ingesting under valgrind, and the ledger is the same.
fn profile_render(args: &Args) -> Res {
    let store_path = PathBuf::from(args.flags.get("store").ok_or("--store DIR (from restart-build)")?);
    let renders: usize = args.get("renders", 1);
    let store = RedbStore::open(&store_path)?;
    let exporter = Exporter::restore(120_000, store.load()?);
    let now = exporter.latest_time().unwrap_or(0);
    let mut bytes = 0;
    for _ in 0..renders {
        bytes += render_once(&exporter, now);
    }
    println!("profile-render: {renders} renders, {bytes} bytes");
    std::process::exit(0);
}

/// A live load (as `serve` folds, settles and commits batch by batch), for
/// callgrind to attribute per-batch settle cost against ingest.
fn profile_live(args: &Args) -> Res {
    let path = args.file()?;
    let loaded = load(&path, Mode::Live { commit: false })?;
    println!("profile-live: {} events, {} settled", loaded.events, loaded.settled);
    std::process::exit(0);
}

fn profile_parse(args: &Args) -> Res {
    let bytes = first_lines_bytes(args)?;
    let parsed = parse_only(&bytes);
    println!("profile-parse: {parsed} lines parsed");
    std::process::exit(0);
}

fn profile_decode(args: &Args) -> Res {
    let bytes = first_lines_bytes(args)?;
    let decoded = decode_only(&bytes);
    println!("profile-decode: {decoded} lines decoded");
    std::process::exit(0);
}

/// The first `--lines` lines of the file, as one buffer.
fn first_lines_bytes(args: &Args) -> Res<Vec<u8>> {
    let path = args.file()?;
    let lines: usize = args.get("lines", 20_000);
    let mut bytes = Vec::new();
    for line in first_lines(&path, lines)? {
        bytes.extend_from_slice(&line);
        bytes.push(b'\n');
    }
    Ok(bytes)
}

/// A separate function, so that callgrind can toggle collection on it.
#[inline(never)]
fn render_once(exporter: &Exporter, now: i64) -> usize {
    stream(&exporter.exposition(now), Format::Text, Encoding::Identity).0
}
