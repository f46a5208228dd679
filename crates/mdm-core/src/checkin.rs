//! Apple MDM check-in (PUT CheckInURL). `Authenticate` is provisional and
//! binds the identity certificate to the enrollment; the first `TokenUpdate`
//! makes the device active and queues DeviceInformation; a macOS user
//! channel is accepted only for the device's registered user (R14);
//! `CheckOut` disables MDM. A known device that authenticates again is a
//! re-enrolment or renewal of the same record: its stale queue is cancelled,
//! its history kept. Every transition is one store transaction with its
//! audit entry.

use crate::StoreError;
use crate::audit::AuditAction;
use crate::commands::{AppleCommand, CommandState};
use crate::core::Core;
use crate::devices::{AppleChannel, AppleEnrollment, Device, DeviceStatus, device_audit};
use crate::error::CoreError;
use crate::identity::{
    DeviceError, DeviceRequest, DeviceResult, ProvenCert, Refusal, short, unlock_token_aad,
};
use crate::ids::DeviceId;
use crate::ports::{EnrollmentChange, RegistrationStep};
use crate::registrations::{REGISTRATION_GRACE, Registration, RegistrationStatus};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_apple::{
    Authenticate, CheckOut, CheckinMessage, Command, CommandRequest, Enrollment, ParseErrorKind,
    TokenUpdate, UserAuthenticate,
};

/// What the check-in URL answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckinReply {
    /// An empty 200.
    Empty,
    /// A plist body with 200.
    Plist(Vec<u8>),
    /// Decline a UserAuthenticate: Apple documents HTTP 410 with no body.
    Declined,
}

fn parse_refusal(kind: ParseErrorKind) -> Refusal {
    match kind {
        ParseErrorKind::UnknownMessageType(t) => Refusal::Unsupported(t),
        ParseErrorKind::TooLarge { .. } => Refusal::TooLarge,
        other => Refusal::Malformed(other.to_string()),
    }
}

fn build(e: mdm_apple::BuildError) -> DeviceError {
    DeviceError::Core(CoreError::Store(format!("building a reply: {e}")))
}

impl Core {
    /// PUT CheckInURL.
    pub async fn apple_checkin(&self, req: &DeviceRequest) -> DeviceResult<CheckinReply> {
        let tenant = self.scep_tenant(&req.slug).await?;
        let msg = CheckinMessage::parse(&req.body).map_err(|e| parse_refusal(e.kind))?;
        let now = self.now();
        let cert = self.prove_identity(&req.identity, &req.body, now)?;
        let enrollment = msg.enrollment().id.to_string();
        let reply = match &msg {
            CheckinMessage::Authenticate(m) => self.authenticate(&tenant, &cert, m).await?,
            CheckinMessage::TokenUpdate(m) => self.token_update(&tenant, &cert, m).await?,
            CheckinMessage::CheckOut(m) => self.check_out(&tenant, &cert, m).await?,
            CheckinMessage::UserAuthenticate(m) => {
                self.user_authenticate(&tenant, &cert, m).await?
            }
            CheckinMessage::GetBootstrapToken(m) => {
                self.bound_device_channel(&tenant, &cert, &m.enrollment)
                    .await?;
                // No token is escrowed (SetBootstrapToken is not stored yet).
                CheckinReply::Plist(mdm_apple::bootstrap_token_reply(None).map_err(build)?)
            }
            CheckinMessage::SetBootstrapToken(_)
            | CheckinMessage::DeclarativeManagement(_)
            | CheckinMessage::GetToken(_)
            | CheckinMessage::ReturnToService(_) => {
                return Err(Refusal::Unsupported(msg.message_type().into()).into());
            }
        };
        self.saw(tenant.id, enrollment, now);
        Ok(reply)
    }

    /// The device channel a message's sender belongs to, if `cert` is the
    /// certificate bound to it and still valid.
    async fn bound_device_channel(
        &self,
        tenant: &Tenant,
        cert: &ProvenCert,
        sender: &Enrollment,
    ) -> DeviceResult<AppleEnrollment> {
        let id = sender.id.device_channel().to_string();
        let dc = self
            .store
            .apple_enrollment(tenant.id, &id)
            .await?
            .ok_or_else(|| Refusal::NotEnrolled(format!("{id} never authenticated")))?;
        if dc.cert_fingerprint.as_deref() != Some(cert.fingerprint.as_str()) {
            return Err(Refusal::Mismatch(format!(
                "certificate {} is not the one {id} authenticated with",
                short(&cert.fingerprint)
            ))
            .into());
        }
        let record = self
            .store
            .certificate_by_fingerprint(tenant.id, &cert.fingerprint)
            .await?;
        if record.is_none_or(|r| r.revoked_at.is_some()) {
            return Err(Refusal::Identity("the certificate is revoked".into()).into());
        }
        Ok(dc)
    }

