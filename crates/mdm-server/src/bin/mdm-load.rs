//! `mdm-load`: load generator for the REST API and for any SCEP server.
//! Prints rates, latency percentiles and, given the server's PID, its CPU
//! time per operation.
//!
//!   mdm-load users --url URL --token TOKEN --tenant SLUG --count N --concurrency C [--pid PID]
//!   mdm-load seed  --url URL --token TOKEN --tenant SLUG --count N   (bulk, 1,000 per request)
//!   mdm-load scep  --url SCEP_URL -n N -c C [--pid PID]
//!                  [--challenge S | --token T [--tenant SLUG] [--api BASE_URL]]
//!                  [--cipher aes128|aes256|des3] [--digest sha256|sha512|sha1]
//!
//! `scep` measures PKIOperation only: GetCACert, the device keys (RSA 2048),
//! their self-signed signer certificates, CSRs, challenges and the signed and
//! encrypted PKCSReq messages are all prepared before the clock starts; the
//! timed window holds N POSTs with C in flight over one connection pool; every
//! CertRep is verified and decrypted after the clock stops.

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mdm_pki::x509_cert::Certificate;
use mdm_pki::x509_cert::name::Name;
use mdm_pki::{CertificateExt, DigestAlg, RsaKey};
use mdm_scep::client::{
    RequestOptions, build_csr, build_request, parse_cert_rep, self_signed_signer,
    transaction_id_for,
};
use mdm_scep::{ContentCipher, MessageType, Nonce, PkiStatus};
use mdm_sim::measure::{
    self, cpu_ms, cpu_sum_ms, machine_busy_ms, parallel, percentile, self_cpu_ms,
};
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "mdm-load",
    about = "Load generator for the mdm REST API and for SCEP servers"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create users one by one with C in flight, then list them all.
    Users(ApiArgs),
    /// Create users in bulk (1,000 per request).
    Seed(ApiArgs),
    /// SCEP enrolment (PKIOperation) throughput against any SCEP URL.
    Scep(ScepArgs),
}

