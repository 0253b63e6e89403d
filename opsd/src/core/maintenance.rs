//! Maintenance windows (R-WINDOW-1): scheduled ones from `opsd.yaml` (seed: Sunday 02:00-04:00
//! UTC, announced 7 days before) and the ones an operator starts with `opsd maintenance start`;
//! which one is in force at a moment, and which one is announced next. Pure: the moment comes in.
//!
//! invariant: a window is in force from its start (inclusive) to its end (exclusive); an
//! operator's stop ends every operator window in force, never a scheduled one (those are changed
//! in `opsd.yaml`).

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::schedule::Schedule;
use super::window::WindowState;

/// A maintenance window that repeats: it starts at each fire of `start` and lasts `duration`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledMaintenance {
    pub name: String,
    pub start: Schedule,
    pub duration: Duration,
    pub message: String,
    /// How long before its start a window is announced (shown as upcoming).
    pub announce: Duration,
    /// Whether deploys may move during it although the deploy windows are closed (the default:
    /// a maintenance window is also a deploy window). Freeze dates still win.
    pub allows_deploys: bool,
}

/// One window, as the status document and the CLI show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub message: String,
    pub starts_at: DateTime<Utc>,
    /// `None`: until an operator stops it.
    pub ends_at: Option<DateTime<Utc>>,
    /// `schedule NAME` or `operator NAME`.
    pub source: String,
    /// Whether deploys may move during it even outside the deploy windows.
    #[serde(default = "deploys_allowed")]
    pub allows_deploys: bool,
}

fn deploys_allowed() -> bool {
    true
}

impl MaintenanceWindow {
    /// Whether it is in force at `now`.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.starts_at <= now && self.ends_at.is_none_or(|end| now < end)
    }
}

/// What is in force now and what is announced next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceStatus {
    pub active: Option<MaintenanceWindow>,
    pub upcoming: Option<MaintenanceWindow>,
}

/// The scheduled window in force at `now`, if any: the latest start at or before `now` whose
/// duration has not passed.
fn scheduled_active(
    schedule: &ScheduledMaintenance,
    now: DateTime<Utc>,
) -> Option<MaintenanceWindow> {
    let start = schedule.start.previous_fire(now.naive_utc())?;
    let starts_at = Utc.from_utc_datetime(&start);
    let ends_at = starts_at + chrono::Duration::from_std(schedule.duration).ok()?;
    (now < ends_at).then(|| MaintenanceWindow {
        message: schedule.message.clone(),
        starts_at,
        ends_at: Some(ends_at),
        source: format!("schedule {}", schedule.name),
        allows_deploys: schedule.allows_deploys,
    })
}

/// The scheduled window starting after `now`, when its announcement period has begun.
fn scheduled_announced(
    schedule: &ScheduledMaintenance,
    now: DateTime<Utc>,
) -> Option<MaintenanceWindow> {
    let start = schedule.start.next_fire(now.naive_utc())?;
    let starts_at = Utc.from_utc_datetime(&start);
    let announce = chrono::Duration::from_std(schedule.announce).ok()?;
    if starts_at - announce > now {
        return None;
    }
    let ends_at = starts_at + chrono::Duration::from_std(schedule.duration).ok()?;
    Some(MaintenanceWindow {
        message: schedule.message.clone(),
        starts_at,
        ends_at: Some(ends_at),
        source: format!("schedule {}", schedule.name),
        allows_deploys: schedule.allows_deploys,
    })
}

/// Every window in force at `now`: the scheduled ones, then the operators'.
fn in_force<'a>(
    now: DateTime<Utc>,
    schedules: &'a [ScheduledMaintenance],
    operator_windows: &'a [MaintenanceWindow],
) -> impl Iterator<Item = MaintenanceWindow> + 'a {
    schedules
        .iter()
        .filter_map(move |schedule| scheduled_active(schedule, now))
        .chain(
            operator_windows
                .iter()
                .filter(move |window| window.is_active(now))
                .cloned(),
        )
}

