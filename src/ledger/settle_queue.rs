//! Which unsettled records [`Ledger::settle`](super::Ledger::settle) has to look at.
//!
//! The writer settles after every batch. Walking every record in flight each
//! time made settling cost O(deployments in flight) per batch: at webhook rates
//! that was most of the writer's time, and it grows with the settle time. These
//! indexes name the few records that can be due (their settle timer ran out, or
//! the API gave their final details) and, for the one-deployment-at-a-time rule,
//! the other unsettled records of the same group. They are derived from the
//! records: built by the first live settle (after a restart too), never stored.

use std::collections::{BTreeSet, HashMap};

use super::group::GroupKey;
use super::{due_by_details, group_key, group_names, DeploymentKey, Record};
use crate::domain::Millis;

#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct SettleQueue {
    /// Terminal records, by the time their settle timer started.
    timers: BTreeSet<(Millis, DeploymentKey)>,
    /// Terminal, fully identified records whose API details are complete: due at once.
    details_complete: BTreeSet<DeploymentKey>,
    /// Unsettled records by their group as known so far.
    open: HashMap<GroupKey, BTreeSet<DeploymentKey>>,
    group_of: HashMap<DeploymentKey, GroupKey>,
}

impl SettleQueue {
    /// The indexes of these records.
    pub fn of<S>(records: &HashMap<DeploymentKey, Box<Record>, S>) -> SettleQueue {
        let mut queue = SettleQueue::default();
        for (key, record) in records {
            queue.track(key, record, None);
        }
        queue
    }

    /// Indexes a record that was created or changed. `timer_was` is its
    /// `terminal_since` before the change.
    pub fn track(&mut self, key: &DeploymentKey, record: &Record, timer_was: Option<Millis>) {
        if timer_was != record.terminal_since {
            if let Some(since) = timer_was {
                self.timers.remove(&(since, key.clone()));
            }
            if let Some(since) = record.terminal_since {
                self.timers.insert((since, key.clone()));
            }
        }
        let facts = &record.facts;
        if due_by_details(key, facts) {
            if !self.details_complete.contains(key) {
                self.details_complete.insert(key.clone());
            }
        } else {
            self.details_complete.remove(key);
        }
        let unchanged = self.group_of.get(key).is_some_and(|group| {
            (group.application.as_str(), group.deployment_group.as_str()) == group_names(facts)
        });
        if !unchanged {
            self.leave_group(key);
            let group = group_key(key, facts);
            self.open.entry(group.clone()).or_default().insert(key.clone());
            self.group_of.insert(key.clone(), group);
        }
    }

    /// Forgets a record that was counted, adopted or dropped.
    pub fn untrack(&mut self, key: &DeploymentKey, record: &Record) {
        if let Some(since) = record.terminal_since {
            self.timers.remove(&(since, key.clone()));
        }
        self.details_complete.remove(key);
        self.leave_group(key);
    }

    fn leave_group(&mut self, key: &DeploymentKey) {
        let Some(group) = self.group_of.remove(key) else { return };
        if let Some(members) = self.open.get_mut(&group) {
            members.remove(key);
            if members.is_empty() {
                self.open.remove(&group);
            }
        }
    }

    /// Records that may be due: API details complete, or terminal since
    /// `terminal_by` or earlier.
    pub fn candidates(&self, terminal_by: Millis) -> BTreeSet<DeploymentKey> {
        let expired = self.timers.iter().take_while(|(since, _)| *since <= terminal_by).map(|(_, key)| key);
        self.details_complete.iter().chain(expired).cloned().collect()
    }

    /// The other unsettled records of `key`'s group.
    pub fn peers<'a>(&'a self, key: &'a DeploymentKey) -> impl Iterator<Item = &'a DeploymentKey> + 'a {
        let group = self.group_of.get(key).and_then(|group| self.open.get(group));
        group.into_iter().flatten().filter(move |peer| *peer != key)
    }

    /// The unsettled records of a group.
    pub fn open_in<'a>(&'a self, group: &GroupKey) -> impl Iterator<Item = &'a DeploymentKey> + 'a {
        self.open.get(group).into_iter().flatten()
    }

    /// Every settle timer starts again at `now`.
    pub fn restart_timers(&mut self, now: Millis) {
        self.timers = std::mem::take(&mut self.timers).into_iter().map(|(_, key)| (now, key)).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::{decode, Decoded};
    use crate::ledger::Ledger;
    use crate::simulator::Fleet;

    /// The indexes must never drift from the records they are derived from,
    /// and settling through them must leave no record behind that the rule
    /// says is ready.
    #[test]
    fn live_settling_through_the_queue_misses_nothing() {
        let settle_time = 20_000;
        let mut ledger = Ledger::new(settle_time);
        let mut fleet = Fleet::new(11);
        let start: Millis = 1_700_000_000_000;
        let mut settled = 0;
        for step in 0..2_400 {
            let now = start + step * 250;
            for message in fleet.advance(now) {
                // Drop a third of the API views, so that many deployments
                // settle by their timer rather than by complete details.
                let api_view = message.contains("\"deploymentInfo\"") || message.contains("\"deploymentTarget");
                if api_view && message.len() % 3 == 0 {
                    continue;
                }
                if let Ok(Decoded::Observations(observations)) = decode(message.as_bytes()) {
                    for observation in &observations {
                        ledger.apply(observation, now);
                    }
                }
            }
            settled += ledger.settle(now, false);

            let rebuilt = SettleQueue::of(&ledger.records);
            assert_eq!(ledger.settle_queue.as_ref(), Some(&rebuilt), "indexes drifted at step {step}");
            for (key, record) in &ledger.records {
                let ready = ledger.waited(record, now, 2 * settle_time)
                    || (ledger.due(key, record, now) && !ledger.blocked(key, record, now));
                assert!(!(record.facts.is_terminal() && ready), "{key:?} was ready but not settled at step {step}");
            }
        }
        assert!(settled > 50, "the fleet finished only {settled} deployments in ten minutes");
        assert!(ledger.records.len() < 40, "{} records still unsettled", ledger.records.len());
    }
}
