//! The usage recorder of `opsd up` on the local platform: every few seconds it reads what the
//! router counted per release since the last window (requests, errors, summed durations, response
//! bytes) and adds it to the store's daily usage, which the local cost model prices.
//!
//! Windows end [`RECORD_LAG_SECS`] behind the clock, so a request whose second was stamped just
//! before a read is never missed; a window that spans UTC midnight is split at it, so each day
//! gets exactly its own seconds. The router keeps 15 minutes of seconds, far more than a window.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate};

use crate::platform::local::LocalPlatform;
use crate::store::{Store, StoreError, UsageCounts};

/// How often the recorder reads the router.
pub const RECORD_INTERVAL: Duration = Duration::from_secs(10);
/// How far behind the clock a window ends.
pub const RECORD_LAG_SECS: i64 = 2;

const SECONDS_PER_DAY: i64 = 86_400;

/// The UTC day of a Unix second.
pub fn day_of_second(second: i64) -> NaiveDate {
    DateTime::from_timestamp(second, 0)
        .map(|time| time.date_naive())
        .unwrap_or_default()
}

/// Splits the seconds `from..to` at UTC midnights: `(day, from, to)` per day, in order.
pub fn windows_by_day(from: i64, to: i64) -> Vec<(NaiveDate, i64, i64)> {
    let mut windows = Vec::new();
    let mut start = from;
    while start < to {
        let next_midnight = (start.div_euclid(SECONDS_PER_DAY) + 1) * SECONDS_PER_DAY;
        let end = next_midnight.min(to);
        windows.push((day_of_second(start), start, end));
        start = end;
    }
    windows
}

/// Records the usage of `services` (their router counters) from `start` on.
pub struct UsageRecorder {
    platform: Arc<LocalPlatform>,
    store: Store,
    services: Vec<String>,
    /// The next window's first second.
    recorded_until: i64,
    /// The last day a marker row was written for.
    marked_day: Option<NaiveDate>,
}

impl UsageRecorder {
    pub fn new(
        platform: Arc<LocalPlatform>,
        store: Store,
        services: Vec<String>,
        start_second: i64,
    ) -> UsageRecorder {
        UsageRecorder {
            platform,
            store,
            services,
            recorded_until: start_second,
            marked_day: None,
        }
    }

    /// Adds the seconds `recorded_until..until` to the store. On a store error the window is kept
    /// and retried next time (the router still holds its seconds).
    pub async fn record_until(&mut self, until: i64) -> Result<(), StoreError> {
        for (day, from, to) in windows_by_day(self.recorded_until, until) {
            if self.marked_day != Some(day) {
                for service in &self.services {
                    self.store
                        .add_usage(day, service, "", UsageCounts::default())
                        .await?;
                }
                self.marked_day = Some(day);
            }
            // Every service's usage is read before any is stored, so a router that cannot be
            // asked leaves the whole window to the next round (nothing counted twice).
            let mut usage = Vec::with_capacity(self.services.len());
            for service in &self.services {
                match self.platform.usage_between(service, from, to).await {
                    Ok(releases) => usage.push((service, releases)),
                    Err(error) => {
                        tracing::warn!(service = %service, error = %error, "cannot read usage from the router; trying again next round");
                        return Ok(());
                    }
                }
            }
            for (service, releases) in usage {
                for (release_id, sample) in releases {
                    if sample.requests == 0 && sample.bytes_out == 0 {
                        continue;
                    }
                    let counts = UsageCounts {
                        requests: sample.requests,
                        errors: sample.errors,
                        duration_ms: sample.latency_total_ms,
                        bytes_out: sample.bytes_out,
                    };
                    self.store
                        .add_usage(day, service, &release_id, counts)
                        .await?;
                }
            }
            self.recorded_until = to;
        }
        Ok(())
    }

    /// Records a window every [`RECORD_INTERVAL`] until `shutdown`, then the last one.
    pub async fn run(mut self, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(RECORD_INTERVAL) => {}
                _ = shutdown.changed() => break,
            }
            let until = unix_second() - RECORD_LAG_SECS;
            if let Err(error) = self.record_until(until).await {
                tracing::warn!(error = %error, "usage could not be recorded; retrying next window");
            }
        }
        if let Err(error) = self.record_until(unix_second() + 1).await {
            tracing::warn!(error = %error, "the last usage window could not be recorded");
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_second() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn second_of(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    #[test]
    fn windows_split_at_utc_midnight() {
        let from = second_of("2026-02-28T23:59:50Z");
        let to = second_of("2026-03-01T00:00:05Z");
        let windows = windows_by_day(from, to);
        assert_eq!(
            windows,
            vec![
                (
                    "2026-02-28".parse().unwrap(),
                    from,
                    second_of("2026-03-01T00:00:00Z")
                ),
                (
                    "2026-03-01".parse().unwrap(),
                    second_of("2026-03-01T00:00:00Z"),
                    to
                ),
            ]
        );
        assert!(windows_by_day(to, to).is_empty());
        assert!(windows_by_day(to, from).is_empty());
        let within = windows_by_day(from, from + 5);
        assert_eq!(within.len(), 1);
        assert_eq!(within[0].0, "2026-02-28".parse::<NaiveDate>().unwrap());
        // Leap day.
        let leap = windows_by_day(
            second_of("2028-02-29T12:00:00Z"),
            second_of("2028-03-01T12:00:00Z"),
        );
        assert_eq!(leap.len(), 2);
        assert_eq!(leap[0].0, "2028-02-29".parse::<NaiveDate>().unwrap());
    }
}
