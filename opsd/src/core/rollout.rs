//! The rollout state machine: `step(state, observation, policy) -> (state, actions)`.
//!
//! It is a pure function of data: no clock reads (time comes in the observation), no I/O, no
//! `.await`. The reconciler feeds it what the platforms report, executes the actions it returns,
//! persists the new state, and makes the platform's traffic split match [`desired_split`] on every
//! tick. Every verdict that changes something is returned as a [`Decision`] carrying its evidence.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alarms::{
    evaluate_alarm, AlarmEvaluation, AlarmMetric, AlarmRule, AlarmState, ExternalAlarm,
};
use super::analysis::{compare, AnalysisPolicy, Comparison, Verdict};
use super::approval::{Approval, ApprovalTimeout, ApprovalWait};
use super::cost::release_cost::{
    compare_cost_per_request, CostPerRequestComparison, CostPerRequestPolicy,
};
use super::duration::format_duration;
use super::plan::RolloutPlan;
use super::rollout_window::{start_when_the_window_opens, wait_for_the_window};
use super::traffic::{SecondSample, TrafficSample};
use super::watch::ReferenceTraffic;
use crate::core::release::{HealthStatus, ReleaseSpec, TrafficSplit};

/// What to do when a step's bake ends without enough evidence either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InconclusiveAction {
    /// Keep the current weight and wait for an operator (resume re-bakes the step).
    Hold,
    /// Treat missing evidence as failure.
    RollBack,
}

/// How rollouts are judged.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutPolicy {
    pub analysis: AnalysisPolicy,
    /// Alarm rules; those with `rollback: true` roll the canary back when in ALARM.
    pub alarms: Vec<AlarmRule>,
    /// Consecutive failed health probes of the canary that roll it back (3, R-ALARM-8 in
    /// docs/requirements.md).
    pub health_failures_to_roll_back: u32,
    pub on_inconclusive: InconclusiveAction,
    /// The optional cost-per-request check at the end of each bake (local platform only).
    #[serde(default)]
    pub cost_per_request: Option<CostPerRequestPolicy>,
}

impl Default for RolloutPolicy {
    fn default() -> Self {
        RolloutPolicy {
            analysis: AnalysisPolicy::default(),
            alarms: Vec::new(),
            health_failures_to_roll_back: 3,
            on_inconclusive: InconclusiveAction::Hold,
            cost_per_request: None,
        }
    }
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The canary release is being started (or a deploy queued outside its deploy windows waits
    /// for one to open before it starts); no traffic yet.
    Starting,
    /// The canary takes the current step's weight while its bake runs.
    Baking,
    /// An operator paused the rollout; the weight is held.
    Paused,
    /// The bake ended inconclusive and policy says hold; the weight is held for an operator.
    Held,
    /// Terminal: the canary is the new stable release.
    Promoted,
    /// Terminal: the analysis rolled the canary back.
    RolledBack,
    /// Terminal: an operator aborted; traffic is back on the stable release.
    Aborted,
    /// Terminal: the canary could not be started; traffic never left the stable release.
    Failed,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Phase::Promoted | Phase::RolledBack | Phase::Aborted | Phase::Failed
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Starting => "starting",
            Phase::Baking => "baking",
            Phase::Paused => "paused",
            Phase::Held => "held",
            Phase::Promoted => "promoted",
            Phase::RolledBack => "rolled_back",
            Phase::Aborted => "aborted",
            Phase::Failed => "failed",
        }
    }

    /// The exit code of `opsd deploy --wait` and `opsd gate` once the rollout is here (R-OPS-1 in
    /// docs/requirements.md): 0 promoted, 2 rolled back, aborted or failed, 3 paused or held for
    /// a person; `None` while it still moves on its own.
    pub fn exit_code(self) -> Option<u8> {
        match self {
            Phase::Promoted => Some(0),
            Phase::RolledBack | Phase::Aborted | Phase::Failed => Some(2),
            Phase::Paused | Phase::Held => Some(3),
            Phase::Starting | Phase::Baking => None,
        }
    }
}

/// A smoke check's progress at the current step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum CheckState {
    Pending,
    Passed,
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    pub state: CheckState,
}

/// Everything about one rollout; persisted as JSON after every step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RolloutState {
    pub id: String,
    pub service: String,
    pub stable: ReleaseSpec,
    pub canary: ReleaseSpec,
    pub plan: RolloutPlan,
    pub phase: Phase,
    pub step_index: usize,
    /// When the current step's weight took effect (the bake's start), ms since the epoch.
    pub step_started_at_ms: Option<i64>,
    /// Analysis looks taken during the current step.
    pub looks: u32,
    pub consecutive_health_failures: u32,
    pub checks: Vec<CheckStatus>,
    pub created_at_ms: i64,
    /// Since when the canary has taken traffic without interruption (reset after an opsd restart,
    /// whose new router has no earlier counts); alarm windows longer than that are not judged.
    #[serde(default)]
    pub traffic_started_at_ms: Option<i64>,
    pub finished_at_ms: Option<i64>,
    /// The latest analysis, shown by `status` even when it changed nothing.
    pub last_comparison: Option<Comparison>,
    pub last_summary: String,
    /// Set while a rollout waits before its canary starts because a gate (e.g. a stale DR drill)
    /// was closed in hold mode; an operator's resume clears it and the canary starts.
    #[serde(default)]
    pub gate_hold: Option<String>,
    /// Set while the rollout is held because the canary's cost per request reached the limit.
    #[serde(default)]
    pub cost_hold: bool,
    /// An operator resumed over a cost hold: the cost check is not applied again.
    #[serde(default)]
    pub cost_accepted: bool,
    /// The previous release's traffic before the rollout, recorded when it was created: what the
    /// watch at 100 % compares the new release with (no live baseline is left there).
    #[serde(default)]
    pub reference: Option<ReferenceTraffic>,
    /// Set while the rollout waits for people's approval before its next step (R-GATE-8).
    #[serde(default)]
    pub approval: Option<ApprovalWait>,
    /// Set while the rollout waits for its deploy window (R-GATE-6): queued before its canary
    /// starts, or at its current weight after a step's bake passed. Says when the window opens.
    #[serde(default)]
    pub waiting_for_window: Option<String>,
    /// An operator overrode the deploy window (at the deploy, or by resuming a waiting rollout):
    /// its steps advance outside windows too.
    #[serde(default)]
    pub window_overridden: bool,
}

/// What the platforms and the operator reported since the previous step.
#[derive(Debug, Clone, Default)]
pub struct Observation {
    pub now_ms: i64,
    pub canary_readiness: Readiness,
    /// Canary and baseline traffic since the current step's bake began.
    pub canary_traffic: TrafficSample,
    pub baseline_traffic: TrafficSample,
    /// The canary's recent per-second traffic, for alarm rules.
    pub canary_series: Vec<SecondSample>,
    /// This tick's health probe of the canary, when one was taken.
    pub canary_health: Option<HealthStatus>,
    /// Alarms the platform evaluates itself (CloudWatch), as last read.
    pub external_alarms: Vec<ExternalAlarm>,
    /// Set when the platform's traffic routing was changed by someone else than opsd: the
    /// rollout holds rather than fight that change.
    pub traffic_drift: Option<String>,
    /// Smoke checks that finished since the previous step.
    pub check_results: Vec<(String, CheckState)>,
    pub commands: Vec<OperatorCommand>,
    /// Approvals given since the previous step (audited where they were given).
    pub approvals: Vec<Approval>,
    /// Whether the service's deploy windows are open now (open when it has none).
    pub deploy_window: super::window::WindowState,
}

