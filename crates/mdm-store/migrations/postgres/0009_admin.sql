-- The admin web portal: administrator browser sessions, their sign-in
-- throttle, the startup wizard's completion per tenant, and the indexes the
-- portal's device and user lists filter by.
-- Keep in step with the other backend's 0009_admin.sql (sqlite/).

CREATE TABLE admin_sessions (
    id_hash       TEXT PRIMARY KEY NOT NULL,
    admin_id      TEXT NOT NULL REFERENCES admins (id) ON DELETE CASCADE,
    csrf          TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_seen_at  BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX admin_sessions_admin ON admin_sessions (admin_id);
CREATE INDEX admin_sessions_expiry ON admin_sessions (expires_at);

-- Failed administrator sign-ins. Administrators are not all in one tenant
-- (operators are in none), so this is not auth_attempts.
CREATE TABLE admin_auth_attempts (
    id            TEXT PRIMARY KEY NOT NULL,
    throttle_key  TEXT NOT NULL,
    at            BIGINT NOT NULL
);
CREATE INDEX admin_auth_attempts_key ON admin_auth_attempts (throttle_key, at);

CREATE TABLE tenant_setup (
    tenant_id     TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    completed_at  BIGINT NOT NULL,
    completed_by  TEXT NOT NULL
);

CREATE INDEX devices_status ON devices (tenant_id, status, created_at, id);
CREATE INDEX devices_platform ON devices (tenant_id, platform, created_at, id);
CREATE INDEX devices_platform_status ON devices (tenant_id, platform, status, created_at, id);
CREATE INDEX devices_user ON devices (tenant_id, user_id, created_at, id);
CREATE INDEX devices_last_seen ON devices (tenant_id, last_seen_at);
