//! The portal's "My devices" page in headless Chromium: a user sees their
//! own enrolled device as active and their registration in progress, and
//! nothing of another user's.

use crate::browser::IPHONE_UA;
use crate::client::{Api, expect};
use crate::directory_go::iphone_enrols_for;
use crate::ensure;
use crate::funnel::user_id;
use crate::invites::{add_user, email, env, wait_for};
use crate::support::{Server, TestResult};
use fantoccini::Locator;
use serde_json::json;
use std::sync::Arc;

/// The app registers `addr` on `platform`; the profile link is downloaded
/// and a simulated iPhone enrols with it when `enrol` is set.
async fn app_device(
    f: &crate::api::Fixture,
    s: &Server,
    addr: &str,
    seed: u64,
    enrol: bool,
) -> TestResult {
    let body = json!({"platform": "ios", "os_version": "17.4", "email": addr, "password": "first password 1"});
    let path = format!("/app/v1/tenants/{}/register", f.slug);
    let next = expect(Api::new(&s.base, None).post(&path, body).await?, 200, "app")?;
    if !enrol {
        return Ok(());
    }
    let http = reqwest::Client::new();
    let link = next["profile_url"].as_str().ok_or("profile_url")?;
    let profile = http.get(link).send().await.map_err(|e| e.to_string())?;
    let profile = profile.bytes().await.map_err(|e| e.to_string())?;
    let uid = user_id(f, addr).await?;
    iphone_enrols_for(f, &http, &profile, seed, &uid).await?;
    Ok(())
}

pub async fn portal_lists_my_devices(s: Arc<Server>) -> TestResult {
    let driver = env()?.chromedriver.as_ref().map_err(|e| e.clone())?;
    let f = crate::api::fixture(&s).await?;
    let (cara, dan) = (email(), email());
    for u in [&cara, &dan] {
        add_user(&f, u, Some("first password 1"), false).await?;
    }
    app_device(&f, &s, &cara, 5401, true).await?;
    app_device(&f, &s, &dan, 5402, true).await?;
    // Cara starts registering a second device in the app.
    app_device(&f, &s, &cara, 0, false).await?;
    let c = driver.session(IPHONE_UA).await?;
    let portal = format!("{}/portal/{}", s.base, f.slug);
    let result = async {
        let e = |e: fantoccini::error::CmdError| e.to_string();
        c.goto(&portal).await.map_err(e)?;
        let fill = |sel: &'static str, text: String| {
            let c = c.clone();
            async move {
                c.find(Locator::Css(sel))
                    .await
                    .map_err(e)?
                    .send_keys(&text)
                    .await
                    .map_err(e)
            }
        };
        let click = |sel: &'static str| {
            let c = c.clone();
            async move {
                c.find(Locator::Css(sel))
                    .await
                    .map_err(e)?
                    .click()
                    .await
                    .map_err(e)
            }
        };
        fill("#email", cara.clone()).await?;
        fill("#secret", "first password 1".into()).await?;
        click("#sign-in").await?;
        // The administrator's password is temporary: choose one first.
        if let Err(w) = wait_for(&c, "#set-password").await {
            return Err(format!("{w}: {}", c.source().await.map_err(e)?));
        }
        fill("#password", "my portal password".into()).await?;
        fill("#confirm", "my portal password".into()).await?;
        click("#set-password").await?;
        wait_for(&c, "#my-devices").await?;
        click("#my-devices").await?;
        wait_for(&c, "#devices").await?;
        let devices = c.find_all(Locator::Css("li.device")).await.map_err(e)?;
        ensure!(
            devices.len() == 1,
            "only Cara's own device: {}",
            devices.len()
        );
        let status = c.find(Locator::Css(".device-status")).await.map_err(e)?;
        let text = status.text().await.map_err(e)?;
        let code = status.attr("data-status").await.map_err(e)?;
        ensure!(
            text == "Active" && code.as_deref() == Some("active"),
            "status: {text} {code:?}"
        );
        let stage = c
            .find(Locator::Css(".registration-stage"))
            .await
            .map_err(e)?;
        let code = stage.attr("data-stage").await.map_err(e)?;
        ensure!(
            code.as_deref() == Some("signed_in"),
            "in progress: {code:?}"
        );
        let page = c.source().await.map_err(e)?;
        ensure!(page.contains("iPhone or iPad"), "platform in words: {page}");
        Ok::<_, String>(())
    }
    .await;
    let _ = c.close().await;
    result?;
    // Without a session the page sends the browser to sign in.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?
        .get(format!("{portal}/devices"))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(r.status().as_u16() == 303, "no session: {}", r.status());
    Ok(())
}
