//! A deterministic simulator of a CodeDeploy fleet, for the `demo` command.
//!
//! It plays the part of AWS: it decides what a fleet of deployment groups does (who deploys
//! what, which hook fails, which deployment is stopped or rolled back) and renders every step in
//! the wire formats the exporter ingests in production: EventBridge events, SNS trigger
//! notifications, and the CodeDeploy API views a poller would fetch (see [`wire`]). The demo
//! therefore exercises the same decoders and ledger as a real installation, and a newcomer sees
//! live metrics without an AWS account.
//!
//! Everything derives from the seed and the `now` values passed in: no wall clock, no global
//! RNG. Each deployment is planned in full when it is created (outcome, targets, every hook's
//! times), its group's state is updated, and it is rendered into timestamped messages; `advance`
//! then releases the messages whose time has come. Planning ahead is what lets a failed
//! deployment's final API view name the rollback that follows it.
//!
//! The groups and applications carry tags too ([`tags`]), which `demo` shows as the
//! `environment` and `team` labels of the group info series.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use fastrand::Rng;

use crate::domain::Millis;

mod app;
mod tags;
mod wire;

pub use app::Application;

const SECOND: Millis = 1_000;
const MINUTE: Millis = 60 * SECOND;
const DAY: Millis = 24 * 60 * MINUTE;

/// Live mode: a new deployment is considered this often somewhere in the fleet.
const LIVE_START_EVERY: (Millis, Millis) = (1_500, 4 * SECOND);
/// Live mode: a group rests this long after a deployment before its next one, so that the
/// simulated application shows each build's effect (see [`Application`]) before the next
/// ships: the demo's impact mapping compares 15 s windows up to 45 s after a deployment
/// with the last quiet window before it.
const LIVE_REST: Millis = 60 * SECOND;
/// After a pause longer than this (a suspended laptop), live mode skips the missed time instead
/// of replaying it as a burst of deployments.
const LIVE_CATCH_UP_LIMIT: Millis = 30 * SECOND;
/// Share of history deployments that are manual stops, on top of a group's failure rate.
const STOP_RATE: f64 = 0.03;
/// Share of a scaling group's history deployments that Auto Scaling creates.
const SCALE_OUT_SHARE: f64 = 0.15;
/// Rollbacks redeploy a revision that worked before, so they rarely fail.
const ROLLBACK_SUCCESS_RATE: f64 = 0.9;
/// Share of change deployments that name another configuration than their group's
/// (`create-deployment --deployment-config-name`).
const CONFIG_OVERRIDE_SHARE: f64 = 0.2;

// ---------------------------------------------------------------------------------------------
// The fleet table
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Platform {
    Server,
    Lambda,
    Ecs,
}

impl Platform {
    /// The API's `computePlatform`.
    fn api_name(self) -> &'static str {
        match self {
            Platform::Server => "Server",
            Platform::Lambda => "Lambda",
            Platform::Ecs => "ECS",
        }
    }
}

/// Which push channels a group has set up. The poller's API views are emitted for every group.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Notify {
    EventBridge,
    Sns,
    Both,
}

impl Notify {
    fn eventbridge(self) -> bool {
        matches!(self, Notify::EventBridge | Notify::Both)
    }

    fn sns(self) -> bool {
        matches!(self, Notify::Sns | Notify::Both)
    }
}

/// One deployment group of the simulated fleet.
struct GroupSpec {
    account: &'static str,
    region: &'static str,
    application: &'static str,
    group: &'static str,
    platform: Platform,
    blue_green: bool,
    /// Server in-place groups behind a load balancer wrap the install hooks in traffic hooks.
    load_balancer: bool,
    /// The group's deployment configuration: batch size on Server, traffic shifting on Lambda
    /// and ECS. A deployment may name another one of its platform (see [`configs`]).
    config: &'static str,
    /// Server only: the fleet size is drawn from this range when the simulator is created.
    instances: (usize, usize),
    /// Lambda function name, or `cluster:service` for ECS.
    target: &'static str,
    /// Server revisions come from S3 unless the group deploys from GitHub.
    github_repo: Option<&'static str>,
    /// Chance that a change deployment goes wrong.
    failure_rate: f64,
    /// Roll back automatically on failure and on alarm; its users stop deployments with
    /// `--auto-rollback-enabled`, so a stop on request rolls back too.
    auto_rollback: bool,
    /// Who creates this group's change deployments.
    creator: &'static str,
    /// Auto Scaling launches instances into the group, which CodeDeploy deploys to.
    autoscaling: bool,
    notify: Notify,
    /// Change deployments per day in the history.
    per_day: f64,
}

/// Defaults the rows of [`FLEET`] override, so each row shows only what makes it different.
const SERVER: GroupSpec = GroupSpec {
    account: "111111111111",
    region: "us-east-1",
    application: "",
    group: "prod",
    platform: Platform::Server,
    blue_green: false,
    load_balancer: false,
    config: "CodeDeployDefault.OneAtATime",
    instances: (0, 0),
    target: "",
    github_repo: None,
    failure_rate: 0.05,
    auto_rollback: false,
    creator: "user",
    autoscaling: false,
    notify: Notify::EventBridge,
    per_day: 3.0,
};

const LAMBDA: GroupSpec = GroupSpec {
    account: "222222222222",
    platform: Platform::Lambda,
    blue_green: true,
    config: "CodeDeployDefault.LambdaAllAtOnce",
    ..SERVER
};

const ECS: GroupSpec = GroupSpec {
    account: "222222222222",
    region: "eu-west-1",
    platform: Platform::Ecs,
    blue_green: true,
    config: "CodeDeployDefault.ECSAllAtOnce",
    ..SERVER
};

