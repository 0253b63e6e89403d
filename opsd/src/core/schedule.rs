//! Cron-like schedules (`0 3 * * *`, `0 2 * * TUE-THU`, `@daily`, `@quarterly`): parsing, the
//! latest fire at or before a moment, the fire times of one day, and whether a periodic job (a DR
//! drill) is overdue. Times are civil (a drill's are UTC; a deploy window's are in its zone). Pure.

use chrono::{Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, NaiveTime, Timelike};

/// A parsed five-field schedule: minute, hour, day of month, month, day of week (0 or 7 = Sunday;
/// `SUN`-`SAT` and `JAN`-`DEC` are accepted in any case).
/// As in cron, when both day of month and day of week are restricted a day matches either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    text: String,
    minutes: Vec<u32>,
    hours: Vec<u32>,
    days_of_month: Vec<u32>,
    months: Vec<u32>,
    days_of_week: Vec<u32>,
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
}

/// Day-of-week names, Sunday = 0.
const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Month names, January = 1.
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

/// Named schedules, expanded to five fields.
const ALIASES: &[(&str, &str)] = &[
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@quarterly", "0 0 1 1,4,7,10 *"),
    ("@yearly", "0 0 1 1 *"),
];

impl Schedule {
    /// Parses `minute hour day-of-month month day-of-week` or an alias (`@hourly`, `@daily`,
    /// `@weekly`, `@monthly`, `@quarterly`, `@yearly`). Each field takes `*`, `5`, `1-5`, `*/15`,
    /// `0-30/10` and comma lists of those.
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let trimmed = text.trim();
        let expanded = ALIASES
            .iter()
            .find(|(alias, _)| *alias == trimmed)
            .map(|(_, fields)| *fields)
            .unwrap_or(trimmed);
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "{text:?} has {} fields; a schedule is `minute hour day-of-month month day-of-week` \
                 (e.g. `0 3 * * *` for 03:00 UTC daily) or one of {}",
                fields.len(),
                ALIASES
                    .iter()
                    .map(|(alias, _)| *alias)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let minutes = parse_field(fields[0], "minute", 0, 59, &[])?;
        let hours = parse_field(fields[1], "hour", 0, 23, &[])?;
        let days_of_month = parse_field(fields[2], "day of month", 1, 31, &[])?;
        let months = parse_field(fields[3], "month", 1, 12, &MONTH_NAMES)?;
        let mut days_of_week = parse_field(fields[4], "day of week", 0, 7, &DAY_NAMES)?;
        if days_of_week.contains(&7) {
            days_of_week.retain(|day| *day != 7);
            if !days_of_week.contains(&0) {
                days_of_week.insert(0, 0);
            }
        }
        Ok(Schedule {
            text: trimmed.to_string(),
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            day_of_month_restricted: fields[2] != "*",
            day_of_week_restricted: fields[4] != "*",
        })
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn day_matches(&self, day: NaiveDate) -> bool {
        if !self.months.contains(&day.month()) {
            return false;
        }
        let by_month_day = self.days_of_month.contains(&day.day());
        let by_week_day = self
            .days_of_week
            .contains(&day.weekday().num_days_from_sunday());
        match (self.day_of_month_restricted, self.day_of_week_restricted) {
            (true, true) => by_month_day || by_week_day,
            (true, false) => by_month_day,
            (false, true) => by_week_day,
            (false, false) => true,
        }
    }

    /// The latest fire time at or before `at` (seconds are ignored), looking back at most about
    /// four years; `None` when the schedule never fired in that span (e.g. `0 0 30 2 *`).
    pub fn previous_fire(&self, at: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut day = at.date();
        let mut latest_time = Some(NaiveTime::from_hms_opt(at.hour(), at.minute(), 0)?);
        for _ in 0..(366 * 4 + 1) {
            if self.day_matches(day) {
                if let Some(time) = self.latest_time_in_day(latest_time) {
                    return Some(day.and_time(time));
                }
            }
            day = day.pred_opt()?;
            latest_time = None;
        }
        None
    }

    /// The next fire time strictly after `at`, looking ahead at most about four years.
    pub fn next_fire(&self, at: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut day = at.date();
        let mut earliest_after = Some(NaiveTime::from_hms_opt(at.hour(), at.minute(), 0)?);
        for _ in 0..(366 * 4 + 1) {
            if self.day_matches(day) {
                let found = self.hours.iter().find_map(|&hour| {
                    self.minutes.iter().find_map(|&minute| {
                        let time = NaiveTime::from_hms_opt(hour, minute, 0)?;
                        match earliest_after {
                            Some(after) if time <= after => None,
                            _ => Some(time),
                        }
                    })
                });
                if let Some(time) = found {
                    return Some(day.and_time(time));
                }
            }
            day = day.succ_opt()?;
            earliest_after = None;
        }
        None
    }

