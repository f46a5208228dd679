//! The `DeviceInformation` command's queries and a typed view of its
//! `QueryResponses`.

use plist::{Dictionary, Value};

use crate::error::ParseErrorKind;
use crate::result::CommandReport;

/// The queries [`crate::CommandRequest::device_information`] asks for: what the
/// inventory shows. Devices skip queries they do not support or that a User
/// Enrollment hides (UDID, serial, IMEI …).
pub const DEFAULT_DEVICE_QUERIES: &[&str] = &[
    "DeviceName",
    "OSVersion",
    "BuildVersion",
    "ModelName",
    "Model",
    "ProductName",
    "SerialNumber",
    "UDID",
    "IMEI",
    "MEID",
    "DeviceCapacity",
    "AvailableDeviceCapacity",
    "WiFiMAC",
    "BluetoothMAC",
    "IsSupervised",
    "IsActivationLockEnabled",
    "HostName",
];

/// The answers of a `DeviceInformation` command. Values of an unexpected type
/// are not dropped: they stay in [`DeviceInfo::other`] with every answer this
/// struct has no field for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DeviceInfo {
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `OSVersion`.
    pub os_version: Option<String>,
    /// `BuildVersion`.
    pub build_version: Option<String>,
    /// `ModelName` (e.g. `iPhone`, `MacBook Pro`).
    pub model_name: Option<String>,
    /// `Model` (e.g. `MQ8L2LL/A` on iOS, `Mac14,7` on macOS).
    pub model: Option<String>,
    /// `ProductName` (e.g. `iPhone15,2`).
    pub product_name: Option<String>,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `UDID`.
    pub udid: Option<String>,
    /// `IMEI`.
    pub imei: Option<String>,
    /// `MEID`.
    pub meid: Option<String>,
    /// `DeviceCapacity`, in GB.
    pub device_capacity_gb: Option<f64>,
    /// `AvailableDeviceCapacity`, in GB.
    pub available_device_capacity_gb: Option<f64>,
    /// `WiFiMAC`.
    pub wifi_mac: Option<String>,
    /// `BluetoothMAC`.
    pub bluetooth_mac: Option<String>,
    /// `IsSupervised`.
    pub is_supervised: Option<bool>,
    /// `IsActivationLockEnabled`.
    pub is_activation_lock_enabled: Option<bool>,
    /// `HostName` (macOS).
    pub host_name: Option<String>,
    /// Every other answer, untouched.
    pub other: Dictionary,
}

impl DeviceInfo {
    /// Reads the `QueryResponses` of a `DeviceInformation` result.
    pub fn from_report(report: &CommandReport) -> Result<Self, ParseErrorKind> {
        match report.payload.get("QueryResponses") {
            Some(Value::Dictionary(d)) => Ok(Self::from_query_responses(d)),
            Some(other) => Err(ParseErrorKind::WrongType {
                key: "QueryResponses".into(),
                expected: "dict",
                found: crate::codec::kind_name(other),
            }),
            None => Err(ParseErrorKind::MissingKey("QueryResponses")),
        }
    }

    /// Reads a `QueryResponses` dictionary; never fails.
    pub fn from_query_responses(responses: &Dictionary) -> Self {
        let mut rest = responses.clone();
        let mut s = |k: &str| take(&mut rest, k, |v| v.as_string().map(str::to_owned));
        let mut info = Self {
            device_name: s("DeviceName"),
            os_version: s("OSVersion"),
            build_version: s("BuildVersion"),
            model_name: s("ModelName"),
            model: s("Model"),
            product_name: s("ProductName"),
            serial_number: s("SerialNumber"),
            udid: s("UDID"),
            imei: s("IMEI"),
            meid: s("MEID"),
            wifi_mac: s("WiFiMAC"),
            bluetooth_mac: s("BluetoothMAC"),
            host_name: s("HostName"),
            ..Self::default()
        };
        let number = |v: &Value| {
            v.as_real()
                .or_else(|| v.as_signed_integer().map(|i| i as f64))
        };
        info.device_capacity_gb = take(&mut rest, "DeviceCapacity", number);
        info.available_device_capacity_gb = take(&mut rest, "AvailableDeviceCapacity", number);
        info.is_supervised = take(&mut rest, "IsSupervised", Value::as_boolean);
        info.is_activation_lock_enabled =
            take(&mut rest, "IsActivationLockEnabled", Value::as_boolean);
        info.other = rest;
        info
    }
}

/// Removes `key` from `d` when `read` accepts its value.
fn take<T>(d: &mut Dictionary, key: &str, read: impl Fn(&Value) -> Option<T>) -> Option<T> {
    let value = d.get(key).and_then(&read)?;
    d.remove(key);
    Some(value)
}
