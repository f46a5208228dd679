//! API tokens and administrator accounts. A scope is stored as a nullable
//! `tenant_id`: NULL is the operator scope.

use crate::audit::insert_audit;
use crate::rows::{ADMIN_COLS, Row, TOKEN_COLS, admin_from_row, token_from_row};
use crate::sql::{Arg, Sql};
use crate::store::{SqlStore, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::ids::{AdminId, TokenId};
use mdm_core::ports::{AccessStore, StoreResult};
use mdm_core::tokens::{Admin, ApiToken, Scope};
use time::OffsetDateTime;

#[async_trait]
impl AccessStore for SqlStore {
    async fn create_token(&self, token: &ApiToken, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut sql = Sql::new(format!("INSERT INTO api_tokens ({TOKEN_COLS}) VALUES "));
        sql.tuple([
            Arg::from(token.id),
            token.scope.tenant().into(),
            token.name.as_str().into(),
            token.token_hash.as_str().into(),
            token.created_at.into(),
            token.expires_at.into(),
            token.revoked_at.into(),
        ]);
        sql.unique("token_hash").execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn token_by_hash(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let sql = Sql::new(format!(
            "SELECT {TOKEN_COLS} FROM api_tokens WHERE token_hash = $1"
        ))
        .arg(token_hash);
        sql.fetch_optional_map(&self.pool, token_from_row).await
    }

    async fn tokens(&self, scope: Scope) -> StoreResult<Vec<ApiToken>> {
        let mut sql = Sql::new(format!("SELECT {TOKEN_COLS} FROM api_tokens WHERE "));
        sql.eq_or_null("tenant_id", scope.tenant())
            .push(" ORDER BY created_at DESC, id DESC");
        let rows = sql.fetch_all(&self.pool).await?;
        rows.iter().map(token_from_row).collect()
    }

    async fn revoke_token(
        &self,
        scope: Scope,
        id: TokenId,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // A token revoked twice keeps its first revocation time.
        let mut sql = Sql::new(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2 AND ",
        )
        .arg(at)
        .arg(id);
        sql.eq_or_null("tenant_id", scope.tenant());
        if sql.execute(&mut *tx).await? == 0 {
            return Err(StoreError::NotFound);
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn create_admin(&self, admin: &Admin, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut sql = Sql::new(format!("INSERT INTO admins ({ADMIN_COLS}) VALUES "));
        sql.tuple([
            Arg::from(admin.id),
            admin.scope.tenant().into(),
            admin.email.as_str().into(),
            admin.password_hash.as_str().into(),
            admin.created_at.into(),
        ]);
        sql.unique("admin_email").execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn admin(&self, id: AdminId) -> StoreResult<Option<Admin>> {
        let sql = Sql::new(format!("SELECT {ADMIN_COLS} FROM admins WHERE id = $1")).arg(id);
        sql.fetch_optional_map(&self.pool, admin_from_row).await
    }

    async fn admin_by_email(&self, scope: Scope, email: &str) -> StoreResult<Option<Admin>> {
        let mut sql = Sql::new(format!(
            "SELECT {ADMIN_COLS} FROM admins WHERE email = $1 AND "
        ))
        .arg(email);
        sql.eq_or_null("tenant_id", scope.tenant());
        sql.fetch_optional_map(&self.pool, admin_from_row).await
    }

    async fn count_admins(&self) -> StoreResult<i64> {
        let row = Sql::new("SELECT COUNT(*) AS n FROM admins")
            .fetch_one(&self.pool)
            .await?;
        Row(&row).int("n")
    }
}
