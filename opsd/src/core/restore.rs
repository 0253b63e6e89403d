//! `opsd restore`, the decisions: which snapshot a request names, what restoring it loses (the
//! rows written after it), and the report an operator reads. Pure: snapshots, counts and times
//! come in as data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::drill::{ItemStatus, TableCounts, VerificationItem};

/// Which snapshot to restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum SnapshotChoice {
    /// This snapshot, by id.
    Id(String),
    /// The newest one (safety snapshots of earlier restores excluded).
    Latest,
    /// The newest one taken strictly before this time (ms since the epoch).
    Before(i64),
}

/// What the choice is made among: a recorded snapshot of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPoint {
    pub id: String,
    pub taken_at_ms: i64,
    /// `drill`, `pre_deploy`, `scheduled`, `manual` or `pre_restore`.
    pub reason: String,
    /// Retention removed it.
    pub deleted: bool,
}

/// The reason recorded on the snapshot a restore takes of the current state first.
pub const SAFETY_SNAPSHOT_REASON: &str = "pre_restore";

/// The snapshot `choice` names among `points`, or why none fits.
pub fn choose_snapshot<'a>(
    points: &'a [SnapshotPoint],
    choice: &SnapshotChoice,
) -> Result<&'a SnapshotPoint, String> {
    let usable = || points.iter().filter(|point| !point.deleted);
    let newest = |candidates: Vec<&'a SnapshotPoint>| {
        candidates
            .into_iter()
            .max_by(|a, b| a.taken_at_ms.cmp(&b.taken_at_ms).then(a.id.cmp(&b.id)))
    };
    match choice {
        SnapshotChoice::Id(id) => match points.iter().find(|point| &point.id == id) {
            Some(point) if point.deleted => Err(format!(
                "snapshot {id} was deleted by retention; `opsd drill list` shows what is kept"
            )),
            Some(point) => Ok(point),
            None => Err(format!(
                "no snapshot {id} of this database is recorded; `opsd drill list` shows them"
            )),
        },
        SnapshotChoice::Latest => newest(
            usable()
                .filter(|point| point.reason != SAFETY_SNAPSHOT_REASON)
                .collect(),
        )
        .ok_or_else(|| {
            "no snapshot of this database is recorded; take one with `opsd drill snapshot`".into()
        }),
        SnapshotChoice::Before(at_ms) => newest(
            usable()
                .filter(|point| point.taken_at_ms < *at_ms)
                .collect(),
        )
        .ok_or_else(|| "no recorded snapshot of this database was taken before that time".into()),
    }
}

/// What restoring loses: per table, the rows the database has now beyond those in the snapshot
/// (rows written after it; a table that shrank loses none). Updates in place are not counted.
pub fn rows_lost(at_snapshot: &TableCounts, now: &TableCounts) -> BTreeMap<String, u64> {
    now.iter()
        .filter_map(|(table, &rows)| {
            let lost = rows.saturating_sub(at_snapshot.get(table).copied().unwrap_or(0));
            (lost > 0).then(|| (table.clone(), lost))
        })
        .collect()
}

/// How a restore ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RestoreOutcome {
    /// Restored, and every verification item passed.
    Restored,
    /// Restored, but an item failed: the restored data is not what the snapshot held.
    RestoredUnverified,
}

/// Everything an operator needs to know about one restore; what the API answers, the CLI
/// prints, the audit log and the timeline keep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreReport {
    pub id: String,
    pub database: String,
    pub outcome: RestoreOutcome,
    /// The snapshot restored, when it was taken, and why.
    pub snapshot_id: String,
    pub snapshot_taken_at: String,
    pub snapshot_reason: String,
    /// The snapshot of the state before the restore, to go back to.
    pub safety_snapshot_id: String,
    /// Where the restored data is, and what to do next.
    pub location: String,
    pub next_steps: Vec<String>,
    /// Rows written after the snapshot, lost by the restore (per table; `None` when the counts
    /// could not be read, e.g. on RDS).
    pub rows_lost: Option<BTreeMap<String, u64>>,
    pub verification: Vec<VerificationItem>,
    /// From the releases' stop (or the restore's start) to the service answering again.
    pub rto_ms: u64,
    /// The releases stopped before and started after, like `steno@v3`.
    pub releases_restarted: Vec<String>,
}

impl RestoreReport {
    /// The sum of `rows_lost`.
    pub fn total_rows_lost(&self) -> Option<u64> {
        self.rows_lost.as_ref().map(|lost| lost.values().sum())
    }
}

/// The outcome of a restore whose verification gave `items`.
pub fn judge_restore(items: &[VerificationItem]) -> RestoreOutcome {
    if items.iter().any(|item| item.status == ItemStatus::Failed) {
        RestoreOutcome::RestoredUnverified
    } else {
        RestoreOutcome::Restored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(id: &str, taken_at_ms: i64, reason: &str, deleted: bool) -> SnapshotPoint {
        SnapshotPoint {
            id: id.into(),
            taken_at_ms,
            reason: reason.into(),
            deleted,
        }
    }

    #[test]
    fn a_snapshot_is_chosen_by_id_as_the_latest_or_before_a_time() {
        let points = vec![
            point("a", 1_000, "scheduled", false),
            point("b", 2_000, "pre_deploy", false),
            point("c", 3_000, SAFETY_SNAPSHOT_REASON, false),
            point("old", 500, "scheduled", true),
        ];
        assert_eq!(
            choose_snapshot(&points, &SnapshotChoice::Latest)
                .unwrap()
                .id,
            "b"
        );
        assert_eq!(
            choose_snapshot(&points, &SnapshotChoice::Before(2_000))
                .unwrap()
                .id,
            "a"
        );
        assert_eq!(
            choose_snapshot(&points, &SnapshotChoice::Before(3_500))
                .unwrap()
                .id,
            "c",
            "a safety snapshot is a point in time like any other"
        );
        assert_eq!(
            choose_snapshot(&points, &SnapshotChoice::Id("c".into()))
                .unwrap()
                .id,
            "c"
        );
        assert!(choose_snapshot(&points, &SnapshotChoice::Id("old".into()))
            .unwrap_err()
            .contains("deleted by retention"));
        assert!(choose_snapshot(&points, &SnapshotChoice::Id("zzz".into()))
            .unwrap_err()
            .contains("no snapshot zzz"));
        assert!(choose_snapshot(&points, &SnapshotChoice::Before(900))
            .unwrap_err()
            .contains("before that time"));
        assert!(choose_snapshot(&[], &SnapshotChoice::Latest)
            .unwrap_err()
            .contains("opsd drill snapshot"));
    }

    #[test]
    fn the_rows_written_after_the_snapshot_are_what_a_restore_loses() {
        let at_snapshot = TableCounts::from([("firms".to_string(), 3), ("letters".to_string(), 9)]);
        let now = TableCounts::from([
            ("firms".to_string(), 5),
            ("letters".to_string(), 7),
            ("rehearsal_notes".to_string(), 2),
        ]);
        assert_eq!(
            rows_lost(&at_snapshot, &now),
            BTreeMap::from([("firms".to_string(), 2), ("rehearsal_notes".to_string(), 2)])
        );
        assert!(rows_lost(&now, &now).is_empty());
    }
}
