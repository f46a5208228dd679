//! The command channel: a session of `Idle` and results until the server
//! has nothing more, answering each command like a device (NotNow, duplicate
//! results and silence when the test behaviour says so).

use mdm_apple::plist::Dictionary;
use mdm_apple::{COMMAND_CONTENT_TYPE, Command, CommandRequest, CommandStatus};

use crate::commands::{Effect, ProfileStore, Reply, answer};
use crate::device::{Channel, Device, DeviceState, Handled};
use crate::error::SimError;
use crate::facts::DeviceFacts;
use crate::wire::Prepared;

impl Device {
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
            let (uuid, request_type, mut reply) = self.decide(&body, channel);
            if reply.effect == Effect::EnrollmentProfile {
                // Install first: the report goes out with the new identity.
                reply = match self.renew_from_command(&body).await {
                    Ok(()) => Reply::acknowledged(),
                    Err(e) => {
                        self.step(&format!("re-sent enrollment profile refused: {e}"));
                        Reply::error("MCProfileErrorDomain", 1004, &e.to_string())
                    }
                };
            }
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
                Effect::None | Effect::EnrollmentProfile => {}
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
    pub(crate) fn decide(&mut self, body: &[u8], channel: Channel) -> (String, String, Reply) {
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

    pub(crate) fn report(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::xml;
    use mdm_apple::CommandRequest;
    use mdm_apple::plist::Value;

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
