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

    // Post-deployment impact mappings (issue 14): filled in by mixin/impact.libsonnet.
    impact: {},

    grafana: {
      // Tags of every dashboard; the dashboards' link menu lists the dashboards tagged
      // with the first one.
      dashboardTags: ['codedeploy'],
    },
  },
}
