//! APNs token authentication: the ES256 provider token signed with the
//! team's `.p8` key. Apple asks for a token to be refreshed no more than
//! once every 20 minutes and no less than once every 60: one token serves
//! every request until it is 50 minutes old.

use anyhow::{Context, bail};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;
use std::sync::Mutex;

/// A token older than this is replaced before use.
pub const REFRESH_AFTER_SECS: i64 = 50 * 60;
/// A token younger than this is never replaced, even when APNs calls it
/// expired (that is clock skew; a new one would be refused as too frequent).
pub const MIN_REFRESH_SECS: i64 = 20 * 60;

/// Signs and caches provider tokens for one key.
pub struct ProviderToken {
    key: EcdsaKeyPair,
    key_id: String,
    team_id: String,
    rng: SystemRandom,
    cached: Mutex<Option<(String, i64)>>,
}

impl ProviderToken {
    /// From the `.p8` file's PEM (PKCS#8 EC P-256), the 10-character key id
    /// and the team id.
    pub fn from_p8(pem: &[u8], key_id: &str, team_id: &str) -> anyhow::Result<Self> {
        if key_id.is_empty() || team_id.is_empty() {
            bail!("apns_key_id and apns_team_id are both needed with apns_key_file");
        }
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem)
            .context("the APNs key is not a PKCS#8 PEM (\"BEGIN PRIVATE KEY\") file")?;
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.secret_pkcs8_der())
                .map_err(|e| anyhow::anyhow!("the APNs key is not an EC P-256 key: {e}"))?;
        Ok(Self {
            key,
            key_id: key_id.to_owned(),
            team_id: team_id.to_owned(),
            rng: SystemRandom::new(),
            cached: Mutex::new(None),
        })
    }

    /// The token to send at `now` (Unix seconds): the cached one, or a new
    /// one when the cached one is [`REFRESH_AFTER_SECS`] old.
    pub fn bearer(&self, now: i64) -> anyhow::Result<String> {
        let mut cached = self
            .cached
            .lock()
            .map_err(|_| anyhow::anyhow!("provider token lock poisoned"))?;
        if let Some((token, iat)) = cached.as_ref()
            && now - iat < REFRESH_AFTER_SECS
            && now >= *iat
        {
            return Ok(token.clone());
        }
        let token = self.sign(now)?;
        *cached = Some((token.clone(), now));
        Ok(token)
    }

    /// After APNs answered `ExpiredProviderToken`: drops the cached token
    /// when it is old enough to be replaced. `false` means the token is
    /// fresh and retrying with a new one would only be refused.
    pub fn expire(&self, now: i64) -> bool {
        let Ok(mut cached) = self.cached.lock() else {
            return false;
        };
        match cached.as_ref() {
            Some((_, iat)) if now - iat < MIN_REFRESH_SECS => false,
            _ => {
                *cached = None;
                true
            }
        }
    }

    /// When the cached token was issued.
    pub fn issued_at(&self) -> Option<i64> {
        self.cached
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(_, iat)| *iat))
    }

    fn sign(&self, iat: i64) -> anyhow::Result<String> {
        let header = serde_json::json!({ "alg": "ES256", "kid": self.key_id });
        let claims = serde_json::json!({ "iss": self.team_id, "iat": iat });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let sig = self
            .key
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| anyhow::anyhow!("cannot sign the APNs provider token"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, UnparsedPublicKey};

    fn key() -> (ProviderToken, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
        );
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        (
            ProviderToken::from_p8(pem.as_bytes(), "KEY1234567", "TEAM123456").unwrap(),
            public,
        )
    }

    #[test]
    fn token_is_a_verifiable_es256_jwt() {
        let (t, public) = key();
        let jwt = t.bearer(1_700_000_000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "ES256", "kid": "KEY1234567"})
        );
        assert_eq!(
            claims,
            serde_json::json!({"iss": "TEAM123456", "iat": 1_700_000_000})
        );
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert_eq!(sig.len(), 64, "JWS ES256 is r||s, not DER");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
            .unwrap();
    }

    #[test]
    fn refreshed_before_an_hour_never_within_twenty_minutes() {
        let (t, _) = key();
        let t0 = 1_700_000_000;
        let first = t.bearer(t0).unwrap();
        assert_eq!(t.bearer(t0 + REFRESH_AFTER_SECS - 1).unwrap(), first);
        let second = t.bearer(t0 + REFRESH_AFTER_SECS).unwrap();
        assert_ne!(second, first);
        assert_eq!(t.issued_at(), Some(t0 + REFRESH_AFTER_SECS));
        // APNs calls a 5-minute-old token expired: keep it (clock skew).
        assert!(!t.expire(t0 + REFRESH_AFTER_SECS + 300));
        assert_eq!(t.bearer(t0 + REFRESH_AFTER_SECS + 300).unwrap(), second);
        // At 20 minutes it may be replaced.
        assert!(t.expire(t0 + REFRESH_AFTER_SECS + MIN_REFRESH_SECS));
        assert_ne!(
            t.bearer(t0 + REFRESH_AFTER_SECS + MIN_REFRESH_SECS)
                .unwrap(),
            second
        );
    }

    #[test]
    fn refuses_keys_that_are_not_p256_pkcs8() {
        assert!(ProviderToken::from_p8(b"not pem", "K", "T").is_err());
        let (_, _) = key();
        assert!(
            ProviderToken::from_p8(
                b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "K",
                "T"
            )
            .is_err()
        );
    }
}
