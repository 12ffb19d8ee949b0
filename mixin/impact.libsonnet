// Post-deployment impact (issue 14): the mappings from an application's health metrics
// to deployment groups (`_config.impact`), and the rules and alerts built on them.
// Nothing is mapped yet, so this part renders no rule.
{
  _config+:: {
    impact+: {},
  },
}
