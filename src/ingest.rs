//! The one path every message takes: decode → fold into the ledger → count the
//! outcome → commit to the store → acknowledge.
//!
//! [`Exporter`] is synchronous and owns all state (`replay` uses it directly).
//! In `serve`, sources hand messages to an [`IngestHandle`]; one [`Writer`],
//! on a thread of its own (a commit's fsync must not hold up the async
//! runtime), folds them in batches, commits each batch to the store in one
//! transaction (a group commit: one fsync for many messages), and only then
//! answers each submitter, so a webhook's 2xx or an SQS delete always follows
//! a durable commit.
//!
//! The writer holds the exporter's lock from the fold until the commit has
//! returned, so a scrape never sees a batch in the middle of it. When the
//! commit fails, the batch stays in memory (it goes out with the next
//! commit) but is not shown: until a commit succeeds, scrapes get the
//! exporter's own counters as of the last commit and no deployment series
//! (see [`Exporter::exposition`]), and `/-/ready` answers 503 ([`Readiness`]).
//! A counter can thus never go down across a crash and restart. It is a
//! `std::sync::Mutex`, not tokio's: nothing awaits while holding it. As a
//! commit may hold it for as long as the disk takes, scrapes wait for it on
//! the blocking pool, never on a runtime worker, and give up in time
//! ([`crate::http`]).

use compact_str::CompactString;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::decode::{self, DecodeError, Decoded};
use crate::domain::{Millis, Observation};
use crate::group_info::{GroupInfo, GroupInfoTable, GroupLabels, InfoSeries};
use crate::identity::{MessageId, MessageLog};
use crate::ledger::{GroupKey, Ledger};
use crate::metrics::{ExporterMetrics, Exposition, Outcome, Source, Unauthenticated};
use crate::store::{Commit, Store, StoreError, Stored};

/// The exporter's version, as shown by `codedeploy_exporter_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git revision the exporter was built from (`unknown` outside a git
/// checkout), as shown by `--version` and `codedeploy_exporter_build_info`; see build.rs.
pub const REVISION: &str = env!("CODEDEPLOY_EXPORTER_REVISION");

#[derive(Debug, Clone)]
pub struct Exporter {
    ledger: Ledger,
    /// The identities of the messages applied, for the applied/duplicate split.
    messages: MessageLog,
    /// Reused to serialize a message's observations when its content is its identity.
    scratch: Vec<u8>,
    metrics: ExporterMetrics,
    /// The exporter's own counters changed since the last commit.
    metrics_dirty: bool,
    /// `metrics` as of the last commit that succeeded: what scrapes show of
    /// them while the latest commit failed.
    committed_metrics: ExporterMetrics,
    /// The latest commit failed: memory holds state the store does not.
    commit_failed: bool,
    defaults: Location,
    /// Requests refused before authentication: shown, never stored.
    unauthenticated: Arc<Unauthenticated>,
    /// The groups read from AWS (or given by the demo).
    group_info: GroupInfoTable,
    /// Which tags become labels of the info series, and what is production.
    group_labels: GroupLabels,
}

/// Account and region to assume for messages that do not carry them (API
/// output has neither); `replay --account/--region` sets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    pub account: Option<String>,
    pub region: Option<String>,
}

impl Exporter {
    pub fn new(settle_time_ms: Millis) -> Exporter {
        Exporter::restore(settle_time_ms, Stored::default())
    }

    /// An exporter no store backs (`replay`): it does not collect what a commit
    /// would write, and [`Exporter::pending_commit`] only ever holds its metrics.
    pub fn in_memory(settle_time_ms: Millis) -> Exporter {
        Exporter {
            ledger: Ledger::untracked(settle_time_ms),
            messages: MessageLog::default(),
            ..Exporter::new(settle_time_ms)
        }
    }

    /// Continues from what a store held.
    pub fn restore(settle_time_ms: Millis, stored: Stored) -> Exporter {
        Exporter {
            ledger: Ledger::restore(settle_time_ms, stored.meta, stored.records, stored.settled, stored.groups),
            messages: MessageLog::restore(stored.messages),
            scratch: Vec::new(),
            committed_metrics: stored.exporter.clone(),
            metrics: stored.exporter,
            metrics_dirty: false,
            commit_failed: false,
            defaults: Location::default(),
            unauthenticated: Arc::default(),
            group_info: GroupInfoTable::restore(stored.group_info),
            group_labels: GroupLabels::default(),
        }
    }

    /// The ingest time to give preloaded history (`--replay` files, the demo's
    /// past): long enough ago that it settles at the next [`Exporter::settle`].
    pub fn preload_time(&self, now: Millis) -> Millis {
        now - 2 * self.ledger.settle_time_ms()
    }

    /// Restarts the settle timers after downtime (see [`Ledger::restart_settle_timers`]).
    pub fn resume(&mut self, now: Millis) {
        self.ledger.restart_settle_timers(now);
    }

    /// The poller's first backfill is in: the API has given every deployment
    /// of the lookback, so no late message is expected for them, and the
    /// recoveries they close are observed now rather than a settle time later
    /// (when a new store's series are first shown, their history is whole).
    pub fn end_of_backfill(&mut self, now: Millis) {
        self.ledger.settle(now, false);
        self.ledger.end_of_history();
    }

    /// Bounds on groups, tracked deployments and times (see [`crate::ledger::limits`]).
    pub fn set_limits(&mut self, limits: crate::ledger::limits::Limits) {
        self.ledger.set_limits(limits);
    }

    /// Where lead time is looked for (see [`crate::ledger::LeadTimeConfig`]).
    pub fn with_lead_time(mut self, config: crate::ledger::LeadTimeConfig) -> Exporter {
        self.ledger.set_lead_time(config);
        self
    }

    /// Counted deployments whose commit time the resolver is to look up.
    pub fn lead_lookups(&self) -> Vec<crate::ledger::PendingLookup> {
        self.ledger.lead_lookups()
    }

    /// Which tags become labels of the info series, and what is production.
    pub fn with_group_labels(mut self, labels: GroupLabels) -> Exporter {
        self.group_labels = labels;
        self
    }

