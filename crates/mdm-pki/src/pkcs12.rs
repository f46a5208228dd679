//! Reading a PKCS#12 file (RFC 7292: `.p12`, `.pfx` from Keychain Access,
//! `openssl pkcs12 -export`, Windows) into its one private key and its
//! certificates: the integrity MAC checked first (HMAC with the PKCS#12 key
//! derivation), then the bags decrypted — PBES2 (PBKDF2 with HMAC-SHA-1 or
//! -SHA-256, AES-CBC or 3DES-CBC), as current tools write them, or the
//! legacy PKCS#12 schemes with SHA-1 (3DES, RC2) that older ones still do.

use aws_lc_rs::{digest, hmac, pbkdf2};
use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use const_oid::ObjectIdentifier;
use der::Sequence;
use der::asn1::{Any, OctetString};
use spki::AlgorithmIdentifierOwned;
use std::num::NonZeroU32;
use x509_cert::Certificate;
use zeroize::Zeroizing;

use crate::{PkiError, cert_from_der, check_len, decode_ber};

/// The contents of a PKCS#12 file that holds one identity.
pub struct Pkcs12Identity {
    /// The private key, PKCS#8 DER; wiped when dropped.
    pub key_pkcs8: Zeroizing<Vec<u8>>,
    /// Every certificate of the file, in its order.
    pub certs: Vec<Certificate>,
}

/// More iterations than this are refused (openssl writes 2,048; the largest
/// in use are a few hundred thousand): a file cannot make the server spin.
pub const MAX_PKCS12_ITERATIONS: u32 = 2_000_000;

const ID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const ID_ENCRYPTED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
const KEY_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.1");
const SHROUDED_KEY_BAG: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.2");
const CERT_BAG: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.10.1.3");
const X509_CERTIFICATE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const PBES2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
const PBKDF2: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.12");
const HMAC_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.7");
const HMAC_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.2.9");
const AES128_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.2");
const AES192_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.22");
const AES256_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.1.42");
const DES_EDE3_CBC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.3.7");
const PBE_SHA1_3DES: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.3");
const PBE_SHA1_RC2_128: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.5");
const PBE_SHA1_RC2_40: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.12.1.6");
const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

#[derive(Sequence)]
struct Pfx {
    version: u8,
    auth_safe: ContentInfo,
    mac_data: Option<MacData>,
}

#[derive(Sequence)]
struct ContentInfo {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    content: Option<Any>,
}

#[derive(Sequence)]
struct MacData {
    mac: DigestInfo,
    mac_salt: OctetString,
    #[asn1(default = "one")]
    iterations: u32,
}

fn one() -> u32 {
    1
}

#[derive(Sequence)]
struct DigestInfo {
    algorithm: AlgorithmIdentifierOwned,
    digest: OctetString,
}

#[derive(Sequence)]
struct EncryptedData {
    version: u8,
    content: EncryptedContentInfo,
}

#[derive(Sequence)]
struct EncryptedContentInfo {
    content_type: ObjectIdentifier,
    algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    encrypted: Option<OctetString>,
}

#[derive(Sequence)]
struct SafeBag {
    bag_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    value: Any,
    attributes: Option<Any>,
}

#[derive(Sequence)]
struct CertBag {
    cert_id: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    value: OctetString,
}

#[derive(Sequence)]
struct EncryptedPrivateKeyInfo {
    algorithm: AlgorithmIdentifierOwned,
    data: OctetString,
}

#[derive(Sequence)]
struct Pbes2Params {
    kdf: AlgorithmIdentifierOwned,
    scheme: AlgorithmIdentifierOwned,
}

#[derive(Sequence)]
struct Pbkdf2Params {
    salt: OctetString,
    iterations: u32,
    key_length: Option<u32>,
    prf: Option<AlgorithmIdentifierOwned>,
}

#[derive(Sequence)]
struct PbeParams {
    salt: OctetString,
    iterations: u32,
}

fn malformed(detail: impl std::fmt::Display) -> PkiError {
    PkiError::malformed("PKCS#12 file", detail)
}

fn wrong_password() -> PkiError {
    PkiError::KeyRejected("the PKCS#12 file does not open with this password".into())
}

