//! The normalized vocabulary every input format decodes into and the ledger folds.
//!
//! Nothing here knows about JSON, HTTP or AWS SDK types: decoders translate their
//! format into an [`Observation`], and the ledger only ever sees observations.
//! Every field of an observation is optional because each format carries a
//! different subset of the truth (an EventBridge event has a state and a time, an
//! API `DeploymentInfo` has times and a creator but no account or region).

use std::fmt;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC. Integer so that merging and sorting
/// are exact and the fold stays deterministic.
pub type Millis = i64;

/// Where a fact came from, ordered by how much we trust it. When two
/// observations disagree on a field, the higher rank wins; equal ranks are
/// settled by a fixed rule per field, so arrival order never matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Provenance {
    /// EventBridge state-change events: a state and the time it was emitted.
    Event = 1,
    /// CodeDeploy SNS trigger messages: times with second precision.
    Trigger = 2,
    /// CodeDeploy API output (`DeploymentInfo`, deployment targets).
    Api = 3,
}

/// CodeDeploy deployment status (API vocabulary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    Created,
    Queued,
    InProgress,
    Baking,
    Ready,
    Succeeded,
    Failed,
    Stopped,
}

impl Status {
    /// Position in the lattice `Created < Queued < InProgress < (Baking | Ready) < terminal`.
    /// A deployment's status never moves to a lower level.
    pub fn level(self) -> u8 {
        match self {
            Status::Created => 0,
            Status::Queued => 1,
            Status::InProgress => 2,
            Status::Baking | Status::Ready => 3,
            Status::Succeeded | Status::Failed | Status::Stopped => 4,
        }
    }

    pub fn is_terminal(self) -> bool {
        self.level() == 4
    }

    /// Parses any of the three vocabularies case-insensitively: the API's
    /// `InProgress`, SNS triggers' `IN_PROGRESS`, and plain `inprogress`.
    /// Returns `None` for values with no meaning (SNS sometimes sends `unknown`).
    pub fn parse(raw: &str) -> Option<Status> {
        lookup_normalized(raw, |normalized| Some(match normalized {
            "created" => Status::Created,
            "queued" => Status::Queued,
            "inprogress" => Status::InProgress,
            "baking" => Status::Baking,
            "ready" => Status::Ready,
            "succeeded" => Status::Succeeded,
            "failed" => Status::Failed,
            "stopped" => Status::Stopped,
            _ => return None,
        }))
    }

    /// The `status` label value of finished-deployment metrics.
    pub fn label(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Queued => "queued",
            Status::InProgress => "in_progress",
            Status::Baking => "baking",
            Status::Ready => "ready",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
            Status::Stopped => "stopped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Runs `lookup` on `raw` lower-cased and without `_`, `-` and spaces: the form
/// every status vocabulary shares. ASCII (every real status) is normalized on the
/// stack, the rest as Unicode; nothing longer than the buffer is a status.
fn lookup_normalized<T>(raw: &str, lookup: fn(&str) -> Option<T>) -> Option<T> {
    let kept = |c: char| !matches!(c, '_' | '-' | ' ');
    if !raw.is_ascii() {
        let normalized: String = raw.chars().filter(|c| kept(*c)).flat_map(char::to_lowercase).collect();
        return lookup(&normalized);
    }
    let mut buffer = [0u8; 16];
    let mut len = 0;
    for byte in raw.bytes().filter(|b| kept(char::from(*b))) {
        *buffer.get_mut(len)? = byte.to_ascii_lowercase();
        len += 1;
    }
    lookup(std::str::from_utf8(&buffer[..len]).ok()?)
}

/// The `errorInformation.code` of a deployment that CloudWatch alarms stopped.
pub const ALARM_ACTIVE: &str = "ALARM_ACTIVE";

/// Why a rolled-back deployment ended: the `cause` label of
/// `codedeploy_rollbacks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RollbackCause {
    /// It failed.
    Failure,
    /// CloudWatch alarms stopped it (`ALARM_ACTIVE`).
    Alarm,
    /// It was stopped on request (`MANUAL_STOP`, or any stop not by an alarm).
    Manual,
    /// Its end is not known: not seen, not finished, or stopped for no known reason.
    Unknown,
}

impl RollbackCause {
    pub const ALL: [RollbackCause; 4] =
        [RollbackCause::Failure, RollbackCause::Alarm, RollbackCause::Manual, RollbackCause::Unknown];

