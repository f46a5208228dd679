//! Reminders (R15) with two `mdm serve` processes sharing one PostgreSQL:
//! users whose profile was never installed are reminded at the tenant's
//! interval up to its cap — by mail through the real SMTP server, by an
//! APNs alert to the iOS client app and an FCM message to the Android app —
//! each reminder exactly once although both servers scan; reminders stop
//! when the device enrols, and the others are given up, visibly.

use crate::api::{Fixture, fixture};
use crate::client::{Api, expect};
use crate::directory_go::iphone_enrols_for;
use crate::ensure;
use crate::fake_apns::{APP_TOPIC, FakeApns, FakeAuth};
use crate::fake_fcm::FakeFcm;
use crate::funnel::user_id;
use crate::invites::{add_user, email, env};
use crate::support::{PgDatabase, Server, TestResult, uuid_hex};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Reminder mails delivered to `to`.
fn reminders_to(to: &str) -> Result<usize, String> {
    Ok(env()?
        .smtp
        .messages_to(to)
        .iter()
        .filter(|m| m.contains("Reminder: finish registering"))
        .count())
}

/// Registers the client app of `addr` with a push token.
async fn app_register(
    f: &Fixture,
    base: &str,
    addr: &str,
    platform: &str,
    token: &str,
) -> Result<Value, String> {
    let mut body = json!({
        "platform": platform, "os_version": if platform == "android" { "14" } else { "17.4" },
        "email": addr, "password": "app password 1", "push_token": token,
    });
    if platform != "android" {
        body["push_topic"] = json!(APP_TOPIC);
    }
    let path = format!("/app/v1/tenants/{}/register", f.slug);
    expect(
        Api::new(base, None).post(&path, body).await?,
        200,
        "app register",
    )
}

async fn audit_count(f: &Fixture, action: &str) -> Result<usize, String> {
    let page = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action={action}&limit=100",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    Ok(page["items"].as_array().map_or(0, Vec::len))
}

fn copy_secret(from: &Path, to: &Path) -> Result<(), String> {
    std::fs::create_dir_all(to).map_err(|e| e.to_string())?;
    std::fs::copy(from.join("secret.key"), to.join("secret.key"))
        .map(|_| ())
        .map_err(|e| format!("sharing the server secret: {e}"))
}

pub async fn reminders_once_across_two_servers(
    pg_admin: Option<String>,
    dir: PathBuf,
) -> TestResult {
    let Some(admin) = pg_admin else {
        eprintln!("notice: two-server reminders skipped (MDM_TEST_POSTGRES_URL unset)");
        return Ok(());
    };
    let apns = FakeApns::start(FakeAuth::Token, &dir.join("apns")).await?;
    let fcm = FakeFcm::start(&dir.join("fcm")).await?;
    let mut vars = apns.config_env();
    vars.extend(fcm.config_env(&dir)?);
    vars.extend(env()?.smtp.env("starttls"));
    let db = PgDatabase::create(&admin, "mdm_remind").await?;
    let result = async {
        let a = Server::start_with_env("remind-a", &dir.join("a"), Some(&db.url), &vars)?;
        copy_secret(&dir.join("a"), &dir.join("b"))?;
        let b = Server::start_replica("remind-b", &dir.join("b"), &db.url, &vars)?;
        let outcome = run(&a, &apns, &fcm).await;
        a.stop();
        b.stop();
        outcome
    }
    .await;
    db.drop_db().await;
    result
}

async fn run(a: &Server, apns: &FakeApns, fcm: &FakeFcm) -> TestResult {
    let f = fixture(a).await?;
    let settings = format!("/api/v1/tenants/{}/settings", f.slug);
    let patch = json!({ "reminder_interval_secs": 10, "reminder_max": 2 });
    expect(
        f.api.send("PATCH", &settings, Some(patch)).await?,
        200,
        "settings",
    )?;
    let (ios, android, mail, done) = (email(), email(), email(), email());
    for u in [&ios, &android, &done] {
        add_user(&f, u, Some("app password 1"), false).await?;
    }
    add_user(&f, &mail, None, true).await?;
    let apns_token = || (0..6).map(|_| uuid_hex()).collect::<String>()[..64].to_string();
    let (ios_token, done_token) = (apns_token(), apns_token());
    let fcm_token = format!("fcm-{}", uuid_hex());
    app_register(&f, &a.base, &ios, "ios", &ios_token).await?;
    app_register(&f, &a.base, &android, "android", &fcm_token).await?;
    let next = app_register(&f, &a.base, &done, "ios", &done_token).await?;
    // Done downloads the profile now and installs it after its first reminder.
    let link = next["profile_url"].as_str().ok_or("profile_url")?;
    let http = reqwest::Client::new();
    let profile = http.get(link).send().await.map_err(|e| e.to_string())?;
    ensure!(
        profile.status().as_u16() == 200,
        "profile: {}",
        profile.status()
    );
    let profile = profile.bytes().await.map_err(|e| e.to_string())?;
    let done_id = user_id(&f, &done).await?;

    let funnel = format!("/api/v1/tenants/{}/registrations/funnel", f.slug);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut enrolled = false;
    loop {
        if !enrolled && reminders_to(&done)? >= 1 {
            iphone_enrols_for(&f, &http, &profile, 5301, &done_id).await?;
            enrolled = true;
        }
        let v = expect(f.api.get(&funnel).await?, 200, "funnel")?;
        if enrolled && v["total"]["given_up"] == 3 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "reminders did not run their course: {v}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Two scans more: nothing further goes out.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for (who, want) in [(&ios, 2), (&android, 2), (&mail, 2), (&done, 1)] {
        let got = reminders_to(who)?;
        ensure!(got == want, "{who}: {got} reminder mails, want {want}");
    }
    let alerts = |token: &str| {
        apns.received_for(token)
            .into_iter()
            .filter(|p| {
                p.push_type.as_deref() == Some("alert")
                    && p.status == 200
                    && p.alert_title.is_some()
            })
            .count()
    };
    ensure!(
        alerts(&ios_token) == 2,
        "APNs alerts to the iOS app: {}",
        alerts(&ios_token)
    );
    ensure!(
        alerts(&done_token) == 1,
        "APNs alerts after enrolment: {}",
        alerts(&done_token)
    );
    let sends = fcm.received_for(&fcm_token);
    ensure!(
        sends.len() == 2
            && sends
                .iter()
                .all(|s| s.status == 200 && s.message["data"]["reason"] == "registration_reminder"),
        "FCM sends to the Android app: {sends:?}"
    );
    let sent = audit_count(&f, "registration.reminder_sent").await?;
    ensure!(sent == 7, "reminder_sent audited {sent} times");
    ensure!(
        audit_count(&f, "registration.given_up").await? == 3,
        "given up thrice"
    );
    let stalled = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/registrations/stalled?older_than_secs=0",
                f.slug
            ))
            .await?,
        200,
        "stalled",
    )?;
    let given_up = stalled["items"].as_array().map_or(0, |a| {
        a.iter().filter(|s| s["given_up_at"].is_string()).count()
    });
    ensure!(given_up == 3, "given up in the stalled list: {stalled}");
    Ok(())
}
