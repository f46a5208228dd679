//! The audit trail (R20): who did what to which user or device, when.
//! Append-only; every state change writes its entry in the same transaction.

use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{TenantId, UserId};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::Page;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What happened. The text form (`user.created`) is stored and filtered on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
pub enum AuditAction {
    #[serde(rename = "tenant.created")]
    TenantCreated,
    #[serde(rename = "settings.updated")]
    SettingsUpdated,
    #[serde(rename = "enrollment_url.regenerated")]
    EnrollmentUrlRegenerated,
    #[serde(rename = "enrollment_url.stale_used")]
    EnrollmentUrlStaleUsed,
    #[serde(rename = "user.created")]
    UserCreated,
    #[serde(rename = "user.updated")]
    UserUpdated,
    #[serde(rename = "user.deleted")]
    UserDeleted,
    #[serde(rename = "user.imported")]
    UserImported,
    #[serde(rename = "token.created")]
    TokenCreated,
    #[serde(rename = "token.revoked")]
    TokenRevoked,
    #[serde(rename = "admin.created")]
    AdminCreated,
    #[serde(rename = "ca.created")]
    CaCreated,
    #[serde(rename = "scep.challenge_created")]
    ScepChallengeCreated,
    #[serde(rename = "scep.refused")]
    ScepRefused,
    #[serde(rename = "certificate.issued")]
    CertificateIssued,
    #[serde(rename = "certificate.renewed")]
    CertificateRenewed,
    #[serde(rename = "certificate.revoked")]
    CertificateRevoked,
    #[serde(rename = "profile.issued")]
    ProfileIssued,
    #[serde(rename = "invitation.created")]
    InvitationCreated,
    #[serde(rename = "invitation.sent")]
    InvitationSent,
    #[serde(rename = "invitation.failed")]
    InvitationFailed,
    #[serde(rename = "mail_template.updated")]
    MailTemplateUpdated,
    #[serde(rename = "pin.redeemed")]
    PinRedeemed,
    #[serde(rename = "signin.succeeded")]
    SignInSucceeded,
    #[serde(rename = "signin.locked_out")]
    SignInLockedOut,
    #[serde(rename = "user.password_set")]
    PasswordSet,
    #[serde(rename = "qr_token.created")]
    QrTokenCreated,
    #[serde(rename = "registration.refused")]
    RegistrationRefused,
    #[serde(rename = "directory.configured")]
    DirectoryConfigured,
    #[serde(rename = "directory.synced")]
    DirectorySynced,
    #[serde(rename = "directory.sync_failed")]
    DirectorySyncFailed,
    #[serde(rename = "registration.cancelled")]
    RegistrationCancelled,
    #[serde(rename = "registration.expired")]
    RegistrationExpired,
    #[serde(rename = "device.authenticated")]
    DeviceAuthenticated,
    #[serde(rename = "device.reenrolling")]
    DeviceReenrolling,
    #[serde(rename = "device.enrolled")]
    DeviceEnrolled,
    #[serde(rename = "device.user_channel_enrolled")]
    DeviceUserChannelEnrolled,
    #[serde(rename = "device.checked_out")]
    DeviceCheckedOut,
    #[serde(rename = "device.mdm_disabled")]
    DeviceMdmDisabled,
    #[serde(rename = "device.inventory_updated")]
    DeviceInventoryUpdated,
    #[serde(rename = "device.command_queued")]
    DeviceCommandQueued,
    #[serde(rename = "device.retired")]
    DeviceRetired,
    #[serde(rename = "device.wipe_requested")]
    DeviceWipeRequested,
    #[serde(rename = "device.wiped")]
    DeviceWiped,
    #[serde(rename = "device.lock_requested")]
    DeviceLockRequested,
    #[serde(rename = "device.push_token_dead")]
    DevicePushTokenDead,
    #[serde(rename = "registration.reminder_queued")]
    RegistrationReminderQueued,
    #[serde(rename = "registration.reminder_sent")]
    RegistrationReminderSent,
    #[serde(rename = "registration.given_up")]
    RegistrationGivenUp,
    #[serde(rename = "admin.signed_in")]
    AdminSignedIn,
    #[serde(rename = "admin.signed_out")]
    AdminSignedOut,
    #[serde(rename = "admin.locked_out")]
    AdminLockedOut,
    #[serde(rename = "tenant.renamed")]
    TenantRenamed,
    #[serde(rename = "tenant.setup_completed")]
    TenantSetupCompleted,
    #[serde(rename = "device.deleted")]
    DeviceDeleted,
    #[serde(rename = "mail.test_sent")]
    MailTestSent,
    /// A device renewed its identity certificate from a re-sent profile.
    #[serde(rename = "device.identity_renewed")]
    DeviceIdentityRenewed,
    #[serde(rename = "device.registered")]
    DeviceRegistered,
    #[serde(rename = "device.reregistered")]
    DeviceReregistered,
    #[serde(rename = "device.reset")]
    DeviceReset,
    #[serde(rename = "device.ca_certificates_removed")]
    DeviceCaCertificatesRemoved,
    #[serde(rename = "android.provisioning_created")]
    AndroidProvisioningCreated,
    #[serde(rename = "agent.request_refused")]
    AgentRequestRefused,
    #[serde(rename = "signing_identity.uploaded")]
    SigningIdentityUploaded,
    #[serde(rename = "signing_identity.removed")]
    SigningIdentityRemoved,
}