    /// The cause a rolled-back deployment's final status and error code give.
    /// Both are lattice joins of everything seen, so the cause is too: it
    /// depends on which facts are known, never on their order.
    pub fn of(status: Option<Status>, error_code: Option<&str>) -> RollbackCause {
        match (status, error_code) {
            (Some(Status::Failed), _) => RollbackCause::Failure,
            (Some(Status::Stopped), Some(ALARM_ACTIVE)) => RollbackCause::Alarm,
            (Some(Status::Stopped), Some(_)) => RollbackCause::Manual,
            _ => RollbackCause::Unknown,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            RollbackCause::Failure => "failure",
            RollbackCause::Alarm => "alarm",
            RollbackCause::Manual => "manual",
            RollbackCause::Unknown => "unknown",
        }
    }
}

/// Status of one deployment target or one lifecycle event on it
/// (API `TargetStatus` / `LifecycleEventStatus`, SNS `instanceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TargetStatus {
    Pending,
    InProgress,
    Ready,
    Succeeded,
    Failed,
    Skipped,
    Unknown,
}

impl TargetStatus {
    /// `Pending < InProgress < Ready < finished`; like deployments, never backwards.
    pub fn level(self) -> u8 {
        match self {
            TargetStatus::Pending => 0,
            TargetStatus::InProgress => 1,
            TargetStatus::Ready => 2,
            TargetStatus::Succeeded
            | TargetStatus::Failed
            | TargetStatus::Skipped
            | TargetStatus::Unknown => 3,
        }
    }

    pub fn parse(raw: &str) -> Option<TargetStatus> {
        lookup_normalized(raw, |normalized| Some(match normalized {
            "pending" => TargetStatus::Pending,
            "inprogress" | "start" => TargetStatus::InProgress,
            "ready" => TargetStatus::Ready,
            "succeeded" | "success" => TargetStatus::Succeeded,
            "failed" | "failure" => TargetStatus::Failed,
            "skipped" => TargetStatus::Skipped,
            "unknown" => TargetStatus::Unknown,
            _ => return None,
        }))
    }

    pub fn label(self) -> &'static str {
        match self {
            TargetStatus::Pending => "pending",
            TargetStatus::InProgress => "in_progress",
            TargetStatus::Ready => "ready",
            TargetStatus::Succeeded => "succeeded",
            TargetStatus::Failed => "failed",
            TargetStatus::Skipped => "skipped",
            TargetStatus::Unknown => "unknown",
        }
    }

    pub const ALL: [TargetStatus; 7] = [
        TargetStatus::Pending,
        TargetStatus::InProgress,
        TargetStatus::Ready,
        TargetStatus::Succeeded,
        TargetStatus::Failed,
        TargetStatus::Skipped,
        TargetStatus::Unknown,
    ];
}

/// Which deployment an observation is about. Account and region are absent from
/// API output (and from some EventBridge fakes); the ledger then joins the
/// observation to the only record with the same deployment id, if there is one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct DeploymentRef {
    pub account: Option<CompactString>,
    pub region: Option<CompactString>,
    pub deployment_id: CompactString,
}

/// Per-status target counts (`deploymentOverview`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Overview {
    pub pending: u64,
    pub in_progress: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub skipped: u64,
    pub ready: u64,
}

impl Overview {
    pub fn total(&self) -> u64 {
        self.pending + self.in_progress + self.succeeded + self.failed + self.skipped + self.ready
    }

    /// The counts as `(status, count)` pairs, in a fixed order.
    pub fn by_status(&self) -> [(TargetStatus, u64); 6] {
        [
            (TargetStatus::Pending, self.pending),
            (TargetStatus::InProgress, self.in_progress),
            (TargetStatus::Ready, self.ready),
            (TargetStatus::Succeeded, self.succeeded),
            (TargetStatus::Failed, self.failed),
            (TargetStatus::Skipped, self.skipped),
        ]
    }
}

/// One lifecycle event (hook) on one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// `ApplicationStop`, `BeforeInstall`, `AfterAllowTraffic`, …
    pub name: CompactString,
    pub status: Option<TargetStatus>,
    pub start_time: Option<Millis>,
    pub end_time: Option<Millis>,
    /// `diagnostics.errorCode` (`ScriptFailed`, `ScriptTimedOut`, …); `Success` is dropped.
    pub error_code: Option<CompactString>,
}

/// What an observation says about one deployment target (instance, Lambda
/// function, ECS service).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetObservation {
    pub target_id: CompactString,
    pub status: Option<TargetStatus>,
    pub lifecycle_events: Vec<LifecycleEvent>,
}