    /// The fire times on `day`, earliest first (none when the day does not match).
    pub fn fire_times_on(&self, day: NaiveDate) -> Vec<NaiveTime> {
        if !self.day_matches(day) {
            return Vec::new();
        }
        self.hours
            .iter()
            .flat_map(|&hour| {
                self.minutes
                    .iter()
                    .filter_map(move |&minute| NaiveTime::from_hms_opt(hour, minute, 0))
            })
            .collect()
    }

    fn latest_time_in_day(&self, at_or_before: Option<NaiveTime>) -> Option<NaiveTime> {
        self.hours.iter().rev().find_map(|&hour| {
            self.minutes.iter().rev().find_map(|&minute| {
                let time = NaiveTime::from_hms_opt(hour, minute, 0)?;
                match at_or_before {
                    Some(limit) if time > limit => None,
                    _ => Some(time),
                }
            })
        })
    }
}

/// One field; `names` spell the values from `low` on (`MON` for 1 in the day of week).
fn parse_field(
    text: &str,
    name: &str,
    low: u32,
    high: u32,
    names: &[&str],
) -> Result<Vec<u32>, String> {
    let mut values = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .ok()
                    .filter(|step| *step > 0)
                    .ok_or_else(|| format!("{name} step {step:?} must be a positive number"))?;
                (range, step)
            }
            None => (part, 1),
        };
        let (start, end) = if range == "*" {
            (low, high)
        } else if let Some((start, end)) = range.split_once('-') {
            (
                number(start, name, low, high, names)?,
                number(end, name, low, high, names)?,
            )
        } else {
            let single = number(range, name, low, high, names)?;
            let end = if part.contains('/') { high } else { single };
            (single, end)
        };
        if start > end {
            return Err(format!("{name} range {range:?} runs backwards"));
        }
        values.extend((start..=end).step_by(step as usize));
    }
    values.sort_unstable();
    values.dedup();
    Ok(values)
}

fn number(text: &str, name: &str, low: u32, high: u32, names: &[&str]) -> Result<u32, String> {
    let named = names
        .iter()
        .position(|known| known.eq_ignore_ascii_case(text))
        .map(|index| low + index as u32);
    let value: u32 = match named {
        Some(value) => value,
        None => text.parse().map_err(|_| {
            if names.is_empty() {
                format!("{name} {text:?} is not a number")
            } else {
                format!(
                    "{name} {text:?} is not a number or one of {}",
                    names.join(", ")
                )
            }
        })?,
    };
    if value < low || value > high {
        return Err(format!("{name} {value} is outside {low}-{high}"));
    }
    Ok(value)
}

