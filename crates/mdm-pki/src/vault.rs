//! Encryption at rest: AES-256-GCM under a key derived (HKDF-SHA256) from
//! the server secret. Used for CA private keys and other stored secrets.
//!
//! A sealed value is `0x01 || nonce (12 bytes) || ciphertext || tag`. The
//! associated data names what the value is (e.g. the CA id), so a sealed
//! key cannot be moved to another row and still open.
//!
//! [`Vault::mac`] is a keyed hash (HMAC-SHA256 under a second derived key)
//! for short secrets such as registration PINs: their stored form cannot be
//! brute-forced from a database copy without the server secret.

use crate::PkiError;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf::{HKDF_SHA256, KeyType, Salt};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const INFO: &[u8] = b"mdm vault aes-256-gcm v1";
const MAC_INFO: &[u8] = b"mdm vault hmac-sha256 v1";

/// HKDF output length for the HMAC key.
struct MacKeyLen;

impl KeyType for MacKeyLen {
    fn len(&self) -> usize {
        32
    }
}

/// Seals and opens values with a key derived from the server secret.
pub struct Vault {
    key: LessSafeKey,
    mac_key: hmac::Key,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Vault(<key>)")
    }
}

impl Vault {
    /// Derives the vault key from a 32-byte server secret.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, PkiError> {
        let prk = Salt::new(HKDF_SHA256, b"mdm-server").extract(secret);
        let info = [INFO];
        let okm = prk
            .expand(&info, &AES_256_GCM)
            .map_err(|_| PkiError::Crypto("hkdf"))?;
        let unbound = UnboundKey::from(okm);
        let mut mac_bytes = Zeroizing::new([0u8; 32]);
        prk.expand(&[MAC_INFO], MacKeyLen)
            .and_then(|okm| okm.fill(mac_bytes.as_mut_slice()))
            .map_err(|_| PkiError::Crypto("hkdf"))?;
        Ok(Self {
            key: LessSafeKey::new(unbound),
            mac_key: hmac::Key::new(hmac::HMAC_SHA256, mac_bytes.as_slice()),
        })
    }

    /// HMAC-SHA256 of `data` under a key derived from the server secret.
    pub fn mac(&self, data: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.mac_key, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Encrypts `plaintext`, binding it to `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, PkiError> {
        let nonce_bytes = crate::random_bytes(NONCE_LEN)?;
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&nonce_bytes);
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| PkiError::Crypto("seal"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + buf.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Decrypts a value sealed with the same server secret and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, PkiError> {
        let bad =
            || PkiError::Crypto("sealed value does not open (wrong server secret, or tampered)");
        let (version, rest) = sealed.split_first().ok_or_else(bad)?;
        if *version != VERSION || rest.len() < NONCE_LEN + 16 {
            return Err(bad());
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let mut nonce_arr = [0u8; NONCE_LEN];
        nonce_arr.copy_from_slice(nonce);
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        let len = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce_arr),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| bad())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let v = Vault::from_secret(&[7u8; 32]).unwrap();
        let sealed = v.seal(b"ca:1", b"private key").unwrap();
        assert_eq!(v.open(b"ca:1", &sealed).unwrap().as_slice(), b"private key");
        assert!(
            v.open(b"ca:2", &sealed).is_err(),
            "aad binds the value to its row"
        );
        let other = Vault::from_secret(&[8u8; 32]).unwrap();
        assert!(
            other.open(b"ca:1", &sealed).is_err(),
            "another secret cannot open it"
        );
        let mut tampered = sealed.clone();
        if let Some(b) = tampered.last_mut() {
            *b ^= 1;
        }
        assert!(v.open(b"ca:1", &tampered).is_err());
        assert!(v.open(b"ca:1", &[1, 2, 3]).is_err());
        assert_ne!(
            v.seal(b"ca:1", b"x").unwrap(),
            v.seal(b"ca:1", b"x").unwrap(),
            "fresh nonce each time"
        );
        assert_eq!(v.mac(b"pin"), v.mac(b"pin"));
        assert_ne!(v.mac(b"pin"), v.mac(b"pim"));
        assert_ne!(v.mac(b"pin"), other.mac(b"pin"), "keyed by the secret");
    }
}
