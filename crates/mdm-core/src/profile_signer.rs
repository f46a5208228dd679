//! The management-profile signer (ADR 0016): an ECDSA P-256 identity that
//! the tenant CA certifies, one per CA at a time, made on first use and
//! replaced before it ends or once revoked. Profiles are signed with it rather than with the
//! CA key, so the CA key signs only certificates (and CertReps), and a
//! profile signature costs a fraction of an RSA private-key operation. Its
//! key is sealed by the vault like the CA's; its certificate is recorded with
//! the CA's other certificates. `apple_profile_signer = "ca"` signs with the
//! CA key instead.

use crate::StoreError;
use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{CaId, TenantId};
use crate::pki::{CertificateRecord, LoadedCa, random_serial, tenant_subject};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_pki::x509_cert::Certificate;
use mdm_pki::{CertificateExt, EcKey};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// Which key signs management profiles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileSigning {
    /// A P-256 signer certified by the tenant CA (the default).
    #[default]
    Ecdsa,
    /// The tenant CA's own RSA key.
    Ca,
}

/// How long a new profile signer is valid (never past its CA).
pub const SIGNER_VALIDITY: Duration = Duration::days(730);

/// A signer that ends within this is replaced by the next profile issued.
pub const SIGNER_RENEW_BEFORE: Duration = Duration::days(30);

/// A profile signer as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileSignerRecord {
    pub tenant_id: TenantId,
    pub ca_id: CaId,
    /// Serial of its certificate (lowercase hex), also in `certificates`.
    pub serial: String,
    pub cert_der: Vec<u8>,
    /// The PKCS#8 key sealed by the vault with [`signer_aad`] as associated data.
    pub sealed_key: Vec<u8>,
    pub not_after: OffsetDateTime,
    pub created_at: OffsetDateTime,
}

/// What storing a new profile signer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SignerStored {
    /// Stored, with its certificate record and audit entry.
    Stored,
    /// Another request stored a signer for that CA first (the current one
    /// was no longer the one being replaced): nothing was written, and this
    /// is the current signer.
    Raced(ProfileSignerRecord),
}

/// A profile signer ready to sign.
pub struct LoadedSigner {
    pub ca_id: CaId,
    pub serial: String,
    pub cert: Certificate,
    pub key: EcKey,
    pub not_after: OffsetDateTime,
}

/// The sealing context of a profile signer's key.
fn signer_aad(tenant: TenantId, serial: &str) -> Vec<u8> {
    format!("profile-signer:{tenant}:{serial}").into_bytes()
}

fn pki_error(e: mdm_pki::PkiError) -> CoreError {
    CoreError::Store(format!("profile signer: {e}"))
}

/// Whether `signer` should give way to a new one at `now`: it ends within
/// [`SIGNER_RENEW_BEFORE`] and a new one would last longer (its CA does).
fn due(signer_end: OffsetDateTime, ca_end: OffsetDateTime, now: OffsetDateTime) -> bool {
    signer_end <= now + SIGNER_RENEW_BEFORE && signer_end < ca_end
}

impl Core {
    /// The tenant's current profile signer for `ca`, made (and audited) when
    /// it has none or its signer is due. Served from memory for up to 10 s.
    pub(crate) async fn profile_signer(
        &self,
        tenant: &Tenant,
        ca: &LoadedCa,
    ) -> CoreResult<Arc<LoadedSigner>> {
        let now = self.now();
        let ca_end = ca.cert.not_after().map_err(pki_error)?;
        if let Some(s) = self.signer_cache.fresh(&tenant.id, now)
            && s.ca_id == ca.id
            && !due(s.not_after, ca_end, now)
        {
            return Ok(s);
        }
        let stored = self.store.profile_signer(tenant.id, ca.id).await?;
        let record = match stored {
            Some(r) if !due(r.not_after, ca_end, now) => r,
            replaced => {
                self.create_profile_signer(tenant, ca, ca_end, replaced.map(|r| r.serial))
                    .await?
            }
        };
        let cached = self
            .signer_cache
            .get(&tenant.id)
            .map(|(_, s)| s)
            .filter(|s| s.ca_id == record.ca_id && s.serial == record.serial);
        let loaded = match cached {
            Some(s) => s,
            None => Arc::new(open_signer(self, record)?),
        };
        self.signer_cache.put(tenant.id, now, loaded.clone());
        Ok(loaded)
    }

