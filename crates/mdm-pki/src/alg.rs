//! Digest and signature algorithms (RSA PKCS#1 v1.5, ECDSA): identifiers,
//! hashing and verification.

use aws_lc_rs::{digest, signature as lc_sig};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::Null;
use der::{Any, Decode};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use std::sync::OnceLock;

use crate::PkiError;

/// A message digest used with RSA PKCS#1 v1.5 signatures and CMS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DigestAlg {
    /// SHA-1: only for legacy peers (Debian's scepclient, old devices).
    Sha1,
    /// SHA-256: the default everywhere.
    Sha256,
    /// SHA-384 (verification of third-party certificates).
    Sha384,
    /// SHA-512.
    Sha512,
}

impl DigestAlg {
    /// The digest's object identifier.
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => rfc5912::ID_SHA_1,
            Self::Sha256 => rfc5912::ID_SHA_256,
            Self::Sha384 => rfc5912::ID_SHA_384,
            Self::Sha512 => rfc5912::ID_SHA_512,
        }
    }

    /// Maps a digest OID back to the algorithm.
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Self> {
        [Self::Sha1, Self::Sha256, Self::Sha384, Self::Sha512]
            .into_iter()
            .find(|d| d.oid() == *oid)
    }

    /// Human-readable name ("SHA-256").
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA-1",
            Self::Sha256 => "SHA-256",
            Self::Sha384 => "SHA-384",
            Self::Sha512 => "SHA-512",
        }
    }

    /// Hashes `data`.
    pub fn digest(self, data: &[u8]) -> Vec<u8> {
        digest::digest(self.lc(), data).as_ref().to_vec()
    }

    fn lc(self) -> &'static digest::Algorithm {
        match self {
            Self::Sha1 => &digest::SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => &digest::SHA256,
            Self::Sha384 => &digest::SHA384,
            Self::Sha512 => &digest::SHA512,
        }
    }

    /// Digest AlgorithmIdentifier with absent parameters (RFC 5754).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.oid(),
            parameters: None,
        }
    }

    /// OID of `<digest>WithRSAEncryption`.
    pub fn rsa_signature_oid(self) -> ObjectIdentifier {
        match self {
            Self::Sha1 => rfc5912::SHA_1_WITH_RSA_ENCRYPTION,
            Self::Sha256 => rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
            Self::Sha384 => rfc5912::SHA_384_WITH_RSA_ENCRYPTION,
            Self::Sha512 => rfc5912::SHA_512_WITH_RSA_ENCRYPTION,
        }
    }

    /// `<digest>WithRSAEncryption` AlgorithmIdentifier with NULL parameters (RFC 8017).
    pub fn rsa_signature_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned {
            oid: self.rsa_signature_oid(),
            parameters: Some(Any::from(Null)),
        }
    }

    /// Name of the RSA signature algorithm ("sha256WithRSAEncryption").
    pub fn rsa_signature_name(self) -> &'static str {
        match self {
            Self::Sha1 => "sha1WithRSAEncryption",
            Self::Sha256 => "sha256WithRSAEncryption",
            Self::Sha384 => "sha384WithRSAEncryption",
            Self::Sha512 => "sha512WithRSAEncryption",
        }
    }
}

/// Resolves the digest of an RSA PKCS#1 v1.5 signature algorithm identifier.
///
/// `<digest>WithRSAEncryption` names its digest. Plain `rsaEncryption` (as Go's
/// pkcs7 writes in SignerInfo) takes the digest from `digest_hint`, the SignerInfo's
/// digestAlgorithm.
pub fn rsa_signature_digest(
    alg: &AlgorithmIdentifierOwned,
    digest_hint: Option<DigestAlg>,
) -> Result<DigestAlg, PkiError> {
    if alg.oid == rfc5912::RSA_ENCRYPTION {
        return digest_hint.ok_or_else(|| unsupported(&alg.oid));
    }
    [
        DigestAlg::Sha1,
        DigestAlg::Sha256,
        DigestAlg::Sha384,
        DigestAlg::Sha512,
    ]
    .into_iter()
    .find(|d| d.rsa_signature_oid() == alg.oid)
    .ok_or_else(|| unsupported(&alg.oid))
}

/// Resolves the digest of a signature algorithm identifier, RSA or ECDSA:
/// `<digest>WithRSAEncryption` and `ecdsa-with-<digest>` name theirs; bare
/// `rsaEncryption` or `id-ecPublicKey` (as some CMS writers put in a
/// SignerInfo) take it from `digest_hint`.
pub fn signature_digest(
    alg: &AlgorithmIdentifierOwned,
    digest_hint: Option<DigestAlg>,
) -> Result<DigestAlg, PkiError> {
    let ecdsa = [
        (rfc5912::ECDSA_WITH_SHA_256, DigestAlg::Sha256),
        (rfc5912::ECDSA_WITH_SHA_384, DigestAlg::Sha384),
        (rfc5912::ECDSA_WITH_SHA_512, DigestAlg::Sha512),
    ];
    if let Some((_, d)) = ecdsa.iter().find(|(oid, _)| *oid == alg.oid) {
        return Ok(*d);
    }
    if alg.oid == rfc5912::ID_EC_PUBLIC_KEY {
        return digest_hint.ok_or_else(|| unsupported(&alg.oid));
    }
    rsa_signature_digest(alg, digest_hint)
}

