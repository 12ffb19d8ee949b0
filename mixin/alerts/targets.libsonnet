// The seed's targets as alerts: mean deployment duration (M2), time to roll back (M3),
// rollback rate (M10) and success rate (M1); the healthy-targets target (M5) is
// CodeDeployHealthyTargetsLow of mixin/alerts/deployments.libsonnet. Thresholds and
// floors are constant rules of alerts/codedeploy.thresholds.yml (_config.targets), the
// SLIs they compare are recorded here (alerts/codedeploy.rules.yml), the alerts go to
// alerts/codedeploy.alerts.yml.
//
// Low volume: like the burn-rate alerts, each needs a floor of events besides its ratio
// or mean, so that one slow or failed deployment of a quiet group is no trend. The 30-day
// figures come from the exporter's exact window gauges, so they hold from the first scrape.
{
  local config = $._config,
  local where = '{{ $labels.application }}/{{ $labels.deployment_group }} (account {{ $labels.account_id }}, {{ $labels.region }})',
  local perGroup(selector) = 'max without (%s, window) (%s)' % [config.replicaLabels, selector],

  // Observations of a histogram in the last day and their mean, per deployment group
  // (NaN when the day holds none, as the exporter's own window figures are).
  local meanOverOneDay(histogram) = [
    {
      record: 'deployment_group:%s:count1d' % histogram,
      expr: 'sum without (status) (max without (%s) (increase(%s_count[1d])))' % [config.replicaLabels, histogram],
    },
    {
      record: 'deployment_group:%s:mean1d' % histogram,
      expr: |||
        sum without (status) (max without (%(replicas)s) (increase(%(histogram)s_sum[1d])))
          / deployment_group:%(histogram)s:count1d
      ||| % { replicas: config.replicaLabels, histogram: histogram },
    },
  ],

  prometheusRules+:: {
    groups+: [
      {
        name: 'codedeploy-sli-targets',
        renderTo:: 'codedeploy.rules.yml',
        rules: meanOverOneDay('codedeploy_deployment_duration_seconds') + meanOverOneDay('codedeploy_rollback_duration_seconds') + [
          // The exporter's exact 30-day ratios (NaN without a deployment in 30 days).
          {
            record: 'deployment_group:codedeploy_sli_success:ratio30d',
            expr: perGroup('codedeploy_sli_success_ratio{window="30d"}'),
          },
          {
            record: 'deployment_group:codedeploy_sli_rollback:ratio30d',
            expr: perGroup('codedeploy_sli_rollback_ratio{window="30d"}'),
          },
          // Counts given back by ratio * change deployments, exact for change failures.
          // Rolled-back deployments are divided by every non-rollback deployment, Auto
          // Scaling ones included, so this count of them is a lower bound.
          {
            record: 'deployment_group:codedeploy_dora_change_failures:count30d',
            expr: '%s\n* %s\n' % [perGroup('codedeploy_dora_change_failure_ratio{window="30d"} >= 0'), perGroup('codedeploy_dora_deployments{window="30d"}')],
          },
          {
            record: 'deployment_group:codedeploy_rollbacks_lower_bound:count30d',
            expr: '%s\n* %s\n' % [perGroup('codedeploy_sli_rollback_ratio{window="30d"} >= 0'), perGroup('codedeploy_dora_deployments{window="30d"}')],
          },
        ],
      },
    ],
  },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'codedeploy-targets',
        renderTo:: 'codedeploy.alerts.yml',
        rules: [
          {
            alert: 'CodeDeployDeploymentDurationHigh',
            expr: |||
              deployment_group:codedeploy_deployment_duration_seconds:mean1d > scalar(codedeploy_target:deployment_duration_mean:max_seconds)
              and deployment_group:codedeploy_deployment_duration_seconds:count1d > scalar(codedeploy_target:deployment_duration_min_deployments:count) - 0.5
            |||,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'CodeDeploy deployments take longer than their target.',
              description: where + ': the deployments of the last day took {{ $value | humanizeDuration }} on average.',
            },
          },
          {
            alert: 'CodeDeployRollbackSlow',
            expr: |||
              deployment_group:codedeploy_rollback_duration_seconds:mean1d > scalar(codedeploy_target:rollback_duration_mean:max_seconds)
              and deployment_group:codedeploy_rollback_duration_seconds:count1d > 0.5
            |||,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'CodeDeploy rollbacks take longer than their target.',
              description: where + ': the rollbacks of the last day took {{ $value | humanizeDuration }} on average from the failed deployment to the restored revision.',
            },
          },
          {
            alert: 'CodeDeployRollbackRateHigh',
            expr: |||
              deployment_group:codedeploy_sli_rollback:ratio30d > scalar(codedeploy_target:rollback_ratio30d:max)
              and deployment_group:codedeploy_rollbacks_lower_bound:count30d > scalar(codedeploy_target:rollback_min_rollbacks30d:count) - 0.5
            |||,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Too many CodeDeploy deployments were rolled back in 30 days.',
              description: where + ': {{ $value | humanizePercentage }} of the deployments of the last 30 days were rolled back.',
            },
          },
          {
            alert: 'CodeDeploySuccessRateLow',
            expr: |||
              deployment_group:codedeploy_sli_success:ratio30d < scalar(codedeploy_target:success_ratio30d:min)
              and deployment_group:codedeploy_dora_change_failures:count30d > scalar(codedeploy_target:success_min_failures30d:count) - 0.5
            |||,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'The CodeDeploy success rate of 30 days is below its target.',
              description: where + ': {{ $value | humanizePercentage }} of the deployments of the last 30 days succeeded.',
            },
          },
        ],
      },
    ],
  },
}
