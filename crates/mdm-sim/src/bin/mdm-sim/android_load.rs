//! `mdm-sim android-load`: Android agent registrations and signed check-ins
//! against any server, with `--enrolled` simulated Android 13 devices
//! registered through the real agent API first (untimed). Each device gets
//! a one-time enrollment token from the admin API's QR provisioning
//! endpoint (mode `dedicated`, so no R16 command is queued), then registers
//! with it. Check-ins are signed before the clock starts (a fresh nonce
//! each, within the server's clock-skew allowance), so the timed window
//! holds the wire traffic and the server's work: tenant lookup, the device
//! key read, signature verification, the nonce and the check-in written in
//! one transaction.

use crate::load::{LoadArgs, Meter, report, run_timed};
use anyhow::{Context, bail};
use mdm_android::{ApiVersion, Credentials, Endpoint, ManagementMode, ProvisioningQr};
use mdm_pki::RsaKey;
use mdm_sim::android::{AndroidDevice, AndroidHardware};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

type Fleet = Arc<Vec<Mutex<Option<AndroidDevice>>>>;

struct Admin {
    url: String,
    tenant: String,
    token: String,
    user_id: String,
    http: reqwest::Client,
}

impl Admin {
    async fn new(a: &LoadArgs, http: &reqwest::Client) -> anyhow::Result<Self> {
        let email = format!("android-load-{}@example.com", uuid::Uuid::new_v4().simple());
        let res = http
            .post(format!("{}/api/v1/tenants/{}/users", a.url, a.tenant))
            .bearer_auth(&a.token)
            .json(&serde_json::json!({ "email": email, "display_name": "Android load" }))
            .send()
            .await?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if status.as_u16() != 201 {
            bail!("creating the load user: HTTP {status}: {body}");
        }
        Ok(Self {
            url: a.url.clone(),
            tenant: a.tenant.clone(),
            token: a.token.clone(),
            user_id: body["id"].as_str().context("user id")?.to_string(),
            http: http.clone(),
        })
    }

    /// A one-time enrollment token from a provisioning QR payload.
    async fn enrollment_token(&self) -> Result<String, String> {
        let res = self
            .http
            .post(format!(
                "{}/api/v1/tenants/{}/android/provisioning",
                self.url, self.tenant
            ))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "user_id": self.user_id, "management_mode": "dedicated" }))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.map_err(|e| e.to_string())?;
        if status != 201 {
            return Err(format!("provisioning: HTTP {status}: {body}"));
        }
        let payload = body["payload"].as_str().ok_or("no payload")?;
        let qr = ProvisioningQr::parse(payload).map_err(|e| e.to_string())?;
        Ok(qr.extras.enrollment_token)
    }
}

async fn register(
    a: &LoadArgs,
    admin: &Admin,
    http: &reqwest::Client,
    i: usize,
    key: RsaKey,
    slot: &Mutex<Option<AndroidDevice>>,
) -> Result<(), String> {
    let token = admin.enrollment_token().await?;
    let n = u32::try_from(i).map_err(|e| e.to_string())?;
    let mut d = AndroidDevice::new(
        AndroidHardware::new(n + 1, 33),
        ManagementMode::Dedicated,
        &a.url,
        &a.tenant,
        http.clone(),
        key,
    );
    d.register(Credentials::enrollment_token(token))
        .await
        .map_err(|e| e.to_string())?;
    *slot.lock().await = Some(d);
    Ok(())
}

/// Keys made ready before a timed window, each taken once.
type ReadyKeys = Vec<std::sync::Mutex<Option<RsaKey>>>;

fn key_from(der: &[u8]) -> Result<RsaKey, String> {
    RsaKey::from_pkcs8_der(der).map_err(|e| e.to_string())
}

