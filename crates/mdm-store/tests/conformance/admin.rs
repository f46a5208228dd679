//! The admin portal's storage: sessions, the sign-in throttle, the startup
//! wizard, renames, batched user lookups, device deletion and the list
//! filters the portal adds.

use crate::check_eq;
use crate::devices::enrolled;
use crate::support::{Ctx, actions, entry, hex, new_tenant, now, user};
use mdm_core::StoreError;
use mdm_core::admin_sessions::AdminSession;
use mdm_core::audit::AuditAction;
use mdm_core::devices::{DeviceQuery, DeviceStatus};
use mdm_core::ids::{AdminId, DeviceId, UserId};
use mdm_core::ports::{
    AccessStore, AdminStore, AppleStore, DeviceStore, EnrollmentChange, TenantStore, UserStore,
};
use mdm_core::tokens::{Admin, Scope};
use mdm_core::users::UserQuery;

fn admin(scope: Scope, email: &str) -> Admin {
    Admin {
        id: AdminId::new(),
        scope,
        email: email.into(),
        password_hash: "$argon2id$fake".into(),
        created_at: now(),
    }
}

/// A session, a failed sign-in and a finished wizard, for `convert-db`.
pub async fn populate(s: &mdm_store::SqlStore, tenant: mdm_core::TenantId) -> anyhow::Result<()> {
    let a = admin(Scope::Tenant(tenant), &format!("p-{}@example.com", hex(6)));
    let audit = entry(
        Some(tenant),
        AuditAction::AdminCreated,
        ("admin", a.id.to_string()),
    );
    s.create_admin(&a, &audit).await?;
    let t0 = now();
    let session = AdminSession {
        id_hash: hex(32),
        admin_id: a.id,
        csrf: hex(12),
        created_at: t0,
        last_seen_at: t0,
        expires_at: t0 + time::Duration::hours(12),
    };
    s.create_admin_session(&session, "email:none", &audit)
        .await?;
    s.record_admin_failure(&[format!("email:{}", hex(8))], t0, &[])
        .await?;
    s.complete_setup(tenant, t0, "admin:populate", &audit)
        .await?;
    Ok(())
}

pub async fn sessions_and_throttle(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    // `access::admins` counts administrators server-wide.
    let _guard = ctx.jobs_lock.lock().await;
    let t = new_tenant(s).await?;
    let email = format!("admin-{}@example.com", hex(8));
    let (op, ta) = (
        admin(Scope::Operator, &email),
        admin(Scope::Tenant(t.id), &email),
    );
    for a in [&ta, &op] {
        s.create_admin(
            a,
            &entry(
                a.scope.tenant(),
                AuditAction::AdminCreated,
                ("admin", a.id.to_string()),
            ),
        )
        .await?;
    }
    // Operators first, then by creation.
    check_eq!(
        s.admins_by_email(&email)
            .await?
            .iter()
            .map(|a| a.id)
            .collect::<Vec<_>>(),
        vec![op.id, ta.id]
    );
    check_eq!(s.admins_by_email("nobody@example.com").await?.len(), 0);

    let key = format!("email:{}", hex(16));
    let other = format!("addr:{}", hex(6));
    let t0 = now();
    s.record_admin_failure(&[key.clone(), other.clone()], t0, &[])
        .await?;
    let lock = entry(
        None,
        AuditAction::AdminLockedOut,
        ("admin_sign_in", email.clone()),
    );
    s.record_admin_failure(std::slice::from_ref(&key), t0, std::slice::from_ref(&lock))
        .await?;
    check_eq!(
        s.admin_failures(&key, t0 - time::Duration::minutes(1))
            .await?,
        2
    );
    check_eq!(s.admin_failures(&key, t0).await?, 0);
    check_eq!(
        s.admin_failures(&other, t0 - time::Duration::minutes(1))
            .await?,
        1
    );

    let session = AdminSession {
        id_hash: hex(32),
        admin_id: ta.id,
        csrf: hex(12),
        created_at: t0,
        last_seen_at: t0,
        expires_at: t0 + time::Duration::hours(12),
    };
    let signed = entry(
        Some(t.id),
        AuditAction::AdminSignedIn,
        ("admin", ta.id.to_string()),
    );
    s.create_admin_session(&session, &key, &signed).await?;
    check_eq!(
        s.admin_session(&session.id_hash).await?,
        Some(session.clone())
    );
    // A successful sign-in clears that email's failures, not the address's.
    check_eq!(
        s.admin_failures(&key, t0 - time::Duration::minutes(1))
            .await?,
        0
    );
    check_eq!(
        s.admin_failures(&other, t0 - time::Duration::minutes(1))
            .await?,
        1
    );
    let later = t0 + time::Duration::minutes(5);
    s.touch_admin_session(&session.id_hash, later).await?;
    // Never moves back.
    s.touch_admin_session(&session.id_hash, t0).await?;
    check_eq!(
        s.admin_session(&session.id_hash)
            .await?
            .map(|x| x.last_seen_at),
        Some(later)
    );
    let out = entry(
        Some(t.id),
        AuditAction::AdminSignedOut,
        ("admin", ta.id.to_string()),
    );
    s.delete_admin_session(&session.id_hash, Some(&out)).await?;
    check_eq!(s.admin_session(&session.id_hash).await?, None);
    let acts = actions(s, t.id).await?;
    anyhow::ensure!(
        acts.iter().any(|a| a == "admin.signed_in") && acts.iter().any(|a| a == "admin.signed_out"),
        "{acts:?}"
    );
    // A session for an unknown administrator is refused by the schema.
    let orphan = AdminSession {
        id_hash: hex(32),
        admin_id: AdminId::new(),
        ..session
    };
    anyhow::ensure!(
        s.create_admin_session(&orphan, &key, &signed)
            .await
            .is_err(),
        "a session needs its administrator"
    );
    check_eq!(s.admin_session(&orphan.id_hash).await?, None);
    Ok(())
}

