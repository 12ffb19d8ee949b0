// The on-call dashboard: what is deploying, what failed and why, which alerts fire.
// Rendered into dashboards/codedeploy-oncall.json.
local common = import 'common.libsonnet';
{
  local config = $._config,
  grafanaDashboards+:: {
    'codedeploy-oncall.json': common.dashboard(
      config,
      uid="codedeploy-oncall",
      title="CodeDeploy / On-call",
      description="What is deploying now, what failed and why, and which CodeDeploy alerts are firing.",
      tags=["oncall"],
      time={ from: "now-6h", to: 'now' },
      tagVariables=common.environmentAndTeam(config),
      extraVariables=[],
      panels=[
        {
          type: "row",
          title: "Now",
          collapsed: false,
          id: 1,
          gridPos: {
            h: 1,
            w: 24,
            x: 0,
            y: 0,
          },
          panels: [],
        },
        {
          type: "stat",
          title: "Deployments in progress",
          description: "Deployments started and not finished, in the selection.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "short",
              color: {
                mode: "thresholds",
              },
              thresholds: {
                mode: "absolute",
                steps: [
                  {
                    color: "blue",
                    value: null,
                  },
                ],
              },
            },
            overrides: [],
          },
          options: {
            reduceOptions: {
              calcs: ["lastNotNull"],
              fields: "",
              values: false,
            },
            colorMode: "value",
            graphMode: "none",
            textMode: "auto",
            justifyMode: "auto",
            orientation: "auto",
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum(max without (%(replicaLabels)s) (codedeploy_deployments_in_progress{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}))" % config,
              legendFormat: "in progress",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 2,
          gridPos: {
            h: 4,
            w: 4,
            x: 0,
            y: 1,
          },
        },
        {
          type: "stat",
          title: "Oldest deployment in progress",
          description: "Age of the oldest deployment still in progress; \"none\" when nothing is in progress. The CodeDeployDeploymentStuck alert fires above 1 hour.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "s",
              decimals: 0,
              color: {
                mode: "thresholds",
              },
              thresholds: {
                mode: "absolute",
                steps: [
                  {
                    color: "green",
                    value: null,
                  },
                  {
                    color: "orange",
                    value: 1800,
                  },
                  {
                    color: "red",
                    value: 3600,
                  },
                ],
              },
              mappings: [
                {
                  type: "value",
                  options: {
                    "0": {
                      text: "none",
                      index: 0,
                    },
                  },
                },
              ],
            },
            overrides: [],
          },
          options: {
            reduceOptions: {
              calcs: ["lastNotNull"],
              fields: "",
              values: false,
            },
            colorMode: "value",
            graphMode: "none",
            textMode: "auto",
            justifyMode: "auto",
            orientation: "auto",
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "max(time() - max without (%(replicaLabels)s) (codedeploy_in_progress_oldest_start_timestamp_seconds{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"} > 0)) or vector(0)" % config,
              legendFormat: "age",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 3,
          gridPos: {
            h: 4,
            w: 4,
            x: 4,
            y: 1,
          },
        },
        {
          type: "stat",
          title: "Failed deployments",
          description: "Failed and stopped deployments in the dashboard's time range. Window: $__range, the dashboard's time range.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "short",
              decimals: 0,
              color: {
                mode: "thresholds",
              },
              thresholds: {
                mode: "absolute",
                steps: [
                  {
                    color: "green",
                    value: null,
                  },
                  {
                    color: "red",
                    value: 1,
                  },
                ],
              },
            },
            overrides: [],
          },
          options: {
            reduceOptions: {
              calcs: ["lastNotNull"],
              fields: "",
              values: false,
            },
            colorMode: "value",
            graphMode: "none",
            textMode: "auto",
            justifyMode: "auto",
            orientation: "auto",
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum(max without (%(replicaLabels)s) (increase(codedeploy_deployments_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", status=~\"failed|stopped\"}[$__range])))" % config,
              legendFormat: "failed",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 4,
          gridPos: {
            h: 4,
            w: 4,
            x: 8,
            y: 1,
          },
        },
        {
          type: "table",
          title: "Firing and pending CodeDeploy alerts",
          description: "Alerts of alerts/codedeploy.alerts.yml as Prometheus sees them (pending alerts wait for their `for:` duration). Exporter-health alerts carry no application label.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "none",
            },
            overrides: [
              {
                matcher: {
                  id: "byName",
                  options: "Value",
                },
                properties: [
                  {
                    id: "displayName",
                    value: "Active",
                  },
                ],
              },
            ],
          },
          options: {
            showHeader: true,
            cellHeight: "sm",
            footer: {
              show: false,
              reducer: ["sum"],
              fields: "",
            },
            sortBy: [
              {
                displayName: "Value",
                desc: true,
              },
            ],
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "ALERTS{alertname=~\"CodeDeploy.*\"}",
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
          ],
          transformations: [
            {
              id: "organize",
              options: {
                excludeByName: {
                  Time: true,
                  job: true,
                  __name__: true,
                },
              },
            },
          ],
          id: 5,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 1,
          },
        },
        {
          type: "row",
          title: "Deployments in progress",
          collapsed: false,
          id: 6,
          gridPos: {
            h: 1,
            w: 24,
            x: 0,
            y: 9,
          },
          panels: [],
        },
        {
          type: "timeseries",
          title: "Targets of deployments in progress by state",
          description: "Targets (instances, Lambda functions, ECS services) of the deployments in progress, by state, per group.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "short",
              decimals: 0,
              custom: {
                drawStyle: "line",
                lineWidth: 1,
                fillOpacity: 10,
                spanNulls: false,
                showPoints: "never",
                stacking: {
                  mode: "normal",
                  group: "A",
                },
              },
              color: {
                mode: "palette-classic",
              },
              min: 0,
            },
            overrides: [],
          },
          options: {
            legend: {
              displayMode: "table",
              placement: "right",
              calcs: ["lastNotNull", "max"],
            },
            tooltip: {
              mode: "multi",
              sort: "desc",
            },
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum by (application, deployment_group, status) (max without (%(replicaLabels)s) (codedeploy_deployment_targets{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}))" % config,
              legendFormat: "{{application}}/{{deployment_group}} {{status}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 7,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 10,
          },
        },
        {
          type: "bargauge",
          title: "Healthy targets of deployments in progress",
          description: "Targets that have not failed over all targets of the deployments in progress, per group. CodeDeployHealthyTargetsLow fires below 90%. Idle groups show no value.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "percentunit",
              color: {
                mode: "thresholds",
              },
              thresholds: {
                mode: "absolute",
                steps: [
                  {
                    color: "red",
                    value: null,
                  },
                  {
                    color: "orange",
                    value: 0.9,
                  },
                  {
                    color: "green",
                    value: 0.99,
                  },
                ],
              },
              min: 0,
            },
            overrides: [],
          },
          options: {
            reduceOptions: {
              calcs: ["lastNotNull"],
              fields: "",
              values: false,
            },
            orientation: "horizontal",
            displayMode: "gradient",
            showUnfilled: true,
            valueMode: "color",
            namePlacement: "auto",
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum by (account_id, region, application, deployment_group) (max without (%(replicaLabels)s) (codedeploy_deployment_targets{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", status!=\"failed\"})) / sum by (account_id, region, application, deployment_group) (max without (%(replicaLabels)s) (codedeploy_deployment_targets{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}))" % config,
              legendFormat: "{{application}}/{{deployment_group}}",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 8,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 10,
          },
        },
        {
          type: "row",
          title: "Failures",
          collapsed: false,
          id: 9,
          gridPos: {
            h: 1,
            w: 24,
            x: 0,
            y: 18,
          },
          panels: [],
        },
        {
          type: "timeseries",
          title: "Failed and stopped deployments per group",
          description: "Failed and stopped deployments that finished in each interval, per group.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "short",
              decimals: 0,
              custom: {
                drawStyle: "bars",
                lineWidth: 1,
                fillOpacity: 60,
                spanNulls: false,
                showPoints: "never",
                stacking: {
                  mode: "normal",
                  group: "A",
                },
              },
              color: {
                mode: "palette-classic",
              },
              min: 0,
            },
            overrides: [],
          },
          options: {
            legend: {
              displayMode: "table",
              placement: "right",
              calcs: ["lastNotNull", "max"],
            },
            tooltip: {
              mode: "multi",
              sort: "desc",
            },
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum by (application, deployment_group, status) (max without (%(replicaLabels)s) (increase(codedeploy_deployments_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", status=~\"failed|stopped\"}[$__rate_interval])))" % config,
              legendFormat: "{{application}}/{{deployment_group}} {{status}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 10,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 19,
          },
        },
        {
          type: "bargauge",
          title: "Error codes of failed deployments",
          description: "errorInformation.code of the failed and stopped deployments in the dashboard's time range. Window: $__range; a code seen for the first time counts from its first value.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "short",
              color: {
                mode: "thresholds",
              },
              thresholds: {
                mode: "absolute",
                steps: [
                  {
                    color: "blue",
                    value: null,
                  },
                ],
              },
              min: 0,
            },
            overrides: [],
          },
          options: {
            reduceOptions: {
              calcs: ["lastNotNull"],
              fields: "",
              values: false,
            },
            orientation: "horizontal",
            displayMode: "gradient",
            showUnfilled: true,
            valueMode: "color",
            namePlacement: "auto",
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: 'sum by (error_code) (%s)' % common.increaseInRange(config, 'codedeploy_deployment_errors_total', common.groupMatchers),
              legendFormat: "{{error_code}}",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 11,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 19,
          },
        },
        {
          type: "table",
          title: "Failing lifecycle hooks",
          description: "Failed lifecycle events (hooks) in the dashboard's time range, per group, hook and script error code (ScriptFailed, ScriptTimedOut, ScriptMissing, ...). Window: $__range; a hook failing for the first time counts from its first value. Rows without failure are hidden.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "short",
            },
            overrides: [],
          },
          options: {
            showHeader: true,
            cellHeight: "sm",
            footer: {
              show: false,
              reducer: ["sum"],
              fields: "",
            },
            sortBy: [
              {
                displayName: "Value",
                desc: true,
              },
            ],
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: 'sum by (application, deployment_group, lifecycle_event, error_code) (%s)' % common.increaseInRange(config, 'codedeploy_lifecycle_event_failures_total', common.groupMatchers),
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
          ],
          transformations: [
            {
              id: "organize",
              options: {
                excludeByName: {
                  Time: true,
                  job: true,
                  __name__: true,
                },
              },
            },
            {
              id: "filterByValue",
              options: {
                type: "exclude",
                match: "all",
                filters: [
                  {
                    fieldName: "Value",
                    config: {
                      id: "lowerOrEqual",
                      options: {
                        value: 0,
                      },
                    },
                  },
                ],
              },
            },
          ],
          id: 12,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 27,
          },
        },
        {
          type: "bargauge",
          title: "Healthy-target percentage of finished deployments",
          description: "Succeeded targets over all targets of the deployments that finished in the dashboard's time range, per group. Window: $__range, the dashboard's time range.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "percentunit",
              color: {
                mode: "thresholds",
              },
              thresholds: {
                mode: "absolute",
                steps: [
                  {
                    color: "red",
                    value: null,
                  },
                  {
                    color: "orange",
                    value: 0.9,
                  },
                  {
                    color: "green",
                    value: 0.99,
                  },
                ],
              },
              min: 0,
            },
            overrides: [],
          },
          options: {
            reduceOptions: {
              calcs: ["lastNotNull"],
              fields: "",
              values: false,
            },
            orientation: "horizontal",
            displayMode: "gradient",
            showUnfilled: true,
            valueMode: "color",
            namePlacement: "auto",
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum by (account_id, region, application, deployment_group) (max without (%(replicaLabels)s) (increase(codedeploy_deployment_targets_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", status=\"succeeded\"}[$__range]))) / sum by (account_id, region, application, deployment_group) (max without (%(replicaLabels)s) (increase(codedeploy_deployment_targets_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__range])))" % config,
              legendFormat: "{{application}}/{{deployment_group}}",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 13,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 27,
          },
        },
        {
          type: "table",
          title: "Last failure per group",
          description: "Completion time of the latest failed and stopped deployment of each group (all time).",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "dateTimeAsIso",
            },
            overrides: [],
          },
          options: {
            showHeader: true,
            cellHeight: "sm",
            footer: {
              show: false,
              reducer: ["sum"],
              fields: "",
            },
            sortBy: [
              {
                displayName: "Value",
                desc: true,
              },
            ],
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "max by (account_id, region, application, deployment_group, status) (max without (%(replicaLabels)s) (codedeploy_last_deployment_timestamp_seconds{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", status=~\"failed|stopped\"})) * 1000" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
          ],
          transformations: [
            {
              id: "organize",
              options: {
                excludeByName: {
                  Time: true,
                  job: true,
                  __name__: true,
                },
              },
            },
          ],
          id: 14,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 35,
          },
        },
        common.nonZeroTable(
          15,
          'Deployments stopped by CloudWatch alarms',
          "Deployments CodeDeploy stopped because an alarm of the group fired (ALARM_ACTIVE), per group and alarm named in CodeDeploy's message (unknown when it names none). Window: $__range; an alarm stopping a deployment for the first time counts from its first value. Rows without a stop are hidden.",
          'short',
          'sum by (application, deployment_group, alarm) (%s)' % common.increaseInRange(config, 'codedeploy_alarm_stops_total', common.groupMatchers),
          { h: 8, w: 12, x: 12, y: 35 },
        ),
      ],
    ),
  },
}
