//! A profile-signing identity an administrator brings (ADR 0017): a
//! certificate from another CA — a public one, so that devices show the
//! profile as verified, or the organisation's own — with its key. While it is
//! valid it signs every management profile of the tenant, its intermediates
//! carried in the signature; when it has expired (or is removed) the signer
//! the tenant CA certifies takes over again, so enrolment never stops. Its key
//! is sealed by the vault like the CA's.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::TenantId;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use base64::Engine as _;
use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::ext::pkix::{KeyUsage, KeyUsages};
use mdm_pki::{CertificateExt, SigningKey};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

/// At most this many certificates are read from one upload.
pub const MAX_UPLOADED_CERTS: usize = 10;

/// A signing identity as stored: one per tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningIdentityRecord {
    pub tenant_id: TenantId,
    /// The signing certificate (DER).
    pub cert_der: Vec<u8>,
    /// The intermediates it chains through, leaf side first, as PEM (empty
    /// when a root issued it).
    pub chain_pem: String,
    /// The PKCS#8 key sealed by the vault with [`identity_aad`].
    pub sealed_key: Vec<u8>,
    pub fingerprint_sha256: String,
    pub subject: String,
    pub issuer: String,
    /// `RSA 2048`, `ECDSA P-256`.
    pub key_kind: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    pub uploaded_at: OffsetDateTime,
    /// Who uploaded it (the audit trail's actor label).
    pub uploaded_by: String,
}

/// An identity to upload: PEM text, or a PKCS#12 file.
#[derive(Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSigningIdentity {
    /// PEM: the signing certificate and the intermediates it chains through,
    /// in any order (a root may be included; devices have their own and it is
    /// not carried). It may hold the private key as well.
    pub certificate_pem: Option<String>,
    /// The unencrypted private key as PEM (`PRIVATE KEY`, `RSA PRIVATE KEY`
    /// or `EC PRIVATE KEY`), when `certificate_pem` does not hold it.
    pub private_key_pem: Option<String>,
    /// Instead of PEM: a PKCS#12 file (`.p12`, `.pfx`, as Keychain Access,
    /// Windows or `openssl pkcs12 -export` write it), base64.
    pub pkcs12_base64: Option<String>,
    /// The PKCS#12 file's password.
    pub password: Option<String>,
}

impl std::fmt::Debug for NewSigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSigningIdentity")
            .field("certificate_pem", &self.certificate_pem.is_some())
            .field("private_key_pem", &self.private_key_pem.is_some())
            .field("pkcs12_base64", &self.pkcs12_base64.is_some())
            .finish_non_exhaustive()
    }
}

/// The uploaded signing identity as administrators see it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct SigningIdentityInfo {
    pub subject: String,
    pub issuer: String,
    /// Serial number, lowercase hex.
    pub serial: String,
    pub fingerprint_sha256: String,
    /// `RSA 2048`, `ECDSA P-256`.
    pub key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub not_before: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub not_after: OffsetDateTime,
    /// Subjects of the intermediates carried in every signature, leaf side first.
    pub chain: Vec<String>,
    pub certificate_pem: String,
    #[serde(with = "time::serde::rfc3339")]
    pub uploaded_at: OffsetDateTime,
    pub uploaded_by: String,
    /// Whether it signs profiles now: false once it has expired, when the
    /// signer the tenant CA certifies signs them instead.
    pub in_use: bool,
}