/// Verifies a signature made with `digest` by the key in `spki`: RSA
/// PKCS#1 v1.5 (see [`verify_rsa`]) or ECDSA on P-256 or P-384 (DER
/// `ECDSA-Sig-Value`).
pub fn verify_signature(
    spki: &SubjectPublicKeyInfoOwned,
    digest: DigestAlg,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    if spki.algorithm.oid != rfc5912::ID_EC_PUBLIC_KEY {
        return verify_rsa(spki, digest, message, signature);
    }
    let curve: ObjectIdentifier = spki
        .algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.decode_as().ok())
        .ok_or_else(|| PkiError::KeyRejected("EC public key without a named curve".into()))?;
    let alg: &'static lc_sig::EcdsaVerificationAlgorithm = match (curve, digest) {
        (c, DigestAlg::Sha256) if c == rfc5912::SECP_256_R_1 => &lc_sig::ECDSA_P256_SHA256_ASN1,
        (c, DigestAlg::Sha384) if c == rfc5912::SECP_256_R_1 => &lc_sig::ECDSA_P256_SHA384_ASN1,
        (c, DigestAlg::Sha512) if c == rfc5912::SECP_256_R_1 => &lc_sig::ECDSA_P256_SHA512_ASN1,
        (c, DigestAlg::Sha256) if c == rfc5912::SECP_384_R_1 => &lc_sig::ECDSA_P384_SHA256_ASN1,
        (c, DigestAlg::Sha384) if c == rfc5912::SECP_384_R_1 => &lc_sig::ECDSA_P384_SHA384_ASN1,
        (c, DigestAlg::Sha512) if c == rfc5912::SECP_384_R_1 => &lc_sig::ECDSA_P384_SHA512_ASN1,
        (c, d) => {
            return Err(PkiError::UnsupportedAlgorithm(format!(
                "ECDSA on {} with {}",
                oid_name(&c),
                d.name()
            )));
        }
    };
    let point = spki
        .subject_public_key
        .as_bytes()
        .ok_or(PkiError::KeyRejected(
            "public key bit string has unused bits".into(),
        ))?;
    lc_sig::UnparsedPublicKey::new(alg, point)
        .verify(message, signature)
        .map_err(|_| PkiError::BadSignature("ECDSA signature does not verify"))
}

/// Describes an OID as "name (dotted)" for messages.
pub fn oid_name(oid: &ObjectIdentifier) -> String {
    match const_oid::db::DB.by_oid(oid) {
        Some(name) => format!("{name} ({oid})"),
        None => oid.to_string(),
    }
}

fn unsupported(oid: &ObjectIdentifier) -> PkiError {
    PkiError::UnsupportedAlgorithm(oid_name(oid))
}

/// Verifies an RSA PKCS#1 v1.5 signature made with `digest` by the key in `spki`.
///
/// Keys from 1024 to 8192 bits are accepted, as devices still create 1024-bit
/// SCEP keys when a profile leaves `Keysize` unset.
pub fn verify_rsa(
    spki: &SubjectPublicKeyInfoOwned,
    digest: DigestAlg,
    message: &[u8],
    signature: &[u8],
) -> Result<(), PkiError> {
    lc_sig::UnparsedPublicKey::new(rsa_parameters(digest), rsa_key_bits(spki)?)
        .verify(message, signature)
        .map_err(|_| bad_rsa_signature())
}

/// An RSA public key kept for many verifications: parsed once per digest it
/// is used with (the parse and its Montgomery set-up cost about a fifth of a
/// 2048-bit verification). Same rules as [`verify_rsa`].
pub struct RsaPublicKey {
    key: Vec<u8>,
    parsed: [OnceLock<Option<lc_sig::ParsedPublicKey>>; 4],
}

impl std::fmt::Debug for RsaPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaPublicKey")
            .field("key_len", &self.key.len())
            .finish()
    }
}

impl RsaPublicKey {
    /// The RSA key of `spki`; other key types are refused.
    pub fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self, PkiError> {
        Ok(Self {
            key: rsa_key_bits(spki)?.to_vec(),
            parsed: Default::default(),
        })
    }

    /// Verifies an RSA PKCS#1 v1.5 signature made with `digest`.
    pub fn verify(
        &self,
        digest: DigestAlg,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), PkiError> {
        let slot = match digest {
            DigestAlg::Sha1 => &self.parsed[0],
            DigestAlg::Sha256 => &self.parsed[1],
            DigestAlg::Sha384 => &self.parsed[2],
            DigestAlg::Sha512 => &self.parsed[3],
        };
        // A key the parser refuses verifies nothing (as with `verify_rsa`).
        slot.get_or_init(|| lc_sig::ParsedPublicKey::new(rsa_parameters(digest), &self.key).ok())
            .as_ref()
            .ok_or_else(bad_rsa_signature)?
            .verify_sig(message, signature)
            .map_err(|_| bad_rsa_signature())
    }
}

fn rsa_key_bits(spki: &SubjectPublicKeyInfoOwned) -> Result<&[u8], PkiError> {
    if spki.algorithm.oid != rfc5912::RSA_ENCRYPTION {
        return Err(PkiError::UnsupportedAlgorithm(format!(
            "public key {}",
            oid_name(&spki.algorithm.oid)
        )));
    }
    spki.subject_public_key
        .as_bytes()
        .ok_or(PkiError::KeyRejected(
            "public key bit string has unused bits".into(),
        ))
}

fn rsa_parameters(digest: DigestAlg) -> &'static lc_sig::RsaParameters {
    match digest {
        DigestAlg::Sha1 => &lc_sig::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        DigestAlg::Sha256 => &lc_sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        DigestAlg::Sha384 => &lc_sig::RSA_PKCS1_2048_8192_SHA384,
        DigestAlg::Sha512 => &lc_sig::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY,
    }
}

fn bad_rsa_signature() -> PkiError {
    PkiError::BadSignature("RSA PKCS#1 v1.5 signature does not verify")
}

/// Parses a DER SubjectPublicKeyInfo.
pub fn spki_from_der(der: &[u8]) -> Result<SubjectPublicKeyInfoOwned, PkiError> {
    SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| PkiError::malformed("public key", e))
}
