//! The store's versioned schema migrations, applied at open inside one `BEGIN IMMEDIATE`
//! transaction so that two opsd processes opening the same file never apply one twice.

use sqlx::{Row, SqliteConnection};

use super::{time_text, Store, StoreError};

/// One schema version.
#[derive(Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    sql: &'static str,
}

/// Every migration this build knows, in order. Append only; never edit a released one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("schema/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "drills",
        sql: include_str!("schema/0002_drills.sql"),
    },
    Migration {
        version: 3,
        name: "costs",
        sql: include_str!("schema/0003_costs.sql"),
    },
    Migration {
        version: 4,
        name: "usage",
        sql: include_str!("schema/0004_usage.sql"),
    },
    Migration {
        version: 5,
        name: "store keys",
        sql: include_str!("schema/0005_store_keys.sql"),
    },
    Migration {
        version: 6,
        name: "freezes",
        sql: include_str!("schema/0006_freezes.sql"),
    },
    Migration {
        version: 7,
        name: "maintenance",
        sql: include_str!("schema/0007_maintenance.sql"),
    },
    Migration {
        version: 8,
        name: "alarm states",
        sql: include_str!("schema/0008_alarm_states.sql"),
    },
    Migration {
        version: 9,
        name: "rollout samples",
        sql: include_str!("schema/0009_rollout_samples.sql"),
    },
    Migration {
        version: 10,
        name: "events by rollout",
        sql: include_str!("schema/0010_events_by_rollout.sql"),
    },
    Migration {
        version: 11,
        name: "restore snapshots",
        sql: include_str!("schema/0011_restore_snapshots.sql"),
    },
    Migration {
        version: 12,
        name: "timeline indexes",
        sql: include_str!("schema/0012_timeline_indexes.sql"),
    },
];

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

/// Applies every pending migration, or none: the whole run is one IMMEDIATE transaction, which
/// takes the write lock before the applied versions are read.
pub(super) async fn migrate(store: &Store) -> Result<(), StoreError> {
    let mut transaction = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    sqlx::raw_sql(CREATE_LEDGER)
        .execute(&mut *transaction)
        .await?;
    let applied = applied_versions(&mut transaction).await?;
    let newest_known = MIGRATIONS.last().map_or(0, |migration| migration.version);
    if let Some(&newest_applied) = applied.last() {
        if newest_applied > newest_known {
            return Err(StoreError::SchemaTooNew {
                location: store.location.clone(),
                found: newest_applied,
                known: newest_known,
            });
        }
    }
    let mut applied_now = Vec::new();
    for migration in MIGRATIONS {
        if applied.contains(&migration.version) {
            continue;
        }
        apply_one(&mut transaction, migration).await?;
        applied_now.push(migration);
    }
    transaction.commit().await?;
    for migration in applied_now {
        tracing::info!(
            version = migration.version,
            name = migration.name,
            location = %store.location,
            "applied store migration"
        );
    }
    Ok(())
}

async fn apply_one(
    connection: &mut SqliteConnection,
    migration: &Migration,
) -> Result<(), StoreError> {
    let failed = |source| StoreError::Migration {
        version: migration.version,
        name: migration.name,
        source,
    };
    sqlx::raw_sql(migration.sql)
        .execute(&mut *connection)
        .await
        .map_err(failed)?;
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)")
        .bind(migration.version)
        .bind(migration.name)
        .bind(time_text(chrono::Utc::now()))
        .execute(&mut *connection)
        .await
        .map_err(failed)?;
    Ok(())
}

/// The schema versions applied, oldest first.
pub(super) async fn applied_versions(
    connection: &mut SqliteConnection,
) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *connection)
        .await?;
    rows.iter()
        .map(|row| row.try_get::<i64, _>("version").map_err(StoreError::from))
        .collect()
}
