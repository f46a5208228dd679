//! Apple enrollments and command queues: the certificate binding, the
//! one-read poll, results recorded once (NotNow cap, duplicates, unknown
//! UUIDs), queue cancellation on re-enrolment, push bookkeeping.

use crate::check_eq;
use crate::devices::{enrolled, enrollment};
use crate::pki::{certificate, certificate_audit, new_ca};
use crate::support::{Ctx, actions, entry, hex, new_tenant, now};
use mdm_core::StoreError;
use mdm_core::apple_push::PushRecord;
use mdm_core::audit::AuditAction;
use mdm_core::commands::{AppleCommand, CommandQuery, CommandState, ResultOutcome, ResultRecord};
use mdm_core::devices::{AppleEnrollment, Device, DeviceStatus};
use mdm_core::ids::TenantId;
use mdm_core::ports::{AppleStore, EnrollmentChange, JobStore, PkiStore, RegistrationStore};
use mdm_store::{ColumnValue, SqlStore};
use time::Duration;

fn command(d: &Device, enrollment: &str, n: i64) -> AppleCommand {
    AppleCommand {
        command_uuid: format!("CMD-{}", hex(16)),
        tenant_id: d.tenant_id,
        enrollment_id: enrollment.to_string(),
        device_id: d.id,
        request_type: "ProfileList".into(),
        payload: format!("<plist>{n}</plist>").into_bytes(),
        state: CommandState::Queued,
        not_now_count: 0,
        ack_device_status: (n == 0).then_some(DeviceStatus::Wiped),
        queued_by: "cli".into(),
        created_at: now() + Duration::milliseconds(n),
        result_at: None,
        error_chain: serde_json::Value::Null,
        result: serde_json::Value::Null,
    }
}

async fn queue(s: &SqlStore, cmds: &[AppleCommand]) -> anyhow::Result<()> {
    let change = EnrollmentChange {
        commands: cmds.to_vec(),
        ..EnrollmentChange::default()
    };
    s.apply_enrollment_change(&change, &[]).await?;
    Ok(())
}

/// A device whose channel is bound to a recorded certificate.
/// Revokes certificate `serial` of tenant `t`, with its audit entry.
async fn revoke(s: &SqlStore, t: TenantId, serial: &str) -> anyhow::Result<()> {
    let audit = entry(
        Some(t),
        AuditAction::CertificateRevoked,
        ("certificate", serial.to_string()),
    );
    s.revoke_certificate(t, serial, now(), &audit).await?;
    Ok(())
}

async fn live(s: &SqlStore, t: TenantId) -> anyhow::Result<(Device, AppleEnrollment, String)> {
    let ca = new_ca(s, t).await?;
    let cert = certificate(&ca, &hex(32), now());
    s.record_certificate(&cert, &certificate_audit(&cert))
        .await?;
    let (d, e) = enrolled(s, t, &cert.fingerprint_sha256).await?;
    Ok((d, e, cert.serial))
}

fn result(e: &AppleEnrollment, uuid: &str, state: CommandState) -> ResultRecord {
    ResultRecord {
        tenant_id: e.tenant_id,
        enrollment_id: e.id.clone(),
        device_channel: e.id.clone(),
        fingerprint: e.cert_fingerprint.clone().unwrap_or_default(),
        command_uuid: uuid.to_string(),
        state,
        not_now_cap: 2,
        error_chain: serde_json::json!([{ "code": 12021 }]),
        result: serde_json::json!({ "ProfileList": [] }),
        at: now(),
    }
}

