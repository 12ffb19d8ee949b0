//! Secured endpoints over real connections on 127.0.0.1: TLS and client
//! certificates from a CA made here with rcgen, basic auth with bcrypt hashes
//! made here, the webhook's rate limit, and SNS HTTPS subscriptions against a
//! local HTTPS server standing in for SNS (confirmation URL and signing
//! certificate), with notifications signed here with an RSA key.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, Uri};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use clap::Parser;
use codedeploy_exporter::config::{Cli, Command as CliCommand};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

use crate::helpers::{eventbridge, eventually, sample, spawn_app, spawn_app_on, TestApp, DEADLINE, SECRET};

const WEBHOOK_REJECTED: &str = r#"codedeploy_exporter_events_total{source="webhook",outcome="rejected"}"#;
const WEBHOOK_APPLIED: &str = r#"codedeploy_exporter_events_total{source="webhook",outcome="applied"}"#;
const WEBHOOK_IGNORED: &str = r#"codedeploy_exporter_events_total{source="webhook",outcome="ignored"}"#;

/// `codedeploy_exporter_unauthenticated_requests_total` of the webhook for `reason`.
fn unauthenticated(reason: &str) -> String {
    format!(r#"codedeploy_exporter_unauthenticated_requests_total{{source="webhook",reason="{reason}"}}"#)
}

/// A CA, a server certificate for 127.0.0.1 it signed, a client certificate it
/// signed and a self-signed "rogue" client certificate, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client: (String, String),
    rogue: (String, String),
}

impl Pki {
    fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name.push(DnType::CommonName, "codedeploy-exporter test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");

        let leaf = |names: Vec<String>, issuer: Option<&CertifiedIssuer<'_, KeyPair>>| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.distinguished_name.push(DnType::CommonName, "leaf");
            let cert = match issuer {
                Some(issuer) => params.signed_by(&key, issuer).expect("signed"),
                None => params.self_signed(&key).expect("self-signed"),
            };
            (cert.pem(), key.serialize_pem())
        };
        let server = leaf(vec!["127.0.0.1".into(), "localhost".into()], Some(&ca));
        let client = leaf(vec!["prometheus.example".into()], Some(&ca));
        let rogue = leaf(vec!["prometheus.example".into()], None);

        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).expect("write");
        std::fs::write(dir.path().join("server.pem"), &server.0).expect("write");
        std::fs::write(dir.path().join("server.key"), &server.1).expect("write");
        Pki { dir, ca_pem: ca.pem(), client, rogue }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a web config file next to the certificates (relative names
    /// resolve against its directory) and returns its path.
    fn web_config(&self, name: &str, yaml: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, yaml).expect("write web config");
        path.to_str().expect("UTF-8 path").to_owned()
    }

    /// An HTTPS client trusting the test CA, presenting `identity` if given.
    fn client(&self, identity: Option<&(String, String)>) -> Https {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA PEM")).expect("root");
        Https::new(roots, identity)
    }
}

