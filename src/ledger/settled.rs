//! What the ledger keeps of a deployment once it is counted.
//!
//! A settled deployment's facts are no longer needed in full: its counters
//! are final. What remains is what the rolling windows, deduplication and
//! rollback links still ask of it, packed into 24 bytes and keyed by a
//! 128-bit hash of its deployment id, so that 30 days of 10k busy groups (3M
//! deployments) fit in memory. Two deployments with the same id in different
//! accounts or regions are kept apart by their location hashes, which the set
//! keeps once per group (a group lies in one account and region) rather than
//! in every entry.
//!
//! The hashes are keyed (SipHash-1-3 with a secret key kept in the store):
//! whoever may send messages could otherwise craft a deployment id that
//! collides with a real one and have it taken for counted already.

use std::collections::HashMap;
use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use siphasher::sip128::Hasher128;

use crate::domain::{Millis, RollbackCause, Status};

/// The secret key of the id and location hashes. It is stored with the
/// ledger, so that the hashes stay the same across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashKey([u64; 2]);

impl HashKey {
    /// A new key from the operating system's random source.
    pub fn random() -> HashKey {
        let mut bytes = [0u8; 16];
        // The system random source does not fail on the platforms we run on;
        // if it ever did, a key from the clock and the process still beats a
        // fixed one.
        if aws_lc_rs::rand::fill(&mut bytes).is_err() {
            let clock = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            bytes[..8].copy_from_slice(&(clock.as_nanos() as u64).to_le_bytes());
            bytes[8..].copy_from_slice(&u64::from(std::process::id()).to_le_bytes());
        }
        let half = |range: std::ops::Range<usize>| u64::from_le_bytes(bytes[range].try_into().unwrap_or_default());
        HashKey([half(0..8), half(8..16)])
    }

    /// The 128-bit hash of a deployment id, as two halves (a `u128` would
    /// double the alignment, and the size, of every settled table slot).
    fn id(self, deployment_id: &str) -> IdHash {
        let mut hasher = siphasher::sip128::SipHasher13::new_with_keys(self.0[0], self.0[1]);
        hasher.write(deployment_id.as_bytes());
        let hash = hasher.finish128();
        IdHash(hash.h1, hash.h2)
    }

    /// A 32-bit hash of an account or a region: enough to tell apart the few
    /// locations that share one deployment id.
    fn location(self, text: &str) -> u32 {
        let mut hasher = siphasher::sip::SipHasher13::new_with_keys(self.0[1], self.0[0]);
        hasher.write(text.as_bytes());
        (hasher.finish() >> 32) as u32
    }
}

/// A deployment id's keyed hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdHash(u64, u64);

/// Flag bits of [`Settled`].
mod flag {
    pub const FINISHED_KNOWN: u16 = 1;
    pub const DURATION_KNOWN: u16 = 1 << 1;
    pub const ROLLBACK: u16 = 1 << 2;
    pub const CHANGE: u16 = 1 << 3;
    pub const CHANGE_FAILURE: u16 = 1 << 4;
    pub const ROLLED_BACK: u16 = 1 << 5;
    pub const ANNOUNCED: u16 = 1 << 6;
    /// Its lead time was decided: observed, or counted as unknown (or it is
    /// no change and has none). Never decided twice.
    pub const LEAD_TIME_DONE: u16 = 1 << 7;
    /// Two bits: why it ended, as a [`RollbackCause`], for a rollback of it
    /// counted later.
    pub const CAUSE_SHIFT: u16 = 8;
    pub const CAUSE_MASK: u16 = 0b11 << CAUSE_SHIFT;
}

/// The causes by their two bits in [`Settled`]'s flags: no bits, unknown.
const CAUSE_BITS: [RollbackCause; 4] =
    [RollbackCause::Unknown, RollbackCause::Failure, RollbackCause::Alarm, RollbackCause::Manual];

