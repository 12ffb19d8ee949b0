// Burn-rate alerts of the deployment-success SLO (parameters: _config.slo, recorded by
// mixin/rules/slo.libsonnet; period 30d). Rendered into alerts/codedeploy.alerts.yml.
//
// Multi-window, multi-burn-rate in the shape of the SRE workbook, moved to windows that
// hold deployments (page 6h/1h at 6x, tickets 1d/6h at 3x and 3d/1d at 1x), plus:
//   - an absolute floor on failed deployments in the long window (page 3, ticket 2), so
//     that one failure at low volume never burns "1000x";
//   - a short window that only resets: it stops the alert when the latest deployments
//     succeeded, and keeps it when there was no deployment (no NaN gap, no reset without
//     evidence).
{
  local where = '{{ $labels.application }}/{{ $labels.deployment_group }} (account {{ $labels.account_id }}, {{ $labels.region }})',

  // Long window burning at >= factor, confirmed by the short window (or an empty one),
  // with at least `minFailures` failed deployments in the long window.
  local burning(long, short, factor, minFailures) = |||
    deployment_group:codedeploy_slo_burn_rate:ratio%(long)s >= %(factor)d
    and (
      deployment_group:codedeploy_slo_burn_rate:ratio%(short)s >= %(factor)d
      or deployment_group:codedeploy_deployments:increase%(short)s < 0.5
    )
    and deployment_group:codedeploy_deployments_unsuccessful:increase%(long)s > scalar(codedeploy_slo:%(minFailures)s_min_failures:count) - 0.5
  ||| % { long: long, short: short, factor: factor, minFailures: minFailures },
  local parenthesised(expr) = '(\n' + std.join('', ['  ' + line + '\n' for line in std.split(std.stripChars(expr, '\n'), '\n')]) + ')\n',

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'codedeploy-slo',
        renderTo:: 'codedeploy.alerts.yml',
        rules: [
          {
            alert: 'CodeDeployErrorBudgetBurn',
            expr: burning('6h', '1h', 6, 'page'),
            labels: { severity: 'critical' },
            annotations: {
              summary: 'Deployments are burning the error budget fast.',
              description: where + ': failed and stopped deployments burn the deployment-success error budget {{ $value | humanize }}x as fast as sustainable over the last 6 hours.',
            },
          },
          {
            alert: 'CodeDeployErrorBudgetBurn',
            expr: parenthesised(burning('1d', '6h', 3, 'ticket')) + 'or\n' + parenthesised(burning('3d', '1d', 1, 'ticket')),
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Deployments are burning the error budget.',
              description: where + ': failed and stopped deployments burn the deployment-success error budget {{ $value | humanize }}x as fast as sustainable (over 1 or 3 days).',
            },
          },
          {
            alert: 'CodeDeployErrorBudgetExhausted',
            expr: |||
              deployment_group:codedeploy_slo_error_budget_remaining:ratio30d <= 0
            |||,
            'for': '15m',
            labels: { severity: 'info' },
            annotations: {
              summary: 'The deployment error budget of the last 30 days is spent.',
              description: where + ': {{ $value | humanizePercentage }} of the 30-day deployment-success error budget is left.',
            },
          },
        ],
      },
    ],
  },
}
