//! The landing page at `/`: what this process is, whether it is ready, the
//! DORA keys at a glance, a capped table of deployment groups, and what to do
//! next (a scrape configuration, the dashboards, the rules, the docs).
//!
//! One self-contained HTML page: inline CSS, no script, no external asset, so
//! it renders the same behind a proxy with no internet access.
//!
//! The page is drawn from a [`Summary`]: the fleet's sums and the capped table,
//! distilled from a snapshot. Every scrape of `/metrics` leaves one behind, so
//! while Prometheus scrapes, opening the page takes no lock at all; only when
//! the latest summary is older than [`FRESH`] does the page take a snapshot
//! of its own (in turn with the scrapes, like one).

use std::fmt::Write;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use super::{Snapshots, DEFAULT_SCRAPE_TIMEOUT};
use crate::domain::Status;
use crate::ledger::{GroupKey, GroupSnapshot, WindowFigures, FINISHED};
use crate::metrics::{Exposition, Source};

/// Rows of the group table. Past this a table is no longer read, and
/// formatting 10k rows would only keep the page waiting; every group is on
/// `/metrics` and the dashboards.
pub(super) const MAX_GROUP_ROWS: usize = 100;

/// How old a scrape's summary may be and still be shown: a page a minute
/// behind is still a fair picture, and at Prometheus's usual 15 s to 60 s
/// scrape interval it is all the page needs.
pub(super) const FRESH: Duration = Duration::from_secs(60);