/// An uploaded identity ready to sign.
pub(crate) struct LoadedIdentity {
    pub cert: Certificate,
    pub chain: Vec<Certificate>,
    pub key: SigningKey,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

impl LoadedIdentity {
    pub(crate) fn valid_at(&self, now: OffsetDateTime) -> bool {
        self.not_before <= now && now < self.not_after
    }
}

/// What an upload was checked to be.
struct Checked {
    key: SigningKey,
    leaf: Certificate,
    chain: Vec<Certificate>,
}

/// The sealing context of an uploaded identity's key.
fn identity_aad(tenant: TenantId, fingerprint: &str) -> Vec<u8> {
    format!("signing-identity:{tenant}:{fingerprint}").into_bytes()
}

fn pki_error(e: mdm_pki::PkiError) -> CoreError {
    CoreError::Store(format!("signing identity: {e}"))
}

fn time_text(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

/// The key and certificates of an upload, from whichever form it came in.
fn material(new: &NewSigningIdentity) -> CoreResult<(SigningKey, Vec<Certificate>)> {
    if let Some(p12) = &new.pkcs12_base64 {
        if new.certificate_pem.is_some() || new.private_key_pem.is_some() {
            return Err(CoreError::invalid(
                "pkcs12_base64",
                "give either a PKCS#12 file or PEM, not both",
            ));
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(p12.trim())
            .map_err(|e| CoreError::invalid("pkcs12_base64", format!("not base64: {e}")))?;
        return pkcs12_material(&der, new.password.as_deref().unwrap_or_default());
    }
    let certs_text = new.certificate_pem.as_deref().ok_or_else(|| {
        CoreError::invalid("certificate_pem", "give the signing certificate as PEM")
    })?;
    let blocks = mdm_pki::pem_blocks(certs_text)
        .map_err(|e| CoreError::invalid("certificate_pem", e.to_string()))?;
    let cert_blocks: Vec<_> = blocks.iter().filter(|b| b.label == "CERTIFICATE").collect();
    if cert_blocks.is_empty() {
        return Err(CoreError::invalid(
            "certificate_pem",
            "no -----BEGIN CERTIFICATE----- block",
        ));
    }
    if cert_blocks.len() > MAX_UPLOADED_CERTS {
        return Err(CoreError::invalid(
            "certificate_pem",
            format!("more than {MAX_UPLOADED_CERTS} certificates"),
        ));
    }
    let certs = cert_blocks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            mdm_pki::cert_from_pem(b.text).map_err(|e| {
                CoreError::invalid("certificate_pem", format!("certificate {}: {e}", i + 1))
            })
        })
        .collect::<CoreResult<Vec<_>>>()?;
    let (field, key_text) = match &new.private_key_pem {
        Some(k) => ("private_key_pem", k.as_str()),
        None => ("certificate_pem", certs_text),
    };
    let key =
        SigningKey::from_pem(key_text).map_err(|e| CoreError::invalid(field, e.to_string()))?;
    Ok((key, certs))
}

/// The key and certificates of a PKCS#12 file.
pub(crate) fn pkcs12_material(
    der: &[u8],
    password: &str,
) -> CoreResult<(SigningKey, Vec<Certificate>)> {
    let bundle = mdm_pki::read_pkcs12(der, password)
        .map_err(|e| CoreError::invalid("pkcs12_base64", e.to_string()))?;
    if bundle.certs.len() > MAX_UPLOADED_CERTS {
        return Err(CoreError::invalid(
            "pkcs12_base64",
            format!("more than {MAX_UPLOADED_CERTS} certificates"),
        ));
    }
    let key = SigningKey::from_pkcs8_der(&bundle.key_pkcs8)
        .map_err(|e| CoreError::invalid("pkcs12_base64", e.to_string()))?;
    Ok((key, bundle.certs))
}

fn self_issued(c: &Certificate) -> bool {
    c.tbs_certificate().subject() == c.tbs_certificate().issuer()
        && mdm_pki::verify_issued_by(c, c).is_ok()
}

/// Checks an upload: the key is the signing certificate's, the certificates
/// form its chain, it is valid now and may sign.
fn check(new: &NewSigningIdentity, now: OffsetDateTime) -> CoreResult<Checked> {
    let field = if new.pkcs12_base64.is_some() {
        "pkcs12_base64"
    } else {
        "certificate_pem"
    };
    let (key, mut certs) = material(new)?;
    let leaf_at = certs
        .iter()
        .position(|c| key.matches(c.tbs_certificate().subject_public_key_info()))
        .ok_or_else(|| {
            CoreError::invalid(
                if new.private_key_pem.is_some() {
                    "private_key_pem"
                } else {
                    field
                },
                "the private key belongs to none of the certificates given",
            )
        })?;
    let leaf = certs.remove(leaf_at);
    // Walk up from the signing certificate; a self-issued root ends the
    // chain and is not carried (a device trusts its own copy or none).
    let mut chain = Vec::new();
    let mut current = leaf.clone();
    while !self_issued(&current) {
        let Some(up) = certs
            .iter()
            .position(|c| mdm_pki::verify_issued_by(&current, c).is_ok())
        else {
            break;
        };
        let up = certs.remove(up);
        if self_issued(&up) {
            break;
        }
        chain.push(up.clone());
        current = up;
    }
    if let Some(stray) = certs.first() {
        return Err(CoreError::invalid(
            field,
            format!(
                "{} is not in the chain of the signing certificate {}",
                stray.subject_string(),
                leaf.subject_string()
            ),
        ));
    }
    for c in std::iter::once(&leaf).chain(&chain) {
        let (from, until) = (
            c.not_before().map_err(pki_error)?,
            c.not_after().map_err(pki_error)?,
        );
        if now < from {
            return Err(CoreError::invalid(
                field,
                format!(
                    "{} is not valid before {}",
                    c.subject_string(),
                    time_text(from)
                ),
            ));
        }
        if until <= now {
            return Err(CoreError::invalid(
                field,
                format!("{} expired on {}", c.subject_string(), time_text(until)),
            ));
        }
    }
    if let Ok(Some((_, KeyUsage(usages)))) = leaf.tbs_certificate().get_extension::<KeyUsage>()
        && !usages.contains(KeyUsages::DigitalSignature)
    {
        return Err(CoreError::invalid(
            field,
            "the signing certificate's key usage does not allow digital signatures",
        ));
    }
    // A signature made and verified here proves the key works with this
    // certificate before any profile depends on it.
    let probe = mdm_pki::sign_attached(b"probe", &key, &leaf, &chain, now)
        .and_then(|signed| mdm_pki::verify_signed_data(&signed, None, &[]))
        .map_err(|e| CoreError::invalid(field, format!("the key does not sign: {e}")))?;
    if probe.signer != leaf {
        return Err(CoreError::invalid(
            field,
            "the signature names another certificate",
        ));
    }
    Ok(Checked { key, leaf, chain })
}

/// How long before an uploaded identity expires the server starts warning.
pub const EXPIRY_WARNING: time::Duration = time::Duration::days(30);

/// An uploaded identity's expiry, for the server's gauge and warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityExpiry {
    pub tenant_slug: String,
    pub not_after: OffsetDateTime,
}

