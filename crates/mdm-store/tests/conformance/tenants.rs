//! Tenants, settings and the versioned enrollment URL.

use crate::check_eq;
use crate::support::{Ctx, actions, entry, hex, new_tenant, now, tenant_fixture};
use mdm_core::StoreError;
use mdm_core::audit::AuditAction;
use mdm_core::enrollment::EnrollmentUrlVersion;
use mdm_core::ids::TenantId;
use mdm_core::ports::TenantStore;
use mdm_core::secrets::sha256_hex;
use mdm_core::settings::UserSettings;

pub async fn create_get_list(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let (tenant, settings, url) = tenant_fixture();
    let audit = entry(
        Some(tenant.id),
        AuditAction::TenantCreated,
        ("tenant", tenant.id.to_string()),
    );
    s.create_tenant(&tenant, &settings, &url, &audit).await?;
    let other = new_tenant(s).await?;

    check_eq!(s.tenant(tenant.id).await?, Some(tenant.clone()));
    check_eq!(s.tenant_by_slug(&tenant.slug).await?, Some(tenant.clone()));
    check_eq!(s.tenant(TenantId::new()).await?, None);
    check_eq!(s.tenant_by_slug(&format!("none-{}", hex(8))).await?, None);
    let all = s.tenants().await?;
    anyhow::ensure!(
        all.contains(&tenant) && all.contains(&other),
        "tenants() lists both new tenants"
    );
    anyhow::ensure!(
        all.windows(2).all(|w| w[0].slug < w[1].slug),
        "tenants() is ordered by slug"
    );

    check_eq!(s.settings(tenant.id).await?, settings);
    check_eq!(s.current_enrollment_url(tenant.id).await?, url);
    check_eq!(s.enrollment_url_version(tenant.id, 1).await?, Some(url));
    anyhow::ensure!(matches!(
        s.settings(TenantId::new()).await,
        Err(StoreError::NotFound)
    ));
    anyhow::ensure!(matches!(
        s.current_enrollment_url(TenantId::new()).await,
        Err(StoreError::NotFound)
    ));
    check_eq!(actions(s, tenant.id).await?, vec!["tenant.created"]);
    Ok(())
}

pub async fn duplicate_slug(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let first = new_tenant(s).await?;
    let (mut second, settings, url) = tenant_fixture();
    second.slug = first.slug.clone();
    let audit = entry(
        Some(second.id),
        AuditAction::TenantCreated,
        ("tenant", second.id.to_string()),
    );
    let result = s.create_tenant(&second, &settings, &url, &audit).await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::Conflict("tenant_slug"))),
        "got {result:?}"
    );
    check_eq!(s.tenant(second.id).await?, None);
    check_eq!(s.tenant_by_slug(&first.slug).await?, Some(first));
    check_eq!(actions(s, second.id).await?, Vec::<String>::new());
    Ok(())
}

pub async fn settings_read_update(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    check_eq!(s.settings(tenant.id).await?, UserSettings::default());
    let changed = UserSettings {
        pin_required: true,
        pin_lifetime_secs: 3600,
        temporary_password: true,
        profile_validity_secs: 480,
        qr_registration: false,
        reminder_interval_secs: 3600,
        reminder_max: 5,
        reminder_email: false,
        reminder_push: true,
    };
    let audit = entry(
        Some(tenant.id),
        AuditAction::SettingsUpdated,
        ("settings", tenant.id.to_string()),
    );
    s.update_settings(tenant.id, &changed, &audit).await?;
    check_eq!(s.settings(tenant.id).await?, changed);

    let ghost = TenantId::new();
    let audit = entry(
        Some(ghost),
        AuditAction::SettingsUpdated,
        ("settings", ghost.to_string()),
    );
    let result = s.update_settings(ghost, &changed, &audit).await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::NotFound)),
        "got {result:?}"
    );
    check_eq!(actions(s, ghost).await?, Vec::<String>::new());
    check_eq!(
        actions(s, tenant.id).await?,
        vec!["tenant.created", "settings.updated"]
    );
    Ok(())
}

fn version(v: i64) -> EnrollmentUrlVersion {
    let secret = hex(20);
    EnrollmentUrlVersion {
        version: v,
        secret_hash: sha256_hex(&secret),
        secret: Some(secret),
        created_at: now(),
        retired_at: None,
    }
}

fn rotated(tenant: TenantId) -> mdm_core::audit::AuditEntry {
    entry(
        Some(tenant),
        AuditAction::EnrollmentUrlRegenerated,
        ("enrollment_url", tenant.to_string()),
    )
}

pub async fn enrollment_url_rotation(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let v1 = s.current_enrollment_url(tenant.id).await?;
    let v2 = version(2);
    s.rotate_enrollment_url(tenant.id, &v2, &rotated(tenant.id))
        .await?;
    check_eq!(s.current_enrollment_url(tenant.id).await?, v2);
    let old = s
        .enrollment_url_version(tenant.id, 1)
        .await?
        .ok_or_else(|| anyhow::anyhow!("v1 is gone"))?;
    check_eq!(old.secret, None);
    check_eq!(old.secret_hash, v1.secret_hash);
    check_eq!(old.retired_at, Some(v2.created_at));
    check_eq!(s.enrollment_url_version(tenant.id, 3).await?, None);

    for wrong in [1, 2, 4] {
        let result = s
            .rotate_enrollment_url(tenant.id, &version(wrong), &rotated(tenant.id))
            .await;
        anyhow::ensure!(
            matches!(result, Err(StoreError::Conflict("enrollment_url_version"))),
            "v{wrong}: {result:?}"
        );
    }
    check_eq!(s.current_enrollment_url(tenant.id).await?, v2);
    let ghost = TenantId::new();
    let result = s
        .rotate_enrollment_url(ghost, &version(2), &rotated(ghost))
        .await;
    anyhow::ensure!(
        matches!(result, Err(StoreError::NotFound)),
        "unknown tenant: {result:?}"
    );
    check_eq!(
        actions(s, tenant.id).await?,
        vec!["tenant.created", "enrollment_url.regenerated"]
    );
    Ok(())
}

pub async fn concurrent_rotation_one_wins(ctx: Ctx) -> anyhow::Result<()> {
    let s = ctx.store.clone();
    let tenant = new_tenant(&s).await?;
    for round in 2..=6 {
        let (a, b) = (version(round), version(round));
        let (ra, rb) = {
            let (s1, s2, a2, b2) = (s.clone(), s.clone(), a.clone(), b.clone());
            let t = tenant.id;
            let ja =
                tokio::spawn(async move { s1.rotate_enrollment_url(t, &a2, &rotated(t)).await });
            let jb =
                tokio::spawn(async move { s2.rotate_enrollment_url(t, &b2, &rotated(t)).await });
            (ja.await?, jb.await?)
        };
        let winner = match (&ra, &rb) {
            (Ok(()), Err(StoreError::Conflict("enrollment_url_version"))) => a,
            (Err(StoreError::Conflict("enrollment_url_version")), Ok(())) => b,
            other => anyhow::bail!("round {round}: exactly one rotation must win, got {other:?}"),
        };
        check_eq!(s.current_enrollment_url(tenant.id).await?, winner);
        let previous = s.enrollment_url_version(tenant.id, round - 1).await?;
        anyhow::ensure!(
            previous.is_some_and(|p| p.secret.is_none() && p.retired_at.is_some()),
            "round {round}"
        );
    }
    let regenerated = actions(&s, tenant.id)
        .await?
        .iter()
        .filter(|a| *a == "enrollment_url.regenerated")
        .count();
    check_eq!(regenerated, 5);
    Ok(())
}
