//! Commands the server answers an `Idle` (or a result) with:
//! `{CommandUUID: …, Command: {RequestType: …, <params>}}` as an XML plist.

use plist::{Dictionary, Value};

use crate::codec::{Fields, decode_dict, to_xml};
use crate::device_info::DEFAULT_DEVICE_QUERIES;
use crate::error::{BuildError, ParseError, ParseErrorKind};

/// What the command asks for.
#[derive(Clone, Debug, PartialEq)]
pub enum CommandRequest {
    /// `DeviceInformation` with `Queries`.
    DeviceInformation {
        /// Query names; see [`DEFAULT_DEVICE_QUERIES`].
        queries: Vec<String>,
    },
    /// `ProfileList`.
    ProfileList,
    /// `InstallProfile`: `Payload` is the (signed or plain) .mobileconfig.
    InstallProfile {
        /// The profile bytes.
        payload: Vec<u8>,
    },
    /// `RemoveProfile` of the profile whose `PayloadIdentifier` is `identifier`.
    RemoveProfile {
        /// The top-level `PayloadIdentifier`.
        identifier: String,
    },
    /// `DeviceLock`.
    DeviceLock {
        /// `PIN`: six digits, macOS only (Find My lock code).
        pin: Option<String>,
        /// `Message` shown on the lock screen.
        message: Option<String>,
        /// `PhoneNumber` shown on the lock screen.
        phone_number: Option<String>,
    },
    /// `EraseDevice`.
    EraseDevice {
        /// `PIN`: six digits, macOS only.
        pin: Option<String>,
        /// `PreserveDataPlan` (iOS with eSIM).
        preserve_data_plan: Option<bool>,
    },
    /// `DeviceConfigured`: releases a device that sent `AwaitingConfiguration`.
    DeviceConfigured,
    /// Any other request type, with its parameters as given.
    Custom {
        /// `RequestType`.
        request_type: String,
        /// Parameters beside `RequestType`.
        params: Dictionary,
    },
}

impl CommandRequest {
    /// `DeviceInformation` with [`DEFAULT_DEVICE_QUERIES`].
    pub fn device_information() -> Self {
        Self::DeviceInformation {
            queries: DEFAULT_DEVICE_QUERIES
                .iter()
                .map(|q| (*q).to_owned())
                .collect(),
        }
    }

    /// The `RequestType` string.
    pub fn request_type(&self) -> &str {
        match self {
            Self::DeviceInformation { .. } => "DeviceInformation",
            Self::ProfileList => "ProfileList",
            Self::InstallProfile { .. } => "InstallProfile",
            Self::RemoveProfile { .. } => "RemoveProfile",
            Self::DeviceLock { .. } => "DeviceLock",
            Self::EraseDevice { .. } => "EraseDevice",
            Self::DeviceConfigured => "DeviceConfigured",
            Self::Custom { request_type, .. } => request_type,
        }
    }

