//! Traces of observations and the decisions they lead to: the harness every test module of the
//! rollout shares (`Side`: deterministic traffic of one release; `Trace`: a rollout driven one
//! second at a time), and the bake's verdicts, the cost-per-request hold, operator commands,
//! smoke checks and a start that fails. Alarms, deploy windows, approvals and the watch at 100 %
//! have their own test modules next to this one.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::core::analysis::{AnalysisPolicy, Verdict};
use crate::core::cost::release_cost::CostPerRequestPolicy;
use crate::core::plan::{parse_plan, preset, RolloutPlan};
use crate::core::release::{HealthStatus, ReleaseSpec, TrafficSplit};
use crate::core::traffic::{SecondSample, TrafficSample};
use crate::core::window::WindowState;

fn release(version: &str) -> ReleaseSpec {
    ReleaseSpec {
        service: "steno".into(),
        version: version.into(),
        env: BTreeMap::new(),
        env_from: Default::default(),
    }
}

/// 10 % for 10 s, 50 % for 10 s, then 100 %.
pub(super) fn fast_plan() -> RolloutPlan {
    parse_plan(
        "fast.yaml",
        "name: fast\nsteps:\n  - weight: 10\n    bake: 10s\n  - weight: 50\n    bake: 10s\n  - weight: 100\n",
    )
    .unwrap()
}

fn policy() -> RolloutPolicy {
    RolloutPolicy {
        analysis: AnalysisPolicy {
            min_canary_requests: 50,
            min_baseline_requests: 50,
            ..AnalysisPolicy::default()
        },
        ..RolloutPolicy::default()
    }
}

/// Deterministic traffic at `rps` per second: every `error_every`-th request of a side fails
/// (0: never), each request takes `latency_ms`.
pub(super) struct Side {
    pub(super) error_every: u64,
    latency_ms: u64,
    /// Response bytes of each request.
    bytes_per_request: u64,
    pub(super) total: TrafficSample,
    count: u64,
}

impl Side {
    pub(super) fn new(error_every: u64, latency_ms: u64) -> Side {
        Side {
            error_every,
            latency_ms,
            bytes_per_request: 0,
            total: TrafficSample::default(),
            count: 0,
        }
    }

    pub(super) fn serve(&mut self, requests: u64) -> TrafficSample {
        let mut second = TrafficSample::default();
        for _ in 0..requests {
            self.count += 1;
            let is_error = self.error_every > 0 && self.count % self.error_every == 0;
            second.record(self.latency_ms, is_error);
            second.bytes_out += self.bytes_per_request;
        }
        self.total.add(&second);
        second
    }
}

/// Drives a rollout one second at a time at 100 requests per second.
pub(super) struct Trace {
    pub(super) state: RolloutState,
    pub(super) policy: RolloutPolicy,
    pub(super) now_ms: i64,
    pub(super) canary: Side,
    pub(super) baseline: Side,
    pub(super) series: Vec<SecondSample>,
    pub(super) decisions: Vec<Decision>,
    checks_run: Vec<String>,
    /// The deploy window every observation reports.
    pub(super) window: WindowState,
}

impl Trace {
    pub(super) fn new(plan: RolloutPlan, canary: Side) -> Trace {
        let start = 1_700_000_000_000;
        Trace {
            state: RolloutState::new("r1".into(), release("v1"), release("v2"), plan, start),
            policy: policy(),
            now_ms: start,
            canary,
            baseline: Side::new(500, 5),
            series: Vec::new(),
            decisions: Vec::new(),
            checks_run: Vec::new(),
            window: WindowState::default(),
        }
    }

    pub(super) fn apply(&mut self, observation: Observation) {
        let (next, actions) = step(&self.state, &observation, &self.policy);
        self.state = next;
        for action in actions {
            match action {
                Action::Record(decision) => self.decisions.push(*decision),
                Action::RunCheck { name } => self.checks_run.push(name),
            }
        }
    }

    pub(super) fn ready(&mut self) {
        self.apply(Observation {
            now_ms: self.now_ms,
            canary_readiness: Readiness::Ready,
            ..Observation::default()
        });
        self.canary.total = TrafficSample::default();
        self.baseline.total = TrafficSample::default();
    }

