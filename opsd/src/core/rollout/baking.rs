//! A step's bake (phase `Baking`), one tick at a time: what rolls the canary back or holds it
//! (health, traffic drift, platform alarms, smoke checks, alarm rules, the comparison with the
//! baseline), and once the bake's time passed with every check passed, what comes next: a hold
//! for the cost per request, the wait for a deploy window or for people's approval, the next
//! step, or the promotion. During the watch at 100 % the new release is compared with the
//! previous release's recorded traffic instead of a live baseline (R-WATCH-4).

use std::time::Duration;

use super::approval::wait_for_approval;
use super::health::{roll_back_on_external_alarm, roll_back_on_failed_health};
use super::{
    begin_step, finish, record, roll_back, Action, CheckState, DecisionKind, Evidence,
    InconclusiveAction, Observation, Phase, RolloutPolicy, RolloutState,
};
use crate::core::alarms::{evaluate_alarm, AlarmEvaluation, AlarmMetric, AlarmState};
use crate::core::analysis::{compare_with_reference, Comparison, Verdict};
use crate::core::cost::release_cost::compare_cost_per_request;
use crate::core::duration::format_duration;
use crate::core::rollout_window::wait_for_the_window;

/// One tick of the current step's bake.
pub(super) fn step_baking(
    state: &mut RolloutState,
    observation: &Observation,
    policy: &RolloutPolicy,
    actions: &mut Vec<Action>,
) {
    let now = observation.now_ms;

    // 1. Health checks: N consecutive failures roll back.
    if roll_back_on_failed_health(state, observation, policy, actions) {
        return;
    }
    // 1a. Someone else changed the traffic routing: hold, do not fight it.
    if hold_on_traffic_drift(state, observation, actions) {
        return;
    }
    // 1b. Platform-evaluated alarms marked as rollback triggers.
    if roll_back_on_external_alarm(state, observation, actions) {
        return;
    }
    // 2. Smoke checks of this step.
    if roll_back_on_failed_check(state, observation, actions) {
        return;
    }
    // 3. Alarm rules that trigger rollback.
    let alarms = evaluate_alarms(state, observation, policy);
    if roll_back_on_alarm(state, now, &alarms, actions) {
        return;
    }

    // 4. Canary against baseline; during the watch at 100 %, against the previous release's
    //    recorded traffic (R-WATCH-4), or not at all when none was recorded.
    let watching = state.is_watching();
    let baseline = if watching {
        state.reference.as_ref().map(|reference| &reference.traffic)
    } else {
        Some(&observation.baseline_traffic)
    };
    let analysis = policy.analysis.for_plan(&state.plan);
    // Before the watch, the recorded traffic also sharpens the error test (early failures).
    let recorded = state
        .reference
        .as_ref()
        .filter(|_| !watching)
        .map(|reference| &reference.traffic);
    let comparison = baseline.map(|baseline| {
        compare_with_reference(
            &observation.canary_traffic,
            baseline,
            recorded,
            state.looks,
            &analysis,
        )
    });
    state.looks += 1;
    state.last_comparison = comparison.clone();
    let started = state.step_started_at_ms.unwrap_or(now);
    let elapsed = now - started;
    let required = state.bake_required().as_millis() as i64;
    let mut evidence = Evidence {
        comparison: comparison.clone(),
        alarms,
        consecutive_health_failures: state.consecutive_health_failures,
        checks: state.checks.clone(),
        bake_elapsed_ms: Some(elapsed),
        bake_required_ms: Some(required),
        reference: if watching {
            state.reference.clone()
        } else {
            None
        },
        ..Evidence::default()
    };
    // Without a reference the watch has no comparison; alarms, health and checks decide.
    let verdict = comparison
        .as_ref()
        .map_or(Verdict::Pass, |comparison| comparison.verdict);
    if verdict == Verdict::Fail {
        let summary = failure_summary(state, comparison.as_ref(), watching);
        roll_back(state, now, summary, evidence, actions);
        return;
    }
    state.last_summary = progress_summary(state, comparison.as_ref(), watching, elapsed, required);

    // 5. The bake is over once its time passed and every check of the step passed.
    let checks_done = state
        .checks
        .iter()
        .all(|check| check.state == CheckState::Passed);
    if elapsed < required || !checks_done {
        return;
    }
    // 6. A passing bake may still be held for its cost per request.
    if let (Verdict::Pass, Some(baseline), false) = (verdict, baseline, state.cost_accepted) {
        if let Some(cost_policy) = &policy.cost_per_request {
            let cost = compare_cost_per_request(&observation.canary_traffic, baseline, cost_policy);
            let exceeded = cost.exceeded;
            let reason = cost.reason.clone();
            evidence.cost_per_request = Some(cost);
            if exceeded {
                state.phase = Phase::Held;
                state.cost_hold = true;
                let summary = format!(
                    "the {} % step passed its bake but the canary's requests cost more: {reason}; \
                     held for an operator (resume accepts the cost, abort rolls back)",
                    state.canary_weight_percent()
                );
                record(state, DecisionKind::Hold, now, summary, evidence, actions);
                return;
            }
        }
    }
    match verdict {
        Verdict::Pass => move_on(state, observation, watching, required, evidence, actions),
        Verdict::Inconclusive => hold_or_roll_back_inconclusive(
            state,
            now,
            policy,
            comparison.as_ref(),
            evidence,
            actions,
        ),
        Verdict::Fail => {}
    }
}

