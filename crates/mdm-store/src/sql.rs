//! The one way this crate talks SQL: a statement with its bound values
//! ([`Sql`]), values in the column types both backends share ([`Arg`]), and
//! the mapping of driver errors to [`StoreError`].
//!
//! Placeholders are `$1…$n` on both backends (SQLite accepts them).

use crate::db::{DbConn, DbPool, DbRow, Target, lite_error};
use crate::lite::LiteError;
use crate::store::Backend;
use mdm_core::StoreError;
use mdm_core::ids::{
    AdminId, CaId, ChallengeId, DeviceId, InvitationId, JobId, SyncRunId, TenantId, TokenId, UserId,
};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::{Any, Arguments, AssertSqlSafe, Executor};
use time::OffsetDateTime;

/// A value bound to a placeholder, typed so that a NULL is typed too
/// (PostgreSQL refuses a NULL of the wrong type).
#[derive(Clone, Debug)]
pub(crate) enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::Int(v)
    }
}

impl From<i32> for Arg {
    fn from(v: i32) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}

/// Flags are stored as 0/1 integers: the Any driver cannot read SQLite booleans.
impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Int(Some(i64::from(v)))
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(Some(v.to_string()))
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(Some(v))
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Self {
        Arg::Text(v.map(str::to_string))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::Text(v)
    }
}

/// Times are stored as unix milliseconds.
impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Blob(Some(v.to_vec()))
    }
}

impl From<OffsetDateTime> for Arg {
    fn from(v: OffsetDateTime) -> Self {
        Arg::Int(Some(to_millis(v)))
    }
}

impl From<Option<OffsetDateTime>> for Arg {
    fn from(v: Option<OffsetDateTime>) -> Self {
        Arg::Int(v.map(to_millis))
    }
}

/// JSON is stored as text.
impl From<&serde_json::Value> for Arg {
    fn from(v: &serde_json::Value) -> Self {
        Arg::Text(Some(v.to_string()))
    }
}

macro_rules! id_args {
    ($($id:ty),*) => {$(
        impl From<$id> for Arg {
            fn from(v: $id) -> Self {
                Arg::Text(Some(v.to_string()))
            }
        }
        impl From<Option<$id>> for Arg {
            fn from(v: Option<$id>) -> Self {
                Arg::Text(v.map(|v| v.to_string()))
            }
        }
    )*};
}

id_args!(
    TenantId,
    UserId,
    AdminId,
    TokenId,
    JobId,
    CaId,
    ChallengeId,
    InvitationId,
    SyncRunId,
    DeviceId
);

/// Unix milliseconds of a time (sub-millisecond precision is dropped).
pub(crate) fn to_millis(t: OffsetDateTime) -> i64 {
    let ms = t.unix_timestamp_nanos().div_euclid(1_000_000);
    i64::try_from(ms).unwrap_or(if ms < 0 { i64::MIN } else { i64::MAX })
}

/// The time at `ms` unix milliseconds.
pub(crate) fn from_millis(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| StoreError::Backend(format!("stored time {ms} out of range: {e}")))
}

/// A statement and its values, built in order.
pub(crate) struct Sql {
    text: String,
    args: Vec<Arg>,
    unique_rule: Option<&'static str>,
    persistent: bool,
}

