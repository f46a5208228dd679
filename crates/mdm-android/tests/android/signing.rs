//! Request signing: round trip, every tampering, the clock window and the
//! header parser.

use std::collections::HashMap;

use mdm_android::*;
use time::Duration;

use crate::common::*;

const PATH: &str = "/android/v1/checkin";
const BODY: &[u8] = br#"{"management_mode":"fully_managed"}"#;
const SKEW: Duration = DEFAULT_MAX_SKEW;

fn parts<'a>(method: &'a str, path: &'a str, body: &'a [u8]) -> RequestParts<'a> {
    RequestParts { method, path, body }
}

fn nonce() -> Nonce {
    Nonce::parse("n0nce-AAAAAAAAAAAAAAA").unwrap()
}

fn signed() -> SignatureHeaders {
    RequestSigner::new(&device_key().key, DEVICE_ID)
        .sign(&parts("POST", PATH, BODY), at(NOW), nonce())
        .unwrap()
}

fn spki() -> &'static [u8] {
    device_key().key.public_key_spki_der()
}

fn verify(
    p: &RequestParts<'_>,
    h: &SignatureHeaders,
    now: i64,
) -> Result<VerifiedRequest, SigningError> {
    verify_request(spki(), p, h, at(now), SKEW)
}

#[test]
fn canonical_string_layout() {
    let text = parts("post", "/android/v1/commands?after=3", b"")
        .canonical_string(NOW, &nonce())
        .unwrap();
    assert_eq!(
        text,
        format!(
            "POST\n/android/v1/commands?after=3\n{NOW}\nn0nce-AAAAAAAAAAAAAAA\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        )
    );
    for (method, path) in [
        ("PO ST", PATH),
        ("", PATH),
        ("POST", "android/v1"),
        ("POST", "/a\nb"),
        ("POST", "/a b"),
    ] {
        assert!(matches!(
            parts(method, path, b"").canonical_string(NOW, &nonce()),
            Err(SigningError::BadRequestPart(_))
        ));
    }
}

#[test]
fn round_trip_through_headers() {
    let headers = signed();
    let map: HashMap<String, String> = headers
        .to_pairs()
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    let parsed =
        SignatureHeaders::parse(|name| map.get(&name.to_ascii_lowercase()).map(String::as_str))
            .unwrap();
    assert_eq!(parsed, headers);
    let ok = verify(&parts("POST", PATH, BODY), &parsed, NOW + 1).unwrap();
    assert_eq!(ok.device_id, DEVICE_ID);
    assert_eq!(ok.timestamp, at(NOW));
    assert_eq!(ok.nonce.as_str(), "n0nce-AAAAAAAAAAAAAAA");
    assert_eq!(ok.remember_nonce_until, at(NOW) + SKEW);
    // The method is compared upper-case.
    assert!(verify(&parts("post", PATH, BODY), &headers, NOW).is_ok());
}

#[test]
fn tampering_is_detected() {
    let h = signed();
    let bad = |p: RequestParts<'_>, h: &SignatureHeaders| verify(&p, h, NOW);
    assert_eq!(
        bad(parts("POST", PATH, b"{}"), &h),
        Err(SigningError::BadSignature)
    );
    assert_eq!(
        bad(parts("POST", "/android/v1/events", BODY), &h),
        Err(SigningError::BadSignature)
    );
    assert_eq!(
        bad(parts("PUT", PATH, BODY), &h),
        Err(SigningError::BadSignature)
    );
    let shifted = SignatureHeaders {
        timestamp: NOW + 1,
        ..h.clone()
    };
    assert_eq!(
        bad(parts("POST", PATH, BODY), &shifted),
        Err(SigningError::BadSignature)
    );
    let other_nonce = SignatureHeaders {
        nonce: Nonce::parse("another-nonce-123456").unwrap(),
        ..h.clone()
    };
    assert_eq!(
        bad(parts("POST", PATH, BODY), &other_nonce),
        Err(SigningError::BadSignature)
    );
    let mut flipped = h.clone();
    flipped.signature[10] ^= 0x80;
    assert_eq!(
        bad(parts("POST", PATH, BODY), &flipped),
        Err(SigningError::BadSignature)
    );
    let truncated = SignatureHeaders {
        signature: h.signature[..100].to_vec(),
        ..h.clone()
    };
    assert_eq!(
        bad(parts("POST", PATH, BODY), &truncated),
        Err(SigningError::BadSignature)
    );
    // Signed by another key.
    let foreign = RequestSigner::new(other_key(), DEVICE_ID)
        .sign(&parts("POST", PATH, BODY), at(NOW), nonce())
        .unwrap();
    assert_eq!(
        bad(parts("POST", PATH, BODY), &foreign),
        Err(SigningError::BadSignature)
    );
    // A stored key that is not an SPKI.
    assert!(matches!(
        verify_request(b"junk", &parts("POST", PATH, BODY), &h, at(NOW), SKEW),
        Err(SigningError::BadKey(_))
    ));
}

#[test]
fn clock_window() {
    let h = signed();
    let p = parts("POST", PATH, BODY);
    let skew = SKEW.whole_seconds();
    assert!(verify(&p, &h, NOW + skew).is_ok());
    assert!(verify(&p, &h, NOW - skew).is_ok());
    assert_eq!(
        verify(&p, &h, NOW + skew + 1),
        Err(SigningError::StaleTimestamp {
            timestamp: NOW,
            now: NOW + skew + 1,
            max_skew_secs: skew
        })
    );
    assert_eq!(
        verify(&p, &h, NOW - skew - 1),
        Err(SigningError::FutureTimestamp {
            timestamp: NOW,
            now: NOW - skew - 1,
            max_skew_secs: skew
        })
    );
    // A zero allowance accepts only the exact second.
    assert!(verify_request(spki(), &p, &h, at(NOW), Duration::ZERO).is_ok());
    assert!(verify_request(spki(), &p, &h, at(NOW + 1), Duration::ZERO).is_err());
}

#[test]
fn header_parsing() {
    let good = signed().to_pairs();
    let lookup_with = |name: &'static str, value: Option<&str>| {
        let mut map: HashMap<&str, String> = good.iter().map(|(k, v)| (*k, v.clone())).collect();
        match value {
            Some(v) => map.insert(name, v.to_owned()),
            None => map.remove(name),
        };
        SignatureHeaders::parse(|n| map.get(n).map(String::as_str))
    };
    for header in [
        DEVICE_HEADER,
        TIMESTAMP_HEADER,
        NONCE_HEADER,
        SIGNATURE_HEADER,
    ] {
        assert_eq!(
            lookup_with(header, None),
            Err(SigningError::MissingHeader(header))
        );
    }
    let malformed = [
        (DEVICE_HEADER, "device-1"),
        (TIMESTAMP_HEADER, "-5"),
        (TIMESTAMP_HEADER, "17e8"),
        (TIMESTAMP_HEADER, "1234567890123"),
        (TIMESTAMP_HEADER, ""),
        (NONCE_HEADER, "short"),
        (NONCE_HEADER, "has space in the nonce!"),
        (NONCE_HEADER, &"n".repeat(65)),
        (SIGNATURE_HEADER, "***"),
        (SIGNATURE_HEADER, ""),
        (SIGNATURE_HEADER, &"A".repeat(2049)),
    ];
    for (header, value) in malformed {
        assert!(
            matches!(lookup_with(header, Some(value)), Err(SigningError::MalformedHeader { header: h, .. }) if h == header),
            "{header}: {value:?}"
        );
    }
}

#[test]
fn generated_nonces() {
    let a = Nonce::generate().unwrap();
    let b = Nonce::generate().unwrap();
    assert_ne!(a, b);
    assert_eq!(a.as_str().len(), 22);
    assert_eq!(Nonce::parse(a.as_str()).unwrap(), a);
}
