//! The QR provisioning payload: keys, encodings, the no-password rule and
//! reading it back.

use mdm_android::*;
use serde_json::{Value, json};

const K: &str = "android.app.extra.PROVISIONING_";

/// A made-up signing certificate's SHA-256, as apksigner prints it.
const CERT_SHA256: &str = "8a2b11f5e6c4d3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918f7e6d5c4b3a2";

fn qr() -> ProvisioningQr {
    ProvisioningQr {
        package: AgentPackage {
            component_name: "com.example.agent/.AdminReceiver".into(),
            download_url: "https://mdm.example.com/agent/latest.apk".into(),
            signature_checksum: SignatureChecksum::from_hex(CERT_SHA256).unwrap(),
        },
        options: ProvisioningOptions {
            skip_encryption: false,
            leave_all_system_apps_enabled: true,
            use_mobile_data: false,
            wifi: Some(Wifi {
                ssid: "Staging".into(),
                hidden: false,
                security: WifiSecurity::Open,
            }),
        },
        extras: AdminExtras {
            server_url: "https://mdm.example.com".into(),
            tenant: "acme".into(),
            enrollment_token: "etok_5Yc2-9f".into(),
            management_mode: ManagementMode::FullyManaged,
            api_version: ApiVersion::V1,
        },
    }
}

fn payload(q: &ProvisioningQr) -> Value {
    serde_json::from_str(&q.to_json().unwrap()).unwrap()
}

#[test]
fn payload_keys() {
    let v = payload(&qr());
    let key = |suffix: &str| v[format!("{K}{suffix}")].clone();
    assert_eq!(
        key("DEVICE_ADMIN_COMPONENT_NAME"),
        "com.example.agent/.AdminReceiver"
    );
    assert_eq!(
        key("DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION"),
        "https://mdm.example.com/agent/latest.apk"
    );
    assert_eq!(key("LEAVE_ALL_SYSTEM_APPS_ENABLED"), true);
    assert_eq!(
        key("SKIP_ENCRYPTION"),
        Value::Null,
        "false flags are left out"
    );
    assert_eq!(key("WIFI_SSID"), "Staging");
    assert_eq!(key("WIFI_SECURITY_TYPE"), "NONE");
    assert_eq!(
        key("ADMIN_EXTRAS_BUNDLE"),
        json!({
            "server_url": "https://mdm.example.com",
            "tenant": "acme",
            "enrollment_token": "etok_5Yc2-9f",
            "management_mode": "fully_managed",
            "api_version": "v1",
        })
    );
    assert!(v.as_object().unwrap().keys().all(|k| k.starts_with(K)));
}

#[test]
fn signature_checksum_encoding() {
    let v = payload(&qr());
    let checksum = v[format!("{K}DEVICE_ADMIN_SIGNATURE_CHECKSUM")]
        .as_str()
        .unwrap()
        .to_owned();
    // URL-safe base64 of the 32 digest bytes, no padding: 43 characters.
    assert_eq!(checksum.len(), 43);
    assert!(!checksum.contains(['=', '+', '/']));
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&checksum)
        .unwrap();
    assert_eq!(hex::encode(bytes), CERT_SHA256);
    // Read back with or without padding, and from apksigner's colon form.
    let sum = SignatureChecksum::from_hex(CERT_SHA256).unwrap();
    assert_eq!(SignatureChecksum::parse(&checksum).unwrap(), sum);
    assert_eq!(
        SignatureChecksum::parse(&format!("{checksum}=")).unwrap(),
        sum
    );
    let colons: Vec<String> = CERT_SHA256
        .as_bytes()
        .chunks(2)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(SignatureChecksum::from_hex(&colons.join(":")).unwrap(), sum);
    assert!(SignatureChecksum::parse("AAAA").is_err());
    assert!(SignatureChecksum::from_hex("abcd").is_err());
    let cert = b"signing certificate DER";
    assert_eq!(
        SignatureChecksum::of_cert_der(cert),
        SignatureChecksum::from_hex(&hex::encode(mdm_pki::fingerprint_sha256(cert))).unwrap()
    );
}

