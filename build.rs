//! Build script: records the git revision the binary is built from, for
//! `--version` and `codedeploy_exporter_build_info{revision}`.
//!
//! The revision is `git rev-parse --short=12 HEAD`, or `unknown` when the source is
//! not a git checkout (a tarball, `cargo install` from a registry copy) or git is
//! missing. `CODEDEPLOY_EXPORTER_REVISION` overrides it, for builds where `.git`
//! is not available but the revision is known (the container image is built from
//! a `.dockerignore`d context without `.git`).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CODEDEPLOY_EXPORTER_REVISION");
    let revision = std::env::var("CODEDEPLOY_EXPORTER_REVISION")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .map(|value| value.trim().to_owned())
        .or_else(|| {
            watch_git_refs();
            git(&["rev-parse", "--short=12", "HEAD"])
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CODEDEPLOY_EXPORTER_REVISION={revision}");
}

/// Reruns this script when HEAD moves: HEAD itself (a checkout switches branch),
/// the ref it points to (a commit on the branch) and packed-refs (`git gc`).
/// `--git-path` resolves each file in a linked worktree too, where `.git` is a
/// file and the refs live in the main repository.
fn watch_git_refs() {
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(reference);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = PathBuf::from(path);
            // Cargo reruns the script on every build while a watched file is
            // missing, so a ref that is only packed is watched through its
            // directory, where the first new commit writes it.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            } else if let Some(parent) = path.parent().filter(|parent| parent.is_dir()) {
                println!("cargo:rerun-if-changed={}", parent.display());
            }
        }
    }
}

/// Runs git in the crate's directory; `None` when git is missing or fails.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).current_dir(std::env::var_os("CARGO_MANIFEST_DIR")?).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    (output.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}