/// Everything one decoded message says about one deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    pub deployment: DeploymentRef,
    pub provenance: Provenance,
    /// When the message says this happened (EventBridge `time`, SNS `Timestamp`);
    /// used for event-time durations and ingest lag.
    pub event_time: Option<Millis>,
    /// True for deployment-level state changes: their `event_time` is the START or
    /// terminal time used when no create/complete times are known. Instance-level
    /// events and API snapshots carry `false`.
    pub is_state_change: bool,
    pub application: Option<CompactString>,
    pub deployment_group: Option<CompactString>,
    pub status: Option<Status>,
    pub create_time: Option<Millis>,
    pub start_time: Option<Millis>,
    pub complete_time: Option<Millis>,
    /// `creator` of the API (`user`, `autoscaling`, `codeDeployRollback`, …).
    pub creator: Option<CompactString>,
    /// The deployment this one rolls back (`rollbackTriggeringDeploymentId`).
    pub rollback_of: Option<CompactString>,
    /// The deployment that rolled this one back (`rollbackInfo.rollbackDeploymentId`).
    pub rolled_back_by: Option<CompactString>,
    /// `errorInformation.code`.
    pub error_code: Option<CompactString>,
    /// The CloudWatch alarms an `ALARM_ACTIVE` stop names in its
    /// `errorInformation` message, sorted, each once; empty when none are named.
    pub activated_alarms: Vec<CompactString>,
    /// `deploymentConfigName` of the API: the configuration the deployment
    /// ran with (`CodeDeployDefault.OneAtATime`, a canary, a custom one).
    pub deployment_config: Option<CompactString>,
    /// `Server`, `Lambda` or `ECS`.
    pub compute_platform: Option<CompactString>,
    /// `IN_PLACE` or `BLUE_GREEN`.
    pub deployment_type: Option<CompactString>,
    pub overview: Option<Overview>,
    pub targets: Vec<TargetObservation>,
    /// The deployment's `description` (CreateDeployment `--description`),
    /// where CI may leave `commit=<sha> committed_at=<RFC3339>`.
    pub description: Option<CompactString>,
    /// The revision deployed (API `revision`).
    pub revision: Option<Revision>,
    /// A commit time found for the deployment by a commit-time resolver.
    pub commit_time: Option<CommitTime>,
    /// The resolver tried every configured source and found no commit time.
    pub lead_time_unknown: Option<LeadTimeUnknown>,
    /// A CI commit record (webhook `{"type":"commit",…}`): about no deployment.
    pub commit_record: Option<CommitRecord>,
}

/// What a deployment deployed (API `revision`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Revision {
    /// A bundle in S3; `version` and `etag` tell builds under one key apart.
    S3 { bucket: String, key: String, version: Option<String>, etag: Option<String> },
    /// A commit of a GitHub repository (`owner/name`).
    GitHub { repository: String, commit: String },
    /// Inline AppSpec content or string: nothing to look a commit up in.
    Inline,
}

/// Where a commit time came from (the `source` label of the lead-time counters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CommitSource {
    Description,
    Webhook,
    S3,
    Git,
}

impl CommitSource {
    pub fn label(self) -> &'static str {
        match self {
            CommitSource::Description => "description",
            CommitSource::Webhook => "webhook",
            CommitSource::S3 => "s3",
            CommitSource::Git => "git",
        }
    }
}

/// Which commit a commit time is the time of. The DORA definition measures
/// from the first commit of the change; the deployed commit is the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CommitKind {
    /// The commit deployed (the revision's head).
    Deployed,
    /// The oldest commit not contained in the group's previously deployed revision.
    First,
}

impl CommitKind {
    pub fn label(self) -> &'static str {
        match self {
            CommitKind::Deployed => "deployed_commit",
            CommitKind::First => "first_commit",
        }
    }
}

/// A commit time and where it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommitTime {
    pub kind: CommitKind,
    pub source: CommitSource,
    pub at: Millis,
}

impl CommitTime {
    /// Whether `self` is preferred to `other`: the first commit over the
    /// deployed one, then the later source in [`CommitSource`] order, then
    /// the earlier time. A total order, so keeping the best is a lattice join.
    pub fn better_than(&self, other: &CommitTime) -> bool {
        (self.kind, self.source, std::cmp::Reverse(self.at)) > (other.kind, other.source, std::cmp::Reverse(other.at))
    }
}

/// Why a change deployment's lead time is unknown (the `reason` label of
/// `codedeploy_lead_time_unknown_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LeadTimeUnknown {
    /// No revision and no commit in the description: nothing to look up.
    NoRevision,
    /// A revision, but no configured source can look it up.
    NoSourceConfigured,
    /// The configured sources were asked and know no commit time for it.
    NotFound,
    /// A source failed (S3 error, unreadable repository) on every attempt.
    SourceError,
}

