//! `promtool check metrics`, for every test binary that checks an exposition
//! (the SPEC: "`promtool check metrics` is clean"). promtool is required, never
//! skipped: `scripts/test` installs the Debian package `prometheus`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// promtool on `PATH`, else where Debian puts it; panics with how to get it.
pub fn promtool() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).map(|dir| dir.join("promtool")).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path.into_iter().chain([PathBuf::from("/usr/bin/promtool")]).find(|candidate| candidate.is_file()).unwrap_or_else(
        || {
            panic!(
                "promtool was not found on PATH or in /usr/bin: these tests need it. Install the Debian \
                 package `prometheus` (apt-get install prometheus), or run scripts/test, which does."
            )
        },
    )
}

/// What promtool says about an exposition: `Err` with its findings when it is not clean.
pub fn check_metrics(exposition: &str) -> Result<(), String> {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run promtool: {e}"))?;
    let mut stdin = child.stdin.take().expect("promtool's stdin");
    let input = exposition.to_owned();
    // Written from another thread: a large exposition would fill the pipe
    // while promtool's own output waits to be read.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().map_err(|e| format!("promtool: {e}"))?;
    writer.join().expect("writer thread").map_err(|e| format!("writing to promtool: {e}"))?;
    let findings = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    if output.status.success() && findings.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool check metrics failed:\n{findings}"))
    }
}

/// Panics with promtool's findings unless the exposition is clean.
#[allow(dead_code)] // Not every test binary that includes this file asserts.
pub fn assert_promtool_clean(exposition: &str) {
    if let Err(findings) = check_metrics(exposition) {
        panic!("{findings}");
    }
}
