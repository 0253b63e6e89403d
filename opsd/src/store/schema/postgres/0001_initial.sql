-- opsd's schema on PostgreSQL: the tables, indexes and constraints SQLite reaches at its version
-- 12, so one set of statements runs on both. Released migrations are never edited: add a new
-- numbered file instead.
--
-- Text columns compare byte by byte (COLLATE "C"), as SQLite's do: times are RFC 3339 text whose
-- order is time order, and ids sort the same on both engines.

-- SQLite's JSON functions that opsd's statements use, for text holding JSON.
CREATE FUNCTION json_valid(document TEXT) RETURNS BOOLEAN LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    PERFORM document::jsonb;
    RETURN TRUE;
EXCEPTION WHEN others THEN
    RETURN FALSE;
END
$$;

-- The length of the array at `path` (`$.key`, one level deep), NULL when it is not an array.
CREATE FUNCTION json_array_length(document TEXT, path TEXT) RETURNS BIGINT LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN jsonb_typeof(document::jsonb -> substr(path, 3)) = 'array'
                THEN jsonb_array_length(document::jsonb -> substr(path, 3)) END
$$;

CREATE FUNCTION json_object(k1 TEXT, v1 TEXT, k2 TEXT, v2 TEXT, k3 TEXT, v3 TEXT)
RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object(k1, v1, k2, v2, k3, v3)::text
$$;

CREATE FUNCTION json_object(k1 TEXT, v1 BIGINT, k2 TEXT, v2 TEXT, k3 TEXT, v3 BIGINT)
RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT json_build_object(k1, v1, k2, v2, k3, v3)::text
$$;

CREATE TABLE rollouts (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    service TEXT COLLATE "C" NOT NULL,
    stable_version TEXT COLLATE "C" NOT NULL,
    canary_version TEXT COLLATE "C" NOT NULL,
    plan_name TEXT COLLATE "C" NOT NULL,
    phase TEXT COLLATE "C" NOT NULL,
    state_json TEXT NOT NULL CONSTRAINT rollouts_state_json_valid CHECK (json_valid(state_json)),
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TEXT COLLATE "C" NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    finished_at TEXT COLLATE "C",
    outcome TEXT COLLATE "C",
    -- Insertion order, which SQLite's statements read as `rowid`.
    rowid BIGINT GENERATED ALWAYS AS IDENTITY,
    CONSTRAINT rollouts_finished_has_outcome CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
CREATE UNIQUE INDEX rollouts_one_active_per_service ON rollouts (service) WHERE finished_at IS NULL;
CREATE INDEX rollouts_by_created ON rollouts (created_at, id);
CREATE INDEX rollouts_by_service_created ON rollouts (service, created_at, id);

CREATE TABLE decisions (
    rollout_id TEXT COLLATE "C" NOT NULL REFERENCES rollouts (id),
    seq BIGINT NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    step_index BIGINT NOT NULL,
    verdict TEXT COLLATE "C" NOT NULL,
    summary TEXT NOT NULL,
    evidence_json TEXT NOT NULL CONSTRAINT decisions_evidence_json_valid CHECK (json_valid(evidence_json)),
    PRIMARY KEY (rollout_id, seq)
);

CREATE TABLE events (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT COLLATE "C" NOT NULL,
    service TEXT COLLATE "C" NOT NULL,
    rollout_id TEXT COLLATE "C" REFERENCES rollouts (id),
    kind TEXT COLLATE "C" NOT NULL,
    message TEXT NOT NULL,
    data_json TEXT NOT NULL CONSTRAINT events_data_json_valid CHECK (json_valid(data_json))
);
CREATE INDEX events_by_at ON events (at, id);
CREATE INDEX events_by_service_at ON events (service, at, id);
CREATE INDEX events_by_rollout_at ON events (rollout_id, at, id);
CREATE INDEX events_by_kind_at ON events (kind, at, id);
CREATE INDEX events_by_service_kind_at ON events (service, kind, at, id);

-- Who did what through the API or the command line. Append-only, enforced by the trigger below.
CREATE TABLE audit_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TEXT COLLATE "C" NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL,
    action TEXT COLLATE "C" NOT NULL,
    target TEXT COLLATE "C" NOT NULL,
    reason TEXT,
    detail_json TEXT NOT NULL CONSTRAINT audit_log_detail_json_valid CHECK (json_valid(detail_json))
);
CREATE INDEX audit_log_by_at ON audit_log (at, seq);
CREATE INDEX audit_log_by_target_at ON audit_log (target, at, seq);

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log is append-only';
END
$$;
CREATE TRIGGER audit_log_refuses_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_refuses_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

