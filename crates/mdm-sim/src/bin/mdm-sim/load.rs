//! `mdm-sim load`: complete registrations, idle polls and command round
//! trips against any server, with a store of `--enrolled` devices seeded
//! through the real protocol first (untimed, cycling a few cached keys).
//!
//! Timed windows hold only wire traffic and the device work a real device
//! does at that moment (verifying the profile, the CSR and SCEP envelope,
//! signing each check-in). Keys are made before the clock starts; idle polls
//! are signed before it starts too (one `Mdm-Signature` per device, replayed
//! within the server's clock-skew allowance), while a round trip signs its
//! result when the command arrives, as a device does.

use anyhow::{anyhow, bail};
use mdm_apple::CommandStatus;
use mdm_pki::RsaKey;
use mdm_sim::measure::{
    self, cpu_delta_ms, cpu_ms, cpu_sum_ms, machine_busy_ms, percentile, self_cpu_ms,
};
use mdm_sim::{AdminApi, Channel, Device, DeviceFacts, Platform};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(clap::Args, Clone)]
pub struct LoadArgs {
    /// Base URL of the server.
    #[arg(long)]
    pub(crate) url: String,
    /// API token of the tenant (or an operator token).
    #[arg(long, env = "MDM_TOKEN")]
    pub(crate) token: String,
    #[arg(long, default_value = "default")]
    pub(crate) tenant: String,
    /// Which measurements, in order: register, idle, idle-wrk, roundtrip.
    /// `idle-wrk` replays the same signed Idle requests from `wrk` (which
    /// must be installed) for --wrk-seconds, as the peer's figures were
    /// measured; its load-generator column is wrk's CPU.
    #[arg(long, value_delimiter = ',', default_value = "register,idle,roundtrip")]
    pub(crate) modes: Vec<String>,
    /// Devices enrolled in the store before idle polls and round trips
    /// (seeded untimed, the timed registrations included).
    #[arg(long, default_value_t = 10_000)]
    pub(crate) enrolled: usize,
    /// Timed complete registrations.
    #[arg(short = 'n', long, default_value_t = 300)]
    pub(crate) registrations: usize,
    /// Timed idle polls.
    #[arg(long, default_value_t = 20_000)]
    pub(crate) polls: usize,
    /// Timed command round trips (one per device, at most --enrolled).
    #[arg(long, default_value_t = 5_000)]
    pub(crate) roundtrips: usize,
    /// Requests (or registrations) in flight.
    #[arg(short = 'c', long, default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Registrations in flight while seeding.
    #[arg(long, default_value_t = 8)]
    pub(crate) seed_concurrency: usize,
    /// Distinct keys the seeded devices cycle through.
    #[arg(long, default_value_t = 32)]
    pub(crate) seed_keys: usize,
    /// Directory of cached device keys (key-<i>.p8), shared with `mdm-load scep`.
    #[arg(long)]
    pub(crate) key_cache: Option<std::path::PathBuf>,
    /// The server's PID, for its CPU time per operation.
    #[arg(long)]
    pub(crate) pid: Option<u32>,
    /// Shell command printing the database backends' PIDs (PostgreSQL), run
    /// before each timed window.
    #[arg(long)]
    pub(crate) db_pids_cmd: Option<String>,
    /// Label of the RESULT lines.
    #[arg(long, default_value = "apple")]
    pub(crate) label: String,
    /// How long `idle-wrk` runs wrk.
    #[arg(long, default_value_t = 10)]
    pub(crate) wrk_seconds: u64,
    /// Writes each timed operation's start (ms from the start of its
    /// window) and latency (ms), one per line in start order, to
    /// `DIR/<label>-<mode>.tsv`: where in a run the slow ones fall.
    #[arg(long, value_name = "DIR")]
    pub(crate) latency_log: Option<std::path::PathBuf>,
    /// The command each round trip carries (admin API JSON `type`).
    #[arg(long, default_value = "ProfileList")]
    pub(crate) command: String,
}

