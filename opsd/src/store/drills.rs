//! DR drills and the snapshots opsd took. A drill row is written when the drill starts and names
//! its scratch target before that target exists, so an interrupted drill can be found and cleaned
//! up at the next start.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{
    parse_json, parse_optional_time, parse_time, require_json, time_text, Store, StoreError,
};

/// A stored drill.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrillRecord {
    pub id: String,
    pub database: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `passed`, `failed` or `interrupted`; `None` while it runs.
    pub outcome: Option<String>,
    pub snapshot_id: Option<String>,
    pub scratch: Option<String>,
    pub scratch_removed_at: Option<DateTime<Utc>>,
    /// The drill's report (phases, measurements, verification) as the runner wrote it.
    pub report: serde_json::Value,
}

/// A snapshot opsd took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRecord {
    pub id: String,
    pub database: String,
    pub taken_at: DateTime<Utc>,
    /// `drill`, `pre_deploy`, `scheduled` or `manual`.
    pub reason: String,
    pub rollout_id: Option<String>,
    pub location: String,
    pub size_bytes: Option<i64>,
    pub sha256: Option<String>,
    /// The source's row counts and check values at that instant, as JSON.
    pub fingerprint: Option<serde_json::Value>,
    pub deleted_at: Option<DateTime<Utc>>,
}

const DRILL_COLUMNS: &str = "id, database, started_at, finished_at, outcome, snapshot_id, \
                             scratch, scratch_removed_at, report_json";
const SNAPSHOT_COLUMNS: &str = "id, database, taken_at, reason, rollout_id, location, size_bytes, \
                                sha256, fingerprint_json, deleted_at";

impl Store {
    /// Records a drill that just started.
    pub async fn insert_drill(
        &self,
        id: &str,
        database: &str,
        started_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO drills (id, database, started_at, report_json) VALUES ($1, $2, $3, '{}')",
        )
        .bind(id)
        .bind(database)
        .bind(time_text(started_at))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Names the drill's snapshot and scratch target; called before the scratch target is made.
    pub async fn set_drill_targets(
        &self,
        id: &str,
        snapshot_id: &str,
        scratch: &str,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("UPDATE drills SET snapshot_id = $1, scratch = $2 WHERE id = $3")
            .bind(snapshot_id)
            .bind(scratch)
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Records that the drill's scratch target is gone.
    pub async fn mark_scratch_removed(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("UPDATE drills SET scratch_removed_at = $1 WHERE id = $2")
            .bind(time_text(at))
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Finishes a drill with its outcome and report. A finished drill is not changed again.
    pub async fn finish_drill(
        &self,
        id: &str,
        outcome: &str,
        finished_at: DateTime<Utc>,
        report_json: &str,
    ) -> Result<(), StoreError> {
        require_json(report_json, "drill report")?;
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "UPDATE drills SET finished_at = $1, outcome = $2, report_json = $3 \
             WHERE id = $4 AND finished_at IS NULL",
        )
        .bind(time_text(finished_at))
        .bind(outcome)
        .bind(report_json)
        .bind(id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// One drill by id.
    pub async fn get_drill(&self, id: &str) -> Result<Option<DrillRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {DRILL_COLUMNS} FROM drills WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(drill_from_row).transpose()
    }

    /// The newest drills first, of one database or all.
    pub async fn list_drills(
        &self,
        database: Option<&str>,
        limit: u32,
    ) -> Result<Vec<DrillRecord>, StoreError> {
        let rows = match database {
            Some(database) => {
                sqlx::query(&format!(
                    "SELECT {DRILL_COLUMNS} FROM drills WHERE database = $1 \
                     ORDER BY started_at DESC, id DESC LIMIT $2"
                ))
                .bind(database)
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "SELECT {DRILL_COLUMNS} FROM drills ORDER BY started_at DESC, id DESC LIMIT $1"
                ))
                .bind(i64::from(limit))
                .fetch_all(self.pool())
                .await?
            }
        };
        rows.iter().map(drill_from_row).collect()
    }

