//! The shipped monitoring content: Prometheus rules and alerts (`alerts/`), their
//! promtool unit tests (`alerts/tests/`), the runbook every alert links to
//! (`docs/runbooks.md`) and the Grafana dashboards (`dashboards/`).
//!
//! promtool is run for real (Debian package `prometheus`, 2.42). A missing promtool
//! is a failure, not a skip: these checks are the only thing standing between a
//! typo in a rule file and an alert that never fires.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[path = "common/servers.rs"]
mod servers;
use servers::tool;

fn files_in(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *{suffix} file in {}", dir.display());
    files
}

/// The example Alertmanager configuration next to the rule files (checked by amtool below).
const ALERTMANAGER_EXAMPLE: &str = "alertmanager.example.yml";

fn rule_files() -> Vec<PathBuf> {
    let mut files = files_in(&root().join("alerts"), ".yml");
    files.retain(|file| !file.ends_with(ALERTMANAGER_EXAMPLE));
    files
}

fn unit_test_files() -> Vec<PathBuf> {
    files_in(&root().join("alerts/tests"), ".test.yml")
}

fn dashboard_files() -> Vec<PathBuf> {
    files_in(&root().join("dashboards"), ".json")
}

fn describe(output: &Output) -> String {
    format!(
        "exit status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn rule_files_pass_promtool_check_with_fatal_lint() {
    let files = rule_files();
    let output = Command::new(tool("promtool", "prometheus"))
        .arg("check")
        .arg("rules")
        .arg("--lint-fatal")
        .args(&files)
        .output()
        .expect("run promtool check rules");
    assert!(
        output.status.success(),
        "promtool check rules --lint-fatal failed: {}",
        describe(&output)
    );
}

#[test]
fn promtool_unit_tests_pass() {
    let promtool = tool("promtool", "prometheus");
    // The files are independent: run them side by side, then report every failure.
    let children: Vec<(PathBuf, std::process::Child)> = unit_test_files()
        .into_iter()
        .map(|file| {
            let child = Command::new(&promtool)
                .arg("test")
                .arg("rules")
                .arg(&file)
                .current_dir(root())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn promtool for {}: {e}", file.display()));
            (file, child)
        })
        .collect();
    let failures: Vec<String> = children
        .into_iter()
        .filter_map(|(file, child)| {
            let output = child.wait_with_output().expect("wait for promtool");
            (!output.status.success()).then(|| {
                format!(
                    "promtool test rules {}: {}",
                    file.display(),
                    describe(&output)
                )
            })
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// `amtool` (Debian `prometheus-alertmanager`) with these arguments, then the example configuration.
fn amtool(args: &[&str]) -> Output {
    Command::new(tool("amtool", "prometheus-alertmanager"))
        .args(args)
        .arg(root().join("alerts").join(ALERTMANAGER_EXAMPLE))
        .output()
        .expect("run amtool")
}

#[test]
fn alertmanager_example_passes_amtool_and_routes_pages_and_tickets_by_severity() {
    let checked = amtool(&["check-config"]);
    let report = String::from_utf8_lossy(&checked.stdout);
    assert!(checked.status.success() && report.contains("SUCCESS"), "amtool check-config: {}", describe(&checked));
    assert!(report.contains("2 inhibit rules") && report.contains("3 receivers"), "{report}");
    // The routing tree as Alertmanager walks it, for alerts as the rules label them.
    for (labels, receiver) in [
        (["severity=critical", "alertname=CodeDeployRollbackFailed"], "page"),
        (["severity=warning", "alertname=CodeDeployPostDeployErrorRateRegression"], "ticket"),
        (["severity=info", "alertname=CodeDeployDeploymentInProgress"], "null"),
    ] {
        let routed = amtool(&[&["config", "routes", "test"][..], &labels[..], &["--config.file"]].concat());
        assert!(routed.status.success(), "amtool config routes test: {}", describe(&routed));
        assert_eq!(String::from_utf8_lossy(&routed.stdout).trim(), receiver, "{labels:?}");
    }
    // Inhibitions name alerts that exist in the rules (their effect is checked on a real
    // Alertmanager by tests/impact_e2e.rs).
    let example = fs::read_to_string(root().join("alerts").join(ALERTMANAGER_EXAMPLE)).expect("read the example");
    let alerts: BTreeSet<String> = alert_rules().into_iter().map(|rule| rule.name).collect();
    for line in example.lines().filter_map(|line| line.trim().strip_prefix("- source_matchers: [alertname=\"")) {
        let name = line.split('"').next().unwrap_or_default();
        assert!(alerts.contains(name), "the inhibition source {name} is not an alert of alerts/");
    }
}

// ---------------------------------------------------------------------------------------
// Alerts: conventions, runbook sections, and unit-test coverage.
// The rule files are plain YAML in a fixed layout; a line scanner is enough to read the
// few fields checked here (no YAML parser among the dev-dependencies).
// ---------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct AlertRule {
    name: String,
    file: String,
    severity: Option<String>,
    summary: Option<String>,
    description: Option<String>,
    runbook_url: Option<String>,
}

fn yaml_value(line: &str, key: &str) -> Option<String> {
    let rest = line
        .trim_start()
        .strip_prefix("- ")
        .unwrap_or(line.trim_start());
    let value = rest.strip_prefix(key)?.strip_prefix(':')?.trim();
    let unquoted = value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .or_else(|| value.strip_prefix('"').and_then(|v| v.strip_suffix('"')))
        .unwrap_or(value);
    Some(unquoted.to_owned())
}

fn alert_rules() -> Vec<AlertRule> {
    let mut rules = Vec::new();
    for file in rule_files() {
        let text = fs::read_to_string(&file).expect("read rule file");
        let mut current: Option<AlertRule> = None;
        for line in text.lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("- alert:")
                || trimmed.starts_with("- record:")
                || trimmed.starts_with("- name:")
            {
                rules.extend(current.take());
            }
            if let Some(name) = yaml_value(line, "alert") {
                current = Some(AlertRule {
                    name,
                    file: file.file_name().unwrap().to_string_lossy().into_owned(),
                    ..AlertRule::default()
                });
            } else if let Some(rule) = current.as_mut() {
                for (key, slot) in [
                    ("severity", &mut rule.severity),
                    ("summary", &mut rule.summary),
                    ("description", &mut rule.description),
                    ("runbook_url", &mut rule.runbook_url),
                ] {
                    if let Some(value) = yaml_value(line, key) {
                        *slot = Some(value);
                    }
                }
            }
        }
        rules.extend(current);
    }
    assert!(!rules.is_empty(), "no alerting rule found in alerts/");
    rules
}

/// GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to '-'.
fn github_anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn alerts_follow_the_mixin_conventions_and_link_to_a_runbook_section() {
    let runbooks =
        fs::read_to_string(root().join("docs/runbooks.md")).expect("docs/runbooks.md exists");
    let alert_docs =
        fs::read_to_string(root().join("docs/alerts.md")).expect("docs/alerts.md exists");
    let anchors: BTreeSet<String> = runbooks
        .lines()
        .filter_map(|line| {
            line.strip_prefix("## ")
                .or_else(|| line.strip_prefix("### "))
        })
        .map(github_anchor)
        .collect();
    let mut problems = Vec::new();
    for rule in alert_rules() {
        let at = format!("{} ({})", rule.name, rule.file);
        let camel = rule.name.starts_with("CodeDeploy")
            && rule.name.chars().all(|c| c.is_ascii_alphanumeric())
            && rule.name.len() <= 40;
        if !camel {
            problems.push(format!(
                "{at}: name must be CamelCase, start with CodeDeploy, <= 40 chars"
            ));
        }
        if !alert_docs.contains(&format!("`{}`", rule.name)) {
            problems.push(format!("{at}: not listed in docs/alerts.md"));
        }
        match rule.severity.as_deref() {
            Some("critical" | "warning" | "info") => {}
            other => problems.push(format!(
                "{at}: severity {other:?} is not critical|warning|info"
            )),
        }
        match rule.summary.as_deref() {
            Some(s) if !s.contains("{{") && s.ends_with('.') => {}
            other => problems.push(format!(
                "{at}: summary {other:?} must be static and end with a period"
            )),
        }
        match rule.description.as_deref() {
            Some(d) if d.contains("{{") => {}
            other => problems.push(format!("{at}: description {other:?} must be templated")),
        }
        match rule.runbook_url.as_deref().and_then(|url| url.split_once("docs/runbooks.md#")) {
            Some((_, anchor)) if anchor == rule.name.to_lowercase() && anchors.contains(anchor) => {}
            _ => problems.push(format!(
                "{at}: runbook_url {:?} must point to docs/runbooks.md#{} and that section must exist",
                rule.runbook_url,
                rule.name.to_lowercase()
            )),
        }
    }
    assert!(
        problems.is_empty(),
        "alert convention problems:\n{}",
        problems.join("\n")
    );
}

/// Every alert must be shown firing (a non-empty `exp_alerts`) and silent (`exp_alerts: []`)
/// in at least one promtool unit test.
#[test]
fn every_alert_is_unit_tested_both_firing_and_silent() {
    let mut fires: BTreeSet<String> = BTreeSet::new();
    let mut silent: BTreeSet<String> = BTreeSet::new();
    for file in unit_test_files() {
        let text = fs::read_to_string(&file).expect("read unit test file");
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = yaml_value(line, "alertname") else {
                continue;
            };
            let expectation = lines[i + 1..]
                .iter()
                .find_map(|l| yaml_value(l, "exp_alerts"))
                .unwrap_or_else(|| {
                    panic!("{}: alertname {name} without exp_alerts", file.display())
                });
            if expectation == "[]" {
                silent.insert(name);
            } else {
                fires.insert(name);
            }
        }
    }
    let names: BTreeSet<String> = alert_rules().into_iter().map(|r| r.name).collect();
    let never_fires: Vec<_> = names.difference(&fires).collect();
    let never_silent: Vec<_> = names.difference(&silent).collect();
    let unknown: Vec<_> = fires
        .union(&silent)
        .filter(|n| !names.contains(*n))
        .collect();
    assert!(
        never_fires.is_empty() && never_silent.is_empty() && unknown.is_empty(),
        "alerts never tested firing: {never_fires:?}; never tested silent: {never_silent:?}; \
         tested but not defined: {unknown:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Dashboards lint.
// ---------------------------------------------------------------------------------------

const GROUP_VARIABLES: [&str; 4] = ["account_id", "region", "application", "deployment_group"];

/// A Grafana panel with its queries, flattened out of rows.
struct Panel<'a> {
    title: String,
    json: &'a Value,
}

fn panels(dashboard: &Value) -> Vec<Panel<'_>> {
    let mut out = Vec::new();
    let mut stack: Vec<&Value> = dashboard["panels"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    while let Some(panel) = stack.pop() {
        if let Some(children) = panel["panels"].as_array() {
            stack.extend(children.iter());
        }
        out.push(Panel {
            title: panel["title"].as_str().unwrap_or("<untitled>").to_owned(),
            json: panel,
        });
    }
    out
}

/// Byte offset of the parenthesis closing the one at `open`.
fn closing_paren(expr: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    for (i, c) in expr[open..].char_indices() {
        match c {
            '"' => in_string = !in_string,
            '(' if !in_string => depth += 1,
            ')' if !in_string => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + i);
                }
            }
            _ => {}
        }
    }
    None
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The range of every `rate(…[r])`, `irate(…[r])` and `increase(…[r])` in `expr`.
fn counter_function_ranges(expr: &str) -> Result<Vec<String>, String> {
    let mut ranges = Vec::new();
    for function in ["rate(", "irate(", "increase("] {
        let mut from = 0;
        while let Some(found) = expr[from..].find(function) {
            let start = from + found;
            from = start + function.len();
            if expr[..start].chars().next_back().is_some_and(is_ident_char) {
                continue; // part of a longer name, e.g. irate( when looking for rate(
            }
            let open = start + function.len() - 1;
            let close = closing_paren(expr, open)
                .ok_or_else(|| format!("unbalanced parentheses in {expr}"))?;
            let argument = &expr[open..close];
            let bracket = argument
                .rfind('[')
                .ok_or_else(|| format!("{function} without a range in {expr}"))?;
            let end = argument[bracket..]
                .find(']')
                .ok_or_else(|| format!("unclosed range in {expr}"))?;
            ranges.push(argument[bracket + 1..bracket + end].to_owned());
        }
    }
    Ok(ranges)
}

