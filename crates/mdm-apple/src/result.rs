//! What a device PUTs to the ServerURL (`application/x-apple-aspen-mdm`):
//! `Idle`, or the result of the last command.

use std::fmt;

use plist::{Dictionary, Value};

use crate::codec::{Fields, decode_dict};
use crate::enrollment::Enrollment;
use crate::error::{ParseError, ParseErrorKind};

/// The `Content-Type` of the command channel, both directions.
pub const COMMAND_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm";

/// `Status` of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CommandStatus {
    /// Ready for the next command; no result.
    Idle,
    /// The command ran; result keys may follow.
    Acknowledged,
    /// The command failed; see `ErrorChain`.
    Error,
    /// The command plist was invalid.
    CommandFormatError,
    /// The device cannot run it now (e.g. locked); it will poll again by itself.
    /// Do not re-send it on the same connection.
    NotNow,
}

impl CommandStatus {
    /// Parses the wire string.
    pub fn from_wire(s: &str) -> Option<Self> {
        Some(match s {
            "Idle" => Self::Idle,
            "Acknowledged" => Self::Acknowledged,
            "Error" => Self::Error,
            "CommandFormatError" => Self::CommandFormatError,
            "NotNow" => Self::NotNow,
            _ => return None,
        })
    }

    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "Idle",
            Self::Acknowledged => "Acknowledged",
            Self::Error => "Error",
            Self::CommandFormatError => "CommandFormatError",
            Self::NotNow => "NotNow",
        }
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `ErrorChain`. Entries whose fields have unexpected types are
/// kept with those fields empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ErrorChainItem {
    /// `ErrorCode`.
    pub code: Option<i64>,
    /// `ErrorDomain`.
    pub domain: Option<String>,
    /// `LocalizedDescription`.
    pub localized_description: Option<String>,
    /// `USEnglishDescription`.
    pub us_english_description: Option<String>,
}

impl ErrorChainItem {
    fn from_value(v: &Value) -> Self {
        let Some(d) = v.as_dictionary() else {
            return Self::default();
        };
        let s = |k: &str| d.get(k).and_then(Value::as_string).map(str::to_owned);
        Self {
            code: d.get("ErrorCode").and_then(Value::as_signed_integer),
            domain: s("ErrorDomain"),
            localized_description: s("LocalizedDescription"),
            us_english_description: s("USEnglishDescription"),
        }
    }
}

impl fmt::Display for ErrorChainItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self
            .us_english_description
            .as_deref()
            .or(self.localized_description.as_deref())
            .unwrap_or("");
        write!(
            f,
            "{} {}: {}",
            self.domain.as_deref().unwrap_or("?"),
            self.code.map_or_else(|| "?".to_owned(), |c| c.to_string()),
            text
        )
    }
}

/// A parsed command-channel report.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandReport {
    /// `Status`.
    pub status: CommandStatus,
    /// `CommandUUID`: absent for `Idle`, required otherwise.
    pub command_uuid: Option<String>,
    /// Who sent it.
    pub enrollment: Enrollment,
    /// `ErrorChain` (for `Error` and `CommandFormatError`).
    pub error_chain: Vec<ErrorChainItem>,
    /// `RequestType`, which many results echo.
    pub request_type: Option<String>,
    /// Every other key: the command-specific result (`QueryResponses`,
    /// `ProfileList`, …), untouched.
    pub payload: Dictionary,
    /// The body exactly as received.
    pub raw: Vec<u8>,
}

impl CommandReport {
    /// Parses a report (XML or binary plist). An unknown `Status` is
    /// [`ParseErrorKind::UnknownStatus`].
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let dict = decode_dict(bytes)?;
        Self::from_dict(dict, bytes).map_err(|kind| ParseError::new(kind, bytes))
    }

    fn from_dict(dict: Dictionary, bytes: &[u8]) -> Result<Self, ParseErrorKind> {
        let mut f = Fields::new(dict);
        let status_text = f.req_string("Status")?;
        let status = CommandStatus::from_wire(&status_text)
            .ok_or(ParseErrorKind::UnknownStatus(status_text))?;
        let enrollment = Enrollment::take(&mut f)?;
        let command_uuid = f.string("CommandUUID")?.filter(|u| !u.is_empty());
        if command_uuid.is_none() && status != CommandStatus::Idle {
            return Err(ParseErrorKind::MissingKey("CommandUUID"));
        }
        let error_chain = f
            .array("ErrorChain")?
            .unwrap_or_default()
            .iter()
            .map(ErrorChainItem::from_value)
            .collect();
        Ok(Self {
            status,
            command_uuid,
            enrollment,
            error_chain,
            request_type: f.string("RequestType")?,
            payload: f.into_rest(),
            raw: bytes.to_vec(),
        })
    }

    /// The result keys this crate left uninterpreted (the payload's keys).
    pub fn payload_keys(&self) -> Vec<&str> {
        self.payload.keys().map(String::as_str).collect()
    }
}
