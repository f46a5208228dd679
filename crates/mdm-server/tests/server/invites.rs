//! Invitations end to end: mail through a real SMTP server, the `/go`
//! pages in headless Chromium, PINs that work once, refusals that say what
//! happened, throttling, the portal's QR code and the client-app API.

use crate::api::{Fixture, fixture};
use crate::browser::IPHONE_UA;
use crate::client::{Api, expect};
use crate::ensure;
use crate::smtp::link_and_pin;
use crate::support::{Server, TestResult, uuid_hex};
use fantoccini::Locator;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub(crate) fn env() -> Result<&'static crate::InviteEnv, String> {
    crate::INVITE_ENV
        .get()
        .ok_or("the SMTP fixture is not available".into())
}

/// Adds a user (optionally with a password) and returns its id.
pub(crate) async fn add_user(
    f: &Fixture,
    email: &str,
    password: Option<&str>,
    invite: bool,
) -> Result<Value, String> {
    let mut body = json!({ "email": email, "display_name": "Ann <Tester>" });
    if let Some(p) = password {
        body["password"] = json!(p);
    }
    let path = format!(
        "/api/v1/tenants/{}/users{}",
        f.slug,
        if invite { "?invite=true" } else { "" }
    );
    expect(f.api.post(&path, body).await?, 201, "add user")
}

/// Invites `email` (added without a password) and returns the link and PIN of the delivered mail.
pub(crate) async fn invited(f: &Fixture, email: &str) -> Result<(String, String, String), String> {
    add_user(f, email, None, true).await?;
    let msg = env()?
        .smtp
        .message_to(email, Duration::from_secs(30))
        .await?;
    let (link, pin) = link_and_pin(&msg)?;
    Ok((link, pin.ok_or(format!("no PIN in {msg}"))?, msg))
}

pub(crate) fn email() -> String {
    format!("u{}@example.com", uuid_hex())
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub(crate) fn urlencoded(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Posts a form without following redirects.
pub(crate) async fn post_form(
    url: &str,
    form: &[(&str, &str)],
    cookie: Option<&str>,
) -> Result<(u16, String, reqwest::header::HeaderMap), String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(form))
        .header("user-agent", IPHONE_UA);
    if let Some(c) = cookie {
        req = req.header("cookie", c);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    Ok((
        status,
        res.text().await.map_err(|e| e.to_string())?,
        headers,
    ))
}

/// The `name=value` of the session cookie a sign-in set.
pub(crate) fn session_cookie(headers: &reqwest::header::HeaderMap) -> Result<String, String> {
    headers
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .ok_or("no session cookie".into())
}

/// A page fetched with the session cookie, as a phone would.
pub(crate) async fn get_page(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
) -> Result<String, String> {
    http.get(url)
        .header("cookie", cookie)
        .header("user-agent", IPHONE_UA)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())
}

/// The per-session form token of a page.
pub(crate) fn csrf_of(page: &str) -> Result<String, String> {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|v| v.split('"').next())
        .map(str::to_string)
        .ok_or(format!("no csrf token in {page}"))
}

fn verify_cms(profile: &[u8]) -> Result<String, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let (input, output) = (dir.path().join("p.mobileconfig"), dir.path().join("p.xml"));
    std::fs::write(&input, profile).map_err(|e| e.to_string())?;
    let out = std::process::Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-noverify", "-in"])
        .arg(&input)
        .arg("-out")
        .arg(&output)
        .output()
        .map_err(|e| e.to_string())?;
    ensure!(
        out.status.success(),
        "openssl cms -verify: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&output).map_err(|e| e.to_string())
}

/// Waits (up to 30 s, the machine may be busy) until the page after a click shows `css`.
pub(crate) async fn wait_for(c: &fantoccini::Client, css: &str) -> Result<(), String> {
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(css))
        .await
        .map(|_| ())
        .map_err(|e| format!("waiting for {css}: {e}"))
}

