//! CodeDeploy API output, as the poller receives it or as `aws deploy …` prints it.
//! The API knows neither account nor region: the ledger joins these observations to
//! a record by deployment id.

use compact_str::CompactString;
use super::json::{json_object, Leaf, Nested, Obj, Path, Slot};
use super::parts::{self, ErrorInformation, Overview, Rollback, Target, TargetFields};
use super::DecodeError;
use crate::domain::{DeploymentRef, Observation, Provenance, Revision};

json_object! {
    /// One `DeploymentInfo` (GetDeployment, BatchGetDeployments).
    struct DeploymentInfo {
        deployment_id: Leaf<'a> = b"deploymentid",
        application_name: Leaf<'a> = b"applicationname",
        deployment_group_name: Leaf<'a> = b"deploymentgroupname",
        status: Leaf<'a> = b"status",
        create_time: Leaf<'a> = b"createtime",
        start_time: Leaf<'a> = b"starttime",
        complete_time: Leaf<'a> = b"completetime",
        creator: Leaf<'a> = b"creator",
        deployment_config_name: Leaf<'a> = b"deploymentconfigname",
        compute_platform: Leaf<'a> = b"computeplatform",
        deployment_style: Obj<'a, DeploymentStyle<'a>> = b"deploymentstyle",
        deployment_overview: Obj<'a, Overview<'a>> = b"deploymentoverview",
        error_information: Obj<'a, ErrorInformation<'a>> = b"errorinformation",
        rollback_info: Obj<'a, Rollback<'a>> = b"rollbackinfo",
        description: Leaf<'a> = b"description",
        revision: Obj<'a, RevisionLocation<'a>> = b"revision",
    }
}

json_object! {
    struct DeploymentStyle {
        deployment_type: Leaf<'a> = b"deploymenttype",
    }
}

json_object! {
    /// `revision` (`RevisionLocation`): an S3 bundle, a GitHub commit, or inline AppSpec content.
    struct RevisionLocation {
        revision_type: Leaf<'a> = b"revisiontype",
        s3_location: Obj<'a, S3Location<'a>> = b"s3location",
        git_hub_location: Obj<'a, GitHubLocation<'a>> = b"githublocation",
    }
}

json_object! {
    struct S3Location {
        bucket: Leaf<'a> = b"bucket",
        key: Leaf<'a> = b"key",
        version: Leaf<'a> = b"version",
        e_tag: Leaf<'a> = b"etag",
    }
}

json_object! {
    struct GitHubLocation {
        repository: Leaf<'a> = b"repository",
        commit_id: Leaf<'a> = b"commitid",
    }
}

json_object! {
    /// One `DeploymentTarget` (GetDeploymentTarget, BatchGetDeploymentTargets).
    struct TargetWrapper {
        /// One member per compute platform: see [`TARGET_MEMBERS`].
        target: Obj<'a, Target<'a>> = b"instancetarget" | b"lambdatarget" | b"ecstarget" | b"cloudformationtarget",
    }
}

/// Where the target sits in a `DeploymentTarget`, by compute platform.
pub(super) const TARGET_MEMBERS: [&str; 4] = ["instanceTarget", "lambdaTarget", "ecsTarget", "cloudFormationTarget"];

