//! Checking an end user's credentials, wherever they live: an argon2id hash
//! stored here for local users, the directory for LDAP users (R2). Every
//! place a user signs in (`/go`, the self-service portal, the client-app
//! API) goes through [`Core::verify_user_password`]; rate limits and
//! lockout sit in front of it, in the sign-in flows.

use crate::core::Core;
use crate::error::CoreResult;
use crate::secrets::verify_password;
use crate::tenants::Tenant;
use crate::users::{User, UserSource};

/// What checking a password found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    /// The password is right and the user may sign in.
    Valid,
    /// Wrong password, no password set, or a disabled user.
    Invalid,
    /// The user's credentials live in a directory that could not be asked.
    DirectoryUnavailable,
}

impl Core {
    /// Checks `password` for `user` of `tenant`. Local users: against the
    /// stored argon2id hash. LDAP users: the tenant's directory is searched
    /// for the user's entry (by stable id) with the service account, then
    /// bound to as that DN with `password`; the password is never stored
    /// here. An empty password is never sent (an unauthenticated bind).
    pub async fn verify_user_password(
        &self,
        tenant: &Tenant,
        user: &User,
        password: &str,
    ) -> CoreResult<PasswordCheck> {
        if !user.enabled || user.tenant_id != tenant.id || password.is_empty() {
            return Ok(PasswordCheck::Invalid);
        }
        match user.source {
            UserSource::Local => Ok(match &user.password_hash {
                Some(phc) if verify_password(phc, password) => PasswordCheck::Valid,
                _ => PasswordCheck::Invalid,
            }),
            // A search for the user's DN, then a bind as it (R2).
            UserSource::Ldap => self.verify_directory_password(tenant, user, password).await,
        }
    }
}
