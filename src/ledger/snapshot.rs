//! A read-only copy of what `/metrics` shows, taken under the ledger lock and
//! rendered after it is released, so a slow scrape never blocks ingest.
//!
//! The windowed figures are computed here, exactly, from the settled records
//! themselves rather than from counters: a deployment is in a window when it
//! finished in `(now - window, now]`. Quantiles are exact (nearest rank,
//! see [`quantiles`]).
//!
//! Under the lock the snapshot copies only what is shown: the group counters
//! (without the window inputs) and the window figures, computed here in one
//! pass over each group's deployments and without an allocation per group or
//! window.

use std::collections::BTreeMap;

use super::group::{GroupKey, GroupStats, Kind};
use super::settled::Settled;
use super::{group_key, kind_of, Ledger, QualityIssue};
use crate::domain::{CommitKind, CommitSource, Millis, Status, TargetStatus};

const DAY_MS: Millis = 24 * 3600 * 1000;

/// The rolling windows of the `codedeploy_dora_*` and `codedeploy_sli_*` gauges.
pub const WINDOWS: [(&str, Millis); 3] = [("1d", DAY_MS), ("7d", 7 * DAY_MS), ("30d", 30 * DAY_MS)];

/// Quantiles reported by the windowed duration and recovery-time gauges: the
/// label, and the quantile in ten-thousandths (integer ranks, no float rounding).
pub const QUANTILES: [(&str, u64); 3] = [("0.5", 5_000), ("0.9", 9_000), ("0.99", 9_900)];

/// Equality treats NaN ("no data in the window") as equal to itself, so two
/// snapshots of the same ledger compare equal.
#[derive(Debug, Clone)]
pub struct WindowFigures {
    pub window: &'static str,
    /// Finished change deployments (DORA deployment frequency).
    pub deployments: u64,
    /// Finished deployments of every creator (the SLI's denominator).
    pub finished: u64,
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
            && self.finished == other.finished
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
    /// When the group's latest finished deployment finished, from its first
    /// terminal message: unlike `stats.last_finished`, it does not wait for
    /// the deployment to settle, so a group is never seen idle with its
    /// previous deployment as the latest.
    pub last_end: Option<Millis>,
    pub windows: Vec<WindowFigures>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub groups: Vec<GroupSnapshot>,
    pub data_quality: BTreeMap<QualityIssue, u64>,
    pub deployments_tracked: u64,
    /// Lead times observed, by commit-time source and which commit.
    pub lead_sources: BTreeMap<(CommitSource, CommitKind), u64>,
    /// Input that ran into a bound, by bound.
    pub limited: BTreeMap<super::limits::Limit, u64>,
}

#[derive(Default)]
struct InFlight {
    in_progress: u64,
    oldest_start: Option<Millis>,
    targets: BTreeMap<TargetStatus, u64>,
    /// The latest end among the group's finished records.
    last_end: Option<Millis>,
}

