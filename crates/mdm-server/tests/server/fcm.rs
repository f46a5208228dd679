//! The FCM HTTP v1 client against the local fake: the service-account
//! assertion buys one access token that is reused, a revoked token is
//! replaced once, and every documented error maps onto the right outcome.

use crate::ensure;
use crate::fake_fcm::{FakeFcm, FcmReply, PROJECT};
use crate::fake_tls::err;
use crate::support::TestResult;
use mdm_core::ids::TenantId;
use mdm_core::push::{AndroidPush, PushOutcome};
use mdm_server::push::{Delivery, FcmClient, FcmSettings};
use std::collections::BTreeMap;
use std::time::Duration;

fn client_for(fake: &FakeFcm) -> Result<FcmClient, String> {
    FcmClient::new(FcmSettings {
        service_account_json: std::fs::read(&fake.service_account_file).map_err(err)?,
        endpoint: fake.url.clone(),
        token_uri: None,
        ca_pem: Some(fake.ca_pem.clone().into_bytes()),
        delivery: Delivery {
            max_in_flight: 8,
            timeout: Duration::from_secs(10),
            retries: 2,
            backoff: Duration::from_millis(30),
            max_wait: Duration::from_secs(2),
        },
    })
    .map_err(|e| format!("{e:#}"))
}

fn wake(n: u32) -> AndroidPush {
    AndroidPush {
        tenant_id: TenantId(uuid::Uuid::nil()),
        device_id: format!("device-{n}"),
        token: format!("fcm-token-{n}:APA91b{n:04}"),
        data: BTreeMap::from([("tenant".to_string(), "acme".to_string())]),
    }
}

pub async fn fcm_every_answer_maps(dir: &std::path::Path) -> TestResult {
    let fake = FakeFcm::start(dir).await?;
    let client = client_for(&fake)?;
    ensure!(
        client.project_id() == PROJECT,
        "project from the service account"
    );
    let pushes: Vec<AndroidPush> = (1..=9).map(wake).collect();
    let t: Vec<&str> = pushes.iter().map(|p| p.token.as_str()).collect();
    fake.script(
        t[1],
        &[FcmReply::new(404, "NOT_FOUND", Some("UNREGISTERED"))],
    );
    let mut quota = FcmReply::new(429, "RESOURCE_EXHAUSTED", Some("QUOTA_EXCEEDED"));
    quota.retry_after = Some("120");
    fake.script(t[2], &[quota]);
    fake.script(
        t[3],
        &[FcmReply::new(503, "UNAVAILABLE", Some("UNAVAILABLE"))],
    );
    fake.script(t[4], &[FcmReply::new(500, "INTERNAL", Some("INTERNAL")); 5]);
    fake.script(
        t[5],
        &[FcmReply::new(
            400,
            "INVALID_ARGUMENT",
            Some("INVALID_ARGUMENT"),
        )],
    );
    fake.script(
        t[6],
        &[FcmReply::new(
            403,
            "PERMISSION_DENIED",
            Some("SENDER_ID_MISMATCH"),
        )],
    );
    fake.script(
        t[7],
        &[FcmReply::new(
            401,
            "UNAUTHENTICATED",
            Some("THIRD_PARTY_AUTH_ERROR"),
        )],
    );
    fake.script(t[8], &[FcmReply::new(404, "NOT_FOUND", None)]);
    let o = client.push(&pushes).await;
    ensure!(o.len() == 9, "one outcome per push");
    ensure!(
        matches!(&o[0], PushOutcome::Sent { id: Some(n) } if n.starts_with(&format!("projects/{PROJECT}/messages/"))),
        "200 → Sent with the message name: {:?}",
        o[0]
    );
    ensure!(
        o[1] == PushOutcome::TokenGone { since: None },
        "UNREGISTERED → TokenGone: {:?}",
        o[1]
    );
    let now = time::OffsetDateTime::now_utc();
    ensure!(
        matches!(o[2], PushOutcome::Retry { retry_after: Some(at), .. } if at >= now + time::Duration::seconds(110)),
        "QUOTA_EXCEEDED honours Retry-After: {:?}",
        o[2]
    );
    ensure!(
        fake.received_for(t[2]).len() == 1,
        "quota: no retry in process"
    );
    ensure!(
        matches!(o[3], PushOutcome::Sent { .. }) && fake.received_for(t[3]).len() == 2,
        "UNAVAILABLE once → retried → Sent: {:?}",
        o[3]
    );
    ensure!(
        matches!(&o[4], PushOutcome::Retry { reason, .. } if reason.contains("INTERNAL")),
        "INTERNAL every time → Retry: {:?}",
        o[4]
    );
    ensure!(
        fake.received_for(t[4]).len() == 3,
        "1 try + 2 retries: {}",
        fake.received_for(t[4]).len()
    );
    for (i, code) in [
        (5, "INVALID_ARGUMENT"),
        (6, "SENDER_ID_MISMATCH"),
        (7, "THIRD_PARTY_AUTH_ERROR"),
    ] {
        ensure!(
            matches!(&o[i], PushOutcome::Rejected { reason } if reason.contains(code)),
            "{code} → Rejected: {:?}",
            o[i]
        );
    }
    ensure!(
        matches!(o[8], PushOutcome::Rejected { .. }),
        "a bare 404 never declares a token dead: {:?}",
        o[8]
    );
    ensure!(
        fake.exchanges() == 1,
        "one access token for every push: {}",
        fake.exchanges()
    );

    // The message only wakes the agent: data, high priority, no notification.
    let sent = fake.received_for(t[0]);
    let m = &sent.first().ok_or("received")?.message;
    ensure!(
        m["data"]["type"] == "wake" && m["data"]["tenant"] == "acme",
        "data: {}",
        m["data"]
    );
    ensure!(
        m["android"]["priority"] == "high",
        "priority: {}",
        m["android"]
    );
    Ok(())
}

