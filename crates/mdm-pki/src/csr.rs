//! PKCS#10 certification requests: build (with a challengePassword), parse,
//! verify proof of possession, read the challenge.

use const_oid::db::rfc2985::PKCS_9_AT_CHALLENGE_PASSWORD;
use der::asn1::{BitString, PrintableStringRef, SetOfVec};
use der::{Any, Decode, Encode, Header, Reader, Sequence, SliceReader, Tag, Tagged};
use x509_cert::attr::{Attribute, Attributes};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo, Version};

use crate::{DigestAlg, PkiError, RsaKey, check_len, rsa_signature_digest, verify_rsa};

/// Builds and signs a DER PKCS#10 request for `key`, with an optional
/// challengePassword attribute (PrintableString when the text allows it,
/// UTF8String otherwise).
pub fn build_csr(
    key: &RsaKey,
    subject: &Name,
    challenge: Option<&str>,
    digest: DigestAlg,
) -> Result<Vec<u8>, PkiError> {
    let mut attributes = Attributes::new();
    if let Some(pw) = challenge {
        let tag = if PrintableStringRef::new(pw).is_ok() {
            Tag::PrintableString
        } else {
            Tag::Utf8String
        };
        let value = Any::new(tag, pw.as_bytes()).map_err(PkiError::encode)?;
        let values = SetOfVec::try_from(vec![value]).map_err(PkiError::encode)?;
        attributes
            .insert(Attribute {
                oid: PKCS_9_AT_CHALLENGE_PASSWORD,
                values,
            })
            .map_err(PkiError::encode)?;
    }
    let info = CertReqInfo {
        version: Version::V1,
        subject: subject.clone(),
        public_key: key.public_key_spki().clone(),
        attributes,
    };
    let signature = key.sign(digest, &info.to_der().map_err(PkiError::encode)?)?;
    let csr = CertReq {
        info,
        algorithm: digest.rsa_signature_identifier(),
        signature: BitString::from_bytes(&signature).map_err(PkiError::encode)?,
    };
    csr.to_der().map_err(PkiError::encode)
}

/// Parses a PKCS#10 request: DER, or BER as some clients produce. A version
/// other than v1 (seen in real captures: 2) is read as v1.
pub fn csr_from_der(der: &[u8]) -> Result<CertReq, PkiError> {
    check_len(der)?;
    if let Ok(csr) = CertReq::from_der(der) {
        return Ok(csr);
    }
    let lenient: LenientCertReq = crate::decode_ber(der, "certification request")?;
    Ok(CertReq {
        info: CertReqInfo {
            version: Version::V1,
            subject: lenient.info.subject,
            public_key: lenient.info.public_key,
            attributes: lenient.info.attributes,
        },
        algorithm: lenient.algorithm,
        signature: lenient.signature,
    })
}

/// `CertificationRequest` with any INTEGER version.
#[derive(Sequence)]
struct LenientCertReq {
    info: LenientCertReqInfo,
    algorithm: spki::AlgorithmIdentifierOwned,
    signature: BitString,
}

#[derive(Sequence)]
struct LenientCertReqInfo {
    #[allow(dead_code)]
    version: der::asn1::Int,
    subject: Name,
    public_key: spki::SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    attributes: Attributes,
}

/// Parses a request and verifies its own signature (proof of possession of the
/// private key). The signature is checked over the request's original
/// `certificationRequestInfo` bytes. Returns the parsed request and its digest.
pub fn verify_csr(der: &[u8]) -> Result<(CertReq, DigestAlg), PkiError> {
    let csr = csr_from_der(der)?;
    let info = first_element(der).map_err(|e| PkiError::malformed("certification request", e))?;
    let digest = rsa_signature_digest(&csr.algorithm, None)?;
    let sig = csr.signature.as_bytes().ok_or(PkiError::BadSignature(
        "CSR signature bit string has unused bits",
    ))?;
    verify_rsa(&csr.info.public_key, digest, info, sig)?;
    Ok((csr, digest))
}

/// The raw bytes (tag, length, value) of the first element of a SEQUENCE.
fn first_element(der: &[u8]) -> der::Result<&[u8]> {
    let mut reader = SliceReader::new(der)?;
    let header = Header::decode(&mut reader)?;
    header.tag().assert_eq(Tag::Sequence)?;
    reader.tlv_bytes()
}

/// The request's challengePassword, if it has one.
pub fn challenge_password(csr: &CertReq) -> Result<Option<String>, PkiError> {
    let Some(attr) = csr
        .info
        .attributes
        .iter()
        .find(|a| a.oid == PKCS_9_AT_CHALLENGE_PASSWORD)
    else {
        return Ok(None);
    };
    let value = attr
        .values
        .get(0)
        .ok_or_else(|| PkiError::malformed("challengePassword", "attribute without value"))?;
    directory_string(value).map(Some).ok_or_else(|| {
        PkiError::malformed("challengePassword", format!("unexpected {}", value.tag()))
    })
}

/// Decodes an X.520 DirectoryString-like value (Printable, UTF8, IA5, Teletex,
/// BMP) to text. Returns `None` for other types or invalid text.
pub fn directory_string(value: &Any) -> Option<String> {
    match value.tag() {
        Tag::PrintableString | Tag::Utf8String | Tag::Ia5String | Tag::TeletexString => {
            String::from_utf8(value.value().to_vec()).ok()
        }
        Tag::BmpString if value.value().len().is_multiple_of(2) => {
            let units: Vec<u16> = value
                .value()
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}