/// Holds when someone else than opsd changed the traffic routing, until an operator restores it
/// and resumes or aborts; says whether it held.
fn hold_on_traffic_drift(
    state: &mut RolloutState,
    observation: &Observation,
    actions: &mut Vec<Action>,
) -> bool {
    let Some(detail) = &observation.traffic_drift else {
        return false;
    };
    state.phase = Phase::Held;
    record(
        state,
        DecisionKind::Hold,
        observation.now_ms,
        format!(
            "traffic drift: {detail}; held at {} % until an operator restores the routing and resumes or aborts",
            state.canary_weight_percent()
        ),
        Evidence::default(),
        actions,
    );
    true
}

/// Takes in the smoke checks that finished and rolls back when one of this step's checks
/// failed; says whether it did.
fn roll_back_on_failed_check(
    state: &mut RolloutState,
    observation: &Observation,
    actions: &mut Vec<Action>,
) -> bool {
    for (name, result) in &observation.check_results {
        if let Some(check) = state.checks.iter_mut().find(|check| &check.name == name) {
            check.state = result.clone();
        }
    }
    let Some(failed) = state
        .checks
        .iter()
        .find(|check| matches!(check.state, CheckState::Failed(_)))
        .cloned()
    else {
        return false;
    };
    let detail = match &failed.state {
        CheckState::Failed(detail) => detail.clone(),
        _ => String::new(),
    };
    let summary = format!(
        "smoke check {} failed at {} %: {detail}; rolled back",
        failed.name,
        state.canary_weight_percent()
    );
    let evidence = Evidence {
        checks: state.checks.clone(),
        ..Evidence::default()
    };
    roll_back(state, observation.now_ms, summary, evidence, actions);
    true
}