const FLEET: &[GroupSpec] = &[
    GroupSpec {
        application: "web-frontend",
        load_balancer: true,
        config: "CodeDeployDefault.HalfAtATime",
        instances: (4, 8),
        auto_rollback: true,
        autoscaling: true,
        per_day: 4.0,
        ..SERVER
    },
    GroupSpec {
        application: "web-frontend",
        group: "staging",
        config: "CodeDeployDefault.AllAtOnce",
        instances: (2, 3),
        failure_rate: 0.10,
        notify: Notify::Both,
        per_day: 8.0,
        ..SERVER
    },
    GroupSpec {
        region: "eu-west-1",
        application: "web-frontend",
        group: "prod-eu",
        load_balancer: true,
        instances: (4, 6),
        failure_rate: 0.04,
        auto_rollback: true,
        autoscaling: true,
        ..SERVER
    },
    GroupSpec {
        application: "batch-worker",
        blue_green: true,
        config: "CodeDeployDefault.AllAtOnce",
        instances: (2, 4),
        github_repo: Some("example-org/batch-worker"),
        failure_rate: 0.08,
        auto_rollback: true,
        notify: Notify::Sns,
        per_day: 2.0,
        ..SERVER
    },
    // The flaky one: most of the fleet's failures, rollbacks and recoveries happen here.
    GroupSpec {
        region: "eu-west-1",
        application: "search-indexer",
        instances: (3, 5),
        failure_rate: 0.30,
        auto_rollback: true,
        autoscaling: true,
        ..SERVER
    },
    GroupSpec {
        application: "payments-api",
        config: "CodeDeployDefault.LambdaCanary10Percent5Minutes",
        target: "payments-api",
        failure_rate: 0.04,
        auto_rollback: true,
        creator: "CloudFormation",
        ..LAMBDA
    },
    GroupSpec {
        application: "payments-api",
        group: "staging",
        target: "payments-api-staging",
        failure_rate: 0.08,
        creator: "CloudFormation",
        notify: Notify::Both,
        per_day: 6.0,
        ..LAMBDA
    },
    GroupSpec {
        application: "notification-sender",
        config: "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
        target: "notification-sender",
        failure_rate: 0.03,
        auto_rollback: true,
        creator: "CodeDeploy",
        notify: Notify::Sns,
        per_day: 2.0,
        ..LAMBDA
    },
    GroupSpec {
        application: "checkout-service",
        config: "CodeDeployDefault.ECSCanary10Percent5Minutes",
        target: "prod:checkout-service",
        failure_rate: 0.06,
        auto_rollback: true,
        notify: Notify::Both,
        ..ECS
    },
    GroupSpec {
        application: "checkout-service",
        group: "staging",
        target: "staging:checkout-service",
        failure_rate: 0.10,
        per_day: 5.0,
        ..ECS
    },
];

// Lifecycle hooks in execution order, per platform and phase.
const SERVER_BLOCK_TRAFFIC: &[&str] = &["BeforeBlockTraffic", "BlockTraffic", "AfterBlockTraffic"];
const SERVER_INSTALL: &[&str] = &[
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
];
/// Server traffic hooks, and the whole hook list of a Lambda deployment.
const ALLOW_TRAFFIC: &[&str] = &["BeforeAllowTraffic", "AllowTraffic", "AfterAllowTraffic"];
const ECS_INSTALL: &[&str] = &[
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
];

/// AWS's built-in configurations of a platform: what a deployment may name instead of its
/// group's.
fn configs(platform: Platform) -> &'static [&'static str] {
    match platform {
        Platform::Server => &["CodeDeployDefault.OneAtATime", "CodeDeployDefault.HalfAtATime", "CodeDeployDefault.AllAtOnce"],
        Platform::Lambda => &[
            "CodeDeployDefault.LambdaCanary10Percent5Minutes",
            "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
            "CodeDeployDefault.LambdaAllAtOnce",
        ],
        Platform::Ecs => &[
            "CodeDeployDefault.ECSCanary10Percent5Minutes",
            "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
            "CodeDeployDefault.ECSAllAtOnce",
        ],
    }
}

/// How long a hook usually runs under deployment configuration `config`, in seconds (low, high).
fn hook_seconds(spec: &GroupSpec, config: &str, hook: &str, rollback: bool) -> (i64, i64) {
    match (spec.platform, hook) {
        // Health checks of the target group before the instance takes traffic.
        (Platform::Server, "AllowTraffic") => (30, 120),
        // Connection draining (the target group's deregistration delay).
        (Platform::Server, "BlockTraffic") => (30, 300),
        (Platform::Server, "BeforeInstall") => (5, 90),
        (Platform::Server, "AfterInstall") => (3, 45),
        (Platform::Server, "ApplicationStart") => (2, 30),
        (Platform::Server, "ValidateService") => (5, 60),
        (Platform::Server, "Install") => (2, 20),
        // A rollback shifts all traffic back at once, whatever the configuration says.
        (_, "AllowTraffic") if rollback => (2, 15),
        (_, "AllowTraffic") => match config {
            "CodeDeployDefault.LambdaCanary10Percent5Minutes"
            | "CodeDeployDefault.ECSCanary10Percent5Minutes" => (300, 320),
            "CodeDeployDefault.LambdaLinear10PercentEvery1Minute"
            | "CodeDeployDefault.ECSLinear10PercentEvery1Minutes" => (600, 630),
            _ => (2, 15),
        },
        // The replacement task set starts and passes its health checks.
        (Platform::Ecs, "Install") => (60, 240),
        // Integration tests against the test listener.
        (Platform::Ecs, "AfterAllowTestTraffic") => (20, 120),
        (Platform::Lambda, "BeforeAllowTraffic" | "AfterAllowTraffic") => (5, 60),
        _ => (1, 10),
    }
}

/// How many Server instances configuration `config` deploys to side by side.
fn batch_size(config: &str, instances: usize) -> usize {
    match config {
        "CodeDeployDefault.OneAtATime" => 1,
        "CodeDeployDefault.HalfAtATime" => instances.div_ceil(2),
        _ => instances,
    }
    .max(1)
}

