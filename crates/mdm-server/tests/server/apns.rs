//! The APNs provider client against the local fake: every answer Apple
//! documents maps onto the right outcome, one HTTP/2 connection carries
//! every push, concurrency stays within its bound, transient failures are
//! retried with back-off a bounded number of times, and `mdm serve` picks
//! the client up from its configuration.

use crate::ensure;
use crate::fake_apns::{FakeApns, FakeAuth, Reply, TOPIC};
use crate::fake_tls::err;
use crate::support::TestResult;
use mdm_core::ids::TenantId;
use mdm_core::push::{ApplePush, PushOutcome};
use mdm_server::push::{ApnsAuth, ApnsClient, ApnsSettings, Delivery, ProviderToken};
use std::time::Duration;

pub fn delivery(max_in_flight: usize) -> Delivery {
    Delivery {
        max_in_flight,
        timeout: Duration::from_secs(10),
        retries: 2,
        backoff: Duration::from_millis(40),
        max_wait: Duration::from_secs(2),
    }
}

/// A client for the fake, with the credentials it handed out.
pub fn client_for(fake: &FakeApns, delivery: Delivery) -> Result<ApnsClient, String> {
    let c = &fake.credentials;
    let key = std::fs::read(&c.key_file).map_err(err)?;
    let auth = match &c.cert_file {
        Some(cert) => ApnsAuth::Certificate {
            cert_pem: std::fs::read(cert).map_err(err)?,
            key_pem: key,
        },
        None => ApnsAuth::Token(
            ProviderToken::from_p8(&key, &c.key_id, &c.team_id).map_err(|e| format!("{e:#}"))?,
        ),
    };
    ApnsClient::new(ApnsSettings {
        endpoint: fake.url.clone(),
        auth,
        ca_pem: Some(fake.ca_pem.clone().into_bytes()),
        delivery,
    })
    .map_err(|e| format!("{e:#}"))
}

/// A push to a device token made of `n`.
pub fn push(n: u32) -> ApplePush {
    let mut token = vec![0xa5; 32];
    token[..4].copy_from_slice(&n.to_be_bytes());
    ApplePush {
        tenant_id: TenantId(uuid::Uuid::nil()),
        enrollment_id: format!("UDID-{n}"),
        token,
        push_magic: format!("magic-{n}"),
        topic: TOPIC.into(),
        expires_at: None,
    }
}

fn hex_of(p: &ApplePush) -> String {
    hex::encode(&p.token)
}

