//! Reading the files opsd.yaml points at: plan files, the alarm directory, drill checks files.
//! Parsing and checking them is the core's (`core::plan`, `core::alarms`) and the section
//! validators'; this module only finds and reads the files, so those stay free of I/O.

use std::path::Path;

use crate::core::alarms::AlarmRule;
use crate::core::config_error::ConfigError;
use crate::core::plan::{parse_plan, RolloutPlan};

/// A file's name as errors show it, and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlFile {
    pub path: String,
    pub text: String,
}

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
    let files = read_yaml_dir(dir, "alarm directory", "alarm file", false)?;
    super::alarms::parse_alarm_files(&files)
}

/// Every `*.yaml` and `*.yml` file of the plans directory, in file-name order; none when the
/// directory does not exist (plans are optional).
///
/// A file that resolves outside the directory (a symlink out of it) is not a plan: it is never
/// read, as a deploy naming it would be refused (`Config::named_plan`).
pub(super) fn read_plan_dir(dir: &Path) -> Result<Vec<YamlFile>, ConfigError> {
    if !dir.exists() {
        return Ok(Vec::new());
    }
    read_yaml_dir(dir, "plans directory", "plan", true)
}

/// A drill checks file.
pub(super) fn read_checks_file(path: &Path) -> std::io::Result<YamlFile> {
    Ok(YamlFile {
        path: path.display().to_string(),
        text: std::fs::read_to_string(path)?,
    })
}

/// Every `*.yaml` and `*.yml` regular file directly in `dir`, in file-name order. `what_dir` and
/// `what_file` name them in errors. With `inside_only`, files that resolve outside `dir` are
/// left out unread.
fn read_yaml_dir(
    dir: &Path,
    what_dir: &str,
    what_file: &str,
    inside_only: bool,
) -> Result<Vec<YamlFile>, ConfigError> {
    let dir_name = dir.display().to_string();
    let unreadable = |error: std::io::Error| {
        ConfigError::new(&dir_name, format!("cannot read the {what_dir}: {error}"))
    };
    let resolved_dir = dir.canonicalize().map_err(unreadable)?;
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        let is_yaml = path
            .extension()
            .and_then(|extension| extension.to_str())
            .is_some_and(|extension| extension == "yaml" || extension == "yml");
        let inside = !inside_only
            || path
                .canonicalize()
                .is_ok_and(|resolved| resolved.parent() == Some(resolved_dir.as_path()));
        if is_yaml && path.is_file() && inside {
            paths.push(path);
        }
    }
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let file_name = path.display().to_string();
            let text = std::fs::read_to_string(&path).map_err(|error| {
                ConfigError::new(&file_name, format!("cannot read the {what_file}: {error}"))
            })?;
            Ok(YamlFile {
                path: file_name,
                text,
            })
        })
        .collect()
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
    fn plan_files_that_resolve_outside_the_plans_directory_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("secret.yaml");
        std::fs::write(&outside, "not: a plan").unwrap();
        let plans = dir.path().join("plans");
        std::fs::create_dir(&plans).unwrap();
        std::fs::write(plans.join("nightly.yaml"), "steps: []\n").unwrap();
        std::os::unix::fs::symlink(&outside, plans.join("escape.yaml")).unwrap();
        let files = read_plan_dir(&plans).unwrap();
        let names: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(
            names,
            vec![plans.join("nightly.yaml").display().to_string()]
        );
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

    #[test]
    fn reads_the_plan_files_of_a_directory_in_order() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_plan_dir(&dir.path().join("missing"))
            .unwrap()
            .is_empty());
        std::fs::write(dir.path().join("b.yml"), "b").unwrap();
        std::fs::write(dir.path().join("a.yaml"), "a").unwrap();
        std::fs::write(dir.path().join("README.md"), "not a plan").unwrap();
        std::fs::create_dir(dir.path().join("old.yaml")).unwrap();
        let files = read_plan_dir(dir.path()).unwrap();
        let texts: Vec<&str> = files.iter().map(|file| file.text.as_str()).collect();
        assert_eq!(texts, ["a", "b"]);
        assert!(files[0].path.ends_with("a.yaml"));
    }
}
