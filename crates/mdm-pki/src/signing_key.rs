//! A content-signing private key of either kind, as an administrator brings
//! it: the key of an identity from another CA (a public one, or the
//! organisation's own) that signs management profiles instead of the key the
//! tenant CA certifies.

use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use crate::signed_data::ContentKey;
use crate::{EcKey, PkiError, RsaKey};

/// The smallest RSA key accepted for signing content.
pub const MIN_RSA_SIGNING_BITS: usize = 2048;

/// An RSA, ECDSA P-256 or P-384 private key that signs CMS content.
#[derive(Debug)]
pub enum SigningKey {
    /// RSA, signing with PKCS#1 v1.5 and SHA-256.
    Rsa(Box<RsaKey>),
    /// ECDSA on P-256 with SHA-256, or on P-384 with SHA-384.
    Ec(EcKey),
}

impl SigningKey {
    /// Loads an unencrypted PKCS#8 `PrivateKeyInfo` (DER) of either kind.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        let algorithm = pkcs8_algorithm(der)?;
        match algorithm {
            a if a == const_oid::db::rfc5912::RSA_ENCRYPTION => {
                Self::rsa(RsaKey::from_pkcs8_der(der).map_err(rsa_rejected)?)
            }
            a if a == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY => {
                Ok(Self::Ec(EcKey::from_pkcs8_der(der).map_err(|_| {
                    PkiError::KeyRejected("only ECDSA keys on P-256 and P-384 are supported".into())
                })?))
            }
            other => Err(PkiError::UnsupportedAlgorithm(format!(
                "{} keys cannot sign profiles (RSA, ECDSA P-256 or P-384 only)",
                crate::oid_name(&other)
            ))),
        }
    }

    /// Loads the one unencrypted private key of a PEM text (other blocks,
    /// such as certificates, and text around them are ignored): `PRIVATE
    /// KEY` (PKCS#8), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (RFC
    /// 5915). An encrypted key is refused with a message saying how to give it.
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let keys: Vec<_> = crate::pem_blocks(pem)?
            .into_iter()
            .filter(|b| b.label.ends_with("PRIVATE KEY"))
            .collect();
        let block = match keys.as_slice() {
            [one] => one,
            [] => {
                return Err(PkiError::malformed(
                    "PEM private key",
                    "no -----BEGIN … PRIVATE KEY----- block",
                ));
            }
            _ => {
                return Err(PkiError::malformed(
                    "PEM private key",
                    "more than one private key: give the signing key alone",
                ));
            }
        };
        let (label, der) = der::pem::decode_vec(block.text.as_bytes())
            .map_err(|e| PkiError::malformed("PEM private key", e))?;
        let der = Zeroizing::new(der);
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => Self::rsa(RsaKey::from_pkcs1_der(&der).map_err(rsa_rejected)?),
            "EC PRIVATE KEY" => Ok(Self::Ec(EcKey::from_sec1_der(&der).map_err(|_| {
                PkiError::KeyRejected("only ECDSA keys on P-256 and P-384 are supported".into())
            })?)),
            "ENCRYPTED PRIVATE KEY" => Err(PkiError::KeyRejected(
                "the key is encrypted: give it unencrypted (openssl pkey -in key.pem -out plain.pem)"
                    .into(),
            )),
            other => Err(PkiError::KeyRejected(format!(
                "a PEM block labelled {other:?} is not a private key"
            ))),
        }
    }

    fn rsa(key: RsaKey) -> Result<Self, PkiError> {
        if key.bits() < MIN_RSA_SIGNING_BITS {
            return Err(too_small(Some(key.bits())));
        }
        Ok(Self::Rsa(Box::new(key)))
    }

    /// The public key as a SubjectPublicKeyInfo.
    pub fn public_key_spki(&self) -> &SubjectPublicKeyInfoOwned {
        match self {
            Self::Rsa(k) => k.public_key_spki(),
            Self::Ec(k) => k.public_key_spki(),
        }
    }

    /// Whether `spki` (a certificate's public key) is this key's.
    pub fn matches(&self, spki: &SubjectPublicKeyInfoOwned) -> bool {
        let own = self.public_key_spki();
        own.algorithm.oid == spki.algorithm.oid && own.subject_public_key == spki.subject_public_key
    }

    /// Exports the key as PKCS#8 DER; the buffer is wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        match self {
            Self::Rsa(k) => k.to_pkcs8_der(),
            Self::Ec(k) => k.to_pkcs8_der(),
        }
    }

    /// What kind of key this is, for people: `RSA 2048`, `ECDSA P-384`.
    pub fn describe(&self) -> String {
        match self {
            Self::Rsa(k) => format!("RSA {}", k.bits()),
            Self::Ec(k) => format!("ECDSA {}", k.curve().name()),
        }
    }
}

