//! DORA lead time for changes: commit time → deployment completeTime.
//!
//! The fold decides each change deployment's lead time exactly once. Pure
//! sources are read here, in the fold: the deployment description
//! (`commit=<sha> committed_at=<RFC3339>`, keys configurable) and CI commit
//! records posted to the webhook (kept in the ledger). Sources that need I/O
//! (S3 object metadata, git repositories on disk) are read by the commit-time
//! resolver (`sources::commits`), which submits what it found as observations.
//!
//! Only a succeeded change has a lead time (DORA: commit → successfully
//! running). When one is counted, its lead time is
//! - observed, when a commit time is known and no configured resolver could
//!   improve on it (find the *first* commit of the change);
//! - pending, when the resolver can still look it up: the deployment's lookup
//!   waits in the ledger meta until the resolver answers (a commit time, or
//!   the reason none was found), then it is observed or counted unknown;
//! - counted unknown (`codedeploy_lead_time_unknown_total{reason}`) otherwise.
//!
//! The counted deployment's settled entry remembers that its lead time was
//! decided, so a re-delivered answer or a restart never counts it twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Facts;
use crate::domain::{CommitKind, CommitSource, CommitTime, DeploymentRef, LeadTimeUnknown, Millis, Revision};

/// How lead time is looked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadTimeConfig {
    /// Description key holding the commit sha (`commit`).
    pub commit_key: String,
    /// Description key holding the commit time (`committed_at`).
    pub time_key: String,
    /// The resolver reads S3 object metadata of S3 revisions.
    pub s3: bool,
    /// The resolver reads git repositories on disk.
    pub git: bool,
}

impl Default for LeadTimeConfig {
    fn default() -> Self {
        LeadTimeConfig { commit_key: "commit".into(), time_key: "committed_at".into(), s3: false, git: false }
    }
}

/// What the resolver needs to find a counted deployment's commit time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadLookup {
    pub revision: Option<Revision>,
    /// The deployed commit, when the revision or description names it.
    pub commit: Option<String>,
    /// The commit of the group's previous succeeded change deployment.
    pub previous_commit: Option<String>,
    /// The best commit time the pure sources gave, used when the resolver finds nothing better.
    pub fallback: Option<CommitTime>,
    pub finished_at: Millis,
}

/// A lookup for the resolver, with the deployment it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLookup {
    pub deployment: DeploymentRef,
    pub lookup: LeadLookup,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Decision {
    Observe(CommitTime),
    Unknown(LeadTimeUnknown),
    Pending(LeadLookup),
}

/// Longest value of a description key we read.
const MAX_VALUE_CHARS: usize = 128;

/// Reads `<commit_key>=<sha>` and `<time_key>=<RFC3339 or epoch seconds>` from
/// a deployment description. Pairs are separated by whitespace, commas,
/// semicolons or `|`; keys match case-insensitively; values may be quoted.
/// The first valid value of each key wins. A sha must be 7 to 64 hex digits
/// (returned in lower case); anything else is not a commit.
pub fn parse_description(text: &str, commit_key: &str, time_key: &str) -> (Option<String>, Option<Millis>) {
    let (mut commit, mut time) = (None, None);
    let separators = |c: char| c.is_whitespace() || matches!(c, ',' | ';' | '|');
    for token in text.split(separators) {
        let Some((key, value)) = token.split_once('=') else { continue };
        let value = value.trim_end_matches(['.', ')']).trim_matches(|c| matches!(c, '"' | '\'' | '`'));
        if value.is_empty() || value.chars().count() > MAX_VALUE_CHARS {
            continue;
        }
        if commit.is_none() && key.eq_ignore_ascii_case(commit_key) {
            commit = parse_sha(value);
        } else if time.is_none() && key.eq_ignore_ascii_case(time_key) {
            time = parse_time(value);
        }
    }
    (commit, time)
}

/// A commit sha: 7 to 64 hex digits, lower-cased.
pub fn parse_sha(value: &str) -> Option<String> {
    let valid = (7..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| value.to_ascii_lowercase())
}

