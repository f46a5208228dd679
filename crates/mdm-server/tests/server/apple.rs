//! Apple enrollment against the real server: a device enrols (profile →
//! SCEP → Authenticate → TokenUpdate), answers DeviceInformation, takes
//! commands with every status, and is retired, wiped or checks out.

use crate::api::fixture;
use crate::apple_device::{Dev, device, device_id, dict, enrolled, profile, text};
use crate::client::{count, expect};
use crate::ensure;
use crate::support::{Server, TestResult};
use mdm_apple::plist::{Dictionary, Value};
use serde_json::{Value as Json, json};
use std::sync::Arc;

async fn registration(f: &crate::api::Fixture, id: &str) -> Result<Json, String> {
    expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/registrations/{id}", f.slug))
            .await?,
        200,
        "registration",
    )
}

pub(crate) async fn commands(f: &crate::api::Fixture, device: &str) -> Result<Vec<Json>, String> {
    let page = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/devices/{device}/commands",
                f.slug
            ))
            .await?,
        200,
        "commands",
    )?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

async fn queue(f: &crate::api::Fixture, device: &str, body: Json) -> Result<String, String> {
    let c = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{device}/commands", f.slug),
                body,
            )
            .await?,
        201,
        "queue command",
    )?;
    Ok(c["command_uuid"].as_str().unwrap_or_default().to_string())
}

