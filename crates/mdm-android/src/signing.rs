//! Request signing: every agent request after registration is signed with
//! the device key (never a shared secret).
//!
//! The device signs, with RSA PKCS#1 v1.5 and SHA-256, the canonical string
//!
//! ```text
//! METHOD\nPATH\nTIMESTAMP\nNONCE\nSHA256(body) as lower-case hex
//! ```
//!
//! where METHOD is upper-case, PATH is the request target as sent (path
//! and query, before any proxy rewrites it) and TIMESTAMP is Unix seconds.
//! It sends four headers: [`DEVICE_HEADER`] (the device id),
//! [`TIMESTAMP_HEADER`], [`NONCE_HEADER`] and [`SIGNATURE_HEADER`] (standard
//! base64). The server verifies with the SPKI stored at registration and
//! remembers nonces: replay tracking is its job, this module exposes the
//! nonce and how long it must be kept.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use mdm_pki::{DigestAlg, RsaKey, spki_from_der, verify_rsa};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The device id (UUID from the registration response).
pub const DEVICE_HEADER: &str = "X-MDM-Device";
/// The tenant (slug) the device is registered in. Not signed: the server
/// looks the device key up by tenant and device id, so a changed tenant only
/// finds no device (or a key that does not verify).
pub const TENANT_HEADER: &str = "X-MDM-Tenant";
/// Unix seconds when the request was signed.
pub const TIMESTAMP_HEADER: &str = "X-MDM-Timestamp";
/// A fresh random value per request.
pub const NONCE_HEADER: &str = "X-MDM-Nonce";
/// Base64 RSA-PKCS1v1.5-SHA256 signature over the canonical string.
pub const SIGNATURE_HEADER: &str = "X-MDM-Signature";
/// A sensible clock-skew allowance for phones (either direction).
pub const DEFAULT_MAX_SKEW: Duration = Duration::minutes(5);

/// Longest signature header accepted (an 8192-bit RSA signature is 1368).
const MAX_SIGNATURE_B64: usize = 2048;

/// Why a request could not be signed or was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A signature header is absent.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// A signature header does not parse.
    #[error("malformed header {header}: {reason}")]
    MalformedHeader {
        /// The header.
        header: &'static str,
        /// What is expected.
        reason: &'static str,
    },
    /// The method or path cannot be put in a canonical string.
    #[error("request {0} is not signable")]
    BadRequestPart(&'static str),
    /// Signed longer ago than the allowance.
    #[error("timestamp {timestamp} is older than {max_skew_secs} s (now {now})")]
    StaleTimestamp {
        /// The request's timestamp.
        timestamp: i64,
        /// The server's time.
        now: i64,
        /// The allowance in seconds.
        max_skew_secs: i64,
    },
    /// Signed further in the future than the allowance.
    #[error("timestamp {timestamp} is more than {max_skew_secs} s ahead (now {now})")]
    FutureTimestamp {
        /// The request's timestamp.
        timestamp: i64,
        /// The server's time.
        now: i64,
        /// The allowance in seconds.
        max_skew_secs: i64,
    },
    /// The signature does not verify with the device's key.
    #[error("the signature does not verify")]
    BadSignature,
    /// The stored device key is unusable (not an RSA SPKI).
    #[error("device key unusable: {0}")]
    BadKey(String),
    /// Signing failed (builder side).
    #[error("signing failed: {0}")]
    Sign(String),
}

/// A request nonce: 16–64 characters of the URL-safe base64 alphabet.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Nonce(String);

impl Nonce {
    /// 16 random bytes from the system generator (22 characters).
    pub fn generate() -> Result<Self, SigningError> {
        let bytes = mdm_pki::random_bytes(16).map_err(|e| SigningError::Sign(e.to_string()))?;
        Ok(Self(URL_SAFE_NO_PAD.encode(&*bytes)))
    }

    /// Checks a nonce received or chosen by the caller.
    pub fn parse(value: &str) -> Result<Self, SigningError> {
        let ok = (16..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(SigningError::MalformedHeader {
                header: NONCE_HEADER,
                reason: "16 to 64 characters of A-Z a-z 0-9 - _",
            })
        }
    }

    /// The nonce text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({})", self.0)
    }
}

/// The parts of an HTTP request that are signed.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'a> {
    /// The method (`POST`); compared upper-case.
    pub method: &'a str,
    /// The request target as sent: path and query (`/android/v1/commands`).
    pub path: &'a str,
    /// The exact body bytes (empty for `GET`).
    pub body: &'a [u8],
}

impl RequestParts<'_> {
    /// The canonical string for these parts at `timestamp` with `nonce`.
    pub fn canonical_string(&self, timestamp: i64, nonce: &Nonce) -> Result<String, SigningError> {
        let method_ok = !self.method.is_empty()
            && self.method.len() <= 16
            && self.method.bytes().all(|b| b.is_ascii_alphabetic());
        if !method_ok {
            return Err(SigningError::BadRequestPart("method"));
        }
        let path_ok = self.path.starts_with('/')
            && self.path.len() <= 2048
            && self.path.bytes().all(|b| b.is_ascii_graphic());
        if !path_ok {
            return Err(SigningError::BadRequestPart("path"));
        }
        Ok(format!(
            "{}\n{}\n{}\n{}\n{}",
            self.method.to_ascii_uppercase(),
            self.path,
            timestamp,
            nonce.as_str(),
            hex::encode(DigestAlg::Sha256.digest(self.body))
        ))
    }
}

