//! Snapshots of a PostgreSQL database with `pg_dump`/`pg_restore`. The dump runs on a snapshot
//! exported from a REPEATABLE READ transaction in which opsd also counts every table's rows, so
//! the counts are exactly what the dump holds. A drill restores the dump into a scratch database
//! `opsd_drill_<name>_<id>` on the same server and drops it afterwards.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, Executor, PgConnection, Row};

use crate::core::drill::{
    CheckExpectation, DrillCheck, ScratchInspection, SourceFingerprint, TableCounts,
};
use crate::platform::local::sqlite_snapshots::{
    file_digest, file_digest_matches, remove_if_present, snapshot_files,
};
use crate::platform::snapshots::{
    check_value_of_rows, identifier_part, trimmed_query, DatabaseSnapshots, RestoreTarget,
    RestoredCopy, RestoredTarget, Snapshot, TakenSnapshot, MAX_ROWS_READ,
};
use crate::platform::PlatformError;

const SNAPSHOT_EXTENSION: &str = "dump";

/// One PostgreSQL database and where its dumps go.
#[derive(Debug, Clone)]
pub struct PostgresSnapshots {
    pub(super) name: String,
    pub(super) url: String,
    snapshot_dir: PathBuf,
    pg_dump: PathBuf,
    pub(super) pg_restore: PathBuf,
}

pub(super) fn failed(operation: impl Into<String>, message: impl ToString) -> PlatformError {
    PlatformError::Operation {
        operation: operation.into(),
        message: message.to_string(),
    }
}

/// Finds a PostgreSQL client program in `tools_dir` or on `PATH`.
pub fn find_tool(program: &str, tools_dir: Option<&Path>) -> Result<PathBuf, PlatformError> {
    let candidates: Vec<PathBuf> = match tools_dir {
        Some(dir) => vec![dir.join(program)],
        None => std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(program))
                    .collect()
            })
            .unwrap_or_default(),
    };
    candidates
        .into_iter()
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            failed(
                format!("finding {program}"),
                match tools_dir {
                    Some(dir) => format!(
                        "{program} is not in {} (databases.<name>.tools_dir); point it at the \
                         PostgreSQL client programs' directory",
                        dir.display()
                    ),
                    None => format!(
                        "{program} is not on PATH; install the PostgreSQL client programs \
                         (Debian: apt-get install postgresql-client) or set \
                         databases.<name>.tools_dir"
                    ),
                },
            )
        })
}

/// The connection URL with another database name.
pub(super) fn url_for_database(url: &str, database: &str) -> Result<String, PlatformError> {
    let mut parsed =
        reqwest::Url::parse(url).map_err(|error| failed("reading the database URL", error))?;
    parsed.set_path(&format!("/{database}"));
    Ok(parsed.to_string())
}

/// The URL without its password, for messages.
pub(super) fn redacted(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(unparsable URL)".to_string(),
    }
}

pub(super) fn quote_identifier(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64)
}

impl PostgresSnapshots {
    /// `tools_dir` holds `pg_dump` and `pg_restore` (default: found on `PATH`).
    pub fn new(
        name: &str,
        url: &str,
        snapshot_dir: &Path,
        tools_dir: Option<&Path>,
    ) -> Result<Self, PlatformError> {
        Ok(PostgresSnapshots {
            name: name.to_string(),
            url: url.to_string(),
            snapshot_dir: snapshot_dir.to_path_buf(),
            pg_dump: find_tool("pg_dump", tools_dir)?,
            pg_restore: find_tool("pg_restore", tools_dir)?,
        })
    }

    fn scratch_prefix(&self) -> String {
        format!("opsd_drill_{}_", identifier_part(&self.name, '_'))
    }

    /// The database of a restored copy.
    fn database_of(&self, copy: &RestoredCopy) -> Result<String, PlatformError> {
        Ok(match copy {
            RestoredCopy::Scratch(scratch) => scratch.clone(),
            RestoredCopy::Restored(RestoreTarget::InPlace) => self.database_name()?,
            RestoredCopy::Restored(RestoreTarget::New(name)) => name.clone(),
        })
    }

