//! Reading the plan and alarm files opsd.yaml points at. Parsing and checking them is the core's
//! (`core::plan`, `core::alarms`); this module only finds and reads the files, so the core stays
//! free of I/O.

use std::collections::HashMap;
use std::path::Path;

use crate::core::alarms::{parse_alarm_file, AlarmRule};
use crate::core::config_error::{locate_list_field, ConfigError};
use crate::core::plan::{parse_plan, RolloutPlan};

/// Reads a custom plan from a YAML file.
pub fn load_plan_file(path: &Path) -> Result<RolloutPlan, ConfigError> {
    let file_name = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|error| ConfigError::new(&file_name, format!("cannot read the plan: {error}")))?;
    parse_plan(&file_name, &text)
}

/// Reads every `*.yaml` and `*.yml` file of `dir`, in file-name order. Alarm names must be unique
/// across the files; the error names both.
pub fn load_alarm_dir(dir: &Path) -> Result<Vec<AlarmRule>, ConfigError> {
    let dir_name = dir.display().to_string();
    let entries = std::fs::read_dir(dir).map_err(|error| {
        ConfigError::new(
            &dir_name,
            format!("cannot read the alarm directory: {error}"),
        )
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|error| {
            ConfigError::new(
                &dir_name,
                format!("cannot read the alarm directory: {error}"),
            )
        })?;
        let path = entry.path();
        let is_yaml = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extension == "yaml" || extension == "yml");
        if is_yaml && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();

    let mut rules = Vec::new();
    let mut defined_in: HashMap<String, String> = HashMap::new();
    for path in paths {
        let file_name = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|error| {
            ConfigError::new(&file_name, format!("cannot read the alarm file: {error}"))
        })?;
        for (index, rule) in parse_alarm_file(&file_name, &text)?.into_iter().enumerate() {
            if let Some(first_file) = defined_in.get(&rule.name) {
                return Err(ConfigError::new(
                    &file_name,
                    format!(
                        "alarm {:?} is already defined in {first_file}; alarm names must be unique across files",
                        rule.name
                    ),
                )
                .with_field(format!("alarms[{index}].name"))
                .at(locate_list_field(&text, "alarms", index, Some("name"))));
            }
            defined_in.insert(rule.name.clone(), file_name.clone());
            rules.push(rule);
        }
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule_named(name: &str) -> String {
        format!(
            "alarms:\n  - name: {name}\n    metric: error_rate\n    comparison: \">\"\n    threshold: 0.01\n    period: 1m\n    severity: critical\n"
        )
    }

    #[test]
    fn loads_a_directory_and_rejects_names_used_twice() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.yml"), rule_named("second")).unwrap();
        std::fs::write(dir.path().join("a.yaml"), rule_named("first")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not an alarm").unwrap();
        let rules = load_alarm_dir(dir.path()).unwrap();
        let names: Vec<&str> = rules.iter().map(|rule| rule.name.as_str()).collect();
        assert_eq!(names, vec!["first", "second"]);

        std::fs::write(dir.path().join("c.yaml"), rule_named("first")).unwrap();
        let error = load_alarm_dir(dir.path()).unwrap_err();
        assert!(error.file.ends_with("c.yaml"), "{error}");
        assert!(error.message.contains("a.yaml"), "{error}");
        assert_eq!(
            (error.line, error.field.as_deref()),
            (Some(2), Some("alarms[0].name"))
        );

        assert!(load_alarm_dir(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn loads_a_plan_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fast-demo.yaml");
        std::fs::write(
            &path,
            "name: fast-demo\nsteps:\n  - weight: 10\n    bake: 20s\n  - weight: 100\n",
        )
        .unwrap();
        assert_eq!(load_plan_file(&path).unwrap().name, "fast-demo");
        let missing = load_plan_file(&dir.path().join("nope.yaml")).unwrap_err();
        assert!(missing.to_string().contains("nope.yaml"), "{missing}");
    }
}
