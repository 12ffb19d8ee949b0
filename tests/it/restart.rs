use crate::helpers::{eventbridge, sample, spawn_app, spawn_app_on, CHECKOUT};

/// Everything but the exporter's own message counters and the wall-clock
/// windows, which move with every message and every second.
fn domain(metrics: &str) -> Vec<&str> {
    metrics
        .lines()
        // The process metrics are the new process's own.
        .filter(|l| !l.starts_with("codedeploy_exporter_") && !l.starts_with("process_") && !l.starts_with('#'))
        .filter(|l| !l.starts_with("codedeploy_sli_") && !l.starts_with("codedeploy_dora_"))
        .filter(|l| !l.starts_with("codedeploy_deployment_duration_window_"))
        .collect()
}

#[tokio::test]
async fn a_restart_continues_the_counters_and_keeps_deduplication() {
    let stream = [
        eventbridge("d-RESTART01", "START", "2026-11-26T09:00:00Z"),
        eventbridge("d-RESTART01", "FAILURE", "2026-11-26T09:04:00Z"),
        eventbridge("d-RESTART02", "START", "2026-11-26T09:30:00Z"),
        eventbridge("d-RESTART02", "SUCCESS", "2026-11-26T09:36:00Z"),
    ];
    let app = spawn_app(&["--ledger.settle-time", "0s"]).await;
    for message in &stream {
        assert_eq!(app.post_event(message.clone()).await.0, 200);
    }
    let restores = format!("codedeploy_time_to_restore_seconds_count{{{CHECKOUT}}}");
    let before = app.wait_for(&restores, 1.0).await;
    let storage = app.stop().await;

    let app = spawn_app_on(storage, &["--ledger.settle-time", "0s"]).await;
    let after = app.scrape().await;
    assert_eq!(domain(&after), domain(&before), "the restored exposition differs");
    assert_eq!(
        sample(&after, r#"codedeploy_exporter_events_total{source="webhook",outcome="applied"}"#),
        Some(4.0),
        "the exporter's own counters continue too"
    );

    for message in &stream {
        let (status, body) = app.post_event(message.clone()).await;
        assert_eq!((status, body.as_str()), (200, r#"{"outcome":"duplicate"}"#));
    }
    let again = app.scrape().await;
    assert_eq!(domain(&again), domain(&before), "re-delivery after a restart changed the numbers");
    assert_eq!(sample(&again, &format!("codedeploy_time_to_restore_seconds_sum{{{CHECKOUT}}}")), Some(1920.0));
    app.stop().await;
}
