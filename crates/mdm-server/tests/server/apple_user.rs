//! macOS user-level management (R14) and the real check-in captures.

use crate::api::fixture;
use crate::apple::audit_actions;
use crate::apple_device::{Dev, device, enrolled, text};
use crate::apple_lifecycle::{body, drain};
use crate::client::expect;
use crate::ensure;
use crate::support::{Server, TestResult};
use mdm_apple::plist::Dictionary;
use serde_json::json;
use std::sync::Arc;

pub async fn apple_macos_user_channel(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let u = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/users", f.slug),
                json!({ "email": "bob@example.com", "display_name": "Bob Example" }),
            )
            .await?,
        201,
        "user",
    )?;
    let (mac, id) = enrolled(&s, &f, "macos", u["id"].as_str()).await?;
    drain(&mac).await?;
    let mut bob = mac.clone();
    bob.user = Some(("B0B-GUID".into(), "bob".into(), "Bob Example".into()));
    ensure!(
        bob.token_update().await? == 200,
        "the registered user's channel"
    );
    let mut eve = mac.clone();
    eve.user = Some(("E5E-GUID".into(), "eve".into(), "Eve".into()));
    ensure!(eve.token_update().await? == 410, "another user is refused");
    let d = device(&f, &id).await?;
    let channels = d["enrollments"].as_array().cloned().unwrap_or_default();
    ensure!(
        channels.len() == 2
            && channels[1]["id"] == format!("{}:B0B-GUID", mac.udid)
            && channels[1]["channel"] == "user",
        "channels: {d}"
    );

    // User-level profiles go to the user channel only.
    let user_profile = body(&[
        ("PayloadType", text("Configuration")),
        ("PayloadScope", text("User")),
        ("PayloadIdentifier", text("com.example.user")),
    ]);
    let b64 = crate::scep::base64_encode(&user_profile);
    let path = format!("/api/v1/tenants/{}/devices/{id}/commands", f.slug);
    let wrong = f
        .api
        .post(
            &path,
            json!({ "type": "InstallProfile", "payload_base64": b64 }),
        )
        .await?;
    ensure!(
        wrong.status == 422,
        "user profile on the device channel: {}",
        wrong.status
    );
    let device_profile = crate::scep::base64_encode(&body(&[
        ("PayloadType", text("Configuration")),
        ("PayloadIdentifier", text("com.example.dev")),
    ]));
    let wrong = f.api.post(&path, json!({ "type": "InstallProfile", "payload_base64": device_profile, "user_channel": true })).await?;
    ensure!(
        wrong.status == 422,
        "device profile on the user channel: {}",
        wrong.status
    );
    let c = expect(
        f.api
            .post(
                &path,
                json!({ "type": "InstallProfile", "payload_base64": b64, "user_channel": true }),
            )
            .await?,
        201,
        "install",
    )?;
    ensure!(
        c["enrollment_id"] == format!("{}:B0B-GUID", mac.udid),
        "queued on the user channel: {c}"
    );
    ensure!(
        mac.idle().await?.1.is_none(),
        "the device channel does not get it"
    );
    let (_, cmd) = bob.idle().await?;
    let cmd = cmd.ok_or("user channel command")?;
    ensure!(
        cmd.request
            == mdm_apple::CommandRequest::InstallProfile {
                payload: user_profile
            },
        "{cmd:?}"
    );
    bob.ack(&cmd.command_uuid).await?;
    let trail = audit_actions(&f, "device.user_channel_enrolled").await?;
    ensure!(trail.len() == 1, "{trail:?}");
    // The user channel checks out alone; the device channel stays.
    ensure!(
        bob.checkin("CheckOut", Dictionary::new()).await? == 200,
        "user CheckOut"
    );
    ensure!(
        device(&f, &id).await?["status"] == "active",
        "device still active"
    );
    ensure!(bob.idle().await?.0 == 404, "checked-out user channel");
    Ok(())
}

