//! The registration funnel (issue 5): how many registrations reached each
//! stage — invited → PIN used → signed in → profile downloaded → certificate
//! issued → checked in → active — per day and per platform, and which ones
//! are stuck at a stage for longer than a threshold. ADR 0011 says how the
//! invitation stages attach to a registration.

use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{TenantId, UserId};
use crate::registrations::{DevicePlatform, Registration, RegistrationStatus};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::Page;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::OffsetDateTime;

text_enum!(
    /// A funnel stage, in the order a registration reaches them.
    FunnelStage {
        Invited = "invited",
        PinUsed = "pin_used",
        SignedIn = "signed_in",
        ProfileDownloaded = "profile_downloaded",
        CertificateIssued = "certificate_issued",
        CheckedIn = "checked_in",
        Active = "active",
    }
);

impl FunnelStage {
    /// When `reg` reached this stage.
    pub fn time_in(self, reg: &Registration) -> Option<OffsetDateTime> {
        match self {
            Self::Invited => reg.invited_at,
            Self::PinUsed => reg.pin_used_at,
            Self::SignedIn => reg.signed_in_at,
            Self::ProfileDownloaded => reg.profile_downloaded_at,
            Self::CertificateIssued => reg.certificate_issued_at,
            Self::CheckedIn => reg.checked_in_at,
            Self::Active => reg.active_at,
        }
    }

    /// The furthest stage `reg` reached and when (a registration with no
    /// stage yet counts from its creation, as invited).
    pub fn furthest(reg: &Registration) -> (FunnelStage, OffsetDateTime) {
        Self::ALL
            .iter()
            .rev()
            .find_map(|s| s.time_in(reg).map(|t| (*s, t)))
            .unwrap_or((Self::Invited, reg.created_at))
    }
}

/// Which registrations the funnel counts: those created in `[from, to)`.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FunnelQuery {
    /// RFC 3339; default 30 days before `to`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub from: Option<OffsetDateTime>,
    /// RFC 3339; default now. At most 366 days after `from`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>)]
    pub to: Option<OffsetDateTime>,
    pub platform: Option<DevicePlatform>,
}

/// Registrations per stage reached, and how the ended ones ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StageCounts {
    /// All registrations counted.
    pub registrations: i64,
    pub invited: i64,
    pub pin_used: i64,
    pub signed_in: i64,
    pub profile_downloaded: i64,
    pub certificate_issued: i64,
    pub checked_in: i64,
    pub active: i64,
    /// Not active and not ended: a device may still complete them.
    pub open: i64,
    pub cancelled: i64,
    pub expired: i64,
    pub failed: i64,
    /// Reminders stopped at the cap without the profile being installed.
    pub given_up: i64,
}

impl StageCounts {
    fn add(&mut self, reg: &Registration) {
        self.registrations += 1;
        for &stage in FunnelStage::ALL {
            if stage.time_in(reg).is_some() {
                *self.stage_mut(stage) += 1;
            }
        }
        match reg.status {
            RegistrationStatus::Cancelled => self.cancelled += 1,
            RegistrationStatus::Expired => self.expired += 1,
            RegistrationStatus::Failed => self.failed += 1,
            s if s.is_open() => self.open += 1,
            _ => {}
        }
        if reg.given_up_at.is_some() {
            self.given_up += 1;
        }
    }

    fn stage_mut(&mut self, stage: FunnelStage) -> &mut i64 {
        match stage {
            FunnelStage::Invited => &mut self.invited,
            FunnelStage::PinUsed => &mut self.pin_used,
            FunnelStage::SignedIn => &mut self.signed_in,
            FunnelStage::ProfileDownloaded => &mut self.profile_downloaded,
            FunnelStage::CertificateIssued => &mut self.certificate_issued,
            FunnelStage::CheckedIn => &mut self.checked_in,
            FunnelStage::Active => &mut self.active,
        }
    }
}

/// The counts of one platform (`unknown` while no profile or app said it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PlatformCounts {
    pub platform: String,
    #[serde(flatten)]
    pub counts: StageCounts,
}

/// The counts of the registrations created on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayCounts {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    #[serde(flatten)]
    pub counts: StageCounts,
}

/// The funnel of the registrations created in `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Funnel {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub to: OffsetDateTime,
    pub total: StageCounts,
    /// One entry per platform seen, by name.
    pub by_platform: Vec<PlatformCounts>,
    /// One entry per day with registrations, oldest first.
    pub by_day: Vec<DayCounts>,
}

impl Funnel {
    /// Counts `regs` (all created in `[from, to)`).
    pub fn count(from: OffsetDateTime, to: OffsetDateTime, regs: &[Registration]) -> Self {
        let mut total = StageCounts::default();
        let mut platforms: BTreeMap<String, StageCounts> = BTreeMap::new();
        let mut days: BTreeMap<time::Date, StageCounts> = BTreeMap::new();
        for reg in regs {
            total.add(reg);
            let name = reg.platform.map_or("unknown", DevicePlatform::as_str);
            platforms.entry(name.to_string()).or_default().add(reg);
            days.entry(reg.created_at.to_offset(time::UtcOffset::UTC).date())
                .or_default()
                .add(reg);
        }
        Self {
            from,
            to,
            total,
            by_platform: platforms
                .into_iter()
                .map(|(platform, counts)| PlatformCounts { platform, counts })
                .collect(),
            by_day: days
                .into_iter()
                .map(|(d, counts)| DayCounts {
                    day: format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
                    counts,
                })
                .collect(),
        }
    }
}