pub async fn fcm_refreshes_a_revoked_access_token(dir: &std::path::Path) -> TestResult {
    let fake = FakeFcm::start(dir).await?;
    let client = client_for(&fake)?;
    let first = client.push_one(&wake(1)).await;
    ensure!(
        matches!(first, PushOutcome::Sent { .. }),
        "first: {first:?}"
    );
    fake.revoke_all();
    let again = client.push_one(&wake(2)).await;
    ensure!(
        matches!(again, PushOutcome::Sent { .. }),
        "after revocation: {again:?}"
    );
    ensure!(
        fake.exchanges() == 2,
        "a new token was fetched once: {}",
        fake.exchanges()
    );
    ensure!(
        fake.received_for(&wake(2).token)
            .iter()
            .map(|r| r.status)
            .collect::<Vec<_>>()
            == [401, 200],
        "401, then 200 with the new token"
    );

    // A bad registration token is refused before anything is sent.
    let mut bad = wake(3);
    bad.token = "not a token!".into();
    let out = client.push_one(&bad).await;
    ensure!(
        matches!(out, PushOutcome::Rejected { .. }),
        "malformed token: {out:?}"
    );
    ensure!(
        fake.received_for(&bad.token).is_empty(),
        "nothing sent for it"
    );

    // A service account the token endpoint does not know is refused.
    let other = mdm_pki::RsaKey::generate(2048).map_err(err)?;
    let mut account: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&fake.service_account_file).map_err(err)?)
            .map_err(err)?;
    account["private_key"] = other.to_pkcs8_pem().map_err(err)?.as_str().into();
    let forged = FcmClient::new(FcmSettings {
        service_account_json: account.to_string().into_bytes(),
        endpoint: fake.url.clone(),
        token_uri: None,
        ca_pem: Some(fake.ca_pem.clone().into_bytes()),
        delivery: Delivery::default(),
    })
    .map_err(|e| format!("{e:#}"))?;
    let out = forged.push_one(&wake(4)).await;
    ensure!(
        matches!(&out, PushOutcome::Rejected { reason } if reason.contains("invalid_grant")),
        "wrong key: {out:?}"
    );
    ensure!(
        fake.received_for(&wake(4).token).is_empty(),
        "no send without a token"
    );
    Ok(())
}
