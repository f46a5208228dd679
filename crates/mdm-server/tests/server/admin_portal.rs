//! The admin web portal in headless Chromium, end to end: sign in, run the
//! startup wizard, import users from CSV, invite a selection (mail through
//! the real SMTP fixture), enrol a simulated iPhone, lock and retire it
//! with the confirmation step and find the entry in the audit trail, wipe a
//! second iPhone (a malformed PIN refused first) until the device has
//! acknowledged the erase, regenerate the enrollment URL. A screenshot of every page lands in
//! `target/test-output/admin/<backend>/`.

use crate::api::{Fixture, fixture};
use crate::client::expect;
use crate::ensure;
use crate::sim_lifecycle::admin;
use crate::support::{Server, TestResult, uuid_hex};
use fantoccini::{Client, Locator};
use mdm_sim::{Device, DeviceFacts, DeviceState, Platform};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub const DESKTOP_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36";

/// Makes a tenant administrator with the CLI; returns (email, password).
pub fn tenant_admin(s: &Server, f: &Fixture) -> Result<(String, String), String> {
    let email = format!("admin-{}@example.com", uuid_hex());
    let password = format!("pw-{}", uuid_hex());
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("pw");
    std::fs::write(&file, &password).map_err(|e| e.to_string())?;
    let path = file.display().to_string();
    s.cli(&[
        "admin",
        "create",
        "--tenant",
        &f.slug,
        "--email",
        &email,
        "--password-file",
        &path,
    ])?;
    Ok((email, password))
}

fn shots_dir(backend: &str) -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-output/admin")
        .join(backend);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}

struct Browser {
    c: Client,
    shots: PathBuf,
}

impl Browser {
    async fn find(&self, css: &str) -> Result<fantoccini::elements::Element, String> {
        self.c
            .wait()
            .at_most(Duration::from_secs(30))
            .for_element(Locator::Css(css))
            .await
            .map_err(|e| format!("waiting for {css}: {e}"))
    }