#[derive(Args)]
struct ApiArgs {
    /// Base URL of the server (http://127.0.0.1:8080).
    #[arg(long)]
    url: String,
    /// Bearer token.
    #[arg(long)]
    token: String,
    #[arg(long, default_value = "default")]
    tenant: String,
    #[arg(short = 'n', long, default_value_t = 1000)]
    count: usize,
    #[arg(short = 'c', long, default_value_t = 16)]
    concurrency: usize,
    /// Server PID, to report its CPU time per operation.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Args)]
struct ScepArgs {
    /// SCEP URL without query string (ours: <base>/scep/<tenant>; scepserver: http://host:port/scep).
    #[arg(long)]
    url: String,
    /// Enrolments to run.
    #[arg(short = 'n', long, default_value_t = 1000)]
    count: usize,
    /// Requests in flight.
    #[arg(short = 'c', long, default_value_t = 4)]
    concurrency: usize,
    /// Server PID, to report its CPU time per enrolment.
    #[arg(long)]
    pid: Option<u32>,
    /// A static challenge password for every request (e.g. scepserver -challenge).
    #[arg(long, conflicts_with = "token")]
    challenge: Option<String>,
    /// Operator or tenant API token: mint one one-time challenge per enrolment
    /// through POST <api>/api/v1/tenants/<tenant>/scep/challenges.
    #[arg(long)]
    token: Option<String>,
    /// Tenant slug for minting challenges (default: the last segment of a /scep/<slug> URL).
    #[arg(long)]
    tenant: Option<String>,
    /// Base URL of the admin API (default: the SCEP URL up to /scep/).
    #[arg(long)]
    api: Option<String>,
    /// Content-encryption cipher of the request envelope.
    #[arg(long, value_enum, default_value_t = CipherArg::Aes128)]
    cipher: CipherArg,
    /// Digest of the request signature and of the CSR.
    #[arg(long, value_enum, default_value_t = DigestArg::Sha256)]
    digest: DigestArg,
    /// Shell command printing further PIDs (whitespace-separated) whose CPU is
    /// measured over the timed window too, reported as "database CPU" — e.g. the
    /// PostgreSQL backends of the server's pool. Run just before the clock starts.
    #[arg(long)]
    db_pids_cmd: Option<String>,
    /// Shell command printing database counters as "name value" lines (e.g.
    /// PostgreSQL's pg_stat_database xact_commit, tup_inserted for the server's
    /// database), read until the values settle (statistics are flushed lazily)
    /// before the clock starts and after it stops; printed per enrolment.
    #[arg(long)]
    db_counters_cmd: Option<String>,
    /// Directory of device keys (key-<i>.p8, PKCS#8 DER) to reuse across runs:
    /// missing ones are generated and saved. Subjects, signer certificates,
    /// challenges and nonces stay fresh per run. Without it every run
    /// generates N new RSA-2048 keys (~90 ms of CPU each).
    #[arg(long)]
    key_cache: Option<std::path::PathBuf>,
    /// Label printed in front of every output line and in the RESULT line.
    #[arg(long, default_value = "scep")]
    label: String,
}

#[derive(Clone, Copy, ValueEnum)]
enum CipherArg {
    Aes128,
    Aes256,
    Des3,
}

#[derive(Clone, Copy, ValueEnum)]
enum DigestArg {
    Sha256,
    Sha512,
    Sha1,
}

impl CipherArg {
    fn cipher(self) -> ContentCipher {
        match self {
            Self::Aes128 => ContentCipher::Aes128,
            Self::Aes256 => ContentCipher::Aes256,
            Self::Des3 => ContentCipher::Des3,
        }
    }
}

impl DigestArg {
    fn digest(self) -> DigestAlg {
        match self {
            Self::Sha256 => DigestAlg::Sha256,
            Self::Sha512 => DigestAlg::Sha512,
            Self::Sha1 => DigestAlg::Sha1,
        }
    }
}

fn report(what: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>, cpu: Option<f64>) {
    lat.sort();
    let rate = n as f64 / elapsed.as_secs_f64();
    print!(
        "{what}: {n} in {:.2} s = {rate:.0}/s; latency p50 {:.2} ms p99 {:.2} ms",
        elapsed.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    match cpu {
        Some(ms) => println!("; server CPU {:.3} ms per {what}", ms / n as f64),
        None => println!(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().cmd {
        Cmd::Users(a) => users(Arc::new(a)).await,
        Cmd::Seed(a) => seed(&a).await,
        Cmd::Scep(a) => scep(a).await,
    }
}

fn api_client(concurrency: usize) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency.max(1))
        .build()?)
}

fn users_url(o: &ApiArgs) -> String {
    format!(
        "{}/api/v1/tenants/{}/users",
        o.url.trim_end_matches('/'),
        o.tenant
    )
}

async fn seed(o: &ApiArgs) -> anyhow::Result<()> {
    let http = api_client(o.concurrency)?;
    let users_url = users_url(o);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let start = Instant::now();
    for chunk in 0..o.count.div_ceil(1000) {
        let n = (o.count - chunk * 1000).min(1000);
        let batch: Vec<_> = (0..n).map(|i| serde_json::json!({ "email": format!("seed-{run_id}-{}@example.com", chunk * 1000 + i) })).collect();
        let res = http
            .post(format!("{users_url}/bulk"))
            .bearer_auth(&o.token)
            .json(&batch)
            .send()
            .await?;
        if !res.status().is_success() {
            bail!(
                "bulk create failed: {} {}",
                res.status(),
                res.text().await.unwrap_or_default()
            );
        }
    }
    println!(
        "seeded {} users in {:.1} s",
        o.count,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn users(o: Arc<ApiArgs>) -> anyhow::Result<()> {
    let http = api_client(o.concurrency)?;
    let users_url = users_url(&o);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let cpu0 = cpu_ms(o.pid);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..o.concurrency.max(1) {
        let (http, o, url, run_id) = (http.clone(), o.clone(), users_url.clone(), run_id.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            for i in (w..o.count).step_by(o.concurrency.max(1)) {
                let t = Instant::now();
                let body = serde_json::json!({ "email": format!("load-{run_id}-{i}@example.com"), "display_name": format!("Load {i}") });
                let res = http
                    .post(&url)
                    .bearer_auth(&o.token)
                    .json(&body)
                    .send()
                    .await?;
                if res.status() != reqwest::StatusCode::CREATED {
                    bail!("create failed: {}", res.status());
                }
                lat.push(t.elapsed());
            }
            Ok::<_, anyhow::Error>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let cpu = cpu0.zip(cpu_ms(o.pid)).map(|(a, b)| b - a);
    report("user create", o.count, start.elapsed(), lat, cpu);

    let cpu0 = cpu_ms(o.pid);
    let start = Instant::now();
    let (mut listed, mut lat, mut after) = (0usize, Vec::new(), None::<String>);
    loop {
        let t = Instant::now();
        let url = match &after {
            Some(a) => format!("{users_url}?limit=1000&after={a}"),
            None => format!("{users_url}?limit=1000"),
        };
        let req = http.get(url).bearer_auth(&o.token);
        let page: serde_json::Value = req.send().await?.error_for_status()?.json().await?;
        lat.push(t.elapsed());
        listed += page["items"].as_array().map_or(0, Vec::len);
        match page["next"].as_str() {
            Some(n) => after = Some(n.to_string()),
            None => break,
        }
    }
    let cpu = cpu0.zip(cpu_ms(o.pid)).map(|(a, b)| b - a);
    let pages = lat.len();
    report("page of 1000 users", pages, start.elapsed(), lat, cpu);
    println!(
        "user list: {listed} users in {:.2} s = {:.0} users/s",
        start.elapsed().as_secs_f64(),
        listed as f64 / start.elapsed().as_secs_f64()
    );
    Ok(())
}

// ------------------------------------------------------------------ SCEP

/// One prepared enrolment: the device's key and signer, and its PKCSReq.
struct Device {
    key: RsaKey,
    signer: Certificate,
    nonce: Nonce,
    transaction_id: String,
    message: Vec<u8>,
}

/// What came back for one request.
struct Outcome {
    latency: Duration,
    result: Result<(u16, Vec<u8>), String>,
}

/// GetCACert: (every certificate, the one to encrypt requests to).
async fn get_ca(
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<(Vec<Certificate>, Certificate)> {
    let res = http
        .get(url)
        .query(&[("operation", "GetCACert")])
        .send()
        .await
        .context("GetCACert")?;
    if !res.status().is_success() {
        bail!("GetCACert: HTTP {}", res.status());
    }
    let ct = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(mdm_scep::CA_CERT_CONTENT_TYPE)
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    let body = res.bytes().await?;
    let certs = mdm_scep::parse_ca_cert_response(&ct, &body).context("GetCACert answer")?;
    // With an RA, requests are encrypted to the RA (the certificate that is not a CA).
    let recipient = certs
        .iter()
        .find(|c| !c.is_ca())
        .or_else(|| certs.first())
        .cloned()
        .context("GetCACert returned no certificate")?;
    Ok((certs, recipient))
}

/// One one-time challenge per enrolment through the admin API, C in flight.
async fn mint_challenges(
    http: &reqwest::Client,
    api: &str,
    tenant: &str,
    token: &str,
    run_id: &str,
    n: usize,
    concurrency: usize,
) -> anyhow::Result<Vec<String>> {
    let url = Arc::new(format!(
        "{}/api/v1/tenants/{tenant}/scep/challenges",
        api.trim_end_matches('/')
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (http, url, next, token, run_id) = (
            http.clone(),
            url.clone(),
            next.clone(),
            token.to_string(),
            run_id.to_string(),
        );
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let res = http
                    .post(url.as_str())
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "registration": format!("load-{run_id}-{i}") }))
                    .send()
                    .await?;
                let status = res.status();
                let body: serde_json::Value = res.json().await.unwrap_or_default();
                if status != reqwest::StatusCode::CREATED {
                    bail!("minting a challenge: HTTP {status}: {body}");
                }
                let ch = body["challenge"]
                    .as_str()
                    .with_context(|| format!("no challenge in {body}"))?;
                got.push((i, ch.to_string()));
            }
            Ok::<_, anyhow::Error>(got)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await??);
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, c)| c).collect())
}

