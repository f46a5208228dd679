//! Administrator sign-in for the admin web portal: email and password
//! (argon2id), throttled like end-user sign-in (the keys and limits of
//! [`crate::throttle`], counted in their own table because operators belong
//! to no tenant), and a browser session that ends after [`ADMIN_IDLE`]
//! without a request or [`ADMIN_MAX_LIFETIME`] after sign-in. The cookie
//! value is random and stored only as its SHA-256; every form carries the
//! session's CSRF token.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::CoreResult;
use crate::ids::AdminId;
use crate::secrets::{ct_eq, sha256_hex, verify_password};
use crate::throttle::{ADDR_LIMIT, USER_LIMIT, WINDOW, addr_key, user_key};
use crate::tokens::{Actor, Admin, Scope};
use std::net::IpAddr;
use std::sync::OnceLock;
use time::OffsetDateTime;

/// A session ends this long after its last request.
pub const ADMIN_IDLE: time::Duration = time::Duration::minutes(30);
/// A session ends this long after sign-in, however busy.
pub const ADMIN_MAX_LIFETIME: time::Duration = time::Duration::hours(12);
/// `last_seen_at` is written at most this often per session.
const TOUCH_EVERY: time::Duration = time::Duration::seconds(60);

/// An administrator's browser session as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminSession {
    /// SHA-256 (hex) of the cookie value.
    pub id_hash: String,
    pub admin_id: AdminId,
    /// The token every form of this session carries.
    pub csrf: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
    /// The absolute end ([`ADMIN_MAX_LIFETIME`] after sign-in).
    pub expires_at: OffsetDateTime,
}

impl AdminSession {
    /// Whether a submitted form token is this session's (constant time).
    pub fn csrf_ok(&self, token: &str) -> bool {
        ct_eq(&self.csrf, token)
    }

    /// Whether the session is still usable at `now`.
    pub fn live_at(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at && now < self.last_seen_at + ADMIN_IDLE
    }
}

/// A signed-in administrator: the session and the account.
#[derive(Clone, Debug)]
pub struct SignedInAdmin {
    pub session: AdminSession,
    pub admin: Admin,
}

impl SignedInAdmin {
    /// The actor every use case called from the portal acts as.
    pub fn actor(&self) -> Actor {
        Actor::Admin {
            id: self.admin.id,
            scope: self.admin.scope,
            email: self.admin.email.clone(),
        }
    }
}

/// A new session and the cookie value that names it (shown once).
#[derive(Clone, Debug)]
pub struct OpenedAdminSession {
    pub secret: String,
    pub signed_in: SignedInAdmin,
}

/// Why a sign-in was refused. The same answer for an unknown email and a
/// wrong password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AdminRefusal {
    Invalid,
    LockedOut { minutes: i64 },
}

/// An argon2id hash no password matches, verified for unknown emails so
/// the answer takes as long as for known ones.
fn dummy_hash(core: &Core) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        crate::secrets::hash_password(core.entropy.as_ref(), "no administrator has this")
            .unwrap_or_default()
    })
}