/// Every metric or recording-rule name in `expr` with its selector (`None` when bare).
fn selectors(expr: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let chars: Vec<(usize, char)> = expr.char_indices().collect();
    let mut i = 0;
    let mut in_string = false;
    let mut in_braces = false;
    while i < chars.len() {
        let (at, c) = chars[i];
        if c == '"' {
            in_string = !in_string;
        }
        if in_string {
            i += 1;
            continue;
        }
        match c {
            '{' => in_braces = true,
            '}' => in_braces = false,
            _ => {}
        }
        if !in_braces
            && (c.is_ascii_alphabetic() || c == '_')
            && (at == 0 || !is_ident_char(chars[i - 1].1))
        {
            let end = chars[i..]
                .iter()
                .find(|(_, c)| !is_ident_char(*c))
                .map_or(expr.len(), |(j, _)| *j);
            let name = &expr[at..end];
            let after = expr[end..].trim_start();
            let selector = after.starts_with('{').then(|| {
                let close = after.find('}').unwrap_or(after.len() - 1);
                after[1..close].to_owned()
            });
            out.push((name.to_owned(), selector));
            i += expr[at..end].chars().count();
            continue;
        }
        i += 1;
    }
    out
}

/// Domain series carry the group labels and must honour the dashboard's filters.
fn required_filters(name: &str) -> &'static [&'static str] {
    if name.starts_with("deployment_group:codedeploy_") {
        &GROUP_VARIABLES
    } else if name.starts_with("application:codedeploy_") {
        &GROUP_VARIABLES[..3]
    } else if name.starts_with("codedeploy_")
        && !name.starts_with("codedeploy_exporter_")
        && !name.contains(':')
    {
        &GROUP_VARIABLES
    } else {
        &[]
    }
}

