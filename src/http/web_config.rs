//! `--web.config.file`: the Prometheus exporter-toolkit web configuration
//! format (TLS, basic auth with bcrypt hashes, response headers, a global rate
//! limit), read and checked once at start so that a mistake stops the exporter
//! with a message instead of surfacing on the first scrape.
//!
//! ```yaml
//! tls_server_config:
//!   cert_file: server.crt          # or `cert:` with the PEM inline
//!   key_file: server.key           # or `key:`
//!   client_auth_type: RequireAndVerifyClientCert
//!   client_ca_file: clients-ca.crt # or `client_ca:`
//!   min_version: TLS12             # TLS12 (default) or TLS13
//!   max_version: TLS13
//!   cipher_suites: [TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]   # TLS 1.2 only
//!   curve_preferences: [X25519, CurveP256]
//! http_server_config:
//!   headers:
//!     Strict-Transport-Security: max-age=31536000
//! basic_auth_users:
//!   prometheus: $2y$10$...         # bcrypt hash, e.g. `htpasswd -nBC 10 "" | tr -d ':\n'`
//! rate_limit:
//!   interval: 10ms                 # one request per interval on average
//!   burst: 50
//! ```
//!
//! Where this differs from exporter-toolkit, it is stricter, never looser:
//! unknown keys are errors (as with toolkit's strict YAML), TLS 1.0 and 1.1 are
//! refused (rustls does not implement them), `VerifyClientCertIfGiven` and
//! `RequireAndVerifyClientCert` need a client CA (Go would fall back to the
//! system roots, trusting any public certificate), `client_allowed_sans` is
//! refused rather than ignored, and `/-/healthy` is served without
//! credentials (see [`super::auth`]). Relative file names are resolved against
//! the directory of the web config file, as toolkit does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;

use super::tls;

/// Why the web config file cannot be used; always names the file.
#[derive(Debug, thiserror::Error)]
#[error("--web.config.file {path}: {message}")]
pub struct WebConfigError {
    pub path: PathBuf,
    pub message: String,
}

/// The file as written. Every struct rejects unknown keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    tls_server_config: Option<RawTls>,
    http_server_config: Option<RawHttp>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RawRateLimit>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: Option<String>,
    key_file: Option<String>,
    cert: Option<String>,
    key: Option<String>,
    client_ca_file: Option<String>,
    client_ca: Option<String>,
    client_auth_type: Option<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    curve_preferences: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    client_allowed_sans: Option<Vec<String>>,
}

impl std::fmt::Debug for RawTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `key` may hold a private key inline.
        f.debug_struct("RawTls").field("cert_file", &self.cert_file).finish_non_exhaustive()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    burst: Option<u32>,
    interval: Option<String>,
}

/// Where a PEM document comes from: a file (re-read when it changes) or the config itself.
#[derive(Clone, PartialEq, Eq)]
pub enum Pem {
    File(PathBuf),
    Inline(String),
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::File(path) => write!(f, "File({})", path.display()),
            Pem::Inline(_) => f.write_str("Inline(***)"),
        }
    }
}

impl Pem {
    pub fn read(&self) -> Result<Vec<u8>, String> {
        match self {
            Pem::File(path) => std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display())),
            Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
        }
    }

    /// What to call it in a message: the file, or the inline key's name.
    pub fn describe(&self, inline_key: &str) -> String {
        match self {
            Pem::File(path) => path.display().to_string(),
            Pem::Inline(_) => format!("inline `{inline_key}`"),
        }
    }
}

/// `client_auth_type`, with Go's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate is asked for.
    NoClientCert,
    /// Asked for, not required, not verified against a CA.
    RequestClientCert,
    /// Required, not verified against a CA (the client must still prove it holds the key).
    RequireAnyClientCert,
    /// Verified against `client_ca_file` when given; a client without one is let through.
    VerifyClientCertIfGiven,
    /// Required and verified against `client_ca_file`.
    RequireAndVerifyClientCert,
}

impl ClientAuth {
    fn parse(name: &str) -> Option<ClientAuth> {
        Some(match name {
            "" | "NoClientCert" => ClientAuth::NoClientCert,
            "RequestClientCert" => ClientAuth::RequestClientCert,
            // toolkit keeps "RequireClientCert" for backwards compatibility.
            "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAnyClientCert,
            "VerifyClientCertIfGiven" => ClientAuth::VerifyClientCertIfGiven,
            "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerifyClientCert,
            _ => return None,
        })
    }