// ---------------------------------------------------------------------------------------------
// What can go wrong
// ---------------------------------------------------------------------------------------------

/// A way a deployment goes wrong, and where it strikes.
struct Mishap {
    /// The deployment's `errorInformation.code`.
    code: &'static str,
    /// The deployment's `errorInformation.message`; `{hook}` and `{alarms}` are filled in.
    summary: &'static str,
    /// Hooks at which it can strike; empty means any hook.
    hooks: &'static [&'static str],
    /// `Some(diagnostics.errorCode)` when a hook fails (the deployment then Fails); `None` when
    /// CodeDeploy stops the deployment before that hook runs (it is then Stopped).
    hook_error: Option<&'static str>,
    /// The failing hook's `diagnostics.message`; `{script}` is filled in.
    hook_message: &'static str,
    log_tail: &'static str,
    /// How long the failing hook runs when that is not its usual duration (timeouts), in seconds.
    seconds: Option<i64>,
}

/// CodeDeploy's message for a deployment that CloudWatch alarms stopped: each alarm's name in
/// angle brackets.
const ALARM_SUMMARY: &str = "One or more alarms have been activated according to the Amazon CloudWatch metrics \
                             you selected, and the affected deployments have been stopped. Activated alarms: {alarms}";

/// The CloudWatch alarms a group watches during its deployments.
fn alarms(spec: &GroupSpec) -> [String; 2] {
    let prefix = format!("{}-{}", spec.application, spec.group);
    [format!("{prefix}-5xx"), format!("{prefix}-p99-latency")]
}

const SERVER_MISHAPS: &[Mishap] = &[
    Mishap {
        code: "HEALTH_CONSTRAINTS",
        summary:
            "Too many instances failed the deployment to keep the minimum number of healthy hosts.",
        hooks: &[
            "BeforeInstall",
            "AfterInstall",
            "ApplicationStart",
            "ValidateService",
        ],
        hook_error: Some("ScriptFailed"),
        hook_message:
            "Script at specified location: {script} run as user root failed with exit code 1",
        log_tail: "[stderr]curl: (7) Failed to connect to localhost port 8080: Connection refused",
        seconds: None,
    },
    Mishap {
        code: "HEALTH_CONSTRAINTS",
        summary:
            "Too many instances failed the deployment to keep the minimum number of healthy hosts.",
        hooks: &["ApplicationStart", "ValidateService"],
        hook_error: Some("ScriptTimedOut"),
        hook_message: "Script at specified location: {script} failed to complete in 300 seconds",
        log_tail: "[stdout]waiting for the service to report healthy\n[stdout]still waiting",
        seconds: Some(300),
    },
    Mishap {
        code: "AGENT_ISSUE",
        summary: "The CodeDeploy agent did not respond on one or more instances.",
        hooks: &["ApplicationStop", "BeforeBlockTraffic"],
        hook_error: Some("UnknownError"),
        hook_message: "The CodeDeploy agent did not pick up the lifecycle event in time",
        log_tail: "",
        seconds: Some(600),
    },
    Mishap {
        code: "ALARM_ACTIVE",
        summary: ALARM_SUMMARY,
        hooks: &["ApplicationStop", "AllowTraffic"],
        hook_error: None,
        hook_message: "",
        log_tail: "",
        seconds: None,
    },
];

const LAMBDA_MISHAPS: &[Mishap] = &[
    Mishap {
        code: "HOOK_EXECUTION_FAILURE",
        summary: "Lifecycle hook {hook} reported a failure.",
        hooks: &["BeforeAllowTraffic", "AfterAllowTraffic"],
        hook_error: Some("ScriptFailed"),
        hook_message: "The hook function {script} reported status Failed",
        log_tail: "",
        seconds: None,
    },
    Mishap {
        code: "TIMEOUT",
        summary: "Lifecycle hook {hook} did not report a status in time.",
        hooks: &["AfterAllowTraffic"],
        hook_error: Some("ScriptTimedOut"),
        hook_message: "The hook function {script} did not report a status within 3600 seconds",
        log_tail: "",
        seconds: Some(3600),
    },
    Mishap {
        code: "ALARM_ACTIVE",
        summary: ALARM_SUMMARY,
        hooks: &["AfterAllowTraffic"],
        hook_error: None,
        hook_message: "",
        log_tail: "",
        seconds: None,
    },
];

const ECS_MISHAPS: &[Mishap] = &[
    Mishap {
        code: "ECS_UPDATE_ERROR",
        summary: "The replacement task set did not become healthy.",
        hooks: &["Install"],
        hook_error: Some("UnknownError"),
        hook_message: "Tasks of the replacement task set failed the load balancer health checks",
        log_tail: "",
        seconds: None,
    },
    Mishap {
        code: "HOOK_EXECUTION_FAILURE",
        summary: "Lifecycle hook {hook} reported a failure.",
        hooks: &["AfterAllowTestTraffic", "AfterAllowTraffic"],
        hook_error: Some("ScriptFailed"),
        hook_message: "The hook function {script} reported status Failed",
        log_tail: "",
        seconds: None,
    },
    Mishap {
        code: "ALARM_ACTIVE",
        summary: ALARM_SUMMARY,
        hooks: &["AfterAllowTraffic"],
        hook_error: None,
        hook_message: "",
        log_tail: "",
        seconds: None,
    },
];

const MANUAL_STOP: Mishap = Mishap {
    code: "MANUAL_STOP",
    summary: "The deployment was stopped by a user.",
    hooks: &[],
    hook_error: None,
    hook_message: "",
    log_tail: "",
    seconds: None,
};

fn mishaps(platform: Platform) -> &'static [Mishap] {
    match platform {
        Platform::Server => SERVER_MISHAPS,
        Platform::Lambda => LAMBDA_MISHAPS,
        Platform::Ecs => ECS_MISHAPS,
    }
}