/// One `DeploymentInfo`.
pub(super) fn deployment_info(info: &DeploymentInfo, at: &Path) -> Result<Observation, DecodeError> {
    let deployment = DeploymentRef {
        deployment_id: info.deployment_id.deployment_id(at, &["deploymentId"])?.into(),
        ..DeploymentRef::default()
    };
    let text = |slot: &Slot<'_, Leaf<'_>>, name| -> Result<Option<CompactString>, DecodeError> {
        Ok(slot.string(at, &[name])?.map(CompactString::from))
    };
    let mut observation = Observation::new(deployment, Provenance::Api);
    observation.application = text(&info.application_name, "applicationName")?;
    observation.deployment_group = text(&info.deployment_group_name, "deploymentGroupName")?;
    observation.status = info.status.status(at, &["status"])?;
    observation.create_time = info.create_time.time(at, &["createTime"])?;
    observation.start_time = info.start_time.time(at, &["startTime"])?;
    observation.complete_time = info.complete_time.time(at, &["completeTime"])?;
    observation.creator = text(&info.creator, "creator")?;
    observation.deployment_config = text(&info.deployment_config_name, "deploymentConfigName")?;
    observation.compute_platform = text(&info.compute_platform, "computePlatform")?;
    observation.deployment_type = match info.deployment_style.object(at, &["deploymentStyle"])? {
        Some(style) => style.deployment_type.string(&at.key("deploymentStyle"), &["deploymentType"])?.map(CompactString::from),
        None => None,
    };
    observation.overview = parts::overview(&info.deployment_overview, at)?;
    parts::error(&info.error_information, at, &mut observation)?;
    parts::rollback(&info.rollback_info, at, "rollbackInfo", &mut observation)?;
    // What lead time needs is optional: a malformed description or revision
    // loses the lead time, never the deployment.
    observation.description = info.description.string(at, &["description"]).ok().flatten().map(bounded);
    observation.revision = info
        .revision
        .object(at, &["revision"])
        .ok()
        .flatten()
        .and_then(|location| revision(&location, &at.key("revision")));
    Ok(observation)
}

/// Longest description or revision field kept (CodeDeploy allows far less).
const MAX_TEXT_CHARS: usize = 2048;

fn bounded(text: &str) -> CompactString {
    // No more bytes than the limit, so no more characters: nothing to count.
    if text.len() <= MAX_TEXT_CHARS {
        return text.into();
    }
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => text[..cut].into(),
        None => text.into(),
    }
}

fn revision(location: &RevisionLocation, at: &Path) -> Option<Revision> {
    let kind = location.revision_type.string(at, &["revisionType"]).ok().flatten().unwrap_or_default();
    let text = |slot: &Slot<'_, Leaf<'_>>, at: &Path, name| slot.string(at, &[name]).ok().flatten().map(|t| bounded(t).into_string());
    let wanted = |of: &str| kind.is_empty() || kind.eq_ignore_ascii_case(of);
    if let Some(s3) = location.s3_location.object(at, &["s3Location"]).ok().flatten().filter(|_| wanted("s3")) {
        let at = at.key("s3Location");
        let (bucket, key) = (text(&s3.bucket, &at, "bucket")?, text(&s3.key, &at, "key")?);
        let version = text(&s3.version, &at, "version");
        let etag = text(&s3.e_tag, &at, "eTag").map(|e| e.trim_matches('"').to_owned()).filter(|e| !e.is_empty());
        return Some(Revision::S3 { bucket, key, version, etag });
    }
    if let Some(github) =
        location.git_hub_location.object(at, &["gitHubLocation"]).ok().flatten().filter(|_| wanted("github"))
    {
        let at = at.key("gitHubLocation");
        let (repository, commit) = (text(&github.repository, &at, "repository")?, text(&github.commit_id, &at, "commitId")?);
        return Some(Revision::GitHub { repository, commit });
    }
    (kind.eq_ignore_ascii_case("AppSpecContent") || kind.eq_ignore_ascii_case("String")).then_some(Revision::Inline)
}

/// The target inside one `DeploymentTarget`.
pub(super) fn deployment_target<'s>(wrapper: &'s TargetWrapper<'s>, at: &Path) -> Result<Nested<'s, Target<'s>>, DecodeError> {
    wrapper.target.object(at, &TARGET_MEMBERS)?.ok_or_else(|| DecodeError::MissingField {
        field: format!("{at}.{{{}}}", TARGET_MEMBERS.join(",")),
    })
}

/// Which key holds a target's id: `targetId` in API deployment targets, `instanceId`
/// in deprecated instance summaries.
#[derive(Clone, Copy)]
pub(super) enum TargetKey {
    TargetId,
    InstanceId,
}

