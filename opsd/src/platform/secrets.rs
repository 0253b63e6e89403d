//! Secrets a release's environment takes by reference (`env_from`): each is named in opsd.yaml's
//! `secrets` block and read from opsd's own environment or from a file at the moment a release
//! starts, so its value never enters the store, a view or a log.
//!
//! invariant: errors name the secret and where it should come from, never the value or any part
//! of a file's content.

use std::collections::{BTreeMap, HashMap};

pub use crate::config::SecretSource;
use crate::core::release_env::{check_value, MAX_VALUE_BYTES};

/// A secret that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("{key} takes secret {secret:?}, which opsd.yaml's `secrets` does not define")]
    Unknown { key: String, secret: String },
    #[error("secret {secret:?} comes from {source_described}, which is not set")]
    Missing {
        secret: String,
        source_described: String,
    },
    #[error("secret {secret:?} comes from {source_described}, which cannot be read: {reason}")]
    Unreadable {
        secret: String,
        source_described: String,
        reason: String,
    },
    #[error("secret {secret:?} from {source_described} is not usable as an environment value ({reason})")]
    Unusable {
        secret: String,
        source_described: String,
        reason: String,
    },
}

/// The secrets opsd.yaml defines, with a snapshot of opsd's environment taken by `main`.
#[derive(Clone, Default)]
pub struct Secrets {
    sources: BTreeMap<String, SecretSource>,
    environment: HashMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Secrets")
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    pub fn new(
        sources: BTreeMap<String, SecretSource>,
        environment: HashMap<String, String>,
    ) -> Secrets {
        Secrets {
            sources,
            environment,
        }
    }

    /// Whether opsd.yaml defines a secret by this name.
    pub fn defines(&self, secret: &str) -> bool {
        self.sources.contains_key(secret)
    }

    /// The value of every key of `env_from` (key → secret name).
    pub fn resolve(
        &self,
        env_from: &BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, SecretError> {
        env_from
            .iter()
            .map(|(key, secret)| Ok((key.clone(), self.value_of(key, secret)?)))
            .collect()
    }

    /// Reads every secret once, so `opsd up` names a missing one at start rather than at the
    /// first release that needs it.
    pub fn check_all(&self) -> Result<(), SecretError> {
        for secret in self.sources.keys() {
            self.value_of(secret, secret)?;
        }
        Ok(())
    }

    fn value_of(&self, key: &str, secret: &str) -> Result<String, SecretError> {
        let source = self
            .sources
            .get(secret)
            .ok_or_else(|| SecretError::Unknown {
                key: key.to_string(),
                secret: secret.to_string(),
            })?;
        let value = match source {
            SecretSource::Environment(variable) => self
                .environment
                .get(variable)
                .cloned()
                .ok_or_else(|| SecretError::Missing {
                    secret: secret.to_string(),
                    source_described: source.describe(),
                })?,
            SecretSource::File(path) => read_secret_file(secret, source, path)?,
        };
        check_value(key, &value).map_err(|violation| SecretError::Unusable {
            secret: secret.to_string(),
            source_described: source.describe(),
            reason: match violation {
                crate::core::release_env::EnvRuleViolation::ValueWithNul { .. } => {
                    "it contains a NUL byte".to_string()
                }
                _ => format!("it is longer than {MAX_VALUE_BYTES} bytes"),
            },
        })?;
        Ok(value)
    }
}

fn read_secret_file(
    secret: &str,
    source: &SecretSource,
    path: &std::path::Path,
) -> Result<String, SecretError> {
    use std::io::Read;
    let unreadable = |reason: String| SecretError::Unreadable {
        secret: secret.to_string(),
        source_described: source.describe(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|error| unreadable(error.kind().to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_VALUE_BYTES as u64 + 2)
        .read_to_end(&mut bytes)
        .map_err(|error| unreadable(error.kind().to_string()))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.len() > MAX_VALUE_BYTES {
        return Err(SecretError::Unusable {
            secret: secret.to_string(),
            source_described: source.describe(),
            reason: format!("it is longer than {MAX_VALUE_BYTES} bytes"),
        });
    }
    String::from_utf8(bytes).map_err(|_| SecretError::Unusable {
        secret: secret.to_string(),
        source_described: source.describe(),
        reason: "it is not UTF-8 text".to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(dir: &std::path::Path) -> Secrets {
        let sources = [
            (
                "anthropic".to_string(),
                SecretSource::Environment("OPSD_TEST_ANTHROPIC".into()),
            ),
            ("jwt".to_string(), SecretSource::File(dir.join("jwt"))),
            (
                "absent".to_string(),
                SecretSource::File(dir.join("no-such-file")),
            ),
            (
                "unset".to_string(),
                SecretSource::Environment("OPSD_TEST_UNSET".into()),
            ),
        ]
        .into_iter()
        .collect();
        let environment = [("OPSD_TEST_ANTHROPIC".to_string(), "sk-123".to_string())]
            .into_iter()
            .collect();
        Secrets::new(sources, environment)
    }

    fn refs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(key, secret)| (key.to_string(), secret.to_string()))
            .collect()
    }

    #[test]
    fn secrets_come_from_the_environment_snapshot_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwt"), "file-secret\n").unwrap();
        let values = secrets(dir.path())
            .resolve(&refs(&[
                ("ANTHROPIC_API_KEY", "anthropic"),
                ("STENO_JWT_SECRET", "jwt"),
            ]))
            .unwrap();
        assert_eq!(values["ANTHROPIC_API_KEY"], "sk-123");
        assert_eq!(values["STENO_JWT_SECRET"], "file-secret");
    }

    #[test]
    fn errors_name_the_secret_and_its_source_but_no_content() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("jwt"), b"top\0secret").unwrap();
        let all = secrets(dir.path());
        let unknown = all.resolve(&refs(&[("K", "nope")])).unwrap_err();
        assert!(unknown.to_string().contains("\"nope\""), "{unknown}");
        let missing = all.resolve(&refs(&[("K", "unset")])).unwrap_err();
        assert!(missing.to_string().contains("OPSD_TEST_UNSET"), "{missing}");
        let absent = all.resolve(&refs(&[("K", "absent")])).unwrap_err();
        assert!(absent.to_string().contains("no-such-file"), "{absent}");
        let unusable = all.resolve(&refs(&[("K", "jwt")])).unwrap_err();
        assert!(unusable.to_string().contains("NUL"), "{unusable}");
        assert!(!unusable.to_string().contains("secret\""), "{unusable}");
        assert!(!unusable.to_string().contains("top"), "{unusable}");
        assert!(all.check_all().is_err());
        assert!(!format!("{all:?}").contains("sk-123"));
    }
}
