//! The directory connector against a real slapd: paged import, renames,
//! changes and deletions on the next sync, group membership, conflicts with
//! local users, validation and the scheduled sync. Sign-in and bad input
//! are in `directory_failures.rs`.

use crate::api::{Fixture, fixture};
use crate::client::expect;
use crate::ensure;
use crate::slapd::{BIG_USERS, READER_DN, READER_PW, SIZE_LIMIT, SUFFIX, Slapd, person, slapd};
use crate::support::{Server, TestResult, uuid_hex};
use serde_json::{Value, json};
use std::sync::Arc;

/// The connector settings for `base` on `url`.
pub fn settings(slapd: &Slapd, url: &str, security: &str, base: &str) -> Value {
    json!({
        "url": url, "security": security, "bind_dn": READER_DN, "bind_password": READER_PW,
        "base_dn": base, "ca_pem": slapd.ca_pem, "page_size": 40, "sync_interval_secs": 0,
    })
}

pub async fn configure(f: &Fixture, body: &Value) -> Result<Value, String> {
    let path = format!("/api/v1/tenants/{}/directory", f.slug);
    expect(
        f.api.send("PUT", &path, Some(body.clone())).await?,
        200,
        "set connector",
    )
}

pub async fn sync(f: &Fixture) -> Result<Value, String> {
    let path = format!("/api/v1/tenants/{}/directory/sync", f.slug);
    expect(f.api.post(&path, json!({})).await?, 200, "sync")
}

pub fn counts(run: &Value) -> [i64; 5] {
    ["created", "updated", "disabled", "unchanged", "error_count"]
        .map(|k| run[k].as_i64().unwrap_or(-1))
}

/// Every user of the tenant, by email.
pub async fn users(f: &Fixture) -> Result<Vec<Value>, String> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let q = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let page = expect(
            f.api
                .get(&format!("/api/v1/tenants/{}/users?limit=1000{q}", f.slug))
                .await?,
            200,
            "users",
        )?;
        all.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => return Ok(all),
        }
    }
}

pub fn by_email<'a>(users: &'a [Value], email: &str) -> Result<&'a Value, String> {
    users
        .iter()
        .find(|u| u["email"] == email)
        .ok_or(format!("no user {email}"))
}

/// A branch `ou=<name>` of its own for one test, with a group `cn=mdm`.
pub struct Branch {
    pub base: String,
    pub group: String,
}

pub fn branch(slapd: &Slapd, people: &[(&str, &str)]) -> Result<Branch, String> {
    let ou = format!("t{}", uuid_hex());
    let base = format!("ou={ou},{SUFFIX}");
    let mut ldif = format!("dn: {base}\nobjectClass: organizationalUnit\nou: {ou}\n\n");
    for (uid, pw) in people {
        ldif.push_str(&person(
            &format!("uid={uid},{base}"),
            uid,
            uid,
            &format!("{uid}@{ou}.example.test"),
            pw,
        ));
    }
    slapd.add(&ldif)?;
    Ok(Branch {
        group: format!("cn=mdm,{base}"),
        base,
    })
}

pub fn mail(b: &Branch, uid: &str) -> String {
    let ou = b
        .base
        .split(',')
        .next()
        .unwrap_or_default()
        .trim_start_matches("ou=");
    format!("{uid}@{ou}.example.test")
}

