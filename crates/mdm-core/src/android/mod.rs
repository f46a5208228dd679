//! Android devices registered through our device-policy agent (the wire
//! protocol is `mdm-android`): the records the store keeps, the identity
//! keys that recognise a device again (R18, R19), and the use cases in the
//! submodules — `register.rs` (registration and re-registration),
//! `agent.rs` (signed requests: check-in, commands, results, events),
//! `lifecycle.rs` (retire, wipe, lock, delete for administrators),
//! `push.rs` (the FCM wake job) and `provisioning.rs` (enrollment tokens
//! and the QR provisioning payload). Why this shape: ADR 0010
//! (`docs/adr/0010-android-identity-and-reregistration.md`).

pub mod agent;
pub mod lifecycle;
pub mod provisioning;
pub mod push;
pub mod register;

use crate::devices::DeviceStatus;
use crate::ids::{DeviceId, TenantId, UserId};
use mdm_android::{CorrelationKind, DeviceFacts, ManagementMode, identity_correlation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

text_enum!(
    /// What recognises an Android device again, strongest first (R19).
    AndroidKeyKind {
        /// Android 12+: stable per device and organisation, survives a reset.
        EnterpriseSpecificId = "enterprise_specific_id",
        Imei = "imei",
        Meid = "meid",
        Serial = "serial",
        /// Changes with a factory reset.
        AndroidId = "android_id",
        /// The weakest: the same user registering the same model.
        UserModel = "user_model",
    }
);

/// One identity key of a registering device.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AndroidKey {
    pub kind: AndroidKeyKind,
    pub value: String,
}

impl AndroidKey {
    /// `kind:value`, the name of its lock row and of an entry's identity.
    pub fn name(&self) -> String {
        format!("{}:{}", self.kind, self.value)
    }
}

fn kind_of(kind: CorrelationKind) -> AndroidKeyKind {
    match kind {
        CorrelationKind::EnterpriseSpecificId => AndroidKeyKind::EnterpriseSpecificId,
        CorrelationKind::Imei => AndroidKeyKind::Imei,
        CorrelationKind::Meid => AndroidKeyKind::Meid,
        CorrelationKind::Serial => AndroidKeyKind::Serial,
        CorrelationKind::AndroidId => AndroidKeyKind::AndroidId,
    }
}

/// The correlation keys of a device in priority order: the hardware
/// identifiers its API level and mode let the agent read, then user+model.
pub fn correlation_keys(facts: &DeviceFacts, user: UserId) -> Vec<AndroidKey> {
    let mut keys: Vec<AndroidKey> = identity_correlation(facts)
        .into_iter()
        .map(|k| AndroidKey {
            kind: kind_of(k.kind),
            value: k.value,
        })
        .collect();
    keys.push(AndroidKey {
        kind: AndroidKeyKind::UserModel,
        value: format!(
            "{user}/{}/{}",
            facts.manufacturer.trim().to_lowercase(),
            facts.model.trim().to_lowercase()
        ),
    });
    keys
}

/// The Android half of a device entry. The device key and the FCM token are
/// never serialised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AndroidDevice {
    pub tenant_id: TenantId,
    pub device_id: DeviceId,
    /// The registration that created or last reused this entry.
    pub registration_id: Option<String>,
    #[schema(value_type = String)]
    pub management_mode: ManagementMode,
    pub api_level: u32,
    pub manufacturer: String,
    /// The device's public key (SubjectPublicKeyInfo DER): verifies its requests.
    #[serde(skip)]
    pub public_key: Vec<u8>,
    pub cert_serial: Option<String>,
    pub cert_fingerprint: Option<String>,
    /// The strongest key at registration (`kind:value`): at most one current
    /// entry per identity.
    pub identity_key: String,
    /// Which key found the previous entry at the last registration.
    pub matched_key: Option<AndroidKeyKind>,
    pub enterprise_specific_id: Option<String>,
    pub imei: Option<String>,
    pub meid: Option<String>,
    pub serial: Option<String>,
    pub android_id: Option<String>,
    /// Not retired or wiped: the one entry of its identity (R19).
    pub current: bool,
    /// Its signed requests are served (until a retire or wipe is carried out,
    /// a deletion, or a newer registration of the device).
    pub enabled: bool,
    #[serde(skip)]
    pub fcm_token: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub fcm_token_dead_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_push_at: Option<OffsetDateTime>,
    pub last_push_outcome: Option<String>,
    /// The last check-in: status, inventory and installed CA certificates.
    #[schema(value_type = Object)]
    pub checkin: serde_json::Value,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_checkin_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl AndroidDevice {
    /// Whether a wake-up can reach the agent.
    pub fn pushable(&self) -> bool {
        self.enabled
            && self.fcm_token_dead_at.is_none()
            && self.fcm_token.as_ref().is_some_and(|t| !t.is_empty())
    }
}

