//! CodeDeploy trigger messages: the JSON a deployment-group trigger publishes to SNS
//! (the `Message` of an SNS notification, or the whole body with raw delivery).

use compact_str::CompactString;
use super::json::Path;
use super::{parts, DecodeError, Message};
use crate::domain::{DeploymentRef, Observation, Provenance};

/// A deployment trigger (`DeploymentStart`, `DeploymentSuccess`, …).
///
/// Real messages differ from the documented sample: upper-case statuses, Java date
/// strings, `null` complete times, and nested objects encoded as JSON strings. The
/// field readers accept every variant.
pub(super) fn deployment(message: &Message, at: &Path) -> Result<Observation, DecodeError> {
    let mut observation = Observation::new(reference(message, at)?, Provenance::Trigger);
    observation.is_state_change = true;
    observation.application = message.application_name.string(at, &["applicationName"])?.map(CompactString::from);
    observation.deployment_group = message.deployment_group_name.string(at, &["deploymentGroupName"])?.map(CompactString::from);
    observation.status = message.status.status(at, &["status"])?;
    observation.create_time = message.create_time.time(at, &["createTime"])?;
    observation.complete_time = message.complete_time.time(at, &["completeTime"])?;
    observation.overview = parts::overview(&message.deployment_overview, at)?;
    parts::error(&message.error_information, at, &mut observation)?;
    parts::rollback(&message.rollback_information, at, "rollbackInformation", &mut observation)?;
    Ok(observation)
}

/// An instance trigger (`InstanceStart`, `InstanceSuccess`, …): one target's state.
pub(super) fn instance(message: &Message, at: &Path) -> Result<Observation, DecodeError> {
    let mut observation = Observation::new(reference(message, at)?, Provenance::Trigger);
    observation.event_time = message.last_updated_at.time(at, &["lastUpdatedAt"])?;
    let target = parts::TargetFields {
        id: (&message.instance_id, "instanceId"),
        status: (&message.instance_status, "instanceStatus"),
        lifecycle_events: &message.lifecycle_events,
    };
    observation.targets = vec![parts::target(target, at)?];
    Ok(observation)
}

fn reference(message: &Message, at: &Path) -> Result<DeploymentRef, DecodeError> {
    Ok(DeploymentRef {
        deployment_id: message.deployment_id.deployment_id(at, &["deploymentId"])?.into(),
        account: message.account_id.string(at, &["accountId"])?.map(CompactString::from),
        region: message.region.string(at, &["region"])?.map(CompactString::from),
    })
}

#[cfg(test)]
mod tests {
    use crate::decode::tests::{one, only};
    use crate::domain::*;

    #[test]
    fn documented_deployment_trigger() {
        let o = one(include_str!(
            "../../tests/fixtures/samples/sns-trigger-message-deployment-failed-docs-sample.json"
        ));
        assert_eq!(
            o.deployment,
            DeploymentRef {
                account: Some("111222333444".into()),
                region: Some("us-west-1".into()),
                deployment_id: "d-75I7MBT7C".into(),
            }
        );
        assert_eq!(o.provenance, Provenance::Trigger);
        assert!(o.is_state_change);
        assert_eq!(o.event_time, None);
        assert_eq!(o.application.as_deref(), Some("ProductionApp-us-west-3"));
        assert_eq!(o.deployment_group.as_deref(), Some("dep-group-def-456"));
        assert_eq!(o.status, Some(Status::Failed));
        assert_eq!(o.create_time, Some(1_446_744_188_595));
        assert_eq!(o.complete_time, Some(1_446_744_190_402));
        assert_eq!(
            o.overview,
            Some(Overview {
                failed: 10,
                ..Overview::default()
            })
        );
        assert_eq!(o.error_code.as_deref(), Some("IAM_ROLE_MISSING"));
        assert_eq!((o.rollback_of, o.rolled_back_by), (None, None));
        assert_eq!((o.creator, o.start_time), (None, None));
        assert!(o.targets.is_empty());
    }

