//! `Authenticate`: provisional, it binds the identity certificate to the
//! device channel. The certificate must be this tenant's, live, and belong to
//! an open registration; a known UDID is a re-enrolment or renewal of the same
//! record, its history kept (a re-enrolment also cancels its waiting queue; a
//! renewal keeps it).

use crate::StoreError;
use crate::audit::AuditAction;
use crate::checkin::{CheckinReply, new_enrollment};
use crate::core::Core;
use crate::devices::{AppleChannel, AppleEnrollment, Device, DeviceStatus, device_audit};
use crate::identity::{DeviceResult, ProvenCert, Refusal};
use crate::ids::DeviceId;
use crate::ports::{EnrollmentChange, RegistrationStep};
use crate::registrations::{
    REGISTRATION_GRACE, Registration, RegistrationPurpose, RegistrationStatus,
};
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_apple::Authenticate;

impl Core {
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

    pub(crate) async fn authenticate(
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
        // Every registration with a profile knows its platform.
        let Some(platform) = reg.platform else {
            return Err(Refusal::Registration("the registration has no profile".into()).into());
        };
        let existing = self
            .store
            .device_by_udid(tenant.id, platform, &udid)
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
            platform,
            status: DeviceStatus::Pending,
            shown_status: DeviceStatus::Pending,
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
        // A renewal keeps the queue: the device stays managed throughout, and
        // the InstallProfile that carried the profile awaits its result.
        let renewal = reg.purpose == RegistrationPurpose::Renewal;
        let change = EnrollmentChange {
            cancel_queue_of: (known && !renewal).then_some((tenant.id, device.id)),
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
