//! Requests that start or command rollouts: deploy (validated, gated, then created), rollback to
//! the previous release, and operator commands (promote, pause, resume, abort).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::gates::{GateRequest, GatesPassed};
use super::{release_from_json, release_of, time_of, ActiveRollout, Actor, ControlError, Daemon};
use crate::config::ServiceConfig;
use crate::core::duration::parse_duration;
use crate::core::event::EventKind;
use crate::core::gate::GateKind;
use crate::core::plan::{plan_from_document, preset, RolloutPlan};
use crate::core::release_env::{check_env, check_key};
use crate::core::rollout::{OperatorCommand, RolloutState};
use crate::core::schema::{describe_all, SchemaChange};
use crate::platform::ReleaseSpec;
use crate::store::{NewRollout, StoreError};

use super::views::RolloutView;

/// What `deploy` is asked to start.
#[derive(Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub version: String,
    /// Environment values of the release (stored with the rollout, shown only as fingerprints).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Keys the release takes from secrets named in opsd.yaml (key → secret name).
    #[serde(default)]
    pub env_from: BTreeMap<String, String>,
    /// The plan; the service's plan when `None`.
    #[serde(default)]
    pub plan: Option<PlanChoice>,
    /// Why (audited).
    #[serde(default)]
    pub reason: Option<String>,
    /// Gates to override (`drill`, `snapshot`); needs a reason, audited.
    #[serde(default)]
    pub overrides: Vec<String>,
    /// The watch at 100 % (`30m`, `0` for none), replacing the plan's; the plan's when `None`.
    #[serde(default)]
    pub watch: Option<String>,
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
            .field("watch", &self.watch)
            .finish()
    }
}

/// How a deploy names its plan: a preset or plan in `plans_dir` by name, or the plan itself.
/// Never a path on opsd's host.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PlanChoice {
    Named(String),
    Document(serde_json::Value),
}

/// Who starts a rollout, why and with which action (`deploy`, `rollback`), all audited, and the
/// schema change it brings.
pub(super) struct StartedBy<'a> {
    pub actor: &'a Actor,
    pub reason: Option<String>,
    pub action: &'a str,
    pub schema: Option<SchemaChange>,
}

/// What a rollout will do with the schema, as the timeline says it when the rollout starts.
fn schema_plan_message(schema: &SchemaChange, canary: &str, stable: &str) -> String {
    let mut parts = Vec::new();
    if !schema.expand.is_empty() {
        parts.push(format!(
            "expand migrations {} run before the canary starts, while {stable} serves",
            describe_all(&schema.expand)
        ));
    }
    if !schema.contract.is_empty() {
        parts.push(format!(
            "contract migrations {} run after {canary} is promoted and {stable} is stopped",
            describe_all(&schema.contract)
        ));
    }
    format!("{canary} brings schema migrations: {}", parts.join("; "))
}

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
impl Daemon {
    /// Waits for a finished rollout of `service` that is still settling (stopping its loser), so
    /// a new rollout starts from the release that won; refuses while one is in progress.
    pub(super) async fn settle_previous(&self, service: &str) -> Result<(), ControlError> {
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
            watch,
        } = request;
        let service = self.service(service_name)?;
        let overrides = overrides
            .iter()
            .map(|name| GateKind::from_override(name))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ControlError::Invalid)?;
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
        let plan = match watch.as_deref().map(str::trim) {
            None => plan,
            Some(text) => {
                let watch = parse_duration(text)
                    .map_err(|error| ControlError::Invalid(format!("watch: {error}")))?;
                plan.with_watch(watch)
            }
        };
        check_plan_checks(service, &plan)?;
        self.settle_previous(service_name).await?;
        let stable = self.stable_release(service_name).await?;
        if stable.version == version {
            return Err(ControlError::Conflict(format!(
                "{version} is already the stable release of {service_name}"
            )));
        }
        let canary = release_of(service, version, env, env_from);
        // Before the gates: a refused schema change needs no snapshot.
        let schema = self.schema_change_for(&stable, &canary, &plan).await?;
        let rollout_id = uuid::Uuid::new_v4().to_string();
        let gates = self
            .pass_gates(&GateRequest {
                service,
                version,
                rollout_id: &rollout_id,
                overrides: &overrides,
                actor,
                reason: reason.as_deref(),
            })
            .await?;
        let view = self
            .start_rollout(
                rollout_id,
                stable,
                canary,
                plan,
                StartedBy {
                    actor,
                    reason,
                    action: "deploy",
                    schema,
                },
                &gates,
            )
            .await?;
        if let Some(snapshot) = gates.snapshot {
            self.event(
                service_name,
                Some(&view.id),
                EventKind::Snapshot,
                format!(
                    "pre-deployment snapshot {} of {} taken",
                    snapshot.id, snapshot.database
                ),
            )
            .await;
        }
        Ok(view)
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
        // Back to the release that served before: it takes all traffic at once, unwatched.
        let plan = preset("AllAtOnce")
            .ok_or_else(|| ControlError::Invalid("the AllAtOnce preset is missing".into()))?
            .with_watch(Duration::ZERO);
        let schema = self.schema_change_for(&stable, &previous, &plan).await?;
        let rollout_id = uuid::Uuid::new_v4().to_string();
        self.start_rollout(
            rollout_id,
            stable,
            previous,
            plan,
            StartedBy {
                actor,
                reason,
                action: "rollback",
                schema,
            },
            &GatesPassed::default(),
        )
        .await
    }

    pub(super) async fn start_rollout(
        &self,
        id: String,
        stable: ReleaseSpec,
        canary: ReleaseSpec,
        plan: RolloutPlan,
        started_by: StartedBy<'_>,
        gates: &GatesPassed,
    ) -> Result<RolloutView, ControlError> {
        let StartedBy {
            actor,
            reason,
            action,
            schema,
        } = started_by;
        let service = canary.service.clone();
        let now = self.now_ms();
        let mut state = RolloutState::new(id.clone(), stable.clone(), canary.clone(), plan, now);
        state.reference = self.reference_traffic(&stable, &state.plan, now).await;
        state = match (&gates.hold, &gates.window_queue) {
            // Another gate holds for an operator: the window's queue joins that hold.
            (Some(hold), Some((window, _))) => state.held_at_gate(format!("{hold}; {window}")),
            (Some(hold), None) => state.held_at_gate(hold.clone()),
            (None, Some((window, closed))) => {
                state.queued_for_window(window.clone(), closed.opens.clone())
            }
            (None, None) => state,
        };
        state.window_overridden = gates.window_overridden;
        state.schema = schema;
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
            EventKind::RolloutStarted,
            format!(
                "rollout of {} over {} started with plan {}",
                canary.version, stable.version, state.plan.name
            ),
        )
        .await;
        if let Some(schema) = &state.schema {
            self.event(
                &service,
                Some(&id),
                EventKind::Migration,
                schema_plan_message(schema, &canary.version, &stable.version),
            )
            .await;
        }
        active.insert(
            service.clone(),
            Arc::new(Mutex::new(ActiveRollout::resumed(state.clone(), 1))),
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

    /// Refuses a release environment with a key that is malformed, of the loader and search-path
    /// family (unless the service's `allow_env` names it) or set by opsd; an oversized value; or
    /// an `env_from` naming a secret opsd.yaml does not define. The message names the key.
    pub(super) fn check_release_env(
        &self,
        service: &ServiceConfig,
        env: &BTreeMap<String, String>,
        env_from: &BTreeMap<String, String>,
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
}