text_enum!(
    /// Where an agent command is.
    AndroidCommandState {
        Queued = "queued",
        /// Handed to the agent; no result yet.
        Sent = "sent",
        Acknowledged = "acknowledged",
        Error = "error",
        /// The agent will retry later; handed out again on the next fetch.
        NotNow = "not_now",
        /// Dropped (the device was retired or registered again).
        Cancelled = "cancelled",
    }
);

impl AndroidCommandState {
    /// A result was recorded or the command was dropped.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Acknowledged | Self::Error | Self::Cancelled)
    }
}

/// An agent command as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AndroidCommand {
    pub tenant_id: TenantId,
    pub id: String,
    pub device_id: DeviceId,
    /// The wire type (`retire`, `wipe`, `remove_ca_certificates`, …).
    pub kind: String,
    /// The command as the agent receives it.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub state: AndroidCommandState,
    /// The device status an acknowledgement sets (wipe: `wiped`).
    pub ack_device_status: Option<DeviceStatus>,
    pub queued_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub result_at: Option<OffsetDateTime>,
    /// What the agent reported (message, removed CA fingerprints).
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
}

/// The entries an identity key found, with the kind that found them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Correlation {
    pub kind: AndroidKeyKind,
    /// Newest first.
    pub entries: Vec<CorrelatedEntry>,
}

/// One entry a correlation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorrelatedEntry {
    pub device_id: DeviceId,
    pub status: DeviceStatus,
    pub current: bool,
    pub created_at: OffsetDateTime,
}

/// A nonce of a signed request, remembered until its timestamp is stale.
#[derive(Clone, Debug)]
pub struct NonceUse {
    pub nonce: String,
    pub expires_at: OffsetDateTime,
    pub now: OffsetDateTime,
}

/// A status change of an entry.
#[derive(Clone, Copy, Debug)]
pub struct StatusChange {
    pub status: DeviceStatus,
    pub current: bool,
    pub enabled: bool,
    pub at: OffsetDateTime,
}

/// What a check-in writes.
#[derive(Clone, Debug)]
pub struct Seen {
    pub at: OffsetDateTime,
    pub os_version: String,
    pub api_level: u32,
    pub management_mode: ManagementMode,
    pub checkin: serde_json::Value,
    /// A new FCM token (clears a dead mark).
    pub fcm_token: Option<String>,
}

/// A push attempt.
#[derive(Clone, Debug)]
pub struct PushRecord {
    pub at: OffsetDateTime,
    pub outcome: String,
    pub token_dead: bool,
}

/// A command result, written only if the command has no final result yet.
#[derive(Clone, Debug)]
pub struct ResultUpdate {
    pub id: String,
    pub state: AndroidCommandState,
    pub result: serde_json::Value,
    pub at: OffsetDateTime,
}

/// Rows one agent request or admin action writes together with its audit.
#[derive(Clone, Debug)]
pub struct AndroidChange {
    pub tenant_id: TenantId,
    pub device_id: DeviceId,
    /// Consumed first: `Conflict("android_nonce_replayed")` when seen before.
    pub nonce: Option<NonceUse>,
    pub status: Option<StatusChange>,
    pub seen: Option<Seen>,
    pub push: Option<PushRecord>,
    pub commands: Vec<AndroidCommand>,
    /// Cancels the queued and sent commands (before `commands` are added).
    pub cancel_queued: bool,
    /// When it finds no open command, nothing of the change is written.
    pub result: Option<ResultUpdate>,
    /// Hands out up to this many queued / not-now commands (marked sent).
    pub fetch: Option<i64>,
}

impl AndroidChange {
    pub fn new(tenant_id: TenantId, device_id: DeviceId) -> Self {
        Self {
            tenant_id,
            device_id,
            nonce: None,
            status: None,
            seen: None,
            push: None,
            commands: Vec::new(),
            cancel_queued: false,
            result: None,
            fetch: None,
        }
    }
}

