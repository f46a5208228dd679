//! Waking Apple devices: a queued command asks for a push job per channel
//! (deduplicated per second, so a burst of commands is one push); the job
//! loads the channel's token, PushMagic and topic, hands them to the
//! [`crate::push::Pusher`] and acts on the outcome. A channel without a live
//! token (before TokenUpdate, or after APNs said it is gone) gets no push.
//!
//! Also here: the last-seen times of channels, kept in memory on the request
//! path and written in batches.

use crate::audit::AuditAction;
use crate::core::Core;
use crate::devices::device_audit;
use crate::error::CoreResult;
use crate::ids::TenantId;
use crate::jobs::{Job, JobDone, JobOutcome};
use crate::push::{ApplePush, PushOutcome};
use crate::tokens::Actor;
use time::OffsetDateTime;

/// Channels whose last-seen times one flush transaction writes. On SQLite
/// with 10,000 devices, 500 held the writer for ≈ 8 ms (a command result
/// behind it waited as long: round-trip p99 13 ms in a benchmark run that
/// a flush fell into); 100 hold it for ≈ 1.5–2.5 ms.
const SEEN_PER_TRANSACTION: usize = 100;

/// The job kind of an Apple MDM push.
pub const PUSH_JOB: &str = "apple.push";

/// How long APNs may hold a push for an offline device.
pub const PUSH_EXPIRY: time::Duration = time::Duration::days(1);

/// A push attempt to record (`AppleStore::record_pushes`).
#[derive(Clone, Debug)]
pub struct PushRecord<'a> {
    pub tenant: TenantId,
    pub enrollment: &'a str,
    pub at: OffsetDateTime,
    /// `sent`, `recorded`, `token_gone`, `retry: …`, `rejected: …`.
    pub outcome: &'a str,
    /// APNs said the token is gone: no pushes until the next TokenUpdate.
    pub token_dead: bool,
    pub audit: &'a [crate::audit::AuditEntry],
    /// The job to mark done with the record.
    pub done: Option<JobDone<'a>>,
}

impl Core {
    /// Asks for a push to the channel: at most one per channel per second,
    /// run at the end of that second so the commands queued in it are all
    /// there when the device wakes.
    pub(crate) async fn request_push(&self, tenant: TenantId, enrollment: &str) -> CoreResult<()> {
        self.store
            .enqueue_job(&self.push_job(tenant, enrollment))
            .await?;
        Ok(())
    }

    /// The push job of `enrollment` for this second, for a caller that
    /// queues it in its own transaction.
    pub(crate) fn push_job(&self, tenant: TenantId, enrollment: &str) -> crate::jobs::NewJob {
        let second = self.now().unix_timestamp();
        crate::jobs::NewJob {
            id: crate::ids::JobId::new(),
            tenant_id: Some(tenant),
            kind: PUSH_JOB.to_string(),
            payload: serde_json::json!({ "enrollment": enrollment }),
            run_at: OffsetDateTime::from_unix_timestamp(second + 1).unwrap_or(self.now()),
            dedupe_key: Some(format!("{PUSH_JOB}:{tenant}:{enrollment}:{second}")),
            max_attempts: 8,
        }
    }