pub async fn apns_token_auth_every_answer_maps(dir: &std::path::Path) -> TestResult {
    let fake = FakeApns::start(FakeAuth::Token, dir).await?;
    let client = client_for(&fake, delivery(8))?;
    let pushes: Vec<ApplePush> = (1..=9).map(push).collect();
    let h: Vec<String> = pushes.iter().map(hex_of).collect();
    fake.script(&h[1], &[Reply::Gone(1_700_000_000_123)]);
    fake.script(&h[2], &[Reply::Status(429, "TooManyRequests")]);
    fake.script(&h[3], &[Reply::Status(500, "InternalServerError"); 5]);
    fake.script(&h[4], &[Reply::Status(503, "ServiceUnavailable")]);
    fake.script(&h[5], &[Reply::Status(400, "BadDeviceToken")]);
    fake.script(&h[6], &[Reply::Status(403, "ExpiredProviderToken")]);
    fake.script(
        &h[7],
        &[Reply::Status(429, "TooManyProviderTokenUpdates"); 5],
    );
    fake.script(&h[8], &[Reply::Status(400, "BadTopic")]);
    let outcomes = client.push(&pushes).await;
    ensure!(outcomes.len() == 9, "one outcome per push");

    ensure!(
        matches!(&outcomes[0], PushOutcome::Sent { id: Some(id) } if id.starts_with("00000000-")),
        "200 → Sent with apns-id: {:?}",
        outcomes[0]
    );
    let since =
        time::OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_000_000).map_err(err)?;
    ensure!(
        outcomes[1] == PushOutcome::TokenGone { since: Some(since) },
        "410 → TokenGone with Apple's timestamp: {:?}",
        outcomes[1]
    );
    ensure!(
        matches!(outcomes[2], PushOutcome::Sent { .. }) && fake.received_for(&h[2]).len() == 2,
        "one 429 is retried in process: {:?}",
        outcomes[2]
    );
    ensure!(
        matches!(&outcomes[3], PushOutcome::Retry { reason, retry_after: Some(_) } if reason.contains("500")),
        "500 after every retry → Retry: {:?}",
        outcomes[3]
    );
    ensure!(
        fake.received_for(&h[3]).len() == 3,
        "first try + 2 retries, then stop: {}",
        fake.received_for(&h[3]).len()
    );
    ensure!(
        matches!(outcomes[4], PushOutcome::Sent { .. }),
        "503 once → retried → Sent: {:?}",
        outcomes[4]
    );
    // mdm_apple::classify_response: 400 BadDeviceToken means the token is dead.
    ensure!(
        matches!(outcomes[5], PushOutcome::TokenGone { since: None }),
        "400 BadDeviceToken → TokenGone: {:?}",
        outcomes[5]
    );
    // A fresh token called expired is clock skew: renewing it within 20
    // minutes would be refused, so the push is rejected with Apple's reason.
    ensure!(
        matches!(&outcomes[6], PushOutcome::Rejected { reason } if reason.contains("403 ExpiredProviderToken")),
        "403 ExpiredProviderToken → Rejected: {:?}",
        outcomes[6]
    );
    ensure!(
        matches!(&outcomes[7], PushOutcome::Retry { reason, .. } if reason.contains("TooManyProviderTokenUpdates")),
        "429 TooManyProviderTokenUpdates → Retry: {:?}",
        outcomes[7]
    );
    ensure!(
        matches!(&outcomes[8], PushOutcome::Rejected { reason } if reason.contains("400 BadTopic")),
        "400 BadTopic → Rejected: {:?}",
        outcomes[8]
    );

    // Every request was well formed and carried the one cached token.
    let received = fake.received();
    for r in &received {
        ensure!(
            r.topic.as_deref() == Some(TOPIC),
            "apns-topic {:?}",
            r.topic
        );
        ensure!(
            r.push_type.as_deref() == Some("mdm"),
            "apns-push-type {:?}",
            r.push_type
        );
        ensure!(
            r.priority.as_deref() == Some("10"),
            "apns-priority {:?}",
            r.priority
        );
        let exp: i64 = r
            .expiration
            .as_deref()
            .unwrap_or("x")
            .parse()
            .map_err(err)?;
        ensure!(
            exp > time::OffsetDateTime::now_utc().unix_timestamp(),
            "expiration in the future"
        );
        let n = u32::from_str_radix(&r.token_hex[..8], 16).map_err(err)?;
        ensure!(
            r.push_magic.as_deref() == Some(format!("magic-{n}").as_str()),
            "body {{\"mdm\": PushMagic}}"
        );
    }
    ensure!(
        !received
            .iter()
            .any(|r| r.status == 403 && h[6] != r.token_hex),
        "every provider token verified (signature, kid, iss, iat)"
    );
    ensure!(
        fake.distinct_jwts() == 1,
        "one provider token for all pushes: {}",
        fake.distinct_jwts()
    );
    ensure!(
        fake.connections() == 1,
        "one connection: {}",
        fake.connections()
    );
    Ok(())
}