    /// One second of traffic at the current weight, then one step.
    pub(super) fn second(&mut self, health: Option<HealthStatus>, commands: Vec<OperatorCommand>) {
        let step_before = (self.state.step_index, self.state.step_started_at_ms);
        let weight = u64::from(self.state.canary_weight_percent());
        let canary_second = self.canary.serve(weight);
        self.baseline.serve(100 - weight);
        self.now_ms += 1000;
        self.series.push(SecondSample {
            second: self.now_ms / 1000 - 1,
            sample: canary_second,
        });
        self.apply(Observation {
            now_ms: self.now_ms,
            canary_readiness: Readiness::Ready,
            canary_traffic: self.canary.total,
            baseline_traffic: self.baseline.total,
            canary_series: self.series.clone(),
            canary_health: health,
            commands,
            deploy_window: self.window.clone(),
            ..Observation::default()
        });
        if (self.state.step_index, self.state.step_started_at_ms) != step_before {
            // A new step's window starts empty, as the reconciler reads it.
            self.canary.total = TrafficSample::default();
            self.baseline.total = TrafficSample::default();
        }
    }

    pub(super) fn run_until_terminal(&mut self, max_seconds: u32) {
        for _ in 0..max_seconds {
            if self.state.phase.is_terminal() {
                return;
            }
            self.second(Some(HealthStatus::Healthy), Vec::new());
        }
    }

    pub(super) fn kinds(&self) -> Vec<DecisionKind> {
        self.decisions
            .iter()
            .map(|decision| decision.kind)
            .collect()
    }
}

#[test]
fn a_healthy_canary_is_promoted_through_every_step() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    assert_eq!(trace.state.phase, Phase::Starting);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v1")
    );
    trace.ready();
    assert_eq!(trace.state.canary_weight_percent(), 10);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit {
            stable: "steno@v1".into(),
            canary: Some("steno@v2".into()),
            canary_weight_percent: 10
        }
    );
    trace.run_until_terminal(60);
    assert_eq!(trace.state.phase, Phase::Promoted);
    assert_eq!(
        trace.kinds(),
        vec![
            DecisionKind::Start,
            DecisionKind::Advance,
            DecisionKind::Promote
        ]
    );
    let weights: Vec<u8> = trace
        .decisions
        .iter()
        .map(|decision| decision.canary_weight_percent)
        .collect();
    assert_eq!(weights, vec![10, 50, 100]);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v2")
    );
    // Each advance carries the comparison that justified it.
    let advance = &trace.decisions[1];
    let comparison = advance.evidence.comparison.as_ref().unwrap();
    assert_eq!(comparison.verdict, Verdict::Pass);
    assert!(advance.evidence.bake_elapsed_ms.unwrap() >= 10_000);
    assert_eq!(trace.state.winner().unwrap().version, "v2");
}

fn cost_check() -> CostPerRequestPolicy {
    CostPerRequestPolicy {
        max_ratio: 2.0,
        min_requests: 50,
        memory_mb: 512,
        prices: crate::core::cost::PriceTable::seed(),
        ai_prices: None,
    }
}

#[test]
fn a_canary_that_doubles_the_cost_of_a_request_is_held_until_an_operator_accepts_it() {
    let mut canary = Side::new(500, 5);
    canary.bytes_per_request = 4 << 20;
    let mut trace = Trace::new(fast_plan(), canary);
    trace.baseline.bytes_per_request = 1 << 20;
    trace.policy.cost_per_request = Some(cost_check());
    trace.ready();
    trace.run_until_terminal(20);
    assert_eq!(
        trace.state.phase,
        Phase::Held,
        "{}",
        trace.state.last_summary
    );
    assert!(trace.state.cost_hold);
    assert_eq!(trace.state.canary_weight_percent(), 10);
    assert_eq!(trace.kinds(), vec![DecisionKind::Start, DecisionKind::Hold]);
    let hold = &trace.decisions[1];
    let cost = hold.evidence.cost_per_request.as_ref().unwrap();
    assert!(cost.exceeded);
    assert!(cost.ratio.unwrap() > 3.0, "{cost:?}");
    assert!(hold.summary.contains("cost more"), "{}", hold.summary);
    assert!(
        hold.summary.contains("resume accepts the cost"),
        "{}",
        hold.summary
    );

    // The operator accepts the cost: the step bakes again and the check is not applied again.
    trace.second(Some(HealthStatus::Healthy), vec![OperatorCommand::Resume]);
    assert!(!trace.state.cost_hold && trace.state.cost_accepted);
    trace.run_until_terminal(60);
    assert_eq!(trace.state.phase, Phase::Promoted);
    assert_eq!(
        trace.kinds(),
        vec![
            DecisionKind::Start,
            DecisionKind::Hold,
            DecisionKind::Resume,
            DecisionKind::Advance,
            DecisionKind::Promote
        ]
    );
}

