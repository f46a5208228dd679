//! One simulated device: installs the enrollment profile (verify, SCEP,
//! Authenticate, TokenUpdate, and on a Mac the user channel), then answers
//! commands whenever it is woken, like a real device.

use mdm_apple::plist::Dictionary;
use mdm_apple::{CHECKIN_CONTENT_TYPE, CommandStatus};
use mdm_pki::RsaKey;
use std::collections::HashMap;
use time::OffsetDateTime;

use crate::commands::{InstalledProfile, ProfileStore};
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
pub(crate) struct Enrolled {
    pub(crate) profile: ManagementProfile,
    pub(crate) id: Identity,
    pub(crate) http: reqwest::Client,
    pub(crate) token: Vec<u8>,
    pub(crate) push_magic: String,
    pub(crate) unlock_token: Option<Vec<u8>>,
    pub(crate) user_token: Option<Vec<u8>>,
    pub(crate) user_profiles: ProfileStore,
    /// Send `Mdm-Signature` (SignMessage, and not mTLS-only).
    pub(crate) sign: bool,
}

/// A simulated iPhone or Mac.
pub struct Device {
    /// What it is.
    pub facts: DeviceFacts,
    /// Test behaviours.
    pub behaviour: Behaviour,
    /// Every command answered, in order.
    pub history: Vec<Handled>,
    pub(crate) http: reqwest::Client,
    pub(crate) mode: IdentityMode,
    pub(crate) key: Option<RsaKey>,
    pub(crate) enrolled: Option<Enrolled>,
    pub(crate) profiles: ProfileStore,
    pub(crate) not_now_given: HashMap<String, u32>,
    pub(crate) state: DeviceState,
    pub(crate) trace: Option<fn(&str)>,
    /// Roots trusted beside those a profile installs (a device's system store).
    pub(crate) system_roots: Vec<mdm_pki::x509_cert::Certificate>,
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
            system_roots: Vec::new(),
        }
    }

    /// Trusts `roots` as a device trusts its system store: a profile signed
    /// by an identity that chains to one of them verifies.
    pub fn with_system_roots(mut self, roots: Vec<mdm_pki::x509_cert::Certificate>) -> Self {
        self.system_roots = roots;
        self
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

    pub(crate) fn step(&self, text: &str) {
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
        let profile = ManagementProfile::verify_trusting(signed, now, &self.system_roots)?;
        self.step(&format!(
            "profile verified: {:?} signed by {}, SCEP {}, ServerURL {}",
            profile.identifier,
            mdm_pki::CertificateExt::subject_string(&profile.signer),
            profile.scep.url,
            profile.mdm.server_url
        ));
        let key = self.key.take();
        let (id, http) = self.scep_identity(&profile, key, now).await?;
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

    /// A key of the profile's size (`key` when it fits, else a new one),
    /// a certificate for it by SCEP, and the client the device talks MDM with.
    async fn scep_identity(
        &mut self,
        profile: &ManagementProfile,
        key: Option<RsaKey>,
        now: OffsetDateTime,
    ) -> Result<(Identity, reqwest::Client), SimError> {
        let key = match key {
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
        Ok((id, http))
    }

    /// The enrollment profile arrived again in an `InstallProfile` (the
    /// server renews the identity): as a device does, verify it, make a new
    /// key, get its certificate by SCEP, then `Authenticate` and
    /// `TokenUpdate` with the same push token. The profiles it installed
    /// stay; the old identity is no longer used.
    pub async fn renew(&mut self, signed: &[u8]) -> Result<(), SimError> {
        let now = OffsetDateTime::now_utc();
        let profile = ManagementProfile::verify_trusting(signed, now, &self.system_roots)?;
        let current = self
            .enrolled
            .as_ref()
            .ok_or(SimError::State("renew: not enrolled"))?;
        let same = profile.identifier == current.profile.identifier
            && profile.mdm.topic == current.profile.mdm.topic
            && profile.mdm.server_url == current.profile.mdm.server_url
            && profile.mdm.check_in_url == current.profile.mdm.check_in_url;
        if !same {
            return Err(SimError::State(
                "the re-sent profile changes Topic or URLs, which an installed profile cannot",
            ));
        }
        self.step("re-sent enrollment profile verified: renewing the identity");
        let (id, http) = self.scep_identity(&profile, None, now).await?;
        let mut e = self
            .enrolled
            .take()
            .ok_or(SimError::State("renew: not enrolled"))?;
        let old_id = std::mem::replace(&mut e.id, id);
        let old_http = std::mem::replace(&mut e.http, http);
        let old_profile = std::mem::replace(&mut e.profile, profile);
        let auth = self.authenticate_message(&e);
        let mut sent = e.send_checkin("Authenticate", auth).await;
        if sent.is_ok() {
            let tu = self.token_update_message(&e, Channel::Device);
            sent = e.send_checkin("TokenUpdate", tu).await;
        }
        if sent.is_err() {
            // The installation failed: the device keeps what it had.
            e.id = old_id;
            e.http = old_http;
            e.profile = old_profile;
        }
        self.enrolled = Some(e);
        sent?;
        self.step("renewed: Authenticate and TokenUpdate with the new identity: 200");
        if let Some(p) = self.profiles.enrollment.as_mut() {
            p.payload = signed.to_vec();
        }
        Ok(())
    }

    /// [`Device::renew`] with the profile an `InstallProfile` command carries.
    pub(crate) async fn renew_from_command(&mut self, body: &[u8]) -> Result<(), SimError> {
        let cmd = mdm_apple::Command::parse(body)
            .map_err(|_| SimError::State("the InstallProfile could not be read"))?;
        match cmd.request {
            mdm_apple::CommandRequest::InstallProfile { payload } => self.renew(&payload).await,
            _ => Err(SimError::State("not an InstallProfile")),
        }
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

    /// EraseDevice: everything is gone, including the enrolment.
    pub(crate) fn wipe(&mut self) {
        self.enrolled = None;
        self.profiles = ProfileStore::default();
        self.not_now_given.clear();
        self.state = DeviceState::Wiped;
        self.step("erased: the device forgot its enrolment");
    }
}

impl Enrolled {
    pub(crate) fn prepare(
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

    pub(crate) async fn send(&self, req: &Prepared) -> Result<Vec<u8>, SimError> {
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
