//! The store: everything opsd must remember across restarts (rollouts and their decisions,
//! the timeline, the audit log, stable releases, alarm states in production, API tokens,
//! notifications already sent, DR drills and the snapshots opsd took), in a SQLite file (the
//! embedded default) or on a PostgreSQL server (`store: postgres://...`, shared by several opsd).
//!
//! invariant: both engines run the same statements (`$1` placeholders, `ON CONFLICT`,
//! `RETURNING`, `CAST`); the few that differ are chosen by [`Backend`] next to each other.
//! invariant: writes are serialised as on SQLite: a write transaction starts with
//! [`Store::begin_write`], which on PostgreSQL takes one transaction-level advisory lock.
//!
//! invariant: the store knows nothing of the rollout engine's types; the engine's state is stored
//! as JSON text next to a few indexed columns.
//! invariant: every value is bound; no SQL text is built from input.
//! invariant: times are stored as RFC 3339 UTC text with milliseconds
//! (`2025-01-31T12:00:00.000Z`), so text order is time order; finer precision is truncated.

mod alarm_states;
mod costs;
mod dashboard_sessions;
mod decided;
mod drills;
mod freezes;
mod keys;
mod leader;
mod maintenance;
mod migrations;
mod notifications;
mod open;
mod progress;
mod releases;
mod rollouts;
mod samples;
mod timeline;
mod tokens;
mod usage;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod timeline_tests;
#[cfg(test)]
pub(crate) use tests::test_store;

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::private_files::{ensure_private_dir, ensure_private_file, restrict_existing_file};
use sqlx::error::ErrorKind;
use sqlx::{Any, AnyConnection, AnyPool, Connection, Transaction};

pub use alarm_states::{AlarmStateRecord, AlarmTransitionRecord, ALARM_TRANSITIONS_KEPT};
pub use costs::CostCheckRecord;
pub use dashboard_sessions::StoredSession;
pub use decided::DecidedStep;
pub use drills::{DrillRecord, SnapshotRecord};
pub use freezes::{FreezeRecord, ALL_SERVICES};
pub use leader::{LeaseClaim, LeaseHolder};
pub use migrations::{Migration, MIGRATIONS, POSTGRES_MIGRATIONS};
pub use open::{redacted_url, StoreLocation};
pub use progress::{ProgressSaved, ProgressState, RolloutProgress};
pub use releases::{ReleaseRecord, StableRelease};
#[doc(hidden)]
pub use rollouts::ROLLOUTS_OF_ONE_SERVICE;
pub use rollouts::{DecisionRecord, NewDecision, NewRollout, RolloutRecord};
pub use samples::{RolloutSamples, SampleRelease, SamplesPruned};
pub use timeline::MERGED_TIMELINE as MERGED_TIMELINE_QUERY;
pub use timeline::{
    AuditRecord, EventRecord, NewAuditEntry, NewEvent, TimelineEntry, TimelineFilter,
};
pub use tokens::{ApiToken, TokenRole, UnknownTokenRole};
pub use usage::{UsageCounts, UsageRow};

/// How long a statement waits for another connection or process to release the write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong in the store. Each message says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create the store's directory {}: {source}; create it or point opsd at a writable path",
        path.display()
    )]
    CreateDirectory {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot create the store file {} readable by its owner only (mode 0600): {source}; check the directory's ownership",
        path.display()
    )]
    MakePrivate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "cannot open the store {location}: {source}; check the path or URL, the permissions, \
         and that the disk has room or the server is up"
    )]
    Open {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the store {location} is at schema version {found}, newer than version {known}, the newest \
         this opsd knows; run the opsd release that wrote it (or a newer one), or restore a backup"
    )]
    SchemaTooNew {
        location: String,
        found: i64,
        known: i64,
    },
    #[error(
        "migration {version} ({name}) failed and was rolled back, the store is unchanged: {source}; \
         fix the cause and start opsd again"
    )]
    Migration {
        version: i64,
        name: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "service {service} already has rollout {rollout_id} in progress; wait for it to finish or \
         abort it before starting another"
    )]
    RolloutInProgress { service: String, rollout_id: String },
    #[error("a rollout with id {rollout_id} already exists; start the new rollout with a new id")]
    DuplicateRollout { rollout_id: String },
    #[error(
        "rollout {rollout_id} does not exist; check the id (list rollouts to see the known ones)"
    )]
    RolloutNotFound { rollout_id: String },
    #[error(
        "rollout {rollout_id} changed underneath this update (expected revision {expected_revision}, \
         found {found_revision}); another opsd process may be driving it: reload it before deciding \
         again"
    )]
    Conflict {
        rollout_id: String,
        expected_revision: i64,
        found_revision: i64,
    },
    #[error(
        "rollout {rollout_id} already finished ({outcome}) and cannot change; start a new rollout \
         instead"
    )]
    RolloutFinished { rollout_id: String, outcome: String },
    #[error("the {field} is not valid JSON: {source}; pass serialised JSON text")]
    InvalidJson {
        field: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("a token hash must be 64 lowercase hexadecimal characters (the SHA-256 of the token)")]
    InvalidTokenHash,
    #[error("a token with this hash is already registered; generate a new token")]
    TokenExists,
    #[error(
        "stored {what} cannot be read ({detail}); the store was changed by something other than \
         opsd: restore a backup or repair the row"
    )]
    Corrupt { what: String, detail: String },
    #[error(
        "the store stayed locked by another connection or process for longer than {} s: {source}; \
         check that a single opsd uses this store file, then retry",
        BUSY_TIMEOUT.as_secs()
    )]
    Busy {
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "{what} {value} is larger than the store can hold ({max} at most); nothing was written"
    )]
    TooLarge { what: String, value: u64, max: i64 },
    #[error(
        "this opsd no longer holds the leader lease at epoch {epoch} ({holder} holds it); \
         nothing was written, and this instance stops acting"
    )]
    Fenced { epoch: i64, holder: String },
    #[error("the store failed: {0}; if this persists, check free disk space and the store file")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        if is_busy(&error) {
            StoreError::Busy { source: error }
        } else {
            StoreError::Database(error)
        }
    }
}

