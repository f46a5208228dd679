//! The Apple command channel with the device simulator: devices that say
//! NotNow, answer twice or stay silent, and a device identified by mutual
//! TLS alone on the server's own HTTPS listener.

use crate::api::{Fixture, fixture};
use crate::client::expect;
use crate::ensure;
use crate::sim_lifecycle::{admin, answered, device_record, pushed, pushes};
use crate::support::{Server, TestResult};
use mdm_sim::mdm_apple::CommandStatus;
use mdm_sim::{AdminApi, Device, DeviceFacts, Platform};
use serde_json::{Value, json};
use std::sync::Arc;

/// An enrolled iPhone (its DeviceInformation answered) and its device id.
async fn enrolled_phone(s: &Server, f: &Fixture, seed: u64) -> Result<(Device, String), String> {
    let http = reqwest::Client::new();
    let p = admin(s, f)
        .issue_profile(&http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    let mut phone = Device::new(DeviceFacts::iphone(seed), http);
    phone.enroll(&p.signed).await.map_err(|e| e.to_string())?;
    phone.wake().await.map_err(|e| e.to_string())?;
    let id = device_record(f, phone.udid()).await?["id"]
        .as_str()
        .ok_or("id")?
        .to_owned();
    Ok((phone, id))
}

async fn queue(f: &Fixture, device_id: &str, command: Value) -> Result<String, String> {
    let c = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{device_id}/commands", f.slug),
                command,
            )
            .await?,
        201,
        "queue",
    )?;
    Ok(c["command_uuid"].as_str().ok_or("command_uuid")?.to_owned())
}

async fn command_state(f: &Fixture, device_id: &str, uuid: &str) -> Result<Value, String> {
    let page = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/devices/{device_id}/commands?limit=1000",
                f.slug
            ))
            .await?,
        200,
        "commands",
    )?;
    page["items"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["command_uuid"] == uuid))
        .cloned()
        .ok_or(format!("no command {uuid}: {page}"))
}

/// Devices that say NotNow, answer twice, or stay silent: the command is
/// retried on a later Idle (not on the same connection), a duplicate result
/// changes nothing, and a silent device's command stays queued.
pub async fn not_now_duplicates_and_silence(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let (mut phone, id) = enrolled_phone(&s, &f, 21).await?;

    phone.behaviour.not_now = 2;
    let uuid = queue(&f, &id, json!({ "type": "ProfileList" })).await?;
    for round in 1..=2 {
        let handled = phone.wake().await.map_err(|e| e.to_string())?;
        let statuses: Vec<_> = handled
            .iter()
            .map(|h| (h.command_uuid.as_str(), h.status))
            .collect();
        ensure!(
            statuses == [(uuid.as_str(), CommandStatus::NotNow)],
            "round {round}: one NotNow, no re-send on the same connection: {statuses:?}"
        );
    }
    let c = command_state(&f, &id, &uuid).await?;
    ensure!(
        c["state"] == "not_now" && c["not_now_count"] == 2,
        "after two NotNow: {c}"
    );
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "ProfileList"),
        "run on a later Idle: {handled:?}"
    );
    let c = command_state(&f, &id, &uuid).await?;
    ensure!(c["state"] == "acknowledged", "acknowledged: {c}");
    let listed = c["result"]["ProfileList"].as_array().map_or(0, Vec::len);
    ensure!(listed == 1, "the result holds the enrollment profile: {c}");

    phone.behaviour = mdm_sim::Behaviour {
        duplicate_results: true,
        ..Default::default()
    };
    let uuid = queue(&f, &id, json!({ "type": "DeviceLock", "message": "Lost" })).await?;
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "DeviceLock"),
        "lock answered: {handled:?}"
    );
    let c = command_state(&f, &id, &uuid).await?;
    ensure!(
        c["state"] == "acknowledged",
        "a duplicate result is harmless: {c}"
    );
    let record = device_record(&f, phone.udid()).await?;
    ensure!(record["status"] == "active", "still active: {record}");

    phone.behaviour = mdm_sim::Behaviour {
        silent: true,
        ..Default::default()
    };
    let token = phone.push_token().ok_or("token")?.to_vec();
    let before = pushes(&s, &token);
    let uuid = queue(&f, &id, json!({ "type": "DeviceInformation" })).await?;
    pushed(&s, &token, before).await?;
    ensure!(
        phone.wake().await.map_err(|e| e.to_string())?.is_empty(),
        "silent"
    );
    let c = command_state(&f, &id, &uuid).await?;
    ensure!(
        c["state"] == "queued",
        "a silent device's command waits: {c}"
    );
    phone.behaviour = mdm_sim::Behaviour::default();
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "DeviceInformation"),
        "answered once awake: {handled:?}"
    );
    Ok(())
}

