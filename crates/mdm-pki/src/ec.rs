//! ECDSA keys backed by aws-lc-rs: content signers such as the
//! management-profile signer (P-256), whose signatures cost a fraction of an
//! RSA private-key operation, and uploaded signing identities (P-256 or
//! P-384, each with its own hash).

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P384_SHA384_ASN1_SIGNING, EcdsaKeyPair,
    EcdsaSigningAlgorithm, KeyPair as _,
};
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use crate::{DigestAlg, PkiError, alg::spki_from_der};

/// The curves an [`EcKey`] may be on, each signing with its own hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Curve {
    /// P-256 with SHA-256.
    P256,
    /// P-384 with SHA-384.
    P384,
}

impl Curve {
    fn signing(self) -> &'static EcdsaSigningAlgorithm {
        match self {
            Self::P256 => &ECDSA_P256_SHA256_ASN1_SIGNING,
            Self::P384 => &ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }

    /// The hash its signatures are made over.
    pub fn digest(self) -> DigestAlg {
        match self {
            Self::P256 => DigestAlg::Sha256,
            Self::P384 => DigestAlg::Sha384,
        }
    }

    /// Its name for people: `P-256`.
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }
}

/// An ECDSA key on P-256 or P-384 (DER `ECDSA-Sig-Value` signatures).
pub struct EcKey {
    pair: EcdsaKeyPair,
    spki: SubjectPublicKeyInfoOwned,
    curve: Curve,
}

impl std::fmt::Debug for EcKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey")
            .field("curve", &self.curve.name())
            .finish_non_exhaustive()
    }
}

impl EcKey {
    /// Generates a fresh P-256 key.
    pub fn generate() -> Result<Self, PkiError> {
        Self::generate_on(Curve::P256)
    }

    /// Generates a fresh key on `curve`.
    pub fn generate_on(curve: Curve) -> Result<Self, PkiError> {
        let pair = EcdsaKeyPair::generate(curve.signing())
            .map_err(|_| PkiError::Crypto("ECDSA key generation"))?;
        Self::from_pair(pair, curve)
    }

    /// Loads an unencrypted PKCS#8 `PrivateKeyInfo` (DER) of a P-256 or P-384 key.
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        Self::load(der, EcdsaKeyPair::from_pkcs8)
    }

    /// Loads an RFC 5915 `ECPrivateKey` (DER) of a P-256 or P-384 key, as
    /// `openssl ecparam -genkey` writes it (PEM label `EC PRIVATE KEY`).
    pub fn from_sec1_der(der: &[u8]) -> Result<Self, PkiError> {
        Self::load(der, EcdsaKeyPair::from_private_key_der)
    }

    fn load(
        der: &[u8],
        parse: fn(
            &'static EcdsaSigningAlgorithm,
            &[u8],
        ) -> Result<EcdsaKeyPair, aws_lc_rs::error::KeyRejected>,
    ) -> Result<Self, PkiError> {
        let mut last = None;
        for curve in [Curve::P256, Curve::P384] {
            match parse(curve.signing(), der) {
                Ok(pair) => return Self::from_pair(pair, curve),
                Err(e) => last = Some(e),
            }
        }
        Err(PkiError::KeyRejected(last.map_or_else(
            || "not an ECDSA key".into(),
            |e| e.to_string(),
        )))
    }

    fn from_pair(pair: EcdsaKeyPair, curve: Curve) -> Result<Self, PkiError> {
        let spki_der = pair
            .public_key()
            .as_der()
            .map_err(|_| PkiError::Crypto("public key encoding"))?;
        let spki = spki_from_der(spki_der.as_ref())?;
        Ok(Self { pair, spki, curve })
    }

    /// The curve it is on.
    pub fn curve(&self) -> Curve {
        self.curve
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

    /// Signs `message` with its curve's hash; the signature is DER (`ECDSA-Sig-Value`).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| PkiError::Crypto("ECDSA signature"))
    }
}