pub async fn binding_and_poll(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (t, other) = (new_tenant(s).await?, new_tenant(s).await?);
    let (d, e, serial) = live(s, t.id).await?;
    let fp = e.cert_fingerprint.clone().unwrap_or_default();
    check_eq!(s.apple_enrollment(t.id, &e.id).await?, Some(e.clone()));
    check_eq!(s.apple_enrollment(other.id, &e.id).await?, None);
    check_eq!(
        s.apple_enrollment_by_cert(t.id, &fp).await?.map(|x| x.id),
        Some(e.id.clone())
    );

    // Empty queue: the binding, no command.
    let poll = s
        .apple_poll(t.id, &e.id, &e.id, true)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no poll"))?;
    check_eq!(
        (
            poll.enabled,
            poll.bound_fingerprint.as_deref(),
            poll.cert_unusable
        ),
        (true, Some(fp.as_str()), false)
    );
    check_eq!(poll.next, None);
    check_eq!(s.apple_poll(other.id, &e.id, &e.id, true).await?, None);

    // One certificate serves one enrollment: a second binding writes nothing.
    let (d2, _) = enrolled(s, t.id, &hex(64)).await?;
    let thief = enrollment(&d2, &format!("UDID-{}", hex(8)), Some(&fp));
    let clash = s
        .apply_enrollment_change(
            &EnrollmentChange {
                enrollment: Some(thief.clone()),
                ..EnrollmentChange::default()
            },
            &[entry(
                Some(t.id),
                AuditAction::DeviceAuthenticated,
                ("device", "x".into()),
            )],
        )
        .await;
    anyhow::ensure!(
        matches!(clash, Err(StoreError::Conflict("enrollment_certificate"))),
        "{clash:?}"
    );
    check_eq!(s.apple_enrollment(t.id, &thief.id).await?, None);

    // Commands come oldest first; the user channel has its own queue.
    let user_channel = enrollment(&d, &format!("{}:USER-1", e.id), None);
    let change = EnrollmentChange {
        enrollment: Some(AppleEnrollment {
            enabled: true,
            ..user_channel.clone()
        }),
        ..EnrollmentChange::default()
    };
    s.apply_enrollment_change(&change, &[]).await?;
    let cmds = [
        command(&d, &e.id, 1),
        command(&d, &e.id, 2),
        command(&d, &user_channel.id, 3),
    ];
    queue(s, &cmds).await?;
    let next = |p: Option<mdm_core::commands::Poll>| p.and_then(|p| p.next).map(|q| q.command_uuid);
    check_eq!(
        next(s.apple_poll(t.id, &e.id, &e.id, true).await?),
        Some(cmds[0].command_uuid.clone())
    );
    check_eq!(
        next(s.apple_poll(t.id, &user_channel.id, &e.id, true).await?),
        Some(cmds[2].command_uuid.clone())
    );
    let dup = queue(s, &cmds[..1]).await;
    anyhow::ensure!(dup.is_err(), "a CommandUUID is queued once");

    // A revoked certificate shows in the poll.
    revoke(s, t.id, &serial).await?;
    let poll = s
        .apple_poll(t.id, &e.id, &e.id, true)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no poll"))?;
    anyhow::ensure!(poll.cert_unusable, "revocation not visible");

    // Re-enrolment cancels the waiting queue but keeps the rows.
    let change = EnrollmentChange {
        cancel_queue_of: Some((t.id, d.id)),
        ..EnrollmentChange::default()
    };
    s.apply_enrollment_change(&change, &[]).await?;
    check_eq!(next(s.apple_poll(t.id, &e.id, &e.id, true).await?), None);
    let page = s
        .apple_commands(t.id, d.id, &CommandQuery::default())
        .await?;
    check_eq!(page.items.len(), 3);
    anyhow::ensure!(
        page.items
            .iter()
            .all(|c| c.state == CommandState::Cancelled),
        "not cancelled"
    );
    Ok(())
}

