//! The registration funnel over the API: one registration carries a user
//! from the invitation through PIN, sign-in, profile, certificate and
//! check-in to active; the funnel counts per stage, platform and day; the
//! stalled list; "remind now" delivering the reminder mail through the real
//! SMTP server; precise refusals for bad input.

use crate::api::Fixture;
use crate::client::expect;
use crate::directory_go::iphone_enrols_for;
use crate::ensure;
use crate::invites::urlencoded;
use crate::invites::{add_user, csrf_of, email, env, get_page, invited, post_form, session_cookie};
use crate::support::{Server, TestResult};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The id of the user with `email`.
pub(crate) async fn user_id(f: &Fixture, email: &str) -> Result<String, String> {
    let page = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/users?q={email}", f.slug))
            .await?,
        200,
        "users",
    )?;
    page["items"]
        .as_array()
        .and_then(|a| a.iter().find(|u| u["email"] == email))
        .and_then(|u| u["id"].as_str())
        .map(str::to_string)
        .ok_or(format!("no user {email} in {page}"))
}

/// The registrations of a user, newest first.
pub(crate) async fn registrations_of(f: &Fixture, user: &str) -> Result<Vec<Value>, String> {
    let page = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/registrations?user_id={user}",
                f.slug
            ))
            .await?,
        200,
        "registrations",
    )?;
    Ok(page["items"].as_array().cloned().unwrap_or_default())
}

/// Every stage of the funnel is stamped on `reg`.
pub(crate) fn has_every_stage(reg: &Value) -> Result<(), String> {
    for stage in [
        "invited_at",
        "pin_used_at",
        "signed_in_at",
        "profile_downloaded_at",
        "certificate_issued_at",
        "checked_in_at",
        "active_at",
    ] {
        ensure!(reg[stage].is_string(), "{stage} missing in {reg}");
    }
    ensure!(reg["status"] == "active", "active: {reg}");
    Ok(())
}

