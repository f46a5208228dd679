//! Reading stored rows back into domain types.
//!
//! [`Row`] reads one column at a time in the shared column types (integer,
//! text) and turns them into ids, times, flags and JSON; the `*_from_row`
//! functions assemble whole domain values.

use crate::db::DbRow;
use crate::sql::from_millis;
use mdm_core::StoreError;
use mdm_core::audit::AuditRecord;
use mdm_core::enrollment::EnrollmentUrlVersion;
use mdm_core::jobs::{Job, JobState};
use mdm_core::settings::UserSettings;
use mdm_core::tenants::Tenant;
use mdm_core::tokens::{Admin, ApiToken, Scope};
use mdm_core::users::{User, UserSource};
use std::str::FromStr;
use time::OffsetDateTime;

/// A borrowed row with typed column getters.
pub(crate) struct Row<'r>(pub(crate) &'r DbRow);

fn unreadable(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("column {col}: {e}"))
}

impl Row<'_> {
    pub(crate) fn opt_int(&self, col: &str) -> Result<Option<i64>, StoreError> {
        self.0.opt_int(col).map_err(|e| unreadable(col, e))
    }

    pub(crate) fn int(&self, col: &str) -> Result<i64, StoreError> {
        self.opt_int(col)?
            .ok_or_else(|| unreadable(col, "unexpected NULL"))
    }

    pub(crate) fn int32(&self, col: &str) -> Result<i32, StoreError> {
        i32::try_from(self.int(col)?).map_err(|e| unreadable(col, e))
    }

    pub(crate) fn flag(&self, col: &str) -> Result<bool, StoreError> {
        Ok(self.int(col)? != 0)
    }

    pub(crate) fn opt_text(&self, col: &str) -> Result<Option<String>, StoreError> {
        self.0.opt_text(col).map_err(|e| unreadable(col, e))
    }

    pub(crate) fn text(&self, col: &str) -> Result<String, StoreError> {
        self.opt_text(col)?
            .ok_or_else(|| unreadable(col, "unexpected NULL"))
    }

    pub(crate) fn opt_blob(&self, col: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.0.opt_blob(col).map_err(|e| unreadable(col, e))
    }

    pub(crate) fn blob(&self, col: &str) -> Result<Vec<u8>, StoreError> {
        self.opt_blob(col)?
            .ok_or_else(|| unreadable(col, "unexpected NULL"))
    }

    pub(crate) fn time(&self, col: &str) -> Result<OffsetDateTime, StoreError> {
        from_millis(self.int(col)?)
    }

    pub(crate) fn opt_time(&self, col: &str) -> Result<Option<OffsetDateTime>, StoreError> {
        self.opt_int(col)?.map(from_millis).transpose()
    }

    /// An id (or any value parsed from text).
    pub(crate) fn parse<T: FromStr>(&self, col: &str) -> Result<T, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        self.text(col)?.parse().map_err(|e| unreadable(col, e))
    }

    pub(crate) fn opt_parse<T: FromStr>(&self, col: &str) -> Result<Option<T>, StoreError>
    where
        T::Err: std::fmt::Display,
    {
        self.opt_text(col)?
            .map(|s| s.parse().map_err(|e| unreadable(col, e)))
            .transpose()
    }

    pub(crate) fn json(&self, col: &str) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(&self.text(col)?).map_err(|e| unreadable(col, e))
    }

    /// A scope stored as a nullable `tenant_id` (NULL = operator).
    pub(crate) fn scope(&self, col: &str) -> Result<Scope, StoreError> {
        Ok(match self.opt_parse(col)? {
            Some(t) => Scope::Tenant(t),
            None => Scope::Operator,
        })
    }
}

pub(crate) const TENANT_COLS: &str = "id, slug, name, created_at";