/// The window of the DORA figures shown: the one the dashboards open on.
const WINDOW: &str = "7d";
const WINDOW_DAYS: f64 = 7.0;

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;padding:0 1em;color:#222;\
line-height:1.4}h1{margin-bottom:.2em}table{border-collapse:collapse;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}\
td.l,th.l{text-align:left}pre{background:#f6f6f6;padding:.8em;overflow-x:auto}\
.demo{background:#fff3cd;border:1px solid #e0c36c;padding:.6em}.ok{color:#176c2f}.bad{color:#a61b1b}\
.note{color:#555;font-size:.9em}";

/// What the page shows of a snapshot: small enough to keep between scrapes
/// (the capped table and the sums, not the groups).
#[derive(Debug)]
pub(super) struct Summary {
    taken: Instant,
    version: &'static str,
    /// Source and whether it is up.
    sources: Vec<(Source, bool)>,
    groups: usize,
    in_progress: u64,
    deployments_tracked: u64,
    ledger_withheld: bool,
    /// Change deployments finished in [`WINDOW`], over every group.
    window_deployments: u64,
    /// Change failures among them.
    window_failures: f64,
    /// The first [`MAX_GROUP_ROWS`] groups, in the exposition's order.
    rows: Vec<Row>,
}

#[derive(Debug)]
struct Row {
    key: GroupKey,
    in_progress: u64,
    /// All-time counts, in [`FINISHED`]'s order (failed, stopped, succeeded).
    finished: [u64; 3],
    /// The latest counted deployment with a duration: its id and status (the
    /// one to roll back when an impact alert fires).
    latest: Option<(String, Status)>,
    window: Option<WindowFigures>,
}

impl Summary {
    pub(super) fn of(exposition: &Exposition) -> Summary {
        let groups = &exposition.ledger.groups;
        let figures: Vec<&WindowFigures> = groups.iter().filter_map(window).collect();
        let rows = groups
            .iter()
            .take(MAX_GROUP_ROWS)
            .map(|group| Row {
                key: group.key.clone(),
                in_progress: group.in_progress,
                finished: FINISHED.map(|status| {
                    group.stats.deployments.iter().filter(|((_, s), _)| *s == status).map(|(_, n)| n).sum()
                }),
                latest: latest_deployment(group),
                window: window(group).cloned(),
            })
            .collect();
        Summary {
            taken: Instant::now(),
            version: exposition.version,
            sources: exposition.exporter.source_up.iter().map(|(source, up)| (*source, *up)).collect(),
            groups: groups.len(),
            in_progress: groups.iter().map(|g| g.in_progress).sum(),
            deployments_tracked: exposition.ledger.deployments_tracked,
            ledger_withheld: exposition.ledger_withheld,
            window_deployments: figures.iter().map(|f| f.deployments).sum(),
            // Each group's ratio times its change deployments is its count of
            // change failures: the fleet's rate is exact.
            window_failures: figures
                .iter()
                .filter(|f| !f.change_failure_ratio.is_nan())
                .map(|f| (f.change_failure_ratio * f.deployments as f64).round())
                .sum(),
            rows,
        }
    }

    pub(super) fn age(&self) -> Duration {
        self.taken.elapsed()
    }

    fn simulated(&self) -> bool {
        self.sources.iter().any(|(source, _)| *source == Source::Demo)
    }
}

/// The group's latest finished deployment, from its duration exemplars: each
/// bucket keeps the deployment that last landed in it.
fn latest_deployment(group: &GroupSnapshot) -> Option<(String, Status)> {
    group
        .stats
        .durations
        .iter()
        .flat_map(|(status, histogram)| histogram.exemplars.iter().flatten().map(move |exemplar| (exemplar, *status)))
        .max_by(|(a, _), (b, _)| (a.at, &a.deployment_id).cmp(&(b.at, &b.deployment_id)))
        .map(|(exemplar, status)| (exemplar.deployment_id.clone(), status))
}

pub(super) async fn landing(snapshots: Snapshots, telemetry_path: String, headers: HeaderMap) -> Response {
    let readiness = snapshots.exporter.readiness().not_ready();
    let summary = match snapshots.latest_summary(FRESH) {
        Some(summary) => summary,
        None => match snapshots.take(DEFAULT_SCRAPE_TIMEOUT / 2).await {
            Ok((exposition, turn)) => {
                // Distilled off the runtime's workers like a scrape's render.
                let distilled = tokio::task::spawn_blocking(move || {
                    let _turn = turn;
                    Summary::of(&exposition)
                });
                match distilled.await {
                    Ok(summary) => snapshots.keep_summary(summary),
                    Err(_) => {
                        return (StatusCode::INTERNAL_SERVER_ERROR, "The landing page failed; see the log\n")
                            .into_response()
                    }
                }
            }
            Err(unavailable) => return unavailable,
        },
    };
    // The address the reader used, for the scrape configuration to copy.
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost:10034");
    Html(landing_page(&summary, &telemetry_path, host, readiness)).into_response()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The page; `not_ready` is `/-/ready`'s reason, if any.
pub(super) fn landing_page(summary: &Summary, telemetry_path: &str, host: &str, not_ready: Option<&str>) -> String {
    let mut page = String::new();
    let path = escape_html(telemetry_path);
    let host = escape_html(host);
    let _ = write!(
        page,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>CodeDeploy Exporter</title><style>{STYLE}</style></head><body>\
         <h1>CodeDeploy Exporter</h1><p>Version {version} (revision {revision}). Deployment SLIs and DORA \
         metrics from AWS CodeDeploy. <a href=\"{path}\">Metrics</a> · <a href=\"/-/healthy\">Health</a> · \
         <a href=\"/-/ready\">Readiness</a></p>",
        version = summary.version,
        revision = crate::ingest::REVISION,
    );
    if summary.simulated() {
        page.push_str(
            "<p class=\"demo\"><strong>Simulated data.</strong> This is <code>demo</code>: every figure below \
             comes from a built-in simulated fleet, not from AWS.</p>",
        );
    }

    page.push_str("<h2>Status</h2><ul>");
    match not_ready {
        None => page.push_str("<li>Readiness: <span class=\"ok\">ready</span></li>"),
        Some(reason) => {
            let _ = write!(page, "<li>Readiness: <span class=\"bad\">not ready</span>: {}</li>", escape_html(reason));
        }
    }
    let sources: Vec<String> = summary
        .sources
        .iter()
        .map(|(source, up)| format!("{} ({})", source.label(), if *up { "up" } else { "down" }))
        .collect();
    let _ = write!(
        page,
        "<li>Sources: {}</li><li>Deployment groups: {}</li><li>Deployments in progress now: {}</li>\
         <li>Deployments tracked in the ledger: {}</li></ul><p class=\"note\">Figures as of {} s ago \
         (the latest scrape, or this page's own snapshot when there was none in the last {} s).</p>",
        if sources.is_empty() { "none".to_owned() } else { sources.join(", ") },
        summary.groups,
        summary.in_progress,
        summary.deployments_tracked,
        summary.age().as_secs(),
        FRESH.as_secs(),
    );
    if summary.ledger_withheld {
        page.push_str(
            "<p class=\"note\">Deployment figures are withheld while the store cannot commit, or until the first \
             backfill is done; see Readiness.</p>",
        );
    }

    dora_summary(&mut page, summary);
    group_table(&mut page, summary);
    next_steps(&mut page, &path, &host);
    page.push_str("</body></html>\n");
    page
}

fn window(group: &GroupSnapshot) -> Option<&WindowFigures> {
    group.windows.iter().find(|w| w.window == WINDOW)
}

/// The fleet's DORA keys over [`WINDOW`].
fn dora_summary(page: &mut String, summary: &Summary) {
    let deployments = summary.window_deployments;
    let rate = if deployments == 0 { "–".to_owned() } else { percent(summary.window_failures / deployments as f64) };
    let _ = write!(
        page,
        "<h2>DORA keys, all groups, last {WINDOW}</h2><table><tr><th class=\"l\">Key</th><th>Value</th></tr>\
         <tr><td class=\"l\">Deployment frequency (change deployments finished)</td><td>{deployments} \
         ({:.1} a day)</td></tr>\
         <tr><td class=\"l\">Change failure rate</td><td>{rate}</td></tr>\
         <tr><td class=\"l\">Failed deployment recovery time, lead time for changes</td>\
         <td>per group below (medians do not add up)</td></tr></table>",
        deployments as f64 / WINDOW_DAYS,
    );
}

fn group_table(page: &mut String, summary: &Summary) {
    let _ = write!(
        page,
        "<h2>Deployment groups</h2><table><tr><th class=\"l\">Account</th><th class=\"l\">Region</th>\
         <th class=\"l\">Application</th><th class=\"l\">Group</th><th>In progress (now)</th>\
         <th>Succeeded (all time)</th><th>Failed (all time)</th><th>Stopped (all time)</th>\
         <th>Success ratio ({WINDOW})</th><th>Deployments ({WINDOW})</th><th>Change failure rate ({WINDOW})</th>\
         <th>Recovery time, median ({WINDOW})</th><th>Lead time, median ({WINDOW})</th>\
         <th class=\"l\">Latest finished deployment</th></tr>"
    );
    for row in &summary.rows {
        let [failed, stopped, succeeded] = row.finished;
        let figures = row.window.as_ref();
        let ratio = |pick: fn(&WindowFigures) -> f64| figures.map(pick).filter(|r| !r.is_nan()).map_or_else(dash, percent);
        let median = |pick: fn(&WindowFigures) -> f64| figures.map(pick).filter(|s| !s.is_nan()).map_or_else(dash, human);
        let _ = write!(
            page,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
             <td>{}</td><td>{succeeded}</td><td>{failed}</td><td>{stopped}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            escape_html(&row.key.account_id),
            escape_html(&row.key.region),
            escape_html(&row.key.application),
            escape_html(&row.key.deployment_group),
            row.in_progress,
            ratio(|f| f.success_ratio),
            figures.map_or(0, |f| f.deployments),
            ratio(|f| f.change_failure_ratio),
            median(|f| f.time_to_restore[0]),
            median(|f| f.lead_time[0]),
            row.latest.as_ref().map_or_else(dash, |(id, status)| format!("{} ({})", escape_html(id), status.label())),
        );
    }
    page.push_str("</table>");
    if summary.groups > MAX_GROUP_ROWS {
        let _ = write!(
            page,
            "<p class=\"note\">The first {MAX_GROUP_ROWS} groups of {}, by account, region, application and \
             group; {} more are on the metrics endpoint and the dashboards.</p>",
            summary.groups,
            summary.groups - MAX_GROUP_ROWS
        );
    }
    let _ = write!(
        page,
        "<p class=\"note\">All-time counts run since the store was created; windowed figures cover the \
         deployments finished in the last {WINDOW}. – means nothing to measure in the window.</p>"
    );
}

fn next_steps(page: &mut String, path: &str, host: &str) {
    let _ = write!(
        page,
        "<h2>Next steps</h2><ol><li>Scrape this exporter and load the rules: in <code>prometheus.yml</code>\
         <pre>rule_files:\n  - /etc/prometheus/codedeploy.*.yml   # every alerts/codedeploy.*.yml: rules, alerts, thresholds\n\
         scrape_configs:\n  - job_name: codedeploy\n    metrics_path: {path}\n    \
         static_configs:\n      - targets: [\"{host}\"]</pre></li>\
         <li>Import the Grafana dashboards of <code>dashboards/</code> (<code>codedeploy-dora.json</code>, \
         <code>codedeploy-oncall.json</code>, <code>codedeploy-debug.json</code>): Dashboards → New → Import, \
         or file provisioning (<code>dashboards/README.md</code>).</li>\
         <li>Read the docs in the source tree: <code>docs/metrics.md</code> (every metric and its PromQL), \
         <code>docs/alerts.md</code> and <code>docs/runbooks.md</code>, <code>docs/aws.md</code> (feeding it \
         from SQS and the API), <code>docs/operations.md</code> (running it).</li>\
         <li>Point load-balancer and liveness health checks at <a href=\"/-/healthy\">/-/healthy</a>; \
         readiness at <a href=\"/-/ready\">/-/ready</a>.</li></ol>"
    );
}

fn dash() -> String {
    "–".to_owned()
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// Seconds as a person reads them: `45s`, `12m`, `3.5h`, `2.1d`.
fn human(seconds: f64) -> String {
    match seconds {
        s if s < 60.0 => format!("{s:.0}s"),
        s if s < 3600.0 => format!("{:.0}m", s / 60.0),
        s if s < 86_400.0 => format!("{:.1}h", s / 3600.0),
        s => format!("{:.1}d", s / 86_400.0),
    }
}

#[cfg(test)]
mod tests {
    use crate::ingest::Exporter;
    use crate::metrics::Source;

    /// An exposition of `groups` groups, one started deployment each.
    fn exposition(groups: usize) -> crate::metrics::Exposition {
        let mut exporter = Exporter::new(0);
        for n in 0..groups {
            let event = serde_json::json!({
                "version": "0", "id": format!("e-{n}"), "source": "aws.codedeploy", "account": "123456789012",
                "detail-type": "CodeDeploy Deployment State-change Notification",
                "time": "2026-11-26T10:00:00Z", "region": "us-east-1", "resources": [],
                "detail": { "region": "us-east-1", "application": "app", "deploymentId": format!("d-{n:09}"),
                            "state": "START", "deploymentGroup": format!("group-{n:03}") }
            });
            exporter.ingest(Source::Webhook, event.to_string().as_bytes(), 0).expect("a valid event");
        }
        exporter.exposition(1_764_151_200_000)
    }

    #[test]
    fn the_group_table_is_capped_and_says_how_many_more() {
        let summary = |groups| super::Summary::of(&exposition(groups));
        let page = super::landing_page(&summary(super::MAX_GROUP_ROWS + 5), "/metrics", "h:1", None);
        assert_eq!(page.matches("<td class=\"l\">app</td>").count(), super::MAX_GROUP_ROWS);
        assert!(page.contains("group-099") && !page.contains("group-100"), "{page}");
        assert!(page.contains("The first 100 groups of 105, by account, region, application and group; 5 more"), "{page}");
        assert!(page.contains("Deployments in progress now: 105"), "{page}");

        let page = super::landing_page(&summary(3), "/metrics", "h:1", Some("the backfill is not done"));
        assert!(!page.contains("more are on the metrics endpoint"), "{page}");
        assert!(page.contains("not ready</span>: the backfill is not done"), "{page}");
        assert!(!page.contains("Simulated data"), "{page}");
    }

    /// The page names each group's latest finished deployment: the one an
    /// impact alert's runbook rolls back.
    #[test]
    fn the_group_table_names_the_latest_finished_deployment() {
        let mut exporter = Exporter::new(0);
        let event = |id: &str, state: &str, time: &str| {
            serde_json::json!({
                "version": "0", "id": format!("{id}-{state}"), "source": "aws.codedeploy", "account": "123456789012",
                "detail-type": "CodeDeploy Deployment State-change Notification",
                "time": time, "region": "us-east-1", "resources": [],
                "detail": { "region": "us-east-1", "application": "app", "deploymentId": id,
                            "state": state, "deploymentGroup": "prod" }
            })
            .to_string()
        };
        for (id, state, time) in [
            ("d-000000001", "START", "2026-11-26T10:00:00Z"),
            ("d-000000001", "FAILURE", "2026-11-26T10:05:00Z"),
            ("d-000000002", "START", "2026-11-26T11:00:00Z"),
            ("d-000000002", "SUCCESS", "2026-11-26T11:04:00Z"),
        ] {
            exporter.ingest(Source::Webhook, event(id, state, time).as_bytes(), 0).expect("a valid event");
        }
        exporter.settle(0, true);
        let page = super::landing_page(&super::Summary::of(&exporter.exposition(1_764_155_000_000)), "/metrics", "h:1", None);
        assert!(page.contains("<td class=\"l\">d-000000002 (succeeded)</td>"), "{page}");
    }

    #[test]
    fn durations_read_in_the_largest_sensible_unit() {
        let read: Vec<String> = [42.0, 720.0, 12_600.0, 190_080.0].into_iter().map(super::human).collect();
        assert_eq!(read, ["42s", "12m", "3.5h", "2.2d"]);
    }
}
