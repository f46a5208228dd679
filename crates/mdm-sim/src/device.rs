//! One simulated device: installs the enrollment profile (verify, SCEP,
//! Authenticate, TokenUpdate, and on a Mac the user channel), then answers
//! commands whenever it is woken, like a real device.

use mdm_apple::plist::{Dictionary, Value};
use mdm_apple::{
    CHECKIN_CONTENT_TYPE, COMMAND_CONTENT_TYPE, Command, CommandRequest, CommandStatus,
};
use mdm_pki::RsaKey;
use std::collections::HashMap;
use time::OffsetDateTime;

use crate::commands::{Effect, InstalledProfile, ProfileStore, Reply, answer};
use crate::error::SimError;
use crate::facts::{DeviceFacts, Platform};
use crate::profile::ManagementProfile;
use crate::wire::{Identity, IdentityMode, Prepared, device_client, mdm_signature, xml};

/// Test behaviours of a device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Behaviour {
    /// Answer every command `NotNow` this many times before running it.
    pub not_now: u32,
    /// Send every command result twice (as when a response was lost).
    pub duplicate_results: bool,
    /// Never poll: pushes and wake-ups are ignored.
    pub silent: bool,
}

/// Where the device is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceState {
    /// Never enrolled (or enrolment failed).
    Fresh,
    /// Enrolled and managed.
    Enrolled,
    /// Its management profile was removed (it sent CheckOut).
    Unenrolled,
    /// Erased: it forgot its enrolment.
    Wiped,
}

/// The device or the user channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// `UDID`.
    Device,
    /// `UDID` + `UserID` (macOS).
    User,
}

/// One command the device answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handled {
    /// Which channel it came on.
    pub channel: Channel,
    /// `CommandUUID`.
    pub command_uuid: String,
    /// `RequestType`.
    pub request_type: String,
    /// What the device answered.
    pub status: CommandStatus,
}

/// What an enrolled device holds.
struct Enrolled {
    profile: ManagementProfile,
    id: Identity,
    http: reqwest::Client,
    token: Vec<u8>,
    push_magic: String,
    unlock_token: Option<Vec<u8>>,
    user_token: Option<Vec<u8>>,
    user_profiles: ProfileStore,
    /// Send `Mdm-Signature` (SignMessage, and not mTLS-only).
    sign: bool,
}

/// A simulated iPhone or Mac.
pub struct Device {
    /// What it is.
    pub facts: DeviceFacts,
    /// Test behaviours.
    pub behaviour: Behaviour,
    /// Every command answered, in order.
    pub history: Vec<Handled>,
    http: reqwest::Client,
    mode: IdentityMode,
    key: Option<RsaKey>,
    enrolled: Option<Enrolled>,
    profiles: ProfileStore,
    not_now_given: HashMap<String, u32>,
    state: DeviceState,
    trace: Option<fn(&str)>,
}

fn random(len: usize) -> Result<Vec<u8>, SimError> {
    Ok(mdm_pki::random_bytes(len)
        .map_err(SimError::local)?
        .to_vec())
}

impl Device {
    /// A fresh device that talks through `http` (share one client between devices).
    pub fn new(facts: DeviceFacts, http: reqwest::Client) -> Self {
        Self {
            facts,
            behaviour: Behaviour::default(),
            history: Vec::new(),
            http,
            mode: IdentityMode::Signature,
            key: None,
            enrolled: None,
            profiles: ProfileStore::default(),
            not_now_given: HashMap::new(),
            state: DeviceState::Fresh,
            trace: None,
        }
    }

    /// Uses `key` for the next enrolment instead of generating one.
    pub fn with_key(mut self, key: RsaKey) -> Self {
        self.key = Some(key);
        self
    }

    /// How requests carry the identity.
    pub fn with_identity_mode(mut self, mode: IdentityMode) -> Self {
        self.mode = mode;
        self
    }

    /// Calls `f` with a line for every step (the `enroll` command prints them).
    pub fn with_trace(mut self, f: fn(&str)) -> Self {
        self.trace = Some(f);
        self
    }

    fn step(&self, text: &str) {
        if let Some(f) = self.trace {
            f(text);
        }
    }

    /// Where the device is in its life.
    pub fn state(&self) -> DeviceState {
        self.state
    }

    /// `UDID`.
    pub fn udid(&self) -> &str {
        &self.facts.udid
    }