fn lint_expression(
    expr: &str,
    description: &str,
    variables: &BTreeSet<String>,
    at: &str,
    problems: &mut Vec<String>,
) {
    if expr.trim().is_empty() {
        problems.push(format!("{at}: empty query"));
        return;
    }
    // Variables in matchers go through =~, and ranges and offsets use only Grafana's own
    // variables: the query stays valid PromQL whatever a variable is set to ("All" = .*).
    let mut rest = expr;
    while let Some(pos) = rest.find("\"$") {
        let before = rest[..pos].trim_end();
        if !before.ends_with("=~") && !before.ends_with("!~") {
            problems.push(format!("{at}: a variable is matched with = instead of =~"));
        }
        rest = &rest[pos + 2..];
    }
    for marker in ["[$", "offset $"] {
        let mut rest = expr;
        while let Some(found) = rest.find(marker) {
            let after = &rest[found + marker.len()..];
            if !after.starts_with("__") {
                problems.push(format!("{at}: a dashboard variable in a range or offset ({marker}…) breaks when it is set to .*"));
            }
            rest = after;
        }
    }
    match counter_function_ranges(expr) {
        Err(e) => problems.push(format!("{at}: {e}")),
        Ok(ranges) => {
            for range in ranges {
                if range != "$__rate_interval" && !description.contains("Window:") {
                    problems.push(format!(
                        "{at}: rate/increase over [{range}] instead of [$__rate_interval], and the panel \
                         description does not justify it with a \"Window:\" sentence"
                    ));
                }
            }
        }
    }
    for (name, selector) in selectors(expr) {
        for variable in required_filters(&name) {
            let matcher = format!("{variable}=~\"${variable}\"");
            if !selector
                .as_deref()
                .is_some_and(|s| s.replace(' ', "").contains(&matcher))
            {
                problems.push(format!("{at}: {name} is not filtered by {matcher}"));
            }
        }
        let instance_filtered = selector
            .as_deref()
            .is_some_and(|s| s.replace(' ', "").contains("instance=~\"$instance\""));
        if name.starts_with("codedeploy_exporter_")
            && variables.contains("instance")
            && !instance_filtered
        {
            problems.push(format!(
                "{at}: {name} is not filtered by instance=~\"$instance\""
            ));
        }
    }
    // Every $variable must be defined by the dashboard or be one of Grafana's own.
    let mut rest = expr;
    while let Some(dollar) = rest.find('$') {
        let name: String = rest[dollar + 1..]
            .trim_start_matches('{')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.starts_with("__") && !variables.contains(&name) {
            problems.push(format!("{at}: ${name} is not a variable of the dashboard"));
        }
        rest = &rest[dollar + 1..];
    }
}

