//! R1: a token of tenant A gets 404 for every tenant-B resource on every
//! route. The routes come from the OpenAPI document, so a new route is
//! covered the day it is added (and a new write route must get a sample body here).

use crate::api::fixture;
use crate::client::{Api, Reply, expect};
use crate::ensure;
use crate::support::{Server, TestResult};
use serde_json::{Value, json};
use std::sync::Arc;

/// A valid body for each write route, so that validation cannot answer before the tenant check.
fn sample_body(method: &str, path: &str) -> Option<(&'static str, Vec<u8>)> {
    let j = |v: Value| Some(("application/json", v.to_string().into_bytes()));
    match (method, path) {
        ("post", "/api/v1/tenants/{tenant}/users") => j(json!({ "email": "intruder@example.com" })),
        ("post", "/api/v1/tenants/{tenant}/users/bulk") => {
            j(json!([{ "email": "intruder@example.com" }]))
        }
        ("post", "/api/v1/tenants/{tenant}/users/import") => {
            Some(("text/csv", b"email\nintruder@example.com\n".to_vec()))
        }
        ("patch", "/api/v1/tenants/{tenant}/users/{user_id}") => {
            j(json!({ "display_name": "Intruded" }))
        }
        ("patch", "/api/v1/tenants/{tenant}/settings") => j(json!({ "pin_required": true })),
        ("post", "/api/v1/tenants/{tenant}/tokens") => j(json!({ "name": "intruder" })),
        ("post", "/api/v1/operator/tokens") => j(json!({ "name": "intruder" })),
        ("post", "/api/v1/tenants") => j(json!({ "slug": "intruder-tenant", "name": "x" })),
        ("post", "/api/v1/tenants/{tenant}/enrollment-profiles") => j(json!({ "platform": "ios" })),
        ("put", "/api/v1/tenants/{tenant}/ca/signing-identity") => j(json!({
            "certificate_pem": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        })),
        ("post", "/api/v1/tenants/{tenant}/scep/challenges") => {
            j(json!({ "registration": "intruder" }))
        }
        ("post", "/api/v1/tenants/{tenant}/certificates/{serial}/revoke") => {
            Some(("application/json", Vec::new()))
        }
        ("put", "/api/v1/tenants/{tenant}/directory") => j(json!({
            "url": "ldap://127.0.0.1:9", "bind_dn": "cn=intruder,dc=x", "bind_password": "x",
            "base_dn": "dc=x",
        })),
        (
            "post",
            "/api/v1/tenants/{tenant}/directory/test" | "/api/v1/tenants/{tenant}/directory/sync",
        ) => Some(("application/json", Vec::new())),
        ("post", "/api/v1/tenants/{tenant}/enrollment-url/regenerate")
        | ("post", "/api/v1/tenants/{tenant}/devices/{id}/retire")
        | ("post", "/api/v1/tenants/{tenant}/devices/{id}/reenroll")
        | ("post", "/api/v1/tenants/{tenant}/devices/{id}/resend-profile")
        | ("post", "/api/v1/tenants/{tenant}/registrations/{id}/cancel") => {
            Some(("application/json", Vec::new()))
        }
        ("post", "/api/v1/tenants/{tenant}/invitations") => {
            j(json!({ "all_not_registered": true }))
        }
        ("post", "/api/v1/tenants/{tenant}/invitations/{invitation_id}/resend")
        | ("post", "/api/v1/tenants/{tenant}/registrations/{id}/remind") => {
            Some(("application/json", Vec::new()))
        }
        ("put", "/api/v1/tenants/{tenant}/mail-templates/invitation") => j(json!({
            "subject": "intruder", "text": "{{ registration_url }} {{ pin_block }}", "html": "{{ registration_url }} {{ pin_block }}"
        })),
        ("put", "/api/v1/tenants/{tenant}/mail-templates/reminder") => j(json!({
            "subject": "intruder", "text": "{{ registration_url }}", "html": "{{ registration_url }}"
        })),
        ("post", "/api/v1/tenants/{tenant}/devices/{id}/commands") => {
            j(json!({ "type": "ProfileList" }))
        }
        ("post", "/api/v1/tenants/{tenant}/devices/{id}/wipe")
        | ("post", "/api/v1/tenants/{tenant}/devices/{id}/lock") => j(json!({})),
        ("post", "/api/v1/tenants/{tenant}/android/provisioning") => j(json!({
            "user_id": "00000000-0000-0000-0000-000000000000", "management_mode": "fully_managed"
        })),
        _ => None,
    }
}