pub(super) fn build(ledger: &Ledger, now: Millis) -> Snapshot {
    let recent = recent_by_group(ledger, now);
    let mut in_flight: BTreeMap<GroupKey, (InFlight, Vec<Kind>)> = BTreeMap::new();
    for (key, record) in &ledger.records {
        let facts = &record.facts;
        // Target details that arrived before anything about their deployment
        // name no group yet; they show up once their deployment does.
        if facts.application.is_none() && facts.deployment_group.is_none() {
            continue;
        }
        let (view, kinds) = in_flight.entry(group_key(key, facts)).or_default();
        if facts.is_terminal() {
            view.last_end = view.last_end.max(facts.finished_at());
            continue;
        }
        kinds.push(kind_of(facts));
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
    let mut scratch = Scratch::default();
    let mut groups: Vec<GroupSnapshot> = ledger
        .groups
        .iter()
        .map(|(key, stats)| {
            let finished = recent.of(stats.id);
            let windows = windows(now, finished, stats, &mut scratch);
            GroupSnapshot::new(key.clone(), stats.shown(), windows, in_flight.remove(key))
        })
        .collect();
    if !in_flight.is_empty() {
        // A group with nothing counted yet is shown from its open deployments;
        // its id is assigned when its first deployment is counted.
        for (key, view) in in_flight {
            let stats = GroupStats::new(u32::MAX);
            let windows = windows(now, &[], &stats, &mut scratch);
            groups.push(GroupSnapshot::new(key, stats, windows, Some(view)));
        }
    }
    groups.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    Snapshot {
        groups,
        data_quality: ledger.meta.data_quality.clone(),
        deployments_tracked: ledger.deployments_tracked() as u64,
        lead_sources: ledger.meta.lead_sources.clone(),
        limited: ledger.meta.limited.clone(),
    }
}

impl GroupSnapshot {
    fn new(
        key: GroupKey,
        mut stats: GroupStats,
        windows: Vec<WindowFigures>,
        in_flight: Option<(InFlight, Vec<Kind>)>,
    ) -> GroupSnapshot {
        let (view, kinds) = in_flight.unwrap_or_default();
        for kind in &kinds {
            stats.know_kind(kind);
        }
        // Records are dropped after retention; the counted ones keep their end.
        let last_end = view.last_end.max(stats.last_finished.values().max().copied());
        GroupSnapshot {
            key,
            stats,
            last_end,
            in_progress: view.in_progress,
            oldest_in_progress_start: view.oldest_start,
            targets_in_progress: view.targets,
            windows,
        }
    }
}

/// The settled deployments that finished inside the longest window, grouped
/// by group id with a counting sort: two passes over the settled set and one
/// allocation, whatever the number of groups.
struct Recent<'a> {
    /// `starts[id]..starts[id + 1]` are group `id`'s entries.
    starts: Vec<usize>,
    entries: Vec<Option<&'a Settled>>,
}

impl<'a> Recent<'a> {
    fn of(&self, id: u32) -> &[Option<&'a Settled>] {
        let id = id as usize;
        match (self.starts.get(id), self.starts.get(id + 1)) {
            (Some(from), Some(to)) => &self.entries[*from..*to],
            _ => &[],
        }
    }
}

fn recent_by_group(ledger: &Ledger, now: Millis) -> Recent<'_> {
    let longest = WINDOWS.iter().map(|(_, width)| *width).max().unwrap_or_default();
    let groups = ledger.group_keys.len();
    let in_window = |entry: &Settled| {
        entry.outcome().finished_at.is_some_and(|at| at > now - longest) && (entry.group as usize) < groups
    };
    let mut starts = vec![0; groups + 1];
    for entry in ledger.settled.entries() {
        if in_window(entry) {
            starts[entry.group as usize + 1] += 1;
        }
    }
    for i in 1..starts.len() {
        starts[i] += starts[i - 1];
    }
    let mut entries = vec![None; starts[groups]];
    let mut next = starts.clone();
    for entry in ledger.settled.entries() {
        if in_window(entry) {
            let slot = &mut next[entry.group as usize];
            entries[*slot] = Some(entry);
            *slot += 1;
        }
    }
    Recent { starts, entries }
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

/// Exact quantiles by the nearest-rank rule: the value of rank ⌈q·n⌉ in
/// ascending order (q = 0.99 of 10 values is the largest). `values` is
/// reordered in place; with none, NaN.
fn quantiles(values: &mut [Millis]) -> [f64; 3] {
    let n = values.len() as u64;
    if n == 0 {
        return [f64::NAN; 3];
    }
    let mut figures = [f64::NAN; 3];
    // Highest rank first: each selection leaves the lower ranks on its left,
    // so the next one searches a shorter slice.
    let mut upto = values.len();
    for (i, (_, per_myriad)) in QUANTILES.iter().enumerate().rev() {
        let rank = (n * per_myriad).div_ceil(10_000).clamp(1, n) as usize;
        let (_, value, _) = values[..upto].select_nth_unstable(rank - 1);
        figures[i] = *value as f64 / 1000.0;
        upto = rank;
    }
    figures
}

/// Reused across groups, so that a scrape allocates nothing per group and window.
#[derive(Default)]
struct Scratch {
    /// Values by the narrowest window that holds them (1d, then 7d but not
    /// 1d, then 30d but not 7d).
    by_window: [Vec<Millis>; WINDOWS.len()],
    values: Vec<Millis>,
}

