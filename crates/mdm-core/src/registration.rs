//! Signing in to start a registration: the web pages behind `…/go` (email
//! and PIN or password, R7/R8), the self-service portal (R11) and the client
//! app (email and password or a QR token, R9). Every answer to a bad attempt
//! is the same whether or not the email exists, and takes about as long: an
//! unknown user still costs one argon2 verification. Attempts are throttled
//! (see [`crate::throttle`]); the stages reached (PIN used, signed in,
//! profile downloaded) are recorded with their times.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::CoreResult;
use crate::ids::{TenantId, UserId};
use crate::regtokens::{RegToken, Spend};
use crate::secrets::{hash_password, verify_password};
use crate::signin::PasswordCheck;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::{User, UserSource, normalize_email};
use crate::websession::{OpenedSession, SessionKind};
use std::net::IpAddr;
use std::sync::OnceLock;
use time::OffsetDateTime;

/// Where a sign-in comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// The registration pages behind `…/go`: PIN or password.
    Web,
    /// The self-service portal: password.
    Portal,
    /// The client app: password (or a QR token, see [`Core::app_register`]).
    App,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Portal => "portal",
            Self::App => "app",
        }
    }
}

/// A stage of a user's registration, recorded with the time it was first reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Invited,
    PinUsed,
    SignedIn,
    ProfileDownloaded,
}

/// The times a user reached each stage.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Progress {
    #[serde(with = "time::serde::rfc3339::option")]
    pub invited_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub pin_used_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub signed_in_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub profile_downloaded_at: Option<OffsetDateTime>,
}

/// Why a sign-in or registration was refused. The texts are what users see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong email, PIN or password — never says which.
    Invalid,
    Locked {
        minutes: i64,
    },
    PinExpired,
    PinUsed,
    /// This organisation requires the PIN from the invitation on `/go`.
    PinRequired,
    DirectoryUnavailable,
    QrDisabled,
    /// QR registration needs a newer OS.
    QrUnsupported {
        platform: &'static str,
        minimum: u32,
    },
    QrExpired,
    QrUsed,
    /// The app sent something unusable (missing fields, unknown platform).
    BadRequest(String),
}

impl Refusal {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid => "invalid_credentials",
            Self::Locked { .. } => "locked_out",
            Self::PinExpired => "pin_expired",
            Self::PinUsed => "pin_used",
            Self::PinRequired => "pin_required",
            Self::DirectoryUnavailable => "directory_unavailable",
            Self::QrDisabled => "qr_disabled",
            Self::QrUnsupported { .. } => "qr_unsupported_os",
            Self::QrExpired => "qr_expired",
            Self::QrUsed => "qr_used",
            Self::BadRequest(_) => "bad_request",
        }
    }

    /// What the user is told.
    pub fn message(&self) -> String {
        match self {
            Self::Invalid => "The email address, PIN or password is not right.".into(),
            Self::Locked { minutes } => format!(
                "Too many failed attempts. Sign-in is locked; try again in {minutes} minutes."
            ),
            Self::PinExpired => "This PIN has expired. Ask your administrator to send a new invitation.".into(),
            Self::PinUsed => "This PIN has already been used. Sign in with your password, or ask your administrator for a new invitation.".into(),
            Self::PinRequired => "Enter the one-time PIN from your invitation email.".into(),
            Self::DirectoryUnavailable => "Your company directory could not be reached. Try again in a few minutes.".into(),
            Self::QrDisabled => "Registration by QR code is turned off for this organisation. Sign in with your email address and password.".into(),
            Self::QrUnsupported { platform, minimum } => format!(
                "Registration by QR code needs {platform} {minimum} or later. Sign in with your email address and password instead."
            ),
            Self::QrExpired => "This QR code has expired. Open the self-service portal and show a new one.".into(),
            Self::QrUsed => "This QR code was already used. Open the self-service portal and show a new one.".into(),
            Self::BadRequest(m) => m.clone(),
        }
    }
}

/// A successful sign-in.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user: User,
    /// Signed in with an invitation PIN.
    pub via_pin: bool,
    /// A local user with no password or a temporary one: must choose one now.
    pub must_set_password: bool,
    /// The browser session, for the web and portal channels.
    pub session: Option<OpenedSession>,
}

/// What a user typed.
#[derive(Clone, Copy, Debug)]
pub struct Credentials<'a> {
    pub email: &'a str,
    /// A PIN (web only) or a password.
    pub secret: &'a str,
    pub addr: Option<IpAddr>,
}

fn looks_like_pin(s: &str) -> bool {
    s.len() == crate::invites::PIN_DIGITS && s.bytes().all(|b| b.is_ascii_digit())
}

/// An argon2id hash no password matches, verified for unknown users so the
/// answer takes as long as for known ones.
fn dummy_hash(core: &Core) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(core.entropy.as_ref(), "no user has this password").unwrap_or_default()
    })
}

pub(crate) fn user_actor(tenant: TenantId, user: &User) -> Actor {
    Actor::User {
        id: user.id,
        tenant,
        email: user.email.clone(),
    }
}

