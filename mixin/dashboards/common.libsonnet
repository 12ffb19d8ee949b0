// What the three CodeDeploy dashboards share: the data source and deployment-group
// variables, the deployment annotations, the link menu and the dashboard's frame.
// Every function takes the mixin's _config.
{
  prometheus:: { type: 'prometheus', uid: '${datasource}' },

  // A multi-value query variable with All (`.*`, which also matches an empty label),
  // refreshed on time range change, listing the values of `label` in `metric` narrowed
  // by the variables before it.
  queryVariable(name, label, metric, narrowedBy=[]):: {
    local selector = std.join(', ', ['%s=~"$%s"' % [v, v] for v in narrowedBy]),
    local query = 'label_values(%s%s, %s)' % [metric, if selector == '' then '' else '{%s}' % selector, name],
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
    allValue: '.*',
    options: [],
  },

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

  // Data source, then account, region, application and deployment group, each narrowed
  // by the ones before it.
  variables(config):: [
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
    $.queryVariable(label, groupVariableLabels[label], 'codedeploy_deployments_in_progress', $.groupLabels[:std.find(label, $.groupLabels)[0]])
    for label in $.groupLabels
  ],

  // The matchers of the deployment-group variables, for a selector.
  groupMatchers:: std.join(', ', ['%s=~"$%s"' % [label, label] for label in $.groupLabels]),

  annotations(config):: {
    local annotation(name, color, expr, title, tagKeys) = {
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
      useValueForTime: false,
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
      annotation(
        'Deployments succeeded',
        'green',
        'max without (%s) (changes(codedeploy_last_deployment_timestamp_seconds{%s, status="succeeded"}[$__interval])) > 0' % [config.replicaLabels, $.groupMatchers],
        'Deployed {{application}}/{{deployment_group}}',
        'application,deployment_group,status',
      ),
      annotation(
        'Deployments failed',
        'red',
        'max without (%s) (changes(codedeploy_last_deployment_timestamp_seconds{%s, status=~"failed|stopped"}[$__interval])) > 0' % [config.replicaLabels, $.groupMatchers],
        'Deployment {{status}}: {{application}}/{{deployment_group}}',
        'application,deployment_group,status',
      ),
      annotation(
        'Rollbacks',
        'orange',
        'sum without (status) (max without (%s) (increase(codedeploy_rollbacks_total{%s}[$__rate_interval]))) > 0' % [config.replicaLabels, $.groupMatchers],
        'Rollback: {{application}}/{{deployment_group}}',
        'application,deployment_group',
      ),
      annotation(
        'CodeDeploy alerts',
        'purple',
        'ALERTS{alertname=~"CodeDeploy.*", alertstate="firing"}',
        '{{alertname}} ({{severity}})',
        'alertname,severity',
      ) + { enable: false, textFormat: '{{application}}/{{deployment_group}}' },
    ],
  },

  // A provisioned dashboard: fixed uid, no id, not editable, the shared variables first.
  dashboard(config, uid, title, description, tags, time, extraVariables, panels):: {
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
    templating: { list: $.variables(config) + extraVariables },
    panels: panels,
  },
}