/// Whether the canary release is up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Readiness {
    #[default]
    Pending,
    Ready,
    Failed(String),
}

/// What an operator asked for (through the API or CLI; audited there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperatorCommand {
    Pause,
    Resume,
    Promote,
    Abort,
}

/// The verdict of one decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionKind {
    /// The canary is ready and takes its first weight.
    Start,
    /// The bake passed; the next step's weight is applied.
    Advance,
    Promote,
    RollBack,
    Hold,
    Pause,
    Resume,
    Abort,
    /// The canary could not be started.
    Fail,
    /// A step passed and the next one waits for people's approval.
    AwaitApproval,
    /// A step's bake passed outside the deploy windows: the weight is kept until one opens.
    Wait,
}

impl DecisionKind {
    /// The stored name of the decision (as serialized).
    pub fn as_str(self) -> &'static str {
        match self {
            DecisionKind::Start => "start",
            DecisionKind::Advance => "advance",
            DecisionKind::Promote => "promote",
            DecisionKind::RollBack => "roll_back",
            DecisionKind::Hold => "hold",
            DecisionKind::Pause => "pause",
            DecisionKind::Resume => "resume",
            DecisionKind::Abort => "abort",
            DecisionKind::Fail => "fail",
            DecisionKind::AwaitApproval => "await_approval",
            DecisionKind::Wait => "wait",
        }
    }
}

/// Why something happened, with the numbers that made it happen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Decision {
    pub at_ms: i64,
    pub kind: DecisionKind,
    pub step_index: usize,
    pub canary_weight_percent: u8,
    pub summary: String,
    pub evidence: Evidence,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Evidence {
    pub comparison: Option<Comparison>,
    pub alarms: Vec<AlarmEvaluation>,
    pub consecutive_health_failures: u32,
    pub health_detail: Option<String>,
    pub checks: Vec<CheckStatus>,
    pub bake_elapsed_ms: Option<i64>,
    pub bake_required_ms: Option<i64>,
    pub operator_command: Option<OperatorCommand>,
    /// The approvals a step waited for, when they moved the rollout on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
    /// Platform-evaluated alarms seen when the decision was taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_alarms: Vec<ExternalAlarm>,
    /// The cost-per-request check, when it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost_per_request: Option<CostPerRequestComparison>,
    /// During the watch at 100 %: the previous release's recorded traffic the comparison used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<ReferenceTraffic>,
}

/// Side effects the reconciler performs for a step (traffic itself follows [`desired_split`]).
#[derive(Debug, Clone)]
pub enum Action {
    /// Store the decision and show it on the timeline.
    Record(Box<Decision>),
    /// Run a named smoke check against the canary and report its result in a later observation.
    RunCheck { name: String },
}

impl RolloutState {
    /// A new rollout of `canary` over `stable` with `plan`, created at `now_ms`.
    pub fn new(
        id: String,
        stable: ReleaseSpec,
        canary: ReleaseSpec,
        plan: RolloutPlan,
        now_ms: i64,
    ) -> RolloutState {
        RolloutState {
            id,
            service: canary.service.clone(),
            stable,
            canary,
            plan,
            phase: Phase::Starting,
            step_index: 0,
            step_started_at_ms: None,
            looks: 0,
            consecutive_health_failures: 0,
            checks: Vec::new(),
            created_at_ms: now_ms,
            traffic_started_at_ms: None,
            finished_at_ms: None,
            last_comparison: None,
            last_summary: "starting the canary release".to_string(),
            gate_hold: None,
            cost_hold: false,
            cost_accepted: false,
            reference: None,
            approval: None,
            waiting_for_window: None,
            window_overridden: false,
        }
    }

    /// Whether the rollout is in its watch: the new release takes all traffic and the previous
    /// one stays warm until the watch ends clean.
    pub fn is_watching(&self) -> bool {
        !self.phase.is_terminal()
            && self.phase != Phase::Starting
            && self.canary_weight_percent() == 100
    }

    /// A new rollout queued outside its deploy windows: no canary runs and no traffic moves
    /// until the window opens (`opens`, e.g. `opens Tue 2026-12-08 02:00 UTC`) or an operator
    /// resumes it (audited); then the canary starts.
    pub fn queued_for_window(mut self, reason: String, opens: String) -> RolloutState {
        self.last_summary = format!(
            "queued for the deploy window ({reason}); resume to start now (audited) or abort"
        );
        self.gate_hold = Some(reason);
        self.waiting_for_window = Some(format!("waiting for the deploy window: {opens}"));
        self
    }

    /// A new rollout held before its canary starts because a gate is closed: no canary runs and
    /// no traffic moves until an operator resumes it (audited) or aborts it.
    pub fn held_at_gate(mut self, reason: String) -> RolloutState {
        self.phase = Phase::Held;
        self.last_summary =
            format!("held before start: {reason}; resume to override (audited) or abort");
        self.gate_hold = Some(reason);
        self
    }

    /// The canary's weight the current phase calls for.
    pub fn canary_weight_percent(&self) -> u8 {
        if self.gate_hold.is_some() {
            return 0;
        }
        match self.phase {
            Phase::Starting | Phase::RolledBack | Phase::Aborted | Phase::Failed => 0,
            Phase::Promoted => 100,
            Phase::Baking | Phase::Paused | Phase::Held => self
                .plan
                .steps
                .get(self.step_index)
                .map(|step| step.canary_weight_percent)
                .unwrap_or(0),
        }
    }

    /// The release that ends up stable once the rollout is terminal.
    pub fn winner(&self) -> Option<&ReleaseSpec> {
        match self.phase {
            Phase::Promoted => Some(&self.canary),
            Phase::RolledBack | Phase::Aborted | Phase::Failed => Some(&self.stable),
            _ => None,
        }
    }

    fn bake_required(&self) -> Duration {
        self.plan
            .steps
            .get(self.step_index)
            .map(|step| step.bake)
            .unwrap_or_default()
    }
}

/// The traffic split a rollout in this state needs. Level-triggered: the reconciler applies it on
/// every tick, so a crash between deciding and shifting is repaired on the next tick.
pub fn desired_split(state: &RolloutState) -> TrafficSplit {
    let stable_id = state.stable.release_id();
    let canary_id = state.canary.release_id();
    match state.canary_weight_percent() {
        0 => TrafficSplit::all_to(&stable_id),
        100 => TrafficSplit::all_to(&canary_id),
        weight => TrafficSplit {
            stable: stable_id,
            canary: Some(canary_id),
            canary_weight_percent: weight,
        },
    }
}