    /// The registration a new identity certificate belongs to, if it may still authenticate.
    async fn authenticating_registration(
        &self,
        tenant: &Tenant,
        cert: &ProvenCert,
        udid: &str,
    ) -> DeviceResult<(Registration, String)> {
        let now = self.now();
        let record = self
            .store
            .certificate_by_fingerprint(tenant.id, &cert.fingerprint)
            .await?
            .ok_or_else(|| {
                Refusal::Identity("the certificate was not issued by this tenant's CA".into())
            })?;
        if record.revoked_at.is_some() {
            return Err(Refusal::Identity("the certificate is revoked".into()).into());
        }
        if record.not_after <= now {
            return Err(Refusal::Identity("the certificate has expired".into()).into());
        }
        let id = record.registration.clone().ok_or_else(|| {
            Refusal::Registration("the certificate belongs to no registration".into())
        })?;
        let reg = self
            .store
            .registration(tenant.id, &id)
            .await?
            .ok_or_else(|| Refusal::Registration(format!("unknown registration {id}")))?;
        let bound = self
            .store
            .apple_enrollment_by_cert(tenant.id, &cert.fingerprint)
            .await?;
        if let Some(e) = &bound
            && e.id != udid
        {
            return Err(
                Refusal::Mismatch("the certificate already serves another device".into()).into(),
            );
        }
        match reg.status {
            // A repeated Authenticate with the certificate already bound here.
            RegistrationStatus::Active if bound.is_some() => {}
            s if s.is_open() => {
                if reg.expires_at.is_some_and(|e| e + REGISTRATION_GRACE < now) {
                    return Err(Refusal::Registration(format!("registration {id} expired")).into());
                }
            }
            s => {
                let why = reg.reason.clone().unwrap_or_else(|| s.to_string());
                return Err(
                    Refusal::Registration(format!("registration {id} is {s} ({why})")).into(),
                );
            }
        }
        Ok((reg, record.serial))
    }

