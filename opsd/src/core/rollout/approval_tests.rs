//! Steps that wait for people's approval (R-GATE-8): two different people move the rollout on,
//! the same person counts once, and a wait that times out rolls back or holds.

use super::tests::{Side, Trace};
use super::*;
use crate::core::approval::Approval;
use crate::core::plan::{parse_plan, RolloutPlan};
use crate::core::release::HealthStatus;

fn approval_plan(on_timeout: &str) -> RolloutPlan {
    parse_plan(
        "gated.yaml",
        &format!(
            "name: gated\nsteps:\n  - weight: 10\n    bake: 10s\n  - weight: 100\n    approve: {{approvers: 2, timeout: 60s, on_timeout: {on_timeout}}}\n"
        ),
    )
    .unwrap()
}

fn approval_by(by: &str, at_ms: i64) -> Approval {
    Approval {
        by: by.into(),
        at_ms,
        reason: None,
    }
}

impl Trace {
    /// One second with approvals given.
    fn approve(&mut self, names: &[&str]) {
        let approvals = names
            .iter()
            .map(|name| approval_by(name, self.now_ms))
            .collect();
        let weight = u64::from(self.state.canary_weight_percent());
        self.canary.serve(weight);
        self.baseline.serve(100 - weight);
        self.now_ms += 1000;
        self.apply(Observation {
            now_ms: self.now_ms,
            canary_readiness: Readiness::Ready,
            canary_traffic: self.canary.total,
            baseline_traffic: self.baseline.total,
            canary_series: self.series.clone(),
            approvals,
            ..Observation::default()
        });
    }
}

/// R-GATE-8: the step waits for two different people; the same person counts once.
#[test]
fn an_approval_step_waits_for_two_different_people() {
    let mut trace = Trace::new(approval_plan("rollback"), Side::new(500, 5));
    trace.ready();
    trace.run_until_terminal(15);
    assert_eq!(trace.state.phase, Phase::Baking);
    assert_eq!(trace.state.canary_weight_percent(), 10, "still at 10 %");
    assert_eq!(*trace.kinds().last().unwrap(), DecisionKind::AwaitApproval);
    assert!(
        trace.decisions.last().unwrap().summary.contains(
            "the 100 % step waits for approval by 2 people within 1m (`opsd approve steno`)"
        ),
        "{}",
        trace.decisions.last().unwrap().summary
    );
    trace.approve(&["alice"]);
    trace.approve(&["alice"]);
    trace.second(Some(HealthStatus::Healthy), Vec::new());
    assert_eq!(trace.state.canary_weight_percent(), 10);
    assert!(
        trace
            .state
            .last_summary
            .contains("1 of 2 approvals (alice)"),
        "{}",
        trace.state.last_summary
    );
    trace.approve(&["bob"]);
    assert_eq!(trace.state.phase, Phase::Promoted);
    let approved = trace
        .decisions
        .iter()
        .find(|decision| decision.summary.starts_with("approved by"))
        .unwrap();
    assert_eq!(
        approved.summary,
        "approved by alice, bob; the canary moves from 10 % to 100 %"
    );
    assert_eq!(approved.evidence.approvals.len(), 2);
}

/// R-GATE-8: without enough approvals in time the rollout rolls back, or holds and still
/// takes approvals.
#[test]
fn an_approval_that_does_not_come_in_time_rolls_back_or_holds() {
    let mut rolled = Trace::new(approval_plan("rollback"), Side::new(500, 5));
    rolled.ready();
    rolled.run_until_terminal(15);
    rolled.approve(&["alice"]);
    rolled.run_until_terminal(70);
    assert_eq!(rolled.state.phase, Phase::RolledBack);
    assert_eq!(
        rolled.decisions.last().unwrap().summary,
        "no approval of the 100 % step within 1m (1 of 2 approvals (alice)); rolled back"
    );

    let mut held = Trace::new(approval_plan("hold"), Side::new(500, 5));
    held.ready();
    held.run_until_terminal(15);
    for _ in 0..70 {
        held.second(Some(HealthStatus::Healthy), Vec::new());
    }
    assert_eq!(held.state.phase, Phase::Held);
    assert_eq!(held.state.canary_weight_percent(), 10);
    held.approve(&["alice", "bob"]);
    assert_eq!(held.state.phase, Phase::Promoted);
}
