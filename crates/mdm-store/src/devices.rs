//! Devices of every platform: listing with filters and keyset paging, and
//! the batched last-seen writes.

use crate::db::DbRow;
use crate::paging;
use crate::rows::Row;
use crate::sql::{Arg, Sql, rows_per_insert, update_set};
use crate::store::{Backend, SqlStore, WriteTx, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::devices::{Device, DeviceQuery, DeviceStatus};
use mdm_core::ids::{DeviceId, TenantId};
use mdm_core::ports::{DeviceStore, StoreResult};
use mdm_core::registrations::DevicePlatform;
use mdm_core::users::Page;
use time::OffsetDateTime;

pub(crate) const DEVICE_COLS: &str = "id, tenant_id, user_id, platform, status, udid, serial_number, model, \
     model_name, product_name, os_version, build_version, device_name, enrolled_at, last_seen_at, \
     created_at, updated_at";

pub(crate) fn device_from_row(row: &DbRow) -> Result<Device, StoreError> {
    let r = Row(row);
    let platform = r.text("platform")?;
    let status = r.text("status")?;
    let bad = |c: &str, v: &str| StoreError::Backend(format!("column {c}: unknown value {v:?}"));
    Ok(Device {
        id: r.parse("id")?,
        tenant_id: r.parse("tenant_id")?,
        user_id: r.opt_parse("user_id")?,
        platform: DevicePlatform::parse(&platform).ok_or_else(|| bad("platform", &platform))?,
        status: DeviceStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        shown_status: DeviceStatus::parse(&status)
            .ok_or_else(|| bad("status", &status))?
            .shown(),
        udid: r.opt_text("udid")?,
        serial_number: r.opt_text("serial_number")?,
        model: r.opt_text("model")?,
        model_name: r.opt_text("model_name")?,
        product_name: r.opt_text("product_name")?,
        os_version: r.opt_text("os_version")?,
        build_version: r.opt_text("build_version")?,
        device_name: r.opt_text("device_name")?,
        enrolled_at: r.opt_time("enrolled_at")?,
        last_seen_at: r.opt_time("last_seen_at")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// Inserts the device (`Conflict("device_udid")` when the UDID is taken).
pub(crate) async fn insert_device(tx: &mut WriteTx, d: &Device) -> StoreResult<()> {
    let mut sql = Sql::new(format!("INSERT INTO devices ({DEVICE_COLS}) VALUES "));
    sql.tuple([
        Arg::from(d.id),
        d.tenant_id.into(),
        d.user_id.into(),
        d.platform.as_str().into(),
        d.status.as_str().into(),
        d.udid.as_deref().into(),
        d.serial_number.as_deref().into(),
        d.model.as_deref().into(),
        d.model_name.as_deref().into(),
        d.product_name.as_deref().into(),
        d.os_version.as_deref().into(),
        d.build_version.as_deref().into(),
        d.device_name.as_deref().into(),
        d.enrolled_at.into(),
        d.last_seen_at.into(),
        d.created_at.into(),
        d.updated_at.into(),
    ]);
    sql.unique("device_udid").execute(&mut **tx).await?;
    Ok(())
}

/// Replaces the stored device's changeable fields. `NotFound` when absent.
///
/// SQLite rewrites a row's entry in every index whose column the SET list
/// names, changed or not, so there the indexed columns (user, status, UDID)
/// are named only when their value changes — read first from the row, a
/// primary-key lookup on a page the write has in cache anyway. PostgreSQL
/// compares the values itself (an update that changes no indexed value
/// touches no index), so it gets the one statement.
pub(crate) async fn update_device(
    tx: &mut WriteTx,
    backend: Backend,
    d: &Device,
) -> StoreResult<()> {
    let (user, status, udid) = match backend {
        Backend::Postgres => (true, true, true),
        Backend::Sqlite => {
            let stored = Sql::new(
                "SELECT user_id, status, udid FROM devices WHERE tenant_id = $1 AND id = $2",
            )
            .arg(d.tenant_id)
            .arg(d.id)
            .fetch_optional_map(&mut **tx, |row| {
                let r = Row(row);
                Ok((
                    r.opt_parse::<mdm_core::ids::UserId>("user_id")?,
                    r.text("status")?,
                    r.opt_text("udid")?,
                ))
            })
            .await?;
            let Some((user, status, udid)) = stored else {
                return Err(StoreError::NotFound);
            };
            (
                user != d.user_id,
                status != d.status.as_str(),
                udid != d.udid,
            )
        }
    };
    let mut sets: Vec<(&str, Arg)> = Vec::with_capacity(12);
    if user {
        sets.push(("user_id", d.user_id.into()));
    }
    if status {
        sets.push(("status", d.status.as_str().into()));
    }
    if udid {
        sets.push(("udid", d.udid.as_deref().into()));
    }
    sets.extend([
        ("serial_number", d.serial_number.as_deref().into()),
        ("model", d.model.as_deref().into()),
        ("model_name", d.model_name.as_deref().into()),
        ("product_name", d.product_name.as_deref().into()),
        ("os_version", d.os_version.as_deref().into()),
        ("build_version", d.build_version.as_deref().into()),
        ("device_name", d.device_name.as_deref().into()),
        ("enrolled_at", d.enrolled_at.into()),
        ("updated_at", d.updated_at.into()),
    ]);
    let mut sql = update_set("devices", sets);
    sql.push("tenant_id = ")
        .bind(d.tenant_id)
        .push(" AND id = ")
        .bind(d.id);
    let changed = sql.unique("device_udid").execute(&mut **tx).await?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

#[async_trait]
impl DeviceStore for SqlStore {
    async fn device(&self, tenant: TenantId, id: DeviceId) -> StoreResult<Option<Device>> {
        Sql::new(format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant)
        .arg(id)
        .fetch_optional_map(&self.pool, device_from_row)
        .await
    }

    async fn device_by_udid(
        &self,
        tenant: TenantId,
        platform: DevicePlatform,
        udid: &str,
    ) -> StoreResult<Option<Device>> {
        Sql::new(format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE tenant_id = $1 AND platform = $2 AND udid = $3"
        ))
        .arg(tenant)
        .arg(platform.as_str())
        .arg(udid)
        .fetch_optional_map(&self.pool, device_from_row)
        .await
    }

    async fn devices(&self, tenant: TenantId, q: &DeviceQuery) -> StoreResult<Page<Device>> {
        let mut sql = Sql::new(format!(
            "SELECT {DEVICE_COLS} FROM devices WHERE tenant_id = "
        ));
        sql.bind(tenant);
        if let Some(p) = q.platform {
            sql.push(" AND platform = ").bind(p.as_str());
        }
        match q.status {
            // Reset entries are shown Active until their next registration (R18).
            Some(DeviceStatus::Active) => {
                sql.push(" AND status IN ").tuple([
                    Arg::from(DeviceStatus::Active.as_str()),
                    Arg::from(DeviceStatus::Reset.as_str()),
                ]);
            }
            Some(s) => {
                sql.push(" AND status = ").bind(s.as_str());
            }
            None => {}
        }
        if let Some(u) = q.user_id {
            sql.push(" AND user_id = ").bind(u);
        }
        if let Some(t) = q.seen_after {
            sql.push(" AND last_seen_at >= ").bind(t);
        }
        if let Some(t) = q.seen_before {
            sql.push(" AND (last_seen_at IS NULL OR last_seen_at < ")
                .bind(t)
                .push(")");
        }
        let limit = paging::finish(&mut sql, "created_at", "id", q.after.as_deref(), q.limit)?;
        let items = sql
            .one_off()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(device_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paging::page(items, limit, |d| {
            paging::cursor(d.created_at, &d.id.to_string())
        }))
    }

    async fn touch_enrollments(
        &self,
        seen: &[(TenantId, String, OffsetDateTime)],
    ) -> StoreResult<()> {
        if seen.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        if self.backend == Backend::Postgres {
            // Last-seen times are best effort: rather than wait (and deadlock
            // with a check-in that writes the same device and enrollment in
            // the other order, seen under load), give up and let the next
            // flush write them.
            Sql::new("SET LOCAL lock_timeout = '200ms'")
                .execute(&mut *tx)
                .await?;
        }
        // Two statements per chunk of the batch: the seen channels are a
        // VALUES list (columns column1..3 on both databases) joined to the
        // rows they update. Chunks are what a multi-row statement costs least
        // at (SQLite's `$n` lookup grows with the square of the values).
        for chunk in seen.chunks(rows_per_insert(self.backend, 3)) {
            let values = |sql: &mut Sql| {
                for (i, (tenant, enrollment, at)) in chunk.iter().enumerate() {
                    if i > 0 {
                        sql.push(", ");
                    }
                    sql.tuple([Arg::from(*tenant), enrollment.as_str().into(), (*at).into()]);
                }
            };
            let mut enrollments =
                Sql::new("UPDATE apple_enrollments SET last_seen_at = v.column3 FROM (VALUES ");
            values(&mut enrollments);
            enrollments.push(
                ") AS v WHERE apple_enrollments.tenant_id = v.column1 AND apple_enrollments.id = v.column2",
            );
            enrollments.one_off().execute(&mut *tx).await?;
            // A Mac's device and user channels may both be in the batch: its
            // device row takes either time (they are seconds apart at most).
            let mut devices = Sql::new("UPDATE devices SET last_seen_at = v.column3 FROM (VALUES ");
            values(&mut devices);
            devices.push(
                ") AS v, apple_enrollments e WHERE e.tenant_id = v.column1 AND e.id = v.column2 \
                 AND devices.tenant_id = e.tenant_id AND devices.id = e.device_id",
            );
            devices.one_off().execute(&mut *tx).await?;
        }
        commit(tx).await
    }
}
