// Post-deployment impact (M4, M6): did the latest deployment of a group raise its
// application's error ratio or latency? CodeDeploy cannot see the application's metrics;
// Prometheus can, once `_config.impact.mappings` says which of them belong to which
// deployment group (docs/alerts.md, "Post-deployment impact").
//
// PromQL cannot look back to a time it computes (the deployment's start), so the rules
// keep the baseline themselves:
//
//   quiet       no deployment of the group in progress, and its latest one finished at
//               least `afterWindow` ago: the figures are recorded as the baseline
//               (`…_quiet`), every evaluation;
//   after       no deployment in progress, the latest one finished between `rateWindow`
//               and `afterWindow` ago, so the figures' rate window lies wholly after it:
//               the figures are recorded as `…_after`, the latest quiet value (the rate
//               window that ended before the deployment started, read back with
//               last_over_time over `baselineLookback`) as `…_baseline`, and their ratio.
//
// A group that deploys more often than every `afterWindow` keeps the baseline of its last
// quiet moment (as long as it is within `baselineLookback`); one never quiet within
// `baselineLookback` has no baseline and raises no impact alert.
//
// Each mapping renders its own rule group (codedeploy-impact-<name>, into
// alerts/codedeploy.rules.yml) and its own two alerts (into alerts/codedeploy.alerts.yml),
// so that a mapping may use its own windows. Every series carries `impact_mapping`.
local common = import 'dashboards/common.libsonnet';
{
  local config = $._config,
  local impact = config.impact,
  local replicas = config.replicaLabels,
  local group = 'account_id, region, application, deployment_group',

  // '90s', '15m', '6h' → seconds, for comparing with ages.
  local seconds(duration) =
    local units = { s: 1, m: 60, h: 3600, d: 86400 };
    local unit = duration[std.length(duration) - 1];
    assert std.objectHas(units, unit) : 'impact: duration %s must end in s, m, h or d' % duration;
    std.parseInt(duration[:std.length(duration) - 1]) * units[unit],

  // A mapping with the defaults it does not override, and its expressions with
  // `%(rateWindow)s` filled in.
  local settle(mapping) =
    local m = impact.defaults + mapping;
    m {
      requestRate: mapping.requestRate % m,
      errorRatio: mapping.errorRatio % m,
      latencyP95: mapping.latencyP95 % m,
    },

  // The group's series of a deployment group (labels: the group's, `job` and your target
  // labels), with the mapping's join labels: from the deployment series themselves, or
  // (`viaGroupInfo`) copied from the group's tags on codedeploy_deployment_group_info.
  local groups(m) =
    local one = '(0 * max without (%s) (codedeploy_deployments_in_progress) + 1)' % replicas;
    if m.viaGroupInfo then
      local tagged = std.join(', ', ['%s!=""' % label for label in m.joinLabels]);
      |||
        (
          %(one)s
            * on (%(group)s) group_left (%(labels)s)
          max without (%(replicas)s) (codedeploy_deployment_group_info{%(tagged)s})
        )
      ||| % { one: one, group: group, labels: std.join(', ', m.joinLabels), replicas: replicas, tagged: tagged }
    else one,

  // The mapping's expression, one series per deployment group it matches.
  local joined(m, expr) = |||
    (
      %(expr)s
    )
      * on (%(labels)s) group_right ()
    %(groups)s
  ||| % { expr: std.rstripChars(expr, '\n'), labels: std.join(', ', m.joinLabels), groups: std.rstripChars(groups(m), '\n') },

  local deploying = 'max without (%s) (codedeploy_deployments_in_progress) > 0' % replicas,
  local sinceEnd = 'time() - max without (%s) (codedeploy_last_deployment_end_timestamp_seconds > 0)' % replicas,
  local selector(m) = '{impact_mapping="%s"}' % m.name,

  local after(m, series) = |||
    %(series)s%(selector)s
      unless on (%(group)s) (%(deploying)s)
      and on (%(group)s) (%(sinceEnd)s >= %(from)d < %(to)d)
  ||| % { series: series, selector: selector(m), group: group, deploying: deploying, sinceEnd: sinceEnd, from: seconds(m.rateWindow), to: seconds(m.afterWindow) },

  local quiet(m, series) = |||
    %(series)s%(selector)s
      unless on (%(group)s) (%(deploying)s)
      unless on (%(group)s) (%(sinceEnd)s < %(to)d)
  ||| % { series: series, selector: selector(m), group: group, deploying: deploying, sinceEnd: sinceEnd, to: seconds(m.afterWindow) },

  // The after, quiet, baseline and after-over-baseline series of one figure.
  local compared(m, figure) = [
    { record: figure + '_after', expr: after(m, figure) },
    { record: figure + '_quiet', expr: quiet(m, figure) },
    {
      record: figure + '_baseline',
      expr: |||
        last_over_time(%(figure)s_quiet%(selector)s[%(lookback)s])
          and on (%(group)s) %(figure)s_after%(selector)s
      ||| % { figure: figure, selector: selector(m), lookback: m.baselineLookback, group: group },
    },
    {
      record: figure + '_after_over_baseline',
      expr: '%(figure)s_after%(selector)s / %(figure)s_baseline%(selector)s' % { figure: figure, selector: selector(m) },
    },
  ],

  local recordingGroup(m) = {
    name: 'codedeploy-impact-' + m.name,
    renderTo:: 'codedeploy.rules.yml',
    rules: [
      rule { labels: { impact_mapping: m.name } }
      for rule in [
        { record: 'deployment_group:codedeploy_impact_requests:rate', expr: joined(m, m.requestRate) },
        { record: 'deployment_group:codedeploy_impact_error:ratio', expr: joined(m, m.errorRatio) },
        { record: 'deployment_group:codedeploy_impact_latency_p95:seconds', expr: joined(m, m.latencyP95) },
      ]
    ] + [
      { record: 'deployment_group:codedeploy_impact_requests:rate_after', expr: after(m, 'deployment_group:codedeploy_impact_requests:rate') },
    ]
    + compared(m, 'deployment_group:codedeploy_impact_error:ratio')
    + compared(m, 'deployment_group:codedeploy_impact_latency_p95:seconds'),
  },

  local where = '{{ $labels.application }}/{{ $labels.deployment_group }} (account {{ $labels.account_id }}, {{ $labels.region }})',

  // The traffic guard: enough requests after the deployment for a ratio to mean something.
  local busy(m) = |||
    and on (%(group)s) deployment_group:codedeploy_impact_requests:rate_after%(selector)s >= %(min)g
  ||| % { group: group, selector: selector(m), min: m.minRequestsPerSecond },

  local alerts(m) = [
    {
      alert: 'CodeDeployPostDeployErrorRateRegression',
      expr: |||
        deployment_group:codedeploy_impact_error:ratio_after_over_baseline%(selector)s > %(factor)g
          and on (%(group)s) deployment_group:codedeploy_impact_error:ratio_after%(selector)s > %(floor)g
          %(busy)s
      ||| % { selector: selector(m), factor: m.errorRatioFactor, group: group, floor: m.minErrorRatio, busy: std.rstripChars(busy(m), '\n') },
      'for': m.alertFor,
      labels: { severity: m.errorSeverity },
      annotations: {
        summary: "A deployment raised its application's error ratio.",
        description: where + ': the error ratio since the latest deployment is {{ printf "%.1f" $value }}× the one before it (mapping {{ $labels.impact_mapping }}). Consider rolling back.',
      },
    },
    {
      alert: 'CodeDeployPostDeployLatencyRegression',
      expr: |||
        deployment_group:codedeploy_impact_latency_p95:seconds_after_over_baseline%(selector)s > %(factor)g
          %(busy)s
      ||| % { selector: selector(m), factor: m.latencyFactor, busy: std.rstripChars(busy(m), '\n') },
      'for': m.alertFor,
      labels: { severity: m.latencySeverity },
      annotations: {
        summary: "A deployment raised its application's p95 latency.",
        description: where + ': the p95 latency since the latest deployment is {{ printf "%.2f" $value }}× the one before it (mapping {{ $labels.impact_mapping }}). Consider rolling back.',
      },
    },
  ],

  local mappings = [settle(mapping) for mapping in impact.mappings],

  prometheusRules+:: {
    groups+: [recordingGroup(m) for m in mappings],
  },

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'codedeploy-impact',
        renderTo:: 'codedeploy.alerts.yml',
        rules: [
          // Informational: no route pages on it. It is what the example Alertmanager
          // configuration inhibits a group's deployment noise with
          // (alerts/alertmanager.example.yml).
          {
            alert: 'CodeDeployDeploymentInProgress',
            expr: 'max without (%s) (codedeploy_deployments_in_progress) > 0' % replicas,
            labels: { severity: 'info' },
            annotations: {
              summary: 'A CodeDeploy deployment is in progress.',
              description: where + ': {{ printf "%.0f" $value }} deployment(s) in progress.',
            },
          },
        ] + std.flattenArrays([alerts(m) for m in mappings]),
      },
    ],
  },

  // The debug dashboard's before/after comparison, below its last row.
  local matchers = common.groupMatchers,
  local panel(id, x, title, description, unit, targets) = {
    type: 'timeseries',
    title: title,
    description: description,
    datasource: common.prometheus,
    fieldConfig: {
      defaults: {
        unit: unit,
        custom: {
          drawStyle: 'line',
          lineWidth: 1,
          fillOpacity: 0,
          spanNulls: false,
          showPoints: 'auto',
          stacking: { mode: 'none', group: 'A' },
        },
        color: { mode: 'palette-classic' },
        min: 0,
      },
      overrides: [],
    },
    options: {
      legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] },
      tooltip: { mode: 'multi', sort: 'desc' },
    },
    targets: [
      {
        refId: std.char(std.codepoint('A') + i),
        datasource: common.prometheus,
        expr: targets[i][0],
        legendFormat: targets[i][1],
        range: true,
        instant: false,
        format: 'time_series',
      }
      for i in std.range(0, std.length(targets) - 1)
    ],
    id: id,
    gridPos: { h: 8, w: 8, x: x, y: 72 },
  },
  local compare(figure) = [
    ['%s_after{%s}' % [figure, matchers], 'after {{application}}/{{deployment_group}}'],
    ['%s_baseline{%s}' % [figure, matchers], 'before {{application}}/{{deployment_group}}'],
  ],

  grafanaDashboards+:: {
    'codedeploy-debug.json'+: {
      panels+: [
        {
          type: 'row',
          title: 'Post-deployment impact',
          collapsed: false,
          id: 22,
          gridPos: { h: 1, w: 24, x: 0, y: 71 },
          panels: [],
        },
        panel(
          23, 0,
          'Error ratio after vs before the latest deployment',
          "The application's error ratio in the after window of each group's latest deployment, next to the baseline: its last quiet value before the deployment (the impact mappings of the mixin's _config.impact; docs/alerts.md, Post-deployment impact). Empty outside after windows and for groups no mapping covers.",
          'percentunit',
          compare('deployment_group:codedeploy_impact_error:ratio'),
        ),
        panel(
          24, 8,
          'p95 latency after vs before the latest deployment',
          "The application's p95 latency in the after window of each group's latest deployment, next to its last quiet value before the deployment.",
          's',
          compare('deployment_group:codedeploy_impact_latency_p95:seconds'),
        ),
        panel(
          25, 16,
          'After / before',
          'Error ratio and p95 latency after the deployment over their baseline: the impact alerts fire above 2 (errors) and 1.15 (latency) with the default thresholds.',
          'none',
          [
            ['deployment_group:codedeploy_impact_error:ratio_after_over_baseline{%s}' % matchers, 'errors {{application}}/{{deployment_group}}'],
            ['deployment_group:codedeploy_impact_latency_p95:seconds_after_over_baseline{%s}' % matchers, 'p95 latency {{application}}/{{deployment_group}}'],
          ],
        ),
      ],
    },
  },
}
