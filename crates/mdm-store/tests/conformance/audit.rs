//! The audit trail: filters, paging, operator-level entries.

use crate::check_eq;
use crate::support::{Ctx, all_audit, entry, hex, new_tenant, now};
use mdm_core::audit::{AuditAction, AuditEntry, AuditQuery, AuditRecord};
use mdm_core::ids::UserId;
use mdm_core::ports::AuditStore;
use mdm_core::tokens::Actor;
use time::Duration;

const ACTIONS: [AuditAction; 4] = [
    AuditAction::UserCreated,
    AuditAction::UserUpdated,
    AuditAction::TokenCreated,
    AuditAction::EnrollmentUrlRegenerated,
];

fn ids(records: &[AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.id).collect()
}

pub async fn filters_and_paging(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let other = new_tenant(s).await?;
    let base = now() - Duration::hours(1);
    let (alice, device) = (UserId::new(), format!("dev-{}", hex(6)));
    let admin = Actor::Admin {
        id: mdm_core::AdminId::new(),
        scope: mdm_core::tokens::Scope::Tenant(tenant.id),
        email: "a@example.com".into(),
    };
    let mut written = Vec::new();
    for i in 0..30i64 {
        let actor = if i % 2 == 0 { &admin } else { &Actor::Cli };
        let action = ACTIONS[(i % 4) as usize];
        let mut e = AuditEntry::new(
            Some(tenant.id),
            base + Duration::seconds(i),
            actor,
            action,
            ("user", format!("s{i}")),
        );
        if i % 5 == 0 {
            e = e.user(alice);
        }
        if i % 7 == 0 {
            e.device_id = Some(device.clone());
        }
        e = e.details(serde_json::json!({ "i": i, "nested": { "ok": true } }));
        s.append_audit(&e).await?;
        written.push(e);
    }
    // The same user id and device in another tenant stay invisible.
    s.append_audit(
        &entry(
            Some(other.id),
            AuditAction::UserCreated,
            ("user", "x".into()),
        )
        .user(alice),
    )
    .await?;

    let all = all_audit(s, Some(tenant.id), AuditQuery::default()).await?;
    check_eq!(all.len(), 31);
    anyhow::ensure!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    let newest = &all[0];
    check_eq!(newest.tenant_id, Some(tenant.id));
    check_eq!(newest.at, written[29].at);
    check_eq!(newest.actor, "cli");
    check_eq!(newest.actor_label, "command line");
    check_eq!(newest.subject_type, "user");
    check_eq!(newest.subject_id, "s29");
    check_eq!(newest.details, written[29].details);
    check_eq!(all[30].action, "tenant.created");

    let count =
        |q: AuditQuery| async move { anyhow::Ok(all_audit(s, Some(tenant.id), q).await?.len()) };
    check_eq!(
        count(AuditQuery {
            actor: Some(admin.key()),
            ..Default::default()
        })
        .await?,
        15
    );
    check_eq!(
        count(AuditQuery {
            action: Some("user.created".into()),
            ..Default::default()
        })
        .await?,
        8
    );
    check_eq!(
        count(AuditQuery {
            action: Some("user.".into()),
            ..Default::default()
        })
        .await?,
        16
    );
    check_eq!(
        count(AuditQuery {
            action: Some("enrollment_url.".into()),
            ..Default::default()
        })
        .await?,
        7
    );
    check_eq!(
        count(AuditQuery {
            action: Some("user".into()),
            ..Default::default()
        })
        .await?,
        0
    );
    check_eq!(
        count(AuditQuery {
            action: Some("u%".into()),
            ..Default::default()
        })
        .await?,
        0
    );
    check_eq!(
        count(AuditQuery {
            user_id: Some(alice),
            ..Default::default()
        })
        .await?,
        6
    );
    check_eq!(
        count(AuditQuery {
            device_id: Some(device.clone()),
            ..Default::default()
        })
        .await?,
        5
    );
    let window = AuditQuery {
        from: Some(base + Duration::seconds(10)),
        to: Some(base + Duration::seconds(20)),
        ..Default::default()
    };
    let in_window = all_audit(s, Some(tenant.id), window).await?;
    check_eq!(
        in_window
            .iter()
            .map(|r| r.subject_id.clone())
            .collect::<Vec<_>>(),
        (10..20).rev().map(|i| format!("s{i}")).collect::<Vec<_>>()
    );
    let combined = AuditQuery {
        actor: Some("cli".into()),
        action: Some("user.".into()),
        user_id: Some(alice),
        ..Default::default()
    };
    check_eq!(count(combined).await?, 2);

    // Paging by `before`, in pages of 7.
    let mut paged = Vec::new();
    loop {
        let q = AuditQuery {
            limit: Some(7),
            before: paged.last().map(|r: &AuditRecord| r.id),
            ..Default::default()
        };
        let page = s.audit(Some(tenant.id), &q).await?;
        anyhow::ensure!(page.len() <= 7, "page too long");
        let done = page.len() < 7;
        paged.extend(page);
        if done {
            break;
        }
    }
    check_eq!(ids(&paged), ids(&all));
    check_eq!(
        s.audit(
            Some(tenant.id),
            &AuditQuery {
                limit: Some(0),
                ..Default::default()
            }
        )
        .await?
        .len(),
        1
    );
    check_eq!(
        s.audit(Some(tenant.id), &AuditQuery::default())
            .await?
            .len(),
        31
    );
    let before_oldest = AuditQuery {
        before: Some(all[30].id),
        ..Default::default()
    };
    check_eq!(s.audit(Some(tenant.id), &before_oldest).await?.len(), 0);
    Ok(())
}

pub async fn operator_entries(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let actor = format!("token:{}", uuid::Uuid::new_v4());
    let mut op = entry(None, AuditAction::TokenCreated, ("token", hex(8)));
    op.actor = actor.clone();
    s.append_audit(&op).await?;
    let mut scoped = entry(
        Some(tenant.id),
        AuditAction::TokenCreated,
        ("token", hex(8)),
    );
    scoped.actor = actor.clone();
    s.append_audit(&scoped).await?;

    let by_actor = AuditQuery {
        actor: Some(actor),
        ..Default::default()
    };
    let operator = s.audit(None, &by_actor).await?;
    check_eq!(operator.len(), 1);
    check_eq!(operator[0].tenant_id, None);
    check_eq!(operator[0].subject_id, op.subject_id);
    let scoped_records = s.audit(Some(tenant.id), &by_actor).await?;
    check_eq!(
        scoped_records
            .iter()
            .map(|r| r.subject_id.clone())
            .collect::<Vec<_>>(),
        vec![scoped.subject_id]
    );
    let everything = all_audit(s, None, AuditQuery::default()).await?;
    anyhow::ensure!(
        everything.iter().all(|r| r.tenant_id.is_none()),
        "audit(None) returns operator entries only"
    );
    Ok(())
}
