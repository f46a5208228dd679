//! CMS SignedData: sign with attached content (profiles, SCEP messages), verify
//! attached or detached signatures (`Mdm-Signature`), certs-only messages.

use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier, SignerInfo};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_CONTENT_TYPE, ID_DATA, ID_MESSAGE_DIGEST, ID_SIGNING_TIME};
use der::asn1::{OctetString, SetOfVec};
use der::{Any, Encode, Tag, Tagged};
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;

use crate::ber::{LenientSignedData, parse_signed_data};
use crate::x509time::parse_lenient_time;
use crate::{
    CertificateExt, DigestAlg, EcKey, EcSignature, PkiError, RsaKey, RsaSignature, key_identifier,
    signature_digest, to_x509_time, verify_signature,
};

/// A verified SignedData.
#[derive(Clone, Debug)]
pub struct SignedContent {
    /// Certificate of the (first) signer.
    pub signer: Certificate,
    /// The signingTime attribute, if present.
    pub signing_time: Option<OffsetDateTime>,
    /// The signed content (the detached content when one was passed in).
    pub content: Vec<u8>,
    /// Digest of the messageDigest attribute.
    pub digest: DigestAlg,
    /// All certificates carried in the message.
    pub certificates: Vec<Certificate>,
}

/// The key that signs attached content: RSA (PKCS#1 v1.5) or ECDSA P-256,
/// both with SHA-256.
#[derive(Clone, Copy, Debug)]
pub enum ContentKey<'k> {
    /// An RSA key (a tenant CA signing its own profiles, a SCEP peer).
    Rsa(&'k RsaKey),
    /// An ECDSA P-256 or P-384 key (the profile signer, an uploaded identity).
    Ec(&'k EcKey),
}

impl<'k> From<&'k RsaKey> for ContentKey<'k> {
    fn from(key: &'k RsaKey) -> Self {
        Self::Rsa(key)
    }
}

impl<'k> From<&'k EcKey> for ContentKey<'k> {
    fn from(key: &'k EcKey) -> Self {
        Self::Ec(key)
    }
}

/// Signs `content` as a DER SignedData with attached id-data content, SHA-256,
/// signed attributes contentType, messageDigest and signingTime, the signer
/// certificate and `extra_certs` included. This is what signs a .mobileconfig.
pub fn sign_attached<'k>(
    content: &[u8],
    key: impl Into<ContentKey<'k>>,
    cert: &Certificate,
    extra_certs: &[Certificate],
    signing_time: OffsetDateTime,
) -> Result<Vec<u8>, PkiError> {
    let attrs = vec![signing_time_attribute(signing_time)?];
    let key = key.into();
    // SHA-256, or the hash an ECDSA key's curve signs with (SHA-384 on P-384).
    let digest = match &key {
        ContentKey::Ec(k) => k.curve().digest(),
        ContentKey::Rsa(_) => DigestAlg::Sha256,
    };
    build_signed(
        ID_DATA,
        Some(content),
        key,
        cert,
        digest,
        attrs,
        extra_certs,
    )
}

/// Signs a SignedData with caller-chosen signed attributes (SCEP's messageType,
/// transactionID, nonces …). contentType and messageDigest are added here; with
/// `content == None` the eContent is absent and messageDigest is the digest of
/// the empty string, as SCEP peers (Go pkcs7) expect for FAILURE/PENDING replies.
pub fn sign_with_attributes(
    econtent_type: ObjectIdentifier,
    content: Option<&[u8]>,
    key: &RsaKey,
    cert: &Certificate,
    digest: DigestAlg,
    attributes: Vec<Attribute>,
    extra_certs: &[Certificate],
) -> Result<Vec<u8>, PkiError> {
    build_signed(
        econtent_type,
        content,
        ContentKey::Rsa(key),
        cert,
        digest,
        attributes,
        extra_certs,
    )
}

