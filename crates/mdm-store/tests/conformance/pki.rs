//! Certificate authorities and one-time SCEP challenges, and the PKI
//! fixtures that `certificates` and `convert` share. The store never parses CA or
//! certificate bytes, so arbitrary blobs stand in for them.

use crate::check_eq;
use crate::support::{Ctx, actions, entry, hex, new_tenant, now};
use mdm_core::StoreError;
use mdm_core::audit::{AuditAction, AuditEntry};
use mdm_core::ids::{CaId, ChallengeId, TenantId};
use mdm_core::pki::{CaRecord, CertificateRecord, Redeem, ScepChallenge};
use mdm_core::ports::PkiStore;
use mdm_core::profile_signer::{ProfileSignerRecord, SignerStored};
use mdm_core::secrets::sha256_hex;
use mdm_core::signing_identity::SigningIdentityRecord;
use mdm_store::{ColumnValue, SqlStore};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

/// `len` varied bytes that start, contain and end with 0x00 and 0xff.
pub fn blob(seed: u8, len: usize) -> Vec<u8> {
    let middle = (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(seed));
    [0x00, 0xff, seed]
        .into_iter()
        .chain(middle)
        .chain([0xff, 0x00])
        .collect()
}

/// An active CA of `tenant`, not yet stored.
pub fn ca(tenant: TenantId) -> CaRecord {
    CaRecord {
        id: CaId::new(),
        tenant_id: tenant,
        subject: format!("CN=t-{} Device CA,O=Conformance", hex(8)),
        cert_der: blob(1, 700),
        sealed_key: blob(2, 1200),
        not_after: now() + Duration::days(3650),
        created_at: now(),
        active: true,
    }
}

pub fn ca_audit(ca: &CaRecord) -> AuditEntry {
    entry(
        Some(ca.tenant_id),
        AuditAction::CaCreated,
        ("ca", ca.id.to_string()),
    )
}

/// A stored active CA of `tenant`.
pub async fn new_ca(s: &SqlStore, tenant: TenantId) -> anyhow::Result<CaRecord> {
    let ca = ca(tenant);
    s.create_ca(&ca, &ca_audit(&ca)).await?;
    Ok(ca)
}

/// An unused challenge of `tenant` whose secret is `secret`, valid for an hour.
pub fn challenge(tenant: TenantId, secret: &str) -> ScepChallenge {
    ScepChallenge {
        id: ChallengeId::new(),
        tenant_id: tenant,
        registration: format!("reg-{}", hex(8)),
        challenge_hash: sha256_hex(secret),
        created_at: now(),
        expires_at: now() + Duration::hours(1),
        used_at: None,
    }
}

pub fn challenge_audit(ch: &ScepChallenge) -> AuditEntry {
    entry(
        Some(ch.tenant_id),
        AuditAction::ScepChallengeCreated,
        ("scep_challenge", ch.id.to_string()),
    )
}

/// A certificate signed by `ca`, without the optional fields, not yet stored.
pub fn certificate(ca: &CaRecord, serial: &str, issued_at: OffsetDateTime) -> CertificateRecord {
    CertificateRecord {
        serial: serial.to_string(),
        tenant_id: ca.tenant_id,
        ca_id: ca.id,
        subject: format!("CN=device {serial}"),
        fingerprint_sha256: sha256_hex(serial),
        not_before: issued_at - Duration::minutes(5),
        not_after: issued_at + Duration::days(365),
        issued_at,
        registration: None,
        device_id: None,
        renewal_of: None,
        revoked_at: None,
        cert_der: blob(serial.len() as u8, 900),
    }
}

pub fn certificate_audit(c: &CertificateRecord) -> AuditEntry {
    entry(
        Some(c.tenant_id),
        AuditAction::CertificateIssued,
        ("certificate", c.serial.clone()),
    )
}

/// The ids of the CAs of `tenant` in the database.
async fn ca_ids(s: &SqlStore, tenant: TenantId) -> anyhow::Result<Vec<ColumnValue>> {
    let tenant = ColumnValue::Text(tenant.to_string());
    Ok(s.table_rows("certificate_authorities")
        .await?
        .into_iter()
        .filter(|row| row.get(1) == Some(&tenant))
        .filter_map(|row| row.into_iter().next())
        .collect())
}

