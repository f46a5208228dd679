//! Invitations (with their send jobs), registration progress and mail
//! templates. A PIN is spent with one conditional update, like a SCEP
//! challenge.

use crate::audit::insert_audit;
use crate::db::DbConn;
use crate::db::DbRow;
use crate::funnel::{stamp_invited, stamp_user_stage};
use crate::jobs::{INSERT_JOBS, SKIP_QUEUED, job_values};
use crate::rows::Row;
use crate::sql::{Arg, Sql, page_size, rows_per_insert};
use crate::store::{SqlStore, WriteTx, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::ids::{InvitationId, TenantId, UserId};
use mdm_core::invites::{Delivery, DeliveryUpdate, Invitation, InvitationQuery};
use mdm_core::jobs::NewJob;
use mdm_core::mail_templates::MailTemplate;
use mdm_core::ports::{InviteStore, StoreResult};
use mdm_core::registration::{Progress, Stage};
use mdm_core::regtokens::Spend;
use mdm_core::users::Page;
use time::OffsetDateTime;

const INV_COLS: &str = "i.id, i.tenant_id, i.user_id, u.email, i.temporary_password, i.delivery, i.attempts, \
                        i.last_error, i.pin_hash, i.pin_expires_at, i.pin_used_at, i.revoked_at, i.created_at, i.sent_at";
const INV_FROM: &str = "FROM invitations i JOIN users u ON u.id = i.user_id";

fn invitation_from_row(row: &DbRow) -> Result<Invitation, StoreError> {
    let r = Row(row);
    let delivery = r.text("delivery")?;
    Ok(Invitation {
        id: r.parse("id")?,
        tenant_id: r.parse("tenant_id")?,
        user_id: r.parse("user_id")?,
        email: r.text("email")?,
        temporary_password: r.flag("temporary_password")?,
        delivery: Delivery::parse(&delivery)
            .ok_or_else(|| StoreError::Backend(format!("unknown delivery state {delivery}")))?,
        attempts: r.int32("attempts")?,
        last_error: r.opt_text("last_error")?,
        pin_hash: r.opt_text("pin_hash")?,
        pin_expires_at: r.opt_time("pin_expires_at")?,
        pin_used_at: r.opt_time("pin_used_at")?,
        revoked_at: r.opt_time("revoked_at")?,
        created_at: r.time("created_at")?,
        sent_at: r.opt_time("sent_at")?,
    })
}

fn stage_column(stage: Stage) -> &'static str {
    match stage {
        Stage::Invited => "invited_at",
        Stage::PinUsed => "pin_used_at",
        Stage::SignedIn => "signed_in_at",
        Stage::ProfileDownloaded => "profile_downloaded_at",
    }
}

