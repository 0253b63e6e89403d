//! The watch at 100 % before promotion (R-WATCH-1, R-WATCH-4): the new release takes all
//! traffic while the previous one stays warm, is compared with the previous release's recorded
//! traffic, and is rolled back when it gets worse; without a recording, health and alarms decide.

use std::time::Duration;

use super::tests::{fast_plan, Side, Trace};
use super::*;
use crate::core::analysis::Verdict;
use crate::core::plan::{preset, RolloutPlan};
use crate::core::release::{HealthStatus, TrafficSplit};
use crate::core::watch::{reference_from_samples, ReferenceTraffic};

/// The previous release's recorded traffic: 10 minutes at 100 requests per second with one
/// error in 500 and 5 ms latencies, like the baseline of the traces.
fn recorded_reference() -> ReferenceTraffic {
    let mut history = Side::new(500, 5);
    history.serve(60_000);
    reference_from_samples("v1", (0, 600), &[history.total]).expect("traffic was served")
}

fn watched(plan: RolloutPlan, watch_secs: u64, canary: Side) -> Trace {
    let mut trace = Trace::new(plan.with_watch(Duration::from_secs(watch_secs)), canary);
    trace.state.reference = Some(recorded_reference());
    trace
}

/// R-WATCH-1: the last step watches at 100 % before the promotion.
#[test]
fn a_healthy_release_is_watched_at_full_traffic_then_promoted() {
    let mut trace = watched(fast_plan(), 30, Side::new(500, 5));
    trace.ready();
    trace.run_until_terminal(20);
    assert_eq!(trace.state.canary_weight_percent(), 100);
    assert!(trace.state.is_watching());
    assert_eq!(trace.state.phase, Phase::Baking);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v2")
    );
    let advance = trace.decisions.last().unwrap();
    assert!(
        advance.summary.contains(
            "v2 now takes all traffic and is watched for 30s before promotion while v1 stays warm"
        ),
        "{}",
        advance.summary
    );
    trace.run_until_terminal(60);
    assert_eq!(trace.state.phase, Phase::Promoted);
    assert_eq!(
        trace.kinds(),
        vec![
            DecisionKind::Start,
            DecisionKind::Advance,
            DecisionKind::Advance,
            DecisionKind::Promote
        ]
    );
    let promote = trace.decisions.last().unwrap();
    assert!(
        promote
            .summary
            .contains("the watch at 100 % ended clean after 30s"),
        "{}",
        promote.summary
    );
    let comparison = promote.evidence.comparison.as_ref().unwrap();
    assert_eq!(comparison.verdict, Verdict::Pass);
    assert_eq!(promote.evidence.reference, Some(recorded_reference()));
    assert!(promote.evidence.bake_elapsed_ms.unwrap() >= 30_000);
}

/// R-WATCH-4: at 100 % the new release is compared with the previous one's recorded traffic.
#[test]
fn a_release_that_starts_failing_during_the_watch_is_rolled_back() {
    let mut trace = watched(fast_plan(), 600, Side::new(500, 5));
    trace.ready();
    trace.run_until_terminal(20);
    assert!(trace.state.is_watching());
    for _ in 0..20 {
        trace.second(Some(HealthStatus::Healthy), Vec::new());
    }
    assert_eq!(trace.state.phase, Phase::Baking);
    // 20 s into the watch it starts failing one request in five.
    trace.canary.error_every = 5;
    trace.run_until_terminal(120);
    assert_eq!(trace.state.phase, Phase::RolledBack);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v1")
    );
    let rollback = trace.decisions.last().unwrap();
    assert!(
        rollback
            .summary
            .starts_with("during the watch at 100 %, v2 is worse than v1 was before the rollout"),
        "{}",
        rollback.summary
    );
    assert!(rollback.summary.ends_with("rolled back to the warm v1"));
    assert_eq!(rollback.evidence.reference, Some(recorded_reference()));
    assert_eq!(
        rollback.evidence.comparison.as_ref().unwrap().verdict,
        Verdict::Fail
    );
}

/// Without recorded traffic the watch still runs: alarms, health and checks decide, and the
/// summary says there was nothing to compare with.
#[test]
fn a_watch_without_a_reference_is_judged_by_health_and_alarms() {
    let mut quiet = Trace::new(
        fast_plan().with_watch(Duration::from_secs(30)),
        Side::new(500, 5),
    );
    quiet.ready();
    quiet.run_until_terminal(20);
    assert!(quiet.state.is_watching());
    quiet.second(Some(HealthStatus::Healthy), Vec::new());
    assert!(
        quiet
            .state
            .last_summary
            .contains("v1 served no traffic before the rollout"),
        "{}",
        quiet.state.last_summary
    );
    quiet.run_until_terminal(60);
    assert_eq!(quiet.state.phase, Phase::Promoted);
    assert!(quiet
        .decisions
        .last()
        .unwrap()
        .evidence
        .comparison
        .is_none());

    let mut sick = Trace::new(
        fast_plan().with_watch(Duration::from_secs(30)),
        Side::new(500, 5),
    );
    sick.ready();
    sick.run_until_terminal(20);
    assert!(sick.state.is_watching());
    for _ in 0..3 {
        sick.second(Some(HealthStatus::Unhealthy("503".into())), Vec::new());
    }
    assert_eq!(sick.state.phase, Phase::RolledBack);
}

/// `AllAtOnce` shifts everything at once and then watches for its hour (R-WATCH-1).
#[test]
fn all_at_once_watches_for_an_hour_before_promoting() {
    let mut trace = Trace::new(preset("AllAtOnce").unwrap(), Side::new(500, 5));
    trace.state.reference = Some(recorded_reference());
    trace.ready();
    assert_eq!(trace.state.phase, Phase::Baking);
    assert!(trace.state.is_watching());
    assert!(
        trace.decisions[0].summary.contains("watched for 1h"),
        "{}",
        trace.decisions[0].summary
    );
    trace.run_until_terminal(3_590);
    assert_eq!(trace.state.phase, Phase::Baking);
    trace.run_until_terminal(20);
    assert_eq!(trace.state.phase, Phase::Promoted);
}
