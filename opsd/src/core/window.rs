//! Deploy windows and freeze dates (R-GATE-6 in docs/requirements.md): given the windows (a
//! cron-like start in the configured time zone plus a duration), the freeze dates and an
//! instant, whether deploys may move now — open, with when it closes — or not — closed, with
//! the reason and when it next opens. Pure: the time zone comes in as data.
//!
//! Local times and daylight saving time:
//! - A window's start is a civil time in the zone; its duration is elapsed time (a 2 h window is
//!   open for two hours even on the night the clocks change).
//! - A start that does not exist (the hour skipped when clocks go forward) is read with the
//!   offset in force before the gap, as RFC 5545 does: `30 2 * * *` in America/New_York opens at
//!   03:30 EDT on the spring-forward day.
//! - A start that happens twice (the hour repeated when clocks go back) opens once, at its first
//!   occurrence: `30 1 * * *` in America/New_York opens at 01:30 EDT on the fall-back day.
//! - Freeze dates close whole local days, from the day's first instant to the next day's.

use chrono::{NaiveDate, Timelike};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;

use super::schedule::Schedule;

/// How far ahead the next opening is searched, in days.
pub const NEXT_OPENING_HORIZON_DAYS: u32 = 400;

/// How far ahead the closing of an open window is searched, in days: further than the longest
/// window (7 days), so an open window's end is always found unless windows overlap all along.
const CLOSING_LOOKAHEAD_DAYS: i64 = 8;

