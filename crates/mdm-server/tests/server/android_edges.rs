//! Android: R16 CA removal per management mode, QR provisioning and the
//! client app's hand-off, bad agent input refused with no state change,
//! and the FCM wake-up against the local fake FCM.

use crate::android::{creds, device, key, user};
use crate::api::fixture;
use crate::client::expect;
use crate::ensure;
use crate::support::{Server, TestResult};
use mdm_android::{Credentials, ManagementMode, Nonce, ProvisioningQr};
use mdm_sim::android::{AndroidDevice, AndroidHardware};
use serde_json::json;
use std::sync::Arc;

/// R16: registration on a company-owned work profile or a fully managed
/// device queues the removal of every user-installed CA and records the
/// fingerprints removed; never on a personally-owned work profile.
pub async fn android_r16_removes_cas_on_company_owned_only(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    for mode in [
        ManagementMode::PersonalWorkProfile,
        ManagementMode::CompanyOwnedWorkProfile,
        ManagementMode::FullyManaged,
    ] {
        let (email, _) = user(&f).await?;
        let mut phone = device(&s, &f, 33, mode).await?;
        let installed = phone.user_cas[0].sha256.to_string();
        phone
            .register(creds(&email))
            .await
            .map_err(|e| format!("{mode}: {e}"))?;
        let flag = phone
            .registration
            .as_ref()
            .map(|r| r.remove_user_ca_certificates);
        let ran = phone.run_commands().await.map_err(|e| e.to_string())?;
        let company = mode != ManagementMode::PersonalWorkProfile;
        ensure!(
            flag == Some(company),
            "{mode}: remove_user_ca_certificates {flag:?}"
        );
        let id = phone.device_id().map(|u| u.to_string()).unwrap_or_default();
        let audit = expect(
            f.api
                .get(&format!(
                    "/api/v1/tenants/{}/audit?action=device.ca_certificates_removed&device_id={id}",
                    f.slug
                ))
                .await?,
            200,
            "audit",
        )?;
        let items = audit["items"].as_array().cloned().unwrap_or_default();
        if company {
            ensure!(
                ran == ["remove_ca_certificates"],
                "{mode}: agent ran {ran:?}"
            );
            ensure!(
                phone.user_cas.is_empty(),
                "{mode}: CAs left {:?}",
                phone.user_cas
            );
            let fps = items
                .first()
                .map(|e| e["details"]["fingerprints"].clone())
                .unwrap_or_default();
            ensure!(
                items.len() == 1 && fps == json!([installed]),
                "{mode}: removed fingerprints recorded: {items:?}"
            );
        } else {
            ensure!(
                ran.is_empty() && phone.user_cas.len() == 1,
                "{mode}: nothing removed"
            );
            ensure!(items.is_empty(), "{mode}: no removal recorded");
        }
    }
    Ok(())
}

