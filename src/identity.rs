//! What makes two messages the same message: the split of
//! `codedeploy_exporter_events_total` into `applied` and `duplicate`.
//!
//! A message's identity is the id its provider gave it where there is one
//! (EventBridge `id`, SNS `MessageId`), otherwise a hash of what it decodes to
//! (its observations, serialized canonically). A message is `applied` the
//! first time its identity is seen and `duplicate` every later time, so the
//! split depends on the set of messages only, never on their order (issue 12:
//! counting "did the ledger change" made it depend on the order).
//!
//! The identity only labels the count: every message is folded whatever its
//! outcome, so two different messages that share an id (a fake that reuses
//! ids, say) cost a miscount of this counter, never a fact of the ledger.
//!
//! This module owns the identities and the [`MessageLog`] of those seen; it
//! does not decide what is folded, and it does no I/O (the store persists
//! the log's changes).

use std::collections::hash_map::{Entry, HashMap};

use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};

use crate::domain::{Millis, Observation};

/// A message's identity: the first 128 bits of a SHA-256 over the provider's
/// id or over the message's decoded content. 128 bits because the log keeps
/// millions of them and a collision would silently call a new message a
/// duplicate; SHA-256 because the hash is stored, so it must not change
/// between builds (std's hashers may), and because a sender must not be able
/// to make a message collide with another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

impl MessageId {
    /// The identity of a message whose provider names it: `provider` says
    /// whose id it is, so ids of different providers never meet.
    pub fn provider(provider: &str, id: &str) -> MessageId {
        let mut context = digest::Context::new(&digest::SHA256);
        context.update(provider.as_bytes());
        context.update(&[0]);
        context.update(id.as_bytes());
        MessageId::from_digest(context.finish())
    }

    /// The identity of a message that carries no id: its observations in
    /// postcard (not self-describing, so only the values count, and
    /// deterministic: the observations hold no hash maps). `scratch` is reused
    /// between messages to spare an allocation each.
    pub fn content(observations: &[Observation], scratch: &mut Vec<u8>) -> MessageId {
        scratch.clear();
        scratch.extend_from_slice(b"content\0");
        // Serializing plain data into a Vec cannot fail: postcard errors only on
        // serde features these types do not use.
        let serialized = postcard::to_io(observations, &mut *scratch).is_ok();
        debug_assert!(serialized, "observations serialize");
        MessageId::from_digest(digest::digest(&digest::SHA256, scratch))
    }

    fn from_digest(digest: digest::Digest) -> MessageId {
        let mut id = [0; 16];
        id.copy_from_slice(&digest.as_ref()[..16]);
        MessageId(id)
    }
}

/// Hours since the epoch: the granularity at which identities are forgotten.
pub type Hour = u32;

fn hour(at: Millis) -> Hour {
    (at.max(0) / 3_600_000).try_into().unwrap_or(Hour::MAX)
}

/// The identities seen, each with the hour it was first seen, so that a
/// re-delivery is a `duplicate` (across restarts too: the store keeps the log).
#[derive(Debug, Clone, Default)]
pub struct MessageLog {
    seen: HashMap<MessageId, Hour, foldhash::fast::RandomState>,
    /// Whether a store reads [`MessageLog::changes`]; `replay` has none and
    /// keeps no copy of what it sees.
    tracked: bool,
    /// First seen since the last commit.
    added: Vec<(Hour, MessageId)>,
    /// Every identity first seen before this hour is to be forgotten by the store too.
    forget_before: Option<Hour>,
}

/// What a commit writes of the log.
#[derive(Debug, Clone, Copy)]
pub struct LogChanges<'a> {
    pub added: &'a [(Hour, MessageId)],
    pub forget_before: Option<Hour>,
}

impl LogChanges<'_> {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.forget_before.is_none()
    }
}

impl MessageLog {
    /// A log whose changes a store commits.
    pub fn tracked() -> MessageLog {
        MessageLog { tracked: true, ..MessageLog::default() }
    }

    /// Continues from what a store held.
    pub fn restore(entries: Vec<(Hour, MessageId)>) -> MessageLog {
        let mut log = MessageLog::tracked();
        log.seen.reserve(entries.len());
        for (first_seen, id) in entries {
            log.seen.insert(id, first_seen);
        }
        log
    }

    /// Records `id` as seen at `now`; true when it had not been seen before
    /// (the message is applied), false for a re-delivery.
    pub fn first_sighting(&mut self, id: MessageId, now: Millis) -> bool {
        let at = hour(now);
        let new = match self.seen.entry(id) {
            Entry::Occupied(_) => false,
            Entry::Vacant(slot) => {
                slot.insert(at);
                true
            }
        };
        if new && self.tracked {
            self.added.push((at, id));
        }
        new
    }

    /// Forgets the identities first seen before `cutoff` (hour by hour): a
    /// re-delivery later than that counts as applied again. Returns how many
    /// were forgotten.
    pub fn forget_before(&mut self, cutoff: Millis) -> usize {
        let cutoff = hour(cutoff);
        let before = self.seen.len();
        self.seen.retain(|_, first_seen| *first_seen >= cutoff);
        self.added.retain(|(first_seen, _)| *first_seen >= cutoff);
        if self.tracked {
            self.forget_before = self.forget_before.max(Some(cutoff));
        }
        before - self.seen.len()
    }

    /// What the next commit must write.
    pub fn changes(&self) -> LogChanges<'_> {
        LogChanges { added: &self.added, forget_before: self.forget_before }
    }

    /// The changes are durable.
    pub fn mark_committed(&mut self) {
        self.added.clear();
        self.forget_before = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeploymentRef, Provenance};

    fn observation(id: &str) -> Observation {
        Observation::new(
            DeploymentRef { account: Some("1".into()), region: Some("r".into()), deployment_id: id.into() },
            Provenance::Event,
        )
    }

    #[test]
    fn identities_tell_providers_and_contents_apart() {
        let mut scratch = Vec::new();
        assert_eq!(MessageId::provider("sns", "a"), MessageId::provider("sns", "a"));
        assert_ne!(MessageId::provider("sns", "a"), MessageId::provider("eventbridge", "a"));
        let a = MessageId::content(&[observation("d-A")], &mut scratch);
        assert_eq!(a, MessageId::content(&[observation("d-A")], &mut scratch));
        assert_ne!(a, MessageId::content(&[observation("d-B")], &mut scratch));
        assert_ne!(a, MessageId::content(&[observation("d-A"), observation("d-A")], &mut scratch));
    }

    #[test]
    fn the_log_forgets_by_the_hour_and_hands_the_store_what_changed() {
        const HOUR: Millis = 3_600_000;
        let mut log = MessageLog::tracked();
        let (old, new) = (MessageId::provider("sns", "old"), MessageId::provider("sns", "new"));
        assert!(log.first_sighting(old, HOUR));
        assert!(!log.first_sighting(old, 5 * HOUR), "a re-delivery");
        assert!(log.first_sighting(new, 3 * HOUR));
        assert_eq!(log.changes().added, [(1, old), (3, new)]);
        log.mark_committed();
        assert!(log.changes().is_empty());

        assert_eq!(log.forget_before(2 * HOUR + 1), 1);
        assert_eq!(log.changes().forget_before, Some(2));
        assert!(log.first_sighting(old, 6 * HOUR), "forgotten, so applied again");
        assert!(!log.first_sighting(new, 6 * HOUR));

        let mut untracked = MessageLog::default();
        assert!(untracked.first_sighting(old, HOUR));
        untracked.forget_before(2 * HOUR);
        assert!(untracked.changes().is_empty(), "replay keeps no copy for a store");
    }
}
