//! Check-in messages (HTTP PUT to the CheckInURL,
//! `application/x-apple-aspen-mdm-checkin`): one type per `MessageType`.

use plist::Dictionary;

use plist::Value;

use crate::codec::{Fields, decode_dict, to_xml};
use crate::enrollment::Enrollment;
use crate::error::{BuildError, ParseError, ParseErrorKind};

/// The `Content-Type` devices send check-ins with.
pub const CHECKIN_CONTENT_TYPE: &str = "application/x-apple-aspen-mdm-checkin";

/// Every `MessageType` [`CheckinMessage::parse`] understands.
pub const KNOWN_MESSAGE_TYPES: &[&str] = &[
    "Authenticate",
    "TokenUpdate",
    "CheckOut",
    "UserAuthenticate",
    "GetBootstrapToken",
    "SetBootstrapToken",
    "DeclarativeManagement",
    "GetToken",
    "ReturnToService",
];

/// The bytes a message was parsed from and the keys the parser ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Raw {
    /// The body exactly as received.
    pub bytes: Vec<u8>,
    /// Top-level keys this crate did not interpret, in document order.
    pub ignored_keys: Vec<String>,
}

/// `Authenticate`: the device is installing the enrollment profile. Provisional:
/// the enrollment is live only at the first [`TokenUpdate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticate {
    /// Who sent it.
    pub enrollment: Enrollment,
    /// `Topic`: the APNs topic from the profile.
    pub topic: String,
    /// `SerialNumber`.
    pub serial_number: Option<String>,
    /// `Model` (macOS, e.g. `iMac14,2`).
    pub model: Option<String>,
    /// `ModelName` (e.g. `iPhone`, `iMac`).
    pub model_name: Option<String>,
    /// `ProductName` (e.g. `iPad2,5`).
    pub product_name: Option<String>,
    /// `OSVersion`.
    pub os_version: Option<String>,
    /// `BuildVersion`.
    pub build_version: Option<String>,
    /// `DeviceName`.
    pub device_name: Option<String>,
    /// `IMEI`.
    pub imei: Option<String>,
    /// `MEID`.
    pub meid: Option<String>,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// `TokenUpdate`: the push token of a channel; the first one completes the
/// enrollment. Sent again when the token changes and once per user channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenUpdate {
    /// Who sent it (user fields set on a user channel).
    pub enrollment: Enrollment,
    /// `Topic`.
    pub topic: String,
    /// `Token`: the APNs device token.
    pub token: Vec<u8>,
    /// `PushMagic`: goes into the push payload.
    pub push_magic: String,
    /// `UnlockToken` (first TokenUpdate after enrollment only: never overwrite
    /// a stored one with an absent value).
    pub unlock_token: Option<Vec<u8>>,
    /// `AwaitingConfiguration` (ADE: the device waits for `DeviceConfigured`).
    pub awaiting_configuration: Option<bool>,
    /// `NotOnConsole` (macOS user channel).
    pub not_on_console: Option<bool>,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// `CheckOut`: the enrollment profile was removed (best effort, may never come).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOut {
    /// Who sent it.
    pub enrollment: Enrollment,
    /// `Topic`.
    pub topic: Option<String>,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// `UserAuthenticate` (macOS directory user): answer with a zero-length
/// `DigestChallenge` to manage the user, or HTTP 410 to decline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserAuthenticate {
    /// Who sent it (`UserID` set).
    pub enrollment: Enrollment,
    /// `DigestResponse` (second round only).
    pub digest_response: Option<String>,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// `GetBootstrapToken`: answer `{BootstrapToken: <data>}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GetBootstrapToken {
    /// Who sent it.
    pub enrollment: Enrollment,
    /// `AwaitingConfiguration`.
    pub awaiting_configuration: Option<bool>,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// `SetBootstrapToken`: escrow the token (kept as received).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetBootstrapToken {
    /// Who sent it.
    pub enrollment: Enrollment,
    /// `BootstrapToken`. `None` (absent or zero-length on the wire) means:
    /// remove the escrowed token.
    pub bootstrap_token: Option<Vec<u8>>,
    /// `AwaitingConfiguration`.
    pub awaiting_configuration: Option<bool>,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// `DeclarativeManagement`: a DDM request, kept raw for a later DDM layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeclarativeManagement {
    /// Who sent it.
    pub enrollment: Enrollment,
    /// `Endpoint` (`tokens`, `declaration-items`, `status`, `declaration/…`).
    pub endpoint: Option<String>,
    /// `Data` (JSON bytes), when present.
    pub data: Option<Vec<u8>>,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// `GetToken`: a token for a service such as watch pairing, kept raw.