impl Sql {
    /// A statement whose text may already hold `$n` placeholders; supply
    /// their values in order with [`Sql::arg`].
    pub(crate) fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            args: Vec::new(),
            unique_rule: None,
            persistent: true,
        }
    }

    /// The value of the next already written placeholder.
    pub(crate) fn arg(mut self, value: impl Into<Arg>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Appends text.
    pub(crate) fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub(crate) fn bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        let n = self.args.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    /// Appends `(v1, v2, …)` with a placeholder per value.
    pub(crate) fn tuple(&mut self, values: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self.push(")")
    }

    /// Appends `column = $n`, or `column IS NULL` when `value` is a NULL
    /// (how scopes match: a NULL tenant is the operator scope).
    pub(crate) fn eq_or_null(&mut self, column: &str, value: impl Into<Arg>) -> &mut Self {
        let value = value.into();
        let is_null = match &value {
            Arg::Int(v) => v.is_none(),
            Arg::Text(v) => v.is_none(),
            Arg::Blob(v) => v.is_none(),
        };
        self.push(column);
        if is_null {
            self.push(" IS NULL")
        } else {
            self.push(" = ").bind(value)
        }
    }

    /// A unique violation of this statement breaks the named rule
    /// (`StoreError::Conflict(rule)`) instead of being a backend failure.
    pub(crate) fn unique(mut self, rule: &'static str) -> Self {
        self.unique_rule = Some(rule);
        self
    }

    /// Marks a statement whose text varies (batch inserts), so it is not kept
    /// in the connection's prepared-statement cache.
    pub(crate) fn one_off(mut self) -> Self {
        self.persistent = false;
        self
    }

    #[cfg(test)]
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    fn build(self) -> Result<sqlx::query::Query<'static, Any, AnyArguments>, StoreError> {
        let mut args = AnyArguments::default();
        for arg in self.args {
            let added = match arg {
                Arg::Int(v) => args.add(v),
                Arg::Text(v) => args.add(v),
                Arg::Blob(v) => args.add(v),
            };
            added.map_err(|e| StoreError::Backend(format!("binding a value: {e}")))?;
        }
        Ok(sqlx::query_with(AssertSqlSafe(self.text), args).persistent(self.persistent))
    }

    /// Runs the statement on a SQLite connection and reads at most `limit` rows.
    fn lite_rows(
        &self,
        conn: &mut crate::lite::LiteConn,
        limit: Option<usize>,
    ) -> Result<Vec<DbRow>, StoreError> {
        conn.query(&self.text, &self.args, self.persistent, limit)
            .map(|rows| rows.into_iter().map(DbRow::Sqlite).collect())
            .map_err(|e| self.lite_error(e))
    }

    /// The SQLite error `e` of this statement as the store reports it.
    fn lite_error(&self, e: LiteError) -> StoreError {
        match self.unique_rule {
            Some(rule) if e.unique_violation => StoreError::Conflict(rule),
            _ => StoreError::Backend(e.message),
        }
    }

    /// Runs the statement; returns the number of rows it changed.
    pub(crate) async fn execute<'e>(self, ex: impl Into<Target<'e>>) -> Result<u64, StoreError> {
        let rule = self.unique_rule;
        let pg = match ex.into() {
            Target::Pool(DbPool::Sqlite(pool)) => {
                let mut conn = pool.acquire().await.map_err(lite_error)?;
                return conn
                    .execute(&self.text, &self.args, self.persistent)
                    .map_err(|e| self.lite_error(e));
            }
            Target::Conn(DbConn::Sqlite(conn)) => {
                return conn
                    .execute(&self.text, &self.args, self.persistent)
                    .map_err(|e| self.lite_error(e));
            }
            Target::Pool(DbPool::Postgres(pool)) => self.build()?.execute(pool).await,
            Target::Conn(DbConn::Postgres(c)) => self.build()?.execute(&mut **c).await,
            Target::Conn(DbConn::PostgresTx(t)) => self.build()?.execute(&mut **t).await,
        };
        pg.map(|r| r.rows_affected()).map_err(|e| db_error(e, rule))
    }

    /// Runs the statement and reads at most `limit` of its rows.
    async fn rows<'e>(
        self,
        ex: impl Into<Target<'e>>,
        limit: Option<usize>,
    ) -> Result<Vec<DbRow>, StoreError> {
        let rule = self.unique_rule;
        let pg = match ex.into() {
            Target::Pool(DbPool::Sqlite(pool)) => {
                let mut conn = pool.acquire().await.map_err(lite_error)?;
                return self.lite_rows(&mut conn, limit);
            }
            Target::Conn(DbConn::Sqlite(conn)) => return self.lite_rows(conn, limit),
            Target::Pool(DbPool::Postgres(pool)) => fetch(self.build()?, pool, limit).await,
            Target::Conn(DbConn::Postgres(c)) => fetch(self.build()?, &mut **c, limit).await,
            Target::Conn(DbConn::PostgresTx(t)) => fetch(self.build()?, &mut **t, limit).await,
        };
        pg.map(|rows| rows.into_iter().map(DbRow::Postgres).collect())
            .map_err(|e| db_error(e, rule))
    }

    pub(crate) async fn fetch_all<'e>(
        self,
        ex: impl Into<Target<'e>>,
    ) -> Result<Vec<DbRow>, StoreError> {
        self.rows(ex, None).await
    }

    /// Fetches at most one row and reads it with `read`.
    pub(crate) async fn fetch_optional_map<'e, T>(
        self,
        ex: impl Into<Target<'e>>,
        read: fn(&DbRow) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.fetch_optional(ex)
            .await?
            .as_ref()
            .map(read)
            .transpose()
    }

    pub(crate) async fn fetch_optional<'e>(
        self,
        ex: impl Into<Target<'e>>,
    ) -> Result<Option<DbRow>, StoreError> {
        Ok(self.rows(ex, Some(1)).await?.into_iter().next())
    }

    /// The one row the statement returns; `NotFound` when it returns none.
    pub(crate) async fn fetch_one<'e>(
        self,
        ex: impl Into<Target<'e>>,
    ) -> Result<DbRow, StoreError> {
        self.fetch_optional(ex).await?.ok_or(StoreError::NotFound)
    }
}

