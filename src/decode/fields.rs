//! Typed access to the fields of one JSON object, with errors that name the field.
//!
//! Every format is read through [`Fields`] so that the rules shared by all of them live
//! in one place: `null` and `""` mean "absent" (moto and SNS send both for missing
//! data), keys match case-insensitively when the exact spelling is missing (AWS spells
//! `ErrorCode`/`errorCode` and `SigningCertURL`/`SigningCertUrl` both ways), and a
//! nested object may arrive double-encoded as a JSON string (real SNS triggers do that).

use serde_json::{Map, Value};

use super::{excerpt, time, DecodeError};
use crate::domain::{Millis, Status, TargetStatus};

/// Deployment ids are `d-` plus nine characters in AWS and UUIDs in moto; anything
/// much longer is not an id and would only bloat the ledger.
const MAX_DEPLOYMENT_ID_LEN: usize = 128;

/// Target ids include ECS `cluster:service` pairs and Lambda function names.
const MAX_TARGET_ID_LEN: usize = 512;

/// Most targets one deployment can count in a status. CodeDeploy deploys to at most
/// a few thousand instances at once; a larger count is garbage, and summing counts
/// near `u64::MAX` (overviews, per-group target counters) would overflow.
const MAX_COUNT: u64 = 1_000_000;

/// One JSON object being decoded, consumed field by field.
///
/// A key argument may list alternative spellings separated by `|`
/// (`"lifecycleEventName|LifecycleEvent"`): the first one present wins and errors
/// name the first spelling.
pub(super) struct Fields {
    map: Map<String, Value>,
    /// Where this object sits in the message, e.g. `Records[0].Sns.Message`; empty at the top.
    path: String,
}

impl Fields {
    pub(super) fn new(map: Map<String, Value>, path: impl Into<String>) -> Fields {
        Fields {
            map,
            path: path.into(),
        }
    }

    /// Wraps `value`, which must be an object (an element of an array, usually).
    pub(super) fn from_value(value: Value, path: String) -> Result<Fields, DecodeError> {
        match value {
            Value::Object(map) => Ok(Fields::new(map, path)),
            other => Err(DecodeError::InvalidField {
                detail: format!("expected an object, found {}", kind(&other)),
                field: path,
            }),
        }
    }

    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// The full path of `key` inside this object, for error messages.
    pub(super) fn path_of(&self, key: &str) -> String {
        let first = key.split('|').next().unwrap_or(key);
        if self.path.is_empty() {
            first.to_owned()
        } else {
            format!("{}.{first}", self.path)
        }
    }

    /// Whether `key` is present with a non-null value (used to recognise formats).
    pub(super) fn has(&self, key: &str) -> bool {
        self.find(key)
            .and_then(|k| self.map.get(k))
            .is_some_and(|v| !v.is_null())
    }

    /// Up to `limit` key names, for telling the sender what we were given.
    pub(super) fn key_names(&self, limit: usize) -> Vec<String> {
        self.map.keys().take(limit).map(|k| excerpt(k)).collect()
    }

    pub(super) fn missing(&self, key: &str) -> DecodeError {
        DecodeError::MissingField {
            field: self.path_of(key),
        }
    }

    fn invalid(&self, key: &str, detail: String) -> DecodeError {
        DecodeError::InvalidField {
            field: self.path_of(key),
            detail,
        }
    }

    /// The stored key matching `key`: an exact spelling first, then any spelling that
    /// differs only in ASCII case.
    fn find(&self, key: &str) -> Option<&str> {
        let names = || key.split('|');
        names()
            .find_map(|name| self.map.get_key_value(name).map(|(k, _)| k.as_str()))
            .or_else(|| {
                names().find_map(|name| {
                    self.map
                        .keys()
                        .find(|k| k.eq_ignore_ascii_case(name))
                        .map(String::as_str)
                })
            })
    }

    /// Removes and returns the value of `key`; `null` counts as absent.
    pub(super) fn take(&mut self, key: &str) -> Option<Value> {
        let stored = self.find(key)?.to_owned();
        self.map.remove(&stored).filter(|v| !v.is_null())
    }

