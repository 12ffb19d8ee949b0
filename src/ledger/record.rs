//! One deployment as the ledger knows it: every fact merged from every
//! observation, each merge a join in a lattice so that duplicates are no-ops and
//! arrival order does not matter.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::small_map::SmallMap;
use crate::domain::{
    CommitTime, LeadTimeUnknown, LifecycleEvent, Millis, Observation, Overview, Provenance, Revision, Status,
    TargetObservation, TargetStatus,
};

/// A value and the provenance it came from. Merges keep the higher provenance;
/// equal provenances keep the smaller or larger value, as the field dictates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ranked<T> {
    pub provenance: Provenance,
    pub value: T,
}

/// Which of two values with equal provenance a field keeps.
#[derive(Clone, Copy)]
enum Keep {
    Smallest,
    Largest,
}

/// Where a fact is kept: inline, or out of line for a large fact few records have.
trait FactSlot<T> {
    fn current(&self) -> Option<&Ranked<T>>;
    fn set(&mut self, ranked: Ranked<T>);
}

impl<T> FactSlot<T> for Option<Ranked<T>> {
    fn current(&self) -> Option<&Ranked<T>> {
        self.as_ref()
    }

    fn set(&mut self, ranked: Ranked<T>) {
        *self = Some(ranked);
    }
}

impl<T> FactSlot<T> for Option<Box<Ranked<T>>> {
    fn current(&self) -> Option<&Ranked<T>> {
        self.as_deref()
    }

    fn set(&mut self, ranked: Ranked<T>) {
        *self = Some(Box::new(ranked));
    }
}

/// Joins `incoming` into `slot`; returns whether the slot changed.
fn join<T: Ord + Clone>(slot: &mut impl FactSlot<T>, provenance: Provenance, incoming: Option<&T>, keep: Keep) -> bool {
    let Some(value) = incoming else { return false };
    let replace = match slot.current() {
        None => true,
        Some(current) if provenance != current.provenance => provenance > current.provenance,
        Some(current) => match keep {
            Keep::Smallest => *value < current.value,
            Keep::Largest => *value > current.value,
        },
    };
    if replace {
        slot.set(Ranked { provenance, value: value.clone() });
    }
    replace
}

/// [`join`] of another record's slot: its own provenance comes with it.
fn join_ranked<T: Ord + Clone>(slot: &mut impl FactSlot<T>, incoming: &impl FactSlot<T>, keep: Keep) -> bool {
    incoming.current().is_some_and(|r| join(slot, r.provenance, Some(&r.value), keep))
}

/// Keeps the better commit time (see [`CommitTime::better_than`]).
fn join_commit_time(slot: &mut Option<CommitTime>, incoming: Option<CommitTime>) -> bool {
    let Some(found) = incoming else { return false };
    let replace = slot.is_none_or(|current| found.better_than(&current));
    if replace {
        *slot = Some(found);
    }
    replace
}

/// Keeps the largest reason (the most specific one).
fn join_max<T: Ord + Copy>(slot: &mut Option<T>, incoming: Option<T>) -> bool {
    let Some(value) = incoming else { return false };
    let replace = slot.is_none_or(|current| value > current);
    if replace {
        *slot = Some(value);
    }
    replace
}

/// Joins a sorted set of names into another: their union, kept sorted.
fn join_union(slot: &mut Vec<CompactString>, incoming: &[CompactString]) -> bool {
    let mut changed = false;
    for name in incoming {
        if let Err(at) = slot.binary_search(name) {
            slot.insert(at, name.clone());
            changed = true;
        }
    }
    changed
}

/// Joins a plain optional value, keeping the smallest (used for event times).
fn join_min(slot: &mut Option<Millis>, incoming: Option<Millis>) -> bool {
    match (incoming, *slot) {
        (Some(value), Some(current)) if value >= current => false,
        (Some(value), _) => {
            *slot = Some(value);
            true
        }
        (None, _) => false,
    }
}

/// Status moves up the lattice only; between two states of the same level
/// (Baking/Ready, or two different terminal states) the better provenance wins,
/// then a fixed order, so the result never depends on arrival order.
fn join_status(slot: &mut Option<Ranked<Status>>, provenance: Provenance, incoming: Status) -> bool {
    let key = |status: Status, provenance: Provenance| (status.level(), provenance, status);
    let replace = match slot {
        None => true,
        Some(current) => key(incoming, provenance) > key(current.value, current.provenance),
    };
    if replace {
        *slot = Some(Ranked { provenance, value: incoming });
    }
    replace
}