/// The whole web registration in Chromium: mail → link → PIN → password → profile.
pub async fn browser_registration(s: Arc<Server>) -> TestResult {
    let driver = env()?.chromedriver.as_ref().map_err(|e| e.clone())?;
    let f = fixture(&s).await?;
    let addr = email();
    let (link, pin, msg) = invited(&f, &addr).await?;
    ensure!(
        msg.contains("Test tenant") && msg.contains("Content-Type: text/html"),
        "mail: {msg}"
    );
    ensure!(
        msg.contains("Ann &lt;Tester&gt;"),
        "the HTML part escapes the name: {msg}"
    );
    let c = driver.session(IPHONE_UA).await?;
    let result = async {
        c.goto(&link).await.map_err(|e| e.to_string())?;
        let h1 = c
            .find(Locator::Css("h1"))
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        ensure!(h1.contains("Register with Test tenant"), "first page: {h1}");
        let fill = |sel: &'static str, text: String| {
            let c = c.clone();
            async move {
                c.find(Locator::Css(sel))
                    .await
                    .map_err(|e| e.to_string())?
                    .send_keys(&text)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        fill("#email", addr.clone()).await?;
        fill("#secret", pin.clone()).await?;
        c.find(Locator::Css("#sign-in"))
            .await
            .map_err(|e| e.to_string())?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        wait_for(&c, "#set-password").await?;
        let h1 = c
            .find(Locator::Css("h1"))
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        ensure!(h1 == "Choose a password", "after the PIN: {h1}");
        fill("#password", "short".into()).await?;
        fill("#confirm", "short".into()).await?;
        c.find(Locator::Css("#set-password"))
            .await
            .map_err(|e| e.to_string())?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        wait_for(&c, "#password-error").await?;
        let err = c
            .find(Locator::Css("#password-error"))
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        ensure!(err.contains("at least 8"), "error next to the field: {err}");
        fill("#password", "correct horse battery".into()).await?;
        fill("#confirm", "correct horse battery".into()).await?;
        c.find(Locator::Css("#set-password"))
            .await
            .map_err(|e| e.to_string())?
            .click()
            .await
            .map_err(|e| e.to_string())?;
        wait_for(&c, "#download").await?;
        let page = c.source().await.map_err(|e| e.to_string())?;
        ensure!(
            page.contains("Install the management profile")
                && page.contains("valid for 10 minutes")
                && page.contains("The SCEP server returned an invalid response"),
            "profile page: {page}"
        );
        let csrf = c
            .find(Locator::Css("input[name=csrf]"))
            .await
            .map_err(|e| e.to_string())?
            .attr("value")
            .await
            .map_err(|e| e.to_string())?
            .ok_or("no csrf")?;
        let cookie = c
            .get_named_cookie("mdm_go")
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>((csrf, format!("mdm_go={}", cookie.value())))
    }
    .await;
    let _ = c.close().await;
    let (csrf, cookie) = result?;
    // Download with the browser's session, as Safari would.
    let (status, _, _) = post_form(
        &format!("{link}/profile"),
        &[("csrf", "forged"), ("platform", "ios")],
        Some(&cookie),
    )
    .await?;
    ensure!(status == 403, "a forged form token is refused: {status}");
    let res = reqwest::Client::new()
        .post(format!("{link}/profile"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(urlencoded(&[("csrf", csrf.as_str()), ("platform", "ios")]))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(res.status().as_u16() == 200, "download: {}", res.status());
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    ensure!(
        ct == "application/x-apple-aspen-config",
        "content type {ct}"
    );
    let body = res.bytes().await.map_err(|e| e.to_string())?;
    let xml = verify_cms(&body)?;
    ensure!(
        xml.contains("com.apple.security.scep") && xml.contains("com.apple.mdm"),
        "profile: {xml}"
    );
    // A simulated iPhone completes the enrolment with the browser's profile,
    // and one registration carries every stage of the funnel.
    let uid = crate::funnel::user_id(&f, &addr).await?;
    crate::directory_go::iphone_enrols_for(&f, &reqwest::Client::new(), &body, 5201, &uid).await?;
    let regs = crate::funnel::registrations_of(&f, &uid).await?;
    ensure!(regs.len() == 1, "one registration: {regs:?}");
    crate::funnel::has_every_stage(&regs[0])?;
    // The funnel so far, in the audit trail.
    let audit = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/audit?limit=50", f.slug))
            .await?,
        200,
        "audit",
    )?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["action"].as_str()).collect())
        .unwrap_or_default();
    for want in [
        "invitation.created",
        "invitation.sent",
        "pin.redeemed",
        "signin.succeeded",
        "user.password_set",
        "profile.issued",
    ] {
        ensure!(actions.contains(&want), "{want} missing from {actions:?}");
    }
    Ok(())
}

