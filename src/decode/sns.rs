//! SNS notifications around trigger messages: the JSON envelope SQS and HTTP
//! subscribers receive, and the `{"Records":[{"Sns":{…}}]}` batch Lambda receives.

use super::json::{self, json_object, Kind, Leaf, Obj, Path, Slot};
use super::{detect, excerpt, DecodeError, Decoded, IgnoreReason, Message, Shape};
use crate::domain::Observation;

json_object! {
    /// One record of a Lambda batch.
    struct Record {
        sns: Obj<'a, Envelope<'a>> = b"sns",
    }
}

json_object! {
    /// The `Sns` of a Lambda record. Only `Type`, `Subject`, `Message`, `Timestamp`
    /// and `MessageId` are read: the signing fields are spelled differently by each delivery channel.
    struct Envelope {
        kind: Leaf<'a> = b"type",
        subject: Leaf<'a> = b"subject",
        timestamp: Leaf<'a> = b"timestamp",
        message: Leaf<'a> = b"message",
        /// The notification's identity (see [`crate::identity`]).
        message_id: Leaf<'a> = b"messageid",
    }
}

/// The fields of an SNS envelope: an [`Envelope`], or the top of a [`Message`] (the
/// notification SQS and HTTP subscribers receive).
pub(super) struct EnvelopeFields<'s, 'a> {
    kind: &'s Slot<'a, Leaf<'a>>,
    subject: &'s Slot<'a, Leaf<'a>>,
    timestamp: &'s Slot<'a, Leaf<'a>>,
    pub(super) message: &'s Slot<'a, Leaf<'a>>,
}

impl<'a> Envelope<'a> {
    pub(super) fn fields(&self) -> EnvelopeFields<'_, 'a> {
        EnvelopeFields { kind: &self.kind, subject: &self.subject, timestamp: &self.timestamp, message: &self.message }
    }
}

impl<'a> Message<'a> {
    pub(super) fn envelope(&self) -> EnvelopeFields<'_, 'a> {
        EnvelopeFields { kind: &self.kind, subject: &self.subject, timestamp: &self.timestamp, message: &self.message }
    }
}

/// Decodes one SNS envelope.
pub(super) fn envelope(envelope: EnvelopeFields, at: &Path) -> Result<Decoded, DecodeError> {
    match envelope.kind.required_string(at, &["Type"])? {
        "Notification" => {}
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            return Ok(Decoded::Ignored(IgnoreReason::SubscriptionControl))
        }
        other => {
            return Err(DecodeError::UnknownFormat { detail: format!("SNS message of Type {}", excerpt(other)) })
        }
    }
    let subject = envelope.subject.string(at, &["Subject"])?.unwrap_or_default();
    let published = envelope.timestamp.time(at, &["Timestamp"])?;
    let message_at = at.key("Message");
    let message = envelope.message.required_string(at, &["Message"])?;

    let mut inner = Message::default();
    match json::parse_into(message, &mut inner) {
        Ok(Kind::Object) => {}
        Ok(_) => return Err(not_a_trigger(&message_at)),
        Err(_) if is_setup_test(subject, message) => return Ok(Decoded::Ignored(IgnoreReason::TriggerTestMessage)),
        Err(err) => return Err(DecodeError::InvalidJson { path: message_at.to_string(), detail: err.to_string() }),
    }
    let mut observation = match detect(&inner) {
        Some(Shape::DeploymentTrigger) => super::trigger::deployment(&inner, &message_at)?,
        Some(Shape::InstanceTrigger) => super::trigger::instance(&inner, &message_at)?,
        // An EventBridge rule may also target an SNS topic; the event keeps its own time.
        Some(Shape::EventBridge) => return super::eventbridge::decode(&inner, &message_at),
        _ => return Err(not_a_trigger(&message_at)),
    };
    // A deployment trigger carries no time of its own, so the time SNS accepted it
    // stands for the moment of the state change.
    if observation.event_time.is_none() {
        observation.event_time = published;
    }
    Ok(Decoded::Observations(vec![observation]))
}

fn not_a_trigger(path: &Path) -> DecodeError {
    DecodeError::UnknownFormat { detail: format!("`{path}` is not a CodeDeploy trigger message") }
}

/// Creating a trigger sends a plain-text test notification. It is recognised by its
/// wording, in the subject or the body, so that a change to one of them is tolerated.
fn is_setup_test(subject: &str, message: &str) -> bool {
    let contains = |haystack: &str, needle: &str| haystack.to_ascii_lowercase().contains(needle);
    contains(subject, "notification setup for trigger") || contains(message, "is able to send notifications")
}