pub async fn audit_actions(f: &crate::api::Fixture, prefix: &str) -> Result<Vec<String>, String> {
    let filter = if prefix.is_empty() {
        String::new()
    } else {
        format!("action={prefix}&")
    };
    let a = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?{filter}limit=1000",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    Ok(a["items"]
        .as_array()
        .map(|v| {
            v.iter()
                .filter_map(|e| e["action"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

fn uuid_of(c: &Option<mdm_apple::Command>) -> Result<(String, String), String> {
    let c = c.as_ref().ok_or("expected a command")?;
    Ok((c.command_uuid.clone(), c.request.request_type().to_string()))
}

pub async fn apple_device_enrols_and_takes_commands(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let p = profile(&s, &f, "ios", None).await?;
    ensure!(
        registration(&f, &p.registration).await?["status"] == "profile_downloaded",
        "fresh profile"
    );
    let udid = "00008030-TEST-4000-8000-0000000000A1";
    let dev = Dev::enrol(&s, &f, &p, udid).await?;
    let reg = registration(&f, &p.registration).await?;
    ensure!(
        reg["status"] == "certificate_issued" && !reg["certificate_issued_at"].is_null(),
        "after SCEP: {reg}"
    );

    // Authenticate is provisional: a pending device, not yet served commands.
    ensure!(dev.authenticate().await? == 200, "Authenticate");
    let id = device_id(&f, udid).await?;
    let d = device(&f, &id).await?;
    ensure!(
        d["status"] == "pending" && d["serial_number"] == "C02TEST",
        "after Authenticate: {d}"
    );
    ensure!(
        registration(&f, &p.registration).await?["status"] == "checked_in",
        "checked in"
    );
    ensure!(dev.idle().await?.0 == 404, "no commands before TokenUpdate");

    // The first TokenUpdate makes it active and queues DeviceInformation.
    ensure!(dev.token_update().await? == 200, "TokenUpdate");
    let d = device(&f, &id).await?;
    ensure!(
        d["status"] == "active" && !d["enrolled_at"].is_null(),
        "after TokenUpdate: {d}"
    );
    ensure!(
        d["enrollments"][0]["enabled"] == true && d["enrollments"][0]["token"].is_null(),
        "channel: {d}"
    );
    let reg = registration(&f, &p.registration).await?;
    ensure!(
        reg["status"] == "active" && reg["device_id"] == id.as_str(),
        "registration: {reg}"
    );
    let (code, cmd) = dev.idle().await?;
    let (info_uuid, kind) = uuid_of(&cmd)?;
    ensure!(
        code == 200 && kind == "DeviceInformation",
        "first command {kind}"
    );
    let answers = dict(&[(
        "QueryResponses",
        Value::Dictionary(dict(&[
            ("DeviceName", text("Test iPhone")),
            ("OSVersion", text("17.4")),
            ("Model", text("MQ8L2LL/A")),
            ("SerialNumber", text("F2LTEST123")),
        ])),
    )]);
    let (code, next) = dev
        .report("Acknowledged", Some(&info_uuid), answers)
        .await?;
    ensure!(
        code == 200 && next.is_none(),
        "after DeviceInformation: {code}"
    );
    let d = device(&f, &id).await?;
    ensure!(
        d["device_name"] == "Test iPhone"
            && d["os_version"] == "17.4"
            && d["serial_number"] == "F2LTEST123"
            && d["model"] == "MQ8L2LL/A",
        "inventory: {d}"
    );

    // Queued commands, NotNow (not re-sent on the same chain, back on a later Idle), Error, duplicates.
    let list = queue(&f, &id, json!({ "type": "ProfileList" })).await?;
    let lock = queue(&f, &id, json!({ "type": "DeviceLock", "message": "Lost" })).await?;
    let (_, cmd) = dev.idle().await?;
    ensure!(uuid_of(&cmd)?.0 == list, "ProfileList first");
    let (code, next) = dev.report("NotNow", Some(&list), Dictionary::new()).await?;
    ensure!(
        code == 200 && uuid_of(&next)?.0 == lock,
        "NotNow answered with the next command"
    );
    let next = dev.ack(&lock).await?;
    ensure!(
        next.is_none(),
        "the NotNow command is not re-sent on this chain"
    );
    ensure!(
        dev.ack(&lock).await?.is_none(),
        "a duplicate result is harmless"
    );
    ensure!(
        dev.ack("5B1F0000-UNKNOWN").await?.is_none(),
        "an unknown CommandUUID is harmless"
    );
    let (_, cmd) = dev.idle().await?;
    ensure!(uuid_of(&cmd)?.0 == list, "NotNow retried on a later Idle");
    for _ in 1..10 {
        let (code, _) = dev.report("NotNow", Some(&list), Dictionary::new()).await?;
        ensure!(code == 200, "NotNow");
        dev.idle().await?;
    }
    let cmds = commands(&f, &id).await?;
    let state = |uuid: &str| {
        cmds.iter()
            .find(|c| c["command_uuid"] == uuid)
            .map(|c| c["state"].clone())
    };
    ensure!(
        state(&list) == Some(json!("expired")),
        "NotNow capped: {cmds:?}"
    );
    ensure!(
        state(&lock) == Some(json!("acknowledged")),
        "lock acknowledged"
    );
    ensure!(
        state(&info_uuid) == Some(json!("acknowledged")),
        "info acknowledged"
    );
    let remove = queue(
        &f,
        &id,
        json!({ "type": "RemoveProfile", "identifier": "com.example.wifi" }),
    )
    .await?;
    let (_, cmd) = dev.idle().await?;
    ensure!(uuid_of(&cmd)?.0 == remove, "RemoveProfile");
    let chain = Value::Array(vec![Value::Dictionary(dict(&[
        ("ErrorCode", Value::Integer(1001.into())),
        ("ErrorDomain", text("MCProfileErrorDomain")),
        (
            "USEnglishDescription",
            text("The profile is not installed."),
        ),
    ]))]);
    let (code, _) = dev
        .report("Error", Some(&remove), dict(&[("ErrorChain", chain)]))
        .await?;
    ensure!(code == 200, "Error result");
    let cmds = commands(&f, &id).await?;
    let errored = cmds
        .iter()
        .find(|c| c["command_uuid"] == remove.as_str())
        .ok_or("remove")?;
    ensure!(
        errored["state"] == "error" && errored["error_chain"][0]["code"] == 1001,
        "error: {errored}"
    );

    // Queuing asked for a push: the shared servers send it to the local APNs.
    let mut pushed = Json::Null;
    for _ in 0..40 {
        pushed = device(&f, &id).await?["enrollments"][0]["last_push_outcome"].clone();
        if pushed == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    ensure!(pushed == "sent", "push job: {pushed}");

    // Retire: RemoveProfile of the enrollment profile, status retired; then CheckOut.
    let r = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{id}/retire", f.slug),
                json!({}),
            )
            .await?,
        202,
        "retire",
    )?;
    ensure!(
        device(&f, &id).await?["status"] == "retired",
        "retired at once"
    );
    let (_, cmd) = dev.idle().await?;
    let cmd = cmd.ok_or("retire command")?;
    ensure!(
        cmd.command_uuid == r["command_uuid"].as_str().unwrap_or_default()
            && cmd.request
                == mdm_apple::CommandRequest::RemoveProfile {
                    identifier: format!("mdm.{}.enrollment", f.slug)
                },
        "retire removes the enrollment profile: {cmd:?}"
    );
    dev.ack(&cmd.command_uuid).await?;
    ensure!(
        dev.checkin(
            "CheckOut",
            dict(&[("Topic", text(crate::apple_device::TOPIC))])
        )
        .await?
            == 200,
        "CheckOut"
    );
    let d = device(&f, &id).await?;
    ensure!(
        d["status"] == "retired" && d["enrollments"][0]["enabled"] == false,
        "after CheckOut: {d}"
    );
    ensure!(
        dev.idle().await?.0 == 404,
        "a checked-out channel gets no commands"
    );
    let enrolled_entry = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=device.enrolled",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    let e = &enrolled_entry["items"][0];
    ensure!(
        e["actor"] == format!("device:{id}")
            && e["device_id"] == id.as_str()
            && e["actor_label"] == format!("device {udid}"),
        "the device is the actor: {e}"
    );
    let trail = audit_actions(&f, "device.").await?;
    for a in [
        "device.authenticated",
        "device.enrolled",
        "device.inventory_updated",
        "device.command_queued",
        "device.lock_requested",
        "device.retired",
        "device.checked_out",
    ] {
        ensure!(trail.iter().any(|t| t == a), "audit lacks {a}: {trail:?}");
    }
    Ok(())
}

pub async fn apple_wipe_and_checkout(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let (mac, mac_id) = enrolled(&s, &f, "macos", None).await?;
    let (phone, phone_id) = enrolled(&s, &f, "ios", None).await?;
    // Drain DeviceInformation on both.
    for dev in [&mac, &phone] {
        let (_, cmd) = dev.idle().await?;
        dev.ack(&uuid_of(&cmd)?.0).await?;
    }
    let w = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{mac_id}/wipe", f.slug),
                json!({ "pin": "123456" }),
            )
            .await?,
        202,
        "wipe",
    )?;
    ensure!(
        device(&f, &mac_id).await?["status"] == "active",
        "wiped only when acknowledged"
    );
    let (_, cmd) = mac.idle().await?;
    let cmd = cmd.ok_or("erase")?;
    ensure!(
        cmd.request
            == mdm_apple::CommandRequest::EraseDevice {
                pin: Some("123456".into()),
                preserve_data_plan: None
            }
            && w["command_uuid"] == cmd.command_uuid.as_str(),
        "EraseDevice: {cmd:?}"
    );
    mac.ack(&cmd.command_uuid).await?;
    ensure!(
        device(&f, &mac_id).await?["status"] == "wiped",
        "wiped after Acknowledged"
    );
    let bad_pin = f
        .api
        .post(
            &format!("/api/v1/tenants/{}/devices/{phone_id}/wipe", f.slug),
            json!({ "pin": "12" }),
        )
        .await?;
    ensure!(bad_pin.status == 422, "bad PIN: {}", bad_pin.status);

    // CheckOut without a retire: MDM disabled.
    ensure!(
        phone.checkin("CheckOut", Dictionary::new()).await? == 200,
        "CheckOut"
    );
    let d = device(&f, &phone_id).await?;
    ensure!(d["status"] == "mdm_disabled", "after CheckOut: {d}");
    ensure!(
        phone.checkin("CheckOut", Dictionary::new()).await? == 200,
        "a second CheckOut is harmless"
    );
    let trail = audit_actions(&f, "device.").await?;
    ensure!(
        trail.iter().any(|a| a == "device.wiped")
            && trail.iter().any(|a| a == "device.wipe_requested"),
        "{trail:?}"
    );
    let listed = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/devices?status=wiped", f.slug))
            .await?,
        200,
        "list",
    )?;
    ensure!(
        count(&listed) == 1 && listed["items"][0]["id"] == mac_id.as_str(),
        "filter: {listed}"
    );
    let cli = s.cli(&["device", "list", "--tenant", &f.slug])?;
    ensure!(
        cli.contains(&mac_id) && cli.contains("wiped"),
        "cli device list: {cli}"
    );
    Ok(())
}