/// A counted deployment, compacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settled {
    /// Index of its group in the ledger's group table.
    pub group: u32,
    duration_ms: u32,
    finished_at: Millis,
    pub status: Status,
    flags: u16,
}

/// How a settled deployment counted, as the windows need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub finished_at: Option<Millis>,
    pub duration_ms: Option<Millis>,
    pub is_rollback: bool,
    pub is_change: bool,
    pub is_change_failure: bool,
    pub rolled_back: bool,
    /// An event source (not only the API) reported its state changes.
    pub announced: bool,
}

impl Settled {
    /// `retained_at` stands in for an unknown completion time, so that
    /// retention can still drop the entry one day.
    pub fn new(group: u32, status: Status, outcome: Outcome, retained_at: Millis) -> Settled {
        let mut flags = 0;
        for (set, bit) in [
            (outcome.finished_at.is_some(), flag::FINISHED_KNOWN),
            (outcome.duration_ms.is_some(), flag::DURATION_KNOWN),
            (outcome.is_rollback, flag::ROLLBACK),
            (outcome.is_change, flag::CHANGE),
            (outcome.is_change_failure, flag::CHANGE_FAILURE),
            (outcome.rolled_back, flag::ROLLED_BACK),
            (outcome.announced, flag::ANNOUNCED),
        ] {
            if set {
                flags |= bit;
            }
        }
        Settled {
            group,
            // Durations are clamped to two weeks (1.2e9 ms) before they get here.
            duration_ms: outcome.duration_ms.map_or(0, |d| u32::try_from(d.max(0)).unwrap_or(u32::MAX)),
            finished_at: outcome.finished_at.unwrap_or(retained_at),
            status,
            flags,
        }
    }

    fn has(&self, bit: u16) -> bool {
        self.flags & bit != 0
    }

    pub fn outcome(&self) -> Outcome {
        Outcome {
            finished_at: self.has(flag::FINISHED_KNOWN).then_some(self.finished_at),
            duration_ms: self.has(flag::DURATION_KNOWN).then_some(Millis::from(self.duration_ms)),
            is_rollback: self.has(flag::ROLLBACK),
            is_change: self.has(flag::CHANGE),
            is_change_failure: self.has(flag::CHANGE_FAILURE),
            rolled_back: self.has(flag::ROLLED_BACK),
            announced: self.has(flag::ANNOUNCED),
        }
    }

    /// The time retention goes by: completion, or when it was counted.
    pub fn retention_time(&self) -> Millis {
        self.finished_at
    }

    /// A rollback named this deployment after it was counted. Returns whether
    /// that makes it a change failure it was not counted as.
    pub fn mark_rolled_back(&mut self) -> bool {
        self.flags |= flag::ROLLED_BACK;
        let newly_failed = self.has(flag::CHANGE) && !self.has(flag::CHANGE_FAILURE);
        if newly_failed {
            self.flags |= flag::CHANGE_FAILURE;
        }
        newly_failed
    }

    pub fn lead_time_done(&self) -> bool {
        self.has(flag::LEAD_TIME_DONE)
    }

    pub fn mark_lead_time_done(&mut self) {
        self.flags |= flag::LEAD_TIME_DONE;
    }

    /// Remembers why it ended (see [`RollbackCause::of`]).
    pub fn set_cause(&mut self, cause: RollbackCause) {
        let bits = CAUSE_BITS.iter().position(|c| *c == cause).unwrap_or_default() as u16;
        self.flags = (self.flags & !flag::CAUSE_MASK) | (bits << flag::CAUSE_SHIFT);
    }

    /// Why it ended: the cause of a rollback that undid it.
    pub fn cause(&self) -> RollbackCause {
        CAUSE_BITS[usize::from((self.flags & flag::CAUSE_MASK) >> flag::CAUSE_SHIFT)]
    }
}