/// Every real capture reaches the check-in parser and is parsed: the server
/// answers it with an identity refusal (412), never a parse refusal (400).
pub async fn apple_fixtures_parse(s: Arc<Server>) -> TestResult {
    let dir = std::path::Path::new("/work/shared/fixtures/apple-checkin");
    let Ok(entries) = std::fs::read_dir(dir) else {
        eprintln!(
            "notice: {} is absent: the check-in capture test is skipped",
            dir.display()
        );
        return Ok(());
    };
    let f = fixture(&s).await?;
    let probe = Dev {
        udid: String::new(),
        user: None,
        ..enrolled(&s, &f, "ios", None).await?.0
    };
    let mut n = 0;
    for e in entries.flatten() {
        let bytes = std::fs::read(e.path()).map_err(|e| e.to_string())?;
        let endpoint = if mdm_apple::CheckinMessage::parse(&bytes).is_ok() {
            "checkin"
        } else {
            "connect"
        };
        let (code, body) = probe.put(endpoint, bytes, None).await?;
        ensure!(
            code == 412,
            "{}: {code} {}",
            e.path().display(),
            String::from_utf8_lossy(&body)
        );
        n += 1;
    }
    ensure!(n > 0, "no captures in {}", dir.display());
    Ok(())
}

/// With `apple_accept_user_authenticate`, the registered user's
/// UserAuthenticate gets a zero-length DigestChallenge (manage the user
/// without a password digest), the follow-up with a DigestResponse an empty
/// 200, and the user channel's TokenUpdate is accepted; another user is
/// declined (410) and gets no channel.
pub async fn user_authenticate_accepted(dir: std::path::PathBuf) -> TestResult {
    let env = [
        (
            "MDM_APPLE_ACCEPT_USER_AUTHENTICATE".to_string(),
            "true".to_string(),
        ),
        (
            "MDM_MDM_TOPIC".to_string(),
            crate::apple_device::TOPIC.to_string(),
        ),
    ];
    let s = Server::start_with_env("userauth", &dir, None, &env)?;
    let result = user_authenticate_flow(&s).await;
    s.stop();
    result
}

async fn user_authenticate_flow(s: &Server) -> TestResult {
    let f = fixture(s).await?;
    let u = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/users", f.slug),
                json!({ "email": "carol@example.com", "display_name": "Carol Example" }),
            )
            .await?,
        201,
        "user",
    )?;
    let (mac, id) = enrolled(s, &f, "macos", u["id"].as_str()).await?;
    drain(&mac).await?;
    let mut carol = mac.clone();
    carol.user = Some(("CA401-GUID".into(), "carol".into(), "Carol Example".into()));
    let (status, answer) = carol.send("checkin", user_authenticate(None)).await?;
    ensure!(status == 200, "UserAuthenticate accepted: {status}");
    let challenge = mdm_apple::decode_plist(&answer)
        .map_err(|e| e.to_string())?
        .into_dictionary()
        .ok_or("a plist dictionary")?;
    ensure!(
        challenge.get("DigestChallenge").and_then(|v| v.as_string()) == Some(""),
        "a zero-length DigestChallenge: {challenge:?}"
    );
    let (status, answer) = carol
        .send("checkin", user_authenticate(Some("Digest carol")))
        .await?;
    ensure!(
        status == 200 && answer.is_empty(),
        "the DigestResponse is taken: {status}"
    );
    ensure!(carol.token_update().await? == 200, "Carol's user channel");

    let mut dave = mac.clone();
    dave.user = Some(("DA7E-GUID".into(), "dave".into(), "Dave".into()));
    let (status, _) = dave.send("checkin", user_authenticate(None)).await?;
    ensure!(status == 410, "another user is declined: {status}");
    let d = device(&f, &id).await?;
    let channels = d["enrollments"].as_array().cloned().unwrap_or_default();
    ensure!(
        channels.len() == 2 && channels[1]["id"] == format!("{}:CA401-GUID", mac.udid),
        "only Carol's channel: {d}"
    );
    Ok(())
}

fn user_authenticate(digest: Option<&str>) -> Dictionary {
    let mut d = Dictionary::new();
    d.insert("MessageType".into(), text("UserAuthenticate"));
    if let Some(r) = digest {
        d.insert("DigestResponse".into(), text(r));
    }
    d
}