    /// An optional string; `""` counts as absent.
    pub(super) fn string(&mut self, key: &str) -> Result<Option<String>, DecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => {
                Err(self.invalid(key, format!("expected a string, found {}", kind(&other))))
            }
        }
    }

    pub(super) fn required_string(&mut self, key: &str) -> Result<String, DecodeError> {
        self.string(key)?.ok_or_else(|| self.missing(key))
    }

    /// A required deployment id.
    pub(super) fn deployment_id(&mut self, key: &str) -> Result<String, DecodeError> {
        self.optional_deployment_id(key)?
            .ok_or_else(|| self.missing(key))
    }

    /// A deployment id that may be absent (rollback links).
    pub(super) fn optional_deployment_id(
        &mut self,
        key: &str,
    ) -> Result<Option<String>, DecodeError> {
        self.string(key)?
            .map(|id| self.checked_id(key, id, MAX_DEPLOYMENT_ID_LEN))
            .transpose()
    }

    /// A required target id. EC2 instance ARNs (SNS instance triggers, the deprecated
    /// instance summaries) are reduced to the bare instance id that the API's
    /// `targetId` and EventBridge's `instanceId` carry, so all sources agree.
    pub(super) fn target_id(&mut self, key: &str) -> Result<String, DecodeError> {
        let raw = self.required_string(key)?;
        let id = match raw.rsplit_once(":instance/") {
            Some((prefix, instance)) if prefix.starts_with("arn:") => instance.to_owned(),
            _ => raw,
        };
        self.checked_id(key, id, MAX_TARGET_ID_LEN)
    }

    fn checked_id(&self, key: &str, id: String, max_len: usize) -> Result<String, DecodeError> {
        if id.is_empty() {
            Err(self.missing(key))
        } else if id.chars().count() > max_len {
            Err(self.invalid(key, format!("longer than {max_len} characters")))
        } else if id.chars().any(char::is_control) {
            Err(self.invalid(
                key,
                format!("contains control characters: {}", excerpt(&id)),
            ))
        } else {
            Ok(id)
        }
    }

    /// A deployment status in any vocabulary. Values without a meaning (`unknown`, or
    /// a status AWS adds later) give `None` rather than an error: the rest of the
    /// message is still worth keeping.
    pub(super) fn status(&mut self, key: &str) -> Result<Option<Status>, DecodeError> {
        Ok(self.string(key)?.as_deref().and_then(Status::parse))
    }

    /// A target or lifecycle-event status; unknown values give `None` as for [`Fields::status`].
    pub(super) fn target_status(&mut self, key: &str) -> Result<Option<TargetStatus>, DecodeError> {
        Ok(self.string(key)?.as_deref().and_then(TargetStatus::parse))
    }

    /// A timestamp in any of the encodings [`time::parse`] understands; `""` counts as absent.
    pub(super) fn time(&mut self, key: &str) -> Result<Option<Millis>, DecodeError> {
        self.take(key)
            .filter(|value| value.as_str().is_none_or(|s| !s.trim().is_empty()))
            .map(|value| {
                time::parse(&value).map_err(|detail| DecodeError::InvalidTimestamp {
                    field: self.path_of(key),
                    detail,
                })
            })
            .transpose()
    }

    /// A nested object, given either as an object or as a string holding its JSON
    /// encoding. `""` counts as absent; `"{}"` and `{}` give an empty object.
    pub(super) fn object(&mut self, key: &str) -> Result<Option<Fields>, DecodeError> {
        let path = self.path_of(key);
        match self.take(key) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(Fields::new(map, path))),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => match serde_json::from_str(&s) {
                Ok(Value::Object(map)) => Ok(Some(Fields::new(map, path))),
                Ok(other) => Err(DecodeError::InvalidField {
                    field: path,
                    detail: format!(
                        "expected an object encoded as a string, found {}",
                        kind(&other)
                    ),
                }),
                Err(err) => Err(DecodeError::InvalidJson {
                    path,
                    detail: err.to_string(),
                }),
            },
            Some(other) => {
                Err(self.invalid(key, format!("expected an object, found {}", kind(&other))))
            }
        }
    }

    pub(super) fn required_object(&mut self, key: &str) -> Result<Fields, DecodeError> {
        self.object(key)?.ok_or_else(|| self.missing(key))
    }

    /// An optional array.
    pub(super) fn array(&mut self, key: &str) -> Result<Option<Vec<Value>>, DecodeError> {
        match self.take(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => {
                Err(self.invalid(key, format!("expected an array, found {}", kind(&other))))
            }
        }
    }

    /// The elements of an array as objects, each with its own path (`key[i]`).
    pub(super) fn objects(&mut self, key: &str) -> Result<Option<Vec<Fields>>, DecodeError> {
        let Some(items) = self.array(key)? else {
            return Ok(None);
        };
        let path = self.path_of(key);
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| Fields::from_value(item, format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    pub(super) fn required_objects(&mut self, key: &str) -> Result<Vec<Fields>, DecodeError> {
        self.objects(key)?.ok_or_else(|| self.missing(key))
    }

    /// A count: an integer, or a string of digits (the SNS documentation sample quotes
    /// its counts), at most [`MAX_COUNT`]. Absent counts are zero.
    pub(super) fn count(&mut self, key: &str) -> Result<u64, DecodeError> {
        let count = match self.take(key) {
            None => Some(0),
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.trim().parse().ok(),
            Some(_) => None,
        };
        match count {
            Some(count) if count <= MAX_COUNT => Ok(count),
            Some(_) => Err(self.invalid(key, format!("more than {MAX_COUNT} targets"))),
            None => Err(self.invalid(key, "expected a non-negative integer".to_owned())),
        }
    }
}

/// The JSON type of `value`, for error messages.
pub(super) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(value: Value) -> Fields {
        Fields::from_value(value, String::new()).unwrap()
    }

    #[test]
    fn keys_match_exactly_first_then_ignoring_case() {
        let mut f = fields(json!({"errorCode": "a", "ErrorCode": "b", "Message": "m"}));
        assert_eq!(f.string("ErrorCode").unwrap().as_deref(), Some("b"));
        assert_eq!(f.string("ErrorCode").unwrap().as_deref(), Some("a"));
        assert_eq!(f.string("message").unwrap().as_deref(), Some("m"));
    }

    #[test]
    fn alternative_spellings_are_tried_in_order() {
        let mut f = fields(json!({"LifecycleEvent": "Install"}));
        assert_eq!(
            f.string("lifecycleEventName|LifecycleEvent")
                .unwrap()
                .as_deref(),
            Some("Install")
        );
        assert_eq!(
            f.path_of("lifecycleEventName|LifecycleEvent"),
            "lifecycleEventName"
        );
    }

    #[test]
    fn null_and_empty_strings_are_absent() {
        let mut f = fields(json!({"a": null, "b": "", "c": "", "d": null}));
        assert_eq!(f.string("a").unwrap(), None);
        assert_eq!(f.string("b").unwrap(), None);
        assert!(f.object("c").unwrap().is_none());
        assert_eq!(f.time("d").unwrap(), None);
        assert!(!f.has("d"));
    }

    #[test]
    fn objects_may_be_json_strings() {
        let mut f = fields(json!({"o": "{\"Failed\":\"2\"}", "p": {"Failed": 3}, "q": "{}"}));
        assert_eq!(f.object("o").unwrap().unwrap().count("Failed").unwrap(), 2);
        assert_eq!(f.object("p").unwrap().unwrap().count("Failed").unwrap(), 3);
        assert_eq!(f.object("q").unwrap().unwrap().count("Failed").unwrap(), 0);
    }

    #[test]
    fn malformed_embedded_objects_name_the_field() {
        let mut f = Fields::from_value(
            json!({"o": "{\"Failed\":", "p": "[1]", "q": 5}),
            "Message".into(),
        )
        .unwrap();
        let err = f.object("o").err().unwrap();
        assert_eq!(err.reason(), "invalid_json");
        assert!(err.to_string().contains("Message.o"), "{err}");
        assert_eq!(f.object("p").err().unwrap().reason(), "invalid_field");
        assert_eq!(f.object("q").err().unwrap().reason(), "invalid_field");
    }

    #[test]
    fn counts_reject_negative_and_fractional_values() {
        let mut f = fields(json!({"a": -1, "b": 1.5, "c": "x", "d": true}));
        for key in ["a", "b", "c", "d"] {
            assert_eq!(f.count(key).unwrap_err().reason(), "invalid_field", "{key}");
        }
    }

    #[test]
    fn counts_are_bounded() {
        let mut f = fields(json!({"max": MAX_COUNT, "over": MAX_COUNT + 1, "huge": u64::MAX, "text": u64::MAX.to_string()}));
        assert_eq!(f.count("max").unwrap(), MAX_COUNT);
        for key in ["over", "huge", "text"] {
            assert_eq!(f.count(key).unwrap_err().reason(), "invalid_field", "{key}");
        }
    }

    #[test]
    fn deployment_ids_are_checked() {
        let long = "d".repeat(MAX_DEPLOYMENT_ID_LEN + 1);
        let mut f =
            fields(json!({"ok": "d-ABC", "ctl": "d-\u{7}x", "long": long, "num": 7, "empty": ""}));
        assert_eq!(f.deployment_id("ok").unwrap(), "d-ABC");
        assert_eq!(
            f.deployment_id("ctl").unwrap_err().reason(),
            "invalid_field"
        );
        assert_eq!(
            f.deployment_id("long").unwrap_err().reason(),
            "invalid_field"
        );
        assert_eq!(
            f.deployment_id("num").unwrap_err().reason(),
            "invalid_field"
        );
        assert_eq!(
            f.deployment_id("empty").unwrap_err().reason(),
            "missing_field"
        );
        assert_eq!(
            f.deployment_id("absent").unwrap_err().reason(),
            "missing_field"
        );
    }

    #[test]
    fn instance_arns_become_instance_ids() {
        let mut f = fields(json!({
            "arn": "arn:aws:ec2:us-east-2:444455556666:instance/i-496589f7",
            "ecs": "my-cluster:my-service",
        }));
        assert_eq!(f.target_id("arn").unwrap(), "i-496589f7");
        assert_eq!(f.target_id("ecs").unwrap(), "my-cluster:my-service");
    }
}
