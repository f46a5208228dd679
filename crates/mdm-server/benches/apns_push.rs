//! Pushes per second through one HTTP/2 connection: the APNs client
//! against the local fake APNs of the server tests, which runs on its own
//! thread so the client's CPU time can be told apart from the fake's.
//!
//!   cargo bench -p mdm-server --bench apns_push -- [-n PUSHES] [-c IN_FLIGHT] [--cert]
//!
//! C tasks each keep one push in flight. Prints the rate, latency
//! percentiles of one push, and CPU time per push of the client and of the
//! fake (read from `/proc`: the fake's thread, the rest of the process).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/server/fake_apns.rs"]
mod fake_apns;
#[path = "../tests/server/fake_tls.rs"]
mod fake_tls;

use fake_apns::{FakeApns, FakeAuth, TOPIC};
use mdm_core::ids::TenantId;
use mdm_core::push::{ApplePush, PushOutcome};
use mdm_server::push::{ApnsAuth, ApnsClient, ApnsSettings, Delivery, ProviderToken};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    count: usize,
    in_flight: usize,
    cert: bool,
}

fn args() -> Args {
    let mut a = Args {
        count: 20_000,
        in_flight: 100,
        cert: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-n" => a.count = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.count),
            "-c" => {
                a.in_flight = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(a.in_flight)
            }
            "--cert" => a.cert = true,
            _ => {} // cargo bench passes --bench
        }
    }
    a
}

/// utime + stime in ms from a `/proc/…/stat` file.
fn cpu_ms(path: &str) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks * 10.0 // USER_HZ is 100 on Linux
}

fn push(n: usize) -> ApplePush {
    let mut token = vec![0x5a; 32];
    token[..8].copy_from_slice(&(n as u64).to_be_bytes());
    ApplePush {
        tenant_id: TenantId(uuid::Uuid::nil()),
        enrollment_id: format!("UDID-{n}"),
        token,
        push_magic: format!("magic-{n}"),
        topic: TOPIC.into(),
        expires_at: None,
    }
}

fn main() {
    let args = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let (tx, rx) = std::sync::mpsc::channel();
    let fake_dir = dir.path().to_path_buf();
    let cert = args.cert;
    // The fake on a thread of its own, with a single-threaded runtime.
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let auth = if cert {
                FakeAuth::Certificate
            } else {
                FakeAuth::Token
            };
            let fake = Arc::new(FakeApns::start(auth, &fake_dir).await.expect("fake APNs"));
            let tid = std::fs::read_link("/proc/thread-self").expect("thread id");
            tx.send((fake, tid)).expect("send");
            std::future::pending::<()>().await;
        });
    });
    let (fake, tid) = rx.recv().expect("fake started");
    let fake_stat = format!("/proc/{}/stat", tid.display());

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let c = &fake.credentials;
        let key = std::fs::read(&c.key_file).expect("key");
        let auth = match &c.cert_file {
            Some(cert) => ApnsAuth::Certificate {
                cert_pem: std::fs::read(cert).expect("cert"),
                key_pem: key,
            },
            None => ApnsAuth::Token(ProviderToken::from_p8(&key, &c.key_id, &c.team_id).expect("p8")),
        };
        let client = ApnsClient::new(ApnsSettings {
            endpoint: fake.url.clone(),
            auth,
            ca_pem: Some(fake.ca_pem.clone().into_bytes()),
            delivery: Delivery {
                max_in_flight: args.in_flight,
                ..Delivery::default()
            },
        })
        .expect("client");
        let warm: Vec<ApplePush> = (0..200).map(|n| push(1_000_000 + n)).collect();
        client.push(&warm).await;

        // C workers, each with one push in flight: the latency is that of a
        // request, not of a queue.
        let pushes: Arc<Vec<ApplePush>> = Arc::new((0..args.count).map(push).collect());
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (cpu0, fake0) = (cpu_ms("/proc/self/stat"), cpu_ms(&fake_stat));
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..args.in_flight {
            let (client, pushes, next) = (client.clone(), pushes.clone(), next.clone());
            set.spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some(p) = pushes.get(i) else { break };
                    let t = Instant::now();
                    let out = client.push_one(p).await;
                    mine.push((t.elapsed(), matches!(out, PushOutcome::Sent { .. })));
                }
                mine
            });
        }
        let mut latencies: Vec<Duration> = Vec::with_capacity(args.count);
        let mut sent = 0;
        while let Some(Ok(mine)) = set.join_next().await {
            for (lat, ok) in mine {
                latencies.push(lat);
                sent += usize::from(ok);
            }
        }
        let elapsed = start.elapsed();
        let (cpu1, fake1) = (cpu_ms("/proc/self/stat"), cpu_ms(&fake_stat));
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let fake_cpu = fake1 - fake0;
        let client_cpu = (cpu1 - cpu0) - fake_cpu;
        println!(
            "apns {} auth: {} pushes, {} in flight, {} connection(s): {:.0} pushes/s, p50 {:.2} ms, p99 {:.2} ms; CPU per push: client {:.3} ms, fake {:.3} ms; {} sent",
            if args.cert { "certificate" } else { "token" },
            args.count,
            args.in_flight,
            fake.connections(),
            args.count as f64 / elapsed.as_secs_f64(),
            pct(0.50).as_secs_f64() * 1e3,
            pct(0.99).as_secs_f64() * 1e3,
            client_cpu / args.count as f64,
            fake_cpu / args.count as f64,
            sent
        );
    });
}
