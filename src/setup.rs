//! `codedeploy-exporter setup`: creates or updates, idempotently, the AWS side
//! of the SQS source, and prints the IAM policy the exporter needs.
//!
//! Per `--sqs.queue-name` (repeat it for one queue per replica): a
//! dead-letter queue `NAME-dlq`, the queue with a redrive policy to it, and a
//! queue policy that lets the rule send to it. One EventBridge rule matching
//! `source: aws.codedeploy` and both CodeDeploy detail types, with one SQS
//! target per queue. Every step reads the current state first and changes only
//! what differs; `--dry-run` prints the plan and changes nothing.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Context;
use aws_sdk_sqs::types::QueueAttributeName;
use clap::Args;
use serde_json::{json, Value};

use crate::sources::aws::{error_text, partition, Aws, NoSink};

/// The detail types the rule matches.
pub const DETAIL_TYPES: [&str; 2] =
    ["CodeDeploy Deployment State-change Notification", "CodeDeploy Instance State-change Notification"];
/// How long the DLQ keeps messages: the SQS maximum, 14 days.
const DLQ_RETENTION_SECONDS: u32 = 1_209_600;
/// How long the queue keeps messages: 4 days (the SQS default).
const QUEUE_RETENTION_SECONDS: u32 = 345_600;

#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    /// Queue to create (repeatable, or comma-separated: one queue per exporter
    /// replica); each gets a dead-letter queue named NAME-dlq.
    #[arg(long = "sqs.queue-name", env = "CODEDEPLOY_EXPORTER_SETUP_QUEUE_NAME", value_delimiter = ',', default_value = "codedeploy-exporter")]
    pub queue_names: Vec<String>,

    /// Receives before a message that cannot be processed moves to the dead-letter queue.
    #[arg(long = "sqs.max-receive-count", env = "CODEDEPLOY_EXPORTER_SETUP_MAX_RECEIVE_COUNT", default_value_t = 5)]
    pub max_receive_count: u32,

    /// Name of the EventBridge rule.
    #[arg(long = "eventbridge.rule-name", env = "CODEDEPLOY_EXPORTER_SETUP_RULE_NAME", default_value = "codedeploy-exporter")]
    pub rule_name: String,

    /// Event bus the rule is on (CodeDeploy sends to the default bus).
    #[arg(long = "eventbridge.bus-name", env = "CODEDEPLOY_EXPORTER_SETUP_BUS_NAME", default_value = "default")]
    pub bus_name: String,

    /// Region to create everything in. Default: the SDK's (AWS_REGION, the profile).
    #[arg(long = "aws.region", env = "CODEDEPLOY_EXPORTER_AWS_REGION")]
    pub region: Option<String>,

    /// Endpoint of every AWS call instead of AWS's own (a fake AWS in tests).
    #[arg(long = "aws.endpoint-url", env = "CODEDEPLOY_EXPORTER_AWS_ENDPOINT_URL")]
    pub endpoint_url: Option<String>,

    /// Roles the exporter will assume (`serve --aws.role-arn`), for the printed IAM policy.
    #[arg(long = "aws.role-arn", env = "CODEDEPLOY_EXPORTER_AWS_ROLE_ARN", value_delimiter = ',')]
    pub role_arns: Vec<String>,

    /// Print the plan (read-only calls only) and change nothing.
    #[arg(long = "dry-run", env = "CODEDEPLOY_EXPORTER_SETUP_DRY_RUN")]
    pub dry_run: bool,
}

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Create,
    Update,
    Unchanged,
}

impl Change {
    fn label(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One line of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub change: Change,
    pub what: String,
}

/// What `setup` did (or would do).
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub steps: Vec<Step>,
    /// URLs of the queues, for `serve --sqs.queue-url`.
    pub queue_urls: Vec<String>,
    pub queue_arns: Vec<String>,
    pub rule_arn: String,
}

/// The rule's event pattern.
pub fn event_pattern() -> Value {
    json!({ "source": ["aws.codedeploy"], "detail-type": DETAIL_TYPES })
}

/// The queue policy that lets the rule (and only it) send to the queue.
pub fn queue_policy(queue_arn: &str, rule_arn: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowCodeDeployEventsFromTheRule",
            "Effect": "Allow",
            "Principal": { "Service": "events.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": rule_arn } }
        }]
    })
}