#[test]
fn a_canary_that_costs_the_same_advances_with_its_cost_as_evidence() {
    let mut canary = Side::new(500, 5);
    canary.bytes_per_request = 1 << 20;
    let mut trace = Trace::new(fast_plan(), canary);
    trace.baseline.bytes_per_request = 1 << 20;
    trace.policy.cost_per_request = Some(cost_check());
    trace.ready();
    trace.run_until_terminal(60);
    assert_eq!(trace.state.phase, Phase::Promoted);
    let cost = trace.decisions[1]
        .evidence
        .cost_per_request
        .as_ref()
        .unwrap();
    assert!(!cost.exceeded);
    assert!((cost.ratio.unwrap() - 1.0).abs() < 1e-9, "{cost:?}");
}

#[test]
fn a_canary_with_many_errors_is_rolled_back_within_seconds() {
    let mut trace = Trace::new(fast_plan(), Side::new(5, 5));
    trace.ready();
    trace.run_until_terminal(60);
    assert_eq!(trace.state.phase, Phase::RolledBack);
    let rollback = trace.decisions.last().unwrap();
    assert_eq!(rollback.kind, DecisionKind::RollBack);
    let elapsed = rollback.at_ms - trace.decisions[0].at_ms;
    assert!(elapsed <= 3_000, "rolled back after {elapsed} ms");
    let comparison = rollback.evidence.comparison.as_ref().unwrap();
    assert_eq!(comparison.verdict, Verdict::Fail);
    assert!(comparison.error_test.significant);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v1")
    );
    assert_eq!(trace.state.winner().unwrap().version, "v1");
}

#[test]
fn a_slow_canary_is_rolled_back_on_latency() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 505));
    trace.ready();
    trace.run_until_terminal(60);
    assert_eq!(trace.state.phase, Phase::RolledBack);
    let comparison = trace
        .decisions
        .last()
        .unwrap()
        .evidence
        .comparison
        .clone()
        .unwrap();
    assert!(comparison.latency_test.significant, "{comparison:?}");
    assert!(!comparison.error_test.significant);
    assert!(trace.decisions.last().unwrap().summary.contains("slower"));
}

#[test]
fn too_little_traffic_is_inconclusive_never_a_pass() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.policy.analysis.min_canary_requests = 10_000;
    trace.ready();
    trace.run_until_terminal(30);
    assert_eq!(trace.state.phase, Phase::Held, "held, not promoted");
    assert_eq!(
        trace.state.canary_weight_percent(),
        10,
        "the weight is held"
    );
    let hold = trace.decisions.last().unwrap();
    assert_eq!(hold.kind, DecisionKind::Hold);
    assert_eq!(
        hold.evidence.comparison.as_ref().unwrap().verdict,
        Verdict::Inconclusive
    );

    let mut strict = Trace::new(fast_plan(), Side::new(500, 5));
    strict.policy.analysis.min_canary_requests = 10_000;
    strict.policy.on_inconclusive = InconclusiveAction::RollBack;
    strict.ready();
    strict.run_until_terminal(30);
    assert_eq!(strict.state.phase, Phase::RolledBack);
}

#[test]
fn three_consecutive_health_failures_roll_back_and_a_pass_resets_the_count() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.ready();
    let sick = || Some(HealthStatus::Unhealthy("503".into()));
    trace.second(sick(), Vec::new());
    trace.second(sick(), Vec::new());
    trace.second(Some(HealthStatus::Healthy), Vec::new());
    trace.second(sick(), Vec::new());
    trace.second(sick(), Vec::new());
    assert_eq!(
        trace.state.phase,
        Phase::Baking,
        "two failures in a row are tolerated"
    );
    trace.second(sick(), Vec::new());
    assert_eq!(trace.state.phase, Phase::RolledBack);
    let rollback = trace.decisions.last().unwrap();
    assert_eq!(rollback.evidence.consecutive_health_failures, 3);
    assert!(rollback.summary.contains("3 consecutive health checks"));
}

#[test]
fn operators_pause_resume_promote_and_abort() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.ready();
    trace.second(None, vec![OperatorCommand::Pause]);
    assert_eq!(trace.state.phase, Phase::Paused);
    for _ in 0..30 {
        trace.second(None, Vec::new());
    }
    assert_eq!(
        trace.state.phase,
        Phase::Paused,
        "a paused rollout does not advance"
    );
    assert_eq!(trace.state.canary_weight_percent(), 10);
    trace.second(None, vec![OperatorCommand::Resume]);
    assert_eq!(trace.state.phase, Phase::Baking);
    assert_eq!(
        trace.state.step_started_at_ms,
        Some(trace.now_ms),
        "the step bakes again"
    );
    trace.second(None, vec![OperatorCommand::Abort]);
    assert_eq!(trace.state.phase, Phase::Aborted);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v1")
    );
    assert_eq!(
        trace.kinds(),
        vec![
            DecisionKind::Start,
            DecisionKind::Pause,
            DecisionKind::Resume,
            DecisionKind::Abort
        ]
    );
    // Terminal states ignore everything after.
    trace.second(None, vec![OperatorCommand::Resume]);
    assert_eq!(trace.state.phase, Phase::Aborted);

    let mut promoted = Trace::new(fast_plan(), Side::new(500, 5));
    promoted.ready();
    promoted.second(None, vec![OperatorCommand::Promote]);
    assert_eq!(promoted.state.phase, Phase::Promoted);
    assert_eq!(
        promoted.decisions.last().unwrap().evidence.operator_command,
        Some(OperatorCommand::Promote)
    );
}

