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

/// Whether `incoming`, from `provenance`, replaces what `slot` holds.
fn replaces<T: Ord + ?Sized>(slot: Option<(Provenance, &T)>, provenance: Provenance, incoming: &T, keep: Keep) -> bool {
    match slot {
        None => true,
        Some((current, _)) if provenance != current => provenance > current,
        Some((_, value)) => match keep {
            Keep::Smallest => incoming < value,
            Keep::Largest => incoming > value,
        },
    }
}

/// Joins `incoming` into `slot`; returns whether the slot changed.
fn join<T: Ord + Clone>(
    slot: &mut Option<Ranked<T>>,
    provenance: Provenance,
    incoming: Option<&T>,
    keep: Keep,
) -> bool {
    let Some(value) = incoming else { return false };
    let replace = replaces(slot.as_ref().map(|r| (r.provenance, &r.value)), provenance, value, keep);
    if replace {
        *slot = Some(Ranked { provenance, value: value.clone() });
    }
    replace
}

/// [`join`] for text, kept as a [`CompactString`]: the names and codes a
/// deployment carries are short, and stored inline they cost no allocation.
fn join_text(slot: &mut Option<Ranked<CompactString>>, provenance: Provenance, incoming: Option<&str>, keep: Keep) -> bool {
    let Some(value) = incoming else { return false };
    let replace = replaces(slot.as_ref().map(|r| (r.provenance, r.value.as_str())), provenance, value, keep);
    if replace {
        *slot = Some(Ranked { provenance, value: value.into() });
    }
    replace
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
    pub error_code: Option<Ranked<CompactString>>,
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

impl HookFacts {
    fn join(&mut self, provenance: Provenance, event: &LifecycleEvent) -> bool {
        let mut changed = join_target_status(&mut self.status, provenance, event.status);
        changed |= join(&mut self.start_time, provenance, event.start_time.as_ref(), Keep::Smallest);
        changed |= join(&mut self.end_time, provenance, event.end_time.as_ref(), Keep::Largest);
        changed |= join_text(&mut self.error_code, provenance, event.error_code.as_deref(), Keep::Largest);
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
    pub compute_platform: Option<Ranked<CompactString>>,
    pub deployment_type: Option<Ranked<CompactString>>,
    pub overview: Option<Ranked<Overview>>,
    pub targets: SmallMap<CompactString, TargetFacts>,
    /// Lead time: the description, the revision, and what a resolver found.
    pub description: Option<Ranked<CompactString>>,
    pub revision: Option<Ranked<Revision>>,
    pub commit_time: Option<CommitTime>,
    pub lead_time_unknown: Option<LeadTimeUnknown>,
}

impl Facts {
    /// Folds one observation in; returns whether anything changed (false means
    /// the observation was a duplicate of what we already knew).
    pub fn join(&mut self, o: &Observation) -> bool {
        let p = o.provenance;
        let mut changed = false;
        changed |= join_text(&mut self.application, p, o.application.as_deref(), Keep::Smallest);
        changed |= join_text(&mut self.deployment_group, p, o.deployment_group.as_deref(), Keep::Smallest);
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
        changed |= join_text(&mut self.creator, p, o.creator.as_deref(), Keep::Smallest);
        changed |= join_text(&mut self.rollback_of, p, o.rollback_of.as_deref(), Keep::Smallest);
        changed |= join_text(&mut self.rolled_back_by, p, o.rolled_back_by.as_deref(), Keep::Smallest);
        changed |= join_text(&mut self.error_code, p, o.error_code.as_deref(), Keep::Smallest);
        changed |= join_text(&mut self.compute_platform, p, o.compute_platform.as_deref(), Keep::Smallest);
        changed |= join_text(&mut self.deployment_type, p, o.deployment_type.as_deref(), Keep::Smallest);
        if let Some(overview) = o.overview {
            changed |= join_overview(&mut self.overview, p, overview);
        }
        for target in &o.targets {
            changed |= self.targets.get_or_default(target.target_id.as_str()).join(p, target);
        }
        changed |= join_text(&mut self.description, p, o.description.as_deref(), Keep::Smallest);
        changed |= join(&mut self.revision, p, o.revision.as_ref(), Keep::Smallest);
        if let Some(found) = o.commit_time {
            if self.commit_time.is_none_or(|current| found.better_than(&current)) {
                self.commit_time = Some(found);
                changed = true;
            }
        }
        if let Some(reason) = o.lead_time_unknown {
            if self.lead_time_unknown.is_none_or(|current| reason > current) {
                self.lead_time_unknown = Some(reason);
                changed = true;
            }
        }
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