/// Settled deployments by deployment id. Ids are unique in practice; the
/// rare id seen in two accounts or regions keeps its second entry aside.
#[derive(Debug, Clone)]
pub struct SettledSet {
    key: HashKey,
    by_id: HashMap<IdHash, Settled>,
    twins: HashMap<(IdHash, Location), Settled>,
    /// The location of each group's entries, by group index.
    locations: Vec<Location>,
}

/// Hashes of an account and a region.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Location {
    account: u32,
    region: u32,
}

impl Location {
    /// Whether a reference with these (possibly unknown) account and region can mean this location.
    fn admits(self, key: HashKey, account: Option<&str>, region: Option<&str>) -> bool {
        account.is_none_or(|a| key.location(a) == self.account) && region.is_none_or(|r| key.location(r) == self.region)
    }
}

/// Where a settled entry lives, to update or remove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SettledKey {
    pub id: IdHash,
    pub account: u32,
    pub region: u32,
}

impl SettledKey {
    fn location(self) -> Location {
        Location { account: self.account, region: self.region }
    }

    fn at(id: IdHash, location: Location) -> SettledKey {
        SettledKey { id, account: location.account, region: location.region }
    }
}

impl SettledSet {
    /// An empty set whose hashes use `key`.
    pub fn new(key: HashKey) -> SettledSet {
        SettledSet { key, by_id: HashMap::new(), twins: HashMap::new(), locations: Vec::new() }
    }

    pub fn len(&self) -> usize {
        self.by_id.len() + self.twins.len()
    }

    pub fn key(&self, deployment_id: &str, account: &str, region: &str) -> SettledKey {
        SettledKey { id: self.key.id(deployment_id), account: self.key.location(account), region: self.key.location(region) }
    }

    fn location_of(&self, entry: &Settled) -> Location {
        self.locations.get(entry.group as usize).copied().unwrap_or_default()
    }

    /// Whether the main entry for `key.id` is the one at `key`'s location.
    fn main_is(&self, key: SettledKey) -> bool {
        self.by_id.get(&key.id).is_some_and(|e| self.location_of(e) == key.location())
    }

    pub fn insert(&mut self, key: SettledKey, entry: Settled) {
        let group = entry.group as usize;
        if self.locations.len() <= group {
            self.locations.resize(group + 1, Location::default());
        }
        self.locations[group] = key.location();
        match self.by_id.get(&key.id) {
            Some(existing) if self.location_of(existing) != key.location() => {
                self.twins.insert((key.id, key.location()), entry);
            }
            _ => {
                self.by_id.insert(key.id, entry);
            }
        }
    }

    pub fn remove(&mut self, key: SettledKey) {
        if self.main_is(key) {
            self.by_id.remove(&key.id);
        } else {
            self.twins.remove(&(key.id, key.location()));
        }
    }

    /// The settled deployments a reference can mean (its account or region may be unknown).
    pub fn matching(&self, deployment_id: &str, account: Option<&str>, region: Option<&str>) -> Vec<(SettledKey, Settled)> {
        let id = self.key.id(deployment_id);
        let main = self.by_id.get(&id).map(|e| (SettledKey::at(id, self.location_of(e)), *e));
        let twins = self
            .twins
            .iter()
            .filter(|((twin_id, _), _)| *twin_id == id)
            .map(|(&(id, location), e)| (SettledKey::at(id, location), *e));
        main.into_iter().chain(twins).filter(|(key, _)| key.location().admits(self.key, account, region)).collect()
    }

    pub fn get(&self, key: SettledKey) -> Option<Settled> {
        if self.main_is(key) {
            self.by_id.get(&key.id).copied()
        } else {
            self.twins.get(&(key.id, key.location())).copied()
        }
    }