impl Core {
    /// Signs a user in to a registration channel. `Ok(Err(_))` is a refusal
    /// to show the user; `Err(_)` a server failure.
    pub async fn sign_in(
        &self,
        tenant: &Tenant,
        channel: Channel,
        creds: Credentials<'_>,
    ) -> CoreResult<Result<SignedIn, Refusal>> {
        if let Some(lock) = self.lockout(tenant, creds.email, creds.addr).await? {
            return Ok(Err(Refusal::Locked {
                minutes: lock.minutes,
            }));
        }
        let user = match normalize_email(creds.email) {
            Ok(email) => self.store.user_by_email(tenant.id, &email).await?,
            Err(_) => None,
        };
        let settings = self.store.settings(tenant.id).await?;
        let mut via_pin = false;
        if channel == Channel::Web
            && looks_like_pin(creds.secret)
            && let Some(u) = user.as_ref().filter(|u| u.enabled)
        {
            match self.redeem_pin(tenant, u, creds.secret).await? {
                Spend::Spent(()) => via_pin = true,
                Spend::Expired(()) => return Ok(Err(Refusal::PinExpired)),
                Spend::Used(()) => return Ok(Err(Refusal::PinUsed)),
                Spend::Unknown => {}
            }
        }
        if !via_pin {
            if channel == Channel::Web && settings.pin_required && !looks_like_pin(creds.secret) {
                return Ok(Err(Refusal::PinRequired));
            }
            let check = match &user {
                Some(u) => self.verify_user_password(tenant, u, creds.secret).await?,
                None => {
                    verify_password(dummy_hash(self), creds.secret);
                    PasswordCheck::Invalid
                }
            };
            match check {
                PasswordCheck::Valid if !(channel == Channel::Web && settings.pin_required) => {}
                PasswordCheck::DirectoryUnavailable => {
                    return Ok(Err(Refusal::DirectoryUnavailable));
                }
                _ => {
                    self.record_failure(
                        tenant,
                        creds.email,
                        creds.addr,
                        user.as_ref(),
                        channel.as_str(),
                    )
                    .await?;
                    return Ok(Err(Refusal::Invalid));
                }
            }
        }
        let Some(user) = user else {
            return Ok(Err(Refusal::Invalid));
        };
        let must_set_password =
            user.source == UserSource::Local && (!user.has_password() || user.temporary_password);
        let session = match channel {
            Channel::Web => {
                Some(self.new_session(tenant, &user, SessionKind::Registration, must_set_password))
            }
            Channel::Portal => {
                Some(self.new_session(tenant, &user, SessionKind::Portal, must_set_password))
            }
            Channel::App => None,
        };
        self.record_sign_in(
            tenant,
            &user,
            channel,
            via_pin,
            creds.email,
            session.as_ref(),
        )
        .await?;
        Ok(Ok(SignedIn {
            user,
            via_pin,
            must_set_password,
            session,
        }))
    }

    /// Spends the user's PIN if it is theirs, unused and unexpired.
    async fn redeem_pin(&self, tenant: &Tenant, user: &User, pin: &str) -> CoreResult<Spend<()>> {
        let now = self.now();
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            &user_actor(tenant.id, user),
            AuditAction::PinRedeemed,
            ("user", user.id.to_string()),
        )
        .user(user.id);
        let hash = self.pin_hash(tenant.id, user.id, pin);
        Ok(self
            .store
            .redeem_pin(tenant.id, user.id, &hash, now, &audit)
            .await?)
    }

    async fn record_sign_in(
        &self,
        tenant: &Tenant,
        user: &User,
        channel: Channel,
        via_pin: bool,
        typed_email: &str,
        session: Option<&OpenedSession>,
    ) -> CoreResult<()> {
        let now = self.now();
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            &user_actor(tenant.id, user),
            AuditAction::SignInSucceeded,
            ("user", user.id.to_string()),
        )
        .user(user.id)
        .details(serde_json::json!({ "channel": channel.as_str(), "via_pin": via_pin }));
        self.store
            .record_sign_in(
                tenant.id,
                user.id,
                &crate::throttle::user_key(typed_email),
                session.map(|s| &s.session),
                now,
                &audit,
            )
            .await?;
        Ok(())
    }

    /// The registration stages a user has reached.
    pub async fn progress(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        user: UserId,
    ) -> CoreResult<Progress> {
        actor.require_tenant(tenant.id)?;
        Ok(self
            .store
            .progress(tenant.id, user)
            .await?
            .unwrap_or_default())
    }

    /// Spends a QR token for the client app.
    pub(crate) async fn spend_qr_token(
        &self,
        tenant: &Tenant,
        secret: &str,
    ) -> CoreResult<Result<RegToken, Refusal>> {
        let spent = self
            .store
            .redeem_reg_token(
                tenant.id,
                &crate::secrets::sha256_hex(secret),
                crate::regtokens::TokenPurpose::QrRegistration,
                self.now(),
            )
            .await?;
        Ok(match spent {
            Spend::Spent(t) => Ok(t),
            Spend::Expired(_) => Err(Refusal::QrExpired),
            Spend::Used(_) => Err(Refusal::QrUsed),
            Spend::Unknown => Err(Refusal::Invalid),
        })
    }
}

impl Core {
    /// The tenant a public registration page or the client app names by slug.
    pub async fn public_tenant(&self, slug: &str) -> CoreResult<Tenant> {
        self.store
            .tenant_by_slug(slug)
            .await?
            .ok_or(crate::error::CoreError::NotFound("organisation"))
    }

    /// The tenant's profile validity in minutes, for the pages that promise it.
    pub async fn profile_minutes(&self, tenant: &Tenant) -> CoreResult<i64> {
        Ok(self.store.settings(tenant.id).await?.profile_validity_secs / 60)
    }
}

impl Core {
    /// Whether the tenant allows QR registration.
    pub async fn qr_enabled(&self, tenant: &Tenant) -> CoreResult<bool> {
        Ok(self.store.settings(tenant.id).await?.qr_registration)
    }
}
