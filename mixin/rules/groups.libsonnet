// The deployment groups the dashboards' variables list, with the labels of their tags.
// Rendered into alerts/codedeploy.rules.yml.
{
  local config = $._config,

  prometheusRules+:: {
    groups+: [
      {
        name: 'codedeploy-groups',
        renderTo:: 'codedeploy.rules.yml',
        rules: [
          // One series per known group: its codedeploy_deployment_group_info (the tag
          // labels environment, team… and production), or, for a group the exporter gives
          // no info series for (an exporter older than that metric), a series without tag
          // labels, so that the dashboards list every group either way.
          {
            record: 'deployment_group:codedeploy_deployment_group_info:max',
            expr: |||
              max without (%(replicaLabels)s) (codedeploy_deployment_group_info)
              or on (account_id, region, application, deployment_group)
              max without (%(replicaLabels)s) (codedeploy_deployments_in_progress * 0 + 1)
            ||| % config,
          },
        ],
      },
    ],
  },
}