/// What an [`AndroidChange`] found.
#[derive(Clone, Debug, Default)]
pub struct AndroidChangeOutcome {
    pub fetched: Vec<AndroidCommand>,
    /// Commands are waiting (queued or not now) after the change.
    pub pending: bool,
    /// The result was recorded (false: a duplicate or unknown command).
    pub result_recorded: bool,
}

/// A registration in one transaction. The store takes the identity locks,
/// correlates again and refuses with `Conflict("android_registration_raced")`
/// when the result differs from `expected` (a concurrent registration of the
/// same device committed first); the domain then plans again.
#[derive(Clone, Debug)]
pub struct AndroidRegistration {
    pub tenant_id: TenantId,
    /// Every key of the device (locked in sorted order).
    pub keys: Vec<AndroidKey>,
    pub expected: Option<Correlation>,
    pub device: crate::devices::Device,
    /// Insert the device (`true`) or update the reused one.
    pub device_is_new: bool,
    pub android: AndroidDevice,
    /// Older entries that become retired (Android 10+).
    pub retire: Vec<DeviceId>,
    pub registration: crate::registrations::Registration,
    /// `registration` continues the user's open registration (the one the
    /// invitation and sign-in stamped): it replaces that row.
    pub continues_open: bool,
    pub certificate: crate::pki::CertificateRecord,
    /// Commands to queue (R16).
    pub commands: Vec<AndroidCommand>,
}

/// Android settings the server configuration supplies.
#[derive(Clone, Debug)]
pub struct AndroidSettings {
    /// How often the agent checks in (60–86400 s).
    pub checkin_interval_secs: u32,
    /// Accepted clock difference of signed requests (also how long nonces are kept).
    pub max_skew: time::Duration,
    /// How long an enrollment token from the client app stays valid.
    pub app_token_lifetime: time::Duration,
    /// How long an enrollment token in a provisioning QR code stays valid.
    pub provisioning_token_lifetime: time::Duration,
    /// The agent package that QR provisioning installs; `None` until configured.
    pub agent: Option<mdm_android::AgentPackage>,
}

impl Default for AndroidSettings {
    fn default() -> Self {
        Self {
            checkin_interval_secs: 900,
            max_skew: mdm_android::DEFAULT_MAX_SKEW,
            app_token_lifetime: time::Duration::minutes(10),
            provisioning_token_lifetime: time::Duration::days(1),
            agent: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdm_android::{Identifiers, OsInfo};

    fn facts(api_level: u32, mode: ManagementMode) -> DeviceFacts {
        DeviceFacts {
            manufacturer: "Google".into(),
            model: "Pixel".into(),
            os: OsInfo {
                version: "x".into(),
                api_level,
                security_patch: None,
            },
            management_mode: mode,
            identifiers: Identifiers {
                enterprise_specific_id: Some("esid-1".into()),
                imei: Some("350000000000001".into()),
                meid: None,
                serial: Some("SER1".into()),
                android_id: Some("ABCD".into()),
            },
        }
    }

    fn kinds(api: u32, mode: ManagementMode) -> Vec<&'static str> {
        correlation_keys(&facts(api, mode), UserId(uuid::Uuid::nil()))
            .iter()
            .map(|k| k.kind.as_str())
            .collect()
    }

    #[test]
    fn keys_in_priority_order_as_the_agent_can_read_them() {
        use ManagementMode::*;
        let table: [(u32, ManagementMode, &[&str]); 4] = [
            (
                28,
                FullyManaged,
                &["imei", "serial", "android_id", "user_model"],
            ),
            (
                33,
                FullyManaged,
                &[
                    "enterprise_specific_id",
                    "imei",
                    "serial",
                    "android_id",
                    "user_model",
                ],
            ),
            (
                33,
                PersonalWorkProfile,
                &["enterprise_specific_id", "android_id", "user_model"],
            ),
            (
                30,
                PersonalWorkProfile,
                &["imei", "serial", "android_id", "user_model"],
            ),
        ];
        for (api, mode, want) in table {
            assert_eq!(kinds(api, mode), want, "API {api} {mode}");
        }
        let keys = correlation_keys(&facts(28, FullyManaged), UserId(uuid::Uuid::nil()));
        assert_eq!(
            keys.last().map(AndroidKey::name).as_deref(),
            Some("user_model:00000000-0000-0000-0000-000000000000/google/pixel")
        );
        assert_eq!(
            keys.iter()
                .find(|k| k.kind == AndroidKeyKind::AndroidId)
                .map(|k| k.value.as_str()),
            Some("abcd")
        );
    }
}
