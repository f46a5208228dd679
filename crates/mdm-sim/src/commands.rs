//! How a device answers each command: the report's status and result keys,
//! and what the command does to the device.

use mdm_apple::plist::{Dictionary, Value};
use mdm_apple::{CommandRequest, CommandStatus};
use std::collections::BTreeMap;

use crate::facts::DeviceFacts;

/// A profile installed by `InstallProfile` (or the enrollment profile).
#[derive(Clone, Debug, PartialEq)]
pub struct InstalledProfile {
    /// `PayloadIdentifier`.
    pub identifier: String,
    /// `PayloadUUID`.
    pub uuid: String,
    /// `PayloadDisplayName`.
    pub display_name: String,
    /// The bytes as received.
    pub payload: Vec<u8>,
}

/// What a command does to the device beyond its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Nothing more.
    None,
    /// The enrollment profile was removed: send CheckOut and stop.
    ManagementRemoved,
    /// EraseDevice: the device wipes itself and forgets its enrollment.
    Wiped,
    /// InstallProfile of the enrollment profile itself (the server renews
    /// the identity): the device re-runs SCEP, Authenticate and TokenUpdate
    /// before it reports.
    EnrollmentProfile,
}

/// A report to send: status and result keys (identity keys are added by the channel).
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    /// `Status`.
    pub status: CommandStatus,
    /// Result keys (`QueryResponses`, `ProfileList`, `ErrorChain` …).
    pub payload: Dictionary,
    /// What follows.
    pub effect: Effect,
}

impl Reply {
    fn ack(payload: Dictionary) -> Self {
        Self {
            status: CommandStatus::Acknowledged,
            payload,
            effect: Effect::None,
        }
    }

    /// `Acknowledged` with no result keys.
    pub fn acknowledged() -> Self {
        Self::ack(Dictionary::new())
    }

    /// `Error` with a one-entry `ErrorChain`.
    pub fn error(domain: &str, code: i64, text: &str) -> Self {
        let mut e = Dictionary::new();
        e.insert("ErrorCode".into(), Value::Integer(code.into()));
        e.insert("ErrorDomain".into(), domain.into());
        e.insert("LocalizedDescription".into(), text.into());
        e.insert("USEnglishDescription".into(), text.into());
        let mut d = Dictionary::new();
        d.insert(
            "ErrorChain".into(),
            Value::Array(vec![Value::Dictionary(e)]),
        );
        Self {
            status: CommandStatus::Error,
            payload: d,
            effect: Effect::None,
        }
    }
}

/// The profiles of one channel and the enrollment profile's identifier.
#[derive(Clone, Debug, Default)]
pub struct ProfileStore {
    /// Identifier of the enrollment profile (device channel only).
    pub enrollment: Option<InstalledProfile>,
    /// Profiles installed through MDM, by identifier.
    pub installed: BTreeMap<String, InstalledProfile>,
}

impl ProfileStore {
    fn list(&self) -> Value {
        let entry = |p: &InstalledProfile, managed: bool| {
            let mut d = Dictionary::new();
            d.insert("PayloadIdentifier".into(), p.identifier.as_str().into());
            d.insert("PayloadUUID".into(), p.uuid.as_str().into());
            d.insert("PayloadDisplayName".into(), p.display_name.as_str().into());
            d.insert("PayloadVersion".into(), Value::Integer(1.into()));
            d.insert("IsManaged".into(), Value::Boolean(managed));
            d.insert("IsEncrypted".into(), Value::Boolean(false));
            d.insert("PayloadRemovalDisallowed".into(), Value::Boolean(false));
            Value::Dictionary(d)
        };
        let all = self
            .enrollment
            .iter()
            .map(|p| entry(p, false))
            .chain(self.installed.values().map(|p| entry(p, true)));
        Value::Array(all.collect())
    }
}

/// Reads a profile given to `InstallProfile`: signed (CMS, the content is
/// used; iOS does not require a trusted signer here) or a plain plist.
fn read_profile(payload: &[u8]) -> Option<InstalledProfile> {
    let content = mdm_pki::verify_signed_data(payload, None, &[])
        .map(|s| s.content)
        .unwrap_or_else(|_| payload.to_vec());
    let Ok(Value::Dictionary(d)) = mdm_apple::decode_plist(&content) else {
        return None;
    };
    let s = |k: &str| d.get(k).and_then(Value::as_string).map(str::to_owned);
    if s("PayloadType").as_deref() != Some("Configuration") {
        return None;
    }
    Some(InstalledProfile {
        identifier: s("PayloadIdentifier").filter(|i| !i.is_empty())?,
        uuid: s("PayloadUUID")?,
        display_name: s("PayloadDisplayName").unwrap_or_default(),
        payload: payload.to_vec(),
    })
}

