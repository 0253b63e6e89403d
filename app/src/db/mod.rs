//! The database: one connection pool over SQLite (default) or PostgreSQL, chosen by URL, plus migrations.
//!
//! Queries are written once with `$N` placeholders and only the column types both backends share
//! (TEXT, BIGINT, blobs), and run through sqlx's `Any` driver. Every query binds its values;
//! no SQL is ever built from user input.

pub mod documents;
pub mod firms;
pub mod letters;
pub mod login_failures;
pub mod matters;
mod migrations;
mod private_files;
pub mod sessions;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use migrations::{
    applied_versions, schema_needs, MigrationClass, MigrationNeed, MigrationOptions,
    MigrationScope, RehearsalMigrations, MIGRATIONS,
};

/// Which database server the pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Errors of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("DATABASE_URL {url:?} is not supported: use sqlite://PATH or postgres://USER@HOST/DB")]
    UnsupportedUrl { url: String },
    #[error(
        "could not prepare {path} for the SQLite database (directory 0700, files 0600): {source}"
    )]
    CreateDirectory {
        path: String,
        source: std::io::Error,
    },
    #[error("could not connect to the {backend} database: {source}")]
    Connect {
        backend: &'static str,
        source: sqlx::Error,
    },
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: i64,
        name: &'static str,
        source: sqlx::Error,
    },
    #[error("the database is at schema version {found}, newer than this build knows ({known}), and {unknown} cannot be run on by an older release; deploy a newer Steno")]
    SchemaTooNew {
        found: i64,
        known: i64,
        /// The migrations this build does not know that are not `expand`, e.g.
        /// `migration 3 (drop_x, contract)`.
        unknown: String,
    },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("the record was changed by someone else at the same time; reload and try again")]
    Conflict,
    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// A pool of connections plus the backend it speaks to.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
}

impl Database {
    /// Connects to `url` (`sqlite://path` or `postgres://...`) and applies pending migrations.
    pub async fn connect(url: &str) -> Result<Database, DbError> {
        Database::connect_with(url, MigrationOptions::default()).await
    }

    /// Connects and applies the pending migrations `options` choose.
    pub async fn connect_with(url: &str, options: MigrationOptions) -> Result<Database, DbError> {
        let database = Database::connect_without_migrating(url).await?;
        migrations::migrate(&database, options).await?;
        Ok(database)
    }

    /// Connects without touching the schema (used by tools that only read).
    pub async fn connect_without_migrating(url: &str) -> Result<Database, DbError> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url)?;
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|source| DbError::Connect {
                backend: backend.name(),
                source,
            })?
            .disable_statement_logging();
        let max_connections = match backend {
            Backend::Sqlite => 8,
            Backend::Postgres => 16,
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        connection
                            .execute(
                                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; \
                                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| DbError::Connect {
                backend: backend.name(),
                source,
            })?;
        Ok(Database { pool, backend })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip used by the health endpoint.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection (on shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn backend_of(url: &str) -> Result<Backend, DbError> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else {
        Err(DbError::UnsupportedUrl {
            url: url.to_string(),
        })
    }
}

/// Makes sure the SQLite file's directory exists (created 0700) and that the file exists with
/// mode 0600, before SQLite opens it: SQLite gives its `-wal` and `-shm` files the database
/// file's permissions, so all three stay private to Steno's user whatever the umask. An existing
/// database file readable by others (from an older release) is tightened to 0600 too.
fn prepare_sqlite_url(url: &str) -> Result<String, DbError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = match rest.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (rest, None),
    };
    let read_only = query.is_some_and(|query| query.contains("mode=ro"));
    if path != ":memory:" && !path.is_empty() && !read_only {
        if let Some(parent) = Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                private_files::create_private_dir_all(parent).map_err(|source| {
                    DbError::CreateDirectory {
                        path: parent.display().to_string(),
                        source,
                    }
                })?;
            }
        }
        private_files::make_database_files_private(Path::new(path)).map_err(|source| {
            DbError::CreateDirectory {
                path: path.to_string(),
                source,
            }
        })?;
    }
    let query = match query {
        Some(query) if query.contains("mode=") => query.to_string(),
        Some(query) => format!("{query}&mode=rwc"),
        None => "mode=rwc".to_string(),
    };
    Ok(format!("sqlite://{path}?{query}"))
}

/// The current time as stored in the database: RFC 3339, UTC, milliseconds.
pub fn now_text() -> String {
    time_text(chrono::Utc::now())
}

/// Formats a time the way the database stores it.
pub fn time_text(time: chrono::DateTime<chrono::Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A fresh random identifier.
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_choose_the_backend() {
        assert_eq!(backend_of("sqlite://a.db").unwrap(), Backend::Sqlite);
        assert_eq!(backend_of("sqlite::memory:").unwrap(), Backend::Sqlite);
        assert_eq!(backend_of("postgres://u@h/db").unwrap(), Backend::Postgres);
        assert_eq!(
            backend_of("postgresql://u@h/db").unwrap(),
            Backend::Postgres
        );
        assert!(backend_of("mysql://u@h/db").is_err());
    }

    #[test]
    fn sqlite_urls_create_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/steno.db");
        let url = prepare_sqlite_url(&format!("sqlite://{}", path.display())).unwrap();
        assert!(url.ends_with("?mode=rwc"));
        assert!(path.parent().unwrap().is_dir());
        assert_eq!(
            prepare_sqlite_url("sqlite://x.db?mode=ro").unwrap(),
            "sqlite://x.db?mode=ro"
        );
    }
}
