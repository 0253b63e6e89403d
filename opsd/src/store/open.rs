//! Opening a store: a SQLite file (private, in WAL mode), a SQLite database in memory for tests,
//! or a PostgreSQL server named by a `postgres://` URL; each then brought to the newest schema.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Executor};

use super::{
    ensure_private_dir, ensure_private_file, is_busy, migrations, restrict_existing_file, Backend,
    Store, StoreError, BUSY_TIMEOUT,
};

/// Connections kept to a store file. SQLite serialises writers anyway; a few connections let
/// reads proceed while a write is under way (WAL).
const FILE_POOL_CONNECTIONS: u32 = 4;
/// Connections kept to a PostgreSQL store: the reconciler, the API and the background tasks.
const POSTGRES_POOL_CONNECTIONS: u32 = 8;
/// How long a PostgreSQL session may sit idle inside a transaction before the server ends it.
const IDLE_IN_TRANSACTION_LIMIT: Duration = Duration::from_secs(3);
/// Pages the write-ahead log may grow to before a commit copies it into the database file
/// itself (SQLite's default is 1,000, about 4 MB): `opsd up` checkpoints every second in the
/// background ([`Store::checkpoint`]), off the reconciler's path, and this bound applies only
/// when that falls behind.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Where a store is: what `store:` in `opsd.yaml` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file (created when missing).
    File(PathBuf),
    /// A PostgreSQL server: `postgres://user[:password]@host[:port]/database`.
    Postgres(String),
}

impl StoreLocation {
    /// The store `opsd.yaml` names: a `postgres://` (or `postgresql://`) URL, or the SQLite
    /// file `opsd.db` in `data_dir` when it names none.
    pub fn configured(store: Option<&str>, data_dir: &Path) -> StoreLocation {
        match store {
            Some(url) => StoreLocation::Postgres(url.to_string()),
            None => StoreLocation::File(data_dir.join("opsd.db")),
        }
    }

    /// Whether `text` is a URL `store:` accepts.
    pub fn is_postgres_url(text: &str) -> bool {
        text.starts_with("postgres://") || text.starts_with("postgresql://")
    }
}

/// `url` without its password, for messages and logs: `scheme://user:****@host/...`, and a
/// `password=` query parameter's value hidden the same way.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at(authority_end);
    let (path, query) = match path_and_query.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (path_and_query, None),
    };
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info
                .split_once(':')
                .map_or(user_info, |(user, _)| user);
            let hidden = if user_info.contains(':') { ":****" } else { "" };
            format!("{user}{hidden}@{host}")
        }
        None => authority.to_string(),
    };
    let query = query.map(|query| {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=****"),
                _ => parameter.to_string(),
            })
            .collect();
        format!("?{}", parameters.join("&"))
    });
    format!("{scheme}://{authority}{path}{}", query.unwrap_or_default())
}

impl Store {
    /// Opens the store at `location` and applies pending migrations.
    pub async fn open_location(location: &StoreLocation) -> Result<Store, StoreError> {
        match location {
            StoreLocation::File(path) => Store::open(path).await,
            StoreLocation::Postgres(url) => Store::open_postgres(url).await,
        }
    }

