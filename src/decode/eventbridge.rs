//! EventBridge events from `aws.codedeploy`.

use compact_str::CompactString;
use std::cell::LazyCell;

use super::json::{json_object, Leaf, Path};
use super::{excerpt, DecodeError, Decoded, IgnoreReason, Message};
use crate::domain::{DeploymentRef, Observation, Provenance, Status, TargetObservation, TargetStatus};

const DEPLOYMENT_STATE_CHANGE: &str = "CodeDeploy Deployment State-change Notification";
const INSTANCE_STATE_CHANGE: &str = "CodeDeploy Instance State-change Notification";

json_object! {
    /// An event's `detail`.
    struct Detail {
        deployment_id: Leaf<'a> = b"deploymentid",
        application: Leaf<'a> = b"application",
        deployment_group: Leaf<'a> = b"deploymentgroup",
        region: Leaf<'a> = b"region",
        state: Leaf<'a> = b"state",
        instance_id: Leaf<'a> = b"instanceid",
    }
}

pub(super) fn decode(event: &Message, at: &Path) -> Result<Decoded, DecodeError> {
    let source = event.source.string(at, &["source"])?.unwrap_or_default();
    if source != "aws.codedeploy" {
        return Err(DecodeError::UnknownFormat {
            detail: format!("EventBridge event from source {}, not aws.codedeploy", excerpt(source)),
        });
    }
    let is_deployment = match event.detail_type.string(at, &["detail-type"])?.unwrap_or_default() {
        DEPLOYMENT_STATE_CHANGE => true,
        INSTANCE_STATE_CHANGE => false,
        // CloudTrail API-call events and anything CodeDeploy adds later.
        _ => return Ok(Decoded::Ignored(IgnoreReason::NotLifecycleEvent)),
    };
    let detail = event.detail.required_object(at, &["detail"])?;
    let detail_at = at.key("detail");
    let deployment_id = detail.deployment_id.deployment_id(&detail_at, &["deploymentId"])?;

    // moto leaves out `account`; the ARNs in `resources` still carry it. They are
    // looked through only then: AWS always sends `account` and `region`.
    let resources = event.resources.array(at, &["resources"])?;
    let arn = LazyCell::new(|| resources.and_then(|resources| codedeploy_arn(resources)));
    let account = match event.account.string(at, &["account"])? {
        Some(account) => Some(account),
        None => arn.map(|(_, account)| account),
    };
    let region = match (event.region.string(at, &["region"])?, detail.region.string(&detail_at, &["region"])?) {
        (Some(region), _) | (None, Some(region)) => Some(region),
        (None, None) => arn.map(|(region, _)| region),
    };

    let mut observation = Observation::new(
        DeploymentRef {
            account: account.map(CompactString::from),
            region: region.map(CompactString::from),
            deployment_id: deployment_id.into(),
        },
        Provenance::Event,
    );
    observation.event_time = event.time.time(at, &["time"])?;
    observation.application = detail.application.string(&detail_at, &["application"])?.map(CompactString::from);
    observation.deployment_group = detail.deployment_group.string(&detail_at, &["deploymentGroup"])?.map(CompactString::from);
    let state = detail.state.required_string(&detail_at, &["state"])?;
    let unknown_state = || DecodeError::UnknownState { field: detail_at.key("state").to_string(), value: excerpt(state) };
    if is_deployment {
        observation.is_state_change = true;
        observation.status = Some(deployment_state(state).ok_or_else(unknown_state)?);
    } else {
        let status = instance_state(state).ok_or_else(unknown_state)?;
        let target_id = detail.instance_id.target_id(&detail_at, &["instanceId"])?;
        observation.targets = vec![TargetObservation {
            target_id: target_id.into(),
            status: Some(status),
            lifecycle_events: Vec::new(),
        }];
    }
    Ok(Decoded::Observations(vec![observation]))
}

fn deployment_state(state: &str) -> Option<Status> {
    const STATES: [(&str, Status); 5] = [
        ("START", Status::InProgress),
        ("SUCCESS", Status::Succeeded),
        ("FAILURE", Status::Failed),
        ("STOP", Status::Stopped),
        ("READY", Status::Ready),
    ];
    STATES.iter().find(|(name, _)| state.eq_ignore_ascii_case(name)).map(|(_, status)| *status)
}

