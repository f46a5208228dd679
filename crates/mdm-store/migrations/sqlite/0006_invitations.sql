-- Invitations, registration progress, sign-in throttling, browser sessions,
-- one-time registration tokens and mail templates.
-- Keep in step with the other backend's 0006_invitations.sql.

CREATE TABLE invitations (
    id                  TEXT PRIMARY KEY NOT NULL,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    user_id             TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    temporary_password  BIGINT NOT NULL CHECK (temporary_password IN (0, 1)),
    delivery            TEXT NOT NULL CHECK (delivery IN ('queued', 'sent', 'failed')),
    attempts            BIGINT NOT NULL,
    last_error          TEXT,
    pin_hash            TEXT,
    pin_expires_at      BIGINT,
    pin_used_at         BIGINT,
    revoked_at          BIGINT,
    created_at          BIGINT NOT NULL,
    sent_at             BIGINT
);
CREATE INDEX invitations_tenant ON invitations (tenant_id, id);
CREATE INDEX invitations_user ON invitations (tenant_id, user_id);

CREATE TABLE registration_progress (
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_at             BIGINT,
    pin_used_at            BIGINT,
    signed_in_at           BIGINT,
    profile_downloaded_at  BIGINT,
    PRIMARY KEY (tenant_id, user_id)
);

CREATE TABLE auth_attempts (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    throttle_key  TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX auth_attempts_key ON auth_attempts (tenant_id, throttle_key, at);
CREATE INDEX auth_attempts_at ON auth_attempts (at);

CREATE TABLE web_sessions (
    id_hash            TEXT PRIMARY KEY NOT NULL,
    tenant_id          TEXT NOT NULL REFERENCES tenants (id),
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind               TEXT NOT NULL CHECK (kind IN ('go', 'portal')),
    csrf               TEXT NOT NULL,
    must_set_password  BIGINT NOT NULL CHECK (must_set_password IN (0, 1)),
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL
);
CREATE INDEX web_sessions_expiry ON web_sessions (expires_at);

CREATE TABLE registration_tokens (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('qr', 'profile')),
    platform    TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE mail_templates (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    name        TEXT NOT NULL,
    subject     TEXT NOT NULL,
    text_body   TEXT NOT NULL,
    html_body   TEXT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, name)
);
