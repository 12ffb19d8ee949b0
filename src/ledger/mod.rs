//! The ledger: one record per deployment, folded from observations, and the
//! per-group counters that settled deployments add to.
//!
//! Two steps, both pure and synchronous (no I/O, no clock of their own; the
//! caller passes `now`):
//! - [`Ledger::apply`] joins an observation into its deployment's record. Every
//!   field merges as a lattice join, so duplicates change nothing and any
//!   arrival order gives the same record.
//! - [`Ledger::settle`] counts terminal records once: immediately when the API
//!   has given their final details, otherwise after the settle time, so that
//!   late and reordered events land before anything is counted. Records settle
//!   in completion order, which makes recovery runs exact. With `force` (what
//!   `replay` does at the end) everything terminal settles at once and the
//!   counters are a function of the set of observations alone.
//!
//! Once counted, a deployment's full record is replaced by a 24-byte
//! [`Settled`] entry: what the rolling windows, deduplication and rollback
//! links still need. Messages about a counted deployment change nothing but a
//! late rollback link.

mod group;
pub mod histogram;
mod lead_time;
pub mod limits;
mod record;
mod recovery;
mod settle_queue;
mod settled;
mod small_map;
mod snapshot;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

pub use group::{GroupKey, GroupStats, Kind, FINISHED};
pub use lead_time::{parse_description, parse_sha, parse_time, revision_names, LeadLookup, LeadTimeConfig, PendingLookup};
pub use record::Facts;
pub use settled::{HashKey, Settled, SettledKey};
pub use snapshot::{GroupSnapshot, Snapshot, WindowFigures, QUANTILES, WINDOWS};

use crate::domain::{
    CommitKind, CommitRecord, CommitSource, CommitTime, DeploymentRef, LeadTimeUnknown, Millis, Observation,
    RollbackCause, Status, TargetStatus,
};
use lead_time::Decision;
use limits::{Limit, Limits, Refusal};
use group::Settlement;
use settle_queue::SettleQueue;
use settled::{Outcome, SettledSet};

/// Longest duration we believe. CodeDeploy's own limits top out near five days
/// (EC2 blue/green: 109 h of deployment plus a termination wait); anything
/// beyond two weeks is a clock or data error.
pub const MAX_PLAUSIBLE_DURATION_MS: Millis = 14 * 24 * 3600 * 1000;

/// Creators whose deployments are rollbacks rather than changes.
const ROLLBACK_CREATORS: [&str; 2] = ["codeDeployRollback", "CloudFormationRollback"];
/// Creators of deployments that change nothing (scale-out of the same revision).
const SCALING_CREATORS: [&str; 2] = ["autoscaling", "autoscalingTermination"];

/// A deployment's identity. Account or region are empty when no input has said
/// them yet.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeploymentKey {
    pub account: CompactString,
    pub region: CompactString,
    pub deployment_id: CompactString,
}

impl DeploymentKey {
    fn is_complete(&self) -> bool {
        !self.account.is_empty() && !self.region.is_empty()
    }

    /// Whether a reference with possibly missing parts can mean this key.
    fn admits(&self, r: &DeploymentRef) -> bool {
        r.account.as_ref().is_none_or(|a| *a == self.account)
            && r.region.as_ref().is_none_or(|g| *g == self.region)
    }

    fn sibling(&self, deployment_id: &str) -> DeploymentKey {
        DeploymentKey { deployment_id: deployment_id.into(), ..self.clone() }
    }

    /// The account and region, `None` where unknown.
    fn location(&self) -> (Option<&str>, Option<&str>) {
        fn known(part: &str) -> Option<&str> {
            Some(part).filter(|p| !p.is_empty())
        }
        (known(&self.account), known(&self.region))
    }

    fn reference(&self) -> DeploymentRef {
        let (account, region) = self.location();
        DeploymentRef {
            account: account.map(CompactString::from),
            region: region.map(CompactString::from),
            deployment_id: self.deployment_id.clone(),
        }
    }
}

/// A deployment not counted yet: its facts and its settle timer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Record {
    facts: Facts,
    /// Ingest time at which the record first became terminal: starts the settle timer.
    terminal_since: Option<Millis>,
}

/// What is joined into a record: an observation, or all that another record of
/// the same deployment knows (an orphan adopted by its fully identified twin).
#[derive(Clone, Copy)]
enum News<'a> {
    Observation(&'a Observation),
    Record(&'a Facts),
}

impl News<'_> {
    fn join_into(self, facts: &mut Facts) -> bool {
        match self {
            News::Observation(observation) => facts.join(observation),
            News::Record(other) => facts.merge(other),
        }
    }
}

impl Record {
    /// The latest time the record speaks of, for retention.
    fn last_known_time(&self) -> Option<Millis> {
        self.facts.finished_at().or(self.facts.began_at()).or(self.terminal_since)
    }
}

/// Inputs the exporter had to correct; the `reason` label of
/// `codedeploy_exporter_data_quality_issues_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum QualityIssue {
    /// completeTime before createTime (backend clock skew); clamped to 0.
    NegativeDuration,
    /// A duration beyond [`MAX_PLAUSIBLE_DURATION_MS`]; clamped to it.
    AbsurdDuration,
    /// A deployment that finished while an event source was configured, yet
    /// only the API poller reported it (EventBridge delivery is best effort).
    FoundOnlyByPolling,
    /// A commit time after the deployment's completion; the lead time is clamped to 0.
    NegativeLeadTime,
    /// A change failure or success counted after a success whose recovery
    /// it would have changed was already observed (more than the settle time
    /// earlier): the recovery stays as observed.
    LateForRecovery,
}

impl QualityIssue {
    pub fn label(self) -> &'static str {
        match self {
            QualityIssue::NegativeDuration => "negative_duration",
            QualityIssue::AbsurdDuration => "absurd_duration",
            QualityIssue::FoundOnlyByPolling => "found_only_by_polling",
            QualityIssue::NegativeLeadTime => "negative_lead_time",
            QualityIssue::LateForRecovery => "late_for_recovery",
        }
    }
}

/// The ledger's small, whole-ledger state, stored as one value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LedgerMeta {
    pub data_quality: BTreeMap<QualityIssue, u64>,
    pub latest_time: Option<Millis>,
    /// Webhook commit records: `commit:<sha>` or `revision:<name>` → commit time.
    pub commits: BTreeMap<String, Millis>,
    /// Counted change deployments whose lead time waits for the commit-time resolver.
    pub lead_pending: BTreeMap<DeploymentKey, LeadLookup>,
    /// Lead times observed, by where the commit time came from and which commit it is.
    pub lead_sources: BTreeMap<(CommitSource, CommitKind), u64>,
    /// The key of the hashes counted deployments are known by; chosen when
    /// the ledger is new.
    pub hash_key: Option<HashKey>,
    /// Input that ran into a bound, by bound (see [`limits`]).
    pub limited: BTreeMap<Limit, u64>,
    /// Counted rollbacks whose rolled-back deployment is not counted yet, by
    /// the rollback's key: they are counted in `codedeploy_rollbacks_total`,
    /// and their time to rollback observed, when it is.
    pub rollbacks_waiting: BTreeMap<DeploymentKey, WaitingRollback>,
}

/// A counted rollback waiting for the deployment it undid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingRollback {
    /// The deployment id of the rolled-back deployment.
    pub undone: CompactString,
    /// Ingest time the wait began (restarted with the settle timers).
    pub since: Millis,
}

/// What changed since the last commit: the store writes exactly this.
#[derive(Debug)]
pub struct Changes<'a> {
    /// `None` means the record was removed (counted, adopted or past retention).
    pub records: Vec<(&'a DeploymentKey, Option<&'a Record>)>,
    /// `None` means the entry was removed (past retention).
    pub settled: Vec<(SettledKey, Option<Settled>)>,
    pub groups: Vec<(&'a GroupKey, &'a GroupStats)>,
    pub meta: &'a LedgerMeta,
}

#[derive(Debug, Clone)]
pub struct Ledger {
    settle_time_ms: Millis,
    lead: LeadTimeConfig,
    limits: Limits,
    /// Deployments not counted yet.
    /// Boxed: a record is eight times its key, and the table, resized as it grows,
    /// then moves keys and pointers only.
    records: HashMap<DeploymentKey, Box<Record>, foldhash::fast::RandomState>,
    /// Keys by deployment id, sorted. Almost every id has one key; a vector
    /// holds it in one small allocation where a set would take a whole node.
    keys_by_id: HashMap<CompactString, Vec<DeploymentKey>, foldhash::fast::RandomState>,
    /// Records still lacking account or region.
    orphans: BTreeSet<DeploymentKey>,
    /// Which records settling has to look at (derived from `records`). Built
    /// by the first live settle: `replay` settles once, with force, and never
    /// pays for it.
    settle_queue: Option<SettleQueue>,
    /// Deployments counted.
    settled: SettledSet,
    /// Rolled-back deployment → the rollback deployments that name it, until
    /// the rolled-back one is counted.
    rollbacks_of: HashMap<DeploymentKey, BTreeSet<CompactString>>,
    /// Hashed, not ordered: settling looks its group up several times per
    /// deployment, and a B-tree search compares four strings at every step.
    /// The snapshot sorts the groups it shows.
    groups: HashMap<GroupKey, GroupStats, foldhash::fast::RandomState>,
    /// Group keys by their id ([`GroupStats::id`]), which settled entries refer to.
    group_keys: Vec<GroupKey>,
    meta: LedgerMeta,
    /// What the next commit must write.
    changed: ChangeLog,
}

