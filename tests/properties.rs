//! Property tests of the whole replay path: decode → ledger → exposition.
//!
//! A strategy generates the *truth* of a small fleet (accounts, regions,
//! deployment groups, deployments with outcomes, creators, rollback links,
//! create/complete times with occasional clock skew, error codes, overviews)
//! and renders every deployment as a random mix of the real message formats:
//! EventBridge state-change envelopes, SNS envelopes and Lambda `Records`
//! batches around trigger messages, raw trigger messages, and API output
//! (`deploymentInfo` / `deploymentsInfo`). The properties then check that the
//! rendered exposition does not depend on arrival order, duplicates, file
//! splits or malformed lines, and that its totals match counts computed here,
//! from the generated truth and the SPEC, without calling into the ledger.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{TimeZone, Utc};
use codedeploy_exporter::ingest::Exporter;
use codedeploy_exporter::metrics::{Format, Source};
use codedeploy_exporter::sources::replay::{replay_bytes, Position};
use proptest::prelude::*;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// Time
// ---------------------------------------------------------------------------

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 2025-12-01T00:00:00Z: the generated history starts here and spans ~10 days.
const BASE: i64 = 1_764_547_200_000;
/// The fixed `now` of every exposition: late enough that the 1d/7d/30d
/// windows each hold a different part of the history.
const NOW: i64 = BASE + 12 * DAY;

fn utc(ms: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().expect("valid time")
}

/// EventBridge `time`: RFC 3339, whole seconds.
fn rfc3339_seconds(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// SNS `Timestamp`: RFC 3339 with milliseconds.
fn rfc3339_millis(ms: i64) -> String {
    utc(ms).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Java `Date.toString()` as real trigger messages carry it ("Wed Aug 10 18:39:05 UTC 2016").
fn java_date(ms: i64) -> String {
    utc(ms).format("%a %b %d %H:%M:%S UTC %Y").to_string()
}

/// Epoch seconds as a string, as in the documented trigger sample ("1446744188.595").
fn epoch_string(ms: i64) -> String {
    format!("{}.{:03}", ms.div_euclid(1000), ms.rem_euclid(1000))
}

/// API timestamps: JSON numbers of epoch seconds with a fraction.
fn epoch_number(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

// ---------------------------------------------------------------------------
// The fleet's truth
// ---------------------------------------------------------------------------

struct GroupDef {
    account: &'static str,
    region: &'static str,
    application: &'static str,
    group: &'static str,
    platform: &'static str,
    deployment_type: &'static str,
}

/// Two accounts, two regions, four groups; the last one reuses the first one's
/// application and group names in another account and region, so any mix-up
/// of the identity (account, region, …) shows.
const GROUPS: [GroupDef; 4] = [
    GroupDef {
        account: "111111111111",
        region: "us-east-1",
        application: "shop",
        group: "shop-prod",
        platform: "Server",
        deployment_type: "IN_PLACE",
    },
    GroupDef {
        account: "111111111111",
        region: "us-east-1",
        application: "shop",
        group: "shop-fn",
        platform: "Lambda",
        deployment_type: "BLUE_GREEN",
    },
    GroupDef {
        account: "222222222222",
        region: "eu-west-1",
        application: "billing",
        group: "billing-ecs",
        platform: "ECS",
        deployment_type: "BLUE_GREEN",
    },
    GroupDef {
        account: "222222222222",
        region: "us-east-1",
        application: "shop",
        group: "shop-prod",
        platform: "Server",
        deployment_type: "IN_PLACE",
    },
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Succeeded,
    Failed,
    Stopped,
    InProgress,
}

impl End {
    fn is_terminal(self) -> bool {
        self != End::InProgress
    }

    fn label(self) -> &'static str {
        match self {
            End::Succeeded => "succeeded",
            End::Failed => "failed",
            End::Stopped => "stopped",
            End::InProgress => "in_progress",
        }
    }

    fn api(self) -> &'static str {
        match self {
            End::Succeeded => "Succeeded",
            End::Failed => "Failed",
            End::Stopped => "Stopped",
            End::InProgress => "InProgress",
        }
    }

    fn trigger(self) -> &'static str {
        match self {
            End::Succeeded => "SUCCEEDED",
            End::Failed => "FAILED",
            End::Stopped => "STOPPED",
            End::InProgress => "IN_PROGRESS",
        }
    }

    fn eventbridge(self) -> &'static str {
        match self {
            End::Succeeded => "SUCCESS",
            End::Failed => "FAILURE",
            End::Stopped => "STOP",
            End::InProgress => "START",
        }
    }
}

/// How a trigger message reaches us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Delivery {
    /// SNS raw message delivery: the trigger JSON itself, no time of its own.
    Raw,
    /// The SNS JSON envelope (SNS → SQS or HTTP).
    Sns,
    /// The Lambda `{"Records":[{"Sns":{…}}]}` batch.
    Lambda,
}

/// How an API `DeploymentInfo` reaches us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ApiForm {
    /// GetDeployment: `{"deploymentInfo":{…}}`.
    Single,
    /// BatchGetDeployments: `{"deploymentsInfo":[…]}` shared with other deployments.
    Batch,
}

/// Which messages one deployment is rendered as.
#[derive(Debug, Clone, Default)]
struct Render {
    eb_start: bool,
    /// EventBridge READY (blue/green only): neither a start nor an end.
    eb_ready: bool,
    eb_end: bool,
    trigger_start: Option<Delivery>,
    trigger_end: Option<Delivery>,
    /// A poll while the deployment ran: status InProgress, no completeTime.
    api_progress: Option<ApiForm>,
    /// A poll after it finished.
    api_final: Option<ApiForm>,
    /// moto-style EventBridge envelope without `account` (it is in `resources`).
    eb_without_account: bool,
    /// Trigger times as Java date strings, else as epoch-second strings.
    java_dates: bool,
    /// The start trigger says CREATED rather than IN_PROGRESS.
    trigger_created: bool,
    /// With the final API output, the poller's BatchGetDeploymentTargets
    /// output for every target: its API details are then complete, and
    /// `serve` counts it without waiting the settle time.
    api_targets: bool,
}

impl Render {
    fn has_api(&self) -> bool {
        self.api_progress.is_some() || self.api_final.is_some()
    }

    fn has_trigger(&self) -> bool {
        self.trigger_start.is_some() || self.trigger_end.is_some()
    }

    fn has_located(&self) -> bool {
        self.eb_start || self.eb_ready || self.eb_end || self.has_trigger()
    }
}

#[derive(Debug, Clone)]
struct Deployment {
    id: String,
    group: usize,
    end: End,
    /// The API `creator`; `None` when the API output leaves it out.
    creator: Option<&'static str>,
    /// Index of the failed or stopped deployment this one rolls back.
    rollback_of: Option<usize>,
    /// Index of the rollback deployment that rolled this one back.
    rolled_back_by: Option<usize>,
    create: i64,
    /// Meaningful for terminal deployments only; may precede `create` (clock skew).
    complete: i64,
    error_code: Option<&'static str>,
    /// `deploymentConfigName` (API output only).
    config: &'static str,
    /// The alarms an `ALARM_ACTIVE` stop's message names (none: `unknown`).
    alarms: Vec<&'static str>,
    targets: u64,
    failed_targets: u64,
    /// Small per-deployment delays between the facts and the messages about them.
    jitter: i64,
    render: Render,
}

#[derive(Debug, Clone)]
struct Fleet {
    deployments: Vec<Deployment>,
    /// Recognised messages that carry no deployment state (ignored).
    noise: Vec<u8>,
}

