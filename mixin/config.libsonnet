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
    exporterSelector: 'job=~".*codedeploy.*"',

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

    // Post-deployment impact mappings (issue 14): filled in by mixin/impact.libsonnet.
    impact: {},

    grafana: {
      // Tags of every dashboard; the dashboards' link menu lists the dashboards tagged
      // with the first one.
      dashboardTags: ['codedeploy'],
    },
  },
}
