//! Reminder state on registrations: the scan that claims due registrations
//! with row leases (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single
//! writer), "remind now", and the client app's push address.

use crate::audit::insert_audit;
use crate::db::DbConn;
use crate::funnel::open_of;
use crate::invites::insert_jobs;
use crate::registrations::{REG_COLS, registration_from_row};
use crate::rows::Row;
use crate::sql::Sql;
use crate::store::{Backend, SqlStore, commit};
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::ids::{TenantId, UserId};
use mdm_core::jobs::NewJob;
use mdm_core::ports::StoreResult;
use mdm_core::registrations::{DevicePlatform, new_registration_id};
use mdm_core::reminder_send::ReminderTarget;
use mdm_core::reminders::{
    AppPushProvider, AppPushToken, DecideReminder, DueReminder, ReminderStep,
};
use time::OffsetDateTime;

/// A first enrolment of a user with no certificate yet, pending, with a
/// downloaded profile or expired, and not followed by a newer registration
/// of the same user (alias `r`).
const REMINDABLE: &str = "r.purpose = 'enroll' AND r.user_id IS NOT NULL AND r.certificate_issued_at IS NULL \
     AND r.status IN ('pending', 'profile_downloaded', 'expired') \
     AND NOT EXISTS (SELECT 1 FROM registrations n WHERE n.tenant_id = r.tenant_id \
         AND n.user_id = r.user_id AND n.created_at > r.created_at)";

/// The base a reminder interval counts from: the later of the last
/// progress and the last reminder.
const BASE: &str = "CASE WHEN r.last_reminded_at IS NOT NULL AND r.last_reminded_at > r.updated_at \
     THEN r.last_reminded_at ELSE r.updated_at END";

fn due_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE OF r SKIP LOCKED",
        Backend::Sqlite => "",
    };
    format!(
        "SELECT r.id, r.tenant_id, r.user_id, r.reminders_sent, s.reminder_max \
         FROM registrations r JOIN tenant_settings s ON s.tenant_id = r.tenant_id \
         WHERE {REMINDABLE} AND r.given_up_at IS NULL AND s.reminder_max > 0 \
           AND (s.reminder_email = 1 OR s.reminder_push = 1) \
           AND {BASE} + s.reminder_interval_secs * 1000 <= $1 \
         ORDER BY r.updated_at, r.id LIMIT $2{lock}"
    )
}

async fn count_reminder(
    conn: &mut DbConn,
    tenant: TenantId,
    id: &str,
    at: OffsetDateTime,
) -> StoreResult<u64> {
    Sql::new(format!(
        "UPDATE registrations SET reminders_sent = reminders_sent + 1, last_reminded_at = $1 \
         WHERE tenant_id = $2 AND id IN (SELECT r.id FROM registrations r \
             WHERE r.tenant_id = $2 AND r.id = $3 AND {REMINDABLE})"
    ))
    .arg(at)
    .arg(tenant)
    .arg(id)
    .execute(conn)
    .await
}

impl SqlStore {
    pub(crate) async fn queue_reminder_tx(
        &self,
        tenant: TenantId,
        id: &str,
        job: &NewJob,
        audit: &AuditEntry,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        if count_reminder(&mut tx, tenant, id, at).await? == 0 {
            return Ok(false);
        }
        insert_jobs(&mut tx, std::slice::from_ref(job), 1).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await?;
        Ok(true)
    }

