-- Certificate authorities, one-time SCEP challenges, issued certificates.
-- Keep in step with the other backend's 0002_pki.sql.

CREATE TABLE certificate_authorities (
    id          TEXT PRIMARY KEY NOT NULL,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    subject     TEXT NOT NULL,
    cert_der    BLOB NOT NULL,
    sealed_key  BLOB NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    active      BIGINT NOT NULL CHECK (active IN (0, 1))
);
-- One active CA per tenant.
CREATE UNIQUE INDEX certificate_authorities_active ON certificate_authorities (tenant_id) WHERE active = 1;

CREATE TABLE scep_challenges (
    id              TEXT PRIMARY KEY NOT NULL,
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    registration    TEXT NOT NULL,
    challenge_hash  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE UNIQUE INDEX scep_challenges_hash ON scep_challenges (tenant_id, challenge_hash);

CREATE TABLE certificates (
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    serial              TEXT NOT NULL,
    ca_id               TEXT NOT NULL REFERENCES certificate_authorities (id),
    subject             TEXT NOT NULL,
    fingerprint_sha256  TEXT NOT NULL,
    not_before          BIGINT NOT NULL,
    not_after           BIGINT NOT NULL,
    issued_at           BIGINT NOT NULL,
    registration        TEXT,
    device_id           TEXT,
    renewal_of          TEXT,
    revoked_at          BIGINT,
    cert_der            BLOB NOT NULL,
    PRIMARY KEY (tenant_id, serial)
);
CREATE INDEX certificates_issued ON certificates (tenant_id, issued_at, serial);
CREATE INDEX certificates_fingerprint ON certificates (tenant_id, fingerprint_sha256);
CREATE INDEX certificates_registration ON certificates (tenant_id, registration);