#[derive(Clone, Debug, PartialEq)]
pub struct GetToken {
    /// Who sent it.
    pub enrollment: Enrollment,
    /// `TokenServiceType`.
    pub token_service_type: Option<String>,
    /// `TokenParameters`, untouched.
    pub token_parameters: Option<Dictionary>,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// `ReturnToService` (iOS 26, ADE): the device asks for its return-to-service
/// configuration before erasing itself; kept raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnToService {
    /// Who sent it.
    pub enrollment: Enrollment,
    /// Body and ignored keys.
    pub raw: Raw,
}

/// A parsed check-in, by `MessageType`. Deliberately exhaustive: a new type
/// should make every `match` in the server fail to compile.
#[derive(Clone, Debug, PartialEq)]
pub enum CheckinMessage {
    /// `Authenticate`.
    Authenticate(Authenticate),
    /// `TokenUpdate`.
    TokenUpdate(TokenUpdate),
    /// `CheckOut`.
    CheckOut(CheckOut),
    /// `UserAuthenticate`.
    UserAuthenticate(UserAuthenticate),
    /// `GetBootstrapToken`.
    GetBootstrapToken(GetBootstrapToken),
    /// `SetBootstrapToken`.
    SetBootstrapToken(SetBootstrapToken),
    /// `DeclarativeManagement`.
    DeclarativeManagement(DeclarativeManagement),
    /// `GetToken`.
    GetToken(GetToken),
    /// `ReturnToService`.
    ReturnToService(ReturnToService),
}

