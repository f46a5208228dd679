//! Lenient decoding for CMS as real clients send it.
//!
//! `der` 0.8 decodes BER indefinite lengths, but (a) rejects constructed OCTET
//! STRINGs with a definite length, which Go's pkcs7 (micromdm `scepclient`)
//! writes for `encryptedContent`, and (b) turns a constructed OCTET STRING into an
//! `Any` that no longer says it was constructed, so Apple's chunked eContent
//! would read as its chunk headers. [`BerOctets`] handles both; the structs
//! below use it where CMS carries octets.

use cms::cert::CertificateChoices;
use cms::content_info::CmsVersion;
use cms::revocation::RevocationInfoChoices;
use cms::signed_data::{CertificateSet, SignerInfos};
use const_oid::ObjectIdentifier;
use der::asn1::SetOfVec;
use der::{
    Decode, DecodeValue, EncodeValue, EncodingRules, FixedTag, Header, Length, Reader, Sequence,
    Tag, Writer,
};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;

use crate::{PkiError, check_len};

/// How deeply constructed OCTET STRING chunks may nest (real encoders use 1).
const MAX_CHUNK_DEPTH: usize = 4;

/// An OCTET STRING decoded from DER or BER: primitive, or constructed with
/// definite or indefinite length (chunks concatenated). Encodes as DER.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct BerOctets(pub Vec<u8>);

impl FixedTag for BerOctets {
    const TAG: Tag = Tag::OctetString;
}

impl<'a> DecodeValue<'a> for BerOctets {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, header: Header) -> der::Result<Self> {
        if !header.is_constructed() {
            return Ok(Self(reader.read_vec(header.length())?));
        }
        let mut out = Vec::new();
        gather_chunks(reader, &mut out, 1)?;
        Ok(Self(out))
    }
}

/// Appends the contents of OCTET STRING chunks until the (nested) reader ends.
fn gather_chunks<'a, R: Reader<'a>>(
    reader: &mut R,
    out: &mut Vec<u8>,
    depth: usize,
) -> der::Result<()> {
    if depth > MAX_CHUNK_DEPTH {
        return Err(reader.error(der::ErrorKind::NestingDepth));
    }
    while !reader.is_finished() {
        if reader.peek_byte() == Some(0) {
            // End-of-contents of an indefinite-length chunk: must end this reader.
            let eoc = reader.read_slice(Length::new(2))?;
            if eoc != [0, 0] || !reader.is_finished() {
                return Err(reader.error(der::ErrorKind::IndefiniteLength));
            }
            break;
        }
        let header = Header::decode(reader)?;
        if header.tag() != Tag::OctetString {
            return Err(reader.error(der::ErrorKind::TagUnexpected {
                expected: Some(Tag::OctetString),
                actual: header.tag(),
            }));
        }
        if header.is_constructed() {
            reader.read_nested(header.length(), |r| gather_chunks(r, out, depth + 1))?;
        } else {
            out.extend_from_slice(reader.read_slice(header.length())?);
        }
    }
    Ok(())
}

impl EncodeValue for BerOctets {
    fn value_len(&self) -> der::Result<Length> {
        Length::try_from(self.0.len())
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        writer.write(&self.0)
    }
}

/// `EncapsulatedContentInfo` with a lenient eContent.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct EncapContent {
    /// eContentType.
    pub econtent_type: ObjectIdentifier,
    /// eContent, absent for detached signatures and certs-only messages.
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub econtent: Option<BerOctets>,
}

/// CMS `SignedData` (RFC 5652 §5.1) decoded leniently; see the module docs.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
pub struct LenientSignedData {
    /// Syntax version.
    pub version: CmsVersion,
    /// digestAlgorithms.
    pub digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    /// encapContentInfo.
    pub encap_content_info: EncapContent,
    /// certificates.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub certificates: Option<CertificateSet>,
    /// crls (kept only so decoding does not fail on them).
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub crls: Option<RevocationInfoChoices>,
    /// signerInfos.
    pub signer_infos: SignerInfos,
}

impl LenientSignedData {
    /// The X.509 certificates in the `certificates` field, in message order.
    pub fn x509_certificates(&self) -> Vec<Certificate> {
        self.x509_iter().cloned().collect()
    }

    /// The X.509 certificates carried, borrowed.
    pub fn x509_iter(&self) -> impl Iterator<Item = &Certificate> {
        self.certificates
            .iter()
            .flat_map(|set| set.0.iter())
            .filter_map(|choice| match choice {
                CertificateChoices::Certificate(cert) => Some(cert),
                _ => None,
            })
    }
}

