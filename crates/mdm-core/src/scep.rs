//! The SCEP front door (RFC 8894) and the issuance chain behind it.
//!
//! Issuance is one "sign this CSR" port, [`CsrSigner`], composed of small
//! steps: [`RenewalPolicy`] (a RenewalReq signed by a live certificate of
//! ours needs no challenge) → [`ChallengeCheck`] (check the one-time
//! challenge) → [`CaSigner`] (issue with the tenant CA and record it). A
//! second front door (ACME, the Android agent) can reuse the same chain.

use crate::StoreError;
use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::pki::{CertificateRecord, LoadedCa, Redeem, random_serial};
use crate::registrations::{EndRegistration, RegistrationPurpose, RegistrationStatus};
use crate::secrets::sha256_hex;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use async_trait::async_trait;
use mdm_pki::CertificateExt;
use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::request::CertReq;
use mdm_scep::{FailInfo, FailureContext, Nonce, RequestContent, Responder, ScepRequest};
use std::sync::Arc;

/// Message recorded and shown when a profile is installed after its challenge expired.
pub const PROFILE_EXPIRED: &str = "The management profile expired before it was installed (the device reports \
\"The SCEP server returned an invalid response\"). Registration must start again from the beginning.";

/// A request to sign a CSR, as it moves down the chain.
pub struct SignRequest {
    pub tenant: Tenant,
    /// The tenant CA the request was decrypted with; it also signs.
    pub ca: Arc<LoadedCa>,
    pub csr: CertReq,
    pub challenge: Option<String>,
    /// The certificate that signed a RenewalReq.
    pub renewal_signer: Option<Certificate>,
    /// Set by [`RenewalPolicy`]: the serial being renewed.
    pub renewal_of: Option<String>,
    /// Set by [`ChallengeCheck`]: the registration the challenge belongs to.
    pub registration: Option<String>,
    /// Set by [`ChallengeCheck`]: the hash of the challenge [`CaSigner`]
    /// redeems in the same transaction that records the certificate.
    pub redeem: Option<String>,
    /// For the audit trail.
    pub transaction_id: String,
}

