//! The Apple command channel (PUT ServerURL): a queue per enrollment. An
//! `Idle` gets the next command or an empty answer; a result is recorded once
//! by CommandUUID (late, duplicate and unknown results change nothing) and
//! answered with the next command. `NotNow` is not re-sent on the same poll
//! chain, retried on a later Idle, and given up after [`NOT_NOW_CAP`].
//!
//! An Idle poll is one store read; last-seen times are batched in memory and
//! written by [`Core::flush_last_seen`].

use crate::audit::AuditAction;
use crate::core::Core;
use crate::devices::{AppleEnrollment, DeviceStatus, device_audit};
use crate::error::CoreResult;
use crate::identity::{DeviceError, DeviceRequest, DeviceResult, ProvenCert, Refusal};
use crate::ids::{DeviceId, TenantId};
use crate::ports::EnrollmentChange;
use crate::tenants::Tenant;
use crate::tokens::Actor;
use mdm_apple::{CommandReport, CommandStatus, DeviceInfo, ParseErrorKind};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

text_enum!(
    /// Where a queued command is.
    CommandState {
        Queued = "queued",
        /// The device answered NotNow; retried on a later Idle.
        NotNow = "not_now",
        Acknowledged = "acknowledged",
        Error = "error",
        CommandFormatError = "command_format_error",
        /// Answered NotNow too often: given up.
        Expired = "expired",
        /// Dropped when the device re-enrolled.
        Cancelled = "cancelled",
    }
);

/// How many NotNow answers a command gets before it is given up.
pub const NOT_NOW_CAP: i64 = 10;

/// A command as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AppleCommand {
    pub command_uuid: String,
    pub tenant_id: TenantId,
    /// The channel it goes to (`UDID` or `UDID:UserID`).
    pub enrollment_id: String,
    pub device_id: DeviceId,
    pub request_type: String,
    /// The command plist sent to the device.
    #[serde(skip)]
    pub payload: Vec<u8>,
    pub state: CommandState,
    pub not_now_count: i64,
    /// The device status an Acknowledged result confirms (`wiped`).
    pub ack_device_status: Option<DeviceStatus>,
    /// Actor key of who queued it.
    pub queued_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub result_at: Option<OffsetDateTime>,
    /// `ErrorChain` of an Error or CommandFormatError, as JSON.
    #[schema(value_type = Object)]
    pub error_chain: serde_json::Value,
    /// The result keys of the last answer (e.g. `QueryResponses`), as JSON.
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
}

/// Filters and paging of a device's commands (newest first).
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CommandQuery {
    pub state: Option<CommandState>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<u32>,
    /// Cursor: the `next` of the previous page.
    pub after: Option<String>,
}

/// A command ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Queued {
    pub command_uuid: String,
    pub payload: Vec<u8>,
}

/// What one poll read found: the binding of the channel and its next command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Poll {
    /// The channel is served (TokenUpdate received, no CheckOut since).
    pub enabled: bool,
    /// The certificate bound to the device channel at Authenticate.
    pub bound_fingerprint: Option<String>,
    /// That certificate is revoked (or no longer recorded).
    pub cert_unusable: bool,
    /// When the polled channel was last written as seen.
    pub last_seen_at: Option<OffsetDateTime>,
    pub next: Option<Queued>,
}

/// A result to record.
#[derive(Clone, Debug)]
pub struct ResultRecord {
    pub tenant_id: TenantId,
    pub enrollment_id: String,
    pub device_channel: String,
    /// The proven certificate; nothing is written unless it is the bound one.
    pub fingerprint: String,
    pub command_uuid: String,
    pub state: CommandState,
    pub not_now_cap: i64,
    pub error_chain: serde_json::Value,
    pub result: serde_json::Value,
    pub at: OffsetDateTime,
}

/// What recording a result did.
#[derive(Clone, Debug, PartialEq)]
pub enum ResultOutcome {
    /// The identity did not check out; nothing was written.
    Refused(Option<Poll>),
    /// Recorded (`updated`: the command that changed, `None` for a duplicate,
    /// late or unknown result) and the next queued command.
    Recorded {
        updated: Option<Box<AppleCommand>>,
        next: Option<Queued>,
    },
}

/// What the command channel answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConnectReply {
    /// Nothing to do: an empty 200.
    Empty,
    /// A command plist.
    Command(Vec<u8>),
}

