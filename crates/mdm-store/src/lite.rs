//! SQLite without a connection thread: a small pool of `rusqlite`
//! connections whose statements run on the thread of the task that awaits
//! them (ADR 0013).
//!
//! A statement on an indexed table takes microseconds; handing each one to a
//! connection's own thread and back (what sqlx's SQLite driver does) cost
//! about half of the server's CPU on the device-facing paths. Writers of
//! this process still queue for their turn in `SqlStore`, so a statement
//! here waits in SQLite's busy handler only for another process.
//!
//! Write transactions run on one primary connection, which statements
//! outside a transaction borrow while it is free (ADR 0014): a commit
//! empties the page cache of every other connection, not its own.

use crate::sql::Arg;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{Connection, OpenFlags, Statement};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
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
///
/// A commit does not checkpoint the WAL when it passes 1,000 pages (SQLite's
/// default): that copy and its `fsync` ran on the committing request's
/// thread while it held the writer turn, and every writer queued behind it.
/// The pool's checkpointer thread does it instead ([`CHECKPOINT_EVERY`]);
/// `wal_autocheckpoint` stays as a backstop at 10,000 pages (≈ 40 MiB).
const PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
                       PRAGMA synchronous = NORMAL; PRAGMA cache_size = -8192; \
                       PRAGMA wal_autocheckpoint = 10000;";

/// How often the checkpointer copies the WAL back into the database
/// (`PRAGMA wal_checkpoint(PASSIVE)`: it waits for no reader or writer).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

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
        // Every connection writes its WAL through the coalescing VFS (ADR 0018).
        let vfs = crate::walvfs::register().map_err(LiteError::new)?;
        let conn = Connection::open_with_flags_and_vfs(&self.uri, flags, vfs)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.execute_batch(PRAGMAS)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

#[derive(Debug)]
struct Shared {
    target: Target,
    /// The primary connection: write transactions run on it, and a
    /// statement outside a transaction borrows it while it is free. In WAL
    /// mode a commit makes every *other* connection drop its whole page
    /// cache at its next read; the connection that commits keeps its own.
    /// With the writes and most reads on one connection, the hot pages stay
    /// cached instead of being read again after every command result.
    primary: Mutex<Option<Connection>>,
    /// One permit: who holds it uses `primary`.
    primary_turn: Arc<Semaphore>,
    /// The other connections, opened on demand, most recently used last.
    idle: Mutex<Vec<Connection>>,
    /// `max - 1` permits; none when the primary is the only connection (an
    /// in-memory database, or a pool of one).
    permits: Option<Arc<Semaphore>>,
    closed: AtomicBool,
    /// Stops and joins the checkpointer (dropping the sender stops it too).
    checkpointer: Mutex<Option<(mpsc::Sender<()>, std::thread::JoinHandle<()>)>>,
}

/// At most `max` connections: the primary, opened now, and `max - 1` others
/// opened on demand and kept.
#[derive(Clone, Debug)]
pub(crate) struct LitePool {
    shared: Arc<Shared>,
}

impl LitePool {
    /// Opens the primary connection now, so a bad path fails at start-up.
    pub(crate) fn open(url: &str, max: u32) -> Result<LitePool, LiteError> {
        let target = Target::from_url(url)?;
        let max = if target.memory { 1 } else { max.max(1) };
        let first = target.open()?;
        let others = max as usize - 1;
        let memory = target.memory;
        let pool = LitePool {
            shared: Arc::new(Shared {
                target,
                primary: Mutex::new(Some(first)),
                primary_turn: Arc::new(Semaphore::new(1)),
                idle: Mutex::new(Vec::new()),
                permits: (others > 0).then(|| Arc::new(Semaphore::new(others))),
                closed: AtomicBool::new(false),
                checkpointer: Mutex::new(None),
            }),
        };
        if !memory {
            pool.start_checkpointer()?;
        }
        Ok(pool)
    }

