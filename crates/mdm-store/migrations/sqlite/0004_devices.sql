-- Registrations (one per attempt to enrol a device), devices (shared by
-- every platform), Apple MDM enrollments (one per channel) and their
-- command queue. Keep in step with the other backend's 0004_devices.sql.

CREATE TABLE registrations (
    id                      TEXT PRIMARY KEY NOT NULL,
    tenant_id               TEXT NOT NULL REFERENCES tenants (id),
    user_id                 TEXT,
    platform                TEXT NOT NULL,
    purpose                 TEXT NOT NULL,
    device_id               TEXT,
    status                  TEXT NOT NULL,
    reason                  TEXT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    expires_at              BIGINT,
    invited_at              BIGINT,
    pin_used_at             BIGINT,
    signed_in_at            BIGINT,
    profile_downloaded_at   BIGINT,
    certificate_issued_at   BIGINT,
    checked_in_at           BIGINT,
    active_at               BIGINT
);
CREATE INDEX registrations_created ON registrations (tenant_id, created_at, id);
CREATE INDEX registrations_device ON registrations (tenant_id, device_id);

CREATE TABLE devices (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    user_id         TEXT,
    platform        TEXT NOT NULL,
    status          TEXT NOT NULL,
    udid            TEXT,
    serial_number   TEXT,
    model           TEXT,
    model_name      TEXT,
    product_name    TEXT,
    os_version      TEXT,
    build_version   TEXT,
    device_name     TEXT,
    enrolled_at     BIGINT,
    last_seen_at    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX devices_created ON devices (tenant_id, created_at, id);
-- An Apple device is one record per hardware UDID in its tenant.
CREATE UNIQUE INDEX devices_udid ON devices (tenant_id, platform, udid) WHERE udid IS NOT NULL;

CREATE TABLE apple_enrollments (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    id                  TEXT NOT NULL,
    device_id           TEXT NOT NULL REFERENCES devices (id),
    channel             TEXT NOT NULL,
    registration_id     TEXT,
    topic               TEXT NOT NULL,
    token               BLOB,
    push_magic          TEXT,
    unlock_token        BLOB,
    token_dead_at       BIGINT,
    cert_fingerprint    TEXT,
    cert_serial         TEXT,
    user_short_name     TEXT,
    user_long_name      TEXT,
    enabled             BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    last_seen_at        BIGINT,
    last_push_at        BIGINT,
    last_push_outcome   TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX apple_enrollments_device ON apple_enrollments (tenant_id, device_id);
-- One identity certificate serves one enrollment.
CREATE UNIQUE INDEX apple_enrollments_cert ON apple_enrollments (tenant_id, cert_fingerprint) WHERE cert_fingerprint IS NOT NULL;

CREATE TABLE apple_commands (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    command_uuid        TEXT NOT NULL,
    enrollment_id       TEXT NOT NULL,
    device_id           TEXT NOT NULL REFERENCES devices (id),
    request_type        TEXT NOT NULL,
    payload             BLOB NOT NULL,
    state               TEXT NOT NULL,
    not_now_count       BIGINT NOT NULL,
    ack_device_status   TEXT,
    queued_by           TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    result_at           BIGINT,
    error_chain         TEXT,
    result              TEXT,
    PRIMARY KEY (tenant_id, command_uuid)
);
CREATE INDEX apple_commands_queue ON apple_commands (tenant_id, enrollment_id, state, created_at, command_uuid);
CREATE INDEX apple_commands_device ON apple_commands (tenant_id, device_id, created_at, command_uuid);
