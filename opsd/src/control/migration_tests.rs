//! Schema migrations around a rollout, in-process on the fake platform: expand migrations run
//! before the canary starts (and a failed one fails the rollout with no canary started), a
//! contract migration is refused unless the plan runs it after the watch, then runs once the
//! previous release is stopped, never after a rollback, and bars a rollback past it.

use std::sync::atomic::Ordering;

use super::deploy::{DeployRequest, PlanChoice};
use super::reconcile_tests::{daemon_with_config, world, World, CONFIG};
use super::Actor;
use crate::core::rollout::Phase;
use crate::core::schema::MigrationRun;

const WITH_EXPAND: &str = r#"{"migrations":[{"version":1,"name":"initial","class":"expand"},{"version":9001,"name":"rehearsal_expand","class":"expand"}]}"#;
const WITH_CONTRACT: &str = r#"{"migrations":[{"version":1,"name":"initial","class":"expand"},{"version":9001,"name":"rehearsal_expand","class":"expand"},{"version":9002,"name":"rehearsal_contract","class":"contract"}]}"#;

fn reports(world: &World, version: &str, report: &str) {
    world
        .platform
        .migration_reports
        .lock()
        .unwrap()
        .insert(version.into(), report.into());
}

fn log(world: &World) -> Vec<String> {
    world.platform.log.lock().unwrap().clone()
}

/// A plan document: 10 % for 10 s, then 100 % watched for 30 s, contract migrations after it.
fn contract_plan() -> Option<PlanChoice> {
    Some(PlanChoice::Document(serde_json::json!({
        "name": "expand-contract",
        "steps": [{"weight": 10, "bake": "10s"}, {"weight": 100, "bake": "30s"}],
        "contract_migrations": "after_watch",
    })))
}

/// Deploys v2 with [`contract_plan`] and ticks a second at a time until the rollout ends.
async fn deploy_with_contract_plan_until_it_ends(world: &World) -> String {
    let id = world
        .daemon
        .deploy(
            "steno",
            DeployRequest {
                version: "v2".into(),
                plan: contract_plan(),
                ..DeployRequest::default()
            },
            &Actor::system(),
        )
        .await
        .expect("a plan that contracts after the watch is accepted")
        .id;
    for _ in 0..120 {
        if world.phase(&id).await.is_terminal() {
            break;
        }
        world.clock.advance_secs(1);
        world.tick().await;
    }
    id
}

async fn schema_run(world: &World, id: &str) -> (MigrationRun, MigrationRun) {
    let view = world.daemon.rollout(id).await.unwrap();
    let schema = view.state.schema.expect("the rollout has a schema change");
    (schema.expand_run, schema.contract_run)
}

#[tokio::test]
async fn expand_migrations_run_before_the_canary_starts_and_survive_its_rollback() {
    let world = world().await;
    reports(&world, "v2", WITH_EXPAND);
    world.platform.set_traffic("v1", 50, 0);
    world.platform.set_traffic("v2", 50, 25);
    let id = world.deploy("v2").await;
    world.tick().await;
    assert_eq!(
        log(&world),
        vec!["start v1", "v2: migrate --class expand"],
        "the expand migrations run first, with the canary's environment"
    );
    world.run_while(&id, Phase::Starting, 5).await;
    assert_eq!(log(&world)[2], "start v2", "then the canary starts");
    let view = world.daemon.rollout(&id).await.unwrap();
    let kinds: Vec<&str> = view.decisions.iter().map(|d| d.kind.as_str()).collect();
    assert_eq!(&kinds[..2], ["migrate", "start"]);
    let migrate = &view.decisions[0];
    assert!(
        migrate.summary.contains("9001 rehearsal_expand (expand)")
            && migrate
                .summary
                .contains("the stable release v1 is healthy on the expanded schema"),
        "{}",
        migrate.summary
    );
    assert_eq!(migrate.evidence["migrations"][0]["version"], 9001);
    assert!(matches!(
        schema_run(&world, &id).await.0,
        MigrationRun::Applied(_)
    ));
    world.run_while(&id, Phase::Baking, 60).await;
    assert_eq!(world.phase(&id).await, Phase::RolledBack);
    world.tick().await;
    world.assert_settled_on("v1", "v2").await;
    assert!(
        !log(&world)
            .iter()
            .any(|entry| entry.contains("--class all")),
        "nothing contracts after a rollback: {:?}",
        log(&world)
    );
    assert!(world.event_kinds().await.contains(&"migration".to_string()));
}

