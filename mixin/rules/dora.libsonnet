// DORA keys and tiers per application. Rendered into alerts/codedeploy.rules.yml.
{
  local config = $._config,

  prometheusRules+:: {
    groups+: [
      {
        // Deployment frequency and change failure rate come from the exporter's exact
        // rolling-window gauges (label window = 1d, 7d, 30d), which apply the SPEC's
        // change-deployment rules (creators, rollbacks) that counters cannot express.
        // Recovery time and lead time are medians over 30d of the classic histograms,
        // because quantiles of different groups cannot be combined into an
        // application's quantile.
        name: 'codedeploy-dora',
        interval: '1m',
        renderTo:: 'codedeploy.rules.yml',
        rules: [
          {
            record: 'deployment_group:codedeploy_dora_deployment_frequency:per_day',
            expr: |||
              max without (%(replicaLabels)s) (codedeploy_dora_deployments{window="1d"})
              or max without (%(replicaLabels)s) (codedeploy_dora_deployments{window="7d"}) / 7
              or max without (%(replicaLabels)s) (codedeploy_dora_deployments{window="30d"}) / 30
            ||| % config,
          },
          {
            record: 'application:codedeploy_dora_deployments:sum',
            expr: 'sum without (deployment_group) (max without (%(replicaLabels)s) (codedeploy_dora_deployments))' % config,
          },
          {
            record: 'application:codedeploy_dora_deployment_frequency:per_day',
            expr: |||
              application:codedeploy_dora_deployments:sum{window="1d"} / 1
              or application:codedeploy_dora_deployments:sum{window="7d"} / 7
              or application:codedeploy_dora_deployments:sum{window="30d"} / 30
            |||,
          },
          // ratio * deployments gives each group's change failures back; groups without
          // a deployment in the window (ratio NaN) are left out by ">= 0".
          {
            record: 'application:codedeploy_dora_change_failures:sum',
            expr: |||
              sum without (deployment_group) (
                max without (%(replicaLabels)s) (codedeploy_dora_change_failure_ratio >= 0)
                * max without (%(replicaLabels)s) (codedeploy_dora_deployments)
              )
            ||| % config,
          },
          {
            record: 'application:codedeploy_dora_change_failure:ratio',
            expr: 'application:codedeploy_dora_change_failures:sum / (application:codedeploy_dora_deployments:sum > 0)',
          },
        ] + [
          {
            record: 'application:codedeploy_%s_seconds:median30d' % histogram,
            expr: |||
              histogram_quantile(0.5,
                sum without (deployment_group) (
                  max without (%(replicas)s) (increase(codedeploy_%(histogram)s_seconds_bucket[30d]))
                )
              )
            ||| % { replicas: config.replicaLabels, histogram: histogram },
          }
          for histogram in ['time_to_restore', 'lead_time']
        ],
      },
      {
        // DORA performance tiers per application over 30d: 4 = elite, 3 = high,
        // 2 = medium, 1 = low; NaN when the median is undefined (no recovery, no commit
        // time), so that an unknown key is never shown as "low" ("+ 0 * median" carries
        // the NaN through), and no series when the application had no deployment. The
        // label dora_report selects the report year whose cut-offs apply. The reports
        // describe clusters, not thresholds, so these are approximations; the 2024
        // report is not offered because its change failure rates are not ordered by
        // tier. The cut-offs are in `tiers` below and in docs/alerts.md.
        name: 'codedeploy-dora-tiers',
        interval: '1m',
        renderTo:: 'codedeploy.rules.yml',
        local tiers = {
          deployment_frequency: {
            series: 'max without (window) (application:codedeploy_dora_deployment_frequency:per_day{window="30d"})',
            comparison: '>=',
            // per day: >= 1/6 months, >= 1/month, >= 1/day; 2023: >= 1/month, >= 1/week, >= 1/day
            cutoffs: { '2021': ['0.0055', '0.0333', '1'], '2023': ['0.0333', '0.1428', '1'] },
          },
          change_failure: {
            series: 'max without (window) (application:codedeploy_dora_change_failure:ratio{window="30d"})',
            comparison: '<=',
            cutoffs: { '2021': ['0.30', '0.20', '0.15'], '2023': ['0.15', '0.10', '0.05'] },
          },
          time_to_restore: {
            series: 'application:codedeploy_time_to_restore_seconds:median30d',
            comparison: '<',
            undefinedWhenNaN: true,
            // < 1 week, < 1 day, < 1 hour in both years
            cutoffs: { '2021': ['604800', '86400', '3600'], '2023': ['604800', '86400', '3600'] },
          },
          lead_time: {
            series: 'application:codedeploy_lead_time_seconds:median30d',
            comparison: '<',
            undefinedWhenNaN: true,
            // 2021: < 6 months, < 1 week, < 1 hour; 2023: < 1 month, < 1 week, < 1 day
            cutoffs: { '2021': ['15552000', '604800', '3600'], '2023': ['2592000', '604800', '86400'] },
          },
        },
        local tierExpr(tier, cutoffs) =
          local steps = std.join('', [
            '+ (%s %s bool %s)\n' % [tier.series, tier.comparison, cutoff]
            for cutoff in cutoffs
          ]);
          if std.objectHas(tier, 'undefinedWhenNaN') then
            '(\n  1\n%s)\n+ 0 * %s\n' % [std.join('', ['  ' + line + '\n' for line in std.split(std.stripChars(steps, '\n'), '\n')]), tier.series]
          else
            '1\n' + steps,
        rules: [
          {
            record: 'application:codedeploy_dora_%s:tier' % key,
            labels: { dora_report: report },
            expr: tierExpr(tiers[key], tiers[key].cutoffs[report]),
          }
          for key in ['deployment_frequency', 'change_failure', 'time_to_restore', 'lead_time']
          for report in ['2021', '2023']
        ],
      },
    ],
  },
}
