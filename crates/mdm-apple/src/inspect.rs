//! A human-readable summary of a check-in, a command report or a command, for
//! an admin CLI. Secrets (tokens, push magic, challenges, PINs) are shown by
//! length only.

use std::fmt;

use crate::checkin::CheckinMessage;
use crate::codec::decode_dict;
use crate::command::Command;
use crate::enrollment::Enrollment;
use crate::error::{ParseError, ParseErrorKind};
use crate::result::CommandReport;

/// What [`inspect`] found.
#[derive(Clone, Debug, PartialEq)]
pub enum Inspection {
    /// A check-in message.
    Checkin(CheckinMessage),
    /// A command report (Idle or a result).
    Report(CommandReport),
    /// A command (server to device).
    Command(Command),
}

/// Parses XML or binary plist bytes as whichever MDM message they are: a
/// `MessageType` key makes a check-in, `Status` a report, `Command` a command.
pub fn inspect(bytes: &[u8]) -> Result<Inspection, ParseError> {
    let dict = decode_dict(bytes)?;
    if dict.contains_key("MessageType") {
        CheckinMessage::parse(bytes).map(Inspection::Checkin)
    } else if dict.contains_key("Status") {
        CommandReport::parse(bytes).map(Inspection::Report)
    } else if dict.contains_key("Command") {
        Command::parse(bytes).map(Inspection::Command)
    } else {
        Err(ParseError::new(ParseErrorKind::NotAnMdmMessage, bytes))
    }
}

fn line(f: &mut fmt::Formatter<'_>, label: &str, value: Option<&str>) -> fmt::Result {
    match value {
        Some(v) => writeln!(f, "  {label:<16}{v}"),
        None => Ok(()),
    }
}

fn secret(f: &mut fmt::Formatter<'_>, label: &str, len: Option<usize>) -> fmt::Result {
    match len {
        Some(n) => writeln!(f, "  {label:<16}<{n} bytes>"),
        None => Ok(()),
    }
}

fn who(f: &mut fmt::Formatter<'_>, e: &Enrollment) -> fmt::Result {
    line(f, "enrollment:", Some(&e.id.to_string()))?;
    line(f, "UDID:", e.udid.as_deref())?;
    line(f, "EnrollmentID:", e.enrollment_id.as_deref())?;
    line(f, "UserID:", e.user_id.as_deref())?;
    line(f, "UserShortName:", e.user_short_name.as_deref())?;
    line(f, "EnrollmentUserID:", e.enrollment_user_id.as_deref())
}

fn keys(f: &mut fmt::Formatter<'_>, label: &str, keys: &[&str]) -> fmt::Result {
    if keys.is_empty() {
        return Ok(());
    }
    line(f, label, Some(&keys.join(", ")))
}

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Checkin(m) => fmt_checkin(f, m),
            Self::Report(r) => fmt_report(f, r),
            Self::Command(c) => {
                writeln!(f, "command: {}", c.request.request_type())?;
                line(f, "CommandUUID:", Some(&c.command_uuid))
            }
        }
    }
}

fn fmt_checkin(f: &mut fmt::Formatter<'_>, m: &CheckinMessage) -> fmt::Result {
    writeln!(f, "check-in: {}", m.message_type())?;
    who(f, m.enrollment())?;
    line(f, "Topic:", m.topic())?;
    match m {
        CheckinMessage::Authenticate(a) => {
            line(f, "SerialNumber:", a.serial_number.as_deref())?;
            line(f, "ProductName:", a.product_name.as_deref())?;
            line(f, "OSVersion:", a.os_version.as_deref())?;
            line(f, "DeviceName:", a.device_name.as_deref())?;
        }
        CheckinMessage::TokenUpdate(t) => {
            secret(f, "Token:", Some(t.token.len()))?;
            secret(f, "PushMagic:", Some(t.push_magic.len()))?;
            secret(f, "UnlockToken:", t.unlock_token.as_ref().map(Vec::len))?;
            let awaiting = t.awaiting_configuration.map(|b| b.to_string());
            line(f, "Awaiting:", awaiting.as_deref())?;
        }
        CheckinMessage::SetBootstrapToken(s) => {
            secret(
                f,
                "BootstrapToken:",
                s.bootstrap_token.as_ref().map(Vec::len),
            )?;
        }
        CheckinMessage::DeclarativeManagement(d) => {
            line(f, "Endpoint:", d.endpoint.as_deref())?;
        }
        _ => {}
    }
    let ignored: Vec<&str> = m.raw().ignored_keys.iter().map(String::as_str).collect();
    keys(f, "ignored keys:", &ignored)
}

fn fmt_report(f: &mut fmt::Formatter<'_>, r: &CommandReport) -> fmt::Result {
    writeln!(f, "report: {}", r.status)?;
    who(f, &r.enrollment)?;
    line(f, "CommandUUID:", r.command_uuid.as_deref())?;
    line(f, "RequestType:", r.request_type.as_deref())?;
    for e in &r.error_chain {
        line(f, "error:", Some(&e.to_string()))?;
    }
    keys(f, "result keys:", &r.payload_keys())
}
