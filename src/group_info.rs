//! What is known of each deployment group besides its deployments, and the
//! `codedeploy_deployment_group_info` series it becomes.
//!
//! Deployment groups are usually environments and applications belong to
//! teams; AWS users say so with tags. `serve`'s poller reads each group of
//! the accounts and regions it polls (GetDeploymentGroup, and
//! ListTagsForResource on the group's and the application's ARNs; see
//! [`crate::sources::aws::group_info`]) into a [`GroupInfo`], kept in a
//! [`GroupInfoTable`] that the store persists, so a restart shows the same
//! series before the next refresh. `demo` gives its simulated groups one
//! directly. Every other group (events from accounts the exporter has no
//! credentials for, `replay`, a webhook-only set-up) is shown from what its
//! deployments say: the compute platform they carry, `deployment_config`
//! `unknown`, every tag label empty.
//!
//! Which tags become labels is `--labels.from-tags`; whether a group is
//! production is [`GroupLabels::is_production`].

use std::collections::{BTreeMap, BTreeSet};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::domain::Millis;
use crate::ledger::limits::{MAX_LABEL_CHARS, OTHER};
use crate::ledger::GroupKey;

/// The labels of the info series that no tag may take: the group's own, the
/// ones the exporter sets, and the ones Prometheus gives every target.
pub const FIXED_LABELS: [&str; 7] =
    ["account_id", "region", "application", "deployment_group", "compute_platform", "deployment_config", "production"];
const TARGET_LABELS: [&str; 2] = ["job", "instance"];

/// The label whose value says whether a group is production.
pub const ENVIRONMENT_LABEL: &str = "environment";

/// What `deployment_config` and `compute_platform` show when nothing said them:
/// the word `codedeploy_deployments_total` uses for the same.
pub const UNKNOWN: &str = "unknown";

/// The flags that shape the info series, shared by `serve`, `demo` and `replay`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GroupLabelArgs {
    /// Tags that become labels of codedeploy_deployment_group_info, as
    /// KEY[=LABEL] (repeatable, or comma-separated), e.g.
    /// `Environment=environment,team`. A group's own tag wins over its
    /// application's; a group with neither shows "". KEY is matched exactly;
    /// LABEL defaults to KEY and is made a valid label name (other
    /// characters become `_`). `demo` defaults to `Environment=environment,Team=team`.
    #[arg(long = "labels.from-tags", env = "CODEDEPLOY_EXPORTER_LABELS_FROM_TAGS", value_delimiter = ',', value_name = "KEY[=LABEL]")]
    pub from_tags: Vec<String>,

    /// Which groups are production when no tag maps to the `environment`
    /// label: a regular expression over `application/deployment_group`,
    /// matched whole. With an `environment` label, a group is production when
    /// that label is `prod` or `production` (any case) and this flag may not
    /// be given. [default: .*]
    #[arg(long = "dora.production-groups", env = "CODEDEPLOY_EXPORTER_DORA_PRODUCTION_GROUPS", value_name = "REGEX")]
    pub production_groups: Option<String>,
}

/// Why the label flags are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupLabelError {
    #[error("--labels.from-tags {0:?}: expected KEY or KEY=LABEL with a non-empty KEY and LABEL")]
    Syntax(String),
    #[error("--labels.from-tags {spec:?}: the label {label:?} is one the info series has already ({fixed}); choose another with KEY=LABEL")]
    Fixed { spec: String, label: String, fixed: String },
    #[error("--labels.from-tags {spec:?}: Prometheus sets the label {label:?} on every series of a target; choose another with KEY=LABEL")]
    TargetLabel { spec: String, label: String },
    #[error("--labels.from-tags {spec:?}: label names starting with __ are reserved by Prometheus")]
    Reserved { spec: String },
    #[error("--labels.from-tags: {first:?} and {second:?} both become the label {label:?}")]
    Duplicate { first: String, second: String, label: String },
    #[error("--dora.production-groups {pattern:?} is not a regular expression: {detail}")]
    Regex { pattern: String, detail: String },
    #[error("--dora.production-groups cannot be combined with a tag mapped to the environment label (the tag {key:?}): production then follows that label")]
    ProductionAndEnvironment { key: String },
}

