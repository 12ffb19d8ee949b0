//! The metrics contract: every family, in name order, and how each writes its
//! series from an [`Exposition`].
//!
//! Series are written group by group (groups come sorted by their labels) and,
//! within a group, sorted by their other label values, so the output is
//! deterministic (golden files, `replay`).

use std::collections::BTreeMap;
use std::io;

use super::encoder::{group_labels, Encoder, Family, Type};
use super::{Exposition, Source};
use crate::domain::{Millis, Status, TargetStatus};
use crate::ledger::{GroupSnapshot, WindowFigures, QUANTILES};

type Series = fn(&Exposition, &mut Encoder<'_>, &[String]) -> io::Result<()>;

const fn family(name: &'static str, help: &'static str, kind: Type) -> Family {
    Family { name, help, kind, collides: false }
}

/// Every family with its writer, sorted by name (a test keeps it so).
const FAMILIES: &[(Family, Series)] = &[
    (
        family(
            "codedeploy_alarm_stops_total",
            "Deployments stopped by CloudWatch alarms (ALARM_ACTIVE), per alarm the stop names (unknown when it names none)",
            Type::Counter,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                for (alarm, n) in &g.stats.alarm_stops {
                    w.counter(l, &["alarm"], &[alarm], *n);
                }
            })
        },
    ),
    (
        family(
            "codedeploy_change_failures_total",
            "DORA change failures: change deployments that failed, were stopped or were rolled back",
            Type::Counter,
        ),
        |e, w, labels| per_group(e, w, labels, |g, w, l| w.counter(l, &[], &[], g.stats.change_failures)),
    ),
    (
        family(
            "codedeploy_deployment_duration_seconds",
            "Deployment duration from createTime to completeTime (or START to terminal event)",
            Type::Histogram,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                for (status, h) in sorted(g.stats.durations.iter().map(|(s, h)| ([s.label()], h))) {
                    w.histogram(l, &["status"], &status, h, true);
                }
            })
        },
    ),
    (
        family(
            "codedeploy_deployment_duration_window_seconds",
            "Deployment duration quantiles over the deployments finished in the window (NaN with none)",
            Type::Untyped,
        ),
        |e, w, labels| quantiles(e, w, labels, |f| f.duration),
    ),
    (
        family(
            "codedeploy_deployment_errors_total",
            "Failed and stopped deployments by errorInformation code",
            Type::Counter,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                for (code, n) in &g.stats.errors {
                    w.counter(l, &["error_code"], &[code], *n);
                }
            })
        },
    ),
    (
        family(
            "codedeploy_deployment_group_info",
            "One series per known deployment group, always 1: its compute platform, default deployment configuration, whether it is production, and the tags chosen by --labels.from-tags",
            Type::Gauge,
        ),
        |e, w, labels| {
            let info = &e.group_info;
            let names: Vec<&str> = ["compute_platform", "deployment_config", "production"]
                .into_iter()
                .chain(info.tag_labels.iter().map(String::as_str))
                .collect();
            let mut rows = info.rows.iter();
            per_group(e, w, labels, |_, w, l| {
                // One row per group, in the same order; a missing row is a bug, and writes nothing.
                if let Some(row) = rows.next() {
                    let production = if row.production { "true" } else { "false" };
                    let values: Vec<&str> = [row.compute_platform.as_str(), &row.deployment_config, production]
                        .into_iter()
                        .chain(row.tags.iter().map(|t| t.as_str()))
                        .collect();
                    w.info(l, &names, &values);
                }
            })
        },
    ),
    (
        family("codedeploy_deployment_targets", "Target states of the deployments in progress", Type::Gauge),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                let states = TargetStatus::ALL.iter().filter(|s| **s != TargetStatus::Unknown);
                for (status, n) in sorted(states.map(|s| ([s.label()], g.targets_in_progress.get(s).copied()))) {
                    w.gauge(l, &["status"], &status, n.unwrap_or(0) as f64);
                }
            })
        },
    ),
    (
        Family {
            collides: true,
            ..family("codedeploy_deployment_targets_total", "Target outcomes of finished deployments", Type::Counter)
        },
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                for (status, n) in sorted(g.stats.targets.iter().map(|(s, n)| ([s.label()], *n))) {
                    w.counter(l, &["status"], &status, n);
                }
            })
        },
    ),
    (
        family("codedeploy_deployments_in_progress", "Deployments started and not finished", Type::Gauge),
        |e, w, labels| per_group(e, w, labels, |g, w, l| w.gauge(l, &[], &[], g.in_progress as f64)),
    ),
    (
        family("codedeploy_deployments_total", "Finished deployments, counted once when they settle", Type::Counter),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                let rows = g.stats.deployments.iter().map(|((kind, status), n)| {
                    let values = [
                        kind.compute_platform.as_str(),
                        &kind.deployment_type,
                        &kind.creator,
                        &kind.deployment_config,
                        status.label(),
                    ];
                    (values, *n)
                });
                for (values, n) in sorted(rows) {
                    w.counter(l, &["compute_platform", "deployment_type", "creator", "deployment_config", "status"], &values, n);
                }
            })
        },
    ),
    (
        family(
            "codedeploy_dora_change_failure_ratio",
            "DORA change failure rate: change failures over finished change deployments in the window (NaN with none)",
            Type::Gauge,
        ),
        |e, w, labels| windowed(e, w, labels, |f| f.change_failure_ratio),
    ),
    (
        family(
            "codedeploy_dora_deployments",
            "DORA deployment frequency: finished change deployments in the window",
            Type::Gauge,
        ),
        |e, w, labels| windowed(e, w, labels, |f| f.deployments as f64),
    ),
    (
        family(
            "codedeploy_dora_lead_time_seconds",
            "DORA lead time for changes quantiles over the succeeded change deployments finished in the window with a known commit time (NaN with none)",
            Type::Untyped,
        ),
        |e, w, labels| quantiles(e, w, labels, |f| f.lead_time),
    ),
    (
        family(
            "codedeploy_dora_time_to_restore_seconds",
            "DORA failed deployment recovery time quantiles over the recoveries in the window (NaN with none)",
            Type::Untyped,
        ),
        |e, w, labels| quantiles(e, w, labels, |f| f.time_to_restore),
    ),
    (
        family(
            "codedeploy_exporter_aws_requests_total",
            "AWS API request attempts (each retry counts), by service, operation and outcome (success, throttled, client_error, server_error, network_error)",
            Type::Counter,
        ),
        |e, w, _| {
            for ((service, operation, outcome), n) in &e.exporter.aws_requests {
                w.counter("", &["service", "operation", "outcome"], &[service, operation, outcome], *n);
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_backfill_remaining_deployments",
            "API reads the first backfill still has to make: deployments not yet fetched, and finished ones whose targets are not yet read",
            Type::Gauge,
        ),
        // Only once a poller has listed its history, like the retry set.
        |e, w, _| poller_scopes_sum(w, &e.exporter.backfill_remaining),
    ),
    (
        family("codedeploy_exporter_build_info", "The exporter's version and git revision; always 1", Type::Gauge),
        |e, w, _| {
            w.gauge("", &["revision", "version"], &[crate::ingest::REVISION, e.version], 1.0);
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_data_quality_issues_total",
            "Inputs the exporter had to correct, by reason (e.g. clamped negative durations)",
            Type::Counter,
        ),
        |e, w, _| {
            for (reason, n) in sorted(e.ledger.data_quality.iter().map(|(issue, n)| ([issue.label()], *n))) {
                w.counter("", &["reason"], &reason, n);
            }
            Ok(())
        },
    ),
    (
        family("codedeploy_exporter_deployments_tracked", "Deployments held in the ledger", Type::Gauge),
        |e, w, _| {
            // The one family of the ledger that an empty snapshot would
            // still render, as a false 0.
            if !e.ledger_withheld {
                w.gauge("", &[], &[], e.ledger.deployments_tracked as f64);
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_event_lag_seconds",
            "Delay from an event's own time to its being applied, per live source",
            Type::Histogram,
        ),
        |e, w, _| {
            for (source, h) in by_source(e.exporter.lag.iter()) {
                w.histogram("", &["source"], &source, h, false);
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_events_total",
            "Messages received, by source and outcome (applied, duplicate, ignored, rejected)",
            Type::Counter,
        ),
        |e, w, _| {
            let rows = e.exporter.events.iter().map(|((s, o), n)| ([s.label(), o.label()], *n));
            for (values, n) in sorted(rows) {
                w.counter("", &["source", "outcome"], &values, n);
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_lead_time_sources_total",
            "Lead times observed, by where the commit time came from (description, webhook, s3, git) and which commit it is (first_commit, deployed_commit)",
            Type::Counter,
        ),
        |e, w, _| {
            let rows = e.ledger.lead_sources.iter().map(|((source, kind), n)| ([source.label(), kind.label()], *n));
            for (values, n) in sorted(rows) {
                w.counter("", &["source", "commit"], &values, n);
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_limited_total",
            "Input that ran into one of the exporter's bounds, by bound: messages refused (groups, tracked, label_length, future_time) and label values counted as other (error_code, creator, lifecycle_event, hook_error_code, deployment_config, alarm, tag_value)",
            Type::Counter,
        ),
        |e, w, _| {
            // Zero-initialised, so that an alert's increase() sees the first one;
            // not at all while the ledger is withheld (a 0 would read as a reset).
            if !e.ledger_withheld {
                let rows = crate::ledger::limits::Limit::ALL
                    .iter()
                    .map(|limit| ([limit.label()], e.ledger.limited.get(limit).copied().unwrap_or(0)));
                for (limit, n) in sorted(rows) {
                    w.counter("", &["limit"], &limit, n);
                }
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_poller_pending_deployments",
            "Deployments whose API fetch failed (throttling beyond the retries), waiting to be fetched again with backoff",
            Type::Gauge,
        ),
        |e, w, _| poller_scopes_sum(w, &e.exporter.poller_pending),
    ),
    (
        family(
            "codedeploy_exporter_preload_remaining_bytes",
            "Bytes of the --replay files still to load; shown only while serve loads them, before it serves the ledger",
            Type::Gauge,
        ),
        |e, w, _| {
            if let Some(remaining) = e.exporter.preload_remaining_bytes {
                w.gauge("", &[], &[], remaining as f64);
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_source_last_success_timestamp_seconds",
            "When the source last delivered a message that was not rejected",
            Type::Gauge,
        ),
        |e, w, _| {
            for (source, at) in by_source(e.exporter.last_success.iter()) {
                w.gauge("", &["source"], &source, seconds(*at));
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_source_up",
            "Whether the source is running and healthy (1) or not (0)",
            Type::Gauge,
        ),
        |e, w, _| {
            for (source, up) in by_source(e.exporter.source_up.iter()) {
                w.gauge("", &["source"], &source, f64::from(u8::from(*up)));
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_store_commit_failures_total",
            "Store commits that failed since start; while the latest failed, /-/ready answers 503 and the deployment series are left out",
            Type::Counter,
        ),
        |e, w, _| {
            if let Some(failures) = e.exporter.store_commit_failures {
                w.counter("", &[], &[], failures);
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_exporter_unauthenticated_requests_total",
            "Requests refused because they failed authentication (SNS signature checks), by source and reason; kept in memory only, so it starts from 0 with the process",
            Type::Counter,
        ),
        |e, w, _| {
            let rows = e.unauthenticated.iter().map(|((s, reason), n)| ([s.label(), *reason], *n));
            for (values, n) in sorted(rows) {
                w.counter("", &["source", "reason"], &values, n);
            }
            Ok(())
        },
    ),
    (
        family(
            "codedeploy_in_progress_oldest_start_timestamp_seconds",
            "Create (or start) time of the oldest deployment in progress, 0 when none",
            Type::Gauge,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| w.gauge(l, &[], &[], g.oldest_in_progress_start.map_or(0.0, seconds)))
        },
    ),
    (
        family(
            "codedeploy_last_deployment_end_timestamp_seconds",
            "When the latest finished deployment finished, from its first terminal message (before it is counted); 0 when none",
            Type::Gauge,
        ),
        |e, w, labels| per_group(e, w, labels, |g, w, l| w.gauge(l, &[], &[], g.last_end.map_or(0.0, seconds))),
    ),
    (
        family(
            "codedeploy_last_deployment_timestamp_seconds",
            "Completion time of the latest finished deployment, per status",
            Type::Gauge,
        ),
        |e, w, labels| timestamps_by_status(e, w, labels, |g| &g.stats.last_finished),
    ),
    (
        family(
            "codedeploy_last_rollback_timestamp_seconds",
            "Completion time of the latest finished rollback deployment, per status",
            Type::Gauge,
        ),
        |e, w, labels| timestamps_by_status(e, w, labels, |g| &g.stats.last_rollback),
    ),
    (
        family(
            "codedeploy_lead_time_seconds",
            "DORA lead time for changes: commit time to the completion of a succeeded change deployment, where a commit time is known",
            Type::Histogram,
        ),
        |e, w, labels| per_group(e, w, labels, |g, w, l| w.histogram(l, &[], &[], &g.stats.lead_time, false)),
    ),
    (
        family(
            "codedeploy_lead_time_unknown_total",
            "Change deployments whose commit time could not be found, by reason (no_revision, no_source_configured, not_found, source_error)",
            Type::Counter,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                for (reason, n) in sorted(g.stats.lead_time_unknown.iter().map(|(r, n)| ([r.label()], *n))) {
                    w.counter(l, &["reason"], &reason, n);
                }
            })
        },
    ),
    (
        family(
            "codedeploy_lifecycle_event_duration_seconds",
            "Lifecycle event (hook) durations on the targets of finished deployments, succeeded or failed (no buckets: mean = rate(_sum) / rate(_count))",
            Type::Histogram,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                for (hook, h) in &g.stats.hook_durations {
                    w.histogram(l, &["lifecycle_event"], &[hook], h, false);
                }
            })
        },
    ),
    (
        family(
            "codedeploy_lifecycle_event_failures_total",
            "Failed lifecycle events (hooks) by script error code",
            Type::Counter,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                for ((hook, code), n) in &g.stats.hook_failures {
                    w.counter(l, &["lifecycle_event", "error_code"], &[hook, code], *n);
                }
            })
        },
    ),
    (
        family(
            "codedeploy_rollback_duration_seconds",
            "Time to rollback: the rolled-back deployment's completion to the rollback's completion",
            Type::Histogram,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| w.histogram(l, &[], &[], &g.stats.rollback_durations, false))
        },
    ),
    (
        family(
            "codedeploy_rollbacks_total",
            "Finished rollback deployments, by status and by why the deployment they rolled back ended (failure, alarm, manual, unknown)",
            Type::Counter,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| {
                let rows = g.stats.rollbacks.iter().map(|((status, cause), n)| ([status.label(), cause.label()], *n));
                for (values, n) in sorted(rows) {
                    w.counter(l, &["status", "cause"], &values, n);
                }
            })
        },
    ),
    (
        family(
            "codedeploy_sli_deployments",
            "Finished deployments of every creator in the window (the denominator of codedeploy_sli_success_ratio)",
            Type::Gauge,
        ),
        |e, w, labels| windowed(e, w, labels, |f| f.finished as f64),
    ),
    (
        family(
            "codedeploy_sli_rollback_ratio",
            "Rolled-back over finished non-rollback deployments in the window (NaN with none)",
            Type::Gauge,
        ),
        |e, w, labels| windowed(e, w, labels, |f| f.rollback_ratio),
    ),
    (
        family(
            "codedeploy_sli_success_ratio",
            "Succeeded over finished deployments in the window (NaN with none)",
            Type::Gauge,
        ),
        |e, w, labels| windowed(e, w, labels, |f| f.success_ratio),
    ),
    (
        family(
            "codedeploy_time_to_restore_seconds",
            "DORA failed deployment recovery time: first change failure after a success to the next success",
            Type::Histogram,
        ),
        |e, w, labels| {
            per_group(e, w, labels, |g, w, l| w.histogram(l, &[], &[], &g.stats.time_to_restore, false))
        },
    ),
    // The simulated application of `demo` (docs/metrics.md, *demo only*).
    (
        family(
            "demo_app_build_info",
            "demo only: the build each simulated service serves, and the regression the simulator gave it (none, errors, latency)",
            Type::Gauge,
        ),
        |e, w, _| {
            demo_app(e, w, |s, w, labels| {
                let build = s.build.to_string();
                w.gauge("", &["application", "build", "deployment_group", "regression"], &[labels[0], &build, labels[1], s.regression], 1.0);
            })
        },
    ),
    (
        family(
            "demo_app_request_duration_seconds",
            "demo only: request durations of the simulated service behind each deployment group",
            Type::Histogram,
        ),
        |e, w, _| demo_app(e, w, |s, w, labels| w.histogram("", &["application", "deployment_group"], &labels, &s.latency, false)),
    ),
    (
        family(
            "demo_app_request_errors_total",
            "demo only: failed requests of the simulated service behind each deployment group",
            Type::Counter,
        ),
        |e, w, _| demo_app(e, w, |s, w, labels| w.float_counter("", &["application", "deployment_group"], &labels, s.errors)),
    ),
    (
        family(
            "demo_app_requests_total",
            "demo only: requests served by the simulated service behind each deployment group",
            Type::Counter,
        ),
        |e, w, _| demo_app(e, w, |s, w, labels| w.float_counter("", &["application", "deployment_group"], &labels, s.requests)),
    ),
    // The standard process metrics, as every client library names them.
    (
        family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", Type::Counter),
        |e, w, _| process(e, |p| w.float_counter("", &[], &[], p.cpu_seconds)),
    ),
    (
        family("process_max_fds", "Maximum number of open file descriptors.", Type::Gauge),
        |e, w, _| process(e, |p| w.gauge("", &[], &[], p.max_fds)),
    ),
    (
        family("process_open_fds", "Number of open file descriptors.", Type::Gauge),
        |e, w, _| process(e, |p| w.gauge("", &[], &[], p.open_fds)),
    ),
    (
        family("process_resident_memory_bytes", "Resident memory size in bytes.", Type::Gauge),
        |e, w, _| process(e, |p| w.gauge("", &[], &[], p.resident_memory_bytes)),
    ),
    (
        family(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Type::Gauge,
        ),
        |e, w, _| process(e, |p| w.gauge("", &[], &[], p.start_time_seconds)),
    ),
    (
        family("process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::Gauge),
        |e, w, _| process(e, |p| w.gauge("", &[], &[], p.virtual_memory_bytes)),
    ),
];

/// Writes every family of the exposition into the encoder.
pub(super) fn write_all(exposition: &Exposition, encoder: &mut Encoder<'_>) -> io::Result<()> {
    let labels: Vec<String> = exposition.ledger.groups.iter().map(|g| group_labels(&g.key)).collect();
    for (family, series) in FAMILIES {
        encoder.family(*family);
        series(exposition, encoder, &labels)?;
        encoder.flush_if_full()?;
    }
    Ok(())
}

/// A gauge summed over the poller's scopes (`account/region`); absent where no
/// poller has reported, so that `replay`'s output stays as it is.
fn poller_scopes_sum(encoder: &mut Encoder<'_>, by_scope: &BTreeMap<String, u64>) -> io::Result<()> {
    if !by_scope.is_empty() {
        encoder.gauge("", &[], &[], by_scope.values().sum::<u64>() as f64);
    }
    Ok(())
}

/// A `process_*` series, when the server read them (never in `replay`).
fn process(exposition: &Exposition, write: impl FnOnce(&super::ProcessMetrics)) -> io::Result<()> {
    if let Some(process) = &exposition.process {
        write(process);
    }
    Ok(())
}

/// A `demo_app_*` family, one service after the other (`demo` only).
fn demo_app(
    exposition: &Exposition,
    encoder: &mut Encoder<'_>,
    mut series: impl FnMut(&super::demo_app::ServiceFigures, &mut Encoder<'_>, [&str; 2]),
) -> io::Result<()> {
    for service in exposition.demo_app.iter().flat_map(|app| &app.services) {
        series(service, encoder, [service.application, service.deployment_group]);
    }
    Ok(())
}

/// The series of one family, group by group, handing full chunks to the sink
/// between groups.
fn per_group(
    exposition: &Exposition,
    encoder: &mut Encoder<'_>,
    labels: &[String],
    mut series: impl FnMut(&GroupSnapshot, &mut Encoder<'_>, &str),
) -> io::Result<()> {
    for (group, labels) in exposition.ledger.groups.iter().zip(labels) {
        series(group, encoder, labels);
        encoder.flush_if_full()?;
    }
    Ok(())
}

/// Rows in the order of their label values: the maps are keyed by enums whose
/// order is not their labels' order.
fn sorted<'a, const N: usize, V>(rows: impl Iterator<Item = ([&'a str; N], V)>) -> Vec<([&'a str; N], V)> {
    let mut rows: Vec<_> = rows.collect();
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn by_source<'a, V>(rows: impl Iterator<Item = (&'a Source, V)>) -> Vec<([&'static str; 1], V)> {
    sorted(rows.map(|(s, v)| ([s.label()], v)))
}

fn seconds(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

fn timestamps_by_status(
    exposition: &Exposition,
    encoder: &mut Encoder<'_>,
    labels: &[String],
    pick: fn(&GroupSnapshot) -> &BTreeMap<Status, Millis>,
) -> io::Result<()> {
    per_group(exposition, encoder, labels, |g, w, l| {
        for (status, at) in sorted(pick(g).iter().map(|(s, at)| ([s.label()], *at))) {
            w.gauge(l, &["status"], &status, seconds(at));
        }
    })
}

fn windowed(
    exposition: &Exposition,
    encoder: &mut Encoder<'_>,
    labels: &[String],
    pick: fn(&WindowFigures) -> f64,
) -> io::Result<()> {
    per_group(exposition, encoder, labels, |g, w, l| {
        for (window, value) in sorted(g.windows.iter().map(|f| ([f.window], pick(f)))) {
            w.gauge(l, &["window"], &window, value);
        }
    })
}

fn quantiles(
    exposition: &Exposition,
    encoder: &mut Encoder<'_>,
    labels: &[String],
    pick: fn(&WindowFigures) -> [f64; 3],
) -> io::Result<()> {
    per_group(exposition, encoder, labels, |g, w, l| {
        let rows = g.windows.iter().flat_map(|f| QUANTILES.iter().zip(pick(f)).map(|((q, _), v)| ([f.window, *q], v)));
        for (values, value) in sorted(rows) {
            w.gauge(l, &["window", "quantile"], &values, value);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_listed_in_name_order_and_only_the_targets_counter_collides() {
        let names: Vec<&str> = FAMILIES.iter().map(|(f, _)| f.name).collect();
        let mut ordered = names.clone();
        ordered.sort_unstable();
        assert_eq!(names, ordered);
        let colliding: Vec<&str> = FAMILIES
            .iter()
            .filter(|(f, _)| f.kind == Type::Counter)
            .filter(|(f, _)| f.name.strip_suffix("_total").is_some_and(|base| names.contains(&base)))
            .map(|(f, _)| f.name)
            .collect();
        let marked: Vec<&str> = FAMILIES.iter().filter(|(f, _)| f.collides).map(|(f, _)| f.name).collect();
        assert_eq!(colliding, marked);
    }
}
