//! Queuing Apple commands: the administrator's typed commands, retire and
//! wipe, each with its audit entry in the same transaction, and a push request
//! for the channel. User-level profiles go only to the macOS user channel (R14).

use crate::audit::AuditAction;
use crate::commands::{AppleCommand, CommandQuery, CommandState, CommandTarget, NewCommand};
use crate::core::Core;
use crate::devices::{AppleChannel, DeviceStatus, device_audit};
use crate::error::{CoreError, CoreResult};
use crate::ids::DeviceId;
use crate::ports::EnrollmentChange;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::Page;
use mdm_apple::{Command, CommandRequest};

impl Core {
    /// Queues `cmd` for `target` (with its audit entry and, for retire and
    /// wipe, the status change) and asks for a push.
    pub async fn queue_command(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        target: CommandTarget,
        cmd: Command,
    ) -> CoreResult<AppleCommand> {
        actor.require_tenant(tenant.id)?;
        let mut device = self
            .store
            .device(tenant.id, target.device)
            .await?
            .ok_or(CoreError::NotFound("device"))?;
        let enrollments = self.store.apple_enrollments(tenant.id, device.id).await?;
        let channel = enrollments
            .iter()
            .find(|e| e.channel == AppleChannel::User && e.enabled)
            .filter(|_| target.user_channel)
            .or_else(|| {
                enrollments
                    .iter()
                    .find(|e| e.channel == AppleChannel::Device)
                    .filter(|_| !target.user_channel)
            })
            .ok_or(CoreError::Conflict {
                code: "no_channel",
                message: if target.user_channel {
                    "the device has no managed user channel".into()
                } else {
                    "the device has no Apple MDM enrollment".into()
                },
            })?
            .clone();
        if matches!(device.status, DeviceStatus::Wiped) {
            return Err(CoreError::Conflict {
                code: "device_wiped",
                message: "the device was wiped".into(),
            });
        }
        let payload = cmd
            .to_xml()
            .map_err(|e| CoreError::invalid("command", e.to_string()))?;
        let now = self.now();
        let stored = AppleCommand {
            command_uuid: cmd.command_uuid.clone(),
            tenant_id: tenant.id,
            enrollment_id: channel.id.clone(),
            device_id: device.id,
            request_type: cmd.request.request_type().to_string(),
            payload,
            state: CommandState::Queued,
            not_now_count: 0,
            ack_device_status: target.lifecycle.filter(|s| *s == DeviceStatus::Wiped),
            queued_by: actor.key(),
            created_at: now,
            result_at: None,
            error_chain: serde_json::Value::Null,
            result: serde_json::Value::Null,
        };
        let action = match target.lifecycle {
            Some(DeviceStatus::Retired) => AuditAction::DeviceRetired,
            Some(DeviceStatus::Wiped) => AuditAction::DeviceWipeRequested,
            _ if stored.request_type == "DeviceLock" => AuditAction::DeviceLockRequested,
            _ => AuditAction::DeviceCommandQueued,
        };
        let audit = device_audit(&device, now, actor, action).details(serde_json::json!({
            "command_uuid": stored.command_uuid,
            "request_type": stored.request_type,
            "enrollment": stored.enrollment_id,
        }));
        let mut change = EnrollmentChange {
            commands: vec![stored.clone()],
            ..EnrollmentChange::default()
        };
        if target.lifecycle == Some(DeviceStatus::Retired) {
            device.status = DeviceStatus::Retired;
            device.updated_at = now;
            change.device = Some((device, false));
        }
        self.store
            .apply_enrollment_change(&change, &[audit])
            .await?;
        self.request_push(tenant.id, &channel.id).await?;
        Ok(stored)
    }

    /// Queues an administrator's typed command.
    pub async fn queue_new_command(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        device: DeviceId,
        new: &NewCommand,
    ) -> CoreResult<AppleCommand> {
        let mut target = CommandTarget::device(device);
        let request = match new {
            NewCommand::DeviceInformation => CommandRequest::device_information(),
            NewCommand::ProfileList => CommandRequest::ProfileList,
            NewCommand::InstallProfile {
                payload_base64,
                user_channel,
            } => {
                use base64::Engine;
                let payload = base64::engine::general_purpose::STANDARD
                    .decode(payload_base64.trim())
                    .map_err(|e| CoreError::invalid("payload_base64", e.to_string()))?;
                check_profile_scope(&payload, *user_channel)?;
                target.user_channel = *user_channel;
                CommandRequest::InstallProfile { payload }
            }
            NewCommand::RemoveProfile {
                identifier,
                user_channel,
            } => {
                target.user_channel = *user_channel;
                CommandRequest::RemoveProfile {
                    identifier: identifier.clone(),
                }
            }
            NewCommand::DeviceLock {
                pin,
                message,
                phone_number,
            } => CommandRequest::DeviceLock {
                pin: pin.clone(),
                message: message.clone(),
                phone_number: phone_number.clone(),
            },
        };
        let cmd = Command::new(self.command_uuid(), request);
        self.queue_command(actor, tenant, target, cmd).await
    }

    /// A device's commands and their results.
    pub async fn device_commands(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        device: DeviceId,
        query: &CommandQuery,
    ) -> CoreResult<Page<AppleCommand>> {
        actor.require_tenant(tenant.id)?;
        if query.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        self.store
            .device(tenant.id, device)
            .await?
            .ok_or(CoreError::NotFound("device"))?;
        Ok(self.store.apple_commands(tenant.id, device, query).await?)
    }
}

/// A plain (unsigned) profile says its scope: user-level profiles
/// (`PayloadScope` `User`) go only to the user channel, and only they do.
fn check_profile_scope(payload: &[u8], user_channel: bool) -> CoreResult<()> {
    let Ok(mdm_apple::plist::Value::Dictionary(d)) = mdm_apple::plist::from_bytes(payload) else {
        return Ok(()); // signed or encrypted: the device decides
    };
    let user_scope = d
        .get("PayloadScope")
        .and_then(|v| v.as_string())
        .is_some_and(|s| s.eq_ignore_ascii_case("user"));
    if user_scope != user_channel {
        return Err(CoreError::invalid(
            "user_channel",
            if user_scope {
                "a user-level profile (PayloadScope User) goes to the user channel"
            } else {
                "only user-level profiles (PayloadScope User) go to the user channel"
            },
        ));
    }
    Ok(())
}
