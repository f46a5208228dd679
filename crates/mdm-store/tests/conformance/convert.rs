//! `convert-db` (copy every table into a fresh database) and the schema
//! checks it relies on.

use crate::check_eq;
use crate::pki;
use crate::support::{Ctx, entry, hex, new_tenant, now, user};
use mdm_core::audit::{AuditAction, AuditQuery};
use mdm_core::ids::{AdminId, JobId, TenantId, TokenId};
use mdm_core::jobs::NewJob;
use mdm_core::pki::{CaRecord, CertificateRecord, Redeem};
use mdm_core::ports::{
    AccessStore, AuditStore, HealthStore, JobStore, PkiStore, TenantStore, UserStore,
};
use mdm_core::secrets::sha256_hex;
use mdm_core::settings::UserSettings;
use mdm_core::tokens::{Admin, ApiToken, Scope};
use mdm_core::users::UserSource;
use mdm_store::{Backend, ColumnValue, SqlStore, TABLES, copy_all};
use time::Duration;

/// Fills `s` with a bit of everything, enough rows in `users` and `audit`
/// to need several copy batches.
async fn populate(s: &SqlStore) -> anyhow::Result<()> {
    let tenants = [
        new_tenant(s).await?,
        new_tenant(s).await?,
        new_tenant(s).await?,
    ];
    let first = &tenants[0];
    for v in 2..=3 {
        let secret = hex(20);
        let next = mdm_core::enrollment::EnrollmentUrlVersion {
            version: v,
            secret_hash: sha256_hex(&secret),
            secret: Some(secret),
            created_at: now(),
            retired_at: None,
        };
        let audit = entry(
            Some(first.id),
            AuditAction::EnrollmentUrlRegenerated,
            ("enrollment_url", v.to_string()),
        );
        s.rotate_enrollment_url(first.id, &next, &audit).await?;
    }
    let settings = UserSettings {
        pin_required: true,
        qr_registration: false,
        ..UserSettings::default()
    };
    s.update_settings(
        tenants[1].id,
        &settings,
        &entry(
            Some(tenants[1].id),
            AuditAction::SettingsUpdated,
            ("settings", "x".into()),
        ),
    )
    .await?;

    for (n, tenant) in [(1200, first), (3, &tenants[1]), (1, &tenants[2])] {
        let users = (0..n)
            .map(|i| {
                let mut u = user(tenant.id, &format!("p{i:04}@example.com"));
                if i % 2 == 0 {
                    u.password_hash = Some(format!("$argon2id$fake{i}"));
                    u.temporary_password = true;
                    u.source = UserSource::Ldap;
                    u.external_id = Some(format!("ext-{i}"));
                    u.login_name = Some(format!("p{i}"));
                    u.enabled = false;
                }
                u
            })
            .collect::<Vec<_>>();
        let audit = users
            .iter()
            .map(|u| {
                entry(
                    Some(tenant.id),
                    AuditAction::UserCreated,
                    ("user", u.id.to_string()),
                )
                .user(u.id)
            })
            .collect::<Vec<_>>();
        s.create_users(&users, &audit).await?;
    }

    crate::invitations::populate(s, tenants[2].id).await?;
    for (i, scope) in [
        Scope::Operator,
        Scope::Tenant(first.id),
        Scope::Tenant(tenants[1].id),
    ]
    .into_iter()
    .enumerate()
    {
        let token = ApiToken {
            id: TokenId::new(),
            scope,
            name: format!("token {i}"),
            token_hash: hex(64),
            created_at: now(),
            expires_at: (i == 1).then(|| now() + Duration::days(1)),
            revoked_at: None,
        };
        s.create_token(
            &token,
            &entry(
                scope.tenant(),
                AuditAction::TokenCreated,
                ("token", token.id.to_string()),
            ),
        )
        .await?;
        if i == 2 {
            s.revoke_token(
                scope,
                token.id,
                now(),
                &entry(
                    scope.tenant(),
                    AuditAction::TokenRevoked,
                    ("token", "x".into()),
                ),
            )
            .await?;
        }
        let admin = Admin {
            id: AdminId::new(),
            scope,
            email: format!("admin{i}@example.com"),
            password_hash: "$argon2id$x".into(),
            created_at: now(),
        };
        s.create_admin(
            &admin,
            &entry(
                scope.tenant(),
                AuditAction::AdminCreated,
                ("admin", admin.id.to_string()),
            ),
        )
        .await?;
    }
    let mut odd = entry(
        None,
        AuditAction::EnrollmentUrlStaleUsed,
        ("device", "d".into()),
    );
    odd.device_id = Some("device-1".into());
    odd.details = serde_json::json!({ "text": "quote \" and ünïcode ✓", "n": [1, 2.5, null] });
    s.append_audit(&odd).await?;

    let t0 = now();
    for i in 0..6 {
        let job = NewJob {
            id: JobId::new(),
            tenant_id: (i % 2 == 0).then_some(first.id),
            kind: format!("kind-{i}"),
            payload: serde_json::json!({ "i": i }),
            run_at: t0 - Duration::seconds(10 - i),
            dedupe_key: (i < 3).then(|| format!("key-{i}")),
            max_attempts: 1,
        };
        s.enqueue_job(&job).await?;
    }
    let claimed = s.claim_jobs("w", t0, t0 + Duration::minutes(5), 3).await?;
    anyhow::ensure!(claimed.len() == 3, "claimed {}", claimed.len());
    s.complete_job(claimed[0].id, "w", t0).await?;
    s.fail_job(claimed[1].id, "w", "gave up", t0).await?;
    s.try_lease("scheduler", "w", t0, t0 + Duration::minutes(1))
        .await?;
    s.try_lease("ldap-sync", "x", t0, t0 + Duration::minutes(2))
        .await?;
    crate::directory::populate(s, tenants[2].id).await?;
    crate::apple::populate(s, tenants[2].id).await?;
    crate::admin::populate(s, first.id).await?;
    populate_pki(s, first.id, tenants[1].id).await
}

