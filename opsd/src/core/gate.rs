//! Deploy gates as data: each gate (freeze, deploy window, quarantine, alarm, budget, drill,
//! pre-deployment snapshot) reports a [`Verdict`],
//! and [`decide`] turns it, the gate's mode and the operator's overrides into one
//! [`GateOutcome`] — pass, overridden (to audit), hold, or refuse with a message that says what
//! to do. One decision for every gate, so refusals, overrides and their audit read the same.

use serde::Serialize;

use super::alarms::{AlarmEvaluation, AlarmState, ExternalAlarm};
use super::drill::GateMode;
use super::severity::Severity;
use super::window::WindowState;

/// The gates a deploy passes, in the order they are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateKind {
    /// A stop-the-line freeze (`opsd freeze`) of the service or of every service.
    Freeze,
    /// Outside every deploy window of the service, or on a freeze date (R-GATE-6).
    Window,
    /// A version that was rolled back is not deployed again under the same label.
    Quarantine,
    /// A critical alarm firing on the service's stable release.
    Alarm,
    /// The newest cost check's forecast against the budgets (R-COST-4).
    Budget,
    /// The newest DR drill of the service's database (R-GATE-1, R-GATE-2).
    Drill,
    /// The pre-deployment snapshot of the service's database (R-DR-4, R-GATE-4).
    Snapshot,
}

impl GateKind {
    /// Every gate, in evaluation order: the cheap checks first, the snapshot (which writes) last.
    pub const ALL: [GateKind; 7] = [
        GateKind::Freeze,
        GateKind::Window,
        GateKind::Quarantine,
        GateKind::Alarm,
        GateKind::Budget,
        GateKind::Drill,
        GateKind::Snapshot,
    ];

    /// The gate's name, as `--override NAME` spells it.
    pub fn name(self) -> &'static str {
        match self {
            GateKind::Freeze => "freeze",
            GateKind::Window => "window",
            GateKind::Quarantine => "quarantine",
            GateKind::Alarm => "alarm",
            GateKind::Budget => "budget",
            GateKind::Drill => "drill",
            GateKind::Snapshot => "snapshot",
        }
    }

    /// The gate `--override NAME` names, or an error listing the gates.
    pub fn from_override(name: &str) -> Result<GateKind, String> {
        GateKind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| {
                format!(
                    "--override {name:?} is not a gate; use {}",
                    GateKind::ALL.map(GateKind::name).join(", ")
                )
            })
    }

    /// The audit log's action for an override of this gate.
    pub fn override_action(self) -> &'static str {
        match self {
            GateKind::Freeze => "override_freeze",
            GateKind::Window => "override_deploy_window",
            GateKind::Quarantine => "override_quarantine",
            GateKind::Alarm => "override_alarm_gate",
            GateKind::Budget => "override_budget_gate",
            GateKind::Drill => "override_drill_gate",
            GateKind::Snapshot => "override_pre_deploy_snapshot",
        }
    }

    /// How a refusal by this gate reads after "deploy of SERVICE".
    fn refusal(self) -> &'static str {
        match self {
            GateKind::Freeze => "refused by a freeze",
            GateKind::Window => "refused by the deploy window gate",
            GateKind::Quarantine => "refused by the quarantine gate",
            GateKind::Alarm => "refused by the alarm gate",
            GateKind::Budget => "refused by the budget gate",
            GateKind::Drill => "refused by the drill gate",
            GateKind::Snapshot => "stopped",
        }
    }
}

/// The rollout that rolled a version back, as the quarantine gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolledBack<'a> {
    pub rollout_id: &'a str,
    pub ended_at: &'a str,
    /// The rollout's last summary: why it was rolled back.
    pub summary: &'a str,
}

/// A freeze in force, as the freeze gate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeInForce<'a> {
    /// The service's own name, or `*` for a freeze of every service.
    pub scope: &'a str,
    pub reason: &'a str,
    pub actor: &'a str,
    pub since: &'a str,
}

/// The freeze gate's verdict: closed while a freeze covers the service.
pub fn freeze_verdict(freeze: Option<FreezeInForce<'_>>) -> Verdict {
    let Some(freeze) = freeze else {
        return Verdict::Open;
    };
    let (what, unfreeze) = if freeze.scope == "*" {
        (
            "every service is frozen".to_string(),
            "`opsd unfreeze`".to_string(),
        )
    } else {
        (
            format!("{} is frozen", freeze.scope),
            format!("`opsd unfreeze {}`", freeze.scope),
        )
    };
    Verdict::Closed(Closure {
        reason: format!(
            "{what} since {} by {}: {}",
            freeze.since, freeze.actor, freeze.reason
        ),
        what_to_do: format!("lift it with {unfreeze}"),
        evidence: serde_json::json!({
            "gate": "freeze",
            "scope": freeze.scope,
            "frozen_by": freeze.actor,
            "frozen_because": freeze.reason,
            "since": freeze.since,
        }),
    })
}

