//! The HTTPS listener of `mdm serve`.
//!
//! With `tls_cert_file` and `tls_key_file` set the server terminates TLS
//! itself. It *requests* a client certificate without requiring one, and
//! accepts any certificate at the TLS layer: the issuing CAs are per tenant
//! and change at run time, so the chain is checked by the domain (tenant CA,
//! binding to the enrollment), not by the handshake. The handshake still
//! proves that the client holds the certificate's key. The leaf reaches
//! handlers as [`mdm_http::tls::PeerCertificate`].
//!
//! When the configured chain ends in a self-signed certificate, that
//! certificate is the anchor devices must trust: management profiles carry
//! it as a certificate payload.

use anyhow::{Context, bail};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use axum_server::tls::TlsInfo;
use mdm_http::tls::PeerCertificate;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use std::path::Path;
use std::sync::Arc;

/// The loaded server certificate.
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    /// DER of the chain's self-signed root, when the chain ends in one.
    pub anchor_der: Option<Vec<u8>>,
    /// The leaf's subject and expiry, for the start-up log.
    pub leaf_subject: String,
    pub leaf_not_after: time::OffsetDateTime,
}

impl ServerTls {
    /// Reads the certificate chain (leaf first) and its key from PEM files.
    pub fn load(cert_file: &Path, key_file: &Path) -> anyhow::Result<Self> {
        let cert_pem = std::fs::read(cert_file)
            .with_context(|| format!("cannot read tls_cert_file {}", cert_file.display()))?;
        let key_pem = std::fs::read(key_file)
            .with_context(|| format!("cannot read tls_key_file {}", key_file.display()))?;
        Self::from_pem(&cert_pem, &key_pem)
    }

    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Self> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .context("tls_cert_file is not a PEM certificate chain")?;
        let Some(leaf) = chain.first() else {
            bail!("tls_cert_file holds no certificate");
        };
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .context("tls_key_file is not a PEM private key")?;
        let leaf_cert =
            mdm_pki::cert_from_der(leaf).map_err(|e| anyhow::anyhow!("tls_cert_file: {e}"))?;
        let anchor_der = anchor_of(&chain);
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(AnyClientCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .context("tls_cert_file and tls_key_file do not belong together")?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        use mdm_pki::CertificateExt;
        Ok(Self {
            config: Arc::new(config),
            anchor_der,
            leaf_subject: leaf_cert.subject_string(),
            leaf_not_after: leaf_cert
                .not_after()
                .map_err(|e| anyhow::anyhow!("tls_cert_file: {e}"))?,
        })
    }
}

/// The DER of the anchor a chain (leaf first) ends in, if it ends in a
/// self-signed certificate.
pub fn anchor_of(chain: &[CertificateDer<'_>]) -> Option<Vec<u8>> {
    chain
        .last()
        .filter(|c| is_self_issued(c))
        .map(|c| c.to_vec())
}

/// The anchor of the chain in a PEM certificate file (see [`anchor_of`]).
pub fn anchor_of_file(cert_file: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    let pem = std::fs::read(cert_file)
        .with_context(|| format!("cannot read tls_cert_file {}", cert_file.display()))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .context("tls_cert_file is not a PEM certificate chain")?;
    Ok(anchor_of(&chain))
}

/// Subject equals issuer: a root (or a self-signed leaf).
fn is_self_issued(der: &[u8]) -> bool {
    use mdm_pki::der::Encode;
    let Ok(cert) = mdm_pki::cert_from_der(der) else {
        return false;
    };
    let tbs = cert.tbs_certificate();
    matches!((tbs.subject().to_der(), tbs.issuer().to_der()), (Ok(s), Ok(i)) if s == i)
}

/// Asks for a client certificate, accepts any, and verifies only the
/// handshake signature (proof of possession of the key).
#[derive(Debug)]
struct AnyClientCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Middleware: turns the listener's connection info into the
/// [`PeerCertificate`] handlers read. Plain HTTP requests pass unchanged.
pub async fn peer_certificate(mut req: Request, next: Next) -> Response {
    let leaf = req
        .extensions()
        .get::<Arc<TlsInfo>>()
        .and_then(|info| info.peer_certificates.first().cloned());
    if let Some(der) = leaf {
        req.extensions_mut().insert(PeerCertificate(Arc::new(der)));
    }
    next.run(req).await
}

/// Serves `app` over TLS on `listener` until `shutdown` completes, then
/// lets open requests finish for up to 10 seconds.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: &ServerTls,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
    });
    let listener = listener.into_std().context("TLS listener")?;
    let config = axum_server::tls_rustls::RustlsConfig::from_config(tls.config.clone());
    let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
        .acceptor(crate::linger::LingerAcceptor);
    axum_server::from_tcp(listener)
        .context("TLS listener")?
        .acceptor(acceptor)
        .handle(handle)
        .serve(
            app.layer(axum::middleware::from_fn(peer_certificate))
                .into_make_service(),
        )
        .await
        .context("server failed")
}
