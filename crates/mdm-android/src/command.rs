//! Commands: `GET commands` returns the queue, `POST commands/result`
//! reports on one. A push only wakes the agent; commands always travel here,
//! over a signed request.
//!
//! Wire form of one command: `{"id": "<uuid>", "type": "wipe",
//! "params": {...}}`; `params` is absent for commands without parameters.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::agent::MAX_CA_CERTIFICATES;
use crate::error::ValidationError;
use crate::fingerprint::Fingerprint;
use crate::message::{Message, describe};
use crate::mode::ManagementMode;
use crate::validate::{count, opt_text, text};

/// Most commands in one fetch; the server pages the rest.
pub const MAX_COMMANDS_PER_FETCH: usize = 100;

/// One queued command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "RawCommand", into = "RawCommand")]
pub struct Command {
    /// Chosen by the server; the result refers to it.
    pub id: Uuid,
    /// What to do.
    pub kind: CommandKind,
}

/// What a command asks for.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum CommandKind {
    /// `remove_ca_certificates`: uninstall CA certificates (R16) and report
    /// the fingerprints actually removed.
    RemoveCaCertificates(CaSelection),
    /// `lock`: lock the screen now.
    Lock,
    /// `wipe`: erase, as far as the mode allows.
    Wipe(WipeParams),
    /// `retire`: remove management (and with it the work data) but do not
    /// factory reset.
    Retire,
    /// `reboot` (device owners only).
    Reboot,
    /// `sync`: check in now.
    Sync,
    /// Any other command type, for agents that implement it. Build with
    /// [`CommandKind::generic`]; agents answer `error` for types they lack.
    Generic {
        /// The type (`[a-z][a-z0-9_]*`, at most 64 bytes, not a modelled one).
        name: String,
        /// Its parameters, as sent.
        params: Map<String, Value>,
    },
    /// A modelled type whose parameters this build cannot read (a newer
    /// server, or a bug). Kept as received so it re-encodes unchanged; the
    /// agent must answer `error`, never run part of it.
    Malformed {
        /// The type.
        name: String,
        /// The parameters, as sent.
        params: Map<String, Value>,
        /// Why they were refused (no values quoted).
        reason: String,
    },
}

/// Which CA certificates `remove_ca_certificates` removes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaSelection {
    /// These (`{"fingerprints": [...]}`), 1 to 500 of them.
    Fingerprints(Vec<Fingerprint>),
    /// Every user-installed one except `keep` (`{"all_user_installed": true,
    /// "keep": [...]}`). The agent removes them one by one rather than with
    /// `uninstallAllUserCaCerts`, which would also remove the CAs the
    /// tenant's own policy installed.
    AllUserInstalled {
        /// Fingerprints to leave installed (at most 500).
        keep: Vec<Fingerprint>,
    },
}

/// Parameters of `wipe`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WipeParams {
    /// What is erased.
    pub scope: WipeScope,
    /// Also erase factory-reset-protection data. Default `false`: a lost or
    /// stolen device stays locked to its account after the wipe. Set it for
    /// devices that are being handed to someone else.
    #[serde(default)]
    pub wipe_reset_protection: bool,
    /// Shown to the user where the platform allows (at most 200 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a wipe erases.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WipeScope {
    /// Factory reset the whole device (company-owned modes only).
    FactoryReset,
    /// Remove the work profile and its data (work-profile modes only).
    RemoveWorkProfile,
}

impl WipeScope {
    /// What "wipe" means by default for `mode`: the work profile on a
    /// personal device, the whole device otherwise.
    pub fn for_mode(mode: ManagementMode) -> Self {
        if mode.is_company_owned() {
            Self::FactoryReset
        } else {
            Self::RemoveWorkProfile
        }
    }

    /// Whether an agent in `mode` can do it.
    pub fn applies_to(self, mode: ManagementMode) -> bool {
        match self {
            Self::FactoryReset => mode.is_company_owned(),
            Self::RemoveWorkProfile => mode.has_work_profile(),
        }
    }
}

const REMOVE_CA: &str = "remove_ca_certificates";
const MODELLED: [&str; 6] = [REMOVE_CA, "lock", "wipe", "retire", "reboot", "sync"];

