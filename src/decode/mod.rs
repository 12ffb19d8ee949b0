//! Decoding of every input format into [`Observation`]s.
//!
//! One message (a webhook body, an SQS body, a line of a replay file) goes in; its
//! format is recognised from the shape of the JSON, because the same queue or file
//! may carry EventBridge events, SNS notifications and API output side by side.
//! Decoding is pure and never panics: whatever the input, the caller gets either
//! observations, a recognised message to ignore, or a [`DecodeError`] whose
//! [`reason`](DecodeError::reason) is a bounded label for metrics.

mod api;
mod commit;
mod eventbridge;
mod json;
mod parts;
mod sns;
mod time;
mod trigger;

use serde_json::Value;

use crate::domain::Observation;
use crate::identity::MessageId;
use json::{json_object, FromMap, Kind, Leaf, List, Obj, Path};

/// What one message decodes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// One or more observations (a BatchGetDeployments output or an SNS Records batch gives several).
    Observations(Vec<Observation>),
    /// A recognised message that carries no deployment state, e.g. the SNS trigger setup test message.
    Ignored(IgnoreReason),
}

/// Why a recognised message was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The plain-text notification CodeDeploy sends when a trigger is created.
    TriggerTestMessage,
    /// SNS `SubscriptionConfirmation` / `UnsubscribeConfirmation`.
    SubscriptionControl,
    /// API output without deployment state (ListDeployments ids, GetDeploymentConfig,
    /// empty batches) and the payload CodeDeploy sends to a Lambda lifecycle hook.
    NoDeploymentState,
    /// An `aws.codedeploy` EventBridge event of another detail-type, e.g. "AWS API Call via CloudTrail".
    NotLifecycleEvent,
}

impl IgnoreReason {
    pub fn as_str(&self) -> &'static str {
        match self {
            IgnoreReason::TriggerTestMessage => "trigger_test_message",
            IgnoreReason::SubscriptionControl => "subscription_control",
            IgnoreReason::NoDeploymentState => "no_deployment_state",
            IgnoreReason::NotLifecycleEvent => "not_lifecycle_event",
        }
    }
}

/// Why a message could not be decoded. Field names are paths into the message
/// (`Records[0].Sns.Message.createTime`); values quoted from the message are shortened.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum DecodeError {
    #[error("message is not valid UTF-8 (invalid byte at offset {valid_up_to})")]
    NotUtf8 { valid_up_to: usize },
    /// `path` is empty for the message itself, or names a field holding embedded JSON.
    #[error("invalid JSON{}: {detail}", in_field(.path))]
    InvalidJson { path: String, detail: String },
    #[error("unrecognised message format: {detail}")]
    UnknownFormat { detail: String },
    #[error("missing field `{field}`")]
    MissingField { field: String },
    #[error("invalid field `{field}`: {detail}")]
    InvalidField { field: String, detail: String },
    #[error("unknown state {value} in `{field}`")]
    UnknownState { field: String, value: String },
    #[error("invalid timestamp in `{field}`: {detail}")]
    InvalidTimestamp { field: String, detail: String },
    /// Decoded, but past one of the exporter's bounds (see [`crate::ledger::limits`]).
    #[error("refused: {detail}")]
    Limited { limit: crate::ledger::limits::Limit, detail: String },
}

fn in_field(path: &str) -> String {
    if path.is_empty() {
        String::new()
    } else {
        format!(" in `{path}`")
    }
}

impl DecodeError {
    /// A low-cardinality label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::NotUtf8 { .. } => "not_utf8",
            DecodeError::InvalidJson { .. } => "invalid_json",
            DecodeError::UnknownFormat { .. } => "unknown_format",
            DecodeError::MissingField { .. } => "missing_field",
            DecodeError::InvalidField { .. } => "invalid_field",
            DecodeError::UnknownState { .. } => "unknown_state",
            DecodeError::InvalidTimestamp { .. } => "invalid_timestamp",
            DecodeError::Limited { limit, .. } => limit.reason(),
        }
    }
}