/// The four signature headers, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureHeaders {
    /// [`DEVICE_HEADER`].
    pub device_id: Uuid,
    /// [`TIMESTAMP_HEADER`], Unix seconds.
    pub timestamp: i64,
    /// [`NONCE_HEADER`].
    pub nonce: Nonce,
    /// [`SIGNATURE_HEADER`], decoded.
    pub signature: Vec<u8>,
}

impl SignatureHeaders {
    /// Reads the headers through `lookup` (give it a case-insensitive
    /// header map lookup). Answers which header is missing or malformed.
    pub fn parse<'h>(lookup: impl Fn(&str) -> Option<&'h str>) -> Result<Self, SigningError> {
        let get = |name: &'static str| lookup(name).ok_or(SigningError::MissingHeader(name));
        let malformed = |header: &'static str, reason: &'static str| {
            SigningError::MalformedHeader { header, reason }
        };
        let device = get(DEVICE_HEADER)?;
        let device_id =
            Uuid::try_parse(device).map_err(|_| malformed(DEVICE_HEADER, "expected a UUID"))?;
        let timestamp = get(TIMESTAMP_HEADER)?;
        if timestamp.is_empty()
            || timestamp.len() > 12
            || !timestamp.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(malformed(TIMESTAMP_HEADER, "expected Unix seconds"));
        }
        let timestamp = timestamp
            .parse::<i64>()
            .map_err(|_| malformed(TIMESTAMP_HEADER, "expected Unix seconds"))?;
        let nonce = Nonce::parse(get(NONCE_HEADER)?)?;
        let signature = get(SIGNATURE_HEADER)?;
        if signature.is_empty() || signature.len() > MAX_SIGNATURE_B64 {
            return Err(malformed(SIGNATURE_HEADER, "empty or too long"));
        }
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| malformed(SIGNATURE_HEADER, "expected standard base64"))?;
        Ok(Self {
            device_id,
            timestamp,
            nonce,
            signature,
        })
    }

    /// The headers as name/value pairs, ready to send.
    pub fn to_pairs(&self) -> [(&'static str, String); 4] {
        [
            (DEVICE_HEADER, self.device_id.to_string()),
            (TIMESTAMP_HEADER, self.timestamp.to_string()),
            (NONCE_HEADER, self.nonce.as_str().to_owned()),
            (SIGNATURE_HEADER, STANDARD.encode(&self.signature)),
        ]
    }
}

/// Signs requests for one device (the simulator's and the tests' side).
#[derive(Clone, Copy, Debug)]
pub struct RequestSigner<'k> {
    key: &'k RsaKey,
    device_id: Uuid,
}

impl<'k> RequestSigner<'k> {
    /// A signer for `device_id` holding `key`.
    pub fn new(key: &'k RsaKey, device_id: Uuid) -> Self {
        Self { key, device_id }
    }

    /// Signs `parts` as made at `at` with `nonce` (see [`Nonce::generate`]).
    pub fn sign(
        &self,
        parts: &RequestParts<'_>,
        at: OffsetDateTime,
        nonce: Nonce,
    ) -> Result<SignatureHeaders, SigningError> {
        let timestamp = at.unix_timestamp();
        let canonical = parts.canonical_string(timestamp, &nonce)?;
        let signature = self
            .key
            .sign(DigestAlg::Sha256, canonical.as_bytes())
            .map_err(|e| SigningError::Sign(e.to_string()))?;
        Ok(SignatureHeaders {
            device_id: self.device_id,
            timestamp,
            nonce,
            signature,
        })
    }
}

/// A request whose signature verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// The device that signed it.
    pub device_id: Uuid,
    /// When it was signed.
    pub timestamp: OffsetDateTime,
    /// Its nonce: refuse the request if this device used it before.
    pub nonce: Nonce,
    /// Until when the nonce must be remembered: later, the timestamp check
    /// alone refuses a replay.
    pub remember_nonce_until: OffsetDateTime,
}

/// Verifies a signed request against the device key stored at registration
/// (`spki_der`): the timestamp must be within `max_skew` of `now` either
/// way, then the signature must verify over the canonical string.
pub fn verify_request(
    spki_der: &[u8],
    parts: &RequestParts<'_>,
    headers: &SignatureHeaders,
    now: OffsetDateTime,
    max_skew: Duration,
) -> Result<VerifiedRequest, SigningError> {
    let skew = max_skew.whole_seconds().abs();
    let now_s = now.unix_timestamp();
    let timestamp = headers.timestamp;
    if now_s.saturating_sub(timestamp) > skew {
        return Err(SigningError::StaleTimestamp {
            timestamp,
            now: now_s,
            max_skew_secs: skew,
        });
    }
    if timestamp.saturating_sub(now_s) > skew {
        return Err(SigningError::FutureTimestamp {
            timestamp,
            now: now_s,
            max_skew_secs: skew,
        });
    }
    let signed_at = OffsetDateTime::from_unix_timestamp(timestamp).map_err(|_| {
        SigningError::MalformedHeader {
            header: TIMESTAMP_HEADER,
            reason: "out of range",
        }
    })?;
    let spki = spki_from_der(spki_der).map_err(|e| SigningError::BadKey(e.to_string()))?;
    let canonical = parts.canonical_string(timestamp, &headers.nonce)?;
    verify_rsa(
        &spki,
        DigestAlg::Sha256,
        canonical.as_bytes(),
        &headers.signature,
    )
    .map_err(|e| match e {
        mdm_pki::PkiError::BadSignature(_) => SigningError::BadSignature,
        other => SigningError::BadKey(other.to_string()),
    })?;
    Ok(VerifiedRequest {
        device_id: headers.device_id,
        timestamp: signed_at,
        nonce: headers.nonce.clone(),
        remember_nonce_until: signed_at + Duration::seconds(skew),
    })
}
