//! The QR provisioning payload for company-owned devices (fully managed,
//! dedicated, company-owned work profile): the JSON object the setup wizard
//! reads after six taps on the welcome screen, made of the public
//! `android.app.extra.PROVISIONING_*` keys.
//!
//! Everything of ours travels in `PROVISIONING_ADMIN_EXTRAS_BUNDLE`: the
//! server URL, the tenant, the intended mode, the API version and a
//! one-time enrollment token. Never a user's password: [`AdminExtras`] has
//! no field that could hold one. The only secret the payload can carry is an
//! explicitly configured Wi-Fi passphrase ([`WifiSecurity::Wpa`]).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::mode::ManagementMode;
use crate::register::tenant_slug;
use crate::validate::{is_url_safe, package_name, text, token, url};
use crate::version::ApiVersion;

/// Largest payload: what a version-40 QR code holds in byte mode at the
/// lowest error correction. Real payloads are a few hundred bytes; keep them
/// small, phone cameras read sparse codes far better.
pub const MAX_QR_PAYLOAD_LEN: usize = 2953;

pub(crate) const COMPONENT: &str = "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME";
pub(crate) const DOWNLOAD: &str =
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION";
pub(crate) const CHECKSUM: &str = "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM";
pub(crate) const SKIP_ENCRYPTION: &str = "android.app.extra.PROVISIONING_SKIP_ENCRYPTION";
pub(crate) const LEAVE_APPS: &str = "android.app.extra.PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED";
pub(crate) const USE_MOBILE_DATA: &str = "android.app.extra.PROVISIONING_USE_MOBILE_DATA";
pub(crate) const WIFI_SSID: &str = "android.app.extra.PROVISIONING_WIFI_SSID";
pub(crate) const WIFI_HIDDEN: &str = "android.app.extra.PROVISIONING_WIFI_HIDDEN";
pub(crate) const WIFI_SECURITY: &str = "android.app.extra.PROVISIONING_WIFI_SECURITY_TYPE";
pub(crate) const WIFI_PASSWORD: &str = "android.app.extra.PROVISIONING_WIFI_PASSWORD";
pub(crate) const EXTRAS: &str = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE";
pub(crate) const EXTRA_KEYS: [&str; 5] = [
    "server_url",
    "tenant",
    "enrollment_token",
    "management_mode",
    "api_version",
];

/// Why a provisioning payload cannot be built or read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// A value breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// QR provisioning only sets up company-owned devices.
    #[error("{0} devices are not provisioned by QR code")]
    NotProvisionable(ManagementMode),
    /// The payload exceeds [`MAX_QR_PAYLOAD_LEN`].
    #[error("payload is {len} bytes (limit {limit})")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Not a JSON object.
    #[error("not a JSON object: {0}")]
    Json(String),
    /// A key this crate does not write.
    #[error("unexpected key {0:?}")]
    UnknownKey(String),
    /// A required key is absent.
    #[error("missing key {0}")]
    Missing(&'static str),
    /// A key holds the wrong JSON type.
    #[error("key {0} has the wrong type")]
    WrongType(&'static str),
}

/// `PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM`: the SHA-256 of one of
/// the APK's signing certificates. Unlike the APK checksum it stays valid
/// across app versions, so printed codes survive upgrades. Written as
/// URL-safe base64 without padding (as Google's own codes are); read with
/// or without padding (Android's decoder accepts both).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SignatureChecksum([u8; 32]);

impl SignatureChecksum {
    /// The checksum of a signing certificate's DER.
    pub fn of_cert_der(cert_der: &[u8]) -> Self {
        Self(mdm_pki::fingerprint_sha256(cert_der))
    }

    /// From the hex digest `apksigner verify --print-certs` prints
    /// (`:` separators tolerated).
    pub fn from_hex(hex_digest: &str) -> Result<Self, ValidationError> {
        let compact: String = hex_digest.chars().filter(|c| *c != ':').collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(compact.trim(), &mut out).map_err(|_| ValidationError::BadFormat {
            field: "signature_checksum",
            reason: "expected 64 hex digits",
        })?;
        Ok(Self(out))
    }

    /// Reads the QR form (URL-safe base64, padding optional).
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        let bad = ValidationError::BadFormat {
            field: "signature_checksum",
            reason: "expected URL-safe base64 of 32 bytes",
        };
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .or_else(|_| URL_SAFE.decode(text))
            .map_err(|_| bad.clone())?;
        bytes.try_into().map(Self).map_err(|_| bad)
    }

    /// The QR form: URL-safe base64, no padding (43 characters).
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for SignatureChecksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureChecksum({})", self.to_base64url())
    }
}

