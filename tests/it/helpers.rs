use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use codedeploy_exporter::app::{App, DemoFeed};
use codedeploy_exporter::config::{Cli, Command as CliCommand};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const SECRET: &str = "test-secret-1234";

/// A running exporter; stops when dropped.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    /// The running app's state, for tests that hold its lock.
    pub exporter: codedeploy_exporter::ingest::SharedExporter,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    /// The store's directory, removed when the app is dropped.
    pub storage: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    pub async fn scrape(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.expect("scrape");
        assert_eq!(response.status(), 200);
        response.text().await.expect("scrape body")
    }

    /// POSTs one message with the right secret; returns (status, body).
    pub async fn post_event(&self, body: impl Into<String>) -> (u16, String) {
        let response = self
            .client
            .post(self.url("/events"))
            .header("Authorization", format!("Bearer {SECRET}"))
            .body(body.into())
            .send()
            .await
            .expect("post event");
        let status = response.status().as_u16();
        (status, response.text().await.expect("response body"))
    }

    /// Stops the server gracefully, waits for it, and hands back its store.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.expect("server task").expect("server ran cleanly");
        }
        let placeholder = tempfile::tempdir().expect("a temporary directory");
        std::mem::replace(&mut self.storage, placeholder)
    }

    /// Scrapes until `series` has `value`, for at most [`DEADLINE`].
    pub async fn wait_for(&self, series: &str, value: f64) -> String {
        eventually(&format!("{series} reaching {value}"), DEADLINE, || async {
            let metrics = self.scrape().await;
            (sample(&metrics, series) == Some(value)).then_some(metrics)
        })
        .await
    }
}

/// How long a test waits for something the exporter does in the background
/// (settling, reloading): generous, because two shared cores can be slow,
/// and only ever reached when the test fails.
pub const DEADLINE: Duration = Duration::from_secs(15);

/// Runs `probe` until it returns something, every 100 ms, for at most
/// `within`; then fails naming `what`. Tests wait this way rather than
/// sleeping a fixed time and hoping it was long enough.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(found) = probe().await {
            return found;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts `serve` (or `demo` when the first extra flag is "demo") with the
/// webhook secret, on a free port of 127.0.0.1, with a fresh store, plus any
/// extra flags.
pub async fn spawn_app(extra: &[&str]) -> TestApp {
    spawn_app_on(tempfile::tempdir().expect("a temporary directory"), extra).await
}

/// Same, on an existing store directory (to test restarts).
pub async fn spawn_app_on(storage: tempfile::TempDir, extra: &[&str]) -> TestApp {
    let (command, extra) = match extra.first() {
        Some(&"demo") => ("demo", &extra[1..]),
        _ => ("serve", extra),
    };
    let storage_path = storage.path().to_str().expect("a UTF-8 temporary path").to_owned();
    let mut argv = vec![
        "codedeploy-exporter",
        command,
        "--web.listen-address",
        "127.0.0.1:0",
        "--webhook.secret",
        SECRET,
        "--storage.path",
        &storage_path,
    ];
    argv.extend_from_slice(extra);
    let cli = Cli::try_parse_from(argv).expect("flags parse");
    let (args, demo) = match cli.command {
        CliCommand::Serve(args) => (args, None),
        CliCommand::Demo(demo) => {
            let feed = DemoFeed {
                fleet: codedeploy_exporter::simulator::Fleet::new(demo.seed),
                history_days: demo.history_days,
            };
            (demo.serve, Some(feed))
        }
        CliCommand::Replay(_) | CliCommand::Setup(_) => unreachable!("tests start servers only"),
    };
    let config = args.validate(None).expect("valid config");
    let app = App::build(config, demo).await.expect("app builds");
    let address = app.local_addr().expect("bound");
    let exporter = app.exporter();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(app.run(shutdown.clone()));
    TestApp { address, client: reqwest::Client::new(), exporter, shutdown, server: Some(server), storage }
}

/// The value of the first sample whose line starts with `series` (the full
/// series text up to the value).
pub fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        value.split(' ').next()?.parse().ok()
    })
}

pub use crate::promtool::assert_promtool_clean;

pub fn eventbridge(id: &str, state: &str, time: &str) -> String {
    serde_json::json!({
        "version": "0",
        "id": format!("{id}-{state}-{time}"),
        "detail-type": "CodeDeploy Deployment State-change Notification",
        "source": "aws.codedeploy",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "instanceGroupId": "9fd2fbef-2157-40d8-91e7-6845af69e2d2",
            "region": "us-east-1",
            "application": "checkout",
            "deploymentId": id,
            "state": state,
            "deploymentGroup": "prod"
        }
    })
    .to_string()
}

/// The labels of the `checkout/prod` group used by [`eventbridge`].
pub const CHECKOUT: &str =
    r#"account_id="123456789012",region="us-east-1",application="checkout",deployment_group="prod""#;
