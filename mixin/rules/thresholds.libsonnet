// Every number a user may want to change without editing an alert, as constant recording
// rules in their own file, alerts/codedeploy.thresholds.yml (the way Sloth and Pyrra
// keep SLO parameters apart). Each is a single label-less series the rules and alerts
// read with scalar(); nothing else repeats them. With jsonnet, set them in _config; without,
// edit that one rendered file. An alert whose threshold is not loaded compares with NaN
// and stays silent: load the file with the other two.
{
  local config = $._config,
  local constant(record, value) = { record: record, expr: 'vector(%g)' % value },

  prometheusRules+:: {
    groups+: [
      {
        // The deployment-success SLO, from _config.slo (docs/alerts.md, "The SLO").
        name: 'codedeploy-slo-parameters',
        renderTo:: 'codedeploy.thresholds.yml',
        rules: [
          constant('codedeploy_slo:objective:ratio', config.slo.objective),
          // 1 - objective: the fraction of deployments allowed to fail or be stopped.
          // Rounded so that 1 - 0.95 is exactly 0.05 and thresholds such as "3 failures
          // out of 10 is a 6x burn" hold without floating-point noise.
          { record: 'codedeploy_slo:error_budget:ratio', expr: 'round(1 - codedeploy_slo:objective:ratio, 0.000001)' },
          constant('codedeploy_slo:period_deployments_floor:count', config.slo.periodDeploymentsFloor),
          constant('codedeploy_slo:page_min_failures:count', config.slo.pageMinFailures),
          constant('codedeploy_slo:ticket_min_failures:count', config.slo.ticketMinFailures),
        ],
      },
      {
        // The targets of the alerts of mixin/alerts/targets.libsonnet, from
        // _config.targets, each with the floor that keeps it quiet at low volume.
        name: 'codedeploy-target-parameters',
        renderTo:: 'codedeploy.thresholds.yml',
        rules: [
          constant('codedeploy_target:deployment_duration_mean:max_seconds', config.targets.meanDeploymentDurationSeconds),
          constant('codedeploy_target:deployment_duration_min_deployments:count', config.targets.meanDeploymentDurationMinDeployments),
          constant('codedeploy_target:rollback_duration_mean:max_seconds', config.targets.meanTimeToRollbackSeconds),
          constant('codedeploy_target:rollback_ratio30d:max', config.targets.rollbackRatio30d),
          constant('codedeploy_target:rollback_min_rollbacks30d:count', config.targets.rollbackRatioMinRollbacks),
          constant('codedeploy_target:healthy_targets:min_ratio', config.targets.healthyTargetsRatio),
          constant('codedeploy_target:healthy_targets_min_failed:count', config.targets.healthyTargetsMinFailed),
          constant('codedeploy_target:success_ratio30d:min', config.targets.successRatio30d),
          constant('codedeploy_target:success_min_failures30d:count', config.targets.successRatioMinFailures),
        ],
      },
    ],
  },
}
