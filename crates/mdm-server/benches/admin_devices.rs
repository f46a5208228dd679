//! Server time to render the admin portal's device list of a
//! 100,000-device tenant: the store is seeded directly (batched inserts
//! through the store's pool), then the real router answers
//! `GET /admin/t/<slug>/devices…` in-process (`tower::ServiceExt::oneshot`,
//! a signed-in administrator's cookie), so the time is the server's:
//! session check, tenant, keyset page of devices, user emails, rendering.
//!
//!   cargo bench -p mdm-server --bench admin_devices -- [-n DEVICES] [-r ROUNDS] [--database-url URL]
//!
//! Without `--database-url` a fresh SQLite file in a temp dir is used; a
//! PostgreSQL URL must name an empty database. Prints p50/p95/max per page
//! kind and exits 1 when a p95 is 100 ms or more.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, header};
use mdm_core::core::CoreSettings;
use mdm_core::ports::{Store, SystemClock, SystemEntropy};
use mdm_core::tenants::NewTenant;
use mdm_core::tokens::{Actor, Scope};
use mdm_core::{Core, TenantId};
use mdm_store::SqlStore;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

struct Args {
    devices: usize,
    rounds: usize,
    url: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        devices: 100_000,
        rounds: 200,
        url: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-n" => a.devices = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.devices),
            "-r" => a.rounds = it.next().and_then(|v| v.parse().ok()).unwrap_or(a.rounds),
            "--database-url" => a.url = it.next(),
            _ => {}
        }
    }
    a
}

const USERS: usize = 10_000;
const STATUSES: [&str; 6] = [
    "active",
    "active",
    "active",
    "retired",
    "wiped",
    "mdm_disabled",
];
const PLATFORMS: [&str; 3] = ["ios", "ios", "macos"];

