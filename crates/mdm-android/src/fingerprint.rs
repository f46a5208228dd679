//! SHA-256 certificate fingerprints as the agent and server exchange them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The SHA-256 of a certificate's DER, written as 64 lower-case hex digits.
///
/// Parsing accepts upper-case hex and normalises it, so fingerprints compare
/// equal however the device formatted them.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of_der(cert_der: &[u8]) -> Self {
        Self(mdm_pki::fingerprint_sha256(cert_der))
    }

    /// From the raw 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits (either case).
    pub fn parse(hex_text: &str) -> Result<Self, BadFingerprint> {
        if hex_text.len() != 64 {
            return Err(BadFingerprint);
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut out).map_err(|_| BadFingerprint)?;
        Ok(Self(out))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl TryFrom<String> for Fingerprint {
    type Error = BadFingerprint;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Fingerprint> for String {
    fn from(f: Fingerprint) -> Self {
        f.to_string()
    }
}

/// A fingerprint that is not 64 hex digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a SHA-256 fingerprint is 64 hex digits")]
pub struct BadFingerprint;
