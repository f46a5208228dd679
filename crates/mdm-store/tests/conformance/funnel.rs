//! The funnel across registrations (ADR 0011): invitation, PIN and sign-in
//! stages attach to the user's open registration, a profile continues it,
//! the client app's push address survives a profile save; the funnel rows
//! and the stalled list; reminders claimed once under concurrency, counted,
//! given up at the cap, and stopped by completion or a newer attempt.

use crate::check_eq;
use crate::devices::{reg_audit, registration};
use crate::invitations::invitation;
use crate::support::{Ctx, actions, entry, hex, new_tenant, now, user};
use mdm_core::audit::AuditAction;
use mdm_core::funnel::{FunnelStage, StalledFilter};
use mdm_core::ids::{JobId, TenantId};
use mdm_core::jobs::NewJob;
use mdm_core::ports::{
    FunnelStore, InviteStore, JobStore, RegistrationStore, SignInStore, TenantStore, UserStore,
};
use mdm_core::registration::Stage;
use mdm_core::registrations::{DevicePlatform, RegistrationQuery, RegistrationStatus};
use mdm_core::reminders::{AppPushProvider, AppPushToken, DueReminder, ReminderStep, decide};
use mdm_core::websession::{SessionKind, WebSession};
use mdm_store::SqlStore;
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

fn session(tenant: TenantId, user: mdm_core::ids::UserId, kind: SessionKind) -> WebSession {
    WebSession {
        id_hash: hex(64),
        tenant_id: tenant,
        user_id: user,
        kind,
        csrf: hex(32),
        must_set_password: false,
        created_at: now(),
        expires_at: now() + Duration::minutes(30),
    }
}

/// A decision that queues far-future jobs (other tests claim due jobs).
fn far_decide(at: OffsetDateTime) -> impl Fn(&DueReminder) -> ReminderStep + Send + Sync {
    move |d: &DueReminder| match decide(d, at) {
        ReminderStep::Remind(mut job) => {
            job.run_at = at + Duration::days(3650);
            ReminderStep::Remind(job)
        }
        other => other,
    }
}

