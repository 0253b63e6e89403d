-- Alarm rules watched in production: each rule's current state per service, and its recent
-- transitions (bounded: the newest 50 per rule are kept). Released migrations are never edited.
CREATE TABLE alarm_states (
    service TEXT NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL CONSTRAINT alarm_states_state_known CHECK (state IN ('OK', 'ALARM', 'INSUFFICIENT_DATA')),
    since TEXT NOT NULL,
    value DOUBLE,
    reason TEXT NOT NULL,
    -- The start of an ALARM that was announced and whose recovery has not been (milliseconds since the epoch).
    announced_alarm_since_ms BIGINT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (service, rule)
);

CREATE TABLE alarm_transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    rule TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL,
    at TEXT NOT NULL,
    value DOUBLE,
    reason TEXT NOT NULL
);
CREATE INDEX alarm_transitions_by_rule ON alarm_transitions (service, rule, id);