json_object! {
    /// One message, whatever its format: every key any format is recognised by or
    /// reads at its top level. An SNS notification's `Message` is read into one of
    /// these too.
    struct Message {
        // EventBridge
        source: Leaf<'a> = b"source",
        detail_type: Leaf<'a> = b"detail-type",
        detail: Obj<'a, eventbridge::Detail<'a>> = b"detail",
        resources: List<'a, Leaf<'a>> = b"resources",
        account: Leaf<'a> = b"account",
        region: Leaf<'a> = b"region",
        time: Leaf<'a> = b"time",
        /// The event's own id: its identity (see [`crate::identity`]).
        id: Leaf<'a> = b"id",
        // SNS notifications and Lambda batches of them
        /// SNS `Type`, or the `type` of a commit record.
        kind: Leaf<'a> = b"type",
        subject: Leaf<'a> = b"subject",
        timestamp: Leaf<'a> = b"timestamp",
        message: Leaf<'a> = b"message",
        topic_arn: Leaf<'a> = b"topicarn",
        message_id: Leaf<'a> = b"messageid",
        records: List<'a, Obj<'a, sns::Record<'a>>> = b"records",
        // Trigger messages; a bare `DeploymentInfo` is recognised by these keys too
        deployment_id: Leaf<'a> = b"deploymentid",
        account_id: Leaf<'a> = b"accountid",
        event_trigger_name: Leaf<'a> = b"eventtriggername",
        application_name: Leaf<'a> = b"applicationname",
        deployment_group_name: Leaf<'a> = b"deploymentgroupname",
        status: Leaf<'a> = b"status",
        create_time: Leaf<'a> = b"createtime",
        complete_time: Leaf<'a> = b"completetime",
        deployment_overview: Obj<'a, parts::Overview<'a>> = b"deploymentoverview",
        error_information: Obj<'a, parts::ErrorInformation<'a>> = b"errorinformation",
        rollback_information: Obj<'a, parts::Rollback<'a>> = b"rollbackinformation",
        instance_id: Leaf<'a> = b"instanceid",
        instance_status: Leaf<'a> = b"instancestatus",
        last_updated_at: Leaf<'a> = b"lastupdatedat",
        lifecycle_events: List<'a, Obj<'a, parts::LifecycleEvent<'a>>> = b"lifecycleevents",
        // CI commit records
        commit: Leaf<'a> = b"commit",
        revision: Leaf<'a> = b"revision",
        committed_at: Leaf<'a> = b"committed_at",
        // API output
        deployment_info: Obj<'a, Box<api::DeploymentInfo<'a>>> = b"deploymentinfo",
        deployments_info: List<'a, Obj<'a, api::DeploymentInfo<'a>>> = b"deploymentsinfo",
        deployment_target: Obj<'a, Box<api::TargetWrapper<'a>>> = b"deploymenttarget",
        deployment_targets: List<'a, Obj<'a, api::TargetWrapper<'a>>> = b"deploymenttargets",
        instance_summary: Obj<'a, Box<parts::Target<'a>>> = b"instancesummary",
        instances_summary: List<'a, Obj<'a, parts::Target<'a>>> = b"instancessummary",
        // Recognised, without deployment state
        deployments: Leaf<'a> = b"deployments",
        deployment_config_info: Leaf<'a> = b"deploymentconfiginfo",
        lifecycle_event_hook_execution_id: Leaf<'a> = b"lifecycleeventhookexecutionid",
    }
}

