//! Reads the deployment groups of one polled account and region for
//! `codedeploy_deployment_group_info` (see [`crate::group_info`]).
//!
//! Every [`SCAN`], the ledger is asked which of the scope's groups are due:
//! never read (a group seen for the first time, so it is read within
//! seconds), read under other `--labels.from-tags`, or read
//! `--tags.refresh-interval` ago. Each due group costs one GetDeploymentGroup
//! and, when tags are asked for, one ListTagsForResource on its ARN; each
//! application of the due groups one ListTagsForResource on its own ARN.
//! GetDeploymentGroup rather than BatchGetDeploymentGroups: tags have no
//! batch call, so batching would save a third of the calls at most, and
//! fakes of CodeDeploy (moto) do not implement it (docs/aws.md).
//!
//! What was read goes through the writer and the store like any message, so
//! a restart shows it at once. A group whose read failed (beyond the SDK's
//! own retries, every attempt counted in
//! `codedeploy_exporter_aws_requests_total`) is read again after a delay
//! that doubles with each failure, from [`FIRST_RETRY`] up to the refresh
//! interval; until then it keeps what was read before, or the values its
//! deployments give.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::time::Duration;

use compact_str::CompactString;
use tokio_util::sync::CancellationToken;

use super::{error_text, partition, retry_later, Retry, Scope};
use crate::domain::Millis;
use crate::group_info::GroupInfo;
use crate::ingest::{now_ms, IngestHandle, SharedExporter};
use crate::ledger::GroupKey;

/// How often the ledger is asked for due groups.
pub const SCAN: Duration = Duration::from_secs(5);
/// The wait before a failed group is read again the first time.
pub const FIRST_RETRY: Duration = Duration::from_secs(30);
/// Groups submitted per commit: a long first pass shows (and keeps) its
/// progress rather than all at its end.
const SUBMIT_EVERY: usize = 100;

/// What GetDeploymentGroup says of a group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupFacts {
    pub compute_platform: Option<String>,
    pub deployment_config: Option<String>,
}

/// What the reader asks CodeDeploy. The SDK implements it; tests may fake it.
pub trait GroupsApi: Send + Sync {
    /// GetDeploymentGroup; `None` when the group or its application does not exist.
    fn get_group(&self, application: &str, group: &str) -> impl Future<Output = Result<Option<GroupFacts>, String>> + Send;
    /// ListTagsForResource of one ARN, as (key, value).
    fn list_tags(&self, arn: &str) -> impl Future<Output = Result<Vec<(String, String)>, String>> + Send;
}


/// `arn:aws:codedeploy:REGION:ACCOUNT:application:NAME`.
pub fn application_arn(key: &GroupKey) -> String {
    format!("arn:{}:codedeploy:{}:{}:application:{}", partition(&key.region), key.region, key.account_id, key.application)
}

/// `arn:aws:codedeploy:REGION:ACCOUNT:deploymentgroup:APPLICATION/GROUP`.
pub fn group_arn(key: &GroupKey) -> String {
    format!(
        "arn:{}:codedeploy:{}:{}:deploymentgroup:{}/{}",
        partition(&key.region),
        key.region,
        key.account_id,
        key.application,
        key.deployment_group
    )
}

/// One pass's figures, for the logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub read: usize,
    pub failed: usize,
}

/// The groups of one account and region, read when due.
#[derive(Debug)]
pub struct GroupReader {
    pub account: String,
    pub region: String,
    refresh: Duration,
    retry: BTreeMap<GroupKey, Retry>,
}

impl GroupReader {
    pub fn new(account: &str, region: &str, refresh: Duration) -> GroupReader {
        GroupReader { account: account.to_owned(), region: region.to_owned(), refresh, retry: BTreeMap::new() }
    }

    /// Groups waiting for a retry.
    pub fn retry_len(&self) -> usize {
        self.retry.len()
    }

