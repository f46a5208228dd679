//! The enrollment profile: every key, stable identifiers, validation, signing
//! and `openssl smime` interop.

use std::io::Write;
use std::process::{Command, Stdio};

use mdm_apple::plist::{Dictionary, Value};
use mdm_apple::*;
use mdm_pki::{cert_to_der, cert_to_pem, verify_signed_data};

use crate::common::{NOW, at, openssl, pki};

const TOPIC: &str = "com.apple.mgmt.External.00000000-1111-2222-3333-444444444444";

fn sample() -> EnrollmentProfile {
    let p = pki();
    let mut scep = ScepPayload::new(
        "https://mdm.example.com/scep/acme",
        Some("one-time-123".into()),
    );
    scep.name = Some("acme".into());
    scep.subject = vec![("O".into(), "Acme".into()), ("CN".into(), "reg-42".into())];
    scep.ca_fingerprint = Some(ca_fingerprint(&cert_to_der(&p.ca).unwrap()));
    scep.retries = Some(3);
    scep.retry_delay = Some(10);
    let mut mdm = MdmPayload::new(TOPIC, "https://mdm.example.com/mdm/acme");
    mdm.check_in_url = Some("https://mdm.example.com/checkin/acme".into());
    mdm.capabilities.bootstrap_token = true;
    EnrollmentProfile {
        identifier: "com.example.mdm.acme.reg-42".into(),
        uuid_namespace: PROFILE_UUID_NAMESPACE,
        display_name: "Acme device management".into(),
        organization: "Acme Corp".into(),
        description: "Lets Acme manage this device.".into(),
        removal: Removal::Allowed,
        ca_cert_der: cert_to_der(&p.ca).unwrap(),
        tls_anchor_der: Some(cert_to_der(&p.device).unwrap()),
        scep,
        mdm,
    }
}

fn by_type<'a>(content: &'a [Value], t: &str) -> Vec<&'a Dictionary> {
    content
        .iter()
        .filter_map(Value::as_dictionary)
        .filter(|d| d.get("PayloadType").and_then(Value::as_string) == Some(t))
        .collect()
}

fn s<'a>(d: &'a Dictionary, k: &str) -> &'a str {
    d.get(k)
        .and_then(Value::as_string)
        .unwrap_or_else(|| panic!("{k} missing or not a string"))
}

fn i(d: &Dictionary, k: &str) -> i64 {
    d.get(k)
        .and_then(Value::as_signed_integer)
        .unwrap_or_else(|| panic!("{k}"))
}

fn b(d: &Dictionary, k: &str) -> bool {
    d.get(k)
        .and_then(Value::as_boolean)
        .unwrap_or_else(|| panic!("{k}"))
}

#[test]
fn profile_has_every_key() {
    let profile = sample();
    let xml = profile.to_xml().unwrap();
    let root = Value::from_reader_xml(xml.as_slice())
        .unwrap()
        .into_dictionary()
        .unwrap();
    assert_eq!(s(&root, "PayloadType"), "Configuration");
    assert_eq!(i(&root, "PayloadVersion"), 1);
    assert_eq!(s(&root, "PayloadIdentifier"), "com.example.mdm.acme.reg-42");
    assert_eq!(s(&root, "PayloadDisplayName"), "Acme device management");
    assert_eq!(s(&root, "PayloadOrganization"), "Acme Corp");
    assert_eq!(
        s(&root, "PayloadDescription"),
        "Lets Acme manage this device."
    );
    assert!(!b(&root, "PayloadRemovalDisallowed"));
    let content = root["PayloadContent"].as_array().unwrap();
    let mut uuids: Vec<&str> = content
        .iter()
        .map(|p| s(p.as_dictionary().unwrap(), "PayloadUUID"))
        .collect();
    uuids.push(s(&root, "PayloadUUID"));
    uuids.sort_unstable();
    uuids.dedup();
    assert_eq!(uuids.len(), 5, "every payload has its own UUID");

    let roots = by_type(content, "com.apple.security.root");
    assert_eq!(roots.len(), 2, "tenant CA and TLS anchor");
    assert_eq!(
        roots[0]["PayloadContent"].as_data(),
        Some(profile.ca_cert_der.as_slice())
    );

    let scep = by_type(content, "com.apple.security.scep")[0];
    let c = scep["PayloadContent"].as_dictionary().unwrap();
    assert_eq!(s(c, "URL"), "https://mdm.example.com/scep/acme");
    assert_eq!(s(c, "Name"), "acme");
    assert_eq!(s(c, "Challenge"), "one-time-123");
    assert_eq!(
        (i(c, "Keysize"), s(c, "Key Type"), i(c, "Key Usage")),
        (2048, "RSA", 5)
    );
    assert_eq!(
        c["CAFingerprint"].as_data().map(<[u8]>::len),
        Some(20),
        "SHA-1"
    );
    assert_eq!((i(c, "Retries"), i(c, "RetryDelay")), (3, 10));
    let subject = c["Subject"].as_array().unwrap();
    let rdn = |n: usize| -> Vec<&str> {
        subject[n].as_array().unwrap()[0]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_string)
            .collect()
    };
    assert_eq!((rdn(0), rdn(1)), (vec!["O", "Acme"], vec!["CN", "reg-42"]));

    let mdm = by_type(content, "com.apple.mdm")[0];
    assert_eq!(s(mdm, "IdentityCertificateUUID"), s(scep, "PayloadUUID"));
    assert_eq!(s(mdm, "Topic"), TOPIC);
    assert_eq!(s(mdm, "ServerURL"), "https://mdm.example.com/mdm/acme");
    assert_eq!(s(mdm, "CheckInURL"), "https://mdm.example.com/checkin/acme");
    assert!(
        b(mdm, "SignMessage") && b(mdm, "CheckOutWhenRemoved") && !b(mdm, "UseDevelopmentAPNS")
    );
    assert_eq!(i(mdm, "AccessRights"), 8191);
    let caps: Vec<&str> = mdm["ServerCapabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_string)
        .collect();
    assert_eq!(caps, [CAP_PER_USER_CONNECTIONS, CAP_BOOTSTRAP_TOKEN]);
}

