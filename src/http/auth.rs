//! What the web config file asks of every request, in exporter-toolkit's
//! order: the global `rate_limit` (429), the configured response headers, then
//! HTTP basic auth against the bcrypt hashes of `basic_auth_users` (401 with
//! `WWW-Authenticate: Basic`).
//!
//! One deliberate difference: exporter-toolkit checks credentials on every
//! path; here `/-/healthy` is exempt, so that liveness probes (kubelet, load
//! balancers, systemd watchdogs) need no credentials. It says "the process is
//! up" and nothing else. `/-/ready`, `/`, the metrics and `/events` all need
//! them. On `/events` the webhook's own authentication (shared secret or SNS
//! signature) comes on top of basic auth.
//!
//! Like toolkit: an unknown user costs the same bcrypt work as a known one (no
//! user enumeration by timing), one bcrypt comparison runs at a time (they are
//! CPU-heavy by design), and outcomes are cached by a digest of user, hash and
//! password so that a scrape every few seconds does not pay bcrypt each time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::rate_limit::{retry_after_seconds, TokenBucket};
use super::web_config::{PasswordHash, WebConfig};

/// Paths served without credentials.
pub const UNAUTHENTICATED_PATHS: &[&str] = &["/-/healthy"];

/// Most cached outcomes; the cache is emptied when full.
const CACHE_CAPACITY: usize = 1024;

pub struct WebAuth {
    users: HashMap<String, PasswordHash>,
    /// Compared against when the user is unknown, at the cost of the real hashes.
    decoy: PasswordHash,
    headers: Vec<(header::HeaderName, header::HeaderValue)>,
    limiter: Option<TokenBucket>,
    cache: Mutex<HashMap<[u8; 32], bool>>,
    bcrypt: Arc<Mutex<()>>,
}

impl std::fmt::Debug for WebAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebAuth").field("users", &self.users.keys().collect::<Vec<_>>()).finish_non_exhaustive()
    }
}

impl WebAuth {
    /// `None` when the file asks nothing of requests (TLS only).
    pub fn new(config: &WebConfig) -> Option<WebAuth> {
        if config.users.is_empty() && config.headers.is_empty() && config.rate_limit.is_none() {
            return None;
        }
        let cost = config
            .users
            .values()
            .filter_map(|h| h.0.parse::<bcrypt::HashParts>().ok())
            .map(|p| p.get_cost())
            .max()
            .unwrap_or(4);
        // A fixed salt: the decoy only has to cost what a real comparison costs.
        let decoy = bcrypt::hash_with_salt("decoy password", cost, [7; 16])
            .map(|parts| PasswordHash(parts.to_string()))
            .unwrap_or_else(|_| PasswordHash(String::new()));
        Some(WebAuth {
            users: config.users.iter().map(|(u, h)| (u.clone(), h.clone())).collect(),
            decoy,
            headers: config.headers.clone(),
            limiter: config.rate_limit.map(|(rate, burst)| TokenBucket::new(rate, burst)),
            cache: Mutex::new(HashMap::new()),
            bcrypt: Arc::new(Mutex::new(())),
        })
    }

    async fn check(&self, user: &str, password: &str) -> bool {
        let known = self.users.get(user);
        let hash = known.unwrap_or(&self.decoy).0.clone();
        let key = cache_key(user, &hash, password);
        let cached = self.cache.lock().unwrap_or_else(|p| p.into_inner()).get(&key).copied();
        let matches = match cached {
            Some(matches) => matches,
            None => {
                let password = password.to_owned();
                let gate = self.bcrypt.clone();
                let matches = tokio::task::spawn_blocking(move || {
                    let _one_at_a_time = gate.lock().unwrap_or_else(|p| p.into_inner());
                    bcrypt::verify(password, &hash).unwrap_or(false)
                })
                .await
                .unwrap_or(false);
                let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
                cache.insert(key, matches);
                matches
            }
        };
        matches && known.is_some()
    }
}

fn cache_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for part in [user, hash, password] {
        context.update(&(part.len() as u64).to_be_bytes());
        context.update(part.as_bytes());
    }
    let mut key = [0; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

/// `Authorization: Basic base64(user:password)`.
fn basic_credentials(request: &Request) -> Option<(String, String)> {
    let value = request.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Middleware over the whole router.
pub async fn enforce(State(auth): State<Arc<WebAuth>>, request: Request, next: Next) -> Response {
    if let Some(limiter) = &auth.limiter {
        if let Err(wait) = limiter.try_take() {
            let mut response = (StatusCode::TOO_MANY_REQUESTS, "too many requests\n").into_response();
            response.headers_mut().insert(header::RETRY_AFTER, retry_after_seconds(wait).into());
            return with_headers(&auth, response);
        }
    }
    let exempt = UNAUTHENTICATED_PATHS.contains(&request.uri().path());
    if !auth.users.is_empty() && !exempt {
        let allowed = match basic_credentials(&request) {
            Some((user, password)) => auth.check(&user, &password).await,
            None => false,
        };
        if !allowed {
            let response = (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Basic")],
                "Unauthorized\n",
            )
                .into_response();
            return with_headers(&auth, response);
        }
    }
    with_headers(&auth, next.run(request).await)
}

fn with_headers(auth: &WebAuth, mut response: Response) -> Response {
    for (name, value) in &auth.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}
