//! The wire formats: one function per kind of message AWS sends or answers, each building the
//! JSON the way the real service shapes it (field names, casing, time encodings, strings that
//! hold JSON).

use chrono::{DateTime, Utc};
use fastrand::Rng;
use serde_json::{json, Value};

use super::{uuid, Deployment, Hook, Overview, Platform, Target, SECOND};
use crate::domain::Millis;

/// Every message of one deployment, with the time it is sent.
pub(super) fn render(rng: &mut Rng, d: &Deployment) -> Vec<(Millis, String)> {
    let spec = d.spec();
    let mut out = Vec::new();
    if spec.notify.sns() {
        out.push((
            d.create_time,
            sns_notification(rng, d, "CREATED", d.create_time),
        ));
        out.push((
            d.start_time,
            sns_notification(rng, d, "IN_PROGRESS", d.start_time),
        ));
        if let Some(ready) = d.ready_time {
            out.push((ready, sns_notification(rng, d, "READY", ready)));
        }
        let status = match d.status {
            "Succeeded" => "SUCCEEDED",
            "Failed" => "FAILED",
            _ => "STOPPED",
        };
        out.push((
            d.complete_time,
            sns_notification(rng, d, status, d.complete_time),
        ));
    }
    if spec.notify.eventbridge() {
        out.push((
            d.start_time,
            eventbridge_deployment(rng, d, "START", d.start_time),
        ));
        if let Some(ready) = d.ready_time {
            out.push((ready, eventbridge_deployment(rng, d, "READY", ready)));
        }
        // Instance events exist for EC2/on-premises targets only.
        if spec.platform == Platform::Server {
            for target in &d.targets {
                if let Some(start) = target.first_start() {
                    out.push((start, eventbridge_instance(rng, d, target, "START", start)));
                }
                let end = target.last_end().unwrap_or(d.complete_time);
                match target.status() {
                    "Succeeded" => {
                        out.push((end, eventbridge_instance(rng, d, target, "SUCCESS", end)))
                    }
                    "Failed" => {
                        out.push((end, eventbridge_instance(rng, d, target, "FAILURE", end)))
                    }
                    _ => {}
                }
            }
        }
        let state = match d.status {
            "Succeeded" => "SUCCESS",
            "Failed" => "FAILURE",
            _ => "STOP",
        };
        out.push((
            d.complete_time,
            eventbridge_deployment(rng, d, state, d.complete_time),
        ));
    }
    // The poller catches the deployment in progress a few times, then sees it finished.
    for quarter in 1..=3 {
        let at = d.start_time + (d.complete_time - d.start_time) * quarter / 4;
        if at > d.start_time && at < d.complete_time {
            out.push((at, deployment_info(d, Some(at))));
        }
    }
    let polled = d.complete_time + rng.i64(SECOND..=4 * SECOND);
    out.push((polled, deployment_info(d, None)));
    out.push((polled, deployment_targets(d)));
    out
}

/// "CodeDeploy Deployment State-change Notification".
fn eventbridge_deployment(rng: &mut Rng, d: &Deployment, state: &str, at: Millis) -> String {
    let spec = d.spec();
    json!({
        "version": "0",
        "id": uuid(rng),
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "account": spec.account,
        "time": rfc3339_seconds(at),
        "region": spec.region,
        "resources": [application_arn(d), deployment_group_arn(d)],
        "detail": {
            "instanceGroupId": d.instance_group_id,
            "region": spec.region,
            "application": spec.application,
            "deploymentId": d.id,
            "state": state,
            "deploymentGroup": spec.group,
        },
    })
    .to_string()
}

/// "CodeDeploy Instance State-change Notification" for one EC2 instance.
fn eventbridge_instance(
    rng: &mut Rng,
    d: &Deployment,
    target: &Target,
    state: &str,
    at: Millis,
) -> String {
    let spec = d.spec();
    json!({
        "version": "0",
        "id": uuid(rng),
        "detail-type": "CodeDeploy Instance State-change Notification",
        "source": "aws.codedeploy",
        "account": spec.account,
        "time": rfc3339_seconds(at),
        "region": spec.region,
        "resources": [instance_arn(d, target), deployment_group_arn(d), application_arn(d)],
        "detail": {
            "instanceId": target.id,
            "region": spec.region,
            "state": state,
            "application": spec.application,
            "deploymentId": d.id,
            "instanceGroupId": d.instance_group_id,
            "deploymentGroup": spec.group,
        },
    })
    .to_string()
}

