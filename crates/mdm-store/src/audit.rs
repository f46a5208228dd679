//! The audit trail: an append-only table with an autoincrement id, written
//! inside the transaction of every change, read newest first.

use crate::db::DbConn;
use crate::rows::{AUDIT_COLS, audit_from_row};
use crate::sql::{Arg, Sql, audit_rows, like_escape, rows_per_insert};
use crate::store::{Backend, SqlStore, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::{AuditEntry, AuditQuery, AuditRecord};
use mdm_core::ids::TenantId;
use mdm_core::ports::{AuditStore, StoreResult};

fn audit_values(e: &AuditEntry) -> [Arg; 10] {
    [
        e.tenant_id.into(),
        e.at.into(),
        e.actor.as_str().into(),
        e.actor_label.as_str().into(),
        e.action.as_str().into(),
        e.subject_type.as_str().into(),
        e.subject_id.as_str().into(),
        e.user_id.into(),
        e.device_id.as_deref().into(),
        (&e.details).into(),
    ]
}

/// Appends `entries` on `conn` (normally inside the transaction of the change
/// they describe).
pub(crate) async fn insert_audit(
    conn: &mut DbConn,
    backend: Backend,
    entries: &[AuditEntry],
) -> Result<(), StoreError> {
    for chunk in entries.chunks(rows_per_insert(backend, 10)) {
        let mut sql = Sql::new(
            "INSERT INTO audit (tenant_id, at, actor, actor_label, action, subject_type, subject_id, \
             user_id, device_id, details) VALUES ",
        );
        for (i, entry) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.tuple(audit_values(entry));
        }
        // A change's own few entries (up to four) keep their statement
        // prepared: its text depends only on the number of rows.
        let sql = if chunk.len() > 4 { sql.one_off() } else { sql };
        sql.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The audit query for `tenant` and `q`, newest first.
fn audit_sql(tenant: Option<TenantId>, q: &AuditQuery) -> Sql {
    let mut sql = Sql::new(format!("SELECT {AUDIT_COLS} FROM audit WHERE "));
    sql.eq_or_null("tenant_id", tenant);
    if let Some(actor) = &q.actor {
        sql.push(" AND actor = ").bind(actor.as_str());
    }
    match q.action.as_deref() {
        Some(prefix) if prefix.ends_with('.') => {
            sql.push(" AND action LIKE ")
                .bind(format!("{}%", like_escape(prefix)))
                .push(" ESCAPE '\\'");
        }
        Some(action) => {
            sql.push(" AND action = ").bind(action);
        }
        None => {}
    }
    if let Some(user) = q.user_id {
        sql.push(" AND user_id = ").bind(user);
    }
    if let Some(device) = &q.device_id {
        sql.push(" AND device_id = ").bind(device.as_str());
    }
    if let Some(from) = q.from {
        sql.push(" AND at >= ").bind(from);
    }
    if let Some(to) = q.to {
        sql.push(" AND at < ").bind(to);
    }
    if let Some(before) = q.before {
        sql.push(" AND id < ").bind(before);
    }
    sql.push(" ORDER BY id DESC LIMIT ")
        .bind(audit_rows(q.limit));
    sql
}

#[async_trait]
impl AuditStore for SqlStore {
    async fn append_audit(&self, entry: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(entry)).await?;
        commit(tx).await
    }

    async fn audit(
        &self,
        tenant: Option<TenantId>,
        query: &AuditQuery,
    ) -> StoreResult<Vec<AuditRecord>> {
        let rows = audit_sql(tenant, query).fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_entries_are_selected_by_null_tenant() {
        let sql = audit_sql(
            None,
            &AuditQuery {
                action: Some("user.".into()),
                ..AuditQuery::default()
            },
        );
        assert!(
            sql.text()
                .contains("WHERE tenant_id IS NULL AND action LIKE $1 ESCAPE")
        );
        assert!(sql.text().ends_with("ORDER BY id DESC LIMIT $2"));
    }
}