    /// The integrity of indexes, every table's row count and each check's value of one database
    /// on the server.
    pub(super) async fn inspect_database(
        &self,
        scratch: &str,
        checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError> {
        let scratch_url = url_for_database(&self.url, scratch)?;
        let mut connection = self.connect(&scratch_url).await?;
        let mut inspection = ScratchInspection::default();
        // pg_restore ran with --exit-on-error; what it builds last are indexes and constraints.
        let invalid: Result<Vec<String>, _> = sqlx::query_scalar(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid OR NOT indisready",
        )
        .fetch_all(&mut connection)
        .await;
        match invalid {
            Ok(indexes) => inspection.integrity_problems.extend(
                indexes
                    .into_iter()
                    .map(|index| format!("index {index} is not valid")),
            ),
            Err(error) => inspection
                .integrity_problems
                .push(format!("cannot read the index catalog: {error}")),
        }
        match table_rows(&mut connection).await {
            Ok(counts) => inspection.table_rows = counts,
            Err(error) => inspection
                .integrity_problems
                .push(format!("cannot count rows: {error}")),
        }
        for check in checks {
            let value = query_rows(&mut connection, &check.sql)
                .await
                .map(|rows| check_value_of_rows(&rows));
            inspection.check_values.insert(check.name.clone(), value);
        }
        let _ = connection.close().await;
        Ok(inspection)
    }

    pub(super) async fn connect(&self, url: &str) -> Result<PgConnection, PlatformError> {
        PgConnection::connect(url).await.map_err(|error| {
            failed(
                format!("connecting to {}", redacted(url)),
                format!("{error}; check the URL, that the server runs, and the role's rights"),
            )
        })
    }

    pub(super) async fn run_tool(
        &self,
        program: &Path,
        args: &[String],
        what: &str,
    ) -> Result<(), PlatformError> {
        let output = tokio::process::Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output()
            .await
            .map_err(|error| failed(what, format!("cannot run {}: {error}", program.display())))?;
        if output.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(4).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(failed(
            what,
            format!(
                "{} exited with {}: {}",
                program
                    .file_name()
                    .and_then(|name| name.to_str())
                    .unwrap_or("tool"),
                output.status,
                tail.join(" | ")
            ),
        ))
    }
}

/// Every table outside the system schemas, as `table` (schema public) or `schema.table`.
async fn table_names(connection: &mut PgConnection) -> Result<Vec<(String, String)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT schemaname::text, tablename::text FROM pg_tables \
         WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    )
    .fetch_all(&mut *connection)
    .await?;
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect()
}

async fn table_rows(connection: &mut PgConnection) -> Result<TableCounts, sqlx::Error> {
    let mut counts = TableCounts::new();
    for (schema, table) in table_names(connection).await? {
        let rows: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {}.{}",
            quote_identifier(&schema),
            quote_identifier(&table)
        ))
        .fetch_one(&mut *connection)
        .await?;
        let key = if schema == "public" {
            table
        } else {
            format!("{schema}.{table}")
        };
        counts.insert(key, rows.max(0) as u64);
    }
    Ok(counts)
}

/// A check's rows as text: each row through `row_to_json`, its values in column-name order.
async fn query_rows(connection: &mut PgConnection, sql: &str) -> Result<Vec<Vec<String>>, String> {
    query_rows_limited(connection, sql, None).await
}

/// A query's rows as text; with a `limit`, more rows than that is an error.
async fn query_rows_limited(
    connection: &mut PgConnection,
    sql: &str,
    limit: Option<usize>,
) -> Result<Vec<Vec<String>>, String> {
    let wrapped = format!(
        "SELECT row_to_json(check_rows)::text FROM ({}) AS check_rows{}",
        trimmed_query(sql),
        limit.map_or(String::new(), |limit| format!(" LIMIT {}", limit + 1))
    );
    let rows: Vec<String> = sqlx::query_scalar(&wrapped)
        .fetch_all(&mut *connection)
        .await
        .map_err(|error| error.to_string())?;
    if let Some(limit) = limit.filter(|limit| rows.len() > *limit) {
        return Err(format!("the query returns more than {limit} rows"));
    }
    rows.iter()
        .map(|text| {
            let value: serde_json::Value =
                serde_json::from_str(text).map_err(|error| error.to_string())?;
            let object = value.as_object().cloned().unwrap_or_default();
            Ok(object
                .values()
                .map(|value| match value {
                    serde_json::Value::String(text) => text.clone(),
                    serde_json::Value::Null => "NULL".to_string(),
                    other => other.to_string(),
                })
                .collect())
        })
        .collect()
}

#[async_trait::async_trait]
impl DatabaseSnapshots for PostgresSnapshots {
    fn describe(&self) -> String {
        format!("PostgreSQL database {}", redacted(&self.url))
    }

    fn scratch_name(&self, drill_id: &str) -> String {
        let short: String = drill_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let mut name = format!("{}{}", self.scratch_prefix(), short.to_ascii_lowercase());
        name.truncate(63);
        name
    }

