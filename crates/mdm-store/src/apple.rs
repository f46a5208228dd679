//! Apple MDM enrollments and their command queues. An Idle poll is one
//! SELECT (binding, certificate state and next command joined); a result is
//! one UPDATE that writes only when the binding checks out, then the queue
//! read (the poll read instead when nothing was written, to tell a duplicate
//! from a refusal).

use crate::audit::insert_audit;
use crate::db::DbRow;
use crate::devices::{insert_device, update_device};
use crate::jobs::insert_job;
use crate::paging;
use crate::registrations::advance;
use crate::rows::Row;
use crate::sql::{Arg, Sql, to_millis, update_set};
use crate::store::{Backend, SqlStore, WriteTx, commit};
use async_trait::async_trait;
use mdm_core::StoreError;
use mdm_core::apple_push::PushRecord;
use mdm_core::audit::AuditEntry;
use mdm_core::commands::{
    AppleCommand, CommandQuery, CommandState, Poll, Queued, ResultOutcome, ResultRecord,
};
use mdm_core::devices::{AppleChannel, AppleEnrollment, DeviceStatus};
use mdm_core::ids::{DeviceId, TenantId};
use mdm_core::pki::CertificateRecord;
use mdm_core::ports::{AppleStore, EnrollmentChange, StoreResult};
use mdm_core::users::Page;
use time::OffsetDateTime;

const ENROLLMENT_COLS: &str = "tenant_id, id, device_id, channel, registration_id, topic, token, push_magic, \
     unlock_token, token_dead_at, cert_fingerprint, cert_serial, user_short_name, user_long_name, enabled, \
     last_seen_at, last_push_at, last_push_outcome, created_at, updated_at";

const COMMAND_COLS: &str = "tenant_id, command_uuid, enrollment_id, device_id, request_type, payload, state, \
     not_now_count, ack_device_status, queued_by, created_at, result_at, error_chain, result";

fn unknown(col: &str, v: &str) -> StoreError {
    StoreError::Backend(format!("column {col}: unknown value {v:?}"))
}

