//! Versioned schema migrations for both backends, applied at start under a lock so that two Steno
//! releases starting together (stable and canary) never apply the same migration twice.
//!
//! The ledger (`schema_migrations`) records each applied migration's class. A build finding
//! migrations it does not know runs on when every one of them is `expand` (backward compatible)
//! and refuses, naming them, when one is `contract` or of no recorded class: so after a canary's
//! expand migration is rolled back, the previous release still starts.
//!
//! What runs at start is chosen by [`MigrationScope`]: everything pending (the default), or only
//! the pending migrations before the first `contract` one, so a deployment tool can start a new
//! release beside an older one and run its contract migrations once the older one is gone. A
//! build may also carry the two rehearsal migrations ([`RehearsalMigrations`], from
//! `STENO_CHAOS_MIGRATIONS`) so such rollouts can be rehearsed with one binary.

use sqlx::pool::PoolConnection;
use sqlx::{Any, Row};

use super::{now_text, Backend, Database, DbError};

/// What a migration does to releases already running on the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationClass {
    /// Backward compatible: new tables, nullable columns, new indexes, looser constraints. An
    /// older binary keeps reading and writing the database after it.
    Expand,
    /// Not backward compatible: drops, renames, NOT NULL on existing data. An older binary
    /// must not run after it.
    Contract,
}

impl MigrationClass {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationClass::Expand => "expand",
            MigrationClass::Contract => "contract",
        }
    }
}

/// One schema version: the same change written for each backend.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub class: MigrationClass,
    sqlite: &'static str,
    postgres: &'static str,
}

/// The rehearsal migrations a build carries on top of [`MIGRATIONS`]
/// (`STENO_CHAOS_MIGRATIONS`): none, the expand one (version 9001 adds a table), or both (version
/// 9002, contract, drops that table again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RehearsalMigrations {
    #[default]
    None,
    Expand,
    Contract,
}

impl RehearsalMigrations {
    /// Parses `STENO_CHAOS_MIGRATIONS`: `none`, `expand` or `contract` (which includes `expand`).
    pub fn parse(value: &str) -> Result<RehearsalMigrations, String> {
        match value.trim() {
            "" | "none" => Ok(RehearsalMigrations::None),
            "expand" => Ok(RehearsalMigrations::Expand),
            "contract" => Ok(RehearsalMigrations::Contract),
            _ => Err(
                "must be none, expand (adds rehearsal migration 9001) or contract \
                 (adds 9001 and the contract migration 9002)"
                    .to_string(),
            ),
        }
    }
}

/// Which pending migrations a start or `steno migrate` applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MigrationScope {
    /// Every pending migration.
    #[default]
    All,
    /// The pending migrations before the first pending `contract` one; the build then runs with
    /// its contract migrations pending (it must not need them: that is what makes them contract).
    Expand,
}

impl MigrationScope {
    /// Parses `all` or `expand` (`--migrate`, `STENO_MIGRATE_ON_START`, `migrate --class`).
    pub fn parse(value: &str) -> Result<MigrationScope, String> {
        match value.trim() {
            "all" => Ok(MigrationScope::All),
            "expand" => Ok(MigrationScope::Expand),
            _ => Err(
                "must be all (every pending migration) or expand (stop before the first \
                 contract migration)"
                    .to_string(),
            ),
        }
    }
}

/// How a connection treats the schema: which migrations the build knows and which it applies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MigrationOptions {
    pub rehearsal: RehearsalMigrations,
    pub scope: MigrationScope,
}

/// One migration as `steno migrations --json` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrationNeed {
    pub version: i64,
    pub name: &'static str,
    pub class: MigrationClass,
}

/// The schema this build needs: every migration it knows, in order, with its class (what a
/// deployment tool reads before it starts this release next to an older one).
pub fn schema_needs(rehearsal: RehearsalMigrations) -> Vec<MigrationNeed> {
    known_migrations(rehearsal)
        .into_iter()
        .map(|migration| MigrationNeed {
            version: migration.version,
            name: migration.name,
            class: migration.class,
        })
        .collect()
}

