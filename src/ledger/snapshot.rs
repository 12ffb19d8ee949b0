//! A read-only copy of what `/metrics` shows, taken under the ledger lock and
//! rendered after it is released, so a slow scrape never blocks ingest.
//!
//! The windowed figures are computed here, exactly, from the settled records
//! themselves rather than from counters: a deployment is in a window when it
//! finished in `(now - window, now]`. Quantiles come from an HDR histogram
//! with three significant digits (within 0.1 % of the true value).

use std::collections::BTreeMap;

use super::group::{GroupKey, GroupStats};
use super::settled::{Outcome, Settled};
use super::{group_key, kind_of, Ledger, QualityIssue};
use crate::domain::{CommitKind, CommitSource, Millis, Status, TargetStatus};

const DAY_MS: Millis = 24 * 3600 * 1000;

/// The rolling windows of the `codedeploy_dora_*` and `codedeploy_sli_*` gauges.
pub const WINDOWS: [(&str, Millis); 3] = [("1d", DAY_MS), ("7d", 7 * DAY_MS), ("30d", 30 * DAY_MS)];

/// Quantiles reported by the windowed duration and recovery-time gauges.
pub const QUANTILES: [(&str, f64); 3] = [("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99)];

/// Equality treats NaN ("no data in the window") as equal to itself, so two
/// snapshots of the same ledger compare equal.
#[derive(Debug, Clone)]
pub struct WindowFigures {
    pub window: &'static str,
    /// Finished change deployments (DORA deployment frequency).
    pub deployments: u64,
    /// Succeeded over all finished deployments; NaN with none.
    pub success_ratio: f64,
    /// Rolled-back over finished non-rollback deployments; NaN with none.
    pub rollback_ratio: f64,
    /// Change failures over finished change deployments; NaN with none.
    pub change_failure_ratio: f64,
    /// Seconds, one per [`QUANTILES`]; NaN with no recovery in the window.
    pub time_to_restore: [f64; 3],
    /// Seconds, one per [`QUANTILES`]; NaN with no deployment in the window.
    pub duration: [f64; 3],
    /// DORA lead time, seconds, one per [`QUANTILES`]; NaN with no lead time in the window.
    pub lead_time: [f64; 3],
}

impl PartialEq for WindowFigures {
    fn eq(&self, other: &Self) -> bool {
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        let all_same = |a: &[f64; 3], b: &[f64; 3]| a.iter().zip(b).all(|(x, y)| same(*x, *y));
        self.window == other.window
            && self.deployments == other.deployments
            && same(self.success_ratio, other.success_ratio)
            && same(self.rollback_ratio, other.rollback_ratio)
            && same(self.change_failure_ratio, other.change_failure_ratio)
            && all_same(&self.time_to_restore, &other.time_to_restore)
            && all_same(&self.duration, &other.duration)
            && all_same(&self.lead_time, &other.lead_time)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupSnapshot {
    pub key: GroupKey,
    pub stats: GroupStats,
    pub in_progress: u64,
    /// Start of the oldest deployment still in progress (ms).
    pub oldest_in_progress_start: Option<Millis>,
    /// Target counts of the deployments in progress.
    pub targets_in_progress: BTreeMap<TargetStatus, u64>,
    pub windows: Vec<WindowFigures>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub groups: Vec<GroupSnapshot>,
    pub data_quality: BTreeMap<QualityIssue, u64>,
    pub deployments_tracked: u64,
    /// Lead times observed, by commit-time source and which commit.
    pub lead_sources: BTreeMap<(CommitSource, CommitKind), u64>,
}

#[derive(Default)]
struct GroupView<'a> {
    in_progress: u64,
    oldest_start: Option<Millis>,
    targets: BTreeMap<TargetStatus, u64>,
    /// The group's counted deployments inside the longest window.
    finished: Vec<&'a Settled>,
}

pub(super) fn build(ledger: &Ledger, now: Millis) -> Snapshot {
    let mut stats = ledger.groups.clone();
    let mut views: BTreeMap<GroupKey, GroupView> = BTreeMap::new();
    let longest = WINDOWS.iter().map(|(_, width)| *width).max().unwrap_or_default();
    let mut finished: Vec<Vec<&Settled>> = vec![Vec::new(); ledger.group_keys.len()];
    for (_, entry) in ledger.settled.iter() {
        let recent = entry.outcome().finished_at.is_some_and(|at| at > now - longest);
        if let (true, Some(group)) = (recent, finished.get_mut(entry.group as usize)) {
            group.push(entry);
        }
    }
    for (key, group) in ledger.group_keys.iter().zip(finished) {
        views.entry(key.clone()).or_default().finished = group;
    }
    for (key, record) in &ledger.records {
        let facts = &record.facts;
        // Target details that arrived before anything about their deployment
        // name no group yet; they show up once their deployment does.
        if facts.application.is_none() && facts.deployment_group.is_none() {
            continue;
        }
        let group = group_key(key, facts);
        let view = views.entry(group.clone()).or_default();
        // A group with nothing counted yet is shown from its open deployments;
        // its id is assigned when its first deployment is counted.
        let group_stats = stats.entry(group).or_insert_with(|| GroupStats::new(u32::MAX));
        if facts.is_terminal() {
            continue;
        }
        group_stats.know_kind(&kind_of(facts));
        if facts.status.is_none() {
            // Known only from instance events: the group exists, the deployment's state does not yet.
            continue;
        }
        view.in_progress += 1;
        if let Some(began) = facts.began_at() {
            view.oldest_start = Some(view.oldest_start.map_or(began, |t| t.min(began)));
        }
        in_progress_targets(facts, &mut view.targets);
    }
    let groups = stats
        .into_iter()
        .map(|(key, stats)| {
            let view = views.remove(&key).unwrap_or_default();
            let windows = WINDOWS
                .iter()
                .map(|(label, width)| window(label, now - width, now, &view.finished, &stats))
                .collect();
            GroupSnapshot {
                key,
                stats,
                in_progress: view.in_progress,
                oldest_in_progress_start: view.oldest_start,
                targets_in_progress: view.targets,
                windows,
            }
        })
        .collect();
    Snapshot {
        groups,
        data_quality: ledger.meta.data_quality.clone(),
        deployments_tracked: ledger.deployments_tracked() as u64,
        lead_sources: ledger.meta.lead_sources.clone(),
    }
}

/// Targets of an unfinished deployment, from its overview when it has one.
fn in_progress_targets(facts: &super::Facts, into: &mut BTreeMap<TargetStatus, u64>) {
    match &facts.overview {
        Some(overview) => {
            for (status, count) in overview.value.by_status() {
                *into.entry(status).or_insert(0) += count;
            }
        }
        None => {
            for target in facts.targets.values() {
                if let Some(status) = &target.status {
                    *into.entry(status.value).or_insert(0) += 1;
                }
            }
        }
    }
}

fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        f64::NAN
    } else {
        part as f64 / whole as f64
    }
}

fn quantiles(values: impl Iterator<Item = Millis>) -> [f64; 3] {
    // Three significant digits, auto-resizing: recovery times can span weeks.
    let Ok(mut histogram) = hdrhistogram::Histogram::<u64>::new(3) else {
        return [f64::NAN; 3];
    };
    for value in values {
        // Values are clamped non-negative upstream; a failed record only loses
        // precision, never the scrape.
        let _ = histogram.record(value.max(0) as u64);
    }
    if histogram.is_empty() {
        return [f64::NAN; 3];
    }
    QUANTILES.map(|(_, q)| histogram.value_at_quantile(q) as f64 / 1000.0)
}

fn window(
    label: &'static str,
    from: Millis,
    to: Millis,
    finished: &[&Settled],
    stats: &GroupStats,
) -> WindowFigures {
    let inside = |at: Millis| at > from && at <= to;
    let all: Vec<(Status, Outcome)> = finished
        .iter()
        .map(|entry| (entry.status, entry.outcome()))
        .filter(|(_, o)| o.finished_at.is_some_and(inside))
        .collect();
    let changes: Vec<&Outcome> = all.iter().map(|(_, o)| o).filter(|o| o.is_change).collect();
    let not_rollbacks: Vec<&Outcome> = all.iter().map(|(_, o)| o).filter(|o| !o.is_rollback).collect();
    let succeeded = all.iter().filter(|(status, _)| *status == Status::Succeeded).count();
    WindowFigures {
        window: label,
        deployments: changes.len() as u64,
        success_ratio: ratio(succeeded, all.len()),
        rollback_ratio: ratio(not_rollbacks.iter().filter(|o| o.rolled_back).count(), not_rollbacks.len()),
        change_failure_ratio: ratio(changes.iter().filter(|o| o.is_change_failure).count(), changes.len()),
        time_to_restore: quantiles(
            stats.restores.iter().filter(|(at, _)| inside(*at)).map(|(_, ttr)| *ttr),
        ),
        duration: quantiles(all.iter().filter_map(|(_, o)| o.duration_ms)),
        lead_time: quantiles(stats.lead_times.iter().filter(|(at, _)| inside(*at)).map(|(_, lead)| *lead)),
    }
}
