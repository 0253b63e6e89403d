//! Schema migrations around a rollout, at the I/O edge: each release asked for its migrations
//! (`services.<name>.migrations.list`) before a deploy, the decision of `core::schema` applied
//! (a contract migration refused unless the plan runs it after the watch), the expand phase run
//! before the canary starts (then the stable release probed on the expanded schema), and
//! contract migrations run once a promoted rollout has stopped the previous release.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::{ActiveRollout, ControlError, Daemon};
use crate::config::MigrationCommands;
use crate::core::event::EventKind;
use crate::core::plan::RolloutPlan;
use crate::core::rollout::{Phase, RolloutState};
use crate::core::schema::{
    contract_migrations_unknown_to, describe_all, parse_report, plan_schema_change, Migration,
    MigrationRun, SchemaChange,
};
use crate::notify::{Notification, Severity};
use crate::platform::{HealthStatus, ReleaseRunner, ReleaseSpec, TaskOutput};

/// How much of a failed migration command's output goes into its error.
const OUTPUT_TAIL_CHARS: usize = 600;

/// A rollout's running migrations (its expand phase, or its contract migrations): what the
/// reconciler polls.
pub(super) type MigrationTask = JoinHandle<Result<String, String>>;

impl Daemon {
    /// The schema change a rollout from `stable` to `canary` with `plan` brings, or the refusal
    /// of one that would run a contract migration under the serving release. `None` when the
    /// service's migrations are not managed or nothing is new.
    pub(super) async fn schema_change_for(
        &self,
        stable: &ReleaseSpec,
        canary: &ReleaseSpec,
        plan: &RolloutPlan,
    ) -> Result<Option<SchemaChange>, ControlError> {
        let Some(commands) = self.migration_commands(&canary.service) else {
            return Ok(None);
        };
        let stable_migrations = self.migrations_of(stable, commands).await?;
        let canary_migrations = self.migrations_of(canary, commands).await?;
        self.refuse_past_a_contract(stable, &stable_migrations, canary, &canary_migrations)?;
        plan_schema_change(
            &stable_migrations,
            &canary_migrations,
            &canary.version,
            &stable.version,
            plan.contract_migrations,
        )
        .map_err(ControlError::Conflict)
    }

    /// A release that does not know a contract migration the serving release brought cannot run
    /// on the database once that migration ran: moving back to it is a restore, not a rollout.
    fn refuse_past_a_contract(
        &self,
        stable: &ReleaseSpec,
        stable_migrations: &[Migration],
        target: &ReleaseSpec,
        target_migrations: &[Migration],
    ) -> Result<(), ControlError> {
        let unknown = contract_migrations_unknown_to(stable_migrations, target_migrations);
        if unknown.is_empty() {
            return Ok(());
        }
        Err(ControlError::Conflict(format!(
            "{} does not know contract migration{} {} of {}, so it cannot run on the database \
             once {} ran; go back by restoring the snapshot taken before them (`opsd restore`), \
             or deploy a release that knows them",
            target.version,
            if unknown.len() == 1 { "" } else { "s" },
            describe_all(&unknown),
            stable.version,
            if unknown.len() == 1 { "it" } else { "they" },
        )))
    }

    fn migration_commands(&self, service: &str) -> Option<&MigrationCommands> {
        self.config
            .services
            .get(service)
            .and_then(|config| config.migrations.as_ref())
    }

    /// What `release` reports of its migrations.
    async fn migrations_of(
        &self,
        release: &ReleaseSpec,
        commands: &MigrationCommands,
    ) -> Result<Vec<Migration>, ControlError> {
        let cannot = |detail: String| {
            ControlError::Conflict(format!(
                "cannot read the schema migrations of {} (`{}`): {detail}",
                release.release_id(),
                commands.list.join(" ")
            ))
        };
        let output = self
            .platforms
            .runner
            .run_task(release, &commands.list, commands.timeout)
            .await
            .map_err(|error| cannot(error.to_string()))?;
        if !output.success {
            return Err(cannot(failure_of(&output)));
        }
        parse_report(&output.stdout).map_err(cannot)
    }