impl Core {
    /// Signs an administrator in with email and password. When the same
    /// email is an administrator in several scopes, the first whose password
    /// matches wins (operators first).
    pub async fn admin_sign_in(
        &self,
        email: &str,
        password: &str,
        addr: Option<IpAddr>,
    ) -> CoreResult<Result<OpenedAdminSession, AdminRefusal>> {
        let now = self.now();
        let since = now - WINDOW;
        let ukey = user_key(email);
        let akey = addr.map(addr_key);
        let user_failures = self.store.admin_failures(&ukey, since).await?;
        let addr_failures = match &akey {
            Some(k) => self.store.admin_failures(k, since).await?,
            None => 0,
        };
        if user_failures >= USER_LIMIT || addr_failures >= ADDR_LIMIT {
            return Ok(Err(AdminRefusal::LockedOut {
                minutes: WINDOW.whole_minutes(),
            }));
        }
        let normalized = crate::users::normalize_email(email).ok();
        let candidates = match &normalized {
            Some(e) if !password.is_empty() && password.len() <= 1024 => {
                self.store.admins_by_email(e).await?
            }
            _ => Vec::new(),
        };
        let matched = candidates
            .iter()
            .find(|a| verify_password(&a.password_hash, password))
            .cloned();
        if candidates.is_empty() {
            verify_password(dummy_hash(self), password);
        }
        let Some(admin) = matched else {
            let mut audit = Vec::new();
            let lock = |scope: &str, failures: i64| {
                AuditEntry::new(
                    None,
                    now,
                    &Actor::Public,
                    AuditAction::AdminLockedOut,
                    ("admin_sign_in", email.trim().to_lowercase()),
                )
                .details(serde_json::json!({
                    "scope": scope,
                    "address": addr.map(|a| a.to_string()),
                    "failures": failures,
                    "minutes": WINDOW.whole_minutes(),
                }))
            };
            if user_failures + 1 == USER_LIMIT {
                audit.push(lock("user", USER_LIMIT));
            }
            if akey.is_some() && addr_failures + 1 == ADDR_LIMIT {
                audit.push(lock("address", ADDR_LIMIT));
            }
            let keys: Vec<String> = std::iter::once(ukey).chain(akey).collect();
            self.store.record_admin_failure(&keys, now, &audit).await?;
            return Ok(Err(AdminRefusal::Invalid));
        };
        let secret = self.token(32);
        let session = AdminSession {
            id_hash: sha256_hex(&secret),
            admin_id: admin.id,
            csrf: self.token(24),
            created_at: now,
            last_seen_at: now,
            expires_at: now + ADMIN_MAX_LIFETIME,
        };
        let signed_in = SignedInAdmin { session, admin };
        let audit = AuditEntry::new(
            signed_in.admin.scope.tenant(),
            now,
            &signed_in.actor(),
            AuditAction::AdminSignedIn,
            ("admin", signed_in.admin.id.to_string()),
        )
        .details(serde_json::json!({
            "address": addr.map(|a| a.to_string()),
            "operator": signed_in.admin.scope == Scope::Operator,
        }));
        self.store
            .create_admin_session(&signed_in.session, &ukey, &audit)
            .await?;
        Ok(Ok(OpenedAdminSession { secret, signed_in }))
    }

    /// The live session a cookie value names, with its administrator. A
    /// session past its idle or absolute end is removed and gives `None`.
    pub async fn admin_session(&self, secret: &str) -> CoreResult<Option<SignedInAdmin>> {
        if secret.is_empty() || secret.len() > 128 {
            return Ok(None);
        }
        let hash = sha256_hex(secret);
        let Some(session) = self.store.admin_session(&hash).await? else {
            return Ok(None);
        };
        let now = self.now();
        if !session.live_at(now) {
            self.store.delete_admin_session(&hash, None).await?;
            return Ok(None);
        }
        let Some(admin) = self.store.admin(session.admin_id).await? else {
            return Ok(None);
        };
        let mut session = session;
        if now - session.last_seen_at >= TOUCH_EVERY {
            self.store.touch_admin_session(&hash, now).await?;
            session.last_seen_at = now;
        }
        Ok(Some(SignedInAdmin { session, admin }))
    }

    /// Signs out: the session is gone at once, on every replica.
    pub async fn admin_sign_out(&self, signed_in: &SignedInAdmin) -> CoreResult<()> {
        let audit = AuditEntry::new(
            signed_in.admin.scope.tenant(),
            self.now(),
            &signed_in.actor(),
            AuditAction::AdminSignedOut,
            ("admin", signed_in.admin.id.to_string()),
        );
        Ok(self
            .store
            .delete_admin_session(&signed_in.session.id_hash, Some(&audit))
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_and_absolute_ends() {
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let s = AdminSession {
            id_hash: String::new(),
            admin_id: AdminId::new(),
            csrf: "abc".into(),
            created_at: t0,
            last_seen_at: t0,
            expires_at: t0 + ADMIN_MAX_LIFETIME,
        };
        assert!(s.live_at(t0 + ADMIN_IDLE - time::Duration::seconds(1)));
        assert!(!s.live_at(t0 + ADMIN_IDLE));
        let busy = AdminSession {
            last_seen_at: t0 + ADMIN_MAX_LIFETIME - time::Duration::minutes(1),
            ..s.clone()
        };
        assert!(!busy.live_at(t0 + ADMIN_MAX_LIFETIME));
        assert!(s.csrf_ok("abc") && !s.csrf_ok("abd") && !s.csrf_ok(""));
    }
}
