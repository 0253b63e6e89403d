-- `opsd restore` takes a safety snapshot of the current state first: reason `pre_restore`.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt with the same columns
-- (nothing references it).
CREATE TABLE snapshots_with_restore (
    id TEXT PRIMARY KEY NOT NULL,
    database TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    reason TEXT NOT NULL CONSTRAINT snapshots_reason_known CHECK (reason IN ('drill', 'pre_deploy', 'scheduled', 'manual', 'pre_restore')),
    rollout_id TEXT,
    location TEXT NOT NULL,
    size_bytes BIGINT,
    sha256 TEXT,
    fingerprint_json TEXT CONSTRAINT snapshots_fingerprint_json_valid CHECK (fingerprint_json IS NULL OR json_valid(fingerprint_json)),
    deleted_at TEXT
);
INSERT INTO snapshots_with_restore
    SELECT id, database, taken_at, reason, rollout_id, location, size_bytes, sha256, fingerprint_json, deleted_at
    FROM snapshots;
DROP TABLE snapshots;
ALTER TABLE snapshots_with_restore RENAME TO snapshots;
CREATE INDEX snapshots_by_database_taken ON snapshots (database, taken_at, id);
CREATE INDEX snapshots_by_rollout ON snapshots (rollout_id);
