//! Failed logins per account, counted in the database so that every Steno process on it sees the
//! same lockout. The account key is the SHA-256 of the lowercased email, so the table never holds
//! the addresses people typed, and unknown emails are counted exactly like known ones.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{time_text, Database, DbError};
use crate::throttle::WindowCount;

/// The failures counted for `account_key` in its current window, if any.
pub async fn failures(
    database: &Database,
    account_key: &str,
) -> Result<Option<WindowCount>, DbError> {
    let row = sqlx::query(
        "SELECT window_started_at, failures FROM login_failures WHERE account_key = $1",
    )
    .bind(account_key)
    .fetch_optional(database.pool())
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let started_text: String = row.try_get("window_started_at")?;
    let started_at = DateTime::parse_from_rfc3339(&started_text)
        .map_err(|error| {
            DbError::Corrupt(format!(
                "login_failures.window_started_at {started_text:?} is not a time: {error}"
            ))
        })?
        .with_timezone(&Utc);
    let events: i64 = row.try_get("failures")?;
    Ok(Some(WindowCount {
        started_at,
        events: u32::try_from(events.max(0)).unwrap_or(u32::MAX),
    }))
}

/// Counts one failure at `now`; a window that started at or before `window_floor` (now minus the
/// window) is over, and counting starts again at one. One statement, so concurrent failures from
/// several processes are all counted. Other accounts' finished windows are deleted, so the table
/// holds at most the accounts that failed within one window.
pub async fn record_failure(
    database: &Database,
    account_key: &str,
    now: DateTime<Utc>,
    window_floor: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO login_failures (account_key, window_started_at, failures) VALUES ($1, $2, 1) \
         ON CONFLICT (account_key) DO UPDATE SET \
         failures = CASE WHEN login_failures.window_started_at <= $3 THEN 1 \
                         ELSE login_failures.failures + 1 END, \
         window_started_at = CASE WHEN login_failures.window_started_at <= $3 THEN $2 \
                                  ELSE login_failures.window_started_at END",
    )
    .bind(account_key)
    .bind(time_text(now))
    .bind(time_text(window_floor))
    .execute(database.pool())
    .await?;
    sqlx::query("DELETE FROM login_failures WHERE window_started_at <= $1 AND account_key <> $2")
        .bind(time_text(window_floor))
        .bind(account_key)
        .execute(database.pool())
        .await?;
    Ok(())
}

/// Forgets the failures of an account (after a successful login), and every window that ended
/// before `window_floor`, so the table holds only live windows.
pub async fn clear(
    database: &Database,
    account_key: &str,
    window_floor: DateTime<Utc>,
) -> Result<(), DbError> {
    sqlx::query("DELETE FROM login_failures WHERE account_key = $1 OR window_started_at <= $2")
        .bind(account_key)
        .bind(time_text(window_floor))
        .execute(database.pool())
        .await?;
    Ok(())
}
