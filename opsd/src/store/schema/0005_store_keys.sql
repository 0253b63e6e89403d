-- Keys opsd generates for itself and keeps only here: `fingerprint` keys the HMAC that views use
-- in place of release environment values.
CREATE TABLE store_keys (
    name TEXT PRIMARY KEY NOT NULL,
    key_hex TEXT NOT NULL,
    created_at TEXT NOT NULL
);
