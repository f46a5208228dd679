//! End users (R2): the people devices are registered for. Email is the
//! username; LDAP users carry the directory's stable id and login name.

use crate::StoreError;
use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::CoreError;
use crate::error::CoreResult;
use crate::ids::{TenantId, UserId};
use crate::tenants::Tenant;
use crate::tenants::validate_name;
use crate::tokens::Actor;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use time::OffsetDateTime;

/// Where a user comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UserSource {
    /// Added by an administrator; may have a password stored here.
    Local,
    /// Imported from a directory; authenticates with network credentials.
    Ldap,
}

impl UserSource {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Ldap => "ldap",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "local" => Some(Self::Local),
            "ldap" => Some(Self::Ldap),
            _ => None,
        }
    }
}

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: UserId,
    pub tenant_id: TenantId,
    /// Lower-cased email address; the username.
    pub email: String,
    pub display_name: String,
    /// argon2id PHC string; never serialised.
    #[serde(skip)]
    pub password_hash: Option<String>,
    /// The password was set by an administrator and must be changed at first use.
    pub temporary_password: bool,
    pub source: UserSource,
    /// The directory's stable id (entryUUID, objectGUID) for LDAP users.
    pub external_id: Option<String>,
    /// The directory login name (uid, sAMAccountName) for LDAP users.
    pub login_name: Option<String>,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl User {
    /// Whether the user has a password stored here.
    pub fn has_password(&self) -> bool {
        self.password_hash.is_some()
    }
}

/// What an administrator supplies to add a local user.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    /// Defaults to the part of the email before `@`.
    pub display_name: Option<String>,
    /// An initial (temporary) password; the user must change it.
    pub password: Option<String>,
    #[serde(default = "default_true")]
    pub enabled: bool,
}

fn default_true() -> bool {
    true
}

/// A partial update of a user; absent fields keep their value.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub email: Option<String>,
    pub display_name: Option<String>,
    /// Sets a new temporary password.
    pub password: Option<String>,
    pub enabled: Option<bool>,
}

/// Filters and paging for listing users.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Substring of email or display name (case-insensitive).
    pub q: Option<String>,
    pub source: Option<UserSource>,
    pub enabled: Option<bool>,
    /// Users with (`true`) or without (`false`) a device record.
    pub has_device: Option<bool>,
    /// Users with (`true`) or without (`false`) an invitation.
    pub invited: Option<bool>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Return users whose email sorts after this one (the `next` of the previous page).
    pub after: Option<String>,
}

/// One page of a listing.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Cursor for the next page, absent on the last page.
    pub next: Option<String>,
}

/// Normalises and checks an email address: trimmed, lower-cased, one `@`,
/// a local part and a dotted domain, no spaces or control characters.
pub fn normalize_email(raw: &str) -> Result<String, CoreError> {
    let email = raw.trim().to_lowercase();
    let bad = || {
        CoreError::invalid(
            "email",
            format!("'{}' is not a valid email address", raw.trim()),
        )
    };
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = email.split_once('@').ok_or_else(bad)?;
    let domain_ok = !domain.contains('@')
        && domain.contains('.')
        && domain
            .split('.')
            .all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-'));
    if local.is_empty()
        || local.len() > 64
        || !domain_ok
        || email.contains(['<', '>', ',', ';', '"'])
    {
        return Err(bad());
    }
    Ok(email)
}

/// Checks a password an administrator or user chooses.
pub fn validate_password(field: &str, password: &str) -> Result<(), CoreError> {
    let n = password.chars().count();
    if n < 8 {
        return Err(CoreError::invalid(field, "at least 8 characters"));
    }
    if n > 256 {
        return Err(CoreError::invalid(field, "at most 256 characters"));
    }
    Ok(())
}

/// Checks the fields of a new user and returns its normalised email and name.
pub fn validate_new_user(new: &NewUser) -> Result<(String, String), CoreError> {
    let email = normalize_email(&new.email)?;
    let name = match &new.display_name {
        Some(n) => n.trim().to_string(),
        None => email.split('@').next().unwrap_or_default().to_string(),
    };
    validate_name("display_name", &name)?;
    if let Some(p) = &new.password {
        validate_password("password", p)?;
    }
    Ok((email, name))
}

/// One row of a CSV import that failed, with its 1-based line number.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ImportRowError {
    pub line: u64,
    pub field: String,
    pub message: String,
}

