//! The local platform: releases run as processes under a [`Supervisor`], and each service's
//! public port is a [`TrafficRouter`] that splits and counts their traffic. Either everything
//! lives inside opsd ([`LocalPlatform::start`], for tests and benchmarks), or the data plane
//! fails static ([`LocalPlatform::start_fail_static`], for `opsd up`): each router is an
//! `opsd router` process of its own and releases outlive opsd, so traffic keeps flowing on the
//! last split while opsd is away, and a restarted opsd re-adopts them.

mod body_delimiting;
mod chunked_coding;
mod client_body;
mod client_connection;
mod client_http1;
pub mod costs;
pub mod document_dir;
mod postgres_restore;
pub mod postgres_snapshots;
pub mod process_records;
mod reclaimable_body;
pub(crate) mod release_process;
pub mod release_records;
mod release_run;
mod release_task;
pub mod router;
pub mod router_fleet;
pub mod router_process;
mod sqlite_restore;
pub mod sqlite_snapshots;
pub mod supervisor;
mod upstream_body;
mod upstream_connections;
mod upstream_http1;

#[cfg(test)]
mod client_wire_tests;
#[cfg(test)]
mod fail_static_tests;
#[cfg(test)]
mod router_wire_tests;
#[cfg(test)]
pub(crate) mod test_support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

pub use router::{RouteConfig, TrafficRouter, UpstreamResolver};
pub use router_fleet::{RouterFleet, RouterProcessSetup};
pub use supervisor::{LocalServiceConfig, RestartPolicy, Supervisor};

use crate::core::traffic::{SecondSample, TrafficSample};
use crate::platform::secrets::Secrets;
use crate::platform::{
    HealthStatus, MetricSource, PlatformError, ReleaseRunner, ReleaseSpec, TrafficShifter,
    TrafficSplit,
};

/// How often a fail-static platform looks whether its router processes still run.
const ROUTER_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Supervisor and routers together, behind the platform traits.
pub struct LocalPlatform {
    supervisor: Supervisor,
    routers: Routers,
}

/// Where the services' routers run.
enum Routers {
    /// In opsd's own process: they stop with it.
    InProcess(TrafficRouter),
    /// One `opsd router` process per service, outliving opsd.
    Processes(RouterFleet),
}

/// Where a fail-static local platform keeps what outlives opsd.
#[derive(Debug, Clone)]
pub struct FailStaticSetup {
    /// The `opsd` executable the routers run as (`opsd router`).
    pub program: PathBuf,
    /// Records of routers and releases, and the routers' control sockets.
    pub state_dir: PathBuf,
}

impl FailStaticSetup {
    /// The records of the routers.
    pub fn routers_dir(&self) -> PathBuf {
        self.state_dir.join("routers")
    }

    /// The records of the releases.
    pub fn releases_dir(&self) -> PathBuf {
        self.state_dir.join("releases")
    }
}

