//! `mdm serve`: the HTTP server.

use crate::config::Config;
use crate::wiring;
use anyhow::Context;
use axum::serve::ListenerExt as _;
use mdm_core::core::Bootstrap;
use mdm_http::HttpLimits;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(mut config: Config) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("{}://{addr}", config.scheme()));
    }
    let tls = wiring::server_tls(&config)?;
    let pusher = wiring::pusher(&config)?;
    let store = wiring::open_store(&config).await?;
    let closing = store.clone();
    let core = wiring::core(store, &config)?
        .with_pusher(Arc::new(pusher.clone()))
        .with_facilities(wiring::facilities(&config, &pusher));
    let bootstrap = core.bootstrap().await.context("first-start setup failed")?;
    let metrics = if config.metrics {
        metrics_handle()
    } else {
        None
    };
    let limits = HttpLimits {
        max_body_bytes: config.max_body_bytes,
        trust_client_cert_header: config.trust_client_cert_header,
    };
    pusher.announce();
    let renewal_scan =
        std::time::Duration::from_secs(config.apple_renewal_scan_secs.unsigned_abs());
    let worker = tokio::spawn(work_jobs(core.clone(), renewal_scan));
    let seen = tokio::spawn(flush_last_seen(core.clone()));
    let statistics = tokio::spawn(refresh_statistics(core.clone()));
    let identities = tokio::spawn(watch_signing_identities(core.clone()));
    let core_flush = core.clone();
    let app = mdm_http::router(core, metrics, &limits);
    announce(&config, addr, bootstrap.as_ref())?;
    tracing::info!(%addr, startup_ms = started.elapsed().as_millis() as u64, "listening");
    match &tls {
        Some(tls) => {
            tracing::info!(subject = %tls.leaf_subject, not_after = %tls.leaf_not_after,
                self_signed_anchor = tls.anchor_der.is_some(), "serving HTTPS; client certificates requested, not required");
            mdm_server::tls::serve(listener, app, tls, shutdown()).await?;
        }
        // The peer address reaches handlers (sign-in throttling per address);
        // `tap_io` is what lets the wrapped listener hand it over.
        None => axum::serve(
            mdm_server::linger::LingeringListener(listener).tap_io(|_| {}),
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown())
        .await
        .context("server failed")?,
    }
    worker.abort();
    seen.abort();
    statistics.abort();
    identities.abort();
    if let Err(e) = core_flush.flush_last_seen().await {
        tracing::warn!(error = %e, "last-seen times: final flush failed");
    }
    // Every connection closed now, not whenever the last clone of the store
    // goes (a task that was still running keeps one): on SQLite the last
    // connection to close copies the WAL into the database and removes it.
    closing.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How often a worker looks for periodic work that has come due.
const SCHEDULE_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// How often a worker scans for registrations due a reminder (R15); the
/// scan is one indexed query and claims what it finds with row leases.
const REMINDER_SCAN_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// The background worker of this process: claims due jobs (pushes, mail,
/// reminders, directory syncs) from the shared queue and runs them. Every
/// replica runs one; the queue's leases keep them from doing a job twice.
async fn work_jobs(core: mdm_core::Core, renewal_scan: std::time::Duration) {
    let schedule_every = SCHEDULE_EVERY.min(renewal_scan);
    let worker = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7());
    let mut idle = tokio::time::interval(std::time::Duration::from_millis(500));
    idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut scheduled: Option<std::time::Instant> = None;
    let mut scanned: Option<std::time::Instant> = None;
    loop {
        if scanned.is_none_or(|at| at.elapsed() >= REMINDER_SCAN_EVERY) {
            scanned = Some(std::time::Instant::now());
            match core.schedule_reminders().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(registrations = n, "reminders queued or given up"),
                Err(e) => tracing::warn!(error = %e, "scanning for due reminders failed"),
            }
        }
        // Periodic work becomes deduplicated jobs, whichever replica queues them.
        if scheduled.is_none_or(|at| at.elapsed() >= schedule_every) {
            scheduled = Some(std::time::Instant::now());
            if let Err(e) = core.schedule_directory_syncs().await {
                tracing::warn!(error = %e, "scheduling directory syncs failed");
            }
            if let Err(e) = core.schedule_renewal_scan().await {
                tracing::warn!(error = %e, "scheduling the certificate renewal scan failed");
            }
        }
        match core.work_jobs(&worker, 32).await {
            // A full batch: there may be more due right now.
            Ok(pass) if pass.claimed == 32 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "background jobs: pass failed"),
        }
        idle.tick().await;
    }
}

