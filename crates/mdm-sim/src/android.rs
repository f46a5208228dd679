//! A simulated Android device running our device-policy agent, speaking
//! only the agent API (`mdm-android` wire types over HTTP): it registers
//! with credentials or an enrollment token, signs every later request with
//! its own key, checks in, fetches and answers commands (retire, wipe,
//! remove CA certificates, lock), and reports a reset. Android 9 (API 28)
//! and Android 13 (API 33) behave as real devices do: what identifiers the
//! agent can read depends on the API level and the management mode, and a
//! factory reset changes the ANDROID_ID and the key.

use crate::error::SimError;
use mdm_android::{
    CaCertificate, CaSelection, Checkin, CheckinResponse, Command, CommandKind, CommandResult,
    CommandsResponse, Credentials, DeviceEvent, DeviceFacts, DevicePublicKey, DeviceStatus,
    Endpoint, EventKind, EventsRequest, Fingerprint, Identifiers, Inventory, ManagementMode,
    Message, Nonce, OsInfo, RegisterRequest, RegisterResponse, RequestParts, RequestSigner,
    ResetCause, TENANT_HEADER, can_read,
};
use mdm_pki::RsaKey;
use time::OffsetDateTime;
use uuid::Uuid;

/// What the device is and what its agent may read.
#[derive(Clone, Debug)]
pub struct AndroidHardware {
    /// `Build.MANUFACTURER`.
    pub manufacturer: String,
    /// `Build.MODEL`.
    pub model: String,
    /// `Build.VERSION.SDK_INT`.
    pub api_level: u32,
    /// IMEI (readable by an owner only from Android 10).
    pub imei: String,
    /// Hardware serial number.
    pub serial: String,
    /// Per device and organisation (Android 12+).
    pub enterprise_specific_id: String,
    /// Changes with every factory reset.
    pub android_id: String,
}

impl AndroidHardware {
    /// Device number `n` on the given API level (28 = Android 9, 33 = Android 13).
    pub fn new(n: u32, api_level: u32) -> Self {
        Self {
            manufacturer: "Google".into(),
            model: if api_level >= 33 {
                "Pixel 7"
            } else {
                "Pixel 3"
            }
            .into(),
            api_level,
            imei: format!("35{n:013}"),
            serial: format!("SIM{n:09}"),
            enterprise_specific_id: format!("esid-{n:012}"),
            android_id: format!("{:016x}", u64::from(n) * 7919 + 1),
        }
    }

    fn version(&self) -> String {
        match self.api_level {
            28 => "9".into(),
            33 => "13".into(),
            l => format!("api-{l}"),
        }
    }
}

/// One simulated Android device.
pub struct AndroidDevice {
    /// The hardware and its identifiers.
    pub hardware: AndroidHardware,
    /// How the agent manages it.
    pub mode: ManagementMode,
    base: String,
    tenant: String,
    http: reqwest::Client,
    key: RsaKey,
    /// Set by a successful registration.
    pub registration: Option<RegisterResponse>,
    /// User-installed CA certificates (fingerprint, subject).
    pub user_cas: Vec<CaCertificate>,
    /// FCM registration token.
    pub fcm_token: String,
    /// Commands answered so far, by type.
    pub handled: Vec<String>,
    /// Set when a wipe or retire was carried out.
    pub unmanaged: bool,
}

impl AndroidDevice {
    /// A device with `key` for `tenant` on the server at `base`.
    pub fn new(
        hardware: AndroidHardware,
        mode: ManagementMode,
        base: &str,
        tenant: &str,
        http: reqwest::Client,
        key: RsaKey,
    ) -> Self {
        let n = hardware.serial.clone();
        Self {
            hardware,
            mode,
            base: base.trim_end_matches('/').to_string(),
            tenant: tenant.to_string(),
            http,
            key,
            registration: None,
            user_cas: vec![CaCertificate {
                sha256: Fingerprint::of_der(n.as_bytes()),
                subject: format!("CN=Proxy CA of {n}"),
            }],
            fcm_token: format!("fcm-{n}:APA91b{}", Uuid::new_v4().simple()),
            handled: Vec::new(),
            unmanaged: false,
        }
    }

