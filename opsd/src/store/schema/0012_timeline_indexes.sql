-- The merged timeline reads each page by an index, whatever its filters: events by kind (across
-- services, and within one service), and the audit log by time (all of it, and per target),
-- so a page a year back or a kind with few entries costs as much as the newest page.
-- Released migrations are never edited.
CREATE INDEX events_by_kind_at ON events (kind, at, id);
CREATE INDEX events_by_service_kind_at ON events (service, kind, at, id);
CREATE INDEX audit_log_by_at ON audit_log (at, seq);
CREATE INDEX audit_log_by_target_at ON audit_log (target, at, seq);
