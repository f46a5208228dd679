//! Apple refusals (each precise, none changing anything) and iOS
//! re-enrolment (R17).

use crate::api::fixture;
use crate::apple::audit_actions;
use crate::apple_device::{
    Dev, TOPIC, device, dict, enrolled, exec_sql, profile, reenroll_profile, text,
};
use crate::client::{count, expect};
use crate::ensure;
use crate::support::{Server, TestResult};
use mdm_apple::plist::Value;
use serde_json::json;
use std::sync::Arc;

/// Everything a refusal must leave alone: devices, audit trail, commands.
async fn snapshot(f: &crate::api::Fixture, device_id: &str) -> Result<String, String> {
    let mut devices = f
        .api
        .get(&format!("/api/v1/tenants/{}/devices", f.slug))
        .await?
        .body;
    if let Some(items) = devices["items"].as_array_mut() {
        for d in items {
            if let Some(o) = d.as_object_mut() {
                o.remove("last_seen_at");
            }
        }
    }
    let audit = f
        .api
        .get(&format!("/api/v1/tenants/{}/audit?limit=1000", f.slug))
        .await?
        .text;
    let commands = f
        .api
        .get(&format!(
            "/api/v1/tenants/{}/devices/{device_id}/commands",
            f.slug
        ))
        .await?
        .text;
    // last_seen_at is written in batches seconds after accepted requests, so it is left out.
    Ok(format!("{devices}\n{audit}\n{commands}"))
}

