//! Administrators, API tokens and the principal a request acts as.
//!
//! A token is `mdm_<43 base64url characters>` (256 random bits); only its
//! SHA-256 is stored. A token is scoped to one tenant, or is an operator token
//! that may create tenants and act in every tenant.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::CoreError;
use crate::error::CoreResult;
use crate::ids::{AdminId, TenantId, TokenId, UserId};
use crate::secrets::sha256_hex;
use crate::tenants::validate_name;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The text every token starts with, so leaked tokens are easy to scan for.
pub const TOKEN_PREFIX: &str = "mdm_";

/// What a token or an administrator may act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", content = "tenant_id", rename_all = "lowercase")]
pub enum Scope {
    /// Every tenant, and creating tenants.
    Operator,
    /// One tenant only.
    Tenant(TenantId),
}

impl Scope {
    /// The tenant column value: `None` for operator scope.
    pub fn tenant(self) -> Option<TenantId> {
        match self {
            Scope::Operator => None,
            Scope::Tenant(t) => Some(t),
        }
    }
}

/// An API token as stored (without its secret).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiToken {
    pub id: TokenId,
    pub scope: Scope,
    pub name: String,
    /// SHA-256 (hex) of the token; never serialised.
    #[serde(skip)]
    pub token_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl ApiToken {
    /// Whether the token may be used at `now`.
    pub fn is_usable(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A freshly created token: the only time the secret is visible.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    pub token: ApiToken,
    /// The secret to put in `Authorization: Bearer …`. Shown once.
    pub secret: String,
}

/// What a caller supplies to create a token.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    pub name: String,
    /// Lifetime in days; absent means no expiry.
    pub expires_in_days: Option<u32>,
}

/// An administrator account (portal sign-in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Admin {
    pub id: AdminId,
    pub scope: Scope,
    pub email: String,
    #[serde(skip)]
    pub password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// Who is acting. Every use case takes one; the audit trail records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// A request authenticated by an API token.
    Token {
        id: TokenId,
        scope: Scope,
        name: String,
    },
    /// An administrator signed in to the portal.
    Admin {
        id: AdminId,
        scope: Scope,
        email: String,
    },
    /// An end user signed in to a registration flow (`/go`, the
    /// self-service portal, the client app); acts only in its own tenant and
    /// is only ever handed to registration use cases.
    User {
        id: UserId,
        tenant: TenantId,
        email: String,
    },
    /// The command line on the server host (full access).
    Cli,
    /// The server itself (background work).
    System,
    /// An unauthenticated visitor (a device or browser on a public URL).
    Public,
}

impl Actor {
    /// The scope this actor acts with.
    pub fn scope(&self) -> Scope {
        match self {
            Actor::Token { scope, .. } | Actor::Admin { scope, .. } => *scope,
            Actor::User { tenant, .. } => Scope::Tenant(*tenant),
            Actor::Cli | Actor::System => Scope::Operator,
            // Public callers reach only tenant-checked public routes; they hold no scope of
            // their own, so give them one that matches no tenant.
            Actor::Public => Scope::Tenant(TenantId(uuid::Uuid::nil())),
        }
    }

    /// Whether the actor may act in `tenant`.
    pub fn can_access(&self, tenant: TenantId) -> bool {
        match self.scope() {
            Scope::Operator => true,
            Scope::Tenant(t) => t == tenant,
        }
    }

    /// Fails with `NotFound` (never `Forbidden`, so tenants cannot be probed)
    /// unless the actor may act in `tenant`.
    pub fn require_tenant(&self, tenant: TenantId) -> Result<(), CoreError> {
        if self.can_access(tenant) {
            Ok(())
        } else {
            Err(CoreError::NotFound("tenant"))
        }
    }

    /// Fails unless the actor has operator scope.
    pub fn require_operator(&self) -> Result<(), CoreError> {
        match self.scope() {
            Scope::Operator => Ok(()),
            Scope::Tenant(_) => Err(CoreError::Forbidden("this needs an operator token")),
        }
    }

    /// Stable text form for the audit trail: `token:<id>`, `admin:<id>`, `cli`, `system`.
    pub fn key(&self) -> String {
        match self {
            Actor::Token { id, .. } => format!("token:{id}"),
            Actor::Admin { id, .. } => format!("admin:{id}"),
            Actor::User { id, .. } => format!("user:{id}"),
            Actor::Cli => "cli".into(),
            Actor::System => "system".into(),
            Actor::Public => "public".into(),
        }
    }

