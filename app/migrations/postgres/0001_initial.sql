-- Steno schema, version 1 (PostgreSQL). Identifiers are UUID text; times are RFC 3339 UTC text; money is integer cents.
CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE firms (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    address TEXT NOT NULL DEFAULT '',
    logo BYTEA,
    logo_content_type TEXT,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    email TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    created_at TEXT NOT NULL
);
CREATE INDEX users_by_firm ON users (firm_id);

CREATE TABLE invitations (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    email TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    token_hash TEXT NOT NULL UNIQUE,
    invited_by TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    accepted_at TEXT
);
CREATE INDEX invitations_by_firm ON invitations (firm_id);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    filename TEXT NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    storage_key TEXT NOT NULL,
    extracted_text TEXT NOT NULL,
    uploaded_by TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL
);
CREATE INDEX documents_by_firm ON documents (firm_id, created_at);

CREATE TABLE matters (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    title TEXT NOT NULL,
    facts_json TEXT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL
);
CREATE INDEX matters_by_firm ON matters (firm_id, created_at);

CREATE TABLE matter_documents (
    matter_id TEXT NOT NULL REFERENCES matters(id),
    document_id TEXT NOT NULL REFERENCES documents(id),
    position BIGINT NOT NULL,
    PRIMARY KEY (matter_id, document_id)
);
CREATE INDEX matter_documents_by_document ON matter_documents (document_id);

CREATE TABLE letters (
    id TEXT PRIMARY KEY,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    matter_id TEXT NOT NULL REFERENCES matters(id),
    current_revision BIGINT NOT NULL,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX letters_by_firm ON letters (firm_id, created_at);

CREATE TABLE letter_revisions (
    letter_id TEXT NOT NULL REFERENCES letters(id),
    revision BIGINT NOT NULL,
    firm_id TEXT NOT NULL REFERENCES firms(id),
    draft_json TEXT NOT NULL,
    instruction TEXT,
    engine TEXT NOT NULL,
    input_tokens BIGINT,
    output_tokens BIGINT,
    created_by TEXT NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (letter_id, revision)
);