pub fn body(pairs: &[(&str, Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = mdm_apple::plist::to_writer_xml(&mut out, &Value::Dictionary(dict(pairs)));
    out
}

pub async fn apple_refusals_change_nothing(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let other = fixture(&s).await?;
    let (a, a_id) = enrolled(&s, &f, "ios", None).await?;
    let (b, _) = enrolled(&s, &f, "ios", None).await?;
    let before = snapshot(&f, &a_id).await?;
    let idle = body(&[("Status", text("Idle")), ("UDID", text(&a.udid))]);
    let sig = a.sign(&idle)?;

    // The unknown tenant, no identity, a malformed plist, an unknown type, a body too large.
    let nowhere = Dev {
        slug: "no-such-tenant".into(),
        ..a.clone()
    };
    ensure!(
        nowhere
            .put("connect", idle.clone(), Some(sig.clone()))
            .await?
            .0
            == 404,
        "unknown tenant"
    );
    ensure!(
        a.put("connect", idle.clone(), None).await?.0 == 412,
        "no identity"
    );
    let junk = b"<plist><dict><key>Status</key>".to_vec();
    ensure!(
        a.put("connect", junk.clone(), Some(a.sign(&junk)?))
            .await?
            .0
            == 400,
        "malformed plist"
    );
    let odd = body(&[("MessageType", text("Teleport")), ("UDID", text(&a.udid))]);
    ensure!(
        a.put("checkin", odd.clone(), Some(a.sign(&odd)?)).await?.0 == 400,
        "unknown MessageType"
    );
    let huge = vec![b' '; 1024 * 1024 + 10];
    ensure!(
        a.put("checkin", huge, None).await?.0 == 413,
        "oversized body"
    );

    // A signature replayed from another device (B's header over A's body), a bad header.
    let b_body = body(&[("Status", text("Idle")), ("UDID", text(&b.udid))]);
    ensure!(
        a.put("connect", idle.clone(), Some(b.sign(&b_body)?))
            .await?
            .0
            == 412,
        "replayed signature"
    );
    ensure!(
        a.put("connect", idle.clone(), Some("bm90IGEgc2lnbmF0dXJl".into()))
            .await?
            .0
            == 412,
        "garbage signature"
    );
    // UDID mismatch: B signs a message claiming to be A.
    ensure!(
        b.put("connect", idle.clone(), Some(b.sign(&idle)?))
            .await?
            .0
            == 409,
        "UDID mismatch"
    );
    let tu = body(&[
        ("MessageType", text("TokenUpdate")),
        ("UDID", text(&a.udid)),
        ("Topic", text(TOPIC)),
        ("Token", Value::Data(vec![1; 32])),
        ("PushMagic", text("x")),
    ]);
    ensure!(
        b.put("checkin", tu.clone(), Some(b.sign(&tu)?)).await?.0 == 409,
        "TokenUpdate for another UDID"
    );
    // One certificate cannot authenticate a second UDID.
    let auth = body(&[
        ("MessageType", text("Authenticate")),
        ("UDID", text("FFFF-SECOND-UDID")),
        ("Topic", text(TOPIC)),
    ]);
    ensure!(
        a.put("checkin", auth.clone(), Some(a.sign(&auth)?))
            .await?
            .0
            == 409,
        "certificate reused"
    );
    // A certificate of another tenant's CA, and one nobody issued.
    let p = profile(&s, &other, "ios", None).await?;
    let foreign = Dev::enrol(&s, &other, &p, "AAAA-FOREIGN").await?;
    let foreign = Dev {
        slug: f.slug.clone(),
        ..foreign
    };
    ensure!(foreign.authenticate().await? == 412, "foreign CA");
    ensure!(
        foreign
            .put("connect", idle.clone(), Some(foreign.sign(&idle)?))
            .await?
            .0
            == 409,
        "foreign on A's channel"
    );
    // UserAuthenticate is declined by default (HTTP 410, Apple's decline).
    let ua = body(&[
        ("MessageType", text("UserAuthenticate")),
        ("UDID", text(&a.udid)),
        ("UserID", text("GUID-X")),
    ]);
    ensure!(
        a.put("checkin", ua.clone(), Some(a.sign(&ua)?)).await?.0 == 410,
        "UserAuthenticate declined"
    );
    ensure!(
        snapshot(&f, &a_id).await? == before,
        "a refusal changed something"
    );

    // Registrations that are over: cancelled, or expired before Authenticate.
    for end in ["cancel", "expire"] {
        let p = profile(&s, &f, "ios", None).await?;
        let late = Dev::enrol(&s, &f, &p, &format!("LATE-{end}")).await?;
        if end == "cancel" {
            expect(
                f.api
                    .post(
                        &format!(
                            "/api/v1/tenants/{}/registrations/{}/cancel",
                            f.slug, p.registration
                        ),
                        json!({}),
                    )
                    .await?,
                200,
                "cancel",
            )?;
        } else {
            exec_sql(
                &s,
                "UPDATE registrations SET expires_at = 0 WHERE id = $1",
                &[&p.registration],
            )
            .await?;
        }
        let n = count(&expect(
            f.api
                .get(&format!("/api/v1/tenants/{}/devices", f.slug))
                .await?,
            200,
            "devices",
        )?);
        ensure!(
            late.authenticate().await? == 410,
            "{end}ed registration must be refused"
        );
        let m = count(&expect(
            f.api
                .get(&format!("/api/v1/tenants/{}/devices", f.slug))
                .await?,
            200,
            "devices",
        )?);
        ensure!(n == m, "a refused Authenticate made a device");
    }
    // A revoked certificate is refused.
    let serial = mdm_pki::CertificateExt::serial_hex(&a.cert);
    expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/certificates/{serial}/revoke", f.slug),
                json!({}),
            )
            .await?,
        200,
        "revoke",
    )?;
    ensure!(a.idle().await?.0 == 412, "revoked certificate");
    Ok(())
}

pub async fn drain(dev: &Dev) -> Result<(), String> {
    loop {
        let (code, cmd) = dev.idle().await?;
        ensure!(code == 200, "idle: {code}");
        match cmd {
            Some(c) => {
                dev.ack(&c.command_uuid).await?;
            }
            None => return Ok(()),
        }
    }
}

