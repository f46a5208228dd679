//! Android registration and lifecycle end to end: simulated Android 9 and
//! Android 13 devices (`mdm_sim::android`) against the real `mdm serve`,
//! speaking only the agent API. The re-registration matrix (R18, R19), 50
//! concurrent re-registrations, R16 CA removal per management mode, QR
//! provisioning, the client app's hand-off to the agent, and the FCM wake.

use crate::api::{Fixture, fixture};
use crate::client::expect;
use crate::ensure;
use crate::support::{Server, TestResult, uuid_hex};
use mdm_android::{Credentials, ManagementMode, ResetCause};
use mdm_pki::RsaKey;
use mdm_sim::android::{AndroidDevice, AndroidHardware};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(1);

pub(crate) async fn key() -> Result<RsaKey, String> {
    tokio::task::spawn_blocking(|| RsaKey::generate(2048).map_err(|e| e.to_string()))
        .await
        .map_err(|e| e.to_string())?
}

pub(crate) async fn user(f: &Fixture) -> Result<(String, String), String> {
    let email = format!("a-{}@example.com", uuid_hex());
    let body =
        json!({ "email": email, "display_name": "Android user", "password": "android-pass-1" });
    let u = expect(
        f.api
            .post(&format!("/api/v1/tenants/{}/users", f.slug), body)
            .await?,
        201,
        "add user",
    )?;
    Ok((email, u["id"].as_str().unwrap_or_default().to_string()))
}

pub(crate) async fn device(
    s: &Server,
    f: &Fixture,
    api_level: u32,
    mode: ManagementMode,
) -> Result<AndroidDevice, String> {
    let n = NEXT.fetch_add(1, Ordering::Relaxed) + std::process::id() % 1000 * 10_000;
    Ok(AndroidDevice::new(
        AndroidHardware::new(n, api_level),
        mode,
        &s.base,
        &f.slug,
        reqwest::Client::new(),
        key().await?,
    ))
}

pub(crate) fn creds(email: &str) -> Credentials {
    Credentials::password(email, "android-pass-1")
}

pub(crate) async fn entries(f: &Fixture, user_id: &str) -> Result<Vec<Value>, String> {
    let page = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/devices?platform=android&user_id={user_id}",
                f.slug
            ))
            .await?,
        200,
        "list devices",
    )?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

fn id_of(d: &AndroidDevice) -> String {
    d.device_id().map(|u| u.to_string()).unwrap_or_default()
}

fn status_of(list: &[Value], id: &str) -> Option<String> {
    list.iter()
        .find(|d| d["id"] == id)
        .and_then(|d| d["status"].as_str().map(str::to_string))
}

