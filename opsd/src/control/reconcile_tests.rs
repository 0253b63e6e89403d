//! The daemon in-process, on a fake platform and a clock the test moves: a rollout watched at
//! 100 % and promoted, one rolled back during its watch, one promoted without a watch, one rolled
//! back, a platform error retried, and opsd restarted in the middle of a step. The world these
//! tests build (`World`, `FakePlatform`, `TestClock`) is shared with `gate_tests` and
//! `production_watch_tests`.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use super::*;
use crate::core::rollout::Phase;
use crate::core::traffic::{latency_bucket, SecondSample, TrafficSample};
use crate::platform::dispatch::NoPlatformExtras;
use crate::platform::{HealthStatus, MetricSource, PlatformError, ReleaseRunner, TrafficShifter};

/// A clock the test sets.
pub(super) struct TestClock(AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl TestClock {
    pub(super) fn advance_secs(&self, seconds: i64) {
        self.0.fetch_add(seconds * 1000, Ordering::SeqCst);
    }

    /// Sets the clock to `at_ms` (ms since the epoch).
    pub(super) fn set_ms(&self, at_ms: i64) {
        self.0.store(at_ms, Ordering::SeqCst);
    }
}

/// Per-second traffic of one release: requests and the share of them that fail.
#[derive(Clone, Copy)]
struct Traffic {
    requests: u64,
    errors: u64,
}

/// The platform capabilities a rollout moves, in memory: releases that start at once, a split
/// table, traffic by release version, and a switch that makes the next split changes fail.
#[derive(Default)]
pub(super) struct FakePlatform {
    /// Crashes of any release so far, as a supervisor would count them.
    pub(super) crashes: std::sync::atomic::AtomicU64,
    running: StdMutex<HashSet<String>>,
    /// The versions started, in order.
    pub(super) started: StdMutex<Vec<String>>,
    stopped: StdMutex<Vec<String>>,
    splits: StdMutex<HashMap<String, TrafficSplit>>,
    /// The canary's weight of every split set, in order.
    pub(super) canary_weights_set: StdMutex<Vec<u32>>,
    traffic: StdMutex<HashMap<String, Traffic>>,
    failing_split_changes: AtomicU32,
    /// What a version reports of its migrations (`migrations --json`), when set; otherwise the
    /// one expand migration every version has.
    pub(super) migration_reports: StdMutex<HashMap<String, String>>,
    /// Makes every migration command (not the listing) fail.
    pub(super) failing_migrations: std::sync::atomic::AtomicBool,
    /// Starts, stops and migration commands, in order: `start v2`, `stop v1`, `v2: migrate ...`.
    pub(super) log: StdMutex<Vec<String>>,
}

impl FakePlatform {
    pub(super) fn set_traffic(&self, version: &str, requests: u64, errors: u64) {
        self.traffic
            .lock()
            .unwrap()
            .insert(version.to_string(), Traffic { requests, errors });
    }

    /// The steno service's split as last set.
    pub(super) fn split(&self) -> TrafficSplit {
        self.splits.lock().unwrap()["steno"].clone()
    }
}

#[async_trait::async_trait]
impl ReleaseRunner for FakePlatform {
    async fn ensure_running(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        if self.running.lock().unwrap().insert(release.release_id()) {
            self.started.lock().unwrap().push(release.version.clone());
            self.log
                .lock()
                .unwrap()
                .push(format!("start {}", release.version));
        }
        Ok(())
    }
    async fn stop(&self, release: &ReleaseSpec) -> Result<(), PlatformError> {
        self.running.lock().unwrap().remove(&release.release_id());
        self.stopped.lock().unwrap().push(release.version.clone());
        self.log
            .lock()
            .unwrap()
            .push(format!("stop {}", release.version));
        Ok(())
    }
    async fn run_task(
        &self,
        release: &ReleaseSpec,
        args: &[String],
        _timeout: std::time::Duration,
    ) -> Result<crate::platform::TaskOutput, PlatformError> {
        let output = |success: bool, stdout: String| crate::platform::TaskOutput {
            success,
            ended: format!("exit status {}", if success { 0 } else { 1 }),
            stdout,
            stderr: if success {
                String::new()
            } else {
                "migration 9001 failed: disk full".into()
            },
        };
        if args.first().map(String::as_str) == Some("migrations") {
            let report = self
                .migration_reports
                .lock()
                .unwrap()
                .get(&release.version)
                .cloned();
            return Ok(output(
                true,
                report.unwrap_or_else(|| {
                    r#"{"migrations":[{"version":1,"name":"initial","class":"expand"}]}"#.into()
                }),
            ));
        }
        self.log
            .lock()
            .unwrap()
            .push(format!("{}: {}", release.version, args.join(" ")));
        let success = !self.failing_migrations.load(Ordering::SeqCst);
        Ok(output(
            success,
            "applied: some\ndatabase is at schema version 9001".into(),
        ))
    }
    async fn probe_health(&self, release: &ReleaseSpec) -> HealthStatus {
        if self.running.lock().unwrap().contains(&release.release_id()) {
            HealthStatus::Healthy
        } else {
            HealthStatus::Unhealthy("not running".into())
        }
    }
    async fn running(&self) -> Vec<ReleaseSpec> {
        Vec::new()
    }
    async fn crashes(&self, _release: &ReleaseSpec) -> u64 {
        self.crashes.load(Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TrafficShifter for FakePlatform {
    async fn set_split(&self, service: &str, split: &TrafficSplit) -> Result<(), PlatformError> {
        let failing = &self.failing_split_changes;
        if failing.load(Ordering::SeqCst) > 0 {
            failing.fetch_sub(1, Ordering::SeqCst);
            return Err(PlatformError::Operation {
                operation: "set_split".into(),
                message: "the router did not answer".into(),
            });
        }
        self.splits
            .lock()
            .unwrap()
            .insert(service.to_string(), split.clone());
        self.canary_weights_set
            .lock()
            .unwrap()
            .push(u32::from(split.canary_weight_percent));
        Ok(())
    }
    async fn current_split(&self, service: &str) -> Result<Option<TrafficSplit>, PlatformError> {
        Ok(self.splits.lock().unwrap().get(service).cloned())
    }
}

#[async_trait::async_trait]
impl MetricSource for FakePlatform {
    async fn samples(
        &self,
        _service: &str,
        release_id: &str,
        from_second: i64,
        to_second: i64,
    ) -> Result<Vec<SecondSample>, PlatformError> {
        let version = release_id.rsplit('@').next().unwrap_or_default();
        let Some(traffic) = self.traffic.lock().unwrap().get(version).copied() else {
            return Ok(Vec::new());
        };
        Ok((from_second..to_second)
            .map(|second| {
                let mut sample = TrafficSample {
                    requests: traffic.requests,
                    errors: traffic.errors,
                    latency_total_ms: traffic.requests * 20,
                    ..TrafficSample::default()
                };
                sample.latency_buckets[latency_bucket(20)] = traffic.requests;
                SecondSample { second, sample }
            })
            .collect())
    }
}

/// One test's world: a daemon on the fake platform, its clock, store and platform.
pub(super) struct World {
    pub(super) daemon: Arc<Daemon>,
    pub(super) clock: Arc<TestClock>,
    pub(super) platform: Arc<FakePlatform>,
    pub(super) store: Store,
}

pub(super) const CONFIG: &str = "services:\n  steno:\n    initial_version: v1\n    plan: Canary10Percent5Minutes\nanalysis:\n  min_requests: 200\n  on_inconclusive: hold\n";

async fn daemon_on(
    platform: Arc<FakePlatform>,
    store: Store,
    clock: Arc<TestClock>,
) -> Arc<Daemon> {
    daemon_with_config(CONFIG, platform, store, clock).await
}

/// A daemon reading `config_text` as its opsd.yaml (the embedded alarm rules).
pub(super) async fn daemon_with_config(
    config_text: &str,
    platform: Arc<FakePlatform>,
    store: Store,
    clock: Arc<TestClock>,
) -> Arc<Daemon> {
    let config = Config::parse(
        "opsd.yaml",
        config_text,
        Path::new("/nonexistent"),
        Path::new("/usr/bin/steno"),
    )
    .expect("the test configuration is valid");
    let platforms = Platforms {
        runner: platform.clone(),
        shifter: platform.clone(),
        metrics: platform.clone(),
        alarms: Arc::new(NoPlatformExtras),
        cdn: Arc::new(NoPlatformExtras),
    };
    let databases = Arc::new(DatabasePlatforms::new(&config));
    let (notifier, _delivery) = Notifier::start(Vec::new(), Vec::new(), None);
    Daemon::start_with_clock(config, store, platforms, databases, notifier, clock)
        .await
        .expect("the daemon starts")
}

pub(super) async fn world() -> World {
    world_with_config(CONFIG).await
}

/// A world whose daemon reads `config_text` as its opsd.yaml.
pub(super) async fn world_with_config(config_text: &str) -> World {
    world_with(config_text, 1_780_000_000_000).await
}

/// A world configured by `config_text` whose clock starts at `start_ms`.
pub(super) async fn world_with(config_text: &str, start_ms: i64) -> World {
    let platform = Arc::new(FakePlatform::default());
    let store = crate::store::test_store().await;
    let clock = Arc::new(TestClock(AtomicI64::new(start_ms)));
    let daemon =
        daemon_with_config(config_text, platform.clone(), store.clone(), clock.clone()).await;
    World {
        daemon,
        clock,
        platform,
        store,
    }
}

impl World {
    /// One reconciler pass, then room for the tasks it spawned (the canary's start) to finish.
    pub(super) async fn tick(&self) {
        self.daemon.reconcile_service("steno").await;
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
    }

    pub(super) async fn deploy(&self, version: &str) -> String {
        self.deploy_request(DeployRequest {
            version: version.into(),
            ..DeployRequest::default()
        })
        .await
    }

    /// Deploys `version` with no watch after promotion, so it is promoted as soon as it reaches 100 %.
    pub(super) async fn deploy_unwatched(&self, version: &str) -> String {
        self.deploy_request(DeployRequest {
            version: version.into(),
            watch: Some("0".into()),
            ..DeployRequest::default()
        })
        .await
    }

    /// Deploys as the system actor; the rollout's id.
    async fn deploy_request(&self, request: DeployRequest) -> String {
        let view = self
            .daemon
            .deploy("steno", request, &Actor::system())
            .await
            .expect("the deploy is accepted");
        view.id
    }

    pub(super) async fn phase(&self, id: &str) -> Phase {
        self.daemon.rollout(id).await.unwrap().phase
    }

    /// Ticks once a second of the test's clock until the rollout leaves `phase` or
    /// `max_seconds` pass.
    pub(super) async fn run_while(&self, id: &str, phase: Phase, max_seconds: i64) {
        for _ in 0..max_seconds {
            if self.phase(id).await != phase {
                return;
            }
            self.clock.advance_secs(1);
            self.tick().await;
        }
    }

    /// A rollout of v2 over v1, baking at its first step, with per-second traffic of 50 requests
    /// to each release and `canary_errors` of the canary's failing.
    pub(super) async fn baking(canary_errors: u64) -> (World, String) {
        let world = world().await;
        world.platform.set_traffic("v1", 50, 0);
        world.platform.set_traffic("v2", 50, canary_errors);
        let id = world.deploy("v2").await;
        world.tick().await;
        world.tick().await;
        (world, id)
    }

    /// The rollout ended with all traffic on `winner`, the winner recorded as the stable
    /// release, and `loser` stopped.
    pub(super) async fn assert_settled_on(&self, winner: &str, loser: &str) {
        assert_eq!(
            self.platform.split(),
            TrafficSplit::all_to(&format!("steno@{winner}"))
        );
        assert_eq!(
            *self.platform.stopped.lock().unwrap(),
            vec![loser.to_string()]
        );
        let stable = self.store.stable_release("steno").await.unwrap().unwrap();
        assert_eq!(stable.version, winner);
    }

    pub(super) async fn event_kinds(&self) -> Vec<String> {
        let mut events = self
            .store
            .list_events(Some("steno"), None, 100)
            .await
            .unwrap();
        events.reverse();
        events.into_iter().map(|event| event.kind).collect()
    }
}

impl World {
    /// Ticks once a second until the canary takes `weight` % or `max_seconds` pass.
    async fn run_until_weight(&self, weight: u8, max_seconds: i64) {
        for _ in 0..max_seconds {
            if self.platform.split().canary_weight_percent == weight
                || (weight == 100
                    && self.platform.split().canary.is_none()
                    && self.platform.split().stable == "steno@v2")
            {
                return;
            }
            self.clock.advance_secs(1);
            self.tick().await;
        }
    }

    fn is_running(&self, version: &str) -> bool {
        self.platform
            .running
            .lock()
            .unwrap()
            .contains(&format!("steno@{version}"))
    }

    /// A new daemon on the same store, platform and clock, as after an opsd restart.
    pub(super) async fn restarted(&self) -> World {
        World {
            daemon: daemon_on(
                self.platform.clone(),
                self.store.clone(),
                self.clock.clone(),
            )
            .await,
            clock: self.clock.clone(),
            platform: self.platform.clone(),
            store: self.store.clone(),
        }
    }

    pub(super) async fn decision_kinds(&self, id: &str) -> Vec<String> {
        self.daemon
            .rollout(id)
            .await
            .unwrap()
            .decisions
            .into_iter()
            .map(|decision| decision.kind)
            .collect()
    }
}

/// R-WATCH-1: the preset's 15-minute watch at 100 % comes before the promotion, with v1 warm.
#[tokio::test]
async fn a_healthy_canary_is_baked_at_ten_percent_watched_at_full_traffic_then_promoted() {
    let (world, id) = World::baking(0).await;
    assert_eq!(world.phase(&id).await, Phase::Baking);
    let split = world.platform.split();
    assert_eq!(split.canary.as_deref(), Some("steno@v2"));
    assert_eq!(split.canary_weight_percent, 10);

    world.run_until_weight(100, 10 * 60).await;
    assert_eq!(world.platform.split(), TrafficSplit::all_to("steno@v2"));
    let watching = world.daemon.rollout(&id).await.unwrap();
    assert_eq!(watching.phase, Phase::Baking);
    assert!(watching.state.is_watching());
    assert!(
        watching.summary.contains("watched for 15m"),
        "{}",
        watching.summary
    );
    let reference = watching.state.reference.expect("v1's traffic was recorded");
    assert_eq!(reference.version, "v1");
    assert_eq!(reference.to_ms - reference.from_ms, 15 * 60 * 1000);
    assert!(world.is_running("v1"), "the previous release stays warm");

    // Fourteen minutes into the watch nothing is promoted yet; v1 still runs.
    world.clock.advance_secs(14 * 60);
    world.tick().await;
    assert_eq!(world.phase(&id).await, Phase::Baking);
    assert!(world.is_running("v1"));

    world.run_while(&id, Phase::Baking, 2 * 60).await;
    assert_eq!(world.phase(&id).await, Phase::Promoted);
    world.assert_settled_on("v2", "v1").await;
    assert_eq!(
        world.decision_kinds(&id).await,
        vec!["start", "advance", "promote"]
    );
    let promote = world
        .daemon
        .rollout(&id)
        .await
        .unwrap()
        .decisions
        .pop()
        .unwrap();
    assert!(
        promote
            .summary
            .contains("the watch at 100 % ended clean after 15m"),
        "{}",
        promote.summary
    );
    assert!(promote.evidence["reference"]["traffic"]["requests"].as_u64() > Some(0));
}

/// R-WATCH-4: a release that starts failing after reaching 100 % is rolled back during the watch
/// to the warm previous release, which takes all traffic on the same tick without a restart.
#[tokio::test]
async fn a_release_failing_during_the_watch_is_rolled_back_to_the_warm_previous_release() {
    let (world, id) = World::baking(0).await;
    world.run_until_weight(100, 10 * 60).await;
    assert_eq!(world.platform.split(), TrafficSplit::all_to("steno@v2"));
    world.clock.advance_secs(20);
    world.tick().await;
    assert_eq!(world.phase(&id).await, Phase::Baking);

    world.platform.set_traffic("v2", 50, 10);
    world.run_while(&id, Phase::Baking, 60).await;
    assert_eq!(world.phase(&id).await, Phase::RolledBack);
    world.assert_settled_on("v1", "v2").await;
    assert_eq!(
        *world.platform.started.lock().unwrap(),
        vec!["v1".to_string(), "v2".to_string()],
        "v1 was never started again: it stayed warm"
    );
    let rollback = world
        .daemon
        .rollout(&id)
        .await
        .unwrap()
        .decisions
        .pop()
        .unwrap();
    assert_eq!(rollback.kind, "roll_back");
    // Here the error-rate alarm rule fires first (the fake serves whole failing minutes at
    // once); the comparison with v1's recorded traffic is traced in `core::rollout`.
    assert_eq!(rollback.step_index, 1, "{}", rollback.summary);
    assert!(
        rollback.summary.contains("rolled back"),
        "{}",
        rollback.summary
    );
}

/// `--watch 0` (or a plan's `watch: 0`) promotes on reaching 100 %, as before the watch existed.
#[tokio::test]
async fn a_deploy_without_a_watch_is_promoted_on_reaching_full_traffic() {
    let world = world().await;
    world.platform.set_traffic("v1", 50, 0);
    world.platform.set_traffic("v2", 50, 0);
    let request = DeployRequest {
        version: "v2".into(),
        watch: Some("0".into()),
        ..DeployRequest::default()
    };
    let id = world
        .daemon
        .deploy("steno", request, &Actor::system())
        .await
        .unwrap()
        .id;
    world.tick().await;
    world.tick().await;
    world.run_while(&id, Phase::Baking, 10 * 60).await;
    assert_eq!(world.phase(&id).await, Phase::Promoted);
    assert_eq!(world.decision_kinds(&id).await, vec!["start", "promote"]);

    let bad = DeployRequest {
        version: "v3".into(),
        watch: Some("soon".into()),
        ..DeployRequest::default()
    };
    let error = world
        .daemon
        .deploy("steno", bad, &Actor::system())
        .await
        .unwrap_err()
        .to_string();
    assert!(error.starts_with("watch: "), "{error}");
}

#[tokio::test]
async fn a_canary_failing_a_fifth_of_its_requests_is_rolled_back() {
    let (world, id) = World::baking(10).await;
    world.run_while(&id, Phase::Baking, 10 * 60).await;
    assert_eq!(world.phase(&id).await, Phase::RolledBack);
    world.assert_settled_on("v1", "v2").await;
    assert!(world.event_kinds().await.contains(&"roll_back".to_string()));
}

#[tokio::test]
async fn a_rollout_decided_within_its_first_second_keeps_that_second_for_its_charts() {
    let world = world().await;
    world.platform.set_traffic("v1", 500, 0);
    world.platform.set_traffic("v2", 500, 500);
    let id = world.deploy("v2").await;
    for _ in 0..5 {
        world.tick().await;
    }
    assert_eq!(
        world.phase(&id).await,
        Phase::RolledBack,
        "decided without the clock moving"
    );
    let samples = world.store.rollout_samples(&id).await.unwrap();
    assert!(
        !samples.canary.is_empty() && !samples.baseline.is_empty(),
        "the second the decision was made on is kept"
    );
}

#[tokio::test]
async fn a_platform_error_is_on_the_timeline_once_and_retried_on_the_next_tick() {
    let world = world().await;
    world.platform.set_traffic("v1", 50, 0);
    world.platform.set_traffic("v2", 50, 0);
    let id = world.deploy("v2").await;
    world.tick().await;
    world
        .platform
        .failing_split_changes
        .store(2, Ordering::SeqCst);
    world.tick().await;
    world.tick().await;
    assert_eq!(world.platform.split(), TrafficSplit::all_to("steno@v1"));
    let errors = world
        .event_kinds()
        .await
        .into_iter()
        .filter(|kind| kind == "platform_error")
        .count();
    assert_eq!(errors, 1, "the same error is recorded once");
    world.tick().await;
    assert_eq!(world.phase(&id).await, Phase::Baking);
    assert_eq!(world.platform.split().canary_weight_percent, 10);
}

#[tokio::test]
async fn a_decision_the_store_refuses_is_neither_recorded_nor_acted_on() {
    let (world, id) = World::baking(0).await;
    assert_eq!(world.platform.split().canary_weight_percent, 10);
    let decisions_before = world.decision_kinds(&id).await;
    // Something else moves the stored rollout on: the daemon's revision is stale.
    let stored = world.store.get_rollout(&id).await.unwrap().unwrap();
    world
        .store
        .update_rollout(
            &id,
            stored.revision,
            &stored.phase,
            &stored.state_json,
            None,
        )
        .await
        .unwrap();
    // Well past the 5-minute bake that would move the canary to 100 %.
    for _ in 0..400 {
        world.clock.advance_secs(1);
        world.tick().await;
    }
    assert_eq!(
        world.platform.split().canary_weight_percent,
        10,
        "the next step's split is not applied"
    );
    assert_eq!(world.phase(&id).await, Phase::Baking);
    assert_eq!(world.decision_kinds(&id).await, decisions_before);
}

#[tokio::test]
async fn after_a_restart_mid_step_the_rollout_resumes_and_bakes_again() {
    let (world, id) = World::baking(0).await;
    world.clock.advance_secs(120);
    world.tick().await;
    assert_eq!(world.phase(&id).await, Phase::Baking);

    // opsd restarts: a new daemon on the same store; the canary process is gone.
    world.platform.running.lock().unwrap().remove("steno@v2");
    let restarted = world.restarted().await;
    restarted.tick().await;
    restarted.tick().await;
    assert!(restarted
        .platform
        .running
        .lock()
        .unwrap()
        .contains("steno@v2"));
    assert_eq!(
        *restarted.platform.started.lock().unwrap(),
        vec!["v1".to_string(), "v2".to_string(), "v2".to_string()]
    );
    assert!(restarted
        .event_kinds()
        .await
        .contains(&"resumed".to_string()));
    assert_eq!(restarted.phase(&id).await, Phase::Baking);
    assert_eq!(restarted.platform.split().canary_weight_percent, 10);

    // The bake starts again after the restart: still at 10 % 4 minutes later, at 100 % after 5,
    // promoted once the 15-minute watch ends.
    restarted.clock.advance_secs(240);
    restarted.tick().await;
    assert_eq!(restarted.phase(&id).await, Phase::Baking);
    assert_eq!(restarted.platform.split().canary_weight_percent, 10);
    restarted.run_while(&id, Phase::Baking, 25 * 60).await;
    assert_eq!(restarted.phase(&id).await, Phase::Promoted);
    let state = restarted.daemon.rollout(&id).await.unwrap();
    assert_eq!(state.steps, 2);
}

#[tokio::test]
async fn a_rollout_resumed_after_opsd_was_away_longer_than_its_bake_is_judged_only_once_its_canary_runs(
) {
    let (world, id) = World::baking(0).await;
    world.clock.advance_secs(60);
    world.tick().await;
    let decisions_before = world.decision_kinds(&id).await;

    // opsd is away 10 minutes, twice the 5-minute bake; the canary process keeps running (the
    // local data plane fails static) and the restarted opsd takes it over.
    world.clock.advance_secs(600);
    let splits_before = world.platform.canary_weights_set.lock().unwrap().len();
    let restarted = world.restarted().await;
    restarted.tick().await;
    restarted.tick().await;
    let set_since = restarted.platform.canary_weights_set.lock().unwrap()[splits_before..].to_vec();
    assert!(
        set_since.iter().all(|weight| *weight == 10),
        "the canary keeps its share while the restarted opsd takes it over, never all-stable: \
         {set_since:?}"
    );
    assert_eq!(restarted.phase(&id).await, Phase::Baking);
    assert_eq!(
        restarted.platform.split().canary_weight_percent,
        10,
        "the step the rollout was in is baked again, not judged on the time opsd was away"
    );
    let mut expected = decisions_before;
    expected.push("resume".to_string());
    assert_eq!(
        restarted.decision_kinds(&id).await,
        expected,
        "only the re-bake is decided"
    );
    restarted.clock.advance_secs(240);
    restarted.tick().await;
    assert_eq!(restarted.platform.split().canary_weight_percent, 10);
}
