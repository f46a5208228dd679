//! The SCEP `pkcsPKIEnvelope`: CMS EnvelopedData with RSA key transport and a
//! CBC content cipher (DES, 3DES, AES). `cms`'s builder only does AES and has
//! no decryption, so both directions are written here.

use cbc::cipher::block_padding::Pkcs7;
use cbc::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use cms::cert::IssuerAndSerialNumber;
use cms::content_info::{CmsVersion, ContentInfo};
use cms::enveloped_data::{
    EncryptedContentInfo, EnvelopedData, KeyTransRecipientInfo, OriginatorInfo,
    RecipientIdentifier, RecipientInfo, RecipientInfos,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911::{ID_DATA, ID_ENVELOPED_DATA};
use const_oid::db::rfc5912::RSA_ENCRYPTION;
use der::asn1::{Null, OctetString};
use der::{Any, Encode, Sequence, Tag, Tagged};
use mdm_pki::{BerOctets, CertificateExt, RsaKey, decode_ber, key_identifier, parse_content_info};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attributes;
use zeroize::Zeroizing;

use crate::{ContentCipher, ScepError};

/// Decrypts content-encryption keys for [`decrypt_envelope`].
///
/// Implementations must not reveal padding failures: return a random key of
/// `expected_len` bytes instead (see [`RsaKey::decrypt_cek`]).
pub trait CekDecryptor {
    /// RSA PKCS#1 v1.5 key transport.
    fn decrypt_cek(&self, encrypted_key: &[u8], expected_len: usize) -> Zeroizing<Vec<u8>>;
}

impl CekDecryptor for RsaKey {
    fn decrypt_cek(&self, encrypted_key: &[u8], expected_len: usize) -> Zeroizing<Vec<u8>> {
        RsaKey::decrypt_cek(self, encrypted_key, expected_len)
    }
}

/// EnvelopedData as peers send it (see `mdm_pki::BerOctets`).
#[derive(Clone, Debug, Sequence)]
struct LenientEnvelopedData {
    version: CmsVersion,
    #[asn1(
        context_specific = "0",
        tag_mode = "IMPLICIT",
        constructed = "true",
        optional = "true"
    )]
    originator_info: Option<OriginatorInfo>,
    recip_infos: RecipientInfos,
    encrypted_content: LenientEncryptedContentInfo,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    unprotected_attrs: Option<Attributes>,
}

#[derive(Clone, Debug, Sequence)]
struct LenientEncryptedContentInfo {
    content_type: ObjectIdentifier,
    content_enc_alg: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    encrypted_content: Option<BerOctets>,
}

/// Parsed, still-encrypted envelope.
struct Envelope {
    cipher: ContentCipher,
    iv: Vec<u8>,
    recipients: RecipientInfos,
    ciphertext: Vec<u8>,
}

/// The content cipher of an envelope and its recipients (as
/// "issuer=…, serial=…" or "subjectKeyIdentifier=…"), without decrypting it.
pub fn envelope_summary(envelope: &[u8]) -> Result<(ContentCipher, Vec<String>), ScepError> {
    let env = parse_envelope(envelope)?;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let recipients = env
        .recipients
        .0
        .iter()
        .map(|ri| match ri {
            RecipientInfo::Ktri(k) => match &k.rid {
                RecipientIdentifier::IssuerAndSerialNumber(isn) => {
                    format!(
                        "issuer={}, serial={}",
                        isn.issuer,
                        hex(isn.serial_number.as_bytes())
                    )
                }
                RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                    format!("subjectKeyIdentifier={}", hex(ski.0.as_bytes()))
                }
            },
            _ => "non key-transport recipient".to_owned(),
        })
        .collect();
    Ok((env.cipher, recipients))
}

fn parse_envelope(envelope: &[u8]) -> Result<Envelope, ScepError> {
    let (content_type, inner) = parse_content_info(envelope)?;
    if content_type != ID_ENVELOPED_DATA {
        return Err(ScepError::malformed(
            "pkcsPKIEnvelope",
            format!("content type {content_type}"),
        ));
    }
    let ed: LenientEnvelopedData = decode_ber(&inner, "EnvelopedData")?;
    let alg = &ed.encrypted_content.content_enc_alg;
    let cipher = ContentCipher::from_oid(&alg.oid)
        .ok_or_else(|| ScepError::UnsupportedAlgorithm(mdm_pki::oid_name(&alg.oid)))?;
    let iv = match &alg.parameters {
        Some(p) if p.tag() == Tag::OctetString && p.value().len() == cipher.block_len() => {
            p.value().to_vec()
        }
        _ => {
            return Err(ScepError::malformed(
                "EnvelopedData",
                "content cipher IV missing or of wrong size",
            ));
        }
    };
    let ciphertext = ed
        .encrypted_content
        .encrypted_content
        .ok_or_else(|| ScepError::malformed("EnvelopedData", "no encryptedContent"))?
        .0;
    Ok(Envelope {
        cipher,
        iv,
        recipients: ed.recip_infos,
        ciphertext,
    })
}