/// Instance events share the deployment vocabulary, but a target has no "stopped"
/// status: a stopped deployment leaves its targets in an unknown state.
fn instance_state(state: &str) -> Option<TargetStatus> {
    const STATES: [(&str, TargetStatus); 5] = [
        ("START", TargetStatus::InProgress),
        ("SUCCESS", TargetStatus::Succeeded),
        ("FAILURE", TargetStatus::Failed),
        ("READY", TargetStatus::Ready),
        ("STOP", TargetStatus::Unknown),
    ];
    STATES.iter().find(|(name, _)| state.eq_ignore_ascii_case(name)).map(|(_, status)| *status)
}

/// Region and account from the first CodeDeploy ARN in `resources`
/// (`arn:PARTITION:codedeploy:REGION:ACCOUNT:…`). Their order varies between events.
fn codedeploy_arn<'s>(resources: &'s [Leaf<'_>]) -> Option<(&'s str, &'s str)> {
    resources.iter().filter_map(Leaf::as_str).find_map(|arn| {
        let mut parts = arn.splitn(6, ':');
        let (prefix, _partition, service) = (parts.next()?, parts.next()?, parts.next()?);
        let (region, account) = (parts.next()?, parts.next()?);
        let usable = prefix == "arn" && service == "codedeploy" && !region.is_empty() && !account.is_empty();
        usable.then_some((region, account))
    })
}

#[cfg(test)]
mod tests {
    use crate::decode::tests::{ignored, one, only};
    use crate::decode::IgnoreReason;
    use crate::domain::*;

    const DEPLOYMENT: &str =
        include_str!("../../tests/fixtures/samples/eventbridge-deployment-success.json");

    #[test]
    fn deployment_success_sample() {
        let o = one(DEPLOYMENT);
        assert_eq!(
            o.deployment,
            DeploymentRef {
                account: Some("123456789012".into()),
                region: Some("us-east-1".into()),
                deployment_id: "d-123456789".into(),
            }
        );
        assert_eq!(o.provenance, Provenance::Event);
        assert!(o.is_state_change);
        assert_eq!(o.event_time, Some(1_467_324_391_000));
        assert_eq!(o.application.as_deref(), Some("myApplication"));
        assert_eq!(o.deployment_group.as_deref(), Some("myDeploymentGroup"));
        assert_eq!(o.status, Some(Status::Succeeded));
        assert_eq!(
            (o.create_time, o.complete_time, o.creator),
            (None, None, None)
        );
        assert!(o.targets.is_empty());
    }

    #[test]
    fn instance_success_sample() {
        let o = one(include_str!(
            "../../tests/fixtures/samples/eventbridge-instance-success.json"
        ));
        assert_eq!(o.deployment.account.as_deref(), Some("123456789012"));
        assert_eq!(o.deployment.region.as_deref(), Some("us-east-1"));
        assert_eq!(o.deployment.deployment_id, "d-123456789");
        assert_eq!(o.provenance, Provenance::Event);
        assert!(!o.is_state_change);
        assert_eq!(o.status, None);
        assert_eq!(o.event_time, Some(1_467_328_730_000));
        assert_eq!(o.application.as_deref(), Some("myApplication"));
        assert_eq!(o.deployment_group.as_deref(), Some("myDeploymentGroup"));
        assert_eq!(
            o.targets,
            vec![TargetObservation {
                target_id: "i-0000000aaaaaaaaaa".into(),
                status: Some(TargetStatus::Succeeded),
                lifecycle_events: vec![],
            }]
        );
    }