/// The least-privilege IAM policy of the exporter (`serve`): read CodeDeploy
/// deployments, and groups with their tags, consume the queues, assume the
/// other accounts' roles.
pub fn iam_policy(queue_arns: &[String], role_arns: &[String]) -> Value {
    let mut statements = vec![json!({
        "Sid": "ReadCodeDeployDeployments",
        "Effect": "Allow",
        "Action": [
            "codedeploy:BatchGetDeployments",
            "codedeploy:BatchGetDeploymentTargets",
            "codedeploy:ListDeployments",
            "codedeploy:ListDeploymentTargets"
        ],
        "Resource": "*"
    })];
    // For codedeploy_deployment_group_info (see crate::sources::aws::group_info).
    statements.push(json!({
        "Sid": "ReadCodeDeployGroups",
        "Effect": "Allow",
        "Action": ["codedeploy:GetDeploymentGroup", "codedeploy:ListTagsForResource"],
        "Resource": "*"
    }));
    if !queue_arns.is_empty() {
        statements.push(json!({
            "Sid": "ConsumeCodeDeployEvents",
            "Effect": "Allow",
            "Action": ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:ReceiveMessage"],
            "Resource": queue_arns
        }));
    }
    if !role_arns.is_empty() {
        statements.push(json!({
            "Sid": "PollOtherAccounts",
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Resource": role_arns
        }));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}


/// `Policy` and `RedrivePolicy` come back as JSON strings; numbers sometimes as strings.
fn same_json(current: Option<&String>, desired: &Value) -> bool {
    let Some(current) = current.and_then(|c| serde_json::from_str::<Value>(c).ok()) else { return false };
    normalize(&current) == normalize(desired)
}

fn normalize(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect()),
        other => other.clone(),
    }
}

struct Setup<'a> {
    args: &'a SetupArgs,
    sqs: aws_sdk_sqs::Client,
    events: aws_sdk_eventbridge::Client,
    region: String,
    account: String,
    outcome: Outcome,
}

