//! Agent registration and re-registration (R16, R18, R19): authenticate the
//! user (email and password, or a one-time enrollment token), certify the
//! device key with the tenant CA, and find the device's earlier entries by
//! its identity keys, strongest first. Android 9 and earlier reuse the one
//! entry; Android 10 and later get a new entry and every older current entry
//! of the device becomes Retired, so exactly one is current. The store
//! applies a registration under per-identity locks and refuses when a
//! concurrent registration changed what was found; the plan is then made
//! again. The audit entry names the keys offered and the one that matched.

use crate::android::agent::{AgentRefusal, AgentResult, refuse};
use crate::android::{
    AndroidCommand, AndroidCommandState, AndroidDevice, AndroidKey, AndroidKeyKind,
    AndroidRegistration, Correlation, correlation_keys,
};
use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::devices::{Device, DeviceStatus, device_audit};
use crate::error::{CoreError, CoreResult, StoreError};
use crate::ids::DeviceId;
use crate::pki::{CertificateRecord, LoadedCa, random_serial};
use crate::registration::{Channel, Credentials as SignInCredentials, user_actor};
use crate::registrations::{DevicePlatform, Registration, RegistrationPurpose, RegistrationStatus};
use crate::regtokens::{Spend, TokenPurpose};
use crate::secrets::sha256_hex;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use crate::users::User;
use mdm_android::{
    CaSelection, Command, CommandKind, Credential, Fingerprint, Message, RegisterRequest,
    RegisterResponse, qr_registration_supported, removes_user_cas, reuses_entry,
    unreadable_identifiers,
};
use std::net::IpAddr;
use time::OffsetDateTime;

/// How often a registration is planned again after losing a race.
const MAX_PLANS: usize = 200;

/// How the user proved who they are.
enum Via {
    Password,
    Token,
}