/// R18/R19: Android 9 and Android 13, after each of retire, wipe, delete
/// and a device-reported reset, register again in the same tenant without
/// anything cleared by hand.
pub async fn android_reregistration_matrix(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    for api_level in [28u32, 33] {
        for action in ["retire", "wipe", "delete", "reset"] {
            let case = format!("API {api_level} after {action}");
            let (email, uid) = user(&f).await?;
            let mut phone = device(&s, &f, api_level, ManagementMode::FullyManaged).await?;
            phone
                .register(creds(&email))
                .await
                .map_err(|e| format!("{case}: {e}"))?;
            phone.checkin().await.map_err(|e| format!("{case}: {e}"))?;
            phone
                .run_commands()
                .await
                .map_err(|e| format!("{case}: {e}"))?;
            let first = id_of(&phone);
            let base = format!("/api/v1/tenants/{}/devices/{first}", f.slug);
            match action {
                "retire" => {
                    expect(
                        f.api.post(&format!("{base}/retire"), json!({})).await?,
                        202,
                        &case,
                    )?;
                    let done = phone.run_commands().await.map_err(|e| e.to_string())?;
                    ensure!(done == ["retire"], "{case}: agent ran {done:?}");
                }
                "wipe" => {
                    expect(
                        f.api.post(&format!("{base}/wipe"), json!({})).await?,
                        202,
                        &case,
                    )?;
                    let done = phone.run_commands().await.map_err(|e| e.to_string())?;
                    ensure!(done == ["wipe"], "{case}: agent ran {done:?}");
                }
                "delete" => {
                    let r = f.api.send("DELETE", &base, None).await?;
                    ensure!(r.status == 204, "{case}: delete {} {}", r.status, r.text);
                    ensure!(
                        f.api.get(&base).await?.status == 404,
                        "{case}: deleted entry still there"
                    );
                }
                _ => {
                    phone
                        .report_reset(ResetCause::FactoryReset)
                        .await
                        .map_err(|e| e.to_string())?;
                    let d = expect(f.api.get(&base).await?, 200, &case)?;
                    ensure!(
                        d["status"] == "reset" && d["shown_status"] == "active",
                        "{case}: a reset entry shows as active: {d}"
                    );
                }
            }
            let before = entries(&f, &uid).await?;
            let expected_before = match action {
                "retire" => Some("retired"),
                "wipe" => Some("wiped"),
                "reset" => Some("reset"),
                _ => None,
            };
            ensure!(
                status_of(&before, &first).as_deref() == expected_before,
                "{case}: status before re-registration {before:?}"
            );
            phone.factory_reset(key().await?);
            phone
                .register(creds(&email))
                .await
                .map_err(|e| format!("{case}: again: {e}"))?;
            let second = id_of(&phone);
            let after = entries(&f, &uid).await?;
            let active: Vec<&Value> = after.iter().filter(|d| d["status"] == "active").collect();
            ensure!(
                active.len() == 1 && active[0]["id"] == second,
                "{case}: one active entry: {after:?}"
            );
            match (api_level, action) {
                (_, "delete") => ensure!(
                    after.len() == 1 && second != first,
                    "{case}: a new entry after delete: {after:?}"
                ),
                (28, _) => ensure!(
                    after.len() == 1 && second == first,
                    "{case}: Android 9 reuses its one entry: {after:?}"
                ),
                (_, _) => {
                    let old = status_of(&after, &first);
                    let want = if action == "wipe" { "wiped" } else { "retired" };
                    ensure!(
                        after.len() == 2 && second != first && old.as_deref() == Some(want),
                        "{case}: Android 13 gets a new entry, the old one {want}: {after:?}"
                    );
                }
            }
            let action_name = if action == "delete" {
                "device.registered"
            } else {
                "device.reregistered"
            };
            let audit = expect(
                f.api
                    .get(&format!(
                        "/api/v1/tenants/{}/audit?action={action_name}&device_id={second}",
                        f.slug
                    ))
                    .await?,
                200,
                "audit",
            )?;
            let entry = audit["items"]
                .as_array()
                .and_then(|a| a.first())
                .cloned()
                .unwrap_or_default();
            let matched = entry["details"]["matched_key"].as_str().map(str::to_string);
            let want = match (api_level, action) {
                (_, "delete") => None,
                (28, _) => Some("imei"),
                _ => Some("enterprise_specific_id"),
            };
            ensure!(
                matched.as_deref() == want,
                "{case}: matched key in the audit: {entry}"
            );
            ensure!(
                entry["details"]["correlation_keys"][0]
                    == if api_level == 28 {
                        "imei"
                    } else {
                        "enterprise_specific_id"
                    },
                "{case}: keys in priority order: {entry}"
            );
            ensure!(
                phone.checkin().await.is_ok(),
                "{case}: the new registration checks in"
            );
        }
    }
    Ok(())
}

/// 50 concurrent registrations of one Android 13 device leave exactly one
/// active entry; every other entry of it is retired.
pub async fn android_concurrent_reregistrations(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let (email, uid) = user(&f).await?;
    let phone = device(&s, &f, 33, ManagementMode::CompanyOwnedWorkProfile).await?;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let body = phone
            .register_body(creds(&email))
            .map_err(|e| e.to_string())?;
        let path = "/android/v1/register".to_string();
        let http = reqwest::Client::new();
        let url = format!("{}{path}", s.base);
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            Ok::<u16, String>(r.status().as_u16())
        }));
    }
    for t in tasks {
        let status = t.await.map_err(|e| e.to_string())??;
        ensure!(status == 201, "a registration failed: {status}");
    }
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let page = expect(
            f.api
                .get(&format!(
                    "/api/v1/tenants/{}/devices?platform=android&user_id={uid}&limit=20{q}",
                    f.slug
                ))
                .await?,
            200,
            "list",
        )?;
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let active = all.iter().filter(|d| d["status"] == "active").count();
    let retired = all.iter().filter(|d| d["status"] == "retired").count();
    ensure!(
        all.len() == 50 && active == 1 && retired == 49,
        "50 entries, one active: {} entries, {active} active, {retired} retired",
        all.len()
    );
    Ok(())
}