/// The deploy window gate's verdict: closed outside every window and on freeze dates, naming
/// the next opening in the configured zone and in UTC.
pub fn window_verdict(state: &WindowState) -> Verdict {
    let WindowState::Closed(closed) = state else {
        return Verdict::Open;
    };
    Verdict::Closed(Closure {
        reason: format!("{}; the next window {}", closed.reason, closed.opens),
        what_to_do: "deploy then".into(),
        evidence: serde_json::json!({
            "gate": "window",
            "closed_because": closed.reason,
            "opens_at_ms": closed.opens_at_ms,
            "opens": closed.opens,
        }),
    })
}

/// The alarm gate's verdict: closed while a critical rule is in ALARM on the stable release
/// (`evaluations`, the rules evaluated on its live traffic) or the platform reports an alarm in
/// ALARM that rolls releases back (`external`).
pub fn alarm_verdict(
    release_id: &str,
    evaluations: &[AlarmEvaluation],
    external: &[ExternalAlarm],
) -> Verdict {
    let mut firing: Vec<String> = evaluations
        .iter()
        .filter(|evaluation| {
            evaluation.severity == Severity::Critical && evaluation.state == AlarmState::Alarm
        })
        .map(|evaluation| format!("{} ({})", evaluation.rule, evaluation.reason))
        .collect();
    firing.extend(
        external
            .iter()
            .filter(|alarm| alarm.is_firing() && alarm.rolls_back)
            .map(|alarm| format!("{} ({})", alarm.name, alarm.reason)),
    );
    if firing.is_empty() {
        return Verdict::Open;
    }
    Verdict::Closed(Closure {
        reason: format!(
            "critical alarm in ALARM on {release_id}: {}",
            firing.join("; ")
        ),
        what_to_do: "wait until it recovers; if this release is the fix for it, say so".into(),
        evidence: serde_json::json!({"gate": "alarm", "release": release_id, "firing": firing}),
    })
}

/// The quarantine gate's verdict: closed when `rolled_back` names the rollout that rolled this
/// version back (its id, when it ended, and its last summary).
pub fn quarantine_verdict(version: &str, rolled_back: Option<RolledBack<'_>>) -> Verdict {
    match rolled_back {
        None => Verdict::Open,
        Some(RolledBack {
            rollout_id,
            ended_at,
            summary,
        }) => Verdict::Closed(Closure {
            reason: format!(
                "{version} was rolled back at {ended_at} (rollout {rollout_id}: {summary})"
            ),
            what_to_do: "deploy the fix under a new version".into(),
            evidence: serde_json::json!({
                "gate": "quarantine",
                "version": version,
                "rolled_back_by": rollout_id,
                "ended_at": ended_at,
            }),
        }),
    }
}

/// What a gate found.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Open,
    Closed(Closure),
}

/// Why a gate is closed.
#[derive(Debug, Clone, PartialEq)]
pub struct Closure {
    /// What is wrong, for the operator.
    pub reason: String,
    /// What opens the gate, for the operator.
    pub what_to_do: String,
    /// The facts kept in the audit log when the gate is overridden.
    pub evidence: serde_json::Value,
}

/// What a deploy does about one gate.
#[derive(Debug, Clone, PartialEq)]
pub enum GateOutcome {
    /// Open, or off.
    Pass,
    /// Closed but overridden: the deploy goes on and the override is audited with this entry.
    Overridden {
        action: &'static str,
        evidence: serde_json::Value,
    },
    /// Closed in `hold` mode: the rollout is created but held before its canary starts.
    Hold(String),
    /// Closed: the deploy is refused with this message.
    Refuse(String),
}