/// Groups targets into one observation per deployment, in the order the deployments
/// first appear. Each target comes with its path in the message.
pub(super) fn targets(items: Vec<(Nested<'_, Target<'_>>, Path)>, key: TargetKey) -> Result<Vec<Observation>, DecodeError> {
    // A batch almost always holds the targets of one deployment: room for that one,
    // and for the rest of the batch in the targets of each.
    let mut observations: Vec<Observation> = Vec::with_capacity(1);
    for (index, (item, at)) in items.iter().enumerate() {
        let deployment_id = item.deployment_id.deployment_id(at, &["deploymentId"])?;
        let id = match key {
            TargetKey::TargetId => (&item.target_id, "targetId"),
            TargetKey::InstanceId => (&item.instance_id, "instanceId"),
        };
        let fields = TargetFields { id, status: (&item.status, "status"), lifecycle_events: &item.lifecycle_events };
        let target = parts::target(fields, at)?;
        match observations.iter_mut().find(|observation| observation.deployment.deployment_id == deployment_id) {
            Some(observation) => observation.targets.push(target),
            None => {
                let deployment = DeploymentRef { deployment_id: deployment_id.into(), ..DeploymentRef::default() };
                let mut targets = Vec::with_capacity(items.len() - index);
                targets.push(target);
                observations.push(Observation { targets, ..Observation::new(deployment, Provenance::Api) });
            }
        }
    }
    Ok(observations)
}

#[cfg(test)]
mod tests {
    use crate::decode::tests::{ignored, observations, one, only};
    use crate::decode::IgnoreReason;
    use crate::domain::*;

    fn api_only(deployment_id: &str) -> DeploymentRef {
        DeploymentRef {
            account: None,
            region: None,
            deployment_id: deployment_id.into(),
        }
    }

    fn event(
        name: &str,
        status: TargetStatus,
        start: Option<Millis>,
        end: Option<Millis>,
    ) -> LifecycleEvent {
        LifecycleEvent {
            name: name.into(),
            status: Some(status),
            start_time: start,
            end_time: end,
            error_code: None,
        }
    }

    #[test]
    fn get_deployment_sample() {
        let o = one(include_str!(
            "../../tests/fixtures/samples/api-get-deployment-output-awscli-example.json"
        ));
        let mut expected = Observation::new(api_only("d-A1B2C3123"), Provenance::Api);
        expected.application = Some("WordPress_App".into());
        expected.deployment_group = Some("WordPress_DG".into());
        expected.status = Some(Status::Succeeded);
        expected.create_time = Some(1_409_764_576_589);
        expected.complete_time = Some(1_409_764_596_101);
        expected.creator = Some("user".into());
        expected.deployment_config = Some("CodeDeployDefault.OneAtATime".into());
        expected.overview = Some(Overview {
            succeeded: 1,
            ..Overview::default()
        });
        expected.description = Some("My WordPress app deployment".into());
        expected.revision = Some(Revision::S3 {
            bucket: "amzn-s3-demo-bucket".into(),
            key: "WordPressApp.zip".into(),
            version: None,
            etag: Some("dd56cfdEXAMPLE8e768f9d77fEXAMPLE".into()),
        });
        assert_eq!(o, expected);
    }

