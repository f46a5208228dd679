//! The directory connector when things go wrong or are checked: sign-in
//! by search and bind (wrong, empty, renamed, gone, unreachable), and each
//! bad configuration, which must name the failed step and change nothing.

use crate::api::Fixture;
use crate::api::fixture;
use crate::client::expect;
use crate::directory::{branch, configure, counts, mail, settings, sync, users};
use crate::ensure;
use crate::slapd::{SUFFIX, slapd};
use crate::support::{Server, TestResult, uuid_hex};
use serde_json::{Value, json};
use std::sync::Arc;

fn check_password(s: &Server, f: &Fixture, email: &str, password: &str) -> Result<String, String> {
    let file = s.data_dir.join(format!("pw-{}", uuid_hex()));
    std::fs::write(&file, format!("{password}\n")).map_err(|e| e.to_string())?;
    let path = file.to_string_lossy().into_owned();
    let out = s.cli(&[
        "directory",
        "check-password",
        "--tenant",
        &f.slug,
        "--email",
        email,
        "--password-file",
        &path,
    ]);
    let _ = std::fs::remove_file(&file);
    out
}

pub async fn directory_sign_in_binds_as_the_user(s: Arc<Server>) -> TestResult {
    let slapd = slapd()?;
    let f = fixture(&s).await?;
    let b = branch(
        slapd,
        &[("alice", "alice-network-pw"), ("bob", "bob-network-pw")],
    )?;
    configure(&f, &settings(slapd, &slapd.ldap_url, "starttls", &b.base)).await?;
    sync(&f).await?;
    let alice = mail(&b, "alice");
    let ok = check_password(&s, &f, &alice, "alice-network-pw")?;
    ensure!(ok.trim() == "valid", "good password: {ok}");
    for wrong in ["bob-network-pw", "alice-network-pw ", "x"] {
        let r = check_password(&s, &f, &alice, wrong);
        ensure!(
            r.as_ref().is_err_and(|e| e.contains("invalid credentials")),
            "wrong password {wrong:?}: {r:?}"
        );
    }
    // An empty password is never sent: an unauthenticated bind would succeed.
    let empty = check_password(&s, &f, &alice, "");
    ensure!(
        empty
            .as_ref()
            .is_err_and(|e| e.contains("invalid credentials")),
        "empty: {empty:?}"
    );
    // Renamed in the directory: still found by its stable id.
    slapd.modify(&format!(
        "dn: uid=alice,{0}\nchangetype: modrdn\nnewrdn: uid=alice2\ndeleteoldrdn: 1\n\n",
        b.base
    ))?;
    let moved = check_password(&s, &f, &alice, "alice-network-pw")?;
    ensure!(moved.trim() == "valid", "after a rename: {moved}");
    // ldaps works the same; a directory that cannot be reached is not "invalid".
    let mut body = settings(slapd, &slapd.ldaps_url, "ldaps", &b.base);
    body.as_object_mut().map(|o| o.remove("bind_password"));
    configure(&f, &body).await?;
    ensure!(
        check_password(&s, &f, &alice, "alice-network-pw")?.trim() == "valid",
        "ldaps"
    );
    body["url"] = json!(slapd.ldaps_url.replace("127.0.0.1", "localhost"));
    configure(&f, &body).await?;
    ensure!(
        check_password(&s, &f, &alice, "alice-network-pw")?.trim() == "valid",
        "ldaps by name"
    );
    body["url"] = json!("ldap://127.0.0.1:9");
    body["security"] = json!("starttls");
    configure(&f, &body).await?;
    let down = check_password(&s, &f, &alice, "alice-network-pw");
    ensure!(
        down.as_ref()
            .is_err_and(|e| e.contains("could not be asked")),
        "unreachable: {down:?}"
    );
    // Gone from the directory, then disabled by the next sync: refused.
    configure(&f, &settings(slapd, &slapd.ldap_url, "starttls", &b.base)).await?;
    slapd.delete(&[&format!("uid=bob,{}", b.base)])?;
    let r = check_password(&s, &f, &mail(&b, "bob"), "bob-network-pw");
    ensure!(r.is_err(), "deleted entry: {r:?}");
    sync(&f).await?;
    let r = check_password(&s, &f, &mail(&b, "bob"), "bob-network-pw");
    ensure!(
        r.as_ref().is_err_and(|e| e.contains("invalid credentials")),
        "disabled: {r:?}"
    );
    Ok(())
}

