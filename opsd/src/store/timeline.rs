//! The timeline of events shown to people (merged, for the dashboard, with drills, snapshots,
//! cost checks and the audit log into one stream), and the append-only audit log of who did
//! what (the database's own triggers refuse UPDATE and DELETE on it).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::error::ErrorKind;
use sqlx::Row;

use super::{parse_json, parse_time, time_text, violation, Store, StoreError};

/// One timeline event about to be recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewEvent {
    pub at: DateTime<Utc>,
    pub service: String,
    /// Must name a stored rollout when set.
    pub rollout_id: Option<String>,
    pub kind: String,
    pub message: String,
    pub data: serde_json::Value,
}

/// Appends an event on `connection` (a transaction of [`Store::save_decided_steps`] or a
/// connection of its own); returns its id.
pub(super) async fn insert_event(
    connection: &mut sqlx::AnyConnection,
    event: &NewEvent,
) -> Result<i64, StoreError> {
    let appended = sqlx::query(
        "INSERT INTO events (at, service, rollout_id, kind, message, data_json) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
    )
    .bind(time_text(event.at))
    .bind(&event.service)
    .bind(&event.rollout_id)
    .bind(&event.kind)
    .bind(&event.message)
    .bind(event.data.to_string())
    .fetch_one(&mut *connection)
    .await;
    match appended {
        Ok(row) => Ok(row.try_get("id")?),
        Err(error) if violation(&error) == Some(ErrorKind::ForeignKeyViolation) => {
            Err(StoreError::RolloutNotFound {
                rollout_id: event.rollout_id.clone().unwrap_or_default(),
            })
        }
        Err(error) => Err(error.into()),
    }
}

/// A recorded timeline event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub service: String,
    pub rollout_id: Option<String>,
    pub kind: String,
    pub message: String,
    pub data: serde_json::Value,
}

/// Which timeline entries to list: every field narrows, `None` does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineFilter {
    pub service: Option<String>,
    pub kind: Option<String>,
    /// At or after.
    pub since: Option<DateTime<Utc>>,
    /// Before.
    pub until: Option<DateTime<Utc>>,
    pub limit: u32,
    /// The database of `service`, whose drills and snapshots are then on its timeline.
    pub database: Option<String>,
    /// Whether the audit log's entries are merged in (operators only).
    pub include_audit: bool,
    /// Only this rollout's entries: its events and snapshots.
    pub rollout_id: Option<String>,
}

/// One entry of the merged timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    pub at: DateTime<Utc>,
    /// Where it comes from: `event`, `drill`, `snapshot`, `cost_check` or `audit`.
    pub source: String,
    /// Its id in that source (an event's id, a drill's, an audit entry's `seq`...).
    pub id: String,
    /// The service; a drill's or snapshot's database; empty for account-wide cost checks.
    pub service: String,
    pub rollout_id: Option<String>,
    pub kind: String,
    pub message: String,
    pub data: serde_json::Value,
}