    /// Makes a signer to replace `replacing` (the current one's serial, when
    /// there is one) and stores it, unless another request stored one first:
    /// then that one is used and the new one, never recorded, is dropped.
    async fn create_profile_signer(
        &self,
        tenant: &Tenant,
        ca: &LoadedCa,
        ca_end: OffsetDateTime,
        mut replacing: Option<String>,
    ) -> CoreResult<ProfileSignerRecord> {
        let now = self.now();
        let key = EcKey::generate().map_err(pki_error)?;
        let not_before = now - Duration::minutes(5);
        let not_after = (now + SIGNER_VALIDITY).min(ca_end);
        let subject = tenant_subject(tenant, "Profile Signing");
        let cert = mdm_pki::issue_content_signer(
            &ca.key,
            &ca.cert,
            &subject,
            key.public_key_spki().clone(),
            &random_serial(self),
            not_before,
            not_after,
        )
        .map_err(pki_error)?;
        let cert_der = mdm_pki::cert_to_der(&cert).map_err(pki_error)?;
        let serial = cert.serial_hex();
        let sealed_key = self
            .vault
            .seal(
                &signer_aad(tenant.id, &serial),
                &key.to_pkcs8_der().map_err(pki_error)?,
            )
            .map_err(pki_error)?;
        let certificate = CertificateRecord {
            serial: serial.clone(),
            tenant_id: tenant.id,
            ca_id: ca.id,
            subject: cert.subject_string(),
            fingerprint_sha256: hex::encode(mdm_pki::fingerprint_sha256(&cert_der)),
            not_before,
            not_after,
            issued_at: now,
            registration: None,
            device_id: None,
            renewal_of: None,
            revoked_at: None,
            cert_der: cert_der.clone(),
        };
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            &Actor::System,
            AuditAction::CertificateIssued,
            ("certificate", serial.clone()),
        )
        .details(serde_json::json!({
            "purpose": "profile_signing",
            "subject": certificate.subject,
            "key": "ECDSA P-256",
            "ca": ca.id,
            "not_after": not_after.unix_timestamp(),
        }));
        let record = ProfileSignerRecord {
            tenant_id: tenant.id,
            ca_id: ca.id,
            serial,
            cert_der,
            sealed_key,
            not_after,
            created_at: now,
        };
        for _ in 0..2 {
            let stored = self
                .store
                .create_profile_signer(&record, &certificate, &audit, replacing.as_deref())
                .await;
            match stored {
                Ok(SignerStored::Stored) => return Ok(record),
                // Another request stored one first: it is new, so not due —
                // unless the signer it replaced was revoked meanwhile and an
                // older one became current, which this one replaces in turn.
                Ok(SignerStored::Raced(current)) if due(current.not_after, ca_end, now) => {
                    replacing = Some(current.serial);
                }
                Ok(SignerStored::Raced(current)) => return Ok(current),
                // A serial collision (16 random bytes): nothing was written;
                // the next profile tries again.
                Err(StoreError::Conflict(what)) => {
                    return Err(CoreError::Store(format!(
                        "profile signer not stored: {what}"
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Store(
            "profile signer not stored: the current signer kept changing".into(),
        ))
    }
}

fn open_signer(core: &Core, record: ProfileSignerRecord) -> CoreResult<LoadedSigner> {
    let key_der = core
        .vault
        .open(
            &signer_aad(record.tenant_id, &record.serial),
            &record.sealed_key,
        )
        .map_err(pki_error)?;
    Ok(LoadedSigner {
        ca_id: record.ca_id,
        cert: mdm_pki::cert_from_der(&record.cert_der).map_err(pki_error)?,
        key: EcKey::from_pkcs8_der(&key_der).map_err(pki_error)?,
        serial: record.serial,
        not_after: record.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signer_is_due_near_its_end_unless_its_ca_ends_first() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let far = now + Duration::days(3000);
        assert!(!due(now + Duration::days(31), far, now));
        assert!(due(now + Duration::days(30), far, now));
        assert!(due(now - Duration::days(1), far, now));
        // The CA ends with the signer: a new signer would not last longer.
        assert!(!due(
            now + Duration::days(10),
            now + Duration::days(10),
            now
        ));
    }
}
