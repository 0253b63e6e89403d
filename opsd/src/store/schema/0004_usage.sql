-- Usage counted by the local router, summed per UTC day, service and release: what the local
-- cost model prices. A row whose release is '' marks a day the recorder ran (a day with no
-- traffic costs $0 rather than being missing data).
CREATE TABLE usage_daily (
    day TEXT NOT NULL,
    service TEXT NOT NULL,
    release_id TEXT NOT NULL,
    requests INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    bytes_out INTEGER NOT NULL,
    PRIMARY KEY (day, service, release_id)
);
