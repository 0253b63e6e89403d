//! `opsd restore` on PostgreSQL. The dump is first restored into a new database
//! `opsd_restore_<name>_<id>` on the same server (so a dump that does not restore changes nothing),
//! then, in place, swapped with the live database by two renames made from the maintenance
//! database: the live one becomes `opsd_replaced_<name>_<id>` (kept, the operator drops it once
//! satisfied) and the restored one takes its name. Into a new target, the dump is restored into a
//! database of that name, which must not exist yet. The caller has stopped the database's users.

use sqlx::{Connection, Executor};

use super::postgres_snapshots::{
    failed, quote_identifier, redacted, url_for_database, PostgresSnapshots,
};
use crate::platform::snapshots::{identifier_part, RestoreTarget, RestoredTarget, Snapshot};
use crate::platform::PlatformError;

/// What to check when a restore's database cannot be created.
const NEW_TARGET_HINT: &str = "a new target must not exist, and the role needs CREATEDB";

/// The longest PostgreSQL identifier.
const MAX_IDENTIFIER: usize = 63;

impl PostgresSnapshots {
    /// The live database's name, from its URL.
    pub(super) fn database_name(&self) -> Result<String, PlatformError> {
        let parsed = reqwest::Url::parse(&self.url)
            .map_err(|error| failed("reading the database URL", error))?;
        let name = parsed.path().trim_start_matches('/').to_string();
        if name.is_empty() {
            return Err(failed(
                "reading the database URL",
                "it names no database (postgres://user@host/NAME)",
            ));
        }
        Ok(name)
    }

    fn restore_name(&self, prefix: &str, restore_id: &str) -> String {
        let short: String = restore_id
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let mut name = format!(
            "{prefix}_{}_{}",
            identifier_part(&self.name, '_'),
            short.to_ascii_lowercase()
        );
        name.truncate(MAX_IDENTIFIER);
        name
    }

    /// Restores `snapshot` over the live database or into the new database the target names.
    pub(super) async fn restore_into_server(
        &self,
        snapshot: &Snapshot,
        target: &RestoreTarget,
        restore_id: &str,
    ) -> Result<RestoredTarget, PlatformError> {
        match target {
            RestoreTarget::New(name) => {
                let plain = !name.is_empty()
                    && name.len() <= MAX_IDENTIFIER
                    && name.starts_with(|ch: char| ch.is_ascii_lowercase())
                    && name
                        .chars()
                        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_');
                if !plain {
                    return Err(failed(
                        "choosing the restore's new database",
                        "--to names a database: lower-case letters, digits and '_', starting \
                         with a letter, at most 63 characters",
                    ));
                }
                self.restore_dump_into(snapshot, name, NEW_TARGET_HINT)
                    .await?;
                let url = url_for_database(&self.url, name)?;
                Ok(RestoredTarget {
                    location: redacted(&url),
                    next_steps: vec![format!(
                        "point the service at the restored database (Steno: DATABASE_URL={}) \
                         and restart it",
                        redacted(&url)
                    )],
                    target: target.clone(),
                })
            }
            RestoreTarget::InPlace => {
                let live = self.database_name()?;
                let staged = self.restore_name("opsd_restore", restore_id);
                if let Err(error) = self
                    .restore_dump_into(snapshot, &staged, NEW_TARGET_HINT)
                    .await
                {
                    self.drop_database(&staged).await;
                    return Err(error);
                }
                let replaced = self.restore_name("opsd_replaced", restore_id);
                self.swap(&live, &staged, &replaced).await?;
                Ok(RestoredTarget {
                    location: redacted(&self.url),
                    next_steps: vec![format!(
                        "the database the restore replaced is kept as {replaced}; drop it once \
                         the restored data is confirmed (DROP DATABASE {replaced})"
                    )],
                    target: target.clone(),
                })
            }
        }
    }

    /// `CREATE DATABASE name` and `pg_restore` of the dump into it (a drill's scratch copy, or a
    /// restore's); `create_hint` says what to check when the database cannot be created.
    pub(super) async fn restore_dump_into(
        &self,
        snapshot: &Snapshot,
        name: &str,
        create_hint: &str,
    ) -> Result<(), PlatformError> {
        let operation = format!("restore of snapshot {} into database {name}", snapshot.id);
        if !std::path::Path::new(&snapshot.location).is_file() {
            return Err(failed(
                &operation,
                format!("the dump {} does not exist", snapshot.location),
            ));
        }
        let mut connection = self.connect(&self.url).await?;
        connection
            .execute(format!("CREATE DATABASE {}", quote_identifier(name)).as_str())
            .await
            .map_err(|error| failed(&operation, format!("{error}; {create_hint}")))?;
        let _ = connection.close().await;
        let url = url_for_database(&self.url, name)?;
        self.run_tool(
            &self.pg_restore,
            &[
                "--exit-on-error".into(),
                "--no-owner".into(),
                "--no-privileges".into(),
                format!("--dbname={url}"),
                snapshot.location.clone(),
            ],
            &operation,
        )
        .await
    }

    /// Renames `live` to `replaced` and `staged` to `live`, from a database that is neither; the
    /// first rename is undone when the second fails.
    async fn swap(&self, live: &str, staged: &str, replaced: &str) -> Result<(), PlatformError> {
        let operation = format!("swapping the restored database {staged} in as {live}");
        let maintenance = if live == "postgres" {
            "template1"
        } else {
            "postgres"
        };
        let mut connection = self
            .connect(&url_for_database(&self.url, maintenance)?)
            .await?;
        // Connections left over from stopped users would block the rename.
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(live)
        .execute(&mut connection)
        .await
        .map_err(|error| failed(&operation, error))?;
        let rename = |from: &str, to: &str| {
            format!(
                "ALTER DATABASE {} RENAME TO {}",
                quote_identifier(from),
                quote_identifier(to)
            )
        };
        connection
            .execute(rename(live, replaced).as_str())
            .await
            .map_err(|error| failed(&operation, error))?;
        if let Err(error) = connection.execute(rename(staged, live).as_str()).await {
            let _ = connection.execute(rename(replaced, live).as_str()).await;
            return Err(failed(&operation, error));
        }
        let _ = connection.close().await;
        Ok(())
    }

    /// Drops a database the restore made, logging a failure (it is named in the log).
    async fn drop_database(&self, name: &str) {
        let dropped = async {
            let mut connection = self.connect(&self.url).await?;
            connection
                .execute(
                    format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_identifier(name)
                    )
                    .as_str(),
                )
                .await
                .map_err(|error| failed(format!("dropping database {name}"), error))?;
            let _ = connection.close().await;
            Ok::<(), PlatformError>(())
        };
        if let Err(error) = dropped.await {
            tracing::warn!(database = %name, error = %error, "could not drop a database a failed restore made; drop it by hand");
        }
    }
}
