//! Runs DR drills and snapshots against a [`DatabaseSnapshots`] platform and records them in the
//! store: snapshot (or pick the newest restorable one) → restore into a scratch target → verify →
//! measure → tear down (always) → record. Also: the pre-deployment snapshot, retention, the drill
//! gate's inputs, and cleaning up after drills interrupted by a crash.
//!
//! invariant: a drill's scratch name is in the store before the scratch target is created, and
//! a drill holds its database's lock file for as long as it runs, so a scratch target is either
//! owned by a live drill or removed at the next start.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;

use crate::config::{Config, DatabaseConfig};
use crate::core::drill::{
    digest_item, drill_gate, human_millis, judge_drill, verify_restore, write_gap_rows,
    DrillMeasurement, DrillOutcome, ItemStatus, LatestDrill, PhaseTiming, SourceFingerprint,
    VerificationItem,
};
use crate::core::retention::{snapshots_past_retention, SnapshotAge};
use crate::platform::snapshots::{DatabaseSnapshots, RestoredCopy, Snapshot};
use crate::platform::PlatformError;
use crate::store::{DrillRecord, SnapshotRecord, Store, StoreError};

/// How long after a scheduled time a drill may still be missing before the gate closes.
pub const GATE_GRACE: Duration = Duration::from_secs(3600);

/// What went wrong before a drill could be recorded. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("unknown database {0:?}; the configured databases are: {1}")]
    UnknownDatabase(String, String),
    #[error("another drill or snapshot of {database} is running (lock {}); wait for it to finish", lock.display())]
    Busy { database: String, lock: PathBuf },
    #[error("cannot use the lock file {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{database} has no restorable snapshot; run a drill without --use-latest to take one")]
    NoSnapshot { database: String },
    #[error(transparent)]
    Platform(#[from] PlatformError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How to run one drill.
#[derive(Debug, Clone, Default)]
pub struct DrillOptions {
    /// Restore the newest existing snapshot instead of taking a new one.
    pub use_latest_snapshot: bool,
    /// Waits this long after the restore, before verifying (used to test crash recovery).
    pub pause_after_restore: Option<Duration>,
}

/// A finished drill as the CLI and API show it (also stored as the drill's report).
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    pub id: String,
    pub database: String,
    pub target: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub outcome: DrillOutcome,
    pub reasons: Vec<String>,
    pub snapshot_id: Option<String>,
    pub snapshot_taken_at: Option<DateTime<Utc>>,
    pub snapshot_size_bytes: Option<u64>,
    pub used_existing_snapshot: bool,
    pub scratch: Option<String>,
    pub scratch_removed: bool,
    pub measurement: DrillMeasurement,
    pub rto_target_ms: u64,
    pub rpo_target_ms: u64,
    pub verification: Vec<VerificationItem>,
    pub snapshots_removed_by_retention: Vec<String>,
}

pub use crate::platform::factory::drills_dir;

/// The configured database by name.
pub fn database<'a>(config: &'a Config, name: &str) -> Result<&'a DatabaseConfig, DrillError> {
    config.databases.get(name).ok_or_else(|| {
        DrillError::UnknownDatabase(
            name.to_string(),
            if config.databases.is_empty() {
                "none (add a databases: block to opsd.yaml)".into()
            } else {
                config
                    .databases
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        )
    })
}

/// An exclusive, process-lifetime lock on one database's drills (`flock`; the kernel releases
/// it when the process dies, even by SIGKILL).
pub struct DrillLock {
    _file: File,
}

