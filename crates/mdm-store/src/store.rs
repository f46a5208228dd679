//! The store handle: one pool (our own SQLite pool, or sqlx's for
//! PostgreSQL), the backend chosen once from the URL, embedded migrations,
//! and the write transaction each backend needs.

use crate::db::{DbConn, DbPool, lite_error};
use crate::lite::LitePool;
use crate::sql::{Sql, db_error};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::ports::{HealthStore, StoreResult};
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;
use std::fmt;
use std::sync::Arc;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Which database a store talks to. Only this crate ever looks at it to
/// choose SQL; callers may show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a database URL names by its scheme.
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        let scheme = url
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        match scheme.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            _ => Err(StoreError::Backend(
                "database URL must start with sqlite: or postgres:// (e.g. sqlite:///var/lib/mdm/mdm.db)".into(),
            )),
        }
    }

    fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// The versions of the migrations embedded for this backend, ascending.
    pub fn migration_versions(self) -> Vec<i64> {
        self.migrator().iter().map(|m| m.version).collect()
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// The SQLite and PostgreSQL implementation of [`mdm_core::ports::Store`].
#[derive(Clone, Debug)]
pub struct SqlStore {
    pub(crate) pool: DbPool,
    pub(crate) backend: Backend,
    /// SQLite has one writer at a time; write transactions of this process
    /// queue here instead of sleeping in SQLite's busy handler (which backs
    /// off in steps of up to 100 ms and made the p99 of concurrent writes).
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// A transaction; a write transaction on SQLite also holds this process's
/// writer turn. Dereferences to the connection. Dropped without
/// [`commit`], it rolls back.
pub(crate) struct WriteTx {
    // Field order: the transaction ends (rolls back if not committed) before
    // the writer turn is released.
    conn: DbConn,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTx {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

fn is_sqlite_memory(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

/// A SQLite URL that creates the file when missing, unless it says otherwise.
fn sqlite_url(url: &str) -> String {
    if is_sqlite_memory(url) || url.contains("mode=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&mode=rwc")
    } else {
        format!("{url}?mode=rwc")
    }
}

impl SqlStore {
    /// Connects to `sqlite:<path>` (the file is created when missing) or
    /// `postgres://…`, with a pool of at most `max_connections` (an in-memory
    /// SQLite database always uses one connection, which is kept open).
    pub async fn connect(url: &str, max_connections: u32) -> Result<SqlStore, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let max_connections = max_connections.max(1);
        let pool = match backend {
            // An in-memory database is one connection, kept open.
            Backend::Sqlite => LitePool::open(&sqlite_url(url), max_connections)
                .map(DbPool::Sqlite)
                .map_err(lite_error),
            // No ping before every checkout: a broken connection fails its
            // statement and is replaced, and the ping costs a round trip on
            // every request (measured: 5 of 18 round trips per SCEP enrollment).
            Backend::Postgres => AnyPoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .connect(url)
                .await
                .map(DbPool::Postgres)
                .map_err(|e| StoreError::Backend(e.to_string())),
        }
        .map_err(|e| StoreError::Backend(format!("connecting to the {backend} database: {e}")))?;
        Ok(SqlStore {
            pool,
            backend,
            writer: Arc::default(),
        })
    }

    /// Applies the embedded migrations that are not applied yet.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let applied = match &self.pool {
            DbPool::Sqlite(_) => crate::migrate::run_sqlite(self, self.backend.migrator()).await,
            DbPool::Postgres(pool) => self
                .backend
                .migrator()
                .run(pool)
                .await
                .map_err(|e| StoreError::Backend(e.to_string())),
        };
        applied.map_err(|e| {
            StoreError::Backend(format!("migrating the {} database: {e}", self.backend))
        })?;
        tracing::debug!(backend = %self.backend, "database schema is up to date");
        Ok(())
    }

    /// The versions of the migrations applied to this database, ascending.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        let rows = Sql::new("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "reading applied migrations (is the database migrated?): {e}"
                ))
            })?;
        rows.iter()
            .map(|r| crate::rows::Row(r).int("version"))
            .collect()
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes every connection; waits for those in use to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// This process's writer turn, for a single writing statement outside a
    /// transaction: held on SQLite (see [`SqlStore::begin_write`]), nothing on
    /// PostgreSQL. Keep it alive until the statement has run.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.backend {
            Backend::Sqlite => Some(self.writer.clone().lock_owned().await),
            Backend::Postgres => None,
        }
    }

    /// Starts a transaction that will write. On SQLite the process's writers
    /// first queue for their turn, then take the write lock up front (`BEGIN
    /// IMMEDIATE`), so a read lock never has to be upgraded under contention.
    pub(crate) async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let turn = self.write_turn().await;
        let conn = self.begin(Begin::Write).await?;
        Ok(WriteTx { conn, _turn: turn })
    }

    /// Starts a transaction that only reads: one snapshot of the database
    /// on SQLite from its first read; PostgreSQL's default isolation, which
    /// the caller may raise.
    pub(crate) async fn begin_read(&self) -> Result<WriteTx, StoreError> {
        let conn = self.begin(Begin::Read).await?;
        Ok(WriteTx { conn, _turn: None })
    }

    /// On SQLite a write transaction runs on the pool's primary connection,
    /// whose page cache no other connection's commit resets, and a read
    /// transaction, which may be held across waits, on another one.
    async fn begin(&self, kind: Begin) -> Result<DbConn, StoreError> {
        match &self.pool {
            DbPool::Sqlite(pool) => {
                let (conn, sql) = match kind {
                    Begin::Write => (pool.acquire_primary().await, "BEGIN IMMEDIATE"),
                    Begin::Read => (pool.acquire_secondary().await, "BEGIN"),
                };
                let mut conn = conn.map_err(lite_error)?;
                conn.batch(sql).map_err(lite_error)?;
                Ok(DbConn::Sqlite(conn))
            }
            DbPool::Postgres(pool) => Ok(DbConn::PostgresTx(
                pool.begin().await.map_err(|e| db_error(e, None))?,
            )),
        }
    }
}

