//! Our client against our server code: every cipher and digest.

use mdm_pki::{CertificateExt, DigestAlg, build_csr, issue_leaf, verify_issued_by};
use mdm_scep::client::{CertRepReply, build_request, cert_poll_content, parse_cert_rep};
use mdm_scep::*;

use crate::common::*;

fn issue(req: &ScepRequest) -> mdm_pki::x509_cert::Certificate {
    let ca = ca();
    let csr = req.csr().unwrap();
    let serial = mdm_pki::random_bytes(16).unwrap();
    issue_leaf(
        &ca.key,
        &ca.cert,
        &csr.csr,
        &serial,
        now(),
        now() + days(365),
    )
    .unwrap()
}

fn read_reply(bytes: &[u8], signer: &mdm_pki::x509_cert::Certificate) -> CertRepReply {
    let key = device_key();
    parse_cert_rep(
        bytes,
        std::slice::from_ref(&ca().cert),
        signer,
        key,
        key.public_key_spki(),
    )
    .unwrap()
}

#[test]
fn pkcs_req_round_trip_all_ciphers_and_digests() {
    let ca = ca();
    let ciphers = [
        ContentCipher::Aes128,
        ContentCipher::Aes256,
        ContentCipher::Des3,
        ContentCipher::Des,
        ContentCipher::Aes192,
    ];
    for cipher in ciphers {
        for digest in [DigestAlg::Sha256, DigestAlg::Sha512, DigestAlg::Sha1] {
            let opts = options(MessageType::PkcsReq, cipher, digest);
            let (bytes, signer) = pkcs_req(&ca.cert, &opts, Some("s3cret"));
            corpus(&format!("pkcsreq-{cipher}-{digest:?}"), &bytes);
            let req = parse_request(&bytes, &ca.cert, &ca.key).unwrap();
            assert_eq!(req.message.message_type, MessageType::PkcsReq);
            assert_eq!(req.message.transaction_id, opts.transaction_id);
            assert_eq!(req.message.sender_nonce.as_ref(), Some(&opts.sender_nonce));
            assert_eq!(req.message.digest, digest);
            assert_eq!(req.message.raw(), &bytes[..]);
            assert_eq!(req.cipher, cipher);
            let csr = req.csr().unwrap();
            assert_eq!(csr.challenge(), Some("s3cret"));
            assert_eq!(csr.digest, digest);
            assert_eq!(csr.subject(), subject().to_string());

            let issued = issue(&req);
            let nonce = Nonce::random().unwrap();
            let rep = Responder::new(&ca.cert, &ca.key)
                .success(&req, std::slice::from_ref(&issued), &nonce)
                .unwrap();
            corpus(&format!("certrep-{cipher}-{digest:?}"), &rep);
            let reply = read_reply(&rep, &signer);
            assert_eq!(reply.status, PkiStatus::Success, "{cipher} {digest:?}");
            assert_eq!(reply.cipher, Some(cipher.for_reply()));
            assert_eq!(reply.issued.as_ref(), Some(&issued));
            assert_eq!(
                reply.message.recipient_nonce.as_ref(),
                Some(&opts.sender_nonce)
            );
            assert_eq!(reply.message.sender_nonce.as_ref(), Some(&nonce));
            assert_eq!(reply.message.transaction_id, opts.transaction_id);
            verify_issued_by(&issued, &ca.cert).unwrap();
            assert_eq!(issued.subject_string(), subject().to_string());
        }
    }
}

#[test]
fn failure_and_pending_replies() {
    let ca = ca();
    let opts = options(
        MessageType::PkcsReq,
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    );
    let (bytes, signer) = pkcs_req(&ca.cert, &opts, Some("wrong"));
    let req = parse_request(&bytes, &ca.cert, &ca.key).unwrap();
    let responder = Responder::new(&ca.cert, &ca.key);
    let rep = responder
        .failure(
            &req.context(),
            FailInfo::BadRequest,
            &Nonce::random().unwrap(),
        )
        .unwrap();
    let reply = read_reply(&rep, &signer);
    assert_eq!(reply.status, PkiStatus::Failure);
    assert_eq!(reply.fail_info, Some(FailInfo::BadRequest));
    assert!(reply.issued.is_none() && reply.message.envelope.is_none());
    assert_eq!(
        reply.message.recipient_nonce.as_ref(),
        Some(&opts.sender_nonce)
    );
    let rep = responder
        .pending(&req.context(), &Nonce::random().unwrap())
        .unwrap();
    let reply = read_reply(&rep, &signer);
    assert_eq!(reply.status, PkiStatus::Pending);
    assert_eq!(reply.fail_info, None);
}