/// A provisioning QR code for a fully managed device: every key of the
/// payload, a one-time enrollment token that registers once, no password;
/// a personal work profile is refused; the client app hands its agent a token.
pub async fn android_qr_provisioning_and_app_token(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let (email, uid) = user(&f).await?;
    let path = format!("/api/v1/tenants/{}/android/provisioning", f.slug);
    let body = json!({ "user_id": uid, "management_mode": "fully_managed",
        "wifi_ssid": "Office", "wifi_passphrase": "office-wifi-pass" });
    let code = expect(f.api.post(&path, body).await?, 201, "provisioning")?;
    let payload = code["payload"].as_str().ok_or("no payload")?;
    let decoded = decode_svg_qr(code["qr_svg"].as_str().ok_or("no QR image")?)?;
    ensure!(
        decoded == payload,
        "the QR image encodes the payload: {decoded}"
    );
    let raw: serde_json::Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
    let p = "android.app.extra.PROVISIONING_";
    ensure!(
        raw[format!("{p}DEVICE_ADMIN_COMPONENT_NAME")] == "org.example.mdm.agent/.AdminReceiver",
        "component: {raw}"
    );
    ensure!(
        raw[format!("{p}DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION")]
            == "https://downloads.example.org/agent.apk",
        "download: {raw}"
    );
    ensure!(
        raw[format!("{p}DEVICE_ADMIN_SIGNATURE_CHECKSUM")]
            == "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqo",
        "checksum: {raw}"
    );
    ensure!(
        raw[format!("{p}WIFI_SSID")] == "Office" && raw[format!("{p}WIFI_SECURITY_TYPE")] == "WPA",
        "wifi: {raw}"
    );
    ensure!(
        raw[format!("{p}WIFI_PASSWORD")] == "office-wifi-pass",
        "wifi passphrase: {raw}"
    );
    ensure!(
        raw.as_object().is_some_and(|o| o.len() == 7),
        "exactly these keys: {raw}"
    );
    let extras = &raw[format!("{p}ADMIN_EXTRAS_BUNDLE")];
    ensure!(
        extras.as_object().is_some_and(|o| o.len() == 5),
        "five extras: {extras}"
    );
    ensure!(
        extras["server_url"] == s.base.as_str() && extras["tenant"] == f.slug.as_str(),
        "extras: {extras}"
    );
    ensure!(
        extras["management_mode"] == "fully_managed" && extras["api_version"] == "v1",
        "extras: {extras}"
    );
    ensure!(
        !payload.contains("android-pass-1") && !payload.contains(&email),
        "no credentials in the QR"
    );
    let qr = ProvisioningQr::parse(payload).map_err(|e| e.to_string())?;
    let token = qr.extras.enrollment_token.clone();
    ensure!(token.len() >= 32, "token");
    let svg = f
        .api
        .raw(
            "POST",
            &format!("{path}?format=svg"),
            "application/json",
            serde_json::to_vec(
                &json!({ "user_id": uid, "management_mode": "company_owned_work_profile" }),
            )
            .map_err(|e| e.to_string())?,
        )
        .await?;
    ensure!(svg.status == 201, "svg: {} {}", svg.status, svg.text);
    let image = ProvisioningQr::parse(&decode_svg_qr(&svg.text)?).map_err(|e| e.to_string())?;
    ensure!(
        image.extras.management_mode == ManagementMode::CompanyOwnedWorkProfile
            && image.extras.enrollment_token != token,
        "the image answer: {image:?}"
    );
    // The provisioned device registers with the token, once.
    let mut phone = device(&s, &f, 33, ManagementMode::FullyManaged).await?;
    phone
        .register(Credentials::enrollment_token(&token))
        .await
        .map_err(|e| e.to_string())?;
    let mut again = device(&s, &f, 33, ManagementMode::FullyManaged).await?;
    let used = again.register(Credentials::enrollment_token(&token)).await;
    ensure!(
        used.as_ref()
            .is_err_and(|e| e.to_string().contains("410")
                && e.to_string().contains("enrollment_token_used")),
        "token reuse: {used:?}"
    );
    // A personally-owned work profile is not provisioned by QR.
    let r = f
        .api
        .post(
            &path,
            json!({ "user_id": uid, "management_mode": "personal_work_profile" }),
        )
        .await?;
    ensure!(r.status == 422, "personal mode: {} {}", r.status, r.text);
    // The client app signs in and hands its agent a one-time token.
    let app = f.api.with_token("none");
    let next = expect(
        app.post(&format!("/app/v1/tenants/{}/register", f.slug),
            json!({"platform": "android", "os_version": "13", "email": email, "password": "android-pass-1"})).await?,
        200, "app register")?;
    let app_token = next["enrollment_token"]
        .as_str()
        .ok_or(format!("no enrollment token: {next}"))?;
    let mut personal = device(&s, &f, 33, ManagementMode::PersonalWorkProfile).await?;
    personal
        .register(Credentials::enrollment_token(app_token))
        .await
        .map_err(|e| e.to_string())?;
    // The sign-in's registration (ADR 0011) is the one that became active:
    // nothing is left open for reminders.
    let regs = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/registrations?user_id={uid}",
                f.slug
            ))
            .await?,
        200,
        "registrations",
    )?;
    let items = regs["items"].as_array().cloned().unwrap_or_default();
    let open: Vec<_> = items
        .iter()
        .filter(|r| r["status"] == "pending" || r["status"] == "profile_downloaded")
        .collect();
    ensure!(open.is_empty(), "no registration left open: {items:?}");
    let reg = personal
        .registration
        .as_ref()
        .map(|r| r.device_id.to_string())
        .unwrap_or_default();
    ensure!(
        items.iter().any(|r| r["device_id"] == reg.as_str()
            && r["status"] == "active"
            && r["platform"] == "android"
            && r["signed_in_at"].is_string()),
        "the signed-in registration is active for the device: {items:?}"
    );
    Ok(())
}