/// The maintenance status at `now` from the schedules and the operators' windows. Of several
/// windows in force, the one that started last is shown (an operator's window started during a
/// scheduled one says more about now); the upcoming one is the earliest to start.
pub fn maintenance_at(
    now: DateTime<Utc>,
    schedules: &[ScheduledMaintenance],
    operator_windows: &[MaintenanceWindow],
) -> MaintenanceStatus {
    let mut active: Vec<MaintenanceWindow> = in_force(now, schedules, operator_windows).collect();
    active.sort_by_key(|window| window.starts_at);
    let mut upcoming: Vec<MaintenanceWindow> = schedules
        .iter()
        .filter_map(|schedule| scheduled_announced(schedule, now))
        .chain(
            operator_windows
                .iter()
                .filter(|window| window.starts_at > now)
                .cloned(),
        )
        .collect();
    upcoming.sort_by_key(|window| window.starts_at);
    MaintenanceStatus {
        active: active.pop(),
        upcoming: upcoming.into_iter().next(),
    }
}

/// The deploy-window state with maintenance taken into account: a maintenance window in force
/// (scheduled or an operator's) that allows deploys opens deploy windows that are closed, until
/// it ends, except on a freeze date.
pub fn with_maintenance_deploys(
    state: WindowState,
    on_freeze_date: bool,
    now: DateTime<Utc>,
    schedules: &[ScheduledMaintenance],
    operator_windows: &[MaintenanceWindow],
) -> WindowState {
    if on_freeze_date || !matches!(state, WindowState::Closed(_)) {
        return state;
    }
    let opening: Vec<MaintenanceWindow> = in_force(now, schedules, operator_windows)
        .filter(|window| window.allows_deploys)
        .collect();
    if opening.is_empty() {
        return state;
    }
    // Open until the last of them ends; one that lasts until stopped keeps it open until then.
    let closes_at_ms = if opening.iter().any(|window| window.ends_at.is_none()) {
        None
    } else {
        opening
            .iter()
            .filter_map(|window| window.ends_at)
            .max()
            .map(|end| end.timestamp_millis())
    };
    WindowState::Open { closes_at_ms }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// R-WINDOW-1: Sunday 02:00-04:00 UTC, announced 7 days before.
    fn sunday_nights() -> ScheduledMaintenance {
        ScheduledMaintenance {
            name: "sunday".into(),
            start: Schedule::parse("0 2 * * 0").unwrap(),
            duration: Duration::from_secs(2 * 3600),
            message: "Weekly maintenance, Sunday 02:00-04:00 UTC".into(),
            announce: Duration::from_secs(7 * 24 * 3600),
            allows_deploys: true,
        }
    }

    /// A maintenance window is also a deploy window unless it says otherwise; a freeze date wins.
    #[test]
    fn a_maintenance_window_opens_closed_deploy_windows() {
        let closed = WindowState::Closed(super::super::window::ClosedWindow {
            reason: "outside every deploy window".into(),
            opens_at_ms: None,
            opens: "opens Tue".into(),
        });
        let sunday_3am = at("2026-12-06T03:00:00Z");
        let opened =
            with_maintenance_deploys(closed.clone(), false, sunday_3am, &[sunday_nights()], &[]);
        assert_eq!(
            opened,
            WindowState::Open {
                closes_at_ms: Some(at("2026-12-06T04:00:00Z").timestamp_millis())
            }
        );
        assert_eq!(
            with_maintenance_deploys(closed.clone(), true, sunday_3am, &[sunday_nights()], &[]),
            closed,
            "a freeze date wins"
        );
        let no_deploys = ScheduledMaintenance {
            allows_deploys: false,
            ..sunday_nights()
        };
        assert_eq!(
            with_maintenance_deploys(closed.clone(), false, sunday_3am, &[no_deploys], &[]),
            closed
        );
        assert_eq!(
            with_maintenance_deploys(
                closed.clone(),
                false,
                at("2026-12-06T05:00:00Z"),
                &[sunday_nights()],
                &[]
            ),
            closed
        );
    }

    /// An operator's window opens deploys too: until it ends, or until stopped when open-ended;
    /// one started with `--no-deploys` does not.
    #[test]
    fn an_operator_maintenance_window_opens_closed_deploy_windows_unless_it_says_no() {
        let closed = WindowState::Closed(super::super::window::ClosedWindow {
            reason: "outside every deploy window".into(),
            opens_at_ms: None,
            opens: "opens Tue".into(),
        });
        let now = at("2026-12-09T12:00:00Z");
        let until_stopped = MaintenanceWindow {
            message: "Database upgrade".into(),
            starts_at: at("2026-12-09T11:30:00Z"),
            ends_at: None,
            source: "operator alice".into(),
            allows_deploys: true,
        };
        let one_hour = MaintenanceWindow {
            ends_at: Some(at("2026-12-09T12:30:00Z")),
            ..until_stopped.clone()
        };
        assert_eq!(
            with_maintenance_deploys(
                closed.clone(),
                false,
                now,
                &[],
                std::slice::from_ref(&one_hour)
            ),
            WindowState::Open {
                closes_at_ms: Some(at("2026-12-09T12:30:00Z").timestamp_millis())
            }
        );
        assert_eq!(
            with_maintenance_deploys(
                closed.clone(),
                false,
                now,
                &[],
                &[one_hour, until_stopped.clone()]
            ),
            WindowState::Open { closes_at_ms: None },
            "open until stopped"
        );
        let no_deploys = MaintenanceWindow {
            allows_deploys: false,
            ..until_stopped.clone()
        };
        assert_eq!(
            with_maintenance_deploys(closed.clone(), false, now, &[], &[no_deploys]),
            closed
        );
        let planned = MaintenanceWindow {
            starts_at: at("2026-12-10T00:00:00Z"),
            ..until_stopped
        };
        assert_eq!(
            with_maintenance_deploys(closed.clone(), false, now, &[], &[planned]),
            closed,
            "not before it starts"
        );
    }

    #[test]
    fn the_seed_window_is_in_force_on_sunday_night_and_announced_the_week_before() {
        let schedules = [sunday_nights()];
        // 2026-12-06 is a Sunday.
        let during = maintenance_at(at("2026-12-06T03:59:59Z"), &schedules, &[]);
        let active = during.active.expect("in force");
        assert_eq!(active.starts_at, at("2026-12-06T02:00:00Z"));
        assert_eq!(active.ends_at, Some(at("2026-12-06T04:00:00Z")));
        assert!(maintenance_at(at("2026-12-06T04:00:00Z"), &schedules, &[])
            .active
            .is_none());
        assert!(maintenance_at(at("2026-12-06T01:59:59Z"), &schedules, &[])
            .active
            .is_none());
        // Wednesday: the next Sunday's window is announced.
        let before = maintenance_at(at("2026-12-02T12:00:00Z"), &schedules, &[]);
        assert!(before.active.is_none());
        assert_eq!(
            before.upcoming.unwrap().starts_at,
            at("2026-12-06T02:00:00Z")
        );
    }

    #[test]
    fn an_announcement_waits_for_its_period() {
        let mut short_notice = sunday_nights();
        short_notice.announce = Duration::from_secs(24 * 3600);
        let wednesday = maintenance_at(at("2026-12-02T12:00:00Z"), &[short_notice.clone()], &[]);
        assert!(wednesday.upcoming.is_none());
        let saturday = maintenance_at(at("2026-12-05T03:00:00Z"), &[short_notice], &[]);
        assert!(saturday.upcoming.is_some());
    }

    #[test]
    fn an_operator_window_is_in_force_until_it_ends_and_wins_over_an_older_one() {
        let open_ended = MaintenanceWindow {
            message: "Database upgrade".into(),
            starts_at: at("2026-12-06T02:30:00Z"),
            ends_at: None,
            source: "operator alice".into(),
            allows_deploys: true,
        };
        let status = maintenance_at(
            at("2026-12-06T03:00:00Z"),
            &[sunday_nights()],
            std::slice::from_ref(&open_ended),
        );
        assert_eq!(status.active.unwrap().message, "Database upgrade");
        let later = maintenance_at(
            at("2027-01-01T00:00:00Z"),
            &[],
            std::slice::from_ref(&open_ended),
        );
        assert!(later.active.is_some(), "open-ended until stopped");
        let planned = MaintenanceWindow {
            starts_at: at("2026-12-10T00:00:00Z"),
            ends_at: Some(at("2026-12-10T01:00:00Z")),
            ..open_ended
        };
        let before = maintenance_at(
            at("2026-12-09T00:00:00Z"),
            &[],
            std::slice::from_ref(&planned),
        );
        assert!(before.active.is_none());
        assert_eq!(before.upcoming, Some(planned.clone()));
        let after = maintenance_at(at("2026-12-10T01:00:00Z"), &[], &[planned]);
        assert_eq!(after, MaintenanceStatus::default());
    }
}