fn params<'a, T: der::DecodeValue<'a, Error = der::Error> + der::FixedTag + 'a>(
    alg: &'a AlgorithmIdentifierOwned,
) -> Result<T, PkiError> {
    alg.parameters
        .as_ref()
        .ok_or_else(|| malformed(format!("{} without parameters", alg.oid)))?
        .decode_as::<T>()
        .map_err(|e| PkiError::malformed("PKCS#12 parameters", e))
}

fn iterations(n: u32) -> Result<NonZeroU32, PkiError> {
    if n > MAX_PKCS12_ITERATIONS {
        return Err(PkiError::InvalidArgument(format!(
            "{n} key-derivation iterations (at most {MAX_PKCS12_ITERATIONS})"
        )));
    }
    NonZeroU32::new(n).ok_or_else(|| malformed("zero key-derivation iterations"))
}

/// The password as the PKCS#12 key derivation takes it: UTF-16BE with a
/// terminating zero (RFC 7292 B.1).
fn bmp_password(password: &str) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(password.len() * 2 + 2));
    for unit in password.encode_utf16() {
        out.extend_from_slice(&unit.to_be_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

/// RFC 7292 appendix B.2: `n` bytes of key (`id` 1), IV (2) or MAC key (3).
fn pkcs12_kdf(
    alg: &'static digest::Algorithm,
    id: u8,
    password: &[u8],
    salt: &[u8],
    rounds: NonZeroU32,
    n: usize,
) -> Zeroizing<Vec<u8>> {
    const V: usize = 64;
    let u = alg.output_len();
    let fill = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        let len = src.len().div_ceil(V) * V;
        src.iter().cycle().take(len).copied().collect()
    };
    let d = [id; V];
    let mut i = Zeroizing::new([fill(salt), fill(password)].concat());
    let mut out = Zeroizing::new(Vec::with_capacity(n + u));
    while out.len() < n {
        let mut ctx = digest::Context::new(alg);
        ctx.update(&d);
        ctx.update(&i);
        let mut a = ctx.finish();
        for _ in 1..rounds.get() {
            a = digest::digest(alg, a.as_ref());
        }
        out.extend_from_slice(a.as_ref());
        if out.len() >= n {
            break;
        }
        let b: Vec<u8> = a.as_ref().iter().cycle().take(V).copied().collect();
        for block in i.chunks_mut(V) {
            // block = (block + b + 1) mod 2^(8V), big-endian.
            let mut carry = 1u16;
            for (x, y) in block.iter_mut().rev().zip(b.iter().rev()) {
                let sum = u16::from(*x) + u16::from(*y) + carry;
                *x = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(n);
    out
}

fn cbc_decrypt<C: KeyIvInit + BlockModeDecrypt>(
    key: &[u8],
    iv: &[u8],
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let mode = C::new_from_slices(key, iv).map_err(|_| malformed("key or IV of the wrong size"))?;
    mode.decrypt_padded_vec::<Pkcs7>(data)
        .map(Zeroizing::new)
        // Bad padding after a good MAC: the bags were encrypted with another password.
        .map_err(|_| wrong_password())
}

/// Decrypts `data` encrypted with `alg` under `password`.
fn decrypt(
    alg: &AlgorithmIdentifierOwned,
    password: &str,
    data: &[u8],
) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    match alg.oid {
        PBES2 => {
            let p: Pbes2Params = params(alg)?;
            if p.kdf.oid != PBKDF2 {
                return Err(PkiError::UnsupportedAlgorithm(format!(
                    "PBES2 key derivation {}",
                    p.kdf.oid
                )));
            }
            let k: Pbkdf2Params = params(&p.kdf)?;
            let prf = match k.prf.as_ref().map(|a| a.oid) {
                None | Some(HMAC_SHA1) => pbkdf2::PBKDF2_HMAC_SHA1,
                Some(HMAC_SHA256) => pbkdf2::PBKDF2_HMAC_SHA256,
                Some(other) => {
                    return Err(PkiError::UnsupportedAlgorithm(format!(
                        "PBKDF2 with {other}"
                    )));
                }
            };
            let key_len = match p.scheme.oid {
                AES128_CBC => 16,
                AES192_CBC => 24,
                AES256_CBC => 32,
                DES_EDE3_CBC => 24,
                other => {
                    return Err(PkiError::UnsupportedAlgorithm(format!(
                        "PBES2 cipher {other}"
                    )));
                }
            };
            let mut key = Zeroizing::new(vec![0u8; key_len]);
            pbkdf2::derive(
                prf,
                iterations(k.iterations)?,
                k.salt.as_bytes(),
                password.as_bytes(),
                &mut key,
            );
            let iv: OctetString = params(&p.scheme)?;
            let iv = iv.as_bytes();
            match p.scheme.oid {
                AES128_CBC => cbc_decrypt::<cbc::Decryptor<aes::Aes128>>(&key, iv, data),
                AES192_CBC => cbc_decrypt::<cbc::Decryptor<aes::Aes192>>(&key, iv, data),
                AES256_CBC => cbc_decrypt::<cbc::Decryptor<aes::Aes256>>(&key, iv, data),
                _ => cbc_decrypt::<cbc::Decryptor<des::TdesEde3>>(&key, iv, data),
            }
        }
        PBE_SHA1_3DES | PBE_SHA1_RC2_128 | PBE_SHA1_RC2_40 => {
            let p: PbeParams = params(alg)?;
            let rounds = iterations(p.iterations)?;
            let pw = bmp_password(password);
            let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
            let salt = p.salt.as_bytes();
            let key_len = match alg.oid {
                PBE_SHA1_3DES => 24,
                PBE_SHA1_RC2_128 => 16,
                _ => 5,
            };
            let key = pkcs12_kdf(sha1, 1, &pw, salt, rounds, key_len);
            let iv = pkcs12_kdf(sha1, 2, &pw, salt, rounds, 8);
            match alg.oid {
                PBE_SHA1_3DES => cbc_decrypt::<cbc::Decryptor<des::TdesEde3>>(&key, &iv, data),
                _ => cbc_decrypt::<cbc::Decryptor<rc2::Rc2>>(&key, &iv, data),
            }
        }
        other => Err(PkiError::UnsupportedAlgorithm(format!(
            "PKCS#12 encryption {other} (export the file again with AES or 3DES)"
        ))),
    }
}

/// Checks the file's integrity MAC (RFC 7292 §5) over the authenticated safe.
fn check_mac(mac: &MacData, password: &str, content: &[u8]) -> Result<(), PkiError> {
    let (digest_alg, hmac_alg) = match mac.mac.algorithm.oid {
        SHA1 => (
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        ),
        SHA256 => (&digest::SHA256, hmac::HMAC_SHA256),
        other => {
            return Err(PkiError::UnsupportedAlgorithm(format!(
                "PKCS#12 MAC {other}"
            )));
        }
    };
    let pw = bmp_password(password);
    let key = pkcs12_kdf(
        digest_alg,
        3,
        &pw,
        mac.mac_salt.as_bytes(),
        iterations(mac.iterations)?,
        digest_alg.output_len(),
    );
    hmac::verify(
        &hmac::Key::new(hmac_alg, &key),
        content,
        mac.mac.digest.as_bytes(),
    )
    .map_err(|_| wrong_password())
}

/// The bytes of an OCTET STRING carried in `any` (BER: constructed too).
fn octets(any: &Any) -> Result<Vec<u8>, PkiError> {
    let der = der::Encode::to_der(any).map_err(PkiError::encode)?;
    let o: crate::BerOctets = decode_ber(&der, "PKCS#12 data")?;
    Ok(o.0)
}

/// Decrypts and reads a PKCS#12 file with `password`. It must hold exactly
/// one private key.
pub fn read_pkcs12(der: &[u8], password: &str) -> Result<Pkcs12Identity, PkiError> {
    check_len(der)?;
    let pfx: Pfx = decode_ber(der, "PKCS#12 file")?;
    if pfx.version != 3 {
        return Err(malformed(format!("version {} (3 expected)", pfx.version)));
    }
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(PkiError::UnsupportedAlgorithm(
            "a PKCS#12 file protected by a public key (only password integrity is read)".into(),
        ));
    }
    let safe = octets(
        pfx.auth_safe
            .content
            .as_ref()
            .ok_or_else(|| malformed("no content"))?,
    )?;
    match &pfx.mac_data {
        Some(mac) => check_mac(mac, password, &safe)?,
        None => return Err(malformed("no integrity MAC")),
    }
    let infos: Vec<ContentInfo> = decode_ber(&safe, "PKCS#12 authenticated safe")?;
    let mut keys: Vec<Zeroizing<Vec<u8>>> = Vec::new();
    let mut certs = Vec::new();
    for info in infos {
        let content = info
            .content
            .as_ref()
            .ok_or_else(|| malformed("empty content"))?;
        let contents: Zeroizing<Vec<u8>> = match info.content_type {
            ID_DATA => Zeroizing::new(octets(content)?),
            ID_ENCRYPTED_DATA => {
                let der = der::Encode::to_der(content).map_err(PkiError::encode)?;
                let e: EncryptedData = decode_ber(&der, "PKCS#12 encrypted data")?;
                let data = e
                    .content
                    .encrypted
                    .ok_or_else(|| malformed("encrypted data without content"))?;
                decrypt(&e.content.algorithm, password, data.as_bytes())?
            }
            other => {
                return Err(PkiError::UnsupportedAlgorithm(format!(
                    "PKCS#12 content {other}"
                )));
            }
        };
        let bags: Vec<SafeBag> = decode_ber(&contents, "PKCS#12 safe contents")?;
        for bag in bags {
            let value = der::Encode::to_der(&bag.value).map_err(PkiError::encode)?;
            match bag.bag_id {
                KEY_BAG => keys.push(Zeroizing::new(value)),
                SHROUDED_KEY_BAG => {
                    let e: EncryptedPrivateKeyInfo = decode_ber(&value, "PKCS#12 key bag")?;
                    keys.push(decrypt(&e.algorithm, password, e.data.as_bytes())?);
                }
                CERT_BAG => {
                    let c: CertBag = decode_ber(&value, "PKCS#12 certificate bag")?;
                    if c.cert_id == X509_CERTIFICATE {
                        certs.push(cert_from_der(c.value.as_bytes())?);
                    }
                }
                // CRL and secret bags say nothing about the identity.
                _ => {}
            }
        }
    }
    let key_pkcs8 = match keys.len() {
        1 => keys.remove(0),
        0 => return Err(malformed("it holds no private key")),
        _ => return Err(malformed("it holds more than one private key")),
    };
    Ok(Pkcs12Identity { key_pkcs8, certs })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7292's derivation against `openssl kdf … PKCS12KDF` (password
    /// "smeg" as a BMPString, salt 0a58cf64530d823f): SHA-1 with one round
    /// for a 3DES key and IV, SHA-256 with 1,000 for a MAC key.
    #[test]
    fn kdf_matches_the_known_vector() {
        let salt = [0x0a, 0x58, 0xcf, 0x64, 0x53, 0x0d, 0x82, 0x3f];
        let key = pkcs12_kdf(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            1,
            &bmp_password("smeg"),
            &salt,
            NonZeroU32::MIN,
            24,
        );
        assert_eq!(
            hex(&key),
            "8aaae6297b6cb04642ab5b077851284eb7128f1a2a7fbca3"
        );
        let iv = pkcs12_kdf(
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            2,
            &bmp_password("smeg"),
            &salt,
            NonZeroU32::MIN,
            8,
        );
        assert_eq!(hex(&iv), "79993dfe048d3b76");
        let mac = pkcs12_kdf(
            &digest::SHA256,
            3,
            &bmp_password("smeg"),
            &salt,
            NonZeroU32::new(1000).unwrap(),
            32,
        );
        assert_eq!(
            hex(&mac),
            "35ac16a454d608fb10c8d7c6338ca85818587aed0ff771fd265957e412c2c03c"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        for input in [&b""[..], b"\x30\x03\x02\x01\x03", b"not der at all"] {
            assert!(read_pkcs12(input, "x").is_err());
        }
    }
}
