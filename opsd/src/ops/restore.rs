//! `opsd restore` at the I/O edge, once the daemon has stopped what uses the database: the
//! snapshot's digest checked, a safety snapshot of the current state taken (reason
//! `pre_restore`), the snapshot restored over the database or into a new target, the result
//! inspected and verified like a drill, and the rows written after the snapshot counted as lost.
//! The database's drill lock is held throughout, so no drill or snapshot runs beside it.

use std::collections::BTreeMap;

use crate::config::{Config, DatabaseConfig};
use crate::core::drill::{digest_item, verify_restore, SourceFingerprint};
use crate::core::restore::{
    choose_snapshot, judge_restore, rows_lost, RestoreReport, SnapshotChoice, SnapshotPoint,
    SAFETY_SNAPSHOT_REASON,
};
use crate::ops::documents::verify_restored_documents;
use crate::ops::drill::{drills_dir, take_recorded_snapshot, DrillError, DrillLock};
use crate::platform::snapshots::{DatabaseSnapshots, RestoreTarget, RestoredCopy, Snapshot};
use crate::platform::PlatformError;
use crate::store::{SnapshotRecord, Store, StoreError};

/// Why a restore did not happen, or stopped. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("{0}")]
    Choice(String),
    #[error("snapshot {0} no longer has the sha256 recorded when it was taken (changed or truncated since); restore another one")]
    DigestChanged(String),
    #[error("the restore failed after the safety snapshot {safety} of the current state was taken: {source}")]
    AfterSafetySnapshot {
        safety: String,
        #[source]
        source: PlatformError,
    },
    #[error(transparent)]
    Drill(#[from] DrillError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The recorded snapshot `choice` names among the database's snapshots.
pub async fn chosen_snapshot(
    store: &Store,
    database: &str,
    choice: &SnapshotChoice,
) -> Result<SnapshotRecord, RestoreError> {
    let mut records = store.live_snapshots(database).await?;
    if let SnapshotChoice::Id(id) = choice {
        if !records.iter().any(|record| &record.id == id) {
            // A deleted one is named as deleted rather than unknown.
            if let Some(record) = store.get_snapshot(id).await? {
                if record.database == database {
                    records.push(record);
                }
            }
        }
    }
    let points: Vec<SnapshotPoint> = records
        .iter()
        .map(|record| SnapshotPoint {
            id: record.id.clone(),
            taken_at_ms: record.taken_at.timestamp_millis(),
            reason: record.reason.clone(),
            deleted: record.deleted_at.is_some(),
        })
        .collect();
    let chosen = choose_snapshot(&points, choice).map_err(RestoreError::Choice)?;
    Ok(records
        .into_iter()
        .find(|record| record.id == chosen.id)
        .expect("the chosen point is one of the records"))
}

/// The platform's view of a recorded snapshot.
pub fn snapshot_of(record: &SnapshotRecord) -> Snapshot {
    Snapshot {
        id: record.id.clone(),
        taken_at_ms: record.taken_at.timestamp_millis(),
        location: record.location.clone(),
        size_bytes: record.size_bytes.map(|size| size.max(0) as u64),
        sha256: record.sha256.clone(),
    }
}

fn fingerprint_of(record: &SnapshotRecord) -> Option<SourceFingerprint> {
    record
        .fingerprint
        .as_ref()
        .and_then(|value| serde_json::from_value(value.clone()).ok())
}

/// One restore: the snapshot, where it goes, and the id that names what it creates.
pub struct RestoreJob<'a> {
    pub record: &'a SnapshotRecord,
    pub target: &'a RestoreTarget,
    pub restore_id: &'a str,
}

/// Restores the job's snapshot into its target (see the module's documentation). The report's
/// RTO and releases are the caller's to fill in.
pub async fn restore_database(
    config: &Config,
    store: &Store,
    database: &DatabaseConfig,
    platform: &dyn DatabaseSnapshots,
    job: &RestoreJob<'_>,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<RestoreReport, RestoreError> {
    let RestoreJob {
        record,
        target,
        restore_id,
    } = *job;
    let _lock = DrillLock::acquire(&drills_dir(config), &database.name)?;
    let snapshot = snapshot_of(record);
    progress("checking the snapshot's digest");
    let digest = platform
        .digest_matches(&snapshot, record.sha256.as_deref())
        .await?;
    if digest == Some(false) {
        return Err(RestoreError::DigestChanged(record.id.clone()));
    }
    progress("taking a safety snapshot of the current state");
    let safety = take_recorded_snapshot(
        config,
        store,
        database,
        platform,
        SAFETY_SNAPSHOT_REASON,
        None,
    )
    .await?;
    let after_safety = |source: PlatformError| RestoreError::AfterSafetySnapshot {
        safety: safety.id.clone(),
        source,
    };
    progress(&format!("restoring snapshot {}", record.id));
    let restored = platform
        .restore_production(&snapshot, target, restore_id)
        .await
        .map_err(after_safety)?;
    progress("verifying the restored data");
    let inspection = platform
        .inspect_restored(&restored.target, &database.checks)
        .await
        .map_err(after_safety)?;
    let at_snapshot = fingerprint_of(record);
    let mut verification =
        verify_restore(at_snapshot.as_ref(), &inspection, &database.checks, None);
    verification.splice(0..0, digest_item(digest));
    verification.extend(
        verify_restored_documents(
            config,
            database,
            platform,
            &RestoredCopy::Restored(restored.target.clone()),
            &record.id,
        )
        .await,
    );
    let lost = match (&at_snapshot, fingerprint_of(&safety)) {
        (Some(at_snapshot), Some(before_restore)) => Some(rows_lost(
            &at_snapshot.table_rows,
            &before_restore.table_rows,
        )),
        _ => None,
    };
    Ok(RestoreReport {
        id: restore_id.to_string(),
        database: database.name.clone(),
        outcome: judge_restore(&verification),
        snapshot_id: record.id.clone(),
        snapshot_taken_at: record.taken_at.to_rfc3339(),
        snapshot_reason: record.reason.clone(),
        safety_snapshot_id: safety.id,
        location: restored.location,
        next_steps: restored.next_steps,
        rows_lost: lost,
        verification,
        rto_ms: 0,
        releases_restarted: Vec::new(),
    })
}

/// The rows a restore of `record` would lose now, when the platform can count them.
pub async fn rows_written_since(
    platform: &dyn DatabaseSnapshots,
    record: &SnapshotRecord,
) -> Option<BTreeMap<String, u64>> {
    let at_snapshot = fingerprint_of(record)?;
    let now = platform.source_table_rows().await.ok()??;
    Some(rows_lost(&at_snapshot.table_rows, &now))
}
