//! Shared helpers: a device key made once per binary, sample messages,
//! and JSON helpers.

use std::sync::OnceLock;

use mdm_android::*;
use mdm_pki::x509_cert::name::Name;
use mdm_pki::{DigestAlg, RsaKey, build_csr};
use time::OffsetDateTime;
use uuid::Uuid;

pub const NOW: i64 = 1_780_000_000;

pub fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

/// A 2048-bit device key and its CSR, made once.
pub struct DeviceKey {
    pub key: RsaKey,
    pub csr_der: Vec<u8>,
}

pub fn device_key() -> &'static DeviceKey {
    static KEY: OnceLock<DeviceKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = RsaKey::generate(2048).unwrap();
        let subject: Name = "CN=android-device".parse().unwrap();
        let csr_der = build_csr(&key, &subject, None, DigestAlg::Sha256).unwrap();
        DeviceKey { key, csr_der }
    })
}

/// A second key, for "signed by someone else".
pub fn other_key() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| RsaKey::generate(2048).unwrap())
}

pub const DEVICE_ID: Uuid = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001);
pub const ATTEMPT_ID: Uuid = Uuid::from_u128(0x0190_0000_0000_4000_8000_0000_0000_00aa);

pub fn facts(api_level: u32, mode: ManagementMode) -> DeviceFacts {
    DeviceFacts {
        manufacturer: "Google".into(),
        model: "Pixel 8".into(),
        os: OsInfo {
            version: "14".into(),
            api_level,
            security_patch: Some("2024-05-01".into()),
        },
        management_mode: mode,
        identifiers: Identifiers::default(),
    }
}

pub fn register_request() -> RegisterRequest {
    RegisterRequest {
        attempt_id: ATTEMPT_ID,
        tenant: "acme".into(),
        credentials: Credentials::enrollment_token("tok_3f9a-XYZ.1~"),
        device: facts(34, ManagementMode::FullyManaged),
        fcm_token: Some("dXk3:APA91bH-abc_DEF".into()),
        public_key: DevicePublicKey::from_csr_der(&device_key().csr_der),
    }
}

/// Parses `text` as JSON.
pub fn json(text: &[u8]) -> serde_json::Value {
    serde_json::from_slice(text).unwrap()
}

/// `value` with `edit` applied, encoded.
pub fn edited(value: &impl serde::Serialize, edit: impl FnOnce(&mut serde_json::Value)) -> Vec<u8> {
    let mut v = serde_json::to_value(value).unwrap();
    edit(&mut v);
    serde_json::to_vec(&v).unwrap()
}

/// The validation error of decoding `body` as `M`.
pub fn invalid<M: Message + std::fmt::Debug>(body: &[u8]) -> ValidationError {
    match M::from_json(body) {
        Err(MessageError::Invalid(v)) => v,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// The JSON error text of decoding `body` as `M`.
pub fn malformed<M: Message + std::fmt::Debug>(body: &[u8]) -> String {
    match M::from_json(body) {
        Err(MessageError::Json(text)) => text,
        other => panic!("expected a JSON error, got {other:?}"),
    }
}