    /// Opens (creating it and its directory when missing) the store file at `path`, in WAL mode
    /// with foreign keys on, and applies pending migrations. A store written by a newer opsd is
    /// refused with [`StoreError::SchemaTooNew`].
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        if let Some(directory) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if !directory.exists() {
                ensure_private_dir(directory).map_err(|source| StoreError::CreateDirectory {
                    path: directory.to_path_buf(),
                    source,
                })?;
            }
        }
        // The store holds token hashes, the fingerprint key and release environments: 0600,
        // and SQLite gives its -wal and -shm files the database file's mode.
        ensure_private_file(path).map_err(|source| StoreError::MakePrivate {
            path: path.to_path_buf(),
            source,
        })?;
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            restrict_existing_file(Path::new(&companion)).map_err(|source| {
                StoreError::MakePrivate {
                    path: PathBuf::from(&companion),
                    source,
                }
            })?;
        }
        let file = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let options = AnyConnectOptions::from_url(&file.to_url_lossy()).map_err(|source| {
            StoreError::Open {
                location: path.display().to_string(),
                source,
            }
        })?;
        let pragmas = format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
             PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES};",
            BUSY_TIMEOUT.as_millis()
        );
        // Switching a new file to WAL takes a lock that SQLite reports as busy at once, without
        // waiting out `busy_timeout`, when another process opens the same new file at that
        // moment; such an open is tried again until `BUSY_TIMEOUT` has passed.
        let started = std::time::Instant::now();
        let pool = loop {
            let pragmas = pragmas.clone();
            match AnyPoolOptions::new()
                .max_connections(FILE_POOL_CONNECTIONS)
                .after_connect(move |connection, _| {
                    let pragmas = pragmas.clone();
                    Box::pin(async move {
                        connection.execute(pragmas.as_str()).await?;
                        Ok(())
                    })
                })
                .connect_with(options.clone())
                .await
            {
                Ok(pool) => break pool,
                Err(source) if is_busy(&source) && started.elapsed() < BUSY_TIMEOUT => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        location: path.display().to_string(),
                        source,
                    })
                }
            }
        };
        let store = Store {
            pool,
            backend: Backend::Sqlite,
            location: path.display().to_string(),
            fence: None,
        };
        migrations::migrate(&store).await?;
        tracing::info!(path = %path.display(), "store opened");
        Ok(store)
    }

    /// A fresh store in memory, for tests. It lives as long as the returned handle's clones.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let location = ":memory:".to_string();
        let options =
            AnyConnectOptions::from_str("sqlite::memory:").map_err(|source| StoreError::Open {
                location: location.clone(),
                source,
            })?;
        // One connection that never expires: each SQLite connection to `:memory:` is its own
        // database.
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .after_connect(|connection, _| {
                Box::pin(async move {
                    connection
                        .execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                location: location.clone(),
                source,
            })?;
        let store = Store {
            pool,
            backend: Backend::Sqlite,
            location,
            fence: None,
        };
        migrations::migrate(&store).await?;
        Ok(store)
    }

    /// Opens the store on the PostgreSQL server and database `url` names, and applies pending
    /// migrations (one opsd at a time: they run under the store's write lock). Several opsd
    /// may share one such store.
    pub async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let location = redacted_url(url);
        let open_failed = |source| StoreError::Open {
            location: location.clone(),
            source,
        };
        let options = AnyConnectOptions::from_str(url).map_err(open_failed)?;
        // A statement waiting for the write lock longer than SQLite's busy timeout fails as
        // `Busy`, as it does on a file. A session idle inside a transaction for longer than
        // opsd ever is (a process paused or cut off mid-write) is ended by the server, so its
        // write lock does not outlive it and the other instances can claim the lease.
        let lock_timeout = format!(
            "SET lock_timeout = {}; SET idle_in_transaction_session_timeout = {}",
            BUSY_TIMEOUT.as_millis(),
            IDLE_IN_TRANSACTION_LIMIT.as_millis()
        );
        let pool = AnyPoolOptions::new()
            .max_connections(POSTGRES_POOL_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |connection, _| {
                let lock_timeout = lock_timeout.clone();
                Box::pin(async move {
                    connection.execute(lock_timeout.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .map_err(open_failed)?;
        let store = Store {
            pool,
            backend: Backend::Postgres,
            location: location.clone(),
            fence: None,
        };
        migrations::migrate(&store).await?;
        tracing::info!(location = %location, "store opened");
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            redacted_url("postgres://opsd:s3cret@db.internal:5432/opsd"),
            "postgres://opsd:****@db.internal:5432/opsd"
        );
        assert_eq!(
            redacted_url("postgres://opsd@db/opsd"),
            "postgres://opsd@db/opsd"
        );
        assert_eq!(
            redacted_url("postgresql://u:p@ss:w@rd@host/db?sslmode=require"),
            "postgresql://u:****@host/db?sslmode=require"
        );
        assert_eq!(
            redacted_url("postgres://opsd@db/opsd?sslmode=require&password=hunter2"),
            "postgres://opsd@db/opsd?sslmode=require&password=****"
        );
    }

    #[test]
    fn the_configured_store_is_the_url_or_the_file_in_the_data_directory() {
        assert_eq!(
            StoreLocation::configured(None, Path::new("/var/lib/opsd")),
            StoreLocation::File(PathBuf::from("/var/lib/opsd/opsd.db"))
        );
        assert_eq!(
            StoreLocation::configured(Some("postgres://db/opsd"), Path::new("/x")),
            StoreLocation::Postgres("postgres://db/opsd".into())
        );
    }
}
