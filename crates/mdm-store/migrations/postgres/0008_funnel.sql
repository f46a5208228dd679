-- The registration funnel and reminders (ADR 0011). Keep in step with the
-- other backend's 0008_funnel.sql.
--
-- A registration now starts at the invitation (or the first sign-in), before
-- the platform is known, so `platform` becomes nullable. New columns: the
-- reminder state (how many were sent, the last one, when reminders were
-- given up) and the client app's push token, recorded at the client-app
-- registration.

ALTER TABLE registrations ALTER COLUMN platform DROP NOT NULL;
ALTER TABLE registrations ADD COLUMN reminders_sent BIGINT NOT NULL DEFAULT 0;
ALTER TABLE registrations ADD COLUMN last_reminded_at BIGINT;
ALTER TABLE registrations ADD COLUMN given_up_at BIGINT;
ALTER TABLE registrations ADD COLUMN app_push_provider TEXT CHECK (app_push_provider IN ('apns', 'fcm'));
ALTER TABLE registrations ADD COLUMN app_push_token TEXT;
ALTER TABLE registrations ADD COLUMN app_push_topic TEXT;
-- The user's open registration (the invite stages attach to it).
CREATE INDEX registrations_user ON registrations (tenant_id, user_id, status);
-- The reminder scan: registrations not yet past the certificate.
CREATE INDEX registrations_remind ON registrations (status, updated_at) WHERE certificate_issued_at IS NULL AND given_up_at IS NULL;

ALTER TABLE tenant_settings ADD COLUMN reminder_interval_secs BIGINT NOT NULL DEFAULT 86400;
ALTER TABLE tenant_settings ADD COLUMN reminder_max BIGINT NOT NULL DEFAULT 3;
ALTER TABLE tenant_settings ADD COLUMN reminder_email BIGINT NOT NULL DEFAULT 1 CHECK (reminder_email IN (0, 1));
ALTER TABLE tenant_settings ADD COLUMN reminder_push BIGINT NOT NULL DEFAULT 1 CHECK (reminder_push IN (0, 1));