#[test]
fn identifiers_are_stable_and_input_bound() {
    let a = sample();
    assert_eq!(
        a.to_xml().unwrap(),
        sample().to_xml().unwrap(),
        "same inputs, same bytes"
    );
    let mut other = sample();
    other.identifier = "com.example.mdm.acme.reg-43".into();
    assert_ne!(a.payload_uuid("mdm"), other.payload_uuid("mdm"));
    assert_eq!(a.payload_uuid("scep").len(), 36);
    let mut disallowed = sample();
    disallowed.removal = Removal::Disallowed;
    let root = Value::from_reader_xml(disallowed.to_xml().unwrap().as_slice())
        .unwrap()
        .into_dictionary()
        .unwrap();
    assert!(b(&root, "PayloadRemovalDisallowed"));
    assert_eq!(
        s(&root, "PayloadUUID"),
        a.payload_uuid("profile"),
        "removal choice does not move the UUID"
    );
}

#[test]
fn invalid_profiles_are_refused() {
    let field = |f: fn(&mut EnrollmentProfile)| {
        let mut p = sample();
        f(&mut p);
        match p.to_xml().unwrap_err() {
            BuildError::Invalid { field, .. } => field,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(field(|p| p.scep.url.push_str("?tenant=acme")), "URL");
    assert_eq!(field(|p| p.scep.key_size = 1024), "Keysize");
    assert_eq!(
        field(|p| p.scep.ca_fingerprint = Some(vec![0; 32])),
        "CAFingerprint"
    );
    assert_eq!(field(|p| p.mdm.topic = "com.example.push".into()), "Topic");
    assert_eq!(
        field(|p| p.mdm.server_url = "http://mdm.example.com/".into()),
        "ServerURL"
    );
    assert_eq!(field(|p| p.mdm.access_rights = 2), "AccessRights");
    assert_eq!(field(|p| p.mdm.access_rights = 0), "AccessRights");
    assert_eq!(
        field(|p| p.identifier = "has space".into()),
        "PayloadIdentifier"
    );
    assert_eq!(
        field(|p| p.ca_cert_der = b"junk".to_vec()),
        "CA certificate"
    );
}

fn smime_verify(signed: &[u8], extra: &[&str]) -> Vec<u8> {
    let mut child = Command::new("openssl")
        .args(["smime", "-verify", "-inform", "DER"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(signed).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn signed_profile_verifies_here_and_in_openssl() {
    let p = pki();
    let xml = sample().to_xml().unwrap();
    let signed = sign_profile(
        &xml,
        &p.device_key,
        &p.device,
        std::slice::from_ref(&p.ca),
        at(NOW),
    )
    .unwrap();
    let verified = verify_signed_data(&signed, None, &[]).unwrap();
    assert_eq!(verified.content, xml);
    assert_eq!(verified.signing_time, Some(at(NOW)));
    assert_eq!(PROFILE_CONTENT_TYPE, "application/x-apple-aspen-config");
    if !openssl() {
        return;
    }
    assert_eq!(
        smime_verify(&signed, &["-noverify"]),
        xml,
        "openssl outputs the identical XML"
    );
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert_to_pem(&p.ca).unwrap()).unwrap();
    let chained = smime_verify(
        &signed,
        &[
            "-CAfile",
            ca.to_str().unwrap(),
            "-purpose",
            "any",
            "-attime",
            &NOW.to_string(),
        ],
    );
    assert_eq!(chained, xml);
}
