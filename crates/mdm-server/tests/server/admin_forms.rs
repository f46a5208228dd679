//! The admin portal's forms over plain HTTP: a request without a session or
//! without the session's CSRF token changes nothing; bad input is refused
//! with the message next to its field; sign-in is throttled; the session
//! cookie is HttpOnly and SameSite=Strict; other tenants are not found;
//! the audit CSV export.

use crate::admin_portal::tenant_admin;
use crate::api::fixture;
use crate::client::{Api, expect};
use crate::ensure;
use crate::invites::{csrf_of, post_form, session_cookie};
use crate::support::{Server, TestResult, uuid_hex};
use std::sync::Arc;

async fn get(
    url: &str,
    cookie: Option<&str>,
) -> Result<(u16, String, reqwest::header::HeaderMap), String> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let mut req = http.get(url);
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

fn location(h: &reqwest::header::HeaderMap) -> String {
    h.get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn user_count(api: &Api, slug: &str) -> Result<usize, String> {
    let page = expect(
        api.get(&format!("/api/v1/tenants/{slug}/users?limit=1000"))
            .await?,
        200,
        "users",
    )?;
    Ok(crate::client::count(&page))
}

pub async fn admin_forms_refuse_forgery_and_bad_input(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let other = fixture(&s).await?;
    let (email, password) = tenant_admin(&s, &f)?;
    let base = format!("{}/admin/t/{}", s.base, f.slug);
    let new_user = format!("new-{}@example.com", uuid_hex());

    // No session: sent to sign in, nothing created.
    let (st, _, h) = get(&format!("{base}/users"), None).await?;
    ensure!(
        st == 303 && location(&h) == "/admin/sign-in",
        "no session: {st}"
    );
    let (st, _, h) = post_form(
        &format!("{base}/users/new"),
        &[("csrf", "x"), ("email", &new_user)],
        None,
    )
    .await?;
    ensure!(
        st == 303 && location(&h) == "/admin/sign-in",
        "no session post: {st}"
    );
    let (st, _, _) = post_form(
        &format!("{base}/users/new"),
        &[("csrf", "x"), ("email", &new_user)],
        Some("mdm_admin=forged-session-value"),
    )
    .await?;
    ensure!(st == 303, "forged session: {st}");
    ensure!(user_count(&f.api, &f.slug).await? == 0, "nothing created");

    // Sign-in refusals, next to the field.
    let sign_in = format!("{}/admin/sign-in", s.base);
    let (st, page, _) = post_form(&sign_in, &[("email", "nope"), ("password", "x")], None).await?;
    ensure!(
        st == 422 && page.contains("id=\"email-error\""),
        "bad email: {st}"
    );
    let (st, page, _) = post_form(
        &sign_in,
        &[("email", &email), ("password", "wrong-one")],
        None,
    )
    .await?;
    ensure!(
        st == 401 && page.contains("id=\"form-error\""),
        "wrong password: {st}"
    );
    let (st, _, h) = post_form(
        &sign_in,
        &[("email", &email), ("password", &password)],
        None,
    )
    .await?;
    ensure!(st == 303, "sign in: {st}");
    let set = h
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    ensure!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/admin"),
        "cookie attributes: {set}"
    );
    let cookie = session_cookie(&h)?;
    let (_, page, _) = get(&format!("{base}/users"), Some(&cookie)).await?;
    let csrf = csrf_of(&page)?;

    // The session without its CSRF token changes nothing.
    for token in ["", "wrong-token"] {
        let (st, _, _) = post_form(
            &format!("{base}/users/new"),
            &[("csrf", token), ("email", &new_user)],
            Some(&cookie),
        )
        .await?;
        ensure!(st == 403, "csrf {token:?}: {st}");
    }
    let (st, _, _) = post_form(
        &format!("{base}/settings/enrollment-url"),
        &[("csrf", "wrong"), ("understood", "on")],
        Some(&cookie),
    )
    .await?;
    ensure!(st == 403, "regenerate without token: {st}");
    // A cross-site form post with the right token is refused by the origin check.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let res = http
        .post(format!("{base}/users/new"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .header("origin", "https://evil.example")
        .body(crate::invites::urlencoded(&[
            ("csrf", &csrf),
            ("email", &new_user),
        ]))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    ensure!(res.status().as_u16() == 403, "cross-site: {}", res.status());
    ensure!(
        user_count(&f.api, &f.slug).await? == 0,
        "still nothing created"
    );
    let url = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/enrollment-url", f.slug))
            .await?,
        200,
        "url",
    )?;
    ensure!(url["version"] == 1, "not regenerated: {url}");

    // Bad input: the message next to the field, nothing written.
    let (st, page, _) = post_form(
        &format!("{base}/users/new"),
        &[("csrf", &csrf), ("email", "not-an-email")],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 422 && page.contains("id=\"email-error\""),
        "bad user email: {st}"
    );
    let (st, page, _) = post_form(
        &format!("{base}/users/new"),
        &[("csrf", &csrf), ("email", &new_user), ("password", "short")],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 422 && page.contains("id=\"password-error\""),
        "short password: {st}"
    );
    let (st, page, _) = post_form(
        &format!("{base}/settings/user"),
        &[
            ("csrf", &csrf),
            ("pin_days", "7"),
            ("profile_minutes", "0.5"),
            ("reminder_hours", "24"),
            ("reminder_max", "3"),
        ],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 422 && page.contains("id=\"profile_minutes-error\""),
        "profile validity: {st}"
    );
    let (st, page, _) = post_form(
        &format!("{base}/settings/user"),
        &[
            ("csrf", &csrf),
            ("pin_days", "soon"),
            ("profile_minutes", "10"),
            ("reminder_hours", "24"),
            ("reminder_max", "3"),
        ],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 422 && page.contains("id=\"pin_days-error\""),
        "pin days: {st}"
    );
    let (st, page, _) = post_form(
        &format!("{base}/settings/enrollment-url"),
        &[("csrf", &csrf)],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 422 && page.contains("id=\"understood-error\""),
        "unconfirmed: {st}"
    );
    let (st, page, _) = post_form(
        &format!("{base}/settings/test-mail"),
        &[("csrf", &csrf), ("to", "nobody")],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 422 && page.contains("id=\"to-error\""),
        "test mail address: {st}"
    );
    let (st, page, _) = post_form(
        &format!("{base}/users/import"),
        &[
            ("csrf", &csrf),
            ("csv_text", "email,colour\nx@example.com,red\n"),
        ],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 422 && page.contains("id=\"csv-error\""),
        "bad csv: {st}"
    );
    let (st, page, _) = post_form(
        &format!("{base}/users/invite"),
        &[("csrf", &csrf), ("action", "invite")],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 422 && page.contains("id=\"selection-error\""),
        "empty selection: {st}"
    );
    let (st, page, _) = get(&format!("{base}/audit?from=yesterday"), Some(&cookie)).await?;
    ensure!(
        st == 422 && page.contains("id=\"from-error\""),
        "audit from: {st}"
    );
    ensure!(
        user_count(&f.api, &f.slug).await? == 0,
        "bad input created nothing"
    );
    let settings = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/settings", f.slug))
            .await?,
        200,
        "settings",
    )?;
    ensure!(
        settings["profile_validity_secs"] == 600,
        "settings unchanged: {settings}"
    );

    // A good form works, and shows in the CSV export.
    let (st, _, _) = post_form(
        &format!("{base}/users/new"),
        &[
            ("csrf", &csrf),
            ("email", &new_user),
            ("display_name", "New, \"Quoted\" User"),
        ],
        Some(&cookie),
    )
    .await?;
    ensure!(st == 303, "add user: {st}");
    ensure!(user_count(&f.api, &f.slug).await? == 1, "one user");
    let (st, csv, h) = get(&format!("{base}/audit.csv?action=user."), Some(&cookie)).await?;
    ensure!(st == 200, "csv: {st}");
    ensure!(
        h.get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .starts_with("text/csv"),
        "csv content type"
    );
    ensure!(
        csv.starts_with("id,at,actor,actor_label,action,"),
        "csv header: {csv}"
    );
    ensure!(
        csv.lines().count() == 2 && csv.contains(",user.created,"),
        "one entry: {csv}"
    );

    // Another tenant is not found; the device page of an unknown id neither.
    let (st, _, _) = get(
        &format!("{}/admin/t/{}/users", s.base, other.slug),
        Some(&cookie),
    )
    .await?;
    ensure!(st == 404, "other tenant: {st}");
    let (st, _, _) = get(
        &format!("{base}/devices/{}", uuid::Uuid::new_v4()),
        Some(&cookie),
    )
    .await?;
    ensure!(st == 404, "unknown device: {st}");

    // Sign-out ends the session at once.
    let (st, _, _) = post_form(
        &format!("{}/admin/sign-out", s.base),
        &[("csrf", &csrf)],
        Some(&cookie),
    )
    .await?;
    ensure!(st == 303, "sign out: {st}");
    let (st, _, _) = get(&format!("{base}/users"), Some(&cookie)).await?;
    ensure!(st == 303, "signed out: {st}");

    // Five failures lock the email out, even with the right password next.
    let (email2, password2) = tenant_admin(&s, &f)?;
    for _ in 0..5 {
        post_form(
            &sign_in,
            &[("email", &email2), ("password", "wrong-password")],
            None,
        )
        .await?;
    }
    let (st, page, _) = post_form(
        &sign_in,
        &[("email", &email2), ("password", &password2)],
        None,
    )
    .await?;
    ensure!(st == 429 && page.contains("Too many"), "locked out: {st}");
    let audit = expect(
        f.op.get("/api/v1/audit?action=admin.locked_out&limit=1000")
            .await?,
        200,
        "operator audit",
    )?;
    ensure!(
        audit["items"]
            .as_array()
            .is_some_and(|a| a.iter().any(|e| e["subject_id"] == email2.as_str())),
        "lockout audited: {audit}"
    );

    // Thirty idle minutes end a session: the next request goes to sign-in.
    let (_, _, h) = post_form(
        &sign_in,
        &[("email", &email), ("password", &password)],
        None,
    )
    .await?;
    let idle = session_cookie(&h)?;
    let (st, _, _) = get(&format!("{base}/users"), Some(&idle)).await?;
    ensure!(st == 200, "fresh session: {st}");
    crate::apple_device::exec_sql(
        &s,
        "UPDATE admin_sessions SET last_seen_at = last_seen_at - 1860000 \
         WHERE admin_id IN (SELECT id FROM admins WHERE email = $1)",
        &[&email],
    )
    .await?;
    let (st, _, h) = get(&format!("{base}/users"), Some(&idle)).await?;
    ensure!(
        st == 303 && location(&h) == "/admin/sign-in",
        "idle session: {st}"
    );
    let (_, page, _) = get(&sign_in, Some(&idle)).await?;
    ensure!(
        page.contains("session has ended"),
        "the sign-in page says why"
    );

    // The first start's operator administrator picks any tenant.
    let creds = std::fs::read_to_string(s.data_dir.join("initial-credentials.txt"))
        .map_err(|e| e.to_string())?;
    let field = |k: &str| {
        creds
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{k} = \"")))
            .map(|v| v.trim_end_matches('"').to_string())
            .ok_or(format!("no {k}"))
    };
    let (st, _, h) = post_form(
        &sign_in,
        &[
            ("email", &field("admin_email")?),
            ("password", &field("admin_password")?),
        ],
        None,
    )
    .await?;
    ensure!(st == 303, "operator sign-in: {st}");
    let op = session_cookie(&h)?;
    let (st, _, h) = get(&format!("{}/admin", s.base), Some(&op)).await?;
    ensure!(
        st == 303 && location(&h) == "/admin/tenants",
        "operator home: {st}"
    );
    let (_, page, _) = get(&format!("{}/admin/tenants", s.base), Some(&op)).await?;
    ensure!(
        page.contains(&format!("data-slug=\"{}\"", f.slug))
            && page.contains(&format!("data-slug=\"{}\"", other.slug)),
        "the picker lists every tenant"
    );
    let (st, _, _) = get(
        &format!("{}/admin/t/{}/users", s.base, other.slug),
        Some(&op),
    )
    .await?;
    ensure!(st == 200, "operator opens any tenant: {st}");
    Ok(())
}