fn build_signed(
    econtent_type: ObjectIdentifier,
    content: Option<&[u8]>,
    key: ContentKey<'_>,
    cert: &Certificate,
    digest: DigestAlg,
    mut attributes: Vec<Attribute>,
    extra_certs: &[Certificate],
) -> Result<Vec<u8>, PkiError> {
    if let ContentKey::Ec(k) = key
        && digest != k.curve().digest()
    {
        return Err(PkiError::InvalidArgument(format!(
            "an ECDSA {} key signs with {:?} only",
            k.curve().name(),
            k.curve().digest()
        )));
    }
    let econtent = match content {
        Some(bytes) => Some(Any::new(Tag::OctetString, bytes).map_err(PkiError::encode)?),
        None => {
            attributes.push(oid_attribute(ID_CONTENT_TYPE, econtent_type)?);
            attributes.push(octets_attribute(ID_MESSAGE_DIGEST, &digest.digest(&[]))?);
            None
        }
    };
    let encap = EncapsulatedContentInfo {
        econtent_type,
        econtent,
    };
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: cert.tbs_certificate().issuer().clone(),
        serial_number: cert.tbs_certificate().serial_number().clone(),
    });
    let mut info = SignerInfoBuilder::new(sid, digest.algorithm_identifier(), &encap, None)
        .map_err(PkiError::encode)?;
    for attr in attributes {
        info.add_signed_attribute(attr).map_err(PkiError::encode)?;
    }
    let mut builder = SignedDataBuilder::new(&encap);
    builder
        .add_digest_algorithm(digest.algorithm_identifier())
        .map_err(PkiError::encode)?;
    for c in std::iter::once(cert).chain(extra_certs) {
        builder
            .add_certificate(CertificateChoices::Certificate(c.clone()))
            .map_err(PkiError::encode)?;
    }
    match key {
        ContentKey::Rsa(k) => builder.add_signer_info::<_, RsaSignature>(info, &k.signer(digest)),
        ContentKey::Ec(k) => builder.add_signer_info::<_, EcSignature>(info, k),
    }
    .map_err(PkiError::encode)?;
    builder
        .build()
        .map_err(PkiError::encode)?
        .to_der()
        .map_err(PkiError::encode)
}

/// Builds a degenerate certs-only SignedData (no content, no signers), DER.
pub fn build_certs_only(certs: &[Certificate]) -> Result<Vec<u8>, PkiError> {
    let encap = EncapsulatedContentInfo {
        econtent_type: ID_DATA,
        econtent: None,
    };
    let mut builder = SignedDataBuilder::new(&encap);
    for c in certs {
        builder
            .add_certificate(CertificateChoices::Certificate(c.clone()))
            .map_err(PkiError::encode)?;
    }
    builder
        .build()
        .map_err(PkiError::encode)?
        .to_der()
        .map_err(PkiError::encode)
}

/// The certificates of any SignedData (certs-only or not), DER or BER.
pub fn certs_from_signed_data(input: &[u8]) -> Result<Vec<Certificate>, PkiError> {
    Ok(parse_signed_data(input)?.x509_certificates())
}

/// Verifies a SignedData given as BER or DER.
///
/// With `detached == None` the content must be attached; with `Some(body)` the
/// message must carry no content and `body` is what was signed (Apple's
/// `Mdm-Signature`). The signer certificate is looked up in the message, then in
/// `extra_certs`. Checks messageDigest and the RSA signature over the DER of the
/// signed attributes; says nothing about whether the signer is trusted.
pub fn verify_signed_data(
    input: &[u8],
    detached: Option<&[u8]>,
    extra_certs: &[Certificate],
) -> Result<SignedContent, PkiError> {
    let sd = parse_signed_data(input)?;
    let content = match (&sd.encap_content_info.econtent, detached) {
        (Some(attached), None) => attached.0.as_slice(),
        (None, Some(body)) => body,
        (None, None) => {
            return Err(PkiError::malformed(
                "CMS SignedData",
                "no content to verify",
            ));
        }
        (Some(_), Some(_)) => return Err(attached_given()),
    };
    let (signer, verified) = verify_first_signer(&sd, content, extra_certs)?;
    Ok(SignedContent {
        signer: signer.clone(),
        signing_time: verified.signing_time,
        content: content.to_vec(),
        digest: verified.digest,
        certificates: sd.x509_certificates(),
    })
}