/// Our agent app, as the setup wizard must download and trust it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentPackage {
    /// `package/receiver` of its DeviceAdminReceiver
    /// (`com.example.agent/.AdminReceiver`).
    pub component_name: String,
    /// HTTPS URL of the APK.
    pub download_url: String,
    /// SHA-256 of its signing certificate.
    pub signature_checksum: SignatureChecksum,
}

/// Optional setup tweaks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvisioningOptions {
    /// `PROVISIONING_SKIP_ENCRYPTION` (ignored by recent Android).
    pub skip_encryption: bool,
    /// `PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED`.
    pub leave_all_system_apps_enabled: bool,
    /// `PROVISIONING_USE_MOBILE_DATA` (Android 13+, when no Wi-Fi is given).
    pub use_mobile_data: bool,
    /// The network used to download the agent (Android 10+ needs one, or
    /// mobile data).
    pub wifi: Option<Wifi>,
}

/// A Wi-Fi network for provisioning.
#[derive(Clone, PartialEq, Eq)]
pub struct Wifi {
    /// SSID, 1–32 bytes.
    pub ssid: String,
    /// The network does not broadcast its SSID.
    pub hidden: bool,
    /// Open or WPA.
    pub security: WifiSecurity,
}

/// Wi-Fi security. A WPA passphrase is readable by anyone who sees the
/// code: prefer an open staging network or mobile data.
#[derive(Clone, PartialEq, Eq)]
pub enum WifiSecurity {
    /// `NONE`.
    Open,
    /// `WPA` with a passphrase (8–64 characters).
    Wpa {
        /// The passphrase.
        passphrase: String,
    },
}

impl fmt::Debug for Wifi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let security = match self.security {
            WifiSecurity::Open => "NONE",
            WifiSecurity::Wpa { .. } => "WPA(<redacted>)",
        };
        f.debug_struct("Wifi")
            .field("ssid", &self.ssid)
            .field("hidden", &self.hidden)
            .field("security", &security)
            .finish()
    }
}

/// What our agent reads from `PROVISIONING_ADMIN_EXTRAS_BUNDLE`.
/// Deliberately no field for a user name or password.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminExtras {
    /// The server's base URL (HTTPS; plain HTTP only to a loopback host).
    pub server_url: String,
    /// The tenant slug.
    pub tenant: String,
    /// A one-time, short-lived enrollment token bound to the tenant.
    pub enrollment_token: String,
    /// The mode the agent should choose in `GET_PROVISIONING_MODE`.
    pub management_mode: ManagementMode,
    /// The agent API version to use.
    pub api_version: ApiVersion,
}

impl fmt::Debug for AdminExtras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdminExtras")
            .field("server_url", &self.server_url)
            .field("tenant", &self.tenant)
            .field("enrollment_token", &"<redacted>")
            .field("management_mode", &self.management_mode)
            .field("api_version", &self.api_version)
            .finish()
    }
}

/// A complete provisioning payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisioningQr {
    /// The agent to install.
    pub package: AgentPackage,
    /// Setup tweaks.
    pub options: ProvisioningOptions,
    /// Our data for the agent.
    pub extras: AdminExtras,
}

impl ProvisioningQr {
    /// Checks every value.
    pub fn validate(&self) -> Result<(), QrError> {
        let mode = self.extras.management_mode;
        if !mode.is_company_owned() {
            return Err(QrError::NotProvisionable(mode));
        }
        component_name(&self.package.component_name)?;
        url("download_url", &self.package.download_url)?;
        url("server_url", &self.extras.server_url)?;
        tenant_slug(&self.extras.tenant)?;
        let safe = "URL-safe characters only";
        token(
            "enrollment_token",
            &self.extras.enrollment_token,
            512,
            is_url_safe,
            safe,
        )?;
        if let Some(wifi) = &self.options.wifi {
            text("wifi.ssid", &wifi.ssid, 32)?;
            if let WifiSecurity::Wpa { passphrase } = &wifi.security
                && !(8..=64).contains(&passphrase.len())
            {
                return Err(ValidationError::BadFormat {
                    field: "wifi.passphrase",
                    reason: "a WPA passphrase has 8 to 64 characters",
                }
                .into());
            }
        }
        Ok(())
    }