/// Settings that reach real servers: the test mail through the SMTP
/// fixture, the push credential shown, and the LDAP connector configured,
/// tested and synced against slapd — bad input shown next to its field.
pub async fn admin_settings_reach_smtp_and_ldap(s: Arc<Server>) -> TestResult {
    use crate::slapd::{READER_DN, READER_PW, slapd};
    let env = crate::INVITE_ENV
        .get()
        .ok_or("the SMTP fixture is not available")?;
    let ldap = slapd()?;
    let f = fixture(&s).await?;
    let (email, password) = tenant_admin(&s, &f)?;
    let base = format!("{}/admin/t/{}", s.base, f.slug);
    let sign_in = format!("{}/admin/sign-in", s.base);
    let (_, _, h) = post_form(
        &sign_in,
        &[("email", &email), ("password", &password)],
        None,
    )
    .await?;
    let cookie = session_cookie(&h)?;
    let (st, page, _) = get(&format!("{base}/settings"), Some(&cookie)).await?;
    ensure!(st == 200, "settings: {st}");
    let csrf = csrf_of(&page)?;
    ensure!(page.contains("SMTP 127.0.0.1:"), "the SMTP server is named");
    ensure!(
        page.contains("provider token"),
        "the APNs credential is shown"
    );

    let to = format!("test-{}@example.com", uuid_hex());
    let (st, page, _) = post_form(
        &format!("{base}/settings/test-mail"),
        &[("csrf", &csrf), ("to", &to)],
        Some(&cookie),
    )
    .await?;
    ensure!(
        st == 200 && page.contains("id=\"mail-result\""),
        "test mail: {st}"
    );
    let msg = env
        .smtp
        .message_to(&to, std::time::Duration::from_secs(30))
        .await?;
    ensure!(
        msg.contains("Test message from Test tenant"),
        "the test mail arrived: {msg}"
    );

    let branch = crate::directory::branch(ldap, &[("ann", "pw-ann-1"), ("bob", "pw-bob-1")])?;
    let connector = |url: &str, pw: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("url", url.to_string()),
            ("security", "ldaps".to_string()),
            ("bind_dn", READER_DN.to_string()),
            ("bind_password", pw.to_string()),
            ("base_dn", branch.base.clone()),
            ("ca_pem", ldap.ca_pem.clone()),
            ("interval_minutes", "0".to_string()),
            ("page_size", "40".to_string()),
            ("enabled", "on".to_string()),
        ]
    };
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let (cookie, base) = (cookie.clone(), base.clone());
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&format!("{base}/settings/{path}"), &pairs, Some(&cookie)).await
        }
    };
    let (st, page, _) = post("directory", connector("http://ldap.example", READER_PW)).await?;
    ensure!(
        st == 422 && page.contains("id=\"url-error\""),
        "bad URL: {st}"
    );
    let (st, _, h) = post("directory", connector(&ldap.ldaps_url, READER_PW)).await?;
    ensure!(
        st == 303 && location(&h).ends_with("saved=directory"),
        "configure: {st}"
    );
    let csrf_only = || vec![("csrf", csrf.clone())];
    let (st, page, _) = post("directory/test", csrf_only()).await?;
    ensure!(
        st == 200 && page.contains("the filter matches 2 entries"),
        "test connection: {st} {page}"
    );
    let (st, page, _) = post("directory/sync", csrf_only()).await?;
    ensure!(
        st == 200 && page.contains("Synced 2 entries: 2 created"),
        "sync now: {st}"
    );
    let users = crate::directory::users(&f).await?;
    ensure!(
        users.len() == 2 && users.iter().all(|u| u["source"] == "ldap"),
        "two directory users: {users:?}"
    );
    // Saving again without a CA keeps the stored one; a wrong password
    // fails the bind step of the test, named on the page.
    let mut wrong = connector(&ldap.ldaps_url, "not-the-password");
    wrong.retain(|(k, _)| *k != "ca_pem");
    let (st, _, _) = post("directory", wrong).await?;
    ensure!(st == 303, "save without CA: {st}");
    let (st, page, _) = post("directory/test", csrf_only()).await?;
    ensure!(
        st == 502 && page.contains("failed"),
        "wrong bind password: {st}"
    );
    ensure!(
        page.contains("<td>bind</td><td><span class=\"error\">failed"),
        "the bind step failed, after TLS worked with the kept CA"
    );
    Ok(())
}