/// One timed window's outcome.
pub(crate) struct Window {
    pub(crate) ok: usize,
    pub(crate) failed: usize,
    pub(crate) first_error: Option<String>,
    latencies: Vec<Duration>,
    /// The successful operations, as `run_timed` timed them.
    timeline: Vec<Timed>,
    /// p50 and p99 in ms as another load generator measured them (wrk).
    pub(crate) percentiles: Option<(f64, f64)>,
    pub(crate) wall: Duration,
    server_ms: Option<f64>,
    db_ms: Option<f64>,
    db_procs: usize,
    pub(crate) self_ms: Option<f64>,
    machine_ms: Option<f64>,
}

pub(crate) struct Meter {
    pid: Option<u32>,
    db_pids: Vec<u32>,
    server0: Option<f64>,
    db0: Vec<(u32, f64)>,
    self0: Option<f64>,
    machine0: Option<f64>,
    start: Instant,
}

/// Waits (at most 30 s) until the server is nearly idle: background work
/// started by the untimed phase (push jobs of queued commands) must not be
/// billed to the timed window.
pub(crate) async fn settle(pid: Option<u32>) {
    let Some(pid) = pid else { return };
    for _ in 0..60 {
        let before = cpu_ms(Some(pid));
        tokio::time::sleep(Duration::from_millis(500)).await;
        match before.zip(cpu_ms(Some(pid))) {
            Some((a, b)) if b - a <= 20.0 => return,
            Some(_) => {}
            None => return,
        }
    }
}

impl Meter {
    pub(crate) fn start(a: &LoadArgs) -> Self {
        let db_pids = a
            .db_pids_cmd
            .as_deref()
            .map(|c| measure::pids_from_command(c).unwrap_or_default())
            .unwrap_or_default();
        Self {
            pid: a.pid,
            db0: cpu_sum_ms(&db_pids),
            db_pids,
            server0: cpu_ms(a.pid),
            self0: self_cpu_ms(),
            machine0: machine_busy_ms(),
            start: Instant::now(),
        }
    }

    pub(crate) fn stop(self, outcomes: Vec<Result<Timed, String>>) -> Window {
        let wall = self.start.elapsed();
        let server_ms = self.server0.zip(cpu_ms(self.pid)).map(|(a, b)| b - a);
        let db1 = cpu_sum_ms(&self.db_pids);
        let self_ms = self.self0.zip(self_cpu_ms()).map(|(a, b)| b - a);
        let machine_ms = self.machine0.zip(machine_busy_ms()).map(|(a, b)| b - a);
        let mut w = Window {
            ok: 0,
            failed: 0,
            first_error: None,
            latencies: Vec::new(),
            timeline: Vec::new(),
            percentiles: None,
            wall,
            server_ms,
            db_ms: (!self.db_pids.is_empty()).then(|| cpu_delta_ms(&self.db0, &db1)),
            db_procs: self.db_pids.len(),
            self_ms,
            machine_ms,
        };
        for o in outcomes {
            match o {
                Ok(t) => {
                    w.ok += 1;
                    w.latencies.push(t.took);
                    w.timeline.push(t);
                }
                Err(e) => {
                    w.failed += 1;
                    w.first_error.get_or_insert(e);
                }
            }
        }
        w.latencies.sort();
        w
    }
}