    /// Takes what was read of a group (see [`GroupInfoTable::apply`]); tag
    /// values past the label bound are counted.
    pub fn apply_group_info(&mut self, key: GroupKey, info: GroupInfo) {
        for _ in 0..self.group_info.apply(key, info) {
            self.ledger.note_limited(crate::ledger::limits::Limit::TagValue);
        }
    }

    /// The groups of `account` and `region` to read from AWS now (see [`GroupInfoTable::due`]).
    pub fn groups_due_for_info(&self, account: &str, region: &str, refresh_ms: Millis, now: Millis) -> Vec<GroupKey> {
        let groups = self.ledger.groups_in(account, region);
        self.group_info.due(&groups, &self.group_labels.tag_keys(), refresh_ms, now)
    }

    /// The tag keys the info series asks for (see [`GroupLabels::tag_keys`]).
    pub fn info_tag_keys(&self) -> std::collections::BTreeSet<compact_str::CompactString> {
        self.group_labels.tag_keys()
    }

    pub fn with_defaults(mut self, defaults: Location) -> Exporter {
        self.defaults = defaults;
        self
    }

    /// Declares a source so its series exist from the first scrape.
    pub fn register(&mut self, source: Source) {
        self.metrics.register(source);
        self.metrics_dirty = true;
    }

    /// A source's health (`codedeploy_exporter_source_up`, and its last
    /// success when up). Committed with the next batch or settle tick.
    pub fn set_source_health(&mut self, source: Source, up: bool, now: Millis) {
        self.metrics.set_health(source, up, now);
        self.metrics_dirty = true;
    }

    /// One AWS request attempt (`codedeploy_exporter_aws_requests_total`).
    pub fn count_aws_request(&mut self, service: &str, operation: &str, outcome: &str) {
        self.metrics.count_aws_request(service, operation, outcome);
        self.metrics_dirty = true;
    }

    /// A poller scope's retry set (`codedeploy_exporter_poller_pending_deployments`).
    /// Not committed: it is live state, rebuilt by the backfill after a restart.
    pub fn set_poller_pending(&mut self, scope: &str, pending: usize) {
        self.metrics.set_poller_pending(scope, pending);
    }

    /// How much of a poller scope's first backfill is still to be read
    /// (`codedeploy_exporter_backfill_remaining_deployments`). Not committed, like the retry set.
    pub fn set_backfill_remaining(&mut self, scope: &str, remaining: usize) {
        self.metrics.set_backfill_remaining(scope, remaining);
    }

    /// See [`Ledger::api_details_complete`].
    pub fn api_details_complete(&self, deployment: &crate::domain::DeploymentRef) -> bool {
        self.ledger.api_details_complete(deployment)
    }

    /// See [`Ledger::announced_by_event`].
    pub fn announced_by_event(&self, deployment: &crate::domain::DeploymentRef) -> bool {
        self.ledger.announced_by_event(deployment)
    }

    /// Counts a data-quality issue a source found.
    pub fn note_quality_issue(&mut self, issue: crate::ledger::QualityIssue) {
        self.ledger.note_quality_issue(issue);
        // The ledger's meta is written with every commit, but only a
        // non-empty commit is written at all.
        self.metrics_dirty = true;
    }

    /// Decodes one message and folds it in. The error is the reason it was rejected.
    pub fn ingest(&mut self, source: Source, bytes: &[u8], now: Millis) -> Result<Outcome, DecodeError> {
        self.fold(source, decode::decode_identified(bytes), now)
    }

    /// Folds observations a source built itself (the API poller, from SDK
    /// types); their content is their identity.
    pub fn ingest_observations(
        &mut self,
        source: Source,
        observations: Vec<Observation>,
        now: Millis,
    ) -> Result<Outcome, DecodeError> {
        self.apply(source, observations, None, now)
    }

    /// Same for a message already parsed as JSON (an element of a JSON array file).
    pub fn ingest_value(
        &mut self,
        source: Source,
        value: serde_json::Value,
        now: Millis,
    ) -> Result<Outcome, DecodeError> {
        self.fold(source, decode::decode_value_identified(value), now)
    }

    fn fold(
        &mut self,
        source: Source,
        decoded: Result<(Decoded, Option<MessageId>), DecodeError>,
        now: Millis,
    ) -> Result<Outcome, DecodeError> {
        match decoded {
            Ok((Decoded::Observations(observations), id)) => self.apply(source, observations, id, now),
            Ok((Decoded::Ignored(_), _)) => {
                self.count(source, Outcome::Ignored, now);
                Ok(Outcome::Ignored)
            }
            Err(error) => {
                self.count(source, Outcome::Rejected, now);
                Err(error)
            }
        }
    }

    /// Folds a message's observations. It is `applied` when its identity (the
    /// provider's id, else its content) is seen for the first time, else
    /// `duplicate` (see [`crate::identity`]): whether the ledger changed
    /// would depend on the order messages arrive in. Duplicates are folded
    /// too, as the fold is idempotent: an id reused for another message must
    /// not lose what that message says.
    ///
    /// A message past one of the ledger's bounds is refused as a whole, before
    /// anything of it is folded or its identity remembered.
    fn apply(
        &mut self,
        source: Source,
        mut observations: Vec<Observation>,
        id: Option<MessageId>,
        now: Millis,
    ) -> Result<Outcome, DecodeError> {
        for deployment in observations.iter_mut().map(|o| &mut o.deployment) {
            deployment.account = deployment.account.take().or_else(|| self.defaults.account.as_deref().map(CompactString::from));
            deployment.region = deployment.region.take().or_else(|| self.defaults.region.as_deref().map(CompactString::from));
        }
        if let Some(refusal) = observations.iter().find_map(|o| self.ledger.admit(o, now).err()) {
            self.ledger.note_limited(refusal.limit);
            self.count(source, Outcome::Rejected, now);
            return Err(DecodeError::Limited { limit: refusal.limit, detail: refusal.detail });
        }
        let id = id.unwrap_or_else(|| MessageId::content(&observations, &mut self.scratch));
        let outcome = if self.messages.first_sighting(id, now) { Outcome::Applied } else { Outcome::Duplicate };
        for observation in &observations {
            self.ledger.apply(observation, now);
            // Lag is how late a message arrives, observed once per event of
            // it; a re-delivery is not an arrival.
            if let (Outcome::Applied, Some(at)) = (outcome, observation.event_time) {
                self.metrics.observe_lag(source, at, now);
            }
        }
        self.count(source, outcome, now);
        Ok(outcome)
    }