/// Records, settled entries and groups changed since the last commit. A ledger
/// no store reads (`replay`'s) does not keep it: there it would grow to every
/// deployment and cost each fold a write to a table as large as the ledger.
#[derive(Debug, Clone)]
struct ChangeLog {
    tracking: bool,
    /// A hash set: keeping it ordered cost more per fold than all the rest of
    /// the fold; [`Ledger::changes`] sorts it.
    records: HashSet<DeploymentKey>,
    settled: BTreeSet<SettledKey>,
    groups: BTreeSet<GroupKey>,
}

impl ChangeLog {
    fn new(tracking: bool) -> ChangeLog {
        ChangeLog { tracking, records: HashSet::new(), settled: BTreeSet::new(), groups: BTreeSet::new() }
    }

    fn record(&mut self, key: &DeploymentKey) {
        if self.tracking {
            self.records.insert(key.clone());
        }
    }

    fn settled(&mut self, key: SettledKey) {
        if self.tracking {
            self.settled.insert(key);
        }
    }

    fn group(&mut self, key: &GroupKey) {
        if self.tracking {
            self.groups.insert(key.clone());
        }
    }

    fn clear(&mut self) {
        self.records.clear();
        self.settled.clear();
        self.groups.clear();
    }
}

impl Ledger {
    pub fn new(settle_time_ms: Millis) -> Ledger {
        Ledger::with_meta(settle_time_ms, LedgerMeta::default())
    }

    /// An empty ledger continuing `meta`; a new hash key when it has none.
    fn with_meta(settle_time_ms: Millis, mut meta: LedgerMeta) -> Ledger {
        let hash_key = *meta.hash_key.get_or_insert_with(HashKey::random);
        Ledger {
            settle_time_ms,
            lead: LeadTimeConfig::default(),
            limits: Limits::default(),
            records: HashMap::default(),
            keys_by_id: HashMap::default(),
            orphans: BTreeSet::new(),
            settle_queue: None,
            settled: SettledSet::new(hash_key),
            rollbacks_of: HashMap::new(),
            groups: HashMap::default(),
            group_keys: Vec::new(),
            meta,
            changed: ChangeLog::new(true),
        }
    }

    /// A ledger whose changes no store will read (`replay`'s): it does not
    /// collect them, and [`Ledger::changes`] is always empty.
    pub fn untracked(settle_time_ms: Millis) -> Ledger {
        Ledger { changed: ChangeLog::new(false), ..Ledger::new(settle_time_ms) }
    }

    /// Rebuilds a ledger from what a store holds; the indexes are derived again.
    pub fn restore(
        settle_time_ms: Millis,
        meta: LedgerMeta,
        records: impl IntoIterator<Item = (DeploymentKey, Record)>,
        settled: impl IntoIterator<Item = (SettledKey, Settled)>,
        groups: impl IntoIterator<Item = (GroupKey, GroupStats)>,
    ) -> Ledger {
        let mut ledger = Ledger::with_meta(settle_time_ms, meta);
        for (key, stats) in groups {
            let id = stats.id as usize;
            if ledger.group_keys.len() <= id {
                ledger.group_keys.resize(id + 1, GroupKey::default());
            }
            ledger.group_keys[id] = key.clone();
            ledger.groups.insert(key, stats);
        }
        for (key, entry) in settled {
            ledger.settled.insert(key, entry);
        }
        for (key, record) in records {
            ledger.index(&key, Facts::text(&record.facts.rollback_of));
            ledger.records.insert(key, Box::new(record));
        }
        ledger
    }

    /// Restarts the settle timer of every terminal record not counted yet.
    /// While the exporter was down no late event could arrive, so downtime must
    /// not use up the time they are given: after a restart they get it again.
    pub fn restart_settle_timers(&mut self, now: Millis) {
        for (key, record) in &mut self.records {
            if record.terminal_since.is_some() {
                record.terminal_since = Some(now);
                self.changed.record(key);
            }
        }
        if let Some(queue) = &mut self.settle_queue {
            queue.restart_timers(now);
        }
        for waiting in self.meta.rollbacks_waiting.values_mut() {
            waiting.since = now;
        }
        for (key, stats) in &mut self.groups {
            if stats.next_recovery_due(0).is_some() {
                stats.restart_recovery_timers(now);
                self.changed.group(key);
            }
        }
    }

    /// Indexes a record by deployment id, as an orphan when its account or
    /// region is unknown, and its rollback link.
    fn index(&mut self, key: &DeploymentKey, rollback_of: Option<&str>) {
        let keys = self.keys_by_id.entry(key.deployment_id.clone()).or_default();
        if let Err(at) = keys.binary_search(key) {
            keys.insert(at, key.clone());
            if !key.is_complete() {
                self.orphans.insert(key.clone());
            }
        }
        if let Some(rolled_back) = rollback_of {
            let rollbacks = self.rollbacks_of.entry(key.sibling(rolled_back)).or_default();
            if !rollbacks.contains(&key.deployment_id) {
                rollbacks.insert(key.deployment_id.clone());
            }
        }
    }

