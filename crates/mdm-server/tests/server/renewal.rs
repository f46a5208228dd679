//! Identity renewal: the server re-sends the enrollment profile as an
//! `InstallProfile`, the simulated device gets a new certificate by SCEP and
//! authenticates again, and the same device record carries on with the new
//! identity — by the administrator's request, and by the scheduled scan when
//! certificates come due.

use crate::api::{Fixture, fixture};
use crate::client::expect;
use crate::ensure;
use crate::fake_apns::{FakeApns, FakeAuth};
use crate::sim_lifecycle::{admin, answered, device_audit, device_record, pushed, pushes};
use crate::support::{Server, TestResult};
use mdm_sim::{Channel, Device, DeviceFacts, DeviceState, Platform, Prepared};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// An enrolled iPhone (DeviceInformation answered) and its device id.
async fn enrolled_phone(s: &Server, f: &Fixture, n: u64) -> Result<(Device, String), String> {
    let http = reqwest::Client::new();
    let mut phone = Device::new(DeviceFacts::iphone(n), http.clone());
    let p = admin(s, f)
        .issue_profile(&http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    phone.enroll(&p.signed).await.map_err(|e| e.to_string())?;
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "DeviceInformation"),
        "DeviceInformation first: {handled:?}"
    );
    let id = device_record(f, phone.udid()).await?["id"]
        .as_str()
        .ok_or("device id")?
        .to_owned();
    Ok((phone, id))
}

async fn device_certificates(f: &Fixture, device: &str) -> Result<Vec<Value>, String> {
    let page = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/certificates?device_id={device}",
                f.slug
            ))
            .await?,
        200,
        "certificates",
    )?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

/// Sends a request prepared (and signed) earlier, as a device would.
async fn send_prepared(req: &Prepared) -> Result<u16, String> {
    let mut r = reqwest::Client::new()
        .put(&req.url)
        .header("content-type", req.content_type)
        .body(req.body.clone());
    if let Some(sig) = &req.signature {
        r = r.header("Mdm-Signature", sig);
    }
    Ok(r.send().await.map_err(|e| e.to_string())?.status().as_u16())
}

/// The renewal as the device and the records see it; `install` is the
/// InstallProfile that carried the profile.
async fn check_renewed(
    f: &Fixture,
    phone: &Device,
    id: &str,
    old_cert: &[u8],
    certs_before: usize,
) -> TestResult {
    ensure!(
        phone.state() == DeviceState::Enrolled,
        "still enrolled after the renewal"
    );
    let new_cert = phone.identity_cert_der().ok_or("identity")?;
    ensure!(new_cert != old_cert, "a new identity certificate");
    let record = device_record(f, phone.udid()).await?;
    ensure!(
        record["id"] == id && record["status"] == "active",
        "the same record, active: {record}"
    );
    let certs = device_certificates(f, id).await?;
    ensure!(
        certs.len() == certs_before + 1,
        "one more certificate for the device: {certs:?}"
    );
    let audit = device_audit(f, id).await?;
    ensure!(
        audit.iter().any(|a| a == "device.identity_renewed"),
        "renewal audited: {audit:?}"
    );
    let commands = crate::apple::commands(f, id).await?;
    ensure!(
        commands
            .iter()
            .all(|c| c["state"] != "cancelled" && c["state"] != "queued"),
        "a renewal cancels nothing and leaves nothing waiting: {commands:?}"
    );
    Ok(())
}