    pub fn get_mut(&mut self, key: SettledKey) -> Option<&mut Settled> {
        if self.main_is(key) {
            self.by_id.get_mut(&key.id)
        } else {
            self.twins.get_mut(&(key.id, key.location()))
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (SettledKey, &Settled)> {
        self.by_id
            .iter()
            .map(|(&id, e)| (SettledKey::at(id, self.location_of(e)), e))
            .chain(self.twins.iter().map(|(&(id, location), e)| (SettledKey::at(id, location), e)))
    }

    /// The entries alone, for the windows: no key to rebuild per entry.
    pub fn entries(&self) -> impl Iterator<Item = &Settled> {
        self.by_id.values().chain(self.twins.values())
    }

    /// Drops entries retained until before `cutoff`; returns their keys.
    pub fn expire(&mut self, cutoff: Millis) -> Vec<SettledKey> {
        let expired: Vec<SettledKey> =
            self.iter().filter(|(_, e)| e.retention_time() < cutoff).map(|(k, _)| k).collect();
        for key in &expired {
            self.remove(*key);
        }
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome() -> Outcome {
        Outcome {
            finished_at: Some(60_000),
            duration_ms: Some(30_000),
            is_rollback: false,
            is_change: true,
            is_change_failure: false,
            rolled_back: false,
            announced: true,
        }
    }

    #[test]
    fn an_entry_keeps_what_the_windows_need_in_24_bytes() {
        assert_eq!(std::mem::size_of::<Settled>(), 24);
        let entry = Settled::new(7, Status::Succeeded, outcome(), 0);
        assert_eq!(entry.outcome(), outcome());
        assert_eq!(entry.group, 7);
    }

    #[test]
    fn an_entry_keeps_why_it_ended_beside_its_other_flags() {
        for cause in RollbackCause::ALL {
            let mut entry = Settled::new(0, Status::Stopped, outcome(), 0);
            entry.mark_lead_time_done();
            entry.set_cause(RollbackCause::Alarm);
            entry.set_cause(cause);
            assert_eq!(entry.cause(), cause);
            assert!(entry.lead_time_done());
            assert_eq!(entry.outcome(), outcome());
        }
    }

    #[test]
    fn a_late_rollback_turns_a_change_into_a_change_failure_once() {
        let mut entry = Settled::new(0, Status::Succeeded, outcome(), 0);
        assert!(entry.mark_rolled_back());
        assert!(!entry.mark_rolled_back());
        assert!(entry.outcome().is_change_failure && entry.outcome().rolled_back);
    }

    #[test]
    fn the_same_id_in_two_accounts_stays_apart() {
        let mut set = SettledSet::new(HashKey::random());
        let first = Settled::new(0, Status::Succeeded, outcome(), 0);
        let second = Settled::new(1, Status::Failed, outcome(), 0);
        let second_key = set.key("d-1", "222", "us-east-1");
        set.insert(set.key("d-1", "111", "us-east-1"), first);
        set.insert(second_key, second);
        assert_eq!(set.len(), 2);
        assert_eq!(set.matching("d-1", Some("222"), None).iter().map(|(_, e)| e.group).collect::<Vec<_>>(), vec![1]);
        assert_eq!(set.get(second_key).map(|e| e.status), Some(Status::Failed));
        assert_eq!(set.iter().filter(|(key, _)| *key == second_key).count(), 1);
        assert_eq!(set.matching("d-1", None, None).len(), 2);
        assert!(set.matching("d-2", None, None).is_empty());
        assert_eq!(set.expire(1), vec![]);
        assert_eq!(set.expire(60_001).len(), 2);
        assert_eq!(set.len(), 0);
    }

    #[test]
    fn hashes_depend_on_the_key_and_stay_with_it() {
        let key = HashKey::random();
        assert_eq!(key.id("d-1"), key.id("d-1"));
        assert_ne!(key.id("d-1"), key.id("d-2"));
        assert_ne!(key.id("d-1"), HashKey::random().id("d-1"), "another key, other hashes");
        let stored: HashKey = postcard::from_bytes(&postcard::to_stdvec(&key).expect("encodes")).expect("decodes");
        assert_eq!(stored.id("d-1"), key.id("d-1"));
        assert_eq!(stored.location("us-east-1"), key.location("us-east-1"));
    }
}