#[tokio::test]
async fn failed_expand_migrations_fail_the_rollout_before_the_canary_takes_traffic() {
    let world = world().await;
    reports(&world, "v2", WITH_EXPAND);
    world
        .platform
        .failing_migrations
        .store(true, Ordering::SeqCst);
    let id = world.deploy("v2").await;
    world.tick().await;
    world.tick().await;
    world.tick().await;
    assert_eq!(world.phase(&id).await, Phase::Failed);
    let view = world.daemon.rollout(&id).await.unwrap();
    let last = view.decisions.last().unwrap();
    assert!(
        last.summary
            .contains("the expand migrations 9001 rehearsal_expand (expand) failed")
            && last.summary.contains("disk full"),
        "{}",
        last.summary
    );
    assert!(!world
        .platform
        .started
        .lock()
        .unwrap()
        .contains(&"v2".to_string()));
    assert_eq!(world.platform.split().stable, "steno@v1");
    assert!(matches!(
        schema_run(&world, &id).await.0,
        MigrationRun::Failed(_)
    ));
}

#[tokio::test]
async fn a_contract_migration_is_refused_unless_the_plan_runs_it_after_the_watch() {
    let world = world().await;
    reports(&world, "v2", WITH_CONTRACT);
    world.platform.set_traffic("v1", 50, 0);
    world.platform.set_traffic("v2", 50, 0);
    let refused = world
        .daemon
        .deploy(
            "steno",
            DeployRequest {
                version: "v2".into(),
                ..DeployRequest::default()
            },
            &Actor::system(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("contract migration 9002 rehearsal_contract (contract)")
            && refused.contains("contract_migrations: after_watch"),
        "{refused}"
    );
    assert!(world
        .store
        .list_rollouts(Some("steno"), 10)
        .await
        .unwrap()
        .is_empty());

    let id = deploy_with_contract_plan_until_it_ends(&world).await;
    assert_eq!(world.phase(&id).await, Phase::Promoted);
    for _ in 0..5 {
        world.tick().await;
    }
    let entries = log(&world);
    let stopped = entries.iter().position(|entry| entry == "stop v1").unwrap();
    let contracted = entries
        .iter()
        .position(|entry| entry == "v2: migrate --class all")
        .unwrap_or_else(|| panic!("the contract migrations ran: {entries:?}"));
    assert!(stopped < contracted, "only once v1 is stopped: {entries:?}");
    assert!(matches!(
        schema_run(&world, &id).await.1,
        MigrationRun::Applied(_)
    ));

    let rollback = world
        .daemon
        .rollback("steno", &Actor::system(), Some("test".into()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        rollback.contains("v1 does not know contract migration 9002 rehearsal_contract")
            && rollback.contains("opsd restore"),
        "{rollback}"
    );
}

#[tokio::test]
async fn contract_migrations_never_run_after_a_rollback() {
    let world = world().await;
    reports(&world, "v2", WITH_CONTRACT);
    world.platform.set_traffic("v1", 50, 0);
    world.platform.set_traffic("v2", 50, 25);
    let id = deploy_with_contract_plan_until_it_ends(&world).await;
    assert_eq!(world.phase(&id).await, Phase::RolledBack);
    world.tick().await;
    assert_eq!(schema_run(&world, &id).await.1, MigrationRun::Skipped);
    assert!(!log(&world)
        .iter()
        .any(|entry| entry.contains("--class all")));
}

#[tokio::test]
async fn contract_migrations_pending_when_opsd_stopped_run_after_the_restart() {
    let world = world().await;
    reports(&world, "v2", WITH_CONTRACT);
    world.platform.set_traffic("v1", 50, 0);
    world.platform.set_traffic("v2", 50, 0);
    let id = world
        .daemon
        .deploy(
            "steno",
            DeployRequest {
                version: "v2".into(),
                plan: contract_plan(),
                ..DeployRequest::default()
            },
            &Actor::system(),
        )
        .await
        .unwrap()
        .id;
    // Tick until the promotion, and stop there: the contract migrations are started but their
    // end is not recorded (opsd stops now).
    for _ in 0..120 {
        if world.phase(&id).await == Phase::Promoted {
            break;
        }
        world.clock.advance_secs(1);
        world.tick().await;
    }
    assert_eq!(schema_run(&world, &id).await.1, MigrationRun::Pending);

    let restarted = daemon_with_config(
        CONFIG,
        world.platform.clone(),
        world.store.clone(),
        world.clock.clone(),
    )
    .await;
    for _ in 0..3 {
        restarted.reconcile_service("steno").await;
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
    }
    assert!(matches!(
        schema_run(&world, &id).await.1,
        MigrationRun::Applied(_)
    ));
    assert!(
        world
            .event_kinds()
            .await
            .iter()
            .filter(|kind| *kind == "migration")
            .count()
            >= 2
    );
}
