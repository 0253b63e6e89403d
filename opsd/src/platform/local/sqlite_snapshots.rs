//! Snapshots of a SQLite database file with SQLite's online-backup API: the snapshot is a backup
//! copy taken inside one read transaction (so the row counts read in it match the copy exactly),
//! and a drill restores it, again with the backup API, into a scratch file under `drills/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::backup::{Backup, StepResult};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sha2::{Digest, Sha256};

use crate::core::drill::{
    CheckExpectation, DrillCheck, ScratchInspection, SourceFingerprint, TableCounts,
};
use crate::platform::snapshots::{
    check_value_of_rows, identifier_part, trimmed_query, DatabaseSnapshots, RestoreTarget,
    RestoredCopy, RestoredTarget, Snapshot, TakenSnapshot, MAX_ROWS_READ,
};
use crate::platform::PlatformError;

const SNAPSHOT_EXTENSION: &str = "sqlite";
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// One SQLite database file and where its snapshots and scratch copies go.
#[derive(Debug, Clone)]
pub struct SqliteSnapshots {
    name: String,
    source: PathBuf,
    snapshot_dir: PathBuf,
    scratch_dir: PathBuf,
}

impl SqliteSnapshots {
    /// `name` is the database's name in `opsd.yaml`; snapshots go to `snapshot_dir`, scratch
    /// copies to `scratch_dir`.
    pub fn new(name: &str, source: &Path, snapshot_dir: &Path, scratch_dir: &Path) -> Self {
        SqliteSnapshots {
            name: name.to_string(),
            source: source.to_path_buf(),
            snapshot_dir: snapshot_dir.to_path_buf(),
            scratch_dir: scratch_dir.to_path_buf(),
        }
    }

    fn scratch_path(&self, scratch: &str) -> PathBuf {
        self.scratch_dir
            .join(format!("{scratch}.{SNAPSHOT_EXTENSION}"))
    }

    fn scratch_prefix(&self) -> String {
        format!("{}-drill-", identifier_part(&self.name, '-'))
    }

    /// The file of a restored copy.
    fn path_of(&self, copy: &RestoredCopy) -> PathBuf {
        match copy {
            RestoredCopy::Scratch(scratch) => self.scratch_path(scratch),
            RestoredCopy::Restored(RestoreTarget::InPlace) => self.source.clone(),
            RestoredCopy::Restored(RestoreTarget::New(name)) => {
                super::sqlite_restore::new_target_path(&self.source, name)
                    .unwrap_or_else(|_| self.scratch_dir.join("not-a-restore-target"))
            }
        }
    }
}

pub(super) fn failed(operation: impl Into<String>, message: impl ToString) -> PlatformError {
    PlatformError::Operation {
        operation: operation.into(),
        message: message.to_string(),
    }
}

/// Opens an existing database file without ever creating one.
pub(super) fn open_existing(path: &Path, read_only: bool) -> Result<Connection, PlatformError> {
    if !path.is_file() {
        return Err(failed(
            format!("opening SQLite database {}", path.display()),
            "the file does not exist; check databases.<name>.path (Steno creates it on first start)",
        ));
    }
    let mode = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    };
    let connection = Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|error| {
            failed(
                format!("opening SQLite database {}", path.display()),
                format!("{error}; check the file's permissions"),
            )
        })?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|error| failed("setting the busy timeout", error))?;
    Ok(connection)
}

/// Every user table with its row count.
fn table_rows(connection: &Connection) -> Result<TableCounts, rusqlite::Error> {
    let mut statement = connection.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    let tables: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut counts = TableCounts::new();
    for table in tables {
        let quoted = table.replace('"', "\"\"");
        let rows: i64 =
            connection.query_row(&format!("SELECT count(*) FROM \"{quoted}\""), [], |row| {
                row.get(0)
            })?;
        counts.insert(table, rows.max(0) as u64);
    }
    Ok(counts)
}

/// A check's rows as text.
fn query_rows(connection: &Connection, sql: &str) -> Result<Vec<Vec<String>>, String> {
    query_rows_at_most(connection, sql, usize::MAX)
}

