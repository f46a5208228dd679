//! The LDAP adapter of the domain's `Directory` port, on `ldap3` with
//! rustls (no OpenSSL): `ldap://`, `ldaps://` and StartTLS, a custom CA for
//! the directory's certificate, timeouts on connecting and on every
//! operation, Simple Paged Results (RFC 2696) searches. Every call opens
//! its own connection and unbinds at the end. Failures are sorted into the
//! step that failed (connect, TLS, bind, base DN, filter) so an
//! administrator reads what to fix.

use async_trait::async_trait;
use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, LdapResult, Scope, SearchEntry};
use mdm_core::directory::{
    BindOutcome, Directory, DirectoryConfig, DirectoryEntry, DirectoryError, DirectorySecurity,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use std::sync::Arc;

/// LDAP result codes the adapter tells apart (RFC 4511 appendix A).
mod rc {
    pub const SUCCESS: u32 = 0;
    pub const PROTOCOL_ERROR: u32 = 2;
    pub const SIZE_LIMIT_EXCEEDED: u32 = 4;
    pub const CONFIDENTIALITY_REQUIRED: u32 = 13;
    pub const NO_SUCH_OBJECT: u32 = 32;
    pub const INVALID_DN_SYNTAX: u32 = 34;
    pub const INAPPROPRIATE_AUTHENTICATION: u32 = 48;
    pub const INVALID_CREDENTIALS: u32 = 49;
    pub const FILTER_ERROR: u32 = 87;
}

/// The directory port on real LDAP servers.
#[derive(Clone, Copy, Debug, Default)]
pub struct LdapDirectory;

/// The rustls configuration: the connector's CA certificates, or the
/// system's roots when it names none.
fn tls_config(cfg: &DirectoryConfig) -> Result<Arc<rustls::ClientConfig>, DirectoryError> {
    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| {
                    DirectoryError::Tls(format!("the CA certificate PEM is unreadable: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    DirectoryError::Tls(format!("the CA certificate is unusable: {e}"))
                })?;
            }
            if roots.is_empty() {
                return Err(DirectoryError::Tls(
                    "the CA PEM holds no certificate".into(),
                ));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DirectoryError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The TLS reason inside an I/O error, when there is one.
fn tls_reason(e: &std::io::Error) -> Option<String> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(|t| t.to_string())
}

/// A failure while connecting (TCP, TLS, StartTLS).
fn connect_error(cfg: &DirectoryConfig, e: LdapError) -> DirectoryError {
    match e {
        LdapError::Io { source } => match tls_reason(&source) {
            Some(reason) => DirectoryError::Tls(format!("{}: {reason}", cfg.url)),
            // The peer closed or garbled the handshake: often a plain
            // LDAP port reached with ldaps:// (or the reverse).
            None if cfg.security != DirectorySecurity::None
                && matches!(
                    source.kind(),
                    std::io::ErrorKind::InvalidData
                        | std::io::ErrorKind::UnexpectedEof
                        | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                DirectoryError::Tls(format!(
                    "{}: {source} (is this port speaking TLS?)",
                    cfg.url
                ))
            }
            None => DirectoryError::Connect(format!("{}: {source}", cfg.url)),
        },
        LdapError::Rustls { source } => DirectoryError::Tls(format!("{}: {source}", cfg.url)),
        LdapError::DNSName { source } => DirectoryError::Tls(format!(
            "{}: not a name a certificate can match: {source}",
            cfg.url
        )),
        LdapError::Timeout { .. } => DirectoryError::Timeout(format!(
            "no connection to {} within {} s",
            cfg.url,
            cfg.timeout.as_secs()
        )),
        LdapError::UrlParsing { .. } | LdapError::UnknownScheme(_) => {
            DirectoryError::Connect(format!("{} is not a usable LDAP URL: {e}", cfg.url))
        }
        LdapError::LdapResult { result } if cfg.security == DirectorySecurity::Starttls => {
            DirectoryError::Tls(format!(
                "the server refused StartTLS: {}",
                describe(&result)
            ))
        }
        // The connection closed during the handshake: a TLS listener that
        // hears plain LDAP, or a plain one that hears TLS.
        LdapError::EndOfStream | LdapError::ResultRecv { .. } | LdapError::OpSend { .. }
            if cfg.security != DirectorySecurity::None =>
        {
            DirectoryError::Tls(format!(
                "{}: the connection closed during the TLS handshake ({e})",
                cfg.url
            ))
        }
        other => DirectoryError::Connect(format!("{}: {other}", cfg.url)),
    }
}

fn describe(r: &LdapResult) -> String {
    if r.text.is_empty() {
        format!("result code {}", r.rc)
    } else {
        format!("result code {}: {}", r.rc, r.text)
    }
}

/// A failure of an operation on an open connection.
fn op_error(cfg: &DirectoryConfig, what: &str, e: LdapError) -> DirectoryError {
    match e {
        LdapError::LdapResult { result } => result_error(cfg, what, &result),
        LdapError::FilterParsing => {
            DirectoryError::FilterInvalid(format!("{what}: the filter does not parse"))
        }
        LdapError::Timeout { .. } => DirectoryError::Timeout(format!(
            "{what} got no answer within {} s",
            cfg.timeout.as_secs()
        )),
        LdapError::Io { source } => {
            DirectoryError::Connect(format!("{what}: the connection failed: {source}"))
        }
        other => DirectoryError::Other(format!("{what}: {other}")),
    }
}

/// A non-success result code of an operation.
fn result_error(cfg: &DirectoryConfig, what: &str, r: &LdapResult) -> DirectoryError {
    let detail = describe(r);
    match r.rc {
        rc::NO_SUCH_OBJECT => DirectoryError::BaseDnMissing(format!("{} ({detail})", cfg.base_dn)),
        rc::INVALID_DN_SYNTAX => {
            DirectoryError::BaseDnMissing(format!("{} is not a valid DN ({detail})", cfg.base_dn))
        }
        rc::FILTER_ERROR | rc::PROTOCOL_ERROR if what.starts_with("search") => {
            DirectoryError::FilterInvalid(format!("{what}: {detail}"))
        }
        rc::SIZE_LIMIT_EXCEEDED => DirectoryError::Other(format!(
            "{what}: the server's size limit was reached ({detail}); give the service account a higher limit"
        )),
        rc::CONFIDENTIALITY_REQUIRED => DirectoryError::Tls(format!(
            "{what}: the server requires TLS ({detail}); use StartTLS or ldaps"
        )),
        _ => DirectoryError::Other(format!("{what}: {detail}")),
    }
}

/// Opens a connection with TLS as configured and drives it in the background.
async fn connect(cfg: &DirectoryConfig) -> Result<Ldap, DirectoryError> {
    let mut settings = LdapConnSettings::new().set_conn_timeout(cfg.timeout);
    if cfg.security != DirectorySecurity::None {
        settings = settings.set_config(tls_config(cfg)?);
    }
    if cfg.security == DirectorySecurity::Starttls {
        settings = settings.set_starttls(true);
    }
    let opened = tokio::time::timeout(
        cfg.timeout,
        LdapConnAsync::with_settings(settings, &cfg.url),
    )
    .await;
    let (conn, ldap) = match opened {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(connect_error(cfg, e)),
        Err(_) => {
            let hint = match cfg.security {
                DirectorySecurity::Starttls => " (StartTLS got no answer: is this an ldaps port?)",
                _ => "",
            };
            return Err(DirectoryError::Timeout(format!(
                "no connection to {} within {} s{hint}",
                cfg.url,
                cfg.timeout.as_secs()
            )));
        }
    };
    tokio::spawn(async move {
        if let Err(e) = conn.drive().await {
            tracing::debug!(error = %e, "LDAP connection ended");
        }
    });
    Ok(ldap)
}

/// A simple bind; `Ok(false)` when the directory rejects the credentials.
async fn simple_bind(
    cfg: &DirectoryConfig,
    ldap: &mut Ldap,
    dn: &str,
    pw: &str,
) -> Result<bool, DirectoryError> {
    let result = ldap
        .with_timeout(cfg.timeout)
        .simple_bind(dn, pw)
        .await
        .map_err(|e| op_error(cfg, "bind", e))?;
    match result.rc {
        rc::SUCCESS => Ok(true),
        rc::INVALID_CREDENTIALS | rc::INAPPROPRIATE_AUTHENTICATION => Ok(false),
        _ => Err(result_error(cfg, "bind", &result)),
    }
}

/// Connects and binds as the service account.
async fn service_session(cfg: &DirectoryConfig) -> Result<Ldap, DirectoryError> {
    if cfg.bind_password.is_empty() {
        return Err(DirectoryError::BindRejected(
            "the service account has no password".into(),
        ));
    }
    let mut ldap = connect(cfg).await?;
    if !simple_bind(cfg, &mut ldap, &cfg.bind_dn, &cfg.bind_password).await? {
        let _ = ldap.unbind().await;
        return Err(DirectoryError::BindRejected(format!(
            "invalid credentials for {}",
            cfg.bind_dn
        )));
    }
    Ok(ldap)
}

fn to_entry(e: SearchEntry) -> DirectoryEntry {
    DirectoryEntry {
        dn: e.dn,
        attrs: e.attrs,
        bin_attrs: e.bin_attrs,
    }
}

/// A paged subtree search under the base DN: every entry, or an error.
async fn paged_search(
    cfg: &DirectoryConfig,
    ldap: &mut Ldap,
    filter: &str,
    attributes: &[String],
) -> Result<Vec<DirectoryEntry>, DirectoryError> {
    let what = format!("search {filter}");
    let page = i32::try_from(cfg.page_size).unwrap_or(500).max(1);
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(page)),
    ];
    let mut stream = ldap
        .with_timeout(cfg.timeout)
        .streaming_search_with(
            adapters,
            &cfg.base_dn,
            Scope::Subtree,
            filter,
            attributes.to_vec(),
        )
        .await
        .map_err(|e| op_error(cfg, &what, e))?;
    let mut entries = Vec::new();
    while let Some(entry) = stream.next().await.map_err(|e| op_error(cfg, &what, e))? {
        entries.push(to_entry(SearchEntry::construct(entry)));
    }
    let done = stream.finish().await;
    if done.rc != rc::SUCCESS {
        return Err(result_error(cfg, &what, &done));
    }
    Ok(entries)
}