CREATE TABLE stable_releases (
    service TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    version TEXT COLLATE "C" NOT NULL,
    release_json TEXT NOT NULL CONSTRAINT stable_releases_release_json_valid CHECK (json_valid(release_json)),
    updated_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE releases (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service TEXT COLLATE "C" NOT NULL,
    version TEXT COLLATE "C" NOT NULL,
    release_json TEXT NOT NULL CONSTRAINT releases_release_json_valid CHECK (json_valid(release_json)),
    promoted_at TEXT COLLATE "C" NOT NULL
);
CREATE INDEX releases_by_service ON releases (service, id);

CREATE TABLE api_tokens (
    token_hash TEXT COLLATE "C" PRIMARY KEY NOT NULL
        CONSTRAINT api_tokens_hash_is_sha256_hex CHECK (token_hash ~ '^[0-9a-f]{64}$'),
    name TEXT COLLATE "C" NOT NULL,
    role TEXT COLLATE "C" NOT NULL CONSTRAINT api_tokens_role_known CHECK (role IN ('viewer', 'operator')),
    created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE notifications_sent (
    key TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    sent_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE drills (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    database TEXT COLLATE "C" NOT NULL,
    started_at TEXT COLLATE "C" NOT NULL,
    finished_at TEXT COLLATE "C",
    outcome TEXT COLLATE "C" CONSTRAINT drills_outcome_known CHECK (outcome IN ('passed', 'failed', 'interrupted')),
    snapshot_id TEXT COLLATE "C",
    scratch TEXT,
    scratch_removed_at TEXT COLLATE "C",
    report_json TEXT NOT NULL CONSTRAINT drills_report_json_valid CHECK (json_valid(report_json)),
    CONSTRAINT drills_finished_has_outcome CHECK ((finished_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX drills_by_database_started ON drills (database, started_at, id);

CREATE TABLE snapshots (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    database TEXT COLLATE "C" NOT NULL,
    taken_at TEXT COLLATE "C" NOT NULL,
    reason TEXT COLLATE "C" NOT NULL CONSTRAINT snapshots_reason_known CHECK (reason IN ('drill', 'pre_deploy', 'scheduled', 'manual', 'pre_restore')),
    rollout_id TEXT COLLATE "C",
    location TEXT NOT NULL,
    size_bytes BIGINT,
    sha256 TEXT,
    fingerprint_json TEXT CONSTRAINT snapshots_fingerprint_json_valid CHECK (fingerprint_json IS NULL OR json_valid(fingerprint_json)),
    deleted_at TEXT COLLATE "C"
);
CREATE INDEX snapshots_by_database_taken ON snapshots (database, taken_at, id);
CREATE INDEX snapshots_by_rollout ON snapshots (rollout_id);

CREATE TABLE cost_state (
    id BIGINT PRIMARY KEY NOT NULL CHECK (id = 1),
    state_json TEXT NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE cost_checks (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checked_at TEXT COLLATE "C" NOT NULL,
    today TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL,
    forecast_over_budget BIGINT NOT NULL,
    report_json TEXT NOT NULL
);
CREATE INDEX cost_checks_by_time ON cost_checks (checked_at);

CREATE TABLE usage_daily (
    day TEXT COLLATE "C" NOT NULL,
    service TEXT COLLATE "C" NOT NULL,
    release_id TEXT COLLATE "C" NOT NULL,
    requests BIGINT NOT NULL,
    errors BIGINT NOT NULL,
    duration_ms BIGINT NOT NULL,
    bytes_out BIGINT NOT NULL,
    PRIMARY KEY (day, service, release_id)
);

CREATE TABLE store_keys (
    name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    key_hex TEXT NOT NULL,
    created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE freezes (
    scope TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT COLLATE "C" NOT NULL,
    since TEXT COLLATE "C" NOT NULL
);

CREATE TABLE maintenance_windows (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message TEXT NOT NULL,
    starts_at TEXT COLLATE "C" NOT NULL,
    ends_at TEXT COLLATE "C",
    actor TEXT COLLATE "C" NOT NULL,
    allows_deploys BIGINT NOT NULL DEFAULT 1,
    created_at TEXT COLLATE "C" NOT NULL
);

CREATE TABLE alarm_states (
    service TEXT COLLATE "C" NOT NULL,
    rule TEXT COLLATE "C" NOT NULL,
    state TEXT COLLATE "C" NOT NULL CONSTRAINT alarm_states_state_known CHECK (state IN ('OK', 'ALARM', 'INSUFFICIENT_DATA')),
    since TEXT COLLATE "C" NOT NULL,
    value DOUBLE PRECISION,
    reason TEXT NOT NULL,
    announced_alarm_since_ms BIGINT,
    updated_at TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (service, rule)
);

CREATE TABLE alarm_transitions (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    service TEXT COLLATE "C" NOT NULL,
    rule TEXT COLLATE "C" NOT NULL,
    from_state TEXT COLLATE "C",
    to_state TEXT COLLATE "C" NOT NULL,
    at TEXT COLLATE "C" NOT NULL,
    value DOUBLE PRECISION,
    reason TEXT NOT NULL
);
CREATE INDEX alarm_transitions_by_rule ON alarm_transitions (service, rule, id);

CREATE TABLE rollout_samples (
    rollout_id TEXT COLLATE "C" NOT NULL REFERENCES rollouts (id),
    release TEXT COLLATE "C" NOT NULL CONSTRAINT rollout_samples_release_known CHECK (release IN ('canary', 'baseline')),
    second BIGINT NOT NULL,
    sample_json TEXT NOT NULL CONSTRAINT rollout_samples_sample_json_valid CHECK (json_valid(sample_json)),
    PRIMARY KEY (rollout_id, release, second)
);
