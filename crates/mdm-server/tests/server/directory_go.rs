//! A directory user registers a device on `/go` with network credentials:
//! the sign-in is a search and bind against the real slapd (no password is
//! stored here), the page hands out the management profile, and a
//! simulated iPhone enrols with it for that user.

use crate::api::{Fixture, fixture};
use crate::browser::IPHONE_UA;
use crate::client::expect;
use crate::directory::{branch, by_email, configure, mail, settings, sync, users};
use crate::ensure;
use crate::invites::{csrf_of, get_page, post_form, session_cookie, urlencoded};
use crate::sim_lifecycle::device_record;
use crate::slapd::slapd;
use crate::support::{Server, TestResult};
use mdm_sim::{Device, DeviceFacts, DeviceState};
use std::sync::Arc;

pub async fn directory_user_registers_on_go(s: Arc<Server>) -> TestResult {
    let slapd = slapd()?;
    let f = fixture(&s).await?;
    let b = branch(slapd, &[("dana", "dana-network-pw")])?;
    configure(&f, &settings(slapd, &slapd.ldap_url, "starttls", &b.base)).await?;
    sync(&f).await?;
    let dana = mail(&b, "dana");
    let all = users(&f).await?;
    let user = by_email(&all, &dana)?;
    ensure!(
        user["source"] == "ldap",
        "imported from the directory: {user}"
    );
    let user_id = user["id"].as_str().ok_or("user id")?.to_string();

    let url = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/enrollment-url", f.slug))
            .await?,
        200,
        "enrollment url",
    )?;
    let go = url["registration_url"]
        .as_str()
        .ok_or(format!("no registration_url in {url}"))?
        .to_string();

    // A wrong network password is refused like any wrong password.
    let (status, page, _) = post_form(
        &format!("{go}/sign-in"),
        &[("email", &dana), ("secret", "not-dana")],
        None,
    )
    .await?;
    ensure!(
        status != 303 && !page.contains("Install the management profile"),
        "wrong network password: {status} {page}"
    );
    let (status, _, headers) = post_form(
        &format!("{go}/sign-in"),
        &[("email", &dana), ("secret", "dana-network-pw")],
        None,
    )
    .await?;
    ensure!(status == 303, "sign-in with network credentials: {status}");
    let cookie = session_cookie(&headers)?;
    let http = reqwest::Client::new();
    let page = get_page(&http, &go, &cookie).await?;
    // No password to choose: the directory holds it.
    ensure!(
        page.contains("Install the management profile") && !page.contains("Choose a password"),
        "profile page for a directory user: {page}"
    );
    let csrf = csrf_of(&page)?;
    let res = http
        .post(format!("{go}/profile"))
        .header("cookie", &cookie)
        .header("user-agent", IPHONE_UA)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(&[("csrf", csrf.as_str()), ("platform", "ios")]))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(res.status().as_u16() == 200, "download: {}", res.status());
    let profile = res.bytes().await.map_err(|e| e.to_string())?;

    iphone_enrols_for(&f, &http, &profile, 41, &user_id).await?;
    Ok(())
}

/// A simulated iPhone enrols with a profile a user downloaded; its device
/// record must be active and registered for `user_id`. Returns the record.
pub(crate) async fn iphone_enrols_for(
    f: &Fixture,
    http: &reqwest::Client,
    profile: &[u8],
    seed: u64,
    user_id: &str,
) -> Result<serde_json::Value, String> {
    let mut phone = Device::new(DeviceFacts::iphone(seed), http.clone());
    phone
        .enroll(profile)
        .await
        .map_err(|e| format!("enrolment with the downloaded profile: {e}"))?;
    ensure!(phone.state() == DeviceState::Enrolled, "enrolled");
    let record = device_record(f, phone.udid()).await?;
    ensure!(
        record["status"] == "active" && record["user_id"] == user_id,
        "active and registered for the user: {record}"
    );
    Ok(record)
}
