//! `Mdm-Signature` verification, clock skew, and forwarded client certificates.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mdm_apple::*;
use mdm_pki::cms::content_info::ContentInfo;
use mdm_pki::cms::signed_data::SignedData;
use mdm_pki::der::{Any, Decode, Encode};
use mdm_pki::{SignerCache, cert_to_der, cert_to_pem, fingerprint_sha256, sign_attached};
use time::Duration;

use crate::common::{NOW, at, pki};

/// A detached signature as a device makes it: sign with the content attached
/// (the signature covers the signed attributes, which hold the digest), then
/// drop the eContent.
fn detached_signature(body: &[u8]) -> String {
    let p = pki();
    let attached = sign_attached(body, &p.device_key, &p.device, &[], at(NOW)).unwrap();
    let mut ci = ContentInfo::from_der(&attached).unwrap();
    let mut sd: SignedData = ci.content.decode_as().unwrap();
    sd.encap_content_info.econtent = None;
    ci.content = Any::encode_from(&sd).unwrap();
    STANDARD.encode(ci.to_der().unwrap())
}

/// Verifies with a cache of its own.
fn verify(header: &str, body: &[u8]) -> Result<VerifiedDevice, SignatureError> {
    verify_mdm_signature(header, body, &SignerCache::new(16))
}

const BODY: &[u8] =
    b"<?xml version=\"1.0\"?><plist><dict><key>Status</key><string>Idle</string></dict></plist>";

#[test]
fn detached_signature_verifies_over_the_exact_body() {
    let p = pki();
    let header = detached_signature(BODY);
    let v = verify(&header, BODY).unwrap();
    let der = cert_to_der(&p.device).unwrap();
    assert_eq!(v.signer.der, der);
    assert_eq!(v.signer.fingerprint, fingerprint_sha256(&der));
    assert_eq!(v.signing_time, Some(at(NOW)));
    check_skew(v.signing_time, at(NOW + 60), Duration::minutes(5)).unwrap();

    // Whitespace inside the base64 (folded headers, copy-paste) is tolerated.
    let folded: String = header
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join("\r\n ");
    assert!(verify(&folded, BODY).is_ok());
    let unpadded = header.trim_end_matches('=');
    assert!(verify(unpadded, BODY).is_ok());
}

#[test]
fn replay_over_another_body_fails() {
    let header = detached_signature(BODY);
    let other = b"<plist><dict><key>Status</key><string>Acknowledged</string></dict></plist>";
    assert!(matches!(
        verify(&header, other),
        Err(SignatureError::DigestMismatch)
    ));
    let mut one_byte_off = BODY.to_vec();
    one_byte_off.push(b'\n');
    assert!(matches!(
        verify(&header, &one_byte_off),
        Err(SignatureError::DigestMismatch)
    ));
}

#[test]
fn broken_signatures_are_typed() {
    assert!(matches!(
        verify("", BODY),
        Err(SignatureError::BadLength(0))
    ));
    let huge = "A".repeat(MAX_SIGNATURE_HEADER_LEN + 1);
    assert!(matches!(
        verify(&huge, BODY),
        Err(SignatureError::BadLength(_))
    ));
    assert!(matches!(
        verify("!!not base64!!", BODY),
        Err(SignatureError::BadBase64(_))
    ));
    assert!(matches!(
        verify(&STANDARD.encode(b"hello"), BODY),
        Err(SignatureError::BadCms(_))
    ));

    // An attached signature is not an Mdm-Signature.
    let p = pki();
    let attached = sign_attached(BODY, &p.device_key, &p.device, &[], at(NOW)).unwrap();
    assert!(matches!(
        verify(&STANDARD.encode(&attached), BODY),
        Err(SignatureError::BadCms(_))
    ));

    // Flip one bit of the RSA signature (the last bytes of the DER).
    let mut der = STANDARD.decode(detached_signature(BODY)).unwrap();
    let n = der.len();
    der[n - 5] ^= 0x01;
    assert!(matches!(
        verify(&STANDARD.encode(&der), BODY),
        Err(SignatureError::BadSignature(_))
    ));
}