    pub fn verifies(self) -> bool {
        matches!(self, ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// `curve_preferences` names, as in toolkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    P256,
    P384,
    P521,
    X25519,
}

/// The `tls_server_config` section, checked.
#[derive(Debug, Clone)]
pub struct TlsSettings {
    pub cert: Pem,
    pub key: Pem,
    pub client_ca: Option<Pem>,
    pub client_auth: ClientAuth,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// TLS 1.2 suites by IANA name, in preference order; `None`: rustls' defaults.
    pub cipher_suites: Option<Vec<String>>,
    pub curves: Option<Vec<Curve>>,
    pub prefer_server_cipher_suites: bool,
}

/// A user's bcrypt hash. Not a secret, but not something to print either.
#[derive(Clone)]
pub struct PasswordHash(pub String);

impl std::fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PasswordHash(***)")
    }
}

/// The whole file, checked and ready to serve with.
#[derive(Clone)]
pub struct WebConfig {
    pub path: PathBuf,
    pub tls: Option<TlsSettings>,
    /// Built (and so fully checked: files, key, CA) at load time.
    pub tls_server: Option<Arc<rustls::ServerConfig>>,
    pub users: BTreeMap<String, PasswordHash>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Requests per second and burst, for every request.
    pub rate_limit: Option<(f64, u32)>,
    pub http2: bool,
}

impl std::fmt::Debug for WebConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebConfig")
            .field("path", &self.path)
            .field("tls", &self.tls)
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .field("headers", &self.headers)
            .field("rate_limit", &self.rate_limit)
            .finish_non_exhaustive()
    }
}