/// Decrypts a ContentInfo(EnvelopedData) addressed to `recipient` (our
/// certificate) with `key`. Returns the plaintext and the content cipher used.
///
/// Wrong keys and corrupt data both end as [`ScepError::Decrypt`]; an envelope
/// with no recipient matching `recipient` is [`ScepError::NotForUs`].
pub fn decrypt_envelope(
    envelope: &[u8],
    recipient: &Certificate,
    key: &dyn CekDecryptor,
) -> Result<(Zeroizing<Vec<u8>>, ContentCipher), ScepError> {
    let env = parse_envelope(envelope)?;
    let ktri = find_recipient(&env.recipients, recipient).ok_or(ScepError::NotForUs)?;
    if ktri.key_enc_alg.oid != RSA_ENCRYPTION {
        return Err(ScepError::UnsupportedAlgorithm(mdm_pki::oid_name(
            &ktri.key_enc_alg.oid,
        )));
    }
    let cek = key.decrypt_cek(ktri.enc_key.as_bytes(), env.cipher.key_len());
    let plain =
        cbc_decrypt(env.cipher, &cek, &env.iv, &env.ciphertext).ok_or(ScepError::Decrypt)?;
    Ok((plain, env.cipher))
}

fn find_recipient<'r>(
    infos: &'r RecipientInfos,
    cert: &Certificate,
) -> Option<&'r KeyTransRecipientInfo> {
    let tbs = cert.tbs_certificate();
    infos.0.iter().find_map(|ri| match ri {
        RecipientInfo::Ktri(k) => {
            let matches = match &k.rid {
                RecipientIdentifier::IssuerAndSerialNumber(isn) => {
                    &isn.issuer == tbs.issuer() && &isn.serial_number == tbs.serial_number()
                }
                RecipientIdentifier::SubjectKeyIdentifier(ski) => {
                    let id = cert
                        .subject_key_id()
                        .unwrap_or_else(|| key_identifier(tbs.subject_public_key_info()));
                    ski.0.as_bytes() == id
                }
            };
            matches.then_some(k)
        }
        _ => None,
    })
}

/// Encrypts `content` to `recipient`'s RSA key as a DER ContentInfo(EnvelopedData)
/// (recipient identified by issuer and serial, id-data content).
pub fn encrypt_envelope(
    content: &[u8],
    cipher: ContentCipher,
    recipient: &Certificate,
) -> Result<Vec<u8>, ScepError> {
    let mut cek = mdm_pki::random_bytes(cipher.key_len())?;
    if cipher == ContentCipher::Des3 || cipher == ContentCipher::Des {
        set_odd_parity(&mut cek);
    }
    let iv = mdm_pki::random_bytes(cipher.block_len())?;
    let ciphertext = cbc_encrypt(cipher, &cek, &iv, content)?;
    let spki = recipient.tbs_certificate().subject_public_key_info();
    let enc_key = mdm_pki::rsa_pkcs1v15_encrypt(&spki.to_der().map_err(ScepError::build)?, &cek)
        .map_err(|e| match e {
            mdm_pki::PkiError::KeyRejected(why) => {
                ScepError::BadRequest(format!("recipient key: {why}"))
            }
            other => ScepError::build(format!("key transport: {other}")),
        })?;
    let ktri = KeyTransRecipientInfo {
        version: CmsVersion::V0,
        rid: RecipientIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: recipient.tbs_certificate().issuer().clone(),
            serial_number: recipient.tbs_certificate().serial_number().clone(),
        }),
        key_enc_alg: AlgorithmIdentifierOwned {
            oid: RSA_ENCRYPTION,
            parameters: Some(Any::from(Null)),
        },
        enc_key: OctetString::new(enc_key).map_err(ScepError::build)?,
    };
    let ed = EnvelopedData {
        version: CmsVersion::V0,
        originator_info: None,
        recip_infos: RecipientInfos::try_from(vec![RecipientInfo::Ktri(ktri)])
            .map_err(ScepError::build)?,
        encrypted_content: EncryptedContentInfo {
            content_type: ID_DATA,
            content_enc_alg: AlgorithmIdentifierOwned {
                oid: cipher.oid(),
                parameters: Some(
                    Any::new(Tag::OctetString, iv.as_slice()).map_err(ScepError::build)?,
                ),
            },
            encrypted_content: Some(OctetString::new(ciphertext).map_err(ScepError::build)?),
        },
        unprotected_attrs: None,
    };
    let ci = ContentInfo {
        content_type: ID_ENVELOPED_DATA,
        content: Any::encode_from(&ed).map_err(ScepError::build)?,
    };
    ci.to_der().map_err(ScepError::build)
}

