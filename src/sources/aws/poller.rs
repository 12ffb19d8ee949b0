//! The CodeDeploy API poller: enrichment, reconciliation and backfill, one
//! [`ScopePoller`] per account and region.
//!
//! - **Backfill**: the first poll lists every deployment created within
//!   `--poll.lookback`, fetches those the ledger does not already hold with
//!   their final details, and submits them in one batch sorted by completion,
//!   so that recovery runs and the rolling windows are right from the first
//!   scrape. Progress goes to the logs.
//! - **Reconciliation**: each interval, one ListDeployments call with a
//!   `createTimeRange` starting at the previous call's time minus an overlap
//!   finds deployments no event announced; deployments not yet finished are
//!   re-fetched every interval until terminal.
//! - **Enrichment**: event sources ask for the deployments they saw
//!   ([`Enricher::request`]); requests are coalesced into BatchGetDeployments
//!   calls of at most 25 ids. Asking never waits: a source acknowledges its
//!   message once the message is committed, whatever the poller is busy with.
//! - **Retries**: the ids of a BatchGetDeployments call that failed beyond
//!   the SDK's own retries (or whose results could not be committed) are kept
//!   and fetched again with backoff; the watermark has moved on, so nothing
//!   else would fetch them. `codedeploy_exporter_poller_pending_deployments`
//!   shows how many wait. The set is not persisted: after a restart, the
//!   backfill lists the whole lookback again and fetches every deployment
//!   whose API details the ledger lacks, which covers it.
//!
//! A deployment once fetched in a terminal state, with its targets
//! (ListDeploymentTargets + BatchGetDeploymentTargets), is never fetched again:
//! the scope remembers it, and after a restart the ledger does.
//!
//! SDK output is turned into the API's JSON shape and decoded by
//! [`crate::decode`], so the poller yields exactly the observations that the
//! same API output read from a file would.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use aws_sdk_codedeploy::primitives::DateTime;
use aws_sdk_codedeploy::types as cd;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::sources::aws::{error_text, retry_later, Backfills, Health, Retry, Scope};
use crate::decode::{self, Decoded};
use crate::domain::{DeploymentRef, Millis, Observation, Status};
use crate::ingest::{now_ms, IngestHandle, SharedExporter};
use crate::ledger::QualityIssue;
use crate::metrics::Source;

/// Most ids per BatchGetDeployments / BatchGetDeploymentTargets call.
pub const BATCH_LIMIT: usize = 25;
/// How long requests for finished deployments are gathered before one batch call.
const COALESCE: Duration = Duration::from_secs(1);
/// Longest wait before a failed fetch is tried again; the wait doubles from
/// one interval with each failure, so sustained throttling costs little.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10 * 60);

/// What the poller reads from CodeDeploy, as observations without account or
/// region (the scope adds its own). The SDK implements it; tests may fake it.
pub trait DeploymentsApi: Send + Sync {
    /// Ids of the deployments created at or after `created_after`, every page.
    fn list_deployments(&self, created_after: Millis) -> impl Future<Output = Result<Vec<String>, String>> + Send;
    /// BatchGetDeployments of at most [`BATCH_LIMIT`] ids.
    fn get_deployments(&self, ids: &[String]) -> impl Future<Output = Result<Vec<Observation>, String>> + Send;
    /// Every target of one deployment with its lifecycle events.
    fn get_targets(&self, deployment_id: &str) -> impl Future<Output = Result<Vec<Observation>, String>> + Send;
}

/// Tuning shared by every scope.
#[derive(Debug, Clone)]
pub struct PollerOptions {
    pub interval: Duration,
    pub lookback_ms: Millis,
    pub overlap_ms: Millis,
    /// Poll only these applications (empty: all).
    pub applications: BTreeSet<String>,
    /// An event source (SQS, webhook) is configured, so a deployment that only
    /// the poller saw finish is a missed event.
    pub events_expected: bool,
    /// How long after a deployment is seen finished an event may still arrive.
    pub grace_ms: Millis,
    /// Deployments created before this are history, not missed events.
    pub started_at: Millis,
}

/// Where the poller's findings go.
#[derive(Debug, Clone)]
pub struct Sink {
    pub ingest: IngestHandle,
    pub exporter: SharedExporter,
}

/// What event sources want one scope to fetch: deployment id → whether an
/// event said it finished. A set, not a queue: asking never blocks however
/// long the scope is busy (a backfill), and repeated events ask once.
#[derive(Debug, Default)]
pub struct Wanted {
    ids: Mutex<BTreeMap<String, bool>>,
    notify: Notify,
}

impl Wanted {
    fn insert(&self, deployment_id: &str, terminal: bool) {
        let mut ids = self.ids.lock().unwrap_or_else(|p| p.into_inner());
        *ids.entry(deployment_id.to_owned()).or_insert(false) |= terminal;
        drop(ids);
        self.notify.notify_one();
    }