/// The headers toolkit lets a web config set, with the values it allows (empty: any).
const CONFIGURABLE_HEADERS: &[(&str, &[&str])] = &[
    ("Strict-Transport-Security", &[]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-XSS-Protection", &[]),
    ("Content-Security-Policy", &[]),
];

impl WebConfig {
    /// Reads and checks the file: YAML syntax and keys, the certificate, key
    /// and CA files (by building the TLS configuration), the bcrypt hashes and
    /// the headers.
    pub fn load(path: &Path) -> Result<WebConfig, WebConfigError> {
        let fail = |message: String| WebConfigError { path: path.to_owned(), message };
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let raw: RawConfig = serde_yaml_ng::from_str::<Option<RawConfig>>(&text)
            .map_err(|e| fail(format!("invalid: {e}")))?
            .unwrap_or_default();
        let dir = path.parent().unwrap_or(Path::new("."));
        let tls = match raw.tls_server_config {
            Some(raw) => tls_settings(raw, dir).map_err(fail)?,
            None => None,
        };
        let tls_server = match &tls {
            Some(settings) => Some(Arc::new(tls::server_config(settings).map_err(fail)?)),
            None => None,
        };
        let users = users(raw.basic_auth_users.unwrap_or_default()).map_err(fail)?;
        if !users.is_empty() && tls.is_none() {
            tracing::warn!(file = %path.display(), "basic_auth_users without tls_server_config: passwords cross the network in clear text");
        }
        let http = raw.http_server_config.unwrap_or_default();
        let headers = headers(http.headers.unwrap_or_default()).map_err(fail)?;
        let rate_limit = match raw.rate_limit {
            Some(limit) => rate_limit(limit).map_err(fail)?,
            None => None,
        };
        Ok(WebConfig {
            path: path.to_owned(),
            tls,
            tls_server,
            users,
            headers,
            rate_limit,
            http2: http.http2.unwrap_or(true),
        })
    }
}

fn tls_settings(raw: RawTls, dir: &Path) -> Result<Option<TlsSettings>, String> {
    let non_empty = |value: Option<String>| value.filter(|v| !v.is_empty());
    let cert_file = non_empty(raw.cert_file);
    let key_file = non_empty(raw.key_file);
    let cert_inline = non_empty(raw.cert);
    let key_inline = non_empty(raw.key);
    let ca_file = non_empty(raw.client_ca_file);
    let ca_inline = non_empty(raw.client_ca);
    let auth_name = raw.client_auth_type.unwrap_or_default();
    // As toolkit's IsEnabled: any of these turns TLS on; the rest of the section alone does not.
    let enabled = cert_file.is_some()
        || key_file.is_some()
        || cert_inline.is_some()
        || key_inline.is_some()
        || ca_file.is_some()
        || ca_inline.is_some()
        || !auth_name.is_empty();
    if !enabled {
        return Ok(None);
    }
    let joined = |file: String| Pem::File(dir.join(file));
    let cert = match (cert_file, cert_inline) {
        (Some(_), Some(_)) => return Err("tls_server_config: give one of cert_file and cert, not both".into()),
        (Some(file), None) => joined(file),
        (None, Some(text)) => Pem::Inline(text),
        (None, None) => return Err("tls_server_config: missing one of cert_file or cert".into()),
    };
    let key = match (key_file, key_inline) {
        (Some(_), Some(_)) => return Err("tls_server_config: give one of key_file and key, not both".into()),
        (Some(file), None) => joined(file),
        (None, Some(text)) => Pem::Inline(text),
        (None, None) => return Err("tls_server_config: missing one of key_file or key".into()),
    };
    let client_ca = match (ca_file, ca_inline) {
        (Some(_), Some(_)) => {
            return Err("tls_server_config: give one of client_ca_file and client_ca, not both".into())
        }
        (Some(file), None) => Some(joined(file)),
        (None, Some(text)) => Some(Pem::Inline(text)),
        (None, None) => None,
    };
    let client_auth = ClientAuth::parse(&auth_name).ok_or_else(|| {
        format!(
            "tls_server_config.client_auth_type {auth_name:?} is not one of NoClientCert, RequestClientCert, \
             RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
        )
    })?;
    if client_ca.is_some() && client_auth == ClientAuth::NoClientCert {
        return Err("tls_server_config: client_ca_file is set without a client_auth_type \
                    (set RequireAndVerifyClientCert or VerifyClientCertIfGiven)"
            .into());
    }
    if client_auth.verifies() && client_ca.is_none() {
        return Err(format!(
            "tls_server_config: client_auth_type {auth_name} needs client_ca_file (or client_ca): \
             the CA that signs the client certificates"
        ));
    }
    if raw.client_allowed_sans.is_some() {
        return Err("tls_server_config.client_allowed_sans is not supported by this exporter; \
                    issue client certificates from a dedicated CA (client_ca_file) instead"
            .into());
    }
    let min_version = version(raw.min_version.as_deref(), "min_version")?.unwrap_or(TlsVersion::Tls12);
    let max_version = version(raw.max_version.as_deref(), "max_version")?.unwrap_or(TlsVersion::Tls13);
    if min_version > max_version {
        return Err("tls_server_config: min_version is above max_version".into());
    }
    let curves = match raw.curve_preferences {
        Some(names) => Some(
            names
                .iter()
                .map(|name| match name.as_str() {
                    "CurveP256" => Ok(Curve::P256),
                    "CurveP384" => Ok(Curve::P384),
                    "CurveP521" => Ok(Curve::P521),
                    "X25519" => Ok(Curve::X25519),
                    other => Err(format!(
                        "tls_server_config.curve_preferences: unknown curve {other:?} \
                         (one of CurveP256, CurveP384, CurveP521, X25519)"
                    )),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    Ok(Some(TlsSettings {
        cert,
        key,
        client_ca,
        client_auth,
        min_version,
        max_version,
        cipher_suites: raw.cipher_suites,
        curves,
        prefer_server_cipher_suites: raw.prefer_server_cipher_suites.unwrap_or(true),
    }))
}

fn version(name: Option<&str>, key: &str) -> Result<Option<TlsVersion>, String> {
    match name {
        None | Some("") => Ok(None),
        Some("TLS12") => Ok(Some(TlsVersion::Tls12)),
        Some("TLS13") => Ok(Some(TlsVersion::Tls13)),
        Some(old @ ("TLS10" | "TLS11")) => {
            Err(format!("tls_server_config.{key} {old} is not supported: TLS 1.0 and 1.1 are insecure and not implemented; use TLS12 or TLS13"))
        }
        Some(other) => Err(format!("tls_server_config.{key}: unknown TLS version {other:?} (TLS12 or TLS13)")),
    }
}

fn users(raw: BTreeMap<String, String>) -> Result<BTreeMap<String, PasswordHash>, String> {
    let mut users = BTreeMap::new();
    for (user, hash) in raw {
        if user.is_empty() || user.contains(':') {
            return Err(format!("basic_auth_users: user name {user:?} must be non-empty and contain no ':'"));
        }
        let parts: bcrypt::HashParts = hash.parse().map_err(|_| {
            format!(
                "basic_auth_users.{user}: not a bcrypt hash (expected $2a$, $2b$ or $2y$ followed by the cost \
                 and 53 characters; generate one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`); \
                 a plain-text password is never accepted"
            )
        })?;
        if !(4..=31).contains(&parts.get_cost()) {
            return Err(format!("basic_auth_users.{user}: bcrypt cost {} is outside 4..=31", parts.get_cost()));
        }
        users.insert(user, PasswordHash(hash));
    }
    Ok(users)
}

fn headers(raw: BTreeMap<String, String>) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut headers = Vec::new();
    for (name, value) in raw {
        let Some((canonical, allowed)) =
            CONFIGURABLE_HEADERS.iter().find(|(known, _)| known.eq_ignore_ascii_case(&name))
        else {
            let names: Vec<&str> = CONFIGURABLE_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "http_server_config.headers: HTTP header {name:?} can not be configured (one of {})",
                names.join(", ")
            ));
        };
        if !allowed.is_empty() && !allowed.contains(&value.as_str()) {
            return Err(format!(
                "http_server_config.headers: invalid value for {canonical}: expected one of {allowed:?}, got {value:?}"
            ));
        }
        let header_value = HeaderValue::from_str(&value)
            .map_err(|_| format!("http_server_config.headers: {canonical} value {value:?} is not a valid header value"))?;
        headers.push((HeaderName::from_static(static_lowercase(canonical)), header_value));
    }
    Ok(headers)
}

/// `HeaderName::from_static` wants lower case.
fn static_lowercase(name: &str) -> &'static str {
    match name {
        "Strict-Transport-Security" => "strict-transport-security",
        "X-Content-Type-Options" => "x-content-type-options",
        "X-Frame-Options" => "x-frame-options",
        "X-XSS-Protection" => "x-xss-protection",
        _ => "content-security-policy",
    }
}

fn rate_limit(raw: RawRateLimit) -> Result<Option<(f64, u32)>, String> {
    let interval = match raw.interval.as_deref() {
        None | Some("") | Some("0") | Some("0s") => return Ok(None),
        Some(text) => humantime::parse_duration(text)
            .map_err(|e| format!("rate_limit.interval {text:?} is not a duration such as 10ms or 1s: {e}"))?,
    };
    if interval.is_zero() {
        return Ok(None);
    }
    let burst = raw.burst.unwrap_or(0);
    if burst == 0 {
        return Err("rate_limit.burst must be at least 1 when rate_limit.interval is set (0 would refuse every request)".into());
    }
    Ok(Some((1.0 / interval.max(Duration::from_micros(1)).as_secs_f64(), burst)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(yaml: &str) -> Result<WebConfig, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("web.yml");
        std::fs::write(&path, yaml).expect("write");
        WebConfig::load(&path).map_err(|e| e.to_string())
    }

    /// A bcrypt hash at cost 4, to keep the tests fast.
    fn hash() -> String {
        bcrypt::hash("secret", 4).expect("hash")
    }

    #[test]
    fn empty_file_means_no_tls_and_no_auth() {
        let config = load("").expect("valid");
        assert!(config.tls.is_none() && config.users.is_empty() && config.headers.is_empty());
        let config = load("# nothing\n").expect("valid");
        assert!(config.tls.is_none());
    }

    #[test]
    fn users_headers_and_rate_limit() {
        let hash = hash();
        let config = load(&format!(
            "basic_auth_users:\n  alice: '{hash}'\nhttp_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n\
             rate_limit:\n  interval: 100ms\n  burst: 5\n"
        ))
        .expect("valid");
        assert_eq!(config.users.len(), 1);
        assert_eq!(config.headers[0].0.as_str(), "x-frame-options");
        assert_eq!(config.rate_limit, Some((10.0, 5)));
        assert!(!config.http2);
        assert!(!format!("{config:?}").contains(&hash), "hashes stay out of Debug output");
    }

    #[test]
    fn mistakes_are_explained() {
        let cases = [
            ("basic_auth_user:\n  a: b\n", "unknown field `basic_auth_user`"),
            ("tls_server_config:\n  cert_fil: x\n", "unknown field `cert_fil`"),
            ("basic_auth_users:\n  alice: hunter2\n", "not a bcrypt hash"),
            ("tls_server_config:\n  cert_file: c.pem\n", "missing one of key_file or key"),
            ("tls_server_config:\n  key_file: k.pem\n", "missing one of cert_file or cert"),
            ("tls_server_config:\n  cert_file: nope.pem\n  key_file: nope.key\n", "cannot read"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: Sometimes\n", "is not one of"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_ca_file: ca\n", "without a client_auth_type"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_auth_type: RequireAndVerifyClientCert\n", "needs client_ca_file"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS10\n", "not supported"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  min_version: TLS13\n  max_version: TLS12\n", "above max_version"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  curve_preferences: [P256]\n", "unknown curve"),
            ("tls_server_config:\n  cert_file: c\n  key_file: k\n  client_allowed_sans: [a]\n", "not supported"),
            ("http_server_config:\n  headers:\n    Server: x\n", "can not be configured"),
            ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n", "expected one of"),
            ("rate_limit:\n  interval: 1s\n", "burst must be at least 1"),
            ("rate_limit:\n  interval: soon\n  burst: 1\n", "not a duration"),
            ("- a\n- b\n", "invalid"),
        ];
        let colon = format!("basic_auth_users:\n  'a:b': '{}'\n", hash());
        let cases = cases.iter().copied().chain([(colon.as_str(), "contain no ':'")]);
        for (yaml, expected) in cases {
            let error = load(yaml).expect_err(yaml);
            assert!(error.contains(expected), "{yaml:?}: {error}");
            assert!(error.starts_with("--web.config.file "), "{error}");
        }
        let missing = WebConfig::load(Path::new("/nonexistent/web.yml")).unwrap_err().to_string();
        assert!(missing.contains("cannot read it"), "{missing}");
    }
}
