//! Rollout plans as opsd.yaml and API callers name them: presets, plan files in `plans_dir` or
//! given by path ([`resolve_plan`]), plans by name only ([`named_plan`], never a path), the check
//! of every file in `plans_dir` ([`check_plan_files`]), and the check that a plan runs only
//! checks its service defines, reported at the plan file's own line.

use std::path::{Path, PathBuf};

use super::files::YamlFile;
use super::yaml::names_or_none;
use crate::core::config_error::{locate_list_field, ConfigError};
use crate::core::plan::{is_plain_name, parse_plan, preset, preset_names, RolloutPlan};

/// The default plan of a service that names none: 10 → 25 → 50 → 100 (R-CANARY-1 in
/// docs/requirements.md).
pub const DEFAULT_PLAN: &str = "SeedCanary";

/// Checks that every plan file of `plans_dir` (read by `files::read_plan_dir`) parses and keeps
/// the plan rules, named or not: a broken file is an error at its own path and line.
pub(super) fn check_plan_files(files: &[YamlFile]) -> Result<(), ConfigError> {
    for file in files {
        parse_plan(&file.path, &file.text)?;
    }
    Ok(())
}

/// A resolved plan and, unless it is a preset, the file it was read from.
pub(super) struct ResolvedPlan {
    pub plan: RolloutPlan,
    pub file: Option<YamlFile>,
}

/// A plan given on the command line or in opsd.yaml: a preset name, a path, or a file in
/// `plans_dir` (`<name>` or `<name>.yaml`).
pub(super) fn resolve_plan(
    name_or_file: &str,
    plans_dir: &Path,
) -> Result<ResolvedPlan, ConfigError> {
    if let Some(plan) = preset(name_or_file) {
        return Ok(ResolvedPlan { plan, file: None });
    }
    let candidates = [
        PathBuf::from(name_or_file),
        plans_dir.join(name_or_file),
        plans_dir.join(format!("{name_or_file}.yaml")),
    ];
    for candidate in candidates {
        if candidate.is_file() {
            let path = candidate.display().to_string();
            let text = std::fs::read_to_string(&candidate).map_err(|error| {
                ConfigError::new(&path, format!("cannot read the plan: {error}"))
            })?;
            let plan = parse_plan(&path, &text)?;
            return Ok(ResolvedPlan {
                plan,
                file: Some(YamlFile { path, text }),
            });
        }
    }
    Err(ConfigError {
        file: name_or_file.to_string(),
        line: None,
        column: None,
        field: Some("plan".into()),
        message: format!(
            "no preset and no plan file by this name; presets: {}",
            preset_names().join(", ")
        ),
    })
}