/// Parses a CSV of users. The header names the columns: `email` (required),
/// `display_name` (or `name`), `password`, `enabled`; unknown columns are an error.
/// Returns every row or every row's error, never a mix.
pub fn parse_users_csv(data: &[u8]) -> Result<Vec<NewUser>, Vec<ImportRowError>> {
    let row_err = |line: u64, field: &str, message: String| ImportRowError {
        line,
        field: field.into(),
        message,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(false)
        .from_reader(data);
    let headers = match rdr.headers() {
        Ok(h) => h.iter().map(|s| s.to_ascii_lowercase()).collect::<Vec<_>>(),
        Err(e) => return Err(vec![row_err(1, "header", e.to_string())]),
    };
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let (Some(email_col), name_col, pw_col, en_col) = (
        col(&["email"]),
        col(&["display_name", "name"]),
        col(&["password"]),
        col(&["enabled"]),
    ) else {
        return Err(vec![row_err(
            1,
            "header",
            "a column named 'email' is required".into(),
        )]);
    };
    let known = ["email", "display_name", "name", "password", "enabled"];
    if let Some(unknown) = headers.iter().find(|h| !known.contains(&h.as_str())) {
        return Err(vec![row_err(
            1,
            "header",
            format!("unknown column '{unknown}'"),
        )]);
    }
    let (mut users, mut errors) = (Vec::new(), Vec::new());
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                errors.push(row_err(line, "row", e.to_string()));
                continue;
            }
        };
        let get = |c: Option<usize>| {
            c.and_then(|c| rec.get(c))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let enabled = match get(en_col)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("true" | "yes" | "1") => true,
            Some("false" | "no" | "0") => false,
            Some(other) => {
                errors.push(row_err(
                    line,
                    "enabled",
                    format!("'{other}' is not true/false"),
                ));
                continue;
            }
        };
        let new = NewUser {
            email: get(Some(email_col)).unwrap_or_default(),
            display_name: get(name_col),
            password: get(pw_col),
            enabled,
        };
        match validate_new_user(&new) {
            Ok(_) => users.push(new),
            Err(CoreError::Invalid { field, message }) => {
                errors.push(row_err(line, &field, message))
            }
            Err(e) => errors.push(row_err(line, "row", e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        Err(errors)
    }
}

/// Most users one bulk call or CSV import may add.
pub const MAX_BATCH: usize = 10_000;

/// The outcome of a CSV import.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub users: Vec<User>,
}

impl Core {
    /// Adds one local user.
    pub async fn create_user(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        new: NewUser,
    ) -> CoreResult<User> {
        let mut users = self.create_users(actor, tenant, vec![new]).await?;
        users
            .pop()
            .ok_or(CoreError::Store("no user created".into()))
    }

    /// Adds local users, all or none. Emails must be new to the tenant and
    /// distinct within the batch.
    pub async fn create_users(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        batch: Vec<NewUser>,
    ) -> CoreResult<Vec<User>> {
        actor.require_tenant(tenant.id)?;
        if batch.is_empty() {
            return Err(CoreError::invalid("users", "at least one user is required"));
        }
        if batch.len() > MAX_BATCH {
            return Err(CoreError::invalid(
                "users",
                format!("at most {MAX_BATCH} users per request"),
            ));
        }
        let now = self.now();
        let mut seen = HashSet::new();
        let mut users = Vec::with_capacity(batch.len());
        for (i, new) in batch.iter().enumerate() {
            let field = |f: &str| {
                if batch.len() == 1 {
                    f.to_string()
                } else {
                    format!("users[{i}].{f}")
                }
            };
            let (email, name) = validate_new_user(new).map_err(|e| match e {
                CoreError::Invalid { field: f, message } => CoreError::Invalid {
                    field: field(&f),
                    message,
                },
                other => other,
            })?;
            if !seen.insert(email.clone()) {
                return Err(CoreError::invalid(
                    field("email"),
                    format!("{email} appears twice in the request"),
                ));
            }
            let password_hash = new
                .password
                .as_deref()
                .map(|p| self.hash_password(p))
                .transpose()?;
            users.push(User {
                id: UserId::new(),
                tenant_id: tenant.id,
                email,
                display_name: name,
                temporary_password: password_hash.is_some(),
                password_hash,
                source: UserSource::Local,
                external_id: None,
                login_name: None,
                enabled: new.enabled,
                created_at: now,
                updated_at: now,
            });
        }
        let audit: Vec<AuditEntry> = users
            .iter()
            .map(|u| {
                AuditEntry::new(Some(tenant.id), now, actor, AuditAction::UserCreated, ("user", u.id.to_string()))
                    .user(u.id)
                    .details(serde_json::json!({ "email": u.email, "source": "local", "with_password": u.has_password() }))
            })
            .collect();
        match self.store.create_users(&users, &audit).await {
            Ok(()) => Ok(users),
            Err(StoreError::Conflict(_)) => Err(self.duplicate_email_error(tenant, &users).await),
            Err(e) => Err(e.into()),
        }
    }

