//! The database snapshot capability a DR drill needs: take a snapshot with the source's row
//! counts at that instant, restore it into a scratch target, inspect the scratch copy, and remove
//! it (also leftovers of interrupted drills); and what `opsd restore` needs: a snapshot restored
//! over the database itself or into a new target, then inspected like a drill's copy. Implemented for SQLite files and PostgreSQL (local)
//! and RDS instances (aws). invariant: no platform SDK type crosses this trait.

use crate::core::drill::{DrillCheck, ScratchInspection, SourceFingerprint, TableCounts};

use super::PlatformError;

/// A restorable point of a database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The platform's identifier (a file stem, an RDS snapshot identifier).
    pub id: String,
    /// When the snapshot's data was current, ms since the epoch.
    pub taken_at_ms: i64,
    /// Where it is: a file path, or an ARN.
    pub location: String,
    pub size_bytes: Option<u64>,
    /// SHA-256 of the snapshot file, for platforms that keep one.
    pub sha256: Option<String>,
}

/// A snapshot just taken, with what the source held at that instant (when the platform can read
/// the source's tables).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TakenSnapshot {
    pub snapshot: Snapshot,
    pub fingerprint: Option<SourceFingerprint>,
}

/// Where a restore of production writes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum RestoreTarget {
    /// Over the database itself (SQLite, PostgreSQL). RDS cannot restore in place.
    InPlace,
    /// A new target: a file name beside the database (SQLite; never a path), a database name
    /// (PostgreSQL), an instance identifier (RDS). It must not exist yet.
    New(String),
}

/// A restored copy whose rows [`DatabaseSnapshots::rows_of`] reads: a drill's scratch target, or
/// the target of a restore of production.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoredCopy {
    Scratch(String),
    Restored(RestoreTarget),
}

/// The most rows [`DatabaseSnapshots::rows_of`] reads.
pub const MAX_ROWS_READ: usize = 1_000_000;

/// What a restore of production produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RestoredTarget {
    /// Where the restored data is now: a file, a database (its URL without password), an RDS
    /// instance and its endpoint.
    pub location: String,
    /// What the operator does next, if anything: point the service at a new target, drop the
    /// copy the restore replaced once satisfied.
    pub next_steps: Vec<String>,
    /// What to hand to [`DatabaseSnapshots::inspect_restored`].
    pub target: RestoreTarget,
}

/// Snapshots and scratch restores of one configured database.
#[async_trait::async_trait]
pub trait DatabaseSnapshots: Send + Sync {
    /// What this database is, for messages: `sqlite file …`, `postgres … database steno`, `RDS instance …`.
    fn describe(&self) -> String;

    /// The scratch target's name for a drill (recorded before it is created). Every scratch name
    /// of this database matches what [`DatabaseSnapshots::leftover_scratches`] looks for.
    fn scratch_name(&self, drill_id: &str) -> String;

    /// Takes a snapshot now; the fingerprint holds the row count of every table and the value
    /// of every `checks` entry whose expectation is the source, read at the snapshot's instant.
    async fn take_snapshot(
        &self,
        snapshot_id: &str,
        checks: &[DrillCheck],
    ) -> Result<TakenSnapshot, PlatformError>;

    /// The restorable points that exist now, newest first (including ones opsd did not take).
    async fn snapshots(&self) -> Result<Vec<Snapshot>, PlatformError>;

    /// Whether the snapshot still has the digest recorded when it was taken; `None` when the
    /// platform keeps no digest.
    async fn digest_matches(
        &self,
        snapshot: &Snapshot,
        recorded_sha256: Option<&str>,
    ) -> Result<Option<bool>, PlatformError>;

    /// Restores `snapshot` into a new scratch target named `scratch`, and returns once it can be
    /// inspected.
    async fn restore(&self, snapshot: &Snapshot, scratch: &str) -> Result<(), PlatformError>;