pub async fn results_are_recorded_once(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let (d, e, serial) = live(s, t.id).await?;
    let cmds = [
        command(&d, &e.id, 0),
        command(&d, &e.id, 1),
        command(&d, &e.id, 2),
    ];
    queue(s, &cmds).await?;
    let uuid = |i: usize| cmds[i].command_uuid.clone();

    // Acknowledged: recorded with its result, the next queued comes back.
    let out = s
        .record_apple_result(&result(&e, &uuid(0), CommandState::Acknowledged))
        .await?;
    let ResultOutcome::Recorded {
        updated: Some(c),
        next,
    } = out
    else {
        anyhow::bail!("not recorded: {out:?}");
    };
    check_eq!(
        (c.state, c.ack_device_status),
        (CommandState::Acknowledged, Some(DeviceStatus::Wiped))
    );
    check_eq!(c.result, serde_json::json!({ "ProfileList": [] }));
    check_eq!(next.map(|q| q.command_uuid), Some(uuid(1)));
    // The same result again (late, duplicate) changes nothing.
    let out = s
        .record_apple_result(&result(&e, &uuid(0), CommandState::Error))
        .await?;
    anyhow::ensure!(
        matches!(out, ResultOutcome::Recorded { updated: None, .. }),
        "{out:?}"
    );
    // Unknown CommandUUID: harmless.
    let out = s
        .record_apple_result(&result(&e, "NOPE", CommandState::Acknowledged))
        .await?;
    anyhow::ensure!(
        matches!(out, ResultOutcome::Recorded { updated: None, .. }),
        "{out:?}"
    );

    // NotNow: not offered again on this chain, offered on the next Idle, capped.
    let out = s
        .record_apple_result(&result(&e, &uuid(1), CommandState::NotNow))
        .await?;
    let ResultOutcome::Recorded {
        updated: Some(c),
        next,
    } = out
    else {
        anyhow::bail!("not recorded: {out:?}");
    };
    check_eq!((c.state, c.not_now_count), (CommandState::NotNow, 1));
    check_eq!(next.map(|q| q.command_uuid), Some(uuid(2)));
    let idle = s
        .apple_poll(t.id, &e.id, &e.id, true)
        .await?
        .and_then(|p| p.next);
    check_eq!(idle.map(|q| q.command_uuid), Some(uuid(1)));
    let out = s
        .record_apple_result(&result(&e, &uuid(1), CommandState::NotNow))
        .await?;
    let ResultOutcome::Recorded {
        updated: Some(c), ..
    } = out
    else {
        anyhow::bail!("not recorded: {out:?}");
    };
    check_eq!((c.state, c.not_now_count), (CommandState::Expired, 2));
    let out = s
        .record_apple_result(&result(&e, &uuid(1), CommandState::NotNow))
        .await?;
    anyhow::ensure!(
        matches!(out, ResultOutcome::Recorded { updated: None, .. }),
        "NotNow after the cap: {out:?}"
    );
    // A late final result of a given-up command is still recorded.
    let out = s
        .record_apple_result(&result(&e, &uuid(1), CommandState::Acknowledged))
        .await?;
    let ResultOutcome::Recorded {
        updated: Some(c), ..
    } = out
    else {
        anyhow::bail!("late result not recorded: {out:?}");
    };
    check_eq!(c.state, CommandState::Acknowledged);

    // Another certificate, or a disabled channel: refused, nothing written.
    let mut forged = result(&e, &uuid(2), CommandState::Acknowledged);
    forged.fingerprint = hex(64);
    let out = s.record_apple_result(&forged).await?;
    anyhow::ensure!(matches!(out, ResultOutcome::Refused(Some(_))), "{out:?}");
    let mut nobody = result(&e, &uuid(2), CommandState::Acknowledged);
    nobody.enrollment_id = "UDID-nobody".into();
    let out = s.record_apple_result(&nobody).await?;
    anyhow::ensure!(matches!(out, ResultOutcome::Refused(None)), "{out:?}");
    // The bound certificate, once revoked, cannot report results.
    revoke(s, t.id, &serial).await?;
    let out = s
        .record_apple_result(&result(&e, &uuid(2), CommandState::Acknowledged))
        .await?;
    anyhow::ensure!(
        matches!(&out, ResultOutcome::Refused(Some(p)) if p.cert_unusable),
        "revoked certificate: {out:?}"
    );
    let page = s
        .apple_commands(
            t.id,
            d.id,
            &CommandQuery {
                state: Some(CommandState::Queued),
                ..CommandQuery::default()
            },
        )
        .await?;
    check_eq!(
        page.items
            .iter()
            .map(|c| c.command_uuid.clone())
            .collect::<Vec<_>>(),
        vec![uuid(2)]
    );

    // Paging newest first.
    let page = s
        .apple_commands(
            t.id,
            d.id,
            &CommandQuery {
                limit: Some(2),
                ..CommandQuery::default()
            },
        )
        .await?;
    check_eq!(
        page.items
            .iter()
            .map(|c| c.command_uuid.clone())
            .collect::<Vec<_>>(),
        vec![uuid(2), uuid(1)]
    );
    let rest = s
        .apple_commands(
            t.id,
            d.id,
            &CommandQuery {
                after: page.next,
                ..CommandQuery::default()
            },
        )
        .await?;
    check_eq!(
        rest.items
            .iter()
            .map(|c| c.command_uuid.clone())
            .collect::<Vec<_>>(),
        vec![uuid(0)]
    );
    Ok(())
}