pub async fn ca_per_tenant(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    check_eq!(s.active_ca(a.id).await?, None);
    let first = new_ca(s, a.id).await?;
    check_eq!(s.active_ca(a.id).await?, Some(first.clone()));

    // A second active CA is refused and leaves no trace.
    let second = CaRecord {
        subject: first.subject.clone(),
        ..ca(a.id)
    };
    let result = s.create_ca(&second, &ca_audit(&second)).await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("tenant_ca"))),
        "second active CA: {result:?}"
    );
    check_eq!(s.active_ca(a.id).await?, Some(first.clone()));
    check_eq!(
        ca_ids(s, a.id).await?,
        vec![ColumnValue::Text(first.id.to_string())]
    );
    check_eq!(
        actions(s, a.id).await?,
        vec!["tenant.created", "ca.created"]
    );

    // Inactive CAs (rotated out) may sit beside the active one.
    let retired = CaRecord {
        active: false,
        ..ca(a.id)
    };
    s.create_ca(&retired, &ca_audit(&retired)).await?;
    check_eq!(s.active_ca(a.id).await?, Some(first.clone()));
    check_eq!(ca_ids(s, a.id).await?.len(), 2);

    // Isolation: B has no CA until it creates its own.
    check_eq!(s.active_ca(b.id).await?, None);
    let of_b = new_ca(s, b.id).await?;
    check_eq!(s.active_ca(b.id).await?, Some(of_b));
    check_eq!(s.active_ca(a.id).await?, Some(first));
    check_eq!(
        actions(s, a.id).await?,
        vec!["tenant.created", "ca.created", "ca.created"]
    );
    check_eq!(
        actions(s, b.id).await?,
        vec!["tenant.created", "ca.created"]
    );
    Ok(())
}

fn used(ch: &ScepChallenge, at: OffsetDateTime) -> ScepChallenge {
    ScepChallenge {
        used_at: Some(at),
        ..ch.clone()
    }
}

pub async fn challenge_outcomes(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let secret = hex(32);
    let ch = challenge(a.id, &secret);
    s.create_challenge(&ch, &challenge_audit(&ch)).await?;

    // The same secret again in the tenant is refused and leaves no trace.
    let twin = challenge(a.id, &secret);
    let result = s.create_challenge(&twin, &challenge_audit(&twin)).await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("challenge"))),
        "duplicate hash: {result:?}"
    );

    let hash = sha256_hex(&secret);
    check_eq!(
        s.redeem_challenge(a.id, &sha256_hex(&hex(32)), now())
            .await?,
        Redeem::Unknown
    );
    check_eq!(
        s.redeem_challenge(b.id, &hash, now()).await?,
        Redeem::Unknown
    );
    let at = now();
    check_eq!(
        s.redeem_challenge(a.id, &hash, at).await?,
        Redeem::Redeemed(used(&ch, at))
    );
    // Used keeps the first redemption's time, even after expiry.
    for later in [at + Duration::seconds(1), ch.expires_at + Duration::days(1)] {
        check_eq!(
            s.redeem_challenge(a.id, &hash, later).await?,
            Redeem::Used(used(&ch, at))
        );
    }
    check_eq!(
        s.redeem_challenge(b.id, &hash, now()).await?,
        Redeem::Unknown
    );

    // Expiry: valid until just before `expires_at`.
    let secret = hex(32);
    let hash = sha256_hex(&secret);
    let short = challenge(a.id, &secret);
    s.create_challenge(&short, &challenge_audit(&short)).await?;
    for late in [
        short.expires_at + Duration::days(1),
        short.expires_at + Duration::milliseconds(1),
        short.expires_at,
    ] {
        check_eq!(
            s.redeem_challenge(a.id, &hash, late).await?,
            Redeem::Expired(short.clone())
        );
    }
    let last_moment = short.expires_at - Duration::milliseconds(1);
    check_eq!(
        s.redeem_challenge(a.id, &hash, last_moment).await?,
        Redeem::Redeemed(used(&short, last_moment))
    );
    check_eq!(
        s.redeem_challenge(a.id, &hash, short.expires_at).await?,
        Redeem::Used(used(&short, last_moment))
    );

    // Redeeming is not audited by the store; creating is.
    check_eq!(
        actions(s, a.id).await?,
        vec![
            "tenant.created",
            "scep.challenge_created",
            "scep.challenge_created"
        ]
    );
    check_eq!(actions(s, b.id).await?, vec!["tenant.created"]);
    Ok(())
}