/// Each bad configuration: the test names the failed step, the sync fails
/// with a clear error, and no user changes.
pub async fn directory_bad_input_changes_nothing(s: Arc<Server>) -> TestResult {
    let slapd = slapd()?;
    let f = fixture(&s).await?;
    let b = branch(slapd, &[("ann", "a"), ("ben", "b"), ("cid", "c")])?;
    let good = settings(slapd, &slapd.ldap_url, "starttls", &b.base);
    configure(&f, &good).await?;
    sync(&f).await?;
    slapd.delete(&[&format!("uid=cid,{}", b.base)])?;
    let before = users(&f).await?;
    ensure!(before.len() == 3, "{} users", before.len());
    let port = slapd
        .ldap_url
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let cases: Vec<(&str, Value, &str, u16)> = vec![
        (
            "connect",
            json!({ "url": "ldap://127.0.0.1:9" }),
            "directory_unreachable",
            502,
        ),
        (
            "connect",
            json!({ "url": "ldap://no-such-host.invalid:389" }),
            "directory_unreachable",
            502,
        ),
        (
            "tls",
            json!({ "ca_pem": null }),
            "directory_tls_failed",
            502,
        ),
        (
            "connect",
            json!({ "url": slapd.ldaps_url.replace("ldaps", "ldap"), "timeout_secs": 2 }),
            "directory_timeout",
            502,
        ),
        (
            "tls",
            json!({ "url": format!("ldaps://127.0.0.1:{port}"), "security": "ldaps" }),
            "directory_tls_failed",
            502,
        ),
        (
            "bind",
            json!({ "bind_password": "wrong" }),
            "directory_bind_rejected",
            502,
        ),
        (
            "base_dn",
            json!({ "base_dn": format!("ou=missing,{SUFFIX}") }),
            "directory_base_dn_missing",
            502,
        ),
        (
            "search",
            json!({ "user_filter": "(uid~~x)" }),
            "directory_filter_invalid",
            502,
        ),
        (
            "attributes",
            json!({ "attributes": { "email": "mial" } }),
            "directory_attributes_missing",
            422,
        ),
    ];
    for (step, change, code, status) in cases {
        let mut body = good.clone();
        for (k, v) in change.as_object().ok_or("change")? {
            body[k] = v.clone();
        }
        configure(&f, &body).await?;
        let t = expect(
            f.api
                .post(
                    &format!("/api/v1/tenants/{}/directory/test", f.slug),
                    json!({}),
                )
                .await?,
            200,
            "test",
        )?;
        let steps = t["steps"].as_array().ok_or("steps")?;
        let failed = steps.last().ok_or("no step")?;
        ensure!(
            t["ok"] == false
                && t["error_code"] == code
                && failed["step"] == step
                && failed["ok"] == false
                && steps[..steps.len() - 1].iter().all(|s| s["ok"] == true),
            "{code}: test report {t}"
        );
        let r = f
            .api
            .post(
                &format!("/api/v1/tenants/{}/directory/sync", f.slug),
                json!({}),
            )
            .await?;
        let expected_code = if status == 422 { "invalid_field" } else { code };
        ensure!(
            r.status == status && r.code() == expected_code,
            "{code}: sync answered {} {}",
            r.status,
            r.text
        );
        ensure!(
            users(&f).await? == before,
            "{code}: a failed sync changed users"
        );
        let runs = expect(
            f.api
                .get(&format!(
                    "/api/v1/tenants/{}/directory/runs?limit=1",
                    f.slug
                ))
                .await?,
            200,
            "runs",
        )?;
        ensure!(
            runs[0]["status"] == "failed" && runs[0]["error_code"] == code,
            "{code}: run {runs}"
        );
    }
    // The good configuration again: cid is disabled now, and only now.
    configure(&f, &good).await?;
    let run = sync(&f).await?;
    ensure!(counts(&run) == [0, 0, 1, 2, 0], "recovered: {run}");
    Ok(())
}