#[async_trait]
impl Directory for LdapDirectory {
    async fn check(&self, cfg: &DirectoryConfig) -> Result<(), DirectoryError> {
        let mut ldap = service_session(cfg).await?;
        let found = ldap
            .with_timeout(cfg.timeout)
            .search(&cfg.base_dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| op_error(cfg, "reading the base DN", e))?;
        let _ = ldap.unbind().await;
        let (entries, result) = (found.0, found.1);
        if result.rc != rc::SUCCESS {
            return Err(result_error(cfg, "reading the base DN", &result));
        }
        if entries.is_empty() {
            return Err(DirectoryError::BaseDnMissing(format!(
                "{} (not readable by {})",
                cfg.base_dn, cfg.bind_dn
            )));
        }
        Ok(())
    }

    async fn search(
        &self,
        cfg: &DirectoryConfig,
        filter: &str,
        attributes: &[String],
    ) -> Result<Vec<DirectoryEntry>, DirectoryError> {
        // On a task of its own: ldap3 panics on an entry it cannot decode,
        // and that must become an error, not take the caller down.
        let (cfg, filter, attributes) = (cfg.clone(), filter.to_string(), attributes.to_vec());
        let task = tokio::spawn(async move {
            let mut ldap = service_session(&cfg).await?;
            let result = paged_search(&cfg, &mut ldap, &filter, &attributes).await;
            let _ = ldap.unbind().await;
            result
        });
        task.await.map_err(|e| {
            DirectoryError::Other(format!("the search failed on an unreadable answer: {e}"))
        })?
    }

    async fn bind(
        &self,
        cfg: &DirectoryConfig,
        dn: &str,
        password: &str,
    ) -> Result<BindOutcome, DirectoryError> {
        // An empty password would be an unauthenticated bind, which succeeds.
        if password.is_empty() || dn.is_empty() {
            return Ok(BindOutcome::Rejected);
        }
        let mut ldap = connect(cfg).await?;
        let accepted = simple_bind(cfg, &mut ldap, dn, password).await;
        let _ = ldap.unbind().await;
        Ok(if accepted? {
            BindOutcome::Accepted
        } else {
            BindOutcome::Rejected
        })
    }
}