pub async fn directory_import_2000_through_paging(s: Arc<Server>) -> TestResult {
    let slapd = slapd()?;
    let f = fixture(&s).await?;
    let base = format!("ou=big,{SUFFIX}");
    // StartTLS on the ldap:// listener; pages of 97 under a size limit of 100.
    let mut body = settings(slapd, &slapd.ldap_url, "starttls", &base);
    body["page_size"] = json!(97);
    configure(&f, &body).await?;
    let test = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/directory/test", f.slug),
                json!({}),
            )
            .await?,
        200,
        "test",
    )?;
    ensure!(
        test["ok"] == true && test["matched"] == BIG_USERS,
        "test: {test}"
    );
    let first = sync(&f).await?;
    ensure!(
        counts(&first) == [BIG_USERS as i64, 0, 0, 0, 0],
        "first sync: {first}"
    );
    let all = users(&f).await?;
    ensure!(all.len() == BIG_USERS, "{} users", all.len());
    let u = by_email(&all, "u1234@big.example.test")?;
    ensure!(
        u["source"] == "ldap"
            && u["login_name"] == "u1234"
            && u["display_name"] == "User 1234"
            && u["enabled"] == true
            && u["external_id"].as_str().is_some_and(|x| x.len() == 36),
        "mapped user: {u}"
    );
    let again = sync(&f).await?;
    ensure!(
        counts(&again) == [0, 0, 0, BIG_USERS as i64, 0],
        "resync: {again}"
    );
    ensure!(users(&f).await? == all, "a no-change resync changed users");
    // Without paging the service account gets at most SIZE_LIMIT entries:
    // a page size above it is refused by the server, and the run changes nothing.
    body["page_size"] = json!(SIZE_LIMIT + 400);
    body.as_object_mut().map(|o| o.remove("bind_password"));
    configure(&f, &body).await?;
    let r = f
        .api
        .post(
            &format!("/api/v1/tenants/{}/directory/sync", f.slug),
            json!({}),
        )
        .await?;
    ensure!(r.status == 502, "oversized pages: {} {}", r.status, r.text);
    ensure!(users(&f).await? == all, "a failed run changed users");
    let runs = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/directory/runs", f.slug))
            .await?,
        200,
        "runs",
    )?;
    let statuses: Vec<&str> = runs
        .as_array()
        .ok_or("runs")?
        .iter()
        .filter_map(|r| r["status"].as_str())
        .collect();
    ensure!(
        statuses == ["failed", "succeeded", "succeeded"],
        "runs: {statuses:?}"
    );
    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=directory.&limit=10",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .ok_or("items")?
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    ensure!(
        actions
            == [
                "directory.sync_failed",
                "directory.configured",
                "directory.synced",
                "directory.synced",
                "directory.configured"
            ],
        "audit: {actions:?}"
    );
    Ok(())
}

pub async fn directory_rename_change_delete_and_groups(s: Arc<Server>) -> TestResult {
    let slapd = slapd()?;
    let f = fixture(&s).await?;
    let b = branch(
        slapd,
        &[
            ("alice", "a"),
            ("bob", "b"),
            ("carol", "c"),
            ("dave", "d"),
            ("erin", "e"),
        ],
    )?;
    let members: String = ["alice", "bob", "carol", "dave"]
        .iter()
        .map(|u| format!("member: uid={u},{}\n", b.base))
        .collect();
    slapd.add(&format!(
        "dn: {}\nobjectClass: groupOfNames\ncn: mdm\n{members}\n",
        b.group
    ))?;
    let mut body = settings(slapd, &slapd.ldaps_url, "ldaps", &b.base);
    body["group_filter"] = json!(b.group);
    configure(&f, &body).await?;
    let first = sync(&f).await?;
    ensure!(counts(&first) == [4, 0, 0, 0, 0], "first: {first}");
    let before = users(&f).await?;
    let alice = by_email(&before, &mail(&b, "alice"))?.clone();

    // alice: new DN, new email, new login; bob: new name; carol: out of the
    // group; dave: deleted.
    let a2 = mail(&b, "alice.smith");
    slapd.modify(&format!(
        "dn: uid=alice,{base}\nchangetype: modrdn\nnewrdn: uid=alice.smith\ndeleteoldrdn: 1\n\n\
         dn: uid=alice.smith,{base}\nchangetype: modify\nreplace: mail\nmail: {a2}\n\n\
         dn: uid=bob,{base}\nchangetype: modify\nreplace: cn\ncn: Robert Example\n\n\
         dn: {group}\nchangetype: modify\ndelete: member\nmember: uid=carol,{base}\n\n",
        base = b.base,
        group = b.group
    ))?;
    slapd.delete(&[&format!("uid=dave,{}", b.base)])?;
    let second = sync(&f).await?;
    ensure!(counts(&second) == [0, 2, 2, 0, 0], "second: {second}");
    let after = users(&f).await?;
    ensure!(
        after.len() == 4,
        "a rename must not add a user: {}",
        after.len()
    );
    let renamed = by_email(&after, &a2)?;
    ensure!(
        renamed["id"] == alice["id"]
            && renamed["external_id"] == alice["external_id"]
            && renamed["login_name"] == "alice.smith"
            && renamed["enabled"] == true,
        "renamed: {renamed}"
    );
    ensure!(
        by_email(&after, &mail(&b, "bob"))?["display_name"] == "Robert Example",
        "bob"
    );
    for gone in ["carol", "dave"] {
        ensure!(
            by_email(&after, &mail(&b, gone))?["enabled"] == false,
            "{gone} must be disabled, not deleted"
        );
    }

    // carol back in the group: re-enabled. A local user holds erin's email:
    // erin joins the group, and the run reports the conflict.
    let local = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/users", f.slug),
                json!({ "email": mail(&b, "erin") }),
            )
            .await?,
        201,
        "local user",
    )?;
    slapd.modify(&format!(
        "dn: {}\nchangetype: modify\nadd: member\nmember: uid=carol,{base}\nmember: uid=erin,{base}\n\n",
        b.group, base = b.base
    ))?;
    let third = sync(&f).await?;
    ensure!(counts(&third) == [0, 1, 0, 2, 1], "third: {third}");
    ensure!(third["reenabled"] == 1, "reenabled: {third}");
    let msg = third["errors"][0]["message"].as_str().unwrap_or_default();
    ensure!(
        msg.contains("local user") && third["errors"][0]["dn"] == format!("uid=erin,{}", b.base),
        "conflict: {third}"
    );
    let now = users(&f).await?;
    ensure!(
        by_email(&now, &mail(&b, "carol"))?["enabled"] == true,
        "carol re-enabled"
    );
    let erin = by_email(&now, &mail(&b, "erin"))?;
    ensure!(
        erin["id"] == local["id"] && erin["source"] == "local",
        "the local user was taken over: {erin}"
    );
    Ok(())
}