pub async fn apple_reenrolment_cancel_expire_retry(s: Arc<Server>) -> TestResult {
    let f = fixture(&s).await?;
    let (dev, id) = enrolled(&s, &f, "ios", None).await?;
    drain(&dev).await?;

    // First attempt: cancelled during installation → MDM disabled.
    let first = reenroll_profile(&s, &f, &id).await?;
    let reg = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/registrations/{}",
                f.slug, first.registration
            ))
            .await?,
        200,
        "reg",
    )?;
    ensure!(
        reg["purpose"] == "reenroll" && reg["device_id"] == id.as_str(),
        "re-enrolment registration: {reg}"
    );
    expect(
        f.api
            .post(
                &format!(
                    "/api/v1/tenants/{}/registrations/{}/cancel",
                    f.slug, first.registration
                ),
                json!({}),
            )
            .await?,
        200,
        "cancel",
    )?;
    ensure!(
        device(&f, &id).await?["status"] == "mdm_disabled",
        "cancel disables MDM"
    );
    ensure!(
        dev.idle().await?.0 == 404,
        "a disabled device gets no commands"
    );
    let again = f
        .api
        .post(
            &format!(
                "/api/v1/tenants/{}/registrations/{}/cancel",
                f.slug, first.registration
            ),
            json!({}),
        )
        .await?;
    ensure!(again.status == 409, "cancelling twice: {}", again.status);

    // Second attempt: expires unused → the expiry job disables MDM (again) with an audit entry.
    let second = reenroll_profile(&s, &f, &id).await?;
    exec_sql(
        &s,
        "UPDATE registrations SET expires_at = 0 WHERE id = $1",
        &[&second.registration],
    )
    .await?;
    exec_sql(
        &s,
        "UPDATE jobs SET run_at = 0 WHERE dedupe_key LIKE $1",
        &[&format!("registration.expire:{}:%", second.registration)],
    )
    .await?;
    let mut status = json!(null);
    for _ in 0..40 {
        status = expect(
            f.api
                .get(&format!(
                    "/api/v1/tenants/{}/registrations/{}",
                    f.slug, second.registration
                ))
                .await?,
            200,
            "reg",
        )?["status"]
            .clone();
        if status == "expired" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    ensure!(status == "expired", "expiry job: {status}");

    // Third attempt succeeds: same record, new certificate, active again, stale queue cancelled.
    let stale = expect(
        f.api
            .post(
                &format!("/api/v1/tenants/{}/devices/{id}/commands", f.slug),
                json!({ "type": "ProfileList" }),
            )
            .await?,
        201,
        "queue",
    )?;
    let third = reenroll_profile(&s, &f, &id).await?;
    let renewed = Dev::enrol(&s, &f, &third, &dev.udid).await?;
    ensure!(renewed.authenticate().await? == 200, "re-Authenticate");
    ensure!(renewed.token_update().await? == 200, "TokenUpdate");
    let d = device(&f, &id).await?;
    ensure!(d["status"] == "active", "re-enrolled: {d}");
    let devices = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/devices", f.slug))
            .await?,
        200,
        "devices",
    )?;
    ensure!(count(&devices) == 1, "one record: {devices}");
    let cmds = expect(
        f.api
            .get(&format!("/api/v1/tenants/{}/devices/{id}/commands", f.slug))
            .await?,
        200,
        "cmds",
    )?;
    let stale_now = cmds["items"].as_array().and_then(|a| {
        a.iter()
            .find(|c| c["command_uuid"] == stale["command_uuid"])
            .cloned()
    });
    ensure!(
        stale_now.is_some_and(|c| c["state"] == "cancelled"),
        "stale queue cancelled, kept as history: {cmds}"
    );
    ensure!(
        dev.idle().await?.0 == 409,
        "the old certificate no longer serves the device"
    );
    let (_, cmd) = renewed.idle().await?;
    ensure!(
        cmd.is_some_and(|c| c.request.request_type() == "DeviceInformation"),
        "DeviceInformation after re-enrolment"
    );
    let reg = expect(
        f.api
            .get(&format!(
                "/api/v1/tenants/{}/registrations/{}",
                f.slug, third.registration
            ))
            .await?,
        200,
        "reg",
    )?;
    ensure!(reg["status"] == "active", "third attempt: {reg}");
    let trail = audit_actions(&f, "").await?;
    let n = |a: &str| trail.iter().filter(|t| *t == a).count();
    ensure!(
        n("device.mdm_disabled") == 2
            && n("registration.cancelled") == 1
            && n("registration.expired") == 1
            && n("device.reenrolling") == 1,
        "audit: {trail:?}"
    );
    Ok(())
}