/// DES keys carry odd parity in the low bit of each byte; strict peers check it.
fn set_odd_parity(key: &mut [u8]) {
    for b in key {
        let high = *b & 0xfe;
        *b = high | u8::from(high.count_ones().is_multiple_of(2));
    }
}

fn cbc_encrypt(
    cipher: ContentCipher,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, ScepError> {
    fn run<M: KeyIvInit + BlockModeEncrypt>(
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, ScepError> {
        let mode =
            M::new_from_slices(key, iv).map_err(|_| ScepError::build("cipher key or IV size"))?;
        Ok(mode.encrypt_padded_vec::<Pkcs7>(data))
    }
    match cipher {
        ContentCipher::Des => run::<cbc::Encryptor<des::Des>>(key, iv, data),
        ContentCipher::Des3 => run::<cbc::Encryptor<des::TdesEde3>>(key, iv, data),
        ContentCipher::Aes128 => run::<cbc::Encryptor<aes::Aes128>>(key, iv, data),
        ContentCipher::Aes192 => run::<cbc::Encryptor<aes::Aes192>>(key, iv, data),
        ContentCipher::Aes256 => run::<cbc::Encryptor<aes::Aes256>>(key, iv, data),
    }
}

/// CBC decryption with PKCS#7 padding; `None` on any failure (no detail, on purpose).
fn cbc_decrypt(
    cipher: ContentCipher,
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    fn run<M: KeyIvInit + BlockModeDecrypt>(
        key: &[u8],
        iv: &[u8],
        data: &[u8],
    ) -> Option<Zeroizing<Vec<u8>>> {
        let mode = M::new_from_slices(key, iv).ok()?;
        mode.decrypt_padded_vec::<Pkcs7>(data)
            .ok()
            .map(Zeroizing::new)
    }
    if data.is_empty() || !data.len().is_multiple_of(cipher.block_len()) {
        return None;
    }
    match cipher {
        ContentCipher::Des => run::<cbc::Decryptor<des::Des>>(key, iv, data),
        ContentCipher::Des3 => run::<cbc::Decryptor<des::TdesEde3>>(key, iv, data),
        ContentCipher::Aes128 => run::<cbc::Decryptor<aes::Aes128>>(key, iv, data),
        ContentCipher::Aes192 => run::<cbc::Decryptor<aes::Aes192>>(key, iv, data),
        ContentCipher::Aes256 => run::<cbc::Decryptor<aes::Aes256>>(key, iv, data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_is_odd() {
        let mut key: Vec<u8> = (0..=255).collect();
        set_odd_parity(&mut key);
        for (i, b) in key.iter().enumerate() {
            assert!(!b.count_ones().is_multiple_of(2), "byte {i}");
            assert_eq!(b & 0xfe, (i as u8) & 0xfe);
        }
    }

    #[test]
    fn cbc_round_trip_every_cipher() {
        for c in [
            ContentCipher::Des,
            ContentCipher::Des3,
            ContentCipher::Aes128,
            ContentCipher::Aes192,
            ContentCipher::Aes256,
        ] {
            let key = vec![0x11; c.key_len()];
            let iv = vec![0x22; c.block_len()];
            for len in [0, 1, 7, 8, 16, 100] {
                let data = vec![0x5a; len];
                let ct = cbc_encrypt(c, &key, &iv, &data).unwrap();
                assert_eq!(ct.len() % c.block_len(), 0);
                assert_eq!(
                    &cbc_decrypt(c, &key, &iv, &ct).unwrap()[..],
                    &data[..],
                    "{c} {len}"
                );
                assert!(cbc_decrypt(c, &key, &iv, &ct[..ct.len() - 1]).is_none());
            }
        }
    }
}
