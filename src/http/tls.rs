//! TLS for the HTTP server: the rustls configuration built from the web config
//! file's `tls_server_config`, and a listener that hands axum connections
//! whose handshake is complete.
//!
//! One crypto provider, aws-lc-rs (the one the AWS SDK's HTTPS client uses),
//! serves everything. The certificate and key files are re-read when they
//! change on disk (checked at most once a second, on new connections), as
//! exporter-toolkit re-reads them per connection, so a renewed certificate
//! (cert-manager, certbot) is picked up without a restart; a renewal that does
//! not load (a half-written file) keeps the previous pair and logs why.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, SupportedKxGroup};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, NamedGroup, RootCertStore, ServerConfig, SignatureScheme};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::web_config::{ClientAuth, Curve, Pem, TlsSettings, TlsVersion};

/// The crypto provider every TLS use in the exporter shares.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the server configuration; every file is read and checked here.
pub fn server_config(settings: &TlsSettings) -> Result<ServerConfig, String> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    if let Some(names) = &settings.cipher_suites {
        provider.cipher_suites = cipher_suites(&provider, names)?;
    }
    if let Some(curves) = &settings.curves {
        provider.kx_groups = kx_groups(&provider, curves)?;
    }
    let provider = Arc::new(provider);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (settings.min_version..=settings.max_version).contains(v))
    .map(|(_, version)| version)
    .collect();
    let verifier = client_verifier(settings, &provider)?;
    let resolver = ReloadingCert::load(settings.cert.clone(), settings.key.clone(), provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e} (check cipher_suites against min_version/max_version)"))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(resolver));
    config.ignore_client_order = settings.prefer_server_cipher_suites;
    // The router speaks HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The TLS 1.2 suites named (Go and IANA spell them alike), in that order;
/// TLS 1.3 suites are always on, as in Go.
fn cipher_suites(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<rustls::SupportedCipherSuite>, String> {
    let name_of = |suite: &rustls::SupportedCipherSuite| format!("{:?}", suite.suite());
    let mut chosen: Vec<rustls::SupportedCipherSuite> =
        provider.cipher_suites.iter().copied().filter(|s| s.tls13().is_some()).collect();
    for name in names {
        // Go names TLS 1.3 suites TLS_AES_128_GCM_SHA256; rustls TLS13_AES_128_GCM_SHA256.
        if provider.cipher_suites.iter().any(|s| s.tls13().is_some() && name_of(s) == name.replacen("TLS_", "TLS13_", 1)) {
            continue;
        }
        match provider.cipher_suites.iter().find(|s| s.tls13().is_none() && name_of(s) == *name) {
            Some(suite) if !chosen.contains(suite) => chosen.push(*suite),
            Some(_) => {}
            None => {
                let known: Vec<String> =
                    provider.cipher_suites.iter().filter(|s| s.tls13().is_none()).map(name_of).collect();
                return Err(format!(
                    "tls_server_config.cipher_suites: {name:?} is not supported (supported TLS 1.2 suites: {})",
                    known.join(", ")
                ));
            }
        }
    }
    Ok(chosen)
}

fn kx_groups(provider: &CryptoProvider, curves: &[Curve]) -> Result<Vec<&'static dyn SupportedKxGroup>, String> {
    curves
        .iter()
        .map(|curve| {
            let (group, name) = match curve {
                Curve::P256 => (NamedGroup::secp256r1, "CurveP256"),
                Curve::P384 => (NamedGroup::secp384r1, "CurveP384"),
                Curve::P521 => (NamedGroup::secp521r1, "CurveP521"),
                Curve::X25519 => (NamedGroup::X25519, "X25519"),
            };
            provider.kx_groups.iter().copied().find(|g| g.name() == group).ok_or_else(|| {
                format!("tls_server_config.curve_preferences: {name} is not supported (use CurveP256, CurveP384 or X25519)")
            })
        })
        .collect()
}

fn client_verifier(settings: &TlsSettings, provider: &Arc<CryptoProvider>) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let any = |mandatory| -> Arc<dyn ClientCertVerifier> { Arc::new(AnyClientCert { provider: provider.clone(), mandatory }) };
    Ok(match settings.client_auth {
        ClientAuth::NoClientCert => WebPkiClientVerifier::no_client_auth(),
        ClientAuth::RequestClientCert => any(false),
        ClientAuth::RequireAnyClientCert => any(true),
        ClientAuth::VerifyClientCertIfGiven | ClientAuth::RequireAndVerifyClientCert => {
            let ca = settings.client_ca.as_ref().ok_or("tls_server_config: client_ca_file is required")?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(ca, "client_ca")? {
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_server_config: a certificate of {} is not a usable CA: {e}", ca.describe("client_ca")))?;
            }
            let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let builder = if settings.client_auth == ClientAuth::VerifyClientCertIfGiven {
                builder.allow_unauthenticated()
            } else {
                builder
            };
            builder.build().map_err(|e| format!("tls_server_config: client CA: {e}"))?
        }
    })
}

