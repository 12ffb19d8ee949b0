// What the three CodeDeploy dashboards share: the data source and deployment-group
// variables, the deployment annotations, the link menu and the dashboard's frame.
// The functions that depend on the configuration take the mixin's _config.
{
  prometheus:: { type: 'prometheus', uid: '${datasource}' },

  // A multi-value query variable with All, refreshed on time range change, listing the
  // values of `label` in `metric{selector}`. With `allValue` All sends that regex (`.*`
  // also matches an empty label); without, the listed values, so that the narrowing of
  // the variables before it reaches every query.
  queryVariable(name, label, metric, selector='', allValue='.*', labelName=name):: {
    local query = 'label_values(%s%s, %s)' % [metric, if selector == '' then '' else '{%s}' % selector, labelName],
    name: name,
    label: label,
    type: 'query',
    datasource: $.prometheus,
    query: { query: query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    definition: query,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    hide: 0,
    refresh: 2,
    regex: '',
    sort: 1,
    multi: true,
    includeAll: true,
    options: [],
  } + (if allValue == null then {} else { allValue: allValue }),

  // `label=~"$variable"` for each (variable, label) pair, as a selector's matchers.
  matchers(pairs):: std.join(', ', ['%s=~"$%s"' % [pair[1], pair[0]] for pair in pairs]),

  // A single-value variable of fixed values, the first selected.
  customVariable(name, label, values):: {
    local option(value) = { selected: value == values[0], text: value, value: value },
    name: name,
    label: label,
    type: 'custom',
    query: std.join(',', values),
    current: option(values[0]),
    hide: 0,
    multi: false,
    includeAll: false,
    options: [option(value) for value in values],
  },

  groupLabels:: ['account_id', 'region', 'application', 'deployment_group'],
  local groupVariableLabels = { account_id: 'Account', region: 'Region', application: 'Application', deployment_group: 'Deployment group' },

  // The tag variables a dashboard may offer before the group variables, as
  // [variable, label name] pairs from _config.
  environmentAndTeam(config):: [['environment', config.environmentLabel], ['team', config.teamLabel]],
  team(config):: [['team', config.teamLabel]],

  // Data source, the tag variables (`tags`: environment, team), then account, region,
  // application and deployment group, each narrowed by the ones before it. They list the
  // known groups (deployment_group:codedeploy_deployment_group_info:max); application and
  // deployment group send the listed values for All, so that choosing an environment or a
  // team narrows every query through them. A group without the tag has an empty label,
  // which All matches.
  variables(config, tags):: [
    {
      name: 'datasource',
      label: 'Data source',
      type: 'datasource',
      query: 'prometheus',
      current: {},
      hide: 0,
      refresh: 1,
      regex: '',
      includeAll: false,
      multi: false,
      options: [],
    },
  ] + [
    $.queryVariable(tags[i][0], { environment: 'Environment', team: 'Team' }[tags[i][0]], 'deployment_group:codedeploy_deployment_group_info:max', $.matchers(tags[:i]), labelName=tags[i][1])
    for i in std.range(0, std.length(tags) - 1)
  ] + [
    local position = std.find(label, $.groupLabels)[0];
    $.queryVariable(
      label,
      groupVariableLabels[label],
      'deployment_group:codedeploy_deployment_group_info:max',
      $.matchers(tags + [[previous, previous] for previous in $.groupLabels[:position]]),
      allValue=if position < 2 then '.*' else null,
    )
    for label in $.groupLabels
  ],

  // The matchers of the deployment-group variables, for a selector.
  groupMatchers:: $.matchers([[label, label] for label in $.groupLabels]),

  // Per-group increase over the time range of a counter whose label values appear only
  // when they happen (error codes, hooks, alarms): increase() cannot see a series' first
  // value, so a series born inside the range counts with its whole value, on targets
  // that were already showing their deployment series at the range's start (so that
  // history is not new to a fresh Prometheus; docs/alerts.md, "First values").
  // `tracked` selects codedeploy_exporter_deployments_tracked (the exporter instances).
  increaseInRange(config, metric, selector, tracked='')::
    'max without (%(replicas)s) (((%(series)s unless %(series)s offset $__range) and on (job, instance) (codedeploy_exporter_deployments_tracked%(tracked)s offset $__range)) or increase(%(series)s[$__range]))'
    % { replicas: config.replicaLabels, series: '%s{%s}' % [metric, selector], tracked: tracked },

  // An instant query of the panel's data source.
  instant(expr, legend='__auto', format='time_series'):: {
    refId: 'A',
    datasource: $.prometheus,
    expr: expr,
    legendFormat: legend,
    range: false,
    instant: true,
    format: format,
  },

  // A horizontal bar gauge of one value per series.
  barGauge(id, title, description, unit, expr, legend, gridPos):: {
    type: 'bargauge',
    title: title,
    description: description,
    datasource: $.prometheus,
    fieldConfig: {
      defaults: {
        unit: unit,
        color: { mode: 'thresholds' },
        thresholds: { mode: 'absolute', steps: [{ color: 'blue', value: null }] },
        min: 0,
      },
      overrides: [],
    },
    options: {
      reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
      orientation: 'horizontal',
      displayMode: 'gradient',
      showUnfilled: true,
      valueMode: 'color',
      namePlacement: 'auto',
    },
    targets: [$.instant(expr, legend)],
    id: id,
    gridPos: gridPos,
  },

  // A table of one row per series, rows whose value is 0 hidden.
  nonZeroTable(id, title, description, unit, expr, gridPos):: {
    type: 'table',
    title: title,
    description: description,
    datasource: $.prometheus,
    fieldConfig: { defaults: { unit: unit }, overrides: [] },
    options: {
      showHeader: true,
      cellHeight: 'sm',
      footer: { show: false, reducer: ['sum'], fields: '' },
      sortBy: [{ displayName: 'Value', desc: true }],
    },
    targets: [$.instant(expr, format='table')],
    transformations: [
      { id: 'organize', options: { excludeByName: { Time: true, job: true, __name__: true } } },
      {
        id: 'filterByValue',
        options: {
          type: 'exclude',
          match: 'all',
          filters: [{ fieldName: 'Value', config: { id: 'lowerOrEqual', options: { value: 0 } } }],
        },
      },
    ],
    id: id,
    gridPos: gridPos,
  },

  annotations(config):: {
    local annotation(name, color, expr, title, tagKeys, atValue=true) = {
      name: name,
      datasource: $.prometheus,
      enable: true,
      hide: false,
      iconColor: color,
      expr: expr,
      step: '',
      titleFormat: title,
      textFormat: 'account {{account_id}}, {{region}}',
      tagKeys: tagKeys,
      useValueForTime: atValue,
    },
    list: [
      {
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      },
      // At the exact completion time: the gauge holds the latest completion per status,
      // and Grafana places each distinct value (milliseconds) on the time axis.
      annotation(
        'Deployments succeeded',
        'green',
        'max without (%s) (codedeploy_last_deployment_timestamp_seconds{%s, status="succeeded"}) * 1000' % [config.replicaLabels, $.groupMatchers],
        'Deployed {{application}}/{{deployment_group}}',
        'application,deployment_group,status',
      ),
      annotation(
        'Deployments failed',
        'red',
        'max without (%s) (codedeploy_last_deployment_timestamp_seconds{%s, status=~"failed|stopped"}) * 1000' % [config.replicaLabels, $.groupMatchers],
        'Deployment {{status}}: {{application}}/{{deployment_group}}',
        'application,deployment_group,status',
      ),
      annotation(
        'Rollbacks',
        'orange',
        'max without (%s) (codedeploy_last_rollback_timestamp_seconds{%s}) * 1000' % [config.replicaLabels, $.groupMatchers],
        'Rollback {{status}}: {{application}}/{{deployment_group}}',
        'application,deployment_group,status',
      ),
      annotation(
        'CodeDeploy alerts',
        'purple',
        'ALERTS{alertname=~"CodeDeploy.*", alertstate="firing"}',
        '{{alertname}} ({{severity}})',
        'alertname,severity',
        atValue=false,
      ) + { enable: false, textFormat: '{{application}}/{{deployment_group}}' },
    ],
  },

  // A provisioned dashboard: fixed uid, no id, not editable, the shared variables first.
  dashboard(config, uid, title, description, tags, time, tagVariables, extraVariables, panels):: {
    id: null,
    uid: uid,
    title: title,
    description: description,
    tags: config.grafana.dashboardTags + tags,
    timezone: 'browser',
    editable: false,
    graphTooltip: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    schemaVersion: 39,
    version: 1,
    refresh: '1m',
    time: time,
    timepicker: { refresh_intervals: ['30s', '1m', '5m', '15m', '1h'] },
    links: [{
      title: 'CodeDeploy dashboards',
      type: 'dashboards',
      tags: config.grafana.dashboardTags,
      asDropdown: true,
      includeVars: true,
      keepTime: true,
      icon: 'external link',
      targetBlank: false,
      tooltip: '',
      url: '',
    }],
    annotations: $.annotations(config),
    templating: { list: $.variables(config, tagVariables) + extraVariables },
    panels: panels,
  },
}