    fn count(&mut self, source: Source, outcome: Outcome, now: Millis) {
        self.metrics.count(source, outcome, now);
        self.metrics_dirty = true;
    }

    /// Counts what is ready to be counted (see [`Ledger::settle`]).
    pub fn settle(&mut self, now: Millis, force: bool) -> usize {
        self.ledger.settle(now, force)
    }

    /// Drops records past retention (see [`Ledger::trim`]).
    pub fn trim(&mut self, cutoff: Millis) -> usize {
        self.ledger.trim(cutoff)
    }

    /// Forgets the identities of messages first seen before `cutoff` (see
    /// [`MessageLog::forget_before`]).
    pub fn forget_messages(&mut self, cutoff: Millis) -> usize {
        self.messages.forget_before(cutoff)
    }

    pub fn latest_time(&self) -> Option<Millis> {
        self.ledger.latest_time()
    }

    /// A copy of everything `/metrics` shows, windows anchored at `now`.
    ///
    /// While the latest commit failed, only what the store holds is shown: the
    /// exporter's own counters as of the last commit, the failure count, and
    /// no deployment series. Showing the ledger in memory would let a crash
    /// take back what a scrape saw (a counter going down); keeping a committed
    /// copy of the ledger to show instead would cost a snapshot's worth of
    /// memory at all times (~80 MB at 10k groups) for the rare failing store.
    /// The series come back with the next commit that succeeds.
    pub fn exposition(&self, now: Millis) -> Exposition {
        if self.commit_failed {
            let mut exporter = self.committed_metrics.clone();
            exporter.store_commit_failures = self.metrics.store_commit_failures;
            return self.without_ledger(exporter);
        }
        let ledger = self.ledger.snapshot(now);
        let group_info = self.info_series(&ledger);
        Exposition {
            ledger,
            group_info,
            exporter: self.metrics.clone(),
            unauthenticated: self.unauthenticated.snapshot(),
            version: VERSION,
            ledger_withheld: false,
            process: None,
            demo_app: None,
        }
    }

    /// One info row per group of `ledger`: what AWS said of it, else what its
    /// deployments said (the first compute platform they named).
    fn info_series(&self, ledger: &crate::ledger::Snapshot) -> InfoSeries {
        let rows = ledger
            .groups
            .iter()
            .map(|g| {
                let seen = g.stats.deployments.keys().map(|(kind, _)| kind.compute_platform.as_str());
                let seen = seen.filter(|p| *p != crate::group_info::UNKNOWN).min();
                self.group_labels.row(&g.key, self.group_info.get(&g.key), seen)
            })
            .collect();
        InfoSeries { tag_labels: self.group_labels.tags().iter().map(|t| t.label.clone()).collect(), rows }
    }

    /// The exporter's own series alone (`exporter` as given), no deployment series.
    fn without_ledger(&self, exporter: ExporterMetrics) -> Exposition {
        Exposition::without_ledger(exporter, self.unauthenticated.snapshot())
    }

    /// A store backs this exporter: its commit failures are counted (and shown).
    pub fn count_commit_failures(&mut self) {
        self.metrics.store_commit_failures.get_or_insert(0);
    }


    /// What the next commit must write.
    pub fn pending_commit(&self) -> Commit<'_> {
        Commit {
            ledger: self.ledger.changes(),
            messages: self.messages.changes(),
            group_info: self.group_info.changes(),
            exporter: self.metrics_dirty.then_some(&self.metrics),
        }
    }

    /// The pending commit is durable.
    pub fn mark_committed(&mut self) {
        self.ledger.mark_committed();
        self.messages.mark_committed();
        self.group_info.mark_committed();
        if self.metrics_dirty {
            self.committed_metrics.clone_from(&self.metrics);
        }
        self.metrics_dirty = false;
        self.commit_failed = false;
    }

    /// The pending commit failed (or panicked): it stays pending and goes out
    /// with the next commit; until then scrapes show only committed state.
    pub fn mark_commit_failed(&mut self) {
        self.commit_failed = true;
        if let Some(failures) = &mut self.metrics.store_commit_failures {
            *failures += 1;
        }
    }

    /// Writes everything pending to `store`; on failure it stays pending and
    /// goes out with the next commit.
    pub fn commit_to(&mut self, store: &mut dyn Store) -> Result<(), StoreError> {
        let commit = self.pending_commit();
        if !commit.is_empty() {
            if let Err(error) = store.commit(&commit) {
                self.mark_commit_failed();
                return Err(error);
            }
        }
        self.mark_committed();
        Ok(())
    }
}

/// A cheap-to-clone handle on the exporter, for scrapes, and on its readiness.
#[derive(Debug, Clone)]
pub struct SharedExporter(Arc<Shared>);

/// A change to the exporter that found its lock taken (see [`SharedExporter::update`]).
type Deferred = Box<dyn FnOnce(&mut Exporter) + Send>;

struct Shared {
    exporter: Mutex<Exporter>,
    /// Updates waiting for whoever takes the lock next, in the order they were made.
    deferred: Mutex<Vec<Deferred>>,
    readiness: Readiness,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("readiness", &self.readiness).finish_non_exhaustive()
    }
}

impl SharedExporter {
    /// Shares an exporter whose store (if any) is loaded already.
    pub fn new(exporter: Exporter) -> SharedExporter {
        SharedExporter(Arc::new(Shared {
            exporter: Mutex::new(exporter),
            deferred: Mutex::default(),
            readiness: Readiness::default(),
        }))
    }

