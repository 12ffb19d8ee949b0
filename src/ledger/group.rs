//! What the ledger has counted for one deployment group: the counters and
//! histograms of the metrics contract. They only ever grow; a deployment adds to
//! them once, when it settles.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::histogram::{Buckets, Exemplar, Histogram};
use crate::domain::{LeadTimeUnknown, Millis, Status, TargetStatus};

/// Identity of a deployment group; the base label set of every domain series.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct GroupKey {
    pub account_id: CompactString,
    pub region: CompactString,
    pub application: CompactString,
    pub deployment_group: CompactString,
}

/// The descriptive labels of `codedeploy_deployments_total` besides status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Kind {
    pub compute_platform: CompactString,
    pub deployment_type: CompactString,
    pub creator: CompactString,
}

/// The terminal statuses, in label order.
pub const FINISHED: [Status; 3] = [Status::Failed, Status::Stopped, Status::Succeeded];

/// Everything a settled deployment contributes, computed once from its facts.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub deployment_id: String,
    pub kind: Kind,
    pub status: Status,
    pub finished_at: Option<Millis>,
    /// Clamped duration, if one could be computed.
    pub duration_ms: Option<Millis>,
    pub is_rollback: bool,
    /// Time from the rolled-back deployment's completion to this rollback's.
    pub rollback_duration_ms: Option<Millis>,
    pub is_change_failure: bool,
    pub error_code: Option<CompactString>,
    pub targets: Vec<(TargetStatus, u64)>,
    /// (hook, duration) of finished (succeeded or failed) lifecycle events.
    pub hook_durations: Vec<(CompactString, Millis)>,
    /// (hook, script error code) of failed lifecycle events.
    pub hook_failures: Vec<(CompactString, CompactString)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    /// Stable number of the group, by which counted deployments refer to it.
    pub id: u32,
    pub deployments: BTreeMap<(Kind, Status), u64>,
    pub durations: BTreeMap<Status, Histogram>,
    pub rollbacks: BTreeMap<Status, u64>,
    pub rollback_durations: Histogram,
    pub change_failures: u64,
    pub time_to_restore: Histogram,
    pub lead_time: Histogram,
    pub errors: BTreeMap<CompactString, u64>,
    pub targets: BTreeMap<TargetStatus, u64>,
    /// By hook only: failed hooks are counted in `hook_failures`, and a
    /// status label would double the family (docs/performance.md).
    pub hook_durations: BTreeMap<CompactString, Histogram>,
    pub hook_failures: BTreeMap<(CompactString, CompactString), u64>,
    pub last_finished: BTreeMap<Status, Millis>,
    /// Completion of the latest rollback deployment, per status.
    pub last_rollback: BTreeMap<Status, Millis>,
    /// Recoveries as (restored at, time to restore), for the windowed quantiles.
    pub restores: Vec<(Millis, Millis)>,
    /// Change deployments whose lead time could not be found, by reason.
    pub lead_time_unknown: BTreeMap<LeadTimeUnknown, u64>,
    /// Lead times as (deployment finished at, lead time), for the windowed quantiles.
    pub lead_times: Vec<(Millis, Millis)>,
    /// The commit of the latest succeeded change deployment whose commit is
    /// known, and when it finished: where the next change's first commit starts.
    pub last_commit: Option<(Millis, String)>,
    /// Completion of the first change failure since the last success: an open
    /// run of failures that the next success closes.
    failing_since: Option<Millis>,
    last_success_at: Option<Millis>,
}

impl GroupStats {
    pub fn new(id: u32) -> Self {
        GroupStats {
            id,
            deployments: BTreeMap::new(),
            durations: FINISHED
                .iter()
                .map(|s| (*s, Histogram::new(Buckets::DeploymentDuration)))
                .collect(),
            rollbacks: FINISHED.iter().map(|s| (*s, 0)).collect(),
            rollback_durations: Histogram::new(Buckets::Recovery),
            change_failures: 0,
            time_to_restore: Histogram::new(Buckets::Recovery),
            lead_time: Histogram::new(Buckets::Recovery),
            errors: BTreeMap::new(),
            targets: [TargetStatus::Succeeded, TargetStatus::Failed, TargetStatus::Skipped]
                .iter()
                .map(|s| (*s, 0))
                .collect(),
            hook_durations: BTreeMap::new(),
            hook_failures: BTreeMap::new(),
            last_finished: BTreeMap::new(),
            last_rollback: BTreeMap::new(),
            restores: Vec::new(),
            lead_time_unknown: LeadTimeUnknown::ALL.iter().map(|r| (*r, 0)).collect(),
            lead_times: Vec::new(),
            last_commit: None,
            failing_since: None,
            last_success_at: None,
        }
    }

