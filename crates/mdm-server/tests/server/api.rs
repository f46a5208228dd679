//! The REST API, driven over HTTP.

use crate::client::{Api, count, expect};
use crate::ensure;
use crate::support::{Server, TestResult, uuid_hex};
use serde_json::{Value, json};
use std::sync::Arc;

/// A fresh tenant and a token scoped to it.
pub struct Fixture {
    pub slug: String,
    pub tenant_id: String,
    pub op: Api,
    pub api: Api,
}

pub async fn fixture(s: &Server) -> Result<Fixture, String> {
    let op = Api::new(&s.base, Some(&s.operator_token));
    let slug = format!("t-{}", uuid_hex());
    let t = expect(
        op.post(
            "/api/v1/tenants",
            json!({ "slug": slug, "name": "Test tenant" }),
        )
        .await?,
        201,
        "create tenant",
    )?;
    let tok = expect(
        op.post(
            &format!("/api/v1/tenants/{slug}/tokens"),
            json!({ "name": "test" }),
        )
        .await?,
        201,
        "create token",
    )?;
    let secret = tok["secret"].as_str().ok_or("no secret")?;
    Ok(Fixture {
        tenant_id: t["id"].as_str().unwrap_or_default().to_string(),
        api: op.with_token(secret),
        op,
        slug,
    })
}