fn certificates(pem: &Pem, inline_key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = pem.read().map_err(|e| format!("tls_server_config: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("tls_server_config: {} is not valid PEM: {e}", pem.describe(inline_key)))?;
    if certs.is_empty() {
        return Err(format!("tls_server_config: {} holds no PEM certificate", pem.describe(inline_key)));
    }
    Ok(certs)
}

fn certified_key(cert: &Pem, key: &Pem, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain = certificates(cert, "cert")?;
    let key_bytes = key.read().map_err(|e| format!("tls_server_config: {e}"))?;
    let private = PrivateKeyDer::from_pem_slice(&key_bytes)
        .map_err(|e| format!("tls_server_config: {} holds no usable PEM private key: {e}", key.describe("key")))?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        format!(
            "tls_server_config: the key {} does not go with the certificate {}: {e}",
            key.describe("key"),
            cert.describe("cert")
        )
    })
}

fn modified(pem: &Pem) -> Option<SystemTime> {
    match pem {
        Pem::File(path) => std::fs::metadata(path).and_then(|m| m.modified()).ok(),
        Pem::Inline(_) => None,
    }
}

/// Serves the certificate, re-reading the files when their modification times change.
#[derive(Debug)]
struct ReloadingCert {
    cert: Pem,
    key: Pem,
    provider: Arc<CryptoProvider>,
    state: Mutex<CertState>,
}

#[derive(Debug)]
struct CertState {
    current: Arc<CertifiedKey>,
    stamps: (Option<SystemTime>, Option<SystemTime>),
    checked: Instant,
}

const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

impl ReloadingCert {
    fn load(cert: Pem, key: Pem, provider: Arc<CryptoProvider>) -> Result<ReloadingCert, String> {
        let stamps = (modified(&cert), modified(&key));
        let current = Arc::new(certified_key(&cert, &key, &provider)?);
        Ok(ReloadingCert { cert, key, provider, state: Mutex::new(CertState { current, stamps, checked: Instant::now() }) })
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.checked.elapsed() >= RELOAD_CHECK_INTERVAL {
            state.checked = Instant::now();
            let stamps = (modified(&self.cert), modified(&self.key));
            if stamps != state.stamps {
                match certified_key(&self.cert, &self.key, &self.provider) {
                    Ok(renewed) => {
                        tracing::info!(cert = ?self.cert, "TLS certificate reloaded");
                        state.current = Arc::new(renewed);
                        state.stamps = stamps;
                    }
                    // Maybe half written: keep serving the old pair and try again later.
                    Err(error) => tracing::warn!(%error, "TLS certificate changed but does not load; keeping the previous one"),
                }
            }
        }
        Some(state.current.clone())
    }
}

/// `RequestClientCert` and `RequireAnyClientCert`: any certificate is taken
/// without checking who issued it; the client still has to prove that it
/// holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    provider: Arc<CryptoProvider>,
    mandatory: bool,
}

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// How long a client may take to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; beyond this, accepting waits.
const MAX_HANDSHAKES: usize = 256;

/// A TCP listener whose connections come out of it already through the TLS
/// handshake. Handshakes run concurrently, so a slow or silent client holds
/// up nobody; a failed handshake is logged at debug level and dropped.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    handshakes: JoinSet<(SocketAddr, Result<TlsStream<TcpStream>, String>)>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> TlsListener {
        TlsListener { tcp, acceptor: TlsAcceptor::from(config), handshakes: JoinSet::new() }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.handshakes.len() < MAX_HANDSHAKES;
            tokio::select! {
                accepted = self.tcp.accept(), if room => match accepted {
                    Ok((stream, peer)) => {
                        let acceptor = self.acceptor.clone();
                        self.handshakes.spawn(async move {
                            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                            let result = match handshake {
                                Ok(Ok(tls)) => Ok(tls),
                                Ok(Err(error)) => Err(error.to_string()),
                                Err(_) => Err("handshake timed out".to_owned()),
                            };
                            (peer, result)
                        });
                    }
                    Err(error) => {
                        // As axum does for plain TCP: out of file descriptors and the like.
                        tracing::error!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
                Some(done) = self.handshakes.join_next() => match done {
                    Ok((peer, Ok(stream))) => return (stream, peer),
                    Ok((peer, Err(error))) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                    Err(panic) => tracing::error!(%panic, "TLS handshake task failed"),
                },
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}