fn enrollment_from_row(row: &DbRow) -> Result<AppleEnrollment, StoreError> {
    let r = Row(row);
    let channel = r.text("channel")?;
    Ok(AppleEnrollment {
        id: r.text("id")?,
        tenant_id: r.parse("tenant_id")?,
        device_id: r.parse("device_id")?,
        channel: AppleChannel::parse(&channel).ok_or_else(|| unknown("channel", &channel))?,
        registration_id: r.opt_text("registration_id")?,
        topic: r.text("topic")?,
        token: r.opt_blob("token")?,
        push_magic: r.opt_text("push_magic")?,
        unlock_token: r.opt_blob("unlock_token")?,
        token_dead_at: r.opt_time("token_dead_at")?,
        cert_fingerprint: r.opt_text("cert_fingerprint")?,
        cert_serial: r.opt_text("cert_serial")?,
        user_short_name: r.opt_text("user_short_name")?,
        user_long_name: r.opt_text("user_long_name")?,
        enabled: r.flag("enabled")?,
        last_seen_at: r.opt_time("last_seen_at")?,
        last_push_at: r.opt_time("last_push_at")?,
        last_push_outcome: r.opt_text("last_push_outcome")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

fn command_from_row(row: &DbRow) -> Result<AppleCommand, StoreError> {
    let r = Row(row);
    let state = r.text("state")?;
    let ack = r
        .opt_text("ack_device_status")?
        .map(|s| DeviceStatus::parse(&s).ok_or_else(|| unknown("ack_device_status", &s)))
        .transpose()?;
    let json = |col: &str| -> Result<serde_json::Value, StoreError> {
        Ok(match r.opt_text(col)? {
            Some(t) => serde_json::from_str(&t).map_err(|e| unknown(col, &e.to_string()))?,
            None => serde_json::Value::Null,
        })
    };
    Ok(AppleCommand {
        command_uuid: r.text("command_uuid")?,
        tenant_id: r.parse("tenant_id")?,
        enrollment_id: r.text("enrollment_id")?,
        device_id: r.parse("device_id")?,
        request_type: r.text("request_type")?,
        payload: r.blob("payload")?,
        state: CommandState::parse(&state).ok_or_else(|| unknown("state", &state))?,
        not_now_count: r.int("not_now_count")?,
        ack_device_status: ack,
        queued_by: r.text("queued_by")?,
        created_at: r.time("created_at")?,
        result_at: r.opt_time("result_at")?,
        error_chain: json("error_chain")?,
        result: json("result")?,
    })
}

fn json_arg(v: &serde_json::Value) -> Arg {
    match v {
        serde_json::Value::Null => Arg::Text(None),
        other => other.into(),
    }
}

/// Inserts the enrollment or replaces the stored one's fields (the push
/// bookkeeping columns belong to `record_pushes`). On SQLite, as in
/// `update_device`, a stored enrollment is updated naming its indexed
/// columns (device, certificate, enabled, last seen) only when they change.
async fn upsert_enrollment(
    tx: &mut WriteTx,
    backend: Backend,
    e: &AppleEnrollment,
) -> StoreResult<()> {
    if matches!(backend, Backend::Sqlite) && update_enrollment(tx, e).await? {
        return Ok(());
    }
    let mut sql = Sql::new(format!(
        "INSERT INTO apple_enrollments ({ENROLLMENT_COLS}) VALUES "
    ));
    sql.tuple([
        Arg::from(e.tenant_id),
        e.id.as_str().into(),
        e.device_id.into(),
        e.channel.as_str().into(),
        e.registration_id.as_deref().into(),
        e.topic.as_str().into(),
        Arg::Blob(e.token.clone()),
        e.push_magic.as_deref().into(),
        Arg::Blob(e.unlock_token.clone()),
        e.token_dead_at.into(),
        e.cert_fingerprint.as_deref().into(),
        e.cert_serial.as_deref().into(),
        e.user_short_name.as_deref().into(),
        e.user_long_name.as_deref().into(),
        e.enabled.into(),
        e.last_seen_at.into(),
        e.last_push_at.into(),
        e.last_push_outcome.as_deref().into(),
        e.created_at.into(),
        e.updated_at.into(),
    ]);
    // The push bookkeeping columns belong to `record_pushes`.
    sql.push(
        " ON CONFLICT (tenant_id, id) DO UPDATE SET device_id = excluded.device_id, \
         channel = excluded.channel, registration_id = excluded.registration_id, topic = excluded.topic, \
         token = excluded.token, push_magic = excluded.push_magic, unlock_token = excluded.unlock_token, \
         token_dead_at = excluded.token_dead_at, cert_fingerprint = excluded.cert_fingerprint, \
         cert_serial = excluded.cert_serial, user_short_name = excluded.user_short_name, \
         user_long_name = excluded.user_long_name, enabled = excluded.enabled, \
         last_seen_at = excluded.last_seen_at, updated_at = excluded.updated_at",
    );
    sql.unique("enrollment_certificate")
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Updates the stored enrollment `e` names (see [`upsert_enrollment`]);
/// `false` when there is none.
async fn update_enrollment(tx: &mut WriteTx, e: &AppleEnrollment) -> StoreResult<bool> {
    let stored = Sql::new(
        "SELECT device_id, cert_fingerprint, enabled, last_seen_at FROM apple_enrollments \
         WHERE tenant_id = $1 AND id = $2",
    )
    .arg(e.tenant_id)
    .arg(e.id.as_str())
    .fetch_optional_map(&mut **tx, |row| {
        let r = Row(row);
        Ok((
            r.parse::<DeviceId>("device_id")?,
            r.opt_text("cert_fingerprint")?,
            r.flag("enabled")?,
            r.opt_int("last_seen_at")?,
        ))
    })
    .await?;
    let Some((device, cert, enabled, seen)) = stored else {
        return Ok(false);
    };
    let mut sets: Vec<(&str, Arg)> = Vec::with_capacity(15);
    if device != e.device_id {
        sets.push(("device_id", e.device_id.into()));
    }
    if cert != e.cert_fingerprint {
        sets.push(("cert_fingerprint", e.cert_fingerprint.as_deref().into()));
    }
    if enabled != e.enabled {
        sets.push(("enabled", e.enabled.into()));
    }
    if seen != e.last_seen_at.map(to_millis) {
        sets.push(("last_seen_at", e.last_seen_at.into()));
    }
    sets.extend([
        ("channel", e.channel.as_str().into()),
        ("registration_id", e.registration_id.as_deref().into()),
        ("topic", e.topic.as_str().into()),
        ("token", Arg::Blob(e.token.clone())),
        ("push_magic", e.push_magic.as_deref().into()),
        ("unlock_token", Arg::Blob(e.unlock_token.clone())),
        ("token_dead_at", e.token_dead_at.into()),
        ("cert_serial", e.cert_serial.as_deref().into()),
        ("user_short_name", e.user_short_name.as_deref().into()),
        ("user_long_name", e.user_long_name.as_deref().into()),
        ("updated_at", e.updated_at.into()),
    ]);
    let mut sql = update_set("apple_enrollments", sets);
    sql.push("tenant_id = ")
        .bind(e.tenant_id)
        .push(" AND id = ")
        .bind(e.id.as_str());
    sql.unique("enrollment_certificate")
        .execute(&mut **tx)
        .await?;
    Ok(true)
}

async fn insert_command(tx: &mut WriteTx, c: &AppleCommand) -> StoreResult<()> {
    let mut sql = Sql::new(format!(
        "INSERT INTO apple_commands ({COMMAND_COLS}) VALUES "
    ));
    sql.tuple([
        Arg::from(c.tenant_id),
        c.command_uuid.as_str().into(),
        c.enrollment_id.as_str().into(),
        c.device_id.into(),
        c.request_type.as_str().into(),
        c.payload.as_slice().into(),
        c.state.as_str().into(),
        c.not_now_count.into(),
        c.ack_device_status.map(|s| s.as_str()).into(),
        c.queued_by.as_str().into(),
        c.created_at.into(),
        c.result_at.into(),
        json_arg(&c.error_chain),
        json_arg(&c.result),
    ]);
    sql.unique("command_uuid").execute(&mut **tx).await?;
    Ok(())
}

/// The identity-and-next-command read of a poll, on any executor. The next
/// command is a scalar subquery answered from an index in queue order
/// (`apple_commands_waiting`, or `apple_commands_queue` for `queued` alone),
/// so neither database materialises or sorts anything per poll.
fn poll_sql(
    backend: Backend,
    tenant: TenantId,
    enrollment: &str,
    device_channel: &str,
    states: &str,
) -> Sql {
    let by = poll_index(backend);
    Sql::new(format!(
        "SELECT e.enabled, e.last_seen_at, d.cert_fingerprint, c.revoked_at, c.serial, q.command_uuid, q.payload \
         FROM apple_enrollments e {by} \
         JOIN apple_enrollments d {by} ON d.tenant_id = e.tenant_id AND d.id = $3 \
         LEFT JOIN certificates c ON c.tenant_id = d.tenant_id AND c.fingerprint_sha256 = d.cert_fingerprint \
         LEFT JOIN apple_commands q ON q.tenant_id = e.tenant_id AND q.command_uuid = \
             (SELECT command_uuid {}) \
         WHERE e.tenant_id = $1 AND e.id = $2",
        queue_head(states)
    ))
    .arg(tenant)
    .arg(enrollment)
    .arg(device_channel)
}

/// How the poll reads name the enrollments' covering index. SQLite's
/// planner sees two unique indexes on (tenant_id, id) as equally good and
/// takes the primary key's, reading the wide row behind it (≈ 40 % of the
/// poll read's time); PostgreSQL picks index-only scans by itself.
fn poll_index(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "INDEXED BY apple_enrollments_poll",
        Backend::Postgres => "",
    }
}

/// The first command of enrollment `$2` (tenant `$1`) in one of `states`, in
/// queue order: the FROM … LIMIT 1 of a SELECT.
fn queue_head(states: &str) -> String {
    queue_head_where(states, "tenant_id = $1 AND enrollment_id = $2")
}

/// [`queue_head`] for the commands that `filter` picks.
fn queue_head_where(states: &str, filter: &str) -> String {
    format!(
        "FROM apple_commands WHERE {filter} AND state IN {states} \
         ORDER BY created_at, command_uuid LIMIT 1"
    )
}

/// The queued command `uuid` whose payload is in column `payload`.
fn queued_from_row(r: &Row, uuid: String, payload: &str) -> Result<Queued, StoreError> {
    Ok(Queued {
        command_uuid: uuid,
        payload: r.blob(payload)?,
    })
}

fn poll_from_row(row: &DbRow) -> Result<Poll, StoreError> {
    let r = Row(row);
    let next = match r.opt_text("command_uuid")? {
        Some(uuid) => Some(queued_from_row(&r, uuid, "payload")?),
        None => None,
    };
    Ok(Poll {
        enabled: r.flag("enabled")?,
        bound_fingerprint: r.opt_text("cert_fingerprint")?,
        cert_unusable: r.opt_text("serial")?.is_none() || r.opt_int("revoked_at")?.is_some(),
        last_seen_at: r.opt_time("last_seen_at")?,
        next,
    })
}

/// A recorded result: the command as updated and, on PostgreSQL, the next
/// queued one, read by the same statement.
type Updated = (Box<AppleCommand>, Option<Queued>);

const WAITING: &str = "('queued', 'not_now')";
const QUEUED: &str = "('queued')";

#[async_trait]
impl AppleStore for SqlStore {
    async fn apple_enrollment(
        &self,
        tenant: TenantId,
        id: &str,
    ) -> StoreResult<Option<AppleEnrollment>> {
        Sql::new(format!(
            "SELECT {ENROLLMENT_COLS} FROM apple_enrollments WHERE tenant_id = $1 AND id = $2"
        ))
        .arg(tenant)
        .arg(id)
        .fetch_optional_map(&self.pool, enrollment_from_row)
        .await
    }

    async fn apple_enrollments(
        &self,
        tenant: TenantId,
        device: DeviceId,
    ) -> StoreResult<Vec<AppleEnrollment>> {
        Sql::new(format!(
            "SELECT {ENROLLMENT_COLS} FROM apple_enrollments WHERE tenant_id = $1 AND device_id = $2 \
             ORDER BY CASE channel WHEN 'device' THEN 0 ELSE 1 END, id"
        ))
        .arg(tenant)
        .arg(device)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(enrollment_from_row)
        .collect()
    }

    async fn apple_enrollment_by_cert(
        &self,
        tenant: TenantId,
        fingerprint: &str,
    ) -> StoreResult<Option<AppleEnrollment>> {
        Sql::new(format!(
            "SELECT {ENROLLMENT_COLS} FROM apple_enrollments WHERE tenant_id = $1 AND cert_fingerprint = $2"
        ))
        .arg(tenant)
        .arg(fingerprint)
        .fetch_optional_map(&self.pool, enrollment_from_row)
        .await
    }

    async fn certificate_by_fingerprint(
        &self,
        tenant: TenantId,
        fingerprint: &str,
    ) -> StoreResult<Option<CertificateRecord>> {
        Sql::new(format!(
            "SELECT {} FROM certificates WHERE tenant_id = $1 AND fingerprint_sha256 = $2",
            crate::pki::CERT_COLS
        ))
        .arg(tenant)
        .arg(fingerprint)
        .fetch_optional_map(&self.pool, crate::pki::cert_from_row)
        .await
    }

    async fn apply_enrollment_change(
        &self,
        ch: &EnrollmentChange,
        audit: &[AuditEntry],
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        match &ch.device {
            Some((d, true)) => insert_device(&mut tx, d).await?,
            Some((d, false)) => update_device(&mut tx, self.backend, d).await?,
            None => {}
        }
        if let Some((tenant, device)) = ch.cancel_queue_of {
            Sql::new(
                "UPDATE apple_commands SET state = 'cancelled' \
                 WHERE tenant_id = $1 AND device_id = $2 AND state IN ('queued', 'not_now')",
            )
            .arg(tenant)
            .arg(device)
            .execute(&mut *tx)
            .await?;
        }
        if let Some((tenant, device)) = ch.disable_user_channels_of {
            Sql::new(
                "UPDATE apple_enrollments SET enabled = 0 \
                 WHERE tenant_id = $1 AND device_id = $2 AND channel = 'user'",
            )
            .arg(tenant)
            .arg(device)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(e) = &ch.enrollment {
            upsert_enrollment(&mut tx, self.backend, e).await?;
        }
        if let Some(step) = &ch.registration {
            advance(&mut tx, step).await?;
        }
        if let Some((tenant, serial, device)) = &ch.certificate_device {
            Sql::new("UPDATE certificates SET device_id = $1 WHERE tenant_id = $2 AND serial = $3")
                .arg(device.to_string())
                .arg(*tenant)
                .arg(serial.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for c in &ch.commands {
            insert_command(&mut tx, c).await?;
        }
        for job in &ch.jobs {
            insert_job(job).execute(&mut *tx).await?;
        }
        insert_audit(&mut tx, self.backend, audit).await?;
        commit(tx).await
    }

    async fn apple_poll(
        &self,
        tenant: TenantId,
        enrollment: &str,
        device_channel: &str,
        include_not_now: bool,
    ) -> StoreResult<Option<Poll>> {
        let states = if include_not_now { WAITING } else { QUEUED };
        poll_sql(self.backend, tenant, enrollment, device_channel, states)
            .fetch_optional_map(&self.pool, poll_from_row)
            .await
    }

    async fn record_apple_result(&self, r: &ResultRecord) -> StoreResult<ResultOutcome> {
        // One statement checks the binding and records the result, so the
        // common case is two statements (this and the queue read), not a
        // five-statement transaction — one on PostgreSQL, which reads the
        // queue in the same statement. Every right-hand side sees the row as
        // it was before this update. A command given up after too many NotNow
        // still takes a late final result (the device may have run it after all).
        let by = poll_index(self.backend);
        let update = format!(
            "UPDATE apple_commands SET \
             state = CASE WHEN $1 = 'not_now' AND not_now_count + 1 >= $2 THEN 'expired' ELSE $1 END, \
             not_now_count = CASE WHEN $1 = 'not_now' THEN not_now_count + 1 ELSE not_now_count END, \
             result_at = $3, error_chain = $4, result = $5 \
             WHERE tenant_id = $6 AND enrollment_id = $7 AND command_uuid = $8 \
             AND (state IN {WAITING} OR (state = 'expired' AND $1 <> 'not_now')) \
             AND EXISTS (SELECT 1 FROM apple_enrollments e {by} \
                 JOIN apple_enrollments d {by} ON d.tenant_id = e.tenant_id AND d.id = $9 \
                 JOIN certificates c ON c.tenant_id = d.tenant_id AND c.fingerprint_sha256 = d.cert_fingerprint \
                 WHERE e.tenant_id = $6 AND e.id = $7 AND e.enabled = 1 \
                 AND d.cert_fingerprint = $10 AND c.revoked_at IS NULL) \
             RETURNING {COMMAND_COLS}"
        );
        let update = Sql::new(match self.backend {
            Backend::Sqlite => update,
            // The queue as it was before the update, less the updated command
            // (NotNow: not re-sent on this poll chain, so only `queued` comes next).
            Backend::Postgres => format!(
                "WITH u AS ({update}) SELECT u.*, n.command_uuid AS next_uuid, n.payload AS next_payload \
                 FROM u LEFT JOIN LATERAL (SELECT command_uuid, payload {}) n ON TRUE",
                queue_head_where(
                    QUEUED,
                    "tenant_id = $6 AND enrollment_id = $7 AND command_uuid <> $8"
                )
            ),
        })
        .arg(r.state.as_str())
        .arg(r.not_now_cap)
        .arg(r.at)
        .arg(json_arg(&r.error_chain))
        .arg(json_arg(&r.result))
        .arg(r.tenant_id)
        .arg(r.enrollment_id.as_str())
        .arg(r.command_uuid.as_str())
        .arg(r.device_channel.as_str())
        .arg(r.fingerprint.as_str());
        let backend = self.backend;
        let read: fn(&DbRow) -> Result<Updated, StoreError> = match backend {
            Backend::Sqlite => |row| Ok((Box::new(command_from_row(row)?), None)),
            Backend::Postgres => |row| {
                let r = Row(row);
                let next = match r.opt_text("next_uuid")? {
                    Some(uuid) => Some(queued_from_row(&r, uuid, "next_payload")?),
                    None => None,
                };
                Ok((Box::new(command_from_row(row)?), next))
            },
        };
        let updated = {
            let _turn = self.write_turn().await;
            update.fetch_optional_map(&self.pool, read).await?
        };
        let Some((updated, next)) = updated else {
            // Nothing changed: a duplicate, late or unknown result, or an
            // identity that does not check out — the poll read tells which.
            let poll = poll_sql(
                self.backend,
                r.tenant_id,
                &r.enrollment_id,
                &r.device_channel,
                QUEUED,
            )
            .fetch_optional_map(&self.pool, poll_from_row)
            .await?;
            let bound = poll.as_ref().is_some_and(|p| {
                p.enabled
                    && !p.cert_unusable
                    && p.bound_fingerprint.as_deref() == Some(&r.fingerprint)
            });
            return Ok(match poll {
                Some(p) if bound => ResultOutcome::Recorded {
                    updated: None,
                    next: p.next,
                },
                poll => ResultOutcome::Refused(poll),
            });
        };
        let next = match backend {
            Backend::Postgres => next,
            // NotNow: not re-sent on this poll chain, so only `queued` comes next.
            Backend::Sqlite => {
                Sql::new(format!(
                    "SELECT command_uuid, payload {}",
                    queue_head(QUEUED)
                ))
                .arg(r.tenant_id)
                .arg(r.enrollment_id.as_str())
                .fetch_optional_map(&self.pool, |row| {
                    let r = Row(row);
                    queued_from_row(&r, r.text("command_uuid")?, "payload")
                })
                .await?
            }
        };
        Ok(ResultOutcome::Recorded {
            updated: Some(updated),
            next,
        })
    }

    async fn apple_commands(
        &self,
        tenant: TenantId,
        device: DeviceId,
        q: &CommandQuery,
    ) -> StoreResult<Page<AppleCommand>> {
        let mut sql = Sql::new(format!(
            "SELECT {COMMAND_COLS} FROM apple_commands WHERE tenant_id = "
        ));
        sql.bind(tenant).push(" AND device_id = ").bind(device);
        if let Some(s) = q.state {
            sql.push(" AND state = ").bind(s.as_str());
        }
        let limit = paging::finish(
            &mut sql,
            "created_at",
            "command_uuid",
            q.after.as_deref(),
            q.limit,
        )?;
        let items = sql
            .one_off()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(command_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(paging::page(items, limit, |c| {
            paging::cursor(c.created_at, &c.command_uuid)
        }))
    }

    async fn apple_renewal_candidates(
        &self,
        before: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, DeviceId)>> {
        Sql::new(
            "SELECT e.tenant_id, e.device_id FROM apple_enrollments e \
             JOIN devices d ON d.tenant_id = e.tenant_id AND d.id = e.device_id \
             JOIN certificates c ON c.tenant_id = e.tenant_id AND c.fingerprint_sha256 = e.cert_fingerprint \
             WHERE e.channel = 'device' AND e.enabled = 1 AND d.status = 'active' \
               AND c.revoked_at IS NULL AND c.not_after < $1 \
               AND NOT EXISTS (SELECT 1 FROM registrations r WHERE r.tenant_id = e.tenant_id \
                 AND r.device_id = e.device_id AND r.purpose = 'renewal' \
                 AND r.status IN ('pending', 'profile_downloaded', 'certificate_issued', 'checked_in')) \
             ORDER BY c.not_after, e.tenant_id, e.device_id LIMIT $2",
        )
        .arg(before)
        .arg(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            let r = Row(r);
            Ok((r.parse("tenant_id")?, r.parse("device_id")?))
        })
        .collect()
    }

    async fn record_pushes(&self, pushes: &[PushRecord<'_>]) -> StoreResult<()> {
        if pushes.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        for p in pushes {
            let mut sql =
                Sql::new("UPDATE apple_enrollments SET last_push_at = $1, last_push_outcome = $2")
                    .arg(p.at)
                    .arg(p.outcome);
            if p.token_dead {
                sql.push(", token_dead_at = ").bind(p.at);
            }
            sql.push(" WHERE tenant_id = ")
                .bind(p.tenant)
                .push(" AND id = ")
                .bind(p.enrollment);
            sql.execute(&mut *tx).await?;
            insert_audit(&mut tx, self.backend, p.audit).await?;
            if let Some(done) = &p.done {
                crate::jobs::complete_job_sql(done)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        commit(tx).await
    }
}