    /// A thread with a connection of its own that checkpoints the WAL
    /// every [`CHECKPOINT_EVERY`] until the pool is closed or dropped.
    fn start_checkpointer(&self) -> Result<(), LiteError> {
        let conn = self.shared.target.open()?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                let mut failing = false;
                // Woken early (or its sender gone) when the pool closes.
                while let Err(mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(CHECKPOINT_EVERY)
                {
                    let done = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
                    });
                    match done {
                        Ok((log, copied)) => {
                            if failing {
                                tracing::info!("SQLite WAL checkpoints work again");
                            }
                            failing = false;
                            if log > 0 {
                                tracing::trace!(
                                    target: "mdm_store::sql",
                                    wal_frames = log,
                                    checkpointed = copied,
                                    "WAL checkpoint"
                                );
                            }
                        }
                        // Said once, not every tick; the backstop still holds.
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "SQLite WAL checkpoint failed");
                        }
                        Err(_) => {}
                    }
                }
                // Its connection closes here: the last one to close
                // checkpoints the WAL and removes it.
                drop(conn);
            })
            .map_err(|e| LiteError::new(format!("starting the WAL checkpointer: {e}")))?;
        *lock(&self.shared.checkpointer)? = Some((stop, thread));
        Ok(())
    }

    /// A connection for statements that do not hold it across a wait: the
    /// primary when it is free, another one otherwise. Holding it across
    /// awaits (a read transaction) is what [`LitePool::acquire_secondary`]
    /// is for, so that writers never wait behind it.
    pub(crate) async fn acquire(&self) -> Result<LiteConn, LiteError> {
        if let Ok(turn) = self.shared.primary_turn.clone().try_acquire_owned() {
            return self.primary_with(turn);
        }
        self.acquire_secondary().await
    }

    /// The primary connection, waiting for it: what a write transaction
    /// runs on.
    pub(crate) async fn acquire_primary(&self) -> Result<LiteConn, LiteError> {
        let turn = self
            .shared
            .primary_turn
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        self.primary_with(turn)
    }

    /// A connection other than the primary (the primary itself when there
    /// is no other, as for an in-memory database).
    pub(crate) async fn acquire_secondary(&self) -> Result<LiteConn, LiteError> {
        let Some(permits) = &self.shared.permits else {
            return self.acquire_primary().await;
        };
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| closed())?;
        self.lend(Home::Secondary, permit)
    }

    fn primary_with(&self, turn: OwnedSemaphorePermit) -> Result<LiteConn, LiteError> {
        self.lend(Home::Primary, turn)
    }

    /// The kept connection of `home` (a new one when there is none: the
    /// pool has not opened it yet, or closed it after a failed rollback),
    /// lent under `permit`.
    fn lend(&self, home: Home, permit: OwnedSemaphorePermit) -> Result<LiteConn, LiteError> {
        self.check_open()?;
        let kept = match home {
            Home::Primary => lock(&self.shared.primary)?.take(),
            Home::Secondary => lock(&self.shared.idle)?.pop(),
        };
        let conn = match kept {
            Some(c) => c,
            None => self.shared.target.open()?,
        };
        Ok(LiteConn {
            conn: Some(conn),
            home,
            shared: self.shared.clone(),
            _permit: permit,
        })
    }

    fn check_open(&self) -> Result<(), LiteError> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        Ok(())
    }

    /// Closes the idle connections now and the others when they come back.
    pub(crate) fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
        if let Some(permits) = &self.shared.permits {
            permits.close();
        }
        self.shared.primary_turn.close();
        if let Ok(mut idle) = self.shared.idle.lock() {
            idle.clear();
        }
        if let Ok(mut primary) = self.shared.primary.lock() {
            primary.take();
        }
        let checkpointer = self
            .shared
            .checkpointer
            .lock()
            .ok()
            .and_then(|mut c| c.take());
        if let Some((stop, thread)) = checkpointer {
            drop(stop);
            // At most the end of a checkpoint in progress.
            let _ = thread.join();
        }
    }
}

