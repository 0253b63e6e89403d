//! `opsd restore` of a SQLite file: the snapshot copied page by page over the database itself
//! with the online-backup API (one step, so a reader sees the old or the new database, never a
//! mix), or into a new file next to it, named by a plain file name (never a path: the name comes
//! from an API caller) that must not exist yet. The caller has stopped Steno and taken a
//! safety snapshot first.

use std::path::Path;

use rusqlite::Connection;

use super::sqlite_snapshots::{copy_every_page, failed, open_existing};
use crate::platform::snapshots::{RestoreTarget, RestoredTarget, Snapshot};
use crate::platform::PlatformError;

/// Restores `snapshot` over `source` or into the new file the target names.
pub(super) fn restore(
    source: &Path,
    snapshot: &Snapshot,
    target: &RestoreTarget,
) -> Result<RestoredTarget, PlatformError> {
    let from = open_existing(Path::new(&snapshot.location), true)?;
    match target {
        RestoreTarget::InPlace => {
            let operation = format!(
                "restore of snapshot {} over {}",
                snapshot.id,
                source.display()
            );
            // A database file that is gone (the disaster being recovered from) is created.
            let mut destination =
                Connection::open(source).map_err(|error| failed(&operation, error))?;
            copy_every_page(&from, &mut destination).map_err(|error| failed(&operation, error))?;
            destination
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
                .map_err(|error| failed(&operation, error))?;
            drop(destination);
            make_private(source, &operation)?;
            Ok(RestoredTarget {
                location: source.display().to_string(),
                next_steps: Vec::new(),
                target: target.clone(),
            })
        }
        RestoreTarget::New(name) => {
            let path = new_target_path(source, name)?;
            let path = path.as_path();
            let operation = format!(
                "restore of snapshot {} into {}",
                snapshot.id,
                path.display()
            );
            if path.exists() {
                return Err(failed(
                    &operation,
                    "the file exists; a new target must not, so nothing is overwritten by mistake",
                ));
            }
            if !path.parent().is_some_and(Path::is_dir) {
                return Err(failed(&operation, "its directory does not exist"));
            }
            let mut destination =
                Connection::open(path).map_err(|error| failed(&operation, error))?;
            copy_every_page(&from, &mut destination).map_err(|error| failed(&operation, error))?;
            drop(destination);
            make_private(path, &operation)?;
            Ok(RestoredTarget {
                location: path.display().to_string(),
                next_steps: vec![format!(
                    "point the service at the restored file (Steno: DATABASE_URL=sqlite://{}) \
                     and restart it, or move the file over the database while its releases are \
                     stopped",
                    path.display()
                )],
                target: target.clone(),
            })
        }
    }
}

/// The database and its `-wal`/`-shm` files are the user's alone (0600).
/// The new file a restore writes: `name` beside the database file. Only a plain file name is
/// accepted (letters, digits, `.`, `_`, `-`, not starting with `.`, at most 100 characters).
pub(super) fn new_target_path(
    source: &Path,
    name: &str,
) -> Result<std::path::PathBuf, PlatformError> {
    let plain = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
    if !plain {
        return Err(failed(
            "choosing the restore's new file",
            "--to names a file beside the database with letters, digits, '.', '_' or '-' \
             (like steno-restored.db), not a path",
        ));
    }
    let dir = source.parent().unwrap_or_else(|| Path::new("."));
    Ok(dir.join(name))
}

fn make_private(path: &Path, operation: &str) -> Result<(), PlatformError> {
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        crate::private_files::restrict_existing_file(&file)
            .map_err(|error| failed(operation, error))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::local::sqlite_snapshots::SqliteSnapshots;
    use crate::platform::snapshots::DatabaseSnapshots;

    fn rows(path: &Path) -> i64 {
        let connection = Connection::open(path).unwrap();
        connection
            .query_row("SELECT count(*) FROM letters", [], |row| row.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn a_snapshot_is_restored_over_the_database_or_into_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("steno.db");
        let connection = Connection::open(&source).unwrap();
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE letters (id INTEGER PRIMARY KEY, body TEXT);
                 INSERT INTO letters (body) VALUES ('one'), ('two');",
            )
            .unwrap();
        let snapshots = SqliteSnapshots::new(
            "steno",
            &source,
            &dir.path().join("snapshots"),
            &dir.path().join("drills"),
        );
        let taken = snapshots.take_snapshot("s1", &[]).await.unwrap();
        connection
            .execute_batch("INSERT INTO letters (body) VALUES ('three'); CREATE TABLE later (x);")
            .unwrap();
        drop(connection);
        assert_eq!(rows(&source), 3);

        let copy = dir.path().join("copy.db");
        let restored = snapshots
            .restore_production(&taken.snapshot, &RestoreTarget::New("copy.db".into()), "r1")
            .await
            .unwrap();
        assert_eq!(rows(&copy), 2);
        assert!(restored.next_steps[0].contains("DATABASE_URL=sqlite://"));
        assert_eq!(crate::private_files::mode_of(&copy).unwrap(), 0o600);
        for hostile in ["../outside.db", "/etc/passwd", ".hidden", ""] {
            let refused = snapshots
                .restore_production(&taken.snapshot, &RestoreTarget::New(hostile.into()), "r")
                .await
                .unwrap_err()
                .to_string();
            assert!(refused.contains("not a path"), "{hostile:?}: {refused}");
        }
        assert!(!dir.path().parent().unwrap().join("outside.db").exists());
        let again = snapshots
            .restore_production(&taken.snapshot, &RestoreTarget::New("copy.db".into()), "r2")
            .await
            .unwrap_err()
            .to_string();
        assert!(again.contains("the file exists"), "{again}");

        snapshots
            .restore_production(&taken.snapshot, &RestoreTarget::InPlace, "r3")
            .await
            .unwrap();
        assert_eq!(rows(&source), 2);
        let inspection = snapshots
            .inspect_restored(&RestoreTarget::InPlace, &[])
            .await
            .unwrap();
        assert!(inspection.integrity_problems.is_empty());
        assert!(
            !inspection.table_rows.contains_key("later"),
            "a table created after the snapshot is gone: {:?}",
            inspection.table_rows
        );
    }
}
