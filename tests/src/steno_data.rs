//! Steno databases full of plausible data for drill tests and the drill benchmark: the schema is
//! made by the real `steno migrate`, then firms, users, matters, letters, two revisions per letter
//! and documents are generated in the database itself (a recursive CTE), so even a gigabyte is
//! written without round trips. Revision drafts are hex digests, which compress like real text
//! rather than like one repeated word.

use std::path::{Path, PathBuf};
use std::process::Command;

use sqlx::{Connection, Executor, PgConnection, SqliteConnection};

use crate::binary;

/// Which SQL dialect to generate for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Runs `steno migrate` against `database_url` (a `sqlite://` file or a `postgres://` database).
pub fn migrate_with_steno(database_url: &str, data_dir: &Path) {
    let output = Command::new(binary("steno"))
        .arg("migrate")
        .env("DATABASE_URL", database_url)
        .env("STENO_DATA_DIR", data_dir)
        .env("STENO_LOG", "warn")
        .output()
        .expect("steno migrate runs");
    assert!(
        output.status.success(),
        "steno migrate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The PostgreSQL server the suite runs against (`STENO_TEST_POSTGRES_URL`); panics with what to
/// do when it is not set, so a test needing it never passes without it.
pub fn postgres_admin_url() -> String {
    std::env::var("STENO_TEST_POSTGRES_URL").expect(
        "STENO_TEST_POSTGRES_URL must name a PostgreSQL server (scripts/test.sh starts one)",
    )
}

/// Drops the databases `names` on the server `admin_url` names (those that exist).
pub async fn drop_postgres_databases(admin_url: &str, names: &[String]) {
    let mut admin = PgConnection::connect(admin_url).await.unwrap();
    for name in names {
        admin
            .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
            .await
            .unwrap();
    }
    admin.close().await.unwrap();
}

/// Creates an empty PostgreSQL database next to the one `admin_url` names and returns its URL.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> String {
    let mut admin = PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {admin_url}: {error}"));
    admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await
        .unwrap();
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await
        .unwrap();
    admin.close().await.unwrap();
    let mut url = reqwest::Url::parse(admin_url).expect("a postgres:// URL");
    url.set_path(&format!("/{name}"));
    url.to_string()
}

/// Names of the databases on the server `admin_url` names.
pub async fn postgres_databases(admin_url: &str) -> Vec<String> {
    let mut admin = PgConnection::connect(admin_url).await.unwrap();
    let names: Vec<String> = sqlx::query_scalar("SELECT datname::text FROM pg_database")
        .fetch_all(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    names
}

/// The statements that add `letters` letters (numbered after `first_letter - 1`) with their
/// matters, two revisions each of about `revision_bytes` bytes, and one document each; firms and
/// users are made when `first_letter` is 1.
pub fn generation_sql(
    engine: Engine,
    firms: u64,
    first_letter: u64,
    letters: u64,
    revision_bytes: u64,
) -> Vec<String> {
    let last = first_letter + letters - 1;
    let digests = (revision_bytes / 33).max(1);
    // One row of hex digests about revision_bytes long, different for every row.
    let filler = match engine {
        Engine::Postgres => format!(
            "(SELECT string_agg(md5((n * {digests} + i)::text), ' ') FROM generate_series(1, {digests}) AS i)"
        ),
        Engine::Sqlite => format!("hex(randomblob({}))", (revision_bytes / 2).max(1)),
    };
    let seq = |from: u64, to: u64| {
        format!("WITH RECURSIVE seq(n) AS (SELECT {from} UNION ALL SELECT n + 1 FROM seq WHERE n < {to})")
    };
    let firm_of = format!("'firm-' || ((n % {firms}) + 1)");
    let user_of = format!("'user-' || ((n % {firms}) + 1)");
    let at = "'2026-11-01T09:00:00Z'";
    let mut statements = Vec::new();
    if first_letter == 1 {
        statements.push(format!(
            "{} INSERT INTO firms (id, name, address, created_at) \
             SELECT 'firm-' || n, 'Firm ' || n, n || ' Main Street', {at} FROM seq",
            seq(1, firms)
        ));
        statements.push(format!(
            "{} INSERT INTO users (id, firm_id, email, name, password_hash, role, created_at) \
             SELECT 'user-' || n, 'firm-' || n, 'lawyer' || n || '@firm.test', 'Lawyer ' || n, \
             'not-a-real-hash', 'admin', {at} FROM seq",
            seq(1, firms)
        ));
    }
    statements.push(format!(
        "{} INSERT INTO matters (id, firm_id, title, facts_json, created_by, created_at) \
         SELECT 'matter-' || n, {firm_of}, 'Matter ' || n, '{{\"injury\":\"whiplash\"}}', {user_of}, {at} FROM seq",
        seq(first_letter, last)
    ));
    statements.push(format!(
        "{} INSERT INTO documents (id, firm_id, filename, kind, content_type, size_bytes, sha256, \
         storage_key, extracted_text, uploaded_by, created_at) \
         SELECT 'doc-' || n, {firm_of}, 'records-' || n || '.pdf', 'medical_record', \
         'application/pdf', 1000 + n, 'sha-' || n, 'key-' || n, 'Patient seen on day ' || n, {user_of}, {at} FROM seq",
        seq(first_letter, last)
    ));
    statements.push(format!(
        "{} INSERT INTO matter_documents (matter_id, document_id, position) \
         SELECT 'matter-' || n, 'doc-' || n, 0 FROM seq",
        seq(first_letter, last)
    ));
    statements.push(format!(
        "{} INSERT INTO letters (id, firm_id, matter_id, current_revision, created_by, created_at, updated_at) \
         SELECT 'letter-' || n, {firm_of}, 'matter-' || n, 2, {user_of}, {at}, {at} FROM seq",
        seq(first_letter, last)
    ));
    for revision in [1, 2] {
        statements.push(format!(
            "{} INSERT INTO letter_revisions (letter_id, revision, firm_id, draft_json, instruction, \
             engine, input_tokens, output_tokens, created_by, created_at) \
             SELECT 'letter-' || n, {revision}, {firm_of}, {filler}, NULL, 'offline', 1200, 800, {user_of}, {at} FROM seq",
            seq(first_letter, last)
        ));
    }
    statements
}

/// A Steno SQLite database at `dir/steno-data/steno.db`, migrated by Steno itself and filled
/// with `letters` letters of `firms` firms (revisions of `revision_bytes`); returns its path.
pub fn new_steno_sqlite(dir: &Path, firms: u64, letters: u64, revision_bytes: u64) -> PathBuf {
    let steno_dir = dir.join("steno-data");
    std::fs::create_dir_all(&steno_dir).unwrap();
    let database_path = steno_dir.join("steno.db");
    migrate_with_steno(&format!("sqlite://{}", database_path.display()), &steno_dir);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(fill_sqlite(
            &database_path,
            firms,
            1,
            letters,
            revision_bytes,
        ));
    database_path
}

/// Adds letters to a Steno SQLite database file.
pub async fn fill_sqlite(
    path: &Path,
    firms: u64,
    first_letter: u64,
    letters: u64,
    revision_bytes: u64,
) {
    let mut connection = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    for statement in generation_sql(Engine::Sqlite, firms, first_letter, letters, revision_bytes) {
        connection
            .execute(statement.as_str())
            .await
            .unwrap_or_else(|error| panic!("{error}: {statement}"));
    }
    connection.close().await.unwrap();
}

/// Adds letters to a Steno PostgreSQL database.
pub async fn fill_postgres(
    url: &str,
    firms: u64,
    first_letter: u64,
    letters: u64,
    revision_bytes: u64,
) {
    let mut connection = PgConnection::connect(url).await.unwrap();
    for statement in generation_sql(
        Engine::Postgres,
        firms,
        first_letter,
        letters,
        revision_bytes,
    ) {
        connection
            .execute(statement.as_str())
            .await
            .unwrap_or_else(|error| panic!("{error}: {statement}"));
    }
    connection.execute("ANALYZE").await.unwrap();
    connection.close().await.unwrap();
}

/// Size of a PostgreSQL database in bytes.
pub async fn postgres_database_size(url: &str) -> u64 {
    let mut connection = PgConnection::connect(url).await.unwrap();
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    size.max(0) as u64
}