    /// Names the first emails of `users` that already exist in the tenant.
    async fn duplicate_email_error(&self, tenant: &Tenant, users: &[User]) -> CoreError {
        let mut taken = Vec::new();
        for u in users {
            if let Ok(Some(_)) = self.store.user_by_email(tenant.id, &u.email).await {
                taken.push(u.email.clone());
                if taken.len() == 10 {
                    break;
                }
            }
        }
        CoreError::Conflict {
            code: "user_email_taken",
            message: format!(
                "a user with this email already exists: {}",
                taken.join(", ")
            ),
        }
    }

    /// Imports local users from CSV (see [`parse_users_csv`]), all or none.
    pub async fn import_users_csv(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        csv: &[u8],
    ) -> CoreResult<Result<ImportReport, Vec<ImportRowError>>> {
        actor.require_tenant(tenant.id)?;
        let batch = match parse_users_csv(csv) {
            Ok(b) => b,
            Err(errors) => return Ok(Err(errors)),
        };
        let users = self.create_users(actor, tenant, batch).await?;
        Ok(Ok(ImportReport {
            created: users.len(),
            users,
        }))
    }

    /// One user of the tenant.
    pub async fn user(&self, actor: &Actor, tenant: &Tenant, id: UserId) -> CoreResult<User> {
        actor.require_tenant(tenant.id)?;
        self.store
            .user(tenant.id, id)
            .await?
            .ok_or(CoreError::NotFound("user"))
    }

    /// Users of the tenant, filtered and paged.
    pub async fn users(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        query: &UserQuery,
    ) -> CoreResult<Page<User>> {
        actor.require_tenant(tenant.id)?;
        if query.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        Ok(self.store.users(tenant.id, query).await?)
    }

    /// Changes a user's email, name, password or enabled flag.
    pub async fn update_user(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: UserId,
        patch: UserPatch,
    ) -> CoreResult<User> {
        let old = self.user(actor, tenant, id).await?;
        let mut user = old.clone();
        let mut changed = Vec::new();
        if let Some(email) = &patch.email {
            user.email = normalize_email(email)?;
            changed.push("email");
        }
        if let Some(name) = &patch.display_name {
            validate_name("display_name", name)?;
            user.display_name = name.trim().to_string();
            changed.push("display_name");
        }
        if let Some(password) = &patch.password {
            if user.source == UserSource::Ldap {
                return Err(CoreError::invalid(
                    "password",
                    "directory users sign in with their network credentials",
                ));
            }
            validate_password("password", password)?;
            user.password_hash = Some(self.hash_password(password)?);
            user.temporary_password = true;
            changed.push("password");
        }
        if let Some(enabled) = patch.enabled {
            user.enabled = enabled;
            changed.push("enabled");
        }
        if changed.is_empty() {
            return Ok(old);
        }
        user.updated_at = self.now();
        let audit = AuditEntry::new(
            Some(tenant.id),
            user.updated_at,
            actor,
            AuditAction::UserUpdated,
            ("user", id.to_string()),
        )
        .user(id)
        .details(serde_json::json!({
            "changed": changed,
            "email": { "old": old.email, "new": user.email },
            "enabled": { "old": old.enabled, "new": user.enabled },
        }));
        self.store
            .update_user(&user, &audit)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => CoreError::Conflict {
                    code: "user_email_taken",
                    message: format!("a user with email {} already exists", user.email),
                },
                StoreError::NotFound => CoreError::NotFound("user"),
                other => other.into(),
            })?;
        Ok(user)
    }

    /// Removes a user.
    pub async fn delete_user(&self, actor: &Actor, tenant: &Tenant, id: UserId) -> CoreResult<()> {
        let user = self.user(actor, tenant, id).await?;
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::UserDeleted,
            ("user", id.to_string()),
        )
        .user(id)
        .details(serde_json::json!({ "email": user.email }));
        self.store
            .delete_user(tenant.id, id, &audit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound => CoreError::NotFound("user"),
                other => other.into(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Alice@Example.COM ").ok().as_deref(),
            Some("alice@example.com")
        );
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "a@b",
            "a b@example.com",
            "a@@example.com",
            "a@-x.com",
            "<a@example.com>",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn csv_all_or_errors() {
        let ok =
            parse_users_csv(b"email,name,enabled\nalice@example.com,Alice,\nbob@example.com,,no\n");
        let ok = ok.map_err(|e| format!("{e:?}")).unwrap_or_default();
        assert_eq!(ok.len(), 2);
        assert!(!ok[1].enabled);
        let bad = parse_users_csv(b"email,name\nalice@example.com,Alice\nnot-an-email,Bob\n")
            .err()
            .unwrap_or_default();
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 3);
        assert_eq!(bad[0].field, "email");
        assert!(parse_users_csv(b"mail\nx@example.com\n").is_err());
        assert!(parse_users_csv(b"email,shoe\nx@example.com,1\n").is_err());
        assert!(parse_users_csv(b"email,name\nx@example.com\n").is_err());
    }
}