/// How far a deployment's targets have got, as an order on overviews: later
/// snapshots have more finished targets.
fn overview_progress(o: &Overview) -> (u64, u64, u64, u64, u64, u64) {
    (o.succeeded + o.failed + o.skipped, o.ready, o.in_progress, o.failed, o.skipped, o.pending)
}

fn join_overview(slot: &mut Option<Ranked<Overview>>, provenance: Provenance, incoming: Overview) -> bool {
    let replace = match slot {
        None => true,
        Some(current) => {
            (provenance, overview_progress(&incoming))
                > (current.provenance, overview_progress(&current.value))
        }
    };
    if replace {
        *slot = Some(Ranked { provenance, value: incoming });
    }
    replace
}

/// One lifecycle event on one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HookFacts {
    pub status: Option<Ranked<TargetStatus>>,
    pub start_time: Option<Ranked<Millis>>,
    pub end_time: Option<Ranked<Millis>>,
    /// Out of line: only a failed hook has one, and an API view of a deployment
    /// holds every hook of every target.
    pub error_code: Option<Box<Ranked<CompactString>>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetFacts {
    pub status: Option<Ranked<TargetStatus>>,
    pub hooks: SmallMap<CompactString, HookFacts>,
}

fn join_target_status(
    slot: &mut Option<Ranked<TargetStatus>>,
    provenance: Provenance,
    incoming: Option<TargetStatus>,
) -> bool {
    let Some(incoming) = incoming else { return false };
    let key = |status: TargetStatus, provenance: Provenance| (status.level(), provenance, status);
    let replace = match slot {
        None => true,
        Some(current) => key(incoming, provenance) > key(current.value, current.provenance),
    };
    if replace {
        *slot = Some(Ranked { provenance, value: incoming });
    }
    replace
}

fn join_ranked_target_status(slot: &mut Option<Ranked<TargetStatus>>, incoming: &Option<Ranked<TargetStatus>>) -> bool {
    incoming.as_ref().is_some_and(|r| join_target_status(slot, r.provenance, Some(r.value)))
}

impl HookFacts {
    fn join(&mut self, provenance: Provenance, event: &LifecycleEvent) -> bool {
        let mut changed = join_target_status(&mut self.status, provenance, event.status);
        changed |= join(&mut self.start_time, provenance, event.start_time.as_ref(), Keep::Smallest);
        changed |= join(&mut self.end_time, provenance, event.end_time.as_ref(), Keep::Largest);
        changed |= join(&mut self.error_code, provenance, event.error_code.as_ref(), Keep::Largest);
        changed
    }

    fn merge(&mut self, other: &HookFacts) -> bool {
        let mut changed = join_ranked_target_status(&mut self.status, &other.status);
        changed |= join_ranked(&mut self.start_time, &other.start_time, Keep::Smallest);
        changed |= join_ranked(&mut self.end_time, &other.end_time, Keep::Largest);
        changed |= join_ranked(&mut self.error_code, &other.error_code, Keep::Largest);
        changed
    }
}

impl TargetFacts {
    fn join(&mut self, provenance: Provenance, target: &TargetObservation) -> bool {
        let mut changed = join_target_status(&mut self.status, provenance, target.status);
        for event in &target.lifecycle_events {
            changed |= self.hooks.get_or_default(event.name.as_str()).join(provenance, event);
        }
        changed
    }

    fn merge(&mut self, other: &TargetFacts) -> bool {
        let mut changed = join_ranked_target_status(&mut self.status, &other.status);
        for (name, hook) in &other.hooks {
            changed |= self.hooks.get_or_default(name.as_str()).merge(hook);
        }
        changed
    }
}

