//! The test environment (databases per backend, fresh databases on demand,
//! cleanup) and fixtures shared by the tests.

use anyhow::{Context, bail};
use mdm_core::audit::{AuditAction, AuditEntry, AuditQuery, AuditRecord};
use mdm_core::enrollment::EnrollmentUrlVersion;
use mdm_core::ids::{TenantId, UserId};
use mdm_core::ports::{AuditStore, TenantStore};
use mdm_core::secrets::sha256_hex;
use mdm_core::settings::UserSettings;
use mdm_core::tenants::Tenant;
use mdm_core::tokens::Actor;
use mdm_core::users::{User, UserSource};
use mdm_store::{Backend, SqlStore};
use sqlx::Connection;
use std::sync::{Arc, Mutex};
use time::OffsetDateTime;

/// Checks `a == b`, failing with both values.
#[macro_export]
macro_rules! check_eq {
    ($a:expr, $b:expr $(,)?) => {{
        let (a, b) = (&$a, &$b);
        anyhow::ensure!(
            a == b,
            "{} != {}\n  left: {:?}\n right: {:?}",
            stringify!($a),
            stringify!($b),
            a,
            b
        );
    }};
}

/// Process-wide state: the temp directory and the PostgreSQL server.
pub struct Env {
    tmp: tempfile::TempDir,
    pub pg_admin_url: Option<String>,
    /// PostgreSQL databases created by this run, dropped at the end.
    pg_databases: Mutex<Vec<String>>,
}

/// What a test gets: its backend's shared store and the environment.
#[derive(Clone)]
pub struct Ctx {
    pub backend: Backend,
    pub store: Arc<SqlStore>,
    pub env: Arc<Env>,
    /// Job tests hold this: claiming is server-wide, not per tenant (so is
    /// the administrator count).
    pub jobs_lock: Arc<tokio::sync::Mutex<()>>,
}

