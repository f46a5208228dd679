//! Commands and their results: the wire form of every command, fallbacks
//! for what an agent cannot read, and the mode rules.

use mdm_android::*;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::common::*;

fn fp(byte: u8) -> Fingerprint {
    Fingerprint::from_bytes([byte; 32])
}

fn cmd(n: u128, kind: CommandKind) -> Command {
    Command {
        id: Uuid::from_u128(n),
        kind,
    }
}

fn params(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

#[test]
fn every_command_round_trips_with_its_wire_form() {
    let id = |n: u128| Uuid::from_u128(n).to_string();
    let table: Vec<(Command, Value)> = vec![
        (
            cmd(
                1,
                CommandKind::RemoveCaCertificates(CaSelection::Fingerprints(vec![fp(1)])),
            ),
            json!({"id": id(1), "type": "remove_ca_certificates",
                   "params": {"fingerprints": ["01".repeat(32)]}}),
        ),
        (
            cmd(
                2,
                CommandKind::RemoveCaCertificates(CaSelection::AllUserInstalled {
                    keep: vec![fp(2)],
                }),
            ),
            json!({"id": id(2), "type": "remove_ca_certificates",
                   "params": {"all_user_installed": true, "keep": ["02".repeat(32)]}}),
        ),
        (
            cmd(
                3,
                CommandKind::RemoveCaCertificates(CaSelection::AllUserInstalled { keep: vec![] }),
            ),
            json!({"id": id(3), "type": "remove_ca_certificates",
                   "params": {"all_user_installed": true}}),
        ),
        (
            cmd(4, CommandKind::Lock),
            json!({"id": id(4), "type": "lock"}),
        ),
        (
            cmd(
                5,
                CommandKind::Wipe(WipeParams {
                    scope: WipeScope::FactoryReset,
                    wipe_reset_protection: false,
                    reason: Some("Lost device".into()),
                }),
            ),
            json!({"id": id(5), "type": "wipe", "params": {"scope": "factory_reset",
                   "wipe_reset_protection": false, "reason": "Lost device"}}),
        ),
        (
            cmd(
                6,
                CommandKind::Wipe(WipeParams {
                    scope: WipeScope::RemoveWorkProfile,
                    wipe_reset_protection: true,
                    reason: None,
                }),
            ),
            json!({"id": id(6), "type": "wipe", "params": {"scope": "remove_work_profile",
                   "wipe_reset_protection": true}}),
        ),
        (
            cmd(7, CommandKind::Retire),
            json!({"id": id(7), "type": "retire"}),
        ),
        (
            cmd(8, CommandKind::Reboot),
            json!({"id": id(8), "type": "reboot"}),
        ),
        (
            cmd(9, CommandKind::Sync),
            json!({"id": id(9), "type": "sync"}),
        ),
        (
            cmd(
                10,
                CommandKind::generic("install_app", params(json!({"package": "com.x.y"}))).unwrap(),
            ),
            json!({"id": id(10), "type": "install_app", "params": {"package": "com.x.y"}}),
        ),
        (
            cmd(
                11,
                CommandKind::generic("clear_passcode", Map::new()).unwrap(),
            ),
            json!({"id": id(11), "type": "clear_passcode"}),
        ),
    ];
    let response = CommandsResponse {
        commands: table.iter().map(|(c, _)| c.clone()).collect(),
    };
    let body = response.to_json().unwrap();
    let wire = json(&body);
    for (i, (command, expected)) in table.iter().enumerate() {
        assert_eq!(wire["commands"][i], *expected, "{:?}", command.kind);
    }
    assert_eq!(CommandsResponse::from_json(&body).unwrap(), response);
    // A wipe without optional fields reads with their defaults.
    let short =
        json!({"commands": [{"id": id(5), "type": "wipe", "params": {"scope": "factory_reset"}}]});
    let parsed = CommandsResponse::from_json(short.to_string().as_bytes()).unwrap();
    assert_eq!(
        parsed.commands[0].kind,
        CommandKind::Wipe(WipeParams {
            scope: WipeScope::FactoryReset,
            wipe_reset_protection: false,
            reason: None
        })
    );
}

#[test]
fn unreadable_params_become_malformed_not_partial() {
    let cases = [
        json!({"type": "wipe", "params": {"scope": "factory_reset", "keep_esim": true}}),
        json!({"type": "wipe", "params": {"scope": "everything"}}),
        json!({"type": "wipe"}),
        json!({"type": "lock", "params": {"message": "call IT"}}),
        json!({"type": "remove_ca_certificates", "params": {"fingerprints": ["01".repeat(32)], "all_user_installed": true}}),
        json!({"type": "remove_ca_certificates", "params": {"fingerprints": ["01".repeat(32)], "keep": ["02".repeat(32)]}}),
        json!({"type": "remove_ca_certificates"}),
        json!({"type": "remove_ca_certificates", "params": {"fingerprints": ["nothex"]}}),
    ];
    for mut case in cases {
        case["id"] = json!(Uuid::from_u128(1).to_string());
        let body = json!({"commands": [case.clone()]}).to_string();
        let parsed = CommandsResponse::from_json(body.as_bytes()).unwrap();
        let kind = &parsed.commands[0].kind;
        assert!(
            matches!(kind, CommandKind::Malformed { .. }),
            "{case}: {kind:?}"
        );
        assert!(!kind.applies_to(ManagementMode::FullyManaged));
        // It re-encodes exactly as received.
        let again = json(&parsed.to_json().unwrap());
        assert_eq!(again["commands"][0], case);
    }
    // Unknown types are generic; the envelope tolerates new fields.
    let body = json!({"commands": [{"id": Uuid::from_u128(2).to_string(), "type": "set_wallpaper",
        "params": {"url": "https://x"}, "priority": 3}], "cursor": "abc"});
    let parsed = CommandsResponse::from_json(body.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.commands[0].kind.name(), "set_wallpaper");
    assert!(matches!(
        parsed.commands[0].kind,
        CommandKind::Generic { .. }
    ));
}

#[test]
fn generic_names_and_limits() {
    assert!(CommandKind::generic("lock", Map::new()).is_err());
    assert!(CommandKind::generic("Install", Map::new()).is_err());
    assert!(CommandKind::generic("", Map::new()).is_err());
    assert!(CommandKind::generic("a".repeat(65), Map::new()).is_err());
    let empty = CommandsResponse {
        commands: vec![cmd(
            1,
            CommandKind::RemoveCaCertificates(CaSelection::Fingerprints(vec![])),
        )],
    };
    assert!(matches!(
        empty.validate(),
        Err(ValidationError::Empty { .. })
    ));
    let long_reason = CommandsResponse {
        commands: vec![cmd(
            1,
            CommandKind::Wipe(WipeParams {
                scope: WipeScope::FactoryReset,
                wipe_reset_protection: false,
                reason: Some("r".repeat(201)),
            }),
        )],
    };
    assert!(matches!(
        long_reason.validate(),
        Err(ValidationError::TooLong { .. })
    ));
    let too_many = CommandsResponse {
        commands: (0..=MAX_COMMANDS_PER_FETCH as u128)
            .map(|n| cmd(n, CommandKind::Sync))
            .collect(),
    };
    assert!(matches!(
        too_many.validate(),
        Err(ValidationError::TooMany { .. })
    ));
}

#[test]
fn mode_rules() {
    use ManagementMode::*;
    let wipe = |scope| {
        CommandKind::Wipe(WipeParams {
            scope,
            wipe_reset_protection: false,
            reason: None,
        })
    };
    // (command, [personal, company-owned WP, fully managed, dedicated])
    let table: Vec<(CommandKind, [bool; 4])> = vec![
        (CommandKind::Lock, [true; 4]),
        (CommandKind::Sync, [true; 4]),
        (CommandKind::Retire, [true; 4]),
        (CommandKind::Reboot, [false, false, true, true]),
        (wipe(WipeScope::FactoryReset), [false, true, true, true]),
        (
            wipe(WipeScope::RemoveWorkProfile),
            [true, true, false, false],
        ),
        (
            CommandKind::RemoveCaCertificates(CaSelection::AllUserInstalled { keep: vec![] }),
            [true; 4],
        ),
    ];
    for (kind, expected) in table {
        for (mode, ok) in ManagementMode::ALL.into_iter().zip(expected) {
            assert_eq!(kind.applies_to(mode), ok, "{} in {mode}", kind.name());
        }
    }
    assert_eq!(
        WipeScope::for_mode(PersonalWorkProfile),
        WipeScope::RemoveWorkProfile
    );
    for mode in [CompanyOwnedWorkProfile, FullyManaged, Dedicated] {
        assert_eq!(WipeScope::for_mode(mode), WipeScope::FactoryReset);
    }
}

#[test]
fn results() {
    let id = Uuid::from_u128(42);
    let cases = [
        (
            CommandResult::acknowledged(id),
            json!({"id": id.to_string(), "status": "acknowledged"}),
        ),
        (
            CommandResult::acknowledged(id).with_removed(vec![fp(3)]),
            json!({"id": id.to_string(), "status": "acknowledged", "removed_ca_certificates": ["03".repeat(32)]}),
        ),
        (
            CommandResult::error(id, "uninstallCaCert failed").with_removed(vec![fp(4)]),
            json!({"id": id.to_string(), "status": "error", "message": "uninstallCaCert failed",
                   "removed_ca_certificates": ["04".repeat(32)]}),
        ),
        (
            CommandResult::not_now(id, Some("device locked".into())),
            json!({"id": id.to_string(), "status": "not_now", "message": "device locked"}),
        ),
    ];
    for (result, wire) in cases {
        let body = result.to_json().unwrap();
        assert_eq!(json(&body), wire);
        assert_eq!(CommandResult::from_json(&body).unwrap(), result);
    }
    let no_message = json!({"id": id.to_string(), "status": "error"}).to_string();
    assert_eq!(
        invalid::<CommandResult>(no_message.as_bytes()),
        ValidationError::Missing { field: "message" }
    );
    let removed_later = CommandResult::not_now(id, None).with_removed(vec![fp(1)]);
    assert_eq!(
        removed_later.validate(),
        Err(ValidationError::NotAllowed {
            field: "removed_ca_certificates"
        })
    );
    let unknown = json!({"id": id.to_string(), "status": "acknowledged", "took_ms": 5}).to_string();
    assert!(malformed::<CommandResult>(unknown.as_bytes()).contains("unknown field"));
    let status = json!({"id": id.to_string(), "status": "done"}).to_string();
    assert!(malformed::<CommandResult>(status.as_bytes()).contains("unknown variant"));
    let long = CommandResult::error(id, "m".repeat(1025));
    assert!(matches!(
        long.validate(),
        Err(ValidationError::TooLong { .. })
    ));
}
