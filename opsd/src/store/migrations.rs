//! The store's versioned schema migrations, one list per engine, applied at open inside one
//! write transaction ([`Store::begin_write`]) so that two opsd processes opening the same store
//! never apply one twice.

use sqlx::{AnyConnection, Row};

use super::{time_text, Backend, Store, StoreError};

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
    Migration {
        version: 13,
        name: "leader lease",
        sql: include_str!("schema/0013_leader_lease.sql"),
    },
    Migration {
        version: 14,
        name: "dashboard sessions",
        sql: include_str!("schema/0014_dashboard_sessions.sql"),
    },
];

/// PostgreSQL's migrations. Its version 1 is the schema SQLite reaches at version 12 (with the
/// JSON functions SQLite has built in that the statements use); later changes are appended to
/// both lists. Append only; never edit a released one.
pub const POSTGRES_MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        sql: include_str!("schema/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "leader lease",
        sql: include_str!("schema/postgres/0002_leader_lease.sql"),
    },
    Migration {
        version: 3,
        name: "dashboard sessions",
        sql: include_str!("schema/postgres/0003_dashboard_sessions.sql"),
    },
];

/// The migrations of `backend`, oldest first.
pub fn migrations_of(backend: Backend) -> &'static [Migration] {
    match backend {
        Backend::Sqlite => MIGRATIONS,
        Backend::Postgres => POSTGRES_MIGRATIONS,
    }
}

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY NOT NULL, name TEXT NOT NULL, applied_at TEXT NOT NULL)";

/// Applies every pending migration, or none: the whole run is one write transaction, which
/// takes the write lock before the applied versions are read.
pub(super) async fn migrate(store: &Store) -> Result<(), StoreError> {
    let mut transaction = store.begin_write().await?;
    sqlx::raw_sql(CREATE_LEDGER)
        .execute(&mut *transaction)
        .await?;
    let applied = applied_versions(&mut transaction).await?;
    let known = migrations_of(store.backend);
    let newest_known = known.last().map_or(0, |migration| migration.version);
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
    for migration in known {
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
    connection: &mut AnyConnection,
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
    sqlx::query("INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
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
    connection: &mut AnyConnection,
) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *connection)
        .await?;
    rows.iter()
        .map(|row| row.try_get::<i64, _>("version").map_err(StoreError::from))
        .collect()
}
