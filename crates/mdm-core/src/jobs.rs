//! Background work shared by several server processes.
//!
//! A job is a row; a worker claims due jobs by writing a lease (owner and
//! expiry) on them in one statement, so two processes on one database never
//! run the same job. A worker that dies leaves a lease that expires, and the
//! job is claimed again. Periodic tasks use named leases the same way.

use crate::ids::{JobId, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// A job about to be queued.
#[derive(Clone, Debug, PartialEq)]
pub struct NewJob {
    pub id: JobId,
    pub tenant_id: Option<TenantId>,
    /// What to do; a worker dispatches on it.
    pub kind: String,
    pub payload: serde_json::Value,
    /// Not before this time.
    pub run_at: OffsetDateTime,
    /// Jobs with the same key are queued once (later inserts are ignored).
    pub dedupe_key: Option<String>,
    /// Give up after this many failed attempts.
    pub max_attempts: i32,
}

/// A job as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub tenant_id: Option<TenantId>,
    pub kind: String,
    pub payload: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub run_at: OffsetDateTime,
    pub attempts: i32,
    pub max_attempts: i32,
    pub lease_owner: Option<String>,
    pub last_error: Option<String>,
    pub state: JobState,
}

/// Where a job is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting to run (possibly leased by a worker right now).
    Queued,
    /// Finished successfully.
    Done,
    /// Failed `max_attempts` times.
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(Self::Queued),
            "done" => Some(Self::Done),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// Delay before retry number `attempt` (1-based): 30 s doubling, capped at one hour.
pub fn retry_backoff(attempt: i32) -> time::Duration {
    let exp = attempt.clamp(1, 8) - 1;
    time::Duration::seconds((30i64 << exp).min(3600))
}

/// What running one job came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished; the job is marked done.
    Done,
    /// This attempt failed and may succeed later: queued again after
    /// [`retry_backoff`] (or at the given time), failed after its last attempt.
    Retry {
        error: String,
        at: Option<OffsetDateTime>,
    },
    /// It can never succeed (unknown kind, bad payload): marked failed now.
    Permanent(String),
    /// Finished, and already marked done in the same transaction as the
    /// job's last write (see [`JobDone`]).
    Completed,
}

/// A leased job to mark done together with its work's last write, so a job
/// that writes once finishes in one transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobDone<'a> {
    pub id: JobId,
    /// The lease holder: a job whose lease another worker took is not
    /// marked (as with `JobStore::complete_job`).
    pub worker: &'a str,
    pub at: OffsetDateTime,
}

impl JobOutcome {
    /// A retryable failure with the default backoff.
    pub fn retry(error: impl Into<String>) -> Self {
        Self::Retry {
            error: error.into(),
            at: None,
        }
    }
}

/// What one pass of [`crate::Core::work_jobs`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct JobPass {
    pub claimed: usize,
    pub done: usize,
    pub retried: usize,
    pub failed: usize,
}

/// How long a worker holds a claimed job before another may take it.
pub const JOB_LEASE: time::Duration = time::Duration::minutes(5);

impl crate::Core {
    /// Queues a job of `kind` to run at `run_at` (deduplicated by `dedupe_key`);
    /// false when a job with that key is already queued.
    pub async fn enqueue_job(
        &self,
        tenant: Option<TenantId>,
        kind: &str,
        payload: serde_json::Value,
        run_at: OffsetDateTime,
        dedupe_key: Option<String>,
        max_attempts: i32,
    ) -> crate::error::CoreResult<bool> {
        let job = NewJob {
            id: JobId::new(),
            tenant_id: tenant,
            kind: kind.to_string(),
            payload,
            run_at,
            dedupe_key,
            max_attempts,
        };
        Ok(self.store.enqueue_job(&job).await?)
    }

    /// Claims up to `limit` due jobs for `worker`, runs each and records the
    /// outcome. Safe to call from every replica at once: a job is leased to
    /// one worker, and a result is recorded only while the lease is held.
    pub async fn work_jobs(&self, worker: &str, limit: i64) -> crate::error::CoreResult<JobPass> {
        let now = self.now();
        let jobs = self
            .store
            .claim_jobs(worker, now, now + JOB_LEASE, limit)
            .await?;
        let mut pass = JobPass {
            claimed: jobs.len(),
            ..JobPass::default()
        };
        // The pass's Apple pushes go out together (and are recorded in one
        // transaction); every other job runs on its own.
        let (pushes, others): (Vec<Job>, Vec<Job>) = jobs
            .into_iter()
            .partition(|j| j.kind == crate::apple_push::PUSH_JOB);
        let mut ran = Vec::with_capacity(pushes.len() + others.len());
        let pushed = self.run_apple_pushes(&pushes, worker).await;
        ran.extend(pushes.into_iter().zip(pushed));
        for job in others {
            let outcome = self.run_job(&job, worker).await;
            ran.push((job, outcome));
        }
        for (job, outcome) in ran {
            let at = self.now();
            match outcome {
                JobOutcome::Completed => pass.done += 1,
                JobOutcome::Done => {
                    self.store.complete_job(job.id, worker, at).await?;
                    pass.done += 1;
                }
                JobOutcome::Retry { error, at: when } => {
                    let retry_at = when.unwrap_or(at + retry_backoff(job.attempts + 1));
                    self.store
                        .fail_job(job.id, worker, &error, retry_at)
                        .await?;
                    if job.attempts + 1 >= job.max_attempts {
                        pass.failed += 1;
                    } else {
                        pass.retried += 1;
                    }
                }
                JobOutcome::Permanent(error) => {
                    self.store.abandon_job(job.id, worker, &error).await?;
                    pass.failed += 1;
                }
            }
        }
        Ok(pass)
    }

    /// Dispatches one job on its kind. Each module that queues jobs adds its
    /// kinds here and keeps the work itself next to its other use cases.
    async fn run_job(&self, job: &Job, worker: &str) -> JobOutcome {
        match job.kind.as_str() {
            crate::invites::SEND_JOB => self.run_invitation_send(job).await,
            crate::directory::SYNC_JOB => self.run_directory_sync_job(job).await,
            crate::renewal::RENEWAL_JOB => self.run_renewal_scan().await,
            crate::apple_push::PUSH_JOB => self
                .run_apple_pushes(std::slice::from_ref(job), worker)
                .await
                .pop()
                .unwrap_or(JobOutcome::Done),
            crate::registrations::EXPIRE_JOB => {
                self.run_registration_expiry(job.tenant_id, &job.payload)
                    .await
            }
            crate::reminders::REMIND_JOB => self.run_registration_reminder(job).await,
            crate::android::push::PUSH_JOB => {
                self.run_android_push(job.tenant_id, &job.payload).await
            }
            other => JobOutcome::Permanent(format!("unknown job kind {other:?}")),
        }
    }
}