pub async fn push_bookkeeping(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let (d, e, _) = live(s, t.id).await?;
    let at = now();
    s.record_pushes(&[PushRecord {
        tenant: t.id,
        enrollment: &e.id,
        at,
        outcome: "sent",
        token_dead: false,
        audit: &[],
        done: None,
    }])
    .await?;
    let got = s
        .apple_enrollment(t.id, &e.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("gone"))?;
    check_eq!(
        (
            got.last_push_at,
            got.last_push_outcome.as_deref(),
            got.token_dead_at
        ),
        (Some(at), Some("sent"), None)
    );
    anyhow::ensure!(got.pushable(), "a live token is pushable");
    let before_token_update = enrollment(&d, "UDID-NO-TOKEN", None);
    anyhow::ensure!(!before_token_update.pushable(), "no token yet: no push");
    let mut audit = entry(
        Some(t.id),
        AuditAction::DevicePushTokenDead,
        ("device", d.id.to_string()),
    );
    audit.device_id = Some(d.id.to_string());
    s.record_pushes(&[PushRecord {
        tenant: t.id,
        enrollment: &e.id,
        at,
        outcome: "token_gone",
        token_dead: true,
        audit: &[audit],
        done: None,
    }])
    .await?;
    let got = s
        .apple_enrollment(t.id, &e.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("gone"))?;
    check_eq!(got.token_dead_at, Some(at));
    anyhow::ensure!(!got.pushable(), "a dead token is not pushable");
    // A later TokenUpdate (a saved enrollment) keeps the push bookkeeping.
    let change = EnrollmentChange {
        enrollment: Some(AppleEnrollment {
            token_dead_at: None,
            token: Some(vec![9]),
            ..got
        }),
        ..EnrollmentChange::default()
    };
    s.apply_enrollment_change(&change, &[]).await?;
    let got = s
        .apple_enrollment(t.id, &e.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("gone"))?;
    check_eq!(
        (got.token_dead_at, got.last_push_outcome.as_deref()),
        (None, Some("token_gone"))
    );
    let trail = actions(s, t.id).await?;
    check_eq!(
        trail.last().map(String::as_str),
        Some("device.push_token_dead")
    );
    Ok(())
}

/// A registration, a device with both channels and some commands, for `convert-db`.
pub async fn populate(s: &SqlStore, tenant: TenantId) -> anyhow::Result<()> {
    let r = crate::devices::registration(tenant, mdm_core::registrations::DevicePlatform::Macos);
    s.save_registration(&r, &crate::devices::reg_audit(&r))
        .await?;
    let (d, e, _) = live(s, tenant).await?;
    let user_channel = AppleEnrollment {
        unlock_token: Some(vec![0, 1, 2, 255]),
        user_short_name: Some("ünï".into()),
        ..enrollment(&d, &format!("{}:U", e.id), None)
    };
    let change = EnrollmentChange {
        enrollment: Some(user_channel),
        commands: vec![command(&d, &e.id, 0), command(&d, &e.id, 1)],
        ..EnrollmentChange::default()
    };
    s.apply_enrollment_change(&change, &[]).await?;
    s.record_apple_result(&result(
        &e,
        &change.commands[0].command_uuid,
        CommandState::Error,
    ))
    .await?;
    Ok(())
}

/// A pusher that answers the scripted outcomes in order and counts pushes.
/// Answers a push from `answers` by its enrollment, else from the front of
/// `script`, else `Recorded`; counts the pushes and the calls.
#[derive(Default)]
struct Scripted {
    answers: std::collections::HashMap<String, mdm_core::push::PushOutcome>,
    script: std::sync::Mutex<Vec<mdm_core::push::PushOutcome>>,
    pushes: std::sync::atomic::AtomicUsize,
    calls: std::sync::Mutex<Vec<usize>>,
}

