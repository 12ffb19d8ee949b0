//! The AWS sources against a fake AWS that nobody here wrote: moto, run by
//! tests/moto/harness.py on 127.0.0.1 (port 0) with a counting,
//! fault-injecting proxy in front. `setup` makes the queue and the rule,
//! events go through EventBridge PutEvents into SQS, deployments progress in
//! moto's CodeDeploy, and every test asserts on `/metrics` as Prometheus
//! reads it. moto is required: a missing moto fails with the install command.

#[path = "moto/support.rs"]
mod support;

use std::time::{Duration, Instant};

use codedeploy_exporter::setup::{self, Change};
use serde_json::json;
use support::*;

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
    let lists = |s: &Scrape| {
        s.sum("codedeploy_exporter_aws_requests_total", &[("operation", "ListDeployments"), ("outcome", "success")])
    };
    let polls_before = lists(&exporter.scrape().await);
    put(vec![event("d-SUCCESS01", "START", t + 1.0), event("d-FAILED001", "START", t + 1.0)]).await;
    // Both starts applied from the queue, and a whole poll made since the
    // deployments were added (two more ListDeployments: the first may have
    // begun before), before anything finishes.
    exporter
        .wait_for(Duration::from_secs(20), "the starts from SQS and a poll of the new deployments", |s| {
            s.sum("codedeploy_exporter_events_total", &[("source", "sqs"), ("outcome", "applied")]) >= 2.0
                && lists(s) >= polls_before + 2.0
        })
        .await;

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
    // An event SQS delivers twice (the same body, so the same EventBridge id:
    // one applied, one duplicate; putting the event on EventBridge again would
    // make a new event with an id of its own), a message nobody can decode,
    // and the SNS trigger test message.
    let twice = json!({"version": "0", "id": "5e1d0c2b-0000-4000-8000-000000000001",
        "detail-type": "CodeDeploy Deployment State-change Notification", "source": "aws.codedeploy",
        "account": ACCOUNT, "region": REGION,
        "time": chrono::DateTime::from_timestamp_millis(((t + 2.0) * 1000.0) as i64).expect("a time").to_rfc3339(),
        "resources": [format!("arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:shop/prod")],
        "detail": {"region": REGION, "application": "shop", "deploymentId": "d-SUCCESS01", "state": "SUCCESS",
            "deploymentGroup": "prod"}});
    for _ in 0..2 {
        sqs.send_message().queue_url(&queue).message_body(twice.to_string()).send().await.expect("send");
    }
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
    assert_eq!(scrape.one("codedeploy_rollbacks_total", &with(&[("status", "succeeded"), ("cause", "failure")])), 1.0);
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
        scrape.one("codedeploy_lifecycle_event_duration_seconds_count", &with(&[("lifecycle_event", "BeforeInstall")])),
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
    // Until three ListDeployments were made: at one per 2 s interval, that is
    // 4 to 6 s; polled, so a slow machine waits longer instead of failing.
    let deadline = idle + Duration::from_secs(30);
    let counts = loop {
        let counts = moto.counts();
        if counts.get("codedeploy.ListDeployments").copied().unwrap_or(0) >= 3 {
            break counts;
        }
        assert!(Instant::now() < deadline, "fewer than 3 ListDeployments in {:?} of idling: {counts:?}", idle.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let intervals = idle.elapsed().as_secs_f64() / 2.0;
    let lists = counts.get("codedeploy.ListDeployments").copied().unwrap_or(0) as f64;
    // Not more often than once an interval (the first may come at once).
    assert!(lists <= intervals + 1.0, "{lists} ListDeployments in {intervals} intervals");
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

/// Finished deployments of the past, as moto will list them.
#[allow(clippy::too_many_arguments)]
fn add_history(moto: &Moto, account: &str, region: &str, app: &str, id: &str, status: &str, created: f64, minutes: f64) {
    moto.cmd(json!({"cmd": "add_deployment", "account": account, "region": region, "app": app, "group": "prod", "id": id,
        "status": status, "create_time": created, "start_time": created, "complete_time": created + minutes * 60.0,
        "overview": {status: 1}}));
    moto.cmd(json!({"cmd": "set_targets", "account": account, "region": region, "id": id, "targets": [
        {"targetId": format!("i-{}", &id[2..]), "status": status,
         "lifecycleEvents": [{"lifecycleEventName": "ApplicationStart", "status": status, "startTime": created, "endTime": created + 30.0}]}]}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_loads_the_lookback_and_a_restart_fetches_nothing_again() {
    let _serial = serial().await;
    let started = Instant::now();
    let moto = Moto::start();
    let now = now_s();
    const DAY: f64 = 86_400.0;
    // 60 finished deployments over the past 20 days, every 10th failed and
    // put right by the next one; two older than the lookback; one running.
    let mut expected_7d = 0;
    for i in 0..60 {
        let created = now - 20.0 * DAY + f64::from(i) * (DAY / 3.0);
        let status = if i % 10 == 3 { "Failed" } else { "Succeeded" };
        add_history(&moto, ACCOUNT, REGION, "shop", &format!("d-HIST{i:05}"), status, created, 10.0);
        if created + 600.0 > now - 7.0 * DAY {
            expected_7d += 1;
        }
    }
    add_history(&moto, ACCOUNT, REGION, "shop", "d-ANCIENT01", "Succeeded", now - 40.0 * DAY, 10.0);
    add_history(&moto, ACCOUNT, REGION, "shop", "d-ANCIENT02", "Failed", now - 35.0 * DAY, 10.0);
    moto.cmd(json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": "d-RUNNING01",
        "status": "InProgress", "create_time": now - 600.0, "start_time": now - 600.0, "overview": {"InProgress": 1}}));

    let storage = tempfile::tempdir().expect("tempdir");
    let flags = ["--aws.endpoint-url", &moto.proxy, "--aws.region", REGION, "--poll.interval", "2s", "--aws.max-rps", "50"];
    let exporter = Exporter::start(storage.path(), &flags).await;
    let group = [("account_id", ACCOUNT), ("region", REGION), ("application", "shop"), ("deployment_group", "prod")];
    let scrape = exporter
        .wait_for(Duration::from_secs(60), "the backfill", |s| s.sum("codedeploy_deployments_total", &group) == 60.0)
        .await;
    let backfill_time = started.elapsed();
    assert_promtool_clean(&scrape.text);
    assert_eq!(scrape.sum("codedeploy_deployments_total", &[("status", "failed")]), 6.0);
    assert_eq!(scrape.one("codedeploy_deployments_in_progress", &group), 1.0);
    assert_eq!(scrape.one("codedeploy_time_to_restore_seconds_count", &group), 6.0, "each failure put right by the next");
    let window = |w: &'static str| {
        let mut labels = group.to_vec();
        labels.push(("window", w));
        scrape.one("codedeploy_dora_deployments", &labels)
    };
    assert_eq!(window("30d"), 60.0, "the windows are right from the first scrape");
    assert_eq!(window("7d"), f64::from(expected_7d));
    assert_eq!(scrape.one("codedeploy_deployment_targets_total", &{
        let mut l = group.to_vec();
        l.push(("status", "succeeded"));
        l
    }), 54.0);
    // No event source: nothing is a missed event.
    assert_eq!(scrape.sum("codedeploy_exporter_data_quality_issues_total", &[("reason", "found_only_by_polling")]), 0.0);
    let counts = moto.counts();
    eprintln!("backfill of 60 finished + 1 running deployments: {counts:?} in {backfill_time:?}");
    let fetches = moto.terminal_fetches();
    assert_eq!(fetches.len(), 60, "{fetches:?}");
    assert!(fetches.values().all(|n| *n == 1), "{fetches:?}");
    assert_eq!(counts.get("codedeploy.ListDeploymentTargets"), Some(&60));
    assert_eq!(counts.get("codedeploy.BatchGetDeploymentTargets"), Some(&60));
    exporter.stop().await;

    // A restart backfills again but fetches no finished deployment twice, and counts nothing twice.
    moto.reset_counts();
    let exporter = Exporter::start(storage.path(), &flags).await;
    exporter
        .wait_for(Duration::from_secs(20), "two polls after the restart", |s| {
            s.sum("codedeploy_exporter_aws_requests_total", &[("operation", "ListDeployments"), ("outcome", "success")]) >= 2.0
                + scrape.sum("codedeploy_exporter_aws_requests_total", &[("operation", "ListDeployments"), ("outcome", "success")])
        })
        .await;
    let again = exporter.scrape().await;
    assert_eq!(again.sum("codedeploy_deployments_total", &group), 60.0);
    assert_eq!(moto.terminal_fetches().len(), 0, "{:?}", moto.terminal_fetches());
    let counts = moto.counts();
    assert_eq!(counts.get("codedeploy.ListDeploymentTargets"), None, "{counts:?}");
    let batch_gets = counts.get("codedeploy.BatchGetDeployments").copied().unwrap_or(0);
    let lists = counts.get("codedeploy.ListDeployments").copied().unwrap_or(0);
    assert!(batch_gets <= lists, "only the running deployment is fetched, once per poll: {counts:?}");
    exporter.stop().await;
    eprintln!("backfill_loads_the_lookback_and_a_restart_fetches_nothing_again: {:.1}s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_accounts_in_two_regions_keep_their_labels() {
    let _serial = serial().await;
    let started = Instant::now();
    let moto = Moto::start();
    let now = now_s();
    const OTHER: &str = "111111111111";
    // The same application and group names in every account and region.
    add_history(&moto, ACCOUNT, "us-east-1", "shop", "d-AUSE00001", "Succeeded", now - 3600.0, 5.0);
    add_history(&moto, ACCOUNT, "eu-west-1", "shop", "d-AEUW00001", "Failed", now - 3600.0, 5.0);
    add_history(&moto, OTHER, "us-east-1", "shop", "d-BUSE00001", "Succeeded", now - 7200.0, 5.0);
    add_history(&moto, OTHER, "us-east-1", "shop", "d-BUSE00002", "Succeeded", now - 3600.0, 5.0);
    add_history(&moto, OTHER, "eu-west-1", "shop", "d-BEUW00001", "Stopped", now - 3600.0, 5.0);
    // Lambda and ECS deployments, with their own target kinds.
    for (app, platform, kind, id, target) in [
        ("api-fn", "Lambda", "LambdaTarget", "d-LAMBDA001", "api-fn:live"),
        ("web-svc", "ECS", "ECSTarget", "d-ECS000001", "prod-cluster:web-svc"),
    ] {
        moto.cmd(json!({"cmd": "add_deployment", "app": app, "group": "prod", "platform": platform, "id": id,
            "status": "Succeeded", "create_time": now - 1800.0, "start_time": now - 1800.0, "complete_time": now - 1500.0,
            "overview": {"Succeeded": 1}, "deployment_type": "BLUE_GREEN"}));
        moto.cmd(json!({"cmd": "set_targets", "id": id, "targets": [{"targetId": target, "type": kind, "status": "Succeeded",
            "lifecycleEvents": [{"lifecycleEventName": "AfterAllowTraffic", "status": "Succeeded", "startTime": now - 1600.0, "endTime": now - 1550.0}]}]}));
    }
    let storage = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start(
        storage.path(),
        &[
            "--aws.endpoint-url", &moto.proxy, "--aws.region", "us-east-1,eu-west-1",
            "--aws.role-arn", "arn:aws:iam::111111111111:role/codedeploy-exporter", "--poll.interval", "2s",
        ],
    )
    .await;
    let scrape = exporter
        .wait_for(Duration::from_secs(30), "four scopes polled", |s| s.sum("codedeploy_deployments_total", &[]) == 7.0)
        .await;
    assert_promtool_clean(&scrape.text);
    let count = |account, region, status| {
        scrape.sum("codedeploy_deployments_total", &[("account_id", account), ("region", region), ("application", "shop"), ("status", status)])
    };
    assert_eq!(count(ACCOUNT, "us-east-1", "succeeded"), 1.0);
    assert_eq!(count(ACCOUNT, "eu-west-1", "failed"), 1.0);
    assert_eq!(count(OTHER, "us-east-1", "succeeded"), 2.0);
    assert_eq!(count(OTHER, "eu-west-1", "stopped"), 1.0);
    assert_eq!(scrape.one("codedeploy_change_failures_total", &[("account_id", OTHER), ("region", "eu-west-1")]), 1.0);
    for (app, platform) in [("api-fn", "Lambda"), ("web-svc", "ECS")] {
        let labels = [("account_id", ACCOUNT), ("application", app), ("compute_platform", platform), ("deployment_type", "BLUE_GREEN")];
        assert_eq!(scrape.sum("codedeploy_deployments_total", &labels), 1.0, "{app}");
        assert_eq!(scrape.one("codedeploy_deployment_targets_total", &[("application", app), ("status", "succeeded")]), 1.0);
        assert_eq!(
            scrape.one("codedeploy_lifecycle_event_duration_seconds_count", &[("application", app), ("lifecycle_event", "AfterAllowTraffic")]),
            1.0
        );
    }
    assert_eq!(scrape.one("codedeploy_exporter_source_up", &[("source", "poller")]), 1.0);
    exporter.stop().await;
    eprintln!("two_accounts_in_two_regions_keep_their_labels: {:.1}s", started.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_server_errors_are_retried_counted_and_survived() {
    let _serial = serial().await;
    let started = Instant::now();
    let moto = Moto::start();
    let now = now_s();
    for i in 0..3 {
        add_history(&moto, ACCOUNT, REGION, "shop", &format!("d-THRT{i:05}"), "Succeeded", now - 3600.0 * f64::from(i + 1), 5.0);
    }
    let inject = |op: &str, kind: &str, count: u32| moto.cmd(json!({"cmd": "inject", "op": op, "kind": kind, "count": count}));
    inject("ListDeployments", "throttle", 2);
    inject("BatchGetDeployments", "5xx", 1);
    inject("ListDeploymentTargets", "throttle", 1);
    inject("BatchGetDeploymentTargets", "5xx", 1);
    let storage = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start(
        storage.path(),
        &["--aws.endpoint-url", &moto.proxy, "--aws.region", REGION, "--poll.interval", "2s", "--aws.max-attempts", "3"],
    )
    .await;
    let group = [("account_id", ACCOUNT), ("region", REGION), ("application", "shop"), ("deployment_group", "prod")];
    let scrape = exporter
        .wait_for(Duration::from_secs(60), "the deployments despite the errors", |s| {
            s.sum("codedeploy_deployments_total", &group) == 3.0
                && s.sum("codedeploy_deployment_targets_total", &[("status", "succeeded")]) == 3.0
        })
        .await;
    let requests = |op: &'static str, outcome: &'static str| {
        scrape.sum("codedeploy_exporter_aws_requests_total", &[("service", "codedeploy"), ("operation", op), ("outcome", outcome)])
    };
    assert_eq!(requests("ListDeployments", "throttled"), 2.0);
    assert_eq!(requests("BatchGetDeployments", "server_error"), 1.0);
    assert_eq!(requests("ListDeploymentTargets", "throttled"), 1.0);
    assert_eq!(requests("BatchGetDeploymentTargets", "server_error"), 1.0);
    assert_eq!(requests("BatchGetDeployments", "success"), 1.0, "3 ids, one call");
    assert_eq!(scrape.one("codedeploy_exporter_source_up", &[("source", "poller")]), 1.0);
    assert_eq!(scrape.sum("codedeploy_lifecycle_event_duration_seconds_count", &group), 3.0);

    // Beyond the retries the poll fails: the source is down, then recovers.
    inject("ListDeployments", "throttle", 3);
    exporter
        .wait_for(Duration::from_secs(30), "the poller down", |s| s.one("codedeploy_exporter_source_up", &[("source", "poller")]) == 0.0)
        .await;
    let scrape = exporter
        .wait_for(Duration::from_secs(30), "the poller up again", |s| s.one("codedeploy_exporter_source_up", &[("source", "poller")]) == 1.0)
        .await;
    assert_eq!(scrape.sum("codedeploy_deployments_total", &group), 3.0, "nothing counted twice");
    assert_eq!(moto.terminal_fetches().values().max(), Some(&1), "a 5xx'd fetch is not a fetch");
    exporter.stop().await;
    eprintln!("throttling_and_server_errors_are_retried_counted_and_survived: {:.1}s", started.elapsed().as_secs_f64());
}

/// While its commit waits (the writer is busy), a message stays invisible
/// (its visibility is renewed), and it is deleted once committed, without
/// waiting for any enrichment: no scope ever answers this one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn visibility_is_extended_until_the_commit_and_enrichment_is_not_awaited() {
    use codedeploy_exporter::ingest::{Exporter as Ledger, SharedExporter, Writer, WriterOptions};
    use codedeploy_exporter::metrics::{Outcome, Source};
    use codedeploy_exporter::sources::aws::poller::Enricher;
    use codedeploy_exporter::sources::aws::sqs::Consumer;
    use codedeploy_exporter::sources::aws::{parse_queue_url, Aws, Health, NoSink};

    let _serial = serial().await;
    let started = Instant::now();
    let moto = Moto::start();
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk(REGION).await);
    let url = sqs.create_queue().queue_name("slow").send().await.expect("CreateQueue").queue_url.expect("url");
    let exporter = SharedExporter::new(Ledger::new(0));
    let options = WriterOptions { settle_interval: Duration::from_secs(1), retention_ms: i64::MAX / 4, max_batch: 64 };
    // The writer starts late: until then every commit waits.
    let (writer, ingest) = Writer::new(exporter.clone(), None, options);
    // A scope that is busy for the whole test: it never takes its requests.
    let enricher = Enricher::default();
    let wanted = enricher.add_route(ACCOUNT, REGION);
    let aws = Aws::load(Some(&moto.endpoint), Some(REGION), 1, std::sync::Arc::new(NoSink)).await;
    let consumer = Consumer {
        queue: parse_queue_url(&url).expect("a queue URL"),
        region: REGION.into(),
        client: aws.sqs(&aws.config_for(REGION, None).await),
        ingest,
        enricher,
        concurrency: 2,
        health: Health::new(Source::Sqs, exporter.clone()),
        visibility_seconds: 2,
        heartbeat: Duration::from_secs(1),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let consuming = tokio::spawn(consumer.run(shutdown.clone()));
    let body = serde_json::json!({"version": "0", "id": "e-1", "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy", "account": ACCOUNT, "region": REGION, "time": "2026-11-26T05:00:00Z", "resources": [],
        "detail": {"region": REGION, "application": "shop", "deploymentGroup": "prod", "deploymentId": "d-SLOW00001", "state": "SUCCESS"}});
    sqs.send_message().queue_url(&url).message_body(body.to_string()).send().await.expect("send");

    // Well past the 2 s visibility: still in flight, never received again,
    // checked all along the window rather than once after it.
    let events = |outcome| exporter.lock().exposition(0).exporter.events.get(&(Source::Sqs, outcome)).copied().unwrap_or(0);
    let window = Instant::now() + Duration::from_secs(4);
    while Instant::now() < window {
        assert_eq!(queue_depth(&sqs, &url).await, 1, "in flight while the commit waits");
        assert_eq!((events(Outcome::Applied), events(Outcome::Duplicate)), (0, 0), "nothing committed yet");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::spawn(writer.run());
    // Committed: deleted, though its enrichment is still only asked for.
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue_depth(&sqs, &url).await != 0 {
        assert!(Instant::now() < deadline, "the message was not deleted after its commit");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!((events(Outcome::Applied), events(Outcome::Duplicate)), (1, 0), "received once, never redelivered");
    let asked: Vec<_> = wanted.take().into_iter().collect();
    assert_eq!(asked, [("d-SLOW00001".to_owned(), true)], "enrichment asked for, not awaited");
    shutdown.cancel();
    consuming.await.expect("consumer stops");
    eprintln!("visibility_is_extended_until_the_commit_and_enrichment_is_not_awaited: {:.1}s", started.elapsed().as_secs_f64());
}

/// Issue 12 (5): BatchGetDeployments throttled beyond the SDK's retries
/// (one attempt here). The watermark moves on; the failed ids are kept,
/// shown as pending, retried with backoff, and every deployment is counted.
/// Readiness (the backfilled hook) waits for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_batch_gets_are_retried_until_every_deployment_is_counted() {
    let _serial = serial().await;
    let started = Instant::now();
    let moto = Moto::start();
    let now = now_s();
    for i in 0..40 {
        add_history(&moto, ACCOUNT, REGION, "shop", &format!("d-RTRY{i:05}"), "Succeeded", now - 3600.0 * f64::from(i + 1), 5.0);
    }
    // Both chunks of the backfill fail, and both again at the first retry.
    moto.cmd(json!({"cmd": "inject", "op": "BatchGetDeployments", "kind": "throttle", "count": 4}));
    let storage = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start(
        storage.path(),
        &["--aws.endpoint-url", &moto.proxy, "--aws.region", REGION, "--poll.interval", "2s", "--aws.max-attempts", "1"],
    )
    .await;
    // Shown once the scope runs (after STS tells its account).
    let pending = |s: &Scrape| {
        s.samples.iter().find(|(name, _, _)| name == "codedeploy_exporter_poller_pending_deployments").map(|(_, _, v)| *v)
    };
    let scrape = exporter.wait_for(Duration::from_secs(30), "the failed ids pending", |s| pending(s) == Some(40.0)).await;
    assert_eq!(scrape.sum("codedeploy_deployments_total", &[]), 0.0, "{}", scrape.text);
    assert!(!*exporter.backfilled.borrow(), "not ready while history is missing");
    let group = [("account_id", ACCOUNT), ("region", REGION), ("application", "shop"), ("deployment_group", "prod")];
    let scrape = exporter
        .wait_for(Duration::from_secs(60), "every deployment counted, nothing pending", |s| {
            s.sum("codedeploy_deployments_total", &group) == 40.0 && pending(s) == Some(0.0)
        })
        .await;
    assert_promtool_clean(&scrape.text);
    let throttled = scrape.sum(
        "codedeploy_exporter_aws_requests_total",
        &[("operation", "BatchGetDeployments"), ("outcome", "throttled")],
    );
    assert_eq!(throttled, 4.0);
    assert_eq!(scrape.sum("codedeploy_deployment_targets_total", &[("status", "succeeded")]), 40.0);
    let mut backfilled = exporter.backfilled.clone();
    tokio::time::timeout(Duration::from_secs(10), backfilled.wait_for(|done| *done))
        .await
        .expect("the backfill reported done once nothing is pending")
        .expect("the hook is alive");
    assert!(moto.terminal_fetches().values().all(|n| *n == 1), "a throttled fetch is not a fetch: {:?}", moto.terminal_fetches());
    exporter.stop().await;
    eprintln!("throttled_batch_gets_are_retried_until_every_deployment_is_counted: {:.1}s", started.elapsed().as_secs_f64());
}

/// Issue 12 (6, 7): a 30-day backfill of hundreds of deployments runs while
/// events arrive by SQS. Their messages are deleted within seconds of being
/// committed, long before the backfill ends; enrichment follows it. The
/// backfilled hook fires only once all the history is in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_messages_are_acknowledged_during_a_long_backfill() {
    let _serial = serial().await;
    let started = Instant::now();
    let moto = Moto::start();
    let (setup, _) = run_setup(&moto, false).await;
    let queue = setup.queue_urls[0].clone();
    let now = now_s();
    const DAY: f64 = 86_400.0;
    const HISTORY: u32 = 240;
    for i in 0..HISTORY {
        let created = now - 30.0 * DAY + 3600.0 + f64::from(i) * (29.0 * DAY / f64::from(HISTORY));
        add_history(&moto, ACCOUNT, REGION, "shop", &format!("d-BACK{i:05}"), "Succeeded", created, 5.0);
    }
    let storage = tempfile::tempdir().expect("tempdir");
    // 10 calls a second: two target calls per finished deployment make the
    // backfill last well over 30 s.
    let exporter = Exporter::start(
        storage.path(),
        &["--aws.endpoint-url", &moto.proxy, "--sqs.queue-url", &queue, "--poll.interval", "2s", "--aws.max-rps", "10"],
    )
    .await;
    exporter
        .wait_for(Duration::from_secs(20), "the backfill under way", |s| {
            s.sum("codedeploy_exporter_aws_requests_total", &[("operation", "ListDeploymentTargets"), ("outcome", "success")]) >= 1.0
        })
        .await;
    // Three deployments finish now; their events come through EventBridge.
    let t = now_s();
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk(REGION).await);
    let mut entries = Vec::new();
    for i in 0..3 {
        let id = format!("d-LIVE{i:05}");
        moto.cmd(json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": id, "status": "Succeeded",
            "create_time": t - 60.0, "start_time": t - 60.0, "complete_time": t, "overview": {"Succeeded": 1}}));
        moto.cmd(json!({"cmd": "set_targets", "id": id, "targets": [{"targetId": format!("i-LIVE{i:05}"), "status": "Succeeded"}]}));
        entries.push(deployment_event(ACCOUNT, REGION, "shop", "prod", &id, "START", t - 60.0));
        entries.push(deployment_event(ACCOUNT, REGION, "shop", "prod", &id, "SUCCESS", t));
    }
    let out = events.put_events().set_entries(Some(entries)).send().await.expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0);
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk(REGION).await);
    let sent = Instant::now();
    let deadline = sent + Duration::from_secs(20);
    while queue_depth(&sqs, &queue).await != 0 {
        assert!(Instant::now() < deadline, "the messages were not deleted while the backfill runs");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let acknowledged = sent.elapsed();
    assert!(!*exporter.backfilled.borrow(), "acknowledged during the backfill, not after it");
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.sum("codedeploy_exporter_events_total", &[("source", "sqs"), ("outcome", "applied")]), 6.0);
    // A new store: until the backfill is in, no deployment series is shown,
    // so that the history never lands as a jump on series already scraped.
    assert!(!scrape.text.contains("codedeploy_deployments_total{"), "history withheld:\n{}", scrape.text);
    assert_eq!(exporter.ready().await, 503, "not ready while the backfill runs");
    // What remains of it is shown, and goes down.
    let remaining = |s: &Scrape| {
        s.samples.iter().find(|(name, _, _)| name == "codedeploy_exporter_backfill_remaining_deployments").map(|(_, _, v)| *v)
    };
    let during = remaining(&scrape).expect("the backfill's remaining reads are shown while it runs");
    assert!(during > 0.0 && during <= f64::from(2 * HISTORY), "remaining {during}");
    exporter
        .wait_for(Duration::from_secs(60), "fewer reads remaining", |s| remaining(s).is_some_and(|later| later < during))
        .await;

    // The hook fires once the whole history is in /metrics.
    let mut backfilled = exporter.backfilled.clone();
    tokio::time::timeout(Duration::from_secs(120), backfilled.wait_for(|done| *done))
        .await
        .expect("the backfill ends")
        .expect("the hook is alive");
    let backfill_time = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    while exporter.ready().await != 200 {
        assert!(Instant::now() < deadline, "not ready after the backfill");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let history = [("application", "shop"), ("creator", "user")];
    let scrape = exporter.scrape().await;
    assert!(scrape.sum("codedeploy_deployments_total", &history) >= f64::from(HISTORY), "{}", scrape.text);
    assert_eq!(remaining(&scrape), Some(0.0), "nothing remains once it is done");
    // Enrichment came after the acknowledgement: the live deployments get
    // their API details (creator) too.
    let scrape = exporter
        .wait_for(Duration::from_secs(30), "the live deployments enriched", |s| {
            s.sum("codedeploy_deployments_total", &history) == f64::from(HISTORY + 3)
        })
        .await;
    assert_eq!(scrape.sum("codedeploy_deployments_total", &[]), f64::from(HISTORY + 3));
    assert_promtool_clean(&scrape.text);
    exporter.stop().await;
    eprintln!(
        "sqs_messages_are_acknowledged_during_a_long_backfill: acknowledged in {acknowledged:.1?}, backfill done at {backfill_time:.1?}, {:.1}s in all",
        started.elapsed().as_secs_f64()
    );
}

