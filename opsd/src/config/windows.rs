//! opsd.yaml's `deploy_windows` (and a service's own `services.<name>.deploy_windows`): the time
//! zone, what a deploy outside every window does (`refuse` or `queue`), the windows (a cron-like
//! start and a duration) and the freeze dates, validated into [`DeployWindowsConfig`] with the
//! core's [`DeployWindows`]. The time zone database is the one built into opsd, so a zone means
//! the same on every machine, however its system zoneinfo is (or is not) installed.

use std::collections::BTreeMap;

use jiff::civil::Date;
use jiff::tz::TimeZoneDatabase;
use serde::Deserialize;

use super::services::ServiceConfig;
use super::yaml::Source;
use crate::core::config_error::ConfigError;
use crate::core::drill::GateMode;
use crate::core::duration::parse_duration;
use crate::core::schedule::Schedule;
use crate::core::window::{DeployWindows, FreezeDates, Window, MAX_WINDOW_MS};

/// At most this many windows and this many freeze date entries per section.
const MAX_WINDOWS: usize = 50;
const MAX_FREEZE_DATES: usize = 500;
/// The longest freeze date reason, in characters (it is shown in every refusal).
const MAX_REASON_CHARS: usize = 200;

/// `deploy_windows` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDeployWindows {
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    outside: Option<String>,
    #[serde(default)]
    windows: Vec<RawWindow>,
    #[serde(default)]
    freeze_dates: Vec<RawFreezeDate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    duration: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreezeDate {
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// A service's deploy windows.
#[derive(Debug, Clone, PartialEq)]
pub struct DeployWindowsConfig {
    /// What a deploy outside every window does: `Refuse` (the default) or `Hold` (`queue`: the
    /// rollout is created and starts by itself when a window opens).
    pub outside: GateMode,
    pub windows: DeployWindows,
}

/// Where a `deploy_windows` section is written: its field prefix for errors and its line.
pub(super) struct SectionAt {
    pub prefix: String,
    pub line: Option<usize>,
}

impl SectionAt {
    /// The top-level section, at the line `deploy_windows:` starts without indentation.
    pub fn top_level(source: &Source) -> SectionAt {
        SectionAt {
            prefix: "deploy_windows".into(),
            line: source
                .text
                .lines()
                .position(|line| line.starts_with("deploy_windows:"))
                .map(|index| index + 1),
        }
    }

    /// `services.<name>.deploy_windows`, at its first `deploy_windows:` after the service's
    /// name.
    pub fn service(source: &Source, name: &str) -> SectionAt {
        let after = source.line_of(name).unwrap_or(1);
        SectionAt {
            prefix: format!("services.{name}.deploy_windows"),
            line: key_line_after(source.text, after, "deploy_windows").or(Some(after)),
        }
    }
}

/// The section validated.
pub(super) fn validate_deploy_windows(
    source: &Source,
    at: &SectionAt,
    raw: RawDeployWindows,
) -> Result<DeployWindowsConfig, ConfigError> {
    let section_line = at.line.unwrap_or(1);
    let error = |field: &str, line: Option<usize>, message: String| {
        source.error(line.or(at.line), format!("{}.{field}", at.prefix), message)
    };
    let field_line = |key: &str| key_line_after(source.text, section_line, key);

    let zone_name = raw.time_zone.unwrap_or_else(|| "UTC".to_string());
    let time_zone = TimeZoneDatabase::bundled()
        .get(zone_name.trim())
        .map_err(|_| {
            error(
                "time_zone",
                field_line("time_zone"),
                format!(
                    "{:?} is not a time zone of the IANA database; use a name like UTC, \
                     Europe/London or America/New_York",
                    zone_name.chars().take(60).collect::<String>()
                ),
            )
        })?;
    let outside = match raw.outside.as_deref() {
        None | Some("refuse") => GateMode::Refuse,
        Some("queue") => GateMode::Hold,
        Some(other) => {
            return Err(error(
                "outside",
                field_line("outside"),
                format!(
                    "{:?} is not refuse or queue",
                    other.chars().take(60).collect::<String>()
                ),
            ))
        }
    };
    if raw.windows.len() > MAX_WINDOWS {
        return Err(error(
            "windows",
            field_line("windows"),
            format!("has {} windows; at most {MAX_WINDOWS}", raw.windows.len()),
        ));
    }
    if raw.freeze_dates.len() > MAX_FREEZE_DATES {
        return Err(error(
            "freeze_dates",
            field_line("freeze_dates"),
            format!(
                "has {} entries; at most {MAX_FREEZE_DATES} (use from/to for a range)",
                raw.freeze_dates.len()
            ),
        ));
    }

    let windows_line = field_line("windows").unwrap_or(section_line);
    let mut windows = Vec::new();
    for (index, raw_window) in raw.windows.into_iter().enumerate() {
        let item_line = list_item_line(source.text, windows_line, index);
        let item_error = |key: &str, message: String| {
            let line = item_line.and_then(|line| key_line_after(source.text, line, key));
            error(
                &format!("windows[{index}].{key}"),
                line.or(item_line),
                message,
            )
        };
        windows.push(validate_window(index, raw_window, &item_error)?);
    }

    let freeze_line = field_line("freeze_dates").unwrap_or(section_line);
    let mut freeze_dates = Vec::new();
    for (index, raw_freeze) in raw.freeze_dates.into_iter().enumerate() {
        let item_line = list_item_line(source.text, freeze_line, index);
        let item_error = |key: &str, message: String| {
            let line = item_line.and_then(|line| key_line_after(source.text, line, key));
            error(
                &format!("freeze_dates[{index}].{key}"),
                line.or(item_line),
                message,
            )
        };
        freeze_dates.push(validate_freeze_date(raw_freeze, &item_error)?);
    }
    Ok(DeployWindowsConfig {
        outside,
        windows: DeployWindows {
            time_zone,
            zone_name: zone_name.trim().to_string(),
            windows,
            freeze_dates,
        },
    })
}

/// Gives every service without a `deploy_windows` of its own the top-level section.
pub(super) fn apply_to_services(
    top_level: Option<DeployWindowsConfig>,
    services: &mut BTreeMap<String, ServiceConfig>,
) {
    let Some(top_level) = top_level else {
        return;
    };
    for service in services.values_mut() {
        if service.deploy_windows.is_none() {
            service.deploy_windows = Some(top_level.clone());
        }
    }
}

type ItemError<'a> = dyn Fn(&str, String) -> ConfigError + 'a;

fn validate_window(
    index: usize,
    raw: RawWindow,
    error: &ItemError<'_>,
) -> Result<Window, ConfigError> {
    let name = raw
        .name
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| format!("windows[{index}]"));
    if name.chars().count() > 60 {
        return Err(error("name", "is longer than 60 characters".into()));
    }
    let start_text = raw.start.ok_or_else(|| {
        error(
            "start",
            "is missing; write when the window opens like start: \"0 2 * * TUE-THU\" \
             (minute hour day-of-month month day-of-week)"
                .into(),
        )
    })?;
    let start = Schedule::parse(&start_text).map_err(|message| error("start", message))?;
    let duration_text = raw.duration.ok_or_else(|| {
        error(
            "duration",
            "is missing; write how long the window stays open, like duration: 2h".into(),
        )
    })?;
    let duration = parse_duration(&duration_text).map_err(|message| error("duration", message))?;
    let duration_ms = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
    if !(60_000..=MAX_WINDOW_MS).contains(&duration_ms) {
        return Err(error(
            "duration",
            format!("{duration_text:?} must be between 1m and 7d"),
        ));
    }
    Ok(Window {
        name,
        start,
        duration_ms,
    })
}

