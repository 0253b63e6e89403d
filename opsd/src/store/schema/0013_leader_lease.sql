-- The leader lease: which opsd acts for all the instances sharing this store, until when, and
-- its epoch, which every write of the leader checks in its own transaction (fencing). One row.
-- Released migrations are never edited.
CREATE TABLE leader_lease (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    holder TEXT NOT NULL,
    api TEXT NOT NULL,
    epoch BIGINT NOT NULL,
    since TEXT NOT NULL,
    -- The database's clock, in milliseconds since the epoch: instances' clocks never compare.
    expires_at_ms BIGINT NOT NULL
);