/// The longest window, in milliseconds (config refuses longer ones).
pub const MAX_WINDOW_MS: i64 = 7 * DAY_MS;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One recurring window: opens at each fire time of `start`, stays open for `duration_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub name: String,
    pub start: Schedule,
    pub duration_ms: i64,
}

/// Local days on which deploys are closed, `from` to `to` inclusive.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeDates {
    pub from: Date,
    pub to: Date,
    pub reason: String,
}

/// A service's deploy windows: when none are listed, deploys are open at any time outside the
/// freeze dates.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployWindows {
    pub time_zone: TimeZone,
    /// The zone's name as configured (`UTC`, `Europe/London`).
    pub zone_name: String,
    pub windows: Vec<Window>,
    pub freeze_dates: Vec<FreezeDates>,
}

/// Whether deploys may move at an instant.
#[derive(Debug, Clone, PartialEq)]
pub enum WindowState {
    /// Deploys may move; `closes_at_ms` is when they no longer may (`None`: not within the
    /// search, or never).
    Open {
        closes_at_ms: Option<i64>,
    },
    Closed(ClosedWindow),
}

impl Default for WindowState {
    /// No windows configured: always open.
    fn default() -> Self {
        WindowState::Open { closes_at_ms: None }
    }
}

/// Why deploys may not move now, and when they next may.
#[derive(Debug, Clone, PartialEq)]
pub struct ClosedWindow {
    /// What closes it: outside every window, or a freeze date.
    pub reason: String,
    /// The next opening, ms since the epoch; `None` when none is within
    /// [`NEXT_OPENING_HORIZON_DAYS`].
    pub opens_at_ms: Option<i64>,
    /// The next opening for people: `opens Tue 2026-12-08 02:00 UTC`, in the configured zone
    /// and UTC.
    pub opens: String,
}

/// One occurrence of a window: opens at `start_ms`, closes at `end_ms`.
#[derive(Debug, Clone, Copy)]
struct Occurrence {
    start_ms: i64,
    end_ms: i64,
}

impl DeployWindows {
    /// Whether deploys may move at `now_ms`.
    pub fn state_at(&self, now_ms: i64) -> WindowState {
        let today = self.local_date(now_ms);
        if let Some(freeze) = self.freeze_on(today) {
            let reason = format!("{today} is a freeze date ({})", freeze.reason);
            return self.closed(now_ms, today, reason);
        }
        if self.within_a_window(now_ms, today) {
            return WindowState::Open {
                closes_at_ms: self.closes_after(now_ms, today),
            };
        }
        let reason = format!("outside every deploy window ({})", self.describe_windows());
        self.closed(now_ms, today, reason)
    }

    /// The windows for people: `weeknights: 0 2 * * TUE-THU for 2h, UTC`.
    pub fn describe_windows(&self) -> String {
        let windows: Vec<String> = self
            .windows
            .iter()
            .map(|window| {
                format!(
                    "{}: {} for {}",
                    window.name,
                    window.start.as_str(),
                    describe_duration(window.duration_ms)
                )
            })
            .collect();
        format!("{}, {}", windows.join("; "), self.zone_name)
    }

    /// An instant for people, in the configured zone and in UTC.
    pub fn describe_instant(&self, at_ms: i64) -> String {
        let instant = timestamp(at_ms);
        let utc = instant.to_zoned(TimeZone::UTC);
        let utc_text = format!("{} UTC", utc.strftime("%a %Y-%m-%d %H:%M"));
        if self.time_zone == TimeZone::UTC {
            return utc_text;
        }
        let local = instant.to_zoned(self.time_zone.clone());
        format!(
            "{} {} ({utc_text})",
            local.strftime("%a %Y-%m-%d %H:%M %Z"),
            self.zone_name
        )
    }

    fn closed(&self, now_ms: i64, today: Date, reason: String) -> WindowState {
        let opens_at_ms = self.next_opening(now_ms, today);
        let opens = match opens_at_ms {
            Some(at) => format!("opens {}", self.describe_instant(at)),
            None => format!("does not open within {NEXT_OPENING_HORIZON_DAYS} days"),
        };
        WindowState::Closed(ClosedWindow {
            reason,
            opens_at_ms,
            opens,
        })
    }

    /// Whether `at_ms` falls on one of the freeze dates (whole local days).
    pub fn is_freeze_date(&self, at_ms: i64) -> bool {
        self.freeze_on(self.local_date(at_ms)).is_some()
    }

    fn local_date(&self, at_ms: i64) -> Date {
        timestamp(at_ms).to_zoned(self.time_zone.clone()).date()
    }

    fn freeze_on(&self, day: Date) -> Option<&FreezeDates> {
        self.freeze_dates
            .iter()
            .find(|freeze| freeze.from <= day && day <= freeze.to)
    }

    /// The first instant of a local day (after a gap at midnight, the first that exists).
    fn day_start_ms(&self, day: Date) -> Option<i64> {
        self.time_zone
            .to_ambiguous_timestamp(day.at(0, 0, 0, 0))
            .compatible()
            .ok()
            .map(Timestamp::as_millisecond)
    }

    /// Every window's occurrences starting on the local `day`, earliest first.
    fn occurrences_on(&self, day: Date) -> Vec<Occurrence> {
        let Some(naive_day) =
            NaiveDate::from_ymd_opt(i32::from(day.year()), day.month() as u32, day.day() as u32)
        else {
            return Vec::new();
        };
        let mut occurrences: Vec<Occurrence> = self
            .windows
            .iter()
            .flat_map(|window| {
                window
                    .start
                    .fire_times_on(naive_day)
                    .into_iter()
                    .filter_map(move |time| {
                        let civil = day.at(time.hour() as i8, time.minute() as i8, 0, 0);
                        let start = self
                            .time_zone
                            .to_ambiguous_timestamp(civil)
                            .compatible()
                            .ok()?
                            .as_millisecond();
                        Some(Occurrence {
                            start_ms: start,
                            end_ms: start.saturating_add(window.duration_ms),
                        })
                    })
            })
            .collect();
        occurrences.sort_by_key(|occurrence| occurrence.start_ms);
        occurrences
    }

    /// How many local days before an instant a window open at it may have started.
    fn lookback_days(&self) -> i64 {
        let longest = self
            .windows
            .iter()
            .map(|window| window.duration_ms)
            .max()
            .unwrap_or(0);
        longest.div_euclid(DAY_MS) + 2
    }

    /// Whether an occurrence covers `at_ms` (freeze dates aside); always when no windows are
    /// listed. Looks at the local `day` first, then the days before it a window may have started.
    fn within_a_window(&self, at_ms: i64, day: Date) -> bool {
        if self.windows.is_empty() {
            return true;
        }
        (0..=self.lookback_days()).any(|days_back| {
            self.occurrences_on(shift_days(day, -days_back))
                .iter()
                .any(|occurrence| occurrence.start_ms <= at_ms && at_ms < occurrence.end_ms)
        })
    }

    /// When an open window closes: the end of the occurrences that run into each other from
    /// `now_ms`, or the start of the next freeze date, whichever is first. Days are read in
    /// order and the search stops at the first gap.
    fn closes_after(&self, now_ms: i64, today: Date) -> Option<i64> {
        let next_freeze = self
            .freeze_dates
            .iter()
            .filter(|freeze| freeze.from > today)
            .filter_map(|freeze| self.day_start_ms(freeze.from))
            .min();
        if self.windows.is_empty() {
            return next_freeze;
        }
        let last_day = shift_days(today, CLOSING_LOOKAHEAD_DAYS);
        let searched_until = self.day_start_ms(last_day).unwrap_or(i64::MAX);
        let mut end = now_ms;
        let mut day = shift_days(today, -self.lookback_days());
        while day <= last_day {
            for occurrence in self.occurrences_on(day) {
                // Occurrences come earliest first: one that starts after the end is a gap.
                if occurrence.start_ms > end {
                    return Some(next_freeze.map_or(end, |freeze| freeze.min(end)));
                }
                end = end.max(occurrence.end_ms);
            }
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => break,
            }
        }
        if end >= searched_until {
            return next_freeze.filter(|freeze| *freeze <= searched_until);
        }
        Some(next_freeze.map_or(end, |freeze| freeze.min(end)))
    }

    /// The first instant after `now_ms` at which deploys may move: a window opening on a day
    /// that is not frozen, or the first instant of the day after a freeze when a window covers
    /// it. Searched day by day, at most [`NEXT_OPENING_HORIZON_DAYS`] ahead.
    fn next_opening(&self, now_ms: i64, today: Date) -> Option<i64> {
        let mut day = today;
        let mut day_before_frozen = false;
        for _ in 0..=NEXT_OPENING_HORIZON_DAYS {
            if self.freeze_on(day).is_some() {
                day_before_frozen = true;
            } else {
                if day_before_frozen {
                    if let Some(start) = self.day_start_ms(day) {
                        if start > now_ms && self.within_a_window(start, day) {
                            return Some(start);
                        }
                    }
                }
                if let Some(occurrence) = self
                    .occurrences_on(day)
                    .into_iter()
                    .find(|occurrence| occurrence.start_ms > now_ms)
                {
                    return Some(occurrence.start_ms);
                }
                day_before_frozen = false;
            }
            day = day.tomorrow().ok()?;
        }
        None
    }
}

/// The instant of `at_ms`, clamped to the range jiff represents.
fn timestamp(at_ms: i64) -> Timestamp {
    Timestamp::from_millisecond(at_ms).unwrap_or(if at_ms < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// `day` moved by `days` (clamped at the ends of the calendar).
fn shift_days(day: Date, days: i64) -> Date {
    day.checked_add(jiff::Span::new().days(days)).unwrap_or(day)
}

/// `2h`, `90m`, `1d`: the largest unit that divides the duration.
fn describe_duration(duration_ms: i64) -> String {
    let minutes = duration_ms / 60_000;
    if minutes % (24 * 60) == 0 {
        format!("{}d", minutes / (24 * 60))
    } else if minutes % 60 == 0 {
        format!("{}h", minutes / 60)
    } else {
        format!("{minutes}m")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 60 * 60 * 1000;

    fn zone(name: &str) -> TimeZone {
        jiff::tz::TimeZoneDatabase::bundled()
            .get(name)
            .expect("the bundled database knows the zone")
    }

    fn windows(zone_name: &str, specs: &[(&str, i64)]) -> DeployWindows {
        DeployWindows {
            time_zone: zone(zone_name),
            zone_name: zone_name.to_string(),
            windows: specs
                .iter()
                .enumerate()
                .map(|(index, (start, hours))| Window {
                    name: format!("w{index}"),
                    start: Schedule::parse(start).unwrap(),
                    duration_ms: hours * HOUR_MS,
                })
                .collect(),
            freeze_dates: Vec::new(),
        }
    }

    /// `2026-12-03T02:00:00Z`-style text to ms.
    fn utc(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    /// A civil time in `zone_name` (`2026-03-08T03:30`) to ms, taking the earlier of two.
    fn local(zone_name: &str, text: &str) -> i64 {
        let civil: jiff::civil::DateTime = text.parse().unwrap();
        zone(zone_name)
            .to_ambiguous_timestamp(civil)
            .earlier()
            .unwrap()
            .as_millisecond()
    }

    fn date(text: &str) -> Date {
        text.parse().unwrap()
    }

    fn seed_003() -> DeployWindows {
        let mut seed = windows("UTC", &[]);
        seed.windows = vec![Window {
            name: "weeknights".into(),
            start: Schedule::parse("0 2 * * TUE-THU").unwrap(),
            duration_ms: 2 * HOUR_MS,
        }];
        seed
    }

    fn closed(state: WindowState) -> ClosedWindow {
        match state {
            WindowState::Closed(closed) => closed,
            open => panic!("expected closed, got {open:?}"),
        }
    }

    #[test]
    fn seed_003_deploys_tuesday_to_thursday_from_two_to_four_utc_never_on_friday() {
        let seed = seed_003();
        // 2026-12-01 is a Tuesday, 2026-12-03 a Thursday, 2026-12-04 a Friday.
        for open_at in [
            "2026-12-01T02:00:00Z",
            "2026-12-02T03:30:00Z",
            "2026-12-03T03:59:59Z",
        ] {
            assert!(
                matches!(seed.state_at(utc(open_at)), WindowState::Open { .. }),
                "{open_at}"
            );
        }
        assert_eq!(
            seed.state_at(utc("2026-12-03T02:10:00Z")),
            WindowState::Open {
                closes_at_ms: Some(utc("2026-12-03T04:00:00Z"))
            }
        );
        let at_four = closed(seed.state_at(utc("2026-12-03T04:00:00Z")));
        assert_eq!(at_four.opens_at_ms, Some(utc("2026-12-08T02:00:00Z")));
        assert_eq!(at_four.opens, "opens Tue 2026-12-08 02:00 UTC");
        assert_eq!(
            at_four.reason,
            "outside every deploy window (weeknights: 0 2 * * TUE-THU for 2h, UTC)"
        );
        let friday = closed(seed.state_at(utc("2026-12-04T02:30:00Z")));
        assert_eq!(friday.opens_at_ms, Some(utc("2026-12-08T02:00:00Z")));
        let before = closed(seed.state_at(utc("2026-12-01T01:59:59Z")));
        assert_eq!(before.opens_at_ms, Some(utc("2026-12-01T02:00:00Z")));
        // Monday 02:00 is not a window either.
        assert!(matches!(
            seed.state_at(utc("2026-11-30T02:30:00Z")),
            WindowState::Closed(_)
        ));
    }

    #[test]
    fn freeze_dates_close_whole_local_days_and_the_next_opening_skips_them() {
        let mut seed = seed_003();
        seed.freeze_dates = vec![
            FreezeDates {
                from: date("2026-12-24"),
                to: date("2027-01-02"),
                reason: "year-end holidays".into(),
            },
            FreezeDates {
                from: date("2026-12-09"),
                to: date("2026-12-09"),
                reason: "audit".into(),
            },
        ];
        // Wednesday 2026-12-09 is frozen: closed in the middle of its window.
        let audit = closed(seed.state_at(utc("2026-12-09T02:30:00Z")));
        assert_eq!(audit.reason, "2026-12-09 is a freeze date (audit)");
        assert_eq!(audit.opens_at_ms, Some(utc("2026-12-10T02:00:00Z")));
        // Tuesday the 8th closes at 04:00 as usual (the freeze starts at midnight after it).
        assert_eq!(
            seed.state_at(utc("2026-12-08T03:00:00Z")),
            WindowState::Open {
                closes_at_ms: Some(utc("2026-12-08T04:00:00Z"))
            }
        );
        // Thursday 2026-12-24 is frozen; the next window is Tuesday 2027-01-05.
        let holidays = closed(seed.state_at(utc("2026-12-23T05:00:00Z")));
        assert_eq!(holidays.opens_at_ms, Some(utc("2027-01-05T02:00:00Z")));
        let christmas = closed(seed.state_at(utc("2026-12-24T02:30:00Z")));
        assert!(
            christmas.reason.contains("year-end holidays"),
            "{christmas:?}"
        );

        // Without windows, a freeze date still closes its days, from local midnight.
        let mut london = windows("Europe/London", &[]);
        london.freeze_dates = vec![FreezeDates {
            from: date("2026-07-01"),
            to: date("2026-07-01"),
            reason: "launch".into(),
        }];
        assert_eq!(
            london.state_at(local("Europe/London", "2026-06-30T12:00")),
            WindowState::Open {
                closes_at_ms: Some(local("Europe/London", "2026-07-01T00:00"))
            }
        );
        // 23:30 UTC on June 30 is already July 1 in London (BST).
        let frozen = closed(london.state_at(utc("2026-06-30T23:30:00Z")));
        assert_eq!(
            frozen.opens_at_ms,
            Some(local("Europe/London", "2026-07-02T00:00"))
        );
        assert_eq!(
            frozen.opens,
            "opens Thu 2026-07-02 00:00 BST Europe/London (Wed 2026-07-01 23:00 UTC)"
        );
    }

    #[test]
    fn a_window_running_past_midnight_into_a_freeze_date_closes_at_midnight() {
        let mut late = windows("UTC", &[("0 22 * * *", 4)]);
        late.freeze_dates = vec![FreezeDates {
            from: date("2026-12-25"),
            to: date("2026-12-25"),
            reason: "Christmas".into(),
        }];
        assert_eq!(
            late.state_at(utc("2026-12-24T23:00:00Z")),
            WindowState::Open {
                closes_at_ms: Some(utc("2026-12-25T00:00:00Z"))
            }
        );
        // The 25th is frozen, its 22:00 window included; that window runs into the 26th, so
        // deploys open at midnight, when the freeze ends.
        let christmas = closed(late.state_at(utc("2026-12-25T12:00:00Z")));
        assert_eq!(christmas.opens_at_ms, Some(utc("2026-12-26T00:00:00Z")));
    }

    #[test]
    fn spring_forward_a_start_in_the_skipped_hour_opens_after_the_gap() {
        // America/New_York skips 02:00-03:00 on 2026-03-08.
        let nightly = windows("America/New_York", &[("30 2 * * *", 1)]);
        let closed_before = closed(nightly.state_at(local("America/New_York", "2026-03-08T01:00")));
        assert_eq!(
            closed_before.opens_at_ms,
            Some(local("America/New_York", "2026-03-08T03:30"))
        );
        assert_eq!(
            closed_before.opens,
            "opens Sun 2026-03-08 03:30 EDT America/New_York (Sun 2026-03-08 07:30 UTC)"
        );
        assert_eq!(
            nightly.state_at(local("America/New_York", "2026-03-08T04:00")),
            WindowState::Open {
                closes_at_ms: Some(local("America/New_York", "2026-03-08T04:30"))
            }
        );
        // Europe/London skips 01:00-02:00 on 2026-03-29; a 01:15 window opens at 02:15 BST.
        let london = windows("Europe/London", &[("15 1 * * *", 1)]);
        let before = closed(london.state_at(utc("2026-03-29T00:30:00Z")));
        assert_eq!(before.opens_at_ms, Some(utc("2026-03-29T01:15:00Z")));
        // The next day, 01:15 exists again (BST, 00:15 UTC).
        let after = closed(london.state_at(utc("2026-03-29T03:00:00Z")));
        assert_eq!(after.opens_at_ms, Some(utc("2026-03-30T00:15:00Z")));
    }

    #[test]
    fn fall_back_a_start_in_the_repeated_hour_opens_once_at_its_first_occurrence() {
        // America/New_York repeats 01:00-02:00 on 2026-11-01 (EDT, then EST).
        let nightly = windows("America/New_York", &[("30 1 * * *", 1)]);
        let first = utc("2026-11-01T05:30:00Z"); // 01:30 EDT
        let second = utc("2026-11-01T06:30:00Z"); // 01:30 EST
        assert_eq!(
            nightly.state_at(first),
            WindowState::Open {
                closes_at_ms: Some(second)
            }
        );
        // One hour of elapsed time after it opened, at the second 01:30, it is closed until the
        // next night.
        let after = closed(nightly.state_at(second));
        assert_eq!(after.opens_at_ms, Some(utc("2026-11-02T06:30:00Z")));
        // Europe/London repeats 01:00-02:00 on 2026-10-25: 01:30 BST is 00:30 UTC.
        let london = windows("Europe/London", &[("30 1 * * *", 2)]);
        let before = closed(london.state_at(utc("2026-10-25T00:00:00Z")));
        assert_eq!(before.opens_at_ms, Some(utc("2026-10-25T00:30:00Z")));
        assert_eq!(
            london.state_at(utc("2026-10-25T01:45:00Z")),
            WindowState::Open {
                closes_at_ms: Some(utc("2026-10-25T02:30:00Z"))
            }
        );
    }

    #[test]
    fn a_window_in_a_zone_is_at_local_time_across_the_dst_change() {
        // 09:00 London: 08:00 UTC in summer, 09:00 UTC in winter.
        let mornings = windows("Europe/London", &[("0 9 * * MON-FRI", 1)]);
        assert!(matches!(
            mornings.state_at(utc("2026-10-23T08:30:00Z")),
            WindowState::Open { .. }
        ));
        assert!(matches!(
            mornings.state_at(utc("2026-10-26T08:30:00Z")),
            WindowState::Closed(_)
        ));
        assert!(matches!(
            mornings.state_at(utc("2026-10-26T09:30:00Z")),
            WindowState::Open { .. }
        ));
    }

    #[test]
    fn windows_that_run_into_each_other_close_at_the_end_of_the_last() {
        let back_to_back = windows(
            "UTC",
            &[("0 2 * * *", 2), ("0 4 * * *", 1), ("0 9 * * *", 1)],
        );
        assert_eq!(
            back_to_back.state_at(utc("2026-12-03T02:30:00Z")),
            WindowState::Open {
                closes_at_ms: Some(utc("2026-12-03T05:00:00Z"))
            }
        );
        // A window longer than a day, opened the day before.
        let weekend = windows("UTC", &[("0 18 * * FRI", 60)]);
        assert_eq!(
            weekend.state_at(utc("2026-12-06T12:00:00Z")),
            WindowState::Open {
                closes_at_ms: Some(utc("2026-12-07T06:00:00Z"))
            }
        );
    }

    #[test]
    fn a_schedule_that_never_fires_reports_no_opening_within_the_horizon() {
        let never = windows("UTC", &[("0 0 30 2 *", 1)]);
        let state = closed(never.state_at(utc("2026-12-03T00:00:00Z")));
        assert_eq!(state.opens_at_ms, None);
        assert_eq!(state.opens, "does not open within 400 days");
        assert_eq!(
            windows("UTC", &[]).state_at(utc("2026-12-03T00:00:00Z")),
            WindowState::Open { closes_at_ms: None }
        );
    }
}
