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