impl Setup<'_> {
    fn step(&mut self, change: Change, what: impl Into<String>) {
        self.outcome.steps.push(Step { change, what: what.into() });
    }

    fn queue_arn(&self, name: &str) -> String {
        format!("arn:{}:sqs:{}:{}:{name}", partition(&self.region), self.region, self.account)
    }

    fn rule_arn(&self) -> String {
        let path = if self.args.bus_name == "default" {
            self.args.rule_name.clone()
        } else {
            format!("{}/{}", self.args.bus_name, self.args.rule_name)
        };
        format!("arn:{}:events:{}:{}:rule/{path}", partition(&self.region), self.region, self.account)
    }

    /// The queue's URL and attributes, or `None` when it does not exist.
    async fn read_queue(&self, name: &str) -> anyhow::Result<Option<(String, HashMap<String, String>)>> {
        let url = match self.sqs.get_queue_url().queue_name(name).send().await {
            Ok(output) => output.queue_url.context("GetQueueUrl returned no URL")?,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_queue_does_not_exist()) => return Ok(None),
            Err(e) => anyhow::bail!("GetQueueUrl {name}: {}", error_text(&e)),
        };
        let attributes = self
            .sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::All)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GetQueueAttributes {name}: {}", error_text(&e)))?
            .attributes
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.as_str().to_owned(), v))
            .collect();
        Ok(Some((url, attributes)))
    }

    /// Creates the queue with `desired` attributes, or sets those that differ.
    async fn ensure_queue(&mut self, name: &str, desired: Vec<(QueueAttributeName, String)>) -> anyhow::Result<String> {
        match self.read_queue(name).await? {
            None => {
                self.step(Change::Create, format!("SQS queue {name}"));
                if self.args.dry_run {
                    return Ok(format!("(to be created: {name})"));
                }
                let mut request = self.sqs.create_queue().queue_name(name);
                for (key, value) in desired {
                    request = request.attributes(key, value);
                }
                let output = request.send().await.map_err(|e| anyhow::anyhow!("CreateQueue {name}: {}", error_text(&e)))?;
                output.queue_url.context("CreateQueue returned no URL")
            }
            Some((url, current)) => {
                let differing: Vec<(QueueAttributeName, String)> = desired
                    .into_iter()
                    .filter(|(key, value)| {
                        let now = current.get(key.as_str());
                        match serde_json::from_str::<Value>(value) {
                            Ok(json @ Value::Object(_)) => !same_json(now, &json),
                            _ => now != Some(value),
                        }
                    })
                    .collect();
                if differing.is_empty() {
                    self.step(Change::Unchanged, format!("SQS queue {name}"));
                    return Ok(url);
                }
                let keys: Vec<&str> = differing.iter().map(|(k, _)| k.as_str()).collect();
                self.step(Change::Update, format!("SQS queue {name}: {}", keys.join(", ")));
                if !self.args.dry_run {
                    let mut request = self.sqs.set_queue_attributes().queue_url(&url);
                    for (key, value) in differing {
                        request = request.attributes(key, value);
                    }
                    request.send().await.map_err(|e| anyhow::anyhow!("SetQueueAttributes {name}: {}", error_text(&e)))?;
                }
                Ok(url)
            }
        }
    }

    async fn ensure_rule(&mut self) -> anyhow::Result<String> {
        let args = self.args;
        let pattern = event_pattern();
        let current = match self.events.describe_rule().name(&args.rule_name).event_bus_name(&args.bus_name).send().await {
            Ok(rule) => Some(rule),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => None,
            Err(e) => anyhow::bail!("DescribeRule {}: {}", args.rule_name, error_text(&e)),
        };
        let what = format!("EventBridge rule {} on bus {} (source aws.codedeploy, both detail types)", args.rule_name, args.bus_name);
        let change = match &current {
            None => Change::Create,
            Some(rule) => {
                let same_pattern = rule
                    .event_pattern
                    .as_deref()
                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                    .is_some_and(|p| p == pattern);
                let enabled = rule.state.as_ref().is_some_and(|s| s.as_str() == "ENABLED");
                if same_pattern && enabled {
                    Change::Unchanged
                } else {
                    Change::Update
                }
            }
        };
        self.step(change, what);
        let known_arn = current.and_then(|r| r.arn);
        if change == Change::Unchanged || self.args.dry_run {
            return Ok(known_arn.unwrap_or_else(|| self.rule_arn()));
        }
        let output = self
            .events
            .put_rule()
            .name(&args.rule_name)
            .event_bus_name(&args.bus_name)
            .event_pattern(pattern.to_string())
            .state(aws_sdk_eventbridge::types::RuleState::Enabled)
            .description("CodeDeploy deployment and instance state changes for codedeploy-exporter")
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutRule {}: {}", args.rule_name, error_text(&e)))?;
        Ok(output.rule_arn.unwrap_or_else(|| self.rule_arn()))
    }

    async fn ensure_targets(&mut self, queues: &[(String, String)]) -> anyhow::Result<()> {
        let args = self.args;
        let current: Vec<(String, String)> = if self.outcome.steps.iter().any(|s| s.what.starts_with("EventBridge rule") && s.change == Change::Create) {
            Vec::new()
        } else {
            self.events
                .list_targets_by_rule()
                .rule(&args.rule_name)
                .event_bus_name(&args.bus_name)
                .send()
                .await
                .map_err(|e| anyhow::anyhow!("ListTargetsByRule {}: {}", args.rule_name, error_text(&e)))?
                .targets
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.id, t.arn))
                .collect()
        };
        let mut missing = Vec::new();
        for (name, arn) in queues {
            let target_id = target_id(name);
            match current.iter().find(|(id, _)| *id == target_id) {
                Some((_, existing)) if existing == arn => {
                    self.step(Change::Unchanged, format!("rule target {target_id} → {arn}"));
                }
                Some(_) => {
                    self.step(Change::Update, format!("rule target {target_id} → {arn}"));
                    missing.push((target_id, arn.clone()));
                }
                None => {
                    self.step(Change::Create, format!("rule target {target_id} → {arn}"));
                    missing.push((target_id, arn.clone()));
                }
            }
        }
        if missing.is_empty() || self.args.dry_run {
            return Ok(());
        }
        let targets = missing
            .into_iter()
            .map(|(id, arn)| aws_sdk_eventbridge::types::Target::builder().id(id).arn(arn).build())
            .collect::<Result<Vec<_>, _>>()
            .context("building the rule targets")?;
        let output = self
            .events
            .put_targets()
            .rule(&args.rule_name)
            .event_bus_name(&args.bus_name)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("PutTargets {}: {}", args.rule_name, error_text(&e)))?;
        if output.failed_entry_count > 0 {
            anyhow::bail!("PutTargets {}: {} targets failed: {:?}", args.rule_name, output.failed_entry_count, output.failed_entries);
        }
        Ok(())
    }
}

/// A rule target's id: the queue name, within EventBridge's 64 characters.
fn target_id(queue_name: &str) -> String {
    queue_name.chars().take(64).collect()
}