/// After opsd restarted, the canary was started again: the traffic seen before the restart is gone
/// with the old router, so the current step bakes again from `now_ms` on fresh evidence.
pub fn rebake_after_restart(state: &RolloutState, now_ms: i64) -> (RolloutState, Vec<Action>) {
    let mut next = state.clone();
    let mut actions = Vec::new();
    if matches!(next.phase, Phase::Baking | Phase::Paused | Phase::Held) {
        next.traffic_started_at_ms = Some(now_ms);
    }
    if matches!(next.phase, Phase::Baking) {
        let index = next.step_index;
        begin_step(&mut next, index, now_ms, &mut actions);
        let summary = format!(
            "opsd restarted; the canary runs again and the {} % step bakes again on fresh traffic",
            next.canary_weight_percent()
        );
        record(
            &mut next,
            DecisionKind::Resume,
            now_ms,
            summary,
            Evidence::default(),
            &mut actions,
        );
    }
    (next, actions)
}

/// One step of the state machine.
pub fn step(
    state: &RolloutState,
    observation: &Observation,
    policy: &RolloutPolicy,
) -> (RolloutState, Vec<Action>) {
    let mut next = state.clone();
    let mut actions = Vec::new();
    if state.phase.is_terminal() {
        return (next, actions);
    }
    let now = observation.now_ms;

    // Operator commands come first: they are explicit and audited.
    for command in &observation.commands {
        if next.phase.is_terminal() {
            break;
        }
        apply_command(&mut next, *command, now, &mut actions);
    }
    if next.phase.is_terminal() {
        return (next, actions);
    }
    absorb_approvals(&mut next, observation, &mut actions);
    start_when_the_window_opens(&mut next, observation, &mut actions);

    match next.phase {
        // A rollout held at a gate starts only once the hold is lifted.
        Phase::Starting if next.gate_hold.is_none() => {
            step_starting(&mut next, observation, &mut actions)
        }
        Phase::Baking => step_baking(&mut next, observation, policy, &mut actions),
        Phase::Paused | Phase::Held => {
            // The weight is held; health still counts so an unhealthy canary is not kept.
            track_health(&mut next, observation);
            if next.consecutive_health_failures >= policy.health_failures_to_roll_back {
                let summary = health_summary(&next, observation, policy);
                let evidence = health_evidence(&next, observation);
                roll_back(&mut next, now, summary, evidence, &mut actions);
            } else {
                roll_back_on_external_alarm(&mut next, observation, &mut actions);
            }
        }
        _ => {}
    }
    (next, actions)
}