    /// Starts the rollout's expand phase: the canary's expand migrations, then one health probe
    /// of the stable release on the expanded schema.
    pub(super) fn spawn_expand(&self, rollout: &ActiveRollout) -> Option<MigrationTask> {
        let schema = rollout
            .state
            .schema
            .as_ref()
            .filter(|schema| schema.expand_due())?;
        let commands = self.migration_commands(&rollout.state.service)?.clone();
        let runner = self.platforms.runner.clone();
        let canary = rollout.state.canary.clone();
        let stable = rollout.state.stable.clone();
        let migrations = schema.expand.clone();
        Some(tokio::spawn(async move {
            run_expand(runner.as_ref(), &commands, &canary, &stable, &migrations).await
        }))
    }

    /// After a promotion: runs the rollout's contract migrations once (in the background, so
    /// other services' rollouts go on) and records how they ended. Returns whether the rollout
    /// is settled: nothing was due, or the run has ended and is stored.
    pub(super) async fn contract_after_promotion(
        &self,
        rollout: &mut ActiveRollout,
    ) -> Result<bool, ControlError> {
        let due = rollout.state.phase == Phase::Promoted
            && rollout
                .state
                .schema
                .as_ref()
                .is_some_and(SchemaChange::contract_due);
        if !due {
            return Ok(true);
        }
        let Some(commands) = self.migration_commands(&rollout.state.service).cloned() else {
            return Ok(true);
        };
        match rollout.migration.take() {
            None => {
                let runner = self.platforms.runner.clone();
                let release = rollout.state.canary.clone();
                rollout.migration = Some(tokio::spawn(async move {
                    run_command(
                        runner.as_ref(),
                        &release,
                        &commands.contract,
                        commands.timeout,
                    )
                    .await
                }));
                Ok(false)
            }
            Some(handle) if !handle.is_finished() => {
                rollout.migration = Some(handle);
                Ok(false)
            }
            Some(handle) => {
                let outcome = handle
                    .await
                    .unwrap_or_else(|error| Err(format!("the migration task failed: {error}")));
                self.record_contract_outcome(rollout, outcome).await?;
                Ok(true)
            }
        }
    }

    /// After a restart: a service whose newest rollout was promoted with contract migrations
    /// still pending (opsd stopped while they ran) gets it back as settling, so they run again
    /// (applying only what is still pending).
    pub(super) async fn resume_pending_contract_migrations(&self) -> Result<(), ControlError> {
        for service in self.config.services.keys() {
            if self.active.lock().await.contains_key(service) {
                continue;
            }
            let Some(record) = self.store.list_rollouts(Some(service), 1).await?.pop() else {
                continue;
            };
            let Ok(state) = serde_json::from_str::<RolloutState>(&record.state_json) else {
                continue;
            };
            let pending = state.phase == Phase::Promoted
                && state
                    .schema
                    .as_ref()
                    .is_some_and(SchemaChange::contract_due);
            if !pending {
                continue;
            }
            self.event(
                service,
                Some(&state.id),
                EventKind::Migration,
                format!(
                    "opsd restarted while the contract migrations of {} were pending; running them again",
                    state.canary.version
                ),
            )
            .await;
            let mut rollout = ActiveRollout::resumed(state, record.revision);
            rollout.finished = true;
            self.active.lock().await.insert(
                service.clone(),
                std::sync::Arc::new(tokio::sync::Mutex::new(rollout)),
            );
        }
        Ok(())
    }

