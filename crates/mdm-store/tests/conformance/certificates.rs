//! Issued certificates: recording, uniqueness per tenant, listing with
//! filters and keyset paging, revocation.

use crate::check_eq;
use crate::pki::{blob, certificate, certificate_audit, new_ca};
use crate::support::{Ctx, actions, entry, hex, new_tenant, now};
use mdm_core::StoreError;
use mdm_core::audit::{AuditAction, AuditEntry};
use mdm_core::ids::TenantId;
use mdm_core::pki::{CaRecord, CertificateQuery, CertificateRecord};
use mdm_core::ports::PkiStore;
use mdm_store::SqlStore;
use std::cmp::Reverse;
use time::{Duration, OffsetDateTime};

async fn record(s: &SqlStore, c: &CertificateRecord) -> anyhow::Result<()> {
    s.record_certificate(c, &certificate_audit(c)).await?;
    Ok(())
}

fn revoked(tenant: TenantId, serial: &str) -> AuditEntry {
    entry(
        Some(tenant),
        AuditAction::CertificateRevoked,
        ("certificate", serial.to_string()),
    )
}

pub async fn round_trip_and_uniqueness(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let (ca_a, ca_b) = (new_ca(s, a.id).await?, new_ca(s, b.id).await?);
    let t = now();
    let full = CertificateRecord {
        registration: Some(format!("reg-{}", hex(8))),
        device_id: Some(format!("device-{}", hex(8))),
        renewal_of: Some(hex(32)),
        revoked_at: Some(t + Duration::milliseconds(1234)),
        cert_der: (0..=255u8).chain(blob(9, 3000)).collect(),
        subject: "CN=Ünïcode \"quoted\", O=Example\\, Inc.".into(),
        ..certificate(&ca_a, &hex(32), t)
    };
    let bare = certificate(&ca_a, &hex(32), t - Duration::milliseconds(1));
    record(s, &full).await?;
    record(s, &bare).await?;
    check_eq!(s.certificate(a.id, &full.serial).await?, Some(full.clone()));
    check_eq!(s.certificate(a.id, &bare.serial).await?, Some(bare.clone()));
    check_eq!(s.certificate(a.id, &hex(32)).await?, None);
    check_eq!(s.certificate(b.id, &full.serial).await?, None);

    // A serial is unique in its tenant: the clash writes nothing.
    let clash = CertificateRecord {
        subject: "CN=impostor".into(),
        ..certificate(&ca_a, &full.serial, now())
    };
    let result = s
        .record_certificate(&clash, &certificate_audit(&clash))
        .await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("certificate_serial"))),
        "duplicate serial: {result:?}"
    );
    check_eq!(s.certificate(a.id, &full.serial).await?, Some(full.clone()));
    check_eq!(
        actions(s, a.id).await?,
        [
            "tenant.created",
            "ca.created",
            "certificate.issued",
            "certificate.issued"
        ]
    );

    // … but the same serial is another certificate in another tenant.
    let twin = certificate(&ca_b, &full.serial, t);
    record(s, &twin).await?;
    check_eq!(s.certificate(b.id, &full.serial).await?, Some(twin));
    check_eq!(s.certificate(a.id, &full.serial).await?, Some(full));
    check_eq!(
        actions(s, b.id).await?,
        ["tenant.created", "ca.created", "certificate.issued"]
    );
    Ok(())
}

/// Every serial matching `query`, following `next` cursors; also the page count.
async fn walk(
    s: &SqlStore,
    tenant: TenantId,
    query: CertificateQuery,
) -> anyhow::Result<(Vec<String>, usize)> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000) as usize;
    let (mut serials, mut pages, mut after) = (Vec::new(), 0, None);
    loop {
        let page = s
            .certificates(
                tenant,
                &CertificateQuery {
                    after: after.take(),
                    ..query.clone()
                },
            )
            .await?;
        pages += 1;
        anyhow::ensure!(page.items.len() <= limit, "page too long");
        serials.extend(page.items.iter().map(|c| c.serial.clone()));
        match page.next {
            Some(next) => {
                anyhow::ensure!(page.items.len() == limit, "short page with a next cursor");
                after = Some(next);
            }
            None => return Ok((serials, pages)),
        }
        anyhow::ensure!(pages < 1000, "paging does not end");
    }
}

