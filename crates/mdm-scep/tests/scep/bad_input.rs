//! Broken, hostile and misaddressed messages: typed errors, never a panic.

use const_oid::db::rfc5911::ID_DATA;
use const_oid::db::rfc8894::{ID_MESSAGE_TYPE, ID_SENDER_NONCE, ID_TRANSACTION_ID};
use mdm_pki::{DigestAlg, build_csr, octets_attribute, printable_attribute, sign_with_attributes};
use mdm_scep::*;

use crate::common::*;

fn valid_request() -> Vec<u8> {
    let opts = options(
        MessageType::PkcsReq,
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    );
    pkcs_req(&ca().cert, &opts, Some("pw")).0
}

fn expect_fail(bytes: &[u8]) -> ScepFailure {
    let ca = ca();
    match parse_request(bytes, &ca.cert, &ca.key) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(f) => f,
    }
}

/// Signs `envelope` as a PKCSReq exactly as the client does, for envelopes
/// the client would not build.
fn sign_envelope(envelope: &[u8]) -> Vec<u8> {
    let attrs = vec![
        printable_attribute(ID_MESSAGE_TYPE, "19").unwrap(),
        printable_attribute(ID_TRANSACTION_ID, "TID-1").unwrap(),
        octets_attribute(ID_SENDER_NONCE, &[7; 16]).unwrap(),
    ];
    sign_with_attributes(
        ID_DATA,
        Some(envelope),
        device_key(),
        &signer_cert(),
        DigestAlg::Sha256,
        attrs,
        &[],
    )
    .unwrap()
}

fn replace_all(bytes: &mut [u8], from: &[u8], to: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= bytes.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            n += 1;
        }
        i += 1;
    }
    n
}

#[test]
fn truncated_messages() {
    let good = valid_request();
    for len in (0..good.len()).step_by(7) {
        let f = expect_fail(&good[..len]);
        assert!(f.context.is_none() || len > 500, "len {len}: {f:?}");
    }
}

#[test]
fn garbage_and_bit_flips() {
    expect_fail(b"");
    expect_fail(b"GET / HTTP/1.1\r\n\r\n");
    expect_fail(&[0x30, 0x82, 0xff, 0xff]);
    let good = valid_request();
    for i in (0..good.len()).step_by(13) {
        let mut bad = good.clone();
        bad[i] ^= 0x5a;
        let ca = ca();
        // Some flips land in unsigned parts (certificate padding …); none may panic.
        let _ = parse_request(&bad, &ca.cert, &ca.key);
    }
}

#[test]
fn deep_ber_nesting() {
    let mut deep = Vec::new();
    for _ in 0..200_000 {
        deep.extend_from_slice(&[0x30, 0x80]);
    }
    let f = expect_fail(&deep);
    assert!(matches!(f.error, ScepError::Malformed { .. }), "{f:?}");
    // Nested constructed OCTET STRINGs inside an otherwise indefinite ContentInfo.
    let mut nested = vec![
        0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0xa0, 0x80,
    ];
    for _ in 0..10_000 {
        nested.extend_from_slice(&[0x24, 0x80]);
    }
    expect_fail(&nested);
}

#[test]
fn oversized_input() {
    let mut big = valid_request();
    big.resize(mdm_pki::MAX_INPUT_LEN + 1, 0);
    let f = expect_fail(&big);
    assert!(matches!(f.error, ScepError::TooLarge(_)), "{f:?}");
    assert!(decode_get_message(&"A".repeat(2 * mdm_pki::MAX_INPUT_LEN)).is_err());
}

#[test]
fn encrypted_to_another_ca() {
    let opts = options(
        MessageType::PkcsReq,
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    );
    let (bytes, _) = pkcs_req(&other_ca().cert, &opts, Some("pw"));
    let f = expect_fail(&bytes);
    // Same issuer name as our CA but another serial: no matching recipient.
    assert!(matches!(f.error, ScepError::NotForUs), "{f:?}");
    assert_eq!(f.fail_info(), FailInfo::BadCertId);
    let ctx = f.context.unwrap();
    assert_eq!(ctx.transaction_id, opts.transaction_id);
    assert_eq!(ctx.sender_nonce, Some(opts.sender_nonce));
}

#[test]
fn wrong_key_for_the_right_certificate() {
    // Our certificate, other key: the random-CEK path ends in a plain decrypt failure.
    let bytes = valid_request();
    let ca = ca();
    let f = parse_request(&bytes, &ca.cert, &other_ca().key).unwrap_err();
    assert!(
        matches!(f.error, ScepError::Decrypt | ScepError::BadRequest(_)),
        "{f:?}"
    );
    assert!(f.context.is_some());
}

#[test]
fn tampered_signature_and_content() {
    let good = valid_request();
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 5] ^= 1; // inside the signature value (last field)
    let f = expect_fail(&bad);
    assert_eq!(f.fail_info(), FailInfo::BadMessageCheck, "{f:?}");
    assert!(f.context.is_some());
}