    /// Removes a record and its index entries; marks it removed for the store.
    fn remove_record(&mut self, key: &DeploymentKey) -> Option<Box<Record>> {
        let record = self.records.remove(key)?;
        if let Some(queue) = &mut self.settle_queue {
            queue.untrack(key, &record);
        }
        if let Some(keys) = self.keys_by_id.get_mut(&key.deployment_id) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.keys_by_id.remove(&key.deployment_id);
            }
        }
        self.orphans.remove(key);
        self.changed.record(key);
        Some(record)
    }

    /// The bounds on tables and times (see [`limits`]); unbounded until set.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// Counts input that ran into a bound.
    pub fn note_limited(&mut self, limit: Limit) {
        *self.meta.limited.entry(limit).or_insert(0) += 1;
    }

    /// Whether an observation may be folded in: its label values and times
    /// are within bounds, and a new deployment fits the tables. A deployment
    /// already tracked or counted is never refused for the tables' sake: its
    /// end must still land.
    pub fn admit(&self, observation: &Observation, now: Millis) -> Result<(), Refusal> {
        limits::check_observation(observation, self.limits.refuse_future, now)?;
        if observation.commit_record.is_some() || (self.limits.max_groups.is_none() && self.limits.max_tracked.is_none()) {
            return Ok(());
        }
        let r = &observation.deployment;
        let known = self.records_for(r).next().is_some() || !self.settled_outcomes(r).is_empty();
        if known {
            return Ok(());
        }
        let group = match (&observation.application, &observation.deployment_group, &r.account, &r.region) {
            (Some(application), Some(deployment_group), Some(account), Some(region)) => Some(GroupKey {
                account_id: account.clone(),
                region: region.clone(),
                application: application.clone(),
                deployment_group: deployment_group.clone(),
            }),
            _ => None,
        };
        let known_group = group.as_ref().is_some_and(|g| self.groups.contains_key(g));
        // Deployments of groups already counted get a second share of the
        // table, so that a flood of new names cannot keep them out.
        if let Some(max) = self.limits.max_tracked {
            let full = if known_group { 2 * max } else { max };
            if self.records.len() >= full {
                return Err(Refusal {
                    limit: Limit::Tracked,
                    detail: format!("{} deployments are tracked and not counted yet (--limits.max-tracked)", self.records.len()),
                });
            }
        }
        if let (Some(max), Some(_), false) = (self.limits.max_groups, &group, known_group) {
            if self.groups.len() >= max {
                return Err(Refusal {
                    limit: Limit::Groups,
                    detail: format!("{max} deployment groups are known (--limits.max-groups)"),
                });
            }
        }
        Ok(())
    }

    /// Where lead time is looked for (the description keys, the resolver's sources).
    pub fn set_lead_time(&mut self, config: LeadTimeConfig) {
        self.lead = config;
    }

    /// Lookups the commit-time resolver is to do.
    pub fn lead_lookups(&self) -> Vec<PendingLookup> {
        self.meta
            .lead_pending
            .iter()
            .map(|(key, lookup)| PendingLookup { deployment: key.reference(), lookup: lookup.clone() })
            .collect()
    }

    pub fn settle_time_ms(&self) -> Millis {
        self.settle_time_ms
    }

    /// The latest time any observation mentioned: `replay`'s default `--now`.
    pub fn latest_time(&self) -> Option<Millis> {
        self.meta.latest_time
    }

    /// The groups of one account and region: those counted, and those of
    /// deployments not counted yet. Sorted, each once.
    pub fn groups_in(&self, account: &str, region: &str) -> BTreeSet<GroupKey> {
        let counted = self.groups.keys().filter(|g| g.account_id == account && g.region == region).cloned();
        let named = self.records.iter().filter(|(key, record)| {
            key.account == account && key.region == region && Facts::text(&record.facts.application).is_some()
                && Facts::text(&record.facts.deployment_group).is_some()
        });
        counted.chain(named.map(|(key, record)| group_key(key, &record.facts))).collect()
    }

    pub fn deployments_tracked(&self) -> usize {
        self.records.len() + self.settled.len()
    }

    /// The records a reference can mean: its own key, or records still
    /// lacking the account or region it names.
    fn records_for<'a>(&'a self, r: &'a DeploymentRef) -> impl Iterator<Item = &'a Record> + 'a {
        self.keys_by_id.get(r.deployment_id.as_str()).into_iter().flatten().filter_map(move |key| {
            let account_fits = key.account.is_empty() || r.account.as_ref().is_none_or(|a| *a == key.account);
            let region_fits = key.region.is_empty() || r.region.as_ref().is_none_or(|g| *g == key.region);
            (account_fits && region_fits).then(|| self.records.get(key).map(Box::as_ref)).flatten()
        })
    }

    /// Outcomes of the counted deployments a reference can mean.
    fn settled_outcomes(&self, r: &DeploymentRef) -> Vec<Outcome> {
        self.settled
            .matching(&r.deployment_id, r.account.as_deref(), r.region.as_deref())
            .into_iter()
            .map(|(_, entry)| entry.outcome())
            .collect()
    }

    /// Whether the API has already given this deployment's final details
    /// (terminal, completeTime, every announced target), or it is counted:
    /// the poller never fetches such a deployment again.
    pub fn api_details_complete(&self, r: &DeploymentRef) -> bool {
        self.records_for(r).any(|record| record.facts.details_complete()) || !self.settled_outcomes(r).is_empty()
    }

    /// Whether an event source (EventBridge, an SNS trigger) reported a
    /// deployment-level state change of this deployment.
    pub fn announced_by_event(&self, r: &DeploymentRef) -> bool {
        self.records_for(r)
            .any(|record| record.facts.start_event_time.is_some() || record.facts.end_event_time.is_some())
            || self.settled_outcomes(r).iter().any(|o| o.announced)
    }

    /// Counts an issue a source found (not one of the ledger's own clamps).
    pub fn note_quality_issue(&mut self, issue: QualityIssue) {
        *self.meta.data_quality.entry(issue).or_insert(0) += 1;
    }

    /// Folds one observation in. Returns false when it told us nothing new
    /// (a duplicate). `now` is the ingest clock, used only for the settle timer.
    pub fn apply(&mut self, observation: &Observation, now: Millis) -> bool {
        let times = [
            observation.event_time,
            observation.create_time,
            observation.start_time,
            observation.complete_time,
        ];
        if let Some(latest) = times.into_iter().flatten().max() {
            self.meta.latest_time = Some(self.meta.latest_time.map_or(latest, |t| t.max(latest)));
        }
        if let Some(record) = &observation.commit_record {
            return self.record_commit(record);
        }
        let r = &observation.deployment;
        let key = DeploymentKey {
            account: r.account.clone().unwrap_or_default(),
            region: r.region.clone().unwrap_or_default(),
            deployment_id: r.deployment_id.clone(),
        };
        if observation.commit_time.is_some() || observation.lead_time_unknown.is_some() {
            if let Some(lookup) = self.meta.lead_pending.get(&key).cloned() {
                return self.answer_lookup(&key, &lookup, observation.commit_time, observation.lead_time_unknown);
            }
        }
        if !self.records.contains_key(&key) {
            // News of a counted deployment: only a late rollback link matters.
            let counted = if key.is_complete() {
                self.settled_keys(&key)
            } else if self.keys_by_id.contains_key(&key.deployment_id) {
                Vec::new()
            } else {
                self.settled_keys(&key)
            };
            if !counted.is_empty() {
                return counted.len() == 1
                    && observation.rolled_back_by.is_some()
                    && self.mark_rolled_back(counted[0]);
            }
        }
        self.join_into(key, News::Observation(observation), now)
    }

    /// Keys of the counted deployments `key` can mean.
    fn settled_keys(&self, key: &DeploymentKey) -> Vec<SettledKey> {
        let (account, region) = key.location();
        self.settled.matching(&key.deployment_id, account, region).into_iter().map(|(k, _)| k).collect()
    }

    /// A counted deployment is learned to be rolled back; returns whether that
    /// changed anything. A change that succeeded becomes a change failure.
    fn mark_rolled_back(&mut self, key: SettledKey) -> bool {
        let Some(entry) = self.settled.get_mut(key) else { return false };
        if entry.outcome().rolled_back {
            return false;
        }
        let newly_failed = entry.mark_rolled_back();
        let (group, finished_at) = (entry.group, entry.outcome().finished_at);
        self.changed.settled(key);
        if newly_failed {
            if let Some(group_key) = self.group_keys.get(group as usize).cloned() {
                if let Some(stats) = self.groups.get_mut(&group_key) {
                    let late = stats.add_late_change_failure(finished_at);
                    self.changed.group(&group_key);
                    if late {
                        self.note_quality_issue(QualityIssue::LateForRecovery);
                    }
                }
            }
        }
        true
    }

    /// Keeps a CI commit record; returns whether it was news.
    fn record_commit(&mut self, record: &CommitRecord) -> bool {
        let keys = record
            .commit
            .iter()
            .filter_map(|c| lead_time::parse_sha(c))
            .map(|c| lead_time::commit_key(&c))
            .chain(record.revision.iter().map(|r| lead_time::revision_key(r)));
        let mut changed = false;
        for key in keys.collect::<Vec<_>>() {
            let slot = self.meta.commits.entry(key).or_insert(Millis::MAX);
            if record.committed_at < *slot {
                *slot = record.committed_at;
                changed = true;
            }
        }
        changed
    }

    /// The resolver answered a pending lookup: decide the lead time.
    fn answer_lookup(
        &mut self,
        key: &DeploymentKey,
        lookup: &LeadLookup,
        found: Option<CommitTime>,
        reason: Option<LeadTimeUnknown>,
    ) -> bool {
        self.meta.lead_pending.remove(key);
        let Some(settled_key) = self.settled_keys(key).first().copied() else { return true };
        let Some(entry) = self.settled.get_mut(settled_key) else { return true };
        if entry.lead_time_done() {
            return true;
        }
        entry.mark_lead_time_done();
        let group = entry.group;
        self.changed.settled(settled_key);
        let decision = lead_time::resolve(lookup, found, reason);
        if let Some(group_key) = self.group_keys.get(group as usize).cloned() {
            self.apply_lead_decision(&group_key, &key.deployment_id, lookup.finished_at, decision);
        }
        true
    }

    /// Observes a lead time or counts it unknown, in the group's stats.
    fn apply_lead_decision(&mut self, group_key: &GroupKey, deployment_id: &str, finished_at: Millis, decision: Decision) {
        let lead = match decision {
            Decision::Observe(found) => {
                *self.meta.lead_sources.entry((found.source, found.kind)).or_insert(0) += 1;
                let raw = finished_at - found.at;
                if raw < 0 {
                    self.note_quality_issue(QualityIssue::NegativeLeadTime);
                }
                Some(raw.max(0))
            }
            Decision::Unknown(reason) => {
                if let Some(stats) = self.groups.get_mut(group_key) {
                    *stats.lead_time_unknown.entry(reason).or_insert(0) += 1;
                }
                None
            }
            Decision::Pending(_) => return,
        };
        if let (Some(lead), Some(stats)) = (lead, self.groups.get_mut(group_key)) {
            stats.lead_time.observe_with_exemplar(
                lead,
                histogram::Exemplar { deployment_id: deployment_id.to_owned(), value_ms: lead, at: finished_at },
            );
            stats.lead_times.push((finished_at, lead));
        }
        self.changed.group(group_key);
    }

    /// A counted succeeded change's lead time: decided now, or left to the
    /// resolver. Returns whether it was decided.
    fn decide_lead_time(&mut self, key: &DeploymentKey, facts: &Facts, group_key: &GroupKey) -> bool {
        let Some(finished_at) = facts.finished_at() else { return true };
        let commit = lead_time::deployed_commit(&self.lead, facts);
        let previous_commit = self.groups.get(group_key).and_then(|g| g.last_commit.clone());
        if let (Some(commit), Some(stats)) = (&commit, self.groups.get_mut(group_key)) {
            if stats.last_commit.as_ref().is_none_or(|(at, _)| finished_at >= *at) {
                stats.last_commit = Some((finished_at, commit.clone()));
            }
        }
        match lead_time::decide(&self.lead, facts, &self.meta.commits, finished_at) {
            Decision::Pending(mut lookup) => {
                lookup.previous_commit = previous_commit.map(|(_, c)| c).filter(|c| Some(c) != commit.as_ref());
                self.meta.lead_pending.insert(key.clone(), lookup);
                false
            }
            decision => {
                self.apply_lead_decision(group_key, &key.deployment_id, finished_at, decision);
                true
            }
        }
    }

    /// Without a resolver (any longer), pending lookups are decided from what the pure sources gave.
    fn decide_pending_without_resolver(&mut self) {
        if self.lead.s3 || self.lead.git || self.meta.lead_pending.is_empty() {
            return;
        }
        let pending: Vec<(DeploymentKey, LeadLookup)> = std::mem::take(&mut self.meta.lead_pending).into_iter().collect();
        for (key, lookup) in pending {
            self.answer_lookup(&key, &lookup, None, Some(LeadTimeUnknown::NoSourceConfigured));
        }
    }

    fn join_into(&mut self, key: DeploymentKey, news: News<'_>, now: Millis) -> bool {
        let (record, mut changed, is_new, timer_was) = match self.records.get_mut(&key) {
            Some(record) => {
                let timer_was = record.terminal_since;
                let changed = news.join_into(&mut record.facts);
                (record, changed, false, timer_was)
            }
            None => {
                let mut record = Record::default();
                if !news.join_into(&mut record.facts) {
                    // It says nothing (an id and no facts): no record, or an empty one
                    // would sit in memory, never stored, never trimmed.
                    return false;
                }
                (self.records.entry(key.clone()).or_insert(Box::new(record)), true, true, None)
            }
        };
        if record.facts.is_terminal() && record.terminal_since.is_none() {
            record.terminal_since = Some(now);
            changed = true;
        }
        if changed {
            if let Some(queue) = &mut self.settle_queue {
                queue.track(&key, record, timer_was);
            }
            let rollback_of = Facts::text(&record.facts.rollback_of).map(str::to_owned);
            // A record already present is indexed by id already: only a new one, or a
            // rollback link, has anything to add.
            if is_new || rollback_of.is_some() {
                self.index(&key, rollback_of.as_deref());
            }
            self.changed.record(&key);
        }
        changed
    }


    /// Folds each record that lacks account or region into the only fully
    /// identified record with its deployment id that it can mean. Done when
    /// settling rather than on arrival, so that in `replay` the outcome depends
    /// on the whole set of messages, not on which arrived first.
    ///
    /// When the id is known in several accounts or regions, the record goes to
    /// the one of them that already holds everything it says, if exactly one
    /// does: a re-delivery of messages adopted before the second account or
    /// region appeared must change nothing, not stand alone and count again.
    /// When its only candidates are already counted, it is news of a counted
    /// deployment and is dropped (a rollback link still marks it).
    ///
    /// A record that no located record of its id can take may still be placed
    /// by its rollback links: a rollback runs in the account and region of the
    /// deployment it undoes, so a link (either way) to deployments of exactly
    /// one location gives the record that location. Placing one orphan may
    /// place another linked to it, so this repeats until nothing moves.
    fn adopt_orphans(&mut self, now: Millis) {
        while !self.orphans.is_empty() && self.adopt_orphans_once(now) {}
    }

    /// One pass of [`Ledger::adopt_orphans`]; returns whether any record moved.
    fn adopt_orphans_once(&mut self, now: Millis) -> bool {
        let orphans: Vec<DeploymentKey> = self.orphans.iter().cloned().collect();
        let named_by = self.locations_naming();
        let mut moved = false;
        for orphan in orphans {
            let partial = orphan.reference();
            let candidates: Vec<DeploymentKey> = self
                .keys_by_id
                .get(&orphan.deployment_id)
                .into_iter()
                .flatten()
                .filter(|k| k.is_complete() && k.admits(&partial))
                .cloned()
                .collect();
            let mut counted = self.settled_keys(&orphan);
            let Some(record) = self.records.get(&orphan) else { continue };
            let home = match candidates.as_slice() {
                [] if counted.is_empty() => match self.linked_location(&orphan, &record.facts, &named_by) {
                    Some(located) => {
                        counted = self.settled_keys(&located);
                        counted.is_empty().then_some(located)
                    }
                    None => continue,
                },
                [] => None,
                [only] if counted.is_empty() => Some(only.clone()),
                several => {
                    let mut holders = several.iter().filter(|k| self.holds(k, &record.facts));
                    match (holders.next(), holders.next(), counted.is_empty()) {
                        (Some(home), None, _) => Some(home.clone()),
                        (None, None, false) => None,
                        _ => continue,
                    }
                }
            };
            let Some(record) = self.remove_record(&orphan) else { continue };
            moved = true;
            match home {
                Some(home) => {
                    self.join_into(home, News::Record(&record.facts), now);
                }
                None => {
                    let rolled_back = record.facts.rolled_back_by.is_some();
                    if let ([only], true) = (counted.as_slice(), rolled_back) {
                        self.mark_rolled_back(*only);
                    }
                }
            }
        }
        moved
    }

    /// The located deployments that name each deployment id in a rollback
    /// link (as what they roll back, or what rolled them back), by location.
    fn locations_naming(&self) -> HashMap<CompactString, BTreeSet<(CompactString, CompactString)>> {
        let mut named_by: HashMap<CompactString, BTreeSet<(CompactString, CompactString)>> = HashMap::new();
        let mut add = |key: &DeploymentKey, named: &str| {
            if key.is_complete() {
                named_by.entry(named.into()).or_default().insert((key.account.clone(), key.region.clone()));
            }
        };
        for rolled_back in self.rollbacks_of.keys() {
            add(rolled_back, &rolled_back.deployment_id);
        }
        for (key, record) in &self.records {
            if let Some(rollback) = Facts::text(&record.facts.rolled_back_by) {
                add(key, rollback);
            }
        }
        named_by
    }

    /// Where an orphan's rollback links place it: the key it has at the only
    /// location of the deployments it names and that name it, if there is one.
    fn linked_location(
        &self,
        orphan: &DeploymentKey,
        facts: &Facts,
        named_by: &HashMap<CompactString, BTreeSet<(CompactString, CompactString)>>,
    ) -> Option<DeploymentKey> {
        let partial = orphan.reference();
        let mut locations: BTreeSet<(CompactString, CompactString)> =
            named_by.get(&orphan.deployment_id).cloned().unwrap_or_default();
        for linked in [&facts.rollback_of, &facts.rolled_back_by].into_iter().filter_map(Facts::text) {
            locations.extend(self.locations_of(linked));
        }
        let mut fitting = locations.into_iter().filter(|(account, region)| {
            partial.account.as_ref().is_none_or(|a| a == account) && partial.region.as_ref().is_none_or(|r| r == region)
        });
        match (fitting.next(), fitting.next()) {
            (Some((account, region)), None) => {
                Some(DeploymentKey { account, region, deployment_id: orphan.deployment_id.clone() })
            }
            _ => None,
        }
    }

    /// The known locations of a deployment id, counted or not.
    fn locations_of(&self, deployment_id: &str) -> Vec<(CompactString, CompactString)> {
        let recorded = self.keys_by_id.get(deployment_id).into_iter().flatten().map(|k| (k.account.clone(), k.region.clone()));
        let counted = self.settled.matching(deployment_id, None, None).into_iter().filter_map(|(_, entry)| {
            self.group_keys.get(entry.group as usize).map(|g| (g.account_id.clone(), g.region.clone()))
        });
        recorded.chain(counted).filter(|(account, region)| !account.is_empty() && !region.is_empty()).collect()
    }

    /// Whether the record at `key` already holds everything `facts` say.
    fn holds(&self, key: &DeploymentKey, facts: &Facts) -> bool {
        self.records.get(key).is_some_and(|record| !record.facts.clone().merge(facts))
    }

    /// Counts every terminal record that is ready, in completion order, and
    /// returns how many settled.
    ///
    /// A record is *due* when it is terminal and either its API details are
    /// complete (with account and region known) or it has been terminal for the
    /// settle time. It settles when it is due and no earlier-started deployment
    /// of its group is still unsettled and not due: CodeDeploy runs one
    /// deployment per group at a time, so such a deployment's terminal event is
    /// late, and counting the later one first would misplace a recovery run.
    /// After twice the settle time a terminal record settles regardless, so an
    /// event lost for good cannot hold its group back. With `force` (the end of
    /// `replay`) everything terminal settles.
    pub fn settle(&mut self, now: Millis, force: bool) -> usize {
        self.adopt_orphans(now);
        self.decide_pending_without_resolver();
        let candidates: Vec<DeploymentKey> = if force {
            self.records.keys().cloned().collect()
        } else {
            let records = &self.records;
            let queue = self.settle_queue.get_or_insert_with(|| SettleQueue::of(records));
            queue.candidates(now - self.settle_time_ms).into_iter().collect()
        };
        let mut ready: Vec<(Millis, DeploymentKey)> = candidates
            .into_iter()
            .filter_map(|key| {
                let record = self.records.get(&key)?;
                let ready = record.facts.is_terminal()
                    && (force
                        || self.waited(record, now, 2 * self.settle_time_ms)
                        || (self.due(&key, record, now) && !self.blocked(&key, record, now)));
                ready.then(|| (record.facts.finished_at().unwrap_or(Millis::MAX), key))
            })
            .collect();
        ready.sort();
        for (_, key) in &ready {
            self.count(key, now);
        }
        self.give_up_waiting_rollbacks(force, now - 2 * self.settle_time_ms);
        self.finalize_recoveries(now, force);
        ready.len()
    }

    /// The history is in (the end of a backfill, see
    /// [`crate::ingest::Exporter::end_of_backfill`]): observes every recovery
    /// now, as `replay` does at its end, and counts the rollbacks whose
    /// rolled-back deployment is not in it.
    pub fn end_of_history(&mut self) {
        self.give_up_waiting_rollbacks(false, Millis::MAX);
        self.finalize_recoveries(0, true);
    }

    /// Counts as of `unknown` cause the waiting rollbacks whose rolled-back
    /// deployment will not be counted: every one with `force` (the end of
    /// `replay`); else those waiting since `waited_since` or earlier whose
    /// rolled-back deployment has no terminal record (one that has is
    /// counted within twice the settle time, and settles the wait itself).
    fn give_up_waiting_rollbacks(&mut self, force: bool, waited_since: Millis) {
        let given_up: Vec<DeploymentKey> = self
            .meta
            .rollbacks_waiting
            .iter()
            .filter(|(key, waiting)| {
                let undone = key.sibling(&waiting.undone).reference();
                force
                    || (waiting.since <= waited_since
                        && !self.records_for(&undone).any(|record| record.facts.is_terminal()))
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in given_up {
            self.count_waiting_rollback(&key, RollbackCause::Unknown, None);
        }
    }

    /// Counts a waiting rollback with the cause (and the completion time, if
    /// known) of the deployment it undid; nothing if it is not waiting.
    fn count_waiting_rollback(&mut self, rollback: &DeploymentKey, cause: RollbackCause, undone_at: Option<Millis>) {
        if self.meta.rollbacks_waiting.remove(rollback).is_none() {
            return;
        }
        let [only] = self.settled_keys(rollback)[..] else { return };
        let Some(entry) = self.settled.get(only) else { return };
        let finished_at = entry.outcome().finished_at;
        let duration = finished_at.zip(undone_at).map(|(to, from)| self.clamp_duration(to - from));
        if let Some(group_key) = self.group_keys.get(entry.group as usize).cloned() {
            if let Some(stats) = self.groups.get_mut(&group_key) {
                stats.add_rollback(entry.status, cause, duration);
                self.changed.group(&group_key);
            }
        }
    }

    /// Observes the recoveries that have waited the settle time (all with
    /// `force`), but none that a deployment of the group still to be counted
    /// could change: one that finished before the success (it will be
    /// counted within twice the settle time).
    fn finalize_recoveries(&mut self, now: Millis, force: bool) {
        let wait = self.settle_time_ms;
        let (records, queue) = (&self.records, &self.settle_queue);
        for (key, stats) in &mut self.groups {
            let due = stats.next_recovery_due(wait).is_some_and(|due| force || due <= now);
            if !due {
                continue;
            }
            let still_to_count = queue.iter().flat_map(|queue| queue.open_in(key)).filter_map(|open| {
                records.get(open).filter(|r| r.facts.is_terminal()).and_then(|r| r.facts.finished_at())
            });
            let hold = if force { None } else { still_to_count.min() };
            stats.finalize_recoveries(now, wait, force, hold);
            self.changed.group(key);
        }
    }

    fn waited(&self, record: &Record, now: Millis, time: Millis) -> bool {
        record.terminal_since.is_some_and(|since| now - since >= time)
    }

    fn due(&self, key: &DeploymentKey, record: &Record, now: Millis) -> bool {
        due_by_details(key, &record.facts)
            || (record.facts.is_terminal() && self.waited(record, now, self.settle_time_ms))
    }

    /// Whether an earlier-started deployment of the same group is unsettled and not due.
    fn blocked(&self, key: &DeploymentKey, record: &Record, now: Millis) -> bool {
        let started = |r: &Record| r.facts.began_at().or(r.facts.finished_at());
        let Some(start) = started(record) else { return false };
        self.settle_queue.iter().flat_map(|queue| queue.peers(key)).any(|peer| {
            self.records.get(peer).is_some_and(|other| {
                started(other).is_some_and(|other_start| other_start < start) && !self.due(peer, other, now)
            })
        })
    }

    /// Drops counted deployments, and abandoned never-finished records, whose
    /// latest time is before `cutoff`, and recoveries older than it. Counters
    /// are untouched: they already hold what those deployments contributed.
    pub fn trim(&mut self, cutoff: Millis) -> usize {
        let abandoned: Vec<DeploymentKey> = self
            .records
            .iter()
            .filter(|(_, r)| !r.facts.is_terminal() && r.last_known_time().is_some_and(|t| t < cutoff))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &abandoned {
            self.remove_record(key);
            self.rollbacks_of.remove(key);
        }
        self.meta.commits.retain(|_, at| *at >= cutoff);
        self.meta.lead_pending.retain(|_, lookup| lookup.finished_at >= cutoff);
        let expired = self.settled.expire(cutoff);
        for key in &expired {
            self.changed.settled(*key);
        }
        for (key, stats) in &mut self.groups {
            if stats.trim_restores(cutoff) {
                self.changed.group(key);
            }
        }
        abandoned.len() + expired.len()
    }

    /// What changed since the last [`Ledger::mark_committed`].
    pub fn changes(&self) -> Changes<'_> {
        Changes {
            records: {
                let mut keys: Vec<&DeploymentKey> = self.changed.records.iter().collect();
                keys.sort_unstable();
                keys.into_iter().map(|k| (k, self.records.get(k).map(Box::as_ref))).collect()
            },
            settled: self.changed.settled.iter().map(|k| (*k, self.settled.get(*k))).collect(),
            groups: self
                .changed
                .groups
                .iter()
                .filter_map(|k| self.groups.get(k).map(|stats| (k, stats)))
                .collect(),
            meta: &self.meta,
        }
    }

    /// The changes are durable; start collecting the next ones.
    pub fn mark_committed(&mut self) {
        self.changed.clear();
    }

    /// The group's stats, created (with the next id) when the group is new.
    fn group_mut(&mut self, key: GroupKey) -> &mut GroupStats {
        let next_id = self.group_keys.len() as u32;
        self.changed.group(&key);
        let group_keys = &mut self.group_keys;
        self.groups.entry(key.clone()).or_insert_with(|| {
            group_keys.push(key);
            GroupStats::new(next_id)
        })
    }

    /// Counts a record, then replaces it with its compact settled entry.
    fn count(&mut self, key: &DeploymentKey, now: Millis) {
        let Some(record) = self.remove_record(key) else { return };
        let facts = record.facts;
        let group_key = group_key(key, &facts);
        let group_is_new = !self.groups.contains_key(&group_key);
        if group_is_new && self.limits.max_groups.is_some_and(|max| self.groups.len() >= max) {
            // Admitted before the groups filled up; it cannot be counted into a
            // group of its own, and merging it into another would be a lie.
            self.rollbacks_of.remove(key);
            self.note_limited(Limit::Groups);
            return;
        }
        let mut settlement = self.settlement(key, &facts);
        let group = self.group_mut(group_key.clone());
        let limited = group.bound_labels(&mut settlement);
        // A recovery waits the settle time from when its success was known
        // to be terminal: preloaded history, terminal long ago, is final at once.
        let late = group.add(&settlement, record.terminal_since.unwrap_or(now));
        let group_id = group.id;
        for limit in limited {
            self.note_limited(limit);
        }
        if late {
            self.note_quality_issue(QualityIssue::LateForRecovery);
        }
        let class = classify(&facts);
        let outcome = Outcome {
            finished_at: settlement.finished_at,
            duration_ms: settlement.duration_ms,
            is_rollback: settlement.is_rollback,
            is_change: class.is_change(),
            is_change_failure: settlement.is_change_failure,
            rolled_back: facts.rolled_back_by.is_some() || self.rollbacks_of.contains_key(key),
            announced: facts.start_event_time.is_some() || facts.end_event_time.is_some(),
        };
        let rollbacks: BTreeSet<CompactString> = self
            .rollbacks_of
            .remove(key)
            .unwrap_or_default()
            .into_iter()
            .chain(Facts::text(&facts.rolled_back_by).map(CompactString::from))
            .collect();
        let status = settlement.status;
        // DORA's lead time runs from commit to *successfully* running: only a
        // succeeded change has one (failed and stopped ones have none to find).
        let has_lead_time = class.is_change() && status == Status::Succeeded;
        let lead_decided = !has_lead_time || self.decide_lead_time(key, &facts, &group_key);
        let mut entry = Settled::new(group_id, status, outcome, now);
        if lead_decided {
            entry.mark_lead_time_done();
        }
        let cause = RollbackCause::of(Some(status), Facts::text(&facts.error_code));
        entry.set_cause(cause);
        let settled_key = self.settled.key(&key.deployment_id, &key.account, &key.region);
        self.settled.insert(settled_key, entry);
        self.changed.settled(settled_key);
        if let (true, None, Some(link)) = (settlement.is_rollback, settlement.rollback_cause, &facts.rollback_of) {
            let waiting = WaitingRollback { undone: link.value.clone(), since: now };
            self.meta.rollbacks_waiting.insert(key.clone(), waiting);
        }
        for rollback in &rollbacks {
            self.count_waiting_rollback(&key.sibling(rollback), cause, settlement.finished_at);
        }

        // A rollback counted after the deployment it undid: that one may be a
        // change that succeeded and only now turns out to be a failure.
        if let (true, Some(link)) = (settlement.is_rollback, &facts.rollback_of) {
            let target = key.sibling(&link.value);
            match self.settled_keys(&target).as_slice() {
                [only] => {
                    self.mark_rolled_back(*only);
                }
                // Not counted yet: the link goes into its record, which the store
                // keeps. The `rollbacks_of` index alone would lose it on a restart
                // (it is rebuilt from records, and this one is settled now).
                [] => {
                    let mut link_back = Observation::new(target.reference(), link.provenance);
                    link_back.rolled_back_by = Some(key.deployment_id.clone());
                    self.join_into(target, News::Observation(&link_back), now);
                }
                _ => {}
            }
        }
    }

    fn settlement(&mut self, key: &DeploymentKey, facts: &Facts) -> Settlement {
        let status = facts.status().unwrap_or(Status::Failed);
        let class = classify(facts);
        let rolled_back = facts.rolled_back_by.is_some() || self.rollbacks_of.contains_key(key);
        let finished_at = facts.finished_at();
        let duration_ms = facts.raw_duration_ms().map(|d| self.clamp_duration(d));
        // A rollback's cause and time to rollback need the rolled-back
        // deployment's end: when it is not counted yet, the rollback waits
        // for it (see `count_waiting_rollback`).
        let undone = match (class, Facts::text(&facts.rollback_of)) {
            (Class::Rollback, Some(id)) => Some(self.settled_keys(&key.sibling(id))),
            _ => None,
        };
        let (rollback_cause, undone_at) = match undone.as_deref() {
            Some([]) => (None, None),
            Some([only]) => match self.settled.get(*only) {
                Some(entry) => (Some(entry.cause()), entry.outcome().finished_at),
                None => (Some(RollbackCause::Unknown), None),
            },
            // No link, or a link to deployments in several locations.
            _ => (Some(RollbackCause::Unknown), None),
        };
        let rollback_duration_ms = undone_at.zip(finished_at).map(|(from, to)| self.clamp_duration(to - from));
        let error_code = Facts::text(&facts.error_code);
        let alarm_stop = if status == Status::Stopped && error_code == Some(crate::domain::ALARM_ACTIVE) {
            match facts.activated_alarms.as_slice() {
                [] => vec![CompactString::from(limits::UNKNOWN)],
                named => named.to_vec(),
            }
        } else {
            Vec::new()
        };

        let targets = match &facts.overview {
            Some(overview) => overview.value.by_status().into_iter().filter(|(_, n)| *n > 0).collect(),
            None => {
                let mut by_status: BTreeMap<TargetStatus, u64> = BTreeMap::new();
                for target in facts.targets.values() {
                    if let Some(s) = &target.status {
                        *by_status.entry(s.value).or_insert(0) += 1;
                    }
                }
                by_status.into_iter().collect()
            }
        };
        let mut hook_durations = Vec::new();
        let mut hook_failures = Vec::new();
        for target in facts.targets.values() {
            for (name, hook) in &target.hooks {
                let Some(status) = hook.status.as_ref().map(|s| s.value) else { continue };
                if !matches!(status, TargetStatus::Succeeded | TargetStatus::Failed) {
                    continue;
                }
                if let (Some(start), Some(end)) = (&hook.start_time, &hook.end_time) {
                    let duration = self.clamp_duration(end.value - start.value);
                    hook_durations.push((name.clone(), duration));
                }
                if status == TargetStatus::Failed {
                    let code = hook.error_code.as_deref().map_or("unknown", |code| code.value.as_str());
                    hook_failures.push((name.clone(), code.into()));
                }
            }
        }

        Settlement {
            deployment_id: key.deployment_id.as_str().to_owned(),
            kind: kind_of(facts),
            status,
            finished_at,
            duration_ms,
            is_rollback: class == Class::Rollback,
            rollback_duration_ms,
            rollback_cause,
            is_change_failure: class.is_change()
                && (matches!(status, Status::Failed | Status::Stopped) || rolled_back),
            error_code: error_code.map(CompactString::from),
            alarm_stop,
            targets,
            hook_durations,
            hook_failures,
        }
    }

    /// Clock skew between CodeDeploy's backends can put completeTime before
    /// createTime; such durations are clamped and counted, never observed as-is.
    fn clamp_duration(&mut self, duration: Millis) -> Millis {
        let (clamped, issue) = if duration < 0 {
            (0, Some(QualityIssue::NegativeDuration))
        } else if duration > MAX_PLAUSIBLE_DURATION_MS {
            (MAX_PLAUSIBLE_DURATION_MS, Some(QualityIssue::AbsurdDuration))
        } else {
            (duration, None)
        };
        if let Some(issue) = issue {
            *self.meta.data_quality.entry(issue).or_insert(0) += 1;
        }
        clamped
    }

    /// A read-only view for rendering, with the windowed figures anchored at `now`.
    pub fn snapshot(&self, now: Millis) -> Snapshot {
        snapshot::build(self, now)
    }
}

