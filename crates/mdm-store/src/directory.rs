//! Directory connectors, the users a sync reads and writes in one
//! transaction, and the record of every sync run.

use crate::audit::insert_audit;
use crate::db::DbConn;
use crate::db::DbRow;
use crate::rows::{Row, USER_COLS, user_from_row};
use crate::sql::{Arg, Sql, rows_per_insert};
use crate::store::{SqlStore, commit};
use crate::users::user_values;
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::directory::sync::SyncEntryError;
use mdm_core::directory::{
    AttributeMap, DirectoryConnector, DirectorySecurity, SyncRun, SyncStatus, SyncTrigger,
    UserChange,
};
use mdm_core::ids::{SyncRunId, TenantId};
use mdm_core::ports::{DirectoryStore, StoreResult};
use mdm_core::users::User;
use time::OffsetDateTime;

const CONNECTOR_COLS: &str = "tenant_id, url, security, bind_dn, bind_password_sealed, base_dn, user_filter, \
     group_filter, attr_email, attr_display_name, attr_login_name, attr_stable_id, page_size, \
     sync_interval_secs, timeout_secs, ca_pem, enabled, created_at, updated_at";

const RUN_COLS: &str = "id, tenant_id, triggered_by, status, started_at, finished_at, duration_ms, entries, \
     created, updated, reenabled, disabled, unchanged, error_count, errors, error, error_code";

fn unreadable(col: &str, value: &str) -> StoreError {
    StoreError::Backend(format!("column {col}: unexpected value {value:?}"))
}

