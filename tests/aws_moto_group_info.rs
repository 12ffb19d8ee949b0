//! `codedeploy_deployment_group_info` against moto: applications and
//! deployment groups created with tags and deployment configurations in
//! moto's CodeDeploy, deployments the poller backfills, and `/metrics` must
//! show each group as it was created, across a restart.

#[path = "moto/support.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_codedeploy::types::{ComputePlatform, Tag};
use serde_json::json;
use support::*;

fn tags(pairs: &[(&str, &str)]) -> Vec<Tag> {
    pairs.iter().map(|(k, v)| Tag::builder().key(*k).value(*v).build()).collect()
}

/// The labels of the info series of `application/group`.
fn info(scrape: &Scrape, application: &str, group: &str) -> BTreeMap<String, String> {
    let found: Vec<_> = scrape
        .samples
        .iter()
        .filter(|(name, labels, _)| {
            name == "codedeploy_deployment_group_info"
                && labels.get("application").map(String::as_str) == Some(application)
                && labels.get("deployment_group").map(String::as_str) == Some(group)
        })
        .collect();
    assert_eq!(found.len(), 1, "one info series of {application}/{group}:\n{}", scrape.text);
    assert_eq!(found[0].2, 1.0);
    found[0].1.clone()
}

fn read(scrape: &Scrape) -> bool {
    scrape.samples.iter().filter(|(n, l, _)| n == "codedeploy_deployment_group_info" && l["deployment_config"] != "unknown").count()
        == 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tagged_groups_become_info_series_that_survive_a_restart() {
    let _serial = serial().await;
    let moto = Moto::start();
    let codedeploy = aws_sdk_codedeploy::Client::new(&moto.sdk(REGION).await);
    let role = format!("arn:aws:iam::{ACCOUNT}:role/codedeploy");
    codedeploy
        .create_application()
        .application_name("shop")
        .compute_platform(ComputePlatform::Server)
        .set_tags(Some(tags(&[("Team", "checkout"), ("Environment", "dev")])))
        .send()
        .await
        .expect("CreateApplication shop");
    codedeploy
        .create_application()
        .application_name("pay")
        .compute_platform(ComputePlatform::Lambda)
        .send()
        .await
        .expect("CreateApplication pay");
    let long_owner = "o".repeat(200);
    let groups = [
        ("shop", "prod", "CodeDeployDefault.HalfAtATime", tags(&[("Environment", "Production"), ("Owner", &long_owner)])),
        ("shop", "staging", "CodeDeployDefault.AllAtOnce", tags(&[("Environment", "staging"), ("Team", "web")])),
        ("pay", "live", "CodeDeployDefault.LambdaCanary10Percent5Minutes", vec![]),
    ];
    for (application, group, config, group_tags) in &groups {
        codedeploy
            .create_deployment_group()
            .application_name(*application)
            .deployment_group_name(*group)
            .deployment_config_name(*config)
            .service_role_arn(&role)
            .set_tags(Some(group_tags.clone()))
            .send()
            .await
            .expect("CreateDeploymentGroup");
    }
    let now = now_s();
    for (i, (application, group, _, _)) in groups.iter().enumerate() {
        moto.cmd(json!({"cmd": "add_deployment", "app": application, "group": group, "id": format!("d-GROUPINF{i}"),
            "status": "Succeeded", "creator": "user", "create_time": now - 3600.0, "start_time": now - 3600.0,
            "complete_time": now - 3000.0}));
    }
    // One throttled GetDeploymentGroup: the SDK retries it, and it is counted.
    moto.cmd(json!({"cmd": "inject", "op": "GetDeploymentGroup", "kind": "throttle", "count": 1}));

    let storage = tempfile::tempdir().expect("tempdir");
    let flags = [
        "--aws.endpoint-url",
        &moto.proxy,
        "--aws.region",
        REGION,
        "--poll.interval",
        "2s",
        "--labels.from-tags",
        "Environment=environment,Team=team,Owner=owner",
    ];
    let exporter = Exporter::start(storage.path(), &flags).await;
    let scrape = exporter.wait_for(Duration::from_secs(60), "the three groups read", read).await;
    assert_promtool_clean(&scrape.text);

    let prod = info(&scrape, "shop", "prod");
    assert_eq!(prod["account_id"], ACCOUNT);
    assert_eq!(prod["region"], REGION);
    assert_eq!(prod["compute_platform"], "Server");
    assert_eq!(prod["deployment_config"], "CodeDeployDefault.HalfAtATime");
    assert_eq!(prod["environment"], "Production", "the group's tag over its application's");
    assert_eq!(prod["team"], "checkout", "the application's tag where the group has none");
    assert_eq!(prod["owner"], "other", "a value past 128 characters");
    assert_eq!(prod["production"], "true");
    let staging = info(&scrape, "shop", "staging");
    assert_eq!((staging["environment"].as_str(), staging["team"].as_str()), ("staging", "web"));
    assert_eq!((staging["deployment_config"].as_str(), staging["production"].as_str()), ("CodeDeployDefault.AllAtOnce", "false"));
    let live = info(&scrape, "pay", "live");
    assert_eq!(live["compute_platform"], "Lambda");
    assert_eq!(live["deployment_config"], "CodeDeployDefault.LambdaCanary10Percent5Minutes");
    assert_eq!((live["environment"].as_str(), live["team"].as_str(), live["owner"].as_str()), ("", "", ""));
    assert_eq!(live["production"], "false", "no environment tag");

    assert_eq!(scrape.one("codedeploy_exporter_limited_total", &[("limit", "tag_value")]), 1.0);
    let requests = |operation: &str, outcome: &str| {
        scrape.sum("codedeploy_exporter_aws_requests_total", &[("operation", operation), ("outcome", outcome)])
    };
    assert_eq!(requests("GetDeploymentGroup", "throttled"), 1.0);
    assert_eq!(requests("GetDeploymentGroup", "success"), 3.0);
    // The call budget of docs/aws.md: per group one GetDeploymentGroup and
    // one ListTagsForResource, per application one more.
    assert_eq!(requests("ListTagsForResource", "success"), 5.0);
    let counts = moto.counts();
    assert_eq!(counts.get("codedeploy.GetDeploymentGroup"), Some(&4), "{counts:?}");
    assert_eq!(counts.get("codedeploy.ListTagsForResource"), Some(&5), "{counts:?}");
    exporter.stop().await;

    // Tags change in AWS while the exporter is down; after the restart the
    // series come from the store (the next read is an hour away), and no
    // group is read again.
    codedeploy
        .tag_resource()
        .resource_arn(format!("arn:aws:codedeploy:{REGION}:{ACCOUNT}:deploymentgroup:shop/staging"))
        .set_tags(Some(tags(&[("Environment", "prod")])))
        .send()
        .await
        .expect("TagResource");
    moto.reset_counts();
    let exporter = Exporter::start(storage.path(), &flags).await;
    let first = exporter.scrape().await;
    assert!(read(&first), "served from the store at once:\n{}", first.text);
    assert_eq!(info(&first, "shop", "staging")["environment"], "staging");
    assert_eq!(info(&first, "shop", "prod"), prod);
    exporter
        .wait_for(Duration::from_secs(30), "polls after the restart", |_| {
            moto.counts().get("codedeploy.ListDeployments").copied().unwrap_or(0) >= 4
        })
        .await;
    let counts = moto.counts();
    assert_eq!(counts.get("codedeploy.GetDeploymentGroup"), None, "{counts:?}");
    assert_eq!(counts.get("codedeploy.ListTagsForResource"), None, "{counts:?}");
    let again = exporter.scrape().await;
    assert_eq!(again.one("codedeploy_exporter_limited_total", &[("limit", "tag_value")]), 1.0, "counted once, not per read");
    exporter.stop().await;

    // Another --labels.from-tags reads every group again at once.
    moto.reset_counts();
    let exporter = Exporter::start(storage.path(), &[&flags[..6], &["--labels.from-tags", "Environment=environment"]].concat()).await;
    let scrape = exporter
        .wait_for(Duration::from_secs(30), "the groups read again", |s| {
            read(s) && info(s, "shop", "staging")["environment"] == "prod"
        })
        .await;
    let staging = info(&scrape, "shop", "staging");
    assert_eq!(staging["production"], "true");
    assert!(!staging.contains_key("team"), "{staging:?}");
    assert_eq!(moto.counts().get("codedeploy.GetDeploymentGroup"), Some(&3));
    exporter.stop().await;
}