pub(crate) fn tenant_from_row(row: &DbRow) -> Result<Tenant, StoreError> {
    let r = Row(row);
    Ok(Tenant {
        id: r.parse("id")?,
        slug: r.text("slug")?,
        name: r.text("name")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) const SETTINGS_COLS: &str = "pin_required, pin_lifetime_secs, temporary_password, profile_validity_secs, qr_registration, \
     reminder_interval_secs, reminder_max, reminder_email, reminder_push";

pub(crate) fn settings_from_row(row: &DbRow) -> Result<UserSettings, StoreError> {
    let r = Row(row);
    Ok(UserSettings {
        pin_required: r.flag("pin_required")?,
        pin_lifetime_secs: r.int("pin_lifetime_secs")?,
        temporary_password: r.flag("temporary_password")?,
        profile_validity_secs: r.int("profile_validity_secs")?,
        qr_registration: r.flag("qr_registration")?,
        reminder_interval_secs: r.int("reminder_interval_secs")?,
        reminder_max: r.int("reminder_max")?,
        reminder_email: r.flag("reminder_email")?,
        reminder_push: r.flag("reminder_push")?,
    })
}

pub(crate) const URL_COLS: &str = "version, secret_hash, secret, created_at, retired_at";

pub(crate) fn url_from_row(row: &DbRow) -> Result<EnrollmentUrlVersion, StoreError> {
    let r = Row(row);
    Ok(EnrollmentUrlVersion {
        version: r.int("version")?,
        secret_hash: r.text("secret_hash")?,
        secret: r.opt_text("secret")?,
        created_at: r.time("created_at")?,
        retired_at: r.opt_time("retired_at")?,
    })
}

pub(crate) const USER_COLS: &str = "id, tenant_id, email, display_name, password_hash, temporary_password, \
     source, external_id, login_name, enabled, created_at, updated_at";

pub(crate) fn user_from_row(row: &DbRow) -> Result<User, StoreError> {
    let r = Row(row);
    let source = r.text("source")?;
    Ok(User {
        id: r.parse("id")?,
        tenant_id: r.parse("tenant_id")?,
        email: r.text("email")?,
        display_name: r.text("display_name")?,
        password_hash: r.opt_text("password_hash")?,
        temporary_password: r.flag("temporary_password")?,
        source: UserSource::parse(&source).ok_or_else(|| unreadable("source", source))?,
        external_id: r.opt_text("external_id")?,
        login_name: r.opt_text("login_name")?,
        enabled: r.flag("enabled")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) const TOKEN_COLS: &str =
    "id, tenant_id, name, token_hash, created_at, expires_at, revoked_at";

pub(crate) fn token_from_row(row: &DbRow) -> Result<ApiToken, StoreError> {
    let r = Row(row);
    Ok(ApiToken {
        id: r.parse("id")?,
        scope: r.scope("tenant_id")?,
        name: r.text("name")?,
        token_hash: r.text("token_hash")?,
        created_at: r.time("created_at")?,
        expires_at: r.opt_time("expires_at")?,
        revoked_at: r.opt_time("revoked_at")?,
    })
}

pub(crate) const ADMIN_COLS: &str = "id, tenant_id, email, password_hash, created_at";

pub(crate) fn admin_from_row(row: &DbRow) -> Result<Admin, StoreError> {
    let r = Row(row);
    Ok(Admin {
        id: r.parse("id")?,
        scope: r.scope("tenant_id")?,
        email: r.text("email")?,
        password_hash: r.text("password_hash")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) const AUDIT_COLS: &str = "id, tenant_id, at, actor, actor_label, action, subject_type, subject_id, user_id, device_id, details";

pub(crate) fn audit_from_row(row: &DbRow) -> Result<AuditRecord, StoreError> {
    let r = Row(row);
    Ok(AuditRecord {
        id: r.int("id")?,
        tenant_id: r.opt_parse("tenant_id")?,
        at: r.time("at")?,
        actor: r.text("actor")?,
        actor_label: r.text("actor_label")?,
        action: r.text("action")?,
        subject_type: r.text("subject_type")?,
        subject_id: r.text("subject_id")?,
        user_id: r.opt_parse("user_id")?,
        device_id: r.opt_text("device_id")?,
        details: r.json("details")?,
    })
}

pub(crate) const JOB_COLS: &str =
    "id, tenant_id, kind, payload, run_at, attempts, max_attempts, state, lease_owner, last_error";

pub(crate) fn job_from_row(row: &DbRow) -> Result<Job, StoreError> {
    let r = Row(row);
    let state = r.text("state")?;
    Ok(Job {
        id: r.parse("id")?,
        tenant_id: r.opt_parse("tenant_id")?,
        kind: r.text("kind")?,
        payload: r.json("payload")?,
        run_at: r.time("run_at")?,
        attempts: r.int32("attempts")?,
        max_attempts: r.int32("max_attempts")?,
        lease_owner: r.opt_text("lease_owner")?,
        last_error: r.opt_text("last_error")?,
        state: JobState::parse(&state).ok_or_else(|| unreadable("state", state))?,
    })
}