/// The script a Server hook runs, as named in the group's appspec.
fn server_script(hook: &str) -> &'static str {
    match hook {
        "ApplicationStop" => "scripts/stop_server.sh",
        "BeforeInstall" => "scripts/install_dependencies.sh",
        "AfterInstall" => "scripts/configure.sh",
        "ApplicationStart" => "scripts/start_server.sh",
        "ValidateService" => "scripts/validate_service.sh",
        "BeforeBlockTraffic" | "AfterBlockTraffic" => "scripts/drain.sh",
        _ => "scripts/warm_up.sh",
    }
}

// ---------------------------------------------------------------------------------------------
// One planned deployment
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Succeed,
    /// Hits one of the platform's mishaps (a failing hook or an alarm).
    GoWrong,
    /// A user presses Stop.
    Stop,
}

/// Why a deployment is created.
enum Kind {
    /// A new revision (the creator is the group's usual one).
    Change,
    /// Auto Scaling launched instances that need the current revision.
    ScaleOut,
    /// CodeDeploy rolls back a failed or stopped deployment by redeploying the last good revision.
    Rollback {
        of: String,
        /// The build the failed deployment tried to ship.
        failed_build: u32,
        /// Server blue/green: the replacement instances the failed deployment started.
        replacement: Vec<String>,
    },
}

/// A hook's run on one target; `run: None` means Skipped.
struct Hook {
    name: &'static str,
    run: Option<(Millis, Millis)>,
    error: Option<HookError>,
}

/// The `diagnostics` of a failed hook.
struct HookError {
    code: &'static str,
    script: String,
    message: String,
    log_tail: &'static str,
}

struct Target {
    /// Instance id, Lambda function name, or `cluster:service`.
    id: String,
    /// `Blue` or `Green` on Server blue/green deployments.
    label: Option<&'static str>,
    hooks: Vec<Hook>,
}

impl Target {
    fn first_start(&self) -> Option<Millis> {
        self.hooks
            .iter()
            .find_map(|h| h.run.map(|(start, _)| start))
    }

    fn last_end(&self) -> Option<Millis> {
        self.hooks
            .iter()
            .rev()
            .find_map(|h| h.run.map(|(_, end)| end))
    }

    /// The final `TargetStatus`: a target that did not run all its hooks was skipped.
    fn status(&self) -> &'static str {
        if self.hooks.iter().any(|h| h.error.is_some()) {
            "Failed"
        } else if self.hooks.iter().all(|h| h.run.is_some()) {
            "Succeeded"
        } else {
            "Skipped"
        }
    }

    /// The `TargetStatus` a poller would have seen at `at`, before the deployment finished.
    fn status_at(&self, at: Millis) -> &'static str {
        match (self.first_start(), self.last_end()) {
            (Some(start), Some(end)) if start <= at => {
                let status = self.status();
                if end <= at && status != "Skipped" {
                    status
                } else {
                    "InProgress"
                }
            }
            _ => "Pending",
        }
    }
}

/// Targets that run the same hooks side by side; the next wave starts when all are done.
struct Wave {
    targets: Vec<usize>,
    hooks: Vec<&'static str>,
    /// Production traffic moves to the new revision in this wave: the deployment is Ready
    /// when it starts (Server and ECS blue/green).
    shifts_traffic: bool,
}

/// Where a mishap strikes: a hook of one wave, and for a failing hook, one target of it.
struct Strike {
    wave: usize,
    hook: usize,
    target: usize,
    mishap: &'static Mishap,
}

/// One deployment, planned in full: every time, target and hook outcome is decided.
struct Deployment {
    /// Index of its group in [`FLEET`].
    group: usize,
    id: String,
    creator: &'static str,
    /// `deploymentConfigName`.
    config: &'static str,
    /// The build being deployed, and the one serving before (Lambda and ECS versions).
    build: u32,
    previous_build: u32,
    create_time: Millis,
    start_time: Millis,
    complete_time: Millis,
    /// When a blue/green deployment started shifting production traffic.
    ready_time: Option<Millis>,
    /// `Succeeded`, `Failed` or `Stopped`.
    status: &'static str,
    /// `errorInformation` (code, message).
    error: Option<(&'static str, String)>,
    targets: Vec<Target>,
    rollback_of: Option<String>,
    rolled_back_by: Option<String>,
    /// EventBridge `instanceGroupId`.
    instance_group_id: String,
}

impl Deployment {
    fn spec(&self) -> &'static GroupSpec {
        &FLEET[self.group]
    }

    /// Target counts by status: final when `at` is `None`, else as seen at `at`.
    fn overview(&self, at: Option<Millis>) -> Overview {
        let mut overview = Overview::default();
        for target in &self.targets {
            let status = match at {
                Some(at) => target.status_at(at),
                None => target.status(),
            };
            match status {
                "Pending" => overview.pending += 1,
                "InProgress" => overview.in_progress += 1,
                "Succeeded" => overview.succeeded += 1,
                "Failed" => overview.failed += 1,
                _ => overview.skipped += 1,
            }
        }
        overview
    }

    /// Squeezes the deployment into `span` of wall time so the live demo moves; the
    /// proportions between phases are kept.
    fn compress(&mut self, span: Millis) {
        let origin = self.create_time;
        let total = (self.complete_time - origin).max(1);
        let squeeze = |t: Millis| origin + (t - origin) * span / total;
        self.start_time = squeeze(self.start_time);
        self.complete_time = squeeze(self.complete_time);
        self.ready_time = self.ready_time.map(squeeze);
        for hook in self.targets.iter_mut().flat_map(|t| t.hooks.iter_mut()) {
            hook.run = hook.run.map(|(start, end)| (squeeze(start), squeeze(end)));
        }
    }
}

/// `deploymentOverview`: how many targets are in each status.
#[derive(Default)]
struct Overview {
    pending: u64,
    in_progress: u64,
    succeeded: u64,
    failed: u64,
    skipped: u64,
}