    async fn record_contract_outcome(
        &self,
        rollout: &mut ActiveRollout,
        outcome: Result<String, String>,
    ) -> Result<(), ControlError> {
        let mut next = rollout.state.clone();
        let Some(schema) = next.schema.as_mut() else {
            return Ok(());
        };
        let migrations = describe_all(&schema.contract);
        let (message, failed) = match outcome {
            Ok(detail) => {
                schema.contract_run = MigrationRun::Applied(self.now_ms());
                (
                    format!(
                        "contract migrations {migrations} applied after the promotion of {} \
                         ({} is stopped): {detail}",
                        next.canary.version, next.stable.version
                    ),
                    false,
                )
            }
            Err(reason) => {
                schema.contract_run = MigrationRun::Failed(reason.clone());
                (
                    format!(
                        "contract migrations {migrations} failed after the promotion of {}: \
                         {reason}; {} keeps serving without them (they are not needed by it); \
                         run them again with the release's own `{}` once fixed",
                        next.canary.version,
                        next.canary.version,
                        self.migration_commands(&next.service)
                            .map(|commands| commands.contract.join(" "))
                            .unwrap_or_default()
                    ),
                    true,
                )
            }
        };
        let state_json = serde_json::to_string(&next)
            .map_err(|error| ControlError::Invalid(error.to_string()))?;
        rollout.revision = self
            .store
            .update_finished_rollout_state(&next.id, rollout.revision, &state_json)
            .await?;
        rollout.state = next;
        let state = &rollout.state;
        self.event(
            &state.service,
            Some(&state.id),
            EventKind::Migration,
            message.clone(),
        )
        .await;
        if failed {
            self.notifier.send(
                Notification::new(
                    format!("rollout/{}/contract_migrations", state.id),
                    Severity::Critical,
                    state.service.clone(),
                    format!(
                        "{} {}: contract migrations failed",
                        state.service, state.canary.version
                    ),
                )
                .with_body(message)
                .for_rollout(state.id.clone()),
            );
        }
        Ok(())
    }
}

/// The expand phase itself: the migrations, then the stable release's health.
async fn run_expand(
    runner: &dyn ReleaseRunner,
    commands: &MigrationCommands,
    canary: &ReleaseSpec,
    stable: &ReleaseSpec,
    migrations: &[Migration],
) -> Result<String, String> {
    let applied = run_command(runner, canary, &commands.expand, commands.timeout).await?;
    match runner.probe_health(stable).await {
        HealthStatus::Healthy => Ok(format!(
            "{applied}; the stable release {} is healthy on the expanded schema",
            stable.version
        )),
        HealthStatus::Unhealthy(detail) => Err(format!(
            "{} were applied but the stable release {} is unhealthy on the expanded schema \
             ({detail}); the pre-deployment snapshot is the way back (`opsd restore`)",
            describe_all(migrations),
            stable.version
        )),
    }
}

/// Runs one migration command of `release`; its output's last line on success, or why not.
async fn run_command(
    runner: &dyn ReleaseRunner,
    release: &ReleaseSpec,
    args: &[String],
    timeout: Duration,
) -> Result<String, String> {
    let output = runner
        .run_task(release, args, timeout)
        .await
        .map_err(|error| error.to_string())?;
    if !output.success {
        return Err(format!("`{}` {}", args.join(" "), failure_of(&output)));
    }
    // What it printed for people; its JSON log lines are left out.
    let said = output
        .stdout
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('{'))
        .collect::<Vec<_>>()
        .join("; ");
    Ok(format!("`{}`: {}", args.join(" "), tail(&said)))
}

/// How a command failed: its end and the tail of what it wrote to stderr (or stdout).
fn failure_of(output: &TaskOutput) -> String {
    let said = if output.stderr.trim().is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    format!("ended with {}: {}", output.ended, tail(said.trim()))
}

fn tail(text: &str) -> String {
    let count = text.chars().count();
    if count <= OUTPUT_TAIL_CHARS {
        return text.to_string();
    }
    let kept: String = text.chars().skip(count - OUTPUT_TAIL_CHARS).collect();
    format!("…{kept}")
}
