//! The command channel: reports (Idle, results, errors) and command builders.

use mdm_apple::plist::{Dictionary, Value};
use mdm_apple::*;

use crate::common::{to_binary, xml};

fn report(body: &str) -> CommandReport {
    let x = xml(body);
    let r = CommandReport::parse(&x).unwrap();
    let b = CommandReport::parse(&to_binary(&x)).unwrap();
    assert_eq!(
        (r.status, &r.command_uuid, &r.payload),
        (b.status, &b.command_uuid, &b.payload)
    );
    assert_eq!(r.raw, x);
    r
}

#[test]
fn idle_and_not_now() {
    let r = report(
        "<dict><key>Status</key><string>Idle</string><key>UDID</key><string>U1</string></dict>",
    );
    assert_eq!(r.status, CommandStatus::Idle);
    assert_eq!(r.command_uuid, None);
    assert_eq!(r.enrollment.id.to_string(), "U1");

    let r = report(
        "<dict><key>Status</key><string>NotNow</string><key>UDID</key><string>U1</string>\
         <key>UserID</key><string>G1</string><key>CommandUUID</key><string>c-1</string></dict>",
    );
    assert_eq!(r.status, CommandStatus::NotNow);
    assert_eq!(r.command_uuid.as_deref(), Some("c-1"));
    assert_eq!(r.enrollment.id.to_string(), "U1:G1");
}

#[test]
fn error_chain_is_read() {
    let r = report(
        "<dict><key>Status</key><string>Error</string><key>UDID</key><string>U1</string>\
         <key>CommandUUID</key><string>c-2</string><key>ErrorChain</key><array>\
         <dict><key>ErrorCode</key><integer>1004</integer><key>ErrorDomain</key>\
         <string>MCProfileErrorDomain</string><key>LocalizedDescription</key><string>Le profil</string>\
         <key>USEnglishDescription</key><string>The profile is not installed.</string></dict>\
         <string>odd entry</string></array></dict>",
    );
    assert_eq!(r.status, CommandStatus::Error);
    assert_eq!(r.error_chain.len(), 2);
    assert_eq!(r.error_chain[0].code, Some(1004));
    assert_eq!(
        r.error_chain[0].domain.as_deref(),
        Some("MCProfileErrorDomain")
    );
    assert_eq!(
        r.error_chain[0].to_string(),
        "MCProfileErrorDomain 1004: The profile is not installed."
    );
    assert_eq!(r.error_chain[1], ErrorChainItem::default());
    assert!(r.payload.is_empty());
    let text = inspect(&r.raw).unwrap().to_string();
    assert!(
        text.starts_with("report: Error") && text.contains("1004"),
        "{text}"
    );
}

#[test]
fn device_information_result_is_typed() {
    let r = report(
        "<dict><key>Status</key><string>Acknowledged</string><key>UDID</key><string>U1</string>\
         <key>CommandUUID</key><string>c-3</string><key>QueryResponses</key><dict>\
         <key>DeviceName</key><string>Kim's iPhone</string><key>OSVersion</key><string>17.5.1</string>\
         <key>BuildVersion</key><string>21F90</string><key>ModelName</key><string>iPhone</string>\
         <key>Model</key><string>MQ8L2</string><key>ProductName</key><string>iPhone15,2</string>\
         <key>SerialNumber</key><string>F2LXXXX</string><key>IMEI</key><string>35 000000 000000 0</string>\
         <key>DeviceCapacity</key><real>119.2</real><key>AvailableDeviceCapacity</key><integer>80</integer>\
         <key>WiFiMAC</key><string>aa:bb:cc:dd:ee:ff</string><key>IsSupervised</key><false/>\
         <key>BluetoothMAC</key><integer>5</integer>\
         <key>ICCID</key><string>8901</string></dict></dict>",
    );
    assert_eq!(r.payload_keys(), ["QueryResponses"]);
    let info = DeviceInfo::from_report(&r).unwrap();
    assert_eq!(info.device_name.as_deref(), Some("Kim's iPhone"));
    assert_eq!(info.os_version.as_deref(), Some("17.5.1"));
    assert_eq!(info.product_name.as_deref(), Some("iPhone15,2"));
    assert_eq!(info.serial_number.as_deref(), Some("F2LXXXX"));
    assert_eq!(info.device_capacity_gb, Some(119.2));
    assert_eq!(info.available_device_capacity_gb, Some(80.0));
    assert_eq!(info.is_supervised, Some(false));
    assert_eq!(info.bluetooth_mac, None, "wrong type is not read …");
    assert!(info.other.contains_key("BluetoothMAC"), "… but kept");
    assert!(info.other.contains_key("ICCID"));

    let no_answers = report(
        "<dict><key>Status</key><string>Acknowledged</string><key>UDID</key><string>U1</string>\
         <key>CommandUUID</key><string>c-4</string></dict>",
    );
    assert_eq!(
        DeviceInfo::from_report(&no_answers),
        Err(ParseErrorKind::MissingKey("QueryResponses"))
    );
}

