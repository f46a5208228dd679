-- An Idle poll checks the enrollment (enabled, bound certificate) and the
-- certificate (known, not revoked) on every request. These indexes hold
-- exactly those columns, so the poll reads two small indexes instead of the
-- wide rows behind them (tokens, DER blobs), and its working set stays in
-- the page cache as the fleet grows.
CREATE UNIQUE INDEX apple_enrollments_poll ON apple_enrollments (tenant_id, id, enabled, cert_fingerprint);
DROP INDEX certificates_fingerprint;
CREATE INDEX certificates_fingerprint ON certificates (tenant_id, fingerprint_sha256, serial, revoked_at);