impl LocalPlatform {
    /// Binds every service's public listener inside this process (port 0 picks a free port; see
    /// [`LocalPlatform::public_address`]) and prepares to run releases as children that die with
    /// it, logging their output under `log_dir`.
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
        let routes = route_configs(&services);
        let configs = services.into_iter().map(|(config, _)| config).collect();
        let supervisor = Supervisor::new(configs, log_dir)?.with_secrets(secrets);
        let router = TrafficRouter::bind(routes, Arc::new(supervisor.resolver())).await?;
        let platform = LocalPlatform {
            supervisor,
            routers: Routers::InProcess(router),
        };
        platform.log_addresses();
        Ok(Arc::new(platform))
    }

    /// A local platform whose routers and releases outlive opsd: routers left running by a
    /// previous opsd are re-adopted (started otherwise), and releases are re-adopted when they
    /// are asked for again ([`Supervisor::stop_unclaimed`] stops the others).
    pub async fn start_fail_static(
        services: Vec<(LocalServiceConfig, SocketAddr)>,
        log_dir: impl Into<PathBuf>,
        secrets: Secrets,
        setup: &FailStaticSetup,
    ) -> Result<Arc<LocalPlatform>, PlatformError> {
        let log_dir = log_dir.into();
        let routes = route_configs(&services);
        let configs = services.into_iter().map(|(config, _)| config).collect();
        let supervisor = Supervisor::new(configs, &log_dir)?
            .with_secrets(secrets)
            .with_release_records(setup.releases_dir());
        let fleet = RouterFleet::start(
            routes,
            &RouterProcessSetup {
                program: setup.program.clone(),
                state_dir: setup.routers_dir(),
                log_dir,
            },
        )
        .await?;
        let platform = Arc::new(LocalPlatform {
            supervisor,
            routers: Routers::Processes(fleet),
        });
        platform.log_addresses();
        tokio::spawn(restart_dead_routers(Arc::downgrade(&platform)));
        Ok(platform)
    }

    fn log_addresses(&self) {
        for (service, addr) in self.public_addresses() {
            tracing::info!(service = %service, addr = %addr, "local platform serving");
        }
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The bound public address of a service.
    pub fn public_address(&self, service: &str) -> Option<SocketAddr> {
        match &self.routers {
            Routers::InProcess(router) => router.public_address(service),
            Routers::Processes(fleet) => fleet.public_address(service),
        }
    }

    /// Every service's bound public address.
    pub fn public_addresses(&self) -> Vec<(String, SocketAddr)> {
        match &self.routers {
            Routers::InProcess(router) => router.public_addresses(),
            Routers::Processes(fleet) => fleet.public_addresses(),
        }
    }

    /// The process id of a service's router when it runs in a process of its own.
    pub fn router_pid(&self, service: &str) -> Option<u32> {
        match &self.routers {
            Routers::InProcess(_) => None,
            Routers::Processes(fleet) => fleet.pid_of(service),
        }
    }

    /// The loopback address of a live release.
    pub fn address_of(&self, release_id: &str) -> Option<SocketAddr> {
        self.supervisor.address_of(release_id)
    }

    /// Each release's traffic over the last 60 seconds.
    pub async fn router_stats(&self, service: &str) -> Vec<(String, TrafficSample)> {
        match &self.routers {
            Routers::InProcess(router) => router.router_stats(service),
            Routers::Processes(fleet) => fleet.router_stats(service).await,
        }
    }

    /// Each release's traffic summed over the seconds `from..to` (half open).
    pub async fn usage_between(
        &self,
        service: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<(String, TrafficSample)>, PlatformError> {
        match &self.routers {
            Routers::InProcess(router) => Ok(router.usage_between(service, from, to)),
            Routers::Processes(fleet) => fleet.usage_between(service, from, to).await,
        }
    }

    /// Stops the public listeners, then every release: nothing of the platform keeps running.
    pub async fn shutdown(&self) {
        match &self.routers {
            Routers::InProcess(router) => router.shutdown().await,
            Routers::Processes(fleet) => fleet.shutdown().await,
        }
        self.supervisor.stop_all().await;
    }

    /// Tells a router process where the service's live releases listen now.
    async fn refresh_upstreams(&self, service: &str) -> Result<(), PlatformError> {
        let Routers::Processes(fleet) = &self.routers else {
            return Ok(());
        };
        let upstreams: HashMap<String, SocketAddr> = self
            .supervisor
            .running()
            .await
            .into_iter()
            .filter(|release| release.service == service)
            .filter_map(|release| {
                let id = release.release_id();
                self.supervisor.address_of(&id).map(|address| (id, address))
            })
            .collect();
        fleet.set_upstreams(service, &upstreams).await
    }
}

/// Every second, starts again the routers whose process died, for as long as the platform
/// exists (its shutdown stops this too).
async fn restart_dead_routers(platform: std::sync::Weak<LocalPlatform>) {
    loop {
        tokio::time::sleep(ROUTER_CHECK_INTERVAL).await;
        let Some(platform) = platform.upgrade() else {
            return;
        };
        let Routers::Processes(fleet) = &platform.routers else {
            return;
        };
        if fleet.is_stopping() {
            return;
        }
        fleet.restart_dead_routers().await;
    }
}

/// Stops what a fail-static local platform left running (routers first, then releases) without
/// an opsd, as `opsd down` does when no opsd runs; returns what was stopped, one line each.
pub async fn stop_left_running(setup: &FailStaticSetup, grace: std::time::Duration) -> Vec<String> {
    let mut stopped: Vec<String> = router_fleet::stop_recorded_routers(&setup.routers_dir())
        .await
        .into_iter()
        .map(|service| format!("router of {service}"))
        .collect();
    stopped.extend(
        release_records::stop_recorded_releases(&setup.releases_dir(), grace)
            .await
            .into_iter()
            .map(|release| format!("release {release}")),
    );
    stopped
}

fn route_configs(services: &[(LocalServiceConfig, SocketAddr)]) -> Vec<RouteConfig> {
    services
        .iter()
        .map(|(config, listen)| RouteConfig {
            service: config.name.clone(),
            listen: *listen,
            excluded_paths: config.excluded_paths.clone(),
        })
        .collect()
}

#[async_trait::async_trait]
impl ReleaseRunner for LocalPlatform {
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.supervisor.ensure_running(release).await?;
        self.refresh_upstreams(&release.service).await?;
        self.supervisor.stop_superseded().await;
        Ok(())
    }

    async fn stop(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.supervisor.stop(release).await?;
        self.refresh_upstreams(&release.service).await
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
        match &self.routers {
            Routers::InProcess(router) => router.set_split(service, split).await,
            Routers::Processes(fleet) => {
                for release in std::iter::once(&split.stable).chain(split.canary.as_ref()) {
                    if self.supervisor.address_of(release).is_none() {
                        return Err(PlatformError::UnknownRelease {
                            release: release.clone(),
                        });
                    }
                }
                self.refresh_upstreams(service).await?;
                fleet.set_split(service, split).await
            }
        }
    }

    async fn current_split(&self, service: &str) -> Result<Option<TrafficSplit>, PlatformError> {
        match &self.routers {
            Routers::InProcess(router) => router.current_split(service).await,
            Routers::Processes(fleet) => fleet.current_split(service).await,
        }
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
        match &self.routers {
            Routers::InProcess(router) => {
                router
                    .samples(service, release_id, from_second, to_second)
                    .await
            }
            Routers::Processes(fleet) => {
                fleet
                    .samples(service, release_id, from_second, to_second)
                    .await
            }
        }
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
        let stats = platform.router_stats("steno").await;
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