/// Records the first time `user` reached `stage` (later times keep the first).
pub(crate) async fn upsert_stage(
    conn: &mut DbConn,
    tenant: TenantId,
    user: UserId,
    stage: Stage,
    at: OffsetDateTime,
) -> StoreResult<()> {
    let col = stage_column(stage);
    Sql::new(format!(
        "INSERT INTO registration_progress (tenant_id, user_id, {col}) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, user_id) DO UPDATE SET {col} = COALESCE(registration_progress.{col}, excluded.{col})"
    ))
    .arg(tenant)
    .arg(user)
    .arg(at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

pub(crate) async fn insert_jobs(tx: &mut WriteTx, jobs: &[NewJob], per: usize) -> StoreResult<()> {
    for chunk in jobs.chunks(per) {
        let mut sql = Sql::new(INSERT_JOBS);
        for (i, job) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.tuple(job_values(job));
        }
        sql.push(SKIP_QUEUED);
        let sql = if chunk.len() > 1 { sql.one_off() } else { sql };
        sql.execute(&mut **tx).await?;
    }
    Ok(())
}

#[async_trait]
impl InviteStore for SqlStore {
    async fn create_invitations(
        &self,
        invitations: &[Invitation],
        jobs: &[NewJob],
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        for inv in invitations {
            Sql::new(
                "UPDATE invitations SET revoked_at = $1 \
                 WHERE tenant_id = $2 AND user_id = $3 AND revoked_at IS NULL AND pin_used_at IS NULL",
            )
            .arg(inv.created_at)
            .arg(inv.tenant_id)
            .arg(inv.user_id)
            .execute(&mut *tx)
            .await?;
        }
        for chunk in invitations.chunks(rows_per_insert(self.backend, 8)) {
            let mut sql = Sql::new(
                "INSERT INTO invitations (id, tenant_id, user_id, temporary_password, delivery, attempts, created_at, sent_at) VALUES ",
            );
            for (i, inv) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.tuple([
                    Arg::from(inv.id),
                    inv.tenant_id.into(),
                    inv.user_id.into(),
                    inv.temporary_password.into(),
                    inv.delivery.as_str().into(),
                    inv.attempts.into(),
                    inv.created_at.into(),
                    inv.sent_at.into(),
                ]);
            }
            let sql = if chunk.len() > 1 { sql.one_off() } else { sql };
            sql.execute(&mut *tx).await?;
        }
        for inv in invitations {
            upsert_stage(
                &mut tx,
                inv.tenant_id,
                inv.user_id,
                Stage::Invited,
                inv.created_at,
            )
            .await?;
        }
        // One request invites users of one tenant at one time: stamp them in
        // batches; anything else one by one.
        let same = invitations.first().is_some_and(|first| {
            invitations
                .iter()
                .all(|i| i.tenant_id == first.tenant_id && i.created_at == first.created_at)
        });
        match invitations.first() {
            Some(first) if same => {
                let mut users: Vec<UserId> = invitations.iter().map(|i| i.user_id).collect();
                users.sort();
                users.dedup();
                stamp_invited(
                    &mut tx,
                    self.backend,
                    first.tenant_id,
                    &users,
                    first.created_at,
                )
                .await?;
            }
            _ => {
                for inv in invitations {
                    stamp_user_stage(
                        &mut tx,
                        inv.tenant_id,
                        inv.user_id,
                        Stage::Invited,
                        inv.created_at,
                        true,
                    )
                    .await?;
                }
            }
        }
        insert_jobs(&mut tx, jobs, rows_per_insert(self.backend, 9)).await?;
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn invitation(
        &self,
        tenant: TenantId,
        id: InvitationId,
    ) -> StoreResult<Option<Invitation>> {
        Sql::new(format!(
            "SELECT {INV_COLS} {INV_FROM} WHERE i.tenant_id = $1 AND i.id = $2"
        ))
        .arg(tenant)
        .arg(id)
        .fetch_optional_map(&self.pool, invitation_from_row)
        .await
    }

    async fn invitations(
        &self,
        tenant: TenantId,
        q: &InvitationQuery,
    ) -> StoreResult<Page<Invitation>> {
        let limit = page_size(q.limit);
        let mut sql = Sql::new(format!(
            "SELECT {INV_COLS} {INV_FROM} WHERE i.tenant_id = $1"
        ))
        .arg(tenant);
        if let Some(after) = &q.after {
            let id: InvitationId = after.parse().map_err(|_| StoreError::BadCursor)?;
            sql.push(" AND i.id < ").bind(id);
        }
        if let Some(user) = q.user_id {
            sql.push(" AND i.user_id = ").bind(user);
        }
        if let Some(d) = q.delivery {
            sql.push(" AND i.delivery = ").bind(d.as_str());
        }
        sql.push(" ORDER BY i.id DESC LIMIT ").bind(limit + 1);
        let rows = sql.fetch_all(&self.pool).await?;
        let mut items = rows
            .iter()
            .map(invitation_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let more = items.len() as i64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        let next = if more {
            items.last().map(|i| i.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn arm_invitation(
        &self,
        tenant: TenantId,
        id: InvitationId,
        pin: Option<(&str, OffsetDateTime)>,
        temporary_password: Option<(UserId, &str)>,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let changed = Sql::new(
            "UPDATE invitations SET pin_hash = $1, pin_expires_at = $2 WHERE tenant_id = $3 AND id = $4",
        )
        .arg(pin.map(|(h, _)| h))
        .arg(pin.map(|(_, e)| e))
        .arg(tenant)
        .arg(id)
        .execute(&mut *tx)
        .await?;
        if changed == 0 {
            return Err(StoreError::NotFound);
        }
        if let Some((user, hash)) = temporary_password {
            Sql::new(
                "UPDATE users SET password_hash = $1, temporary_password = 1 WHERE tenant_id = $2 AND id = $3",
            )
            .arg(hash)
            .arg(tenant)
            .arg(user)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn record_delivery(
        &self,
        tenant: TenantId,
        id: InvitationId,
        u: &DeliveryUpdate,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let sent_at = (u.delivery == Delivery::Sent).then_some(u.at);
        Sql::new(
            "UPDATE invitations SET delivery = $1, attempts = $2, last_error = $3, sent_at = COALESCE($4, sent_at) \
             WHERE tenant_id = $5 AND id = $6",
        )
        .arg(u.delivery.as_str())
        .arg(u.attempts)
        .arg(u.error.as_deref())
        .arg(sent_at)
        .arg(tenant)
        .arg(id)
        .execute(&mut *tx)
        .await?;
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn redeem_pin(
        &self,
        tenant: TenantId,
        user: UserId,
        pin_hash: &str,
        now: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<Spend<()>> {
        let mut tx = self.begin_write().await?;
        let spent = Sql::new(
            "UPDATE invitations SET pin_used_at = $1 \
             WHERE tenant_id = $2 AND user_id = $3 AND pin_hash = $4 \
               AND pin_used_at IS NULL AND revoked_at IS NULL AND pin_expires_at > $1",
        )
        .arg(now)
        .arg(tenant)
        .arg(user)
        .arg(pin_hash)
        .execute(&mut *tx)
        .await?;
        if spent > 0 {
            upsert_stage(&mut tx, tenant, user, Stage::PinUsed, now).await?;
            stamp_user_stage(&mut tx, tenant, user, Stage::PinUsed, now, true).await?;
            insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
            commit(tx).await?;
            return Ok(Spend::Spent(()));
        }
        let found = Sql::new(
            "SELECT pin_used_at, pin_expires_at, revoked_at FROM invitations \
             WHERE tenant_id = $1 AND user_id = $2 AND pin_hash = $3 ORDER BY id DESC LIMIT 1",
        )
        .arg(tenant)
        .arg(user)
        .arg(pin_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = found else {
            return Ok(Spend::Unknown);
        };
        let r = Row(&row);
        Ok(if r.opt_time("pin_used_at")?.is_some() {
            Spend::Used(())
        } else if r.opt_time("revoked_at")?.is_some() {
            // Replaced by a newer invitation: as good as unknown.
            Spend::Unknown
        } else {
            Spend::Expired(())
        })
    }

    async fn not_registered_users(&self, tenant: TenantId) -> StoreResult<Vec<UserId>> {
        let rows = Sql::new(
            "SELECT u.id FROM users u LEFT JOIN registration_progress p \
               ON p.tenant_id = u.tenant_id AND p.user_id = u.id \
             WHERE u.tenant_id = $1 AND u.enabled = 1 AND p.profile_downloaded_at IS NULL \
             ORDER BY u.email",
        )
        .arg(tenant)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Row(r).parse("id")).collect()
    }

    async fn record_stage(
        &self,
        tenant: TenantId,
        user: UserId,
        stage: Stage,
        at: OffsetDateTime,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        upsert_stage(&mut tx, tenant, user, stage, at).await?;
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn progress(&self, tenant: TenantId, user: UserId) -> StoreResult<Option<Progress>> {
        Sql::new(
            "SELECT invited_at, pin_used_at, signed_in_at, profile_downloaded_at FROM registration_progress \
             WHERE tenant_id = $1 AND user_id = $2",
        )
        .arg(tenant)
        .arg(user)
        .fetch_optional_map(&self.pool, |row| {
            let r = Row(row);
            Ok(Progress {
                invited_at: r.opt_time("invited_at")?,
                pin_used_at: r.opt_time("pin_used_at")?,
                signed_in_at: r.opt_time("signed_in_at")?,
                profile_downloaded_at: r.opt_time("profile_downloaded_at")?,
            })
        })
        .await
    }

    async fn mail_template(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> StoreResult<Option<MailTemplate>> {
        Sql::new(
            "SELECT subject, text_body, html_body FROM mail_templates WHERE tenant_id = $1 AND name = $2",
        )
        .arg(tenant)
        .arg(name)
        .fetch_optional_map(&self.pool, |row| {
            let r = Row(row);
            Ok(MailTemplate {
                subject: r.text("subject")?,
                text: r.text("text_body")?,
                html: r.text("html_body")?,
            })
        })
        .await
    }

    async fn put_mail_template(
        &self,
        tenant: TenantId,
        name: &str,
        template: Option<&MailTemplate>,
        at: OffsetDateTime,
        audit: &AuditEntry,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        Sql::new("DELETE FROM mail_templates WHERE tenant_id = $1 AND name = $2")
            .arg(tenant)
            .arg(name)
            .execute(&mut *tx)
            .await?;
        if let Some(t) = template {
            Sql::new(
                "INSERT INTO mail_templates (tenant_id, name, subject, text_body, html_body, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .arg(tenant)
            .arg(name)
            .arg(t.subject.as_str())
            .arg(t.text.as_str())
            .arg(t.html.as_str())
            .arg(at)
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }
}