/// One tag that becomes a label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagLabel {
    /// The tag key, as AWS has it (case-sensitive).
    pub key: String,
    /// The label name, valid Prometheus syntax.
    pub label: String,
}

/// The validated label flags.
#[derive(Debug, Clone)]
pub struct GroupLabels {
    /// Sorted by label name: the order of the series' labels.
    tags: Vec<TagLabel>,
    /// `None` when a tag maps to [`ENVIRONMENT_LABEL`].
    production_groups: Option<regex_lite::Regex>,
}

impl Default for GroupLabels {
    /// No tag label, and every group production.
    fn default() -> GroupLabels {
        GroupLabelArgs::default().validate().expect("the defaults are valid")
    }
}

/// `raw` as a Prometheus label name: every character outside `[a-zA-Z0-9_]`
/// becomes `_`, and a leading digit gets a `_` before it.
pub fn sanitize_label_name(raw: &str) -> String {
    let mut name: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    name
}

/// Parses `--labels.from-tags`: each KEY[=LABEL] with its label sanitised,
/// none colliding with a fixed label, a target label or another tag's.
pub fn parse_from_tags(specs: &[String]) -> Result<Vec<TagLabel>, GroupLabelError> {
    let mut tags: Vec<(TagLabel, &str)> = Vec::new();
    for spec in specs.iter().filter(|s| !s.trim().is_empty()) {
        let (key, label) = match spec.split_once('=') {
            Some((key, label)) => (key.trim(), label.trim()),
            None => (spec.trim(), spec.trim()),
        };
        if key.is_empty() || label.is_empty() {
            return Err(GroupLabelError::Syntax(spec.clone()));
        }
        let label = sanitize_label_name(label);
        if label.starts_with("__") {
            return Err(GroupLabelError::Reserved { spec: spec.clone() });
        }
        if FIXED_LABELS.contains(&label.as_str()) {
            return Err(GroupLabelError::Fixed { spec: spec.clone(), label, fixed: FIXED_LABELS.join(", ") });
        }
        if TARGET_LABELS.contains(&label.as_str()) {
            return Err(GroupLabelError::TargetLabel { spec: spec.clone(), label });
        }
        if let Some((_, first)) = tags.iter().find(|(t, _)| t.label == label) {
            return Err(GroupLabelError::Duplicate { first: (*first).to_owned(), second: spec.clone(), label });
        }
        tags.push((TagLabel { key: key.to_owned(), label }, spec));
    }
    let mut tags: Vec<TagLabel> = tags.into_iter().map(|(tag, _)| tag).collect();
    tags.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(tags)
}

impl GroupLabelArgs {
    pub fn validate(&self) -> Result<GroupLabels, GroupLabelError> {
        let tags = parse_from_tags(&self.from_tags)?;
        let environment = tags.iter().position(|t| t.label == ENVIRONMENT_LABEL);
        let production_groups = match (environment, &self.production_groups) {
            (Some(at), Some(_)) => return Err(GroupLabelError::ProductionAndEnvironment { key: tags[at].key.clone() }),
            (Some(_), None) => None,
            (None, pattern) => {
                let pattern = pattern.as_deref().unwrap_or(".*");
                let anchored = format!("^(?:{pattern})$");
                let regex = regex_lite::Regex::new(&anchored)
                    .map_err(|e| GroupLabelError::Regex { pattern: pattern.to_owned(), detail: e.to_string() })?;
                Some(regex)
            }
        };
        Ok(GroupLabels { tags, production_groups })
    }
}

impl GroupLabels {
    /// The tags that become labels, sorted by label.
    pub fn tags(&self) -> &[TagLabel] {
        &self.tags
    }

    /// The tag keys asked for, sorted: what a [`GroupInfo`] fetched under
    /// these flags holds values of.
    pub fn tag_keys(&self) -> BTreeSet<CompactString> {
        self.tags.iter().map(|t| CompactString::from(t.key.as_str())).collect()
    }

    /// Whether the group is production: by its `environment` label when a
    /// tag maps to it (`prod` or `production`, any case), else by
    /// `--dora.production-groups` over `application/deployment_group`.
    pub fn is_production(&self, key: &GroupKey, environment: &str) -> bool {
        match &self.production_groups {
            None => ["prod", "production"].iter().any(|p| environment.eq_ignore_ascii_case(p)),
            Some(regex) => regex.is_match(&format!("{}/{}", key.application, key.deployment_group)),
        }
    }