/// Reads a QR code back from the SVG the server draws: the dark modules
/// (`M{x} {y}h{w}v{h}H{x}V{y}` path segments) become a bitmap that `rqrr`
/// detects and decodes like a camera frame.
fn decode_svg_qr(svg: &str) -> Result<String, String> {
    let attr = |name: &str| -> Result<usize, String> {
        let key = format!(" {name}=\"");
        let start = svg.find(&key).ok_or(format!("no {name}"))? + key.len();
        let end = svg[start..].find('"').ok_or("attribute")? + start;
        svg[start..end].parse().map_err(|e| format!("{name}: {e}"))
    };
    let (w, h) = (attr("width")?, attr("height")?);
    let mut dark = vec![false; w * h];
    let path = svg.split(" d=\"").nth(1).ok_or("no path")?;
    for seg in path.split('M').skip(1) {
        let nums: Vec<usize> = seg
            .split(|c: char| !c.is_ascii_digit())
            .filter(|n| !n.is_empty())
            .take(4)
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        if let [x, y, mw, mh] = nums[..] {
            for yy in y..(y + mh).min(h) {
                for xx in x..(x + mw).min(w) {
                    dark[yy * w + xx] = true;
                }
            }
        }
    }
    let mut img = rqrr::PreparedImage::prepare_from_bitmap(w, h, |x, y| dark[y * w + x]);
    let grids = img.detect_grids();
    let grid = grids.first().ok_or("no QR code found in the image")?;
    grid.decode()
        .map(|(_, text)| text)
        .map_err(|e| e.to_string())
}

/// Unknown API version, malformed JSON, forged, stale and replayed
/// signatures, another tenant's device: refused precisely, nothing changes.
pub async fn android_bad_agent_input_changes_nothing(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let (email, _) = user(&f).await?;
    let mut phone = device(&s, &f, 33, ManagementMode::FullyManaged).await?;
    phone
        .register(creds(&email))
        .await
        .map_err(|e| e.to_string())?;
    let id = phone.device_id().map(|u| u.to_string()).unwrap_or_default();
    let detail = format!("/api/v1/tenants/{}/devices/{id}", f.slug);
    let before = expect(f.api.get(&detail).await?, 200, "device")?;
    let body = phone.checkin_body().map_err(|e| e.to_string())?;
    let v2 = phone
        .send("v2", "POST", "/android/v2/checkin", body.clone(), true)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        v2.0 == 404 && v2.1.contains("unknown_api_version") && v2.1.contains("v1"),
        "v2: {v2:?}"
    );
    let bad = phone
        .send(
            "json",
            "POST",
            "/android/v1/register",
            b"{not json".to_vec(),
            false,
        )
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        bad.0 == 400 && bad.1.contains("malformed_request"),
        "malformed: {bad:?}"
    );
    let extra = phone
        .send(
            "json",
            "POST",
            "/android/v1/checkin",
            b"{\"unknown\": 1}".to_vec(),
            true,
        )
        .await
        .map_err(|e| e.to_string())?;
    ensure!(extra.0 == 400, "unknown field: {extra:?}");
    // Forged: another key signs with this device's id.
    let mut forger = AndroidDevice::new(
        AndroidHardware::new(999_999, 33),
        ManagementMode::FullyManaged,
        &s.base,
        &f.slug,
        reqwest::Client::new(),
        key().await?,
    );
    forger.registration = phone.registration.clone();
    let forged = forger
        .send("forged", "POST", "/android/v1/checkin", body.clone(), true)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        forged.0 == 401 && forged.1.contains("bad_signature"),
        "forged: {forged:?}"
    );
    // Stale timestamp.
    let old = time::OffsetDateTime::now_utc() - time::Duration::minutes(10);
    let h = phone
        .signature("POST", "/android/v1/checkin", &body, old, None)
        .map_err(|e| e.to_string())?;
    let stale = phone
        .send_with("stale", "POST", "/android/v1/checkin", body.clone(), &h)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(stale.0 == 401, "stale: {stale:?}");
    // Another tenant's device id: this tenant has no such device.
    let g = fixture(&s).await?;
    let (other_email, _) = user(&g).await?;
    let mut other = device(&s, &g, 33, ManagementMode::FullyManaged).await?;
    other
        .register(creds(&other_email))
        .await
        .map_err(|e| e.to_string())?;
    let mut h = other
        .signature(
            "POST",
            "/android/v1/checkin",
            &body,
            time::OffsetDateTime::now_utc(),
            None,
        )
        .map_err(|e| e.to_string())?;
    for (k, v) in h.iter_mut() {
        if k == mdm_android::TENANT_HEADER {
            *v = f.slug.clone();
        }
    }
    let cross = other
        .send_with("cross", "POST", "/android/v1/checkin", body.clone(), &h)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        cross.0 == 404 && cross.1.contains("unknown_device"),
        "cross-tenant: {cross:?}"
    );
    let unchanged = expect(f.api.get(&detail).await?, 200, "device")?;
    ensure!(
        unchanged["android"]["last_checkin_at"] == before["android"]["last_checkin_at"],
        "refusals changed the device: {unchanged}"
    );
    // Replayed: the same signed request twice.
    let nonce = Nonce::generate().map_err(|e| e.to_string())?;
    let h = phone
        .signature(
            "POST",
            "/android/v1/checkin",
            &body,
            time::OffsetDateTime::now_utc(),
            Some(nonce),
        )
        .map_err(|e| e.to_string())?;
    let first = phone
        .send_with("once", "POST", "/android/v1/checkin", body.clone(), &h)
        .await
        .map_err(|e| e.to_string())?;
    let second = phone
        .send_with("twice", "POST", "/android/v1/checkin", body.clone(), &h)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(
        first.0 == 200 && second.0 == 409 && second.1.contains("replayed_request"),
        "replay: {first:?} {second:?}"
    );
    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=agent.request_refused&device_id={id}",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    ensure!(
        audit["items"].as_array().is_some_and(|a| a.len() == 1),
        "the forged request is in the audit: {audit}"
    );
    Ok(())
}