/// Prepares one device: key, self-signed signer, CSR, signed and encrypted PKCSReq.
fn prepare(
    i: usize,
    key_cache: Option<&std::path::Path>,
    run_id: &str,
    challenge: Option<&str>,
    recipient: &Certificate,
    cipher: ContentCipher,
    digest: DigestAlg,
) -> anyhow::Result<Device> {
    let key = device_key(i, key_cache)?;
    let name = Name::from_str(&format!("CN=load-{run_id}-{i},O=mdm-load"))
        .map_err(|e| anyhow::anyhow!("subject: {e}"))?;
    let now = time::OffsetDateTime::now_utc();
    let signer = self_signed_signer(
        &key,
        &name,
        now - time::Duration::hours(1),
        now + time::Duration::days(1),
    )?;
    let csr = build_csr(&key, &name, challenge, digest)?;
    let nonce = Nonce::random()?;
    let transaction_id = transaction_id_for(&key);
    let opts = RequestOptions {
        message_type: MessageType::PkcsReq,
        cipher,
        digest,
        transaction_id: transaction_id.clone(),
        sender_nonce: nonce.clone(),
        outer_challenge: None,
    };
    let message = build_request(&csr, &signer, &key, recipient, &opts)?;
    Ok(Device {
        key,
        signer,
        nonce,
        transaction_id: transaction_id.0,
        message,
    })
}

