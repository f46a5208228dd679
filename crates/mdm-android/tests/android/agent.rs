//! Check-ins and device events.

use mdm_android::*;
use serde_json::json;
use uuid::Uuid;

use crate::common::*;

fn fingerprint(byte: u8) -> Fingerprint {
    Fingerprint::from_bytes([byte; 32])
}

pub fn checkin() -> Checkin {
    Checkin {
        management_mode: ManagementMode::CompanyOwnedWorkProfile,
        os: OsInfo {
            version: "13".into(),
            api_level: 33,
            security_patch: Some("2024-03-05".into()),
        },
        status: DeviceStatus {
            battery_percent: Some(81),
            charging: Some(false),
            storage_free_bytes: Some(10_000_000_000),
            storage_total_bytes: Some(128_000_000_000),
        },
        inventory: Some(Inventory {
            apps: vec![
                InstalledApp {
                    package: "com.example.agent".into(),
                    version_name: Some("1.4.2".into()),
                    version_code: 10402,
                },
                InstalledApp {
                    package: "org.mozilla.firefox".into(),
                    version_name: None,
                    version_code: 2_015_990_000,
                },
            ],
            ca_certificates: vec![CaCertificate {
                sha256: fingerprint(0xab),
                subject: "CN=Corp Proxy CA,O=Example".into(),
            }],
        }),
        fcm_token: Some("new-token:APA91b".into()),
    }
}

#[test]
fn checkin_round_trip() {
    let message = checkin();
    let body = message.to_json().unwrap();
    assert_eq!(Checkin::from_json(&body).unwrap(), message);
    let v = json(&body);
    assert_eq!(
        v["inventory"]["ca_certificates"][0]["sha256"],
        "ab".repeat(32)
    );
    assert_eq!(v["status"]["battery_percent"], 81);
    assert!(v["inventory"]["apps"][1].get("version_name").is_none());

    let minimal = Checkin {
        status: DeviceStatus::default(),
        inventory: None,
        fcm_token: None,
        ..checkin()
    };
    let body = minimal.to_json().unwrap();
    assert_eq!(json(&body)["status"], json!({}));
    assert_eq!(Checkin::from_json(&body).unwrap(), minimal);
}

#[test]
fn fingerprints_are_normalised() {
    let upper = edited(&checkin(), |v| {
        v["inventory"]["ca_certificates"][0]["sha256"] = json!("AB".repeat(32));
    });
    let parsed = Checkin::from_json(&upper).unwrap();
    assert_eq!(parsed, checkin());
    for bad in ["ab".repeat(31), "zz".repeat(32), "ab:".repeat(32)] {
        let body = edited(&checkin(), |v| {
            v["inventory"]["ca_certificates"][0]["sha256"] = json!(bad);
        });
        assert!(matches!(
            Checkin::from_json(&body),
            Err(MessageError::Json(_))
        ));
    }
    let der = b"not really a certificate";
    assert_eq!(
        Fingerprint::of_der(der).to_string(),
        hex::encode(mdm_pki::fingerprint_sha256(der))
    );
}

#[test]
fn checkin_refusals() {
    let c = checkin();
    let unknown = edited(&c, |v| v["status"]["wifi"] = json!(true));
    assert!(malformed::<Checkin>(&unknown).contains("unknown field"));
    let unknown_app = edited(&c, |v| v["inventory"]["apps"][0]["icon"] = json!("x"));
    assert!(malformed::<Checkin>(&unknown_app).contains("unknown field"));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edited(&c, |v| v["status"]["battery_percent"] = json!(101)),
            "status.battery_percent",
        ),
        (
            edited(&c, |v| v["status"]["storage_free_bytes"] = json!(u64::MAX)),
            "status.storage_free_bytes",
        ),
        (
            edited(&c, |v| {
                v["inventory"]["apps"][0]["package"] = json!("nodots")
            }),
            "inventory.apps.package",
        ),
        (
            edited(&c, |v| {
                v["inventory"]["apps"][0]["version_name"] = json!("v".repeat(129))
            }),
            "inventory.apps.version_name",
        ),
        (
            edited(&c, |v| {
                v["inventory"]["ca_certificates"][0]["subject"] = json!("")
            }),
            "inventory.ca_certificates.subject",
        ),
        (
            edited(&c, |v| v["os"]["api_level"] = json!(256)),
            "os.api_level",
        ),
        (
            edited(&c, |v| v["fcm_token"] = json!("bad token")),
            "fcm_token",
        ),
    ];
    for (body, field) in cases {
        let err = invalid::<Checkin>(&body);
        assert!(format!("{err:?}").contains(field), "{field}: {err:?}");
    }
    let mut many = c.clone();
    if let Some(inv) = many.inventory.as_mut() {
        let app = inv.apps[0].clone();
        inv.apps = vec![app; MAX_APPS + 1];
    }
    assert!(matches!(
        many.validate(),
        Err(ValidationError::TooMany {
            field: "inventory.apps",
            ..
        })
    ));
}

#[test]
fn checkin_response() {
    let r = CheckinResponse {
        checkin_interval_secs: 900,
        commands_pending: true,
    };
    let body = r.to_json().unwrap();
    assert_eq!(
        json(&body),
        json!({"checkin_interval_secs": 900, "commands_pending": true})
    );
    let newer = edited(&r, |v| v["next"] = json!("x"));
    assert_eq!(CheckinResponse::from_json(&newer).unwrap(), r);
    let zero = edited(&r, |v| v["checkin_interval_secs"] = json!(0));
    assert!(matches!(
        invalid::<CheckinResponse>(&zero),
        ValidationError::OutOfRange { .. }
    ));
}

#[test]
fn events_round_trip() {
    let events = EventsRequest {
        events: vec![
            DeviceEvent {
                id: Uuid::from_u128(7),
                occurred_at: NOW - 30,
                event: EventKind::Reset {
                    cause: ResetCause::FactoryReset,
                    previous_device_id: None,
                },
            },
            DeviceEvent {
                id: Uuid::from_u128(8),
                occurred_at: NOW,
                event: EventKind::Reset {
                    cause: ResetCause::AgentReinstalled,
                    previous_device_id: Some(DEVICE_ID),
                },
            },
        ],
    };
    let body = events.to_json().unwrap();
    assert_eq!(EventsRequest::from_json(&body).unwrap(), events);
    let v = json(&body);
    assert_eq!(
        v["events"][0]["event"],
        json!({"type": "reset", "cause": "factory_reset"})
    );
    assert_eq!(
        v["events"][1]["event"]["previous_device_id"],
        DEVICE_ID.to_string()
    );

    let unknown_type = edited(&events, |v| {
        v["events"][0]["event"]["type"] = json!("reboot")
    });
    assert!(malformed::<EventsRequest>(&unknown_type).contains("unknown variant"));
    let unknown_field = edited(&events, |v| v["events"][0]["event"]["why"] = json!("x"));
    assert!(malformed::<EventsRequest>(&unknown_field).contains("unknown field"));
    let wrong_cause = edited(&events, |v| {
        v["events"][0]["event"]["cause"] = json!("dropped")
    });
    assert!(malformed::<EventsRequest>(&wrong_cause).contains("unknown variant"));
    let empty = EventsRequest { events: vec![] };
    assert_eq!(
        empty.validate(),
        Err(ValidationError::Empty { field: "events" })
    );
    let negative = edited(&events, |v| v["events"][0]["occurred_at"] = json!(-1));
    assert!(matches!(
        invalid::<EventsRequest>(&negative),
        ValidationError::OutOfRange { .. }
    ));
}