impl LeadTimeUnknown {
    pub const ALL: [LeadTimeUnknown; 4] = [
        LeadTimeUnknown::NoRevision,
        LeadTimeUnknown::NoSourceConfigured,
        LeadTimeUnknown::NotFound,
        LeadTimeUnknown::SourceError,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LeadTimeUnknown::NoRevision => "no_revision",
            LeadTimeUnknown::NoSourceConfigured => "no_source_configured",
            LeadTimeUnknown::NotFound => "not_found",
            LeadTimeUnknown::SourceError => "source_error",
        }
    }
}

/// A commit time posted by CI: matches deployments by commit sha or by revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// A revision string (`s3://bucket/key@version-or-etag`, `github:owner/repo@sha`).
    pub revision: Option<String>,
    pub commit: Option<String>,
    pub committed_at: Millis,
}

impl Observation {
    /// An observation that says nothing yet; decoders fill in what their format carries.
    pub fn new(deployment: DeploymentRef, provenance: Provenance) -> Observation {
        Observation {
            deployment,
            provenance,
            event_time: None,
            is_state_change: false,
            application: None,
            deployment_group: None,
            status: None,
            create_time: None,
            start_time: None,
            complete_time: None,
            creator: None,
            rollback_of: None,
            rolled_back_by: None,
            error_code: None,
            activated_alarms: Vec::new(),
            deployment_config: None,
            compute_platform: None,
            deployment_type: None,
            overview: None,
            targets: Vec::new(),
            description: None,
            revision: None,
            commit_time: None,
            lead_time_unknown: None,
            commit_record: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_from_every_vocabulary() {
        assert_eq!(Status::parse("IN_PROGRESS"), Some(Status::InProgress));
        assert_eq!(Status::parse("InProgress"), Some(Status::InProgress));
        assert_eq!(Status::parse("SUCCEEDED"), Some(Status::Succeeded));
        assert_eq!(Status::parse("Failed"), Some(Status::Failed));
        assert_eq!(Status::parse("unknown"), None);
        assert_eq!(TargetStatus::parse("Skipped"), Some(TargetStatus::Skipped));
        assert_eq!(Status::parse("in-progress"), Some(Status::InProgress));
        assert_eq!(Status::parse(" Ready "), Some(Status::Ready));
        assert_eq!(Status::parse("IN_PROGRESS_AND_SOMETHING_LONGER"), None);
        // Unicode case folding: the Kelvin sign lower-cases to an ASCII `k`.
        assert_eq!(Status::parse("BA\u{212A}ING"), Some(Status::Baking));
        assert_eq!(TargetStatus::parse("S\u{212A}IPPED"), Some(TargetStatus::Skipped));
    }

    #[test]
    fn a_rollback_cause_is_how_the_rolled_back_deployment_ended() {
        let cause = |status, code| RollbackCause::of(status, code);
        assert_eq!(cause(Some(Status::Failed), Some("HEALTH_CONSTRAINTS")), RollbackCause::Failure);
        assert_eq!(cause(Some(Status::Failed), None), RollbackCause::Failure);
        assert_eq!(cause(Some(Status::Failed), Some("ALARM_ACTIVE")), RollbackCause::Failure, "it failed, whatever the code");
        assert_eq!(cause(Some(Status::Stopped), Some("ALARM_ACTIVE")), RollbackCause::Alarm);
        assert_eq!(cause(Some(Status::Stopped), Some("MANUAL_STOP")), RollbackCause::Manual);
        assert_eq!(cause(Some(Status::Stopped), Some("TIMEOUT")), RollbackCause::Manual);
        assert_eq!(cause(Some(Status::Stopped), None), RollbackCause::Unknown, "a STOP event alone says not why");
        assert_eq!(cause(Some(Status::Succeeded), None), RollbackCause::Unknown);
        assert_eq!(cause(Some(Status::InProgress), None), RollbackCause::Unknown);
        assert_eq!(cause(None, Some("ALARM_ACTIVE")), RollbackCause::Unknown);
        let labels: Vec<&str> = RollbackCause::ALL.iter().map(|c| c.label()).collect();
        assert_eq!(labels, ["failure", "alarm", "manual", "unknown"]);
    }

    #[test]
    fn lattice_puts_terminal_states_on_top() {
        assert!(Status::Created.level() < Status::InProgress.level());
        assert_eq!(Status::Baking.level(), Status::Ready.level());
        assert!(Status::Stopped.is_terminal() && !Status::Ready.is_terminal());
    }
}
