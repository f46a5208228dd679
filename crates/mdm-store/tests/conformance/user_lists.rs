//! Listing users: filters, keyset paging, and a tenant of 100,000 users.

use crate::check_eq;
use crate::support::{Ctx, entry, new_tenant, user};
use mdm_core::audit::AuditAction;
use mdm_core::ids::TenantId;
use mdm_core::ports::UserStore;
use mdm_core::users::{User, UserQuery, UserSource};
use mdm_store::SqlStore;
use std::time::{Duration, Instant};

/// 250 users: `user000@…` to `user249@…`; every 10th is "Special Agent",
/// every 3rd from LDAP, every 4th disabled.
fn population(tenant: TenantId) -> Vec<User> {
    (0..250)
        .map(|i| {
            let mut u = user(tenant, &format!("user{i:03}@example.com"));
            u.display_name = if i % 10 == 0 {
                format!("Special Agent {i}")
            } else {
                format!("Person {i}")
            };
            u.source = if i % 3 == 0 {
                UserSource::Ldap
            } else {
                UserSource::Local
            };
            u.enabled = i % 4 != 0;
            u
        })
        .collect()
}

/// Every email matching `query`, following `next` cursors; also the page count.
async fn walk(
    s: &SqlStore,
    tenant: TenantId,
    query: UserQuery,
) -> anyhow::Result<(Vec<String>, usize)> {
    let (mut emails, mut pages, mut after) = (Vec::new(), 0, None);
    loop {
        let page = s
            .users(
                tenant,
                &UserQuery {
                    after: after.clone(),
                    ..query.clone()
                },
            )
            .await?;
        pages += 1;
        anyhow::ensure!(
            page.items.len() <= query.limit.unwrap_or(100) as usize,
            "page too long"
        );
        emails.extend(page.items.iter().map(|u| u.email.clone()));
        match page.next {
            Some(next) => {
                check_eq!(Some(&next), emails.last());
                after = Some(next);
            }
            None => return Ok((emails, pages)),
        }
        anyhow::ensure!(pages < 1000, "paging does not end");
    }
}

pub async fn filters_and_paging(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let users = population(tenant.id);
    let audit = entry(
        Some(tenant.id),
        AuditAction::UserImported,
        ("tenant", tenant.id.to_string()),
    );
    s.create_users(&users, &[audit]).await?;
    // A neighbour whose users must never show up.
    let neighbour = new_tenant(s).await?;
    s.create_users(&population(neighbour.id), &[]).await?;

    check_eq!(s.count_users(tenant.id).await?, 250);
    let expect = |f: &dyn Fn(usize) -> bool| {
        (0..250)
            .filter(|i| f(*i))
            .map(|i| format!("user{i:03}@example.com"))
            .collect::<Vec<_>>()
    };
    let q = |limit: u32| UserQuery {
        limit: Some(limit),
        ..Default::default()
    };

    let (emails, pages) = walk(s, tenant.id, q(40)).await?;
    check_eq!(emails, expect(&|_| true));
    check_eq!(pages, 7);
    let (emails, pages) = walk(s, tenant.id, q(50)).await?;
    check_eq!(emails.len(), 250);
    check_eq!(pages, 5);
    let first = s.users(tenant.id, &q(1)).await?;
    check_eq!(first.items[0], users[0]);

    let search = |text: &str| UserQuery {
        q: Some(text.into()),
        limit: Some(7),
        ..Default::default()
    };
    check_eq!(
        walk(s, tenant.id, search("sPECIAL agent")).await?.0,
        expect(&|i| i % 10 == 0)
    );
    check_eq!(
        walk(s, tenant.id, search("USER01")).await?.0,
        expect(&|i| (10..20).contains(&i))
    );
    check_eq!(
        walk(s, tenant.id, search("user_1")).await?.0,
        Vec::<String>::new()
    );
    check_eq!(
        walk(s, tenant.id, search("%")).await?.0,
        Vec::<String>::new()
    );

    let ldap = UserQuery {
        source: Some(UserSource::Ldap),
        limit: Some(10),
        ..Default::default()
    };
    check_eq!(
        walk(s, tenant.id, ldap.clone()).await?.0,
        expect(&|i| i % 3 == 0)
    );
    let local = UserQuery {
        source: Some(UserSource::Local),
        ..Default::default()
    };
    check_eq!(walk(s, tenant.id, local).await?.0, expect(&|i| i % 3 != 0));
    let disabled = UserQuery {
        enabled: Some(false),
        limit: Some(9),
        ..Default::default()
    };
    check_eq!(
        walk(s, tenant.id, disabled).await?.0,
        expect(&|i| i % 4 == 0)
    );
    let both = UserQuery {
        enabled: Some(false),
        ..ldap
    };
    check_eq!(walk(s, tenant.id, both).await?.0, expect(&|i| i % 12 == 0));
    let mixed = UserQuery {
        q: Some("agent".into()),
        enabled: Some(true),
        limit: Some(3),
        ..Default::default()
    };
    check_eq!(
        walk(s, tenant.id, mixed).await?.0,
        expect(&|i| i % 10 == 0 && i % 4 != 0)
    );

    check_eq!(s.users(tenant.id, &q(0)).await?.items.len(), 1);
    let all = s.users(tenant.id, &q(5000)).await?;
    check_eq!((all.items.len(), all.next), (250, None));
    let after = UserQuery {
        after: Some("user244@example.com".into()),
        ..Default::default()
    };
    check_eq!(s.users(tenant.id, &after).await?.items.len(), 5);
    Ok(())
}