/// Where a command goes and what it means for the device record.
#[derive(Clone, Debug)]
pub struct CommandTarget {
    pub device: DeviceId,
    /// The user channel instead of the device channel (R14).
    pub user_channel: bool,
    /// A retire or wipe: the status it sets (retired at once, wiped on Acknowledged).
    pub lifecycle: Option<DeviceStatus>,
}

impl CommandTarget {
    /// The device channel of `device`.
    pub fn device(device: DeviceId) -> Self {
        Self {
            device,
            user_channel: false,
            lifecycle: None,
        }
    }
}

/// A typed command an administrator queues.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum NewCommand {
    DeviceInformation,
    ProfileList,
    /// `payload_base64`: the .mobileconfig (signed or not).
    InstallProfile {
        payload_base64: String,
        /// Send to the macOS user channel (user-level profiles, R14).
        #[serde(default)]
        user_channel: bool,
    },
    RemoveProfile {
        identifier: String,
        #[serde(default)]
        user_channel: bool,
    },
    DeviceLock {
        pin: Option<String>,
        message: Option<String>,
        phone_number: Option<String>,
    },
}

/// Verifies a proven certificate against what a poll read found.
pub(crate) fn check_binding<'p>(
    poll: Option<&'p Poll>,
    cert: &ProvenCert,
) -> Result<&'p Poll, Refusal> {
    let Some(poll) = poll else {
        return Err(Refusal::NotEnrolled(
            "no enrollment for this channel".into(),
        ));
    };
    match &poll.bound_fingerprint {
        Some(fp) if *fp == cert.fingerprint => {}
        Some(_) => {
            return Err(Refusal::Mismatch(
                "the certificate is not the one this enrollment authenticated with".into(),
            ));
        }
        None => return Err(Refusal::NotEnrolled("no identity bound".into())),
    }
    if poll.cert_unusable {
        return Err(Refusal::Identity("the certificate is revoked".into()));
    }
    if !poll.enabled {
        return Err(Refusal::NotEnrolled(
            "the enrollment is disabled (checked out or not yet live)".into(),
        ));
    }
    Ok(poll)
}

/// How old a channel's stored last-seen time may be before an Idle poll
/// writes it again: last seen is shown to the minute, and a fleet polling
/// every few seconds would otherwise rewrite every row on every flush.
pub(crate) const LAST_SEEN_RESOLUTION: time::Duration = time::Duration::seconds(60);

/// Whether a poll at `now` should be noted as seen, given the stored time.
pub(crate) fn seen_long_ago(stored: Option<OffsetDateTime>, now: OffsetDateTime) -> bool {
    stored.is_none_or(|at| now - at >= LAST_SEEN_RESOLUTION || at > now)
}

fn parse_refusal(kind: &ParseErrorKind) -> Refusal {
    match kind {
        ParseErrorKind::TooLarge { .. } => Refusal::TooLarge,
        other => Refusal::Malformed(other.to_string()),
    }
}

impl Core {
    /// PUT ServerURL: an Idle or a command result.
    pub async fn apple_connect(&self, req: &DeviceRequest) -> DeviceResult<ConnectReply> {
        let tenant = self.scep_tenant(&req.slug).await?;
        let report = CommandReport::parse(&req.body).map_err(|e| parse_refusal(&e.kind))?;
        let now = self.now();
        let cert = self.prove_identity(&req.identity, &req.body, now)?;
        let enrollment = report.enrollment.id.to_string();
        let device_channel = report.enrollment.id.device_channel().to_string();
        let next = match (report.status, report.command_uuid.clone()) {
            (CommandStatus::Idle, _) | (_, None) => {
                let poll = self
                    .store
                    .apple_poll(tenant.id, &enrollment, &device_channel, true)
                    .await?;
                let checked = check_binding(poll.as_ref(), &cert)?;
                if seen_long_ago(checked.last_seen_at, now) {
                    self.saw(tenant.id, enrollment, now);
                }
                poll.and_then(|p| p.next)
            }
            (status, Some(uuid)) => {
                let next = self
                    .record_result(&tenant, &report, status, uuid, &cert, &device_channel)
                    .await?;
                self.saw(tenant.id, enrollment, now);
                next
            }
        };
        Ok(match next {
            Some(q) => ConnectReply::Command(q.payload),
            None => ConnectReply::Empty,
        })
    }