pub async fn concurrent_redeems_one_wins(ctx: Ctx) -> anyhow::Result<()> {
    const N: usize = 20;
    let s = ctx.store.clone();
    let tenant = new_tenant(&s).await?;
    let secret = hex(32);
    let ch = challenge(tenant.id, &secret);
    s.create_challenge(&ch, &challenge_audit(&ch)).await?;

    let start = Arc::new(tokio::sync::Barrier::new(N));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..N {
        let (s, start, hash) = (s.clone(), start.clone(), sha256_hex(&secret));
        let at = now() + Duration::milliseconds(i as i64);
        tasks.spawn(async move {
            start.wait().await;
            anyhow::Ok((at, s.redeem_challenge(tenant.id, &hash, at).await?))
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined??);
    }
    let winners = outcomes
        .iter()
        .filter_map(|(at, r)| matches!(r, Redeem::Redeemed(_)).then_some(*at))
        .collect::<Vec<_>>();
    anyhow::ensure!(
        winners.len() == 1,
        "{} redeemed: {outcomes:?}",
        winners.len()
    );
    let won = used(&ch, winners[0]);
    for (_, outcome) in &outcomes {
        anyhow::ensure!(
            *outcome == Redeem::Redeemed(won.clone()) || *outcome == Redeem::Used(won.clone()),
            "unexpected outcome {outcome:?}, winner {won:?}"
        );
    }
    check_eq!(
        s.redeem_challenge(tenant.id, &ch.challenge_hash, now())
            .await?,
        Redeem::Used(won)
    );
    Ok(())
}

/// `challenge` reads a challenge without touching it; recording a certificate
/// while redeeming its challenge writes all or nothing.
pub async fn redeem_with_certificate(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let ca_a = new_ca(s, a.id).await?;
    let ch = challenge(a.id, "with-certificate");
    s.create_challenge(&ch, &challenge_audit(&ch)).await?;
    check_eq!(
        s.challenge(a.id, &ch.challenge_hash).await?,
        Some(ch.clone())
    );
    check_eq!(s.challenge(b.id, &ch.challenge_hash).await?, None);
    check_eq!(s.challenge(a.id, &sha256_hex("other")).await?, None);

    // Expired at `now`: nothing is written, the challenge stays unused.
    let late = CertificateRecord {
        registration: Some(ch.registration.clone()),
        ..certificate(&ca_a, &hex(32), now())
    };
    let outcome = s
        .record_certificate_redeeming(
            &late,
            &ch.challenge_hash,
            ch.expires_at,
            &certificate_audit(&late),
        )
        .await?;
    check_eq!(outcome, Redeem::Expired(ch.clone()));
    check_eq!(s.certificate(a.id, &late.serial).await?, None);

    // In time: redeemed, certificate and audit row written together.
    let t = ch.expires_at - Duration::minutes(1);
    let outcome = s
        .record_certificate_redeeming(&late, &ch.challenge_hash, t, &certificate_audit(&late))
        .await?;
    check_eq!(outcome, Redeem::Redeemed(used(&ch, t)));
    check_eq!(s.certificate(a.id, &late.serial).await?, Some(late.clone()));

    // Again with another certificate: the challenge is spent, nothing written.
    let again = certificate(&ca_a, &hex(32), now());
    let outcome = s
        .record_certificate_redeeming(&again, &ch.challenge_hash, t, &certificate_audit(&again))
        .await?;
    check_eq!(outcome, Redeem::Used(used(&ch, t)));
    check_eq!(s.certificate(a.id, &again.serial).await?, None);

    // A duplicate serial rolls the redemption back too.
    let ch2 = challenge(a.id, "second");
    s.create_challenge(&ch2, &challenge_audit(&ch2)).await?;
    let dup = certificate(&ca_a, &late.serial, now());
    let result = s
        .record_certificate_redeeming(&dup, &ch2.challenge_hash, t, &certificate_audit(&dup))
        .await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("certificate_serial"))),
        "duplicate serial: {result:?}"
    );
    check_eq!(
        s.challenge(a.id, &ch2.challenge_hash).await?,
        Some(ch2.clone())
    );
    check_eq!(
        actions(s, a.id)
            .await?
            .iter()
            .filter(|a| *a == "certificate.issued")
            .count(),
        1
    );
    Ok(())
}

