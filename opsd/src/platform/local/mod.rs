//! The local platform: releases run as child processes under a [`Supervisor`], and each
//! service's public port is a [`TrafficRouter`] that splits and counts their traffic.

pub mod costs;
pub mod document_dir;
mod postgres_restore;
pub mod postgres_snapshots;
mod reclaimable_body;
mod release_task;
pub mod router;
mod sqlite_restore;
pub mod sqlite_snapshots;
pub mod supervisor;
mod upstream_connections;

#[cfg(test)]
pub(crate) mod test_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use router::{RouteConfig, TrafficRouter, UpstreamResolver};
pub use supervisor::{LocalServiceConfig, RestartPolicy, Supervisor};

use crate::core::traffic::{SecondSample, TrafficSample};
use crate::platform::secrets::Secrets;
use crate::platform::{
    HealthStatus, MetricSource, PlatformError, ReleaseRunner, ReleaseSpec, TrafficShifter,
    TrafficSplit,
};

/// Supervisor and router together, behind the platform traits.
pub struct LocalPlatform {
    supervisor: Supervisor,
    router: TrafficRouter,
}

impl LocalPlatform {
    /// Binds every service's public listener (port 0 picks a free port; see
    /// [`LocalPlatform::public_address`]) and prepares to run releases, logging their output
    /// under `log_dir`.
    pub async fn start(
        services: Vec<(LocalServiceConfig, SocketAddr)>,
        log_dir: impl Into<PathBuf>,
    ) -> Result<Arc<LocalPlatform>, PlatformError> {
        Self::start_with_secrets(services, log_dir, Secrets::default()).await
    }

    /// [`LocalPlatform::start`], with the secrets releases take by `env_from`.
    pub async fn start_with_secrets(
        services: Vec<(LocalServiceConfig, SocketAddr)>,
        log_dir: impl Into<PathBuf>,
        secrets: Secrets,
    ) -> Result<Arc<LocalPlatform>, PlatformError> {
        let routes = services
            .iter()
            .map(|(config, listen)| RouteConfig {
                service: config.name.clone(),
                listen: *listen,
                excluded_paths: config.excluded_paths.clone(),
            })
            .collect();
        let configs = services.into_iter().map(|(config, _)| config).collect();
        let supervisor = Supervisor::new(configs, log_dir)?.with_secrets(secrets);
        let router = TrafficRouter::bind(routes, Arc::new(supervisor.resolver())).await?;
        for (service, addr) in router.public_addresses() {
            tracing::info!(service = %service, addr = %addr, "local platform serving");
        }
        Ok(Arc::new(LocalPlatform { supervisor, router }))
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    pub fn router(&self) -> &TrafficRouter {
        &self.router
    }

    /// The bound public address of a service.
    pub fn public_address(&self, service: &str) -> Option<SocketAddr> {
        self.router.public_address(service)
    }

    /// The loopback address of a live release.
    pub fn address_of(&self, release_id: &str) -> Option<SocketAddr> {
        self.supervisor.address_of(release_id)
    }

    /// Each release's traffic over the last 60 seconds.
    pub fn router_stats(&self, service: &str) -> Vec<(String, TrafficSample)> {
        self.router.router_stats(service)
    }

    /// Stops the public listeners, then every release.
    pub async fn shutdown(&self) {
        self.router.shutdown().await;
        self.supervisor.stop_all().await;
    }
}

#[async_trait::async_trait]
impl ReleaseRunner for LocalPlatform {
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.supervisor.ensure_running(release).await
    }

    async fn stop(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.supervisor.stop(release).await
    }

    async fn probe_health(&self, release: &ReleaseSpec) -> HealthStatus {
        self.supervisor.probe_health(release).await
    }

    async fn running(&self) -> Vec<ReleaseSpec> {
        self.supervisor.running().await
    }

    async fn crashes(&self, release: &ReleaseSpec) -> u64 {
        self.supervisor.crashes(release).await
    }

    async fn run_task(
        &self,
        release: &ReleaseSpec,
        args: &[String],
        timeout: std::time::Duration,
    ) -> Result<crate::platform::TaskOutput, PlatformError> {
        self.supervisor.run_task(release, args, timeout).await
    }