    async fn record_result(
        &self,
        tenant: &Tenant,
        report: &CommandReport,
        status: CommandStatus,
        command_uuid: String,
        cert: &ProvenCert,
        device_channel: &str,
    ) -> DeviceResult<Option<Queued>> {
        let state = match status {
            CommandStatus::Acknowledged => CommandState::Acknowledged,
            CommandStatus::Error => CommandState::Error,
            CommandStatus::CommandFormatError => CommandState::CommandFormatError,
            CommandStatus::NotNow | CommandStatus::Idle => CommandState::NotNow,
        };
        let error_chain: Vec<serde_json::Value> = report
            .error_chain
            .iter()
            .map(|e| {
                serde_json::json!({
                    "code": e.code, "domain": e.domain,
                    "description": e.us_english_description.as_ref().or(e.localized_description.as_ref()),
                })
            })
            .collect();
        let result = serde_json::to_value(&report.payload).unwrap_or(serde_json::Value::Null);
        let record = ResultRecord {
            tenant_id: tenant.id,
            enrollment_id: report.enrollment.id.to_string(),
            device_channel: device_channel.to_string(),
            fingerprint: cert.fingerprint.clone(),
            command_uuid,
            state,
            not_now_cap: NOT_NOW_CAP,
            error_chain: serde_json::Value::Array(error_chain),
            result,
            at: self.now(),
        };
        match self.store.record_apple_result(&record).await? {
            ResultOutcome::Refused(poll) => {
                check_binding(poll.as_ref(), cert)?;
                Err(DeviceError::Refused(Refusal::Identity(
                    "the enrollment refused the result".into(),
                )))
            }
            ResultOutcome::Recorded { updated, next } => {
                if let Some(cmd) = updated
                    && cmd.state == CommandState::Acknowledged
                {
                    self.after_acknowledged(&cmd, report).await?;
                }
                Ok(next)
            }
        }
    }

    /// What an acknowledged command means for the device record: inventory
    /// from DeviceInformation, `wiped` from EraseDevice.
    async fn after_acknowledged(
        &self,
        cmd: &AppleCommand,
        report: &CommandReport,
    ) -> CoreResult<()> {
        // Most acknowledgements (ProfileList, InstallProfile …) change nothing
        // on the device record: no read for them.
        if cmd.request_type != "DeviceInformation" && cmd.ack_device_status.is_none() {
            return Ok(());
        }
        let Some(mut device) = self.store.device(cmd.tenant_id, cmd.device_id).await? else {
            return Ok(());
        };
        let now = self.now();
        let mut audit = Vec::new();
        if cmd.request_type == "DeviceInformation"
            && let Ok(info) = DeviceInfo::from_report(report)
        {
            apply_inventory(&mut device, &info);
            audit.push(
                device_audit(
                    &device,
                    now,
                    &Actor::Public,
                    AuditAction::DeviceInventoryUpdated,
                )
                .details(serde_json::json!({ "command_uuid": cmd.command_uuid })),
            );
        }
        let mut change = EnrollmentChange::default();
        if let Some(status) = cmd.ack_device_status
            && device.status != status
        {
            device.status = status;
            audit.push(
                device_audit(&device, now, &Actor::Public, AuditAction::DeviceWiped)
                    .details(serde_json::json!({ "command_uuid": cmd.command_uuid })),
            );
            // An erased device keeps no enrolment and sends no CheckOut: its
            // channels end here, and what was still queued for it with them.
            if let Some(channel) = self
                .store
                .apple_enrollment(cmd.tenant_id, &cmd.enrollment_id)
                .await?
                .filter(|e| e.enabled)
            {
                change.enrollment = Some(AppleEnrollment {
                    enabled: false,
                    updated_at: now,
                    ..channel
                });
            }
            change.disable_user_channels_of = Some((device.tenant_id, device.id));
            change.cancel_queue_of = Some((device.tenant_id, device.id));
        }
        if audit.is_empty() {
            return Ok(());
        }
        device.updated_at = now;
        change.device = Some((device, false));
        Ok(self.store.apply_enrollment_change(&change, &audit).await?)
    }
}

/// Fills the device record from DeviceInformation answers (absent answers keep the old value).
pub(crate) fn apply_inventory(device: &mut crate::devices::Device, info: &DeviceInfo) {
    let set = |field: &mut Option<String>, v: &Option<String>| {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            *field = Some(v.clone());
        }
    };
    set(&mut device.device_name, &info.device_name);
    set(&mut device.os_version, &info.os_version);
    set(&mut device.build_version, &info.build_version);
    set(&mut device.model_name, &info.model_name);
    set(&mut device.model, &info.model);
    set(&mut device.product_name, &info.product_name);
    set(&mut device.serial_number, &info.serial_number);
}