    /// A group whose read failed is read again after [`FIRST_RETRY`], doubled
    /// with each failure, up to the refresh interval.
    fn retry_later(&mut self, key: GroupKey, now: Millis) {
        retry_later(&mut self.retry, key, now, FIRST_RETRY, self.refresh);
    }

    /// Reads every group due now (and not waiting for a retry) and submits
    /// what was read.
    pub async fn pass(&mut self, api: &impl GroupsApi, exporter: &SharedExporter, ingest: &IngestHandle, now: Millis) -> Pass {
        let refresh_ms = self.refresh.as_millis() as Millis;
        let (due, asked) = {
            let exporter = exporter.lock();
            (exporter.groups_due_for_info(&self.account, &self.region, refresh_ms, now), exporter.info_tag_keys())
        };
        let mut by_application: BTreeMap<CompactString, Vec<GroupKey>> = BTreeMap::new();
        for key in due {
            if self.retry.get(&key).is_none_or(|r| r.due <= now) {
                by_application.entry(key.application.clone()).or_default().push(key);
            }
        }
        let mut pass = Pass::default();
        let mut read: Vec<(GroupKey, GroupInfo)> = Vec::new();
        for groups in by_application.into_values() {
            // The application's tags, read once for all its groups, and only when tags are asked for.
            let mut application_tags: Option<Vec<(String, String)>> = None;
            for key in groups {
                match self.read_group(api, &key, &asked, &mut application_tags, now).await {
                    Ok(info) => {
                        self.retry.remove(&key);
                        read.push((key, info));
                        pass.read += 1;
                    }
                    Err(error) => {
                        tracing::warn!(account = %self.account, region = %self.region, application = %key.application,
                            deployment_group = %key.deployment_group, %error, "reading the deployment group failed; retried with backoff");
                        self.retry_later(key, now);
                        pass.failed += 1;
                    }
                }
                if read.len() >= SUBMIT_EVERY {
                    self.submit(ingest, std::mem::take(&mut read), now).await;
                }
            }
        }
        if !read.is_empty() {
            self.submit(ingest, read, now).await;
        }
        pass
    }

    async fn read_group(
        &self,
        api: &impl GroupsApi,
        key: &GroupKey,
        asked: &BTreeSet<CompactString>,
        application_tags: &mut Option<Vec<(String, String)>>,
        now: Millis,
    ) -> Result<GroupInfo, String> {
        let Some(facts) = api.get_group(&key.application, &key.deployment_group).await? else {
            tracing::info!(account = %self.account, region = %self.region, application = %key.application,
                deployment_group = %key.deployment_group, "the deployment group no longer exists; shown from its deployments");
            return Ok(GroupInfo::new(None, None, asked, &[], &[], now));
        };
        let (mut group_tags, mut app_tags) = (Vec::new(), Vec::new());
        if !asked.is_empty() {
            group_tags = api.list_tags(&group_arn(key)).await?;
            app_tags = match application_tags {
                Some(tags) => tags.clone(),
                None => application_tags.insert(api.list_tags(&application_arn(key)).await?).clone(),
            };
        }
        let (platform, config) = (facts.compute_platform.as_deref(), facts.deployment_config.as_deref());
        Ok(GroupInfo::new(platform, config, asked, &group_tags, &app_tags, now))
    }

    /// Submits `read`; what could not be committed is read again with backoff.
    async fn submit(&mut self, ingest: &IngestHandle, read: Vec<(GroupKey, GroupInfo)>, now: Millis) {
        let keys: Vec<GroupKey> = read.iter().map(|(key, _)| key.clone()).collect();
        if let Err(error) = ingest.submit_group_info(read).await {
            tracing::warn!(account = %self.account, region = %self.region, %error, groups = keys.len(),
                "deployment groups read but not committed; read again with backoff");
            for key in keys {
                self.retry_later(key, now);
            }
        }
    }
}