pub async fn apns_certificate_auth(dir: &std::path::Path) -> TestResult {
    let fake = FakeApns::start(FakeAuth::Certificate, dir).await?;
    let client = client_for(&fake, delivery(4))?;
    let cert = client
        .certificate()
        .ok_or("the client reads its push certificate")?;
    ensure!(
        cert.topic.as_deref() == Some(TOPIC),
        "topic from the UID: {:?}",
        cert.topic
    );
    ensure!(
        cert.days_left(time::OffsetDateTime::now_utc()) > 300,
        "expiry read: {}",
        cert.not_after
    );
    let outcomes = client.push(&[push(1), push(2)]).await;
    ensure!(
        outcomes
            .iter()
            .all(|o| matches!(o, PushOutcome::Sent { .. })),
        "mutual TLS with the push certificate: {outcomes:?}"
    );
    let seen = fake
        .wait_for_push(&hex_of(&push(2)), Duration::from_secs(1))
        .await;
    ensure!(
        seen.is_some_and(|p| p.push_magic.as_deref() == Some("magic-2")),
        "the fake recorded the push"
    );
    ensure!(
        fake.received().iter().all(|r| r.jwt.is_none()),
        "no provider token with a certificate"
    );

    // Without a certificate from Apple's CA the handshake fails: nothing
    // reaches APNs, and the push is handed back for later.
    let stranger = crate::fake_tls::TestPki::new("Other CA")?.client_cert("x", Some(TOPIC))?;
    let p8 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(err)?;
    let foreign = ApnsAuth::Certificate {
        cert_pem: stranger.cert_pem.into_bytes(),
        key_pem: stranger.key_pem.into_bytes(),
    };
    let none = ApnsAuth::Token(
        ProviderToken::from_p8(p8.serialize_pem().as_bytes(), "KEY", "TEAM")
            .map_err(|e| format!("{e:#}"))?,
    );
    for (what, auth) in [("a foreign certificate", foreign), ("no certificate", none)] {
        let bad = ApnsClient::new(ApnsSettings {
            endpoint: fake.url.clone(),
            auth,
            ca_pem: Some(fake.ca_pem.clone().into_bytes()),
            delivery: Delivery {
                retries: 0,
                ..delivery(1)
            },
        })
        .map_err(|e| format!("{e:#}"))?;
        let before = fake.received().len();
        let out = bad.push_one(&push(3)).await;
        ensure!(matches!(out, PushOutcome::Retry { .. }), "{what}: {out:?}");
        ensure!(fake.received().len() == before, "{what}: nothing accepted");
    }

    // The topic belongs to the certificate: another topic is refused.
    let mut wrong = push(4);
    wrong.topic = "com.apple.mgmt.External.someone-else".into();
    let out = client.push_one(&wrong).await;
    ensure!(
        matches!(&out, PushOutcome::Rejected { reason } if reason.contains("DeviceTokenNotForTopic")),
        "wrong topic: {out:?}"
    );
    Ok(())
}

pub async fn apns_one_connection_bounded_concurrency(dir: &std::path::Path) -> TestResult {
    let fake = FakeApns::start(FakeAuth::Token, dir).await?;
    fake.set_delay(Duration::from_millis(30));
    let client = client_for(&fake, delivery(5))?;
    // A first push opens the connection; then the counters start afresh.
    ensure!(
        matches!(client.push_one(&push(100)).await, PushOutcome::Sent { .. }),
        "warm-up"
    );
    fake.reset();
    let pushes: Vec<ApplePush> = (1..=60).map(push).collect();
    // Two callers at once share the bound.
    let (a, b) = tokio::join!(client.push(&pushes[..30]), client.push(&pushes[30..]));
    ensure!(
        a.iter()
            .chain(&b)
            .all(|o| matches!(o, PushOutcome::Sent { .. })),
        "all sent"
    );
    ensure!(
        fake.received().len() == 60,
        "60 requests: {}",
        fake.received().len()
    );
    ensure!(
        fake.connections() == 1,
        "one HTTP/2 connection for 60 pushes: {}",
        fake.connections()
    );
    ensure!(
        fake.received().iter().all(|r| r.connection == 1),
        "every request on connection 1"
    );
    let max = fake.max_in_flight();
    ensure!(max <= 5, "at most 5 in flight: {max}");
    ensure!(max > 1, "requests are multiplexed, not serialised: {max}");
    Ok(())
}

