// Alerts on the exporter's own health. Rendered into alerts/codedeploy.alerts.yml.
// They stay per replica: one replica losing its source is worth knowing even if the
// other is fine.
{
  local config = $._config,

  prometheusAlerts+:: {
    groups+: [
      {
        name: 'codedeploy-exporter',
        renderTo:: 'codedeploy.alerts.yml',
        rules: [
          // _config.exporterSelector must match the job of your scrape config.
          {
            alert: 'CodeDeployExporterDown',
            expr: 'up{%(exporterSelector)s} == 0' % config,
            'for': '5m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'Prometheus cannot scrape codedeploy-exporter.',
              description: 'Target {{ $labels.instance }} of job {{ $labels.job }} has been down for 5 minutes.',
            },
          },
          // A replayed file is a one-shot source: it is not expected to stay up.
          {
            alert: 'CodeDeployExporterSourceDown',
            expr: 'codedeploy_exporter_source_up{source!="replay"} == 0',
            'for': '10m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'A codedeploy-exporter event source is down.',
              description: 'Source {{ $labels.source }} of {{ $labels.instance }} has been down for 10 minutes; deployments are not being recorded from it.',
            },
          },
          {
            alert: 'CodeDeployExporterIngestLagHigh',
            expr: |||
              histogram_quantile(0.9, rate(codedeploy_exporter_event_lag_seconds_bucket{source!="replay"}[15m])) > 600
            |||,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'CodeDeploy events reach the exporter late.',
              description: '90% of the events from source {{ $labels.source }} of {{ $labels.instance }} took up to {{ $value | humanizeDuration }} from their own time to being applied.',
            },
          },
          // Authenticated messages only: requests that fail authentication (forged SNS
          // deliveries, which anyone can send) are counted apart, in
          // codedeploy_exporter_unauthenticated_requests_total, and must not page.
          {
            alert: 'CodeDeployExporterEventsRejected',
            expr: |||
              increase(codedeploy_exporter_events_total{outcome="rejected"}[30m]) > 0.5
            |||,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'codedeploy-exporter rejects events it cannot decode.',
              description: '{{ $labels.instance }} rejected {{ printf "%.0f" $value }} authenticated message(s) from source {{ $labels.source }} in the last 30 minutes.',
            },
          },
          {
            alert: 'CodeDeployExporterAWSThrottling',
            expr: |||
              sum without (operation, outcome) (rate(codedeploy_exporter_aws_requests_total{outcome="throttled"}[15m]))
              /
              sum without (operation, outcome) (rate(codedeploy_exporter_aws_requests_total[15m]))
              > 0.1
            |||,
            'for': '15m',
            labels: { severity: 'warning' },
            annotations: {
              summary: 'AWS throttles codedeploy-exporter.',
              description: '{{ $value | humanizePercentage }} of the {{ $labels.service }} requests of {{ $labels.instance }} were throttled over the last 15 minutes.',
            },
          },
          {
            alert: 'CodeDeployExporterLimited',
            expr: |||
              increase(codedeploy_exporter_limited_total[30m]) > 0.5
            |||,
            labels: { severity: 'warning' },
            annotations: {
              summary: 'codedeploy-exporter refused input, or counted label values as other, at one of its bounds.',
              description: '{{ $labels.instance }} ran into its {{ $labels.limit }} bound {{ printf "%.0f" $value }} time(s) in the last 30 minutes.',
            },
          },
          {
            alert: 'CodeDeployExporterDataQualityIssues',
            expr: |||
              increase(codedeploy_exporter_data_quality_issues_total[1h]) > 0.5
            |||,
            labels: { severity: 'info' },
            annotations: {
              summary: 'codedeploy-exporter corrected inconsistent deployment data.',
              description: '{{ $labels.instance }} counted {{ printf "%.0f" $value }} data-quality issue(s) of kind {{ $labels.reason }} in the last hour.',
            },
          },
        ],
      },
    ],
  },
}