pub async fn stages_attach_to_one_registration(ctx: Ctx) -> anyhow::Result<()> {
    let s = &ctx.store;
    let tenant = new_tenant(s).await?;
    let (a, b) = (
        user(tenant.id, "ann@example.com"),
        user(tenant.id, "bob@example.com"),
    );
    s.create_users(&[a.clone(), b.clone()], &[]).await?;
    let inv = invitation(&a);
    s.create_invitations(std::slice::from_ref(&inv), &[], &[])
        .await?;
    let opened = s.open_registration(tenant.id, a.id).await?.expect("opened");
    check_eq!(opened.platform, None);
    check_eq!(opened.status, RegistrationStatus::Pending);
    check_eq!(opened.invited_at, Some(inv.created_at));
    // A resend, a sign-in on /go and the app attach to the same registration.
    s.create_invitations(&[invitation(&a)], &[], &[]).await?;
    let a_in = entry(
        Some(tenant.id),
        AuditAction::SignInSucceeded,
        ("user", a.id.to_string()),
    );
    let sess = session(tenant.id, a.id, SessionKind::Registration);
    s.record_sign_in(tenant.id, a.id, "email:a", Some(&sess), now(), &a_in)
        .await?;
    let push = AppPushToken {
        provider: AppPushProvider::Fcm,
        token: format!("fcm-{}", hex(40)),
        topic: None,
    };
    s.record_app_push(tenant.id, a.id, DevicePlatform::Android, Some(&push), now())
        .await?;
    let q = RegistrationQuery {
        user_id: Some(a.id),
        ..RegistrationQuery::default()
    };
    let regs = s.registrations(tenant.id, &q).await?.items;
    check_eq!(regs.len(), 1);
    let reg = &regs[0];
    check_eq!(reg.id, opened.id);
    check_eq!(reg.invited_at, Some(inv.created_at));
    check_eq!(reg.signed_in_at.is_some(), true);
    check_eq!(reg.platform, Some(DevicePlatform::Android));
    // Saving the registration (a profile attaching) keeps the push address.
    let mut saved = reg.clone();
    saved.status = RegistrationStatus::ProfileDownloaded;
    saved.profile_downloaded_at = Some(now());
    s.save_registration(&saved, &reg_audit(&saved)).await?;
    let target = s
        .reminder_target(tenant.id, &reg.id)
        .await?
        .expect("remindable");
    check_eq!(target.push, Some(push.clone()));
    check_eq!(
        target.registration.status,
        RegistrationStatus::ProfileDownloaded
    );
    // The app signs in again without a token: the stored one is kept.
    s.record_app_push(tenant.id, a.id, DevicePlatform::Android, None, now())
        .await?;
    let target = s
        .reminder_target(tenant.id, &reg.id)
        .await?
        .expect("remindable");
    check_eq!(target.push, Some(push));
    s.forget_app_push(tenant.id, &reg.id).await?;
    check_eq!(
        s.reminder_target(tenant.id, &reg.id)
            .await?
            .expect("still")
            .push,
        None
    );
    // A portal sign-in opens nothing; a client-app sign-in (no session) does.
    let b_in = entry(
        Some(tenant.id),
        AuditAction::SignInSucceeded,
        ("user", b.id.to_string()),
    );
    let portal = session(tenant.id, b.id, SessionKind::Portal);
    s.record_sign_in(tenant.id, b.id, "email:b", Some(&portal), now(), &b_in)
        .await?;
    check_eq!(s.open_registration(tenant.id, b.id).await?, None);
    s.record_sign_in(tenant.id, b.id, "email:b", None, now(), &b_in)
        .await?;
    let b_reg = s
        .open_registration(tenant.id, b.id)
        .await?
        .expect("app sign-in opens");
    check_eq!(b_reg.invited_at, None);
    check_eq!(b_reg.signed_in_at.is_some(), true);
    // A bulk invitation stamps the open ones and opens one for each other user.
    let (c, d) = (
        user(tenant.id, "cat@example.com"),
        user(tenant.id, "dot@example.com"),
    );
    s.create_users(&[c.clone(), d.clone()], &[]).await?;
    let bulk: Vec<_> = [&a, &b, &c, &d]
        .iter()
        .map(|u| {
            let mut i = invitation(u);
            i.created_at = inv.created_at + Duration::seconds(5);
            i
        })
        .collect();
    s.create_invitations(&bulk, &[], &[]).await?;
    let b_after = s.open_registration(tenant.id, b.id).await?.expect("kept");
    check_eq!(b_after.id, b_reg.id);
    check_eq!(b_after.invited_at, Some(bulk[1].created_at));
    check_eq!(
        s.open_registration(tenant.id, a.id)
            .await?
            .map(|r| r.invited_at),
        Some(Some(inv.created_at))
    );
    for u in [&c, &d] {
        let q = RegistrationQuery {
            user_id: Some(u.id),
            ..RegistrationQuery::default()
        };
        let regs = s.registrations(tenant.id, &q).await?.items;
        check_eq!(regs.len(), 1);
        check_eq!(regs[0].invited_at, Some(bulk[0].created_at));
    }
    // Another tenant sees none of it.
    let other = new_tenant(s).await?;
    check_eq!(s.open_registration(other.id, a.id).await?, None);
    check_eq!(s.reminder_target(other.id, &reg.id).await?, None);
    Ok(())
}