    /// The device id the server gave it.
    pub fn device_id(&self) -> Option<Uuid> {
        self.registration.as_ref().map(|r| r.device_id)
    }

    /// The facts the agent reports: only the identifiers it can read.
    pub fn facts(&self) -> DeviceFacts {
        let h = &self.hardware;
        let readable = |kind| can_read(kind, h.api_level, self.mode);
        use mdm_android::CorrelationKind as K;
        DeviceFacts {
            manufacturer: h.manufacturer.clone(),
            model: h.model.clone(),
            os: OsInfo {
                version: h.version(),
                api_level: h.api_level,
                security_patch: Some("2026-11-05".into()),
            },
            management_mode: self.mode,
            identifiers: Identifiers {
                enterprise_specific_id: readable(K::EnterpriseSpecificId)
                    .then(|| h.enterprise_specific_id.clone()),
                imei: readable(K::Imei).then(|| h.imei.clone()),
                meid: None,
                serial: readable(K::Serial).then(|| h.serial.clone()),
                android_id: Some(h.android_id.clone()),
            },
        }
    }

    /// The registration request body.
    pub fn register_body(&self, credentials: Credentials) -> Result<Vec<u8>, SimError> {
        RegisterRequest {
            attempt_id: Uuid::new_v4(),
            tenant: self.tenant.clone(),
            credentials,
            device: self.facts(),
            fcm_token: Some(self.fcm_token.clone()),
            public_key: DevicePublicKey::from_spki_der(self.key.public_key_spki_der()),
        }
        .to_json()
        .map_err(SimError::local)
    }

    /// Registers; on success keeps the answer.
    pub async fn register(&mut self, credentials: Credentials) -> Result<(), SimError> {
        let body = self.register_body(credentials)?;
        let (status, text) = self
            .send(
                "register",
                "POST",
                &Endpoint::Register.path(mdm_android::ApiVersion::V1),
                body,
                false,
            )
            .await?;
        if status != 201 {
            return Err(http_error("register", status, &text));
        }
        let answer = RegisterResponse::from_json(text.as_bytes()).map_err(SimError::local)?;
        self.registration = Some(answer);
        self.unmanaged = false;
        Ok(())
    }

    /// Sends a request (signed unless `unsigned`), returning status and body.
    pub async fn send(
        &self,
        step: &str,
        method: &str,
        path: &str,
        body: Vec<u8>,
        signed: bool,
    ) -> Result<(u16, String), SimError> {
        let headers = if signed {
            self.signature(method, path, &body, OffsetDateTime::now_utc(), None)?
        } else {
            Vec::new()
        };
        self.send_with(step, method, path, body, &headers).await
    }

    /// The signature headers of a request.
    pub fn signature(
        &self,
        method: &str,
        path: &str,
        body: &[u8],
        at: OffsetDateTime,
        nonce: Option<Nonce>,
    ) -> Result<Vec<(String, String)>, SimError> {
        let id = self.device_id().unwrap_or_else(Uuid::nil);
        let nonce = match nonce {
            Some(n) => n,
            None => Nonce::generate().map_err(SimError::local)?,
        };
        let parts = RequestParts { method, path, body };
        let headers = RequestSigner::new(&self.key, id)
            .sign(&parts, at, nonce)
            .map_err(SimError::local)?;
        let mut out: Vec<(String, String)> = headers
            .to_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        out.push((TENANT_HEADER.to_string(), self.tenant.clone()));
        Ok(out)
    }

