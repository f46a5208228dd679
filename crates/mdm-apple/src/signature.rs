//! `Mdm-Signature`: a base64 detached CMS SignedData over the exact HTTP body,
//! signed by the device identity. This module proves the body was signed by
//! the certificate in the header; the caller checks that the certificate
//! chains to the tenant CA, is bound to the enrollment, and the clock skew.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use mdm_pki::{KnownSigner, PkiError, SignerCache, verify_detached};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// The header devices send when the profile sets `SignMessage`.
pub const MDM_SIGNATURE_HEADER: &str = "Mdm-Signature";
/// Largest header value accepted (the signature with its certificates is ~2–4 KiB).
pub const MAX_SIGNATURE_HEADER_LEN: usize = 64 * 1024;

/// The certificate that signed a body.
#[derive(Clone, Debug)]
pub struct VerifiedDevice {
    /// The signer (device identity) certificate: its DER and SHA-256
    /// fingerprint (what binds it to the enrollment).
    pub signer: Arc<KnownSigner>,
    /// The signingTime attribute, when present.
    pub signing_time: Option<OffsetDateTime>,
}

/// Why an `Mdm-Signature` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The header is empty or longer than [`MAX_SIGNATURE_HEADER_LEN`].
    #[error("Mdm-Signature header is empty or too long ({0} bytes)")]
    BadLength(usize),
    /// The header is not base64.
    #[error("Mdm-Signature is not base64: {0}")]
    BadBase64(String),
    /// The decoded bytes are not a usable detached CMS SignedData.
    #[error("Mdm-Signature is not a detached CMS signature: {0}")]
    BadCms(String),
    /// The signature is over another body (messageDigest mismatch).
    #[error("Mdm-Signature digest does not match the body")]
    DigestMismatch,
    /// The RSA signature does not verify with the signer's key.
    #[error("Mdm-Signature does not verify: {0}")]
    BadSignature(String),
    /// The signer's certificate is not in the signature.
    #[error("Mdm-Signature carries no signer certificate")]
    SignerNotFound,
    /// An algorithm this server does not implement.
    #[error("Mdm-Signature uses an unsupported algorithm: {0}")]
    Unsupported(String),
}

impl From<PkiError> for SignatureError {
    fn from(e: PkiError) -> Self {
        match e {
            PkiError::DigestMismatch => Self::DigestMismatch,
            PkiError::BadSignature(why) => Self::BadSignature(why.to_owned()),
            PkiError::SignerNotFound => Self::SignerNotFound,
            PkiError::UnsupportedAlgorithm(alg) => Self::Unsupported(alg),
            other => Self::BadCms(other.to_string()),
        }
    }
}

/// Verifies `header` (the `Mdm-Signature` value) as a detached signature over
/// `body`. Whitespace inside the base64 is tolerated; BER and DER are accepted.
/// `signers` keeps the certificates of devices seen recently parsed.
pub fn verify_mdm_signature(
    header: &str,
    body: &[u8],
    signers: &SignerCache,
) -> Result<VerifiedDevice, SignatureError> {
    if header.is_empty() || header.len() > MAX_SIGNATURE_HEADER_LEN {
        return Err(SignatureError::BadLength(header.len()));
    }
    let der = decode_base64(header).map_err(SignatureError::BadBase64)?;
    let signed = verify_detached(&der, body, signers)?;
    Ok(VerifiedDevice {
        signer: signed.signer,
        signing_time: signed.signing_time,
    })
}

/// Standard base64 with or without padding, ignoring ASCII whitespace.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    // Headers rarely carry whitespace: copy only when they do.
    let compact: std::borrow::Cow<'_, str> = if text.bytes().any(|b| b.is_ascii_whitespace()) {
        text.chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>()
            .into()
    } else {
        text.into()
    };
    let trimmed = compact.trim_end_matches('=');
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| STANDARD.decode(compact.as_bytes()))
        .map_err(|e| e.to_string())
}

/// Why a signing time is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SkewError {
    /// The signature has no signingTime.
    #[error("the signature has no signing time")]
    Missing,
    /// The signing time is further from `now` than the allowance.
    #[error("signing time {signing_time} is more than {allowance} from now ({now})")]
    Skewed {
        /// The signing time.
        signing_time: OffsetDateTime,
        /// The server's time.
        now: OffsetDateTime,
        /// The allowance.
        allowance: Duration,
    },
}

/// Accepts `signing_time` when it is within `allowance` of `now`, either way.
pub fn check_skew(
    signing_time: Option<OffsetDateTime>,
    now: OffsetDateTime,
    allowance: Duration,
) -> Result<(), SkewError> {
    let signing_time = signing_time.ok_or(SkewError::Missing)?;
    if (signing_time - now).abs() > allowance.abs() {
        return Err(SkewError::Skewed {
            signing_time,
            now,
            allowance,
        });
    }
    Ok(())
}
