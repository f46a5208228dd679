//! Registration request and response: round trips and every refusal.

use mdm_android::*;
use mdm_pki::const_oid::ObjectIdentifier;
use mdm_pki::der::asn1::BitString;
use mdm_pki::der::{Any, Encode};
use mdm_pki::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use serde_json::json;

use crate::common::*;

#[test]
fn request_round_trip() {
    let request = register_request();
    let body = request.to_json().unwrap();
    assert_eq!(RegisterRequest::from_json(&body).unwrap(), request);
    let v = json(&body);
    assert_eq!(
        v["credentials"],
        json!({"enrollment_token": "tok_3f9a-XYZ.1~"})
    );
    assert_eq!(v["device"]["management_mode"], "fully_managed");
    assert!(v["public_key"]["csr"].is_string());
    assert!(v["device"].get("identifiers").is_some());

    let mut with_password = register_request();
    with_password.credentials = Credentials::password("ann@example.com", "s3cret!");
    with_password.public_key =
        DevicePublicKey::from_spki_der(device_key().key.public_key_spki_der());
    with_password.fcm_token = None;
    with_password.device.identifiers = Identifiers {
        enterprise_specific_id: Some("E5A1-77".into()),
        imei: Some("359881234567890".into()),
        meid: Some("A0000012345678".into()),
        serial: Some("R58N12ABCDE".into()),
        android_id: Some("9f2c4a1b7e3d5c60".into()),
    };
    let body = with_password.to_json().unwrap();
    assert_eq!(RegisterRequest::from_json(&body).unwrap(), with_password);
    assert!(json(&body).get("fcm_token").is_none());
}

#[test]
fn credential_kinds() {
    let req = register_request();
    assert!(matches!(
        req.credentials.kind(),
        Ok(Credential::EnrollmentToken("tok_3f9a-XYZ.1~"))
    ));
    let pw = Credentials::password("ann@example.com", "pw");
    assert!(matches!(
        pw.kind(),
        Ok(Credential::Password {
            email: "ann@example.com",
            password: "pw"
        })
    ));
    let body = edited(&req, |v| {
        v["credentials"]["email"] = json!("ann@example.com");
        v["credentials"]["password"] = json!("pw");
    });
    assert_eq!(
        invalid::<RegisterRequest>(&body),
        ValidationError::BothCredentials
    );
    let body = edited(&req, |v| {
        v["credentials"]["email"] = json!("ann@example.com")
    });
    assert_eq!(
        invalid::<RegisterRequest>(&body),
        ValidationError::BothCredentials
    );
    let body = edited(&req, |v| v["credentials"] = json!({}));
    assert_eq!(
        invalid::<RegisterRequest>(&body),
        ValidationError::NoCredentials
    );
    let body = edited(&req, |v| {
        v["credentials"] = json!({"email": "ann@example.com"})
    });
    assert_eq!(
        invalid::<RegisterRequest>(&body),
        ValidationError::Missing {
            field: "credentials.password"
        }
    );
    let body = edited(&req, |v| {
        v["credentials"] = json!({"email": "ann", "password": "x"})
    });
    assert!(matches!(
        invalid::<RegisterRequest>(&body),
        ValidationError::BadFormat {
            field: "credentials.email",
            ..
        }
    ));
    let body = edited(&req, |v| {
        v["credentials"] = json!({"enrollment_token": "a b"})
    });
    assert!(matches!(
        invalid::<RegisterRequest>(&body),
        ValidationError::BadFormat {
            field: "credentials.enrollment_token",
            ..
        }
    ));
}