pub(crate) fn report(a: &LoadArgs, mode: &str, c: usize, w: &Window) {
    if let Some(dir) = &a.latency_log {
        let path = dir.join(format!("{}-{mode}.tsv", a.label));
        let mut timeline = w.timeline.clone();
        timeline.sort_by_key(|t| t.at);
        let text: String = timeline
            .iter()
            .map(|t| {
                format!(
                    "{:.3}\t{:.3}\n",
                    t.at.as_secs_f64() * 1e3,
                    t.took.as_secs_f64() * 1e3
                )
            })
            .collect();
        match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, text)) {
            Ok(()) => eprintln!("[{}] latencies of {mode} in {}", a.label, path.display()),
            Err(e) => eprintln!("[{}] cannot write {}: {e}", a.label, path.display()),
        }
    }
    let per = |ms: Option<f64>| ms.map(|m| m / w.ok.max(1) as f64);
    let fmt = |v: Option<f64>| v.map_or("NA".to_owned(), |v| format!("{v:.3}"));
    let rate = w.ok as f64 / w.wall.as_secs_f64();
    let (p50, p99) = w.percentiles.unwrap_or_else(|| {
        (
            percentile(&w.latencies, 0.5),
            percentile(&w.latencies, 0.99),
        )
    });
    let label = &a.label;
    println!(
        "[{label}] {mode}: {} ok, {} failed in {:.2} s = {rate:.0}/s, c={c}; latency p50 {p50:.2} ms p99 {p99:.2} ms",
        w.ok,
        w.failed,
        w.wall.as_secs_f64()
    );
    if let Some(e) = &w.first_error {
        println!("[{label}]   first failure: {e}");
    }
    println!(
        "[{label}]   server CPU {} ms per {mode}; database CPU {} ms ({} processes); load generator {} ms; whole machine {} ms",
        fmt(per(w.server_ms)),
        fmt(per(w.db_ms)),
        w.db_procs,
        fmt(per(w.self_ms)),
        fmt(per(w.machine_ms)),
    );
    println!(
        "RESULT label={label} mode={mode} c={c} ok={} failed={} wall_s={:.3} rate={rate:.1} p50_ms={p50:.2} p99_ms={p99:.2} server_cpu_ms={} db_cpu_ms={} loadgen_cpu_ms={} machine_cpu_ms={}",
        w.ok,
        w.failed,
        w.wall.as_secs_f64(),
        fmt(per(w.server_ms)),
        fmt(per(w.db_ms)),
        fmt(per(w.self_ms)),
        fmt(per(w.machine_ms)),
    );
}

/// One timed operation: when it started, from the start of its run, and how
/// long it took.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timed {
    pub(crate) at: Duration,
    pub(crate) took: Duration,
}

/// Runs `job(i)` for i in 0..n with `c` in flight; each result timed.
pub(crate) async fn run_timed<F, Fut>(n: usize, c: usize, job: F) -> Vec<Result<Timed, String>>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let job = Arc::new(job);
    let next = Arc::new(AtomicUsize::new(0));
    let began = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c.max(1) {
        let (job, next) = (job.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    break;
                }
                let t = Instant::now();
                out.push(job(i).await.map(|()| Timed {
                    at: t.duration_since(began),
                    took: t.elapsed(),
                }));
            }
            out
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        match t.await {
            Ok(part) => all.extend(part),
            Err(e) => all.push(Err(format!("task: {e}"))),
        }
    }
    all
}

pub(crate) type Fleet = Arc<Vec<Mutex<Option<Device>>>>;

/// One complete registration: profile → SCEP → Authenticate → TokenUpdate →
/// DeviceInformation acknowledged. Leaves the enrolled device in `slot`.
async fn register(
    api: &AdminApi,
    http: &reqwest::Client,
    i: usize,
    key: RsaKey,
    slot: &Mutex<Option<Device>>,
) -> Result<(), String> {
    let profile = api
        .issue_profile(http, Platform::Iphone, None)
        .await
        .map_err(|e| e.to_string())?;
    let mut d = Device::new(DeviceFacts::iphone(i as u64), http.clone()).with_key(key);
    d.enroll(&profile.signed).await.map_err(|e| e.to_string())?;
    let handled = d.poll(Channel::Device).await.map_err(|e| e.to_string())?;
    if !handled
        .iter()
        .any(|h| h.request_type == "DeviceInformation" && h.status == CommandStatus::Acknowledged)
    {
        return Err(format!(
            "no DeviceInformation after TokenUpdate (got {handled:?})"
        ));
    }
    *slot.lock().await = Some(d);
    Ok(())
}

fn key_from(der: &[u8]) -> Result<RsaKey, String> {
    RsaKey::from_pkcs8_der(der).map_err(|e| e.to_string())
}

