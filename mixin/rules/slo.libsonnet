// Recording rules of the deployment-success SLO: its parameters, the SLIs per deployment
// group and per application over 1h, 6h, 1d (group codedeploy-sli-fast) and 3d, 30d
// (codedeploy-sli-slow), burn rates and the error budget left. Rendered into
// alerts/codedeploy.rules.yml.
//
// Naming follows level:metric:operation.
//   deployment_group:  keeps every label except the replica labels, so one series per
//                      (account_id, region, application, deployment_group) and job.
//   application:       as above, without `deployment_group`.
//   codedeploy_slo:    SLO parameters (no labels), from _config.slo, in the thresholds file
//                      (mixin/rules/thresholds.libsonnet).
//
// High availability: two identical replicas can be scraped by the same Prometheus. Every
// rule first takes `max without (<replica labels>)` of the per-replica values, then sums
// across groups. A replica's view of a counter is never larger than the truth, so the
// max is the most complete view, and it never double-counts.
//
// Low volume: a deployment group sees a few deployments a day, so every window can be
// empty. Error ratios are 0 (not NaN) when a window holds no deployment, so the alerts
// and dashboards built on them have no NaN gaps.
//
// The 30d rules read the exporter's exact window gauges, so they need no 30 days of
// TSDB retention. The group reading 3 days of samples runs every minute; on a large
// fleet (thousands of groups), raise that to 5m: its figures move slowly anyway.
{
  local config = $._config,
  local outcomeLabels = 'compute_platform, deployment_type, creator, deployment_config, status',

  // The SLI of one window W for both levels: finished and unsuccessful deployments, their
  // ratio (0 when W holds none) and, when `burnRate`, the burn rate of the error budget.
  //
  // The windows of the burn-rate alerts (1h to 3d) count what Prometheus saw happen:
  // they page on what is new. The SLO period (30d) is the exporter's exact window
  // (codedeploy_sli_deployments and codedeploy_sli_success_ratio): Prometheus only has
  // the history it scraped, the exporter its 30 days from the first scrape on (a new
  // Prometheus, a new replica, a backfill), so the budget left is right at once.
  local sliWindow(window, burnRate) =
    local exact(gauge) = 'max without (%s, window) (%s{window="%s"})' % [config.replicaLabels, gauge, window];
    local counted = if window == '30d' then {
      all: exact('codedeploy_sli_deployments'),
      unsuccessful: |||
        round(
          %(all)s
          * (1 - (%(ratio)s >= 0))
        )
        or %(all)s * 0
      ||| % { all: exact('codedeploy_sli_deployments'), ratio: exact('codedeploy_sli_success_ratio') },
    } else {
      local increase(selector) = |||
        sum without (%(outcomes)s) (
          max without (%(replicas)s) (increase(codedeploy_deployments_total%(selector)s[%(window)s]))
        )
      ||| % { outcomes: outcomeLabels, replicas: config.replicaLabels, selector: selector, window: window },
      all: increase(''),
      unsuccessful: increase('{status=~"failed|stopped"}'),
    };
    local ratio(level) = {
      record: '%s:codedeploy_sli_error:ratio%s' % [level, window],
      expr: |||
        %(level)s:codedeploy_deployments_unsuccessful:increase%(window)s
          / (%(level)s:codedeploy_deployments:increase%(window)s > 0)
        or %(level)s:codedeploy_deployments:increase%(window)s * 0
      ||| % { level: level, window: window },
    };
    [
      { record: 'deployment_group:codedeploy_deployments:increase' + window, expr: counted.all },
      { record: 'deployment_group:codedeploy_deployments_unsuccessful:increase' + window, expr: counted.unsuccessful },
      ratio('deployment_group'),
    ]
    + (if burnRate then [{
         record: 'deployment_group:codedeploy_slo_burn_rate:ratio' + window,
         expr: 'round(deployment_group:codedeploy_sli_error:ratio%s / scalar(codedeploy_slo:error_budget:ratio), 0.001)' % window,
       }] else [])
    + [
      {
        record: 'application:codedeploy_deployments:increase' + window,
        expr: 'sum without (deployment_group) (deployment_group:codedeploy_deployments:increase%s)' % window,
      },
      {
        record: 'application:codedeploy_deployments_unsuccessful:increase' + window,
        expr: 'sum without (deployment_group) (deployment_group:codedeploy_deployments_unsuccessful:increase%s)' % window,
      },
      ratio('application'),
    ],

  // Fraction of the 30d error budget left: 1 = untouched, 0 = spent, < 0 = overspent.
  // The budget is error_budget * max(deployments in 30d, floor) failed deployments.
  local budgetRemaining(level) = {
    record: level + ':codedeploy_slo_error_budget_remaining:ratio30d',
    expr: |||
      1 - %(level)s:codedeploy_deployments_unsuccessful:increase30d
        / (
          scalar(codedeploy_slo:error_budget:ratio)
          * clamp_min(%(level)s:codedeploy_deployments:increase30d, scalar(codedeploy_slo:period_deployments_floor:count))
        )
    ||| % { level: level },
  },

  prometheusRules+:: {
    groups+: [
      {
        name: 'codedeploy-sli-fast',
        renderTo:: 'codedeploy.rules.yml',
        rules: sliWindow('1h', true) + sliWindow('6h', true) + sliWindow('1d', true) + [
          // Failed lifecycle events per hook. A (hook, script error code) series is born
          // at its first failure, with value >= 1, and increase() cannot see a series'
          // first value. A series born inside the window counts its whole value instead,
          // but only on targets that were already showing their deployment series 6h ago
          // (codedeploy_exporter_deployments_tracked is left out with them), so that old
          // failures are not reported as new after Prometheus or a replica first starts,
          // nor 6h after a new store's backfill: its series are held back until the
          // history is in while the target is up, and are then born with that history.
          // A group whose hooks never failed gets one 0 series without a lifecycle_event
          // label, so the rule has a value for every known group.
          {
            record: 'deployment_group:codedeploy_lifecycle_event_failures:increase6h',
            expr: |||
              sum without (error_code) (
                max without (%(replicaLabels)s) (
                  (
                    (codedeploy_lifecycle_event_failures_total unless codedeploy_lifecycle_event_failures_total offset 6h)
                    and on (job, instance) (codedeploy_exporter_deployments_tracked offset 6h)
                  )
                  or increase(codedeploy_lifecycle_event_failures_total[6h])
                )
              )
              or on (job, account_id, region, application, deployment_group)
              max without (%(replicaLabels)s) (codedeploy_deployments_in_progress * 0)
            ||| % config,
          },
        ],
      },
      {
        name: 'codedeploy-sli-slow',
        interval: '1m',
        renderTo:: 'codedeploy.rules.yml',
        // 30d is the SLO period: no burn rate over it, the budget left instead.
        rules: sliWindow('3d', true) + sliWindow('30d', false)
               + [budgetRemaining('deployment_group'), budgetRemaining('application')],
      },
    ],
  },
}