/// Over `mdm serve`'s own HTTPS listener with a self-signed certificate: the
/// simulator trusts the anchor the profile carries, and identifies itself by
/// its SCEP identity as the TLS client certificate alone (no Mdm-Signature).
pub async fn mtls_over_the_https_listener(dir: &std::path::Path) -> TestResult {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let key = rcgen::KeyPair::generate().map_err(|e| err(&e))?;
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).map_err(|e| err(&e))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "mdm.test");
    let cert = params.self_signed(&key).map_err(|e| err(&e))?;
    std::fs::create_dir_all(dir).map_err(|e| err(&e))?;
    let (cert_file, key_file) = (dir.join("server.pem"), dir.join("server.key"));
    std::fs::write(&cert_file, cert.pem()).map_err(|e| err(&e))?;
    std::fs::write(&key_file, key.serialize_pem()).map_err(|e| err(&e))?;
    let env = vec![
        (
            "MDM_TLS_CERT_FILE".to_string(),
            cert_file.display().to_string(),
        ),
        (
            "MDM_TLS_KEY_FILE".to_string(),
            key_file.display().to_string(),
        ),
    ];
    let server = crate::tls::spawn_serve(&dir.join("data"), &env, "https://127.0.0.1:")?;
    let creds = std::fs::read_to_string(server.data_dir.join("initial-credentials.txt"))
        .map_err(|e| err(&e))?;
    let token = creds
        .lines()
        .find_map(|l| l.strip_prefix("operator_api_token = \""))
        .map(|t| t.trim_end_matches('"').to_string())
        .ok_or("operator token")?;
    let root = reqwest::Certificate::from_pem(cert.pem().as_bytes()).map_err(|e| err(&e))?;
    let http = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .map_err(|e| err(&e))?;
    let api = AdminApi::new(&server.base, "default", &token);
    let p = api
        .issue_profile(&http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    // The device's own client trusts nothing extra: only the profile's anchors.
    let mut phone = Device::new(DeviceFacts::iphone(31), reqwest::Client::new())
        .with_identity_mode(mdm_sim::IdentityMode::Mtls);
    phone
        .enroll(&p.signed)
        .await
        .map_err(|e| format!("enrol over mTLS: {e}"))?;
    ensure!(
        phone
            .profile()
            .is_some_and(|p| p.mdm.server_url.starts_with("https://")),
        "https ServerURL"
    );
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "DeviceInformation"),
        "commands over mTLS: {handled:?}"
    );

    // Without its client certificate the same device is refused, and not with 401.
    let idle = phone
        .idle_request(mdm_sim::Channel::Device)
        .map_err(|e| e.to_string())?;
    let anchored = mdm_sim::device_client(&phone.profile().ok_or("profile")?.anchors, None)
        .map_err(|e| e.to_string())?;
    let ans = idle.send(&anchored).await.map_err(|e| e.to_string())?;
    ensure!(
        ans.status != 200 && ans.status != 401,
        "an Idle with neither certificate nor signature: HTTP {}",
        ans.status
    );
    Ok(())
}