impl AuditAction {
    /// Every action, for parsing and for documentation.
    pub const ALL: [AuditAction; 65] = [
        Self::TenantCreated,
        Self::SettingsUpdated,
        Self::EnrollmentUrlRegenerated,
        Self::EnrollmentUrlStaleUsed,
        Self::UserCreated,
        Self::UserUpdated,
        Self::UserDeleted,
        Self::UserImported,
        Self::TokenCreated,
        Self::TokenRevoked,
        Self::AdminCreated,
        Self::CaCreated,
        Self::ScepChallengeCreated,
        Self::ScepRefused,
        Self::CertificateIssued,
        Self::CertificateRenewed,
        Self::CertificateRevoked,
        Self::ProfileIssued,
        Self::InvitationCreated,
        Self::InvitationSent,
        Self::InvitationFailed,
        Self::MailTemplateUpdated,
        Self::PinRedeemed,
        Self::SignInSucceeded,
        Self::SignInLockedOut,
        Self::PasswordSet,
        Self::QrTokenCreated,
        Self::RegistrationRefused,
        Self::DirectoryConfigured,
        Self::DirectorySynced,
        Self::DirectorySyncFailed,
        Self::RegistrationCancelled,
        Self::RegistrationExpired,
        Self::DeviceAuthenticated,
        Self::DeviceReenrolling,
        Self::DeviceEnrolled,
        Self::DeviceUserChannelEnrolled,
        Self::DeviceCheckedOut,
        Self::DeviceMdmDisabled,
        Self::DeviceInventoryUpdated,
        Self::DeviceCommandQueued,
        Self::DeviceRetired,
        Self::DeviceWipeRequested,
        Self::DeviceWiped,
        Self::DeviceLockRequested,
        Self::DevicePushTokenDead,
        Self::RegistrationReminderQueued,
        Self::RegistrationReminderSent,
        Self::RegistrationGivenUp,
        Self::AdminSignedIn,
        Self::AdminSignedOut,
        Self::AdminLockedOut,
        Self::TenantRenamed,
        Self::TenantSetupCompleted,
        Self::DeviceDeleted,
        Self::MailTestSent,
        Self::DeviceIdentityRenewed,
        Self::DeviceRegistered,
        Self::DeviceReregistered,
        Self::DeviceReset,
        Self::DeviceCaCertificatesRemoved,
        Self::AndroidProvisioningCreated,
        Self::AgentRequestRefused,
        Self::SigningIdentityUploaded,
        Self::SigningIdentityRemoved,
    ];

    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::TenantCreated => "tenant.created",
            Self::SettingsUpdated => "settings.updated",
            Self::EnrollmentUrlRegenerated => "enrollment_url.regenerated",
            Self::EnrollmentUrlStaleUsed => "enrollment_url.stale_used",
            Self::UserCreated => "user.created",
            Self::UserUpdated => "user.updated",
            Self::UserDeleted => "user.deleted",
            Self::UserImported => "user.imported",
            Self::TokenCreated => "token.created",
            Self::TokenRevoked => "token.revoked",
            Self::AdminCreated => "admin.created",
            Self::CaCreated => "ca.created",
            Self::ScepChallengeCreated => "scep.challenge_created",
            Self::ScepRefused => "scep.refused",
            Self::CertificateIssued => "certificate.issued",
            Self::CertificateRenewed => "certificate.renewed",
            Self::CertificateRevoked => "certificate.revoked",
            Self::ProfileIssued => "profile.issued",
            Self::InvitationCreated => "invitation.created",
            Self::InvitationSent => "invitation.sent",
            Self::InvitationFailed => "invitation.failed",
            Self::MailTemplateUpdated => "mail_template.updated",
            Self::PinRedeemed => "pin.redeemed",
            Self::SignInSucceeded => "signin.succeeded",
            Self::SignInLockedOut => "signin.locked_out",
            Self::PasswordSet => "user.password_set",
            Self::QrTokenCreated => "qr_token.created",
            Self::RegistrationRefused => "registration.refused",
            Self::DirectoryConfigured => "directory.configured",
            Self::DirectorySynced => "directory.synced",
            Self::DirectorySyncFailed => "directory.sync_failed",
            Self::RegistrationCancelled => "registration.cancelled",
            Self::RegistrationExpired => "registration.expired",
            Self::DeviceAuthenticated => "device.authenticated",
            Self::DeviceReenrolling => "device.reenrolling",
            Self::DeviceEnrolled => "device.enrolled",
            Self::DeviceUserChannelEnrolled => "device.user_channel_enrolled",
            Self::DeviceCheckedOut => "device.checked_out",
            Self::DeviceMdmDisabled => "device.mdm_disabled",
            Self::DeviceInventoryUpdated => "device.inventory_updated",
            Self::DeviceCommandQueued => "device.command_queued",
            Self::DeviceRetired => "device.retired",
            Self::DeviceWipeRequested => "device.wipe_requested",
            Self::DeviceWiped => "device.wiped",
            Self::DeviceLockRequested => "device.lock_requested",
            Self::DevicePushTokenDead => "device.push_token_dead",
            Self::RegistrationReminderQueued => "registration.reminder_queued",
            Self::RegistrationReminderSent => "registration.reminder_sent",
            Self::RegistrationGivenUp => "registration.given_up",
            Self::AdminSignedIn => "admin.signed_in",
            Self::AdminSignedOut => "admin.signed_out",
            Self::AdminLockedOut => "admin.locked_out",
            Self::TenantRenamed => "tenant.renamed",
            Self::TenantSetupCompleted => "tenant.setup_completed",
            Self::DeviceDeleted => "device.deleted",
            Self::MailTestSent => "mail.test_sent",
            Self::DeviceIdentityRenewed => "device.identity_renewed",
            Self::DeviceRegistered => "device.registered",
            Self::DeviceReregistered => "device.reregistered",
            Self::DeviceReset => "device.reset",
            Self::DeviceCaCertificatesRemoved => "device.ca_certificates_removed",
            Self::AndroidProvisioningCreated => "android.provisioning_created",
            Self::AgentRequestRefused => "agent.request_refused",
            Self::SigningIdentityUploaded => "signing_identity.uploaded",
            Self::SigningIdentityRemoved => "signing_identity.removed",
        }
    }

    /// Parses the stored text form.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// An entry about to be appended.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEntry {
    /// `None` only for operator actions that concern no tenant (an operator token created).
    pub tenant_id: Option<TenantId>,
    pub at: OffsetDateTime,
    /// `token:<id>`, `admin:<id>`, `cli`, `system`, `user:<id>`, `device:<id>`.
    pub actor: String,
    /// Human label of the actor at the time.
    pub actor_label: String,
    pub action: AuditAction,
    /// `tenant`, `user`, `token`, `settings`, `enrollment_url`, `device`, …
    pub subject_type: String,
    pub subject_id: String,
    /// The user concerned, for filtering.
    pub user_id: Option<UserId>,
    /// The device concerned, for filtering.
    pub device_id: Option<String>,
    /// Action-specific facts (old/new values, counts, reasons).
    pub details: serde_json::Value,
}

