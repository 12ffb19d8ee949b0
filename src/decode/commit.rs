//! CI commit records, for lead time where nothing else knows the commit time:
//! `{"type":"commit","revision":"s3://bucket/key@version","commit":"<sha>","committed_at":"<RFC3339>"}`.
//! At least one of `revision` and `commit` is required; `committed_at` is RFC 3339
//! or epoch seconds. The record is about no deployment: the ledger keeps it and
//! matches it to deployments of that commit or revision when they are counted.

use super::json::{missing, Json, Path};
use super::{excerpt, DecodeError, Message};
use crate::domain::{CommitRecord, DeploymentRef, Observation, Provenance};
use crate::ledger::{parse_sha, parse_time};

/// Longest revision name kept.
const MAX_REVISION_CHARS: usize = 1024;

pub(super) fn record(message: &Message) -> Result<Observation, DecodeError> {
    let root = Path::Root;
    let kind = message.kind.required_string(&root, &["type"])?;
    if kind != "commit" {
        return Err(DecodeError::UnknownFormat { detail: format!("a message of type {} is no commit record", excerpt(kind)) });
    }
    let invalid = |key: &str, detail: &str| DecodeError::InvalidField { field: key.to_owned(), detail: detail.to_owned() };
    let commit = match message.commit.string(&root, &["commit"])? {
        Some(raw) => Some(parse_sha(raw).ok_or_else(|| invalid("commit", "expected 7 to 64 hex digits"))?),
        None => None,
    };
    let revision = message.revision.string(&root, &["revision"])?;
    if revision.is_some_and(|r| r.chars().count() > MAX_REVISION_CHARS) {
        return Err(invalid("revision", "longer than 1024 characters"));
    }
    if commit.is_none() && revision.is_none() {
        return Err(missing(&root, &["commit"]));
    }
    let committed_at = match message.committed_at.value(&["committed_at"]) {
        Some(Json::Str(s)) => parse_time(s),
        Some(Json::Number(n)) => n.as_i64().and_then(|n| parse_time(&n.to_string())),
        Some(_) => None,
        None => return Err(missing(&root, &["committed_at"])),
    }
    .ok_or_else(|| invalid("committed_at", "expected an RFC 3339 time or epoch seconds"))?;
    let mut observation = Observation::new(DeploymentRef::default(), Provenance::Api);
    observation.commit_record = Some(CommitRecord { revision: revision.map(str::to_owned), commit, committed_at });
    Ok(observation)
}