/// RFC 3339, or epoch seconds (as CI scripts print `git log -1 --format=%ct`).
pub fn parse_time(value: &str) -> Option<Millis> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(value) {
        return Some(at.timestamp_millis());
    }
    let seconds: i64 = value.parse().ok()?;
    // Plausible epoch seconds only (2001..2286): a bare number may be anything.
    (1_000_000_000..10_000_000_000).contains(&seconds).then_some(seconds * 1000)
}

/// The names a webhook commit record may give a revision by.
pub fn revision_names(revision: &Revision) -> Vec<String> {
    match revision {
        Revision::S3 { bucket, key, version, etag } => {
            let base = format!("s3://{bucket}/{key}");
            let mut names: Vec<String> = [version, etag].into_iter().flatten().map(|v| format!("{base}@{v}")).collect();
            if names.is_empty() {
                names.push(base);
            }
            names
        }
        Revision::GitHub { repository, commit } => vec![format!("github:{repository}@{commit}")],
        Revision::Inline => Vec::new(),
    }
}

/// The key of a webhook commit record in the ledger's commit table.
pub(super) fn commit_key(sha: &str) -> String {
    format!("commit:{}", sha.to_ascii_lowercase())
}

pub(super) fn revision_key(name: &str) -> String {
    format!("revision:{name}")
}

/// The deployed commit: the GitHub revision's, else the description's.
pub(super) fn deployed_commit(config: &LeadTimeConfig, facts: &Facts) -> Option<String> {
    match facts.revision.as_ref().map(|r| &r.value) {
        Some(Revision::GitHub { commit, .. }) => parse_sha(commit),
        _ => None,
    }
    .or_else(|| {
        let description = Facts::text(&facts.description)?;
        parse_description(description, &config.commit_key, &config.time_key).0
    })
}

/// Decides a counted change deployment's lead time from its facts and the
/// webhook commit records.
pub(super) fn decide(
    config: &LeadTimeConfig,
    facts: &Facts,
    commits: &BTreeMap<String, Millis>,
    finished_at: Millis,
) -> Decision {
    let revision = facts.revision.as_ref().map(|r| r.value.clone());
    let sha = deployed_commit(config, facts);
    let mut best = facts.commit_time;
    let mut offer = |found: CommitTime| {
        if best.is_none_or(|b| found.better_than(&b)) {
            best = Some(found);
        }
    };
    if let Some(description) = Facts::text(&facts.description) {
        if let (_, Some(at)) = parse_description(description, &config.commit_key, &config.time_key) {
            offer(CommitTime { kind: CommitKind::Deployed, source: CommitSource::Description, at });
        }
    }
    let mut found: Vec<Millis> = Vec::new();
    if let Some(sha) = &sha {
        // The same commit, however abbreviated: records of this sha or longer
        // ones it abbreviates, and records that abbreviate it (7 digits at least).
        let key = commit_key(sha);
        found.extend(commits.range(key.clone()..).take_while(|(k, _)| k.starts_with(&key)).map(|(_, at)| *at));
        found.extend((7..sha.len()).filter_map(|n| commits.get(&commit_key(&sha[..n]))));
    }
    for name in revision.iter().flat_map(revision_names) {
        found.extend(commits.get(&revision_key(&name)));
    }
    for at in found {
        offer(CommitTime { kind: CommitKind::Deployed, source: CommitSource::Webhook, at });
    }
    if let Some(found) = best.filter(|b| b.kind == CommitKind::First) {
        return Decision::Observe(found);
    }
    let s3_revision = matches!(revision, Some(Revision::S3 { .. }));
    let resolver_can_help = facts.lead_time_unknown.is_none()
        && ((config.git && (sha.is_some() || (config.s3 && s3_revision))) || (best.is_none() && config.s3 && s3_revision));
    if resolver_can_help {
        return Decision::Pending(LeadLookup { revision, commit: sha, previous_commit: None, fallback: best, finished_at });
    }
    match best {
        Some(found) => Decision::Observe(found),
        None => Decision::Unknown(facts.lead_time_unknown.unwrap_or(
            if sha.is_none() && matches!(revision, None | Some(Revision::Inline)) {
                LeadTimeUnknown::NoRevision
            } else {
                LeadTimeUnknown::NoSourceConfigured
            },
        )),
    }
}