#[async_trait::async_trait]
impl mdm_core::push::Pusher for Scripted {
    async fn push_apple(
        &self,
        pushes: &[mdm_core::push::ApplePush],
    ) -> Vec<mdm_core::push::PushOutcome> {
        self.pushes
            .fetch_add(pushes.len(), std::sync::atomic::Ordering::SeqCst);
        self.calls.lock().unwrap().push(pushes.len());
        let mut script = self.script.lock().unwrap();
        pushes
            .iter()
            .map(|p| match self.answers.get(&p.enrollment_id) {
                Some(a) => a.clone(),
                None if !script.is_empty() => script.remove(0),
                None => mdm_core::push::PushOutcome::Recorded,
            })
            .collect()
    }

    async fn push_android(
        &self,
        pushes: &[mdm_core::push::AndroidPush],
    ) -> Vec<mdm_core::push::PushOutcome> {
        pushes
            .iter()
            .map(|_| mdm_core::push::PushOutcome::Recorded)
            .collect()
    }
}

/// The push job through `Core::work_jobs` on this store: TokenGone marks the
/// token dead (no pushes until a TokenUpdate), Retry retries, Rejected fails
/// for good, Sent is done.
pub async fn push_job_outcomes(ctx: Ctx) -> anyhow::Result<()> {
    use mdm_core::push::PushOutcome;
    let _guard = ctx.jobs_lock.lock().await;
    let s = ctx.store.clone();
    let t = new_tenant(&s).await?;
    let (d, e, _) = live(&s, t.id).await?;
    let pusher = std::sync::Arc::new(Scripted {
        script: std::sync::Mutex::new(vec![
            PushOutcome::TokenGone { since: None },
            PushOutcome::Retry {
                reason: "503".into(),
                retry_after: Some(now() + Duration::hours(1)),
            },
            PushOutcome::Rejected {
                reason: "BadTopic".into(),
            },
            PushOutcome::Sent {
                id: Some("apns-1".into()),
            },
        ]),
        ..Scripted::default()
    });
    let core =
        crate::support::core_on(s.clone(), std::sync::Arc::new(mdm_core::ports::SystemClock))?
            .with_pusher(pusher.clone());
    let cli = mdm_core::tokens::Actor::Cli;
    let step = || async {
        let cmd = mdm_apple::Command::new(
            format!("C-{}", hex(12)),
            mdm_apple::CommandRequest::ProfileList,
        );
        core.queue_command(
            &cli,
            &t,
            mdm_core::commands::CommandTarget::device(d.id),
            cmd,
        )
        .await?;
        // Pushes are coalesced per channel and second and run at its end.
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        anyhow::Ok(core.work_jobs("push-test", 100).await?)
    };
    let pushes = || pusher.pushes.load(std::sync::atomic::Ordering::SeqCst);
    let enrollment = || async {
        s.apple_enrollment(t.id, &e.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("gone"))
    };

    let pass = step().await?;
    check_eq!((pass.done, pushes()), (1, 1));
    let got = enrollment().await?;
    anyhow::ensure!(
        got.token_dead_at.is_some(),
        "TokenGone marks the token dead"
    );
    check_eq!(got.last_push_outcome.as_deref(), Some("token_gone"));
    let pass = step().await?;
    check_eq!((pass.done, pushes()), (1, 1)); // a dead token gets no push

    // A new TokenUpdate revives it.
    let change = EnrollmentChange {
        enrollment: Some(AppleEnrollment {
            token_dead_at: None,
            ..got
        }),
        ..EnrollmentChange::default()
    };
    s.apply_enrollment_change(&change, &[]).await?;
    let pass = step().await?;
    check_eq!((pass.retried, pushes()), (1, 2));
    let pass = step().await?;
    check_eq!((pass.failed, pushes()), (1, 3));
    let pass = step().await?;
    check_eq!((pass.done, pushes()), (1, 4));
    let last = enrollment().await?.last_push_outcome;
    check_eq!(last.as_deref(), Some("sent"));
    // Each push job ended where its outcome puts it: the pushes that went
    // out (and the one a dead token skipped) are done — those that went out
    // marked done in the transaction that recorded them — the retried one
    // waits, the rejected one failed.
    let mut states = push_job_states(&s, t.id).await?;
    states.sort();
    check_eq!(states, vec!["done", "done", "done", "failed", "queued"]);
    let trail = actions(&s, t.id).await?;
    check_eq!(
        trail
            .iter()
            .filter(|a| *a == "device.push_token_dead")
            .count(),
        1
    );
    Ok(())
}

