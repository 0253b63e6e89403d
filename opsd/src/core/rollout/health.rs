//! What rolls a canary back in every phase that gives it weight (baking, paused or held):
//! consecutive failed health probes (`health_failures_to_roll_back`, R-ALARM-8), and the
//! platform's own alarms (CloudWatch) marked as rollback triggers.

use super::{roll_back, Action, Evidence, Observation, RolloutPolicy, RolloutState};
use crate::core::release::HealthStatus;

/// Counts this tick's health probe and rolls back once the policy's number of probes in a row
/// failed; says whether it did.
pub(super) fn roll_back_on_failed_health(
    state: &mut RolloutState,
    observation: &Observation,
    policy: &RolloutPolicy,
    actions: &mut Vec<Action>,
) -> bool {
    track_health(state, observation);
    if state.consecutive_health_failures < policy.health_failures_to_roll_back {
        return false;
    }
    let summary = health_summary(state, observation, policy);
    let evidence = health_evidence(state, observation);
    roll_back(state, observation.now_ms, summary, evidence, actions);
    true
}

/// Counts this tick's health probe of the canary: a failure adds one, a pass resets the count.
fn track_health(state: &mut RolloutState, observation: &Observation) {
    match &observation.canary_health {
        Some(HealthStatus::Healthy) => state.consecutive_health_failures = 0,
        Some(HealthStatus::Unhealthy(_)) => state.consecutive_health_failures += 1,
        None => {}
    }
}

/// Why the failed health probes rolled the canary back.
fn health_summary(
    state: &RolloutState,
    observation: &Observation,
    policy: &RolloutPolicy,
) -> String {
    let detail = match &observation.canary_health {
        Some(HealthStatus::Unhealthy(detail)) => format!(" (last: {detail})"),
        _ => String::new(),
    };
    format!(
        "the canary failed {} consecutive health checks (limit {}){detail}; rolled back",
        state.consecutive_health_failures, policy.health_failures_to_roll_back
    )
}

/// The failures counted and the last probe's detail.
fn health_evidence(state: &RolloutState, observation: &Observation) -> Evidence {
    Evidence {
        consecutive_health_failures: state.consecutive_health_failures,
        health_detail: match &observation.canary_health {
            Some(HealthStatus::Unhealthy(detail)) => Some(detail.clone()),
            _ => None,
        },
        ..Evidence::default()
    }
}

/// Rolls back when a platform-evaluated rollback alarm is in ALARM; says whether it did.
pub(super) fn roll_back_on_external_alarm(
    state: &mut RolloutState,
    observation: &Observation,
    actions: &mut Vec<Action>,
) -> bool {
    let Some(firing) = observation
        .external_alarms
        .iter()
        .find(|alarm| alarm.rolls_back && alarm.is_firing())
    else {
        return false;
    };
    let summary = format!(
        "platform alarm {} is in ALARM ({}); rolled back",
        firing.name, firing.reason
    );
    let evidence = Evidence {
        external_alarms: observation.external_alarms.clone(),
        ..Evidence::default()
    };
    roll_back(state, observation.now_ms, summary, evidence, actions);
    true
}