#[test]
fn unsupported_digest() {
    let mut bytes = valid_request();
    // id-sha256 -> id-sha3-224 everywhere (digestAlgorithms and SignerInfo).
    let n = replace_all(
        &mut bytes,
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01],
        &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x07],
    );
    assert!(n >= 2);
    let f = expect_fail(&bytes);
    assert_eq!(f.fail_info(), FailInfo::BadAlg, "{f:?}");
    assert!(f.context.is_some());
}

#[test]
fn unsupported_content_cipher() {
    let csr = build_csr(device_key(), &subject(), None, DigestAlg::Sha256).unwrap();
    let mut env = encrypt_envelope(&csr, ContentCipher::Aes128, &ca().cert).unwrap();
    // aes128-CBC -> aes128-GCM (2.16.840.1.101.3.4.1.6).
    assert_eq!(
        replace_all(
            &mut env,
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x02],
            &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x06]
        ),
        1
    );
    let f = expect_fail(&sign_envelope(&env));
    assert!(
        matches!(f.error, ScepError::UnsupportedAlgorithm(_)),
        "{f:?}"
    );
    assert_eq!(f.fail_info(), FailInfo::BadAlg);
}

#[test]
fn csr_with_bad_signature() {
    let mut csr = build_csr(device_key(), &subject(), Some("pw"), DigestAlg::Sha256).unwrap();
    let n = csr.len();
    csr[n - 1] ^= 1;
    let env = encrypt_envelope(&csr, ContentCipher::Des3, &ca().cert).unwrap();
    let f = expect_fail(&sign_envelope(&env));
    assert_eq!(f.fail_info(), FailInfo::BadMessageCheck, "{f:?}");
    let garbage = encrypt_envelope(b"not a csr", ContentCipher::Des3, &ca().cert).unwrap();
    let f = expect_fail(&sign_envelope(&garbage));
    assert_eq!(f.fail_info(), FailInfo::BadMessageCheck, "{f:?}");
    assert_eq!(f.context.unwrap().transaction_id.0, "TID-1");
}

/// Someone re-signs a captured envelope after flipping ciphertext bits: bad
/// padding and a garbled CSR must get the same failInfo (no padding oracle).
#[test]
fn no_padding_oracle_in_fail_info() {
    let csr = build_csr(device_key(), &subject(), Some("secret"), DigestAlg::Sha256).unwrap();
    let env = encrypt_envelope(&csr, ContentCipher::Aes128, &ca().cert).unwrap();
    let mut seen = std::collections::HashSet::new();
    // Flip bits in the second-to-last ciphertext block, as a padding oracle would.
    let last_block_start = env.len() - 32;
    for bit in 0..128 {
        let mut e = env.clone();
        e[last_block_start + bit / 8] ^= 1 << (bit % 8);
        let f = expect_fail(&sign_envelope(&e));
        seen.insert(f.fail_info());
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        vec![FailInfo::BadMessageCheck]
    );
}

#[test]
fn missing_attributes() {
    let env = encrypt_envelope(b"x", ContentCipher::Aes128, &ca().cert).unwrap();
    let attrs = vec![printable_attribute(ID_MESSAGE_TYPE, "19").unwrap()];
    let bytes = sign_with_attributes(
        ID_DATA,
        Some(&env),
        device_key(),
        &signer_cert(),
        DigestAlg::Sha256,
        attrs,
        &[],
    )
    .unwrap();
    let f = expect_fail(&bytes);
    assert!(
        matches!(f.error, ScepError::Attribute("transactionID")),
        "{f:?}"
    );
    assert!(f.context.is_none());
    let attrs = vec![
        printable_attribute(ID_MESSAGE_TYPE, "99").unwrap(),
        printable_attribute(ID_TRANSACTION_ID, "t").unwrap(),
    ];
    let bytes = sign_with_attributes(
        ID_DATA,
        Some(&env),
        device_key(),
        &signer_cert(),
        DigestAlg::Sha256,
        attrs,
        &[],
    )
    .unwrap();
    assert!(matches!(
        expect_fail(&bytes).error,
        ScepError::Attribute("messageType")
    ));
}

#[test]
fn cert_rep_is_not_a_request() {
    let ca = ca();
    let opts = options(
        MessageType::PkcsReq,
        ContentCipher::Aes128,
        DigestAlg::Sha256,
    );
    let (bytes, _) = pkcs_req(&ca.cert, &opts, None);
    let req = parse_request(&bytes, &ca.cert, &ca.key).unwrap();
    let rep = Responder::new(&ca.cert, &ca.key)
        .pending(&req.context(), &Nonce::random().unwrap())
        .unwrap();
    let f = expect_fail(&rep);
    assert!(
        matches!(f.error, ScepError::UnexpectedType(MessageType::CertRep)),
        "{f:?}"
    );
}