    async fn take_snapshot(
        &self,
        snapshot_id: &str,
        checks: &[DrillCheck],
    ) -> Result<TakenSnapshot, PlatformError> {
        let operation = format!("snapshot of {}", self.describe());
        crate::private_files::ensure_private_dir(&self.snapshot_dir).map_err(|error| {
            failed(
                format!("creating {}", self.snapshot_dir.display()),
                format!("{error}; check the permissions of opsd's data directory"),
            )
        })?;
        let mut connection = self.connect(&self.url).await?;
        connection
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .await
            .map_err(|error| failed(&operation, error))?;
        let exported: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut connection)
            .await
            .map_err(|error| failed(&operation, error))?;
        let taken_at_ms = now_ms();
        let table_rows = table_rows(&mut connection)
            .await
            .map_err(|error| failed(&operation, error))?;
        let mut check_values = std::collections::BTreeMap::new();
        for check in checks {
            if check.expect == CheckExpectation::SameAsSource {
                let rows = query_rows(&mut connection, &check.sql)
                    .await
                    .map_err(|error| {
                        failed(
                            format!("running check {:?} on the source", check.name),
                            format!("{error}; fix the query in the checks file"),
                        )
                    })?;
                check_values.insert(check.name.clone(), check_value_of_rows(&rows));
            }
        }
        let final_path = self
            .snapshot_dir
            .join(format!("{snapshot_id}.{SNAPSHOT_EXTENSION}"));
        let partial_path = self
            .snapshot_dir
            .join(format!("{snapshot_id}.{SNAPSHOT_EXTENSION}.partial"));
        let dumped = self
            .run_tool(
                &self.pg_dump,
                &[
                    "--format=custom".into(),
                    format!("--snapshot={exported}"),
                    format!("--file={}", partial_path.display()),
                    format!("--dbname={}", self.url),
                ],
                &operation,
            )
            .await;
        let _ = connection.execute("COMMIT").await;
        let _ = connection.close().await;
        if let Err(error) = dumped {
            let _ = remove_if_present(&partial_path);
            return Err(error);
        }
        tokio::fs::rename(&partial_path, &final_path)
            .await
            .map_err(|error| {
                failed(
                    &operation,
                    format!("cannot move the dump in place: {error}"),
                )
            })?;
        let digest_path = final_path.clone();
        let (sha256, size) = tokio::task::spawn_blocking(move || file_digest(&digest_path))
            .await
            .map_err(|error| failed(&operation, error))?
            .map_err(|error| failed(&operation, error))?;
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
        self.restore_dump_into(
            snapshot,
            scratch,
            "the role needs the CREATEDB privilege for drills",
        )
        .await
    }

    async fn inspect(
        &self,
        scratch: &str,
        checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError> {
        self.inspect_database(scratch, checks).await
    }

    async fn source_table_rows(&self) -> Result<Option<TableCounts>, PlatformError> {
        let mut connection = self.connect(&self.url).await?;
        let counts = table_rows(&mut connection)
            .await
            .map_err(|error| failed(format!("counting rows of {}", self.describe()), error))?;
        let _ = connection.close().await;
        Ok(Some(counts))
    }

    async fn drop_scratch(&self, scratch: &str) -> Result<(), PlatformError> {
        if !scratch.starts_with(&self.scratch_prefix()) {
            return Err(failed(
                format!("dropping database {scratch}"),
                "refused: it is not a drill's scratch database",
            ));
        }
        let mut connection = self.connect(&self.url).await?;
        connection
            .execute(
                format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    quote_identifier(scratch)
                )
                .as_str(),
            )
            .await
            .map_err(|error| failed(format!("dropping database {scratch}"), error))?;
        let _ = connection.close().await;
        Ok(())
    }

    async fn leftover_scratches(&self) -> Result<Vec<String>, PlatformError> {
        let mut connection = self.connect(&self.url).await?;
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname::text FROM pg_database ORDER BY 1")
                .fetch_all(&mut connection)
                .await
                .map_err(|error| failed("listing databases", error))?;
        let _ = connection.close().await;
        let prefix = self.scratch_prefix();
        Ok(names
            .into_iter()
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
        restore_id: &str,
    ) -> Result<RestoredTarget, PlatformError> {
        self.restore_into_server(snapshot, target, restore_id).await
    }

    async fn inspect_restored(
        &self,
        target: &RestoreTarget,
        checks: &[DrillCheck],
    ) -> Result<ScratchInspection, PlatformError> {
        let database = self.database_of(&RestoredCopy::Restored(target.clone()))?;
        self.inspect_database(&database, checks).await
    }

    async fn rows_of(
        &self,
        copy: &RestoredCopy,
        sql: &str,
    ) -> Result<Option<Vec<Vec<String>>>, PlatformError> {
        let database = self.database_of(copy)?;
        let mut connection = self
            .connect(&url_for_database(&self.url, &database)?)
            .await?;
        let rows = query_rows_limited(&mut connection, sql, Some(MAX_ROWS_READ))
            .await
            .map_err(|error| failed(format!("querying database {database}"), error));
        let _ = connection.close().await;
        rows.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_change_database_and_hide_passwords() {
        assert_eq!(
            url_for_database(
                "postgres://steno:secret@127.0.0.1:5433/steno?sslmode=disable",
                "opsd_drill_steno_ab"
            )
            .unwrap(),
            "postgres://steno:secret@127.0.0.1:5433/opsd_drill_steno_ab?sslmode=disable"
        );
        assert_eq!(
            redacted("postgres://steno:secret@127.0.0.1:5433/steno"),
            "postgres://steno:***@127.0.0.1:5433/steno"
        );
    }

    #[test]
    fn a_missing_tool_says_how_to_install_it() {
        let dir = tempfile::tempdir().unwrap();
        let error = find_tool("pg_dump", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(error.contains("tools_dir"), "{error}");
    }
}
