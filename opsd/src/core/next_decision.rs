//! What a rollout's next decision waits for, in words for the dashboard: the bake's time left
//! and what follows it, an approval, the deploy window, or an operator. Pure: the state and the
//! time in, one sentence out.

use std::time::Duration;

use super::duration::format_duration;
use super::rollout::{Phase, RolloutState};

/// One sentence saying what the rollout waits for at `now_ms`.
pub fn next_decision(state: &RolloutState, now_ms: i64) -> String {
    let canary = &state.canary.version;
    match state.phase {
        Phase::Starting => match (&state.waiting_for_window, &state.gate_hold) {
            (Some(window), _) => format!("{window}; then {canary} starts"),
            (None, Some(reason)) => format!("held before start: {reason}"),
            (None, None) => format!("{canary} is starting; traffic moves once it is healthy"),
        },
        Phase::Paused => "paused by an operator: resume, promote or abort".to_string(),
        Phase::Held => format!("held for an operator: {}", state.last_summary),
        Phase::Baking => baking(state, now_ms),
        Phase::Promoted => format!("done: {canary} was promoted"),
        Phase::RolledBack => format!("done: {canary} was rolled back"),
        Phase::Aborted => format!("done: {canary} was aborted"),
        Phase::Failed => format!("done: {canary} could not start"),
    }
}

fn baking(state: &RolloutState, now_ms: i64) -> String {
    if let Some(wait) = &state.approval {
        let people: Vec<&str> = wait
            .approvals
            .iter()
            .map(|approval| approval.by.as_str())
            .collect();
        let so_far = if people.is_empty() {
            String::new()
        } else {
            format!(" (approved by {})", people.join(", "))
        };
        return format!(
            "waits for approval: {} of {}{so_far}; `opsd approve {}`",
            wait.approvals.len(),
            wait.rule.approvers,
            state.service
        );
    }
    if let Some(window) = &state.waiting_for_window {
        return format!("{window}; then the next step");
    }
    let Some(step) = state.plan.steps.get(state.step_index) else {
        return "the next reconcile tick decides".to_string();
    };
    let elapsed = state
        .step_started_at_ms
        .map(|started| now_ms.saturating_sub(started).max(0) as u64)
        .unwrap_or(0);
    let left = step
        .bake
        .saturating_sub(Duration::from_millis(elapsed))
        .as_secs();
    let left = format_duration(Duration::from_secs(left));
    let then = match state.plan.steps.get(state.step_index + 1) {
        Some(next) => format!("advance to {} %", next.canary_weight_percent),
        None if step.canary_weight_percent == 100 => {
            format!("the watch ends and {} is promoted", state.canary.version)
        }
        None => format!("promote {}", state.canary.version),
    };
    format!("bake ends in {left} if the analysis stays clean; then {then}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::approval::{Approval, ApprovalRule, ApprovalTimeout, ApprovalWait};
    use crate::core::plan::{PlanStep, RolloutPlan};
    use crate::core::release::ReleaseSpec;

    fn release(version: &str) -> ReleaseSpec {
        ReleaseSpec {
            service: "steno".into(),
            version: version.into(),
            env: Default::default(),
            env_from: Default::default(),
        }
    }

    fn step(weight: u8, bake_secs: u64) -> PlanStep {
        PlanStep {
            canary_weight_percent: weight,
            bake: Duration::from_secs(bake_secs),
            checks: Vec::new(),
            approval: None,
        }
    }

    fn baking_at(step_index: usize) -> RolloutState {
        let plan = RolloutPlan {
            name: "test".into(),
            steps: vec![step(10, 300), step(100, 900)],
            contract_migrations: Default::default(),
        };
        let mut state = RolloutState::new("r1".into(), release("v1"), release("v2"), plan, 0);
        state.phase = Phase::Baking;
        state.step_index = step_index;
        state.step_started_at_ms = Some(1_000);
        state
    }

    #[test]
    fn a_bake_says_its_time_left_and_what_follows() {
        assert_eq!(
            next_decision(&baking_at(0), 61_000),
            "bake ends in 4m if the analysis stays clean; then advance to 100 %"
        );
        assert_eq!(
            next_decision(&baking_at(1), 1_000),
            "bake ends in 15m if the analysis stays clean; then the watch ends and v2 is promoted"
        );
        assert!(next_decision(&baking_at(0), 900_000).starts_with("bake ends in 0s"));
    }

    #[test]
    fn approvals_windows_and_operators_are_named() {
        let mut state = baking_at(1);
        state.approval = Some(ApprovalWait {
            step_index: 1,
            rule: ApprovalRule {
                approvers: 2,
                timeout: Duration::from_secs(1800),
                on_timeout: ApprovalTimeout::Rollback,
            },
            since_ms: 0,
            approvals: vec![Approval {
                by: "alice".into(),
                at_ms: 5,
                reason: None,
            }],
            timed_out: false,
        });
        assert_eq!(
            next_decision(&state, 2_000),
            "waits for approval: 1 of 2 (approved by alice); `opsd approve steno`"
        );

        let mut waiting = baking_at(0);
        waiting.waiting_for_window =
            Some("waiting for the deploy window: opens Tue 02:00 UTC".into());
        assert!(next_decision(&waiting, 2_000).starts_with("waiting for the deploy window"));

        let mut paused = baking_at(0);
        paused.phase = Phase::Paused;
        assert!(next_decision(&paused, 0).contains("resume, promote or abort"));

        let mut done = baking_at(1);
        done.phase = Phase::RolledBack;
        assert_eq!(next_decision(&done, 0), "done: v2 was rolled back");
    }
}
