//! API tokens and administrator accounts.

use crate::check_eq;
use crate::support::{Ctx, actions, all_audit, entry, hex, new_tenant, now};
use mdm_core::StoreError;
use mdm_core::audit::{AuditAction, AuditQuery};
use mdm_core::ids::{AdminId, TokenId};
use mdm_core::ports::AccessStore;
use mdm_core::tokens::{Admin, ApiToken, Scope};

fn token(scope: Scope, name: &str, age_secs: i64) -> ApiToken {
    ApiToken {
        id: TokenId::new(),
        scope,
        name: name.into(),
        token_hash: hex(64),
        created_at: now() - time::Duration::seconds(age_secs),
        expires_at: Some(now() + time::Duration::days(30)),
        revoked_at: None,
    }
}

fn token_audit(t: &ApiToken, action: AuditAction) -> mdm_core::audit::AuditEntry {
    entry(t.scope.tenant(), action, ("token", t.id.to_string()))
}

pub async fn tokens(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let older = token(Scope::Tenant(a.id), "ci", 60);
    let mut newer = token(Scope::Tenant(a.id), "backup", 0);
    newer.expires_at = None;
    let of_b = token(Scope::Tenant(b.id), "b", 0);
    let operator = token(Scope::Operator, &format!("op-{}", hex(6)), 0);
    for t in [&older, &newer, &of_b, &operator] {
        s.create_token(t, &token_audit(t, AuditAction::TokenCreated))
            .await?;
    }

    check_eq!(
        s.token_by_hash(&older.token_hash).await?,
        Some(older.clone())
    );
    check_eq!(
        s.token_by_hash(&operator.token_hash).await?,
        Some(operator.clone())
    );
    check_eq!(s.token_by_hash(&hex(64)).await?, None);
    check_eq!(
        s.tokens(Scope::Tenant(a.id)).await?,
        vec![newer.clone(), older.clone()]
    );
    check_eq!(s.tokens(Scope::Tenant(b.id)).await?, vec![of_b.clone()]);
    let operators = s.tokens(Scope::Operator).await?;
    anyhow::ensure!(operators.contains(&operator), "operator token listed");
    anyhow::ensure!(
        operators.iter().all(|t| t.scope == Scope::Operator),
        "only operator tokens"
    );

    let at = now();
    for wrong in [Scope::Tenant(b.id), Scope::Operator] {
        let result = s
            .revoke_token(
                wrong,
                older.id,
                at,
                &token_audit(&older, AuditAction::TokenRevoked),
            )
            .await;
        anyhow::ensure!(
            matches!(result, Err(StoreError::NotFound)),
            "revoke in {wrong:?}: {result:?}"
        );
    }
    let result = s
        .revoke_token(
            Scope::Tenant(a.id),
            TokenId::new(),
            at,
            &token_audit(&older, AuditAction::TokenRevoked),
        )
        .await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::NotFound)),
        "revoke unknown: {result:?}"
    );
    s.revoke_token(
        Scope::Tenant(a.id),
        older.id,
        at,
        &token_audit(&older, AuditAction::TokenRevoked),
    )
    .await?;
    let revoked = s
        .token_by_hash(&older.token_hash)
        .await?
        .map(|t| t.revoked_at);
    check_eq!(revoked, Some(Some(at)));
    s.revoke_token(
        Scope::Operator,
        operator.id,
        at,
        &token_audit(&operator, AuditAction::TokenRevoked),
    )
    .await?;
    check_eq!(
        s.token_by_hash(&newer.token_hash)
            .await?
            .and_then(|t| t.revoked_at),
        None
    );

    check_eq!(
        actions(s, a.id).await?,
        vec![
            "tenant.created",
            "token.created",
            "token.created",
            "token.revoked"
        ]
    );
    check_eq!(
        actions(s, b.id).await?,
        vec!["tenant.created", "token.created"]
    );
    let op_audit = all_audit(
        s,
        None,
        AuditQuery {
            action: Some("token.".into()),
            ..Default::default()
        },
    )
    .await?;
    let about = op_audit
        .iter()
        .filter(|r| r.subject_id == operator.id.to_string())
        .map(|r| r.action.as_str());
    check_eq!(
        about.collect::<Vec<_>>(),
        vec!["token.revoked", "token.created"]
    );
    Ok(())
}

fn admin(scope: Scope, email: &str) -> Admin {
    Admin {
        id: AdminId::new(),
        scope,
        email: email.into(),
        password_hash: "$argon2id$fake".into(),
        created_at: now(),
    }
}

fn admin_audit(a: &Admin) -> mdm_core::audit::AuditEntry {
    entry(
        a.scope.tenant(),
        AuditAction::AdminCreated,
        ("admin", a.id.to_string()),
    )
}

pub async fn admins(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    // The administrator count is server-wide: no other test may add one meanwhile.
    let _guard = ctx.jobs_lock.lock().await;
    let (a, b, c) = (
        new_tenant(s).await?,
        new_tenant(s).await?,
        new_tenant(s).await?,
    );
    let before = s.count_admins().await?;
    let email = format!("admin-{}@example.com", hex(8));
    let op = admin(Scope::Operator, &email);
    let in_a = admin(Scope::Tenant(a.id), &email);
    let in_b = admin(Scope::Tenant(b.id), &email);
    for x in [&op, &in_a, &in_b] {
        s.create_admin(x, &admin_audit(x)).await?;
    }
    for dup in [
        admin(Scope::Operator, &email),
        admin(Scope::Tenant(a.id), &email),
    ] {
        let result = s.create_admin(&dup, &admin_audit(&dup)).await;
        anyhow::ensure!(
            matches!(result, Err(StoreError::Conflict("admin_email"))),
            "{:?}: {result:?}",
            dup.scope
        );
        check_eq!(s.admin(dup.id).await?, None);
    }
    check_eq!(s.count_admins().await?, before + 3);
    check_eq!(s.admin(in_a.id).await?, Some(in_a.clone()));
    check_eq!(s.admin(AdminId::new()).await?, None);
    check_eq!(s.admin_by_email(Scope::Operator, &email).await?, Some(op));
    check_eq!(
        s.admin_by_email(Scope::Tenant(a.id), &email).await?,
        Some(in_a)
    );
    check_eq!(
        s.admin_by_email(Scope::Tenant(b.id), &email).await?,
        Some(in_b)
    );
    check_eq!(s.admin_by_email(Scope::Tenant(c.id), &email).await?, None);
    check_eq!(
        actions(s, a.id).await?,
        vec!["tenant.created", "admin.created"]
    );
    Ok(())
}