pub async fn funnel_rows_and_stalled(ctx: Ctx) -> anyhow::Result<()> {
    let s = &ctx.store;
    let tenant = new_tenant(s).await?;
    let u = user(tenant.id, "cy@example.com");
    let v = user(tenant.id, "di@example.com");
    s.create_users(&[u.clone(), v.clone()], &[]).await?;
    let old = now() - Duration::days(3);
    // u: an old attempt expired with a downloaded profile, then a new one.
    let mut expired = registration(tenant.id, DevicePlatform::Ios);
    expired.user_id = Some(u.id);
    expired.created_at = old;
    expired.profile_downloaded_at = Some(old);
    expired.status = RegistrationStatus::Expired;
    let mut newer = registration(tenant.id, DevicePlatform::Ios);
    newer.user_id = Some(u.id);
    newer.created_at = old + Duration::hours(1);
    newer.signed_in_at = Some(old + Duration::hours(1));
    // v: expired, nothing newer; and an active one.
    let mut v_expired = expired.clone();
    v_expired.id = format!("reg-{}", hex(24));
    v_expired.user_id = Some(v.id);
    v_expired.platform = Some(DevicePlatform::Macos);
    let mut active = registration(tenant.id, DevicePlatform::Android);
    active.created_at = old;
    active.certificate_issued_at = Some(old);
    active.active_at = Some(old);
    active.status = RegistrationStatus::Active;
    for r in [&expired, &newer, &v_expired, &active] {
        s.save_registration(r, &reg_audit(r)).await?;
    }
    let rows = s
        .funnel_registrations(tenant.id, old - Duration::hours(1), now(), None)
        .await?;
    check_eq!(rows.len(), 4);
    let ios = s
        .funnel_registrations(
            tenant.id,
            old - Duration::hours(1),
            now(),
            Some(DevicePlatform::Ios),
        )
        .await?;
    check_eq!(ios.len(), 2);
    let none = s
        .funnel_registrations(tenant.id, now() - Duration::hours(1), now(), None)
        .await?;
    check_eq!(none.len(), 0);
    let filter = |stage, before| StalledFilter {
        tenant_id: tenant.id,
        stage,
        before,
        platform: None,
        limit: None,
        after: None,
    };
    let stalled = s
        .stalled_registrations(&filter(None, now() - Duration::days(1)))
        .await?;
    let ids: Vec<_> = stalled
        .items
        .iter()
        .map(|x| x.registration_id.clone())
        .collect();
    // Newest first; u's expired attempt is superseded, the active one is done.
    check_eq!(ids, vec![newer.id.clone(), v_expired.id.clone()]);
    check_eq!(stalled.items[0].stage, FunnelStage::SignedIn);
    check_eq!(stalled.items[0].email.as_deref(), Some("cy@example.com"));
    check_eq!(stalled.items[1].stage, FunnelStage::ProfileDownloaded);
    check_eq!(stalled.items[1].since, old);
    let at_profile = s
        .stalled_registrations(&filter(Some(FunnelStage::ProfileDownloaded), now()))
        .await?;
    check_eq!(at_profile.items.len(), 1);
    let recent = s
        .stalled_registrations(&filter(None, old - Duration::hours(1)))
        .await?;
    check_eq!(recent.items.len(), 0);
    let mut paged = filter(None, now());
    paged.limit = Some(1);
    let first = s.stalled_registrations(&paged).await?;
    paged.after = first.next.clone();
    let second = s.stalled_registrations(&paged).await?;
    check_eq!(second.items[0].registration_id, v_expired.id);
    check_eq!(second.next, None);
    Ok(())
}

async fn remind_settings(s: &SqlStore, tenant: TenantId, max: i64) -> anyhow::Result<()> {
    let mut settings = s.settings(tenant).await?;
    settings.reminder_interval_secs = 10;
    settings.reminder_max = max;
    let a = entry(
        Some(tenant),
        AuditAction::SettingsUpdated,
        ("settings", tenant.to_string()),
    );
    s.update_settings(tenant, &settings, &a).await?;
    Ok(())
}

pub async fn reminders_claimed_once_and_given_up(ctx: Ctx) -> anyhow::Result<()> {
    let s = ctx.store.clone();
    let tenant = new_tenant(&s).await?;
    remind_settings(&s, tenant.id, 2).await?;
    let u = user(tenant.id, "eve@example.com");
    let w = user(tenant.id, "fay@example.com");
    s.create_users(&[u.clone(), w.clone()], &[]).await?;
    let hour_ago = now() - Duration::hours(1);
    let mut reg = registration(tenant.id, DevicePlatform::Ios);
    reg.user_id = Some(u.id);
    reg.created_at = hour_ago;
    reg.updated_at = hour_ago;
    reg.profile_downloaded_at = Some(hour_ago);
    reg.status = RegistrationStatus::ProfileDownloaded;
    let mut done = reg.clone();
    done.id = format!("reg-{}", hex(24));
    done.user_id = Some(w.id);
    done.certificate_issued_at = Some(hour_ago);
    done.status = RegistrationStatus::CertificateIssued;
    for r in [&reg, &done] {
        s.save_registration(r, &reg_audit(r)).await?;
    }
    // Eight scans at once: the registration is reminded exactly once.
    let t0 = now();
    let mut scans = Vec::new();
    for _ in 0..8 {
        let s: Arc<SqlStore> = s.clone();
        scans.push(tokio::spawn(async move {
            s.claim_due_reminders(t0, 50, &far_decide(t0)).await
        }));
    }
    for scan in scans {
        scan.await??;
    }
    let after = s.registration(tenant.id, &reg.id).await?.expect("kept");
    check_eq!(after.reminders_sent, 1);
    check_eq!(after.last_reminded_at, Some(t0));
    check_eq!(
        s.registration(tenant.id, &done.id)
            .await?
            .expect("kept")
            .reminders_sent,
        0
    );
    // Not due again until the interval has passed since the reminder.
    s.claim_due_reminders(t0 + Duration::seconds(5), 50, &far_decide(t0))
        .await?;
    check_eq!(
        s.registration(tenant.id, &reg.id)
            .await?
            .expect("kept")
            .reminders_sent,
        1
    );
    let t1 = t0 + Duration::seconds(11);
    s.claim_due_reminders(t1, 50, &far_decide(t1)).await?;
    check_eq!(
        s.registration(tenant.id, &reg.id)
            .await?
            .expect("kept")
            .reminders_sent,
        2
    );
    // The cap is reached: the next due scan gives it up, once.
    let t2 = t1 + Duration::seconds(11);
    s.claim_due_reminders(t2, 50, &far_decide(t2)).await?;
    let given = s.registration(tenant.id, &reg.id).await?.expect("kept");
    check_eq!(given.given_up_at, Some(t2));
    check_eq!(given.reminders_sent, 2);
    let t3 = t2 + Duration::seconds(11);
    s.claim_due_reminders(t3, 50, &far_decide(t3)).await?;
    let audited = actions(&s, tenant.id).await?;
    check_eq!(
        audited
            .iter()
            .filter(|a| *a == "registration.given_up")
            .count(),
        1
    );
    // Exactly one job per reminder number.
    for n in 1..=2 {
        let key_job = NewJob {
            id: JobId::new(),
            tenant_id: Some(tenant.id),
            kind: mdm_core::reminders::REMIND_JOB.into(),
            payload: serde_json::json!({}),
            run_at: t0 + Duration::days(3650),
            dedupe_key: Some(format!(
                "{}:{}:{n}",
                mdm_core::reminders::REMIND_JOB,
                reg.id
            )),
            max_attempts: 1,
        };
        check_eq!(s.enqueue_job(&key_job).await?, false);
    }
    Ok(())
}

