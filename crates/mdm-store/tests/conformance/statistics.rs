//! Planner statistics follow the tables' growth (PostgreSQL), so cached
//! generic plans are rebuilt on real row counts; SQLite has none to keep.

use crate::support::{Ctx, entry, new_tenant};
use mdm_core::audit::AuditAction;
use mdm_core::ports::{AuditStore, HealthStore};
use mdm_store::Backend;
use std::time::{Duration, Instant};

pub async fn refreshed_after_growth(ctx: Ctx) -> anyhow::Result<()> {
    // A database of its own: other tests' writes do not move its counts.
    let s = ctx.fresh_store(true).await?;
    if ctx.backend == Backend::Sqlite {
        anyhow::ensure!(s.refresh_statistics().await?.is_empty());
        s.close().await;
        return Ok(());
    }
    let tenant = new_tenant(&s).await?;
    append_entries(&s, &tenant, AuditAction::UserCreated, 300).await?;
    // PostgreSQL publishes a backend's row counts within seconds, not at
    // commit: wait for them (this waits for a state, it times nothing).
    let deadline = Instant::now() + Duration::from_secs(60);
    let refreshed = loop {
        let tables = s.refresh_statistics().await?;
        if tables.iter().any(|t| t == "audit") || Instant::now() > deadline {
            break tables;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    anyhow::ensure!(
        refreshed.iter().any(|t| t == "audit"),
        "300 new audit rows did not make the audit statistics stale: {refreshed:?}"
    );
    // Analysed with its 300 rows: not stale any more, and a few rows more do
    // not make it so.
    append_entries(&s, &tenant, AuditAction::UserUpdated, 10).await?;
    let again = s.refresh_statistics().await?;
    anyhow::ensure!(
        !again.iter().any(|t| t == "audit"),
        "the audit statistics were refreshed twice: {again:?}"
    );
    s.close().await;
    Ok(())
}

/// `n` audit entries of `action` for `tenant`, one transaction each.
async fn append_entries(
    s: &mdm_store::SqlStore,
    tenant: &mdm_core::tenants::Tenant,
    action: AuditAction,
    n: usize,
) -> anyhow::Result<()> {
    for i in 0..n {
        s.append_audit(&entry(Some(tenant.id), action, ("user", format!("u{i}"))))
            .await?;
    }
    Ok(())
}
