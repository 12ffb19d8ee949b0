//! Bounds on what input can make the exporter keep: groups, deployments not
//! counted yet, label values, times.
//!
//! Whoever may send messages (the webhook's secret, `sqs:SendMessage` on the
//! queue) could otherwise grow the ledger, the store and every scrape without
//! end: a new group per message, a new error code or hook name per
//! deployment. Two kinds of bound:
//! - a message that would pass a table's limit (`--limits.max-groups`,
//!   `--limits.max-tracked`), carries a label value longer than
//!   [`MAX_LABEL_CHARS`] or a time more than [`MAX_FUTURE_MS`] ahead is
//!   refused as a whole, with a reason ([`Limit`]);
//! - label values a counted deployment brings are kept to the values AWS
//!   documents (and a few custom hooks and deployment configurations per
//!   group, and as many alarms as a group can have); anything else is
//!   counted under `other`. Both paths add to `codedeploy_exporter_limited_total{limit}`.
//!
//! The table limits and the time bound are `serve`'s ([`Limits::serving`]);
//! `replay` reads files its user chose and holds them all until its one
//! settle. The label bounds hold everywhere, so `serve` and `replay` of the
//! same messages still agree.

use serde::{Deserialize, Serialize};

use crate::domain::{Millis, Observation};

/// Longest label value taken from input. CodeDeploy's own names are at most
/// 100 characters (applications, deployment groups); anything longer is no
/// CodeDeploy data.
pub const MAX_LABEL_CHARS: usize = 128;

/// How far ahead of the ingest clock an event time may be: clocks disagree
/// by seconds, not days.
pub const MAX_FUTURE_MS: Millis = 24 * 3600 * 1000;

/// Hook names beyond the documented ones a group may show before the rest
/// become `other`.
pub const CUSTOM_HOOKS_PER_GROUP: usize = 4;

/// Custom deployment configuration names (beyond AWS's built-in ones) a
/// group may show before the rest become `other`.
pub const CUSTOM_CONFIGS_PER_GROUP: usize = 4;

/// Alarms a group may show in `codedeploy_alarm_stops_total`: CodeDeploy
/// lets a deployment group have ten; more names than that are no CodeDeploy data.
pub const ALARMS_PER_GROUP: usize = 10;

/// The label value that stands for every value past a bound.
pub const OTHER: &str = "other";

/// `errorInformation.code` (the API's ErrorCode enum, plus the one the user
/// guide adds).
const ERROR_CODES: [&str; 35] = [
    "AGENT_ISSUE",
    "ALARM_ACTIVE",
    "APPLICATION_MISSING",
    "AUTOSCALING_VALIDATION_ERROR",
    "AUTO_SCALING_CONFIGURATION",
    "AUTO_SCALING_IAM_ROLE_PERMISSIONS",
    "CLOUDFORMATION_STACK_FAILURE",
    "CODEDEPLOY_RESOURCE_CANNOT_BE_FOUND",
    "CUSTOMER_APPLICATION_UNHEALTHY",
    "DEPLOYMENT_GROUP_MISSING",
    "ECS_UPDATE_ERROR",
    "ELASTIC_LOAD_BALANCING_INVALID",
    "ELB_INVALID_INSTANCE",
    "HEALTH_CONSTRAINTS",
    "HEALTH_CONSTRAINTS_INVALID",
    "HOOK_EXECUTION_FAILURE",
    "IAM_ROLE_MISSING",
    "IAM_ROLE_PERMISSIONS",
    "INTERNAL_ERROR",
    "INVALID_ECS_SERVICE",
    "INVALID_LAMBDA_CONFIGURATION",
    "INVALID_LAMBDA_FUNCTION",
    "INVALID_REVISION",
    "MANUAL_STOP",
    "MISSING_BLUE_GREEN_DEPLOYMENT_CONFIGURATION",
    "MISSING_ELB_INFORMATION",
    "MISSING_GITHUB_TOKEN",
    "NO_EC2_SUBSCRIPTION",
    "NO_INSTANCES",
    "OVER_MAX_INSTANCES",
    "RESOURCE_LIMIT_EXCEEDED",
    "REVISION_MISSING",
    "THROTTLED",
    "TIMEOUT",
    "UNABLE_TO_SEND_ASG",
];

