//! The push port: wakes a device so that it contacts the server. A push
//! carries no command and no data the device must trust; the device always
//! fetches its work over the authenticated channel afterwards.
//!
//! The domain hands pushes to a [`Pusher`] and acts on the outcome (a token
//! that is gone is marked dead, a temporary failure is retried through the
//! job queue). Adapters (APNs over HTTP/2, FCM HTTP v1) live in the server;
//! with none configured, [`LogPusher`] records and logs each push.

use crate::ids::TenantId;
use crate::jobs::JobOutcome;
use async_trait::async_trait;
use std::collections::BTreeMap;
use time::OffsetDateTime;

/// An Apple MDM push to one channel (device or user) of an enrollment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplePush {
    pub tenant_id: TenantId,
    /// The enrollment the token belongs to (UDID, or `UDID:UserID` for a
    /// user channel), for logs and for marking the token dead.
    pub enrollment_id: String,
    /// The APNs device token from TokenUpdate (raw bytes).
    pub token: Vec<u8>,
    /// `PushMagic` from TokenUpdate.
    pub push_magic: String,
    /// The push certificate's topic (`com.apple.mgmt.…`).
    pub topic: String,
    /// Until when APNs may hold the push for an offline device.
    pub expires_at: Option<OffsetDateTime>,
}

/// An FCM wake-up for one Android device. It only wakes the agent, which
/// then fetches its commands over the authenticated agent API: `data` never
/// holds a command or anything the device must trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AndroidPush {
    pub tenant_id: TenantId,
    /// The device the token belongs to, for logs and for marking the token dead.
    pub device_id: String,
    /// The FCM registration token the agent reported.
    pub token: String,
    /// Extra string data for the agent (`type` is always `wake`).
    pub data: BTreeMap<String, String>,
}

/// A visible notification to the client app on an Apple device (not an MDM
/// push): a registration reminder. It only tells the user to open the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppAlert {
    pub tenant_id: TenantId,
    /// The registration it reminds of, for logs.
    pub registration_id: String,
    /// The app's APNs device token (raw bytes).
    pub token: Vec<u8>,
    /// The app's bundle identifier (`apns-topic`).
    pub topic: String,
    pub title: String,
    pub body: String,
}

/// What became of one push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    /// The provider accepted it (`apns-id` when the provider gave one).
    Sent { id: Option<String> },
    /// No provider is configured: the push was logged, not sent.
    Recorded,
    /// The token is no longer valid for the topic (APNs 410 Unregistered,
    /// FCM UNREGISTERED): stop pushing to it until the device sends a new one.
    TokenGone { since: Option<OffsetDateTime> },
    /// A temporary failure (429, 5xx, connection trouble): try again later,
    /// not before `retry_after` when the provider said so.
    Retry {
        reason: String,
        retry_after: Option<OffsetDateTime>,
    },
    /// The provider refused the push for a reason retrying cannot fix (bad
    /// topic, bad certificate, payload too large).
    Rejected { reason: String },
}

impl PushOutcome {
    /// What a pusher that answered fewer outcomes than pushes stands for.
    pub(crate) fn missing() -> Self {
        PushOutcome::Retry {
            reason: "the pusher answered nothing".into(),
            retry_after: None,
        }
    }

    /// What the answer means for the job that asked for the push: the label
    /// recorded on the device, whether its token is dead, and the job's
    /// outcome — `delivered` when the push went out, was recorded or found
    /// the token gone.
    pub(crate) fn judge(&self, delivered: JobOutcome) -> (String, bool, JobOutcome) {
        match self {
            PushOutcome::Sent { .. } => ("sent".to_string(), false, delivered),
            PushOutcome::Recorded => ("recorded".to_string(), false, delivered),
            PushOutcome::TokenGone { .. } => ("token_gone".to_string(), true, delivered),
            PushOutcome::Retry {
                reason,
                retry_after,
            } => (
                format!("retry: {reason}"),
                false,
                JobOutcome::Retry {
                    error: reason.clone(),
                    at: *retry_after,
                },
            ),
            PushOutcome::Rejected { reason } => (
                format!("rejected: {reason}"),
                false,
                JobOutcome::Permanent(reason.clone()),
            ),
        }
    }
}

/// Sends pushes. Implementations reuse connections, bound their
/// concurrency, and answer one outcome per push, in order.
#[async_trait]
pub trait Pusher: Send + Sync {
    async fn push_apple(&self, pushes: &[ApplePush]) -> Vec<PushOutcome>;
    async fn push_android(&self, pushes: &[AndroidPush]) -> Vec<PushOutcome>;
    /// Alerts to the client app on Apple devices. The default logs them, as
    /// [`LogPusher`] does.
    async fn push_app_alert(&self, alerts: &[AppAlert]) -> Vec<PushOutcome> {
        log_alerts(alerts)
    }
}

/// Logs each alert and answers [`PushOutcome::Recorded`].
pub fn log_alerts(alerts: &[AppAlert]) -> Vec<PushOutcome> {
    alerts
        .iter()
        .map(|a| {
            tracing::info!(
                tenant = %a.tenant_id,
                registration = %a.registration_id,
                topic = %a.topic,
                "app alert recorded, not sent: no APNs provider configured"
            );
            PushOutcome::Recorded
        })
        .collect()
}

/// The default when no push provider is configured: each push is logged
/// and answered [`PushOutcome::Recorded`]. Adapters with only one provider
/// configured use it for the other platform.
pub struct LogPusher;

#[async_trait]
impl Pusher for LogPusher {
    async fn push_apple(&self, pushes: &[ApplePush]) -> Vec<PushOutcome> {
        pushes
            .iter()
            .map(|p| {
                tracing::info!(
                    tenant = %p.tenant_id,
                    enrollment = %p.enrollment_id,
                    topic = %p.topic,
                    "push recorded, not sent: no APNs provider configured"
                );
                PushOutcome::Recorded
            })
            .collect()
    }

    async fn push_android(&self, pushes: &[AndroidPush]) -> Vec<PushOutcome> {
        pushes
            .iter()
            .map(|p| {
                tracing::info!(
                    tenant = %p.tenant_id,
                    device = %p.device_id,
                    "push recorded, not sent: no FCM provider configured"
                );
                PushOutcome::Recorded
            })
            .collect()
    }
}
