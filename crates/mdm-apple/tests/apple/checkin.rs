//! Check-in messages: real captures, every message type in XML and binary
//! form, unknown keys, enrollment IDs, and the check-in replies.

use mdm_apple::*;

use crate::common::{fixtures_dir, to_binary, xml};

const TOPIC: &str = "com.apple.mgmt.External.00000000-1111-2222-3333-444444444444";

/// Parses `body` as XML and as binary; both must give the same message.
fn parse_both(body: &str) -> CheckinMessage {
    let x = xml(body);
    let from_xml = CheckinMessage::parse(&x).unwrap();
    let b = to_binary(&x);
    let from_bin = CheckinMessage::parse(&b).unwrap();
    assert_eq!(from_bin.raw().bytes, b, "binary keeps its own raw bytes");
    assert_eq!(from_xml.raw().bytes, x);
    assert_eq!(from_xml.raw().ignored_keys, from_bin.raw().ignored_keys);
    assert_eq!(from_xml.message_type(), from_bin.message_type());
    assert_eq!(from_xml.enrollment(), from_bin.enrollment());
    from_xml
}

#[test]
fn real_captures_parse_with_expected_fields() {
    let Some(dir) = fixtures_dir() else { return };
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let found = inspect(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The binary form of every capture parses to the same thing.
        let again = inspect(&to_binary(&bytes)).unwrap();
        assert_eq!(found.to_string(), again.to_string(), "{name}");
        seen += 1;
        match (name.as_str(), found) {
            (
                "nanomdm-Authenticate.1.plist",
                Inspection::Checkin(CheckinMessage::Authenticate(a)),
            ) => {
                assert_eq!(
                    a.enrollment.id.to_string(),
                    "663b07bb783e9ade1dae4fbb92ea12afc0ce5b69"
                );
                assert_eq!(a.enrollment.id.kind(), ChannelKind::Device);
                assert_eq!(a.serial_number.as_deref(), Some("F5JM992LF193"));
                assert_eq!(a.product_name.as_deref(), Some("iPad2,5"));
                assert_eq!(a.os_version.as_deref(), Some("9.3.5"));
                assert_eq!(a.build_version.as_deref(), Some("13G36"));
                assert!(a.topic.starts_with("com.apple.mgmt.External."));
                assert!(a.raw.ignored_keys.is_empty());
            }
            (
                "nanomdm-Authenticate.2.plist",
                Inspection::Checkin(CheckinMessage::Authenticate(a)),
            ) => {
                assert_eq!(a.device_name.as_deref(), Some("Fruit"));
                assert_eq!(a.model.as_deref(), Some("iMac14,2"));
                assert_eq!(a.model_name.as_deref(), Some("iMac"));
                assert_eq!(a.os_version.as_deref(), Some("10.12.6"));
                // macOS 10.12 sent a Challenge key that is not in Apple's schema.
                assert_eq!(a.raw.ignored_keys, ["Challenge"]);
            }
            (
                "nanomdm-TokenUpdate.1.plist",
                Inspection::Checkin(CheckinMessage::TokenUpdate(t)),
            ) => {
                assert_eq!(t.token.len(), 32);
                assert_eq!(t.push_magic, "CEFDF0BD-E342-4A27-8742-E930EA116B0A");
                assert!(t.unlock_token.as_ref().is_some_and(|u| u.len() > 500));
                assert_eq!(t.awaiting_configuration, Some(false));
                assert!(!t.enrollment.id.is_user_channel());
            }
            (
                "nanomdm-TokenUpdate.2.plist",
                Inspection::Checkin(CheckinMessage::TokenUpdate(t)),
            ) => {
                assert_eq!(
                    t.enrollment.id.to_string(),
                    "66ADE930-5FDF-5EC4-8429-15640684C489"
                );
                assert_eq!(t.unlock_token, None);
            }
            ("nanomdm-DeviceInformation.1.plist", Inspection::Report(r)) => {
                assert_eq!(r.status, CommandStatus::Acknowledged);
                assert_eq!(
                    r.command_uuid.as_deref(),
                    Some("76eda240-5488-4989-8339-f2ae160113c4")
                );
                assert_eq!(r.request_type.as_deref(), Some("DeviceInformation"));
                let info = DeviceInfo::from_report(&r).unwrap();
                assert_eq!(info.host_name.as_deref(), Some("fruit.example.com"));
                assert_eq!(
                    info.udid.as_deref(),
                    Some("66ADE930-5FDF-5EC4-8429-15640684C489")
                );
            }
            (other, found) if other.starts_with("nanomdm-") => {
                panic!("{other}: unexpected parse {found:?}")
            }
            (other, found) => eprintln!("{other}: parsed as {found}"),
        }
    }
    assert!(seen >= 5, "expected the five nanomdm captures, saw {seen}");
}

