//! An alarm rule's state over time in production: given what a rule was (its state, since when,
//! and whether an ALARM was announced and not yet recovered) and a new evaluation, what it is
//! now, whether that is a change worth a timeline entry, and what to notify.
//!
//! invariant: an alarm state change notifies exactly once: entering ALARM announces it (unless
//! the previous ALARM was never recovered, e.g. a gap without data in the middle of one), and
//! only the return to OK of an announced ALARM announces the recovery. INSUFFICIENT_DATA never
//! notifies: no data is neither an outage nor a recovery.

use serde::{Deserialize, Serialize};

use super::alarms::AlarmState;

/// What a rule was at its last evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleStatus {
    pub state: AlarmState,
    /// When the rule entered `state` (milliseconds since the epoch).
    pub since_ms: i64,
    /// The value of the last evaluation, when it had one.
    pub value: Option<f64>,
    pub reason: String,
    /// Set from the moment an ALARM is announced until its recovery is: the start of that ALARM,
    /// which also names the notifications about it.
    pub announced_alarm_since_ms: Option<i64>,
}

/// What an evaluation found, whatever evaluated it (opsd on traffic, or a platform's alarm).
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub state: AlarmState,
    pub value: Option<f64>,
    pub reason: String,
}

/// What to tell people about a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlarmNotice {
    /// The rule entered ALARM; `key` identifies this ALARM until it recovers.
    Firing { key: String },
    /// The announced ALARM with this `key` is back to OK.
    Recovered { key: String, alarm_lasted_ms: i64 },
}

/// A state change: from what (none on a rule's first evaluation) to what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: Option<AlarmState>,
    pub to: AlarmState,
}

/// The outcome of one evaluation of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmStep {
    pub status: RuleStatus,
    /// `Some` when the state changed (or the rule was evaluated for the first time).
    pub transition: Option<Transition>,
    pub notice: Option<AlarmNotice>,
}

/// The key of the notifications about one ALARM of `rule` of `service`: the trigger and its
/// recovery share it (PagerDuty resolves an incident by it), and a delivery is made once per key.
pub fn alarm_notification_key(service: &str, rule: &str, alarm_since_ms: i64) -> String {
    format!("alarm/{service}/{rule}/{alarm_since_ms}")
}

/// Steps a rule of `service` from `previous` (none before its first evaluation) with what was
/// `observed` at `now_ms`.
pub fn step_alarm(
    service: &str,
    rule: &str,
    previous: Option<&RuleStatus>,
    observed: Observed,
    now_ms: i64,
) -> AlarmStep {
    let previous_state = previous.map(|status| status.state);
    let changed = previous_state != Some(observed.state);
    let since_ms = match previous {
        Some(status) if !changed => status.since_ms,
        _ => now_ms,
    };
    let mut announced = previous.and_then(|status| status.announced_alarm_since_ms);
    let notice = match (observed.state, announced) {
        (AlarmState::Alarm, None) => {
            announced = Some(since_ms);
            Some(AlarmNotice::Firing {
                key: alarm_notification_key(service, rule, since_ms),
            })
        }
        (AlarmState::Ok, Some(alarm_since_ms)) => {
            announced = None;
            Some(AlarmNotice::Recovered {
                key: alarm_notification_key(service, rule, alarm_since_ms),
                alarm_lasted_ms: now_ms.saturating_sub(alarm_since_ms),
            })
        }
        _ => None,
    };
    AlarmStep {
        status: RuleStatus {
            state: observed.state,
            since_ms,
            value: observed.value,
            reason: observed.reason,
            announced_alarm_since_ms: announced,
        },
        transition: changed.then_some(Transition {
            from: previous_state,
            to: observed.state,
        }),
        notice,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(state: AlarmState) -> Observed {
        Observed {
            state,
            value: Some(0.5),
            reason: format!("{state}"),
        }
    }

    /// Steps a rule through `states`, one evaluation a second, and returns every step.
    fn trace(states: &[AlarmState]) -> Vec<AlarmStep> {
        let mut status: Option<RuleStatus> = None;
        let mut steps = Vec::new();
        for (second, state) in states.iter().enumerate() {
            let step = step_alarm(
                "steno",
                "errors",
                status.as_ref(),
                observed(*state),
                second as i64 * 1000,
            );
            status = Some(step.status.clone());
            steps.push(step);
        }
        steps
    }

    fn notices(steps: &[AlarmStep]) -> Vec<AlarmNotice> {
        steps
            .iter()
            .filter_map(|step| step.notice.clone())
            .collect()
    }

    #[test]
    fn ok_alarm_alarm_ok_notifies_exactly_twice_with_one_key() {
        use AlarmState::*;
        let steps = trace(&[Ok, Alarm, Alarm, Ok]);
        assert_eq!(
            notices(&steps),
            vec![
                AlarmNotice::Firing {
                    key: "alarm/steno/errors/1000".into()
                },
                AlarmNotice::Recovered {
                    key: "alarm/steno/errors/1000".into(),
                    alarm_lasted_ms: 2000
                },
            ]
        );
        let transitions: Vec<_> = steps.iter().map(|step| step.transition).collect();
        assert_eq!(
            transitions,
            vec![
                Some(Transition { from: None, to: Ok }),
                Some(Transition {
                    from: Some(Ok),
                    to: Alarm
                }),
                None,
                Some(Transition {
                    from: Some(Alarm),
                    to: Ok
                }),
            ]
        );
        assert_eq!(steps[2].status.since_ms, 1000, "still the same ALARM");
        assert_eq!(steps[3].status.announced_alarm_since_ms, None);
    }

    #[test]
    fn a_gap_without_data_inside_an_alarm_neither_recovers_nor_fires_again() {
        use AlarmState::*;
        let steps = trace(&[Ok, Alarm, InsufficientData, Alarm, InsufficientData, Ok]);
        let notices = notices(&steps);
        assert_eq!(notices.len(), 2, "{notices:?}");
        assert!(matches!(&notices[0], AlarmNotice::Firing { key } if key.ends_with("/1000")));
        assert!(
            matches!(&notices[1], AlarmNotice::Recovered { key, .. } if key.ends_with("/1000")),
            "the recovery names the ALARM it ends"
        );
        assert_eq!(
            steps
                .iter()
                .filter(|step| step.transition.is_some())
                .count(),
            6,
            "every change of state is a transition"
        );
    }

    #[test]
    fn insufficient_data_alone_never_notifies() {
        use AlarmState::*;
        let steps = trace(&[InsufficientData, Ok, InsufficientData, InsufficientData, Ok]);
        assert!(notices(&steps).is_empty());
    }

    #[test]
    fn a_rule_first_seen_in_alarm_fires_and_flapping_notifies_every_change() {
        use AlarmState::*;
        let steps = trace(&[Alarm, Ok, Alarm, Ok]);
        let notices = notices(&steps);
        assert_eq!(notices.len(), 4);
        assert!(matches!(&notices[2], AlarmNotice::Firing { key } if key.ends_with("/2000")));
    }

    #[test]
    fn a_restart_that_reloads_the_status_does_not_announce_again() {
        use AlarmState::*;
        let before = trace(&[Ok, Alarm]);
        let reloaded = before[1].status.clone();
        let step = step_alarm("steno", "errors", Some(&reloaded), observed(Alarm), 60_000);
        assert_eq!(step.notice, None);
        assert_eq!(step.transition, None);
        let step = step_alarm("steno", "errors", Some(&step.status), observed(Ok), 61_000);
        assert!(matches!(step.notice, Some(AlarmNotice::Recovered { .. })));
    }
}
