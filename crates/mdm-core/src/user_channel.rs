//! The macOS user channel (R14): one managed user per device, and only the
//! user the device is registered for, named by `UserShortName` (login name,
//! email or its local part) or `UserLongName` (display name). Directory users
//! announce themselves with `UserAuthenticate`, answered per configuration.

use crate::audit::AuditAction;
use crate::checkin::{CheckinReply, build, new_enrollment};
use crate::core::Core;
use crate::devices::{AppleChannel, AppleEnrollment, Device, device_audit};
use crate::identity::{DeviceResult, ProvenCert, Refusal};
use crate::ports::EnrollmentChange;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_apple::{Enrollment, TokenUpdate, UserAuthenticate};

impl Core {
    pub(crate) async fn user_token_update(
        &self,
        tenant: &Tenant,
        dc: AppleEnrollment,
        device: Device,
        m: &TokenUpdate,
    ) -> DeviceResult<CheckinReply> {
        if !dc.enabled {
            return Err(Refusal::NotEnrolled("the device channel is not live".into()).into());
        }
        self.check_managed_user(tenant, &device, &m.enrollment)
            .await?;
        let id = m.enrollment.id.to_string();
        let channels = self.store.apple_enrollments(tenant.id, device.id).await?;
        if let Some(other) = channels
            .iter()
            .find(|e| e.channel == AppleChannel::User && e.enabled && e.id != id)
        {
            return Err(Refusal::UserRefused(format!(
                "the device already has a managed user ({})",
                other.user_short_name.as_deref().unwrap_or(&other.id)
            ))
            .into());
        }
        let now = self.now();
        let existing = channels.into_iter().find(|e| e.id == id);
        let first = existing.as_ref().is_none_or(|e| !e.enabled);
        let base = existing.unwrap_or_else(|| {
            new_enrollment(tenant, &device, &id, AppleChannel::User, &m.topic, now)
        });
        let enrollment = AppleEnrollment {
            registration_id: dc.registration_id.clone(),
            token: Some(m.token.clone()),
            push_magic: Some(m.push_magic.clone()),
            topic: m.topic.clone(),
            token_dead_at: None,
            user_short_name: m.enrollment.user_short_name.clone(),
            user_long_name: m.enrollment.user_long_name.clone(),
            enabled: true,
            last_seen_at: Some(now),
            updated_at: now,
            ..base
        };
        let audit: Vec<_> = first
            .then(|| {
                device_audit(
                    &device,
                    now,
                    &Actor::Public,
                    AuditAction::DeviceUserChannelEnrolled,
                )
                .details(serde_json::json!({
                    "enrollment": id, "user_short_name": enrollment.user_short_name,
                }))
            })
            .into_iter()
            .collect();
        let change = EnrollmentChange {
            enrollment: Some(enrollment),
            ..EnrollmentChange::default()
        };
        self.store.apply_enrollment_change(&change, &audit).await?;
        Ok(CheckinReply::Empty)
    }

    /// R14: a user channel only for the device's registered user, named by
    /// `UserShortName` (its login name, email or email local part) or
    /// `UserLongName` (its display name).
    async fn check_managed_user(
        &self,
        tenant: &Tenant,
        device: &Device,
        who: &Enrollment,
    ) -> DeviceResult<()> {
        let Some(user_id) = device.user_id else {
            return Err(Refusal::UserRefused("the device is registered for no user".into()).into());
        };
        let user =
            self.store.user(tenant.id, user_id).await?.ok_or_else(|| {
                Refusal::UserRefused("the registered user no longer exists".into())
            })?;
        let short_name = who.user_short_name.as_deref().unwrap_or("");
        let long_name = who.user_long_name.as_deref().unwrap_or("");
        let local = user.email.split('@').next().unwrap_or("");
        let names = [user.login_name.as_deref().unwrap_or(""), &user.email, local];
        let by_short = !short_name.is_empty()
            && names
                .iter()
                .any(|n| !n.is_empty() && n.eq_ignore_ascii_case(short_name));
        let by_long = !long_name.is_empty() && user.display_name.eq_ignore_ascii_case(long_name);
        if by_short || by_long {
            Ok(())
        } else {
            Err(Refusal::UserRefused(format!(
                "{short_name:?} is not the user this device is registered for"
            ))
            .into())
        }
    }

    pub(crate) async fn user_authenticate(
        &self,
        tenant: &Tenant,
        cert: &ProvenCert,
        m: &UserAuthenticate,
    ) -> DeviceResult<CheckinReply> {
        let dc = self
            .bound_device_channel(tenant, cert, &m.enrollment)
            .await?;
        if !self.apple.accept_user_authenticate {
            return Ok(CheckinReply::Declined);
        }
        let Some(device) = self.store.device(tenant.id, dc.device_id).await? else {
            return Ok(CheckinReply::Declined);
        };
        if self
            .check_managed_user(tenant, &device, &m.enrollment)
            .await
            .is_err()
        {
            return Ok(CheckinReply::Declined);
        }
        Ok(match m.digest_response {
            Some(_) => CheckinReply::Empty,
            None => CheckinReply::Plist(mdm_apple::user_authenticate_accept().map_err(build)?),
        })
    }
}