/// The random choices for one deployment; [`build`] turns them into a
/// consistent [`Deployment`].
#[derive(Debug, Clone)]
struct Seed {
    group: usize,
    end: u8,
    creator: u8,
    offset: i64,
    duration: i64,
    skew: bool,
    error: u8,
    config: u8,
    alarms: u8,
    targets: u64,
    failed_targets: u64,
    flags: u32,
}

prop_compose! {
    fn seed()(
        group in 0..GROUPS.len(),
        end in 0u8..10,
        creator in 0u8..9,
        offset in 0..10 * DAY,
        duration in 5 * SECOND..3 * HOUR,
        skew in prop::bool::weighted(0.15),
        error in 0u8..6,
        config in 0u8..4,
        alarms in 0u8..4,
        targets in 1u64..6,
        failed_targets in 0u64..6,
        flags in any::<u32>(),
    ) -> Seed {
        Seed { group, end, creator, offset, duration, skew, error, config, alarms, targets, failed_targets, flags }
    }
}

fn fleet() -> impl Strategy<Value = Fleet> {
    (prop::collection::vec(seed(), 1..14), prop::collection::vec(0u8..3, 0..3))
        .prop_map(|(seeds, noise)| build(&seeds, noise))
}

fn build(seeds: &[Seed], noise: Vec<u8>) -> Fleet {
    let mut deployments: Vec<Deployment> = Vec::with_capacity(seeds.len());
    for (index, s) in seeds.iter().enumerate() {
        let end = match s.end {
            0..=3 => End::Succeeded,
            4..=6 => End::Failed,
            7 => End::Stopped,
            _ => End::InProgress,
        };
        let mut creator = match s.creator {
            0 | 1 => Some("user"),
            2 => Some("CodeDeploy"),
            3 => Some("CloudFormation"),
            4 => Some("autoscaling"),
            5 => Some("autoscalingTermination"),
            6 | 7 => Some("codeDeployRollback"),
            _ => None,
        };
        let mut create = BASE + s.offset;
        let mut rollback_of = None;
        if creator == Some("codeDeployRollback") {
            // CodeDeploy rolls back a failed or stopped deployment of the same
            // group, once, by starting a new deployment right after it ended.
            let target = deployments.iter().rposition(|d| {
                d.group == s.group
                    && matches!(d.end, End::Failed | End::Stopped)
                    && d.rolled_back_by.is_none()
            });
            match target {
                Some(t) => {
                    rollback_of = Some(t);
                    deployments[t].rolled_back_by = Some(index);
                    create = deployments[t].complete.max(deployments[t].create)
                        + 5 * SECOND
                        + s.offset % (10 * MINUTE);
                }
                None => creator = Some("user"),
            }
        }
        let complete = if s.skew {
            // completeTime before createTime: the backends' clocks disagree.
            create - 1 - s.duration % (2 * MINUTE)
        } else {
            create + s.duration
        };
        let error_code = match end {
            End::Failed => ["HEALTH_CONSTRAINTS", "AGENT_ISSUE", "ECS_UPDATE_ERROR", "TIMEOUT", "HOOK_EXECUTION_FAILURE"]
                .get(usize::from(s.error))
                .copied(),
            End::Stopped => ["MANUAL_STOP", "ALARM_ACTIVE", "MANUAL_STOP", "ALARM_ACTIVE"].get(usize::from(s.error)).copied(),
            _ => None,
        };
        // Built-in configurations of the group's platform, and one custom one.
        let config = match GROUPS[s.group].platform {
            "Lambda" => ["CodeDeployDefault.LambdaCanary10Percent5Minutes", "CodeDeployDefault.LambdaLinear10PercentEvery1Minute", "CodeDeployDefault.LambdaAllAtOnce", "shop-fn-canary-2pct"],
            "ECS" => ["CodeDeployDefault.ECSCanary10Percent5Minutes", "CodeDeployDefault.ECSLinear10PercentEvery1Minutes", "CodeDeployDefault.ECSAllAtOnce", "billing-linear-5pct"],
            _ => ["CodeDeployDefault.OneAtATime", "CodeDeployDefault.HalfAtATime", "CodeDeployDefault.AllAtOnce", "TwoAtATime"],
        }[usize::from(s.config)];
        let alarms = match (error_code, s.alarms) {
            (Some("ALARM_ACTIVE"), 1) => vec!["p99 latency"],
            (Some("ALARM_ACTIVE"), 2) => vec!["p99 latency", "5xx-errors"],
            (Some("ALARM_ACTIVE"), 3) => vec!["health-check"],
            _ => vec![],
        };
        let failed_targets = match end {
            End::Failed => s.failed_targets.min(s.targets).max(1),
            _ => 0,
        };
        let bits = |shift: u32, width: u32| (s.flags >> shift) & ((1 << width) - 1);
        let delivery = |choice: u32| match choice {
            1 => Some(Delivery::Raw),
            2 => Some(Delivery::Sns),
            3 => Some(Delivery::Lambda),
            _ => None,
        };
        let api = |choice: u32| match choice {
            1 => Some(ApiForm::Single),
            2 => Some(ApiForm::Batch),
            _ => None,
        };
        let blue_green = GROUPS[s.group].deployment_type == "BLUE_GREEN";
        let mut render = Render {
            eb_start: bits(0, 1) == 1,
            eb_ready: blue_green && bits(1, 2) == 0,
            eb_end: bits(3, 1) == 1,
            trigger_start: delivery(bits(4, 2)),
            trigger_end: delivery(bits(6, 2)),
            api_progress: api(bits(8, 2)),
            api_final: api(bits(10, 2)),
            eb_without_account: bits(12, 2) == 0,
            java_dates: bits(14, 2) != 0,
            trigger_created: bits(16, 1) == 1,
            api_targets: bits(18, 1) == 1,
        };
        if end.is_terminal() {
            if !(render.eb_end || render.trigger_end.is_some() || render.api_final.is_some()) {
                render.eb_end = true;
            }
        } else {
            render.eb_end = false;
            render.trigger_end = None;
            render.api_final = None;
            if !(render.eb_start || render.eb_ready || render.trigger_start.is_some() || render.api_progress.is_some())
            {
                render.eb_start = true;
            }
        }
        deployments.push(Deployment {
            id: format!("d-PROP{index:05}"),
            group: s.group,
            end,
            creator,
            rollback_of,
            rolled_back_by: None,
            create,
            complete,
            error_code,
            config,
            alarms,
            targets: s.targets,
            failed_targets,
            jitter: s.offset % (20 * SECOND),
            render,
        });
    }
    locate_api_output(&mut deployments, seeds);
    Fleet { deployments, noise }
}

/// API output has no account or region. A deployment known only from API
/// output gets its location from a rollback link (a rollback runs in the
/// account and region of what it undoes) when its API output names a
/// deployment that other messages locate, and the seed says so; otherwise
/// a message of its own says the location.
fn locate_api_output(deployments: &mut [Deployment], seeds: &[Seed]) {
    let located: Vec<bool> = deployments.iter().map(|d| d.render.has_located()).collect();
    for (d, seed) in deployments.iter_mut().zip(seeds) {
        if !d.render.has_api() || d.render.has_located() {
            continue;
        }
        let names_located_target = d.rollback_of.is_some_and(|t| located[t]);
        let names_located_rollback = d.render.api_final.is_some() && d.rolled_back_by.is_some_and(|r| located[r]);
        let linked = (seed.flags >> 17) & 1 == 1 && (names_located_target || names_located_rollback);
        if linked {
            continue;
        }
        if d.end.is_terminal() {
            d.render.eb_end = true;
        } else {
            d.render.eb_start = true;
        }
    }
}

