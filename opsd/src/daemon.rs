//! The daemon's control plane: it owns the active rollouts, runs the reconciler tick (observe the
//! platforms, ask the pure core what to do, execute, persist), and answers the API's requests
//! (deploy, operator commands, status, history).
//!
//! Level-triggered and restartable: all state that matters is in the store; after a restart the
//! active rollouts are reloaded and resumed, and every tick re-applies the traffic split the state
//! calls for, so a crash between a decision and its traffic shift is repaired on the next tick.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use serde::Serialize;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use crate::config::{CheckSpec, Config, ServiceConfig};
use crate::core::drill::GateMode;
use crate::core::plan::{plan_from_document, preset, RolloutPlan};
use crate::core::release_env::{check_env, check_key, Fingerprinter};
use crate::core::rollout::{
    desired_split, rebake_after_restart, step, Action, CheckState, Decision, DecisionKind,
    Observation, OperatorCommand, Phase, Readiness, RolloutState,
};
use crate::core::traffic::{SecondSample, TrafficSample};
use crate::notify::{Notification, Notifier, Severity};
use crate::platform::{HealthStatus, PlatformError, ReleaseSpec, TrafficSplit};
use crate::store::{NewAuditEntry, NewDecision, NewEvent, NewRollout, Store, StoreError};

/// The platform capabilities the daemon drives.
pub use crate::platform::dispatch::PlatformSet as Platforms;

/// Who asked for something, for the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct Actor {
    pub name: String,
    pub role: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            name: "opsd".into(),
            role: "system".into(),
        }
    }
}

/// Errors the API turns into HTTP answers.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("unknown service {0:?}; the configured services are: {1}")]
    UnknownService(String, String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    /// A gate (DR drill, pre-deployment snapshot) refused the rollout.
    #[error("{0}")]
    GateClosed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Platform(#[from] PlatformError),
}

/// What `deploy` is asked to start.
#[derive(Clone, Default, serde::Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub version: String,
    /// Environment values of the release (stored with the rollout, shown only as fingerprints).
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Keys the release takes from secrets named in opsd.yaml (key → secret name).
    #[serde(default)]
    pub env_from: std::collections::BTreeMap<String, String>,
    /// The plan; the service's plan when `None`.
    #[serde(default)]
    pub plan: Option<PlanChoice>,
    /// Why (audited).
    #[serde(default)]
    pub reason: Option<String>,
    /// Gates to override (`drill`, `snapshot`); needs a reason, audited.
    #[serde(default)]
    pub overrides: Vec<String>,
}

impl std::fmt::Debug for DeployRequest {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("DeployRequest")
            .field("version", &self.version)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("env_from", &self.env_from)
            .field("plan", &self.plan)
            .field("reason", &self.reason)
            .field("overrides", &self.overrides)
            .finish()
    }
}

/// How a deploy names its plan: a preset or plan in `plans_dir` by name, or the plan itself.
/// Never a path on opsd's host.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
#[serde(untagged)]
pub enum PlanChoice {
    Named(String),
    Document(serde_json::Value),
}

/// A rollout as the API and CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutView {
    pub id: String,
    pub service: String,
    pub stable_version: String,
    pub canary_version: String,
    pub plan: String,
    pub phase: Phase,
    pub step: usize,
    pub steps: usize,
    pub canary_weight_percent: u8,
    pub summary: String,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub state: RolloutState,
    pub decisions: Vec<DecisionView>,
    /// The snapshot taken before this rollout started, when the service takes one.
    pub pre_deploy_snapshot: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DecisionView {
    pub seq: i64,
    pub at: String,
    pub kind: String,
    pub step_index: u32,
    pub summary: String,
    pub evidence: serde_json::Value,
}

/// One service's state.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceStatus {
    pub service: String,
    pub public_addr: String,
    pub stable_version: String,
    pub split: Option<TrafficSplit>,
    pub active_rollout: Option<RolloutView>,
    pub last_rollout: Option<RolloutView>,
}

struct ActiveRollout {
    state: RolloutState,
    revision: i64,
    canary_start: Option<JoinHandle<Result<(), PlatformError>>>,
    canary_running: bool,
    last_probe_ms: i64,
    checks: Vec<(String, JoinHandle<CheckState>)>,
    commands: Vec<OperatorCommand>,
    /// Set once a terminal rollout's traffic, stable release and loser are settled.
    settled: bool,
    /// The last reconcile error, so a persisting one (like drift) is put on the timeline once.
    last_error: Option<String>,
    /// Set while the platform reports that someone else changed the traffic routing.
    traffic_drift: Option<String>,
}

