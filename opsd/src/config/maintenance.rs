//! `maintenance`: scheduled maintenance windows (R-WINDOW-1), e.g. the seed's Sunday 02:00-04:00
//! UTC announced 7 days before:
//!
//! ```yaml
//! maintenance:
//!   windows:
//!     - name: weekly
//!       start: "0 2 * * 0"      # cron-like, UTC
//!       duration: 2h
//!       announce: 7d
//!       message: "Weekly maintenance, Sunday 02:00-04:00 UTC"
//!       deploys: true         # also a deploy window (the default); false keeps it closed
//! ```

use std::time::Duration;

use serde::Deserialize;

use super::yaml::{duration_field, Source};
use crate::core::config_error::ConfigError;
use crate::core::maintenance::ScheduledMaintenance;
use crate::core::plan::is_plain_name;
use crate::core::schedule::Schedule;

/// The longest message a window may show (it is a banner line, not a page).
pub const MAX_MAINTENANCE_MESSAGE: usize = 300;
/// The longest a scheduled window may last.
const MAX_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest a window may be announced ahead.
const MAX_ANNOUNCE: Duration = Duration::from_secs(90 * 24 * 3600);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMaintenance {
    #[serde(default)]
    windows: Vec<RawMaintenanceWindow>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaintenanceWindow {
    name: String,
    start: String,
    duration: String,
    message: String,
    #[serde(default)]
    announce: Option<String>,
    /// Whether deploys may move during the window although the deploy windows are closed.
    #[serde(default = "yes")]
    deploys: bool,
}

fn yes() -> bool {
    true
}

/// Checks a maintenance message given in opsd.yaml or by an operator: non-blank, one line, at
/// most [`MAX_MAINTENANCE_MESSAGE`] characters.
pub fn check_maintenance_message(message: &str) -> Result<String, String> {
    let message = message.trim();
    if message.is_empty() {
        return Err("the message is empty; say what users will notice, like \"Steno is read-only until 04:00 UTC\"".into());
    }
    if message.chars().count() > MAX_MAINTENANCE_MESSAGE {
        return Err(format!(
            "the message has {} characters; at most {MAX_MAINTENANCE_MESSAGE} fit a banner",
            message.chars().count()
        ));
    }
    if message.chars().any(char::is_control) {
        return Err("the message must be one line without control characters".into());
    }
    Ok(message.to_string())
}

pub(super) fn validate_maintenance(
    source: &Source<'_>,
    raw: Option<RawMaintenance>,
) -> Result<Vec<ScheduledMaintenance>, ConfigError> {
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let mut windows: Vec<ScheduledMaintenance> = Vec::new();
    for (index, window) in raw.windows.into_iter().enumerate() {
        let field = |name: &str| format!("maintenance.windows[{index}].{name}");
        let error =
            |name: &str, message: String| source.error(source.line_of(name), field(name), message);
        let name = window.name.trim().to_string();
        if !is_plain_name(&name) {
            return Err(error(
                "name",
                "a window's name uses 1 to 100 letters, digits, '-', '_' or '.'".into(),
            ));
        }
        if windows.iter().any(|other| other.name == name) {
            return Err(error("name", format!("two windows are named {name:?}")));
        }
        let start = Schedule::parse(&window.start).map_err(|message| error("start", message))?;
        let duration = duration_field(Some(&window.duration), "duration", Duration::ZERO, &error)?;
        if duration.is_zero() || duration > MAX_WINDOW {
            return Err(error(
                "duration",
                "a window lasts more than 0 and at most 7d, like `duration: 2h`".into(),
            ));
        }
        let announce = duration_field(
            window.announce.as_deref(),
            "announce",
            Duration::ZERO,
            &error,
        )?;
        if announce > MAX_ANNOUNCE {
            return Err(error(
                "announce",
                "a window is announced at most 90d ahead".into(),
            ));
        }
        let message = check_maintenance_message(&window.message)
            .map_err(|message| error("message", message))?;
        windows.push(ScheduledMaintenance {
            name,
            start,
            duration,
            message,
            announce,
            allows_deploys: window.deploys,
        });
    }
    Ok(windows)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(maintenance: &str) -> Result<Config, String> {
        Config::parse(
            "opsd.yaml",
            &format!("services:\n  steno:\n    initial_version: v1\nmaintenance:\n{maintenance}"),
            Path::new("/nonexistent"),
            Path::new("/usr/bin/steno"),
        )
        .map_err(|error| error.to_string())
    }

    /// R-WINDOW-1: the seed's window reads as written.
    #[test]
    fn the_seed_window_is_read() {
        let config = parse(
            "  windows:\n    - name: weekly\n      start: \"0 2 * * 0\"\n      duration: 2h\n      announce: 7d\n      message: Weekly maintenance\n",
        )
        .unwrap();
        let window = &config.maintenance[0];
        assert_eq!(window.duration.as_secs(), 7200);
        assert_eq!(window.announce.as_secs(), 7 * 86400);
        assert!(
            window.allows_deploys,
            "a maintenance window is also a deploy window"
        );
        let closed = parse(
            "  windows:\n    - {name: w, start: \"0 2 * * 0\", duration: 1h, message: m, deploys: false}\n",
        )
        .unwrap();
        assert!(!closed.maintenance[0].allows_deploys);
    }

    #[test]
    fn bad_windows_name_the_field_and_line() {
        let cases = [
            ("  windows:\n    - {name: w, start: \"0 2 * * 0\", duration: 0s, message: m}\n", "maintenance.windows[0].duration"),
            ("  windows:\n    - {name: w, start: \"0 25 * * 0\", duration: 1h, message: m}\n", "maintenance.windows[0].start"),
            ("  windows:\n    - {name: w, start: \"0 2 * * 0\", duration: 1h, message: \"  \"}\n", "maintenance.windows[0].message"),
            ("  windows:\n    - {name: w, start: \"0 2 * * 0\", duration: 1h, message: m, announce: 100d}\n", "maintenance.windows[0].announce"),
            ("  windows:\n    - {name: \"a b\", start: \"0 2 * * 0\", duration: 1h, message: m}\n", "maintenance.windows[0].name"),
        ];
        for (text, field) in cases {
            let error = parse(text).unwrap_err();
            assert!(error.contains(field), "{field}: {error}");
        }
        let unknown = parse("  windowz: []\n").unwrap_err();
        assert!(unknown.contains("windowz"), "{unknown}");
    }

    #[test]
    fn messages_are_one_short_line() {
        assert_eq!(
            super::check_maintenance_message("  Upgrading  ").unwrap(),
            "Upgrading"
        );
        assert!(super::check_maintenance_message(&"x".repeat(301)).is_err());
        assert!(super::check_maintenance_message("a\nb").is_err());
        assert!(super::check_maintenance_message("").is_err());
    }
}