    /// Whether the payload carries a Wi-Fi passphrase (warn the admin).
    pub fn carries_wifi_passphrase(&self) -> bool {
        self.options
            .wifi
            .as_ref()
            .is_some_and(|w| matches!(w.security, WifiSecurity::Wpa { .. }))
    }

    /// The JSON text to encode in the QR code. Optional booleans are
    /// written only when set.
    pub fn to_json(&self) -> Result<String, QrError> {
        self.validate()?;
        let mut root = Map::new();
        let s = |v: &str| Value::String(v.to_owned());
        root.insert(COMPONENT.into(), s(&self.package.component_name));
        root.insert(DOWNLOAD.into(), s(&self.package.download_url));
        let checksum = self.package.signature_checksum.to_base64url();
        root.insert(CHECKSUM.into(), s(&checksum));
        let o = &self.options;
        for (key, on) in [
            (SKIP_ENCRYPTION, o.skip_encryption),
            (LEAVE_APPS, o.leave_all_system_apps_enabled),
            (USE_MOBILE_DATA, o.use_mobile_data),
        ] {
            if on {
                root.insert(key.into(), Value::Bool(true));
            }
        }
        if let Some(wifi) = &o.wifi {
            root.insert(WIFI_SSID.into(), s(&wifi.ssid));
            if wifi.hidden {
                root.insert(WIFI_HIDDEN.into(), Value::Bool(true));
            }
            match &wifi.security {
                WifiSecurity::Open => root.insert(WIFI_SECURITY.into(), s("NONE")),
                WifiSecurity::Wpa { passphrase } => {
                    root.insert(WIFI_PASSWORD.into(), s(passphrase));
                    root.insert(WIFI_SECURITY.into(), s("WPA"))
                }
            };
        }
        let e = &self.extras;
        let extras: Map<String, Value> = EXTRA_KEYS
            .iter()
            .zip([
                e.server_url.as_str(),
                e.tenant.as_str(),
                e.enrollment_token.as_str(),
                e.management_mode.as_str(),
                e.api_version.as_str(),
            ])
            .map(|(k, v)| ((*k).to_owned(), s(v)))
            .collect();
        root.insert(EXTRAS.into(), Value::Object(extras));
        let json = Value::Object(root).to_string();
        if json.len() > MAX_QR_PAYLOAD_LEN {
            return Err(QrError::TooLarge {
                len: json.len(),
                limit: MAX_QR_PAYLOAD_LEN,
            });
        }
        Ok(json)
    }

    /// Reads a payload written by [`ProvisioningQr::to_json`] (for tests
    /// and the inspect tool). Unknown keys are refused.
    pub fn parse(json: &str) -> Result<Self, QrError> {
        if json.len() > MAX_QR_PAYLOAD_LEN {
            return Err(QrError::TooLarge {
                len: json.len(),
                limit: MAX_QR_PAYLOAD_LEN,
            });
        }
        let root: Map<String, Value> =
            serde_json::from_str(json).map_err(|e| QrError::Json(crate::message::describe(&e)))?;
        crate::qr_parse::read(&root)
    }
}

/// `package/receiver`: a Java package, then a class that is either
/// relative (`.Receiver`) or fully qualified.
fn component_name(value: &str) -> Result<(), ValidationError> {
    let field = "component_name";
    text(field, value, 255)?;
    let bad = ValidationError::BadFormat {
        field,
        reason: "expected package/receiver, e.g. com.example.agent/.AdminReceiver",
    };
    let (package, class) = value.split_once('/').ok_or(bad.clone())?;
    package_name(field, package).map_err(|_| bad.clone())?;
    let class = class.strip_prefix('.').unwrap_or(class);
    let segment_ok = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
    };
    if class.split('.').all(segment_ok) {
        Ok(())
    } else {
        Err(bad)
    }
}
