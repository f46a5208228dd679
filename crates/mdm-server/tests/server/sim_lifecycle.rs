//! Apple enrolment end to end with the device simulator (`mdm-sim`): it
//! speaks only the wire protocols (signed profile, SCEP, check-in, command
//! channel) against the real `mdm serve`.

use crate::api::{Fixture, fixture};
use crate::client::expect;
use crate::ensure;
use crate::support::{Server, TestResult};
use mdm_sim::mdm_apple::CommandStatus;
use mdm_sim::{AdminApi, Device, DeviceFacts, DeviceState, Handled, Platform, SimError};
use serde_json::{Value, json};
use std::sync::Arc;

pub(crate) fn admin(s: &Server, f: &Fixture) -> AdminApi {
    AdminApi::new(&s.base, &f.slug, f.api.token.as_deref().unwrap_or_default())
}

/// A profile installed after its validity: the simulator gets a FAILURE
/// CertRep ("The SCEP server returned an invalid response", failInfo
/// badRequest), keeps nothing, and the audit trail names the registration
/// and why.
pub async fn late_profile_fails_at_scep(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let http = reqwest::Client::new();
    let late = admin(&s, &f)
        .issue_profile(&http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    let registration = late.registration.clone().ok_or("no X-Registration")?;
    crate::scep::expire_challenges(&s, &registration).await?;
    let mut phone = Device::new(DeviceFacts::iphone(1), http);
    let err = match phone.enroll(&late.signed).await {
        Ok(()) => return Err("a profile installed too late must be refused".into()),
        Err(e) => e,
    };
    ensure!(
        matches!(
            err,
            SimError::ScepFailure {
                fail_info: Some(mdm_scep::FailInfo::BadRequest)
            }
        ),
        "expected a FAILURE CertRep with badRequest, got {err:?}"
    );
    ensure!(
        err.to_string()
            .starts_with("The SCEP server returned an invalid response"),
        "message: {err}"
    );
    ensure!(
        phone.state() == DeviceState::Fresh && phone.identity_cert_der().is_none(),
        "nothing kept"
    );
    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=scep.refused",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    let entry = audit["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|e| e["details"]["registration"] == registration.as_str())
        })
        .ok_or(format!("no refusal names {registration}: {audit}"))?;
    ensure!(
        entry["details"]["reason"] == "profile_expired",
        "reason: {entry}"
    );
    let reg = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/registrations/{registration}",
                f.slug
            ))
            .await?,
        200,
        "registration",
    )?;
    ensure!(
        reg["reason"] == "profile_expired"
            && reg["status"] != "active"
            && reg["device_id"].is_null(),
        "the registration shows why: {reg}"
    );
    Ok(())
}

/// The tenant's device record for `udid`, from the admin API.
pub(crate) async fn device_record(f: &Fixture, udid: &str) -> Result<Value, String> {
    let page = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/devices?limit=1000", f.slug))
            .await?,
        200,
        "devices",
    )?;
    let found = page["items"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["udid"] == udid))
        .ok_or(format!("no device {udid} in {page}"))?;
    let id = found["id"].as_str().ok_or("device id")?;
    expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/devices/{id}", f.slug))
            .await?,
        200,
        "device",
    )
}

/// The audit actions recorded for one device, oldest first.
pub(crate) async fn device_audit(f: &Fixture, device_id: &str) -> Result<Vec<String>, String> {
    let page = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?device_id={device_id}&limit=1000",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    let mut actions: Vec<String> = page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["action"].as_str().map(str::to_owned))
        .collect();
    actions.reverse();
    Ok(actions)
}