/// A query's rows as text; more than `limit` rows is an error.
fn query_rows_at_most(
    connection: &Connection,
    sql: &str,
    limit: usize,
) -> Result<Vec<Vec<String>>, String> {
    let mut statement = connection
        .prepare(trimmed_query(sql))
        .map_err(|error| error.to_string())?;
    let columns = statement.column_count();
    let mut rows = statement.query([]).map_err(|error| error.to_string())?;
    let mut result = Vec::new();
    while let Some(row) = rows.next().map_err(|error| error.to_string())? {
        if result.len() == limit {
            return Err(format!("the query returns more than {limit} rows"));
        }
        let mut values = Vec::with_capacity(columns);
        for index in 0..columns {
            let value = row.get_ref(index).map_err(|error| error.to_string())?;
            values.push(match value {
                ValueRef::Null => "NULL".to_string(),
                ValueRef::Integer(number) => number.to_string(),
                ValueRef::Real(number) => number.to_string(),
                ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                ValueRef::Blob(bytes) => format!("blob:{:x}", Sha256::digest(bytes)),
            });
        }
        result.push(values);
    }
    Ok(result)
}

fn source_check_values(
    connection: &Connection,
    checks: &[DrillCheck],
) -> Result<std::collections::BTreeMap<String, String>, PlatformError> {
    let mut values = std::collections::BTreeMap::new();
    for check in checks {
        if check.expect == CheckExpectation::SameAsSource {
            let rows = query_rows(connection, &check.sql).map_err(|error| {
                failed(
                    format!("running check {:?} on the source", check.name),
                    format!("{error}; fix the query in the checks file"),
                )
            })?;
            values.insert(check.name.clone(), check_value_of_rows(&rows));
        }
    }
    Ok(values)
}

/// SHA-256 and size of a file.
pub fn file_digest(path: &Path) -> std::io::Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        size += read as u64;
        hasher.update(&buffer[..read]);
    }
    Ok((format!("{:x}", hasher.finalize()), size))
}

/// Whether a snapshot file still has the SHA-256 recorded when it was taken (`None`: none was).
pub async fn file_digest_matches(
    snapshot: &Snapshot,
    recorded_sha256: Option<&str>,
) -> Result<Option<bool>, PlatformError> {
    let Some(recorded) = recorded_sha256 else {
        return Ok(None);
    };
    let path = PathBuf::from(&snapshot.location);
    let (sha256, _) = tokio::task::spawn_blocking(move || file_digest(&path))
        .await
        .map_err(|error| failed("hashing a snapshot", error))?
        .map_err(|error| failed(format!("reading {}", snapshot.location), error))?;
    Ok(Some(sha256 == recorded))
}

/// Snapshot files in a directory with one extension, newest first.
pub fn snapshot_files(dir: &Path, extension: &str) -> Result<Vec<Snapshot>, PlatformError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(failed(format!("listing {}", dir.display()), error)),
    };
    let mut snapshots = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|ext| ext.to_str()) != Some(extension) {
            continue;
        }
        let Some(id) = path.file_stem().and_then(|stem| stem.to_str()) else {
            continue;
        };
        let Ok(metadata) = entry.metadata() else {
            continue;
        };
        let modified_ms = metadata
            .modified()
            .ok()
            .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_millis() as i64);
        snapshots.push(Snapshot {
            id: id.to_string(),
            taken_at_ms: modified_ms,
            location: path.display().to_string(),
            size_bytes: Some(metadata.len()),
            sha256: None,
        });
    }
    snapshots.sort_by(|a, b| b.taken_at_ms.cmp(&a.taken_at_ms).then(b.id.cmp(&a.id)));
    Ok(snapshots)
}

/// Removes a file if it exists.
pub fn remove_if_present(path: &Path) -> Result<(), PlatformError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(failed(format!("removing {}", path.display()), error)),
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

/// Copies `from` into a new file `to` with the online-backup API, inside whatever read
/// transaction `from` has open, and leaves the copy in rollback-journal mode so it can be opened
/// read-only later.
fn backup_into(from: &Connection, to: &Path) -> Result<(), rusqlite::Error> {
    let mut destination = Connection::open(to)?;
    copy_every_page(from, &mut destination)?;
    destination.pragma_update(None, "journal_mode", "DELETE")?;
    destination.close().map_err(|(_, error)| error)
}