/// Every migration this build knows, in order. Append only; never edit a released one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        class: MigrationClass::Expand,
        sqlite: include_str!("../../migrations/sqlite/0001_initial.sql"),
        postgres: include_str!("../../migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "account_security",
        // Loosens users' unique email to unique per firm (same columns) and adds a table.
        class: MigrationClass::Expand,
        sqlite: include_str!("../../migrations/sqlite/0002_account_security.sql"),
        postgres: include_str!("../../migrations/postgres/0002_account_security.sql"),
    },
];

/// Migrations that exist only to rehearse expand/contract rollouts; never part of a real schema
/// unless `STENO_CHAOS_MIGRATIONS` asks for them.
const REHEARSAL_EXPAND: Migration = Migration {
    version: 9001,
    name: "rehearsal_expand",
    class: MigrationClass::Expand,
    sqlite: "CREATE TABLE rehearsal_notes (id INTEGER PRIMARY KEY, note TEXT)",
    postgres: "CREATE TABLE rehearsal_notes (id BIGSERIAL PRIMARY KEY, note TEXT)",
};
const REHEARSAL_CONTRACT: Migration = Migration {
    version: 9002,
    name: "rehearsal_contract",
    class: MigrationClass::Contract,
    sqlite: "DROP TABLE IF EXISTS rehearsal_notes",
    postgres: "DROP TABLE IF EXISTS rehearsal_notes",
};

/// Every migration a build with these rehearsal migrations knows, in order.
fn known_migrations(rehearsal: RehearsalMigrations) -> Vec<&'static Migration> {
    let mut known: Vec<&'static Migration> = MIGRATIONS.iter().collect();
    match rehearsal {
        RehearsalMigrations::None => {}
        RehearsalMigrations::Expand => known.push(&REHEARSAL_EXPAND),
        RehearsalMigrations::Contract => known.extend([&REHEARSAL_EXPAND, &REHEARSAL_CONTRACT]),
    }
    known
}

/// An arbitrary constant naming Steno's advisory lock on PostgreSQL.
const POSTGRES_MIGRATION_LOCK: i64 = 0x5374_656e_6f01;

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL, class TEXT)";

/// Whether the ledger has its `class` column (ledgers written before classes had none).
const LEDGER_HAS_CLASS_SQLITE: &str =
    "SELECT COUNT(*) FROM pragma_table_info('schema_migrations') WHERE name = 'class'";
const LEDGER_HAS_CLASS_POSTGRES: &str = "SELECT COUNT(*) FROM information_schema.columns \
     WHERE table_schema = current_schema() AND table_name = 'schema_migrations' \
     AND column_name = 'class'";

/// Applies the pending migrations `options` choose.
pub(super) async fn migrate(database: &Database, options: MigrationOptions) -> Result<(), DbError> {
    let mut connection = database.pool().acquire().await?;
    match database.backend() {
        Backend::Sqlite => migrate_sqlite(&mut connection, options).await,
        Backend::Postgres => migrate_postgres(&mut connection, options).await,
    }
}

/// SQLite: one IMMEDIATE transaction holds the write lock while versions are read and applied.
/// Foreign-key enforcement is off around it (SQLite ignores that switch inside a transaction),
/// so a migration may rebuild a table others reference; every foreign key is checked before the
/// commit, and a violation rolls the whole migration back.
async fn migrate_sqlite(
    connection: &mut PoolConnection<Any>,
    options: MigrationOptions,
) -> Result<(), DbError> {
    sqlx::raw_sql("PRAGMA foreign_keys = OFF")
        .execute(&mut **connection)
        .await?;
    let outcome = migrate_sqlite_in_transaction(connection, options).await;
    let restored = sqlx::raw_sql("PRAGMA foreign_keys = ON")
        .execute(&mut **connection)
        .await;
    outcome?;
    restored?;
    Ok(())
}

async fn migrate_sqlite_in_transaction(
    connection: &mut PoolConnection<Any>,
    options: MigrationOptions,
) -> Result<(), DbError> {
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut **connection)
        .await?;
    let mut outcome = apply_pending(connection, Backend::Sqlite, options).await;
    if outcome.is_ok() {
        outcome = check_sqlite_foreign_keys(connection).await;
    }
    let finish = if outcome.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    sqlx::raw_sql(finish).execute(&mut **connection).await?;
    outcome
}