pub async fn setup_rename_and_user_lookup(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    check_eq!(s.setup_completed(a.id).await?, None);
    let t0 = now();
    let done = entry(
        Some(a.id),
        AuditAction::TenantSetupCompleted,
        ("tenant", a.id.to_string()),
    );
    s.complete_setup(a.id, t0, "admin:x", &done).await?;
    s.complete_setup(a.id, t0 + time::Duration::hours(1), "admin:y", &done)
        .await?;
    check_eq!(s.setup_completed(a.id).await?, Some(t0));
    check_eq!(s.setup_completed(b.id).await?, None);
    let completed = actions(s, a.id).await?;
    check_eq!(
        completed
            .iter()
            .filter(|x| *x == "tenant.setup_completed")
            .count(),
        1
    );

    let renamed = entry(
        Some(a.id),
        AuditAction::TenantRenamed,
        ("tenant", a.id.to_string()),
    );
    s.rename_tenant(a.id, "Renamed Inc.", &renamed).await?;
    check_eq!(
        s.tenant(a.id).await?.map(|t| t.name),
        Some("Renamed Inc.".to_string())
    );
    check_eq!(s.tenant(b.id).await?.map(|t| t.name), Some(b.name.clone()));
    let missing = s
        .rename_tenant(mdm_core::TenantId::new(), "x", &renamed)
        .await;
    anyhow::ensure!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");

    let (u1, u2) = (
        user(a.id, &format!("a{}@example.com", hex(6))),
        user(a.id, &format!("b{}@example.com", hex(6))),
    );
    let u3 = user(b.id, &format!("c{}@example.com", hex(6)));
    s.create_users(&[u1.clone(), u2.clone()], &[]).await?;
    s.create_users(std::slice::from_ref(&u3), &[]).await?;
    let mut found = s
        .users_by_ids(a.id, &[u1.id, u2.id, u3.id, UserId::new()])
        .await?
        .into_iter()
        .map(|u| u.id)
        .collect::<Vec<_>>();
    found.sort();
    let mut want = vec![u1.id, u2.id];
    want.sort();
    check_eq!(found, want);
    check_eq!(s.users_by_ids(a.id, &[]).await?.len(), 0);
    Ok(())
}

pub async fn device_delete_and_filters(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let owner = user(a.id, &format!("o{}@example.com", hex(6)));
    let idle = user(a.id, &format!("p{}@example.com", hex(6)));
    s.create_users(&[owner.clone(), idle.clone()], &[]).await?;
    let (mut d, e) = enrolled(s, a.id, &hex(64)).await?;
    let (seen, _) = enrolled(s, a.id, &hex(64)).await?;
    d.user_id = Some(owner.id);
    let change = EnrollmentChange {
        device: Some((d.clone(), false)),
        ..EnrollmentChange::default()
    };
    s.apply_enrollment_change(&change, &[]).await?;
    let seen_channel = seen.udid.clone().unwrap_or_default();
    s.touch_enrollments(&[(a.id, seen_channel, now())]).await?;

    let with = |has: bool| UserQuery {
        has_device: Some(has),
        ..UserQuery::default()
    };
    let emails = |p: mdm_core::users::Page<mdm_core::users::User>| {
        p.items.into_iter().map(|u| u.email).collect::<Vec<_>>()
    };
    check_eq!(
        emails(s.users(a.id, &with(true)).await?),
        vec![owner.email.clone()]
    );
    check_eq!(
        emails(s.users(a.id, &with(false)).await?),
        vec![idle.email.clone()]
    );
    let not_invited = UserQuery {
        invited: Some(false),
        ..UserQuery::default()
    };
    check_eq!(s.users(a.id, &not_invited).await?.items.len(), 2);

    let t = now() - time::Duration::hours(1);
    let recent = DeviceQuery {
        seen_after: Some(t),
        ..DeviceQuery::default()
    };
    let ids = |p: mdm_core::users::Page<mdm_core::devices::Device>| {
        p.items.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    check_eq!(ids(s.devices(a.id, &recent).await?), vec![seen.id]);
    let stale = DeviceQuery {
        seen_before: Some(t),
        ..DeviceQuery::default()
    };
    check_eq!(ids(s.devices(a.id, &stale).await?), vec![d.id]);

    let del = entry(
        Some(a.id),
        AuditAction::DeviceDeleted,
        ("device", d.id.to_string()),
    );
    let wrong = s.delete_device(b.id, d.id, &del).await;
    anyhow::ensure!(matches!(wrong, Err(StoreError::NotFound)), "{wrong:?}");
    let unknown = s.delete_device(a.id, DeviceId::new(), &del).await;
    anyhow::ensure!(matches!(unknown, Err(StoreError::NotFound)), "{unknown:?}");
    s.delete_device(a.id, d.id, &del).await?;
    check_eq!(s.device(a.id, d.id).await?, None);
    check_eq!(s.apple_enrollment(a.id, &e.id).await?, None);
    check_eq!(
        s.device(a.id, seen.id).await?.map(|x| x.status),
        Some(DeviceStatus::Pending)
    );
    anyhow::ensure!(
        actions(s, a.id)
            .await?
            .iter()
            .any(|x| x == "device.deleted"),
        "deletion audited"
    );
    check_eq!(
        emails(s.users(a.id, &with(true)).await?),
        Vec::<String>::new()
    );
    Ok(())
}
