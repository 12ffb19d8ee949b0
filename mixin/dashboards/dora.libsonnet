// The DORA and SLO dashboard: DORA keys and tiers, the deployment-success SLO and its
// error budget. Rendered into dashboards/codedeploy-dora.json.
local common = import 'common.libsonnet';
{
  local config = $._config,
  grafanaDashboards+:: {
    'codedeploy-dora.json': common.dashboard(
      config,
      uid="codedeploy-dora",
      title="CodeDeploy / DORA and SLO",
      description="DORA keys, tiers, deployment success SLO and error budget per application, from codedeploy-exporter.",
      tags=["dora", "slo"],
      time={ from: "now-30d", to: 'now' },
      tagVariables=common.team(config),
      extraVariables=[
        // The exporter's exact rolling windows of the DORA gauges.
        common.customVariable('window', 'Window', ['30d', '7d', '1d']),
        // The report year whose tier cut-offs apply.
        common.customVariable('dora_report', 'DORA report', ['2023', '2021']),
      ],
      panels=[
        {
          type: "row",
          title: "DORA keys of the production groups of the selection over $window (and one time range earlier)",
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
          title: "Deployment frequency",
          description: "Finished change deployments of production groups per day (creators user, CodeDeploy, CloudFormation, CodeDeployAutoUpdate or unknown; not rollbacks or scale-out deployments), over the $window window the exporter computes exactly. The second value is the same figure one time range earlier: keep the time range equal to the window (30 days by default) to compare consecutive periods; n/a without that history.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "short",
              decimals: 2,
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
              mappings: [
                {
                  type: "special",
                  options: {
                    match: "nan",
                    result: {
                      text: "n/a",
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
              expr: "sum(deployment_group:codedeploy_dora_deployment_frequency:per_day{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\"})" % config,
              legendFormat: "current",
              range: false,
              instant: true,
              format: "time_series",
            },
            {
              refId: "B",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum(deployment_group:codedeploy_dora_deployment_frequency:per_day{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\"} offset $__range) or vector(NaN)" % config,
              legendFormat: "previous",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 2,
          gridPos: {
            h: 4,
            w: 6,
            x: 0,
            y: 1,
          },
        },
        {
          type: "stat",
          title: "Change failure rate",
          description: "Change deployments of production groups that failed, were stopped or were rolled back, over all their finished change deployments in the $window window. Empty when the window holds no change deployment. The second value is the same figure one time range earlier (n/a without that history).",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "percentunit",
              decimals: 1,
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
                    color: "yellow",
                    value: 0.05,
                  },
                  {
                    color: "orange",
                    value: 0.1,
                  },
                  {
                    color: "red",
                    value: 0.15,
                  },
                ],
              },
              mappings: [
                {
                  type: "special",
                  options: {
                    match: "nan",
                    result: {
                      text: "n/a",
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
              expr: "sum((%s >= 0) * %s) / (sum(%s) > 0)" % ["deployment_group:codedeploy_dora_change_failure_ratio:production{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\"}", "deployment_group:codedeploy_dora_deployments:production{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\"}", "deployment_group:codedeploy_dora_deployments:production{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\"}"] % config,
              legendFormat: "current",
              range: false,
              instant: true,
              format: "time_series",
            },
            {
              refId: "B",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum((%s >= 0) * %s) / (sum(%s) > 0) or vector(NaN)" % ["deployment_group:codedeploy_dora_change_failure_ratio:production{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\"} offset $__range", "deployment_group:codedeploy_dora_deployments:production{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\"} offset $__range", "deployment_group:codedeploy_dora_deployments:production{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\"} offset $__range"] % config,
              legendFormat: "previous",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 3,
          gridPos: {
            h: 4,
            w: 6,
            x: 6,
            y: 1,
          },
        },
        {
          type: "stat",
          title: "Failed deployment recovery time (median)",
          description: "Median time from the first change failure after a success to the next successful deployment of the same group, over the recoveries of the $window window, computed exactly by the exporter (so from the first scrape). With several groups selected, the slowest group's median: medians of different groups cannot be combined. Empty without recovery.",
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
                    color: "yellow",
                    value: 3600,
                  },
                  {
                    color: "orange",
                    value: 86400,
                  },
                  {
                    color: "red",
                    value: 604800,
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
              expr: "max(deployment_group:codedeploy_dora_time_to_restore_seconds:production{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\", quantile=\"0.5\"})" % config,
              legendFormat: "median",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 4,
          gridPos: {
            h: 4,
            w: 6,
            x: 12,
            y: 1,
          },
        },
        {
          type: "stat",
          title: "Lead time for changes (median)",
          description: "Median time from commit to successful deployment completion where the commit time is known, over the change deployments of the $window window, computed exactly by the exporter. With several groups selected, the slowest group's median. Empty until commit times are recorded.",
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
              expr: "max(deployment_group:codedeploy_dora_lead_time_seconds:production{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", %(teamLabel)s=~\"$team\", window=~\"$window\", quantile=\"0.5\"})" % config,
              legendFormat: "median",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 5,
          gridPos: {
            h: 4,
            w: 6,
            x: 18,
            y: 1,
          },
        },
        {
          type: "row",
          title: "DORA tiers per application (30d, report $dora_report, approximate)",
          collapsed: false,
          id: 6,
          gridPos: {
            h: 1,
            w: 24,
            x: 0,
            y: 5,
          },
          panels: [],
        },
        {
          type: "table",
          title: "DORA keys and tiers per application",
          description: "One row per application (its production deployment groups of the selected teams), over the last 30 days, from the recording rules of alerts/codedeploy.rules.yml: exact window figures of the exporter, recovery and lead time the slowest production group's median. An application whose groups belong to several selected teams shows its lowest tier. Tiers follow the cut-offs of the selected report year: 4 elite, 3 high, 2 medium, 1 low; an empty cell means the key is undefined (no deployment, no recovery, no commit time). The reports describe clusters, not thresholds, so the tiers are approximate. The deployment group filter does not apply to this table.",
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
                  options: "Value #A",
                },
                properties: [
                  {
                    id: "unit",
                    value: "short",
                  },
                  {
                    id: "displayName",
                    value: "Deploys/day",
                  },
                ],
              },
              {
                matcher: {
                  id: "byName",
                  options: "Value #B",
                },
                properties: [
                  {
                    id: "unit",
                    value: "percentunit",
                  },
                  {
                    id: "displayName",
                    value: "Change failure rate",
                  },
                ],
              },
              {
                matcher: {
                  id: "byName",
                  options: "Value #C",
                },
                properties: [
                  {
                    id: "unit",
                    value: "s",
                  },
                  {
                    id: "displayName",
                    value: "Recovery (median)",
                  },
                ],
              },
              {
                matcher: {
                  id: "byName",
                  options: "Value #D",
                },
                properties: [
                  {
                    id: "unit",
                    value: "s",
                  },
                  {
                    id: "displayName",
                    value: "Lead time (median)",
                  },
                ],
              },
              {
                matcher: {
                  id: "byName",
                  options: "Value #E",
                },
                properties: [
                  {
                    id: "mappings",
                    value: [
                      {
                        type: "value",
                        options: {
                          "1": {
                            text: "Low",
                            color: "red",
                            index: 0,
                          },
                          "2": {
                            text: "Medium",
                            color: "orange",
                            index: 1,
                          },
                          "3": {
                            text: "High",
                            color: "yellow",
                            index: 2,
                          },
                          "4": {
                            text: "Elite",
                            color: "green",
                            index: 3,
                          },
                        },
                      },
                      {
                        type: "special",
                        options: {
                          match: "nan",
                          result: {
                            text: "n/a",
                            index: 4,
                          },
                        },
                      },
                    ],
                  },
                  {
                    id: "displayName",
                    value: "Frequency tier",
                  },
                  {
                    id: "custom.cellOptions",
                    value: {
                      type: "color-background",
                    },
                  },
                ],
              },
              {
                matcher: {
                  id: "byName",
                  options: "Value #F",
                },
                properties: [
                  {
                    id: "mappings",
                    value: [
                      {
                        type: "value",
                        options: {
                          "1": {
                            text: "Low",
                            color: "red",
                            index: 0,
                          },
                          "2": {
                            text: "Medium",
                            color: "orange",
                            index: 1,
                          },
                          "3": {
                            text: "High",
                            color: "yellow",
                            index: 2,
                          },
                          "4": {
                            text: "Elite",
                            color: "green",
                            index: 3,
                          },
                        },
                      },
                      {
                        type: "special",
                        options: {
                          match: "nan",
                          result: {
                            text: "n/a",
                            index: 4,
                          },
                        },
                      },
                    ],
                  },
                  {
                    id: "displayName",
                    value: "Failure rate tier",
                  },
                  {
                    id: "custom.cellOptions",
                    value: {
                      type: "color-background",
                    },
                  },
                ],
              },
              {
                matcher: {
                  id: "byName",
                  options: "Value #G",
                },
                properties: [
                  {
                    id: "mappings",
                    value: [
                      {
                        type: "value",
                        options: {
                          "1": {
                            text: "Low",
                            color: "red",
                            index: 0,
                          },
                          "2": {
                            text: "Medium",
                            color: "orange",
                            index: 1,
                          },
                          "3": {
                            text: "High",
                            color: "yellow",
                            index: 2,
                          },
                          "4": {
                            text: "Elite",
                            color: "green",
                            index: 3,
                          },
                        },
                      },
                      {
                        type: "special",
                        options: {
                          match: "nan",
                          result: {
                            text: "n/a",
                            index: 4,
                          },
                        },
                      },
                    ],
                  },
                  {
                    id: "displayName",
                    value: "Recovery tier",
                  },
                  {
                    id: "custom.cellOptions",
                    value: {
                      type: "color-background",
                    },
                  },
                ],
              },
              {
                matcher: {
                  id: "byName",
                  options: "Value #H",
                },
                properties: [
                  {
                    id: "mappings",
                    value: [
                      {
                        type: "value",
                        options: {
                          "1": {
                            text: "Low",
                            color: "red",
                            index: 0,
                          },
                          "2": {
                            text: "Medium",
                            color: "orange",
                            index: 1,
                          },
                          "3": {
                            text: "High",
                            color: "yellow",
                            index: 2,
                          },
                          "4": {
                            text: "Elite",
                            color: "green",
                            index: 3,
                          },
                        },
                      },
                      {
                        type: "special",
                        options: {
                          match: "nan",
                          result: {
                            text: "n/a",
                            index: 4,
                          },
                        },
                      },
                    ],
                  },
                  {
                    id: "displayName",
                    value: "Lead time tier",
                  },
                  {
                    id: "custom.cellOptions",
                    value: {
                      type: "color-background",
                    },
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
              expr: "sum by (account_id, region, application) (application:codedeploy_dora_deployment_frequency:per_day{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", %(teamLabel)s=~\"$team\", window=\"30d\"})" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
            {
              refId: "B",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum by (account_id, region, application) (application:codedeploy_dora_change_failure:ratio{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", %(teamLabel)s=~\"$team\", window=\"30d\"})" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
            {
              refId: "C",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "max by (account_id, region, application) (application:codedeploy_time_to_restore_seconds:median30d{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", %(teamLabel)s=~\"$team\"})" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
            {
              refId: "D",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "max by (account_id, region, application) (application:codedeploy_lead_time_seconds:median30d{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", %(teamLabel)s=~\"$team\"})" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
            {
              refId: "E",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "min by (account_id, region, application) (application:codedeploy_dora_deployment_frequency:tier{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", %(teamLabel)s=~\"$team\", dora_report=~\"$dora_report\"})" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
            {
              refId: "F",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "min by (account_id, region, application) (application:codedeploy_dora_change_failure:tier{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", %(teamLabel)s=~\"$team\", dora_report=~\"$dora_report\"})" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
            {
              refId: "G",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "min by (account_id, region, application) (application:codedeploy_dora_time_to_restore:tier{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", %(teamLabel)s=~\"$team\", dora_report=~\"$dora_report\"})" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
            {
              refId: "H",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "min by (account_id, region, application) (application:codedeploy_dora_lead_time:tier{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", %(teamLabel)s=~\"$team\", dora_report=~\"$dora_report\"})" % config,
              legendFormat: "__auto",
              range: false,
              instant: true,
              format: "table",
            },
          ],
          transformations: [
            {
              id: "merge",
              options: {},
            },
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
          id: 7,
          gridPos: {
            h: 8,
            w: 24,
            x: 0,
            y: 6,
          },
        },
        {
          type: "row",
          title: "Deployment success SLO",
          collapsed: false,
          id: 8,
          gridPos: {
            h: 1,
            w: 24,
            x: 0,
            y: 14,
          },
          panels: [],
        },
        {
          type: "timeseries",
          title: "Deployment success rate (rolling 1d) per application",
          description: "Succeeded over finished deployments of the last day, per application, against the SLO objective (dashed). A day without deployment counts as 100%: nothing failed. Use a 30-day time range to see the trend.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "percentunit",
              custom: {
                drawStyle: "line",
                lineWidth: 1,
                fillOpacity: 10,
                spanNulls: false,
                showPoints: "never",
                stacking: {
                  mode: "none",
                  group: "A",
                },
              },
              color: {
                mode: "palette-classic",
              },
            },
            overrides: [
              {
                matcher: {
                  id: "byName",
                  options: "objective",
                },
                properties: [
                  {
                    id: "custom.lineStyle",
                    value: {
                      fill: "dash",
                      dash: [10, 10],
                    },
                  },
                  {
                    id: "color",
                    value: {
                      mode: "fixed",
                      fixedColor: "red",
                    },
                  },
                ],
              },
            ],
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
              expr: "1 - application:codedeploy_sli_error:ratio1d{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\"}",
              legendFormat: "{{application}}",
              range: true,
              instant: false,
              format: "time_series",
            },
            {
              refId: "B",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "codedeploy_slo:objective:ratio",
              legendFormat: "objective",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 9,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 15,
          },
        },
        {
          type: "bargauge",
          title: "Error budget remaining (30d) per application",
          description: "Share of the 30-day error budget left: 1 - (failed + stopped) / (budget ratio x max(deployments, floor)). Below 0 the budget is overspent. The floor (40 deployments by default) keeps quiet applications from spending the whole budget on one failure.",
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
                    value: 0,
                  },
                  {
                    color: "green",
                    value: 0.25,
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
              expr: "application:codedeploy_slo_error_budget_remaining:ratio30d{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\"}",
              legendFormat: "{{application}}",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 10,
          gridPos: {
            h: 8,
            w: 6,
            x: 12,
            y: 15,
          },
        },
        {
          type: "stat",
          title: "Success rate (30d, lowest group)",
          description: "Succeeded over finished deployments in the last 30 days (the SLO period), computed exactly by the exporter, so right from the first scrape; with several groups selected, the lowest group's. The alert CodeDeploySuccessRateLow compares it with its target.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "percentunit",
              decimals: 1,
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
                    value: 0.95,
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
              expr: "min(deployment_group:codedeploy_sli_success:ratio30d{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"})",
              legendFormat: "30d",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 11,
          gridPos: {
            h: 4,
            w: 6,
            x: 18,
            y: 15,
          },
        },
        {
          type: "stat",
          title: "Error budget remaining (30d), selection",
          description: "Lowest error budget left among the selected deployment groups.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "percentunit",
              decimals: 0,
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
                    value: 0,
                  },
                  {
                    color: "green",
                    value: 0.25,
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
              expr: "min(deployment_group:codedeploy_slo_error_budget_remaining:ratio30d{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"})",
              legendFormat: "min",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 12,
          gridPos: {
            h: 4,
            w: 6,
            x: 0,
            y: 23,
          },
        },
        {
          type: "row",
          title: "Deployments",
          collapsed: false,
          id: 13,
          gridPos: {
            h: 1,
            w: 24,
            x: 0,
            y: 27,
          },
          panels: [],
        },
        {
          type: "stat",
          title: "Deployment duration (mean)",
          description: "Mean create-to-complete duration of the deployments finished in the dashboard's time range. Window: $__range, the whole time range, because a few deployments a day leave shorter windows empty.",
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
              expr: "sum(max without (%(replicaLabels)s) (increase(codedeploy_deployment_duration_seconds_sum{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__range]))) / sum(max without (%(replicaLabels)s) (increase(codedeploy_deployment_duration_seconds_count{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__range])))" % config,
              legendFormat: "mean",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 14,
          gridPos: {
            h: 4,
            w: 6,
            x: 0,
            y: 28,
          },
        },
        {
          type: "stat",
          title: "Deployment duration (p90, slowest group)",
          description: "90th percentile of the create-to-complete duration of the deployments finished in the $window window, computed exactly by the exporter: not capped by the histogram's largest bucket (1 hour), so blue/green deployments of several hours show as they are. With several groups selected, the slowest group's.",
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
              expr: "max(max without (%(replicaLabels)s) (codedeploy_deployment_duration_window_seconds{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", window=~\"$window\", quantile=\"0.9\"}))" % config,
              legendFormat: "p90",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 15,
          gridPos: {
            h: 4,
            w: 6,
            x: 6,
            y: 28,
          },
        },
        {
          type: "stat",
          title: "Rollback rate",
          description: "Rolled-back over finished non-rollback deployments in the $window window (worst selected group), computed exactly by the exporter.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "percentunit",
              decimals: 1,
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
              expr: "max(max without (%(replicaLabels)s) (codedeploy_sli_rollback_ratio{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", window=~\"$window\"}))" % config,
              legendFormat: "worst group",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 16,
          gridPos: {
            h: 4,
            w: 6,
            x: 12,
            y: 28,
          },
        },
        {
          type: "stat",
          title: "Time to roll back (median)",
          description: "Median time from a failed deployment's completion to its rollback's completion. Window: $__range, the dashboard's time range.",
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
              expr: "histogram_quantile(0.5, sum by (le) (max without (%(replicaLabels)s) (increase(codedeploy_rollback_duration_seconds_bucket{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__range]))))" % config,
              legendFormat: "median",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 17,
          gridPos: {
            h: 4,
            w: 6,
            x: 18,
            y: 28,
          },
        },
        {
          type: "timeseries",
          title: "Finished deployments by outcome",
          description: "Deployments that finished in each interval, by status, for the selection.",
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
              expr: "sum by (status) (max without (%(replicaLabels)s) (increase(codedeploy_deployments_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__rate_interval])))" % config,
              legendFormat: "{{status}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 18,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 32,
          },
        },
        {
          type: "table",
          title: "Recent rollbacks",
          description: "Rollback deployments finished in the dashboard's time range, per group and rollback status. Window: $__range, the dashboard's time range. Groups without rollback are hidden.",
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
              expr: "sum by (account_id, region, application, deployment_group, status) (max without (%(replicaLabels)s) (increase(codedeploy_rollbacks_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__range])))" % config,
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
          id: 19,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 32,
          },
        },
        common.barGauge(
          20,
          'Rollbacks by cause',
          "Rollback deployments finished in the dashboard's time range, by why the rolled-back deployment ended: failure (it failed), alarm (CodeDeploy stopped it on a CloudWatch alarm), manual (stopped on request), unknown. Window: $__range; a cause seen for the first time counts from its first value.",
          'short',
          'sum by (cause) (%s)' % common.increaseInRange(config, 'codedeploy_rollbacks_total', common.groupMatchers),
          '{{cause}}',
          { h: 8, w: 12, x: 0, y: 40 },
        ),
        common.barGauge(
          21,
          'Failed or stopped share by deployment configuration',
          "Failed and stopped over finished deployments in the dashboard's time range, per deployment configuration (CodeDeployDefault.AllAtOnce, HalfAtATime, OneAtATime, the canary and linear configurations of Lambda and ECS, your own; unknown when only events were seen): compare a canary with an all-at-once deployment. Window: $__range, the whole time range: deployments are rare. NaN for a configuration without a finished deployment in it.",
          'percentunit',
          'sum by (deployment_config) (max without (%(replicas)s) (increase(codedeploy_deployments_total{%(groups)s, status=~"failed|stopped"}[$__range]))) / sum by (deployment_config) (max without (%(replicas)s) (increase(codedeploy_deployments_total{%(groups)s}[$__range])))'
          % { replicas: config.replicaLabels, groups: common.groupMatchers },
          '{{deployment_config}}',
          { h: 8, w: 12, x: 12, y: 40 },
        ),
      ],
    ),
  },
}
