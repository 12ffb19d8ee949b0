//! CI commit records, for lead time where nothing else knows the commit time:
//! `{"type":"commit","revision":"s3://bucket/key@version","commit":"<sha>","committed_at":"<RFC3339>"}`.
//! At least one of `revision` and `commit` is required; `committed_at` is RFC 3339
//! or epoch seconds. The record is about no deployment: the ledger keeps it and
//! matches it to deployments of that commit or revision when they are counted.

use serde_json::Value;

use super::fields::Fields;
use super::DecodeError;
use crate::domain::{CommitRecord, DeploymentRef, Observation, Provenance};
use crate::ledger::{parse_sha, parse_time};

/// Longest revision name kept.
const MAX_REVISION_CHARS: usize = 1024;

pub(super) fn record(mut message: Fields) -> Result<Observation, DecodeError> {
    let kind = message.required_string("type")?;
    if kind != "commit" {
        return Err(DecodeError::UnknownFormat { detail: format!("a message of type {} is no commit record", super::excerpt(&kind)) });
    }
    let invalid = |message: &Fields, key: &str, detail: &str| DecodeError::InvalidField {
        field: message.path_of(key),
        detail: detail.to_owned(),
    };
    let commit = match message.string("commit")? {
        Some(raw) => Some(parse_sha(&raw).ok_or_else(|| invalid(&message, "commit", "expected 7 to 64 hex digits"))?),
        None => None,
    };
    let revision = message.string("revision")?;
    if revision.as_ref().is_some_and(|r| r.chars().count() > MAX_REVISION_CHARS) {
        return Err(invalid(&message, "revision", "longer than 1024 characters"));
    }
    if commit.is_none() && revision.is_none() {
        return Err(message.missing("commit"));
    }
    let committed_at = match message.take("committed_at") {
        Some(Value::String(s)) => parse_time(&s),
        Some(Value::Number(n)) => n.as_i64().and_then(|n| parse_time(&n.to_string())),
        Some(_) => None,
        None => return Err(message.missing("committed_at")),
    }
    .ok_or_else(|| invalid(&message, "committed_at", "expected an RFC 3339 time or epoch seconds"))?;
    let mut observation = Observation::new(DeploymentRef::default(), Provenance::Api);
    observation.commit_record = Some(CommitRecord { revision, commit, committed_at });
    Ok(observation)
}
