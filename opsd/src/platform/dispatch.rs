//! [`PerService`]: the platform traits over several platforms at once, each service sent to the
//! platform it is configured on (`platform: local` or `platform: aws` in `opsd.yaml`).

use std::collections::HashMap;
use std::sync::Arc;

use crate::core::alarms::ExternalAlarm;
use crate::core::traffic::SecondSample;
use crate::platform::{
    AlarmWatcher, ContentDelivery, HealthStatus, MetricSource, PlatformError, ReleaseRunner,
    ReleaseSpec, TrafficShifter, TrafficSplit,
};

/// One platform's implementations of every capability.
#[derive(Clone)]
pub struct PlatformSet {
    pub runner: Arc<dyn ReleaseRunner>,
    pub shifter: Arc<dyn TrafficShifter>,
    pub metrics: Arc<dyn MetricSource>,
    pub alarms: Arc<dyn AlarmWatcher>,
    pub cdn: Arc<dyn ContentDelivery>,
}

/// Routes every call to the platform of the service it names.
pub struct PerService {
    by_service: HashMap<String, PlatformSet>,
}

impl PerService {
    pub fn new(by_service: HashMap<String, PlatformSet>) -> PerService {
        PerService { by_service }
    }

    fn platform(&self, service: &str) -> Result<&PlatformSet, PlatformError> {
        self.by_service
            .get(service)
            .ok_or_else(|| PlatformError::Operation {
                operation: "platform lookup".into(),
                message: format!("service {service} is on no platform"),
            })
    }
}

/// A platform without alarms or a CDN of its own (the local one: opsd evaluates its alarms).
pub struct NoPlatformExtras;

#[async_trait::async_trait]
impl AlarmWatcher for NoPlatformExtras {
    async fn firing_alarms(&self, _service: &str) -> Result<Vec<ExternalAlarm>, PlatformError> {
        Ok(Vec::new())
    }
}

#[async_trait::async_trait]
impl ContentDelivery for NoPlatformExtras {
    async fn invalidate(&self, _service: &str) -> Result<Option<String>, PlatformError> {
        Ok(None)
    }
    async fn invalidation_completed(
        &self,
        _service: &str,
        _id: &str,
    ) -> Result<bool, PlatformError> {
        Ok(true)
    }
}

#[async_trait::async_trait]
impl ReleaseRunner for PerService {
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.platform(&release.service)?
            .runner
            .ensure_running(release)
            .await
    }
    async fn stop(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.platform(&release.service)?.runner.stop(release).await
    }
    async fn probe_health(&self, release: &ReleaseSpec) -> HealthStatus {
        match self.platform(&release.service) {
            Ok(platform) => platform.runner.probe_health(release).await,
            Err(error) => HealthStatus::Unhealthy(error.to_string()),
        }
    }
    async fn crashes(&self, release: &ReleaseSpec) -> u64 {
        match self.platform(&release.service) {
            Ok(platform) => platform.runner.crashes(release).await,
            Err(_) => 0,
        }
    }
    async fn run_task(
        &self,
        release: &ReleaseSpec,
        args: &[String],
        timeout: std::time::Duration,
    ) -> Result<crate::platform::TaskOutput, PlatformError> {
        self.platform(&release.service)?
            .runner
            .run_task(release, args, timeout)
            .await
    }
    async fn running(&self) -> Vec<ReleaseSpec> {
        // Several services share one platform: ask each platform once.
        let mut runners: Vec<Arc<dyn ReleaseRunner>> = Vec::new();
        for platform in self.by_service.values() {
            if !runners
                .iter()
                .any(|seen| Arc::ptr_eq(seen, &platform.runner))
            {
                runners.push(platform.runner.clone());
            }
        }
        let mut releases = Vec::new();
        for runner in runners {
            releases.extend(runner.running().await);
        }
        releases
    }
    async fn release_url(&self, release: &ReleaseSpec) -> Option<String> {
        self.platform(&release.service)
            .ok()?
            .runner
            .release_url(release)
            .await
    }
}

#[async_trait::async_trait]
impl TrafficShifter for PerService {
    async fn set_split(&self, service: &str, split: &TrafficSplit) -> Result<(), PlatformError> {
        self.platform(service)?
            .shifter
            .set_split(service, split)
            .await
    }
    async fn current_split(&self, service: &str) -> Result<Option<TrafficSplit>, PlatformError> {
        self.platform(service)?.shifter.current_split(service).await
    }
}

#[async_trait::async_trait]
impl MetricSource for PerService {
    async fn samples(
        &self,
        service: &str,
        release_id: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<SecondSample>, PlatformError> {
        self.platform(service)?
            .metrics
            .samples(service, release_id, from_second, to_second)
            .await
    }
}

#[async_trait::async_trait]
impl AlarmWatcher for PerService {
    async fn firing_alarms(&self, service: &str) -> Result<Vec<ExternalAlarm>, PlatformError> {
        self.platform(service)?.alarms.firing_alarms(service).await
    }
}

#[async_trait::async_trait]
impl ContentDelivery for PerService {
    async fn invalidate(&self, service: &str) -> Result<Option<String>, PlatformError> {
        self.platform(service)?.cdn.invalidate(service).await
    }
    async fn invalidation_completed(&self, service: &str, id: &str) -> Result<bool, PlatformError> {
        self.platform(service)?
            .cdn
            .invalidation_completed(service, id)
            .await
    }
}
