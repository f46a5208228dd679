//! Certificate authorities, issued certificates and one-time SCEP
//! challenges (R12). Each tenant has one active CA (RSA, SHA-256) whose
//! private key is stored sealed by the server's [`mdm_pki::Vault`]; the CA is
//! addressed by id so it can be rotated. Every issued certificate is recorded
//! and can be revoked.

use crate::StoreError;
use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{CaId, ChallengeId, TenantId};
use crate::secrets::sha256_hex;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::Page;
use mdm_pki::x509_cert::Certificate;
use mdm_pki::{CertificateExt, RsaKey};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

/// A CA as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaRecord {
    pub id: CaId,
    pub tenant_id: TenantId,
    pub subject: String,
    pub cert_der: Vec<u8>,
    /// The PKCS#8 private key sealed by the vault with the CA id as associated data.
    pub sealed_key: Vec<u8>,
    pub not_after: OffsetDateTime,
    pub created_at: OffsetDateTime,
    pub active: bool,
}

/// A CA ready to sign: its certificate and opened key.
pub struct LoadedCa {
    pub id: CaId,
    pub cert: Certificate,
    pub cert_der: Vec<u8>,
    pub key: RsaKey,
}

/// What administrators see of a CA.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct CaInfo {
    pub id: CaId,
    pub subject: String,
    /// SHA-256 of the certificate (hex), what profiles pin as `CAFingerprint`.
    pub fingerprint_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub certificate_pem: String,
    /// The tenant's SCEP URL (devices append `?operation=`).
    pub scep_url: String,
    /// The current ECDSA profile signer this CA certified, once the first
    /// profile made it (absent before, and when `apple_profile_signer = "ca"`).
    pub profile_signer: Option<ProfileSignerInfo>,
    /// The profile-signing identity an administrator uploaded, if any.
    pub signing_identity: Option<crate::signing_identity::SigningIdentityInfo>,
    /// What signs the next profile: `signing_identity` (the uploaded one,
    /// while it is valid), `profile_signer` or `ca`.
    pub profiles_signed_by: &'static str,
}

/// The profile signer as administrators see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileSignerInfo {
    /// Serial number, lowercase hex (also in the certificate list).
    pub serial: String,
    pub subject: String,
    pub fingerprint_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    pub certificate_pem: String,
}

/// An issued certificate as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CertificateRecord {
    /// Serial number, lowercase hex.
    pub serial: String,
    pub tenant_id: TenantId,
    pub ca_id: CaId,
    pub subject: String,
    /// SHA-256 of the DER certificate, lowercase hex.
    pub fingerprint_sha256: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
    /// The registration whose challenge was redeemed for it.
    pub registration: Option<String>,
    /// The device it identifies, once known.
    pub device_id: Option<String>,
    /// Serial of the certificate this one renews.
    pub renewal_of: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    #[serde(skip)]
    pub cert_der: Vec<u8>,
}

/// Filters and paging for listing certificates (newest first).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CertificateQuery {
    pub registration: Option<String>,
    pub device_id: Option<String>,
    /// Only certificates that are not revoked.
    pub valid: Option<bool>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
}

/// A one-time SCEP challenge as stored (its secret only as SHA-256).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScepChallenge {
    pub id: ChallengeId,
    pub tenant_id: TenantId,
    /// The registration (profile download) it belongs to.
    pub registration: String,
    pub challenge_hash: String,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
}

/// What redeeming a challenge found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Redeem {
    /// It was unused and unexpired; it is now used.
    Redeemed(ScepChallenge),
    /// It expired before use.
    Expired(ScepChallenge),
    /// It was used before.
    Used(ScepChallenge),
    /// No such challenge in the tenant.
    Unknown,
}

/// A freshly minted challenge: the only time its secret is visible.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedChallenge {
    pub id: ChallengeId,
    pub registration: String,
    /// The challengePassword to put in the CSR. Shown once.
    pub challenge: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// What an administrator supplies to mint a challenge by hand (third-party SCEP clients).
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChallenge {
    /// A label for what the certificate is for; default `manual:<id>`.
    pub registration: Option<String>,
}

/// How certificates are issued.
#[derive(Clone, Debug)]
pub struct PkiSettings {
    /// Validity of device certificates, in days.
    pub cert_validity_days: i64,
    /// Validity of a new tenant CA, in days.
    pub ca_validity_days: i64,
    /// RSA size of new tenant CAs.
    pub ca_key_bits: usize,
}

impl Default for PkiSettings {
    fn default() -> Self {
        Self {
            cert_validity_days: 365,
            ca_validity_days: 3650,
            ca_key_bits: 2048,
        }
    }
}

fn pki_error(e: mdm_pki::PkiError) -> CoreError {
    CoreError::Store(format!("certificate authority: {e}"))
}