// ---------------------------------------------------------------------------
// Rendering the truth as messages
// ---------------------------------------------------------------------------

/// One line of the stream and the time it nominally happened, which gives
/// the "clean, ordered delivery" the other orders are compared with.
#[derive(Debug, Clone)]
struct Message {
    at: i64,
    line: Vec<u8>,
}

fn message(at: i64, value: &Value) -> Message {
    Message { at, line: serde_json::to_vec(value).expect("serialisable") }
}

fn eventbridge(d: &Deployment, state: &str, at: i64) -> Value {
    let g = &GROUPS[d.group];
    let mut event = json!({
        "version": "0",
        "id": format!("{:08x}-0000-4000-8000-{:012x}", d.create.rem_euclid(1 << 32), at.rem_euclid(1 << 48)),
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "account": g.account,
        "time": rfc3339_seconds(at),
        "region": g.region,
        "resources": [
            format!("arn:aws:codedeploy:{}:{}:application:{}", g.region, g.account, g.application),
            format!("arn:aws:codedeploy:{}:{}:deploymentgroup:{}/{}", g.region, g.account, g.application, g.group),
        ],
        "detail": {
            "instanceGroupId": "9fd2fbef-2157-40d8-91e7-6845af69e2d2",
            "region": g.region,
            "application": g.application,
            "deploymentId": d.id,
            "state": state,
            "deploymentGroup": g.group,
        },
    });
    if d.render.eb_without_account {
        event.as_object_mut().expect("object").remove("account");
    }
    event
}

fn overview(d: &Deployment, finished: bool) -> Value {
    let (succeeded, failed, skipped, in_progress, pending) = if !finished {
        (0, 0, 0, d.targets.min(1), d.targets - d.targets.min(1))
    } else {
        match d.end {
            End::Succeeded => (d.targets, 0, 0, 0, 0),
            End::Failed => (d.targets - d.failed_targets, d.failed_targets, 0, 0, 0),
            End::Stopped => (d.targets / 2, 0, d.targets - d.targets / 2, 0, 0),
            End::InProgress => unreachable!("only finished deployments have a final overview"),
        }
    };
    json!({"Succeeded": succeeded, "Failed": failed, "Skipped": skipped, "InProgress": in_progress, "Pending": pending})
}

/// BatchGetDeploymentTargets output for every target of a finished
/// deployment, as the overview counts them, each with one lifecycle hook.
fn deployment_targets(d: &Deployment) -> Value {
    let final_overview = overview(d, true);
    let count = |key: &str| final_overview[key].as_u64().unwrap_or(0);
    let (kind, key) = match GROUPS[d.group].platform {
        "Lambda" => ("LambdaTarget", "lambdaTarget"),
        "ECS" => ("ECSTarget", "ecsTarget"),
        _ => ("InstanceTarget", "instanceTarget"),
    };
    let statuses = [("Succeeded", count("Succeeded")), ("Failed", count("Failed")), ("Skipped", count("Skipped"))];
    let targets: Vec<Value> = statuses
        .iter()
        .flat_map(|(status, n)| std::iter::repeat_n(*status, *n as usize))
        .enumerate()
        .map(|(i, status)| {
            let hook_end = d.create.max(d.complete) - SECOND;
            let hook = json!({
                "lifecycleEventName": "AfterInstall",
                "status": status,
                "startTime": epoch_number(hook_end - (i as i64 + 1) * SECOND),
                "endTime": epoch_number(hook_end),
                "diagnostics": {"errorCode": if status == "Failed" { "ScriptFailed" } else { "Success" }},
            });
            json!({"deploymentTargetType": kind, key: {
                "deploymentId": d.id,
                "targetId": format!("{}-target-{i}", d.id),
                "status": status,
                "lifecycleEvents": [hook],
            }})
        })
        .collect();
    json!({"deploymentTargets": targets})
}

/// `errorInformation`'s message; an alarm stop's names its alarms as CodeDeploy does.
fn error_message(d: &Deployment, code: &str) -> String {
    if code != "ALARM_ACTIVE" {
        return format!("Deployment failed: {code}");
    }
    let named: Vec<String> = d.alarms.iter().map(|a| format!("<{a}>")).collect();
    let list = if named.is_empty() { String::new() } else { format!(" Activated alarms: {}", named.join(" ")) };
    format!("One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped.{list}")
}

fn rollback_message(d: &Deployment, fleet: &Fleet) -> Option<(String, String)> {
    d.rollback_of.map(|t| {
        let target = &fleet.deployments[t].id;
        (target.clone(), format!("Deployment {} is triggered to roll back deployment {target}.", d.id))
    })
}

fn trigger(d: &Deployment, fleet: &Fleet, finished: bool) -> Value {
    let g = &GROUPS[d.group];
    let time = |ms: i64| if d.render.java_dates { java_date(ms) } else { epoch_string(ms) };
    let status = if finished {
        d.end.trigger()
    } else if d.render.trigger_created {
        "CREATED"
    } else {
        "IN_PROGRESS"
    };
    let mut m = json!({
        "region": g.region,
        "accountId": g.account,
        "eventTriggerName": "deployment-events",
        "applicationName": g.application,
        "deploymentId": d.id,
        "deploymentGroupName": g.group,
        "createTime": time(d.create),
        "completeTime": if finished { Value::from(time(d.complete)) } else { Value::Null },
        "status": status,
    });
    let fields = m.as_object_mut().expect("object");
    if finished {
        // Real messages carry nested objects as JSON strings.
        fields.insert("deploymentOverview".into(), overview(d, true).to_string().into());
        if let Some(code) = d.error_code {
            let info = json!({"ErrorCode": code, "ErrorMessage": error_message(d, code)});
            fields.insert("errorInformation".into(), info.to_string().into());
        }
    }
    match rollback_message(d, fleet) {
        Some((target, text)) => {
            let info = json!({"RollbackMessage": text, "RollbackTriggeringDeploymentId": target});
            fields.insert("rollbackInformation".into(), info.to_string().into());
        }
        None if d.end == End::Failed => {
            fields.insert("rollbackInformation".into(), "{}".into());
        }
        None => {}
    }
    m
}

fn sns_notification(d: &Deployment, trigger: &Value, published: i64, lambda_keys: bool) -> Value {
    let g = &GROUPS[d.group];
    let status = trigger["status"].as_str().unwrap_or("unknown");
    let mut envelope = json!({
        "Type": "Notification",
        "MessageId": format!("5d1c6a7e-0000-4000-8000-{:012x}", published.rem_euclid(1 << 48)),
        "TopicArn": format!("arn:aws:sns:{}:{}:codedeploy-events", g.region, g.account),
        "Subject": format!("{status}: AWS CodeDeploy {} in {} to {}", d.id, g.region, g.application),
        "Message": trigger.to_string(),
        "Timestamp": rfc3339_millis(published),
        "SignatureVersion": "1",
        "Signature": "EXAMPLEpH+2d7d8jAVbk9wT1q4l0=",
    });
    let fields = envelope.as_object_mut().expect("object");
    if lambda_keys {
        fields.insert("SigningCertUrl".into(), "https://sns.example/cert.pem".into());
        fields.insert("UnsubscribeUrl".into(), "https://sns.example/?Action=Unsubscribe".into());
        fields.insert("MessageAttributes".into(), json!({}));
    } else {
        fields.insert("SigningCertURL".into(), "https://sns.example/cert.pem".into());
        fields.insert("UnsubscribeURL".into(), "https://sns.example/?Action=Unsubscribe".into());
    }
    envelope
}

