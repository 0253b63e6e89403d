//! The watch after promotion (R-WATCH-1, R-WATCH-4): at 100 % there is no live baseline left, so
//! the new release is compared with the previous release's recorded behaviour, its traffic over a
//! window as long as the watch just before the rollout began.
//!
//! invariant: a reference window ends where the rollout began and is never longer than the watch
//! or [`MAX_REFERENCE_WINDOW`], so traffic the new release served never counts as the previous
//! release's behaviour.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::traffic::TrafficSample;

/// The longest stretch of history a reference is read from.
pub const MAX_REFERENCE_WINDOW: Duration = Duration::from_secs(60 * 60);

/// The previous release's traffic before the rollout, recorded when the rollout was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReferenceTraffic {
    /// The version that served it (the rollout's stable release).
    pub version: String,
    /// The window, ms since the epoch: `from_ms..to_ms`.
    pub from_ms: i64,
    pub to_ms: i64,
    pub traffic: TrafficSample,
}

impl ReferenceTraffic {
    /// `v1's 4,210 requests over the 30 min before the rollout (0.12 % errors)`.
    pub fn describe(&self) -> String {
        let minutes = (self.to_ms - self.from_ms).max(0) / 60_000;
        let span = if minutes >= 1 {
            format!("{minutes} min")
        } else {
            format!("{} s", (self.to_ms - self.from_ms).max(0) / 1000)
        };
        let error_percent = if self.traffic.requests == 0 {
            0.0
        } else {
            self.traffic.errors as f64 * 100.0 / self.traffic.requests as f64
        };
        format!(
            "{}'s {} requests over the {span} before the rollout ({error_percent:.2} % errors)",
            self.version, self.traffic.requests
        )
    }
}

/// The seconds `from..to` (as the platform's metric source counts them) whose traffic is the
/// reference of a rollout created at `created_at_ms` with this watch; `None` without a watch.
pub fn reference_window_seconds(created_at_ms: i64, watch: Duration) -> Option<(i64, i64)> {
    if watch.is_zero() {
        return None;
    }
    let length = watch.min(MAX_REFERENCE_WINDOW).as_secs().max(1) as i64;
    let to = created_at_ms.div_euclid(1000);
    Some((to - length, to))
}

/// The reference for a rollout, from the previous release's samples in the window; `None` when
/// it served nothing there (a quiet service, or history the platform no longer holds): the watch
/// is then judged by alarm rules, health and checks alone, and says so.
pub fn reference_from_samples(
    version: &str,
    window_seconds: (i64, i64),
    samples: &[TrafficSample],
) -> Option<ReferenceTraffic> {
    let traffic = TrafficSample::sum(samples);
    if traffic.requests == 0 {
        return None;
    }
    Some(ReferenceTraffic {
        version: version.to_string(),
        from_ms: window_seconds.0 * 1000,
        to_ms: window_seconds.1 * 1000,
        traffic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_ends_where_the_rollout_began_and_is_as_long_as_the_watch_up_to_an_hour() {
        let created = 1_000_000_500;
        assert_eq!(reference_window_seconds(created, Duration::ZERO), None);
        assert_eq!(
            reference_window_seconds(created, Duration::from_secs(15 * 60)),
            Some((1_000_000 - 900, 1_000_000))
        );
        assert_eq!(
            reference_window_seconds(created, Duration::from_secs(3 * 3600)),
            Some((1_000_000 - 3600, 1_000_000))
        );
        assert_eq!(
            reference_window_seconds(created, Duration::from_millis(300)),
            Some((1_000_000 - 1, 1_000_000))
        );
    }

    #[test]
    fn a_release_that_served_nothing_leaves_no_reference() {
        assert_eq!(reference_from_samples("v1", (0, 60), &[]), None);
        let mut sample = TrafficSample::default();
        sample.record(20, false);
        sample.record(30, true);
        let reference = reference_from_samples("v1", (100, 160), &[sample, sample])
            .expect("traffic was served");
        assert_eq!(reference.traffic.requests, 4);
        assert_eq!((reference.from_ms, reference.to_ms), (100_000, 160_000));
        assert_eq!(
            reference.describe(),
            "v1's 4 requests over the 1 min before the rollout (50.00 % errors)"
        );
    }
}
