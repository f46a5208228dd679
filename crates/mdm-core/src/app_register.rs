//! The client app's registration (R9): email and password, or a QR token
//! from the self-service portal. The answer says what the platform does
//! next: Apple devices download a profile from a short-lived one-time link
//! (R10); Android devices go on to the agent registration.

use crate::core::Core;
use crate::error::CoreResult;
use crate::profiles::ApplePlatform;
use crate::registration::{Channel, Credentials, Refusal};
use crate::registrations::DevicePlatform;
use crate::reminders::{AppPushProvider, AppPushToken};
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
    /// The app's push token, for registration reminders (R15): on Apple
    /// platforms the APNs device token in hex, on Android the FCM
    /// registration token.
    #[serde(default)]
    pub push_token: Option<String>,
    /// On Apple platforms, the app's bundle identifier (the APNs topic of
    /// its notifications); required with `push_token` there.
    #[serde(default)]
    pub push_topic: Option<String>,
}

impl AppRegistration {
    /// The push address the app sent, checked.
    fn push(&self) -> Result<Option<AppPushToken>, Refusal> {
        let Some(token) = self.push_token.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let bad = |m: &str| Err(Refusal::BadRequest(m.into()));
        if self.platform == AppPlatform::Android {
            if token.is_empty() || token.len() > 4096 || token.chars().any(char::is_whitespace) {
                return bad("push_token must be the FCM registration token");
            }
            return Ok(Some(AppPushToken {
                provider: AppPushProvider::Fcm,
                token: token.into(),
                topic: None,
            }));
        }
        if token.len() < 64
            || token.len() > 200
            || token.len() % 2 != 0
            || !token.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return bad("push_token must be the APNs device token in hex");
        }
        let topic = self
            .push_topic
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if topic.is_empty()
            || topic.len() > 255
            || !topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            return bad("push_topic must be the app's bundle identifier");
        }
        Ok(Some(AppPushToken {
            provider: AppPushProvider::Apns,
            token: token.to_ascii_lowercase(),
            topic: Some(topic.into()),
        }))
    }
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
        let push = match req.push() {
            Ok(p) => p,
            Err(r) => return Ok(Err(r)),
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
        let platform = match req.platform {
            AppPlatform::Ios | AppPlatform::Ipados => DevicePlatform::Ios,
            AppPlatform::Macos => DevicePlatform::Macos,
            AppPlatform::Android => DevicePlatform::Android,
        };
        self.record_app_push(tenant, &user, platform, push.as_ref())
            .await?;
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

    fn with_push(platform: AppPlatform, token: &str, topic: Option<&str>) -> AppRegistration {
        AppRegistration {
            platform,
            os_version: "17".into(),
            email: None,
            password: None,
            qr_token: None,
            push_token: Some(token.into()),
            push_topic: topic.map(str::to_string),
        }
    }

    #[test]
    fn push_addresses_are_checked() {
        let hex64 = "AB".repeat(32);
        let apns = with_push(AppPlatform::Ios, &hex64, Some("com.example.app"))
            .push()
            .ok()
            .flatten();
        assert_eq!(
            apns.map(|p| (p.provider, p.token)),
            Some((AppPushProvider::Apns, "ab".repeat(32)))
        );
        assert!(with_push(AppPlatform::Ios, &hex64, None).push().is_err());
        assert!(
            with_push(AppPlatform::Ios, "xyz", Some("com.example.app"))
                .push()
                .is_err()
        );
        assert!(
            with_push(AppPlatform::Ios, &hex64, Some("bad topic"))
                .push()
                .is_err()
        );
        let fcm = with_push(AppPlatform::Android, "fcm:token-1", None)
            .push()
            .ok()
            .flatten();
        assert_eq!(fcm.map(|p| p.provider), Some(AppPushProvider::Fcm));
        assert!(with_push(AppPlatform::Android, "a b", None).push().is_err());
    }
}