/// A profile signer of `ca` ending at `not_after`, and its certificate record.
pub fn signer(
    ca: &CaRecord,
    not_after: OffsetDateTime,
) -> (ProfileSignerRecord, CertificateRecord) {
    let serial = hex(16);
    let cert = CertificateRecord {
        not_after,
        ..certificate(ca, &serial, now())
    };
    let record = ProfileSignerRecord {
        tenant_id: ca.tenant_id,
        ca_id: ca.id,
        serial,
        cert_der: cert.cert_der.clone(),
        sealed_key: blob(9, 140),
        not_after,
        created_at: now(),
    };
    (record, cert)
}

/// Profile signers: the current one is the unrevoked signer of that CA that
/// lasts longest; storing one records its certificate and audit entry with
/// it, and a serial that exists writes nothing.
pub async fn profile_signers(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let ca_a = new_ca(s, a.id).await?;
    check_eq!(s.profile_signer(a.id, ca_a.id).await?, None);

    let (old, old_cert) = signer(&ca_a, now() + Duration::days(20));
    check_eq!(
        s.create_profile_signer(&old, &old_cert, &certificate_audit(&old_cert), None)
            .await?,
        SignerStored::Stored
    );
    check_eq!(s.profile_signer(a.id, ca_a.id).await?, Some(old.clone()));
    check_eq!(
        s.certificate(a.id, &old.serial).await?,
        Some(old_cert.clone())
    );

    // A signer made by a request that found none (or found one that has
    // been replaced since) is not stored: the current one comes back, and
    // neither its certificate nor an audit entry is written.
    let before = actions(s, a.id).await?;
    let (late, late_cert) = signer(&ca_a, now() + Duration::days(700));
    for replacing in [None, Some("0badc0de")] {
        check_eq!(
            s.create_profile_signer(&late, &late_cert, &certificate_audit(&late_cert), replacing)
                .await?,
            SignerStored::Raced(old.clone())
        );
    }
    check_eq!(s.certificate(a.id, &late.serial).await?, None);
    check_eq!(actions(s, a.id).await?, before);

    let (new, new_cert) = signer(&ca_a, now() + Duration::days(700));
    check_eq!(
        s.create_profile_signer(
            &new,
            &new_cert,
            &certificate_audit(&new_cert),
            Some(&old.serial)
        )
        .await?,
        SignerStored::Stored
    );
    check_eq!(s.profile_signer(a.id, ca_a.id).await?, Some(new.clone()));

    // Revoked, the longest-lasting signer gives way to the one before it.
    s.revoke_certificate(a.id, &new.serial, now(), &certificate_audit(&new_cert))
        .await?;
    check_eq!(s.profile_signer(a.id, ca_a.id).await?, Some(old.clone()));

    // A serial that exists: refused, and neither signer, certificate nor
    // audit entry written.
    let before = actions(s, a.id).await?;
    let (mut clash, clash_cert) = signer(&ca_a, now() + Duration::days(900));
    clash.serial = old.serial.clone();
    let clash_cert = CertificateRecord {
        serial: old.serial.clone(),
        ..clash_cert
    };
    let result = s
        .create_profile_signer(
            &clash,
            &clash_cert,
            &certificate_audit(&clash_cert),
            Some(&old.serial),
        )
        .await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("certificate_serial"))),
        "a signer with a used serial: {result:?}"
    );
    check_eq!(s.profile_signer(a.id, ca_a.id).await?, Some(old.clone()));
    check_eq!(actions(s, a.id).await?, before);

    // Scoped to the tenant and to the CA.
    check_eq!(s.profile_signer(b.id, ca_a.id).await?, None);
    let rotated = CaRecord {
        active: false,
        ..ca(a.id)
    };
    s.create_ca(&rotated, &ca_audit(&rotated)).await?;
    check_eq!(s.profile_signer(a.id, rotated.id).await?, None);
    Ok(())
}

