//! What a reconciler tick reads: the canary's start and health, both releases' traffic, the
//! alarm series, the platform's alarms, finished smoke checks and the deploy window, gathered
//! into an [`Observation`] for the pure core.

use super::{ActiveRollout, ControlError, Daemon};
use crate::core::plan::RolloutPlan;
use crate::core::rollout::{
    rebake_after_restart, Action, CheckState, Observation, Phase, Readiness,
};
use crate::core::traffic::{SecondSample, TrafficSample};
use crate::core::watch::{reference_from_samples, reference_window_seconds, ReferenceTraffic};
use crate::core::window::WindowState;
use crate::platform::{HealthStatus, ReleaseSpec};

impl Daemon {
    /// Reads what the core needs to step `rollout` at `now`. Returns the observation and the
    /// actions due before the step (a re-bake after the canary was started again).
    pub(super) async fn observe(
        &self,
        rollout: &mut ActiveRollout,
        now: i64,
    ) -> Result<(Observation, Vec<Action>), ControlError> {
        let service = rollout.state.service.clone();
        let deploy_window = match self.config.services.get(&service) {
            Some(config) => self.window_state(config, now).await?,
            None => WindowState::default(),
        };
        let mut observation = Observation {
            now_ms: now,
            commands: std::mem::take(&mut rollout.commands),
            approvals: std::mem::take(&mut rollout.approvals),
            traffic_drift: rollout.traffic_drift.clone(),
            deploy_window,
            ..Observation::default()
        };
        let canary = rollout.state.canary.clone();
        let mut pending_actions: Vec<Action> = Vec::new();

        // The expand phase: the canary's expand migrations run before it starts.
        let may_move = !rollout.state.phase.is_terminal() && rollout.state.gate_hold.is_none();
        let schema = rollout.state.schema.as_ref();
        if may_move && schema.is_some_and(|schema| schema.expand_due()) {
            match rollout.migration.take() {
                None => rollout.migration = self.spawn_expand(rollout),
                Some(handle) if handle.is_finished() => {
                    observation.expand_result =
                        Some(handle.await.unwrap_or_else(|error| {
                            Err(format!("the migration task failed: {error}"))
                        }))
                }
                Some(handle) => rollout.migration = Some(handle),
            }
        }
        let canary_may_start = rollout
            .state
            .schema
            .as_ref()
            .is_none_or(|schema| schema.canary_may_start());

        // The canary process: started once, and again after an opsd restart.
        if !rollout.canary_running && may_move && canary_may_start {
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
            self.record_rollout_traffic(rollout, &canary_samples, &baseline_samples, now);
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

        Ok((observation, pending_actions))
    }

    /// The stable release's traffic over a window as long as the plan's watch just before `now`
    /// (the rollout's creation): what the watch compares the new release with. `None` without a
    /// watch, without traffic, or when the platform cannot say (logged; the watch then relies
    /// on alarms, health and checks).
    pub(super) async fn reference_traffic(
        &self,
        stable: &ReleaseSpec,
        plan: &RolloutPlan,
        now: i64,
    ) -> Option<ReferenceTraffic> {
        let window = reference_window_seconds(now, plan.watch())?;
        match self
            .platforms
            .metrics
            .samples(&stable.service, &stable.release_id(), window.0, window.1)
            .await
        {
            Ok(samples) => {
                let samples: Vec<TrafficSample> =
                    samples.into_iter().map(|entry| entry.sample).collect();
                reference_from_samples(&stable.version, window, &samples)
            }
            Err(error) => {
                tracing::warn!(service = %stable.service, error = %error, "cannot read the stable release's traffic before the rollout; the watch will rely on alarms, health and checks");
                None
            }
        }
    }

    /// Recent per-second samples long enough for every alarm rule's window, plus one period: a
    /// bake judges a rule on the last whole periods since the canary took traffic, which may have
    /// ended up to a period ago.
    pub(super) async fn alarm_series(
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
            .map(|rule| rule.period.as_secs() * (u64::from(rule.evaluation_periods) + 1))
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
}