/// The merged timeline's query. Parameters: 1 service, 2 kind, 3 since, 4 until, 5 limit,
/// 6 the service's database (drills and snapshots of it match the service), 7 audit included,
/// 8 one rollout (only its events and snapshots then).
///
/// Events and audit entries grow without bound, so each combination of filters has a branch
/// of its own whose conditions an index answers (`service = ?1`, not `?1 IS NULL OR service =
/// ?1`, which SQLite cannot look up), and the time bounds are ranges on `at`: a page is read
/// from its index in time order, however far back it is (a branch whose filters do not apply
/// is ruled out before it reads a row). Times are RFC 3339 text starting with the year, so
/// `'9999'` is after every stored time. Public for the scale bench's query plans.
#[doc(hidden)]
pub const MERGED_TIMELINE: &str = "\
SELECT at, source, ref, service, rollout_id, kind, message, data_json FROM (
  SELECT * FROM (
    SELECT at, 'event' AS source, CAST(id AS TEXT) AS ref, service, rollout_id, kind, message,
           data_json
    FROM events
    WHERE $1 IS NULL AND $2 IS NULL AND $8 IS NULL AND at >= COALESCE($3, '') AND at < COALESCE($4, '9999')
    ORDER BY at DESC, id DESC LIMIT $5) AS branch_1
  UNION ALL
  SELECT * FROM (
    SELECT at, 'event' AS source, CAST(id AS TEXT) AS ref, service, rollout_id, kind, message,
           data_json
    FROM events
    WHERE $1 IS NULL AND kind = $2 AND $8 IS NULL AND at >= COALESCE($3, '') AND at < COALESCE($4, '9999')
    ORDER BY at DESC, id DESC LIMIT $5) AS branch_2
  UNION ALL
  SELECT * FROM (
    SELECT at, 'event' AS source, CAST(id AS TEXT) AS ref, service, rollout_id, kind, message,
           data_json
    FROM events
    WHERE service = $1 AND $2 IS NULL AND $8 IS NULL AND at >= COALESCE($3, '') AND at < COALESCE($4, '9999')
    ORDER BY at DESC, id DESC LIMIT $5) AS branch_3
  UNION ALL
  SELECT * FROM (
    SELECT at, 'event' AS source, CAST(id AS TEXT) AS ref, service, rollout_id, kind, message,
           data_json
    FROM events
    WHERE service = $1 AND kind = $2 AND $8 IS NULL AND at >= COALESCE($3, '') AND at < COALESCE($4, '9999')
    ORDER BY at DESC, id DESC LIMIT $5) AS branch_4
  UNION ALL
  SELECT * FROM (
    SELECT at, 'event' AS source, CAST(id AS TEXT) AS ref, service, rollout_id, kind, message,
           data_json
    FROM events
    WHERE rollout_id = $8 AND ($1 IS NULL OR service = $1) AND ($2 IS NULL OR kind = $2)
      AND at >= COALESCE($3, '') AND at < COALESCE($4, '9999')
    ORDER BY at DESC, id DESC LIMIT $5) AS branch_5
  UNION ALL
  SELECT * FROM (
    SELECT * FROM (
      SELECT COALESCE(finished_at, started_at) AS at, 'drill' AS source, id AS ref,
             database AS service, NULL AS rollout_id,
             CASE WHEN outcome IS NULL THEN 'drill_started' ELSE 'drill_' || outcome END AS kind,
             'drill of ' || database || ': ' || COALESCE(outcome, 'running') AS message,
             json_object('drill_id', id, 'database', database, 'outcome', outcome) AS data_json
      FROM drills WHERE $8 IS NULL AND ($1 IS NULL OR database = $6)) AS drill_rows
    WHERE ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4)
    ORDER BY at DESC LIMIT $5) AS branch_6
  UNION ALL
  SELECT * FROM (
    SELECT * FROM (
      SELECT taken_at AS at, 'snapshot' AS source, id AS ref, database AS service, rollout_id,
             'snapshot' AS kind,
             'snapshot ' || id || ' of ' || database || ' (' || reason || ')' AS message,
             json_object('snapshot_id', id, 'database', database, 'reason', reason) AS data_json
      FROM snapshots WHERE reason <> 'pre_deploy' AND ($1 IS NULL OR database = $6)
        AND ($8 IS NULL OR rollout_id = $8)) AS snapshot_rows
    WHERE ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4)
    ORDER BY at DESC LIMIT $5) AS branch_7
  UNION ALL
  SELECT * FROM (
    SELECT * FROM (
      SELECT checked_at AS at, 'cost_check' AS source, CAST(id AS TEXT) AS ref, '' AS service,
             NULL AS rollout_id,
             CASE WHEN anomalies > 0 THEN 'cost_anomaly' ELSE 'cost_check' END AS kind,
             'cost check of ' || today || ': ' || state
               || CASE WHEN forecast_over_budget <> 0 THEN ', forecast over budget' ELSE '' END
               || CASE WHEN anomalies > 0 THEN ', ' || anomalies || ' anomal'
                    || CASE WHEN anomalies = 1 THEN 'y' ELSE 'ies' END ELSE '' END AS message,
             json_object('check_id', id, 'state', state, 'anomalies', anomalies) AS data_json
      FROM (SELECT *, CASE WHEN json_valid(report_json)
                           THEN COALESCE(json_array_length(report_json, '$.anomalies'), 0)
                           ELSE 0 END AS anomalies
            FROM cost_checks) AS checks
      WHERE $1 IS NULL AND $8 IS NULL) AS cost_rows
    WHERE ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR at >= $3) AND ($4 IS NULL OR at < $4)
    ORDER BY at DESC LIMIT $5) AS branch_8
  UNION ALL
  SELECT * FROM (
    SELECT at, 'audit' AS source, CAST(seq AS TEXT) AS ref, target AS service,
           NULL AS rollout_id, 'operator_action' AS kind,
           actor || ' (' || role || ') ' || action || ' ' || target
             || COALESCE(': ' || reason, '') AS message,
           detail_json AS data_json
    FROM audit_log
    WHERE $7 AND $8 IS NULL AND $1 IS NULL AND ($2 IS NULL OR $2 = 'operator_action') AND at >= COALESCE($3, '') AND at < COALESCE($4, '9999')
    ORDER BY at DESC, seq DESC LIMIT $5) AS branch_9
  UNION ALL
  SELECT * FROM (
    SELECT at, 'audit' AS source, CAST(seq AS TEXT) AS ref, target AS service,
           NULL AS rollout_id, 'operator_action' AS kind,
           actor || ' (' || role || ') ' || action || ' ' || target
             || COALESCE(': ' || reason, '') AS message,
           detail_json AS data_json
    FROM audit_log
    WHERE $7 AND $8 IS NULL AND target = $1 AND ($2 IS NULL OR $2 = 'operator_action') AND at >= COALESCE($3, '') AND at < COALESCE($4, '9999')
    ORDER BY at DESC, seq DESC LIMIT $5) AS branch_10
) AS merged
ORDER BY at DESC, source, ref DESC LIMIT $5";

