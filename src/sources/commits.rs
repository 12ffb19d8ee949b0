//! The commit-time resolver: finds the commit times that only I/O can give
//! (S3 object metadata, git repositories on disk) for counted change
//! deployments whose lead time waits for it, and submits them as observations.
//!
//! Same shape as the poller: [`Resolver::step`] is one testable round (the
//! lookups the ledger lists → observations), [`run`] is a thin loop around it.
//! For each lookup, in order:
//! 1. **S3 metadata** (`--lead-time.s3-metadata`): HeadObject on an S3
//!    revision's bundle (with its version), user metadata
//!    `x-amz-meta-<commit-time key>` (RFC 3339 or epoch seconds) and
//!    `x-amz-meta-<commit key>` (a sha for the git step). Cached per
//!    (bucket, key, version or eTag).
//! 2. **git** (`--git.repository NAME=PATH`): the deployed commit (the
//!    GitHub revision's commitId, the description's or the metadata's sha) in
//!    the repository named like the GitHub repository, else in each configured
//!    one; its committer time, and with `--git.first-commit` the committer time
//!    of the oldest commit not contained in the group's previously deployed
//!    commit.
//!
//! The answer is the best commit time found (a first commit over a deployed
//! one); with none, `not_found`, or `source_error` after [`MAX_ATTEMPTS`]
//! rounds that failed. The ledger decides once and ignores later answers.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::{CommitKind, CommitSource, CommitTime, DeploymentRef, LeadTimeUnknown, Millis, Observation, Provenance, Revision};
use crate::ingest::{IngestHandle, SharedExporter};
use crate::ledger::{parse_sha, parse_time, LeadTimeConfig, PendingLookup};
use crate::metrics::Source;

/// Rounds a lookup whose sources failed is tried before it counts as `source_error`.
pub const MAX_ATTEMPTS: u32 = 3;
/// Most commits walked to find a change's first commit; beyond it the deployed commit is used.
const MAX_WALK: usize = 10_000;

/// Lead-time flags shared by `serve` and `replay`: the description keys.
#[derive(Debug, Clone, clap::Args)]
pub struct DescriptionArgs {
    /// Key of the commit sha in deployment descriptions (`commit=<sha>`).
    #[arg(long = "lead-time.description-commit-key", env = "CODEDEPLOY_EXPORTER_LEAD_TIME_DESCRIPTION_COMMIT_KEY", default_value = "commit")]
    pub commit_key: String,

    /// Key of the commit time in deployment descriptions (`committed_at=<RFC3339>`).
    #[arg(long = "lead-time.description-time-key", env = "CODEDEPLOY_EXPORTER_LEAD_TIME_DESCRIPTION_TIME_KEY", default_value = "committed_at")]
    pub time_key: String,
}

/// `serve`'s lead-time flags: the description keys and the resolver's sources.
#[derive(Debug, Clone, clap::Args)]
pub struct LeadTimeArgs {
    #[command(flatten)]
    pub description: DescriptionArgs,

    /// Read commit times from the user metadata of S3 revision bundles (HeadObject).
    #[arg(long = "lead-time.s3-metadata", env = "CODEDEPLOY_EXPORTER_LEAD_TIME_S3_METADATA")]
    pub s3_metadata: bool,

    /// S3 user metadata key of the commit time (`x-amz-meta-commit-time`), without the prefix.
    #[arg(long = "lead-time.s3-commit-time-key", env = "CODEDEPLOY_EXPORTER_LEAD_TIME_S3_COMMIT_TIME_KEY", default_value = "commit-time")]
    pub s3_time_key: String,

    /// S3 user metadata key of the commit sha (`x-amz-meta-commit`), without the prefix.
    #[arg(long = "lead-time.s3-commit-key", env = "CODEDEPLOY_EXPORTER_LEAD_TIME_S3_COMMIT_KEY", default_value = "commit")]
    pub s3_commit_key: String,

    /// A git repository on disk, NAME=PATH (repeatable); NAME is the GitHub
    /// repository (`owner/name`) of GitHub revisions. Keep it fresh (`git fetch`).
    #[arg(long = "git.repository", env = "CODEDEPLOY_EXPORTER_GIT_REPOSITORY", value_delimiter = ',', value_name = "NAME=PATH")]
    pub git_repositories: Vec<String>,

    /// Measure from the first commit of the change (not in the group's previous deployed commit).
    #[arg(long = "git.first-commit", env = "CODEDEPLOY_EXPORTER_GIT_FIRST_COMMIT", default_value_t = true, action = clap::ArgAction::Set)]
    pub first_commit: bool,

