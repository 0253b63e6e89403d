-- DR drills and the snapshots opsd took. Released migrations are never edited.

-- One drill per row. `scratch` names the scratch target (database, file or instance) and is
-- written before that target is created, so a drill interrupted by a crash leaves a row with
-- `finished_at` NULL that the next start finds and cleans up.
CREATE TABLE drills (
    id TEXT PRIMARY KEY NOT NULL,
    database TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT CONSTRAINT drills_outcome_known CHECK (outcome IN ('passed', 'failed', 'interrupted')),
    snapshot_id TEXT,
    scratch TEXT,
    scratch_removed_at TEXT,
    report_json TEXT NOT NULL CONSTRAINT drills_report_json_valid CHECK (json_valid(report_json)),
    CONSTRAINT drills_finished_has_outcome CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX drills_by_database_started ON drills (database, started_at, id);

-- Snapshots opsd took (for drills, before deployments, on the snapshot schedule, or by hand), with the source's row counts
-- and check values at that instant. `deleted_at` is set when retention removed it.
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY NOT NULL,
    database TEXT NOT NULL,
    taken_at TEXT NOT NULL,
    reason TEXT NOT NULL CONSTRAINT snapshots_reason_known CHECK (reason IN ('drill', 'pre_deploy', 'scheduled', 'manual')),
    rollout_id TEXT,
    location TEXT NOT NULL,
    size_bytes BIGINT,
    sha256 TEXT,
    fingerprint_json TEXT CONSTRAINT snapshots_fingerprint_json_valid CHECK (fingerprint_json IS NULL OR json_valid(fingerprint_json)),
    deleted_at TEXT
);
CREATE INDEX snapshots_by_database_taken ON snapshots (database, taken_at, id);
CREATE INDEX snapshots_by_rollout ON snapshots (rollout_id);
