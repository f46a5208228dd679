//! Apple MDM check-in (PUT CheckInURL). `Authenticate` is provisional and
//! binds the identity certificate to the enrollment; the first `TokenUpdate`
//! makes the device active and queues DeviceInformation; a macOS user
//! channel is accepted only for the device's registered user (R14);
//! `CheckOut` disables MDM. A known device that authenticates again is a
//! re-enrolment or renewal of the same record: its stale queue is cancelled,
//! its history kept. Every transition is one store transaction with its
//! audit entry.

use crate::audit::AuditAction;
use crate::commands::{AppleCommand, CommandState};
use crate::core::Core;
use crate::devices::{AppleChannel, AppleEnrollment, Device, DeviceStatus, device_audit};
use crate::error::CoreError;
use crate::identity::{
    DeviceError, DeviceRequest, DeviceResult, ProvenCert, Refusal, short, unlock_token_aad,
};
use crate::ports::{EnrollmentChange, RegistrationStep};
use crate::registrations::{RegistrationPurpose, RegistrationStatus};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_apple::{
    CheckOut, CheckinMessage, Command, CommandRequest, Enrollment, ParseErrorKind, TokenUpdate,
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

pub(crate) fn build(e: mdm_apple::BuildError) -> DeviceError {
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
    pub(crate) async fn bound_device_channel(
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
        // MDM disabled (CheckOut, a cancelled or expired re-enrolment) or
        // removed: only a new Authenticate brings the device back.
        let ended = matches!(
            device.status,
            DeviceStatus::MdmDisabled | DeviceStatus::Retired | DeviceStatus::Wiped
        );
        if ended && !dc.enabled {
            return Err(Refusal::NotEnrolled(format!(
                "MDM is {} for this device; it must enrol again",
                device.status
            ))
            .into());
        }
        // The first TokenUpdate of a registration (enrolment, re-enrolment,
        // renewal) completes it; a retired device awaiting its RemoveProfile
        // only refreshes its token.
        let activate = device.status == DeviceStatus::Pending
            || registration.as_ref().is_some_and(|r| r.status.is_open());
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
            let renewal = registration
                .as_ref()
                .is_some_and(|r| r.purpose == RegistrationPurpose::Renewal)
                && device.status == DeviceStatus::Active;
            let mut device = device;
            device.status = DeviceStatus::Active;
            if !renewal || device.enrolled_at.is_none() {
                device.enrolled_at = Some(now);
            }
            device.updated_at = now;
            let info = Command::new(self.command_uuid(), CommandRequest::device_information());
            change
                .commands
                .push(self.system_command(&device, &enrollment.id, &info)?);
            let action = if renewal {
                AuditAction::DeviceIdentityRenewed
            } else {
                AuditAction::DeviceEnrolled
            };
            audit.push(
                device_audit(&device, now, &Actor::Public, action).details(
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
        if activate {
            // The push for the DeviceInformation command, in the same
            // transaction.
            change.jobs.push(self.push_job(tenant.id, &enrollment.id));
        }
        change.enrollment = Some(enrollment);
        self.store.apply_enrollment_change(&change, &audit).await?;
        Ok(CheckinReply::Empty)
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

pub(crate) fn new_enrollment(
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
    pub(crate) fn bound(self, registration: &str, cert: &ProvenCert, serial: &str) -> Self {
        Self {
            registration_id: Some(registration.to_string()),
            cert_fingerprint: Some(cert.fingerprint.clone()),
            cert_serial: Some(serial.to_string()),
            ..self
        }
    }
}
