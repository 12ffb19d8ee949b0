use std::path::Path;
use std::process::Command;
use std::sync::Mutex;

use super::*;
use crate::ledger::LeadLookup;

const HOUR: i64 = 3600;
/// 2024-01-01T00:00:00Z in seconds.
const EPOCH: i64 = 1_704_067_200;

/// Commits `message` with author and committer time `at` (seconds); returns its sha.
fn commit(repo: &Path, message: &str, at: i64) -> String {
    let date = format!("{at} +0000");
    let run = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(repo)
            .env("GIT_AUTHOR_DATE", &date)
            .env("GIT_COMMITTER_DATE", &date)
            .env("GIT_AUTHOR_NAME", "ci")
            .env("GIT_AUTHOR_EMAIL", "ci@example.com")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.com")
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    run(&["commit", "--allow-empty", "-q", "-m", message]);
    run(&["rev-parse", "HEAD"])
}

/// A repository with four commits an hour apart: c1 was deployed, then
/// c2..c4 make up the next change, c4 being deployed.
pub(super) fn repository() -> (tempfile::TempDir, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let init = Command::new("git").args(["init", "-q", "-b", "main"]).current_dir(dir.path()).output().expect("git init");
    assert!(init.status.success());
    let shas = (1..=4).map(|n| commit(dir.path(), &format!("c{n}"), EPOCH + n * HOUR)).collect();
    (dir, shas)
}

#[test]
fn git_gives_the_deployed_and_the_first_commit_of_a_change() {
    let (dir, shas) = repository();
    let ms = |n: i64| (EPOCH + n * HOUR) * 1000;
    let times = git_times(dir.path(), &shas[3], Some(&shas[0])).expect("reads").expect("found");
    assert_eq!(times, GitTimes { deployed: ms(4), first: Some(ms(2)) });
    // Abbreviated shas work; without a previous commit there is no first commit.
    let times = git_times(dir.path(), &shas[3][..10], None).expect("reads").expect("found");
    assert_eq!(times, GitTimes { deployed: ms(4), first: None });
    // Redeploying the previous commit: no new commit in the change.
    assert_eq!(git_times(dir.path(), &shas[0], Some(&shas[0])).expect("reads").expect("found").first, None);
    assert_eq!(git_times(dir.path(), "0123456789abcdef0123456789abcdef01234567", None).expect("reads"), None);
    assert!(git_times(&dir.path().join("missing"), &shas[0], None).is_err());
}

/// S3 metadata from a table; errors for buckets named `broken`.
#[derive(Default)]
struct FakeObjects {
    objects: HashMap<(String, String), HashMap<String, String>>,
    calls: Mutex<u32>,
}

impl ObjectMetadata for FakeObjects {
    async fn head(&self, _: Option<&str>, bucket: &str, key: &str, _: Option<&str>) -> Result<Option<HashMap<String, String>>, String> {
        *self.calls.lock().expect("lock") += 1;
        if bucket == "broken" {
            return Err("503 SlowDown".into());
        }
        Ok(self.objects.get(&(bucket.to_owned(), key.to_owned())).cloned())
    }
}

fn options(git: Vec<(String, PathBuf)>) -> LeadTimeOptions {
    LeadTimeOptions {
        ledger: LeadTimeConfig { s3: true, git: !git.is_empty(), ..LeadTimeConfig::default() },
        s3_time_key: "commit-time".into(),
        s3_commit_key: "commit".into(),
        git,
        first_commit: true,
        interval: Duration::from_secs(1),
    }
}

fn pending(id: &str, revision: Revision, previous: Option<&str>) -> PendingLookup {
    PendingLookup {
        deployment: DeploymentRef { account: Some("1".into()), region: Some("us-east-1".into()), deployment_id: id.into() },
        lookup: LeadLookup { revision: Some(revision), commit: None, previous_commit: previous.map(str::to_owned), fallback: None, finished_at: 0 },
    }
}

fn s3(bucket: &str, key: &str) -> Revision {
    Revision::S3 { bucket: bucket.into(), key: key.into(), version: Some("v1".into()), etag: None }
}