/// `POST …/devices/{id}/resend-profile`: InstallProfile of a fresh profile,
/// pushed; the device renews in place, keeps what it had installed, and its
/// old identity stops working. A retired device cannot be renewed.
pub async fn resend_profile_renews_identity(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let (mut phone, id) = enrolled_phone(&s, &f, 41).await?;
    let old_cert = phone.identity_cert_der().ok_or("identity")?.to_vec();
    let certs_before = device_certificates(&f, &id).await?.len();
    let stale_idle = phone
        .idle_request(Channel::Device)
        .map_err(|e| e.to_string())?;

    let token = phone.push_token().ok_or("token")?.to_vec();
    let before = pushes(&s, &token);
    let cmd = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{id}/resend-profile", f.slug),
                json!({}),
            )
            .await?,
        202,
        "resend",
    )?;
    ensure!(cmd["request_type"] == "InstallProfile", "{cmd}");
    pushed(&s, &token, before).await?;
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "InstallProfile"),
        "InstallProfile acknowledged: {handled:?}"
    );
    check_renewed(&f, &phone, &id, &old_cert, certs_before).await?;
    let regs = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/registrations?limit=1000",
                f.slug
            ))
            .await?,
        200,
        "registrations",
    )?;
    let renewal = regs["items"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["purpose"] == "renewal" && r["device_id"] == id.as_str())
        })
        .ok_or(format!("a renewal registration: {regs}"))?;
    ensure!(renewal["status"] == "active", "{renewal}");

    // The old identity is unbound now; the new one polls.
    let status = send_prepared(&stale_idle).await?;
    ensure!(
        (400..500).contains(&status) && status != 401 && status != 403,
        "the old certificate is refused (never 401/403): {status}"
    );
    phone.wake().await.map_err(|e| e.to_string())?;

    // Unknown, foreign and retired devices.
    let missing = f
        .api
        .post(
            &format!(
                "/api/v1/tenants/{}/devices/{}/resend-profile",
                f.slug,
                uuid::Uuid::new_v4()
            ),
            json!({}),
        )
        .await?;
    ensure!(missing.status == 404, "unknown device: {}", missing.status);
    let other = fixture(&s).await?;
    let foreign = other
        .api
        .post(
            &format!("/api/v1/tenants/{}/devices/{id}/resend-profile", other.slug),
            json!({}),
        )
        .await?;
    ensure!(
        foreign.status == 404,
        "another tenant's device: {}",
        foreign.status
    );
    expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{id}/retire", f.slug),
                json!({}),
            )
            .await?,
        202,
        "retire",
    )?;
    let retired = f
        .api
        .post(
            &format!("/api/v1/tenants/{}/devices/{id}/resend-profile", f.slug),
            json!({}),
        )
        .await?;
    ensure!(
        retired.status == 409 && retired.body["error"]["code"] == "device_not_active",
        "a retired device: {} {}",
        retired.status,
        retired.body
    );
    Ok(())
}

/// A server whose certificates live 2 days and are renewed 47 hours before
/// they expire, scanning every second. The enrolled device's certificate is
/// made to expire within the hour (as if issued long ago, written straight
/// into the database); the scan re-sends the profile by itself, the device
/// renews, and the renewed certificate (48 hours) is not due again.
pub async fn scan_renews_due_certificates(dir: std::path::PathBuf) -> TestResult {
    let apns = Arc::new(FakeApns::start(FakeAuth::Token, &dir.join("apns")).await?);
    let mut env = apns.config_env();
    env.extend([
        ("MDM_CERT_VALIDITY_DAYS".to_string(), "2".to_string()),
        ("MDM_APPLE_RENEW_BEFORE_HOURS".into(), "47".into()),
        ("MDM_APPLE_RENEWAL_SCAN_SECS".into(), "1".into()),
    ]);
    let mut server = Server::start_with_env("renewal", &dir.join("data"), None, &env)?;
    server.apns = Some(apns);
    let s = Arc::new(server);
    let result = scan_renews(&s).await;
    s.stop();
    result
}

async fn scan_renews(s: &Arc<Server>) -> TestResult {
    let f = fixture(s).await?;
    let (mut phone, id) = enrolled_phone(s, &f, 42).await?;
    let old_cert = phone.identity_cert_der().ok_or("identity")?.to_vec();
    let certs_before = device_certificates(&f, &id).await?.len();
    ensure!(
        crate::apple::commands(&f, &id)
            .await?
            .iter()
            .all(|c| c["request_type"] != "InstallProfile"),
        "a fresh certificate is not due"
    );
    age_certificates(s, &id).await?;
    let installs = |cmds: &[Value]| {
        cmds.iter()
            .filter(|c| c["request_type"] == "InstallProfile")
            .count()
    };
    let mut queued = false;
    for _ in 0..100 {
        if installs(&crate::apple::commands(&f, &id).await?) == 1 {
            queued = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ensure!(queued, "the scan queued an InstallProfile by itself");
    pushed(s, phone.push_token().ok_or("token")?, 0).await?;
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        answered(&handled, "InstallProfile"),
        "InstallProfile acknowledged: {handled:?}"
    );
    check_renewed(&f, &phone, &id, &old_cert, certs_before).await?;
    let certs = device_certificates(&f, &id).await?;
    let not_after = |c: &Value| c["not_after"].as_str().unwrap_or_default().to_owned();
    let mut dates: Vec<String> = certs.iter().map(not_after).collect();
    dates.sort();
    ensure!(
        dates.len() == 2 && dates[0] < dates[1],
        "the renewed certificate lives longer: {dates:?}"
    );
    // Several more scans: the renewed certificate is not due, nothing new is queued.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let cmds = crate::apple::commands(&f, &id).await?;
    ensure!(installs(&cmds) == 1, "renewed once: {cmds:?}");
    Ok(())
}

/// Makes the device's certificates expire in 30 minutes.
async fn age_certificates(s: &Server, device: &str) -> TestResult {
    let soon =
        (time::OffsetDateTime::now_utc() + time::Duration::minutes(30)).unix_timestamp() * 1000;
    crate::apple_device::exec_sql(
        s,
        "UPDATE certificates SET not_after = CAST($1 AS INTEGER) WHERE device_id = $2",
        &[&soon.to_string(), device],
    )
    .await
}
