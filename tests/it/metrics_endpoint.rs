use std::time::Duration;

use crate::helpers::{assert_promtool_clean, eventbridge, eventually, sample, spawn_app, CHECKOUT, DEADLINE};

#[tokio::test]
async fn endpoints_answer_and_the_scrape_is_lint_clean() {
    let app = spawn_app(&[]).await;
    app.post_event(eventbridge("d-BBBBBBBB1", "START", "2026-11-26T10:00:00Z")).await;
    let response = app.client.get(app.url("/metrics")).send().await.expect("scrape");
    assert_eq!(
        response.headers()["content-type"].to_str().expect("ascii"),
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let metrics = response.text().await.expect("body");
    assert!(metrics.contains("# TYPE codedeploy_deployments_total counter"), "{metrics}");
    let build_info = format!(
        r#"codedeploy_exporter_build_info{{revision="{}",version="0.1.0"}}"#,
        codedeploy_exporter::ingest::REVISION
    );
    assert_eq!(sample(&metrics, &build_info), Some(1.0));
    assert_promtool_clean(&metrics);

    for (path, expected) in [("/-/healthy", "Healthy"), ("/-/ready", "Ready")] {
        let body = app.client.get(app.url(path)).send().await.expect("get").text().await.expect("body");
        assert_eq!(body.trim(), expected);
    }
    let landing = app.client.get(app.url("/")).send().await.expect("get").text().await.expect("body");
    assert!(landing.contains(r#"<a href="/metrics">"#), "{landing}");
    assert!(landing.contains(r#"<td class="l">checkout</td><td class="l">prod</td><td>1</td>"#), "{landing}");
    let missing = app.client.get(app.url("/nope")).send().await.expect("get");
    assert_eq!(missing.status(), 404);
}

/// Issue 15: the landing page holds no lock while Prometheus scrapes. It
/// shows the latest scrape's summary, so it answers even while the
/// exporter's state stays locked (a store commit on a slow disk); with no
/// recent scrape it takes a snapshot of its own, and waits for the lock like
/// a scrape would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_landing_page_answers_from_the_latest_scrape_without_the_lock() {
    let app = spawn_app(&[]).await;
    app.post_event(eventbridge("d-LANDING01", "START", "2026-11-26T10:00:00Z")).await;
    let row = r#"<td class="l">checkout</td><td class="l">prod</td><td>1</td>"#;
    // Holds the lock until told to let go.
    let hold = |exporter: codedeploy_exporter::ingest::SharedExporter| {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (locked, is_locked) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _guard = exporter.lock();
            locked.send(()).expect("the test waits");
            let _ = released.recv();
        });
        is_locked.recv().expect("the lock is taken");
        (release, holder)
    };
    let landing = || async { app.client.get(app.url("/")).send().await.expect("get") };

    // No scrape yet: the page needs a snapshot, which the held lock denies.
    let (release, holder) = hold(app.exporter.clone());
    let page = landing().await;
    assert_eq!(page.status(), 503, "a page that needs the lock waits for it, then says why");
    assert!(page.text().await.expect("body").contains("stayed locked"));
    drop(release);
    holder.join().expect("the holder ends");

    assert_eq!(app.client.get(app.url("/metrics")).send().await.expect("scrape").status(), 200);
    let (release, holder) = hold(app.exporter.clone());
    let page = landing().await;
    assert_eq!(page.status(), 200, "the latest scrape's summary needs no lock");
    let page = page.text().await.expect("body");
    assert!(page.contains(row), "{page}");
    assert!(page.contains("Figures as of "), "{page}");
    drop(release);
    holder.join().expect("the holder ends");
}

/// Deployments in enough groups that the body spans several 64 KiB chunks.
async fn spawn_app_with_many_groups() -> crate::helpers::TestApp {
    let app = spawn_app(&[]).await;
    for group in 0..12 {
        let event = eventbridge(&format!("d-GZIP{group:05}"), "START", "2026-11-26T10:00:00Z")
            .replace("\"deploymentGroup\":\"prod\"", &format!("\"deploymentGroup\":\"prod-{group}\""));
        assert_eq!(app.post_event(event).await.0, 200);
    }
    app
}

async fn get_metrics(app: &crate::helpers::TestApp, accept_encoding: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url("/metrics"));
    if let Some(coding) = accept_encoding {
        request = request.header("Accept-Encoding", coding);
    }
    let response = request.send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["vary"].to_str().expect("ascii"), "accept-encoding");
    response
}

