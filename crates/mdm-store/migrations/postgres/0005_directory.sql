-- Directory (LDAP / Active Directory) connectors, one per tenant, and the
-- summary of every sync run. Keep in step with ../sqlite/0005_directory.sql.
CREATE TABLE directory_connectors (
    tenant_id             TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    url                   TEXT NOT NULL,
    security              TEXT NOT NULL CHECK (security IN ('none', 'starttls', 'ldaps')),
    bind_dn               TEXT NOT NULL,
    bind_password_sealed  BYTEA NOT NULL,
    base_dn               TEXT NOT NULL,
    user_filter           TEXT NOT NULL,
    group_filter          TEXT,
    attr_email            TEXT NOT NULL,
    attr_display_name     TEXT NOT NULL,
    attr_login_name       TEXT NOT NULL,
    attr_stable_id        TEXT NOT NULL,
    page_size             BIGINT NOT NULL,
    sync_interval_secs    BIGINT NOT NULL,
    timeout_secs          BIGINT NOT NULL,
    ca_pem                TEXT,
    enabled               BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE directory_sync_runs (
    id           TEXT PRIMARY KEY NOT NULL,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    triggered_by TEXT NOT NULL CHECK (triggered_by IN ('manual', 'scheduled')),
    status       TEXT NOT NULL CHECK (status IN ('succeeded', 'failed')),
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    duration_ms  BIGINT NOT NULL,
    entries      BIGINT NOT NULL,
    created      BIGINT NOT NULL,
    updated      BIGINT NOT NULL,
    reenabled    BIGINT NOT NULL,
    disabled     BIGINT NOT NULL,
    unchanged    BIGINT NOT NULL,
    error_count  BIGINT NOT NULL,
    errors       TEXT NOT NULL,
    error        TEXT,
    error_code   TEXT
);
CREATE INDEX directory_sync_runs_tenant ON directory_sync_runs (tenant_id, started_at);

-- Directory users are keyed by the directory's stable id.
CREATE UNIQUE INDEX users_tenant_external_id ON users (tenant_id, external_id) WHERE external_id IS NOT NULL;