fn lint_datasources(value: &Value, path: &str, problems: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                if key == "datasource" {
                    let ok = child["type"] == "prometheus" && child["uid"] == "${datasource}"
                        || child["type"] == "grafana" && child["uid"] == "-- Grafana --";
                    if !ok {
                        problems.push(format!(
                            "{child_path}: datasource {child} is not ${{datasource}}"
                        ));
                    }
                } else {
                    lint_datasources(child, &child_path, problems);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                lint_datasources(item, &format!("{path}[{i}]"), problems);
            }
        }
        _ => {}
    }
}

fn lint_dashboard(file: &Path, dashboard: &Value, problems: &mut Vec<String>) {
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let uid = dashboard["uid"].as_str().unwrap_or_default();
    if uid.is_empty() || uid.len() > 40 || !name.starts_with(uid) {
        problems.push(format!(
            "{name}: uid {uid:?} must be set, <= 40 chars, and name the file"
        ));
    }
    if !dashboard["id"].is_null() {
        problems.push(format!("{name}: id must be null for provisioning"));
    }
    if dashboard.get("__inputs").is_some() || dashboard.get("__requires").is_some() {
        problems.push(format!(
            "{name}: __inputs/__requires are export-for-sharing artefacts; use ${{datasource}}"
        ));
    }
    if dashboard["editable"] != Value::Bool(false) {
        problems.push(format!(
            "{name}: editable must be false (provisioned dashboards)"
        ));
    }
    if dashboard["title"].as_str().unwrap_or_default().is_empty() {
        problems.push(format!("{name}: no title"));
    }

    let variables_json = dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let variables: BTreeSet<String> = variables_json
        .iter()
        .filter_map(|v| v["name"].as_str().map(str::to_owned))
        .collect();
    let variable = |n: &str| variables_json.iter().find(|v| v["name"] == n);
    match variable("datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" && v["label"] == "Data source" => {}
        _ => problems.push(format!("{name}: needs a variable `datasource` of type datasource, query prometheus, label \"Data source\"")),
    }
    for group_variable in GROUP_VARIABLES {
        match variable(group_variable) {
            Some(v) if v["type"] == "query" && v["multi"] == true && v["includeAll"] == true && v["refresh"] == 2 => {}
            _ => problems.push(format!(
                "{name}: needs a multi-value query variable `{group_variable}` with All, refreshed on time range change"
            )),
        }
    }
    lint_datasources(dashboard, &name, problems);

    let annotations = dashboard["annotations"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let prometheus_annotations: Vec<&Value> = annotations
        .iter()
        .filter(|a| a["datasource"]["type"] == "prometheus")
        .collect();
    if !prometheus_annotations.iter().any(|a| {
        a["expr"]
            .as_str()
            .is_some_and(|e| e.contains("codedeploy_"))
    }) {
        problems.push(format!("{name}: no deployment annotation"));
    }
    for annotation in prometheus_annotations {
        let at = format!("{name} annotation {:?}", annotation["name"]);
        lint_expression(
            annotation["expr"].as_str().unwrap_or_default(),
            "",
            &variables,
            &at,
            problems,
        );
    }

    let mut ids = BTreeSet::new();
    for panel in panels(dashboard) {
        let at = format!("{name} panel {:?}", panel.title);
        let json = panel.json;
        if !ids.insert(json["id"].as_i64().unwrap_or(-1)) {
            problems.push(format!("{at}: duplicate or missing id"));
        }
        if json["type"] == "row" || json["type"] == "text" {
            continue;
        }
        let description = json["description"].as_str().unwrap_or_default();
        if description.is_empty() {
            problems.push(format!("{at}: no description"));
        }
        if json["fieldConfig"]["defaults"]["unit"]
            .as_str()
            .unwrap_or_default()
            .is_empty()
        {
            problems.push(format!("{at}: no unit (fieldConfig.defaults.unit)"));
        }
        let targets = json["targets"].as_array().cloned().unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{at}: no query"));
        }
        for target in &targets {
            let at = format!("{at} query {}", target["refId"]);
            if target["datasource"]["uid"] != "${datasource}" {
                problems.push(format!("{at}: datasource is not ${{datasource}}"));
            }
            lint_expression(
                target["expr"].as_str().unwrap_or_default(),
                description,
                &variables,
                &at,
                problems,
            );
        }
    }
}

