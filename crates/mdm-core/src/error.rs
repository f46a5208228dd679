//! Errors of the domain layer. The HTTP edge maps each variant to a status
//! and a stable machine-readable code; nothing below the edge chooses a status.

use thiserror::Error;

/// Failures a store implementation reports to the domain.
#[derive(Debug, Error)]
pub enum StoreError {
    /// A uniqueness rule was violated; the payload names the rule.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// The row to change does not exist (in this tenant).
    #[error("not found")]
    NotFound,
    /// A paging cursor that this store never handed out.
    #[error("not a paging cursor from this server")]
    BadCursor,
    /// The database failed or returned something unreadable.
    #[error("database: {0}")]
    Backend(String),
}

/// Failures of a use case.
#[derive(Debug, Error)]
pub enum CoreError {
    /// A field failed validation.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// The resource does not exist in the caller's tenant (also used for
    /// resources of other tenants, so tenants cannot be probed).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness rule was violated.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The resource existed but is no longer valid (a stale enrollment URL).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    /// No or bad credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// Authenticated, but this principal may not do this.
    #[error("{0}")]
    Forbidden(&'static str),
    /// A server this one depends on (a tenant's directory) failed or
    /// refused; nothing was changed.
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    /// The store failed.
    #[error("storage failure: {0}")]
    Store(String),
}

impl CoreError {
    /// A validation error for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(what) => CoreError::Conflict {
                code: what,
                message: format!("{} already exists", what.replace('_', " ")),
            },
            StoreError::NotFound => CoreError::NotFound("resource"),
            StoreError::BadCursor => CoreError::invalid(
                "after",
                "not a cursor from a previous page; start without one",
            ),
            StoreError::Backend(m) => CoreError::Store(m),
        }
    }
}

/// Result of a use case.
pub type CoreResult<T> = Result<T, CoreError>;