    /// Reads the scratch copy: the engine's integrity check, every table's row count, and the
    /// value of each check (`None` in the inspection when the platform cannot query the copy).
    async fn inspect(
        &self,
        scratch: &str,
        checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError>;

    /// The source's row counts now (for the write gap); `None` when the source cannot be read.
    async fn source_table_rows(&self) -> Result<Option<TableCounts>, PlatformError>;

    /// Removes the scratch target; removing one that does not exist succeeds.
    async fn drop_scratch(&self, scratch: &str) -> Result<(), PlatformError>;

    /// Scratch targets of this database that exist now (leftovers when no drill runs).
    async fn leftover_scratches(&self) -> Result<Vec<String>, PlatformError>;

    /// Deletes a snapshot opsd took (retention).
    async fn delete_snapshot(&self, snapshot: &Snapshot) -> Result<(), PlatformError>;

    /// Restores `snapshot` over the database or into a new target (`restore_id` names anything
    /// the restore creates on the way) and returns once it can be inspected. In place, the
    /// database's users must be stopped: the caller stops them.
    async fn restore_production(
        &self,
        snapshot: &Snapshot,
        target: &RestoreTarget,
        restore_id: &str,
    ) -> Result<RestoredTarget, PlatformError>;

    /// Reads a restored target like a drill's scratch copy.
    async fn inspect_restored(
        &self,
        target: &RestoreTarget,
        checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError>;

    /// The rows `sql` returns on a restored copy, as text, at most [`MAX_ROWS_READ`] (more is an
    /// error); `None` when the platform cannot query copies (RDS without credentials).
    async fn rows_of(
        &self,
        copy: &RestoredCopy,
        sql: &str,
    ) -> Result<Option<Vec<Vec<String>>>, PlatformError> {
        let _ = (copy, sql);
        Ok(None)
    }
}

/// The value of one check's rows: one row of one column is that value as text; anything else is
/// `sha256:<hex>` over every row's text, one per line, so a query over chosen columns in a fixed
/// order is a checksum of them.
pub fn check_value_of_rows(rows: &[Vec<String>]) -> String {
    use sha2::{Digest, Sha256};
    if rows.len() == 1 && rows[0].len() == 1 {
        return rows[0][0].clone();
    }
    let mut hasher = Sha256::new();
    for row in rows {
        hasher.update(row.join("\u{1f}").as_bytes());
        hasher.update(b"\n");
    }
    format!("sha256:{:x}", hasher.finalize())
}

/// A check's query made safe to wrap: trailing semicolons and whitespace removed.
pub fn trimmed_query(sql: &str) -> &str {
    sql.trim().trim_end_matches(';').trim_end()
}

/// Lowercase letters, digits and `replacement` only: for scratch names built from config names.
pub fn identifier_part(text: &str, replacement: char) -> String {
    text.chars()
        .map(|ch| {
            if ch.is_ascii_alphanumeric() {
                ch.to_ascii_lowercase()
            } else {
                replacement
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_value_is_itself_and_rows_are_a_checksum() {
        assert_eq!(check_value_of_rows(&[vec!["0".into()]]), "0");
        let rows = vec![vec!["a".into(), "1".into()], vec!["b".into(), "2".into()]];
        let checksum = check_value_of_rows(&rows);
        assert!(checksum.starts_with("sha256:"));
        assert_eq!(checksum.len(), "sha256:".len() + 64);
        let mut changed = rows.clone();
        changed[1][1] = "3".into();
        assert_ne!(check_value_of_rows(&changed), checksum);
        // Column boundaries count: ("ab", "") differs from ("a", "b").
        assert_ne!(
            check_value_of_rows(&[vec!["ab".into(), "".into()], vec!["x".into()]]),
            check_value_of_rows(&[vec!["a".into(), "b".into()], vec!["x".into()]])
        );
    }

    #[test]
    fn queries_and_names_are_tidied() {
        assert_eq!(trimmed_query(" SELECT 1;; \n"), "SELECT 1");
        assert_eq!(identifier_part("Steno-DB.prod", '_'), "steno_db_prod");
    }
}
