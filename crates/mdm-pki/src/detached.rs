//! Detached CMS signatures checked on every device request (Apple's
//! `Mdm-Signature`), with the signer certificates already seen kept parsed.
//!
//! A device signs each request with the same identity certificate, carried in
//! the signature. Decoding that certificate, re-encoding it to hash it and
//! parsing its RSA key cost about as much as the RSA verification itself, so a
//! [`SignerCache`] keeps what a verification needs of each certificate seen,
//! keyed by the certificate's exact bytes in the message: a different
//! certificate is a different key, and the signature over the body is
//! verified every time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cms::content_info::CmsVersion;
use cms::signed_data::{SignerIdentifier, SignerInfos};
use der::asn1::SetOfVec;
use der::{
    DecodeValue, Encode, EncodeValue, FixedTag, Header, Length, Reader, Sequence, Tag, Writer,
};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::Certificate;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;

use crate::ber::{EncapContent, decode_ber, signed_data_bytes};
use crate::signed_data::{attached_given, find_signer_cert, verify_signer_info_with};
use crate::{CertificateExt, PkiError, RsaPublicKey, fingerprint_sha256, key_identifier};

/// What verifying a signature needs of a signer certificate, kept between
/// requests.
#[derive(Debug)]
pub struct KnownSigner {
    /// The certificate, DER.
    pub der: Vec<u8>,
    /// SHA-256 of [`KnownSigner::der`].
    pub fingerprint: [u8; 32],
    issuer: Name,
    serial: SerialNumber,
    key_id: Vec<u8>,
    key: RsaPublicKey,
}

impl KnownSigner {
    /// Reads a certificate that signs with RSA.
    pub fn new(cert: &Certificate) -> Result<Self, PkiError> {
        let der = cert.to_der().map_err(PkiError::encode)?;
        let tbs = cert.tbs_certificate();
        Ok(Self {
            fingerprint: fingerprint_sha256(&der),
            der,
            issuer: tbs.issuer().clone(),
            serial: tbs.serial_number().clone(),
            key_id: cert
                .subject_key_id()
                .unwrap_or_else(|| key_identifier(tbs.subject_public_key_info())),
            key: RsaPublicKey::from_spki(tbs.subject_public_key_info())?,
        })
    }

    /// Whether `sid` names this certificate (the rule of [`find_signer_cert`]).
    fn named_by(&self, sid: &SignerIdentifier) -> bool {
        match sid {
            SignerIdentifier::IssuerAndSerialNumber(isn) => {
                self.issuer == isn.issuer && self.serial == isn.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => self.key_id == ski.0.as_bytes(),
        }
    }
}

/// Signer certificates seen recently, at most about `capacity` of them.
///
/// Two generations: lookups that hit the older one move the entry to the
/// newer; when the newer fills half the capacity it becomes the older and the
/// oldest generation is dropped. Devices that keep polling stay; one that
/// stops is forgotten after about `capacity` other devices were seen.
#[derive(Debug)]
pub struct SignerCache {
    half: usize,
    generations: Mutex<Generations>,
}

#[derive(Debug, Default)]
struct Generations {
    current: HashMap<Box<[u8]>, Arc<KnownSigner>>,
    previous: HashMap<Box<[u8]>, Arc<KnownSigner>>,
}

impl SignerCache {
    /// A cache of about `capacity` certificates (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        Self {
            half: capacity / 2,
            generations: Mutex::new(Generations::default()),
        }
    }

    /// How many certificates are kept now.
    pub fn len(&self) -> usize {
        self.generations
            .lock()
            .map_or(0, |g| g.current.len() + g.previous.len())
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get(&self, encoded: &[u8]) -> Option<Arc<KnownSigner>> {
        let mut g = self.generations.lock().ok()?;
        if let Some(known) = g.current.get(encoded) {
            return Some(known.clone());
        }
        let (key, known) = g.previous.remove_entry(encoded)?;
        g.insert(self.half, key, known.clone());
        Some(known)
    }

    fn insert(&self, encoded: &[u8], known: Arc<KnownSigner>) {
        if self.half == 0 {
            return;
        }
        if let Ok(mut g) = self.generations.lock() {
            g.insert(self.half, encoded.into(), known);
        }
    }
}

impl Generations {
    fn insert(&mut self, half: usize, key: Box<[u8]>, known: Arc<KnownSigner>) {
        if self.current.len() >= half {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, known);
    }
}

/// A verified detached signature: who signed, and when they say they did.
#[derive(Clone, Debug)]
pub struct DetachedSigner {
    /// The signer's certificate (the first SignerInfo's).
    pub signer: Arc<KnownSigner>,
    /// The signingTime attribute, if present.
    pub signing_time: Option<OffsetDateTime>,
}

