-- Initial schema (SQLite). Keep in step with ../postgres/0001_initial.sql:
-- same tables, columns, constraints and indexes; only the types differ.
-- Times are unix milliseconds, ids are UUID text, flags are 0/1 integers,
-- JSON is text (the sqlx Any driver decodes nothing richer).

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE tenant_settings (
    tenant_id             TEXT PRIMARY KEY NOT NULL REFERENCES tenants (id),
    pin_required          BIGINT NOT NULL CHECK (pin_required IN (0, 1)),
    pin_lifetime_secs     BIGINT NOT NULL,
    temporary_password    BIGINT NOT NULL CHECK (temporary_password IN (0, 1)),
    profile_validity_secs BIGINT NOT NULL,
    qr_registration       BIGINT NOT NULL CHECK (qr_registration IN (0, 1))
);

CREATE TABLE enrollment_urls (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    version      BIGINT NOT NULL,
    secret_hash  TEXT NOT NULL,
    secret       TEXT,
    created_at   BIGINT NOT NULL,
    retired_at   BIGINT,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    email               TEXT NOT NULL,
    display_name        TEXT NOT NULL,
    password_hash       TEXT,
    temporary_password  BIGINT NOT NULL CHECK (temporary_password IN (0, 1)),
    source              TEXT NOT NULL CHECK (source IN ('local', 'ldap')),
    external_id         TEXT,
    login_name          TEXT,
    enabled             BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, email);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT REFERENCES tenants (id),
    name        TEXT NOT NULL,
    token_hash  TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id, created_at);

CREATE TABLE admins (
    id             TEXT PRIMARY KEY NOT NULL,
    tenant_id      TEXT REFERENCES tenants (id),
    email          TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE UNIQUE INDEX admins_tenant_email ON admins (tenant_id, email) WHERE tenant_id IS NOT NULL;
CREATE UNIQUE INDEX admins_operator_email ON admins (email) WHERE tenant_id IS NULL;

CREATE TABLE audit (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     TEXT,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    actor_label   TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    user_id       TEXT,
    device_id     TEXT,
    details       TEXT NOT NULL
);
CREATE INDEX audit_tenant ON audit (tenant_id, id);
CREATE INDEX audit_tenant_actor ON audit (tenant_id, actor, id);
CREATE INDEX audit_tenant_user ON audit (tenant_id, user_id, id);
CREATE INDEX audit_tenant_device ON audit (tenant_id, device_id, id);

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY NOT NULL,
    tenant_id     TEXT,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    run_at        BIGINT NOT NULL,
    attempts      BIGINT NOT NULL,
    max_attempts  BIGINT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('queued', 'done', 'failed')),
    lease_owner   TEXT,
    lease_until   BIGINT,
    last_error    TEXT,
    dedupe_key    TEXT UNIQUE,
    finished_at   BIGINT
);
CREATE INDEX jobs_due ON jobs (run_at, id) WHERE state = 'queued';

CREATE TABLE leases (
    name        TEXT PRIMARY KEY NOT NULL,
    holder      TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