    /// How often the resolver looks for deployments waiting for a commit time.
    #[arg(long = "lead-time.resolve-interval", env = "CODEDEPLOY_EXPORTER_LEAD_TIME_RESOLVE_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub interval: Duration,
}

/// The validated lead-time options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadTimeOptions {
    pub ledger: LeadTimeConfig,
    pub s3_time_key: String,
    pub s3_commit_key: String,
    pub git: Vec<(String, PathBuf)>,
    pub first_commit: bool,
    pub interval: Duration,
}

impl LeadTimeOptions {
    pub fn resolver_enabled(&self) -> bool {
        self.ledger.s3 || self.ledger.git
    }
}

impl DescriptionArgs {
    pub fn config(&self) -> LeadTimeConfig {
        LeadTimeConfig { commit_key: self.commit_key.clone(), time_key: self.time_key.clone(), s3: false, git: false }
    }
}

impl LeadTimeArgs {
    pub fn validate(&self) -> Result<LeadTimeOptions, String> {
        let mut git = Vec::new();
        for raw in &self.git_repositories {
            let Some((name, path)) = raw.split_once('=').filter(|(n, p)| !n.is_empty() && !p.is_empty()) else {
                return Err(format!("--git.repository {raw:?} is not NAME=PATH"));
            };
            let path = PathBuf::from(path);
            if !path.exists() {
                return Err(format!("--git.repository {name}: {} does not exist", path.display()));
            }
            git.push((name.to_owned(), path));
        }
        if self.description.commit_key.is_empty() || self.description.time_key.is_empty() {
            return Err("--lead-time.description-commit-key and --lead-time.description-time-key must not be empty".into());
        }
        let mut ledger = self.description.config();
        ledger.s3 = self.s3_metadata;
        ledger.git = !git.is_empty();
        Ok(LeadTimeOptions {
            ledger,
            s3_time_key: self.s3_time_key.to_ascii_lowercase(),
            s3_commit_key: self.s3_commit_key.to_ascii_lowercase(),
            git,
            first_commit: self.first_commit,
            interval: self.interval.max(Duration::from_millis(100)),
        })
    }
}

/// User metadata of S3 objects. The SDK implements it; tests may fake it.
pub trait ObjectMetadata: Send + Sync {
    /// HeadObject's user metadata (keys without `x-amz-meta-`, lower case);
    /// `Ok(None)` when the object does not exist.
    fn head(
        &self,
        region: Option<&str>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> impl Future<Output = Result<Option<HashMap<String, String>>, String>> + Send;
}

/// Reads S3 metadata with the SDK, one client per region.
#[derive(Debug, Clone)]
pub struct SdkObjects {
    aws: crate::sources::aws::Aws,
    /// Path-style addressing, for endpoint URLs (moto, MinIO) without bucket subdomains.
    path_style: bool,
    clients: Arc<tokio::sync::Mutex<HashMap<String, aws_sdk_s3::Client>>>,
}

impl SdkObjects {
    pub fn new(aws: crate::sources::aws::Aws, path_style: bool) -> SdkObjects {
        SdkObjects { aws, path_style, clients: Arc::default() }
    }

    async fn client(&self, region: Option<&str>) -> aws_sdk_s3::Client {
        let region = region.map(str::to_owned).or_else(|| self.aws.default_region()).unwrap_or_else(|| "us-east-1".into());
        let mut clients = self.clients.lock().await;
        if let Some(client) = clients.get(&region) {
            return client.clone();
        }
        let config = self.aws.config_for(&region, None).await;
        let conf = aws_sdk_s3::config::Builder::from(&config)
            .interceptor(self.aws.counter.clone())
            .force_path_style(self.path_style)
            .build();
        let client = aws_sdk_s3::Client::from_conf(conf);
        clients.insert(region, client.clone());
        client
    }
}

impl ObjectMetadata for SdkObjects {
    async fn head(
        &self,
        region: Option<&str>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<HashMap<String, String>>, String> {
        let client = self.client(region).await;
        match client.head_object().bucket(bucket).key(key).set_version_id(version.map(str::to_owned)).send().await {
            Ok(output) => Ok(Some(
                output.metadata.unwrap_or_default().into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)).collect(),
            )),
            Err(error) if error.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(None),
            Err(error) => Err(crate::sources::aws::error_text(&error)),
        }
    }
}

/// No S3 source configured.
#[derive(Debug, Clone, Copy)]
pub struct NoObjects;

impl ObjectMetadata for NoObjects {
    async fn head(&self, _: Option<&str>, _: &str, _: &str, _: Option<&str>) -> Result<Option<HashMap<String, String>>, String> {
        Ok(None)
    }
}

