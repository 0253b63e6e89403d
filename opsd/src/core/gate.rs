//! Deploy gates as data: each gate (budget, drill, pre-deployment snapshot) reports a [`Verdict`],
//! and [`decide`] turns it, the gate's mode and the operator's overrides into one
//! [`GateOutcome`] — pass, overridden (to audit), hold, or refuse with a message that says what
//! to do. One decision for every gate, so refusals, overrides and their audit read the same.

use serde::Serialize;

use super::drill::GateMode;

/// The gates a deploy passes, in the order they are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateKind {
    /// The newest cost check's forecast against the budgets (R-COST-4).
    Budget,
    /// The newest DR drill of the service's database (R-GATE-1, R-GATE-2).
    Drill,
    /// The pre-deployment snapshot of the service's database (R-DR-4, R-GATE-4).
    Snapshot,
}

impl GateKind {
    /// Every gate, in evaluation order: the cheap checks first, the snapshot (which writes) last.
    pub const ALL: [GateKind; 3] = [GateKind::Budget, GateKind::Drill, GateKind::Snapshot];

    /// The gate's name, as `--override NAME` spells it.
    pub fn name(self) -> &'static str {
        match self {
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
                format!("--override {name:?} is not a gate; use drill, snapshot or budget")
            })
    }

    /// The audit log's action for an override of this gate.
    pub fn override_action(self) -> &'static str {
        match self {
            GateKind::Budget => "override_budget_gate",
            GateKind::Drill => "override_drill_gate",
            GateKind::Snapshot => "override_pre_deploy_snapshot",
        }
    }

    /// How a refusal by this gate reads after "deploy of SERVICE".
    fn refusal(self) -> &'static str {
        match self {
            GateKind::Budget => "refused by the budget gate",
            GateKind::Drill => "refused by the drill gate",
            GateKind::Snapshot => "stopped",
        }
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
    fn overrides_name_a_gate() {
        assert_eq!(GateKind::from_override("budget"), Ok(GateKind::Budget));
        assert_eq!(
            GateKind::from_override("everything").unwrap_err(),
            "--override \"everything\" is not a gate; use drill, snapshot or budget"
        );
    }
}
