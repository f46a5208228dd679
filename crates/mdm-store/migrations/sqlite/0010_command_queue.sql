-- The commands a device's Idle may get next (queued, or NotNow to retry), in
-- queue order: the poll reads the first one straight from this index instead
-- of sorting the two states' rows (which made SQLite build a temporary
-- B-tree on every poll).
CREATE INDEX apple_commands_waiting ON apple_commands (tenant_id, enrollment_id, created_at, command_uuid)
    WHERE state IN ('queued', 'not_now');
