//! The one error type of this crate.

/// Everything that can go wrong in a key, certificate or CMS operation.
///
/// Messages never contain secret material (keys, challenge passwords).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The input is larger than [`crate::MAX_INPUT_LEN`].
    #[error("input too large: {len} bytes (limit {limit})")]
    TooLarge {
        /// Length of the rejected input.
        len: usize,
        /// The limit it exceeded.
        limit: usize,
    },
    /// The bytes do not decode as the expected structure.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which structure was being decoded.
        what: &'static str,
        /// Decoder detail (never contains secrets).
        detail: String,
    },
    /// An algorithm identifier this crate does not implement.
    #[error("unsupported algorithm: {0}")]
    UnsupportedAlgorithm(String),
    /// A private or public key was rejected (format, type or size).
    #[error("key rejected: {0}")]
    KeyRejected(String),
    /// A signature did not verify.
    #[error("signature verification failed: {0}")]
    BadSignature(&'static str),
    /// The CMS messageDigest attribute does not match the content.
    #[error("message digest does not match the content")]
    DigestMismatch,
    /// The certificate of the signer is not in the message nor among the supplied ones.
    #[error("signer certificate not found")]
    SignerNotFound,
    /// A caller-supplied argument is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A primitive in aws-lc failed (random generator, signing).
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// Encoding a structure to DER or PEM failed.
    #[error("encoding failed: {0}")]
    Encode(String),
}

impl PkiError {
    /// Builds a [`PkiError::Malformed`] from a decoder error.
    pub fn malformed(what: &'static str, err: impl std::fmt::Display) -> Self {
        Self::Malformed {
            what,
            detail: err.to_string(),
        }
    }

    /// Builds a [`PkiError::Encode`] from an encoder error.
    pub fn encode(err: impl std::fmt::Display) -> Self {
        Self::Encode(err.to_string())
    }
}

/// Rejects inputs longer than [`crate::MAX_INPUT_LEN`].
pub fn check_len(input: &[u8]) -> Result<(), PkiError> {
    if input.len() > crate::MAX_INPUT_LEN {
        return Err(PkiError::TooLarge {
            len: input.len(),
            limit: crate::MAX_INPUT_LEN,
        });
    }
    Ok(())
}
