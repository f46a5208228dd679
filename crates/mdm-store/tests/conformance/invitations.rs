//! Invitations and their send jobs, PIN redemption (once, also under
//! concurrency), registration progress, mail templates, sign-in throttling,
//! browser sessions and one-time registration tokens.

use crate::check_eq;
use crate::support::{Ctx, actions, entry, hex, new_tenant, now, user};
use mdm_core::audit::{AuditAction, AuditEntry};
use mdm_core::ids::{InvitationId, JobId, TenantId};
use mdm_core::invites::{Delivery, DeliveryUpdate, Invitation, InvitationQuery, SEND_JOB};
use mdm_core::jobs::NewJob;
use mdm_core::mail_templates::MailTemplate;
use mdm_core::ports::{InviteStore, SignInStore, UserStore};
use mdm_core::registration::Stage;
use mdm_core::regtokens::{RegToken, Spend, TokenPurpose};
use mdm_core::users::User;
use mdm_core::websession::{SessionKind, WebSession};
use mdm_store::SqlStore;
use std::sync::Arc;
use time::Duration;

pub fn invitation(u: &User) -> Invitation {
    Invitation {
        id: InvitationId::new(),
        tenant_id: u.tenant_id,
        user_id: u.id,
        email: u.email.clone(),
        temporary_password: false,
        delivery: Delivery::Queued,
        attempts: 0,
        last_error: None,
        pin_hash: None,
        pin_expires_at: None,
        pin_used_at: None,
        revoked_at: None,
        created_at: now(),
        sent_at: None,
    }
}

fn send_job(inv: &Invitation) -> NewJob {
    NewJob {
        id: JobId::new(),
        tenant_id: Some(inv.tenant_id),
        kind: SEND_JOB.into(),
        payload: serde_json::json!({ "invitation": inv.id }),
        // Far in the future: the job tests elsewhere must not claim it.
        run_at: now() + Duration::days(3650),
        dedupe_key: Some(format!("{SEND_JOB}:{}", inv.id)),
        max_attempts: 8,
    }
}

fn inv_audit(inv: &Invitation) -> AuditEntry {
    entry(
        Some(inv.tenant_id),
        AuditAction::InvitationCreated,
        ("invitation", inv.id.to_string()),
    )
    .user(inv.user_id)
}

/// Stores users and one invitation (with its job) for each.
pub async fn invite(s: &SqlStore, users: &[User]) -> anyhow::Result<Vec<Invitation>> {
    let invs: Vec<_> = users.iter().map(invitation).collect();
    let jobs: Vec<_> = invs.iter().map(send_job).collect();
    let audit: Vec<_> = invs.iter().map(inv_audit).collect();
    s.create_invitations(&invs, &jobs, &audit).await?;
    Ok(invs)
}

async fn stored_users(s: &SqlStore, tenant: TenantId, n: usize) -> anyhow::Result<Vec<User>> {
    let users: Vec<_> = (0..n)
        .map(|i| user(tenant, &format!("inv{i:03}-{}@example.com", hex(6))))
        .collect();
    s.create_users(&users, &[]).await?;
    Ok(users)
}

/// Arms `inv` with `pin_hash`, valid for `valid`.
async fn arm(
    s: &SqlStore,
    inv: &Invitation,
    pin_hash: &str,
    valid: Duration,
) -> anyhow::Result<()> {
    s.arm_invitation(
        inv.tenant_id,
        inv.id,
        Some((pin_hash, now() + valid)),
        None,
        &[],
    )
    .await?;
    Ok(())
}