fn delivered(d: &Deployment, fleet: &Fleet, finished: bool, delivery: Delivery, published: i64) -> Value {
    let trigger = trigger(d, fleet, finished);
    match delivery {
        Delivery::Raw => trigger,
        Delivery::Sns => sns_notification(d, &trigger, published, false),
        Delivery::Lambda => {
            let g = &GROUPS[d.group];
            json!({"Records": [{
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": format!("arn:aws:sns:{}:{}:codedeploy-events:0000", g.region, g.account),
                "Sns": sns_notification(d, &trigger, published, true),
            }]})
        }
    }
}

fn deployment_info(d: &Deployment, fleet: &Fleet, finished: bool) -> Value {
    let g = &GROUPS[d.group];
    let mut info = json!({
        "applicationName": g.application,
        "deploymentGroupName": g.group,
        "deploymentConfigName": d.config,
        "deploymentId": d.id,
        "status": if finished { d.end.api() } else { "InProgress" },
        "createTime": epoch_number(d.create),
        "startTime": epoch_number(d.create + SECOND),
        "computePlatform": g.platform,
        "deploymentStyle": {"deploymentType": g.deployment_type, "deploymentOption": "WITHOUT_TRAFFIC_CONTROL"},
        "revision": {"revisionType": "S3", "s3Location": {"bucket": "artifacts", "key": "app.zip", "bundleType": "zip"}},
    });
    let fields = info.as_object_mut().expect("object");
    fields.insert("deploymentOverview".into(), overview(d, finished));
    if let Some(creator) = d.creator {
        fields.insert("creator".into(), creator.into());
    }
    if finished {
        fields.insert("completeTime".into(), epoch_number(d.complete));
        if let Some(code) = d.error_code {
            fields.insert("errorInformation".into(), json!({"code": code, "message": error_message(d, code)}));
        }
    }
    let mut rollback = serde_json::Map::new();
    if let Some((target, text)) = rollback_message(d, fleet) {
        rollback.insert("rollbackTriggeringDeploymentId".into(), target.into());
        rollback.insert("rollbackMessage".into(), text.into());
    }
    if let (true, Some(by)) = (finished, d.rolled_back_by) {
        rollback.insert("rollbackDeploymentId".into(), fleet.deployments[by].id.clone().into());
    }
    if !rollback.is_empty() {
        fields.insert("rollbackInfo".into(), Value::Object(rollback));
    }
    info
}

/// Every message of the fleet, in the order things happened.
fn render(fleet: &Fleet) -> Vec<Message> {
    let mut out = Vec::new();
    let mut batches: [Vec<(i64, Value)>; 2] = [Vec::new(), Vec::new()];
    for d in &fleet.deployments {
        let r = &d.render;
        let started = d.create + 2 * SECOND + d.jitter;
        let ended = d.complete + SECOND + d.jitter;
        let ready = d.create + (d.complete - d.create).abs() / 2 + SECOND;
        if r.eb_start {
            out.push(message(started, &eventbridge(d, "START", started)));
        }
        if r.eb_ready {
            out.push(message(ready, &eventbridge(d, "READY", ready)));
        }
        if r.eb_end {
            out.push(message(ended, &eventbridge(d, d.end.eventbridge(), ended)));
        }
        if let Some(delivery) = r.trigger_start {
            let at = d.create + 1_500 + d.jitter;
            out.push(message(at, &delivered(d, fleet, false, delivery, at)));
        }
        if let Some(delivery) = r.trigger_end {
            let at = d.complete + 1_200 + d.jitter;
            out.push(message(at, &delivered(d, fleet, true, delivery, at)));
        }
        for (form, finished, at) in [(r.api_progress, false, started + SECOND), (r.api_final, true, ended + MINUTE)] {
            match form {
                Some(ApiForm::Single) => {
                    out.push(message(at, &json!({"deploymentInfo": deployment_info(d, fleet, finished)})))
                }
                Some(ApiForm::Batch) => batches[usize::from(finished)].push((at, deployment_info(d, fleet, finished))),
                None => {}
            }
        }
    }
    for d in fleet.deployments.iter().filter(|d| d.render.api_targets && d.render.api_final.is_some()) {
        let at = d.complete + SECOND + d.jitter + MINUTE;
        out.push(message(at, &deployment_targets(d)));
    }
    // BatchGetDeployments answers for up to 25 ids; three per call here, so
    // that one call mixes deployments of several groups and accounts.
    for batch in &batches {
        for chunk in batch.chunks(3) {
            let at = chunk.iter().map(|(at, _)| *at).max().unwrap_or(BASE);
            let infos: Vec<Value> = chunk.iter().map(|(_, info)| info.clone()).collect();
            out.push(message(at, &json!({"deploymentsInfo": infos})));
        }
    }
    for (i, kind) in fleet.noise.iter().enumerate() {
        let at = BASE + i as i64 * HOUR;
        let value = match kind {
            0 => json!({
                "Type": "Notification",
                "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
                "TopicArn": "arn:aws:sns:us-east-1:111111111111:codedeploy-events",
                "Subject": "SUCCESS: AWS CodeDeploy notification setup for trigger deployment-events",
                "Message": "Your AWS CodeDeploy trigger deployment-events is able to send notifications to your Amazon SNS topic.",
                "Timestamp": rfc3339_millis(at),
            }),
            1 => json!({"deployments": ["d-PROP00000", "d-PROP00001"]}),
            _ => json!({
                "version": "0",
                "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
                "detail-type": "AWS API Call via CloudTrail",
                "source": "aws.codedeploy",
                "account": "111111111111",
                "time": rfc3339_seconds(at),
                "region": "us-east-1",
                "resources": [],
                "detail": {"eventSource": "codedeploy.amazonaws.com", "eventName": "CreateDeployment"},
            }),
        };
        out.push(message(at, &value));
    }
    out.sort_by_key(|m| m.at);
    out
}

// ---------------------------------------------------------------------------
// Expected values, from the truth and the SPEC only
// ---------------------------------------------------------------------------

/// What the messages of a deployment let anyone know about it.
struct Known {
    /// Marked as a rollback by its own messages (SNS rollbackInformation or
    /// API rollbackInfo with a triggering deployment id).
    rollback: bool,
    /// The creator label: the API's creator, else "unknown".
    creator: &'static str,
    /// A change in the DORA sense: not a rollback, not an autoscaling deployment.
    change: bool,
    /// Some message gives its start: createTime (trigger or API) or the START event.
    start: bool,
    /// The deployment_config label: the API's deploymentConfigName, else "unknown".
    config: &'static str,
    /// Its error code, when a message that carries one (a final trigger or
    /// API output) was sent: EventBridge events carry none.
    error_code: Option<&'static str>,
}

fn known(d: &Deployment) -> Known {
    let r = &d.render;
    let rollback = d.rollback_of.is_some() && (r.has_trigger() || r.has_api());
    let creator = if r.has_api() { d.creator } else { None };
    let scaling = matches!(creator, Some("autoscaling" | "autoscalingTermination"));
    Known {
        rollback,
        creator: creator.unwrap_or("unknown"),
        change: !rollback && !scaling,
        start: r.eb_start || r.has_trigger() || r.has_api(),
        config: if r.has_api() { d.config } else { "unknown" },
        error_code: d.error_code.filter(|_| r.trigger_end.is_some() || r.api_final.is_some()),
    }
}