/// A PIN works exactly once, also when 20 browsers send it at the same moment.
pub async fn pin_works_once_under_concurrency(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let addr = email();
    let (link, pin, _) = invited(&f, &addr).await?;
    let url = format!("{link}/sign-in");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (url, addr, pin) = (url.clone(), addr.clone(), pin.clone());
        tasks.spawn(
            async move { post_form(&url, &[("email", &addr), ("secret", &pin)], None).await },
        );
    }
    let mut statuses = Vec::new();
    while let Some(j) = tasks.join_next().await {
        let (status, body, _) = j.map_err(|e| e.to_string())??;
        ensure!(
            status == 303 || body.contains("already been used"),
            "{status}: {body}"
        );
        statuses.push(status);
    }
    ensure!(
        statuses.iter().filter(|s| **s == 303).count() == 1,
        "exactly one success: {statuses:?}"
    );
    ensure!(
        statuses.iter().filter(|s| **s == 410).count() == 19,
        "the rest are told it was used: {statuses:?}"
    );
    Ok(())
}

/// An expired PIN, a stale enrollment URL and a locked-out user each get their own clear answer.
pub async fn refusals_are_clear(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    // Expired PIN: the database says it expired a second ago.
    let addr = email();
    let (link, pin, _) = invited(&f, &addr).await?;
    expire_pins(&s, &addr).await?;
    let (status, body, _) = post_form(
        &format!("{link}/sign-in"),
        &[("email", &addr), ("secret", &pin)],
        None,
    )
    .await?;
    ensure!(
        status == 410 && body.contains("This PIN has expired") && body.contains("secret-error"),
        "expired: {status} {body}"
    );

    // Unknown email and wrong password look the same.
    let (known, unknown) = (email(), email());
    add_user(&f, &known, Some("the right password"), false).await?;
    let (s1, b1, _) = post_form(
        &format!("{link}/sign-in"),
        &[("email", &known), ("secret", "wrong password")],
        None,
    )
    .await?;
    let (s2, b2, _) = post_form(
        &format!("{link}/sign-in"),
        &[("email", &unknown), ("secret", "wrong password")],
        None,
    )
    .await?;
    ensure!(s1 == 401 && s1 == s2, "{s1} {s2}");
    ensure!(
        b1.replace(&known, "") == b2.replace(&unknown, ""),
        "same page for an unknown email:\n{b1}\n{b2}"
    );

    // Lockout after 5 failures, even with the right password; audited.
    for _ in 0..4 {
        post_form(
            &format!("{link}/sign-in"),
            &[("email", &known), ("secret", "wrong again")],
            None,
        )
        .await?;
    }
    let (status, body, _) = post_form(
        &format!("{link}/sign-in"),
        &[("email", &known), ("secret", "the right password")],
        None,
    )
    .await?;
    ensure!(
        status == 429 && body.contains("Too many failed attempts"),
        "locked: {status} {body}"
    );
    let app = Api::new(&s.base, None);
    let r = app.post(&format!("/app/v1/tenants/{}/register", f.slug), json!({"platform": "ios", "os_version": "17.4", "email": known, "password": "the right password"})).await?;
    ensure!(
        r.status == 429 && r.code() == "locked_out",
        "app locked too: {} {}",
        r.status,
        r.text
    );
    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=signin.locked_out",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    ensure!(
        crate::client::count(&audit) == 1,
        "one lockout entry: {audit}"
    );

    // Stale enrollment URL: a clear page, for the form too.
    expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/enrollment-url/regenerate", f.slug),
                json!(null),
            )
            .await?,
        200,
        "regenerate",
    )?;
    let r = reqwest::Client::new()
        .get(&link)
        .header("user-agent", IPHONE_UA)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let (st, text) = (
        r.status().as_u16(),
        r.text().await.map_err(|e| e.to_string())?,
    );
    ensure!(
        st == 410 && text.contains("out of date") && text.contains("<h1>"),
        "stale: {st} {text}"
    );
    let (status, body, _) = post_form(
        &format!("{link}/sign-in"),
        &[("email", &known), ("secret", "x")],
        None,
    )
    .await?;
    ensure!(
        status == 410 && body.contains("out of date"),
        "stale form: {status} {body}"
    );
    Ok(())
}