pub async fn run(a: LoadArgs) -> anyhow::Result<()> {
    let c = a.concurrency.max(1);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(c.max(a.seed_concurrency))
        .timeout(Duration::from_secs(60))
        .build()?;
    let label = a.label.clone();
    let log = |m: String| eprintln!("[{label}] {m}");
    let admin = Arc::new(Admin::new(&a, &http).await?);
    let timed_regs = if a.modes.iter().any(|m| m == "register") {
        a.registrations
    } else {
        0
    };
    let seed_n = a.enrolled.saturating_sub(timed_regs);
    let seed_keys = a.seed_keys.max(1);
    let t = Instant::now();
    let pool = mdm_sim::measure::parallel(seed_keys, |i| -> anyhow::Result<Vec<u8>> {
        let key = match &a.key_cache {
            Some(dir) => mdm_sim::cached_key(dir, i)?,
            None => RsaKey::generate(2048)?,
        };
        Ok(key.to_pkcs8_der()?.to_vec())
    })?;
    let pool = Arc::new(pool);
    log(format!(
        "{} device keys ready in {:.1} s (untimed; devices cycle through them)",
        pool.len(),
        t.elapsed().as_secs_f64()
    ));
    let fleet: Fleet = Arc::new((0..seed_n + timed_regs).map(|_| Mutex::new(None)).collect());
    // Device `offset + i` registers with key `ready[i]` when given (made
    // ready before a clock starts), else with its pool key, parsed there.
    let job = |offset: usize, ready: Option<Arc<ReadyKeys>>| {
        let (a, admin, http, pool, fleet) = (
            a.clone(),
            admin.clone(),
            http.clone(),
            pool.clone(),
            fleet.clone(),
        );
        move |i: usize| {
            let (a, admin, http, pool, fleet, ready) = (
                a.clone(),
                admin.clone(),
                http.clone(),
                pool.clone(),
                fleet.clone(),
                ready.clone(),
            );
            async move {
                let key = match &ready {
                    Some(keys) => keys
                        .get(i)
                        .and_then(|k| k.lock().ok()?.take())
                        .ok_or("key")?,
                    None => key_from(pool.get((offset + i) % seed_keys).ok_or("key")?)?,
                };
                let i = offset + i;
                let slot = fleet.get(i).ok_or("slot")?;
                register(&a, &admin, &http, i, key, slot).await
            }
        }
    };
    let t = Instant::now();
    let seeded = run_timed(seed_n, a.seed_concurrency, job(0, None)).await;
    let failed = seeded.iter().filter(|r| r.is_err()).count();
    log(format!(
        "registered {} Android devices in {:.1} s (untimed, {} in flight){}",
        seed_n - failed,
        t.elapsed().as_secs_f64(),
        a.seed_concurrency,
        seeded
            .iter()
            .find_map(|r| r.as_ref().err())
            .map_or(String::new(), |e| format!("; {failed} failed, first: {e}"))
    ));
    if failed > 0 && failed == seed_n {
        bail!("seeding failed");
    }
    for mode in &a.modes {
        match mode.as_str() {
            "register" => {
                // Parsed and used once before the clock, as the Apple load
                // does: the load generator's key set-up is not the server's
                // work, and on two shared cores it slows the server down.
                let t = Instant::now();
                let ready = (0..timed_regs)
                    .map(|k| {
                        let der = pool.get((seed_n + k) % seed_keys).context("key")?;
                        let key = key_from(der).map_err(anyhow::Error::msg)?;
                        mdm_sim::warm_up(&key)?;
                        Ok(std::sync::Mutex::new(Some(key)))
                    })
                    .collect::<anyhow::Result<ReadyKeys>>()?;
                log(format!(
                    "{timed_regs} registration keys ready in {:.1} s (untimed)",
                    t.elapsed().as_secs_f64()
                ));
                let meter = Meter::start(&a);
                let out = run_timed(timed_regs, c, job(seed_n, Some(Arc::new(ready)))).await;
                report(&a, "android_registration", c, &meter.stop(out));
            }
            "checkin" => checkins(&a, &fleet, c).await?,
            other => bail!("unknown mode {other} (register, checkin)"),
        }
    }
    Ok(())
}

/// `--polls` signed check-ins spread over every registered device.
async fn checkins(a: &LoadArgs, fleet: &Fleet, c: usize) -> anyhow::Result<()> {
    let path = Endpoint::Checkin.path(ApiVersion::V1);
    let mut ready = Vec::new();
    for slot in fleet.iter() {
        if let Some(d) = slot.lock().await.take() {
            ready.push(d);
        }
    }
    if ready.is_empty() {
        bail!("no registered devices to check in");
    }
    let t = Instant::now();
    let now = time::OffsetDateTime::now_utc();
    let mut signed = Vec::with_capacity(a.polls);
    for k in 0..a.polls {
        let d = &ready[k % ready.len()];
        let body = d.checkin_body()?;
        let headers = d.signature("POST", &path, &body, now, None)?;
        signed.push((k % ready.len(), body, headers));
    }
    eprintln!(
        "[{}] {} check-ins signed in {:.1} s over {} devices (untimed)",
        a.label,
        signed.len(),
        t.elapsed().as_secs_f64(),
        ready.len()
    );
    let ready = Arc::new(ready);
    let signed = Arc::new(signed);
    let path = Arc::new(path);
    let meter = Meter::start(a);
    let out = run_timed(signed.len(), c, move |k| {
        let (ready, signed, path) = (ready.clone(), signed.clone(), path.clone());
        async move {
            let (i, body, headers) = signed.get(k).ok_or("check-in")?;
            let d = ready.get(*i).ok_or("device")?;
            let (status, text) = d
                .send_with("checkin", "POST", &path, body.clone(), headers)
                .await
                .map_err(|e| e.to_string())?;
            if status == 200 {
                Ok(())
            } else {
                Err(format!(
                    "HTTP {status}: {}",
                    text.chars().take(200).collect::<String>()
                ))
            }
        }
    })
    .await;
    report(a, "android_checkin", c, &meter.stop(out));
    Ok(())
}