/// The API's DeploymentCreator enum.
const CREATORS: [&str; 8] = [
    "user",
    "autoscaling",
    "autoscalingTermination",
    "codeDeployRollback",
    "CodeDeploy",
    "CodeDeployAutoUpdate",
    "CloudFormation",
    "CloudFormationRollback",
];

/// AWS's built-in deployment configurations, per compute platform: EC2/on-premises,
/// Lambda, ECS.
const DEPLOYMENT_CONFIGS: [&str; 17] = [
    "CodeDeployDefault.AllAtOnce",
    "CodeDeployDefault.HalfAtATime",
    "CodeDeployDefault.OneAtATime",
    "CodeDeployDefault.LambdaAllAtOnce",
    "CodeDeployDefault.LambdaCanary10Percent5Minutes",
    "CodeDeployDefault.LambdaCanary10Percent10Minutes",
    "CodeDeployDefault.LambdaCanary10Percent15Minutes",
    "CodeDeployDefault.LambdaCanary10Percent30Minutes",
    "CodeDeployDefault.LambdaLinear10PercentEvery1Minute",
    "CodeDeployDefault.LambdaLinear10PercentEvery2Minutes",
    "CodeDeployDefault.LambdaLinear10PercentEvery3Minutes",
    "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes",
    "CodeDeployDefault.ECSAllAtOnce",
    "CodeDeployDefault.ECSCanary10Percent5Minutes",
    "CodeDeployDefault.ECSCanary10Percent15Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery1Minutes",
    "CodeDeployDefault.ECSLinear10PercentEvery3Minutes",
];

/// Lifecycle events of EC2/on-premises (in place, blue/green, with a load
/// balancer), Lambda and ECS, scriptable or not.
const HOOKS: [&str; 18] = [
    "ApplicationStop",
    "DownloadBundle",
    "BeforeInstall",
    "Install",
    "AfterInstall",
    "ApplicationStart",
    "ValidateService",
    "BeforeBlockTraffic",
    "BlockTraffic",
    "AfterBlockTraffic",
    "BeforeAllowTraffic",
    "AllowTraffic",
    "AfterAllowTraffic",
    "AllowTestTraffic",
    "AfterAllowTestTraffic",
    "TestTraffic",
    "Start",
    "End",
];

/// A lifecycle event's `diagnostics.errorCode`.
const HOOK_ERROR_CODES: [&str; 6] =
    ["Success", "ScriptMissing", "ScriptNotExecutable", "ScriptTimedOut", "ScriptFailed", "UnknownError"];

/// What stands for a value no input gave; never bounded.
pub const UNKNOWN: &str = "unknown";

/// A bound that input ran into; the `limit` label of
/// `codedeploy_exporter_limited_total` and, for refusals, the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Limit {
    /// A message of a new group past `--limits.max-groups` (refused), or a
    /// deployment of one that could not be counted.
    Groups,
    /// A message of a new deployment past `--limits.max-tracked` (refused).
    Tracked,
    /// A label value longer than [`MAX_LABEL_CHARS`] (refused).
    LabelLength,
    /// A time more than [`MAX_FUTURE_MS`] ahead (refused).
    FutureTime,
    /// An error code AWS does not document, counted as `other`.
    ErrorCode,
    /// A creator AWS does not document, counted as `other`.
    Creator,
    /// A hook name past the documented ones and the group's custom ones, counted as `other`.
    LifecycleEvent,
    /// A hook error code AWS does not document, counted as `other`.
    HookErrorCode,
    /// A value of the group info series (a tag's) longer than
    /// [`MAX_LABEL_CHARS`], shown as `other` (see [`crate::group_info`]).
    TagValue,
    /// A custom deployment configuration past the group's first few, counted as `other`.
    DeploymentConfig,
    /// An alarm past the group's ten, or named in more than [`MAX_LABEL_CHARS`]
    /// characters (CloudWatch allows 255), counted as `other`.
    Alarm,
}

