use crate::helpers::{eventbridge, sample, spawn_app, CHECKOUT, SECRET};

#[tokio::test]
async fn events_become_metrics_after_the_settle_time() {
    let app = spawn_app(&["--ledger.settle-time", "1s"]).await;
    let (status, body) = app.post_event(eventbridge("d-AAAAAAAA1", "START", "2026-11-26T10:00:00Z")).await;
    assert_eq!((status, body.as_str()), (200, r#"{"outcome":"applied"}"#));
    let metrics = app.scrape().await;
    assert_eq!(sample(&metrics, &format!("codedeploy_deployments_in_progress{{{CHECKOUT}}}")), Some(1.0));

    let done = eventbridge("d-AAAAAAAA1", "SUCCESS", "2026-11-26T10:05:00Z");
    assert_eq!(app.post_event(done.clone()).await.0, 200);
    let (status, body) = app.post_event(done).await;
    assert_eq!((status, body.as_str()), (200, r#"{"outcome":"duplicate"}"#));

    let succeeded = format!(
        "codedeploy_deployments_total{{{CHECKOUT},compute_platform=\"unknown\",deployment_type=\"unknown\",creator=\"unknown\",deployment_config=\"unknown\",status=\"succeeded\"}}"
    );
    // Counted once the settle time passed.
    let metrics = app.wait_for(&succeeded, 1.0).await;
    assert_eq!(sample(&metrics, &format!("codedeploy_deployment_duration_seconds_sum{{{CHECKOUT},status=\"succeeded\"}}")), Some(300.0));
    assert_eq!(sample(&metrics, r#"codedeploy_exporter_events_total{source="webhook",outcome="applied"}"#), Some(2.0));
    assert_eq!(sample(&metrics, r#"codedeploy_exporter_events_total{source="webhook",outcome="duplicate"}"#), Some(1.0));
    app.stop().await;
}

#[tokio::test]
async fn the_secret_is_required() {
    let app = spawn_app(&[]).await;
    let body = eventbridge("d-AAAAAAAA2", "START", "2026-11-26T10:00:00Z");
    let none = app.client.post(app.url("/events")).body(body.clone()).send().await.expect("post");
    assert_eq!(none.status(), 401);
    let wrong = app.client.post(app.url("/events")).header("Authorization", "Bearer nope").body(body.clone()).send().await.expect("post");
    assert_eq!(wrong.status(), 401);
    let api_key = app.client.post(app.url("/events")).header("X-Api-Key", SECRET).body(body).send().await.expect("post");
    assert_eq!(api_key.status(), 200);
    let metrics = app.scrape().await;
    assert_eq!(sample(&metrics, r#"codedeploy_exporter_events_total{source="webhook",outcome="applied"}"#), Some(1.0));
}

#[tokio::test]
async fn without_a_secret_there_is_no_webhook() {
    // spawn_app always passes a secret; build the unauthenticated case by hand.
    use clap::Parser;
    let cli = codedeploy_exporter::config::Cli::try_parse_from(["x", "serve", "--web.listen-address", "127.0.0.1:0"]).expect("parse");
    let codedeploy_exporter::config::Command::Serve(args) = cli.command else { unreachable!() };
    let app = codedeploy_exporter::app::App::build(args.validate(None).expect("valid"), None).await.expect("build");
    let address = app.local_addr().expect("bound");
    let shutdown = tokio_util::sync::CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    let response = reqwest::Client::new().post(format!("http://{address}/events")).body("{}").send().await.expect("post");
    assert_eq!(response.status(), 404);
    shutdown.cancel();
    server.await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn undecodable_bodies_get_400_with_a_reason_and_are_counted() {
    let app = spawn_app(&[]).await;
    let (status, body) = app.post_event(r#"{"detail-type": "CodeDeploy Deployment"#).await;
    assert_eq!(status, 400);
    let reply: serde_json::Value = serde_json::from_str(&body).expect("json reply");
    assert_eq!(reply["outcome"], "rejected");
    assert_eq!(reply["reason"], "invalid_json");
    let (status, _) = app.post_event(r#"{"hello": "world"}"#).await;
    assert_eq!(status, 400);
    let metrics = app.scrape().await;
    assert_eq!(sample(&metrics, r#"codedeploy_exporter_events_total{source="webhook",outcome="rejected"}"#), Some(2.0));
}

#[tokio::test]
async fn the_sns_trigger_test_message_is_ignored() {
    let app = spawn_app(&[]).await;
    let notification = serde_json::json!({
        "Type": "Notification",
        "MessageId": "5d3a7a3e-0000-0000-0000-000000000000",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:deployments",
        "Subject": "SUCCESS: AWS CodeDeploy notification setup for trigger deployments",
        "Message": "Your AWS CodeDeploy trigger deployments is able to send notifications to your Amazon SNS topic.",
        "Timestamp": "2026-11-26T10:00:00.000Z"
    });
    let (status, body) = app.post_event(notification.to_string()).await;
    assert_eq!((status, body.as_str()), (200, r#"{"outcome":"ignored"}"#));
}

#[tokio::test]
async fn bodies_over_the_limit_get_413() {
    let app = spawn_app(&["--webhook.max-body-bytes", "2048"]).await;
    let padding = "x".repeat(4096);
    let (status, _) = app.post_event(format!(r#"{{"padding":"{padding}"}}"#)).await;
    assert_eq!(status, 413);
}