/// The cause label of a rollback of `d`: how `d` ended, as far as its messages tell.
fn cause(d: &Deployment) -> &'static str {
    match (d.end, known(d).error_code) {
        (End::Failed, _) => "failure",
        (End::Stopped, Some("ALARM_ACTIVE")) => "alarm",
        (End::Stopped, Some(_)) => "manual",
        _ => "unknown",
    }
}

type GroupLabels = (String, String, String, String);

fn group_labels(g: &GroupDef) -> GroupLabels {
    (g.account.into(), g.region.into(), g.application.into(), g.group.into())
}

#[derive(Debug, Default, PartialEq)]
struct Expected {
    /// (group, creator, status) → finished deployments.
    deployments: BTreeMap<(GroupLabels, String, String), f64>,
    in_progress: BTreeMap<GroupLabels, f64>,
    change_failures: BTreeMap<GroupLabels, f64>,
    /// (group, deployment config, status) → finished deployments.
    configs: BTreeMap<(GroupLabels, String, String), f64>,
    /// (group, status, cause) → finished rollback deployments.
    rollbacks: BTreeMap<(GroupLabels, String, String), f64>,
    /// (group, alarm) → deployments stopped by alarms.
    alarm_stops: BTreeMap<(GroupLabels, String), f64>,
    rollback_durations: BTreeMap<GroupLabels, f64>,
    durations: BTreeMap<GroupLabels, f64>,
}

fn expected(fleet: &Fleet) -> Expected {
    let mut e = Expected::default();
    // Every group that has any deployment has its series, at 0 if need be.
    for d in &fleet.deployments {
        let g = group_labels(&GROUPS[d.group]);
        e.in_progress.entry(g.clone()).or_insert(0.0);
        e.change_failures.entry(g.clone()).or_insert(0.0);
        e.rollback_durations.entry(g.clone()).or_insert(0.0);
        e.durations.entry(g.clone()).or_insert(0.0);
        for status in ["failed", "stopped", "succeeded"] {
            for cause in ["failure", "alarm", "manual", "unknown"] {
                e.rollbacks.entry((g.clone(), status.into(), cause.into())).or_insert(0.0);
            }
        }
    }
    for d in &fleet.deployments {
        let g = group_labels(&GROUPS[d.group]);
        let k = known(d);
        if !d.end.is_terminal() {
            *e.in_progress.get_mut(&g).expect("initialised") += 1.0;
            continue;
        }
        *e.deployments.entry((g.clone(), k.creator.into(), d.end.label().into())).or_insert(0.0) += 1.0;
        *e.configs.entry((g.clone(), k.config.into(), d.end.label().into())).or_insert(0.0) += 1.0;
        if d.end == End::Stopped && k.error_code == Some("ALARM_ACTIVE") {
            let named = if d.alarms.is_empty() { vec!["unknown"] } else { d.alarms.clone() };
            for alarm in named {
                *e.alarm_stops.entry((g.clone(), alarm.into())).or_insert(0.0) += 1.0;
            }
        }
        let rolled_back = fleet
            .deployments
            .iter()
            .any(|r| r.rollback_of.is_some_and(|t| fleet.deployments[t].id == d.id) && known(r).rollback)
            || (d.rolled_back_by.is_some() && d.render.api_final.is_some());
        if k.change && (matches!(d.end, End::Failed | End::Stopped) || rolled_back) {
            *e.change_failures.get_mut(&g).expect("initialised") += 1.0;
        }
        if k.rollback {
            let undone = &fleet.deployments[d.rollback_of.expect("a rollback names what it undoes")];
            let key = (g.clone(), d.end.label().into(), cause(undone).into());
            *e.rollbacks.get_mut(&key).expect("initialised") += 1.0;
            // The rolled-back deployment always finished, so there is a time to rollback.
            *e.rollback_durations.get_mut(&g).expect("initialised") += 1.0;
        }
        if k.start {
            *e.durations.get_mut(&g).expect("initialised") += 1.0;
        }
    }
    e
}

// ---------------------------------------------------------------------------
// Running the exporter and reading its output
// ---------------------------------------------------------------------------

/// `replay` through the library: every buffer is one file.
fn replay(files: &[Vec<u8>]) -> String {
    replay_with_rejections(files).0
}

fn replay_with_rejections(files: &[Vec<u8>]) -> (String, Vec<(usize, Position)>) {
    let mut exporter = Exporter::new(0);
    exporter.register(Source::Replay);
    let mut rejections = Vec::new();
    for (index, bytes) in files.iter().enumerate() {
        let name = format!("part-{index}.jsonl");
        for rejection in replay_bytes(&mut exporter, Path::new(&name), bytes, Source::Replay, 0) {
            rejections.push((index, rejection.position));
        }
    }
    exporter.settle(0, true);
    (exporter.exposition(NOW).render(Format::Text), rejections)
}

fn jsonl<'a>(lines: impl IntoIterator<Item = &'a Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out
}

fn lines(messages: &[Message]) -> Vec<Vec<u8>> {
    messages.iter().map(|m| m.line.clone()).collect()
}

/// The exposition without `codedeploy_exporter_events_total`, whose
/// applied/duplicate split legitimately depends on what was delivered twice.
fn domain_series(exposition: &str) -> String {
    exposition
        .lines()
        .filter(|l| !l.contains("codedeploy_exporter_events_total"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The first differing lines, for a readable failure.
fn diff(left: &str, right: &str) -> String {
    let (l, r): (Vec<&str>, Vec<&str>) = (left.lines().collect(), right.lines().collect());
    let mut out = String::new();
    let mut shown = 0;
    for i in 0..l.len().max(r.len()) {
        let (a, b) = (l.get(i).copied().unwrap_or("<none>"), r.get(i).copied().unwrap_or("<none>"));
        if a != b && shown < 12 {
            out.push_str(&format!("line {}:\n  - {a}\n  + {b}\n", i + 1));
            shown += 1;
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse(exposition: &str) -> Vec<Sample> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("series and value");
            let value = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                other => other.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
            };
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.strip_suffix('}').expect("closing brace"))),
                None => (series, BTreeMap::new()),
            };
            Sample { name: name.to_owned(), labels, value }
        })
        .collect()
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let name: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if name.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "label value opens with a quote in {text}");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => value.push(match chars.next() {
                    Some('n') => '\n',
                    Some(other) => other,
                    None => break,
                }),
                '"' => break,
                other => value.push(other),
            }
        }
        labels.insert(name.trim_start_matches(',').to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    labels
}

fn group_of(s: &Sample) -> GroupLabels {
    let get = |k: &str| s.labels.get(k).cloned().unwrap_or_default();
    (get("account_id"), get("region"), get("application"), get("deployment_group"))
}

fn sum_by<K: Ord>(samples: &[Sample], name: &str, key: impl Fn(&Sample) -> K) -> BTreeMap<K, f64> {
    let mut out = BTreeMap::new();
    for s in samples.iter().filter(|s| s.name == name) {
        *out.entry(key(s)).or_insert(0.0) += s.value;
    }
    out
}

fn events(exposition: &str) -> BTreeMap<String, f64> {
    let samples = parse(exposition);
    sum_by(&samples, "codedeploy_exporter_events_total", |s| s.labels["outcome"].clone())
}

