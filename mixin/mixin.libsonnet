// The codedeploy-exporter monitoring mixin: recording rules (`prometheusRules`),
// alerts (`prometheusAlerts`) and Grafana dashboards (`grafanaDashboards`), configured
// by `_config` (mixin/config.libsonnet). Import it and override `_config` (docs/alerts.md);
// scripts/render-mixin renders the defaults into alerts/ and dashboards/.
//
// Every rule group carries a hidden `renderTo` naming the file of alerts/ it is rendered
// into; kube-prometheus and other importers never see it.
local mixin =
  (import 'config.libsonnet')
  + (import 'rules/thresholds.libsonnet')
  + (import 'rules/slo.libsonnet')
  + (import 'rules/dora.libsonnet')
  + (import 'rules/groups.libsonnet')
  + (import 'alerts/deployments.libsonnet')
  + (import 'alerts/slo.libsonnet')
  + (import 'alerts/targets.libsonnet')
  + (import 'alerts/exporter.libsonnet')
  + (import 'dashboards/oncall.libsonnet')
  + (import 'dashboards/dora.libsonnet')
  + (import 'dashboards/debug.libsonnet')
  // After the dashboards: it adds its panels to the debug dashboard.
  + (import 'impact.libsonnet');

mixin + {
  // Every alert links to its section of the runbook, named after the alert.
  prometheusAlerts+:: {
    groups: [
      group {
        rules: [
          rule { annotations+: { runbook_url: $._config.runbookURLPattern % std.asciiLower(rule.alert) } }
          for rule in super.rules
        ],
      }
      for group in super.groups
    ],
  },
}