// ---------------------------------------------------------------------------------------------
// The fleet
// ---------------------------------------------------------------------------------------------

/// What a group remembers between deployments.
struct GroupState {
    /// The group takes one deployment at a time (as CodeDeploy enforces).
    busy_until: Millis,
    /// The latest build shipped, and the latest one that succeeded (what rollbacks and
    /// scale-outs deploy).
    build: u32,
    good_build: u32,
    /// Server: the instances serving the current revision.
    instances: Vec<String>,
    /// The last deployment went wrong: a fix is on its way and will usually work.
    recovering: bool,
}

/// Live mode deals outcomes from a shuffled deck so that every kind of event shows up within a
/// minute; the history uses each group's own failure rate instead.
#[derive(Clone, Copy, Debug)]
enum Card {
    Ship(Outcome),
    ScaleOut,
}

const DECK: [Card; 8] = [
    Card::Ship(Outcome::Succeed),
    Card::Ship(Outcome::Succeed),
    Card::Ship(Outcome::Succeed),
    Card::Ship(Outcome::Succeed),
    Card::Ship(Outcome::GoWrong),
    Card::Ship(Outcome::GoWrong),
    Card::Ship(Outcome::Stop),
    Card::ScaleOut,
];

/// A simulated fleet: several accounts/regions, applications and deployment groups across
/// EC2/on-premises (Server), Lambda and ECS.
pub struct Fleet {
    rng: Rng,
    groups: Vec<GroupState>,
    /// Every deployment id handed out, so none repeats.
    deployment_ids: HashSet<String>,
    /// Live messages not yet due, ordered by time then by creation.
    pending: BinaryHeap<Reverse<(Millis, u64, String)>>,
    sequence: u64,
    next_live_start: Option<Millis>,
    deck: Vec<Card>,
    application: Application,
}

impl Fleet {
    pub fn new(seed: u64) -> Fleet {
        let mut rng = Rng::with_seed(seed);
        let groups = FLEET
            .iter()
            .map(|spec| {
                // Builds start mid-life so revisions and Lambda versions look lived-in.
                let build = rng.u32(100..500);
                let size = if spec.platform == Platform::Server {
                    rng.usize(spec.instances.0..=spec.instances.1)
                } else {
                    0
                };
                GroupState {
                    busy_until: Millis::MIN,
                    build,
                    good_build: build,
                    instances: (0..size).map(|_| instance_id(&mut rng)).collect(),
                    recovering: false,
                }
            })
            .collect();
        Fleet {
            rng,
            groups,
            deployment_ids: HashSet::new(),
            pending: BinaryHeap::new(),
            sequence: 0,
            next_live_start: None,
            deck: Vec::new(),
            application: Application::new(seed),
        }
    }

    /// The application behind the fleet's groups, whose figures `demo` serves.
    pub fn application(&self) -> Application {
        self.application.clone()
    }

    /// JSON messages (one message per String) for `days` days of finished deployment history
    /// ending at `now`, in time order, so windowed DORA figures (1d/7d/30d) have data at once.
    /// Durations are realistic (minutes; blue/green longer).
    pub fn history(&mut self, now: Millis, days: u32) -> Vec<String> {
        let from = now - Millis::from(days) * DAY;
        let mut timed = Vec::new();
        for (g, spec) in FLEET.iter().enumerate() {
            let mut create = from + self.gap(g);
            loop {
                let (kind, outcome) = if spec.autoscaling && self.rng.f64() < SCALE_OUT_SHARE {
                    (Kind::ScaleOut, self.draw_outcome(spec.failure_rate / 2.0))
                } else {
                    // A fix shipped after a failure usually works.
                    let rate = if self.groups[g].recovering {
                        spec.failure_rate / 4.0
                    } else {
                        spec.failure_rate
                    };
                    (Kind::Change, self.draw_outcome(rate))
                };
                let planned = self.plan(g, kind, outcome, create, false);
                let done = planned.last().map_or(create, |d| d.complete_time) + MINUTE;
                if done >= now {
                    break;
                }
                self.commit(g, &planned, done);
                for deployment in &planned {
                    timed.extend(wire::render(&mut self.rng, deployment));
                }
                create = done + self.gap(g);
            }
        }
        // Stable: messages of one deployment at the same millisecond keep their causal order.
        timed.sort_by_key(|(at, _)| *at);
        timed.into_iter().map(|(_, message)| message).collect()
    }

    /// Advances the live simulation to `now` (called every ~250 ms with the wall clock) and
    /// returns the messages for what happened since the previous call. Live deployments run in
    /// accelerated time: a new deployment starts every few seconds somewhere in the fleet and
    /// each takes 5–40 s of wall time, so that within one minute the live stream shows starts,
    /// in-progress deployments with target counts, successes, failures, stops, automatic
    /// rollbacks and failing hooks.
    pub fn advance(&mut self, now: Millis) -> Vec<String> {
        if self.next_live_start.is_none() {
            // The application comes up serving what the history left deployed.
            for (g, state) in self.groups.iter().enumerate() {
                self.application.serve(g, state.good_build, now, now);
            }
        }
        let mut next = self.next_live_start.unwrap_or(now + SECOND);
        if now - next > LIVE_CATCH_UP_LIMIT {
            next = now;
        }
        while next <= now {
            self.start_live(next);
            next += self.rng.i64(LIVE_START_EVERY.0..=LIVE_START_EVERY.1);
        }
        self.next_live_start = Some(next);

        let mut due = Vec::new();
        while let Some(Reverse((at, _, _))) = self.pending.peek() {
            if *at > now {
                break;
            }
            let Some(Reverse((_, _, message))) = self.pending.pop() else {
                break;
            };
            due.push(message);
        }
        due
    }