#[test]
fn secrets_stay_out_of_debug_and_errors() {
    let mut req = register_request();
    req.credentials = Credentials::password("ann@example.com", "hunter2-secret");
    let debug = format!("{req:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("ann@example.com"));
    let token = Credentials::enrollment_token("tok_very_secret");
    assert!(!format!("{token:?}").contains("very_secret"));
    assert!(!format!("{:?}", token.kind().unwrap()).contains("very_secret"));

    // A password of the wrong JSON type: the error names the place only.
    let body = edited(&req, |v| v["credentials"]["password"] = json!(918273645));
    let text = malformed::<RegisterRequest>(&body);
    assert!(!text.contains("918273645"), "{text}");
}

#[test]
fn unknown_fields_are_refused() {
    let req = register_request();
    for (path, edit) in [
        (
            "top level",
            Box::new(|v: &mut serde_json::Value| v["extra"] = json!(1)) as Box<dyn Fn(&mut _)>,
        ),
        (
            "credentials",
            Box::new(|v: &mut serde_json::Value| v["credentials"]["pin"] = json!("1")),
        ),
        (
            "device",
            Box::new(|v: &mut serde_json::Value| v["device"]["brand"] = json!("x")),
        ),
        (
            "os",
            Box::new(|v: &mut serde_json::Value| v["device"]["os"]["build"] = json!("x")),
        ),
        (
            "identifiers",
            Box::new(|v: &mut serde_json::Value| v["device"]["identifiers"]["mac"] = json!("x")),
        ),
        (
            "public_key",
            Box::new(|v: &mut serde_json::Value| v["public_key"]["spki"] = json!("AAAA")),
        ),
    ] {
        let body = edited(&req, |v| edit(v));
        let text = malformed::<RegisterRequest>(&body);
        assert!(
            text.contains("unknown field") || text.contains("expected"),
            "{path}: {text}"
        );
    }
    let body = edited(&req, |v| v["device"]["management_mode"] = json!("kiosk"));
    assert!(malformed::<RegisterRequest>(&body).contains("unknown variant"));
}

#[test]
fn oversized_and_malformed_values() {
    let req = register_request();
    let long = "x".repeat(65);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edited(&req, |v| v["device"]["model"] = json!(long)),
            "device.model",
        ),
        (
            edited(&req, |v| v["device"]["manufacturer"] = json!("")),
            "device.manufacturer",
        ),
        (
            edited(&req, |v| {
                v["device"]["os"]["version"] = json!("1".repeat(33))
            }),
            "os.version",
        ),
        (
            edited(&req, |v| v["device"]["os"]["api_level"] = json!(20)),
            "os.api_level",
        ),
        (
            edited(&req, |v| {
                v["device"]["os"]["security_patch"] = json!("2024-13-01")
            }),
            "os.security_patch",
        ),
        (
            edited(&req, |v| {
                v["device"]["identifiers"]["imei"] = json!("35988123456789X")
            }),
            "identifiers.imei",
        ),
        (
            edited(&req, |v| {
                v["device"]["identifiers"]["meid"] = json!("G0000012345678")
            }),
            "identifiers.meid",
        ),
        (
            edited(&req, |v| {
                v["device"]["identifiers"]["serial"] = json!("has space")
            }),
            "identifiers.serial",
        ),
        (
            edited(&req, |v| {
                v["device"]["identifiers"]["android_id"] = json!("xyz")
            }),
            "identifiers.android_id",
        ),
        (
            edited(&req, |v| {
                v["device"]["identifiers"]["enterprise_specific_id"] = json!("e".repeat(129))
            }),
            "identifiers.enterprise_specific_id",
        ),
        (edited(&req, |v| v["tenant"] = json!("Acme")), "tenant"),
        (
            edited(&req, |v| v["fcm_token"] = json!("t".repeat(4097))),
            "fcm_token",
        ),
        (
            edited(&req, |v| {
                v["credentials"]["enrollment_token"] = json!("t".repeat(513))
            }),
            "credentials.enrollment_token",
        ),
        (
            edited(&req, |v| {
                v["credentials"] = json!({"email": "a@b", "password": "p".repeat(1025)})
            }),
            "credentials.password",
        ),
    ];
    for (body, field) in cases {
        let err = invalid::<RegisterRequest>(&body);
        assert!(format!("{err:?}").contains(field), "{field}: {err:?}");
    }
    let huge = vec![b' '; RegisterRequest::MAX_BODY_LEN + 1];
    assert!(matches!(
        RegisterRequest::from_json(&huge),
        Err(MessageError::TooLarge { .. })
    ));
}

