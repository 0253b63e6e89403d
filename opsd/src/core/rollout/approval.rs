//! Steps that wait for people's approval (R-GATE-8): the wait begins when the step before passed
//! its bake, approvals are counted as they come (one per person), and the wait ends in the next
//! step, or on its timeout in a rollback or a hold that approvals still lift. An approved step
//! outside the deploy windows still waits for one (R-GATE-6).

use super::{
    begin_step, record, roll_back, Action, DecisionKind, Evidence, Observation, Phase, RolloutState,
};
use crate::core::approval::{ApprovalTimeout, ApprovalWait};
use crate::core::duration::format_duration;
use crate::core::window::WindowState;

/// Counts the approvals that came in; once enough different people approved a rollout that
/// waits (baking, or held after the wait timed out), its next step begins.
pub(super) fn absorb_approvals(
    state: &mut RolloutState,
    observation: &Observation,
    actions: &mut Vec<Action>,
) {
    let Some(wait) = state.approval.as_mut() else {
        return;
    };
    for approval in &observation.approvals {
        wait.add(approval.clone());
    }
    // Outside a deploy window the approved step still waits for the window (R-GATE-6).
    let window_open =
        state.window_overridden || !matches!(observation.deploy_window, WindowState::Closed(_));
    let ready = wait.is_complete()
        && window_open
        && (state.phase == Phase::Baking || (state.phase == Phase::Held && wait.timed_out));
    if ready {
        state.phase = Phase::Baking;
        advance_approved(state, observation.now_ms, actions);
    }
}

/// Begins the step the completed approval was for.
fn advance_approved(state: &mut RolloutState, now: i64, actions: &mut Vec<Action>) {
    let Some(wait) = state.approval.take() else {
        return;
    };
    let from = state.canary_weight_percent();
    let names: Vec<&str> = wait
        .approvals
        .iter()
        .map(|approval| approval.by.as_str())
        .collect();
    let summary = format!(
        "approved by {}; the canary moves from {from} % to {} %",
        names.join(", "),
        state
            .plan
            .steps
            .get(wait.step_index)
            .map_or(100, |step| step.canary_weight_percent)
    );
    let evidence = Evidence {
        approvals: wait.approvals.clone(),
        ..Evidence::default()
    };
    begin_step(state, wait.step_index, now, actions);
    record(
        state,
        DecisionKind::Advance,
        now,
        summary,
        evidence,
        actions,
    );
}

/// Whether the passed step must wait before `next_index` begins: it starts the wait, reports
/// its progress, or acts on its timeout. `false` lets the rollout move on.
pub(super) fn wait_for_approval(
    state: &mut RolloutState,
    next_index: usize,
    now: i64,
    evidence: Evidence,
    actions: &mut Vec<Action>,
) -> bool {
    let Some(rule) = state
        .plan
        .steps
        .get(next_index)
        .and_then(|step| step.approval.clone())
    else {
        return false;
    };
    let next_weight = state.plan.steps[next_index].canary_weight_percent;
    let Some(wait) = state
        .approval
        .as_ref()
        .filter(|wait| wait.step_index == next_index)
    else {
        state.approval = Some(ApprovalWait::new(next_index, rule.clone(), now));
        let summary = format!(
            "the {} % step passed; the {next_weight} % step waits for {} (`opsd approve {}`)",
            state.canary_weight_percent(),
            rule.describe(),
            state.service
        );
        record(
            state,
            DecisionKind::AwaitApproval,
            now,
            summary,
            evidence,
            actions,
        );
        return true;
    };
    if wait.is_complete() {
        // Approved while the bake was still running: move on now.
        advance_approved(state, now, actions);
        return true;
    }
    if !wait.has_expired(now) {
        state.last_summary = format!(
            "waiting for approval of the {next_weight} % step: {}, {} s left",
            wait.progress(),
            wait.seconds_left(now)
        );
        return true;
    }
    let progress = wait.progress();
    let summary = format!(
        "no approval of the {next_weight} % step within {} ({progress})",
        format_duration(rule.timeout)
    );
    let evidence = Evidence {
        approvals: wait.approvals.clone(),
        ..evidence
    };
    match rule.on_timeout {
        ApprovalTimeout::Rollback => {
            roll_back(
                state,
                now,
                format!("{summary}; rolled back"),
                evidence,
                actions,
            );
        }
        ApprovalTimeout::Hold => {
            state.phase = Phase::Held;
            if let Some(wait) = state.approval.as_mut() {
                wait.timed_out = true;
            }
            let summary = format!(
                "{summary}; held at {} % (approvals still move it on; abort rolls back)",
                state.canary_weight_percent()
            );
            record(state, DecisionKind::Hold, now, summary, evidence, actions);
        }
    }
    true
}