/// An SNS notification (as delivered to SQS or HTTP) around a deployment trigger message, in
/// the shape real triggers have: upper-case status, Java date strings, `completeTime` null until
/// the end, and nested objects encoded as JSON strings.
fn sns_notification(rng: &mut Rng, d: &Deployment, status: &str, at: Millis) -> String {
    let spec = d.spec();
    let finished = matches!(status, "SUCCEEDED" | "FAILED" | "STOPPED");
    let mut trigger = json!({
        "region": spec.region,
        "accountId": spec.account,
        "eventTriggerName": format!("{}-{}-deployments", spec.application, spec.group),
        "applicationName": spec.application,
        "deploymentId": d.id,
        "deploymentGroupName": spec.group,
        "createTime": java_date(d.create_time),
        "completeTime": if finished { Value::String(java_date(d.complete_time)) } else { Value::Null },
        "status": status,
    });
    if finished {
        let o = d.overview(None);
        let overview = json!({
            "Succeeded": o.succeeded, "Failed": o.failed, "Skipped": o.skipped,
            "InProgress": o.in_progress, "Pending": o.pending,
        });
        trigger["deploymentOverview"] = Value::String(overview.to_string());
        if let Some((code, message)) = &d.error {
            trigger["errorInformation"] =
                Value::String(json!({"ErrorCode": code, "ErrorMessage": message}).to_string());
        }
    }
    if let Some(of) = &d.rollback_of {
        let information = json!({
            "RollbackMessage": rollback_message(&d.id, of),
            "RollbackTriggeringDeploymentId": of,
        });
        trigger["rollbackInformation"] = Value::String(information.to_string());
    } else if finished && d.status != "Succeeded" {
        trigger["rollbackInformation"] = Value::String("{}".to_string());
    }

    let topic = format!(
        "arn:aws:sns:{}:{}:codedeploy-{}",
        spec.region, spec.account, spec.application
    );
    let host = format!("https://sns.{}.amazonaws.com", spec.region);
    let signature: String = (0..342)
        .map(|_| BASE64[rng.usize(..BASE64.len())] as char)
        .chain("==".chars())
        .collect();
    json!({
        "Type": "Notification",
        "MessageId": uuid(rng),
        "TopicArn": topic,
        "Subject": format!("{status}: AWS CodeDeploy {} in {} to {}", d.id, spec.region, spec.application),
        "Message": trigger.to_string(),
        "Timestamp": rfc3339_millis(at),
        "SignatureVersion": "1",
        "Signature": signature,
        // SNS names its signing certificate by a hash; a fixed one will do.
        "SigningCertURL": format!("{host}/SimpleNotificationService-{}.pem", digest(0, 0, 32)),
        "UnsubscribeURL": format!("{host}/?Action=Unsubscribe&SubscriptionArn={topic}:{}", uuid(rng)),
    })
    .to_string()
}

