//! The one collector: turns an [`Exposition`] into metric families.
//!
//! Each family is described once (one `encode_descriptor` per name, as the
//! OpenMetrics format requires) and its series follow in label order.

use std::time::{Duration, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::exemplar::HistogramWithExemplars;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use super::Exposition;
use crate::domain::{Millis, TargetStatus};
use crate::ledger::histogram::Histogram;
use crate::ledger::{GroupKey, GroupSnapshot, QUANTILES};

type Labels = Vec<(&'static str, String)>;

enum Rows<'a> {
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, f64)>),
    /// Gauges with a `quantile` label. Written untyped: the exposition format
    /// reserves `quantile` for summaries, `prometheus-client` cannot write
    /// summaries, and Prometheus stores untyped samples exactly like gauges.
    Quantiles(Vec<(Labels, f64)>),
    /// The flag asks for exemplars (the deployment id) where the format allows.
    Histogram(Vec<(Labels, &'a Histogram)>, bool),
}

struct Family<'a> {
    /// The rendered name (with `_total` for counters), used for sorting.
    name: &'static str,
    help: &'static str,
    rows: Rows<'a>,
}

#[derive(Debug)]
pub(super) struct SnapshotCollector {
    pub exposition: Exposition,
    pub openmetrics: bool,
}

fn base_labels(key: &GroupKey) -> Labels {
    vec![
        ("account_id", key.account_id.clone()),
        ("region", key.region.clone()),
        ("application", key.application.clone()),
        ("deployment_group", key.deployment_group.clone()),
    ]
}