/// An active and a retired CA, profile signers, used and unused challenges,
/// certificates with and without their optional fields.
async fn populate_pki(s: &SqlStore, first: TenantId, second: TenantId) -> anyhow::Result<()> {
    let ca = pki::new_ca(s, first).await?;
    let retired = CaRecord {
        active: false,
        ..pki::ca(first)
    };
    s.create_ca(&retired, &pki::ca_audit(&retired)).await?;
    let other_ca = pki::new_ca(s, second).await?;
    for ca in [&ca, &other_ca] {
        let (signer, cert) = pki::signer(ca, now() + Duration::days(700));
        s.create_profile_signer(&signer, &cert, &pki::certificate_audit(&cert), None)
            .await?;
    }
    for (tenant, seed) in [(first, 7), (second, 8)] {
        let identity = pki::signing_identity(tenant, seed);
        s.put_signing_identity(
            &identity,
            &pki::signing_identity_audit(&identity, AuditAction::SigningIdentityUploaded),
        )
        .await?;
    }
    for (i, tenant) in [first, first, first, second].into_iter().enumerate() {
        let secret = hex(32);
        let ch = pki::challenge(tenant, &secret);
        s.create_challenge(&ch, &pki::challenge_audit(&ch)).await?;
        if i % 2 == 0 {
            let outcome = s
                .redeem_challenge(tenant, &sha256_hex(&secret), now())
                .await?;
            anyhow::ensure!(matches!(outcome, Redeem::Redeemed(_)), "{outcome:?}");
        }
    }
    let t0 = now();
    let renewed = pki::certificate(&retired, &hex(32), t0 - Duration::days(300));
    let full = CertificateRecord {
        registration: Some("reg-1".into()),
        device_id: Some("device-1".into()),
        renewal_of: Some(renewed.serial.clone()),
        revoked_at: Some(t0),
        ..pki::certificate(&ca, &hex(32), t0 - Duration::days(1))
    };
    let bare = pki::certificate(&ca, &hex(32), t0);
    let elsewhere = pki::certificate(&other_ca, &full.serial, t0);
    for c in [renewed, full, bare, elsewhere] {
        s.record_certificate(&c, &pki::certificate_audit(&c))
            .await?;
    }
    crate::android::register_one(s, second, "350000000000002").await?;
    Ok(())
}

