-- opsd's initial schema. Released migrations are never edited: add a new numbered file instead.

-- Rollouts. The engine's own state is opaque JSON text; the other columns are what opsd indexes.
-- `revision` starts at 1 and grows by one with every update, which names the revision it expects.
CREATE TABLE rollouts (
    id TEXT PRIMARY KEY NOT NULL,
    service TEXT NOT NULL,
    stable_version TEXT NOT NULL,
    canary_version TEXT NOT NULL,
    plan_name TEXT NOT NULL,
    phase TEXT NOT NULL,
    state_json TEXT NOT NULL CONSTRAINT rollouts_state_json_valid CHECK (json_valid(state_json)),
    revision BIGINT NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,
    CONSTRAINT rollouts_finished_has_outcome CHECK ((finished_at IS NULL) = (outcome IS NULL))
);

-- At most one unfinished rollout per service, enforced by the database itself.
CREATE UNIQUE INDEX rollouts_one_active_per_service ON rollouts (service) WHERE finished_at IS NULL;
CREATE INDEX rollouts_by_created ON rollouts (created_at, id);
CREATE INDEX rollouts_by_service_created ON rollouts (service, created_at, id);

-- The analysis decisions of one rollout, numbered 1, 2, ... per rollout.
CREATE TABLE decisions (
    rollout_id TEXT NOT NULL REFERENCES rollouts (id),
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    step_index BIGINT NOT NULL,
    verdict TEXT NOT NULL,
    summary TEXT NOT NULL,
    evidence_json TEXT NOT NULL CONSTRAINT decisions_evidence_json_valid CHECK (json_valid(evidence_json)),
    PRIMARY KEY (rollout_id, seq)
);

-- The timeline shown to people.
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    service TEXT NOT NULL,
    rollout_id TEXT REFERENCES rollouts (id),
    kind TEXT NOT NULL,
    message TEXT NOT NULL,
    data_json TEXT NOT NULL CONSTRAINT events_data_json_valid CHECK (json_valid(data_json))
);
CREATE INDEX events_by_at ON events (at, id);
CREATE INDEX events_by_service_at ON events (service, at, id);

-- Who did what through the API or the command line. Append-only, enforced by the triggers below.
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    reason TEXT,
    detail_json TEXT NOT NULL CONSTRAINT audit_log_detail_json_valid CHECK (json_valid(detail_json))
);

CREATE TRIGGER audit_log_refuses_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

CREATE TRIGGER audit_log_refuses_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log is append-only');
END;

-- The last release known to be stable, per service.
CREATE TABLE stable_releases (
    service TEXT PRIMARY KEY NOT NULL,
    version TEXT NOT NULL,
    release_json TEXT NOT NULL CONSTRAINT stable_releases_release_json_valid CHECK (json_valid(release_json)),
    updated_at TEXT NOT NULL
);

-- Every promotion to stable, so that a rollback can find the release before the current one.
CREATE TABLE releases (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    release_json TEXT NOT NULL CONSTRAINT releases_release_json_valid CHECK (json_valid(release_json)),
    promoted_at TEXT NOT NULL
);
CREATE INDEX releases_by_service ON releases (service, id);

-- API tokens, known only by the SHA-256 of the secret.
CREATE TABLE api_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL
        CONSTRAINT api_tokens_hash_is_sha256_hex
        CHECK (length(token_hash) = 64 AND token_hash NOT GLOB '*[^0-9a-f]*'),
    name TEXT NOT NULL,
    role TEXT NOT NULL CONSTRAINT api_tokens_role_known CHECK (role IN ('viewer', 'operator')),
    created_at TEXT NOT NULL
);

-- Notifications already delivered, so that a restart does not send them again.
CREATE TABLE notifications_sent (
    key TEXT PRIMARY KEY NOT NULL,
    sent_at TEXT NOT NULL
);
