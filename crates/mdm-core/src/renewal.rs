//! Identity renewal. Apple devices never renew their MDM identity
//! certificate themselves: before it expires the server re-sends the
//! enrollment profile (the same identifier, Topic and URLs, so it replaces
//! the installed one) as an `InstallProfile` command. The device gets a fresh
//! certificate by SCEP, and its `Authenticate` renews the same device record:
//! the queue and the history stay, the new certificate is bound, the old one
//! stops working.
//!
//! A scheduled `apple.renewal` job finds the due devices; an administrator can
//! re-send the profile at any time ([`Core::resend_profile`]). A renewal
//! registration that is not completed in time expires without touching the
//! device, and the next scan tries again.

use crate::commands::{AppleCommand, CommandTarget};
use crate::core::Core;
use crate::devices::{AppleChannel, DeviceStatus};
use crate::error::{CoreError, CoreResult};
use crate::ids::{DeviceId, TenantId};
use crate::jobs::JobOutcome;
use crate::profiles::{ApplePlatform, ProfileRequest};
use crate::registrations::{DevicePlatform, RegistrationPurpose};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_apple::{Command, CommandRequest};
use time::Duration;

/// The job that re-sends profiles to devices whose certificate is due.
pub const RENEWAL_JOB: &str = "apple.renewal";

/// Devices handled by one renewal job; a full batch queues the next at once.
const RENEWAL_BATCH: u32 = 200;

/// When and how identity certificates are renewed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RenewalSettings {
    /// Re-send the profile when the bound certificate expires within this.
    pub renew_before: Duration,
    /// How long the re-sent profile's SCEP challenge stays valid: the
    /// command waits in the queue until the device next connects.
    pub challenge_lifetime: Duration,
    /// How often the scan runs.
    pub scan_every: Duration,
}

impl Default for RenewalSettings {
    fn default() -> Self {
        Self {
            renew_before: Duration::days(30),
            challenge_lifetime: Duration::days(3),
            scan_every: Duration::hours(1),
        }
    }
}

impl Core {
    /// Re-sends the enrollment profile to an enrolled Apple device as an
    /// `InstallProfile` command (with a fresh SCEP challenge), so that it
    /// renews its identity certificate in place. Returns the queued command.
    pub async fn resend_profile(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: DeviceId,
    ) -> CoreResult<AppleCommand> {
        let detail = self.device(actor, tenant, id).await?;
        let platform = match detail.device.platform {
            DevicePlatform::Ios => ApplePlatform::Ios,
            DevicePlatform::Macos => ApplePlatform::Macos,
            DevicePlatform::Android => {
                return Err(CoreError::invalid(
                    "device",
                    "Android devices have no management profile",
                ));
            }
        };
        if detail.device.status != DeviceStatus::Active {
            return Err(CoreError::Conflict {
                code: "device_not_active",
                message: format!(
                    "the device is {}; only an active device renews its profile (re-enrol it instead)",
                    detail.device.status
                ),
            });
        }
        if !detail
            .enrollments
            .iter()
            .any(|e| e.channel == AppleChannel::Device && e.enabled)
        {
            return Err(CoreError::Conflict {
                code: "no_channel",
                message: "the device's MDM channel is disabled".into(),
            });
        }
        let request = ProfileRequest {
            platform,
            user_id: detail.device.user_id,
            registration: None,
            purpose: RegistrationPurpose::Renewal,
            device_id: Some(id),
            challenge_lifetime: Some(self.apple.renewal.challenge_lifetime),
        };
        let profile = self.issue_profile_for(actor, tenant, request).await?;
        let cmd = Command::new(
            self.command_uuid(),
            CommandRequest::InstallProfile {
                payload: profile.signed,
            },
        );
        self.queue_command(actor, tenant, CommandTarget::device(id), cmd)
            .await
    }

    /// Queues this period's renewal scan (deduplicated across replicas).
    pub async fn schedule_renewal_scan(&self) -> CoreResult<bool> {
        let now = self.now();
        let every = self.apple.renewal.scan_every.whole_seconds().max(1);
        let slot = now.unix_timestamp().div_euclid(every);
        let key = format!("{RENEWAL_JOB}:{every}:{slot}");
        self.enqueue_job(None, RENEWAL_JOB, serde_json::json!({}), now, Some(key), 3)
            .await
    }

    /// The renewal job: re-sends the profile to every device whose
    /// certificate expires within the renewal window.
    pub(crate) async fn run_renewal_scan(&self) -> JobOutcome {
        let before = self.now() + self.apple.renewal.renew_before;
        let due = match self
            .store
            .apple_renewal_candidates(before, RENEWAL_BATCH)
            .await
        {
            Ok(d) => d,
            Err(e) => return JobOutcome::retry(e.to_string()),
        };
        let mut sent = 0usize;
        for (tenant, device) in &due {
            match self.renew_one(*tenant, *device).await {
                Ok(()) => sent += 1,
                Err(e) => {
                    tracing::warn!(%tenant, %device, error = %e, "re-sending the profile failed")
                }
            }
        }
        if due.len() == RENEWAL_BATCH as usize {
            // More may be due: the next batch runs at once (its key is new).
            let key = format!("{RENEWAL_JOB}:more:{}", self.token(8));
            if let Err(e) = self
                .enqueue_job(
                    None,
                    RENEWAL_JOB,
                    serde_json::json!({}),
                    self.now(),
                    Some(key),
                    3,
                )
                .await
            {
                return JobOutcome::retry(e.to_string());
            }
        }
        if !due.is_empty() {
            tracing::info!(
                due = due.len(),
                sent,
                "identity certificates due for renewal"
            );
        }
        JobOutcome::Done
    }

    async fn renew_one(&self, tenant: TenantId, device: DeviceId) -> CoreResult<()> {
        let tenant = self
            .store
            .tenant(tenant)
            .await?
            .ok_or(CoreError::NotFound("tenant"))?;
        self.resend_profile(&Actor::System, &tenant, device).await?;
        Ok(())
    }
}
