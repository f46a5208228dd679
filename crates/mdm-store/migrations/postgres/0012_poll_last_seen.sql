-- An Idle poll also reads when the channel was last seen, so that a device
-- polling again within a minute is not written again (ADR 0007). The poll's
-- covering index carries that column too.
DROP INDEX apple_enrollments_poll;
CREATE UNIQUE INDEX apple_enrollments_poll ON apple_enrollments (tenant_id, id) INCLUDE (enabled, cert_fingerprint, last_seen_at);