#[test]
fn no_password_ever_appears() {
    let mut variants = vec![qr()];
    let mut no_wifi = qr();
    no_wifi.options.wifi = None;
    no_wifi.options.use_mobile_data = true;
    variants.push(no_wifi);
    for mode in [
        ManagementMode::CompanyOwnedWorkProfile,
        ManagementMode::Dedicated,
    ] {
        let mut q = qr();
        q.extras.management_mode = mode;
        variants.push(q);
    }
    for q in &variants {
        assert!(!q.carries_wifi_passphrase());
        let text = q.to_json().unwrap().to_ascii_lowercase();
        for word in [
            "password",
            "passwd",
            "passphrase",
            "secret",
            "\"pw\"",
            "pin",
        ] {
            assert!(!text.contains(word), "{word} in {text}");
        }
    }
    // With a WPA network, only the Wi-Fi key carries a secret, never the extras.
    let mut wpa = qr();
    wpa.options.wifi = Some(Wifi {
        ssid: "Corp".into(),
        hidden: true,
        security: WifiSecurity::Wpa {
            passphrase: "correct horse".into(),
        },
    });
    assert!(wpa.carries_wifi_passphrase());
    assert!(!format!("{wpa:?}").contains("correct horse"));
    assert!(!format!("{:?}", wpa.extras).contains("etok_"));
    let v = payload(&wpa);
    let with_secret: Vec<&String> = v
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, val)| {
            k.to_ascii_lowercase().contains("password") || val.to_string().contains("correct horse")
        })
        .map(|(k, _)| k)
        .collect();
    assert_eq!(with_secret, vec![&format!("{K}WIFI_PASSWORD")]);
    assert_eq!(v[format!("{K}WIFI_SECURITY_TYPE")], "WPA");
    assert_eq!(v[format!("{K}WIFI_HIDDEN")], true);
    let extras = v[format!("{K}ADMIN_EXTRAS_BUNDLE")]
        .to_string()
        .to_ascii_lowercase();
    assert!(!extras.contains("password") && !extras.contains("correct horse"));
}

#[test]
fn parse_round_trip() {
    let mut all = qr();
    all.options = ProvisioningOptions {
        skip_encryption: true,
        leave_all_system_apps_enabled: true,
        use_mobile_data: true,
        wifi: Some(Wifi {
            ssid: "Corp".into(),
            hidden: true,
            security: WifiSecurity::Wpa {
                passphrase: "12345678".into(),
            },
        }),
    };
    for q in [qr(), all] {
        let text = q.to_json().unwrap();
        assert_eq!(ProvisioningQr::parse(&text).unwrap(), q);
    }
}

#[test]
fn refusals() {
    let mut byod = qr();
    byod.extras.management_mode = ManagementMode::PersonalWorkProfile;
    assert_eq!(
        byod.to_json(),
        Err(QrError::NotProvisionable(
            ManagementMode::PersonalWorkProfile
        ))
    );
    let invalid = |edit: fn(&mut ProvisioningQr)| {
        let mut q = qr();
        edit(&mut q);
        matches!(q.to_json(), Err(QrError::Invalid(_)))
    };
    assert!(invalid(
        |q| q.package.component_name = "com.example.agent".into()
    ));
    assert!(invalid(|q| q.package.component_name = "agent/.Admin".into()));
    assert!(invalid(
        |q| q.package.download_url = "http://mdm.example.com/a.apk".into()
    ));
    assert!(invalid(
        |q| q.extras.server_url = "ftp://mdm.example.com".into()
    ));
    assert!(invalid(
        |q| q.extras.server_url = "http://127.0.0.1.evil.com".into()
    ));
    assert!(invalid(|q| q.extras.tenant = "-acme".into()));
    assert!(invalid(|q| q.extras.enrollment_token = "has space".into()));
    assert!(invalid(|q| {
        q.options.wifi = Some(Wifi {
            ssid: "x".into(),
            hidden: false,
            security: WifiSecurity::Wpa {
                passphrase: "short".into(),
            },
        })
    }));
    let mut local = qr();
    local.extras.server_url = "http://127.0.0.1:8080".into();
    assert!(
        local.to_json().is_ok(),
        "loopback HTTP is allowed for tests"
    );
    let mut huge = qr();
    huge.package.download_url = format!("https://mdm.example.com/{}", "a".repeat(1500));
    huge.extras.server_url = format!("https://mdm.example.com/{}", "b".repeat(1500));
    assert!(matches!(huge.to_json(), Err(QrError::TooLarge { .. })));

    let text = qr().to_json().unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v[format!("{K}LOCALE")] = json!("en_US");
    assert!(matches!(
        ProvisioningQr::parse(&v.to_string()),
        Err(QrError::UnknownKey(_))
    ));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v[format!("{K}ADMIN_EXTRAS_BUNDLE")]["password"] = json!("x");
    assert!(
        matches!(ProvisioningQr::parse(&v.to_string()), Err(QrError::UnknownKey(k)) if k.ends_with(".password"))
    );
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v[format!("{K}LEAVE_ALL_SYSTEM_APPS_ENABLED")] = json!("true");
    assert!(matches!(
        ProvisioningQr::parse(&v.to_string()),
        Err(QrError::WrongType(_))
    ));
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v.as_object_mut()
        .unwrap()
        .remove(&format!("{K}DEVICE_ADMIN_SIGNATURE_CHECKSUM"));
    assert!(matches!(
        ProvisioningQr::parse(&v.to_string()),
        Err(QrError::Missing(_))
    ));
    assert!(matches!(
        ProvisioningQr::parse("[1]"),
        Err(QrError::Json(_))
    ));
}
