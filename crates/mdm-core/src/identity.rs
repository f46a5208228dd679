//! Who is talking on the Apple MDM endpoints: the device identity
//! certificate, presented by mutual TLS, forwarded by a trusted proxy (RFC
//! 9440 `Client-Cert`), or proven by `Mdm-Signature` over the exact body.
//! The certificate must be one this tenant's CA issued and recorded, not
//! revoked, and bound to the enrollment at Authenticate; one certificate
//! serves one enrollment.
//!
//! Refusals are [`Refusal`]s: the edge answers them with statuses that never
//! make a device unenroll (never 401, never 403).

use crate::core::Core;
use crate::error::CoreError;
use std::sync::Arc;
use time::OffsetDateTime;

/// How the request presented the device identity, as the edge found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PresentedIdentity {
    /// The TLS client certificate (DER) of a connection this server terminated.
    Tls(Arc<Vec<u8>>),
    /// The `Client-Cert` header of a proxy the configuration trusts.
    Forwarded(String),
    /// The `Mdm-Signature` header.
    Signature(String),
    /// Nothing.
    None,
}

/// A device request on the check-in or command URL.
#[derive(Clone, Debug)]
pub struct DeviceRequest {
    /// The tenant slug from the URL.
    pub slug: String,
    pub identity: PresentedIdentity,
    pub body: Vec<u8>,
}

/// A certificate that proved itself for this request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenCert {
    pub der: Vec<u8>,
    /// SHA-256 of the DER, lowercase hex (what `certificates` records).
    pub fingerprint: String,
}

/// Why a device request was refused. Nothing was changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The body is not a message of this endpoint (bad plist, missing keys).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The body is larger than any message of this endpoint.
    #[error("message too large")]
    TooLarge,
    /// A check-in `MessageType` this server does not handle.
    #[error("unsupported check-in message type {0:?}")]
    Unsupported(String),
    /// No identity, or one that does not prove itself or is not ours.
    #[error("device identity refused: {0}")]
    Identity(String),
    /// The identity is fine but belongs to another enrollment (UDID mismatch,
    /// a certificate serving a second device).
    #[error("device identity does not match the enrollment: {0}")]
    Mismatch(String),
    /// The registration behind an Authenticate is unknown, ended or expired.
    #[error("registration refused: {0}")]
    Registration(String),
    /// No enrollment (Authenticate first), or one that is disabled.
    #[error("not enrolled: {0}")]
    NotEnrolled(String),
    /// The user of a macOS user channel is not the device's registered user,
    /// or the device already has a managed user (R14); also a declined
    /// UserAuthenticate.
    #[error("user channel refused: {0}")]
    UserRefused(String),
}

/// The outcome of a device request: a refusal, or a failure of the server.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<crate::StoreError> for DeviceError {
    fn from(e: crate::StoreError) -> Self {
        Self::Core(e.into())
    }
}

/// Result of a device use case.
pub type DeviceResult<T> = Result<T, DeviceError>;

/// How far an `Mdm-Signature` signing time may be from the server clock.
pub const SIGNATURE_SKEW: time::Duration = time::Duration::minutes(10);

fn refused(why: impl Into<String>) -> DeviceError {
    DeviceError::Refused(Refusal::Identity(why.into()))
}

impl Core {
    /// Proves the presented identity: a TLS or forwarded certificate as is,
    /// an `Mdm-Signature` by verifying it over `body` and its signing time.
    /// Whether the certificate is ours and bound is checked by the caller.
    pub(crate) fn prove_identity(
        &self,
        identity: &PresentedIdentity,
        body: &[u8],
        now: OffsetDateTime,
    ) -> DeviceResult<ProvenCert> {
        let der = match identity {
            PresentedIdentity::Tls(der) => der.as_ref().clone(),
            PresentedIdentity::Forwarded(header) => {
                match mdm_apple::parse_forwarded_client_cert(header) {
                    Ok(Some(c)) => c.cert_der,
                    Ok(None) => return Err(refused("the proxy forwarded no client certificate")),
                    Err(e) => return Err(refused(e.to_string())),
                }
            }
            PresentedIdentity::Signature(header) => {
                let v = mdm_apple::verify_mdm_signature(header, body, &self.signers)
                    .map_err(|e| refused(e.to_string()))?;
                // A signature without a signing time cannot be dated; one with
                // a time far from ours is refused (replay of an old capture).
                if v.signing_time.is_some() {
                    mdm_apple::check_skew(v.signing_time, now, SIGNATURE_SKEW)
                        .map_err(|e| refused(e.to_string()))?;
                }
                return Ok(ProvenCert {
                    der: v.signer.der.clone(),
                    fingerprint: hex::encode(v.signer.fingerprint),
                });
            }
            PresentedIdentity::None => {
                return Err(refused("no client certificate and no Mdm-Signature header"));
            }
        };
        let fingerprint = hex::encode(mdm_pki::fingerprint_sha256(&der));
        Ok(ProvenCert { der, fingerprint })
    }
}

/// The sealing context of an enrollment's UnlockToken.
pub(crate) fn unlock_token_aad(tenant: crate::TenantId, enrollment: &str) -> Vec<u8> {
    format!("apple-unlock-token:{tenant}:{enrollment}").into_bytes()
}

/// A stable short label of a certificate fingerprint for logs.
pub(crate) fn short(fingerprint: &str) -> &str {
    fingerprint.get(..16).unwrap_or(fingerprint)
}
