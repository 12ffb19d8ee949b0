// Everything a user may want to change, in one place. Import the mixin and override
// what differs, for example:
//
//   (import 'codedeploy-exporter/mixin/mixin.libsonnet') + {
//     _config+:: {
//       exporterSelector: 'job="codedeploy"',
//       runbookURLPattern: 'https://git.example.com/ops/runbooks/codedeploy.md#%s',
//       slo+: { objective: 0.99 },
//     },
//   }
//
// scripts/render-mixin renders these defaults into alerts/ and dashboards/.
{
  _config+:: {
    // Selects the exporter's own scrape targets (`up{…}` of CodeDeployExporterDown and
    // the debug dashboard's target table): match the job name of your scrape config.
    // The default names the jobs of this project's own configurations: `codedeploy` (README,
    // compose, the landing page) and `codedeploy-exporter` (the Kubernetes ServiceMonitor).
    exporterSelector: 'job=~"codedeploy|codedeploy-exporter"',

    // Which deployment groups are production, as a selector of
    // codedeploy_deployment_group_info: the DORA rules and dashboard count only these. The
    // exporter sets `production` from the environment tag or --dora.production-groups.
    productionSelector: 'production="true"',
    // Labels of codedeploy_deployment_group_info made from the groups' tags
    // (--labels.from-tags): the DORA figures are cut by the team label, the dashboards
    // filter by both. A group without the tag has an empty label, which `All` matches.
    teamLabel: 'team',
    environmentLabel: 'environment',

    // Labels that tell replicas of the exporter apart. Every domain rule and panel takes
    // `max without (<these>)` of the per-replica values before summing across groups
    // (two replicas, one Prometheus: docs/alerts.md). Add `replica` if you label them so.
    replicaLabels: 'instance, pod',

    // `%s` is the alert name in lower case: GitHub's anchor of its runbook section.
    runbookURLPattern: 'https://github.com/codedeploy-exporter/codedeploy-exporter/blob/main/docs/runbooks.md#%s',

    // The deployment-success SLO (docs/alerts.md, "The SLO"). Rendered into the
    // codedeploy_slo:* recording rules, which the alerts and dashboards read.
    slo: {
      // Target fraction of finished deployments (all creators) that succeed over 30d.
      objective: 0.95,
      // The 30d budget is computed from max(deployments in 30d, this floor), so that a
      // new or quiet group does not exhaust its budget with its first failure.
      periodDeploymentsFloor: 40,
      // Absolute failed-deployment counts below which the burn-rate alerts stay silent.
      pageMinFailures: 3,
      ticketMinFailures: 2,
    },

    // The targets of the seed's reference practice, as alerts (mixin/alerts/targets.libsonnet),
    // rendered into alerts/codedeploy.thresholds.yml. Each ratio alert also needs a floor
    // of bad events, so that one failure at low volume never fires it.
    targets: {
      // M2: mean duration of the deployments finished in the last day, and how many
      // deployments that mean needs.
      meanDeploymentDurationSeconds: 600,
      meanDeploymentDurationMinDeployments: 3,
      // M3: mean time to roll back (the rolled-back deployment's end to the rollback's
      // end) of the rollbacks finished in the last day.
      meanTimeToRollbackSeconds: 300,
      // M10: rolled-back share of the deployments of the last 30 days, and how many
      // rollbacks that needs.
      rollbackRatio30d: 0.02,
      rollbackRatioMinRollbacks: 2,
      // M5: healthy share of the targets of a deployment in progress, and how many
      // failed targets make it worth a ticket.
      healthyTargetsRatio: 0.95,
      healthyTargetsMinFailed: 2,
      // M1: deployment success ratio of the last 30 days (the exporter's exact window),
      // and how many change failures that needs.
      successRatio30d: 0.99,
      successRatioMinFailures: 2,
    },

    // Post-deployment impact (M4, M6; docs/alerts.md, "Post-deployment impact"): which
    // of your application's metrics belong to which deployment group, and when a
    // deployment made them worse. Rendered by mixin/impact.libsonnet.
    impact: {
      // What every mapping uses unless it says otherwise.
      defaults: {
        // Each figure is a rate over this window (the `%(rateWindow)s` of the expressions).
        rateWindow: '5m',
        // The after figures are compared from `rateWindow` to this long after the latest
        // deployment finished; later, the group is quiet again and records its baseline.
        afterWindow: '30m',
        // How far back the last quiet figure (the baseline) is looked for.
        baselineLookback: '6h',
        // Alert when the error ratio after exceeds this multiple of the baseline (M4: 2×)
        // and this floor, and when the p95 latency after exceeds this multiple (M6: +15 %).
        errorRatioFactor: 2,
        minErrorRatio: 0.001,
        latencyFactor: 1.15,
        // The traffic guard: no impact alert on fewer requests per second than this.
        minRequestsPerSecond: 1,
        alertFor: '5m',
        errorSeverity: 'critical',
        latencySeverity: 'warning',
        // How the expressions' series find their deployment group: by these labels, taken
        // from the deployment series themselves, or (`viaGroupInfo: true`) from the
        // group's tags on codedeploy_deployment_group_info (e.g. ['service']).
        joinLabels: ['application', 'deployment_group'],
        viaGroupInfo: false,
      },
      // One entry per set of metrics: `name`, and three expressions aggregated `by` the
      // join labels: requests per second, error ratio, p95 latency in seconds. Replace
      // the demo's mapping with yours, for example
      //   { name: 'http', joinLabels: ['service'], viaGroupInfo: true,
      //     requestRate: 'sum by (service) (rate(http_requests_total[%(rateWindow)s]))',
      //     errorRatio: 'sum by (service) (rate(http_requests_total{code=~"5.."}[%(rateWindow)s])) / sum by (service) (rate(http_requests_total[%(rateWindow)s]))',
      //     latencyP95: 'histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket[%(rateWindow)s])))' }
      mappings: [
        // `demo`'s simulated application (docs/metrics.md). Its deployments run in
        // accelerated time and each group rests 60 s after one, hence its windows: they
        // need a scrape interval of 5 s or less. Harmless elsewhere: nothing matches.
        {
          name: 'demo',
          rateWindow: '15s',
          afterWindow: '45s',
          baselineLookback: '10m',
          alertFor: '5s',
          requestRate: 'sum by (application, deployment_group) (rate(demo_app_requests_total[%(rateWindow)s]))',
          errorRatio: |||
            sum by (application, deployment_group) (rate(demo_app_request_errors_total[%(rateWindow)s]))
              / sum by (application, deployment_group) (rate(demo_app_requests_total[%(rateWindow)s]))
          |||,
          latencyP95: 'histogram_quantile(0.95, sum by (application, deployment_group, le) (rate(demo_app_request_duration_seconds_bucket[%(rateWindow)s])))',
        },
      ],
    },

    grafana: {
      // Tags of every dashboard; the dashboards' link menu lists the dashboards tagged
      // with the first one.
      dashboardTags: ['codedeploy'],
    },
  },
}