/// Where a message comes from: bytes, or a JSON value parsed by the caller. A bare
/// `DeploymentInfo` is read from it a second time (see [`Shape::DeploymentInfo`]).
#[derive(Clone, Copy)]
enum Source<'a> {
    Text(&'a str),
    Value(&'a Value),
}

impl<'a> Source<'a> {
    /// Parses the message into `target` if it is an object; returns the kind of value it is.
    fn parse_into<T: FromMap<'a>>(self, target: &mut T) -> Result<Kind, DecodeError> {
        let parsed = match self {
            Source::Text(text) => json::parse_into(text, target),
            Source::Value(value) => serde::de::DeserializeSeed::deserialize(json::InPlace(target), value),
        };
        // serde_json limits nesting depth, so hostile input cannot exhaust the stack.
        parsed.map_err(|err| DecodeError::InvalidJson { path: String::new(), detail: err.to_string() })
    }

    /// Up to `limit` key names of the message, sorted, for telling the sender what we were given.
    fn key_names(self, limit: usize) -> Vec<String> {
        let keys = |map: &serde_json::Map<String, Value>| map.keys().take(limit).map(|k| excerpt(k)).collect();
        match self {
            Source::Text(text) => serde_json::from_str(text).map(|map| keys(&map)).unwrap_or_default(),
            Source::Value(Value::Object(map)) => keys(map),
            Source::Value(_) => Vec::new(),
        }
    }
}

/// Decodes one message (one webhook body, one SQS body, one JSON Lines line), auto-detecting the format.
///
/// # Errors
///
/// When the bytes are not UTF-8 or not JSON, the JSON is of no supported format, or a
/// field of a recognised format is missing or malformed.
pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    decode_identified(bytes).map(|(decoded, _)| decoded)
}

/// [`decode`], and the identity the message's provider gave it (EventBridge
/// `id`, SNS `MessageId`), where it has one: read in the same pass, since a
/// second parse would cost as much as the first.
///
/// # Errors
///
/// As for [`decode`].
pub fn decode_identified(bytes: &[u8]) -> Result<(Decoded, Option<MessageId>), DecodeError> {
    decode_source(Source::Text(text(bytes)?))
}

/// Same, from an already-parsed JSON value (the replay source splits whole-file JSON arrays into elements).
///
/// # Errors
///
/// As for [`decode`], except for the UTF-8 and JSON syntax checks already done by the caller.
pub fn decode_value(value: Value) -> Result<Decoded, DecodeError> {
    decode_value_identified(value).map(|(decoded, _)| decoded)
}

/// [`decode_value`] with the provider's identity, as [`decode_identified`].
///
/// # Errors
///
/// As for [`decode_value`].
pub fn decode_value_identified(value: Value) -> Result<(Decoded, Option<MessageId>), DecodeError> {
    decode_source(Source::Value(&value))
}

fn text(bytes: &[u8]) -> Result<&str, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|err| DecodeError::NotUtf8 { valid_up_to: err.valid_up_to() })?;
    // Editors on Windows like to start files with a byte-order mark; JSON does not allow one.
    Ok(text.trim_start_matches('\u{feff}'))
}

fn decode_source(source: Source) -> Result<(Decoded, Option<MessageId>), DecodeError> {
    let mut message = Message::default();
    match source.parse_into(&mut message)? {
        Kind::Object => decode_object(source, &message),
        other => Err(not_an_object(other)),
    }
}

fn not_an_object(kind: Kind) -> DecodeError {
    DecodeError::UnknownFormat { detail: format!("the message is {kind}, not a JSON object") }
}

/// Deserializes `bytes` into the structs [`decode`] reads, the SNS `Message` inside
/// an SNS notification and the objects a trigger encodes as JSON strings included,
/// and builds nothing from them: the parse-only baseline of the benchmark. Returns
/// whether the message parsed.
#[doc(hidden)]
pub fn parse_structs(bytes: &[u8]) -> bool {
    let Ok(text) = text(bytes) else { return false };
    let mut message = Message::default();
    let Ok(Kind::Object) = Source::Text(text).parse_into(&mut message) else { return false };
    parse_inner(message.envelope());
    if let Ok(Some(records)) = message.records.objects(&Path::Root, &["Records"]) {
        for record in records.iter() {
            if let Ok(Some(sns)) = record.sns.object(&Path::Root, &["Sns"]) {
                parse_inner(sns.fields());
            }
        }
    }
    parts::parse_embedded(&message);
    std::hint::black_box(&message);
    true
}