    /// The newest finished drill of a database (what the drill gate judges).
    pub async fn latest_finished_drill(
        &self,
        database: &str,
    ) -> Result<Option<DrillRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DRILL_COLUMNS} FROM drills WHERE database = $1 AND outcome IN ('passed', 'failed') \
             ORDER BY started_at DESC, id DESC LIMIT 1"
        ))
        .bind(database)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(drill_from_row).transpose()
    }

    /// Drills that never finished (their process died), oldest first.
    pub async fn unfinished_drills(&self) -> Result<Vec<DrillRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DRILL_COLUMNS} FROM drills WHERE finished_at IS NULL ORDER BY started_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(drill_from_row).collect()
    }

    /// Records a snapshot opsd took.
    pub async fn insert_snapshot(&self, snapshot: &SnapshotRecord) -> Result<(), StoreError> {
        let fingerprint = snapshot.fingerprint.as_ref().map(|value| value.to_string());
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO snapshots (id, database, taken_at, reason, rollout_id, location, \
             size_bytes, sha256, fingerprint_json) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&snapshot.id)
        .bind(&snapshot.database)
        .bind(time_text(snapshot.taken_at))
        .bind(&snapshot.reason)
        .bind(&snapshot.rollout_id)
        .bind(&snapshot.location)
        .bind(snapshot.size_bytes)
        .bind(&snapshot.sha256)
        .bind(fingerprint)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// One snapshot by id.
    pub async fn get_snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(snapshot_from_row).transpose()
    }

    /// A database's snapshots that retention has not removed, newest first.
    pub async fn live_snapshots(&self, database: &str) -> Result<Vec<SnapshotRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE database = $1 AND deleted_at IS NULL \
             ORDER BY taken_at DESC, id DESC"
        ))
        .bind(database)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(snapshot_from_row).collect()
    }

    /// The snapshot taken before a rollout started, if any.
    pub async fn snapshot_of_rollout(
        &self,
        rollout_id: &str,
    ) -> Result<Option<SnapshotRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {SNAPSHOT_COLUMNS} FROM snapshots WHERE rollout_id = $1 ORDER BY taken_at DESC LIMIT 1"
        ))
        .bind(rollout_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(snapshot_from_row).transpose()
    }

    /// The newest snapshot's id of each rollout of `service` created at or after `since`, by
    /// rollout id (the snapshots of a page of history in one query).
    pub async fn snapshots_of_rollouts_since(
        &self,
        service: &str,
        since: DateTime<Utc>,
    ) -> Result<HashMap<String, String>, StoreError> {
        let rows = sqlx::query(
            "SELECT rollout_id, id FROM snapshots WHERE rollout_id IN \
               (SELECT id FROM rollouts WHERE service = $1 AND created_at >= $2) \
             ORDER BY taken_at, id",
        )
        .bind(service)
        .bind(time_text(since))
        .fetch_all(self.pool())
        .await?;
        let mut newest = HashMap::new();
        for row in &rows {
            // In time order, so the last one of each rollout stays.
            newest.insert(row.try_get("rollout_id")?, row.try_get("id")?);
        }
        Ok(newest)
    }

    /// Records that retention removed a snapshot.
    pub async fn mark_snapshot_deleted(
        &self,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("UPDATE snapshots SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(time_text(at))
            .bind(id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }
}

fn drill_from_row(row: &AnyRow) -> Result<DrillRecord, StoreError> {
    Ok(DrillRecord {
        id: row.try_get("id")?,
        database: row.try_get("database")?,
        started_at: parse_time(&row.try_get::<String, _>("started_at")?, "drill start")?,
        finished_at: parse_optional_time(row.try_get("finished_at")?, "drill end")?,
        outcome: row.try_get("outcome")?,
        snapshot_id: row.try_get("snapshot_id")?,
        scratch: row.try_get("scratch")?,
        scratch_removed_at: parse_optional_time(
            row.try_get("scratch_removed_at")?,
            "scratch removal time",
        )?,
        report: parse_json(&row.try_get::<String, _>("report_json")?, "drill report")?,
    })
}

fn snapshot_from_row(row: &AnyRow) -> Result<SnapshotRecord, StoreError> {
    let fingerprint: Option<String> = row.try_get("fingerprint_json")?;
    Ok(SnapshotRecord {
        id: row.try_get("id")?,
        database: row.try_get("database")?,
        taken_at: parse_time(&row.try_get::<String, _>("taken_at")?, "snapshot time")?,
        reason: row.try_get("reason")?,
        rollout_id: row.try_get("rollout_id")?,
        location: row.try_get("location")?,
        size_bytes: row.try_get("size_bytes")?,
        sha256: row.try_get("sha256")?,
        fingerprint: fingerprint
            .map(|text| parse_json(&text, "snapshot fingerprint"))
            .transpose()?,
        deleted_at: parse_optional_time(row.try_get("deleted_at")?, "snapshot deletion time")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(second: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + second, 0).unwrap()
    }

    #[tokio::test]
    async fn an_unfinished_drill_is_found_until_it_is_finished() {
        let store = crate::store::tests::test_store().await;
        store.insert_drill("d1", "steno", at(0)).await.unwrap();
        store
            .set_drill_targets("d1", "snap-1", "opsd_drill_steno_d1")
            .await
            .unwrap();
        let unfinished = store.unfinished_drills().await.unwrap();
        assert_eq!(unfinished.len(), 1);
        assert_eq!(
            unfinished[0].scratch.as_deref(),
            Some("opsd_drill_steno_d1")
        );
        assert!(store
            .latest_finished_drill("steno")
            .await
            .unwrap()
            .is_none());

        store.mark_scratch_removed("d1", at(5)).await.unwrap();
        store
            .finish_drill(
                "d1",
                "interrupted",
                at(5),
                r#"{"reasons":["opsd stopped"]}"#,
            )
            .await
            .unwrap();
        assert!(store.unfinished_drills().await.unwrap().is_empty());
        // An interrupted drill is not what the gate judges.
        assert!(store
            .latest_finished_drill("steno")
            .await
            .unwrap()
            .is_none());
        // A finished drill does not change again.
        store
            .finish_drill("d1", "passed", at(9), "{}")
            .await
            .unwrap();
        let drill = store.get_drill("d1").await.unwrap().unwrap();
        assert_eq!(drill.outcome.as_deref(), Some("interrupted"));
        assert_eq!(drill.scratch_removed_at, Some(at(5)));
    }

    #[tokio::test]
    async fn the_gate_sees_the_newest_finished_drill_and_bad_outcomes_are_refused() {
        let store = crate::store::tests::test_store().await;
        store.insert_drill("d1", "steno", at(0)).await.unwrap();
        store
            .finish_drill("d1", "failed", at(1), "{}")
            .await
            .unwrap();
        store.insert_drill("d2", "steno", at(10)).await.unwrap();
        store
            .finish_drill("d2", "passed", at(11), "{}")
            .await
            .unwrap();
        store.insert_drill("d3", "steno", at(20)).await.unwrap();
        let latest = store.latest_finished_drill("steno").await.unwrap().unwrap();
        assert_eq!(latest.id, "d2");
        assert_eq!(
            store.list_drills(Some("steno"), 10).await.unwrap()[0].id,
            "d3"
        );
        assert!(store
            .finish_drill("d3", "great", at(21), "{}")
            .await
            .is_err());
        assert!(store
            .finish_drill("d3", "passed", at(21), "not json")
            .await
            .is_err());
    }

    #[tokio::test]
    async fn snapshots_are_listed_newest_first_until_deleted() {
        let store = crate::store::tests::test_store().await;
        for (index, reason) in ["drill", "pre_deploy"].iter().enumerate() {
            store
                .insert_snapshot(&SnapshotRecord {
                    id: format!("s{index}"),
                    database: "steno".into(),
                    taken_at: at(index as i64 * 10),
                    reason: reason.to_string(),
                    rollout_id: (index == 1).then(|| "r1".to_string()),
                    location: format!("/snapshots/s{index}.dump"),
                    size_bytes: Some(100),
                    sha256: Some("ab".repeat(32)),
                    fingerprint: Some(serde_json::json!({"table_rows": {"firms": 3}})),
                    deleted_at: None,
                })
                .await
                .unwrap();
        }
        let live = store.live_snapshots("steno").await.unwrap();
        assert_eq!(
            live.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            vec!["s1", "s0"]
        );
        assert_eq!(
            store.snapshot_of_rollout("r1").await.unwrap().unwrap().id,
            "s1"
        );
        store.mark_snapshot_deleted("s0", at(30)).await.unwrap();
        assert_eq!(store.live_snapshots("steno").await.unwrap().len(), 1);
        assert!(store
            .get_snapshot("s0")
            .await
            .unwrap()
            .unwrap()
            .deleted_at
            .is_some());
    }
}
