//! The AWS sources against a fake AWS that nobody here wrote: moto, run by
//! tests/moto/harness.py on 127.0.0.1 (port 0) with a counting,
//! fault-injecting proxy in front. `setup` makes the queue and the rule,
//! events go through EventBridge PutEvents into SQS, deployments progress in
//! moto's CodeDeploy, and every test asserts on `/metrics` as Prometheus
//! reads it. moto is required: a missing moto fails with the install command.

#[path = "moto/support.rs"]
mod support;

use std::time::{Duration, Instant};

use codedeploy_exporter::setup::{self, Change, SetupArgs};
use serde_json::json;
use support::*;

fn setup_args(moto: &Moto, dry_run: bool) -> SetupArgs {
    SetupArgs {
        queue_names: vec!["codedeploy-exporter".into()],
        max_receive_count: 5,
        rule_name: "codedeploy-exporter".into(),
        bus_name: "default".into(),
        region: Some(REGION.into()),
        endpoint_url: Some(moto.endpoint.clone()),
        role_arns: vec![],
        dry_run,
    }
}

/// Runs `setup`; returns its outcome and report.
async fn run_setup(moto: &Moto, dry_run: bool) -> (setup::Outcome, String) {
    let mut out = Vec::new();
    let outcome = setup::run(&setup_args(moto, dry_run), &mut out).await.expect("setup runs");
    (outcome, String::from_utf8(out).expect("UTF-8 report"))
}

fn changes(outcome: &setup::Outcome) -> Vec<Change> {
    outcome.steps.iter().map(|s| s.change).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_is_idempotent_and_its_dry_run_changes_nothing() {
    let _serial = serial().await;
    let moto = Moto::start();
    let (plan, report) = run_setup(&moto, true).await;
    assert!(changes(&plan).iter().all(|c| *c == Change::Create), "{report}");
    assert_eq!(plan.steps.len(), 4, "rule, DLQ, queue, target: {report}");
    assert!(report.contains("dry run") && report.contains("codedeploy:BatchGetDeployments"), "{report}");
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk(REGION).await);
    assert!(sqs.get_queue_url().queue_name("codedeploy-exporter").send().await.is_err(), "the dry run created nothing");

    let (done, report) = run_setup(&moto, false).await;
    assert!(changes(&done).iter().all(|c| *c == Change::Create), "{report}");
    let (again, report) = run_setup(&moto, false).await;
    assert!(changes(&again).iter().all(|c| *c == Change::Unchanged), "a second run changes nothing: {report}");
    assert_eq!(again.queue_urls, done.queue_urls);

    // Someone changed the redrive policy: setup puts it back, and only it.
    let url = &done.queue_urls[0];
    sqs.set_queue_attributes()
        .queue_url(url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "5")
        .send()
        .await
        .expect("SetQueueAttributes");
    let (fixed, report) = run_setup(&moto, false).await;
    let updated: Vec<_> = fixed.steps.iter().filter(|s| s.change == Change::Update).collect();
    assert_eq!(updated.len(), 1, "{report}");
    assert!(updated[0].what.contains("VisibilityTimeout"), "{report}");

    // What it made: the redrive to the DLQ, the rule's pattern and target, the policy.
    use aws_sdk_sqs::types::QueueAttributeName as A;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(A::All)
        .send()
        .await
        .expect("attributes")
        .attributes
        .unwrap_or_default();
    let redrive: serde_json::Value = serde_json::from_str(&attributes[&A::RedrivePolicy]).expect("redrive JSON");
    assert!(redrive["deadLetterTargetArn"].as_str().is_some_and(|a| a.ends_with(":codedeploy-exporter-dlq")));
    let policy: serde_json::Value = serde_json::from_str(&attributes[&A::Policy]).expect("policy JSON");
    assert_eq!(policy["Statement"][0]["Condition"]["ArnEquals"]["aws:SourceArn"], json!(done.rule_arn));
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk(REGION).await);
    let rule = events.describe_rule().name("codedeploy-exporter").send().await.expect("rule");
    let pattern: serde_json::Value = serde_json::from_str(rule.event_pattern().expect("pattern")).expect("pattern JSON");
    assert_eq!(pattern, setup::event_pattern());
    let targets = events.list_targets_by_rule().rule("codedeploy-exporter").send().await.expect("targets");
    assert_eq!(targets.targets().len(), 1);
    assert_eq!(targets.targets()[0].arn(), done.queue_arns[0]);
}