/// Runs on its own database: one 100,000-row import holds SQLite's write
/// lock for seconds (in a debug build), longer than other tests' writers
/// wait (`busy_timeout`).
pub async fn large_tenant_stays_fast(ctx: Ctx) -> anyhow::Result<()> {
    const N: usize = 100_000;
    let store = ctx.fresh_store(true).await?;
    let s = &store;
    let tenant = new_tenant(s).await?;
    let users = (0..N)
        .map(|i| {
            let mut u = user(tenant.id, &format!("u{i:06}@example.com"));
            u.enabled = i % 2 == 0;
            u
        })
        .collect::<Vec<_>>();
    let audit = entry(
        Some(tenant.id),
        AuditAction::UserImported,
        ("tenant", tenant.id.to_string()),
    );
    s.create_users(&users, &[audit]).await?;
    check_eq!(s.count_users(tenant.id).await?, N as i64);

    // Generous bounds: these catch a missing index (a sort or scan per page
    // repeated), not small slowdowns on a busy machine.
    let timed = |query: UserQuery| async move {
        let started = Instant::now();
        let page = s.users(tenant.id, &query).await?;
        anyhow::Ok((page, started.elapsed()))
    };
    let mut worst = Duration::ZERO;
    for query in [
        UserQuery::default(),
        UserQuery {
            after: Some("u050000@example.com".into()),
            ..Default::default()
        },
        UserQuery {
            after: Some("u099950@example.com".into()),
            enabled: Some(true),
            ..Default::default()
        },
        UserQuery {
            q: Some("u07777".into()),
            ..Default::default()
        },
    ] {
        let (page, took) = timed(query).await?;
        anyhow::ensure!(!page.items.is_empty(), "empty page");
        worst = worst.max(took);
    }
    let (page, _) = timed(UserQuery {
        after: Some("u050000@example.com".into()),
        limit: Some(3),
        ..Default::default()
    })
    .await?;
    check_eq!(
        page.items
            .iter()
            .map(|u| u.email.as_str())
            .collect::<Vec<_>>(),
        vec![
            "u050001@example.com",
            "u050002@example.com",
            "u050003@example.com"
        ]
    );
    anyhow::ensure!(
        worst < Duration::from_secs(2),
        "a page of a 100,000-user tenant took {worst:?}"
    );
    check_eq!(
        s.user_by_email(tenant.id, "u099999@example.com")
            .await?
            .map(|u| u.id),
        Some(users[N - 1].id)
    );
    store.close().await;
    Ok(())
}
