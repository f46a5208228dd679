//! One-time registration tokens: the QR code the self-service portal shows
//! for the client app (R9), and the short-lived link from which the client
//! app downloads a management profile. Random, stored as SHA-256, spent with
//! one conditional update.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{TenantId, UserId};
use crate::profiles::{ApplePlatform, IssuedProfile, NewProfile};
use crate::secrets::sha256_hex;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::User;
use time::OffsetDateTime;

/// How long a QR code from the portal can be scanned.
pub const QR_LIFETIME: time::Duration = time::Duration::minutes(5);

/// What a token may be spent on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Registering the client app by scanning the portal's QR code.
    QrRegistration,
    /// Downloading one management profile.
    ProfileDownload,
    /// Registering the Android agent (from the client app, or in a
    /// provisioning QR code; `platform` then holds the management mode).
    AgentEnrollment,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QrRegistration => "qr",
            Self::ProfileDownload => "profile",
            Self::AgentEnrollment => "agent",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "qr" => Some(Self::QrRegistration),
            "profile" => Some(Self::ProfileDownload),
            "agent" => Some(Self::AgentEnrollment),
            _ => None,
        }
    }
}

/// A token as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegToken {
    pub token_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    /// For profile links: `ios` or `macos`.
    pub platform: Option<String>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// What spending a one-time secret found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spend<T> {
    /// It was unused and unexpired; it is now used.
    Spent(T),
    Expired(T),
    Used(T),
    Unknown,
}

/// A QR code for the client app: the JSON it encodes and when it expires.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct QrCode {
    /// `{"server": …, "tenant": …, "token": …}`; never holds a password.
    pub payload: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl Core {
    pub(crate) async fn mint(
        &self,
        tenant: &Tenant,
        user: &User,
        purpose: TokenPurpose,
        platform: Option<String>,
        lifetime: time::Duration,
        audit: Option<AuditEntry>,
    ) -> CoreResult<(String, RegToken)> {
        let now = self.now();
        let secret = self.token(32);
        let token = RegToken {
            token_hash: sha256_hex(&secret),
            tenant_id: tenant.id,
            user_id: user.id,
            purpose,
            platform,
            created_at: now,
            expires_at: now + lifetime,
            used_at: None,
        };
        self.store
            .create_reg_token(&token, audit.as_slice())
            .await?;
        Ok((secret, token))
    }

    /// A single-use QR code for the signed-in user's client app (R9).
    pub async fn create_qr_code(&self, tenant: &Tenant, user: &User) -> CoreResult<QrCode> {
        if !self.store.settings(tenant.id).await?.qr_registration {
            return Err(CoreError::Forbidden(
                "QR registration is turned off for this organisation",
            ));
        }
        let actor = Actor::User {
            id: user.id,
            tenant: tenant.id,
            email: user.email.clone(),
        };
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            &actor,
            AuditAction::QrTokenCreated,
            ("user", user.id.to_string()),
        )
        .user(user.id);
        let (secret, token) = self
            .mint(
                tenant,
                user,
                TokenPurpose::QrRegistration,
                None,
                QR_LIFETIME,
                Some(audit),
            )
            .await?;
        let payload = serde_json::json!({
            "server": self.public_url,
            "tenant": tenant.slug,
            "token": secret,
        });
        Ok(QrCode {
            payload: payload.to_string(),
            expires_at: token.expires_at,
        })
    }

    /// A one-time link from which the client app downloads a profile; valid
    /// as long as a profile would be.
    pub(crate) async fn profile_link(
        &self,
        tenant: &Tenant,
        user: &User,
        platform: ApplePlatform,
    ) -> CoreResult<(String, OffsetDateTime)> {
        let validity = self.store.settings(tenant.id).await?.profile_validity_secs;
        let name = match platform {
            ApplePlatform::Ios => "ios",
            ApplePlatform::Macos => "macos",
        };
        let (secret, token) = self
            .mint(
                tenant,
                user,
                TokenPurpose::ProfileDownload,
                Some(name.into()),
                time::Duration::seconds(validity),
                None,
            )
            .await?;
        let url = format!(
            "{}/app/v1/tenants/{}/profiles/{secret}",
            self.public_url, tenant.slug
        );
        Ok((url, token.expires_at))
    }

    /// Spends a profile link and issues the profile it stands for.
    pub async fn download_linked_profile(
        &self,
        tenant: &Tenant,
        secret: &str,
    ) -> CoreResult<IssuedProfile> {
        let spent = self
            .store
            .redeem_reg_token(
                tenant.id,
                &sha256_hex(secret),
                TokenPurpose::ProfileDownload,
                self.now(),
            )
            .await?;
        let token = match spent {
            Spend::Spent(t) => t,
            Spend::Expired(_) => {
                return Err(CoreError::Gone {
                    code: "profile_link_expired",
                    message:
                        "This download link has expired. Start the registration again in the app."
                            .into(),
                });
            }
            Spend::Used(_) => {
                return Err(CoreError::Gone {
                    code: "profile_link_used",
                    message: "This download link was already used. Start the registration again in the app.".into(),
                });
            }
            Spend::Unknown => return Err(CoreError::NotFound("profile link")),
        };
        let user = self
            .store
            .user(tenant.id, token.user_id)
            .await?
            .ok_or(CoreError::NotFound("profile link"))?;
        let platform = match token.platform.as_deref() {
            Some("macos") => ApplePlatform::Macos,
            _ => ApplePlatform::Ios,
        };
        self.issue_user_profile(tenant, &user, platform).await
    }

    /// Issues a profile to a signed-in user and records the funnel stage.
    pub async fn issue_user_profile(
        &self,
        tenant: &Tenant,
        user: &User,
        platform: ApplePlatform,
    ) -> CoreResult<IssuedProfile> {
        let actor = Actor::User {
            id: user.id,
            tenant: tenant.id,
            email: user.email.clone(),
        };
        // The profile continues the user's open registration (the one the
        // invitation and sign-in stamped), or starts one.
        let open = self.store.open_registration(tenant.id, user.id).await?;
        let new = NewProfile {
            platform,
            user_id: Some(user.id),
            registration: open.map(|r| r.id),
        };
        let issued = self.issue_profile(&actor, tenant, &new).await?;
        self.store
            .record_stage(
                tenant.id,
                user.id,
                crate::registration::Stage::ProfileDownloaded,
                self.now(),
                &[],
            )
            .await?;
        Ok(issued)
    }
}