    /// Locks the exporter, and applies the updates that found it taken
    /// first. A panic while holding the lock cannot leave the ledger
    /// half-updated in a way later folds would misread (every join is
    /// self-contained), so a poisoned lock is recovered rather than propagated.
    pub fn lock(&self) -> MutexGuard<'_, Exporter> {
        let mut exporter = self.0.exporter.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let deferred = std::mem::take(&mut *self.0.deferred.lock().unwrap_or_else(|poisoned| poisoned.into_inner()));
        for update in deferred {
            update(&mut exporter);
        }
        exporter
    }

    /// Applies `update` now when the lock is free, else leaves it to whoever
    /// takes the lock next (the writer, within a settle tick): for async
    /// tasks counting into the exporter's own metrics (AWS requests, source
    /// health), which must not wait on a runtime worker for a lock a commit
    /// may hold as long as the disk takes. Updates apply in the order made.
    pub fn update(&self, update: impl FnOnce(&mut Exporter) + Send + 'static) {
        let mut deferred = self.0.deferred.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Only with nothing queued: an update applied now must not overtake
        // an earlier one still waiting.
        if deferred.is_empty() {
            match self.0.exporter.try_lock() {
                Ok(mut exporter) => return update(&mut exporter),
                Err(std::sync::TryLockError::Poisoned(poisoned)) => return update(&mut poisoned.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => {}
            }
        }
        deferred.push(Box::new(update));
    }

    /// What `/-/ready` answers; sources that backfill report to it.
    pub fn readiness(&self) -> &Readiness {
        &self.0.readiness
    }

    /// What `/metrics` shows, windows anchored at `now`: the exporter's
    /// [`Exporter::exposition`], without the deployment series while the
    /// first backfill of a new store is still running (see
    /// [`Readiness::hold_history_until_backfilled`]).
    ///
    /// It waits for the lock, which a commit holds as long as the disk takes:
    /// call it off the runtime's workers. `None` when `wanted`, asked once the
    /// lock is taken, says nobody waits for the snapshot any more (a scrape
    /// that gave up meanwhile): a snapshot costs a core for ~300 ms at 10k
    /// groups, not to be spent for nobody when the exporter is busiest.
    pub fn exposition(&self, now: Millis, wanted: impl FnOnce() -> bool) -> Option<Exposition> {
        let exporter = self.lock();
        if !wanted() {
            return None;
        }
        if self.0.readiness.history_held() {
            let metrics = exporter.metrics.clone();
            return Some(exporter.without_ledger(metrics));
        }
        Some(exporter.exposition(now))
    }
}

/// What `/-/ready` answers. Ready means: the store is loaded, every backfill
/// announced is done, and the latest store commit succeeded. Before that,
/// Prometheus would record history as if it were new (a backfill landing on
/// already-scraped series looks like a burst of failures to `increase()`),
/// and a failing store's state is not shown (see [`Exporter::exposition`]).
///
/// The store part needs no call: until the store and history are loaded the
/// loading server answers 503 itself ([`crate::http::loading`]), and the
/// writer reports every commit. Read
/// without the exporter's lock, so a probe never waits for a scrape.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<ReadinessState>);

#[derive(Debug, Default)]
struct ReadinessState {
    backfills_pending: AtomicUsize,
    commit_failed: AtomicBool,
    history_held: AtomicBool,
}

impl Readiness {
    /// A backfill is about to run (the API poller's first load of
    /// `--poll.lookback`, one call per account and region): not ready until
    /// the matching [`Readiness::backfill_done`]. Call it before the HTTP server
    /// can answer a probe (while the sources are being set up, before their
    /// first await), or a probe in between sees "ready" and Prometheus starts
    /// scraping before the history is in.
    pub fn backfill_pending(&self) {
        self.0.backfills_pending.fetch_add(1, Ordering::SeqCst);
    }

    /// A backfill announced by [`Readiness::backfill_pending`] has been
    /// committed, or given up on: a source that stops trying must still call
    /// this, or the exporter never becomes ready. Extra calls are ignored.
    pub fn backfill_done(&self) {
        let _ = self.0.backfills_pending.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    }

    /// The store was new and a backfill is pending: `/metrics` leaves the
    /// deployment series out until it is done. A live event arriving first
    /// would otherwise create a group's series, and the backfill then land
    /// weeks of history on them at once: to `increase()` a jump, and to the
    /// alerts a burst of failures. Held back, the series first appear with
    /// their history already in. (After a restart on a store the series were
    /// scraped before, and what the backfill adds happened while the
    /// exporter was down: news, shown as it lands.)
    pub fn hold_history_until_backfilled(&self) {
        self.0.history_held.store(true, Ordering::SeqCst);
    }

    fn history_held(&self) -> bool {
        self.0.history_held.load(Ordering::SeqCst) && self.0.backfills_pending.load(Ordering::SeqCst) > 0
    }

    fn set_commit_failed(&self, failed: bool) {
        self.0.commit_failed.store(failed, Ordering::SeqCst);
    }

    /// Why the exporter is not ready, or `None` when it is.
    pub fn not_ready(&self) -> Option<&'static str> {
        if self.0.commit_failed.load(Ordering::SeqCst) {
            Some("the latest store commit failed")
        } else if self.0.backfills_pending.load(Ordering::SeqCst) > 0 {
            Some("the backfill is not done")
        } else {
            None
        }
    }
}

/// Why a submitted message was not acknowledged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The message cannot be decoded; sending it again will not help.
    #[error(transparent)]
    Rejected(#[from] DecodeError),
    /// The message was folded in but the store could not commit it: it is not
    /// acknowledged, so the sender retries.
    #[error("the store could not commit ({0}); retry later")]
    NotDurable(String),
    /// The exporter is shutting down.
    #[error("the exporter is shutting down; retry later")]
    ShuttingDown,
    /// Folding the message hit a bug (a panic). The message is counted as
    /// rejected and not acknowledged; the writer carries on with the next.
    #[error("internal error while folding the message: {0}")]
    Internal(String),
}