    /// Everything asked for since the last take.
    pub fn take(&self) -> BTreeMap<String, bool> {
        std::mem::take(&mut *self.ids.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Waits until something is wanted.
    pub async fn changed(&self) {
        self.notify.notified().await;
    }
}

/// (account, region) → what the scope polling it is asked to fetch.
type Routes = HashMap<(String, String), Arc<Wanted>>;

/// Routes enrichment requests to the scope polling the deployment's account and region.
#[derive(Debug, Clone, Default)]
pub struct Enricher {
    routes: Arc<RwLock<Routes>>,
}

impl Enricher {
    /// The requests for `account` and `region`, for the scope that polls them.
    pub fn add_route(&self, account: &str, region: &str) -> Arc<Wanted> {
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        routes.entry((account.to_owned(), region.to_owned())).or_default().clone()
    }

    /// Asks for `deployment_id` to be fetched, without waiting for it; false
    /// when no scope polls that account and region.
    pub fn request(&self, account: &str, region: &str, deployment_id: &str, terminal: bool) -> bool {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        match routes.get(&(account.to_owned(), region.to_owned())) {
            Some(wanted) => {
                wanted.insert(deployment_id, terminal);
                true
            }
            None => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not finished: re-fetched every interval.
    Watching,
    /// Finished, but its targets could not be read yet.
    TargetsPending,
    /// Finished and fetched with its targets, or outside `--poll.applications`.
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Known {
    created: Millis,
    state: State,
}

/// Ids in the order first asked for, each once.
#[derive(Debug, Default)]
struct IdList {
    ids: Vec<String>,
    seen: BTreeSet<String>,
}

impl IdList {
    fn push(&mut self, id: String) {
        if self.seen.insert(id.clone()) {
            self.ids.push(id);
        }
    }
}

/// Calls made by one refresh, for the logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fetched {
    pub deployments: usize,
    pub finished: usize,
}

/// One account in one region.
#[derive(Debug)]
pub struct ScopePoller {
    pub account: String,
    pub region: String,
    options: PollerOptions,
    /// Start of the previous ListDeployments call; `None` before the backfill.
    watermark: Option<Millis>,
    known: BTreeMap<String, Known>,
    /// Requested by event sources, fetched at the next flush.
    pending: BTreeSet<String>,
    /// Failed fetches waiting for their retry.
    retry: BTreeMap<String, Retry>,
    /// Deployments seen finished by the poller, to check for an event once
    /// the grace time has passed.
    checks: Vec<(String, Millis)>,
}

impl ScopePoller {
    pub fn new(account: &str, region: &str, options: PollerOptions) -> ScopePoller {
        ScopePoller {
            account: account.to_owned(),
            region: region.to_owned(),
            options,
            watermark: None,
            known: BTreeMap::new(),
            pending: BTreeSet::new(),
            retry: BTreeMap::new(),
            checks: Vec::new(),
        }
    }

    fn reference(&self, deployment_id: &str) -> DeploymentRef {
        DeploymentRef {
            account: Some(self.account.as_str().into()),
            region: Some(self.region.as_str().into()),
            deployment_id: deployment_id.into(),
        }
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Deployments whose fetch failed and waits for a retry.
    pub fn retry_len(&self) -> usize {
        self.retry.len()
    }

    /// The first backfill is over: its listing worked, every deployment it
    /// listed was fetched, and every finished one with its targets. Until
    /// then, history is still arriving.
    pub fn backfilled(&self) -> bool {
        self.watermark.is_some()
            && self.retry.is_empty()
            && !self.known.values().any(|k| k.state == State::TargetsPending)
    }

    /// Takes a request: nothing to do when the deployment is fetched for good
    /// already; a deployment an event says is under way joins the ones
    /// re-fetched each interval (all in one batch call); one an event says
    /// finished is fetched at the next flush (within [`COALESCE`]).
    pub fn request(&mut self, deployment_id: String, terminal: bool, sink: &Sink, now: Millis) {
        let state = self.known.get(&deployment_id).map(|k| k.state);
        let nothing_to_do = match state {
            Some(State::Done) => true,
            Some(State::Watching) => !terminal,
            _ => sink.exporter.lock().api_details_complete(&self.reference(&deployment_id)),
        };
        if nothing_to_do {
            return;
        }
        if terminal {
            self.pending.insert(deployment_id);
        } else {
            self.known.entry(deployment_id).or_insert(Known { created: now, state: State::Watching });
        }
    }

    /// One interval: ListDeployments (the backfill the first time), then the
    /// new, unfinished and requested deployments.
    pub async fn poll(&mut self, api: &impl DeploymentsApi, sink: &Sink, now: Millis) -> Result<Fetched, String> {
        self.run_checks(sink, now);
        let backfill = self.watermark.is_none();
        let from = match self.watermark {
            None => now - self.options.lookback_ms,
            Some(previous) => previous - self.options.overlap_ms,
        };
        if backfill {
            tracing::info!(account = %self.account, region = %self.region, lookback_days = self.options.lookback_ms / 86_400_000,
                "backfill: listing deployments");
        }
        let listed = api.list_deployments(from).await?;
        self.watermark = Some(now);
        let mut wanted = IdList::default();
        for id in listed {
            if !self.known.contains_key(&id) {
                wanted.push(id);
            }
        }
        if backfill {
            tracing::info!(account = %self.account, region = %self.region, deployments = wanted.ids.len(), "backfill: fetching");
        }
        for (id, known) in &self.known {
            if known.state == State::Watching {
                wanted.push(id.clone());
            }
        }
        for (id, retry) in &self.retry {
            if retry.due <= now {
                wanted.push(id.clone());
            }
        }
        let requested = std::mem::take(&mut self.pending);
        for id in &requested {
            wanted.push(id.clone());
        }
        let fetched = self.refresh(api, sink, wanted.ids, &requested, now, backfill).await;
        self.forget(now);
        if backfill {
            tracing::info!(account = %self.account, region = %self.region, fetched = fetched.deployments,
                finished = fetched.finished, unfinished = self.watching(), "backfill: done");
        }
        Ok(fetched)
    }

    /// Fetches what the queued requests ask for.
    pub async fn flush(&mut self, api: &impl DeploymentsApi, sink: &Sink, now: Millis) -> Fetched {
        let requested = std::mem::take(&mut self.pending);
        let wanted = requested.iter().cloned().collect();
        self.refresh(api, sink, wanted, &requested, now, false).await
    }

    /// Schedules `ids` for another try, each after a delay that doubles with
    /// its failures.
    fn retry_later(&mut self, ids: impl IntoIterator<Item = String>, now: Millis) {
        for id in ids {
            retry_later(&mut self.retry, id, now, self.options.interval, MAX_RETRY_DELAY);
        }
    }

    /// Keeps `codedeploy_exporter_backfill_remaining_deployments` current
    /// during the first backfill: a large one is never silent.
    fn report_backfill(&self, sink: &Sink, backfill: bool, remaining: usize) {
        if backfill {
            let scope = format!("{}/{}", self.account, self.region);
            sink.exporter.update(move |exporter| exporter.set_backfill_remaining(&scope, remaining));
        }
    }

    fn watching(&self) -> usize {
        self.known.values().filter(|k| k.state == State::Watching).count()
    }

    /// Fetches `wanted` (deployments, ≤ 25 a call) and the targets of those
    /// that finished, and submits everything in completion order.
    async fn refresh(
        &mut self,
        api: &impl DeploymentsApi,
        sink: &Sink,
        wanted: Vec<String>,
        requested: &BTreeSet<String>,
        now: Millis,
        backfill: bool,
    ) -> Fetched {
        let mut to_fetch = Vec::new();
        let mut targets_only = Vec::new();
        {
            let exporter = sink.exporter.lock();
            for id in wanted {
                match self.known.get(&id).map(|k| k.state) {
                    Some(State::Done) => {
                        self.retry.remove(&id);
                    }
                    Some(State::TargetsPending) => {
                        self.retry.remove(&id);
                        targets_only.push(id);
                    }
                    _ if exporter.api_details_complete(&self.reference(&id)) => {
                        self.retry.remove(&id);
                        self.known.insert(id, Known { created: now, state: State::Done });
                    }
                    _ => to_fetch.push(id),
                }
            }
        }
        for (id, known) in &self.known {
            if known.state == State::TargetsPending && !targets_only.contains(id) {
                targets_only.push(id.clone());
            }
        }
        let mut fetched = Fetched::default();
        let mut observations: Vec<Observation> = Vec::new();
        let mut finished: Vec<(String, Millis)> = Vec::new();
        let total = to_fetch.len();
        let mut last_progress = std::time::Instant::now();
        // What the backfill still has to read: details not yet fetched, and
        // the targets of the finished deployments found so far.
        let mut unfetched = total;
        let mut targets_unread = targets_only.len();
        self.report_backfill(sink, backfill, unfetched + targets_unread);
        for (n, chunk) in to_fetch.chunks(BATCH_LIMIT).enumerate() {
            unfetched -= chunk.len();
            let infos = match api.get_deployments(chunk).await {
                Ok(infos) => infos,
                Err(error) => {
                    // Shown as pending (the retry set) from now on.
                    self.report_backfill(sink, backfill, unfetched + targets_unread);
                    self.retry_later(chunk.iter().cloned(), now);
                    tracing::warn!(account = %self.account, region = %self.region, %error, deployments = chunk.len(),
                        pending = self.retry.len(), "BatchGetDeployments failed; retried with backoff");
                    continue;
                }
            };
            // Ids the API did not return are unknown to it: nothing to retry.
            for id in chunk {
                self.retry.remove(id);
            }
            for mut info in infos {
                info.deployment.account = Some(self.account.as_str().into());
                info.deployment.region = Some(self.region.as_str().into());
                let id = info.deployment.deployment_id.to_string();
                let created = info.create_time.unwrap_or(now);
                let filtered_out = !self.options.applications.is_empty()
                    && info.application.as_ref().is_some_and(|a| !self.options.applications.contains(a.as_str()));
                // Events of other applications are still enriched.
                if filtered_out && !requested.contains(&id) {
                    self.known.insert(id, Known { created, state: State::Done });
                    continue;
                }
                fetched.deployments += 1;
                let terminal = info.status.is_some_and(Status::is_terminal);
                let state = if terminal {
                    fetched.finished += 1;
                    targets_unread += 1;
                    finished.push((id.clone(), info.complete_time.unwrap_or(Millis::MAX)));
                    if !backfill && self.options.events_expected && created >= self.options.started_at {
                        self.checks.push((id.clone(), now + self.options.grace_ms));
                    }
                    State::TargetsPending
                } else {
                    State::Watching
                };
                self.known.insert(id, Known { created, state });
                observations.push(info);
            }
            self.report_backfill(sink, backfill, unfetched + targets_unread);
            if backfill && (last_progress.elapsed() >= Duration::from_secs(10) || (n + 1) * BATCH_LIMIT >= total) {
                last_progress = std::time::Instant::now();
                tracing::info!(account = %self.account, region = %self.region,
                    done = ((n + 1) * BATCH_LIMIT).min(total), total, "backfill: deployments fetched");
            }
        }
        let target_ids: Vec<String> =
            targets_only.into_iter().chain(finished.iter().map(|(id, _)| id.clone())).collect();
        let target_total = target_ids.len();
        for (n, id) in target_ids.into_iter().enumerate() {
            targets_unread -= 1;
            let targets = api.get_targets(&id).await;
            self.report_backfill(sink, backfill, targets_unread);
            match targets {
                Ok(targets) => {
                    for mut target in targets {
                        target.deployment.account = Some(self.account.as_str().into());
                        target.deployment.region = Some(self.region.as_str().into());
                        observations.push(target);
                    }
                    if let Some(known) = self.known.get_mut(&id) {
                        known.state = State::Done;
                    }
                }
                Err(error) => {
                    tracing::warn!(account = %self.account, region = %self.region, deployment_id = %id, %error,
                        "reading the targets failed; retried next interval");
                }
            }
            if backfill && (last_progress.elapsed() >= Duration::from_secs(10) || n + 1 == target_total) {
                last_progress = std::time::Instant::now();
                tracing::info!(account = %self.account, region = %self.region, done = n + 1, total = target_total,
                    "backfill: targets of finished deployments fetched");
            }
        }
        if observations.is_empty() {
            return fetched;
        }
        // Completion order, each deployment's targets right after it, so
        // settling (immediate for complete API details) sees recoveries in order.
        let completion: HashMap<&str, Millis> = finished.iter().map(|(id, at)| (id.as_str(), *at)).collect();
        let order = |o: &Observation| completion.get(o.deployment.deployment_id.as_str()).copied().unwrap_or(Millis::MAX);
        observations.sort_by_key(|o| (order(o), o.deployment.deployment_id.clone(), !o.targets.is_empty()));
        let ids: BTreeSet<String> = observations.iter().map(|o| o.deployment.deployment_id.to_string()).collect();
        if let Err(error) = sink.ingest.submit_observations(Source::Poller, observations).await {
            tracing::warn!(account = %self.account, region = %self.region, %error, "API data not committed; fetched again with backoff");
            for id in &ids {
                self.known.remove(id);
            }
            self.retry_later(ids, now);
        }
        fetched
    }

    /// Counts the deployments this scope saw finish that no event announced.
    fn run_checks(&mut self, sink: &Sink, now: Millis) {
        if self.checks.iter().all(|(_, due)| *due > now) {
            return;
        }
        let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.checks).into_iter().partition(|(_, due)| *due <= now);
        self.checks = later;
        let mut exporter = sink.exporter.lock();
        for (id, _) in due {
            if !exporter.announced_by_event(&self.reference(&id)) {
                tracing::info!(account = %self.account, region = %self.region, deployment_id = %id,
                    "deployment found only by polling: no event announced it");
                exporter.note_quality_issue(QualityIssue::FoundOnlyByPolling);
            }
        }
    }

    /// Drops what ListDeployments can no longer return, and deployments
    /// unfinished for longer than the lookback (abandoned).
    fn forget(&mut self, now: Millis) {
        let interval_ms = self.options.interval.as_millis() as Millis;
        let listable_from = now - interval_ms - 2 * self.options.overlap_ms;
        let abandoned_before = now - self.options.lookback_ms;
        self.known.retain(|_, k| match k.state {
            State::Done => k.created >= listable_from,
            State::Watching | State::TargetsPending => k.created >= abandoned_before,
        });
    }
}

/// Runs one scope until `shutdown`: a poll every interval, coalesced fetches
/// for event requests in between. Tells `backfills` once its first backfill
/// is over, and keeps `codedeploy_exporter_poller_pending_deployments` current.
pub async fn run_scope(
    mut poller: ScopePoller,
    api: impl DeploymentsApi,
    sink: Sink,
    wanted: Arc<Wanted>,
    health: Arc<Health>,
    backfills: Arc<Backfills>,
    shutdown: CancellationToken,
) {
    let part = format!("{}/{}", poller.account, poller.region);
    let report_pending = |poller: &ScopePoller| {
        let (part, pending) = (part.clone(), poller.retry_len());
        sink.exporter.update(move |exporter| exporter.set_poller_pending(&part, pending));
    };
    report_pending(&poller);
    let mut backfilled = false;
    let mut ticks = tokio::time::interval(poller.options.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut deadline: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                deadline = None;
                let polled = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    polled = poller.poll(&api, &sink, now_ms()) => polled,
                };
                report_pending(&poller);
                match polled {
                    Ok(fetched) => {
                        tracing::debug!(scope = %part, ?fetched, "polled");
                        health.report(&part, true);
                        if !backfilled && poller.backfilled() {
                            backfilled = true;
                            tracing::info!(scope = %part, "backfill complete: all history is in the ledger");
                            backfills.scope_done();
                        }
                    }
                    Err(error) => {
                        tracing::warn!(scope = %part, %error, "ListDeployments failed");
                        health.report(&part, false);
                        // Requests still get their fetch without waiting an interval.
                        if poller.has_pending() {
                            deadline = Some(Instant::now());
                        }
                    }
                }
            }
            _ = wanted.changed() => {
                for (id, terminal) in wanted.take() {
                    poller.request(id, terminal, &sink, now_ms());
                }
                if poller.pending_len() >= BATCH_LIMIT {
                    deadline = Some(Instant::now());
                } else if poller.has_pending() && deadline.is_none() {
                    deadline = Some(Instant::now() + COALESCE);
                }
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                deadline = None;
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    fetched = poller.flush(&api, &sink, now_ms()) => tracing::debug!(scope = %part, ?fetched, "enriched"),
                }
                report_pending(&poller);
            }
        }
    }
}