    fn with_state(detail_type: &str, state: &str) -> String {
        DEPLOYMENT
            .replace(
                "CodeDeploy Deployment State-change Notification",
                detail_type,
            )
            .replace(
                r#""state": "SUCCESS""#,
                &format!(r#""state": "{state}", "instanceId": "i-1""#),
            )
    }

    #[test]
    fn every_deployment_state() {
        for (state, status) in [
            ("START", Status::InProgress),
            ("SUCCESS", Status::Succeeded),
            ("FAILURE", Status::Failed),
            ("STOP", Status::Stopped),
            ("ready", Status::Ready),
        ] {
            let o = one(&with_state(
                "CodeDeploy Deployment State-change Notification",
                state,
            ));
            assert_eq!(o.status, Some(status), "{state}");
        }
    }

    #[test]
    fn every_instance_state() {
        for (state, status) in [
            ("START", TargetStatus::InProgress),
            ("SUCCESS", TargetStatus::Succeeded),
            ("Failure", TargetStatus::Failed),
            ("READY", TargetStatus::Ready),
            ("STOP", TargetStatus::Unknown),
        ] {
            let o = one(&with_state(
                "CodeDeploy Instance State-change Notification",
                state,
            ));
            assert_eq!(o.targets[0].status, Some(status), "{state}");
        }
    }

    #[test]
    fn unknown_states_are_errors() {
        for detail_type in [
            "CodeDeploy Deployment State-change Notification",
            "CodeDeploy Instance State-change Notification",
        ] {
            let err = only(&with_state(detail_type, "PAUSED")).unwrap_err();
            assert_eq!(err.reason(), "unknown_state");
            assert!(
                err.to_string().contains("PAUSED") && err.to_string().contains("detail.state"),
                "{err}"
            );
        }
    }

    #[test]
    fn moto_events_take_the_account_from_resources() {
        // moto's envelope: no `account`, `time` without fraction.
        let o = one(
            r#"{"id":"3c4f1d6e-1c4f-4a8e-9b1e-000000000000","time":"2026-11-26T05:12:56Z","version":"0",
            "detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy",
            "region":"us-east-1",
            "resources":["arn:aws:codedeploy:us-east-1:123456789012:deploymentgroup:app/grp"],
            "detail":{"application":"app","deploymentGroup":"grp","deploymentId":"d-MOTO00001","state":"START"}}"#,
        );
        assert_eq!(o.deployment.account.as_deref(), Some("123456789012"));
        assert_eq!(o.deployment.region.as_deref(), Some("us-east-1"));
        assert_eq!(o.status, Some(Status::InProgress));
        assert_eq!(o.event_time, Some(1_795_669_976_000));

        // Without resources either, account and region stay unknown (region from detail if there).
        let o = one(
            r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy",
            "detail":{"deploymentId":"d-MOTO00002","state":"STOP","region":"eu-west-1"},
            "resources":["arn:aws:ec2:us-east-1:999999999999:instance/i-1", 5]}"#,
        );
        assert_eq!(o.deployment.account, None);
        assert_eq!(o.deployment.region.as_deref(), Some("eu-west-1"));
        assert_eq!(o.event_time, None);
    }

    #[test]
    fn other_detail_types_are_ignored() {
        let cloudtrail = r#"{"detail-type":"AWS API Call via CloudTrail","source":"aws.codedeploy","detail":{"eventSource":"codedeploy.amazonaws.com"}}"#;
        assert_eq!(ignored(cloudtrail), IgnoreReason::NotLifecycleEvent);
    }

    #[test]
    fn malformed_events() {
        for (body, reason) in [
            (
                r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.ec2","detail":{}}"#,
                "unknown_format",
            ),
            (
                r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy"}"#,
                "missing_field",
            ),
            (
                r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","detail":{"state":"START"}}"#,
                "missing_field",
            ),
            (
                r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","detail":{"deploymentId":"","state":"START"}}"#,
                "missing_field",
            ),
            (
                r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","detail":{"deploymentId":"d-1"}}"#,
                "missing_field",
            ),
            (
                r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","detail":{"deploymentId":"d-1","state":1}}"#,
                "invalid_field",
            ),
            (
                r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","time":"noon","detail":{"deploymentId":"d-1","state":"START"}}"#,
                "invalid_timestamp",
            ),
            (
                r#"{"detail-type":"CodeDeploy Deployment State-change Notification","source":"aws.codedeploy","detail":[1]}"#,
                "invalid_field",
            ),
            (
                r#"{"detail-type":"CodeDeploy Instance State-change Notification","source":"aws.codedeploy","detail":{"deploymentId":"d-1","state":"START"}}"#,
                "missing_field",
            ),
        ] {
            assert_eq!(only(body).unwrap_err().reason(), reason, "{body}");
        }
    }
}