/// Every alarm rule judged on the canary's recent traffic.
///
/// A rule on traffic is judged on whole periods counted from the moment the canary took traffic
/// (the periods ending 1, 2, 3 … periods after it), not on a window sliding with every tick: its
/// verdict changes once per period, as CloudWatch judges whole periods (R-ALARM-11). A threshold
/// checked on a sliding window at every tick is tested again and again on overlapping windows,
/// and such a scan crosses it by chance far more often than one period does: a healthy canary
/// at 10 % of 100 requests per second (600 requests a minute, 0.2 % errors) shows more than 1 %
/// errors in some minute-long window of a 5-minute step in about 1.6 % of rollouts
/// (`rollout_bench`), against about 0.1 % for each completed minute. A canary that breaches the
/// threshold over a whole period is still rolled back when that period ends.
fn evaluate_alarms(
    state: &RolloutState,
    observation: &Observation,
    policy: &RolloutPolicy,
) -> Vec<AlarmEvaluation> {
    let now = observation.now_ms;
    let now_second = now.div_euclid(1000);
    let traffic_started_ms = state.traffic_started_at_ms.unwrap_or(now);
    let observed_ms = now - traffic_started_ms;
    // The first whole second of the canary's traffic.
    let first_second =
        traffic_started_ms.div_euclid(1000) + i64::from(traffic_started_ms.rem_euclid(1000) != 0);
    policy
        .alarms
        .iter()
        .map(|rule| {
            let needs_traffic_history = rule.metric != AlarmMetric::HealthCheckFailures;
            let judged_second = if needs_traffic_history {
                last_period_end(rule.period, first_second, now_second)
            } else {
                now_second
            };
            let mut evaluation = evaluate_alarm(
                rule,
                &observation.canary_series,
                state.consecutive_health_failures,
                judged_second,
            );
            // A window the canary has not filled yet would judge a few requests as if they were
            // a full period; such a rule waits (the canary analysis covers the early seconds).
            let window_ms = (rule.period.as_millis() as i64)
                .saturating_mul(i64::from(rule.evaluation_periods.max(1)));
            if needs_traffic_history
                && observed_ms < window_ms
                && evaluation.state == AlarmState::Alarm
            {
                evaluation.state = AlarmState::InsufficientData;
                evaluation.reason = format!(
                    "the canary has taken traffic for {} s; this rule judges {} s windows",
                    observed_ms / 1000,
                    window_ms / 1000
                );
            }
            evaluation
        })
        .collect()
}

/// The end (exclusive, in seconds) of the last whole `period` completed by `now_second`, periods
/// counted from `first_second`; `now_second` itself before the first period ends, or for a period
/// under a second (which the rule's evaluation reports as unusable).
fn last_period_end(period: Duration, first_second: i64, now_second: i64) -> i64 {
    let period_seconds = i64::try_from(period.as_secs()).unwrap_or(i64::MAX);
    let elapsed = now_second.saturating_sub(first_second);
    if period_seconds == 0 || elapsed < period_seconds {
        return now_second;
    }
    first_second.saturating_add(elapsed / period_seconds * period_seconds)
}

/// Rolls back when a rule that triggers rollback is in ALARM; says whether it did.
fn roll_back_on_alarm(
    state: &mut RolloutState,
    now: i64,
    alarms: &[AlarmEvaluation],
    actions: &mut Vec<Action>,
) -> bool {
    let Some(firing) = alarms
        .iter()
        .find(|alarm| alarm.rollback && alarm.state == AlarmState::Alarm)
    else {
        return false;
    };
    let summary = format!(
        "alarm {} is in ALARM ({}); rolled back",
        firing.rule, firing.reason
    );
    let evidence = Evidence {
        alarms: alarms.to_vec(),
        ..Evidence::default()
    };
    roll_back(state, now, summary, evidence, actions);
    true
}

/// The reasons of a comparison, joined; empty without one.
fn reasons(comparison: Option<&Comparison>) -> String {
    comparison
        .map(|comparison| comparison.reasons.join("; "))
        .unwrap_or_default()
}

/// Why a failing comparison rolled the canary back.
fn failure_summary(
    state: &RolloutState,
    comparison: Option<&Comparison>,
    watching: bool,
) -> String {
    let reasons = reasons(comparison);
    if watching {
        format!(
            "during the watch at 100 %, {} is worse than {} was before the rollout: {reasons}; \
             rolled back to the warm {}",
            state.canary.version, state.stable.version, state.stable.version
        )
    } else {
        format!(
            "the canary is worse than the baseline at {} %: {reasons}; rolled back",
            state.canary_weight_percent()
        )
    }
}

/// Where a bake that goes on stands, as `status` shows it.
fn progress_summary(
    state: &RolloutState,
    comparison: Option<&Comparison>,
    watching: bool,
    elapsed: i64,
    required: i64,
) -> String {
    match (comparison, watching) {
        (Some(comparison), true) => format!(
            "watching at 100 %: {} of {} s, compared with {}'s recorded traffic: {}",
            elapsed / 1000,
            required / 1000,
            state.stable.version,
            verdict_word(comparison.verdict)
        ),
        (None, _) => format!(
            "watching at 100 %: {} of {} s; {} served no traffic before the rollout to compare \
             with, so alarms, health and checks decide",
            elapsed / 1000,
            required / 1000,
            state.stable.version
        ),
        (Some(comparison), false) => format!(
            "baking at {} %: {} of {} s, analysis {}",
            state.canary_weight_percent(),
            elapsed / 1000,
            required / 1000,
            verdict_word(comparison.verdict)
        ),
    }
}

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "passing",
        Verdict::Fail => "failing",
        Verdict::Inconclusive => "inconclusive so far",
    }
}

