//! Reading a provisioning payload back into a [`ProvisioningQr`]: strict,
//! so that what the inspect tool shows is exactly what was written.

use serde_json::{Map, Value};

use crate::error::ValidationError;
use crate::mode::ManagementMode;
use crate::qr::{
    AdminExtras, AgentPackage, CHECKSUM, COMPONENT, DOWNLOAD, EXTRA_KEYS, EXTRAS, LEAVE_APPS,
    ProvisioningOptions, ProvisioningQr, QrError, SKIP_ENCRYPTION, SignatureChecksum,
    USE_MOBILE_DATA, WIFI_HIDDEN, WIFI_PASSWORD, WIFI_SECURITY, WIFI_SSID, Wifi, WifiSecurity,
};
use crate::version::ApiVersion;

const KNOWN: [&str; 11] = [
    COMPONENT,
    DOWNLOAD,
    CHECKSUM,
    SKIP_ENCRYPTION,
    LEAVE_APPS,
    USE_MOBILE_DATA,
    WIFI_SSID,
    WIFI_HIDDEN,
    WIFI_SECURITY,
    WIFI_PASSWORD,
    EXTRAS,
];

/// Reads the top-level object.
pub(crate) fn read(root: &Map<String, Value>) -> Result<ProvisioningQr, QrError> {
    if let Some(key) = root.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(QrError::UnknownKey(key.clone()));
    }
    let package = AgentPackage {
        component_name: required(root, COMPONENT)?.to_owned(),
        download_url: required(root, DOWNLOAD)?.to_owned(),
        signature_checksum: SignatureChecksum::parse(required(root, CHECKSUM)?)?,
    };
    let options = ProvisioningOptions {
        skip_encryption: flag(root, SKIP_ENCRYPTION)?,
        leave_all_system_apps_enabled: flag(root, LEAVE_APPS)?,
        use_mobile_data: flag(root, USE_MOBILE_DATA)?,
        wifi: wifi(root)?,
    };
    let extras = match root.get(EXTRAS) {
        Some(Value::Object(map)) => extras(map)?,
        Some(_) => return Err(QrError::WrongType(EXTRAS)),
        None => return Err(QrError::Missing(EXTRAS)),
    };
    let qr = ProvisioningQr {
        package,
        options,
        extras,
    };
    qr.validate()?;
    Ok(qr)
}

fn string<'a>(map: &'a Map<String, Value>, key: &'static str) -> Result<Option<&'a str>, QrError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(QrError::WrongType(key)),
    }
}

fn required<'a>(map: &'a Map<String, Value>, key: &'static str) -> Result<&'a str, QrError> {
    string(map, key)?.ok_or(QrError::Missing(key))
}

fn flag(map: &Map<String, Value>, key: &'static str) -> Result<bool, QrError> {
    match map.get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(QrError::WrongType(key)),
    }
}

fn wifi(root: &Map<String, Value>) -> Result<Option<Wifi>, QrError> {
    let Some(ssid) = string(root, WIFI_SSID)? else {
        let stray = [WIFI_HIDDEN, WIFI_SECURITY, WIFI_PASSWORD]
            .iter()
            .any(|k| root.contains_key(*k));
        return if stray {
            Err(QrError::Missing(WIFI_SSID))
        } else {
            Ok(None)
        };
    };
    let security = match (string(root, WIFI_SECURITY)?, string(root, WIFI_PASSWORD)?) {
        (None | Some("NONE"), None) => WifiSecurity::Open,
        (Some("WPA"), Some(passphrase)) => WifiSecurity::Wpa {
            passphrase: passphrase.to_owned(),
        },
        _ => return Err(QrError::WrongType(WIFI_SECURITY)),
    };
    Ok(Some(Wifi {
        ssid: ssid.to_owned(),
        hidden: flag(root, WIFI_HIDDEN)?,
        security,
    }))
}

fn extras(map: &Map<String, Value>) -> Result<AdminExtras, QrError> {
    if let Some(key) = map.keys().find(|k| !EXTRA_KEYS.contains(&k.as_str())) {
        return Err(QrError::UnknownKey(format!("{EXTRAS}.{key}")));
    }
    let [server_url, tenant, token, mode, version] = EXTRA_KEYS;
    let management_mode: ManagementMode =
        serde_json::from_value(Value::String(required(map, mode)?.to_owned())).map_err(|_| {
            ValidationError::BadFormat {
                field: "management_mode",
                reason: "not a management mode",
            }
        })?;
    let api_version =
        ApiVersion::parse(required(map, version)?).map_err(|_| ValidationError::BadFormat {
            field: "api_version",
            reason: "not a supported API version",
        })?;
    Ok(AdminExtras {
        server_url: required(map, server_url)?.to_owned(),
        tenant: required(map, tenant)?.to_owned(),
        enrollment_token: required(map, token)?.to_owned(),
        management_mode,
        api_version,
    })
}