/// Everything known about one deployment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub application: Option<Ranked<CompactString>>,
    pub deployment_group: Option<Ranked<CompactString>>,
    pub status: Option<Ranked<Status>>,
    pub create_time: Option<Ranked<Millis>>,
    pub start_time: Option<Ranked<Millis>>,
    pub complete_time: Option<Ranked<Millis>>,
    /// Earliest time of a non-terminal state-change event (EventBridge START).
    pub start_event_time: Option<Millis>,
    /// Earliest time of a terminal state-change event.
    pub end_event_time: Option<Millis>,
    pub creator: Option<Ranked<CompactString>>,
    pub rollback_of: Option<Ranked<CompactString>>,
    pub rolled_back_by: Option<Ranked<CompactString>>,
    pub error_code: Option<Ranked<CompactString>>,
    /// The alarms an `ALARM_ACTIVE` stop names: every name any message gave.
    pub activated_alarms: Vec<CompactString>,
    pub deployment_config: Option<Ranked<CompactString>>,
    pub compute_platform: Option<Ranked<CompactString>>,
    pub deployment_type: Option<Ranked<CompactString>>,
    pub overview: Option<Ranked<Overview>>,
    pub targets: SmallMap<CompactString, TargetFacts>,
    /// Lead time: the description, the revision, and what a resolver found.
    pub description: Option<Ranked<CompactString>>,
    /// Out of line: the largest fact (up to four strings), and only API output has it.
    pub revision: Option<Box<Ranked<Revision>>>,
    pub commit_time: Option<CommitTime>,
    pub lead_time_unknown: Option<LeadTimeUnknown>,
}

impl Facts {
    /// Folds one observation in; returns whether anything changed (false means
    /// the observation was a duplicate of what we already knew).
    pub fn join(&mut self, o: &Observation) -> bool {
        let p = o.provenance;
        let mut changed = false;
        changed |= join(&mut self.application, p, o.application.as_ref(), Keep::Smallest);
        changed |= join(&mut self.deployment_group, p, o.deployment_group.as_ref(), Keep::Smallest);
        if let Some(status) = o.status {
            changed |= join_status(&mut self.status, p, status);
            // Only a state change that begins the deployment (START, CREATED)
            // marks its start: READY comes mid-way through a blue/green one.
            if o.is_state_change && status.is_terminal() {
                changed |= join_min(&mut self.end_event_time, o.event_time);
            } else if o.is_state_change && status.level() <= Status::InProgress.level() {
                changed |= join_min(&mut self.start_event_time, o.event_time);
            }
        }
        changed |= join(&mut self.create_time, p, o.create_time.as_ref(), Keep::Smallest);
        changed |= join(&mut self.start_time, p, o.start_time.as_ref(), Keep::Smallest);
        changed |= join(&mut self.complete_time, p, o.complete_time.as_ref(), Keep::Largest);
        changed |= join(&mut self.creator, p, o.creator.as_ref(), Keep::Smallest);
        changed |= join(&mut self.rollback_of, p, o.rollback_of.as_ref(), Keep::Smallest);
        changed |= join(&mut self.rolled_back_by, p, o.rolled_back_by.as_ref(), Keep::Smallest);
        changed |= join(&mut self.error_code, p, o.error_code.as_ref(), Keep::Smallest);
        changed |= join_union(&mut self.activated_alarms, &o.activated_alarms);
        changed |= join(&mut self.deployment_config, p, o.deployment_config.as_ref(), Keep::Smallest);
        changed |= join(&mut self.compute_platform, p, o.compute_platform.as_ref(), Keep::Smallest);
        changed |= join(&mut self.deployment_type, p, o.deployment_type.as_ref(), Keep::Smallest);
        if let Some(overview) = o.overview {
            changed |= join_overview(&mut self.overview, p, overview);
        }
        for target in &o.targets {
            changed |= self.targets.get_or_default(target.target_id.as_str()).join(p, target);
        }
        changed |= join(&mut self.description, p, o.description.as_ref(), Keep::Smallest);
        changed |= join(&mut self.revision, p, o.revision.as_ref(), Keep::Smallest);
        changed |= join_commit_time(&mut self.commit_time, o.commit_time);
        changed |= join_max(&mut self.lead_time_unknown, o.lead_time_unknown);
        changed
    }