pub async fn health_and_metrics(s: Arc<Server>) -> TestResult {
    let api = Api::new(&s.base, None);
    let r = api.get("/healthz").await?;
    ensure!(
        r.status == 200 && r.text == "ok\n",
        "healthz: {} {}",
        r.status,
        r.text
    );
    ensure!(api.get("/readyz").await?.status == 200, "readyz");
    let m = api.get("/metrics").await?;
    ensure!(
        m.status == 200 && m.text.contains("http_requests_total"),
        "metrics: {}",
        m.text
    );
    let doc = api.get("/api/openapi.json").await?;
    ensure!(
        doc.body["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "openapi version"
    );
    let r = api.get("/api/v1/tenants").await?;
    ensure!(
        r.status == 401 && r.code() == "unauthenticated",
        "no token: {}",
        r.text
    );
    let r = Api::new(&s.base, Some("mdm_not-a-real-token"))
        .get("/api/v1/tenants")
        .await?;
    ensure!(r.status == 401, "bad token: {}", r.text);
    let r = api.get("/api/v1/nothing-here").await?;
    ensure!(
        r.status == 404 && r.code() == "no_such_route",
        "unknown route: {}",
        r.text
    );
    Ok(())
}

pub async fn cli_then_api(s: Arc<Server>) -> TestResult {
    let slug = format!("cli-{}", uuid_hex());
    let out = s.cli(&["tenant", "create", &slug, "--name", "CLI tenant"])?;
    ensure!(
        out.contains("/go"),
        "tenant create prints the registration URL: {out}"
    );
    ensure!(s.cli(&["tenant", "list"])?.contains(&slug), "tenant list");
    s.cli(&[
        "user",
        "add",
        "--tenant",
        &slug,
        "--email",
        "Carol@Example.com",
        "--name",
        "Carol",
    ])?;
    let token = s
        .cli(&["token", "create", "--tenant", &slug, "--name", "cli-token"])?
        .trim()
        .to_string();
    ensure!(token.starts_with("mdm_"), "token: {token}");
    let api = Api::new(&s.base, Some(&token));
    let page = expect(
        api.get(&format!("/api/v1/tenants/{slug}/users")).await?,
        200,
        "list users",
    )?;
    let items = page["items"].as_array().ok_or("items")?;
    ensure!(
        items.len() == 1
            && items[0]["email"] == "carol@example.com"
            && items[0]["display_name"] == "Carol",
        "users: {page}"
    );
    ensure!(
        s.cli(&["user", "list", "--tenant", &slug])?
            .contains("carol@example.com"),
        "user list"
    );
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse battery\n").map_err(|e| e.to_string())?;
    let pw = pw.to_string_lossy().to_string();
    let out = s.cli(&[
        "admin",
        "create",
        "--tenant",
        &slug,
        "--email",
        "Boss@Example.com",
        "--password-file",
        &pw,
    ])?;
    ensure!(out.contains("boss@example.com"), "admin create: {out}");
    ensure!(
        s.cli(&[
            "admin",
            "create",
            "--tenant",
            &slug,
            "--email",
            "boss@example.com",
            "--password-file",
            &pw
        ])
        .is_err(),
        "a second administrator with the same email is refused"
    );
    let audit = s.cli(&["audit", "--tenant", &slug])?;
    ensure!(
        audit.contains("admin.created"),
        "admin creation audited: {audit}"
    );
    ensure!(
        audit.contains("user.created")
            && audit.contains("tenant.created")
            && audit.contains("command line"),
        "audit: {audit}"
    );
    Ok(())
}

pub async fn users_crud_and_paging(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let base = format!("/api/v1/tenants/{}/users", f.slug);
    let u = expect(
        f.api
            .post(
                &base,
                json!({ "email": "dave@example.com", "password": "s3cret-pass" }),
            )
            .await?,
        201,
        "create",
    )?;
    ensure!(
        u["display_name"] == "dave"
            && u["temporary_password"] == true
            && u.get("password_hash").is_none(),
        "user: {u}"
    );
    let id = u["id"].as_str().ok_or("id")?;
    let got = expect(f.api.get(&format!("{base}/{id}")).await?, 200, "get")?;
    ensure!(got["email"] == "dave@example.com", "get: {got}");
    let patched = expect(
        f.api
            .send(
                "PATCH",
                &format!("{base}/{id}"),
                Some(json!({ "display_name": "Dave D", "enabled": false })),
            )
            .await?,
        200,
        "patch",
    )?;
    ensure!(
        patched["display_name"] == "Dave D" && patched["enabled"] == false,
        "patched: {patched}"
    );
    let disabled = expect(
        f.api.get(&format!("{base}?enabled=false")).await?,
        200,
        "filter",
    )?;
    ensure!(count(&disabled) == 1, "enabled filter: {disabled}");
    expect(
        f.api.send("DELETE", &format!("{base}/{id}"), None).await?,
        204,
        "delete",
    )?;
    expect(
        f.api.get(&format!("{base}/{id}")).await?,
        404,
        "get deleted",
    )?;

    let batch: Vec<Value> = (0..25)
        .map(|i| json!({ "email": format!("p{i:02}@example.com") }))
        .collect();
    expect(
        f.api.post(&format!("{base}/bulk"), json!(batch)).await?,
        201,
        "bulk",
    )?;
    let (mut seen, mut after) = (Vec::new(), None::<String>);
    loop {
        let q = after
            .as_ref()
            .map(|a| format!("&after={a}"))
            .unwrap_or_default();
        let page = expect(
            f.api.get(&format!("{base}?limit=10{q}")).await?,
            200,
            "page",
        )?;
        for u in page["items"].as_array().ok_or("items")? {
            seen.push(u["email"].as_str().unwrap_or_default().to_string());
        }
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    ensure!(
        seen.len() == 25 && seen == sorted,
        "paging returned {} users in order: {seen:?}",
        seen.len()
    );
    let q = expect(f.api.get(&format!("{base}?q=P1")).await?, 200, "search")?;
    ensure!(count(&q) == 10, "search p1*: {q}");
    Ok(())
}

pub async fn bulk_and_csv_import(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let base = format!("/api/v1/tenants/{}/users", f.slug);
    expect(
        f.api
            .post(&base, json!({ "email": "taken@example.com" }))
            .await?,
        201,
        "create",
    )?;
    // A batch with one taken email writes nothing.
    let r = f
        .api
        .post(
            &format!("{base}/bulk"),
            json!([{ "email": "new1@example.com" }, { "email": "TAKEN@example.com" }]),
        )
        .await?;
    ensure!(
        r.status == 409 && r.code() == "user_email_taken" && r.text.contains("taken@example.com"),
        "bulk dup: {}",
        r.text
    );
    let r = f
        .api
        .post(
            &format!("{base}/bulk"),
            json!([{ "email": "a@example.com" }, { "email": "A@example.com" }]),
        )
        .await?;
    ensure!(
        r.status == 422 && r.body["error"]["field"] == "users[1].email",
        "dup in batch: {}",
        r.text
    );
    let all = expect(f.api.get(&base).await?, 200, "list")?;
    ensure!(count(&all) == 1, "nothing written: {all}");

    let csv =
        "email,display_name,enabled\nerin@example.com,Erin,true\nfrank@example.com,Frank,no\n";
    let r = f
        .api
        .raw("POST", &format!("{base}/import"), "text/csv", csv.into())
        .await?;
    let report = expect(r, 201, "import")?;
    ensure!(report["created"] == 2, "import: {report}");
    let bad = "email,display_name\ngina@example.com,Gina\nnot-an-email,X\nhank@example.com,\n";
    let r = f
        .api
        .raw("POST", &format!("{base}/import"), "text/csv", bad.into())
        .await?;
    ensure!(
        r.status == 422 && r.code() == "csv_invalid" && r.body["error"]["rows"][0]["line"] == 3,
        "bad csv: {}",
        r.text
    );
    let all = expect(f.api.get(&base).await?, 200, "list")?;
    ensure!(count(&all) == 3, "bad CSV wrote nothing: {all}");
    let r = f
        .api
        .raw(
            "POST",
            &format!("{base}/import"),
            "application/json",
            csv.into(),
        )
        .await?;
    ensure!(r.status == 415, "csv content type: {}", r.text);
    Ok(())
}

pub async fn bad_input(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let base = format!("/api/v1/tenants/{}/users", f.slug);
    let cases: [(&str, &str, u16, &str); 6] = [
        ("application/json", "{\"email\": ", 400, "malformed_json"),
        (
            "application/json",
            "{\"email\": \"x@example.com\", \"shoe\": 1}",
            422,
            "invalid_body",
        ),
        (
            "application/json",
            "{\"display_name\": \"x\"}",
            422,
            "invalid_body",
        ),
        (
            "application/json",
            "{\"email\": \"no-at-sign\"}",
            422,
            "invalid_field",
        ),
        (
            "text/plain",
            "{\"email\": \"x@example.com\"}",
            415,
            "unsupported_media_type",
        ),
        (
            "application/json",
            "{\"email\": \"x@example.com\", \"password\": \"short\"}",
            422,
            "invalid_field",
        ),
    ];
    for (ct, body, status, code) in cases {
        let r = f.api.raw("POST", &base, ct, body.into()).await?;
        ensure!(
            r.status == status && r.code() == code,
            "{body}: expected {status} {code}, got {} {}",
            r.status,
            r.text
        );
    }
    let huge = format!(
        "[{}]",
        vec!["{\"email\":\"padding-padding-padding@example.com\"}"; 120_000].join(",")
    );
    let token = format!("Bearer {}", f.api.token.as_deref().unwrap_or_default());
    let r = crate::client::post_refused_body(
        &format!("{}{base}/bulk", f.api.base),
        &[
            ("authorization", &token),
            ("content-type", "application/json"),
        ],
        huge.into(),
    )
    .await?;
    ensure!(
        r.status == 413 && r.code() == "payload_too_large",
        "oversized: {} {}",
        r.status,
        r.code()
    );
    let r = f.api.get(&format!("{base}?limit=0")).await?;
    ensure!(r.status == 422, "limit 0: {}", r.text);
    let r = f.api.get(&format!("{base}?colour=blue")).await?;
    ensure!(
        r.status == 400 && r.code() == "invalid_query",
        "unknown query param: {}",
        r.text
    );
    let r = f.api.get(&format!("{base}/not-a-uuid")).await?;
    ensure!(r.status == 404, "malformed id: {}", r.text);
    expect(
        f.api
            .post(&base, json!({ "email": "dup@example.com" }))
            .await?,
        201,
        "create",
    )?;
    let r = f
        .api
        .post(&base, json!({ "email": "Dup@Example.com" }))
        .await?;
    ensure!(
        r.status == 409 && r.code() == "user_email_taken",
        "duplicate: {}",
        r.text
    );
    let r =
        f.op.post(
            "/api/v1/tenants",
            json!({ "slug": f.slug, "name": "again" }),
        )
        .await?;
    ensure!(
        r.status == 409 && r.code() == "tenant_slug_taken",
        "duplicate tenant: {}",
        r.text
    );
    let r =
        f.op.post(
            "/api/v1/tenants",
            json!({ "slug": "Bad Slug", "name": "x" }),
        )
        .await?;
    ensure!(
        r.status == 422 && r.body["error"]["field"] == "slug",
        "bad slug: {}",
        r.text
    );
    let r = f
        .api
        .post(
            "/api/v1/tenants",
            json!({ "slug": format!("x-{}", uuid_hex()), "name": "x" }),
        )
        .await?;
    ensure!(
        r.status == 403,
        "tenant token cannot create tenants: {}",
        r.text
    );
    let users = expect(f.api.get(&base).await?, 200, "list")?;
    ensure!(count(&users) == 1, "only the one good user exists: {users}");
    Ok(())
}

pub async fn settings(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let path = format!("/api/v1/tenants/{}/settings", f.slug);
    let d = expect(f.api.get(&path).await?, 200, "get settings")?;
    ensure!(
        d["profile_validity_secs"] == 600
            && d["pin_required"] == false
            && d["qr_registration"] == true,
        "defaults: {d}"
    );
    let u = expect(
        f.api
            .send(
                "PATCH",
                &path,
                Some(json!({ "pin_required": true, "profile_validity_secs": 300 })),
            )
            .await?,
        200,
        "patch",
    )?;
    ensure!(
        u["pin_required"] == true
            && u["profile_validity_secs"] == 300
            && u["pin_lifetime_secs"] == d["pin_lifetime_secs"],
        "patched: {u}"
    );
    let r = f
        .api
        .send("PATCH", &path, Some(json!({ "profile_validity_secs": 5 })))
        .await?;
    ensure!(
        r.status == 422 && r.body["error"]["field"] == "profile_validity_secs",
        "bounds: {}",
        r.text
    );
    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=settings.updated",
                f.slug
            ))
            .await?,
        200,
        "audit",
    )?;
    let e = &audit["items"][0];
    ensure!(
        e["details"]["old"]["pin_required"] == false && e["details"]["new"]["pin_required"] == true,
        "audit: {audit}"
    );
    Ok(())
}