pub async fn copy_all_tables(ctx: Ctx) -> anyhow::Result<()> {
    let source = ctx.env.fresh_store(Backend::Sqlite, true).await?;
    populate(&source).await?;
    let target = ctx.fresh_store(true).await?;
    let report = copy_all(&source, &target).await?;

    check_eq!(
        report.tables.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
        TABLES.iter().map(|t| t.name).collect::<Vec<_>>()
    );
    for (table, copied) in &report.tables {
        let rows = source.table_rows(table).await?;
        anyhow::ensure!(!rows.is_empty(), "the fixture leaves {table} empty");
        check_eq!((*table, rows.len() as u64), (*table, *copied));
        let copy = target.table_rows(table).await?;
        anyhow::ensure!(rows == copy, "table {table} differs after the copy");
    }
    anyhow::ensure!(
        report.total_rows() > 2400,
        "expected several batches, copied {}",
        report.total_rows()
    );

    // The copy is a working store: reads agree, and new audit ids follow the copied ones.
    let tenants = source.tenants().await?;
    check_eq!(target.tenants().await?, tenants);
    for t in &tenants {
        check_eq!(
            target.current_enrollment_url(t.id).await?,
            source.current_enrollment_url(t.id).await?
        );
        check_eq!(
            target.count_users(t.id).await?,
            source.count_users(t.id).await?
        );
    }
    let ids = source
        .table_rows("audit")
        .await?
        .into_iter()
        .filter_map(|r| match r.first() {
            Some(ColumnValue::Int(id)) => Some(*id),
            _ => None,
        });
    let max_id = ids.max().unwrap_or_default();
    let first = &tenants[0];
    target
        .append_audit(&entry(
            Some(first.id),
            AuditAction::UserUpdated,
            ("user", "after-copy".into()),
        ))
        .await?;
    let newest = target
        .audit(
            Some(first.id),
            &AuditQuery {
                limit: Some(1),
                ..Default::default()
            },
        )
        .await?;
    anyhow::ensure!(
        newest
            .first()
            .is_some_and(|r| r.id > max_id && r.subject_id == "after-copy"),
        "new audit id after copy: {newest:?}"
    );
    target.close().await;
    source.close().await;
    Ok(())
}

pub async fn refuses_unready_target(ctx: Ctx) -> anyhow::Result<()> {
    let source = ctx.env.fresh_store(Backend::Sqlite, true).await?;
    let copied = new_tenant(&source).await?;

    let unmigrated = ctx.fresh_store(false).await?;
    let err = copy_all(&source, &unmigrated)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    anyhow::ensure!(err.contains("migrate"), "unmigrated target: {err:?}");
    check_eq!(unmigrated.applied_migrations().await.is_err(), true);

    // The shared store already holds rows.
    // (Other tests add tenants to it concurrently: check for the source's.)
    new_tenant(&ctx.store).await?;
    let err = copy_all(&source, &ctx.store)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    anyhow::ensure!(err.contains("not empty"), "non-empty target: {err:?}");
    check_eq!(ctx.store.tenant(copied.id).await?, None);

    let empty_source = ctx.env.fresh_store(Backend::Sqlite, false).await?;
    let target = ctx.fresh_store(true).await?;
    let err = copy_all(&empty_source, &target)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    anyhow::ensure!(err.contains("source"), "unmigrated source: {err:?}");
    for s in [source, unmigrated, empty_source, target] {
        s.close().await;
    }
    Ok(())
}

pub async fn schema_matches_table_list(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    s.ping().await?;
    check_eq!(s.backend(), ctx.backend);
    check_eq!(
        s.applied_migrations().await?,
        ctx.backend.migration_versions()
    );
    s.migrate().await?;
    s.check_schema().await?;
    Ok(())
}
