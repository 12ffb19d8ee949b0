// DORA keys and tiers per production deployment group and application. Rendered into
// alerts/codedeploy.rules.yml.
{
  local config = $._config,

  prometheusRules+:: {
    groups+: [
      {
        // DORA keys of production deployment groups only (_config.productionSelector over
        // codedeploy_deployment_group_info), carrying the group's team label so that they
        // can be cut by team. A group the exporter gives no info series for (an exporter
        // older than that metric) counts as production, as the exporter's own default
        // --dora.production-groups=.* would have it.
        //
        // Everything comes from the exporter's exact rolling-window gauges (label
        // window = 1d, 7d, 30d), which apply the SPEC's change-deployment rules
        // (creators, rollbacks) that counters cannot express and hold the whole window
        // from the first scrape. Quantiles of different groups cannot be combined into an
        // application's: an application's median recovery and lead time is the slowest of
        // its production groups' exact medians. Two replicas may briefly disagree on a
        // group's team (each refreshes tags on its own clock): topk keeps one, so that
        // the join never has two matches.
        name: 'codedeploy-dora',
        interval: '1m',
        renderTo:: 'codedeploy.rules.yml',
        local productionOnly(family) = {
          record: 'deployment_group:%s:production' % family,
          expr: |||
            max without (%(replicas)s) (%(family)s)
              * on (account_id, region, application, deployment_group) group_left (%(team)s)
              topk by (account_id, region, application, deployment_group) (1,
                max by (account_id, region, application, deployment_group, %(team)s) (codedeploy_deployment_group_info{%(production)s})
              )
            or
            max without (%(replicas)s) (%(family)s)
              unless on (account_id, region, application, deployment_group) codedeploy_deployment_group_info
          ||| % { replicas: config.replicaLabels, family: family, team: config.teamLabel, production: config.productionSelector },
        },
        local slowestMedian30d(family) = {
          record: 'application:%s:median30d' % std.strReplace(family, 'codedeploy_dora_', 'codedeploy_'),
          expr: 'max without (deployment_group, window, quantile) (deployment_group:%s:production{window="30d", quantile="0.5"})' % family,
        },
        rules: [
          productionOnly('codedeploy_dora_deployments'),
          productionOnly('codedeploy_dora_change_failure_ratio'),
          productionOnly('codedeploy_dora_time_to_restore_seconds'),
          productionOnly('codedeploy_dora_lead_time_seconds'),
          {
            record: 'deployment_group:codedeploy_dora_deployment_frequency:per_day',
            expr: |||
              deployment_group:codedeploy_dora_deployments:production{window="1d"}
              or deployment_group:codedeploy_dora_deployments:production{window="7d"} / 7
              or deployment_group:codedeploy_dora_deployments:production{window="30d"} / 30
            |||,
          },
          {
            record: 'application:codedeploy_dora_deployments:sum',
            expr: 'sum without (deployment_group) (deployment_group:codedeploy_dora_deployments:production)',
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
                (deployment_group:codedeploy_dora_change_failure_ratio:production >= 0)
                * deployment_group:codedeploy_dora_deployments:production
              )
            |||,
          },
          {
            record: 'application:codedeploy_dora_change_failure:ratio',
            expr: 'application:codedeploy_dora_change_failures:sum / (application:codedeploy_dora_deployments:sum > 0)',
          },
          slowestMedian30d('codedeploy_dora_time_to_restore_seconds'),
          slowestMedian30d('codedeploy_dora_lead_time_seconds'),
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