/// How a deployment counts for DORA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    /// A change: user, CodeDeploy, CloudFormation, auto-update, or unknown.
    Change,
    /// Rolls another deployment back.
    Rollback,
    /// Auto Scaling redeploying the current revision.
    Scaling,
}

impl Class {
    fn is_change(self) -> bool {
        self == Class::Change
    }
}

fn classify(facts: &Facts) -> Class {
    let creator = Facts::text(&facts.creator);
    if facts.rollback_of.is_some() || creator.is_some_and(|c| ROLLBACK_CREATORS.contains(&c)) {
        Class::Rollback
    } else if creator.is_some_and(|c| SCALING_CREATORS.contains(&c)) {
        Class::Scaling
    } else {
        Class::Change
    }
}

fn kind_of(facts: &Facts) -> Kind {
    let or_unknown = |slot| CompactString::from(Facts::text(slot).unwrap_or("unknown"));
    Kind {
        compute_platform: or_unknown(&facts.compute_platform),
        deployment_type: or_unknown(&facts.deployment_type),
        creator: or_unknown(&facts.creator),
        deployment_config: or_unknown(&facts.deployment_config),
    }
}

/// Terminal, fully identified, and the API has given its final details: due
/// at once, whatever the settle time.
fn due_by_details(key: &DeploymentKey, facts: &Facts) -> bool {
    facts.is_terminal() && key.is_complete() && facts.details_complete()
}

