//! Errors of SCEP message processing, each mapped to the SCEP failInfo a
//! server answers with.

use mdm_pki::PkiError;

use crate::{FailInfo, MessageType, Nonce, TransactionId};

/// What went wrong with a SCEP message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScepError {
    /// Larger than [`mdm_pki::MAX_INPUT_LEN`].
    #[error("message too large: {0} bytes (limit 1 MiB)")]
    TooLarge(usize),
    /// Not decodable as the expected structure (truncated, garbage, too deep).
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// Decoder detail.
        detail: String,
    },
    /// A required attribute is missing or unreadable.
    #[error("missing or invalid SCEP attribute {0}")]
    Attribute(&'static str),
    /// A digest, signature, key-transport or content cipher we do not support.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// The signer's certificate is neither in the message nor supplied.
    #[error("signer certificate not found")]
    SignerNotFound,
    /// Signature or messageDigest check failed.
    #[error("message check failed: {0}")]
    BadMessageCheck(String),
    /// The envelope has no recipient matching our certificate.
    #[error("message is not encrypted to this certificate")]
    NotForUs,
    /// Decryption produced no valid plaintext (wrong key or corrupt data).
    #[error("decryption failed")]
    Decrypt,
    /// The inner request (CSR …) is invalid.
    #[error("invalid request: {0}")]
    BadRequest(String),
    /// The message type cannot be used here.
    #[error("unexpected message type {0:?}")]
    UnexpectedType(MessageType),
    /// A reply signed by a certificate the caller does not trust.
    #[error("reply signed by an untrusted certificate")]
    UntrustedSigner,
    /// Input base64 could not be decoded.
    #[error("invalid base64: {0}")]
    Base64(String),
    /// Building a message failed.
    #[error("could not build message: {0}")]
    Build(String),
}

impl ScepError {
    /// The failInfo a server should answer this error with.
    pub fn fail_info(&self) -> FailInfo {
        match self {
            Self::UnsupportedAlgorithm(_) => FailInfo::BadAlg,
            Self::BadMessageCheck(_) | Self::Decrypt | Self::UntrustedSigner => {
                FailInfo::BadMessageCheck
            }
            Self::SignerNotFound | Self::NotForUs => FailInfo::BadCertId,
            _ => FailInfo::BadRequest,
        }
    }

    pub(crate) fn malformed(what: &'static str, detail: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn build(err: impl std::fmt::Display) -> Self {
        Self::Build(err.to_string())
    }
}

impl From<PkiError> for ScepError {
    fn from(e: PkiError) -> Self {
        match e {
            PkiError::TooLarge { len, .. } => Self::TooLarge(len),
            PkiError::Malformed { what, detail } => Self::Malformed { what, detail },
            PkiError::UnsupportedAlgorithm(a) => Self::UnsupportedAlgorithm(a),
            PkiError::BadSignature(s) => Self::BadMessageCheck(s.to_string()),
            PkiError::DigestMismatch => Self::BadMessageCheck("messageDigest mismatch".into()),
            PkiError::SignerNotFound => Self::SignerNotFound,
            PkiError::KeyRejected(k) => Self::BadRequest(format!("key rejected: {k}")),
            other => Self::Build(other.to_string()),
        }
    }
}

/// What a server needs to answer a failed request with a signed FAILURE CertRep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailureContext {
    /// The request's transactionID (echoed).
    pub transaction_id: TransactionId,
    /// The request's senderNonce (becomes our recipientNonce), if it had one.
    pub sender_nonce: Option<Nonce>,
    /// The request's messageType.
    pub message_type: MessageType,
}

/// A failed PKIOperation: the error, and the context to answer it when the
/// message got far enough to have a transactionID.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct ScepFailure {
    /// What went wrong.
    pub error: ScepError,
    /// `None` when the message was too broken to answer (reply with HTTP 400).
    pub context: Option<FailureContext>,
}

impl ScepFailure {
    /// The failInfo to answer with.
    pub fn fail_info(&self) -> FailInfo {
        self.error.fail_info()
    }
}

impl From<ScepError> for ScepFailure {
    fn from(error: ScepError) -> Self {
        Self {
            error,
            context: None,
        }
    }
}

/// Attaches a failure context to errors.
pub(crate) trait WithContext<T> {
    fn ctx(self, ctx: &FailureContext) -> Result<T, ScepFailure>;
}

impl<T, E: Into<ScepError>> WithContext<T> for Result<T, E> {
    fn ctx(self, ctx: &FailureContext) -> Result<T, ScepFailure> {
        self.map_err(|e| ScepFailure {
            error: e.into(),
            context: Some(ctx.clone()),
        })
    }
}
