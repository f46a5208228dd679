//! The agent's signed requests (everything after registration): the device
//! signs method, path, time, nonce and body hash with its own key
//! (`mdm_android::verify_request`); the server checks it against the key
//! stored at registration, refuses a nonce it has seen (the nonce is written
//! in the same transaction as the request's effect), then records check-ins,
//! hands out commands, records results and device events. Every refusal is
//! an [`AgentRefusal`] and changes nothing.

use crate::android::{
    AndroidChange, AndroidCommandState, AndroidDevice, NonceUse, ResultUpdate, Seen, StatusChange,
};
use crate::audit::{AuditAction, AuditEntry};
use crate::core::Core;
use crate::devices::{DeviceStatus, device_audit};
use crate::error::{CoreError, CoreResult, StoreError};
use crate::ids::DeviceId;
use crate::registration::Refusal;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_android::{
    Checkin, CheckinResponse, Command, CommandResult, CommandsResponse, EventKind, EventsRequest,
    MAX_COMMANDS_PER_FETCH, Message, MessageError, RequestParts, ResultStatus, SignatureHeaders,
    SigningError, verify_request,
};

/// Why an agent request was refused. The HTTP edge picks the status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AgentRefusal {
    /// The body is not the JSON the endpoint takes (or fails validation).
    Malformed(String),
    TooLarge,
    /// The organisation named by the request does not exist.
    UnknownTenant,
    /// No such device in the tenant (also: deleted, or another tenant's).
    UnknownDevice,
    /// Missing or malformed signature headers, a stale or future timestamp,
    /// or a signature that does not verify with the device's key.
    Signature(String),
    /// The nonce was used before.
    Replayed,
    /// The entry no longer takes requests (retired or wiped and carried out,
    /// or replaced by a newer registration of the device).
    Disabled,
    /// The user's credentials were refused.
    SignIn(Refusal),
    /// The enrollment token is unknown.
    TokenInvalid,
    TokenExpired,
    TokenUsed,
    /// The enrollment token was made for another management mode.
    TokenMode {
        expected: String,
    },
    /// QR / token registration needs Android 9 (R9).
    TokenUnsupportedOs,
    /// This `attempt_id` already registered.
    AttemptUsed,
}

impl AgentRefusal {
    /// A stable code for the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed_request",
            Self::TooLarge => "too_large",
            Self::UnknownTenant => "unknown_tenant",
            Self::UnknownDevice => "unknown_device",
            Self::Signature(_) => "bad_signature",
            Self::Replayed => "replayed_request",
            Self::Disabled => "device_disabled",
            Self::SignIn(r) => r.code(),
            Self::TokenInvalid => "enrollment_token_invalid",
            Self::TokenExpired => "enrollment_token_expired",
            Self::TokenUsed => "enrollment_token_used",
            Self::TokenMode { .. } => "enrollment_token_mode",
            Self::TokenUnsupportedOs => "qr_unsupported_os",
            Self::AttemptUsed => "attempt_used",
        }
    }

    /// What to tell the agent (never a value from the request).
    pub fn message(&self) -> String {
        match self {
            Self::Malformed(m) | Self::Signature(m) => m.clone(),
            Self::TooLarge => "the request body is too large".into(),
            Self::UnknownTenant => "unknown organisation".into(),
            Self::UnknownDevice => "unknown device".into(),
            Self::Replayed => "this request was already received (nonce reused)".into(),
            Self::Disabled => "this device is no longer managed; register it again".into(),
            Self::SignIn(_) => "sign-in refused".into(),
            Self::TokenInvalid => "unknown enrollment token".into(),
            Self::TokenExpired => "the enrollment token has expired".into(),
            Self::TokenUsed => "the enrollment token was already used".into(),
            Self::TokenMode { expected } => {
                format!("the enrollment token is for a {expected} device")
            }
            Self::TokenUnsupportedOs => {
                "registration by QR code or token needs Android 9 or later".into()
            }
            Self::AttemptUsed => "this registration attempt was already used".into(),
        }
    }
}

impl From<MessageError> for AgentRefusal {
    fn from(e: MessageError) -> Self {
        match e {
            MessageError::TooLarge { .. } => Self::TooLarge,
            other => Self::Malformed(other.to_string()),
        }
    }
}

/// A signed agent request as the edge received it.
#[derive(Debug)]
pub struct AgentCall<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The `X-MDM-Tenant` header.
    pub tenant: Option<&'a str>,
    pub signature: Result<SignatureHeaders, SigningError>,
    pub body: &'a [u8],
}

/// A request whose signature verified.
pub struct Authenticated {
    pub tenant: Tenant,
    pub android: AndroidDevice,
    pub nonce: NonceUse,
}

/// `Ok(Err(_))` refuses the agent; `Err(_)` is a server failure.
pub type AgentResult<T> = CoreResult<Result<T, AgentRefusal>>;

macro_rules! refuse {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return Ok(Err(r)),
        }
    };
}
pub(crate) use refuse;