fn with(mut labels: Labels, extra: &[(&'static str, &str)]) -> Labels {
    labels.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    labels
}

fn seconds(ms: Millis) -> f64 {
    ms as f64 / 1000.0
}

/// Per-group rows of one family.
fn per_group<'a, T>(
    groups: &'a [GroupSnapshot],
    rows: impl Fn(&'a GroupSnapshot, &Labels) -> Vec<(Labels, T)>,
) -> Vec<(Labels, T)> {
    groups.iter().flat_map(|g| rows(g, &base_labels(&g.key))).collect()
}

impl SnapshotCollector {
    fn families(&self) -> Vec<Family<'_>> {
        let groups = &self.exposition.ledger.groups;
        let exporter = &self.exposition.exporter;
        let mut families = vec![
            Family {
                name: "codedeploy_deployments_total",
                help: "Finished deployments, counted once when they settle",
                rows: Rows::Counter(per_group(groups, |g, base| {
                    g.stats
                        .deployments
                        .iter()
                        .map(|((kind, status), n)| {
                            let labels = with(
                                base.clone(),
                                &[
                                    ("compute_platform", &kind.compute_platform),
                                    ("deployment_type", &kind.deployment_type),
                                    ("creator", &kind.creator),
                                    ("status", status.label()),
                                ],
                            );
                            (labels, *n)
                        })
                        .collect()
                })),
            },
            Family {
                name: "codedeploy_deployments_in_progress",
                help: "Deployments started and not finished",
                rows: Rows::Gauge(per_group(groups, |g, base| {
                    vec![(base.clone(), g.in_progress as f64)]
                })),
            },
            Family {
                name: "codedeploy_in_progress_oldest_start_timestamp_seconds",
                help: "Create (or start) time of the oldest deployment in progress, 0 when none",
                rows: Rows::Gauge(per_group(groups, |g, base| {
                    vec![(base.clone(), g.oldest_in_progress_start.map_or(0.0, seconds))]
                })),
            },
            Family {
                name: "codedeploy_deployment_duration_seconds",
                help: "Deployment duration from createTime to completeTime (or START to terminal event)",
                rows: Rows::Histogram(
                    per_group(groups, |g, base| {
                        g.stats
                            .durations
                            .iter()
                            .map(|(status, h)| (with(base.clone(), &[("status", status.label())]), h))
                            .collect()
                    }),
                    true,
                ),
            },
            Family {
                name: "codedeploy_rollbacks_total",
                help: "Finished rollback deployments",
                rows: Rows::Counter(per_group(groups, |g, base| {
                    g.stats
                        .rollbacks
                        .iter()
                        .map(|(status, n)| (with(base.clone(), &[("status", status.label())]), *n))
                        .collect()
                })),
            },
            Family {
                name: "codedeploy_rollback_duration_seconds",
                help: "Time to rollback: the rolled-back deployment's completion to the rollback's completion",
                rows: Rows::Histogram(
                    per_group(groups, |g, base| vec![(base.clone(), &g.stats.rollback_durations)]),
                    false,
                ),
            },
            Family {
                name: "codedeploy_change_failures_total",
                help: "DORA change failures: change deployments that failed, were stopped or were rolled back",
                rows: Rows::Counter(per_group(groups, |g, base| {
                    vec![(base.clone(), g.stats.change_failures)]
                })),
            },
            Family {
                name: "codedeploy_time_to_restore_seconds",
                help: "DORA failed deployment recovery time: first change failure after a success to the next success",
                rows: Rows::Histogram(
                    per_group(groups, |g, base| vec![(base.clone(), &g.stats.time_to_restore)]),
                    false,
                ),
            },
            Family {
                name: "codedeploy_lead_time_seconds",
                help: "DORA lead time for changes: commit time to deployment completion, where a commit time is known",
                rows: Rows::Histogram(
                    per_group(groups, |g, base| vec![(base.clone(), &g.stats.lead_time)]),
                    false,
                ),
            },
            Family {
                name: "codedeploy_lead_time_unknown_total",
                help: "Change deployments whose commit time could not be found, by reason (no_revision, no_source_configured, not_found, source_error)",
                rows: Rows::Counter(per_group(groups, |g, base| {
                    g.stats
                        .lead_time_unknown
                        .iter()
                        .map(|(reason, n)| (with(base.clone(), &[("reason", reason.label())]), *n))
                        .collect()
                })),
            },
            Family {
                name: "codedeploy_deployment_errors_total",
                help: "Failed and stopped deployments by errorInformation code",
                rows: Rows::Counter(per_group(groups, |g, base| {
                    g.stats
                        .errors
                        .iter()
                        .map(|(code, n)| (with(base.clone(), &[("error_code", code)]), *n))
                        .collect()
                })),
            },
            Family {
                name: "codedeploy_deployment_targets_total",
                help: "Target outcomes of finished deployments",
                rows: Rows::Counter(per_group(groups, |g, base| {
                    g.stats
                        .targets
                        .iter()
                        .map(|(status, n)| (with(base.clone(), &[("status", status.label())]), *n))
                        .collect()
                })),
            },
            Family {
                name: "codedeploy_deployment_targets",
                help: "Target states of the deployments in progress",
                rows: Rows::Gauge(per_group(groups, |g, base| {
                    TargetStatus::ALL
                        .iter()
                        .filter(|s| **s != TargetStatus::Unknown)
                        .map(|s| {
                            let n = g.targets_in_progress.get(s).copied().unwrap_or(0);
                            (with(base.clone(), &[("status", s.label())]), n as f64)
                        })
                        .collect()
                })),
            },
            Family {
                name: "codedeploy_lifecycle_event_duration_seconds",
                help: "Lifecycle event (hook) durations on the targets of finished deployments",
                rows: Rows::Histogram(
                    per_group(groups, |g, base| {
                        g.stats
                            .hook_durations
                            .iter()
                            .map(|((hook, status), h)| {
                                let labels = with(
                                    base.clone(),
                                    &[("lifecycle_event", hook), ("status", status.label())],
                                );
                                (labels, h)
                            })
                            .collect()
                    }),
                    false,
                ),
            },
            Family {
                name: "codedeploy_lifecycle_event_failures_total",
                help: "Failed lifecycle events (hooks) by script error code",
                rows: Rows::Counter(per_group(groups, |g, base| {
                    g.stats
                        .hook_failures
                        .iter()
                        .map(|((hook, code), n)| {
                            let labels =
                                with(base.clone(), &[("lifecycle_event", hook), ("error_code", code)]);
                            (labels, *n)
                        })
                        .collect()
                })),
            },
            Family {
                name: "codedeploy_last_deployment_timestamp_seconds",
                help: "Completion time of the latest finished deployment, per status",
                rows: Rows::Gauge(per_group(groups, |g, base| {
                    g.stats
                        .last_finished
                        .iter()
                        .map(|(status, at)| {
                            (with(base.clone(), &[("status", status.label())]), seconds(*at))
                        })
                        .collect()
                })),
            },
            Family {
                name: "codedeploy_last_rollback_timestamp_seconds",
                help: "Completion time of the latest finished rollback deployment, per status",
                rows: Rows::Gauge(per_group(groups, |g, base| {
                    g.stats
                        .last_rollback
                        .iter()
                        .map(|(status, at)| {
                            (with(base.clone(), &[("status", status.label())]), seconds(*at))
                        })
                        .collect()
                })),
            },
        ];
        families.extend(self.window_families());
        families.extend(self.exporter_families(exporter));
        families.sort_by_key(|f| f.name);
        for family in &mut families {
            // Label names come in the same order within a family, so comparing
            // the label lists orders series by their label values.
            match &mut family.rows {
                Rows::Counter(rows) => rows.sort_by(|a, b| a.0.cmp(&b.0)),
                Rows::Gauge(rows) | Rows::Quantiles(rows) => rows.sort_by(|a, b| a.0.cmp(&b.0)),
                Rows::Histogram(rows, _) => rows.sort_by(|a, b| a.0.cmp(&b.0)),
            }
        }
        families
    }

    fn window_families(&self) -> Vec<Family<'_>> {
        let groups = &self.exposition.ledger.groups;
        let windowed = |pick: fn(&crate::ledger::WindowFigures) -> f64| {
            per_group(groups, move |g, base| {
                g.windows
                    .iter()
                    .map(|w| (with(base.clone(), &[("window", w.window)]), pick(w)))
                    .collect()
            })
        };
        let quantiled = |pick: fn(&crate::ledger::WindowFigures) -> [f64; 3]| {
            per_group(groups, move |g, base| {
                g.windows
                    .iter()
                    .flat_map(|w| {
                        QUANTILES.iter().zip(pick(w)).map(move |((q, _), v)| {
                            (with(base.clone(), &[("window", w.window), ("quantile", q)]), v)
                        })
                    })
                    .collect()
            })
        };
        vec![
            Family {
                name: "codedeploy_sli_success_ratio",
                help: "Succeeded over finished deployments in the window (NaN with none)",
                rows: Rows::Gauge(windowed(|w| w.success_ratio)),
            },
            Family {
                name: "codedeploy_sli_rollback_ratio",
                help: "Rolled-back over finished non-rollback deployments in the window (NaN with none)",
                rows: Rows::Gauge(windowed(|w| w.rollback_ratio)),
            },
            Family {
                name: "codedeploy_dora_deployments",
                help: "DORA deployment frequency: finished change deployments in the window",
                rows: Rows::Gauge(windowed(|w| w.deployments as f64)),
            },
            Family {
                name: "codedeploy_dora_change_failure_ratio",
                help: "DORA change failure rate: change failures over finished change deployments in the window (NaN with none)",
                rows: Rows::Gauge(windowed(|w| w.change_failure_ratio)),
            },
            Family {
                name: "codedeploy_dora_time_to_restore_seconds",
                help: "DORA failed deployment recovery time quantiles over the recoveries in the window (NaN with none)",
                rows: Rows::Quantiles(quantiled(|w| w.time_to_restore)),
            },
            Family {
                name: "codedeploy_deployment_duration_window_seconds",
                help: "Deployment duration quantiles over the deployments finished in the window (NaN with none)",
                rows: Rows::Quantiles(quantiled(|w| w.duration)),
            },
            Family {
                name: "codedeploy_dora_lead_time_seconds",
                help: "DORA lead time for changes quantiles over the change deployments finished in the window with a known commit time (NaN with none)",
                rows: Rows::Quantiles(quantiled(|w| w.lead_time)),
            },
        ]
    }

    fn exporter_families<'a>(&'a self, exporter: &'a super::ExporterMetrics) -> Vec<Family<'a>> {
        let source = |s: super::Source| vec![("source", s.label().to_owned())];
        vec![
            Family {
                name: "codedeploy_exporter_build_info",
                help: "The exporter's version; always 1",
                rows: Rows::Gauge(vec![(vec![("version", self.exposition.version.to_owned())], 1.0)]),
            },
            Family {
                name: "codedeploy_exporter_events_total",
                help: "Messages received, by source and outcome (applied, duplicate, ignored, rejected)",
                rows: Rows::Counter(
                    exporter
                        .events
                        .iter()
                        .map(|((s, o), n)| (with(source(*s), &[("outcome", o.label())]), *n))
                        .collect(),
                ),
            },
            Family {
                name: "codedeploy_exporter_source_up",
                help: "Whether the source is running and healthy (1) or not (0)",
                rows: Rows::Gauge(
                    exporter.source_up.iter().map(|(s, up)| (source(*s), f64::from(u8::from(*up)))).collect(),
                ),
            },
            Family {
                name: "codedeploy_exporter_source_last_success_timestamp_seconds",
                help: "When the source last delivered a message that was not rejected",
                rows: Rows::Gauge(
                    exporter.last_success.iter().map(|(s, at)| (source(*s), seconds(*at))).collect(),
                ),
            },
            Family {
                name: "codedeploy_exporter_event_lag_seconds",
                help: "Delay from an event's own time to its being applied, per live source",
                rows: Rows::Histogram(exporter.lag.iter().map(|(s, h)| (source(*s), h)).collect(), false),
            },
            Family {
                name: "codedeploy_exporter_deployments_tracked",
                help: "Deployments held in the ledger",
                rows: Rows::Gauge(vec![(vec![], self.exposition.ledger.deployments_tracked as f64)]),
            },
            Family {
                name: "codedeploy_exporter_aws_requests_total",
                help: "AWS API request attempts (each retry counts), by service, operation and outcome (success, throttled, client_error, server_error, network_error)",
                rows: Rows::Counter(
                    exporter
                        .aws_requests
                        .iter()
                        .map(|((service, operation, outcome), n)| {
                            let labels = vec![
                                ("service", service.clone()),
                                ("operation", operation.clone()),
                                ("outcome", outcome.clone()),
                            ];
                            (labels, *n)
                        })
                        .collect(),
                ),
            },
            Family {
                name: "codedeploy_exporter_data_quality_issues_total",
                help: "Inputs the exporter had to correct, by reason (e.g. clamped negative durations)",
                rows: Rows::Counter(
                    self.exposition
                        .ledger
                        .data_quality
                        .iter()
                        .map(|(issue, n)| (vec![("reason", issue.label().to_owned())], *n))
                        .collect(),
                ),
            },
            Family {
                name: "codedeploy_exporter_lead_time_sources_total",
                help: "Lead times observed, by where the commit time came from (description, webhook, s3, git) and which commit it is (first_commit, deployed_commit)",
                rows: Rows::Counter(
                    self.exposition
                        .ledger
                        .lead_sources
                        .iter()
                        .map(|((source, kind), n)| {
                            (vec![("source", source.label().to_owned()), ("commit", kind.label().to_owned())], *n)
                        })
                        .collect(),
                ),
            },
        ]
    }
}