    async fn release_url(&self, release: &ReleaseSpec) -> Option<String> {
        self.supervisor
            .address_of(&release.release_id())
            .map(|address| format!("http://{address}"))
    }
}

#[async_trait::async_trait]
impl TrafficShifter for LocalPlatform {
    async fn set_split(&self, service: &str, split: &TrafficSplit) -> Result<(), PlatformError> {
        self.router.set_split(service, split).await
    }

    async fn current_split(&self, service: &str) -> Result<Option<TrafficSplit>, PlatformError> {
        self.router.current_split(service).await
    }
}

#[async_trait::async_trait]
impl MetricSource for LocalPlatform {
    async fn samples(
        &self,
        service: &str,
        release_id: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<SecondSample>, PlatformError> {
        self.router
            .samples(service, release_id, from_second, to_second)
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::test_support::{port_open, steno_service};
    use super::*;
    use crate::core::traffic::window_sum;

    fn steno_release(version: &str, data_dir: &std::path::Path) -> ReleaseSpec {
        ReleaseSpec {
            service: "steno".to_string(),
            version: version.to_string(),
            env: [
                ("STENO_VERSION".to_string(), version.to_string()),
                (
                    "STENO_DATA_DIR".to_string(),
                    data_dir.join(version).display().to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            env_from: Default::default(),
        }
    }

    async fn reported_version(client: &reqwest::Client, public: SocketAddr) -> String {
        let health: serde_json::Value = client
            .get(format!("http://{public}/v1/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        health["version"].as_str().unwrap().to_string()
    }

    #[tokio::test]
    async fn steno_releases_run_behind_the_router() {
        let data = tempfile::tempdir().unwrap();
        let logs = tempfile::tempdir().unwrap();
        let platform = LocalPlatform::start(
            vec![(
                steno_service("steno", data.path()),
                "127.0.0.1:0".parse().unwrap(),
            )],
            logs.path(),
        )
        .await
        .unwrap();
        let public = platform.public_address("steno").unwrap();
        assert_ne!(public.port(), 0);
        let v1 = steno_release("v1", data.path());
        let v2 = steno_release("v2", data.path());
        platform.ensure_running(&v1).await.unwrap();
        platform.ensure_running(&v2).await.unwrap();
        assert_eq!(platform.running().await, vec![v1.clone(), v2.clone()]);
        assert_eq!(platform.probe_health(&v2).await, HealthStatus::Healthy);

        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let split = |weight: u8| TrafficSplit {
            stable: "steno@v1".to_string(),
            canary: Some("steno@v2".to_string()),
            canary_weight_percent: weight,
        };
        platform.set_split("steno", &split(100)).await.unwrap();
        assert_eq!(reported_version(&client, public).await, "v2");
        platform.set_split("steno", &split(0)).await.unwrap();
        assert_eq!(reported_version(&client, public).await, "v1");
        assert_eq!(
            platform.current_split("steno").await.unwrap(),
            Some(split(0))
        );
        let now = chrono::Utc::now().timestamp();
        for release in ["steno@v1", "steno@v2"] {
            let series = platform
                .samples("steno", release, now - 60, now + 2)
                .await
                .unwrap();
            let sample = window_sum(&series, now - 60, now + 2);
            assert_eq!((sample.requests, sample.errors), (1, 0), "{release}");
        }
        let stats = platform.router_stats("steno");
        assert_eq!(stats.len(), 2);

        // A stopped release can no longer be given traffic.
        let v2_port = platform.address_of("steno@v2").unwrap().port();
        platform.stop(&v2).await.unwrap();
        assert!(!port_open(v2_port).await);
        assert!(matches!(
            platform.set_split("steno", &split(10)).await,
            Err(PlatformError::UnknownRelease { release }) if release == "steno@v2"
        ));

        let v1_port = platform.address_of("steno@v1").unwrap().port();
        tokio::time::timeout(Duration::from_secs(20), platform.shutdown())
            .await
            .unwrap();
        assert!(!port_open(public.port()).await);
        assert!(!port_open(v1_port).await);
        assert!(platform.running().await.is_empty());
    }
}
