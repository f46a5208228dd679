//! `inspect`: what an admin sees for a failed enrolment.

use base64::Engine;
use mdm_pki::DigestAlg;
use mdm_scep::*;

use crate::common::*;

#[test]
fn inspect_request_with_and_without_ca_key() {
    let ca = ca();
    let opts = options(MessageType::PkcsReq, ContentCipher::Des3, DigestAlg::Sha512);
    let (bytes, _) = pkcs_req(&ca.cert, &opts, Some("top-secret-challenge"));
    let plain = inspect(&bytes, None).unwrap();
    assert_eq!(plain.encoding, "DER");
    assert_eq!(plain.message_type, Some(MessageType::PkcsReq));
    assert_eq!(
        plain.transaction_id.as_deref(),
        Some(opts.transaction_id.0.as_str())
    );
    assert_eq!(plain.digest.as_deref(), Some("SHA-512"));
    assert_eq!(plain.signature_check.as_deref(), Some("valid"));
    assert_eq!(plain.content_cipher.as_deref(), Some("DES-EDE3-CBC"));
    assert!(plain.csr_subject.is_none());
    let opened = inspect(&bytes, Some((&ca.cert, &ca.key))).unwrap();
    assert_eq!(
        opened.csr_subject.as_deref(),
        Some(subject().to_string().as_str())
    );
    assert_eq!(opened.challenge_present, Some(true));
    let text = opened.to_string();
    assert!(
        text.contains("PKCSReq (19)")
            && text.contains("CSR subject")
            && text.contains("challenge:       present"),
        "{text}"
    );
    assert!(
        !text.contains("top-secret-challenge"),
        "never print the challenge"
    );
    assert!(!format!("{opened:?}").contains("top-secret-challenge"));
    let req = parse_request(&bytes, &ca.cert, &ca.key).unwrap();
    assert!(!format!("{req:?}").contains("top-secret-challenge"));

    // base64 (as a GET query would carry it), with line breaks.
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let wrapped: String = b64
        .as_bytes()
        .chunks(76)
        .map(|c| format!("{}\n", String::from_utf8_lossy(c)))
        .collect();
    let from_text = inspect(wrapped.as_bytes(), None).unwrap();
    assert_eq!(from_text.encoding, "base64");
    assert_eq!(from_text.transaction_id, plain.transaction_id);
}

#[test]
fn inspect_explains_misaddressed_request_and_replies() {
    let (ca, other) = (ca(), other_ca());
    let opts = options(
        MessageType::PkcsReq,
        ContentCipher::Aes256,
        DigestAlg::Sha256,
    );
    let (bytes, signer) = pkcs_req(&other.cert, &opts, None);
    let i = inspect(&bytes, Some((&ca.cert, &ca.key))).unwrap();
    assert!(
        i.notes
            .iter()
            .any(|n| n.contains("not encrypted to this certificate") && n.contains("badCertId")),
        "{i}"
    );
    assert_eq!(i.recipients.len(), 1);

    let req = parse_request(&bytes, &other.cert, &other.key).unwrap();
    let rep = Responder::new(&other.cert, &other.key)
        .failure(
            &req.context(),
            FailInfo::BadRequest,
            &Nonce::random().unwrap(),
        )
        .unwrap();
    let i = inspect(&rep, None).unwrap();
    assert_eq!(i.pki_status, Some(PkiStatus::Failure));
    assert_eq!(i.fail_info, Some(FailInfo::BadRequest));
    assert!(i.to_string().contains("badRequest (2)"), "{i}");
    let _ = signer;
}

#[test]
fn inspect_rejects_junk() {
    assert!(inspect(b"", None).is_err());
    assert!(inspect(b"not base64 !!!", None).is_err());
    assert!(inspect(&[0x30, 0x03, 0x01, 0x01, 0x00], None).is_err());
}

#[test]
fn inspect_fixtures() {
    let d = std::path::Path::new("/work/shared/fixtures/scep");
    if !d.is_dir() {
        eprintln!("NOTICE: {} absent; skipping", d.display());
        return;
    }
    for f in ["micromdm/PKCSReq.der", "smallstep/CertRep.der"] {
        let i = inspect(&std::fs::read(d.join(f)).unwrap(), None).unwrap();
        eprintln!("{f}:\n{i}");
        assert_eq!(i.signature_check.as_deref(), Some("valid"), "{f}");
    }
}
