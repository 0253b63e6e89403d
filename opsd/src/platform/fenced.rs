//! [`Fenced`]: a platform that acts only while this opsd may: every call that changes something
//! (starting or stopping a release, a one-off command, a traffic split, a CDN invalidation) first
//! asks the [`ActPermit`], and is refused with [`PlatformError::Fenced`] when the answer is no.
//! Reads pass. `opsd up` wraps its platforms in it with the leader lease's deadline, so a leader
//! paused past its lease (SIGSTOP, a stalled VM) changes nothing when it wakes.

use std::sync::Arc;

use crate::platform::dispatch::PlatformSet;
use crate::platform::{
    ContentDelivery, HealthStatus, PlatformError, ReleaseRunner, ReleaseSpec, TaskOutput,
    TrafficShifter, TrafficSplit,
};

/// Whether this opsd may change anything on the platforms now.
pub trait ActPermit: Send + Sync {
    /// `Err(why)` when it may not.
    fn may_act(&self) -> Result<(), String>;
}

/// A platform's mutating calls behind an [`ActPermit`].
pub struct Fenced<T: ?Sized> {
    inner: Arc<T>,
    permit: Arc<dyn ActPermit>,
}

impl<T: ?Sized> Fenced<T> {
    fn check(&self, operation: impl FnOnce() -> String) -> Result<(), PlatformError> {
        self.permit
            .may_act()
            .map_err(|reason| PlatformError::Fenced {
                operation: operation(),
                reason,
            })
    }
}

/// `platforms` with every mutating call behind `permit`.
pub fn fenced(platforms: PlatformSet, permit: Arc<dyn ActPermit>) -> PlatformSet {
    PlatformSet {
        runner: Arc::new(Fenced {
            inner: platforms.runner,
            permit: permit.clone(),
        }),
        shifter: Arc::new(Fenced {
            inner: platforms.shifter,
            permit: permit.clone(),
        }),
        metrics: platforms.metrics,
        alarms: platforms.alarms,
        cdn: Arc::new(Fenced {
            inner: platforms.cdn,
            permit,
        }),
    }
}

#[async_trait::async_trait]
impl ReleaseRunner for Fenced<dyn ReleaseRunner> {
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.check(|| format!("start {}", release.release_id()))?;
        self.inner.ensure_running(release).await
    }
    async fn stop(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.check(|| format!("stop {}", release.release_id()))?;
        self.inner.stop(release).await
    }
    async fn probe_health(&self, release: &ReleaseSpec) -> HealthStatus {
        self.inner.probe_health(release).await
    }
    async fn running(&self) -> Vec<ReleaseSpec> {
        self.inner.running().await
    }
    async fn release_url(&self, release: &ReleaseSpec) -> Option<String> {
        self.inner.release_url(release).await
    }
    async fn crashes(&self, release: &ReleaseSpec) -> u64 {
        self.inner.crashes(release).await
    }
    async fn run_task(
        &self,
        release: &ReleaseSpec,
        args: &[String],
        timeout: std::time::Duration,
    ) -> Result<TaskOutput, PlatformError> {
        self.check(|| format!("run a command of {}", release.release_id()))?;
        self.inner.run_task(release, args, timeout).await
    }
}

#[async_trait::async_trait]
impl TrafficShifter for Fenced<dyn TrafficShifter> {
    async fn set_split(&self, service: &str, split: &TrafficSplit) -> Result<(), PlatformError> {
        self.check(|| format!("set the traffic split of {service}"))?;
        self.inner.set_split(service, split).await
    }
    async fn current_split(&self, service: &str) -> Result<Option<TrafficSplit>, PlatformError> {
        self.inner.current_split(service).await
    }
}

#[async_trait::async_trait]
impl ContentDelivery for Fenced<dyn ContentDelivery> {
    async fn invalidate(&self, service: &str) -> Result<Option<String>, PlatformError> {
        self.check(|| format!("invalidate the CDN of {service}"))?;
        self.inner.invalidate(service).await
    }
    async fn invalidation_completed(&self, service: &str, id: &str) -> Result<bool, PlatformError> {
        self.inner.invalidation_completed(service, id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    struct Switch(AtomicBool);

    impl ActPermit for Switch {
        fn may_act(&self) -> Result<(), String> {
            if self.0.load(Ordering::SeqCst) {
                Ok(())
            } else {
                Err("another instance leads".into())
            }
        }
    }

    #[derive(Default)]
    struct RecordingShifter(Mutex<Option<TrafficSplit>>);

    #[async_trait::async_trait]
    impl TrafficShifter for RecordingShifter {
        async fn set_split(&self, _: &str, split: &TrafficSplit) -> Result<(), PlatformError> {
            *self.0.lock().unwrap() = Some(split.clone());
            Ok(())
        }
        async fn current_split(&self, _: &str) -> Result<Option<TrafficSplit>, PlatformError> {
            Ok(self.0.lock().unwrap().clone())
        }
    }

    #[tokio::test]
    async fn mutating_calls_pass_only_while_the_permit_holds() {
        let platform = Arc::new(RecordingShifter::default());
        let switch = Arc::new(Switch(AtomicBool::new(true)));
        let shifter = Fenced::<dyn TrafficShifter> {
            inner: platform.clone(),
            permit: switch.clone(),
        };
        let first = TrafficSplit::all_to("steno-v1");
        shifter.set_split("steno", &first).await.unwrap();
        switch.0.store(false, Ordering::SeqCst);
        let refused = shifter
            .set_split("steno", &TrafficSplit::all_to("steno-v2"))
            .await
            .unwrap_err();
        assert!(
            matches!(&refused, PlatformError::Fenced { reason, .. } if reason == "another instance leads"),
            "{refused:?}"
        );
        assert_eq!(
            platform.current_split("steno").await.unwrap(),
            Some(first),
            "the refused split never reached the platform"
        );
        assert!(shifter.current_split("steno").await.is_ok(), "reads pass");
    }
}
