-- The registration funnel and reminders (ADR 0011). Keep in step with the
-- other backend's 0008_funnel.sql.
--
-- A registration now starts at the invitation (or the first sign-in), before
-- the platform is known, so `platform` becomes nullable; SQLite cannot drop
-- a NOT NULL constraint, so the table is rebuilt (nothing references it).
-- New columns: the reminder state (how many were sent, the last one, when
-- reminders were given up) and the client app's push token, recorded at the
-- client-app registration.

CREATE TABLE registrations_0008 (
    id                      TEXT PRIMARY KEY NOT NULL,
    tenant_id               TEXT NOT NULL REFERENCES tenants (id),
    user_id                 TEXT,
    platform                TEXT,
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
    active_at               BIGINT,
    reminders_sent          BIGINT NOT NULL DEFAULT 0,
    last_reminded_at        BIGINT,
    given_up_at             BIGINT,
    app_push_provider       TEXT CHECK (app_push_provider IN ('apns', 'fcm')),
    app_push_token          TEXT,
    app_push_topic          TEXT
);
INSERT INTO registrations_0008 (id, tenant_id, user_id, platform, purpose, device_id, status, reason,
    created_at, updated_at, expires_at, invited_at, pin_used_at, signed_in_at, profile_downloaded_at,
    certificate_issued_at, checked_in_at, active_at)
SELECT id, tenant_id, user_id, platform, purpose, device_id, status, reason,
    created_at, updated_at, expires_at, invited_at, pin_used_at, signed_in_at, profile_downloaded_at,
    certificate_issued_at, checked_in_at, active_at FROM registrations;
DROP TABLE registrations;
ALTER TABLE registrations_0008 RENAME TO registrations;
CREATE INDEX registrations_created ON registrations (tenant_id, created_at, id);
CREATE INDEX registrations_device ON registrations (tenant_id, device_id);
-- The user's open registration (the invite stages attach to it).
CREATE INDEX registrations_user ON registrations (tenant_id, user_id, status);
-- The reminder scan: registrations not yet past the certificate.
CREATE INDEX registrations_remind ON registrations (status, updated_at) WHERE certificate_issued_at IS NULL AND given_up_at IS NULL;

ALTER TABLE tenant_settings ADD COLUMN reminder_interval_secs BIGINT NOT NULL DEFAULT 86400;
ALTER TABLE tenant_settings ADD COLUMN reminder_max BIGINT NOT NULL DEFAULT 3;
ALTER TABLE tenant_settings ADD COLUMN reminder_email BIGINT NOT NULL DEFAULT 1 CHECK (reminder_email IN (0, 1));
ALTER TABLE tenant_settings ADD COLUMN reminder_push BIGINT NOT NULL DEFAULT 1 CHECK (reminder_push IN (0, 1));