impl Core {
    /// Checks tenant, device, signature and freshness of a signed call.
    pub async fn android_authenticate(&self, call: &AgentCall<'_>) -> AgentResult<Authenticated> {
        let Some(slug) = call.tenant else {
            return Ok(Err(AgentRefusal::Signature(format!(
                "missing header {}",
                mdm_android::TENANT_HEADER
            ))));
        };
        let headers = match &call.signature {
            Ok(h) => h,
            Err(e) => return Ok(Err(AgentRefusal::Signature(e.to_string()))),
        };
        let tenant = match self.scep_tenant(slug).await {
            Ok(t) => t,
            Err(CoreError::NotFound(_)) => return Ok(Err(AgentRefusal::UnknownDevice)),
            Err(e) => return Err(e),
        };
        let id = DeviceId(headers.device_id);
        let Some(android) = self.store.android_device(tenant.id, id).await? else {
            return Ok(Err(AgentRefusal::UnknownDevice));
        };
        let parts = RequestParts {
            method: call.method,
            path: call.path,
            body: call.body,
        };
        let now = self.now();
        let verified = match verify_request(
            &android.public_key,
            &parts,
            headers,
            now,
            self.android.max_skew,
        ) {
            Ok(v) => v,
            Err(e) => {
                if matches!(e, SigningError::BadSignature) {
                    self.audit_agent_refusal(&tenant, &android, "bad_signature", call.path)
                        .await?;
                }
                return Ok(Err(AgentRefusal::Signature(e.to_string())));
            }
        };
        if !android.enabled {
            return Ok(Err(AgentRefusal::Disabled));
        }
        Ok(Ok(Authenticated {
            tenant,
            android,
            nonce: NonceUse {
                nonce: verified.nonce.as_str().to_owned(),
                expires_at: verified.remember_nonce_until,
                now,
            },
        }))
    }

    async fn audit_agent_refusal(
        &self,
        tenant: &Tenant,
        android: &AndroidDevice,
        reason: &str,
        path: &str,
    ) -> CoreResult<()> {
        let entry = AuditEntry::new(
            Some(tenant.id),
            self.now(),
            &Actor::Public,
            AuditAction::AgentRequestRefused,
            ("device", android.device_id.to_string()),
        )
        .device(android.device_id)
        .details(serde_json::json!({ "reason": reason, "path": path }));
        Ok(self.store.append_audit(&entry).await?)
    }

