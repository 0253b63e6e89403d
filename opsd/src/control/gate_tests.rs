//! The gates a deploy passes and what a rollout waits for, through the daemon in-process (the
//! world of `reconcile_tests`): a rolled-back version quarantined, a freeze, a critical alarm on
//! the stable release, a step waiting for two people's approval (R-GATE-8), deploy windows
//! (R-GATE-6: refused, queued, waited for at a step's weight) and an operator's maintenance
//! window letting a deploy through a closed deploy window (R-WINDOW-1).

use super::reconcile_tests::{world, world_with, World, CONFIG};
use super::*;
use crate::core::rollout::Phase;

impl World {
    /// Deploys `request` to steno and expects a gate to refuse it (`expectation` says why): the
    /// refusal's message.
    async fn deploy_refused(&self, request: DeployRequest, expectation: &str) -> String {
        let refused = self
            .daemon
            .deploy("steno", request, &Actor::system())
            .await
            .expect_err(expectation);
        assert!(matches!(refused, ControlError::GateClosed(_)), "{refused}");
        refused.to_string()
    }

    /// Deploys `request` to steno and expects it accepted (`expectation` says why): the new
    /// rollout's id.
    async fn deploy_accepted(&self, request: DeployRequest, expectation: &str) -> String {
        self.daemon
            .deploy("steno", request, &Actor::system())
            .await
            .expect(expectation)
            .id
    }

    /// Ticks every ten seconds of the test's clock for `seconds`.
    async fn run_for(&self, seconds: i64) {
        for _ in 0..seconds / 10 {
            self.clock.advance_secs(10);
            self.tick().await;
        }
    }

    /// How many events of `kind` are on steno's timeline.
    async fn count_events(&self, kind: &str) -> usize {
        self.event_kinds()
            .await
            .iter()
            .filter(|event| *event == kind)
            .count()
    }
}

/// Deploys may move in the first half of every hour (UTC); `outside` is `refuse` or `queue`.
fn half_hours(outside: &str) -> String {
    format!(
        "{CONFIG}deploy_windows:\n  outside: {outside}\n  windows:\n    - {{name: half-hours, start: \"0 * * * *\", duration: 30m}}\n"
    )
}

/// A world with the deploy windows of [`half_hours`] whose clock starts at `start_ms`, both
/// releases serving 50 requests a second without errors.
async fn half_hourly_world(outside: &str, start_ms: i64) -> World {
    let world = world_with(&half_hours(outside), start_ms).await;
    world.platform.set_traffic("v1", 50, 0);
    world.platform.set_traffic("v2", 50, 0);
    world
}

/// 2026-12-03T10:27:00Z, three minutes before the window closes.
const AT_10_27: i64 = 1_796_293_620_000;
/// 2026-12-03T10:40:00Z, outside the window.
const AT_10_40: i64 = 1_796_294_400_000;
/// 2026-12-03T11:00:00Z, when the next window opens.
const AT_11_00: i64 = 1_796_295_600_000;

#[tokio::test]
async fn a_rolled_back_version_is_refused_until_an_audited_override() {
    let (world, id) = World::baking(10).await;
    world.run_while(&id, Phase::Baking, 10 * 60).await;
    assert_eq!(world.phase(&id).await, Phase::RolledBack);

    let again = DeployRequest {
        version: "v2".into(),
        ..DeployRequest::default()
    };
    let message = world
        .deploy_refused(again.clone(), "a rolled-back version is quarantined")
        .await;
    assert!(
        message.contains("quarantine gate: v2 was rolled back"),
        "{message}"
    );
    assert!(message.contains(&id), "{message}");

    let without_reason = DeployRequest {
        overrides: vec!["quarantine".into()],
        ..again.clone()
    };
    assert!(world
        .daemon
        .deploy("steno", without_reason, &Actor::system())
        .await
        .is_err());
    let overridden = DeployRequest {
        overrides: vec!["quarantine".into()],
        reason: Some("the failure was a bad feature flag, now off".into()),
        ..again
    };
    world
        .deploy_accepted(overridden, "an override with a reason is accepted")
        .await;
    let audit = world.store.list_audit(10).await.unwrap();
    let entry = audit
        .iter()
        .find(|entry| entry.action == "override_quarantine")
        .expect("the override is audited");
    assert_eq!(entry.detail["rolled_back_by"], id.as_str());
    assert_eq!(
        entry.reason.as_deref(),
        Some("the failure was a bad feature flag, now off")
    );

    // Another version is not affected.
    let (other, _) = World::baking(0).await;
    assert_eq!(other.platform.split().canary_weight_percent, 10);
}

