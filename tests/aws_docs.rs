//! docs/aws.md stays true: its CloudFormation template passes cfn-lint (from
//! the test venv that scripts/test creates), and its IAM policy is the one
//! `setup` prints.

#[path = "moto/support.rs"]
mod support;

use std::path::Path;
use std::process::Command;

use codedeploy_exporter::setup;

fn docs() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/aws.md")).expect("docs/aws.md")
}

/// The first fenced block of `language` after `heading`.
fn block_after(text: &str, heading: &str, language: &str) -> String {
    let at = text.find(heading).unwrap_or_else(|| panic!("docs/aws.md has no {heading:?}"));
    let fence = format!("```{language}\n");
    let start = text[at..].find(&fence).map(|i| at + i + fence.len()).expect("a fenced block");
    let end = text[start..].find("```").map(|i| start + i).expect("a closing fence");
    text[start..end].to_owned()
}

#[test]
fn the_cloudformation_template_passes_cfn_lint() {
    let template = block_after(&docs(), "## CloudFormation", "yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("codedeploy-exporter.yaml");
    std::fs::write(&path, &template).expect("write the template");
    let python = support::python();
    let cfn_lint = python.parent().expect("the venv's bin").join("cfn-lint");
    let output = Command::new(&cfn_lint).arg(&path).output().unwrap_or_else(|e| {
        panic!("cannot run {}: {e}; scripts/test installs cfn-lint into the venv", cfn_lint.display())
    });
    assert!(
        output.status.success(),
        "cfn-lint rejects the template of docs/aws.md:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The template makes what setup makes.
    for needle in ["aws.codedeploy", setup::DETAIL_TYPES[0], setup::DETAIL_TYPES[1], "RedrivePolicy", "events.amazonaws.com"] {
        assert!(template.contains(needle), "the template lacks {needle}");
    }
}

#[test]
fn the_documented_iam_policy_is_the_one_setup_prints() {
    let documented: serde_json::Value =
        serde_json::from_str(&block_after(&docs(), "## IAM policy of the exporter", "json")).expect("the policy is JSON");
    let printed = setup::iam_policy(
        &["arn:aws:sqs:REGION:ACCOUNT:codedeploy-exporter".into()],
        &["arn:aws:iam::OTHER_ACCOUNT:role/codedeploy-exporter".into()],
    );
    assert_eq!(documented, printed);
}
