//! Reminders (R15): a user whose profile was never installed is reminded
//! at the tenant's interval, up to its cap — by email (the editable
//! `reminder` template) and by a push to the client app when the app
//! registered a push token — and reminders stop when the registration
//! completes (a certificate is issued), is cancelled, is followed by a newer
//! attempt, or is given up after the cap.
//!
//! The scan ([`Core::schedule_reminders`]) runs in every server's worker
//! loop. It claims due registrations with row leases in one transaction
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single writer on SQLite),
//! counts the reminder and queues one `registration.remind` job per reminder
//! under a key naming its number, so two replicas never remind twice.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{JobId, TenantId, UserId};
use crate::jobs::{Job, JobOutcome, NewJob};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The job that sends one reminder.
pub const REMIND_JOB: &str = "registration.remind";

/// How many due registrations one scan claims.
pub const SCAN_BATCH: i64 = 200;

text_enum!(
    /// Which push service reaches the client app.
    AppPushProvider {
        /// Apple Push Notification service (an alert to the app's topic).
        Apns = "apns",
        /// Firebase Cloud Messaging.
        Fcm = "fcm",
    }
);

/// The client app's push address, recorded at client-app registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppPushToken {
    pub provider: AppPushProvider,
    /// APNs: the device token in hex; FCM: the registration token.
    pub token: String,
    /// APNs: the app's bundle identifier (the `apns-topic`).
    pub topic: Option<String>,
}

/// A registration the scan found due, as the store locked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueReminder {
    pub tenant_id: TenantId,
    pub registration_id: String,
    pub user_id: Option<UserId>,
    pub reminders_sent: i64,
    pub reminder_max: i64,
}

/// What the scan does with a due registration.
#[derive(Clone, Debug, PartialEq)]
pub enum ReminderStep {
    /// Count one more reminder and queue the job that sends it.
    Remind(NewJob),
    /// The cap is reached: mark the registration given up.
    GiveUp(AuditEntry),
}

/// The scan's decision function, as the store calls it.
pub type DecideReminder = dyn Fn(&DueReminder) -> ReminderStep + Send + Sync;

/// The answer to "remind now".
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReminderQueued {
    pub registration_id: String,
    /// The number of this reminder (1 for the first).
    pub reminder: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub queued_at: OffsetDateTime,
}

fn remind_job(
    tenant: TenantId,
    registration: &str,
    n: i64,
    key: String,
    at: OffsetDateTime,
) -> NewJob {
    NewJob {
        id: JobId::new(),
        tenant_id: Some(tenant),
        kind: REMIND_JOB.to_string(),
        payload: serde_json::json!({ "registration": registration, "reminder": n }),
        run_at: at,
        dedupe_key: Some(key),
        max_attempts: 5,
    }
}

/// The scan's decision for one due registration: the next reminder, or
/// given up once `reminder_max` were sent.
pub fn decide(due: &DueReminder, now: OffsetDateTime) -> ReminderStep {
    if due.reminders_sent >= due.reminder_max {
        let audit = AuditEntry::new(
            Some(due.tenant_id),
            now,
            &Actor::System,
            AuditAction::RegistrationGivenUp,
            ("registration", due.registration_id.clone()),
        )
        .maybe_user(due.user_id)
        .details(serde_json::json!({ "reminders_sent": due.reminders_sent }));
        return ReminderStep::GiveUp(audit);
    }
    let n = due.reminders_sent + 1;
    ReminderStep::Remind(remind_job(
        due.tenant_id,
        &due.registration_id,
        n,
        format!("{REMIND_JOB}:{}:{n}", due.registration_id),
        now,
    ))
}

impl Core {
    /// "Remind now": queues a reminder for the registration immediately
    /// (it counts towards the cap and restarts the interval).
    pub async fn remind_registration(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: &str,
    ) -> CoreResult<ReminderQueued> {
        let reg = self.registration(actor, tenant, id).await?;
        if reg.user_id.is_none() {
            return Err(CoreError::Conflict {
                code: "registration_without_user",
                message: "the registration has no user to remind".into(),
            });
        }
        let now = self.now();
        let n = reg.reminders_sent + 1;
        let job = remind_job(
            tenant.id,
            &reg.id,
            n,
            format!("{REMIND_JOB}:{}:now:{}", reg.id, now.unix_timestamp_nanos()),
            now,
        );
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            actor,
            AuditAction::RegistrationReminderQueued,
            ("registration", reg.id.clone()),
        )
        .maybe_user(reg.user_id)
        .details(serde_json::json!({ "reminder": n }));
        if !self
            .store
            .queue_reminder(tenant.id, &reg.id, &job, &audit, now)
            .await?
        {
            return Err(CoreError::Conflict {
                code: "registration_not_remindable",
                message: format!(
                    "the registration is {}{}: there is nothing left to remind the user of",
                    reg.status,
                    if reg.certificate_issued_at.is_some() {
                        " with its certificate issued"
                    } else {
                        ""
                    }
                ),
            });
        }
        Ok(ReminderQueued {
            registration_id: reg.id,
            reminder: n,
            queued_at: now,
        })
    }

    /// One scan for due reminders across all tenants; returns how many
    /// registrations it reminded or gave up. Safe on every replica at once.
    pub async fn schedule_reminders(&self) -> CoreResult<usize> {
        let now = self.now();
        let decide_now = move |due: &DueReminder| decide(due, now);
        Ok(self
            .store
            .claim_due_reminders(now, SCAN_BATCH, &decide_now)
            .await?)
    }

    /// The `registration.remind` job.
    pub(crate) async fn run_registration_reminder(&self, job: &Job) -> JobOutcome {
        match self.send_reminder(job).await {
            Ok(outcome) => outcome,
            Err(e) => JobOutcome::retry(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due(sent: i64, max: i64) -> DueReminder {
        DueReminder {
            tenant_id: TenantId::new(),
            registration_id: "reg-1".into(),
            user_id: Some(UserId::new()),
            reminders_sent: sent,
            reminder_max: max,
        }
    }

    #[test]
    fn reminds_until_the_cap_then_gives_up() {
        let now = time::macros::datetime!(2026-12-01 12:00 UTC);
        let first = decide(&due(0, 2), now);
        let job = match &first {
            ReminderStep::Remind(job) => Some(job),
            ReminderStep::GiveUp(_) => None,
        };
        assert!(job.is_some(), "{first:?}");
        if let Some(job) = job {
            assert_eq!(job.kind, REMIND_JOB);
            assert_eq!(
                job.dedupe_key.as_deref(),
                Some("registration.remind:reg-1:1")
            );
            assert_eq!(job.payload["reminder"], 1);
            assert_eq!(job.run_at, now);
        }
        assert!(
            matches!(decide(&due(1, 2), now), ReminderStep::Remind(j) if j.payload["reminder"] == 2)
        );
        let given_up = decide(&due(2, 2), now);
        assert!(
            matches!(&given_up, ReminderStep::GiveUp(a) if a.action == AuditAction::RegistrationGivenUp),
            "{given_up:?}"
        );
    }
}