/// `--poll.interval 0` and no queue: no AWS source, so no AWS configuration
/// is loaded and the instance metadata service is never asked (here a
/// listener on 127.0.0.1 that counts connections; a poller without a region
/// does ask it, which shows the probe works).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_aws_sources_the_instance_metadata_service_is_not_called() {
    let _serial = serial().await;
    let imds = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", imds.local_addr().expect("address"));
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counting = connections.clone();
    let listening = tokio::spawn(async move {
        while let Ok((stream, _)) = imds.accept().await {
            counting.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "false");
    std::env::set_var("AWS_EC2_METADATA_SERVICE_ENDPOINT", &endpoint);
    std::env::remove_var("AWS_REGION");
    let count = || connections.load(std::sync::atomic::Ordering::SeqCst);

    // The probe: a poller with no region looks for one, through the metadata service.
    let storage = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start(storage.path(), &["--poll.interval", "1s", "--aws.endpoint-url", "http://127.0.0.1:9"]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count() == 0 {
        assert!(Instant::now() < deadline, "the probe saw no metadata request");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    exporter.stop().await;

    let before = count();
    let storage = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start(storage.path(), &["--poll.interval", "0"]).await;
    assert!(*exporter.backfilled.borrow(), "nothing to backfill: ready at once");
    let scrape = exporter.scrape().await;
    assert!(scrape.sum("codedeploy_exporter_source_up", &[("source", "poller")]) == 0.0, "no poller: {}", scrape.text);
    // A bounded window after the server answered: the sources were started
    // before it, so a lookup would have begun by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(), before, "the metadata service was called without AWS sources");
    exporter.stop().await;
    listening.abort();
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::remove_var("AWS_EC2_METADATA_SERVICE_ENDPOINT");
}

/// The queues do not wait for the poller's start: while STS cannot tell the
/// exporter's account (so no scope polls yet), SQS messages are still
/// committed and deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_intake_does_not_wait_for_the_poller_to_start() {
    let _serial = serial().await;
    let moto = Moto::start();
    let (setup, _) = run_setup(&moto, false).await;
    let queue = setup.queue_urls[0].clone();
    moto.cmd(json!({"cmd": "inject", "op": "GetCallerIdentity", "kind": "5xx", "count": 1000}));
    let storage = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start(
        storage.path(),
        &["--aws.endpoint-url", &moto.proxy, "--sqs.queue-url", &queue, "--poll.interval", "2s", "--aws.max-attempts", "1"],
    )
    .await;
    exporter
        .wait_for(Duration::from_secs(20), "the identity lookup failing", |s| {
            s.sum("codedeploy_exporter_aws_requests_total", &[("operation", "GetCallerIdentity"), ("outcome", "server_error")]) >= 1.0
        })
        .await;
    let t = now_s();
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk(REGION).await);
    let entries = vec![
        deployment_event(ACCOUNT, REGION, "shop", "prod", "d-EARLY0001", "START", t - 60.0),
        deployment_event(ACCOUNT, REGION, "shop", "prod", "d-EARLY0001", "SUCCESS", t),
    ];
    let out = events.put_events().set_entries(Some(entries)).send().await.expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0);
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk(REGION).await);
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue_depth(&sqs, &queue).await != 0 {
        assert!(Instant::now() < deadline, "the messages were not deleted while the poller cannot start");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let scrape = exporter.scrape().await;
    assert_eq!(scrape.sum("codedeploy_exporter_events_total", &[("source", "sqs"), ("outcome", "applied")]), 2.0);
    assert_eq!(scrape.one("codedeploy_exporter_source_up", &[("source", "poller")]), 0.0, "{}", scrape.text);
    assert_eq!(scrape.one("codedeploy_exporter_source_up", &[("source", "sqs")]), 1.0);
    assert!(!*exporter.backfilled.borrow(), "no backfill without the account");
    exporter.stop().await;
}