impl Core {
    /// `POST /android/v1/register`.
    pub async fn android_register(
        &self,
        body: &[u8],
        addr: Option<IpAddr>,
    ) -> AgentResult<RegisterResponse> {
        let req = refuse!(RegisterRequest::from_json(body).map_err(AgentRefusal::from));
        let tenant = match self.scep_tenant(&req.tenant).await {
            Ok(t) => t,
            Err(CoreError::NotFound(_)) => return Ok(Err(AgentRefusal::UnknownTenant)),
            Err(e) => return Err(e),
        };
        let (user, via) = refuse!(self.agent_user(&tenant, &req, addr).await?);
        let spki = req
            .public_key
            .spki_der()
            .map_err(|e| CoreError::invalid("public_key", e.to_string()))?;
        let attempt = format!("reg-{}", req.attempt_id);
        if self
            .store
            .registration(tenant.id, &attempt)
            .await?
            .is_some()
        {
            return Ok(Err(AgentRefusal::AttemptUsed));
        }
        // Continue the registration the invitation and sign-in stamped
        // (ADR 0011), unless it already carries an Apple profile.
        let open = self
            .store
            .open_registration(tenant.id, user.id)
            .await?
            .filter(|r| r.profile_downloaded_at.is_none());
        let reg_id = open.as_ref().map_or(attempt, |r| r.id.clone());
        let ca = self.tenant_ca(&tenant).await?;
        let (cert_der, record) = self.certify_device_key(&tenant, &ca, &reg_id, &spki)?;
        let keys = correlation_keys(&req.device, user.id);
        for _ in 0..MAX_PLANS {
            let found = self.store.android_correlate(tenant.id, &keys).await?;
            let mut plan = self
                .plan_registration(&tenant, &user, &req, &via, &keys, found, &spki, &record)
                .await?;
            if let Some(open) = &open {
                let r = &mut plan.0.registration;
                r.created_at = open.created_at;
                r.purpose = open.purpose;
                r.invited_at = open.invited_at;
                r.pin_used_at = open.pin_used_at;
                r.signed_in_at = open.signed_in_at.or(r.signed_in_at);
                r.reminders_sent = open.reminders_sent;
                r.last_reminded_at = open.last_reminded_at;
                plan.0.continues_open = true;
            }
            let device_id = plan.0.device.id;
            match self
                .store
                .apply_android_registration(&plan.0, &plan.1)
                .await
            {
                Ok(()) => {
                    let response = RegisterResponse::new(
                        device_id.0,
                        &cert_der,
                        std::slice::from_ref(&ca.cert_der),
                        self.android.checkin_interval_secs,
                        req.device.management_mode,
                    );
                    return Ok(Ok(response));
                }
                Err(StoreError::Conflict(
                    "android_registration_raced" | "android_current_entry",
                )) => continue,
                Err(StoreError::Conflict("registration_attempt")) => {
                    return Ok(Err(AgentRefusal::AttemptUsed));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(CoreError::Conflict {
            code: "registration_contention",
            message: "too many concurrent registrations of this device; try again".into(),
        })
    }

    async fn agent_user(
        &self,
        tenant: &Tenant,
        req: &RegisterRequest,
        addr: Option<IpAddr>,
    ) -> AgentResult<(User, Via)> {
        let credential = req
            .credentials
            .kind()
            .map_err(|e| CoreError::invalid("credentials", e.to_string()))?;
        match credential {
            Credential::Password { email, password } => {
                let creds = SignInCredentials {
                    email,
                    secret: password,
                    addr,
                };
                match self.sign_in(tenant, Channel::App, creds).await? {
                    Ok(signed) => Ok(Ok((signed.user, Via::Password))),
                    Err(r) => Ok(Err(AgentRefusal::SignIn(r))),
                }
            }
            Credential::EnrollmentToken(secret) => {
                if !qr_registration_supported(req.device.os.api_level) {
                    return Ok(Err(AgentRefusal::TokenUnsupportedOs));
                }
                let spent = self
                    .store
                    .redeem_reg_token(
                        tenant.id,
                        &sha256_hex(secret),
                        TokenPurpose::AgentEnrollment,
                        self.now(),
                    )
                    .await?;
                let token = match spent {
                    Spend::Spent(t) => t,
                    Spend::Expired(_) => return Ok(Err(AgentRefusal::TokenExpired)),
                    Spend::Used(_) => return Ok(Err(AgentRefusal::TokenUsed)),
                    Spend::Unknown => return Ok(Err(AgentRefusal::TokenInvalid)),
                };
                if let Some(mode) = token.platform.as_deref()
                    && mode != req.device.management_mode.as_str()
                {
                    return Ok(Err(AgentRefusal::TokenMode {
                        expected: mode.replace('_', " "),
                    }));
                }
                match self.store.user(tenant.id, token.user_id).await? {
                    Some(user) => Ok(Ok((user, Via::Token))),
                    None => Ok(Err(AgentRefusal::TokenInvalid)),
                }
            }
        }
    }

    /// The device certificate: the registration id as CN, the device's key.
    fn certify_device_key(
        &self,
        tenant: &Tenant,
        ca: &LoadedCa,
        reg_id: &str,
        spki_der: &[u8],
    ) -> CoreResult<(Vec<u8>, CertificateRecord)> {
        let now = self.now();
        let not_before = now - time::Duration::minutes(5);
        let not_after = (now + time::Duration::days(self.pki.cert_validity_days))
            .min(mdm_pki::CertificateExt::not_after(&ca.cert).unwrap_or(now));
        let spki = mdm_pki::spki_from_der(spki_der)
            .map_err(|e| CoreError::invalid("public_key", e.to_string()))?;
        let subject = format!("CN={reg_id},O={}", tenant.slug);
        let cert = mdm_pki::issue_leaf_for_key(
            &ca.key,
            &ca.cert,
            &subject,
            spki,
            &random_serial(self),
            not_before,
            not_after,
        )
        .map_err(|e| CoreError::Store(format!("issuing: {e}")))?;
        let der =
            mdm_pki::cert_to_der(&cert).map_err(|e| CoreError::Store(format!("encoding: {e}")))?;
        let record = CertificateRecord {
            serial: mdm_pki::CertificateExt::serial_hex(&cert),
            tenant_id: tenant.id,
            ca_id: ca.id,
            subject: mdm_pki::CertificateExt::subject_string(&cert),
            fingerprint_sha256: hex::encode(mdm_pki::fingerprint_sha256(&der)),
            not_before,
            not_after,
            issued_at: now,
            registration: Some(reg_id.to_string()),
            device_id: None,
            renewal_of: None,
            revoked_at: None,
            cert_der: der.clone(),
        };
        Ok((der, record))
    }

    #[allow(clippy::too_many_arguments)]
    async fn plan_registration(
        &self,
        tenant: &Tenant,
        user: &User,
        req: &RegisterRequest,
        via: &Via,
        keys: &[AndroidKey],
        found: Option<Correlation>,
        spki: &[u8],
        cert: &CertificateRecord,
    ) -> CoreResult<(AndroidRegistration, Vec<AuditEntry>)> {
        let now = self.now();
        let facts = &req.device;
        let api = facts.os.api_level;
        let reuse = found
            .as_ref()
            .filter(|_| reuses_entry(api))
            .and_then(|c| c.entries.first());
        let existing = match reuse {
            Some(e) => self.store.device(tenant.id, e.device_id).await?,
            None => None,
        };
        let device_is_new = existing.is_none();
        let mut device = existing.unwrap_or_else(|| new_device(tenant, now));
        device.user_id = Some(user.id);
        device.status = DeviceStatus::Active;
        device.shown_status = DeviceStatus::Active;
        device.serial_number = facts.identifiers.serial.clone();
        device.model = Some(facts.model.clone());
        device.model_name = Some(format!("{} {}", facts.manufacturer, facts.model));
        device.os_version = Some(facts.os.version.clone());
        device.build_version = facts.os.security_patch.clone();
        device.enrolled_at = Some(now);
        device.last_seen_at = Some(now);
        device.updated_at = now;
        let retire: Vec<DeviceId> = match (&found, device_is_new) {
            (Some(c), true) => c
                .entries
                .iter()
                .filter(|e| e.current)
                .map(|e| e.device_id)
                .collect(),
            _ => Vec::new(),
        };
        let reg_id = cert.registration.clone().unwrap_or_default();
        let mut registration = Registration::new(
            tenant.id,
            DevicePlatform::Android,
            if found.is_some() {
                RegistrationPurpose::Reenroll
            } else {
                RegistrationPurpose::Enroll
            },
            now,
        );
        registration.id = reg_id.clone();
        registration.user_id = Some(user.id);
        registration.device_id = Some(device.id);
        registration.status = RegistrationStatus::Active;
        registration.signed_in_at = Some(now);
        registration.certificate_issued_at = Some(now);
        registration.checked_in_at = Some(now);
        registration.active_at = Some(now);
        let android = AndroidDevice {
            tenant_id: tenant.id,
            device_id: device.id,
            registration_id: Some(reg_id.clone()),
            management_mode: facts.management_mode,
            api_level: api,
            manufacturer: facts.manufacturer.clone(),
            public_key: spki.to_vec(),
            cert_serial: Some(cert.serial.clone()),
            cert_fingerprint: Some(cert.fingerprint_sha256.clone()),
            identity_key: keys.first().map(AndroidKey::name).unwrap_or_default(),
            matched_key: found.as_ref().map(|c| c.kind),
            enterprise_specific_id: key_value(keys, AndroidKeyKind::EnterpriseSpecificId),
            imei: key_value(keys, AndroidKeyKind::Imei),
            meid: key_value(keys, AndroidKeyKind::Meid),
            serial: key_value(keys, AndroidKeyKind::Serial),
            android_id: key_value(keys, AndroidKeyKind::AndroidId),
            current: true,
            enabled: true,
            fcm_token: req.fcm_token.clone(),
            fcm_token_dead_at: None,
            last_push_at: None,
            last_push_outcome: None,
            checkin: serde_json::Value::Null,
            last_checkin_at: None,
            created_at: now,
            updated_at: now,
        };
        let mut certificate = cert.clone();
        certificate.device_id = Some(device.id.to_string());
        let actor = user_actor(tenant.id, user);
        let mut audit = Vec::new();
        let action = if found.is_some() {
            AuditAction::DeviceReregistered
        } else {
            AuditAction::DeviceRegistered
        };
        audit.push(
            device_audit(&device, now, &actor, action).details(serde_json::json!({
                "registration": reg_id,
                "platform": "android",
                "api_level": api,
                "os_version": facts.os.version,
                "management_mode": facts.management_mode,
                "via": match via { Via::Password => "password", Via::Token => "enrollment_token" },
                "correlation_keys": keys.iter().map(|k| k.kind.as_str()).collect::<Vec<_>>(),
                "unreadable_identifiers": unreadable_identifiers(facts),
                "matched_key": found.as_ref().map(|c| c.kind.as_str()),
                "matched_entries": found.as_ref().map(|c| c.entries.iter().map(|e| e.device_id.to_string()).collect::<Vec<_>>()),
                "reused_entry": !device_is_new,
                "retired_entries": retire.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
            })),
        );
        audit.push(
            AuditEntry::new(
                Some(tenant.id),
                now,
                &actor,
                AuditAction::CertificateIssued,
                ("certificate", certificate.serial.clone()),
            )
            .device(device.id)
            .details(serde_json::json!({
                "subject": certificate.subject,
                "registration": reg_id,
                "not_after": certificate.not_after.unix_timestamp(),
            })),
        );
        for old in &retire {
            let mut entry = AuditEntry::new(
                Some(tenant.id),
                now,
                &Actor::System,
                AuditAction::DeviceRetired,
                ("device", old.to_string()),
            )
            .device(*old)
            .user(user.id)
            .details(serde_json::json!({
                "reason": "registered_again",
                "new_device": device.id.to_string(),
                "registration": reg_id,
                "matched_key": found.as_ref().map(|c| c.kind.as_str()),
            }));
            entry.actor_label = "re-registration (R19)".into();
            audit.push(entry);
        }
        let mut commands = Vec::new();
        if removes_user_cas(facts.management_mode) {
            let cmd = remove_user_cas_command(self, tenant, &device, now)?;
            audit.push(
                device_audit(
                    &device,
                    now,
                    &Actor::System,
                    AuditAction::DeviceCommandQueued,
                )
                .details(serde_json::json!({
                    "command": cmd.id, "kind": cmd.kind, "reason": "R16",
                })),
            );
            commands.push(cmd);
        }
        Ok((
            AndroidRegistration {
                tenant_id: tenant.id,
                keys: keys.to_vec(),
                expected: found,
                device,
                device_is_new,
                android,
                retire,
                registration,
                continues_open: false,
                certificate,
                commands,
            },
            audit,
        ))
    }
}

fn key_value(keys: &[AndroidKey], kind: AndroidKeyKind) -> Option<String> {
    keys.iter()
        .find(|k| k.kind == kind)
        .map(|k| k.value.clone())
}

fn new_device(tenant: &Tenant, now: OffsetDateTime) -> Device {
    Device {
        id: DeviceId::new(),
        tenant_id: tenant.id,
        user_id: None,
        platform: DevicePlatform::Android,
        status: DeviceStatus::Active,
        shown_status: DeviceStatus::Active,
        udid: None,
        serial_number: None,
        model: None,
        model_name: None,
        product_name: None,
        os_version: None,
        build_version: None,
        device_name: None,
        enrolled_at: None,
        last_seen_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// R16: remove every user-installed CA certificate (keeping the tenant CA).
fn remove_user_cas_command(
    core: &Core,
    tenant: &Tenant,
    device: &Device,
    now: OffsetDateTime,
) -> CoreResult<AndroidCommand> {
    let keep = core
        .ca_cache
        .get(&tenant.id)
        .map(|(_, ca)| vec![Fingerprint::of_der(&ca.cert_der)])
        .unwrap_or_default();
    let kind = CommandKind::RemoveCaCertificates(CaSelection::AllUserInstalled { keep });
    new_command(core, tenant, device.id, kind, None, "system", now)
}

/// A stored command for `kind`.
pub(crate) fn new_command(
    core: &Core,
    tenant: &Tenant,
    device: DeviceId,
    kind: CommandKind,
    ack_device_status: Option<DeviceStatus>,
    queued_by: &str,
    now: OffsetDateTime,
) -> CoreResult<AndroidCommand> {
    let id = uuid::Uuid::parse_str(&core.command_uuid())
        .map_err(|e| CoreError::Store(format!("command id: {e}")))?;
    let command = Command { id, kind };
    let payload = serde_json::to_value(&command)
        .map_err(|e| CoreError::Store(format!("encoding a command: {e}")))?;
    Ok(AndroidCommand {
        tenant_id: tenant.id,
        id: id.to_string(),
        device_id: device,
        kind: command.kind.name().to_string(),
        payload,
        state: AndroidCommandState::Queued,
        ack_device_status,
        queued_by: queued_by.to_string(),
        created_at: now,
        sent_at: None,
        result_at: None,
        result: serde_json::Value::Null,
    })
}