    /// The text of `css`; an element that went stale (the page changed
    /// between finding and reading it, on a busy machine) is found again.
    async fn text(&self, css: &str) -> Result<String, String> {
        let mut last = String::new();
        for _ in 0..5 {
            match self.find(css).await?.text().await {
                Ok(t) => return Ok(t),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("text of {css}: {last}"))
    }

    async fn click(&self, css: &str) -> Result<(), String> {
        let mut last = String::new();
        for _ in 0..5 {
            match self.find(css).await?.click().await {
                Ok(()) => return Ok(()),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("click {css}: {last}"))
    }

    /// Clicks `css` and waits until the browser has left the page: a form
    /// whose answer shows an element the old page had too (`#flash`) is
    /// not read before its answer arrives.
    async fn submit(&self, css: &str) -> Result<(), String> {
        let old = self.find("html").await?;
        self.click(css).await?;
        for _ in 0..150 {
            if old.tag_name().await.is_err() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("{css}: the page did not change"))
    }

    async fn fill(&self, css: &str, text: &str) -> Result<(), String> {
        let el = self.find(css).await?;
        el.clear().await.map_err(|e| e.to_string())?;
        el.send_keys(text).await.map_err(|e| e.to_string())
    }

    async fn goto(&self, url: &str) -> Result<(), String> {
        self.c.goto(url).await.map_err(|e| e.to_string())
    }

    async fn shot(&self, name: &str) -> Result<(), String> {
        let png = self.c.screenshot().await.map_err(|e| e.to_string())?;
        std::fs::write(self.shots.join(format!("{name}.png")), png).map_err(|e| e.to_string())
    }

    async fn page(&self) -> Result<String, String> {
        self.c.source().await.map_err(|e| e.to_string())
    }
}

/// The done-when walk through the portal.
pub async fn admin_portal_in_chromium(s: Arc<Server>) -> TestResult {
    let env = crate::INVITE_ENV
        .get()
        .ok_or("the SMTP fixture is not available")?;
    let driver = env.chromedriver.as_ref().map_err(|e| e.clone())?;
    let f = fixture(&s).await?;
    let (email, password) = tenant_admin(&s, &f)?;
    let c = driver.session(DESKTOP_UA).await?;
    c.set_window_size(1280, 1100)
        .await
        .map_err(|e| e.to_string())?;
    let b = Browser {
        c: c.clone(),
        shots: shots_dir(s.name)?,
    };
    let result = walk(&s, &f, &b, &email, &password, env).await;
    let _ = c.close().await;
    result
}

async fn walk(
    s: &Server,
    f: &Fixture,
    b: &Browser,
    email: &str,
    password: &str,
    env: &crate::InviteEnv,
) -> TestResult {
    let base = format!("{}/admin/t/{}", s.base, f.slug);
    // A page without a session sends the browser to sign in.
    b.goto(&format!("{base}/users")).await?;
    b.find("#sign-in").await?;
    b.shot("01-sign-in").await?;
    b.fill("#email", email).await?;
    b.fill("#password", "not the password").await?;
    b.click("#sign-in").await?;
    let refused = b.text("#form-error").await?;
    ensure!(refused.contains("not right"), "wrong password: {refused}");
    b.fill("#email", email).await?;
    b.fill("#password", password).await?;
    b.click("#sign-in").await?;

    // First run of the tenant: the wizard.
    b.find("#name").await?;
    b.shot("02-setup-name").await?;
    b.fill("#name", "").await?;
    b.click("#next").await?;
    ensure!(
        b.page().await?.contains("id=\"name-error\"") || b.find("#name").await.is_ok(),
        "an empty name is refused"
    );
    b.fill("#name", "Acme Mobile").await?;
    b.click("#next").await?;
    b.find("#profile_minutes").await?;
    b.shot("03-setup-settings").await?;
    b.click("#pin_required").await?;
    b.click("#next").await?;
    b.find("#lines").await?;
    let tag = uuid_hex();
    let (ann, bob) = (
        format!("ann-{tag}@example.com"),
        format!("bob-{tag}@example.com"),
    );
    b.fill("#lines", &format!("{ann}, Ann Admin\nnot-an-email"))
        .await?;
    b.click("#next").await?;
    let line_error = b.text(".line-error").await?;
    ensure!(
        line_error.starts_with("Line 2"),
        "bad line named: {line_error}"
    );
    b.fill("#lines", &format!("{ann}, Ann Admin\n{bob}"))
        .await?;
    b.shot("04-setup-users").await?;
    b.click("#next").await?;
    b.find("#invitees").await?;
    b.shot("05-setup-invite").await?;
    b.click("#finish").await?;
    let flash = b.text("#flash").await?;
    ensure!(
        flash.starts_with("2 invitation"),
        "wizard invited both: {flash}"
    );
    for to in [&ann, &bob] {
        let msg = env.smtp.message_to(to, Duration::from_secs(30)).await?;
        ensure!(
            msg.contains("Acme Mobile"),
            "the invitation names the new tenant name: {msg}"
        );
    }
    let settings = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/settings", f.slug))
            .await?,
        200,
        "settings",
    )?;
    ensure!(
        settings["pin_required"] == true,
        "wizard settings saved: {settings}"
    );
    b.shot("06-users").await?;

    // Import from CSV (a real file upload), then invite a selection.
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let csv = dir.path().join("users.csv");
    let imported: Vec<String> = (1..=3)
        .map(|i| format!("csv{i}-{tag}@example.com"))
        .collect();
    let mut body = String::from("email,display_name\n");
    for (i, e) in imported.iter().enumerate() {
        body.push_str(&format!("{e},CSV User {i}\n"));
    }
    std::fs::write(&csv, body).map_err(|e| e.to_string())?;
    b.click("#import-users").await?;
    b.find("#csv")
        .await?
        .send_keys(&csv.display().to_string())
        .await
        .map_err(|e| e.to_string())?;
    b.shot("07-import").await?;
    b.click("#import").await?;
    let done = b.text("#imported").await?;
    ensure!(done.starts_with("3 user"), "imported: {done}");
    b.goto(&format!("{base}/users?invited=no")).await?;
    b.find("#users").await?;
    for e in &imported[..2] {
        b.click(&format!("tr[data-email=\"{e}\"] input[type=checkbox]"))
            .await?;
    }
    b.find("#action")
        .await?
        .select_by_value("invite")
        .await
        .map_err(|e| e.to_string())?;
    b.shot("08-users-selection").await?;
    b.click("#apply").await?;
    let flash = b.text("#flash").await?;
    ensure!(
        flash.starts_with("2 invitation"),
        "selection invited: {flash}"
    );
    for e in &imported[..2] {
        env.smtp.message_to(e, Duration::from_secs(30)).await?;
    }
    b.goto(&format!("{base}/users?invited=no")).await?;
    b.find("#users").await?;
    let page = b.page().await?;
    ensure!(
        page.contains(imported[2].as_str()) && !page.contains(imported[0].as_str()),
        "the invited filter shows only the one not invited"
    );

    let bob_user = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/users?q={bob}", f.slug))
            .await?,
        200,
        "bob",
    )?;
    let bob_id = bob_user["items"][0]["id"]
        .as_str()
        .ok_or("bob id")?
        .to_string();
    // A simulated iPhone enrols for the first imported user.
    let user = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/users?q={}",
                f.slug, imported[0]
            ))
            .await?,
        200,
        "user",
    )?;
    let user_id = user["items"][0]["id"]
        .as_str()
        .ok_or("user id")?
        .to_string();
    let http = reqwest::Client::new();
    let profile = admin(s, f)
        .issue_profile(&http, Platform::Iphone, Some(&user_id))
        .await
        .map_err(|e| e.to_string())?;
    let mut phone = Device::new(DeviceFacts::iphone(7), http);
    phone
        .enroll(&profile.signed)
        .await
        .map_err(|e| e.to_string())?;
    ensure!(phone.state() == DeviceState::Enrolled, "enrolled");
    phone.wake().await.map_err(|e| e.to_string())?;
    let serial = phone.facts.serial_number.clone();

    b.goto(&format!("{base}/devices?status=active")).await?;
    b.shot("09-devices").await?;
    b.click(&format!("tr[data-serial=\"{serial}\"] a")).await?;
    ensure!(b.text("#device-status").await? == "active", "device page");
    b.shot("10-device").await?;
    // Lock, with a message on the lock screen: the iPhone acknowledges it.
    b.click("#lock").await?;
    b.fill("#message", "Lost? Call IT on 1234").await?;
    b.click("#confirm").await?;
    ensure!(b.text("#flash").await?.starts_with("lock"), "locked");
    let handled = phone.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        crate::sim_lifecycle::answered(&handled, "DeviceLock"),
        "the lock reached the device: {handled:?}"
    );
    // Re-send profile: an InstallProfile of a fresh enrollment profile is queued.
    b.click("#resend").await?;
    b.find("#warning").await?;
    b.click("#confirm").await?;
    ensure!(b.text("#flash").await?.starts_with("resend"), "re-sent");
    let commands = b.text("#commands").await?;
    ensure!(
        commands.contains("DeviceLock") && commands.contains("InstallProfile"),
        "the commands and their results: {commands}"
    );
    b.shot("10b-device-commands").await?;
    b.click("#retire").await?;
    b.find("#warning").await?;
    b.shot("11-retire-confirm").await?;
    b.click("#confirm").await?;
    let flash = b.text("#flash").await?;
    ensure!(flash.starts_with("retire"), "retired: {flash}");
    ensure!(
        b.text("#device-status").await? == "retired",
        "status retired"
    );

    b.click("a[href$='/audit']").await?;
    b.fill("#f-action", "device.retired").await?;
    b.click("#filter").await?;
    let entry = b.text("tr.entry[data-action='device.retired']").await?;
    ensure!(
        entry.contains(email),
        "the audit entry names the administrator: {entry}"
    );
    b.shot("12-audit").await?;
    // Clicking the administrator filters the trail by that actor.
    b.click("tr.entry[data-action='device.retired'] td:nth-child(2) a")
        .await?;
    b.find("#f-actor[value^='admin:']").await?;
    let rows =
        b.c.find_all(Locator::Css("tr.entry td:nth-child(2)"))
            .await
            .map_err(|e| e.to_string())?;
    ensure!(
        rows.len() > 3,
        "the administrator's entries: {}",
        rows.len()
    );
    for r in rows {
        let who = r.text().await.map_err(|e| e.to_string())?;
        ensure!(who == email, "only the administrator's entries: {who}");
    }

    // A retired device's record can be deleted, after its confirmation.
    b.goto(&format!("{base}/devices?status=retired")).await?;
    b.click(&format!("tr[data-serial=\"{serial}\"] a")).await?;
    b.click("#delete").await?;
    b.find("#warning").await?;
    b.submit("#confirm").await?;
    b.find("#flash").await?;
    ensure!(
        !b.page()
            .await?
            .contains(&format!("data-serial=\"{serial}\"")),
        "the deleted device is gone from the list"
    );

    // The funnel, and "remind now" on a registration stalled at "invited".
    b.goto(&format!("{base}/registrations?hours=0")).await?;
    b.find("#funnel svg").await?;
    let total = b.text("#funnel-total").await?;
    ensure!(
        !total.starts_with("0 "),
        "the funnel counts the invitations: {total}"
    );
    let funnel = b.page().await?;
    ensure!(
        funnel.contains("<title>active: 1</title>"),
        "one registration reached active in the funnel chart"
    );
    b.shot("13-registrations").await?;
    let row = format!("#stalled tr:has(a[href$='/users/{bob_id}']) button.remind");
    b.click(&row).await?;
    let flash = b.text("#flash").await?;
    ensure!(flash.contains("reminder"), "remind now: {flash}");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !env
        .smtp
        .messages_to(&bob)
        .iter()
        .any(|m| m.contains("Reminder"))
    {
        ensure!(
            std::time::Instant::now() < deadline,
            "no reminder mail for {bob}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Wipe a second iPhone: the confirmation says all data is lost, a
    // malformed PIN is refused on the page with nothing queued, then the
    // EraseDevice reaches the device and its acknowledgement marks the
    // record wiped, with both steps in the audit trail.
    let http = reqwest::Client::new();
    let profile = admin(s, f)
        .issue_profile(&http, Platform::Iphone, Some(&user_id))
        .await
        .map_err(|e| e.to_string())?;
    let mut second = Device::new(DeviceFacts::iphone(8), http);
    second
        .enroll(&profile.signed)
        .await
        .map_err(|e| e.to_string())?;
    second.wake().await.map_err(|e| e.to_string())?;
    let serial = second.facts.serial_number.clone();
    b.goto(&format!("{base}/devices?status=active")).await?;
    b.click(&format!("tr[data-serial=\"{serial}\"] a")).await?;
    let device_page = b.c.current_url().await.map_err(|e| e.to_string())?;
    b.click("#wipe").await?;
    let warning = b.text("#warning").await?;
    ensure!(warning.contains("ALL data"), "the wipe warning: {warning}");
    b.fill("#pin", "12ab").await?;
    b.click("#confirm").await?;
    let refused = b.text("#pin-error").await?;
    ensure!(!refused.is_empty(), "a malformed PIN is refused");
    let untouched = second.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        !crate::sim_lifecycle::answered(&untouched, "EraseDevice"),
        "nothing was queued for the refused wipe: {untouched:?}"
    );
    b.fill("#pin", "").await?;
    b.shot("11b-wipe-confirm").await?;
    b.click("#confirm").await?;
    let flash = b.text("#flash").await?;
    ensure!(flash.starts_with("wipe"), "wipe requested: {flash}");
    let handled = second.wake().await.map_err(|e| e.to_string())?;
    ensure!(
        crate::sim_lifecycle::answered(&handled, "EraseDevice"),
        "the wipe reached the device: {handled:?}"
    );
    b.goto(device_page.as_str()).await?;
    ensure!(
        b.text("#device-status").await? == "wiped",
        "status wiped once the device acknowledged"
    );
    let actions = b.text("#actions").await?;
    ensure!(
        actions.starts_with("Delete") && !actions.contains("Wipe"),
        "a wiped device offers only Delete: {actions}"
    );
    b.shot("11c-wiped").await?;
    for action in ["device.wipe_requested", "device.wiped"] {
        b.click("a[href$='/audit']").await?;
        b.fill("#f-action", action).await?;
        b.click("#filter").await?;
        b.find(&format!("tr.entry[data-action='{action}']")).await?;
    }

    // Regenerate the enrollment URL: the old registration link stops working.
    b.click("a[href$='/settings']").await?;
    let old = b.text("#registration-url").await?;
    ensure!(b.text("#url-version").await? == "1", "version 1");
    b.shot("14-settings").await?;
    b.click("#regenerate").await?;
    ensure!(
        b.find("#understood-error").await.is_ok(),
        "needs the confirmation"
    );
    b.click("#understood").await?;
    b.submit("#regenerate").await?;
    b.find("#flash").await?;
    ensure!(b.text("#url-version").await? == "2", "version 2");
    ensure!(b.text("#registration-url").await? != old, "a new link");
    b.shot("15-settings-regenerated").await?;
    let stale = reqwest::get(&old).await.map_err(|e| e.to_string())?;
    ensure!(
        stale.status().as_u16() == 410,
        "the old link is gone: {}",
        stale.status()
    );

    // Profile signing: an upload whose key is another certificate's is
    // refused with the reason; the signer's own key makes it sign profiles
    // (the page says so); removing it brings the tenant's signer back.
    let pki = tempfile::tempdir().map_err(|e| e.to_string())?;
    crate::signing_identity::public_ca(pki.path())?;
    let read = |name: &str| crate::signing_identity::read(pki.path(), name);
    let chain = format!("{}{}", read("ec.pem")?, read("issuing.pem")?);
    ensure!(
        b.text("#signed-by").await?.contains("not verified"),
        "the tenant's own signer signs at first"
    );
    b.fill("#certificate_pem", &chain).await?;
    b.fill("#private_key_pem", &read("rsa.key")?).await?;
    b.click("#upload-signing").await?;
    let refused = b.text("#signing-error").await?;
    ensure!(refused.contains("belongs to none"), "refusal: {refused}");
    ensure!(
        !b.page().await?.contains("BEGIN PRIVATE KEY"),
        "the pasted key is not shown again"
    );
    // The .p12 file chosen in the file field, with its password.
    let p12 = pki.path().join("ec.p12");
    let p12_path = p12.display().to_string();
    crate::signing_identity::openssl(
        pki.path(),
        &[
            "pkcs12",
            "-export",
            "-inkey",
            "ec.key",
            "-in",
            "ec.pem",
            "-certfile",
            "issuing.pem",
            "-passout",
            "pass:portal",
            "-out",
            &p12_path,
        ],
    )?;
    b.fill("#certificate_pem", "").await?;
    b.fill("#private_key_pem", "").await?;
    b.find("#pkcs12")
        .await?
        .send_keys(&p12_path)
        .await
        .map_err(|e| e.to_string())?;
    b.fill("#pkcs12_password", "portal").await?;
    b.submit("#upload-signing").await?;
    b.find("#flash").await?;
    let subject = b.text("#signing-subject").await?;
    ensure!(
        subject.contains("Example Org Profile Signing"),
        "uploaded: {subject}"
    );
    ensure!(
        b.text("#signed-by").await?.contains("uploaded identity"),
        "the uploaded identity signs"
    );
    b.shot("16-settings-signing-identity").await?;
    b.submit("#remove-signing").await?;
    b.find("#flash").await?;
    ensure!(
        !b.page().await?.contains("id=\"signing-subject\""),
        "removed"
    );
    ensure!(
        b.text("#signed-by").await?.contains("not verified"),
        "the tenant's own signer signs again"
    );

    b.click("#sign-out").await?;
    b.find("#sign-in").await?;
    b.goto(&format!("{base}/users")).await?;
    b.find("#sign-in").await?;
    Ok(())
}
