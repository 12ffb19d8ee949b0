//! What the ledger has counted for one deployment group: the counters and
//! histograms of the metrics contract. They only ever grow; a deployment adds to
//! them once, when it settles.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::histogram::{Buckets, Exemplar, Histogram};
use super::limits::{self, Limit, ALARMS_PER_GROUP, CUSTOM_CONFIGS_PER_GROUP, CUSTOM_HOOKS_PER_GROUP, OTHER, UNKNOWN};
use super::recovery::RecoveryRuns;
use crate::domain::{LeadTimeUnknown, Millis, RollbackCause, Status, TargetStatus};

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
    pub deployment_config: CompactString,
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
    /// Why the deployment a rollback undid ended; `None` while that one is
    /// not counted yet: the rollback is then counted, and its time to
    /// rollback observed, when it is (or, if it never is, as `unknown`).
    pub rollback_cause: Option<RollbackCause>,
    pub is_change_failure: bool,
    pub error_code: Option<CompactString>,
    /// For a deployment CloudWatch alarms stopped: the alarms it names, or
    /// `unknown` when it names none. Empty for any other deployment.
    pub alarm_stop: Vec<CompactString>,
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
    /// Finished rollback deployments, by their status and why the deployment they undid ended.
    pub rollbacks: BTreeMap<(Status, RollbackCause), u64>,
    pub rollback_durations: Histogram,
    pub change_failures: u64,
    pub time_to_restore: Histogram,
    pub lead_time: Histogram,
    pub errors: BTreeMap<CompactString, u64>,
    /// Deployments CloudWatch alarms stopped, per alarm named.
    pub alarm_stops: BTreeMap<CompactString, u64>,
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
    /// Change failures and successes whose recovery runs may still change.
    recovery: RecoveryRuns,
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
            rollbacks: FINISHED
                .iter()
                .flat_map(|s| RollbackCause::ALL.iter().map(|c| ((*s, *c), 0)))
                .collect(),
            rollback_durations: Histogram::new(Buckets::Recovery),
            change_failures: 0,
            time_to_restore: Histogram::new(Buckets::Recovery),
            lead_time: Histogram::new(Buckets::Recovery),
            errors: BTreeMap::new(),
            alarm_stops: BTreeMap::new(),
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
            recovery: RecoveryRuns::default(),
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
            alarm_stops: self.alarm_stops.clone(),
            targets: self.targets.clone(),
            hook_durations: self.hook_durations.clone(),
            hook_failures: self.hook_failures.clone(),
            last_finished: self.last_finished.clone(),
            last_rollback: self.last_rollback.clone(),
            restores: Vec::new(),
            lead_time_unknown: self.lead_time_unknown.clone(),
            lead_times: Vec::new(),
            last_commit: None,
            recovery: RecoveryRuns::default(),
        }
    }

    /// Whether every histogram fits its layout (see [`Histogram::check`]).
    pub fn check(&self) -> Result<(), String> {
        let mut histograms = self.durations.values().chain(self.hook_durations.values()).chain([
            &self.rollback_durations,
            &self.time_to_restore,
            &self.lead_time,
        ]);
        histograms.try_for_each(Histogram::check)
    }

    /// Makes sure every status of a deployment kind has a series, so the first
    /// increment of a new kind is visible to `increase()`.
    pub fn know_kind(&mut self, kind: &Kind) {
        for status in FINISHED {
            self.deployments.entry((kind.clone(), status)).or_insert(0);
        }
    }

    /// Bounds the label values a settlement brings (see [`limits`]): error
    /// codes and creators AWS does not document, and hook names past the
    /// documented ones and this group's first [`CUSTOM_HOOKS_PER_GROUP`]
    /// custom ones, become `other`. Returns the bounds it ran into.
    pub fn bound_labels(&self, s: &mut Settlement) -> Vec<Limit> {
        let mut limited = Vec::new();
        let mut bound = |value: &mut CompactString, check: fn(&str) -> Result<&str, Limit>| {
            if let Err(limit) = check(value) {
                limited.push(limit);
                *value = OTHER.into();
            }
        };
        bound(&mut s.kind.creator, limits::creator);
        if let Some(code) = &mut s.error_code {
            bound(code, limits::error_code);
        }
        for (_, code) in &mut s.hook_failures {
            bound(code, limits::hook_error_code);
        }
        if !limits::is_builtin_config(&s.kind.deployment_config) {
            let custom = self.deployments.keys().map(|(kind, _)| &kind.deployment_config);
            let mut custom: Vec<&CompactString> =
                custom.filter(|c| !limits::is_builtin_config(c) && c.as_str() != OTHER).collect();
            custom.sort();
            custom.dedup();
            if !custom.contains(&&s.kind.deployment_config) && custom.len() >= CUSTOM_CONFIGS_PER_GROUP {
                limited.push(Limit::DeploymentConfig);
                s.kind.deployment_config = OTHER.into();
            }
        }
        let mut alarms: Vec<CompactString> =
            self.alarm_stops.keys().filter(|a| !matches!(a.as_str(), OTHER | UNKNOWN)).cloned().collect();
        for alarm in &mut s.alarm_stop {
            let known = alarm.as_str() == UNKNOWN || alarms.contains(alarm);
            let room = limits::alarm_fits(alarm) && alarms.len() < ALARMS_PER_GROUP;
            if !known && room {
                alarms.push(alarm.clone());
            } else if !known {
                limited.push(Limit::Alarm);
                *alarm = OTHER.into();
            }
        }
        let brought = s.hook_durations.iter().map(|(hook, _)| hook).chain(s.hook_failures.iter().map(|(hook, _)| hook));
        if brought.clone().all(|hook| limits::is_documented_hook(hook)) {
            return limited;
        }
        let mut custom: Vec<CompactString> = self
            .hook_durations
            .keys()
            .chain(self.hook_failures.keys().map(|(hook, _)| hook))
            .filter(|hook| !limits::is_documented_hook(hook) && hook.as_str() != OTHER)
            .cloned()
            .collect();
        custom.sort();
        custom.dedup();
        // Counted once per hook name, though a failed hook is in both lists.
        let mut past_bound: Vec<CompactString> = Vec::new();
        let hooks = s.hook_durations.iter_mut().map(|(hook, _)| hook).chain(s.hook_failures.iter_mut().map(|(hook, _)| hook));
        for hook in hooks {
            if limits::is_documented_hook(hook) || custom.contains(hook) {
                continue;
            }
            if custom.len() < CUSTOM_HOOKS_PER_GROUP {
                custom.push(hook.clone());
                continue;
            }
            if !past_bound.contains(hook) {
                past_bound.push(hook.clone());
                limited.push(Limit::LifecycleEvent);
            }
            *hook = OTHER.into();
        }
        limited
    }

    /// Adds a settled deployment, terminal since ingest time `terminal_since`. In `serve`
    /// deployments may settle out of completion order; recovery runs are
    /// placed in order all the same (see [`RecoveryRuns`]). Returns whether
    /// it came too late for that.
    pub fn add(&mut self, s: &Settlement, terminal_since: Millis) -> bool {
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
        if let (true, Some(cause)) = (s.is_rollback, s.rollback_cause) {
            self.add_rollback(s.status, cause, s.rollback_duration_ms);
        }
        for alarm in &s.alarm_stop {
            *self.alarm_stops.entry(alarm.clone()).or_insert(0) += 1;
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
        }
        match (s.finished_at, s.is_change_failure, s.status) {
            (Some(at), true, _) => self.recovery.add_failure(at),
            (Some(at), false, Status::Succeeded) => self.recovery.add_success(at, terminal_since),
            _ => false,
        }
    }

    /// Counts a finished rollback once why the deployment it undid ended is
    /// known, with its time to rollback if that is known too.
    pub fn add_rollback(&mut self, status: Status, cause: RollbackCause, duration_ms: Option<Millis>) {
        *self.rollbacks.entry((status, cause)).or_insert(0) += 1;
        if let Some(duration) = duration_ms {
            self.rollback_durations.observe(duration);
        }
    }

    /// Counts a change failure learned after the deployment settled: a
    /// succeeded deployment that a later rollback undid. Returns whether it
    /// came too late to move the recovery runs exactly.
    pub fn add_late_change_failure(&mut self, finished_at: Option<Millis>) -> bool {
        self.change_failures += 1;
        finished_at.is_some_and(|at| self.recovery.success_became_failure(at))
    }

    /// When the next pending recovery is due to be made final.
    pub fn next_recovery_due(&self, wait: Millis) -> Option<Millis> {
        self.recovery.next_due(wait)
    }

    /// Observes the recoveries of successes terminal for at least `wait`
    /// (all of them with `force`) that finished before `hold`, if given;
    /// returns whether any were.
    pub fn finalize_recoveries(&mut self, now: Millis, wait: Millis, force: bool, hold: Option<Millis>) -> bool {
        let restores = self.recovery.finalize(now, wait, force, hold);
        for (at, restore) in &restores {
            self.time_to_restore.observe(*restore);
            self.restores.push((*at, *restore));
        }
        !restores.is_empty()
    }

    /// See [`RecoveryRuns::restart_timers`].
    pub fn restart_recovery_timers(&mut self, now: Millis) {
        self.recovery.restart_timers(now);
    }

    /// Forgets recoveries before `cutoff` (they only feed the windows); returns
    /// whether any were dropped.
    pub fn trim_restores(&mut self, cutoff: Millis) -> bool {
        let before = self.restores.len() + self.lead_times.len();
        self.restores.retain(|(at, _)| *at >= cutoff);
        self.lead_times.retain(|(at, _)| *at >= cutoff);
        self.restores.len() + self.lead_times.len() != before
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
                deployment_config: "CodeDeployDefault.OneAtATime".into(),
            },
            status,
            finished_at: Some(at),
            duration_ms: Some(60_000),
            is_rollback: false,
            rollback_duration_ms: None,
            rollback_cause: None,
            is_change_failure: change_failure,
            error_code: None,
            alarm_stop: vec![],
            targets: vec![],
            hook_durations: vec![],
            hook_failures: vec![],
        }
    }

    #[test]
    fn one_recovery_per_run_of_failures_once_final() {
        let mut stats = GroupStats::new(0);
        stats.add(&settlement("d-1", Status::Succeeded, 1_000, false), 0);
        stats.add(&settlement("d-2", Status::Failed, 10_000, true), 0);
        stats.add(&settlement("d-3", Status::Failed, 20_000, true), 0);
        stats.add(&settlement("d-4", Status::Succeeded, 70_000, false), 0);
        stats.add(&settlement("d-5", Status::Succeeded, 80_000, false), 0);
        assert!(!stats.finalize_recoveries(50, 100, false, None), "nothing is final before the wait");
        assert_eq!(stats.time_to_restore.count, 0);
        assert_eq!(stats.next_recovery_due(100), Some(100));
        assert!(stats.finalize_recoveries(100, 100, false, None));
        assert_eq!(stats.time_to_restore.count, 1);
        assert_eq!(stats.time_to_restore.sum_ms, 60_000);
        assert_eq!(stats.change_failures, 2);
        assert_eq!(stats.restores, vec![(70_000, 60_000)]);
    }

    #[test]
    fn a_failure_counted_after_the_success_that_ends_it_still_opens_its_run() {
        let mut stats = GroupStats::new(0);
        assert!(!stats.add(&settlement("d-2", Status::Succeeded, 20_000, false), 0));
        assert!(!stats.add(&settlement("d-1", Status::Failed, 10_000, true), 1));
        stats.finalize_recoveries(0, 0, true, None);
        assert_eq!(stats.restores, vec![(20_000, 10_000)]);
        // Once that success is final, an earlier failure cannot move its run.
        assert!(stats.add(&settlement("d-0", Status::Failed, 5_000, true), 2));
        assert!(!stats.add(&settlement("d-3", Status::Succeeded, 30_000, false), 3));
        stats.finalize_recoveries(0, 0, true, None);
        assert_eq!(stats.time_to_restore.count, 1);
        assert_eq!(stats.change_failures, 2);
    }

    #[test]
    fn hook_durations_of_failed_and_succeeded_runs_share_one_histogram_per_hook() {
        let mut stats = GroupStats::new(0);
        let mut failed = settlement("d-1", Status::Failed, 1_000, true);
        failed.hook_durations = vec![("AfterInstall".into(), 3_600_000), ("BeforeInstall".into(), 2_000)];
        let mut succeeded = settlement("d-2", Status::Succeeded, 2_000, false);
        succeeded.hook_durations = vec![("AfterInstall".into(), 4_000)];
        stats.add(&failed, 0);
        stats.add(&succeeded, 0);
        let after_install = &stats.hook_durations["AfterInstall"];
        assert_eq!((after_install.count, after_install.sum_ms, after_install.bucket_counts.clone()), (2, 3_604_000, vec![2]));
        assert_eq!(stats.hook_durations.len(), 2);
    }

    #[test]
    fn new_kinds_start_at_zero_for_every_status() {
        let mut stats = GroupStats::new(0);
        stats.add(&settlement("d-1", Status::Failed, 1, true), 0);
        let counts: Vec<u64> = stats.deployments.values().copied().collect();
        // In status order: succeeded, failed, stopped.
        assert_eq!(counts, vec![0, 1, 0]);
        assert_eq!(stats.errors.get("unknown"), Some(&1));
    }
}
