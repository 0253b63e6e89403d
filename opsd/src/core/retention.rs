//! Which snapshots opsd took are past retention. Each snapshot has a class by why it was taken
//! (R-DR-6 in docs/requirements.md): daily restorable points (scheduled, manual, drill) are kept 30 days,
//! pre-migration snapshots (before a deployment, and the safety snapshot before a restore) 7
//! days, and the newest snapshot of each UTC week is a weekly copy kept 90 days. The newest
//! snapshot of all is always kept (so a restorable point remains), and so is every protected one
//! (the pre-deployment snapshot of a rollout still running).

use std::time::Duration;

use chrono::{Datelike, NaiveDateTime};

/// How long each class of snapshot is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    pub daily: Duration,
    pub pre_migration: Duration,
    pub weekly: Duration,
}

impl Default for RetentionPolicy {
    /// 30 days, 7 days before a migration and 90 days weekly (R-DR-6 in docs/requirements.md).
    fn default() -> Self {
        RetentionPolicy {
            daily: Duration::from_secs(30 * 86_400),
            pre_migration: Duration::from_secs(7 * 86_400),
            weekly: Duration::from_secs(90 * 86_400),
        }
    }
}

impl RetentionPolicy {
    /// One duration for every class (the single-value `retention:` form).
    pub fn every(duration: Duration) -> RetentionPolicy {
        RetentionPolicy {
            daily: duration,
            pre_migration: duration,
            weekly: duration,
        }
    }

    /// How long a snapshot taken for `reason` is kept (weekly copies aside).
    pub fn for_reason(&self, reason: &str) -> Duration {
        match reason {
            "pre_deploy" | "pre_restore" => self.pre_migration,
            _ => self.daily,
        }
    }
}

/// A snapshot opsd knows of, for retention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotAge {
    pub id: String,
    pub taken_at: NaiveDateTime,
    /// Why it was taken (`scheduled`, `manual`, `drill`, `pre_deploy`, `pre_restore`).
    pub reason: String,
}

/// The snapshots past retention under `policy` at `now`, never the newest one and never one in
/// `protected`.
pub fn snapshots_past_retention(
    snapshots: &[SnapshotAge],
    policy: &RetentionPolicy,
    now: NaiveDateTime,
    protected: &[String],
) -> Vec<String> {
    let Some(newest) = snapshots.iter().max_by_key(|snapshot| snapshot.taken_at) else {
        return Vec::new();
    };
    let older_than = |snapshot: &SnapshotAge, keep: Duration| {
        let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        now.signed_duration_since(snapshot.taken_at) > keep
    };
    let weekly = weekly_copies(snapshots);
    snapshots
        .iter()
        .filter(|snapshot| snapshot.id != newest.id)
        .filter(|snapshot| !protected.contains(&snapshot.id))
        .filter(|snapshot| older_than(snapshot, policy.for_reason(&snapshot.reason)))
        .filter(|snapshot| !weekly.contains(&snapshot.id) || older_than(snapshot, policy.weekly))
        .map(|snapshot| snapshot.id.clone())
        .collect()
}

/// The newest snapshot of each ISO week (UTC).
fn weekly_copies(snapshots: &[SnapshotAge]) -> Vec<String> {
    let mut newest_of_week: std::collections::BTreeMap<(i32, u32), &SnapshotAge> =
        std::collections::BTreeMap::new();
    for snapshot in snapshots {
        let week = snapshot.taken_at.iso_week();
        let entry = newest_of_week
            .entry((week.year(), week.week()))
            .or_insert(snapshot);
        if snapshot.taken_at > entry.taken_at {
            *entry = snapshot;
        }
    }
    newest_of_week
        .values()
        .map(|snapshot| snapshot.id.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    fn snapshot(id: &str, taken_at: &str, reason: &str) -> SnapshotAge {
        SnapshotAge {
            id: id.into(),
            taken_at: at(taken_at),
            reason: reason.into(),
        }
    }

    #[test]
    fn retention_keeps_the_newest_and_protected_snapshots() {
        let snapshots = vec![
            snapshot("old", "2026-10-01 00:00", "scheduled"),
            snapshot("older-but-protected", "2026-09-01 00:00", "pre_deploy"),
            snapshot("recent", "2026-11-20 00:00", "scheduled"),
        ];
        let now = at("2026-11-22 00:00");
        let month = RetentionPolicy::every(Duration::from_secs(30 * 86400));
        assert_eq!(
            snapshots_past_retention(&snapshots, &month, now, &["older-but-protected".into()]),
            vec!["old".to_string()]
        );
        // Even an ancient single snapshot stays: it is the only restorable point.
        assert!(snapshots_past_retention(&snapshots[..1], &month, now, &[]).is_empty());
    }

    #[test]
    fn each_class_is_kept_as_long_as_the_seeds_say() {
        // Wednesday 2026-11-25; the week before began Monday 2026-11-16.
        let now = at("2026-11-25 12:00");
        let snapshots = vec![
            snapshot("hourly-2d", "2026-11-23 10:00", "scheduled"),
            snapshot("hourly-2d-later", "2026-11-23 11:00", "scheduled"),
            snapshot("pre-deploy-8d", "2026-11-17 09:00", "pre_deploy"),
            snapshot("pre-deploy-6d", "2026-11-19 09:00", "pre_deploy"),
            snapshot("safety-8d", "2026-11-17 10:00", "pre_restore"),
            snapshot("daily-31d", "2026-10-25 03:00", "scheduled"),
            snapshot("weekly-31d", "2026-10-25 04:00", "scheduled"),
            snapshot("weekly-100d", "2026-08-16 04:00", "scheduled"),
            snapshot("newest", "2026-11-25 11:00", "scheduled"),
        ];
        let mut expired =
            snapshots_past_retention(&snapshots, &RetentionPolicy::default(), now, &[]);
        expired.sort();
        assert_eq!(
            expired,
            vec!["daily-31d", "pre-deploy-8d", "safety-8d", "weekly-100d"],
            "pre-migration snapshots go after 7 days, daily ones after 30, the week's newest \
             after 90"
        );
    }
}