/// The trigger message inside an SNS envelope, with what it encodes as JSON strings.
fn parse_inner(envelope: sns::EnvelopeFields) {
    let Some(text) = envelope.message.value(&["Message"]).and_then(Leaf::as_str) else { return };
    let mut inner = Message::default();
    if let Ok(Kind::Object) = json::parse_into(text, &mut inner) {
        parts::parse_embedded(&inner);
        std::hint::black_box(&inner);
    }
}

/// The formats, as told apart by their keys.
enum Shape {
    EventBridge,
    SnsNotification,
    SnsRecords,
    DeploymentTrigger,
    InstanceTrigger,
    /// A bare `DeploymentInfo`: rare at the top level (the API wraps it), so it is
    /// read again as one rather than making every message carry its keys.
    DeploymentInfo,
    GetDeployment,
    BatchGetDeployments,
    GetDeploymentTarget,
    BatchGetDeploymentTargets,
    InstanceSummary,
    InstancesSummary,
    NoDeploymentState,
    CommitRecord,
}

fn detect(m: &Message) -> Option<Shape> {
    let shape = if m.detail_type.has(&["detail-type"]) && m.source.has(&["source"]) {
        Shape::EventBridge
    } else if m.committed_at.has(&["committed_at"]) && m.kind.has(&["type"]) && !m.deployment_id.has(&["deploymentId"]) {
        Shape::CommitRecord
    } else if m.records.has(&["Records"]) {
        Shape::SnsRecords
    } else if m.kind.has(&["Type"]) && (m.message.has(&["Message"]) || m.topic_arn.has(&["TopicArn"])) {
        Shape::SnsNotification
    } else if m.deployment_info.has(&["deploymentInfo"]) {
        Shape::GetDeployment
    } else if m.deployments_info.has(&["deploymentsInfo"]) {
        Shape::BatchGetDeployments
    } else if m.deployment_target.has(&["deploymentTarget"]) {
        Shape::GetDeploymentTarget
    } else if m.deployment_targets.has(&["deploymentTargets"]) {
        Shape::BatchGetDeploymentTargets
    } else if m.instance_summary.has(&["instanceSummary"]) {
        Shape::InstanceSummary
    } else if m.instances_summary.has(&["instancesSummary"]) {
        Shape::InstancesSummary
    } else if m.deployments.has(&["deployments"])
        || m.deployment_config_info.has(&["deploymentConfigInfo"])
        || m.lifecycle_event_hook_execution_id.has(&["LifecycleEventHookExecutionId"])
    {
        Shape::NoDeploymentState
    } else if !m.deployment_id.has(&["deploymentId"]) {
        return None;
    } else if m.instance_status.has(&["instanceStatus"]) {
        Shape::InstanceTrigger
    } else if m.account_id.has(&["accountId"]) || m.event_trigger_name.has(&["eventTriggerName"]) || m.region.has(&["region"]) {
        // Only triggers say which account and trigger they come from; `DeploymentInfo`
        // has neither, nor a region.
        Shape::DeploymentTrigger
    } else if m.application_name.has(&["applicationName"]) && (m.status.has(&["status"]) || m.create_time.has(&["createTime"])) {
        Shape::DeploymentInfo
    } else {
        return None;
    };
    Some(shape)
}

fn decode_object(source: Source, message: &Message) -> Result<(Decoded, Option<MessageId>), DecodeError> {
    let Some(shape) = detect(message) else {
        let keys = source.key_names(8);
        let detail = if keys.is_empty() {
            "an empty JSON object".to_owned()
        } else {
            format!("a JSON object with keys {} matches no supported format", keys.join(", "))
        };
        return Err(DecodeError::UnknownFormat { detail });
    };
    let decoded = decode_shape(source, message, &shape)?;
    Ok((decoded, provider_id(message, &shape)))
}