pub async fn remind_now_and_what_stops_reminders(ctx: Ctx) -> anyhow::Result<()> {
    let s = &ctx.store;
    let tenant = new_tenant(s).await?;
    let u = user(tenant.id, "gus@example.com");
    s.create_users(std::slice::from_ref(&u), &[]).await?;
    s.record_stage(tenant.id, u.id, Stage::Invited, now(), &[])
        .await?;
    s.create_invitations(&[invitation(&u)], &[], &[]).await?;
    let reg = s.open_registration(tenant.id, u.id).await?.expect("opened");
    let job = |key: &str| NewJob {
        id: JobId::new(),
        tenant_id: Some(tenant.id),
        kind: mdm_core::reminders::REMIND_JOB.into(),
        payload: serde_json::json!({ "registration": reg.id }),
        run_at: now() + Duration::days(3650),
        dedupe_key: Some(format!("funnel-test:{key}:{}", reg.id)),
        max_attempts: 1,
    };
    let a = entry(
        Some(tenant.id),
        AuditAction::RegistrationReminderQueued,
        ("registration", reg.id.clone()),
    );
    check_eq!(
        s.queue_reminder(tenant.id, &reg.id, &job("1"), &a, now())
            .await?,
        true
    );
    check_eq!(
        s.registration(tenant.id, &reg.id)
            .await?
            .expect("kept")
            .reminders_sent,
        1
    );
    // Another tenant cannot remind it.
    let other = new_tenant(s).await?;
    check_eq!(
        s.queue_reminder(other.id, &reg.id, &job("2"), &a, now())
            .await?,
        false
    );
    // A newer attempt of the same user supersedes it.
    let mut newer = registration(tenant.id, DevicePlatform::Ios);
    newer.user_id = Some(u.id);
    newer.created_at = reg.created_at + Duration::seconds(1);
    s.save_registration(&newer, &reg_audit(&newer)).await?;
    check_eq!(s.reminder_target(tenant.id, &reg.id).await?, None);
    check_eq!(
        s.queue_reminder(tenant.id, &reg.id, &job("3"), &a, now())
            .await?,
        false
    );
    // A certificate ends reminders for the newer one too.
    let mut issued = newer.clone();
    issued.certificate_issued_at = Some(now());
    issued.status = RegistrationStatus::CertificateIssued;
    s.save_registration(&issued, &reg_audit(&issued)).await?;
    check_eq!(s.reminder_target(tenant.id, &newer.id).await?, None);
    check_eq!(
        s.queue_reminder(tenant.id, &newer.id, &job("4"), &a, now())
            .await?,
        false
    );
    let audited = actions(s, tenant.id).await?;
    check_eq!(
        audited
            .iter()
            .filter(|x| *x == "registration.reminder_queued")
            .count(),
        1
    );
    Ok(())
}
