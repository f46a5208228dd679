//! Errors of this crate: one for decoding device plists, one for building
//! what the server sends.

use std::fmt;

/// Why a device plist (check-in, command report, command) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// The body is larger than [`crate::MAX_BODY_LEN`].
    #[error("body too large: {len} bytes (limit {limit})")]
    TooLarge {
        /// Length of the rejected body.
        len: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The bytes are not a plist (XML or binary).
    #[error("malformed plist: {0}")]
    Malformed(String),
    /// Arrays and dictionaries nest deeper than [`crate::MAX_DEPTH`].
    #[error("plist nested deeper than {limit} levels")]
    TooDeep {
        /// The depth limit.
        limit: usize,
    },
    /// The plist expands to more values or content than allowed (a binary
    /// plist can reference one object many times).
    #[error("plist expands beyond {limit} {what}")]
    TooBig {
        /// What was counted ("values" or "content bytes").
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The root is not a dictionary.
    #[error("plist root is {found}, not a dictionary")]
    NotADictionary {
        /// Kind of the root value.
        found: &'static str,
    },
    /// A required key is absent.
    #[error("required key {0} is missing")]
    MissingKey(&'static str),
    /// A known key holds a value of the wrong type.
    #[error("key {key} is {found}, expected {expected}")]
    WrongType {
        /// The key.
        key: String,
        /// The expected plist type.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// A check-in `MessageType` this crate does not know.
    #[error("unknown check-in MessageType {0:?}")]
    UnknownMessageType(String),
    /// A command report `Status` this crate does not know.
    #[error("unknown command Status {0:?}")]
    UnknownStatus(String),
    /// The plist is neither a check-in, a command report nor a command.
    #[error("not an MDM message: no MessageType, Status or Command key")]
    NotAnMdmMessage,
}

/// A refused device plist: the reason and the bytes as received (for logs and
/// the admin "inspect" tool). For [`ParseErrorKind::TooLarge`] only the first
/// [`ParseError::KEPT_PREFIX`] bytes are kept.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// The received bytes (a prefix when the body was too large).
    pub raw: Vec<u8>,
}

impl ParseError {
    /// How much of an oversized body is kept.
    pub const KEPT_PREFIX: usize = 4096;

    /// Attaches the received bytes to `kind`.
    pub fn new(kind: ParseErrorKind, raw: &[u8]) -> Self {
        let raw = match kind {
            ParseErrorKind::TooLarge { .. } => raw[..raw.len().min(Self::KEPT_PREFIX)].to_vec(),
            _ => raw.to_vec(),
        };
        Self { kind, raw }
    }

    /// The unknown `MessageType`, when that is the reason.
    pub fn unknown_message_type(&self) -> Option<&str> {
        match &self.kind {
            ParseErrorKind::UnknownMessageType(t) => Some(t),
            _ => None,
        }
    }
}

impl fmt::Debug for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParseError")
            .field("kind", &self.kind)
            .field("raw_len", &self.raw.len())
            .finish()
    }
}

/// Why a command or profile could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// A caller-supplied value breaks a protocol rule.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field (protocol key name).
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Serializing the plist failed.
    #[error("plist encoding failed: {0}")]
    Encode(String),
    /// Signing the profile failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

impl BuildError {
    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
