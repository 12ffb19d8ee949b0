//! DORA lead time against moto: deployments with S3 revisions and
//! descriptions in moto's CodeDeploy, bundles with user metadata in moto's
//! S3; the poller reads the deployments, the commit-time resolver reads the
//! metadata (HeadObject), and `/metrics` must show the truth.

#[path = "moto/support.rs"]
mod support;

use std::time::Duration;

use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_metadata_and_descriptions_through_the_poller_give_the_truth() {
    let _serial = serial().await;
    let moto = Moto::start();
    let sdk = moto.sdk(REGION).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.create_bucket().bucket("builds").send().await.expect("CreateBucket");
    let now = now_s().floor();
    let rfc3339 = |seconds: f64| chrono::DateTime::from_timestamp(seconds as i64, 0).expect("time").to_rfc3339();
    let put = |key: &'static str, metadata: Option<(&'static str, String)>| {
        let s3 = s3.clone();
        async move {
            let mut request = s3.put_object().bucket("builds").key(key).body(b"zip".to_vec().into());
            if let Some((name, value)) = metadata {
                request = request.metadata(name, value);
            }
            request.send().await.expect("PutObject");
        }
    };
    // Completions an hour ago, a minute apart.
    let done = |i: f64| now - 3600.0 + 60.0 * i;
    put("shop/app-1.zip", Some(("commit-time", rfc3339(done(1.0) - 1800.0)))).await;
    put("shop/app-2.zip", Some(("unrelated", "x".to_owned()))).await;
    let revision = |key: &str| json!({"revisionType": "S3", "s3Location": {"bucket": "builds", "key": key, "bundleType": "zip"}});
    let add = |i: f64, id: &str, extra: serde_json::Value| {
        let mut command = json!({"cmd": "add_deployment", "app": "shop", "group": "prod", "id": id, "status": "Succeeded",
            "creator": "user", "create_time": done(i) - 300.0, "start_time": done(i) - 300.0, "complete_time": done(i)});
        for (k, v) in extra.as_object().expect("an object") {
            command[k] = v.clone();
        }
        moto.cmd(command);
    };
    add(1.0, "d-LEADS3001", json!({"revision": revision("shop/app-1.zip")}));
    add(2.0, "d-LEADS3002", json!({"revision": revision("shop/app-2.zip")}));
    add(3.0, "d-LEADS3003", json!({"revision": revision("shop/missing.zip")}));
    add(4.0, "d-LEADS3004", json!({"description": format!("commit=abcdef1 committed_at={}", rfc3339(done(4.0) - 600.0))}));
    add(5.0, "d-LEADS3005", json!({"creator": "autoscaling", "revision": revision("shop/app-1.zip")}));

    let storage = tempfile::tempdir().expect("tempdir");
    let flags = [
        "--aws.endpoint-url", &moto.endpoint, "--aws.region", REGION, "--poll.interval", "2s",
        "--lead-time.s3-metadata", "--lead-time.resolve-interval", "200ms",
    ];
    let exporter = Exporter::start(storage.path(), &flags).await;
    let group = [("account_id", ACCOUNT), ("region", REGION), ("application", "shop"), ("deployment_group", "prod")];
    let with = |extra: (&'static str, &'static str)| {
        let mut labels = group.to_vec();
        labels.push(extra);
        labels
    };
    let scrape = exporter
        .wait_for(Duration::from_secs(60), "the lead times", |s| {
            s.sum("codedeploy_lead_time_seconds_count", &group) == 2.0
                && s.sum("codedeploy_lead_time_unknown_total", &with(("reason", "not_found"))) == 2.0
        })
        .await;
    assert_promtool_clean(&scrape.text);
    assert_eq!(scrape.one("codedeploy_lead_time_seconds_sum", &group), 1800.0 + 600.0);
    assert_eq!(scrape.sum("codedeploy_lead_time_unknown_total", &group), 2.0, "app-2 has no commit time, missing.zip no object");
    assert_eq!(scrape.sum("codedeploy_deployments_total", &group), 5.0);
    let source = |s: &'static str| scrape.sum("codedeploy_exporter_lead_time_sources_total", &[("source", s)]);
    assert_eq!((source("s3"), source("description")), (1.0, 1.0));
    assert!(scrape.sum("codedeploy_exporter_aws_requests_total", &[("operation", "HeadObject")]) >= 3.0);
    // Nothing more is counted later: every lookup is answered once. A claim
    // about a stretch of time, so it is checked all along fifteen resolve
    // intervals, not once after them.
    let watched = std::time::Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        let later = exporter.scrape().await;
        assert_eq!(later.sum("codedeploy_lead_time_seconds_count", &group), 2.0);
        assert_eq!(later.sum("codedeploy_lead_time_unknown_total", &group), 2.0);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    exporter.stop().await;
}