/// Inserts users and devices with multi-row INSERTs (what a real tenant of
/// this size looks like: most active, some retired or wiped, last-seen
/// times spread over 60 days, one user per ten devices).
async fn seed(pool: &sqlx::AnyPool, tenant: TenantId, devices: usize) {
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let t = tenant.to_string();
    let mut users = Vec::with_capacity(USERS);
    for chunk in (0..USERS).collect::<Vec<_>>().chunks(500) {
        let mut sql = String::from(
            "INSERT INTO users (id, tenant_id, email, display_name, password_hash, temporary_password, \
             source, external_id, login_name, enabled, created_at, updated_at) VALUES ",
        );
        for (n, i) in chunk.iter().enumerate() {
            let id = uuid::Uuid::now_v7().to_string();
            if n > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('{id}', '{t}', 'user{i:05}@example.com', 'User {i}', NULL, 0, 'local', NULL, NULL, 1, {now}, {now})"
            ));
            users.push(id);
        }
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("users");
    }
    for start in (0..devices).step_by(1000) {
        let mut sql = String::from(
            "INSERT INTO devices (id, tenant_id, user_id, platform, status, udid, serial_number, model, model_name, \
             product_name, os_version, build_version, device_name, enrolled_at, last_seen_at, created_at, updated_at) VALUES ",
        );
        for i in start..(start + 1000).min(devices) {
            let id = uuid::Uuid::now_v7().to_string();
            let user = &users[i % USERS];
            let created = now - (devices - i) as i64 * 1000;
            let seen = now - ((i * 7919) % (60 * 86_400)) as i64 * 1000;
            if i > start {
                sql.push(',');
            }
            let serial = format!("SER{i:07}");
            sql.push_str(&format!(
                "('{id}', '{t}', '{user}', '{}', '{}', 'UDID-{i:08}', '{serial}', 'MQ0D3LL/A', 'iPhone', 'iPhone15,2', \
                 '18.1', '22B83', 'Device {i}', {created}, {seen}, {created}, {created})",
                PLATFORMS[i % PLATFORMS.len()],
                STATUSES[i % STATUSES.len()],
            ));
        }
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(pool)
            .await
            .expect("devices");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().expect("temp dir");
    let url = a.url.clone().unwrap_or_else(|| {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("bench.db").display()
        )
    });
    let store = SqlStore::connect(&url, 8).await.expect("connect");
    store.migrate().await.expect("migrate");
    let pool = sqlx::AnyPool::connect(&url).await.expect("seed pool");
    let store: Arc<dyn Store> = Arc::new(store);
    let core = Core::new(
        store,
        Arc::new(SystemClock),
        Arc::new(SystemEntropy),
        mdm_pki::Vault::from_secret(&[7; 32]).expect("vault"),
        CoreSettings {
            public_url: "http://127.0.0.1:8080".into(),
            pki: Default::default(),
            apple: Default::default(),
        },
    );
    let tenant = core
        .create_tenant(
            &Actor::System,
            NewTenant {
                slug: "bench".into(),
                name: "Bench".into(),
            },
        )
        .await
        .expect("tenant");
    let started = Instant::now();
    seed(&pool, tenant.id, a.devices).await;
    println!(
        "seeded {} devices and {USERS} users in {:.1} s ({})",
        a.devices,
        started.elapsed().as_secs_f64(),
        if a.url.is_some() {
            "given database"
        } else {
            "SQLite"
        }
    );
    core.create_admin(
        &Actor::System,
        Scope::Tenant(tenant.id),
        "bench@example.com",
        "bench-password",
    )
    .await
    .expect("admin");
    let opened = core
        .admin_sign_in("bench@example.com", "bench-password", None)
        .await
        .expect("sign in")
        .expect("accepted");
    let cookie = format!("mdm_admin={}", opened.secret);
    let app = mdm_http::router(core, None, &mdm_http::HttpLimits::default());

    // A cursor deep in the list: the page after device 50,000 from the top.
    let deep = {
        let mut q = String::new();
        let mut page = String::new();
        for _ in 0..3 {
            page = get(&app, &format!("/admin/t/bench/devices{q}"), &cookie)
                .await
                .1;
            let next = page
                .split("id=\"next-page\"")
                .next()
                .and_then(|p| p.rsplit("href=\"").next())
                .map(|h| {
                    h.split('"')
                        .next()
                        .unwrap_or_default()
                        .replace("&amp;", "&")
                });
            q = next.unwrap_or_default();
        }
        let _ = page;
        q
    };
    let kinds: Vec<(&str, String)> = vec![
        ("first page", String::new()),
        ("fourth page (cursor)", deep),
        ("status=retired", "?status=retired".into()),
        (
            "platform=macos&status=wiped",
            "?platform=macos&status=wiped".into(),
        ),
        ("seen within a day", "?seen=1d".into()),
        ("not seen for 30 days", "?seen=stale30".into()),
        (
            "user=user00042@example.com",
            "?user=user00042%40example.com".into(),
        ),
    ];
    let mut worst_p95 = Duration::ZERO;
    println!(
        "{:<32} {:>9} {:>9} {:>9} {:>6}",
        "page", "p50 ms", "p95 ms", "max ms", "rows"
    );
    for (name, q) in kinds {
        let path = format!("/admin/t/bench/devices{q}");
        let (status, body) = get(&app, &path, &cookie).await;
        assert_eq!(status, 200, "{path}: {body}");
        let rows = body.matches("<tr data-serial=").count();
        let mut times = Vec::with_capacity(a.rounds);
        for _ in 0..a.rounds {
            let t = Instant::now();
            let (status, _) = get(&app, &path, &cookie).await;
            times.push(t.elapsed());
            assert_eq!(status, 200);
        }
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let p95 = percentile(&times, 0.95);
        worst_p95 = worst_p95.max(p95);
        println!(
            "{name:<32} {:>9.2} {:>9.2} {:>9.2} {rows:>6}",
            ms(percentile(&times, 0.5)),
            ms(p95),
            ms(times[times.len() - 1])
        );
    }
    if worst_p95 >= Duration::from_millis(100) {
        println!(
            "FAIL: a p95 is {:.1} ms (bound 100 ms)",
            worst_p95.as_secs_f64() * 1000.0
        );
        std::process::exit(1);
    }
    println!("ok: every p95 under 100 ms");
}

async fn get(app: &axum::Router, path: &str, cookie: &str) -> (u16, String) {
    let req = Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .expect("request");
    let res = app.clone().oneshot(req).await.expect("answer");
    let status = res.status().as_u16();
    let bytes = axum::body::to_bytes(res.into_body(), 16 * 1024 * 1024)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&bytes).into_owned())
}
