//! SQLite without a connection thread: a small pool of `rusqlite`
//! connections whose statements run on the thread of the task that awaits
//! them (ADR 0013).
//!
//! A statement on an indexed table takes microseconds; handing each one to a
//! connection's own thread and back (what sqlx's SQLite driver does) cost
//! about half of the server's CPU on the device-facing paths. Writers of
//! this process still queue for their turn in `SqlStore`, so a statement
//! here waits in SQLite's busy handler only for another process.

use crate::sql::Arg;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Statements kept prepared per connection (the store has about two hundred
/// distinct statements; the hot ones stay).
const STATEMENT_CACHE: usize = 256;

/// Run on every new connection, after the busy timeout. Each connection
/// keeps an 8 MiB page cache (`cache_size`, in KiB when negative). Reads do
/// not go through a memory map (`mmap_size`): in WAL mode a connection
/// unmaps the whole file whenever another connection committed, and the
/// munmap and page faults after every command result cost more than the
/// map saves (command round trips 0.37–0.41 ms of server CPU without it,
/// 0.54 ms with 256 MiB mapped).
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                       PRAGMA synchronous = NORMAL; PRAGMA cache_size = -8192;";

/// How long a statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A failure of SQLite, with whether it broke a unique rule.
#[derive(Debug)]
pub(crate) struct LiteError {
    pub(crate) message: String,
    pub(crate) unique_violation: bool,
}

impl From<rusqlite::Error> for LiteError {
    fn from(e: rusqlite::Error) -> Self {
        let unique_violation = matches!(
            e.sqlite_error(),
            Some(f) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        );
        LiteError {
            message: e.to_string(),
            unique_violation,
        }
    }
}

impl LiteError {
    fn new(message: impl Into<String>) -> Self {
        LiteError {
            message: message.into(),
            unique_violation: false,
        }
    }
}

/// Where the pool opens its connections.
#[derive(Debug)]
struct Target {
    /// A `file:` URI.
    uri: String,
    /// An in-memory database lives as long as its one connection.
    memory: bool,
}

impl Target {
    /// Reads a `sqlite:` URL the way sqlx does: `sqlite::memory:`,
    /// `sqlite:///abs/path`, `sqlite://rel/path` or `sqlite:rel/path`, each
    /// with optional `?mode=…&cache=…` parameters, which SQLite's own URI
    /// syntax shares.
    fn from_url(url: &str) -> Result<Target, LiteError> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| LiteError::new("a SQLite URL starts with sqlite:"))?;
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let memory = path == ":memory:" || query.split('&').any(|p| p == "mode=memory");
        let mut uri = String::from("file:");
        if path != ":memory:" {
            for c in path.chars() {
                match c {
                    '%' => uri.push_str("%25"),
                    '#' => uri.push_str("%23"),
                    c => uri.push(c),
                }
            }
        } else {
            // A private in-memory database of the one connection.
            uri.push_str(":memory:");
        }
        if !query.is_empty() {
            uri.push('?');
            uri.push_str(query);
        }
        Ok(Target { uri, memory })
    }

    fn open(&self) -> Result<Connection, LiteError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.uri, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(PRAGMAS)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

#[derive(Debug)]
struct Shared {
    target: Target,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
    closed: AtomicBool,
}

/// At most `max` connections, opened on demand and kept.
#[derive(Clone, Debug)]
pub(crate) struct LitePool {
    shared: Arc<Shared>,
}

impl LitePool {
    /// Opens the first connection now, so a bad path fails at start-up.
    pub(crate) fn open(url: &str, max: u32) -> Result<LitePool, LiteError> {
        let target = Target::from_url(url)?;
        let max = if target.memory { 1 } else { max.max(1) };
        let first = target.open()?;
        Ok(LitePool {
            shared: Arc::new(Shared {
                target,
                idle: Mutex::new(vec![first]),
                permits: Arc::new(Semaphore::new(max as usize)),
                closed: AtomicBool::new(false),
            }),
        })
    }