/// Two requests that both found no signer store theirs at the same moment:
/// one is stored, the other gets it back, and the tenant has one signer
/// certificate and one audit entry.
pub async fn profile_signer_concurrent_first_use(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let t = new_tenant(s).await?;
    let ca = new_ca(s, t.id).await?;
    let before = actions(s, t.id).await?;
    let (one, one_cert) = signer(&ca, now() + Duration::days(700));
    let (two, two_cert) = signer(&ca, now() + Duration::days(700));
    let (one_audit, two_audit) = (certificate_audit(&one_cert), certificate_audit(&two_cert));
    let (first, second) = tokio::join!(
        s.create_profile_signer(&one, &one_cert, &one_audit, None),
        s.create_profile_signer(&two, &two_cert, &two_audit, None),
    );
    let (winner, raced) = match (first?, second?) {
        (SignerStored::Stored, SignerStored::Raced(r)) => (one.clone(), r),
        (SignerStored::Raced(r), SignerStored::Stored) => (two.clone(), r),
        other => anyhow::bail!("two first uses of a tenant's signer: {other:?}"),
    };
    check_eq!(raced, winner.clone());
    check_eq!(s.profile_signer(t.id, ca.id).await?, Some(winner.clone()));
    let loser = if winner.serial == one.serial {
        &two
    } else {
        &one
    };
    check_eq!(s.certificate(t.id, &loser.serial).await?, None);
    let mut after = actions(s, t.id).await?;
    anyhow::ensure!(after.len() == before.len() + 1, "audit entries: {after:?}");
    check_eq!(after.pop(), Some("certificate.issued".to_string()));
    Ok(())
}

/// A clock the test moves.
struct MovableClock(std::sync::Mutex<OffsetDateTime>);