    async fn authenticate(
        &self,
        tenant: &Tenant,
        cert: &ProvenCert,
        m: &Authenticate,
    ) -> DeviceResult<CheckinReply> {
        if m.enrollment.id.is_user_channel() {
            return Err(
                Refusal::Malformed("Authenticate is sent on the device channel".into()).into(),
            );
        }
        if m.topic != self.apple.mdm_topic {
            return Err(
                Refusal::Malformed(format!("topic {:?} is not this server's", m.topic)).into(),
            );
        }
        let udid = m.enrollment.id.to_string();
        let (reg, serial) = self
            .authenticating_registration(tenant, cert, &udid)
            .await?;
        let now = self.now();
        let existing = self
            .store
            .device_by_udid(tenant.id, reg.platform, &udid)
            .await?;
        if let Some(wanted) = reg.device_id
            && existing.as_ref().map(|d| d.id) != Some(wanted)
        {
            return Err(Refusal::Mismatch("the re-enrolment is for another device".into()).into());
        }
        let known = existing.is_some();
        let mut device = existing.unwrap_or_else(|| Device {
            id: DeviceId::new(),
            tenant_id: tenant.id,
            user_id: reg.user_id,
            platform: reg.platform,
            status: DeviceStatus::Pending,
            udid: Some(udid.clone()),
            serial_number: None,
            model: None,
            model_name: None,
            product_name: None,
            os_version: None,
            build_version: None,
            device_name: None,
            enrolled_at: None,
            last_seen_at: Some(now),
            created_at: now,
            updated_at: now,
        });
        if !matches!(device.status, DeviceStatus::Active | DeviceStatus::Pending) {
            device.status = DeviceStatus::Pending;
        }
        device.user_id = reg.user_id.or(device.user_id);
        authenticate_facts(&mut device, m);
        device.updated_at = now;
        let enrollment = match self.store.apple_enrollment(tenant.id, &udid).await? {
            Some(e) => AppleEnrollment {
                device_id: device.id,
                registration_id: Some(reg.id.clone()),
                topic: m.topic.clone(),
                cert_fingerprint: Some(cert.fingerprint.clone()),
                cert_serial: Some(serial.clone()),
                last_seen_at: Some(now),
                updated_at: now,
                ..e
            },
            None => new_enrollment(tenant, &device, &udid, AppleChannel::Device, &m.topic, now)
                .bound(&reg.id, cert, &serial),
        };
        let action = if known {
            AuditAction::DeviceReenrolling
        } else {
            AuditAction::DeviceAuthenticated
        };
        let audit = device_audit(&device, now, &Actor::Public, action).details(serde_json::json!({
            "registration": reg.id, "purpose": reg.purpose, "udid": udid,
            "serial_number": device.serial_number, "certificate": serial,
        }));
        let change = EnrollmentChange {
            cancel_queue_of: known.then_some((tenant.id, device.id)),
            certificate_device: Some((tenant.id, serial, device.id)),
            registration: Some(RegistrationStep {
                tenant_id: tenant.id,
                id: reg.id.clone(),
                status: RegistrationStatus::CheckedIn,
                device_id: device.id,
                at: now,
            }),
            device: Some((device, !known)),
            enrollment: Some(enrollment),
            ..EnrollmentChange::default()
        };
        match self.store.apply_enrollment_change(&change, &[audit]).await {
            Ok(()) => Ok(CheckinReply::Empty),
            Err(StoreError::Conflict(_)) => Err(Refusal::Mismatch(
                "the certificate or device is bound to another enrollment".into(),
            )
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    async fn token_update(
        &self,
        tenant: &Tenant,
        cert: &ProvenCert,
        m: &TokenUpdate,
    ) -> DeviceResult<CheckinReply> {
        let dc = self
            .bound_device_channel(tenant, cert, &m.enrollment)
            .await?;
        let device = self
            .store
            .device(tenant.id, dc.device_id)
            .await?
            .ok_or_else(|| Refusal::NotEnrolled("the device record is gone".into()))?;
        if m.enrollment.id.is_user_channel() {
            return self.user_token_update(tenant, dc, device, m).await;
        }
        let now = self.now();
        let unlock_token = match &m.unlock_token {
            Some(t) => Some(
                self.vault
                    .seal(&unlock_token_aad(tenant.id, &dc.id), t)
                    .map_err(|e| CoreError::Store(format!("sealing the UnlockToken: {e}")))?,
            ),
            None => dc.unlock_token.clone(),
        };
        let registration = match &dc.registration_id {
            Some(id) => self.store.registration(tenant.id, id).await?,
            None => None,
        };
        let activate = device.status != DeviceStatus::Active
            || registration
                .as_ref()
                .is_some_and(|r| r.status != RegistrationStatus::Active);
        let enrollment = AppleEnrollment {
            token: Some(m.token.clone()),
            push_magic: Some(m.push_magic.clone()),
            topic: m.topic.clone(),
            unlock_token,
            token_dead_at: None,
            enabled: true,
            last_seen_at: Some(now),
            updated_at: now,
            ..dc
        };
        let mut change = EnrollmentChange::default();
        let mut audit = Vec::new();
        if activate {
            let mut device = device;
            device.status = DeviceStatus::Active;
            device.enrolled_at = Some(now);
            device.updated_at = now;
            let info = Command::new(self.command_uuid(), CommandRequest::device_information());
            change
                .commands
                .push(self.system_command(&device, &enrollment.id, &info)?);
            audit.push(
                device_audit(&device, now, &Actor::Public, AuditAction::DeviceEnrolled).details(
                    serde_json::json!({ "registration": enrollment.registration_id, "enrollment": enrollment.id }),
                ),
            );
            change.registration = registration.map(|r| RegistrationStep {
                tenant_id: tenant.id,
                id: r.id,
                status: RegistrationStatus::Active,
                device_id: device.id,
                at: now,
            });
            change.device = Some((device, false));
        }
        let channel = enrollment.id.clone();
        change.enrollment = Some(enrollment);
        self.store.apply_enrollment_change(&change, &audit).await?;
        if activate {
            self.request_push(tenant.id, &channel).await?;
        }
        Ok(CheckinReply::Empty)
    }

    async fn user_token_update(
        &self,
        tenant: &Tenant,
        dc: AppleEnrollment,
        device: Device,
        m: &TokenUpdate,
    ) -> DeviceResult<CheckinReply> {
        if !dc.enabled {
            return Err(Refusal::NotEnrolled("the device channel is not live".into()).into());
        }
        self.check_managed_user(tenant, &device, &m.enrollment)
            .await?;
        let id = m.enrollment.id.to_string();
        let channels = self.store.apple_enrollments(tenant.id, device.id).await?;
        if let Some(other) = channels
            .iter()
            .find(|e| e.channel == AppleChannel::User && e.enabled && e.id != id)
        {
            return Err(Refusal::UserRefused(format!(
                "the device already has a managed user ({})",
                other.user_short_name.as_deref().unwrap_or(&other.id)
            ))
            .into());
        }
        let now = self.now();
        let existing = channels.into_iter().find(|e| e.id == id);
        let first = existing.as_ref().is_none_or(|e| !e.enabled);
        let base = existing.unwrap_or_else(|| {
            new_enrollment(tenant, &device, &id, AppleChannel::User, &m.topic, now)
        });
        let enrollment = AppleEnrollment {
            registration_id: dc.registration_id.clone(),
            token: Some(m.token.clone()),
            push_magic: Some(m.push_magic.clone()),
            topic: m.topic.clone(),
            token_dead_at: None,
            user_short_name: m.enrollment.user_short_name.clone(),
            user_long_name: m.enrollment.user_long_name.clone(),
            enabled: true,
            last_seen_at: Some(now),
            updated_at: now,
            ..base
        };
        let audit: Vec<_> = first
            .then(|| {
                device_audit(
                    &device,
                    now,
                    &Actor::Public,
                    AuditAction::DeviceUserChannelEnrolled,
                )
                .details(serde_json::json!({
                    "enrollment": id, "user_short_name": enrollment.user_short_name,
                }))
            })
            .into_iter()
            .collect();
        let change = EnrollmentChange {
            enrollment: Some(enrollment),
            ..EnrollmentChange::default()
        };
        self.store.apply_enrollment_change(&change, &audit).await?;
        Ok(CheckinReply::Empty)
    }

    /// R14: a user channel only for the device's registered user, named by
    /// `UserShortName` (its login name, email or email local part) or
    /// `UserLongName` (its display name).
    async fn check_managed_user(
        &self,
        tenant: &Tenant,
        device: &Device,
        who: &Enrollment,
    ) -> DeviceResult<()> {
        let Some(user_id) = device.user_id else {
            return Err(Refusal::UserRefused("the device is registered for no user".into()).into());
        };
        let user =
            self.store.user(tenant.id, user_id).await?.ok_or_else(|| {
                Refusal::UserRefused("the registered user no longer exists".into())
            })?;
        let short_name = who.user_short_name.as_deref().unwrap_or("");
        let long_name = who.user_long_name.as_deref().unwrap_or("");
        let local = user.email.split('@').next().unwrap_or("");
        let names = [user.login_name.as_deref().unwrap_or(""), &user.email, local];
        let by_short = !short_name.is_empty()
            && names
                .iter()
                .any(|n| !n.is_empty() && n.eq_ignore_ascii_case(short_name));
        let by_long = !long_name.is_empty() && user.display_name.eq_ignore_ascii_case(long_name);
        if by_short || by_long {
            Ok(())
        } else {
            Err(Refusal::UserRefused(format!(
                "{short_name:?} is not the user this device is registered for"
            ))
            .into())
        }
    }

    async fn check_out(
        &self,
        tenant: &Tenant,
        cert: &ProvenCert,
        m: &CheckOut,
    ) -> DeviceResult<CheckinReply> {
        let dc = self
            .bound_device_channel(tenant, cert, &m.enrollment)
            .await?;
        let id = m.enrollment.id.to_string();
        let target = if id == dc.id {
            Some(dc.clone())
        } else {
            self.store.apple_enrollment(tenant.id, &id).await?
        };
        let Some(target) = target.filter(|e| e.enabled) else {
            return Ok(CheckinReply::Empty); // already checked out
        };
        let now = self.now();
        let mut change = EnrollmentChange {
            enrollment: Some(AppleEnrollment {
                enabled: false,
                updated_at: now,
                ..target.clone()
            }),
            ..EnrollmentChange::default()
        };
        let device = self.store.device(tenant.id, dc.device_id).await?;
        let Some(mut device) = device else {
            return Ok(CheckinReply::Empty);
        };
        if target.channel == AppleChannel::Device {
            if matches!(device.status, DeviceStatus::Active | DeviceStatus::Pending) {
                device.status = DeviceStatus::MdmDisabled;
            }
            device.updated_at = now;
            change.disable_user_channels_of = Some((tenant.id, device.id));
            change.cancel_queue_of = Some((tenant.id, device.id));
        }
        let audit = device_audit(&device, now, &Actor::Public, AuditAction::DeviceCheckedOut)
            .details(serde_json::json!({ "enrollment": id, "channel": target.channel }));
        if target.channel == AppleChannel::Device {
            change.device = Some((device, false));
        }
        self.store
            .apply_enrollment_change(&change, &[audit])
            .await?;
        Ok(CheckinReply::Empty)
    }

    async fn user_authenticate(
        &self,
        tenant: &Tenant,
        cert: &ProvenCert,
        m: &UserAuthenticate,
    ) -> DeviceResult<CheckinReply> {
        let dc = self
            .bound_device_channel(tenant, cert, &m.enrollment)
            .await?;
        if !self.apple.accept_user_authenticate {
            return Ok(CheckinReply::Declined);
        }
        let Some(device) = self.store.device(tenant.id, dc.device_id).await? else {
            return Ok(CheckinReply::Declined);
        };
        if self
            .check_managed_user(tenant, &device, &m.enrollment)
            .await
            .is_err()
        {
            return Ok(CheckinReply::Declined);
        }
        Ok(match m.digest_response {
            Some(_) => CheckinReply::Empty,
            None => CheckinReply::Plist(mdm_apple::user_authenticate_accept().map_err(build)?),
        })
    }

    /// A command the server queues itself (DeviceInformation after enrolment).
    fn system_command(
        &self,
        device: &Device,
        enrollment: &str,
        cmd: &Command,
    ) -> DeviceResult<AppleCommand> {
        let now = self.now();
        Ok(AppleCommand {
            command_uuid: cmd.command_uuid.clone(),
            tenant_id: device.tenant_id,
            enrollment_id: enrollment.to_string(),
            device_id: device.id,
            request_type: cmd.request.request_type().to_string(),
            payload: cmd.to_xml().map_err(build)?,
            state: CommandState::Queued,
            not_now_count: 0,
            ack_device_status: None,
            queued_by: Actor::System.key(),
            created_at: now,
            result_at: None,
            error_chain: serde_json::Value::Null,
            result: serde_json::Value::Null,
        })
    }
}

fn new_enrollment(
    tenant: &Tenant,
    device: &Device,
    id: &str,
    channel: AppleChannel,
    topic: &str,
    now: time::OffsetDateTime,
) -> AppleEnrollment {
    AppleEnrollment {
        id: id.to_string(),
        tenant_id: tenant.id,
        device_id: device.id,
        channel,
        registration_id: None,
        topic: topic.to_string(),
        token: None,
        push_magic: None,
        unlock_token: None,
        token_dead_at: None,
        cert_fingerprint: None,
        cert_serial: None,
        user_short_name: None,
        user_long_name: None,
        enabled: false,
        last_seen_at: Some(now),
        last_push_at: None,
        last_push_outcome: None,
        created_at: now,
        updated_at: now,
    }
}

impl AppleEnrollment {
    fn bound(self, registration: &str, cert: &ProvenCert, serial: &str) -> Self {
        Self {
            registration_id: Some(registration.to_string()),
            cert_fingerprint: Some(cert.fingerprint.clone()),
            cert_serial: Some(serial.to_string()),
            ..self
        }
    }
}

/// What an Authenticate tells about the hardware (absent keys keep the old value).
fn authenticate_facts(device: &mut Device, m: &Authenticate) {
    let set = |field: &mut Option<String>, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            *field = Some(v.clone());
        }
    };
    set(&mut device.serial_number, &m.serial_number);
    set(&mut device.model, &m.model);
    set(&mut device.model_name, &m.model_name);
    set(&mut device.product_name, &m.product_name);
    set(&mut device.os_version, &m.os_version);
    set(&mut device.build_version, &m.build_version);
    set(&mut device.device_name, &m.device_name);
}