impl Limit {
    pub const ALL: [Limit; 11] = [
        Limit::Groups,
        Limit::Tracked,
        Limit::LabelLength,
        Limit::FutureTime,
        Limit::ErrorCode,
        Limit::Creator,
        Limit::LifecycleEvent,
        Limit::HookErrorCode,
        Limit::TagValue,
        Limit::DeploymentConfig,
        Limit::Alarm,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Limit::Groups => "groups",
            Limit::Tracked => "tracked",
            Limit::LabelLength => "label_length",
            Limit::FutureTime => "future_time",
            Limit::ErrorCode => "error_code",
            Limit::Creator => "creator",
            Limit::LifecycleEvent => "lifecycle_event",
            Limit::HookErrorCode => "hook_error_code",
            Limit::TagValue => "tag_value",
            Limit::DeploymentConfig => "deployment_config",
            Limit::Alarm => "alarm",
        }
    }

    /// The rejection reason of a message refused by this limit.
    pub fn reason(self) -> &'static str {
        match self {
            Limit::Groups => "limit_groups",
            Limit::Tracked => "limit_tracked",
            Limit::LabelLength => "label_too_long",
            Limit::FutureTime => "time_in_future",
            Limit::ErrorCode
            | Limit::Creator
            | Limit::LifecycleEvent
            | Limit::HookErrorCode
            | Limit::TagValue
            | Limit::DeploymentConfig
            | Limit::Alarm => "limit_labels",
        }
    }
}

/// The table limits and the time bound; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub max_groups: Option<usize>,
    pub max_tracked: Option<usize>,
    /// Refuse times more than [`MAX_FUTURE_MS`] after the ingest clock.
    pub refuse_future: bool,
}

impl Limits {
    /// `serve`'s bounds.
    pub fn serving(max_groups: usize, max_tracked: usize) -> Limits {
        Limits { max_groups: Some(max_groups), max_tracked: Some(max_tracked), refuse_future: true }
    }
}

/// Why a message is refused: the limit and what ran into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub limit: Limit,
    pub detail: String,
}

/// Refuses an observation with a label value that is too long, or a time
/// too far ahead of `now` (when `refuse_future`).
pub fn check_observation(observation: &Observation, refuse_future: bool, now: Millis) -> Result<(), Refusal> {
    let d = &observation.deployment;
    let texts = [
        ("account", d.account.as_deref()),
        ("region", d.region.as_deref()),
        ("application", observation.application.as_deref()),
        ("deployment group", observation.deployment_group.as_deref()),
        ("creator", observation.creator.as_deref()),
        ("error code", observation.error_code.as_deref()),
        ("compute platform", observation.compute_platform.as_deref()),
        ("deployment type", observation.deployment_type.as_deref()),
        ("deployment config", observation.deployment_config.as_deref()),
    ];
    let hooks = observation.targets.iter().flat_map(|t| &t.lifecycle_events).flat_map(|hook| {
        [("lifecycle event", Some(hook.name.as_str())), ("lifecycle event error code", hook.error_code.as_deref())]
    });
    for (what, text) in texts.into_iter().chain(hooks) {
        // The byte length bounds the character count: most values need no count.
        if let Some(text) = text.filter(|t| t.len() > MAX_LABEL_CHARS && t.chars().count() > MAX_LABEL_CHARS) {
            return Err(Refusal {
                limit: Limit::LabelLength,
                detail: format!("the {what} is {} characters long, over {MAX_LABEL_CHARS}", text.chars().count()),
            });
        }
    }
    if refuse_future {
        let times = [observation.event_time, observation.create_time, observation.start_time, observation.complete_time];
        let hook_times = observation
            .targets
            .iter()
            .flat_map(|t| &t.lifecycle_events)
            .flat_map(|hook| [hook.start_time, hook.end_time]);
        if let Some(ahead) = times.into_iter().chain(hook_times).flatten().filter(|t| *t > now + MAX_FUTURE_MS).max() {
            return Err(Refusal {
                limit: Limit::FutureTime,
                detail: format!("a time {} h ahead of the exporter's clock", (ahead - now) / 3_600_000),
            });
        }
    }
    Ok(())
}

/// The label value to count an error code under.
pub fn error_code(code: &str) -> Result<&str, Limit> {
    documented(code, &ERROR_CODES, Limit::ErrorCode)
}

/// The label value to count a creator under.
pub fn creator(creator: &str) -> Result<&str, Limit> {
    documented(creator, &CREATORS, Limit::Creator)
}

/// The label value to count a hook error code under.
pub fn hook_error_code(code: &str) -> Result<&str, Limit> {
    documented(code, &HOOK_ERROR_CODES, Limit::HookErrorCode)
}