#[tokio::test]
async fn a_gzip_scrape_is_the_plain_body_compressed() {
    let app = spawn_app_with_many_groups().await;
    let plain = get_metrics(&app, None).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let plain = plain.text().await.expect("body");
    assert!(plain.len() > 3 * codedeploy_exporter::metrics::CHUNK_BYTES, "{} bytes: too few chunks", plain.len());
    assert!(plain.contains("deployment_group=\"prod-11\""), "{plain}");

    let gzipped = get_metrics(&app, Some("br;q=1.0, gzip;q=0.8, *;q=0.1")).await;
    assert_eq!(gzipped.headers()["content-encoding"].to_str().expect("ascii"), "gzip");
    assert_eq!(gzipped.headers()["content-type"].to_str().expect("ascii"), "text/plain; version=0.0.4; charset=utf-8");
    let compressed = gzipped.bytes().await.expect("body");
    assert!(compressed.len() * 5 < plain.len(), "{} compressed bytes for {}", compressed.len(), plain.len());
    let mut unzipped = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&compressed[..]), &mut unzipped).expect("gunzip");
    // The process metrics are read afresh at each scrape; the rest is the same state.
    let without_process = |body: &str| body.lines().filter(|l| !l.contains("process_")).collect::<Vec<_>>().join("\n");
    assert_eq!(without_process(&unzipped), without_process(&plain));
}

#[tokio::test]
async fn a_client_that_refuses_gzip_gets_plain_text() {
    let app = spawn_app_with_many_groups().await;
    for refusal in ["identity", "gzip;q=0", "br, deflate"] {
        let response = get_metrics(&app, Some(refusal)).await;
        assert!(response.headers().get("content-encoding").is_none(), "{refusal}");
        let body = response.text().await.expect("body");
        assert!(body.starts_with("# HELP codedeploy_"), "{refusal}: {}", &body[..80.min(body.len())]);
        assert_promtool_clean(&body);
    }
}

#[tokio::test]
async fn a_custom_telemetry_path_moves_the_metrics() {
    let app = spawn_app(&["--web.telemetry-path", "/internal/metrics"]).await;
    assert_eq!(app.client.get(app.url("/internal/metrics")).send().await.expect("get").status(), 200);
    assert_eq!(app.client.get(app.url("/metrics")).send().await.expect("get").status(), 404);
}

#[tokio::test]
async fn openmetrics_scrapes_carry_the_deployment_id_as_exemplar() {
    let app = spawn_app(&["--ledger.settle-time", "0s"]).await;
    app.post_event(eventbridge("d-CCCCCCCC1", "START", "2026-11-26T10:00:00Z")).await;
    app.post_event(eventbridge("d-CCCCCCCC1", "FAILURE", "2026-11-26T10:02:00Z")).await;
    let bucket = format!("codedeploy_deployment_duration_seconds_bucket{{le=\"120.0\",{CHECKOUT},status=\"failed\"}} 1 # {{deployment_id=\"d-CCCCCCCC1\"}} 120.0 ");
    // The duration is observed once the deployment settles, at the writer's next tick.
    let body = eventually(&format!("the exemplar line {bucket}"), DEADLINE, || async {
        let response = app
            .client
            .get(app.url("/metrics"))
            .header("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
            .send()
            .await
            .expect("scrape");
        assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("application/openmetrics-text"));
        let body = response.text().await.expect("body");
        body.contains(&bucket).then_some(body)
    })
    .await;
    assert!(body.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn demo_shows_every_family_within_a_minute() {
    let app = spawn_app(&["demo", "--demo.history-days", "30"]).await;
    let families = [
        "codedeploy_deployments_total",
        "codedeploy_deployments_in_progress",
        "codedeploy_deployment_duration_seconds_bucket",
        "codedeploy_rollbacks_total",
        "codedeploy_rollback_duration_seconds_count",
        "codedeploy_change_failures_total",
        "codedeploy_time_to_restore_seconds_count",
        "codedeploy_deployment_errors_total",
        "codedeploy_deployment_targets_total",
        "codedeploy_deployment_targets",
        "codedeploy_lifecycle_event_duration_seconds_bucket",
        "codedeploy_lifecycle_event_failures_total",
        "codedeploy_last_deployment_timestamp_seconds",
        "codedeploy_sli_success_ratio",
        "codedeploy_dora_deployments",
        "codedeploy_dora_change_failure_ratio",
        "codedeploy_dora_time_to_restore_seconds",
        "codedeploy_deployment_duration_window_seconds",
        "codedeploy_exporter_events_total",
        "codedeploy_last_deployment_end_timestamp_seconds",
        // The simulated application behind the groups.
        "demo_app_requests_total",
        "demo_app_request_errors_total",
        "demo_app_request_duration_seconds_bucket",
        "demo_app_build_info",
    ];
    let has_nonzero = |metrics: &str, family: &str| {
        metrics.lines().any(|line| {
            line.starts_with(&format!("{family}{{"))
                && line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()).is_some_and(|v| v > 0.0)
        })
    };
    // The demo's history settles in the background after start-up.
    let metrics = eventually(&format!("a non-zero series of each of {families:?}"), Duration::from_secs(60), || async {
        let metrics = app.scrape().await;
        families.iter().all(|family| has_nonzero(&metrics, family)).then_some(metrics)
    })
    .await;
    for platform in ["Server", "Lambda", "ECS"] {
        assert!(metrics.contains(&format!("compute_platform=\"{platform}\"")), "no {platform} deployments");
    }
    assert_promtool_clean(&metrics);
    app.stop().await;
}