    pub(crate) async fn claim_due_reminders_tx(
        &self,
        now: OffsetDateTime,
        limit: i64,
        decide: &DecideReminder,
    ) -> StoreResult<usize> {
        let mut tx = self.begin_write().await?;
        let rows = Sql::new(due_sql(self.backend))
            .arg(now)
            .arg(limit)
            .fetch_all(&mut *tx)
            .await?;
        let mut due = Vec::with_capacity(rows.len());
        for row in &rows {
            let r = Row(row);
            due.push(DueReminder {
                tenant_id: r.parse("tenant_id")?,
                registration_id: r.text("id")?,
                user_id: r.opt_parse("user_id")?,
                reminders_sent: r.int("reminders_sent")?,
                reminder_max: r.int("reminder_max")?,
            });
        }
        for d in &due {
            match decide(d) {
                ReminderStep::Remind(job) => {
                    count_reminder(&mut tx, d.tenant_id, &d.registration_id, now).await?;
                    insert_jobs(&mut tx, std::slice::from_ref(&job), 1).await?;
                }
                ReminderStep::GiveUp(audit) => {
                    Sql::new(
                        "UPDATE registrations SET given_up_at = $1 WHERE tenant_id = $2 AND id = $3",
                    )
                    .arg(now)
                    .arg(d.tenant_id)
                    .arg(d.registration_id.as_str())
                    .execute(&mut *tx)
                    .await?;
                    insert_audit(&mut tx, self.backend, std::slice::from_ref(&audit)).await?;
                }
            }
        }
        commit(tx).await?;
        Ok(due.len())
    }

    pub(crate) async fn reminder_target_of(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<ReminderTarget>> {
        let cols = REG_COLS
            .split(',')
            .map(|c| format!("r.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        Sql::new(format!(
            "SELECT {cols}, r.app_push_provider, r.app_push_token, r.app_push_topic FROM registrations r \
             WHERE r.tenant_id = $1 AND r.id = $2 AND {REMINDABLE}"
        ))
        .arg(tenant)
        .arg(id)
        .fetch_optional_map(&self.pool, |row| {
            let r = Row(row);
            let push = match (r.opt_text("app_push_provider")?, r.opt_text("app_push_token")?) {
                (Some(p), Some(token)) => Some(AppPushToken {
                    provider: AppPushProvider::parse(&p).ok_or_else(|| {
                        StoreError::Backend(format!("unknown push provider {p:?}"))
                    })?,
                    token,
                    topic: r.opt_text("app_push_topic")?,
                }),
                _ => None,
            };
            Ok(ReminderTarget {
                registration: registration_from_row(row)?,
                push,
            })
        })
        .await
    }

    pub(crate) async fn record_app_push_tx(
        &self,
        tenant: TenantId,
        user: UserId,
        platform: DevicePlatform,
        push: Option<&AppPushToken>,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        // Without a new push address the stored one is kept.
        let changed = Sql::new(format!(
            "UPDATE registrations SET platform = $1, updated_at = $2, \
             app_push_provider = COALESCE($3, app_push_provider), app_push_token = COALESCE($4, app_push_token), \
             app_push_topic = CASE WHEN $3 IS NULL THEN app_push_topic ELSE $5 END \
             WHERE tenant_id = $6 AND id = ({})",
            open_of("$6", "$7")
        ))
        .arg(platform.as_str())
        .arg(at)
        .arg(push.map(|p| p.provider.as_str()))
        .arg(push.map(|p| p.token.as_str()))
        .arg(push.and_then(|p| p.topic.as_deref()))
        .arg(tenant)
        .arg(user)
        .execute(&mut *tx)
        .await?;
        if changed == 0 {
            Sql::new(
                "INSERT INTO registrations (id, tenant_id, user_id, platform, purpose, status, created_at, updated_at, \
                 reminders_sent, signed_in_at, app_push_provider, app_push_token, app_push_topic) \
                 VALUES ($1, $2, $3, $4, 'enroll', 'pending', $5, $5, 0, $5, $6, $7, $8)",
            )
            .arg(new_registration_id())
            .arg(tenant)
            .arg(user)
            .arg(platform.as_str())
            .arg(at)
            .arg(push.map(|p| p.provider.as_str()))
            .arg(push.map(|p| p.token.as_str()))
            .arg(push.and_then(|p| p.topic.as_deref()))
            .execute(&mut *tx)
            .await?;
        }
        commit(tx).await
    }

    pub(crate) async fn forget_app_push_of(&self, tenant: TenantId, id: &str) -> StoreResult<()> {
        let _turn = self.write_turn().await;
        Sql::new(
            "UPDATE registrations SET app_push_provider = NULL, app_push_token = NULL, app_push_topic = NULL \
             WHERE tenant_id = $1 AND id = $2",
        )
        .arg(tenant)
        .arg(id)
        .execute(&self.pool)
        .await
        .map(|_| ())
    }
}
