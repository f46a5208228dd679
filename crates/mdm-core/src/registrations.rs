//! Registrations: one attempt to bring a device under management, from the
//! invitation to the first `TokenUpdate` (the funnel administrators watch:
//! invited → PIN used → signed in → profile downloaded → certificate issued →
//! checked in → active). A registration ends active, or cancelled, expired or
//! failed with a reason. Re-enrolment (R17) and renewal are registrations
//! for an existing device record.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{DeviceId, TenantId, UserId};
use crate::jobs::JobOutcome;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::Page;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

text_enum!(
    /// The platform of a device or registration.
    DevicePlatform {
        Ios = "ios",
        Macos = "macos",
        Android = "android",
    }
);

text_enum!(
    /// Why a registration exists.
    RegistrationPurpose {
        /// A first enrolment.
        Enroll = "enroll",
        /// The user re-enrols an existing device (R17).
        Reenroll = "reenroll",
        /// The server re-sends the profile to renew the identity certificate.
        Renewal = "renewal",
    }
);

text_enum!(
    /// Where a registration is.
    RegistrationStatus {
        Pending = "pending",
        ProfileDownloaded = "profile_downloaded",
        CertificateIssued = "certificate_issued",
        CheckedIn = "checked_in",
        Active = "active",
        Cancelled = "cancelled",
        Expired = "expired",
        Failed = "failed",
    }
);

impl RegistrationStatus {
    /// Not yet active and not ended: a device may still complete it.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Self::Pending | Self::ProfileDownloaded | Self::CertificateIssued | Self::CheckedIn
        )
    }
}

/// One registration attempt as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Registration {
    /// `reg-<uuid>`: also the CN of its certificate and the name in SCEP refusals.
    pub id: String,
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    /// Unknown (`null`) until the user signs in on a device or downloads a
    /// profile: a registration opened by an invitation has no platform yet.
    pub platform: Option<DevicePlatform>,
    pub purpose: RegistrationPurpose,
    /// The device record it (re-)enrols, once known.
    pub device_id: Option<DeviceId>,
    pub status: RegistrationStatus,
    /// Why it ended or was last refused (`profile_expired`, `challenge_used`, …).
    pub reason: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// When its current profile (and SCEP challenge) stops working.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub invited_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub pin_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub signed_in_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub profile_downloaded_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub certificate_issued_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub checked_in_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub active_at: Option<OffsetDateTime>,
    /// Reminders sent to the user so far (R15).
    pub reminders_sent: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_reminded_at: Option<OffsetDateTime>,
    /// Reminders stopped after the tenant's cap without the profile being
    /// installed: the registration is given up.
    #[serde(with = "time::serde::rfc3339::option")]
    pub given_up_at: Option<OffsetDateTime>,
}

impl Registration {
    /// A fresh pending registration.
    pub fn new(
        tenant: TenantId,
        platform: DevicePlatform,
        purpose: RegistrationPurpose,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            id: new_registration_id(),
            tenant_id: tenant,
            user_id: None,
            platform: Some(platform),
            purpose,
            device_id: None,
            status: RegistrationStatus::Pending,
            reason: None,
            created_at: now,
            updated_at: now,
            expires_at: None,
            invited_at: None,
            pin_used_at: None,
            signed_in_at: None,
            profile_downloaded_at: None,
            certificate_issued_at: None,
            checked_in_at: None,
            active_at: None,
            reminders_sent: 0,
            last_reminded_at: None,
            given_up_at: None,
        }
    }

    /// A registration opened before the platform is known (by an invitation
    /// or a sign-in), for `user`.
    pub fn opened(tenant: TenantId, user: UserId, now: OffsetDateTime) -> Self {
        let mut reg = Self::new(
            tenant,
            DevicePlatform::Ios,
            RegistrationPurpose::Enroll,
            now,
        );
        reg.platform = None;
        reg.user_id = Some(user);
        reg
    }
}

/// A fresh registration id: `reg-<uuid v7>`.
pub fn new_registration_id() -> String {
    format!("reg-{}", uuid::Uuid::now_v7())
}

/// Filters and keyset paging for listing registrations (newest first).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RegistrationQuery {
    pub status: Option<RegistrationStatus>,
    pub user_id: Option<UserId>,
    pub platform: Option<DevicePlatform>,
    pub device_id: Option<DeviceId>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
}

/// Ends an open registration (or only notes why a device was refused).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndRegistration {
    pub tenant_id: TenantId,
    pub id: String,
    /// The status to end with; `None` only records `reason`.
    pub status: Option<RegistrationStatus>,
    pub reason: String,
    /// A re-enrolment that ends this way disables this device's MDM (R17):
    /// the device becomes `mdm_disabled` and its enrollments stop being served.
    pub disable_device: Option<DeviceId>,
    pub at: OffsetDateTime,
}

/// How long after its profile's expiry an unfinished registration is ended:
/// the device may be mid-install (SCEP done, Authenticate on its way).
pub const REGISTRATION_GRACE: time::Duration = time::Duration::minutes(10);