/// One pass of the worker hands all its push jobs to the pusher in one call
/// (which sends them concurrently) and records them in one transaction, each
/// job ending where its own outcome puts it.
pub async fn push_pass_goes_together(ctx: Ctx) -> anyhow::Result<()> {
    use mdm_core::push::PushOutcome;
    let _guard = ctx.jobs_lock.lock().await;
    let s = ctx.store.clone();
    let mut fleet = Vec::new();
    for _ in 0..3 {
        let t = new_tenant(&s).await?;
        let (d, e, _) = live(&s, t.id).await?;
        fleet.push((t, d, e));
    }
    let answers = [
        PushOutcome::Sent {
            id: Some("apns-1".into()),
        },
        PushOutcome::TokenGone { since: None },
        PushOutcome::Retry {
            reason: "503".into(),
            retry_after: Some(now() + Duration::hours(1)),
        },
    ];
    let pusher = std::sync::Arc::new(Scripted {
        answers: fleet
            .iter()
            .zip(answers)
            .map(|((_, _, e), a)| (e.id.clone(), a))
            .collect(),
        ..Scripted::default()
    });
    let core =
        crate::support::core_on(s.clone(), std::sync::Arc::new(mdm_core::ports::SystemClock))?
            .with_pusher(pusher.clone());
    for (t, d, _) in &fleet {
        let cmd = mdm_apple::Command::new(
            format!("C-{}", hex(12)),
            mdm_apple::CommandRequest::ProfileList,
        );
        core.queue_command(
            &mdm_core::tokens::Actor::Cli,
            t,
            mdm_core::commands::CommandTarget::device(d.id),
            cmd,
        )
        .await?;
    }
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let pass = core.work_jobs("push-pass-test", 100).await?;
    anyhow::ensure!(
        pass.done >= 2 && pass.retried >= 1,
        "two done, one retried: {pass:?}"
    );
    let calls = pusher.calls.lock().unwrap().clone();
    anyhow::ensure!(
        calls.len() == 1 && calls[0] >= 3,
        "the pass's pushes in one call: {calls:?}"
    );
    let mut outcomes = Vec::new();
    for (t, _, e) in &fleet {
        let got = s
            .apple_enrollment(t.id, &e.id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("gone"))?;
        let states = push_job_states(&s, t.id).await?;
        outcomes.push((got.last_push_outcome, got.token_dead_at.is_some(), states));
    }
    check_eq!(
        outcomes,
        vec![
            (Some("sent".to_string()), false, vec!["done".to_string()]),
            (
                Some("token_gone".to_string()),
                true,
                vec!["done".to_string()]
            ),
            (
                Some("retry: 503".to_string()),
                false,
                vec!["queued".to_string()]
            ),
        ]
    );
    Ok(())
}

/// The states of the tenant's `apple.push` jobs.
async fn push_job_states(s: &SqlStore, tenant: TenantId) -> anyhow::Result<Vec<String>> {
    let table = mdm_store::TABLES
        .iter()
        .find(|t| t.name == "jobs")
        .ok_or_else(|| anyhow::anyhow!("no jobs table"))?;
    let col = |name: &str| {
        table
            .columns
            .iter()
            .position(|(c, _)| *c == name)
            .ok_or_else(|| anyhow::anyhow!("no jobs.{name}"))
    };
    let (tenant_col, kind_col, state_col) = (col("tenant_id")?, col("kind")?, col("state")?);
    let text = |v: Option<&ColumnValue>| match v {
        Some(ColumnValue::Text(t)) => t.clone(),
        _ => String::new(),
    };
    Ok(s.table_rows("jobs")
        .await?
        .iter()
        .filter(|r| text(r.get(tenant_col)) == tenant.to_string())
        .filter(|r| text(r.get(kind_col)) == mdm_core::apple_push::PUSH_JOB)
        .map(|r| text(r.get(state_col)))
        .collect())
}

