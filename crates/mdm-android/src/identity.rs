//! The identity rules of Android registration, as pure functions of the
//! Android version and the management mode:
//!
//! - which identifiers a device can legitimately read, hence which
//!   correlation keys a registration offers ([`identity_correlation`]);
//! - whether a re-registration re-uses the old entry (R19, [`reuses_entry`]);
//! - whether user-installed CA certificates are purged (R16,
//!   [`removes_user_cas`]).
//!
//! Correlation keys say "probably the same device"; they are never the
//! device's identity, which is the server-issued device id bound to the
//! device key.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::device::DeviceFacts;
use crate::mode::ManagementMode;

/// Android 9 (Pie): the last version where any app holding READ_PHONE_STATE
/// reads IMEI, MEID and serial.
pub const API_ANDROID_9: u32 = 28;
/// Android 10: IMEI, MEID and serial need READ_PRIVILEGED_PHONE_STATE;
/// device and profile owners are exempt.
pub const API_ANDROID_10: u32 = 29;
/// Android 12: profile owners of personally-owned work profiles lose the
/// hardware identifiers and get the enrollment-specific ID instead.
pub const API_ANDROID_12: u32 = 31;
/// Android 13: QR provisioning may use mobile data instead of Wi-Fi.
pub const API_ANDROID_13: u32 = 33;

/// The kind of a correlation key, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationKind {
    /// The enrollment-specific ID (Android 12+).
    EnterpriseSpecificId,
    /// IMEI.
    Imei,
    /// MEID (CDMA devices).
    Meid,
    /// Hardware serial number.
    Serial,
    /// ANDROID_ID: weak, changes on factory reset and per user/profile.
    AndroidId,
}

impl CorrelationKind {
    /// Every kind, in priority order.
    pub const PRIORITY: [CorrelationKind; 5] = [
        Self::EnterpriseSpecificId,
        Self::Imei,
        Self::Meid,
        Self::Serial,
        Self::AndroidId,
    ];

    /// The wire and audit name (`enterprise_specific_id`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EnterpriseSpecificId => "enterprise_specific_id",
            Self::Imei => "imei",
            Self::Meid => "meid",
            Self::Serial => "serial",
            Self::AndroidId => "android_id",
        }
    }

    /// Whether the value stays the same after a factory reset.
    pub fn survives_factory_reset(self) -> bool {
        self != Self::AndroidId
    }
}

impl fmt::Display for CorrelationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One correlation key offered by a registration, value normalised
/// (IMEI digits, MEID upper-case, ANDROID_ID lower-case).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CorrelationKey {
    /// What the value is.
    pub kind: CorrelationKind,
    /// The normalised value.
    pub value: String,
}

/// Whether an agent in `mode` on `api_level` can read identifiers of `kind`.
///
/// - Enterprise-specific ID: the API exists from Android 12 (API 31), for
///   device and profile owners alike.
/// - IMEI, MEID, serial: up to Android 9 any app with READ_PHONE_STATE;
///   on Android 10 and 11 only device or profile owners, which every mode
///   here is; from Android 12 not in a personally-owned work profile.
/// - ANDROID_ID: always (but weak).
pub fn can_read(kind: CorrelationKind, api_level: u32, mode: ManagementMode) -> bool {
    match kind {
        CorrelationKind::EnterpriseSpecificId => api_level >= API_ANDROID_12,
        CorrelationKind::Imei | CorrelationKind::Meid | CorrelationKind::Serial => {
            api_level < API_ANDROID_12 || mode != ManagementMode::PersonalWorkProfile
        }
        CorrelationKind::AndroidId => true,
    }
}

/// The correlation keys a registration offers, strongest first:
/// enterprise-specific ID → IMEI → MEID → serial → ANDROID_ID.
///
/// Identifiers the device cannot legitimately have read on its version and
/// mode are dropped (see [`can_read`]): such a claim is either a bug or a
/// forgery, and must not let one device take over another's record. So are
/// placeholder values (`unknown`, `0123456789ABCDEF`, all zeros). An empty
/// result means the server has nothing better than the user + model
/// heuristic.
pub fn identity_correlation(facts: &DeviceFacts) -> Vec<CorrelationKey> {
    CorrelationKind::PRIORITY
        .into_iter()
        .filter(|kind| can_read(*kind, facts.os.api_level, facts.management_mode))
        .filter_map(|kind| {
            let value = normalise(kind, raw(facts, kind)?)?;
            Some(CorrelationKey { kind, value })
        })
        .collect()
}

/// The identifiers present in `facts` that the device cannot legitimately
/// have read (for the audit trail and fraud signals).
pub fn unreadable_identifiers(facts: &DeviceFacts) -> Vec<CorrelationKind> {
    CorrelationKind::PRIORITY
        .into_iter()
        .filter(|kind| raw(facts, *kind).is_some())
        .filter(|kind| !can_read(*kind, facts.os.api_level, facts.management_mode))
        .collect()
}

fn raw(facts: &DeviceFacts, kind: CorrelationKind) -> Option<&str> {
    let ids = &facts.identifiers;
    match kind {
        CorrelationKind::EnterpriseSpecificId => ids.enterprise_specific_id.as_deref(),
        CorrelationKind::Imei => ids.imei.as_deref(),
        CorrelationKind::Meid => ids.meid.as_deref(),
        CorrelationKind::Serial => ids.serial.as_deref(),
        CorrelationKind::AndroidId => ids.android_id.as_deref(),
    }
}

/// Normalises a value; `None` for empty and placeholder values.
fn normalise(kind: CorrelationKind, value: &str) -> Option<String> {
    let value = value.trim();
    let all_zero = value.bytes().all(|b| b == b'0');
    if value.is_empty() || all_zero {
        return None;
    }
    match kind {
        CorrelationKind::Serial => {
            let placeholder = ["unknown", "0123456789abcdef", "0123456789"]
                .iter()
                .any(|p| value.eq_ignore_ascii_case(p));
            (!placeholder).then(|| value.to_owned())
        }
        CorrelationKind::Meid => Some(value.to_ascii_uppercase()),
        CorrelationKind::AndroidId => Some(value.to_ascii_lowercase()),
        CorrelationKind::EnterpriseSpecificId | CorrelationKind::Imei => Some(value.to_owned()),
    }
}

/// R19: whether a re-registration of the same device (matched by a
/// hardware correlation key, in the same tenant) updates the existing entry.
///
/// Android 9 and earlier: yes, one entry. Android 10 and later: no, a new
/// entry per registration; the server marks older entries of that device
/// and user Retired, so only the newest is Active.
pub fn reuses_entry(api_level: u32) -> bool {
    api_level <= API_ANDROID_9
}

/// R16: whether the agent must uninstall every user-installed CA
/// certificate when registration completes.
///
/// Only on company-owned devices with a work profile and on fully managed
/// devices, where the agent owns the profile or the device. Never on a
/// personal work profile (the personal side is not ours), and not on
/// dedicated devices, which R16 does not name.
pub fn removes_user_cas(mode: ManagementMode) -> bool {
    matches!(
        mode,
        ManagementMode::CompanyOwnedWorkProfile | ManagementMode::FullyManaged
    )
}

/// R9: in-app registration by scanning a self-service QR code is offered
/// on Android 9 and later only; older devices get a clear refusal.
/// (Provisioning QR codes scanned by the setup wizard are another matter:
/// see [`crate::ProvisioningQr`].)
pub fn qr_registration_supported(api_level: u32) -> bool {
    api_level >= API_ANDROID_9
}