/// A fresh RSA-2048 key, or the cached one for device `i` (shared with `mdm-sim load`).
fn device_key(i: usize, cache: Option<&std::path::Path>) -> anyhow::Result<RsaKey> {
    Ok(match cache {
        Some(dir) => mdm_sim::cached_key(dir, i)?,
        None => RsaKey::generate(2048)?,
    })
}

/// How one CertRep checked out.
enum Verdict {
    /// SUCCESS, signed by the CA, echoing our transactionID and nonce, with a
    /// certificate for our key that the CA issued: its serial (hex).
    Issued(String),
    /// A verified FAILURE or PENDING CertRep: its status and failInfo.
    Refused(String),
    /// No usable answer (transport error, HTTP error, bad or unverifiable CertRep).
    Broken(String),
}

fn verify(d: &Device, out: &Outcome, cas: &[Certificate]) -> Verdict {
    let body = match &out.result {
        Ok((200, body)) => body,
        Ok((status, body)) => {
            let text = String::from_utf8_lossy(&body[..body.len().min(120)])
                .trim()
                .to_string();
            return Verdict::Broken(format!("HTTP {status}: {text}"));
        }
        Err(e) => return Verdict::Broken(format!("transport: {e}")),
    };
    let rep = match parse_cert_rep(body, cas, &d.signer, &d.key, d.key.public_key_spki()) {
        Ok(r) => r,
        Err(e) => return Verdict::Broken(format!("CertRep: {e}")),
    };
    if rep.message.transaction_id.0 != d.transaction_id {
        return Verdict::Broken("CertRep: transactionID not echoed".into());
    }
    if rep.message.recipient_nonce.as_ref() != Some(&d.nonce) {
        return Verdict::Broken("CertRep: recipientNonce is not our senderNonce".into());
    }
    match rep.status {
        PkiStatus::Success => {}
        other => return Verdict::Refused(format!("{other:?} {:?}", rep.fail_info)),
    }
    let Some(cert) = rep.issued else {
        return Verdict::Broken("SUCCESS without a certificate for our key".into());
    };
    let chained = cas
        .iter()
        .any(|ca| mdm_pki::verify_issued_by(&cert, ca).is_ok());
    if !chained {
        return Verdict::Broken("issued certificate does not chain to the CA".into());
    }
    Verdict::Issued(cert.serial_hex())
}

