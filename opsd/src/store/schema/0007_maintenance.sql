-- Maintenance windows an operator started or planned with `opsd maintenance start` (scheduled
-- windows live in opsd.yaml). `ends_at` NULL: until `opsd maintenance stop`.
CREATE TABLE maintenance_windows (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT,
    actor TEXT NOT NULL,
    -- 1: deploys may move during it even outside the deploy windows (R-WINDOW-1).
    allows_deploys INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