/// Whether a deployment configuration is one of AWS's built-in ones (or `unknown`).
pub fn is_builtin_config(name: &str) -> bool {
    name == UNKNOWN || DEPLOYMENT_CONFIGS.contains(&name)
}

/// Whether an alarm name can be a label value of its own (see [`Limit::Alarm`]).
pub fn alarm_fits(name: &str) -> bool {
    name.len() <= MAX_LABEL_CHARS || name.chars().count() <= MAX_LABEL_CHARS
}

/// Whether a hook name is one AWS documents.
pub fn is_documented_hook(name: &str) -> bool {
    HOOKS.contains(&name)
}

fn documented<'a>(value: &'a str, known: &[&str], limit: Limit) -> Result<&'a str, Limit> {
    if value == UNKNOWN || known.contains(&value) {
        Ok(value)
    } else {
        Err(limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeploymentRef, LifecycleEvent, Provenance, TargetObservation};

    fn observation() -> Observation {
        let deployment = DeploymentRef { account: Some("111111111111".into()), region: Some("us-east-1".into()), deployment_id: "d-1".into() };
        let mut o = Observation::new(deployment, Provenance::Event);
        o.application = Some("app".into());
        o.event_time = Some(1_000);
        o
    }

    #[test]
    fn long_label_values_and_far_future_times_are_refused_with_what_they_are() {
        assert_eq!(check_observation(&observation(), true, 0), Ok(()));
        let mut long = observation();
        long.deployment_group = Some("g".repeat(MAX_LABEL_CHARS + 1).into());
        let refusal = check_observation(&long, false, 0).expect_err("too long");
        assert_eq!((refusal.limit, refusal.detail.as_str()), (Limit::LabelLength, "the deployment group is 129 characters long, over 128"));
        let mut config = observation();
        config.deployment_config = Some("c".repeat(MAX_LABEL_CHARS + 1).into());
        let refusal = check_observation(&config, false, 0).expect_err("too long");
        assert_eq!(refusal.detail, "the deployment config is 129 characters long, over 128");
        let mut alarms = observation();
        alarms.activated_alarms = vec!["a".repeat(255).into()];
        assert_eq!(check_observation(&alarms, false, 0), Ok(()), "CloudWatch allows 255: bounded when counted instead");
        let mut hook = observation();
        hook.targets.push(TargetObservation {
            target_id: "i-1".into(),
            status: None,
            lifecycle_events: vec![LifecycleEvent { name: "x".repeat(200).into(), status: None, start_time: None, end_time: None, error_code: None }],
        });
        assert_eq!(check_observation(&hook, false, 0).map_err(|r| r.limit), Err(Limit::LabelLength));
        let mut ahead = observation();
        ahead.complete_time = Some(MAX_FUTURE_MS + 2 * 3_600_000);
        assert_eq!(check_observation(&ahead, true, 0).map_err(|r| r.limit), Err(Limit::FutureTime));
        assert_eq!(check_observation(&ahead, false, 0), Ok(()), "replay refuses no time");
        assert_eq!(check_observation(&ahead, true, 3 * 3_600_000), Ok(()), "within a day of the clock");
    }

    #[test]
    fn documented_values_pass_and_the_rest_are_bounded() {
        assert_eq!(error_code("HEALTH_CONSTRAINTS"), Ok("HEALTH_CONSTRAINTS"));
        assert_eq!(error_code("unknown"), Ok("unknown"));
        assert_eq!(error_code("EVIL_0001"), Err(Limit::ErrorCode));
        assert_eq!(creator("codeDeployRollback"), Ok("codeDeployRollback"));
        assert_eq!(creator("mallory"), Err(Limit::Creator));
        assert_eq!(hook_error_code("ScriptFailed"), Ok("ScriptFailed"));
        assert!(is_documented_hook("AfterAllowTestTraffic") && !is_documented_hook("MyHook"));
        assert!(is_builtin_config("CodeDeployDefault.LambdaCanary10Percent5Minutes") && is_builtin_config("unknown"));
        assert!(!is_builtin_config("CodeDeployDefault.Mine") && !is_builtin_config("TwoAtATime"));
        assert!(alarm_fits(&"é".repeat(MAX_LABEL_CHARS)) && !alarm_fits(&"a".repeat(MAX_LABEL_CHARS + 1)));
        assert!(Limit::ALL.iter().all(|l| !l.label().is_empty() && !l.reason().is_empty()));
    }
}