    /// Folds in everything another record of the same deployment knows, as if
    /// its observations had been folded in here (each field is a lattice join);
    /// returns whether anything changed.
    pub fn merge(&mut self, other: &Facts) -> bool {
        let mut changed = false;
        changed |= join_ranked(&mut self.application, &other.application, Keep::Smallest);
        changed |= join_ranked(&mut self.deployment_group, &other.deployment_group, Keep::Smallest);
        if let Some(status) = &other.status {
            changed |= join_status(&mut self.status, status.provenance, status.value);
        }
        changed |= join_min(&mut self.end_event_time, other.end_event_time);
        changed |= join_min(&mut self.start_event_time, other.start_event_time);
        changed |= join_ranked(&mut self.create_time, &other.create_time, Keep::Smallest);
        changed |= join_ranked(&mut self.start_time, &other.start_time, Keep::Smallest);
        changed |= join_ranked(&mut self.complete_time, &other.complete_time, Keep::Largest);
        changed |= join_ranked(&mut self.creator, &other.creator, Keep::Smallest);
        changed |= join_ranked(&mut self.rollback_of, &other.rollback_of, Keep::Smallest);
        changed |= join_ranked(&mut self.rolled_back_by, &other.rolled_back_by, Keep::Smallest);
        changed |= join_ranked(&mut self.error_code, &other.error_code, Keep::Smallest);
        changed |= join_union(&mut self.activated_alarms, &other.activated_alarms);
        changed |= join_ranked(&mut self.deployment_config, &other.deployment_config, Keep::Smallest);
        changed |= join_ranked(&mut self.compute_platform, &other.compute_platform, Keep::Smallest);
        changed |= join_ranked(&mut self.deployment_type, &other.deployment_type, Keep::Smallest);
        if let Some(overview) = &other.overview {
            changed |= join_overview(&mut self.overview, overview.provenance, overview.value);
        }
        for (target_id, target) in &other.targets {
            changed |= self.targets.get_or_default(target_id.as_str()).merge(target);
        }
        changed |= join_ranked(&mut self.description, &other.description, Keep::Smallest);
        changed |= join_ranked(&mut self.revision, &other.revision, Keep::Smallest);
        changed |= join_commit_time(&mut self.commit_time, other.commit_time);
        changed |= join_max(&mut self.lead_time_unknown, other.lead_time_unknown);
        changed
    }

    pub fn status(&self) -> Option<Status> {
        self.status.as_ref().map(|s| s.value)
    }

    pub fn is_terminal(&self) -> bool {
        self.status().is_some_and(Status::is_terminal)
    }

    /// When the deployment finished: the API or trigger completeTime, else the
    /// terminal event's time.
    pub fn finished_at(&self) -> Option<Millis> {
        self.complete_time.as_ref().map(|t| t.value).or(self.end_event_time)
    }

    /// When the deployment began, for in-progress age: createTime, else the START event.
    pub fn began_at(&self) -> Option<Millis> {
        self.create_time.as_ref().map(|t| t.value).or(self.start_event_time)
    }

    /// Duration: createTime → completeTime, each from the API or a trigger when
    /// known, else from the START and terminal events. Without a known start
    /// there is no duration.
    pub fn raw_duration_ms(&self) -> Option<Millis> {
        Some(self.finished_at()? - self.began_at()?)
    }

    /// The API has told us the deployment's final state and every target it
    /// reported in the overview: nothing more is expected, so it can be counted
    /// without waiting for the settle time.
    pub fn details_complete(&self) -> bool {
        let final_from_api = self.is_terminal()
            && self.status.as_ref().is_some_and(|s| s.provenance == Provenance::Api)
            && self.complete_time.as_ref().is_some_and(|t| t.provenance == Provenance::Api);
        // Targets known only from instance events carry no hook details: only
        // targets the API has described count.
        let described = self
            .targets
            .values()
            .filter(|t| t.status.as_ref().is_some_and(|s| s.provenance == Provenance::Api))
            .count() as u64;
        let expected_targets = self.overview.as_ref().map_or(0, |o| o.value.total());
        final_from_api && described >= expected_targets
    }

