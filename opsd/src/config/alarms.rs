//! The alarm rules opsd watches: `alarms_dir` when given (or `alarms/` beside opsd.yaml when it
//! exists), else the rules embedded in the binary; alarm names unique across files.

use std::collections::HashMap;
use std::path::Path;

use super::files::{load_alarm_dir, YamlFile};
use crate::core::alarms::{parse_alarm_file, AlarmRule};
use crate::core::config_error::{locate_list_field, ConfigError};

/// The alarm rules of R-ALARM-1 to R-ALARM-8 (docs/requirements.md, where every `R-` ID in this
/// file is listed), embedded so `opsd up` works from any directory.
const EMBEDDED_ALARMS: &[(&str, &str)] = &[
    (
        "lambda-error-rate.yaml",
        include_str!("../../../alarms/lambda-error-rate.yaml"),
    ),
    ("api-5xx.yaml", include_str!("../../../alarms/api-5xx.yaml")),
    (
        "p99-latency.yaml",
        include_str!("../../../alarms/p99-latency.yaml"),
    ),
    (
        "api-p95-latency.yaml",
        include_str!("../../../alarms/api-p95-latency.yaml"),
    ),
    ("rds-cpu.yaml", include_str!("../../../alarms/rds-cpu.yaml")),
    (
        "rds-free-storage.yaml",
        include_str!("../../../alarms/rds-free-storage.yaml"),
    ),
    (
        "lambda-throttles.yaml",
        include_str!("../../../alarms/lambda-throttles.yaml"),
    ),
    (
        "health-check.yaml",
        include_str!("../../../alarms/health-check.yaml"),
    ),
];

/// The rules of `alarms_dir` (relative to `base_dir`); without it, of `alarms/` when that
/// directory exists, else the embedded rules.
pub(super) fn load_alarms(
    alarms_dir: Option<&str>,
    base_dir: &Path,
) -> Result<Vec<AlarmRule>, ConfigError> {
    match alarms_dir {
        Some(dir) => load_alarm_dir(&base_dir.join(dir)),
        None => {
            let default_dir = base_dir.join("alarms");
            if default_dir.is_dir() {
                load_alarm_dir(&default_dir)
            } else {
                embedded_alarms()
            }
        }
    }
}

/// The rules of alarm files, in order. Alarm names must be unique across the files; the error
/// names both.
pub(super) fn parse_alarm_files(files: &[YamlFile]) -> Result<Vec<AlarmRule>, ConfigError> {
    let mut rules = Vec::new();
    let mut defined_in: HashMap<String, String> = HashMap::new();
    for file in files {
        for (index, rule) in parse_alarm_file(&file.path, &file.text)?
            .into_iter()
            .enumerate()
        {
            if let Some(first_file) = defined_in.get(&rule.name) {
                return Err(ConfigError::new(
                    &file.path,
                    format!(
                        "alarm {:?} is already defined in {first_file}; alarm names must be unique across files",
                        rule.name
                    ),
                )
                .with_field(format!("alarms[{index}].name"))
                .at(locate_list_field(&file.text, "alarms", index, Some("name"))));
            }
            defined_in.insert(rule.name.clone(), file.path.clone());
            rules.push(rule);
        }
    }
    Ok(rules)
}

/// The alarm rules embedded in the binary (R-ALARM-1 to R-ALARM-8).
pub fn embedded_alarm_rules() -> Vec<AlarmRule> {
    embedded_alarms().unwrap_or_default()
}

fn embedded_alarms() -> Result<Vec<AlarmRule>, ConfigError> {
    let mut rules = Vec::new();
    for (name, text) in EMBEDDED_ALARMS {
        rules.extend(parse_alarm_file(
            &format!("(embedded) alarms/{name}"),
            text,
        )?);
    }
    Ok(rules)
}