#[test]
fn public_key_checks() {
    let req = register_request();
    let bad_b64 = edited(&req, |v| v["public_key"] = json!({"csr": "not base64!"}));
    assert_eq!(
        invalid::<RegisterRequest>(&bad_b64),
        ValidationError::BadBase64 {
            field: "public_key.csr"
        }
    );
    let not_der = edited(&req, |v| v["public_key"] = json!({"spki": "AAECAwQF"}));
    assert!(matches!(
        invalid::<RegisterRequest>(&not_der),
        ValidationError::BadFormat {
            field: "public_key.spki",
            ..
        }
    ));
    // Flip a byte inside the CSR's signature: proof of possession fails.
    let mut csr = device_key().csr_der.clone();
    let last = csr.len() - 1;
    csr[last] ^= 0x01;
    let mut tampered = register_request();
    tampered.public_key = DevicePublicKey::from_csr_der(&csr);
    assert_eq!(
        tampered.validate(),
        Err(ValidationError::BadFormat {
            field: "public_key.csr",
            reason: "the request's signature does not verify"
        })
    );
    // An EC key is refused: request signatures are RSA.
    let ec = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: ObjectIdentifier::new_unwrap("1.2.840.10045.2.1"),
            parameters: Some(Any::from(&ObjectIdentifier::new_unwrap(
                "1.2.840.10045.3.1.7",
            ))),
        },
        subject_public_key: BitString::from_bytes(&[4u8; 65]).unwrap(),
    };
    let mut ec_req = register_request();
    ec_req.public_key = DevicePublicKey::from_spki_der(&ec.to_der().unwrap());
    assert_eq!(
        ec_req.validate(),
        Err(ValidationError::BadFormat {
            field: "public_key.spki",
            reason: "the key must be RSA"
        })
    );
    // Both forms yield the same SPKI.
    let from_csr = req.public_key.spki_der().unwrap();
    assert_eq!(from_csr, device_key().key.public_key_spki_der());
    let spki = DevicePublicKey::from_spki_der(device_key().key.public_key_spki_der());
    assert_eq!(spki.spki_der().unwrap(), from_csr);
}

fn cert_der() -> Vec<u8> {
    let key = &device_key().key;
    let ca = mdm_pki::self_signed_ca(key, "CN=Acme Device CA", &[1], at(NOW - 60), at(NOW + 3600))
        .unwrap();
    mdm_pki::cert_to_der(&ca).unwrap()
}

#[test]
fn response_round_trip_and_rules() {
    let cert = cert_der();
    let response = RegisterResponse::new(
        DEVICE_ID,
        &cert,
        std::slice::from_ref(&cert),
        900,
        ManagementMode::CompanyOwnedWorkProfile,
    );
    assert!(response.remove_user_ca_certificates);
    let body = response.to_json().unwrap();
    assert_eq!(RegisterResponse::from_json(&body).unwrap(), response);
    let v = json(&body);
    assert_eq!(v["api_version"], "v1");
    assert_eq!(v["device_id"], DEVICE_ID.to_string());
    assert_eq!(v["endpoints"]["checkin"], "/android/v1/checkin");
    assert_eq!(v["endpoints"]["commands"], "/android/v1/commands");
    assert_eq!(
        v["endpoints"]["command_result"],
        "/android/v1/commands/result"
    );
    assert_eq!(v["endpoints"]["events"], "/android/v1/events");
    assert_eq!(v["endpoints"]["policy"], "/android/v1/policy");
    assert_eq!(response.certificate_der().unwrap(), cert);
    assert_eq!(response.ca_chain_der().unwrap(), vec![cert.clone()]);

    let byod = RegisterResponse::new(
        DEVICE_ID,
        &cert,
        &[],
        900,
        ManagementMode::PersonalWorkProfile,
    );
    assert!(!byod.remove_user_ca_certificates);

    // Agents tolerate fields added later within v1.
    let newer = edited(&response, |v| v["policy_hash"] = json!("abc"));
    assert_eq!(RegisterResponse::from_json(&newer).unwrap(), response);

    let short = edited(&response, |v| v["checkin_interval_secs"] = json!(59));
    assert!(matches!(
        invalid::<RegisterResponse>(&short),
        ValidationError::OutOfRange {
            field: "checkin_interval_secs",
            ..
        }
    ));
    let bad_cert = edited(&response, |v| v["certificate"] = json!("AAAA"));
    assert!(matches!(
        invalid::<RegisterResponse>(&bad_cert),
        ValidationError::BadFormat {
            field: "certificate",
            ..
        }
    ));
    let bad_version = edited(&response, |v| v["api_version"] = json!("v9"));
    assert!(malformed::<RegisterResponse>(&bad_version).contains("line"));
}