pub async fn round_trip_revocation_and_paging(ctx: Ctx) -> anyhow::Result<()> {
    let s = &ctx.store;
    let tenant = new_tenant(s).await?;
    let users = stored_users(s, tenant.id, 5).await?;
    let first = invite(s, &users).await?;
    let again = invite(s, &users[..1]).await?;
    let old = s
        .invitation(tenant.id, first[0].id)
        .await?
        .ok_or(anyhow::anyhow!("gone"))?;
    anyhow::ensure!(
        old.revoked_at.is_some(),
        "a newer invitation revokes the older"
    );
    let new = s
        .invitation(tenant.id, again[0].id)
        .await?
        .ok_or(anyhow::anyhow!("gone"))?;
    check_eq!(new, again[0]);

    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = s
            .invitations(
                tenant.id,
                &InvitationQuery {
                    limit: Some(2),
                    after: after.clone(),
                    ..Default::default()
                },
            )
            .await?;
        seen.extend(page.items.iter().map(|i| i.id));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    check_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    check_eq!(seen, sorted);

    let update = DeliveryUpdate {
        delivery: Delivery::Queued,
        attempts: 1,
        error: Some("421 try later".into()),
        at: now(),
    };
    s.record_delivery(tenant.id, new.id, &update, &[]).await?;
    let sent = DeliveryUpdate {
        delivery: Delivery::Sent,
        attempts: 2,
        error: None,
        at: now(),
    };
    s.record_delivery(
        tenant.id,
        new.id,
        &sent,
        &[entry(
            Some(tenant.id),
            AuditAction::InvitationSent,
            ("invitation", new.id.to_string()),
        )],
    )
    .await?;
    let got = s
        .invitation(tenant.id, new.id)
        .await?
        .ok_or(anyhow::anyhow!("gone"))?;
    check_eq!(
        (got.delivery, got.attempts, got.last_error, got.sent_at),
        (Delivery::Sent, 2, None, Some(sent.at))
    );
    let sent_only = s
        .invitations(
            tenant.id,
            &InvitationQuery {
                delivery: Some(Delivery::Sent),
                ..Default::default()
            },
        )
        .await?;
    check_eq!(sent_only.items.len(), 1);

    // Progress and "not registered yet".
    let p = s
        .progress(tenant.id, users[0].id)
        .await?
        .unwrap_or_default();
    anyhow::ensure!(
        p.invited_at.is_some() && p.profile_downloaded_at.is_none(),
        "{p:?}"
    );
    check_eq!(s.not_registered_users(tenant.id).await?.len(), 5);
    s.record_stage(tenant.id, users[1].id, Stage::ProfileDownloaded, now(), &[])
        .await?;
    let first_time = s
        .progress(tenant.id, users[1].id)
        .await?
        .unwrap_or_default()
        .profile_downloaded_at;
    s.record_stage(
        tenant.id,
        users[1].id,
        Stage::ProfileDownloaded,
        now() + Duration::seconds(5),
        &[],
    )
    .await?;
    check_eq!(
        s.progress(tenant.id, users[1].id)
            .await?
            .unwrap_or_default()
            .profile_downloaded_at,
        first_time
    );
    check_eq!(s.not_registered_users(tenant.id).await?.len(), 4);

    // Tenant isolation.
    let other = new_tenant(s).await?;
    check_eq!(s.invitation(other.id, new.id).await?, None);
    check_eq!(
        s.invitations(other.id, &InvitationQuery::default())
            .await?
            .items
            .len(),
        0
    );
    let acts = actions(s, tenant.id).await?;
    check_eq!(
        acts.iter().filter(|a| *a == "invitation.created").count(),
        6
    );
    Ok(())
}

pub async fn pin_outcomes(ctx: Ctx) -> anyhow::Result<()> {
    let s = &ctx.store;
    let tenant = new_tenant(s).await?;
    let users = stored_users(s, tenant.id, 2).await?;
    let invs = invite(s, &users).await?;
    let audit = |u: &User| {
        entry(
            Some(tenant.id),
            AuditAction::PinRedeemed,
            ("user", u.id.to_string()),
        )
        .user(u.id)
    };
    arm(s, &invs[0], "hash-a", Duration::hours(1)).await?;
    arm(s, &invs[1], "hash-b", Duration::seconds(-1)).await?;
    check_eq!(
        s.redeem_pin(tenant.id, users[0].id, "wrong", now(), &audit(&users[0]))
            .await?,
        Spend::Unknown
    );
    check_eq!(
        s.redeem_pin(tenant.id, users[1].id, "hash-a", now(), &audit(&users[1]))
            .await?,
        Spend::Unknown
    );
    check_eq!(
        s.redeem_pin(tenant.id, users[0].id, "hash-a", now(), &audit(&users[0]))
            .await?,
        Spend::Spent(())
    );
    check_eq!(
        s.redeem_pin(tenant.id, users[0].id, "hash-a", now(), &audit(&users[0]))
            .await?,
        Spend::Used(())
    );
    check_eq!(
        s.redeem_pin(tenant.id, users[1].id, "hash-b", now(), &audit(&users[1]))
            .await?,
        Spend::Expired(())
    );
    // A resend revokes the old PIN.
    let newer = invite(s, &users[1..]).await?;
    arm(s, &newer[0], "hash-c", Duration::hours(1)).await?;
    check_eq!(
        s.redeem_pin(tenant.id, users[1].id, "hash-b", now(), &audit(&users[1]))
            .await?,
        Spend::Unknown
    );
    let p = s
        .progress(tenant.id, users[0].id)
        .await?
        .unwrap_or_default();
    anyhow::ensure!(p.pin_used_at.is_some(), "{p:?}");
    check_eq!(
        actions(s, tenant.id)
            .await?
            .iter()
            .filter(|a| *a == "pin.redeemed")
            .count(),
        1
    );
    Ok(())
}