#[tokio::test]
async fn a_freeze_of_one_service_refuses_its_deploys_until_lifted() {
    let world = world().await;
    let alice = Actor {
        name: "alice".into(),
        role: "operator".into(),
    };
    assert!(
        world
            .daemon
            .freeze(Some("steno"), None, &alice)
            .await
            .is_err(),
        "a freeze needs a reason"
    );
    assert!(world
        .daemon
        .freeze(Some("billing"), Some("x".into()), &alice)
        .await
        .is_err());
    world
        .daemon
        .freeze(Some("steno"), Some("schema work".into()), &alice)
        .await
        .unwrap();
    let request = DeployRequest {
        version: "v2".into(),
        ..DeployRequest::default()
    };
    let message = world
        .deploy_refused(request, "a frozen service refuses deploys")
        .await;
    assert!(message.contains("steno is frozen"), "{message}");
    assert!(message.contains("by alice: schema work"), "{message}");
    assert!(message.contains("`opsd unfreeze steno`"), "{message}");
    assert!(world.event_kinds().await.contains(&"freeze".to_string()));

    let lifted = world
        .daemon
        .unfreeze(Some("steno"), None, &alice)
        .await
        .unwrap();
    assert_eq!(lifted.reason, "schema work");
    assert!(world.daemon.unfreeze(None, None, &alice).await.is_err());
    world.deploy("v2").await;
    let actions: Vec<String> = world
        .store
        .list_audit(10)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect();
    assert!(actions.contains(&"freeze".to_string()), "{actions:?}");
    assert!(actions.contains(&"unfreeze".to_string()), "{actions:?}");
}

#[tokio::test]
async fn a_critical_alarm_on_the_stable_release_refuses_a_deploy_unless_it_is_the_fix() {
    let world = world().await;
    assert!(
        world
            .daemon
            .config()
            .policy
            .alarms
            .iter()
            .any(|rule| rule.name == "api-5xx"),
        "the shipped rules are in force"
    );
    world.platform.set_traffic("v1", 50, 20);
    let request = DeployRequest {
        version: "v2".into(),
        ..DeployRequest::default()
    };
    let message = world
        .deploy_refused(request.clone(), "a critical alarm fires on v1")
        .await;
    assert!(message.contains("refused by the alarm gate"), "{message}");
    assert!(message.contains("api-5xx"), "{message}");
    assert!(message.contains("steno@v1"), "{message}");

    let hotfix = DeployRequest {
        overrides: vec!["alarm".into()],
        reason: Some("v2 fixes the 5xx".into()),
        ..request
    };
    world
        .deploy_accepted(hotfix, "the fix passes with an audited override")
        .await;
    let audit = world.store.list_audit(10).await.unwrap();
    let entry = audit
        .iter()
        .find(|entry| entry.action == "override_alarm_gate")
        .expect("the override is audited");
    assert!(entry.detail["firing"].to_string().contains("api-5xx"));
}

