//! A device refuses bad profiles: each mutation of a good profile is refused
//! with the reason a device would give.

use mdm_apple::plist::{Dictionary, Value};
use time::OffsetDateTime;

use crate::error::ProfileError;
use crate::profile::ManagementProfile;
use crate::testing::{Ca, ca, other_ca, profile, sign};

fn signed_with(signer: &Ca, edit: impl FnOnce(&mut Dictionary)) -> Vec<u8> {
    let mut root = profile().to_plist().unwrap().into_dictionary().unwrap();
    edit(&mut root);
    sign(&crate::wire::xml(root).unwrap(), signer)
}

fn payload<'a>(root: &'a mut Dictionary, kind: &str) -> &'a mut Dictionary {
    root.get_mut("PayloadContent")
        .and_then(Value::as_array_mut)
        .unwrap()
        .iter_mut()
        .filter_map(Value::as_dictionary_mut)
        .find(|p| p.get("PayloadType").and_then(Value::as_string) == Some(kind))
        .unwrap()
}

fn scep(root: &mut Dictionary) -> &mut Dictionary {
    payload(root, "com.apple.security.scep")
        .get_mut("PayloadContent")
        .and_then(Value::as_dictionary_mut)
        .unwrap()
}

fn verify(bytes: &[u8]) -> Result<ManagementProfile, ProfileError> {
    ManagementProfile::verify(bytes, OffsetDateTime::now_utc())
}

#[test]
fn a_good_profile_is_read_whole() {
    let p = verify(&signed_with(ca(), |_| {})).unwrap();
    assert_eq!(p.identifier, "mdm.acme.enrollment");
    assert_eq!(p.scep.challenge, "secret");
    assert_eq!(p.scep.key_size, 2048);
    assert_eq!(p.scep.subject[1], ("CN".into(), "reg-1".into()));
    assert_eq!(p.mdm.server_url, "http://127.0.0.1:9/mdm/acme/connect");
    assert_eq!(p.mdm.check_in_url, "http://127.0.0.1:9/mdm/acme/checkin");
    assert!(p.mdm.sign_message && p.mdm.check_out_when_removed);
    assert!(p.mdm.per_user_connections());
    assert_eq!(p.mdm.access_rights, 8191);
    assert_eq!(p.anchors, vec![ca().cert.clone()]);
}

#[test]
fn bad_profiles_are_refused_with_the_reason() {
    let invalid = |key: &'static str| move |e: &ProfileError| matches!(e, ProfileError::Invalid { key: k, .. } if k == key);
    type Edit = Box<dyn FnOnce(&mut Dictionary)>;
    type Expect = Box<dyn Fn(&ProfileError) -> bool>;
    let cases: Vec<(&str, Edit, Expect)> = vec![
        (
            "no challenge",
            Box::new(|r| {
                scep(r).remove("Challenge");
            }),
            Box::new(|e| *e == ProfileError::Missing("Challenge".into())),
        ),
        (
            "1024-bit key",
            Box::new(|r| {
                scep(r).insert("Keysize".into(), Value::Integer(1024.into()));
            }),
            Box::new(invalid("SCEP Keysize")),
        ),
        (
            "no Keysize",
            Box::new(|r| {
                scep(r).remove("Keysize");
            }),
            Box::new(|e| matches!(e, ProfileError::Missing(_))),
        ),
        (
            "encrypt-only key",
            Box::new(|r| {
                scep(r).insert("Key Usage".into(), Value::Integer(4.into()));
            }),
            Box::new(invalid("SCEP Key Usage")),
        ),
        (
            "query in SCEP URL",
            Box::new(|r| {
                scep(r).insert("URL".into(), "http://127.0.0.1/scep?x=1".into());
            }),
            Box::new(invalid("SCEP URL")),
        ),
        (
            "wrong CAFingerprint",
            Box::new(|r| {
                scep(r).insert("CAFingerprint".into(), Value::Data(vec![7; 20]));
            }),
            Box::new(invalid("SCEP CAFingerprint")),
        ),
        (
            "no Subject",
            Box::new(|r| {
                scep(r).remove("Subject");
            }),
            Box::new(|e| matches!(e, ProfileError::Missing(_))),
        ),
        (
            "identity names nothing",
            Box::new(|r| {
                payload(r, "com.apple.mdm").insert("IdentityCertificateUUID".into(), "X".into());
            }),
            Box::new(invalid("IdentityCertificateUUID")),
        ),
        (
            "foreign topic",
            Box::new(|r| {
                payload(r, "com.apple.mdm").insert("Topic".into(), "com.example".into());
            }),
            Box::new(invalid("Topic")),
        ),
        (
            "plain http ServerURL",
            Box::new(|r| {
                payload(r, "com.apple.mdm")
                    .insert("ServerURL".into(), "http://mdm.example.com/x".into());
            }),
            Box::new(invalid("ServerURL")),
        ),
        (
            "AccessRights 2 without 1",
            Box::new(|r| {
                payload(r, "com.apple.mdm").insert("AccessRights".into(), Value::Integer(2.into()));
            }),
            Box::new(invalid("AccessRights")),
        ),
        (
            "no MDM payload",
            Box::new(|r| {
                let list = r
                    .get_mut("PayloadContent")
                    .and_then(Value::as_array_mut)
                    .unwrap();
                list.retain(|p| {
                    p.as_dictionary()
                        .and_then(|d| d.get("PayloadType"))
                        .and_then(Value::as_string)
                        != Some("com.apple.mdm")
                });
            }),
            Box::new(|e| matches!(e, ProfileError::Missing(m) if m.contains("com.apple.mdm"))),
        ),
        (
            "not a Configuration",
            Box::new(|r| {
                r.insert("PayloadType".into(), "Other".into());
            }),
            Box::new(invalid("PayloadType")),
        ),
    ];
    for (name, edit, expected) in cases {
        let err = verify(&signed_with(ca(), edit)).expect_err(name);
        assert!(expected(&err), "{name}: {err:?}");
    }
}

#[test]
fn signatures_must_verify_and_chain_to_the_profile_ca() {
    let good = signed_with(ca(), |_| {});
    let foreign = signed_with(other_ca(), |_| {});
    assert!(matches!(
        verify(&foreign),
        Err(ProfileError::UntrustedSigner(_))
    ));
    let xml = profile().to_xml().unwrap();
    let at = good
        .windows(xml.len().min(64))
        .position(|w| w == &xml[..64])
        .unwrap();
    let mut tampered = good.clone();
    tampered[at + 100] ^= 1;
    assert!(matches!(
        verify(&tampered),
        Err(ProfileError::BadSignature(_))
    ));
    assert!(
        matches!(verify(&xml), Err(ProfileError::BadSignature(_))),
        "unsigned"
    );
    let later = OffsetDateTime::now_utc() + time::Duration::days(365);
    assert_eq!(
        ManagementProfile::verify(&good, later).unwrap_err(),
        ProfileError::SignerExpired
    );
}
