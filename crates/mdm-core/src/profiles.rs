//! The Apple management profile (R10–R12): one signed `.mobileconfig` per
//! registration attempt, carrying the tenant CA, a SCEP payload with a
//! one-time challenge that expires with the profile, and the MDM payload.
//! A device that installs it too late is refused at SCEP with a FAILURE
//! CertRep, and the refusal names this registration.

use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::error::{CoreError, CoreResult};
use crate::ids::{DeviceId, UserId};
use crate::profile_signer::ProfileSigning;
use crate::registrations::{DevicePlatform, Registration, RegistrationPurpose, RegistrationStatus};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_apple::{EnrollmentProfile, MdmPayload, PROFILE_UUID_NAMESPACE, Removal, ScepPayload};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Apple platforms a profile is built for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApplePlatform {
    Ios,
    Macos,
}

/// What an administrator (later: the registration flows) asks for.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProfile {
    pub platform: ApplePlatform,
    /// The user the device is registered for.
    pub user_id: Option<UserId>,
    /// An open registration (from an invitation or sign-in) to attach the
    /// profile to; default: a new registration.
    #[serde(default)]
    pub registration: Option<String>,
}

/// What a profile is issued for, whatever the front door.
#[derive(Clone, Debug)]
pub(crate) struct ProfileRequest {
    pub platform: ApplePlatform,
    pub user_id: Option<UserId>,
    pub registration: Option<String>,
    pub purpose: RegistrationPurpose,
    pub device_id: Option<DeviceId>,
    /// The SCEP challenge's lifetime instead of the tenant's profile validity
    /// (a profile re-sent through the command queue waits for the device).
    pub challenge_lifetime: Option<time::Duration>,
}

/// A signed profile and the registration it belongs to.
#[derive(Clone, Debug)]
pub struct IssuedProfile {
    /// `reg-<uuid>`: names the profile's challenge, its certificate and any refusal.
    pub registration: String,
    pub expires_at: OffsetDateTime,
    /// CMS SignedData (DER) around the XML plist, signed by the tenant's
    /// profile signer (or its CA), the chain to the CA included.
    pub signed: Vec<u8>,
}

/// Settings of the Apple MDM payload.
#[derive(Clone, Debug)]
pub struct AppleSettings {
    /// The APNs topic of the MDM push certificate (`com.apple.mgmt.…`).
    pub mdm_topic: String,
    /// DER of the server's TLS anchor when its certificate chain ends in a
    /// self-signed certificate: profiles carry it so devices trust the
    /// server. `None` for publicly trusted certificates or plain HTTP.
    pub tls_anchor_der: Option<Vec<u8>>,
    /// Answer a macOS `UserAuthenticate` of the device's registered user
    /// with a zero-length DigestChallenge (manage the directory user);
    /// `false` declines every one (HTTP 410, Apple's documented decline).
    pub accept_user_authenticate: bool,
    /// When identity certificates are renewed (the profile re-sent).
    pub renewal: crate::renewal::RenewalSettings,
    /// Which key signs management profiles.
    pub profile_signing: crate::profile_signer::ProfileSigning,
}

impl Default for AppleSettings {
    fn default() -> Self {
        Self {
            mdm_topic: "com.apple.mgmt.External.unconfigured".into(),
            tls_anchor_der: None,
            accept_user_authenticate: false,
            renewal: crate::renewal::RenewalSettings::default(),
            profile_signing: crate::profile_signer::ProfileSigning::default(),
        }
    }
}

impl Core {
    /// The tenant's MDM check-in and command URLs.
    pub fn mdm_urls(&self, tenant: &Tenant) -> (String, String) {
        let base = format!("{}/mdm/{}", self.public_url, tenant.slug);
        (format!("{base}/checkin"), format!("{base}/connect"))
    }

    /// Builds and signs a fresh management profile for one registration
    /// attempt: a new registration, or the open one named in `new`.
    pub async fn issue_profile(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        new: &NewProfile,
    ) -> CoreResult<IssuedProfile> {
        let request = ProfileRequest {
            platform: new.platform,
            user_id: new.user_id,
            registration: new.registration.clone(),
            purpose: RegistrationPurpose::Enroll,
            device_id: None,
            challenge_lifetime: None,
        };
        self.issue_profile_for(actor, tenant, request).await
    }