fn valid_queue_name(name: &str) -> bool {
    // NAME-dlq must fit SQS's 80 characters too.
    !name.is_empty() && name.len() <= 76 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Runs `setup` and writes its report (plan, queue URLs, IAM policy) to `out`.
pub async fn run(args: &SetupArgs, out: &mut dyn Write) -> anyhow::Result<Outcome> {
    if let Some(bad) = args.queue_names.iter().find(|n| !valid_queue_name(n)) {
        anyhow::bail!("--sqs.queue-name {bad:?}: use 1–76 letters, digits, '-' or '_' (the DLQ adds \"-dlq\")");
    }
    if !(1..=1000).contains(&args.max_receive_count) {
        anyhow::bail!("--sqs.max-receive-count must be between 1 and 1000, got {}", args.max_receive_count);
    }
    let aws = Aws::load(args.endpoint_url.as_deref(), args.region.as_deref(), 3, std::sync::Arc::new(NoSink)).await;
    let region = args.region.clone().or_else(|| aws.default_region()).context(
        "no region: give --aws.region (or set AWS_REGION)",
    )?;
    let account = aws.own_account(&region).await.map_err(|e| anyhow::anyhow!("STS GetCallerIdentity: {e}"))?;
    let config = aws.config_for(&region, None).await;
    let mut setup = Setup {
        args,
        sqs: aws.sqs(&config),
        events: aws.eventbridge(&config),
        region,
        account,
        outcome: Outcome::default(),
    };
    let rule_arn = setup.ensure_rule().await?;
    let mut queues = Vec::new();
    for name in &args.queue_names {
        let dlq_name = format!("{name}-dlq");
        let dlq_arn = setup.queue_arn(&dlq_name);
        setup
            .ensure_queue(&dlq_name, vec![(QueueAttributeName::MessageRetentionPeriod, DLQ_RETENTION_SECONDS.to_string())])
            .await?;
        let queue_arn = setup.queue_arn(name);
        let redrive = json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": args.max_receive_count });
        let url = setup
            .ensure_queue(
                name,
                vec![
                    (QueueAttributeName::VisibilityTimeout, crate::sources::aws::sqs::VISIBILITY_SECONDS.to_string()),
                    (QueueAttributeName::ReceiveMessageWaitTimeSeconds, crate::sources::aws::sqs::WAIT_SECONDS.to_string()),
                    (QueueAttributeName::MessageRetentionPeriod, QUEUE_RETENTION_SECONDS.to_string()),
                    (QueueAttributeName::RedrivePolicy, redrive.to_string()),
                    (QueueAttributeName::Policy, queue_policy(&queue_arn, &rule_arn).to_string()),
                ],
            )
            .await?;
        setup.outcome.queue_urls.push(url);
        setup.outcome.queue_arns.push(queue_arn.clone());
        queues.push((name.clone(), queue_arn));
    }
    setup.ensure_targets(&queues).await?;
    setup.outcome.rule_arn = rule_arn;

    let outcome = setup.outcome;
    let verb = if args.dry_run { "Plan (dry run: nothing changed)" } else { "Done" };
    writeln!(out, "{verb}:")?;
    for step in &outcome.steps {
        writeln!(out, "  {:<9} {}", step.change.label(), step.what)?;
    }
    writeln!(out)?;
    for url in &outcome.queue_urls {
        writeln!(out, "serve with: --sqs.queue-url {url}")?;
    }
    writeln!(out)?;
    writeln!(out, "IAM policy the exporter needs:")?;
    writeln!(out, "{}", serde_json::to_string_pretty(&iam_policy(&outcome.queue_arns, &args.role_arns))?)?;
    Ok(outcome)
}

/// The `setup` command.
pub fn run_command(args: &SetupArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        let mut stdout = std::io::stdout().lock();
        run(args, &mut stdout).await.map(|_| ())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_compare_semantically() {
        let desired = json!({"deadLetterTargetArn": "arn:x", "maxReceiveCount": 5});
        assert!(same_json(Some(&r#"{"maxReceiveCount":"5","deadLetterTargetArn":"arn:x"}"#.to_owned()), &desired));
        assert!(!same_json(Some(&r#"{"maxReceiveCount":3,"deadLetterTargetArn":"arn:x"}"#.to_owned()), &desired));
        assert!(!same_json(None, &desired));
    }

    #[test]
    fn arns_follow_the_partition() {
        assert_eq!(partition("cn-north-1"), "aws-cn");
        assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
        assert_eq!(partition("eu-west-1"), "aws");
    }

    #[test]
    fn the_policy_names_only_what_is_used() {
        let policy = iam_policy(&[], &[]);
        let sids: Vec<&str> = policy["Statement"].as_array().into_iter().flatten().filter_map(|s| s["Sid"].as_str()).collect();
        assert_eq!(sids, ["ReadCodeDeployDeployments", "ReadCodeDeployGroups"]);
        assert_eq!(policy["Statement"][1]["Action"], json!(["codedeploy:GetDeploymentGroup", "codedeploy:ListTagsForResource"]));
        let policy = iam_policy(&["arn:aws:sqs:us-east-1:1:q".into()], &["arn:aws:iam::2:role/r".into()]);
        assert_eq!(policy["Statement"].as_array().map(Vec::len), Some(4));
    }
}