    /// A connection of its own until the returned value is dropped.
    pub(crate) async fn acquire(&self) -> Result<LiteConn, LiteError> {
        let permit = self
            .shared
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| LiteError::new("the SQLite store is closed"))?;
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(LiteError::new("the SQLite store is closed"));
        }
        let idle = self
            .shared
            .idle
            .lock()
            .map_err(|_| LiteError::new("the SQLite pool's lock is poisoned"))?
            .pop();
        let conn = match idle {
            Some(c) => c,
            None => self.shared.target.open()?,
        };
        Ok(LiteConn {
            conn: Some(conn),
            shared: self.shared.clone(),
            _permit: permit,
        })
    }

    /// Closes the idle connections now and the others when they come back.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.permits.close();
        if let Ok(mut idle) = self.shared.idle.lock() {
            idle.clear();
        }
    }
}

/// A pooled connection. Dropped inside a transaction, it rolls back; it
/// goes back to the pool only outside one.
pub(crate) struct LiteConn {
    conn: Option<Connection>,
    shared: Arc<Shared>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for LiteConn {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if !conn.is_autocommit() {
            // An unfinished transaction: nothing of it is kept.
            let _ = conn.execute_batch("ROLLBACK");
            if !conn.is_autocommit() {
                return; // closed rather than reused
            }
        }
        if self.shared.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut idle) = self.shared.idle.lock() {
            idle.push(conn);
        }
    }
}

/// One row: the statement's column names (shared by its rows) and values.
#[derive(Clone, Debug)]
pub(crate) struct LiteRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl LiteRow {
    /// The value of column `name`.
    pub(crate) fn by_name(&self, name: &str) -> Option<&Value> {
        let i = self.columns.iter().position(|c| c == name)?;
        self.values.get(i)
    }

    /// The value at position `i`.
    pub(crate) fn at(&self, i: usize) -> Option<&Value> {
        self.values.get(i)
    }
}

impl LiteConn {
    fn conn(&self) -> Result<&Connection, LiteError> {
        self.conn
            .as_ref()
            .ok_or_else(|| LiteError::new("the SQLite connection is gone"))
    }

    /// Runs a statement without parameters (transaction control).
    pub(crate) fn batch(&mut self, sql: &str) -> Result<(), LiteError> {
        log_statement(sql);
        Ok(self.conn()?.execute_batch(sql)?)
    }

    /// Runs `sql` with `args`; the number of rows it changed.
    pub(crate) fn execute(
        &mut self,
        sql: &str,
        args: &[Arg],
        cached: bool,
    ) -> Result<u64, LiteError> {
        log_statement(sql);
        let conn = self.conn()?;
        let run = |stmt: &mut Statement<'_>| -> Result<u64, LiteError> {
            bind(stmt, args)?;
            let readonly = stmt.readonly();
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
            drop(rows);
            Ok(if readonly { 0 } else { conn.changes() })
        };
        if cached {
            run(&mut *conn.prepare_cached(sql)?)
        } else {
            run(&mut conn.prepare(sql)?)
        }
    }

    /// Runs `sql` with `args` and reads at most `limit` rows.
    pub(crate) fn query(
        &mut self,
        sql: &str,
        args: &[Arg],
        cached: bool,
        limit: Option<usize>,
    ) -> Result<Vec<LiteRow>, LiteError> {
        log_statement(sql);
        let conn = self.conn()?;
        let run = |stmt: &mut Statement<'_>| -> Result<Vec<LiteRow>, LiteError> {
            bind(stmt, args)?;
            let columns: Arc<[String]> = stmt
                .column_names()
                .into_iter()
                .map(str::to_string)
                .collect();
            let width = columns.len();
            let mut out = Vec::new();
            let mut rows = stmt.raw_query();
            while limit.is_none_or(|l| out.len() < l) {
                let Some(row) = rows.next()? else {
                    break;
                };
                let mut values = Vec::with_capacity(width);
                for i in 0..width {
                    values.push(owned(row.get_ref(i)?));
                }
                out.push(LiteRow {
                    columns: columns.clone(),
                    values,
                });
            }
            Ok(out)
        };
        if cached {
            run(&mut *conn.prepare_cached(sql)?)
        } else {
            run(&mut conn.prepare(sql)?)
        }
    }
}

