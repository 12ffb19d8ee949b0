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

use std::hash::Hasher;

use serde::{Deserialize, Serialize};
use siphasher::sip128::{Hasher128, SipHasher13};

use crate::domain::{Millis, Observation};

/// A message's identity: a 128-bit SipHash-1-3 of the provider's id or of
/// the message's decoded content. 128 bits because the log keeps millions of
/// them and a collision by chance would call a new message a duplicate; a
/// fixed key because the identities are stored, so they must not change
/// between runs. It is no security boundary: a sender who crafted a collision
/// would only move one message from `applied` to `duplicate` (every message
/// is folded either way). SipHash rather than a cryptographic digest because
/// it is hashed for every message, and SHA-256 cost a tenth of `replay`'s
/// ingest (docs/performance.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageId(pub [u8; 16]);

/// The hash's fixed key (any constant does; these are the first digits of pi).
const KEY: (u64, u64) = (0x243f_6a88_85a3_08d3, 0x1319_8a2e_0370_7344);

impl MessageId {
    /// The identity of a message whose provider names it: `provider` says
    /// whose id it is, so ids of different providers never meet.
    pub fn provider(provider: &str, id: &str) -> MessageId {
        MessageId::of(&[provider.as_bytes(), &[0], id.as_bytes()])
    }

    /// The identity of a message that carries no id: its observations in
    /// postcard (not self-describing, so only the values count, and
    /// deterministic: the observations hold no hash maps). `scratch` is reused
    /// between messages to spare an allocation each.
    pub fn content(observations: &[Observation], scratch: &mut Vec<u8>) -> MessageId {
        scratch.clear();
        // Serializing plain data into a Vec cannot fail: postcard errors only on
        // serde features these types do not use.
        let serialized = postcard::to_io(observations, &mut *scratch).is_ok();
        debug_assert!(serialized, "observations serialize");
        MessageId::of(&[b"content\0", scratch])
    }

    fn of(parts: &[&[u8]]) -> MessageId {
        let mut hasher = SipHasher13::new_with_keys(KEY.0, KEY.1);
        for part in parts {
            hasher.write(part);
        }
        MessageId(hasher.finish128().as_bytes())
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
