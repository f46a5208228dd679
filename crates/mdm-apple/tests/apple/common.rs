//! Shared helpers: a test CA and device identity, plist conversions, the
//! fixtures directory and `openssl` detection.

use std::io::Cursor;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::name::Name;
use mdm_pki::{DigestAlg, RsaKey, build_csr, csr_from_der, issue_leaf, self_signed_ca};
use time::OffsetDateTime;

pub const NOW: i64 = 1_780_000_000;

pub fn at(secs: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(secs).unwrap()
}

/// A CA and a device identity it issued, made once per test binary.
pub struct Pki {
    pub ca: Certificate,
    pub device_key: RsaKey,
    pub device: Certificate,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = RsaKey::generate(2048).unwrap();
        let ca = self_signed_ca(
            &ca_key,
            "CN=Test Tenant CA,O=Acme",
            &[0x01],
            at(NOW - 3600),
            at(NOW + 86_400 * 365),
        )
        .unwrap();
        let device_key = RsaKey::generate(2048).unwrap();
        let subject: Name = "CN=device-1,O=Acme".parse().unwrap();
        let csr = build_csr(&device_key, &subject, None, DigestAlg::Sha256).unwrap();
        let csr = csr_from_der(&csr).unwrap();
        let device = issue_leaf(
            &ca_key,
            &ca,
            &csr,
            &[0x02],
            at(NOW - 3600),
            at(NOW + 86_400 * 30),
        )
        .unwrap();
        Pki {
            ca,
            device_key,
            device,
        }
    })
}

/// An XML plist document around `body` (the inside of the root element).
pub fn xml(body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC \
         \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">{body}</plist>\n"
    )
    .into_bytes()
}

/// The same plist re-encoded as a binary plist.
pub fn to_binary(xml: &[u8]) -> Vec<u8> {
    let value = plist::Value::from_reader(Cursor::new(xml)).unwrap();
    let mut out = Vec::new();
    value.to_writer_binary(&mut out).unwrap();
    assert!(out.starts_with(b"bplist00"));
    out
}

/// The shared device captures, or `None` (with a notice) when absent.
pub fn fixtures_dir() -> Option<PathBuf> {
    let candidates = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/apple-checkin"),
        PathBuf::from("/work/shared/fixtures/apple-checkin"),
    ];
    let found = candidates.into_iter().find(|p| p.is_dir());
    if found.is_none() {
        eprintln!(
            "NOTICE: shared/fixtures/apple-checkin not found; skipping the real-capture test"
        );
    }
    found
}

pub fn openssl() -> bool {
    let ok = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: openssl not found; skipping the openssl interop part of this test");
    }
    ok
}