/// The renewal scan's candidates: live device channels whose bound,
/// unrevoked certificate expires before the cut-off and that have no open
/// renewal registration.
pub async fn renewal_candidates(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let mine = |rows: Vec<(TenantId, mdm_core::ids::DeviceId)>| {
        rows.into_iter()
            .filter(|(tenant, _)| *tenant == t.id)
            .map(|(_, d)| d)
            .collect::<Vec<_>>()
    };
    let activate = |d: &Device| {
        let mut d = d.clone();
        d.status = DeviceStatus::Active;
        EnrollmentChange {
            device: Some((d, false)),
            ..EnrollmentChange::default()
        }
    };
    let ca = new_ca(s, t.id).await?;
    let mut bound = Vec::new();
    for _ in 0..3 {
        let cert = certificate(&ca, &hex(32), now());
        s.record_certificate(&cert, &certificate_audit(&cert))
            .await?;
        let (d, _) = enrolled(s, t.id, &cert.fingerprint_sha256).await?;
        bound.push((d, cert.serial));
    }
    let [(a, _), (b, b_serial), (pending, _)] =
        <[_; 3]>::try_from(bound).map_err(|_| anyhow::anyhow!("three devices"))?;
    s.apply_enrollment_change(&activate(&a), &[]).await?;
    s.apply_enrollment_change(&activate(&b), &[]).await?;
    let late = now() + Duration::days(400);

    // Certificates live 365 days: due only with a cut-off past that; a
    // pending device is never a candidate.
    check_eq!(mine(s.apple_renewal_candidates(now(), 1000).await?), vec![]);
    let mut due = mine(s.apple_renewal_candidates(late, 1000).await?);
    due.sort_by_key(|d| d.to_string());
    let mut want = vec![a.id, b.id];
    want.sort_by_key(|d| d.to_string());
    check_eq!(due, want);
    anyhow::ensure!(!due.contains(&pending.id));

    // A revoked certificate is not renewed; an open renewal registration
    // holds its device back until it ends.
    revoke(s, t.id, &b_serial).await?;
    let mut r = mdm_core::registrations::Registration::new(
        t.id,
        mdm_core::registrations::DevicePlatform::Ios,
        mdm_core::registrations::RegistrationPurpose::Renewal,
        now(),
    );
    r.device_id = Some(a.id);
    s.save_registration(&r, &crate::devices::reg_audit(&r))
        .await?;
    check_eq!(mine(s.apple_renewal_candidates(late, 1000).await?), vec![]);
    r.status = mdm_core::registrations::RegistrationStatus::Expired;
    s.save_registration(&r, &crate::devices::reg_audit(&r))
        .await?;
    check_eq!(
        mine(s.apple_renewal_candidates(late, 1000).await?),
        vec![a.id]
    );
    Ok(())
}

/// The jobs of an enrollment change are queued with it: once per dedupe
/// key, and not at all when the change fails.
pub async fn change_queues_its_jobs(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let (d, e, _) = live(s, t.id).await?;
    let second = command(&d, &e.id, 1);
    let push = |key: &str| mdm_core::jobs::NewJob {
        id: mdm_core::ids::JobId::new(),
        tenant_id: Some(t.id),
        kind: "apple.push".into(),
        payload: serde_json::json!({ "enrollment": e.id }),
        // Not due: the job tests that run workers must not see these.
        run_at: now() + Duration::days(1),
        dedupe_key: Some(key.to_string()),
        max_attempts: 8,
    };
    let apply = |command: &AppleCommand, job: &mdm_core::jobs::NewJob| {
        let change = EnrollmentChange {
            commands: vec![command.clone()],
            jobs: vec![job.clone()],
            ..EnrollmentChange::default()
        };
        async move { s.apply_enrollment_change(&change, &[]).await }
    };
    let first = push("push:1");
    apply(&command(&d, &e.id, 0), &first).await?;
    anyhow::ensure!(s.job(first.id).await?.is_some(), "job not queued");
    // Same key again: the change applies, the job is not queued twice.
    let again = push("push:1");
    apply(&second, &again).await?;
    anyhow::ensure!(s.job(again.id).await?.is_none(), "duplicate job queued");
    // A change that fails (a command UUID already queued): no job either.
    let failed = push("push:2");
    anyhow::ensure!(
        apply(&second, &failed).await.is_err(),
        "a duplicate command was accepted"
    );
    anyhow::ensure!(
        s.job(failed.id).await?.is_none(),
        "job of a failed change kept"
    );
    Ok(())
}

