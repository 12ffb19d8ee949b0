//! Real servers for the end-to-end tests (tests/prometheus_e2e.rs, tests/impact_e2e.rs):
//! child processes that are killed when dropped, free loopback ports, and plain HTTP/1.0 on
//! loopback with std only, so the tests do not depend on how the crate configures TLS for its
//! HTTP clients. Prometheus' query API on top.
#![allow(dead_code)] // Each test binary uses its part.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// An executable on PATH, else in /usr/bin; panics naming the Debian package that ships it
/// (scripts/test installs them).
pub fn tool(name: &str, debian_package: &str) -> PathBuf {
    let from_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    from_path.into_iter().chain([Path::new("/usr/bin").join(name)]).find(|p| p.is_file()).unwrap_or_else(|| {
        panic!(
            "`{name}` was not found on PATH or in /usr/bin. Install the Debian package \
             `{debian_package}` (apt-get install {debian_package}), or run scripts/test, which does."
        )
    })
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .expect("local address")
        .port()
}

// ---------------------------------------------------------------------------------------
// Child processes
// ---------------------------------------------------------------------------------------

/// A child process that is killed when dropped, so a failing assertion never leaves an
/// exporter or a Prometheus running.
pub struct Process {
    pub name: String,
    child: Child,
    log: PathBuf,
}

impl Process {
    pub fn spawn(name: &str, command: &mut Command, dir: &Path) -> Process {
        let log = dir.join(format!("{name}.log"));
        let file = fs::File::create(&log).expect("create log file");
        let child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Process {
            name: name.to_owned(),
            child,
            log,
        }
    }

    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = fs::File::open(&self.log) {
            let _ = file.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Panics, with the end of its log, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited early ({status}); end of its log:\n{}",
                self.name,
                self.log_tail()
            );
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// HTTP to Prometheus and to the exporter: plain HTTP/1.0 on loopback, with std only, so
// the test does not depend on how the crate configures TLS for its HTTP clients.
// ---------------------------------------------------------------------------------------

pub fn percent_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// GET `http://127.0.0.1:{port}{path}?{params}`; returns the status code and the body.
pub fn http_get(port: u16, path: &str, params: &[(&str, String)]) -> std::io::Result<(u16, String)> {
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    let target = if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    };
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "GET {target} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_owned()))
}

/// POST `body` (JSON) to `http://127.0.0.1:{port}{path}`; returns the status code and the body.
pub fn http_post_json(port: u16, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    Ok((status, body.to_owned()))
}

#[derive(Debug)]
pub enum QueryError {
    /// The expression does not parse: no amount of waiting will fix it.
    Parse(String),
    /// Anything else (not ready, execution error): retried until the deadline.
    Other(String),
}

pub struct Prometheus {
    pub port: u16,
}

impl Prometheus {
    pub fn get(&self, path: &str, params: &[(&str, String)]) -> Result<Value, QueryError> {
        let (status, body) =
            http_get(self.port, path, params).map_err(|e| QueryError::Other(e.to_string()))?;
        let json: Value = serde_json::from_str(&body)
            .map_err(|e| QueryError::Other(format!("HTTP {status}, not JSON ({e}): {body}")))?;
        if json["status"] == "success" {
            Ok(json["data"].clone())
        } else if json["errorType"] == "bad_data" {
            Err(QueryError::Parse(
                json["error"].as_str().unwrap_or_default().to_owned(),
            ))
        } else {
            Err(QueryError::Other(format!("HTTP {status}: {body}")))
        }
    }

    /// Number of series the expression returns: instant, or over the last 3 minutes.
    pub fn series(&self, expr: &str, range: bool) -> Result<usize, QueryError> {
        let data = if range {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            let params = [
                ("query", expr.to_owned()),
                ("start", (now - 180).to_string()),
                ("end", now.to_string()),
                ("step", "5".to_owned()),
            ];
            self.get("/api/v1/query_range", &params)?
        } else {
            self.get("/api/v1/query", &[("query", expr.to_owned())])?
        };
        Ok(data["result"].as_array().map_or(0, Vec::len))
    }

    pub fn vector(&self, expr: &str) -> Vec<BTreeMap<String, String>> {
        match self.get("/api/v1/query", &[("query", expr.to_owned())]) {
            Ok(data) => data["result"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|sample| {
                    sample["metric"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub fn scalar(&self, expr: &str) -> Option<f64> {
        let data = self
            .get("/api/v1/query", &[("query", expr.to_owned())])
            .ok()?;
        data["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Rules that have not evaluated yet, and rules whose evaluation failed.
    pub fn rule_health(&self) -> (Vec<String>, Vec<String>) {
        let Ok(data) = self.get("/api/v1/rules", &[]) else {
            return (vec!["<rules API>".into()], vec![]);
        };
        let mut unknown = Vec::new();
        let mut failing = Vec::new();
        for group in data["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                let name = rule["name"].as_str().unwrap_or_default().to_owned();
                match rule["health"].as_str() {
                    Some("ok") => {}
                    Some("err") => failing.push(format!("{name}: {}", rule["lastError"])),
                    _ => unknown.push(name),
                }
            }
        }
        (unknown, failing)
    }
}

pub fn wait_until_ready(port: u16, path: &str, process: &mut Process) {
    let start = Instant::now();
    loop {
        process.assert_running();
        if matches!(http_get(port, path, &[]), Ok((200..=299, _))) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "127.0.0.1:{port}{path} not ready after 2 minutes; end of the log of {}:\n{}",
            process.name,
            process.log_tail()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

