//! `convert-db`: copies every table from one store into a freshly migrated,
//! empty store of either backend, in one transaction on the target.

use crate::db::DbConn;
use crate::sql::{Sql, rows_per_insert};
use crate::store::{Backend, SqlStore, commit};
use crate::tables::{ColumnValue, TABLES, Table, to_arg};
use mdm_core::StoreError;
use std::fmt;

/// Rows read from the source per query.
const READ_BATCH: i64 = 1000;

/// What was copied: rows per table, in copy order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, u64)>,
}

impl CopyReport {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for CopyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (table, rows) in &self.tables {
            writeln!(f, "{table:<20} {rows:>10} rows")?;
        }
        write!(f, "{:<20} {:>10} rows", "total", self.total_rows())
    }
}

fn refuse(message: String) -> StoreError {
    StoreError::Backend(message)
}

/// Copies every table of `from` into `to`. `to` must be migrated to the same
/// version as `from` and hold no rows; nothing is written unless everything
/// is copied. Stop the server on `from` first: rows written during the copy
/// may be missed.
pub async fn copy_all(from: &SqlStore, to: &SqlStore) -> Result<CopyReport, StoreError> {
    check_ready(from, to).await?;
    let mut source = from.begin_read().await?;
    if from.backend == Backend::Postgres {
        // One snapshot for every table of the source.
        Sql::new("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *source)
            .await?;
    }
    let mut target = to.begin_write().await?;
    let mut report = CopyReport::default();
    for table in TABLES {
        let rows = copy_table(table, &mut source, &mut target, to.backend).await?;
        if to.backend == Backend::Postgres
            && let Some(column) = table.identity
        {
            reset_identity(&mut target, table, column).await?;
        }
        report.tables.push((table.name, rows));
    }
    commit(target).await?;
    // The source transaction only read; ending it (a rollback) is all that
    // is left.
    drop(source);
    Ok(report)
}

/// Both databases are at the same migration version, match the table list,
/// and the target is empty.
async fn check_ready(from: &SqlStore, to: &SqlStore) -> Result<(), StoreError> {
    let expected = from.backend.migration_versions();
    let source = from.applied_migrations().await.map_err(|e| {
        refuse(format!(
            "the source {} database is not migrated ({e}): run `migrate` on it first",
            from.backend
        ))
    })?;
    let target = to.applied_migrations().await.map_err(|e| {
        refuse(format!(
            "the target {} database is not migrated ({e}): create an empty database and run `migrate` on it first",
            to.backend
        ))
    })?;
    if source != expected {
        return Err(refuse(format!(
            "the source {} database is at migrations {source:?} but this program has {expected:?}: \
             run `migrate` on it first",
            from.backend
        )));
    }
    if target != expected {
        return Err(refuse(format!(
            "the target {} database is at migrations {target:?} but needs {expected:?}: \
             create an empty database and run `migrate` on it first",
            to.backend
        )));
    }
    from.check_schema().await?;
    to.check_schema().await?;
    for table in TABLES {
        let n = to.count_rows(table.name).await?;
        if n > 0 {
            return Err(refuse(format!(
                "the target database is not empty (table {} has {n} rows): \
                 convert-db only copies into a freshly migrated, empty database",
                table.name
            )));
        }
    }
    Ok(())
}

/// Copies one table in key order, `READ_BATCH` rows at a time.
async fn copy_table(
    table: &Table,
    source: &mut DbConn,
    target: &mut DbConn,
    target_backend: Backend,
) -> Result<u64, StoreError> {
    let key = table.key_positions();
    let mut last: Option<Vec<ColumnValue>> = None;
    let mut copied = 0u64;
    loop {
        let mut sql = Sql::new(format!(
            "SELECT {} FROM {}",
            table.column_list(),
            table.name
        ));
        if let Some(last) = &last {
            // Keyset: rows whose key sorts after the last one copied.
            sql.push(&format!(" WHERE ({}) > ", table.key_list()));
            let mut args = Vec::with_capacity(key.len());
            for &i in &key {
                args.push(to_arg(table.columns[i].1, &last[i])?);
            }
            sql.tuple(args);
        }
        sql.push(&format!(" ORDER BY {} LIMIT ", table.key_list()))
            .bind(READ_BATCH);
        let rows = sql.fetch_all(&mut *source).await?;
        let rows = rows
            .iter()
            .map(|r| table.decode(r))
            .collect::<Result<Vec<_>, _>>()?;
        insert_rows(table, &rows, target, target_backend).await?;
        copied += rows.len() as u64;
        if (rows.len() as i64) < READ_BATCH {
            return Ok(copied);
        }
        last = rows.into_iter().last();
    }
}

/// Inserts `rows` (in column order) with multi-row INSERTs.
async fn insert_rows(
    table: &Table,
    rows: &[Vec<ColumnValue>],
    target: &mut DbConn,
    backend: Backend,
) -> Result<(), StoreError> {
    for chunk in rows.chunks(rows_per_insert(backend, table.columns.len())) {
        let mut sql = Sql::new(format!(
            "INSERT INTO {} ({}) VALUES ",
            table.name,
            table.column_list()
        ));
        for (i, row) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            let args = table
                .columns
                .iter()
                .zip(row)
                .map(|((_, ty), v)| to_arg(*ty, v))
                .collect::<Result<Vec<_>, _>>()?;
            sql.tuple(args);
        }
        sql.one_off().execute(&mut *target).await?;
    }
    Ok(())
}

/// Moves a PostgreSQL identity sequence past the copied ids, so the next
/// insert does not collide with a copied row.
async fn reset_identity(
    target: &mut DbConn,
    table: &Table,
    column: &str,
) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT setval(pg_get_serial_sequence('{t}', '{column}'), COALESCE((SELECT MAX({column}) FROM {t}), 0) + 1, false)",
        t = table.name
    );
    Sql::new(sql).one_off().execute(target).await.map(|_| ())
}