    pub fn text(slot: &Option<Ranked<CompactString>>) -> Option<&str> {
        slot.as_ref().map(|r| r.value.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CommitKind, CommitSource, DeploymentRef};

    fn observation(provenance: Provenance, edit: impl FnOnce(&mut Observation)) -> Observation {
        let reference = DeploymentRef { account: None, region: None, deployment_id: "d-1".into() };
        let mut o = Observation::new(reference, provenance);
        edit(&mut o);
        o
    }

    fn hook(name: &str, status: TargetStatus, start: Millis, end: Millis, error: Option<&str>) -> LifecycleEvent {
        LifecycleEvent {
            name: name.into(),
            status: Some(status),
            start_time: Some(start),
            end_time: Some(end),
            error_code: error.map(CompactString::from),
        }
    }

    /// Observations that disagree on every field, from every provenance.
    fn disagreeing() -> Vec<Observation> {
        vec![
            observation(Provenance::Event, |o| {
                o.status = Some(Status::InProgress);
                o.is_state_change = true;
                o.event_time = Some(1_000);
                o.application = Some("app".into());
            }),
            observation(Provenance::Event, |o| {
                o.status = Some(Status::Failed);
                o.is_state_change = true;
                o.event_time = Some(9_000);
                o.deployment_group = Some("prod".into());
            }),
            observation(Provenance::Trigger, |o| {
                o.status = Some(Status::Succeeded);
                o.create_time = Some(2_000);
                o.complete_time = Some(8_000);
                o.error_code = Some("HEALTH_CONSTRAINTS".into());
                o.activated_alarms = vec!["latency".into(), "p99".into()];
                o.deployment_config = Some("CodeDeployDefault.AllAtOnce".into());
                o.rolled_back_by = Some("d-9".into());
                o.overview = Some(Overview { succeeded: 1, failed: 1, ..Overview::default() });
            }),
            observation(Provenance::Api, |o| {
                o.status = Some(Status::Failed);
                o.create_time = Some(2_500);
                o.complete_time = Some(7_000);
                o.creator = Some("user".into());
                o.compute_platform = Some("Server".into());
                o.deployment_type = Some("IN_PLACE".into());
                o.deployment_config = Some("CodeDeployDefault.OneAtATime".into());
                o.activated_alarms = vec!["errors".into(), "p99".into()];
                o.description = Some("commit abc".into());
                o.lead_time_unknown = Some(LeadTimeUnknown::NoSourceConfigured);
                o.overview = Some(Overview { succeeded: 1, failed: 2, ..Overview::default() });
            }),
            observation(Provenance::Api, |o| {
                o.creator = Some("CodeDeploy".into());
                o.rollback_of = Some("d-0".into());
                o.lead_time_unknown = Some(LeadTimeUnknown::NoRevision);
                o.commit_time = Some(CommitTime { kind: CommitKind::Deployed, source: CommitSource::Webhook, at: 500 });
                o.targets.push(TargetObservation {
                    target_id: "i-2".into(),
                    status: Some(TargetStatus::Failed),
                    lifecycle_events: vec![hook("BeforeInstall", TargetStatus::Failed, 3_000, 4_000, Some("ScriptFailed"))],
                });
            }),
            observation(Provenance::Trigger, |o| {
                o.commit_time = Some(CommitTime { kind: CommitKind::First, source: CommitSource::Description, at: 400 });
                o.targets.push(TargetObservation {
                    target_id: "i-2".into(),
                    status: Some(TargetStatus::InProgress),
                    lifecycle_events: vec![hook("BeforeInstall", TargetStatus::Succeeded, 2_900, 4_100, None)],
                });
                o.targets.push(TargetObservation {
                    target_id: "i-1".into(),
                    status: Some(TargetStatus::Succeeded),
                    lifecycle_events: vec![
                        hook("ApplicationStop", TargetStatus::Succeeded, 2_000, 2_100, None),
                        hook("BeforeInstall", TargetStatus::Failed, 2_200, 2_300, Some("ScriptTimedOut")),
                    ],
                });
            }),
        ]
    }

    fn folded<'a>(observations: impl IntoIterator<Item = &'a Observation>) -> Facts {
        let mut facts = Facts::default();
        for o in observations {
            facts.join(o);
        }
        facts
    }

    /// Adopting an orphan merges its facts into its twin instead of folding its
    /// observations in again: for every split of the observations between the
    /// two records, the merge must give the record folding them all would have.
    #[test]
    fn merging_two_records_equals_folding_all_their_observations() {
        let all = disagreeing();
        let expected = folded(&all);
        for split in 0u32..(1 << all.len()) {
            let in_first = |i: &usize| split & (1 << i) != 0;
            let first = folded(all.iter().enumerate().filter(|(i, _)| in_first(i)).map(|(_, o)| o));
            let second = folded(all.iter().enumerate().filter(|(i, _)| !in_first(i)).map(|(_, o)| o));
            let mut merged = first.clone();
            let changed = merged.merge(&second);
            assert_eq!(merged, expected, "split {split:b}");
            assert_eq!(changed, merged != first, "split {split:b}: the change flag");
            let mut again = merged.clone();
            assert!(!again.merge(&second) && !again.merge(&first), "split {split:b}: merging is idempotent");
        }
    }
}