/// [`DeploymentsApi`] over the SDK, within the scope's rate limit.
#[derive(Debug, Clone)]
pub struct SdkApi {
    pub scope: Scope,
}

impl DeploymentsApi for SdkApi {
    async fn list_deployments(&self, created_after: Millis) -> Result<Vec<String>, String> {
        let range = cd::TimeRange::builder().start(DateTime::from_millis(created_after)).build();
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        // A backfill of a busy account lists thousands of pages at the rate
        // limit: say how far it has got rather than stay silent for minutes.
        let mut last_progress = Instant::now();
        loop {
            if last_progress.elapsed() >= Duration::from_secs(10) {
                last_progress = Instant::now();
                tracing::info!(account = %self.scope.account, region = %self.scope.region, listed = ids.len(),
                    "listing deployments: more pages to come");
            }
            self.scope.limit.acquire().await;
            let page = self
                .scope
                .codedeploy
                .list_deployments()
                .create_time_range(range.clone())
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            ids.extend(page.deployments.unwrap_or_default());
            // Some implementations answer an empty token on the last page.
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(ids),
            }
        }
    }

    async fn get_deployments(&self, ids: &[String]) -> Result<Vec<Observation>, String> {
        self.scope.limit.acquire().await;
        let output = self
            .scope
            .codedeploy
            .batch_get_deployments()
            .set_deployment_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| error_text(&e))?;
        let mut observations = Vec::new();
        for info in output.deployments_info.unwrap_or_default() {
            observations.extend(decoded(json!({ "deploymentInfo": deployment_json(&info) })));
        }
        Ok(observations)
    }

    async fn get_targets(&self, deployment_id: &str) -> Result<Vec<Observation>, String> {
        let mut target_ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.scope.limit.acquire().await;
            let page = self
                .scope
                .codedeploy
                .list_deployment_targets()
                .deployment_id(deployment_id)
                .set_next_token(token.take())
                .send()
                .await;
            let page = match page {
                Ok(page) => page,
                // A deployment that failed before starting has no targets.
                Err(e) if e.as_service_error().is_some_and(|s| s.is_deployment_not_started_exception()) => {
                    return Ok(Vec::new())
                }
                Err(e) => return Err(error_text(&e)),
            };
            target_ids.extend(page.target_ids.unwrap_or_default());
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        let mut observations = Vec::new();
        for chunk in target_ids.chunks(BATCH_LIMIT) {
            self.scope.limit.acquire().await;
            let output = self
                .scope
                .codedeploy
                .batch_get_deployment_targets()
                .deployment_id(deployment_id)
                .set_target_ids(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            let targets: Vec<Value> = output.deployment_targets.unwrap_or_default().iter().filter_map(target_json).collect();
            if !targets.is_empty() {
                observations.extend(decoded(json!({ "deploymentTargets": targets })));
            }
        }
        Ok(observations)
    }
}

