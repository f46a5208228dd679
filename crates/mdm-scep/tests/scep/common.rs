//! Shared test PKI: one CA and one requester key per binary.

use std::sync::OnceLock;

use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::name::Name;
use mdm_pki::{DigestAlg, RsaKey, build_csr, self_signed_ca};
use mdm_scep::client::{RequestOptions, build_request, self_signed_signer, transaction_id_for};
use mdm_scep::{ContentCipher, MessageType, Nonce};
use time::OffsetDateTime;

/// Wall-clock now: tests only (the crates never read the clock).
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

pub fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

pub struct Ca {
    pub key: RsaKey,
    pub cert: Certificate,
}

fn make_ca(name: &str) -> Ca {
    let key = RsaKey::generate(2048).unwrap();
    let serial = mdm_pki::random_bytes(16).unwrap();
    let cert = self_signed_ca(&key, name, &serial, now() - days(1), now() + days(3650)).unwrap();
    Ca { key, cert }
}

pub fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| make_ca("CN=SCEP Test CA,O=MDM Tests"))
}

/// A second CA with the same name and a different key.
pub fn other_ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| make_ca("CN=SCEP Test CA,O=MDM Tests"))
}

pub fn device_key() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| RsaKey::generate(2048).unwrap())
}

pub fn subject() -> Name {
    "CN=device-42,O=MDM Tests".parse().unwrap()
}

pub fn signer_cert() -> Certificate {
    self_signed_signer(device_key(), &subject(), now() - days(1), now() + days(1)).unwrap()
}

pub fn options(kind: MessageType, cipher: ContentCipher, digest: DigestAlg) -> RequestOptions {
    RequestOptions {
        message_type: kind,
        cipher,
        digest,
        transaction_id: transaction_id_for(device_key()),
        sender_nonce: Nonce::random().unwrap(),
        outer_challenge: None,
    }
}

/// A PKCSReq from the shared device key to `recipient`.
pub fn pkcs_req(
    recipient: &Certificate,
    opts: &RequestOptions,
    challenge: Option<&str>,
) -> (Vec<u8>, Certificate) {
    let signer = signer_cert();
    let csr = build_csr(device_key(), &subject(), challenge, opts.digest).unwrap();
    (
        build_request(&csr, &signer, device_key(), recipient, opts).unwrap(),
        signer,
    )
}

/// Writes `bytes` into `$MDM_SCEP_CORPUS_DIR` when set (fuzzing seeds).
pub fn corpus(name: &str, bytes: &[u8]) {
    if let Some(dir) = std::env::var_os("MDM_SCEP_CORPUS_DIR") {
        std::fs::write(std::path::Path::new(&dir).join(name), bytes).unwrap();
    }
}

pub fn openssl_available() -> bool {
    let ok = std::process::Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: openssl not found; skipping");
    }
    ok
}
