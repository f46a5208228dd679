//! Directory connectors, sync application (all or nothing) and sync runs.

use crate::check_eq;
use crate::support::{Ctx, actions, entry, new_tenant, now, user};
use mdm_core::StoreError;
use mdm_core::audit::AuditAction;
use mdm_core::directory::sync::SyncEntryError;
use mdm_core::directory::{
    AttributeMap, DirectoryConnector, DirectorySecurity, SyncRun, SyncStatus, SyncTrigger,
    UserChange,
};
use mdm_core::ids::{SyncRunId, TenantId};
use mdm_core::ports::{DirectoryStore, UserStore};
use mdm_core::users::{User, UserSource};
use mdm_store::SqlStore;
use time::Duration;

pub fn connector(tenant: TenantId) -> DirectoryConnector {
    DirectoryConnector {
        tenant_id: tenant,
        url: "ldap://127.0.0.1:3389".into(),
        security: DirectorySecurity::Starttls,
        bind_dn: "cn=admin,dc=example,dc=test".into(),
        sealed_bind_password: vec![1, 2, 3, 0, 255],
        base_dn: "ou=people,dc=example,dc=test".into(),
        user_filter: "(objectClass=inetOrgPerson)".into(),
        group_filter: None,
        attributes: AttributeMap::default(),
        page_size: 50,
        sync_interval_secs: 3600,
        timeout_secs: 10,
        ca_pem: None,
        enabled: true,
        created_at: now(),
        updated_at: now(),
    }
}

pub fn run(tenant: TenantId, status: SyncStatus, created: i64) -> SyncRun {
    SyncRun {
        id: SyncRunId::new(),
        tenant_id: tenant,
        trigger: SyncTrigger::Manual,
        status,
        started_at: now(),
        finished_at: now() + Duration::milliseconds(1500),
        duration_ms: 1500,
        entries: 10,
        created,
        updated: 2,
        reenabled: 1,
        disabled: 3,
        unchanged: 4,
        error_count: 1,
        errors: vec![SyncEntryError {
            dn: "uid=x,dc=example,dc=test".into(),
            message: "email x@example.test belongs to a local user ✓".into(),
        }],
        error: (status == SyncStatus::Failed).then(|| "cannot connect".into()),
        error_code: (status == SyncStatus::Failed).then(|| "directory_unreachable".into()),
    }
}

fn ldap_user(tenant: TenantId, email: &str, id: &str) -> User {
    let mut u = user(tenant, email);
    u.source = UserSource::Ldap;
    u.external_id = Some(id.into());
    u.login_name = email.split('@').next().map(str::to_string);
    u
}

fn configured(t: TenantId) -> mdm_core::audit::AuditEntry {
    entry(
        Some(t),
        AuditAction::DirectoryConfigured,
        ("directory", t.to_string()),
    )
}

/// A connector, a run and a synced user: what `convert-db` must copy.
pub async fn populate(s: &SqlStore, tenant: TenantId) -> anyhow::Result<()> {
    let mut c = connector(tenant);
    c.group_filter = Some("(memberOf=cn=mdm,dc=example,dc=test)".into());
    c.ca_pem = Some("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----".into());
    s.put_directory_connector(&c, &configured(tenant)).await?;
    let u = ldap_user(tenant, "synced@example.com", "uuid-synced");
    let r = run(tenant, SyncStatus::Succeeded, 1);
    s.apply_directory_sync(
        &[u],
        &[],
        &r,
        &[entry(
            Some(tenant),
            AuditAction::DirectorySynced,
            ("directory_sync", r.id.to_string()),
        )],
    )
    .await?;
    Ok(())
}

async fn sorted_users(s: &SqlStore, tenant: TenantId) -> Result<Vec<User>, StoreError> {
    let mut u = s.tenant_users(tenant).await?;
    u.sort_by(|a, b| a.email.cmp(&b.email));
    Ok(u)
}

pub async fn connector_round_trip(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    check_eq!(s.directory_connector(a.id).await?, None);
    let mut c = connector(a.id);
    c.ca_pem = Some("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----".into());
    s.put_directory_connector(&c, &configured(a.id)).await?;
    check_eq!(s.directory_connector(a.id).await?, Some(c.clone()));
    check_eq!(s.directory_connector(b.id).await?, None);

    let mut replaced = c.clone();
    replaced.url = "ldaps://dir.example.test".into();
    replaced.security = DirectorySecurity::Ldaps;
    replaced.group_filter = Some("cn=mdm,ou=groups,dc=example,dc=test".into());
    replaced.attributes = AttributeMap {
        email: "mail".into(),
        display_name: "displayName".into(),
        login_name: "sAMAccountName".into(),
        stable_id: "objectGUID".into(),
    };
    replaced.sealed_bind_password = vec![9; 40];
    replaced.ca_pem = None;
    replaced.enabled = false;
    replaced.created_at = now() + Duration::days(1);
    replaced.updated_at = now() + Duration::days(1);
    s.put_directory_connector(&replaced, &configured(a.id))
        .await?;
    // The first creation time stays; everything else is replaced.
    let expected = DirectoryConnector {
        created_at: c.created_at,
        ..replaced
    };
    check_eq!(s.directory_connector(a.id).await?, Some(expected.clone()));
    let listed = s.directory_connectors().await?;
    anyhow::ensure!(listed.contains(&expected), "listed: {listed:?}");
    anyhow::ensure!(
        listed.iter().all(|c| c.tenant_id != b.id),
        "b has no connector"
    );
    check_eq!(
        actions(s, a.id).await?,
        vec![
            "tenant.created",
            "directory.configured",
            "directory.configured"
        ]
    );
    Ok(())
}