/// The check of issue 3: `setup`, then `serve` on the queue with a 2 s poll
/// while deployments are created, progressed, failed, stopped and rolled back
/// in moto, with their events put on EventBridge (one deliberately not).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_enrichment_and_reconciliation_give_the_truth() {
    let _serial = serial().await;
    let started = Instant::now();
    let moto = Moto::start();
    let (setup, _) = run_setup(&moto, false).await;
    let queue = setup.queue_urls[0].clone();
    let storage = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start(
        storage.path(),
        &["--aws.endpoint-url", &moto.proxy, "--sqs.queue-url", &queue, "--poll.interval", "2s", "--ledger.settle-time", "5s"],
    )
    .await;
    exporter
        .wait_for(Duration::from_secs(20), "the first poll", |s| {
            s.sum("codedeploy_exporter_aws_requests_total", &[("operation", "ListDeployments"), ("outcome", "success")]) >= 1.0
        })
        .await;
    let sdk = moto.sdk(REGION).await;
    let events = aws_sdk_eventbridge::Client::new(&sdk);
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let put = |entries: Vec<aws_sdk_eventbridge::types::PutEventsRequestEntry>| {
        let events = events.clone();
        async move {
            let out = events.put_events().set_entries(Some(entries)).send().await.expect("PutEvents");
            assert_eq!(out.failed_entry_count(), 0);
        }
    };
    let event = |id: &str, state: &str, at: f64| deployment_event(ACCOUNT, REGION, "shop", "prod", id, state, at);
    let t = now_s();
    let add = |id: &str, extra: serde_json::Value| {
        let mut command = json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": id,
            "status": "InProgress", "create_time": t + 1.0, "start_time": t + 1.0});
        command.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        moto.cmd(command);
    };
    let hooks_ok = json!([{"lifecycleEventName": "BeforeInstall", "status": "Succeeded", "startTime": t + 1.0, "endTime": t + 1.5},
                          {"lifecycleEventName": "AfterInstall", "status": "Succeeded", "startTime": t + 1.5, "endTime": t + 1.75}]);

    // Three deployments start; the events of two are put on EventBridge.
    add("d-SUCCESS01", json!({}));
    add("d-FAILED001", json!({}));
    add("d-NOEVENT01", json!({}));
    put(vec![event("d-SUCCESS01", "START", t + 1.0), event("d-FAILED001", "START", t + 1.0)]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // d-SUCCESS01 succeeds on two instances.
    moto.cmd(json!({"cmd": "set_deployment", "id": "d-SUCCESS01", "status": "Succeeded", "complete_time": t + 2.0,
        "overview": {"Succeeded": 2}}));
    moto.cmd(json!({"cmd": "set_targets", "id": "d-SUCCESS01", "targets": [
        {"targetId": "i-0000000000000001", "status": "Succeeded", "lifecycleEvents": hooks_ok},
        {"targetId": "i-0000000000000002", "status": "Succeeded", "lifecycleEvents": hooks_ok}]}));
    // d-FAILED001 fails on a hook, and CodeDeploy rolls it back with d-ROLLBACK1.
    moto.cmd(json!({"cmd": "set_deployment", "id": "d-FAILED001", "status": "Failed", "complete_time": t + 3.0,
        "overview": {"Failed": 1}, "error_information": {"code": "HEALTH_CONSTRAINTS", "message": "too few healthy"},
        "rollback_info": {"rollbackDeploymentId": "d-ROLLBACK1", "rollbackMessage": "rolled back"}}));
    moto.cmd(json!({"cmd": "set_targets", "id": "d-FAILED001", "targets": [
        {"targetId": "i-0000000000000001", "status": "Failed", "lifecycleEvents": [
            {"lifecycleEventName": "AfterInstall", "status": "Failed", "startTime": t + 2.0, "endTime": t + 2.5,
             "diagnostics": {"errorCode": "ScriptFailed", "scriptName": "check.sh", "message": "exit 1", "logTail": ""}}]}]}));
    add("d-ROLLBACK1", json!({"status": "Succeeded", "creator": "codeDeployRollback", "create_time": t + 3.0,
        "start_time": t + 3.0, "complete_time": t + 4.0, "overview": {"Succeeded": 1},
        "rollback_info": {"rollbackTriggeringDeploymentId": "d-FAILED001", "rollbackMessage": "rollback"}}));
    moto.cmd(json!({"cmd": "set_targets", "id": "d-ROLLBACK1", "targets": [
        {"targetId": "i-0000000000000001", "status": "Succeeded", "lifecycleEvents": hooks_ok}]}));
    // d-NOEVENT01 succeeds and nobody tells EventBridge: reconciliation finds it.
    moto.cmd(json!({"cmd": "set_deployment", "id": "d-NOEVENT01", "status": "Succeeded", "complete_time": t + 5.0,
        "overview": {"Succeeded": 1}}));
    moto.cmd(json!({"cmd": "set_targets", "id": "d-NOEVENT01", "targets": [
        {"targetId": "i-0000000000000003", "status": "Succeeded", "lifecycleEvents": hooks_ok}]}));
    // d-STOPPED01 is stopped before it started: only its STOP event exists.
    add("d-STOPPED01", json!({"status": "Stopped", "create_time": t + 5.5, "complete_time": t + 6.0,
        "error_information": {"code": "MANUAL_STOP", "message": "stopped by a user"}}));
    put(vec![
        event("d-SUCCESS01", "SUCCESS", t + 2.0),
        event("d-FAILED001", "FAILURE", t + 3.0),
        event("d-ROLLBACK1", "START", t + 3.0),
        event("d-ROLLBACK1", "SUCCESS", t + 4.0),
        event("d-STOPPED01", "STOP", t + 6.0),
    ])
    .await;
    // A re-delivery, a message nobody can decode, and the SNS trigger test message.
    put(vec![event("d-SUCCESS01", "SUCCESS", t + 2.0)]).await;
    sqs.send_message().queue_url(&queue).message_body("{\"this is\": \"not an event\"").send().await.expect("send");
    let trigger_test = json!({"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
        "Subject": "AWS CodeDeploy notification setup for trigger deploys",
        "Message": "Your AWS CodeDeploy trigger deploys is able to send notifications to this topic.",
        "Timestamp": "2026-11-26T05:12:56.000Z"});
    sqs.send_message().queue_url(&queue).message_body(trigger_test.to_string()).send().await.expect("send");

    let scrape = exporter
        .wait_for(Duration::from_secs(60), "every deployment counted and the missed event noticed", |s| {
            s.sum("codedeploy_deployments_total", &[]) == 5.0
                && s.sum("codedeploy_exporter_data_quality_issues_total", &[("reason", "found_only_by_polling")]) == 1.0
                && s.sum("codedeploy_exporter_events_total", &[("source", "sqs"), ("outcome", "rejected")]) == 1.0
                && s.sum("codedeploy_exporter_events_total", &[("source", "sqs"), ("outcome", "ignored")]) == 1.0
        })
        .await;
    assert_promtool_clean(&scrape.text);
    let group = [("account_id", ACCOUNT), ("region", REGION), ("application", "shop"), ("deployment_group", "prod")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut labels = group.to_vec();
        labels.extend_from_slice(extra);
        labels
    };
    let total = |status| scrape.sum("codedeploy_deployments_total", &with(&[("status", status)]));
    assert_eq!((total("succeeded"), total("failed"), total("stopped")), (3.0, 1.0, 1.0), "{}", scrape.text);
    assert_eq!(scrape.sum("codedeploy_deployments_total", &with(&[("creator", "codeDeployRollback")])), 1.0);
    assert_eq!(scrape.sum("codedeploy_deployments_total", &with(&[("creator", "user")])), 4.0, "creators from the API");
    assert_eq!(scrape.one("codedeploy_rollbacks_total", &with(&[("status", "succeeded")])), 1.0);
    assert_eq!(scrape.one("codedeploy_rollback_duration_seconds_sum", &group), 1.0);
    // d-FAILED001 (failed, rolled back) and d-STOPPED01; the rollback is not a change.
    assert_eq!(scrape.one("codedeploy_change_failures_total", &group), 2.0);
    // The rollback's success restores service 1 s after the failure; the stop stays open.
    assert_eq!(scrape.one("codedeploy_time_to_restore_seconds_count", &group), 1.0);
    assert_eq!(scrape.one("codedeploy_time_to_restore_seconds_sum", &group), 1.0);
    assert_eq!(scrape.one("codedeploy_deployment_errors_total", &with(&[("error_code", "HEALTH_CONSTRAINTS")])), 1.0);
    assert_eq!(scrape.one("codedeploy_deployment_errors_total", &with(&[("error_code", "MANUAL_STOP")])), 1.0);
    assert_eq!(scrape.one("codedeploy_deployment_targets_total", &with(&[("status", "succeeded")])), 4.0);
    assert_eq!(scrape.one("codedeploy_deployment_targets_total", &with(&[("status", "failed")])), 1.0);
    assert_eq!(
        scrape.one("codedeploy_lifecycle_event_failures_total", &with(&[("lifecycle_event", "AfterInstall"), ("error_code", "ScriptFailed")])),
        1.0
    );
    assert_eq!(
        scrape.one("codedeploy_lifecycle_event_duration_seconds_count", &with(&[("lifecycle_event", "BeforeInstall"), ("status", "succeeded")])),
        4.0
    );
    // createTime → completeTime from the API: 1 s for the success (and the found one: 4 s).
    assert_eq!(scrape.one("codedeploy_deployment_duration_seconds_count", &with(&[("status", "succeeded")])), 3.0);
    assert_eq!(scrape.one("codedeploy_deployment_duration_seconds_sum", &with(&[("status", "succeeded")])), 1.0 + 1.0 + 4.0);
    // DORA over the day: four changes, two of them failures.
    assert_eq!(scrape.one("codedeploy_dora_deployments", &with(&[("window", "1d")])), 4.0);
    assert_eq!(scrape.one("codedeploy_dora_change_failure_ratio", &with(&[("window", "1d")])), 0.5);
    assert_eq!(scrape.one("codedeploy_deployments_in_progress", &group), 0.0);
    assert_eq!(scrape.one("codedeploy_exporter_source_up", &[("source", "sqs")]), 1.0);
    assert_eq!(scrape.one("codedeploy_exporter_source_up", &[("source", "poller")]), 1.0);
    assert!(scrape.one("codedeploy_exporter_source_last_success_timestamp_seconds", &[("source", "poller")]) > t);
    assert_eq!(scrape.sum("codedeploy_exporter_events_total", &[("source", "sqs"), ("outcome", "duplicate")]), 1.0);

    // Nothing is left in the queue but the undecodable message (in flight, on
    // its way to the dead-letter queue after 5 receives).
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue_depth(&sqs, &queue).await != 1 {
        assert!(Instant::now() < deadline, "queue depth stays {}", queue_depth(&sqs, &queue).await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Budgets: a finished deployment is never fetched twice, and with nothing
    // new each interval costs one ListDeployments.
    let fetches = moto.terminal_fetches();
    assert!(fetches.values().all(|n| *n == 1), "finished deployments fetched more than once: {fetches:?}");
    assert_eq!(fetches.len(), 5, "{fetches:?}");
    let counts = moto.counts();
    eprintln!("API calls for 5 deployments (one without events): {counts:?}");
    assert_eq!(counts.get("codedeploy.ListDeploymentTargets"), Some(&5));
    moto.reset_counts();
    let idle = Instant::now();
    tokio::time::sleep(Duration::from_secs(7)).await;
    let counts = moto.counts();
    let intervals = idle.elapsed().as_secs_f64() / 2.0;
    let lists = counts.get("codedeploy.ListDeployments").copied().unwrap_or(0) as f64;
    assert!((intervals - 1.0..=intervals + 1.0).contains(&lists), "{lists} ListDeployments in {intervals} intervals");
    let codedeploy_calls: u64 = counts.iter().filter(|(k, _)| k.starts_with("codedeploy.")).map(|(_, n)| n).sum();
    assert_eq!(codedeploy_calls as f64, lists, "idle: only ListDeployments: {counts:?}");
    eprintln!("idle: {counts:?} over {:.1} intervals", intervals);

    // The exporter counts its own calls the same way.
    let scrape = exporter.scrape().await;
    assert!(scrape.sum("codedeploy_exporter_aws_requests_total", &[("service", "sqs"), ("operation", "ReceiveMessage")]) >= 1.0);
    assert_eq!(scrape.sum("codedeploy_exporter_aws_requests_total", &[("outcome", "throttled")]), 0.0);
    exporter.stop().await;
    eprintln!("events_enrichment_and_reconciliation_give_the_truth: {:.1}s", started.elapsed().as_secs_f64());
}