pub async fn apns_retries_back_off_and_stop(dir: &std::path::Path) -> TestResult {
    let fake = FakeApns::start(FakeAuth::Token, dir).await?;
    let backoff = Duration::from_millis(80);
    let client = client_for(
        &fake,
        Delivery {
            retries: 3,
            backoff,
            ..delivery(2)
        },
    )?;
    let p = push(7);
    fake.script(&hex_of(&p), &[Reply::Status(503, "ServiceUnavailable"); 10]);
    let out = client.push_one(&p).await;
    let times: Vec<_> = fake
        .received_for(&hex_of(&p))
        .iter()
        .map(|r| r.at)
        .collect();
    ensure!(times.len() == 4, "1 try + 3 retries: {}", times.len());
    for (i, pair) in times.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let least = backoff * (1 << i);
        ensure!(
            gap >= least,
            "retry {i} waited {gap:?}, less than {least:?}"
        );
    }
    let PushOutcome::Retry {
        retry_after: Some(at),
        ..
    } = out
    else {
        return Err(format!("after the retries: {out:?}"));
    };
    ensure!(
        at > time::OffsetDateTime::now_utc(),
        "the queue is told to wait"
    );

    // A device pushed too often (429) recovers within the retries.
    let q = push(8);
    fake.script(&hex_of(&q), &[Reply::Status(429, "TooManyRequests"); 2]);
    let out = client.push_one(&q).await;
    ensure!(
        matches!(out, PushOutcome::Sent { .. }),
        "429 twice, then 200: {out:?}"
    );

    // An APNs that does not answer in time: the push comes back as Retry.
    let impatient = client_for(
        &fake,
        Delivery {
            retries: 0,
            timeout: Duration::from_millis(200),
            ..delivery(2)
        },
    )?;
    fake.set_delay(Duration::from_millis(600));
    let out = impatient.push_one(&push(9)).await;
    fake.set_delay(Duration::ZERO);
    ensure!(
        matches!(&out, PushOutcome::Retry { reason, .. } if reason.contains("timed out")),
        "timeout → Retry: {out:?}"
    );
    Ok(())
}

/// `mdm serve` with both fakes configured starts and exposes the push
/// certificate's expiry as a metric; inconsistent push settings are refused
/// with a message that says what to set.
pub async fn serve_exposes_push_certificate_expiry(dir: &std::path::Path) -> TestResult {
    let fake = FakeApns::start(FakeAuth::Certificate, &dir.join("apns")).await?;
    let fcm = crate::fake_fcm::FakeFcm::start(&dir.join("fcm")).await?;
    let mut env = fake.config_env();
    env.extend(fcm.config_env(&dir.join("fcm"))?);
    refused(
        dir,
        &env,
        "MDM_APNS_CERT_KEY_FILE",
        "",
        "apns_cert_file and apns_cert_key_file go together",
    )?;
    refused(
        dir,
        &env,
        "MDM_APNS_KEY_FILE",
        "/nonexistent.p8",
        "choose one APNs authentication",
    )?;
    refused(
        dir,
        &env,
        "MDM_FCM_SERVICE_ACCOUNT_FILE",
        "/nonexistent.json",
        "fcm_service_account_file",
    )?;
    let server = crate::tls::spawn_serve(&dir.join("data"), &env, "http://127.0.0.1:")?;
    let metrics = reqwest::get(format!("{}/metrics", server.base))
        .await
        .map_err(err)?
        .text()
        .await
        .map_err(err)?;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("mdm_apns_certificate_expiry_seconds"))
        .ok_or("no mdm_apns_certificate_expiry_seconds metric")?;
    ensure!(line.contains(TOPIC), "labelled with the topic: {line}");
    let pem = std::fs::read(fake.credentials.cert_file.as_ref().ok_or("cert")?).map_err(err)?;
    let cert = mdm_server::push::PushCertificate::from_pem(&pem).map_err(|e| e.to_string())?;
    let value: f64 = line
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(err)?;
    ensure!(
        value as i64 == cert.not_after.unix_timestamp(),
        "expiry {value} is the certificate's notAfter {}",
        cert.not_after
    );
    Ok(())
}

/// `mdm serve` with `env` and `key` set to `value` (unset when empty) exits
/// with an error that contains `message`.
fn refused(
    dir: &std::path::Path,
    env: &[(String, String)],
    key: &str,
    value: &str,
    message: &str,
) -> TestResult {
    let mut cmd = std::process::Command::new(crate::support::mdm_bin());
    cmd.arg("--data-dir")
        .arg(dir.join("refused"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(env.iter().filter(|(k, _)| k != key).map(|(k, v)| (k, v)))
        .env("MDM_LOG", "warn");
    if !value.is_empty() {
        cmd.env(key, value);
    }
    let out = cmd.output().map_err(err)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(!out.status.success(), "{key}={value:?} must be refused");
    ensure!(stderr.contains(message), "{key}: {stderr}");
    Ok(())
}