/// One audit entry about to be recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    /// Who acted: a token's name, or `opsd` for the control plane itself.
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub detail: serde_json::Value,
}

/// A recorded audit entry; `seq` only grows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub reason: Option<String>,
    pub detail: serde_json::Value,
}

impl Store {
    /// Records a timeline event and returns its id.
    pub async fn append_event(&self, event: &NewEvent) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let id = insert_event(&mut transaction, event).await?;
        transaction.commit().await?;
        Ok(id)
    }

    /// Up to `limit` events, newest first, of one service or of all, at or after `since` when
    /// given.
    pub async fn list_events(
        &self,
        service: Option<&str>,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<EventRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, service, rollout_id, kind, message, data_json FROM events \
             WHERE ($1 IS NULL OR service = $1) AND ($2 IS NULL OR at >= $2) \
             ORDER BY at DESC, id DESC LIMIT $3",
        )
        .bind(service)
        .bind(since.map(time_text))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Up to `filter.limit` entries matching the filter, newest first: the dashboard's one
    /// stream of timeline events, drills, snapshots (those not taken before a deployment, which
    /// have their own event), cost checks and, when asked, audit entries. Each source is cut to
    /// the limit by its own index before they are merged.
    pub async fn timeline(
        &self,
        filter: &TimelineFilter,
    ) -> Result<Vec<TimelineEntry>, StoreError> {
        let rows = sqlx::query(MERGED_TIMELINE)
            .bind(filter.service.as_deref())
            .bind(filter.kind.as_deref())
            .bind(filter.since.map(time_text))
            .bind(filter.until.map(time_text))
            .bind(i64::from(filter.limit))
            .bind(filter.database.as_deref())
            .bind(filter.include_audit)
            .bind(filter.rollout_id.as_deref())
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(TimelineEntry {
                    at: parse_time(&row.try_get::<String, _>("at")?, "timeline.at")?,
                    source: row.try_get("source")?,
                    id: row.try_get("ref")?,
                    service: row.try_get("service")?,
                    rollout_id: row.try_get("rollout_id")?,
                    kind: row.try_get("kind")?,
                    message: row.try_get("message")?,
                    data: parse_json(&row.try_get::<String, _>("data_json")?, "timeline.data")?,
                })
            })
            .collect()
    }

    /// Appends an audit entry and returns its `seq`.
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<i64, StoreError> {
        let mut transaction = self.begin_write().await?;
        let row = sqlx::query(
            "INSERT INTO audit_log (at, actor, role, action, target, reason, detail_json) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq",
        )
        .bind(time_text(entry.at))
        .bind(&entry.actor)
        .bind(&entry.role)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.reason)
        .bind(entry.detail.to_string())
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        let seq: i64 = row.try_get("seq")?;
        tracing::info!(
            seq,
            actor = %entry.actor,
            role = %entry.role,
            action = %entry.action,
            target = %entry.target,
            "audit entry recorded"
        );
        Ok(seq)
    }

    /// The newest `limit` audit entries, newest first.
    pub async fn list_audit(&self, limit: u32) -> Result<Vec<AuditRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, role, action, target, reason, detail_json FROM audit_log \
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(audit_from_row).collect()
    }
}

fn event_from_row(row: &AnyRow) -> Result<EventRecord, StoreError> {
    Ok(EventRecord {
        id: row.try_get("id")?,
        at: parse_time(&row.try_get::<String, _>("at")?, "events.at")?,
        service: row.try_get("service")?,
        rollout_id: row.try_get("rollout_id")?,
        kind: row.try_get("kind")?,
        message: row.try_get("message")?,
        data: parse_json(&row.try_get::<String, _>("data_json")?, "events.data_json")?,
    })
}

fn audit_from_row(row: &AnyRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        seq: row.try_get("seq")?,
        at: parse_time(&row.try_get::<String, _>("at")?, "audit_log.at")?,
        actor: row.try_get("actor")?,
        role: row.try_get("role")?,
        action: row.try_get("action")?,
        target: row.try_get("target")?,
        reason: row.try_get("reason")?,
        detail: parse_json(
            &row.try_get::<String, _>("detail_json")?,
            "audit_log.detail_json",
        )?,
    })
}