async fn scep(a: ScepArgs) -> anyhow::Result<()> {
    let n = a.count;
    let c = a.concurrency.max(1);
    let label = a.label.clone();
    let url = a.url.trim_end_matches('/').to_string();
    if url.contains('?') {
        bail!("the SCEP URL must carry no query string");
    }
    let cipher = a.cipher.cipher();
    let digest = a.digest.digest();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(c)
        .timeout(Duration::from_secs(120))
        .build()?;
    let run_id: String = uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(12)
        .collect();
    let log = |msg: String| eprintln!("[{label}] {msg}");

    // ---- untimed preparation
    let caps = http
        .get(&url)
        .query(&[("operation", "GetCACaps")])
        .send()
        .await
        .context("GetCACaps")?
        .text()
        .await
        .unwrap_or_default();
    let caps: Vec<&str> = caps
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    log(format!("GetCACaps: {}", caps.join(" ")));
    if !caps
        .iter()
        .any(|c| c.eq_ignore_ascii_case("POSTPKIOperation"))
    {
        log("warning: the server does not advertise POSTPKIOperation; POSTing anyway".into());
    }
    let (cas, recipient) = get_ca(&http, &url).await?;
    log(format!(
        "GetCACert: {} certificate(s); requests encrypted to {} ({} bit RSA)",
        cas.len(),
        recipient.subject_string(),
        rsa_bits(&recipient).map_or("?".to_string(), |b| b.to_string())
    ));

    let challenges: Vec<Option<String>> = match (&a.challenge, &a.token) {
        (Some(s), _) => vec![Some(s.clone()); n],
        (None, Some(token)) => {
            let (api_guess, slug_guess) = split_scep_url(&url);
            let api = a
                .api
                .clone()
                .or(api_guess)
                .context("--api is needed (the SCEP URL has no /scep/<slug>)")?;
            let tenant = a
                .tenant
                .clone()
                .or(slug_guess)
                .context("--tenant is needed")?;
            let t = Instant::now();
            let list = mint_challenges(&http, &api, &tenant, token, &run_id, n, c).await?;
            log(format!(
                "minted {} one-time challenges for tenant {tenant} in {:.1} s (untimed)",
                list.len(),
                t.elapsed().as_secs_f64()
            ));
            list.into_iter().map(Some).collect()
        }
        (None, None) => {
            log("no --challenge or --token: requests carry no challenge password".into());
            vec![None; n]
        }
    };

    let t = Instant::now();
    let devices = Arc::new(parallel(n, |i| {
        let ch = challenges.get(i).cloned().flatten();
        prepare(
            i,
            a.key_cache.as_deref(),
            &run_id,
            ch.as_deref(),
            &recipient,
            cipher,
            digest,
        )
    })?);
    log(format!(
        "prepared {n} devices (RSA-2048 key, signer, CSR, {cipher:?}/{digest:?} PKCSReq) in {:.1} s (untimed)",
        t.elapsed().as_secs_f64()
    ));

    let extra_pids: Vec<u32> = match &a.db_pids_cmd {
        Some(cmd) => {
            let out = std::process::Command::new("sh")
                .args(["-c", cmd])
                .output()
                .context("--db-pids-cmd")?;
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        }
        None => vec![],
    };
    if a.db_pids_cmd.is_some() {
        log(format!("database PIDs measured: {extra_pids:?}"));
    }

    let counters0 = match &a.db_counters_cmd {
        Some(cmd) => Some(settled_counters(cmd).await?),
        None => None,
    };

    // ---- timed: N POSTs, C in flight
    let post_url = Arc::new(format!("{url}?operation=PKIOperation"));
    let next = Arc::new(AtomicUsize::new(0));
    let server0 = cpu_ms(a.pid);
    let db0 = cpu_sum_ms(&extra_pids);
    let self0 = self_cpu_ms();
    let machine0 = machine_busy_ms();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c {
        let (http, post_url, next, devices) = (
            http.clone(),
            post_url.clone(),
            next.clone(),
            devices.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(d) = devices.get(i) else { break };
                let t = Instant::now();
                let result = async {
                    let res = http
                        .post(post_url.as_str())
                        .header(
                            reqwest::header::CONTENT_TYPE,
                            mdm_scep::PKI_MESSAGE_CONTENT_TYPE,
                        )
                        .body(d.message.clone())
                        .send()
                        .await?;
                    let status = res.status().as_u16();
                    Ok::<_, reqwest::Error>((status, res.bytes().await?.to_vec()))
                }
                .await
                .map_err(|e| e.to_string());
                got.push((
                    i,
                    Outcome {
                        latency: t.elapsed(),
                        result,
                    },
                ));
            }
            got
        }));
    }
    let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(n);
    for t in tasks {
        outcomes.extend(t.await?);
    }
    let wall = start.elapsed();
    let server_cpu = server0.zip(cpu_ms(a.pid)).map(|(x, y)| y - x);
    let db1 = cpu_sum_ms(&extra_pids);
    let self_cpu = self0.zip(self_cpu_ms()).map(|(x, y)| y - x);
    let machine_cpu = machine0.zip(machine_busy_ms()).map(|(x, y)| y - x);
    let db_cpu = (!extra_pids.is_empty()).then(|| {
        db1.iter()
            .map(|(p, after)| after - db0.iter().find(|(q, _)| q == p).map_or(*after, |(_, b)| *b))
            .sum::<f64>()
    });
    let db_gone = extra_pids.len().saturating_sub(db1.len());
    outcomes.sort_by_key(|(i, _)| *i);

    // ---- untimed: verify every CertRep
    let t = Instant::now();
    let verdicts = parallel(outcomes.len(), |k| {
        let (i, out) = outcomes.get(k).context("outcome")?;
        let d = devices.get(*i).context("device")?;
        Ok::<_, anyhow::Error>(verify(d, out, &cas))
    })?;
    let (mut ok, mut refused, mut broken) = (0usize, 0usize, 0usize);
    let mut serials = HashSet::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for v in &verdicts {
        match v {
            Verdict::Issued(s) => {
                ok += 1;
                serials.insert(s.clone());
            }
            Verdict::Refused(r) => {
                refused += 1;
                *reasons.entry(r.clone()).or_default() += 1;
            }
            Verdict::Broken(r) => {
                broken += 1;
                *reasons.entry(r.clone()).or_default() += 1;
            }
        }
    }
    log(format!(
        "verified {} CertReps in {:.1} s (untimed)",
        verdicts.len(),
        t.elapsed().as_secs_f64()
    ));

    let counters = match (&a.db_counters_cmd, counters0) {
        (Some(cmd), Some(before)) => Some((before, settled_counters(cmd).await?)),
        _ => None,
    };

    // ---- report
    let mut lat: Vec<Duration> = outcomes.iter().map(|(_, o)| o.latency).collect();
    lat.sort();
    let (p50, p90, p99, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.9),
        percentile(&lat, 0.99),
        percentile(&lat, 1.0),
    );
    let secs = wall.as_secs_f64();
    let rate = ok as f64 / secs;
    let per = |ms: Option<f64>| ms.map(|m| m / ok.max(1) as f64);
    let fmt = |v: Option<f64>| v.map_or("NA".to_string(), |v| format!("{v:.3}"));
    println!(
        "[{label}] {n} PKIOperation POSTs, concurrency {c}, {cipher:?}/{digest:?}: {secs:.2} s wall, {rate:.1} enrollments/s"
    );
    println!("[{label}] latency ms: p50 {p50:.2}  p90 {p90:.2}  p99 {p99:.2}  max {max:.2}");
    println!(
        "[{label}] SUCCESS {ok}  FAILURE/PENDING {refused}  broken {broken}  distinct serials {} (of {ok} issued)",
        serials.len()
    );
    for (r, k) in &reasons {
        println!("[{label}]   {k} × {r}");
    }
    match server_cpu {
        Some(ms) => println!(
            "[{label}] server CPU {:.0} ms = {} ms per enrollment ({:.2} cores busy; bound {:.0} enrollments/s per core)",
            ms,
            fmt(per(Some(ms))),
            ms / 1000.0 / secs,
            if ms > 0.0 {
                ok as f64 * 1000.0 / ms
            } else {
                0.0
            }
        ),
        None => println!("[{label}] server CPU: NA (pass --pid)"),
    }
    if let Some(ms) = db_cpu {
        println!(
            "[{label}] database CPU {:.0} ms = {} ms per enrollment ({} processes{})",
            ms,
            fmt(per(Some(ms))),
            extra_pids.len(),
            if db_gone > 0 {
                format!(", {db_gone} exited during the run and are not counted")
            } else {
                String::new()
            }
        );
    }
    if let Some((before, after)) = &counters {
        let per: Vec<String> = after
            .iter()
            .map(|(k, v)| {
                let b = before.get(k).copied().unwrap_or(0.0);
                format!("{k} {:.2}", (v - b) / n.max(1) as f64)
            })
            .collect();
        println!(
            "[{label}] database counters per request: {}",
            per.join(", ")
        );
    }
    println!(
        "[{label}] load generator CPU {} ms per enrollment; whole machine busy {} ms per enrollment (includes everything else running)",
        fmt(per(self_cpu)),
        fmt(per(machine_cpu))
    );
    println!(
        "RESULT label={label} n={n} c={c} ok={ok} refused={refused} broken={broken} distinct_serials={} wall_s={secs:.3} rate={rate:.1} p50_ms={p50:.2} p99_ms={p99:.2} server_cpu_ms={} db_cpu_ms={} loadgen_cpu_ms={}",
        serials.len(),
        fmt(per(server_cpu)),
        fmt(per(db_cpu)),
        fmt(per(self_cpu)),
    );
    Ok(())
}