    #[test]
    fn documented_instance_trigger() {
        let o = one(include_str!(
            "../../tests/fixtures/samples/sns-trigger-message-instance-succeeded-docs-sample.json"
        ));
        assert_eq!(o.deployment.account.as_deref(), Some("111222333444"));
        assert_eq!(o.deployment.region.as_deref(), Some("us-east-2"));
        assert_eq!(o.deployment.deployment_id, "d-75I7MBT7C");
        assert_eq!(o.provenance, Provenance::Trigger);
        assert!(!o.is_state_change);
        assert_eq!(o.status, None);
        assert_eq!(o.event_time, Some(1_446_744_207_564));
        assert_eq!(
            o.targets,
            vec![TargetObservation {
                target_id: "i-496589f7".into(),
                status: Some(TargetStatus::Succeeded),
                lifecycle_events: vec![
                    LifecycleEvent {
                        name: "ApplicationStop".into(),
                        status: Some(TargetStatus::Succeeded),
                        start_time: Some(1_446_744_188_595),
                        end_time: Some(1_446_744_188_711),
                        error_code: None,
                    },
                    LifecycleEvent {
                        name: "BeforeInstall".into(),
                        status: Some(TargetStatus::Succeeded),
                        start_time: Some(1_446_744_189_827),
                        end_time: Some(1_446_744_190_402),
                        error_code: None,
                    },
                ],
            }]
        );
    }