    /// Human label for the audit trail.
    pub fn label(&self) -> String {
        match self {
            Actor::Token { name, .. } => format!("API token '{name}'"),
            Actor::Admin { email, .. } | Actor::User { email, .. } => email.clone(),
            Actor::Cli => "command line".into(),
            Actor::System => "server".into(),
            Actor::Public => "unauthenticated visitor".into(),
        }
    }
}

impl Core {
    /// Resolves a bearer secret to the actor it stands for.
    pub async fn authenticate_token(&self, secret: &str) -> CoreResult<Actor> {
        if !secret.starts_with(TOKEN_PREFIX) || secret.len() > 128 {
            return Err(CoreError::Unauthenticated);
        }
        let token = self
            .store
            .token_by_hash(&sha256_hex(secret))
            .await?
            .ok_or(CoreError::Unauthenticated)?;
        if !token.is_usable(self.now()) {
            return Err(CoreError::Unauthenticated);
        }
        Ok(Actor::Token {
            id: token.id,
            scope: token.scope,
            name: token.name,
        })
    }

    /// Creates a token in `scope`. Tenant actors may create tokens for their
    /// own tenant only; operator tokens need an operator.
    pub async fn create_token(
        &self,
        actor: &Actor,
        scope: Scope,
        new: NewToken,
    ) -> CoreResult<IssuedToken> {
        match scope {
            Scope::Operator => actor.require_operator()?,
            Scope::Tenant(t) => actor.require_tenant(t)?,
        }
        validate_name("name", &new.name)?;
        let now = self.now();
        let secret = format!("{TOKEN_PREFIX}{}", self.token(32));
        let expires_at = new
            .expires_in_days
            .map(|d| now + time::Duration::days(i64::from(d)));
        if new.expires_in_days == Some(0) {
            return Err(CoreError::invalid("expires_in_days", "must be at least 1"));
        }
        let token = ApiToken {
            id: TokenId::new(),
            scope,
            name: new.name.trim().to_string(),
            token_hash: sha256_hex(&secret),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        let audit = AuditEntry::new(
            scope.tenant(),
            now,
            actor,
            AuditAction::TokenCreated,
            ("token", token.id.to_string()),
        )
        .details(serde_json::json!({ "name": token.name, "operator": scope == Scope::Operator }));
        self.store.create_token(&token, &audit).await?;
        Ok(IssuedToken { token, secret })
    }

    /// Creates an administrator who signs in to the portal with `email` and
    /// `password` (argon2id), scoped to one tenant or, for operators, to all.
    pub async fn create_admin(
        &self,
        actor: &Actor,
        scope: Scope,
        email: &str,
        password: &str,
    ) -> CoreResult<Admin> {
        match scope {
            Scope::Operator => actor.require_operator()?,
            Scope::Tenant(t) => actor.require_tenant(t)?,
        }
        let email = crate::users::normalize_email(email)?;
        crate::users::validate_password("password", password)?;
        let now = self.now();
        let admin = Admin {
            id: AdminId::new(),
            scope,
            email,
            password_hash: self.hash_password(password)?,
            created_at: now,
        };
        let audit = AuditEntry::new(
            scope.tenant(),
            now,
            actor,
            AuditAction::AdminCreated,
            ("admin", admin.id.to_string()),
        )
        .details(serde_json::json!({ "email": admin.email, "operator": scope == Scope::Operator }));
        self.store
            .create_admin(&admin, &audit)
            .await
            .map_err(|e| match e {
                crate::StoreError::Conflict(_) => CoreError::Conflict {
                    code: "admin_email_taken",
                    message: format!(
                        "an administrator with email {} already exists here",
                        admin.email
                    ),
                },
                other => other.into(),
            })?;
        Ok(admin)
    }

    /// Tokens of a scope.
    pub async fn tokens(&self, actor: &Actor, scope: Scope) -> CoreResult<Vec<ApiToken>> {
        match scope {
            Scope::Operator => actor.require_operator()?,
            Scope::Tenant(t) => actor.require_tenant(t)?,
        }
        Ok(self.store.tokens(scope).await?)
    }

    /// Revokes a token of a scope.
    pub async fn revoke_token(&self, actor: &Actor, scope: Scope, id: TokenId) -> CoreResult<()> {
        match scope {
            Scope::Operator => actor.require_operator()?,
            Scope::Tenant(t) => actor.require_tenant(t)?,
        }
        let now = self.now();
        let audit = AuditEntry::new(
            scope.tenant(),
            now,
            actor,
            AuditAction::TokenRevoked,
            ("token", id.to_string()),
        );
        self.store
            .revoke_token(scope, id, now, &audit)
            .await
            .map_err(|e| match e {
                crate::StoreError::NotFound => CoreError::NotFound("token"),
                other => other.into(),
            })
    }
}