impl CommandKind {
    /// A generic command; refuses names that are modelled or malformed.
    pub fn generic(
        name: impl Into<String>,
        params: Map<String, Value>,
    ) -> Result<Self, ValidationError> {
        let kind = Self::Generic {
            name: name.into(),
            params,
        };
        kind.check()?;
        Ok(kind)
    }

    /// The wire `type`.
    pub fn name(&self) -> &str {
        match self {
            Self::RemoveCaCertificates(_) => REMOVE_CA,
            Self::Lock => "lock",
            Self::Wipe(_) => "wipe",
            Self::Retire => "retire",
            Self::Reboot => "reboot",
            Self::Sync => "sync",
            Self::Generic { name, .. } | Self::Malformed { name, .. } => name,
        }
    }

    /// Whether an agent in `mode` can carry it out: reboot needs a device
    /// owner, a wipe's scope must fit the mode; generic commands are
    /// assumed to apply.
    pub fn applies_to(&self, mode: ManagementMode) -> bool {
        match self {
            Self::Reboot => mode.is_device_owner(),
            Self::Wipe(params) => params.scope.applies_to(mode),
            Self::Malformed { .. } => false,
            _ => true,
        }
    }

    fn check(&self) -> Result<(), ValidationError> {
        match self {
            Self::RemoveCaCertificates(CaSelection::Fingerprints(list)) => {
                if list.is_empty() {
                    return Err(ValidationError::Empty {
                        field: "params.fingerprints",
                    });
                }
                count("params.fingerprints", list.len(), MAX_CA_CERTIFICATES)
            }
            Self::RemoveCaCertificates(CaSelection::AllUserInstalled { keep }) => {
                count("params.keep", keep.len(), MAX_CA_CERTIFICATES)
            }
            Self::Wipe(params) => opt_text("params.reason", params.reason.as_deref(), 200),
            Self::Generic { name, .. } => {
                text("type", name, 64)?;
                let shape = name.starts_with(|c: char| c.is_ascii_lowercase())
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !shape || MODELLED.contains(&name.as_str()) {
                    return Err(ValidationError::BadFormat {
                        field: "type",
                        reason: "a generic command type is [a-z][a-z0-9_]* and not a modelled one",
                    });
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// The wire form of [`Command`].
#[derive(Clone, Serialize, Deserialize)]
struct RawCommand {
    id: Uuid,
    #[serde(rename = "type")]
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<Map<String, Value>>,
}

/// The wire form of [`CaSelection`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCaSelection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fingerprints: Option<Vec<Fingerprint>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    all_user_installed: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    keep: Vec<Fingerprint>,
}

impl From<RawCommand> for Command {
    fn from(raw: RawCommand) -> Self {
        let params = raw.params.unwrap_or_default();
        let kind = match typed(&raw.name, &params) {
            Ok(Some(kind)) => kind,
            Ok(None) => CommandKind::Generic {
                name: raw.name,
                params,
            },
            Err(reason) => CommandKind::Malformed {
                name: raw.name,
                params,
                reason,
            },
        };
        Self { id: raw.id, kind }
    }
}

/// The modelled command named `name`, `Ok(None)` for other names.
fn typed(name: &str, params: &Map<String, Value>) -> Result<Option<CommandKind>, String> {
    let no_params = |kind: CommandKind| {
        if params.is_empty() {
            Ok(Some(kind))
        } else {
            Err(format!("{name} takes no parameters"))
        }
    };
    match name {
        REMOVE_CA => {
            let raw: RawCaSelection = decode(params)?;
            match (raw.fingerprints, raw.all_user_installed) {
                (Some(list), false) if raw.keep.is_empty() => Ok(Some(
                    CommandKind::RemoveCaCertificates(CaSelection::Fingerprints(list)),
                )),
                (None, true) => Ok(Some(CommandKind::RemoveCaCertificates(
                    CaSelection::AllUserInstalled { keep: raw.keep },
                ))),
                _ => Err("expected either fingerprints or all_user_installed (with keep)".into()),
            }
        }
        "wipe" => decode(params).map(|p| Some(CommandKind::Wipe(p))),
        "lock" => no_params(CommandKind::Lock),
        "retire" => no_params(CommandKind::Retire),
        "reboot" => no_params(CommandKind::Reboot),
        "sync" => no_params(CommandKind::Sync),
        _ => Ok(None),
    }
}

/// Decodes a params object into its typed form; the error quotes no value.
fn decode<T: serde::de::DeserializeOwned>(params: &Map<String, Value>) -> Result<T, String> {
    serde_json::from_value(Value::Object(params.clone())).map_err(|e| describe(&e))
}

impl From<Command> for RawCommand {
    fn from(command: Command) -> Self {
        let name = command.kind.name().to_owned();
        let params = match command.kind {
            CommandKind::RemoveCaCertificates(selection) => {
                let raw = match selection {
                    CaSelection::Fingerprints(list) => RawCaSelection {
                        fingerprints: Some(list),
                        all_user_installed: false,
                        keep: Vec::new(),
                    },
                    CaSelection::AllUserInstalled { keep } => RawCaSelection {
                        fingerprints: None,
                        all_user_installed: true,
                        keep,
                    },
                };
                object(serde_json::to_value(raw))
            }
            CommandKind::Wipe(params) => object(serde_json::to_value(params)),
            CommandKind::Generic { params, .. } | CommandKind::Malformed { params, .. } => {
                (!params.is_empty()).then_some(params)
            }
            CommandKind::Lock | CommandKind::Retire | CommandKind::Reboot | CommandKind::Sync => {
                None
            }
        };
        Self {
            id: command.id,
            name,
            params,
        }
    }
}

/// The object of a serialized params struct (they are always objects).
fn object(value: Result<Value, serde_json::Error>) -> Option<Map<String, Value>> {
    match value {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    }
}

/// The answer to `GET commands`: the next commands, oldest first.
///
/// Unknown fields are tolerated, as in every server-to-device message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandsResponse {
    /// At most [`MAX_COMMANDS_PER_FETCH`].
    pub commands: Vec<Command>,
}

impl Message for CommandsResponse {
    const MAX_BODY_LEN: usize = 1024 * 1024;

    fn validate(&self) -> Result<(), ValidationError> {
        count("commands", self.commands.len(), MAX_COMMANDS_PER_FETCH)?;
        self.commands.iter().try_for_each(|c| c.kind.check())
    }
}

/// `POST commands/result`: what became of one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandResult {
    /// The command's id.
    pub id: Uuid,
    /// The outcome.
    pub status: ResultStatus,
    /// Required with `error`; optional otherwise; at most 1 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For `remove_ca_certificates`: what was actually removed (also after
    /// a partial failure). Empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_ca_certificates: Vec<Fingerprint>,
}

/// The outcome of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStatus {
    /// Done.
    Acknowledged,
    /// Failed or not supported; `message` says why. Not retried.
    Error,
    /// Cannot run now (device locked, busy); the server re-sends it later.
    NotNow,
}

impl CommandResult {
    /// Done.
    pub fn acknowledged(id: Uuid) -> Self {
        Self {
            id,
            status: ResultStatus::Acknowledged,
            message: None,
            removed_ca_certificates: Vec::new(),
        }
    }