#[test]
fn authenticate_user_enrollment_uses_enrollment_id() {
    let m = parse_both(&format!(
        "<dict><key>MessageType</key><string>Authenticate</string>\
         <key>EnrollmentID</key><string>ENR-1</string>\
         <key>Topic</key><string>{TOPIC}</string>\
         <key>OSVersion</key><string>17.4</string>\
         <key>FutureKey</key><integer>3</integer></dict>"
    ));
    let CheckinMessage::Authenticate(a) = m else {
        panic!("{m:?}")
    };
    assert_eq!(a.enrollment.id.to_string(), "ENR-1");
    assert_eq!(a.enrollment.id.kind(), ChannelKind::UserEnrollmentDevice);
    assert_eq!(a.enrollment.udid, None);
    assert_eq!(a.raw.ignored_keys, ["FutureKey"]);
}

#[test]
fn token_update_user_channel() {
    let m = parse_both(&format!(
        "<dict><key>MessageType</key><string>TokenUpdate</string>\
         <key>UDID</key><string>MAC-UDID</string>\
         <key>UserID</key><string>USER-GUID</string>\
         <key>UserShortName</key><string>alice</string>\
         <key>UserLongName</key><string>Alice Liddell</string>\
         <key>NotOnConsole</key><false/>\
         <key>Topic</key><string>{TOPIC}</string>\
         <key>Token</key><data>AAECAw==</data>\
         <key>PushMagic</key><string>magic-1</string></dict>"
    ));
    let CheckinMessage::TokenUpdate(t) = &m else {
        panic!("{m:?}")
    };
    assert_eq!(t.enrollment.id.to_string(), "MAC-UDID:USER-GUID");
    assert_eq!(t.enrollment.id.kind(), ChannelKind::User);
    assert_eq!(
        t.enrollment.id.device_channel(),
        EnrollmentId::device("MAC-UDID")
    );
    assert_eq!(
        t.enrollment.user_long_name.as_deref(),
        Some("Alice Liddell")
    );
    assert_eq!(t.token, [0, 1, 2, 3]);
    assert_eq!(t.not_on_console, Some(false));
    assert_eq!(m.topic(), Some(TOPIC));
    assert!(m.raw().ignored_keys.is_empty());
}

#[test]
fn token_update_user_enrollment_user_channel() {
    let m = parse_both(&format!(
        "<dict><key>MessageType</key><string>TokenUpdate</string>\
         <key>EnrollmentID</key><string>ENR-1</string>\
         <key>EnrollmentUserID</key><string>EUSER-1</string>\
         <key>Topic</key><string>{TOPIC}</string>\
         <key>Token</key><data>AQ==</data><key>PushMagic</key><string>m</string></dict>"
    ));
    assert_eq!(m.enrollment().id.to_string(), "ENR-1:EUSER-1");
    assert_eq!(m.enrollment().id.kind(), ChannelKind::UserEnrollmentUser);
}