/// 40 certificates of `ca`: seven groups issued at the same millisecond,
/// three registrations, devices on every other one, every 5th revoked.
async fn population(
    s: &SqlStore,
    ca: &CaRecord,
    t0: OffsetDateTime,
) -> anyhow::Result<Vec<CertificateRecord>> {
    let mut certs = Vec::new();
    for i in 0..40i64 {
        let serial = if i % 6 == 0 { hex(30) } else { hex(32) };
        let c = CertificateRecord {
            registration: (i % 8 != 7).then(|| format!("reg-{}", i % 3)),
            device_id: (i % 2 == 0).then(|| format!("device-{}", i % 4)),
            revoked_at: (i % 5 == 0).then(|| t0 + Duration::minutes(i)),
            ..certificate(ca, &serial, t0 - Duration::seconds(i % 7))
        };
        record(s, &c).await?;
        certs.push(c);
    }
    // Newest first; equal times by serial, descending.
    certs.sort_by_key(|c| Reverse((c.issued_at, c.serial.clone())));
    Ok(certs)
}

pub async fn filters_and_paging(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let t0 = now();
    let certs = population(s, &new_ca(s, tenant.id).await?, t0).await?;
    // A neighbour with the same registrations and devices, never listed.
    let neighbour = new_tenant(s).await?;
    population(s, &new_ca(s, neighbour.id).await?, t0).await?;

    let expect = |f: &dyn Fn(&CertificateRecord) -> bool| {
        certs
            .iter()
            .filter(|c| f(c))
            .map(|c| c.serial.clone())
            .collect::<Vec<_>>()
    };
    let q = |limit: u32| CertificateQuery {
        limit: Some(limit),
        ..Default::default()
    };
    let first = s
        .certificates(tenant.id, &CertificateQuery::default())
        .await?;
    check_eq!((&first.items, first.next), (&certs, None));
    check_eq!(walk(s, tenant.id, q(4)).await?, (expect(&|_| true), 10));
    check_eq!(walk(s, tenant.id, q(3)).await?, (expect(&|_| true), 14));
    check_eq!(walk(s, tenant.id, q(1)).await?.0, expect(&|_| true));

    let reg = |r: &str| CertificateQuery {
        registration: Some(r.into()),
        limit: Some(2),
        ..Default::default()
    };
    let has = |v: &Option<String>, want: &str| v.as_deref() == Some(want);
    check_eq!(
        walk(s, tenant.id, reg("reg-1")).await?.0,
        expect(&|c| has(&c.registration, "reg-1"))
    );
    check_eq!(walk(s, tenant.id, reg("reg-x")).await?, (vec![], 1));
    let device = CertificateQuery {
        device_id: Some("device-2".into()),
        limit: Some(2),
        ..Default::default()
    };
    check_eq!(
        walk(s, tenant.id, device).await?.0,
        expect(&|c| has(&c.device_id, "device-2"))
    );
    for valid in [true, false] {
        let query = CertificateQuery {
            valid: Some(valid),
            limit: Some(3),
            ..Default::default()
        };
        check_eq!(
            walk(s, tenant.id, query).await?.0,
            expect(&|c| c.revoked_at.is_none() == valid)
        );
    }
    let mixed = CertificateQuery {
        registration: Some("reg-0".into()),
        device_id: Some("device-0".into()),
        valid: Some(false),
        limit: Some(1),
        ..Default::default()
    };
    let matching = expect(&|c| {
        has(&c.registration, "reg-0") && has(&c.device_id, "device-0") && c.revoked_at.is_some()
    });
    anyhow::ensure!(!matching.is_empty(), "the fixture matches nothing");
    check_eq!(walk(s, tenant.id, mixed).await?.0, matching);

    let one = s.certificates(tenant.id, &q(0)).await?;
    check_eq!(one.items.len(), 1);
    anyhow::ensure!(one.next.is_some(), "limit 0 is one item of many");
    let all = s.certificates(tenant.id, &q(5000)).await?;
    check_eq!((all.items.len(), all.next), (40, None));
    Ok(())
}

pub async fn equal_times_page_by_serial(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let ca = new_ca(s, tenant.id).await?;
    let t = now();
    let mut serials = Vec::new();
    for i in 0..11 {
        let serial = format!("{:02x}{}", i * 23, hex(6));
        record(s, &certificate(&ca, &serial, t)).await?;
        serials.push(serial);
    }
    let newer = certificate(&ca, &hex(8), t + Duration::milliseconds(1));
    let older = certificate(&ca, &hex(8), t - Duration::milliseconds(1));
    record(s, &newer).await?;
    record(s, &older).await?;
    serials.sort_by(|a, b| b.cmp(a));
    let expected = [vec![newer.serial], serials, vec![older.serial]].concat();
    for limit in [1, 2, 3, 5, 12, 13] {
        let query = CertificateQuery {
            limit: Some(limit),
            ..Default::default()
        };
        check_eq!(
            (limit, walk(s, tenant.id, query).await?.0),
            (limit, expected.clone())
        );
    }
    Ok(())
}