/// Signs in on `/go` with the PIN, chooses a password and downloads the iOS profile.
async fn pin_password_profile(link: &str, addr: &str, pin: &str) -> Result<Vec<u8>, String> {
    let (status, _, headers) = post_form(
        &format!("{link}/sign-in"),
        &[("email", addr), ("secret", pin)],
        None,
    )
    .await?;
    ensure!(status == 303, "PIN sign-in: {status}");
    let cookie = session_cookie(&headers)?;
    let http = reqwest::Client::new();
    let csrf = csrf_of(&get_page(&http, link, &cookie).await?)?;
    let pw = "funnel password 1";
    let (status, _, _) = post_form(
        &format!("{link}/password"),
        &[("csrf", &csrf), ("password", pw), ("confirm", pw)],
        Some(&cookie),
    )
    .await?;
    ensure!(status == 303, "set password: {status}");
    let csrf = csrf_of(&get_page(&http, link, &cookie).await?)?;
    let res = http
        .post(format!("{link}/profile"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(&[("csrf", csrf.as_str()), ("platform", "ios")]))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(res.status().as_u16() == 200, "download: {}", res.status());
    Ok(res.bytes().await.map_err(|e| e.to_string())?.to_vec())
}

pub async fn funnel_stalled_and_remind_now(s: Arc<Server>) -> TestResult {
    let f = crate::api::fixture(&s).await?;
    let t = |p: &str| format!("/api/v1/tenants/{}/{p}", f.slug);
    // Ann is invited and never comes back; Bob goes all the way.
    let ann = email();
    add_user(&f, &ann, None, true).await?;
    let bob = email();
    let (link, pin, _) = invited(&f, &bob).await?;
    let profile = pin_password_profile(&link, &bob, &pin).await?;
    let bob_id = user_id(&f, &bob).await?;
    iphone_enrols_for(&f, &reqwest::Client::new(), &profile, 5101, &bob_id).await?;
    let regs = registrations_of(&f, &bob_id).await?;
    ensure!(
        regs.len() == 1,
        "one registration carries the whole funnel: {regs:?}"
    );
    has_every_stage(&regs[0])?;
    ensure!(regs[0]["platform"] == "ios", "platform: {}", regs[0]);
    let bob_reg = regs[0]["id"].as_str().ok_or("id")?.to_string();

    let funnel = expect(f.api.get(&t("registrations/funnel")).await?, 200, "funnel")?;
    let total = &funnel["total"];
    ensure!(
        total["registrations"] == 2
            && total["invited"] == 2
            && total["pin_used"] == 1
            && total["signed_in"] == 1
            && total["profile_downloaded"] == 1
            && total["certificate_issued"] == 1
            && total["checked_in"] == 1
            && total["active"] == 1
            && total["open"] == 1,
        "funnel: {funnel}"
    );
    let platforms: Vec<&str> = funnel["by_platform"]
        .as_array()
        .map(|a| a.iter().filter_map(|p| p["platform"].as_str()).collect())
        .unwrap_or_default();
    ensure!(platforms == ["ios", "unknown"], "platforms: {funnel}");
    ensure!(
        funnel["by_day"]
            .as_array()
            .is_some_and(|d| d.len() == 1 && d[0]["registrations"] == 2),
        "by day: {funnel}"
    );
    let ios = expect(
        f.api.get(&t("registrations/funnel?platform=ios")).await?,
        200,
        "ios",
    )?;
    ensure!(ios["total"]["registrations"] == 1, "ios only: {ios}");

    // Stalled: Ann, at "invited", once the threshold allows it.
    let stalled = expect(
        f.api
            .get(&t("registrations/stalled?older_than_secs=0"))
            .await?,
        200,
        "stalled",
    )?;
    let items = stalled["items"].as_array().cloned().unwrap_or_default();
    ensure!(
        items.len() == 1 && items[0]["email"] == ann.as_str() && items[0]["stage"] == "invited",
        "stalled: {stalled}"
    );
    let ann_reg = items[0]["registration_id"]
        .as_str()
        .ok_or("id")?
        .to_string();
    let day = expect(
        f.api.get(&t("registrations/stalled")).await?,
        200,
        "stalled",
    )?;
    ensure!(
        day["items"].as_array().is_some_and(Vec::is_empty),
        "not a day old: {day}"
    );

    // Remind now: the reminder mail reaches Ann through SMTP.
    let r = f
        .api
        .post(&t(&format!("registrations/{ann_reg}/remind")), json!({}))
        .await?;
    let queued = expect(r, 202, "remind now")?;
    ensure!(queued["reminder"] == 1, "{queued}");
    let smtp = &env()?.smtp;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mails = smtp.messages_to(&ann);
        if mails
            .iter()
            .any(|m| m.contains("Reminder: finish registering"))
        {
            let m = mails
                .iter()
                .find(|m| m.contains("Reminder"))
                .ok_or("mail")?;
            ensure!(m.contains(&format!("/enroll/{}/", f.slug)), "the link: {m}");
            break;
        }
        ensure!(
            std::time::Instant::now() < deadline,
            "no reminder mail for {ann}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let reg = expect(
        f.api.get(&t(&format!("registrations/{ann_reg}"))).await?,
        200,
        "reg",
    )?;
    ensure!(
        reg["reminders_sent"] == 1 && reg["last_reminded_at"].is_string(),
        "{reg}"
    );
    // Bob's registration is complete: nothing to remind.
    let r = f
        .api
        .post(&t(&format!("registrations/{bob_reg}/remind")), json!({}))
        .await?;
    ensure!(
        r.status == 409 && r.code() == "registration_not_remindable",
        "{} {}",
        r.status,
        r.text
    );

    // Precise refusals.
    for (path, status) in [
        (
            "registrations/funnel?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
            422,
        ),
        (
            "registrations/funnel?from=2025-01-01T00:00:00Z&to=2026-12-01T00:00:00Z",
            422,
        ),
        ("registrations/stalled?limit=0", 422),
        ("registrations/stalled?older_than_secs=-1", 422),
    ] {
        let r = f.api.get(&t(path)).await?;
        ensure!(r.status == status, "{path}: {} {}", r.status, r.text);
    }
    let r = f.api.get(&t("registrations/stalled?stage=nowhere")).await?;
    ensure!(
        r.status == 400 || r.status == 422,
        "unknown stage: {} {}",
        r.status,
        r.text
    );
    let r = f
        .api
        .post(&t("registrations/reg-nope/remind"), json!({}))
        .await?;
    ensure!(
        r.status == 404,
        "unknown registration: {} {}",
        r.status,
        r.text
    );
    let r = f
        .api
        .send(
            "PATCH",
            &t("settings"),
            Some(json!({ "reminder_interval_secs": 5 })),
        )
        .await?;
    ensure!(
        r.status == 422,
        "interval too short: {} {}",
        r.status,
        r.text
    );
    // The reminder template is editable like the invitation's.
    let bad = json!({"subject": "Hi", "text": "no link", "html": "<p>no link</p>"});
    let r = f
        .api
        .send("PUT", &t("mail-templates/reminder"), Some(bad))
        .await?;
    ensure!(
        r.status == 422,
        "template without the link: {} {}",
        r.status,
        r.text
    );
    let good = json!({"subject": "Finish, {{ name }}", "text": "Go: {{ registration_url }}", "html": "<a href=\"{{ registration_url }}\">go</a>"});
    let v = expect(
        f.api
            .send("PUT", &t("mail-templates/reminder"), Some(good))
            .await?,
        200,
        "template",
    )?;
    ensure!(v["is_default"] == false, "{v}");
    Ok(())
}
