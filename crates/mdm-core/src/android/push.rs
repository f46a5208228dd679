//! Waking Android agents through FCM (R22): a queued command asks for an
//! `android.push` job per device (deduplicated per second); the job sends a
//! data-only wake-up that carries no command — the agent then fetches its
//! commands over the signed agent API. UNREGISTERED marks the token dead
//! until the agent reports a new one; QUOTA_EXCEEDED and UNAVAILABLE come
//! back as retries, which the job queue runs again with backoff.

use crate::android::{AndroidChange, PushRecord};
use crate::audit::AuditAction;
use crate::core::Core;
use crate::devices::device_audit;
use crate::error::CoreResult;
use crate::ids::{DeviceId, TenantId};
use crate::jobs::JobOutcome;
use crate::push::{AndroidPush, PushOutcome};
use crate::tokens::Actor;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// The job kind of an FCM wake-up.
pub const PUSH_JOB: &str = "android.push";

impl Core {
    /// Asks for a wake-up of the device: at most one per device per second.
    pub(crate) async fn request_android_push(
        &self,
        tenant: TenantId,
        device: DeviceId,
    ) -> CoreResult<()> {
        let second = self.now().unix_timestamp();
        let run_at = OffsetDateTime::from_unix_timestamp(second + 1).unwrap_or(self.now());
        let key = format!("{PUSH_JOB}:{tenant}:{device}:{second}");
        let payload = serde_json::json!({ "device": device.to_string() });
        self.enqueue_job(Some(tenant), PUSH_JOB, payload, run_at, Some(key), 8)
            .await?;
        Ok(())
    }

    /// The wake-up job.
    pub(crate) async fn run_android_push(
        &self,
        tenant: Option<TenantId>,
        payload: &serde_json::Value,
    ) -> JobOutcome {
        let device_id = payload["device"]
            .as_str()
            .and_then(|d| d.parse::<DeviceId>().ok());
        let (Some(tenant), Some(device_id)) = (tenant, device_id) else {
            return JobOutcome::Permanent("android.push: bad payload".into());
        };
        let android = match self.store.android_device(tenant, device_id).await {
            Ok(Some(a)) => a,
            Ok(None) => return JobOutcome::Done,
            Err(e) => return JobOutcome::retry(e.to_string()),
        };
        if !android.pushable() {
            return JobOutcome::Done;
        }
        let slug = match self.store.tenant(tenant).await {
            Ok(Some(t)) => t.slug,
            Ok(None) => return JobOutcome::Done,
            Err(e) => return JobOutcome::retry(e.to_string()),
        };
        let push = AndroidPush {
            tenant_id: tenant,
            device_id: device_id.to_string(),
            token: android.fcm_token.clone().unwrap_or_default(),
            data: BTreeMap::from([
                ("tenant".to_string(), slug),
                ("device".to_string(), device_id.to_string()),
            ]),
        };
        let outcome = self
            .pusher
            .push_android(std::slice::from_ref(&push))
            .await
            .into_iter()
            .next()
            .unwrap_or_else(PushOutcome::missing);
        let (label, dead, result) = outcome.judge(JobOutcome::Done);
        let now = self.now();
        let mut audit = Vec::new();
        if dead && let Ok(Some(device)) = self.store.device(tenant, device_id).await {
            audit.push(
                device_audit(
                    &device,
                    now,
                    &Actor::System,
                    AuditAction::DevicePushTokenDead,
                )
                .details(serde_json::json!({ "provider": "fcm" })),
            );
        }
        let mut change = AndroidChange::new(tenant, device_id);
        change.push = Some(PushRecord {
            at: now,
            outcome: label,
            token_dead: dead,
        });
        if let Err(e) = self.store.apply_android_change(&change, &audit).await {
            tracing::warn!(error = %e, device = %device_id, "recording a push failed");
        }
        result
    }
}
