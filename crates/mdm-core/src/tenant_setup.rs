//! The startup wizard of a tenant (first run): name the tenant, set the
//! user settings, add the first users, send their invitations. Those steps
//! are the ordinary use cases; this module holds what only the wizard adds
//! (renaming, knowing whether it was finished) and the batched user lookup
//! the portal's lists use.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::UserId;
use crate::tenants::{Tenant, validate_name};
use crate::tokens::Actor;
use crate::users::User;
use time::OffsetDateTime;

impl Core {
    /// Gives the tenant a new display name (the slug, part of every URL,
    /// never changes).
    pub async fn rename_tenant(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        name: &str,
    ) -> CoreResult<Tenant> {
        actor.require_tenant(tenant.id)?;
        validate_name("name", name)?;
        let name = name.trim().to_string();
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::TenantRenamed,
            ("tenant", tenant.id.to_string()),
        )
        .details(serde_json::json!({ "from": tenant.name, "to": name }));
        self.store
            .rename_tenant(tenant.id, &name, &audit)
            .await
            .map_err(|e| match e {
                crate::StoreError::NotFound => CoreError::NotFound("tenant"),
                other => other.into(),
            })?;
        Ok(Tenant {
            name,
            ..tenant.clone()
        })
    }

    /// When the tenant's startup wizard was finished (`None`: first run).
    pub async fn setup_completed(
        &self,
        actor: &Actor,
        tenant: &Tenant,
    ) -> CoreResult<Option<OffsetDateTime>> {
        actor.require_tenant(tenant.id)?;
        Ok(self.store.setup_completed(tenant.id).await?)
    }

    /// Marks the startup wizard finished.
    pub async fn complete_setup(&self, actor: &Actor, tenant: &Tenant) -> CoreResult<()> {
        actor.require_tenant(tenant.id)?;
        let now = self.now();
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            actor,
            AuditAction::TenantSetupCompleted,
            ("tenant", tenant.id.to_string()),
        );
        Ok(self
            .store
            .complete_setup(tenant.id, now, &actor.key(), &audit)
            .await?)
    }

    /// The users of `ids` in the tenant, for showing names next to devices.
    pub async fn users_by_ids(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        ids: &[UserId],
    ) -> CoreResult<Vec<User>> {
        actor.require_tenant(tenant.id)?;
        if ids.len() > 1000 {
            return Err(CoreError::invalid("ids", "at most 1000 at once"));
        }
        Ok(self.store.users_by_ids(tenant.id, ids).await?)
    }
}