/// Random lowercase hex.
pub fn hex(n: usize) -> String {
    let mut s = String::new();
    while s.len() < n {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    s.truncate(n);
    s
}

/// `url` with its database name replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[host_start..].find('/') {
        Some(slash) => &base[..host_start + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

impl Env {
    pub fn new() -> anyhow::Result<Env> {
        Ok(Env {
            tmp: tempfile::tempdir().context("creating a temp dir")?,
            pg_admin_url: std::env::var("MDM_TEST_POSTGRES_URL")
                .ok()
                .filter(|u| !u.is_empty()),
            pg_databases: Mutex::new(Vec::new()),
        })
    }

    async fn admin(&self) -> anyhow::Result<sqlx::PgConnection> {
        let url = self
            .pg_admin_url
            .as_deref()
            .context("MDM_TEST_POSTGRES_URL is not set")?;
        sqlx::PgConnection::connect(url)
            .await
            .with_context(|| format!("connecting to {url}"))
    }

    /// A new, empty database of `backend` (migrated when `migrate`).
    pub async fn fresh_store(&self, backend: Backend, migrate: bool) -> anyhow::Result<SqlStore> {
        let url = match backend {
            Backend::Sqlite => format!("sqlite://{}/mdm-{}.db", self.tmp.path().display(), hex(12)),
            Backend::Postgres => {
                let name = format!("mdm_test_{}", hex(16));
                let mut admin = self.admin().await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await?;
                let url = with_database(self.pg_admin_url.as_deref().unwrap_or_default(), &name);
                self.pg_databases
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .push(name);
                url
            }
        };
        let store = SqlStore::connect(&url, 8).await?;
        if migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Closes the shared stores and drops every PostgreSQL database made.
    pub async fn cleanup(&self, stores: Vec<Arc<SqlStore>>) -> anyhow::Result<()> {
        for store in stores {
            store.close().await;
        }
        let names = std::mem::take(
            &mut *self
                .pg_databases
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?,
        );
        if names.is_empty() {
            return Ok(());
        }
        let mut admin = self.admin().await?;
        for name in names {
            // FORCE terminates connections a failed test may have left open.
            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            if let Err(e) = sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut admin)
                .await
            {
                eprintln!("dropping test database {name}: {e}");
            }
        }
        Ok(())
    }
}

impl Ctx {
    pub async fn new(backend: Backend, env: Arc<Env>) -> anyhow::Result<Ctx> {
        let store = Arc::new(env.fresh_store(backend, true).await?);
        Ok(Ctx {
            backend,
            store,
            env,
            jobs_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// A fresh database of this context's backend.
    pub async fn fresh_store(&self, migrate: bool) -> anyhow::Result<SqlStore> {
        self.env.fresh_store(self.backend, migrate).await
    }
}

/// The migration files of both directories have the same versions and
/// descriptions, and match what the crate embeds.
pub fn same_migration_versions() -> anyhow::Result<()> {
    let dir = |backend: &str| -> anyhow::Result<Vec<(i64, String)>> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut found = Vec::new();
        for entry in
            std::fs::read_dir(&path).with_context(|| format!("reading {}", path.display()))?
        {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".sql") else {
                bail!("unexpected file {name} in {backend}")
            };
            let (version, description) = stem
                .split_once('_')
                .context("name is not <version>_<description>.sql")?;
            found.push((version.parse::<i64>()?, description.to_string()));
        }
        found.sort();
        Ok(found)
    };
    let (sqlite, postgres) = (dir("sqlite")?, dir("postgres")?);
    anyhow::ensure!(!sqlite.is_empty(), "no migrations");
    check_eq!(sqlite, postgres);
    let versions = sqlite.iter().map(|(v, _)| *v).collect::<Vec<_>>();
    check_eq!(versions, Backend::Sqlite.migration_versions());
    check_eq!(versions, Backend::Postgres.migration_versions());
    Ok(())
}

/// Now, at millisecond precision (what the store keeps).
pub fn now() -> OffsetDateTime {
    let t = OffsetDateTime::now_utc();
    t - time::Duration::nanoseconds(i64::from(t.nanosecond() % 1_000_000))
}

/// An audit entry by the command line.
pub fn entry(tenant: Option<TenantId>, action: AuditAction, subject: (&str, String)) -> AuditEntry {
    AuditEntry::new(tenant, now(), &Actor::Cli, action, subject)
}

/// A tenant, its settings and first URL version, not yet stored.
pub fn tenant_fixture() -> (Tenant, UserSettings, EnrollmentUrlVersion) {
    let tenant = Tenant {
        id: TenantId::new(),
        slug: format!("t-{}", hex(12)),
        name: "Conformance Tenant".into(),
        created_at: now(),
    };
    let secret = hex(20);
    let url = EnrollmentUrlVersion {
        version: 1,
        secret_hash: sha256_hex(&secret),
        secret: Some(secret),
        created_at: now(),
        retired_at: None,
    };
    (tenant, UserSettings::default(), url)
}

/// A stored tenant with default settings.
pub async fn new_tenant(store: &SqlStore) -> anyhow::Result<Tenant> {
    let (tenant, settings, url) = tenant_fixture();
    let audit = entry(
        Some(tenant.id),
        AuditAction::TenantCreated,
        ("tenant", tenant.id.to_string()),
    );
    store
        .create_tenant(&tenant, &settings, &url, &audit)
        .await?;
    Ok(tenant)
}

/// A local user of `tenant`, not yet stored.
pub fn user(tenant: TenantId, email: &str) -> User {
    User {
        id: UserId::new(),
        tenant_id: tenant,
        email: email.to_string(),
        display_name: email.split('@').next().unwrap_or_default().to_string(),
        password_hash: None,
        temporary_password: false,
        source: UserSource::Local,
        external_id: None,
        login_name: None,
        enabled: true,
        created_at: now(),
        updated_at: now(),
    }
}

/// Every audit record of `tenant` matching `query`, newest first, across pages.
pub async fn all_audit(
    store: &SqlStore,
    tenant: Option<TenantId>,
    query: AuditQuery,
) -> anyhow::Result<Vec<AuditRecord>> {
    let mut out: Vec<AuditRecord> = Vec::new();
    loop {
        let page = store
            .audit(
                tenant,
                &AuditQuery {
                    limit: Some(1000),
                    before: out.last().map(|r| r.id),
                    ..query.clone()
                },
            )
            .await?;
        let done = page.len() < 1000;
        out.extend(page);
        if done {
            return Ok(out);
        }
    }
}

/// The actions audited for `tenant`, oldest first.
pub async fn actions(store: &SqlStore, tenant: TenantId) -> anyhow::Result<Vec<String>> {
    let mut records = all_audit(store, Some(tenant), AuditQuery::default()).await?;
    records.reverse();
    Ok(records.into_iter().map(|r| r.action).collect())
}

/// The domain on this store, with a fixed vault secret and default settings,
/// for tests that drive use cases (`clock`: the system's, or one they move).
pub fn core_on(
    store: Arc<SqlStore>,
    clock: Arc<dyn mdm_core::ports::Clock>,
) -> anyhow::Result<mdm_core::Core> {
    let vault = mdm_pki::Vault::from_secret(&[9; 32]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = mdm_core::core::CoreSettings {
        public_url: "http://127.0.0.1".into(),
        pki: Default::default(),
        apple: Default::default(),
    };
    Ok(mdm_core::Core::new(
        store,
        clock,
        Arc::new(mdm_core::ports::SystemEntropy),
        vault,
        settings,
    ))
}
