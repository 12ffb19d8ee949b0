//! Recovery runs of one deployment group, exact whatever order deployments
//! are counted in.
//!
//! DORA's failed deployment recovery time runs from the first change failure
//! after a success to the next success. That is a function of the group's
//! deployments sorted by completion, which `replay` has all at once. `serve`
//! counts them as they arrive: a rollback found by the poller may be counted
//! before the failure it undid, which reaches us later by SQS.
//!
//! So the group keeps the tail of its timeline: every change failure and
//! success counted since the last *final* success. A late arrival is inserted
//! where it belongs and the runs after it are worked out again. A success's
//! recovery is observed only once it is final: when it has been terminal for
//! the settle time (or at once with `force`, the end of `replay`). Until
//! then nothing is observed that a late arrival could prove wrong. What
//! arrives after a success it would change became final cannot be undone (a
//! histogram never goes down); it is counted as a data-quality issue.

use serde::{Deserialize, Serialize};

use crate::domain::Millis;

/// One counted deployment that matters to recovery runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Step {
    at: Millis,
    failure: bool,
    /// For a success: the start of the run it closes, as known so far.
    closes: Option<Millis>,
    /// For a success not final yet: the ingest time it became terminal at.
    pending_since: Option<Millis>,
}

impl Step {
    /// Timeline order: by completion; at the same instant a failure first, so
    /// that a success at that instant closes its run (a restore of 0).
    fn order(&self) -> (Millis, bool) {
        (self.at, !self.failure)
    }

    fn is_final_success(&self) -> bool {
        !self.failure && self.pending_since.is_none()
    }
}

/// A group's timeline tail and what it has decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RecoveryRuns {
    /// Sorted by [`Step::order`]; starts right after the last final success.
    tail: Vec<Step>,
    /// Completion of the last final success whose predecessors are all
    /// final: nothing before it can change any more.
    horizon: Option<Millis>,
}

/// A recovery decided for good: (restored at, time to restore).
pub type Restore = (Millis, Millis);

impl RecoveryRuns {
    /// A change failure was counted. Returns whether it came too late to be
    /// placed exactly.
    pub fn add_failure(&mut self, at: Millis) -> bool {
        self.insert(Step { at, failure: true, closes: None, pending_since: None })
    }

    /// A success (of any creator), terminal since ingest time `since`, was
    /// counted. Returns whether it came too late to be placed exactly.
    pub fn add_success(&mut self, at: Millis, since: Millis) -> bool {
        self.insert(Step { at, failure: false, closes: None, pending_since: Some(since) })
    }

    /// A counted success turns out to be a change failure (a rollback undid
    /// it). Returns whether that came too late to be placed exactly.
    pub fn success_became_failure(&mut self, at: Millis) -> bool {
        let found = self.tail.iter().position(|s| !s.failure && s.at == at);
        match found {
            Some(index) if self.tail[index].pending_since.is_some() => {
                self.tail.remove(index);
                self.add_failure(at)
            }
            // Final already, or compacted away: what it closed was observed.
            _ => true,
        }
    }

    fn insert(&mut self, step: Step) -> bool {
        let too_late = self.horizon.is_some_and(|horizon| step.order() < (horizon, true));
        if too_late {
            return true;
        }
        let index = self.tail.partition_point(|s| s.order() <= step.order());
        self.tail.insert(index, step);
        self.rework_from(index)
    }

    /// Works the runs out again from `index` on; returns whether a final
    /// success would have closed another run than the one it did.
    fn rework_from(&mut self, index: usize) -> bool {
        // The open run just before `index`: the earliest failure after the
        // last success before it (the tail starts after a success).
        let mut open = self.tail[..index]
            .iter()
            .rev()
            .take_while(|s| s.failure)
            .last()
            .map(|s| s.at);
        let mut inexact = false;
        for step in &mut self.tail[index..] {
            if step.failure {
                open = open.or(Some(step.at));
                continue;
            }
            let closes = open.take();
            if closes == step.closes {
                // Nothing after a success depends on what came before it.
                break;
            }
            if step.pending_since.is_some() {
                step.closes = closes;
            } else {
                inexact = true;
            }
        }
        inexact
    }

    /// Ingest time at which the earliest pending success becomes final.
    pub fn next_due(&self, wait: Millis) -> Option<Millis> {
        self.tail.iter().filter_map(|s| s.pending_since).min().map(|since| since + wait)
    }

