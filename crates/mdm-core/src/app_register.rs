//! The client app's registration (R9): email and password, or a QR token
//! from the self-service portal. The answer says what the platform does
//! next: Apple devices download a profile from a short-lived one-time link
//! (R10); Android devices go on to the agent registration.

use crate::core::Core;
use crate::error::CoreResult;
use crate::profiles::ApplePlatform;
use crate::registration::{Channel, Credentials, Refusal};
use crate::tenants::Tenant;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use time::OffsetDateTime;

/// The platform the app runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppPlatform {
    Ios,
    Ipados,
    Macos,
    Android,
}

/// What the app sends.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppRegistration {
    pub platform: AppPlatform,
    /// The OS version, e.g. `17.4` or `14`.
    pub os_version: String,
    pub email: Option<String>,
    pub password: Option<String>,
    /// The token from a scanned portal QR code (instead of email and password).
    pub qr_token: Option<String>,
}

/// The next step for the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NextStep {
    /// Download the profile from `profile_url` and have the user install it.
    InstallProfile,
    /// Register the device-policy agent at `agent_api`.
    RegisterAgent,
}

/// The answer to a successful registration.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct AppNext {
    pub next: NextStep,
    pub email: String,
    pub display_name: String,
    /// One-time, short-lived profile download link (Apple platforms).
    pub profile_url: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Base URL of the Android agent API (Android).
    pub agent_api: Option<String>,
    /// One-time, short-lived token the agent registers with (Android;
    /// `credentials.enrollment_token` of `POST /android/v1/register`).
    pub enrollment_token: Option<String>,
    /// What to tell the user.
    pub message: String,
}

/// The major version of an OS version string (`17.4.1` → 17).
pub fn major_version(v: &str) -> Option<u32> {
    v.trim().split('.').next()?.parse().ok()
}

/// QR registration needs Android 9+ and iOS/iPadOS 14+ (R9).
pub fn qr_supported(platform: AppPlatform, major: u32) -> Result<(), Refusal> {
    let (name, minimum) = match platform {
        AppPlatform::Android => ("Android", 9),
        AppPlatform::Ios => ("iOS", 14),
        AppPlatform::Ipados => ("iPadOS", 14),
        AppPlatform::Macos => return Ok(()),
    };
    if major >= minimum {
        Ok(())
    } else {
        Err(Refusal::QrUnsupported {
            platform: name,
            minimum,
        })
    }
}

impl Core {
    /// Registers the client app of a user.
    pub async fn app_register(
        &self,
        tenant: &Tenant,
        req: &AppRegistration,
        addr: Option<IpAddr>,
    ) -> CoreResult<Result<AppNext, Refusal>> {
        let Some(major) = major_version(&req.os_version) else {
            return Ok(Err(Refusal::BadRequest(
                "os_version must start with the major version number, e.g. 17.4".into(),
            )));
        };
        let user = match (&req.qr_token, &req.email, &req.password) {
            (Some(token), None, None) => {
                if !self.store.settings(tenant.id).await?.qr_registration {
                    return Ok(Err(Refusal::QrDisabled));
                }
                if let Err(r) = qr_supported(req.platform, major) {
                    self.audit_app_refusal(tenant, r.code(), req).await?;
                    return Ok(Err(r));
                }
                let token = match self.spend_qr_token(tenant, token).await? {
                    Ok(t) => t,
                    Err(r) => return Ok(Err(r)),
                };
                let Some(user) = self.store.user(tenant.id, token.user_id).await? else {
                    return Ok(Err(Refusal::Invalid));
                };
                self.record_app_sign_in(tenant, &user).await?;
                user
            }
            (None, Some(email), Some(password)) => {
                let creds = Credentials {
                    email,
                    secret: password,
                    addr,
                };
                match self.sign_in(tenant, Channel::App, creds).await? {
                    Ok(signed) => signed.user,
                    Err(r) => return Ok(Err(r)),
                }
            }
            _ => {
                return Ok(Err(Refusal::BadRequest(
                    "send either qr_token, or email and password".into(),
                )));
            }
        };
        let apple = match req.platform {
            AppPlatform::Ios | AppPlatform::Ipados => Some(ApplePlatform::Ios),
            AppPlatform::Macos => Some(ApplePlatform::Macos),
            AppPlatform::Android => None,
        };
        let next = match apple {
            Some(platform) => {
                let (url, expires) = self.profile_link(tenant, &user, platform).await?;
                let minutes = (expires - self.now()).whole_minutes().max(1);
                AppNext {
                    next: NextStep::InstallProfile,
                    email: user.email.clone(),
                    display_name: user.display_name.clone(),
                    profile_url: Some(url),
                    expires_at: Some(expires),
                    agent_api: None,
                    enrollment_token: None,
                    message: format!(
                        "Download the management profile and install it within {minutes} minutes; after that, start again."
                    ),
                }
            }
            None => {
                let (token, expires) = self.app_enrollment_token(tenant, &user).await?;
                AppNext {
                    next: NextStep::RegisterAgent,
                    email: user.email.clone(),
                    display_name: user.display_name.clone(),
                    profile_url: None,
                    expires_at: Some(expires),
                    agent_api: Some(format!("{}/android/v1", self.public_url)),
                    enrollment_token: Some(token),
                    message: "Signed in. The app now registers this device.".into(),
                }
            }
        };
        Ok(Ok(next))
    }

    async fn record_app_sign_in(
        &self,
        tenant: &Tenant,
        user: &crate::users::User,
    ) -> CoreResult<()> {
        let now = self.now();
        let audit = crate::audit::AuditEntry::new(
            Some(tenant.id),
            now,
            &crate::registration::user_actor(tenant.id, user),
            crate::audit::AuditAction::SignInSucceeded,
            ("user", user.id.to_string()),
        )
        .user(user.id)
        .details(serde_json::json!({ "channel": "app", "via_qr": true }));
        self.store
            .record_sign_in(
                tenant.id,
                user.id,
                &crate::throttle::user_key(&user.email),
                None,
                now,
                &audit,
            )
            .await?;
        Ok(())
    }

    async fn audit_app_refusal(
        &self,
        tenant: &Tenant,
        code: &str,
        req: &AppRegistration,
    ) -> CoreResult<()> {
        let audit = crate::audit::AuditEntry::new(
            Some(tenant.id),
            self.now(),
            &crate::tokens::Actor::Public,
            crate::audit::AuditAction::RegistrationRefused,
            ("registration", "app".to_string()),
        )
        .details(serde_json::json!({
            "reason": code,
            "platform": req.platform,
            "os_version": req.os_version,
        }));
        Ok(self.store.append_audit(&audit).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_os_floor() {
        assert_eq!(major_version("17.4.1"), Some(17));
        assert_eq!(major_version(" 9"), Some(9));
        assert_eq!(major_version("x"), None);
        assert!(qr_supported(AppPlatform::Android, 8).is_err());
        assert!(qr_supported(AppPlatform::Android, 9).is_ok());
        assert!(qr_supported(AppPlatform::Ios, 13).is_err());
        assert!(qr_supported(AppPlatform::Ipados, 14).is_ok());
        assert!(qr_supported(AppPlatform::Macos, 11).is_ok());
    }
}