    /// Sends with exactly these headers.
    pub async fn send_with(
        &self,
        step: &str,
        method: &str,
        path: &str,
        body: Vec<u8>,
        headers: &[(String, String)],
    ) -> Result<(u16, String), SimError> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(SimError::local)?;
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let res = req.send().await.map_err(|e| SimError::Transport {
            step: step.to_string(),
            detail: e.to_string(),
        })?;
        let status = res.status().as_u16();
        let text = res.text().await.unwrap_or_default();
        Ok((status, text))
    }

    /// The check-in body.
    pub fn checkin_body(&self) -> Result<Vec<u8>, SimError> {
        Checkin {
            management_mode: self.mode,
            os: self.facts().os,
            status: DeviceStatus {
                battery_percent: Some(80),
                charging: Some(false),
                storage_free_bytes: Some(10),
                storage_total_bytes: Some(64),
            },
            inventory: Some(Inventory {
                apps: Vec::new(),
                ca_certificates: self.user_cas.clone(),
            }),
            fcm_token: Some(self.fcm_token.clone()),
        }
        .to_json()
        .map_err(SimError::local)
    }

    /// Checks in.
    pub async fn checkin(&self) -> Result<CheckinResponse, SimError> {
        let path = Endpoint::Checkin.path(mdm_android::ApiVersion::V1);
        let (status, text) = self
            .send("checkin", "POST", &path, self.checkin_body()?, true)
            .await?;
        if status != 200 {
            return Err(http_error("checkin", status, &text));
        }
        CheckinResponse::from_json(text.as_bytes()).map_err(SimError::local)
    }

    /// Fetches commands and answers each one as the agent would; returns
    /// the types handled.
    pub async fn run_commands(&mut self) -> Result<Vec<String>, SimError> {
        let path = Endpoint::Commands.path(mdm_android::ApiVersion::V1);
        let (status, text) = self
            .send("commands", "GET", &path, Vec::new(), true)
            .await?;
        if status != 200 {
            return Err(http_error("commands", status, &text));
        }
        let fetched = CommandsResponse::from_json(text.as_bytes()).map_err(SimError::local)?;
        let mut done = Vec::new();
        for cmd in fetched.commands {
            let result = self.execute(&cmd);
            let path = Endpoint::CommandResult.path(mdm_android::ApiVersion::V1);
            let body = result.to_json().map_err(SimError::local)?;
            let (status, text) = self.send("result", "POST", &path, body, true).await?;
            if status != 200 {
                return Err(http_error("result", status, &text));
            }
            done.push(cmd.kind.name().to_string());
            self.handled.push(cmd.kind.name().to_string());
        }
        Ok(done)
    }

    fn execute(&mut self, cmd: &Command) -> CommandResult {
        match &cmd.kind {
            CommandKind::RemoveCaCertificates(selection) => {
                if !self.mode.is_company_owned() {
                    return CommandResult::error(cmd.id, "not a device or profile owner");
                }
                let removed: Vec<Fingerprint> = match selection {
                    CaSelection::AllUserInstalled { keep } => self
                        .user_cas
                        .iter()
                        .filter(|c| !keep.contains(&c.sha256))
                        .map(|c| c.sha256)
                        .collect(),
                    CaSelection::Fingerprints(list) => list.clone(),
                };
                self.user_cas.retain(|c| !removed.contains(&c.sha256));
                CommandResult::acknowledged(cmd.id).with_removed(removed)
            }
            CommandKind::Wipe(_) | CommandKind::Retire => {
                self.unmanaged = true;
                CommandResult::acknowledged(cmd.id)
            }
            CommandKind::Lock | CommandKind::Sync | CommandKind::Reboot => {
                CommandResult::acknowledged(cmd.id)
            }
            _ => CommandResult::error(cmd.id, "unsupported command"),
        }
    }

    /// Reports a reset of this device (before it happens).
    pub async fn report_reset(&self, cause: ResetCause) -> Result<(), SimError> {
        let body = EventsRequest {
            events: vec![DeviceEvent {
                id: Uuid::new_v4(),
                occurred_at: OffsetDateTime::now_utc().unix_timestamp(),
                event: EventKind::Reset {
                    cause,
                    previous_device_id: None,
                },
            }],
        }
        .to_json()
        .map_err(SimError::local)?;
        let path = Endpoint::Events.path(mdm_android::ApiVersion::V1);
        let (status, text) = self.send("events", "POST", &path, body, true).await?;
        if status != 204 {
            return Err(http_error("events", status, &text));
        }
        Ok(())
    }

    /// A factory reset: new ANDROID_ID, new agent key, registration gone.
    pub fn factory_reset(&mut self, new_key: RsaKey) {
        self.hardware.android_id = format!("{:016x}", Uuid::new_v4().as_u128() as u64);
        self.key = new_key;
        self.registration = None;
        self.unmanaged = false;
    }
}

fn http_error(step: &str, status: u16, body: &str) -> SimError {
    SimError::Http {
        step: step.to_string(),
        status,
        body: body.chars().take(300).collect(),
    }
}