/// The RFC 4514 subject of a certificate the tenant's PKI names after it:
/// `CN=<slug> <role>,O=<name>`, the name's DN special characters blanked.
pub(crate) fn tenant_subject(tenant: &Tenant, role: &str) -> String {
    format!(
        "CN={} {role},O={}",
        tenant.slug,
        tenant
            .name
            .replace([',', '+', '=', '"', '\\', '<', '>', ';'], " ")
    )
}

/// A random positive serial of 16 bytes.
pub fn random_serial(core: &Core) -> [u8; 16] {
    let mut serial = [0u8; 16];
    core.entropy.fill(&mut serial);
    serial[0] = (serial[0] & 0x7f) | 0x01;
    serial
}

impl Core {
    /// The tenant's active CA, created (and audited) if it has none yet.
    /// Served from memory for up to 10 s, so a rotation reaches
    /// every replica within that time.
    pub(crate) async fn tenant_ca(&self, tenant: &Tenant) -> CoreResult<Arc<LoadedCa>> {
        let now = self.now();
        if let Some(ca) = self.ca_cache.fresh(&tenant.id, now) {
            return Ok(ca);
        }
        let cached = self.ca_cache.get(&tenant.id);
        let record = match self.store.active_ca(tenant.id).await? {
            Some(r) => r,
            None => self.create_ca(tenant).await?,
        };
        let loaded = match cached {
            Some((_, ca)) if ca.id == record.id => ca,
            _ => {
                let key_der = self
                    .vault
                    .open(record.id.to_string().as_bytes(), &record.sealed_key)
                    .map_err(pki_error)?;
                let key = RsaKey::from_pkcs8_der(&key_der).map_err(pki_error)?;
                let cert = mdm_pki::cert_from_der(&record.cert_der).map_err(pki_error)?;
                Arc::new(LoadedCa {
                    id: record.id,
                    cert,
                    cert_der: record.cert_der,
                    key,
                })
            }
        };
        self.ca_cache.put(tenant.id, now, loaded.clone());
        Ok(loaded)
    }