/// Writes the Apple channels' last-seen times every few seconds, off the
/// request path (an Idle poll stays one database read).
async fn flush_last_seen(core: mdm_core::Core) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        if let Err(e) = core.flush_last_seen().await {
            tracing::warn!(error = %e, "last-seen times: flush failed");
        }
    }
}

/// Keeps the database's planner statistics current as the tables grow, so
/// the cached query plans stay the right ones (ADR 0002).
async fn refresh_statistics(core: mdm_core::Core) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match core.refresh_statistics().await {
            Ok(tables) if tables.is_empty() => {}
            Ok(tables) => tracing::debug!(?tables, "planner statistics refreshed"),
            Err(e) => tracing::warn!(error = %e, "refreshing planner statistics failed"),
        }
    }
}

/// Publishes each tenant's uploaded profile-signing identity's expiry as the
/// gauge `mdm_profile_signing_identity_expiry_seconds{tenant}` (Unix time;
/// NaN once the identity is removed, so expiry alerts stop) and warns, at
/// most hourly per tenant, when one expires within 30 days or has expired.
async fn watch_signing_identities(core: mdm_core::Core) {
    const GAUGE: &str = "mdm_profile_signing_identity_expiry_seconds";
    const WARN_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut published = std::collections::HashSet::<String>::new();
    let mut warned = std::collections::HashMap::<String, std::time::Instant>::new();
    loop {
        every.tick().await;
        let expiries = match core.signing_identity_expiries().await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "reading the signing identities' expiry failed");
                continue;
            }
        };
        let now = time::OffsetDateTime::now_utc();
        let current: std::collections::HashSet<String> =
            expiries.iter().map(|e| e.tenant_slug.clone()).collect();
        for gone in published.difference(&current) {
            metrics::gauge!(GAUGE, "tenant" => gone.clone()).set(f64::NAN);
        }
        for e in &expiries {
            metrics::gauge!(GAUGE, "tenant" => e.tenant_slug.clone())
                .set(e.not_after.unix_timestamp() as f64);
            let recently = warned
                .get(&e.tenant_slug)
                .is_some_and(|at| at.elapsed() < WARN_EVERY);
            if e.due(now) && !recently {
                let days_left = (e.not_after - now).whole_days();
                tracing::warn!(tenant = %e.tenant_slug, not_after = %e.not_after, days_left,
                    "the uploaded profile-signing identity expires soon or has expired: profiles fall back to the tenant CA's signer; upload a renewed one");
                warned.insert(e.tenant_slug.clone(), std::time::Instant::now());
            }
        }
        published = current;
    }
}

/// Prints where the server is and how to get in; on first start writes the
/// generated credentials to `data_dir/initial-credentials.txt` (mode 0600).
fn announce(
    config: &Config,
    addr: std::net::SocketAddr,
    bootstrap: Option<&Bootstrap>,
) -> anyhow::Result<()> {
    let scheme = config.scheme();
    let public = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{addr}"));
    let credentials = match bootstrap {
        Some(b) => {
            let path = config.data_dir.join("initial-credentials.txt");
            let text = format!(
                "# Created on first start. Keep this safe, then delete the file.\n\
                 operator_api_token = \"{}\"\nadmin_email = \"{}\"\nadmin_password = \"{}\"\ndefault_tenant = \"{}\"\n",
                b.operator_token.secret, b.admin_email, b.admin_password, b.tenant.slug
            );
            wiring::write_private(&path, &text)?;
            Some(path)
        }
        None => None,
    };
    println!("mdm is serving on {scheme}://{addr} (public URL {public})");
    println!(
        "  health: {scheme}://{addr}/healthz   API: {scheme}://{addr}/api/v1   OpenAPI: {scheme}://{addr}/api/openapi.json"
    );
    match credentials {
        Some(path) => {
            println!(
                "  first start: an operator API token and the admin password are in {}",
                path.display()
            );
            println!(
                "  try: curl -H \"Authorization: Bearer $(grep -o 'mdm_[A-Za-z0-9_-]*' {})\" {scheme}://{addr}/api/v1/tenants",
                path.display()
            );
        }
        None => println!(
            "  API tokens: mdm token create --operator --name <name>  (or --tenant <slug>)"
        ),
    }
    Ok(())
}

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match PrometheusBuilder::new().install_recorder() {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        })
        .clone()
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
