//! Login throttling: fixed-window counting as pure decisions (`judge`, `count_one`), and the
//! in-memory per-client limiter built on them. The per-account failure counts live in the
//! database (`db::login_failures`) so that every Steno process on one database sees one lockout.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

/// At most `max_events` in any fixed window of `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPolicy {
    pub max_events: u32,
    pub window: Duration,
}

/// Events counted since a window started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowCount {
    pub started_at: DateTime<Utc>,
    pub events: u32,
}

/// Whether one more event may happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused until the window ends, `retry_after` from now (whole seconds, at least one).
    Limited {
        retry_after: Duration,
    },
}

fn window_end(count: &WindowCount, policy: WindowPolicy) -> DateTime<Utc> {
    let window = chrono::Duration::from_std(policy.window).unwrap_or(chrono::Duration::MAX);
    count
        .started_at
        .checked_add_signed(window)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// True when `count`'s window is over at `now`, so counting starts again.
pub fn is_expired(count: &WindowCount, now: DateTime<Utc>, policy: WindowPolicy) -> bool {
    now >= window_end(count, policy)
}

/// Decides whether one more event is allowed at `now`, given what was counted so far.
pub fn judge(count: Option<&WindowCount>, now: DateTime<Utc>, policy: WindowPolicy) -> Verdict {
    match count {
        Some(count) if !is_expired(count, now, policy) && count.events >= policy.max_events => {
            let remaining = (window_end(count, policy) - now).num_milliseconds().max(0) as u64;
            Verdict::Limited {
                retry_after: Duration::from_secs(remaining.div_ceil(1000).max(1)),
            }
        }
        _ => Verdict::Allowed,
    }
}

/// The count after one more event at `now` (a new window when the old one is over).
pub fn count_one(
    count: Option<WindowCount>,
    now: DateTime<Utc>,
    policy: WindowPolicy,
) -> WindowCount {
    match count {
        Some(count) if !is_expired(&count, now, policy) => WindowCount {
            started_at: count.started_at,
            events: count.events.saturating_add(1),
        },
        _ => WindowCount {
            started_at: now,
            events: 1,
        },
    }
}

/// Counts password attempts (logins, registrations, invitation acceptances, password changes)
/// per client address in memory, with a bounded number of tracked clients.
#[derive(Debug)]
pub struct ClientLimiter {
    policy: WindowPolicy,
    max_clients: usize,
    counts: Mutex<HashMap<String, WindowCount>>,
}

impl ClientLimiter {
    pub fn new(policy: WindowPolicy, max_clients: usize) -> ClientLimiter {
        ClientLimiter {
            policy,
            max_clients: max_clients.max(1),
            counts: Mutex::new(HashMap::new()),
        }
    }

    pub fn policy(&self) -> WindowPolicy {
        self.policy
    }

    /// Counts one attempt by `client` at `now` when it is allowed. When more clients are tracked
    /// than the bound allows even after forgetting finished windows, new clients are refused
    /// for one window rather than letting the table grow.
    pub fn attempt(&self, client: &str, now: DateTime<Utc>) -> Verdict {
        let mut counts = self
            .counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let verdict = judge(counts.get(client), now, self.policy);
        if verdict != Verdict::Allowed {
            return verdict;
        }
        if !counts.contains_key(client) && counts.len() >= self.max_clients {
            let policy = self.policy;
            counts.retain(|_, count| !is_expired(count, now, policy));
            if counts.len() >= self.max_clients {
                return Verdict::Limited {
                    retry_after: Duration::from_secs(self.policy.window.as_secs().max(1)),
                };
            }
        }
        let counted = count_one(counts.get(client).copied(), now, self.policy);
        counts.insert(client.to_string(), counted);
        Verdict::Allowed
    }

    /// How many clients are tracked (for tests of the bound).
    pub fn tracked_clients(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> WindowPolicy {
        WindowPolicy {
            max_events: 3,
            window: Duration::from_secs(60),
        }
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn a_window_allows_its_maximum_then_refuses_until_it_ends() {
        let mut count = None;
        for second in 0..3 {
            assert_eq!(
                judge(count.as_ref(), at(second), policy()),
                Verdict::Allowed
            );
            count = Some(count_one(count, at(second), policy()));
        }
        assert_eq!(
            judge(count.as_ref(), at(10), policy()),
            Verdict::Limited {
                retry_after: Duration::from_secs(50)
            }
        );
        assert_eq!(
            judge(count.as_ref(), at(59), policy()),
            Verdict::Limited {
                retry_after: Duration::from_secs(1)
            }
        );
        assert_eq!(judge(count.as_ref(), at(60), policy()), Verdict::Allowed);
        assert_eq!(count_one(count, at(60), policy()).events, 1);
    }

    #[test]
    fn clients_are_counted_apart_and_the_table_is_bounded() {
        let limiter = ClientLimiter::new(policy(), 2);
        for _ in 0..3 {
            assert_eq!(limiter.attempt("10.0.0.1", at(0)), Verdict::Allowed);
        }
        assert!(matches!(
            limiter.attempt("10.0.0.1", at(1)),
            Verdict::Limited { .. }
        ));
        assert_eq!(limiter.attempt("10.0.0.2", at(1)), Verdict::Allowed);
        assert!(matches!(
            limiter.attempt("10.0.0.3", at(2)),
            Verdict::Limited { .. }
        ));
        assert_eq!(limiter.tracked_clients(), 2);
        // Once the old windows are over they are forgotten and new clients fit again.
        assert_eq!(limiter.attempt("10.0.0.3", at(120)), Verdict::Allowed);
        assert_eq!(limiter.tracked_clients(), 1);
    }
}