impl mdm_core::ports::Clock for MovableClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Through `Core::issue_profile` on this store, with a clock the test
/// moves: the first profile makes the tenant's signer, later ones reuse it,
/// and a profile issued within 30 days of the signer's end brings a new one
/// that lasts its full validity.
pub async fn profile_signer_renewal(ctx: Ctx) -> anyhow::Result<()> {
    use mdm_core::profile_signer::{SIGNER_RENEW_BEFORE, SIGNER_VALIDITY};
    use mdm_core::profiles::{ApplePlatform, NewProfile};
    use mdm_pki::CertificateExt;
    let s = ctx.store.clone();
    let t = new_tenant(&s).await?;
    let t0 = now();
    let clock = Arc::new(MovableClock(std::sync::Mutex::new(t0)));
    let core = crate::support::core_on(s.clone(), clock.clone())?;
    let at = |when: OffsetDateTime| *clock.0.lock().unwrap() = when;
    let signer_of = || async {
        let issued = core
            .issue_profile(
                &mdm_core::tokens::Actor::Cli,
                &t,
                &NewProfile {
                    platform: ApplePlatform::Ios,
                    user_id: None,
                    registration: None,
                },
            )
            .await?;
        let signer = mdm_pki::verify_signed_data(&issued.signed, None, &[])
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .signer;
        anyhow::Ok((signer.serial_hex(), signer.not_after()?))
    };

    let (first, first_end) = signer_of().await?;
    check_eq!(
        first_end.unix_timestamp(),
        (t0 + SIGNER_VALIDITY).unix_timestamp()
    );
    at(t0 + Duration::days(1));
    check_eq!(signer_of().await?.0, first);
    // Just outside the renewal window: still the same signer.
    at(first_end - SIGNER_RENEW_BEFORE - Duration::hours(1));
    check_eq!(signer_of().await?.0, first);
    // Inside it: a new one, valid for its full term from now.
    let renew_at = first_end - SIGNER_RENEW_BEFORE + Duration::hours(1);
    at(renew_at);
    let (second, second_end) = signer_of().await?;
    anyhow::ensure!(second != first, "a due signer was used again");
    check_eq!(
        second_end.unix_timestamp(),
        (renew_at + SIGNER_VALIDITY).unix_timestamp()
    );
    at(renew_at + Duration::days(2));
    check_eq!(signer_of().await?.0, second);
    let ca = s
        .active_ca(t.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no CA"))?;
    check_eq!(
        s.profile_signer(t.id, ca.id).await?.map(|r| r.serial),
        Some(second)
    );
    let issued = actions(&s, t.id).await?;
    check_eq!(
        issued.iter().filter(|a| *a == "certificate.issued").count(),
        2
    );
    Ok(())
}

/// An uploaded signing identity of `tenant` (`seed` varies its bytes), not yet stored.
pub fn signing_identity(tenant: TenantId, seed: u8) -> SigningIdentityRecord {
    SigningIdentityRecord {
        tenant_id: tenant,
        cert_der: blob(seed, 900),
        chain_pem: if seed.is_multiple_of(2) {
            String::new()
        } else {
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".into()
        },
        sealed_key: blob(seed.wrapping_add(1), 200),
        fingerprint_sha256: hex(32),
        subject: format!("CN=Signing {seed},O=Conformance"),
        issuer: "CN=Public Issuing CA".into(),
        key_kind: "ECDSA P-256".into(),
        not_before: now() - Duration::days(1),
        not_after: now() + Duration::days(365),
        uploaded_at: now(),
        uploaded_by: "token conformance".into(),
    }
}

pub fn signing_identity_audit(r: &SigningIdentityRecord, action: AuditAction) -> AuditEntry {
    entry(
        Some(r.tenant_id),
        action,
        ("signing_identity", r.fingerprint_sha256.clone()),
    )
}

/// One uploaded signing identity per tenant: stored with its audit entry,
/// replaced whole by the next upload, deleted with its audit entry, and
/// never seen from another tenant; deleting none writes nothing.
pub async fn signing_identities(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    check_eq!(s.signing_identity(a.id).await?, None);
    let first = signing_identity(a.id, 3);
    s.put_signing_identity(
        &first,
        &signing_identity_audit(&first, AuditAction::SigningIdentityUploaded),
    )
    .await?;
    check_eq!(s.signing_identity(a.id).await?, Some(first.clone()));
    check_eq!(s.signing_identity(b.id).await?, None);

    let second = signing_identity(a.id, 4);
    s.put_signing_identity(
        &second,
        &signing_identity_audit(&second, AuditAction::SigningIdentityUploaded),
    )
    .await?;
    check_eq!(s.signing_identity(a.id).await?, Some(second.clone()));

    let other = signing_identity(b.id, 5);
    s.put_signing_identity(
        &other,
        &signing_identity_audit(&other, AuditAction::SigningIdentityUploaded),
    )
    .await?;
    // The expiry gauge's read: every tenant's identity, by slug.
    let expiries = s.signing_identity_expiries().await?;
    let mine = |slug: &str| {
        expiries
            .iter()
            .filter(|(t, _)| t == slug)
            .map(|(_, at)| *at)
            .collect::<Vec<_>>()
    };
    check_eq!(mine(&a.slug), vec![second.not_after]);
    check_eq!(mine(&b.slug), vec![other.not_after]);
    let removed = signing_identity_audit(&second, AuditAction::SigningIdentityRemoved);
    s.delete_signing_identity(a.id, &removed).await?;
    let expiries = s.signing_identity_expiries().await?;
    anyhow::ensure!(
        !expiries.iter().any(|(t, _)| *t == a.slug),
        "a removed identity has no expiry"
    );
    check_eq!(s.signing_identity(a.id).await?, None);
    check_eq!(s.signing_identity(b.id).await?, Some(other));
    let before = actions(s, a.id).await?;
    match s.delete_signing_identity(a.id, &removed).await {
        Err(StoreError::NotFound) => {}
        other => anyhow::bail!("deleting none: {other:?}"),
    }
    check_eq!(actions(s, a.id).await?, before.clone());
    check_eq!(
        before,
        vec![
            "tenant.created".to_string(),
            "signing_identity.uploaded".into(),
            "signing_identity.uploaded".into(),
            "signing_identity.removed".into(),
        ]
    );
    Ok(())
}

/// An uploaded signing identity signs profiles while it is valid; once it has
/// expired the tenant's own signer signs them (enrolment does not stop), the
/// identity shows as not in use, and an expired one cannot be uploaded.
pub async fn signing_identity_expiry_falls_back(ctx: Ctx) -> anyhow::Result<()> {
    use mdm_core::profiles::{ApplePlatform, NewProfile};
    use mdm_core::signing_identity::NewSigningIdentity;
    let s = ctx.store.clone();
    let t = new_tenant(&s).await?;
    let t0 = now();
    let clock = Arc::new(MovableClock(std::sync::Mutex::new(t0)));
    let core = crate::support::core_on(s.clone(), clock.clone())?;
    let at = |when: OffsetDateTime| *clock.0.lock().unwrap() = when;
    let actor = mdm_core::tokens::Actor::Cli;
    let signer_of = || async {
        let issued = core
            .issue_profile(
                &actor,
                &t,
                &NewProfile {
                    platform: ApplePlatform::Ios,
                    user_id: None,
                    registration: None,
                },
            )
            .await?;
        let signer = mdm_pki::verify_signed_data(&issued.signed, None, &[])
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .signer;
        anyhow::Ok(signer)
    };

    // A root outside the server and a P-256 signer it certifies for 10 days.
    let root_key = mdm_pki::RsaKey::generate(2048)?;
    let root = mdm_pki::self_signed_ca(
        &root_key,
        "CN=Outside Root",
        &[7],
        t0 - Duration::days(1),
        t0 + Duration::days(365),
    )?;
    let key = mdm_pki::EcKey::generate()?;
    let leaf = mdm_pki::issue_content_signer(
        &root_key,
        &root,
        "CN=Uploaded Signing,O=Conformance",
        key.public_key_spki().clone(),
        &[8],
        t0 - Duration::hours(1),
        t0 + Duration::days(10),
    )?;
    let upload = NewSigningIdentity {
        certificate_pem: Some(format!(
            "{}{}",
            mdm_pki::cert_to_pem(&leaf)?,
            mdm_pki::cert_to_pem(&root)?
        )),
        private_key_pem: Some(mdm_pki::der::pem::encode_string(
            "PRIVATE KEY",
            mdm_pki::der::pem::LineEnding::LF,
            &key.to_pkcs8_der()?,
        )?),
        pkcs12_base64: None,
        password: None,
    };
    let info = core.set_signing_identity(&actor, &t, &upload).await?;
    anyhow::ensure!(info.in_use && info.chain.is_empty(), "uploaded: {info:?}");
    check_eq!(signer_of().await?, leaf.clone());

    at(t0 + Duration::days(11));
    let fallback = signer_of().await?;
    anyhow::ensure!(fallback != leaf, "an expired identity still signs");
    let ca = s
        .active_ca(t.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no CA"))?;
    let ca_cert = mdm_pki::cert_from_der(&ca.cert_der)?;
    mdm_pki::verify_issued_by(&fallback, &ca_cert)?;
    check_eq!(core.signing_identity(&actor, &t).await?.in_use, false);
    let info = core.ca_info(&actor, &t).await?;
    check_eq!(info.profiles_signed_by, "profile_signer");
    match core.set_signing_identity(&actor, &t, &upload).await {
        Err(mdm_core::CoreError::Invalid { message, .. }) if message.contains("expired on") => {}
        other => anyhow::bail!("an expired upload: {:?}", other.map(|i| i.subject)),
    }
    Ok(())
}