#[tokio::test]
async fn s3_metadata_then_git_then_not_found_or_source_error() {
    let (dir, shas) = repository();
    let mut objects = FakeObjects::default();
    let meta = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    objects.objects.insert(("b".into(), "timed.zip".into()), meta(&[("commit-time", "2024-01-01T05:00:00Z")]));
    objects.objects.insert(("b".into(), "sha.zip".into()), meta(&[("commit", &shas[3])]));
    let mut resolver = Resolver::new(options(vec![("org/app".into(), dir.path().to_owned())]), objects);
    let lookups = vec![
        pending("d-timed", s3("b", "timed.zip"), None),
        pending("d-sha", s3("b", "sha.zip"), Some(&shas[0])),
        pending("d-missing", s3("b", "missing.zip"), None),
        pending("d-broken", s3("broken", "x.zip"), None),
        pending("d-github", Revision::GitHub { repository: "org/app".into(), commit: shas[2].clone() }, None),
    ];
    let mut lookups_github = lookups.clone();
    lookups_github[4].lookup.commit = Some(shas[2].clone());
    let answers = resolver.step(&lookups_github).await;
    let found = |id: &str| answers.iter().find(|a| a.deployment.deployment_id == id).map(|a| (a.commit_time, a.lead_time_unknown));
    let ms = |n: i64| (EPOCH + n * HOUR) * 1000;
    assert_eq!(found("d-timed"), Some((Some(CommitTime { kind: CommitKind::Deployed, source: CommitSource::S3, at: ms(5) }), None)));
    assert_eq!(
        found("d-sha"),
        Some((Some(CommitTime { kind: CommitKind::First, source: CommitSource::Git, at: ms(2) }), None)),
        "the metadata's sha leads to git, which finds the change's first commit"
    );
    assert_eq!(found("d-missing"), Some((None, Some(LeadTimeUnknown::NotFound))));
    assert_eq!(found("d-github"), Some((Some(CommitTime { kind: CommitKind::Deployed, source: CommitSource::Git, at: ms(3) }), None)));
    assert_eq!(found("d-broken"), None, "a failing source is tried again next round");
    let broken = vec![lookups[3].clone()];
    assert!(resolver.step(&broken).await.is_empty());
    let last = resolver.step(&broken).await;
    assert_eq!(last[0].lead_time_unknown, Some(LeadTimeUnknown::SourceError), "after {MAX_ATTEMPTS} rounds");
    // Versioned revisions are cached: no second HeadObject for them.
    let calls = *resolver.objects.calls.lock().expect("lock");
    resolver.step(&lookups[..1]).await;
    assert_eq!(*resolver.objects.calls.lock().expect("lock"), calls);
}

#[test]
fn flags_are_validated() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        lead: LeadTimeArgs,
    }
    let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("x").chain(args.iter().copied())).expect("parses").lead.validate();
    let defaults = parse(&[]).expect("valid");
    assert!(!defaults.resolver_enabled());
    assert_eq!((defaults.ledger.commit_key.as_str(), defaults.ledger.time_key.as_str()), ("commit", "committed_at"));
    assert!(parse(&["--git.repository", "no-equals-sign"]).is_err());
    assert!(parse(&["--git.repository", "org/app=/does/not/exist"]).is_err());
    let on = parse(&["--lead-time.s3-metadata", "--git.repository", "org/app=/", "--git.first-commit", "false"]).expect("valid");
    assert!(on.ledger.s3 && on.ledger.git && !on.first_commit);
}

#[test]
fn waiting_lookups_survive_a_restart_and_are_answered_once() {
    use crate::ingest::Exporter;
    use crate::store::{RedbStore, Store};
    let dir = tempfile::tempdir().expect("tempdir");
    let config = LeadTimeConfig { git: true, ..LeadTimeConfig::default() };
    let mut deployment = Observation::new(
        DeploymentRef { account: Some("1".into()), region: Some("us-east-1".into()), deployment_id: "d-1".into() },
        Provenance::Api,
    );
    deployment.application = Some("app".into());
    deployment.deployment_group = Some("prod".into());
    deployment.status = Some(crate::domain::Status::Succeeded);
    deployment.create_time = Some(1_000);
    deployment.complete_time = Some(3_601_000);
    deployment.revision = Some(Revision::GitHub { repository: "org/app".into(), commit: "a".repeat(40) });
    {
        let mut store = RedbStore::open(dir.path()).expect("store");
        let mut exporter = Exporter::new(0).with_lead_time(config.clone());
        exporter.ingest_observations(Source::Poller, vec![deployment.clone()], 0).expect("within bounds");
        exporter.settle(0, true);
        exporter.commit_to(&mut store).expect("commit");
        assert_eq!(exporter.lead_lookups().len(), 1);
    }
    let store = RedbStore::open(dir.path()).expect("store");
    let mut exporter = Exporter::restore(0, store.load().expect("load")).with_lead_time(config);
    let lookups = exporter.lead_lookups();
    assert_eq!(lookups.len(), 1, "the lookup waits across the restart");
    let mut answer = Observation::new(lookups[0].deployment.clone(), Provenance::Api);
    answer.commit_time = Some(CommitTime { kind: CommitKind::Deployed, source: CommitSource::Git, at: 1_000 });
    exporter.ingest_observations(Source::LeadTime, vec![answer.clone()], 0).expect("within bounds");
    exporter.ingest_observations(Source::LeadTime, vec![answer], 0).expect("within bounds");
    exporter.ingest_observations(Source::Poller, vec![deployment], 0).expect("within bounds");
    exporter.settle(0, true);
    let snapshot = exporter.exposition(0).ledger;
    let lead = &snapshot.groups[0].stats.lead_time;
    assert_eq!((lead.count, lead.sum_ms), (1, 3_600_000));
    assert!(exporter.lead_lookups().is_empty());
}
