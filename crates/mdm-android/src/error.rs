//! The errors shared by every agent message: decoding and content rules.
//! Each other concern (signing, QR, FCM, paths) has its own small enum next
//! to its code.

/// A field breaks a protocol rule. `field` is the JSON path with list indexes
/// left out (`inventory.apps.package`), so it is a stable label for metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValidationError {
    /// A required text is empty.
    #[error("{field} is empty")]
    Empty {
        /// The field.
        field: &'static str,
    },
    /// A text is longer than its bound.
    #[error("{field} is {len} bytes long (limit {max})")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A list holds more entries than its bound.
    #[error("{field} has {count} entries (limit {max})")]
    TooMany {
        /// The field.
        field: &'static str,
        /// The number of entries.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// A number is outside its range.
    #[error("{field} is {value}, outside {min}..={max}")]
    OutOfRange {
        /// The field.
        field: &'static str,
        /// The value.
        value: i64,
        /// Smallest allowed value.
        min: i64,
        /// Largest allowed value.
        max: i64,
    },
    /// A base64 field does not decode (standard alphabet, padded).
    #[error("{field} is not valid base64")]
    BadBase64 {
        /// The field.
        field: &'static str,
    },
    /// A field has the wrong shape (characters, syntax, DER structure).
    #[error("{field}: {reason}")]
    BadFormat {
        /// The field.
        field: &'static str,
        /// What is expected.
        reason: &'static str,
    },
    /// The registration carries a password and an enrollment token.
    #[error("credentials carry both a password and an enrollment token")]
    BothCredentials,
    /// The registration carries neither a password nor an enrollment token.
    #[error("credentials carry neither email and password nor an enrollment token")]
    NoCredentials,
    /// A field that is required in this combination is absent.
    #[error("{field} is required here")]
    Missing {
        /// The field.
        field: &'static str,
    },
    /// A field that is not allowed in this combination is present.
    #[error("{field} is not allowed here")]
    NotAllowed {
        /// The field.
        field: &'static str,
    },
}

/// Why a JSON message was refused or could not be written.
///
/// Errors never carry the body: registration bodies hold passwords and
/// enrollment tokens, and every body holds the FCM token. The caller still
/// has the bytes it passed in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The body is larger than the message type allows.
    #[error("body too large: {len} bytes (limit {limit})")]
    TooLarge {
        /// Length of the body.
        len: usize,
        /// The limit for this message type.
        limit: usize,
    },
    /// Not JSON, or not this message: syntax, wrong types, missing or
    /// unknown fields, nesting deeper than serde_json's limit of 128.
    #[error("malformed JSON: {0}")]
    Json(String),
    /// Well-formed, but a field breaks a rule.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

impl MessageError {
    /// The validation failure, when that is the reason.
    pub fn validation(&self) -> Option<&ValidationError> {
        match self {
            Self::Invalid(v) => Some(v),
            _ => None,
        }
    }
}
