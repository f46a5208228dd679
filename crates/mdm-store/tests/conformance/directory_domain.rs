//! The directory use cases on each backend with an in-memory directory in
//! place of LDAP: the domain is testable without the adapter.

use crate::check_eq;
use crate::support::{Ctx, hex};
use async_trait::async_trait;
use mdm_core::core::CoreSettings;
use mdm_core::directory::{
    AttributeMap, BindOutcome, ConnectorSettings, Directory, DirectoryConfig, DirectoryEntry,
    DirectoryError, SyncTrigger,
};
use mdm_core::pki::PkiSettings;
use mdm_core::ports::{SystemClock, SystemEntropy};
use mdm_core::signin::PasswordCheck;
use mdm_core::tenants::{NewTenant, Tenant};
use mdm_core::tokens::Actor;
use mdm_core::{Core, CoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A directory in memory: its entries (or the error a search gets), the
/// passwords of its DNs, and every bind it was asked for.
#[derive(Default)]
struct FakeDirectory {
    entries: Mutex<Vec<DirectoryEntry>>,
    failure: Mutex<Option<DirectoryError>>,
    passwords: Mutex<HashMap<String, String>>,
    binds: Mutex<Vec<(String, String)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[async_trait]
impl Directory for FakeDirectory {
    async fn check(&self, _: &DirectoryConfig) -> Result<(), DirectoryError> {
        lock(&self.failure).clone().map_or(Ok(()), Err)
    }
    async fn search(
        &self,
        cfg: &DirectoryConfig,
        filter: &str,
        _: &[String],
    ) -> Result<Vec<DirectoryEntry>, DirectoryError> {
        if let Some(e) = lock(&self.failure).clone() {
            return Err(e);
        }
        assert_eq!(
            &*cfg.bind_password, "service-pw",
            "the sealed password opens"
        );
        let all = lock(&self.entries).clone();
        // The sign-in search names one entry by its stable id.
        Ok(match filter.split("(entryUUID=").nth(1) {
            Some(rest) => {
                let id = rest.trim_end_matches(')');
                all.into_iter()
                    .filter(|e| e.attrs["entryUUID"][0] == id)
                    .collect()
            }
            None => all,
        })
    }
    async fn bind(
        &self,
        _: &DirectoryConfig,
        dn: &str,
        pw: &str,
    ) -> Result<BindOutcome, DirectoryError> {
        lock(&self.binds).push((dn.into(), pw.into()));
        Ok(match lock(&self.passwords).get(dn) {
            Some(p) if p == pw => BindOutcome::Accepted,
            _ => BindOutcome::Rejected,
        })
    }
}

fn entry(id: &str, uid: &str) -> DirectoryEntry {
    let mut e = DirectoryEntry {
        dn: format!("uid={uid},ou=people,dc=example,dc=test"),
        ..Default::default()
    };
    for (k, v) in [("entryUUID", id), ("uid", uid), ("cn", uid)] {
        e.attrs.insert(k.into(), vec![v.into()]);
    }
    e.attrs
        .insert("mail".into(), vec![format!("{uid}@example.test")]);
    e
}

async fn setup(ctx: &Ctx) -> anyhow::Result<(Core, Arc<FakeDirectory>, Tenant)> {
    let fake = Arc::new(FakeDirectory::default());
    let vault = mdm_pki::Vault::from_secret(&[7u8; 32]).map_err(|e| anyhow::anyhow!("{e}"))?;
    let settings = CoreSettings {
        public_url: "http://127.0.0.1".into(),
        pki: PkiSettings {
            cert_validity_days: 1,
            ca_validity_days: 1,
            ca_key_bits: 2048,
        },
        apple: Default::default(),
    };
    let store: Arc<mdm_store::SqlStore> = ctx.store.clone();
    let core = Core::new(
        store,
        Arc::new(SystemClock),
        Arc::new(SystemEntropy),
        vault,
        settings,
    )
    .with_directory(fake.clone());
    let tenant = core
        .create_tenant(
            &Actor::Cli,
            NewTenant {
                slug: format!("d-{}", hex(10)),
                name: "Dir".into(),
            },
        )
        .await?;
    let connector = ConnectorSettings {
        url: "ldap://dir.example.test".into(),
        security: None,
        bind_dn: "cn=reader,dc=example,dc=test".into(),
        bind_password: Some("service-pw".into()),
        base_dn: "ou=people,dc=example,dc=test".into(),
        user_filter: None,
        group_filter: None,
        attributes: AttributeMap::default(),
        page_size: None,
        sync_interval_secs: Some(0),
        timeout_secs: None,
        ca_pem: None,
        enabled: None,
    };
    core.set_directory_connector(&Actor::Cli, &tenant, connector)
        .await?;
    Ok((core, fake, tenant))
}

async fn emails(core: &Core, tenant: &Tenant) -> anyhow::Result<Vec<(String, bool)>> {
    let q = mdm_core::users::UserQuery {
        limit: Some(1000),
        ..Default::default()
    };
    let page = core.users(&Actor::Cli, tenant, &q).await?;
    Ok(page
        .items
        .into_iter()
        .map(|u| (u.email, u.enabled))
        .collect())
}

pub async fn sync_through_the_port(ctx: Ctx) -> anyhow::Result<()> {
    let (core, fake, tenant) = setup(&ctx).await?;
    *lock(&fake.entries) = vec![entry("1", "ann"), entry("2", "ben"), entry("3", "cid")];
    let run = core
        .sync_directory(&Actor::Cli, &tenant, SyncTrigger::Manual)
        .await?;
    check_eq!((run.created, run.updated, run.disabled), (3, 0, 0));
    let before = emails(&core, &tenant).await?;

    // A directory that fails mid-way: an error, a failed run, no change.
    *lock(&fake.failure) = Some(DirectoryError::Timeout("page 2".into()));
    let failed = core
        .sync_directory(&Actor::Cli, &tenant, SyncTrigger::Manual)
        .await;
    anyhow::ensure!(
        matches!(
            &failed,
            Err(CoreError::Upstream {
                code: "directory_timeout",
                ..
            })
        ),
        "{failed:?}"
    );
    check_eq!(emails(&core, &tenant).await?, before);
    let report = core.test_directory(&Actor::Cli, &tenant).await?;
    let steps: Vec<(String, bool)> = report
        .steps
        .iter()
        .map(|s| (s.step.clone(), s.ok))
        .collect();
    check_eq!(steps, vec![("connect".to_string(), false)]);
    *lock(&fake.failure) = None;

    // ben renamed (same id), cid gone.
    *lock(&fake.entries) = vec![entry("1", "ann"), entry("2", "benjamin")];
    let run = core
        .sync_directory(&Actor::Cli, &tenant, SyncTrigger::Manual)
        .await?;
    check_eq!(
        (run.created, run.updated, run.disabled, run.unchanged),
        (0, 1, 1, 1)
    );
    check_eq!(
        emails(&core, &tenant).await?,
        vec![
            ("ann@example.test".to_string(), true),
            ("benjamin@example.test".to_string(), true),
            ("cid@example.test".to_string(), false),
        ]
    );
    let runs = core.directory_runs(&Actor::Cli, &tenant, None).await?;
    let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
    check_eq!(statuses, vec!["succeeded", "failed", "succeeded"]);
    Ok(())
}

pub async fn sign_in_searches_then_binds(ctx: Ctx) -> anyhow::Result<()> {
    let (core, fake, tenant) = setup(&ctx).await?;
    *lock(&fake.entries) = vec![entry("1", "ann")];
    lock(&fake.passwords).insert(
        "uid=ann,ou=people,dc=example,dc=test".into(),
        "ann-pw".into(),
    );
    core.sync_directory(&Actor::Cli, &tenant, SyncTrigger::Manual)
        .await?;
    let check =
        |pw: &'static str| core.check_user_password(&Actor::Cli, &tenant, "ann@example.test", pw);
    check_eq!(check("ann-pw").await?, PasswordCheck::Valid);
    check_eq!(check("wrong").await?, PasswordCheck::Invalid);
    check_eq!(check("").await?, PasswordCheck::Invalid);
    let binds = lock(&fake.binds).clone();
    anyhow::ensure!(
        binds.iter().all(|(_, pw)| !pw.is_empty()),
        "an empty password reached the directory: {binds:?}"
    );
    check_eq!(binds.len(), 2);
    // Renamed in the directory: found by its stable id, bound at its new DN.
    *lock(&fake.entries) = vec![entry("1", "ann2")];
    lock(&fake.passwords).insert(
        "uid=ann2,ou=people,dc=example,dc=test".into(),
        "ann-pw".into(),
    );
    check_eq!(check("ann-pw").await?, PasswordCheck::Valid);
    // Gone: invalid. Unreachable: unavailable, not invalid.
    *lock(&fake.entries) = vec![];
    check_eq!(check("ann-pw").await?, PasswordCheck::Invalid);
    *lock(&fake.failure) = Some(DirectoryError::Connect("refused".into()));
    check_eq!(check("ann-pw").await?, PasswordCheck::DirectoryUnavailable);
    Ok(())
}