/// Serializes, parses back (XML and binary), checks the envelope, returns the
/// `Command` dictionary.
fn round_trip(cmd: &Command) -> Dictionary {
    let bytes = cmd.to_xml().unwrap();
    let again = Command::parse(&bytes).unwrap();
    assert_eq!(&again, cmd);
    assert_eq!(&Command::parse(&to_binary(&bytes)).unwrap(), cmd);
    let top = plist::Value::from_reader_xml(bytes.as_slice())
        .unwrap()
        .into_dictionary()
        .unwrap();
    assert_eq!(
        top.get("CommandUUID").and_then(Value::as_string),
        Some(cmd.command_uuid.as_str())
    );
    let inner = top
        .get("Command")
        .and_then(Value::as_dictionary)
        .unwrap()
        .clone();
    assert_eq!(
        inner.get("RequestType").and_then(Value::as_string),
        Some(cmd.request.request_type())
    );
    inner
}

#[test]
fn command_builders_round_trip() {
    let d = round_trip(&Command::new("u-1", CommandRequest::device_information()));
    let queries: Vec<&str> = d["Queries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_string)
        .collect();
    for q in [
        "DeviceName",
        "OSVersion",
        "SerialNumber",
        "UDID",
        "WiFiMAC",
        "IsSupervised",
        "ModelName",
    ] {
        assert!(queries.contains(&q), "{q} missing");
    }
    assert_eq!(
        round_trip(&Command::new("u-2", CommandRequest::ProfileList)).len(),
        1
    );
    let d = round_trip(&Command::new(
        "u-3",
        CommandRequest::InstallProfile {
            payload: b"<plist/>".to_vec(),
        },
    ));
    assert_eq!(d["Payload"].as_data(), Some(b"<plist/>".as_slice()));
    let d = round_trip(&Command::remove_management(
        "u-4",
        "com.example.mdm.acme.reg-1",
    ));
    assert_eq!(d["RequestType"].as_string(), Some("RemoveProfile"));
    assert_eq!(
        d["Identifier"].as_string(),
        Some("com.example.mdm.acme.reg-1")
    );
    let d = round_trip(&Command::new(
        "u-5",
        CommandRequest::DeviceLock {
            pin: Some("123456".into()),
            message: Some("Lost".into()),
            phone_number: Some("+1 555 0100".into()),
        },
    ));
    assert_eq!(
        (
            d["PIN"].as_string(),
            d["Message"].as_string(),
            d["PhoneNumber"].as_string()
        ),
        (Some("123456"), Some("Lost"), Some("+1 555 0100"))
    );
    let d = round_trip(&Command::new(
        "u-6",
        CommandRequest::EraseDevice {
            pin: None,
            preserve_data_plan: Some(true),
        },
    ));
    assert_eq!(d["PreserveDataPlan"].as_boolean(), Some(true));
    assert!(!d.contains_key("PIN"));
    round_trip(&Command::new("u-7", CommandRequest::DeviceConfigured));
    let mut params = Dictionary::new();
    params.insert("Queries".into(), Value::Array(vec!["x".into()]));
    let d = round_trip(&Command::new(
        "u-8",
        CommandRequest::Custom {
            request_type: "SecurityInfo".into(),
            params,
        },
    ));
    assert!(d.contains_key("Queries"));
}

#[test]
fn parse_keeps_unknown_parameters_as_custom() {
    let body = xml(
        "<dict><key>CommandUUID</key><string>u</string><key>Command</key><dict>\
         <key>RequestType</key><string>EraseDevice</string>\
         <key>ObliterationBehavior</key><string>Always</string></dict></dict>",
    );
    let cmd = Command::parse(&body).unwrap();
    let CommandRequest::Custom {
        request_type,
        params,
    } = &cmd.request
    else {
        panic!("{cmd:?}")
    };
    assert_eq!(request_type, "EraseDevice");
    assert!(params.contains_key("ObliterationBehavior"));
    let text = inspect(&body).unwrap().to_string();
    assert!(text.starts_with("command: EraseDevice"), "{text}");
}

#[test]
fn invalid_commands_are_refused() {
    let bad = |req: CommandRequest| Command::new("u", req).to_xml().unwrap_err();
    assert!(matches!(
        bad(CommandRequest::DeviceLock {
            pin: Some("12345".into()),
            message: None,
            phone_number: None
        }),
        BuildError::Invalid { field: "PIN", .. }
    ));
    assert!(matches!(
        bad(CommandRequest::EraseDevice {
            pin: Some("abcdef".into()),
            preserve_data_plan: None
        }),
        BuildError::Invalid { field: "PIN", .. }
    ));
    assert!(matches!(
        bad(CommandRequest::RemoveProfile {
            identifier: " ".into()
        }),
        BuildError::Invalid { .. }
    ));
    assert!(matches!(
        bad(CommandRequest::InstallProfile { payload: vec![] }),
        BuildError::Invalid { .. }
    ));
    assert!(matches!(
        bad(CommandRequest::DeviceInformation { queries: vec![] }),
        BuildError::Invalid { .. }
    ));
    assert!(
        Command::new("", CommandRequest::ProfileList)
            .to_xml()
            .is_err()
    );
}
