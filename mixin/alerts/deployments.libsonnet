// Alerts on deployment outcomes. Rendered into alerts/codedeploy.alerts.yml.
//
// Domain alerts first take `max without (<replica labels>)` so that two replicas scraped
// by one Prometheus raise one alert per deployment group. Counts compare with
// half-integers (`> 0.5`): increase() extrapolates at window edges.
{
  local config = $._config,
  local where = '{{ $labels.application }}/{{ $labels.deployment_group }} (account {{ $labels.account_id }}, {{ $labels.region }})',

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'codedeploy-deployments',
        renderTo:: 'codedeploy.alerts.yml',
        rules: [
          // Counted from the outcome counter; the second operand catches a group whose
          // first series is born with the failure already counted (increase() cannot see
          // a series' first value), using the completion time of the group's latest
          // failed deployment.
          {
            alert: 'CodeDeployDeploymentFailed',
            expr: |||
              (
                sum without (compute_platform, deployment_type, creator, deployment_config, status) (
                  max without (%(replicaLabels)s) (increase(codedeploy_deployments_total{status="failed"}[1h]))
                ) > 0.5
              )
              or
              (
                max without (%(replicaLabels)s, status) (
                  (time() - codedeploy_last_deployment_timestamp_seconds{status="failed"}) < 3600 >= -300
                ) * 0 + 1
              )
            ||| % config,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A CodeDeploy deployment failed.',
              description: where + ': {{ printf "%.0f" $value }} failed deployment(s) in the last hour.',
            },
          },
          {
            alert: 'CodeDeployAutomaticRollback',
            expr: |||
              (
                sum without (status, cause) (
                  max without (%(replicaLabels)s) (increase(codedeploy_rollbacks_total[1h]))
                ) > 0.5
              )
              or
              (
                max without (%(replicaLabels)s, status) (
                  (time() - codedeploy_last_rollback_timestamp_seconds) < 3600 >= -300
                ) * 0 + 1
              )
            ||| % config,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'CodeDeploy rolled a deployment back.',
              description: where + ': {{ printf "%.0f" $value }} rollback deployment(s) finished in the last hour.',
            },
          },
          {
            alert: 'CodeDeployRollbackFailed',
            expr: |||
              (
                sum without (status, cause) (
                  max without (%(replicaLabels)s) (increase(codedeploy_rollbacks_total{status="failed"}[1h]))
                ) > 0.5
              )
              or
              (
                max without (%(replicaLabels)s, status) (
                  (time() - codedeploy_last_rollback_timestamp_seconds{status="failed"}) < 3600 >= -300
                ) * 0 + 1
              )
            ||| % config,
            labels: { severity: 'critical' },
            annotations: {
              summary: 'A CodeDeploy rollback deployment failed.',
              description: where + ': {{ printf "%.0f" $value }} rollback deployment(s) failed in the last hour; the group may run a mix of revisions.',
            },
          },
          // The oldest deployment still in progress started more than an hour ago.
          {
            alert: 'CodeDeployDeploymentStuck',
            expr: |||
              time() - max without (%(replicaLabels)s) (codedeploy_in_progress_oldest_start_timestamp_seconds > 0) > 3600
            ||| % config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A CodeDeploy deployment has been in progress for too long.',
              description: where + ': the oldest deployment in progress started {{ $value | humanizeDuration }} ago.',
            },
          },
          {
            alert: 'CodeDeployLifecycleHookFailingRepeatedly',
            expr: |||
              deployment_group:codedeploy_lifecycle_event_failures:increase6h > 2.5
            |||,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A CodeDeploy lifecycle hook keeps failing.',
              description: where + ': lifecycle event {{ $labels.lifecycle_event }} failed on {{ printf "%.0f" $value }} target(s) in the last 6 hours.',
            },
          },
          // M5. Healthy = every target of the deployments in progress that has not
          // failed. Below the target share (codedeploy.thresholds.yml), with at least the
          // floor of failed targets: a single failed target of a small fleet is already
          // below 95% and is worth no ticket of its own.
          {
            alert: 'CodeDeployHealthyTargetsLow',
            expr: |||
              (
                sum without (status) (max without (%(replicaLabels)s) (codedeploy_deployment_targets{status!="failed"}))
                /
                sum without (status) (max without (%(replicaLabels)s) (codedeploy_deployment_targets))
              ) < scalar(codedeploy_target:healthy_targets:min_ratio)
              and
              sum without (status) (max without (%(replicaLabels)s) (codedeploy_deployment_targets{status="failed"}))
                > scalar(codedeploy_target:healthy_targets_min_failed:count) - 0.5
            ||| % config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Too few healthy targets during a CodeDeploy deployment.',
              description: where + ': only {{ $value | humanizePercentage }} of the targets of the deployment in progress are healthy.',
            },
          },
        ],
      },
    ],
  },
}
