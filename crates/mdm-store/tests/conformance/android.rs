//! The Android store on both backends: a registration with its entry,
//! certificate and R16 command; correlation by key; the nonce consumed in
//! the change's transaction (a replay is refused and writes nothing); a
//! result recorded once; a stale plan refused; deletion.

use crate::pki;
use crate::support::{Ctx, hex, new_tenant, now, user};
use mdm_core::StoreError;
use mdm_core::android::{
    AndroidChange, AndroidCommand, AndroidCommandState, AndroidDevice, AndroidKey, AndroidKeyKind,
    AndroidRegistration, NonceUse, ResultUpdate,
};
use mdm_core::audit::{AuditAction, AuditEntry};
use mdm_core::devices::{Device, DeviceStatus};
use mdm_core::ids::{DeviceId, TenantId};
use mdm_core::ports::{AndroidStore, PkiStore, UserStore};
use mdm_core::registrations::{DevicePlatform, Registration, RegistrationPurpose};
use mdm_core::tokens::Actor;
use mdm_store::SqlStore;

fn keys(imei: &str) -> Vec<AndroidKey> {
    vec![AndroidKey {
        kind: AndroidKeyKind::Imei,
        value: imei.to_string(),
    }]
}

/// Registers one new Android entry for a fresh user; returns its id.
pub async fn register_one(s: &SqlStore, tenant: TenantId, imei: &str) -> anyhow::Result<DeviceId> {
    let u = user(tenant, &format!("{}@example.com", hex(8)));
    s.create_users(std::slice::from_ref(&u), &[]).await?;
    let ca = match s.active_ca(tenant).await? {
        Some(ca) => ca,
        None => pki::new_ca(s, tenant).await?,
    };
    let t = now();
    let id = DeviceId::new();
    let device = Device {
        id,
        tenant_id: tenant,
        user_id: Some(u.id),
        platform: DevicePlatform::Android,
        status: DeviceStatus::Active,
        shown_status: DeviceStatus::Active,
        udid: None,
        serial_number: Some("S1".into()),
        model: Some("Pixel 7".into()),
        model_name: None,
        product_name: None,
        os_version: Some("13".into()),
        build_version: None,
        device_name: None,
        enrolled_at: Some(t),
        last_seen_at: Some(t),
        created_at: t,
        updated_at: t,
    };
    let mut registration = Registration::new(
        tenant,
        DevicePlatform::Android,
        RegistrationPurpose::Enroll,
        t,
    );
    registration.device_id = Some(id);
    let mut certificate = pki::certificate(&ca, &hex(32), t);
    certificate.device_id = Some(id.to_string());
    let android = AndroidDevice {
        tenant_id: tenant,
        device_id: id,
        registration_id: Some(registration.id.clone()),
        management_mode: mdm_android::ManagementMode::FullyManaged,
        api_level: 33,
        manufacturer: "Google".into(),
        public_key: pki::blob(3, 270),
        cert_serial: Some(certificate.serial.clone()),
        cert_fingerprint: Some(hex(64)),
        identity_key: format!("imei:{imei}"),
        matched_key: None,
        enterprise_specific_id: None,
        imei: Some(imei.into()),
        meid: None,
        serial: Some("S1".into()),
        android_id: Some("abcd".into()),
        current: true,
        enabled: true,
        fcm_token: Some("tok:1".into()),
        fcm_token_dead_at: None,
        last_push_at: None,
        last_push_outcome: None,
        checkin: serde_json::json!({"status": {}}),
        last_checkin_at: Some(t),
        created_at: t,
        updated_at: t,
    };
    let command = AndroidCommand {
        tenant_id: tenant,
        id: uuid::Uuid::new_v4().to_string(),
        device_id: id,
        kind: "remove_ca_certificates".into(),
        payload: serde_json::json!({"type": "remove_ca_certificates"}),
        state: AndroidCommandState::Queued,
        ack_device_status: None,
        queued_by: "system".into(),
        created_at: t,
        sent_at: None,
        result_at: None,
        result: serde_json::json!({"note": 1}),
    };
    let audit = AuditEntry::new(
        Some(tenant),
        t,
        &Actor::System,
        AuditAction::DeviceRegistered,
        ("device", id.to_string()),
    )
    .device(id);
    let reg = AndroidRegistration {
        tenant_id: tenant,
        keys: keys(imei),
        expected: s.android_correlate(tenant, &keys(imei)).await?,
        device,
        device_is_new: true,
        android,
        retire: Vec::new(),
        registration,
        continues_open: false,
        certificate,
        commands: vec![command],
    };
    s.apply_android_registration(&reg, &[audit]).await?;
    // A plan made before this registration is stale now.
    let stale = AndroidRegistration {
        expected: None,
        ..reg
    };
    anyhow::ensure!(
        matches!(
            s.apply_android_registration(&stale, &[]).await,
            Err(StoreError::Conflict("android_registration_raced"))
        ),
        "a stale plan is refused"
    );
    // Leave a nonce behind, as a served request does.
    let mut change = AndroidChange::new(tenant, id);
    change.nonce = Some(NonceUse {
        nonce: hex(16),
        expires_at: t + time::Duration::minutes(5),
        now: t,
    });
    s.apply_android_change(&change, &[]).await?;
    Ok(id)
}

