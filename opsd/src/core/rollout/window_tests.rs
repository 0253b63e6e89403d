//! A rollout and its deploy window (R-GATE-6): a bake that passes outside the window keeps its
//! weight until the window opens, a waiting rollout is still rolled back at once, a deploy queued
//! for its window starts when it opens, and an operator's resume overrides the window.

use super::tests::{fast_plan, Side, Trace};
use super::*;
use crate::core::release::HealthStatus;
use crate::core::window::{ClosedWindow, WindowState};

fn closed_window() -> WindowState {
    WindowState::Closed(ClosedWindow {
        reason: "outside every deploy window (weeknights: 0 2 * * TUE-THU for 2h, UTC)".into(),
        opens_at_ms: Some(1_700_100_000_000),
        opens: "opens Thu 2023-11-16 02:00 UTC".into(),
    })
}

#[test]
fn a_bake_that_passes_outside_the_window_keeps_its_weight_until_the_window_opens() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.ready();
    trace.window = closed_window();
    for _ in 0..60 {
        trace.second(Some(HealthStatus::Healthy), Vec::new());
    }
    assert_eq!(trace.state.phase, Phase::Baking);
    assert_eq!(trace.state.canary_weight_percent(), 10);
    assert_eq!(
        trace.state.waiting_for_window.as_deref(),
        Some("waiting for the deploy window: opens Thu 2023-11-16 02:00 UTC")
    );
    assert!(
        trace
            .state
            .last_summary
            .starts_with("the 10 % step passed its bake; waiting for the deploy window: opens Thu"),
        "{}",
        trace.state.last_summary
    );
    assert_eq!(
        trace.kinds(),
        vec![DecisionKind::Start, DecisionKind::Wait],
        "one decision when the waiting starts"
    );

    trace.window = WindowState::Open { closes_at_ms: None };
    trace.second(Some(HealthStatus::Healthy), Vec::new());
    assert_eq!(trace.state.waiting_for_window, None);
    assert_eq!(trace.state.canary_weight_percent(), 50);
    assert_eq!(
        trace.kinds(),
        vec![
            DecisionKind::Start,
            DecisionKind::Wait,
            DecisionKind::Resume,
            DecisionKind::Advance
        ]
    );
    trace.run_until_terminal(60);
    assert_eq!(trace.state.phase, Phase::Promoted);
}

#[test]
fn a_rollout_waiting_for_its_window_is_still_rolled_back_at_once() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.ready();
    trace.window = closed_window();
    for _ in 0..15 {
        trace.second(Some(HealthStatus::Healthy), Vec::new());
    }
    assert!(trace.state.waiting_for_window.is_some());
    for _ in 0..3 {
        trace.second(Some(HealthStatus::Unhealthy("503".into())), Vec::new());
    }
    assert_eq!(trace.state.phase, Phase::RolledBack);
    assert_eq!(trace.state.canary_weight_percent(), 0);
}

#[test]
fn an_operator_resume_overrides_the_window_of_a_waiting_rollout() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.ready();
    trace.window = closed_window();
    for _ in 0..15 {
        trace.second(Some(HealthStatus::Healthy), Vec::new());
    }
    assert_eq!(trace.state.canary_weight_percent(), 10);
    trace.second(Some(HealthStatus::Healthy), vec![OperatorCommand::Resume]);
    assert!(trace.state.window_overridden);
    assert_eq!(trace.state.canary_weight_percent(), 50);
    trace.run_until_terminal(60);
    assert_eq!(trace.state.phase, Phase::Promoted, "no more waiting");
}

#[test]
fn a_deploy_queued_for_its_window_starts_when_it_opens_or_when_an_operator_resumes() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.state = trace.state.clone().queued_for_window(
        "window gate: outside every deploy window".into(),
        "opens Thu 2023-11-16 02:00 UTC".into(),
    );
    trace.window = closed_window();
    for _ in 0..5 {
        trace.second(None, Vec::new());
    }
    assert_eq!(trace.state.phase, Phase::Starting);
    assert_eq!(trace.state.phase.exit_code(), None, "it moves on its own");
    assert_eq!(trace.state.canary_weight_percent(), 0);
    assert!(trace.decisions.is_empty());
    trace.window = WindowState::Open { closes_at_ms: None };
    trace.second(None, Vec::new());
    assert_eq!(trace.state.gate_hold, None);
    assert_eq!(trace.state.waiting_for_window, None);
    assert!(!trace.state.window_overridden);
    assert_eq!(
        trace.decisions[0].summary,
        "the deploy window opened; starting the canary"
    );
    // The trace's canary answers ready in the same second, so it starts baking at once.
    assert_eq!(trace.state.phase, Phase::Baking);

    let mut resumed = Trace::new(fast_plan(), Side::new(500, 5));
    resumed.state = resumed
        .state
        .clone()
        .queued_for_window("window gate: closed".into(), "opens later".into());
    resumed.window = closed_window();
    resumed.second(None, vec![OperatorCommand::Resume]);
    assert_eq!(resumed.state.phase, Phase::Baking);
    assert!(resumed.state.window_overridden);
    resumed.run_until_terminal(60);
    assert_eq!(resumed.state.phase, Phase::Promoted);
}
