//! Random bytes from aws-lc's system generator.

use zeroize::Zeroizing;

use crate::PkiError;

/// `len` random bytes, wiped when dropped (used for keys and IVs).
pub fn random_bytes(len: usize) -> Result<Zeroizing<Vec<u8>>, PkiError> {
    let mut out = Zeroizing::new(vec![0u8; len]);
    aws_lc_rs::rand::fill(&mut out).map_err(|_| PkiError::Crypto("system random generator"))?;
    Ok(out)
}
