//! Devices (one record per device, shared by every platform and kept across
//! re-enrolments) and their Apple MDM enrollments (one per channel: the
//! device channel `UDID`, a macOS user channel `UDID:UserID`). The admin use
//! cases: list, inspect, retire, wipe, lock, re-enrol (R17, R22).

use crate::android::lifecycle::AndroidAction;
use crate::audit::{AuditAction, AuditEntry};
use crate::commands::{AppleCommand, CommandTarget};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{DeviceId, TenantId, UserId};
use crate::profiles::{ApplePlatform, IssuedProfile, ProfileRequest};
use crate::registrations::{DevicePlatform, RegistrationPurpose};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::Page;
use mdm_apple::{Command, CommandRequest};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

text_enum!(
    /// Where a device is in its life.
    DeviceStatus {
        /// Authenticated, not yet live (no TokenUpdate yet).
        Pending = "pending",
        /// Enrolled and manageable.
        Active = "active",
        /// Management ended from the device side (CheckOut, cancelled re-enrolment).
        MdmDisabled = "mdm_disabled",
        /// Management removed by an administrator.
        Retired = "retired",
        /// Erased on an administrator's request.
        Wiped = "wiped",
        /// Android: reset, shown active until the next registration (R18).
        Reset = "reset",
    }
);

text_enum!(
    /// Which MDM channel an Apple enrollment is.
    AppleChannel {
        Device = "device",
        User = "user",
    }
);

/// A device as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Device {
    pub id: DeviceId,
    pub tenant_id: TenantId,
    /// The user it is registered for.
    pub user_id: Option<UserId>,
    pub platform: DevicePlatform,
    pub status: DeviceStatus,
    /// What an administrator is shown: `reset` shows as `active` until the
    /// device registers again (R18); otherwise the status.
    pub shown_status: DeviceStatus,
    pub udid: Option<String>,
    pub serial_number: Option<String>,
    pub model: Option<String>,
    pub model_name: Option<String>,
    pub product_name: Option<String>,
    pub os_version: Option<String>,
    pub build_version: Option<String>,
    pub device_name: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub enrolled_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One Apple MDM channel of a device. Push secrets are never serialised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppleEnrollment {
    /// `UDID` for the device channel, `UDID:UserID` for a macOS user channel.
    pub id: String,
    pub tenant_id: TenantId,
    pub device_id: DeviceId,
    pub channel: AppleChannel,
    /// The registration that last authenticated it.
    pub registration_id: Option<String>,
    pub topic: String,
    #[serde(skip)]
    pub token: Option<Vec<u8>>,
    #[serde(skip)]
    pub push_magic: Option<String>,
    /// `UnlockToken`, sealed by the vault.
    #[serde(skip)]
    pub unlock_token: Option<Vec<u8>>,
    /// APNs said the token is gone: no pushes until a new TokenUpdate.
    #[serde(with = "time::serde::rfc3339::option")]
    pub token_dead_at: Option<OffsetDateTime>,
    /// SHA-256 (hex) of the identity certificate bound at Authenticate
    /// (device channel only; a user channel uses its device's).
    pub cert_fingerprint: Option<String>,
    pub cert_serial: Option<String>,
    pub user_short_name: Option<String>,
    pub user_long_name: Option<String>,
    /// Served commands and pushes: from the first TokenUpdate until CheckOut.
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_seen_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_push_at: Option<OffsetDateTime>,
    pub last_push_outcome: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl DeviceStatus {
    /// The status as shown to administrators (R18: Reset shows as Active).
    pub fn shown(self) -> Self {
        match self {
            Self::Reset => Self::Active,
            other => other,
        }
    }
}

impl AppleEnrollment {
    /// Whether a push can reach this channel now.
    pub fn pushable(&self) -> bool {
        self.enabled
            && self.token_dead_at.is_none()
            && self.token.as_ref().is_some_and(|t| !t.is_empty())
            && self.push_magic.as_ref().is_some_and(|m| !m.is_empty())
    }
}

/// A device with its enrollments, as administrators inspect it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceDetail {
    #[serde(flatten)]
    pub device: Device,
    pub enrollments: Vec<AppleEnrollment>,
    /// The agent side of an Android device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub android: Option<crate::android::AndroidDevice>,
}

