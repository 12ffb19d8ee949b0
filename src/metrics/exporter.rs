//! The exporter's own health: events per source and outcome, source liveness,
//! ingest lag. Updated directly by the ingest path; rendered with the domain
//! metrics from a copy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::Millis;
use crate::ledger::histogram::{Buckets, Histogram};

/// Where a message came from; the `source` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Source {
    Webhook,
    Replay,
    Demo,
    /// EventBridge (or SNS) messages consumed from SQS queues.
    Sqs,
    /// The CodeDeploy API poller: enrichment, reconciliation and backfill.
    Poller,
    /// The commit-time resolver (S3 metadata, git repositories) for lead time.
    LeadTime,
}

impl Source {
    pub fn label(self) -> &'static str {
        match self {
            Source::Webhook => "webhook",
            Source::Replay => "replay",
            Source::Demo => "demo",
            Source::Sqs => "sqs",
            Source::Poller => "poller",
            Source::LeadTime => "lead_time",
        }
    }

    /// Live sources deliver events as they happen, so their lag and last
    /// success mean something; a replayed file's events are as old as the file,
    /// and leaving the wall clock out keeps `replay` output deterministic.
    pub fn is_live(self) -> bool {
        !matches!(self, Source::Replay)
    }
}

/// What became of one message; the `outcome` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// It changed the ledger.
    Applied,
    /// It was decoded but told the ledger nothing new (a re-delivery).
    Duplicate,
    /// A recognised message without deployment state (an SNS trigger test).
    Ignored,
    /// It could not be decoded.
    Rejected,
}

impl Outcome {
    pub const ALL: [Outcome; 4] =
        [Outcome::Applied, Outcome::Duplicate, Outcome::Ignored, Outcome::Rejected];

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
            Outcome::Ignored => "ignored",
            Outcome::Rejected => "rejected",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExporterMetrics {
    pub events: BTreeMap<(Source, Outcome), u64>,
    pub source_up: BTreeMap<Source, bool>,
    pub last_success: BTreeMap<Source, Millis>,
    pub lag: BTreeMap<Source, Histogram>,
    /// AWS API request attempts by (service, operation, outcome).
    pub aws_requests: BTreeMap<(String, String, String), u64>,
    /// Store commits that failed since start; `None` when no store backs the
    /// exporter (`replay`, `demo` without `--storage.path`). Not persisted: it
    /// counts exactly the moments the store could not be written.
    #[serde(skip)]
    pub store_commit_failures: Option<u64>,
    /// Deployments each poller scope (`account/region`) waits to fetch again
    /// after a failed call. Live state, not persisted: after a restart the
    /// backfill fetches them.
    #[serde(skip)]
    pub poller_pending: BTreeMap<String, u64>,
    /// API reads each poller scope's first backfill still has to make
    /// (deployments to fetch, and finished ones whose targets are unread).
    /// Live state like `poller_pending`: a restart backfills again.
    #[serde(skip)]
    pub backfill_remaining: BTreeMap<String, u64>,
    /// Bytes of the `--replay` files still to read; set only while `serve`
    /// loads them, before the ledger is served.
    #[serde(skip)]
    pub preload_remaining_bytes: Option<u64>,
}

impl ExporterMetrics {
    /// Declares a source so all of its series exist (at 0) from the first scrape.
    pub fn register(&mut self, source: Source) {
        for outcome in Outcome::ALL {
            self.events.entry((source, outcome)).or_insert(0);
        }
        self.source_up.insert(source, true);
        if source.is_live() {
            self.lag.entry(source).or_insert_with(|| Histogram::new(Buckets::Lag));
        }
    }

    pub fn count(&mut self, source: Source, outcome: Outcome, now: Millis) {
        *self.events.entry((source, outcome)).or_insert(0) += 1;
        if outcome != Outcome::Rejected && source.is_live() {
            self.last_success.insert(source, now);
        }
    }

    /// A source's health: `up`, and when up, its last success (SQS: a
    /// successful receive; the poller: a successful poll).
    pub fn set_health(&mut self, source: Source, up: bool, now: Millis) {
        self.source_up.insert(source, up);
        if up {
            self.last_success.insert(source, now);
        }
    }

    /// One AWS request attempt (retries count one each).
    pub fn count_aws_request(&mut self, service: &str, operation: &str, outcome: &str) {
        *self.aws_requests.entry((service.to_owned(), operation.to_owned(), outcome.to_owned())).or_insert(0) += 1;
    }

    pub fn set_poller_pending(&mut self, scope: &str, pending: usize) {
        self.poller_pending.insert(scope.to_owned(), pending as u64);
    }

    pub fn set_backfill_remaining(&mut self, scope: &str, remaining: usize) {
        self.backfill_remaining.insert(scope.to_owned(), remaining as u64);
    }

    pub fn observe_lag(&mut self, source: Source, event_time: Millis, now: Millis) {
        if source.is_live() {
            self.lag
                .entry(source)
                .or_insert_with(|| Histogram::new(Buckets::Lag))
                .observe((now - event_time).max(0));
        }
    }
}