/// Decodes the Lambda batch, concatenating what its records say. A batch whose
/// records all carry no state (setup tests, say) is ignored as a whole.
pub(super) fn records(batch: &Message) -> Result<Decoded, DecodeError> {
    let root = Path::Root;
    let names = ["Records"];
    let records = batch.records.required_objects(&root, &names)?;
    if records.len() == 0 {
        return Err(DecodeError::InvalidField { field: names[0].to_owned(), detail: "empty batch".to_owned() });
    }
    let at = root.key(names[0]);
    let mut observations: Vec<Observation> = Vec::new();
    let mut first_ignored = None;
    for (i, record) in records.iter().enumerate() {
        let record_at = at.index(i);
        let sns = record.sns.required_object(&record_at, &["Sns"])?;
        match envelope(sns.fields(), &record_at.key("Sns"))? {
            Decoded::Observations(found) => observations.extend(found),
            Decoded::Ignored(reason) => {
                first_ignored.get_or_insert(reason);
            }
        }
    }
    match first_ignored {
        Some(reason) if observations.is_empty() => Ok(Decoded::Ignored(reason)),
        _ => Ok(Decoded::Observations(observations)),
    }
}

#[cfg(test)]
mod tests {
    use crate::decode::tests::{ignored, observations, one, only};
    use crate::decode::{decode, IgnoreReason};
    use crate::domain::*;

    const TEST_SUBJECT: &str = "SUCCESS: AWS CodeDeploy notification setup for trigger my-trigger";
    const TEST_MESSAGE: &str = "Your AWS CodeDeploy trigger my-trigger is able to send notifications to your Amazon SNS topic.";

