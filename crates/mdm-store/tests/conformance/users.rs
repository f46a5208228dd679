//! End users: CRUD, uniqueness, tenant isolation.

use crate::check_eq;
use crate::support::{Ctx, actions, all_audit, entry, new_tenant, now, user};
use mdm_core::StoreError;
use mdm_core::audit::{AuditAction, AuditQuery};
use mdm_core::ports::UserStore;
use mdm_core::users::{User, UserQuery, UserSource};

fn created(u: &User) -> mdm_core::audit::AuditEntry {
    entry(
        Some(u.tenant_id),
        AuditAction::UserCreated,
        ("user", u.id.to_string()),
    )
    .user(u.id)
}

fn audit_of(u: &User, action: AuditAction) -> mdm_core::audit::AuditEntry {
    entry(Some(u.tenant_id), action, ("user", u.id.to_string())).user(u.id)
}

pub async fn crud(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let mut alice = user(tenant.id, "alice@example.com");
    alice.password_hash = Some("$argon2id$v=19$fake".into());
    alice.temporary_password = true;
    alice.source = UserSource::Ldap;
    alice.external_id = Some("8d1f-entry-uuid".into());
    alice.login_name = Some("alice".into());
    s.create_users(std::slice::from_ref(&alice), &[created(&alice)])
        .await?;
    check_eq!(s.user(tenant.id, alice.id).await?, Some(alice.clone()));
    check_eq!(
        s.user_by_email(tenant.id, "alice@example.com").await?,
        Some(alice.clone())
    );
    check_eq!(s.count_users(tenant.id).await?, 1);

    let mut changed = alice.clone();
    changed.email = "alice.smith@example.com".into();
    changed.display_name = "Alice Smith".into();
    changed.password_hash = None;
    changed.temporary_password = false;
    changed.external_id = None;
    changed.login_name = None;
    changed.enabled = false;
    changed.updated_at = now() + time::Duration::seconds(5);
    s.update_user(&changed, &audit_of(&changed, AuditAction::UserUpdated))
        .await?;
    check_eq!(s.user(tenant.id, alice.id).await?, Some(changed.clone()));
    check_eq!(s.user_by_email(tenant.id, "alice@example.com").await?, None);

    s.delete_user(
        tenant.id,
        alice.id,
        &audit_of(&alice, AuditAction::UserDeleted),
    )
    .await?;
    check_eq!(s.user(tenant.id, alice.id).await?, None);
    let again = s
        .delete_user(
            tenant.id,
            alice.id,
            &audit_of(&alice, AuditAction::UserDeleted),
        )
        .await;
    anyhow::ensure!(
        matches!(again, Err(StoreError::NotFound)),
        "second delete: {again:?}"
    );
    let gone = s
        .update_user(&changed, &audit_of(&changed, AuditAction::UserUpdated))
        .await;
    anyhow::ensure!(
        matches!(gone, Err(StoreError::NotFound)),
        "update after delete: {gone:?}"
    );

    let about_alice = all_audit(
        s,
        Some(tenant.id),
        AuditQuery {
            user_id: Some(alice.id),
            ..Default::default()
        },
    )
    .await?;
    let acts = about_alice
        .iter()
        .map(|r| r.action.as_str())
        .collect::<Vec<_>>();
    check_eq!(acts, vec!["user.deleted", "user.updated", "user.created"]);
    Ok(())
}

pub async fn duplicate_email_writes_nothing(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let a = user(tenant.id, "a@example.com");
    s.create_users(std::slice::from_ref(&a), &[created(&a)])
        .await?;

    let imported = |n: usize| {
        entry(
            Some(tenant.id),
            AuditAction::UserImported,
            ("tenant", tenant.id.to_string()),
        )
        .details(serde_json::json!({ "count": n }))
    };
    // Clashes with a stored user.
    let batch = vec![
        user(tenant.id, "b@example.com"),
        user(tenant.id, "a@example.com"),
    ];
    let result = s.create_users(&batch, &[imported(2)]).await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("user_email"))),
        "got {result:?}"
    );
    // Clashes within the batch.
    let batch = vec![
        user(tenant.id, "c@example.com"),
        user(tenant.id, "d@example.com"),
        user(tenant.id, "c@example.com"),
    ];
    let result = s.create_users(&batch, &[imported(3)]).await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("user_email"))),
        "got {result:?}"
    );

    check_eq!(s.count_users(tenant.id).await?, 1);
    for email in ["b@example.com", "c@example.com", "d@example.com"] {
        check_eq!(s.user_by_email(tenant.id, email).await?, None);
    }
    let mut b = user(tenant.id, "b@example.com");
    s.create_users(std::slice::from_ref(&b), &[created(&b)])
        .await?;
    b.email = "a@example.com".into();
    let result = s
        .update_user(&b, &audit_of(&b, AuditAction::UserUpdated))
        .await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("user_email"))),
        "update: {result:?}"
    );
    check_eq!(
        s.user_by_email(tenant.id, "b@example.com")
            .await?
            .map(|u| u.id),
        Some(b.id)
    );
    check_eq!(
        actions(s, tenant.id).await?,
        vec!["tenant.created", "user.created", "user.created"]
    );
    Ok(())
}

pub async fn tenant_isolation(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let alice = user(a.id, "alice@example.com");
    s.create_users(std::slice::from_ref(&alice), &[created(&alice)])
        .await?;

    check_eq!(s.user(b.id, alice.id).await?, None);
    check_eq!(s.user_by_email(b.id, &alice.email).await?, None);
    let mut moved = alice.clone();
    moved.tenant_id = b.id;
    moved.display_name = "Hijacked".into();
    let result = s
        .update_user(&moved, &audit_of(&moved, AuditAction::UserUpdated))
        .await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::NotFound)),
        "update via B: {result:?}"
    );
    let result = s
        .delete_user(b.id, alice.id, &audit_of(&moved, AuditAction::UserDeleted))
        .await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::NotFound)),
        "delete via B: {result:?}"
    );
    check_eq!(s.users(b.id, &UserQuery::default()).await?.items.len(), 0);
    check_eq!(s.count_users(b.id).await?, 0);
    check_eq!(s.user(a.id, alice.id).await?, Some(alice.clone()));

    // The same address is a different user in another tenant.
    let other = user(b.id, "alice@example.com");
    s.create_users(std::slice::from_ref(&other), &[created(&other)])
        .await?;
    check_eq!(
        s.users(a.id, &UserQuery::default()).await?.items,
        vec![alice]
    );
    check_eq!(
        s.users(b.id, &UserQuery::default()).await?.items,
        vec![other]
    );
    check_eq!(
        actions(s, b.id).await?,
        vec!["tenant.created", "user.created"]
    );
    Ok(())
}