/// R-GATE-8 through the daemon: `approve` is refused while nothing waits and when the same
/// person approves twice; two different people move the rollout on.
#[tokio::test]
async fn approvals_come_from_different_people_and_move_the_rollout_on() {
    let world = world().await;
    world.platform.set_traffic("v1", 50, 0);
    world.platform.set_traffic("v2", 50, 0);
    let person = |name: &str| Actor {
        name: name.into(),
        role: "operator".into(),
    };
    let plan = serde_json::json!({"name": "gated", "steps": [
        {"weight": 10, "bake": "1m"},
        {"weight": 100, "approve": {"approvers": 2, "timeout": "30m"}}
    ]});
    let request = DeployRequest {
        version: "v2".into(),
        plan: Some(PlanChoice::Document(plan)),
        ..DeployRequest::default()
    };
    let id = world
        .deploy_accepted(request, "a plan with an approval step is accepted")
        .await;
    world.tick().await;
    world.tick().await;
    let early = world.daemon.approve("steno", &person("alice"), None).await;
    assert!(
        matches!(&early, Err(ControlError::Conflict(message)) if message.contains("not waiting for an approval")),
        "{early:?}"
    );

    world.clock.advance_secs(61);
    world.tick().await;
    assert_eq!(
        *world.decision_kinds(&id).await.last().unwrap(),
        "await_approval"
    );
    world
        .daemon
        .approve(
            "steno",
            &person("alice"),
            Some("dashboards look fine".into()),
        )
        .await
        .unwrap();
    let twice = world.daemon.approve("steno", &person("alice"), None).await;
    assert!(
        matches!(&twice, Err(ControlError::Conflict(message)) if message.contains("alice already approved")),
        "{twice:?}"
    );
    assert_eq!(world.platform.split().canary_weight_percent, 10);
    world
        .daemon
        .approve("steno", &person("bob"), None)
        .await
        .unwrap();
    world.tick().await;
    assert_eq!(world.phase(&id).await, Phase::Promoted);
    assert!(world.event_kinds().await.contains(&"approval".to_string()));
    let audit = world.store.list_audit(10).await.unwrap();
    let approvers: Vec<&str> = audit
        .iter()
        .filter(|entry| entry.action == "approve")
        .map(|entry| entry.actor.as_str())
        .collect();
    assert_eq!(approvers.len(), 2, "each counted approval is audited once");
    assert!(approvers.contains(&"alice") && approvers.contains(&"bob"));
}

#[tokio::test]
async fn a_rollout_whose_bake_ends_outside_the_window_waits_at_its_weight_then_resumes() {
    let world = half_hourly_world("refuse", AT_10_27).await;
    let id = world.deploy_unwatched("v2").await;
    world.tick().await;
    world.tick().await;
    assert_eq!(world.phase(&id).await, Phase::Baking);

    // The 5-minute bake ends at 10:32, after the window closed at 10:30.
    world.run_for(6 * 60).await;
    let view = world.daemon.rollout(&id).await.unwrap();
    assert_eq!(view.phase, Phase::Baking);
    assert_eq!(view.canary_weight_percent, 10);
    assert_eq!(world.platform.split().canary_weight_percent, 10);
    assert_eq!(
        view.waiting_for_window.as_deref(),
        Some("waiting for the deploy window: opens Thu 2026-12-03 11:00 UTC")
    );
    world.run_for(60).await;
    assert_eq!(
        world.count_events("wait").await,
        1,
        "one event when it starts waiting"
    );

    world.clock.set_ms(AT_11_00);
    world.tick().await;
    assert_eq!(world.phase(&id).await, Phase::Promoted);
    world.assert_settled_on("v2", "v1").await;
    assert_eq!(
        world.decision_kinds(&id).await,
        vec!["start", "wait", "resume", "promote"]
    );
}

