//! What every section validator shares: the opsd.yaml being validated ([`Source`]), the line a
//! key is written on, duration fields with defaults, and name lists for error messages.

use std::path::Path;
use std::time::Duration;

use crate::core::config_error::ConfigError;
use crate::core::duration::parse_duration;

/// The opsd.yaml being validated: its name for errors, its text for line numbers, and the
/// directory its relative paths resolve against.
#[derive(Debug, Clone, Copy)]
pub(super) struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
    pub base_dir: &'a Path,
}

impl Source<'_> {
    /// The first line (1-based) where `key:` is written.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        line_of(self.text, key)
    }

    /// An error about the top-level or `analysis` field `field`, on the line that writes it.
    pub fn field_error(&self, field: &str, message: String) -> ConfigError {
        self.error(self.line_of(field), field.to_string(), message)
    }

    /// An error about `field`, placed on `line`.
    pub fn error(&self, line: Option<usize>, field: String, message: String) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line,
            column: None,
            field: Some(field),
            message,
        }
    }
}

/// The first line (1-based) where `key:` appears, to point errors at it.
pub(super) fn line_of(text: &str, key: &str) -> Option<usize> {
    let needle = format!("{key}:");
    text.lines()
        .position(|line| {
            line.trim_start()
                .trim_start_matches("- ")
                .starts_with(&needle)
        })
        .map(|index| index + 1)
}

/// A duration field: parsed when given, `default` when not; `error(field, message)` builds the
/// error.
pub(super) fn duration_field(
    value: Option<&str>,
    field: &str,
    default: Duration,
    error: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Duration, ConfigError> {
    match value {
        Some(text) => parse_duration(text).map_err(|message| error(field, message)),
        None => Ok(default),
    }
}

/// `a, b, c`, or `none`.
pub(super) fn names_or_none<'a>(names: impl IntoIterator<Item = &'a String>) -> String {
    let names: Vec<&str> = names.into_iter().map(String::as_str).collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}
