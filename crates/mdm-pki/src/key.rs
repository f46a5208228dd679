//! RSA private keys backed by aws-lc-rs.

use std::sync::OnceLock;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SystemRandom, fill};
use aws_lc_rs::rsa::{KeyPair, KeySize, Pkcs1PrivateDecryptingKey, PrivateDecryptingKey};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256, RSA_PKCS1_SHA384, RSA_PKCS1_SHA512};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use spki::SubjectPublicKeyInfoOwned;
use zeroize::Zeroizing;

use crate::{DigestAlg, PkiError, alg::spki_from_der};

/// An RSA private key (2048 to 8192 bits) for signing and key-transport decryption.
///
/// Private-key operations run in aws-lc. The public half is kept in the forms the
/// RustCrypto builders need. SHA-1 signatures (legacy peers only) fall back to the
/// pure-Rust `rsa` crate, because aws-lc-rs does not sign with SHA-1.
pub struct RsaKey {
    pair: KeyPair,
    decrypter: Pkcs1PrivateDecryptingKey,
    spki: SubjectPublicKeyInfoOwned,
    spki_der: Vec<u8>,
    public: rsa::PublicKey,
    legacy: OnceLock<rsa::PrivateKey>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RsaKey")
            .field("bits", &self.bits())
            .finish_non_exhaustive()
    }
}

impl RsaKey {
    /// Generates a fresh key of `bits` (2048, 3072, 4096 or 8192).
    pub fn generate(bits: usize) -> Result<Self, PkiError> {
        let size = match bits {
            2048 => KeySize::Rsa2048,
            3072 => KeySize::Rsa3072,
            4096 => KeySize::Rsa4096,
            8192 => KeySize::Rsa8192,
            _ => {
                return Err(PkiError::InvalidArgument(format!(
                    "unsupported RSA size {bits}"
                )));
            }
        };
        let pair = KeyPair::generate(size).map_err(|_| PkiError::Crypto("RSA key generation"))?;
        Self::from_pair(pair)
    }

    /// Loads an unencrypted PKCS#8 `PrivateKeyInfo` (DER).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, PkiError> {
        let pair = KeyPair::from_pkcs8(der).map_err(|e| PkiError::KeyRejected(e.to_string()))?;
        Self::from_pair(pair)
    }

    /// Loads a PKCS#1 `RSAPrivateKey` (DER), as `openssl genrsa -traditional` writes.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, PkiError> {
        let pair = KeyPair::from_der(der).map_err(|e| PkiError::KeyRejected(e.to_string()))?;
        Self::from_pair(pair)
    }

    /// Loads a DER key in either PKCS#8 or PKCS#1 form.
    pub fn from_der(der: &[u8]) -> Result<Self, PkiError> {
        Self::from_pkcs8_der(der).or_else(|_| Self::from_pkcs1_der(der))
    }

    /// Loads an unencrypted PEM key: `PRIVATE KEY` (PKCS#8) or `RSA PRIVATE KEY` (PKCS#1).
    pub fn from_pem(pem: &str) -> Result<Self, PkiError> {
        let (label, der) = der::pem::decode_vec(pem.as_bytes())
            .map_err(|e| PkiError::malformed("PEM private key", e))?;
        let der = Zeroizing::new(der);
        match label {
            "PRIVATE KEY" => Self::from_pkcs8_der(&der),
            "RSA PRIVATE KEY" => Self::from_pkcs1_der(&der),
            other => Err(PkiError::KeyRejected(format!(
                "unsupported PEM label {other:?}"
            ))),
        }
    }

    fn from_pair(pair: KeyPair) -> Result<Self, PkiError> {
        let pkcs8 = pkcs8_of(&pair)?;
        let decrypter = PrivateDecryptingKey::from_pkcs8(&pkcs8)
            .ok()
            .and_then(|k| Pkcs1PrivateDecryptingKey::new(k).ok())
            .ok_or_else(|| PkiError::KeyRejected("not usable for decryption".into()))?;
        let spki_der = pair
            .public_key()
            .as_der()
            .map_err(|_| PkiError::Crypto("public key encoding"))?
            .as_ref()
            .to_vec();
        let spki = spki_from_der(&spki_der)?;
        let public = rsa::PublicKey::from_public_key_der(&spki_der)
            .map_err(|e| PkiError::KeyRejected(e.to_string()))?;
        Ok(Self {
            pair,
            decrypter,
            spki,
            spki_der,
            public,
            legacy: OnceLock::new(),
        })
    }

    /// Exports the key as PKCS#8 DER; the buffer is wiped when dropped.
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        pkcs8_of(&self.pair)
    }

    /// Exports the key as a PKCS#8 PEM (`PRIVATE KEY`); wiped when dropped.
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>, PkiError> {
        let der = self.to_pkcs8_der()?;
        der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &der)
            .map(Zeroizing::new)
            .map_err(PkiError::encode)
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.pair.public_modulus_len() * 8
    }

    /// The public key as a SubjectPublicKeyInfo.
    pub fn public_key_spki(&self) -> &SubjectPublicKeyInfoOwned {
        &self.spki
    }

    /// The DER of [`Self::public_key_spki`].
    pub fn public_key_spki_der(&self) -> &[u8] {
        &self.spki_der
    }

    /// The public key for RustCrypto's `rsa` APIs (encryption to this key, builders).
    pub fn rsa_public_key(&self) -> &rsa::PublicKey {
        &self.public
    }

    /// Signs `message` with RSA PKCS#1 v1.5 over `digest(message)`.
    pub fn sign(&self, digest: DigestAlg, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let encoding: &'static dyn aws_lc_rs::signature::RsaEncoding = match digest {
            DigestAlg::Sha1 => return self.sign_sha1(message),
            DigestAlg::Sha256 => &RSA_PKCS1_SHA256,
            DigestAlg::Sha384 => &RSA_PKCS1_SHA384,
            DigestAlg::Sha512 => &RSA_PKCS1_SHA512,
        };
        let mut sig = vec![0u8; self.pair.public_modulus_len()];
        self.pair
            .sign(encoding, &SystemRandom::new(), message, &mut sig)
            .map_err(|_| PkiError::Crypto("RSA signing"))?;
        Ok(sig)
    }

    fn sign_sha1(&self, message: &[u8]) -> Result<Vec<u8>, PkiError> {
        let key = match self.legacy.get() {
            Some(key) => key,
            None => {
                let pkcs8 = self.to_pkcs8_der()?;
                let key = rsa::PrivateKey::from_pkcs8_der(&pkcs8)
                    .map_err(|e| PkiError::KeyRejected(e.to_string()))?;
                self.legacy.get_or_init(|| key)
            }
        };
        key.pkcs1v15_sign::<sha1::Sha1>(message)
            .map_err(|_| PkiError::Crypto("RSA SHA-1 signing"))
    }

    /// RSA PKCS#1 v1.5 key-transport decryption of a content-encryption key.
    ///
    /// Never fails: when the padding is wrong or the plaintext is not `expected_len`
    /// bytes long, a random key of `expected_len` bytes is returned instead, so the
    /// failure surfaces later (bad CBC padding or an unparsable CSR) and looks the
    /// same as any other corrupt message: no padding oracle (RFC 3218 §2.3.2).
    pub fn decrypt_cek(&self, ciphertext: &[u8], expected_len: usize) -> Zeroizing<Vec<u8>> {
        let mut fallback = Zeroizing::new(vec![0u8; expected_len]);
        // A failing system RNG leaves zeros; decryption with them fails later all the same.
        let _ = fill(&mut fallback);
        let mut out = Zeroizing::new(vec![0u8; self.decrypter.min_output_size()]);
        let decrypted = match self.decrypter.decrypt(ciphertext, &mut out) {
            Ok(plain) if plain.len() == expected_len => Some(plain.to_vec()),
            _ => None,
        };
        match decrypted {
            Some(plain) => Zeroizing::new(plain),
            None => fallback,
        }
    }
}