pub async fn tenant_isolation_on_every_route(s: Arc<Server>) -> TestResult {
    let a = fixture(&s).await?;
    let b = fixture(&s).await?;
    let b_user = expect(
        b.api
            .post(
                &format!("/api/v1/tenants/{}/users", b.slug),
                json!({ "email": "bob@example.com" }),
            )
            .await?,
        201,
        "b user",
    )?;
    let b_user_id = b_user["id"].as_str().ok_or("id")?.to_string();
    let b_token = expect(
        b.api
            .post(
                &format!("/api/v1/tenants/{}/tokens", b.slug),
                json!({ "name": "b" }),
            )
            .await?,
        201,
        "b token",
    )?;
    let b_token_id = b_token["token"]["id"].as_str().ok_or("id")?.to_string();
    let b_serial = crate::scep::enroll_one(&s, &b, "b-device").await?;
    let b_invitation = expect(
        b.api
            .post(
                &format!("/api/v1/tenants/{}/invitations", b.slug),
                json!({ "user_ids": [b_user_id] }),
            )
            .await?,
        201,
        "b invitation",
    )?;
    let b_invitation_id = b_invitation["invitations"][0]["id"]
        .as_str()
        .ok_or("id")?
        .to_string();
    // Let the mail go out first, so b's audit trail is settled.
    for _ in 0..100 {
        let i = b
            .api
            .get(&format!(
                "/api/v1/tenants/{}/invitations/{b_invitation_id}",
                b.slug
            ))
            .await?;
        if i.body["delivery"] != "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let (_, b_device) = crate::apple_device::enrolled(&s, &b, "ios", None).await?;
    let b_registration = crate::apple_device::profile(&s, &b, "macos", None)
        .await?
        .registration;
    let b_before = snapshot(&b.api, &b.slug).await?;

    let doc = expect(
        Api::new(&s.base, None).get("/api/openapi.json").await?,
        200,
        "openapi",
    )?;
    let paths = doc["paths"].as_object().ok_or("paths")?;
    let mut checked = 0;
    for (path, item) in paths {
        for method in item.as_object().ok_or("path item")?.keys() {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let body = match (method.as_str(), sample_body(method, path)) {
                ("get" | "delete", _) => None,
                (_, Some(b)) => Some(b),
                (_, None) => {
                    return Err(format!(
                        "{method} {path}: add a sample body to the isolation test"
                    ));
                }
            };
            let expected: &[u16] = if path.contains("{tenant}") {
                &[404]
            } else if method == "get" && path == "/api/v1/tenants" {
                &[200]
            } else {
                &[403]
            };
            let fill = |tenant: &str| {
                path.replace("{tenant}", tenant)
                    .replace("{user_id}", &b_user_id)
                    .replace("{token_id}", &b_token_id)
                    .replace("{serial}", &b_serial)
                    .replace("{invitation_id}", &b_invitation_id)
                    .replace("/devices/{id}", &format!("/devices/{b_device}"))
                    .replace(
                        "/registrations/{id}",
                        &format!("/registrations/{b_registration}"),
                    )
            };
            for tenant_ref in [b.slug.as_str(), b.tenant_id.as_str()] {
                let url = fill(tenant_ref);
                let r = call(&a.api, method, &url, &body).await?;
                ensure!(
                    expected.contains(&r.status),
                    "{method} {url} with tenant A's token: expected {expected:?}, got {} {}",
                    r.status,
                    r.text
                );
                ensure!(
                    !r.text.contains(&b_user_id)
                        && !r.text.contains(&b.tenant_id)
                        && !r.text.contains(&b_serial)
                        && !r.text.contains(&b_invitation_id),
                    "{method} {url} leaked tenant B data: {}",
                    r.text
                );
                checked += 1;
            }
            // Tenant A's own path with tenant B's ids.
            let names_b_id = ["{user_id}", "{token_id}", "{serial}", "{invitation_id}"]
                .iter()
                .any(|p| path.contains(p));
            if path.contains("{tenant}") && names_b_id {
                let url = fill(&a.slug);
                let r = call(&a.api, method, &url, &body).await?;
                ensure!(
                    r.status == 404,
                    "{method} {url} (B's id under A): expected 404, got {} {}",
                    r.status,
                    r.text
                );
            }
        }
    }
    ensure!(checked >= 30, "only {checked} route checks ran");
    ensure!(
        snapshot(&b.api, &b.slug).await? == b_before,
        "tenant B changed under tenant A's requests"
    );
    // B's token still works: it was not revoked through A.
    expect(
        Api::new(&s.base, b_token["secret"].as_str())
            .get(&format!("/api/v1/tenants/{}", b.slug))
            .await?,
        200,
        "b token alive",
    )?;
    Ok(())
}

/// Sends `method url` with the sample body, if any.
async fn call(
    api: &Api,
    method: &str,
    url: &str,
    body: &Option<(&str, Vec<u8>)>,
) -> Result<Reply, String> {
    match body {
        Some((ct, bytes)) => {
            api.raw(&method.to_uppercase(), url, ct, bytes.clone())
                .await
        }
        None => api.send(&method.to_uppercase(), url, None).await,
    }
}

/// Everything observable about a tenant, to show requests from elsewhere changed nothing.
async fn snapshot(api: &Api, slug: &str) -> Result<Value, String> {
    let mut snap = serde_json::Map::new();
    for part in [
        "users",
        "settings",
        "enrollment-url",
        "tokens",
        "certificates",
        "ca",
    ] {
        let v = expect(
            api.get(&format!("/api/v1/tenants/{slug}/{part}")).await?,
            200,
            part,
        )?;
        snap.insert(part.into(), v);
    }
    let audit = expect(
        api.get(&format!("/api/v1/tenants/{slug}/audit?limit=1000"))
            .await?,
        200,
        "audit",
    )?;
    let stale: Vec<&Value> = audit["items"]
        .as_array()
        .ok_or("items")?
        .iter()
        .filter(|e| e["action"] != "enrollment_url.stale_used")
        .collect();
    snap.insert("audit".into(), json!(stale.len()));
    Ok(Value::Object(snap))
}