    /// The registration a profile is issued for: the named open one (updated)
    /// or a new one.
    async fn profile_registration(
        &self,
        tenant: &Tenant,
        req: &ProfileRequest,
    ) -> CoreResult<Registration> {
        let now = self.now();
        let platform = match req.platform {
            ApplePlatform::Ios => DevicePlatform::Ios,
            ApplePlatform::Macos => DevicePlatform::Macos,
        };
        let Some(id) = &req.registration else {
            let mut reg = Registration::new(tenant.id, platform, req.purpose, now);
            reg.user_id = req.user_id;
            reg.device_id = req.device_id;
            return Ok(reg);
        };
        let reg = self
            .store
            .registration(tenant.id, id)
            .await?
            .ok_or(CoreError::NotFound("registration"))?;
        if !matches!(
            reg.status,
            RegistrationStatus::Pending | RegistrationStatus::ProfileDownloaded
        ) {
            return Err(CoreError::Conflict {
                code: "registration_not_open",
                message: format!("the registration is {}; start a new one", reg.status),
            });
        }
        if req.user_id.is_some() && req.user_id != reg.user_id {
            return Err(CoreError::invalid("user_id", "not the registration's user"));
        }
        Ok(Registration {
            platform: Some(platform),
            ..reg
        })
    }

    /// Builds and signs a profile for one registration attempt of any purpose.
    pub(crate) async fn issue_profile_for(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        req: ProfileRequest,
    ) -> CoreResult<IssuedProfile> {
        actor.require_tenant(tenant.id)?;
        if let Some(user) = req.user_id {
            self.user(actor, tenant, user).await?;
        }
        let mut reg = self.profile_registration(tenant, &req).await?;
        let registration = reg.id.clone();
        // Stored below with the registration, once the profile is signed.
        let (new_challenge, challenge_audit, challenge) = self
            .new_challenge(actor, tenant, &registration, req.challenge_lifetime)
            .await?;
        let ca = self.tenant_ca(tenant).await?;
        let (check_in, server) = self.mdm_urls(tenant);
        let mut mdm = MdmPayload::new(&self.apple.mdm_topic, server);
        mdm.check_in_url = Some(check_in);
        mdm.capabilities.per_user_connections = req.platform == ApplePlatform::Macos;
        let mut scep = ScepPayload::new(self.scep_url(tenant), Some(challenge.challenge.clone()));
        scep.subject = vec![
            ("O".into(), tenant.name.clone()),
            ("CN".into(), registration.clone()),
        ];
        let profile = EnrollmentProfile {
            // Stable per tenant: a re-sent profile replaces the installed one.
            identifier: crate::devices::enrollment_profile_identifier(tenant),
            uuid_namespace: PROFILE_UUID_NAMESPACE,
            display_name: format!("{} device management", tenant.name),
            organization: tenant.name.clone(),
            description: "Lets your organisation manage this device.".into(),
            removal: Removal::Allowed,
            ca_cert_der: ca.cert_der.clone(),
            tls_anchor_der: self.apple.tls_anchor_der.clone(),
            scep,
            mdm,
        };
        let build =
            |e: mdm_apple::BuildError| CoreError::Store(format!("building the profile: {e}"));
        let xml = profile.to_xml().map_err(build)?;
        // An identity the administrator uploaded signs while it is valid;
        // otherwise the signer the tenant CA certifies (or the CA itself).
        let uploaded = self.uploaded_signer(tenant).await?;
        let signed = match (&uploaded, self.apple.profile_signing) {
            (Some(id), _) => {
                mdm_apple::sign_profile(&xml, &id.key, &id.cert, &id.chain, self.now())
            }
            (None, ProfileSigning::Ecdsa) => {
                let signer = self.profile_signer(tenant, &ca).await?;
                let chain = std::slice::from_ref(&ca.cert);
                mdm_apple::sign_profile(&xml, &signer.key, &signer.cert, chain, self.now())
            }
            (None, ProfileSigning::Ca) => {
                mdm_apple::sign_profile(&xml, &ca.key, &ca.cert, &[], self.now())
            }
        }
        .map_err(build)?;
        let audit = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            actor,
            AuditAction::ProfileIssued,
            ("registration", registration.clone()),
        )
        .details(serde_json::json!({
            "platform": req.platform,
            "purpose": reg.purpose,
            "device_id": reg.device_id,
            "expires_at": challenge.expires_at.unix_timestamp(),
        }))
        .maybe_user(reg.user_id);
        let audit = match reg.device_id {
            Some(d) => audit.device(d),
            None => audit,
        };
        let now = self.now();
        reg.status = RegistrationStatus::ProfileDownloaded;
        reg.profile_downloaded_at = Some(now);
        reg.expires_at = Some(challenge.expires_at);
        reg.updated_at = now;
        // One transaction: the challenge, the registration, both audit
        // entries and the expiry job.
        let expiry = crate::registrations::expiry_job(&reg);
        self.store
            .save_issued_profile(
                &new_challenge,
                &reg,
                &[challenge_audit, audit],
                expiry.as_ref(),
            )
            .await?;
        Ok(IssuedProfile {
            registration,
            expires_at: challenge.expires_at,
            signed,
        })
    }
}
