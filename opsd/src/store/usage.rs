//! Daily usage counted by the local router (requests, errors, summed duration, response bytes)
//! per UTC day, service and release: what the local cost model prices. The recorder adds each
//! window it reads, so a row only grows.

use chrono::NaiveDate;
use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

/// One day's usage of one release of a service. `release_id` is empty on the marker row that
/// says the recorder ran that day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UsageRow {
    pub day: NaiveDate,
    pub service: String,
    pub release_id: String,
    pub requests: u64,
    pub errors: u64,
    pub duration_ms: u64,
    pub bytes_out: u64,
}

/// Usage counters to add to a day's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageCounts {
    pub requests: u64,
    pub errors: u64,
    pub duration_ms: u64,
    pub bytes_out: u64,
}

fn as_sql_integer(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::TooLarge {
        what: what.to_string(),
        value,
        max: i64::MAX,
    })
}

fn from_sql_integer(value: i64, what: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what: format!("usage {what}"),
        detail: format!("{value} is negative"),
    })
}

impl Store {
    /// Adds `counts` to the usage of `release_id` of `service` on `day` (creating the row).
    pub async fn add_usage(
        &self,
        day: NaiveDate,
        service: &str,
        release_id: &str,
        counts: UsageCounts,
    ) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO usage_daily \
             (day, service, release_id, requests, errors, duration_ms, bytes_out) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (day, service, release_id) DO UPDATE SET \
             requests = usage_daily.requests + excluded.requests, \
             errors = usage_daily.errors + excluded.errors, \
             duration_ms = usage_daily.duration_ms + excluded.duration_ms, \
             bytes_out = usage_daily.bytes_out + excluded.bytes_out",
        )
        .bind(day.to_string())
        .bind(service)
        .bind(release_id)
        .bind(as_sql_integer(counts.requests, "requests")?)
        .bind(as_sql_integer(counts.errors, "errors")?)
        .bind(as_sql_integer(counts.duration_ms, "duration")?)
        .bind(as_sql_integer(counts.bytes_out, "bytes out")?)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Every usage row of the days `from..to_exclusive`, by day, service and release.
    pub async fn usage_between(
        &self,
        from: NaiveDate,
        to_exclusive: NaiveDate,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT day, service, release_id, requests, errors, duration_ms, bytes_out \
             FROM usage_daily WHERE day >= $1 AND day < $2 ORDER BY day, service, release_id",
        )
        .bind(from.to_string())
        .bind(to_exclusive.to_string())
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|row| {
                let day_text: String = row.try_get("day")?;
                let day = day_text
                    .parse::<NaiveDate>()
                    .map_err(|error| StoreError::Corrupt {
                        what: "usage day".into(),
                        detail: format!("{day_text:?}: {error}"),
                    })?;
                Ok(UsageRow {
                    day,
                    service: row.try_get("service")?,
                    release_id: row.try_get("release_id")?,
                    requests: from_sql_integer(row.try_get("requests")?, "requests")?,
                    errors: from_sql_integer(row.try_get("errors")?, "errors")?,
                    duration_ms: from_sql_integer(row.try_get("duration_ms")?, "duration")?,
                    bytes_out: from_sql_integer(row.try_get("bytes_out")?, "bytes out")?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    #[tokio::test]
    async fn usage_adds_up_per_day_service_and_release() {
        let store = crate::store::tests::test_store().await;
        let counts = UsageCounts {
            requests: 10,
            errors: 1,
            duration_ms: 250,
            bytes_out: 4_096,
        };
        store
            .add_usage(day("2026-03-01"), "steno", "steno@v1", counts)
            .await
            .unwrap();
        store
            .add_usage(day("2026-03-01"), "steno", "steno@v1", counts)
            .await
            .unwrap();
        store
            .add_usage(day("2026-03-01"), "steno", "", UsageCounts::default())
            .await
            .unwrap();
        store
            .add_usage(day("2026-03-02"), "steno", "steno@v2", counts)
            .await
            .unwrap();
        let rows = store
            .usage_between(day("2026-03-01"), day("2026-03-02"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].release_id, "");
        assert_eq!(rows[0].requests, 0);
        assert_eq!(
            (
                rows[1].requests,
                rows[1].errors,
                rows[1].duration_ms,
                rows[1].bytes_out
            ),
            (20, 2, 500, 8_192)
        );
        let all = store
            .usage_between(day("2026-02-01"), day("2026-04-01"))
            .await
            .unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[2].day, day("2026-03-02"));
        let too_large = UsageCounts {
            requests: u64::MAX,
            ..UsageCounts::default()
        };
        let message = store
            .add_usage(day("2026-03-03"), "steno", "x", too_large)
            .await
            .unwrap_err()
            .to_string();
        assert!(message.contains("requests"), "{message}");
    }
}
