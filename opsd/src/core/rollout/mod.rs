//! The rollout state machine: `step(state, observation, policy) -> (state, actions)`.
//!
//! It is a pure function of data: no clock reads (time comes in the observation), no I/O, no
//! `.await`. The reconciler feeds it what the platforms report, executes the actions it returns,
//! persists the new state, and makes the platform's traffic split match [`desired_split`] on every
//! tick. Every verdict that changes something is returned as a [`Decision`] carrying its evidence.
//!
//! This file holds the types, [`step`] and the start of a canary; the rest of the machine is
//! split by what it decides: `commands` (an operator's pause, resume, promote, abort), `baking`
//! (a step's bake and what follows it), `health` (health probes and platform alarms, in every
//! phase that gives the canary weight) and `approval` (steps that wait for people). How a
//! rollout waits for its deploy window is in `core::rollout_window`.

mod approval;
mod baking;
mod commands;
mod health;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alarms::{AlarmEvaluation, AlarmRule, ExternalAlarm};
use super::analysis::{AnalysisPolicy, Comparison};
use super::approval::{Approval, ApprovalWait};
use super::cost::release_cost::{CostPerRequestComparison, CostPerRequestPolicy};
use super::duration::format_duration;
use super::plan::RolloutPlan;
use super::rollout_window::start_when_the_window_opens;
use super::schema::{describe_all, Migration, MigrationRun, SchemaChange};
use super::traffic::{SecondSample, TrafficSample};
use super::watch::ReferenceTraffic;
use crate::core::release::{HealthStatus, ReleaseSpec, TrafficSplit};
use approval::absorb_approvals;
use baking::step_baking;
use commands::apply_command;
use health::{roll_back_on_external_alarm, roll_back_on_failed_health};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The schema migrations the canary brings (expand before it starts, contract after the
    /// promotion), when it brings any (`core::schema`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<SchemaChange>,
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
    /// How the rollout's expand migrations ended, once they ran: what they did and that the
    /// stable release is healthy on the expanded schema, or why not.
    pub expand_result: Option<Result<String, String>>,
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
    /// The canary's expand migrations were applied and the stable release is healthy on them.
    Migrate,
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
            DecisionKind::Migrate => "migrate",
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
    /// The schema migrations the decision applied or tried.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub migrations: Vec<Migration>,
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
            schema: None,
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
            if roll_back_on_failed_health(&mut next, observation, policy, &mut actions) {
                return (next, actions);
            }
            roll_back_on_external_alarm(&mut next, observation, &mut actions);
        }
        _ => {}
    }
    (next, actions)
}

/// Phase `Starting`: once the canary is ready it takes the first step's weight (or, with a plan
/// that shifts everything at once and no watch, is promoted); a canary that cannot start fails.
fn step_starting(state: &mut RolloutState, observation: &Observation, actions: &mut Vec<Action>) {
    let now = observation.now_ms;
    if !migrate_before_start(state, observation, actions) {
        return;
    }
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

/// The expand phase before a canary starts: while the rollout's expand migrations run nothing
/// else moves; once applied (with the stable release healthy on them) the decision is recorded
/// and the canary may start; if they failed, the rollout fails before the canary takes any
/// traffic. Returns whether the canary may start.
fn migrate_before_start(
    state: &mut RolloutState,
    observation: &Observation,
    actions: &mut Vec<Action>,
) -> bool {
    let now = observation.now_ms;
    let Some(schema) = state.schema.as_mut() else {
        return true;
    };
    if !schema.expand_due() {
        return schema.canary_may_start();
    }
    let migrations = schema.expand.clone();
    match &observation.expand_result {
        None => {
            state.last_summary = format!(
                "applying expand migrations {} before the canary starts",
                describe_all(&migrations)
            );
            false
        }
        Some(Ok(detail)) => {
            schema.expand_run = MigrationRun::Applied(now);
            let summary = format!(
                "expand migrations {} applied before the canary starts; {detail}",
                describe_all(&migrations)
            );
            let evidence = Evidence {
                migrations,
                ..Evidence::default()
            };
            record(
                state,
                DecisionKind::Migrate,
                now,
                summary,
                evidence,
                actions,
            );
            true
        }
        Some(Err(reason)) => {
            schema.expand_run = MigrationRun::Failed(reason.clone());
            let summary = format!(
                "the expand migrations {} failed, so the canary {} was not started: {reason}",
                describe_all(&migrations),
                state.canary.version
            );
            let evidence = Evidence {
                migrations,
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
            false
        }
    }
}

/// Starts the bake of step `index` at `now` with its smoke checks pending (and asked to run).
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
    if phase != Phase::Promoted {
        // Contract migrations run only after a promotion.
        if let Some(schema) = state.schema.as_mut().filter(|schema| schema.contract_due()) {
            schema.contract_run = MigrationRun::Skipped;
        }
    }
    record(state, kind, now, summary, evidence, actions);
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod alarm_tests;

#[cfg(test)]
mod approval_tests;

#[cfg(test)]
mod watch_tests;

#[cfg(test)]
mod window_tests;