pub async fn enrollment_url_regeneration(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let path = format!("/api/v1/tenants/{}/enrollment-url", f.slug);
    let v1 = expect(f.api.get(&path).await?, 200, "get url")?;
    let old = v1["registration_url"].as_str().ok_or("url")?.to_string();
    ensure!(old.ends_with("/go") && v1["version"] == 1, "v1: {v1}");
    let public = Api::new("", None);
    let r = public.get(&old).await?;
    ensure!(
        r.status == 200 && r.text.contains("Test tenant"),
        "v1 works: {} {}",
        r.status,
        r.text
    );
    let v2 = expect(
        f.api
            .post(&format!("{path}/regenerate"), json!(null))
            .await?,
        200,
        "regenerate",
    )?;
    ensure!(
        v2["version"] == 2 && v2["registration_url"] != v1["registration_url"],
        "v2: {v2}"
    );
    let r = public.get(&old).await?;
    ensure!(
        r.status == 410 && r.text.contains("out of date"),
        "old URL: {} {}",
        r.status,
        r.text
    );
    let r = public.send("GET", &old, None).await?;
    ensure!(r.status == 410, "old URL again: {}", r.status);
    let r = public
        .get(v2["registration_url"].as_str().ok_or("url")?)
        .await?;
    ensure!(r.status == 200, "new URL works: {}", r.status);
    let forged = old.replace("/v1-", "/v1-x");
    ensure!(
        public.get(&forged).await?.status == 404,
        "forged URL is unknown"
    );
    let audit = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/audit?action=enrollment_url.",
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
        actions.contains(&"enrollment_url.regenerated")
            && actions.contains(&"enrollment_url.stale_used"),
        "audit: {actions:?}"
    );
    // Nothing else broke: the API and the new URL still work.
    expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/users", f.slug))
            .await?,
        200,
        "users after regenerate",
    )?;
    Ok(())
}