/// The statement log (`MDM_LOG=mdm_store::sql=debug`): each statement's
/// first words as `summary`, which is how the benchmarks count statements.
fn log_statement(sql: &str) {
    if tracing::enabled!(target: "mdm_store::sql", tracing::Level::DEBUG) {
        let words: Vec<&str> = sql.split_whitespace().take(4).collect();
        let more = if sql.split_whitespace().nth(4).is_some() {
            " …"
        } else {
            ""
        };
        tracing::debug!(target: "mdm_store::sql", summary = ?format!("{}{more}", words.join(" ")), "statement");
    }
}

fn owned(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

/// Binds `args` to the statement's placeholders: `$n` takes the n-th value
/// wherever it appears (SQLite numbers named parameters by first
/// appearance, not by their digits).
fn bind(stmt: &mut Statement<'_>, args: &[Arg]) -> Result<(), LiteError> {
    for index in 1..=stmt.parameter_count() {
        let position = match stmt.parameter_name(index) {
            Some(name) => name
                .strip_prefix(['$', '?'])
                .and_then(|n| n.parse::<usize>().ok())
                .and_then(|n| n.checked_sub(1))
                .ok_or_else(|| LiteError::new(format!("unsupported placeholder {name}")))?,
            None => index - 1,
        };
        let arg = args.get(position).ok_or_else(|| {
            LiteError::new(format!(
                "placeholder ${} has no value ({} bound)",
                position + 1,
                args.len()
            ))
        })?;
        match arg {
            Arg::Int(v) => stmt.raw_bind_parameter(index, v)?,
            Arg::Text(v) => stmt.raw_bind_parameter(index, v)?,
            Arg::Blob(v) => stmt.raw_bind_parameter(index, v)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_become_sqlite_uris() -> Result<(), LiteError> {
        let t = Target::from_url("sqlite:///tmp/a b#c.db?mode=rwc")?;
        assert_eq!(t.uri, "file:/tmp/a b%23c.db?mode=rwc");
        assert!(!t.memory);
        assert_eq!(Target::from_url("sqlite:x.db")?.uri, "file:x.db");
        assert_eq!(Target::from_url("sqlite://x.db")?.uri, "file:x.db");
        let m = Target::from_url("sqlite::memory:")?;
        assert_eq!(m.uri, "file::memory:");
        assert!(m.memory);
        assert!(Target::from_url("postgres://h/db").is_err());
        Ok(())
    }

    #[tokio::test]
    async fn placeholders_bind_by_number_and_transactions_roll_back() -> Result<(), LiteError> {
        let pool = LitePool::open("sqlite::memory:", 4)?;
        let mut c = pool.acquire().await?;
        c.batch("CREATE TABLE t (a INTEGER, b TEXT)")?;
        let n = c.execute(
            "INSERT INTO t (b, a) VALUES ($2, $1), ($2, $1 + 1)",
            &[Arg::Int(Some(7)), Arg::Text(Some("x".into()))],
            true,
        )?;
        assert_eq!(n, 2);
        assert_eq!(c.execute("SELECT a FROM t", &[], true)?, 0);
        c.batch("BEGIN IMMEDIATE")?;
        c.execute("DELETE FROM t", &[], false)?;
        drop(c); // rolls back
        let mut c = pool.acquire().await?;
        let rows = c.query("SELECT a, b FROM t ORDER BY a", &[], true, None)?;
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].by_name("a"), Some(&Value::Integer(7)));
        assert_eq!(rows[1].at(1), Some(&Value::Text("x".into())));
        let one = c.query("SELECT a FROM t", &[], true, Some(1))?;
        assert_eq!(one.len(), 1);
        let missing = c.execute("SELECT $2", &[Arg::Int(Some(1))], true);
        assert!(missing.is_err());
        c.batch("CREATE UNIQUE INDEX t_a ON t (a)")?;
        let dup = c.execute("INSERT INTO t (a) VALUES (7)", &[], true);
        assert!(dup.is_err_and(|e| e.unique_violation));
        Ok(())
    }
}