async fn expire_pins(s: &Server, email: &str) -> TestResult {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&s.database_url)
        .await
        .map_err(|e| e.to_string())?;
    let past = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE invitations SET pin_expires_at = {past} WHERE user_id IN (SELECT id FROM users WHERE email = '{email}')"
    )))
    .execute(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// The portal's QR code: refused on Android 8 and iOS 13 (and not spent), works once on newer.
pub async fn qr_registration_and_app_api(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let addr = email();
    add_user(&f, &addr, Some("portal password"), false).await?;
    let portal = format!("{}/portal/{}", s.base, f.slug);
    let (status, _, headers) = post_form(
        &format!("{portal}/sign-in"),
        &[("email", &addr), ("secret", "portal password")],
        None,
    )
    .await?;
    ensure!(status == 303, "portal sign-in: {status}");
    let cookie = session_cookie(&headers)?;
    // A temporary password must be changed first.
    let http = reqwest::Client::new();
    let page = get_page(&http, &portal, &cookie).await?;
    ensure!(
        page.contains("Choose a password"),
        "temporary password: {page}"
    );
    let csrf = csrf_of(&page)?;
    let (status, _, _) = post_form(
        &format!("{portal}/password"),
        &[
            ("csrf", &csrf),
            ("password", "my own password"),
            ("confirm", "my own password"),
        ],
        Some(&cookie),
    )
    .await?;
    ensure!(status == 303, "set password: {status}");
    let home = get_page(&http, &portal, &cookie).await?;
    ensure!(home.contains("Install Management Profile"), "home: {home}");
    let qr = || async {
        let page = http
            .get(format!("{portal}/qr"))
            .header("cookie", &cookie)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .text()
            .await
            .map_err(|e| e.to_string())?;
        ensure!(page.contains("<svg"), "QR page: {page}");
        let payload = page
            .split("id=\"qr-payload\">")
            .nth(1)
            .and_then(|v| v.split('<').next())
            .ok_or("payload")?
            .replace("&quot;", "\"")
            .replace("&#34;", "\"");
        let v: Value = serde_json::from_str(&payload).map_err(|e| format!("{e}: {payload}"))?;
        Ok::<_, String>(v["token"].as_str().unwrap_or_default().to_string())
    };
    let app = Api::new(&s.base, None);
    let register = format!("/app/v1/tenants/{}/register", f.slug);
    let token = qr().await?;
    for (platform, version) in [("android", "8.1"), ("ios", "13.7"), ("ipados", "13")] {
        let r = app
            .post(
                &register,
                json!({"platform": platform, "os_version": version, "qr_token": token}),
            )
            .await?;
        ensure!(
            r.status == 422 && r.code() == "qr_unsupported_os" && r.text.contains("or later"),
            "{platform} {version}: {} {}",
            r.status,
            r.text
        );
    }
    let r = app
        .post(
            &register,
            json!({"platform": "android", "os_version": "9", "qr_token": token}),
        )
        .await?;
    let next = expect(r, 200, "android 9")?;
    ensure!(
        next["next"] == "register_agent" && next["email"] == addr.as_str(),
        "{next}"
    );
    let r = app
        .post(
            &register,
            json!({"platform": "android", "os_version": "14", "qr_token": token}),
        )
        .await?;
    ensure!(
        r.status == 410 && r.code() == "qr_used",
        "single use: {} {}",
        r.status,
        r.text
    );
    // iOS: a one-time profile link.
    let token = qr().await?;
    let next = expect(
        app.post(
            &register,
            json!({"platform": "ios", "os_version": "17.4", "qr_token": token}),
        )
        .await?,
        200,
        "ios",
    )?;
    ensure!(next["next"] == "install_profile", "{next}");
    let link = next["profile_url"].as_str().ok_or("profile_url")?;
    let res = http.get(link).send().await.map_err(|e| e.to_string())?;
    ensure!(
        res.status().as_u16() == 200,
        "profile link: {}",
        res.status()
    );
    verify_cms(&res.bytes().await.map_err(|e| e.to_string())?)?;
    let again = Api::new("", None).get(link).await?;
    ensure!(
        again.status == 410 && again.code() == "profile_link_used",
        "link works once: {} {}",
        again.status,
        again.text
    );
    // Password registration from the app.
    let r = app.post(&register, json!({"platform": "macos", "os_version": "14.4", "email": addr, "password": "my own password"})).await?;
    ensure!(
        expect(r, 200, "mac password")?["next"] == "install_profile",
        "mac"
    );
    let r = app
        .post(
            &register,
            json!({"platform": "ios", "os_version": "17", "email": addr, "password": "nope"}),
        )
        .await?;
    ensure!(
        r.status == 401 && r.code() == "invalid_credentials",
        "{} {}",
        r.status,
        r.text
    );
    Ok(())
}

/// Invite by API and CLI, resend, the template, and the delivery listing.
pub async fn invitation_api_cli_and_template(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let path = format!("/api/v1/tenants/{}/mail-templates/invitation", f.slug);
    let bad = f.api.send("PUT", &path, Some(json!({"subject": "x", "text": "no link", "html": "{{ registration_url }} {{ pin_block }}"}))).await?;
    ensure!(
        bad.status == 422 && bad.text.contains("registration_url"),
        "{}",
        bad.text
    );
    let t = json!({"subject": "Welcome {{ name }}", "text": "Go to {{ registration_url }}\n{{ pin_block }}\n{{ password_block }}", "html": "<p>{{ name }}</p><p>{{ registration_url }}</p>{{ pin_block }}"});
    let view = expect(
        f.api.send("PUT", &path, Some(t)).await?,
        200,
        "put template",
    )?;
    ensure!(view["is_default"] == false, "{view}");
    let a = email();
    let b = email();
    let ua = add_user(&f, &a, None, false).await?;
    add_user(&f, &b, Some("already has one"), false).await?;
    let report = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/invitations", f.slug),
                json!({"all_not_registered": true, "temporary_password": true}),
            )
            .await?,
        201,
        "invite all",
    )?;
    ensure!(report["invited"] == 2, "{report}");
    let smtp = &env()?.smtp;
    let ma = smtp.message_to(&a, Duration::from_secs(30)).await?;
    ensure!(
        ma.contains("Subject: Welcome Ann <Tester>")
            && ma.contains("<p>Ann &lt;Tester&gt;</p>")
            && ma.contains("Your temporary password:"),
        "custom template: {ma}"
    );
    // With a temporary password the user has one: no PIN unless the settings require it.
    ensure!(
        link_and_pin(&ma)?.1.is_none(),
        "no PIN with a temporary password: {ma}"
    );
    let pw = ma
        .lines()
        .find_map(|l| l.trim().strip_prefix("Your temporary password: "))
        .ok_or("password")?
        .trim()
        .to_string();
    let app = Api::new(&s.base, None);
    let r = app
        .post(
            &format!("/app/v1/tenants/{}/register", f.slug),
            json!({"platform": "ios", "os_version": "17", "email": a, "password": pw}),
        )
        .await?;
    expect(r, 200, "temporary password signs in")?;
    // Resend makes a new invitation; the list shows delivery state.
    let list = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/invitations?user_id={}",
                f.slug,
                ua["id"].as_str().unwrap_or_default()
            ))
            .await?,
        200,
        "list",
    )?;
    let id = list["items"][0]["id"].as_str().ok_or("id")?.to_string();
    ensure!(
        list["items"][0]["delivery"] == "sent" && list["items"][0]["attempts"] == 1,
        "{list}"
    );
    let again = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/invitations/{id}/resend", f.slug),
                json!(null),
            )
            .await?,
        201,
        "resend",
    )?;
    ensure!(again["id"] != id.as_str(), "{again}");
    // The CLI queues too.
    let c = email();
    add_user(&f, &c, None, false).await?;
    let out = s.cli(&["invite", "--tenant", &f.slug, "--email", &c])?;
    ensure!(out.contains("queued 1 invitation"), "{out}");
    smtp.message_to(&c, Duration::from_secs(30)).await?;
    let listed = s.cli(&["invitation", "list", "--tenant", &f.slug])?;
    ensure!(listed.contains(&c), "{listed}");
    // Another tenant sees none of it.
    let other = fixture(&s).await?;
    let r = other
        .api
        .get(&format!("/api/v1/tenants/{}/invitations/{id}", f.slug))
        .await?;
    ensure!(r.status == 404, "isolation: {}", r.status);
    Ok(())
}

