-- Steno schema, version 2 (PostgreSQL): account security.
-- Emails are unique per firm, not across firms, so registering or inviting an email never tells a
-- stranger that another firm uses it. Same columns, same types: an older Steno binary reads and
-- writes the table unchanged.
ALTER TABLE users DROP CONSTRAINT users_email_key;
ALTER TABLE users ADD CONSTRAINT users_firm_email_key UNIQUE (firm_id, email);
CREATE INDEX users_by_email ON users (email, created_at);

-- Access tokens revoked before they expire (logout). Rows are deleted once the token expired.
CREATE TABLE revoked_tokens (
    token_id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX revoked_tokens_by_expiry ON revoked_tokens (expires_at);

-- A user's token generation: tokens carry the generation they were issued in, and a password
-- change moves it on, so every older token is refused. No row means generation 0.
CREATE TABLE token_generations (
    user_id TEXT PRIMARY KEY,
    generation BIGINT NOT NULL
);

-- Failed logins per account key (SHA-256 of the lowercased email) in the current window.
-- Windows that ended are deleted as new failures are counted.
CREATE TABLE login_failures (
    account_key TEXT PRIMARY KEY,
    window_started_at TEXT NOT NULL,
    failures BIGINT NOT NULL
);
CREATE INDEX login_failures_by_window ON login_failures (window_started_at);