/// The id the provider gave the message, if it gave one. Read leniently: an
/// id that is not a string leaves the message to be identified by content.
fn provider_id(message: &Message, shape: &Shape) -> Option<MessageId> {
    let text = |slot: &json::Slot<'_, Leaf<'_>>, name: &str| slot.value(&[name]).and_then(Leaf::as_str).map(str::to_owned);
    match shape {
        Shape::EventBridge => text(&message.id, "id").map(|id| MessageId::provider("eventbridge", &id)),
        Shape::SnsNotification => text(&message.message_id, "MessageId").map(|id| MessageId::provider("sns", &id)),
        Shape::SnsRecords => {
            let records = message.records.objects(&Path::Root, &["Records"]).ok()??;
            let ids = records
                .iter()
                .map(|record| {
                    let sns = record.sns.object(&Path::Root, &["Sns"]).ok()??;
                    text(&sns.message_id, "MessageId")
                })
                .collect::<Option<Vec<String>>>()?;
            match ids.as_slice() {
                // The same notification as when SNS delivers it alone.
                [one] => Some(MessageId::provider("sns", one)),
                several => Some(MessageId::provider("sns-batch", &several.join("\n"))),
            }
        }
        _ => None,
    }
}

fn decode_shape(source: Source, message: &Message, shape: &Shape) -> Result<Decoded, DecodeError> {
    let root = Path::Root;
    let observations = match *shape {
        Shape::EventBridge => return eventbridge::decode(message, &root),
        Shape::SnsNotification => return sns::envelope(message.envelope(), &root),
        Shape::SnsRecords => return sns::records(message),
        Shape::NoDeploymentState => return Ok(Decoded::Ignored(IgnoreReason::NoDeploymentState)),
        Shape::DeploymentTrigger => vec![trigger::deployment(message, &root)?],
        Shape::InstanceTrigger => vec![trigger::instance(message, &root)?],
        Shape::DeploymentInfo => {
            let mut info = api::DeploymentInfo::default();
            match source.parse_into(&mut info)? {
                Kind::Object => vec![api::deployment_info(&info, &root)?],
                other => return Err(not_an_object(other)),
            }
        }
        Shape::CommitRecord => vec![commit::record(message)?],
        Shape::GetDeployment => {
            let names = ["deploymentInfo"];
            vec![api::deployment_info(&*message.deployment_info.required_object(&root, &names)?, &root.key(names[0]))?]
        }
        Shape::BatchGetDeployments => {
            let names = ["deploymentsInfo"];
            let at = root.key(names[0]);
            let infos = message.deployments_info.required_objects(&root, &names)?;
            infos.read_each(|i, info| api::deployment_info(info, &at.index(i)))?
        }
        Shape::GetDeploymentTarget => {
            let names = ["deploymentTarget"];
            let wrapper = message.deployment_target.required_object(&root, &names)?;
            let at = root.key(names[0]);
            api::targets(vec![(api::deployment_target(&wrapper, &at)?, at.key(api::TARGET_MEMBERS[0]))], api::TargetKey::TargetId)?
        }
        Shape::BatchGetDeploymentTargets => {
            let names = ["deploymentTargets"];
            let at = root.key(names[0]);
            let wrappers = message.deployment_targets.required_objects(&root, &names)?;
            let paths: Vec<Path> = (0..wrappers.len()).map(|i| at.index(i)).collect();
            let targets = wrappers.read_each(|i, wrapper| {
                Ok((api::deployment_target(wrapper, &paths[i])?, paths[i].key(api::TARGET_MEMBERS[0])))
            })?;
            api::targets(targets, api::TargetKey::TargetId)?
        }
        Shape::InstanceSummary => {
            let names = ["instanceSummary"];
            let summary = message.instance_summary.required_object(&root, &names)?;
            api::targets(vec![(summary.unboxed(), root.key(names[0]))], api::TargetKey::InstanceId)?
        }
        Shape::InstancesSummary => {
            let names = ["instancesSummary"];
            let at = root.key(names[0]);
            let summaries = message.instances_summary.required_objects(&root, &names)?;
            let items = summaries.iter().enumerate().map(|(i, s)| (json::Nested::Borrowed(s), at.index(i))).collect();
            api::targets(items, api::TargetKey::InstanceId)?
        }
    };
    Ok(if observations.is_empty() {
        // An empty batch answers "nothing matched", which says nothing about any deployment.
        Decoded::Ignored(IgnoreReason::NoDeploymentState)
    } else {
        Decoded::Observations(observations)
    })
}

