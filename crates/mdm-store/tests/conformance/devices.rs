//! Registrations and devices: saving, listing with filters and keyset
//! paging, ending registrations (and disabling a re-enrolled device), the
//! funnel step SCEP issuance takes, and batched last-seen writes.

use crate::check_eq;
use crate::pki::{certificate, certificate_audit, challenge, challenge_audit, new_ca};
use crate::support::{Ctx, actions, entry, hex, new_tenant, now, user};
use mdm_core::StoreError;
use mdm_core::audit::{AuditAction, AuditEntry};
use mdm_core::devices::{AppleChannel, AppleEnrollment, Device, DeviceQuery, DeviceStatus};
use mdm_core::ids::{DeviceId, TenantId};
use mdm_core::pki::{CertificateRecord, Redeem};
use mdm_core::ports::{
    AppleStore, DeviceStore, EnrollmentChange, JobStore, PkiStore, RegistrationStore, UserStore,
};
use mdm_core::registrations::{
    DevicePlatform, EndRegistration, Registration, RegistrationPurpose, RegistrationQuery,
    RegistrationStatus,
};
use mdm_core::secrets::sha256_hex;
use mdm_store::SqlStore;
use time::Duration;

pub fn registration(tenant: TenantId, platform: DevicePlatform) -> Registration {
    let mut r = Registration::new(tenant, platform, RegistrationPurpose::Enroll, now());
    r.id = format!("reg-{}", hex(24));
    r
}

pub fn reg_audit(r: &Registration) -> AuditEntry {
    entry(
        Some(r.tenant_id),
        AuditAction::ProfileIssued,
        ("registration", r.id.clone()),
    )
}

pub fn device(tenant: TenantId, udid: &str) -> Device {
    let t = now();
    Device {
        id: DeviceId::new(),
        tenant_id: tenant,
        user_id: None,
        platform: DevicePlatform::Ios,
        status: DeviceStatus::Pending,
        shown_status: DeviceStatus::Pending,
        udid: Some(udid.to_string()),
        serial_number: None,
        model: None,
        model_name: None,
        product_name: None,
        os_version: None,
        build_version: None,
        device_name: None,
        enrolled_at: None,
        last_seen_at: None,
        created_at: t,
        updated_at: t,
    }
}

pub fn enrollment(d: &Device, id: &str, fingerprint: Option<&str>) -> AppleEnrollment {
    let t = now();
    AppleEnrollment {
        id: id.to_string(),
        tenant_id: d.tenant_id,
        device_id: d.id,
        channel: if id.contains(':') {
            AppleChannel::User
        } else {
            AppleChannel::Device
        },
        registration_id: None,
        topic: "com.apple.mgmt.test".into(),
        token: None,
        push_magic: None,
        unlock_token: None,
        token_dead_at: None,
        cert_fingerprint: fingerprint.map(str::to_string),
        cert_serial: None,
        user_short_name: None,
        user_long_name: None,
        enabled: false,
        last_seen_at: None,
        last_push_at: None,
        last_push_outcome: None,
        created_at: t,
        updated_at: t,
    }
}

fn device_entry(d: &Device, action: AuditAction) -> AuditEntry {
    let mut e = entry(Some(d.tenant_id), action, ("device", d.id.to_string()));
    e.device_id = Some(d.id.to_string());
    e
}

/// Stores a new device with its device channel bound to `fingerprint`.
pub async fn enrolled(
    s: &SqlStore,
    tenant: TenantId,
    fingerprint: &str,
) -> anyhow::Result<(Device, AppleEnrollment)> {
    let d = device(tenant, &format!("UDID-{}", hex(12)));
    let mut e = enrollment(&d, d.udid.as_deref().unwrap_or_default(), Some(fingerprint));
    e.enabled = true;
    e.token = Some(vec![1, 2, 3]);
    e.push_magic = Some("magic".into());
    let change = EnrollmentChange {
        device: Some((d.clone(), true)),
        enrollment: Some(e.clone()),
        ..EnrollmentChange::default()
    };
    s.apply_enrollment_change(
        &change,
        &[device_entry(&d, AuditAction::DeviceAuthenticated)],
    )
    .await?;
    Ok((d, e))
}