/// Decodes a `ContentInfo` (DER or BER, at most [`crate::MAX_INPUT_LEN`]) and
/// returns its content type and the DER-or-BER bytes of its `[0]` content.
pub fn parse_content_info(input: &[u8]) -> Result<(ObjectIdentifier, Vec<u8>), PkiError> {
    check_len(input)?;
    let ci = cms::content_info::ContentInfo::from_ber(input)
        .map_err(|e| PkiError::malformed("CMS ContentInfo", e))?;
    let inner = der::Encode::to_der(&ci.content).map_err(PkiError::encode)?;
    Ok((ci.content_type, inner))
}

/// Decodes a `ContentInfo` that must hold SignedData.
pub fn parse_signed_data(input: &[u8]) -> Result<LenientSignedData, PkiError> {
    decode_ber::<LenientSignedData>(&signed_data_bytes(input)?, "CMS SignedData")
}

/// The encoded SignedData of a `ContentInfo` that must hold one.
pub(crate) fn signed_data_bytes(input: &[u8]) -> Result<Vec<u8>, PkiError> {
    let (content_type, inner) = parse_content_info(input)?;
    if content_type != const_oid::db::rfc5911::ID_SIGNED_DATA {
        return Err(PkiError::malformed(
            "CMS ContentInfo",
            format!("content type {content_type} is not signedData"),
        ));
    }
    Ok(inner)
}

/// Decodes `T` with BER rules (a superset of DER).
pub fn decode_ber<'a, T: Decode<'a, Error = der::Error>>(
    input: &'a [u8],
    what: &'static str,
) -> Result<T, PkiError> {
    let mut reader = der::SliceReader::new_with_encoding_rules(input, EncodingRules::Ber)
        .map_err(|e| PkiError::malformed(what, e))?;
    let value = T::decode(&mut reader).map_err(|e| PkiError::malformed(what, e))?;
    reader.finish().map_err(|e| PkiError::malformed(what, e))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn octets(input: &[u8]) -> der::Result<Vec<u8>> {
        let mut r = der::SliceReader::new_with_encoding_rules(input, EncodingRules::Ber)?;
        let v = BerOctets::decode(&mut r)?;
        r.finish()?;
        Ok(v.0)
    }

    #[test]
    fn primitive_and_constructed_forms() {
        assert_eq!(octets(&[0x04, 0x02, 1, 2]).unwrap(), [1, 2]);
        // Definite-length constructed (Go's pkcs7).
        assert_eq!(
            octets(&[0x24, 0x08, 0x04, 0x02, 1, 2, 0x04, 0x02, 3, 4]).unwrap(),
            [1, 2, 3, 4]
        );
        // Indefinite-length constructed (Apple, openssl -stream).
        assert_eq!(
            octets(&[0x24, 0x80, 0x04, 0x01, 9, 0x04, 0x00, 0x00, 0x00]).unwrap(),
            [9]
        );
        // One level of nesting inside.
        assert_eq!(
            octets(&[
                0x24, 0x80, 0x24, 0x80, 0x04, 0x01, 7, 0, 0, 0x04, 0x01, 8, 0, 0
            ])
            .unwrap(),
            [7, 8]
        );
    }

    #[test]
    fn rejects_bad_chunks() {
        assert!(
            octets(&[0x24, 0x03, 0x02, 0x01, 0x00]).is_err(),
            "INTEGER chunk"
        );
        assert!(
            octets(&[0x24, 0x80, 0x04, 0x01, 9]).is_err(),
            "no end-of-contents"
        );
        assert!(
            octets(&[0x24, 0x04, 0x04, 0x05, 1, 2]).is_err(),
            "chunk longer than parent"
        );
        let mut deep = Vec::new();
        for _ in 0..(MAX_CHUNK_DEPTH + 2) {
            deep.extend_from_slice(&[0x24, 0x80]);
        }
        deep.extend_from_slice(&[0x04, 0x00]);
        for _ in 0..(MAX_CHUNK_DEPTH + 2) {
            deep.extend_from_slice(&[0, 0]);
        }
        assert!(octets(&deep).is_err(), "too deep");
    }

    #[test]
    fn explicit_econtent_and_implicit_field() {
        // EncapContent with eContent [0] EXPLICIT holding a chunked OCTET STRING.
        let der = [
            0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01, 0xa0,
            0x80, 0x24, 0x80, 0x04, 0x02, b'h', b'i', 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        let ec: EncapContent = decode_ber(&der, "test").unwrap();
        assert_eq!(ec.econtent.unwrap().0, b"hi");
        assert!(parse_signed_data(&der).is_err(), "not a ContentInfo");
    }
}
