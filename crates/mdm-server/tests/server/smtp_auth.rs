//! SMTP with authentication against the real aiosmtpd (STARTTLS and AUTH
//! required): the invitation mail goes out with the right credentials and
//! fails visibly with a wrong password.

use crate::api::fixture;
use crate::client::expect;
use crate::ensure;
use crate::invites::{add_user, email};
use crate::smtp::link_and_pin;
use crate::support::{Server, TestResult};
use serde_json::Value;
use std::time::Duration;

/// SMTP with authentication against aiosmtpd (STARTTLS, AUTH required): the
/// right credentials deliver; a wrong password is a visible, retried failure
/// that names the refusal.
pub async fn smtp_auth_against_aiosmtpd() -> TestResult {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let port = crate::smtp::free_port()?;
    let smtp = crate::smtp::Smtp::start_with_auth(dir.path(), port, "mdm-mailer", "s3cret pass")?;
    let env_with = |password: &str| {
        let mut env = smtp.env("starttls");
        env.push(("MDM_SMTP_USERNAME".into(), "mdm-mailer".into()));
        env.push(("MDM_SMTP_PASSWORD".into(), password.into()));
        env.push(("MDM_SMTP_TIMEOUT_SECS".into(), "5".into()));
        env
    };
    let good = Server::start_with_env(
        "smtpauth",
        &dir.path().join("good"),
        None,
        &env_with("s3cret pass"),
    )?;
    let f = fixture(&good).await?;
    let addr = email();
    add_user(&f, &addr, None, true).await?;
    let msg = smtp.message_to(&addr, Duration::from_secs(30)).await?;
    ensure!(
        link_and_pin(&msg)?.1.is_some(),
        "delivered after AUTH: {msg}"
    );
    good.stop();

    let bad = Server::start_with_env(
        "smtpauth-bad",
        &dir.path().join("bad"),
        None,
        &env_with("wrong"),
    )?;
    let f = fixture(&bad).await?;
    let refused = email();
    add_user(&f, &refused, None, true).await?;
    let list_path = format!("/api/v1/tenants/{}/invitations", f.slug);
    let mut failed = Value::Null;
    for _ in 0..300 {
        let list = expect(f.api.get(&list_path).await?, 200, "list")?;
        failed = list["items"][0].clone();
        if failed["attempts"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bad.stop();
    smtp.stop();
    let error = failed["last_error"].as_str().unwrap_or_default();
    ensure!(
        failed["delivery"] != "sent"
            && (error.contains("535") || error.to_lowercase().contains("auth")),
        "a wrong SMTP password is visible: {failed}"
    );
    ensure!(
        smtp.messages_to(&refused).is_empty(),
        "nothing delivered without AUTH"
    );
    Ok(())
}
