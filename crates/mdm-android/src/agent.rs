//! Signed agent messages about the device: check-ins (status and inventory)
//! and lifecycle events. Commands and their results are in `command.rs`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::device::OsInfo;
use crate::error::ValidationError;
use crate::fingerprint::Fingerprint;
use crate::message::Message;
use crate::mode::ManagementMode;
use crate::register::{MAX_CHECKIN_INTERVAL_SECS, MIN_CHECKIN_INTERVAL_SECS, fcm_token};
use crate::validate::{count, opt_text, package_name, range, text};

/// Most apps in one inventory.
pub const MAX_APPS: usize = 5_000;
/// Most CA certificates in one inventory or command.
pub const MAX_CA_CERTIFICATES: usize = 500;
/// Most events in one upload.
pub const MAX_EVENTS: usize = 100;

/// `POST checkin`: the periodic report, also sent after a push wake-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkin {
    /// The mode the agent runs in now.
    pub management_mode: ManagementMode,
    /// The operating system now (it changes with updates).
    pub os: OsInfo,
    /// Battery and storage.
    pub status: DeviceStatus,
    /// Full inventory; agents may send it only when it changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
    /// A new FCM token, when FCM rotated it since the last report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fcm_token: Option<String>,
}

impl Message for Checkin {
    const MAX_BODY_LEN: usize = 1024 * 1024;

    fn validate(&self) -> Result<(), ValidationError> {
        self.os.check()?;
        self.status.check()?;
        if let Some(inventory) = &self.inventory {
            inventory.check()?;
        }
        if let Some(token) = &self.fcm_token {
            fcm_token("fcm_token", token)?;
        }
        Ok(())
    }
}

/// Battery and storage; every field optional (not all devices report all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceStatus {
    /// Battery level, 0–100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub battery_percent: Option<u8>,
    /// Whether the device is charging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charging: Option<bool>,
    /// Free internal storage in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_free_bytes: Option<u64>,
    /// Total internal storage in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_total_bytes: Option<u64>,
}

impl DeviceStatus {
    fn check(&self) -> Result<(), ValidationError> {
        if let Some(level) = self.battery_percent {
            range("status.battery_percent", i64::from(level), 0, 100)?;
        }
        if let (Some(free), Some(total)) = (self.storage_free_bytes, self.storage_total_bytes)
            && free > total
        {
            return Err(ValidationError::BadFormat {
                field: "status.storage_free_bytes",
                reason: "larger than storage_total_bytes",
            });
        }
        Ok(())
    }
}

/// What is installed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Installed apps (in the managed profile, or the whole device for a
    /// device owner).
    pub apps: Vec<InstalledApp>,
    /// CA certificates from `DevicePolicyManager.getInstalledCaCerts`: every
    /// trusted CA except the system ones, including user-installed ones.
    pub ca_certificates: Vec<CaCertificate>,
}

impl Inventory {
    fn check(&self) -> Result<(), ValidationError> {
        count("inventory.apps", self.apps.len(), MAX_APPS)?;
        for app in &self.apps {
            package_name("inventory.apps.package", &app.package)?;
            opt_text(
                "inventory.apps.version_name",
                app.version_name.as_deref(),
                128,
            )?;
        }
        count(
            "inventory.ca_certificates",
            self.ca_certificates.len(),
            MAX_CA_CERTIFICATES,
        )?;
        for ca in &self.ca_certificates {
            text("inventory.ca_certificates.subject", &ca.subject, 1024)?;
        }
        Ok(())
    }
}

/// One installed app.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstalledApp {
    /// Package name (`com.example.app`).
    pub package: String,
    /// `versionName`, when the app sets one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_name: Option<String>,
    /// `versionCode` (`getLongVersionCode`).
    pub version_code: u64,
}

/// One installed CA certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaCertificate {
    /// SHA-256 of the certificate DER.
    pub sha256: Fingerprint,
    /// The subject as the device prints it (RFC 4514), at most 1 KiB.
    pub subject: String,
}

/// The answer to a check-in.
///
/// Unknown fields are tolerated, as in every server-to-device message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckinResponse {
    /// Seconds until the next periodic check-in.
    pub checkin_interval_secs: u32,
    /// Commands are waiting: fetch them now.
    pub commands_pending: bool,
}

impl Message for CheckinResponse {
    const MAX_BODY_LEN: usize = 4 * 1024;

    fn validate(&self) -> Result<(), ValidationError> {
        range(
            "checkin_interval_secs",
            i64::from(self.checkin_interval_secs),
            i64::from(MIN_CHECKIN_INTERVAL_SECS),
            i64::from(MAX_CHECKIN_INTERVAL_SECS),
        )
    }
}

/// `POST events`: lifecycle events the agent queued, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsRequest {
    /// 1 to [`MAX_EVENTS`] events.
    pub events: Vec<DeviceEvent>,
}

impl Message for EventsRequest {
    const MAX_BODY_LEN: usize = 64 * 1024;

    fn validate(&self) -> Result<(), ValidationError> {
        if self.events.is_empty() {
            return Err(ValidationError::Empty { field: "events" });
        }
        count("events", self.events.len(), MAX_EVENTS)?;
        for event in &self.events {
            range("events.occurred_at", event.occurred_at, 0, 32_503_680_000)?;
        }
        Ok(())
    }
}

/// One event, delivered at least once: the server deduplicates on `id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceEvent {
    /// Chosen by the agent; the same on every retry.
    pub id: Uuid,
    /// When it happened, by the device clock (Unix seconds).
    pub occurred_at: i64,
    /// What happened.
    pub event: EventKind,
}

/// What happened on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum EventKind {
    /// The device lost (or is losing) its management state (R18 "Reset";
    /// the entry stays Active until the next registration). Signed with the
    /// identity the agent holds when it finds out: the outgoing one (from
    /// `DeviceAdminReceiver.onDisabled`, profile removal, or before a reset
    /// the agent starts itself), or the new one after re-registering.
    Reset {
        /// Why.
        cause: ResetCause,
        /// The entry that was reset, when the agent knows it and it is not
        /// the sender (reported after re-registration).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        previous_device_id: Option<Uuid>,
    },
}

/// Why the device reported a reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetCause {
    /// The device is being (or was) factory reset.
    FactoryReset,
    /// The agent was reinstalled or its data cleared.
    AgentReinstalled,
    /// The user removed the work profile.
    WorkProfileRemoved,
}
