//! What rolls a canary back or holds it besides the comparison with the baseline: alarm rules
//! once their window is covered, the platform's own rollback alarms (in every phase that gives
//! the canary weight), and traffic routing changed by someone else than opsd.

use super::tests::{fast_plan, Side, Trace};
use super::*;
use crate::core::alarms::{parse_alarm_file, AlarmState, ExternalAlarm};
use crate::core::release::{HealthStatus, TrafficSplit};

fn external_alarm(name: &str, state: &str, rolls_back: bool) -> ExternalAlarm {
    ExternalAlarm {
        name: name.into(),
        state: state.into(),
        reason: format!("threshold crossed ({name})"),
        rolls_back,
    }
}

#[test]
fn a_platform_rollback_alarm_in_alarm_rolls_the_canary_back_and_others_do_not() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.ready();
    // Firing but not a rollback trigger, and a trigger that is OK: the bake goes on.
    trace.apply(Observation {
        now_ms: trace.now_ms + 1000,
        canary_readiness: Readiness::Ready,
        external_alarms: vec![
            external_alarm("opsd-steno-lambda-throttles", "ALARM", false),
            external_alarm("opsd-steno-lambda-error-rate", "OK", true),
        ],
        ..Observation::default()
    });
    assert_eq!(trace.state.phase, Phase::Baking);
    trace.apply(Observation {
        now_ms: trace.now_ms + 2000,
        canary_readiness: Readiness::Ready,
        external_alarms: vec![external_alarm(
            "opsd-steno-lambda-error-rate",
            "ALARM",
            true,
        )],
        ..Observation::default()
    });
    assert_eq!(trace.state.phase, Phase::RolledBack);
    let decision = trace.decisions.last().unwrap();
    assert_eq!(decision.kind, DecisionKind::RollBack);
    assert!(decision.summary.contains("opsd-steno-lambda-error-rate"));
    assert_eq!(decision.evidence.external_alarms.len(), 1);
    assert_eq!(
        desired_split(&trace.state),
        TrafficSplit::all_to("steno@v1")
    );
}

#[test]
fn traffic_drift_holds_the_rollout_instead_of_fighting_it() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.ready();
    trace.apply(Observation {
        now_ms: trace.now_ms + 1000,
        canary_readiness: Readiness::Ready,
        traffic_drift: Some(
            "the alias routes 1 + 2 at 50 % but opsd last set 1 + 2 at 10 %".into(),
        ),
        ..Observation::default()
    });
    assert_eq!(trace.state.phase, Phase::Held);
    let decision = trace.decisions.last().unwrap();
    assert_eq!(decision.kind, DecisionKind::Hold);
    assert!(
        decision.summary.contains("traffic drift"),
        "{}",
        decision.summary
    );
    // Held keeps the weight it had; it does not promote by itself.
    assert_eq!(trace.state.canary_weight_percent(), 10);
}

#[test]
fn a_platform_rollback_alarm_also_rolls_back_a_paused_canary() {
    let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
    trace.ready();
    trace.second(Some(HealthStatus::Healthy), vec![OperatorCommand::Pause]);
    assert_eq!(trace.state.phase, Phase::Paused);
    trace.apply(Observation {
        now_ms: trace.now_ms + 1000,
        canary_readiness: Readiness::Ready,
        external_alarms: vec![external_alarm("steno-errors", "ALARM", true)],
        ..Observation::default()
    });
    assert_eq!(trace.state.phase, Phase::RolledBack);
}

#[test]
fn rollback_alarms_fire_once_their_window_is_covered() {
    let rules = parse_alarm_file(
        "fast-alarm.yaml",
        "alarms:\n  - name: fast-errors\n    description: error rate over 1 % for 5 s\n    metric: error_rate\n    comparison: \">\"\n    threshold: 0.01\n    period: 5s\n    evaluation_periods: 1\n    severity: critical\n    rollback: true\n    notify: []\n",
    )
    .unwrap();
    // 2 % errors: too close to the baseline for the floors of the comparison at this traffic,
    // but over the alarm's absolute threshold.
    let mut trace = Trace::new(fast_plan(), Side::new(50, 5));
    trace.policy.alarms = rules;
    trace.policy.analysis.error_rate_floor = 0.5;
    trace.ready();
    trace.second(Some(HealthStatus::Healthy), Vec::new());
    assert_eq!(
        trace.state.phase,
        Phase::Baking,
        "one second does not fill a 5 s window"
    );
    trace.run_until_terminal(20);
    assert_eq!(trace.state.phase, Phase::RolledBack);
    let rollback = trace.decisions.last().unwrap();
    assert!(
        rollback.summary.contains("fast-errors"),
        "{}",
        rollback.summary
    );
    assert!(rollback
        .evidence
        .alarms
        .iter()
        .any(|alarm| alarm.state == AlarmState::Alarm));
}

/// Serves the canary's seconds `seconds` (counted from when it took traffic, at 10 %: requests
/// `10 s + 1` to `10 s + 10` in second `s`), one failed request in each second of `failing`.
fn serve_with_errors_in(trace: &mut Trace, seconds: std::ops::Range<u32>, failing: &[u32]) {
    for index in seconds {
        trace.canary.error_every = if failing.contains(&index) {
            10 * (u64::from(index) + 1)
        } else {
            0
        };
        trace.second(Some(HealthStatus::Healthy), Vec::new());
    }
}

#[test]
fn rollback_alarms_judge_whole_periods_not_a_sliding_window() {
    let rules = parse_alarm_file(
        "period-alarm.yaml",
        "alarms:\n  - name: period-errors\n    description: error rate over 1.5 % in a 10 s period\n    metric: error_rate\n    comparison: \">\"\n    threshold: 0.015\n    period: 10s\n    evaluation_periods: 1\n    severity: critical\n    rollback: true\n    notify: []\n    min_requests_per_period: 10\n",
    )
    .unwrap();
    let plan = crate::core::plan::parse_plan(
        "long.yaml",
        "name: long\nsteps:\n  - weight: 10\n    bake: 60s\n  - weight: 100\n",
    )
    .unwrap();
    let mut trace = Trace::new(plan, Side::new(0, 5));
    trace.policy.alarms = rules;
    trace.policy.analysis.error_rate_floor = 0.5;
    trace.ready();
    let started_ms = trace.now_ms;
    // Failures in seconds 18 and 21: 2 of the 100 requests of the window sliding over seconds
    // 12 to 21 (2 %), but 1 % in each whole period (10 to 19, 20 to 29).
    serve_with_errors_in(&mut trace, 0..30, &[18, 21]);
    assert_eq!(trace.state.phase, Phase::Baking, "{:?}", trace.decisions);
    // Two failures inside the period 30 to 39: rolled back when that period ends, not before.
    serve_with_errors_in(&mut trace, 30..40, &[31, 35]);
    assert_eq!(trace.state.phase, Phase::RolledBack);
    let rollback = trace.decisions.last().unwrap();
    assert_eq!(rollback.at_ms, started_ms + 40_000);
    assert!(
        rollback.summary.contains("period-errors"),
        "{}",
        rollback.summary
    );
}