/// Verifies a detached SignedData (BER or DER) over `body`, the signer's
/// certificate taken from the message: messageDigest, contentType and the RSA
/// signature of the first SignerInfo, as [`crate::verify_signed_data`] checks
/// them. Says nothing about whether the signer is trusted. Certificates of
/// the message are decoded only when `cache` does not know them; one that
/// signed a valid signature is added to it.
pub fn verify_detached(
    input: &[u8],
    body: &[u8],
    cache: &SignerCache,
) -> Result<DetachedSigner, PkiError> {
    let sd = decode_ber::<DetachedSignedData>(&signed_data_bytes(input)?, "CMS SignedData")?;
    if sd.encap_content_info.econtent.is_some() {
        return Err(attached_given());
    }
    let si = sd.signer_infos.0.get(0).ok_or(PkiError::SignerNotFound)?;
    let mut found = None;
    for encoded in sd.certificates.iter().flat_map(|set| set.0.iter()) {
        if let Some(known) = cache.get(encoded) {
            if known.named_by(&si.sid) {
                found = Some((known, None));
                break;
            }
            continue;
        }
        // Other CertificateChoices (attribute certificates …) are not signers.
        if encoded.first() != Some(&0x30) {
            continue;
        }
        let cert: Certificate = decode_ber(encoded, "certificate")?;
        if find_signer_cert(std::iter::once(&cert), &si.sid).is_some() {
            found = Some((Arc::new(KnownSigner::new(&cert)?), Some(encoded)));
            break;
        }
    }
    let (signer, new) = found.ok_or(PkiError::SignerNotFound)?;
    let verified = verify_signer_info_with(
        si,
        sd.encap_content_info.econtent_type,
        body,
        |digest, message, signature| signer.key.verify(digest, message, signature),
    )?;
    if let Some(encoded) = new {
        cache.insert(encoded, signer.clone());
    }
    Ok(DetachedSigner {
        signer,
        signing_time: verified.signing_time,
    })
}

/// CMS `SignedData` with its certificates and CRLs kept as encoded bytes.
#[derive(Clone, Debug, PartialEq, Eq, Sequence)]
struct DetachedSignedData {
    version: CmsVersion,
    digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    encap_content_info: EncapContent,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    certificates: Option<EncodedSet>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    crls: Option<EncodedSet>,
    signer_infos: SignerInfos,
}

/// A SET whose elements are kept as their encoded bytes (tag, length, value).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
struct EncodedSet(Vec<Vec<u8>>);

impl FixedTag for EncodedSet {
    const TAG: Tag = Tag::Set;
}

impl<'a> DecodeValue<'a> for EncodedSet {
    type Error = der::Error;

    fn decode_value<R: Reader<'a>>(reader: &mut R, _header: Header) -> der::Result<Self> {
        let mut elements = Vec::new();
        while !reader.is_finished() {
            elements.push(element_bytes(reader)?.to_vec());
        }
        Ok(Self(elements))
    }
}

/// The next element's whole encoding. `Reader::tlv_bytes` counts an
/// indefinite length as if it were written in definite form; BER writes it
/// as the single octet `0x80`, and the decoded length includes the two
/// end-of-contents octets.
fn element_bytes<'a, R: Reader<'a>>(reader: &mut R) -> der::Result<&'a [u8]> {
    let header = Header::peek(reader)?;
    let tag_len = usize::try_from(header.tag().encoded_len()?)?;
    let mut peeked = [0u8; 8];
    let first_length_octet = peeked
        .get_mut(..=tag_len)
        .ok_or_else(|| reader.error(der::ErrorKind::Overlength))?;
    reader.peek_into(first_length_octet)?;
    let header_len = if first_length_octet.get(tag_len) == Some(&0x80) {
        Length::try_from(tag_len + 1)?
    } else {
        header.encoded_len()?
    };
    reader.read_slice((header_len + header.length())?)
}

impl EncodeValue for EncodedSet {
    fn value_len(&self) -> der::Result<Length> {
        self.0
            .iter()
            .try_fold(Length::ZERO, |len, e| len + Length::try_from(e.len())?)
    }

    fn encode_value(&self, writer: &mut impl Writer) -> der::Result<()> {
        self.0.iter().try_for_each(|e| writer.write(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RsaKey, self_signed_ca};
    use time::macros::datetime;

    #[test]
    fn the_cache_keeps_two_generations_and_promotes_what_is_used() {
        let key = RsaKey::generate(2048).unwrap();
        let (from, to) = (
            datetime!(2026-01-01 0:00 UTC),
            datetime!(2027-01-01 0:00 UTC),
        );
        let signer = |serial: u8| {
            let cert = self_signed_ca(&key, "CN=test", &[serial], from, to).unwrap();
            Arc::new(KnownSigner::new(&cert).unwrap())
        };
        let (a, b, c, d) = (signer(1), signer(2), signer(3), signer(4));
        let cache = SignerCache::new(4);
        cache.insert(&a.der, a.clone());
        cache.insert(&b.der, b.clone());
        cache.insert(&c.der, c.clone()); // {a, b} become the older generation
        assert_eq!(cache.len(), 3);
        assert!(cache.get(&a.der).is_some()); // promoted beside c
        cache.insert(&d.der, d.clone()); // {c, a} older, b dropped
        assert!(cache.get(&b.der).is_none());
        for kept in [&a, &c, &d] {
            assert!(Arc::ptr_eq(&cache.get(&kept.der).unwrap(), kept));
        }
        let none = SignerCache::new(0);
        none.insert(&a.der, a.clone());
        assert!(none.is_empty());
    }
}
