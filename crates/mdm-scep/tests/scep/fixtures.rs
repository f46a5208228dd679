//! Real captures from micromdm and smallstep (only on the machine that has
//! /work/shared/fixtures; skipped with a notice elsewhere).

use std::path::{Path, PathBuf};
use std::process::Command;

use mdm_pki::x509_cert::Certificate;
use mdm_pki::{DigestAlg, RsaKey, cert_from_pem, certs_from_pem};
use mdm_scep::*;

fn dir() -> Option<PathBuf> {
    let d = PathBuf::from("/work/shared/fixtures/scep");
    if d.is_dir() {
        Some(d)
    } else {
        eprintln!("NOTICE: {} absent; skipping fixture test", d.display());
        None
    }
}

/// The fixture CA keys are legacy encrypted PEM with an empty password:
/// openssl turns them into DER (PKCS#8 with OpenSSL 3).
fn load_encrypted_key(path: &Path) -> Option<RsaKey> {
    if !crate::common::openssl_available() {
        return None;
    }
    let out = Command::new("openssl")
        .args(["rsa", "-passin", "pass:", "-outform", "DER", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(RsaKey::from_der(&out.stdout).unwrap())
}

fn cert(path: &Path) -> Certificate {
    cert_from_pem(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn micromdm_pkcs_req_decrypts_with_test_ca() {
    let Some(d) = dir() else { return };
    let Some(key) = load_encrypted_key(&d.join("micromdm/testca/ca.key")) else {
        return;
    };
    let ca = cert(&d.join("micromdm/testca/ca.pem"));
    let bytes = std::fs::read(d.join("micromdm/PKCSReq.der")).unwrap();
    let req = parse_request(&bytes, &ca, &key).unwrap();
    assert_eq!(req.message.message_type, MessageType::PkcsReq);
    assert_eq!(req.message.digest, DigestAlg::Sha1);
    assert_eq!(req.cipher, ContentCipher::Des3);
    assert_eq!(req.message.transaction_id.0.len(), 40);
    assert_eq!(
        req.message.sender_nonce.as_ref().map(|n| n.0.len()),
        Some(8),
        "an 8-byte nonce, not 16"
    );
    let csr = req.csr().unwrap();
    // A device CSR with version INTEGER 2 (PKCS#10 knows only 0): read leniently.
    assert_eq!(
        csr.subject(),
        "CN=com.apple.security.scep.063D7953-1338-4BF0-8F99-913382996224"
    );
    assert_eq!(csr.digest, DigestAlg::Sha1);
    assert!(csr.challenge().is_none());
    // Its 1024-bit key can still be certified.
    let cert = mdm_pki::issue_leaf(
        &key,
        &ca,
        &csr.csr,
        &[1, 2, 3],
        time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
        time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_001),
    )
    .unwrap();
    mdm_pki::verify_issued_by(&cert, &ca).unwrap();
    // The server can answer it: a FAILURE CertRep echoing the transaction.
    let rep = Responder::new(&ca, &key)
        .failure(
            &req.context(),
            FailInfo::BadRequest,
            &Nonce::random().unwrap(),
        )
        .unwrap();
    let parsed = PkiMessage::parse(&rep, &[]).unwrap();
    assert_eq!(parsed.transaction_id, req.message.transaction_id);
    assert_eq!(parsed.recipient_nonce, req.message.sender_nonce);
}

#[test]
fn smallstep_pkcs_req_and_cert_rep() {
    let Some(d) = dir() else { return };
    let ca = cert(&d.join("smallstep/testca/ca.pem"));
    let rep = std::fs::read(d.join("smallstep/CertRep.der")).unwrap();
    let msg = PkiMessage::parse(&rep, &[]).unwrap();
    assert_eq!(msg.message_type, MessageType::CertRep);
    assert_eq!(msg.pki_status, Some(PkiStatus::Success));
    assert_eq!(msg.signer, ca);
    assert_eq!(msg.digest, DigestAlg::Sha1);
    let env = msg.envelope.as_deref().unwrap();
    let (cipher, recipients) = envelope_summary(env).unwrap();
    assert_eq!(
        cipher,
        ContentCipher::Des,
        "Go's pkcs7 answered with DES-CBC"
    );
    assert!(recipients[0].contains("MDM SCEP SIGNER"), "{recipients:?}");
    // testclient/ is not the requester of this reply: its key cannot open it.
    let client_cert = cert(&d.join("smallstep/testclient/client.pem"));
    let client_key = TestKey::load(&d.join("smallstep/testclient/client.key"));
    let err = decrypt_envelope(env, &client_cert, &client_key).unwrap_err();
    assert!(matches!(err, ScepError::NotForUs), "{err:?}");
    // But a reply encrypted to that 1024-bit device key opens with it.
    let ours = encrypt_envelope(b"for a 1024-bit key", ContentCipher::Des3, &client_cert).unwrap();
    let (plain, cipher) = decrypt_envelope(&ours, &client_cert, &client_key).unwrap();
    assert_eq!(
        (&plain[..], cipher),
        (&b"for a 1024-bit key"[..], ContentCipher::Des3)
    );

    let req = std::fs::read(d.join("smallstep/PKCSReq.der")).unwrap();
    assert_eq!(
        req,
        std::fs::read(d.join("micromdm/PKCSReq.der")).unwrap(),
        "same capture in both sets"
    );
    let msg = PkiMessage::parse(&req, &[]).unwrap();
    assert_eq!(msg.message_type, MessageType::PkcsReq);
}

#[test]
fn smallstep_cert_rep_without_signer_certificate() {
    let Some(d) = dir() else { return };
    let rep =
        std::fs::read(d.join("smallstep/testca2/CertRep_NoCertificatesForSigners.der")).unwrap();
    let f = PkiMessage::parse(&rep, &[]).unwrap_err();
    assert!(matches!(f.error, ScepError::SignerNotFound), "{f:?}");
    let chain =
        certs_from_pem(&std::fs::read_to_string(d.join("smallstep/testca2/ca2.pem")).unwrap())
            .unwrap();
    let msg = PkiMessage::parse(&rep, &chain).unwrap();
    assert_eq!(msg.message_type, MessageType::CertRep);
    eprintln!(
        "testca2 CertRep: status {:?} signer {}",
        msg.pki_status,
        msg.signer.tbs_certificate().subject()
    );
}

/// A 1024-bit PKCS#1 key (Apple's default SCEP key size), which aws-lc does not
/// load: decrypt with the pure-Rust `rsa` crate through the same trait.
struct TestKey(rsa::PrivateKey);

impl TestKey {
    fn load(path: &Path) -> Self {
        use rsa::pkcs1::DecodeRsaPrivateKey;
        let pem = std::fs::read_to_string(path).unwrap();
        let start = pem.find("-----BEGIN").unwrap();
        Self(rsa::PrivateKey::from_pkcs1_pem(&pem[start..]).unwrap())
    }
}

impl CekDecryptor for TestKey {
    fn decrypt_cek(
        &self,
        encrypted_key: &[u8],
        expected_len: usize,
    ) -> zeroize::Zeroizing<Vec<u8>> {
        let plain = self.0.pkcs1v15_decrypt(encrypted_key).unwrap_or_default();
        let out = if plain.len() == expected_len {
            plain
        } else {
            vec![0; expected_len]
        };
        zeroize::Zeroizing::new(out)
    }
}