/// Counts of one window, or of the deployments whose narrowest window it is.
#[derive(Default, Clone, Copy)]
struct Counts {
    all: usize,
    succeeded: usize,
    changes: usize,
    change_failures: usize,
    not_rollbacks: usize,
    rolled_back: usize,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.all += other.all;
        self.succeeded += other.succeeded;
        self.changes += other.changes;
        self.change_failures += other.change_failures;
        self.not_rollbacks += other.not_rollbacks;
        self.rolled_back += other.rolled_back;
    }
}

/// Index of the narrowest window holding `at` (windows are nested and listed
/// narrowest first); none for a time outside them all.
fn narrowest(at: Millis, now: Millis) -> Option<usize> {
    if at > now {
        return None;
    }
    WINDOWS.iter().position(|(_, width)| at > now - width)
}

/// The figures of every window in one pass over the group's deployments: each
/// counts once, in its narrowest window, and a window adds up the narrower ones.
fn windows(now: Millis, finished: &[Option<&Settled>], stats: &GroupStats, scratch: &mut Scratch) -> Vec<WindowFigures> {
    let mut counts = [Counts::default(); WINDOWS.len()];
    scratch.by_window.iter_mut().for_each(Vec::clear);
    for entry in finished.iter().flatten() {
        let outcome = entry.outcome();
        let Some(level) = outcome.finished_at.and_then(|at| narrowest(at, now)) else { continue };
        let c = &mut counts[level];
        c.all += 1;
        c.succeeded += usize::from(entry.status == Status::Succeeded);
        if outcome.is_change {
            c.changes += 1;
            c.change_failures += usize::from(outcome.is_change_failure);
        }
        if !outcome.is_rollback {
            c.not_rollbacks += 1;
            c.rolled_back += usize::from(outcome.rolled_back);
        }
        scratch.by_window[level].extend(outcome.duration_ms);
    }
    let duration = nested_quantiles(scratch);
    let time_to_restore = timed_quantiles(&stats.restores, now, scratch);
    let lead_time = timed_quantiles(&stats.lead_times, now, scratch);
    let mut total = Counts::default();
    WINDOWS
        .iter()
        .enumerate()
        .map(|(k, (label, _))| {
            total += counts[k];
            WindowFigures {
                window: label,
                deployments: total.changes as u64,
                finished: total.all as u64,
                success_ratio: ratio(total.succeeded, total.all),
                rollback_ratio: ratio(total.rolled_back, total.not_rollbacks),
                change_failure_ratio: ratio(total.change_failures, total.changes),
                time_to_restore: time_to_restore[k],
                duration: duration[k],
                lead_time: lead_time[k],
            }
        })
        .collect()
}

/// Quantiles per window of (at, value) pairs.
fn timed_quantiles(timed: &[(Millis, Millis)], now: Millis, scratch: &mut Scratch) -> [[f64; 3]; WINDOWS.len()] {
    scratch.by_window.iter_mut().for_each(Vec::clear);
    for (at, value) in timed {
        if let Some(level) = narrowest(*at, now) {
            scratch.by_window[level].push(*value);
        }
    }
    nested_quantiles(scratch)
}

/// Window k's quantiles are over the values of windows 0..=k: each window's
/// values are added to what the narrower ones left in the scratch.
fn nested_quantiles(scratch: &mut Scratch) -> [[f64; 3]; WINDOWS.len()] {
    scratch.values.clear();
    let mut figures = [[f64::NAN; 3]; WINDOWS.len()];
    for (k, level) in scratch.by_window.iter().enumerate() {
        scratch.values.extend_from_slice(level);
        figures[k] = quantiles(&mut scratch.values);
    }
    figures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_nearest_ranks() {
        let mut ten: Vec<Millis> = (1..=10).rev().map(|s| s * 1000).collect();
        assert_eq!(quantiles(&mut ten), [5.0, 9.0, 10.0]);
        let mut hundred: Vec<Millis> = (1..=100).map(|s| s * 1000).collect();
        assert_eq!(quantiles(&mut hundred), [50.0, 90.0, 99.0]);
        let mut one = vec![1234];
        assert_eq!(quantiles(&mut one), [1.234; 3]);
        assert!(quantiles(&mut []).iter().all(|q| q.is_nan()));
    }
}