    /// The push jobs of one pass of the worker: every push goes to the
    /// pusher in one call (which sends them concurrently, at most its
    /// in-flight limit at once), and every push that went out is recorded,
    /// its job marked done with it, in one transaction. One outcome per job,
    /// in order.
    pub(crate) async fn run_apple_pushes(&self, jobs: &[Job], worker: &str) -> Vec<JobOutcome> {
        let mut outcomes = Vec::with_capacity(jobs.len());
        // (index into `outcomes`, enrollment id, device) of each push sent.
        let mut sent = Vec::new();
        let mut pushes = Vec::new();
        let now = self.now();
        for job in jobs {
            let (Some(tenant), Some(id)) = (job.tenant_id, job.payload["enrollment"].as_str())
            else {
                outcomes.push(JobOutcome::Permanent("apple.push: bad payload".into()));
                continue;
            };
            let enrollment = match self.store.apple_enrollment(tenant, id).await {
                Ok(Some(e)) => e,
                Ok(None) => {
                    outcomes.push(JobOutcome::Done);
                    continue;
                }
                Err(e) => {
                    outcomes.push(JobOutcome::retry(e.to_string()));
                    continue;
                }
            };
            if !enrollment.pushable() {
                outcomes.push(JobOutcome::Done);
                continue;
            }
            pushes.push(ApplePush {
                tenant_id: tenant,
                enrollment_id: enrollment.id.clone(),
                token: enrollment.token.clone().unwrap_or_default(),
                push_magic: enrollment.push_magic.clone().unwrap_or_default(),
                topic: enrollment.topic.clone(),
                expires_at: Some(now + PUSH_EXPIRY),
            });
            sent.push((outcomes.len(), enrollment.device_id));
            // Replaced below by what the push came to.
            outcomes.push(JobOutcome::Done);
        }
        if pushes.is_empty() {
            return outcomes;
        }
        let answers = self.pusher.push_apple(&pushes).await;
        // Per push sent: its label, whether its token is dead, its audit.
        let mut notes = Vec::with_capacity(pushes.len());
        for (k, ((slot, device), push)) in sent.iter().zip(&pushes).enumerate() {
            let answer = answers.get(k).cloned().unwrap_or_else(PushOutcome::missing);
            let (label, dead, result) = answer.judge(JobOutcome::Completed);
            let mut audit = Vec::new();
            if dead && let Ok(Some(device)) = self.store.device(push.tenant_id, *device).await {
                audit.push(
                    device_audit(
                        &device,
                        now,
                        &Actor::System,
                        AuditAction::DevicePushTokenDead,
                    )
                    .details(serde_json::json!({ "enrollment": push.enrollment_id })),
                );
            }
            if let Some(o) = outcomes.get_mut(*slot) {
                *o = result;
            }
            notes.push((label, dead, audit));
        }
        let records: Vec<PushRecord<'_>> = sent
            .iter()
            .zip(&pushes)
            .zip(&notes)
            .map(|(((slot, _), push), (label, dead, audit))| PushRecord {
                tenant: push.tenant_id,
                enrollment: &push.enrollment_id,
                at: now,
                outcome: label,
                token_dead: *dead,
                audit,
                done: jobs
                    .get(*slot)
                    .filter(|_| outcomes.get(*slot) == Some(&JobOutcome::Completed))
                    .map(|j| JobDone {
                        id: j.id,
                        worker,
                        at: now,
                    }),
            })
            .collect();
        if let Err(e) = self.store.record_pushes(&records).await {
            tracing::warn!(error = %e, pushes = records.len(), "recording pushes failed");
            // The pushes went out; only their bookkeeping (and their jobs'
            // completion with it) was lost: the worker completes the jobs.
            for o in &mut outcomes {
                if *o == JobOutcome::Completed {
                    *o = JobOutcome::Done;
                }
            }
        }
        outcomes
    }

    /// Notes that a channel was seen now (written by [`Core::flush_last_seen`]).
    pub(crate) fn saw(&self, tenant: TenantId, enrollment: String, at: OffsetDateTime) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert((tenant, enrollment), at);
        }
    }

    /// Writes the last-seen times noted since the previous flush; returns
    /// how many channels it wrote. `mdm serve` calls it every few seconds.
    /// One transaction per [`SEEN_PER_TRANSACTION`] channels: a check-in or
    /// command result that queues for the writer behind the flush waits for
    /// one chunk, not for the whole fleet.
    pub async fn flush_last_seen(&self) -> CoreResult<usize> {
        let batch: Vec<(TenantId, String, OffsetDateTime)> = match self.seen.lock() {
            Ok(mut seen) => seen.drain().map(|((t, e), at)| (t, e, at)).collect(),
            Err(_) => return Ok(0),
        };
        if batch.is_empty() {
            return Ok(0);
        }
        for (i, chunk) in batch.chunks(SEEN_PER_TRANSACTION).enumerate() {
            if let Err(e) = self.store.touch_enrollments(chunk).await {
                // Keep what was not written for the next flush (unless the
                // channel has been seen again since).
                if let Ok(mut seen) = self.seen.lock() {
                    for (t, en, at) in batch.iter().skip(i * SEEN_PER_TRANSACTION) {
                        seen.entry((*t, en.clone())).or_insert(*at);
                    }
                }
                return Err(e.into());
            }
        }
        Ok(batch.len())
    }
}