pub async fn android_registration_nonce_and_results(ctx: Ctx) -> anyhow::Result<()> {
    let s = &*ctx.store;
    let tenant = new_tenant(s).await?;
    let id = register_one(s, tenant.id, "350000000000001").await?;
    let found = s
        .android_correlate(tenant.id, &keys("350000000000001"))
        .await?;
    anyhow::ensure!(
        found
            .as_ref()
            .is_some_and(|c| c.kind == AndroidKeyKind::Imei
                && c.entries.len() == 1
                && c.entries[0].device_id == id),
        "{found:?}"
    );
    let other = new_tenant(s).await?;
    anyhow::ensure!(
        s.android_correlate(other.id, &keys("350000000000001"))
            .await?
            .is_none(),
        "scoped by tenant"
    );
    anyhow::ensure!(
        s.android_device(other.id, id).await?.is_none(),
        "scoped by tenant"
    );
    let t = now();
    let nonce = NonceUse {
        nonce: hex(16),
        expires_at: t + time::Duration::minutes(5),
        now: t,
    };
    let mut fetch = AndroidChange::new(tenant.id, id);
    fetch.nonce = Some(nonce.clone());
    fetch.fetch = Some(10);
    let out = s.apply_android_change(&fetch, &[]).await?;
    anyhow::ensure!(
        out.fetched.len() == 1 && !out.pending,
        "fetched {:?}",
        out.fetched
    );
    let replay = s.apply_android_change(&fetch, &[]).await;
    anyhow::ensure!(
        matches!(replay, Err(StoreError::Conflict("android_nonce_replayed"))),
        "{replay:?}"
    );
    let cmd = &out.fetched[0];
    let mut result = AndroidChange::new(tenant.id, id);
    result.result = Some(ResultUpdate {
        id: cmd.id.clone(),
        state: AndroidCommandState::Acknowledged,
        result: serde_json::json!({"ok": true}),
        at: t,
    });
    anyhow::ensure!(
        s.apply_android_change(&result, &[]).await?.result_recorded,
        "recorded"
    );
    anyhow::ensure!(
        !s.apply_android_change(&result, &[]).await?.result_recorded,
        "once"
    );
    let stored = s.android_command(tenant.id, &cmd.id).await?;
    anyhow::ensure!(
        stored.is_some_and(|c| c.state == AndroidCommandState::Acknowledged),
        "state"
    );
    let audit = AuditEntry::new(
        Some(tenant.id),
        t,
        &Actor::System,
        AuditAction::DeviceDeleted,
        ("device", id.to_string()),
    );
    anyhow::ensure!(
        !s.delete_android_device(other.id, id, &audit).await?,
        "other tenant cannot delete"
    );
    anyhow::ensure!(
        s.delete_android_device(tenant.id, id, &audit).await?,
        "deleted"
    );
    anyhow::ensure!(s.android_device(tenant.id, id).await?.is_none(), "gone");
    Ok(())
}
