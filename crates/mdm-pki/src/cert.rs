//! X.509 certificates: a self-signed CA, device certificates issued from a CSR,
//! chain checks, fingerprints and PEM/DER.

use std::str::FromStr;

use der::{Decode, DecodePem, Encode, EncodePem, pem::LineEnding};
use spki::SubjectPublicKeyInfoOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::ext::pkix::{BasicConstraints, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::request::CertReq;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::Validity;

use crate::profile::{Kind, Profile};
use crate::{
    DigestAlg, PkiError, RsaKey, check_len, from_x509_time, rsa_signature_digest, to_x509_time,
    verify_rsa,
};

/// Creates a self-signed CA certificate (RSA, SHA-256, BasicConstraints CA:true
/// critical, KeyUsage keyCertSign|cRLSign critical, SKI).
///
/// `subject` is an RFC 4514 string such as `"CN=Acme MDM CA,O=Acme"`; `serial`
/// is big-endian, at most 20 bytes, supplied by the caller (random).
pub fn self_signed_ca(
    key: &RsaKey,
    subject: &str,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, PkiError> {
    self_signed(
        Kind::Ca,
        key,
        parse_name(subject)?,
        serial,
        not_before,
        not_after,
    )
}

/// Creates a self-signed end-entity certificate (CA:false,
/// digitalSignature|keyEncipherment, SKI), as a SCEP requester signs its
/// PKCSReq with. Signed with SHA-256.
pub fn self_signed_cert(
    key: &RsaKey,
    subject: &Name,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, PkiError> {
    self_signed(
        Kind::SelfSignedLeaf,
        key,
        subject.clone(),
        serial,
        not_before,
        not_after,
    )
}

fn self_signed(
    kind: Kind,
    key: &RsaKey,
    subject: Name,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, PkiError> {
    let profile = Profile {
        kind,
        subject,
        issuer: None,
        issuer_key_id: None,
    };
    build(
        profile,
        key,
        key.public_key_spki().clone(),
        serial,
        not_before,
        not_after,
    )
}

/// Issues a device identity certificate for `csr`, signed by the CA with SHA-256.
///
/// The subject is copied verbatim from the CSR; the certificate is v3 with
/// BasicConstraints CA:false (critical), KeyUsage digitalSignature|keyEncipherment
/// (critical), EKU clientAuth, SKI and AKI. The CSR's own signature is NOT checked
/// here: call [`crate::verify_csr`] first.
pub fn issue_leaf(
    ca_key: &RsaKey,
    ca_cert: &Certificate,
    csr: &CertReq,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, PkiError> {
    let profile = Profile::issued_by(Kind::Leaf, ca_cert, csr.info.subject.clone());
    build(
        profile,
        ca_key,
        csr.info.public_key.clone(),
        serial,
        not_before,
        not_after,
    )
}

/// Issues a device identity certificate for a bare public key with a
/// subject the issuer chooses (an RFC 4514 string such as
/// `"CN=<device id>,O=<tenant>"`): the Android agent registers with its
/// key, and the server names the device. Same extensions as [`issue_leaf`].
pub fn issue_leaf_for_key(
    ca_key: &RsaKey,
    ca_cert: &Certificate,
    subject: &str,
    spki: SubjectPublicKeyInfoOwned,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, PkiError> {
    let profile = Profile::issued_by(Kind::Leaf, ca_cert, parse_name(subject)?);
    build(profile, ca_key, spki, serial, not_before, not_after)
}

/// Issues a content-signing certificate (the management-profile signer) for
/// a bare public key of any supported type: CA:false, digitalSignature only,
/// no extended key usage, SKI and AKI; signed by the CA with SHA-256.
pub fn issue_content_signer(
    ca_key: &RsaKey,
    ca_cert: &Certificate,
    subject: &str,
    spki: SubjectPublicKeyInfoOwned,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, PkiError> {
    let profile = Profile::issued_by(Kind::ContentSigner, ca_cert, parse_name(subject)?);
    build(profile, ca_key, spki, serial, not_before, not_after)
}

fn build(
    profile: Profile,
    signer: &RsaKey,
    spki: SubjectPublicKeyInfoOwned,
    serial: &[u8],
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<Certificate, PkiError> {
    if not_after <= not_before {
        return Err(PkiError::InvalidArgument(
            "not_after must be later than not_before".into(),
        ));
    }
    let validity = Validity::new(to_x509_time(not_before)?, to_x509_time(not_after)?);
    let builder = CertificateBuilder::new(profile, serial_number(serial)?, validity, spki)
        .map_err(PkiError::encode)?;
    builder
        .build::<_, crate::RsaSignature>(&signer.signer(DigestAlg::Sha256))
        .map_err(PkiError::encode)
}

/// A positive serial number of at most 20 octets from caller-supplied bytes.
fn serial_number(bytes: &[u8]) -> Result<SerialNumber, PkiError> {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let mut trimmed = bytes[start..].to_vec();
    if trimmed.is_empty() || trimmed.len() > 20 {
        return Err(PkiError::InvalidArgument(
            "serial must be 1..=20 non-zero bytes".into(),
        ));
    }
    if trimmed.len() == 20 {
        trimmed[0] &= 0x7f; // keep the encoded INTEGER within 20 octets
    }
    SerialNumber::new(&trimmed).map_err(|e| PkiError::InvalidArgument(e.to_string()))
}

fn parse_name(s: &str) -> Result<Name, PkiError> {
    Name::from_str(s)
        .map_err(|e| PkiError::InvalidArgument(format!("distinguished name {s:?}: {e}")))
}

/// Checks that `cert` names `issuer` as its issuer and carries a valid RSA
/// signature by `issuer`'s key (SHA-1/256/384/512). Validity dates and
/// extensions are not checked here.
pub fn verify_issued_by(cert: &Certificate, issuer: &Certificate) -> Result<(), PkiError> {
    if cert.tbs_certificate().issuer() != issuer.tbs_certificate().subject() {
        return Err(PkiError::BadSignature(
            "issuer name does not match the CA subject",
        ));
    }
    let digest = rsa_signature_digest(cert.signature_algorithm(), None)?;
    let tbs = cert.tbs_certificate().to_der().map_err(PkiError::encode)?;
    let sig = cert.signature().as_bytes().ok_or(PkiError::BadSignature(
        "signature bit string has unused bits",
    ))?;
    verify_rsa(
        issuer.tbs_certificate().subject_public_key_info(),
        digest,
        &tbs,
        sig,
    )
}

/// SHA-256 over the certificate's DER (what `openssl x509 -fingerprint -sha256` prints).
pub fn fingerprint_sha256(cert_der: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(&DigestAlg::Sha256.digest(cert_der));
    out
}

/// RFC 5280 key identifier (SHA-1 of the subjectPublicKey bits) of a public key.
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    DigestAlg::Sha1.digest(spki.subject_public_key.raw_bytes())
}

/// Parses one DER certificate (bounded by [`crate::MAX_INPUT_LEN`]).
pub fn cert_from_der(der: &[u8]) -> Result<Certificate, PkiError> {
    check_len(der)?;
    Certificate::from_der(der).map_err(|e| PkiError::malformed("certificate", e))
}

/// Encodes a certificate as DER.
pub fn cert_to_der(cert: &Certificate) -> Result<Vec<u8>, PkiError> {
    cert.to_der().map_err(PkiError::encode)
}

/// Parses one PEM `CERTIFICATE`.
pub fn cert_from_pem(pem: &str) -> Result<Certificate, PkiError> {
    check_len(pem.as_bytes())?;
    Certificate::from_pem(pem).map_err(|e| PkiError::malformed("PEM certificate", e))
}

/// Parses every `CERTIFICATE` block of a PEM bundle, in order.
pub fn certs_from_pem(pem: &str) -> Result<Vec<Certificate>, PkiError> {
    check_len(pem.as_bytes())?;
    Certificate::load_pem_chain(pem.as_bytes())
        .map_err(|e| PkiError::malformed("PEM certificates", e))
}

/// Encodes a certificate as PEM with LF line endings.
pub fn cert_to_pem(cert: &Certificate) -> Result<String, PkiError> {
    cert.to_pem(LineEnding::LF).map_err(PkiError::encode)
}

/// Convenience accessors on [`Certificate`].
pub trait CertificateExt {
    /// The SubjectKeyIdentifier extension's value, if present.
    fn subject_key_id(&self) -> Option<Vec<u8>>;
    /// Whether BasicConstraints says CA:true.
    fn is_ca(&self) -> bool;
    /// Start of validity.
    fn not_before(&self) -> Result<OffsetDateTime, PkiError>;
    /// End of validity.
    fn not_after(&self) -> Result<OffsetDateTime, PkiError>;
    /// Subject as an RFC 4514 string.
    fn subject_string(&self) -> String;
    /// Issuer as an RFC 4514 string.
    fn issuer_string(&self) -> String;
    /// Serial number as lowercase hex (no separators).
    fn serial_hex(&self) -> String;
}

impl CertificateExt for Certificate {
    fn subject_key_id(&self) -> Option<Vec<u8>> {
        match self
            .tbs_certificate()
            .get_extension::<SubjectKeyIdentifier>()
        {
            Ok(Some((_, ski))) => Some(ski.0.as_bytes().to_vec()),
            _ => None,
        }
    }

    fn is_ca(&self) -> bool {
        matches!(
            self.tbs_certificate().get_extension::<BasicConstraints>(),
            Ok(Some((_, BasicConstraints { ca: true, .. })))
        )
    }

    fn not_before(&self) -> Result<OffsetDateTime, PkiError> {
        from_x509_time(&self.tbs_certificate().validity().not_before)
    }

    fn not_after(&self) -> Result<OffsetDateTime, PkiError> {
        from_x509_time(&self.tbs_certificate().validity().not_after)
    }

    fn subject_string(&self) -> String {
        self.tbs_certificate().subject().to_string()
    }

    fn issuer_string(&self) -> String {
        self.tbs_certificate().issuer().to_string()
    }

    fn serial_hex(&self) -> String {
        self.tbs_certificate()
            .serial_number()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
