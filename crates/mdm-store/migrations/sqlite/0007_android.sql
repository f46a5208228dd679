-- Android devices registered through the device-policy agent (one row per
-- entry of `devices` with platform android), their command queue, the
-- nonces of signed agent requests (replay protection) and one lock row per
-- hardware identity that serialises concurrent re-registrations.
-- Keep in step with the other backend's 0007_android.sql.

CREATE TABLE android_devices (
    tenant_id               TEXT NOT NULL REFERENCES tenants (id),
    device_id               TEXT NOT NULL REFERENCES devices (id),
    registration_id         TEXT,
    management_mode         TEXT NOT NULL,
    api_level               BIGINT NOT NULL,
    manufacturer            TEXT NOT NULL,
    public_key              BLOB NOT NULL,
    cert_serial             TEXT,
    cert_fingerprint        TEXT,
    identity_key            TEXT NOT NULL,
    matched_key             TEXT,
    enterprise_specific_id  TEXT,
    imei                    TEXT,
    meid                    TEXT,
    serial                  TEXT,
    android_id              TEXT,
    current_entry           BIGINT NOT NULL CHECK (current_entry IN (0, 1)),
    enabled                 BIGINT NOT NULL CHECK (enabled IN (0, 1)),
    fcm_token               TEXT,
    fcm_token_dead_at       BIGINT,
    last_push_at            BIGINT,
    last_push_outcome       TEXT,
    checkin                 TEXT,
    last_checkin_at         BIGINT,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id)
);
CREATE INDEX android_devices_esid ON android_devices (tenant_id, enterprise_specific_id) WHERE enterprise_specific_id IS NOT NULL;
CREATE INDEX android_devices_imei ON android_devices (tenant_id, imei) WHERE imei IS NOT NULL;
CREATE INDEX android_devices_meid ON android_devices (tenant_id, meid) WHERE meid IS NOT NULL;
CREATE INDEX android_devices_serial ON android_devices (tenant_id, serial) WHERE serial IS NOT NULL;
CREATE INDEX android_devices_android_id ON android_devices (tenant_id, android_id) WHERE android_id IS NOT NULL;
-- Correlation by the strongest key (and the user+model heuristic).
CREATE INDEX android_devices_identity ON android_devices (tenant_id, identity_key);
-- R19: at most one current (not retired, not wiped) entry per hardware identity.
CREATE UNIQUE INDEX android_devices_current ON android_devices (tenant_id, identity_key) WHERE current_entry = 1;

CREATE TABLE android_identity_locks (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    identity_key    TEXT NOT NULL,
    registrations   BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, identity_key)
);

CREATE TABLE android_commands (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    id                  TEXT NOT NULL,
    device_id           TEXT NOT NULL REFERENCES devices (id),
    kind                TEXT NOT NULL,
    payload             TEXT NOT NULL,
    state               TEXT NOT NULL,
    ack_device_status   TEXT,
    queued_by           TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    sent_at             BIGINT,
    result_at           BIGINT,
    result              TEXT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX android_commands_queue ON android_commands (tenant_id, device_id, state, created_at, id);

CREATE TABLE android_nonces (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    device_id   TEXT NOT NULL,
    nonce       TEXT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, device_id, nonce)
);
CREATE INDEX android_nonces_expiry ON android_nonces (expires_at);

-- Registration tokens gain the purpose 'agent' (Android agent enrollment
-- tokens: from the client app, or in a provisioning QR code). SQLite cannot
-- alter a CHECK constraint, so the table is rebuilt with the same columns.
CREATE TABLE registration_tokens_new (
    token_hash  TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose     TEXT NOT NULL CHECK (purpose IN ('qr', 'profile', 'agent')),
    platform    TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
INSERT INTO registration_tokens_new SELECT token_hash, tenant_id, user_id, purpose, platform, created_at, expires_at, used_at FROM registration_tokens;
DROP TABLE registration_tokens;
ALTER TABLE registration_tokens_new RENAME TO registration_tokens;
