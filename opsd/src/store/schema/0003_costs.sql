-- Cost budgets: what has been notified (one row, the core's CostState as JSON) and every cost
-- check run, with its day, its worst state and its report.
CREATE TABLE cost_state (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    state_json TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE cost_checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    checked_at TEXT NOT NULL,
    today TEXT NOT NULL,
    state TEXT NOT NULL,
    forecast_over_budget INTEGER NOT NULL,
    report_json TEXT NOT NULL
);

CREATE INDEX cost_checks_by_time ON cost_checks (checked_at);