pub async fn tokens(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let path = format!("/api/v1/tenants/{}/tokens", f.slug);
    let t = expect(
        f.api
            .post(
                &path,
                json!({ "name": "short-lived", "expires_in_days": 1 }),
            )
            .await?,
        201,
        "create",
    )?;
    let secret = t["secret"].as_str().ok_or("secret")?;
    let id = t["token"]["id"].as_str().ok_or("id")?;
    let list = expect(f.api.get(&path).await?, 200, "list")?;
    ensure!(
        !list.to_string().contains(secret) && list.as_array().map(Vec::len) == Some(2),
        "list hides secrets: {list}"
    );
    let other = f.api.with_token(secret);
    expect(
        other.get(&format!("/api/v1/tenants/{}", f.slug)).await?,
        200,
        "new token works",
    )?;
    expect(
        f.api.send("DELETE", &format!("{path}/{id}"), None).await?,
        204,
        "revoke",
    )?;
    ensure!(
        other
            .get(&format!("/api/v1/tenants/{}", f.slug))
            .await?
            .status
            == 401,
        "revoked token refused"
    );
    let r = f.api.get("/api/v1/operator/tokens").await?;
    ensure!(
        r.status == 403,
        "tenant token cannot list operator tokens: {}",
        r.text
    );
    expect(
        f.op.get("/api/v1/operator/tokens").await?,
        200,
        "operator lists operator tokens",
    )?;
    Ok(())
}