impl AuditEntry {
    /// An entry by `actor` about `subject_type`/`subject_id`.
    pub fn new(
        tenant_id: Option<TenantId>,
        at: OffsetDateTime,
        actor: &Actor,
        action: AuditAction,
        subject: (&str, String),
    ) -> Self {
        Self {
            tenant_id,
            at,
            actor: actor.key(),
            actor_label: actor.label(),
            action,
            subject_type: subject.0.to_string(),
            subject_id: subject.1,
            user_id: None,
            device_id: None,
            details: serde_json::Value::Null,
        }
    }

    /// Names the user concerned.
    pub fn user(mut self, user: UserId) -> Self {
        self.user_id = Some(user);
        self
    }

    /// Names the user concerned, when there is one.
    pub fn maybe_user(mut self, user: Option<UserId>) -> Self {
        self.user_id = user;
        self
    }

    /// Names the device concerned.
    pub fn device(mut self, device: crate::ids::DeviceId) -> Self {
        self.device_id = Some(device.to_string());
        self
    }

    /// Adds action-specific facts.
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// An entry as stored, with its sequence number.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Monotonic per server; the paging cursor.
    pub id: i64,
    pub tenant_id: Option<TenantId>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub actor: String,
    pub actor_label: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub user_id: Option<UserId>,
    pub device_id: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// Filters and paging for the audit trail. Newest first.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Exact actor key (`token:<id>`, `admin:<id>`, `cli`, `system`).
    pub actor: Option<String>,
    /// Exact action (`user.created`) or a prefix ending in `.` (`user.`).
    pub action: Option<String>,
    pub user_id: Option<UserId>,
    pub device_id: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub from: Option<OffsetDateTime>,
    /// Entries before this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub to: Option<OffsetDateTime>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Entries older than this id (the `next` of the previous page).
    pub before: Option<i64>,
}

impl Core {
    /// The audit trail of a tenant, or the operator-level trail for `None`
    /// (operators only). Newest first; `next` is the `before` of the next page.
    pub async fn audit(
        &self,
        actor: &Actor,
        tenant: Option<&Tenant>,
        query: &AuditQuery,
    ) -> CoreResult<Page<AuditRecord>> {
        match tenant {
            Some(t) => actor.require_tenant(t.id)?,
            None => actor.require_operator()?,
        }
        let limit = query.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        if let (Some(from), Some(to)) = (query.from, query.to)
            && from >= to
        {
            return Err(CoreError::invalid("from", "must be before 'to'"));
        }
        let mut q = query.clone();
        q.limit = Some(limit + 1);
        let mut items = self.store.audit(tenant.map(|t| t.id), &q).await?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|r| r.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }
}