/// Waits until the local APNs has received a push for `token` (at most 10 s).
pub(crate) async fn pushed(s: &Server, token: &[u8], before: usize) -> Result<(), String> {
    let apns = s.apns.as_ref().ok_or("this server has no fake APNs")?;
    let hex = hex::encode(token);
    for _ in 0..200 {
        if apns.received_for(&hex).len() > before {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(format!("no push for {hex} reached APNs"))
}

pub(crate) fn pushes(s: &Server, token: &[u8]) -> usize {
    s.apns
        .as_ref()
        .map_or(0, |a| a.received_for(&hex::encode(token)).len())
}

pub(crate) fn answered(handled: &[Handled], request_type: &str) -> bool {
    handled
        .iter()
        .any(|h| h.request_type == request_type && h.status == CommandStatus::Acknowledged)
}

/// A simulated iPhone and Mac from a fresh registration to Active, their
/// DeviceInformation stored, then the iPhone retired and the Mac wiped, each
/// woken by a push the local APNs received: statuses and audit as expected.
pub async fn iphone_and_mac_enrol_then_retire_and_wipe(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let api = admin(&s, &f);
    let http = reqwest::Client::new();
    let mut phone = Device::new(DeviceFacts::iphone(11), http.clone());
    let mut mac = Device::new(DeviceFacts::mac(12), http.clone());
    for (device, platform) in [(&mut phone, Platform::Iphone), (&mut mac, Platform::Mac)] {
        // Registered for a user; on the Mac that user is the one logged in.
        let short = device
            .facts
            .user
            .as_ref()
            .map_or("phone-owner", |u| u.short_name.as_str());
        let user = expect(
            f.api
                .post(
                    &format!("/api/v1/tenants/{}/users", f.slug),
                    json!({ "email": format!("{short}@example.com") }),
                )
                .await?,
            201,
            "user",
        )?;
        let p = api
            .issue_profile(&http, platform, user["id"].as_str())
            .await
            .map_err(|e| e.to_string())?;
        device
            .enroll(&p.signed)
            .await
            .map_err(|e| format!("{platform:?}: {e}"))?;
        ensure!(
            device.state() == DeviceState::Enrolled,
            "{platform:?} enrolled"
        );
    }
    ensure!(
        mac.user_push_token().is_some(),
        "the Mac has a user channel"
    );
    ensure!(phone.user_push_token().is_none(), "the iPhone has none");

    for device in [&mut phone, &mut mac] {
        let record = device_record(&f, device.udid()).await?;
        ensure!(
            record["status"] == "active",
            "active after TokenUpdate: {record}"
        );
        let handled = device.wake().await.map_err(|e| e.to_string())?;
        ensure!(
            answered(&handled, "DeviceInformation"),
            "DeviceInformation queued after TokenUpdate: {handled:?}"
        );
        let record = device_record(&f, device.udid()).await?;
        let facts = &device.facts;
        for (key, want) in [
            ("serial_number", &facts.serial_number),
            ("os_version", &facts.os_version),
            ("model", &facts.model),
            ("product_name", &facts.product_name),
            ("device_name", &facts.device_name),
        ] {
            ensure!(
                record[key] == want.as_str(),
                "{key} {want} stored: {record}"
            );
        }
    }
    let mac_record = device_record(&f, mac.udid()).await?;
    let channels = mac_record["enrollments"].as_array().map_or(0, Vec::len);
    ensure!(
        channels == 2,
        "the Mac's device and user channels: {mac_record}"
    );

    // Retire the iPhone: RemoveProfile of the enrollment profile, pushed; the device checks out.
    let phone_id = device_record(&f, phone.udid()).await?["id"]
        .as_str()
        .ok_or("id")?
        .to_owned();
    let token = phone.push_token().ok_or("token")?.to_vec();
    let before = pushes(&s, &token);
    expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{phone_id}/retire", f.slug),
                json!({}),
            )
            .await?,
        202,
        "retire",
    )?;
    pushed(&s, &token, before).await?;
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "RemoveProfile"),
        "RemoveProfile answered: {handled:?}"
    );
    ensure!(
        phone.state() == DeviceState::Unenrolled,
        "the iPhone is no longer managed"
    );
    let record = device_record(&f, phone.udid()).await?;
    ensure!(record["status"] == "retired", "retired: {record}");

    // Wipe the Mac: EraseDevice, pushed; acknowledged, then the Mac forgets its enrolment.
    let mac_id = mac_record["id"].as_str().ok_or("id")?.to_owned();
    let token = mac.push_token().ok_or("token")?.to_vec();
    let before = pushes(&s, &token);
    expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{mac_id}/wipe", f.slug),
                json!({ "pin": "123456" }),
            )
            .await?,
        202,
        "wipe",
    )?;
    pushed(&s, &token, before).await?;
    // Queued behind the erase: it never runs.
    let late = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{mac_id}/commands", f.slug),
                json!({ "type": "ProfileList" }),
            )
            .await?,
        201,
        "a command after the wipe",
    )?;
    let late_uuid = late["command_uuid"]
        .as_str()
        .ok_or("command_uuid")?
        .to_owned();
    let handled = mac.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "EraseDevice"),
        "EraseDevice answered: {handled:?}"
    );
    ensure!(
        mac.state() == DeviceState::Wiped && mac.push_token().is_none(),
        "the Mac is erased"
    );
    let record = device_record(&f, mac.udid()).await?;
    ensure!(record["status"] == "wiped", "wiped: {record}");
    // An erased Mac sends no CheckOut: the acknowledgement ends its device
    // and user channels and cancels what was still queued.
    let detail = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/devices/{mac_id}", f.slug))
            .await?,
        200,
        "the wiped Mac",
    )?;
    let channels = detail["enrollments"].as_array().ok_or("enrollments")?;
    ensure!(
        channels.len() == 2 && channels.iter().all(|e| e["enabled"] == false),
        "every channel of the wiped Mac disabled: {channels:?}"
    );

    // The command history and the audit trail tell the story.
    let commands = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/devices/{mac_id}/commands",
                f.slug
            ))
            .await?,
        200,
        "commands",
    )?;
    ensure!(
        commands["items"].as_array().is_some_and(|a| a.len() >= 2),
        "DeviceInformation and EraseDevice in the history: {commands}"
    );
    let late_state = commands["items"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["command_uuid"] == late_uuid.as_str()))
        .map(|c| c["state"].clone());
    ensure!(
        late_state == Some(json!("cancelled")),
        "the command queued behind the erase is cancelled: {late_state:?}"
    );
    let phone_audit = device_audit(&f, &phone_id).await?;
    let mac_audit = device_audit(&f, &mac_id).await?;
    for (who, audit, wanted) in [
        (
            "iPhone",
            &phone_audit,
            &[
                "device.authenticated",
                "device.enrolled",
                "device.inventory_updated",
                "device.retired",
                "device.checked_out",
            ][..],
        ),
        (
            "Mac",
            &mac_audit,
            &[
                "device.authenticated",
                "device.enrolled",
                "device.user_channel_enrolled",
                "device.inventory_updated",
                "device.wipe_requested",
                "device.wiped",
            ][..],
        ),
    ] {
        for action in wanted {
            ensure!(
                audit.iter().any(|a| a == action),
                "{who}: {action} audited: {audit:?}"
            );
        }
    }
    Ok(())
}