    /// Applies `change`; a reused nonce is a refusal.
    async fn agent_write(
        &self,
        change: &AndroidChange,
        audit: &[AuditEntry],
    ) -> AgentResult<crate::android::AndroidChangeOutcome> {
        match self.store.apply_android_change(change, audit).await {
            Ok(o) => Ok(Ok(o)),
            Err(StoreError::Conflict("android_nonce_replayed")) => Ok(Err(AgentRefusal::Replayed)),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST /android/v1/checkin`: status, inventory, CA certificates, FCM token.
    pub async fn android_checkin(&self, call: &AgentCall<'_>) -> AgentResult<CheckinResponse> {
        let auth = refuse!(self.android_authenticate(call).await?);
        let checkin = refuse!(Checkin::from_json(call.body).map_err(AgentRefusal::from));
        let mut change = AndroidChange::new(auth.tenant.id, auth.android.device_id);
        let stored = serde_json::json!({
            "status": checkin.status,
            "inventory": checkin.inventory,
            "security_patch": checkin.os.security_patch,
        });
        change.seen = Some(Seen {
            at: auth.nonce.now,
            os_version: checkin.os.version.clone(),
            api_level: checkin.os.api_level,
            management_mode: checkin.management_mode,
            checkin: stored,
            fcm_token: checkin.fcm_token.clone(),
        });
        change.nonce = Some(auth.nonce);
        let outcome = refuse!(self.agent_write(&change, &[]).await?);
        Ok(Ok(CheckinResponse {
            checkin_interval_secs: self.android.checkin_interval_secs,
            commands_pending: outcome.pending,
        }))
    }

    /// `GET /android/v1/commands`: the queued commands, marked sent.
    pub async fn android_commands_fetch(
        &self,
        call: &AgentCall<'_>,
    ) -> AgentResult<CommandsResponse> {
        let auth = refuse!(self.android_authenticate(call).await?);
        let mut change = AndroidChange::new(auth.tenant.id, auth.android.device_id);
        change.nonce = Some(auth.nonce);
        change.fetch = Some(i64::try_from(MAX_COMMANDS_PER_FETCH).unwrap_or(100));
        let outcome = refuse!(self.agent_write(&change, &[]).await?);
        let mut commands = Vec::with_capacity(outcome.fetched.len());
        for c in outcome.fetched {
            match serde_json::from_value::<Command>(c.payload) {
                Ok(cmd) => commands.push(cmd),
                Err(e) => tracing::warn!(command = %c.id, error = %e, "stored command unreadable"),
            }
        }
        Ok(Ok(CommandsResponse { commands }))
    }

    /// `POST /android/v1/commands/result`. Returns whether it was recorded
    /// (a duplicate or unknown command is answered, not recorded).
    pub async fn android_command_result(&self, call: &AgentCall<'_>) -> AgentResult<bool> {
        let auth = refuse!(self.android_authenticate(call).await?);
        let result = refuse!(CommandResult::from_json(call.body).map_err(AgentRefusal::from));
        let tenant = auth.tenant.id;
        let device_id = auth.android.device_id;
        let mut change = AndroidChange::new(tenant, device_id);
        change.nonce = Some(auth.nonce.clone());
        let id = result.id.to_string();
        let command = self
            .store
            .android_command(tenant, &id)
            .await?
            .filter(|c| c.device_id == device_id && !c.state.is_final());
        let Some(command) = command else {
            // Unknown, another device's, or already final: only the nonce is kept.
            refuse!(self.agent_write(&change, &[]).await?);
            return Ok(Ok(false));
        };
        let now = auth.nonce.now;
        let state = match result.status {
            ResultStatus::Acknowledged => AndroidCommandState::Acknowledged,
            ResultStatus::Error => AndroidCommandState::Error,
            ResultStatus::NotNow => AndroidCommandState::NotNow,
        };
        let removed: Vec<String> = result
            .removed_ca_certificates
            .iter()
            .map(|f| f.to_string())
            .collect();
        change.result = Some(ResultUpdate {
            id: id.clone(),
            state,
            result: serde_json::json!({
                "status": result.status,
                "message": result.message,
                "removed_ca_certificates": removed,
            }),
            at: now,
        });
        let device = self
            .store
            .device(tenant, device_id)
            .await?
            .ok_or(CoreError::NotFound("device"))?;
        let mut audit = Vec::new();
        let detail = serde_json::json!({
            "command": id, "kind": command.kind, "status": result.status,
            "message": result.message,
        });
        if state == AndroidCommandState::Acknowledged {
            match command.kind.as_str() {
                "wipe" => {
                    change.status = Some(StatusChange {
                        status: command.ack_device_status.unwrap_or(DeviceStatus::Wiped),
                        current: false,
                        enabled: false,
                        at: now,
                    });
                    audit.push(
                        device_audit(&device, now, &Actor::Public, AuditAction::DeviceWiped)
                            .details(detail.clone()),
                    );
                }
                "retire" => {
                    change.status = Some(StatusChange {
                        status: DeviceStatus::Retired,
                        current: false,
                        enabled: false,
                        at: now,
                    });
                    audit.push(
                        device_audit(&device, now, &Actor::Public, AuditAction::DeviceRetired)
                            .details(detail.clone()),
                    );
                }
                _ => {}
            }
        }
        if command.kind == "remove_ca_certificates" && state != AndroidCommandState::NotNow {
            audit.push(
                device_audit(
                    &device,
                    now,
                    &Actor::Public,
                    AuditAction::DeviceCaCertificatesRemoved,
                )
                .details(serde_json::json!({
                    "command": id, "status": result.status, "fingerprints": removed,
                })),
            );
        }
        let outcome = refuse!(self.agent_write(&change, &audit).await?);
        Ok(Ok(outcome.result_recorded))
    }

    /// `POST /android/v1/events`: a device-reported reset makes the entry
    /// `reset` (shown active until the next registration, R18).
    pub async fn android_events(&self, call: &AgentCall<'_>) -> AgentResult<()> {
        let auth = refuse!(self.android_authenticate(call).await?);
        let events = refuse!(EventsRequest::from_json(call.body).map_err(AgentRefusal::from));
        let tenant = auth.tenant.id;
        let device_id = auth.android.device_id;
        let device = self
            .store
            .device(tenant, device_id)
            .await?
            .ok_or(CoreError::NotFound("device"))?;
        let now = auth.nonce.now;
        let mut change = AndroidChange::new(tenant, device_id);
        change.nonce = Some(auth.nonce);
        let mut audit = Vec::new();
        for event in &events.events {
            let EventKind::Reset {
                cause,
                previous_device_id,
            } = event.event
            else {
                continue;
            };
            let about_self = previous_device_id.is_none_or(|p| p == device_id.0);
            let open = matches!(
                device.status,
                DeviceStatus::Active | DeviceStatus::Pending | DeviceStatus::Reset
            );
            if about_self && open && change.status.is_none() {
                change.status = Some(StatusChange {
                    status: DeviceStatus::Reset,
                    current: true,
                    enabled: false,
                    at: now,
                });
                audit.push(
                    device_audit(&device, now, &Actor::Public, AuditAction::DeviceReset).details(
                        serde_json::json!({
                            "event": event.id, "cause": cause, "occurred_at": event.occurred_at,
                            "previous_status": device.status,
                        }),
                    ),
                );
            }
        }
        refuse!(self.agent_write(&change, &audit).await?);
        Ok(Ok(()))
    }
}
