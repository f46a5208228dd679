//! What a device says about itself: make and model, OS, management mode and
//! the identifiers it could read. Sent at registration; the OS part again at
//! every check-in.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::mode::ManagementMode;
use crate::validate::{is_visible_ascii, opt_text, patch_level, range, text, token};

/// Lowest API level accepted: Android 5.0, the first with device owners and
/// managed profiles.
pub const MIN_API_LEVEL: u32 = 21;
/// Highest API level accepted (a sanity bound, far above any release).
pub const MAX_API_LEVEL: u32 = 255;

/// The operating system.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OsInfo {
    /// `Build.VERSION.RELEASE` (`"14"`, `"8.1.0"`), at most 32 bytes.
    pub version: String,
    /// `Build.VERSION.SDK_INT` (34 for Android 14).
    pub api_level: u32,
    /// `Build.VERSION.SECURITY_PATCH` (`YYYY-MM-DD`), when the build sets it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_patch: Option<String>,
}

impl OsInfo {
    pub(crate) fn check(&self) -> Result<(), ValidationError> {
        text("os.version", &self.version, 32)?;
        range(
            "os.api_level",
            i64::from(self.api_level),
            i64::from(MIN_API_LEVEL),
            i64::from(MAX_API_LEVEL),
        )?;
        if let Some(patch) = &self.security_patch {
            patch_level("os.security_patch", patch)?;
        }
        Ok(())
    }
}

/// The facts a registering device reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceFacts {
    /// `Build.MANUFACTURER`, at most 64 bytes.
    pub manufacturer: String,
    /// `Build.MODEL`, at most 64 bytes.
    pub model: String,
    /// The operating system.
    pub os: OsInfo,
    /// The mode the agent runs in.
    pub management_mode: ManagementMode,
    /// The identifiers the agent could read (all optional).
    #[serde(default)]
    pub identifiers: Identifiers,
}

impl DeviceFacts {
    pub(crate) fn check(&self) -> Result<(), ValidationError> {
        text("device.manufacturer", &self.manufacturer, 64)?;
        text("device.model", &self.model, 64)?;
        self.os.check()?;
        self.identifiers.check()
    }
}

/// Identifiers as read by the agent; absent when the platform refused them.
///
/// Values are sent as read; [`crate::identity_correlation`] normalises them
/// and drops the ones the device cannot legitimately have read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifiers {
    /// `DevicePolicyManager.getEnrollmentSpecificId()` (Android 12+): stable
    /// for device + organization + managing app, survives factory reset.
    /// At most 128 visible ASCII characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enterprise_specific_id: Option<String>,
    /// IMEI (14–16 digits: with or without check digit, or IMEISV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imei: Option<String>,
    /// MEID (14 hex digits, or 18 decimal digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meid: Option<String>,
    /// `Build.getSerial()`, at most 64 visible ASCII characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    /// `Settings.Secure.ANDROID_ID` (hex; per app signing key, user and
    /// device; changes on factory reset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub android_id: Option<String>,
}

impl Identifiers {
    pub(crate) fn check(&self) -> Result<(), ValidationError> {
        if let Some(esid) = &self.enterprise_specific_id {
            token(
                "identifiers.enterprise_specific_id",
                esid,
                128,
                is_visible_ascii,
                "visible ASCII only",
            )?;
        }
        if let Some(imei) = &self.imei {
            digits("identifiers.imei", imei, &[14, 15, 16])?;
        }
        if let Some(meid) = &self.meid {
            let hex14 = meid.len() == 14 && meid.bytes().all(|b| b.is_ascii_hexdigit());
            let dec18 = meid.len() == 18 && meid.bytes().all(|b| b.is_ascii_digit());
            if !(hex14 || dec18) {
                opt_text("identifiers.meid", Some(meid), 18)?;
                return Err(ValidationError::BadFormat {
                    field: "identifiers.meid",
                    reason: "expected 14 hex or 18 decimal digits",
                });
            }
        }
        if let Some(serial) = &self.serial {
            token(
                "identifiers.serial",
                serial,
                64,
                is_visible_ascii,
                "visible ASCII only",
            )?;
        }
        if let Some(id) = &self.android_id {
            token(
                "identifiers.android_id",
                id,
                64,
                |b| b.is_ascii_hexdigit(),
                "hex digits only",
            )?;
        }
        Ok(())
    }
}

fn digits(field: &'static str, value: &str, lengths: &[usize]) -> Result<(), ValidationError> {
    text(field, value, 32)?;
    if lengths.contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ValidationError::BadFormat {
            field,
            reason: "expected 14 to 16 decimal digits",
        })
    }
}