async fn check_sqlite_foreign_keys(connection: &mut PoolConnection<Any>) -> Result<(), DbError> {
    let violations = sqlx::query("SELECT \"table\", parent FROM pragma_foreign_key_check")
        .fetch_all(&mut **connection)
        .await?;
    match violations.first() {
        None => Ok(()),
        Some(row) => {
            let table: String = row.try_get(0)?;
            let parent: String = row.try_get(1)?;
            Err(DbError::Corrupt(format!(
                "after migrating, {} rows break foreign keys (first: {table} → {parent}); nothing was changed",
                violations.len()
            )))
        }
    }
}

/// PostgreSQL: a session advisory lock serialises migrators; each migration is its own transaction.
async fn migrate_postgres(
    connection: &mut PoolConnection<Any>,
    options: MigrationOptions,
) -> Result<(), DbError> {
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(POSTGRES_MIGRATION_LOCK)
        .execute(&mut **connection)
        .await?;
    let outcome = apply_pending(connection, Backend::Postgres, options).await;
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(POSTGRES_MIGRATION_LOCK)
        .execute(&mut **connection)
        .await?;
    outcome
}

async fn apply_pending(
    connection: &mut PoolConnection<Any>,
    backend: Backend,
    options: MigrationOptions,
) -> Result<(), DbError> {
    let known = known_migrations(options.rehearsal);
    prepare_ledger(connection, backend, &known).await?;
    let ledger = ledger_rows(connection).await?;
    refuse_unknown_contracts(&ledger, &known)?;
    let applied: Vec<i64> = ledger.iter().map(|row| row.version).collect();
    for migration in known {
        if applied.contains(&migration.version) {
            continue;
        }
        if options.scope == MigrationScope::Expand && migration.class == MigrationClass::Contract {
            tracing::info!(
                version = migration.version,
                name = migration.name,
                "contract migration left pending (only expand migrations are applied at this start)"
            );
            break;
        }
        let sql = match backend {
            Backend::Sqlite => migration.sqlite,
            Backend::Postgres => migration.postgres,
        };
        let wrap_in_transaction = backend == Backend::Postgres;
        if wrap_in_transaction {
            sqlx::raw_sql("BEGIN").execute(&mut **connection).await?;
        }
        let result = apply_one(connection, migration, sql).await;
        if wrap_in_transaction {
            let finish = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
            sqlx::raw_sql(finish).execute(&mut **connection).await?;
        }
        result?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "applied migration"
        );
    }
    Ok(())
}

/// Creates the ledger, gives an older one its `class` column, and records the class of every
/// applied migration this build knows that has none yet.
async fn prepare_ledger(
    connection: &mut PoolConnection<Any>,
    backend: Backend,
    known: &[&'static Migration],
) -> Result<(), DbError> {
    sqlx::raw_sql(CREATE_LEDGER)
        .execute(&mut **connection)
        .await?;
    let has_class = match backend {
        Backend::Sqlite => LEDGER_HAS_CLASS_SQLITE,
        Backend::Postgres => LEDGER_HAS_CLASS_POSTGRES,
    };
    let columns: i64 = sqlx::query(has_class)
        .fetch_one(&mut **connection)
        .await?
        .try_get(0)?;
    if columns == 0 {
        sqlx::raw_sql("ALTER TABLE schema_migrations ADD COLUMN class TEXT")
            .execute(&mut **connection)
            .await?;
    }
    for migration in known {
        sqlx::query("UPDATE schema_migrations SET class = $1 WHERE version = $2 AND class IS NULL")
            .bind(migration.class.as_str())
            .bind(migration.version)
            .execute(&mut **connection)
            .await?;
    }
    Ok(())
}

/// One row of the ledger.
struct LedgerRow {
    version: i64,
    name: String,
    class: Option<String>,
}

async fn ledger_rows(connection: &mut PoolConnection<Any>) -> Result<Vec<LedgerRow>, DbError> {
    let rows = sqlx::query("SELECT version, name, class FROM schema_migrations ORDER BY version")
        .fetch_all(&mut **connection)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(LedgerRow {
                version: row.try_get(0)?,
                name: row.try_get(1)?,
                class: row.try_get(2)?,
            })
        })
        .collect()
}

