-- A profile-signing identity an administrator brings (ADR 0017): a
-- certificate from another CA (a public one, or the organisation's own) and
-- its key, which then signs the tenant's management profiles instead of the
-- signer the tenant CA certifies. One per tenant; uploading again replaces it.
-- Keep in step with the other backend's 0015_signing_identities.sql.

CREATE TABLE signing_identities (
    tenant_id          TEXT PRIMARY KEY REFERENCES tenants (id),
    cert_der           BLOB NOT NULL,
    -- The intermediates the signing certificate chains through, as PEM
    -- (empty when it is issued by a root directly); carried in every signature.
    chain_pem          TEXT NOT NULL,
    -- The PKCS#8 key sealed by the vault (tenant and fingerprint as associated data).
    sealed_key         BLOB NOT NULL,
    fingerprint_sha256 TEXT NOT NULL,
    subject            TEXT NOT NULL,
    issuer             TEXT NOT NULL,
    key_kind           TEXT NOT NULL,
    not_before         BIGINT NOT NULL,
    not_after          BIGINT NOT NULL,
    uploaded_at        BIGINT NOT NULL,
    uploaded_by        TEXT NOT NULL
);