/// Splits a rendered name into the base name and unit `prometheus-client`
/// wants: it appends `_seconds` and, for counters, `_total` itself.
fn descriptor_name(name: &'static str, metric_type: MetricType) -> (&'static str, Option<Unit>) {
    let name = match metric_type {
        MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    match name.strip_suffix("_seconds") {
        Some(base) => (base, Some(Unit::Seconds)),
        None => (name, None),
    }
}

fn encode_histogram(
    mut series: MetricEncoder<'_>,
    histogram: &Histogram,
    exemplars: bool,
) -> Result<(), std::fmt::Error> {
    if exemplars {
        return rebuilt_with_exemplars(histogram).encode(series);
    }
    let buckets: Vec<(f64, u64)> = histogram
        .bounds()
        .iter()
        .copied()
        .chain(std::iter::once(f64::INFINITY))
        .zip(histogram.bucket_counts.iter().copied())
        .collect();
    series.encode_histogram::<NoLabelSet>(histogram.sum_seconds(), histogram.count, &buckets, None)
}

/// The exemplar's one label.
const EXEMPLAR_LABEL: &str = "deployment_id";
/// OpenMetrics: an exemplar's label names and values hold 128 characters at most.
const MAX_EXEMPLAR_LABEL_CHARS: usize = 128;

/// `prometheus-client` offers no way to build an exemplar except by observing
/// into a `HistogramWithExemplars`, so for OpenMetrics the histogram is rebuilt
/// bucket by bucket: the exemplar's own value, then the rest of the bucket at
/// its mean, which lands in the same bucket and keeps the bucket's sum.
fn rebuilt_with_exemplars(histogram: &Histogram) -> HistogramWithExemplars<Labels> {
    let rebuilt = HistogramWithExemplars::new(histogram.bounds().iter().copied());
    for (bucket, count) in histogram.bucket_counts.iter().enumerate() {
        let mut remaining_count = *count;
        let mut remaining_ms = histogram.bucket_sums_ms[bucket];
        if let (Some(exemplar), true) = (&histogram.exemplars[bucket], remaining_count > 0) {
            let at = UNIX_EPOCH + Duration::from_millis(exemplar.at.max(0) as u64);
            // OpenMetrics caps an exemplar's label names and values at 128
            // characters together; a longer id (moto's are UUIDs, AWS's 11
            // characters, but up to 128 are accepted) goes without its exemplar.
            let fits = EXEMPLAR_LABEL.len() + exemplar.deployment_id.chars().count() <= MAX_EXEMPLAR_LABEL_CHARS;
            let labels = fits.then(|| vec![(EXEMPLAR_LABEL, exemplar.deployment_id.clone())]);
            rebuilt.observe(seconds(exemplar.value_ms), labels, fits.then_some(at));
            remaining_count -= 1;
            remaining_ms -= exemplar.value_ms;
        }
        if remaining_count > 0 {
            let mean = seconds(remaining_ms) / remaining_count as f64;
            for _ in 0..remaining_count {
                rebuilt.observe(mean, None, None);
            }
        }
    }
    rebuilt
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let families = self.families();
        let names: Vec<&str> = families.iter().map(|f| f.name).collect();
        for family in families {
            let metric_type = match &family.rows {
                Rows::Counter(rows) if rows.is_empty() => continue,
                Rows::Gauge(rows) | Rows::Quantiles(rows) if rows.is_empty() => continue,
                Rows::Histogram(rows, _) if rows.is_empty() => continue,
                Rows::Counter(_) => MetricType::Counter,
                Rows::Gauge(_) => MetricType::Gauge,
                Rows::Quantiles(_) => MetricType::Unknown,
                Rows::Histogram(..) => MetricType::Histogram,
            };
            // OpenMetrics names a counter family without `_total`, which would
            // collide with the gauge `codedeploy_deployment_targets`; there the
            // counter goes out untyped under its full name, as the text format has it.
            let collides = self.openmetrics
                && metric_type == MetricType::Counter
                && family.name.strip_suffix("_total").is_some_and(|base| names.contains(&base));
            let (name, unit, metric_type) = if collides {
                (family.name, None, MetricType::Unknown)
            } else {
                let (name, unit) = descriptor_name(family.name, metric_type);
                (name, unit, metric_type)
            };
            let mut metric = encoder.encode_descriptor(name, family.help, unit.as_ref(), metric_type)?;
            match &family.rows {
                Rows::Counter(rows) if collides => {
                    for (labels, value) in rows {
                        metric.encode_family(labels)?.encode_gauge(value)?;
                    }
                }
                Rows::Counter(rows) => {
                    for (labels, value) in rows {
                        metric.encode_family(labels)?.encode_counter::<NoLabelSet, _, u64>(value, None)?;
                    }
                }
                Rows::Gauge(rows) | Rows::Quantiles(rows) => {
                    for (labels, value) in rows {
                        metric.encode_family(labels)?.encode_gauge(value)?;
                    }
                }
                Rows::Histogram(rows, exemplars) => {
                    for (labels, histogram) in rows {
                        let series = metric.encode_family(labels)?;
                        encode_histogram(series, histogram, *exemplars && self.openmetrics)?;
                    }
                }
            }
        }
        Ok(())
    }
}
