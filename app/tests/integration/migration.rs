//! Schema version 2 on a database written by version 1: rows and foreign keys survive the users
//! table's change from globally unique emails to emails unique per firm, on both engines. And an
//! older build on a newer database: it runs when every migration it does not know is `expand`,
//! and refuses, naming it, one that is `contract` or has no recorded class. And the expand/contract
//! sequence a deployment runs: a new build applies only its expand migrations beside the old one,
//! serves with its contract migration pending, and applies it once asked for everything.

use sqlx::{AnyConnection, Connection};
use steno::db::{
    applied_versions, Backend, Database, MigrationOptions, MigrationScope, RehearsalMigrations,
};

use crate::support::fresh_postgres_database;

const SQLITE_V1: &str = include_str!("../../migrations/sqlite/0001_initial.sql");
const POSTGRES_V1: &str = include_str!("../../migrations/postgres/0001_initial.sql");

const V1_ROWS: &[&str] = &[
    "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    "INSERT INTO schema_migrations VALUES (1, 'initial', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO firms (id, name, address, created_at) VALUES ('firm-1', 'One', '', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO firms (id, name, address, created_at) VALUES ('firm-2', 'Two', '', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO users (id, firm_id, email, name, password_hash, role, created_at) VALUES ('user-1', 'firm-1', 'a@x.test', 'A', 'h', 'admin', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO invitations (id, firm_id, email, role, token_hash, invited_by, created_at, expires_at) VALUES ('inv-1', 'firm-1', 'b@x.test', 'member', 't', 'user-1', '2026-01-01T00:00:00.000Z', '2026-01-08T00:00:00.000Z')",
    "INSERT INTO documents (id, firm_id, filename, kind, content_type, size_bytes, sha256, storage_key, extracted_text, uploaded_by, created_at) VALUES ('doc-1', 'firm-1', 'f.txt', 'other', 'text/plain', 1, 's', 'k', 't', 'user-1', '2026-01-01T00:00:00.000Z')",
];

async fn write_version_one(url: &str, schema: &str) {
    sqlx::any::install_default_drivers();
    let mut connection = AnyConnection::connect(url).await.unwrap();
    sqlx::raw_sql(schema)
        .execute(&mut connection)
        .await
        .unwrap();
    for statement in V1_ROWS {
        sqlx::raw_sql(statement)
            .execute(&mut connection)
            .await
            .unwrap();
    }
    connection.close().await.unwrap();
}

async fn count(database: &Database, sql: &str) -> i64 {
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(database.pool())
        .await
        .unwrap()
}

async fn insert_user(database: &Database, id: &str, firm: &str, email: &str) -> bool {
    sqlx::query(
        "INSERT INTO users (id, firm_id, email, name, password_hash, role, created_at) \
         VALUES ($1, $2, $3, 'N', 'h', 'member', '2026-01-02T00:00:00.000Z')",
    )
    .bind(id)
    .bind(firm)
    .bind(email)
    .execute(database.pool())
    .await
    .is_ok()
}

async fn upgrade_keeps_everything(url: String, schema: &str) {
    write_version_one(&url, schema).await;
    let database = Database::connect(&url)
        .await
        .expect("migrates to version 2");
    assert_eq!(applied_versions(&database).await.unwrap(), vec![1, 2]);
    assert_eq!(
        count(
            &database,
            "SELECT COUNT(*) FROM schema_migrations WHERE class = 'expand'"
        )
        .await,
        2,
        "a ledger written before classes gets them"
    );
    assert_eq!(count(&database, "SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(
        count(&database, "SELECT COUNT(*) FROM invitations").await,
        1
    );
    assert_eq!(count(&database, "SELECT COUNT(*) FROM documents").await, 1);
    assert_eq!(
        count(
            &database,
            "SELECT COUNT(*) FROM users WHERE email = 'a@x.test' AND password_hash = 'h'"
        )
        .await,
        1
    );
    assert!(
        insert_user(&database, "user-2", "firm-2", "a@x.test").await,
        "the same email in another firm"
    );
    assert!(
        !insert_user(&database, "user-3", "firm-1", "a@x.test").await,
        "never twice in one firm"
    );
    assert!(
        !insert_user(&database, "user-4", "no-such-firm", "c@x.test").await,
        "foreign keys are enforced again after the migration"
    );
    if database.backend() == Backend::Sqlite {
        let violations = count(&database, "SELECT COUNT(*) FROM pragma_foreign_key_check").await;
        assert_eq!(violations, 0);
    }
    database.close().await;
    // A second start finds nothing to do.
    let again = Database::connect(&url).await.unwrap();
    assert_eq!(applied_versions(&again).await.unwrap(), vec![1, 2]);
    again.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_one_sqlite_databases_upgrade() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("steno.db").display()
    );
    upgrade_keeps_everything(url, SQLITE_V1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_one_postgres_databases_upgrade() {
    upgrade_keeps_everything(fresh_postgres_database().await, POSTGRES_V1).await;
}

/// Records a migration of a newer build in the ledger, after running its change.
async fn newer_build_applied(
    database: &Database,
    change: &str,
    version: i64,
    name: &str,
    class: Option<&str>,
) {
    sqlx::raw_sql(change)
        .execute(database.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO schema_migrations (version, name, applied_at, class) \
         VALUES ($1, $2, '2026-12-04T00:00:00.000Z', $3)",
    )
    .bind(version)
    .bind(name)
    .bind(class)
    .execute(database.pool())
    .await
    .unwrap();
}

async fn older_build_on_a_newer_schema(url: String) {
    let database = Database::connect(&url)
        .await
        .expect("a new database migrates");
    newer_build_applied(
        &database,
        "ALTER TABLE firms ADD COLUMN motto TEXT",
        1000,
        "firm_motto",
        Some("expand"),
    )
    .await;
    database.close().await;

    let restarted = Database::connect(&url)
        .await
        .expect("an older build runs on a schema newer only by expand migrations");
    sqlx::query(
        "INSERT INTO firms (id, name, address, created_at) \
         VALUES ('firm-9', 'Nine', '', '2026-12-04T00:00:00.000Z')",
    )
    .execute(restarted.pool())
    .await
    .expect("and writes to it");
    assert_eq!(count(&restarted, "SELECT COUNT(*) FROM firms").await, 1);

    newer_build_applied(
        &restarted,
        "SELECT 1",
        1001,
        "drop_firm_address",
        Some("contract"),
    )
    .await;
    newer_build_applied(&restarted, "SELECT 1", 1002, "unlabelled", None).await;
    restarted.close().await;
    let refused = Database::connect(&url)
        .await
        .expect_err("a contract migration it does not know stops an older build");
    let message = refused.to_string();
    assert!(
        message.contains("migration 1001 (drop_firm_address, contract)")
            && message.contains("migration 1002 (unlabelled, no class recorded)")
            && !message.contains("firm_motto"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_sqlite_build_runs_on_expand_migrations_and_refuses_contract_ones() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("steno.db").display()
    );
    older_build_on_a_newer_schema(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_postgres_build_runs_on_expand_migrations_and_refuses_contract_ones() {
    older_build_on_a_newer_schema(fresh_postgres_database().await).await;
}

/// The stable build (no rehearsal migrations), the new build (rehearsal expand + contract) started
/// with `--migrate expand`, then the new build's `migrate --class all` once the old one is gone.
async fn expand_then_contract(url: String) {
    let stable = MigrationOptions::default();
    let new_beside_old = MigrationOptions {
        rehearsal: RehearsalMigrations::Contract,
        scope: MigrationScope::Expand,
    };
    let new_alone = MigrationOptions {
        rehearsal: RehearsalMigrations::Contract,
        scope: MigrationScope::All,
    };
    Database::connect_with(&url, stable)
        .await
        .unwrap()
        .close()
        .await;

    let canary = Database::connect_with(&url, new_beside_old)
        .await
        .expect("the new build starts with its contract migration pending");
    assert_eq!(
        applied_versions(&canary).await.unwrap(),
        vec![1, 2, 9001],
        "only the expand migration is applied"
    );
    sqlx::query("INSERT INTO rehearsal_notes (note) VALUES ('written by the new build')")
        .execute(canary.pool())
        .await
        .expect("the expand migration's table exists");
    canary.close().await;

    let old = Database::connect_with(&url, stable)
        .await
        .expect("the old build still starts (a restart after a rollback)");
    old.close().await;
    let canary_again = Database::connect_with(&url, new_beside_old)
        .await
        .expect("starting again beside the old build changes nothing");
    assert_eq!(
        applied_versions(&canary_again).await.unwrap(),
        vec![1, 2, 9001]
    );
    canary_again.close().await;

    let promoted = Database::connect_with(&url, new_alone)
        .await
        .expect("the contract migration applies once asked for");
    assert_eq!(
        applied_versions(&promoted).await.unwrap(),
        vec![1, 2, 9001, 9002]
    );
    promoted.close().await;
    let refused = Database::connect_with(&url, stable)
        .await
        .expect_err("the old build must not run after the contract migration");
    assert!(
        refused
            .to_string()
            .contains("migration 9002 (rehearsal_contract, contract)"),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_release_applies_expand_migrations_beside_the_old_one_and_contract_ones_later() {
    let directory = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        directory.path().join("steno.db").display()
    );
    expand_then_contract(url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_release_applies_expand_migrations_beside_the_old_one_and_contract_ones_later() {
    expand_then_contract(fresh_postgres_database().await).await;
}