/// A PostgreSQL query's rows: all, or at most one.
async fn fetch<'c, E: Executor<'c, Database = Any>>(
    query: sqlx::query::Query<'static, Any, AnyArguments>,
    ex: E,
    limit: Option<usize>,
) -> Result<Vec<AnyRow>, sqlx::Error> {
    match limit {
        Some(1) => Ok(query.fetch_optional(ex).await?.into_iter().collect()),
        _ => query.fetch_all(ex).await,
    }
}

/// Maps a driver error: a unique violation to the statement's rule when it
/// names one, everything else to `Backend`.
pub(crate) fn db_error(e: sqlx::Error, unique_rule: Option<&'static str>) -> StoreError {
    if let (Some(rule), Some(db)) = (unique_rule, e.as_database_error())
        && db.is_unique_violation()
    {
        return StoreError::Conflict(rule);
    }
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        other => StoreError::Backend(other.to_string()),
    }
}

/// `s` with the LIKE wildcards `%`, `_` and the escape `\` escaped, for
/// `LIKE … ESCAPE '\'`.
pub(crate) fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `UPDATE table SET c1 = $1, c2 = $2, … WHERE ` for `sets`, in order; the
/// caller appends the conditions with [`Sql::push`] and [`Sql::bind`].
pub(crate) fn update_set(table: &str, sets: Vec<(&str, Arg)>) -> Sql {
    let mut sql = Sql::new(format!("UPDATE {table} SET "));
    for (i, (column, value)) in sets.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(column).push(" = ").bind(value);
    }
    sql.push(" WHERE ");
    sql
}

/// Rows per multi-row INSERT of `columns` values each.
///
/// SQLite finds a `$n` parameter by a linear scan of the statement's
/// parameter names, once when parsing and again when sqlx binds, so a
/// statement costs the square of its value count: inserting 100,000 users
/// took 44 s at 500 rows per statement and 6.4 s at 25 (debug build). About
/// 300 values per statement is the measured best. PostgreSQL has no such
/// cost, and fewer round trips win there.
/// ` ON CONFLICT (tenant_id) DO UPDATE SET c = excluded.c, …` for every
/// column of `cols` (a comma-separated list) but the key and those `kept`:
/// an upsert of a tenant's one row that replaces it whole.
pub(crate) fn replace_tenant_row(cols: &str, kept: &[&str]) -> String {
    let updates = cols
        .split(',')
        .map(str::trim)
        .filter(|c| *c != "tenant_id" && !kept.contains(c))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(" ON CONFLICT (tenant_id) DO UPDATE SET {updates}")
}

pub(crate) fn rows_per_insert(backend: Backend, columns: usize) -> usize {
    let values = match backend {
        Backend::Sqlite => 300,
        Backend::Postgres => 10_000,
    };
    (values / columns.max(1)).max(1)
}

/// A page size: `limit` clamped to 1–1000, 100 when absent.
pub(crate) fn page_size(limit: Option<u32>) -> i64 {
    i64::from(limit.unwrap_or(100).clamp(1, 1000))
}

/// The number of audit rows to read: `limit` clamped to 1–1001, 100 when
/// absent. The domain pages the audit trail itself and asks for one row
/// more than its page (at most 1000) to learn whether a next page exists.
pub(crate) fn audit_rows(limit: Option<u32>) -> i64 {
    i64::from(limit.unwrap_or(100).clamp(1, 1001))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_round_trip() {
        let t = OffsetDateTime::from_unix_timestamp(1_700_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let t = t + time::Duration::milliseconds(123) + time::Duration::microseconds(456);
        let ms = to_millis(t);
        assert_eq!(ms, 1_700_000_000_123);
        assert_eq!(
            from_millis(ms).ok(),
            Some(t - time::Duration::microseconds(456))
        );
        let before_epoch = OffsetDateTime::UNIX_EPOCH - time::Duration::microseconds(1500);
        assert_eq!(to_millis(before_epoch), -2);
    }

    #[test]
    fn placeholders_and_escapes() {
        let mut sql = Sql::new("SELECT 1 WHERE a = $1").arg(1i64);
        sql.push(" AND b IN ")
            .tuple([Arg::from("x"), Arg::from(2i64)]);
        assert_eq!(sql.text(), "SELECT 1 WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(like_escape("a_b%c\\"), "a\\_b\\%c\\\\");
        assert_eq!(page_size(None), 100);
        assert_eq!(page_size(Some(0)), 1);
        assert_eq!(page_size(Some(5000)), 1000);
        assert_eq!(audit_rows(Some(1001)), 1001);
        assert_eq!(audit_rows(Some(0)), 1);
    }
}
