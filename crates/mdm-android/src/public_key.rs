//! The device's public key as sent at registration, and the checks that
//! make it usable for request signatures.

use mdm_pki::const_oid::db::rfc5912::RSA_ENCRYPTION;
use mdm_pki::der::asn1::UintRef;
use mdm_pki::der::{Decode, Encode, Reader, SliceReader};
use mdm_pki::spki::SubjectPublicKeyInfoOwned;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::validate::{base64_bytes, to_base64};

/// Smallest RSA device key accepted.
pub const MIN_DEVICE_KEY_BITS: usize = 2048;
/// Largest RSA device key accepted.
pub const MAX_DEVICE_KEY_BITS: usize = 8192;
/// Largest decoded CSR or SPKI.
const MAX_DER_LEN: usize = 16 * 1024;

/// The device's RSA public key: a PKCS#10 CSR (preferred: it proves
/// possession of the private key and can be issued as is) or a bare
/// SubjectPublicKeyInfo. Standard base64 of the DER.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum DevicePublicKey {
    /// `{"csr": "<base64 DER CertificationRequest>"}`.
    Csr(String),
    /// `{"spki": "<base64 DER SubjectPublicKeyInfo>"}`.
    Spki(String),
}

impl DevicePublicKey {
    /// Wraps a DER CSR.
    pub fn from_csr_der(der: &[u8]) -> Self {
        Self::Csr(to_base64(der))
    }

    /// Wraps a DER SubjectPublicKeyInfo.
    pub fn from_spki_der(der: &[u8]) -> Self {
        Self::Spki(to_base64(der))
    }

    /// The decoded DER (CSR or SPKI as sent).
    pub fn der(&self) -> Result<Vec<u8>, ValidationError> {
        match self {
            Self::Csr(b64) => base64_bytes("public_key.csr", b64, MAX_DER_LEN),
            Self::Spki(b64) => base64_bytes("public_key.spki", b64, MAX_DER_LEN),
        }
    }

    /// The SubjectPublicKeyInfo DER to verify request signatures with.
    /// For a CSR, its signature (proof of possession) is verified first.
    /// The key must be RSA of [`MIN_DEVICE_KEY_BITS`] to
    /// [`MAX_DEVICE_KEY_BITS`] bits.
    pub fn spki_der(&self) -> Result<Vec<u8>, ValidationError> {
        let der = self.der()?;
        let spki = match self {
            Self::Csr(_) => {
                let field = "public_key.csr";
                mdm_pki::csr_from_der(&der).map_err(|_| ValidationError::BadFormat {
                    field,
                    reason: "not a DER PKCS#10 request",
                })?;
                let (csr, _) =
                    mdm_pki::verify_csr(&der).map_err(|_| ValidationError::BadFormat {
                        field,
                        reason: "the request's signature does not verify",
                    })?;
                check_rsa(field, &csr.info.public_key)?;
                csr.info.public_key
            }
            Self::Spki(_) => {
                let field = "public_key.spki";
                let spki =
                    mdm_pki::spki_from_der(&der).map_err(|_| ValidationError::BadFormat {
                        field,
                        reason: "not a DER SubjectPublicKeyInfo",
                    })?;
                check_rsa(field, &spki)?;
                spki
            }
        };
        spki.to_der().map_err(|_| ValidationError::BadFormat {
            field: "public_key",
            reason: "the public key does not re-encode",
        })
    }
}

fn check_rsa(field: &'static str, spki: &SubjectPublicKeyInfoOwned) -> Result<(), ValidationError> {
    if spki.algorithm.oid != RSA_ENCRYPTION {
        return Err(ValidationError::BadFormat {
            field,
            reason: "the key must be RSA",
        });
    }
    let bits = rsa_modulus_bits(spki).ok_or(ValidationError::BadFormat {
        field,
        reason: "malformed RSA public key",
    })?;
    if !(MIN_DEVICE_KEY_BITS..=MAX_DEVICE_KEY_BITS).contains(&bits) {
        return Err(ValidationError::BadFormat {
            field,
            reason: "the RSA key must have 2048 to 8192 bits",
        });
    }
    Ok(())
}

/// Bit length of the modulus of an RSA SubjectPublicKeyInfo.
fn rsa_modulus_bits(spki: &SubjectPublicKeyInfoOwned) -> Option<usize> {
    let bytes = spki.subject_public_key.as_bytes()?;
    let mut reader = SliceReader::new(bytes).ok()?;
    let bits = reader
        .sequence(|r| {
            let modulus = UintRef::decode(r)?;
            let _exponent = UintRef::decode(r)?;
            let m = modulus.as_bytes();
            let first = m.first().copied().unwrap_or(0);
            Ok::<_, mdm_pki::der::Error>(
                m.len().saturating_sub(1) * 8 + (8 - first.leading_zeros() as usize),
            )
        })
        .ok()?;
    reader.is_finished().then_some(bits)
}
