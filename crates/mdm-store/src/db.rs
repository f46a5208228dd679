//! What statements run on: a pool, one connection, and the rows they return,
//! each either SQLite (our own pool, [`crate::lite`]) or PostgreSQL (sqlx).

use crate::lite::{LiteConn, LiteError, LitePool, LiteRow};
use mdm_core::StoreError;
use rusqlite::types::Value;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, Row as _, Transaction};

/// The store's connections.
#[derive(Clone, Debug)]
pub(crate) enum DbPool {
    Sqlite(LitePool),
    Postgres(AnyPool),
}

/// One connection, held until dropped; inside a transaction or not.
pub(crate) enum DbConn {
    Sqlite(LiteConn),
    Postgres(PoolConnection<Any>),
    PostgresTx(Transaction<'static, Any>),
}

/// Where a statement runs: any connection of the pool, or this one.
pub(crate) enum Target<'e> {
    Pool(&'e DbPool),
    Conn(&'e mut DbConn),
}

impl<'e> From<&'e DbPool> for Target<'e> {
    fn from(p: &'e DbPool) -> Self {
        Target::Pool(p)
    }
}

impl<'e> From<&'e mut DbConn> for Target<'e> {
    fn from(c: &'e mut DbConn) -> Self {
        Target::Conn(c)
    }
}

impl DbPool {
    pub(crate) async fn acquire(&self) -> Result<DbConn, StoreError> {
        match self {
            DbPool::Sqlite(p) => Ok(DbConn::Sqlite(p.acquire().await.map_err(lite_error)?)),
            DbPool::Postgres(p) => Ok(DbConn::Postgres(
                p.acquire()
                    .await
                    .map_err(|e| StoreError::Backend(e.to_string()))?,
            )),
        }
    }

    pub(crate) async fn close(&self) {
        match self {
            DbPool::Sqlite(p) => p.close(),
            DbPool::Postgres(p) => p.close().await,
        }
    }
}

/// A SQLite failure as the store reports it (no unique rule: see
/// `sql::db_error` for those).
pub(crate) fn lite_error(e: LiteError) -> StoreError {
    StoreError::Backend(e.message)
}

/// A row of either backend.
pub(crate) enum DbRow {
    Sqlite(LiteRow),
    Postgres(AnyRow),
}

/// A column by name or position.
#[derive(Clone, Copy)]
pub(crate) enum Col<'a> {
    Name(&'a str),
    At(usize),
}

impl<'a> From<&'a str> for Col<'a> {
    fn from(name: &'a str) -> Self {
        Col::Name(name)
    }
}

impl From<usize> for Col<'_> {
    fn from(i: usize) -> Self {
        Col::At(i)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

impl DbRow {
    fn lite_value<'r>(row: &'r LiteRow, col: Col<'_>) -> Result<&'r Value, String> {
        match col {
            Col::Name(n) => row.by_name(n),
            Col::At(i) => row.at(i),
        }
        .ok_or_else(|| "no such column".to_string())
    }

    fn any_get<'r, T>(row: &'r AnyRow, col: Col<'_>) -> Result<Option<T>, String>
    where
        T: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
    {
        match col {
            Col::Name(n) => row.try_get::<Option<T>, _>(n),
            Col::At(i) => row.try_get::<Option<T>, _>(i),
        }
        .map_err(|e| e.to_string())
    }

    /// An integer column (NULL as `None`); another type is an error.
    pub(crate) fn opt_int<'c>(&self, col: impl Into<Col<'c>>) -> Result<Option<i64>, String> {
        let col = col.into();
        match self {
            DbRow::Sqlite(r) => match Self::lite_value(r, col)? {
                Value::Null => Ok(None),
                Value::Integer(i) => Ok(Some(*i)),
                other => Err(format!("expected an integer, found {}", kind(other))),
            },
            DbRow::Postgres(r) => Self::any_get::<i64>(r, col),
        }
    }

    /// A text column (NULL as `None`).
    pub(crate) fn opt_text<'c>(&self, col: impl Into<Col<'c>>) -> Result<Option<String>, String> {
        let col = col.into();
        match self {
            DbRow::Sqlite(r) => match Self::lite_value(r, col)? {
                Value::Null => Ok(None),
                Value::Text(s) => Ok(Some(s.clone())),
                other => Err(format!("expected text, found {}", kind(other))),
            },
            DbRow::Postgres(r) => Self::any_get::<String>(r, col),
        }
    }

    /// A blob column (NULL as `None`).
    pub(crate) fn opt_blob<'c>(&self, col: impl Into<Col<'c>>) -> Result<Option<Vec<u8>>, String> {
        let col = col.into();
        match self {
            DbRow::Sqlite(r) => match Self::lite_value(r, col)? {
                Value::Null => Ok(None),
                Value::Blob(b) => Ok(Some(b.clone())),
                other => Err(format!("expected a blob, found {}", kind(other))),
            },
            DbRow::Postgres(r) => Self::any_get::<Vec<u8>>(r, col),
        }
    }
}