pub async fn audit_filters(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let users = format!("/api/v1/tenants/{}/users", f.slug);
    let batch: Vec<Value> = (0..5)
        .map(|i| json!({ "email": format!("a{i}@example.com") }))
        .collect();
    let created = expect(
        f.api.post(&format!("{users}/bulk"), json!(batch)).await?,
        201,
        "bulk",
    )?;
    let uid = created[0]["id"].as_str().ok_or("id")?;
    expect(
        f.api
            .send(
                "PATCH",
                &format!("{users}/{uid}"),
                Some(json!({ "display_name": "Renamed" })),
            )
            .await?,
        200,
        "patch",
    )?;
    let audit = format!("/api/v1/tenants/{}/audit", f.slug);
    let by_user = expect(
        f.api.get(&format!("{audit}?user_id={uid}")).await?,
        200,
        "by user",
    )?;
    let actions: Vec<&str> = by_user["items"]
        .as_array()
        .ok_or("items")?
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    ensure!(
        actions == ["user.updated", "user.created"],
        "by user, newest first: {actions:?}"
    );
    let created = expect(
        f.api
            .get(&format!("{audit}?action=user.created&limit=2"))
            .await?,
        200,
        "paged",
    )?;
    let next = created["next"].as_str().ok_or("next cursor")?;
    let rest = expect(
        f.api
            .get(&format!(
                "{audit}?action=user.created&limit=10&before={next}"
            ))
            .await?,
        200,
        "page 2",
    )?;
    ensure!(
        count(&rest) == 3 && rest["next"].is_null(),
        "page 2: {rest}"
    );
    let first_actor = created["items"][0]["actor"].as_str().ok_or("actor")?;
    ensure!(
        first_actor.starts_with("token:"),
        "actor recorded: {first_actor}"
    );
    let by_actor = expect(
        f.api
            .get(&format!("{audit}?actor={first_actor}&action=user."))
            .await?,
        200,
        "by actor",
    )?;
    ensure!(count(&by_actor) == 6, "by actor: {by_actor}");
    let future = expect(
        f.api
            .get(&format!("{audit}?from=2999-01-01T00:00:00Z"))
            .await?,
        200,
        "from",
    )?;
    ensure!(count(&future) == 0, "time filter: {future}");
    let r = f.api.get(&format!("{audit}?from=yesterday")).await?;
    ensure!(r.status == 400, "bad time: {}", r.text);
    Ok(())
}

pub async fn openapi_drift(s: Arc<Server>) -> TestResult {
    let served = expect(
        Api::new(&s.base, None).get("/api/openapi.json").await?,
        200,
        "openapi",
    )?;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        let text = serde_json::to_string_pretty(&served).map_err(|e| e.to_string())?;
        std::fs::write(&path, text + "\n").map_err(|e| e.to_string())?;
    }
    let committed: Value = serde_json::from_str(
        &std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?,
    )
    .map_err(|e| e.to_string())?;
    ensure!(
        served == committed,
        "the API changed but docs/openapi.json did not: run `UPDATE_OPENAPI=1 cargo test -p mdm-server --test server openapi` and commit it"
    );
    Ok(())
}
