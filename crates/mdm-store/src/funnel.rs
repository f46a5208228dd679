//! The funnel across registrations: the invitation, PIN and sign-in stages
//! stamped on the user's open registration (or a new one), the rows the
//! funnel counts, and the stalled list (ADR 0011).

use crate::db::DbConn;
use crate::paging;
use crate::registrations::{OPEN, REG_COLS, registration_from_row};
use crate::rows::Row;
use crate::sql::{Arg, Sql, rows_per_insert};
use crate::store::{Backend, SqlStore};
use async_trait::async_trait;
use mdm_core::audit::AuditEntry;
use mdm_core::funnel::{FUNNEL_MAX_ROWS, FunnelStage, StalledFilter, StalledRegistration};
use mdm_core::ids::{TenantId, UserId};
use mdm_core::jobs::NewJob;
use mdm_core::ports::{FunnelStore, StoreResult};
use mdm_core::registration::Stage;
use mdm_core::registrations::{DevicePlatform, Registration, new_registration_id};
use mdm_core::reminder_send::ReminderTarget;
use mdm_core::reminders::{AppPushToken, DecideReminder};
use mdm_core::users::Page;
use time::OffsetDateTime;

/// The statuses a new profile or an early stage attaches to.
pub(crate) const ATTACHABLE: &str = "('pending', 'profile_downloaded')";

/// The user's newest attachable first enrolment (subquery text; `$t`, `$u`
/// are the placeholders of tenant and user).
pub(crate) fn open_of(t: &str, u: &str) -> String {
    format!(
        "SELECT id FROM registrations WHERE tenant_id = {t} AND user_id = {u} AND purpose = 'enroll' \
         AND status IN {ATTACHABLE} ORDER BY created_at DESC, id DESC LIMIT 1"
    )
}

fn stage_column(stage: Stage) -> &'static str {
    match stage {
        Stage::Invited => "invited_at",
        Stage::PinUsed => "pin_used_at",
        Stage::SignedIn => "signed_in_at",
        Stage::ProfileDownloaded => "profile_downloaded_at",
    }
}

fn funnel_column(stage: FunnelStage) -> &'static str {
    match stage {
        FunnelStage::Invited => "invited_at",
        FunnelStage::PinUsed => "pin_used_at",
        FunnelStage::SignedIn => "signed_in_at",
        FunnelStage::ProfileDownloaded => "profile_downloaded_at",
        FunnelStage::CertificateIssued => "certificate_issued_at",
        FunnelStage::CheckedIn => "checked_in_at",
        FunnelStage::Active => "active_at",
    }
}

/// Stamps `stage` (first time kept) on the user's open registration and
/// marks it as progressed now. With none open, `open_new` opens one (an
/// invitation, a registration sign-in); otherwise nothing changes (a portal
/// sign-in to look at one's devices is not a registration).
pub(crate) async fn stamp_user_stage(
    conn: &mut DbConn,
    tenant: TenantId,
    user: UserId,
    stage: Stage,
    at: OffsetDateTime,
    open_new: bool,
) -> StoreResult<()> {
    let col = stage_column(stage);
    let changed = Sql::new(format!(
        "UPDATE registrations SET {col} = COALESCE({col}, $1), updated_at = $1 \
         WHERE tenant_id = $2 AND id = ({})",
        open_of("$2", "$3")
    ))
    .arg(at)
    .arg(tenant)
    .arg(user)
    .execute(&mut *conn)
    .await?;
    if changed > 0 || !open_new {
        return Ok(());
    }
    Sql::new(format!(
        "INSERT INTO registrations (id, tenant_id, user_id, platform, purpose, status, created_at, updated_at, \
         reminders_sent, {col}) VALUES ($1, $2, $3, NULL, 'enroll', 'pending', $4, $4, 0, $4)"
    ))
    .arg(new_registration_id())
    .arg(tenant)
    .arg(user)
    .arg(at)
    .execute(&mut *conn)
    .await
    .map(|_| ())
}

/// Stamps "invited" for many users of one tenant at one time, as
/// [`stamp_user_stage`] does for one, in two statements per chunk: one
/// update of their open registrations, one insert of a registration for each
/// user without one.
pub(crate) async fn stamp_invited(
    conn: &mut DbConn,
    backend: Backend,
    tenant: TenantId,
    users: &[UserId],
    at: OffsetDateTime,
) -> StoreResult<()> {
    for chunk in users.chunks(rows_per_insert(backend, 2)) {
        let mut update = Sql::new(
            "UPDATE registrations SET invited_at = COALESCE(invited_at, $1), updated_at = $1 \
             WHERE tenant_id = $2 AND id IN (SELECT r.id FROM registrations r WHERE r.tenant_id = $2 \
               AND r.purpose = 'enroll' AND r.status IN ('pending', 'profile_downloaded') \
               AND NOT EXISTS (SELECT 1 FROM registrations n WHERE n.tenant_id = r.tenant_id \
                   AND n.user_id = r.user_id AND n.purpose = 'enroll' \
                   AND n.status IN ('pending', 'profile_downloaded') \
                   AND (n.created_at > r.created_at OR (n.created_at = r.created_at AND n.id > r.id))) \
               AND r.user_id IN (",
        )
        .arg(at)
        .arg(tenant);
        for (i, u) in chunk.iter().enumerate() {
            if i > 0 {
                update.push(", ");
            }
            update.bind(*u);
        }
        update.push("))");
        update.one_off().execute(&mut *conn).await?;
        let mut insert = Sql::new(
            "INSERT INTO registrations (id, tenant_id, user_id, platform, purpose, status, created_at, updated_at, \
             reminders_sent, invited_at) \
             SELECT v.column1, $1, v.column2, NULL, 'enroll', 'pending', $2, $2, 0, $2 FROM (VALUES ",
        )
        .arg(tenant)
        .arg(at);
        for (i, u) in chunk.iter().enumerate() {
            if i > 0 {
                insert.push(", ");
            }
            insert.tuple([Arg::from(new_registration_id()), Arg::from(*u)]);
        }
        insert.push(&format!(
            ") AS v WHERE NOT EXISTS (SELECT 1 FROM registrations r WHERE r.tenant_id = $1 \
             AND r.user_id = v.column2 AND r.purpose = 'enroll' AND r.status IN {ATTACHABLE})"
        ));
        insert.one_off().execute(&mut *conn).await?;
    }
    Ok(())
}

