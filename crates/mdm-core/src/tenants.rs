//! Tenants (R1): every user, device, invitation, certificate and audit entry
//! belongs to exactly one.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::enrollment::EnrollmentUrlVersion;
use crate::error::CoreError;
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::secrets::sha256_hex;
use crate::settings::UserSettings;
use crate::tokens::{Actor, Scope};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    /// Short name used in URLs (`/enroll/<slug>/…`), unique across the server.
    pub slug: String,
    /// Display name.
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What an operator supplies to create a tenant.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    pub slug: String,
    pub name: String,
}

/// Checks a tenant slug: 2–63 characters of `a-z`, `0-9` and `-`, starting
/// with a letter, not ending with `-`.
pub fn validate_slug(slug: &str) -> Result<(), CoreError> {
    let ok_len = (2..=63).contains(&slug.len());
    let ok_chars = slug
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok_ends = slug.starts_with(|c: char| c.is_ascii_lowercase()) && !slug.ends_with('-');
    if ok_len && ok_chars && ok_ends {
        Ok(())
    } else {
        Err(CoreError::invalid(
            "slug",
            "2-63 characters of a-z, 0-9 and '-', starting with a letter",
        ))
    }
}

/// Checks a display name: not blank, at most 200 characters.
pub fn validate_name(field: &str, name: &str) -> Result<(), CoreError> {
    if name.trim().is_empty() {
        return Err(CoreError::invalid(field, "must not be empty"));
    }
    if name.chars().count() > 200 {
        return Err(CoreError::invalid(field, "at most 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

impl Core {
    /// Creates a tenant with default settings and its first enrollment URL (operators only).
    pub async fn create_tenant(&self, actor: &Actor, new: NewTenant) -> CoreResult<Tenant> {
        actor.require_operator()?;
        let slug = new.slug.trim().to_string();
        validate_slug(&slug)?;
        validate_name("name", &new.name)?;
        let now = self.now();
        let tenant = Tenant {
            id: TenantId::new(),
            slug,
            name: new.name.trim().to_string(),
            created_at: now,
        };
        let secret = self.token(16);
        let url = EnrollmentUrlVersion {
            version: 1,
            secret_hash: sha256_hex(&secret),
            secret: Some(secret),
            created_at: now,
            retired_at: None,
        };
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            actor,
            AuditAction::TenantCreated,
            ("tenant", tenant.id.to_string()),
        )
        .details(serde_json::json!({ "slug": tenant.slug, "name": tenant.name }));
        self.store
            .create_tenant(&tenant, &UserSettings::default(), &url, &audit)
            .await
            .map_err(|e| match e {
                crate::StoreError::Conflict(_) => CoreError::Conflict {
                    code: "tenant_slug_taken",
                    message: format!("a tenant with slug '{}' already exists", tenant.slug),
                },
                other => other.into(),
            })?;
        Ok(tenant)
    }

    /// The tenants the actor may see: all for operators, its own otherwise.
    pub async fn tenants(&self, actor: &Actor) -> CoreResult<Vec<Tenant>> {
        let all = match actor.scope() {
            Scope::Operator => self.store.tenants().await?,
            Scope::Tenant(id) => self.store.tenant(id).await?.into_iter().collect(),
        };
        Ok(all)
    }

    /// A tenant by id or slug, if the actor may act in it (`NotFound` otherwise).
    pub async fn tenant(&self, actor: &Actor, reference: &str) -> CoreResult<Tenant> {
        let found = match reference.parse::<TenantId>() {
            Ok(id) => self.store.tenant(id).await?,
            Err(_) => self.store.tenant_by_slug(reference).await?,
        };
        match found {
            Some(t) if actor.can_access(t.id) => Ok(t),
            _ => Err(CoreError::NotFound("tenant")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for good in ["acme", "a1", "acme-eu"] {
            assert!(validate_slug(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "Acme", "1acme", "acme-", "ac me", "acmé"] {
            assert!(validate_slug(bad).is_err(), "{bad}");
        }
    }
}
