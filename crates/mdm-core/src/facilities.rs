//! What the server is configured to deliver with (mail, APNs, FCM), as the
//! administrator sees it on the settings page, and the test mail that
//! proves the mail settings work. The configuration itself is read by
//! `mdm-server`, which hands the description in.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::mail::MailMessage;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use time::OffsetDateTime;

/// One push credential: what it is and until when it works.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushCredential {
    /// `None`: not configured (pushes are logged, not sent).
    pub kind: Option<String>,
    /// Topic, key id, project: what identifies it.
    pub detail: String,
    /// When it stops working, where the credential says.
    pub expires_at: Option<OffsetDateTime>,
}

/// The server's delivery settings, described for administrators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facilities {
    /// e.g. `SMTP mail.example.com:587 (STARTTLS)`, or the outbox directory.
    pub mail: String,
    pub mail_configured: bool,
    /// The From address of outgoing mail.
    pub mail_from: String,
    pub apns: PushCredential,
    pub fcm: PushCredential,
}

/// The outcome of a test mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestMail {
    Delivered,
    Failed(String),
}

impl Core {
    /// Describes the delivery settings to the settings page.
    pub fn with_facilities(mut self, facilities: Facilities) -> Self {
        self.parts_mut().facilities = std::sync::Arc::new(facilities);
        self
    }

    /// The delivery settings (any administrator may see them).
    pub fn facilities(&self, actor: &Actor, tenant: &Tenant) -> CoreResult<&Facilities> {
        actor.require_tenant(tenant.id)?;
        Ok(&self.facilities)
    }

    /// Sends a test message to `to` now (not through the queue, so the
    /// administrator sees the answer of the mail server) and records it.
    pub async fn send_test_mail(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        to: &str,
    ) -> CoreResult<TestMail> {
        actor.require_tenant(tenant.id)?;
        let to = crate::users::normalize_email(to).map_err(|_| {
            CoreError::invalid("to", "enter an email address, like name@example.com")
        })?;
        let message = MailMessage {
            to: to.clone(),
            to_name: String::new(),
            subject: format!("Test message from {}", tenant.name),
            text: format!(
                "This is a test message from the {} device registration server.\n\nIf you can read it, invitations can be delivered.\n",
                tenant.name
            ),
            html: format!(
                "<p>This is a test message from the {} device registration server.</p><p>If you can read it, invitations can be delivered.</p>",
                crate::mail_templates::html_escape(&tenant.name)
            ),
        };
        let outcome = match self.mailer.send(&message).await {
            Ok(()) => TestMail::Delivered,
            Err(e) => TestMail::Failed(e.to_string()),
        };
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::MailTestSent,
            ("mail", to),
        )
        .details(serde_json::json!({
            "delivered": outcome == TestMail::Delivered,
            "error": match &outcome { TestMail::Failed(e) => Some(e.as_str()), TestMail::Delivered => None },
        }));
        self.store.append_audit(&audit).await?;
        Ok(outcome)
    }
}
