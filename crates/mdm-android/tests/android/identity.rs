//! The identity rules as tables over Android versions and every mode.

use mdm_android::*;

use crate::common::*;

const LEVELS: [u32; 5] = [26, 28, 29, 31, 33];
const PW: ManagementMode = ManagementMode::PersonalWorkProfile;
const COPE: ManagementMode = ManagementMode::CompanyOwnedWorkProfile;
const FM: ManagementMode = ManagementMode::FullyManaged;
const DED: ManagementMode = ManagementMode::Dedicated;

fn all_identifiers(api_level: u32, mode: ManagementMode) -> DeviceFacts {
    let mut f = facts(api_level, mode);
    f.identifiers = Identifiers {
        enterprise_specific_id: Some("ESID-0042".into()),
        imei: Some("359881234567890".into()),
        meid: Some("a0000012345678".into()),
        serial: Some("R58N12ABCDE".into()),
        android_id: Some("9F2C4A1B7E3D5C60".into()),
    };
    f
}

fn kinds(keys: &[CorrelationKey]) -> Vec<CorrelationKind> {
    keys.iter().map(|k| k.kind).collect()
}

#[test]
fn correlation_table() {
    use CorrelationKind::*;
    let hardware_and_id = vec![Imei, Meid, Serial, AndroidId];
    let everything = vec![EnterpriseSpecificId, Imei, Meid, Serial, AndroidId];
    let byod_12 = vec![EnterpriseSpecificId, AndroidId];
    // (api level, mode, expected keys in order)
    let mut table = Vec::new();
    for level in LEVELS {
        for mode in ManagementMode::ALL {
            let expected = match (level >= 31, mode) {
                (false, _) => hardware_and_id.clone(),
                (true, PW) => byod_12.clone(),
                (true, _) => everything.clone(),
            };
            table.push((level, mode, expected));
        }
    }
    assert_eq!(table.len(), 20);
    for (level, mode, expected) in table {
        let keys = identity_correlation(&all_identifiers(level, mode));
        assert_eq!(kinds(&keys), expected, "API {level}, {mode}");
        let dropped = unreadable_identifiers(&all_identifiers(level, mode));
        let offered: Vec<_> = CorrelationKind::PRIORITY
            .into_iter()
            .filter(|k| !dropped.contains(k))
            .collect();
        assert_eq!(
            offered, expected,
            "API {level}, {mode}: dropped {dropped:?}"
        );
    }
}

#[test]
fn can_read_rules() {
    use CorrelationKind::*;
    // Hardware identifiers: every mode up to Android 11; not BYOD from 12.
    for kind in [Imei, Meid, Serial] {
        for mode in ManagementMode::ALL {
            for level in LEVELS {
                let expected = level < 31 || mode != PW;
                assert_eq!(
                    can_read(kind, level, mode),
                    expected,
                    "{kind} {mode} {level}"
                );
            }
        }
    }
    for mode in ManagementMode::ALL {
        assert!(!can_read(EnterpriseSpecificId, 30, mode));
        assert!(can_read(EnterpriseSpecificId, 31, mode));
        assert!(LEVELS.iter().all(|l| can_read(AndroidId, *l, mode)));
    }
}

#[test]
fn correlation_normalises_and_skips_placeholders() {
    let keys = identity_correlation(&all_identifiers(33, FM));
    let value = |kind| {
        keys.iter()
            .find(|k| k.kind == kind)
            .map(|k| k.value.as_str())
    };
    assert_eq!(value(CorrelationKind::Meid), Some("A0000012345678"));
    assert_eq!(value(CorrelationKind::AndroidId), Some("9f2c4a1b7e3d5c60"));
    assert_eq!(value(CorrelationKind::Serial), Some("R58N12ABCDE"));

    for placeholder in ["unknown", "UNKNOWN", "0123456789ABCDEF", "0000000"] {
        let mut f = facts(28, FM);
        f.identifiers.serial = Some(placeholder.into());
        assert!(identity_correlation(&f).is_empty(), "{placeholder}");
    }
    let mut f = facts(28, FM);
    f.identifiers.imei = Some("000000000000000".into());
    assert!(identity_correlation(&f).is_empty());
    // Nothing readable: the server falls back to user + model.
    assert!(identity_correlation(&facts(33, PW)).is_empty());
}

#[test]
fn forged_hardware_ids_on_byod_12_are_dropped() {
    let mut f = facts(33, PW);
    f.identifiers.imei = Some("359881234567890".into());
    f.identifiers.serial = Some("R58N12ABCDE".into());
    assert!(identity_correlation(&f).is_empty());
    assert_eq!(
        unreadable_identifiers(&f),
        vec![CorrelationKind::Imei, CorrelationKind::Serial]
    );
    let mut old = facts(29, COPE);
    old.identifiers.enterprise_specific_id = Some("claimed".into());
    assert_eq!(
        unreadable_identifiers(&old),
        vec![CorrelationKind::EnterpriseSpecificId]
    );
}

#[test]
fn reuse_and_ca_removal_tables() {
    for (level, reuses) in [
        (26, true),
        (28, true),
        (29, false),
        (31, false),
        (33, false),
    ] {
        assert_eq!(reuses_entry(level), reuses, "API {level}");
    }
    for (mode, removes) in [(PW, false), (COPE, true), (FM, true), (DED, false)] {
        assert_eq!(removes_user_cas(mode), removes, "{mode}");
    }
    for (level, qr) in [(26, false), (27, false), (28, true), (29, true), (33, true)] {
        assert_eq!(qr_registration_supported(level), qr, "API {level}");
    }
    assert!(CorrelationKind::Imei.survives_factory_reset());
    assert!(!CorrelationKind::AndroidId.survives_factory_reset());
}

#[test]
fn mode_wire_names() {
    for mode in ManagementMode::ALL {
        let text = serde_json::to_string(&mode).unwrap();
        assert_eq!(text, format!("\"{}\"", mode.as_str()));
        assert_eq!(serde_json::from_str::<ManagementMode>(&text).unwrap(), mode);
    }
    assert!(!PW.is_company_owned() && COPE.is_company_owned());
    assert!(FM.is_device_owner() && DED.is_device_owner() && !COPE.is_device_owner());
}