#[test]
fn reply_from_untrusted_ca_is_rejected() {
    let (ca, other) = (ca(), other_ca());
    let opts = options(
        MessageType::PkcsReq,
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    );
    let (bytes, signer) = pkcs_req(&other.cert, &opts, None);
    let req = parse_request(&bytes, &other.cert, &other.key).unwrap();
    let rep = Responder::new(&other.cert, &other.key)
        .failure(
            &req.context(),
            FailInfo::BadRequest,
            &Nonce::random().unwrap(),
        )
        .unwrap();
    let key = device_key();
    let err = parse_cert_rep(
        &rep,
        std::slice::from_ref(&ca.cert),
        &signer,
        key,
        key.public_key_spki(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            ScepError::UntrustedSigner | ScepError::BadMessageCheck(_)
        ),
        "{err:?}"
    );
}

#[test]
fn renewal_signed_with_issued_certificate() {
    let ca = ca();
    let opts = options(
        MessageType::PkcsReq,
        ContentCipher::Aes256,
        DigestAlg::Sha256,
    );
    let (bytes, _) = pkcs_req(&ca.cert, &opts, Some("pw"));
    let current = issue(&parse_request(&bytes, &ca.cert, &ca.key).unwrap());
    let mut renew = options(
        MessageType::RenewalReq,
        ContentCipher::Aes256,
        DigestAlg::Sha256,
    );
    renew.outer_challenge = Some("outer-only".into());
    let csr = build_csr(device_key(), &subject(), None, DigestAlg::Sha256).unwrap();
    let bytes = build_request(&csr, &current, device_key(), &ca.cert, &renew).unwrap();
    let req = parse_request(&bytes, &ca.cert, &ca.key).unwrap();
    assert_eq!(req.message.message_type, MessageType::RenewalReq);
    assert_eq!(&req.message.signer, &current);
    verify_issued_by(&req.message.signer, &ca.cert).unwrap();
    assert_eq!(req.message.outer_challenge(), Some("outer-only"));
    assert_eq!(
        req.csr().unwrap().challenge(),
        Some("outer-only"),
        "outer attribute used when the CSR has none"
    );
    let renewed = issue(&req);
    let rep = Responder::new(&ca.cert, &ca.key)
        .success(
            &req,
            &[renewed.clone(), ca.cert.clone()],
            &Nonce::random().unwrap(),
        )
        .unwrap();
    let reply = read_reply(&rep, &current);
    assert_eq!(reply.issued, Some(renewed));
    assert_eq!(reply.certificates.len(), 2);
}

#[test]
fn cert_poll_content_decodes() {
    let ca = ca();
    let opts = options(
        MessageType::CertPoll,
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    );
    let content = cert_poll_content(ca.cert.tbs_certificate().subject(), &subject()).unwrap();
    let bytes = build_request(&content, &signer_cert(), device_key(), &ca.cert, &opts).unwrap();
    let req = parse_request(&bytes, &ca.cert, &ca.key).unwrap();
    match req.content {
        RequestContent::CertPoll(ias) => assert_eq!(ias.subject, subject()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn get_ca_caps_and_get_ca_cert() {
    for cap in [
        "POSTPKIOperation",
        "SHA-1",
        "SHA-256",
        "SHA-512",
        "AES",
        "DES3",
        "SCEPStandard",
        "Renewal",
    ] {
        assert!(CA_CAPS.lines().any(|l| l == cap), "{cap}");
    }
    assert_eq!(Operation::parse("GetCACaps"), Some(Operation::GetCaCaps));
    assert_eq!(
        Operation::parse("PKIOperation"),
        Some(Operation::PkiOperation)
    );
    assert_eq!(Operation::parse("nope"), None);
    let ca = ca();
    let one = ca_cert_response(std::slice::from_ref(&ca.cert)).unwrap();
    assert_eq!(one.content_type, CA_CERT_CONTENT_TYPE);
    assert_eq!(
        parse_ca_cert_response(one.content_type, &one.body).unwrap(),
        vec![ca.cert.clone()]
    );
    let two = ca_cert_response(&[ca.cert.clone(), other_ca().cert.clone()]).unwrap();
    assert_eq!(two.content_type, CA_RA_CERT_CONTENT_TYPE);
    assert_eq!(
        parse_ca_cert_response(two.content_type, &two.body)
            .unwrap()
            .len(),
        2
    );
    assert!(ca_cert_response(&[]).is_err());
}

#[test]
fn get_pki_operation_message_param() {
    use base64::Engine;
    let ca = ca();
    let opts = options(
        MessageType::PkcsReq,
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    );
    let (bytes, _) = pkcs_req(&ca.cert, &opts, None);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    assert_eq!(decode_get_message(&b64).unwrap(), bytes);
    // '+' that arrived unescaped as ' ', line breaks, missing padding.
    let mangled = b64
        .replace('+', " ")
        .trim_end_matches('=')
        .chars()
        .collect::<Vec<_>>()
        .chunks(64)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(decode_get_message(&mangled).unwrap(), bytes);
    assert!(decode_get_message("***").is_err());
}