/// What the git source found for one commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitTimes {
    /// Committer time of the deployed commit.
    pub deployed: Millis,
    /// Committer time of the oldest commit not in the previous deployed commit.
    pub first: Option<Millis>,
}

/// Looks `sha` up in the repository at `path`: `Ok(None)` when it is not there.
/// With `previous`, also the first commit of the change. Blocking.
pub fn git_times(path: &std::path::Path, sha: &str, previous: Option<&str>) -> Result<Option<GitTimes>, String> {
    let repo = gix::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let Some(id) = find_commit_id(&repo, sha)? else { return Ok(None) };
    let Ok(commit) = repo.find_commit(id) else { return Ok(None) };
    let deployed = commit.time().map_err(|e| e.to_string())?.seconds * 1000;
    let Some(previous) = previous.map(|p| find_commit_id(&repo, p)).transpose()?.flatten() else {
        return Ok(Some(GitTimes { deployed, first: None }));
    };
    if previous == id {
        return Ok(Some(GitTimes { deployed, first: None }));
    }
    let walk = repo.rev_walk([id]).with_hidden([previous]).all().map_err(|e| e.to_string())?;
    let mut oldest: Option<Millis> = None;
    for (walked, info) in walk.enumerate() {
        if walked >= MAX_WALK {
            return Ok(Some(GitTimes { deployed, first: None }));
        }
        let info = info.map_err(|e| e.to_string())?;
        let at = repo.find_commit(info.id).map_err(|e| e.to_string())?.time().map_err(|e| e.to_string())?.seconds * 1000;
        oldest = Some(oldest.map_or(at, |o| o.min(at)));
    }
    Ok(Some(GitTimes { deployed, first: oldest }))
}

