//! What an operator's command does to a rollout (`opsd pause|resume|promote|abort`, audited where
//! it was given): abort and promote end it at once, pause holds its weight, and resume lifts a
//! hold before start at a closed gate, overrides the wait for a deploy window, or bakes a paused
//! or held step again (accepting a cost hold, or giving a timed-out approval a new timeout).

use super::{
    begin_step, finish, record, Action, DecisionKind, Evidence, OperatorCommand, Phase,
    RolloutState,
};

/// Applies one operator command at `now`; the decision it leads to carries the command as its
/// evidence. A command that does not apply in the rollout's phase (pausing a rollout that is not
/// baking or held, resuming one that is not waiting) changes nothing.
pub(super) fn apply_command(
    state: &mut RolloutState,
    command: OperatorCommand,
    now: i64,
    actions: &mut Vec<Action>,
) {
    let evidence = Evidence {
        operator_command: Some(command),
        ..Evidence::default()
    };
    match command {
        OperatorCommand::Abort => {
            finish(
                state,
                Phase::Aborted,
                DecisionKind::Abort,
                now,
                "aborted by an operator; all traffic back on the stable release".into(),
                evidence,
                actions,
            );
        }
        OperatorCommand::Promote => {
            finish(
                state,
                Phase::Promoted,
                DecisionKind::Promote,
                now,
                "promoted by an operator; all traffic on the canary".into(),
                evidence,
                actions,
            );
        }
        OperatorCommand::Pause => {
            if matches!(state.phase, Phase::Baking | Phase::Held) {
                state.phase = Phase::Paused;
                record(
                    state,
                    DecisionKind::Pause,
                    now,
                    "paused by an operator; the weight is held".into(),
                    evidence,
                    actions,
                );
            }
        }
        OperatorCommand::Resume => {
            if let Some(gate) = state.gate_hold.take() {
                if state.waiting_for_window.take().is_some() {
                    state.window_overridden = true;
                }
                state.phase = Phase::Starting;
                record(
                    state,
                    DecisionKind::Resume,
                    now,
                    format!(
                        "resumed by an operator over a closed gate ({gate}); starting the canary"
                    ),
                    evidence,
                    actions,
                );
                return;
            }
            if state.phase == Phase::Baking && state.waiting_for_window.take().is_some() {
                state.window_overridden = true;
                record(
                    state,
                    DecisionKind::Resume,
                    now,
                    "resumed by an operator outside the deploy window; steps advance outside \
                     windows from now on"
                        .into(),
                    evidence,
                    actions,
                );
                return;
            }
            if matches!(state.phase, Phase::Paused | Phase::Held) {
                // A resume over a timed-out approval gives people a new timeout.
                if let Some(wait) = state.approval.as_mut().filter(|wait| wait.timed_out) {
                    wait.timed_out = false;
                    wait.since_ms = now;
                }
                if state.cost_hold {
                    state.cost_hold = false;
                    state.cost_accepted = true;
                }
                state.phase = Phase::Baking;
                begin_step(state, state.step_index, now, actions);
                record(
                    state,
                    DecisionKind::Resume,
                    now,
                    format!(
                        "resumed by an operator; the {} % step bakes again",
                        state.canary_weight_percent()
                    ),
                    evidence,
                    actions,
                );
            }
        }
    }
}