pub async fn run(a: LoadArgs) -> anyhow::Result<()> {
    let c = a.concurrency.max(1);
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(c.max(a.seed_concurrency))
        .timeout(Duration::from_secs(60))
        .build()?;
    let api = Arc::new(AdminApi::new(&a.url, &a.tenant, &a.token));
    let label = a.label.clone();
    let log = |m: String| eprintln!("[{label}] {m}");
    let timed_regs = if a.modes.iter().any(|m| m == "register") {
        a.registrations
    } else {
        0
    };
    let seed_n = a.enrolled.saturating_sub(timed_regs);

    // Keys: a few cycled by the seeded devices, distinct ones for the timed registrations.
    let t = Instant::now();
    let seed_keys = a.seed_keys.max(1);
    let pool =
        mdm_sim::measure::parallel(seed_keys + timed_regs, |i| -> anyhow::Result<Vec<u8>> {
            let key = match &a.key_cache {
                Some(dir) => mdm_sim::cached_key(dir, i)?,
                None => RsaKey::generate(2048)?,
            };
            Ok(key.to_pkcs8_der()?.to_vec())
        })?;
    let pool = Arc::new(pool);
    log(format!(
        "{} device keys ready in {:.1} s (untimed)",
        pool.len(),
        t.elapsed().as_secs_f64()
    ));

    let fleet: Fleet = Arc::new((0..seed_n + timed_regs).map(|_| Mutex::new(None)).collect());

    // Seed the store through the protocol (untimed).
    let t = Instant::now();
    let seeded = {
        let (api, http, pool, fleet) = (api.clone(), http.clone(), pool.clone(), fleet.clone());
        run_timed(seed_n, a.seed_concurrency, move |i| {
            let (api, http, pool, fleet) = (api.clone(), http.clone(), pool.clone(), fleet.clone());
            async move {
                let der = pool.get(i % seed_keys).ok_or("key")?;
                let slot = fleet.get(i).ok_or("slot")?;
                register(&api, &http, i, key_from(der)?, slot).await
            }
        })
        .await
    };
    let failed = seeded.iter().filter(|r| r.is_err()).count();
    log(format!(
        "seeded {} enrolled devices in {:.1} s (untimed, {} in flight){}",
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
                // The timed devices' keys are read and warmed up before the
                // clock starts: aws-lc checks an RSA key's consistency when
                // it reads one and sets up its blinding on the first
                // private-key operation, neither part of a registration.
                let keys: Vec<std::sync::Mutex<Option<RsaKey>>> =
                    mdm_sim::measure::parallel(timed_regs, |k| -> anyhow::Result<_> {
                        let der = pool.get(seed_keys + k).ok_or_else(|| anyhow!("key {k}"))?;
                        let key = key_from(der).map_err(|e| anyhow!(e))?;
                        mdm_sim::warm_up(&key)?;
                        Ok(std::sync::Mutex::new(Some(key)))
                    })?;
                let keys = Arc::new(keys);
                let (api2, http2, fleet2) = (api.clone(), http.clone(), fleet.clone());
                let meter = Meter::start(&a);
                let out = run_timed(timed_regs, c, move |k| {
                    let (api, http, keys, fleet) =
                        (api2.clone(), http2.clone(), keys.clone(), fleet2.clone());
                    async move {
                        let key = keys
                            .get(k)
                            .and_then(|m| m.lock().ok()?.take())
                            .ok_or("key")?;
                        let slot = fleet.get(seed_n + k).ok_or("slot")?;
                        register(&api, &http, seed_n + k, key, slot).await
                    }
                })
                .await;
                report(&a, "registration", c, &meter.stop(out));
            }
            "idle" => crate::channel::idle(&a, &http, &fleet, c).await?,
            "idle-wrk" => crate::wrk::idle(&a, &fleet, c).await?,
            "roundtrip" => crate::channel::roundtrips(&a, &api, &http, &fleet, c).await?,
            other => bail!("unknown mode {other} (register, idle, idle-wrk, roundtrip)"),
        }
    }
    Ok(())
}