fn validate_freeze_date(
    raw: RawFreezeDate,
    error: &ItemError<'_>,
) -> Result<FreezeDates, ConfigError> {
    let parse = |key: &str, text: &str| -> Result<Date, ConfigError> {
        text.trim().parse::<Date>().map_err(|_| {
            error(
                key,
                format!(
                    "{:?} is not a date like 2026-12-25",
                    text.chars().take(40).collect::<String>()
                ),
            )
        })
    };
    let (from, to) = match (&raw.date, &raw.from, &raw.to) {
        (Some(date), None, None) => {
            let day = parse("date", date)?;
            (day, day)
        }
        (None, Some(from), Some(to)) => (parse("from", from)?, parse("to", to)?),
        (Some(_), _, _) => {
            return Err(error(
                "date",
                "give either date (one day) or from and to (a range), not both".into(),
            ))
        }
        (None, Some(_), None) => {
            return Err(error(
                "to",
                "is missing; a range needs from and to (both days included)".into(),
            ))
        }
        (None, None, _) => {
            return Err(error(
                "date",
                "is missing; write date: 2026-12-25, or from: and to: for a range".into(),
            ))
        }
    };
    if from > to {
        return Err(error("to", format!("{to} is before from ({from})")));
    }
    let reason = raw
        .reason
        .map(|reason| reason.trim().to_string())
        .filter(|reason| !reason.is_empty())
        .ok_or_else(|| {
            error(
                "reason",
                "is missing; it is shown to everyone whose deploy the date refuses".into(),
            )
        })?;
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(error(
            "reason",
            format!("is longer than {MAX_REASON_CHARS} characters; say it shorter"),
        ));
    }
    Ok(FreezeDates { from, to, reason })
}