/// The job that ends a registration nobody completed.
pub const EXPIRE_JOB: &str = "registration.expire";

impl Core {
    /// Registrations of the tenant, newest first.
    pub async fn registrations(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        query: &RegistrationQuery,
    ) -> CoreResult<Page<Registration>> {
        actor.require_tenant(tenant.id)?;
        if query.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        Ok(self.store.registrations(tenant.id, query).await?)
    }

    /// One registration.
    pub async fn registration(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: &str,
    ) -> CoreResult<Registration> {
        actor.require_tenant(tenant.id)?;
        self.store
            .registration(tenant.id, id)
            .await?
            .ok_or(CoreError::NotFound("registration"))
    }

    /// The user (or client app) cancelled the profile installation: the
    /// registration ends, and a cancelled re-enrolment disables the device's
    /// MDM (R17). Cancelling an ended registration changes nothing.
    pub async fn cancel_registration(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: &str,
    ) -> CoreResult<Registration> {
        let reg = self.registration(actor, tenant, id).await?;
        if !reg.status.is_open() {
            return Err(CoreError::Conflict {
                code: "registration_ended",
                message: format!("the registration is already {}", reg.status),
            });
        }
        self.end_registration(actor, &reg, RegistrationStatus::Cancelled, "cancelled")
            .await?;
        self.registration(actor, tenant, id).await
    }

    /// Ends `reg` with `status`, disabling the device of a re-enrolment.
    pub(crate) async fn end_registration(
        &self,
        actor: &Actor,
        reg: &Registration,
        status: RegistrationStatus,
        reason: &str,
    ) -> CoreResult<bool> {
        let now = self.now();
        let disable = match reg.purpose {
            RegistrationPurpose::Reenroll => reg.device_id,
            _ => None,
        };
        let action = match status {
            RegistrationStatus::Cancelled => AuditAction::RegistrationCancelled,
            _ => AuditAction::RegistrationExpired,
        };
        let mut audit = vec![
            AuditEntry::new(
                Some(reg.tenant_id),
                now,
                actor,
                action,
                ("registration", reg.id.clone()),
            )
            .maybe_user(reg.user_id)
            .details(serde_json::json!({ "reason": reason, "purpose": reg.purpose })),
        ];
        if let Some(device) = disable {
            audit.push(
                AuditEntry::new(
                    Some(reg.tenant_id),
                    now,
                    actor,
                    AuditAction::DeviceMdmDisabled,
                    ("device", device.to_string()),
                )
                .device(device)
                .maybe_user(reg.user_id)
                .details(serde_json::json!({ "registration": reg.id, "reason": reason })),
            );
        }
        let end = EndRegistration {
            tenant_id: reg.tenant_id,
            id: reg.id.clone(),
            status: Some(status),
            reason: reason.to_string(),
            disable_device: disable,
            at: now,
        };
        Ok(self.store.end_registration(&end, &[], &audit).await?)
    }

    /// The expiry job: a registration still open after its profile expired
    /// (and the grace) ends `expired`; a re-enrolment's device loses MDM.
    pub(crate) async fn run_registration_expiry(
        &self,
        tenant: Option<TenantId>,
        payload: &serde_json::Value,
    ) -> JobOutcome {
        let (Some(tenant), Some(id)) = (tenant, payload["registration"].as_str()) else {
            return JobOutcome::Permanent("registration.expire: bad payload".into());
        };
        let reg = match self.store.registration(tenant, id).await {
            Ok(Some(r)) => r,
            Ok(None) => return JobOutcome::Done,
            Err(e) => return JobOutcome::retry(e.to_string()),
        };
        let due = reg.expires_at.map(|e| e + REGISTRATION_GRACE);
        if !reg.status.is_open() || due.is_some_and(|d| d > self.now()) {
            // Completed, ended, or given a fresh profile since: nothing to do.
            return JobOutcome::Done;
        }
        match self
            .end_registration(
                &Actor::System,
                &reg,
                RegistrationStatus::Expired,
                "profile_expired",
            )
            .await
        {
            Ok(_) => JobOutcome::Done,
            Err(e) => JobOutcome::retry(e.to_string()),
        }
    }
}

/// The job that ends `reg` if it is still open after its profile expired
/// (and the grace); none for a registration without an expiry. One per
/// registration and expiry time (its dedupe key).
pub(crate) fn expiry_job(reg: &Registration) -> Option<crate::jobs::NewJob> {
    let expires = reg.expires_at?;
    Some(crate::jobs::NewJob {
        id: crate::ids::JobId::new(),
        tenant_id: Some(reg.tenant_id),
        kind: EXPIRE_JOB.to_string(),
        payload: serde_json::json!({ "registration": reg.id }),
        run_at: expires + REGISTRATION_GRACE,
        dedupe_key: Some(format!(
            "{EXPIRE_JOB}:{}:{}",
            reg.id,
            expires.unix_timestamp()
        )),
        max_attempts: 5,
    })
}