impl<'k> From<&'k SigningKey> for ContentKey<'k> {
    fn from(key: &'k SigningKey) -> Self {
        match key {
            SigningKey::Rsa(k) => Self::Rsa(k.as_ref()),
            SigningKey::Ec(k) => Self::Ec(k),
        }
    }
}

fn too_small(bits: Option<usize>) -> PkiError {
    let size = bits.map_or_else(|| "this size".to_string(), |b| format!("{b} bits"));
    PkiError::KeyRejected(format!(
        "an RSA key of {size} is too small to sign profiles (at least {MIN_RSA_SIGNING_BITS} bits)"
    ))
}

/// aws-lc refuses RSA keys under 2048 bits as it loads them: say so plainly.
fn rsa_rejected(e: PkiError) -> PkiError {
    match e {
        PkiError::KeyRejected(m) if m.contains("TooSmall") => too_small(None),
        other => other,
    }
}

/// The algorithm OID of a PKCS#8 `PrivateKeyInfo`, read without decoding the key.
fn pkcs8_algorithm(der: &[u8]) -> Result<const_oid::ObjectIdentifier, PkiError> {
    use der::{Decode, Reader, SliceReader};
    let mut reader =
        SliceReader::new(der).map_err(|e| PkiError::malformed("PKCS#8 private key", e))?;
    let oid = reader
        .sequence(|outer| -> der::Result<const_oid::ObjectIdentifier> {
            let _version = u8::decode(outer)?;
            let oid = outer.sequence(|alg| -> der::Result<const_oid::ObjectIdentifier> {
                let oid = const_oid::ObjectIdentifier::decode(alg)?;
                alg.read_slice(alg.remaining_len())?;
                Ok(oid)
            })?;
            // The key itself (and any attributes) is left to the key's loader.
            outer.read_slice(outer.remaining_len())?;
            Ok(oid)
        })
        .map_err(|e: der::Error| PkiError::malformed("PKCS#8 private key", e))?;
    Ok(oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_both_kinds_and_matches_their_public_keys() {
        let ec = EcKey::generate().unwrap();
        let der = ec.to_pkcs8_der().unwrap();
        let loaded = SigningKey::from_pkcs8_der(&der).unwrap();
        assert_eq!(loaded.describe(), "ECDSA P-256");
        assert!(loaded.matches(ec.public_key_spki()));

        let p384 = EcKey::generate_on(crate::Curve::P384).unwrap();
        let loaded = SigningKey::from_pkcs8_der(&p384.to_pkcs8_der().unwrap()).unwrap();
        assert_eq!(loaded.describe(), "ECDSA P-384");
        assert!(loaded.matches(p384.public_key_spki()));

        let rsa = RsaKey::generate(2048).unwrap();
        let pem = rsa.to_pkcs8_pem().unwrap();
        let text = format!("Bag Attributes\n    localKeyID: 01\n{}", pem.as_str());
        let loaded = SigningKey::from_pem(&text).unwrap();
        assert_eq!(loaded.describe(), "RSA 2048");
        assert!(loaded.matches(rsa.public_key_spki()));
        assert!(!loaded.matches(ec.public_key_spki()));
    }

    #[test]
    fn refuses_what_cannot_sign_with_a_reason() {
        let e = SigningKey::from_pem(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("encrypted"), "{e}");
        let e = SigningKey::from_pem("no pem here").unwrap_err().to_string();
        assert!(e.contains("no -----BEGIN"), "{e}");
        let e = SigningKey::from_pkcs8_der(&[0x30, 0x03, 0x02, 0x01])
            .unwrap_err()
            .to_string();
        assert!(e.contains("malformed"), "{e}");
        let two = format!(
            "{}{}",
            RsaKey::generate(2048)
                .unwrap()
                .to_pkcs8_pem()
                .unwrap()
                .as_str(),
            RsaKey::generate(2048)
                .unwrap()
                .to_pkcs8_pem()
                .unwrap()
                .as_str()
        );
        let e = SigningKey::from_pem(&two).unwrap_err().to_string();
        assert!(e.contains("more than one private key"), "{e}");
    }
}
