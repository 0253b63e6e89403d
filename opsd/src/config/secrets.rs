//! opsd.yaml's `secrets` block (named values read from opsd's environment or a file when a
//! release starts) and each service's release-environment rules: `env` keys, `env_from`
//! references to secrets, and `allow_env` for keys of the loader and search-path family. The
//! platform reads secret values from the [`SecretSource`]s defined here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::yaml::{line_of, names_or_none};
use crate::core::config_error::ConfigError;
use crate::core::release_env::{check_key, check_value};

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A variable of opsd's own environment.
    Environment(String),
    /// A file, read each time a release starts (one trailing newline is dropped).
    File(PathBuf),
}

impl SecretSource {
    /// How the source is shown: `opsd's environment variable X` or `file P`.
    pub fn describe(&self) -> String {
        match self {
            SecretSource::Environment(variable) => {
                format!("opsd's environment variable {variable}")
            }
            SecretSource::File(path) => format!("file {}", path.display()),
        }
    }
}

/// `secrets.<name>`: exactly one of `env` or `file`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSecret {
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    file: Option<String>,
}

/// Validates the `secrets` block; relative files resolve against `base_dir`.
pub(super) fn validate_secrets(
    file: &str,
    text: &str,
    base_dir: &Path,
    raw: BTreeMap<String, RawSecret>,
) -> Result<BTreeMap<String, SecretSource>, ConfigError> {
    let mut secrets = BTreeMap::new();
    for (name, raw_secret) in raw {
        let error = |message: String| ConfigError {
            file: file.to_string(),
            line: line_of(text, &name),
            column: None,
            field: Some(format!("secrets.{name}")),
            message,
        };
        if !is_secret_name(&name) {
            return Err(error(format!(
                "{name:?} is not a secret name; use letters, digits, '-' and '_'"
            )));
        }
        let source =
            match (raw_secret.env, raw_secret.file) {
                (Some(variable), None) => {
                    check_key(&variable, std::slice::from_ref(&variable))
                        .map_err(|violation| error(format!("env: {violation}")))?;
                    SecretSource::Environment(variable)
                }
                (None, Some(path)) if !path.trim().is_empty() => {
                    SecretSource::File(base_dir.join(path))
                }
                _ => return Err(error(
                    "give exactly one of env: <a variable of opsd's environment> or file: <path>"
                        .into(),
                )),
            };
        secrets.insert(name, source);
    }
    Ok(secrets)
}

fn is_secret_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
}

/// A service's release environment as opsd.yaml gives it.
pub(super) struct ReleaseEnvRules {
    pub env: BTreeMap<String, String>,
    pub env_from: BTreeMap<String, String>,
    pub allow_env: Vec<String>,
}

/// Checks a service's `env` keys and values, its `allow_env` and its `env_from` references.
/// `error(field, message)` builds the error for `services.<name>.<field>`.
pub(super) fn validate_release_env(
    rules: &ReleaseEnvRules,
    secrets: &BTreeMap<String, SecretSource>,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for key in &rules.allow_env {
        check_key(key, std::slice::from_ref(key))
            .map_err(|violation| error("allow_env", violation.to_string()))?;
    }
    for (key, value) in &rules.env {
        check_key(key, &rules.allow_env)
            .and_then(|()| check_value(key, value))
            .map_err(|violation| error(&format!("env.{key}"), violation.to_string()))?;
    }
    for (key, secret) in &rules.env_from {
        let field = format!("env_from.{key}");
        check_key(key, &rules.allow_env)
            .map_err(|violation| error(&field, violation.to_string()))?;
        if rules.env.contains_key(key) {
            return Err(error(
                &field,
                format!("{key} is also under env; give it one value"),
            ));
        }
        if !secrets.contains_key(secret) {
            return Err(error(
                &field,
                format!(
                    "{secret:?} is not under secrets; defined: {}",
                    names_or_none(secrets.keys())
                ),
            ));
        }
    }
    Ok(())
}