pub async fn registrations_round_trip_and_paging(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let u = user(a.id, "reg@example.com");
    s.create_users(std::slice::from_ref(&u), &[]).await?;
    let mut regs = Vec::new();
    for i in 0..7 {
        let platform = if i % 2 == 0 {
            DevicePlatform::Ios
        } else {
            DevicePlatform::Macos
        };
        let mut r = registration(a.id, platform);
        r.created_at = now() - Duration::seconds(100 - i);
        r.user_id = (i < 3).then_some(u.id);
        r.expires_at = Some(now() + Duration::minutes(10));
        r.invited_at = Some(now());
        r.profile_downloaded_at = Some(now());
        s.save_registration(&r, &reg_audit(&r)).await?;
        regs.push(r);
    }
    check_eq!(
        s.registration(a.id, &regs[0].id).await?,
        Some(regs[0].clone())
    );
    check_eq!(s.registration(b.id, &regs[0].id).await?, None);

    // Saving again replaces (a profile attached to an open registration).
    let mut again = regs[1].clone();
    again.status = RegistrationStatus::ProfileDownloaded;
    again.reason = Some("second profile".into());
    s.save_registration(&again, &reg_audit(&again)).await?;
    check_eq!(s.registration(a.id, &again.id).await?, Some(again.clone()));
    regs[1] = again;

    // Newest first, paged by cursor, filters combine.
    let mut seen = Vec::new();
    let mut q = RegistrationQuery {
        limit: Some(3),
        ..RegistrationQuery::default()
    };
    loop {
        let page = s.registrations(a.id, &q).await?;
        seen.extend(page.items.into_iter().map(|r| r.id));
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    let expected: Vec<String> = regs.iter().rev().map(|r| r.id.clone()).collect();
    check_eq!(seen, expected);
    let q = RegistrationQuery {
        user_id: Some(u.id),
        platform: Some(DevicePlatform::Ios),
        ..RegistrationQuery::default()
    };
    let ids: Vec<String> = s
        .registrations(a.id, &q)
        .await?
        .items
        .into_iter()
        .map(|r| r.id)
        .collect();
    check_eq!(ids, vec![regs[2].id.clone(), regs[0].id.clone()]);
    let q = RegistrationQuery {
        status: Some(RegistrationStatus::ProfileDownloaded),
        ..RegistrationQuery::default()
    };
    check_eq!(s.registrations(a.id, &q).await?.items.len(), 1);
    check_eq!(
        s.registrations(b.id, &RegistrationQuery::default())
            .await?
            .items
            .len(),
        0
    );
    let bad = RegistrationQuery {
        after: Some("nonsense".into()),
        ..RegistrationQuery::default()
    };
    anyhow::ensure!(
        matches!(
            s.registrations(a.id, &bad).await,
            Err(StoreError::BadCursor)
        ),
        "bad cursor accepted"
    );
    Ok(())
}

pub async fn ending_a_registration(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let (d, _) = enrolled(s, t.id, &hex(64)).await?;
    let mut r = registration(t.id, DevicePlatform::Ios);
    r.purpose = RegistrationPurpose::Reenroll;
    r.device_id = Some(d.id);
    s.save_registration(&r, &reg_audit(&r)).await?;
    let end = EndRegistration {
        tenant_id: t.id,
        id: r.id.clone(),
        status: Some(RegistrationStatus::Cancelled),
        reason: "cancelled".into(),
        disable_device: Some(d.id),
        at: now(),
    };
    let ended = [
        entry(
            Some(t.id),
            AuditAction::RegistrationCancelled,
            ("registration", r.id.clone()),
        ),
        device_entry(&d, AuditAction::DeviceMdmDisabled),
    ];
    anyhow::ensure!(
        s.end_registration(&end, &[], &ended).await?,
        "open registration not ended"
    );
    let got = s
        .registration(t.id, &r.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("gone"))?;
    check_eq!(
        (got.status, got.reason.as_deref()),
        (RegistrationStatus::Cancelled, Some("cancelled"))
    );
    let dev = s
        .device(t.id, d.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("device"))?;
    check_eq!(dev.status, DeviceStatus::MdmDisabled);
    let channels = s.apple_enrollments(t.id, d.id).await?;
    anyhow::ensure!(
        channels.iter().all(|e| !e.enabled),
        "channels still enabled"
    );

    // Ended once: a second end changes nothing, writes only the `always` entries.
    let note = [entry(
        Some(t.id),
        AuditAction::ScepRefused,
        ("scep_transaction", "x".into()),
    )];
    let expire = EndRegistration {
        status: Some(RegistrationStatus::Expired),
        ..end
    };
    anyhow::ensure!(
        !s.end_registration(&expire, &note, &ended).await?,
        "ended twice"
    );
    check_eq!(
        s.registration(t.id, &r.id).await?.map(|g| g.status),
        Some(RegistrationStatus::Cancelled)
    );
    let trail = actions(s, t.id).await?;
    check_eq!(
        trail[trail.len() - 3..].to_vec(),
        vec![
            "registration.cancelled",
            "device.mdm_disabled",
            "scep.refused"
        ]
    );
    // Unknown registration: only `always` is written.
    let ghost = EndRegistration {
        id: "reg-ghost".into(),
        ..expire
    };
    anyhow::ensure!(
        !s.end_registration(&ghost, &note, &[]).await?,
        "ghost ended"
    );
    Ok(())
}

pub async fn issuance_advances_the_registration(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let ca = new_ca(s, t.id).await?;
    let mut r = registration(t.id, DevicePlatform::Macos);
    r.status = RegistrationStatus::ProfileDownloaded;
    s.save_registration(&r, &reg_audit(&r)).await?;
    let secret = hex(32);
    let ch = mdm_core::pki::ScepChallenge {
        registration: r.id.clone(),
        ..challenge(t.id, &secret)
    };
    s.create_challenge(&ch, &challenge_audit(&ch)).await?;
    let cert = CertificateRecord {
        registration: Some(r.id.clone()),
        ..certificate(&ca, &hex(32), now())
    };
    let outcome = s
        .record_certificate_redeeming(
            &cert,
            &sha256_hex(&secret),
            now(),
            &certificate_audit(&cert),
        )
        .await?;
    anyhow::ensure!(matches!(outcome, Redeem::Redeemed(_)), "{outcome:?}");
    let got = s
        .registration(t.id, &r.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("gone"))?;
    check_eq!(got.status, RegistrationStatus::CertificateIssued);
    anyhow::ensure!(got.certificate_issued_at.is_some(), "stage time not set");
    check_eq!(
        s.certificate_by_fingerprint(t.id, &cert.fingerprint_sha256)
            .await?,
        Some(cert.clone())
    );
    check_eq!(s.certificate_by_fingerprint(t.id, &hex(64)).await?, None);
    Ok(())
}

pub async fn devices_listing_and_last_seen(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let mut made = Vec::new();
    for i in 0..5 {
        let (mut d, e) = enrolled(s, a.id, &hex(64)).await?;
        if i % 2 == 1 {
            d.status = DeviceStatus::Active;
            d.serial_number = Some(format!("SER{i}"));
            d.created_at = now();
            let change = EnrollmentChange {
                device: Some((d.clone(), false)),
                ..EnrollmentChange::default()
            };
            s.apply_enrollment_change(&change, &[]).await?;
        }
        made.push((d, e));
    }
    let first = &made[0].0;
    check_eq!(s.device(a.id, first.id).await?, Some(first.clone()));
    check_eq!(s.device(b.id, first.id).await?, None);
    let udid = first.udid.clone().unwrap_or_default();
    check_eq!(
        s.device_by_udid(a.id, DevicePlatform::Ios, &udid)
            .await?
            .map(|d| d.id),
        Some(first.id)
    );
    check_eq!(
        s.device_by_udid(b.id, DevicePlatform::Ios, &udid).await?,
        None
    );
    // One record per UDID in the tenant.
    let twin = device(a.id, &udid);
    let dup = s
        .apply_enrollment_change(
            &EnrollmentChange {
                device: Some((twin, true)),
                ..EnrollmentChange::default()
            },
            &[],
        )
        .await;
    anyhow::ensure!(
        matches!(dup, Err(StoreError::Conflict("device_udid"))),
        "{dup:?}"
    );

    let mut q = DeviceQuery {
        status: Some(DeviceStatus::Active),
        platform: Some(DevicePlatform::Ios),
        ..DeviceQuery::default()
    };
    check_eq!(s.devices(a.id, &q).await?.items.len(), 2);
    q.platform = Some(DevicePlatform::Macos);
    check_eq!(s.devices(a.id, &q).await?.items.len(), 0);
    // A reset entry is listed under `active` (shown Active, R18) and under `reset`.
    let (mut reset, _) = enrolled(s, a.id, &hex(64)).await?;
    reset.status = DeviceStatus::Reset;
    s.apply_enrollment_change(
        &EnrollmentChange {
            device: Some((reset.clone(), false)),
            ..EnrollmentChange::default()
        },
        &[],
    )
    .await?;
    q.platform = Some(DevicePlatform::Ios);
    let shown: Vec<_> = s
        .devices(a.id, &q)
        .await?
        .items
        .iter()
        .map(|d| d.id)
        .collect();
    check_eq!((shown.len(), shown.contains(&reset.id)), (3, true));
    q.status = Some(DeviceStatus::Reset);
    let only: Vec<_> = s
        .devices(a.id, &q)
        .await?
        .items
        .iter()
        .map(|d| d.id)
        .collect();
    check_eq!(only, vec![reset.id]);
    let mut all = Vec::new();
    let mut q = DeviceQuery {
        limit: Some(2),
        ..DeviceQuery::default()
    };
    loop {
        let page = s.devices(a.id, &q).await?;
        all.extend(page.items.into_iter().map(|d| d.id));
        match page.next {
            Some(n) => q.after = Some(n),
            None => break,
        }
    }
    check_eq!(all.len(), 6);
    check_eq!(
        s.devices(b.id, &DeviceQuery::default()).await?.items.len(),
        0
    );

    let at = now() + Duration::seconds(3);
    let (other, other_enrollment) = enrolled(s, a.id, &hex(64)).await?;
    let other_at = at + Duration::seconds(2);
    s.touch_enrollments(&[
        (a.id, made[0].1.id.clone(), at),
        (b.id, made[1].1.id.clone(), at),
        (a.id, other_enrollment.id.clone(), other_at),
    ])
    .await?;
    // Each channel of one batch gets its own time.
    check_eq!(
        s.device(a.id, other.id).await?.and_then(|d| d.last_seen_at),
        Some(other_at)
    );
    check_eq!(
        s.device(a.id, first.id).await?.and_then(|d| d.last_seen_at),
        Some(at)
    );
    check_eq!(
        s.apple_enrollment(a.id, &made[0].1.id)
            .await?
            .and_then(|e| e.last_seen_at),
        Some(at)
    );
    // The other tenant's id names nothing there.
    check_eq!(
        s.device(a.id, made[1].0.id)
            .await?
            .and_then(|d| d.last_seen_at),
        None
    );
    Ok(())
}

/// Issuing a profile writes its challenge, the registration, the audit
/// entries and the expiry job together, or none of them.
pub async fn issued_profile_is_one_transaction(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let mut r = registration(t.id, DevicePlatform::Ios);
    r.status = RegistrationStatus::ProfileDownloaded;
    r.expires_at = Some(now() + Duration::hours(1));
    let secret = hex(32);
    let ch = mdm_core::pki::ScepChallenge {
        registration: r.id.clone(),
        ..challenge(t.id, &secret)
    };
    let job = mdm_core::jobs::NewJob {
        id: mdm_core::ids::JobId::new(),
        tenant_id: Some(t.id),
        kind: "registration.expire".into(),
        payload: serde_json::json!({ "registration": r.id }),
        run_at: now() + Duration::hours(2),
        dedupe_key: Some(format!("expire:{}", r.id)),
        max_attempts: 5,
    };
    s.save_issued_profile(&ch, &r, &[challenge_audit(&ch), reg_audit(&r)], Some(&job))
        .await?;
    let stored = s
        .challenge(t.id, &sha256_hex(&secret))
        .await?
        .ok_or_else(|| anyhow::anyhow!("no challenge"))?;
    check_eq!(stored.registration, r.id);
    let got = s
        .registration(t.id, &r.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no registration"))?;
    check_eq!(got.status, RegistrationStatus::ProfileDownloaded);
    let queued = s
        .job(job.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no expiry job"))?;
    check_eq!(queued.kind, "registration.expire");
    let audited = actions(s, t.id).await?;
    check_eq!(
        audited[audited.len() - 2..].to_vec(),
        vec![
            challenge_audit(&ch).action.as_str().to_string(),
            reg_audit(&r).action.as_str().to_string()
        ]
    );

    // A second registration whose challenge collides: nothing of it is kept,
    // and the same expiry job key is not queued twice.
    let mut again = registration(t.id, DevicePlatform::Ios);
    again.expires_at = r.expires_at;
    let clash = mdm_core::pki::ScepChallenge {
        registration: again.id.clone(),
        ..ch.clone()
    };
    let second_job = mdm_core::jobs::NewJob {
        id: mdm_core::ids::JobId::new(),
        ..job.clone()
    };
    let before = actions(s, t.id).await?.len();
    let refused = s
        .save_issued_profile(&clash, &again, &[reg_audit(&again)], Some(&second_job))
        .await;
    anyhow::ensure!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    anyhow::ensure!(
        s.registration(t.id, &again.id).await?.is_none(),
        "registration kept"
    );
    anyhow::ensure!(s.job(second_job.id).await?.is_none(), "job kept");
    check_eq!(actions(s, t.id).await?.len(), before);
    // The same expiry job key, queued again with a new registration: the
    // profile is saved, the job is not duplicated.
    let other = mdm_core::pki::ScepChallenge {
        id: mdm_core::ids::ChallengeId::new(),
        registration: again.id.clone(),
        ..challenge(t.id, &hex(32))
    };
    s.save_issued_profile(&other, &again, &[reg_audit(&again)], Some(&second_job))
        .await?;
    anyhow::ensure!(
        s.registration(t.id, &again.id).await?.is_some(),
        "not saved"
    );
    anyhow::ensure!(
        s.job(second_job.id).await?.is_none(),
        "duplicate job queued"
    );
    Ok(())
}

/// An update of a device keeps every way of finding it true, whichever of
/// its indexed fields (user, status, UDID) it changes — also when it
/// changes none of them, which SQLite writes without touching those indexes.
pub async fn device_updates_keep_its_lookups(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let owner = user(t.id, "owner@example.com");
    s.create_users(std::slice::from_ref(&owner), &[]).await?;
    let (mut d, _) = enrolled(s, t.id, &hex(64)).await?;
    let (other, _) = enrolled(s, t.id, &hex(64)).await?;
    let update = |d: &Device| EnrollmentChange {
        device: Some((d.clone(), false)),
        ..EnrollmentChange::default()
    };
    let ids = |q: DeviceQuery| async move {
        let page = s.devices(t.id, &q).await?;
        anyhow::Ok(page.items.iter().map(|d| d.id).collect::<Vec<_>>())
    };
    let by_status = |status| DeviceQuery {
        status: Some(status),
        ..DeviceQuery::default()
    };
    let by_user = DeviceQuery {
        user_id: Some(owner.id),
        ..DeviceQuery::default()
    };

    // Facts only.
    d.serial_number = Some("C02XYZ".into());
    d.os_version = Some("18.1".into());
    d.updated_at = now();
    s.apply_enrollment_change(&update(&d), &[]).await?;
    check_eq!(s.device(t.id, d.id).await?, Some(d.clone()));
    check_eq!(
        ids(by_status(DeviceStatus::Pending)).await?.contains(&d.id),
        true
    );

    // The status, then the user, then the UDID.
    d.status = DeviceStatus::Active;
    d.shown_status = DeviceStatus::Active;
    s.apply_enrollment_change(&update(&d), &[]).await?;
    check_eq!(ids(by_status(DeviceStatus::Active)).await?, vec![d.id]);
    check_eq!(ids(by_status(DeviceStatus::Pending)).await?, vec![other.id]);
    d.user_id = Some(owner.id);
    s.apply_enrollment_change(&update(&d), &[]).await?;
    check_eq!(ids(by_user.clone()).await?, vec![d.id]);
    check_eq!(ids(by_status(DeviceStatus::Active)).await?, vec![d.id]);
    let old_udid = d.udid.clone().unwrap_or_default();
    d.udid = Some(format!("UDID-{}", hex(12)));
    s.apply_enrollment_change(&update(&d), &[]).await?;
    let found = |udid: String| async move {
        anyhow::Ok(
            s.device_by_udid(t.id, DevicePlatform::Ios, &udid)
                .await?
                .map(|d| d.id),
        )
    };
    check_eq!(found(d.udid.clone().unwrap_or_default()).await?, Some(d.id));
    check_eq!(found(old_udid).await?, None);
    check_eq!(s.device(t.id, d.id).await?, Some(d.clone()));

    // Taking another device's UDID is refused; a device that is not there
    // (or in another tenant) is not found; neither writes anything.
    let mut twin = d.clone();
    twin.udid = other.udid.clone();
    twin.serial_number = Some("changed".into());
    let taken = s.apply_enrollment_change(&update(&twin), &[]).await;
    anyhow::ensure!(
        matches!(taken, Err(StoreError::Conflict("device_udid"))),
        "{taken:?}"
    );
    let mut ghost = d.clone();
    ghost.id = DeviceId::new();
    let missing = s.apply_enrollment_change(&update(&ghost), &[]).await;
    anyhow::ensure!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    let stranger = new_tenant(s).await?;
    let mut foreign = d.clone();
    foreign.tenant_id = stranger.id;
    foreign.status = DeviceStatus::Retired;
    let missing = s.apply_enrollment_change(&update(&foreign), &[]).await;
    anyhow::ensure!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    check_eq!(s.device(t.id, d.id).await?, Some(d.clone()));
    check_eq!(ids(by_user).await?, vec![d.id]);
    Ok(())
}