// ---------------------------------------------------------------------------
// A small deterministic PRNG for shuffles and subsets (SplitMix64)
// ---------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// 128 cases per property: the whole file runs in seconds in a debug build.
/// Failures are not persisted to files; proptest prints the minimal input.
fn config() -> ProptestConfig {
    ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// (a) Arrival order does not matter: any permutation of the messages
    /// gives the same output, byte for byte, as the clean ordered delivery,
    /// self-metrics and the applied/duplicate split included.
    #[test]
    fn a_any_permutation_gives_identical_output(fleet in fleet(), seed in any::<u64>()) {
        let ordered = lines(&render(&fleet));
        let mut shuffled = ordered.clone();
        Rng(seed).shuffle(&mut shuffled);
        let clean = replay(&[jsonl(&ordered)]);
        let permuted = replay(&[jsonl(&shuffled)]);
        prop_assert!(
            domain_series(&clean) == domain_series(&permuted),
            "domain series differ after a permutation:\n{}",
            diff(&domain_series(&clean), &domain_series(&permuted))
        );
        // The whole output, the events' applied/duplicate split included (issue 12).
        prop_assert_eq!(&clean, &permuted);
    }

    /// (b) At-least-once delivery: duplicating any subset of the messages
    /// (some several times) and shuffling changes no domain series, and every
    /// line is counted exactly once as applied, duplicate, ignored or rejected.
    #[test]
    fn b_duplicates_change_no_domain_series(fleet in fleet(), seed in any::<u64>()) {
        let messages = render(&fleet);
        let ordered = lines(&messages);
        let mut rng = Rng(seed);
        let mut delivered = Vec::new();
        for line in &ordered {
            let copies = match rng.below(6) { 0..=2 => 1, 3 | 4 => 2, _ => 3 };
            delivered.extend(std::iter::repeat_n(line.clone(), copies));
        }
        rng.shuffle(&mut delivered);
        let clean = replay(&[jsonl(&ordered)]);
        let noisy = replay(&[jsonl(&delivered)]);
        prop_assert!(
            domain_series(&clean) == domain_series(&noisy),
            "domain series differ with duplicates:\n{}",
            diff(&domain_series(&clean), &domain_series(&noisy))
        );
        let counted = events(&noisy);
        let total: f64 = counted.values().sum();
        prop_assert_eq!(total, delivered.len() as f64, "outcomes {:?}", counted);
        prop_assert_eq!(counted["rejected"], 0.0);
        let noise = fleet.noise.len() as f64;
        let clean_events = events(&clean);
        prop_assert_eq!(clean_events["ignored"], noise);
        prop_assert!(counted["ignored"] >= noise && counted["ignored"] <= 3.0 * noise);
        // The clean delivery applies at least one message per deployment,
        // and a copy of a message never counts as applied.
        prop_assert!(counted["applied"] <= clean_events["applied"] + clean_events["duplicate"]);
        prop_assert!(clean_events["applied"] >= fleet.deployments.len() as f64);
    }

    /// (c) Splitting the stream across several files, replayed in any order,
    /// gives the same output as one file holding the same lines in the same
    /// order (byte-identical, events included), and the same domain series as
    /// the clean ordered single file.
    #[test]
    fn c_splitting_across_files_changes_nothing(fleet in fleet(), seed in any::<u64>(), parts in 2usize..6) {
        let ordered = lines(&render(&fleet));
        let mut rng = Rng(seed);
        let mut files: Vec<Vec<Vec<u8>>> = vec![Vec::new(); parts];
        for line in &ordered {
            files[rng.below(parts)].push(line.clone());
        }
        rng.shuffle(&mut files);
        let buffers: Vec<Vec<u8>> = files.iter().map(jsonl).collect();
        let split = replay(&buffers);
        let concatenated: Vec<Vec<u8>> = files.concat();
        let one_file = replay(&[jsonl(&concatenated)]);
        prop_assert!(split == one_file, "split vs one file:\n{}", diff(&one_file, &split));
        let clean = replay(&[jsonl(&ordered)]);
        prop_assert!(
            domain_series(&clean) == domain_series(&split),
            "split vs clean:\n{}",
            diff(&domain_series(&clean), &domain_series(&split))
        );
    }

    /// (d) The totals are right, against counts computed here from the truth:
    /// finished deployments per group, creator and status; deployments in
    /// progress; DORA change failures (a change is any creator but
    /// autoscaling or a rollback; a failure failed, stopped or was rolled
    /// back); finished rollbacks per status and their time-to-rollback
    /// observations.
    #[test]
    fn d_totals_match_the_truth(fleet in fleet(), seed in any::<u64>()) {
        let mut delivered = lines(&render(&fleet));
        Rng(seed).shuffle(&mut delivered);
        let samples = parse(&replay(&[jsonl(&delivered)]));
        let want = expected(&fleet);

        let deployments = sum_by(&samples, "codedeploy_deployments_total", |s| {
            (group_of(s), s.labels["creator"].clone(), s.labels["status"].clone())
        });
        let nonzero: BTreeMap<_, _> = deployments.into_iter().filter(|(_, n)| *n != 0.0).collect();
        prop_assert_eq!(&nonzero, &want.deployments, "codedeploy_deployments_total");

        // Per group, the sum over every label equals the finished deployments.
        let per_group = sum_by(&samples, "codedeploy_deployments_total", group_of);
        for (g, n) in &per_group {
            let finished = fleet.deployments.iter()
                .filter(|d| d.end.is_terminal() && group_labels(&GROUPS[d.group]) == *g)
                .count() as f64;
            prop_assert_eq!(*n, finished, "finished deployments of {:?}", g);
        }

        let in_progress = sum_by(&samples, "codedeploy_deployments_in_progress", group_of);
        prop_assert_eq!(&in_progress, &want.in_progress, "codedeploy_deployments_in_progress");
        let change_failures = sum_by(&samples, "codedeploy_change_failures_total", group_of);
        prop_assert_eq!(&change_failures, &want.change_failures, "codedeploy_change_failures_total");
        let configs = sum_by(&samples, "codedeploy_deployments_total", |s| {
            (group_of(s), s.labels["deployment_config"].clone(), s.labels["status"].clone())
        });
        let nonzero: BTreeMap<_, _> = configs.into_iter().filter(|(_, n)| *n != 0.0).collect();
        prop_assert_eq!(&nonzero, &want.configs, "codedeploy_deployments_total by deployment_config");
        let rollbacks = sum_by(&samples, "codedeploy_rollbacks_total", |s| {
            (group_of(s), s.labels["status"].clone(), s.labels["cause"].clone())
        });
        prop_assert_eq!(&rollbacks, &want.rollbacks, "codedeploy_rollbacks_total");
        let alarm_stops = sum_by(&samples, "codedeploy_alarm_stops_total", |s| (group_of(s), s.labels["alarm"].clone()));
        prop_assert_eq!(&alarm_stops, &want.alarm_stops, "codedeploy_alarm_stops_total");
        let rollback_durations = sum_by(&samples, "codedeploy_rollback_duration_seconds_count", group_of);
        prop_assert_eq!(&rollback_durations, &want.rollback_durations, "codedeploy_rollback_duration_seconds_count");
    }

    /// (d, durations) Every finished deployment with a known start (a
    /// createTime from a trigger or the API, or a START event) is observed
    /// once in `codedeploy_deployment_duration_seconds`; one with no known
    /// start is not (SPEC "Durations").
    #[test]
    fn d_duration_observed_once_per_finished_deployment_with_a_known_start(fleet in fleet()) {
        let samples = parse(&replay(&[jsonl(&lines(&render(&fleet)))]));
        let durations = sum_by(&samples, "codedeploy_deployment_duration_seconds_count", group_of);
        prop_assert_eq!(&durations, &expected(&fleet).durations, "codedeploy_deployment_duration_seconds_count");
    }

    /// (e) Malformed lines (truncated JSON, garbage, non-UTF-8 bytes, an SNS
    /// envelope around a truncated trigger, an unknown state, JSON that is no
    /// message) mixed in anywhere never panic, are each counted as rejected
    /// and reported at their own line, and change no domain series.
    #[test]
    fn e_malformed_lines_are_rejected_and_change_nothing(
        fleet in fleet(),
        seed in any::<u64>(),
        bad in prop::collection::vec((0u8..9, any::<u16>()), 1..7),
    ) {
        let ordered = lines(&render(&fleet));
        let mut rng = Rng(seed);
        let mut mixed: Vec<(bool, Vec<u8>)> = ordered.iter().map(|l| (false, l.clone())).collect();
        for (kind, pick) in &bad {
            let line = malformed(*kind, *pick, &ordered);
            let at = rng.below(mixed.len() + 1);
            mixed.insert(at, (true, line));
        }
        let buffer = jsonl(mixed.iter().map(|(_, l)| l));
        let (noisy, rejections) = replay_with_rejections(&[buffer]);
        let clean = replay(&[jsonl(&ordered)]);
        prop_assert!(
            domain_series(&clean) == domain_series(&noisy),
            "domain series differ with malformed lines:\n{}",
            diff(&domain_series(&clean), &domain_series(&noisy))
        );
        let counted = events(&noisy);
        prop_assert_eq!(counted["rejected"], bad.len() as f64);
        prop_assert_eq!(counted.values().sum::<f64>(), mixed.len() as f64);
        let want: Vec<(usize, Position)> = mixed
            .iter()
            .enumerate()
            .filter(|(_, (bad, _))| *bad)
            .map(|(i, _)| (0, Position::Line(i + 1)))
            .collect();
        prop_assert_eq!(rejections, want);
    }
}