    #[test]
    fn real_world_quirks() {
        // Upper-case status, Java dates, a null completeTime, and every nested
        // object as a JSON string.
        let o = one(
            r#"{"region":"eu-west-1","accountId":"210987654321","eventTriggerName":"t",
            "applicationName":"app","deploymentId":"d-QUIRKS001","deploymentGroupName":"grp",
            "createTime":"Fri Oct 14 08:46:18 UTC 2022","completeTime":null,
            "deploymentOverview":"{\"Succeeded\":\"3\",\"Failed\":1,\"Skipped\":0,\"InProgress\":2,\"Pending\":0,\"Ready\":4}",
            "errorInformation":"{\"errorCode\":\"HEALTH_CONSTRAINTS\",\"errorMessage\":\"too few healthy\"}",
            "rollbackInformation":"{}","status":"IN_PROGRESS"}"#,
        );
        assert_eq!(o.status, Some(Status::InProgress));
        assert_eq!(o.create_time, Some(1_665_737_178_000));
        assert_eq!(o.complete_time, None);
        assert_eq!(
            o.overview,
            Some(Overview {
                pending: 0,
                in_progress: 2,
                succeeded: 3,
                failed: 1,
                skipped: 0,
                ready: 4
            })
        );
        assert_eq!(o.error_code.as_deref(), Some("HEALTH_CONSTRAINTS"));
        assert_eq!(o.rollback_of, None);
    }

    #[test]
    fn an_alarm_stop_names_its_alarms_in_the_encoded_error_information() {
        let o = one(
            r#"{"region":"eu-west-1","accountId":"210987654321","applicationName":"app","deploymentId":"d-ALARM0003",
            "deploymentGroupName":"grp","createTime":"Fri Oct 14 08:46:18 UTC 2022","completeTime":"Fri Oct 14 08:50:18 UTC 2022",
            "errorInformation":"{\"ErrorCode\":\"ALARM_ACTIVE\",\"ErrorMessage\":\"One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: <api-5xx>\"}",
            "status":"STOPPED"}"#,
        );
        assert_eq!((o.status, o.error_code.as_deref()), (Some(Status::Stopped), Some("ALARM_ACTIVE")));
        assert_eq!(o.activated_alarms, ["api-5xx"]);
    }

    #[test]
    fn unknown_status_keeps_the_rest() {
        let o = one(
            r#"{"region":"us-east-1","accountId":"123456789012","applicationName":"app",
            "deploymentId":"d-UNKNOWN01","deploymentGroupName":"grp",
            "createTime":"Wed Aug 10 18:39:05 UTC 2016","completeTime":"","status":"unknown"}"#,
        );
        assert_eq!(o.status, None);
        assert_eq!(o.deployment.deployment_id, "d-UNKNOWN01");
        assert_eq!(o.application.as_deref(), Some("app"));
        assert_eq!(o.create_time, Some(1_470_854_345_000));
        assert_eq!(o.complete_time, None);
        assert!(o.is_state_change);
    }

    #[test]
    fn statuses_in_every_case() {
        for (raw, status) in [
            ("CREATED", Status::Created),
            ("SUCCEEDED", Status::Succeeded),
            ("Failed", Status::Failed),
            ("STOPPED", Status::Stopped),
            ("READY", Status::Ready),
        ] {
            let body = format!(
                r#"{{"accountId":"1","region":"r","deploymentId":"d-1","status":"{raw}"}}"#
            );
            assert_eq!(one(&body).status, Some(status), "{raw}");
        }
    }

    #[test]
    fn ecs_failure_then_rollback() {
        // The shape of a 2022 ECS blue/green failure: the failed deployment reports an
        // error and an empty rollbackInformation, then the rollback deployment's
        // messages point back at it.
        let failed = one(
            r#"{"region":"us-east-1","accountId":"123456789012","eventTriggerName":"status",
            "applicationName":"AppECS-cluster-service","deploymentId":"d-MainDeployment",
            "deploymentGroupName":"DgpECS-cluster-service","createTime":"Fri Oct 14 08:46:18 UTC 2022",
            "completeTime":"Fri Oct 14 08:58:41 UTC 2022",
            "deploymentOverview":"{\"Succeeded\":0,\"Failed\":1,\"Skipped\":0,\"InProgress\":0,\"Pending\":0}",
            "status":"FAILED",
            "errorInformation":"{\"ErrorCode\":\"ECS_UPDATE_ERROR\",\"ErrorMessage\":\"The replacement task set is unhealthy.\"}",
            "rollbackInformation":"{}"}"#,
        );
        assert_eq!(failed.deployment.deployment_id, "d-MainDeployment");
        assert_eq!(failed.status, Some(Status::Failed));
        assert_eq!(failed.error_code.as_deref(), Some("ECS_UPDATE_ERROR"));
        assert_eq!(failed.complete_time, Some(1_665_737_921_000));
        assert_eq!(failed.overview.map(|o| o.failed), Some(1));
        assert_eq!((failed.rollback_of, failed.rolled_back_by), (None, None));

        let rollback = one(
            r#"{"region":"us-east-1","accountId":"123456789012","eventTriggerName":"status",
            "applicationName":"AppECS-cluster-service","deploymentId":"d-RollbackDeploy",
            "deploymentGroupName":"DgpECS-cluster-service","createTime":"Fri Oct 14 08:58:42 UTC 2022",
            "completeTime":null,"status":"CREATED",
            "rollbackInformation":"{\"RollbackMessage\":\"Deployment d-RollbackDeploy is triggered to roll back deployment d-MainDeployment.\",\"RollbackTriggeringDeploymentId\":\"d-MainDeployment\"}"}"#,
        );
        assert_eq!(rollback.deployment.deployment_id, "d-RollbackDeploy");
        assert_eq!(rollback.status, Some(Status::Created));
        assert_eq!(rollback.rollback_of.as_deref(), Some("d-MainDeployment"));
        assert_eq!(rollback.overview, None);
        assert_eq!(rollback.error_code, None);
    }

    #[test]
    fn wrong_types_name_the_field() {
        for (body, reason, field) in [
            (
                r#"{"accountId":"1","deploymentId":"d-1","status":5}"#,
                "invalid_field",
                "status",
            ),
            (
                r#"{"accountId":"1","deploymentId":"d-1","status":"FAILED","createTime":"yesterday"}"#,
                "invalid_timestamp",
                "createTime",
            ),
            (
                r#"{"accountId":"1","deploymentId":"d-1","status":"FAILED","deploymentOverview":"{\"Failed\":"}"#,
                "invalid_json",
                "deploymentOverview",
            ),
            (
                r#"{"accountId":"1","deploymentId":"d-1","status":"FAILED","deploymentOverview":{"Failed":-2}}"#,
                "invalid_field",
                "deploymentOverview.Failed",
            ),
            (
                r#"{"accountId":"1","deploymentId":"d-1","status":"FAILED","errorInformation":42}"#,
                "invalid_field",
                "errorInformation",
            ),
            (
                r#"{"accountId":1,"deploymentId":"d-1","status":"FAILED"}"#,
                "invalid_field",
                "accountId",
            ),
            (
                r#"{"accountId":"1","deploymentId":"d-1","instanceId":"i-1","instanceStatus":"Succeeded","lastUpdatedAt":"soon"}"#,
                "invalid_timestamp",
                "lastUpdatedAt",
            ),
            (
                r#"{"accountId":"1","deploymentId":"d-1","instanceStatus":"Succeeded","instanceId":""}"#,
                "missing_field",
                "instanceId",
            ),
            (
                r#"{"accountId":"1","deploymentId":"d-1","instanceId":"i-1","instanceStatus":"Succeeded","lifecycleEvents":[{"LifecycleEventStatus":"Failed"}]}"#,
                "missing_field",
                "lifecycleEvents[0].lifecycleEventName",
            ),
        ] {
            let err = only(body).unwrap_err();
            assert_eq!(err.reason(), reason, "{body}: {err}");
            assert!(
                err.to_string().contains(&format!("`{field}`")),
                "{body}: {err}"
            );
        }
    }
}
