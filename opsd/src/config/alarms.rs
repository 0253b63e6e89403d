//! The alarm rules opsd watches: `alarms_dir` when given (or `alarms/` beside opsd.yaml when it
//! exists), else the rules embedded in the binary; alarm names unique across files; and what each
//! rule's `notify` list names among the configured notification targets.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::files::{load_alarm_dir, YamlFile};
use crate::core::alarms::{parse_alarm_file, AlarmRule};
use crate::core::config_error::{locate_list_field, ConfigError};
use crate::notify::NotificationTarget;

/// The alarm rules of R-ALARM-1 to R-ALARM-9 (docs/requirements.md, where every `R-` ID in this
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
    (
        "response-time-sla.yaml",
        include_str!("../../../alarms/response-time-sla.yaml"),
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

/// The alarm rules embedded in the binary (R-ALARM-1 to R-ALARM-9).
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

/// What a rule's `notify` entry names: a target under `notifications.targets` by its name, else
/// every configured target of a kind (`slack`, `pagerduty`, `sns`). The alarm's notifications go
/// to these targets and, in any case, to the targets of the routes its severity meets.
pub const TARGET_KINDS: [&str; 3] = ["slack", "pagerduty", "sns"];

/// Each rule's own targets, by rule name: its `notify` entries resolved against the configured
/// targets. With no targets configured nothing is sent anywhere and nothing is checked; with
/// targets, an entry that is neither a target's name nor a target kind is an error naming the
/// rule, the entry and the targets there are (an alarm must not lose a receiver silently).
pub(super) fn resolve_alarm_targets(
    file: &str,
    rules: &[AlarmRule],
    targets: &[NotificationTarget],
) -> Result<BTreeMap<String, Vec<String>>, ConfigError> {
    let mut resolved = BTreeMap::new();
    if targets.is_empty() {
        return Ok(resolved);
    }
    for rule in rules {
        let mut names: Vec<String> = Vec::new();
        for entry in &rule.notify {
            let matching: Vec<&str> = match targets.iter().find(|target| &target.name == entry) {
                Some(target) => vec![target.name.as_str()],
                None if TARGET_KINDS.contains(&entry.as_str()) => targets
                    .iter()
                    .filter(|target| target.kind.label() == entry)
                    .map(|target| target.name.as_str())
                    .collect(),
                None => {
                    let configured: Vec<&str> =
                        targets.iter().map(|target| target.name.as_str()).collect();
                    return Err(ConfigError::new(
                        file,
                        format!(
                            "alarm {:?} notifies {entry:?}, which is neither a target under notifications.targets ({}) nor a kind of target ({}); name a configured target or a kind",
                            rule.name,
                            configured.join(", "),
                            TARGET_KINDS.join(", ")
                        ),
                    )
                    .with_field(format!("alarms.{}.notify", rule.name)));
                }
            };
            for name in matching {
                if !names.iter().any(|known| known == name) {
                    names.push(name.to_string());
                }
            }
        }
        resolved.insert(rule.name.clone(), names);
    }
    Ok(resolved)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(
        notifications: &str,
        alarm: &str,
    ) -> Result<Config, crate::core::config_error::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("alarms")).unwrap();
        std::fs::write(
            dir.path().join("alarms/rule.yaml"),
            format!("alarms:\n  - name: errors\n    metric: error_rate\n    comparison: \">\"\n    threshold: 0.1\n    period: 1m\n    severity: warning\n    {alarm}\n"),
        )
        .unwrap();
        Config::parse(
            "opsd.yaml",
            &format!("services:\n  steno: {{}}\n{notifications}"),
            dir.path(),
            Path::new("/usr/bin/steno"),
        )
    }

    const TARGETS: &str = "notifications:\n  targets:\n    - {name: pager, kind: pagerduty, routing_key: k}\n    - {name: chat, kind: slack, webhook_url: \"http://127.0.0.1:9/a\"}\n    - {name: chat2, kind: slack, webhook_url: \"http://127.0.0.1:9/b\"}\n  routes:\n    - {min_severity: critical, targets: [pager]}\n";

    #[test]
    fn notify_entries_name_targets_or_every_target_of_a_kind() {
        let config = parse(TARGETS, "notify: [pager, slack, chat]").unwrap();
        assert_eq!(config.alarm_targets["errors"], ["pager", "chat", "chat2"]);
        let config = parse(TARGETS, "notify: [sns]").unwrap();
        assert!(
            config.alarm_targets["errors"].is_empty(),
            "a kind without targets adds none; the routes still apply"
        );
    }

    #[test]
    fn an_entry_that_names_no_target_and_no_kind_is_refused_with_the_targets_listed() {
        let error = parse(TARGETS, "notify: [pagr]").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("alarms.errors.notify"));
        assert!(error.message.contains("\"pagr\""), "{error}");
        assert!(error.message.contains("pager, chat, chat2"), "{error}");
        assert!(error.message.contains("slack, pagerduty, sns"), "{error}");
    }

    #[test]
    fn without_targets_nothing_is_sent_and_nothing_is_checked() {
        let config = parse("", "notify: [anything]").unwrap();
        assert!(config.alarm_targets.is_empty());
    }
}