/// Filters and keyset paging for listing devices (newest first).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeviceQuery {
    pub platform: Option<DevicePlatform>,
    /// The status as shown: `active` includes `reset` entries (shown Active
    /// until their next registration, R18); `reset` lists only those.
    pub status: Option<DeviceStatus>,
    pub user_id: Option<UserId>,
    /// Only devices seen at or after this time (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub seen_after: Option<OffsetDateTime>,
    /// Only devices not seen since this time, or never (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub seen_before: Option<OffsetDateTime>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
}

/// A command queued by a lifecycle action: an Apple MDM command or an
/// Android agent command, depending on the device.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum QueuedCommand {
    Apple(AppleCommand),
    Android(crate::android::AndroidCommand),
}

impl QueuedCommand {
    /// The command's id (CommandUUID or agent command id).
    pub fn id(&self) -> &str {
        match self {
            Self::Apple(c) => &c.command_uuid,
            Self::Android(c) => &c.id,
        }
    }

    /// The command's type (`RemoveProfile`, `EraseDevice`, `retire`, `wipe`, …).
    pub fn kind(&self) -> &str {
        match self {
            Self::Apple(c) => &c.request_type,
            Self::Android(c) => &c.kind,
        }
    }
}

/// What a wipe or lock asks for.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseOptions {
    /// Six digits; macOS only (Find My lock code).
    pub pin: Option<String>,
    /// Shown on the lock screen (lock only).
    pub message: Option<String>,
    /// Shown on the lock screen (lock only).
    pub phone_number: Option<String>,
}

impl Core {
    /// Devices of the tenant, newest first.
    pub async fn devices(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        query: &DeviceQuery,
    ) -> CoreResult<Page<Device>> {
        actor.require_tenant(tenant.id)?;
        if query.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        Ok(self.store.devices(tenant.id, query).await?)
    }

    /// One device and its enrollments.
    pub async fn device(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
    ) -> CoreResult<DeviceDetail> {
        actor.require_tenant(tenant.id)?;
        let device = self
            .store
            .device(tenant.id, id)
            .await?
            .ok_or(CoreError::NotFound("device"))?;
        let enrollments = self.store.apple_enrollments(tenant.id, id).await?;
        let android = self.store.android_device(tenant.id, id).await?;
        Ok(DeviceDetail {
            device,
            enrollments,
            android,
        })
    }

    /// Retire (R22): asks the device to remove the enrollment profile, which
    /// removes everything the MDM installed; the record becomes `retired`.
    pub async fn retire_device(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
    ) -> CoreResult<QueuedCommand> {
        if let Some(device) = self.android_entry(actor, tenant, id).await? {
            return self
                .android_lifecycle(actor, tenant, device, AndroidAction::Retire, None)
                .await
                .map(QueuedCommand::Android);
        }
        let identifier = enrollment_profile_identifier(tenant);
        let cmd = Command::remove_management(self.command_uuid(), identifier);
        self.lifecycle_command(actor, tenant, id, cmd, DeviceStatus::Retired)
            .await
            .map(QueuedCommand::Apple)
    }

    /// Wipe (R22): queues EraseDevice; the record becomes `wiped` when the
    /// device acknowledges it.
    pub async fn wipe_device(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
        options: &EraseOptions,
    ) -> CoreResult<QueuedCommand> {
        if let Some(device) = self.android_entry(actor, tenant, id).await? {
            let reason = options.message.clone();
            return self
                .android_lifecycle(actor, tenant, device, AndroidAction::Wipe, reason)
                .await
                .map(QueuedCommand::Android);
        }
        let request = CommandRequest::EraseDevice {
            pin: options.pin.clone(),
            preserve_data_plan: None,
        };
        let cmd = Command::new(self.command_uuid(), request);
        self.lifecycle_command(actor, tenant, id, cmd, DeviceStatus::Wiped)
            .await
            .map(QueuedCommand::Apple)
    }

    /// Lock: queues DeviceLock.
    pub async fn lock_device(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
        options: &EraseOptions,
    ) -> CoreResult<QueuedCommand> {
        if let Some(device) = self.android_entry(actor, tenant, id).await? {
            return self
                .android_lifecycle(actor, tenant, device, AndroidAction::Lock, None)
                .await
                .map(QueuedCommand::Android);
        }
        let request = CommandRequest::DeviceLock {
            pin: options.pin.clone(),
            message: options.message.clone(),
            phone_number: options.phone_number.clone(),
        };
        let target = CommandTarget::device(id);
        self.queue_command(
            actor,
            tenant,
            target,
            Command::new(self.command_uuid(), request),
        )
        .await
        .map(QueuedCommand::Apple)
    }

