//! The one decode/encode path every JSON agent message goes through: a size
//! bound, serde, then the message's own rules.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{MessageError, ValidationError};

/// A JSON message of the agent API (either direction).
///
/// [`Message::from_json`] is the only way the server should read a body:
/// it bounds the size before parsing and runs [`Message::validate`] after.
/// [`Message::to_json`] validates before writing, so the simulator and the
/// server cannot emit what the other side would refuse.
pub trait Message: Serialize + DeserializeOwned {
    /// Largest body accepted for this message.
    const MAX_BODY_LEN: usize;

    /// Checks the rules serde cannot express: lengths, character sets,
    /// base64 and DER content, combinations of fields.
    fn validate(&self) -> Result<(), ValidationError>;

    /// Decodes and validates a body.
    fn from_json(body: &[u8]) -> Result<Self, MessageError> {
        if body.len() > Self::MAX_BODY_LEN {
            return Err(MessageError::TooLarge {
                len: body.len(),
                limit: Self::MAX_BODY_LEN,
            });
        }
        let message: Self =
            serde_json::from_slice(body).map_err(|e| MessageError::Json(describe(&e)))?;
        message.validate()?;
        Ok(message)
    }

    /// Validates and encodes the message.
    fn to_json(&self) -> Result<Vec<u8>, MessageError> {
        self.validate()?;
        let body = serde_json::to_vec(self).map_err(|e| MessageError::Json(e.to_string()))?;
        if body.len() > Self::MAX_BODY_LEN {
            return Err(MessageError::TooLarge {
                len: body.len(),
                limit: Self::MAX_BODY_LEN,
            });
        }
        Ok(body)
    }
}

/// A serde_json error as text that never quotes a value from the body.
///
/// serde's "invalid type/value/length" errors quote the offending value,
/// which can be a password, so only their position is kept. Other errors
/// (syntax, unknown or missing fields and variants, this crate's own
/// conversions such as fingerprints and versions) name fields and
/// positions, or quote values that are not secret.
pub(crate) fn describe(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let quotes_value = ["invalid type", "invalid value", "invalid length"]
        .iter()
        .any(|p| text.starts_with(p));
    if !quotes_value {
        text
    } else {
        format!("invalid value at line {} column {}", e.line(), e.column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Secretive {
        password: String,
    }

    #[test]
    fn type_errors_do_not_quote_values() {
        let err = serde_json::from_str::<Secretive>(r#"{"password": 987654321}"#).unwrap_err();
        let text = describe(&err);
        assert!(!text.contains("987654321"), "{text}");
        assert!(text.contains("line 1"), "{text}");
    }

    #[test]
    fn unknown_fields_are_named() {
        let err = serde_json::from_str::<Secretive>(r#"{"x": 1}"#).unwrap_err();
        assert!(describe(&err).contains("missing field") || describe(&err).contains("x"));
    }
}