    /// The device channel's APNs token (what a push is addressed to), once enrolled.
    pub fn push_token(&self) -> Option<&[u8]> {
        self.enrolled.as_ref().map(|e| e.token.as_slice())
    }

    /// The user channel's APNs token (Mac).
    pub fn user_push_token(&self) -> Option<&[u8]> {
        self.enrolled.as_ref().and_then(|e| e.user_token.as_deref())
    }

    /// `PushMagic` of the device channel.
    pub fn push_magic(&self) -> Option<&str> {
        self.enrolled.as_ref().map(|e| e.push_magic.as_str())
    }

    /// The identity certificate (DER), once enrolled.
    pub fn identity_cert_der(&self) -> Option<&[u8]> {
        self.enrolled.as_ref().map(|e| e.id.cert_der.as_slice())
    }

    /// The verified enrollment profile, once installed.
    pub fn profile(&self) -> Option<&ManagementProfile> {
        self.enrolled.as_ref().map(|e| &e.profile)
    }

    /// Profiles installed through MDM on the device channel.
    pub fn installed_profiles(&self) -> Vec<&InstalledProfile> {
        self.profiles.installed.values().collect()
    }

    /// Installs a signed enrollment profile: verify it, get the identity by
    /// SCEP, `Authenticate`, `TokenUpdate` (and on a Mac with per-user
    /// connections the user channel's `TokenUpdate`). Nothing is kept when a
    /// step fails, as on a device.
    pub async fn enroll(&mut self, signed: &[u8]) -> Result<(), SimError> {
        let now = OffsetDateTime::now_utc();
        let profile = ManagementProfile::verify(signed, now)?;
        self.step(&format!(
            "profile verified: {:?} signed by {}, SCEP {}, ServerURL {}",
            profile.identifier,
            mdm_pki::CertificateExt::subject_string(&profile.signer),
            profile.scep.url,
            profile.mdm.server_url
        ));
        let key = match self.key.take() {
            Some(k) if k.bits() == profile.scep.key_size as usize => k,
            _ => {
                let bits = profile.scep.key_size as usize;
                tokio::task::spawn_blocking(move || RsaKey::generate(bits))
                    .await
                    .map_err(SimError::local)?
                    .map_err(SimError::local)?
            }
        };
        let tls = [
            &profile.scep.url,
            &profile.mdm.server_url,
            &profile.mdm.check_in_url,
        ]
        .iter()
        .any(|u| u.starts_with("https://"));
        let scep_http = if tls {
            device_client(&profile.anchors, None)?
        } else {
            self.http.clone()
        };
        let issued = crate::scep::enroll(&scep_http, &profile.scep, &key, now).await?;
        self.step(&format!(
            "SCEP: certificate {} issued by {} ({} / {})",
            mdm_pki::CertificateExt::serial_hex(&issued.cert),
            mdm_pki::CertificateExt::issuer_string(&issued.cert),
            issued.cipher.name(),
            issued.digest.name()
        ));
        let id = Identity {
            key,
            cert: issued.cert,
            cert_der: issued.cert_der,
        };
        let http = match self.mode {
            IdentityMode::Signature => scep_http,
            IdentityMode::Mtls => device_client(&profile.anchors, Some(&id))?,
        };
        let ios = self.facts.platform == Platform::Iphone;
        let mut e = Enrolled {
            profile,
            id,
            http,
            token: random(32)?,
            push_magic: uuid::Uuid::new_v4().hyphenated().to_string().to_uppercase(),
            unlock_token: if ios { Some(random(64)?) } else { None },
            user_token: None,
            user_profiles: ProfileStore::default(),
            sign: self.mode == IdentityMode::Signature,
        };
        let auth = self.authenticate_message(&e);
        e.send_checkin("Authenticate", auth).await?;
        self.step("Authenticate: 200");
        let tu = self.token_update_message(&e, Channel::Device);
        e.send_checkin("TokenUpdate", tu).await?;
        self.step(&format!(
            "TokenUpdate: 200 (token {})",
            hex::encode(&e.token)
        ));
        if self.facts.platform == Platform::Mac && e.profile.mdm.per_user_connections() {
            e.user_token = Some(random(32)?);
            let tu = self.token_update_message(&e, Channel::User);
            e.send_checkin("user TokenUpdate", tu).await?;
            self.step("user-channel TokenUpdate: 200");
        }
        self.profiles = ProfileStore {
            enrollment: Some(InstalledProfile {
                identifier: e.profile.identifier.clone(),
                uuid: e.profile.uuid.clone(),
                display_name: e.profile.display_name.clone(),
                payload: signed.to_vec(),
            }),
            installed: Default::default(),
        };
        self.enrolled = Some(e);
        self.state = DeviceState::Enrolled;
        Ok(())
    }