    /// Starts one live deployment at `at` on an idle group suited to the next card, if any.
    fn start_live(&mut self, at: Millis) {
        if self.deck.is_empty() {
            self.deck.extend(DECK);
            self.rng.shuffle(&mut self.deck);
        }
        let Some(&card) = self.deck.last() else {
            return;
        };
        // Failures go preferably to the groups that fail most, so per-group rates still differ,
        // and to groups that roll back, so the first minute likely shows a rollback.
        let weights: Vec<(usize, f64)> = FLEET
            .iter()
            .enumerate()
            .filter(|(g, _)| self.groups[*g].busy_until <= at)
            .filter_map(|(g, spec)| match card {
                Card::ScaleOut => spec.autoscaling.then_some((g, 1.0)),
                Card::Ship(Outcome::GoWrong) => {
                    let rollback_bias = if spec.auto_rollback { 0.15 } else { 0.0 };
                    Some((g, spec.failure_rate + rollback_bias))
                }
                Card::Ship(_) => Some((g, spec.per_day)),
            })
            .collect();
        let Some(g) = pick_weighted(&mut self.rng, &weights) else {
            return; // every suitable group is busy: keep the card for the next start
        };
        self.deck.pop();
        let (kind, outcome) = match card {
            Card::ScaleOut => (Kind::ScaleOut, Outcome::Succeed),
            Card::Ship(outcome) => (Kind::Change, outcome),
        };
        let planned = self.plan(g, kind, outcome, at, true);
        let done = planned.last().map_or(at, |d| d.complete_time) + LIVE_REST;
        self.commit(g, &planned, done);
        for shipped in planned.iter().filter(|d| d.status == "Succeeded") {
            self.application.serve(g, shipped.build, shipped.complete_time, at);
        }
        for deployment in &planned {
            for (at, message) in wire::render(&mut self.rng, deployment) {
                self.sequence += 1;
                self.pending.push(Reverse((at, self.sequence, message)));
            }
        }
    }

    /// Waiting time before a group's next history deployment: a quick fix after a failure,
    /// otherwise the group's usual pace.
    fn gap(&mut self, g: usize) -> Millis {
        if self.groups[g].recovering {
            return self.rng.i64(20 * MINUTE..=120 * MINUTE);
        }
        let mean = DAY as f64 / FLEET[g].per_day;
        let exponential = -(1.0 - self.rng.f64()).ln() * mean;
        (exponential as Millis).max(10 * MINUTE)
    }

    fn draw_outcome(&mut self, failure_rate: f64) -> Outcome {
        let roll = self.rng.f64();
        if roll < failure_rate {
            Outcome::GoWrong
        } else if roll < failure_rate + STOP_RATE {
            Outcome::Stop
        } else {
            Outcome::Succeed
        }
    }

    /// Plans a deployment of group `g` created at `create`, followed by its automatic rollback
    /// when it goes wrong on a group that rolls back. Changes no group state (see [`commit`]),
    /// so the history can drop a plan that would end after `now`.
    ///
    /// [`commit`]: Fleet::commit
    fn plan(
        &mut self,
        g: usize,
        kind: Kind,
        outcome: Outcome,
        create: Millis,
        live: bool,
    ) -> Vec<Deployment> {
        let spec = &FLEET[g];
        let state = &self.groups[g];
        let (creator, build, previous_build) = match &kind {
            Kind::Change => (spec.creator, state.build + 1, state.good_build),
            Kind::ScaleOut => ("autoscaling", state.good_build, state.good_build),
            Kind::Rollback { failed_build, .. } => {
                ("codeDeployRollback", state.good_build, *failed_build)
            }
        };
        let rollback = matches!(kind, Kind::Rollback { .. });
        let config = match kind {
            Kind::Change if self.rng.f64() < CONFIG_OVERRIDE_SHARE => {
                let choices = configs(spec.platform);
                choices[self.rng.usize(..choices.len())]
            }
            _ => spec.config,
        };
        let (targets, waves) = self.layout(g, &kind, config);
        let strike = self.choose_strike(spec, &waves, outcome);
        let id = self.deployment_id();
        let instance_group_id = uuid(&mut self.rng);

        let start = create + self.rng.i64(SECOND..=4 * SECOND);
        let mut deployment = Deployment {
            group: g,
            id,
            creator,
            config,
            build,
            previous_build,
            create_time: create,
            start_time: start,
            complete_time: start,
            ready_time: None,
            status: "Succeeded",
            error: None,
            targets,
            rollback_of: match &kind {
                Kind::Rollback { of, .. } => Some(of.clone()),
                _ => None,
            },
            rolled_back_by: None,
            instance_group_id,
        };
        let mut end = self.run(&mut deployment, &waves, strike.as_ref(), rollback);
        if let Some(strike) = &strike {
            let hook = waves[strike.wave].hooks[strike.hook];
            let mut summary = strike.mishap.summary.replace("{hook}", hook);
            if summary.contains("{alarms}") {
                // One alarm or both went off.
                let watched = alarms(spec);
                let went_off = &watched[..self.rng.usize(1..=watched.len())];
                let named: Vec<String> = went_off.iter().map(|alarm| format!("<{alarm}>")).collect();
                summary = summary.replace("{alarms}", &named.join(" "));
            }
            deployment.status = if strike.mishap.hook_error.is_some() {
                "Failed"
            } else {
                "Stopped"
            };
            deployment.error = Some((strike.mishap.code, summary));
        } else if spec.blue_green && spec.platform != Platform::Lambda && !rollback {
            // The original instances or task set are kept for a while before termination.
            end += match spec.platform {
                Platform::Server => self.rng.i64(5 * MINUTE..=15 * MINUTE),
                _ => self.rng.i64(MINUTE..=5 * MINUTE),
            };
        }
        deployment.complete_time = end;
        if live {
            let span = if spec.blue_green {
                self.rng.i64(15 * SECOND..=40 * SECOND)
            } else {
                self.rng.i64(5 * SECOND..=25 * SECOND)
            };
            deployment.compress(span);
        }

        let rolls_back = spec.auto_rollback && matches!(kind, Kind::Change) && strike.is_some();
        if !rolls_back {
            return vec![deployment];
        }
        let replacement = deployment
            .targets
            .iter()
            .filter(|t| t.label == Some("Green"))
            .map(|t| t.id.clone())
            .collect();
        let rollback_outcome = if self.rng.f64() < ROLLBACK_SUCCESS_RATE {
            Outcome::Succeed
        } else {
            Outcome::GoWrong
        };
        let rollback_kind = Kind::Rollback {
            of: deployment.id.clone(),
            failed_build: build,
            replacement,
        };
        let rollback_create = deployment.complete_time + self.rng.i64(500..=2_500);
        let rollbacks = self.plan(g, rollback_kind, rollback_outcome, rollback_create, live);
        deployment.rolled_back_by = rollbacks.first().map(|r| r.id.clone());
        let mut planned = vec![deployment];
        planned.extend(rollbacks);
        planned
    }