/// A full or abbreviated sha in `repo`; `None` when absent or ambiguous.
fn find_commit_id(repo: &gix::Repository, sha: &str) -> Result<Option<gix::ObjectId>, String> {
    let Some(sha) = parse_sha(sha) else { return Ok(None) };
    if sha.len() == 40 {
        return Ok(gix::ObjectId::from_hex(sha.as_bytes()).ok());
    }
    let prefix = gix::hash::Prefix::from_hex(&sha).map_err(|e| e.to_string())?;
    match repo.objects.lookup_prefix(prefix, None) {
        Ok(Some(Ok(id))) => Ok(Some(id)),
        Ok(_) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// One round's memory: S3 metadata already read and failed attempts.
#[derive(Debug)]
pub struct Resolver<O> {
    options: LeadTimeOptions,
    objects: O,
    /// HeadObject results per (bucket, key, version or eTag).
    metadata: HashMap<(String, String, String), Option<HashMap<String, String>>>,
    failures: HashMap<DeploymentRef, u32>,
}

impl<O: ObjectMetadata> Resolver<O> {
    pub fn new(options: LeadTimeOptions, objects: O) -> Resolver<O> {
        Resolver { options, objects, metadata: HashMap::new(), failures: HashMap::new() }
    }

    /// Resolves every pending lookup it can; returns the observations to submit.
    pub async fn step(&mut self, lookups: &[PendingLookup]) -> Vec<Observation> {
        let mut answers = Vec::new();
        for pending in lookups {
            if let Some(answer) = self.resolve(pending).await {
                answers.push(answer);
            }
        }
        answers
    }

    /// `None`: a source failed; try again next round (up to [`MAX_ATTEMPTS`]).
    async fn resolve(&mut self, pending: &PendingLookup) -> Option<Observation> {
        let lookup = &pending.lookup;
        let mut best: Option<CommitTime> = None;
        let offer = |found: CommitTime, best: &mut Option<CommitTime>| {
            if best.is_none_or(|b| found.better_than(&b)) {
                *best = Some(found);
            }
        };
        let mut failed = false;
        let mut sha = lookup.commit.clone();
        if let (true, Some(Revision::S3 { bucket, key, version, etag })) = (self.options.ledger.s3, &lookup.revision) {
            match self.s3_metadata(pending.deployment.region.as_deref(), bucket, key, version.as_deref(), etag.as_deref()).await {
                Ok(Some(metadata)) => {
                    if let Some(at) = metadata.get(&self.options.s3_time_key).and_then(|t| parse_time(t.trim())) {
                        offer(CommitTime { kind: CommitKind::Deployed, source: CommitSource::S3, at }, &mut best);
                    }
                    sha = sha.or_else(|| metadata.get(&self.options.s3_commit_key).and_then(|c| parse_sha(c.trim())));
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(deployment = %pending.deployment.deployment_id, %bucket, %key, %error, "S3 HeadObject failed");
                    failed = true;
                }
            }
        }
        if let Some(sha) = sha.filter(|_| !self.options.git.is_empty()) {
            let repository = match &lookup.revision {
                Some(Revision::GitHub { repository, .. }) => Some(repository.clone()),
                _ => None,
            };
            let previous = lookup.previous_commit.clone().filter(|_| self.options.first_commit);
            let mut repos: Vec<(String, PathBuf)> = self.options.git.clone();
            // The repository named like the revision's first; the others after.
            repos.sort_by_key(|(name, _)| Some(name) != repository.as_ref());
            let found = tokio::task::spawn_blocking(move || {
                let mut errors = Vec::new();
                for (name, path) in repos {
                    match git_times(&path, &sha, previous.as_deref()) {
                        Ok(Some(times)) => return (Some(times), errors),
                        Ok(None) => {}
                        Err(error) => errors.push(format!("{name}: {error}")),
                    }
                }
                (None, errors)
            })
            .await
            .unwrap_or_else(|panic| (None, vec![panic.to_string()]));
            match found {
                (Some(times), _) => {
                    offer(CommitTime { kind: CommitKind::Deployed, source: CommitSource::Git, at: times.deployed }, &mut best);
                    if let Some(at) = times.first {
                        offer(CommitTime { kind: CommitKind::First, source: CommitSource::Git, at }, &mut best);
                    }
                }
                (None, errors) if !errors.is_empty() => {
                    tracing::warn!(deployment = %pending.deployment.deployment_id, errors = ?errors, "git lookup failed");
                    failed = true;
                }
                (None, _) => {}
            }
        }
        let mut answer = Observation::new(pending.deployment.clone(), Provenance::Api);
        match best {
            Some(found) => answer.commit_time = Some(found),
            None if failed => {
                let attempts = self.failures.entry(pending.deployment.clone()).or_insert(0);
                *attempts += 1;
                if *attempts < MAX_ATTEMPTS {
                    return None;
                }
                answer.lead_time_unknown = Some(LeadTimeUnknown::SourceError);
            }
            None => answer.lead_time_unknown = Some(LeadTimeUnknown::NotFound),
        }
        self.failures.remove(&pending.deployment);
        Some(answer)
    }

    async fn s3_metadata(
        &mut self,
        region: Option<&str>,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        etag: Option<&str>,
    ) -> Result<Option<HashMap<String, String>>, String> {
        let cache_key = (bucket.to_owned(), key.to_owned(), version.or(etag).unwrap_or_default().to_owned());
        if let Some(cached) = self.metadata.get(&cache_key) {
            return Ok(cached.clone());
        }
        let found = self.objects.head(region, bucket, key, version).await?;
        // Only a versioned or eTagged revision names one build: a bare key may be overwritten.
        if version.or(etag).is_some() {
            if self.metadata.len() >= 10_000 {
                self.metadata.clear();
            }
            self.metadata.insert(cache_key, found.clone());
        }
        Ok(found)
    }
}

/// Resolves lookups every `interval` until `shutdown`; answers go through the
/// writer like any source's observations.
pub async fn run<O: ObjectMetadata>(
    mut resolver: Resolver<O>,
    exporter: SharedExporter,
    ingest: IngestHandle,
    shutdown: CancellationToken,
) {
    let interval = resolver.options.interval;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let lookups = exporter.lock().lead_lookups();
        if lookups.is_empty() {
            continue;
        }
        let answers = resolver.step(&lookups).await;
        if answers.is_empty() {
            continue;
        }
        if let Err(error) = ingest.submit_observations(Source::LeadTime, answers).await {
            tracing::warn!(%error, "commit times not applied; they are looked up again");
        }
    }
}

/// Starts the resolver of `serve`: with S3 metadata, the SDK (standard
/// credential chain, `--aws.endpoint-url`); otherwise git only.
pub async fn start(
    options: LeadTimeOptions,
    endpoint_url: Option<String>,
    exporter: SharedExporter,
    ingest: IngestHandle,
    shutdown: CancellationToken,
) {
    tracing::info!(s3 = options.ledger.s3, git = options.git.len(), "commit-time resolver started");
    if options.ledger.s3 {
        let sink: Arc<dyn crate::sources::aws::RequestSink> = Arc::new(crate::sources::aws::ExporterSink(exporter.clone()));
        let aws = crate::sources::aws::Aws::load(endpoint_url.as_deref(), None, 3, sink).await;
        let path_style = endpoint_url.is_some();
        run(Resolver::new(options, SdkObjects::new(aws, path_style)), exporter, ingest, shutdown).await;
    } else {
        run(Resolver::new(options, NoObjects), exporter, ingest, shutdown).await;
    }
}

#[cfg(test)]
mod tests;