#[tokio::test]
async fn a_deploy_queued_outside_the_window_starts_its_canary_when_the_window_opens() {
    let world = half_hourly_world("queue", AT_10_40).await;
    let id = world.deploy("v2").await;
    let view = world.daemon.rollout(&id).await.unwrap();
    assert_eq!(view.phase, Phase::Starting);
    assert_eq!(
        view.waiting_for_window.as_deref(),
        Some("waiting for the deploy window: opens Thu 2026-12-03 11:00 UTC")
    );
    world.run_for(5 * 60).await;
    assert_eq!(world.phase(&id).await, Phase::Starting);
    assert_eq!(
        *world.platform.started.lock().unwrap(),
        vec!["v1".to_string()],
        "no canary runs before the window opens"
    );
    assert_eq!(world.platform.split(), TrafficSplit::all_to("steno@v1"));

    world.clock.set_ms(AT_11_00);
    world.tick().await;
    world.tick().await;
    world.tick().await;
    let view = world.daemon.rollout(&id).await.unwrap();
    assert_eq!(view.phase, Phase::Baking);
    assert_eq!(view.waiting_for_window, None);
    assert_eq!(world.platform.split().canary_weight_percent, 10);
    assert_eq!(
        view.decisions[0].summary,
        "the deploy window opened; starting the canary"
    );
}

#[tokio::test]
async fn a_deploy_outside_the_window_is_refused_until_an_audited_override_which_then_never_waits() {
    let world = half_hourly_world("refuse", AT_10_40).await;
    let request = DeployRequest {
        version: "v2".into(),
        watch: Some("0".into()),
        ..DeployRequest::default()
    };
    let message = world
        .deploy_refused(request.clone(), "outside the window")
        .await;
    assert!(
        message.contains("refused by the deploy window gate: outside every deploy window"),
        "{message}"
    );
    assert!(
        message.contains("opens Thu 2026-12-03 11:00 UTC"),
        "{message}"
    );
    assert!(message.contains("--override window"), "{message}");

    let overridden = DeployRequest {
        overrides: vec!["window".into()],
        reason: Some("hotfix for the login outage".into()),
        ..request
    };
    let id = world
        .deploy_accepted(overridden, "an override with a reason is accepted")
        .await;
    let audit = world.store.list_audit(10).await.unwrap();
    let entry = audit
        .iter()
        .find(|entry| entry.action == "override_deploy_window")
        .expect("the override is audited");
    assert_eq!(entry.reason.as_deref(), Some("hotfix for the login outage"));
    assert_eq!(entry.detail["gate"], "window");
    // Overridden: its steps advance outside the window too.
    world.tick().await;
    world.tick().await;
    world.run_for(6 * 60).await;
    assert_eq!(world.phase(&id).await, Phase::Promoted);
    assert_eq!(world.count_events("wait").await, 0);
}

/// R-WINDOW-1: an operator's maintenance window in force is also a deploy window, unless it was
/// started with `--no-deploys`.
#[tokio::test]
async fn an_operator_maintenance_window_lets_a_deploy_through_a_closed_deploy_window() {
    let world = half_hourly_world("refuse", AT_10_40).await;
    let request = DeployRequest {
        version: "v2".into(),
        watch: Some("0".into()),
        ..DeployRequest::default()
    };
    let operator = Actor {
        name: "alice".into(),
        ..Actor::system()
    };
    let upgrade = |no_deploys| MaintenanceRequest {
        message: "Read-only while the database is upgraded".into(),
        duration: Some("1h".into()),
        no_deploys,
        ..MaintenanceRequest::default()
    };
    world
        .daemon
        .start_maintenance(upgrade(true), &operator)
        .await
        .unwrap();
    world
        .deploy_refused(
            request.clone(),
            "a --no-deploys window keeps the deploy window closed",
        )
        .await;

    world
        .daemon
        .stop_maintenance(None, &operator)
        .await
        .unwrap();
    world
        .daemon
        .start_maintenance(upgrade(false), &operator)
        .await
        .unwrap();
    let id = world
        .deploy_accepted(request, "the maintenance window is a deploy window")
        .await;
    world.tick().await;
    world.tick().await;
    world.run_for(6 * 60).await;
    assert_eq!(world.phase(&id).await, Phase::Promoted);
    assert_eq!(world.count_events("wait").await, 0, "it never waited");
}
