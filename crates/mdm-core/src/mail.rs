//! Outgoing mail: the message the domain composes and the [`Mailer`] port
//! that delivers it. The server plugs in SMTP or a local outbox directory;
//! sending always happens in a background job, so a failure is retried and
//! recorded where the administrator can see it.

use async_trait::async_trait;

/// One message to one recipient, in plain text and HTML.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailMessage {
    pub to: String,
    pub to_name: String,
    /// One line; line breaks are removed when the message is composed.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// Why a message was not delivered.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    /// May succeed later (server unreachable, 4xx reply, timeout).
    #[error("{0}")]
    Transient(String),
    /// Will never succeed as it is (recipient refused with 5xx, bad address).
    #[error("{0}")]
    Permanent(String),
}

/// Delivers messages.
#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, message: &MailMessage) -> Result<(), MailError>;
}

/// The mailer of a domain that was given none: every send fails and is retried.
pub struct NoMailer;

#[async_trait]
impl Mailer for NoMailer {
    async fn send(&self, _message: &MailMessage) -> Result<(), MailError> {
        Err(MailError::Transient("no mailer is configured".into()))
    }
}
