//! The health of a service's stable release between rollouts: its crashes (as the platform
//! counts them), how many fell within the crash window, the run of failed health probes, and
//! what to notify: each crash once (critical from the third within ten minutes), and the
//! recovery after it once.

use serde::{Deserialize, Serialize};

use super::severity::Severity;

/// The window in which repeated crashes count together.
pub const CRASH_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Crashes within [`CRASH_WINDOW_MS`] from which a crash is critical.
pub const CRITICAL_CRASHES: usize = 3;

/// What the watcher remembers about one stable release.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StableHealth {
    /// The release this is about; another release starts from scratch.
    pub release_id: String,
    /// The platform's crash count at the last look; `None` before the first.
    pub crashes_seen: Option<u64>,
    /// When crashes were noticed within the window, oldest first.
    pub recent_crashes_ms: Vec<i64>,
    /// Failed health probes in a row.
    pub consecutive_failures: u32,
    /// A crash announced and not yet recovered from: its key and severity.
    pub open_crash: Option<OpenCrash>,
}

/// A crash that was announced and whose recovery is still to be announced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCrash {
    pub key: String,
    pub severity: Severity,
    pub since_ms: i64,
}

/// One look at the stable release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthLook {
    pub release_id: String,
    /// Whether the health probe answered 2xx.
    pub healthy: bool,
    /// How many times the platform has seen this release crash so far.
    pub crashes_so_far: u64,
    pub now_ms: i64,
}

/// What to tell people about the stable release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthNotice {
    /// The release crashed (`new_crashes` since the last look); `crashes_in_window` counts
    /// those within [`CRASH_WINDOW_MS`], this one included.
    Crashed {
        key: String,
        severity: Severity,
        new_crashes: u64,
        crashes_in_window: usize,
    },
    /// The release answers its health check again after the crash announced under `key`.
    Recovered {
        key: String,
        severity: Severity,
        down_ms: i64,
    },
}

/// The key of the notifications about a crash of `release_id` noticed at `now_ms`.
pub fn crash_notification_key(release_id: &str, now_ms: i64) -> String {
    format!("crash/{release_id}/{now_ms}")
}

