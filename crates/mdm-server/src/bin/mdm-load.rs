//! `mdm-load`: load generator for the REST API. Prints rates, latency
//! percentiles and, given the server's PID, its CPU time per operation.
//!
//!   mdm-load users --url URL --token TOKEN --tenant SLUG --count N --concurrency C [--pid PID]
//!   mdm-load seed  --url URL --token TOKEN --tenant SLUG --count N   (bulk, 1,000 per request)

use anyhow::{Context, bail};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Opts {
    cmd: String,
    url: String,
    token: String,
    tenant: String,
    count: usize,
    concurrency: usize,
    pid: Option<u32>,
}

fn parse() -> anyhow::Result<Opts> {
    let mut args = std::env::args().skip(1);
    let cmd = args.next().context("usage: mdm-load users|seed --url URL --token T --tenant SLUG --count N [--concurrency C] [--pid PID]")?;
    let mut o = Opts {
        cmd,
        url: String::new(),
        token: String::new(),
        tenant: "default".into(),
        count: 1000,
        concurrency: 16,
        pid: None,
    };
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => o.url = value.trim_end_matches('/').to_string(),
            "--token" => o.token = value,
            "--tenant" => o.tenant = value,
            "--count" => o.count = value.parse()?,
            "--concurrency" => o.concurrency = value.parse()?,
            "--pid" => o.pid = Some(value.parse()?),
            other => bail!("unknown flag {other}"),
        }
    }
    if o.url.is_empty() || o.token.is_empty() {
        bail!("--url and --token are required");
    }
    Ok(o)
}

/// utime + stime of a process, in milliseconds.
fn cpu_ms(pid: Option<u32>) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid?)).ok()?;
    let after = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0) // USER_HZ is 100 on Linux
}

fn report(what: &str, n: usize, elapsed: Duration, mut lat: Vec<Duration>, cpu: Option<f64>) {
    lat.sort();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    };
    let rate = n as f64 / elapsed.as_secs_f64();
    print!(
        "{what}: {n} in {:.2} s = {rate:.0}/s; latency p50 {:.2} ms p99 {:.2} ms",
        elapsed.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
    match cpu {
        Some(ms) => println!("; server CPU {:.3} ms per {what}", ms / n as f64),
        None => println!(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = Arc::new(parse()?);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(o.concurrency)
        .build()?;
    let users_url = format!("{}/api/v1/tenants/{}/users", o.url, o.tenant);
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    match o.cmd.as_str() {
        "seed" => {
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
        }
        "users" => {
            let cpu0 = cpu_ms(o.pid);
            let start = Instant::now();
            let mut tasks = Vec::new();
            for w in 0..o.concurrency {
                let (http, o, url, run_id) =
                    (http.clone(), o.clone(), users_url.clone(), run_id.clone());
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    for i in (w..o.count).step_by(o.concurrency) {
                        let t = Instant::now();
                        let body = serde_json::json!({ "email": format!("load-{run_id}-{i}@example.com"), "display_name": format!("Load {i}") });
                        let res = http.post(&url).bearer_auth(&o.token).json(&body).send().await?;
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
        }
        other => bail!("unknown command {other}; use users or seed"),
    }
    Ok(())
}