pub(crate) fn attached_given() -> PkiError {
    PkiError::malformed(
        "CMS SignedData",
        "detached content given for an attached signature",
    )
}

fn verify_first_signer<'a>(
    sd: &'a LenientSignedData,
    content: &[u8],
    extra_certs: &'a [Certificate],
) -> Result<(&'a Certificate, VerifiedSigner), PkiError> {
    let si = sd.signer_infos.0.get(0).ok_or(PkiError::SignerNotFound)?;
    let signer = find_signer_cert(sd.x509_iter().chain(extra_certs), &si.sid)
        .ok_or(PkiError::SignerNotFound)?;
    let verified = verify_signer_info(si, signer, sd.encap_content_info.econtent_type, content)?;
    Ok((signer, verified))
}

/// What [`verify_signer_info`] learned.
#[derive(Clone, Copy, Debug)]
pub struct VerifiedSigner {
    /// Digest used for messageDigest.
    pub digest: DigestAlg,
    /// Digest of the signature algorithm (usually the same).
    pub signature_digest: DigestAlg,
    /// signingTime, when present.
    pub signing_time: Option<OffsetDateTime>,
}

/// Finds the certificate a SignerIdentifier names (issuer+serial or SKI).
pub fn find_signer_cert<'c>(
    mut certs: impl Iterator<Item = &'c Certificate>,
    sid: &SignerIdentifier,
) -> Option<&'c Certificate> {
    certs.find(|c| match sid {
        SignerIdentifier::IssuerAndSerialNumber(isn) => {
            c.tbs_certificate().issuer() == &isn.issuer
                && c.tbs_certificate().serial_number() == &isn.serial_number
        }
        SignerIdentifier::SubjectKeyIdentifier(ski) => {
            let id = c
                .subject_key_id()
                .unwrap_or_else(|| key_identifier(c.tbs_certificate().subject_public_key_info()));
            id == ski.0.as_bytes()
        }
    })
}

/// Verifies one SignerInfo over `content` with `signer`'s key.
///
/// With signed attributes: messageDigest must equal the content digest,
/// contentType (if present) must equal `econtent_type`, and the signature must
/// verify over the DER re-encoding of the attributes (sorted SET OF; the order
/// as received is tried second for senders that do not sort). Without signed
/// attributes the signature is over the content itself.
pub fn verify_signer_info(
    si: &SignerInfo,
    signer: &Certificate,
    econtent_type: ObjectIdentifier,
    content: &[u8],
) -> Result<VerifiedSigner, PkiError> {
    let spki = signer.tbs_certificate().subject_public_key_info();
    verify_signer_info_with(si, econtent_type, content, |digest, message, signature| {
        verify_signature(spki, digest, message, signature)
    })
}