/// Updates `health` with one `look` and returns what to notify. The first look at a release
/// only learns its crash count (crashes before opsd watched it are not news).
pub fn observe_stable_health(health: &mut StableHealth, look: &HealthLook) -> Vec<HealthNotice> {
    if health.release_id != look.release_id {
        *health = StableHealth {
            release_id: look.release_id.clone(),
            ..StableHealth::default()
        };
    }
    health.consecutive_failures = if look.healthy {
        0
    } else {
        health.consecutive_failures.saturating_add(1)
    };
    let now_ms = look.now_ms;
    health
        .recent_crashes_ms
        .retain(|&at| now_ms.saturating_sub(at) < CRASH_WINDOW_MS);

    let mut notices = Vec::new();
    let new_crashes = match health.crashes_seen {
        Some(seen) => look.crashes_so_far.saturating_sub(seen),
        None => 0,
    };
    health.crashes_seen = Some(look.crashes_so_far.max(health.crashes_seen.unwrap_or(0)));
    if new_crashes > 0 {
        // A burst counts crash by crash, but no more than the window needs to be critical.
        let counted = new_crashes.min(CRITICAL_CRASHES as u64) as usize;
        health
            .recent_crashes_ms
            .extend(std::iter::repeat_n(now_ms, counted));
        let crashes_in_window = health.recent_crashes_ms.len();
        let severity = if crashes_in_window >= CRITICAL_CRASHES {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let key = crash_notification_key(&look.release_id, now_ms);
        // A crash before the last one recovered is a new incident; the old one is superseded
        // and its recovery is announced with the new one's.
        health.open_crash = Some(OpenCrash {
            key: key.clone(),
            severity,
            since_ms: now_ms,
        });
        notices.push(HealthNotice::Crashed {
            key,
            severity,
            new_crashes,
            crashes_in_window,
        });
        return notices;
    }
    if look.healthy {
        if let Some(open) = health.open_crash.take() {
            notices.push(HealthNotice::Recovered {
                key: open.key,
                severity: open.severity,
                down_ms: now_ms.saturating_sub(open.since_ms),
            });
        }
    }
    notices
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(healthy: bool, crashes_so_far: u64, now_ms: i64) -> HealthLook {
        HealthLook {
            release_id: "steno@v1".into(),
            healthy,
            crashes_so_far,
            now_ms,
        }
    }

    #[test]
    fn a_crash_notifies_once_and_its_recovery_once() {
        let mut health = StableHealth::default();
        assert!(observe_stable_health(&mut health, &look(true, 0, 0)).is_empty());
        let crashed = observe_stable_health(&mut health, &look(false, 1, 1000));
        assert_eq!(
            crashed,
            vec![HealthNotice::Crashed {
                key: "crash/steno@v1/1000".into(),
                severity: Severity::Warning,
                new_crashes: 1,
                crashes_in_window: 1
            }]
        );
        assert!(observe_stable_health(&mut health, &look(false, 1, 2000)).is_empty());
        assert_eq!(health.consecutive_failures, 2);
        let recovered = observe_stable_health(&mut health, &look(true, 1, 3000));
        assert_eq!(
            recovered,
            vec![HealthNotice::Recovered {
                key: "crash/steno@v1/1000".into(),
                severity: Severity::Warning,
                down_ms: 2000
            }]
        );
        assert!(observe_stable_health(&mut health, &look(true, 1, 4000)).is_empty());
        assert_eq!(health.consecutive_failures, 0);
    }

    #[test]
    fn the_third_crash_within_ten_minutes_is_critical_and_old_crashes_age_out() {
        let mut health = StableHealth::default();
        observe_stable_health(&mut health, &look(true, 5, 0));
        let severities: Vec<Severity> = [(1, 60_000), (2, 120_000), (3, 180_000)]
            .into_iter()
            .flat_map(|(extra, at)| observe_stable_health(&mut health, &look(true, 5 + extra, at)))
            .filter_map(|notice| match notice {
                HealthNotice::Crashed { severity, .. } => Some(severity),
                HealthNotice::Recovered { .. } => None,
            })
            .collect();
        assert_eq!(
            severities,
            vec![Severity::Warning, Severity::Warning, Severity::Critical]
        );
        // Eleven minutes after the first: only two remain in the window.
        let later = observe_stable_health(&mut health, &look(true, 9, 60_000 + CRASH_WINDOW_MS));
        assert!(matches!(
            later[0],
            HealthNotice::Crashed {
                severity: Severity::Critical,
                crashes_in_window: 3,
                ..
            }
        ));
        let much_later = observe_stable_health(&mut health, &look(true, 10, 10 * CRASH_WINDOW_MS));
        assert!(matches!(
            much_later[0],
            HealthNotice::Crashed {
                severity: Severity::Warning,
                crashes_in_window: 1,
                ..
            }
        ));
    }

    #[test]
    fn a_burst_of_crashes_between_two_looks_is_critical_at_once() {
        let mut health = StableHealth::default();
        observe_stable_health(&mut health, &look(true, 0, 0));
        let notices = observe_stable_health(&mut health, &look(false, 4, 1000));
        assert!(matches!(
            notices[0],
            HealthNotice::Crashed {
                severity: Severity::Critical,
                new_crashes: 4,
                ..
            }
        ));
    }

    #[test]
    fn crashes_before_the_first_look_and_of_another_release_are_not_news() {
        let mut health = StableHealth::default();
        assert!(observe_stable_health(&mut health, &look(true, 7, 0)).is_empty());
        observe_stable_health(&mut health, &look(false, 8, 1000));
        let other = HealthLook {
            release_id: "steno@v2".into(),
            healthy: true,
            crashes_so_far: 2,
            now_ms: 2000,
        };
        assert!(observe_stable_health(&mut health, &other).is_empty());
        assert_eq!(health.open_crash, None, "a new release starts clean");
    }
}