#[derive(Clone, Copy)]
enum Begin {
    Write,
    Read,
}

/// Commits `tx` (and gives up the writer turn).
pub(crate) async fn commit(tx: WriteTx) -> Result<(), StoreError> {
    let WriteTx { conn, _turn } = tx;
    match conn {
        DbConn::Sqlite(mut c) => c.batch("COMMIT").map_err(lite_error),
        DbConn::PostgresTx(t) => t.commit().await.map_err(|e| db_error(e, None)),
        DbConn::Postgres(_) => Ok(()),
    }
}

#[async_trait]
impl HealthStore for SqlStore {
    async fn ping(&self) -> StoreResult<()> {
        Sql::new("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// PostgreSQL keeps a prepared statement's generic plan once it is no
    /// dearer than planning each execution, and builds it from the
    /// statistics of that moment. Built while the tables were nearly empty,
    /// every index that starts with `tenant_id` costs the same and the plan
    /// may read a whole tenant per lookup; `ANALYZE` replaces such plans
    /// (ADR 0002). Autovacuum analyses too, but on its own schedule (a
    /// minute or more, and counting updates); this runs on the server's and
    /// looks at growth only: a table is stale when its row count moved by a
    /// fifth, and at least [`STALE_MIN_ROWS`], since it was analysed.
    /// SQLite plans without statistics: nothing to do.
    async fn refresh_statistics(&self) -> StoreResult<Vec<String>> {
        if self.backend != Backend::Postgres {
            return Ok(Vec::new());
        }
        // reltuples: the row count the statistics were made with (-1: never
        // analysed); n_live_tup: the row count now.
        let rows = Sql::new(
            "SELECT s.relname::text AS relname FROM pg_stat_user_tables s \
             JOIN pg_class c ON c.oid = s.relid WHERE s.schemaname = current_schema() \
             AND abs(s.n_live_tup - c.reltuples) >= greatest($1, c.reltuples / 5) \
             ORDER BY s.relname",
        )
        .arg(STALE_MIN_ROWS)
        .fetch_all(&self.pool)
        .await?;
        let mut refreshed = Vec::new();
        for row in &rows {
            let name = crate::rows::Row(row).text("relname")?;
            // Only this schema's own tables, by their known names.
            if crate::TABLES.iter().any(|t| t.name == name) {
                refreshed.push(name);
            }
        }
        if !refreshed.is_empty() {
            Sql::new(format!("ANALYZE {}", refreshed.join(", ")))
                .execute(&self.pool)
                .await?;
        }
        Ok(refreshed)
    }
}

/// Rows added or removed below which a table's statistics are not refreshed.
const STALE_MIN_ROWS: i64 = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_from_url() {
        assert_eq!(
            Backend::from_url("sqlite:///tmp/x.db").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("sqlite::memory:").ok(),
            Some(Backend::Sqlite)
        );
        assert_eq!(
            Backend::from_url("postgres://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert_eq!(
            Backend::from_url("PostgreSQL://u@h/db").ok(),
            Some(Backend::Postgres)
        );
        assert!(Backend::from_url("mysql://h/db").is_err());
        assert!(Backend::from_url("/tmp/x.db").is_err());
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        assert_eq!(
            sqlite_url("sqlite:///tmp/x.db"),
            "sqlite:///tmp/x.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url("sqlite:x.db?cache=shared"),
            "sqlite:x.db?cache=shared&mode=rwc"
        );
        assert_eq!(sqlite_url("sqlite:x.db?mode=ro"), "sqlite:x.db?mode=ro");
        assert_eq!(sqlite_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[tokio::test]
    async fn in_memory_sqlite_keeps_one_database() -> Result<(), StoreError> {
        let store = SqlStore::connect("sqlite::memory:", 8).await?;
        store.migrate().await?;
        // Concurrent queries would open more connections, each with its own
        // empty database, if the pool were not held at one.
        let (a, b, c) = tokio::join!(
            store.check_schema(),
            store.check_schema(),
            store.count_rows("users")
        );
        a?;
        b?;
        assert_eq!(c?, 0);
        assert_eq!(
            store.applied_migrations().await?,
            Backend::Sqlite.migration_versions()
        );
        store.close().await;
        Ok(())
    }

    #[test]
    fn both_backends_embed_the_same_migration_versions() {
        assert!(!Backend::Sqlite.migration_versions().is_empty());
        assert_eq!(
            Backend::Sqlite.migration_versions(),
            Backend::Postgres.migration_versions()
        );
    }
}
