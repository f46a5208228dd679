//! Registration attempts: saved whole by the profile use case, advanced by
//! SCEP issuance and check-ins (in their own transactions), ended by cancel,
//! expiry or a SCEP refusal.

use crate::audit::insert_audit;
use crate::db::DbRow;
use crate::jobs::insert_job;
use crate::paging;
use crate::pki::insert_challenge;
use crate::rows::Row;
use crate::sql::{Arg, Sql};
use crate::store::{SqlStore, WriteTx, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::audit::AuditEntry;
use mdm_core::ids::TenantId;
use mdm_core::jobs::NewJob;
use mdm_core::pki::ScepChallenge;
use mdm_core::ports::{RegistrationStep, RegistrationStore, StoreResult};
use mdm_core::registrations::{
    DevicePlatform, EndRegistration, Registration, RegistrationPurpose, RegistrationQuery,
    RegistrationStatus,
};
use mdm_core::users::Page;

pub(crate) const REG_COLS: &str = "id, tenant_id, user_id, platform, purpose, device_id, status, reason, \
     created_at, updated_at, expires_at, invited_at, pin_used_at, signed_in_at, profile_downloaded_at, \
     certificate_issued_at, checked_in_at, active_at, reminders_sent, last_reminded_at, given_up_at";

/// The statuses a registration can still advance from (SQL list).
pub(crate) const OPEN: &str =
    "('pending', 'profile_downloaded', 'certificate_issued', 'checked_in')";

/// Inserts the registration or replaces the stored one. An upsert: columns
/// outside REG_COLS (the client app's push token) keep their value when a
/// profile attaches to the registration. The text is the same every time,
/// so the statement stays prepared.
fn upsert_registration(g: &Registration) -> Sql {
    let mut sql = Sql::new(format!("INSERT INTO registrations ({REG_COLS}) VALUES "));
    sql.tuple(values(g));
    let updates = REG_COLS
        .split(',')
        .map(str::trim)
        .filter(|c| !matches!(*c, "id" | "tenant_id" | "created_at"))
        .map(|c| format!("{c} = excluded.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    sql.push(&format!(
        " ON CONFLICT (id) DO UPDATE SET {updates} WHERE registrations.tenant_id = excluded.tenant_id"
    ));
    sql.unique("registration")
}

fn bad(col: &str, v: &str) -> StoreError {
    StoreError::Backend(format!("column {col}: unknown value {v:?}"))
}

pub(crate) fn registration_from_row(row: &DbRow) -> Result<Registration, StoreError> {
    let r = Row(row);
    let platform = r.opt_text("platform")?;
    let purpose = r.text("purpose")?;
    let status = r.text("status")?;
    Ok(Registration {
        id: r.text("id")?,
        tenant_id: r.parse("tenant_id")?,
        user_id: r.opt_parse("user_id")?,
        platform: match platform {
            Some(p) => Some(DevicePlatform::parse(&p).ok_or_else(|| bad("platform", &p))?),
            None => None,
        },
        purpose: RegistrationPurpose::parse(&purpose).ok_or_else(|| bad("purpose", &purpose))?,
        device_id: r.opt_parse("device_id")?,
        status: RegistrationStatus::parse(&status).ok_or_else(|| bad("status", &status))?,
        reason: r.opt_text("reason")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
        expires_at: r.opt_time("expires_at")?,
        invited_at: r.opt_time("invited_at")?,
        pin_used_at: r.opt_time("pin_used_at")?,
        signed_in_at: r.opt_time("signed_in_at")?,
        profile_downloaded_at: r.opt_time("profile_downloaded_at")?,
        certificate_issued_at: r.opt_time("certificate_issued_at")?,
        checked_in_at: r.opt_time("checked_in_at")?,
        active_at: r.opt_time("active_at")?,
        reminders_sent: r.int("reminders_sent")?,
        last_reminded_at: r.opt_time("last_reminded_at")?,
        given_up_at: r.opt_time("given_up_at")?,
    })
}

pub(crate) fn values(g: &Registration) -> Vec<Arg> {
    vec![
        g.id.as_str().into(),
        g.tenant_id.into(),
        g.user_id.into(),
        g.platform.map(|p| p.as_str()).into(),
        g.purpose.as_str().into(),
        g.device_id.into(),
        g.status.as_str().into(),
        g.reason.as_deref().into(),
        g.created_at.into(),
        g.updated_at.into(),
        g.expires_at.into(),
        g.invited_at.into(),
        g.pin_used_at.into(),
        g.signed_in_at.into(),
        g.profile_downloaded_at.into(),
        g.certificate_issued_at.into(),
        g.checked_in_at.into(),
        g.active_at.into(),
        g.reminders_sent.into(),
        g.last_reminded_at.into(),
        g.given_up_at.into(),
    ]
}

/// Advances an open registration to `step.status`, stamping that stage.
pub(crate) async fn advance(tx: &mut WriteTx, step: &RegistrationStep) -> StoreResult<()> {
    let stage = match step.status {
        RegistrationStatus::CertificateIssued => "certificate_issued_at",
        RegistrationStatus::CheckedIn => "checked_in_at",
        RegistrationStatus::Active => "active_at",
        _ => "updated_at",
    };
    Sql::new(format!(
        "UPDATE registrations SET status = $1, {stage} = $2, updated_at = $2, device_id = $3 \
         WHERE tenant_id = $4 AND id = $5 AND status IN {OPEN}"
    ))
    .arg(step.status.as_str())
    .arg(step.at)
    .arg(step.device_id)
    .arg(step.tenant_id)
    .arg(step.id.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl RegistrationStore for SqlStore {
    async fn save_registration(&self, g: &Registration, audit: &AuditEntry) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        upsert_registration(g).execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, std::slice::from_ref(audit)).await?;
        commit(tx).await
    }

    async fn save_issued_profile(
        &self,
        challenge: &ScepChallenge,
        g: &Registration,
        audit: &[AuditEntry],
        expiry: Option<&NewJob>,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        insert_challenge(challenge).execute(&mut *tx).await?;
        upsert_registration(g).execute(&mut *tx).await?;
        insert_audit(&mut tx, self.backend, audit).await?;
        if let Some(job) = expiry {
            insert_job(job).execute(&mut *tx).await?;
        }
        commit(tx).await
    }

    async fn registration(&self, tenant: TenantId, id: &str) -> StoreResult<Option<Registration>> {
        Sql::new(format!(
            "SELECT {REG_COLS} FROM registrations WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant)
        .arg(id)
        .fetch_optional_map(&self.pool, registration_from_row)
        .await
    }

    async fn registrations(
        &self,
        tenant: TenantId,
        q: &RegistrationQuery,
    ) -> StoreResult<Page<Registration>> {
        let mut sql = Sql::new(format!(
            "SELECT {REG_COLS} FROM registrations WHERE tenant_id = "
        ));
        sql.bind(tenant);
        if let Some(s) = q.status {
            sql.push(" AND status = ").bind(s.as_str());
        }
        if let Some(u) = q.user_id {
            sql.push(" AND user_id = ").bind(u);
        }
        if let Some(p) = q.platform {
            sql.push(" AND platform = ").bind(p.as_str());
        }
        if let Some(d) = q.device_id {
            sql.push(" AND device_id = ").bind(d);
        }
        let limit = paging::finish(&mut sql, "created_at", "id", q.after.as_deref(), q.limit)?;
        let items = sql
            .one_off()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(registration_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paging::page(items, limit, |g| {
            paging::cursor(g.created_at, &g.id)
        }))
    }

    async fn end_registration(
        &self,
        end: &EndRegistration,
        always: &[AuditEntry],
        if_ended: &[AuditEntry],
    ) -> StoreResult<bool> {
        let mut tx = self.begin_write().await?;
        let mut sql = Sql::new("UPDATE registrations SET reason = $1, updated_at = $2")
            .arg(end.reason.as_str())
            .arg(end.at);
        if let Some(status) = end.status {
            sql.push(", status = ").bind(status.as_str());
        }
        sql.push(" WHERE tenant_id = ")
            .bind(end.tenant_id)
            .push(" AND id = ")
            .bind(end.id.as_str())
            .push(&format!(" AND status IN {OPEN}"));
        let changed = sql.execute(&mut *tx).await? == 1;
        if changed {
            if let Some(device) = end.disable_device {
                Sql::new(
                    "UPDATE devices SET status = 'mdm_disabled', updated_at = $1 \
                     WHERE tenant_id = $2 AND id = $3 AND status IN ('pending', 'active')",
                )
                .arg(end.at)
                .arg(end.tenant_id)
                .arg(device)
                .execute(&mut *tx)
                .await?;
                Sql::new(
                    "UPDATE apple_enrollments SET enabled = 0, updated_at = $1 \
                     WHERE tenant_id = $2 AND device_id = $3",
                )
                .arg(end.at)
                .arg(end.tenant_id)
                .arg(device)
                .execute(&mut *tx)
                .await?;
            }
            insert_audit(&mut tx, self.backend, if_ended).await?;
        }
        insert_audit(&mut tx, self.backend, always).await?;
        commit(tx).await?;
        Ok(changed)
    }
}
