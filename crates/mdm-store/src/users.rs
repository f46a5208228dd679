//! End users: unique email per tenant, filtered listing with keyset paging
//! on the `(tenant_id, email)` index.

use crate::audit::insert_audit;
use crate::rows::{USER_COLS, user_from_row};
use crate::sql::{Arg, Sql, like_escape, page_size, rows_per_insert};
use crate::store::{SqlStore, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::ids::{TenantId, UserId};
use mdm_core::ports::{StoreResult, UserStore};
use mdm_core::users::{Page, User, UserQuery};

pub(crate) fn user_values(u: &User) -> [Arg; 12] {
    [
        u.id.into(),
        u.tenant_id.into(),
        u.email.as_str().into(),
        u.display_name.as_str().into(),
        u.password_hash.as_deref().into(),
        u.temporary_password.into(),
        u.source.as_str().into(),
        u.external_id.as_deref().into(),
        u.login_name.as_deref().into(),
        u.enabled.into(),
        u.created_at.into(),
        u.updated_at.into(),
    ]
}

/// The listing query: one more row than the page holds, to know whether a
/// next page exists.
fn users_sql(tenant: TenantId, q: &UserQuery, fetch: i64) -> Sql {
    let mut sql = Sql::new(format!(
        "SELECT {USER_COLS} FROM users WHERE tenant_id = $1"
    ))
    .arg(tenant);
    if let Some(after) = &q.after {
        sql.push(" AND email > ").bind(after.as_str());
    }
    if let Some(source) = q.source {
        sql.push(" AND source = ").bind(source.as_str());
    }
    if let Some(enabled) = q.enabled {
        sql.push(" AND enabled = ").bind(enabled);
    }
    if let Some(has) = q.has_device {
        sql.push(if has { " AND EXISTS" } else { " AND NOT EXISTS" }).push(
            " (SELECT 1 FROM devices d WHERE d.tenant_id = users.tenant_id AND d.user_id = users.id)",
        );
    }
    if let Some(invited) = q.invited {
        sql.push(if invited { " AND EXISTS" } else { " AND NOT EXISTS" }).push(
            " (SELECT 1 FROM invitations i WHERE i.tenant_id = users.tenant_id AND i.user_id = users.id)",
        );
    }
    if let Some(text) = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        // Emails are stored lower-cased; SQLite's lower() folds ASCII only.
        let pattern = format!("%{}%", like_escape(&text.to_lowercase()));
        sql.push(" AND (email LIKE ")
            .bind(pattern.as_str())
            .push(" ESCAPE '\\'");
        sql.push(" OR lower(display_name) LIKE ")
            .bind(pattern)
            .push(" ESCAPE '\\')");
    }
    sql.push(" ORDER BY email LIMIT ").bind(fetch);
    sql
}

#[async_trait]
impl UserStore for SqlStore {
    async fn create_users(&self, users: &[User], audit: &[AuditEntry]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for chunk in users.chunks(rows_per_insert(self.backend, 12)) {
            let mut sql = Sql::new(format!("INSERT INTO users ({USER_COLS}) VALUES "));
            for (i, user) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.tuple(user_values(user));
            }
            let sql = if chunk.len() > 1 { sql.one_off() } else { sql };
            sql.unique("user_email").execute(&mut *tx).await?;
        }
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn user(&self, tenant: TenantId, id: UserId) -> StoreResult<Option<User>> {
        let sql = Sql::new(format!(
            "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant)
        .arg(id);
        sql.fetch_optional_map(&self.pool, user_from_row).await
    }

    async fn user_by_email(&self, tenant: TenantId, email: &str) -> StoreResult<Option<User>> {
        let sql = Sql::new(format!(
            "SELECT {USER_COLS} FROM users WHERE tenant_id = $1 AND email = $2"
        ))
        .arg(tenant)
        .arg(email);
        sql.fetch_optional_map(&self.pool, user_from_row).await
    }

    async fn users(&self, tenant: TenantId, query: &UserQuery) -> StoreResult<Page<User>> {
        let limit = page_size(query.limit);
        let rows = users_sql(tenant, query, limit + 1)
            .fetch_all(&self.pool)
            .await?;
        let mut items = rows
            .iter()
            .map(user_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            items.last().map(|u| u.email.clone())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn count_users(&self, tenant: TenantId) -> StoreResult<i64> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM users WHERE tenant_id = $1")
            .arg(tenant)
            .fetch_one(&self.pool)
            .await?;
        crate::rows::Row(&row).int("n")
    }

    async fn update_user(&self, user: &User, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let changed = Sql::new(
            "UPDATE users SET email = $1, display_name = $2, password_hash = $3, temporary_password = $4, \
             source = $5, external_id = $6, login_name = $7, enabled = $8, updated_at = $9 \
             WHERE tenant_id = $10 AND id = $11",
        )
        .arg(user.email.as_str())
        .arg(user.display_name.as_str())
        .arg(user.password_hash.as_deref())
        .arg(user.temporary_password)
        .arg(user.source.as_str())
        .arg(user.external_id.as_deref())
        .arg(user.login_name.as_deref())
        .arg(user.enabled)
        .arg(user.updated_at)
        .arg(user.tenant_id)
        .arg(user.id)
        .unique("user_email")
        .execute(&mut *tx)
        .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn delete_user(
        &self,
        tenant: TenantId,
        id: UserId,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let deleted = Sql::new("DELETE FROM users WHERE tenant_id = $1 AND id = $2")
            .arg(tenant)
            .arg(id)
            .execute(&mut *tx)
            .await?;
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }
}