/// The first line (1-based) at or after `from_line` that writes `key:` (in block or flow style).
fn key_line_after(text: &str, from_line: usize, key: &str) -> Option<usize> {
    let needle = format!("{key}:");
    text.lines()
        .enumerate()
        .skip(from_line.saturating_sub(1))
        .find(|(_, line)| {
            line.match_indices(&needle).any(|(at, _)| {
                line[..at]
                    .chars()
                    .next_back()
                    .is_none_or(|before| before == ' ' || before == '{' || before == '-')
            })
        })
        .map(|(index, _)| index + 1)
}

/// The line of the `index`-th `- ` item after the list key on `list_line`, or that line itself
/// when the list is written inline (`windows: [...]`).
fn list_item_line(text: &str, list_line: usize, index: usize) -> Option<usize> {
    let inline = text
        .lines()
        .nth(list_line.saturating_sub(1))
        .is_some_and(|line| line.contains('['));
    if inline {
        return Some(list_line);
    }
    text.lines()
        .enumerate()
        .skip(list_line)
        .filter(|(_, line)| line.trim_start().starts_with("- "))
        .nth(index)
        .map(|(line_index, _)| line_index + 1)
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;
    use crate::core::drill::GateMode;
    use crate::core::window::WindowState;

    const SEED_003: &str = "services:\n  steno: {}\n  billing: {}\ndeploy_windows:\n  time_zone: UTC\n  outside: refuse\n  windows:\n    - {name: weeknights, start: \"0 2 * * TUE-THU\", duration: 2h}\n  freeze_dates:\n    - {date: 2026-12-25, reason: Christmas}\n    - {from: 2026-12-24, to: 2027-01-02, reason: year-end holidays}\n";

    #[test]
    fn the_seed_schedule_applies_to_every_service_without_its_own() {
        let config = parse(SEED_003).unwrap();
        let steno = config.services["steno"].deploy_windows.as_ref().unwrap();
        assert_eq!(steno.outside, GateMode::Refuse);
        assert_eq!(steno.windows.windows[0].name, "weeknights");
        assert_eq!(steno.windows.freeze_dates.len(), 2);
        assert_eq!(
            config.services["billing"].deploy_windows.as_ref(),
            Some(steno)
        );
        // Friday 2026-12-04 02:30 UTC is closed.
        assert!(matches!(
            steno.windows.state_at(1_796_437_800_000),
            WindowState::Closed(_)
        ));
        let none = parse("services:\n  steno: {}\n").unwrap();
        assert!(none.services["steno"].deploy_windows.is_none());
    }

    #[test]
    fn a_service_may_have_its_own_windows_in_its_own_zone() {
        let config = parse(
            "services:\n  steno:\n    deploy_windows:\n      time_zone: Europe/London\n      outside: queue\n      windows:\n        - name: mornings\n          start: \"0 9 * * mon-fri\"\n          duration: 90m\n  billing: {}\ndeploy_windows:\n  windows: [{start: \"0 2 * * *\", duration: 1h}]\n",
        )
        .unwrap();
        let steno = config.services["steno"].deploy_windows.as_ref().unwrap();
        assert_eq!(steno.outside, GateMode::Hold);
        assert_eq!(steno.windows.zone_name, "Europe/London");
        assert_eq!(steno.windows.windows[0].duration_ms, 90 * 60_000);
        let billing = config.services["billing"].deploy_windows.as_ref().unwrap();
        assert_eq!(billing.windows.zone_name, "UTC");
        assert_eq!(billing.windows.windows[0].name, "windows[0]");
    }

    #[test]
    fn bad_windows_and_freeze_dates_are_refused_at_their_line() {
        let error = |text: &str| parse(text).unwrap_err();
        let head = "services:\n  steno: {}\ndeploy_windows:\n";

        let bad_start = error(&format!(
            "{head}  windows:\n    - {{name: a, start: \"0 2 * * 1-5\", duration: 1h}}\n    - {{name: b, start: \"0 2 * * TUESDAY\", duration: 1h}}\n"
        ));
        assert_eq!(
            bad_start.field.as_deref(),
            Some("deploy_windows.windows[1].start")
        );
        assert_eq!(bad_start.line, Some(6), "{bad_start}");
        assert!(
            bad_start
                .message
                .contains("day of week \"TUESDAY\" is not a number or one of SUN"),
            "{bad_start}"
        );

        let block = error(&format!(
            "{head}  windows:\n    - name: a\n      start: \"0 25 * * *\"\n      duration: 1h\n"
        ));
        assert_eq!(
            block.field.as_deref(),
            Some("deploy_windows.windows[0].start")
        );
        assert_eq!(block.line, Some(6), "{block}");
        assert!(block.message.contains("hour 25 is outside 0-23"), "{block}");

        let long = error(&format!(
            "{head}  windows: [{{start: \"0 2 * * *\", duration: 8d}}]\n"
        ));
        assert_eq!(
            long.field.as_deref(),
            Some("deploy_windows.windows[0].duration")
        );
        assert!(long.message.contains("between 1m and 7d"), "{long}");
        let missing = error(&format!("{head}  windows: [{{start: \"0 2 * * *\"}}]\n"));
        assert!(missing.message.contains("like duration: 2h"), "{missing}");

        let zone = error(&format!("{head}  time_zone: Europe/Lundon\n"));
        assert_eq!(zone.field.as_deref(), Some("deploy_windows.time_zone"));
        assert_eq!(zone.line, Some(4));
        assert!(
            zone.message
                .contains("\"Europe/Lundon\" is not a time zone"),
            "{zone}"
        );

        let outside = error(&format!("{head}  outside: wait\n"));
        assert!(
            outside.message.contains("\"wait\" is not refuse or queue"),
            "{outside}"
        );

        let date = error(&format!(
            "{head}  freeze_dates:\n    - {{date: 2026-12-25, reason: Christmas}}\n    - {{date: 2026-13-01, reason: typo}}\n"
        ));
        assert_eq!(
            date.field.as_deref(),
            Some("deploy_windows.freeze_dates[1].date")
        );
        assert_eq!(date.line, Some(6), "{date}");
        assert!(
            date.message.contains("is not a date like 2026-12-25"),
            "{date}"
        );
        let backwards = error(&format!(
            "{head}  freeze_dates: [{{from: 2027-01-02, to: 2026-12-24, reason: r}}]\n"
        ));
        assert!(backwards
            .message
            .contains("2026-12-24 is before from (2027-01-02)"));
        let no_reason = error(&format!("{head}  freeze_dates: [{{date: 2026-12-25}}]\n"));
        assert_eq!(
            no_reason.field.as_deref(),
            Some("deploy_windows.freeze_dates[0].reason")
        );
        let half_range = error(&format!(
            "{head}  freeze_dates: [{{from: 2026-12-25, reason: r}}]\n"
        ));
        assert!(
            half_range.message.contains("needs from and to"),
            "{half_range}"
        );
        let unknown = error(&format!(
            "{head}  windows: [{{start: \"0 2 * * *\", duration: 1h, end: 3h}}]\n"
        ));
        assert!(unknown.to_string().contains("end"), "{unknown}");

        let service = error(
            "services:\n  steno:\n    deploy_windows:\n      windows: [{start: \"0 2 * * *\", duration: 0m}]\n",
        );
        assert_eq!(
            service.field.as_deref(),
            Some("services.steno.deploy_windows.windows[0].duration")
        );
        assert_eq!(service.line, Some(4), "{service}");
    }
}
