//! A test PKI (rcgen) and a local HTTPS server (hyper over tokio-rustls)
//! for the fake push providers: HTTP/2 and HTTP/1.1 by ALPN, connections
//! counted, the client's certificate chain handed to the handler.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A CA that issues the fake servers' certificates and test client certificates.
pub struct TestPki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl TestPki {
    pub fn new(name: &str) -> Result<Self, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(err)?;
        Ok(Self {
            ca: CertifiedIssuer::self_signed(params, key).map_err(err)?,
        })
    }

    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    pub fn ca_der(&self) -> Vec<u8> {
        self.ca.der().to_vec()
    }

    /// A server certificate for 127.0.0.1 and localhost.
    pub fn server_cert(&self) -> Result<Issued, String> {
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(err)?;
        params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate; `uid` goes into the subject's userId (where
    /// Apple puts a push certificate's topic).
    pub fn client_cert(&self, cn: &str, uid: Option<&str>) -> Result<Issued, String> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        params.distinguished_name.push(DnType::CommonName, cn);
        if let Some(uid) = uid {
            params.distinguished_name.push(
                DnType::CustomDnType(vec![0, 9, 2342, 19200300, 100, 1, 1]),
                uid,
            );
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Result<Issued, String> {
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.ca).map_err(err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        })
    }

    /// A TLS server configuration with a certificate from this CA; with
    /// `require_client_cert`, clients must present one this CA issued.
    pub fn server_config(&self, require_client_cert: bool) -> Result<Arc<ServerConfig>, String> {
        use rustls_pki_types::pem::PemObject;
        let issued = self.server_cert()?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(err)?;
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.der().clone()).map_err(err)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(err)?;
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
            .map_err(err)?;
        let chain = vec![rustls_pki_types::CertificateDer::from(issued.der)];
        let mut config = builder.with_single_cert(chain, key).map_err(err)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// What a handler learns about the connection a request came on.
#[derive(Clone)]
pub struct Conn {
    /// 1 for the first connection the server accepted, 2 for the next, …
    pub number: usize,
    /// The client's certificate chain (DER), leaf first.
    pub peer_certs: Arc<Vec<Vec<u8>>>,
}

/// A request with its body read.
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
    pub conn: Conn,
}

/// A running local HTTPS server; stops when dropped.
pub struct HttpsServer {
    pub url: String,
    pub connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `handler` over TLS on a free loopback port.
pub async fn serve<H, Fut>(config: Arc<ServerConfig>, handler: H) -> Result<HttpsServer, String>
where
    H: Fn(Received) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(err)?;
    let addr: SocketAddr = listener.local_addr().map_err(err)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, handler, counter) = (acceptor.clone(), handler.clone(), counter.clone());
            tokio::spawn(async move {
                // Counted once the handshake succeeds: a TCP connection that
                // does not trust this fake's CA is not one of its clients
                // (in a full test run, another test's server may still be
                // retrying a push to a fake that had this port before).
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let number = counter.fetch_add(1, Ordering::SeqCst) + 1;
                let peer_certs: Vec<Vec<u8>> = tls
                    .get_ref()
                    .1
                    .peer_certificates()
                    .map(|c| c.iter().map(|d| d.to_vec()).collect())
                    .unwrap_or_default();
                let conn = Conn {
                    number,
                    peer_certs: Arc::new(peer_certs),
                };
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (handler, conn) = (handler.clone(), conn.clone());
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|b| b.to_bytes().to_vec());
                        let received = Received {
                            method: parts.method.to_string(),
                            path: parts.uri.path().to_string(),
                            headers: parts.headers,
                            body: body.unwrap_or_default(),
                            conn,
                        };
                        Ok::<_, std::convert::Infallible>(handler(received).await)
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(HttpsServer {
        url: format!("https://{addr}"),
        connections,
        task,
    })
}

/// A response with a status, headers and a body.
pub fn respond(
    status: u16,
    headers: &[(&str, String)],
    body: impl Into<Bytes>,
) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(value),
        ) {
            res.headers_mut().insert(n, v);
        }
    }
    res
}

pub fn header(headers: &hyper::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