/// A lock wakes the agent through FCM (no command in the push; UNAVAILABLE
/// is retried), the agent fetches the command over the signed API; an
/// UNREGISTERED token is marked dead.
pub async fn android_fcm_wakes_the_agent(s: Arc<Server>) -> TestResult {
    let fcm = crate::FCM.get().ok_or("no fake FCM")?.clone();
    let f = fixture(&s).await?;
    let (email, _) = user(&f).await?;
    let mut phone = device(&s, &f, 33, ManagementMode::PersonalWorkProfile).await?;
    phone
        .register(creds(&email))
        .await
        .map_err(|e| e.to_string())?;
    let id = phone.device_id().map(|u| u.to_string()).unwrap_or_default();
    let base = format!("/api/v1/tenants/{}/devices/{id}", f.slug);
    // UNAVAILABLE first: retried with backoff, then delivered.
    fcm.script(
        &phone.fcm_token,
        &[crate::fake_fcm::FcmReply::new(
            503,
            "UNAVAILABLE",
            Some("UNAVAILABLE"),
        )],
    );
    expect(
        f.api.post(&format!("{base}/lock"), json!({})).await?,
        202,
        "lock",
    )?;
    let mut got = Vec::new();
    for _ in 0..100 {
        got = fcm.received_for(&phone.fcm_token);
        if got.iter().any(|r| r.status == 200) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    ensure!(
        statuses == [503, 200],
        "one wake-up after one retry: {statuses:?}"
    );
    let mut outcome = serde_json::Value::Null;
    for _ in 0..50 {
        let d = expect(f.api.get(&base).await?, 200, "device")?;
        outcome = d["android"]["last_push_outcome"].clone();
        if outcome == "sent" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(outcome == "sent", "push recorded as sent: {outcome}");
    let data = &got[1].message["data"];
    ensure!(
        data["type"] == "wake" && data.get("command").is_none(),
        "only a wake-up: {data}"
    );
    let ran = phone.run_commands().await.map_err(|e| e.to_string())?;
    ensure!(ran == ["lock"], "the agent fetched the lock: {ran:?}");
    fcm.script(
        &phone.fcm_token,
        &[crate::fake_fcm::FcmReply::new(
            404,
            "NOT_FOUND",
            Some("UNREGISTERED"),
        )],
    );
    expect(
        f.api.post(&format!("{base}/lock"), json!({})).await?,
        202,
        "lock",
    )?;
    let mut dead = false;
    for _ in 0..100 {
        let d = expect(f.api.get(&base).await?, 200, "device")?;
        if d["android"]["fcm_token_dead_at"].is_string() {
            dead = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ensure!(dead, "UNREGISTERED marks the token dead");
    Ok(())
}