/// PKCS#8 DER of `pair` (aws-lc wipes its own buffer on drop; so does ours).
fn pkcs8_of(pair: &KeyPair) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let doc = pair
        .as_der()
        .map_err(|_| PkiError::Crypto("PKCS#8 export"))?;
    Ok(Zeroizing::new(doc.as_ref().to_vec()))
}

/// Encrypts `plaintext` (a content-encryption key) to the RSA public key in
/// `spki_der` with PKCS#1 v1.5 padding, as CMS key transport requires.
/// Keys of 2048 bits and more go through aws-lc; smaller ones (devices whose
/// profile left SCEP `Keysize` at its 1024-bit default), which aws-lc refuses,
/// through the pure-Rust `rsa` crate.
pub fn rsa_pkcs1v15_encrypt(spki_der: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, PkiError> {
    use aws_lc_rs::rsa::{Pkcs1PublicEncryptingKey, PublicEncryptingKey};
    let key = match PublicEncryptingKey::from_der(spki_der) {
        Ok(public) => Pkcs1PublicEncryptingKey::new(public)
            .map_err(|_| PkiError::KeyRejected("not an RSA encryption key".into()))?,
        Err(aws_lc_rs::error::KeyRejected { .. }) => return legacy_encrypt(spki_der, plaintext),
    };
    if plaintext.len() > key.max_plaintext_size() {
        return Err(PkiError::InvalidArgument(format!(
            "{} bytes do not fit a {}-bit RSA key",
            plaintext.len(),
            key.key_size_bits()
        )));
    }
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(plaintext, &mut out)
        .map_err(|_| PkiError::Crypto("RSA key transport"))?
        .len();
    out.truncate(len);
    Ok(out)
}

/// Key transport with the pure-Rust `rsa` crate, for keys aws-lc refuses.
fn legacy_encrypt(spki_der: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, PkiError> {
    let public = rsa::PublicKey::from_public_key_der(spki_der)
        .map_err(|e| PkiError::KeyRejected(e.to_string()))?;
    public
        .pkcs1v15_encrypt(plaintext)
        .map_err(|e| PkiError::InvalidArgument(format!("RSA key transport: {e}")))
}
