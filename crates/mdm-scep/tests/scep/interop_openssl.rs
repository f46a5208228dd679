//! Our messages read by the `openssl cms` command (skipped without openssl):
//! the envelope and signature formats are standard, not only self-consistent.

use std::process::Command;

use mdm_pki::{DigestAlg, cert_to_pem};
use mdm_scep::*;

use crate::common::*;

fn ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn openssl_verifies_and_decrypts_our_requests() {
    if !openssl_available() {
        return;
    }
    let ca = ca();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca.pem"), cert_to_pem(&ca.cert).unwrap()).unwrap();
    std::fs::write(p("ca.key"), ca.key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    for cipher in [
        ContentCipher::Des,
        ContentCipher::Des3,
        ContentCipher::Aes128,
        ContentCipher::Aes256,
    ] {
        let opts = options(MessageType::PkcsReq, cipher, DigestAlg::Sha256);
        let (bytes, _) = pkcs_req(&ca.cert, &opts, Some("pw"));
        std::fs::write(p("req.der"), &bytes).unwrap();
        // Signature (self-signed signer, so no chain check) and eContent extraction.
        ok(Command::new("openssl")
            .args(["cms", "-verify", "-noverify", "-inform", "DER", "-in"])
            .arg(p("req.der"))
            .arg("-out")
            .arg(p("env.der")));
        let mut cmd = Command::new("openssl");
        cmd.args(["cms", "-decrypt", "-inform", "DER", "-in"])
            .arg(p("env.der"))
            .arg("-recip")
            .arg(p("ca.pem"))
            .arg("-inkey")
            .arg(p("ca.key"));
        if cipher == ContentCipher::Des {
            // OpenSSL 3 keeps single DES in the legacy provider.
            cmd.args(["-provider", "legacy", "-provider", "default"]);
        }
        let out = cmd.output().unwrap();
        if !out.status.success() && cipher == ContentCipher::Des {
            eprintln!("NOTICE: openssl cannot decrypt DES here (no legacy provider); skipped");
            continue;
        }
        assert!(
            out.status.success(),
            "{cipher}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.first(), Some(&0x30), "{cipher}: a DER CSR");
        let req = parse_request(&bytes, &ca.cert, &ca.key).unwrap();
        assert_eq!(out.stdout, req.csr().unwrap().der, "{cipher}");
    }
}

#[test]
fn openssl_verifies_our_cert_rep() {
    if !openssl_available() {
        return;
    }
    let ca = ca();
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("ca.pem"), cert_to_pem(&ca.cert).unwrap()).unwrap();
    let opts = options(MessageType::PkcsReq, ContentCipher::Aes128, DigestAlg::Sha1);
    let (bytes, _) = pkcs_req(&ca.cert, &opts, None);
    let req = parse_request(&bytes, &ca.cert, &ca.key).unwrap();
    let responder = Responder::new(&ca.cert, &ca.key);
    let fail = responder
        .failure(
            &req.context(),
            FailInfo::BadRequest,
            &Nonce::random().unwrap(),
        )
        .unwrap();
    std::fs::write(p("fail.der"), &fail).unwrap();
    // No eContent: verify as detached over empty content.
    std::fs::write(p("empty"), b"").unwrap();
    ok(Command::new("openssl")
        .args([
            "cms", "-verify", "-binary", "-inform", "DER", "-purpose", "any", "-in",
        ])
        .arg(p("fail.der"))
        .arg("-content")
        .arg(p("empty"))
        .arg("-CAfile")
        .arg(p("ca.pem")));
}