pub async fn concurrent_pin_redeems_one_wins(ctx: Ctx) -> anyhow::Result<()> {
    const N: usize = 20;
    let s = ctx.store.clone();
    let tenant = new_tenant(&s).await?;
    let users = stored_users(&s, tenant.id, 1).await?;
    let inv = invite(&s, &users).await?.remove(0);
    arm(&s, &inv, "the-hash", Duration::hours(1)).await?;
    let start = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..N {
        let (s, start, u) = (s.clone(), start.clone(), users[0].clone());
        tasks.spawn(async move {
            start.wait().await;
            let a = entry(
                Some(u.tenant_id),
                AuditAction::PinRedeemed,
                ("user", u.id.to_string()),
            );
            anyhow::Ok(
                s.redeem_pin(u.tenant_id, u.id, "the-hash", now(), &a)
                    .await?,
            )
        });
    }
    let mut outcomes = Vec::new();
    while let Some(j) = tasks.join_next().await {
        outcomes.push(j??);
    }
    check_eq!(
        outcomes.iter().filter(|o| **o == Spend::Spent(())).count(),
        1
    );
    check_eq!(
        outcomes.iter().filter(|o| **o == Spend::Used(())).count(),
        N - 1
    );
    check_eq!(
        actions(&s, tenant.id)
            .await?
            .iter()
            .filter(|a| *a == "pin.redeemed")
            .count(),
        1
    );
    Ok(())
}

pub async fn mail_templates(ctx: Ctx) -> anyhow::Result<()> {
    let s = &ctx.store;
    let tenant = new_tenant(s).await?;
    let a = entry(
        Some(tenant.id),
        AuditAction::MailTemplateUpdated,
        ("mail_template", "invitation".into()),
    );
    check_eq!(s.mail_template(tenant.id, "invitation").await?, None);
    let t = MailTemplate {
        subject: "Hi ünïcode".into(),
        text: "t {{ registration_url }}".into(),
        html: "<p>h</p>".into(),
    };
    s.put_mail_template(tenant.id, "invitation", Some(&t), now(), &a)
        .await?;
    check_eq!(
        s.mail_template(tenant.id, "invitation").await?,
        Some(t.clone())
    );
    let other = new_tenant(s).await?;
    check_eq!(s.mail_template(other.id, "invitation").await?, None);
    s.put_mail_template(tenant.id, "invitation", None, now(), &a)
        .await?;
    check_eq!(s.mail_template(tenant.id, "invitation").await?, None);
    Ok(())
}

fn session(u: &User, valid: Duration) -> WebSession {
    WebSession {
        id_hash: hex(64),
        tenant_id: u.tenant_id,
        user_id: u.id,
        kind: SessionKind::Registration,
        csrf: hex(32),
        must_set_password: true,
        created_at: now(),
        expires_at: now() + valid,
    }
}

pub async fn throttling_and_sessions(ctx: Ctx) -> anyhow::Result<()> {
    let s = &ctx.store;
    let tenant = new_tenant(s).await?;
    let u = stored_users(s, tenant.id, 1).await?.remove(0);
    let (key, addr) = (format!("email:{}", hex(16)), format!("addr:{}", hex(8)));
    let since = now() - Duration::minutes(15);
    for _ in 0..3 {
        s.record_failed_attempt(tenant.id, &[key.clone(), addr.clone()], now(), &[])
            .await?;
    }
    s.record_failed_attempt(
        tenant.id,
        std::slice::from_ref(&key),
        now() - Duration::hours(1),
        &[],
    )
    .await?;
    check_eq!(s.failed_attempts(tenant.id, &key, since).await?, 3);
    check_eq!(s.failed_attempts(tenant.id, &addr, since).await?, 3);
    let other = new_tenant(s).await?;
    check_eq!(s.failed_attempts(other.id, &key, since).await?, 0);

    let sess = session(&u, Duration::minutes(30));
    let a = entry(
        Some(tenant.id),
        AuditAction::SignInSucceeded,
        ("user", u.id.to_string()),
    )
    .user(u.id);
    s.record_sign_in(tenant.id, u.id, &key, Some(&sess), now(), &a)
        .await?;
    check_eq!(s.failed_attempts(tenant.id, &key, since).await?, 0);
    check_eq!(s.failed_attempts(tenant.id, &addr, since).await?, 3);
    check_eq!(
        s.web_session(tenant.id, &sess.id_hash).await?,
        Some(sess.clone())
    );
    check_eq!(s.web_session(other.id, &sess.id_hash).await?, None);
    let pw = entry(
        Some(tenant.id),
        AuditAction::PasswordSet,
        ("user", u.id.to_string()),
    );
    s.set_own_password(tenant.id, u.id, "$argon2id$new", &sess.id_hash, now(), &pw)
        .await?;
    let got = s
        .web_session(tenant.id, &sess.id_hash)
        .await?
        .ok_or(anyhow::anyhow!("gone"))?;
    anyhow::ensure!(!got.must_set_password, "flag cleared");
    let stored = s
        .user(tenant.id, u.id)
        .await?
        .ok_or(anyhow::anyhow!("gone"))?;
    check_eq!(
        (stored.password_hash.as_deref(), stored.temporary_password),
        (Some("$argon2id$new"), false)
    );
    s.delete_web_session(tenant.id, &sess.id_hash).await?;
    check_eq!(s.web_session(tenant.id, &sess.id_hash).await?, None);
    anyhow::ensure!(
        s.progress(tenant.id, u.id)
            .await?
            .unwrap_or_default()
            .signed_in_at
            .is_some(),
        "stage"
    );
    Ok(())
}

