//! The Android store: entries, identity correlation, registrations under
//! per-identity lock rows (so concurrent re-registrations of one device
//! serialise on PostgreSQL as they do on SQLite's single writer), agent
//! changes that consume the request's nonce first, and deletion.

use crate::android_rows::{
    ANDROID_COLS, COMMAND_COLS, android_from_row, command_from_row, insert_android, insert_command,
};
use crate::audit::insert_audit;
use crate::db::DbConn;
use crate::devices::insert_device;
use crate::paging;
use crate::pki::insert_certificate;
use crate::registrations::{REG_COLS, values};
use crate::rows::Row;
use crate::sql::Sql;
use crate::store::{SqlStore, WriteTx, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::android::{
    AndroidChange, AndroidChangeOutcome, AndroidCommand, AndroidDevice, AndroidKey, AndroidKeyKind,
    AndroidRegistration, CorrelatedEntry, Correlation,
};
use mdm_core::audit::AuditEntry;
use mdm_core::commands::CommandQuery;
use mdm_core::devices::DeviceStatus;
use mdm_core::ids::{DeviceId, TenantId};
use mdm_core::ports::{AndroidStore, StoreResult};
use mdm_core::users::Page;

const OPEN_STATES: &str = "('queued', 'sent', 'not_now')";

fn column(kind: AndroidKeyKind) -> &'static str {
    match kind {
        AndroidKeyKind::EnterpriseSpecificId => "enterprise_specific_id",
        AndroidKeyKind::Imei => "imei",
        AndroidKeyKind::Meid => "meid",
        AndroidKeyKind::Serial => "serial",
        AndroidKeyKind::AndroidId => "android_id",
        AndroidKeyKind::UserModel => "identity_key",
    }
}

async fn correlate(
    conn: &mut DbConn,
    tenant: TenantId,
    keys: &[AndroidKey],
) -> StoreResult<Option<Correlation>> {
    for key in keys {
        let value = match key.kind {
            AndroidKeyKind::UserModel => key.name(),
            _ => key.value.clone(),
        };
        let rows = Sql::new(format!(
            "SELECT a.device_id, d.status, a.current_entry, a.created_at FROM android_devices a \
             JOIN devices d ON d.tenant_id = a.tenant_id AND d.id = a.device_id \
             WHERE a.tenant_id = $1 AND a.{} = $2 ORDER BY a.created_at DESC, a.device_id DESC",
            column(key.kind)
        ))
        .arg(tenant)
        .arg(value)
        .fetch_all(&mut *conn)
        .await?;
        if rows.is_empty() {
            continue;
        }
        let mut entries = Vec::with_capacity(rows.len());
        for row in &rows {
            let r = Row(row);
            let status = r.text("status")?;
            entries.push(CorrelatedEntry {
                device_id: r.parse("device_id")?,
                status: DeviceStatus::parse(&status)
                    .ok_or_else(|| StoreError::Backend(format!("device status {status:?}")))?,
                current: r.flag("current_entry")?,
                created_at: r.time("created_at")?,
            });
        }
        return Ok(Some(Correlation {
            kind: key.kind,
            entries,
        }));
    }
    Ok(None)
}