    fn identity_keys(&self, channel: Channel) -> Dictionary {
        let mut d = Dictionary::new();
        d.insert("UDID".into(), self.facts.udid.as_str().into());
        if let (Channel::User, Some(u)) = (channel, &self.facts.user) {
            d.insert("UserID".into(), u.user_id.as_str().into());
            d.insert("UserShortName".into(), u.short_name.as_str().into());
            d.insert("UserLongName".into(), u.long_name.as_str().into());
        }
        d
    }

    fn authenticate_message(&self, e: &Enrolled) -> Dictionary {
        let f = &self.facts;
        let mut d = self.identity_keys(Channel::Device);
        d.insert("MessageType".into(), "Authenticate".into());
        d.insert("Topic".into(), e.profile.mdm.topic.as_str().into());
        for (k, v) in [
            ("BuildVersion", Some(&f.build_version)),
            ("OSVersion", Some(&f.os_version)),
            ("ProductName", Some(&f.product_name)),
            ("SerialNumber", Some(&f.serial_number)),
            ("DeviceName", Some(&f.device_name)),
            ("Model", Some(&f.model)),
            ("ModelName", Some(&f.model_name)),
            ("IMEI", f.imei.as_ref()),
            ("MEID", f.meid.as_ref()),
        ] {
            if let Some(v) = v {
                d.insert(k.into(), v.as_str().into());
            }
        }
        d
    }

    fn token_update_message(&self, e: &Enrolled, channel: Channel) -> Dictionary {
        let mut d = self.identity_keys(channel);
        d.insert("MessageType".into(), "TokenUpdate".into());
        d.insert("Topic".into(), e.profile.mdm.topic.as_str().into());
        d.insert("PushMagic".into(), e.push_magic.as_str().into());
        let token = match channel {
            Channel::Device => e.token.clone(),
            Channel::User => e.user_token.clone().unwrap_or_default(),
        };
        d.insert("Token".into(), Value::Data(token));
        match (channel, self.facts.platform) {
            (Channel::Device, Platform::Iphone) => {
                if let Some(t) = &e.unlock_token {
                    d.insert("UnlockToken".into(), Value::Data(t.clone()));
                }
            }
            (Channel::Device, Platform::Mac) => {
                d.insert("AwaitingConfiguration".into(), Value::Boolean(false));
            }
            (Channel::User, _) => {
                d.insert("NotOnConsole".into(), Value::Boolean(false));
            }
        }
        d
    }

    /// The user removes the management profile in Settings: `CheckOut` (when
    /// the profile asks for it), and the device is no longer managed.
    pub async fn remove_management(&mut self) -> Result<(), SimError> {
        let e = self
            .enrolled
            .take()
            .ok_or(SimError::State("remove a profile it does not have"))?;
        self.state = DeviceState::Unenrolled;
        self.profiles = ProfileStore::default();
        if e.profile.mdm.check_out_when_removed {
            let mut d = self.identity_keys(Channel::Device);
            d.insert("MessageType".into(), "CheckOut".into());
            d.insert("Topic".into(), e.profile.mdm.topic.as_str().into());
            e.send_checkin("CheckOut", d).await?;
            self.step("CheckOut: 200");
        }
        Ok(())
    }

    /// A push arrived: poll the device channel (and the user channel of a Mac)
    /// until the server has nothing more. A silent device does nothing.
    pub async fn wake(&mut self) -> Result<Vec<Handled>, SimError> {
        let mut all = self.poll(Channel::Device).await?;
        if self.state == DeviceState::Enrolled && self.user_push_token().is_some() {
            all.extend(self.poll(Channel::User).await?);
        }
        Ok(all)
    }