/// Decides a pending lookup once the resolver has answered.
pub(super) fn resolve(lookup: &LeadLookup, found: Option<CommitTime>, reason: Option<LeadTimeUnknown>) -> Decision {
    let best = match (lookup.fallback, found) {
        (Some(a), Some(b)) => Some(if b.better_than(&a) { b } else { a }),
        (a, b) => a.or(b),
    };
    match best {
        Some(found) => Decision::Observe(found),
        None => Decision::Unknown(reason.unwrap_or(LeadTimeUnknown::NotFound)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compact_str::CompactString;
    use crate::domain::{Observation, Provenance, Status};
    use crate::ledger::{GroupSnapshot, Ledger, QualityIssue};

    const MIN: Millis = 60_000;

    /// A finished deployment as the poller reports it.
    fn deployment(id: &str, creator: &str, completed: Millis, description: Option<&str>, revision: Option<Revision>) -> Observation {
        let mut o = Observation::new(
            DeploymentRef { account: Some("111111111111".into()), region: Some("us-east-1".into()), deployment_id: id.into() },
            Provenance::Api,
        );
        o.application = Some("app".into());
        o.deployment_group = Some("prod".into());
        o.status = Some(Status::Succeeded);
        o.create_time = Some(completed - MIN);
        o.complete_time = Some(completed);
        o.creator = Some(creator.into());
        o.description = description.map(CompactString::from);
        o.revision = revision;
        o
    }

    fn github(commit: &str) -> Option<Revision> {
        Some(Revision::GitHub { repository: "org/app".into(), commit: commit.into() })
    }

    fn group(ledger: &Ledger) -> GroupSnapshot {
        ledger.snapshot(1000 * MIN).groups.into_iter().next().expect("one group")
    }

    fn unknown(group: &GroupSnapshot, reason: LeadTimeUnknown) -> u64 {
        group.stats.lead_time_unknown[&reason]
    }

    fn at(minute: i64) -> String {
        chrono::DateTime::from_timestamp_millis(minute * MIN).expect("time").to_rfc3339()
    }

    #[test]
    fn descriptions_give_lead_times_once_per_change_and_never_for_rollbacks_or_scaling() {
        let mut ledger = Ledger::new(2 * MIN);
        let mut rollback = deployment("d-3", "codeDeployRollback", 30 * MIN, Some(&format!("committed_at={}", at(1))), None);
        rollback.rollback_of = Some("d-2".into());
        let observations = [
            deployment("d-1", "user", 10 * MIN, Some(&format!("commit=abcdef1 committed_at={}", at(4))), None),
            deployment("d-2", "CodeDeploy", 20 * MIN, Some(&format!("ci run 7, committed_at={}", at(5))), None),
            rollback,
            deployment("d-4", "autoscaling", 40 * MIN, Some(&format!("committed_at={}", at(1))), None),
            deployment("d-5", "user", 50 * MIN, None, None),
            deployment("d-6", "user", 60 * MIN, Some("no commit here"), github("0123456789abcdef0123456789abcdef01234567")),
            // Clock skew: committed after the deployment finished.
            deployment("d-7", "user", 70 * MIN, Some(&format!("committed_at={}", at(71))), None),
        ];
        for o in &observations {
            ledger.apply(o, 0);
        }
        for o in &observations {
            assert!(!ledger.apply(o, 0), "a re-delivery is a duplicate");
        }
        ledger.settle(0, true);
        for o in &observations {
            ledger.apply(o, MIN);
        }
        ledger.settle(MIN, true);
        let g = group(&ledger);
        assert_eq!(g.stats.lead_time.count, 3, "d-1, d-2 and the clamped d-7");
        assert_eq!(g.stats.lead_time.sum_ms, 6 * MIN + 15 * MIN);
        assert_eq!(unknown(&g, LeadTimeUnknown::NoRevision), 1, "d-5 has nothing to look up");
        assert_eq!(unknown(&g, LeadTimeUnknown::NoSourceConfigured), 1, "d-6 names a commit, no source knows it");
        assert_eq!(unknown(&g, LeadTimeUnknown::NotFound) + unknown(&g, LeadTimeUnknown::SourceError), 0);
        let snapshot = ledger.snapshot(1000 * MIN);
        assert_eq!(snapshot.data_quality.get(&QualityIssue::NegativeLeadTime), Some(&1));
        assert_eq!(snapshot.lead_sources.get(&(CommitSource::Description, CommitKind::Deployed)), Some(&3));
        let day = &g.windows[0];
        assert!((day.lead_time[0] - 6.0 * 60.0).abs() < 1.0, "median of 0, 6 and 15 minutes: {:?}", day.lead_time);
    }

    #[test]
    fn only_succeeded_changes_have_a_lead_time() {
        let mut ledger = Ledger::new(2 * MIN);
        let described = |id: &str, status: Status, completed: Millis| {
            let mut o = deployment(id, "user", completed, Some(&format!("committed_at={}", at(1))), None);
            o.status = Some(status);
            o
        };
        for o in [described("d-1", Status::Failed, 10 * MIN), described("d-2", Status::Stopped, 20 * MIN), described("d-3", Status::Succeeded, 30 * MIN)] {
            ledger.apply(&o, 0);
        }
        ledger.settle(0, true);
        let g = group(&ledger);
        assert_eq!((g.stats.lead_time.count, g.stats.lead_time.sum_ms), (1, 29 * MIN), "d-3 alone");
        assert_eq!(LeadTimeUnknown::ALL.iter().map(|r| unknown(&g, *r)).sum::<u64>(), 0, "no failed change is counted unknown either");
        assert_eq!(g.windows[0].lead_time[0], 29.0 * 60.0);
    }

    #[test]
    fn webhook_commit_records_match_by_commit_or_revision_and_may_arrive_first() {
        let mut ledger = Ledger::new(2 * MIN);
        let record = |revision: Option<&str>, commit: Option<&str>, minute: i64| {
            let mut o = Observation::new(DeploymentRef::default(), Provenance::Api);
            o.commit_record = Some(crate::domain::CommitRecord {
                revision: revision.map(str::to_owned),
                commit: commit.map(str::to_owned),
                committed_at: minute * MIN,
            });
            o
        };
        assert!(ledger.apply(&record(None, Some("ABCDEF1"), 2), 0));
        assert!(!ledger.apply(&record(None, Some("abcdef1"), 2), 0), "same record again");
        assert!(ledger.apply(&record(Some("s3://b/app.zip@v7"), None, 3), 0));
        assert!(ledger.apply(&record(None, Some("0123456789abcdef0123456789abcdef01234567"), 4), 0));
        assert!(ledger.apply(&record(None, Some("fedcba9"), 5), 0));
        ledger.apply(&deployment("d-1", "user", 10 * MIN, None, github("abcdef1")), 0);
        let s3 = Revision::S3 { bucket: "b".into(), key: "app.zip".into(), version: Some("v7".into()), etag: None };
        ledger.apply(&deployment("d-2", "user", 20 * MIN, None, Some(s3)), 0);
        // Abbreviated either way: the description's short sha, the record's short sha.
        ledger.apply(&deployment("d-3", "user", 30 * MIN, Some("commit=0123456789ab"), None), 0);
        ledger.apply(&deployment("d-4", "user", 40 * MIN, Some("commit=fedcba9876543210fedcba9876543210fedcba98"), None), 0);
        ledger.apply(&deployment("d-5", "user", 50 * MIN, Some("commit=fedcba8"), None), 0);
        ledger.settle(0, true);
        let g = group(&ledger);
        assert_eq!((g.stats.lead_time.count, g.stats.lead_time.sum_ms), (4, 8 * MIN + 17 * MIN + 26 * MIN + 35 * MIN));
        assert_eq!(ledger.snapshot(0).lead_sources.get(&(CommitSource::Webhook, CommitKind::Deployed)), Some(&4));
        assert_eq!(unknown(&g, LeadTimeUnknown::NoSourceConfigured), 1, "d-5 is another commit");
    }

    #[test]
    fn the_resolver_answers_after_settling_once_and_first_commits_win() {
        let mut ledger = Ledger::new(2 * MIN);
        ledger.set_lead_time(LeadTimeConfig { git: true, ..LeadTimeConfig::default() });
        let first = "1111111111111111111111111111111111111111";
        let second = "2222222222222222222222222222222222222222";
        ledger.apply(&deployment("d-1", "user", 10 * MIN, None, github(first)), 0);
        ledger.apply(&deployment("d-2", "user", 20 * MIN, Some(&format!("committed_at={}", at(15))), github(second)), 0);
        ledger.apply(&deployment("d-3", "user", 30 * MIN, None, None), 0);
        ledger.settle(0, true);
        let lookups = ledger.lead_lookups();
        assert_eq!(lookups.len(), 2, "d-3 has nothing to look up: counted unknown at once");
        assert_eq!(lookups[1].lookup.previous_commit.as_deref(), Some(first), "d-2's change starts after d-1's commit");
        assert_eq!(lookups[1].lookup.fallback.map(|f| f.at), Some(15 * MIN));
        assert_eq!(group(&ledger).stats.lead_time.count, 0, "nothing observed while waiting");

        let answer = |id: &str, found: Option<CommitTime>, reason: Option<LeadTimeUnknown>| {
            let mut o = Observation::new(lookups.iter().find(|l| l.deployment.deployment_id == id).expect("lookup").deployment.clone(), Provenance::Api);
            o.commit_time = found;
            o.lead_time_unknown = reason;
            o
        };
        // d-1: not found anywhere. d-2: git finds the change's first commit.
        let not_found = answer("d-1", None, Some(LeadTimeUnknown::NotFound));
        let first_commit = answer("d-2", Some(CommitTime { kind: CommitKind::First, source: CommitSource::Git, at: 12 * MIN }), None);
        assert!(ledger.apply(&not_found, MIN));
        assert!(ledger.apply(&first_commit, MIN));
        assert!(!ledger.apply(&first_commit, MIN), "a re-delivered answer changes nothing");
        assert!(!ledger.apply(&answer("d-1", Some(CommitTime { kind: CommitKind::Deployed, source: CommitSource::Git, at: MIN }), None), MIN));
        ledger.settle(MIN, false);
        assert!(ledger.lead_lookups().is_empty());
        let g = group(&ledger);
        assert_eq!((g.stats.lead_time.count, g.stats.lead_time.sum_ms), (1, 8 * MIN));
        assert_eq!(unknown(&g, LeadTimeUnknown::NotFound), 1);
        assert_eq!(unknown(&g, LeadTimeUnknown::NoRevision), 1);
        assert_eq!(ledger.snapshot(0).lead_sources.get(&(CommitSource::Git, CommitKind::First)), Some(&1));
    }

    #[test]
    fn a_fallback_is_used_when_the_resolver_finds_nothing_and_lookups_end_without_a_resolver() {
        let mut ledger = Ledger::new(2 * MIN);
        ledger.set_lead_time(LeadTimeConfig { git: true, ..LeadTimeConfig::default() });
        let sha = "3333333333333333333333333333333333333333";
        ledger.apply(&deployment("d-1", "user", 20 * MIN, Some(&format!("committed_at={}", at(15))), github(sha)), 0);
        ledger.apply(&deployment("d-2", "user", 30 * MIN, None, github(sha)), 0);
        ledger.settle(0, true);
        let mut answer = Observation::new(ledger.lead_lookups()[0].deployment.clone(), Provenance::Api);
        answer.lead_time_unknown = Some(LeadTimeUnknown::SourceError);
        ledger.apply(&answer, MIN);
        assert_eq!(group(&ledger).stats.lead_time.sum_ms, 5 * MIN, "the description's time stands");
        // The resolver is switched off (a restart without it): d-2 is decided from what is known.
        ledger.set_lead_time(LeadTimeConfig::default());
        ledger.settle(2 * MIN, false);
        assert!(ledger.lead_lookups().is_empty());
        assert_eq!(unknown(&group(&ledger), LeadTimeUnknown::NoSourceConfigured), 1);
    }

    fn parse(text: &str) -> (Option<String>, Option<Millis>) {
        parse_description(text, "commit", "committed_at")
    }

    const T: Millis = 1_700_000_000_000;

    #[test]
    fn descriptions_give_commit_and_time() {
        assert_eq!(parse("commit=abcdef1 committed_at=2023-11-14T22:13:20Z"), (Some("abcdef1".into()), Some(T)));
        assert_eq!(parse("Deploy by CI; COMMIT=ABCDEF1, Committed_At=\"2023-11-14T23:13:20+01:00\"."), (Some("abcdef1".into()), Some(T)));
        assert_eq!(parse("committed_at=1700000000 commit='0123456789abcdef0123456789abcdef01234567'").1, Some(T));
        assert_eq!(parse("release 1.2\ncommit=abcdef1\tcommitted_at=2023-11-14T22:13:20.000Z"), (Some("abcdef1".into()), Some(T)));
    }

    #[test]
    fn description_edge_cases_give_nothing_rather_than_garbage() {
        assert_eq!(parse(""), (None, None));
        assert_eq!(parse("commit= committed_at="), (None, None));
        assert_eq!(parse("commit=xyz123456 committed_at=yesterday"), (None, None), "not hex, not a time");
        assert_eq!(parse("commit=abc committed_at=42"), (None, None), "too short, not plausible epoch");
        assert_eq!(parse("my_commit=abcdef1 recommitted_at=2023-11-14T22:13:20Z"), (None, None), "keys match whole");
        assert_eq!(parse("commit:abcdef1 committed_at 2023-11-14T22:13:20Z"), (None, None), "only key=value");
        assert_eq!(parse(&format!("commit={}", "a".repeat(65))), (None, None));
        assert_eq!(parse("committed_at=2023-11-14T22:13:20Z committed_at=2020-01-01T00:00:00Z").1, Some(T), "first wins");
        assert_eq!(parse("commit=zzzzzzz commit=abcdef1").0, Some("abcdef1".into()), "first valid wins");
        assert_eq!(parse("2023-11-14 commit=é committed_at=2023-11-14T22:13:20"), (None, None), "no offset is no RFC 3339");
    }

    #[test]
    fn keys_are_configurable() {
        let text = "sha=abcdef1 built=2023-11-14T22:13:20Z commit=1234567";
        assert_eq!(parse_description(text, "sha", "built"), (Some("abcdef1".into()), Some(T)));
    }

    #[test]
    fn revisions_are_named_for_webhook_records() {
        let s3 = Revision::S3 { bucket: "b".into(), key: "k.zip".into(), version: Some("v1".into()), etag: Some("e1".into()) };
        assert_eq!(revision_names(&s3), vec!["s3://b/k.zip@v1", "s3://b/k.zip@e1"]);
        let plain = Revision::S3 { bucket: "b".into(), key: "k.zip".into(), version: None, etag: None };
        assert_eq!(revision_names(&plain), vec!["s3://b/k.zip"]);
        let gh = Revision::GitHub { repository: "o/r".into(), commit: "abc".into() };
        assert_eq!(revision_names(&gh), vec!["github:o/r@abc"]);
    }
}