#[test]
fn dashboards_pass_the_lint() {
    let mut problems = Vec::new();
    let mut uids: BTreeMap<String, String> = BTreeMap::new();
    let files = dashboard_files();
    assert_eq!(files.len(), 3, "expected three dashboards, found {files:?}");
    for file in &files {
        let text = fs::read_to_string(file).expect("read dashboard");
        let dashboard: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", file.display()));
        if let Some(previous) =
            uids.insert(dashboard["uid"].to_string(), file.display().to_string())
        {
            problems.push(format!("{} reuses the uid of {previous}", file.display()));
        }
        lint_dashboard(file, &dashboard, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "dashboard lint found {} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// The lint itself: a bad dashboard must be caught on every rule.
#[test]
fn the_dashboard_lint_catches_each_mistake() {
    let bad = serde_json::json!({
        "id": 3, "uid": "", "title": "bad", "editable": true,
        "__inputs": [{"name": "DS_PROMETHEUS"}],
        "templating": {"list": [{"name": "account_id", "type": "query"}]},
        "annotations": {"list": []},
        "panels": [{
            "id": 1, "type": "timeseries", "title": "p",
            "datasource": "Prometheus",
            "fieldConfig": {"defaults": {}},
            "targets": [{"refId": "A", "datasource": {"type": "prometheus", "uid": "abc"},
                         "expr": "sum(rate(codedeploy_deployments_total[5m])) + $nope + x{w=\"$window\"} offset $window"}]
        }]
    });
    let mut problems = Vec::new();
    lint_dashboard(Path::new("bad.json"), &bad, &mut problems);
    let all = problems.join("\n");
    for expected in [
        "uid",
        "id must be null",
        "__inputs",
        "editable",
        "variable `datasource`",
        "`region`",
        "datasource \"Prometheus\"",
        "no deployment annotation",
        "no description",
        "no unit",
        "datasource is not",
        "[5m]",
        "not filtered by account_id",
        "$nope",
        "= instead of =~",
        "range or offset",
    ] {
        assert!(
            all.contains(expected),
            "lint missed {expected:?}; it reported:\n{all}"
        );
    }
}

#[test]
fn selector_and_range_scanners_read_promql() {
    let expr = r#"sum(max without (instance, pod) (increase(codedeploy_x_total{a=~"$a", b="}"}[$__range]))) / rate(y[1m]) + irate(z[$__rate_interval])"#;
    assert_eq!(
        counter_function_ranges(expr).unwrap(),
        vec!["1m", "$__rate_interval", "$__range"]
    );
    let names: Vec<String> = selectors(expr).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.contains(&"codedeploy_x_total".to_owned()) && names.contains(&"y".to_owned()),
        "{names:?}"
    );
    assert_eq!(
        github_anchor("CodeDeployDeploymentFailed"),
        "codedeploydeploymentfailed"
    );
}