pub async fn registration_tokens(ctx: Ctx) -> anyhow::Result<()> {
    let s = &ctx.store;
    let tenant = new_tenant(s).await?;
    let u = stored_users(s, tenant.id, 1).await?.remove(0);
    let token = |valid: Duration, purpose| RegToken {
        token_hash: hex(64),
        tenant_id: tenant.id,
        user_id: u.id,
        purpose,
        platform: Some("ios".into()),
        created_at: now(),
        expires_at: now() + valid,
        used_at: None,
    };
    let qr = token(Duration::minutes(5), TokenPurpose::QrRegistration);
    let old = token(Duration::seconds(-1), TokenPurpose::QrRegistration);
    s.create_reg_token(&qr, &[]).await?;
    s.create_reg_token(&old, &[]).await?;
    let t = now();
    check_eq!(
        s.redeem_reg_token(tenant.id, &qr.token_hash, TokenPurpose::ProfileDownload, t)
            .await?,
        Spend::Unknown
    );
    let spent = RegToken {
        used_at: Some(t),
        ..qr.clone()
    };
    check_eq!(
        s.redeem_reg_token(tenant.id, &qr.token_hash, TokenPurpose::QrRegistration, t)
            .await?,
        Spend::Spent(spent.clone())
    );
    check_eq!(
        s.redeem_reg_token(tenant.id, &qr.token_hash, TokenPurpose::QrRegistration, t)
            .await?,
        Spend::Used(spent)
    );
    check_eq!(
        s.redeem_reg_token(tenant.id, &old.token_hash, TokenPurpose::QrRegistration, t)
            .await?,
        Spend::Expired(old.clone())
    );
    let other = new_tenant(s).await?;
    check_eq!(
        s.redeem_reg_token(other.id, &old.token_hash, TokenPurpose::QrRegistration, t)
            .await?,
        Spend::Unknown
    );
    Ok(())
}

/// Rows in every table of this module, for `convert-db`.
pub async fn populate(s: &SqlStore, tenant: TenantId) -> anyhow::Result<()> {
    let users = stored_users(s, tenant, 3).await?;
    let invs = invite(s, &users).await?;
    arm(s, &invs[0], "pin-hash", Duration::hours(1)).await?;
    let sess = session(&users[0], Duration::minutes(30));
    let a = entry(
        Some(tenant),
        AuditAction::SignInSucceeded,
        ("user", users[0].id.to_string()),
    );
    s.record_failed_attempt(tenant, &["addr:127.0.0.1".into()], now(), &[])
        .await?;
    s.record_sign_in(tenant, users[0].id, "email:x", Some(&sess), now(), &a)
        .await?;
    let t = MailTemplate {
        subject: "s".into(),
        text: "t".into(),
        html: "h".into(),
    };
    let a = entry(
        Some(tenant),
        AuditAction::MailTemplateUpdated,
        ("mail_template", "invitation".into()),
    );
    s.put_mail_template(tenant, "invitation", Some(&t), now(), &a)
        .await?;
    let tok = RegToken {
        token_hash: hex(64),
        tenant_id: tenant,
        user_id: users[1].id,
        purpose: TokenPurpose::ProfileDownload,
        platform: None,
        created_at: now(),
        expires_at: now() + Duration::minutes(5),
        used_at: None,
    };
    s.create_reg_token(&tok, &[]).await?;
    Ok(())
}