/// Runs one scope's reader until `shutdown`: a pass every [`SCAN`].
pub async fn run(mut reader: GroupReader, api: impl GroupsApi, exporter: SharedExporter, ingest: IngestHandle, shutdown: CancellationToken) {
    let mut ticks = tokio::time::interval(SCAN);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {
                let pass = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    pass = reader.pass(&api, &exporter, &ingest, now_ms()) => pass,
                };
                if pass.read > 0 || pass.failed > 0 {
                    tracing::info!(account = %reader.account, region = %reader.region, read = pass.read, failed = pass.failed,
                        waiting = reader.retry_len(), "deployment groups read");
                }
            }
        }
    }
}

/// [`GroupsApi`] over the SDK, within the scope's rate limit.
#[derive(Debug, Clone)]
pub struct SdkGroups {
    pub scope: Scope,
}

impl GroupsApi for SdkGroups {
    async fn get_group(&self, application: &str, group: &str) -> Result<Option<GroupFacts>, String> {
        self.scope.limit.acquire().await;
        let sent = self
            .scope
            .codedeploy
            .get_deployment_group()
            .application_name(application)
            .deployment_group_name(group)
            .send()
            .await;
        let output = match sent {
            Ok(output) => output,
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_deployment_group_does_not_exist_exception() || s.is_application_does_not_exist_exception()
                }) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(error_text(&e)),
        };
        let info = output.deployment_group_info;
        Ok(Some(GroupFacts {
            compute_platform: info.as_ref().and_then(|i| i.compute_platform.as_ref()).map(|p| p.as_str().to_owned()),
            deployment_config: info.and_then(|i| i.deployment_config_name).filter(|c| !c.is_empty()),
        }))
    }

    async fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>, String> {
        let mut tags = Vec::new();
        let mut token: Option<String> = None;
        loop {
            self.scope.limit.acquire().await;
            let page = self
                .scope
                .codedeploy
                .list_tags_for_resource()
                .resource_arn(arn)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| error_text(&e))?;
            for tag in page.tags.unwrap_or_default() {
                if let Some(key) = tag.key {
                    tags.push((key, tag.value.unwrap_or_default()));
                }
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => return Ok(tags),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::group_info::GroupLabelArgs;
    use crate::ingest::{Exporter, Writer, WriterOptions};
    use crate::metrics::Source;

    #[test]
    fn arns_follow_the_partition() {
        let key = GroupKey {
            account_id: "111122223333".into(),
            region: "cn-north-1".into(),
            application: "shop".into(),
            deployment_group: "prod".into(),
        };
        assert_eq!(group_arn(&key), "arn:aws-cn:codedeploy:cn-north-1:111122223333:deploymentgroup:shop/prod");
        let key = GroupKey { region: "us-east-1".into(), ..key };
        assert_eq!(application_arn(&key), "arn:aws:codedeploy:us-east-1:111122223333:application:shop");
    }

    /// A fake CodeDeploy: groups, tags by ARN, failures to come, and the calls made.
    #[derive(Default)]
    struct FakeGroups {
        groups: BTreeMap<(String, String), GroupFacts>,
        tags: BTreeMap<String, Vec<(String, String)>>,
        failing: Mutex<u32>,
        calls: Mutex<Vec<String>>,
    }

    impl FakeGroups {
        fn calls(&self) -> Vec<String> {
            std::mem::take(&mut *self.calls.lock().unwrap())
        }
    }

    impl GroupsApi for FakeGroups {
        async fn get_group(&self, application: &str, group: &str) -> Result<Option<GroupFacts>, String> {
            self.calls.lock().unwrap().push(format!("get {application}/{group}"));
            let mut failing = self.failing.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err("ThrottlingException: Rate exceeded".into());
            }
            Ok(self.groups.get(&(application.to_owned(), group.to_owned())).cloned())
        }

        async fn list_tags(&self, arn: &str) -> Result<Vec<(String, String)>, String> {
            self.calls.lock().unwrap().push(format!("tags {}", arn.splitn(6, ':').nth(5).unwrap_or(arn)));
            Ok(self.tags.get(arn).cloned().unwrap_or_default())
        }
    }

    const MIN: Millis = 60_000;

    fn event(account: &str, group: &str, id: &str) -> Vec<u8> {
        serde_json::json!({
            "version": "0", "id": format!("e-{id}"), "source": "aws.codedeploy", "account": account,
            "detail-type": "CodeDeploy Deployment State-change Notification",
            "time": "2026-11-26T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": { "region": "us-east-1", "application": "shop", "deploymentId": id, "state": "START", "deploymentGroup": group }
        })
        .to_string()
        .into_bytes()
    }

    #[tokio::test]
    async fn due_groups_are_read_once_per_refresh_and_failures_back_off() {
        let labels = GroupLabelArgs { from_tags: vec!["Environment=environment".into()], production_groups: None };
        let exporter = SharedExporter::new(Exporter::new(2 * MIN).with_group_labels(labels.validate().expect("valid")));
        let options = WriterOptions { settle_interval: Duration::from_secs(3600), retention_ms: 40 * 24 * 60 * MIN, max_batch: 64 };
        let (writer, ingest) = Writer::new(exporter.clone(), None, options);
        tokio::spawn(writer.run());
        // The third group is in an account this scope does not poll: never read.
        for (account, group, id) in
            [("111111111111", "prod", "d-000000001"), ("111111111111", "staging", "d-000000002"), ("222222222222", "prod", "d-000000003")]
        {
            ingest.submit(Source::Webhook, event(account, group, id)).await.expect("applied");
        }
        let mut api = FakeGroups::default();
        for group in ["prod", "staging"] {
            let facts = GroupFacts { compute_platform: Some("Server".into()), deployment_config: Some("CodeDeployDefault.OneAtATime".into()) };
            api.groups.insert(("shop".into(), group.into()), facts);
            let arn = format!("arn:aws:codedeploy:us-east-1:111111111111:deploymentgroup:shop/{group}");
            api.tags.insert(arn, vec![("Environment".into(), group.into())]);
        }
        *api.failing.lock().unwrap() = 1;
        let mut reader = GroupReader::new("111111111111", "us-east-1", Duration::from_secs(3600));
        let now = 1_000 * MIN;

        // The first group's read fails; the other's is read, its application's tags once.
        assert_eq!(reader.pass(&api, &exporter, &ingest, now).await, Pass { read: 1, failed: 1 });
        assert_eq!(api.calls(), ["get shop/prod", "get shop/staging", "tags deploymentgroup:shop/staging", "tags application:shop"]);
        assert_eq!(reader.pass(&api, &exporter, &ingest, now + 10_000).await, Pass::default(), "backing off");
        assert_eq!(reader.pass(&api, &exporter, &ingest, now + 30_000).await, Pass { read: 1, failed: 0 });
        assert_eq!(reader.retry_len(), 0);
        api.calls();
        assert_eq!(reader.pass(&api, &exporter, &ingest, now + 30 * MIN).await, Pass::default(), "nothing due within the hour");
        assert!(api.calls().is_empty());

        let text = exporter.lock().exposition(now).render(crate::metrics::Format::Text);
        let info = |group: &str, environment: &str, production: &str| {
            format!("codedeploy_deployment_group_info{{account_id=\"111111111111\",region=\"us-east-1\",application=\"shop\",deployment_group=\"{group}\",compute_platform=\"Server\",deployment_config=\"CodeDeployDefault.OneAtATime\",production=\"{production}\",environment=\"{environment}\"}} 1")
        };
        assert!(text.contains(&info("prod", "prod", "true")), "{text}");
        assert!(text.contains(&info("staging", "staging", "false")), "{text}");
        let elsewhere = "codedeploy_deployment_group_info{account_id=\"222222222222\",region=\"us-east-1\",application=\"shop\",deployment_group=\"prod\",compute_platform=\"unknown\",deployment_config=\"unknown\",production=\"false\",environment=\"\"} 1";
        assert!(text.contains(elsewhere), "{text}");

        // An hour later both are read again.
        assert_eq!(reader.pass(&api, &exporter, &ingest, now + 61 * MIN).await, Pass { read: 2, failed: 0 });
    }
}