pub async fn directory_validation_and_schedule(s: Arc<Server>) -> TestResult {
    let slapd = slapd()?;
    let f = fixture(&s).await?;
    let path = format!("/api/v1/tenants/{}/directory", f.slug);
    let r = f.api.get(&path).await?;
    ensure!(r.status == 404, "no connector yet: {} {}", r.status, r.text);
    let b = branch(slapd, &[("sam", "s"), ("tia", "t")])?;
    let mut no_pw = settings(slapd, &slapd.ldap_url, "starttls", &b.base);
    no_pw.as_object_mut().map(|o| o.remove("bind_password"));
    let r = f.api.send("PUT", &path, Some(no_pw)).await?;
    ensure!(
        r.status == 422 && r.body["error"]["field"] == "bind_password",
        "first set needs a password: {}",
        r.text
    );
    for (field, value) in [
        ("url", json!("http://127.0.0.1")),
        ("security", json!("ldaps")),
        ("user_filter", json!("uid=*")),
        ("page_size", json!(0)),
        ("sync_interval_secs", json!(10)),
        ("ca_pem", json!("nonsense")),
    ] {
        let mut body = settings(slapd, &slapd.ldap_url, "starttls", &b.base);
        body[field] = value;
        let r = f.api.send("PUT", &path, Some(body)).await?;
        ensure!(
            r.status == 422 && r.body["error"]["field"] == field,
            "{field}: {} {}",
            r.status,
            r.text
        );
    }
    // Scheduled: the worker queues a sync as soon as the interval's slot is new.
    let mut body = settings(slapd, &slapd.ldap_url, "starttls", &b.base);
    body["sync_interval_secs"] = json!(60);
    let shown = configure(&f, &body).await?;
    ensure!(
        shown.get("bind_password").is_none() && !shown.to_string().contains(READER_PW),
        "the password is never shown: {shown}"
    );
    let runs_path = format!("/api/v1/tenants/{}/directory/runs", f.slug);
    for _ in 0..120 {
        let runs = expect(f.api.get(&runs_path).await?, 200, "runs")?;
        if let Some(run) = runs.as_array().and_then(|r| r.first()) {
            ensure!(
                run["trigger"] == "scheduled" && counts(run) == [2, 0, 0, 0, 0],
                "scheduled run: {run}"
            );
            let cli = s.cli(&["directory", "runs", "--tenant", &f.slug])?;
            ensure!(
                cli.contains("scheduled\tsucceeded\tentries 2\tcreated 2"),
                "cli runs: {cli}"
            );
            let shown = s.cli(&["directory", "show", "--tenant", &f.slug])?;
            ensure!(
                shown.contains(&b.base) && !shown.contains(READER_PW),
                "cli show: {shown}"
            );
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Err("no scheduled sync ran within 30 s".into())
}
