//! The `signature`/`spki` traits that let RustCrypto's `x509-cert` and `cms`
//! builders sign with an [`RsaKey`].

use der::asn1::BitString;
use spki::{
    AlgorithmIdentifierOwned, DynSignatureAlgorithmIdentifier, EncodePublicKey,
    SignatureBitStringEncoding, SubjectPublicKeyInfoOwned,
};

use crate::{DigestAlg, RsaKey};

/// An [`RsaKey`] bound to one digest: what the builders take as their signer.
///
/// `RsaKey` itself implements the same traits with SHA-256.
#[derive(Clone, Copy, Debug)]
pub struct RsaSigner<'k> {
    key: &'k RsaKey,
    digest: DigestAlg,
}

impl RsaKey {
    /// A signer for the builders using `digest` (SHA-256 is what `RsaKey` uses itself).
    pub fn signer(&self, digest: DigestAlg) -> RsaSigner<'_> {
        RsaSigner { key: self, digest }
    }
}

impl RsaSigner<'_> {
    /// The digest this signer uses.
    pub fn digest(&self) -> DigestAlg {
        self.digest
    }
}

/// A raw RSA PKCS#1 v1.5 signature as produced by [`RsaSigner`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RsaSignature(Vec<u8>);

impl RsaSignature {
    /// The signature bytes (as long as the modulus).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl SignatureBitStringEncoding for RsaSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

/// The public half of a signing key, as the builders' `Keypair::VerifyingKey`.
#[derive(Clone, Debug)]
pub struct SpkiVerifyingKey(SubjectPublicKeyInfoOwned);

impl EncodePublicKey for SpkiVerifyingKey {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::encode_msg(&self.0)?)
    }
}

impl signature::Keypair for RsaSigner<'_> {
    type VerifyingKey = SpkiVerifyingKey;

    fn verifying_key(&self) -> SpkiVerifyingKey {
        SpkiVerifyingKey(self.key.public_key_spki().clone())
    }
}

impl DynSignatureAlgorithmIdentifier for RsaSigner<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(self.digest.rsa_signature_identifier())
    }
}

impl signature::Signer<RsaSignature> for RsaSigner<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<RsaSignature, signature::Error> {
        self.key
            .sign(self.digest, msg)
            .map(RsaSignature)
            .map_err(|_| signature::Error::new())
    }
}

impl signature::Keypair for RsaKey {
    type VerifyingKey = SpkiVerifyingKey;

    fn verifying_key(&self) -> SpkiVerifyingKey {
        SpkiVerifyingKey(self.public_key_spki().clone())
    }
}

impl DynSignatureAlgorithmIdentifier for RsaKey {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(DigestAlg::Sha256.rsa_signature_identifier())
    }
}

impl signature::Signer<RsaSignature> for RsaKey {
    fn try_sign(&self, msg: &[u8]) -> Result<RsaSignature, signature::Error> {
        self.sign(DigestAlg::Sha256, msg)
            .map(RsaSignature)
            .map_err(|_| signature::Error::new())
    }
}

/// A DER ECDSA signature as produced by [`crate::EcKey`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcSignature(Vec<u8>);

impl SignatureBitStringEncoding for EcSignature {
    fn to_bitstring(&self) -> der::Result<BitString> {
        BitString::from_bytes(&self.0)
    }
}

impl signature::Keypair for crate::EcKey {
    type VerifyingKey = SpkiVerifyingKey;

    fn verifying_key(&self) -> SpkiVerifyingKey {
        SpkiVerifyingKey(self.public_key_spki().clone())
    }
}

impl DynSignatureAlgorithmIdentifier for crate::EcKey {
    /// ecdsa-with-SHA256 or -SHA384 by the curve, parameters absent (RFC 5758).
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned {
            oid: match self.curve() {
                crate::Curve::P256 => const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
                crate::Curve::P384 => const_oid::db::rfc5912::ECDSA_WITH_SHA_384,
            },
            parameters: None,
        })
    }
}

impl signature::Signer<EcSignature> for crate::EcKey {
    fn try_sign(&self, msg: &[u8]) -> Result<EcSignature, signature::Error> {
        self.sign(msg)
            .map(EcSignature)
            .map_err(|_| signature::Error::new())
    }
}
