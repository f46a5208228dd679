-- The management-profile signer of each tenant CA: an ECDSA P-256 identity
-- the CA certifies, so that signing a profile costs no RSA private-key
-- operation and the CA key signs only certificates and SCEP replies (ADR 0016). Its
-- certificate is also recorded in `certificates`. Keep in step with the
-- other backend's 0014_profile_signers.sql.

CREATE TABLE profile_signers (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    ca_id       TEXT NOT NULL REFERENCES certificate_authorities (id),
    serial      TEXT NOT NULL,
    cert_der    BYTEA NOT NULL,
    -- The PKCS#8 key sealed by the vault (tenant and serial as associated data).
    sealed_key  BYTEA NOT NULL,
    not_after   BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, serial)
);
-- The current signer: the CA's signer that lasts longest.
CREATE INDEX profile_signers_current ON profile_signers (tenant_id, ca_id, not_after);