    async fn lifecycle_command(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
        cmd: Command,
        status: DeviceStatus,
    ) -> CoreResult<AppleCommand> {
        let mut target = CommandTarget::device(id);
        target.lifecycle = Some(status);
        self.queue_command(actor, tenant, target, cmd).await
    }

    /// Deletes a device record that is no longer managed (retire or wipe it
    /// first): its Apple channels and queued commands go with it; its
    /// registrations, certificates and audit entries stay as history. A
    /// device that enrols again afterwards gets a new record.
    pub async fn delete_device(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
    ) -> CoreResult<()> {
        if let Some(entry) = self.android_entry(actor, tenant, id).await? {
            return self.delete_android_entry(actor, tenant, entry).await;
        }
        let detail = self.device(actor, tenant, id).await?;
        if matches!(
            detail.device.status,
            DeviceStatus::Active | DeviceStatus::Pending
        ) {
            return Err(CoreError::Conflict {
                code: "device_managed",
                message: "the device is still managed: retire or wipe it first".into(),
            });
        }
        let audit = device_audit(
            &detail.device,
            self.now(),
            actor,
            AuditAction::DeviceDeleted,
        )
        .details(serde_json::json!({
            "status": detail.device.status,
            "udid": detail.device.udid,
            "serial_number": detail.device.serial_number,
        }));
        self.store
            .delete_device(tenant.id, id, &audit)
            .await
            .map_err(|e| match e {
                crate::StoreError::NotFound => CoreError::NotFound("device"),
                other => other.into(),
            })
    }

    /// R17: a fresh expiring profile for the same device record. Installing it
    /// re-enrols the device in place; cancelling it or letting it expire
    /// disables the device's MDM.
    pub async fn reenroll_device(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
    ) -> CoreResult<IssuedProfile> {
        let detail = self.device(actor, tenant, id).await?;
        let platform = match detail.device.platform {
            DevicePlatform::Ios => ApplePlatform::Ios,
            DevicePlatform::Macos => ApplePlatform::Macos,
            DevicePlatform::Android => {
                return Err(CoreError::invalid(
                    "device",
                    "Android devices re-register from the agent",
                ));
            }
        };
        if matches!(detail.device.status, DeviceStatus::Wiped) {
            return Err(CoreError::Conflict {
                code: "device_wiped",
                message: "a wiped device enrols again as a new registration".into(),
            });
        }
        let request = ProfileRequest {
            platform,
            user_id: detail.device.user_id,
            registration: None,
            purpose: RegistrationPurpose::Reenroll,
            device_id: Some(id),
            challenge_lifetime: None,
        };
        self.issue_profile_for(actor, tenant, request).await
    }

    /// A fresh CommandUUID (UUID v7, upper case like Apple's own).
    pub(crate) fn command_uuid(&self) -> String {
        let mut b = [0u8; 10];
        self.entropy.fill(&mut b);
        let ms = u64::try_from(self.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        uuid::Builder::from_unix_timestamp_millis(ms, &b)
            .into_uuid()
            .to_string()
            .to_uppercase()
    }
}

/// The `PayloadIdentifier` of the tenant's enrollment profile: what retire removes.
pub fn enrollment_profile_identifier(tenant: &Tenant) -> String {
    format!("mdm.{}.enrollment", tenant.slug)
}

/// A device-level audit entry about `device`.
pub(crate) fn device_audit(
    device: &Device,
    at: OffsetDateTime,
    actor: &Actor,
    action: AuditAction,
) -> AuditEntry {
    let mut entry = AuditEntry::new(
        Some(device.tenant_id),
        at,
        actor,
        action,
        ("device", device.id.to_string()),
    )
    .device(device.id)
    .maybe_user(device.user_id);
    // What the device itself did (check-ins, results) is the device's act.
    if matches!(actor, Actor::Public) {
        entry.actor = format!("device:{}", device.id);
        entry.actor_label = format!("device {}", device.udid.as_deref().unwrap_or("?"));
    }
    entry
}
