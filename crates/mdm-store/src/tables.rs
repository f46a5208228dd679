//! Every table of the schema, in foreign-key-safe order, with its columns
//! and their types: what `convert-db` copies and what tests compare. A new
//! table or column is added here and in both migration directories; the
//! schema check refuses to copy when this list and the database disagree.

use crate::db::DbRow;
use crate::rows::Row;
use crate::sql::{Arg, Sql};
use crate::store::{Backend, SqlStore};
use mdm_core::StoreError;
use std::collections::BTreeSet;

/// The stored type of a column, as the Any driver reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// BIGINT: integers, unix-millisecond times, 0/1 flags.
    Int,
    /// TEXT: strings, UUIDs, JSON.
    Text,
    /// BLOB / BYTEA.
    Blob,
}

/// One column value, backend-independent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ColumnValue {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// A table: its name, its columns and its primary key.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    pub name: &'static str,
    pub columns: &'static [(&'static str, ColumnType)],
    /// Primary-key columns, the copy and comparison order.
    pub key: &'static [&'static str],
    /// A column filled from a sequence (PostgreSQL identity) whose next value
    /// must be moved past the copied rows.
    pub identity: Option<&'static str>,
}

use ColumnType::{Int, Text};

/// Every table, parents before children.
pub const TABLES: &[Table] = &[
    Table {
        name: "tenants",
        columns: &[
            ("id", Text),
            ("slug", Text),
            ("name", Text),
            ("created_at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "tenant_settings",
        columns: &[
            ("tenant_id", Text),
            ("pin_required", Int),
            ("pin_lifetime_secs", Int),
            ("temporary_password", Int),
            ("profile_validity_secs", Int),
            ("qr_registration", Int),
            ("reminder_interval_secs", Int),
            ("reminder_max", Int),
            ("reminder_email", Int),
            ("reminder_push", Int),
        ],
        key: &["tenant_id"],
        identity: None,
    },
    Table {
        name: "enrollment_urls",
        columns: &[
            ("tenant_id", Text),
            ("version", Int),
            ("secret_hash", Text),
            ("secret", Text),
            ("created_at", Int),
            ("retired_at", Int),
        ],
        key: &["tenant_id", "version"],
        identity: None,
    },
    Table {
        name: "users",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("email", Text),
            ("display_name", Text),
            ("password_hash", Text),
            ("temporary_password", Int),
            ("source", Text),
            ("external_id", Text),
            ("login_name", Text),
            ("enabled", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "api_tokens",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("name", Text),
            ("token_hash", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("revoked_at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "admins",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("email", Text),
            ("password_hash", Text),
            ("created_at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Int),
            ("tenant_id", Text),
            ("at", Int),
            ("actor", Text),
            ("actor_label", Text),
            ("action", Text),
            ("subject_type", Text),
            ("subject_id", Text),
            ("user_id", Text),
            ("device_id", Text),
            ("details", Text),
        ],
        key: &["id"],
        identity: Some("id"),
    },
    Table {
        name: "jobs",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("kind", Text),
            ("payload", Text),
            ("run_at", Int),
            ("attempts", Int),
            ("max_attempts", Int),
            ("state", Text),
            ("lease_owner", Text),
            ("lease_until", Int),
            ("last_error", Text),
            ("dedupe_key", Text),
            ("finished_at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "leases",
        columns: &[("name", Text), ("holder", Text), ("expires_at", Int)],
        key: &["name"],
        identity: None,
    },
    Table {
        name: "certificate_authorities",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("subject", Text),
            ("cert_der", ColumnType::Blob),
            ("sealed_key", ColumnType::Blob),
            ("not_after", Int),
            ("created_at", Int),
            ("active", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "profile_signers",
        columns: &[
            ("tenant_id", Text),
            ("ca_id", Text),
            ("serial", Text),
            ("cert_der", ColumnType::Blob),
            ("sealed_key", ColumnType::Blob),
            ("not_after", Int),
            ("created_at", Int),
        ],
        key: &["tenant_id", "serial"],
        identity: None,
    },
    Table {
        name: "signing_identities",
        columns: &[
            ("tenant_id", Text),
            ("cert_der", ColumnType::Blob),
            ("chain_pem", Text),
            ("sealed_key", ColumnType::Blob),
            ("fingerprint_sha256", Text),
            ("subject", Text),
            ("issuer", Text),
            ("key_kind", Text),
            ("not_before", Int),
            ("not_after", Int),
            ("uploaded_at", Int),
            ("uploaded_by", Text),
        ],
        key: &["tenant_id"],
        identity: None,
    },
    Table {
        name: "scep_challenges",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("registration", Text),
            ("challenge_hash", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "certificates",
        columns: &[
            ("tenant_id", Text),
            ("serial", Text),
            ("ca_id", Text),
            ("subject", Text),
            ("fingerprint_sha256", Text),
            ("not_before", Int),
            ("not_after", Int),
            ("issued_at", Int),
            ("registration", Text),
            ("device_id", Text),
            ("renewal_of", Text),
            ("revoked_at", Int),
            ("cert_der", ColumnType::Blob),
        ],
        key: &["tenant_id", "serial"],
        identity: None,
    },
    Table {
        name: "directory_connectors",
        columns: &[
            ("tenant_id", Text),
            ("url", Text),
            ("security", Text),
            ("bind_dn", Text),
            ("bind_password_sealed", ColumnType::Blob),
            ("base_dn", Text),
            ("user_filter", Text),
            ("group_filter", Text),
            ("attr_email", Text),
            ("attr_display_name", Text),
            ("attr_login_name", Text),
            ("attr_stable_id", Text),
            ("page_size", Int),
            ("sync_interval_secs", Int),
            ("timeout_secs", Int),
            ("ca_pem", Text),
            ("enabled", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: &["tenant_id"],
        identity: None,
    },
    Table {
        name: "directory_sync_runs",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("triggered_by", Text),
            ("status", Text),
            ("started_at", Int),
            ("finished_at", Int),
            ("duration_ms", Int),
            ("entries", Int),
            ("created", Int),
            ("updated", Int),
            ("reenabled", Int),
            ("disabled", Int),
            ("unchanged", Int),
            ("error_count", Int),
            ("errors", Text),
            ("error", Text),
            ("error_code", Text),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "registrations",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("platform", Text),
            ("purpose", Text),
            ("device_id", Text),
            ("status", Text),
            ("reason", Text),
            ("created_at", Int),
            ("updated_at", Int),
            ("expires_at", Int),
            ("invited_at", Int),
            ("pin_used_at", Int),
            ("signed_in_at", Int),
            ("profile_downloaded_at", Int),
            ("certificate_issued_at", Int),
            ("checked_in_at", Int),
            ("active_at", Int),
            ("reminders_sent", Int),
            ("last_reminded_at", Int),
            ("given_up_at", Int),
            ("app_push_provider", Text),
            ("app_push_token", Text),
            ("app_push_topic", Text),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "devices",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("platform", Text),
            ("status", Text),
            ("udid", Text),
            ("serial_number", Text),
            ("model", Text),
            ("model_name", Text),
            ("product_name", Text),
            ("os_version", Text),
            ("build_version", Text),
            ("device_name", Text),
            ("enrolled_at", Int),
            ("last_seen_at", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "apple_enrollments",
        columns: &[
            ("tenant_id", Text),
            ("id", Text),
            ("device_id", Text),
            ("channel", Text),
            ("registration_id", Text),
            ("topic", Text),
            ("token", ColumnType::Blob),
            ("push_magic", Text),
            ("unlock_token", ColumnType::Blob),
            ("token_dead_at", Int),
            ("cert_fingerprint", Text),
            ("cert_serial", Text),
            ("user_short_name", Text),
            ("user_long_name", Text),
            ("enabled", Int),
            ("last_seen_at", Int),
            ("last_push_at", Int),
            ("last_push_outcome", Text),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: &["tenant_id", "id"],
        identity: None,
    },
    Table {
        name: "apple_commands",
        columns: &[
            ("tenant_id", Text),
            ("command_uuid", Text),
            ("enrollment_id", Text),
            ("device_id", Text),
            ("request_type", Text),
            ("payload", ColumnType::Blob),
            ("state", Text),
            ("not_now_count", Int),
            ("ack_device_status", Text),
            ("queued_by", Text),
            ("created_at", Int),
            ("result_at", Int),
            ("error_chain", Text),
            ("result", Text),
        ],
        key: &["tenant_id", "command_uuid"],
        identity: None,
    },
    Table {
        name: "invitations",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("temporary_password", Int),
            ("delivery", Text),
            ("attempts", Int),
            ("last_error", Text),
            ("pin_hash", Text),
            ("pin_expires_at", Int),
            ("pin_used_at", Int),
            ("revoked_at", Int),
            ("created_at", Int),
            ("sent_at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "registration_progress",
        columns: &[
            ("tenant_id", Text),
            ("user_id", Text),
            ("invited_at", Int),
            ("pin_used_at", Int),
            ("signed_in_at", Int),
            ("profile_downloaded_at", Int),
        ],
        key: &["tenant_id", "user_id"],
        identity: None,
    },
    Table {
        name: "auth_attempts",
        columns: &[
            ("id", Text),
            ("tenant_id", Text),
            ("throttle_key", Text),
            ("at", Int),
        ],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "web_sessions",
        columns: &[
            ("id_hash", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("kind", Text),
            ("csrf", Text),
            ("must_set_password", Int),
            ("created_at", Int),
            ("expires_at", Int),
        ],
        key: &["id_hash"],
        identity: None,
    },
    Table {
        name: "registration_tokens",
        columns: &[
            ("token_hash", Text),
            ("tenant_id", Text),
            ("user_id", Text),
            ("purpose", Text),
            ("platform", Text),
            ("created_at", Int),
            ("expires_at", Int),
            ("used_at", Int),
        ],
        key: &["token_hash"],
        identity: None,
    },
    Table {
        name: "mail_templates",
        columns: &[
            ("tenant_id", Text),
            ("name", Text),
            ("subject", Text),
            ("text_body", Text),
            ("html_body", Text),
            ("updated_at", Int),
        ],
        key: &["tenant_id", "name"],
        identity: None,
    },
    Table {
        name: "admin_sessions",
        columns: &[
            ("id_hash", Text),
            ("admin_id", Text),
            ("csrf", Text),
            ("created_at", Int),
            ("last_seen_at", Int),
            ("expires_at", Int),
        ],
        key: &["id_hash"],
        identity: None,
    },
    Table {
        name: "admin_auth_attempts",
        columns: &[("id", Text), ("throttle_key", Text), ("at", Int)],
        key: &["id"],
        identity: None,
    },
    Table {
        name: "tenant_setup",
        columns: &[
            ("tenant_id", Text),
            ("completed_at", Int),
            ("completed_by", Text),
        ],
        key: &["tenant_id"],
        identity: None,
    },
    Table {
        name: "android_devices",
        columns: &[
            ("tenant_id", Text),
            ("device_id", Text),
            ("registration_id", Text),
            ("management_mode", Text),
            ("api_level", Int),
            ("manufacturer", Text),
            ("public_key", ColumnType::Blob),
            ("cert_serial", Text),
            ("cert_fingerprint", Text),
            ("identity_key", Text),
            ("matched_key", Text),
            ("enterprise_specific_id", Text),
            ("imei", Text),
            ("meid", Text),
            ("serial", Text),
            ("android_id", Text),
            ("current_entry", Int),
            ("enabled", Int),
            ("fcm_token", Text),
            ("fcm_token_dead_at", Int),
            ("last_push_at", Int),
            ("last_push_outcome", Text),
            ("checkin", Text),
            ("last_checkin_at", Int),
            ("created_at", Int),
            ("updated_at", Int),
        ],
        key: &["tenant_id", "device_id"],
        identity: None,
    },
    Table {
        name: "android_identity_locks",
        columns: &[
            ("tenant_id", Text),
            ("identity_key", Text),
            ("registrations", Int),
        ],
        key: &["tenant_id", "identity_key"],
        identity: None,
    },
    Table {
        name: "android_commands",
        columns: &[
            ("tenant_id", Text),
            ("id", Text),
            ("device_id", Text),
            ("kind", Text),
            ("payload", Text),
            ("state", Text),
            ("ack_device_status", Text),
            ("queued_by", Text),
            ("created_at", Int),
            ("sent_at", Int),
            ("result_at", Int),
            ("result", Text),
        ],
        key: &["tenant_id", "id"],
        identity: None,
    },
    Table {
        name: "android_nonces",
        columns: &[
            ("tenant_id", Text),
            ("device_id", Text),
            ("nonce", Text),
            ("expires_at", Int),
        ],
        key: &["tenant_id", "device_id", "nonce"],
        identity: None,
    },
];

/// Tables that belong to the migration machinery or the database itself.
const INTERNAL_TABLES: [&str; 2] = ["_sqlx_migrations", "sqlite_sequence"];

/// The table named `name`.
pub fn table(name: &str) -> Result<&'static Table, StoreError> {
    TABLES
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| StoreError::Backend(format!("unknown table {name}")))
}

impl Table {
    /// `a, b, c`
    pub(crate) fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|(c, _)| *c)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `a, b`
    pub(crate) fn key_list(&self) -> String {
        self.key.join(", ")
    }

    /// Positions of the key columns in `columns`.
    pub(crate) fn key_positions(&self) -> Vec<usize> {
        self.key
            .iter()
            .filter_map(|k| self.columns.iter().position(|(c, _)| c == k))
            .collect()
    }

    /// Reads one row in column order.
    pub(crate) fn decode(&self, row: &DbRow) -> Result<Vec<ColumnValue>, StoreError> {
        let mut values = Vec::with_capacity(self.columns.len());
        for (i, (name, ty)) in self.columns.iter().enumerate() {
            let value = match ty {
                ColumnType::Int => row.opt_int(i).map(|v| v.map(ColumnValue::Int)),
                ColumnType::Text => row.opt_text(i).map(|v| v.map(ColumnValue::Text)),
                ColumnType::Blob => row.opt_blob(i).map(|v| v.map(ColumnValue::Blob)),
            };
            let value = value
                .map_err(|e| StoreError::Backend(format!("reading {}.{name}: {e}", self.name)))?;
            values.push(value.unwrap_or(ColumnValue::Null));
        }
        Ok(values)
    }
}

/// The value to bind for `value` in a column of type `ty`.
pub(crate) fn to_arg(ty: ColumnType, value: &ColumnValue) -> Result<Arg, StoreError> {
    Ok(match (ty, value) {
        (ColumnType::Int, ColumnValue::Null) => Arg::Int(None),
        (ColumnType::Text, ColumnValue::Null) => Arg::Text(None),
        (ColumnType::Blob, ColumnValue::Null) => Arg::Blob(None),
        (ColumnType::Int, ColumnValue::Int(v)) => Arg::Int(Some(*v)),
        (ColumnType::Text, ColumnValue::Text(v)) => Arg::Text(Some(v.clone())),
        (ColumnType::Blob, ColumnValue::Blob(v)) => Arg::Blob(Some(v.clone())),
        (ty, v) => {
            return Err(StoreError::Backend(format!(
                "value {v:?} in a column of type {ty:?}"
            )));
        }
    })
}

impl SqlStore {
    /// Every row of `table` in primary-key order (compared as values, so the
    /// order is the same on every backend).
    pub async fn table_rows(&self, table: &str) -> Result<Vec<Vec<ColumnValue>>, StoreError> {
        let t = self::table(table)?;
        let sql = Sql::new(format!(
            "SELECT {} FROM {} ORDER BY {}",
            t.column_list(),
            t.name,
            t.key_list()
        ));
        let rows = sql.fetch_all(&self.pool).await?;
        let mut rows = rows
            .iter()
            .map(|r| t.decode(r))
            .collect::<Result<Vec<_>, _>>()?;
        let key = t.key_positions();
        rows.sort_by(|a, b| key.iter().map(|&i| &a[i]).cmp(key.iter().map(|&i| &b[i])));
        Ok(rows)
    }

    /// The number of rows in `table`.
    pub async fn count_rows(&self, table: &str) -> Result<i64, StoreError> {
        let t = self::table(table)?;
        let row = Sql::new(format!("SELECT COUNT(*) AS n FROM {}", t.name))
            .fetch_one(&self.pool)
            .await?;
        Row(&row).int("n")
    }

    /// The tables of the database, without the internal ones.
    async fn table_names(&self) -> Result<BTreeSet<String>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
            Backend::Postgres => {
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            }
        };
        let rows = Sql::new(sql).fetch_all(&self.pool).await?;
        let names = rows
            .iter()
            .map(|r| Row(r).text("name"))
            .collect::<Result<BTreeSet<_>, _>>()?;
        Ok(names
            .into_iter()
            .filter(|n| !INTERNAL_TABLES.contains(&n.as_str()))
            .collect())
    }

    /// The columns of `table` in the database, in definition order.
    async fn column_names(&self, table: &str) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend {
            Backend::Sqlite => "SELECT name FROM pragma_table_info($1) ORDER BY cid",
            Backend::Postgres => {
                "SELECT column_name::text AS name FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position"
            }
        };
        let rows = Sql::new(sql).arg(table).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Row(r).text("name")).collect()
    }

    /// Checks that the database has exactly the tables and columns of
    /// [`TABLES`]; names the first difference.
    pub async fn check_schema(&self) -> Result<(), StoreError> {
        let expected = TABLES
            .iter()
            .map(|t| t.name.to_string())
            .collect::<BTreeSet<_>>();
        let actual = self.table_names().await?;
        if actual != expected {
            let missing = expected.difference(&actual).cloned().collect::<Vec<_>>();
            let unknown = actual.difference(&expected).cloned().collect::<Vec<_>>();
            return Err(StoreError::Backend(format!(
                "the {} schema does not match the table list: missing {missing:?}, not listed {unknown:?}",
                self.backend
            )));
        }
        for t in TABLES {
            let columns = self.column_names(t.name).await?;
            let listed = t
                .columns
                .iter()
                .map(|(c, _)| c.to_string())
                .collect::<Vec<_>>();
            if columns != listed {
                return Err(StoreError::Backend(format!(
                    "table {} has columns {columns:?} in the {} database but {listed:?} in the table list",
                    t.name, self.backend
                )));
            }
        }
        Ok(())
    }
}