async fn cancel_open(tx: &mut WriteTx, tenant: TenantId, device: DeviceId) -> StoreResult<()> {
    Sql::new(format!(
        "UPDATE android_commands SET state = 'cancelled' WHERE tenant_id = $1 AND device_id = $2 \
         AND state IN {OPEN_STATES}"
    ))
    .arg(tenant)
    .arg(device)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn lock_identities(
    tx: &mut WriteTx,
    tenant: TenantId,
    keys: &[AndroidKey],
) -> StoreResult<()> {
    let mut names: Vec<String> = keys.iter().map(AndroidKey::name).collect();
    names.sort();
    names.dedup();
    for name in names {
        Sql::new(
            "INSERT INTO android_identity_locks (tenant_id, identity_key, registrations) \
             VALUES ($1, $2, 0) ON CONFLICT (tenant_id, identity_key) DO NOTHING",
        )
        .arg(tenant)
        .arg(name.as_str())
        .execute(&mut **tx)
        .await?;
        Sql::new(
            "UPDATE android_identity_locks SET registrations = registrations + 1 \
             WHERE tenant_id = $1 AND identity_key = $2",
        )
        .arg(tenant)
        .arg(name.as_str())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn retire_entry(
    tx: &mut WriteTx,
    tenant: TenantId,
    id: DeviceId,
    at: time::OffsetDateTime,
) -> StoreResult<()> {
    Sql::new(
        "UPDATE devices SET status = 'retired', updated_at = $1 WHERE tenant_id = $2 AND id = $3 \
         AND status IN ('active', 'reset', 'pending')",
    )
    .arg(at)
    .arg(tenant)
    .arg(id)
    .execute(&mut **tx)
    .await?;
    Sql::new(
        "UPDATE android_devices SET current_entry = 0, enabled = 0, updated_at = $1 \
         WHERE tenant_id = $2 AND device_id = $3",
    )
    .arg(at)
    .arg(tenant)
    .arg(id)
    .execute(&mut **tx)
    .await?;
    cancel_open(tx, tenant, id).await
}

async fn update_reused_device(tx: &mut WriteTx, reg: &AndroidRegistration) -> StoreResult<()> {
    let d = &reg.device;
    let changed = Sql::new(
        "UPDATE devices SET user_id = $1, status = $2, serial_number = $3, model = $4, \
         model_name = $5, os_version = $6, build_version = $7, enrolled_at = $8, \
         last_seen_at = $9, updated_at = $10 WHERE tenant_id = $11 AND id = $12",
    )
    .arg(d.user_id)
    .arg(d.status.as_str())
    .arg(d.serial_number.as_deref())
    .arg(d.model.as_deref())
    .arg(d.model_name.as_deref())
    .arg(d.os_version.as_deref())
    .arg(d.build_version.as_deref())
    .arg(d.enrolled_at)
    .arg(d.last_seen_at)
    .arg(d.updated_at)
    .arg(d.tenant_id)
    .arg(d.id)
    .execute(&mut **tx)
    .await?;
    if changed == 0 {
        return Err(StoreError::Conflict("android_registration_raced"));
    }
    for table in ["android_devices", "android_nonces"] {
        Sql::new(format!(
            "DELETE FROM {table} WHERE tenant_id = $1 AND device_id = $2"
        ))
        .arg(d.tenant_id)
        .arg(d.id)
        .execute(&mut **tx)
        .await?;
    }
    cancel_open(tx, d.tenant_id, d.id).await
}

#[async_trait]
impl AndroidStore for SqlStore {
    async fn android_device(
        &self,
        tenant: TenantId,
        device: DeviceId,
    ) -> StoreResult<Option<AndroidDevice>> {
        Sql::new(format!(
            "SELECT {ANDROID_COLS} FROM android_devices WHERE tenant_id = $1 AND device_id = $2"
        ))
        .arg(tenant)
        .arg(device)
        .fetch_optional_map(&self.pool, android_from_row)
        .await
    }

    async fn android_correlate(
        &self,
        tenant: TenantId,
        keys: &[AndroidKey],
    ) -> StoreResult<Option<Correlation>> {
        let mut conn = self.pool.acquire().await?;
        correlate(&mut conn, tenant, keys).await
    }

    async fn apply_android_registration(
        &self,
        reg: &AndroidRegistration,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let tenant = reg.tenant_id;
        let now = reg.registration.created_at;
        let mut tx = self.begin_write().await?;
        lock_identities(&mut tx, tenant, &reg.keys).await?;
        if correlate(&mut tx, tenant, &reg.keys).await? != reg.expected {
            return Err(StoreError::Conflict("android_registration_raced"));
        }
        if reg.continues_open {
            Sql::new("DELETE FROM registrations WHERE tenant_id = $1 AND id = $2")
                .arg(tenant)
                .arg(reg.registration.id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let mut sql = Sql::new(format!("INSERT INTO registrations ({REG_COLS}) VALUES "));
        sql.tuple(values(&reg.registration));
        sql.unique("registration_attempt").execute(&mut *tx).await?;
        for old in &reg.retire {
            retire_entry(&mut tx, tenant, *old, now).await?;
        }
        if reg.device_is_new {
            insert_device(&mut tx, &reg.device).await?;
        } else {
            update_reused_device(&mut tx, reg).await?;
        }
        insert_android(&mut tx, &reg.android).await?;
        insert_certificate(&mut tx, &reg.certificate).await?;
        for c in &reg.commands {
            insert_command(&mut tx, c).await?;
        }
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn apply_android_change(
        &self,
        change: &AndroidChange,
        audit: &[AuditEntry],
    ) -> StoreResult<AndroidChangeOutcome> {
        let (t, d) = (change.tenant_id, change.device_id);
        let mut out = AndroidChangeOutcome::default();
        let mut tx = self.begin_write().await?;
        if let Some(n) = &change.nonce {
            Sql::new(
                "DELETE FROM android_nonces WHERE tenant_id = $1 AND device_id = $2 AND expires_at < $3",
            )
            .arg(t)
            .arg(d)
            .arg(n.now)
            .execute(&mut *tx)
            .await?;
            Sql::new(
                "INSERT INTO android_nonces (tenant_id, device_id, nonce, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .arg(t)
            .arg(d)
            .arg(n.nonce.as_str())
            .arg(n.expires_at)
            .unique("android_nonce_replayed")
            .execute(&mut *tx)
            .await?;
        }
        if let Some(r) = &change.result {
            let changed = Sql::new(format!(
                "UPDATE android_commands SET state = $1, result = $2, result_at = $3 \
                 WHERE tenant_id = $4 AND id = $5 AND device_id = $6 AND state IN {OPEN_STATES}"
            ))
            .arg(r.state.as_str())
            .arg(r.result.to_string())
            .arg(r.at)
            .arg(t)
            .arg(r.id.as_str())
            .arg(d)
            .execute(&mut *tx)
            .await?;
            if changed == 0 {
                return Ok(out); // rolled back: a duplicate or late result
            }
            out.result_recorded = true;
        }
        if change.cancel_queued {
            cancel_open(&mut tx, t, d).await?;
        }
        for c in &change.commands {
            insert_command(&mut tx, c).await?;
        }
        if let Some(s) = &change.status {
            Sql::new(
                "UPDATE devices SET status = $1, updated_at = $2 WHERE tenant_id = $3 AND id = $4",
            )
            .arg(s.status.as_str())
            .arg(s.at)
            .arg(t)
            .arg(d)
            .execute(&mut *tx)
            .await?;
            Sql::new(
                "UPDATE android_devices SET current_entry = $1, enabled = $2, updated_at = $3 \
                 WHERE tenant_id = $4 AND device_id = $5",
            )
            .arg(s.current)
            .arg(s.enabled)
            .arg(s.at)
            .arg(t)
            .arg(d)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(s) = &change.seen {
            Sql::new(
                "UPDATE android_devices SET api_level = $1, management_mode = $2, checkin = $3, \
                 last_checkin_at = $4 WHERE tenant_id = $5 AND device_id = $6",
            )
            .arg(i64::from(s.api_level))
            .arg(s.management_mode.as_str())
            .arg(s.checkin.to_string())
            .arg(s.at)
            .arg(t)
            .arg(d)
            .execute(&mut *tx)
            .await?;
            if let Some(token) = &s.fcm_token {
                Sql::new(
                    "UPDATE android_devices SET fcm_token = $1, fcm_token_dead_at = NULL \
                     WHERE tenant_id = $2 AND device_id = $3 AND (fcm_token IS NULL OR fcm_token <> $1 \
                     OR fcm_token_dead_at IS NOT NULL)",
                )
                .arg(token.as_str())
                .arg(t)
                .arg(d)
                .execute(&mut *tx)
                .await?;
            }
            Sql::new(
                "UPDATE devices SET os_version = $1, last_seen_at = $2 WHERE tenant_id = $3 AND id = $4",
            )
            .arg(s.os_version.as_str())
            .arg(s.at)
            .arg(t)
            .arg(d)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(p) = &change.push {
            let mut sql = Sql::new("UPDATE android_devices SET last_push_at = ");
            sql.bind(p.at)
                .push(", last_push_outcome = ")
                .bind(p.outcome.as_str());
            if p.token_dead {
                sql.push(", fcm_token_dead_at = ").bind(p.at);
            }
            sql.push(" WHERE tenant_id = ").bind(t);
            sql.push(" AND device_id = ").bind(d);
            sql.one_off().execute(&mut *tx).await?;
        }
        if let Some(limit) = change.fetch {
            let rows = Sql::new(format!(
                "SELECT {COMMAND_COLS} FROM android_commands WHERE tenant_id = $1 AND device_id = $2 \
                 AND state IN ('queued', 'not_now') ORDER BY created_at, id LIMIT $3"
            ))
            .arg(t)
            .arg(d)
            .arg(limit)
            .fetch_all(&mut *tx)
            .await?;
            let now = change.nonce.as_ref().map(|n| n.now);
            for row in &rows {
                let c = command_from_row(row)?;
                Sql::new(
                    "UPDATE android_commands SET state = 'sent', sent_at = $1 WHERE tenant_id = $2 AND id = $3",
                )
                .arg(now.unwrap_or(c.created_at))
                .arg(t)
                .arg(c.id.as_str())
                .execute(&mut *tx)
                .await?;
                out.fetched.push(c);
            }
        }
        if change.push.is_none() {
            out.pending = Sql::new(
                "SELECT 1 AS one FROM android_commands WHERE tenant_id = $1 AND device_id = $2 \
                 AND state IN ('queued', 'not_now') LIMIT 1",
            )
            .arg(t)
            .arg(d)
            .fetch_optional(&mut *tx)
            .await?
            .is_some();
        }
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await?;
        Ok(out)
    }

    async fn android_command(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<AndroidCommand>> {
        Sql::new(format!(
            "SELECT {COMMAND_COLS} FROM android_commands WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant)
        .arg(id)
        .fetch_optional_map(&self.pool, command_from_row)
        .await
    }

    async fn android_commands(
        &self,
        tenant: TenantId,
        device: DeviceId,
        q: &CommandQuery,
    ) -> StoreResult<Page<AndroidCommand>> {
        let mut sql = Sql::new(format!(
            "SELECT {COMMAND_COLS} FROM android_commands WHERE tenant_id = "
        ));
        sql.bind(tenant).push(" AND device_id = ").bind(device);
        if let Some(s) = q.state {
            sql.push(" AND state = ").bind(s.as_str());
        }
        let limit = paging::finish(&mut sql, "created_at", "id", q.after.as_deref(), q.limit)?;
        let items = sql
            .one_off()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(command_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paging::page(items, limit, |c| {
            paging::cursor(c.created_at, &c.id)
        }))
    }

    async fn delete_android_device(
        &self,
        tenant: TenantId,
        device: DeviceId,
        audit: &AuditEntry,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        for table in ["android_nonces", "android_commands", "android_devices"] {
            Sql::new(format!(
                "DELETE FROM {table} WHERE tenant_id = $1 AND device_id = $2"
            ))
            .arg(tenant)
            .arg(device)
            .execute(&mut *tx)
            .await?;
        }
        let gone = Sql::new(
            "DELETE FROM devices WHERE tenant_id = $1 AND id = $2 AND platform = 'android'",
        )
        .arg(tenant)
        .arg(device)
        .execute(&mut *tx)
        .await?;
        if gone == 0 {
            return Ok(false);
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await?;
        Ok(true)
    }
}
