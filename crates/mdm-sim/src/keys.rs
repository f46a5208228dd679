//! Device keys made ahead of time, so load tests time the protocol and not
//! RSA key generation (~90 ms of CPU per 2048-bit key).

use mdm_pki::RsaKey;
use std::path::Path;
use std::sync::Mutex;

use crate::error::SimError;
use crate::measure::parallel;

/// Loads `dir/key-<i>.p8` (PKCS#8 DER) or generates and saves it.
pub fn cached_key(dir: &Path, i: usize) -> Result<RsaKey, SimError> {
    let path = dir.join(format!("key-{i}.p8"));
    if let Ok(der) = std::fs::read(&path)
        && let Ok(key) = RsaKey::from_pkcs8_der(&der)
        && key.bits() == 2048
    {
        return Ok(key);
    }
    let key = RsaKey::generate(2048).map_err(SimError::local)?;
    std::fs::create_dir_all(dir).map_err(SimError::local)?;
    let tmp = dir.join(format!("key-{i}.p8.tmp-{}", std::process::id()));
    std::fs::write(
        &tmp,
        key.to_pkcs8_der().map_err(SimError::local)?.as_slice(),
    )
    .map_err(SimError::local)?;
    std::fs::rename(&tmp, &path).map_err(SimError::local)?;
    Ok(key)
}

/// Runs one private-key operation of each kind with `key` (a signature and
/// a key-transport decryption): aws-lc sets up an RSA key's blinding on its
/// first use, which costs about a fifth of a load generator's CPU per
/// registration when it happens inside the timed window.
pub fn warm_up(key: &RsaKey) -> Result<(), SimError> {
    key.sign(mdm_pki::DigestAlg::Sha256, b"warm-up")
        .map_err(SimError::local)?;
    let sealed = mdm_pki::rsa_pkcs1v15_encrypt(key.public_key_spki_der(), &[0u8; 16])
        .map_err(SimError::local)?;
    key.decrypt_cek(&sealed, 16);
    Ok(())
}

/// A pool of RSA-2048 device keys, handed out once each.
pub struct KeyPool {
    keys: Mutex<Vec<RsaKey>>,
}

impl KeyPool {
    /// `n` keys, from `cache` when given (missing ones are generated and
    /// saved), made on every core.
    pub fn prepare(n: usize, cache: Option<&Path>) -> Result<Self, SimError> {
        let keys = parallel(n, |i| match cache {
            Some(dir) => cached_key(dir, i),
            None => RsaKey::generate(2048).map_err(SimError::local),
        })?;
        Ok(Self {
            keys: Mutex::new(keys),
        })
    }

    /// The next unused key, if any is left.
    pub fn take(&self) -> Option<RsaKey> {
        self.keys.lock().ok()?.pop()
    }

    /// How many are left.
    pub fn len(&self) -> usize {
        self.keys.lock().map_or(0, |k| k.len())
    }

    /// Whether none is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