/// After a passing bake: the rollout waits for its deploy window or for people's approval, or
/// moves to the next step, or is promoted after its last one.
fn move_on(
    state: &mut RolloutState,
    observation: &Observation,
    watching: bool,
    required: i64,
    evidence: Evidence,
    actions: &mut Vec<Action>,
) {
    let now = observation.now_ms;
    if wait_for_the_window(state, observation, actions) {
        return;
    }
    let next_index = state.step_index + 1;
    let next_step = state
        .plan
        .steps
        .get(next_index)
        .map(|step| (step.canary_weight_percent, step.bake));
    if wait_for_approval(state, next_index, now, evidence.clone(), actions) {
        return;
    }
    match next_step {
        Some((weight, bake)) if weight < 100 || !bake.is_zero() => {
            advance(state, next_index, weight, bake, now, evidence, actions)
        }
        _ => promote(state, watching, required, now, evidence, actions),
    }
}

/// Begins the step at `index`, which gives the canary `weight` % and bakes for `bake` (at 100 %:
/// the watch before promotion, with the previous release kept warm).
fn advance(
    state: &mut RolloutState,
    index: usize,
    weight: u8,
    bake: Duration,
    now: i64,
    evidence: Evidence,
    actions: &mut Vec<Action>,
) {
    let from = state.canary_weight_percent();
    begin_step(state, index, now, actions);
    let summary = if weight == 100 {
        format!(
            "the {from} % step passed its bake; {} now takes all traffic and is watched for {} \
             before promotion while {} stays warm",
            state.canary.version,
            format_duration(bake),
            state.stable.version
        )
    } else {
        format!("the {from} % step passed its bake; the canary now takes {weight} %")
    };
    record(
        state,
        DecisionKind::Advance,
        now,
        summary,
        evidence,
        actions,
    );
}

/// Promotes the canary after the plan's last step (whose bake took `required` ms): its watch at
/// 100 % ended clean, or the plan has no watch.
fn promote(
    state: &mut RolloutState,
    watching: bool,
    required: i64,
    now: i64,
    evidence: Evidence,
    actions: &mut Vec<Action>,
) {
    let summary = if watching && required == 0 {
        format!(
            "all traffic is on {}; promoted without a watch",
            state.canary.version
        )
    } else if watching {
        format!(
            "the watch at 100 % ended clean after {}; promoted",
            format_duration(state.bake_required())
        )
    } else {
        format!(
            "the final {} % step passed its bake; promoted",
            state.canary_weight_percent()
        )
    };
    finish(
        state,
        Phase::Promoted,
        DecisionKind::Promote,
        now,
        summary,
        evidence,
        actions,
    );
}

/// A bake that ended without enough evidence either way: held for an operator or rolled back,
/// as the policy says.
fn hold_or_roll_back_inconclusive(
    state: &mut RolloutState,
    now: i64,
    policy: &RolloutPolicy,
    comparison: Option<&Comparison>,
    evidence: Evidence,
    actions: &mut Vec<Action>,
) {
    let reasons = reasons(comparison);
    match policy.on_inconclusive {
        InconclusiveAction::Hold => {
            state.phase = Phase::Held;
            let summary = format!(
                "the bake at {} % ended inconclusive ({reasons}); holding for an operator",
                state.canary_weight_percent()
            );
            record(state, DecisionKind::Hold, now, summary, evidence, actions);
        }
        InconclusiveAction::RollBack => {
            let summary = format!(
                "the bake at {} % ended inconclusive ({reasons}); policy rolls back",
                state.canary_weight_percent()
            );
            roll_back(state, now, summary, evidence, actions);
        }
    }
}
