//! Keyset paging newest first by `(created_at, id)`: the cursor is
//! `<created_at ms>.<id>` of the last row of the previous page.

use crate::sql::{Sql, page_size, to_millis};
use mdm_core::StoreError;
use mdm_core::users::Page;
use time::OffsetDateTime;

/// The cursor of a row.
pub(crate) fn cursor(at: OffsetDateTime, id: &str) -> String {
    format!("{}.{id}", to_millis(at))
}

fn parse(s: &str) -> Option<(i64, &str)> {
    let (ms, id) = s.split_once('.')?;
    Some((ms.parse().ok()?, id))
}

/// Appends the cursor condition (when `after` is given), the order and the
/// limit (one row more than a page, to see whether a next page exists).
/// Returns the page size.
pub(crate) fn finish(
    sql: &mut Sql,
    time_col: &str,
    id_col: &str,
    after: Option<&str>,
    limit: Option<u32>,
) -> Result<i64, StoreError> {
    if let Some(c) = after {
        let (ms, id) = parse(c).ok_or(StoreError::BadCursor)?;
        sql.push(&format!(" AND ({time_col} < "))
            .bind(ms)
            .push(&format!(" OR ({time_col} = "))
            .bind(ms)
            .push(&format!(" AND {id_col} < "))
            .bind(id.to_string())
            .push("))");
    }
    let limit = page_size(limit);
    sql.push(&format!(" ORDER BY {time_col} DESC, {id_col} DESC LIMIT "))
        .bind(limit + 1);
    Ok(limit)
}

/// The page of `items` (read with one extra row) of size `limit`.
pub(crate) fn page<T>(mut items: Vec<T>, limit: i64, key: impl Fn(&T) -> String) -> Page<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(key)
    } else {
        None
    };
    Page { items, next }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_parse() {
        assert_eq!(super::parse("17.reg-1"), Some((17, "reg-1")));
        assert_eq!(super::parse("x.reg-1"), None);
        assert_eq!(super::parse("17"), None);
    }
}