/// Why a CSR was not signed.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error("the request carries no challenge password")]
    ChallengeMissing,
    #[error("the challenge password is not valid for this tenant")]
    ChallengeUnknown,
    #[error("the challenge expired: {PROFILE_EXPIRED}")]
    ChallengeExpired { registration: String },
    #[error("the challenge was already used; registration must start again from the beginning")]
    ChallengeUsed { registration: String },
    #[error("renewal refused: {0}")]
    RenewalRefused(&'static str),
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl From<StoreError> for IssueError {
    fn from(e: StoreError) -> Self {
        Self::Core(e.into())
    }
}

/// Signs a CSR, or says why not.
#[async_trait]
pub trait CsrSigner: Send + Sync {
    async fn sign(&self, req: SignRequest) -> Result<(Certificate, CertificateRecord), IssueError>;
}

/// The last step: issue with the tenant CA and record the certificate.
pub struct CaSigner {
    pub core: Core,
}

#[async_trait]
impl CsrSigner for CaSigner {
    async fn sign(&self, req: SignRequest) -> Result<(Certificate, CertificateRecord), IssueError> {
        let core = &self.core;
        let ca = &req.ca;
        let now = core.now();
        let not_after = (now + time::Duration::days(core.pki.cert_validity_days))
            .min(ca.cert.not_after().unwrap_or(now));
        let cert = mdm_pki::issue_leaf(
            &ca.key,
            &ca.cert,
            &req.csr,
            &random_serial(core),
            now - time::Duration::minutes(5),
            not_after,
        )
        .map_err(|e| CoreError::Store(format!("issuing: {e}")))?;
        let cert_der =
            mdm_pki::cert_to_der(&cert).map_err(|e| CoreError::Store(format!("encoding: {e}")))?;
        let record = CertificateRecord {
            serial: cert.serial_hex(),
            tenant_id: req.tenant.id,
            ca_id: ca.id,
            subject: cert.subject_string(),
            fingerprint_sha256: hex::encode(mdm_pki::fingerprint_sha256(&cert_der)),
            not_before: now - time::Duration::minutes(5),
            not_after,
            issued_at: now,
            registration: req.registration.clone(),
            device_id: None,
            renewal_of: req.renewal_of.clone(),
            revoked_at: None,
            cert_der,
        };
        let action = if req.renewal_of.is_some() {
            AuditAction::CertificateRenewed
        } else {
            AuditAction::CertificateIssued
        };
        let audit = AuditEntry::new(
            Some(req.tenant.id),
            now,
            &Actor::Public,
            action,
            ("certificate", record.serial.clone()),
        )
        .details(serde_json::json!({
            "subject": record.subject,
            "registration": record.registration,
            "renewal_of": record.renewal_of,
            "transaction_id": req.transaction_id,
            "not_after": record.not_after.unix_timestamp(),
        }));
        match &req.redeem {
            None => core.store.record_certificate(&record, &audit).await?,
            // Lost a race for the challenge (or it expired meanwhile): nothing was written.
            Some(hash) => match core
                .store
                .record_certificate_redeeming(&record, hash, now, &audit)
                .await?
            {
                Redeem::Redeemed(_) => {}
                Redeem::Expired(ch) => {
                    return Err(IssueError::ChallengeExpired {
                        registration: ch.registration,
                    });
                }
                Redeem::Used(ch) => {
                    return Err(IssueError::ChallengeUsed {
                        registration: ch.registration,
                    });
                }
                Redeem::Unknown => return Err(IssueError::ChallengeUnknown),
            },
        }
        Ok((cert, record))
    }
}

/// Redeems the one-time challenge unless the request is an accepted renewal.
pub struct ChallengeCheck<S> {
    pub core: Core,
    pub inner: S,
}

#[async_trait]
impl<S: CsrSigner> CsrSigner for ChallengeCheck<S> {
    async fn sign(
        &self,
        mut req: SignRequest,
    ) -> Result<(Certificate, CertificateRecord), IssueError> {
        if req.renewal_of.is_none() {
            let challenge = req
                .challenge
                .as_deref()
                .filter(|c| !c.is_empty())
                .ok_or(IssueError::ChallengeMissing)?;
            // Checked here, redeemed by `CaSigner` together with recording the
            // certificate, so a failure in between never spends the challenge.
            let hash = sha256_hex(challenge);
            match self.core.store.challenge(req.tenant.id, &hash).await? {
                None => return Err(IssueError::ChallengeUnknown),
                Some(ch) if ch.used_at.is_some() => {
                    return Err(IssueError::ChallengeUsed {
                        registration: ch.registration,
                    });
                }
                Some(ch) if ch.expires_at <= self.core.now() => {
                    return Err(IssueError::ChallengeExpired {
                        registration: ch.registration,
                    });
                }
                Some(ch) => {
                    req.registration = Some(ch.registration);
                    req.redeem = Some(hash);
                }
            }
        }
        self.inner.sign(req).await
    }
}

/// Accepts a RenewalReq signed by a live, unrevoked certificate this tenant's
/// CA issued for the same subject; such a request needs no challenge.
pub struct RenewalPolicy<S> {
    pub core: Core,
    pub inner: S,
}

#[async_trait]
impl<S: CsrSigner> CsrSigner for RenewalPolicy<S> {
    async fn sign(
        &self,
        mut req: SignRequest,
    ) -> Result<(Certificate, CertificateRecord), IssueError> {
        if let Some(signer) = &req.renewal_signer {
            let old = self.renewable(&req.ca, signer, &req).await?;
            req.renewal_of = Some(old.serial);
        }
        self.inner.sign(req).await
    }
}

impl<S> RenewalPolicy<S> {
    async fn renewable(
        &self,
        ca: &LoadedCa,
        signer: &Certificate,
        req: &SignRequest,
    ) -> Result<CertificateRecord, IssueError> {
        mdm_pki::verify_issued_by(signer, &ca.cert).map_err(|_| {
            IssueError::RenewalRefused("the signer certificate was not issued by this tenant's CA")
        })?;
        let old = self
            .core
            .store
            .certificate(req.tenant.id, &signer.serial_hex())
            .await?
            .ok_or(IssueError::RenewalRefused("unknown certificate"))?;
        if old.revoked_at.is_some() {
            return Err(IssueError::RenewalRefused("the certificate is revoked"));
        }
        if old.not_after <= self.core.now() {
            return Err(IssueError::RenewalRefused("the certificate has expired"));
        }
        if req.csr.info.subject.to_string() != old.subject {
            return Err(IssueError::RenewalRefused(
                "the new subject differs from the certificate being renewed",
            ));
        }
        Ok(old)
    }
}

/// What the SCEP endpoint answers to a PKIOperation.
pub enum ScepAnswer {
    /// A CertRep (SUCCESS, FAILURE or PENDING) to send with 200.
    CertRep(Vec<u8>),
    /// The message was too broken to answer in SCEP terms (HTTP 400).
    BadMessage(String),
}

impl Core {
    /// The issuance chain.
    pub fn csr_signer(&self) -> impl CsrSigner + use<> {
        let core = self.clone();
        RenewalPolicy {
            core: core.clone(),
            inner: ChallengeCheck {
                core: core.clone(),
                inner: CaSigner { core },
            },
        }
    }

    /// The public tenant a SCEP URL names (cached for 10 s).
    pub async fn scep_tenant(&self, slug: &str) -> CoreResult<Tenant> {
        let now = self.now();
        if let Some(tenant) = self.slug_cache.fresh(&slug.to_string(), now) {
            return Ok(tenant);
        }
        let tenant = self
            .store
            .tenant_by_slug(slug)
            .await?
            .ok_or(CoreError::NotFound("SCEP endpoint"))?;
        self.slug_cache.put(slug.to_string(), now, tenant.clone());
        Ok(tenant)
    }

    /// GetCACert: the tenant CA certificate (DER).
    pub async fn scep_ca_cert(&self, tenant: &Tenant) -> CoreResult<Vec<u8>> {
        Ok(self.tenant_ca(tenant).await?.cert_der.clone())
    }

    /// PKIOperation: decrypts and verifies the request, runs the issuance chain
    /// and answers with a signed CertRep — FAILURE (with an audit entry) for
    /// every refusal the requester can be told about.
    pub async fn scep_pki_operation(
        &self,
        tenant: &Tenant,
        message: &[u8],
    ) -> CoreResult<ScepAnswer> {
        let ca = self.tenant_ca(tenant).await?;
        let nonce = self.scep_nonce();
        let req = match mdm_scep::parse_request(message, &ca.cert, &ca.key) {
            Ok(r) => r,
            Err(f) => {
                return match &f.context {
                    Some(ctx) => self.scep_failure(&ca, ctx, f.fail_info(), &nonce),
                    None => Ok(ScepAnswer::BadMessage(f.error.to_string())),
                };
            }
        };
        let ctx = req.context();
        let csr = match &req.content {
            RequestContent::Csr(csr) => csr,
            // This server never answers PENDING, so there is nothing to poll
            // for (RFC 8894 §3.3.3: no record of the request → FAILURE), and
            // certificates and CRLs are not handed out by serial.
            RequestContent::CertPoll(_) | RequestContent::GetCert(_) => {
                return self.scep_failure(&ca, &ctx, FailInfo::BadCertId, &nonce);
            }
            RequestContent::GetCrl(_) => {
                return self.scep_failure(&ca, &ctx, FailInfo::BadRequest, &nonce);
            }
        };
        let sign = SignRequest {
            tenant: tenant.clone(),
            ca: ca.clone(),
            csr: csr.csr.clone(),
            challenge: csr.challenge().map(str::to_string),
            renewal_signer: (req.message.message_type == mdm_scep::MessageType::RenewalReq)
                .then(|| req.message.signer.clone()),
            renewal_of: None,
            registration: None,
            redeem: None,
            transaction_id: ctx.transaction_id.0.clone(),
        };
        match self.csr_signer().sign(sign).await {
            Ok((cert, _)) => self.scep_success(&ca, &req, &cert, &nonce),
            Err(IssueError::Core(e)) => Err(e),
            Err(refusal) => {
                self.audit_refusal(tenant, &ctx, &refusal).await?;
                self.scep_failure(&ca, &ctx, FailInfo::BadRequest, &nonce)
            }
        }
    }

    fn scep_nonce(&self) -> Nonce {
        let mut n = [0u8; 16];
        self.entropy.fill(&mut n);
        Nonce::new(n)
    }

    fn scep_success(
        &self,
        ca: &LoadedCa,
        req: &ScepRequest,
        cert: &Certificate,
        nonce: &Nonce,
    ) -> CoreResult<ScepAnswer> {
        let reply =
            Responder::new(&ca.cert, &ca.key).success(req, std::slice::from_ref(cert), nonce);
        reply
            .map(ScepAnswer::CertRep)
            .map_err(|e| CoreError::Store(format!("building CertRep: {e}")))
    }

    fn scep_failure(
        &self,
        ca: &LoadedCa,
        ctx: &FailureContext,
        info: FailInfo,
        nonce: &Nonce,
    ) -> CoreResult<ScepAnswer> {
        let reply = Responder::new(&ca.cert, &ca.key).failure(ctx, info, nonce);
        reply
            .map(ScepAnswer::CertRep)
            .map_err(|e| CoreError::Store(format!("building CertRep: {e}")))
    }

    async fn audit_refusal(
        &self,
        tenant: &Tenant,
        ctx: &FailureContext,
        refusal: &IssueError,
    ) -> CoreResult<()> {
        let (reason, registration) = match refusal {
            IssueError::ChallengeMissing => ("challenge_missing", None),
            IssueError::ChallengeUnknown => ("challenge_unknown", None),
            IssueError::ChallengeExpired { registration } => {
                ("profile_expired", Some(registration.clone()))
            }
            IssueError::ChallengeUsed { registration } => {
                ("challenge_used", Some(registration.clone()))
            }
            IssueError::RenewalRefused(_) => ("renewal_refused", None),
            IssueError::Core(_) => ("internal", None),
        };
        let audit = AuditEntry::new(Some(tenant.id), self.now(), &Actor::Public, AuditAction::ScepRefused, ("scep_transaction", ctx.transaction_id.0.clone()))
            .details(serde_json::json!({
                "reason": reason,
                "message": refusal.to_string(),
                "registration": registration,
                "must_restart_registration": matches!(refusal, IssueError::ChallengeExpired { .. } | IssueError::ChallengeUsed { .. }),
            }));
        let reg = match &registration {
            Some(id) => self.store.registration(tenant.id, id).await?,
            None => None,
        };
        let Some(reg) = reg else {
            return Ok(self.store.append_audit(&audit).await?);
        };
        // The registration shows why: an expired profile ends it (and, for a
        // re-enrolment, the device's MDM); a reused challenge is only noted.
        let expired = matches!(refusal, IssueError::ChallengeExpired { .. });
        let disable = (expired && reg.purpose == RegistrationPurpose::Reenroll)
            .then_some(reg.device_id)
            .flatten();
        let now = self.now();
        let mut if_ended = Vec::new();
        if expired {
            if_ended.push(
                AuditEntry::new(
                    Some(tenant.id),
                    now,
                    &Actor::Public,
                    AuditAction::RegistrationExpired,
                    ("registration", reg.id.clone()),
                )
                .maybe_user(reg.user_id)
                .details(serde_json::json!({ "reason": reason, "purpose": reg.purpose })),
            );
        }
        if let Some(device) = disable {
            if_ended.push(
                AuditEntry::new(
                    Some(tenant.id),
                    now,
                    &Actor::Public,
                    AuditAction::DeviceMdmDisabled,
                    ("device", device.to_string()),
                )
                .device(device)
                .maybe_user(reg.user_id)
                .details(serde_json::json!({ "registration": reg.id, "reason": reason })),
            );
        }
        let end = EndRegistration {
            tenant_id: tenant.id,
            id: reg.id.clone(),
            status: expired.then_some(RegistrationStatus::Expired),
            reason: reason.to_string(),
            disable_device: disable,
            at: now,
        };
        self.store
            .end_registration(&end, &[audit], &if_ended)
            .await?;
        Ok(())
    }
}

impl Core {
    /// What an administrator needs when an enrollment fails: the SCEP
    /// message's type, transaction, nonces, algorithms, signer and — with the
    /// tenant, whose CA key decrypts it — the CSR subject. Never the challenge.
    pub async fn inspect_scep_message(
        &self,
        actor: &Actor,
        tenant: Option<&Tenant>,
        bytes: &[u8],
    ) -> CoreResult<mdm_scep::Inspection> {
        let ca: Option<Arc<LoadedCa>> = match tenant {
            Some(t) => {
                actor.require_tenant(t.id)?;
                Some(self.tenant_ca(t).await?)
            }
            None => None,
        };
        let with = ca
            .as_ref()
            .map(|c| (&c.cert, &c.key as &dyn mdm_scep::CekDecryptor));
        mdm_scep::inspect(bytes, with).map_err(|e| CoreError::invalid("message", e.to_string()))
    }
}