fn closed() -> LiteError {
    LiteError::new("the SQLite store is closed")
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, LiteError> {
    m.lock()
        .map_err(|_| LiteError::new("the SQLite pool's lock is poisoned"))
}

/// Where a connection goes back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Home {
    Primary,
    Secondary,
}

/// A pooled connection. Dropped inside a transaction, it rolls back; it
/// goes back to the pool only outside one.
pub(crate) struct LiteConn {
    conn: Option<Connection>,
    home: Home,
    shared: Arc<Shared>,
    // Released after `drop` has put the connection back.
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
        // A poisoned lock drops the connection instead of returning it.
        match self.home {
            Home::Primary => {
                if let Ok(mut p) = self.shared.primary.lock() {
                    *p = Some(conn);
                }
            }
            Home::Secondary => {
                if let Ok(mut idle) = self.shared.idle.lock() {
                    idle.push(conn);
                }
            }
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

    #[tokio::test]
    async fn writers_wait_for_the_primary_and_readers_borrow_it_when_free() -> Result<(), LiteError>
    {
        let dir = tempfile::tempdir().map_err(|e| LiteError::new(e.to_string()))?;
        let url = format!("sqlite://{}/p.db?mode=rwc", dir.path().display());
        let pool = LitePool::open(&url, 3)?;
        let mut first = pool.acquire().await?;
        assert_eq!(first.home, Home::Primary, "a free primary is lent out");
        first.batch("CREATE TABLE t (a INTEGER)")?;
        let second = pool.acquire().await?;
        assert_eq!(
            second.home,
            Home::Secondary,
            "a busy primary is not waited for"
        );
        let third = pool.acquire_secondary().await?;
        assert_eq!(third.home, Home::Secondary);
        // A writer queues behind the statement that holds the primary.
        let waiting = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut w = pool.acquire_primary().await?;
                w.batch("BEGIN IMMEDIATE")?;
                w.execute("INSERT INTO t (a) VALUES (1)", &[], true)?;
                w.batch("COMMIT")?;
                Ok::<Home, LiteError>(w.home)
            }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        drop(first);
        let home = waiting.await.map_err(|e| LiteError::new(e.to_string()))??;
        assert_eq!(home, Home::Primary);
        // The other connections see the primary's commit.
        let mut second = second;
        let rows = second.query("SELECT a FROM t", &[], true, None)?;
        assert_eq!(rows.len(), 1);
        drop((second, third));
        // A connection whose transaction could not finish is replaced.
        let mut p = pool.acquire_primary().await?;
        p.batch("BEGIN IMMEDIATE")?;
        p.execute("INSERT INTO t (a) VALUES (2)", &[], true)?;
        drop(p);
        let mut p = pool.acquire().await?;
        assert_eq!(p.home, Home::Primary);
        assert_eq!(p.query("SELECT a FROM t", &[], true, None)?.len(), 1);
        pool.close();
        drop(p);
        assert!(pool.acquire().await.is_err(), "a closed pool lends nothing");
        Ok(())
    }

    #[tokio::test]
    async fn the_checkpointer_copies_commits_into_the_database_file() -> Result<(), LiteError> {
        let dir = tempfile::tempdir().map_err(|e| LiteError::new(e.to_string()))?;
        let file = dir.path().join("c.db");
        let pool = LitePool::open(&format!("sqlite://{}?mode=rwc", file.display()), 2)?;
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let mut c = pool.acquire_primary().await?;
        c.batch("CREATE TABLE t (b BLOB)")?;
        let before = size();
        // 256 KiB: far below the 10,000-page backstop, so only the
        // checkpointer can move it out of the WAL.
        c.execute("INSERT INTO t (b) VALUES (zeroblob(262144))", &[], false)?;
        drop(c);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while size() < before + 262_144 {
            assert!(
                std::time::Instant::now() < deadline,
                "the WAL was not checkpointed: {} bytes, {before} before",
                size()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Closing stops the checkpointer; the last connection to go removes
        // the WAL, as SQLite does on a clean shutdown.
        pool.close();
        assert!(!dir.path().join("c.db-wal").exists());
        Ok(())
    }
}