/// What a source submits: a raw message, or observations it built itself.
enum Payload {
    Message(Vec<u8>),
    Observations(Vec<Observation>),
    /// An authenticated message refused before it could be decoded: only
    /// counted, as rejected.
    Rejected,
    /// The poller's first backfill is in (see [`Exporter::end_of_backfill`]);
    /// no message, so nothing is counted.
    EndOfBackfill,
    /// Deployment groups read from AWS; no message, so nothing is counted.
    GroupInfo(Vec<(GroupKey, GroupInfo)>),
}

struct Submission {
    source: Source,
    payload: Payload,
    reply: oneshot::Sender<Result<Outcome, IngestError>>,
}

/// How sources submit messages; clone it freely.
#[derive(Debug, Clone)]
pub struct IngestHandle {
    submissions: mpsc::Sender<Submission>,
    unauthenticated: Arc<Unauthenticated>,
}

impl std::fmt::Debug for Submission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Submission").field("source", &self.source).finish_non_exhaustive()
    }
}

impl IngestHandle {
    /// Submits one message and waits until its effect is durably committed.
    pub async fn submit(&self, source: Source, body: Vec<u8>) -> Result<Outcome, IngestError> {
        self.send(source, Payload::Message(body)).await
    }

    /// Submits observations (from a source that reads typed data, like the API
    /// poller) and waits until they are durably committed.
    pub async fn submit_observations(
        &self,
        source: Source,
        observations: Vec<Observation>,
    ) -> Result<Outcome, IngestError> {
        self.send(source, Payload::Observations(observations)).await
    }

    /// Counts an authenticated message refused before decoding (a signed SNS
    /// confirmation naming a URL off the allow-list) as rejected, and waits
    /// for the count to be committed.
    pub async fn reject(&self, source: Source) {
        let _ = self.send(source, Payload::Rejected).await;
    }

    /// Tells the writer the poller's first backfill is in, and waits until
    /// what that settles is committed: readiness, and a new store's series,
    /// must only follow what a restart would still show.
    pub async fn end_of_backfill(&self) -> Result<(), IngestError> {
        self.send(Source::Poller, Payload::EndOfBackfill).await.map(drop)
    }

    /// Submits what was read of deployment groups and waits until it is
    /// durably committed.
    pub async fn submit_group_info(&self, groups: Vec<(GroupKey, GroupInfo)>) -> Result<(), IngestError> {
        self.send(Source::Poller, Payload::GroupInfo(groups)).await.map(drop)
    }

    /// Where requests that fail authentication are counted: in memory, never
    /// through the writer (see [`Unauthenticated`]).
    pub fn unauthenticated(&self) -> &Unauthenticated {
        &self.unauthenticated
    }

    async fn send(&self, source: Source, payload: Payload) -> Result<Outcome, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.submissions
            .send(Submission { source, payload, reply })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.unwrap_or(Err(IngestError::ShuttingDown))
    }
}

/// Tuning of the writer.
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// How often finished deployments are checked against the settle time.
    pub settle_interval: Duration,
    /// Records older than this are dropped from the ledger (not from the counters).
    pub retention_ms: Millis,
    /// Most messages folded into one commit.
    pub max_batch: usize,
}

/// Messages waiting for the writer; beyond this, submitters wait (backpressure).
const QUEUE_CAPACITY: usize = 4096;
/// Retention runs once per this many settle ticks: it scans every record.
const TRIM_EVERY_TICKS: u32 = 60;
/// How long `serve` remembers a message's identity, so that a re-delivery
/// counts as `duplicate`. Re-deliveries come within minutes (SQS visibility
/// timeouts, SNS retries) or at most a day (EventBridge retries an API
/// destination for 24 hours); the ledger's retention (35 days) would cost
/// ~20 bytes per message for a month, tens of MB at 10k groups. A
/// re-delivery later than this counts as `applied` again; it changes no
/// domain figure (the fold is idempotent).
pub const MESSAGE_MEMORY_MS: Millis = 24 * 3_600_000;

/// The single writer: folds, settles, trims and commits.
pub struct Writer {
    exporter: SharedExporter,
    store: Option<Box<dyn Store>>,
    submissions: mpsc::Receiver<Submission>,
    options: WriterOptions,
}

