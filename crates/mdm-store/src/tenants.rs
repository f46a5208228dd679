//! Tenants, their user settings and their versioned enrollment URL.

use crate::audit::insert_audit;
use crate::db::DbConn;
use crate::rows::{
    SETTINGS_COLS, TENANT_COLS, URL_COLS, settings_from_row, tenant_from_row, url_from_row,
};
use crate::sql::{Arg, Sql};
use crate::store::{SqlStore, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::enrollment::EnrollmentUrlVersion;
use mdm_core::ids::TenantId;
use mdm_core::ports::{StoreResult, TenantStore};
use mdm_core::settings::UserSettings;
use mdm_core::tenants::Tenant;

async fn insert_url(
    conn: &mut DbConn,
    tenant: TenantId,
    url: &EnrollmentUrlVersion,
) -> Result<(), StoreError> {
    let mut sql = Sql::new(
        "INSERT INTO enrollment_urls (tenant_id, version, secret_hash, secret, created_at, retired_at) VALUES ",
    );
    sql.tuple([
        Arg::from(tenant),
        url.version.into(),
        url.secret_hash.as_str().into(),
        url.secret.as_deref().into(),
        url.created_at.into(),
        url.retired_at.into(),
    ]);
    sql.unique("enrollment_url_version")
        .execute(conn)
        .await
        .map(|_| ())
}

#[async_trait]
impl TenantStore for SqlStore {
    async fn create_tenant(
        &self,
        tenant: &Tenant,
        settings: &UserSettings,
        url: &EnrollmentUrlVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut sql = Sql::new("INSERT INTO tenants (id, slug, name, created_at) VALUES ");
        sql.tuple([
            Arg::from(tenant.id),
            tenant.slug.as_str().into(),
            tenant.name.as_str().into(),
            tenant.created_at.into(),
        ]);
        sql.unique("tenant_slug").execute(&mut *tx).await?;
        let mut sql = Sql::new(format!(
            "INSERT INTO tenant_settings (tenant_id, {SETTINGS_COLS}) VALUES "
        ));
        sql.tuple([
            Arg::from(tenant.id),
            settings.pin_required.into(),
            settings.pin_lifetime_secs.into(),
            settings.temporary_password.into(),
            settings.profile_validity_secs.into(),
            settings.qr_registration.into(),
            settings.reminder_interval_secs.into(),
            settings.reminder_max.into(),
            settings.reminder_email.into(),
            settings.reminder_push.into(),
        ]);
        sql.execute(&mut *tx).await?;
        insert_url(&mut tx, tenant.id, url).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn tenant(&self, id: TenantId) -> StoreResult<Option<Tenant>> {
        let sql = Sql::new(format!("SELECT {TENANT_COLS} FROM tenants WHERE id = $1")).arg(id);
        sql.fetch_optional_map(&self.pool, tenant_from_row).await
    }

    async fn tenant_by_slug(&self, slug: &str) -> StoreResult<Option<Tenant>> {
        let sql = Sql::new(format!("SELECT {TENANT_COLS} FROM tenants WHERE slug = $1")).arg(slug);
        sql.fetch_optional_map(&self.pool, tenant_from_row).await
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let rows = Sql::new(format!("SELECT {TENANT_COLS} FROM tenants ORDER BY slug"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(tenant_from_row).collect()
    }

    async fn settings(&self, tenant: TenantId) -> StoreResult<UserSettings> {
        let sql = Sql::new(format!(
            "SELECT {SETTINGS_COLS} FROM tenant_settings WHERE tenant_id = $1"
        ))
        .arg(tenant);
        settings_from_row(&sql.fetch_one(&self.pool).await?)
    }

    async fn update_settings(
        &self,
        tenant: TenantId,
        settings: &UserSettings,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let changed = Sql::new(
            "UPDATE tenant_settings SET pin_required = $1, pin_lifetime_secs = $2, temporary_password = $3, \
             profile_validity_secs = $4, qr_registration = $5, reminder_interval_secs = $6, reminder_max = $7, \
             reminder_email = $8, reminder_push = $9 WHERE tenant_id = $10",
        )
        .arg(settings.pin_required)
        .arg(settings.pin_lifetime_secs)
        .arg(settings.temporary_password)
        .arg(settings.profile_validity_secs)
        .arg(settings.qr_registration)
        .arg(settings.reminder_interval_secs)
        .arg(settings.reminder_max)
        .arg(settings.reminder_email)
        .arg(settings.reminder_push)
        .arg(tenant)
        .execute(&mut *tx)
        .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn current_enrollment_url(&self, tenant: TenantId) -> StoreResult<EnrollmentUrlVersion> {
        let sql = Sql::new(format!(
            "SELECT {URL_COLS} FROM enrollment_urls WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1"
        ))
        .arg(tenant);
        url_from_row(&sql.fetch_one(&self.pool).await?)
    }

    async fn enrollment_url_version(
        &self,
        tenant: TenantId,
        version: i64,
    ) -> StoreResult<Option<EnrollmentUrlVersion>> {
        let sql = Sql::new(format!(
            "SELECT {URL_COLS} FROM enrollment_urls WHERE tenant_id = $1 AND version = $2"
        ))
        .arg(tenant)
        .arg(version);
        sql.fetch_optional_map(&self.pool, url_from_row).await
    }

    async fn rotate_enrollment_url(
        &self,
        tenant: TenantId,
        next: &EnrollmentUrlVersion,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // On SQLite the write lock is already held; on PostgreSQL two
        // concurrent rotations may both pass this check, and the primary key
        // (tenant_id, version) then refuses the second insert.
        let current = Sql::new("SELECT version FROM enrollment_urls WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1")
            .arg(tenant)
            .fetch_one(&mut *tx)
            .await?;
        if crate::rows::Row(&current).int("version")? != next.version - 1 {
            return Err(StoreError::Conflict("enrollment_url_version"));
        }
        Sql::new("UPDATE enrollment_urls SET secret = NULL, retired_at = $1 WHERE tenant_id = $2 AND retired_at IS NULL")
            .arg(next.created_at)
            .arg(tenant)
            .execute(&mut *tx)
            .await?;
        insert_url(&mut tx, tenant, next).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }
}