    /// The copy a snapshot shows: the counters and histograms, without the
    /// inputs of the windows (already turned into window figures) and the
    /// state only settling needs.
    pub fn shown(&self) -> GroupStats {
        GroupStats {
            id: self.id,
            deployments: self.deployments.clone(),
            durations: self.durations.clone(),
            rollbacks: self.rollbacks.clone(),
            rollback_durations: self.rollback_durations.clone(),
            change_failures: self.change_failures,
            time_to_restore: self.time_to_restore.clone(),
            lead_time: self.lead_time.clone(),
            errors: self.errors.clone(),
            targets: self.targets.clone(),
            hook_durations: self.hook_durations.clone(),
            hook_failures: self.hook_failures.clone(),
            last_finished: self.last_finished.clone(),
            last_rollback: self.last_rollback.clone(),
            restores: Vec::new(),
            lead_time_unknown: self.lead_time_unknown.clone(),
            lead_times: Vec::new(),
            last_commit: None,
            failing_since: None,
            last_success_at: None,
        }
    }

    /// Makes sure every status of a deployment kind has a series, so the first
    /// increment of a new kind is visible to `increase()`.
    pub fn know_kind(&mut self, kind: &Kind) {
        for status in FINISHED {
            self.deployments.entry((kind.clone(), status)).or_insert(0);
        }
    }

    /// Adds a settled deployment. Settlements of one group arrive in completion
    /// order in `replay`; in `serve` a late one may arrive out of order, which
    /// is why recovery runs are guarded by the last success time.
    pub fn add(&mut self, s: &Settlement) {
        self.know_kind(&s.kind);
        *self.deployments.entry((s.kind.clone(), s.status)).or_insert(0) += 1;
        if let Some(duration) = s.duration_ms {
            let histogram = self
                .durations
                .entry(s.status)
                .or_insert_with(|| Histogram::new(Buckets::DeploymentDuration));
            histogram.observe_with_exemplar(
                duration,
                Exemplar {
                    deployment_id: s.deployment_id.clone(),
                    value_ms: duration,
                    at: s.finished_at.unwrap_or_default(),
                },
            );
        }
        if s.is_rollback {
            *self.rollbacks.entry(s.status).or_insert(0) += 1;
            if let Some(duration) = s.rollback_duration_ms {
                self.rollback_durations.observe(duration);
            }
        }
        if matches!(s.status, Status::Failed | Status::Stopped) {
            let code = s.error_code.clone().unwrap_or_else(|| "unknown".into());
            *self.errors.entry(code).or_insert(0) += 1;
        }
        for (status, count) in &s.targets {
            *self.targets.entry(*status).or_insert(0) += count;
        }
        for (hook, duration) in &s.hook_durations {
            self.hook_durations
                .entry(hook.clone())
                .or_insert_with(|| Histogram::new(Buckets::LifecycleEvent))
                .observe(*duration);
        }
        for failure in &s.hook_failures {
            *self.hook_failures.entry(failure.clone()).or_insert(0) += 1;
        }
        if let Some(at) = s.finished_at {
            let last = self.last_finished.entry(s.status).or_insert(at);
            *last = (*last).max(at);
            if s.is_rollback {
                let last = self.last_rollback.entry(s.status).or_insert(at);
                *last = (*last).max(at);
            }
        }
        if s.is_change_failure {
            self.change_failures += 1;
            if let Some(at) = s.finished_at {
                self.open_failure_run(at);
            }
        } else if s.status == Status::Succeeded {
            if let Some(at) = s.finished_at {
                self.close_failure_run(at);
            }
        }
    }

    /// Counts a change failure learned after the deployment settled: a
    /// succeeded deployment that a later rollback undid.
    pub fn add_late_change_failure(&mut self, finished_at: Option<Millis>) {
        self.change_failures += 1;
        if let Some(at) = finished_at {
            self.open_failure_run(at);
        }
    }

