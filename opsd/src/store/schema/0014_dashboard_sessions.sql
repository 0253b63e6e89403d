-- Dashboard sessions, kept so they outlive the opsd that started them (a restart, a takeover by
-- another instance). Only the SHA-256 of a session's id is kept, never the id, and the hash of
-- the token it stands for. Released migrations are never edited.
CREATE TABLE dashboard_sessions (
    key TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
CREATE INDEX dashboard_sessions_by_expiry ON dashboard_sessions (expires_at_ms);