/// Decodes API JSON built from SDK types; what does not decode is logged and skipped.
fn decoded(value: Value) -> Vec<Observation> {
    match decode::decode_value(value) {
        Ok(Decoded::Observations(observations)) => observations,
        Ok(Decoded::Ignored(_)) => Vec::new(),
        Err(error) => {
            tracing::warn!(%error, "API output not understood; skipped");
            Vec::new()
        }
    }
}

fn time(t: Option<&DateTime>) -> Value {
    match t.and_then(|t| t.to_millis().ok()) {
        Some(ms) => json!(ms as f64 / 1000.0),
        None => Value::Null,
    }
}

fn text(s: Option<&str>) -> Value {
    s.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

/// A `DeploymentInfo` as the API's JSON has it (the members the decoder reads).
pub fn deployment_json(info: &cd::DeploymentInfo) -> Value {
    let mut m = Map::new();
    m.insert("deploymentId".into(), text(info.deployment_id.as_deref()));
    m.insert("applicationName".into(), text(info.application_name.as_deref()));
    m.insert("deploymentGroupName".into(), text(info.deployment_group_name.as_deref()));
    m.insert("status".into(), text(info.status.as_ref().map(|s| s.as_str())));
    m.insert("createTime".into(), time(info.create_time.as_ref()));
    m.insert("startTime".into(), time(info.start_time.as_ref()));
    m.insert("completeTime".into(), time(info.complete_time.as_ref()));
    m.insert("creator".into(), text(info.creator.as_ref().map(|c| c.as_str())));
    m.insert("deploymentConfigName".into(), text(info.deployment_config_name.as_deref()));
    m.insert("computePlatform".into(), text(info.compute_platform.as_ref().map(|c| c.as_str())));
    if let Some(style) = &info.deployment_style {
        m.insert(
            "deploymentStyle".into(),
            json!({ "deploymentType": text(style.deployment_type.as_ref().map(|t| t.as_str())) }),
        );
    }
    if let Some(o) = &info.deployment_overview {
        m.insert(
            "deploymentOverview".into(),
            json!({ "Pending": o.pending, "InProgress": o.in_progress, "Succeeded": o.succeeded,
                    "Failed": o.failed, "Skipped": o.skipped, "Ready": o.ready }),
        );
    }
    if let Some(error) = &info.error_information {
        m.insert(
            "errorInformation".into(),
            json!({ "code": text(error.code.as_ref().map(|c| c.as_str())), "message": text(error.message.as_deref()) }),
        );
    }
    m.insert("description".into(), text(info.description.as_deref()));
    if let Some(revision) = &info.revision {
        m.insert("revision".into(), revision_json(revision));
    }
    if let Some(rollback) = &info.rollback_info {
        m.insert(
            "rollbackInfo".into(),
            json!({
                "rollbackDeploymentId": text(rollback.rollback_deployment_id.as_deref()),
                "rollbackTriggeringDeploymentId": text(rollback.rollback_triggering_deployment_id.as_deref()),
            }),
        );
    }
    Value::Object(m)
}

/// A `RevisionLocation` as the API's JSON has it (what lead time reads).
fn revision_json(revision: &cd::RevisionLocation) -> Value {
    let mut m = Map::new();
    m.insert("revisionType".into(), text(revision.revision_type.as_ref().map(|t| t.as_str())));
    if let Some(s3) = &revision.s3_location {
        m.insert(
            "s3Location".into(),
            json!({ "bucket": text(s3.bucket.as_deref()), "key": text(s3.key.as_deref()),
                    "version": text(s3.version.as_deref()), "eTag": text(s3.e_tag.as_deref()) }),
        );
    }
    if let Some(github) = &revision.git_hub_location {
        m.insert(
            "gitHubLocation".into(),
            json!({ "repository": text(github.repository.as_deref()), "commitId": text(github.commit_id.as_deref()) }),
        );
    }
    Value::Object(m)
}

fn lifecycle_json(events: Option<&[cd::LifecycleEvent]>) -> Value {
    Value::Array(
        events
            .unwrap_or_default()
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("lifecycleEventName".into(), text(e.lifecycle_event_name.as_deref()));
                m.insert("status".into(), text(e.status.as_ref().map(|s| s.as_str())));
                m.insert("startTime".into(), time(e.start_time.as_ref()));
                m.insert("endTime".into(), time(e.end_time.as_ref()));
                if let Some(d) = &e.diagnostics {
                    m.insert("diagnostics".into(), json!({ "errorCode": text(d.error_code.as_ref().map(|c| c.as_str())) }));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// A `DeploymentTarget` as the API's JSON has it.
pub fn target_json(target: &cd::DeploymentTarget) -> Option<Value> {
    let body = |deployment_id: Option<&str>, target_id: Option<&str>, status: Option<&cd::TargetStatus>, events: Option<&[cd::LifecycleEvent]>| {
        json!({
            "deploymentId": text(deployment_id),
            "targetId": text(target_id),
            "status": text(status.map(|s| s.as_str())),
            "lifecycleEvents": lifecycle_json(events),
        })
    };
    let (member, value) = if let Some(t) = &target.instance_target {
        ("instanceTarget", body(t.deployment_id.as_deref(), t.target_id.as_deref(), t.status.as_ref(), t.lifecycle_events.as_deref()))
    } else if let Some(t) = &target.lambda_target {
        ("lambdaTarget", body(t.deployment_id.as_deref(), t.target_id.as_deref(), t.status.as_ref(), t.lifecycle_events.as_deref()))
    } else if let Some(t) = &target.ecs_target {
        ("ecsTarget", body(t.deployment_id.as_deref(), t.target_id.as_deref(), t.status.as_ref(), t.lifecycle_events.as_deref()))
    } else if let Some(t) = &target.cloud_formation_target {
        (
            "cloudFormationTarget",
            body(t.deployment_id.as_deref(), t.target_id.as_deref(), t.status.as_ref(), t.lifecycle_events.as_deref()),
        )
    } else {
        return None;
    };
    Some(json!({ member: value }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    use crate::domain::{Overview, Provenance, TargetStatus};
    use crate::ingest::{Exporter, Writer, WriterOptions};

    fn dt(ms: i64) -> DateTime {
        DateTime::from_millis(ms)
    }

    #[test]
    fn sdk_output_decodes_like_the_api_json() {
        let info = cd::DeploymentInfo::builder()
            .deployment_id("d-ROLLBACK1")
            .application_name("app")
            .deployment_group_name("grp")
            .status(cd::DeploymentStatus::Succeeded)
            .create_time(dt(1_665_737_922_000))
            .start_time(dt(1_665_737_923_500))
            .complete_time(dt(1_665_738_100_250))
            .creator(cd::DeploymentCreator::CodeDeployRollback)
            .compute_platform(cd::ComputePlatform::Ecs)
            .deployment_style(cd::DeploymentStyle::builder().deployment_type(cd::DeploymentType::BlueGreen).build())
            .deployment_overview(cd::DeploymentOverview::builder().succeeded(1).build())
            .rollback_info(cd::RollbackInfo::builder().rollback_triggering_deployment_id("d-ORIGINAL1").build())
            // moto's empty structs mean nothing
            .error_information(cd::ErrorInformation::builder().build())
            .build();
        let from_sdk = decoded(json!({ "deploymentInfo": deployment_json(&info) }));
        let from_file = decoded(json!({"deploymentInfo": {
            "applicationName":"app","deploymentGroupName":"grp","deploymentId":"d-ROLLBACK1","status":"Succeeded",
            "creator":"codeDeployRollback","createTime":1665737922.0,"startTime":1665737923.5,"completeTime":1665738100.25,
            "computePlatform":"ECS","deploymentStyle":{"deploymentType":"BLUE_GREEN"},
            "deploymentOverview":{"Pending":0,"InProgress":0,"Succeeded":1,"Failed":0,"Skipped":0,"Ready":0},
            "errorInformation":{},"rollbackInfo":{"rollbackTriggeringDeploymentId":"d-ORIGINAL1"}}}));
        assert_eq!(from_sdk, from_file);
        assert_eq!(from_sdk.len(), 1);
        let o = &from_sdk[0];
        assert_eq!(o.provenance, Provenance::Api);
        assert_eq!(o.rollback_of.as_deref(), Some("d-ORIGINAL1"));
        assert_eq!(o.error_code, None);
        assert_eq!(o.overview, Some(Overview { succeeded: 1, ..Overview::default() }));
    }

    #[test]
    fn sdk_targets_decode_like_the_api_json() {
        let event = cd::LifecycleEvent::builder()
            .lifecycle_event_name("AfterInstall")
            .status(cd::LifecycleEventStatus::Failed)
            .start_time(dt(1_500))
            .end_time(dt(2_000))
            .diagnostics(cd::Diagnostics::builder().error_code(cd::LifecycleErrorCode::ScriptFailed).build())
            .build();
        let skipped = cd::LifecycleEvent::builder()
            .lifecycle_event_name("ApplicationStart")
            .status(cd::LifecycleEventStatus::Skipped)
            .build();
        let target = cd::DeploymentTarget::builder()
            .deployment_target_type(cd::DeploymentTargetType::InstanceTarget)
            .instance_target(
                cd::InstanceTarget::builder()
                    .deployment_id("d-A")
                    .target_id("i-1")
                    .status(cd::TargetStatus::Failed)
                    .lifecycle_events(event)
                    .lifecycle_events(skipped)
                    .build(),
            )
            .build();
        let from_sdk = decoded(json!({ "deploymentTargets": [target_json(&target).expect("a target")] }));
        let from_file = decoded(json!({"deploymentTargets":[
            {"deploymentTargetType":"InstanceTarget","instanceTarget":{"deploymentId":"d-A","targetId":"i-1","status":"Failed",
              "lifecycleEvents":[{"lifecycleEventName":"AfterInstall","status":"Failed","startTime":1.5,"endTime":2,
                "diagnostics":{"errorCode":"ScriptFailed","scriptName":"x.sh","message":"","logTail":""}},
                {"lifecycleEventName":"ApplicationStart","status":"Skipped"}]}}]}));
        assert_eq!(from_sdk, from_file);
        assert_eq!(from_sdk[0].targets[0].status, Some(TargetStatus::Failed));
    }

    /// A fake CodeDeploy: deployments by id, and the calls made.
    #[derive(Default)]
    struct FakeApi {
        deployments: Mutex<Vec<Observation>>,
        calls: Mutex<Vec<String>>,
        /// BatchGetDeployments calls still to fail (throttled beyond the SDK's retries).
        failing_gets: Mutex<u32>,
    }

    impl FakeApi {
        fn put(&self, id: &str, status: Status, created: Millis, completed: Option<Millis>) {
            let mut o = Observation::new(DeploymentRef { deployment_id: id.into(), ..DeploymentRef::default() }, Provenance::Api);
            o.application = Some("app".into());
            o.deployment_group = Some("grp".into());
            o.status = Some(status);
            o.create_time = Some(created);
            o.complete_time = completed;
            o.creator = Some("user".into());
            o.overview = Some(Overview::default());
            let mut all = self.deployments.lock().unwrap();
            all.retain(|d| d.deployment.deployment_id != id);
            all.push(o);
        }

        fn calls(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.lock().unwrap())
        }
    }

    impl DeploymentsApi for FakeApi {
        async fn list_deployments(&self, created_after: Millis) -> Result<Vec<String>, String> {
            self.calls.lock().unwrap().push("list".into());
            let all = self.deployments.lock().unwrap();
            Ok(all
                .iter()
                .filter(|d| d.create_time.unwrap_or(0) >= created_after)
                .map(|d| d.deployment.deployment_id.to_string())
                .collect())
        }

        async fn get_deployments(&self, ids: &[String]) -> Result<Vec<Observation>, String> {
            assert!(ids.len() <= BATCH_LIMIT);
            self.calls.lock().unwrap().push(format!("get {}", ids.join(",")));
            let mut failing = self.failing_gets.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err("ThrottlingException: Rate exceeded".into());
            }
            drop(failing);
            let all = self.deployments.lock().unwrap();
            Ok(all.iter().filter(|d| ids.iter().any(|id| *id == d.deployment.deployment_id)).cloned().collect())
        }

        async fn get_targets(&self, deployment_id: &str) -> Result<Vec<Observation>, String> {
            self.calls.lock().unwrap().push(format!("targets {deployment_id}"));
            Ok(Vec::new())
        }
    }

    const MIN: Millis = 60_000;

    fn options(now: Millis) -> PollerOptions {
        PollerOptions {
            interval: Duration::from_secs(60),
            lookback_ms: 30 * 24 * 60 * MIN,
            overlap_ms: 10 * MIN,
            applications: BTreeSet::new(),
            events_expected: true,
            grace_ms: 2 * MIN,
            started_at: now,
        }
    }

    async fn sink() -> (Sink, SharedExporter) {
        let exporter = SharedExporter::new(Exporter::new(2 * MIN));
        let options = WriterOptions { settle_interval: Duration::from_secs(3600), retention_ms: 40 * 24 * 60 * MIN, max_batch: 64 };
        let (writer, ingest) = Writer::new(exporter.clone(), None, options);
        tokio::spawn(writer.run());
        (Sink { ingest, exporter: exporter.clone() }, exporter)
    }

    #[tokio::test]
    async fn backfill_then_one_list_per_interval_and_finished_deployments_fetched_once() {
        let now = 1_000 * 24 * 60 * MIN;
        let api = FakeApi::default();
        for i in 0..30 {
            api.put(&format!("d-OLD{i:05}"), Status::Succeeded, now - (i + 1) * 60 * MIN, Some(now - (i + 1) * 60 * MIN + 5 * MIN));
        }
        api.put("d-RUNNING01", Status::InProgress, now - 5 * MIN, None);
        let (sink, exporter) = sink().await;
        let mut poller = ScopePoller::new("111111111111", "us-east-1", options(now));

        let fetched = poller.poll(&api, &sink, now).await.expect("polled");
        assert_eq!(fetched, Fetched { deployments: 31, finished: 30 });
        let calls = api.calls();
        assert_eq!(calls.iter().filter(|c| c.starts_with("get ")).count(), 2, "31 ids in batches of 25: {calls:?}");
        assert_eq!(calls.iter().filter(|c| c.starts_with("targets ")).count(), 30);

        // Nothing new: one list, and the running deployment re-fetched.
        poller.poll(&api, &sink, now + MIN).await.expect("polled");
        assert_eq!(api.calls(), ["list", "get d-RUNNING01"]);

        // It finishes: fetched with its targets, then never again.
        api.put("d-RUNNING01", Status::Failed, now - 5 * MIN, Some(now + MIN));
        poller.poll(&api, &sink, now + 2 * MIN).await.expect("polled");
        assert_eq!(api.calls(), ["list", "get d-RUNNING01", "targets d-RUNNING01"]);
        poller.poll(&api, &sink, now + 3 * MIN).await.expect("polled");
        assert_eq!(api.calls(), ["list"]);

        // A new deployment no event announced, finished within one interval:
        // counted as found only by polling once the grace time has passed.
        api.put("d-NEW000001", Status::Succeeded, now + 3 * MIN + 1, Some(now + 4 * MIN));
        poller.poll(&api, &sink, now + 4 * MIN).await.expect("polled");
        assert_eq!(api.calls(), ["list", "get d-NEW000001", "targets d-NEW000001"]);
        poller.poll(&api, &sink, now + 7 * MIN).await.expect("polled");
        let snapshot = exporter.lock().exposition(now + 7 * MIN);
        assert_eq!(snapshot.ledger.data_quality.get(&QualityIssue::FoundOnlyByPolling), Some(&1));
        assert_eq!(exporter.lock().exposition(now).ledger.deployments_tracked, 32);
    }

    #[tokio::test]
    async fn the_application_filter_limits_polling_not_enrichment() {
        let now = 1_000 * 24 * 60 * MIN;
        let api = FakeApi::default();
        api.put("d-MINE00001", Status::Succeeded, now - 60 * MIN, Some(now - 50 * MIN));
        api.put("d-OTHER0001", Status::Succeeded, now - 60 * MIN, Some(now - 50 * MIN));
        api.deployments.lock().unwrap()[1].application = Some("other".into());
        let (sink, exporter) = sink().await;
        let mut poller = ScopePoller::new("111111111111", "us-east-1", PollerOptions {
            applications: ["app".to_owned()].into(),
            ..options(now)
        });
        poller.poll(&api, &sink, now).await.expect("polled");
        assert_eq!(api.calls(), ["list", "get d-MINE00001,d-OTHER0001", "targets d-MINE00001"]);
        assert_eq!(exporter.lock().exposition(now).ledger.deployments_tracked, 1);
        poller.poll(&api, &sink, now + MIN).await.expect("polled");
        assert_eq!(api.calls(), ["list"], "the other application's deployment is not fetched again");

        // An event about another application's deployment is still enriched.
        api.put("d-OTHER0002", Status::Failed, now, Some(now + MIN));
        api.deployments.lock().unwrap()[2].application = Some("other".into());
        poller.request("d-OTHER0002".into(), true, &sink, now + MIN);
        poller.flush(&api, &sink, now + MIN).await;
        assert_eq!(api.calls(), ["get d-OTHER0002", "targets d-OTHER0002"]);
        assert_eq!(exporter.lock().exposition(now).ledger.deployments_tracked, 2);
    }

    #[tokio::test]
    async fn requests_are_coalesced_and_cost_no_call_when_nothing_is_new() {
        let now = 1_000 * 24 * 60 * MIN;
        let api = FakeApi::default();
        let (sink, _exporter) = sink().await;
        let mut poller = ScopePoller::new("111111111111", "us-east-1", options(now));
        poller.poll(&api, &sink, now).await.expect("polled");
        api.calls();
        // Events reach the scope through the enricher's set, which never
        // waits and asks once per deployment however many events name it.
        let enricher = Enricher::default();
        let wanted = enricher.add_route("111111111111", "us-east-1");
        for i in 0..3 {
            let id = format!("d-EVT{i:05}");
            api.put(&id, Status::Succeeded, now + MIN, Some(now + 2 * MIN));
            assert!(enricher.request("111111111111", "us-east-1", &id, false));
            assert!(enricher.request("111111111111", "us-east-1", &id, true));
        }
        assert!(!enricher.request("222222222222", "us-east-1", "d-EVT00000", true), "no scope polls that account");
        wanted.changed().await;
        let asked = wanted.take();
        assert_eq!(asked.len(), 3);
        for (id, terminal) in asked {
            assert!(terminal, "{id}: a finished event wins");
            poller.request(id, terminal, &sink, now + 2 * MIN);
        }
        poller.flush(&api, &sink, now + 2 * MIN).await;
        let calls = api.calls();
        assert_eq!(calls[0], "get d-EVT00000,d-EVT00001,d-EVT00002");
        // A re-delivered event for a finished deployment costs nothing.
        poller.request("d-EVT00001".into(), true, &sink, now + 3 * MIN);
        assert!(!poller.has_pending());
        assert!(api.calls().is_empty());

        // A START costs nothing now: the deployment joins the next interval's batch.
        api.put("d-STARTED01", Status::InProgress, now + 3 * MIN, None);
        api.put("d-STARTED02", Status::InProgress, now + 3 * MIN, None);
        for id in ["d-STARTED01", "d-STARTED02"] {
            poller.request(id.into(), false, &sink, now + 3 * MIN);
        }
        assert!(!poller.has_pending());
        assert!(api.calls().is_empty());
        poller.poll(&api, &sink, now + 4 * MIN).await.expect("polled");
        assert_eq!(api.calls(), ["list", "get d-STARTED01,d-STARTED02"]);
    }

    #[tokio::test]
    async fn failed_fetches_are_retried_with_backoff_until_they_work() {
        let now = 1_000 * 24 * 60 * MIN;
        let api = FakeApi::default();
        for i in 0..30 {
            api.put(&format!("d-OLD{i:05}"), Status::Succeeded, now - (i + 1) * 60 * MIN, Some(now - (i + 1) * 60 * MIN + 5 * MIN));
        }
        let (sink, exporter) = sink().await;
        let mut poller = ScopePoller::new("111111111111", "us-east-1", options(now));
        let interval = 60_000;

        // The backfill's two chunks fail, then the first retry fails too.
        *api.failing_gets.lock().unwrap() = 3;
        let fetched = poller.poll(&api, &sink, now).await.expect("listed");
        assert_eq!(fetched.deployments, 0);
        assert_eq!(poller.retry_len(), 30, "the watermark moved on; the ids are kept");
        assert!(!poller.backfilled(), "history is still missing");
        api.calls();

        // One interval later: both chunks tried again, the first fails.
        poller.poll(&api, &sink, now + interval).await.expect("listed");
        let gets = api.calls().into_iter().filter(|c| c.starts_with("get ")).count();
        assert_eq!(gets, 2);
        assert_eq!(poller.retry_len(), 25, "the second chunk was fetched");
        assert_eq!(exporter.lock().exposition(now).ledger.deployments_tracked, 5);

        // Its second failure waits two intervals: nothing at the next poll.
        poller.poll(&api, &sink, now + 2 * interval).await.expect("listed");
        assert!(api.calls().iter().all(|c| !c.starts_with("get ")), "backing off");
        poller.poll(&api, &sink, now + 3 * interval).await.expect("listed");
        assert_eq!(api.calls().iter().filter(|c| c.starts_with("get ")).count(), 1);
        assert_eq!(poller.retry_len(), 0);
        assert!(poller.backfilled());
        assert_eq!(exporter.lock().exposition(now).ledger.deployments_tracked, 30, "every deployment counted");
    }
}
