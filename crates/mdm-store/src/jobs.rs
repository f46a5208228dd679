//! Background jobs and named leases, safe for several workers on one
//! database: every claim, completion and takeover is a single statement.

use crate::rows::{JOB_COLS, job_from_row};
use crate::sql::{Arg, Sql};
use crate::store::{Backend, SqlStore};
use async_trait::async_trait;
use mdm_core::ids::JobId;
use mdm_core::jobs::{Job, JobDone, JobState, NewJob};
use mdm_core::ports::{JobStore, StoreResult};
use time::OffsetDateTime;

/// The claim statement. The subquery picks due jobs; on PostgreSQL it locks
/// them and skips rows another claimer has locked, so concurrent claimers
/// take disjoint sets. SQLite runs one writing statement at a time, which
/// gives the same guarantee.
fn claim_sql(backend: Backend) -> String {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    format!(
        "UPDATE jobs SET lease_owner = $1, lease_until = $2 \
         WHERE id IN (SELECT id FROM jobs \
             WHERE state = 'queued' AND run_at <= $3 AND (lease_until IS NULL OR lease_until <= $3) \
             ORDER BY run_at, id LIMIT $4{lock}) \
         RETURNING {JOB_COLS}"
    )
}

/// The start of an insert of new jobs: a `(…)` of [`job_values`] per job
/// follows, then [`SKIP_QUEUED`].
pub(crate) const INSERT_JOBS: &str = "INSERT INTO jobs (id, tenant_id, kind, payload, run_at, attempts, max_attempts, state, dedupe_key) VALUES ";

/// The end of an insert of new jobs: a job whose `dedupe_key` is already
/// queued is not inserted.
pub(crate) const SKIP_QUEUED: &str = " ON CONFLICT (dedupe_key) DO NOTHING";

/// A new job's row, in [`INSERT_JOBS`]'s column order.
pub(crate) fn job_values(job: &NewJob) -> [Arg; 9] {
    [
        Arg::from(job.id),
        job.tenant_id.into(),
        job.kind.as_str().into(),
        (&job.payload).into(),
        job.run_at.into(),
        0i64.into(),
        job.max_attempts.into(),
        JobState::Queued.as_str().into(),
        job.dedupe_key.as_deref().into(),
    ]
}

/// Marks a leased job done, unless its lease was taken by another worker.
pub(crate) fn complete_job_sql(done: &JobDone<'_>) -> Sql {
    Sql::new(
        "UPDATE jobs SET state = 'done', lease_until = NULL, finished_at = $1 \
         WHERE id = $2 AND lease_owner = $3 AND state = 'queued'",
    )
    .arg(done.at)
    .arg(done.id)
    .arg(done.worker)
}

/// The insert of a new job; a job whose `dedupe_key` is already queued is
/// not inserted (the statement changes no row).
pub(crate) fn insert_job(job: &NewJob) -> Sql {
    let mut sql = Sql::new(INSERT_JOBS);
    sql.tuple(job_values(job));
    sql.push(SKIP_QUEUED);
    sql
}

#[async_trait]
impl JobStore for SqlStore {
    async fn enqueue_job(&self, job: &NewJob) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        Ok(insert_job(job).execute(&self.pool).await? == 1)
    }

    async fn claim_jobs(
        &self,
        worker: &str,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limit: i64,
    ) -> StoreResult<Vec<Job>> {
        let _turn = self.write_turn().await;
        if limit < 1 {
            return Ok(Vec::new());
        }
        let rows = Sql::new(claim_sql(self.backend))
            .arg(worker)
            .arg(lease_until)
            .arg(now)
            .arg(limit)
            .fetch_all(&self.pool)
            .await?;
        let mut jobs = rows
            .iter()
            .map(job_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING gives no order.
        jobs.sort_by_key(|j| (j.run_at, j.id));
        Ok(jobs)
    }

    // "Still holds the lease" means no other worker has claimed the job
    // since: a lease that ran out but was not taken over still counts, so
    // finished work is not redone for being a little late.
    async fn complete_job(&self, id: JobId, worker: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let changed = complete_job_sql(&JobDone { id, worker, at })
            .execute(&self.pool)
            .await?;
        Ok(changed == 1)
    }

    async fn fail_job(
        &self,
        id: JobId,
        worker: &str,
        error: &str,
        retry_at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        // Every right-hand side sees the row as it was before this update.
        let changed = Sql::new(
            "UPDATE jobs SET attempts = attempts + 1, last_error = $1, lease_until = NULL, \
             state = CASE WHEN attempts + 1 >= max_attempts THEN 'failed' ELSE 'queued' END, \
             run_at = CASE WHEN attempts + 1 >= max_attempts THEN run_at ELSE $2 END, \
             lease_owner = CASE WHEN attempts + 1 >= max_attempts THEN lease_owner ELSE NULL END \
             WHERE id = $3 AND lease_owner = $4 AND state = 'queued'",
        )
        .arg(error)
        .arg(retry_at)
        .arg(id)
        .arg(worker)
        .execute(&self.pool)
        .await?;
        Ok(changed == 1)
    }

    async fn abandon_job(&self, id: JobId, worker: &str, error: &str) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        let changed = Sql::new(
            "UPDATE jobs SET attempts = attempts + 1, last_error = $1, state = 'failed' \
             WHERE id = $2 AND lease_owner = $3 AND state = 'queued'",
        )
        .arg(error)
        .arg(id)
        .arg(worker)
        .execute(&self.pool)
        .await?;
        Ok(changed == 1)
    }

    async fn job(&self, id: JobId) -> StoreResult<Option<Job>> {
        let sql = Sql::new(format!("SELECT {JOB_COLS} FROM jobs WHERE id = $1")).arg(id);
        sql.fetch_optional_map(&self.pool, job_from_row).await
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        now: OffsetDateTime,
        until: OffsetDateTime,
    ) -> StoreResult<bool> {
        let _turn = self.write_turn().await;
        // Insert, or take over a lease that has expired or is already ours;
        // a lease held by someone else is left alone (no row changes).
        let changed = Sql::new(
            "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.holder = excluded.holder",
        )
        .arg(name)
        .arg(holder)
        .arg(until)
        .arg(now)
        .execute(&self.pool)
        .await?;
        Ok(changed == 1)
    }
}
