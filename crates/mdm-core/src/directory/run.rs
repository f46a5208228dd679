//! Running a sync: on demand or on the connector's schedule, under a named
//! lease so two replicas never run one tenant's sync at once. The whole
//! directory is read and planned first, then applied in one transaction
//! with its run record and audit entries (ADR 0008).

use super::sync::{MAX_RUN_ERRORS, SyncPlan, SyncRun, SyncStatus, SyncTrigger, plan_sync};
use crate::StoreError;
use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{SyncRunId, TenantId};
use crate::jobs::{Job, JobOutcome};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use time::OffsetDateTime;

/// The job kind of a scheduled sync; its payload is `{"tenant": "<id>"}`.
pub const SYNC_JOB: &str = "directory.sync";

/// Longest a sync may hold its tenant's lease (a crashed holder's lease
/// expires after this).
const SYNC_LEASE: time::Duration = time::Duration::minutes(30);

fn lease_name(tenant: TenantId) -> String {
    format!("directory-sync:{tenant}")
}

/// Why a run failed, before anything was applied.
struct Failure {
    code: &'static str,
    message: String,
    error: CoreError,
}

impl Core {
    /// Syncs the tenant's directory into its users now: creates, updates,
    /// disables and re-enables them as the directory says, all or nothing.
    /// The run is recorded either way; a failed run changed no user.
    pub async fn sync_directory(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        trigger: SyncTrigger,
    ) -> CoreResult<SyncRun> {
        let c = self.directory_connector(actor, tenant).await?;
        if !c.enabled {
            return Err(CoreError::invalid(
                "enabled",
                "the directory connector is disabled",
            ));
        }
        let holder = format!("sync-{}", SyncRunId::new());
        let name = lease_name(tenant.id);
        let started = self.now();
        if !self
            .store
            .try_lease(&name, &holder, started, started + SYNC_LEASE)
            .await?
        {
            return Err(CoreError::Conflict {
                code: "directory_sync_running",
                message:
                    "a sync of this directory is already running; try again when it has finished"
                        .into(),
            });
        }
        let result = self
            .sync_under_lease(actor, tenant, &c, trigger, started)
            .await;
        // Release: an expiry of now frees the lease for the next run.
        let now = self.now();
        if let Err(e) = self.store.try_lease(&name, &holder, now, now).await {
            tracing::warn!(error = %e, "releasing the directory sync lease");
        }
        result
    }

