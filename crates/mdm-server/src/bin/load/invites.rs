//! `mdm-load invites`: job-queue throughput to a real SMTP server. Creates a
//! fresh tenant with N users (not timed), invites them all in one request,
//! and waits until no invitation is queued: invitations sent per second,
//! from the invite request to the last accepted message.

use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub async fn run(url: &str, token: &str, count: usize, pid: Option<u32>) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = url.trim_end_matches('/');
    let slug = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let created = http
        .post(format!("{base}/api/v1/tenants"))
        .bearer_auth(token)
        .json(&json!({ "slug": slug, "name": "Invitation benchmark" }))
        .send()
        .await?;
    if !created.status().is_success() {
        bail!(
            "creating tenant {slug} (needs an operator token): {}",
            created.text().await?
        );
    }
    let mut ids = Vec::with_capacity(count);
    for chunk in 0..count.div_ceil(1000) {
        let n = (count - chunk * 1000).min(1000);
        let batch: Vec<_> = (0..n)
            .map(|i| json!({ "email": format!("invitee-{}@example.com", chunk * 1000 + i) }))
            .collect();
        let users: Value = http
            .post(format!("{base}/api/v1/tenants/{slug}/users/bulk"))
            .bearer_auth(token)
            .json(&batch)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        ids.extend(
            users
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|u| u["id"].as_str().map(str::to_string)),
        );
    }
    let cpu0 = super::cpu_ms(pid);
    let start = Instant::now();
    let res = http
        .post(format!("{base}/api/v1/tenants/{slug}/invitations"))
        .bearer_auth(token)
        .json(&json!({ "user_ids": ids }))
        .send()
        .await?;
    if !res.status().is_success() {
        bail!("invite: {}", res.text().await?);
    }
    let accepted = start.elapsed();
    println!(
        "invite request for {count} users accepted in {:.2} s",
        accepted.as_secs_f64()
    );
    let pending = |delivery: &'static str| {
        let (http, base, slug, token) = (
            http.clone(),
            base.to_string(),
            slug.clone(),
            token.to_string(),
        );
        async move {
            let page: Value = http
                .get(format!(
                    "{base}/api/v1/tenants/{slug}/invitations?delivery={delivery}&limit=1000"
                ))
                .bearer_auth(&token)
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(page["items"].as_array().map_or(0, Vec::len))
        }
    };
    loop {
        if pending("queued").await? == 0 {
            break;
        }
        if start.elapsed() > Duration::from_secs(3600) {
            bail!("invitations still queued after an hour");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let failed = pending("failed").await.context("counting failures")?;
    println!(
        "invited {count} users: request accepted in {:.2} s; all sent in {elapsed:.1} s = {:.0} invitations/s; {failed} failed",
        accepted.as_secs_f64(),
        count as f64 / elapsed
    );
    if let (Some(a), Some(b)) = (cpu0, super::cpu_ms(pid)) {
        println!(
            "server CPU: {:.2} ms per invitation",
            (b - a) / count as f64
        );
    }
    Ok(())
}