impl CheckinMessage {
    /// Parses a check-in body (XML or binary plist). Unknown keys are ignored
    /// and listed in [`Raw::ignored_keys`]; an unknown `MessageType` is
    /// [`ParseErrorKind::UnknownMessageType`].
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let dict = decode_dict(bytes)?;
        Self::from_dict(dict, bytes).map_err(|kind| ParseError::new(kind, bytes))
    }

    fn from_dict(dict: Dictionary, bytes: &[u8]) -> Result<Self, ParseErrorKind> {
        let mut f = Fields::new(dict);
        let message_type = f.req_string("MessageType")?;
        if !KNOWN_MESSAGE_TYPES.contains(&message_type.as_str()) {
            return Err(ParseErrorKind::UnknownMessageType(message_type));
        }
        let enrollment = Enrollment::take(&mut f)?;
        let mut msg = match message_type.as_str() {
            "Authenticate" => Self::Authenticate(Authenticate {
                enrollment,
                topic: f.req_string("Topic")?,
                serial_number: f.string("SerialNumber")?,
                model: f.string("Model")?,
                model_name: f.string("ModelName")?,
                product_name: f.string("ProductName")?,
                os_version: f.string("OSVersion")?,
                build_version: f.string("BuildVersion")?,
                device_name: f.string("DeviceName")?,
                imei: f.string("IMEI")?,
                meid: f.string("MEID")?,
                raw: Raw::default(),
            }),
            "TokenUpdate" => Self::TokenUpdate(TokenUpdate {
                enrollment,
                topic: f.req_string("Topic")?,
                token: f.req_data("Token")?,
                push_magic: f.req_string("PushMagic")?,
                unlock_token: f.data("UnlockToken")?,
                awaiting_configuration: f.bool("AwaitingConfiguration")?,
                not_on_console: f.bool("NotOnConsole")?,
                raw: Raw::default(),
            }),
            "CheckOut" => Self::CheckOut(CheckOut {
                enrollment,
                topic: f.string("Topic")?,
                raw: Raw::default(),
            }),
            "UserAuthenticate" => Self::UserAuthenticate(UserAuthenticate {
                enrollment,
                digest_response: f.string("DigestResponse")?,
                raw: Raw::default(),
            }),
            "GetBootstrapToken" => Self::GetBootstrapToken(GetBootstrapToken {
                enrollment,
                awaiting_configuration: f.bool("AwaitingConfiguration")?,
                raw: Raw::default(),
            }),
            "SetBootstrapToken" => Self::SetBootstrapToken(SetBootstrapToken {
                enrollment,
                bootstrap_token: f.data("BootstrapToken")?.filter(|t| !t.is_empty()),
                awaiting_configuration: f.bool("AwaitingConfiguration")?,
                raw: Raw::default(),
            }),
            "DeclarativeManagement" => Self::DeclarativeManagement(DeclarativeManagement {
                enrollment,
                endpoint: f.string("Endpoint")?,
                data: f.data("Data")?,
                raw: Raw::default(),
            }),
            "GetToken" => Self::GetToken(GetToken {
                enrollment,
                token_service_type: f.string("TokenServiceType")?,
                token_parameters: f.dict("TokenParameters")?,
                raw: Raw::default(),
            }),
            "ReturnToService" => Self::ReturnToService(ReturnToService {
                enrollment,
                raw: Raw::default(),
            }),
            _ => return Err(ParseErrorKind::UnknownMessageType(message_type)),
        };
        *msg.raw_mut() = Raw {
            bytes: bytes.to_vec(),
            ignored_keys: f.leftover_keys(),
        };
        Ok(msg)
    }

    /// The `MessageType` string.
    pub fn message_type(&self) -> &'static str {
        match self {
            Self::Authenticate(_) => "Authenticate",
            Self::TokenUpdate(_) => "TokenUpdate",
            Self::CheckOut(_) => "CheckOut",
            Self::UserAuthenticate(_) => "UserAuthenticate",
            Self::GetBootstrapToken(_) => "GetBootstrapToken",
            Self::SetBootstrapToken(_) => "SetBootstrapToken",
            Self::DeclarativeManagement(_) => "DeclarativeManagement",
            Self::GetToken(_) => "GetToken",
            Self::ReturnToService(_) => "ReturnToService",
        }
    }

    /// Who sent it.
    pub fn enrollment(&self) -> &Enrollment {
        match self {
            Self::Authenticate(m) => &m.enrollment,
            Self::TokenUpdate(m) => &m.enrollment,
            Self::CheckOut(m) => &m.enrollment,
            Self::UserAuthenticate(m) => &m.enrollment,
            Self::GetBootstrapToken(m) => &m.enrollment,
            Self::SetBootstrapToken(m) => &m.enrollment,
            Self::DeclarativeManagement(m) => &m.enrollment,
            Self::GetToken(m) => &m.enrollment,
            Self::ReturnToService(m) => &m.enrollment,
        }
    }

    /// The APNs `Topic`, for messages that carry one.
    pub fn topic(&self) -> Option<&str> {
        match self {
            Self::Authenticate(m) => Some(&m.topic),
            Self::TokenUpdate(m) => Some(&m.topic),
            Self::CheckOut(m) => m.topic.as_deref(),
            _ => None,
        }
    }

    /// Body and ignored keys.
    pub fn raw(&self) -> &Raw {
        match self {
            Self::Authenticate(m) => &m.raw,
            Self::TokenUpdate(m) => &m.raw,
            Self::CheckOut(m) => &m.raw,
            Self::UserAuthenticate(m) => &m.raw,
            Self::GetBootstrapToken(m) => &m.raw,
            Self::SetBootstrapToken(m) => &m.raw,
            Self::DeclarativeManagement(m) => &m.raw,
            Self::GetToken(m) => &m.raw,
            Self::ReturnToService(m) => &m.raw,
        }
    }

    fn raw_mut(&mut self) -> &mut Raw {
        match self {
            Self::Authenticate(m) => &mut m.raw,
            Self::TokenUpdate(m) => &mut m.raw,
            Self::CheckOut(m) => &mut m.raw,
            Self::UserAuthenticate(m) => &mut m.raw,
            Self::GetBootstrapToken(m) => &mut m.raw,
            Self::SetBootstrapToken(m) => &mut m.raw,
            Self::DeclarativeManagement(m) => &mut m.raw,
            Self::GetToken(m) => &mut m.raw,
            Self::ReturnToService(m) => &mut m.raw,
        }
    }
}

/// The reply to a [`UserAuthenticate`] that accepts the user without a
/// password digest: `{DigestChallenge: ""}`. (Decline with HTTP 410 instead.)
pub fn user_authenticate_accept() -> Result<Vec<u8>, BuildError> {
    let mut d = Dictionary::new();
    d.insert("DigestChallenge".into(), Value::String(String::new()));
    to_xml(&Value::Dictionary(d))
}

/// The reply to a [`GetBootstrapToken`]: `{BootstrapToken: <data>}`, or an
/// empty dictionary when none is escrowed.
pub fn bootstrap_token_reply(token: Option<&[u8]>) -> Result<Vec<u8>, BuildError> {
    let mut d = Dictionary::new();
    if let Some(t) = token {
        d.insert("BootstrapToken".into(), Value::Data(t.to_vec()));
    }
    to_xml(&Value::Dictionary(d))
}
