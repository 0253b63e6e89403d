//! The fail-static local platform with real processes: releases and routers outlive the opsd
//! that started them (simulated by dropping its runtime without stopping anything), traffic keeps
//! flowing on the last split, the next opsd re-adopts what it asks for and stops the rest, and a
//! shutdown on purpose leaves nothing behind.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::test_support::{opsd_binary, port_open, process_gone, steno_service};
use super::{FailStaticSetup, LocalPlatform, Supervisor};
use crate::platform::secrets::Secrets;
use crate::platform::{ReleaseRunner, ReleaseSpec, TrafficShifter, TrafficSplit};

fn release(version: &str) -> ReleaseSpec {
    let mut spec = ReleaseSpec::new("steno", version);
    spec.env
        .insert("STENO_VERSION".to_string(), version.to_string());
    spec
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `body` in a runtime of its own that is then dropped with everything it spawned, as if
/// the opsd running it had been killed: nothing is stopped on purpose.
fn as_an_opsd_that_is_then_killed<T>(body: impl std::future::Future<Output = T>) -> T {
    let runtime = runtime();
    let result = runtime.block_on(body);
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

fn records_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("records")
}

fn recorded_releases(dir: &Path) -> usize {
    std::fs::read_dir(records_dir(dir))
        .map(|entries| entries.count())
        .unwrap_or(0)
}

async fn reported_version(public: SocketAddr) -> Result<String, reqwest::Error> {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let health: serde_json::Value = client
        .get(format!("http://{public}/v1/health"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(health["version"].as_str().unwrap_or_default().to_string())
}

#[test]
fn releases_outlive_their_supervisor_and_the_next_one_readopts_or_stops_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = steno_service("steno", &dir.path().join("data"));
    let logs = dir.path().join("logs");
    let supervisor = |config| {
        Supervisor::new(vec![config], &logs)
            .unwrap()
            .with_stop_grace(Duration::from_secs(5))
            .with_release_records(records_dir(dir.path()))
    };
    let (v1, v2) = (release("v1"), release("v2"));

    let (v1_pid, v1_addr, v2_pid) = as_an_opsd_that_is_then_killed(async {
        let first = supervisor(config.clone());
        first.ensure_running(&v1).await.unwrap();
        first.ensure_running(&v2).await.unwrap();
        let found = (
            first.pid_of("steno@v1").unwrap(),
            first.address_of("steno@v1").unwrap(),
            first.pid_of("steno@v2").unwrap(),
        );
        // Never stopped: the supervisor is leaked, then its runtime dropped.
        std::mem::forget(first);
        found
    });
    assert!(!process_gone(v1_pid) && !process_gone(v2_pid));
    assert_eq!(recorded_releases(dir.path()), 2);

    runtime().block_on(async {
        let second = supervisor(config.clone());
        second.ensure_running(&v1).await.unwrap();
        assert_eq!(
            second.pid_of("steno@v1"),
            Some(v1_pid),
            "re-adopted, not started again"
        );
        assert_eq!(second.address_of("steno@v1"), Some(v1_addr));
        assert_eq!(second.running().await, vec![v1.clone()]);

        // v2 is no longer asked for: stopped, and its record gone.
        let stopped = second.stop_unclaimed(&[]).await;
        assert_eq!(stopped, vec!["steno@v2".to_string()]);
        assert!(process_gone(v2_pid));
        assert_eq!(recorded_releases(dir.path()), 1);

        // A re-adopted release that dies is started again, as a child of this supervisor.
        super::process_records::ProcessIdentity::of(v1_pid)
            .unwrap()
            .signal_group(libc::SIGKILL);
        super::test_support::eventually(
            "the re-adopted release is restarted",
            Duration::from_secs(20),
            async || {
                second.pid_of("steno@v1").is_some_and(|pid| pid != v1_pid)
                    && second.probe_health(&v1).await == crate::platform::HealthStatus::Healthy
            },
        )
        .await;
        let restarted = second.pid_of("steno@v1").unwrap();

        second.stop_all().await;
        assert!(process_gone(restarted));
        assert_eq!(recorded_releases(dir.path()), 0);
    });
}

#[test]
fn a_release_started_differently_is_not_readopted() {
    let dir = tempfile::tempdir().unwrap();
    let config = steno_service("steno", &dir.path().join("data"));
    let logs = dir.path().join("logs");
    let v1 = release("v1");
    let old_pid = as_an_opsd_that_is_then_killed(async {
        let first = Supervisor::new(vec![config.clone()], &logs)
            .unwrap()
            .with_release_records(records_dir(dir.path()));
        first.ensure_running(&v1).await.unwrap();
        let pid = first.pid_of("steno@v1").unwrap();
        std::mem::forget(first);
        pid
    });
    let mut changed = config.clone();
    changed
        .base_env
        .insert("STENO_LOG".to_string(), "info".to_string());
    runtime().block_on(async {
        let second = Supervisor::new(vec![changed], &logs)
            .unwrap()
            .with_release_records(records_dir(dir.path()));
        second.ensure_running(&v1).await.unwrap();
        let new_pid = second.pid_of("steno@v1").unwrap();
        assert_ne!(new_pid, old_pid);
        assert!(
            !process_gone(old_pid),
            "the old process serves until its replacement is known to the router"
        );
        second.stop_superseded().await;
        assert!(process_gone(old_pid), "the old process was stopped");
        second.stop_all().await;
        assert!(process_gone(new_pid));
    });
}

#[test]
fn traffic_flows_on_the_last_split_while_opsd_is_away_and_the_next_opsd_readopts_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = steno_service("steno", &dir.path().join("data"));
    let setup = FailStaticSetup {
        program: opsd_binary(),
        state_dir: dir.path().join("data-plane"),
    };
    let logs = dir.path().join("logs");
    let start = || {
        LocalPlatform::start_fail_static(
            vec![(config.clone(), "127.0.0.1:0".parse().unwrap())],
            logs.clone(),
            Secrets::default(),
            &setup,
        )
    };
    let (v1, v2) = (release("v1"), release("v2"));
    let split = TrafficSplit {
        stable: "steno@v1".to_string(),
        canary: Some("steno@v2".to_string()),
        canary_weight_percent: 100,
    };

    let (public, router_pid) = as_an_opsd_that_is_then_killed(async {
        let platform: Arc<LocalPlatform> = start().await.unwrap();
        let public = platform.public_address("steno").unwrap();
        platform.ensure_running(&v1).await.unwrap();
        platform.ensure_running(&v2).await.unwrap();
        platform.set_split("steno", &split).await.unwrap();
        assert_eq!(reported_version(public).await.unwrap(), "v2");
        let router_pid = platform.router_pid("steno").unwrap();
        std::mem::forget(platform);
        (public, router_pid)
    });

    runtime().block_on(async {
        // No opsd: the router still serves, on the split it was given.
        for _ in 0..20 {
            assert_eq!(reported_version(public).await.unwrap(), "v2");
        }
        let platform = start().await.unwrap();
        assert_eq!(platform.public_address("steno"), Some(public));
        assert_eq!(platform.router_pid("steno"), Some(router_pid));
        assert_eq!(
            platform.current_split("steno").await.unwrap(),
            Some(split.clone())
        );
        platform.ensure_running(&v1).await.unwrap();
        platform.ensure_running(&v2).await.unwrap();
        let now = chrono::Utc::now().timestamp();
        let samples = crate::platform::MetricSource::samples(
            platform.as_ref(),
            "steno",
            "steno@v2",
            now - 60,
            now + 2,
        )
        .await
        .unwrap();
        let counted: u64 = samples.iter().map(|second| second.sample.requests).sum();
        assert_eq!(counted, 21, "the router kept counting while opsd was away");

        // Back to v1, stop v2: the router no longer knows where v2 was.
        platform
            .set_split("steno", &TrafficSplit::all_to("steno@v1"))
            .await
            .unwrap();
        platform.stop(&v2).await.unwrap();
        assert_eq!(reported_version(public).await.unwrap(), "v1");

        let v1_port = platform.address_of("steno@v1").unwrap().port();
        tokio::time::timeout(Duration::from_secs(30), platform.shutdown())
            .await
            .unwrap();
        assert!(process_gone(router_pid));
        assert!(!port_open(public.port()).await);
        assert!(!port_open(v1_port).await);
        let left: Vec<_> = std::fs::read_dir(setup.state_dir.join("routers"))
            .unwrap()
            .chain(std::fs::read_dir(setup.state_dir.join("releases")).unwrap())
            .collect();
        assert!(left.is_empty(), "records or sockets left: {left:?}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_process_that_dies_is_started_again_on_the_same_address_and_split() {
    let dir = tempfile::tempdir().unwrap();
    let config = steno_service("steno", &dir.path().join("data"));
    let setup = FailStaticSetup {
        program: opsd_binary(),
        state_dir: dir.path().join("data-plane"),
    };
    let platform = LocalPlatform::start_fail_static(
        vec![(config, "127.0.0.1:0".parse().unwrap())],
        dir.path().join("logs"),
        Secrets::default(),
        &setup,
    )
    .await
    .unwrap();
    let public = platform.public_address("steno").unwrap();
    let v1 = release("v1");
    platform.ensure_running(&v1).await.unwrap();
    platform
        .set_split("steno", &TrafficSplit::all_to("steno@v1"))
        .await
        .unwrap();
    let first = platform.router_pid("steno").unwrap();
    super::process_records::ProcessIdentity::of(first)
        .unwrap()
        .signal_group(libc::SIGKILL);
    super::test_support::eventually(
        "the router is started again and serves v1",
        Duration::from_secs(20),
        async || {
            platform.router_pid("steno").is_some_and(|pid| pid != first)
                && reported_version(public)
                    .await
                    .is_ok_and(|version| version == "v1")
        },
    )
    .await;
    assert_eq!(platform.public_address("steno"), Some(public));
    assert_eq!(
        platform.current_split("steno").await.unwrap(),
        Some(TrafficSplit::all_to("steno@v1"))
    );
    let second = platform.router_pid("steno").unwrap();
    platform.shutdown().await;
    assert!(process_gone(second));
    assert!(!port_open(public.port()).await);
}

#[test]
fn stopping_a_release_the_next_opsd_never_readopted_stops_its_recorded_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = steno_service("steno", &dir.path().join("data"));
    let logs = dir.path().join("logs");
    let v2 = release("v2");
    let supervisor = || {
        Supervisor::new(vec![config.clone()], &logs)
            .unwrap()
            .with_release_records(records_dir(dir.path()))
    };
    let pid = as_an_opsd_that_is_then_killed(async {
        let first = supervisor();
        first.ensure_running(&v2).await.unwrap();
        let pid = first.pid_of("steno@v2").unwrap();
        std::mem::forget(first);
        pid
    });
    runtime().block_on(async {
        // The rollout that ran v2 ended before the canary was asked for again: its loser is
        // stopped by spec.
        let second = supervisor();
        second.stop(&v2).await.unwrap();
        assert!(process_gone(pid));
        assert_eq!(recorded_releases(dir.path()), 0);
    });
}
