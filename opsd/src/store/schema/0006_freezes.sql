-- Stop-the-line freezes set by `opsd freeze`: while a row covers a service (its own name, or `*`
-- for every service), deploys of it are refused unless overridden.
CREATE TABLE freezes (
    scope TEXT PRIMARY KEY NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    since TEXT NOT NULL
);