/// Checks that every check `resolved`'s steps run is defined for the service (`is_defined`).
/// An undefined check in a plan file is reported at that file's step; in a preset, by
/// `preset_error`.
pub(super) fn check_plan_checks(
    resolved: &ResolvedPlan,
    is_defined: &dyn Fn(&str) -> bool,
    defined_where: &str,
    preset_error: &dyn Fn(String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (index, step) in resolved.plan.steps.iter().enumerate() {
        for check in &step.checks {
            if is_defined(check) {
                continue;
            }
            let message = format!(
                "the plan runs check {check:?}, which is not defined under {defined_where}"
            );
            return Err(match &resolved.file {
                Some(file) => ConfigError::new(&file.path, message)
                    .with_field(format!("steps[{index}].checks"))
                    .at(locate_list_field(
                        &file.text,
                        "steps",
                        index,
                        Some("checks"),
                    )),
                None => preset_error(message),
            });
        }
    }
    Ok(())
}

/// Why a plan name from an API caller names no plan.
#[derive(Debug, thiserror::Error)]
pub enum NamedPlanError {
    #[error("a plan is given by name (a preset or a file in the plans directory, without a path) or as a plan document; a name holds letters, digits, '-', '_' and '.', and does not start with '.'; plans: {}; presets: {}", names_or_none(available), preset_names().join(", "))]
    NotAName { available: Vec<String> },
    #[error("no preset and no plan named {name:?} in the plans directory; plans: {}; presets: {}", names_or_none(available), preset_names().join(", "))]
    Unknown {
        name: String,
        available: Vec<String>,
    },
    #[error("the plan {name:?} in the plans directory cannot be read")]
    Unreadable { name: String },
    #[error(transparent)]
    Broken(ConfigError),
}

/// A plan by name, as an API caller may choose one: a preset, or a plan file in `plans_dir`
/// named `<name>.yaml`, `<name>.yml` or `<name>`. Never a path: a name with a separator or a
/// leading dot is refused, and a file that resolves outside `plans_dir` (a symlink) is not read.
/// Errors name the plans there are, never a path outside `plans_dir` or its content.
pub(super) fn named_plan(plans_dir: &Path, name: &str) -> Result<RolloutPlan, NamedPlanError> {
    if let Some(plan) = preset(name) {
        return Ok(plan);
    }
    if !is_plain_name(name) || name.starts_with('.') {
        return Err(NamedPlanError::NotAName {
            available: plan_names(plans_dir),
        });
    }
    let not_found = || NamedPlanError::Unknown {
        name: name.to_string(),
        available: plan_names(plans_dir),
    };
    let Ok(plans_dir) = plans_dir.canonicalize() else {
        return Err(not_found());
    };
    for candidate in [
        format!("{name}.yaml"),
        format!("{name}.yml"),
        name.to_string(),
    ] {
        let Ok(path) = plans_dir.join(&candidate).canonicalize() else {
            continue;
        };
        if path.parent() != Some(plans_dir.as_path()) || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|_| NamedPlanError::Unreadable {
            name: name.to_string(),
        })?;
        return parse_plan(&format!("plans/{candidate}"), &text).map_err(NamedPlanError::Broken);
    }
    Err(not_found())
}

/// The names of the plan files in `plans_dir` (without `.yaml`/`.yml`), sorted.
pub(super) fn plan_names(plans_dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(plans_dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.path().is_file())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter_map(|file| {
            file.strip_suffix(".yaml")
                .or_else(|| file.strip_suffix(".yml"))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, text: &str) -> YamlFile {
        YamlFile {
            path: path.into(),
            text: text.into(),
        }
    }

    #[test]
    fn every_plan_file_is_checked_whether_named_or_not() {
        let good = file("plans/good.yaml", "name: good\nsteps:\n  - weight: 100\n");
        assert!(check_plan_files(std::slice::from_ref(&good)).is_ok());
        let broken = file(
            "plans/broken.yaml",
            "name: broken\nsteps:\n  - weight: 10\n    bake: 1m\n  - weight: 5\n",
        );
        let error = check_plan_files(&[good, broken]).unwrap_err();
        assert_eq!(error.file, "plans/broken.yaml");
        assert_eq!(error.line, Some(5), "{error}");
        assert_eq!(error.field.as_deref(), Some("steps[1].weight"));
    }

    #[test]
    fn an_undefined_check_is_reported_at_the_plan_file_line() {
        let text = "name: nightly\nsteps:\n  - weight: 10\n    bake: 1m\n    checks: [smoke, nightly]\n  - weight: 100\n";
        let resolved = ResolvedPlan {
            plan: parse_plan("plans/nightly.yaml", text).unwrap(),
            file: Some(file("plans/nightly.yaml", text)),
        };
        let defined = |check: &str| check == "smoke";
        let unused = |message: String| ConfigError::new("opsd.yaml", message);
        let error =
            check_plan_checks(&resolved, &defined, "services.steno.checks", &unused).unwrap_err();
        assert_eq!(error.file, "plans/nightly.yaml");
        assert_eq!((error.line, error.column), (Some(5), Some(5)));
        assert_eq!(error.field.as_deref(), Some("steps[0].checks"));
        assert!(error.message.contains("\"nightly\""), "{error}");
        let all = |_: &str| true;
        assert!(check_plan_checks(&resolved, &all, "checks", &unused).is_ok());
    }
}