/// The application and deployment group a record names so far (empty while unknown).
fn group_names(facts: &Facts) -> (&str, &str) {
    (Facts::text(&facts.application).unwrap_or_default(), Facts::text(&facts.deployment_group).unwrap_or_default())
}

fn group_key(key: &DeploymentKey, facts: &Facts) -> GroupKey {
    let (application, deployment_group) = group_names(facts);
    GroupKey {
        account_id: key.account.clone(),
        region: key.region.clone(),
        application: application.into(),
        deployment_group: deployment_group.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Overview, Provenance};

    const MIN: Millis = 60_000;

    fn at(account: &str, id: &str) -> DeploymentRef {
        DeploymentRef {
            account: Some(CompactString::from(account)).filter(|a| !a.is_empty()),
            region: Some(CompactString::from("us-east-1")).filter(|_| !account.is_empty()),
            deployment_id: id.into(),
        }
    }

    /// An EventBridge deployment state change.
    fn event(id: &str, status: Status, time: Millis) -> Observation {
        let mut o = Observation::new(at("111111111111", id), Provenance::Event);
        o.application = Some("app".into());
        o.deployment_group = Some("prod".into());
        o.status = Some(status);
        o.event_time = Some(time);
        o.is_state_change = true;
        o
    }

    /// An API `DeploymentInfo` (no account or region).
    fn api(id: &str, status: Status, created: Millis, completed: Millis, creator: &str) -> Observation {
        let mut o = Observation::new(at("", id), Provenance::Api);
        o.application = Some("app".into());
        o.deployment_group = Some("prod".into());
        o.status = Some(status);
        o.create_time = Some(created);
        o.complete_time = Some(completed);
        o.creator = Some(creator.into());
        o
    }

    fn only_group(ledger: &Ledger) -> GroupSnapshot {
        let snapshot = ledger.snapshot(100 * MIN);
        assert_eq!(snapshot.groups.len(), 1, "{:#?}", snapshot.groups);
        snapshot.groups.into_iter().next().expect("one group")
    }

    fn finished(group: &GroupSnapshot, status: Status) -> u64 {
        group.stats.deployments.iter().filter(|((_, s), _)| *s == status).map(|(_, n)| n).sum()
    }

    fn replayed(observations: &[Observation]) -> Ledger {
        let mut ledger = Ledger::new(2 * MIN);
        for o in observations {
            ledger.apply(o, 0);
        }
        ledger.settle(0, true);
        ledger
    }

    #[test]
    fn terminal_is_counted_once_whatever_the_duplicates() {
        let start = event("d-1", Status::InProgress, MIN);
        let done = event("d-1", Status::Succeeded, 5 * MIN);
        let mut ledger = Ledger::new(2 * MIN);
        assert!(ledger.apply(&start, 0));
        assert!(ledger.apply(&done, 0));
        assert!(!ledger.apply(&done, 0), "a re-delivery is a duplicate");
        ledger.settle(0, true);
        assert!(!ledger.apply(&done, 0));
        ledger.settle(0, true);
        let group = only_group(&ledger);
        assert_eq!(finished(&group, Status::Succeeded), 1);
        assert_eq!(group.stats.durations[&Status::Succeeded].sum_ms, 4 * MIN);
    }

    #[test]
    fn arrival_order_does_not_matter() {
        let stream = vec![
            event("d-1", Status::InProgress, MIN),
            event("d-1", Status::Failed, 3 * MIN),
            api("d-1", Status::Failed, MIN - 1000, 3 * MIN + 500, "user"),
            event("d-2", Status::InProgress, 10 * MIN),
            api("d-2", Status::Succeeded, 10 * MIN, 20 * MIN, "user"),
            event("d-2", Status::Succeeded, 20 * MIN),
        ];
        let forward = only_group(&replayed(&stream));
        let mut reversed = stream.clone();
        reversed.reverse();
        assert_eq!(forward, only_group(&replayed(&reversed)));
        assert_eq!(forward.stats.time_to_restore.sum_ms, 20 * MIN - (3 * MIN + 500));
    }

    #[test]
    fn status_never_moves_backwards() {
        let mut ledger = Ledger::new(2 * MIN);
        ledger.apply(&event("d-1", Status::Succeeded, 5 * MIN), 0);
        ledger.apply(&event("d-1", Status::InProgress, MIN), 0);
        let snapshot = ledger.snapshot(0);
        assert_eq!(snapshot.groups[0].in_progress, 0);
        ledger.settle(0, true);
        assert_eq!(finished(&only_group(&ledger), Status::Succeeded), 1);
    }

    #[test]
    fn api_times_win_over_event_times_and_api_output_joins_its_event() {
        let ledger = replayed(&[
            event("d-1", Status::InProgress, 2 * MIN),
            event("d-1", Status::Succeeded, 9 * MIN),
            api("d-1", Status::Succeeded, MIN, 10 * MIN, "CodeDeploy"),
        ]);
        let group = only_group(&ledger);
        assert_eq!(group.key.account_id, "111111111111", "the API record joined the identified one");
        assert_eq!(group.stats.durations[&Status::Succeeded].sum_ms, 9 * MIN);
        let kinds: Vec<&str> = group.stats.deployments.keys().map(|(k, _)| k.creator.as_str()).collect();
        assert!(kinds.iter().all(|c| *c == "CodeDeploy"), "{kinds:?}");
        assert_eq!(ledger.deployments_tracked(), 1);
    }

    #[test]
    fn without_a_start_no_duration_is_observed_but_the_deployment_counts() {
        let group = only_group(&replayed(&[event("d-1", Status::Stopped, MIN)]));
        assert_eq!(finished(&group, Status::Stopped), 1);
        assert_eq!(group.stats.durations[&Status::Stopped].count, 0);
    }

    #[test]
    fn clock_skew_is_clamped_and_counted() {
        let ledger = replayed(&[
            event("d-1", Status::InProgress, MIN),
            api("d-1", Status::Succeeded, 10 * MIN, 9 * MIN, "user"),
        ]);
        let snapshot = ledger.snapshot(0);
        assert_eq!(snapshot.data_quality.get(&QualityIssue::NegativeDuration), Some(&1));
        let durations = &snapshot.groups[0].stats.durations[&Status::Succeeded];
        assert_eq!((durations.count, durations.sum_ms), (1, 0));
    }

    #[test]
    fn rollbacks_link_to_what_they_undo() {
        let mut rollback = api("d-2", Status::Succeeded, 6 * MIN, 8 * MIN, "codeDeployRollback");
        rollback.rollback_of = Some("d-1".into());
        let ledger = replayed(&[
            event("d-1", Status::InProgress, MIN),
            event("d-1", Status::Failed, 5 * MIN),
            event("d-2", Status::InProgress, 6 * MIN),
            rollback,
            event("d-2", Status::Succeeded, 8 * MIN),
        ]);
        let group = only_group(&ledger);
        assert_eq!(group.stats.rollbacks[&(Status::Succeeded, RollbackCause::Failure)], 1);
        assert_eq!(group.stats.rollback_durations.sum_ms, 3 * MIN);
        assert_eq!(group.stats.change_failures, 1, "the rollback itself is not a change");
        // The rollback's success restores service.
        assert_eq!(group.stats.time_to_restore.sum_ms, 3 * MIN);
        let window = &group.windows[2];
        assert_eq!(window.deployments, 1);
        assert_eq!(window.rollback_ratio, 1.0);
        assert_eq!(window.change_failure_ratio, 1.0);
        assert_eq!(window.success_ratio, 0.5);
    }

    #[test]
    fn a_rollback_learned_late_makes_a_settled_success_a_change_failure() {
        let mut ledger = Ledger::new(2 * MIN);
        ledger.apply(&api("d-1", Status::Succeeded, MIN, 2 * MIN, "user"), 0);
        ledger.apply(&event("d-1", Status::Succeeded, 2 * MIN), 0);
        assert_eq!(ledger.settle(0, false), 1, "complete API details settle at once");
        let mut rollback = event("d-2", Status::Succeeded, 4 * MIN);
        rollback.rollback_of = Some("d-1".into());
        ledger.apply(&rollback, 0);
        ledger.settle(3 * MIN, false);
        let group = only_group(&ledger);
        assert_eq!(group.stats.change_failures, 1);
        assert_eq!(group.stats.rollbacks[&(Status::Succeeded, RollbackCause::Unknown)], 1);
    }

    #[test]
    fn a_rollback_counted_before_the_failure_it_undid_still_gives_both_recovery_and_rollback_time() {
        // As at start-up with SQS and the poller: the rollback's final API
        // details (found by polling) settle it at once; the failure's events
        // come later.
        let mut ledger = Ledger::new(2 * MIN);
        let mut rollback = polled("d-2", Status::Succeeded, 6 * MIN, 8 * MIN);
        rollback.creator = Some("codeDeployRollback".into());
        rollback.rollback_of = Some("d-1".into());
        ledger.apply(&rollback, 0);
        assert_eq!(ledger.settle(0, false), 1, "complete API details settle at once");
        ledger.apply(&event("d-1", Status::InProgress, MIN), MIN);
        ledger.apply(&event("d-1", Status::Failed, 5 * MIN), MIN);
        ledger.settle(3 * MIN, false);
        ledger.settle(10 * MIN, false);
        let live = only_group(&ledger);
        assert_eq!(live.stats.time_to_restore.count, 1);
        assert_eq!(live.stats.time_to_restore.sum_ms, 3 * MIN);
        assert_eq!(live.stats.rollback_durations.count, 1);
        assert_eq!(live.stats.rollback_durations.sum_ms, 3 * MIN);
        assert_eq!(live.stats.change_failures, 1);
        assert!(ledger.snapshot(0).data_quality.is_empty());
    }

    #[test]
    fn rollback_links_carry_the_location_to_api_output_either_way() {
        // The rollback is known only from API output (no account, no region).
        let mut rollback = api("d-2", Status::Succeeded, 6 * MIN, 8 * MIN, "codeDeployRollback");
        rollback.rollback_of = Some("d-1".into());
        let failure = [event("d-1", Status::InProgress, MIN), event("d-1", Status::Failed, 5 * MIN)];
        for stream in [vec![failure[0].clone(), failure[1].clone(), rollback.clone()], vec![rollback.clone(), failure[1].clone(), failure[0].clone()]] {
            let group = only_group(&replayed(&stream));
            assert_eq!(group.key.account_id, "111111111111");
            assert_eq!(group.stats.rollback_durations.sum_ms, 3 * MIN);
            assert_eq!(group.stats.time_to_restore.sum_ms, 3 * MIN);
        }
        // The failure is known only from API output; the rollback's event names it.
        let mut failed = api("d-1", Status::Failed, MIN, 5 * MIN, "user");
        failed.rolled_back_by = Some("d-2".into());
        let mut located_rollback = event("d-2", Status::Succeeded, 8 * MIN);
        located_rollback.rollback_of = Some("d-1".into());
        let group = only_group(&replayed(&[located_rollback, failed]));
        assert_eq!(group.key.account_id, "111111111111");
        assert_eq!(group.stats.change_failures, 1);
        assert_eq!(group.stats.rollback_durations.sum_ms, 3 * MIN);
    }

    /// A deployment CloudWatch alarms stopped, as the API reports it.
    fn alarm_stopped(id: &str, created: Millis, completed: Millis, alarms: &[&str]) -> Observation {
        let mut o = api(id, Status::Stopped, created, completed, "user");
        o.error_code = Some("ALARM_ACTIVE".into());
        o.activated_alarms = alarms.iter().map(|a| CompactString::from(*a)).collect();
        o
    }

    fn rollback_of(id: &str, undone: &str, created: Millis, completed: Millis) -> Observation {
        let mut o = api(id, Status::Succeeded, created, completed, "codeDeployRollback");
        o.rollback_of = Some(undone.into());
        o
    }

    fn rollbacks(group: &GroupSnapshot) -> Vec<(Status, RollbackCause, u64)> {
        group.stats.rollbacks.iter().filter(|(_, n)| **n > 0).map(|((s, c), n)| (*s, *c, *n)).collect()
    }

    #[test]
    fn a_rollback_counts_why_what_it_undid_ended_in_any_order() {
        let mut manual = api("d-3", Status::Stopped, 20 * MIN, 21 * MIN, "user");
        manual.error_code = Some("MANUAL_STOP".into());
        let stream = vec![
            event("d-1", Status::Stopped, 5 * MIN),
            alarm_stopped("d-1", MIN, 5 * MIN, &["p99-latency", "5xx"]),
            rollback_of("d-2", "d-1", 6 * MIN, 8 * MIN),
            event("d-3", Status::Stopped, 21 * MIN),
            manual,
            rollback_of("d-4", "d-3", 22 * MIN, 24 * MIN),
            event("d-5", Status::Failed, 30 * MIN),
            rollback_of("d-6", "d-5", 31 * MIN, 33 * MIN),
            // What it undid is nowhere in the input.
            event("d-8", Status::Succeeded, 42 * MIN),
            rollback_of("d-8", "d-7", 40 * MIN, 42 * MIN),
            // Stopped, and no message says why.
            event("d-9", Status::Stopped, 50 * MIN),
            rollback_of("d-10", "d-9", 51 * MIN, 53 * MIN),
        ];
        let forward = only_group(&replayed(&stream));
        let mut reversed = stream.clone();
        reversed.reverse();
        assert_eq!(forward, only_group(&replayed(&reversed)));
        assert_eq!(
            rollbacks(&forward),
            vec![
                (Status::Succeeded, RollbackCause::Failure, 1),
                (Status::Succeeded, RollbackCause::Alarm, 1),
                (Status::Succeeded, RollbackCause::Manual, 1),
                (Status::Succeeded, RollbackCause::Unknown, 2),
            ]
        );
        assert_eq!(forward.stats.rollback_durations.count, 4, "d-8 undid nothing seen: no time to rollback");
        let alarms: Vec<(&str, u64)> = forward.stats.alarm_stops.iter().map(|(a, n)| (a.as_str(), *n)).collect();
        assert_eq!(alarms, [("5xx", 1), ("p99-latency", 1)]);
    }

    #[test]
    fn a_rollback_counted_first_waits_for_what_it_undid_or_gives_up_as_unknown() {
        let mut ledger = Ledger::new(2 * MIN);
        let mut rollback = rollback_of("d-2", "d-1", 6 * MIN, 8 * MIN);
        rollback.deployment = at("111111111111", "d-2");
        ledger.apply(&rollback, 0);
        assert_eq!(ledger.settle(0, false), 1, "complete API details settle at once");
        assert!(rollbacks(&only_group(&ledger)).is_empty(), "not counted before its cause is known");
        let mut undone = alarm_stopped("d-1", MIN, 5 * MIN, &[]);
        undone.deployment = at("111111111111", "d-1");
        ledger.apply(&undone, MIN);
        ledger.settle(MIN, false);
        let group = only_group(&ledger);
        assert_eq!(rollbacks(&group), vec![(Status::Succeeded, RollbackCause::Alarm, 1)]);
        assert_eq!(group.stats.rollback_durations.sum_ms, 3 * MIN);
        assert_eq!(group.stats.alarm_stops.get("unknown"), Some(&1), "the stop named no alarm");

        // Another rollback of a deployment never seen: unknown after twice the settle time.
        let mut orphan = rollback_of("d-4", "d-3", 20 * MIN, 22 * MIN);
        orphan.deployment = at("111111111111", "d-4");
        ledger.apply(&orphan, 10 * MIN);
        ledger.settle(10 * MIN, false);
        ledger.settle(13 * MIN, false);
        assert_eq!(rollbacks(&only_group(&ledger)).len(), 1, "still waiting");
        ledger.settle(14 * MIN, false);
        let causes = rollbacks(&only_group(&ledger));
        assert_eq!(causes, vec![(Status::Succeeded, RollbackCause::Alarm, 1), (Status::Succeeded, RollbackCause::Unknown, 1)]);
    }

    #[test]
    fn custom_configs_and_alarms_past_a_groups_allowance_are_other() {
        let mut stream = Vec::new();
        for i in 0..11 {
            let mut o = alarm_stopped(&format!("d-{i}"), i * MIN, i * MIN + 30_000, &[&format!("alarm-{i}a"), &format!("alarm-{i}b")]);
            o.deployment_config = Some(if i % 2 == 0 { "CodeDeployDefault.HalfAtATime".into() } else { format!("Custom{i}").into() });
            stream.push(o);
        }
        let mut long = alarm_stopped("d-long", 20 * MIN, 21 * MIN, &[&"x".repeat(limits::MAX_LABEL_CHARS + 1)]);
        long.deployment_config = Some("Custom1".into());
        stream.push(long);
        let ledger = replayed(&stream);
        let group = only_group(&ledger);
        let configs: BTreeSet<&str> = group.stats.deployments.keys().map(|(k, _)| k.deployment_config.as_str()).collect();
        let expected = ["CodeDeployDefault.HalfAtATime", "Custom1", "Custom3", "Custom5", "Custom7", limits::OTHER];
        assert_eq!(configs, BTreeSet::from(expected), "four custom ones fit, in completion order");
        let named = group.stats.alarm_stops.keys().filter(|a| a.as_str() != limits::OTHER).count();
        assert_eq!(named, limits::ALARMS_PER_GROUP);
        assert_eq!(group.stats.alarm_stops[limits::OTHER], 12 + 1, "the alarms of the last six stops and the long name");
        let limited = &ledger.snapshot(0).limited;
        assert_eq!(limited.get(&Limit::Alarm), Some(&13));
        assert_eq!(limited.get(&Limit::DeploymentConfig), Some(&1), "Custom9");
    }

    #[test]
    fn a_link_to_deployments_in_two_locations_places_nothing() {
        let mut rollback = api("d-2", Status::Succeeded, 6 * MIN, 8 * MIN, "codeDeployRollback");
        rollback.rollback_of = Some("d-1".into());
        let mut elsewhere = event("d-1", Status::Failed, 5 * MIN);
        elsewhere.deployment.account = Some("222222222222".into());
        let ledger = replayed(&[event("d-1", Status::Failed, 5 * MIN), elsewhere, rollback]);
        let unlocated = ledger.snapshot(0).groups.into_iter().filter(|g| g.key.account_id.is_empty()).count();
        assert_eq!(unlocated, 1, "the rollback stands alone");
    }

    #[test]
    fn scaling_deployments_are_not_changes() {
        let group = only_group(&replayed(&[
            api("d-1", Status::Failed, MIN, 2 * MIN, "autoscaling"),
            api("d-2", Status::Succeeded, 3 * MIN, 4 * MIN, "user"),
        ]));
        assert_eq!(group.stats.change_failures, 0);
        assert_eq!(group.windows[2].deployments, 1);
        assert_eq!(group.stats.time_to_restore.count, 0);
    }

    #[test]
    fn settling_waits_for_late_details_unless_the_api_has_given_them() {
        let mut ledger = Ledger::new(2 * MIN);
        ledger.apply(&event("d-1", Status::Succeeded, MIN), 10 * MIN);
        assert_eq!(ledger.settle(11 * MIN, false), 0, "still inside the settle time");
        // A late START still lands before counting, so the duration is known.
        ledger.apply(&event("d-1", Status::InProgress, 0), 11 * MIN);
        assert_eq!(ledger.settle(12 * MIN, false), 1);
        assert_eq!(only_group(&ledger).stats.durations[&Status::Succeeded].sum_ms, MIN);

        // As the poller sees it: API output with the account and region it polled.
        let mut api_complete = api("d-2", Status::Failed, MIN, 2 * MIN, "user");
        api_complete.deployment = at("111111111111", "d-2");
        api_complete.overview = Some(Overview { failed: 1, ..Overview::default() });
        let mut target = Observation::new(at("111111111111", "d-2"), Provenance::Api);
        target.targets.push(crate::domain::TargetObservation {
            target_id: "i-1".into(),
            status: Some(TargetStatus::Failed),
            lifecycle_events: vec![],
        });
        ledger.apply(&api_complete, 20 * MIN);
        assert_eq!(ledger.settle(20 * MIN, false), 0, "the overview promises a target not seen yet");
        ledger.apply(&target, 20 * MIN);
        assert_eq!(ledger.settle(20 * MIN, false), 1);

        // Without account and region even complete details wait: the record
        // they belong to may still arrive, and counting now would count twice.
        ledger.apply(&api("d-3", Status::Succeeded, MIN, 2 * MIN, "user"), 30 * MIN);
        assert_eq!(ledger.settle(30 * MIN, false), 0);
        ledger.apply(&event("d-3", Status::Succeeded, 2 * MIN), 31 * MIN);
        assert_eq!(ledger.settle(31 * MIN, false), 1, "adopted, then complete");
        assert_eq!(ledger.deployments_tracked(), 3);
    }

    /// As the poller sees it: API output that knows its account and region.
    fn polled(id: &str, status: Status, created: Millis, completed: Millis) -> Observation {
        let mut o = api(id, status, created, completed, "user");
        o.deployment = at("111111111111", id);
        o
    }

    #[test]
    fn a_later_deployment_waits_for_the_late_end_of_an_earlier_one() {
        let mut ledger = Ledger::new(2 * MIN);
        // d-1 started; its FAILURE event is late. d-2 ran after it and the API
        // has given all of d-2's details.
        ledger.apply(&event("d-1", Status::InProgress, MIN), 0);
        ledger.apply(&polled("d-2", Status::Succeeded, 10 * MIN, 20 * MIN), 0);
        assert_eq!(ledger.settle(0, false), 0, "d-2 waits: d-1 is still open in its group");
        ledger.apply(&event("d-1", Status::Failed, 5 * MIN), MIN);
        assert_eq!(ledger.settle(2 * MIN, false), 0, "d-1 is not due yet, so d-2 still waits");
        assert_eq!(ledger.settle(3 * MIN, false), 2, "both settle, in completion order");
        // d-2 has been terminal for longer than the settle time: its recovery is final at once.
        let group = only_group(&ledger);
        assert_eq!(group.stats.time_to_restore.sum_ms, 15 * MIN);
    }

    #[test]
    fn an_abandoned_deployment_holds_its_group_back_for_twice_the_settle_time_at_most() {
        let mut ledger = Ledger::new(2 * MIN);
        ledger.apply(&event("d-1", Status::InProgress, MIN), 0);
        ledger.apply(&event("d-2", Status::InProgress, 10 * MIN), 0);
        ledger.apply(&event("d-2", Status::Succeeded, 20 * MIN), 0);
        assert_eq!(ledger.settle(3 * MIN, false), 0);
        assert_eq!(ledger.settle(4 * MIN, false), 1);
        assert_eq!(only_group(&ledger).in_progress, 1, "d-1 is still in progress");
    }

    #[test]
    fn targets_seen_only_in_instance_events_do_not_complete_the_details() {
        let mut ledger = Ledger::new(2 * MIN);
        let mut instance = event("d-1", Status::InProgress, MIN);
        instance.status = None;
        instance.is_state_change = false;
        instance.targets.push(crate::domain::TargetObservation {
            target_id: "i-1".into(),
            status: Some(TargetStatus::Succeeded),
            lifecycle_events: vec![],
        });
        let mut done = polled("d-1", Status::Succeeded, MIN, 2 * MIN);
        done.overview = Some(Overview { succeeded: 1, ..Overview::default() });
        ledger.apply(&instance, 0);
        ledger.apply(&done, 0);
        assert_eq!(ledger.settle(0, false), 0, "the API has not described the target's hooks yet");
    }

    #[test]
    fn ambiguous_partial_records_stand_alone() {
        let mut other_account = event("d-1", Status::InProgress, MIN);
        other_account.deployment.account = Some("222222222222".into());
        let ledger = replayed(&[
            event("d-1", Status::InProgress, MIN),
            other_account,
            api("d-1", Status::Succeeded, MIN, 2 * MIN, "user"),
        ]);
        assert_eq!(ledger.deployments_tracked(), 3);
    }

    #[test]
    fn in_progress_deployments_show_their_targets_and_age() {
        let mut running = api("d-1", Status::InProgress, 5 * MIN, 0, "user");
        running.complete_time = None;
        running.deployment = at("111111111111", "d-1");
        running.overview = Some(Overview { succeeded: 2, in_progress: 1, pending: 3, ..Overview::default() });
        let mut ledger = Ledger::new(2 * MIN);
        ledger.apply(&running, 0);
        let group = only_group(&ledger);
        assert_eq!(group.in_progress, 1);
        assert_eq!(group.oldest_in_progress_start, Some(5 * MIN));
        assert_eq!(group.targets_in_progress[&TargetStatus::Pending], 3);
        assert_eq!(finished(&group, Status::Succeeded), 0, "known kinds start at zero");
        assert_eq!(group.stats.deployments.len(), 3);
    }
}