pub struct Daemon {
    config: Config,
    store: Store,
    platforms: Platforms,
    notifier: Notifier,
    active: Mutex<HashMap<String, Arc<Mutex<ActiveRollout>>>>,
    stable: Mutex<HashMap<String, ReleaseSpec>>,
    /// Turns release environment values into the fingerprints views show.
    fingerprints: Fingerprinter,
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn time_of(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

/// A release of `service` at `version`, telling the release its version when the service wants.
fn release_of(
    service: &ServiceConfig,
    version: &str,
    mut env: std::collections::BTreeMap<String, String>,
    env_from: std::collections::BTreeMap<String, String>,
) -> ReleaseSpec {
    if let Some(variable) = &service.version_env {
        if !env_from.contains_key(variable) {
            env.entry(variable.clone())
                .or_insert_with(|| version.to_string());
        }
    }
    ReleaseSpec {
        service: service.name.clone(),
        version: version.to_string(),
        env,
        env_from,
    }
}

/// Refuses a plan whose steps run a check the service does not define.
fn check_plan_checks(service: &ServiceConfig, plan: &RolloutPlan) -> Result<(), ControlError> {
    for (index, step) in plan.steps.iter().enumerate() {
        for check in &step.checks {
            if !service.checks.contains_key(check) {
                return Err(ControlError::Invalid(format!(
                    "plan {}: steps[{index}].checks names {check:?}, which services.{}.checks does not define; defined: {}",
                    plan.name,
                    service.name,
                    service.checks.keys().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    Ok(())
}

fn release_from_json(value: &serde_json::Value) -> Option<ReleaseSpec> {
    serde_json::from_value(value.clone()).ok()
}

impl Daemon {
    /// Restores state from the store, starts every service's stable release, and resumes the
    /// active rollouts.
    pub async fn start(
        config: Config,
        store: Store,
        platforms: Platforms,
        notifier: Notifier,
    ) -> Result<Arc<Daemon>, ControlError> {
        let fingerprints = Fingerprinter::new(store.fingerprint_key().await?);
        let daemon = Arc::new(Daemon {
            config,
            store,
            platforms,
            notifier,
            active: Mutex::new(HashMap::new()),
            stable: Mutex::new(HashMap::new()),
            fingerprints,
        });
        for service in daemon.config.services.values() {
            let stable = daemon.restore_stable_release(service).await?;
            tracing::info!(service = %service.name, version = %stable.version, "starting the stable release");
            daemon.platforms.runner.ensure_running(&stable).await?;
            daemon
                .platforms
                .shifter
                .set_split(&service.name, &TrafficSplit::all_to(&stable.release_id()))
                .await?;
            daemon
                .stable
                .lock()
                .await
                .insert(service.name.clone(), stable);
        }
        for record in daemon.store.active_rollouts().await? {
            let state: RolloutState = match serde_json::from_str(&record.state_json) {
                Ok(state) => state,
                Err(error) => {
                    tracing::error!(rollout_id = %record.id, error = %error, "cannot read a stored rollout; leaving it");
                    continue;
                }
            };
            tracing::info!(rollout_id = %record.id, service = %record.service, phase = state.phase.as_str(), "resuming a rollout after restart");
            daemon
                .event(
                    &state.service,
                    Some(&state.id),
                    "resumed",
                    format!(
                        "opsd restarted; resuming rollout of {} at phase {}",
                        state.canary.version,
                        state.phase.as_str()
                    ),
                )
                .await;
            daemon.active.lock().await.insert(
                record.service.clone(),
                Arc::new(Mutex::new(ActiveRollout {
                    state,
                    revision: record.revision,
                    canary_start: None,
                    canary_running: false,
                    last_probe_ms: 0,
                    checks: Vec::new(),
                    commands: Vec::new(),
                    settled: false,
                    last_error: None,
                    traffic_drift: None,
                })),
            );
        }
        Ok(daemon)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The stable release of a service: the winner of its newest finished rollout when that is
    /// newer than the stored stable release (repairs a crash between the two writes), else the
    /// stored one, else the configured initial version.
    async fn restore_stable_release(
        &self,
        service: &ServiceConfig,
    ) -> Result<ReleaseSpec, ControlError> {
        let stored = self.store.stable_release(&service.name).await?;
        let newest = self
            .store
            .list_rollouts(Some(&service.name), 1)
            .await?
            .into_iter()
            .next();
        if let Some(rollout) = newest.filter(|rollout| rollout.is_finished()) {
            if let Ok(state) = serde_json::from_str::<RolloutState>(&rollout.state_json) {
                if let Some(winner) = state.winner() {
                    let stored_version = stored.as_ref().map(|stable| stable.version.clone());
                    if stored_version.as_deref() != Some(winner.version.as_str()) {
                        tracing::warn!(service = %service.name, version = %winner.version, "repairing the stable release from the last finished rollout");
                        self.store
                            .set_stable_release(
                                &service.name,
                                &winner.version,
                                &serde_json::to_value(winner).unwrap_or_default(),
                                Utc::now(),
                            )
                            .await?;
                    }
                    return Ok(winner.clone());
                }
            }
        }
        if let Some(release) = stored
            .as_ref()
            .and_then(|stable| release_from_json(&stable.release))
        {
            return Ok(release);
        }
        let initial_version = if service.initial_version.is_empty() {
            // On AWS: whatever the alias routes when opsd first sees it.
            let split = self.platforms.shifter.current_split(&service.name).await?;
            match split {
                Some(split) if split.canary.is_none() => split
                    .stable
                    .split_once('@')
                    .map(|(_, label)| label.to_string())
                    .unwrap_or(split.stable),
                Some(split) => {
                    return Err(ControlError::Conflict(format!(
                        "{} is mid-shift ({} plus {:?} at {} %), not by opsd; finish or undo that \
                         shift first, or set initial_version",
                        service.name, split.stable, split.canary, split.canary_weight_percent
                    )))
                }
                None => {
                    return Err(ControlError::Invalid(format!(
                        "{} has no initial_version and the platform reports no current release",
                        service.name
                    )))
                }
            }
        } else {
            service.initial_version.clone()
        };
        let initial = release_of(
            service,
            &initial_version,
            Default::default(),
            Default::default(),
        );
        self.store
            .set_stable_release(
                &service.name,
                &initial.version,
                &serde_json::to_value(&initial).unwrap_or_default(),
                Utc::now(),
            )
            .await?;
        Ok(initial)
    }

    fn service(&self, name: &str) -> Result<&ServiceConfig, ControlError> {
        self.config.services.get(name).ok_or_else(|| {
            ControlError::UnknownService(
                name.to_string(),
                self.config
                    .services
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        })
    }

    /// Waits for a finished rollout of `service` that is still settling (stopping its loser), so
    /// a new rollout starts from the release that won; refuses while one is in progress.
    async fn settle_previous(&self, service: &str) -> Result<(), ControlError> {
        loop {
            let existing = self.active.lock().await.get(service).cloned();
            let Some(entry) = existing else { break };
            let (terminal, described) = {
                let guard = entry.lock().await;
                (
                    guard.state.phase.is_terminal() && guard.settled,
                    format!(
                        "{} → {}, id {}",
                        guard.state.stable.version, guard.state.canary.version, guard.state.id
                    ),
                )
            };
            if !terminal {
                return Err(ControlError::Conflict(format!(
                    "a rollout of {service} ({described}) is in progress; wait for it (`opsd gate {service}`) or abort it (`opsd abort {service}`)"
                )));
            }
            let mut active = self.active.lock().await;
            if active
                .get(service)
                .is_some_and(|current| Arc::ptr_eq(current, &entry))
            {
                active.remove(service);
            }
        }
        Ok(())
    }

    /// Starts a rollout of `request.version` of `service`.
    pub async fn deploy(
        &self,
        service_name: &str,
        request: DeployRequest,
        actor: &Actor,
    ) -> Result<RolloutView, ControlError> {
        let DeployRequest {
            version,
            env,
            env_from,
            plan: plan_choice,
            reason,
            overrides,
        } = request;
        let version = version.as_str();
        let overrides = overrides.as_slice();
        let service = self.service(service_name)?;
        for gate in overrides {
            if gate != "drill" && gate != "snapshot" && gate != "budget" {
                return Err(ControlError::Invalid(format!(
                    "--override {gate:?} is not a gate; use drill, snapshot or budget"
                )));
            }
        }
        if !overrides.is_empty() && reason.as_deref().is_none_or(|text| text.trim().is_empty()) {
            return Err(ControlError::Invalid(
                "an override needs --reason: it is kept in the audit log".into(),
            ));
        }
        let version = version.trim();
        if version.is_empty()
            || version.len() > 100
            || version.chars().any(|ch| ch.is_whitespace() || ch == '@')
        {
            return Err(ControlError::Invalid(format!("version {version:?} must be non-empty, without spaces or @, at most 100 characters")));
        }
        self.check_release_env(service, &env, &env_from)?;
        let plan = match plan_choice {
            Some(PlanChoice::Named(name)) => self
                .config
                .named_plan(name.trim())
                .map_err(|error| ControlError::Invalid(error.to_string()))?,
            Some(PlanChoice::Document(document)) => {
                plan_from_document("the request's plan", document)
                    .map_err(|error| ControlError::Invalid(error.to_string()))?
            }
            None => service.plan.clone(),
        };
        check_plan_checks(service, &plan)?;
        self.settle_previous(service_name).await?;
        let stable = self.stable_release(service_name).await?;
        if stable.version == version {
            return Err(ControlError::Conflict(format!(
                "{version} is already the stable release of {service_name}"
            )));
        }
        let rollout_id = uuid::Uuid::new_v4().to_string();
        self.check_budget_gate(service, overrides, actor, reason.as_deref())
            .await?;
        let gate_hold = self
            .check_drill_gate(service, overrides, actor, reason.as_deref())
            .await?;
        let snapshot = self
            .pre_deploy_snapshot(service, &rollout_id, overrides, actor, reason.as_deref())
            .await?;
        let canary = release_of(service, version, env, env_from);
        let view = self
            .start_rollout(
                rollout_id, stable, canary, plan, actor, reason, "deploy", gate_hold,
            )
            .await?;
        if let Some(snapshot) = snapshot {
            self.event(
                service_name,
                Some(&view.id),
                "snapshot",
                format!(
                    "pre-deployment snapshot {} of {} taken",
                    snapshot.id, snapshot.database
                ),
            )
            .await;
        }
        Ok(view)
    }

    /// The drill gate of the service's database (R-GATE-1, R-GATE-2 in docs/requirements.md):
    /// `Ok(None)` when open or overridden (the override is audited), `Ok(Some(reason))` to hold,
    /// `Err` to refuse.
    async fn check_drill_gate(
        &self,
        service: &ServiceConfig,
        overrides: &[String],
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<Option<String>, ControlError> {
        let Some(database_name) = &service.database else {
            return Ok(None);
        };
        if service.drill_gate == GateMode::Off {
            return Ok(None);
        }
        let Some(database) = self.config.databases.get(database_name) else {
            return Ok(None);
        };
        let Err(closed_because) = crate::drill::gate_status(&self.store, database).await? else {
            return Ok(None);
        };
        if overrides.iter().any(|gate| gate == "drill") {
            self.audit(
                actor,
                "override_drill_gate",
                &service.name,
                reason.map(str::to_string),
                serde_json::json!({"gate": "drill", "database": database_name, "closed_because": closed_because}),
            )
            .await;
            return Ok(None);
        }
        match service.drill_gate {
            GateMode::Hold => Ok(Some(format!("drill gate: {closed_because}"))),
            _ => Err(ControlError::GateClosed(format!(
                "deploy of {} refused by the drill gate: {closed_because}; run `opsd drill run \
                 {database_name}`, or override with --override drill --reason \"...\" (audited)",
                service.name
            ))),
        }
    }

    /// The budget gate (`budget_gate: refuse`): refuses a deploy while the newest cost check found
    /// a budget's forecast threshold crossed, or is older than `costs.gate_max_age`, unless the
    /// operator overrides `budget` (audited).
    async fn check_budget_gate(
        &self,
        service: &ServiceConfig,
        overrides: &[String],
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<(), ControlError> {
        let Some(costs) = self.config.costs.as_ref() else {
            return Ok(());
        };
        if service.budget_gate == GateMode::Off {
            return Ok(());
        }
        let Some(closed) =
            crate::costs::budget_gate_closed(&self.store, Utc::now(), costs.gate_max_age).await
        else {
            return Ok(());
        };
        if overrides.iter().any(|gate| gate == "budget") {
            self.audit(
                actor,
                "override_budget_gate",
                &service.name,
                reason.map(str::to_string),
                serde_json::json!({"gate": "budget", "closed_because": closed.reason, "stale": closed.stale}),
            )
            .await;
            return Ok(());
        }
        Err(ControlError::GateClosed(format!(
            "deploy of {} refused by the budget gate: {}; {}, or override with --override budget \
             --reason \"...\" (audited)",
            service.name, closed.reason, closed.what_to_do
        )))
    }

    /// Takes the service's pre-deployment snapshot when configured (R-DR-4), unless the
    /// operator overrides `snapshot` (audited, R-GATE-4).
    async fn pre_deploy_snapshot(
        &self,
        service: &ServiceConfig,
        rollout_id: &str,
        overrides: &[String],
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<Option<crate::store::SnapshotRecord>, ControlError> {
        let Some(database_name) = service
            .database
            .as_ref()
            .filter(|_| service.snapshot_before_deploy)
        else {
            return Ok(None);
        };
        let Some(database) = self.config.databases.get(database_name) else {
            return Ok(None);
        };
        match crate::drill::pre_deploy_snapshot(&self.config, &self.store, database, rollout_id)
            .await
        {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(error) if overrides.iter().any(|gate| gate == "snapshot") => {
                self.audit(
                    actor,
                    "override_pre_deploy_snapshot",
                    &service.name,
                    reason.map(str::to_string),
                    serde_json::json!({"database": database_name, "error": error.to_string()}),
                )
                .await;
                Ok(None)
            }
            Err(error) => Err(ControlError::GateClosed(format!(
                "deploy of {} stopped: the pre-deployment snapshot of {database_name} failed: \
                 {error}; fix it, or override with --override snapshot --reason \"...\" (audited)",
                service.name
            ))),
        }
    }

    /// Rolls a service back to the release that was stable before the current one, at once.
    pub async fn rollback(
        &self,
        service_name: &str,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<RolloutView, ControlError> {
        self.service(service_name)?;
        self.settle_previous(service_name).await?;
        let stable = self.stable_release(service_name).await?;
        let history = self.store.release_history(service_name).await?;
        let previous = history
            .iter()
            .filter_map(|record| release_from_json(&record.release))
            .find(|release| release.version != stable.version)
            .ok_or_else(|| {
                ControlError::Conflict(format!(
                    "{service_name} has no previous release to roll back to"
                ))
            })?;
        let plan = preset("AllAtOnce")
            .ok_or_else(|| ControlError::Invalid("the AllAtOnce preset is missing".into()))?;
        let rollout_id = uuid::Uuid::new_v4().to_string();
        self.start_rollout(
            rollout_id, stable, previous, plan, actor, reason, "rollback", None,
        )
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn start_rollout(
        &self,
        id: String,
        stable: ReleaseSpec,
        canary: ReleaseSpec,
        plan: RolloutPlan,
        actor: &Actor,
        reason: Option<String>,
        action: &str,
        gate_hold: Option<String>,
    ) -> Result<RolloutView, ControlError> {
        let service = canary.service.clone();
        let now = now_ms();
        let mut state = RolloutState::new(id.clone(), stable.clone(), canary.clone(), plan, now);
        if let Some(reason) = gate_hold {
            state = state.held_at_gate(reason);
        }
        let state_json = serde_json::to_string(&state)
            .map_err(|error| ControlError::Invalid(error.to_string()))?;
        let mut active = self.active.lock().await;
        if active.contains_key(&service) {
            return Err(ControlError::Conflict(format!("another rollout of {service} was started at the same moment; check `opsd status {service}`")));
        }
        match self
            .store
            .insert_rollout(NewRollout {
                id: id.clone(),
                service: service.clone(),
                stable_version: stable.version.clone(),
                canary_version: canary.version.clone(),
                plan_name: state.plan.name.clone(),
                phase: state.phase.as_str().to_string(),
                state_json,
                created_at: time_of(now),
            })
            .await
        {
            Ok(()) => {}
            Err(StoreError::RolloutInProgress { rollout_id, .. }) => {
                return Err(ControlError::Conflict(format!(
                    "a rollout of {service} (id {rollout_id}) is in progress; wait for it or abort it"
                )))
            }
            Err(error) => return Err(error.into()),
        }
        self.audit(actor, action, &service, reason, serde_json::json!({"rollout_id": id, "stable": stable.version, "canary": canary.version, "plan": state.plan.name})).await;
        self.event(
            &service,
            Some(&id),
            "rollout_started",
            format!(
                "rollout of {} over {} started with plan {}",
                canary.version, stable.version, state.plan.name
            ),
        )
        .await;
        active.insert(
            service.clone(),
            Arc::new(Mutex::new(ActiveRollout {
                state: state.clone(),
                revision: 1,
                canary_start: None,
                canary_running: false,
                last_probe_ms: 0,
                checks: Vec::new(),
                commands: Vec::new(),
                settled: false,
                last_error: None,
                traffic_drift: None,
            })),
        );
        drop(active);
        self.view_of(&state).await
    }

    /// Queues an operator command for the service's active rollout and applies it at once.
    pub async fn command(
        &self,
        service_name: &str,
        command: OperatorCommand,
        actor: &Actor,
        reason: Option<String>,
    ) -> Result<RolloutView, ControlError> {
        self.service(service_name)?;
        let entry = self
            .active
            .lock()
            .await
            .get(service_name)
            .cloned()
            .ok_or_else(|| {
                ControlError::NotFound(format!("{service_name} has no rollout in progress"))
            })?;
        let id = {
            let mut rollout = entry.lock().await;
            rollout.commands.push(command);
            rollout.state.id.clone()
        };
        let action = serde_json::to_value(command)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        self.audit(
            actor,
            &action,
            service_name,
            reason,
            serde_json::json!({"rollout_id": id}),
        )
        .await;
        self.reconcile_service(service_name).await;
        let view = self.rollout(&id).await?;
        Ok(view)
    }

    async fn stable_release(&self, service: &str) -> Result<ReleaseSpec, ControlError> {
        self.stable
            .lock()
            .await
            .get(service)
            .cloned()
            .ok_or_else(|| ControlError::NotFound(format!("{service} has no stable release yet")))
    }

    /// Runs the reconciler until `shutdown` completes.
    pub async fn run(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(self.config.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                _ = shutdown.changed() => break,
            }
            let services: Vec<String> = self.active.lock().await.keys().cloned().collect();
            for service in services {
                self.reconcile_service(&service).await;
            }
        }
    }

    /// One reconciler pass over one service's active rollout.
    pub async fn reconcile_service(&self, service: &str) {
        let Some(entry) = self.active.lock().await.get(service).cloned() else {
            return;
        };
        let settled = {
            let mut rollout = entry.lock().await;
            match self.reconcile(&mut rollout).await {
                Ok(()) => {
                    rollout.last_error = None;
                    rollout.traffic_drift = None;
                }
                Err(error) => {
                    let message = error.to_string();
                    if let ControlError::Platform(PlatformError::Drift { detail, .. }) = &error {
                        rollout.traffic_drift = Some(detail.clone());
                    }
                    tracing::error!(service = %service, error = %message, "reconcile failed; retrying next tick");
                    if rollout.last_error.as_deref() != Some(message.as_str()) {
                        let kind = match error {
                            ControlError::Platform(PlatformError::Drift { .. }) => "drift",
                            _ => "platform_error",
                        };
                        let rollout_id = rollout.state.id.clone();
                        self.event(service, Some(&rollout_id), kind, message.clone())
                            .await;
                        if kind == "drift" {
                            self.notifier.send(
                                Notification::new(
                                    format!("rollout/{rollout_id}/drift"),
                                    Severity::Critical,
                                    service,
                                    format!("{service}: traffic drift; opsd holds the rollout"),
                                )
                                .with_body(message.clone())
                                .for_rollout(rollout_id.clone()),
                            );
                        }
                        rollout.last_error = Some(message);
                    }
                }
            }
            rollout.settled
        };
        // The rollout's lock is released before the map's is taken: never the other way round.
        if settled {
            let mut active = self.active.lock().await;
            if active
                .get(service)
                .is_some_and(|current| Arc::ptr_eq(current, &entry))
            {
                active.remove(service);
            }
        }
    }

    async fn reconcile(&self, rollout: &mut ActiveRollout) -> Result<(), ControlError> {
        if rollout.state.phase.is_terminal() {
            // Terminal but not settled (the last attempt failed): settle again.
            self.finish(rollout).await?;
            rollout.settled = true;
            return Ok(());
        }
        let now = now_ms();
        let mut observation = Observation {
            now_ms: now,
            commands: std::mem::take(&mut rollout.commands),
            traffic_drift: rollout.traffic_drift.clone(),
            ..Observation::default()
        };
        let service = rollout.state.service.clone();
        let canary = rollout.state.canary.clone();
        let state_before = serde_json::to_string(&rollout.state).ok();
        let mut pending_actions: Vec<Action> = Vec::new();

        // The canary process: started once, and again after an opsd restart.
        if !rollout.canary_running
            && !rollout.state.phase.is_terminal()
            && rollout.state.gate_hold.is_none()
        {
            match rollout.canary_start.take() {
                None => {
                    let runner = self.platforms.runner.clone();
                    let release = canary.clone();
                    rollout.canary_start = Some(tokio::spawn(async move {
                        runner.ensure_running(&release).await
                    }));
                }
                Some(handle) if handle.is_finished() => match handle.await {
                    Ok(Ok(())) => {
                        rollout.canary_running = true;
                        if rollout.state.phase != Phase::Starting {
                            let (rebaked, actions) = rebake_after_restart(&rollout.state, now);
                            rollout.state = rebaked;
                            pending_actions.extend(actions);
                        }
                    }
                    Ok(Err(error)) => {
                        if rollout.state.phase == Phase::Starting {
                            observation.canary_readiness = Readiness::Failed(error.to_string());
                        } else {
                            observation.canary_health =
                                Some(HealthStatus::Unhealthy(error.to_string()));
                        }
                    }
                    Err(error) => {
                        observation.canary_readiness =
                            Readiness::Failed(format!("the start task failed: {error}"))
                    }
                },
                Some(handle) => rollout.canary_start = Some(handle),
            }
        }
        if rollout.canary_running {
            observation.canary_readiness = Readiness::Ready;
        }

        let phase = rollout.state.phase;
        let observing =
            matches!(phase, Phase::Baking | Phase::Paused | Phase::Held) && rollout.canary_running;
        if observing
            && now - rollout.last_probe_ms >= self.config.health_probe_interval.as_millis() as i64
        {
            rollout.last_probe_ms = now;
            observation.canary_health = Some(self.platforms.runner.probe_health(&canary).await);
        }
        if observing {
            let step_start_ms = rollout.state.step_started_at_ms.unwrap_or(now);
            let from = step_start_ms.div_euclid(1000);
            let to = now.div_euclid(1000) + 1;
            let canary_samples = self
                .platforms
                .metrics
                .samples(&service, &canary.release_id(), from, to)
                .await?;
            let baseline_samples = self
                .platforms
                .metrics
                .samples(&service, &rollout.state.stable.release_id(), from, to)
                .await?;
            observation.canary_traffic =
                TrafficSample::sum(canary_samples.iter().map(|entry| &entry.sample));
            observation.baseline_traffic =
                TrafficSample::sum(baseline_samples.iter().map(|entry| &entry.sample));
            observation.canary_series = self
                .alarm_series(&service, &canary.release_id(), now)
                .await?;
            match self.platforms.alarms.firing_alarms(&service).await {
                Ok(alarms) => observation.external_alarms = alarms,
                Err(error) => {
                    tracing::warn!(service = %service, error = %error, "cannot read the platform's alarms")
                }
            }
        }

        let mut finished_checks = Vec::new();
        let mut still_running = Vec::new();
        for (name, handle) in std::mem::take(&mut rollout.checks) {
            if handle.is_finished() {
                let result = handle.await.unwrap_or_else(|error| {
                    CheckState::Failed(format!("the check task failed: {error}"))
                });
                finished_checks.push((name, result));
            } else {
                still_running.push((name, handle));
            }
        }
        rollout.checks = still_running;
        observation.check_results = finished_checks;

        let policy = self.policy_for(&service);
        let (next, actions) = step(&rollout.state, &observation, &policy);
        pending_actions.extend(actions);
        // Persist first: a decision is recorded and acted on only once its state is stored.
        let changed = serde_json::to_string(&next).ok() != state_before;
        if changed {
            let finished = next
                .finished_at_ms
                .filter(|_| next.phase.is_terminal())
                .map(|at| (time_of(at), next.phase.as_str()));
            let state_json = serde_json::to_string(&next)
                .map_err(|error| ControlError::Invalid(error.to_string()))?;
            rollout.revision = self
                .store
                .update_rollout(
                    &next.id,
                    rollout.revision,
                    next.phase.as_str(),
                    &state_json,
                    finished,
                )
                .await?;
            rollout.state = next;
        }
        for action in pending_actions {
            match action {
                Action::Record(decision) => self.record_decision(&rollout.state, &decision).await,
                Action::RunCheck { name } => {
                    let handle = self.spawn_check(&service, &canary, &name).await;
                    rollout.checks.push((name, handle));
                }
            }
        }

        if rollout.state.phase.is_terminal() {
            self.finish(rollout).await?;
            rollout.settled = true;
        } else {
            let split = if rollout.canary_running {
                desired_split(&rollout.state)
            } else {
                TrafficSplit::all_to(&rollout.state.stable.release_id())
            };
            self.apply_split(&service, &split).await?;
        }
        Ok(())
    }

    /// Recent per-second samples long enough for every alarm rule's window.
    async fn alarm_series(
        &self,
        service: &str,
        release_id: &str,
        now: i64,
    ) -> Result<Vec<SecondSample>, ControlError> {
        let longest = self
            .config
            .policy
            .alarms
            .iter()
            .map(|rule| rule.period.as_secs() * u64::from(rule.evaluation_periods))
            .max()
            .unwrap_or(60)
            .min(3600) as i64;
        let to = now.div_euclid(1000) + 1;
        Ok(self
            .platforms
            .metrics
            .samples(service, release_id, to - longest - 1, to)
            .await?)
    }

    async fn apply_split(&self, service: &str, split: &TrafficSplit) -> Result<(), ControlError> {
        let current = self.platforms.shifter.current_split(service).await?;
        if current.as_ref() != Some(split) {
            self.platforms.shifter.set_split(service, split).await?;
            tracing::info!(service = %service, stable = %split.stable, canary = ?split.canary, weight = split.canary_weight_percent, "traffic split applied");
        }
        Ok(())
    }

    /// Terminal: all traffic to the winner, record the new stable release, stop the loser.
    async fn finish(&self, rollout: &mut ActiveRollout) -> Result<(), ControlError> {
        let state = &rollout.state;
        let (winner, loser) = match state.phase {
            Phase::Promoted => (state.canary.clone(), state.stable.clone()),
            _ => (state.stable.clone(), state.canary.clone()),
        };
        if let Some(handle) = rollout.canary_start.take() {
            handle.abort();
        }
        if state.phase == Phase::Promoted {
            self.platforms.runner.ensure_running(&winner).await?;
        }
        self.platforms
            .shifter
            .set_split(&state.service, &TrafficSplit::all_to(&winner.release_id()))
            .await?;
        self.store
            .set_stable_release(
                &state.service,
                &winner.version,
                &serde_json::to_value(&winner).unwrap_or_default(),
                Utc::now(),
            )
            .await?;
        self.stable
            .lock()
            .await
            .insert(state.service.clone(), winner.clone());
        if let Err(error) = self.platforms.runner.stop(&loser).await {
            tracing::warn!(release = %loser.release_id(), error = %error, "could not stop the release that lost the rollout");
        }
        if state.phase == Phase::Promoted && !rollout.settled {
            self.purge_cdn_after_promotion(&state.service, &state.id)
                .await;
        }
        Ok(())
    }

    /// Starts a CDN invalidation for a promoted release and follows it in the background, putting
    /// its start and end on the timeline. Services without a CDN are skipped.
    async fn purge_cdn_after_promotion(&self, service: &str, rollout_id: &str) {
        match self.platforms.cdn.invalidate(service).await {
            Ok(None) => {}
            Ok(Some(invalidation_id)) => {
                self.event(
                    service,
                    Some(rollout_id),
                    "cdn_invalidation",
                    format!("CDN invalidation {invalidation_id} created after the promotion"),
                )
                .await;
                let cdn = self.platforms.cdn.clone();
                let store = self.store.clone();
                let service = service.to_string();
                let rollout_id = rollout_id.to_string();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let outcome = loop {
                        match cdn.invalidation_completed(&service, &invalidation_id).await {
                            Ok(true) => break format!(
                                "CDN invalidation {invalidation_id} completed after {} s",
                                started.elapsed().as_secs()
                            ),
                            Ok(false) if started.elapsed() > std::time::Duration::from_secs(1800) => {
                                break format!("CDN invalidation {invalidation_id} still in progress after 30 min; stopped watching")
                            }
                            Ok(false) => tokio::time::sleep(std::time::Duration::from_secs(2)).await,
                            Err(error) => break format!("cannot follow CDN invalidation {invalidation_id}: {error}"),
                        }
                    };
                    tracing::info!(service = %service, message = %outcome, "cdn invalidation");
                    let _ = store
                        .append_event(&NewEvent {
                            at: Utc::now(),
                            service: service.clone(),
                            rollout_id: Some(rollout_id.clone()),
                            kind: "cdn_invalidation".into(),
                            message: outcome,
                            data: serde_json::Value::Null,
                        })
                        .await;
                });
            }
            Err(error) => {
                self.event(
                    service,
                    Some(rollout_id),
                    "cdn_invalidation",
                    format!("CDN invalidation failed: {error}"),
                )
                .await;
            }
        }
    }

    async fn spawn_check(
        &self,
        service: &str,
        canary: &ReleaseSpec,
        name: &str,
    ) -> JoinHandle<CheckState> {
        let spec = self
            .config
            .services
            .get(service)
            .and_then(|config| config.checks.get(name))
            .cloned();
        let address = self.platforms.runner.release_url(canary).await;
        let name = name.to_string();
        let runner = self.platforms.runner.clone();
        let canary = canary.clone();
        tokio::spawn(async move {
            match spec {
                None => CheckState::Failed(format!("check {name} is not defined")),
                Some(CheckSpec::ReleaseHealth) => match runner.probe_health(&canary).await {
                    HealthStatus::Healthy => CheckState::Passed,
                    HealthStatus::Unhealthy(detail) => CheckState::Failed(detail),
                },
                Some(spec) => run_check(&spec, address.as_deref(), &canary.version).await,
            }
        })
    }

    async fn record_decision(&self, state: &RolloutState, decision: &Decision) {
        let kind = serde_json::to_value(decision.kind)
            .ok()
            .and_then(|value| value.as_str().map(str::to_string))
            .unwrap_or_default();
        let evidence = serde_json::to_value(&decision.evidence).unwrap_or_default();
        if let Err(error) = self
            .store
            .append_decision(&NewDecision {
                rollout_id: state.id.clone(),
                at: time_of(decision.at_ms),
                step_index: decision.step_index as u32,
                verdict: kind.clone(),
                summary: decision.summary.clone(),
                evidence,
            })
            .await
        {
            tracing::error!(rollout_id = %state.id, error = %error, "could not store a decision");
        }
        tracing::info!(rollout_id = %state.id, service = %state.service, decision = %kind, weight = decision.canary_weight_percent, "{}", decision.summary);
        self.event(
            &state.service,
            Some(&state.id),
            &kind,
            decision.summary.clone(),
        )
        .await;
        let severity = match decision.kind {
            DecisionKind::RollBack | DecisionKind::Fail => Some(Severity::Critical),
            DecisionKind::Hold | DecisionKind::Abort => Some(Severity::Warning),
            DecisionKind::Promote | DecisionKind::Start => Some(Severity::Info),
            _ => None,
        };
        if let Some(severity) = severity {
            self.notifier.send(
                Notification::new(
                    format!("rollout/{}/{}/{}", state.id, kind, decision.at_ms),
                    severity,
                    state.service.clone(),
                    format!(
                        "{} {}: {}",
                        state.service,
                        state.canary.version,
                        kind.replace('_', " ")
                    ),
                )
                .with_body(decision.summary.clone())
                .for_rollout(state.id.clone())
                .with_details(serde_json::to_value(&decision.evidence).unwrap_or_default()),
            );
        }
    }

    async fn event(&self, service: &str, rollout_id: Option<&str>, kind: &str, message: String) {
        let event = NewEvent {
            at: Utc::now(),
            service: service.to_string(),
            rollout_id: rollout_id.map(str::to_string),
            kind: kind.to_string(),
            message,
            data: serde_json::Value::Null,
        };
        if let Err(error) = self.store.append_event(&event).await {
            tracing::error!(error = %error, "could not store an event");
        }
    }

    /// Appends to the audit log (who, what, when, why).
    pub async fn audit(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        reason: Option<String>,
        detail: serde_json::Value,
    ) {
        let entry = NewAuditEntry {
            at: Utc::now(),
            actor: actor.name.clone(),
            role: actor.role.clone(),
            action: action.to_string(),
            target: target.to_string(),
            reason,
            detail,
        };
        if let Err(error) = self.store.append_audit(&entry).await {
            tracing::error!(error = %error, "could not write the audit log");
        }
    }

    /// A rollout with its decisions.
    pub async fn rollout(&self, id: &str) -> Result<RolloutView, ControlError> {
        let record = self
            .store
            .get_rollout(id)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("rollout {id} not found")))?;
        let state: RolloutState = serde_json::from_str(&record.state_json).map_err(|error| {
            ControlError::Invalid(format!("rollout {id} cannot be read: {error}"))
        })?;
        self.view_of(&state).await
    }

    async fn view_of(&self, state: &RolloutState) -> Result<RolloutView, ControlError> {
        let decisions = self
            .store
            .list_decisions(&state.id)
            .await?
            .into_iter()
            .map(|decision| DecisionView {
                seq: decision.seq,
                at: decision.at.to_rfc3339(),
                kind: decision.verdict,
                step_index: decision.step_index,
                summary: decision.summary,
                evidence: decision.evidence,
            })
            .collect();
        Ok(RolloutView {
            id: state.id.clone(),
            service: state.service.clone(),
            stable_version: state.stable.version.clone(),
            canary_version: state.canary.version.clone(),
            plan: state.plan.name.clone(),
            phase: state.phase,
            step: state.step_index + 1,
            steps: state.plan.steps.len(),
            canary_weight_percent: state.canary_weight_percent(),
            summary: state.last_summary.clone(),
            created_at: time_of(state.created_at_ms).to_rfc3339(),
            finished_at: state.finished_at_ms.map(|at| time_of(at).to_rfc3339()),
            state: self.shown_state(state),
            decisions,
            pre_deploy_snapshot: self
                .store
                .snapshot_of_rollout(&state.id)
                .await?
                .map(|snapshot| snapshot.id),
        })
    }

    /// The state as views show it: release environment values as fingerprints.
    fn shown_state(&self, state: &RolloutState) -> RolloutState {
        let mut shown = state.clone();
        shown.stable = shown.stable.redacted(&self.fingerprints);
        shown.canary = shown.canary.redacted(&self.fingerprints);
        shown
    }

    /// Refuses a release environment with a key that is malformed, of the loader and search-path
    /// family (unless the service's `allow_env` names it) or set by opsd; an oversized value; or
    /// an `env_from` naming a secret opsd.yaml does not define. The message names the key.
    fn check_release_env(
        &self,
        service: &ServiceConfig,
        env: &std::collections::BTreeMap<String, String>,
        env_from: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), ControlError> {
        let invalid =
            |what: &str, message: String| ControlError::Invalid(format!("{what}: {message}"));
        check_env(env, &service.allow_env)
            .map_err(|violation| invalid("env", violation.to_string()))?;
        for (key, secret) in env_from {
            check_key(key, &service.allow_env)
                .map_err(|violation| invalid("env_from", violation.to_string()))?;
            if env.contains_key(key) {
                return Err(invalid(
                    "env_from",
                    format!("{key:?} is also given under env; give it one value"),
                ));
            }
            if !self.config.secrets.contains_key(secret) {
                return Err(invalid(
                    "env_from",
                    format!(
                        "{key:?} names secret {:?}, which opsd.yaml's secrets does not define",
                        secret.chars().take(100).collect::<String>()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Status of one service or all.
    /// The rollout policy of `service`: the configured one, without the cost-per-request check
    /// on AWS (CloudWatch reports neither response bytes nor each request's duration).
    fn policy_for(
        &self,
        service: &str,
    ) -> std::borrow::Cow<'_, crate::core::rollout::RolloutPolicy> {
        let on_aws = self
            .config
            .services
            .get(service)
            .is_some_and(|config| config.aws.is_some());
        if on_aws && self.config.policy.cost_per_request.is_some() {
            let mut policy = self.config.policy.clone();
            policy.cost_per_request = None;
            std::borrow::Cow::Owned(policy)
        } else {
            std::borrow::Cow::Borrowed(&self.config.policy)
        }
    }

    pub async fn status(&self, service: Option<&str>) -> Result<Vec<ServiceStatus>, ControlError> {
        let names: Vec<String> = match service {
            Some(name) => {
                self.service(name)?;
                vec![name.to_string()]
            }
            None => self.config.services.keys().cloned().collect(),
        };
        let mut statuses = Vec::new();
        for name in names {
            let config = self.service(&name)?;
            let stable = self
                .stable_release(&name)
                .await
                .map(|release| release.version)
                .unwrap_or_default();
            let active = self.store.active_rollout(&name).await?;
            let active_view = match active {
                Some(record) => Some(self.rollout(&record.id).await?),
                None => None,
            };
            let last = match &active_view {
                Some(_) => None,
                None => match self
                    .store
                    .list_rollouts(Some(&name), 1)
                    .await?
                    .into_iter()
                    .next()
                {
                    Some(record) => Some(self.rollout(&record.id).await?),
                    None => None,
                },
            };
            statuses.push(ServiceStatus {
                service: name.clone(),
                public_addr: config.public_target(),
                stable_version: stable,
                split: self
                    .platforms
                    .shifter
                    .current_split(&name)
                    .await
                    .ok()
                    .flatten(),
                active_rollout: active_view,
                last_rollout: last,
            });
        }
        Ok(statuses)
    }

    /// opsd's metrics in the Prometheus text format: per service the stable release, the active
    /// rollout's phase and canary weight, per release the last minute of traffic the router
    /// counted, and the notifier's counters.
    pub async fn metrics_text(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        let now_second = Utc::now().timestamp();
        let _ = writeln!(
            out,
            "# HELP opsd_rollout_active Whether a rollout of the service is in progress."
        );
        let _ = writeln!(out, "# TYPE opsd_rollout_active gauge");
        let mut weights = String::new();
        let mut traffic = String::new();
        for service in self.config.services.keys() {
            let active = self.active.lock().await.get(service).cloned();
            let mut releases = Vec::new();
            if let Ok(stable) = self.stable_release(service).await {
                releases.push(stable.release_id());
            }
            match active {
                Some(entry) => {
                    let rollout = entry.lock().await;
                    let _ = writeln!(
                        out,
                        "opsd_rollout_active{{service=\"{service}\",phase=\"{}\"}} 1",
                        rollout.state.phase.as_str()
                    );
                    let _ = writeln!(
                        weights,
                        "opsd_canary_weight_percent{{service=\"{service}\",release=\"{}\"}} {}",
                        rollout.state.canary.release_id(),
                        rollout.state.canary_weight_percent()
                    );
                    releases.push(rollout.state.canary.release_id());
                }
                None => {
                    let _ = writeln!(
                        out,
                        "opsd_rollout_active{{service=\"{service}\",phase=\"none\"}} 0"
                    );
                }
            }
            releases.dedup();
            for release in releases {
                if let Ok(samples) = self
                    .platforms
                    .metrics
                    .samples(service, &release, now_second - 60, now_second + 1)
                    .await
                {
                    let total = TrafficSample::sum(samples.iter().map(|entry| &entry.sample));
                    let _ = writeln!(traffic, "opsd_release_requests_last_minute{{service=\"{service}\",release=\"{release}\"}} {}", total.requests);
                    let _ = writeln!(traffic, "opsd_release_errors_last_minute{{service=\"{service}\",release=\"{release}\"}} {}", total.errors);
                }
            }
        }
        let _ = writeln!(
            out,
            "# HELP opsd_canary_weight_percent The canary's share of traffic."
        );
        let _ = writeln!(out, "# TYPE opsd_canary_weight_percent gauge");
        out.push_str(&weights);
        let _ = writeln!(out, "# HELP opsd_release_requests_last_minute Requests the router sent to a release in the last 60 s.");
        let _ = writeln!(out, "# TYPE opsd_release_requests_last_minute gauge");
        let _ = writeln!(
            out,
            "# HELP opsd_release_errors_last_minute Failed requests of a release in the last 60 s."
        );
        let _ = writeln!(out, "# TYPE opsd_release_errors_last_minute gauge");
        out.push_str(&traffic);
        let counts = self.notifier.counters().snapshot();
        let _ = writeln!(
            out,
            "# HELP opsd_notifications_total Notifications by result."
        );
        let _ = writeln!(out, "# TYPE opsd_notifications_total counter");
        for (result, count) in [
            ("sent", counts.sent),
            ("failed", counts.failed),
            ("dropped", counts.dropped),
            ("deduplicated", counts.deduplicated),
        ] {
            let _ = writeln!(
                out,
                "opsd_notifications_total{{result=\"{result}\"}} {count}"
            );
        }
        out
    }

    /// The service's rollouts, newest first.
    pub async fn history(
        &self,
        service: &str,
        limit: u32,
    ) -> Result<Vec<RolloutView>, ControlError> {
        self.service(service)?;
        let mut views = Vec::new();
        for record in self.store.list_rollouts(Some(service), limit).await? {
            views.push(self.rollout(&record.id).await?);
        }
        Ok(views)
    }
}

/// Runs one smoke check against the canary (its base URL, when the platform gives one).
pub async fn run_check(
    spec: &CheckSpec,
    base_url: Option<&str>,
    canary_version: &str,
) -> CheckState {
    match spec {
        CheckSpec::ReleaseHealth => {
            CheckState::Failed("release health checks are run by the daemon".into())
        }
        CheckSpec::Http { .. } if base_url.is_none() => {
            CheckState::Failed("the canary has no address to check".into())
        }
        CheckSpec::Http {
            path,
            expect_status,
            timeout,
        } => {
            let base_url = base_url.unwrap_or_default();
            let client = reqwest::Client::new();
            match client
                .get(format!("{base_url}{path}"))
                .timeout(*timeout)
                .send()
                .await
            {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let passed = match expect_status {
                        Some(expected) => status == *expected,
                        None => (200..300).contains(&status),
                    };
                    if passed {
                        CheckState::Passed
                    } else {
                        CheckState::Failed(format!("GET {path} answered {status}"))
                    }
                }
                Err(error) => CheckState::Failed(format!("GET {path} failed: {error}")),
            }
        }
        CheckSpec::Command { argv, timeout } => {
            let Some((program, args)) = argv.split_first() else {
                return CheckState::Failed("the check command is empty".into());
            };
            let mut command = tokio::process::Command::new(program);
            command
                .args(args)
                .env("CANARY_VERSION", canary_version)
                .kill_on_drop(true);
            if let Some(base_url) = base_url {
                command.env("CANARY_URL", base_url);
            }
            match tokio::time::timeout(*timeout, command.output()).await {
                Ok(Ok(output)) if output.status.success() => CheckState::Passed,
                Ok(Ok(output)) => CheckState::Failed(format!(
                    "{program} exited with {}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                        .chars()
                        .take(500)
                        .collect::<String>()
                )),
                Ok(Err(error)) => CheckState::Failed(format!("{program} could not run: {error}")),
                Err(_) => CheckState::Failed(format!(
                    "{program} took longer than {} s",
                    timeout.as_secs()
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn server_answering(status: u16) -> String {
        let app = axum::Router::new().route(
            "/probe",
            axum::routing::get(
                move || async move { axum::http::StatusCode::from_u16(status).unwrap() },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    #[tokio::test]
    async fn http_checks_pass_on_the_expected_status() {
        let ok = server_answering(200).await;
        let spec = CheckSpec::Http {
            path: "/probe".into(),
            expect_status: None,
            timeout: std::time::Duration::from_secs(5),
        };
        assert_eq!(run_check(&spec, Some(&ok), "v2").await, CheckState::Passed);
        let failing = server_answering(503).await;
        match run_check(&spec, Some(&failing), "v2").await {
            CheckState::Failed(detail) => assert!(detail.contains("503"), "{detail}"),
            other => panic!("expected a failure, got {other:?}"),
        }
        let expect_404 = CheckSpec::Http {
            path: "/missing".into(),
            expect_status: Some(404),
            timeout: std::time::Duration::from_secs(5),
        };
        assert_eq!(
            run_check(&expect_404, Some(&ok), "v2").await,
            CheckState::Passed
        );
        let unreachable = run_check(&spec, Some("http://127.0.0.1:9"), "v2").await;
        assert!(matches!(unreachable, CheckState::Failed(_)));
    }

    #[tokio::test]
    async fn command_checks_see_the_canary_url_and_their_exit_status() {
        let timeout = std::time::Duration::from_secs(10);
        let passes = CheckSpec::Command {
            argv: vec![
                "sh".into(),
                "-c".into(),
                "test \"$CANARY_URL\" = http://canary:1".into(),
            ],
            timeout,
        };
        assert_eq!(
            run_check(&passes, Some("http://canary:1"), "v2").await,
            CheckState::Passed
        );
        let fails = CheckSpec::Command {
            argv: vec!["sh".into(), "-c".into(), "echo broken >&2; exit 3".into()],
            timeout,
        };
        match run_check(&fails, Some("http://canary:1"), "v2").await {
            CheckState::Failed(detail) => assert!(detail.contains("broken"), "{detail}"),
            other => panic!("expected a failure, got {other:?}"),
        }
        let slow = CheckSpec::Command {
            argv: vec!["sleep".into(), "5".into()],
            timeout: std::time::Duration::from_millis(100),
        };
        assert!(
            matches!(run_check(&slow, Some("http://canary:1"), "v2").await, CheckState::Failed(detail) if detail.contains("longer"))
        );
        let missing = CheckSpec::Command {
            argv: vec!["no-such-program-here".into()],
            timeout,
        };
        assert!(
            matches!(run_check(&missing, Some("http://canary:1"), "v2").await, CheckState::Failed(detail) if detail.contains("could not run"))
        );
    }
}