/// The outcome of one gate for a deploy of `service`.
pub fn decide(
    kind: GateKind,
    service: &str,
    mode: GateMode,
    verdict: Verdict,
    overridden: bool,
) -> GateOutcome {
    let closure = match verdict {
        Verdict::Open => return GateOutcome::Pass,
        Verdict::Closed(_) if mode == GateMode::Off => return GateOutcome::Pass,
        Verdict::Closed(closure) => closure,
    };
    if overridden {
        return GateOutcome::Overridden {
            action: kind.override_action(),
            evidence: closure.evidence,
        };
    }
    match mode {
        GateMode::Hold => GateOutcome::Hold(format!("{} gate: {}", kind.name(), closure.reason)),
        _ => GateOutcome::Refuse(format!(
            "deploy of {service} {}: {}; {}, or override with --override {} --reason \"...\" \
             (audited)",
            kind.refusal(),
            closure.reason,
            closure.what_to_do,
            kind.name()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn closed(reason: &str) -> Verdict {
        Verdict::Closed(Closure {
            reason: reason.into(),
            what_to_do: "run `opsd drill run main`".into(),
            evidence: serde_json::json!({"gate": "drill"}),
        })
    }

    #[test]
    fn an_open_gate_or_one_that_is_off_passes() {
        assert_eq!(
            decide(
                GateKind::Drill,
                "steno",
                GateMode::Refuse,
                Verdict::Open,
                false
            ),
            GateOutcome::Pass
        );
        assert_eq!(
            decide(
                GateKind::Drill,
                "steno",
                GateMode::Off,
                closed("no drill"),
                false
            ),
            GateOutcome::Pass
        );
    }

    #[test]
    fn a_closed_gate_refuses_with_what_to_do_and_how_to_override() {
        let GateOutcome::Refuse(message) = decide(
            GateKind::Drill,
            "steno",
            GateMode::Refuse,
            closed("no drill passed in 7 days"),
            false,
        ) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            message,
            "deploy of steno refused by the drill gate: no drill passed in 7 days; run `opsd \
             drill run main`, or override with --override drill --reason \"...\" (audited)"
        );
    }

    #[test]
    fn hold_mode_holds_and_an_override_is_audited_with_the_evidence() {
        assert_eq!(
            decide(
                GateKind::Drill,
                "steno",
                GateMode::Hold,
                closed("stale"),
                false
            ),
            GateOutcome::Hold("drill gate: stale".into())
        );
        assert_eq!(
            decide(
                GateKind::Budget,
                "steno",
                GateMode::Refuse,
                closed("over"),
                true
            ),
            GateOutcome::Overridden {
                action: "override_budget_gate",
                evidence: serde_json::json!({"gate": "drill"})
            }
        );
    }

    #[test]
    fn a_rolled_back_version_is_quarantined_until_overridden() {
        assert_eq!(quarantine_verdict("v2", None), Verdict::Open);
        let closed = quarantine_verdict(
            "v2",
            Some(RolledBack {
                rollout_id: "r-1",
                ended_at: "2026-12-01T10:00:00Z",
                summary: "error rate 20 % against 0 %",
            }),
        );
        let GateOutcome::Refuse(message) = decide(
            GateKind::Quarantine,
            "steno",
            GateMode::Refuse,
            closed.clone(),
            false,
        ) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            message,
            "deploy of steno refused by the quarantine gate: v2 was rolled back at \
             2026-12-01T10:00:00Z (rollout r-1: error rate 20 % against 0 %); deploy the fix under \
             a new version, or override with --override quarantine --reason \"...\" (audited)"
        );
        let GateOutcome::Overridden { action, evidence } = decide(
            GateKind::Quarantine,
            "steno",
            GateMode::Refuse,
            closed,
            true,
        ) else {
            panic!("expected an override");
        };
        assert_eq!(action, "override_quarantine");
        assert_eq!(evidence["rolled_back_by"], "r-1");
    }

    #[test]
    fn a_freeze_refuses_deploys_and_says_who_froze_why_and_how_to_lift_it() {
        assert_eq!(freeze_verdict(None), Verdict::Open);
        let all = freeze_verdict(Some(FreezeInForce {
            scope: "*",
            reason: "incident 42",
            actor: "alice",
            since: "2026-12-03T10:00:00Z",
        }));
        let GateOutcome::Refuse(message) =
            decide(GateKind::Freeze, "steno", GateMode::Refuse, all, false)
        else {
            panic!("expected a refusal");
        };
        assert_eq!(
            message,
            "deploy of steno refused by a freeze: every service is frozen since \
             2026-12-03T10:00:00Z by alice: incident 42; lift it with `opsd unfreeze`, or \
             override with --override freeze --reason \"...\" (audited)"
        );
        let own = freeze_verdict(Some(FreezeInForce {
            scope: "steno",
            reason: "schema work",
            actor: "bob",
            since: "2026-12-03T10:00:00Z",
        }));
        let Verdict::Closed(closure) = own else {
            panic!("expected a closed gate");
        };
        assert_eq!(closure.what_to_do, "lift it with `opsd unfreeze steno`");
        assert_eq!(closure.evidence["frozen_by"], "bob");
    }

    fn evaluation(rule: &str, severity: Severity, state: AlarmState) -> AlarmEvaluation {
        AlarmEvaluation {
            rule: rule.into(),
            metric: crate::core::alarms::AlarmMetric::ErrorRate,
            comparison: crate::core::alarms::Comparison::GreaterThan,
            state,
            value: Some(0.2),
            threshold: 0.05,
            periods: Vec::new(),
            severity,
            rollback: true,
            reason: "error_rate 20 % > 5 %".into(),
        }
    }

    #[test]
    fn only_a_critical_alarm_in_alarm_closes_the_alarm_gate() {
        let quiet = [
            evaluation("slow", Severity::Warning, AlarmState::Alarm),
            evaluation("errors", Severity::Critical, AlarmState::Ok),
            evaluation("p99", Severity::Critical, AlarmState::InsufficientData),
        ];
        assert_eq!(alarm_verdict("steno@v1", &quiet, &[]), Verdict::Open);
        let not_rolling_back = ExternalAlarm {
            name: "opsd-steno-throttles".into(),
            state: "ALARM".into(),
            reason: "threshold crossed".into(),
            rolls_back: false,
        };
        assert_eq!(
            alarm_verdict("steno@v1", &quiet, std::slice::from_ref(&not_rolling_back)),
            Verdict::Open
        );
        let firing = [evaluation("errors", Severity::Critical, AlarmState::Alarm)];
        let GateOutcome::Refuse(message) = decide(
            GateKind::Alarm,
            "steno",
            GateMode::Refuse,
            alarm_verdict("steno@v1", &firing, &[]),
            false,
        ) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            message,
            "deploy of steno refused by the alarm gate: critical alarm in ALARM on steno@v1: \
             errors (error_rate 20 % > 5 %); wait until it recovers; if this release is the fix \
             for it, say so, or override with --override alarm --reason \"...\" (audited)"
        );
        let cloud = ExternalAlarm {
            rolls_back: true,
            ..not_rolling_back
        };
        assert!(matches!(
            alarm_verdict("steno@7", &[], &[cloud]),
            Verdict::Closed(_)
        ));
    }

    #[test]
    fn outside_a_window_a_deploy_is_refused_or_queued_naming_the_next_opening() {
        use crate::core::window::ClosedWindow;
        assert_eq!(
            window_verdict(&WindowState::Open { closes_at_ms: None }),
            Verdict::Open
        );
        let outside = window_verdict(&WindowState::Closed(ClosedWindow {
            reason: "outside every deploy window (weeknights: 0 2 * * TUE-THU for 2h, UTC)".into(),
            opens_at_ms: Some(1_796_695_200_000),
            opens: "opens Tue 2026-12-08 02:00 UTC".into(),
        }));
        let GateOutcome::Refuse(message) = decide(
            GateKind::Window,
            "steno",
            GateMode::Refuse,
            outside.clone(),
            false,
        ) else {
            panic!("expected a refusal");
        };
        assert_eq!(
            message,
            "deploy of steno refused by the deploy window gate: outside every deploy window \
             (weeknights: 0 2 * * TUE-THU for 2h, UTC); the next window opens Tue 2026-12-08 02:00 \
             UTC; deploy then, or override with --override window --reason \"...\" (audited)"
        );
        assert_eq!(
            decide(
                GateKind::Window,
                "steno",
                GateMode::Hold,
                outside.clone(),
                false
            ),
            GateOutcome::Hold(
                "window gate: outside every deploy window (weeknights: 0 2 * * TUE-THU for 2h, \
                 UTC); the next window opens Tue 2026-12-08 02:00 UTC"
                    .into()
            )
        );
        let GateOutcome::Overridden { action, evidence } =
            decide(GateKind::Window, "steno", GateMode::Refuse, outside, true)
        else {
            panic!("expected an override");
        };
        assert_eq!(action, "override_deploy_window");
        assert_eq!(evidence["opens_at_ms"], 1_796_695_200_000_i64);
        assert_eq!(GateKind::from_override("window"), Ok(GateKind::Window));
    }

    #[test]
    fn overrides_name_a_gate() {
        assert_eq!(GateKind::from_override("budget"), Ok(GateKind::Budget));
        assert_eq!(
            GateKind::from_override("quarantine"),
            Ok(GateKind::Quarantine)
        );
        assert_eq!(
            GateKind::from_override("everything").unwrap_err(),
            "--override \"everything\" is not a gate; use freeze, window, quarantine, alarm, budget, \
             drill, snapshot"
        );
    }
}
