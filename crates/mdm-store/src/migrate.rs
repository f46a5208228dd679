//! Applying the embedded SQLite migrations on the store's own SQLite pool,
//! in sqlx's bookkeeping table (`_sqlx_migrations`, same columns and
//! checksums), so a database migrated by either runs under the other.

use crate::rows::Row;
use crate::sql::Sql;
use crate::store::{SqlStore, commit};
use mdm_core::StoreError;
use sqlx::migrate::Migrator;
use std::time::Instant;

const BOOKKEEPING: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

/// Applies every migration of `migrator` not applied yet, each in its own
/// transaction with its bookkeeping row. Refuses a database with a failed
/// migration, or one whose applied migration differs from the embedded one.
pub(crate) async fn run_sqlite(store: &SqlStore, migrator: &Migrator) -> Result<(), StoreError> {
    {
        let _turn = store.write_turn().await;
        Sql::new(BOOKKEEPING).execute(&store.pool).await?;
    }
    let rows = Sql::new("SELECT version, success, checksum FROM _sqlx_migrations ORDER BY version")
        .fetch_all(&store.pool)
        .await?;
    let mut applied = Vec::with_capacity(rows.len());
    for row in &rows {
        let r = Row(row);
        let version = r.int("version")?;
        if !r.flag("success")? {
            return Err(StoreError::Backend(format!(
                "migration {version} is partially applied; fix and remove it from _sqlx_migrations"
            )));
        }
        applied.push((version, r.blob("checksum")?));
    }
    for m in migrator.iter() {
        if m.migration_type.is_down_migration() {
            continue;
        }
        if let Some((_, checksum)) = applied.iter().find(|(v, _)| *v == m.version) {
            if checksum.as_slice() != &*m.checksum {
                return Err(StoreError::Backend(format!(
                    "migration {} was applied but differs from the one this program embeds",
                    m.version
                )));
            }
            continue;
        }
        let started = Instant::now();
        let mut tx = store.begin_write().await?;
        // A migration may hold several statements; its text is our own.
        match &mut *tx {
            crate::db::DbConn::Sqlite(c) => c.batch(m.sql.as_str()).map_err(|e| {
                StoreError::Backend(format!("migration {}: {}", m.version, e.message))
            })?,
            _ => return Err(StoreError::Backend("not a SQLite store".into())),
        }
        let elapsed = i64::try_from(started.elapsed().as_nanos()).unwrap_or(i64::MAX);
        Sql::new(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES ($1, $2, 1, $3, $4)",
        )
        .arg(m.version)
        .arg(&*m.description)
        .arg(&*m.checksum)
        .arg(elapsed)
        .execute(&mut *tx)
        .await?;
        commit(tx).await?;
        tracing::info!(version = m.version, description = %m.description, "applied migration");
    }
    Ok(())
}