    /// Makes final every success terminal for at least `wait` (all of them
    /// with `force`), in completion order, but none at or after `hold`: the
    /// completion of a deployment not counted yet, which may still change
    /// the runs after it. Returns the recoveries they close.
    pub fn finalize(&mut self, now: Millis, wait: Millis, force: bool, hold: Option<Millis>) -> Vec<Restore> {
        let mut restores = Vec::new();
        for step in &mut self.tail {
            let held = hold.is_some_and(|hold| step.at >= hold);
            if !held && step.pending_since.is_some_and(|since| force || now - since >= wait) {
                step.pending_since = None;
                if let Some(since) = step.closes {
                    restores.push((step.at, step.at - since));
                }
            }
        }
        // Everything up to the last final success with only final successes
        // before it is decided for good.
        let mut decided = 0;
        for (index, step) in self.tail.iter().enumerate() {
            if step.pending_since.is_some() {
                break;
            }
            if step.is_final_success() {
                decided = index + 1;
            }
        }
        if decided > 0 {
            self.horizon = Some(self.tail[decided - 1].at);
            self.tail.drain(..decided);
        }
        restores
    }

    /// After downtime, pending successes wait their whole time again: no late
    /// message could arrive while the exporter was down.
    pub fn restart_timers(&mut self, now: Millis) {
        for step in &mut self.tail {
            if step.pending_since.is_some() {
                step.pending_since = Some(now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Millis = 100;

    /// The recoveries of a sequence of (completion, is failure), counted in
    /// the given order with one ingest tick between them, then all made final.
    fn runs(counted: &[(Millis, bool)], wait: Millis) -> (Vec<Restore>, usize) {
        let mut runs = RecoveryRuns::default();
        let mut restores = Vec::new();
        let mut inexact = 0;
        for (now, (at, failure)) in counted.iter().enumerate() {
            let now = now as Millis;
            let late = if *failure { runs.add_failure(*at) } else { runs.add_success(*at, now) };
            inexact += usize::from(late);
            restores.extend(runs.finalize(now, wait, false, None));
        }
        restores.extend(runs.finalize(Millis::MAX, wait, true, None));
        restores.sort();
        (restores, inexact)
    }

    #[test]
    fn one_recovery_per_run_of_failures() {
        let steps = [(1, false), (10, true), (20, true), (70, false), (80, false)];
        assert_eq!(runs(&steps, WAIT), (vec![(70, 60)], 0));
    }

    #[test]
    fn any_order_within_the_wait_gives_the_ordered_result() {
        let ordered = [(1, false), (10, true), (20, true), (70, false), (75, true), (80, false), (90, false)];
        let expected = runs(&ordered, WAIT);
        assert_eq!(expected, (vec![(70, 60), (80, 5)], 0));
        let mut order: Vec<(Millis, bool)> = ordered.to_vec();
        // Every rotation and the reversal of the sequence.
        for _ in 0..order.len() {
            order.rotate_left(1);
            assert_eq!(runs(&order, WAIT), expected, "{order:?}");
        }
        order.reverse();
        assert_eq!(runs(&order, WAIT), expected);
    }

    #[test]
    fn a_success_counted_before_the_failure_it_ends_still_closes_its_run() {
        // The rollback (found by polling) is counted first, its failure later.
        assert_eq!(runs(&[(20, false), (10, true)], WAIT), (vec![(20, 10)], 0));
    }

    #[test]
    fn what_comes_after_a_success_is_final_is_counted_as_inexact() {
        // A wait of 0: every success is final as soon as it is counted.
        let (restores, inexact) = runs(&[(10, true), (30, false), (5, true)], 0);
        assert_eq!((restores, inexact), (vec![(30, 20)], 1));
        // A failure after the horizon is placed normally.
        assert_eq!(runs(&[(10, true), (30, false), (40, true), (50, false)], 0), (vec![(30, 20), (50, 10)], 0));
    }

    #[test]
    fn a_success_that_becomes_a_failure_moves_the_run() {
        let mut runs = RecoveryRuns::default();
        runs.add_failure(10);
        runs.add_success(20, 0);
        runs.add_success(30, 0);
        assert!(!runs.success_became_failure(20));
        assert_eq!(runs.finalize(0, WAIT, true, None), vec![(30, 20)]);
        assert!(runs.success_became_failure(30), "final by now");
    }

    #[test]
    fn a_success_after_a_deployment_still_to_be_counted_stays_pending() {
        let mut runs = RecoveryRuns::default();
        runs.add_success(30, 0);
        assert!(runs.finalize(1_000, WAIT, false, Some(20)).is_empty(), "held: a failure at 20 may still come");
        assert!(!runs.add_failure(20));
        assert_eq!(runs.finalize(1_000, WAIT, false, None), vec![(30, 10)]);
    }

    #[test]
    fn the_tail_keeps_only_what_can_still_change() {
        let mut runs = RecoveryRuns::default();
        for at in 0..50 {
            runs.add_success(at * 10, at);
        }
        runs.add_failure(495);
        assert_eq!(runs.next_due(WAIT), Some(WAIT));
        assert!(runs.finalize(1_000, WAIT, false, None).is_empty());
        assert_eq!(runs.tail.len(), 1, "only the open failure remains");
        assert_eq!(runs.horizon, Some(490));
        runs.restart_timers(5);
        assert_eq!(runs.next_due(WAIT), None);
    }
}
