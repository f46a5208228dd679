//! Per-tenant user settings (R3).

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::CoreError;
use crate::error::CoreResult;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use serde::{Deserialize, Serialize};

/// How registration behaves for the users of one tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserSettings {
    /// A one-time registration PIN is required even for users who have a password.
    pub pin_required: bool,
    /// How long an emailed PIN stays valid, in seconds.
    pub pin_lifetime_secs: i64,
    /// The administrator sets a temporary password that users must change.
    pub temporary_password: bool,
    /// How long a downloaded management profile (and its SCEP challenge) stays valid, in seconds.
    pub profile_validity_secs: i64,
    /// Registration by QR code from the client app is allowed.
    pub qr_registration: bool,
    /// Seconds between reminders to a user whose profile was never
    /// installed, counted from the registration's last progress (R15).
    #[serde(default = "default_reminder_interval")]
    pub reminder_interval_secs: i64,
    /// Reminders sent before the registration is given up; 0 sends none.
    #[serde(default = "default_reminder_max")]
    pub reminder_max: i64,
    /// Remind by email (the tenant's editable `reminder` template).
    #[serde(default = "yes")]
    pub reminder_email: bool,
    /// Remind by a push to the client app, when it registered a push token.
    #[serde(default = "yes")]
    pub reminder_push: bool,
}

fn default_reminder_interval() -> i64 {
    24 * 3600
}

fn default_reminder_max() -> i64 {
    3
}

fn yes() -> bool {
    true
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            pin_required: false,
            pin_lifetime_secs: 7 * 24 * 3600,
            temporary_password: false,
            profile_validity_secs: 600,
            qr_registration: true,
            reminder_interval_secs: default_reminder_interval(),
            reminder_max: default_reminder_max(),
            reminder_email: true,
            reminder_push: true,
        }
    }
}

impl UserSettings {
    /// Checks the bounds an administrator may choose.
    pub fn validate(&self) -> Result<(), CoreError> {
        if !(300..=90 * 24 * 3600).contains(&self.pin_lifetime_secs) {
            return Err(CoreError::invalid(
                "pin_lifetime_secs",
                "between 300 seconds and 90 days",
            ));
        }
        // iOS deletes a downloaded profile that is not installed within 8 minutes;
        // allow a little more for macOS, but never hours: the challenge inside is a credential.
        if !(60..=3600).contains(&self.profile_validity_secs) {
            return Err(CoreError::invalid(
                "profile_validity_secs",
                "between 60 and 3600 seconds",
            ));
        }
        // Short intervals are allowed for trying the feature out; the scan
        // runs every few seconds.
        if !(10..=30 * 24 * 3600).contains(&self.reminder_interval_secs) {
            return Err(CoreError::invalid(
                "reminder_interval_secs",
                "between 10 seconds and 30 days",
            ));
        }
        if !(0..=50).contains(&self.reminder_max) {
            return Err(CoreError::invalid("reminder_max", "between 0 and 50"));
        }
        Ok(())
    }
}

/// A partial update of [`UserSettings`]; absent fields keep their value.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub pin_required: Option<bool>,
    pub pin_lifetime_secs: Option<i64>,
    pub temporary_password: Option<bool>,
    pub profile_validity_secs: Option<i64>,
    pub qr_registration: Option<bool>,
    pub reminder_interval_secs: Option<i64>,
    pub reminder_max: Option<i64>,
    pub reminder_email: Option<bool>,
    pub reminder_push: Option<bool>,
}

impl SettingsPatch {
    /// The settings with this patch applied.
    pub fn apply(&self, s: &UserSettings) -> UserSettings {
        UserSettings {
            pin_required: self.pin_required.unwrap_or(s.pin_required),
            pin_lifetime_secs: self.pin_lifetime_secs.unwrap_or(s.pin_lifetime_secs),
            temporary_password: self.temporary_password.unwrap_or(s.temporary_password),
            profile_validity_secs: self
                .profile_validity_secs
                .unwrap_or(s.profile_validity_secs),
            qr_registration: self.qr_registration.unwrap_or(s.qr_registration),
            reminder_interval_secs: self
                .reminder_interval_secs
                .unwrap_or(s.reminder_interval_secs),
            reminder_max: self.reminder_max.unwrap_or(s.reminder_max),
            reminder_email: self.reminder_email.unwrap_or(s.reminder_email),
            reminder_push: self.reminder_push.unwrap_or(s.reminder_push),
        }
    }
}

impl Core {
    /// The tenant's user settings.
    pub async fn settings(&self, actor: &Actor, tenant: &Tenant) -> CoreResult<UserSettings> {
        actor.require_tenant(tenant.id)?;
        Ok(self.store.settings(tenant.id).await?)
    }

    /// Applies a partial update to the tenant's user settings.
    pub async fn update_settings(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        patch: &SettingsPatch,
    ) -> CoreResult<UserSettings> {
        actor.require_tenant(tenant.id)?;
        let old = self.store.settings(tenant.id).await?;
        let new = patch.apply(&old);
        new.validate()?;
        if new == old {
            return Ok(old);
        }
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::SettingsUpdated,
            ("settings", tenant.id.to_string()),
        )
        .details(serde_json::json!({ "old": old, "new": new }));
        self.store.update_settings(tenant.id, &new, &audit).await?;
        Ok(new)
    }
}