    /// One command-channel session: `Idle`, then answer each command until
    /// the server sends an empty body.
    pub async fn poll(&mut self, channel: Channel) -> Result<Vec<Handled>, SimError> {
        let mut handled = Vec::new();
        if self.behaviour.silent {
            return Ok(handled);
        }
        let mut req = self.report(channel, CommandStatus::Idle, None, Dictionary::new())?;
        loop {
            let e = self
                .enrolled
                .as_ref()
                .ok_or(SimError::State("poll: not enrolled"))?;
            let mut body = e.send(&req).await?;
            if self.behaviour.duplicate_results && req.step != "Idle" {
                body = e.send(&req).await?;
            }
            if body.is_empty() {
                return Ok(handled);
            }
            let (uuid, request_type, reply) = self.decide(&body, channel);
            let status = reply.status;
            self.step(&format!("{request_type} {uuid}: {status}"));
            let h = Handled {
                channel,
                command_uuid: uuid.clone(),
                request_type,
                status,
            };
            self.history.push(h.clone());
            handled.push(h);
            req = self.report(channel, status, Some(&uuid), reply.payload)?;
            match reply.effect {
                Effect::None => {}
                Effect::ManagementRemoved => {
                    let e = self.enrolled.as_ref().ok_or(SimError::State("report"))?;
                    e.send(&req).await?;
                    self.remove_management().await?;
                    return Ok(handled);
                }
                Effect::Wiped => {
                    let e = self.enrolled.as_ref().ok_or(SimError::State("report"))?;
                    e.send(&req).await?;
                    self.wipe();
                    return Ok(handled);
                }
            }
        }
    }