fn connector_from_row(row: &DbRow) -> Result<DirectoryConnector, StoreError> {
    let r = Row(row);
    let security = r.text("security")?;
    Ok(DirectoryConnector {
        tenant_id: r.parse("tenant_id")?,
        url: r.text("url")?,
        security: DirectorySecurity::parse(&security)
            .ok_or_else(|| unreadable("security", &security))?,
        bind_dn: r.text("bind_dn")?,
        sealed_bind_password: r.blob("bind_password_sealed")?,
        base_dn: r.text("base_dn")?,
        user_filter: r.text("user_filter")?,
        group_filter: r.opt_text("group_filter")?,
        attributes: AttributeMap {
            email: r.text("attr_email")?,
            display_name: r.text("attr_display_name")?,
            login_name: r.text("attr_login_name")?,
            stable_id: r.text("attr_stable_id")?,
        },
        page_size: u32::try_from(r.int("page_size")?)
            .map_err(|e| unreadable("page_size", &e.to_string()))?,
        sync_interval_secs: r.int("sync_interval_secs")?,
        timeout_secs: u32::try_from(r.int("timeout_secs")?)
            .map_err(|e| unreadable("timeout_secs", &e.to_string()))?,
        ca_pem: r.opt_text("ca_pem")?,
        enabled: r.flag("enabled")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn connector_values(c: &DirectoryConnector) -> Vec<Arg> {
    vec![
        c.tenant_id.into(),
        c.url.as_str().into(),
        c.security.as_str().into(),
        c.bind_dn.as_str().into(),
        c.sealed_bind_password.as_slice().into(),
        c.base_dn.as_str().into(),
        c.user_filter.as_str().into(),
        c.group_filter.as_deref().into(),
        c.attributes.email.as_str().into(),
        c.attributes.display_name.as_str().into(),
        c.attributes.login_name.as_str().into(),
        c.attributes.stable_id.as_str().into(),
        i64::from(c.page_size).into(),
        c.sync_interval_secs.into(),
        i64::from(c.timeout_secs).into(),
        c.ca_pem.as_deref().into(),
        c.enabled.into(),
        c.created_at.into(),
        c.updated_at.into(),
    ]
}

fn run_from_row(row: &DbRow) -> Result<SyncRun, StoreError> {
    let r = Row(row);
    let (trigger, status) = (r.text("triggered_by")?, r.text("status")?);
    let errors: Vec<SyncEntryError> = serde_json::from_value(r.json("errors")?)
        .map_err(|e| unreadable("errors", &e.to_string()))?;
    Ok(SyncRun {
        id: r.parse("id")?,
        tenant_id: r.parse("tenant_id")?,
        trigger: SyncTrigger::parse(&trigger)
            .ok_or_else(|| unreadable("triggered_by", &trigger))?,
        status: SyncStatus::parse(&status).ok_or_else(|| unreadable("status", &status))?,
        started_at: r.time("started_at")?,
        finished_at: r.time("finished_at")?,
        duration_ms: r.int("duration_ms")?,
        entries: r.int("entries")?,
        created: r.int("created")?,
        updated: r.int("updated")?,
        reenabled: r.int("reenabled")?,
        disabled: r.int("disabled")?,
        unchanged: r.int("unchanged")?,
        error_count: r.int("error_count")?,
        errors,
        error: r.opt_text("error")?,
        error_code: r.opt_text("error_code")?,
    })
}

async fn insert_run(conn: &mut DbConn, run: &SyncRun) -> Result<(), StoreError> {
    let errors = serde_json::to_value(&run.errors)
        .map_err(|e| StoreError::Backend(format!("encoding run errors: {e}")))?;
    let mut sql = Sql::new(format!(
        "INSERT INTO directory_sync_runs ({RUN_COLS}) VALUES "
    ));
    sql.tuple([
        run.id.into(),
        run.tenant_id.into(),
        run.trigger.as_str().into(),
        run.status.as_str().into(),
        run.started_at.into(),
        run.finished_at.into(),
        run.duration_ms.into(),
        run.entries.into(),
        run.created.into(),
        run.updated.into(),
        run.reenabled.into(),
        run.disabled.into(),
        run.unchanged.into(),
        run.error_count.into(),
        Arg::from(&errors),
        run.error.as_deref().into(),
        run.error_code.as_deref().into(),
    ]);
    sql.execute(&mut *conn).await.map(|_| ())
}

/// Updates one user if it is unchanged since `before` was read.
async fn update_if_unchanged(conn: &mut DbConn, ch: &UserChange) -> Result<(), StoreError> {
    let (a, b) = (&ch.after, &ch.before);
    let changed = Sql::new(
        "UPDATE users SET email = $1, display_name = $2, login_name = $3, enabled = $4, updated_at = $5 \
         WHERE tenant_id = $6 AND id = $7 AND updated_at = $8",
    )
    .arg(a.email.as_str())
    .arg(a.display_name.as_str())
    .arg(a.login_name.as_deref())
    .arg(a.enabled)
    .arg(a.updated_at)
    .arg(a.tenant_id)
    .arg(a.id)
    .arg(b.updated_at)
    .unique("user_email")
    .execute(&mut *conn)
    .await?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict("user_changed"))
    }
}

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn directory_connector(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<DirectoryConnector>> {
        Sql::new(format!(
            "SELECT {CONNECTOR_COLS} FROM directory_connectors WHERE tenant_id = $1"
        ))
        .arg(tenant)
        .fetch_optional_map(&self.pool, connector_from_row)
        .await
    }

    async fn put_directory_connector(
        &self,
        c: &DirectoryConnector,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut sql = Sql::new(format!(
            "INSERT INTO directory_connectors ({CONNECTOR_COLS}) VALUES "
        ));
        sql.tuple(connector_values(c));
        sql.push(&crate::sql::replace_tenant_row(
            CONNECTOR_COLS,
            &["created_at"],
        ));
        sql.execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn directory_connectors(&self) -> StoreResult<Vec<DirectoryConnector>> {
        let rows = Sql::new(format!(
            "SELECT {CONNECTOR_COLS} FROM directory_connectors ORDER BY tenant_id"
        ))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connector_from_row).collect()
    }

    async fn tenant_users(&self, tenant: TenantId) -> StoreResult<Vec<User>> {
        let rows = Sql::new(format!(
            "SELECT {USER_COLS} FROM users WHERE tenant_id = $1"
        ))
        .arg(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn apply_directory_sync(
        &self,
        creates: &[User],
        updates: &[UserChange],
        run: &SyncRun,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        if creates
            .iter()
            .chain(updates.iter().map(|c| &c.after))
            .any(|u| u.tenant_id != run.tenant_id)
        {
            return Err(StoreError::Backend(
                "a sync may only change users of its own tenant".into(),
            ));
        }
        let mut tx = self.begin_write().await?;
        for chunk in creates.chunks(rows_per_insert(self.backend, 12)) {
            let mut sql = Sql::new(format!("INSERT INTO users ({USER_COLS}) VALUES "));
            for (i, user) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.tuple(user_values(user));
            }
            let sql = if chunk.len() > 1 { sql.one_off() } else { sql };
            sql.unique("user_email").execute(&mut *tx).await?;
        }
        for ch in updates {
            update_if_unchanged(&mut tx, ch).await?;
        }
        insert_run(&mut tx, run).await?;
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn finish_directory_run(
        &self,
        tenant: TenantId,
        id: SyncRunId,
        finished_at: OffsetDateTime,
        duration_ms: i64,
    ) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        let changed = Sql::new(
            "UPDATE directory_sync_runs SET finished_at = $1, duration_ms = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .arg(finished_at)
        .arg(duration_ms)
        .arg(tenant)
        .arg(id)
        .execute(&self.pool)
        .await?;
        if changed == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn record_directory_run(&self, run: &SyncRun, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_run(&mut tx, run).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn directory_runs(&self, tenant: TenantId, limit: i64) -> StoreResult<Vec<SyncRun>> {
        let rows = Sql::new(format!(
            "SELECT {RUN_COLS} FROM directory_sync_runs WHERE tenant_id = $1 \
             ORDER BY started_at DESC, id DESC LIMIT $2"
        ))
        .arg(tenant)
        .arg(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(run_from_row).collect()
    }
}