impl Writer {
    /// A writer over `exporter` committing to `store` (`None`: nothing
    /// survives a restart, as in `demo`), and the handle sources submit to.
    pub fn new(
        exporter: SharedExporter,
        store: Option<Box<dyn Store>>,
        options: WriterOptions,
    ) -> (Writer, IngestHandle) {
        if store.is_some() {
            exporter.lock().count_commit_failures();
        }
        let (submissions, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let unauthenticated = exporter.lock().unauthenticated.clone();
        (Writer { exporter, store, submissions: receiver, options }, IngestHandle { submissions, unauthenticated })
    }

    /// Runs until every [`IngestHandle`] is dropped, then commits what is left.
    /// It does not stop on a shutdown signal by itself: requests still in
    /// flight are waiting for their acknowledgements.
    ///
    /// The work runs on a thread of its own, never on the runtime's workers:
    /// a commit waits for fsync (seconds on a slow or saturated disk), and on
    /// a worker that wait would stall every task scheduled there, `/-/healthy`
    /// included. This future only waits for the thread to end (and passes on
    /// its panic, as a spawned task's would be), so callers spawn and await it
    /// as they would any task.
    pub async fn run(self) {
        let (finished, ended) = oneshot::channel();
        std::thread::Builder::new()
            .name("writer".to_owned())
            .spawn(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.run_on_this_thread()));
                let _ = finished.send(ran);
            })
            .expect("the OS starts the writer thread");
        match ended.await {
            Ok(Ok(())) => {}
            Ok(Err(panic)) => std::panic::resume_unwind(panic),
            // The thread sends before it ends, whatever happens inside it.
            Err(_) => unreachable!("the writer thread ended without a word"),
        }
    }

    /// The writer's loop, driven by a runtime of the writer thread's own: it
    /// only waits for submissions and settle ticks, and whatever blocks in
    /// [`Writer::process`] blocks this thread alone.
    fn run_on_this_thread(self) {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime with a timer builds")
            .block_on(self.serve());
    }

    async fn serve(mut self) {
        let mut ticks = tokio::time::interval(self.options.settle_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut tick_count: u32 = 0;
        loop {
            tokio::select! {
                submission = self.submissions.recv() => match submission {
                    Some(first) => {
                        let mut batch = vec![first];
                        while batch.len() < self.options.max_batch {
                            match self.submissions.try_recv() {
                                Ok(next) => batch.push(next),
                                Err(_) => break,
                            }
                        }
                        self.process(batch, false);
                    }
                    None => break,
                },
                _ = ticks.tick() => {
                    tick_count = tick_count.wrapping_add(1);
                    self.process(Vec::new(), tick_count.is_multiple_of(TRIM_EVERY_TICKS));
                }
            }
        }
        self.process(Vec::new(), false);
    }

    fn process(&mut self, mut batch: Vec<Submission>, trim: bool) {
        let now = now_ms();
        let mut exporter = self.exporter.lock();
        let outcomes: Vec<Result<Outcome, IngestError>> = batch
            .iter_mut()
            .map(|s| {
                let folded = guarded("fold", || match &mut s.payload {
                    Payload::Message(body) => exporter.ingest(s.source, body, now).map_err(IngestError::Rejected),
                    Payload::Rejected => {
                        exporter.count(s.source, Outcome::Rejected, now);
                        Ok(Outcome::Rejected)
                    }
                    Payload::EndOfBackfill => {
                        exporter.end_of_backfill(now);
                        Ok(Outcome::Ignored)
                    }
                    Payload::GroupInfo(groups) => {
                        for (key, info) in std::mem::take(groups) {
                            exporter.apply_group_info(key, info);
                        }
                        Ok(Outcome::Ignored)
                    }
                    Payload::Observations(observations) => {
                        exporter.ingest_observations(s.source, std::mem::take(observations), now).map_err(IngestError::Rejected)
                    }
                });
                if let Err(IngestError::Internal(_)) = &folded {
                    exporter.count(s.source, Outcome::Rejected, now);
                }
                folded
            })
            .collect();
        // A panic here is retried at the next batch or tick; what the batch
        // folded is still committed and acknowledged.
        let _ = guarded("settle", || {
            exporter.settle(now, false);
            if trim {
                let dropped = exporter.trim(now - self.options.retention_ms);
                let forgotten = exporter.forget_messages(now - MESSAGE_MEMORY_MS);
                if dropped > 0 || forgotten > 0 {
                    tracing::debug!(dropped, forgotten, "records past retention dropped, message identities forgotten");
                }
            }
            Ok(())
        });
        // A commit cut short by a panic wrote nothing (the transaction is
        // dropped) and left the changes pending: the next batch commits them.
        let committed = guarded("commit", || match self.store.as_deref_mut() {
            Some(store) => exporter.commit_to(store).map_err(|error| {
                tracing::error!(%error, reason = error.reason(), "commit failed; messages stay unacknowledged");
                IngestError::NotDurable(error.to_string())
            }),
            None => {
                exporter.mark_committed();
                Ok(())
            }
        })
        .map_err(|error| match error {
            // Not the messages' fault: the sender retries as after a failed commit.
            IngestError::Internal(detail) => {
                exporter.mark_commit_failed();
                IngestError::NotDurable(detail)
            }
            other => other,
        });
        drop(exporter);
        self.exporter.readiness().set_commit_failed(committed.is_err());
        for (submission, outcome) in batch.into_iter().zip(outcomes) {
            let answer = match (&committed, outcome) {
                (_, Err(refused)) => Err(refused),
                (Ok(()), Ok(outcome)) => Ok(outcome),
                (Err(error), Ok(_)) => Err(error.clone()),
            };
            // The submitter may have given up (a closed connection); nothing to do then.
            let _ = submission.reply.send(answer);
        }
    }
}

/// Runs one step of the writer, turning a panic into [`IngestError::Internal`]:
/// a bug that one message runs into must cost that message, not the writer
/// task, without which every later request would fail until a restart. Every
/// join is a lattice join, so a fold cut short leaves a record that holds less
/// than it could, never something wrong.
fn guarded<T>(step: &'static str, run: impl FnOnce() -> Result<T, IngestError>) -> Result<T, IngestError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let detail = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        tracing::error!(step, %detail, "internal error; the writer carries on");
        Err(IngestError::Internal(detail))
    })
}