impl IdentityExpiry {
    /// Whether the server should warn about it at `now`: it expires within
    /// [`EXPIRY_WARNING`] or has expired (profiles are then signed by the
    /// signer the tenant CA certifies, which devices show as unverified
    /// unless they trust the tenant CA).
    pub fn due(&self, now: OffsetDateTime) -> bool {
        self.not_after - now < EXPIRY_WARNING
    }
}

impl Core {
    /// Every tenant's uploaded signing identity and when it expires: a
    /// server-wide read for the operator's gauge, not for a tenant's caller.
    pub async fn signing_identity_expiries(&self) -> CoreResult<Vec<IdentityExpiry>> {
        Ok(self
            .store
            .signing_identity_expiries()
            .await?
            .into_iter()
            .map(|(tenant_slug, not_after)| IdentityExpiry {
                tenant_slug,
                not_after,
            })
            .collect())
    }

    /// The tenant's uploaded signing identity, if it has one.
    pub async fn signing_identity(
        &self,
        actor: &Actor,
        tenant: &Tenant,
    ) -> CoreResult<SigningIdentityInfo> {
        actor.require_tenant(tenant.id)?;
        let record = self
            .store
            .signing_identity(tenant.id)
            .await?
            .ok_or(CoreError::NotFound("signing identity"))?;
        info(&record, self.now())
    }