    /// The info series' values of one group: from `info` when the group was
    /// read from AWS (or the demo), else from what its deployments said
    /// (`platform_seen`).
    pub fn row(&self, key: &GroupKey, info: Option<&GroupInfo>, platform_seen: Option<&str>) -> InfoRow {
        let platform = info.and_then(|i| i.compute_platform.as_deref()).or(platform_seen).unwrap_or(UNKNOWN);
        let config = info.and_then(|i| i.deployment_config.as_deref()).unwrap_or(UNKNOWN);
        let tags: Vec<CompactString> = self
            .tags
            .iter()
            .map(|t| info.and_then(|i| i.tags.get(t.key.as_str())).cloned().unwrap_or_default())
            .collect();
        let environment = self.tags.iter().position(|t| t.label == ENVIRONMENT_LABEL).map_or("", |at| tags[at].as_str());
        InfoRow {
            compute_platform: platform.into(),
            deployment_config: config.into(),
            production: self.is_production(key, environment),
            tags,
        }
    }
}

/// One group as read from AWS: GetDeploymentGroup's compute platform and
/// default deployment configuration, and the values of the tags asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupInfo {
    /// `None` when AWS did not say (the group no longer exists).
    pub compute_platform: Option<CompactString>,
    pub deployment_config: Option<CompactString>,
    /// Tag key → value, the group's tag over its application's; only the keys
    /// asked for that either carries.
    pub tags: BTreeMap<CompactString, CompactString>,
    /// The keys `--labels.from-tags` asked for when this was read: other
    /// flags after a restart make the group due at once.
    pub asked: BTreeSet<CompactString>,
    /// When it was read (ms): the next refresh is `--tags.refresh-interval` later.
    pub fetched_at: Millis,
}

impl GroupInfo {
    /// Combines what AWS said of a group: of the `asked` keys, the group's
    /// tags win over its application's.
    pub fn new(
        compute_platform: Option<&str>,
        deployment_config: Option<&str>,
        asked: &BTreeSet<CompactString>,
        group_tags: &[(String, String)],
        application_tags: &[(String, String)],
        fetched_at: Millis,
    ) -> GroupInfo {
        let mut tags = BTreeMap::new();
        // Application first, so that the group's own tag overwrites it.
        for (key, value) in application_tags.iter().chain(group_tags) {
            if asked.contains(key.as_str()) {
                tags.insert(CompactString::from(key.as_str()), CompactString::from(value.as_str()));
            }
        }
        GroupInfo {
            compute_platform: compute_platform.map(Into::into),
            deployment_config: deployment_config.map(Into::into),
            tags,
            asked: asked.clone(),
            fetched_at,
        }
    }

    /// Replaces every value longer than [`MAX_LABEL_CHARS`] with `other`;
    /// returns how many it replaced.
    fn bound(&mut self) -> usize {
        let too_long = |v: &CompactString| v.len() > MAX_LABEL_CHARS && v.chars().count() > MAX_LABEL_CHARS;
        let mut bounded = 0;
        let values = self.tags.values_mut().chain(self.compute_platform.iter_mut()).chain(self.deployment_config.iter_mut());
        for value in values {
            if too_long(value) {
                *value = OTHER.into();
                bounded += 1;
            }
        }
        bounded
    }

    /// Everything but the time it was read.
    fn same_facts(&self, other: &GroupInfo) -> bool {
        self.compute_platform == other.compute_platform
            && self.deployment_config == other.deployment_config
            && self.tags == other.tags
            && self.asked == other.asked
    }
}

/// The values of one info series besides the group's own labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoRow {
    pub compute_platform: CompactString,
    pub deployment_config: CompactString,
    pub production: bool,
    /// One per [`GroupLabels::tags`], in that order.
    pub tags: Vec<CompactString>,
}

/// The info series of an exposition: label names, and one row per group of
/// the snapshot, in its order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InfoSeries {
    pub tag_labels: Vec<String>,
    pub rows: Vec<InfoRow>,
}

/// The groups read from AWS, and which changed since the last commit.
#[derive(Debug, Clone, Default)]
pub struct GroupInfoTable {
    entries: BTreeMap<GroupKey, GroupInfo>,
    changed: BTreeSet<GroupKey>,
}

