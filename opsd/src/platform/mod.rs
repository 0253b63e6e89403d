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
pub mod documents;
pub mod factory;
pub mod fenced;
pub mod local;
pub mod secrets;
pub mod snapshots;

use crate::core::alarms::ExternalAlarm;
pub use crate::core::release::{HealthStatus, ReleaseSpec, TrafficSplit};
use crate::core::traffic::SecondSample;

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
    /// This opsd may no longer act: another instance leads, or its lease could not be renewed.
    #[error("not acting on the platform ({operation}): {reason}")]
    Fenced { operation: String, reason: String },
}

/// What a one-off command of a release (its migrations, say) printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskOutput {
    pub success: bool,
    /// `exit status 0`, `exit status 1`, `killed by signal 9`.
    pub ended: String,
    /// The first 64 KiB of each stream, as text.
    pub stdout: String,
    pub stderr: String,
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
    /// How many times the platform has seen this release's process crash since it first started
    /// it (restarts included); 0 on platforms without processes of their own (Lambda).
    async fn crashes(&self, release: &ReleaseSpec) -> u64 {
        let _ = release;
        0
    }
    /// Runs the release's program once with `args` and the release's environment (not serving:
    /// no port), for at most `timeout`, and returns what it printed.
    async fn run_task(
        &self,
        release: &ReleaseSpec,
        args: &[String],
        timeout: std::time::Duration,
    ) -> Result<TaskOutput, PlatformError> {
        let _ = (args, timeout);
        Err(PlatformError::Operation {
            operation: format!("running a one-off command of {}", release.release_id()),
            message: "this platform cannot run one-off commands of a release".into(),
        })
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