/// The database engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// opsd's store. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Where the store is, for messages: a file path, `:memory:`, or a URL without its password.
    location: String,
    /// The leader whose lease every write transaction checks ([`Store::fenced`]).
    fence: Option<leader::Fence>,
}

impl Store {
    /// The newest schema version applied to this store.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let mut connection = self.pool.acquire().await?;
        let applied = migrations::applied_versions(&mut connection).await?;
        Ok(applied.last().copied().unwrap_or(0))
    }

    /// Copies what the write-ahead log holds into the database file as far as no reader still
    /// needs it, without waiting for readers or writers (a passive checkpoint); nothing to do
    /// for a store in memory.
    pub async fn checkpoint(&self) -> Result<(), StoreError> {
        if self.backend == Backend::Sqlite && self.location != ":memory:" {
            sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(self.pool())
                .await?;
        }
        Ok(())
    }

    /// Closes every connection, waiting for statements under way. Later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The engine this store runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the store is: a file path, `:memory:`, or a URL without its password.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A transaction that writes: it holds the store's write lock from its first statement, so
    /// what it reads stays true until it commits (SQLite's `BEGIN IMMEDIATE`; on PostgreSQL one
    /// transaction-level advisory lock that every writer takes); on a [`Store::fenced`] store it
    /// fails with [`StoreError::Fenced`] unless the lease is still the leader's.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let mut transaction = self.begin_unfenced_write().await?;
        if let Some(fence) = &self.fence {
            leader::check_fence(&mut transaction, self.backend, fence).await?;
        }
        Ok(transaction)
    }

    /// [`Store::begin_write`] without the fence: the lease's own claims.
    async fn begin_unfenced_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut transaction = self.pool.begin().await?;
                take_write_lock(&mut transaction).await?;
                Ok(transaction)
            }
        }
    }

    /// [`Store::begin_write`] on a connection of the pool that the caller holds.
    async fn begin_write_on<'c>(
        &self,
        connection: &'c mut AnyConnection,
    ) -> Result<Transaction<'c, Any>, StoreError> {
        let mut transaction = match self.backend {
            Backend::Sqlite => connection.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => {
                let mut transaction = connection.begin().await?;
                take_write_lock(&mut transaction).await?;
                transaction
            }
        };
        if let Some(fence) = &self.fence {
            leader::check_fence(&mut transaction, self.backend, fence).await?;
        }
        Ok(transaction)
    }
}

/// The PostgreSQL advisory lock every writing transaction holds until it ends (an arbitrary
/// constant: "opsd" in ASCII).
const WRITE_LOCK_KEY: i64 = 0x6f70_7364;

async fn take_write_lock(connection: &mut AnyConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(WRITE_LOCK_KEY)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// A time as stored: RFC 3339 UTC with milliseconds.
fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Reads a stored time back; `what` names the column for the error.
fn parse_time(text: &str, what: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|error| StoreError::Corrupt {
            what: what.to_string(),
            detail: format!("{text:?} is not an RFC 3339 time: {error}"),
        })
}

fn parse_optional_time(
    text: Option<String>,
    what: &str,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    text.map(|text| parse_time(&text, what)).transpose()
}

/// Reads a stored JSON column back; `what` names the column for the error.
fn parse_json(text: &str, what: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(text).map_err(|error| StoreError::Corrupt {
        what: what.to_string(),
        detail: format!("not JSON: {error}"),
    })
}

/// Checks that caller-supplied text is JSON before it is stored.
fn require_json(text: &str, field: &'static str) -> Result<(), StoreError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|source| StoreError::InvalidJson { field, source })
}

/// Reads a stored non-negative integer back into a narrower type.
fn narrow<T: TryFrom<i64>>(value: i64, what: &str) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt {
        what: what.to_string(),
        detail: format!("{value} is out of range"),
    })
}

/// Which constraint class a database error violated, if any.
fn violation(error: &sqlx::Error) -> Option<ErrorKind> {
    match error {
        sqlx::Error::Database(database_error) => match database_error.kind() {
            ErrorKind::Other => None,
            kind => Some(kind),
        },
        _ => None,
    }
}

/// SQLite's primary result code for "database is busy" (extended codes share the low byte).
const SQLITE_BUSY: i64 = 5;
/// PostgreSQL's "lock not available" (a `lock_timeout` passed).
const POSTGRES_LOCK_NOT_AVAILABLE: &str = "55P03";

fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(database_error) => database_error.code().is_some_and(|code| {
            code == POSTGRES_LOCK_NOT_AVAILABLE
                || code
                    .parse::<i64>()
                    .is_ok_and(|code| code & 0xff == SQLITE_BUSY)
        }),
        _ => false,
    }
}