/// Issue 12 (1): a deployment failed (its events wait in the queue) and its
/// automatic rollback succeeded (only the poller finds it), both before the
/// exporter started. Whichever is counted first, every figure is the truth:
/// one change failure, one rollback with its time to rollback, one recovery;
/// and an undecodable message is left in the queue for its dead-letter queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_found_by_polling_and_its_failure_by_sqs_give_the_true_figures() {
    let _serial = serial().await;
    let moto = Moto::start();
    let (setup, _) = run_setup(&moto, false).await;
    let queue = setup.queue_urls[0].clone();
    let t = now_s() - 3600.0;
    let (failed, rollback) = ("d-FAILED001", "d-ROLLBK001");
    moto.cmd(json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": failed, "status": "Failed",
        "creator": "user", "create_time": t, "start_time": t, "complete_time": t + 300.0, "overview": {"Failed": 1},
        "error_information": {"code": "HEALTH_CONSTRAINTS", "message": "too few healthy instances"},
        "rollback_info": {"rollbackDeploymentId": rollback}}));
    moto.cmd(json!({"cmd": "set_targets", "id": failed, "targets": [{"targetId": "i-FAILED001", "status": "Failed"}]}));
    moto.cmd(json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": rollback, "status": "Succeeded",
        "creator": "codeDeployRollback", "create_time": t + 310.0, "start_time": t + 310.0, "complete_time": t + 720.0,
        "overview": {"Succeeded": 1},
        "rollback_info": {"rollbackTriggeringDeploymentId": failed, "rollbackMessage": "Deployment d-ROLLBK001 is triggered to roll back deployment d-FAILED001."}}));
    moto.cmd(json!({"cmd": "set_targets", "id": rollback, "targets": [{"targetId": "i-FAILED001", "status": "Succeeded"}]}));
    let events = aws_sdk_eventbridge::Client::new(&moto.sdk(REGION).await);
    let entries = vec![
        deployment_event(ACCOUNT, REGION, "shop", "prod", failed, "START", t),
        deployment_event(ACCOUNT, REGION, "shop", "prod", failed, "FAILURE", t + 300.0),
    ];
    let out = events.put_events().set_entries(Some(entries)).send().await.expect("PutEvents");
    assert_eq!(out.failed_entry_count(), 0);
    let sqs = aws_sdk_sqs::Client::new(&moto.sdk(REGION).await);
    sqs.send_message().queue_url(&queue).message_body("{\"truncated\": ").send().await.expect("send");

    let storage = tempfile::tempdir().expect("tempdir");
    let exporter = Exporter::start(
        storage.path(),
        &["--aws.endpoint-url", &moto.proxy, "--sqs.queue-url", &queue, "--poll.interval", "2s", "--ledger.settle-time", "3s"],
    )
    .await;
    let group = [("application", "shop"), ("deployment_group", "prod")];
    let scrape = exporter
        .wait_for(Duration::from_secs(60), "the recovery observed", |s| {
            s.sum("codedeploy_time_to_restore_seconds_count", &group) >= 1.0
        })
        .await;
    assert_eq!(scrape.sum("codedeploy_deployments_total", &[("status", "failed"), ("creator", "user")]), 1.0);
    assert_eq!(scrape.sum("codedeploy_deployments_total", &[("status", "succeeded"), ("creator", "codeDeployRollback")]), 1.0);
    assert_eq!(scrape.sum("codedeploy_deployments_total", &[]), 2.0);
    assert_eq!(scrape.sum("codedeploy_change_failures_total", &group), 1.0);
    assert_eq!(scrape.sum("codedeploy_rollbacks_total", &[("status", "succeeded"), ("cause", "failure")]), 1.0);
    assert_eq!(scrape.sum("codedeploy_time_to_restore_seconds_count", &group), 1.0);
    assert_eq!(scrape.sum("codedeploy_time_to_restore_seconds_sum", &group), 420.0);
    assert_eq!(scrape.sum("codedeploy_rollback_duration_seconds_count", &group), 1.0);
    assert_eq!(scrape.sum("codedeploy_rollback_duration_seconds_sum", &group), 420.0);
    assert_eq!(scrape.sum("codedeploy_deployment_errors_total", &[("error_code", "HEALTH_CONSTRAINTS")]), 1.0);
    assert!(!scrape.text.contains("account_id=\"\""), "every series located:\n{}", scrape.text);
    assert_eq!(scrape.sum("codedeploy_exporter_data_quality_issues_total", &[("reason", "late_for_recovery")]), 0.0);
    assert!(scrape.sum("codedeploy_exporter_events_total", &[("source", "sqs"), ("outcome", "rejected")]) >= 1.0);
    // Both events were acknowledged; the undecodable message never is.
    let deadline = Instant::now() + Duration::from_secs(20);
    while queue_depth(&sqs, &queue).await != 1 {
        assert!(Instant::now() < deadline, "the events were not deleted");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_promtool_clean(&scrape.text);
    exporter.stop().await;
}

