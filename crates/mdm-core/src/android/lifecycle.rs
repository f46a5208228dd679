//! Administrators' lifecycle actions on Android entries (R18, R22), reached
//! through the device endpoints shared with Apple: retire (the agent removes
//! management; Retired at once), wipe (factory reset on a company-owned
//! device, work-profile removal on a personal one; Wiped when the agent
//! acknowledges), lock, and delete (the entry is gone and the device may
//! simply register again). Each queues an agent command with its audit
//! entry in one transaction and asks for an FCM wake-up.

use crate::android::register::new_command;
use crate::android::{AndroidChange, AndroidCommand, StatusChange};
use crate::audit::AuditAction;
use crate::commands::CommandQuery;
use crate::core::Core;
use crate::devices::{Device, DeviceStatus, device_audit};
use crate::error::{CoreError, CoreResult};
use crate::ids::DeviceId;
use crate::registrations::DevicePlatform;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::Page;
use mdm_android::{CommandKind, WipeParams, WipeScope};

/// Which lifecycle action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AndroidAction {
    Retire,
    Wipe,
    Lock,
}

impl Core {
    /// The device if it is an Android entry of the tenant.
    pub(crate) async fn android_entry(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
    ) -> CoreResult<Option<Device>> {
        actor.require_tenant(tenant.id)?;
        let device = self
            .store
            .device(tenant.id, id)
            .await?
            .ok_or(CoreError::NotFound("device"))?;
        Ok((device.platform == DevicePlatform::Android).then_some(device))
    }

    /// Queues the agent command of `action` for an Android entry.
    pub async fn android_lifecycle(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        device: Device,
        action: AndroidAction,
        reason: Option<String>,
    ) -> CoreResult<AndroidCommand> {
        let android = self
            .store
            .android_device(tenant.id, device.id)
            .await?
            .ok_or(CoreError::NotFound("device"))?;
        if !android.enabled
            || matches!(
                device.status,
                DeviceStatus::Wiped | DeviceStatus::Retired | DeviceStatus::Reset
            )
        {
            return Err(CoreError::Conflict {
                code: "device_not_managed",
                message: format!(
                    "the device is {} and no longer takes commands",
                    device.status.shown()
                ),
            });
        }
        let now = self.now();
        let mode = android.management_mode;
        let (kind, ack, audit_action) = match action {
            AndroidAction::Retire => (CommandKind::Retire, None, AuditAction::DeviceRetired),
            AndroidAction::Wipe => (
                CommandKind::Wipe(WipeParams {
                    scope: WipeScope::for_mode(mode),
                    wipe_reset_protection: false,
                    reason,
                }),
                Some(DeviceStatus::Wiped),
                AuditAction::DeviceWipeRequested,
            ),
            AndroidAction::Lock => (CommandKind::Lock, None, AuditAction::DeviceLockRequested),
        };
        let cmd = new_command(self, tenant, device.id, kind, ack, &actor.key(), now)?;
        let mut change = AndroidChange::new(tenant.id, device.id);
        if action == AndroidAction::Retire {
            // Retired at once; the agent may still fetch the retire command.
            change.cancel_queued = true;
            change.status = Some(StatusChange {
                status: DeviceStatus::Retired,
                current: false,
                enabled: true,
                at: now,
            });
        }
        change.commands.push(cmd.clone());
        let audit = device_audit(&device, now, actor, audit_action).details(serde_json::json!({
            "command": cmd.id,
            "kind": cmd.kind,
            "management_mode": mode,
            "payload": cmd.payload,
        }));
        self.store.apply_android_change(&change, &[audit]).await?;
        self.request_android_push(tenant.id, device.id).await?;
        Ok(cmd)
    }

    /// Deletes an Android entry, in any status (R18): it is gone from the
    /// inventory, its key stops working, and the device may register again
    /// as new. [`Core::delete_device`] sends Android entries here.
    pub(crate) async fn delete_android_entry(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        device: Device,
    ) -> CoreResult<()> {
        let id = device.id;
        let audit = device_audit(&device, self.now(), actor, AuditAction::DeviceDeleted)
            .details(serde_json::json!({ "status": device.status, "platform": device.platform }));
        if !self
            .store
            .delete_android_device(tenant.id, id, &audit)
            .await?
        {
            return Err(CoreError::NotFound("device"));
        }
        Ok(())
    }

    /// An Android device's agent commands and their results.
    pub async fn android_device_commands(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
        query: &CommandQuery,
    ) -> CoreResult<Page<AndroidCommand>> {
        actor.require_tenant(tenant.id)?;
        if query.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        self.android_entry(actor, tenant, id)
            .await?
            .ok_or(CoreError::NotFound("device"))?;
        Ok(self.store.android_commands(tenant.id, id, query).await?)
    }
}