/// Answers one command on a channel whose profiles are `profiles`.
pub fn answer(request: &CommandRequest, facts: &DeviceFacts, profiles: &mut ProfileStore) -> Reply {
    match request {
        CommandRequest::DeviceInformation { queries } => {
            let mut d = Dictionary::new();
            d.insert(
                "QueryResponses".into(),
                Value::Dictionary(facts.query_responses(queries)),
            );
            Reply::ack(d)
        }
        CommandRequest::ProfileList => {
            let mut d = Dictionary::new();
            d.insert("ProfileList".into(), profiles.list());
            Reply::ack(d)
        }
        CommandRequest::InstallProfile { payload } => match read_profile(payload) {
            Some(p)
                if profiles
                    .enrollment
                    .as_ref()
                    .is_some_and(|e| e.identifier == p.identifier) =>
            {
                let mut r = Reply::ack(Dictionary::new());
                r.effect = Effect::EnrollmentProfile;
                r
            }
            Some(p) => {
                profiles.installed.insert(p.identifier.clone(), p);
                Reply::ack(Dictionary::new())
            }
            None => Reply::error(
                "MCProfileErrorDomain",
                1000,
                "The profile could not be read.",
            ),
        },
        CommandRequest::RemoveProfile { identifier } => {
            if profiles
                .enrollment
                .as_ref()
                .is_some_and(|p| &p.identifier == identifier)
            {
                let mut r = Reply::ack(Dictionary::new());
                r.effect = Effect::ManagementRemoved;
                r
            } else if profiles.installed.remove(identifier).is_some() {
                Reply::ack(Dictionary::new())
            } else {
                Reply::error(
                    "MCProfileErrorDomain",
                    1001,
                    &format!("The profile “{identifier}” is not installed."),
                )
            }
        }
        CommandRequest::DeviceLock { .. } | CommandRequest::DeviceConfigured => {
            Reply::ack(Dictionary::new())
        }
        CommandRequest::EraseDevice { .. } => {
            let mut r = Reply::ack(Dictionary::new());
            r.effect = Effect::Wiped;
            r
        }
        CommandRequest::Custom { request_type, .. } => Reply::error(
            "MCMDMErrorDomain",
            12021,
            &format!("Unknown command “{request_type}”."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> ProfileStore {
        ProfileStore {
            enrollment: Some(InstalledProfile {
                identifier: "mdm.acme.enrollment".into(),
                uuid: "U".into(),
                display_name: "Acme".into(),
                payload: vec![],
            }),
            installed: BTreeMap::new(),
        }
    }

    fn plist(d: Dictionary) -> Vec<u8> {
        crate::wire::xml(d).unwrap()
    }

    #[test]
    fn device_information_answers_only_what_was_asked_and_known() {
        let facts = DeviceFacts::iphone(7);
        let q = vec![
            "SerialNumber".to_owned(),
            "OSVersion".to_owned(),
            "HostName".to_owned(),
        ];
        let r = answer(
            &CommandRequest::DeviceInformation { queries: q },
            &facts,
            &mut store(),
        );
        assert_eq!(r.status, CommandStatus::Acknowledged);
        let qr = r.payload["QueryResponses"].as_dictionary().unwrap();
        assert_eq!(qr.len(), 2, "an iPhone has no HostName");
        assert_eq!(
            qr["SerialNumber"].as_string(),
            Some(facts.serial_number.as_str())
        );
        assert_eq!(qr["OSVersion"].as_string(), Some("18.1"));
    }

    #[test]
    fn profiles_install_list_and_remove() {
        let facts = DeviceFacts::mac(1);
        let mut s = store();
        let mut p = Dictionary::new();
        p.insert("PayloadType".into(), "Configuration".into());
        p.insert("PayloadIdentifier".into(), "com.acme.wifi".into());
        p.insert("PayloadUUID".into(), "W".into());
        let install = CommandRequest::InstallProfile { payload: plist(p) };
        assert_eq!(
            answer(&install, &facts, &mut s).status,
            CommandStatus::Acknowledged
        );
        let garbage = CommandRequest::InstallProfile {
            payload: b"nope".to_vec(),
        };
        assert_eq!(
            answer(&garbage, &facts, &mut s).status,
            CommandStatus::Error
        );
        let list = answer(&CommandRequest::ProfileList, &facts, &mut s);
        let ids: Vec<_> = list.payload["ProfileList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                p.as_dictionary().unwrap()["PayloadIdentifier"]
                    .as_string()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(ids, ["mdm.acme.enrollment", "com.acme.wifi"]);
        let remove = |id: &str| CommandRequest::RemoveProfile {
            identifier: id.into(),
        };
        assert_eq!(
            answer(&remove("com.acme.wifi"), &facts, &mut s).effect,
            Effect::None
        );
        assert_eq!(
            answer(&remove("com.acme.wifi"), &facts, &mut s).status,
            CommandStatus::Error
        );
        let r = answer(&remove("mdm.acme.enrollment"), &facts, &mut s);
        assert_eq!(
            (r.status, r.effect),
            (CommandStatus::Acknowledged, Effect::ManagementRemoved)
        );
    }

    #[test]
    fn erase_wipes_and_unknown_commands_get_an_error_chain() {
        let facts = DeviceFacts::iphone(2);
        let erase = CommandRequest::EraseDevice {
            pin: None,
            preserve_data_plan: None,
        };
        assert_eq!(answer(&erase, &facts, &mut store()).effect, Effect::Wiped);
        let custom = CommandRequest::Custom {
            request_type: "Frobnicate".into(),
            params: Dictionary::new(),
        };
        let r = answer(&custom, &facts, &mut store());
        assert_eq!(r.status, CommandStatus::Error);
        let chain = r.payload["ErrorChain"].as_array().unwrap();
        let e = chain[0].as_dictionary().unwrap();
        assert_eq!(e["ErrorCode"].as_signed_integer(), Some(12021));
    }
}