/// The wall clock in milliseconds since the epoch.
pub fn now_ms() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Panics at the first commit that carries records, then commits normally.
    struct PanicsOnce {
        panicked: bool,
        commits: Arc<AtomicUsize>,
    }

    impl Store for PanicsOnce {
        fn load(&self) -> Result<Stored, StoreError> {
            Ok(Stored::default())
        }

        fn commit(&mut self, commit: &Commit<'_>) -> Result<(), StoreError> {
            if !self.panicked && !commit.ledger.records.is_empty() {
                self.panicked = true;
                panic!("the disk is on fire");
            }
            self.commits.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// Fails every commit while `failing` is set, like a full disk.
    struct Flaky {
        failing: Arc<AtomicBool>,
    }

    impl Store for Flaky {
        fn load(&self) -> Result<Stored, StoreError> {
            Ok(Stored::default())
        }

        fn commit(&mut self, _: &Commit<'_>) -> Result<(), StoreError> {
            if self.failing.load(Ordering::SeqCst) {
                let full = redb::Error::Io(std::io::Error::other("no space left on device"));
                return Err(StoreError::Database { path: "flaky".into(), error: Box::new(full) });
            }
            Ok(())
        }
    }

    /// Commits normally, except the first commit that carries records: it
    /// says so on `entered`, then waits for `release`, like a disk that
    /// stalls.
    struct Stalls {
        entered: mpsc::UnboundedSender<()>,
        release: std::sync::mpsc::Receiver<()>,
        stalled: bool,
    }

    impl Store for Stalls {
        fn load(&self) -> Result<Stored, StoreError> {
            Ok(Stored::default())
        }

        fn commit(&mut self, commit: &Commit<'_>) -> Result<(), StoreError> {
            if !self.stalled && !commit.ledger.records.is_empty() {
                self.stalled = true;
                let _ = self.entered.send(());
                let _ = self.release.recv();
            }
            Ok(())
        }
    }

    const SECRET: &str = "a-secret-for-the-test";

    /// The webhook, `/metrics` and the probes over `store`, as `serve` runs them.
    struct Served {
        address: std::net::SocketAddr,
        exporter: SharedExporter,
        shutdown: tokio_util::sync::CancellationToken,
        server: tokio::task::JoinHandle<std::io::Result<()>>,
        writer: tokio::task::JoinHandle<()>,
    }

    impl Served {
        async fn start(store: Box<dyn Store>) -> Served {
            let exporter = SharedExporter::new(Exporter::new(120_000));
            exporter.lock().register(Source::Webhook);
            // No tick: every commit follows a request, so each step is deterministic.
            let options =
                WriterOptions { settle_interval: Duration::from_secs(3600), retention_ms: Millis::MAX, max_batch: 16 };
            let (writer, ingest) = Writer::new(exporter.clone(), Some(store), options);
            let writer = tokio::spawn(writer.run());
            let http = crate::http::HttpOptions {
                telemetry_path: "/metrics".to_owned(),
                webhook_secret: crate::sources::webhook::Secret::new(SECRET),
                webhook_max_body_bytes: 1 << 20,
                security: Default::default(),
            };
            let router = crate::http::router(crate::http::AppState { exporter: exporter.clone(), ingest, demo_app: None }, &http);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
            let address = listener.local_addr().expect("address");
            let shutdown = tokio_util::sync::CancellationToken::new();
            let server =
                tokio::spawn(crate::http::serve(listener, router, None, shutdown.clone(), Duration::from_secs(5)));
            Served { address, exporter, shutdown, server, writer }
        }

        async fn stop(self) {
            self.shutdown.cancel();
            self.server.await.expect("server task").expect("served");
            self.writer.await.expect("the writer ends once the server dropped its handle");
        }
    }

    /// A GET from a plain thread, with a socket timeout: should the runtime
    /// serving it stall, it fails (`Err`) instead of hanging with it.
    /// Returns the status and the body as sent (chunked for `/metrics`).
    async fn get_from_a_thread(address: std::net::SocketAddr, path: &str, headers: &str) -> std::io::Result<(u16, String)> {
        use std::io::{Read, Write};
        const PATIENCE: Duration = Duration::from_secs(60);
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{headers}\r\n");
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect_timeout(&address, PATIENCE)?;
            stream.set_read_timeout(Some(PATIENCE))?;
            stream.write_all(request.as_bytes())?;
            let mut response = String::new();
            stream.read_to_string(&mut response)?;
            let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body).to_owned();
            Ok((status, body))
        })
        .await
        .expect("the client thread")
    }

    /// Issue 13 §5: a commit stuck on the disk holds up neither the runtime
    /// nor the probes; a scrape answers (503, with the reason) instead of
    /// showing the batch being committed or hanging; concurrent scrapes are
    /// bounded; and all of it recovers once the disk does.
    ///
    /// One worker, and the test's own body off it (a multi-thread runtime
    /// runs the body on the test's thread): whatever blocks that worker
    /// stops the server, and the requests, sent from plain threads, fail.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_stalled_commit_blocks_neither_probes_nor_scrapes() {
        let (entered, mut stalled) = mpsc::unbounded_channel();
        let (release, released) = std::sync::mpsc::channel();
        let served = Served::start(Box::new(Stalls { entered, release: released, stalled: false })).await;
        let address = served.address;
        let body = include_str!("../tests/fixtures/samples/eventbridge-deployment-success.json");
        let post = reqwest::Client::new().post(format!("http://{address}/events")).bearer_auth(SECRET).body(body).send();
        let posted = tokio::spawn(post);
        tokio::time::timeout(Duration::from_secs(60), stalled.recv())
            .await
            .expect("the webhook's batch reaches the store")
            .expect("the store reports its stall");

        // The worker would be stuck here if the commit ran on it.
        let healthy = get_from_a_thread(address, "/-/healthy", "").await.expect("/-/healthy answers during the stall");
        assert_eq!(healthy, (200, "Healthy\n".to_owned()));
        assert_eq!(get_from_a_thread(address, "/-/ready", "").await.expect("/-/ready answers").0, 200);
        let short = "X-Prometheus-Scrape-Timeout-Seconds: 0.5\r\n";
        let (status, reason) = get_from_a_thread(address, "/metrics", short).await.expect("/metrics answers during the stall");
        assert_eq!(status, 503, "the batch being committed must not be shown: {reason}");
        assert!(reason.contains("stayed locked"), "{reason}");

        // Scrapes that wait long enough for the commit; with every turn
        // taken, a further scrape is refused rather than queued without bound.
        let patient = "X-Prometheus-Scrape-Timeout-Seconds: 120\r\n";
        let waiting: Vec<_> =
            (0..2).map(|_| tokio::spawn(get_from_a_thread(address, "/metrics", patient))).collect();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (status, reason) = get_from_a_thread(address, "/metrics", short).await.expect("/metrics answers");
            assert_eq!(status, 503, "{reason}");
            if reason.contains("Too many scrapes") {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "the waiting scrapes never took every turn: {reason}");
        }
        // The worker would be stuck here if a scrape waited for the lock on it.
        assert_eq!(get_from_a_thread(address, "/-/healthy", "").await.expect("/-/healthy answers").0, 200);

        release.send(()).expect("the store still waits");
        let posted = posted.await.expect("POST task").expect("POST");
        assert_eq!(posted.status().as_u16(), 200, "acknowledged once committed");
        for scrape in waiting {
            let (status, metrics) = scrape.await.expect("scrape task").expect("the waiting scrape answers");
            assert_eq!(status, 200, "{metrics}");
        }
        let metrics = reqwest::get(format!("http://{address}/metrics")).await.expect("GET").text().await.expect("body");
        assert!(metrics.contains(r#"deployment_group="myDeploymentGroup""#), "{metrics}");
        served.stop().await;
    }

    /// What an AWS source counts while a commit holds the lock is kept, not
    /// waited for, and lands in the order it was made.
    #[test]
    fn updates_that_find_the_lock_taken_apply_in_order_at_the_next_lock() {
        let exporter = SharedExporter::new(Exporter::new(120_000));
        let held = exporter.lock();
        exporter.update(|e| e.set_source_health(Source::Sqs, false, 1_000));
        drop(held);
        // The lock is free now, but an earlier update still waits: this one queues behind it.
        exporter.update(|e| e.set_source_health(Source::Sqs, true, 2_000));
        let exporter = exporter.lock();
        assert_eq!(exporter.metrics.source_up.get(&Source::Sqs), Some(&true));
        assert_eq!(exporter.metrics.last_success.get(&Source::Sqs), Some(&2_000));
        assert!(exporter.metrics_dirty, "committed with the next batch");
    }

    /// Issue 12, item 8: through the webhook, `/metrics` and `/-/ready`.
    #[tokio::test]
    async fn a_failing_store_is_visible_and_never_half_shown() {
        let failing = Arc::new(AtomicBool::new(false));
        let served = Served::start(Box::new(Flaky { failing: failing.clone() })).await;
        let (address, exporter) = (served.address, served.exporter.clone());

        let client = reqwest::Client::new();
        let get = |path: &'static str| {
            let request = client.get(format!("http://{address}{path}"));
            async move {
                let response = request.send().await.expect("GET");
                (response.status().as_u16(), response.text().await.expect("body"))
            }
        };
        let post = |body: &'static str| {
            let request = client.post(format!("http://{address}/events")).bearer_auth(SECRET).body(body);
            async move { request.send().await.expect("POST").status().as_u16() }
        };
        let sample = |metrics: &str, series: &str| -> Option<String> {
            metrics.lines().find_map(|l| l.strip_prefix(series)).map(|v| v.trim().to_owned())
        };
        let first = include_str!("../tests/fixtures/samples/eventbridge-deployment-success.json");
        let second = include_str!("../tests/fixtures/samples/sns-trigger-message-deployment-failed-docs-sample.json");
        let applied = r#"codedeploy_exporter_events_total{source="webhook",outcome="applied"}"#;
        let failures = "codedeploy_exporter_store_commit_failures_total";

        assert_eq!(post(first).await, 200);
        let (_, metrics) = get("/metrics").await;
        assert!(metrics.contains(r#"deployment_group="myDeploymentGroup""#), "{metrics}");
        assert_eq!(sample(&metrics, failures).as_deref(), Some("0"));
        assert_eq!(get("/-/ready").await.0, 200);

        failing.store(true, Ordering::SeqCst);
        assert_eq!(post(second).await, 503, "not durable, so not acknowledged");
        let (status, metrics) = get("/metrics").await;
        assert_eq!(status, 200, "the failure itself is shown");
        assert!(!metrics.contains("dep-group-def-456"), "the uncommitted deployment is shown:\n{metrics}");
        assert!(!metrics.contains("deployment_group="), "the ledger in memory is not what the store holds:\n{metrics}");
        assert!(!metrics.contains("codedeploy_exporter_deployments_tracked"), "{metrics}");
        assert_eq!(sample(&metrics, failures).as_deref(), Some("1"));
        assert_eq!(sample(&metrics, applied).as_deref(), Some("1"), "counted as of the last commit");
        let (status, reason) = get("/-/ready").await;
        assert_eq!((status, reason.as_str()), (503, "Not ready: the latest store commit failed\n"));

        failing.store(false, Ordering::SeqCst);
        assert_eq!(post(second).await, 200, "the sender's retry commits both");
        let (_, metrics) = get("/metrics").await;
        assert!(metrics.contains(r#"deployment_group="myDeploymentGroup""#), "{metrics}");
        assert!(metrics.contains(r#"deployment_group="dep-group-def-456""#), "{metrics}");
        assert_eq!(sample(&metrics, failures).as_deref(), Some("1"));
        assert_eq!(sample(&metrics, applied).as_deref(), Some("2"));
        assert_eq!(get("/-/ready").await.0, 200);

        // The API poller's side of readiness.
        exporter.readiness().backfill_pending();
        assert_eq!(get("/-/ready").await, (503, "Not ready: the backfill is not done\n".to_owned()));
        exporter.readiness().backfill_done();
        exporter.readiness().backfill_done();
        assert_eq!(get("/-/ready").await.0, 200, "an extra done is ignored");

        served.stop().await;
    }

    #[tokio::test]
    async fn a_panic_costs_one_batch_not_the_writer() {
        let commits = Arc::new(AtomicUsize::new(0));
        let store = PanicsOnce { panicked: false, commits: commits.clone() };
        let exporter = SharedExporter::new(Exporter::new(120_000));
        let options = WriterOptions { settle_interval: Duration::from_secs(3600), retention_ms: Millis::MAX, max_batch: 1 };
        let (writer, handle) = Writer::new(exporter.clone(), Some(Box::new(store)), options);
        let running = tokio::spawn(writer.run());
        let success = include_bytes!("../tests/fixtures/samples/eventbridge-deployment-success.json").to_vec();

        let first = handle.submit(Source::Webhook, success.clone()).await;
        assert!(
            matches!(&first, Err(IngestError::NotDurable(detail)) if detail == "the disk is on fire"),
            "{first:?}"
        );
        let commits_before = commits.load(Ordering::SeqCst);
        // The writer is still there; the retry is a duplicate of what the
        // first batch folded, and its commit makes that batch durable too.
        let retried = handle.submit(Source::Webhook, success).await;
        assert!(matches!(retried, Ok(Outcome::Duplicate)), "{retried:?}");
        assert!(commits.load(Ordering::SeqCst) > commits_before, "nothing was committed after the panic");
        assert_eq!(exporter.lock().ledger.deployments_tracked(), 1);

        drop(handle);
        running.await.expect("the writer ends when every handle is dropped");
    }
}