    async fn sync_under_lease(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        c: &super::DirectoryConnector,
        trigger: SyncTrigger,
        started: OffsetDateTime,
    ) -> CoreResult<SyncRun> {
        let cfg = self.directory_config(c)?;
        let entries = match self
            .directory
            .search(&cfg, &c.search_filter(), &c.attributes.requested())
            .await
        {
            Ok(entries) => entries,
            Err(e) => {
                let message = e.to_string();
                let error = CoreError::Upstream {
                    code: e.code(),
                    message: message.clone(),
                };
                let failure = Failure {
                    code: e.code(),
                    message,
                    error,
                };
                return Err(self
                    .record_sync_failure(actor, tenant, trigger, started, 0, failure)
                    .await);
            }
        };
        let existing = self.store.tenant_users(tenant.id).await?;
        let now = self.now();
        let plan = match plan_sync(tenant.id, &existing, &entries, &c.attributes, now) {
            Ok(plan) => plan,
            Err(missing) => {
                let message = missing.to_string();
                let error = CoreError::invalid("attributes", message.clone());
                let failure = Failure {
                    code: "directory_attributes_missing",
                    message,
                    error,
                };
                let n = entries.len() as i64;
                return Err(self
                    .record_sync_failure(actor, tenant, trigger, started, n, failure)
                    .await);
            }
        };
        let run = self.succeeded_run(tenant, trigger, started, entries.len(), &plan);
        let audit = sync_audit(tenant, actor, &run, &plan);
        match self
            .store
            .apply_directory_sync(&plan.creates, &plan.updates, &run, &audit)
            .await
        {
            Ok(()) => {
                // The run was stored with the time planning ended; its real
                // end includes the transaction.
                let mut run = run;
                run.finished_at = self.now();
                run.duration_ms = (run.finished_at - started).whole_milliseconds() as i64;
                self.store
                    .finish_directory_run(tenant.id, run.id, run.finished_at, run.duration_ms)
                    .await?;
                Ok(run)
            }
            Err(StoreError::Conflict(rule)) => {
                let message = format!(
                    "users changed while the directory was read ({rule}); nothing was applied, run the sync again"
                );
                let error = CoreError::Conflict {
                    code: "directory_sync_raced",
                    message: message.clone(),
                };
                let failure = Failure {
                    code: "directory_sync_raced",
                    message,
                    error,
                };
                let n = entries.len() as i64;
                Err(self
                    .record_sync_failure(actor, tenant, trigger, started, n, failure)
                    .await)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn succeeded_run(
        &self,
        tenant: &Tenant,
        trigger: SyncTrigger,
        started: OffsetDateTime,
        entries: usize,
        plan: &SyncPlan,
    ) -> SyncRun {
        let finished = self.now();
        let changed = plan.updates.len() - plan.disabled;
        SyncRun {
            id: SyncRunId::new(),
            tenant_id: tenant.id,
            trigger,
            status: SyncStatus::Succeeded,
            started_at: started,
            finished_at: finished,
            duration_ms: (finished - started).whole_milliseconds() as i64,
            entries: entries as i64,
            created: plan.creates.len() as i64,
            updated: changed as i64,
            reenabled: plan.reenabled as i64,
            disabled: plan.disabled as i64,
            unchanged: plan.unchanged as i64,
            error_count: plan.errors.len() as i64,
            errors: plan.errors.iter().take(MAX_RUN_ERRORS).cloned().collect(),
            error: None,
            error_code: None,
        }
    }

    /// Records a failed run (no user changed) and returns the error to report.
    async fn record_sync_failure(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        trigger: SyncTrigger,
        started: OffsetDateTime,
        entries: i64,
        failure: Failure,
    ) -> CoreError {
        let finished = self.now();
        let run = SyncRun {
            id: SyncRunId::new(),
            tenant_id: tenant.id,
            trigger,
            status: SyncStatus::Failed,
            started_at: started,
            finished_at: finished,
            duration_ms: (finished - started).whole_milliseconds() as i64,
            entries,
            created: 0,
            updated: 0,
            reenabled: 0,
            disabled: 0,
            unchanged: 0,
            error_count: 0,
            errors: Vec::new(),
            error: Some(failure.message.clone()),
            error_code: Some(failure.code.to_string()),
        };
        let audit = AuditEntry::new(
            Some(tenant.id),
            finished,
            actor,
            AuditAction::DirectorySyncFailed,
            ("directory_sync", run.id.to_string()),
        )
        .details(serde_json::json!({
            "trigger": trigger.as_str(), "code": failure.code, "error": failure.message,
        }));
        if let Err(e) = self.store.record_directory_run(&run, &audit).await {
            tracing::warn!(error = %e, "recording a failed directory sync");
        }
        failure.error
    }

    /// The tenant's sync runs, newest first.
    pub async fn directory_runs(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        limit: Option<u32>,
    ) -> CoreResult<Vec<SyncRun>> {
        actor.require_tenant(tenant.id)?;
        let limit = limit.unwrap_or(20);
        if !(1..=1000).contains(&limit) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        Ok(self
            .store
            .directory_runs(tenant.id, i64::from(limit))
            .await?)
    }

    /// Queues the scheduled sync of every enabled connector whose interval
    /// has come round: one job per tenant and interval slot, deduplicated
    /// by the queue, so every replica may call this and each slot syncs
    /// once. Returns how many jobs were queued.
    pub async fn schedule_directory_syncs(&self) -> CoreResult<usize> {
        let now = self.now();
        let mut queued = 0;
        for c in self.store.directory_connectors().await? {
            if !c.enabled || c.sync_interval_secs <= 0 {
                continue;
            }
            let slot = now.unix_timestamp().div_euclid(c.sync_interval_secs);
            let key = format!("{SYNC_JOB}:{}:{}:{slot}", c.tenant_id, c.sync_interval_secs);
            let payload = serde_json::json!({ "tenant": c.tenant_id });
            if self
                .enqueue_job(Some(c.tenant_id), SYNC_JOB, payload, now, Some(key), 1)
                .await?
            {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// Runs one scheduled sync job.
    pub(crate) async fn run_directory_sync_job(&self, job: &Job) -> JobOutcome {
        let tenant = job.payload["tenant"]
            .as_str()
            .and_then(|t| t.parse::<TenantId>().ok());
        let Some(id) = tenant else {
            return JobOutcome::Permanent("payload names no tenant".into());
        };
        let tenant = match self.store.tenant(id).await {
            Ok(Some(t)) => t,
            Ok(None) => return JobOutcome::Permanent(format!("tenant {id} does not exist")),
            Err(e) => return JobOutcome::retry(e.to_string()),
        };
        match self
            .sync_directory(&Actor::System, &tenant, SyncTrigger::Scheduled)
            .await
        {
            Ok(run) => {
                tracing::info!(tenant = %tenant.slug, created = run.created, updated = run.updated,
                    disabled = run.disabled, errors = run.error_count, "directory sync");
                JobOutcome::Done
            }
            // Another replica (or an administrator) is syncing this tenant right now.
            Err(CoreError::Conflict {
                code: "directory_sync_running",
                ..
            }) => JobOutcome::Done,
            Err(CoreError::Store(e)) => JobOutcome::retry(e),
            // Recorded as a failed run; the next slot tries again.
            Err(e) => JobOutcome::Permanent(e.to_string()),
        }
    }
}

/// One entry for the run, plus one per user created, changed or disabled.
fn sync_audit(tenant: &Tenant, actor: &Actor, run: &SyncRun, plan: &SyncPlan) -> Vec<AuditEntry> {
    let at = run.finished_at;
    let mut audit = Vec::with_capacity(1 + plan.creates.len() + plan.updates.len());
    audit.push(
        AuditEntry::new(
            Some(tenant.id),
            at,
            actor,
            AuditAction::DirectorySynced,
            ("directory_sync", run.id.to_string()),
        )
        .details(serde_json::json!({
            "trigger": run.trigger.as_str(), "entries": run.entries, "created": run.created,
            "updated": run.updated, "reenabled": run.reenabled, "disabled": run.disabled,
            "unchanged": run.unchanged, "errors": run.error_count, "duration_ms": run.duration_ms,
        })),
    );
    for u in &plan.creates {
        audit.push(
            AuditEntry::new(
                Some(tenant.id),
                at,
                actor,
                AuditAction::UserCreated,
                ("user", u.id.to_string()),
            )
            .user(u.id)
            .details(serde_json::json!({
                "email": u.email, "source": "ldap", "external_id": u.external_id,
                "login_name": u.login_name, "sync_run": run.id,
            })),
        );
    }
    for ch in &plan.updates {
        let (b, a) = (&ch.before, &ch.after);
        let reason = if !a.enabled {
            "gone from the directory"
        } else {
            "changed in the directory"
        };
        audit.push(
            AuditEntry::new(
                Some(tenant.id),
                at,
                actor,
                AuditAction::UserUpdated,
                ("user", a.id.to_string()),
            )
            .user(a.id)
            .details(serde_json::json!({
                "changed": ch.changed, "reason": reason, "sync_run": run.id,
                "email": { "old": b.email, "new": a.email },
                "login_name": { "old": b.login_name, "new": a.login_name },
                "enabled": { "old": b.enabled, "new": a.enabled },
            })),
        );
    }
    audit
}