/// Replacing a stored enrollment keeps every way of finding it true —
/// by certificate, by device, the poll's binding and last-seen time —
/// whichever of those fields the replacement changes, and a certificate
/// bound elsewhere is still refused with nothing written.
pub async fn enrollment_updates_keep_its_lookups(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let (d, mut e, _) = live(s, t.id).await?;
    let (other, other_e) = enrolled(s, t.id, &hex(64)).await?;
    let replace = |e: &AppleEnrollment| EnrollmentChange {
        enrollment: Some(e.clone()),
        ..EnrollmentChange::default()
    };
    let by_cert = |fp: Option<String>| async move {
        anyhow::Ok(
            s.apple_enrollment_by_cert(t.id, &fp.unwrap_or_default())
                .await?
                .map(|x| x.id),
        )
    };

    // Only unindexed fields (a token refresh).
    e.token = Some(vec![9, 9, 9]);
    e.push_magic = Some("fresh-magic".into());
    e.updated_at = now();
    s.apply_enrollment_change(&replace(&e), &[]).await?;
    check_eq!(s.apple_enrollment(t.id, &e.id).await?, Some(e.clone()));

    // The certificate, then disabled with a last-seen time, then moved to
    // another device record.
    let old_fp = e.cert_fingerprint.clone();
    e.cert_fingerprint = Some(hex(64));
    s.apply_enrollment_change(&replace(&e), &[]).await?;
    check_eq!(
        by_cert(e.cert_fingerprint.clone()).await?,
        Some(e.id.clone())
    );
    check_eq!(by_cert(old_fp).await?, None);
    e.enabled = false;
    let seen = now();
    e.last_seen_at = Some(seen);
    s.apply_enrollment_change(&replace(&e), &[]).await?;
    let poll = s
        .apple_poll(t.id, &e.id, &e.id, true)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no poll"))?;
    check_eq!(
        (
            poll.enabled,
            poll.bound_fingerprint.clone(),
            poll.last_seen_at.map(|x| x.unix_timestamp())
        ),
        (
            false,
            e.cert_fingerprint.clone(),
            Some(seen.unix_timestamp())
        )
    );
    e.device_id = other.id;
    s.apply_enrollment_change(&replace(&e), &[]).await?;
    let channels = |id| async move {
        anyhow::Ok(
            s.apple_enrollments(t.id, id)
                .await?
                .into_iter()
                .map(|x| x.id)
                .collect::<Vec<_>>(),
        )
    };
    check_eq!(channels(d.id).await?, Vec::<String>::new());
    let mut moved = channels(other.id).await?;
    moved.sort();
    let mut want = vec![e.id.clone(), other_e.id.clone()];
    want.sort();
    check_eq!(moved, want);

    // Taking another enrollment's certificate is refused, nothing written.
    let mut thief = e.clone();
    thief.cert_fingerprint = other_e.cert_fingerprint.clone();
    thief.topic = "changed".into();
    let clash = s.apply_enrollment_change(&replace(&thief), &[]).await;
    anyhow::ensure!(
        matches!(clash, Err(StoreError::Conflict("enrollment_certificate"))),
        "{clash:?}"
    );
    let stored = s.apple_enrollment(t.id, &e.id).await?;
    check_eq!(
        stored.map(|x| (x.topic, x.cert_fingerprint, x.device_id)),
        Some((e.topic.clone(), e.cert_fingerprint.clone(), other.id))
    );
    Ok(())
}