    fn notification(subject: &str, message: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "6d6b1a5e-0000-4000-8000-000000000001",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:codedeploy",
            "Subject": subject,
            "Message": message,
            "Timestamp": "2022-10-14T08:58:42.123Z",
            "SignatureVersion": "1",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
        })
        .to_string()
    }

    #[test]
    fn lambda_record_from_2016() {
        let o = one(include_str!(
            "../../tests/fixtures/samples/sns-lambda-event-deployment-succeeded-2016.json"
        ));
        assert_eq!(
            o.deployment,
            DeploymentRef {
                account: Some("123456789".into()),
                region: Some("us-east-1".into()),
                deployment_id: "d-123ABC456".into(),
            }
        );
        assert_eq!(o.provenance, Provenance::Trigger);
        assert!(o.is_state_change);
        assert_eq!(o.event_time, Some(1_470_856_332_411));
        assert_eq!(o.application.as_deref(), Some("your-application-name"));
        assert_eq!(
            o.deployment_group.as_deref(),
            Some("your-application-name-group")
        );
        assert_eq!(o.status, Some(Status::Succeeded));
        assert_eq!(o.create_time, Some(1_470_854_345_000));
        assert_eq!(o.complete_time, Some(1_470_854_433_000));
        assert_eq!(
            o.overview,
            Some(Overview {
                succeeded: 1,
                ..Overview::default()
            })
        );
        assert_eq!(o.error_code, None);
        assert!(o.targets.is_empty());
    }

    #[test]
    fn sqs_style_envelope_uses_the_sns_timestamp() {
        let message = r#"{"region":"us-east-1","accountId":"123456789012","eventTriggerName":"t","applicationName":"app","deploymentId":"d-ENVELOPE1","deploymentGroupName":"grp","createTime":"Fri Oct 14 08:46:18 UTC 2022","completeTime":null,"status":"IN_PROGRESS"}"#;
        let o = one(&notification(
            "IN_PROGRESS: AWS CodeDeploy d-ENVELOPE1 in us-east-1 to app",
            message,
        ));
        assert_eq!(o.deployment.deployment_id, "d-ENVELOPE1");
        assert_eq!(o.status, Some(Status::InProgress));
        assert_eq!(o.event_time, Some(1_665_737_922_123));
        assert_eq!(o.create_time, Some(1_665_737_178_000));
    }

    #[test]
    fn instance_trigger_keeps_its_own_time() {
        let message = include_str!(
            "../../tests/fixtures/samples/sns-trigger-message-instance-succeeded-docs-sample.json"
        );
        let o = one(&notification("Instance", message));
        assert_eq!(o.event_time, Some(1_446_744_207_564));
        assert_eq!(o.targets.len(), 1);
    }

    #[test]
    fn envelope_keys_in_other_casing() {
        let body = r#"{"type":"Notification","message":"{\"accountId\":\"1\",\"region\":\"r\",\"deploymentId\":\"d-1\",\"status\":\"SUCCEEDED\"}","timestamp":"2022-10-14T08:58:42Z","SigningCertUrl":"x"}"#;
        let o = one(body);
        assert_eq!(o.status, Some(Status::Succeeded));
        assert_eq!(o.event_time, Some(1_665_737_922_000));
    }

    #[test]
    fn eventbridge_event_delivered_through_sns() {
        let event =
            include_str!("../../tests/fixtures/samples/eventbridge-deployment-success.json");
        let o = one(&notification("", event));
        assert_eq!(o.provenance, Provenance::Event);
        assert_eq!(o.event_time, Some(1_467_324_391_000));
    }

    #[test]
    fn setup_test_message_in_an_envelope() {
        assert_eq!(
            ignored(&notification(TEST_SUBJECT, TEST_MESSAGE)),
            IgnoreReason::TriggerTestMessage
        );
        // Either the subject or the body is enough.
        assert_eq!(
            ignored(&notification("", TEST_MESSAGE)),
            IgnoreReason::TriggerTestMessage
        );
        assert_eq!(
            ignored(&notification(TEST_SUBJECT, "Hello")),
            IgnoreReason::TriggerTestMessage
        );
    }

    #[test]
    fn setup_test_message_in_lambda_records() {
        let record = |message: &str| {
            serde_json::json!({
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "Sns": {"Type": "Notification", "Subject": TEST_SUBJECT, "Message": message,
                        "Timestamp": "2016-08-10T19:10:00.000Z", "SigningCertUrl": "x", "UnsubscribeUrl": "y"}
            })
        };
        let batch = serde_json::json!({"Records": [record(TEST_MESSAGE), record(TEST_MESSAGE)]})
            .to_string();
        assert_eq!(ignored(&batch), IgnoreReason::TriggerTestMessage);

        // Mixed with a real trigger, only the trigger's observation comes back.
        let trigger =
            r#"{"accountId":"1","region":"r","deploymentId":"d-MIXED","status":"CREATED"}"#;
        let batch =
            serde_json::json!({"Records": [record(TEST_MESSAGE), record(trigger)]}).to_string();
        let found = observations(&batch);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].deployment.deployment_id, "d-MIXED");
        assert_eq!(found[0].event_time, Some(1_470_856_200_000));
    }

    #[test]
    fn several_records_give_several_observations() {
        let record = |id: &str, status: &str| {
            let message = format!(
                r#"{{"accountId":"1","region":"r","deploymentId":"{id}","status":"{status}"}}"#
            );
            serde_json::json!({"Sns": {"Type": "Notification", "Message": message}})
        };
        let batch =
            serde_json::json!({"Records": [record("d-A", "CREATED"), record("d-B", "FAILED")]})
                .to_string();
        let found = observations(&batch);
        let summary: Vec<_> = found
            .iter()
            .map(|o| (o.deployment.deployment_id.as_str(), o.status))
            .collect();
        assert_eq!(
            summary,
            [
                ("d-A", Some(Status::Created)),
                ("d-B", Some(Status::Failed))
            ]
        );
    }

    #[test]
    fn subscription_control_messages_are_ignored() {
        for kind in ["SubscriptionConfirmation", "UnsubscribeConfirmation"] {
            let body = serde_json::json!({"Type": kind, "Message": "You have chosen to subscribe", "SubscribeURL": "https://x", "Token": "t"});
            assert_eq!(
                ignored(&body.to_string()),
                IgnoreReason::SubscriptionControl
            );
        }
    }

    #[test]
    fn broken_messages_are_errors() {
        let truncated = r#"{"region":"us-east-1","accountId":"123456789012","deploymentId":"d-TRUNC","status":"SUCC"#;
        let err = only(&notification(
            "SUCCEEDED: AWS CodeDeploy d-TRUNC",
            truncated,
        ))
        .unwrap_err();
        assert_eq!(err.reason(), "invalid_json");
        assert!(err.to_string().contains("`Message`"), "{err}");

        let err = only(&notification("hello", "just some text")).unwrap_err();
        assert_eq!(err.reason(), "invalid_json");

        let err = only(&notification("x", "[1, 2]")).unwrap_err();
        assert_eq!(err.reason(), "unknown_format");

        let err = only(&notification("x", r#"{"hello":"world"}"#)).unwrap_err();
        assert_eq!(err.reason(), "unknown_format");

        let err = only(&notification(
            "x",
            r#"{"accountId":"1","deploymentId":"d-1","status":"FAILED","createTime":"yesterday"}"#,
        ))
        .unwrap_err();
        assert_eq!(err.reason(), "invalid_timestamp");
        assert!(err.to_string().contains("`Message.createTime`"), "{err}");

        let err =
            decode(br#"{"Type":"Notification","TopicArn":"arn:aws:sns:us-east-1:123456789012:t"}"#)
                .err()
                .unwrap();
        assert_eq!(err.reason(), "missing_field");

        let err = decode(br#"{"Type":"Notification","Message":{"deploymentId":"d-1"}}"#)
            .err()
            .unwrap();
        assert_eq!(err.reason(), "invalid_field");

        let err = decode(br#"{"Type":"Surprise","Message":"x"}"#)
            .err()
            .unwrap();
        assert_eq!(err.reason(), "unknown_format");
    }

    #[test]
    fn broken_records_are_errors() {
        for (body, reason) in [
            (r#"{"Records":[]}"#, "invalid_field"),
            (r#"{"Records":{}}"#, "invalid_field"),
            (r#"{"Records":[1]}"#, "invalid_field"),
            (r#"{"Records":[{"body":"an SQS record"}]}"#, "missing_field"),
            (
                r#"{"Records":[{"Sns":{"Type":"Notification","Message":"{\"deploymentId\":"}}]}"#,
                "invalid_json",
            ),
        ] {
            assert_eq!(only(body).unwrap_err().reason(), reason, "{body}");
        }
        let err = only(r#"{"Records":[{"Sns":{"Type":"Notification","Message":"{}"}},{"Sns":{"Type":"Notification","Message":"{\"accountId\":\"1\",\"deploymentId\":\"\",\"status\":\"x\"}"}}]}"#).unwrap_err();
        assert_eq!(err.reason(), "unknown_format", "{err}");
    }
}