    /// The targets of a deployment and the waves they run in.
    fn layout(&mut self, g: usize, kind: &Kind, config: &str) -> (Vec<Target>, Vec<Wave>) {
        let spec = &FLEET[g];
        let wave = |targets: Vec<usize>, hooks: &[&'static str], shifts_traffic: bool| Wave {
            targets,
            hooks: hooks.to_vec(),
            shifts_traffic,
        };
        let target = |id: String, label: Option<&'static str>| Target {
            id,
            label,
            hooks: Vec::new(),
        };
        let pool = self.groups[g].instances.clone();
        match (spec.platform, spec.blue_green, kind) {
            (Platform::Server, false, _) => {
                let (ids, install) = if matches!(kind, Kind::ScaleOut) {
                    // New instances are not behind the load balancer yet: nothing to block.
                    let count = self.rng.usize(1..=2.min(pool.len().max(1)));
                    let ids = (0..count).map(|_| instance_id(&mut self.rng)).collect();
                    let hooks = if spec.load_balancer {
                        [SERVER_INSTALL, ALLOW_TRAFFIC].concat()
                    } else {
                        SERVER_INSTALL.to_vec()
                    };
                    (ids, hooks)
                } else {
                    let hooks = if spec.load_balancer {
                        [SERVER_BLOCK_TRAFFIC, SERVER_INSTALL, ALLOW_TRAFFIC].concat()
                    } else {
                        SERVER_INSTALL.to_vec()
                    };
                    (pool, hooks)
                };
                let batch = batch_size(config, ids.len());
                let targets: Vec<Target> = ids.into_iter().map(|id| target(id, None)).collect();
                let indexes: Vec<usize> = (0..targets.len()).collect();
                let waves = indexes
                    .chunks(batch)
                    .map(|chunk| wave(chunk.to_vec(), &install, false))
                    .collect();
                (targets, waves)
            }
            (Platform::Server, true, Kind::Rollback { replacement, .. }) => {
                // Traffic goes back to the original instances, then leaves the replacements.
                let mut targets: Vec<Target> = pool
                    .into_iter()
                    .map(|id| target(id, Some("Blue")))
                    .collect();
                let originals: Vec<usize> = (0..targets.len()).collect();
                targets.extend(
                    replacement
                        .iter()
                        .map(|id| target(id.clone(), Some("Green"))),
                );
                let replacements: Vec<usize> = (originals.len()..targets.len()).collect();
                let waves = vec![
                    wave(originals, ALLOW_TRAFFIC, false),
                    wave(replacements, SERVER_BLOCK_TRAFFIC, false),
                ];
                (targets, waves)
            }
            (Platform::Server, true, _) => {
                // Replacement instances get the revision and the traffic; the originals lose it.
                let size = pool.len();
                let mut targets: Vec<Target> = (0..size)
                    .map(|_| target(instance_id(&mut self.rng), Some("Green")))
                    .collect();
                targets.extend(pool.into_iter().map(|id| target(id, Some("Blue"))));
                let green: Vec<usize> = (0..size).collect();
                let blue: Vec<usize> = (size..2 * size).collect();
                let waves = vec![
                    wave(green.clone(), SERVER_INSTALL, false),
                    wave(green, ALLOW_TRAFFIC, true),
                    wave(blue, SERVER_BLOCK_TRAFFIC, false),
                ];
                (targets, waves)
            }
            (Platform::Lambda, _, _) => (
                vec![target(spec.target.to_string(), None)],
                vec![wave(vec![0], ALLOW_TRAFFIC, false)],
            ),
            (Platform::Ecs, _, Kind::Rollback { .. }) => {
                // The original task set is still there: only the traffic moves back.
                (
                    vec![target(spec.target.to_string(), None)],
                    vec![wave(vec![0], ALLOW_TRAFFIC, false)],
                )
            }
            (Platform::Ecs, _, _) => (
                vec![target(spec.target.to_string(), None)],
                vec![
                    wave(vec![0], ECS_INSTALL, false),
                    wave(vec![0], ALLOW_TRAFFIC, true),
                ],
            ),
        }
    }

    /// Where the outcome strikes, if it is not a success. A mishap that cannot strike this
    /// deployment (no matching hook) leaves it successful.
    fn choose_strike(
        &mut self,
        spec: &GroupSpec,
        waves: &[Wave],
        outcome: Outcome,
    ) -> Option<Strike> {
        let mishap = match outcome {
            Outcome::Succeed => return None,
            Outcome::Stop => &MANUAL_STOP,
            Outcome::GoWrong => {
                let catalogue = mishaps(spec.platform);
                &catalogue[self.rng.usize(..catalogue.len())]
            }
        };
        let spots: Vec<(usize, usize)> = waves
            .iter()
            .enumerate()
            .flat_map(|(w, wave)| {
                wave.hooks
                    .iter()
                    .enumerate()
                    .map(move |(h, name)| (w, h, *name))
            })
            .filter(|(_, _, name)| mishap.hooks.is_empty() || mishap.hooks.contains(name))
            .map(|(w, h, _)| (w, h))
            .collect();
        if spots.is_empty() {
            return None;
        }
        let (wave, hook) = spots[self.rng.usize(..spots.len())];
        let targets = &waves[wave].targets;
        let target = targets[self.rng.usize(..targets.len())];
        Some(Strike {
            wave,
            hook,
            target,
            mishap,
        })
    }

    /// Runs the waves from the deployment's start time, filling in every target's hooks, and
    /// returns when the last of them ended. A strike halts the deployment: a failing hook fails
    /// its target while the rest of its wave finishes; a stop skips the hook and all after it.
    fn run(
        &mut self,
        deployment: &mut Deployment,
        waves: &[Wave],
        strike: Option<&Strike>,
        rollback: bool,
    ) -> Millis {
        let spec = deployment.spec();
        let mut clock = deployment.start_time;
        let mut halted = false;
        for (w, wave) in waves.iter().enumerate() {
            if wave.shifts_traffic && !halted {
                deployment.ready_time = Some(clock);
            }
            let mut wave_end = clock;
            for &t in &wave.targets {
                let mut at = clock + self.rng.i64(0..=2 * SECOND);
                let mut failed = false;
                for (h, &name) in wave.hooks.iter().enumerate() {
                    let stopped = strike.is_some_and(|s| {
                        s.wave == w && s.mishap.hook_error.is_none() && h >= s.hook
                    });
                    if halted || failed || stopped {
                        deployment.targets[t].hooks.push(Hook {
                            name,
                            run: None,
                            error: None,
                        });
                        continue;
                    }
                    // The failing hook, with its diagnostics error code.
                    let fault = strike
                        .filter(|s| s.wave == w && s.hook == h && s.target == t)
                        .and_then(|s| s.mishap.hook_error.map(|code| (s.mishap, code)));
                    let seconds = match fault.and_then(|(mishap, _)| mishap.seconds) {
                        Some(seconds) => seconds * SECOND,
                        None => {
                            let (low, high) = hook_seconds(spec, deployment.config, name, rollback);
                            self.rng.i64(low * SECOND..=high * SECOND)
                        }
                    };
                    let error = fault.map(|(mishap, code)| hook_error(spec, mishap, code, name));
                    failed = error.is_some();
                    deployment.targets[t].hooks.push(Hook {
                        name,
                        run: Some((at, at + seconds)),
                        error,
                    });
                    at += seconds + self.rng.i64(200..=1_500);
                }
                wave_end = wave_end.max(at);
            }
            clock = wave_end + self.rng.i64(500..=3 * SECOND);
            halted |= strike.is_some_and(|s| s.wave == w);
        }
        clock
    }

    /// Applies what the planned deployments did to their group.
    fn commit(&mut self, g: usize, planned: &[Deployment], busy_until: Millis) {
        let state = &mut self.groups[g];
        for deployment in planned {
            state.build = state.build.max(deployment.build);
            if deployment.status != "Succeeded" {
                continue;
            }
            state.good_build = deployment.build;
            let spec = deployment.spec();
            if spec.platform != Platform::Server || deployment.rollback_of.is_some() {
                continue;
            }
            if deployment.creator == "autoscaling" {
                // The new instances replace the oldest ones, so the fleet keeps its size.
                let launched = deployment.targets.len().min(state.instances.len());
                state.instances.drain(..launched);
                state
                    .instances
                    .extend(deployment.targets.iter().map(|t| t.id.clone()));
            } else if spec.blue_green {
                state.instances = deployment
                    .targets
                    .iter()
                    .filter(|t| t.label == Some("Green"))
                    .map(|t| t.id.clone())
                    .collect();
            }
        }
        state.recovering = planned.first().is_some_and(|d| d.status != "Succeeded");
        state.busy_until = busy_until;
    }

    /// A fresh `d-` + 9 uppercase alphanumerics, never handed out before.
    fn deployment_id(&mut self) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        loop {
            let suffix: String = (0..9)
                .map(|_| ALPHABET[self.rng.usize(..ALPHABET.len())] as char)
                .collect();
            let id = format!("d-{suffix}");
            if self.deployment_ids.insert(id.clone()) {
                return id;
            }
        }
    }
}

