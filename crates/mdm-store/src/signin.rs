//! Sign-in throttling, browser sessions and one-time registration tokens.

use crate::audit::insert_audit;
use crate::db::DbRow;
use crate::invites::upsert_stage;
use crate::rows::Row;
use crate::sql::Sql;
use crate::store::{SqlStore, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::ids::{TenantId, UserId};
use mdm_core::ports::{SignInStore, StoreResult};
use mdm_core::registration::Stage;
use mdm_core::regtokens::{RegToken, Spend, TokenPurpose};
use mdm_core::websession::{SessionKind, WebSession};
use time::OffsetDateTime;

const SESSION_COLS: &str =
    "id_hash, tenant_id, user_id, kind, csrf, must_set_password, created_at, expires_at";
const TOKEN_COLS: &str =
    "token_hash, tenant_id, user_id, purpose, platform, created_at, expires_at, used_at";

fn session_from_row(row: &DbRow) -> Result<WebSession, StoreError> {
    let r = Row(row);
    let kind = r.text("kind")?;
    Ok(WebSession {
        id_hash: r.text("id_hash")?,
        tenant_id: r.parse("tenant_id")?,
        user_id: r.parse("user_id")?,
        kind: SessionKind::parse(&kind)
            .ok_or_else(|| StoreError::Backend(format!("unknown session kind {kind}")))?,
        csrf: r.text("csrf")?,
        must_set_password: r.flag("must_set_password")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
    })
}

fn token_from_row(row: &DbRow) -> Result<RegToken, StoreError> {
    let r = Row(row);
    let purpose = r.text("purpose")?;
    Ok(RegToken {
        token_hash: r.text("token_hash")?,
        tenant_id: r.parse("tenant_id")?,
        user_id: r.parse("user_id")?,
        purpose: TokenPurpose::parse(&purpose)
            .ok_or_else(|| StoreError::Backend(format!("unknown token purpose {purpose}")))?,
        platform: r.opt_text("platform")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        used_at: r.opt_time("used_at")?,
    })
}

#[async_trait]
impl SignInStore for SqlStore {
    async fn record_failed_attempt(
        &self,
        tenant: TenantId,
        keys: &[String],
        at: OffsetDateTime,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for key in keys {
            Sql::new("INSERT INTO auth_attempts (id, tenant_id, throttle_key, at) VALUES ($1, $2, $3, $4)")
                .arg(uuid::Uuid::now_v7().to_string())
                .arg(tenant)
                .arg(key.as_str())
                .arg(at)
                .execute(&mut *tx)
                .await?;
        }
        Sql::new("DELETE FROM auth_attempts WHERE at < $1")
            .arg(at - time::Duration::days(1))
            .execute(&mut *tx)
            .await?;
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn failed_attempts(
        &self,
        tenant: TenantId,
        key: &str,
        since: OffsetDateTime,
    ) -> StoreResult<i64> {
        let row = Sql::new(
            "SELECT COUNT(*) AS n FROM auth_attempts WHERE tenant_id = $1 AND throttle_key = $2 AND at > $3",
        )
        .arg(tenant)
        .arg(key)
        .arg(since)
        .fetch_one(&self.pool)
        .await?;
        Row(&row).int("n")
    }

    async fn record_sign_in(
        &self,
        tenant: TenantId,
        user: UserId,
        clear_key: &str,
        session: Option<&WebSession>,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Sql::new("DELETE FROM auth_attempts WHERE tenant_id = $1 AND throttle_key = $2")
            .arg(tenant)
            .arg(clear_key)
            .execute(&mut *tx)
            .await?;
        if let Some(s) = session {
            Sql::new("DELETE FROM web_sessions WHERE expires_at < $1")
                .arg(at)
                .execute(&mut *tx)
                .await?;
            Sql::new(format!(
                "INSERT INTO web_sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
            ))
            .arg(s.id_hash.as_str())
            .arg(s.tenant_id)
            .arg(s.user_id)
            .arg(s.kind.as_str())
            .arg(s.csrf.as_str())
            .arg(s.must_set_password)
            .arg(s.created_at)
            .arg(s.expires_at)
            .execute(&mut *tx)
            .await?;
        }
        upsert_stage(&mut tx, tenant, user, Stage::SignedIn, at).await?;
        // A portal session is not a registration: it only stamps an open one.
        let registering = session.is_none_or(|s| s.kind != SessionKind::Portal);
        crate::funnel::stamp_user_stage(&mut tx, tenant, user, Stage::SignedIn, at, registering)
            .await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn web_session(
        &self,
        tenant: TenantId,
        id_hash: &str,
    ) -> StoreResult<Option<WebSession>> {
        Sql::new(format!(
            "SELECT {SESSION_COLS} FROM web_sessions WHERE tenant_id = $1 AND id_hash = $2"
        ))
        .arg(tenant)
        .arg(id_hash)
        .fetch_optional_map(&self.pool, session_from_row)
        .await
    }

    async fn delete_web_session(&self, tenant: TenantId, id_hash: &str) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        Sql::new("DELETE FROM web_sessions WHERE tenant_id = $1 AND id_hash = $2")
            .arg(tenant)
            .arg(id_hash)
            .execute(&self.pool)
            .await
            .map(|_| ())
    }

    async fn set_own_password(
        &self,
        tenant: TenantId,
        user: UserId,
        password_hash: &str,
        session_id_hash: &str,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let changed = Sql::new(
            "UPDATE users SET password_hash = $1, temporary_password = 0, updated_at = $2 \
             WHERE tenant_id = $3 AND id = $4",
        )
        .arg(password_hash)
        .arg(at)
        .arg(tenant)
        .arg(user)
        .execute(&mut *tx)
        .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        Sql::new(
            "UPDATE web_sessions SET must_set_password = 0 WHERE tenant_id = $1 AND id_hash = $2",
        )
        .arg(tenant)
        .arg(session_id_hash)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn create_reg_token(&self, t: &RegToken, audit: &[AuditEntry]) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Sql::new("DELETE FROM registration_tokens WHERE expires_at < $1")
            .arg(t.created_at - time::Duration::days(1))
            .execute(&mut *tx)
            .await?;
        Sql::new(format!(
            "INSERT INTO registration_tokens ({TOKEN_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .arg(t.token_hash.as_str())
        .arg(t.tenant_id)
        .arg(t.user_id)
        .arg(t.purpose.as_str())
        .arg(t.platform.as_deref())
        .arg(t.created_at)
        .arg(t.expires_at)
        .arg(t.used_at)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn redeem_reg_token(
        &self,
        tenant: TenantId,
        token_hash: &str,
        purpose: TokenPurpose,
        now: OffsetDateTime,
    ) -> StoreResult<Spend<RegToken>> {
        let _turn = self.write_turn().await;
        let spent = Sql::new(format!(
            "UPDATE registration_tokens SET used_at = $1 \
             WHERE tenant_id = $2 AND token_hash = $3 AND purpose = $4 AND used_at IS NULL AND expires_at > $1 \
             RETURNING {TOKEN_COLS}"
        ))
        .arg(now)
        .arg(tenant)
        .arg(token_hash)
        .arg(purpose.as_str())
        .fetch_optional_map(&self.pool, token_from_row)
        .await?;
        if let Some(t) = spent {
            return Ok(Spend::Spent(t));
        }
        let found = Sql::new(format!(
            "SELECT {TOKEN_COLS} FROM registration_tokens WHERE tenant_id = $1 AND token_hash = $2 AND purpose = $3"
        ))
        .arg(tenant)
        .arg(token_hash)
        .arg(purpose.as_str())
        .fetch_optional_map(&self.pool, token_from_row)
        .await?;
        Ok(match found {
            None => Spend::Unknown,
            Some(t) if t.used_at.is_some() => Spend::Used(t),
            Some(t) => Spend::Expired(t),
        })
    }
}
