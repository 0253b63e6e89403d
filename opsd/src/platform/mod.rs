//! Platforms: object-safe traits for what opsd asks of the place a service runs (start and stop
//! releases, probe their health, split traffic between them, read their traffic, read the
//! platform's own alarms, purge the CDN), with a `local` implementation (processes behind opsd's
//! own router) and an `aws` one (Lambda versions behind an alias, CloudWatch, CloudFront), database
//! snapshots for DR drills ([`snapshots::DatabaseSnapshots`]), and a
//! [`dispatch::PerService`] that sends each service to its platform. invariant: no platform SDK
//! type crosses these traits.

pub mod aws;
pub mod cost_source;
pub mod dispatch;
pub mod local;
pub mod secrets;
pub mod snapshots;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::core::alarms::ExternalAlarm;
use crate::core::release_env::Fingerprinter;
use crate::core::traffic::SecondSample;

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

/// What went wrong on a platform. Messages name the operation and the release.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("could not start {release}: {reason}")]
    Start { release: String, reason: String },
    #[error("{release} did not become ready within {waited_secs} s: {last_error}")]
    NotReady {
        release: String,
        waited_secs: u64,
        last_error: String,
    },
    #[error("{release} is not known to the platform")]
    UnknownRelease { release: String },
    #[error("{operation} failed: {message}")]
    Operation { operation: String, message: String },
    #[error("drift on {target}: {detail}")]
    Drift { target: String, detail: String },
}

/// Starts, stops and probes releases.
#[async_trait::async_trait]
pub trait ReleaseRunner: Send + Sync {
    /// Starts the release unless it already runs, and returns once it is ready (its health check
    /// answers 2xx) or failed to become ready in time.
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError>;
    /// Stops the release (idempotent).
    async fn stop(&self, release: &ReleaseSpec) -> Result<(), PlatformError>;
    /// One health probe of a running release.
    async fn probe_health(&self, release: &ReleaseSpec) -> HealthStatus;
    /// The releases currently running.
    async fn running(&self) -> Vec<ReleaseSpec>;
    /// The base URL that reaches this release directly, bypassing the traffic split (for smoke
    /// checks), while it runs.
    async fn release_url(&self, release: &ReleaseSpec) -> Option<String> {
        let _ = release;
        None
    }
}

/// Splits a service's traffic between releases.
#[async_trait::async_trait]
pub trait TrafficShifter: Send + Sync {
    async fn set_split(&self, service: &str, split: &TrafficSplit) -> Result<(), PlatformError>;
    async fn current_split(&self, service: &str) -> Result<Option<TrafficSplit>, PlatformError>;
}

/// Reads per-second traffic of releases.
#[async_trait::async_trait]
pub trait MetricSource: Send + Sync {
    /// Samples of one release for the seconds in `from_second..to_second`; seconds without
    /// traffic may be missing.
    async fn samples(
        &self,
        service: &str,
        release_id: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<SecondSample>, PlatformError>;
}

/// Alarms the platform evaluates itself (CloudWatch alarms on AWS).
#[async_trait::async_trait]
pub trait AlarmWatcher: Send + Sync {
    /// The service's alarms currently in ALARM that opsd watches, each marked whether it rolls a
    /// rollout back.
    async fn firing_alarms(&self, service: &str) -> Result<Vec<ExternalAlarm>, PlatformError>;
}

/// The CDN in front of a service's static assets.
#[async_trait::async_trait]
pub trait ContentDelivery: Send + Sync {
    /// Invalidates the service's configured paths; `None` when the service has no CDN.
    async fn invalidate(&self, service: &str) -> Result<Option<String>, PlatformError>;
    /// Whether an invalidation has completed.
    async fn invalidation_completed(&self, service: &str, id: &str) -> Result<bool, PlatformError>;
}