impl DrillLock {
    /// Takes the lock, or `None` when another process holds it.
    pub fn try_acquire(dir: &Path, database: &str) -> Result<Option<DrillLock>, DrillError> {
        let path = dir.join(format!("{database}.lock"));
        let lock_error = |source| DrillError::Lock {
            path: path.clone(),
            source,
        };
        crate::private_files::ensure_private_dir(dir).map_err(lock_error)?;
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_error)?;
        // SAFETY: flock on a descriptor this function owns; no memory is shared.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if result == 0 {
            Ok(Some(DrillLock { _file: file }))
        } else {
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                Ok(None)
            } else {
                Err(lock_error(error))
            }
        }
    }

    pub(crate) fn acquire(dir: &Path, database: &str) -> Result<DrillLock, DrillError> {
        DrillLock::try_acquire(dir, database)?.ok_or_else(|| DrillError::Busy {
            database: database.to_string(),
            lock: dir.join(format!("{database}.lock")),
        })
    }
}

fn snapshot_id_for(database: &str, at: DateTime<Utc>) -> String {
    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..4].to_string();
    format!(
        "opsd-{}-{}-{suffix}",
        crate::platform::snapshots::identifier_part(database, '-'),
        at.format("%Y%m%d-%H%M%S")
    )
}

fn time_of_ms(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Takes a snapshot and records it (reason `drill`, `pre_deploy`, `scheduled`, `manual` or
/// `pre_restore`), with the manifest of the database's document store when it has one.
pub async fn take_recorded_snapshot(
    config: &Config,
    store: &Store,
    database: &DatabaseConfig,
    platform: &dyn DatabaseSnapshots,
    reason: &str,
    rollout_id: Option<&str>,
) -> Result<SnapshotRecord, DrillError> {
    let id = snapshot_id_for(&database.name, Utc::now());
    let taken = platform.take_snapshot(&id, &database.checks).await?;
    let record = SnapshotRecord {
        id: taken.snapshot.id.clone(),
        database: database.name.clone(),
        taken_at: time_of_ms(taken.snapshot.taken_at_ms),
        reason: reason.to_string(),
        rollout_id: rollout_id.map(str::to_string),
        location: taken.snapshot.location.clone(),
        size_bytes: taken.snapshot.size_bytes.map(|size| size as i64),
        sha256: taken.snapshot.sha256.clone(),
        fingerprint: taken
            .fingerprint
            .as_ref()
            .and_then(|fingerprint| serde_json::to_value(fingerprint).ok()),
        deleted_at: None,
    };
    store.insert_snapshot(&record).await?;
    super::documents::record_manifest(config, database, &record.id).await?;
    Ok(record)
}

/// Takes the pre-deployment snapshot of a rollout, holding the database's drill lock.
pub async fn pre_deploy_snapshot(
    config: &Config,
    store: &Store,
    database: &DatabaseConfig,
    platform: &dyn DatabaseSnapshots,
    rollout_id: &str,
) -> Result<SnapshotRecord, DrillError> {
    let _lock = DrillLock::acquire(&drills_dir(config), &database.name)?;
    take_recorded_snapshot(
        config,
        store,
        database,
        platform,
        "pre_deploy",
        Some(rollout_id),
    )
    .await
}

/// Runs one drill of `database` and records it. A drill that fails verification is a finished
/// drill with outcome `failed` (returned as `Ok`); `Err` means it could not run or be recorded.
pub async fn run_drill(
    config: &Config,
    store: &Store,
    database: &DatabaseConfig,
    options: &DrillOptions,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<DrillReport, DrillError> {
    let lock_dir = drills_dir(config);
    let _lock = DrillLock::acquire(&lock_dir, &database.name)?;
    let platform = crate::platform::factory::database_snapshots(config, database).await?;
    clean_up_database(store, database, platform.as_ref(), progress).await?;

    let id = uuid::Uuid::new_v4().to_string();
    let started_at = Utc::now();
    let clock = Instant::now();
    store.insert_drill(&id, &database.name, started_at).await?;
    progress(&format!(
        "drill {id} of {} ({}) started",
        database.name,
        platform.describe()
    ));
    let mut report = DrillReport {
        id: id.clone(),
        database: database.name.clone(),
        target: platform.describe(),
        started_at,
        finished_at: started_at,
        outcome: DrillOutcome::Failed,
        reasons: Vec::new(),
        snapshot_id: None,
        snapshot_taken_at: None,
        snapshot_size_bytes: None,
        used_existing_snapshot: options.use_latest_snapshot,
        scratch: None,
        scratch_removed: false,
        measurement: DrillMeasurement::default(),
        rto_target_ms: database.targets.rto.as_millis() as u64,
        rpo_target_ms: database.targets.rpo.as_millis() as u64,
        verification: Vec::new(),
        snapshots_removed_by_retention: Vec::new(),
    };

    // RPO: how old the newest restorable point was when the drill started.
    let newest_point_ms = newest_restorable_ms(store, database, platform.as_ref()).await;
    report.measurement.rpo_ms =
        newest_point_ms.map(|ms| (started_at.timestamp_millis() - ms).max(0) as u64);

    let job = DrillJob {
        config,
        store,
        database,
        platform: platform.as_ref(),
        options,
        progress,
    };
    let result = drill_phases(&job, &mut report, clock).await;
    if let Err(error) = &result {
        report.verification.push(VerificationItem {
            name: "drill".into(),
            status: ItemStatus::Failed,
            detail: error.to_string(),
        });
    }

    // Teardown, always.
    if let Some(scratch) = report.scratch.clone() {
        let phase_clock = Instant::now();
        progress(&format!("removing scratch {scratch}"));
        match platform.drop_scratch(&scratch).await {
            Ok(()) => {
                report.scratch_removed = true;
                store.mark_scratch_removed(&id, Utc::now()).await?;
            }
            Err(error) => report.verification.push(VerificationItem {
                name: "teardown".into(),
                status: ItemStatus::Failed,
                detail: format!("the scratch target {scratch} could not be removed: {error}"),
            }),
        }
        report.measurement.phases.push(PhaseTiming {
            phase: "teardown".into(),
            millis: phase_clock.elapsed().as_millis() as u64,
        });
    }

    report.snapshots_removed_by_retention =
        apply_retention(config, store, database, platform.as_ref()).await;

    let (outcome, reasons) =
        judge_drill(&report.verification, &report.measurement, &database.targets);
    report.outcome = outcome;
    report.reasons = reasons;
    report.finished_at = Utc::now();
    let report_json = serde_json::to_string(&report).unwrap_or_else(|_| "{}".into());
    store
        .finish_drill(&id, outcome.as_str(), report.finished_at, &report_json)
        .await?;
    progress(&format!(
        "drill {id} {}: RTO {}, RPO {}",
        outcome.as_str(),
        report
            .measurement
            .rto_ms
            .map_or("not reached".to_string(), human_millis),
        report
            .measurement
            .rpo_ms
            .map_or("no earlier restorable point".to_string(), human_millis),
    ));
    Ok(report)
}

/// What one drill's phases work with.
struct DrillJob<'a> {
    config: &'a Config,
    store: &'a Store,
    database: &'a DatabaseConfig,
    platform: &'a dyn DatabaseSnapshots,
    options: &'a DrillOptions,
    progress: &'a (dyn Fn(&str) + Send + Sync),
}

async fn drill_phases(
    job: &DrillJob<'_>,
    report: &mut DrillReport,
    clock: Instant,
) -> Result<(), DrillError> {
    let DrillJob {
        config,
        store,
        database,
        platform,
        options,
        progress,
    } = *job;
    // 1. Snapshot.
    let phase_clock = Instant::now();
    let (snapshot, record) = if options.use_latest_snapshot {
        progress("picking the newest restorable snapshot");
        let snapshot = platform
            .snapshots()
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| DrillError::NoSnapshot {
                database: database.name.clone(),
            })?;
        let record = store.get_snapshot(&snapshot.id).await?;
        (snapshot, record)
    } else {
        progress("taking a snapshot");
        let record =
            take_recorded_snapshot(config, store, database, platform, "drill", None).await?;
        let snapshot = Snapshot {
            id: record.id.clone(),
            taken_at_ms: record.taken_at.timestamp_millis(),
            location: record.location.clone(),
            size_bytes: record.size_bytes.map(|size| size as u64),
            sha256: record.sha256.clone(),
        };
        (snapshot, Some(record))
    };
    report.snapshot_id = Some(snapshot.id.clone());
    report.snapshot_taken_at = Some(time_of_ms(snapshot.taken_at_ms));
    report.snapshot_size_bytes = snapshot.size_bytes;
    report.measurement.phases.push(PhaseTiming {
        phase: "snapshot".into(),
        millis: phase_clock.elapsed().as_millis() as u64,
    });
    progress(&format!(
        "snapshot {} ready ({}) in {}",
        snapshot.id,
        snapshot
            .size_bytes
            .map_or("size unknown".to_string(), |size| format!(
                "{:.1} MB",
                size as f64 / 1e6
            )),
        human_millis(phase_clock.elapsed().as_millis() as u64)
    ));
    let fingerprint: Option<SourceFingerprint> = record
        .as_ref()
        .and_then(|record| record.fingerprint.clone())
        .and_then(|value| serde_json::from_value(value).ok());
    let digest_matches = platform
        .digest_matches(
            &snapshot,
            record.as_ref().and_then(|record| record.sha256.as_deref()),
        )
        .await?;
    // Known before the restore, so a restore that fails still reports it.
    report.verification.extend(digest_item(digest_matches));

    // 2. Restore into a scratch target, named in the store first.
    let scratch = platform.scratch_name(&report.id);
    store
        .set_drill_targets(&report.id, &snapshot.id, &scratch)
        .await?;
    report.scratch = Some(scratch.clone());
    let phase_clock = Instant::now();
    progress(&format!("restoring {} into scratch {scratch}", snapshot.id));
    platform.restore(&snapshot, &scratch).await?;
    report.measurement.phases.push(PhaseTiming {
        phase: "restore".into(),
        millis: phase_clock.elapsed().as_millis() as u64,
    });
    progress(&format!(
        "restored in {}",
        human_millis(phase_clock.elapsed().as_millis() as u64)
    ));
    if let Some(pause) = options.pause_after_restore {
        progress(&format!("pausing {} s before verifying", pause.as_secs()));
        tokio::time::sleep(pause).await;
    }

    // 3. Verify.
    let phase_clock = Instant::now();
    progress("verifying the restored copy");
    let inspection = platform.inspect(&scratch, &database.checks).await?;
    report.verification = verify_restore(
        fingerprint.as_ref(),
        &inspection,
        &database.checks,
        digest_matches,
    );
    report.verification.extend(
        super::documents::verify_restored_documents(
            config,
            database,
            platform,
            &RestoredCopy::Scratch(scratch.clone()),
            &snapshot.id,
        )
        .await,
    );
    report.measurement.rto_ms = Some(clock.elapsed().as_millis() as u64);
    report.measurement.phases.push(PhaseTiming {
        phase: "verify".into(),
        millis: phase_clock.elapsed().as_millis() as u64,
    });
    let failed = report
        .verification
        .iter()
        .filter(|item| item.status == ItemStatus::Failed)
        .count();
    progress(&format!(
        "verified {} items, {failed} failed, in {}",
        report.verification.len(),
        human_millis(phase_clock.elapsed().as_millis() as u64)
    ));

    // 4. Write gap: rows the source gained since the restored snapshot.
    if let (Some(fingerprint), Ok(Some(now))) =
        (fingerprint.as_ref(), platform.source_table_rows().await)
    {
        report.measurement.write_gap_rows = Some(write_gap_rows(&fingerprint.table_rows, &now));
    }
    Ok(())
}

async fn newest_restorable_ms(
    store: &Store,
    database: &DatabaseConfig,
    platform: &dyn DatabaseSnapshots,
) -> Option<i64> {
    let on_platform = platform
        .snapshots()
        .await
        .ok()
        .and_then(|snapshots| snapshots.iter().map(|snapshot| snapshot.taken_at_ms).max());
    let recorded = store
        .live_snapshots(&database.name)
        .await
        .ok()
        .and_then(|snapshots| {
            snapshots
                .first()
                .map(|record| record.taken_at.timestamp_millis())
        });
    on_platform.max(recorded)
}

/// Deletes the snapshots opsd took that are past retention (never the newest, never one of a
/// rollout still in the store's active set), and returns their ids.
async fn apply_retention(
    config: &Config,
    store: &Store,
    database: &DatabaseConfig,
    platform: &dyn DatabaseSnapshots,
) -> Vec<String> {
    let Ok(records) = store.live_snapshots(&database.name).await else {
        return Vec::new();
    };
    let ages: Vec<SnapshotAge> = records
        .iter()
        .map(|record| SnapshotAge {
            id: record.id.clone(),
            taken_at: record.taken_at.naive_utc(),
            reason: record.reason.clone(),
        })
        .collect();
    let mut protected = Vec::new();
    if let Ok(active) = store.active_rollouts().await {
        for rollout in active {
            if let Ok(Some(snapshot)) = store.snapshot_of_rollout(&rollout.id).await {
                protected.push(snapshot.id);
            }
        }
    }
    let expired = snapshots_past_retention(
        &ages,
        &database.retention,
        Utc::now().naive_utc(),
        &protected,
    );
    let mut removed = Vec::new();
    for id in expired {
        let Some(record) = records.iter().find(|record| record.id == id) else {
            continue;
        };
        let snapshot = Snapshot {
            id: record.id.clone(),
            taken_at_ms: record.taken_at.timestamp_millis(),
            location: record.location.clone(),
            size_bytes: None,
            sha256: None,
        };
        match platform.delete_snapshot(&snapshot).await {
            Ok(()) => {
                let _ = store.mark_snapshot_deleted(&id, Utc::now()).await;
                super::documents::remove_manifest(config, database, &id).await;
                removed.push(id);
            }
            Err(error) => {
                tracing::warn!(snapshot = %id, error = %error, "could not delete a snapshot past retention")
            }
        }
    }
    removed
}

/// Removes what interrupted drills of one database left (the caller holds its lock): scratch
/// targets named by unfinished drills, and any scratch target matching the naming pattern.
async fn clean_up_database(
    store: &Store,
    database: &DatabaseConfig,
    platform: &dyn DatabaseSnapshots,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Vec<String>, DrillError> {
    let mut removed = Vec::new();
    for drill in store.unfinished_drills().await? {
        if drill.database != database.name {
            continue;
        }
        let mut reasons = vec!["opsd stopped during the drill".to_string()];
        if let Some(scratch) = &drill.scratch {
            platform.drop_scratch(scratch).await?;
            store.mark_scratch_removed(&drill.id, Utc::now()).await?;
            progress(&format!(
                "removed scratch {scratch} left by interrupted drill {}",
                drill.id
            ));
            reasons.push(format!(
                "its scratch {scratch} was removed at the next start"
            ));
            removed.push(scratch.clone());
        }
        let report = serde_json::json!({"id": drill.id, "database": drill.database, "outcome": "interrupted", "reasons": reasons, "scratch": drill.scratch, "snapshot_id": drill.snapshot_id});
        store
            .finish_drill(&drill.id, "interrupted", Utc::now(), &report.to_string())
            .await?;
    }
    for scratch in platform.leftover_scratches().await? {
        platform.drop_scratch(&scratch).await?;
        progress(&format!("removed leftover scratch {scratch}"));
        removed.push(scratch);
    }
    Ok(removed)
}

/// At start: for every database whose drills are not running in another process, removes what
/// interrupted drills left behind. Returns one line per scratch target removed.
pub async fn clean_up_interrupted_drills(config: &Config, store: &Store) -> Vec<String> {
    let mut lines = Vec::new();
    for database in config.databases.values() {
        let Ok(Some(_lock)) = DrillLock::try_acquire(&drills_dir(config), &database.name) else {
            continue;
        };
        let platform = match crate::platform::factory::database_snapshots(config, database).await {
            Ok(platform) => platform,
            Err(error) => {
                tracing::warn!(database = %database.name, error = %error, "cannot check for drill leftovers");
                continue;
            }
        };
        let collect = std::sync::Mutex::new(Vec::new());
        let progress = |line: &str| {
            if let Ok(mut lines) = collect.lock() {
                lines.push(line.to_string());
            }
        };
        if let Err(error) = clean_up_database(store, database, platform.as_ref(), &progress).await {
            tracing::warn!(database = %database.name, error = %error, "could not clean up after interrupted drills");
        }
        lines.extend(collect.into_inner().unwrap_or_default());
    }
    lines
}

/// The drill gate of a database now: `Err(reason)` while its newest finished drill failed or is
/// stale for its schedule.
pub async fn gate_status(
    store: &Store,
    database: &DatabaseConfig,
) -> Result<Result<(), String>, StoreError> {
    let latest = store.latest_finished_drill(&database.name).await?;
    let latest = latest.map(|drill| latest_of(&drill));
    Ok(drill_gate(
        &database.name,
        latest.as_ref(),
        &database.schedule,
        Utc::now().naive_utc(),
        chrono::Duration::from_std(GATE_GRACE).unwrap_or(chrono::Duration::hours(1)),
    ))
}

fn latest_of(drill: &DrillRecord) -> LatestDrill {
    LatestDrill {
        id: drill.id.clone(),
        started_at: drill.started_at.naive_utc(),
        outcome: match drill.outcome.as_deref() {
            Some("passed") => Some(DrillOutcome::Passed),
            Some("failed") => Some(DrillOutcome::Failed),
            Some("interrupted") => Some(DrillOutcome::Interrupted),
            _ => None,
        },
        reasons: drill.report["reasons"]
            .as_array()
            .map(|reasons| {
                reasons
                    .iter()
                    .filter_map(|reason| reason.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Whether a drill is due now by its database's schedule (for the daemon's scheduler).
pub async fn drill_is_due(store: &Store, database: &DatabaseConfig) -> Result<bool, StoreError> {
    let latest = store.list_drills(Some(&database.name), 1).await?;
    let last_run = latest.first().map(|drill| drill.started_at.naive_utc());
    Ok(crate::core::schedule::is_overdue(
        &database.schedule,
        last_run,
        Utc::now().naive_utc(),
        chrono::Duration::zero(),
    )
    .is_some())
}

/// Whether a scheduled snapshot is due: the snapshot schedule fired since the newest snapshot
/// opsd took of this database (of any reason).
pub async fn snapshot_is_due(store: &Store, database: &DatabaseConfig) -> Result<bool, StoreError> {
    let Some(schedule) = &database.snapshot_schedule else {
        return Ok(false);
    };
    let newest = store.live_snapshots(&database.name).await?;
    let last = newest.first().map(|snapshot| snapshot.taken_at.naive_utc());
    Ok(crate::core::schedule::is_overdue(
        schedule,
        last,
        Utc::now().naive_utc(),
        chrono::Duration::zero(),
    )
    .is_some())
}

/// Takes a scheduled snapshot (holding the drill lock) and applies retention.
pub async fn scheduled_snapshot(
    config: &Config,
    store: &Store,
    database: &DatabaseConfig,
) -> Result<SnapshotRecord, DrillError> {
    let _lock = DrillLock::acquire(&drills_dir(config), &database.name)?;
    let platform = crate::platform::factory::database_snapshots(config, database).await?;
    let record = take_recorded_snapshot(
        config,
        store,
        database,
        platform.as_ref(),
        "scheduled",
        None,
    )
    .await?;
    apply_retention(config, store, database, platform.as_ref()).await;
    Ok(record)
}

/// `opsd drill list` as text: one line per drill, newest first, with the RTO trend.
pub fn format_drill_list(drills: &[DrillRecord]) -> String {
    let mut out = String::new();
    if drills.is_empty() {
        out.push_str("no drills yet; run `opsd drill run <database>`\n");
        return out;
    }
    out.push_str(&format!(
        "{:<36}  {:<10} {:<17} {:<11} {:>12} {:>14} {:>9}  {}\n",
        "DRILL", "DATABASE", "STARTED (UTC)", "OUTCOME", "RTO", "RPO", "WRITE GAP", "TREND"
    ));
    for (index, drill) in drills.iter().enumerate() {
        let rto = drill.report["measurement"]["rto_ms"].as_u64();
        let older_rto = drills[index + 1..]
            .iter()
            .find(|older| older.database == drill.database)
            .and_then(|older| older.report["measurement"]["rto_ms"].as_u64());
        let trend = match (rto, older_rto) {
            (Some(now), Some(before)) if before > 0 => {
                let change = (now as f64 - before as f64) / before as f64 * 100.0;
                if change.abs() < 10.0 {
                    "RTO steady".to_string()
                } else if change > 0.0 {
                    format!("RTO +{change:.0} %")
                } else {
                    format!("RTO {change:.0} %")
                }
            }
            _ => String::new(),
        };
        out.push_str(&format!(
            "{:<36}  {:<10} {:<17} {:<11} {:>12} {:>14} {:>9}  {}\n",
            drill.id,
            drill.database,
            drill.started_at.format("%Y-%m-%d %H:%M"),
            drill.outcome.as_deref().unwrap_or("running"),
            rto.map_or("-".to_string(), human_millis),
            drill.report["measurement"]["rpo_ms"]
                .as_u64()
                .map_or("-".to_string(), human_millis),
            drill.report["measurement"]["write_gap_rows"]
                .as_u64()
                .map_or("-".to_string(), |rows| rows.to_string()),
            trend
        ));
    }
    out
}

/// `opsd drill show` / `drill run` as text.
pub fn format_drill_report(report: &serde_json::Value) -> String {
    let mut out = String::new();
    let text = |value: &serde_json::Value| value.as_str().unwrap_or("-").to_string();
    out.push_str(&format!(
        "drill {} of {} ({}): {}\n",
        text(&report["id"]),
        text(&report["database"]),
        text(&report["target"]),
        text(&report["outcome"])
    ));
    out.push_str(&format!(
        "  started {}  snapshot {}{}\n",
        text(&report["started_at"]),
        text(&report["snapshot_id"]),
        if report["used_existing_snapshot"].as_bool() == Some(true) {
            " (existing)"
        } else {
            ""
        }
    ));
    let measurement = &report["measurement"];
    out.push_str(&format!(
        "  RTO {} (target {})   RPO {} (target {})   write gap {}\n",
        measurement["rto_ms"]
            .as_u64()
            .map_or("-".into(), human_millis),
        report["rto_target_ms"]
            .as_u64()
            .map_or("-".into(), human_millis),
        measurement["rpo_ms"]
            .as_u64()
            .map_or("no earlier restorable point".into(), human_millis),
        report["rpo_target_ms"]
            .as_u64()
            .map_or("-".into(), human_millis),
        measurement["write_gap_rows"]
            .as_u64()
            .map_or("-".into(), |rows| format!("{rows} rows")),
    ));
    if let Some(phases) = measurement["phases"].as_array() {
        let phases: Vec<String> = phases
            .iter()
            .map(|phase| {
                format!(
                    "{} {}",
                    text(&phase["phase"]),
                    phase["millis"].as_u64().map_or("-".into(), human_millis)
                )
            })
            .collect();
        out.push_str(&format!("  phases: {}\n", phases.join(", ")));
    }
    for item in report["verification"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        out.push_str(&format!(
            "  [{}] {}: {}\n",
            match item["status"].as_str() {
                Some("passed") => "ok",
                Some("failed") => "FAIL",
                _ => "n/a",
            },
            text(&item["name"]),
            text(&item["detail"])
        ));
    }
    for reason in report["reasons"].as_array().cloned().unwrap_or_default() {
        out.push_str(&format!("  reason: {}\n", reason.as_str().unwrap_or("")));
    }
    if report["scratch"].is_string() {
        out.push_str(&format!(
            "  scratch {} {}\n",
            text(&report["scratch"]),
            if report["scratch_removed"].as_bool() == Some(true) {
                "removed"
            } else {
                "NOT removed"
            }
        ));
    }
    out
}

/// The notification for a scheduled drill that did not pass: critical when it ran and failed
/// (keyed by the drill, so each failure is told once), warning when it could not run at all
/// (keyed by database and day, so a drill that stays broken is told once a day, not every check).
/// `None` for a passed drill.
pub fn scheduled_drill_notification(
    database: &str,
    result: Result<&DrillReport, &DrillError>,
    now: DateTime<Utc>,
) -> Option<crate::notify::Notification> {
    use crate::core::severity::Severity;
    let (key, severity, title, body, details) = match result {
        Ok(report) if report.outcome == DrillOutcome::Passed => return None,
        Ok(report) => (
            format!("drill/{database}/{}/{}", report.id, report.outcome.as_str()),
            Severity::Critical,
            format!("DR drill of {database} {}", report.outcome.as_str()),
            format!(
                "the scheduled restore drill of {database} {}: {}; deploys gated on it are refused \
                 until a drill passes (opsd drill show {})",
                report.outcome.as_str(),
                report.reasons.join("; "),
                report.id
            ),
            serde_json::to_value(report).unwrap_or_default(),
        ),
        Err(error) => (
            format!("drill/{database}/could-not-run/{}", now.date_naive()),
            Severity::Warning,
            format!("DR drill of {database} could not run"),
            format!("the scheduled restore drill of {database} could not run: {error}"),
            serde_json::json!({ "error": error.to_string() }),
        ),
    };
    Some(
        crate::notify::Notification::new(key, severity, "drills", title)
            .with_body(body)
            .with_details(details),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(outcome: DrillOutcome) -> DrillReport {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap();
        DrillReport {
            id: "d-1".into(),
            database: "steno".into(),
            target: "steno.db".into(),
            started_at: at,
            finished_at: at,
            outcome,
            reasons: vec!["rows in letters: 140 restored, 150 at snapshot time (10 lost)".into()],
            snapshot_id: None,
            snapshot_taken_at: None,
            snapshot_size_bytes: None,
            used_existing_snapshot: false,
            scratch: None,
            scratch_removed: true,
            measurement: DrillMeasurement::default(),
            rto_target_ms: 7_200_000,
            rpo_target_ms: 3_600_000,
            verification: Vec::new(),
            snapshots_removed_by_retention: Vec::new(),
        }
    }

    #[test]
    fn failed_scheduled_drills_page_and_broken_ones_warn_once_a_day() {
        use crate::core::severity::Severity;
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 3, 0, 0).unwrap();
        assert!(
            scheduled_drill_notification("steno", Ok(&report(DrillOutcome::Passed)), now).is_none()
        );
        let failed =
            scheduled_drill_notification("steno", Ok(&report(DrillOutcome::Failed)), now).unwrap();
        assert_eq!(failed.severity, Severity::Critical);
        assert_eq!(failed.key, "drill/steno/d-1/failed");
        assert!(failed.body.contains("10 lost"), "{}", failed.body);
        assert!(
            failed.body.contains("opsd drill show d-1"),
            "{}",
            failed.body
        );
        let error = DrillError::NoSnapshot {
            database: "steno".into(),
        };
        let broken = scheduled_drill_notification("steno", Err(&error), now).unwrap();
        assert_eq!(broken.severity, Severity::Warning);
        assert_eq!(broken.key, "drill/steno/could-not-run/2026-11-22");
        let later =
            scheduled_drill_notification("steno", Err(&error), now + chrono::Duration::hours(5))
                .unwrap();
        assert_eq!(
            later.key, broken.key,
            "the same day: the same key, sent once"
        );
    }
}
