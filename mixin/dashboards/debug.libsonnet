// The debug dashboard: lifecycle hooks, failure causes, duration distributions and
// the exporter's own health. Rendered into dashboards/codedeploy-debug.json.
local common = import 'common.libsonnet';
{
  local config = $._config,
  grafanaDashboards+:: {
    'codedeploy-debug.json': common.dashboard(
      config,
      uid="codedeploy-debug",
      title="CodeDeploy / Debug",
      description="Lifecycle hooks, failure causes, duration distributions and the exporter's own health.",
      tags=["debug"],
      time={ from: "now-24h", to: 'now' },
      tagVariables=common.environmentAndTeam(config),
      extraVariables=[
        common.queryVariable('lifecycle_event', 'Lifecycle event', 'codedeploy_lifecycle_event_duration_seconds_count', common.groupMatchers),
        common.queryVariable('instance', 'Exporter instance', 'codedeploy_exporter_build_info'),
      ],
      panels=[
        {
          type: "row",
          title: "Lifecycle hooks",
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
          type: "timeseries",
          title: "Mean lifecycle event duration by hook",
          description: "Mean duration of each hook (ApplicationStop ... ValidateService, BeforeAllowTraffic, ...) finished in the interval on the targets of finished deployments, succeeded or failed: rate of the sum over rate of the count. The exporter keeps no buckets for hooks (the series budget), so there is no distribution; failures are in the panels below.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "s",
              custom: {
                drawStyle: "line",
                lineWidth: 1,
                fillOpacity: 0,
                spanNulls: true,
                showPoints: "never",
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
              calcs: ["mean", "max"],
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
              expr: "sum by (lifecycle_event) (max without (%(replicaLabels)s) (increase(codedeploy_lifecycle_event_duration_seconds_sum{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", lifecycle_event=~\"$lifecycle_event\"}[$__rate_interval]))) / sum by (lifecycle_event) (max without (%(replicaLabels)s) (increase(codedeploy_lifecycle_event_duration_seconds_count{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", lifecycle_event=~\"$lifecycle_event\"}[$__rate_interval])))" % config,
              legendFormat: "{{lifecycle_event}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 2,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 1,
          },
        },
        {
          type: "table",
          title: "Mean lifecycle event duration and runs by hook",
          description: "Mean duration and number of finished runs of each hook over the dashboard's time range (succeeded or failed). Window: $__range, so that rare hooks have enough observations. Hooks have no buckets (the series budget), hence means, not percentiles.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "s",
            },
            overrides: [
              {
                matcher: {
                  id: "byName",
                  options: "Value #A",
                },
                properties: [
                  {
                    id: "displayName",
                    value: "mean",
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
                    id: "displayName",
                    value: "runs",
                  },
                  {
                    id: "unit",
                    value: "short",
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
              expr: "sum by (lifecycle_event) (max without (%(replicaLabels)s) (increase(codedeploy_lifecycle_event_duration_seconds_sum{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", lifecycle_event=~\"$lifecycle_event\"}[$__range]))) / sum by (lifecycle_event) (max without (%(replicaLabels)s) (increase(codedeploy_lifecycle_event_duration_seconds_count{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", lifecycle_event=~\"$lifecycle_event\"}[$__range])))" % config,
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
              expr: "sum by (lifecycle_event) (max without (%(replicaLabels)s) (increase(codedeploy_lifecycle_event_duration_seconds_count{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", lifecycle_event=~\"$lifecycle_event\"}[$__range])))" % config,
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
          id: 3,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 1,
          },
        },
        {
          type: "timeseries",
          title: "Lifecycle hook failures by script error code",
          description: "Failed lifecycle events per interval, by hook and script error code (ScriptFailed, ScriptTimedOut, ScriptMissing, ScriptNotExecutable, UnknownError).",
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
              expr: "sum by (lifecycle_event, error_code) (max without (%(replicaLabels)s) (increase(codedeploy_lifecycle_event_failures_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", lifecycle_event=~\"$lifecycle_event\"}[$__rate_interval])))" % config,
              legendFormat: "{{lifecycle_event}} {{error_code}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 4,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 9,
          },
        },
        {
          type: "bargauge",
          title: "Hook failures by hook and script error code",
          description: "Failed lifecycle events over the dashboard's time range. Window: $__range; a (hook, code) pair failing for the first time counts from its first value.",
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
              expr: 'sum by (lifecycle_event, error_code) (%s)' % common.increaseInRange(config, 'codedeploy_lifecycle_event_failures_total', common.groupMatchers + ', lifecycle_event=~"$lifecycle_event"', '{instance=~"$instance"}'),
              legendFormat: "{{lifecycle_event}} {{error_code}}",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 5,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 9,
          },
        },
        {
          type: "row",
          title: "Deployments",
          collapsed: false,
          id: 6,
          gridPos: {
            h: 1,
            w: 24,
            x: 0,
            y: 17,
          },
          panels: [],
        },
        {
          type: "heatmap",
          title: "Deployment duration",
          description: "Distribution of create-to-complete durations of finished deployments.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "s",
              custom: {
                scaleDistribution: {
                  type: "linear",
                },
              },
            },
            overrides: [],
          },
          options: {
            calculate: false,
            yAxis: {
              axisPlacement: "left",
              unit: "s",
            },
            cellGap: 1,
            color: {
              mode: "scheme",
              scheme: "Oranges",
              fill: "dark-orange",
              exponent: 0.5,
              steps: 64,
              reverse: false,
            },
            rowsFrame: {
              layout: "auto",
            },
            tooltip: {
              show: true,
              yHistogram: false,
            },
            legend: {
              show: true,
            },
            exemplars: {
              color: "rgba(255,0,255,0.7)",
            },
          },
          targets: [
            {
              refId: "A",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "sum by (le) (max without (%(replicaLabels)s) (increase(codedeploy_deployment_duration_seconds_bucket{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__rate_interval])))" % config,
              legendFormat: "{{le}}",
              range: true,
              instant: false,
              format: "heatmap",
            },
          ],
          id: 7,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 18,
          },
        },
        {
          type: "timeseries",
          title: "Deployment duration quantiles (exact, 1d)",
          description: "p50, p90 and p99 of the durations of the deployments finished in the last day, computed exactly by the exporter per group (NaN without deployment).",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "s",
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
              expr: "max without (%(replicaLabels)s) (codedeploy_deployment_duration_window_seconds{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\", window=\"1d\"})" % config,
              legendFormat: "{{application}}/{{deployment_group}} p{{quantile}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 8,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 18,
          },
        },
        {
          type: "timeseries",
          title: "Failure causes by error code",
          description: "Failed and stopped deployments per interval by errorInformation.code (HEALTH_CONSTRAINTS, HOOK_EXECUTION_FAILURE, ALARM_ACTIVE, MANUAL_STOP, ...).",
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
              expr: "sum by (error_code) (max without (%(replicaLabels)s) (increase(codedeploy_deployment_errors_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__rate_interval])))" % config,
              legendFormat: "{{error_code}}",
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
            y: 26,
          },
        },
        {
          type: "table",
          title: "Deployments by platform, type, creator and outcome",
          description: "Finished deployments in the dashboard's time range. Window: $__range, the dashboard's time range.",
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
              expr: "sum by (compute_platform, deployment_type, creator, status) (max without (%(replicaLabels)s) (increase(codedeploy_deployments_total{account_id=~\"$account_id\", region=~\"$region\", application=~\"$application\", deployment_group=~\"$deployment_group\"}[$__range])))" % config,
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
          id: 10,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 26,
          },
        },
        {
          type: "row",
          title: "Exporter health",
          collapsed: false,
          id: 11,
          gridPos: {
            h: 1,
            w: 24,
            x: 0,
            y: 34,
          },
          panels: [],
        },
        {
          type: "table",
          title: "Exporter instances",
          description: "Scrape status (1 = up) and version of each exporter replica.",
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
                    value: "Up",
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
              expr: "up{%(exporterSelector)s} * on (job, instance, pod) group_right () codedeploy_exporter_build_info{instance=~\"$instance\"}" % config,
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
          id: 12,
          gridPos: {
            h: 6,
            w: 8,
            x: 0,
            y: 35,
          },
        },
        {
          type: "stat",
          title: "Sources up",
          description: "Event sources per replica: 1 when running and healthy. A finished replay reports 0.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "bool_yes_no",
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
                    color: "green",
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
              expr: "codedeploy_exporter_source_up{instance=~\"$instance\"}",
              legendFormat: "{{instance}} {{source}}",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 13,
          gridPos: {
            h: 6,
            w: 8,
            x: 8,
            y: 35,
          },
        },
        {
          type: "stat",
          title: "Deployments tracked",
          description: "Deployments held in each replica's ledger.",
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
              expr: "codedeploy_exporter_deployments_tracked{instance=~\"$instance\"}",
              legendFormat: "{{instance}}",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 14,
          gridPos: {
            h: 6,
            w: 8,
            x: 16,
            y: 35,
          },
        },
        {
          type: "timeseries",
          title: "Ingest lag (p50, p90, p99)",
          description: "Time from an event's own time to its being applied, per live source (a replayed file has no lag).",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "s",
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
              expr: "histogram_quantile(0.5, sum by (instance, source, le) (rate(codedeploy_exporter_event_lag_seconds_bucket{instance=~\"$instance\"}[$__rate_interval])))",
              legendFormat: "{{instance}} {{source}} p0.5",
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
              expr: "histogram_quantile(0.9, sum by (instance, source, le) (rate(codedeploy_exporter_event_lag_seconds_bucket{instance=~\"$instance\"}[$__rate_interval])))",
              legendFormat: "{{instance}} {{source}} p0.9",
              range: true,
              instant: false,
              format: "time_series",
            },
            {
              refId: "C",
              datasource: {
                type: "prometheus",
                uid: "${datasource}",
              },
              expr: "histogram_quantile(0.99, sum by (instance, source, le) (rate(codedeploy_exporter_event_lag_seconds_bucket{instance=~\"$instance\"}[$__rate_interval])))",
              legendFormat: "{{instance}} {{source}} p0.99",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 15,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 41,
          },
        },
        {
          type: "timeseries",
          title: "Events by source and outcome",
          description: "Messages per second by source and outcome (applied, duplicate, ignored, rejected).",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "ops",
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
              expr: "sum by (source, outcome) (rate(codedeploy_exporter_events_total{instance=~\"$instance\"}[$__rate_interval]))",
              legendFormat: "{{source}} {{outcome}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 16,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 41,
          },
        },
        {
          type: "stat",
          title: "Rejected events",
          description: "Messages that could not be decoded in the dashboard's time range. Window: $__range, the dashboard's time range.",
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
              expr: "sum(increase(codedeploy_exporter_events_total{instance=~\"$instance\", outcome=\"rejected\"}[$__range]))",
              legendFormat: "rejected",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 17,
          gridPos: {
            h: 8,
            w: 6,
            x: 0,
            y: 49,
          },
        },
        {
          type: "timeseries",
          title: "Source last success age",
          description: "Seconds since each live source last delivered a message that was not rejected.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "s",
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
              expr: "time() - codedeploy_exporter_source_last_success_timestamp_seconds{instance=~\"$instance\"}",
              legendFormat: "{{instance}} {{source}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 18,
          gridPos: {
            h: 8,
            w: 6,
            x: 6,
            y: 49,
          },
        },
        {
          type: "timeseries",
          title: "AWS requests by outcome",
          description: "AWS API calls per second by service, operation and outcome (success, throttled, error). A single 0 series when no AWS source is configured.",
          datasource: {
            type: "prometheus",
            uid: "${datasource}",
          },
          fieldConfig: {
            defaults: {
              unit: "reqps",
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
              expr: "sum by (service, operation, outcome) (rate(codedeploy_exporter_aws_requests_total{instance=~\"$instance\"}[$__rate_interval])) or vector(0)",
              legendFormat: "{{service}} {{operation}} {{outcome}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 19,
          gridPos: {
            h: 8,
            w: 12,
            x: 12,
            y: 49,
          },
        },
        {
          type: "timeseries",
          title: "AWS throttled share",
          description: "Throttled over all AWS requests per service. CodeDeployExporterAWSThrottling fires above 10% for 15 minutes. 0 without AWS calls.",
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
              expr: "sum by (service) (rate(codedeploy_exporter_aws_requests_total{instance=~\"$instance\", outcome=\"throttled\"}[$__rate_interval])) / sum by (service) (rate(codedeploy_exporter_aws_requests_total{instance=~\"$instance\"}[$__rate_interval])) or vector(0)",
              legendFormat: "{{service}}",
              range: true,
              instant: false,
              format: "time_series",
            },
          ],
          id: 20,
          gridPos: {
            h: 8,
            w: 12,
            x: 0,
            y: 57,
          },
        },
        {
          type: "bargauge",
          title: "Data-quality issues by reason",
          description: "Inputs the exporter had to correct (clamped negative or absurd durations, deployments found only by polling, ...) in the dashboard's time range. Window: $__range, the dashboard's time range. A single 0 bar when there was none.",
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
              expr: "sum by (reason) (increase(codedeploy_exporter_data_quality_issues_total{instance=~\"$instance\"}[$__range])) or vector(0)",
              legendFormat: "{{reason}}",
              range: false,
              instant: true,
              format: "time_series",
            },
          ],
          id: 21,
          gridPos: {
            h: 6,
            w: 24,
            x: 0,
            y: 65,
          },
        },
      ],
    ),
  },
}