pub async fn limit_is_clamped(ctx: Ctx) -> anyhow::Result<()> {
    const N: usize = 1003;
    let s = ctx.store.clone();
    let tenant = new_tenant(&s).await?;
    let ca = new_ca(&s, tenant.id).await?;
    let t0 = now();
    let mut writers = tokio::task::JoinSet::new();
    for w in 0..4 {
        let (s, ca) = (s.clone(), ca.clone());
        writers.spawn(async move {
            for i in (w..N).step_by(4) {
                let c = certificate(&ca, &format!("{i:04x}"), t0 - Duration::seconds(i as i64));
                s.record_certificate(&c, &certificate_audit(&c)).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = writers.join_next().await {
        done??;
    }
    let big = CertificateQuery {
        limit: Some(5000),
        ..Default::default()
    };
    let page = s.certificates(tenant.id, &big).await?;
    check_eq!(page.items.len(), 1000);
    check_eq!(page.items.last().map(|c| c.serial.as_str()), Some("03e7"));
    let rest = CertificateQuery {
        after: page.next,
        ..big
    };
    let page = s.certificates(tenant.id, &rest).await?;
    let serials = page
        .items
        .iter()
        .map(|c| c.serial.as_str())
        .collect::<Vec<_>>();
    check_eq!((serials, page.next), (vec!["03e8", "03e9", "03ea"], None));
    let default = s
        .certificates(tenant.id, &CertificateQuery::default())
        .await?;
    check_eq!(default.items.len(), 100);
    anyhow::ensure!(default.next.is_some(), "default page has a next cursor");
    for bad in ["garbage", "12", ".ab", "x.ab"] {
        let q = CertificateQuery {
            after: Some(bad.into()),
            ..CertificateQuery::default()
        };
        let result = s.certificates(tenant.id, &q).await;
        anyhow::ensure!(
            matches!(result, Err(StoreError::BadCursor)),
            "cursor {bad:?}: {:?}",
            result.map(|p| p.items.len())
        );
    }
    Ok(())
}

pub async fn revocation(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (a, b) = (new_tenant(s).await?, new_tenant(s).await?);
    let ca = new_ca(s, a.id).await?;
    let cert = certificate(&ca, &hex(32), now());
    let kept = certificate(&ca, &hex(32), now());
    record(s, &cert).await?;
    record(s, &kept).await?;

    let first = now() + Duration::milliseconds(7);
    s.revoke_certificate(a.id, &cert.serial, first, &revoked(a.id, &cert.serial))
        .await?;
    let expected = CertificateRecord {
        revoked_at: Some(first),
        ..cert.clone()
    };
    check_eq!(
        s.certificate(a.id, &cert.serial).await?,
        Some(expected.clone())
    );
    check_eq!(s.certificate(a.id, &kept.serial).await?, Some(kept.clone()));
    let audited = [
        "tenant.created",
        "ca.created",
        "certificate.issued",
        "certificate.issued",
        "certificate.revoked",
    ];
    check_eq!(actions(s, a.id).await?, audited);

    // Another tenant's serial, or an unknown one: not found, nothing written.
    for (tenant, serial) in [(b.id, &kept.serial), (a.id, &hex(32))] {
        let result = s
            .revoke_certificate(tenant, serial, now(), &revoked(tenant, serial))
            .await;
        anyhow::ensure!(
            matches!(result, Err(StoreError::NotFound)),
            "revoke {serial} in {tenant}: {result:?}"
        );
    }
    check_eq!(s.certificate(a.id, &kept.serial).await?, Some(kept.clone()));
    check_eq!(actions(s, a.id).await?, audited);
    check_eq!(actions(s, b.id).await?, vec!["tenant.created"]);

    // Revoking again keeps the first time.
    s.revoke_certificate(
        a.id,
        &cert.serial,
        first + Duration::hours(1),
        &revoked(a.id, &cert.serial),
    )
    .await?;
    check_eq!(
        s.certificate(a.id, &cert.serial).await?,
        Some(expected.clone())
    );
    let valid = |valid| CertificateQuery {
        valid: Some(valid),
        ..Default::default()
    };
    check_eq!(s.certificates(a.id, &valid(true)).await?.items, vec![kept]);
    check_eq!(
        s.certificates(a.id, &valid(false)).await?.items,
        vec![expected]
    );
    Ok(())
}