    /// Checks and stores an uploaded signing identity, replacing the
    /// tenant's previous one; from then on it signs the tenant's profiles
    /// (other replicas within the cache's 10 s).
    pub async fn set_signing_identity(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        new: &NewSigningIdentity,
    ) -> CoreResult<SigningIdentityInfo> {
        actor.require_tenant(tenant.id)?;
        let now = self.now();
        let checked = check(new, now)?;
        let cert_der = mdm_pki::cert_to_der(&checked.leaf).map_err(pki_error)?;
        let fingerprint = hex::encode(mdm_pki::fingerprint_sha256(&cert_der));
        let chain_pem = checked
            .chain
            .iter()
            .map(mdm_pki::cert_to_pem)
            .collect::<Result<String, _>>()
            .map_err(pki_error)?;
        let sealed_key = self
            .vault
            .seal(
                &identity_aad(tenant.id, &fingerprint),
                &checked.key.to_pkcs8_der().map_err(pki_error)?,
            )
            .map_err(pki_error)?;
        let record = SigningIdentityRecord {
            tenant_id: tenant.id,
            cert_der,
            chain_pem,
            sealed_key,
            fingerprint_sha256: fingerprint.clone(),
            subject: checked.leaf.subject_string(),
            issuer: checked.leaf.issuer_string(),
            key_kind: checked.key.describe(),
            not_before: checked.leaf.not_before().map_err(pki_error)?,
            not_after: checked.leaf.not_after().map_err(pki_error)?,
            uploaded_at: now,
            uploaded_by: actor.label(),
        };
        let replaced = self
            .store
            .signing_identity(tenant.id)
            .await?
            .map(|r| r.fingerprint_sha256);
        let audit = AuditEntry::new(
            Some(tenant.id),
            now,
            actor,
            AuditAction::SigningIdentityUploaded,
            ("signing_identity", fingerprint),
        )
        .details(serde_json::json!({
            "subject": record.subject,
            "issuer": record.issuer,
            "key": record.key_kind,
            "not_after": record.not_after.unix_timestamp(),
            "chain": checked.chain.iter().map(|c| c.subject_string()).collect::<Vec<_>>(),
            "replaced": replaced,
        }));
        self.store.put_signing_identity(&record, &audit).await?;
        self.identity_cache.forget(&tenant.id);
        tracing::info!(tenant = %tenant.slug, subject = %record.subject, "profile-signing identity uploaded");
        info(&record, now)
    }