// ---------------------------------------------------------------------------
// Live delivery (`serve`) against `replay`
// ---------------------------------------------------------------------------

/// The settle time of the live exporter: the whole stream arrives within half
/// of it, the bound within which `serve` promises `replay`'s figures.
const SETTLE: i64 = 10 * MINUTE;

/// What `serve` does with a stream of (ingest time, message), through the
/// library and the real store: messages in batches of those that arrived
/// together, each batch folded, settled and committed like the writer does;
/// sometimes the process dies before a batch is committed (the batch is lost
/// and sent again a little later) or right after (the store is reopened and
/// the ledger restored, its timers restarted). At the end the clock runs
/// past every settle time.
fn live(arrivals: Vec<(i64, Vec<u8>)>, rng: &mut Rng) -> String {
    use codedeploy_exporter::store::{RedbStore, Store};
    let directory = tempfile::tempdir().expect("a temporary directory");
    let mut store = RedbStore::open(directory.path()).expect("a new store");
    let mut exporter = Exporter::restore(SETTLE, store.load().expect("empty store"));
    let mut pending: std::collections::BTreeMap<(i64, usize), Vec<u8>> =
        arrivals.into_iter().enumerate().map(|(i, (at, line))| ((at, i), line)).collect();
    let mut resent = pending.len();
    let mut now = NOW;
    while let Some((&(first, _), _)) = pending.first_key_value() {
        now = now.max(first);
        let size = 1 + rng.below(6);
        let mut batch = Vec::new();
        while batch.len() < size && pending.first_key_value().is_some_and(|((at, _), _)| *at <= now) {
            batch.extend(pending.pop_first().map(|(_, line)| line));
        }
        for line in &batch {
            // Rejections are not what this property is about.
            let _ = exporter.ingest(Source::Webhook, line, now);
        }
        exporter.settle(now, false);
        let crash = rng.below(14);
        if crash == 0 {
            // Killed before the commit: the sender retries what was not acknowledged.
            for line in batch {
                let retry_at = now + SECOND + rng.below(MINUTE as usize) as i64;
                pending.insert((retry_at, resent), line);
                resent += 1;
            }
        } else {
            exporter.commit_to(&mut store).expect("commit");
        }
        if crash <= 1 {
            drop(store);
            store = RedbStore::open(directory.path()).expect("the store reopens");
            exporter = Exporter::restore(SETTLE, store.load().expect("the store loads"));
            exporter.resume(now);
        }
    }
    for _ in 0..4 {
        now += SETTLE;
        exporter.settle(now, false);
        exporter.commit_to(&mut store).expect("commit");
    }
    exporter.exposition(NOW).render(Format::Text)
}

/// Everything but the exporter's self-metrics, which describe the delivery.
fn figures(exposition: &str) -> String {
    exposition.lines().filter(|l| !l.contains("codedeploy_exporter_")).map(|l| format!("{l}\n")).collect()
}

proptest! {
    // Each case opens a store and commits a few dozen times (an fsync each).
    #![proptest_config(ProptestConfig { cases: 64, ..config() })]

    /// (f) `serve` reaches `replay`'s figures when the whole stream arrives
    /// at once: in any order, with re-deliveries, across crashes and
    /// restarts, the domain series equal `replay`'s of the same messages, and
    /// nothing had to be counted as too late.
    #[test]
    fn f_live_burst_with_restarts_equals_replay(fleet in fleet(), seed in any::<u64>()) {
        let ordered = lines(&render(&fleet));
        let mut rng = Rng(seed);
        let mut delivered = Vec::new();
        for line in &ordered {
            delivered.extend(std::iter::repeat_n(line.clone(), 1 + usize::from(rng.below(4) == 0)));
        }
        rng.shuffle(&mut delivered);
        let arrivals: Vec<(i64, Vec<u8>)> =
            delivered.into_iter().map(|line| (NOW + rng.below((SETTLE / 2) as usize) as i64, line)).collect();
        let live = live(arrivals, &mut rng);
        let replayed = replay(&[jsonl(&ordered)]);
        prop_assert!(
            figures(&replayed) == figures(&live),
            "live delivery differs from replay:\n{}",
            diff(&figures(&replayed), &figures(&live))
        );
        prop_assert!(!live.contains("late_for_recovery"), "nothing arrived too late");
    }

    /// (f, as it happens) The same when the messages arrive as things
    /// happen, each up to half the settle time late (re-deliveries later
    /// still), so that deployments whose API details are complete are
    /// counted before earlier ones whose events are still on their way.
    #[test]
    fn f_live_as_it_happens_equals_replay(fleet in fleet(), seed in any::<u64>()) {
        let messages = render(&fleet);
        let mut rng = Rng(seed);
        let mut arrivals = Vec::new();
        for m in &messages {
            for _ in 0..1 + usize::from(rng.below(4) == 0) {
                arrivals.push((m.at + rng.below((SETTLE / 2) as usize) as i64, m.line.clone()));
            }
        }
        let live = live(arrivals, &mut rng);
        let replayed = replay(&[jsonl(&lines(&messages))]);
        prop_assert!(
            figures(&replayed) == figures(&live),
            "live delivery differs from replay:\n{}",
            diff(&figures(&replayed), &figures(&live))
        );
        prop_assert!(!live.contains("late_for_recovery"), "nothing arrived too late");
    }
}