/// GetDeployment output: the finished deployment when `at` is `None`, else the InProgress
/// view a poller gets at `at`.
fn deployment_info(d: &Deployment, at: Option<Millis>) -> String {
    let spec = d.spec();
    let with_traffic_control = spec.blue_green || spec.load_balancer;
    let mut info = json!({
        "applicationName": spec.application,
        "deploymentGroupName": spec.group,
        "deploymentConfigName": d.config,
        "deploymentId": d.id,
        "revision": revision(d),
        "description": description(d),
        "status": if at.is_some() { "InProgress" } else { d.status },
        "createTime": epoch_seconds(d.create_time),
        "startTime": epoch_seconds(d.start_time),
        "deploymentOverview": overview_json(&d.overview(at)),
        "creator": d.creator,
        "ignoreApplicationStopFailures": false,
        "autoRollbackConfiguration": if spec.auto_rollback {
            json!({"enabled": true, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM", "DEPLOYMENT_STOP_ON_REQUEST"]})
        } else {
            json!({"enabled": false})
        },
        "updateOutdatedInstancesOnly": false,
        "deploymentStyle": {
            "deploymentType": if spec.blue_green { "BLUE_GREEN" } else { "IN_PLACE" },
            "deploymentOption": if with_traffic_control { "WITH_TRAFFIC_CONTROL" } else { "WITHOUT_TRAFFIC_CONTROL" },
        },
        // The original instances' termination wait starts once traffic has moved for good.
        "instanceTerminationWaitTimeStarted": spec.platform == Platform::Server
            && spec.blue_green
            && at.is_none()
            && d.status == "Succeeded"
            && d.rollback_of.is_none(),
        "deploymentStatusMessages": [],
        "computePlatform": spec.platform.api_name(),
    });
    if at.is_none() {
        info["completeTime"] = epoch_seconds(d.complete_time);
        if let Some((code, message)) = &d.error {
            info["errorInformation"] = json!({"code": code, "message": message});
        }
    }
    if let Some(of) = &d.rollback_of {
        info["rollbackInfo"] = json!({
            "rollbackTriggeringDeploymentId": of,
            "rollbackMessage": rollback_message(&d.id, of),
        });
    } else if let (Some(by), None) = (&d.rolled_back_by, at) {
        info["rollbackInfo"] = json!({
            "rollbackDeploymentId": by,
            "rollbackMessage": rollback_message(by, &d.id),
        });
    }
    json!({ "deploymentInfo": info }).to_string()
}

/// BatchGetDeploymentTargets output for every target of the finished deployment.
fn deployment_targets(d: &Deployment) -> String {
    let spec = d.spec();
    let targets: Vec<Value> = d
        .targets
        .iter()
        .map(|target| {
            let mut body = json!({
                "deploymentId": d.id,
                "targetId": target.id,
                "targetArn": target_arn(d, target),
                "status": target.status(),
                "lastUpdatedAt": epoch_seconds(target.last_end().unwrap_or(d.complete_time)),
                "lifecycleEvents": target.hooks.iter().map(lifecycle_event).collect::<Vec<_>>(),
            });
            let succeeded = d.status == "Succeeded";
            let (kind, key) = match spec.platform {
                Platform::Server => {
                    if let Some(label) = target.label {
                        body["instanceLabel"] = json!(label);
                    }
                    ("InstanceTarget", "instanceTarget")
                }
                Platform::Lambda => {
                    body["lambdaFunctionInfo"] = json!({
                        "functionName": spec.target,
                        "functionAlias": "live",
                        "currentVersion": d.previous_build.to_string(),
                        "targetVersion": d.build.to_string(),
                        "targetVersionWeight": if succeeded { 1.0 } else { 0.0 },
                    });
                    ("LambdaTarget", "lambdaTarget")
                }
                Platform::Ecs => {
                    body["taskSetsInfo"] = json!([
                        task_set(d, d.build, "Green", succeeded),
                        task_set(d, d.previous_build, "Blue", !succeeded),
                    ]);
                    ("ECSTarget", "ecsTarget")
                }
            };
            json!({ "deploymentTargetType": kind, key: body })
        })
        .collect();
    json!({ "deploymentTargets": targets }).to_string()
}

fn lifecycle_event(hook: &Hook) -> Value {
    let Some((start, end)) = hook.run else {
        // Skipped hooks never ran: no times, no diagnostics.
        return json!({"lifecycleEventName": hook.name, "status": "Skipped"});
    };
    let (status, diagnostics) = match &hook.error {
        None => (
            "Succeeded",
            json!({"errorCode": "Success", "scriptName": "", "message": "Succeeded", "logTail": ""}),
        ),
        Some(error) => (
            "Failed",
            json!({
                "errorCode": error.code,
                "scriptName": error.script,
                "message": error.message,
                "logTail": error.log_tail,
            }),
        ),
    };
    json!({
        "lifecycleEventName": hook.name,
        "status": status,
        "startTime": epoch_seconds(start),
        "endTime": epoch_seconds(end),
        "diagnostics": diagnostics,
    })
}

/// One ECS task set; `serving` says whether it ends up with the production traffic.
fn task_set(d: &Deployment, build: u32, label: &str, serving: bool) -> Value {
    let spec = d.spec();
    let service = spec.target.split(':').nth(1).unwrap_or(spec.target);
    json!({
        // The API spells it this way.
        "identifer": format!("ecs-svc/{}", decimal(d.group, build, 19)),
        "desiredCount": 3,
        "pendingCount": 0,
        "runningCount": 3,
        "status": if serving { "PRIMARY" } else { "ACTIVE" },
        "trafficWeight": if serving { 100.0 } else { 0.0 },
        "targetGroup": { "name": format!("{service}-{}", label.to_lowercase()) },
        "taskSetLabel": label,
    })
}

/// The revision a deployment ships: S3 bundle or GitHub commit on Server, AppSpec content on
/// Lambda and ECS. Derived from the build so every deployment of a build names the same one.
/// What a CI pipeline writes into the description for lead time
/// (docs/lead-time.md): the deployed commit and its time, half an hour to
/// three days before the deployment, derived from the build (no random draw,
/// so the rest of the fleet is unchanged).
fn description(d: &Deployment) -> String {
    let spread: Millis = decimal(d.group, d.build + 2_000_000, 6).parse().unwrap_or(0);
    let committed_at = d.create_time - 1_800_000 - spread / 4 * 1000;
    format!("Deployed by pipeline: commit={} committed_at={}", digest(d.group, d.build, 40), rfc3339_millis(committed_at))
}

fn revision(d: &Deployment) -> Value {
    let spec = d.spec();
    match (spec.platform, spec.github_repo) {
        (Platform::Server, Some(repository)) => json!({
            "revisionType": "GitHub",
            "gitHubLocation": { "repository": repository, "commitId": digest(d.group, d.build, 40) },
        }),
        (Platform::Server, None) => json!({
            "revisionType": "S3",
            "s3Location": {
                "bucket": format!("{}-artifacts-{}", spec.application, spec.account),
                "key": format!("{}/{}-build-{}.zip", spec.application, spec.application, d.build),
                "bundleType": "zip",
                "eTag": format!("\"{}\"", digest(d.group, d.build, 32)),
                "version": digest(d.group, d.build + 1_000_000, 32),
            },
        }),
        _ => json!({
            "revisionType": "AppSpecContent",
            // GetDeployment never returns the content itself, only its hash.
            "appSpecContent": { "sha256": digest(d.group, d.build, 64) },
        }),
    }
}

fn overview_json(o: &Overview) -> Value {
    json!({
        "Pending": o.pending,
        "InProgress": o.in_progress,
        "Succeeded": o.succeeded,
        "Failed": o.failed,
        "Skipped": o.skipped,
        "Ready": 0,
    })
}

fn rollback_message(rollback: &str, of: &str) -> String {
    format!("Deployment {rollback} was created to roll back deployment {of}.")
}

fn application_arn(d: &Deployment) -> String {
    let spec = d.spec();
    format!(
        "arn:aws:codedeploy:{}:{}:application:{}",
        spec.region, spec.account, spec.application
    )
}

fn deployment_group_arn(d: &Deployment) -> String {
    let spec = d.spec();
    format!(
        "arn:aws:codedeploy:{}:{}:deploymentgroup:{}/{}",
        spec.region, spec.account, spec.application, spec.group
    )
}

fn instance_arn(d: &Deployment, target: &Target) -> String {
    let spec = d.spec();
    format!(
        "arn:aws:ec2:{}:{}:instance/{}",
        spec.region, spec.account, target.id
    )
}

fn target_arn(d: &Deployment, target: &Target) -> String {
    let spec = d.spec();
    match spec.platform {
        Platform::Server => instance_arn(d, target),
        Platform::Lambda => format!(
            "arn:aws:lambda:{}:{}:function:{}:live",
            spec.region, spec.account, target.id
        ),
        Platform::Ecs => format!(
            "arn:aws:ecs:{}:{}:service/{}",
            spec.region,
            spec.account,
            target.id.replace(':', "/")
        ),
    }
}

const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `len` hex digits that depend only on (group, build): a stand-in for hashes and commit ids.
fn digest(group: usize, build: u32, len: usize) -> String {
    digits(group, build, len, 16)
}

fn decimal(group: usize, build: u32, len: usize) -> String {
    digits(group, build, len, 10)
}

fn digits(group: usize, build: u32, len: usize, radix: u32) -> String {
    // splitmix64: a tiny, well-mixed generator, seeded from the inputs.
    let mut state = (group as u64) << 32 | u64::from(build);
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            char::from_digit((z % u64::from(radix)) as u32, radix).unwrap_or('0')
        })
        .collect()
}

fn datetime(at: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at).unwrap_or_default()
}

/// EventBridge `time`: RFC 3339, whole seconds.
fn rfc3339_seconds(at: Millis) -> String {
    datetime(at).format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// SNS `Timestamp`: RFC 3339 with milliseconds.
fn rfc3339_millis(at: Millis) -> String {
    datetime(at).format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Trigger times, as Java's `Date.toString()` writes them.
fn java_date(at: Millis) -> String {
    datetime(at).format("%a %b %d %H:%M:%S UTC %Y").to_string()
}

/// API timestamps: epoch seconds with a millisecond fraction, as a JSON number.
fn epoch_seconds(at: Millis) -> Value {
    json!(at as f64 / 1000.0)
}