/// Whether a job on `schedule` is overdue at `now`: a fire passed more than `grace` ago and no
/// run started since it. `last_run` is when the newest run started (`None`: never ran).
pub fn is_overdue(
    schedule: &Schedule,
    last_run: Option<NaiveDateTime>,
    now: NaiveDateTime,
    grace: ChronoDuration,
) -> Option<NaiveDateTime> {
    let due_fire = schedule.previous_fire(now - grace)?;
    match last_run {
        Some(started) if started >= due_fire => None,
        _ => Some(due_fire),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn daily_at_three_fires_at_three() {
        let schedule = Schedule::parse("0 3 * * *").unwrap();
        assert_eq!(
            schedule.previous_fire(at("2026-11-22 10:15")),
            Some(at("2026-11-22 03:00"))
        );
        assert_eq!(
            schedule.previous_fire(at("2026-11-22 02:59")),
            Some(at("2026-11-21 03:00"))
        );
        assert_eq!(
            schedule.next_fire(at("2026-11-22 03:00")),
            Some(at("2026-11-23 03:00"))
        );
    }

    #[test]
    fn quarterly_is_the_first_of_each_quarter() {
        let schedule = Schedule::parse("@quarterly").unwrap();
        assert_eq!(
            schedule.previous_fire(at("2026-11-22 10:00")),
            Some(at("2026-10-01 00:00"))
        );
        assert_eq!(
            schedule.next_fire(at("2026-11-22 10:00")),
            Some(at("2027-01-01 00:00"))
        );
    }

    #[test]
    fn steps_ranges_lists_and_sunday_as_seven() {
        let every_15 = Schedule::parse("*/15 * * * *").unwrap();
        assert_eq!(
            every_15.previous_fire(at("2026-11-22 10:44")),
            Some(at("2026-11-22 10:30"))
        );
        let weekdays = Schedule::parse("30 2 * * 1-5").unwrap();
        // 2026-11-22 is a Sunday: the previous weekday fire is Friday the 20th.
        assert_eq!(
            weekdays.previous_fire(at("2026-11-22 12:00")),
            Some(at("2026-11-20 02:30"))
        );
        let sundays = Schedule::parse("0 4 * * 7").unwrap();
        assert_eq!(
            sundays.previous_fire(at("2026-11-22 12:00")),
            Some(at("2026-11-22 04:00"))
        );
        let listed = Schedule::parse("0 1,13 * * *").unwrap();
        assert_eq!(
            listed.previous_fire(at("2026-11-22 12:00")),
            Some(at("2026-11-22 01:00"))
        );
    }

    #[test]
    fn day_and_month_names_in_any_case_and_the_fire_times_of_a_day() {
        let weeknights = Schedule::parse("0 2 * * TUE-thu").unwrap();
        assert_eq!(
            weeknights.days_of_week,
            Schedule::parse("0 2 * * 2-4").unwrap().days_of_week
        );
        // 2026-12-03 is a Thursday, 2026-12-04 a Friday.
        let thursday = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap();
        assert_eq!(
            weeknights.fire_times_on(thursday),
            vec![NaiveTime::from_hms_opt(2, 0, 0).unwrap()]
        );
        assert!(weeknights
            .fire_times_on(thursday.succ_opt().unwrap())
            .is_empty());
        let summer = Schedule::parse("30 9,17 * Jun-AUG sat,SUN").unwrap();
        let saturday = NaiveDate::from_ymd_opt(2026, 7, 4).unwrap();
        assert_eq!(summer.fire_times_on(saturday).len(), 2);
        assert!(summer
            .fire_times_on(NaiveDate::from_ymd_opt(2026, 12, 5).unwrap())
            .is_empty());
    }

    #[test]
    fn leap_day_schedules_fire_only_in_leap_years() {
        let leap_day = Schedule::parse("0 0 29 2 *").unwrap();
        assert_eq!(
            leap_day.previous_fire(at("2026-11-22 00:00")),
            Some(at("2024-02-29 00:00"))
        );
        assert_eq!(
            leap_day.next_fire(at("2026-11-22 00:00")),
            Some(at("2028-02-29 00:00"))
        );
        let never = Schedule::parse("0 0 30 2 *").unwrap();
        assert_eq!(never.previous_fire(at("2026-11-22 00:00")), None);
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        assert!(Schedule::parse("0 3 * *").unwrap_err().contains("4 fields"));
        assert!(Schedule::parse("61 3 * * *")
            .unwrap_err()
            .contains("minute 61 is outside 0-59"));
        assert!(Schedule::parse("0 3 * * funday")
            .unwrap_err()
            .contains("day of week \"funday\" is not a number or one of SUN, MON"));
        assert!(Schedule::parse("0 3 * MON *")
            .unwrap_err()
            .contains("month \"MON\""));
        assert!(Schedule::parse("*/0 * * * *")
            .unwrap_err()
            .contains("positive"));
        assert!(Schedule::parse("0 5-2 * * *")
            .unwrap_err()
            .contains("backwards"));
    }

    #[test]
    fn overdue_after_a_missed_fire_and_its_grace() {
        let daily = Schedule::parse("0 3 * * *").unwrap();
        let grace = ChronoDuration::hours(1);
        // Never ran: overdue since the last fire.
        assert_eq!(
            is_overdue(&daily, None, at("2026-11-22 10:00"), grace),
            Some(at("2026-11-22 03:00"))
        );
        // Ran after today's fire: fine.
        assert_eq!(
            is_overdue(
                &daily,
                Some(at("2026-11-22 03:05")),
                at("2026-11-22 10:00"),
                grace
            ),
            None
        );
        // Ran yesterday; today's fire is within its grace: not yet overdue.
        assert_eq!(
            is_overdue(
                &daily,
                Some(at("2026-11-21 03:05")),
                at("2026-11-22 03:30"),
                grace
            ),
            None
        );
        // ...and overdue once the grace has passed.
        assert_eq!(
            is_overdue(
                &daily,
                Some(at("2026-11-21 03:05")),
                at("2026-11-22 04:01"),
                grace
            ),
            Some(at("2026-11-22 03:00"))
        );
    }
}