#[test]
fn a_canary_that_cannot_start_fails_without_traffic() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.apply(Observation {
        now_ms: trace.now_ms,
        canary_readiness: Readiness::Failed("health answered 503 for 30 s".into()),
        ..Observation::default()
    });
    assert_eq!(trace.state.phase, Phase::Failed);
    assert_eq!(trace.kinds(), vec![DecisionKind::Fail]);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v1")
    );
}

#[test]
fn smoke_checks_gate_their_step() {
    let plan = parse_plan(
        "checked.yaml",
        "name: checked\nsteps:\n  - weight: 10\n    bake: 5s\n    checks: [smoke]\n  - weight: 100\n",
    )
    .unwrap();
    let mut trace = Trace::new(plan.clone(), Side::new(500, 5));
    trace.ready();
    assert_eq!(trace.checks_run, vec!["smoke"]);
    for _ in 0..10 {
        trace.second(None, Vec::new());
    }
    assert_eq!(
        trace.state.phase,
        Phase::Baking,
        "the bake waits for its check"
    );
    trace.apply(Observation {
        now_ms: trace.now_ms,
        canary_traffic: trace.canary.total,
        baseline_traffic: trace.baseline.total,
        check_results: vec![("smoke".into(), CheckState::Passed)],
        ..Observation::default()
    });
    assert_eq!(trace.state.phase, Phase::Promoted);

    let mut failing = Trace::new(plan, Side::new(500, 5));
    failing.ready();
    failing.apply(Observation {
        now_ms: failing.now_ms,
        check_results: vec![(
            "smoke".into(),
            CheckState::Failed("GET /v1/health answered 500".into()),
        )],
        ..Observation::default()
    });
    assert_eq!(failing.state.phase, Phase::RolledBack);
    assert!(failing
        .decisions
        .last()
        .unwrap()
        .summary
        .contains("smoke check smoke failed"));
}

#[test]
fn a_rollout_held_at_a_closed_gate_moves_no_traffic_until_resumed() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.state = trace
        .state
        .clone()
        .held_at_gate("drill gate: the newest DR drill of steno failed".into());
    assert_eq!(trace.state.phase, Phase::Held);
    assert_eq!(trace.state.canary_weight_percent(), 0);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v1")
    );
    for _ in 0..5 {
        trace.second(None, Vec::new());
    }
    assert_eq!(
        trace.state.phase,
        Phase::Held,
        "it does not start by itself"
    );
    assert_eq!(trace.state.canary_weight_percent(), 0);
    // The trace's canary answers ready in the same second, so it starts baking at once.
    trace.second(None, vec![OperatorCommand::Resume]);
    assert!(trace.state.gate_hold.is_none());
    assert!(trace
        .decisions
        .iter()
        .any(|decision| decision.summary.contains("over a closed gate")));
    assert_eq!(trace.state.phase, Phase::Baking);
    assert_eq!(trace.state.canary_weight_percent(), 10);
}

#[test]
fn all_at_once_promotes_when_ready_and_restarts_rebake() {
    let unwatched = preset("AllAtOnce").unwrap().with_watch(Duration::ZERO);
    let mut trace = Trace::new(unwatched, Side::new(500, 5));
    trace.ready();
    assert_eq!(trace.state.phase, Phase::Promoted);

    let mut resumed = Trace::new(fast_plan(), Side::new(500, 5));
    resumed.ready();
    for _ in 0..5 {
        resumed.second(None, Vec::new());
    }
    let later = resumed.now_ms + 60_000;
    let (rebaked, actions) = rebake_after_restart(&resumed.state, later);
    assert_eq!(rebaked.step_started_at_ms, Some(later));
    assert_eq!(rebaked.traffic_started_at_ms, Some(later));
    assert_eq!(rebaked.step_index, resumed.state.step_index);
    assert!(
        matches!(&actions[0], Action::Record(decision) if decision.kind == DecisionKind::Resume)
    );
}