    /// Failed, with a reason.
    pub fn error(id: Uuid, message: impl Into<String>) -> Self {
        Self {
            status: ResultStatus::Error,
            message: Some(message.into()),
            ..Self::acknowledged(id)
        }
    }

    /// Not now, with an optional reason.
    pub fn not_now(id: Uuid, message: Option<String>) -> Self {
        Self {
            status: ResultStatus::NotNow,
            message,
            ..Self::acknowledged(id)
        }
    }

    /// Adds the fingerprints removed by `remove_ca_certificates`.
    pub fn with_removed(mut self, removed: Vec<Fingerprint>) -> Self {
        self.removed_ca_certificates = removed;
        self
    }
}

impl Message for CommandResult {
    const MAX_BODY_LEN: usize = 64 * 1024;

    fn validate(&self) -> Result<(), ValidationError> {
        opt_text("message", self.message.as_deref(), 1024)?;
        if self.status == ResultStatus::Error && self.message.is_none() {
            return Err(ValidationError::Missing { field: "message" });
        }
        if self.status == ResultStatus::NotNow && !self.removed_ca_certificates.is_empty() {
            return Err(ValidationError::NotAllowed {
                field: "removed_ca_certificates",
            });
        }
        count(
            "removed_ca_certificates",
            self.removed_ca_certificates.len(),
            MAX_CA_CERTIFICATES,
        )
    }
}