    fn validate(&self) -> Result<(), BuildError> {
        match self {
            Self::DeviceInformation { queries } if queries.is_empty() => Err(BuildError::invalid(
                "Queries",
                "at least one query is needed",
            )),
            Self::InstallProfile { payload } if payload.is_empty() => {
                Err(BuildError::invalid("Payload", "empty profile"))
            }
            Self::RemoveProfile { identifier } if identifier.trim().is_empty() => {
                Err(BuildError::invalid("Identifier", "empty"))
            }
            Self::DeviceLock { pin: Some(pin), .. } | Self::EraseDevice { pin: Some(pin), .. } => {
                check_pin(pin)
            }
            Self::Custom {
                request_type,
                params,
            } => {
                if request_type.trim().is_empty() {
                    return Err(BuildError::invalid("RequestType", "empty"));
                }
                if params.contains_key("RequestType") {
                    return Err(BuildError::invalid(
                        "RequestType",
                        "also given as a parameter",
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn to_dictionary(&self) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("RequestType".into(), self.request_type().into());
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                d.insert(k.into(), v);
            }
        };
        match self {
            Self::DeviceInformation { queries } => {
                let list = queries.iter().map(|q| Value::from(q.as_str())).collect();
                put("Queries", Some(Value::Array(list)));
            }
            Self::InstallProfile { payload } => put("Payload", Some(Value::Data(payload.clone()))),
            Self::RemoveProfile { identifier } => {
                put("Identifier", Some(identifier.as_str().into()))
            }
            Self::DeviceLock {
                pin,
                message,
                phone_number,
            } => {
                put("PIN", pin.as_deref().map(Value::from));
                put("Message", message.as_deref().map(Value::from));
                put("PhoneNumber", phone_number.as_deref().map(Value::from));
            }
            Self::EraseDevice {
                pin,
                preserve_data_plan,
            } => {
                put("PIN", pin.as_deref().map(Value::from));
                put("PreserveDataPlan", preserve_data_plan.map(Value::Boolean));
            }
            Self::Custom { params, .. } => {
                for (k, v) in params {
                    put(k, Some(v.clone()));
                }
            }
            Self::ProfileList | Self::DeviceConfigured => {}
        }
        d
    }

    /// Reads a `Command` dictionary back. Known request types become typed
    /// variants only when every parameter is understood; otherwise `Custom`,
    /// so nothing is lost.
    fn from_dictionary(d: Dictionary) -> Result<Self, ParseErrorKind> {
        let mut f = Fields::new(d.clone());
        let request_type = f.req_string("RequestType")?;
        let typed = Self::typed(&request_type, &mut f);
        match typed {
            Ok(Some(req)) if f.leftover_keys().is_empty() => Ok(req),
            _ => {
                let mut params = d;
                params.remove("RequestType");
                Ok(Self::Custom {
                    request_type,
                    params,
                })
            }
        }
    }

    fn typed(request_type: &str, f: &mut Fields) -> Result<Option<Self>, ParseErrorKind> {
        Ok(Some(match request_type {
            "DeviceInformation" => {
                let queries = f.array("Queries")?.unwrap_or_default();
                let queries: Option<Vec<String>> =
                    queries.into_iter().map(Value::into_string).collect();
                match queries {
                    Some(queries) => Self::DeviceInformation { queries },
                    None => return Ok(None),
                }
            }
            "ProfileList" => Self::ProfileList,
            "DeviceConfigured" => Self::DeviceConfigured,
            "InstallProfile" => Self::InstallProfile {
                payload: f.req_data("Payload")?,
            },
            "RemoveProfile" => Self::RemoveProfile {
                identifier: f.req_string("Identifier")?,
            },
            "DeviceLock" => Self::DeviceLock {
                pin: f.string("PIN")?,
                message: f.string("Message")?,
                phone_number: f.string("PhoneNumber")?,
            },
            "EraseDevice" => Self::EraseDevice {
                pin: f.string("PIN")?,
                preserve_data_plan: f.bool("PreserveDataPlan")?,
            },
            _ => return Ok(None),
        }))
    }
}

fn check_pin(pin: &str) -> Result<(), BuildError> {
    if pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(BuildError::invalid("PIN", "must be exactly six digits"))
    }
}

/// A command for one device: the caller supplies the `CommandUUID` (unique,
/// from its entropy source) and keeps it to match the result.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// `CommandUUID`.
    pub command_uuid: String,
    /// The request.
    pub request: CommandRequest,
}

impl Command {
    /// A command with `command_uuid`.
    pub fn new(command_uuid: impl Into<String>, request: CommandRequest) -> Self {
        Self {
            command_uuid: command_uuid.into(),
            request,
        }
    }

    /// "Remove management" (retire): there is no such command; the server asks
    /// the device to remove the enrollment profile itself, by the identifier
    /// from [`crate::EnrollmentProfile::payload_identifier`]. The device then
    /// drops every profile and app the MDM installed and sends `CheckOut`.
    pub fn remove_management(
        command_uuid: impl Into<String>,
        enrollment_profile_identifier: impl Into<String>,
    ) -> Self {
        Self::new(
            command_uuid,
            CommandRequest::RemoveProfile {
                identifier: enrollment_profile_identifier.into(),
            },
        )
    }

    /// The command as a plist dictionary (after validation).
    pub fn to_plist(&self) -> Result<Value, BuildError> {
        if self.command_uuid.trim().is_empty() {
            return Err(BuildError::invalid("CommandUUID", "empty"));
        }
        self.request.validate()?;
        let mut d = Dictionary::new();
        d.insert("CommandUUID".into(), self.command_uuid.as_str().into());
        d.insert(
            "Command".into(),
            Value::Dictionary(self.request.to_dictionary()),
        );
        Ok(Value::Dictionary(d))
    }

    /// The command as the XML plist body of the HTTP answer.
    pub fn to_xml(&self) -> Result<Vec<u8>, BuildError> {
        to_xml(&self.to_plist()?)
    }

    /// Parses a command plist (what a device receives): for tests, simulators
    /// and the inspect tool.
    pub fn parse(bytes: &[u8]) -> Result<Self, ParseError> {
        let dict = decode_dict(bytes)?;
        let parsed = (|| {
            let mut f = Fields::new(dict);
            let command_uuid = f.req_string("CommandUUID")?;
            let inner = f
                .dict("Command")?
                .ok_or(ParseErrorKind::MissingKey("Command"))?;
            Ok(Self {
                command_uuid,
                request: CommandRequest::from_dictionary(inner)?,
            })
        })();
        parsed.map_err(|kind| ParseError::new(kind, bytes))
    }
}