/// Issue 16: deployments that name their configuration, one stopped by two
/// CloudWatch alarms (CodeDeploy's ALARM_ACTIVE message naming them), one
/// stopped on request and one failed, each rolled back; all found by the
/// poller. `deployment_config` counts, rollback causes and alarm stops equal
/// what was created, and the failed and stopped changes get no lead time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_alarm_stops_and_rollback_causes_match_what_was_created() {
    let _serial = serial().await;
    let moto = Moto::start();
    // Whole seconds, as the description's epoch-seconds commit time.
    let t = (now_s() - 7200.0).floor();
    let alarm_message = "One or more alarms have been activated according to the Amazon CloudWatch metrics you selected, \
                         and the affected deployments have been stopped. Activated alarms: <shop-5xx> <shop-p99-latency>";
    // (id, config, status, error code, message, the rollback that undoes it)
    let changes = [
        ("d-HALF00001", Some("CodeDeployDefault.HalfAtATime"), "Succeeded", None, "", None),
        ("d-ALARM0001", Some("CodeDeployDefault.AllAtOnce"), "Stopped", Some("ALARM_ACTIVE"), alarm_message, Some("d-RBALARM01")),
        ("d-MANUAL001", None, "Stopped", Some("MANUAL_STOP"), "The deployment was stopped by a user.", Some("d-RBMANUAL1")),
        ("d-FAILED001", Some("CodeDeployDefault.AllAtOnce"), "Failed", Some("HEALTH_CONSTRAINTS"), "too few healthy", Some("d-RBFAILED1")),
    ];
    for (i, (id, config, status, code, message, rollback)) in changes.iter().enumerate() {
        let created = t + 1000.0 * i as f64;
        let mut command = json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": id, "status": status,
            "creator": "user", "create_time": created, "start_time": created, "complete_time": created + 300.0,
            "description": format!("commit=abcdef{i} committed_at={}", created as i64 - 600)});
        let fields = command.as_object_mut().expect("object");
        if let Some(config) = config {
            fields.insert("deployment_config".into(), json!(config));
        }
        if let Some(code) = code {
            fields.insert("error_information".into(), json!({"code": code, "message": message}));
        }
        if let Some(rollback) = rollback {
            fields.insert("rollback_info".into(), json!({"rollbackDeploymentId": rollback}));
            moto.cmd(json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": rollback, "status": "Succeeded",
                "creator": "codeDeployRollback", "create_time": created + 310.0, "start_time": created + 310.0,
                "complete_time": created + 420.0,
                "rollback_info": {"rollbackTriggeringDeploymentId": id,
                    "rollbackMessage": format!("Deployment {rollback} is triggered to roll back deployment {id}.")}}));
        }
        moto.cmd(command);
    }

    let storage = tempfile::tempdir().expect("tempdir");
    let flags = ["--aws.endpoint-url", &moto.proxy, "--aws.region", REGION, "--poll.interval", "2s"];
    let exporter = Exporter::start(storage.path(), &flags).await;
    let group = [("account_id", ACCOUNT), ("region", REGION), ("application", "shop"), ("deployment_group", "prod")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut labels = group.to_vec();
        labels.extend_from_slice(extra);
        labels
    };
    let scrape = exporter
        .wait_for(Duration::from_secs(60), "every deployment and rollback counted", |s| {
            s.sum("codedeploy_deployments_total", &group) == 7.0 && s.sum("codedeploy_rollbacks_total", &group) == 3.0
        })
        .await;
    assert_promtool_clean(&scrape.text);
    let config = |name: &'static str| scrape.sum("codedeploy_deployments_total", &with(&[("deployment_config", name)]));
    assert_eq!(config("CodeDeployDefault.HalfAtATime"), 1.0, "{}", scrape.text);
    assert_eq!(config("CodeDeployDefault.AllAtOnce"), 2.0);
    assert_eq!(config("CodeDeployDefault.OneAtATime"), 4.0, "the manual stop and the rollbacks ran with the group's");
    let cause = |cause: &'static str| scrape.one("codedeploy_rollbacks_total", &with(&[("status", "succeeded"), ("cause", cause)]));
    assert_eq!((cause("failure"), cause("alarm"), cause("manual"), cause("unknown")), (1.0, 1.0, 1.0, 0.0));
    let alarm = |name: &'static str| scrape.one("codedeploy_alarm_stops_total", &with(&[("alarm", name)]));
    assert_eq!((alarm("shop-5xx"), alarm("shop-p99-latency")), (1.0, 1.0));
    assert_eq!(scrape.sum("codedeploy_alarm_stops_total", &[]), 2.0);
    assert_eq!(scrape.sum("codedeploy_rollback_duration_seconds_count", &group), 3.0);
    assert_eq!(scrape.one("codedeploy_lead_time_seconds_count", &group), 1.0, "only the succeeded change has a lead time");
    assert_eq!(scrape.one("codedeploy_lead_time_seconds_sum", &group), 900.0);
    exporter.stop().await;
}
