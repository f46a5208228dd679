//! Rate limits on PIN and password attempts (abuse): failures are stored
//! per user (keyed by the hash of the email typed, so unknown emails are
//! limited exactly like known ones and the answer reveals nothing) and per
//! client address, in the database, so the limits hold across replicas.
//! Reaching a limit locks sign-in for that key for [`WINDOW`] and writes an
//! audit entry. A successful sign-in clears the user's failures.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::CoreResult;
use crate::secrets::sha256_hex;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::User;
use std::net::IpAddr;

/// Failed attempts for one email within [`WINDOW`] before it is locked.
pub const USER_LIMIT: i64 = 5;
/// Failed attempts from one client address within [`WINDOW`] before it is locked.
pub const ADDR_LIMIT: i64 = 30;
/// The window failures are counted in, and how long a lockout lasts.
pub const WINDOW: time::Duration = time::Duration::minutes(15);

/// The throttle key of an email address (normalised or as typed).
pub fn user_key(email: &str) -> String {
    format!("email:{}", sha256_hex(&email.trim().to_lowercase()))
}

/// The throttle key of a client address; IPv6 clients are grouped by /64,
/// since one host usually owns the whole prefix.
pub fn addr_key(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => format!("addr:{v4}"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => format!("addr:{v4}"),
            None => {
                let s = v6.segments();
                format!("addr:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// Sign-in is locked for this email or address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lockout {
    /// Minutes until attempts are counted afresh.
    pub minutes: i64,
}

impl Core {
    /// Whether sign-in is locked for `email` or `addr` right now.
    pub(crate) async fn lockout(
        &self,
        tenant: &Tenant,
        email: &str,
        addr: Option<IpAddr>,
    ) -> CoreResult<Option<Lockout>> {
        let since = self.now() - WINDOW;
        let locked = Some(Lockout {
            minutes: WINDOW.whole_minutes(),
        });
        if self
            .store
            .failed_attempts(tenant.id, &user_key(email), since)
            .await?
            >= USER_LIMIT
        {
            return Ok(locked);
        }
        if let Some(a) = addr
            && self
                .store
                .failed_attempts(tenant.id, &addr_key(a), since)
                .await?
                >= ADDR_LIMIT
        {
            return Ok(locked);
        }
        Ok(None)
    }

    /// Records a failed attempt; the one that reaches a limit also writes a
    /// lockout audit entry.
    pub(crate) async fn record_failure(
        &self,
        tenant: &Tenant,
        email: &str,
        addr: Option<IpAddr>,
        user: Option<&User>,
        channel: &str,
    ) -> CoreResult<()> {
        let now = self.now();
        let since = now - WINDOW;
        let mut keys = vec![user_key(email)];
        let mut audit = Vec::new();
        let lock_entry = |scope: &str| {
            let e = AuditEntry::new(
                Some(tenant.id),
                now,
                &Actor::Public,
                AuditAction::SignInLockedOut,
                ("sign_in", email.trim().to_lowercase()),
            )
            .details(serde_json::json!({
                "scope": scope,
                "channel": channel,
                "address": addr.map(|a| a.to_string()),
                "failures": if scope == "user" { USER_LIMIT } else { ADDR_LIMIT },
                "minutes": WINDOW.whole_minutes(),
            }));
            match user {
                Some(u) => e.user(u.id),
                None => e,
            }
        };
        if self
            .store
            .failed_attempts(tenant.id, &keys[0], since)
            .await?
            + 1
            == USER_LIMIT
        {
            audit.push(lock_entry("user"));
        }
        if let Some(a) = addr {
            let key = addr_key(a);
            if self.store.failed_attempts(tenant.id, &key, since).await? + 1 == ADDR_LIMIT {
                audit.push(lock_entry("address"));
            }
            keys.push(key);
        }
        self.store
            .record_failed_attempt(tenant.id, &keys, now, &audit)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(user_key(" A@Example.com"), user_key("a@example.com"));
        assert_eq!(
            addr_key("10.0.0.1".parse().unwrap_or(IpAddr::from([0; 4]))),
            "addr:10.0.0.1"
        );
        let a: IpAddr = "2001:db8:1:2:3:4:5:6"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        let b: IpAddr = "2001:db8:1:2:ffff::1"
            .parse()
            .unwrap_or(IpAddr::from([0; 4]));
        assert_eq!(addr_key(a), addr_key(b));
        assert_eq!(addr_key(a), "addr:2001:db8:1:2::/64");
    }
}