pub async fn sync_applies_everything_or_nothing(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let local = user(t.id, "local@example.com");
    let old = ldap_user(t.id, "old@example.com", "uuid-old");
    s.create_users(&[local.clone(), old.clone()], &[]).await?;
    let before = sorted_users(s, t.id).await?;
    check_eq!(before.len(), 2);

    // A change read from a stale user: nothing of the run is written.
    let mut stale = old.clone();
    stale.updated_at = old.updated_at - Duration::seconds(1);
    let mut renamed = old.clone();
    renamed.email = "renamed@example.com".into();
    renamed.updated_at = now() + Duration::seconds(1);
    let fresh = ldap_user(t.id, "fresh@example.com", "uuid-fresh");
    let r = run(t.id, SyncStatus::Succeeded, 1);
    let audit = [entry(
        Some(t.id),
        AuditAction::DirectorySynced,
        ("directory_sync", r.id.to_string()),
    )];
    let change = |before: &User| UserChange {
        before: before.clone(),
        after: renamed.clone(),
        changed: vec!["email"],
    };
    let raced = s
        .apply_directory_sync(std::slice::from_ref(&fresh), &[change(&stale)], &r, &audit)
        .await;
    anyhow::ensure!(
        matches!(raced, Err(StoreError::Conflict("user_changed"))),
        "{raced:?}"
    );
    check_eq!(sorted_users(s, t.id).await?, before);
    check_eq!(s.directory_runs(t.id, 10).await?, vec![]);

    // A duplicate email (a local user's) among the creates: nothing either.
    let dup = ldap_user(t.id, "local@example.com", "uuid-dup");
    let clash = s
        .apply_directory_sync(&[fresh.clone(), dup], &[change(&old)], &r, &audit)
        .await;
    anyhow::ensure!(matches!(clash, Err(StoreError::Conflict(_))), "{clash:?}");
    check_eq!(sorted_users(s, t.id).await?, before);
    // Two directory users with one stable id: refused by the unique index.
    let twin = ldap_user(t.id, "twin@example.com", "uuid-old");
    let twins = s.apply_directory_sync(&[twin], &[], &r, &audit).await;
    anyhow::ensure!(matches!(twins, Err(StoreError::Conflict(_))), "{twins:?}");
    check_eq!(sorted_users(s, t.id).await?, before);

    s.apply_directory_sync(std::slice::from_ref(&fresh), &[change(&old)], &r, &audit)
        .await?;
    let after = sorted_users(s, t.id).await?;
    check_eq!(after, {
        let mut v = vec![fresh.clone(), local.clone(), renamed.clone()];
        v.sort_by(|a, b| a.email.cmp(&b.email));
        v
    });
    check_eq!(s.directory_runs(t.id, 10).await?, vec![r]);
    check_eq!(
        actions(s, t.id).await?,
        vec!["tenant.created", "directory.synced"]
    );
    Ok(())
}

pub async fn runs_newest_first_per_tenant(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let mut runs = Vec::new();
    for i in 0..5 {
        let mut r = run(
            a.id,
            if i % 2 == 0 {
                SyncStatus::Failed
            } else {
                SyncStatus::Succeeded
            },
            i,
        );
        r.started_at = now() + Duration::seconds(i);
        r.trigger = if i == 3 {
            SyncTrigger::Scheduled
        } else {
            SyncTrigger::Manual
        };
        let audit = entry(
            Some(a.id),
            AuditAction::DirectorySyncFailed,
            ("directory_sync", r.id.to_string()),
        );
        s.record_directory_run(&r, &audit).await?;
        runs.push(r);
    }
    let other = run(b.id, SyncStatus::Failed, 0);
    s.record_directory_run(
        &other,
        &entry(
            Some(b.id),
            AuditAction::DirectorySyncFailed,
            ("directory_sync", "x".into()),
        ),
    )
    .await?;
    runs.reverse();
    check_eq!(s.directory_runs(a.id, 100).await?, runs);
    check_eq!(s.directory_runs(a.id, 2).await?, runs[..2].to_vec());
    check_eq!(s.directory_runs(a.id, 0).await?.len(), 1);
    check_eq!(s.directory_runs(b.id, 100).await?, vec![other.clone()]);
    let end = now() + Duration::seconds(90);
    s.finish_directory_run(b.id, other.id, end, 90_000).await?;
    let finished = s.directory_runs(b.id, 1).await?;
    check_eq!(
        (finished[0].finished_at, finished[0].duration_ms),
        (end, 90_000)
    );
    let wrong = s.finish_directory_run(a.id, other.id, end, 1).await;
    anyhow::ensure!(
        matches!(wrong, Err(StoreError::NotFound)),
        "other tenant's run: {wrong:?}"
    );
    Ok(())
}