/// A value quoted from the message for an error: escaped, and short enough that a
/// hostile message cannot blow up logs or HTTP responses.
fn excerpt(value: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut chars = value.chars();
    let kept: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() {
        format!("{kept:?}…")
    } else {
        format!("{kept:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `body`, expecting exactly one observation if it decodes at all.
    pub(super) fn only(body: &str) -> Result<Observation, DecodeError> {
        match decode(body.as_bytes())? {
            Decoded::Observations(mut found) if found.len() == 1 => Ok(found.remove(0)),
            other => panic!("expected one observation, got {other:?}"),
        }
    }

    #[test]
    fn providers_name_their_messages_and_the_rest_go_by_content() {
        let id = |body: &str| decode_identified(body.as_bytes()).expect("decodes").1;
        assert_eq!(
            id(include_str!("../../tests/fixtures/samples/eventbridge-deployment-success.json")),
            Some(MessageId::provider("eventbridge", "c071bfbf-83c4-49ca-a6ff-3df053957145"))
        );
        let notification = include_str!("../../tests/fixtures/streams/mixed.jsonl").lines().nth(5).expect("line 6");
        assert_eq!(id(notification), Some(MessageId::provider("sns", "9a3f2b1c-0002-4e5f-8a9b-0c1d2e3f0002")));
        // A Lambda batch of one record is the notification it wraps.
        assert_eq!(
            id(include_str!("../../tests/fixtures/samples/sns-lambda-event-deployment-succeeded-2016.json")),
            Some(MessageId::provider("sns", "00000000-0000-0000-0000-000000000000"))
        );
        assert_eq!(id(include_str!("../../tests/fixtures/samples/sns-trigger-message-deployment-failed-docs-sample.json")), None);
        assert_eq!(id(include_str!("../../tests/fixtures/samples/api-get-deployment-output-awscli-example.json")), None);
        // An id that is not a string is no id.
        let odd = r#"{"id":7,"source":"aws.codedeploy","detail-type":"CodeDeploy Deployment State-change Notification","detail":{"deploymentId":"d-1","state":"START"}}"#;
        assert_eq!(id(odd), None);
    }

    pub(super) fn one(body: &str) -> Observation {
        only(body).unwrap_or_else(|err| panic!("{err}"))
    }

    pub(super) fn observations(body: &str) -> Vec<Observation> {
        match decode(body.as_bytes()) {
            Ok(Decoded::Observations(found)) => found,
            other => panic!("expected observations, got {other:?}"),
        }
    }

    pub(super) fn ignored(body: &str) -> IgnoreReason {
        match decode(body.as_bytes()) {
            Ok(Decoded::Ignored(reason)) => reason,
            other => panic!("expected an ignored message, got {other:?}"),
        }
    }

    fn reason(bytes: &[u8]) -> &'static str {
        match decode(bytes) {
            Err(err) => err.reason(),
            Ok(decoded) => panic!("expected an error, got {decoded:?}"),
        }
    }

    /// Each sample file is asserted field by field in the test module of its format;
    /// this list keeps a new sample from going untested.
    const TESTED_SAMPLES: [&str; 13] = [
        "api-batch-get-deployment-targets-output-awscli-example.json",
        "api-batch-get-deployments-output-awscli-example.json",
        "api-get-deployment-config-output-awscli-example.json",
        "api-get-deployment-instance-output-awscli-example.json",
        "api-get-deployment-output-awscli-example.json",
        "api-get-deployment-target-output-awscli-example.json",
        "api-list-deployments-output-awscli-example.json",
        "eventbridge-deployment-success.json",
        "eventbridge-instance-success.json",
        "lambda-lifecycle-hook-invocation-event.json",
        "sns-lambda-event-deployment-succeeded-2016.json",
        "sns-trigger-message-deployment-failed-docs-sample.json",
        "sns-trigger-message-instance-succeeded-docs-sample.json",
    ];

    fn sample_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/samples")
    }

    #[test]
    fn every_sample_has_a_test() {
        let mut names: Vec<String> = std::fs::read_dir(sample_dir())
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, TESTED_SAMPLES);
    }

    #[test]
    fn decode_value_agrees_with_decode() {
        for name in TESTED_SAMPLES {
            let bytes = std::fs::read(sample_dir().join(name)).unwrap();
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(decode_value(value), decode(&bytes), "{name}");
        }
    }

    #[test]
    fn whitespace_and_byte_order_mark_around_a_message_are_fine() {
        let body = include_str!("../../tests/fixtures/samples/eventbridge-deployment-success.json");
        let padded = format!("\u{feff}\n\t  {body}  \r\n");
        assert_eq!(decode(padded.as_bytes()), decode(body.as_bytes()));
    }

    #[test]
    fn malformed_inputs_have_bounded_reasons() {
        let eventbridge =
            include_str!("../../tests/fixtures/samples/eventbridge-deployment-success.json");
        let trigger = include_str!(
            "../../tests/fixtures/samples/sns-trigger-message-deployment-failed-docs-sample.json"
        );
        let deep = "[".repeat(10_000);
        let deep_object = format!("{}{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000));
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (eventbridge[..eventbridge.len() / 2].into(), "invalid_json"),
            (Vec::new(), "invalid_json"),
            (b"   ".to_vec(), "invalid_json"),
            (b"{\"a\":1}{\"b\":2}".to_vec(), "invalid_json"),
            (b"{\"deploymentId\":\"d-\xff\xfe\"}".to_vec(), "not_utf8"),
            (vec![0xc3, 0x28], "not_utf8"),
            (deep.into_bytes(), "invalid_json"),
            (deep_object.into_bytes(), "invalid_json"),
            (b"{}".to_vec(), "unknown_format"),
            (b"[]".to_vec(), "unknown_format"),
            (format!("[{eventbridge}]").into_bytes(), "unknown_format"),
            (b"42".to_vec(), "unknown_format"),
            (b"\"hello\"".to_vec(), "unknown_format"),
            (b"null".to_vec(), "unknown_format"),
            (
                b"{\"hello\":\"world\",\"deploymentId\":\"d-1\"}".to_vec(),
                "unknown_format",
            ),
            (
                eventbridge
                    .replace("\"SUCCESS\"", "\"EXPLODED\"")
                    .into_bytes(),
                "unknown_state",
            ),
            (
                eventbridge.replace("\"SUCCESS\"", "7").into_bytes(),
                "invalid_field",
            ),
            (
                eventbridge
                    .replace("d-123456789", "d-12\\u0000345")
                    .into_bytes(),
                "invalid_field",
            ),
            (
                eventbridge
                    .replace("d-123456789", &"d".repeat(129))
                    .into_bytes(),
                "invalid_field",
            ),
            (
                eventbridge
                    .replace("2016-06-30T22:06:31Z", "99999-01-01T00:00:00Z")
                    .into_bytes(),
                "invalid_timestamp",
            ),
            (
                trigger
                    .replace("\"1446744188.595\"", "\"yesterday\"")
                    .into_bytes(),
                "invalid_timestamp",
            ),
            (
                trigger
                    .replace("\"1446744188.595\"", "-1446744188.595")
                    .into_bytes(),
                "invalid_timestamp",
            ),
            (
                trigger
                    .replace("\"Failed\": \"10\"", "\"Failed\": \"ten\"")
                    .into_bytes(),
                "invalid_field",
            ),
            (
                trigger
                    .replace("\"status\": \"Failed\"", "\"status\": 3")
                    .into_bytes(),
                "invalid_field",
            ),
            (
                trigger
                    .replace("\"d-75I7MBT7C\"", "\"d-75I7\\nMBT7C\"")
                    .into_bytes(),
                "invalid_field",
            ),
            (
                trigger.replace("\"d-75I7MBT7C\"", "[]").into_bytes(),
                "invalid_field",
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                reason(&bytes),
                expected,
                "{}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            );
        }
    }

    #[test]
    fn errors_explain_themselves() {
        let err = decode(b"{\"deploymentId\": ").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("invalid JSON: EOF while parsing"),
            "{err}"
        );
        assert!(err.to_string().contains("line 1 column"), "{err}");

        let err = decode(b"{\"colour\":1,\"size\":2}").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unrecognised message format: a JSON object with keys \"colour\", \"size\" matches no supported format"
        );

        let long = format!(
            r#"{{"accountId":"1","deploymentId":"d-1\u0007{}"}}"#,
            "x".repeat(500)
        );
        let err = decode(long.as_bytes()).unwrap_err();
        assert_eq!(err.reason(), "invalid_field");
        assert!(err.to_string().len() < 200, "{err}");

        assert_eq!(
            decode(&[b'{', 0x80]).unwrap_err(),
            DecodeError::NotUtf8 { valid_up_to: 1 }
        );
    }

    fn sample_bytes() -> Vec<Vec<u8>> {
        TESTED_SAMPLES
            .iter()
            .map(|name| std::fs::read(sample_dir().join(name)).unwrap())
            .collect()
    }

    /// Replaces the `n`th node of `value` in pre-order (the root is node 0).
    fn replace_node(value: &mut Value, n: &mut usize, replacement: &Value) -> bool {
        if *n == 0 {
            *value = replacement.clone();
            return true;
        }
        *n -= 1;
        match value {
            Value::Array(items) => items
                .iter_mut()
                .any(|item| replace_node(item, n, replacement)),
            Value::Object(map) => map
                .values_mut()
                .any(|item| replace_node(item, n, replacement)),
            _ => false,
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_on_mutated_samples(
            index in 0..TESTED_SAMPLES.len(),
            edits in proptest::collection::vec((proptest::num::usize::ANY, proptest::num::u8::ANY), 1..8),
            cut in proptest::num::usize::ANY,
        ) {
            let mut bytes = sample_bytes().swap_remove(index);
            for (position, byte) in edits {
                let position = position % bytes.len();
                bytes[position] = byte;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            let _ = decode(&bytes);
        }

        #[test]
        fn never_panics_on_samples_with_a_value_replaced(
            index in 0..TESTED_SAMPLES.len(),
            node in proptest::num::usize::ANY,
            replacement in proptest::sample::select(vec![
                Value::Null, Value::Bool(true), serde_json::json!(-1), serde_json::json!(1e300),
                serde_json::json!(u64::MAX), serde_json::json!(""), serde_json::json!("{}"),
                serde_json::json!("[]"), serde_json::json!("{\"a\":"), serde_json::json!("d-\u{0}"),
                serde_json::json!("Fri Oct 14 08:46:18 UTC 99999"), serde_json::json!([]),
                serde_json::json!({}), serde_json::json!([{}]), serde_json::json!({"deploymentId": 1}),
            ]),
        ) {
            let mut value: Value = serde_json::from_slice(&sample_bytes().swap_remove(index)).unwrap();
            replace_node(&mut value, &mut (node % 200), &replacement);
            let _ = decode_value(value);
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC*") {
            let _ = decode(text.as_bytes());
        }
    }

    #[test]
    fn labels_are_snake_case() {
        let reasons = [
            IgnoreReason::TriggerTestMessage,
            IgnoreReason::SubscriptionControl,
            IgnoreReason::NoDeploymentState,
            IgnoreReason::NotLifecycleEvent,
        ];
        let labels: Vec<_> = reasons.iter().map(IgnoreReason::as_str).collect();
        assert_eq!(
            labels,
            [
                "trigger_test_message",
                "subscription_control",
                "no_deployment_state",
                "not_lifecycle_event"
            ]
        );
    }
}