    async fn create_ca(&self, tenant: &Tenant) -> CoreResult<CaRecord> {
        let now = self.now();
        let key = RsaKey::generate(self.pki.ca_key_bits).map_err(pki_error)?;
        let subject = tenant_subject(tenant, "Device CA");
        let not_after = now + time::Duration::days(self.pki.ca_validity_days);
        let cert = mdm_pki::self_signed_ca(
            &key,
            &subject,
            &random_serial(self),
            now - time::Duration::minutes(5),
            not_after,
        )
        .map_err(pki_error)?;
        let cert_der = mdm_pki::cert_to_der(&cert).map_err(pki_error)?;
        let id = CaId::new();
        let sealed_key = self
            .vault
            .seal(
                id.to_string().as_bytes(),
                &key.to_pkcs8_der().map_err(pki_error)?,
            )
            .map_err(pki_error)?;
        let record = CaRecord {
            id,
            tenant_id: tenant.id,
            subject: cert.subject_string(),
            cert_der,
            sealed_key,
            not_after,
            created_at: now,
            active: true,
        };
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            &Actor::System,
            AuditAction::CaCreated,
            ("ca", id.to_string()),
        )
        .details(
            serde_json::json!({ "subject": record.subject, "key_bits": self.pki.ca_key_bits }),
        );
        match self.store.create_ca(&record, &audit).await {
            Ok(()) => Ok(record),
            // Another request created the tenant's CA at the same moment: use that one.
            Err(StoreError::Conflict(_)) => self
                .store
                .active_ca(tenant.id)
                .await?
                .ok_or(CoreError::Store("CA vanished".into())),
            Err(e) => Err(e.into()),
        }
    }

    /// The tenant's SCEP URL: no query string, devices append `?operation=`.
    pub fn scep_url(&self, tenant: &Tenant) -> String {
        format!("{}/scep/{}", self.public_url, tenant.slug)
    }

    /// The tenant's CA as administrators see it.
    pub async fn ca_info(&self, actor: &Actor, tenant: &Tenant) -> CoreResult<CaInfo> {
        actor.require_tenant(tenant.id)?;
        let ca = self.tenant_ca(tenant).await?;
        let profile_signer = match self.apple.profile_signing {
            crate::profile_signer::ProfileSigning::Ca => None,
            crate::profile_signer::ProfileSigning::Ecdsa => {
                match self.store.profile_signer(tenant.id, ca.id).await? {
                    None => None,
                    Some(s) => {
                        let cert = mdm_pki::cert_from_der(&s.cert_der).map_err(pki_error)?;
                        Some(ProfileSignerInfo {
                            fingerprint_sha256: hex::encode(mdm_pki::fingerprint_sha256(
                                &s.cert_der,
                            )),
                            subject: cert.subject_string(),
                            not_after: s.not_after,
                            certificate_pem: mdm_pki::cert_to_pem(&cert).map_err(pki_error)?,
                            serial: s.serial,
                        })
                    }
                }
            }
        };
        let signing_identity = match self.signing_identity(actor, tenant).await {
            Ok(info) => Some(info),
            Err(CoreError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let profiles_signed_by = match (&signing_identity, self.apple.profile_signing) {
            (Some(i), _) if i.in_use => "signing_identity",
            (_, crate::profile_signer::ProfileSigning::Ecdsa) => "profile_signer",
            (_, crate::profile_signer::ProfileSigning::Ca) => "ca",
        };
        Ok(CaInfo {
            profile_signer,
            signing_identity,
            profiles_signed_by,
            id: ca.id,
            subject: ca.cert.subject_string(),
            fingerprint_sha256: hex::encode(mdm_pki::fingerprint_sha256(&ca.cert_der)),
            not_after: ca.cert.not_after().map_err(pki_error)?,
            certificate_pem: mdm_pki::cert_to_pem(&ca.cert).map_err(pki_error)?,
            scep_url: self.scep_url(tenant),
        })
    }

    /// Mints a one-time SCEP challenge bound to `registration`, valid for the
    /// tenant's profile validity.
    pub async fn mint_challenge(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        registration: &str,
    ) -> CoreResult<IssuedChallenge> {
        self.mint_challenge_valid_for(actor, tenant, registration, None)
            .await
    }

    /// [`Core::mint_challenge`] valid for `lifetime` instead of the tenant's
    /// profile validity.
    pub(crate) async fn mint_challenge_valid_for(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        registration: &str,
        lifetime: Option<time::Duration>,
    ) -> CoreResult<IssuedChallenge> {
        let (ch, audit, issued) = self
            .new_challenge(actor, tenant, registration, lifetime)
            .await?;
        self.store.create_challenge(&ch, &audit).await?;
        Ok(issued)
    }

    /// A one-time challenge for `registration` and its audit entry, not yet
    /// stored (the caller stores both, with whatever else it writes), and
    /// what the caller hands out.
    pub(crate) async fn new_challenge(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        registration: &str,
        lifetime: Option<time::Duration>,
    ) -> CoreResult<(ScepChallenge, AuditEntry, IssuedChallenge)> {
        actor.require_tenant(tenant.id)?;
        if registration.is_empty()
            || registration.len() > 200
            || registration.chars().any(char::is_control)
        {
            return Err(CoreError::invalid(
                "registration",
                "1-200 printable characters",
            ));
        }
        let settings = self.store.settings(tenant.id).await?;
        let now = self.now();
        let secret = self.token(24);
        let ch = ScepChallenge {
            id: ChallengeId::new(),
            tenant_id: tenant.id,
            registration: registration.to_string(),
            challenge_hash: sha256_hex(&secret),
            created_at: now,
            expires_at: now
                + lifetime.unwrap_or(time::Duration::seconds(settings.profile_validity_secs)),
            used_at: None,
        };
        let audit = AuditEntry::new(Some(tenant.id), now, actor, AuditAction::ScepChallengeCreated, ("scep_challenge", ch.id.to_string()))
            .details(serde_json::json!({ "registration": ch.registration, "expires_at": ch.expires_at.unix_timestamp() }));
        let issued = IssuedChallenge {
            id: ch.id,
            registration: ch.registration.clone(),
            challenge: secret,
            expires_at: ch.expires_at,
        };
        Ok((ch, audit, issued))
    }

    /// Certificates issued in the tenant, newest first.
    pub async fn certificates(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        query: &CertificateQuery,
    ) -> CoreResult<Page<CertificateRecord>> {
        actor.require_tenant(tenant.id)?;
        if query.limit.is_some_and(|l| l == 0 || l > 1000) {
            return Err(CoreError::invalid("limit", "between 1 and 1000"));
        }
        Ok(self.store.certificates(tenant.id, query).await?)
    }

    /// One issued certificate by serial (hex).
    pub async fn certificate(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        serial: &str,
    ) -> CoreResult<CertificateRecord> {
        actor.require_tenant(tenant.id)?;
        self.store
            .certificate(tenant.id, &serial.to_ascii_lowercase())
            .await?
            .ok_or(CoreError::NotFound("certificate"))
    }

    /// Revokes an issued certificate; it can no longer renew or identify a device.
    pub async fn revoke_certificate(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        serial: &str,
    ) -> CoreResult<CertificateRecord> {
        let cert = self.certificate(actor, tenant, serial).await?;
        if cert.revoked_at.is_some() {
            return Ok(cert);
        }
        let now = self.now();
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            actor,
            AuditAction::CertificateRevoked,
            ("certificate", cert.serial.clone()),
        )
        .details(serde_json::json!({ "subject": cert.subject, "registration": cert.registration }));
        self.store
            .revoke_certificate(tenant.id, &cert.serial, now, &audit)
            .await?;
        // A revoked profile signer is replaced by the next profile this
        // process issues (other replicas within the cache's 10 s).
        if self
            .signer_cache
            .get(&tenant.id)
            .is_some_and(|(_, s)| s.serial == cert.serial)
        {
            self.signer_cache.forget(&tenant.id);
        }
        Ok(CertificateRecord {
            revoked_at: Some(now),
            ..cert
        })
    }
}
