-- A rollout's own timeline (its page lists the events of that rollout, newest first) is read by
-- this index instead of a scan of every event. Released migrations are never edited.
CREATE INDEX events_by_rollout_at ON events (rollout_id, at, id);