/// [`verify_signer_info`] with the signer's key as a function of
/// (digest, message, signature).
pub(crate) fn verify_signer_info_with(
    si: &SignerInfo,
    econtent_type: ObjectIdentifier,
    content: &[u8],
    verify: impl Fn(DigestAlg, &[u8], &[u8]) -> Result<(), PkiError>,
) -> Result<VerifiedSigner, PkiError> {
    let digest = DigestAlg::from_oid(&si.digest_alg.oid)
        .ok_or_else(|| PkiError::UnsupportedAlgorithm(crate::oid_name(&si.digest_alg.oid)))?;
    let signature_digest = signature_digest(&si.signature_algorithm, Some(digest))?;
    let sig = si.signature.as_bytes();
    let Some(attrs) = &si.signed_attrs else {
        verify(signature_digest, content, sig)?;
        return Ok(VerifiedSigner {
            digest,
            signature_digest,
            signing_time: None,
        });
    };
    let md = attribute_octets(attrs.iter(), ID_MESSAGE_DIGEST)?.ok_or(PkiError::DigestMismatch)?;
    if md != digest.digest(content) {
        return Err(PkiError::DigestMismatch);
    }
    if let Some(ct) = single_value(attrs.iter(), ID_CONTENT_TYPE)? {
        let ct: ObjectIdentifier = ct
            .decode_as()
            .map_err(|e| PkiError::malformed("contentType attribute", e))?;
        if ct != econtent_type {
            return Err(PkiError::BadSignature(
                "contentType attribute does not match eContentType",
            ));
        }
    }
    let sorted =
        SetOfVec::try_from(attrs.iter().cloned().collect::<Vec<_>>()).map_err(PkiError::encode)?;
    let der_sorted = sorted.to_der().map_err(PkiError::encode)?;
    if verify(signature_digest, &der_sorted, sig).is_err() {
        let der_received = attrs.to_der().map_err(PkiError::encode)?;
        if der_received == der_sorted {
            return Err(PkiError::BadSignature(
                "signature over signed attributes does not verify",
            ));
        }
        verify(signature_digest, &der_received, sig)?;
    }
    // An unreadable signingTime is reported as absent: it is covered by the
    // signature, and refusing peers over its syntax would gain nothing.
    let signing_time = single_value(attrs.iter(), ID_SIGNING_TIME)?.and_then(parse_lenient_time);
    Ok(VerifiedSigner {
        digest,
        signature_digest,
        signing_time,
    })
}

/// The single value of attribute `oid`, if present (more than one value is an error).
pub fn single_value<'a>(
    mut attrs: impl Iterator<Item = &'a Attribute>,
    oid: ObjectIdentifier,
) -> Result<Option<&'a Any>, PkiError> {
    let Some(attr) = attrs.find(|a| a.oid == oid) else {
        return Ok(None);
    };
    match attr.values.as_slice() {
        [one] => Ok(Some(one)),
        _ => Err(PkiError::malformed(
            "signed attribute",
            format!("{oid} must have exactly one value"),
        )),
    }
}

/// The OCTET STRING value of attribute `oid`, if present.
pub fn attribute_octets<'a>(
    attrs: impl Iterator<Item = &'a Attribute>,
    oid: ObjectIdentifier,
) -> Result<Option<Vec<u8>>, PkiError> {
    match single_value(attrs, oid)? {
        Some(v) if v.tag() == Tag::OctetString => Ok(Some(v.value().to_vec())),
        Some(v) => Err(PkiError::malformed(
            "signed attribute",
            format!("{oid} is a {} not an OCTET STRING", v.tag()),
        )),
        None => Ok(None),
    }
}

/// A signingTime attribute.
pub fn signing_time_attribute(t: OffsetDateTime) -> Result<Attribute, PkiError> {
    let value = Any::encode_from(&to_x509_time(t)?).map_err(PkiError::encode)?;
    attribute(ID_SIGNING_TIME, value)
}

/// An attribute holding one OCTET STRING.
pub fn octets_attribute(oid: ObjectIdentifier, bytes: &[u8]) -> Result<Attribute, PkiError> {
    let value = Any::encode_from(&OctetString::new(bytes).map_err(PkiError::encode)?)
        .map_err(PkiError::encode)?;
    attribute(oid, value)
}

/// An attribute holding one PrintableString (SCEP's messageType, pkiStatus …).
pub fn printable_attribute(oid: ObjectIdentifier, text: &str) -> Result<Attribute, PkiError> {
    let value =
        Any::encode_from(&der::asn1::PrintableStringRef::new(text).map_err(PkiError::encode)?)
            .map_err(PkiError::encode)?;
    attribute(oid, value)
}

fn oid_attribute(oid: ObjectIdentifier, value: ObjectIdentifier) -> Result<Attribute, PkiError> {
    attribute(oid, Any::encode_from(&value).map_err(PkiError::encode)?)
}

fn attribute(oid: ObjectIdentifier, value: Any) -> Result<Attribute, PkiError> {
    let values = SetOfVec::try_from(vec![value]).map_err(PkiError::encode)?;
    Ok(Attribute { oid, values })
}
