//! Rows of the Android tables: `android_devices` and `android_commands`,
//! their columns, readers and inserts.

use crate::db::{DbConn, DbRow};
use crate::rows::Row;
use crate::sql::{Arg, Sql};
use mdm_core::StoreError;
use mdm_core::android::{AndroidCommand, AndroidCommandState, AndroidDevice, AndroidKeyKind};
use mdm_core::devices::DeviceStatus;
use mdm_core::ports::StoreResult;

pub(crate) const ANDROID_COLS: &str = "tenant_id, device_id, registration_id, management_mode, \
     api_level, manufacturer, public_key, cert_serial, cert_fingerprint, identity_key, matched_key, \
     enterprise_specific_id, imei, meid, serial, android_id, current_entry, enabled, fcm_token, \
     fcm_token_dead_at, last_push_at, last_push_outcome, checkin, last_checkin_at, created_at, \
     updated_at";

pub(crate) const COMMAND_COLS: &str = "tenant_id, id, device_id, kind, payload, state, \
     ack_device_status, queued_by, created_at, sent_at, result_at, result";

fn bad(col: &str, v: &str) -> StoreError {
    StoreError::Backend(format!("column {col}: unknown value {v:?}"))
}

fn opt_json(r: &Row<'_>, col: &str) -> Result<serde_json::Value, StoreError> {
    match r.opt_text(col)? {
        None => Ok(serde_json::Value::Null),
        Some(t) => {
            serde_json::from_str(&t).map_err(|e| StoreError::Backend(format!("column {col}: {e}")))
        }
    }
}

pub(crate) fn android_from_row(row: &DbRow) -> Result<AndroidDevice, StoreError> {
    let r = Row(row);
    let mode = r.text("management_mode")?;
    let management_mode = serde_json::from_value(serde_json::Value::String(mode.clone()))
        .map_err(|_| bad("management_mode", &mode))?;
    let matched_key = match r.opt_text("matched_key")? {
        None => None,
        Some(k) => Some(AndroidKeyKind::parse(&k).ok_or_else(|| bad("matched_key", &k))?),
    };
    Ok(AndroidDevice {
        tenant_id: r.parse("tenant_id")?,
        device_id: r.parse("device_id")?,
        registration_id: r.opt_text("registration_id")?,
        management_mode,
        api_level: u32::try_from(r.int("api_level")?).unwrap_or(0),
        manufacturer: r.text("manufacturer")?,
        public_key: r.blob("public_key")?,
        cert_serial: r.opt_text("cert_serial")?,
        cert_fingerprint: r.opt_text("cert_fingerprint")?,
        identity_key: r.text("identity_key")?,
        matched_key,
        enterprise_specific_id: r.opt_text("enterprise_specific_id")?,
        imei: r.opt_text("imei")?,
        meid: r.opt_text("meid")?,
        serial: r.opt_text("serial")?,
        android_id: r.opt_text("android_id")?,
        current: r.flag("current_entry")?,
        enabled: r.flag("enabled")?,
        fcm_token: r.opt_text("fcm_token")?,
        fcm_token_dead_at: r.opt_time("fcm_token_dead_at")?,
        last_push_at: r.opt_time("last_push_at")?,
        last_push_outcome: r.opt_text("last_push_outcome")?,
        checkin: opt_json(&r, "checkin")?,
        last_checkin_at: r.opt_time("last_checkin_at")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

/// Inserts the entry (`Conflict("android_current_entry")` when its identity
/// already has a current entry).
pub(crate) async fn insert_android(conn: &mut DbConn, a: &AndroidDevice) -> StoreResult<()> {
    let checkin = (!a.checkin.is_null()).then(|| a.checkin.to_string());
    let mut sql = Sql::new(format!(
        "INSERT INTO android_devices ({ANDROID_COLS}) VALUES "
    ));
    sql.tuple([
        Arg::from(a.tenant_id),
        a.device_id.into(),
        a.registration_id.as_deref().into(),
        a.management_mode.as_str().into(),
        i64::from(a.api_level).into(),
        a.manufacturer.as_str().into(),
        a.public_key.as_slice().into(),
        a.cert_serial.as_deref().into(),
        a.cert_fingerprint.as_deref().into(),
        a.identity_key.as_str().into(),
        a.matched_key.map(|k| k.as_str()).into(),
        a.enterprise_specific_id.as_deref().into(),
        a.imei.as_deref().into(),
        a.meid.as_deref().into(),
        a.serial.as_deref().into(),
        a.android_id.as_deref().into(),
        a.current.into(),
        a.enabled.into(),
        a.fcm_token.as_deref().into(),
        a.fcm_token_dead_at.into(),
        a.last_push_at.into(),
        a.last_push_outcome.as_deref().into(),
        checkin.into(),
        a.last_checkin_at.into(),
        a.created_at.into(),
        a.updated_at.into(),
    ]);
    sql.unique("android_current_entry")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(crate) fn command_from_row(row: &DbRow) -> Result<AndroidCommand, StoreError> {
    let r = Row(row);
    let state = r.text("state")?;
    let ack = match r.opt_text("ack_device_status")? {
        None => None,
        Some(s) => Some(DeviceStatus::parse(&s).ok_or_else(|| bad("ack_device_status", &s))?),
    };
    Ok(AndroidCommand {
        tenant_id: r.parse("tenant_id")?,
        id: r.text("id")?,
        device_id: r.parse("device_id")?,
        kind: r.text("kind")?,
        payload: r.json("payload")?,
        state: AndroidCommandState::parse(&state).ok_or_else(|| bad("state", &state))?,
        ack_device_status: ack,
        queued_by: r.text("queued_by")?,
        created_at: r.time("created_at")?,
        sent_at: r.opt_time("sent_at")?,
        result_at: r.opt_time("result_at")?,
        result: opt_json(&r, "result")?,
    })
}

pub(crate) async fn insert_command(conn: &mut DbConn, c: &AndroidCommand) -> StoreResult<()> {
    let result = (!c.result.is_null()).then(|| c.result.to_string());
    let mut sql = Sql::new(format!(
        "INSERT INTO android_commands ({COMMAND_COLS}) VALUES "
    ));
    sql.tuple([
        Arg::from(c.tenant_id),
        c.id.as_str().into(),
        c.device_id.into(),
        c.kind.as_str().into(),
        c.payload.to_string().into(),
        c.state.as_str().into(),
        c.ack_device_status.map(|s| s.as_str()).into(),
        c.queued_by.as_str().into(),
        c.created_at.into(),
        c.sent_at.into(),
        c.result_at.into(),
        result.into(),
    ]);
    sql.unique("android_command").execute(&mut *conn).await?;
    Ok(())
}
