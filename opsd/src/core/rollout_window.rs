//! How a rollout waits for its deploy window (R-GATE-6 in docs/requirements.md): a deploy queued
//! outside every window starts when one opens, and a step whose bake passed keeps its weight
//! until one opens. Called by the state machine (`rollout::step`, and the bake in
//! `rollout/baking.rs`); rollbacks never wait. Pure.

use super::rollout::{record, Action, DecisionKind, Evidence, Observation, Phase, RolloutState};
use super::window::WindowState;

/// A rollout queued for its deploy window starts once the window opens: one `resume` decision,
/// then the canary starts.
pub(super) fn start_when_the_window_opens(
    state: &mut RolloutState,
    observation: &Observation,
    actions: &mut Vec<Action>,
) {
    let queued = state.phase == Phase::Starting
        && state.gate_hold.is_some()
        && state.waiting_for_window.is_some();
    if !queued || !matches!(observation.deploy_window, WindowState::Open { .. }) {
        return;
    }
    state.gate_hold = None;
    state.waiting_for_window = None;
    record(
        state,
        DecisionKind::Resume,
        observation.now_ms,
        "the deploy window opened; starting the canary".into(),
        Evidence::default(),
        actions,
    );
}

/// Whether a step whose bake passed waits for the deploy window instead of advancing: it keeps
/// its weight, with one `wait` decision when the waiting starts and one `resume` when the window
/// opens. Only advancing waits: a rollback is never delayed.
pub(super) fn wait_for_the_window(
    state: &mut RolloutState,
    observation: &Observation,
    actions: &mut Vec<Action>,
) -> bool {
    let now = observation.now_ms;
    match &observation.deploy_window {
        WindowState::Closed(closed) if !state.window_overridden => {
            let waiting = format!("waiting for the deploy window: {}", closed.opens);
            let summary = format!(
                "the {} % step passed its bake; {waiting} ({})",
                state.canary_weight_percent(),
                closed.reason
            );
            if state.waiting_for_window.replace(waiting).is_none() {
                record(
                    state,
                    DecisionKind::Wait,
                    now,
                    summary,
                    Evidence::default(),
                    actions,
                );
            } else {
                state.last_summary = summary;
            }
            true
        }
        _ => {
            if state.waiting_for_window.take().is_some() {
                record(
                    state,
                    DecisionKind::Resume,
                    now,
                    "the deploy window opened; the rollout goes on".into(),
                    Evidence::default(),
                    actions,
                );
            }
            false
        }
    }
}