#[test]
fn the_other_message_types() {
    let m = parse_both(&format!(
        "<dict><key>MessageType</key><string>CheckOut</string>\
         <key>UDID</key><string>U1</string><key>Topic</key><string>{TOPIC}</string></dict>"
    ));
    assert!(matches!(&m, CheckinMessage::CheckOut(c) if c.topic.as_deref() == Some(TOPIC)));

    let m = parse_both(
        "<dict><key>MessageType</key><string>UserAuthenticate</string>\
         <key>UDID</key><string>U1</string><key>UserID</key><string>G1</string>\
         <key>DigestResponse</key><string>resp</string></dict>",
    );
    let CheckinMessage::UserAuthenticate(u) = &m else {
        panic!("{m:?}")
    };
    assert_eq!(u.digest_response.as_deref(), Some("resp"));
    assert_eq!(u.enrollment.id.to_string(), "U1:G1");

    let m = parse_both(
        "<dict><key>MessageType</key><string>GetBootstrapToken</string>\
         <key>UDID</key><string>U1</string><key>AwaitingConfiguration</key><true/></dict>",
    );
    assert!(
        matches!(&m, CheckinMessage::GetBootstrapToken(g) if g.awaiting_configuration == Some(true))
    );

    let m = parse_both(
        "<dict><key>MessageType</key><string>SetBootstrapToken</string>\
         <key>UDID</key><string>U1</string><key>BootstrapToken</key><data>c2VjcmV0</data></dict>",
    );
    assert!(
        matches!(&m, CheckinMessage::SetBootstrapToken(s) if s.bootstrap_token.as_deref() == Some(b"secret".as_slice()))
    );

    // Zero-length means "remove", like absent.
    let m = parse_both(
        "<dict><key>MessageType</key><string>SetBootstrapToken</string>\
         <key>UDID</key><string>U1</string><key>BootstrapToken</key><data></data></dict>",
    );
    assert!(matches!(&m, CheckinMessage::SetBootstrapToken(s) if s.bootstrap_token.is_none()));

    let m = parse_both(
        "<dict><key>MessageType</key><string>ReturnToService</string>\
         <key>UDID</key><string>U1</string></dict>",
    );
    assert_eq!(m.message_type(), "ReturnToService");

    let m = parse_both(
        "<dict><key>MessageType</key><string>DeclarativeManagement</string>\
         <key>UDID</key><string>U1</string><key>Endpoint</key><string>tokens</string>\
         <key>Data</key><data>e30=</data></dict>",
    );
    let CheckinMessage::DeclarativeManagement(d) = &m else {
        panic!("{m:?}")
    };
    assert_eq!(d.endpoint.as_deref(), Some("tokens"));
    assert_eq!(d.data.as_deref(), Some(b"{}".as_slice()));

    let m = parse_both(
        "<dict><key>MessageType</key><string>GetToken</string><key>UDID</key><string>U1</string>\
         <key>TokenServiceType</key><string>com.apple.watch.pairing</string>\
         <key>TokenParameters</key><dict><key>PhoneUDID</key><string>P</string></dict></dict>",
    );
    assert!(
        matches!(&m, CheckinMessage::GetToken(g) if g.token_parameters.as_ref().is_some_and(|p| p.contains_key("PhoneUDID")))
    );
}

#[test]
fn unknown_message_type_is_typed_and_named() {
    let body = xml("<dict><key>MessageType</key><string>Frobnicate</string></dict>");
    let err = CheckinMessage::parse(&body).unwrap_err();
    assert_eq!(
        err.kind,
        ParseErrorKind::UnknownMessageType("Frobnicate".into())
    );
    assert_eq!(err.unknown_message_type(), Some("Frobnicate"));
    assert_eq!(err.raw, body, "the error keeps the bytes");
    assert!(err.to_string().contains("Frobnicate"));
}

#[test]
fn replies_parse_back() {
    let reply =
        plist::Value::from_reader_xml(user_authenticate_accept().unwrap().as_slice()).unwrap();
    let d = reply.as_dictionary().unwrap();
    assert_eq!(
        d.get("DigestChallenge").and_then(|v| v.as_string()),
        Some("")
    );

    let reply =
        plist::Value::from_reader_xml(bootstrap_token_reply(Some(b"tok")).unwrap().as_slice())
            .unwrap();
    assert_eq!(
        reply
            .as_dictionary()
            .unwrap()
            .get("BootstrapToken")
            .and_then(|v| v.as_data()),
        Some(b"tok".as_slice())
    );
    let empty =
        plist::Value::from_reader_xml(bootstrap_token_reply(None).unwrap().as_slice()).unwrap();
    assert!(empty.as_dictionary().unwrap().is_empty());
}

#[test]
fn inspect_summarizes_without_secrets() {
    let body = xml(&format!(
        "<dict><key>MessageType</key><string>TokenUpdate</string>\
         <key>UDID</key><string>U1</string><key>Topic</key><string>{TOPIC}</string>\
         <key>Token</key><data>AAECAw==</data><key>PushMagic</key><string>very-secret-magic</string>\
         <key>Extra</key><string>x</string></dict>"
    ));
    let text = inspect(&body).unwrap().to_string();
    assert!(text.starts_with("check-in: TokenUpdate"), "{text}");
    assert!(text.contains("U1") && text.contains(TOPIC), "{text}");
    assert!(
        text.contains("ignored keys:") && text.contains("Extra"),
        "{text}"
    );
    assert!(!text.contains("very-secret-magic"), "{text}");
    assert!(text.contains("<4 bytes>"), "{text}");
}