    #[test]
    fn batch_get_deployments_sample() {
        let found = observations(include_str!(
            "../../tests/fixtures/samples/api-batch-get-deployments-output-awscli-example.json"
        ));
        assert_eq!(found.len(), 2);

        let first = &found[0];
        assert_eq!(first.deployment, api_only("d-A1B2C3111"));
        assert_eq!(first.provenance, Provenance::Api);
        assert!(!first.is_state_change);
        assert_eq!(first.event_time, None);
        assert_eq!(first.application.as_deref(), Some("WordPress_App"));
        assert_eq!(first.deployment_group.as_deref(), Some("WordPress_DG"));
        assert_eq!(first.status, Some(Status::Failed));
        assert_eq!(first.create_time, Some(1_408_480_721_900));
        assert_eq!(first.complete_time, Some(1_408_480_741_822));
        assert_eq!(first.creator.as_deref(), Some("user"));
        assert_eq!(first.error_code, None);
        assert_eq!(
            first.overview,
            Some(Overview {
                succeeded: 1,
                ..Overview::default()
            })
        );

        let second = &found[1];
        assert_eq!(second.deployment, api_only("d-A1B2C3222"));
        assert_eq!(second.application.as_deref(), Some("MyOther_App"));
        assert_eq!(second.deployment_group.as_deref(), Some("MyOther_DG"));
        assert_eq!(second.status, Some(Status::Failed));
        assert_eq!(second.create_time, Some(1_409_764_576_589));
        assert_eq!(second.complete_time, Some(1_409_764_596_101));
        assert_eq!(second.error_code.as_deref(), Some("HEALTH_CONSTRAINTS"));
        assert_eq!(
            second.overview,
            Some(Overview {
                failed: 1,
                ..Overview::default()
            })
        );
    }

    #[test]
    fn batch_get_deployment_targets_sample() {
        let o = one(include_str!("../../tests/fixtures/samples/api-batch-get-deployment-targets-output-awscli-example.json"));
        let mut expected = Observation::new(api_only("d-1A2B3C4D5"), Provenance::Api);
        expected.targets = vec![TargetObservation {
            target_id: "i-01a2b3c4d5e6f1111".into(),
            status: Some(TargetStatus::Succeeded),
            lifecycle_events: vec![
                event(
                    "ApplicationStop",
                    TargetStatus::Succeeded,
                    Some(1_556_918_592_162),
                    Some(1_556_918_592_247),
                ),
                event(
                    "DownloadBundle",
                    TargetStatus::Succeeded,
                    Some(1_556_918_593_193),
                    Some(1_556_918_593_981),
                ),
                event(
                    "BeforeInstall",
                    TargetStatus::Succeeded,
                    Some(1_556_918_594_805),
                    Some(1_556_918_681_807),
                ),
            ],
        }];
        assert_eq!(o, expected);
    }