/// Every page of `from` into `destination` in one step: one consistent copy, never restarted by
/// a concurrent writer; waits up to [`BUSY_TIMEOUT`] for locks.
pub(super) fn copy_every_page(
    from: &Connection,
    destination: &mut Connection,
) -> Result<(), rusqlite::Error> {
    let backup = Backup::new(from, destination)?;
    let started = std::time::Instant::now();
    loop {
        match backup.step(-1)? {
            StepResult::Done => return Ok(()),
            StepResult::Busy | StepResult::Locked if started.elapsed() > BUSY_TIMEOUT => {
                return Err(rusqlite::Error::SqliteFailure(
                    rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                    Some(format!(
                        "the database stayed locked for {} s",
                        BUSY_TIMEOUT.as_secs()
                    )),
                ));
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn take_snapshot_blocking(
    database: &SqliteSnapshots,
    snapshot_id: &str,
    checks: &[DrillCheck],
) -> Result<TakenSnapshot, PlatformError> {
    crate::private_files::ensure_private_dir(&database.snapshot_dir).map_err(|error| {
        failed(
            format!("creating {}", database.snapshot_dir.display()),
            format!("{error}; check the permissions of opsd's data directory"),
        )
    })?;
    let source = open_existing(&database.source, true)?;
    let operation = format!("snapshot of {}", database.source.display());
    // One read transaction: the counts, the check values and the copy all see the same data.
    source
        .execute_batch("BEGIN DEFERRED")
        .map_err(|error| failed(&operation, error))?;
    let taken_at_ms = now_ms();
    let table_rows = table_rows(&source).map_err(|error| failed(&operation, error))?;
    let check_values = source_check_values(&source, checks)?;
    let final_path = database
        .snapshot_dir
        .join(format!("{snapshot_id}.{SNAPSHOT_EXTENSION}"));
    let partial_path = database
        .snapshot_dir
        .join(format!("{snapshot_id}.{SNAPSHOT_EXTENSION}.partial"));
    remove_if_present(&partial_path)?;
    let copied = backup_into(&source, &partial_path);
    let _ = source.execute_batch("COMMIT");
    if let Err(error) = copied {
        let _ = remove_if_present(&partial_path);
        return Err(failed(&operation, format!("online backup failed: {error}")));
    }
    std::fs::rename(&partial_path, &final_path).map_err(|error| {
        failed(
            &operation,
            format!("cannot move the copy in place: {error}"),
        )
    })?;
    let (sha256, size) = file_digest(&final_path).map_err(|error| failed(&operation, error))?;
    Ok(TakenSnapshot {
        snapshot: Snapshot {
            id: snapshot_id.to_string(),
            taken_at_ms,
            location: final_path.display().to_string(),
            size_bytes: Some(size),
            sha256: Some(sha256),
        },
        fingerprint: Some(SourceFingerprint {
            table_rows,
            check_values,
        }),
    })
}

fn restore_blocking(
    database: &SqliteSnapshots,
    snapshot: &Snapshot,
    scratch: &str,
) -> Result<(), PlatformError> {
    crate::private_files::ensure_private_dir(&database.scratch_dir).map_err(|error| {
        failed(
            format!("creating {}", database.scratch_dir.display()),
            format!("{error}; check the permissions of opsd's data directory"),
        )
    })?;
    let scratch_path = database.scratch_path(scratch);
    let operation = format!(
        "restore of snapshot {} into {}",
        snapshot.id,
        scratch_path.display()
    );
    let from = open_existing(Path::new(&snapshot.location), true)?;
    backup_into(&from, &scratch_path).map_err(|error| failed(&operation, error))
}

fn inspect_blocking(
    database: &SqliteSnapshots,
    scratch: &str,
    checks: &[DrillCheck],
) -> Result<ScratchInspection, PlatformError> {
    inspect_file(&database.scratch_path(scratch), checks)
}

/// The integrity check, every table's row count and each check's value of a database file.
pub(super) fn inspect_file(
    path: &Path,
    checks: &[DrillCheck],
) -> Result<ScratchInspection, PlatformError> {
    let connection = open_existing(path, true)?;
    let mut inspection = ScratchInspection::default();
    let integrity = query_rows(&connection, "PRAGMA integrity_check");
    match integrity {
        Ok(rows) => {
            let problems: Vec<String> = rows
                .into_iter()
                .filter_map(|row| row.into_iter().next())
                .filter(|line| line != "ok")
                .take(10)
                .collect();
            inspection.integrity_problems = problems;
        }
        Err(error) => inspection
            .integrity_problems
            .push(format!("PRAGMA integrity_check failed: {error}")),
    }
    match table_rows(&connection) {
        Ok(counts) => inspection.table_rows = counts,
        Err(error) => inspection
            .integrity_problems
            .push(format!("cannot count rows: {error}")),
    }
    for check in checks {
        let value = query_rows(&connection, &check.sql).map(|rows| check_value_of_rows(&rows));
        inspection.check_values.insert(check.name.clone(), value);
    }
    Ok(inspection)
}

pub(super) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PlatformError> + Send + 'static,
) -> Result<T, PlatformError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| failed("a SQLite task", error))?
}

#[async_trait::async_trait]
impl DatabaseSnapshots for SqliteSnapshots {
    fn describe(&self) -> String {
        format!("SQLite database {}", self.source.display())
    }

    fn scratch_name(&self, drill_id: &str) -> String {
        let short: String = drill_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        format!("{}{}", self.scratch_prefix(), short.to_ascii_lowercase())
    }

    async fn take_snapshot(
        &self,
        snapshot_id: &str,
        checks: &[DrillCheck],
    ) -> Result<TakenSnapshot, PlatformError> {
        let database = self.clone();
        let snapshot_id = snapshot_id.to_string();
        let checks = checks.to_vec();
        blocking(move || take_snapshot_blocking(&database, &snapshot_id, &checks)).await
    }

    async fn snapshots(&self) -> Result<Vec<Snapshot>, PlatformError> {
        snapshot_files(&self.snapshot_dir, SNAPSHOT_EXTENSION)
    }

    async fn digest_matches(
        &self,
        snapshot: &Snapshot,
        recorded_sha256: Option<&str>,
    ) -> Result<Option<bool>, PlatformError> {
        file_digest_matches(snapshot, recorded_sha256).await
    }

    async fn restore(&self, snapshot: &Snapshot, scratch: &str) -> Result<(), PlatformError> {
        let database = self.clone();
        let snapshot = snapshot.clone();
        let scratch = scratch.to_string();
        blocking(move || restore_blocking(&database, &snapshot, &scratch)).await
    }

    async fn inspect(
        &self,
        scratch: &str,
        checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError> {
        let database = self.clone();
        let scratch = scratch.to_string();
        let checks = checks.to_vec();
        blocking(move || inspect_blocking(&database, &scratch, &checks)).await
    }

    async fn source_table_rows(&self) -> Result<Option<TableCounts>, PlatformError> {
        let source = self.source.clone();
        blocking(move || {
            let connection = open_existing(&source, true)?;
            table_rows(&connection)
                .map(Some)
                .map_err(|error| failed(format!("counting rows of {}", source.display()), error))
        })
        .await
    }

    async fn drop_scratch(&self, scratch: &str) -> Result<(), PlatformError> {
        let path = self.scratch_path(scratch);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            remove_if_present(&PathBuf::from(format!("{}{suffix}", path.display())))?;
        }
        Ok(())
    }

    async fn leftover_scratches(&self) -> Result<Vec<String>, PlatformError> {
        let prefix = self.scratch_prefix();
        Ok(snapshot_files(&self.scratch_dir, SNAPSHOT_EXTENSION)?
            .into_iter()
            .map(|file| file.id)
            .filter(|name| name.starts_with(&prefix))
            .collect())
    }

    async fn delete_snapshot(&self, snapshot: &Snapshot) -> Result<(), PlatformError> {
        remove_if_present(Path::new(&snapshot.location))
    }

    async fn restore_production(
        &self,
        snapshot: &Snapshot,
        target: &RestoreTarget,
        _restore_id: &str,
    ) -> Result<RestoredTarget, PlatformError> {
        let source = self.source.clone();
        let snapshot = snapshot.clone();
        let target = target.clone();
        blocking(move || super::sqlite_restore::restore(&source, &snapshot, &target)).await
    }

    async fn inspect_restored(
        &self,
        target: &RestoreTarget,
        checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError> {
        let path = self.path_of(&RestoredCopy::Restored(target.clone()));
        let checks = checks.to_vec();
        blocking(move || inspect_file(&path, &checks)).await
    }

    async fn rows_of(
        &self,
        copy: &RestoredCopy,
        sql: &str,
    ) -> Result<Option<Vec<Vec<String>>>, PlatformError> {
        let path = self.path_of(copy);
        let sql = sql.to_string();
        blocking(move || {
            let connection = open_existing(&path, true)?;
            query_rows_at_most(&connection, &sql, MAX_ROWS_READ)
                .map(Some)
                .map_err(|error| failed(format!("querying {}", path.display()), error))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::drill::{verify_restore, ItemStatus};

    fn steno_like_database(path: &Path, letters: usize) {
        let connection = Connection::open(path).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE firms (id TEXT PRIMARY KEY, name TEXT NOT NULL);
                 CREATE TABLE letters (id TEXT PRIMARY KEY, firm_id TEXT NOT NULL REFERENCES firms(id), current_revision INTEGER NOT NULL);
                 INSERT INTO firms VALUES ('f1', 'Abrams & Bell'), ('f2', 'Cole LLP');",
            )
            .unwrap();
        for index in 0..letters {
            connection
                .execute(
                    "INSERT INTO letters VALUES (?1, ?2, ?3)",
                    rusqlite::params![
                        format!("l{index:04}"),
                        if index % 2 == 0 { "f1" } else { "f2" },
                        1 + index % 3
                    ],
                )
                .unwrap();
        }
    }

    fn checks() -> Vec<DrillCheck> {
        vec![
            DrillCheck {
                name: "letters without a firm".into(),
                sql: "SELECT count(*) FROM letters l LEFT JOIN firms f ON f.id = l.firm_id WHERE f.id IS NULL;".into(),
                expect: CheckExpectation::Value("0".into()),
            },
            DrillCheck {
                name: "letter revisions".into(),
                sql: "SELECT id, current_revision FROM letters ORDER BY id".into(),
                expect: CheckExpectation::SameAsSource,
            },
        ]
    }

    #[tokio::test]
    async fn snapshot_restore_and_inspect_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("steno.db");
        steno_like_database(&source, 50);
        let database = SqliteSnapshots::new(
            "steno",
            &source,
            &dir.path().join("snapshots"),
            &dir.path().join("drills"),
        );
        let taken = database.take_snapshot("snap-1", &checks()).await.unwrap();
        let fingerprint = taken.fingerprint.clone().unwrap();
        assert_eq!(fingerprint.table_rows["letters"], 50);
        assert_eq!(fingerprint.table_rows["firms"], 2);
        assert!(fingerprint.check_values["letter revisions"].starts_with("sha256:"));
        assert_eq!(
            database
                .digest_matches(&taken.snapshot, taken.snapshot.sha256.as_deref())
                .await
                .unwrap(),
            Some(true)
        );

        let scratch = database.scratch_name("0f3c-77aa-drill");
        assert_eq!(scratch, "steno-drill-0f3c77aadril");
        database.restore(&taken.snapshot, &scratch).await.unwrap();
        assert_eq!(
            database.leftover_scratches().await.unwrap(),
            vec![scratch.clone()]
        );
        let inspection = database.inspect(&scratch, &checks()).await.unwrap();
        let items = verify_restore(Some(&fingerprint), &inspection, &checks(), Some(true));
        assert!(
            items.iter().all(|item| item.status == ItemStatus::Passed),
            "{items:#?}"
        );
        database.drop_scratch(&scratch).await.unwrap();
        assert!(database.leftover_scratches().await.unwrap().is_empty());
        assert_eq!(database.snapshots().await.unwrap()[0].id, "snap-1");
    }

    #[tokio::test]
    async fn a_snapshot_with_deleted_rows_fails_verification() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("steno.db");
        steno_like_database(&source, 20);
        let database = SqliteSnapshots::new(
            "steno",
            &source,
            &dir.path().join("snapshots"),
            &dir.path().join("drills"),
        );
        let taken = database.take_snapshot("snap-1", &checks()).await.unwrap();
        // Someone damages the snapshot file after the fact.
        Connection::open(&taken.snapshot.location)
            .unwrap()
            .execute("DELETE FROM letters WHERE id > 'l0014'", [])
            .unwrap();
        let digest = database
            .digest_matches(&taken.snapshot, taken.snapshot.sha256.as_deref())
            .await
            .unwrap();
        assert_eq!(digest, Some(false));
        let scratch = database.scratch_name("d2");
        database.restore(&taken.snapshot, &scratch).await.unwrap();
        let inspection = database.inspect(&scratch, &checks()).await.unwrap();
        let items = verify_restore(taken.fingerprint.as_ref(), &inspection, &checks(), digest);
        let letters = items
            .iter()
            .find(|item| item.name == "rows in letters")
            .unwrap();
        assert_eq!(letters.status, ItemStatus::Failed);
        assert!(letters.detail.contains("5 lost"), "{}", letters.detail);
        database.drop_scratch(&scratch).await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_source_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let database = SqliteSnapshots::new(
            "steno",
            &dir.path().join("nope.db"),
            &dir.path().join("snapshots"),
            &dir.path().join("drills"),
        );
        let error = database
            .take_snapshot("s", &[])
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("does not exist"), "{error}");
    }
}
