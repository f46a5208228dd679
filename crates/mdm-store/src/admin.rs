//! The admin web portal's storage: administrator sessions and their sign-in
//! throttle, the startup wizard's completion, tenant renames, batched user
//! lookups and device deletion.

use crate::audit::insert_audit;
use crate::db::DbRow;
use crate::rows::{ADMIN_COLS, Row, USER_COLS, admin_from_row, user_from_row};
use crate::sql::Sql;
use crate::store::{SqlStore, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::admin_sessions::AdminSession;
use mdm_core::audit::AuditEntry;
use mdm_core::ids::{DeviceId, TenantId, UserId};
use mdm_core::ports::{AdminStore, StoreResult};
use mdm_core::tokens::Admin;
use mdm_core::users::User;
use time::OffsetDateTime;

const SESSION_COLS: &str = "id_hash, admin_id, csrf, created_at, last_seen_at, expires_at";

fn session_from_row(row: &DbRow) -> Result<AdminSession, StoreError> {
    let r = Row(row);
    Ok(AdminSession {
        id_hash: r.text("id_hash")?,
        admin_id: r.parse("admin_id")?,
        csrf: r.text("csrf")?,
        created_at: r.time("created_at")?,
        last_seen_at: r.time("last_seen_at")?,
        expires_at: r.time("expires_at")?,
    })
}

#[async_trait]
impl AdminStore for SqlStore {
    async fn admins_by_email(&self, email: &str) -> StoreResult<Vec<Admin>> {
        let rows = Sql::new(format!(
            "SELECT {ADMIN_COLS} FROM admins WHERE email = $1 \
             ORDER BY CASE WHEN tenant_id IS NULL THEN 0 ELSE 1 END, created_at, id"
        ))
        .arg(email)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(admin_from_row).collect()
    }

    async fn create_admin_session(
        &self,
        s: &AdminSession,
        clear_key: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Sql::new("DELETE FROM admin_auth_attempts WHERE throttle_key = $1")
            .arg(clear_key)
            .execute(&mut *tx)
            .await?;
        Sql::new("DELETE FROM admin_sessions WHERE expires_at < $1")
            .arg(s.created_at)
            .execute(&mut *tx)
            .await?;
        Sql::new(format!(
            "INSERT INTO admin_sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .arg(s.id_hash.as_str())
        .arg(s.admin_id)
        .arg(s.csrf.as_str())
        .arg(s.created_at)
        .arg(s.last_seen_at)
        .arg(s.expires_at)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn admin_session(&self, id_hash: &str) -> StoreResult<Option<AdminSession>> {
        Sql::new(format!(
            "SELECT {SESSION_COLS} FROM admin_sessions WHERE id_hash = $1"
        ))
        .arg(id_hash)
        .fetch_optional_map(&self.pool, session_from_row)
        .await
    }

    async fn touch_admin_session(&self, id_hash: &str, at: OffsetDateTime) -> StoreResult<()> {
        Sql::new(
            "UPDATE admin_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at < $1",
        )
        .arg(at)
        .arg(id_hash)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn delete_admin_session(
        &self,
        id_hash: &str,
        audit: Option<&AuditEntry>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Sql::new("DELETE FROM admin_sessions WHERE id_hash = $1")
            .arg(id_hash)
            .execute(&mut *tx)
            .await?;
        if let Some(a) = audit {
            insert_audit(&mut tx, self.backend, std::slice::from_ref(a)).await?;
        }
        commit(tx).await
    }

    async fn record_admin_failure(
        &self,
        keys: &[String],
        at: OffsetDateTime,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for key in keys {
            Sql::new("INSERT INTO admin_auth_attempts (id, throttle_key, at) VALUES ($1, $2, $3)")
                .arg(uuid::Uuid::now_v7().to_string())
                .arg(key.as_str())
                .arg(at)
                .execute(&mut *tx)
                .await?;
        }
        Sql::new("DELETE FROM admin_auth_attempts WHERE at < $1")
            .arg(at - time::Duration::days(1))
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn admin_failures(&self, key: &str, since: OffsetDateTime) -> StoreResult<i64> {
        let row = Sql::new(
            "SELECT COUNT(*) AS n FROM admin_auth_attempts WHERE throttle_key = $1 AND at > $2",
        )
        .arg(key)
        .arg(since)
        .fetch_one(&self.pool)
        .await?;
        Row(&row).int("n")
    }

    async fn rename_tenant(
        &self,
        tenant: TenantId,
        name: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let changed = Sql::new("UPDATE tenants SET name = $1 WHERE id = $2")
            .arg(name)
            .arg(tenant)
            .execute(&mut *tx)
            .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn setup_completed(&self, tenant: TenantId) -> StoreResult<Option<OffsetDateTime>> {
        Sql::new("SELECT completed_at FROM tenant_setup WHERE tenant_id = $1")
            .arg(tenant)
            .fetch_optional_map(&self.pool, |r| Row(r).time("completed_at"))
            .await
    }

    async fn complete_setup(
        &self,
        tenant: TenantId,
        at: OffsetDateTime,
        by: &str,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let inserted = Sql::new(
            "INSERT INTO tenant_setup (tenant_id, completed_at, completed_by) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id) DO NOTHING",
        )
        .arg(tenant)
        .arg(at)
        .arg(by)
        .execute(&mut *tx)
        .await?;
        if inserted > 0 {
            insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        }
        commit(tx).await
    }

    async fn users_by_ids(&self, tenant: TenantId, ids: &[UserId]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(format!(
            "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND id IN "
        ))
        .arg(tenant);
        sql.tuple(ids.iter().map(|id| (*id).into()));
        let rows = sql.one_off().fetch_all(&self.pool).await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn delete_device(
        &self,
        tenant: TenantId,
        id: DeviceId,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for table in ["apple_commands", "apple_enrollments"] {
            Sql::new(format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND device_id = $2"
            ))
            .arg(tenant)
            .arg(id)
            .execute(&mut *tx)
            .await?;
        }
        let deleted = Sql::new("DELETE FROM devices WHERE tenant_id = $1 AND id = $2")
            .arg(tenant)
            .arg(id)
            .execute(&mut *tx)
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }
}