/// Database counters once they settle (see [`measure::settled_counters`]).
async fn settled_counters(cmd: &str) -> anyhow::Result<BTreeMap<String, f64>> {
    measure::settled_counters(cmd)
        .await
        .map_err(|e| anyhow::anyhow!("--db-counters-cmd: {e}"))
}

/// The modulus size of a certificate's RSA key.
fn rsa_bits(cert: &Certificate) -> Option<usize> {
    use mdm_pki::der::{Decode, Reader, SliceReader, asn1::AnyRef, asn1::UintRef};
    let spki = cert.tbs_certificate().subject_public_key_info();
    let seq = AnyRef::from_der(spki.subject_public_key.as_bytes()?).ok()?;
    let mut r = SliceReader::new(seq.value()).ok()?;
    let n = UintRef::decode(&mut r).ok()?;
    let _ = r.remaining_len();
    let bytes = n.as_bytes();
    let lead = bytes.first().map_or(8, |b| b.leading_zeros() as usize);
    Some(bytes.len() * 8 - lead)
}

/// `http://h/scep/slug` → (Some("http://h"), Some("slug")).
fn split_scep_url(url: &str) -> (Option<String>, Option<String>) {
    match url.rsplit_once("/scep/") {
        Some((base, slug)) if !slug.is_empty() && !slug.contains('/') => {
            (Some(base.to_string()), Some(slug.to_string()))
        }
        _ => (None, None),
    }
}
