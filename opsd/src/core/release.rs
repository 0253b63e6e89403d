//! What a release is, independent of where it runs: a version with its environment
//! ([`ReleaseSpec`]), how a service's traffic is split between releases ([`TrafficSplit`]), and the
//! answer of one health probe ([`HealthStatus`]). Platforms act on these; the rollout state machine
//! decides with them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::release_env::Fingerprinter;

/// One release of a service: a version label plus the environment it runs with. On the local
/// platform the service's command line (from `opsd.yaml`) is started with `env` layered over the
/// service's base environment.
///
/// `env` values are stored with the rollout and never shown (views carry fingerprints; `Debug`
/// hides them); `env_from` maps a key to the name of a secret in opsd.yaml, whose value is read
/// only when the release starts and never enters the store.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseSpec {
    pub service: String,
    pub version: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env_from: BTreeMap<String, String>,
}

impl ReleaseSpec {
    /// A release with no environment of its own.
    pub fn new(service: &str, version: &str) -> ReleaseSpec {
        ReleaseSpec {
            service: service.to_string(),
            version: version.to_string(),
            env: BTreeMap::new(),
            env_from: BTreeMap::new(),
        }
    }

    /// A stable identifier: `service@version`.
    pub fn release_id(&self) -> String {
        format!("{}@{}", self.service, self.version)
    }

    /// The same release with each `env` value replaced by its fingerprint, for views.
    pub fn redacted(&self, fingerprints: &Fingerprinter) -> ReleaseSpec {
        ReleaseSpec {
            env: fingerprints.redact(&self.env),
            ..self.clone()
        }
    }
}

impl std::fmt::Debug for ReleaseSpec {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ReleaseSpec")
            .field("service", &self.service)
            .field("version", &self.version)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("env_from", &self.env_from)
            .finish()
    }
}

/// How one service's traffic is split: everything to `stable` except `canary_weight_percent`
/// to `canary`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrafficSplit {
    pub stable: String,
    pub canary: Option<String>,
    pub canary_weight_percent: u8,
}

impl TrafficSplit {
    /// All traffic to one release.
    pub fn all_to(release_id: &str) -> TrafficSplit {
        TrafficSplit {
            stable: release_id.to_string(),
            canary: None,
            canary_weight_percent: 0,
        }
    }
}

/// The answer of one health probe.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum HealthStatus {
    Healthy,
    Unhealthy(String),
}