fn hook_error(spec: &GroupSpec, mishap: &Mishap, code: &'static str, hook: &str) -> HookError {
    // Lambda and ECS hooks are Lambda functions, named after the group and the hook.
    let script = match spec.platform {
        Platform::Server => server_script(hook).to_string(),
        _ => format!("{}-{}-{}", spec.application, spec.group, hook),
    };
    HookError {
        code,
        message: mishap.hook_message.replace("{script}", &script),
        script,
        log_tail: mishap.log_tail,
    }
}

fn pick_weighted(rng: &mut Rng, weights: &[(usize, f64)]) -> Option<usize> {
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return None;
    }
    let mut roll = rng.f64() * total;
    for &(item, weight) in weights {
        if roll < weight {
            return Some(item);
        }
        roll -= weight;
    }
    weights.last().map(|(item, _)| *item)
}

/// An EC2 instance id: `i-` and 17 hex digits.
fn instance_id(rng: &mut Rng) -> String {
    format!("i-{}", hex(rng, 17))
}

fn hex(rng: &mut Rng, len: usize) -> String {
    const DIGITS: &[u8] = b"0123456789abcdef";
    (0..len).map(|_| DIGITS[rng.usize(..16)] as char).collect()
}

/// A version 4 UUID (EventBridge event ids, SNS message ids).
fn uuid(rng: &mut Rng) -> String {
    let high = (rng.u64(..) & !0xF000) | 0x4000;
    let low = (rng.u64(..) & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        high >> 32,
        (high >> 16) & 0xFFFF,
        high & 0xFFFF,
        low >> 48,
        low & 0xFFFF_FFFF_FFFF
    )
}

#[cfg(test)]
mod tests;
