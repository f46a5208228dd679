-- Fewer index entries written per audit entry (ADR 0015). Keep in step with
-- the other backend's 0013_audit_writes.sql (which also drops SQLite's
-- AUTOINCREMENT; an identity column has no such cost here).
--
-- The user and device indexes leave out the entries without a user or a
-- device (most of a device's protocol traffic has neither): a query by
-- `user_id = $n` or `device_id = $n` implies IS NOT NULL, so both still serve it.
DROP INDEX audit_tenant_user;
DROP INDEX audit_tenant_device;
CREATE INDEX audit_tenant_user ON audit (tenant_id, user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX audit_tenant_device ON audit (tenant_id, device_id, id) WHERE device_id IS NOT NULL;