    #[test]
    fn get_deployment_target_sample() {
        let o = one(include_str!(
            "../../tests/fixtures/samples/api-get-deployment-target-output-awscli-example.json"
        ));
        assert_eq!(o.deployment, api_only("d-A1B2C3111"));
        assert_eq!(o.provenance, Provenance::Api);
        assert_eq!(o.status, None);
        assert_eq!(o.targets.len(), 1);
        let target = &o.targets[0];
        assert_eq!(target.target_id, "i-a1b2c3d4e5f611111");
        assert_eq!(target.status, Some(TargetStatus::Succeeded));
        let names: Vec<_> = target
            .lifecycle_events
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "ApplicationStop",
                "DownloadBundle",
                "BeforeInstall",
                "Install",
                "AfterInstall",
                "ApplicationStart",
                "ValidateService"
            ]
        );
        assert!(target
            .lifecycle_events
            .iter()
            .all(|e| e.status == Some(TargetStatus::Succeeded) && e.error_code.is_none()));
        assert_eq!(
            target.lifecycle_events[6],
            event(
                "ValidateService",
                TargetStatus::Succeeded,
                Some(1_556_918_686_650),
                Some(1_556_918_686_747)
            )
        );
    }

    #[test]
    fn deprecated_instance_summary_sample() {
        let o = one(include_str!(
            "../../tests/fixtures/samples/api-get-deployment-instance-output-awscli-example.json"
        ));
        assert_eq!(o.deployment, api_only("d-QA4G4F9EX"));
        assert_eq!(o.provenance, Provenance::Api);
        let target = &o.targets[..];
        assert_eq!(target.len(), 1);
        assert_eq!(target[0].target_id, "i-902e9fEX");
        assert_eq!(target[0].status, Some(TargetStatus::Failed));
        assert_eq!(
            target[0].lifecycle_events,
            vec![
                event(
                    "ApplicationStop",
                    TargetStatus::Succeeded,
                    Some(1_408_480_726_437),
                    Some(1_408_480_726_569)
                ),
                event(
                    "DownloadBundle",
                    TargetStatus::Succeeded,
                    Some(1_408_480_727_665),
                    Some(1_408_480_728_016)
                ),
                event(
                    "BeforeInstall",
                    TargetStatus::Succeeded,
                    Some(1_408_480_729_125),
                    Some(1_408_480_729_744)
                ),
                event(
                    "Install",
                    TargetStatus::Succeeded,
                    Some(1_408_480_730_844),
                    Some(1_408_480_730_979)
                ),
                event(
                    "AfterInstall",
                    TargetStatus::Failed,
                    Some(1_408_480_732_100),
                    Some(1_408_480_732_603)
                ),
                event(
                    "ApplicationStart",
                    TargetStatus::Skipped,
                    None,
                    Some(1_408_480_732_606)
                ),
                event(
                    "ValidateService",
                    TargetStatus::Skipped,
                    None,
                    Some(1_408_480_732_606)
                ),
            ]
        );
    }

    #[test]
    fn samples_without_deployment_state_are_ignored() {
        for sample in [
            include_str!(
                "../../tests/fixtures/samples/api-list-deployments-output-awscli-example.json"
            ),
            include_str!(
                "../../tests/fixtures/samples/api-get-deployment-config-output-awscli-example.json"
            ),
            include_str!(
                "../../tests/fixtures/samples/lambda-lifecycle-hook-invocation-event.json"
            ),
        ] {
            assert_eq!(ignored(sample), IgnoreReason::NoDeploymentState);
        }
    }

    #[test]
    fn moto_deployment_info() {
        // moto: UUID ids, RFC 3339 createTime, null times, `{}` for rollbackInfo,
        // errorInformation and deploymentStyle, and an empty externalId.
        let o = one(
            r#"{"deploymentsInfo":[{"applicationName":"app","deploymentGroupName":"grp",
            "deploymentConfigName":"CodeDeployDefault.OneAtATime","deploymentId":"0b8e52c4-6e3f-4c43-9d2d-7d7d1a6a5f10",
            "previousRevision":{},"revision":{},"status":"Created","errorInformation":{},
            "createTime":"2026-11-26T05:12:56.123Z","startTime":null,"completeTime":null,
            "deploymentOverview":{"Pending":0,"InProgress":0,"Succeeded":0,"Failed":0,"Skipped":0,"Ready":0},
            "description":null,"creator":"user","rollbackInfo":{},"deploymentStyle":{},
            "computePlatform":"Server","externalId":"","relatedDeployments":{},"overrideAlarmConfiguration":null}]}"#,
        );
        assert_eq!(
            o.deployment.deployment_id,
            "0b8e52c4-6e3f-4c43-9d2d-7d7d1a6a5f10"
        );
        assert_eq!(o.status, Some(Status::Created));
        assert_eq!(o.create_time, Some(1_795_669_976_123));
        assert_eq!((o.start_time, o.complete_time), (None, None));
        assert_eq!(
            (o.rollback_of, o.rolled_back_by, o.error_code),
            (None, None, None)
        );
        assert_eq!(o.deployment_type, None);
        assert_eq!(o.compute_platform.as_deref(), Some("Server"));
        assert_eq!(o.overview, Some(Overview::default()));
    }

    #[test]
    fn rollback_deployment_info() {
        let o = one(
            r#"{"deploymentInfo":{"applicationName":"app","deploymentGroupName":"grp",
            "deploymentId":"d-ROLLBACK1","status":"Succeeded","creator":"codeDeployRollback",
            "createTime":1665737922.0,"startTime":1665737923.5,"completeTime":1665738100.25,
            "computePlatform":"ECS","deploymentStyle":{"deploymentType":"BLUE_GREEN","deploymentOption":"WITH_TRAFFIC_CONTROL"},
            "rollbackInfo":{"rollbackTriggeringDeploymentId":"d-ORIGINAL1","rollbackMessage":"…"}}}"#,
        );
        assert_eq!(o.creator.as_deref(), Some("codeDeployRollback"));
        assert_eq!(o.rollback_of.as_deref(), Some("d-ORIGINAL1"));
        assert_eq!(o.start_time, Some(1_665_737_923_500));
        assert_eq!(o.complete_time, Some(1_665_738_100_250));
        assert_eq!(o.deployment_type.as_deref(), Some("BLUE_GREEN"));
        assert_eq!(o.compute_platform.as_deref(), Some("ECS"));

        let o = one(
            r#"{"deploymentId":"d-ORIGINAL1","applicationName":"app","status":"Failed",
            "errorInformation":{"code":"ECS_UPDATE_ERROR","message":"unhealthy"},
            "rollbackInfo":{"rollbackDeploymentId":"d-ROLLBACK1","rollbackMessage":"…"}}"#,
        );
        assert_eq!(o.provenance, Provenance::Api);
        assert_eq!(o.rolled_back_by.as_deref(), Some("d-ROLLBACK1"));
        assert_eq!(o.error_code.as_deref(), Some("ECS_UPDATE_ERROR"));
        assert!(o.activated_alarms.is_empty(), "only an ALARM_ACTIVE message names alarms");
    }

    #[test]
    fn an_alarm_stop_names_its_alarms_and_the_config_it_ran_with() {
        let o = one(
            r#"{"deploymentId":"d-ALARM0001","applicationName":"app","status":"Stopped",
            "deploymentConfigName":"CodeDeployDefault.LambdaCanary10Percent5Minutes",
            "errorInformation":{"code":"ALARM_ACTIVE","message":"One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, and the affected deployments have been stopped. Activated alarms: <checkout-p99-latency> <checkout 5xx errors>"}}"#,
        );
        assert_eq!(o.error_code.as_deref(), Some("ALARM_ACTIVE"));
        assert_eq!(o.activated_alarms, ["checkout 5xx errors", "checkout-p99-latency"]);
        assert_eq!(o.deployment_config.as_deref(), Some("CodeDeployDefault.LambdaCanary10Percent5Minutes"));
        // A message that cannot be read loses the names, not the deployment.
        let o = one(r#"{"deploymentId":"d-ALARM0002","applicationName":"app","status":"Stopped","errorInformation":{"code":"ALARM_ACTIVE","message":42}}"#);
        assert_eq!((o.error_code.as_deref(), o.activated_alarms.len()), (Some("ALARM_ACTIVE"), 0));
    }

    #[test]
    fn targets_group_by_deployment_and_keep_hook_errors() {
        let found = observations(
            r#"{"deploymentTargets":[
            {"deploymentTargetType":"InstanceTarget","instanceTarget":{"deploymentId":"d-A","targetId":"i-1","status":"Failed",
              "lifecycleEvents":[{"lifecycleEventName":"AfterInstall","status":"Failed","startTime":1.5,"endTime":2,
                "diagnostics":{"errorCode":"ScriptFailed","scriptName":"x.sh","message":"","logTail":""}},
                {"lifecycleEventName":"ApplicationStart","status":"Skipped"}]}},
            {"deploymentTargetType":"ECSTarget","ecsTarget":{"deploymentId":"d-B","targetId":"cluster:service","status":"InProgress",
              "lifecycleEvents":[],"taskSetsInfo":[]}},
            {"deploymentTargetType":"LambdaTarget","lambdaTarget":{"deploymentId":"d-A","targetId":"my-function","status":"Succeeded"}}
        ]}"#,
        );
        let summary: Vec<_> = found
            .iter()
            .map(|o| {
                (
                    o.deployment.deployment_id.as_str(),
                    o.targets
                        .iter()
                        .map(|t| t.target_id.as_str())
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("d-A", vec!["i-1", "my-function"]),
                ("d-B", vec!["cluster:service"])
            ]
        );
        let hooks = &found[0].targets[0].lifecycle_events;
        assert_eq!(
            hooks[0],
            LifecycleEvent {
                name: "AfterInstall".into(),
                status: Some(TargetStatus::Failed),
                start_time: Some(1_500),
                end_time: Some(2_000),
                error_code: Some("ScriptFailed".into()),
            }
        );
        assert_eq!(
            hooks[1],
            LifecycleEvent {
                name: "ApplicationStart".into(),
                status: Some(TargetStatus::Skipped),
                start_time: None,
                end_time: None,
                error_code: None
            }
        );
        assert_eq!(found[1].targets[0].status, Some(TargetStatus::InProgress));
    }

    #[test]
    fn instances_summary_batch() {
        let found = observations(
            r#"{"instancesSummary":[
            {"deploymentId":"d-A","instanceId":"arn:aws:ec2:us-east-1:123456789012:instance/i-1","status":"Succeeded"},
            {"deploymentId":"d-A","instanceId":"arn:aws:ec2:us-east-1:123456789012:instance/i-2","status":"Pending"}]}"#,
        );
        assert_eq!(found.len(), 1);
        let statuses: Vec<_> = found[0]
            .targets
            .iter()
            .map(|t| (t.target_id.as_str(), t.status))
            .collect();
        assert_eq!(
            statuses,
            [
                ("i-1", Some(TargetStatus::Succeeded)),
                ("i-2", Some(TargetStatus::Pending))
            ]
        );
    }

    #[test]
    fn empty_batches_are_ignored() {
        for body in [
            r#"{"deploymentsInfo":[]}"#,
            r#"{"deploymentTargets":[]}"#,
            r#"{"instancesSummary":[]}"#,
        ] {
            assert_eq!(ignored(body), IgnoreReason::NoDeploymentState, "{body}");
        }
    }

    #[test]
    fn malformed_api_output() {
        for (body, reason) in [
            (
                r#"{"deploymentInfo":{"applicationName":"a","status":"Failed"}}"#,
                "missing_field",
            ),
            (r#"{"deploymentInfo":"nope"}"#, "invalid_json"),
            (
                r#"{"deploymentsInfo":{"deploymentId":"d-1"}}"#,
                "invalid_field",
            ),
            (
                r#"{"deploymentsInfo":[{"deploymentId":"d-1","status":["Failed"]}]}"#,
                "invalid_field",
            ),
            (
                r#"{"deploymentsInfo":[{"deploymentId":"d-1","createTime":"yesterday"}]}"#,
                "invalid_timestamp",
            ),
            (
                r#"{"deploymentsInfo":[{"deploymentId":"d-1","completeTime":1e20}]}"#,
                "invalid_timestamp",
            ),
            (
                r#"{"deploymentsInfo":[{"deploymentId":"d-1","deploymentOverview":{"Failed":1.5}}]}"#,
                "invalid_field",
            ),
            (
                r#"{"deploymentTarget":{"deploymentTargetType":"InstanceTarget"}}"#,
                "missing_field",
            ),
            (
                r#"{"deploymentTarget":{"instanceTarget":{"deploymentId":"d-1","status":"Failed"}}}"#,
                "missing_field",
            ),
            (
                r#"{"deploymentTargets":[{"instanceTarget":{"deploymentId":"d-1","targetId":"i-1","lifecycleEvents":{}}}]}"#,
                "invalid_field",
            ),
            (
                r#"{"deploymentTargets":[{"instanceTarget":{"deploymentId":"d-1","targetId":"i-1","lifecycleEvents":[{"lifecycleEventName":"Install","startTime":-1}]}}]}"#,
                "invalid_timestamp",
            ),
        ] {
            assert_eq!(only(body).unwrap_err().reason(), reason, "{body}");
        }
        let err = only(r#"{"deploymentsInfo":[{"deploymentId":"d-1"},{"deploymentId":"d-2","startTime":"soon"}]}"#).unwrap_err();
        assert!(
            err.to_string().contains("`deploymentsInfo[1].startTime`"),
            "{err}"
        );
    }
}