/// The most registrations one funnel query counts.
pub const FUNNEL_MAX_ROWS: i64 = 200_000;

/// Which stalled registrations to list (newest first).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StalledQuery {
    /// Only those stuck at this stage (their furthest).
    pub stage: Option<FunnelStage>,
    /// Stuck for at least this many seconds (default 86400, one day).
    pub older_than_secs: Option<i64>,
    pub platform: Option<DevicePlatform>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
}

/// A registration stuck at a stage: open (or its profile expired without a
/// newer attempt by the same user), not past the stage for the threshold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct StalledRegistration {
    pub registration_id: String,
    pub user_id: Option<UserId>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub platform: Option<DevicePlatform>,
    /// The furthest stage reached.
    pub stage: FunnelStage,
    /// When it reached that stage.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub status: RegistrationStatus,
    pub reminders_sent: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_reminded_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub given_up_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// What the store filters stalled registrations by.
#[derive(Clone, Debug)]
pub struct StalledFilter {
    pub tenant_id: TenantId,
    pub stage: Option<FunnelStage>,
    /// Stuck since before this time.
    pub before: OffsetDateTime,
    pub platform: Option<DevicePlatform>,
    pub limit: Option<u32>,
    pub after: Option<String>,
}

impl Core {
    /// Counts per stage, per day and per platform of the registrations
    /// created in the query's window.
    pub async fn registration_funnel(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        query: &FunnelQuery,
    ) -> CoreResult<Funnel> {
        actor.require_tenant(tenant.id)?;
        let to = query.to.unwrap_or_else(|| self.now());
        let from = query.from.unwrap_or(to - time::Duration::days(30));
        if from >= to {
            return Err(CoreError::invalid("from", "must be before to"));
        }
        if to - from > time::Duration::days(366) {
            return Err(CoreError::invalid("to", "at most 366 days after from"));
        }
        let regs = self
            .store
            .funnel_registrations(tenant.id, from, to, query.platform)
            .await?;
        Ok(Funnel::count(from, to, &regs))
    }

    /// Registrations stuck at a stage for longer than the query's threshold.
    pub async fn stalled_registrations(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        query: &StalledQuery,
    ) -> CoreResult<Page<StalledRegistration>> {
        actor.require_tenant(tenant.id)?;
        if query.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        let secs = query.older_than_secs.unwrap_or(86_400);
        if !(0..=366 * 86_400).contains(&secs) {
            return Err(CoreError::invalid(
                "older_than_secs",
                "between 0 and 366 days",
            ));
        }
        let filter = StalledFilter {
            tenant_id: tenant.id,
            stage: query.stage,
            before: self.now() - time::Duration::seconds(secs),
            platform: query.platform,
            limit: query.limit,
            after: query.after.clone(),
        };
        Ok(self.store.stalled_registrations(&filter).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrations::RegistrationPurpose;

    #[test]
    fn counts_stages_platforms_and_days() {
        let t = TenantId::new();
        let day1 = time::macros::datetime!(2026-11-30 23:00 UTC);
        let day2 = time::macros::datetime!(2026-12-01 08:00 UTC);
        let mut a = Registration::opened(t, UserId::new(), day1);
        a.invited_at = Some(day1);
        let mut b = Registration::new(t, DevicePlatform::Ios, RegistrationPurpose::Enroll, day2);
        b.signed_in_at = Some(day2);
        b.profile_downloaded_at = Some(day2);
        b.certificate_issued_at = Some(day2);
        b.checked_in_at = Some(day2);
        b.active_at = Some(day2);
        b.status = RegistrationStatus::Active;
        let mut c = b.clone();
        c.active_at = None;
        c.checked_in_at = None;
        c.certificate_issued_at = None;
        c.status = RegistrationStatus::Expired;
        c.given_up_at = Some(day2);
        let f = Funnel::count(day1, day2, &[a.clone(), b, c]);
        assert_eq!(f.total.registrations, 3);
        assert_eq!(f.total.invited, 1);
        assert_eq!(f.total.signed_in, 2);
        assert_eq!(f.total.profile_downloaded, 2);
        assert_eq!(f.total.active, 1);
        assert_eq!((f.total.open, f.total.expired, f.total.given_up), (1, 1, 1));
        let names: Vec<_> = f.by_platform.iter().map(|p| p.platform.as_str()).collect();
        assert_eq!(names, ["ios", "unknown"]);
        assert_eq!(f.by_platform[0].counts.registrations, 2);
        let days: Vec<_> = f.by_day.iter().map(|d| d.day.as_str()).collect();
        assert_eq!(days, ["2026-11-30", "2026-12-01"]);
        assert_eq!(FunnelStage::furthest(&a), (FunnelStage::Invited, day1));
    }
}