/// A line the exporter must reject. None of them is blank (blank lines are
/// skipped, not counted) and none is a JSON array (a file made of one array
/// is read as a whole document).
fn malformed(kind: u8, pick: u16, good: &[Vec<u8>]) -> Vec<u8> {
    let some_line = &good[usize::from(pick) % good.len()];
    match kind {
        // Truncated JSON: any proper prefix of an object.
        0 | 1 => some_line[..1 + usize::from(pick) % (some_line.len() - 1)].to_vec(),
        2 => b"this is not JSON at all".to_vec(),
        // Not UTF-8: Latin-1 bytes inside an otherwise plausible line.
        3 => {
            let mut line = b"{\"source\":\"aws.codedeploy\",\"note\":\"".to_vec();
            line.extend_from_slice(&[0xE9, 0xFF, 0xFE]);
            line.extend_from_slice(b"\"}");
            line
        }
        4 => {
            let mut line = vec![0xC3, 0x28];
            line.extend_from_slice(&some_line[1..]);
            line
        }
        // An SNS envelope whose Message is a truncated trigger.
        5 => serde_json::to_vec(&json!({
            "Type": "Notification",
            "TopicArn": "arn:aws:sns:us-east-1:111111111111:codedeploy-events",
            "Subject": "FAILED: AWS CodeDeploy d-PROP00000 in us-east-1 to shop",
            "Message": "{\"region\":\"us-east-1\",\"accountId\":\"111111111111\",\"deploymentId\":\"d-PROP00000\",\"status\":\"FAI",
            "Timestamp": "2025-12-01T00:00:00.000Z",
        }))
        .expect("serialisable"),
        // A recognised format with a state nobody knows.
        6 => serde_json::to_vec(&json!({
            "version": "0",
            "detail-type": "CodeDeploy Deployment State-change Notification",
            "source": "aws.codedeploy",
            "account": "111111111111",
            "region": "us-east-1",
            "time": "2025-12-01T00:00:00Z",
            "resources": [],
            "detail": {"application": "shop", "deploymentGroup": "shop-prod", "deploymentId": "d-PROP00000", "state": "EXPLODED"},
        }))
        .expect("serialisable"),
        7 => b"{}".to_vec(),
        _ => b"42".to_vec(),
    }
}

// ---------------------------------------------------------------------------
// Known bugs, pinned by small deterministic cases (see the properties above)
// ---------------------------------------------------------------------------

fn eb_line(id: &str, state: &str, time: &str) -> String {
    json!({
        "version": "0", "id": format!("{id}-{state}"),
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy", "account": "111111111111", "time": time, "region": "us-east-1",
        "resources": [],
        "detail": {"region": "us-east-1", "application": "shop", "deploymentId": id, "state": state, "deploymentGroup": "shop-prod"},
    })
    .to_string()
}

fn duration_count(exposition: &str) -> f64 {
    sum_by(&parse(exposition), "codedeploy_deployment_duration_seconds_count", |_| ()).values().sum()
}

/// SPEC "Durations": "with no known start, no duration is observed". Here the
/// start is known (the API's createTime, from a poll while the deployment
/// ran) and so is the end (the SUCCESS event): the duration is observed.
#[test]
fn duration_observed_with_create_time_and_terminal_event_only() {
    let lines = [
        json!({"deploymentInfo": {
            "applicationName": "shop", "deploymentGroupName": "shop-prod", "deploymentId": "d-MIXED0001",
            "status": "InProgress", "createTime": 1_764_547_200.5, "creator": "user",
        }})
        .to_string(),
        eb_line("d-MIXED0001", "SUCCESS", "2025-12-01T00:10:00Z"),
    ];
    let out = replay(&[format!("{}\n", lines.join("\n")).into_bytes()]);
    assert_eq!(
        duration_count(&out),
        1.0,
        "a finished deployment with a known createTime observes a duration:\n{}",
        out.lines().filter(|l| l.contains("duration_seconds_count")).collect::<Vec<_>>().join("\n")
    );
}

/// SPEC "Durations": START event → terminal event. A blue/green READY event
/// comes mid-deployment and is not a start, so READY → SUCCESS of a deployment
/// whose start nobody saw observes no duration.
#[test]
fn ready_event_is_not_the_start_of_a_deployment() {
    let lines = [
        eb_line("d-READY0001", "READY", "2025-12-01T00:05:00Z"),
        eb_line("d-READY0001", "SUCCESS", "2025-12-01T00:10:00Z"),
    ];
    let out = replay(&[format!("{}\n", lines.join("\n")).into_bytes()]);
    assert_eq!(duration_count(&out), 0.0, "no START, no createTime: no duration");
}

/// `duplicate` means "a message with the same identity was applied before"
/// (issue 12), not "told the ledger nothing new": a stale in-progress API
/// snapshot is applied whether it arrives before or after the final one, so
/// the whole output, the events' split included, does not depend on the order.
#[test]
fn a_stale_snapshot_is_applied_in_any_order() {
    let progress = json!({"deploymentInfo": {
        "applicationName": "shop", "deploymentGroupName": "shop-prod", "deploymentId": "d-ORDER0001",
        "status": "InProgress", "createTime": 1_764_547_200.5, "creator": "user",
    }})
    .to_string();
    let done = json!({"deploymentInfo": {
        "applicationName": "shop", "deploymentGroupName": "shop-prod", "deploymentId": "d-ORDER0001",
        "status": "Succeeded", "createTime": 1_764_547_200.5, "completeTime": 1_764_547_800.25, "creator": "user",
    }})
    .to_string();
    let start = eb_line("d-ORDER0001", "START", "2025-12-01T00:00:01Z");
    let forward = replay(&[format!("{start}\n{progress}\n{done}\n").into_bytes()]);
    let backward = replay(&[format!("{start}\n{done}\n{progress}\n").into_bytes()]);
    assert_eq!(forward, backward);
    let outcome = |out: &str, outcome: &str| {
        let series = format!("codedeploy_exporter_events_total{{source=\"replay\",outcome=\"{outcome}\"}} ");
        out.lines().find_map(|l| l.strip_prefix(&series)).map(|v| v.to_owned())
    };
    assert_eq!(outcome(&forward, "applied").as_deref(), Some("3"));
    assert_eq!(outcome(&forward, "duplicate").as_deref(), Some("0"));
}

/// SPEC "Identity": API output (no account, no region) joins the record with
/// the same deploymentId "when there is exactly one such record; otherwise
/// it stands alone", and "any arrival order must give the same final
/// metrics": with two accounts holding the same id, the API details stand
/// alone whatever the order (the ledger resolves them when settling).
#[test]
fn api_output_resolves_the_same_way_in_any_order_when_two_accounts_share_an_id() {
    let event = |account: &str| {
        json!({
            "version": "0", "id": format!("twin-{account}"),
            "detail-type": "CodeDeploy Deployment State-change Notification",
            "source": "aws.codedeploy", "account": account, "time": "2025-12-01T00:05:01Z", "region": "us-east-1",
            "resources": [],
            "detail": {"region": "us-east-1", "application": "app", "deploymentId": "d-TWIN00001", "state": "SUCCESS", "deploymentGroup": "grp"},
        })
        .to_string()
    };
    let api = json!({"deploymentInfo": {
        "applicationName": "app", "deploymentGroupName": "grp", "deploymentId": "d-TWIN00001",
        "status": "Succeeded", "createTime": 1_764_547_200.5, "completeTime": 1_764_547_500.5, "creator": "autoscaling",
    }})
    .to_string();
    let (one, two) = (event("111111111111"), event("222222222222"));
    let run = |order: [&String; 3]| {
        let text = format!("{}\n{}\n{}\n", order[0], order[1], order[2]);
        domain_series(&replay(&[text.into_bytes()]))
    };
    let between = run([&one, &api, &two]);
    let after = run([&one, &two, &api]);
    assert!(between == after, "the API details land elsewhere by arrival order:\n{}", diff(&between, &after));
}
