//! LDAP / Active Directory connectors (R2): one per tenant. Users are
//! imported and kept in step by a sync ([`sync`]), and sign in with their
//! network credentials through a bind ([`Core::verify_user_password`]).
//!
//! The domain reaches the directory only through the [`Directory`] port
//! (`ports.rs` style: a small trait the server's LDAP adapter implements), so
//! everything here — attribute mapping, planning a sync, reporting a test —
//! is testable without a directory server.
//!
//! [`Core::verify_user_password`]: crate::Core::verify_user_password

pub mod connector;
pub mod entry;
mod run;
pub mod sync;
#[cfg(test)]
mod sync_tests;
mod usecases;

pub use connector::{AttributeMap, ConnectorSettings, DirectoryConnector, DirectorySecurity};
pub use entry::{DirectoryEntry, MappedEntry};
pub use run::SYNC_JOB;
pub use sync::{SyncPlan, SyncRun, SyncStatus, SyncTrigger, UserChange};
pub use usecases::{DirectoryTestReport, MissingAttribute, TestStep};

use async_trait::async_trait;
use std::time::Duration;
use zeroize::Zeroizing;

/// What the adapter needs to reach one tenant's directory: the connector
/// with its bind password opened from the vault (never stored in clear).
#[derive(Clone)]
pub struct DirectoryConfig {
    pub url: String,
    pub security: DirectorySecurity,
    pub bind_dn: String,
    pub bind_password: Zeroizing<String>,
    pub base_dn: String,
    /// Entries per page of a Simple Paged Results search (RFC 2696).
    pub page_size: u32,
    /// Limit for connecting and for each operation.
    pub timeout: Duration,
    /// PEM CA certificate(s) the directory's TLS certificate must chain to;
    /// the system's roots when absent.
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for DirectoryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryConfig")
            .field("url", &self.url)
            .field("security", &self.security)
            .field("bind_dn", &self.bind_dn)
            .field("base_dn", &self.base_dn)
            .finish_non_exhaustive()
    }
}

/// Why the directory could not do what was asked. Each variant names the
/// step that failed, so "test connection" can say exactly what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The tenant has no connector, or it is disabled.
    #[error("no directory connector is configured for this tenant")]
    NotConfigured,
    /// The host name did not resolve, the connection was refused or reset.
    #[error("cannot connect to the directory: {0}")]
    Connect(String),
    /// Connecting or an operation took longer than the connector's timeout.
    #[error("the directory did not answer in time: {0}")]
    Timeout(String),
    /// The TLS handshake failed (untrusted certificate, wrong name, no TLS).
    #[error("TLS with the directory failed: {0}")]
    Tls(String),
    /// The service account's bind was refused (wrong DN or password).
    #[error("the directory rejected the service account's bind: {0}")]
    BindRejected(String),
    /// The base DN does not exist in the directory.
    #[error("the base DN does not exist in the directory: {0}")]
    BaseDnMissing(String),
    /// The user or group filter is not a valid LDAP filter.
    #[error("the directory refused the search filter: {0}")]
    FilterInvalid(String),
    /// Anything else the directory answered.
    #[error("the directory failed: {0}")]
    Other(String),
}

impl DirectoryError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotConfigured => "directory_not_configured",
            Self::Connect(_) => "directory_unreachable",
            Self::Timeout(_) => "directory_timeout",
            Self::Tls(_) => "directory_tls_failed",
            Self::BindRejected(_) => "directory_bind_rejected",
            Self::BaseDnMissing(_) => "directory_base_dn_missing",
            Self::FilterInvalid(_) => "directory_filter_invalid",
            Self::Other(_) => "directory_failed",
        }
    }

    /// The step of "test connection" this failure belongs to.
    pub fn step(&self) -> &'static str {
        match self {
            Self::NotConfigured => "configuration",
            Self::Connect(_) | Self::Timeout(_) => "connect",
            Self::Tls(_) => "tls",
            Self::BindRejected(_) => "bind",
            Self::BaseDnMissing(_) => "base_dn",
            Self::FilterInvalid(_) | Self::Other(_) => "search",
        }
    }
}

/// The outcome of binding as a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindOutcome {
    /// The directory accepted the DN and password.
    Accepted,
    /// Invalid credentials (or the account is locked or disabled there).
    Rejected,
}

/// The directory port: what the domain asks of an LDAP server. Every call
/// opens its own connection with the configuration given.
#[async_trait]
pub trait Directory: Send + Sync {
    /// Connects (with TLS as configured), binds as the service account and
    /// reads the base DN entry.
    async fn check(&self, cfg: &DirectoryConfig) -> Result<(), DirectoryError>;

    /// Binds as the service account and returns every entry under the base
    /// DN (subtree) matching `filter`, with `attributes`, fetched in pages of
    /// `cfg.page_size`. All or an error: never a partial result.
    async fn search(
        &self,
        cfg: &DirectoryConfig,
        filter: &str,
        attributes: &[String],
    ) -> Result<Vec<DirectoryEntry>, DirectoryError>;

    /// Binds as `dn` with `password` on a connection of its own. The caller
    /// never passes an empty password (an unauthenticated bind "succeeds").
    async fn bind(
        &self,
        cfg: &DirectoryConfig,
        dn: &str,
        password: &str,
    ) -> Result<BindOutcome, DirectoryError>;
}

/// The directory of a server with no LDAP support wired in.
pub struct NoDirectory;

#[async_trait]
impl Directory for NoDirectory {
    async fn check(&self, _: &DirectoryConfig) -> Result<(), DirectoryError> {
        Err(DirectoryError::NotConfigured)
    }
    async fn search(
        &self,
        _: &DirectoryConfig,
        _: &str,
        _: &[String],
    ) -> Result<Vec<DirectoryEntry>, DirectoryError> {
        Err(DirectoryError::NotConfigured)
    }
    async fn bind(
        &self,
        _: &DirectoryConfig,
        _: &str,
        _: &str,
    ) -> Result<BindOutcome, DirectoryError> {
        Err(DirectoryError::NotConfigured)
    }
}