fn apply_command(
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

fn step_starting(state: &mut RolloutState, observation: &Observation, actions: &mut Vec<Action>) {
    let now = observation.now_ms;
    match &observation.canary_readiness {
        Readiness::Pending => {}
        Readiness::Failed(reason) => {
            let summary = format!(
                "the canary {} could not be started: {reason}",
                state.canary.version
            );
            let evidence = Evidence {
                health_detail: Some(reason.clone()),
                ..Evidence::default()
            };
            finish(
                state,
                Phase::Failed,
                DecisionKind::Fail,
                now,
                summary,
                evidence,
                actions,
            );
        }
        Readiness::Ready => {
            if state
                .plan
                .steps
                .first()
                .map(|step| step.canary_weight_percent)
                == Some(100)
                && state.plan.watch().is_zero()
            {
                finish(
                    state,
                    Phase::Promoted,
                    DecisionKind::Promote,
                    now,
                    "the plan shifts all traffic at once; the canary is ready and takes 100 %"
                        .into(),
                    Evidence::default(),
                    actions,
                );
                return;
            }
            state.phase = Phase::Baking;
            state.traffic_started_at_ms = Some(now);
            begin_step(state, 0, now, actions);
            let summary = if state.is_watching() {
                format!(
                    "the new release {} is ready and takes all traffic at once; watched for {} \
                     before promotion while {} stays warm",
                    state.canary.version,
                    format_duration(state.plan.watch()),
                    state.stable.version
                )
            } else {
                format!(
                    "the canary {} is ready and takes {} % of traffic",
                    state.canary.version,
                    state.canary_weight_percent()
                )
            };
            record(
                state,
                DecisionKind::Start,
                now,
                summary,
                Evidence::default(),
                actions,
            );
        }
    }
}

fn begin_step(state: &mut RolloutState, index: usize, now: i64, actions: &mut Vec<Action>) {
    state.step_index = index;
    state.step_started_at_ms = Some(now);
    state.looks = 0;
    state.last_comparison = None;
    state.checks = state
        .plan
        .steps
        .get(index)
        .map(|step| {
            step.checks
                .iter()
                .map(|name| CheckStatus {
                    name: name.clone(),
                    state: CheckState::Pending,
                })
                .collect()
        })
        .unwrap_or_default();
    for check in &state.checks {
        actions.push(Action::RunCheck {
            name: check.name.clone(),
        });
    }
}

fn track_health(state: &mut RolloutState, observation: &Observation) {
    match &observation.canary_health {
        Some(HealthStatus::Healthy) => state.consecutive_health_failures = 0,
        Some(HealthStatus::Unhealthy(_)) => state.consecutive_health_failures += 1,
        None => {}
    }
}

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
fn roll_back_on_external_alarm(
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

fn step_baking(
    state: &mut RolloutState,
    observation: &Observation,
    policy: &RolloutPolicy,
    actions: &mut Vec<Action>,
) {
    let now = observation.now_ms;

    // 1. Health checks: N consecutive failures roll back.
    track_health(state, observation);
    if state.consecutive_health_failures >= policy.health_failures_to_roll_back {
        let summary = health_summary(state, observation, policy);
        let evidence = health_evidence(state, observation);
        roll_back(state, now, summary, evidence, actions);
        return;
    }

    // 1a. Someone else changed the traffic routing: hold, do not fight it.
    if let Some(detail) = &observation.traffic_drift {
        state.phase = Phase::Held;
        record(
            state,
            DecisionKind::Hold,
            now,
            format!(
                "traffic drift: {detail}; held at {} % until an operator restores the routing and resumes or aborts",
                state.canary_weight_percent()
            ),
            Evidence::default(),
            actions,
        );
        return;
    }

    // 1b. Platform-evaluated alarms marked as rollback triggers.
    if roll_back_on_external_alarm(state, observation, actions) {
        return;
    }

    // 2. Smoke checks of this step.
    for (name, result) in &observation.check_results {
        if let Some(check) = state.checks.iter_mut().find(|check| &check.name == name) {
            check.state = result.clone();
        }
    }
    if let Some(failed) = state
        .checks
        .iter()
        .find(|check| matches!(check.state, CheckState::Failed(_)))
        .cloned()
    {
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
        roll_back(state, now, summary, evidence, actions);
        return;
    }

    // 3. Alarm rules that trigger rollback.
    let now_second = now.div_euclid(1000);
    let observed_ms = now - state.traffic_started_at_ms.unwrap_or(now);
    let alarms: Vec<AlarmEvaluation> = policy
        .alarms
        .iter()
        .map(|rule| {
            let mut evaluation = evaluate_alarm(
                rule,
                &observation.canary_series,
                state.consecutive_health_failures,
                now_second,
            );
            // A window the canary has not filled yet would judge a few requests as if they were
            // a full period; such a rule waits (the canary analysis covers the early seconds).
            let window_ms = (rule.period.as_millis() as i64)
                .saturating_mul(i64::from(rule.evaluation_periods.max(1)));
            let needs_traffic_history = rule.metric != AlarmMetric::HealthCheckFailures;
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
        .collect();
    if let Some(firing) = alarms
        .iter()
        .find(|alarm| alarm.rollback && alarm.state == AlarmState::Alarm)
    {
        let summary = format!(
            "alarm {} is in ALARM ({}); rolled back",
            firing.rule, firing.reason
        );
        let evidence = Evidence {
            alarms: alarms.clone(),
            ..Evidence::default()
        };
        roll_back(state, now, summary, evidence, actions);
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
    let comparison = baseline.map(|baseline| {
        compare(
            &observation.canary_traffic,
            baseline,
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
        let reasons = comparison
            .as_ref()
            .map(|comparison| comparison.reasons.join("; "))
            .unwrap_or_default();
        let summary = if watching {
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
        };
        roll_back(state, now, summary, evidence, actions);
        return;
    }
    state.last_summary = match (&comparison, watching) {
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
    };

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
        Verdict::Pass => {
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
                    let from = state.canary_weight_percent();
                    begin_step(state, next_index, now, actions);
                    let summary = if weight == 100 {
                        format!(
                            "the {from} % step passed its bake; {} now takes all traffic and is \
                             watched for {} before promotion while {} stays warm",
                            state.canary.version,
                            format_duration(bake),
                            state.stable.version
                        )
                    } else {
                        format!(
                            "the {from} % step passed its bake; the canary now takes {weight} %"
                        )
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
                _ => {
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
            }
        }
        Verdict::Inconclusive => {
            let reasons = comparison
                .as_ref()
                .map(|comparison| comparison.reasons.join("; "))
                .unwrap_or_default();
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
        Verdict::Fail => {}
    }
}

/// Counts the approvals that came in; once enough different people approved a rollout that
/// waits (baking, or held after the wait timed out), its next step begins.
fn absorb_approvals(
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
    let window_open = state.window_overridden
        || !matches!(
            observation.deploy_window,
            super::window::WindowState::Closed(_)
        );
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
fn wait_for_approval(
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
        super::duration::format_duration(rule.timeout)
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

fn verdict_word(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Pass => "passing",
        Verdict::Fail => "failing",
        Verdict::Inconclusive => "inconclusive so far",
    }
}

pub(super) fn record(
    state: &mut RolloutState,
    kind: DecisionKind,
    now: i64,
    summary: String,
    evidence: Evidence,
    actions: &mut Vec<Action>,
) {
    state.last_summary = summary.clone();
    actions.push(Action::Record(Box::new(Decision {
        at_ms: now,
        kind,
        step_index: state.step_index,
        canary_weight_percent: state.canary_weight_percent(),
        summary,
        evidence,
    })));
}

fn roll_back(
    state: &mut RolloutState,
    now: i64,
    summary: String,
    evidence: Evidence,
    actions: &mut Vec<Action>,
) {
    finish(
        state,
        Phase::RolledBack,
        DecisionKind::RollBack,
        now,
        summary,
        evidence,
        actions,
    );
}

fn finish(
    state: &mut RolloutState,
    phase: Phase,
    kind: DecisionKind,
    now: i64,
    summary: String,
    evidence: Evidence,
    actions: &mut Vec<Action>,
) {
    state.phase = phase;
    state.finished_at_ms = Some(now);
    record(state, kind, now, summary, evidence, actions);
}

#[cfg(test)]
mod tests {
    //! Traces of observations and the decisions they lead to.

    use super::*;
    use crate::core::alarms::parse_alarm_file;
    use crate::core::plan::{parse_plan, preset};
    use crate::core::window::WindowState;
    use std::collections::BTreeMap;

    fn release(version: &str) -> ReleaseSpec {
        ReleaseSpec {
            service: "steno".into(),
            version: version.into(),
            env: BTreeMap::new(),
            env_from: Default::default(),
        }
    }

    /// 10 % for 10 s, 50 % for 10 s, then 100 %.
    fn fast_plan() -> RolloutPlan {
        parse_plan(
            "fast.yaml",
            "name: fast\nsteps:\n  - weight: 10\n    bake: 10s\n  - weight: 50\n    bake: 10s\n  - weight: 100\n",
        )
        .unwrap()
    }

    fn policy() -> RolloutPolicy {
        RolloutPolicy {
            analysis: AnalysisPolicy {
                min_canary_requests: 50,
                min_baseline_requests: 50,
                ..AnalysisPolicy::default()
            },
            ..RolloutPolicy::default()
        }
    }

    /// Deterministic traffic at `rps` per second: every `error_every`-th request of a side fails
    /// (0: never), each request takes `latency_ms`.
    struct Side {
        error_every: u64,
        latency_ms: u64,
        /// Response bytes of each request.
        bytes_per_request: u64,
        total: TrafficSample,
        count: u64,
    }

    impl Side {
        fn new(error_every: u64, latency_ms: u64) -> Side {
            Side {
                error_every,
                latency_ms,
                bytes_per_request: 0,
                total: TrafficSample::default(),
                count: 0,
            }
        }

        fn serve(&mut self, requests: u64) -> TrafficSample {
            let mut second = TrafficSample::default();
            for _ in 0..requests {
                self.count += 1;
                let is_error = self.error_every > 0 && self.count % self.error_every == 0;
                second.record(self.latency_ms, is_error);
                second.bytes_out += self.bytes_per_request;
            }
            self.total.add(&second);
            second
        }
    }

    /// Drives a rollout one second at a time at 100 requests per second.
    struct Trace {
        state: RolloutState,
        policy: RolloutPolicy,
        now_ms: i64,
        canary: Side,
        baseline: Side,
        series: Vec<SecondSample>,
        decisions: Vec<Decision>,
        checks_run: Vec<String>,
        /// The deploy window every observation reports.
        window: WindowState,
    }

    impl Trace {
        fn new(plan: RolloutPlan, canary: Side) -> Trace {
            let start = 1_700_000_000_000;
            Trace {
                state: RolloutState::new("r1".into(), release("v1"), release("v2"), plan, start),
                policy: policy(),
                now_ms: start,
                canary,
                baseline: Side::new(500, 5),
                series: Vec::new(),
                decisions: Vec::new(),
                checks_run: Vec::new(),
                window: WindowState::default(),
            }
        }

        fn apply(&mut self, observation: Observation) {
            let (next, actions) = step(&self.state, &observation, &self.policy);
            self.state = next;
            for action in actions {
                match action {
                    Action::Record(decision) => self.decisions.push(*decision),
                    Action::RunCheck { name } => self.checks_run.push(name),
                }
            }
        }

        fn ready(&mut self) {
            self.apply(Observation {
                now_ms: self.now_ms,
                canary_readiness: Readiness::Ready,
                ..Observation::default()
            });
            self.canary.total = TrafficSample::default();
            self.baseline.total = TrafficSample::default();
        }

        /// One second of traffic at the current weight, then one step.
        fn second(&mut self, health: Option<HealthStatus>, commands: Vec<OperatorCommand>) {
            let step_before = (self.state.step_index, self.state.step_started_at_ms);
            let weight = u64::from(self.state.canary_weight_percent());
            let canary_second = self.canary.serve(weight);
            self.baseline.serve(100 - weight);
            self.now_ms += 1000;
            self.series.push(SecondSample {
                second: self.now_ms / 1000 - 1,
                sample: canary_second,
            });
            self.apply(Observation {
                now_ms: self.now_ms,
                canary_readiness: Readiness::Ready,
                canary_traffic: self.canary.total,
                baseline_traffic: self.baseline.total,
                canary_series: self.series.clone(),
                canary_health: health,
                commands,
                deploy_window: self.window.clone(),
                ..Observation::default()
            });
            if (self.state.step_index, self.state.step_started_at_ms) != step_before {
                // A new step's window starts empty, as the reconciler reads it.
                self.canary.total = TrafficSample::default();
                self.baseline.total = TrafficSample::default();
            }
        }

        fn run_until_terminal(&mut self, max_seconds: u32) {
            for _ in 0..max_seconds {
                if self.state.phase.is_terminal() {
                    return;
                }
                self.second(Some(HealthStatus::Healthy), Vec::new());
            }
        }

        fn kinds(&self) -> Vec<DecisionKind> {
            self.decisions
                .iter()
                .map(|decision| decision.kind)
                .collect()
        }
    }

    #[test]
    fn a_healthy_canary_is_promoted_through_every_step() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        assert_eq!(trace.state.phase, Phase::Starting);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit::all_to("steno@v1")
        );
        trace.ready();
        assert_eq!(trace.state.canary_weight_percent(), 10);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit {
                stable: "steno@v1".into(),
                canary: Some("steno@v2".into()),
                canary_weight_percent: 10
            }
        );
        trace.run_until_terminal(60);
        assert_eq!(trace.state.phase, Phase::Promoted);
        assert_eq!(
            trace.kinds(),
            vec![
                DecisionKind::Start,
                DecisionKind::Advance,
                DecisionKind::Promote
            ]
        );
        let weights: Vec<u8> = trace
            .decisions
            .iter()
            .map(|decision| decision.canary_weight_percent)
            .collect();
        assert_eq!(weights, vec![10, 50, 100]);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit::all_to("steno@v2")
        );
        // Each advance carries the comparison that justified it.
        let advance = &trace.decisions[1];
        let comparison = advance.evidence.comparison.as_ref().unwrap();
        assert_eq!(comparison.verdict, Verdict::Pass);
        assert!(advance.evidence.bake_elapsed_ms.unwrap() >= 10_000);
        assert_eq!(trace.state.winner().unwrap().version, "v2");
    }

    fn cost_check() -> CostPerRequestPolicy {
        CostPerRequestPolicy {
            max_ratio: 2.0,
            min_requests: 50,
            memory_mb: 512,
            prices: crate::core::cost::PriceTable::seed(),
            ai_prices: None,
        }
    }

    #[test]
    fn a_canary_that_doubles_the_cost_of_a_request_is_held_until_an_operator_accepts_it() {
        let mut canary = Side::new(500, 5);
        canary.bytes_per_request = 4 << 20;
        let mut trace = Trace::new(fast_plan(), canary);
        trace.baseline.bytes_per_request = 1 << 20;
        trace.policy.cost_per_request = Some(cost_check());
        trace.ready();
        trace.run_until_terminal(20);
        assert_eq!(
            trace.state.phase,
            Phase::Held,
            "{}",
            trace.state.last_summary
        );
        assert!(trace.state.cost_hold);
        assert_eq!(trace.state.canary_weight_percent(), 10);
        assert_eq!(trace.kinds(), vec![DecisionKind::Start, DecisionKind::Hold]);
        let hold = &trace.decisions[1];
        let cost = hold.evidence.cost_per_request.as_ref().unwrap();
        assert!(cost.exceeded);
        assert!(cost.ratio.unwrap() > 3.0, "{cost:?}");
        assert!(hold.summary.contains("cost more"), "{}", hold.summary);
        assert!(
            hold.summary.contains("resume accepts the cost"),
            "{}",
            hold.summary
        );

        // The operator accepts the cost: the step bakes again and the check is not applied again.
        trace.second(Some(HealthStatus::Healthy), vec![OperatorCommand::Resume]);
        assert!(!trace.state.cost_hold && trace.state.cost_accepted);
        trace.run_until_terminal(60);
        assert_eq!(trace.state.phase, Phase::Promoted);
        assert_eq!(
            trace.kinds(),
            vec![
                DecisionKind::Start,
                DecisionKind::Hold,
                DecisionKind::Resume,
                DecisionKind::Advance,
                DecisionKind::Promote
            ]
        );
    }

    #[test]
    fn a_canary_that_costs_the_same_advances_with_its_cost_as_evidence() {
        let mut canary = Side::new(500, 5);
        canary.bytes_per_request = 1 << 20;
        let mut trace = Trace::new(fast_plan(), canary);
        trace.baseline.bytes_per_request = 1 << 20;
        trace.policy.cost_per_request = Some(cost_check());
        trace.ready();
        trace.run_until_terminal(60);
        assert_eq!(trace.state.phase, Phase::Promoted);
        let cost = trace.decisions[1]
            .evidence
            .cost_per_request
            .as_ref()
            .unwrap();
        assert!(!cost.exceeded);
        assert!((cost.ratio.unwrap() - 1.0).abs() < 1e-9, "{cost:?}");
    }

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
    fn a_canary_with_many_errors_is_rolled_back_within_seconds() {
        let mut trace = Trace::new(fast_plan(), Side::new(5, 5));
        trace.ready();
        trace.run_until_terminal(60);
        assert_eq!(trace.state.phase, Phase::RolledBack);
        let rollback = trace.decisions.last().unwrap();
        assert_eq!(rollback.kind, DecisionKind::RollBack);
        let elapsed = rollback.at_ms - trace.decisions[0].at_ms;
        assert!(elapsed <= 3_000, "rolled back after {elapsed} ms");
        let comparison = rollback.evidence.comparison.as_ref().unwrap();
        assert_eq!(comparison.verdict, Verdict::Fail);
        assert!(comparison.error_test.significant);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit::all_to("steno@v1")
        );
        assert_eq!(trace.state.winner().unwrap().version, "v1");
    }

    #[test]
    fn a_slow_canary_is_rolled_back_on_latency() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 505));
        trace.ready();
        trace.run_until_terminal(60);
        assert_eq!(trace.state.phase, Phase::RolledBack);
        let comparison = trace
            .decisions
            .last()
            .unwrap()
            .evidence
            .comparison
            .clone()
            .unwrap();
        assert!(comparison.latency_test.significant, "{comparison:?}");
        assert!(!comparison.error_test.significant);
        assert!(trace.decisions.last().unwrap().summary.contains("slower"));
    }

    #[test]
    fn too_little_traffic_is_inconclusive_never_a_pass() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.policy.analysis.min_canary_requests = 10_000;
        trace.ready();
        trace.run_until_terminal(30);
        assert_eq!(trace.state.phase, Phase::Held, "held, not promoted");
        assert_eq!(
            trace.state.canary_weight_percent(),
            10,
            "the weight is held"
        );
        let hold = trace.decisions.last().unwrap();
        assert_eq!(hold.kind, DecisionKind::Hold);
        assert_eq!(
            hold.evidence.comparison.as_ref().unwrap().verdict,
            Verdict::Inconclusive
        );

        let mut strict = Trace::new(fast_plan(), Side::new(500, 5));
        strict.policy.analysis.min_canary_requests = 10_000;
        strict.policy.on_inconclusive = InconclusiveAction::RollBack;
        strict.ready();
        strict.run_until_terminal(30);
        assert_eq!(strict.state.phase, Phase::RolledBack);
    }

    #[test]
    fn three_consecutive_health_failures_roll_back_and_a_pass_resets_the_count() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.ready();
        let sick = || Some(HealthStatus::Unhealthy("503".into()));
        trace.second(sick(), Vec::new());
        trace.second(sick(), Vec::new());
        trace.second(Some(HealthStatus::Healthy), Vec::new());
        trace.second(sick(), Vec::new());
        trace.second(sick(), Vec::new());
        assert_eq!(
            trace.state.phase,
            Phase::Baking,
            "two failures in a row are tolerated"
        );
        trace.second(sick(), Vec::new());
        assert_eq!(trace.state.phase, Phase::RolledBack);
        let rollback = trace.decisions.last().unwrap();
        assert_eq!(rollback.evidence.consecutive_health_failures, 3);
        assert!(rollback.summary.contains("3 consecutive health checks"));
    }

    #[test]
    fn operators_pause_resume_promote_and_abort() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.ready();
        trace.second(None, vec![OperatorCommand::Pause]);
        assert_eq!(trace.state.phase, Phase::Paused);
        for _ in 0..30 {
            trace.second(None, Vec::new());
        }
        assert_eq!(
            trace.state.phase,
            Phase::Paused,
            "a paused rollout does not advance"
        );
        assert_eq!(trace.state.canary_weight_percent(), 10);
        trace.second(None, vec![OperatorCommand::Resume]);
        assert_eq!(trace.state.phase, Phase::Baking);
        assert_eq!(
            trace.state.step_started_at_ms,
            Some(trace.now_ms),
            "the step bakes again"
        );
        trace.second(None, vec![OperatorCommand::Abort]);
        assert_eq!(trace.state.phase, Phase::Aborted);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit::all_to("steno@v1")
        );
        assert_eq!(
            trace.kinds(),
            vec![
                DecisionKind::Start,
                DecisionKind::Pause,
                DecisionKind::Resume,
                DecisionKind::Abort
            ]
        );
        // Terminal states ignore everything after.
        trace.second(None, vec![OperatorCommand::Resume]);
        assert_eq!(trace.state.phase, Phase::Aborted);

        let mut promoted = Trace::new(fast_plan(), Side::new(500, 5));
        promoted.ready();
        promoted.second(None, vec![OperatorCommand::Promote]);
        assert_eq!(promoted.state.phase, Phase::Promoted);
        assert_eq!(
            promoted.decisions.last().unwrap().evidence.operator_command,
            Some(OperatorCommand::Promote)
        );
    }

    #[test]
    fn a_rollout_held_at_a_closed_gate_moves_no_traffic_until_resumed() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.state = trace
            .state
            .clone()
            .held_at_gate("drill gate: the newest DR drill of steno failed".into());
        assert_eq!(trace.state.phase, Phase::Held);
        assert_eq!(trace.state.canary_weight_percent(), 0);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit::all_to("steno@v1")
        );
        for _ in 0..5 {
            trace.second(None, Vec::new());
        }
        assert_eq!(
            trace.state.phase,
            Phase::Held,
            "it does not start by itself"
        );
        assert_eq!(trace.state.canary_weight_percent(), 0);
        // The trace's canary answers ready in the same second, so it starts baking at once.
        trace.second(None, vec![OperatorCommand::Resume]);
        assert!(trace.state.gate_hold.is_none());
        assert!(trace
            .decisions
            .iter()
            .any(|decision| decision.summary.contains("over a closed gate")));
        assert_eq!(trace.state.phase, Phase::Baking);
        assert_eq!(trace.state.canary_weight_percent(), 10);
    }

    fn closed_window() -> WindowState {
        WindowState::Closed(crate::core::window::ClosedWindow {
            reason: "outside every deploy window (weeknights: 0 2 * * TUE-THU for 2h, UTC)".into(),
            opens_at_ms: Some(1_700_100_000_000),
            opens: "opens Thu 2023-11-16 02:00 UTC".into(),
        })
    }

    #[test]
    fn a_bake_that_passes_outside_the_window_keeps_its_weight_until_the_window_opens() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.ready();
        trace.window = closed_window();
        for _ in 0..60 {
            trace.second(Some(HealthStatus::Healthy), Vec::new());
        }
        assert_eq!(trace.state.phase, Phase::Baking);
        assert_eq!(trace.state.canary_weight_percent(), 10);
        assert_eq!(
            trace.state.waiting_for_window.as_deref(),
            Some("waiting for the deploy window: opens Thu 2023-11-16 02:00 UTC")
        );
        assert!(
            trace.state.last_summary.starts_with(
                "the 10 % step passed its bake; waiting for the deploy window: opens Thu"
            ),
            "{}",
            trace.state.last_summary
        );
        assert_eq!(
            trace.kinds(),
            vec![DecisionKind::Start, DecisionKind::Wait],
            "one decision when the waiting starts"
        );

        trace.window = WindowState::Open { closes_at_ms: None };
        trace.second(Some(HealthStatus::Healthy), Vec::new());
        assert_eq!(trace.state.waiting_for_window, None);
        assert_eq!(trace.state.canary_weight_percent(), 50);
        assert_eq!(
            trace.kinds(),
            vec![
                DecisionKind::Start,
                DecisionKind::Wait,
                DecisionKind::Resume,
                DecisionKind::Advance
            ]
        );
        trace.run_until_terminal(60);
        assert_eq!(trace.state.phase, Phase::Promoted);
    }

    #[test]
    fn a_rollout_waiting_for_its_window_is_still_rolled_back_at_once() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.ready();
        trace.window = closed_window();
        for _ in 0..15 {
            trace.second(Some(HealthStatus::Healthy), Vec::new());
        }
        assert!(trace.state.waiting_for_window.is_some());
        for _ in 0..3 {
            trace.second(Some(HealthStatus::Unhealthy("503".into())), Vec::new());
        }
        assert_eq!(trace.state.phase, Phase::RolledBack);
        assert_eq!(trace.state.canary_weight_percent(), 0);
    }

    #[test]
    fn an_operator_resume_overrides_the_window_of_a_waiting_rollout() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.ready();
        trace.window = closed_window();
        for _ in 0..15 {
            trace.second(Some(HealthStatus::Healthy), Vec::new());
        }
        assert_eq!(trace.state.canary_weight_percent(), 10);
        trace.second(Some(HealthStatus::Healthy), vec![OperatorCommand::Resume]);
        assert!(trace.state.window_overridden);
        assert_eq!(trace.state.canary_weight_percent(), 50);
        trace.run_until_terminal(60);
        assert_eq!(trace.state.phase, Phase::Promoted, "no more waiting");
    }

    #[test]
    fn a_deploy_queued_for_its_window_starts_when_it_opens_or_when_an_operator_resumes() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.state = trace.state.clone().queued_for_window(
            "window gate: outside every deploy window".into(),
            "opens Thu 2023-11-16 02:00 UTC".into(),
        );
        trace.window = closed_window();
        for _ in 0..5 {
            trace.second(None, Vec::new());
        }
        assert_eq!(trace.state.phase, Phase::Starting);
        assert_eq!(trace.state.phase.exit_code(), None, "it moves on its own");
        assert_eq!(trace.state.canary_weight_percent(), 0);
        assert!(trace.decisions.is_empty());
        trace.window = WindowState::Open { closes_at_ms: None };
        trace.second(None, Vec::new());
        assert_eq!(trace.state.gate_hold, None);
        assert_eq!(trace.state.waiting_for_window, None);
        assert!(!trace.state.window_overridden);
        assert_eq!(
            trace.decisions[0].summary,
            "the deploy window opened; starting the canary"
        );
        // The trace's canary answers ready in the same second, so it starts baking at once.
        assert_eq!(trace.state.phase, Phase::Baking);

        let mut resumed = Trace::new(fast_plan(), Side::new(500, 5));
        resumed.state = resumed
            .state
            .clone()
            .queued_for_window("window gate: closed".into(), "opens later".into());
        resumed.window = closed_window();
        resumed.second(None, vec![OperatorCommand::Resume]);
        assert_eq!(resumed.state.phase, Phase::Baking);
        assert!(resumed.state.window_overridden);
        resumed.run_until_terminal(60);
        assert_eq!(resumed.state.phase, Phase::Promoted);
    }

    #[test]
    fn a_canary_that_cannot_start_fails_without_traffic() {
        let mut trace = Trace::new(fast_plan(), Side::new(500, 5));
        trace.apply(Observation {
            now_ms: trace.now_ms,
            canary_readiness: Readiness::Failed("health answered 503 for 30 s".into()),
            ..Observation::default()
        });
        assert_eq!(trace.state.phase, Phase::Failed);
        assert_eq!(trace.kinds(), vec![DecisionKind::Fail]);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit::all_to("steno@v1")
        );
    }

    #[test]
    fn smoke_checks_gate_their_step() {
        let plan = parse_plan(
            "checked.yaml",
            "name: checked\nsteps:\n  - weight: 10\n    bake: 5s\n    checks: [smoke]\n  - weight: 100\n",
        )
        .unwrap();
        let mut trace = Trace::new(plan.clone(), Side::new(500, 5));
        trace.ready();
        assert_eq!(trace.checks_run, vec!["smoke"]);
        for _ in 0..10 {
            trace.second(None, Vec::new());
        }
        assert_eq!(
            trace.state.phase,
            Phase::Baking,
            "the bake waits for its check"
        );
        trace.apply(Observation {
            now_ms: trace.now_ms,
            canary_traffic: trace.canary.total,
            baseline_traffic: trace.baseline.total,
            check_results: vec![("smoke".into(), CheckState::Passed)],
            ..Observation::default()
        });
        assert_eq!(trace.state.phase, Phase::Promoted);

        let mut failing = Trace::new(plan, Side::new(500, 5));
        failing.ready();
        failing.apply(Observation {
            now_ms: failing.now_ms,
            check_results: vec![(
                "smoke".into(),
                CheckState::Failed("GET /v1/health answered 500".into()),
            )],
            ..Observation::default()
        });
        assert_eq!(failing.state.phase, Phase::RolledBack);
        assert!(failing
            .decisions
            .last()
            .unwrap()
            .summary
            .contains("smoke check smoke failed"));
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

    /// The previous release's recorded traffic: 10 minutes at 100 requests per second with one
    /// error in 500 and 5 ms latencies, like the baseline of the traces.
    fn recorded_reference() -> ReferenceTraffic {
        let mut history = Side::new(500, 5);
        history.serve(60_000);
        crate::core::watch::reference_from_samples("v1", (0, 600), &[history.total])
            .expect("traffic was served")
    }

    fn watched(plan: RolloutPlan, watch_secs: u64, canary: Side) -> Trace {
        let mut trace = Trace::new(plan.with_watch(Duration::from_secs(watch_secs)), canary);
        trace.state.reference = Some(recorded_reference());
        trace
    }

    fn approval_plan(on_timeout: &str) -> RolloutPlan {
        parse_plan(
            "gated.yaml",
            &format!(
                "name: gated\nsteps:\n  - weight: 10\n    bake: 10s\n  - weight: 100\n    approve: {{approvers: 2, timeout: 60s, on_timeout: {on_timeout}}}\n"
            ),
        )
        .unwrap()
    }

    fn approval_by(by: &str, at_ms: i64) -> Approval {
        Approval {
            by: by.into(),
            at_ms,
            reason: None,
        }
    }

    impl Trace {
        /// One second with approvals given.
        fn approve(&mut self, names: &[&str]) {
            let approvals = names
                .iter()
                .map(|name| approval_by(name, self.now_ms))
                .collect();
            let weight = u64::from(self.state.canary_weight_percent());
            self.canary.serve(weight);
            self.baseline.serve(100 - weight);
            self.now_ms += 1000;
            self.apply(Observation {
                now_ms: self.now_ms,
                canary_readiness: Readiness::Ready,
                canary_traffic: self.canary.total,
                baseline_traffic: self.baseline.total,
                canary_series: self.series.clone(),
                approvals,
                ..Observation::default()
            });
        }
    }

    /// R-GATE-8: the step waits for two different people; the same person counts once.
    #[test]
    fn an_approval_step_waits_for_two_different_people() {
        let mut trace = Trace::new(approval_plan("rollback"), Side::new(500, 5));
        trace.ready();
        trace.run_until_terminal(15);
        assert_eq!(trace.state.phase, Phase::Baking);
        assert_eq!(trace.state.canary_weight_percent(), 10, "still at 10 %");
        assert_eq!(*trace.kinds().last().unwrap(), DecisionKind::AwaitApproval);
        assert!(
            trace.decisions.last().unwrap().summary.contains(
                "the 100 % step waits for approval by 2 people within 1m (`opsd approve steno`)"
            ),
            "{}",
            trace.decisions.last().unwrap().summary
        );
        trace.approve(&["alice"]);
        trace.approve(&["alice"]);
        trace.second(Some(HealthStatus::Healthy), Vec::new());
        assert_eq!(trace.state.canary_weight_percent(), 10);
        assert!(
            trace
                .state
                .last_summary
                .contains("1 of 2 approvals (alice)"),
            "{}",
            trace.state.last_summary
        );
        trace.approve(&["bob"]);
        assert_eq!(trace.state.phase, Phase::Promoted);
        let approved = trace
            .decisions
            .iter()
            .find(|decision| decision.summary.starts_with("approved by"))
            .unwrap();
        assert_eq!(
            approved.summary,
            "approved by alice, bob; the canary moves from 10 % to 100 %"
        );
        assert_eq!(approved.evidence.approvals.len(), 2);
    }

    /// R-GATE-8: without enough approvals in time the rollout rolls back, or holds and still
    /// takes approvals.
    #[test]
    fn an_approval_that_does_not_come_in_time_rolls_back_or_holds() {
        let mut rolled = Trace::new(approval_plan("rollback"), Side::new(500, 5));
        rolled.ready();
        rolled.run_until_terminal(15);
        rolled.approve(&["alice"]);
        rolled.run_until_terminal(70);
        assert_eq!(rolled.state.phase, Phase::RolledBack);
        assert_eq!(
            rolled.decisions.last().unwrap().summary,
            "no approval of the 100 % step within 1m (1 of 2 approvals (alice)); rolled back"
        );

        let mut held = Trace::new(approval_plan("hold"), Side::new(500, 5));
        held.ready();
        held.run_until_terminal(15);
        for _ in 0..70 {
            held.second(Some(HealthStatus::Healthy), Vec::new());
        }
        assert_eq!(held.state.phase, Phase::Held);
        assert_eq!(held.state.canary_weight_percent(), 10);
        held.approve(&["alice", "bob"]);
        assert_eq!(held.state.phase, Phase::Promoted);
    }

    /// R-WATCH-1: the last step watches at 100 % before the promotion.
    #[test]
    fn a_healthy_release_is_watched_at_full_traffic_then_promoted() {
        let mut trace = watched(fast_plan(), 30, Side::new(500, 5));
        trace.ready();
        trace.run_until_terminal(20);
        assert_eq!(trace.state.canary_weight_percent(), 100);
        assert!(trace.state.is_watching());
        assert_eq!(trace.state.phase, Phase::Baking);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit::all_to("steno@v2")
        );
        let advance = trace.decisions.last().unwrap();
        assert!(
            advance
                .summary
                .contains("v2 now takes all traffic and is watched for 30s before promotion while v1 stays warm"),
            "{}",
            advance.summary
        );
        trace.run_until_terminal(60);
        assert_eq!(trace.state.phase, Phase::Promoted);
        assert_eq!(
            trace.kinds(),
            vec![
                DecisionKind::Start,
                DecisionKind::Advance,
                DecisionKind::Advance,
                DecisionKind::Promote
            ]
        );
        let promote = trace.decisions.last().unwrap();
        assert!(
            promote
                .summary
                .contains("the watch at 100 % ended clean after 30s"),
            "{}",
            promote.summary
        );
        let comparison = promote.evidence.comparison.as_ref().unwrap();
        assert_eq!(comparison.verdict, Verdict::Pass);
        assert_eq!(promote.evidence.reference, Some(recorded_reference()));
        assert!(promote.evidence.bake_elapsed_ms.unwrap() >= 30_000);
    }

    /// R-WATCH-4: at 100 % the new release is compared with the previous one's recorded traffic.
    #[test]
    fn a_release_that_starts_failing_during_the_watch_is_rolled_back() {
        let mut trace = watched(fast_plan(), 600, Side::new(500, 5));
        trace.ready();
        trace.run_until_terminal(20);
        assert!(trace.state.is_watching());
        for _ in 0..20 {
            trace.second(Some(HealthStatus::Healthy), Vec::new());
        }
        assert_eq!(trace.state.phase, Phase::Baking);
        // 20 s into the watch it starts failing one request in five.
        trace.canary.error_every = 5;
        trace.run_until_terminal(120);
        assert_eq!(trace.state.phase, Phase::RolledBack);
        assert_eq!(
            desired_split(&trace.state),
            TrafficSplit::all_to("steno@v1")
        );
        let rollback = trace.decisions.last().unwrap();
        assert!(
            rollback.summary.starts_with(
                "during the watch at 100 %, v2 is worse than v1 was before the rollout"
            ),
            "{}",
            rollback.summary
        );
        assert!(rollback.summary.ends_with("rolled back to the warm v1"));
        assert_eq!(rollback.evidence.reference, Some(recorded_reference()));
        assert_eq!(
            rollback.evidence.comparison.as_ref().unwrap().verdict,
            Verdict::Fail
        );
    }

    /// Without recorded traffic the watch still runs: alarms, health and checks decide, and the
    /// summary says there was nothing to compare with.
    #[test]
    fn a_watch_without_a_reference_is_judged_by_health_and_alarms() {
        let mut quiet = Trace::new(
            fast_plan().with_watch(Duration::from_secs(30)),
            Side::new(500, 5),
        );
        quiet.ready();
        quiet.run_until_terminal(20);
        assert!(quiet.state.is_watching());
        quiet.second(Some(HealthStatus::Healthy), Vec::new());
        assert!(
            quiet
                .state
                .last_summary
                .contains("v1 served no traffic before the rollout"),
            "{}",
            quiet.state.last_summary
        );
        quiet.run_until_terminal(60);
        assert_eq!(quiet.state.phase, Phase::Promoted);
        assert!(quiet
            .decisions
            .last()
            .unwrap()
            .evidence
            .comparison
            .is_none());

        let mut sick = Trace::new(
            fast_plan().with_watch(Duration::from_secs(30)),
            Side::new(500, 5),
        );
        sick.ready();
        sick.run_until_terminal(20);
        assert!(sick.state.is_watching());
        for _ in 0..3 {
            sick.second(Some(HealthStatus::Unhealthy("503".into())), Vec::new());
        }
        assert_eq!(sick.state.phase, Phase::RolledBack);
    }

    /// `AllAtOnce` shifts everything at once and then watches for its hour (R-WATCH-1).
    #[test]
    fn all_at_once_watches_for_an_hour_before_promoting() {
        let mut trace = Trace::new(preset("AllAtOnce").unwrap(), Side::new(500, 5));
        trace.state.reference = Some(recorded_reference());
        trace.ready();
        assert_eq!(trace.state.phase, Phase::Baking);
        assert!(trace.state.is_watching());
        assert!(
            trace.decisions[0].summary.contains("watched for 1h"),
            "{}",
            trace.decisions[0].summary
        );
        trace.run_until_terminal(3_590);
        assert_eq!(trace.state.phase, Phase::Baking);
        trace.run_until_terminal(20);
        assert_eq!(trace.state.phase, Phase::Promoted);
    }

    #[test]
    fn all_at_once_promotes_when_ready_and_restarts_rebake() {
        let unwatched = preset("AllAtOnce").unwrap().with_watch(Duration::ZERO);
        let mut trace = Trace::new(unwatched, Side::new(500, 5));
        trace.ready();
        assert_eq!(trace.state.phase, Phase::Promoted);

        let mut resumed = Trace::new(fast_plan(), Side::new(500, 5));
        resumed.ready();
        for _ in 0..5 {
            resumed.second(None, Vec::new());
        }
        let later = resumed.now_ms + 60_000;
        let (rebaked, actions) = rebake_after_restart(&resumed.state, later);
        assert_eq!(rebaked.step_started_at_ms, Some(later));
        assert_eq!(rebaked.traffic_started_at_ms, Some(later));
        assert_eq!(rebaked.step_index, resumed.state.step_index);
        assert!(
            matches!(&actions[0], Action::Record(decision) if decision.kind == DecisionKind::Resume)
        );
    }
}
