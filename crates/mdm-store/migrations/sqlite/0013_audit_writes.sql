-- Fewer pages written per audit entry (ADR 0015). Keep in step with the
-- other backend's 0013_audit_writes.sql.
--
-- The trail is append-only (0003), so AUTOINCREMENT guards nothing: with no
-- row ever deleted, a plain INTEGER PRIMARY KEY already hands out increasing
-- ids, without the sqlite_sequence row that AUTOINCREMENT rewrites in every
-- transaction that appends. SQLite cannot drop AUTOINCREMENT in place, so the
-- table is rebuilt (nothing references it), ids kept.
--
-- The user and device indexes leave out the entries without a user or a
-- device (most of a device's protocol traffic has neither): a query by
-- `user_id = ?` or `device_id = ?` implies IS NOT NULL, so both still serve it.

CREATE TABLE audit_0013 (
    id            INTEGER PRIMARY KEY,
    tenant_id     TEXT,
    at            BIGINT NOT NULL,
    actor         TEXT NOT NULL,
    actor_label   TEXT NOT NULL,
    action        TEXT NOT NULL,
    subject_type  TEXT NOT NULL,
    subject_id    TEXT NOT NULL,
    user_id       TEXT,
    device_id     TEXT,
    details       TEXT NOT NULL
);
INSERT INTO audit_0013 (id, tenant_id, at, actor, actor_label, action, subject_type, subject_id, user_id, device_id, details)
    SELECT id, tenant_id, at, actor, actor_label, action, subject_type, subject_id, user_id, device_id, details FROM audit;
DROP TABLE audit;
ALTER TABLE audit_0013 RENAME TO audit;
DELETE FROM sqlite_sequence WHERE name = 'audit';

CREATE INDEX audit_tenant ON audit (tenant_id, id);
CREATE INDEX audit_tenant_actor ON audit (tenant_id, actor, id);
CREATE INDEX audit_tenant_user ON audit (tenant_id, user_id, id) WHERE user_id IS NOT NULL;
CREATE INDEX audit_tenant_device ON audit (tenant_id, device_id, id) WHERE device_id IS NOT NULL;

CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit trail is append-only');
END;