#[test]
fn a_known_certificate_still_needs_a_good_signature() {
    let p = pki();
    let cache = SignerCache::new(16);
    let header = detached_signature(BODY);

    // A bad signature adds nothing.
    let mut der = STANDARD.decode(&header).unwrap();
    let n = der.len();
    der[n - 5] ^= 0x01;
    let forged = STANDARD.encode(&der);
    assert!(matches!(
        verify_mdm_signature(&forged, BODY, &cache),
        Err(SignatureError::BadSignature(_))
    ));
    assert!(cache.is_empty());

    let first = verify_mdm_signature(&header, BODY, &cache).unwrap();
    assert_eq!(cache.len(), 1);
    let again = verify_mdm_signature(&header, BODY, &cache).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&first.signer, &again.signer),
        "served from the cache"
    );
    assert_eq!(again.signer.der, cert_to_der(&p.device).unwrap());

    // With the certificate known, the body and the RSA signature are still checked.
    assert!(matches!(
        verify_mdm_signature(&header, b"<plist/>", &cache),
        Err(SignatureError::DigestMismatch)
    ));
    assert!(matches!(
        verify_mdm_signature(&forged, BODY, &cache),
        Err(SignatureError::BadSignature(_))
    ));
    assert_eq!(cache.len(), 1);
}

#[test]
fn skew_table() {
    let allowance = Duration::minutes(5);
    assert_eq!(
        check_skew(None, at(NOW), allowance),
        Err(SkewError::Missing)
    );
    assert!(check_skew(Some(at(NOW - 300)), at(NOW), allowance).is_ok());
    assert!(check_skew(Some(at(NOW + 300)), at(NOW), allowance).is_ok());
    assert!(matches!(
        check_skew(Some(at(NOW - 301)), at(NOW), allowance),
        Err(SkewError::Skewed { .. })
    ));
    assert!(matches!(
        check_skew(Some(at(NOW + 301)), at(NOW), allowance),
        Err(SkewError::Skewed { .. })
    ));
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[test]
fn forwarded_client_cert_forms() {
    let p = pki();
    let der = cert_to_der(&p.device).unwrap();
    let pem = cert_to_pem(&p.device).unwrap();
    let b64 = STANDARD.encode(&der);
    let forms = [
        format!(":{b64}:"),                         // RFC 9440
        format!("  :{b64}:  "),                     // with OWS
        url_escape(&pem),                           // nginx $ssl_client_escaped_cert
        pem.replace('\n', " "),                     // PEM folded onto one line
        url_escape(&pem).replace("%2B", "+"),       // ALB-style: '+' left unescaped
        pem.replace(' ', "+").replace('\n', "%0A"), // form-encoded markers
        b64.clone(),                                // bare base64 DER
    ];
    for form in &forms {
        let got = parse_forwarded_client_cert(form).unwrap_or_else(|e| panic!("{form:.40}: {e}"));
        let got = got.unwrap_or_else(|| panic!("{form:.40}: no certificate"));
        assert_eq!(got.cert_der, der, "{form:.40}");
        assert_eq!(got.cert, p.device);
    }
    for absent in ["", "   ", "(null)", "-"] {
        assert_eq!(parse_forwarded_client_cert(absent), Ok(None));
    }
    assert!(matches!(
        parse_forwarded_client_cert(":!!!:"),
        Err(ClientCertError::Encoding(_))
    ));
    assert!(matches!(
        parse_forwarded_client_cert("%ZZ"),
        Err(ClientCertError::Encoding(_))
    ));
    assert!(matches!(
        parse_forwarded_client_cert(&format!(":{}:", STANDARD.encode(b"not a cert"))),
        Err(ClientCertError::Certificate(_))
    ));
    let long = "A".repeat(MAX_CLIENT_CERT_HEADER_LEN + 1);
    assert!(matches!(
        parse_forwarded_client_cert(&long),
        Err(ClientCertError::TooLong(_))
    ));
}