/// `REG_COLS` with a table alias.
fn cols_of(alias: &str) -> String {
    REG_COLS
        .split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The time of the furthest stage a registration reached (stages are
/// stamped in order).
const SINCE: &str = "COALESCE(r.active_at, r.checked_in_at, r.certificate_issued_at, r.profile_downloaded_at, \
                     r.signed_in_at, r.pin_used_at, r.invited_at, r.created_at)";

/// Open registrations, and expired first enrolments not followed by a newer
/// registration of the same user (their user still has to start again).
pub(crate) fn stuck_condition() -> String {
    format!(
        "(r.status IN {OPEN} OR (r.status = 'expired' AND r.purpose = 'enroll' AND r.user_id IS NOT NULL \
          AND NOT EXISTS (SELECT 1 FROM registrations n WHERE n.tenant_id = r.tenant_id \
              AND n.user_id = r.user_id AND n.created_at > r.created_at)))"
    )
}

#[async_trait]
impl FunnelStore for SqlStore {
    async fn open_registration(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> StoreResult<Option<Registration>> {
        Sql::new(format!(
            "SELECT {REG_COLS} FROM registrations WHERE tenant_id = $1 AND id = ({})",
            open_of("$1", "$2")
        ))
        .arg(tenant)
        .arg(user)
        .fetch_optional_map(&self.pool, registration_from_row)
        .await
    }

    async fn funnel_registrations(
        &self,
        tenant: TenantId,
        from: OffsetDateTime,
        to: OffsetDateTime,
        platform: Option<DevicePlatform>,
    ) -> StoreResult<Vec<Registration>> {
        let mut sql = Sql::new(format!(
            "SELECT {REG_COLS} FROM registrations WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3"
        ))
        .arg(tenant)
        .arg(from)
        .arg(to);
        if let Some(p) = platform {
            sql.push(" AND platform = ").bind(p.as_str());
        }
        sql.push(" ORDER BY created_at, id LIMIT ")
            .bind(FUNNEL_MAX_ROWS);
        sql.one_off()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(registration_from_row)
            .collect()
    }

    async fn stalled_registrations(
        &self,
        f: &StalledFilter,
    ) -> StoreResult<Page<StalledRegistration>> {
        let mut sql = Sql::new(format!(
            "SELECT {}, u.email, u.display_name FROM registrations r \
             LEFT JOIN users u ON u.tenant_id = r.tenant_id AND u.id = r.user_id \
             WHERE r.tenant_id = ",
            cols_of("r")
        ));
        sql.bind(f.tenant_id);
        sql.push(&format!(" AND {} AND {SINCE} < ", stuck_condition()))
            .bind(f.before);
        if let Some(p) = f.platform {
            sql.push(" AND r.platform = ").bind(p.as_str());
        }
        if let Some(stage) = f.stage {
            let at = FunnelStage::ALL
                .iter()
                .position(|s| *s == stage)
                .unwrap_or(0);
            if stage != FunnelStage::Invited {
                sql.push(&format!(" AND r.{} IS NOT NULL", funnel_column(stage)));
            }
            for later in &FunnelStage::ALL[at + 1..] {
                sql.push(&format!(" AND r.{} IS NULL", funnel_column(*later)));
            }
        }
        let limit = paging::finish(
            &mut sql,
            "r.created_at",
            "r.id",
            f.after.as_deref(),
            f.limit,
        )?;
        let rows = sql.one_off().fetch_all(&self.pool).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let reg = registration_from_row(row)?;
            let r = Row(row);
            let (stage, since) = FunnelStage::furthest(&reg);
            items.push(StalledRegistration {
                registration_id: reg.id,
                user_id: reg.user_id,
                email: r.opt_text("email")?,
                display_name: r.opt_text("display_name")?,
                platform: reg.platform,
                stage,
                since,
                status: reg.status,
                reminders_sent: reg.reminders_sent,
                last_reminded_at: reg.last_reminded_at,
                given_up_at: reg.given_up_at,
                created_at: reg.created_at,
            });
        }
        Ok(paging::page(items, limit, |s| {
            paging::cursor(s.created_at, &s.registration_id)
        }))
    }

    async fn queue_reminder(
        &self,
        tenant: TenantId,
        id: &str,
        job: &NewJob,
        audit: &AuditEntry,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        self.queue_reminder_tx(tenant, id, job, audit, at).await
    }

    async fn claim_due_reminders(
        &self,
        now: OffsetDateTime,
        limit: i64,
        decide: &DecideReminder,
    ) -> StoreResult<usize> {
        self.claim_due_reminders_tx(now, limit, decide).await
    }

    async fn reminder_target(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<ReminderTarget>> {
        self.reminder_target_of(tenant, id).await
    }

    async fn record_app_push(
        &self,
        tenant: TenantId,
        user: UserId,
        platform: DevicePlatform,
        push: Option<&AppPushToken>,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        self.record_app_push_tx(tenant, user, platform, push, at)
            .await
    }

    async fn forget_app_push(&self, tenant: TenantId, id: &str) -> StoreResult<()> {
        self.forget_app_push_of(tenant, id).await
    }
}