impl GroupInfoTable {
    /// Continues from what a store held.
    pub fn restore(entries: impl IntoIterator<Item = (GroupKey, GroupInfo)>) -> GroupInfoTable {
        GroupInfoTable { entries: entries.into_iter().collect(), changed: BTreeSet::new() }
    }

    pub fn get(&self, key: &GroupKey) -> Option<&GroupInfo> {
        self.entries.get(key)
    }

    /// Takes what was read of a group, its values bounded; returns how many
    /// values were bounded when it says something new (a value read again
    /// is not counted again). A read older than the one held changes nothing.
    pub fn apply(&mut self, key: GroupKey, mut info: GroupInfo) -> usize {
        let bounded = info.bound();
        let held = self.entries.get(&key);
        if held.is_some_and(|held| held.fetched_at > info.fetched_at) {
            return 0;
        }
        let new_facts = held.is_none_or(|held| !held.same_facts(&info));
        self.changed.insert(key.clone());
        self.entries.insert(key, info);
        if new_facts {
            bounded
        } else {
            0
        }
    }

    /// Of `groups`, those to read now: never read, read under other
    /// `--labels.from-tags`, or read `refresh_ms` ago or longer.
    pub fn due<'a>(
        &self,
        groups: impl IntoIterator<Item = &'a GroupKey>,
        asked: &BTreeSet<CompactString>,
        refresh_ms: Millis,
        now: Millis,
    ) -> Vec<GroupKey> {
        groups
            .into_iter()
            .filter(|key| match self.entries.get(*key) {
                None => true,
                Some(info) => info.asked != *asked || info.fetched_at + refresh_ms <= now,
            })
            .cloned()
            .collect()
    }

    /// What the next commit must write.
    pub fn changes(&self) -> Vec<(&GroupKey, &GroupInfo)> {
        self.changed.iter().filter_map(|key| self.entries.get_key_value(key)).collect()
    }

    pub fn mark_committed(&mut self) {
        self.changed.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(from_tags: &[&str], production_groups: Option<&str>) -> GroupLabelArgs {
        GroupLabelArgs {
            from_tags: from_tags.iter().map(|s| (*s).to_owned()).collect(),
            production_groups: production_groups.map(str::to_owned),
        }
    }

    fn key(application: &str, group: &str) -> GroupKey {
        GroupKey {
            account_id: "111111111111".into(),
            region: "us-east-1".into(),
            application: application.into(),
            deployment_group: group.into(),
        }
    }

    #[test]
    fn tag_keys_become_valid_label_names() {
        assert_eq!(sanitize_label_name("team"), "team");
        assert_eq!(sanitize_label_name("cost-center"), "cost_center");
        assert_eq!(sanitize_label_name("aws:cloudformation:stack-name"), "aws_cloudformation_stack_name");
        assert_eq!(sanitize_label_name("1st owner"), "_1st_owner");
        assert_eq!(sanitize_label_name("Équipe"), "_quipe");
        let tags = parse_from_tags(&["Environment=environment".into(), "team".into(), "cost-center".into()]).expect("valid");
        let pairs: Vec<(&str, &str)> = tags.iter().map(|t| (t.key.as_str(), t.label.as_str())).collect();
        assert_eq!(pairs, [("cost-center", "cost_center"), ("Environment", "environment"), ("team", "team")]);
    }

    #[test]
    fn bad_mappings_are_explained() {
        let error = |specs: &[&str]| args(specs, None).validate().expect_err("invalid").to_string();
        assert!(error(&["=env"]).contains("expected KEY or KEY=LABEL"), "{}", error(&["=env"]));
        assert!(error(&["Env="]).contains("expected KEY or KEY=LABEL"));
        let fixed = error(&["Region=region"]);
        assert!(fixed.contains("\"region\" is one the info series has already"), "{fixed}");
        assert!(error(&["production"]).contains("has already"));
        assert!(error(&["Job=job"]).contains("Prometheus sets the label \"job\""));
        assert!(error(&["__meta"]).contains("reserved"));
        let twice = error(&["team", "Team=team"]);
        assert!(twice.contains("\"team\" and \"Team=team\" both become the label \"team\""), "{twice}");
        assert!(error(&["a-b", "a_b"]).contains("both become the label \"a_b\""));
    }

    #[test]
    fn the_production_regex_is_checked_and_matched_whole() {
        let error = args(&[], Some("(unclosed")).validate().expect_err("invalid").to_string();
        assert!(error.starts_with("--dora.production-groups \"(unclosed\" is not a regular expression"), "{error}");
        let labels = args(&[], Some("shop/prod|.*/live")).validate().expect("valid");
        assert!(labels.is_production(&key("shop", "prod"), ""));
        assert!(labels.is_production(&key("api", "live"), ""));
        assert!(!labels.is_production(&key("shop", "prod-canary"), ""), "anchored at both ends");
        assert!(!labels.is_production(&key("shop", "staging"), ""));
        assert!(GroupLabels::default().is_production(&key("any", "thing"), ""), "every group by default");
    }

    #[test]
    fn an_environment_label_decides_production() {
        let labels = args(&["Env=environment", "team"], None).validate().expect("valid");
        for (environment, production) in
            [("prod", true), ("Production", true), ("PROD", true), ("staging", false), ("preprod", false), ("", false)]
        {
            assert_eq!(labels.is_production(&key("shop", "prod"), environment), production, "{environment:?}");
        }
        let error = args(&["Env=environment"], Some(".*/prod")).validate().expect_err("both").to_string();
        assert!(error.contains("cannot be combined with a tag mapped to the environment label (the tag \"Env\")"), "{error}");
    }

    #[test]
    fn rows_come_from_aws_or_from_what_deployments_said() {
        let labels = args(&["Environment=environment", "team"], None).validate().expect("valid");
        let asked = labels.tag_keys();
        let group_tags = vec![("Environment".to_owned(), "Production".to_owned()), ("Other".to_owned(), "x".to_owned())];
        let application_tags = vec![("team".to_owned(), "payments".to_owned()), ("Environment".to_owned(), "dev".to_owned())];
        let info = GroupInfo::new(Some("Lambda"), Some("CodeDeployDefault.LambdaCanary10Percent5Minutes"), &asked, &group_tags, &application_tags, 5);
        let row = labels.row(&key("pay", "prod"), Some(&info), Some("Server"));
        assert_eq!(row.compute_platform, "Lambda", "AWS's word over the deployments'");
        assert_eq!(row.deployment_config, "CodeDeployDefault.LambdaCanary10Percent5Minutes");
        assert_eq!(row.tags, ["Production", "payments"], "labels in name order; the group's tag wins");
        assert!(row.production);

        let unknown = labels.row(&key("pay", "prod"), None, Some("ECS"));
        assert_eq!((unknown.compute_platform.as_str(), unknown.deployment_config.as_str()), ("ECS", UNKNOWN));
        assert_eq!(unknown.tags, ["", ""]);
        assert!(!unknown.production, "no environment tag: not production");
        assert_eq!(labels.row(&key("pay", "prod"), None, None).compute_platform, UNKNOWN);
    }

    #[test]
    fn the_table_bounds_values_counts_them_once_and_says_what_is_due() {
        let asked: BTreeSet<CompactString> = ["team".into()].into();
        let long = "x".repeat(MAX_LABEL_CHARS + 1);
        let read = |at| GroupInfo::new(Some("Server"), Some("CodeDeployDefault.OneAtATime"), &asked, &[("team".into(), long.clone())], &[], at);
        let mut table = GroupInfoTable::default();
        assert_eq!(table.apply(key("a", "g"), read(10)), 1);
        assert_eq!(table.get(&key("a", "g")).expect("held").tags["team"], OTHER);
        assert_eq!(table.apply(key("a", "g"), read(20)), 0, "the same value read again is not counted again");
        assert_eq!(table.apply(key("a", "g"), read(15)), 0);
        assert_eq!(table.get(&key("a", "g")).expect("held").fetched_at, 20, "an older read changes nothing");
        assert_eq!(table.changes().len(), 1);
        table.mark_committed();
        assert!(table.changes().is_empty());

        let groups = [key("a", "g"), key("b", "g")];
        assert_eq!(table.due(&groups, &asked, 100, 50), [key("b", "g")], "never read");
        assert_eq!(table.due(&groups, &asked, 100, 120), groups, "read a refresh interval ago");
        assert_eq!(table.due(&groups, &BTreeSet::new(), 100, 50), groups, "other tags asked for");
    }
}
