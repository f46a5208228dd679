//! ECDSA P-256 keys backed by aws-lc-rs: content signers such as the
//! management-profile signer, whose signatures cost a fraction of an RSA
//! private-key operation.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use crate::{PkiError, alg::spki_from_der};

/// An ECDSA key on P-256 that signs with SHA-256 (DER `ECDSA-Sig-Value`).
pub struct EcKey {
    pair: EcdsaKeyPair,
    spki: SubjectPublicKeyInfoOwned,
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey")
            .field("curve", &"P-256")
            .finish_non_exhaustive()
    }
}

impl EcKey {
    /// Generates a fresh P-256 key.
    pub fn generate() -> Result<Self, PkiError> {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_ASN1_SIGNING)
            .map_err(|_| PkiError::Crypto("ECDSA key generation"))?;
        Self::from_pair(pair)
    }

    /// Loads an unencrypted PKCS#8 `PrivateKeyInfo` (DER) of a P-256 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|e| PkiError::KeyRejected(e.to_string()))?;
        Self::from_pair(pair)
    }

    /// Loads an RFC 5915 `ECPrivateKey` (DER) of a P-256 key, as
    /// `openssl ecparam -genkey` writes it (PEM label `EC PRIVATE KEY`).
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, PkiError> {
        let pair = EcdsaKeyPair::from_private_key_der(&ECDSA_P256_SHA256_ASN1_SIGNING, der)
            .map_err(|e| PkiError::KeyRejected(e.to_string()))?;
        Self::from_pair(pair)
    }

    fn from_pair(pair: EcdsaKeyPair) -> Result<Self, PkiError> {
        let spki_der = pair
            .public_key()
            .as_der()
            .map_err(|_| PkiError::Crypto("public key encoding"))?;
        let spki = spki_from_der(spki_der.as_ref())?;
        Ok(Self { pair, spki })
    }

    /// Exports the key as PKCS#8 DER; the buffer is wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        self.pair
            .to_pkcs8v1()
            .map(|d| Zeroizing::new(d.as_ref().to_vec()))
            .map_err(|_| PkiError::Crypto("ECDSA key export"))
    }

    /// The public key as a SubjectPublicKeyInfo.
    pub fn public_key_spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// Signs `message` with SHA-256; the signature is DER (`ECDSA-Sig-Value`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| PkiError::Crypto("ECDSA signature"))
    }
}