    /// Reads a command and answers it (NotNow first, when configured).
    fn decide(&mut self, body: &[u8], channel: Channel) -> (String, String, Reply) {
        let cmd = match Command::parse(body) {
            Ok(c) => c,
            Err(_) => {
                let uuid = mdm_apple::decode_plist(body)
                    .ok()
                    .and_then(|v| {
                        v.as_dictionary()?
                            .get("CommandUUID")?
                            .as_string()
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                let mut r = Reply::error("MCMDMErrorDomain", 12001, "The command is not valid.");
                r.status = CommandStatus::CommandFormatError;
                return (uuid, "?".into(), r);
            }
        };
        let request_type = cmd.request.request_type().to_owned();
        let given = self
            .not_now_given
            .entry(cmd.command_uuid.clone())
            .or_default();
        if *given < self.behaviour.not_now {
            *given += 1;
            let r = Reply {
                status: CommandStatus::NotNow,
                payload: Dictionary::new(),
                effect: Effect::None,
            };
            return (cmd.command_uuid, request_type, r);
        }
        let reply = match (channel, &mut self.enrolled) {
            (Channel::User, Some(e)) => {
                user_answer(&cmd.request, &self.facts, &mut e.user_profiles)
            }
            _ => answer(&cmd.request, &self.facts, &mut self.profiles),
        };
        (cmd.command_uuid, request_type, reply)
    }

    fn report(
        &self,
        channel: Channel,
        status: CommandStatus,
        uuid: Option<&str>,
        payload: Dictionary,
    ) -> Result<Prepared, SimError> {
        let e = self
            .enrolled
            .as_ref()
            .ok_or(SimError::State("report: not enrolled"))?;
        let mut d = self.identity_keys(channel);
        d.insert("Status".into(), status.as_str().into());
        if let Some(u) = uuid {
            d.insert("CommandUUID".into(), u.into());
        }
        for (k, v) in payload {
            d.insert(k, v);
        }
        let step = if uuid.is_some() {
            status.as_str()
        } else {
            "Idle"
        };
        e.prepare(
            step,
            &e.profile.mdm.server_url,
            COMMAND_CONTENT_TYPE,
            d,
            self.facts.user_agent(),
        )
    }

    /// A signed `Idle` to replay (load tests sign before the clock starts).
    pub fn idle_request(&self, channel: Channel) -> Result<Prepared, SimError> {
        self.report(channel, CommandStatus::Idle, None, Dictionary::new())
    }

    /// A signed result for `uuid` (load tests).
    pub fn result_request(&self, uuid: &str, status: CommandStatus) -> Result<Prepared, SimError> {
        self.report(Channel::Device, status, Some(uuid), Dictionary::new())
    }

    /// The client this device's requests go through (its own with mTLS).
    pub fn client(&self) -> &reqwest::Client {
        self.enrolled.as_ref().map_or(&self.http, |e| &e.http)
    }

    /// EraseDevice: everything is gone, including the enrolment.
    fn wipe(&mut self) {
        self.enrolled = None;
        self.profiles = ProfileStore::default();
        self.not_now_given.clear();
        self.state = DeviceState::Wiped;
        self.step("erased: the device forgot its enrolment");
    }
}

/// The user channel holds no enrollment profile; removing one there only
/// removes user profiles, and erasing is a device-channel command.
fn user_answer(req: &CommandRequest, facts: &DeviceFacts, profiles: &mut ProfileStore) -> Reply {
    match req {
        CommandRequest::EraseDevice { .. } | CommandRequest::DeviceLock { .. } => Reply::error(
            "MCMDMErrorDomain",
            12078,
            "This command is not supported on the user channel.",
        ),
        other => answer(other, facts, profiles),
    }
}

impl Enrolled {
    fn prepare(
        &self,
        step: &str,
        url: &str,
        content_type: &'static str,
        d: Dictionary,
        user_agent: &'static str,
    ) -> Result<Prepared, SimError> {
        let body = xml(d)?;
        let signature = if self.sign && self.profile.mdm.sign_message {
            Some(mdm_signature(&body, &self.id, OffsetDateTime::now_utc())?)
        } else {
            None
        };
        Ok(Prepared {
            step: step.to_owned(),
            url: url.to_owned(),
            content_type,
            user_agent,
            body,
            signature,
        })
    }

    async fn send(&self, req: &Prepared) -> Result<Vec<u8>, SimError> {
        req.send_ok(&self.http).await
    }

    async fn send_checkin(&self, step: &str, d: Dictionary) -> Result<Vec<u8>, SimError> {
        let ua = "MDM/1.0";
        let req = self.prepare(
            step,
            &self.profile.mdm.check_in_url,
            CHECKIN_CONTENT_TYPE,
            d,
            ua,
        )?;
        self.send(&req).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mdm_apple::CommandRequest;

    fn device() -> Device {
        Device::new(DeviceFacts::iphone(3), reqwest::Client::new())
    }

    fn command(uuid: &str, request: CommandRequest) -> Vec<u8> {
        Command::new(uuid, request).to_xml().unwrap()
    }

    #[test]
    fn not_now_is_given_per_command_the_configured_number_of_times() {
        let mut d = device();
        d.behaviour.not_now = 2;
        let body = command("C1", CommandRequest::ProfileList);
        let statuses: Vec<_> = (0..3)
            .map(|_| d.decide(&body, Channel::Device).2.status)
            .collect();
        assert_eq!(
            statuses,
            [
                CommandStatus::NotNow,
                CommandStatus::NotNow,
                CommandStatus::Acknowledged
            ]
        );
        let other = command("C2", CommandRequest::ProfileList);
        assert_eq!(
            d.decide(&other, Channel::Device).2.status,
            CommandStatus::NotNow
        );
    }

    #[test]
    fn a_broken_command_is_a_command_format_error_for_its_uuid() {
        let mut d = device();
        let mut dict = Dictionary::new();
        dict.insert("CommandUUID".into(), "C9".into());
        dict.insert("Command".into(), Value::String("not a dictionary".into()));
        let (uuid, _, reply) = d.decide(&xml(dict).unwrap(), Channel::Device);
        assert_eq!(
            (uuid.as_str(), reply.status),
            ("C9", CommandStatus::CommandFormatError)
        );
    }

    #[test]
    fn erase_and_lock_are_device_channel_commands() {
        let facts = DeviceFacts::mac(4);
        let erase = CommandRequest::EraseDevice {
            pin: None,
            preserve_data_plan: None,
        };
        let r = user_answer(&erase, &facts, &mut ProfileStore::default());
        assert_eq!((r.status, r.effect), (CommandStatus::Error, Effect::None));
    }

    #[test]
    fn check_ins_carry_what_a_device_sends() {
        let d = Device::new(DeviceFacts::mac(5), reqwest::Client::new());
        let user = d.identity_keys(Channel::User);
        let u = d.facts.user.as_ref().unwrap();
        assert_eq!(user["UserID"].as_string(), Some(u.user_id.as_str()));
        assert_eq!(
            user["UserShortName"].as_string(),
            Some(u.short_name.as_str())
        );
        assert!(d.identity_keys(Channel::Device).get("UserID").is_none());
    }
}