/// A small HTTPS client (hyper and rustls, as the exporter's own outbound client).
struct Https(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>);

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Https {
    fn new(roots: rustls::RootCertStore, identity: Option<&(String, String)>) -> Https {
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots);
        let config = match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![CertificateDer::from_pem_slice(cert.as_bytes()).expect("cert")],
                    PrivateKeyDer::from_pem_slice(key.as_bytes()).expect("key"),
                )
                .expect("client identity"),
            None => builder.with_no_client_auth(),
        };
        let connector =
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config).https_only().enable_http1().build();
        Https(Client::builder(TokioExecutor::new()).build(connector))
    }

    async fn send(&self, method: Method, url: &str, headers: &[(&str, &str)], body: &str) -> Result<Reply, String> {
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_owned()))).expect("request");
        let response = self.0.request(request).await.map_err(|e| format!("{e:?}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok(Reply { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }

    async fn get(&self, url: &str) -> Result<Reply, String> {
        self.send(Method::GET, url, &[], "").await
    }

    async fn status(&self, url: &str) -> u16 {
        self.get(url).await.expect("request").status
    }
}

fn basic(user: &str, password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn https(app: &TestApp, path: &str) -> String {
    format!("https://{}{}", app.address, path)
}

#[tokio::test]
async fn tls_serves_every_endpoint_and_only_over_tls() {
    let pki = Pki::new();
    let config = pki.web_config("web.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n");
    let app = spawn_app(&["--web.config.file", &config]).await;
    let client = pki.client(None);

    let metrics = client.get(&https(&app, "/metrics")).await.expect("https scrape");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("codedeploy_exporter_build_info"));
    assert_eq!(client.status(&https(&app, "/-/healthy")).await, 200);
    let bearer = format!("Bearer {SECRET}");
    let event = eventbridge("d-TLS000001", "START", "2026-11-26T10:00:00Z");
    let posted = client
        .send(Method::POST, &https(&app, "/events"), &[("authorization", &bearer)], &event)
        .await
        .expect("webhook over TLS");
    assert_eq!((posted.status, posted.body.as_str()), (200, r#"{"outcome":"applied"}"#));

    // Plain HTTP on the TLS port gets no HTTP answer.
    assert!(app.client.get(app.url("/metrics")).send().await.is_err(), "plain HTTP must not be served");
    // A client that does not trust the server's CA refuses the handshake.
    let untrusting = Https::new(rustls::RootCertStore::empty(), None);
    assert!(untrusting.get(&https(&app, "/metrics")).await.is_err());
    // The server is still fine after failed handshakes.
    assert_eq!(client.status(&https(&app, "/-/ready")).await, 200);
}

#[tokio::test]
async fn a_renewed_certificate_is_served_without_a_restart() {
    let pki = Pki::new();
    let config = pki.web_config("web.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n");
    let app = spawn_app(&["--web.config.file", &config]).await;
    let metrics = https(&app, "/metrics");
    assert_eq!(pki.client(None).status(&metrics).await, 200);

    // Renewal by another CA, written over the same files.
    let renewed = Pki::new();
    std::fs::copy(renewed.path("server.pem"), pki.path("server.pem")).expect("copy");
    std::fs::copy(renewed.path("server.key"), pki.path("server.key")).expect("copy");
    eventually("the renewed certificate being served", DEADLINE, || async {
        renewed.client(None).get(&metrics).await.ok().map(drop)
    })
    .await;
    assert!(pki.client(None).get(&metrics).await.is_err(), "the old CA no longer matches");

    // A broken renewal keeps the last good pair: throughout three of the
    // once-a-second checks for changed files, the renewed pair answers.
    std::fs::write(pki.path("server.pem"), "not a certificate").expect("write");
    let watched = tokio::time::Instant::now();
    while watched.elapsed() < Duration::from_secs(3) {
        assert_eq!(renewed.client(None).status(&metrics).await, 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn basic_auth_with_bcrypt_hashes() {
    let pki = Pki::new();
    // Cost 4 keeps debug builds fast; the exporter takes any cost from 4 to 31.
    let hash = bcrypt::hash("correct horse", 4).expect("bcrypt");
    let config = pki.web_config(
        "web.yml",
        &format!(
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n\
             basic_auth_users:\n  prometheus: '{hash}'\n\
             http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n"
        ),
    );
    let app = spawn_app(&["--web.config.file", &config]).await;
    let client = pki.client(None);
    let metrics = https(&app, "/metrics");
    let scrape = |authorization: Option<String>| {
        let (client, metrics) = (&client, &metrics);
        async move {
            let headers: Vec<(&str, &str)> = authorization.iter().map(|a| ("authorization", a.as_str())).collect();
            client.send(Method::GET, metrics, &headers, "").await.expect("request")
        }
    };

    let right = scrape(Some(basic("prometheus", "correct horse"))).await;
    assert_eq!(right.status, 200);
    assert_eq!(right.headers["x-frame-options"], "deny");
    assert_eq!(right.headers["strict-transport-security"], "max-age=31536000");
    // Cached outcomes answer the same.
    assert_eq!(scrape(Some(basic("prometheus", "correct horse"))).await.status, 200);

    let wrong = scrape(Some(basic("prometheus", "battery staple"))).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.headers["www-authenticate"], "Basic");
    assert_eq!(wrong.headers["x-frame-options"], "deny", "headers on refusals too");
    assert_eq!(scrape(None).await.status, 401);
    assert_eq!(scrape(Some(basic("nobody", "correct horse"))).await.status, 401);
    assert_eq!(scrape(Some("Basic !!!".to_owned())).await.status, 401);
    assert_eq!(scrape(Some(format!("Bearer {SECRET}"))).await.status, 401);

    // Every endpoint needs credentials, except the liveness probe.
    assert_eq!(client.status(&https(&app, "/-/healthy")).await, 200);
    for path in ["/", "/-/ready", "/nothing-here"] {
        assert_eq!(client.status(&https(&app, path)).await, 401, "{path}");
    }
    // The webhook needs both: basic auth takes the Authorization header, so the secret goes in X-Api-Key.
    let body = eventbridge("d-BASIC0001", "START", "2026-11-26T10:00:00Z");
    let events = https(&app, "/events");
    let without = client.send(Method::POST, &events, &[("x-api-key", SECRET)], &body).await.expect("post");
    assert_eq!(without.status, 401);
    let credentials = basic("prometheus", "correct horse");
    let only_basic = client.send(Method::POST, &events, &[("authorization", &credentials)], &body).await.expect("post");
    assert_eq!(only_basic.status, 401, "basic auth alone does not open the webhook");
    let both = client
        .send(Method::POST, &events, &[("authorization", &credentials), ("x-api-key", SECRET)], &body)
        .await
        .expect("post");
    assert_eq!(both.status, 200);
}

#[tokio::test]
async fn client_certificates_required_and_verified() {
    let pki = Pki::new();
    let config = pki.web_config(
        "web.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_ca_file: ca.pem\n  client_auth_type: RequireAndVerifyClientCert\n",
    );
    let app = spawn_app(&["--web.config.file", &config]).await;
    let with_cert = pki.client(Some(&pki.client));
    let metrics = https(&app, "/metrics");
    assert_eq!(with_cert.status(&metrics).await, 200);
    assert!(pki.client(None).get(&metrics).await.is_err(), "no certificate: refused");
    assert!(pki.client(Some(&pki.rogue)).get(&metrics).await.is_err(), "unknown issuer: refused");
    // Even the liveness probe needs the certificate: TLS comes before any path.
    assert!(pki.client(None).get(&https(&app, "/-/healthy")).await.is_err());

    // VerifyClientCertIfGiven lets clients without a certificate in, but not with a bad one.
    let optional = pki.web_config(
        "optional.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_ca_file: ca.pem\n  client_auth_type: VerifyClientCertIfGiven\n",
    );
    let app = spawn_app(&["--web.config.file", &optional]).await;
    let metrics = https(&app, "/metrics");
    assert_eq!(pki.client(None).status(&metrics).await, 200);
    assert_eq!(with_cert.status(&metrics).await, 200);
    assert!(pki.client(Some(&pki.rogue)).get(&metrics).await.is_err());

    // RequireAnyClientCert takes any certificate whose key the client holds, but wants one.
    let any = pki.web_config(
        "any.yml",
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth_type: RequireAnyClientCert\n",
    );
    let app = spawn_app(&["--web.config.file", &any]).await;
    let metrics = https(&app, "/metrics");
    assert_eq!(pki.client(Some(&pki.rogue)).status(&metrics).await, 200);
    assert!(pki.client(None).get(&metrics).await.is_err());
}

/// Parses and validates `serve` flags, returning the error message.
fn config_error(extra: &[&str]) -> String {
    let mut argv = vec!["codedeploy-exporter", "serve"];
    argv.extend_from_slice(extra);
    let cli = Cli::try_parse_from(argv).expect("flags parse");
    let CliCommand::Serve(args) = cli.command else { unreachable!("serve") };
    args.validate(None).expect_err("invalid").to_string()
}

#[tokio::test]
async fn bad_security_configuration_stops_the_start() {
    let pki = Pki::new();
    let error = config_error(&["--web.config.file", "/nonexistent/web.yml"]);
    assert!(error.contains("--web.config.file /nonexistent/web.yml: cannot read it"), "{error}");
    let missing_key = pki.web_config("missing.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: nope.key\n");
    let error = config_error(&["--web.config.file", &missing_key]);
    assert!(error.contains("cannot read") && error.contains("nope.key"), "{error}");
    // The client's key with the server's certificate.
    std::fs::write(pki.path("client.key"), &pki.client.1).expect("write");
    let mismatched = pki.web_config("mismatch.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: client.key\n");
    let error = config_error(&["--web.config.file", &mismatched]);
    assert!(error.contains("does not go with the certificate"), "{error}");
    let plain = pki.web_config("plain.yml", "basic_auth_users:\n  prometheus: hunter2\n");
    let error = config_error(&["--web.config.file", &plain]);
    assert!(error.contains("not a bcrypt hash"), "{error}");
    let unknown = pki.web_config("unknown.yml", "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  client_auth: RequireAnyClientCert\n");
    let error = config_error(&["--web.config.file", &unknown]);
    assert!(error.contains("unknown field `client_auth`"), "{error}");

    let error = config_error(&["--webhook.sns-verify-signatures"]);
    assert!(error.contains("needs at least one --webhook.sns-topic-arn"), "{error}");
    let error = config_error(&["--webhook.sns-cert-host", "https://sns.example"]);
    assert!(error.contains("is not a host pattern"), "{error}");
    let error = config_error(&["--webhook.rate-limit=-1"]);
    assert!(error.contains("--webhook.rate-limit"), "{error}");
}

#[test]
fn the_secret_never_shows_in_debug_output() {
    let cli = Cli::try_parse_from(["codedeploy-exporter", "serve", "--webhook.secret", "sup3r-s3cret-value"]).expect("parse");
    assert!(!format!("{cli:?}").contains("sup3r-s3cret-value"), "{cli:?}");
    let CliCommand::Serve(args) = cli.command else { unreachable!("serve") };
    let config = args.validate(None).expect("valid");
    assert!(!format!("{config:?}").contains("sup3r-s3cret-value"), "{config:?}");
}

#[tokio::test]
async fn the_webhook_rate_limit_answers_429_with_retry_after() {
    let app = spawn_app(&["--webhook.rate-limit", "0.5", "--webhook.rate-burst", "2"]).await;
    for id in ["d-RATE00001", "d-RATE00002"] {
        let (status, _) = app.post_event(eventbridge(id, "START", "2026-11-26T10:00:00Z")).await;
        assert_eq!(status, 200);
    }
    let response = app
        .client
        .post(app.url("/events"))
        .header("Authorization", format!("Bearer {SECRET}"))
        .body(eventbridge("d-RATE00003", "START", "2026-11-26T10:00:00Z"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().expect("ascii").parse().expect("seconds");
    assert!((1..=2).contains(&retry_after), "Retry-After {retry_after}");
    // Only the webhook is limited.
    assert_eq!(sample(&app.scrape().await, WEBHOOK_APPLIED), Some(2.0));
}

/// Requests per path.
type Hits = Arc<Mutex<HashMap<String, usize>>>;

/// The path SNS serves its signing certificate at (`SimpleNotificationService-<hex>.pem`).
const CERT_PATH: &str = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem";

/// How long the stand-in takes to answer for a certificate it does not have.
const MISSING_CERT_DELAY: Duration = Duration::from_millis(300);

/// A stand-in for SNS on 127.0.0.1 over HTTPS: serves the signing
/// certificate and the confirmation URL, answers 404 (slowly) for any other
/// certificate, and counts what was fetched and how many fetches overlapped.
struct FakeSns {
    address: std::net::SocketAddr,
    hits: Hits,
    /// Requests being answered now, and the most there ever were at once.
    in_flight: Arc<(AtomicUsize, AtomicUsize)>,
    shutdown: CancellationToken,
}

#[derive(Clone)]
struct FakeSnsState {
    hits: Hits,
    cert: String,
    in_flight: Arc<(AtomicUsize, AtomicUsize)>,
}

impl FakeSns {
    async fn start(pki: &Pki, signing_cert_pem: String) -> FakeSns {
        let hits: Hits = Arc::default();
        let in_flight: Arc<(AtomicUsize, AtomicUsize)> = Arc::default();
        async fn serve(State(state): State<FakeSnsState>, uri: Uri) -> (axum::http::StatusCode, String) {
            *state.hits.lock().expect("lock").entry(uri.path().to_owned()).or_default() += 1;
            let (now, most) = &*state.in_flight;
            most.fetch_max(now.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            let answer = match uri.path() {
                CERT_PATH => (axum::http::StatusCode::OK, state.cert.clone()),
                "/confirm" => (axum::http::StatusCode::OK, "<ConfirmSubscriptionResponse/>".to_owned()),
                _ => {
                    tokio::time::sleep(MISSING_CERT_DELAY).await;
                    (axum::http::StatusCode::NOT_FOUND, String::new())
                }
            };
            now.fetch_sub(1, Ordering::SeqCst);
            answer
        }
        let state = FakeSnsState { hits: hits.clone(), cert: signing_cert_pem, in_flight: in_flight.clone() };
        let router = axum::Router::new().fallback(serve).with_state(state);
        let chain = vec![CertificateDer::from_pem_file(pki.path("server.pem")).expect("cert")];
        let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).expect("key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("server config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let listener = codedeploy_exporter::http::tls::TlsListener::new(listener, Arc::new(config));
        let stopped = shutdown.clone().cancelled_owned();
        tokio::spawn(async move { axum::serve(listener, router).with_graceful_shutdown(stopped).await });
        FakeSns { address, hits, in_flight, shutdown }
    }

    fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{}", self.address.port(), path)
    }

    fn hits(&self, path: &str) -> usize {
        self.hits.lock().expect("lock").get(path).copied().unwrap_or(0)
    }

    fn most_in_flight(&self) -> usize {
        self.in_flight.1.load(Ordering::SeqCst)
    }
}

impl Drop for FakeSns {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Signs SNS messages as SNS does (SignatureVersion 2: SHA256withRSA over the canonical string).
struct Signer {
    key: aws_lc_rs::signature::RsaKeyPair,
    cert_pem: String,
}

impl Signer {
    fn new() -> Signer {
        let key = KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("RSA key");
        let mut params = CertificateParams::new(vec!["sns.us-east-1.amazonaws.com".to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, "sns.us-east-1.amazonaws.com");
        let cert_pem = params.self_signed(&key).expect("certificate").pem();
        let key = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&key.serialize_der()).expect("RSA key pair");
        Signer { key, cert_pem }
    }

    /// Fills in `SignatureVersion`, `Signature` and `SigningCertURL`.
    fn sign(&self, mut message: serde_json::Value, cert_url: &str) -> serde_json::Value {
        let fields: &[&str] = if message["Type"] == "Notification" {
            &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
        } else {
            &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
        };
        let mut canonical = String::new();
        for field in fields {
            if let Some(value) = message[*field].as_str() {
                canonical.push_str(&format!("{field}\n{value}\n"));
            }
        }
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(&aws_lc_rs::signature::RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), canonical.as_bytes(), &mut signature)
            .expect("sign");
        message["SignatureVersion"] = "2".into();
        message["Signature"] = base64::engine::general_purpose::STANDARD.encode(signature).into();
        message["SigningCertURL"] = cert_url.into();
        message
    }
}

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:codedeploy-deployments";

fn subscription_confirmation(subscribe_url: &str) -> serde_json::Value {
    serde_json::json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": "2336412f37fb687f5d51e6e241d09c805a5a57b30d712f794cc5f6a988666d92768dd60a747ba6f3beb71854e285d6ad02428b09ceece29417f1f02d609c582afbacc99c583a916b9981dd2728f4ae6fdb82efd087cc3b7849e05798d2d2785c03b0879594eeac82c01f235d0e717736",
        "TopicArn": TOPIC,
        "Message": format!("You have chosen to subscribe to the topic {TOPIC}.\nTo confirm the subscription, visit the SubscribeURL included in this message."),
        "SubscribeURL": subscribe_url,
        "Timestamp": "2026-11-26T10:00:00.000Z",
    })
}

fn notification(deployment_id: &str, status: &str) -> serde_json::Value {
    let trigger = serde_json::json!({
        "region": "us-east-1", "accountId": "123456789012", "eventTriggerName": "deployments",
        "applicationName": "checkout", "deploymentId": deployment_id, "deploymentGroupName": "prod",
        "createTime": "Thu Nov 26 10:00:00 UTC 2026", "completeTime": null, "status": status,
    });
    serde_json::json!({
        "Type": "Notification",
        "MessageId": format!("{deployment_id}-{status}"),
        "TopicArn": TOPIC,
        "Subject": format!("{status}: AWS CodeDeploy {deployment_id} in us-east-1 to checkout"),
        "Message": trigger.to_string(),
        "Timestamp": "2026-11-26T10:00:05.000Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    })
}

/// POSTs as SNS does: no secret, the message type in `x-amz-sns-message-type`.
async fn deliver(app: &TestApp, message: &serde_json::Value) -> (u16, serde_json::Value) {
    deliver_to(&app.client, &app.url("/events"), message).await
}

async fn deliver_to(client: &reqwest::Client, url: &str, message: &serde_json::Value) -> (u16, serde_json::Value) {
    let response = client
        .post(url)
        .header("x-amz-sns-message-type", message["Type"].as_str().expect("Type"))
        .header("content-type", "text/plain; charset=UTF-8")
        .body(message.to_string())
        .send()
        .await
        .expect("deliver");
    let status = response.status().as_u16();
    let text = response.text().await.expect("reply");
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

fn sns_flags<'a>(pki: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut flags = vec![
        "--webhook.sns-ca-file",
        pki.to_str().expect("UTF-8 path"),
        "--webhook.sns-cert-host",
        "127.0.0.1",
        "--webhook.sns-subscribe-host",
        "127.0.0.1",
    ];
    flags.extend_from_slice(extra);
    flags
}

#[tokio::test]
async fn signed_sns_deliveries_are_verified_confirmed_and_applied() {
    let pki = Pki::new();
    let signer = Signer::new();
    let sns = FakeSns::start(&pki, signer.cert_pem.clone()).await;
    let ca = pki.path("ca.pem");
    let flags = sns_flags(&ca, &["--webhook.sns-verify-signatures", "--webhook.sns-topic-arn", "arn:aws:sns:us-east-1:123456789012:*"]);
    let app = spawn_app(&flags).await;
    let cert_url = sns.url(CERT_PATH);

    // The subscription is confirmed by fetching SubscribeURL, once.
    let confirmation = signer.sign(subscription_confirmation(&sns.url("/confirm")), &cert_url);
    let (status, reply) = deliver(&app, &confirmation).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("ignored")), "{reply}");
    assert_eq!(sns.hits("/confirm"), 1);

    // A signed notification is applied; the certificate comes from the cache.
    let (status, reply) = deliver(&app, &signer.sign(notification("d-SNSSIGN01", "IN_PROGRESS"), &cert_url)).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("applied")), "{reply}");
    assert_eq!(sns.hits(CERT_PATH), 1, "certificate fetched once, then cached");

    // Tampered after signing: 401, with the reason.
    let mut tampered = signer.sign(notification("d-SNSSIGN02", "IN_PROGRESS"), &cert_url);
    tampered["Message"] = tampered["Message"].as_str().expect("text").replace("d-SNSSIGN02", "d-SNSFORGED").into();
    let (status, reply) = deliver(&app, &tampered).await;
    assert_eq!((status, reply["reason"].as_str()), (401, Some("sns_bad_signature")), "{reply}");

    // Signed by SNS, but for a topic that is not ours: 403.
    let mut foreign = notification("d-SNSSIGN03", "IN_PROGRESS");
    foreign["TopicArn"] = "arn:aws:sns:us-east-1:999999999999:attacker".into();
    let (status, reply) = deliver(&app, &signer.sign(foreign, &cert_url)).await;
    assert_eq!((status, reply["reason"].as_str()), (403, Some("sns_topic_not_allowed")), "{reply}");

    // A certificate URL off the allow-list is never fetched.
    let elsewhere = signer.sign(notification("d-SNSSIGN04", "IN_PROGRESS"), "https://certs.example.org/sns.pem");
    let (status, reply) = deliver(&app, &elsewhere).await;
    assert_eq!((status, reply["reason"].as_str()), (401, Some("sns_cert_url_not_allowed")), "{reply}");

    // A confirmation pointing off the allow-list is refused and not fetched.
    let (status, reply) = deliver(&app, &signer.sign(subscription_confirmation("https://example.org/confirm"), &cert_url)).await;
    assert_eq!((status, reply["reason"].as_str()), (403, Some("sns_subscribe_url_not_allowed")), "{reply}");
    assert_eq!(sns.hits("/confirm"), 1);

    // Unsigned (no signature fields at all), and without the SNS header or the secret.
    let (status, _) = deliver(&app, &notification("d-SNSSIGN05", "IN_PROGRESS")).await;
    assert_eq!(status, 400);
    let plain = app.client.post(app.url("/events")).body(notification("d-SNSSIGN06", "IN_PROGRESS").to_string()).send().await.expect("post");
    assert_eq!(plain.status(), 401);
    // EventBridge with the secret still works beside SNS.
    assert_eq!(app.post_event(eventbridge("d-EB0000001", "START", "2026-11-26T10:00:00Z")).await.0, 200);

    let metrics = app.scrape().await;
    assert_eq!(sample(&metrics, WEBHOOK_APPLIED), Some(2.0));
    assert_eq!(sample(&metrics, WEBHOOK_IGNORED), Some(1.0));
    // Only the signed confirmation with an off-list URL was authenticated;
    // the rest anyone could have sent, and they are counted apart, in memory.
    assert_eq!(sample(&metrics, WEBHOOK_REJECTED), Some(1.0), "the subscribe URL");
    for (reason, count) in [
        ("sns_bad_signature", 1.0),
        ("sns_topic_not_allowed", 1.0),
        ("sns_cert_url_not_allowed", 1.0),
        ("invalid_sns_message", 1.0),
        ("sns_unexpected_keys", 0.0),
        ("sns_signature_version", 0.0),
    ] {
        assert_eq!(sample(&metrics, &unauthenticated(reason)), Some(count), "{reason}");
    }
    assert!(!metrics.contains("d-SNSFORGED"));
    assert_eq!(sns.hits(CERT_PATH), 1);

    // Unauthenticated refusals never reach the store: after a restart on it
    // the committed rejection is still there, the in-memory counts are gone.
    let storage = app.stop().await;
    let app = spawn_app_on(storage, &flags).await;
    let metrics = app.scrape().await;
    assert_eq!(sample(&metrics, WEBHOOK_REJECTED), Some(1.0));
    assert_eq!(sample(&metrics, &unauthenticated("sns_bad_signature")), Some(0.0));
}

/// A valid signature covers `Type`, `Message`, `MessageId`, `Subject`,
/// `Timestamp` and `TopicArn` only. Any subscriber of the topic holds signed
/// notifications (they never expire) and can add keys to one: none of what
/// those keys say may be applied.
#[tokio::test]
async fn keys_a_signature_does_not_cover_are_refused() {
    let pki = Pki::new();
    let signer = Signer::new();
    let sns = FakeSns::start(&pki, signer.cert_pem.clone()).await;
    let ca = pki.path("ca.pem");
    let app = spawn_app(&sns_flags(&ca, &["--webhook.sns-verify-signatures", "--webhook.sns-topic-arn", TOPIC])).await;
    let cert_url = sns.url(CERT_PATH);
    let signed = signer.sign(notification("d-SIGNED001", "IN_PROGRESS"), &cert_url);

    let smuggled_trigger = serde_json::json!({
        "region": "us-east-1", "accountId": "123456789012", "applicationName": "smuggled-records",
        "deploymentId": "d-SMUGGLE02", "deploymentGroupName": "smuggled", "status": "SUCCEEDED",
    });
    let foreign: [(&str, serde_json::Value); 4] = [
        (
            "EventBridge keys",
            serde_json::json!({
                "detail-type": "CodeDeploy Deployment State-change Notification", "source": "aws.codedeploy",
                "account": "123456789012", "region": "us-east-1", "time": "2026-11-26T10:00:00Z",
                "detail": {"region": "us-east-1", "application": "smuggled-eventbridge", "deploymentId": "d-SMUGGLE01",
                           "state": "SUCCESS", "deploymentGroup": "smuggled"},
            }),
        ),
        (
            "a Records array",
            serde_json::json!({"Records": [{"Sns": {"Type": "Notification", "Message": smuggled_trigger.to_string()}}]}),
        ),
        (
            "deploymentInfo",
            serde_json::json!({"deploymentInfo": {
                "applicationName": "smuggled-api", "deploymentGroupName": "smuggled", "deploymentId": "d-SMUGGLE03",
                "status": "Succeeded", "creator": "user", "createTime": 1795600000.0, "completeTime": 1795600300.0,
            }}),
        ),
        (
            "a commit record",
            serde_json::json!({"type": "commit", "commit": "abcdef0123456789", "committed_at": "2026-11-26T09:00:00Z"}),
        ),
    ];
    for (what, keys) in foreign {
        let mut body = signed.clone();
        for (key, value) in keys.as_object().expect("an object") {
            body[key] = value.clone();
        }
        let (status, reply) = deliver(&app, &body).await;
        assert_eq!((status, reply["reason"].as_str()), (400, Some("sns_unexpected_keys")), "{what}: {reply}");
    }
    // Refused before the signature is checked: no certificate was fetched for them.
    assert_eq!(sns.hits(CERT_PATH), 0);

    // The same notification without the added keys is applied, from its signed fields.
    let (status, reply) = deliver(&app, &signed).await;
    assert_eq!((status, reply["outcome"].as_str()), (200, Some("applied")), "{reply}");

    let metrics = app.scrape().await;
    assert_eq!(sample(&metrics, WEBHOOK_APPLIED), Some(1.0), "only the clean notification");
    assert_eq!(sample(&metrics, WEBHOOK_REJECTED), Some(0.0));
    assert_eq!(sample(&metrics, &unauthenticated("sns_unexpected_keys")), Some(4.0));
    assert!(metrics.contains(r#"application="checkout""#));
    for smuggled in ["smuggled", "d-SMUGGLE"] {
        assert!(!metrics.contains(smuggled), "{smuggled} reached /metrics");
    }
    assert_eq!(sample(&metrics, "codedeploy_exporter_deployments_tracked"), Some(1.0));
}

/// Certificate URLs: only SNS's own path, a failed fetch is remembered
/// instead of repeated, and fetches of distinct URLs are bounded.
#[tokio::test]
async fn certificate_fetches_are_bounded_and_failures_remembered() {
    use codedeploy_exporter::sources::sns::CONCURRENT_FETCHES;

    let pki = Pki::new();
    let signer = Signer::new();
    let sns = FakeSns::start(&pki, signer.cert_pem.clone()).await;
    let ca = pki.path("ca.pem");
    let app = spawn_app(&sns_flags(&ca, &["--webhook.sns-verify-signatures", "--webhook.sns-topic-arn", TOPIC])).await;

    // On an allowed host, a path that is not SNS's certificate path is never fetched.
    for path in ["/cert.pem", "/confirm", "/SimpleNotificationService-test.pem"] {
        let (status, reply) = deliver(&app, &signer.sign(notification("d-CERTPATH1", "IN_PROGRESS"), &sns.url(path))).await;
        assert_eq!((status, reply["reason"].as_str()), (401, Some("sns_cert_url_not_allowed")), "{path}: {reply}");
        assert_eq!(sns.hits(path), 0, "{path}");
    }

    // Three times as many distinct missing certificates as fetches allowed at once, all at once.
    let paths: Vec<String> = (0..3 * CONCURRENT_FETCHES).map(|i| format!("/SimpleNotificationService-dead{i:04x}.pem")).collect();
    let deliveries: Vec<_> = paths
        .iter()
        .map(|path| {
            let body = signer.sign(notification("d-CERTMISS1", "IN_PROGRESS"), &sns.url(path));
            let (client, url) = (app.client.clone(), app.url("/events"));
            tokio::spawn(async move { deliver_to(&client, &url, &body).await })
        })
        .collect();
    for delivery in deliveries {
        let (status, reply) = delivery.await.expect("delivery task");
        assert_eq!((status, reply["reason"].as_str()), (503, Some("sns_cert_unavailable")), "{reply}");
    }
    let most = sns.most_in_flight();
    assert!(most <= CONCURRENT_FETCHES, "{most} fetches at once, more than {CONCURRENT_FETCHES}");
    assert!(most >= 2, "the deliveries did not overlap ({most}), so the bound was not exercised");
    assert!(paths.iter().all(|path| sns.hits(path) == 1), "each certificate fetched once");

    // Delivered again: the failure is remembered, nothing is fetched.
    let (status, reply) = deliver(&app, &signer.sign(notification("d-CERTMISS1", "IN_PROGRESS"), &sns.url(&paths[0]))).await;
    assert_eq!((status, reply["reason"].as_str()), (503, Some("sns_cert_unavailable")), "{reply}");
    assert_eq!(sns.hits(&paths[0]), 1, "a failed fetch is not repeated at once");

    // A transient failure is SNS's to retry, not the sender's mistake: counted nowhere.
    let metrics = app.scrape().await;
    assert_eq!(sample(&metrics, WEBHOOK_REJECTED), Some(0.0));
    assert_eq!(sample(&metrics, &unauthenticated("sns_cert_url_not_allowed")), Some(3.0));
    assert!(!metrics.contains("d-CERTMISS1") && !metrics.contains("d-CERTPATH1"));
}

#[tokio::test]
async fn without_signature_verification_sns_needs_the_secret() {
    let pki = Pki::new();
    let sns = FakeSns::start(&pki, String::new()).await;
    let ca = pki.path("ca.pem");
    let app = spawn_app(&sns_flags(&ca, &[])).await;
    let confirmation = subscription_confirmation(&sns.url("/confirm"));

    // SNS itself cannot send the secret: 401, and nothing is fetched.
    let (status, _) = deliver(&app, &confirmation).await;
    assert_eq!(status, 401);
    assert_eq!(sns.hits("/confirm"), 0);

    // Through something that adds the secret (a proxy), the confirmation goes through.
    let response = app
        .client
        .post(app.url("/events"))
        .header("x-amz-sns-message-type", "SubscriptionConfirmation")
        .header("X-Api-Key", SECRET)
        .body(confirmation.to_string())
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 200);
    assert_eq!(sns.hits("/confirm"), 1);
}
