-- An Idle poll checks the enrollment (enabled, bound certificate) and the
-- certificate (known, not revoked) on every request. These indexes carry
-- exactly those columns, so the poll can be answered from the indexes
-- instead of the wide rows behind them (tokens, DER blobs).
CREATE UNIQUE INDEX apple_enrollments_poll ON apple_enrollments (tenant_id, id) INCLUDE (enabled, cert_fingerprint);
DROP INDEX certificates_fingerprint;
CREATE INDEX certificates_fingerprint ON certificates (tenant_id, fingerprint_sha256) INCLUDE (serial, revoked_at);