/// A send that fails is retried with backoff and visible to the admin
/// meanwhile; here the mail server (implicit TLS) only comes up after the
/// first attempt failed.
pub async fn failed_sends_are_retried_and_visible() -> TestResult {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = crate::smtp::free_port()?;
    crate::smtp::make_certs(&dir.path().join("certs"))?;
    let env = vec![
        ("MDM_SMTP_HOST".to_string(), "127.0.0.1".to_string()),
        ("MDM_SMTP_PORT".into(), port.to_string()),
        ("MDM_SMTP_SECURITY".into(), "tls".into()),
        (
            "MDM_SMTP_CA_FILE".into(),
            dir.path().join("certs/ca.pem").display().to_string(),
        ),
        ("MDM_SMTP_TIMEOUT_SECS".into(), "5".into()),
    ];
    let server = Arc::new(Server::start_with_env(
        "mailfail",
        &dir.path().join("data"),
        None,
        &env,
    )?);
    let f = fixture(&server).await?;
    let addr = email();
    add_user(&f, &addr, None, true).await?;
    let list_path = format!("/api/v1/tenants/{}/invitations", f.slug);
    let mut failed = Value::Null;
    for _ in 0..100 {
        let list = expect(f.api.get(&list_path).await?, 200, "list")?;
        if list["items"][0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            failed = list["items"][0].clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        failed["delivery"] == "queued"
            && failed["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("SMTP")),
        "visible failure: {failed}"
    );
    let smtp = crate::smtp::Smtp::start(dir.path(), port, true)?;
    let msg = smtp.message_to(&addr, Duration::from_secs(40)).await?;
    ensure!(link_and_pin(&msg)?.1.is_some(), "{msg}");
    let mut sent = Value::Null;
    for _ in 0..50 {
        sent = expect(f.api.get(&list_path).await?, 200, "list")?["items"][0].clone();
        if sent["delivery"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ensure!(
        sent["delivery"] == "sent"
            && sent["attempts"].as_i64().unwrap_or(0) >= 2
            && sent["last_error"].is_null(),
        "retried: {sent}"
    );
    server.stop();
    smtp.stop();
    Ok(())
}
