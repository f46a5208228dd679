//! The push adapters: APNs (HTTP/2 provider API) for Apple devices, FCM
//! HTTP v1 for the Android agent, behind the domain's
//! [`mdm_core::push::Pusher`] port. A platform without a configured
//! provider gets [`LogPusher`]'s behaviour: the push is logged and answered
//! `Recorded`.

pub mod apns;
pub mod apns_token;
pub mod certinfo;
pub mod delivery;
pub mod fcm;

pub use apns::{APNS_ENDPOINT, ApnsAuth, ApnsClient, ApnsSettings};
pub use apns_token::ProviderToken;
pub use certinfo::PushCertificate;
pub use delivery::Delivery;
pub use fcm::{FcmClient, FcmSettings};

use async_trait::async_trait;
use mdm_core::push::{
    AndroidPush, AppAlert, ApplePush, LogPusher, PushOutcome, Pusher, log_alerts,
};

/// APNs and FCM in one [`Pusher`]; either may be absent.
#[derive(Clone, Default)]
pub struct ProviderPusher {
    pub apns: Option<ApnsClient>,
    pub fcm: Option<FcmClient>,
}

impl ProviderPusher {
    /// Logs what is configured, with the push certificate's expiry, and
    /// exposes that expiry as the gauge `mdm_apns_certificate_expiry_seconds`
    /// (Unix time) for alerting. Call once the metrics recorder is installed.
    pub fn announce(&self) {
        match self.apns.as_ref().map(ApnsClient::certificate) {
            Some(Some(cert)) => {
                let days = cert.days_left(time::OffsetDateTime::now_utc());
                let topic = cert.topic.clone().unwrap_or_default();
                metrics::gauge!("mdm_apns_certificate_expiry_seconds", "topic" => topic.clone())
                    .set(cert.not_after.unix_timestamp() as f64);
                if days < 0 {
                    tracing::error!(subject = %cert.subject, %topic, not_after = %cert.not_after, "APNs push certificate has EXPIRED: no Apple device can be woken; renew it with the same Apple ID");
                } else if days < 30 {
                    tracing::warn!(subject = %cert.subject, %topic, not_after = %cert.not_after, days_left = days, "APNs push certificate expires soon: renew it with the same Apple ID");
                } else {
                    tracing::info!(subject = %cert.subject, %topic, not_after = %cert.not_after, days_left = days, "APNs: push certificate authentication");
                }
            }
            Some(None) => tracing::info!("APNs: provider token authentication"),
            None => tracing::info!("APNs is not configured: Apple pushes are logged, not sent"),
        }
        match &self.fcm {
            Some(f) => tracing::info!(project = f.project_id(), "FCM HTTP v1 configured"),
            None => tracing::info!("FCM is not configured: Android pushes are logged, not sent"),
        }
    }
}

#[async_trait]
impl Pusher for ProviderPusher {
    async fn push_apple(&self, pushes: &[ApplePush]) -> Vec<PushOutcome> {
        let outcomes = match &self.apns {
            Some(apns) => apns.push(pushes).await,
            None => LogPusher.push_apple(pushes).await,
        };
        count("apns", &outcomes);
        outcomes
    }

    async fn push_android(&self, pushes: &[AndroidPush]) -> Vec<PushOutcome> {
        let outcomes = match &self.fcm {
            Some(fcm) => fcm.push(pushes).await,
            None => LogPusher.push_android(pushes).await,
        };
        count("fcm", &outcomes);
        outcomes
    }

    async fn push_app_alert(&self, alerts: &[AppAlert]) -> Vec<PushOutcome> {
        let outcomes = match &self.apns {
            Some(apns) => apns.push_alerts(alerts).await,
            None => log_alerts(alerts),
        };
        count("apns", &outcomes);
        outcomes
    }
}

/// `mdm_pushes_total{provider, outcome}`.
fn count(provider: &'static str, outcomes: &[PushOutcome]) {
    for o in outcomes {
        let outcome = match o {
            PushOutcome::Sent { .. } => "sent",
            PushOutcome::Recorded => "recorded",
            PushOutcome::TokenGone { .. } => "token_gone",
            PushOutcome::Retry { .. } => "retry",
            PushOutcome::Rejected { .. } => "rejected",
        };
        metrics::counter!("mdm_pushes_total", "provider" => provider, "outcome" => outcome)
            .increment(1);
    }
}
