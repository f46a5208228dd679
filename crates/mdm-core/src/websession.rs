//! Browser sessions of the registration pages (`/go`) and the self-service
//! portal: a random id in an HttpOnly, SameSite cookie, stored only as its
//! SHA-256, short-lived, with a per-session CSRF token for every form.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{TenantId, UserId};
use crate::secrets::{ct_eq, sha256_hex};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::{User, UserSource, validate_password};
use time::OffsetDateTime;

/// How long a browser session lasts.
pub const SESSION_LIFETIME: time::Duration = time::Duration::minutes(30);

/// Which pages a session belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    /// The web registration pages behind `…/go`.
    Registration,
    /// The self-service portal.
    Portal,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "go",
            Self::Portal => "portal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "go" => Some(Self::Registration),
            "portal" => Some(Self::Portal),
            _ => None,
        }
    }
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSession {
    /// SHA-256 (hex) of the cookie value.
    pub id_hash: String,
    pub tenant_id: TenantId,
    pub user_id: UserId,
    pub kind: SessionKind,
    /// The token every form of this session must carry.
    pub csrf: String,
    /// The user must choose a password before going on.
    pub must_set_password: bool,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl WebSession {
    /// Whether a submitted form token is this session's (constant time).
    pub fn csrf_ok(&self, token: &str) -> bool {
        ct_eq(&self.csrf, token)
    }
}

/// A new session and the cookie value that names it (shown once).
#[derive(Clone, Debug)]
pub struct OpenedSession {
    pub secret: String,
    pub session: WebSession,
}

impl Core {
    pub(crate) fn new_session(
        &self,
        tenant: &Tenant,
        user: &User,
        kind: SessionKind,
        must_set_password: bool,
    ) -> OpenedSession {
        let now = self.now();
        let secret = self.token(32);
        OpenedSession {
            session: WebSession {
                id_hash: sha256_hex(&secret),
                tenant_id: tenant.id,
                user_id: user.id,
                kind,
                csrf: self.token(24),
                must_set_password,
                created_at: now,
                expires_at: now + SESSION_LIFETIME,
            },
            secret,
        }
    }

    /// The live session named by a cookie value, with its (enabled) user.
    pub async fn web_session(
        &self,
        tenant: &Tenant,
        kind: SessionKind,
        secret: &str,
    ) -> CoreResult<Option<(WebSession, User)>> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let Some(session) = self
            .store
            .web_session(tenant.id, &sha256_hex(secret))
            .await?
        else {
            return Ok(None);
        };
        if session.kind != kind || session.expires_at <= self.now() {
            return Ok(None);
        }
        match self.store.user(tenant.id, session.user_id).await? {
            Some(user) if user.enabled => Ok(Some((session, user))),
            _ => Ok(None),
        }
    }

    /// Ends a session (sign out).
    pub async fn end_web_session(&self, tenant: &Tenant, secret: &str) -> CoreResult<()> {
        Ok(self
            .store
            .delete_web_session(tenant.id, &sha256_hex(secret))
            .await?)
    }

    /// The signed-in user chooses their own password (after a PIN, or to
    /// replace a temporary one). Local users only.
    pub async fn set_own_password(
        &self,
        tenant: &Tenant,
        session: &WebSession,
        user: &User,
        password: &str,
        confirm: &str,
    ) -> CoreResult<()> {
        if user.source != UserSource::Local {
            return Err(CoreError::invalid(
                "password",
                "directory users sign in with their network credentials",
            ));
        }
        validate_password("password", password)?;
        if password != confirm {
            return Err(CoreError::invalid("confirm", "the passwords do not match"));
        }
        let now = self.now();
        let hash = self.hash_password(password)?;
        let actor = Actor::User {
            id: user.id,
            tenant: tenant.id,
            email: user.email.clone(),
        };
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            &actor,
            AuditAction::PasswordSet,
            ("user", user.id.to_string()),
        )
        .user(user.id)
        .details(serde_json::json!({ "temporary": false, "by": "user" }));
        self.store
            .set_own_password(tenant.id, user.id, &hash, &session.id_hash, now, &audit)
            .await?;
        Ok(())
    }
}