    /// Forgets recoveries before `cutoff` (they only feed the windows); returns
    /// whether any were dropped.
    pub fn trim_restores(&mut self, cutoff: Millis) -> bool {
        let before = self.restores.len() + self.lead_times.len();
        self.restores.retain(|(at, _)| *at >= cutoff);
        self.lead_times.retain(|(at, _)| *at >= cutoff);
        self.restores.len() + self.lead_times.len() != before
    }

    fn open_failure_run(&mut self, at: Millis) {
        let after_last_success = self.last_success_at.is_none_or(|success| at > success);
        if after_last_success && self.failing_since.is_none_or(|since| at < since) {
            self.failing_since = Some(at);
        }
    }

    fn close_failure_run(&mut self, at: Millis) {
        self.last_success_at = Some(self.last_success_at.map_or(at, |last| last.max(at)));
        if let Some(since) = self.failing_since {
            if at >= since {
                self.failing_since = None;
                let restore = at - since;
                self.time_to_restore.observe(restore);
                self.restores.push((at, restore));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settlement(id: &str, status: Status, at: Millis, change_failure: bool) -> Settlement {
        Settlement {
            deployment_id: id.to_owned(),
            kind: Kind {
                compute_platform: "Server".into(),
                deployment_type: "IN_PLACE".into(),
                creator: "user".into(),
            },
            status,
            finished_at: Some(at),
            duration_ms: Some(60_000),
            is_rollback: false,
            rollback_duration_ms: None,
            is_change_failure: change_failure,
            error_code: None,
            targets: vec![],
            hook_durations: vec![],
            hook_failures: vec![],
        }
    }

    #[test]
    fn one_recovery_per_run_of_failures() {
        let mut stats = GroupStats::new(0);
        stats.add(&settlement("d-1", Status::Succeeded, 1_000, false));
        stats.add(&settlement("d-2", Status::Failed, 10_000, true));
        stats.add(&settlement("d-3", Status::Failed, 20_000, true));
        stats.add(&settlement("d-4", Status::Succeeded, 70_000, false));
        stats.add(&settlement("d-5", Status::Succeeded, 80_000, false));
        assert_eq!(stats.time_to_restore.count, 1);
        assert_eq!(stats.time_to_restore.sum_ms, 60_000);
        assert_eq!(stats.change_failures, 2);
        assert_eq!(stats.restores, vec![(70_000, 60_000)]);
    }

    #[test]
    fn a_failure_older_than_the_last_success_opens_no_run() {
        let mut stats = GroupStats::new(0);
        stats.add(&settlement("d-2", Status::Succeeded, 20_000, false));
        stats.add(&settlement("d-1", Status::Failed, 10_000, true));
        stats.add(&settlement("d-3", Status::Succeeded, 30_000, false));
        assert_eq!(stats.time_to_restore.count, 0);
        assert_eq!(stats.change_failures, 1);
    }

    #[test]
    fn hook_durations_of_failed_and_succeeded_runs_share_one_histogram_per_hook() {
        let mut stats = GroupStats::new(0);
        let mut failed = settlement("d-1", Status::Failed, 1_000, true);
        failed.hook_durations = vec![("AfterInstall".into(), 3_600_000), ("BeforeInstall".into(), 2_000)];
        let mut succeeded = settlement("d-2", Status::Succeeded, 2_000, false);
        succeeded.hook_durations = vec![("AfterInstall".into(), 4_000)];
        stats.add(&failed);
        stats.add(&succeeded);
        let after_install = &stats.hook_durations["AfterInstall"];
        assert_eq!((after_install.count, after_install.sum_ms, after_install.bucket_counts.clone()), (2, 3_604_000, vec![2]));
        assert_eq!(stats.hook_durations.len(), 2);
    }

    #[test]
    fn new_kinds_start_at_zero_for_every_status() {
        let mut stats = GroupStats::new(0);
        stats.add(&settlement("d-1", Status::Failed, 1, true));
        let counts: Vec<u64> = stats.deployments.values().copied().collect();
        // In status order: succeeded, failed, stopped.
        assert_eq!(counts, vec![0, 1, 0]);
        assert_eq!(stats.errors.get("unknown"), Some(&1));
    }
}