/// Fails when the database has a migration this build does not know that is not `expand`.
fn refuse_unknown_contracts(
    ledger: &[LedgerRow],
    known_migrations: &[&'static Migration],
) -> Result<(), DbError> {
    let known = |version: i64| known_migrations.iter().any(|m| m.version == version);
    let mut unknown_expand = Vec::new();
    let mut blocking = Vec::new();
    for row in ledger.iter().filter(|row| !known(row.version)) {
        match row.class.as_deref() {
            Some("expand") => unknown_expand.push(row.version),
            other => blocking.push(format!(
                "migration {} ({}, {})",
                row.version,
                row.name,
                other.unwrap_or("no class recorded")
            )),
        }
    }
    let newest_known = known_migrations.last().map(|m| m.version).unwrap_or(0);
    if !blocking.is_empty() {
        return Err(DbError::SchemaTooNew {
            found: ledger.last().map(|row| row.version).unwrap_or(0),
            known: newest_known,
            unknown: blocking.join(", "),
        });
    }
    if !unknown_expand.is_empty() {
        tracing::warn!(
            newer_expand_migrations = ?unknown_expand,
            known = newest_known,
            "the database has expand migrations this build does not know; running on it (they are backward compatible)"
        );
    }
    Ok(())
}

async fn apply_one(
    connection: &mut PoolConnection<Any>,
    migration: &Migration,
    sql: &str,
) -> Result<(), DbError> {
    let wrap = |source| DbError::Migration {
        version: migration.version,
        name: migration.name,
        source,
    };
    sqlx::raw_sql(sql)
        .execute(&mut **connection)
        .await
        .map_err(wrap)?;
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, applied_at, class) VALUES ($1, $2, $3, $4)",
    )
    .bind(migration.version)
    .bind(migration.name)
    .bind(now_text())
    .bind(migration.class.as_str())
    .execute(&mut **connection)
    .await
    .map_err(wrap)?;
    Ok(())
}

async fn versions_on(connection: &mut PoolConnection<Any>) -> Result<Vec<i64>, DbError> {
    let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut **connection)
        .await?;
    rows.iter()
        .map(|row| row.try_get::<i64, _>(0).map_err(DbError::from))
        .collect()
}

/// The schema versions applied to a database, oldest first.
pub async fn applied_versions(database: &Database) -> Result<Vec<i64>, DbError> {
    let mut connection = database.pool().acquire().await?;
    versions_on(&mut connection).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_is_listed_in_order_with_its_class() {
        let needs = schema_needs(RehearsalMigrations::None);
        let versions: Vec<i64> = needs.iter().map(|need| need.version).collect();
        let expected: Vec<i64> = (1..=MIGRATIONS.len() as i64).collect();
        assert_eq!(versions, expected, "versions are 1, 2, ... with no gap");
        let json = serde_json::to_value(&needs).unwrap();
        assert_eq!(
            json[1],
            serde_json::json!({"version": 2, "name": "account_security", "class": "expand"})
        );
        assert_eq!(MigrationClass::Contract.as_str(), "contract");
    }

    #[test]
    fn rehearsal_migrations_come_after_the_real_ones_expand_before_contract() {
        let classes = |rehearsal| {
            schema_needs(rehearsal)
                .into_iter()
                .skip(MIGRATIONS.len())
                .map(|need| (need.version, need.class))
                .collect::<Vec<_>>()
        };
        assert_eq!(classes(RehearsalMigrations::None), vec![]);
        assert_eq!(
            classes(RehearsalMigrations::Expand),
            vec![(9001, MigrationClass::Expand)]
        );
        assert_eq!(
            classes(RehearsalMigrations::Contract),
            vec![
                (9001, MigrationClass::Expand),
                (9002, MigrationClass::Contract)
            ]
        );
        assert_eq!(
            RehearsalMigrations::parse(" contract"),
            Ok(RehearsalMigrations::Contract)
        );
        assert!(RehearsalMigrations::parse("drop")
            .unwrap_err()
            .contains("none, expand"));
        assert_eq!(MigrationScope::parse("expand"), Ok(MigrationScope::Expand));
        assert!(MigrationScope::parse("some").is_err());
    }
}
