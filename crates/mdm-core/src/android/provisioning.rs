//! QR provisioning of company-owned Android devices (fully managed, or a
//! work profile on a company-owned device): the
//! `android.app.extra.PROVISIONING_*` payload a factory-new device reads at
//! setup — the agent package to download (configured by the operator) and
//! an admin extras bundle with the server URL, the tenant and a one-time
//! enrollment token for one user; never a password. Also the short-lived
//! enrollment token the client app hands to the agent after sign-in.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::UserId;
use crate::regtokens::TokenPurpose;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::User;
use mdm_android::{
    AdminExtras, ApiVersion, ManagementMode, ProvisioningOptions, ProvisioningQr, Wifi,
    WifiSecurity,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// What an administrator asks a provisioning QR code for.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningRequest {
    /// The user the device is registered for.
    pub user_id: UserId,
    /// `fully_managed`, `company_owned_work_profile` or `dedicated`.
    #[schema(value_type = String)]
    pub management_mode: ManagementMode,
    /// A Wi-Fi network the device joins during setup.
    pub wifi_ssid: Option<String>,
    /// Its WPA passphrase (the network's, never a user's password).
    pub wifi_passphrase: Option<String>,
    #[serde(default)]
    pub wifi_hidden: bool,
    #[serde(default)]
    pub skip_encryption: bool,
    #[serde(default)]
    pub leave_all_system_apps_enabled: bool,
    #[serde(default)]
    pub use_mobile_data: bool,
}

/// A provisioning QR code's content.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Provisioning {
    /// The JSON the QR code encodes.
    pub payload: String,
    /// When its enrollment token stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[schema(value_type = String)]
    pub management_mode: ManagementMode,
    pub user_id: UserId,
}

impl Core {
    /// A provisioning QR payload with a fresh one-time enrollment token.
    pub async fn android_provisioning(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        req: &ProvisioningRequest,
    ) -> CoreResult<Provisioning> {
        actor.require_tenant(tenant.id)?;
        let package = self.android.agent.clone().ok_or(CoreError::Conflict {
            code: "android_agent_unconfigured",
            message: "no agent package is configured: set android_agent_component, \
                      android_agent_download_url and android_agent_signature_checksum"
                .into(),
        })?;
        if !req.management_mode.is_company_owned() {
            return Err(CoreError::invalid(
                "management_mode",
                "QR provisioning is for company-owned devices; a personal work profile registers from the client app",
            ));
        }
        let user = self
            .store
            .user(tenant.id, req.user_id)
            .await?
            .ok_or(CoreError::NotFound("user"))?;
        let wifi = match (&req.wifi_ssid, &req.wifi_passphrase) {
            (None, None) => None,
            (None, Some(_)) => {
                return Err(CoreError::invalid("wifi_ssid", "needed with a passphrase"));
            }
            (Some(ssid), pass) => Some(Wifi {
                ssid: ssid.clone(),
                hidden: req.wifi_hidden,
                security: match pass {
                    Some(p) => WifiSecurity::Wpa {
                        passphrase: p.clone(),
                    },
                    None => WifiSecurity::Open,
                },
            }),
        };
        let mut qr = ProvisioningQr {
            package,
            options: ProvisioningOptions {
                skip_encryption: req.skip_encryption,
                leave_all_system_apps_enabled: req.leave_all_system_apps_enabled,
                use_mobile_data: req.use_mobile_data,
                wifi,
            },
            extras: AdminExtras {
                server_url: self.public_url.clone(),
                tenant: tenant.slug.clone(),
                enrollment_token: "placeholder-token".into(),
                management_mode: req.management_mode,
                api_version: ApiVersion::CURRENT,
            },
        };
        // Refuse a bad request before a token exists.
        qr.validate()
            .map_err(|e| CoreError::invalid("provisioning", e.to_string()))?;
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::AndroidProvisioningCreated,
            ("user", user.id.to_string()),
        )
        .user(user.id)
        .details(serde_json::json!({
            "management_mode": req.management_mode,
            "wifi": req.wifi_ssid.is_some(),
        }));
        let (secret, token) = self
            .mint(
                tenant,
                &user,
                TokenPurpose::AgentEnrollment,
                Some(req.management_mode.as_str().to_string()),
                self.android.provisioning_token_lifetime,
                Some(audit),
            )
            .await?;
        qr.extras.enrollment_token = secret;
        let payload = qr
            .to_json()
            .map_err(|e| CoreError::invalid("provisioning", e.to_string()))?;
        Ok(Provisioning {
            payload,
            expires_at: token.expires_at,
            management_mode: req.management_mode,
            user_id: user.id,
        })
    }

    /// The one-time token the client app hands to the agent after sign-in.
    pub(crate) async fn app_enrollment_token(
        &self,
        tenant: &Tenant,
        user: &User,
    ) -> CoreResult<(String, OffsetDateTime)> {
        let (secret, token) = self
            .mint(
                tenant,
                user,
                TokenPurpose::AgentEnrollment,
                None,
                self.android.app_token_lifetime,
                None,
            )
            .await?;
        Ok((secret, token.expires_at))
    }
}