    /// Removes the tenant's uploaded signing identity: profiles are signed by
    /// the signer the tenant CA certifies again.
    pub async fn remove_signing_identity(&self, actor: &Actor, tenant: &Tenant) -> CoreResult<()> {
        actor.require_tenant(tenant.id)?;
        let record = self
            .store
            .signing_identity(tenant.id)
            .await?
            .ok_or(CoreError::NotFound("signing identity"))?;
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::SigningIdentityRemoved,
            ("signing_identity", record.fingerprint_sha256.clone()),
        )
        .details(serde_json::json!({ "subject": record.subject, "issuer": record.issuer }));
        self.store
            .delete_signing_identity(tenant.id, &audit)
            .await?;
        self.identity_cache.forget(&tenant.id);
        Ok(())
    }

    /// The uploaded identity that signs the tenant's profiles now, if there
    /// is one and it is valid. Served from memory for up to 10 s.
    pub(crate) async fn uploaded_signer(
        &self,
        tenant: &Tenant,
    ) -> CoreResult<Option<Arc<LoadedIdentity>>> {
        let now = self.now();
        if let Some(cached) = self.identity_cache.fresh(&tenant.id, now) {
            return Ok(cached.filter(|l| l.valid_at(now)));
        }
        let loaded = match self.store.signing_identity(tenant.id).await? {
            Some(record) => Some(Arc::new(self.open_identity(&record)?)),
            None => None,
        };
        self.identity_cache.put(tenant.id, now, loaded.clone());
        // Said once per reload (every 10 s at most), not on every profile.
        if let Some(l) = loaded.as_ref().filter(|l| !l.valid_at(now)) {
            tracing::warn!(
                tenant = %tenant.slug,
                subject = %l.cert.subject_string(),
                "the uploaded profile-signing identity is not valid now; the tenant's own signer signs"
            );
        }
        Ok(loaded.filter(|l| l.valid_at(now)))
    }

    fn open_identity(&self, record: &SigningIdentityRecord) -> CoreResult<LoadedIdentity> {
        let key_der = self
            .vault
            .open(
                &identity_aad(record.tenant_id, &record.fingerprint_sha256),
                &record.sealed_key,
            )
            .map_err(pki_error)?;
        let chain = if record.chain_pem.is_empty() {
            Vec::new()
        } else {
            mdm_pki::certs_from_pem(&record.chain_pem).map_err(pki_error)?
        };
        Ok(LoadedIdentity {
            cert: mdm_pki::cert_from_der(&record.cert_der).map_err(pki_error)?,
            chain,
            key: SigningKey::from_pkcs8_der(&key_der).map_err(pki_error)?,
            not_before: record.not_before,
            not_after: record.not_after,
        })
    }
}

fn info(record: &SigningIdentityRecord, now: OffsetDateTime) -> CoreResult<SigningIdentityInfo> {
    let cert = mdm_pki::cert_from_der(&record.cert_der).map_err(pki_error)?;
    let chain = if record.chain_pem.is_empty() {
        Vec::new()
    } else {
        mdm_pki::certs_from_pem(&record.chain_pem)
            .map_err(pki_error)?
            .iter()
            .map(|c| c.subject_string())
            .collect()
    };
    Ok(SigningIdentityInfo {
        subject: record.subject.clone(),
        issuer: record.issuer.clone(),
        serial: cert.serial_hex(),
        fingerprint_sha256: record.fingerprint_sha256.clone(),
        key: record.key_kind.clone(),
        not_before: record.not_before,
        not_after: record.not_after,
        chain,
        certificate_pem: mdm_pki::cert_to_pem(&cert).map_err(pki_error)?,
        uploaded_at: record.uploaded_at,
        uploaded_by: record.uploaded_by.clone(),
        in_use: record.not_before <= now && now < record.not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdm_pki::{EcKey, RsaKey};
    use time::Duration;

    type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

    #[test]
    fn expiry_warns_within_thirty_days_and_after() -> TestResult {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000)?;
        let at = |days: i64| IdentityExpiry {
            tenant_slug: "t".into(),
            not_after: now + Duration::days(days),
        };
        assert!(!at(31).due(now));
        assert!(at(29).due(now));
        assert!(at(-1).due(now), "an expired identity is warned about too");
        Ok(())
    }

    struct Pki {
        root_pem: String,
        leaf_pem: String,
        key_pem: String,
        now: OffsetDateTime,
    }

    fn key_pem(key: &EcKey) -> TestResult<String> {
        Ok(mdm_pki::der::pem::encode_string(
            "PRIVATE KEY",
            mdm_pki::der::pem::LineEnding::LF,
            &key.to_pkcs8_der()?,
        )?)
    }

    /// A root that certifies an ECDSA content signer valid for 10 days from `now`.
    fn pki() -> TestResult<Pki> {
        let now = OffsetDateTime::now_utc();
        let root_key = RsaKey::generate(2048)?;
        let root = mdm_pki::self_signed_ca(
            &root_key,
            "CN=Test Root",
            &[1],
            now - Duration::days(1),
            now + Duration::days(30),
        )?;
        let key = EcKey::generate()?;
        let leaf = mdm_pki::issue_content_signer(
            &root_key,
            &root,
            "CN=profiles.example.org,O=Example",
            key.public_key_spki().clone(),
            &[2],
            now - Duration::hours(1),
            now + Duration::days(10),
        )?;
        Ok(Pki {
            root_pem: mdm_pki::cert_to_pem(&root)?,
            leaf_pem: mdm_pki::cert_to_pem(&leaf)?,
            key_pem: key_pem(&key)?,
            now,
        })
    }

    fn pem(certs: &str, key: Option<&str>) -> NewSigningIdentity {
        NewSigningIdentity {
            certificate_pem: Some(certs.to_string()),
            private_key_pem: key.map(str::to_string),
            pkcs12_base64: None,
            password: None,
        }
    }

    /// The field and message of the validation error `check` gives.
    fn refusal(new: &NewSigningIdentity, now: OffsetDateTime) -> TestResult<(String, String)> {
        match check(new, now) {
            Err(CoreError::Invalid { field, message }) => Ok((field, message)),
            Err(e) => Err(format!("expected a validation error, got {e}").into()),
            Ok(_) => Err("expected a refusal".into()),
        }
    }

    #[test]
    fn accepts_a_signer_with_its_root_in_any_order_and_drops_the_root() -> TestResult {
        let p = pki()?;
        let certs = format!("{}{}", p.root_pem, p.leaf_pem);
        let checked = check(&pem(&certs, Some(&p.key_pem)), p.now)?;
        assert_eq!(
            checked.leaf.subject_string(),
            "CN=profiles.example.org,O=Example"
        );
        assert!(checked.chain.is_empty(), "the root is not carried");
        assert_eq!(checked.key.describe(), "ECDSA P-256");
        // The key may come in the same text as the certificates.
        let bundle = format!("{}{}", p.leaf_pem, p.key_pem);
        assert!(check(&pem(&bundle, None), p.now).is_ok());
        Ok(())
    }

    #[test]
    fn refuses_what_would_not_sign_with_the_reason() -> TestResult {
        let p = pki()?;
        let other = key_pem(&EcKey::generate()?)?;
        let (field, message) = refusal(&pem(&p.leaf_pem, Some(&other)), p.now)?;
        assert_eq!(field, "private_key_pem");
        assert!(message.contains("belongs to none"), "{message}");

        let signer = pem(&p.leaf_pem, Some(&p.key_pem));
        let (_, message) = refusal(&signer, p.now + Duration::days(11))?;
        assert!(message.contains("expired on"), "{message}");
        let (_, message) = refusal(&signer, p.now - Duration::days(1))?;
        assert!(message.contains("is not valid before"), "{message}");

        let stray = pki()?;
        let certs = format!("{}{}", p.leaf_pem, stray.root_pem);
        let (field, message) = refusal(&pem(&certs, Some(&p.key_pem)), p.now)?;
        assert_eq!(field, "certificate_pem");
        assert!(message.contains("is not in the chain"), "{message}");

        let (field, message) = refusal(&pem("not a certificate", Some(&p.key_pem)), p.now)?;
        assert_eq!(field, "certificate_pem");
        assert!(message.contains("no -----BEGIN CERTIFICATE"), "{message}");
        let (field, _) = refusal(&pem(&p.leaf_pem, None), p.now)?;
        assert_eq!(field, "certificate_pem", "no key anywhere");

        let both = NewSigningIdentity {
            pkcs12_base64: Some("MAMCAQM=".into()),
            ..pem(&p.leaf_pem, None)
        };
        assert_eq!(refusal(&both, p.now)?.0, "pkcs12_base64");
        let garbage = NewSigningIdentity {
            pkcs12_base64: Some("MAMCAQM=".into()),
            password: Some("x".into()),
            certificate_pem: None,
            private_key_pem: None,
        };
        let (field, message) = refusal(&garbage, p.now)?;
        assert_eq!(field, "pkcs12_base64");
        assert!(message.contains("PKCS#12"), "{message}");
        Ok(())
    }
}
